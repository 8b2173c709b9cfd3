/* session.c — session state: subscriptions, outbound queue, inflight window. */
#include <assert.h>
#include <string.h>

#include "roost/alloc.h"
#include "roost/codec.h"
#include "roost/session.h"
#include "roost/topic.h"
#include "roost/uthash_cfg.h"

typedef struct sub_entry {
	UT_hash_handle hh;
	uint32_t sub_id;  /* v5 Subscription Identifier; 0 = none */
	uint8_t options;
	char filter[]; /* NUL terminated; hh key */
} sub_entry;

typedef struct queued {
	roost_msg *msg;
	uint64_t seq;
	uint8_t qos;
} queued;

struct roost_session {
	char *client_id;
	bool clean;
	void *conn;
	sub_entry *subs;
	size_t n_subs;
	size_t n_sub_ids;  /* subscriptions with an identifier: 0 skips the lookup */

	/* Outbound FIFO as a ring buffer: no allocation per queued message. */
	queued *q;
	size_t q_cap, q_head, q_len;
	uint64_t q_bytes;

	/* Inflight window in send order; acks mostly arrive in order, so removal
	 * is usually at the head. */
	roost_inflight *inf;
	size_t inf_cap, inf_len;
	uint16_t next_pid;

	uint16_t *qos2_in;
	size_t qos2_cap, qos2_len;

	roost_session_stats stats;
	roost_session_mark mark;
	roost_session_expiry_slot expiry_slot;
	uint32_t expiry;   /* Session Expiry Interval, seconds */
	roost_msg *will;   /* waiting for its delay; reference held */
	uint64_t will_due_ms;
	roost_session_sink_fn sink;
	void *sink_ctx;
	char *username;
	bool owner_known;  /* false only for a session restored from a store */
	const roost_session_journal *journal;
	void *journal_ctx;
	uint64_t next_seq;
};

/* Journal helpers: a no-op unless a journal is set; QoS 0 is never journaled. */
#define JOURNAL(s, fn, ...) \
	do { \
		if ((s)->journal && (s)->journal->fn) \
			(s)->journal->fn((s)->journal_ctx, (s), __VA_ARGS__); \
	} while (0)

void roost_session_set_journal(roost_session *s, const roost_session_journal *j, void *ctx)
{
	s->journal = j;
	s->journal_ctx = ctx;
}

roost_session *roost_session_new(const char *client_id, size_t len, bool clean)
{
	roost_session *s = roost_calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->client_id = roost_strndup(client_id, len);
	if (!s->client_id) {
		roost_free(s);
		return NULL;
	}
	s->clean = clean;
	s->expiry = clean ? 0 : ROOST_SESSION_NEVER_EXPIRES;
	s->expiry_slot.index = SIZE_MAX;
	s->next_pid = 1;
	s->next_seq = 1;
	return s;
}

void roost_session_free(roost_session *s)
{
	if (!s)
		return;
	sub_entry *e, *tmp;
	HASH_ITER(hh, s->subs, e, tmp) {
		HASH_DEL(s->subs, e);
		roost_free(e);
	}
	for (size_t i = 0; i < s->q_len; i++)
		roost_msg_unref(s->q[(s->q_head + i) % s->q_cap].msg);
	roost_free(s->q);
	for (size_t i = 0; i < s->inf_len; i++)
		roost_msg_unref(s->inf[i].msg);
	roost_free(s->inf);
	roost_free(s->qos2_in);
	roost_msg_unref(s->will);
	roost_free(s->username);
	roost_free(s->client_id);
	roost_free(s);
}

const char *roost_session_client_id(const roost_session *s) { return s->client_id; }
bool roost_session_clean(const roost_session *s) { return s->clean; }
void roost_session_set_clean(roost_session *s, bool clean) { s->clean = clean; }
const roost_session_stats *roost_session_stats_get(const roost_session *s) { return &s->stats; }
roost_err roost_session_set_username(roost_session *s, const char *username, size_t len)
{
	char *copy = NULL;
	if (username && !(copy = roost_strndup(username, len)))
		return ROOST_ERR_NOMEM;
	roost_free(s->username);
	s->username = copy;
	s->owner_known = true;
	return ROOST_OK;
}

const char *roost_session_username(const roost_session *s) { return s->username; }
bool roost_session_owner_known(const roost_session *s) { return s->owner_known; }

bool roost_session_owned_by(const roost_session *s, const char *username)
{
	if (!s->owner_known)
		return true;
	if (!s->username || !username)
		return s->username == username;
	return strcmp(s->username, username) == 0;
}

void roost_session_set_sink(roost_session *s, roost_session_sink_fn fn, void *ctx)
{
	s->sink = fn;
	s->sink_ctx = ctx;
}

roost_session_sink_fn roost_session_sink(const roost_session *s, void **ctx)
{
	*ctx = s->sink_ctx;
	return s->sink;
}

roost_session_mark *roost_session_mark_get(roost_session *s) { return &s->mark; }
void roost_session_set_expiry(roost_session *s, uint32_t seconds) { s->expiry = seconds; }
uint32_t roost_session_expiry(const roost_session *s) { return s->expiry; }
roost_session_expiry_slot *roost_session_expiry_slot_get(roost_session *s) { return &s->expiry_slot; }

void roost_session_will_take(roost_session *s, roost_msg *will, uint64_t due_ms)
{
	roost_msg_unref(s->will);
	s->will = will;
	s->will_due_ms = will ? due_ms : 0;
}

roost_msg *roost_session_will_remove(roost_session *s)
{
	roost_msg *m = s->will;
	s->will = NULL;
	s->will_due_ms = 0;
	return m;
}

uint64_t roost_session_will_due(const roost_session *s) { return s->will_due_ms; }
void *roost_session_conn(const roost_session *s) { return s->conn; }
void roost_session_set_conn(roost_session *s, void *conn) { s->conn = conn; }

/* ---- subscriptions ---- */

roost_err roost_session_sub_add(roost_session *s, const char *filter, size_t len, uint8_t options,
                                bool *existed)
{
	return roost_session_sub_add_id(s, filter, len, options, 0, existed);
}

static void set_sub_id(roost_session *s, sub_entry *e, uint32_t sub_id)
{
	s->n_sub_ids += (sub_id != 0) - (e->sub_id != 0);
	e->sub_id = sub_id;
}

roost_err roost_session_sub_add_id(roost_session *s, const char *filter, size_t len, uint8_t options,
                                   uint32_t sub_id, bool *existed)
{
	sub_entry *e;
	HASH_FIND(hh, s->subs, filter, len, e);
	if (existed)
		*existed = e != NULL;
	if (e) {
		e->options = options;
		set_sub_id(s, e, sub_id);
		JOURNAL(s, sub, filter, len, options, true);
		return ROOST_OK;
	}
	e = roost_malloc(sizeof *e + len + 1);
	if (!e)
		return ROOST_ERR_NOMEM;
	memcpy(e->filter, filter, len);
	e->filter[len] = '\0';
	e->options = options;
	e->sub_id = 0;
	roost_uthash_oom_flag = 0;
	HASH_ADD(hh, s->subs, filter[0], len, e);
	if (roost_uthash_oom_flag) {
		roost_free(e);
		return ROOST_ERR_NOMEM;
	}
	set_sub_id(s, e, sub_id);
	s->n_subs++;
	JOURNAL(s, sub, filter, len, options, true);
	return ROOST_OK;
}

size_t roost_session_sub_ids(const roost_session *s, const char *topic, size_t len, uint32_t *out, size_t cap)
{
	size_t n = 0;
	if (!s->n_sub_ids)
		return 0;
	for (const sub_entry *e = s->subs; e && n < cap; e = e->hh.next) {
		const char *f = e->filter, *group;
		size_t flen = e->hh.keylen, glen;
		if (!e->sub_id)
			continue;
		roost_topic_share_parse(e->filter, e->hh.keylen, &group, &glen, &f, &flen); /* the real filter */
		if (roost_topic_matches(f, flen, topic, len))
			out[n++] = e->sub_id;
	}
	return n;
}

roost_err roost_session_sub_remove(roost_session *s, const char *filter, size_t len)
{
	sub_entry *e;
	HASH_FIND(hh, s->subs, filter, len, e);
	if (!e)
		return ROOST_ERR_NOT_FOUND;
	HASH_DEL(s->subs, e);
	set_sub_id(s, e, 0);
	roost_free(e);
	s->n_subs--;
	JOURNAL(s, sub, filter, len, 0, false);
	return ROOST_OK;
}

size_t roost_session_sub_count(const roost_session *s) { return s->n_subs; }

bool roost_session_sub_has(const roost_session *s, const char *filter, size_t len)
{
	sub_entry *e;
	HASH_FIND(hh, s->subs, filter, len, e);
	return e != NULL;
}

void roost_session_sub_foreach(const roost_session *s, roost_session_sub_visit visit, void *ctx)
{
	for (const sub_entry *e = s->subs; e; e = e->hh.next)
		if (!visit(ctx, e->filter, e->hh.keylen, e->options))
			return;
}

/* ---- outbound queue ---- */

static roost_err queue_grow(roost_session *s)
{
	size_t cap = s->q_cap ? s->q_cap * 2 : 8;
	queued *q = roost_malloc(cap * sizeof *q);
	if (!q)
		return ROOST_ERR_NOMEM;
	for (size_t i = 0; i < s->q_len; i++)
		q[i] = s->q[(s->q_head + i) % s->q_cap];
	roost_free(s->q);
	s->q = q;
	s->q_cap = cap;
	s->q_head = 0;
	return ROOST_OK;
}

roost_err roost_session_enqueue(roost_session *s, roost_msg *msg, uint8_t qos,
                                const roost_session_limits *lim, roost_enqueue_result *result)
{
	size_t size = roost_msg_size(msg);
	if ((lim->max_queued && s->q_len >= lim->max_queued) ||
	    (lim->max_queued_bytes && s->q_bytes + size > lim->max_queued_bytes)) {
		if ((qos & ROOST_DELIVER_QOS_MASK) == 0)
			s->stats.dropped_qos0++;
		else
			s->stats.dropped_qos12++;
		*result = ROOST_DROPPED_FULL;
		return ROOST_OK;
	}
	if (s->q_len == s->q_cap) {
		roost_err err = queue_grow(s);
		if (err)
			return err;
	}
	uint64_t seq = s->next_seq++;
	s->q[(s->q_head + s->q_len) % s->q_cap] = (queued){roost_msg_ref(msg), seq, qos};
	s->q_len++;
	s->q_bytes += size;
	if (qos & ROOST_DELIVER_QOS_MASK)
		JOURNAL(s, delivery_add, seq, msg, qos, 0, 0);
	*result = ROOST_ENQUEUED;
	return ROOST_OK;
}

size_t roost_session_queue_len(const roost_session *s) { return s->q_len; }
uint64_t roost_session_queue_bytes(const roost_session *s) { return s->q_bytes; }
size_t roost_session_inflight_len(const roost_session *s) { return s->inf_len; }

/* ---- inflight ---- */

static bool pid_in_use(const roost_session *s, uint16_t pid)
{
	for (size_t i = 0; i < s->inf_len; i++)
		if (s->inf[i].packet_id == pid)
			return true;
	return false;
}

void roost_session_queue_foreach(const roost_session *s, roost_session_queue_visit visit, void *ctx)
{
	for (size_t i = 0; i < s->q_len; i++) {
		const queued *q = &s->q[(s->q_head + i) % s->q_cap];
		visit(ctx, q->msg, q->qos);
	}
}

bool roost_session_inflight_has(const roost_session *s, uint16_t packet_id)
{
	return pid_in_use(s, packet_id);
}

/* [MQTT-2.3.1-2]: a new id, non-zero, not used by an unacknowledged packet. */
static uint16_t next_packet_id(roost_session *s)
{
	for (;;) {
		uint16_t pid = s->next_pid++;
		if (s->next_pid == 0)
			s->next_pid = 1;
		if (pid != 0 && !pid_in_use(s, pid))
			return pid;
	}
}

static roost_err inflight_push(roost_session *s, roost_msg *msg_ref, uint8_t qos, uint64_t seq,
                               uint16_t *packet_id)
{
	uint8_t q = qos & ROOST_DELIVER_QOS_MASK;
	assert(q == 1 || q == 2);
	assert(s->inf_len < UINT16_MAX);
	if (s->inf_len == s->inf_cap) {
		size_t cap = s->inf_cap ? s->inf_cap * 2 : 4;
		roost_inflight *n = roost_realloc(s->inf, cap * sizeof *n);
		if (!n)
			return ROOST_ERR_NOMEM;
		s->inf = n;
		s->inf_cap = cap;
	}
	uint16_t pid = next_packet_id(s);
	s->inf[s->inf_len++] = (roost_inflight){
		.msg = msg_ref,
		.seq = seq,
		.store_id = msg_ref ? msg_ref->store_id : 0,
		.packet_id = pid,
		.qos = qos,
		.state = q == 1 ? ROOST_INFLIGHT_WAIT_PUBACK : ROOST_INFLIGHT_WAIT_PUBREC,
	};
	*packet_id = pid;
	return ROOST_OK;
}

bool roost_session_can_send_now(const roost_session *s, uint8_t qos, const roost_session_limits *lim)
{
	if (s->q_len)
		return false; /* older messages first: never reorder */
	return (qos & ROOST_DELIVER_QOS_MASK) == 0 || s->inf_len < lim->max_inflight;
}

roost_err roost_session_inflight_add(roost_session *s, roost_msg *msg, uint8_t qos, uint16_t *packet_id)
{
	uint64_t seq = s->next_seq;
	roost_err err = inflight_push(s, msg, qos, seq, packet_id);
	if (err)
		return err;
	s->next_seq++;
	roost_msg_ref(msg);
	roost_inflight *f = &s->inf[s->inf_len - 1];
	JOURNAL(s, delivery_add, seq, msg, qos, f->packet_id, f->state);
	f->store_id = msg->store_id; /* the journal may have stored it just now */
	return ROOST_OK;
}

bool roost_session_dequeue(roost_session *s, const roost_session_limits *lim, roost_msg **msg,
                           uint8_t *qos, uint16_t *packet_id)
{
	if (!s->q_len)
		return false;
	queued *head = &s->q[s->q_head];
	if (head->qos & ROOST_DELIVER_QOS_MASK) {
		if (s->inf_len >= lim->max_inflight)
			return false;
		/* The queue's reference moves to the inflight slot; the caller
		 * gets one more for the write. */
		if (inflight_push(s, head->msg, head->qos, head->seq, packet_id))
			return false;
		roost_msg_ref(head->msg);
		JOURNAL(s, delivery_update, head->seq, *packet_id, s->inf[s->inf_len - 1].state);
	} else {
		*packet_id = 0;
	}
	*msg = head->msg;
	*qos = head->qos;
	s->q_bytes -= roost_msg_size(head->msg);
	s->q_head = (s->q_head + 1) % s->q_cap;
	s->q_len--;
	return true;
}

bool roost_session_peek(const roost_session *s, roost_msg **msg, uint8_t *qos)
{
	if (!s->q_len)
		return false;
	*msg = s->q[s->q_head].msg;
	*qos = s->q[s->q_head].qos;
	return true;
}

void roost_session_drop_head(roost_session *s)
{
	assert(s->q_len > 0);
	queued *head = &s->q[s->q_head];
	if (head->qos & ROOST_DELIVER_QOS_MASK)
		JOURNAL(s, delivery_remove, head->seq, head->msg->store_id);
	s->stats.dropped_denied++;
	s->q_bytes -= roost_msg_size(head->msg);
	roost_msg_unref(head->msg);
	s->q_head = (s->q_head + 1) % s->q_cap;
	s->q_len--;
}

static void inflight_remove(roost_session *s, size_t i)
{
	JOURNAL(s, delivery_remove, s->inf[i].seq, s->inf[i].store_id);
	roost_msg_unref(s->inf[i].msg);
	memmove(&s->inf[i], &s->inf[i + 1], (s->inf_len - i - 1) * sizeof s->inf[0]);
	s->inf_len--;
}

roost_err roost_session_ack(roost_session *s, uint8_t type, uint16_t packet_id)
{
	uint8_t want;
	switch (type) {
	case ROOST_MQTT_PUBACK: want = ROOST_INFLIGHT_WAIT_PUBACK; break;
	case ROOST_MQTT_PUBREC: want = ROOST_INFLIGHT_WAIT_PUBREC; break;
	case ROOST_MQTT_PUBCOMP: want = ROOST_INFLIGHT_WAIT_PUBCOMP; break;
	default: return ROOST_ERR_INVALID;
	}
	for (size_t i = 0; i < s->inf_len; i++) {
		roost_inflight *f = &s->inf[i];
		if (f->packet_id != packet_id)
			continue;
		if (f->state != want) {
			/* A repeated PUBREC while waiting for PUBCOMP is legal: the
			 * broker answers with PUBREL again. */
			return ROOST_ERR_NOT_FOUND;
		}
		if (type == ROOST_MQTT_PUBREC) {
			/* [MQTT-4.3.3-1] after PUBREC the sender keeps only the id. */
			f->state = ROOST_INFLIGHT_WAIT_PUBCOMP;
			roost_msg_unref(f->msg);
			f->msg = NULL;
			JOURNAL(s, delivery_update, f->seq, f->packet_id, f->state);
		} else {
			inflight_remove(s, i);
		}
		return ROOST_OK;
	}
	return ROOST_ERR_NOT_FOUND;
}

void roost_session_inflight_foreach(roost_session *s, roost_session_inflight_visit visit, void *ctx)
{
	for (size_t i = 0; i < s->inf_len; i++)
		visit(ctx, &s->inf[i]);
}

/* ---- keepalive ---- */

uint64_t roost_keepalive_left_ms(uint64_t last_rx_ms, uint64_t now_ms, uint16_t keepalive)
{
	if (keepalive == 0)
		return UINT64_MAX;
	uint64_t limit = (uint64_t)keepalive * 1500u;
	uint64_t idle = now_ms > last_rx_ms ? now_ms - last_rx_ms : 0;
	return idle >= limit ? 0 : limit - idle;
}

/* ---- inbound QoS 2 ---- */

roost_err roost_session_qos2_in_add(roost_session *s, uint16_t packet_id, bool *dup)
{
	for (size_t i = 0; i < s->qos2_len; i++) {
		if (s->qos2_in[i] == packet_id) {
			*dup = true;
			return ROOST_OK;
		}
	}
	*dup = false;
	if (s->qos2_len == s->qos2_cap) {
		size_t cap = s->qos2_cap ? s->qos2_cap * 2 : 4;
		uint16_t *n = roost_realloc(s->qos2_in, cap * sizeof *n);
		if (!n)
			return ROOST_ERR_NOMEM;
		s->qos2_in = n;
		s->qos2_cap = cap;
	}
	s->qos2_in[s->qos2_len++] = packet_id;
	JOURNAL(s, qos2_in, packet_id, true);
	return ROOST_OK;
}

roost_err roost_session_qos2_in_release(roost_session *s, uint16_t packet_id)
{
	for (size_t i = 0; i < s->qos2_len; i++) {
		if (s->qos2_in[i] == packet_id) {
			s->qos2_in[i] = s->qos2_in[--s->qos2_len];
			JOURNAL(s, qos2_in, packet_id, false);
			return ROOST_OK;
		}
	}
	return ROOST_ERR_NOT_FOUND;
}

size_t roost_session_qos2_in_count(const roost_session *s) { return s->qos2_len; }

bool roost_session_qos2_in_has(const roost_session *s, uint16_t packet_id)
{
	for (size_t i = 0; i < s->qos2_len; i++)
		if (s->qos2_in[i] == packet_id)
			return true;
	return false;
}

/* ---- restore from a store ---- */

roost_err roost_session_restore(roost_session *s, uint64_t seq, roost_msg *msg, uint8_t qos,
                                uint16_t packet_id, uint8_t state, uint64_t store_id)
{
	assert(msg || state == ROOST_INFLIGHT_WAIT_PUBCOMP);
	if (seq >= s->next_seq)
		s->next_seq = seq + 1;
	if (state == 0) {
		if (s->q_len == s->q_cap && queue_grow(s) != ROOST_OK)
			return ROOST_ERR_NOMEM;
		s->q[(s->q_head + s->q_len) % s->q_cap] = (queued){roost_msg_ref(msg), seq, qos};
		s->q_len++;
		s->q_bytes += roost_msg_size(msg);
		return ROOST_OK;
	}
	if (s->inf_len == s->inf_cap) {
		size_t cap = s->inf_cap ? s->inf_cap * 2 : 4;
		roost_inflight *n = roost_realloc(s->inf, cap * sizeof *n);
		if (!n)
			return ROOST_ERR_NOMEM;
		s->inf = n;
		s->inf_cap = cap;
	}
	s->inf[s->inf_len++] = (roost_inflight){
		.msg = msg ? roost_msg_ref(msg) : NULL,
		.seq = seq,
		.store_id = store_id,
		.packet_id = packet_id,
		.qos = qos,
		.state = state,
	};
	/* New ids continue after the restored ones. */
	if (packet_id >= s->next_pid)
		s->next_pid = packet_id == UINT16_MAX ? 1 : (uint16_t)(packet_id + 1);
	return ROOST_OK;
}

roost_err roost_session_restore_qos2(roost_session *s, uint16_t packet_id)
{
	const roost_session_journal *j = s->journal;
	s->journal = NULL;
	bool dup;
	roost_err err = roost_session_qos2_in_add(s, packet_id, &dup);
	s->journal = j;
	return err;
}
