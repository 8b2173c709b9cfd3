/*
 * store.c — the broker's side of the durable store.
 *
 * - The session journal of every persistent session writes through to the
 *   store; retained changes do too.
 * - Group commit: the first write after a commit activates commit_ev, an
 *   event at the lowest priority, so it runs once the loop has handled every
 *   ready connection in this pass. Then one COMMIT covers them all.
 * - After each commit attempt the owner is told through b->commit_done
 *   (the connection module's conn_commit_done, which releases the
 *   acknowledgements that waited for it or closes those connections). This
 *   file knows nothing of connections: broker_store_writes() lets the
 *   connection module see whether a packet's handling wrote.
 * - At startup, retained messages, sessions, subscriptions, queued and
 *   inflight deliveries and QoS 2 ids are loaded before the listeners open.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"
#include "roost/alloc.h"
#include "sys.h"

/* ---- journal: session changes -> store ---- */

static void j_delivery_add(void *ctx, roost_session *s, uint64_t seq, roost_msg *msg, uint8_t qos,
                           uint16_t packet_id, uint8_t state)
{
	roost_broker *b = ctx;
	roost_persist_delivery_add(b->store, roost_session_client_id(s), seq, msg,
	                           qos & ROOST_DELIVER_QOS_MASK, packet_id, state);
}

static void j_delivery_update(void *ctx, roost_session *s, uint64_t seq, uint16_t packet_id, uint8_t state)
{
	roost_broker *b = ctx;
	roost_persist_delivery_update(b->store, roost_session_client_id(s), seq, packet_id, state);
}

static void j_delivery_remove(void *ctx, roost_session *s, uint64_t seq, uint64_t store_id)
{
	roost_broker *b = ctx;
	roost_persist_delivery_remove(b->store, roost_session_client_id(s), seq, store_id);
}

static void j_sub(void *ctx, roost_session *s, const char *filter, size_t len, uint8_t options, bool added)
{
	roost_broker *b = ctx;
	if (added)
		roost_persist_sub_set(b->store, roost_session_client_id(s), filter, len, options);
	else
		roost_persist_sub_remove(b->store, roost_session_client_id(s), filter, len);
}

static void j_qos2(void *ctx, roost_session *s, uint16_t packet_id, bool added)
{
	roost_broker *b = ctx;
	roost_persist_qos2_set(b->store, roost_session_client_id(s), packet_id, added);
}

static const roost_session_journal journal = {
	.delivery_add = j_delivery_add,
	.delivery_update = j_delivery_update,
	.delivery_remove = j_delivery_remove,
	.sub = j_sub,
	.qos2_in = j_qos2,
};

void broker_store_session_added(roost_broker *b, roost_session *s)
{
	if (!b->store || roost_session_clean(s))
		return;
	roost_persist_session_add(b->store, roost_session_client_id(s));
	roost_session_set_journal(s, &journal, b);
}

void broker_store_session_owner(roost_broker *b, roost_session *s)
{
	if (b->store && !roost_session_clean(s))
		roost_persist_session_set_owner(b->store, roost_session_client_id(s), roost_session_username(s));
}

void broker_store_session_removed(roost_broker *b, roost_session *s)
{
	if (!b->store || roost_session_clean(s))
		return;
	roost_session_set_journal(s, NULL, NULL);
	roost_persist_session_remove(b->store, roost_session_client_id(s));
}

/* roost's own $SYS messages are figures of this run: never stored, so a
 * restart cannot bring back stale ones (and the many updates cost no disk
 * writes). */
static bool is_sys(const char *topic, size_t len)
{
	return len >= 4 && memcmp(topic, "$SYS", 4) == 0 && (len == 4 || topic[4] == '/');
}

void broker_store_retain(roost_broker *b, const roost_msg *msg)
{
	if (b->store && !is_sys(msg->topic, msg->topic_len))
		roost_persist_retain_set(b->store, msg);
}

/* ---- group commit ---- */

/* The commit latency histogram (roost_broker_stats.commit_le). */
static void count_commit(roost_broker_stats *st, uint64_t ms)
{
	static const uint64_t bounds[ROOST_STATS_COMMIT_BUCKETS] = ROOST_STATS_COMMIT_BOUNDS_MS;
	for (size_t i = 0; i < ROOST_STATS_COMMIT_BUCKETS; i++) {
		if (ms <= bounds[i]) {
			st->commit_le[i]++;
			break;
		}
	}
	st->commit_count++;
	st->commit_sum_ms += ms;
}

static void commit_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	roost_broker *b = arg;
	uint64_t t0 = roost_clock_now(&b->clock);
	roost_err err = roost_persist_commit(b->store);
	count_commit(&b->stats, roost_clock_now(&b->clock) - t0);
	if (err)
		roost_log_error(b->log, "store commit failed: nothing of this batch is acknowledged");
	if (b->commit_done)
		b->commit_done(b, err == ROOST_OK);
}

/*
 * A write opened a transaction: activate the commit. event_active appends it
 * to the loop's active queue, behind every connection already ready in this
 * pass, so their writes share the one commit.
 */
static void schedule_commit(void *ctx)
{
	broker_store_commit_soon(ctx);
}

void broker_store_commit_soon(roost_broker *b)
{
	if (b->commit_ev)
		event_active(b->commit_ev, 0, 0); /* a no-op when already active */
}

static uint64_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

uint64_t broker_store_size(const roost_broker *b)
{
	if (!b->store_path)
		return 0;
	char wal[PATH_MAX + 8];
	snprintf(wal, sizeof wal, "%s-wal", b->store_path);
	return file_size(b->store_path) + file_size(wal);
}

uint64_t broker_store_writes(const roost_broker *b)
{
	return b->store ? roost_persist_writes(b->store) : 0;
}

/* ---- load ---- */

/* What the load found in the file, counted as it comes (the retained count
 * of the tree would include roost's own $SYS messages, published later). */
typedef struct store_load {
	roost_broker *b;
	size_t retained, sessions, deliveries;
	roost_msg **dropped;       /* retained messages beyond the topic limits: removed after the load */
	size_t n_dropped, cap_dropped;
} store_load;

/* Remove, once the load's reads are done, the retained topics it left out. */
static void remove_dropped(store_load *l)
{
	for (size_t i = 0; i < l->n_dropped; i++) {
		roost_msg *m = l->dropped[i];
		roost_msg *gone = roost_msg_new(m->topic, m->topic_len, NULL, 0, 0, true);
		if (gone)
			roost_persist_retain_set(l->b->store, gone); /* an empty payload removes it */
		roost_msg_unref(gone);
		roost_msg_unref(m);
	}
	roost_free(l->dropped);
	l->dropped = NULL;
	l->n_dropped = l->cap_dropped = 0;
}

static void load_retained(void *ctx, roost_msg *msg)
{
	store_load *l = ctx;
	roost_broker *b = l->b;
	if (is_sys(msg->topic, msg->topic_len)) {
		/* Kept by an older roost: dropped from the file, replaced by this
		 * run's own figures. */
		roost_msg *del = roost_msg_new(msg->topic, msg->topic_len, NULL, 0, 0, true);
		if (del)
			roost_persist_retain_set(b->store, del);
		roost_msg_unref(del);
		roost_msg_unref(msg);
		return;
	}
	l->retained++;
	/* A retained topic beyond today's limits (stored before they were
	 * lowered, or by an older roost) is not loaded back: one 65,535-level
	 * topic would cost ~47 MB at every start. It is removed from the store
	 * once the load's reads are done (remove_dropped). */
	const roost_limits_config *lim = &b->cfg->limits;
	const char *why = NULL;
	if (roost_topic_check_limits(msg->topic, msg->topic_len, lim->max_topic_levels, lim->max_topic_length,
	                             &why) != ROOST_OK) {
		roost_log_warn(b->log, "store: retained message on %.*s%s not loaded: %s",
		               msg->topic_len > 64 ? 64 : (int)msg->topic_len, msg->topic, msg->topic_len > 64 ? "..." : "",
		               why);
		if (l->n_dropped == l->cap_dropped) {
			size_t cap = l->cap_dropped ? l->cap_dropped * 2 : 4;
			roost_msg **n = roost_realloc(l->dropped, cap * sizeof *n);
			if (!n) {
				roost_msg_unref(msg); /* stays in the file; still not loaded */
				return;
			}
			l->dropped = n;
			l->cap_dropped = cap;
		}
		l->dropped[l->n_dropped++] = msg;
		return;
	}
	void *old = NULL;
	if (roost_topic_tree_retain_set(b->tree, msg->topic, msg->topic_len, msg, &old) != ROOST_OK)
		roost_msg_unref(msg);
	roost_msg_unref(old);
}

static void load_session(void *ctx, const char *client_id)
{
	store_load *l = ctx;
	roost_broker *b = l->b;
	l->sessions++;
	roost_session *s = roost_session_new(client_id, strlen(client_id), false);
	if (!s || broker_session_add(b, s) != ROOST_OK) {
		roost_log_error(b->log, "store: out of memory restoring session %s", client_id);
		roost_session_free(s);
	}
}

static roost_session *loaded(roost_broker *b, const char *client_id);

/* The session's owner is known again: only that user may resume it. */
static void load_session_owner(void *ctx, const char *client_id, const char *owner)
{
	store_load *l = ctx;
	roost_session *s = loaded(l->b, client_id);
	if (s && roost_session_set_username(s, owner, owner ? strlen(owner) : 0) != ROOST_OK)
		roost_log_error(l->b->log, "store: out of memory restoring the owner of %s", client_id);
}

static roost_session *loaded(roost_broker *b, const char *client_id)
{
	roost_session *s = broker_session_find(b, client_id, strlen(client_id));
	if (!s)
		roost_log_error(b->log, "store: a row refers to unknown session %s; ignored", client_id);
	return s;
}

static void load_sub(void *ctx, const char *client_id, const char *filter, uint8_t options)
{
	roost_broker *b = ((store_load *)ctx)->b;
	roost_session *s = loaded(b, client_id);
	size_t len = strlen(filter);
	if (s && (roost_topic_tree_subscribe(b->tree, filter, len, s, options, NULL) != ROOST_OK ||
	          roost_session_sub_add(s, filter, len, options, NULL) != ROOST_OK))
		roost_log_error(b->log, "store: cannot restore subscription %s of %s", filter, client_id);
}

static void load_delivery(void *ctx, const char *client_id, uint64_t seq, roost_msg *msg, uint8_t qos,
                          uint16_t packet_id, uint8_t state, uint64_t store_id)
{
	store_load *l = ctx;
	roost_broker *b = l->b;
	l->deliveries++;
	roost_session *s = loaded(b, client_id);
	if (s && roost_session_restore(s, seq, msg, qos, packet_id, state, store_id) != ROOST_OK)
		roost_log_error(b->log, "store: cannot restore a delivery of %s", client_id);
}

static void load_qos2(void *ctx, const char *client_id, uint16_t packet_id)
{
	roost_broker *b = ((store_load *)ctx)->b;
	roost_session *s = loaded(b, client_id);
	if (s)
		roost_session_restore_qos2(s, packet_id);
}

roost_err broker_store_open(roost_broker *b)
{
	const roost_persistence_config *pc = &b->cfg->persistence;
	if (!pc->enabled) {
		roost_log_warn(b->log, "persistence is off (persistence.enabled: false): retained messages and "
		                       "persistent sessions live in memory only and are lost on restart");
		return ROOST_OK;
	}
	char path[PATH_MAX];
	roost_err err = roost_persist_resolve_path(pc->path, path, sizeof path);
	if (err) {
		roost_log_error(b->log, "persistence.path %s: too long", pc->path);
		return err;
	}
	roost_persist_options o = {
		.path = path,
		.sync = pc->sync ? ROOST_PERSIST_SYNC_FULL : ROOST_PERSIST_SYNC_NORMAL,
		.log = b->log,
		.clock = &b->clock,
	};
	err = roost_persist_open_ex(&o, &b->store);
	if (err) {
		/* persist logged why; systemd's Restart= retries. */
		roost_log_error(b->log, "roost cannot start: the store %s is unusable (%s)", path, roost_err_str(err));
		return err;
	}
	b->commit_ev = event_new(b->base, -1, 0, commit_cb, b);
	b->store_path = roost_strdup(path);
	if (!b->commit_ev || !b->store_path)
		return ROOST_ERR_NOMEM;
	roost_persist_set_on_dirty(b->store, schedule_commit, b);
	/* Components (the hub connector's spool) keep state in it too. */
	if (roost_broker_service_add(b, "store", b->store) != ROOST_OK)
		return ROOST_ERR_NOMEM;
	static const roost_persist_visitor v = {
		.retained = load_retained,
		.session = load_session,
		.session_owner = load_session_owner,
		.sub = load_sub,
		.delivery = load_delivery,
		.qos2 = load_qos2,
	};
	store_load l = {.b = b};
	err = roost_persist_load(b->store, &v, &l);
	remove_dropped(&l);
	if (err)
		roost_log_error(b->log, "store %s: loading stopped early (%s); what loaded is kept", path,
		                roost_err_str(err));
	/* The count of databases lost to corruption survives restarts (persist
	 * keeps it beside the file), visible to any client as a retained $SYS
	 * message. */
	char total[24];
	snprintf(total, sizeof total, "%llu", (unsigned long long)roost_persist_stats_get(b->store)->moved_aside_total);
	broker_sys_publish_text(b, "$SYS/broker/store/moved_aside", total);
	for (session_entry *e = b->sessions; e; e = e->hh.next)
		roost_session_set_journal(e->s, &journal, b);
	roost_log_notice(b->log,
	                 "store %s: loaded %zu retained messages, %zu persistent sessions, %zu queued or in-flight "
	                 "deliveries from the file (sync %s)",
	                 path, l.retained, l.sessions, l.deliveries, pc->sync ? "full" : "normal");
	return ROOST_OK;
}

void broker_store_close(roost_broker *b)
{
	if (b->commit_ev) {
		event_free(b->commit_ev);
		b->commit_ev = NULL;
	}
	if (b->store) {
		roost_broker_service_remove(b, "store");
		bool committed = roost_persist_commit(b->store) == ROOST_OK;
		if (b->commit_done)
			b->commit_done(b, committed);
		roost_persist_close(b->store);
		b->store = NULL;
	}
	roost_free(b->store_path);
	b->store_path = NULL;
}

roost_err roost_broker_open_store(roost_broker *b)
{
	return broker_store_open(b);
}
