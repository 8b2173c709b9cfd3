/*
 * broker.c — the broker object: its lifecycle (new, shutdown, free, the
 * reaper), sessions, fan-out, retained messages.
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "roost/acl.h"
#include "roost/alloc.h"
#include "sys.h"

/* A named component interface (roost_broker_service_add). */
struct service {
	struct service *next;
	void *iface;
	char name[];
};

static void free_retained(void *value)
{
	roost_msg_unref(value);
}

static void reaper_cb(evutil_socket_t fd, short what, void *arg);

roost_broker *roost_broker_new(struct event_base *base, const roost_config *cfg,
                               const roost_log *log, roost_clock clock)
{
	roost_broker *b = roost_calloc(1, sizeof *b);
	if (!b)
		return NULL;
	b->base = base;
	b->cfg = cfg;
	b->log = log;
	b->clock = clock;
	b->start_ms = roost_clock_now(&clock);
	b->commit_done = conn_commit_done;
	b->limits = (roost_session_limits){
		.max_inflight = cfg->limits.max_inflight_messages,
		.max_queued = cfg->limits.max_queued_messages,
		.max_queued_bytes = cfg->limits.max_queued_bytes,
	};
	b->tree = roost_topic_tree_new(free_retained);
	b->reaper = event_new(base, -1, 0, reaper_cb, b);
	b->bus = roost_bus_new();
	if (!b->tree || !b->reaper || !b->bus || broker_sys_new(b) != ROOST_OK)
		goto fail;
	return b;
fail:
	roost_broker_free(b);
	return NULL;
}

void roost_broker_free(roost_broker *b)
{
	if (!b)
		return;
	roost_broker_shutdown(b);
	reaper_cb(-1, 0, b);
	while (b->component_subs)
		roost_broker_unsubscribe(b, b->component_subs);
	while (b->services)
		roost_broker_service_remove(b, b->services->name);
	broker_sys_free(b);
	broker_store_close(b);
	roost_bus_free(b->bus);
	session_entry *e, *tmp;
	HASH_ITER(hh, b->sessions, e, tmp) {
		HASH_DEL(b->sessions, e);
		roost_session_free(e->s);
		roost_free(e);
	}
	broker_expiry_free(b);
	roost_topic_tree_free(b->tree);
	if (b->reaper)
		event_free(b->reaper);
	broker_lingering_free(b);
	broker_ws_lingering_free(b);
	broker_listeners_free(b);
	broker_authz_free(b);
	roost_free(b->targets);
	roost_free(b);
}

void roost_broker_shutdown(roost_broker *b)
{
	b->shutting_down = true;
	broker_listeners_close(b);
	while (b->conns) /* v5: DISCONNECT 0x8B; no will is published while shutting down */
		conn_disconnect(b->conns, ROOST_RC5_SHUTTING_DOWN, "broker shutting down");
}

void roost_broker_watch_connections(roost_broker *b, void (*fn)(void *ctx), void *ctx)
{
	b->conn_watch = fn;
	b->conn_watch_ctx = ctx;
}

void broker_connections_changed(roost_broker *b)
{
	if (b->conn_watch)
		b->conn_watch(b->conn_watch_ctx);
}

void roost_broker_stats_get(const roost_broker *b, roost_broker_stats *out)
{
	*out = b->stats;
	out->sessions = HASH_COUNT(b->sessions);
	out->retained = roost_topic_tree_retained_count(b->tree);
	out->subscriptions = roost_topic_tree_subscription_count(b->tree);
	out->uptime_ms = roost_clock_now(&b->clock) - b->start_ms;
	out->msgs_stored = out->retained;
	for (const session_entry *e = b->sessions; e; e = e->hh.next)
		out->msgs_stored += roost_session_queue_len(e->s) + roost_session_inflight_len(e->s);
	if (b->store) {
		const roost_persist_stats *ps = roost_persist_stats_get(b->store);
		out->store_commits = ps->commits;
		out->store_moved_aside = ps->moved_aside_total;
		out->store_size = broker_store_size(b);
	}
}

size_t roost_broker_listener_stats(const roost_broker *b, roost_listener_stats *out, size_t cap)
{
	for (size_t i = 0; i < b->n_listeners && i < cap; i++) {
		const roost_listener *l = &b->listeners[i];
		out[i] = (roost_listener_stats){.port = l->port, .bind = l->cfg->bind ? l->cfg->bind : ""};
	}
	for (const roost_conn *c = b->conns; c; c = c->next) {
		size_t i = 0;
		while (i < b->n_listeners && i < cap && c->listener != &b->listeners[i])
			i++;
		if (!c->session || i == b->n_listeners || i == cap)
			continue;
		if (c->version == ROOST_MQTT_V5)
			out[i].clients_v5++;
		else if (c->version == ROOST_MQTT_V31)
			out[i].clients_v31++;
		else
			out[i].clients_v311++;
	}
	return b->n_listeners;
}

/*
 * Connections are never freed inside their own callbacks: conn_close() puts
 * them on b->reap and activates this event, which runs once the current
 * callback has returned to the loop.
 */
static void reaper_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	roost_broker *b = arg;
	bool freed = b->reap != NULL;
	while (b->reap) {
		roost_conn *c = b->reap;
		b->reap = c->reap_next;
		broker_conn_free(c);
	}
	/* Their descriptors are closed now: a listener paused for lack of
	 * them need not wait for its timer. */
	if (freed)
		broker_listeners_resume(b);
}

void broker_schedule_reap(roost_broker *b, roost_conn *c)
{
	c->reap_next = b->reap;
	b->reap = c;
	if (b->reaper)
		event_active(b->reaper, 0, 0);
}

/* ---- sessions ---- */

roost_session *broker_session_find(roost_broker *b, const char *id, size_t len)
{
	session_entry *e;
	HASH_FIND(hh, b->sessions, id, len, e);
	return e ? e->s : NULL;
}

roost_err broker_session_add(roost_broker *b, roost_session *s)
{
	const char *id = roost_session_client_id(s);
	size_t len = strlen(id);
	session_entry *e = roost_malloc(sizeof *e + len + 1);
	if (!e)
		return ROOST_ERR_NOMEM;
	e->s = s;
	memcpy(e->client_id, id, len + 1);
	roost_uthash_oom_flag = 0;
	HASH_ADD(hh, b->sessions, client_id[0], len, e);
	if (roost_uthash_oom_flag) {
		roost_free(e);
		return ROOST_ERR_NOMEM;
	}
	return ROOST_OK;
}

static bool unsubscribe_visit(void *ctx, const char *filter, size_t len, uint8_t options)
{
	(void)options;
	void **args = ctx;
	roost_topic_tree_unsubscribe(args[0], filter, len, args[1]);
	return true;
}

static void shares_hand_over(roost_broker *b, roost_session *s);

void broker_session_destroy(roost_broker *b, roost_session *s)
{
	const char *id = roost_session_client_id(s);
	session_entry *e;
	HASH_FIND(hh, b->sessions, id, strlen(id), e);
	if (e) {
		HASH_DEL(b->sessions, e);
		roost_free(e);
	}
	void *args[2] = {b->tree, s};
	roost_session_sub_foreach(s, unsubscribe_visit, args);
	broker_expiry_cancel(b, s);
	shares_hand_over(b, s);
	broker_store_session_removed(b, s);
	roost_session_free(s);
}

/* ---- delivery ---- */

/*
 * The check of every delivery not yet on the wire, against the receiver's
 * rights at this moment: a reloaded ACL applies at once, to subscriptions
 * made before it, to queued messages and to retained ones. Asked where a
 * delivery is sent or queued for an online receiver, and where a queued
 * one leaves the queue (broker_session_pump). A flow already on the wire
 * (inflight) is not asked again: it may complete [MQTT-4.4.0-1].
 */
static bool may_receive(roost_broker *b, roost_session *s, const roost_msg *msg)
{
	if (!broker_authz_has_rules(b))
		return true;
	if (broker_authz_topic(b, s, msg->topic, msg->topic_len, ROOST_ACL_READ))
		return true;
	b->stats.msgs_dropped++;
	roost_log_debug(b->log, "client %s: delivery on %.*s dropped: the receiver may not read it",
	                roost_session_client_id(s), msg->topic_len > 200 ? 200 : (int)msg->topic_len, msg->topic);
	return false;
}

static void enqueue(roost_broker *b, roost_session *s, roost_msg *msg, uint8_t qos)
{
	roost_enqueue_result r;
	if (roost_session_enqueue(s, msg, qos, &b->limits, &r) != ROOST_OK || r != ROOST_ENQUEUED) {
		b->stats.msgs_dropped++;
		/* Logged at the 1st, 2nd, 4th, 8th ... drop: visible, never a flood. */
		uint64_t n = roost_session_stats_get(s)->dropped_qos12;
		if ((qos & ROOST_DELIVER_QOS_MASK) && n && !(n & (n - 1)))
			roost_log_warn(b->log, "client %s: queue full (limits.max_queued_messages/bytes), dropped "
			               "a QoS %u message on %s; %llu dropped so far", roost_session_client_id(s),
			               qos & ROOST_DELIVER_QOS_MASK, msg->topic, (unsigned long long)n);
	}
}

/*
 * Pacing of QoS 0 from the queue (retained sets sent on SUBSCRIBE): sent
 * while the connection has at most ROOST_OUTPUT_HIGH_WATER unsent, the rest
 * continued when its output drains below half of that. QoS 1/2 are paced by
 * the inflight window and the acknowledgements instead.
 *
 * The drain is watched with a callback on the connection's output buffer,
 * removed once it fired (and freed with the buffer when the connection
 * goes). It belongs in connection.c (a conn_on_drain call); it is here
 * until that module offers one.
 */
static size_t unsent(roost_conn *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev));
}

static void output_drained(struct evbuffer *out, const struct evbuffer_cb_info *info, void *arg)
{
	roost_conn *c = arg;
	if (!info->n_deleted || evbuffer_get_length(out) > ROOST_OUTPUT_HIGH_WATER / 2)
		return;
	evbuffer_remove_cb(out, output_drained, c);
	if (c->state == CONN_ACTIVE && c->session)
		broker_session_pump(c->b, c->session);
}

static void pump_when_drained(roost_conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	evbuffer_remove_cb(out, output_drained, c); /* at most one */
	evbuffer_add_cb(out, output_drained, c);
}

/*
 * The inflight window of this receiver: limits.max_inflight_messages, lowered
 * to an MQTT 5 client's Receive Maximum [MQTT-3.3.4-9]; the same bound
 * covers 3.1.1 clients.
 */
static roost_session_limits window(const roost_broker *b, const roost_conn *c)
{
	roost_session_limits lim = b->limits;
	if (c && c->version == ROOST_MQTT_V5 && c->v5.receive_max && c->v5.receive_max < lim.max_inflight)
		lim.max_inflight = c->v5.receive_max;
	return lim;
}

/*
 * May this copy still start its onward delivery? Not once its Message
 * Expiry Interval has passed [MQTT-3.3.2-5], and not when the packet would
 * be larger than the client's Maximum Packet Size: such a message is dropped
 * as if it had been sent [MQTT-3.1.2-25]. Both are counted drops.
 */
static bool deliverable(roost_broker *b, roost_conn *c, roost_msg *msg)
{
	uint32_t left;
	if (!roost_msg_expiry_left(msg, roost_clock_now(&b->clock), &left)) {
		b->stats.msgs_dropped++;
		b->stats.msgs_expired++;
		return false;
	}
	if (c && !conn_publish_fits(c, msg)) {
		b->stats.msgs_dropped++;
		b->stats.msgs_too_large++;
		roost_log_debug(b->log, "client %s: delivery on %.*s dropped: larger than its Maximum Packet Size "
		                "%u [MQTT-3.1.2-24]", conn_client_id(c), msg->topic_len > 200 ? 200 : (int)msg->topic_len,
		                msg->topic, c->v5.max_packet);
		return false;
	}
	return true;
}

/* qos may carry ROOST_DELIVER_RETAIN. */
static void deliver(roost_broker *b, roost_session *s, roost_msg *msg, uint8_t qos)
{
	void *sink_ctx;
	roost_session_sink_fn sink = roost_session_sink(s, &sink_ctx);
	if (sink) {
		sink(sink_ctx, msg, qos & ROOST_DELIVER_QOS_MASK); /* a component: called in place */
		return;
	}
	roost_conn *c = roost_session_conn(s);
	bool online = c && c->state == CONN_ACTIVE;
	/* Offline, the receiver's rights are decided when it is back. */
	if (online && !may_receive(b, s, msg))
		return;
	if (!deliverable(b, online ? c : NULL, msg))
		return;
	roost_session_limits lim = window(b, online ? c : NULL);
	if (online && roost_session_can_send_now(s, qos, &lim)) {
		if ((qos & ROOST_DELIVER_QOS_MASK) == 0) {
			if (!conn_is_slow(c)) {
				conn_send_publish(c, msg, qos, 0, false);
				return;
			}
			if (!(qos & ROOST_DELIVER_RETAIN)) {
				/* Stated drop policy: live QoS 0 to a client that does
				 * not read is dropped and counted, never buffered
				 * without bound. */
				b->stats.msgs_dropped++;
				return;
			}
			/* A retained set larger than the output allows waits in
			 * the queue (bounded by its limits) for the drain. */
			enqueue(b, s, msg, qos);
			pump_when_drained(c);
			return;
		}
		uint16_t pid;
		if (roost_session_inflight_add(s, msg, qos, &pid) == ROOST_OK) {
			conn_send_publish(c, msg, qos, pid, false);
			return;
		}
		/* No memory for the slot: fall through to the queue. */
	}
	if (!online && (qos & ROOST_DELIVER_QOS_MASK) == 0)
		return; /* QoS 0 is not kept for offline sessions [MQTT-3.1.2-5] */
	enqueue(b, s, msg, qos);
}

void broker_session_pump(roost_broker *b, roost_session *s)
{
	roost_conn *c = roost_session_conn(s);
	if (!c || c->state != CONN_ACTIVE)
		return;
	roost_msg *msg;
	uint8_t qos;
	uint16_t pid;
	roost_session_limits lim = window(b, c);
	while (roost_session_peek(s, &msg, &qos)) {
		/* [MQTT-3.3.2-5] an expired queued copy is deleted unsent. */
		if (!may_receive(b, s, msg) || !deliverable(b, c, msg)) {
			roost_session_drop_head(s);
			continue;
		}
		if ((qos & ROOST_DELIVER_QOS_MASK) == 0 && unsent(c) > ROOST_OUTPUT_HIGH_WATER) {
			pump_when_drained(c);
			break;
		}
		if (!roost_session_dequeue(s, &lim, &msg, &qos, &pid))
			break;
		conn_send_publish(c, msg, qos, pid, false);
		roost_msg_unref(msg);
	}
}

/* Fan-out of one message: who published it (No Local) and the broker. */
typedef struct fanout_ctx {
	roost_broker *b;
	const roost_session *origin; /* NULL for the broker's and components' messages */
} fanout_ctx;

static bool push_target(roost_broker *b, roost_session *s, uint8_t qos, uint8_t rap)
{
	if (b->n_targets == b->targets_cap) {
		size_t cap = b->targets_cap ? b->targets_cap * 2 : 64;
		fanout_target *n = roost_realloc(b->targets, cap * sizeof *n);
		if (!n) {
			roost_log_error(b->log, "out of memory during fan-out; delivery truncated");
			return false;
		}
		b->targets = n;
		b->targets_cap = cap;
	}
	b->targets[b->n_targets++] = (fanout_target){s, qos, rap};
	return true;
}

/*
 * Collect matches, merging overlapping subscriptions of one session into a
 * single delivery at the highest granted QoS (MQTT 3.1.1 section 3.3.5 allows
 * either; a single copy at the maximum is what users expect and what 5.0
 * requires for non-shared subscriptions). The copy carries RETAIN as
 * published when any of them asked for it [MQTT-3.3.1-12].
 */
static bool collect_target(void *ctx, void *sub, uint8_t options)
{
	fanout_ctx *fc = ctx;
	roost_broker *b = fc->b;
	roost_session *s = sub;
	/* [MQTT-3.8.3-3] No Local: not back to the publishing client. */
	if ((options & ROOST_SUBOPT_NO_LOCAL) && s == fc->origin)
		return true;
	uint8_t qos = options & ROOST_SUBOPT_QOS;
	uint8_t rap = options & ROOST_SUBOPT_RETAIN_AS_PUB ? ROOST_DELIVER_RETAIN : 0;
	roost_session_mark *mark = roost_session_mark_get(s);
	if (mark->seq == b->publish_seq) {
		fanout_target *t = &b->targets[mark->index];
		if (qos > t->qos)
			t->qos = qos;
		t->rap |= rap;
		return true;
	}
	mark->seq = b->publish_seq;
	mark->index = (uint32_t)b->n_targets;
	return push_target(b, s, qos, rap);
}

/*
 * A share group: the message goes to one member [MQTT-4.8.2-3], the first
 * in round-robin order that is connected with room in its window; when no
 * member is, to the one whose turn it is (its session keeps it for later).
 * Not merged with the member's own plain subscriptions: a shared and a
 * non-shared subscription each get their copy (MQTT 5.0 4.8.2).
 */
/* The member of g whose turn it is among those ready, else whose turn it is. */
static roost_session *share_pick(roost_broker *b, roost_topic_share *g, uint8_t *options)
{
	uint32_t n = roost_topic_share_size(g), pick = 0;
	for (uint32_t i = 0; i < n; i++) {
		roost_session *s = roost_topic_share_member(g, i, options);
		void *sink_ctx;
		roost_conn *c = roost_session_conn(s);
		if (roost_session_sink(s, &sink_ctx) ||
		    (c && c->state == CONN_ACTIVE && roost_session_inflight_len(s) < window(b, c).max_inflight)) {
			pick = i;
			break;
		}
	}
	roost_session *s = roost_topic_share_member(g, pick, options);
	roost_topic_share_chosen(g, pick);
	return s;
}

static bool collect_share(void *ctx, roost_topic_share *g)
{
	fanout_ctx *fc = ctx;
	uint8_t options;
	roost_session *s = share_pick(fc->b, g, &options);
	return push_target(fc->b, s, options & ROOST_SUBOPT_QOS,
	                   options & ROOST_SUBOPT_RETAIN_AS_PUB ? ROOST_DELIVER_RETAIN : 0);
}

/*
 * A member's session ends (it left its groups already): its QoS 1 messages
 * not yet acknowledged, and those it had queued, go to another member of
 * the group they matched [MQTT-4.8.2-4]; a QoS 2 delivery under way stays
 * with its member and ends with it [MQTT-4.8.2-5]. A message that matched
 * several of its groups goes to each of them once.
 */
typedef struct handover {
	roost_broker *b;
	roost_session *s;
	roost_msg *msg;
} handover;

static bool handover_sub(void *ctx, const char *filter, size_t len, uint8_t options)
{
	(void)options;
	handover *h = ctx;
	const char *group, *rest;
	size_t glen, rlen;
	if (roost_topic_share_parse(filter, len, &group, &glen, &rest, &rlen) != 1 ||
	    !roost_topic_matches(rest, rlen, h->msg->topic, h->msg->topic_len))
		return true;
	roost_topic_share *g = roost_topic_tree_share_find(h->b->tree, filter, len);
	if (!g)
		return true; /* it was the last member */
	uint8_t o;
	roost_session *to = share_pick(h->b, g, &o);
	uint8_t qos = (o & ROOST_SUBOPT_QOS) < h->msg->qos ? o & ROOST_SUBOPT_QOS : h->msg->qos;
	deliver(h->b, to, h->msg, qos);
	return true;
}

static void handover_queued(void *ctx, roost_msg *msg, uint8_t qos)
{
	handover *h = ctx;
	if (!(qos & ROOST_DELIVER_QOS_MASK))
		return;
	h->msg = msg;
	roost_session_sub_foreach(h->s, handover_sub, h);
}

static void handover_inflight(void *ctx, roost_inflight *slot)
{
	if (slot->state == ROOST_INFLIGHT_WAIT_PUBACK)
		handover_queued(ctx, slot->msg, slot->qos);
}

static void shares_hand_over(roost_broker *b, roost_session *s)
{
	handover h = {b, s, NULL};
	roost_session_inflight_foreach(s, handover_inflight, &h);
	roost_session_queue_foreach(s, handover_queued, &h);
}

/* limits.max_retained_messages: a message on a topic with nothing retained
 * yet may not add one beyond the cap (replacing and clearing always work).
 * Logged at the 1st, 2nd, 4th ... refusal. */
static bool retain_room(roost_broker *b, const roost_msg *msg)
{
	uint32_t cap = b->cfg->limits.max_retained_messages;
	if (!cap || msg->payload_len == 0 || roost_topic_tree_retained_count(b->tree) < cap ||
	    roost_topic_tree_retain_find(b->tree, msg->topic, msg->topic_len))
		return true;
	uint64_t n = ++b->retain_refused;
	if (!(n & (n - 1)))
		roost_log_warn(b->log, "retained message on new topic %.*s not kept: limits.max_retained_messages "
		               "(%u) reached; %llu refused so far", msg->topic_len > 200 ? 200 : (int)msg->topic_len,
		               msg->topic, cap, (unsigned long long)n);
	return false;
}

/* False when the message was not kept (limits.max_retained_messages). */
static bool retain_store(roost_broker *b, roost_msg *msg)
{
	void *old = NULL;
	roost_err err;
	if (!retain_room(b, msg))
		return false;
	if (msg->payload_len == 0) {
		/* [MQTT-3.3.1-10] a zero-length retained message removes the
		 * retained message; [MQTT-3.3.1-11] and is not stored. */
		err = roost_topic_tree_retain_set(b->tree, msg->topic, msg->topic_len, NULL, &old);
	} else {
		/* [MQTT-3.3.1-5] store it, replacing any previous one. */
		err = roost_topic_tree_retain_set(b->tree, msg->topic, msg->topic_len, msg, &old);
		if (!err)
			roost_msg_ref(msg);
	}
	if (err && err != ROOST_ERR_NOT_FOUND)
		roost_log_error(b->log, "retained message on %s not stored: %s", msg->topic,
		                roost_err_str(err));
	else
		broker_store_retain(b, msg);
	roost_msg_unref(old);
	return !err || err == ROOST_ERR_NOT_FOUND;
}

roost_err broker_publish_from(roost_broker *b, roost_msg *msg, const roost_session *origin,
                              broker_publish_result *res)
{
	broker_publish_result r = {.retained = true};
	if (msg->retain)
		r.retained = retain_store(b, msg);
	b->publish_seq++;
	b->n_targets = 0;
	fanout_ctx fc = {b, origin};
	roost_topic_tree_match_shared(b->tree, msg->topic, msg->topic_len, collect_target, collect_share, &fc);
	r.receivers = b->n_targets;
	for (size_t i = 0; i < b->n_targets; i++) {
		fanout_target *t = &b->targets[i];
		/* [MQTT-3.8.4-6] deliver at the lower of published and granted QoS;
		 * live forwarding has RETAIN 0 unless Retain As Published
		 * [MQTT-3.3.1-12], [MQTT-3.3.1-13]. */
		uint8_t qos = t->qos < msg->qos ? t->qos : msg->qos;
		deliver(b, t->s, msg, (uint8_t)(qos | (msg->retain ? t->rap : 0)));
	}
	if (res)
		*res = r;
	return ROOST_OK;
}

void broker_retain(roost_broker *b, roost_msg *msg)
{
	retain_store(b, msg);
}

roost_err broker_publish(roost_broker *b, roost_msg *msg)
{
	return broker_publish_from(b, msg, NULL, NULL);
}

/* The component path (the HTTP API, the example component, a third
 * party's): the same decision as a client's PUBLISH, refused with an error
 * the component can report (HTTP 403 / 400). */
roost_err roost_broker_publish(roost_broker *b, roost_msg *msg)
{
	const char *why = NULL;
	roost_err err = broker_authz_publish(b, NULL, NULL, NULL, msg->topic, msg->topic_len, &why);
	if (err) {
		roost_log_notice(b->log, "component publish to %.*s refused: %s", msg->topic_len > 200 ? 200 : (int)msg->topic_len,
		                 msg->topic, why);
		return err;
	}
	return broker_publish(b, msg);
}

typedef struct retained_ctx {
	roost_broker *b;
	roost_session *s;
	uint8_t qos;
} retained_ctx;

/* [MQTT-3.3.1-6] retained messages sent on subscribe carry RETAIN 1. They
 * take the same path as live messages, so the window, the ordering rules
 * and the receiver's rights hold for them too. */
static bool send_retained_visit(void *ctx, void *value)
{
	retained_ctx *r = ctx;
	roost_msg *msg = value;
	deliver(r->b, r->s, msg, (msg->qos < r->qos ? msg->qos : r->qos) | ROOST_DELIVER_RETAIN);
	return true;
}

void broker_send_retained(roost_broker *b, roost_session *s, const char *filter, size_t len,
                          uint8_t qos)
{
	retained_ctx ctx = {b, s, qos};
	roost_topic_tree_retain_match(b->tree, filter, len, send_retained_visit, &ctx);
}

/* ---- component API ---- */

struct event_base *roost_broker_base(roost_broker *b) { return b->base; }
const roost_log *roost_broker_log(roost_broker *b) { return b->log; }
const roost_config *roost_broker_config(roost_broker *b) { return b->cfg; }
roost_bus *roost_broker_bus(roost_broker *b) { return b->bus; }

roost_err roost_broker_subscribe(roost_broker *b, const char *filter, uint8_t qos, roost_msg_fn fn,
                                 void *ctx, roost_broker_sub **out)
{
	size_t flen = strlen(filter);
	if (!roost_topic_filter_valid((const uint8_t *)filter, flen) || qos > 2)
		return ROOST_ERR_BAD_TOPIC;
	char id[48];
	/* Component sessions are not in the client-id map: no client can take
	 * them over, and they never see a CONNECT. */
	snprintf(id, sizeof id, "$component/%llu", (unsigned long long)++b->component_ids);
	roost_broker_sub *sub = roost_calloc(1, sizeof *sub);
	if (!sub)
		return ROOST_ERR_NOMEM;
	sub->s = roost_session_new(id, strlen(id), true);
	sub->filter = roost_strdup(filter);
	if (!sub->s || !sub->filter ||
	    roost_topic_tree_subscribe(b->tree, filter, flen, sub->s, qos, NULL) != ROOST_OK) {
		roost_session_free(sub->s);
		roost_free(sub->filter);
		roost_free(sub);
		return ROOST_ERR_NOMEM;
	}
	roost_session_set_sink(sub->s, fn, ctx);
	sub->next = b->component_subs;
	if (sub->next)
		sub->next->prev = sub;
	b->component_subs = sub;
	if (out)
		*out = sub;
	if (filter[0] == '$')
		broker_sys_subscribed(b); /* only a '$' filter matches $SYS [MQTT-4.7.2-1] */
	return ROOST_OK;
}

void roost_broker_unsubscribe(roost_broker *b, roost_broker_sub *sub)
{
	if (!sub)
		return;
	roost_topic_tree_unsubscribe(b->tree, sub->filter, strlen(sub->filter), sub->s);
	if (sub->prev)
		sub->prev->next = sub->next;
	else
		b->component_subs = sub->next;
	if (sub->next)
		sub->next->prev = sub->prev;
	roost_session_free(sub->s);
	roost_free(sub->filter);
	roost_free(sub);
}


roost_err roost_broker_service_add(roost_broker *b, const char *name, void *iface)
{
	if (roost_broker_service_find(b, name))
		return ROOST_ERR_EXISTS;
	size_t len = strlen(name);
	struct service *s = roost_malloc(sizeof *s + len + 1);
	if (!s)
		return ROOST_ERR_NOMEM;
	memcpy(s->name, name, len + 1);
	s->iface = iface;
	s->next = b->services;
	b->services = s;
	return ROOST_OK;
}

void roost_broker_service_remove(roost_broker *b, const char *name)
{
	for (struct service **pp = &b->services; *pp; pp = &(*pp)->next) {
		if (strcmp((*pp)->name, name) == 0) {
			struct service *s = *pp;
			*pp = s->next;
			roost_free(s);
			return;
		}
	}
}

void *roost_broker_service_find(const roost_broker *b, const char *name)
{
	for (const struct service *s = b->services; s; s = s->next)
		if (strcmp(s->name, name) == 0)
			return s->iface;
	return NULL;
}

/* ---- administration ---- */

void roost_broker_clients_foreach(roost_broker *b, bool (*visit)(void *ctx, const roost_client_info *ci),
                                  void *ctx)
{
	uint64_t now = roost_clock_now(&b->clock);
	for (const session_entry *e = b->sessions; e; e = e->hh.next) {
		const roost_session *s = e->s;
		const roost_conn *c = roost_session_conn(s);
		roost_client_info ci = {
			.client_id = roost_session_client_id(s),
			.username = roost_session_username(s),
			.addr = c ? c->addr : NULL,
			.version = c ? c->version : 0,
			.persistent = !roost_session_clean(s),
			.idle_ms = c ? now - c->last_rx_ms : 0,
			.subscriptions = roost_session_sub_count(s),
			.queued = roost_session_queue_len(s),
			.inflight = roost_session_inflight_len(s),
		};
		if (!visit(ctx, &ci))
			return;
	}
}

roost_err roost_broker_client_disconnect(roost_broker *b, const char *client_id)
{
	roost_session *s = broker_session_find(b, client_id, strlen(client_id));
	roost_conn *c = s ? roost_session_conn(s) : NULL;
	if (!c || c->state == CONN_DEAD)
		return ROOST_ERR_NOT_FOUND;
	/* v5: DISCONNECT 0x98 administrative action */
	conn_disconnect(c, ROOST_RC5_ADMIN_ACTION, "disconnected through the HTTP API");
	return ROOST_OK;
}

roost_err roost_broker_session_remove(roost_broker *b, const char *client_id)
{
	roost_session *s = broker_session_find(b, client_id, strlen(client_id));
	if (!s)
		return ROOST_ERR_NOT_FOUND;
	if (roost_session_conn(s))
		return ROOST_ERR_EXISTS;
	roost_log_notice(b->log, "session %s removed through the HTTP API", client_id);
	broker_session_destroy(b, s);
	return ROOST_OK;
}

typedef struct retained_visit_ctx {
	bool (*visit)(void *ctx, const roost_msg *msg);
	void *ctx;
} retained_visit_ctx;

static bool retained_visit(void *ctx, void *value)
{
	retained_visit_ctx *r = ctx;
	return r->visit(r->ctx, value);
}

roost_err roost_broker_retained_foreach(roost_broker *b, const char *filter,
                                        bool (*visit)(void *ctx, const roost_msg *msg), void *ctx)
{
	size_t len = strlen(filter);
	if (!roost_topic_filter_valid((const uint8_t *)filter, len))
		return ROOST_ERR_BAD_TOPIC;
	retained_visit_ctx r = {visit, ctx};
	roost_topic_tree_retain_match(b->tree, filter, len, retained_visit, &r);
	return ROOST_OK;
}
