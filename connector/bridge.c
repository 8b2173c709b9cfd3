/*
 * bridge.c — the bridges component: carry topics to and from other brokers
 * (bridges: in roost.yaml), Mosquitto's bridge with a queue that survives a
 * crash.
 *
 *   local broker                         bridge                       upstream
 *   roost_broker_subscribe(local_prefix+pattern) ─► out ─┐
 *     QoS 0: sent at once while up                      ├─► mqtt_client ─► remote_prefix+pattern
 *     QoS 1/2: durable queue ─► window of 20 ─► PUBACK/PUBCOMP acks the queue
 *   roost_broker_publish(local_prefix+rest) ◄── in ◄──── mqtt_client ◄── SUBSCRIBE remote_prefix+pattern
 *
 * Durability: the QoS 1/2 append happens in the internal subscriber's
 * callback, synchronously on the publishing client's packet handling, so the
 * broker's group commit holds that client's PUBACK until the append is on
 * disk: "acknowledged locally" means "will reach the upstream" (unless
 * max_queued_messages drops it, counted and logged). A message leaves the
 * queue only when the upstream acknowledged it; after a reconnect (or a
 * restart) the window is resent, in order, with the same packet ids (they
 * follow the queue's sequence numbers, which survive restarts).
 *
 * No loops: a message this bridge publishes locally is recognised by its
 * own subscriber (the same roost_msg, called in place) and not sent back
 * out; the CONNECT carries Mosquitto's bridge flag, so a Mosquitto upstream
 * does not send our messages back; and for upstreams that do, a message
 * sent out that comes straight back in (same topic and payload within 5 s)
 * is dropped and counted (bridge_map.h's echo filter).
 *
 * State: $SYS/broker/connection/<name>/state retained 1/0 locally; with
 * notifications, the birth (1, retained) after each connect and the will
 * (0, retained) on the upstream at $SYS/broker/connection/<client id>/state
 * or notification_topic.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "roost/alloc.h"
#include "roost/broker.h"
#include "roost/codec.h"
#include "roost/component.h"
#include "roost/queue.h"
#include "roost/sys_publish.h"
#include "roost/topic.h"

#include "bridge.h"
#include "bridge_map.h"
#include "mqtt_client.h"

#define BRIDGE_WINDOW 20           /* QoS 1/2 messages in flight to the upstream */
#define BRIDGE_ECHO_WINDOW_MS 5000 /* "comes straight back" */

typedef struct bridge bridge;

typedef struct btopic {
	bridge *br;
	const roost_bridge_topic_config *cfg;
	char *local;   /* local_prefix + pattern */
	char *remote;  /* remote_prefix + pattern */
	roost_broker_sub *sub; /* out / both */
} btopic;

typedef struct inflight {
	uint64_t seq;
	uint16_t pid;
	bool acked;
} inflight;

struct bridge {
	roost_broker *b;
	const roost_bridge_config *cfg;
	const roost_log *log;
	char label[96];
	char keys[32];          /* "bridges[N]." */
	char client_id[160];
	char local_state[128];  /* under $SYS/broker/ */
	char *remote_state;     /* will/birth topic on the upstream; NULL without notifications */
	btopic *topics;
	size_t n_topics;
	roost_mqtt_client_sub *subs;
	size_t n_subs;
	roost_mqtt_client_tls tls;
	roost_mqtt_client *mqtt;
	roost_queue *queue;
	inflight win[BRIDGE_WINDOW];
	size_t n_win;
	uint64_t last_sent;     /* highest queue seq written to the upstream on this connection */
	roost_msg *inbound;     /* the message this bridge is publishing locally right now */
	roost_msg *last_out;    /* the last message sent out (one reference): overlap dedup */
	roost_bridge_echo echo;
	uint64_t sent, received, dropped_now, echoes, ups;
};

struct roost_bridges {
	roost_broker *b;
	bridge *v;
	size_t n;
};

static uint16_t pid_of(uint64_t seq) { return (uint16_t)((seq - 1) % 65535 + 1); }

static uint64_t now_ms(bridge *br)
{
	struct timeval tv;
	event_base_gettimeofday_cached(roost_broker_base(br->b), &tv);
	return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

static void set_local_state(bridge *br, bool up)
{
	roost_err err = roost_broker_sys_publish(br->b, br->local_state, up ? "1" : "0", 1, true);
	if (err)
		roost_log_warn(br->log, "%s: cannot publish $SYS/broker/%s: %s", br->label, br->local_state,
		               roost_err_str(err));
}

/* ---- out: local -> upstream ------------------------------------------ */

/* Write queue entries after last_sent into the window; dup for the ones
 * already written on an earlier connection (seq <= resent_upto). */
static void pump(bridge *br, uint64_t resent_upto)
{
	if (!br->mqtt || !roost_mqtt_client_up(br->mqtt))
		return;
	while (br->n_win < BRIDGE_WINDOW) {
		roost_queue_item it[BRIDGE_WINDOW];
		size_t n = roost_queue_peek(br->queue, br->last_sent, it, BRIDGE_WINDOW - br->n_win);
		if (!n)
			return;
		for (size_t i = 0; i < n; i++) {
			roost_bridge_msg m;
			br->last_sent = it[i].seq;
			if (roost_bridge_body_decode(it[i].body, it[i].len, &m) != ROOST_OK) {
				roost_log_error(br->log, "%s: queued message %llu is unreadable: dropped", br->label,
				                (unsigned long long)it[i].seq);
				br->win[br->n_win++] = (inflight){it[i].seq, 0, true};
				continue;
			}
			uint16_t pid = pid_of(it[i].seq);
			roost_mqtt_client_publish(br->mqtt, m.topic, m.topic_len, m.payload, m.payload_len, m.qos, m.retain,
			                          pid, it[i].seq <= resent_upto);
			roost_bridge_echo_note(&br->echo, roost_bridge_echo_hash(m.topic, m.topic_len, m.payload, m.payload_len),
			                       now_ms(br));
			br->win[br->n_win++] = (inflight){it[i].seq, pid, false};
		}
	}
}

/* The upstream has packet id pid: the acknowledged head of the window
 * leaves the queue (in the broker's next group commit). */
static void on_acked(void *ctx, uint16_t pid)
{
	bridge *br = ctx;
	for (size_t i = 0; i < br->n_win; i++) {
		if (br->win[i].pid == pid && !br->win[i].acked) {
			br->win[i].acked = true;
			br->sent++;
			break;
		}
	}
	uint64_t upto = 0;
	size_t k = 0;
	while (k < br->n_win && br->win[k].acked)
		upto = br->win[k++].seq;
	if (!k)
		return;
	memmove(br->win, br->win + k, (br->n_win - k) * sizeof br->win[0]);
	br->n_win -= k;
	roost_queue_ack(br->queue, upto);
	pump(br, 0);
}

static void log_queue_full(bridge *br)
{
	uint64_t n = roost_queue_dropped(br->queue);
	if (!(n & (n - 1))) /* 1, 2, 4, 8 ...: a running count, never a flood */
		roost_log_warn(br->log, "%s: outbound queue full (%zu messages, max_queued_messages): dropped the "
		               "oldest; %llu dropped so far", br->label, roost_queue_max(br->queue), (unsigned long long)n);
}

/* QoS 1/2: into the durable queue, on the publisher's packet handling. */
static void queue_out(bridge *br, const char *topic, size_t tlen, const roost_msg *msg, uint8_t qos, bool retain)
{
	size_t n = roost_bridge_body_size(tlen, msg->payload_len);
	uint8_t *body = roost_malloc(n);
	bool dropped = false;
	roost_err err = ROOST_ERR_NOMEM;
	if (body) {
		roost_bridge_body_encode(body, topic, tlen, msg->payload, msg->payload_len, qos, retain);
		err = roost_queue_append(br->queue, body, n, NULL, &dropped);
		roost_free(body);
	}
	if (err) {
		br->dropped_now++;
		roost_log_warn(br->log, "%s: out of memory: a message on %s was not queued", br->label, msg->topic);
		return;
	}
	if (dropped)
		log_queue_full(br);
	pump(br, 0);
}

/* A local message on an out/both topic (called in place, on the publish path). */
static void on_local(void *ctx, roost_msg *msg, uint8_t qos)
{
	btopic *t = ctx;
	bridge *br = t->br;
	if (msg == br->inbound || msg == br->last_out)
		return; /* came in over this bridge / the same message through an overlapping topic */
	roost_msg_unref(br->last_out);
	br->last_out = roost_msg_ref(msg); /* held so its address cannot be reused */
	size_t cap = msg->topic_len + (t->cfg->remote_prefix ? strlen(t->cfg->remote_prefix) : 0) + 1, tlen;
	char *topic = roost_malloc(cap);
	if (!topic)
		return;
	if (!roost_bridge_map_topic(msg->topic, msg->topic_len, t->cfg->local_prefix, t->cfg->remote_prefix, topic, cap,
	                            &tlen) ||
	    tlen > 65535) {
		roost_free(topic);
		return;
	}
	bool retain = msg->retain && br->cfg->outgoing_retain;
	if (qos) {
		queue_out(br, topic, tlen, msg, qos, retain);
	} else if (roost_mqtt_client_publish(br->mqtt, topic, tlen, msg->payload, msg->payload_len, 0, retain, 0,
	                                     false) == ROOST_OK) {
		roost_bridge_echo_note(&br->echo, roost_bridge_echo_hash(topic, tlen, msg->payload, msg->payload_len),
		                       now_ms(br));
		br->sent++;
	} else {
		br->dropped_now++; /* QoS 0 while the upstream is away: nothing keeps it */
	}
	roost_free(topic);
}

/* ---- in: upstream -> local ------------------------------------------- */

static const btopic *inbound_topic(const bridge *br, const char *topic, size_t len)
{
	for (size_t i = 0; i < br->n_topics; i++) {
		const btopic *t = &br->topics[i];
		if (t->cfg->direction != ROOST_BRIDGE_OUT && roost_topic_matches(t->remote, strlen(t->remote), topic, len))
			return t;
	}
	return NULL;
}

static void on_remote(void *ctx, const char *topic, size_t len, const uint8_t *payload, size_t plen, uint8_t qos,
                      bool retain)
{
	bridge *br = ctx;
	roost_log_debug(br->log, "%s: in %.*s (%zu bytes, QoS %u%s)", br->label, (int)len, topic, plen, qos,
	                retain ? ", retained" : "");
	if (roost_bridge_echo_take(&br->echo, roost_bridge_echo_hash(topic, len, payload, plen), now_ms(br),
	                           BRIDGE_ECHO_WINDOW_MS)) {
		br->echoes++;
		return;
	}
	const btopic *t = inbound_topic(br, topic, len);
	if (!t)
		return; /* an overlap of the upstream's own subscriptions: not ours */
	size_t cap = len + (t->cfg->local_prefix ? strlen(t->cfg->local_prefix) : 0) + 1, llen;
	char *local = roost_malloc(cap);
	if (!local || !roost_bridge_map_topic(topic, len, t->cfg->remote_prefix, t->cfg->local_prefix, local, cap, &llen)) {
		roost_free(local);
		return;
	}
	roost_msg *m = roost_msg_new(local, llen, payload, plen, qos, retain);
	roost_free(local);
	if (!m)
		return;
	br->inbound = m; /* our own subscriber sees it in place and lets it be */
	if (roost_broker_publish(br->b, m) == ROOST_OK)
		br->received++;
	br->inbound = NULL;
	roost_msg_unref(m);
}

/* ---- connection state ------------------------------------------------ */

static void on_up(void *ctx, bool session_present)
{
	bridge *br = ctx;
	(void)session_present;
	if (br->ups++)
		roost_log_info(br->log, "%s: %zu queued messages to deliver", br->label, roost_queue_count(br->queue));
	set_local_state(br, true);
	if (br->remote_state)
		roost_mqtt_client_publish(br->mqtt, br->remote_state, strlen(br->remote_state), (const uint8_t *)"1", 1, 0,
		                          true, 0, false);
	/* Resend the window from the queue's head, in order, with its ids. */
	uint64_t resent_upto = br->last_sent;
	br->n_win = 0;
	br->last_sent = 0;
	pump(br, resent_upto);
}

static void on_down(void *ctx)
{
	set_local_state(ctx, false);
}

/* ---- setup ----------------------------------------------------------- */

static roost_err config_error(bridge *br, const char *fmt, const char *what)
{
	const roost_config *cfg = roost_broker_config(br->b);
	char msg[300];
	snprintf(msg, sizeof msg, fmt, what);
	roost_log_error(br->log, "%s: %s%s", cfg->path ? cfg->path : "configuration", br->keys, msg);
	return ROOST_ERR_CONFIG;
}

static roost_err setup_topics(bridge *br)
{
	const roost_bridge_config *bc = br->cfg;
	if (bc->n_topics == 0)
		return config_error(br, "topics: at least one topic is required%s", "");
	br->topics = roost_calloc(bc->n_topics, sizeof *br->topics);
	br->subs = roost_calloc(bc->n_topics, sizeof *br->subs);
	if (!br->topics || !br->subs)
		return ROOST_ERR_NOMEM;
	for (size_t i = 0; i < bc->n_topics; i++, br->n_topics++) {
		const roost_bridge_topic_config *tc = &bc->topics[i];
		btopic *t = &br->topics[i];
		t->br = br;
		t->cfg = tc;
		if (!roost_bridge_prefix_valid(tc->local_prefix) || !roost_bridge_prefix_valid(tc->remote_prefix))
			return config_error(br, "topics: the prefixes of '%s' must not hold '+' or '#'", tc->pattern);
		t->local = roost_bridge_join(tc->local_prefix, tc->pattern);
		t->remote = roost_bridge_join(tc->remote_prefix, tc->pattern);
		if (!t->local || !t->remote)
			return ROOST_ERR_NOMEM;
		if (!roost_topic_filter_valid((const uint8_t *)t->local, strlen(t->local)) ||
		    !roost_topic_filter_valid((const uint8_t *)t->remote, strlen(t->remote)))
			return config_error(br, "topics: '%s' (with its prefixes) is not a valid topic filter", tc->pattern);
		if (tc->direction != ROOST_BRIDGE_IN) {
			roost_err err = roost_broker_subscribe(br->b, t->local, (uint8_t)tc->qos, on_local, t, &t->sub);
			if (err)
				return err;
		}
		if (tc->direction != ROOST_BRIDGE_OUT)
			br->subs[br->n_subs++] = (roost_mqtt_client_sub){t->remote, (uint8_t)tc->qos};
	}
	return ROOST_OK;
}

static roost_err setup_names(bridge *br, size_t index)
{
	const roost_bridge_config *bc = br->cfg;
	snprintf(br->label, sizeof br->label, "bridge %s", bc->name);
	snprintf(br->keys, sizeof br->keys, "bridges[%zu].", index);
	if (bc->client_id) {
		snprintf(br->client_id, sizeof br->client_id, "%s", bc->client_id);
	} else {
		char host[64] = "localhost";
		gethostname(host, sizeof host - 1);
		host[sizeof host - 1] = '\0';
		snprintf(br->client_id, sizeof br->client_id, "roost-%s-%s", bc->name, host);
	}
	snprintf(br->local_state, sizeof br->local_state, "connection/%s/state", bc->name);
	if (!bc->notifications)
		return ROOST_OK;
	if (bc->notification_topic) {
		br->remote_state = roost_strdup(bc->notification_topic);
	} else {
		br->remote_state = roost_malloc(strlen(br->client_id) + 40);
		if (br->remote_state)
			sprintf(br->remote_state, "$SYS/broker/connection/%s/state", br->client_id);
	}
	if (!br->remote_state)
		return ROOST_ERR_NOMEM;
	if (!roost_topic_name_valid((const uint8_t *)br->remote_state, strlen(br->remote_state)))
		return config_error(br, "notification_topic: '%s' is not a topic name", br->remote_state);
	return ROOST_OK;
}

static roost_err open_queue(bridge *br)
{
	char name[80];
	snprintf(name, sizeof name, "bridge.%s", br->cfg->name);
	roost_err err = roost_broker_queue_open(br->b, name, br->cfg->max_queued_messages, &br->queue);
	if (err == ROOST_ERR_INVALID)
		return config_error(br, "name: '%s' may only hold A-Z a-z 0-9 _ . - (at most 57 of them)", br->cfg->name);
	if (err)
		roost_log_error(br->log, "%s: cannot open its outbound queue: %s", br->label, roost_err_str(err));
	else if (roost_queue_count(br->queue))
		roost_log_notice(br->log, "%s: %zu queued messages from before the restart will be delivered", br->label,
		                 roost_queue_count(br->queue));
	return err;
}

static roost_err connect_upstream(bridge *br)
{
	const roost_bridge_config *bc = br->cfg;
	const roost_config *cfg = roost_broker_config(br->b);
	bool tls = bc->tls_cafile || bc->tls_certfile || bc->tls_keyfile || bc->tls_insecure >= 0;
	br->tls = (roost_mqtt_client_tls){bc->tls_cafile, bc->tls_certfile, bc->tls_keyfile, bc->tls_insecure == 1};
	if (!tls && bc->port == 8883)
		roost_log_warn(br->log, "%s: port 8883 is MQTT over TLS by convention, but %stls is not set", br->label,
		               br->keys);
	roost_mqtt_client_options o = {
		.label = br->label, .keys = br->keys, .config_path = cfg->path,
		.addresses = (const char *const *)bc->address, .n_addresses = bc->n_address, .port = bc->port,
		.client_id = br->client_id, .keepalive = (uint16_t)bc->keepalive, .clean_session = bc->clean_session,
		.bridge_flag = bc->try_private, .username = bc->username, .password = bc->password, .tls = tls ? &br->tls : NULL,
		.will_topic = br->remote_state, .will_payload = "0", .will_retain = true, .will_qos = 1,
		.subs = br->subs, .n_subs = br->n_subs, .max_packet = cfg->limits.max_packet_size,
	};
	roost_mqtt_client_handler h = {on_remote, on_up, on_down, on_acked, br};
	return roost_mqtt_client_new(roost_broker_base(br->b), br->log, &o, &h, &br->mqtt);
}

static roost_err bridge_start(bridge *br, roost_broker *b, const roost_bridge_config *bc, size_t index)
{
	br->b = b;
	br->cfg = bc;
	br->log = roost_broker_log(b);
	roost_err err = setup_names(br, index);
	if (!err)
		err = open_queue(br);
	if (!err)
		err = setup_topics(br);
	if (!err)
		err = connect_upstream(br);
	if (err)
		return err;
	set_local_state(br, false);
	roost_log_info(br->log, "%s: %zu topics with %s%s as %s", br->label, br->n_topics, bc->address[0],
	               bc->n_address > 1 ? " (and failover addresses)" : "", br->client_id);
	return ROOST_OK;
}

static void bridge_stop(bridge *br)
{
	if (br->queue) {
		roost_log_notice(br->log, "%s: %llu sent, %llu received, %zu queued, %llu dropped, %llu echoes dropped, "
		                 "%llu reconnects", br->label, (unsigned long long)br->sent,
		                 (unsigned long long)br->received, roost_queue_count(br->queue),
		                 (unsigned long long)(roost_queue_dropped(br->queue) + br->dropped_now),
		                 (unsigned long long)br->echoes, (unsigned long long)(br->ups ? br->ups - 1 : 0));
		set_local_state(br, false);
	}
	roost_mqtt_client_free(br->mqtt);
	for (size_t i = 0; i < br->n_topics; i++) {
		roost_broker_unsubscribe(br->b, br->topics[i].sub);
		roost_free(br->topics[i].local);
		roost_free(br->topics[i].remote);
	}
	roost_free(br->topics);
	roost_free(br->subs);
	roost_free(br->remote_state);
	roost_queue_close(br->queue);
	roost_msg_unref(br->last_out);
}

size_t roost_bridges_stats(const roost_bridges *bs, roost_bridge_stats *out, size_t cap)
{
	for (size_t i = 0; i < bs->n && i < cap; i++) {
		const bridge *br = &bs->v[i];
		out[i] = (roost_bridge_stats){
			.name = br->cfg->name, .up = br->mqtt && roost_mqtt_client_up(br->mqtt), .sent = br->sent,
			.received = br->received, .queued = roost_queue_count(br->queue),
			.dropped = roost_queue_dropped(br->queue) + br->dropped_now, .echoes = br->echoes,
			.reconnects = br->ups ? br->ups - 1 : 0,
		};
	}
	return bs->n;
}

/* ---- component ------------------------------------------------------- */

static void stop(void *state)
{
	roost_bridges *bs = state;
	if (!bs)
		return;
	roost_broker_service_remove(bs->b, "bridges");
	for (size_t i = 0; i < bs->n; i++)
		bridge_stop(&bs->v[i]);
	roost_free(bs->v);
	roost_free(bs);
}

static roost_err start(roost_broker *b, void **state)
{
	*state = NULL;
	const roost_config *cfg = roost_broker_config(b);
	if (cfg->n_bridges == 0)
		return ROOST_OK;
	roost_bridges *bs = roost_calloc(1, sizeof *bs);
	if (!bs)
		return ROOST_ERR_NOMEM;
	bs->b = b;
	bs->v = roost_calloc(cfg->n_bridges, sizeof *bs->v);
	roost_err err = bs->v ? ROOST_OK : ROOST_ERR_NOMEM;
	for (size_t i = 0; !err && i < cfg->n_bridges; i++) {
		for (size_t j = 0; j < i; j++)
			if (strcmp(cfg->bridges[i].name, cfg->bridges[j].name) == 0) {
				roost_log_error(roost_broker_log(b), "%s: bridges[%zu].name: '%s' is already the name of "
				                "bridges[%zu]", cfg->path ? cfg->path : "configuration", i, cfg->bridges[i].name, j);
				err = ROOST_ERR_CONFIG;
			}
		bs->n++;
		if (!err)
			err = bridge_start(&bs->v[i], b, &cfg->bridges[i], i);
	}
	if (!err)
		err = roost_broker_service_add(b, "bridges", bs);
	if (err) {
		stop(bs);
		return err;
	}
	*state = bs;
	return ROOST_OK;
}

/* Not optional: a configured bridge that cannot start is a configuration
 * problem (its queue would otherwise fill silently). */
const roost_component roost_bridge_component = {.name = "bridge", .start = start, .stop = stop, .optional = false};
