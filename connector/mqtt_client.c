/*
 * mqtt_client.c — MQTT 3.1.1 client for an external broker; see
 * mqtt_client.h.
 *
 * States: IDLE (waiting for the reconnect timer) → RESOLVING → CONNECTING
 * (TCP) → CONNACK (CONNECT sent) → SUBACK (SUBSCRIBE sent) → UP. Any
 * failure goes back to IDLE through conn_lost(), which schedules the next
 * attempt. A dropped bufferevent is parked and freed from that timer, never
 * inside its own callback.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/rand.h>

#include "roost/alloc.h"
#include "roost/codec.h"

#include "hub_proto.h"
#include "hub_resolve.h"
#include "mqtt_client.h"

#define MQTT_CLIENT_BACKOFF_MAX 60 /* seconds */
#define MQTT_CLIENT_HANDSHAKE_S 10 /* TCP connect + CONNACK + SUBACK */
#define MQTT_CLIENT_SUB_PID 1

typedef enum client_state {
	ST_IDLE,
	ST_RESOLVING,
	ST_CONNECTING,
	ST_CONNACK,
	ST_SUBACK,
	ST_UP,
} client_state;

struct roost_mqtt_client {
	struct event_base *base;
	const roost_log *log;
	const roost_mqtt_config *cfg;
	const char *config_path;
	uint32_t max_packet;
	roost_mqtt_client_msg_fn fn;
	void *ctx;
	char *client_id;

	client_state state;
	struct bufferevent *bev;
	struct bufferevent *parked; /* dropped; freed from the reconnect timer */
	roost_resolve *resolving;
	size_t attempt;             /* rotates through the broker's addresses */
	struct event *reconnect;
	struct event *ping;         /* every keepalive seconds while UP */
	struct event *handshake;    /* deadline for CONNECTING .. SUBACK */
	bool ping_outstanding;
	uint32_t backoff_s;
	bool was_up;                /* connected at least once: log losses loudly */
	bool refused_logged;        /* a CONNACK refusal was logged at error level */
	uint8_t *qos2_pending;      /* bitset of inbound QoS 2 packet ids awaiting PUBREL */
};

static void conn_lost(roost_mqtt_client *c, const char *why, uint32_t delay_s);

/* ---- output ---------------------------------------------------------- */

static void send_bytes(roost_mqtt_client *c, const uint8_t *p, size_t n)
{
	if (c->bev)
		bufferevent_write(c->bev, p, n);
}

static void send_ack(roost_mqtt_client *c, uint8_t type, uint16_t pid)
{
	uint8_t buf[8];
	roost_ack a = {.packet_id = pid};
	size_t n = roost_encode_ack(buf, sizeof buf, ROOST_MQTT_V311, type, &a);
	send_bytes(c, buf, n);
}

static roost_err send_connect(roost_mqtt_client *c)
{
	const roost_mqtt_config *m = c->cfg;
	roost_connect k = {0};
	k.clean_start = true;
	k.keepalive = (uint16_t)m->keepalive;
	k.client_id = (roost_bytes){(const uint8_t *)c->client_id, strlen(c->client_id)};
	if (m->username) {
		k.username_flag = true;
		k.username = (roost_bytes){(const uint8_t *)m->username, strlen(m->username)};
	}
	if (m->password) {
		k.password_flag = true;
		k.password = (roost_bytes){(const uint8_t *)m->password, strlen(m->password)};
	}
	size_t n = roost_encode_connect(NULL, 0, ROOST_MQTT_V311, &k);
	uint8_t *buf = n ? roost_malloc(n) : NULL;
	if (!buf)
		return ROOST_ERR_NOMEM;
	roost_encode_connect(buf, n, ROOST_MQTT_V311, &k);
	send_bytes(c, buf, n);
	roost_free(buf);
	return ROOST_OK;
}

static roost_err send_subscribe(roost_mqtt_client *c)
{
	const roost_mqtt_config *m = c->cfg;
	roost_sub_entry *e = roost_calloc(m->n_topics, sizeof *e);
	if (!e)
		return ROOST_ERR_NOMEM;
	for (size_t i = 0; i < m->n_topics; i++) {
		e[i].filter = (roost_bytes){(const uint8_t *)m->topics[i], strlen(m->topics[i])};
		e[i].options = 2; /* QoS 2: messages come at the QoS they were published with */
	}
	roost_err err = ROOST_ERR_NOMEM;
	size_t n = roost_encode_subscribe(NULL, 0, ROOST_MQTT_V311, MQTT_CLIENT_SUB_PID, e, m->n_topics);
	uint8_t *buf = n ? roost_malloc(n) : NULL;
	if (buf) {
		roost_encode_subscribe(buf, n, ROOST_MQTT_V311, MQTT_CLIENT_SUB_PID, e, m->n_topics);
		send_bytes(c, buf, n);
		roost_free(buf);
		err = ROOST_OK;
	}
	roost_free(e);
	return err;
}

/* ---- input ----------------------------------------------------------- */

static const char *connack_reason(uint8_t code)
{
	switch (code) {
	case 1: return "unacceptable protocol version";
	case 2: return "client identifier rejected: check mqtt.client_id";
	case 3: return "server unavailable";
	case 4: return "bad user name or password: check mqtt.username and mqtt.password";
	case 5: return "not authorised: check mqtt.username and the broker's ACL";
	default: return "refused";
	}
}

static roost_err on_connack(roost_mqtt_client *c, const uint8_t *pkt, size_t len)
{
	roost_connack a;
	roost_codec_error e;
	if (c->state != ST_CONNACK || roost_decode_connack(pkt, len, ROOST_MQTT_V311, &a, &e) != ROOST_OK)
		return ROOST_ERR_PROTOCOL;
	if (a.code != 0) {
		char why[160];
		snprintf(why, sizeof why, "CONNACK %u, %s", a.code, connack_reason(a.code));
		if (!c->refused_logged)
			roost_log_error(c->log, "mqtt: broker %s:%d refused the connection (%s) — see %s",
			                c->cfg->broker, c->cfg->port, why, c->config_path);
		c->refused_logged = true;
		conn_lost(c, why, MQTT_CLIENT_BACKOFF_MAX);
		return ROOST_ERR_NOT_AUTHORIZED; /* connection already gone */
	}
	c->refused_logged = false;
	if (send_subscribe(c) != ROOST_OK)
		return ROOST_ERR_NOMEM;
	c->state = ST_SUBACK;
	return ROOST_OK;
}

static roost_err on_suback(roost_mqtt_client *c, const uint8_t *pkt, size_t len)
{
	roost_suback s;
	roost_codec_error e;
	if (c->state != ST_SUBACK || roost_decode_suback(pkt, len, ROOST_MQTT_V311, &s, &e) != ROOST_OK ||
	    s.packet_id != MQTT_CLIENT_SUB_PID || s.codes.len != c->cfg->n_topics)
		return ROOST_ERR_PROTOCOL;
	size_t refused = 0;
	for (size_t i = 0; i < s.codes.len; i++) {
		if (s.codes.ptr[i] & 0x80) {
			refused++;
			roost_log_error(c->log, "mqtt: broker %s:%d refused the subscription to '%s'",
			                c->cfg->broker, c->cfg->port, c->cfg->topics[i]);
		}
	}
	evtimer_del(c->handshake);
	bufferevent_set_timeouts(c->bev, NULL, NULL);
	c->state = ST_UP;
	c->backoff_s = 0;
	roost_log_notice(c->log, "mqtt: %s broker %s:%d as %s, subscribed to %zu of %zu topic filters",
	                 c->was_up ? "reconnected to" : "connected to", c->cfg->broker, c->cfg->port,
	                 c->client_id, c->cfg->n_topics - refused, c->cfg->n_topics);
	c->was_up = true;
	if (c->cfg->keepalive) {
		struct timeval tv = {(time_t)c->cfg->keepalive, 0};
		c->ping_outstanding = false;
		evtimer_add(c->ping, &tv);
	}
	return ROOST_OK;
}

static bool qos2_test_and_set(roost_mqtt_client *c, uint16_t pid, bool set)
{
	uint8_t bit = (uint8_t)(1u << (pid & 7));
	bool was = c->qos2_pending[pid >> 3] & bit;
	if (set)
		c->qos2_pending[pid >> 3] |= bit;
	else
		c->qos2_pending[pid >> 3] &= (uint8_t)~bit;
	return was;
}

static roost_err on_publish(roost_mqtt_client *c, const uint8_t *pkt, size_t len)
{
	roost_publish p;
	roost_codec_error e;
	if (c->state != ST_UP && c->state != ST_SUBACK)
		return ROOST_ERR_PROTOCOL;
	if (roost_decode_publish(pkt, len, ROOST_MQTT_V311, &p, &e) != ROOST_OK) {
		roost_log_warn(c->log, "mqtt: malformed PUBLISH from %s:%d: %s at byte %zu", c->cfg->broker,
		               c->cfg->port, e.why ? e.why : roost_err_str(e.err), e.offset);
		return ROOST_ERR_MALFORMED;
	}
	/* QoS 2: hand over on the first PUBLISH, remember the id until PUBREL
	 * so a resent PUBLISH (DUP) is acknowledged but not handed over twice. */
	bool dup = p.qos == 2 && qos2_test_and_set(c, p.packet_id, true);
	if (!dup)
		c->fn(c->ctx, (const char *)p.topic.ptr, p.topic.len, p.payload.ptr, p.payload.len, p.qos,
		      p.retain);
	if (p.qos == 1)
		send_ack(c, ROOST_MQTT_PUBACK, p.packet_id);
	else if (p.qos == 2)
		send_ack(c, ROOST_MQTT_PUBREC, p.packet_id);
	return ROOST_OK;
}

static roost_err on_packet(roost_mqtt_client *c, const roost_frame *f, const uint8_t *pkt)
{
	roost_ack a;
	roost_codec_error e;
	switch (f->type) {
	case ROOST_MQTT_CONNACK: return on_connack(c, pkt, f->total_len);
	case ROOST_MQTT_SUBACK: return on_suback(c, pkt, f->total_len);
	case ROOST_MQTT_PUBLISH: return on_publish(c, pkt, f->total_len);
	case ROOST_MQTT_PUBREL:
		if (roost_decode_ack(pkt, f->total_len, ROOST_MQTT_V311, &a, &e) != ROOST_OK)
			return ROOST_ERR_MALFORMED;
		qos2_test_and_set(c, a.packet_id, false);
		send_ack(c, ROOST_MQTT_PUBCOMP, a.packet_id);
		return ROOST_OK;
	case ROOST_MQTT_PINGRESP:
		if (roost_decode_empty(pkt, f->total_len, &e) != ROOST_OK)
			return ROOST_ERR_MALFORMED;
		c->ping_outstanding = false;
		return ROOST_OK;
	default:
		return ROOST_ERR_PROTOCOL; /* nothing else is sent to a client that publishes nothing */
	}
}

static void on_read(struct bufferevent *bev, void *arg)
{
	roost_mqtt_client *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	for (;;) {
		size_t avail = evbuffer_get_length(in);
		if (!avail)
			return;
		uint8_t hdr[ROOST_MQTT_MAX_FIXED_HEADER];
		size_t hn = avail < sizeof hdr ? avail : sizeof hdr;
		evbuffer_copyout(in, hdr, hn);
		roost_frame f;
		roost_codec_error e;
		roost_err err = roost_frame_peek(hdr, hn, c->max_packet, ROOST_MQTT_V311, &f, &e);
		if (err == ROOST_ERR_NEED_MORE && f.total_len == 0)
			return; /* length bytes incomplete */
		if (err != ROOST_OK && err != ROOST_ERR_NEED_MORE) {
			conn_lost(c, err == ROOST_ERR_TOO_LARGE ? "packet too large" : "malformed packet",
			          roost_hub_backoff_next(c->backoff_s, MQTT_CLIENT_BACKOFF_MAX));
			return;
		}
		if (avail < f.total_len)
			return; /* the body is still on its way */
		const uint8_t *pkt = evbuffer_pullup(in, (ev_ssize_t)f.total_len);
		if (!pkt) {
			conn_lost(c, "out of memory", roost_hub_backoff_next(c->backoff_s, MQTT_CLIENT_BACKOFF_MAX));
			return;
		}
		err = on_packet(c, &f, pkt);
		if (err == ROOST_ERR_NOT_AUTHORIZED)
			return; /* CONNACK refusal: conn_lost already ran */
		if (err) {
			char why[80];
			snprintf(why, sizeof why, "unexpected or invalid %s", roost_mqtt_type_name(f.type));
			conn_lost(c, why, roost_hub_backoff_next(c->backoff_s, MQTT_CLIENT_BACKOFF_MAX));
			return;
		}
		evbuffer_drain(in, f.total_len);
	}
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	roost_mqtt_client *c = arg;
	if (what & BEV_EVENT_CONNECTED) {
		if (send_connect(c) != ROOST_OK) {
			conn_lost(c, "out of memory", roost_hub_backoff_next(c->backoff_s, MQTT_CLIENT_BACKOFF_MAX));
			return;
		}
		c->state = ST_CONNACK;
		return;
	}
	char why[120];
	if (what & BEV_EVENT_EOF)
		snprintf(why, sizeof why, "closed by the broker");
	else
		snprintf(why, sizeof why, "%s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	conn_lost(c, why, roost_hub_backoff_next(c->backoff_s, MQTT_CLIENT_BACKOFF_MAX));
}

/* ---- connection lifecycle ------------------------------------------- */

static void park_bev(roost_mqtt_client *c)
{
	if (!c->bev)
		return;
	bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	/* Tell the broker now; the memory goes at the next timer tick. */
	evutil_socket_t fd = bufferevent_getfd(c->bev);
	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
	if (c->parked)
		bufferevent_free(c->parked); /* an older one: not in any callback */
	c->parked = c->bev;
	c->bev = NULL;
}

static void conn_lost(roost_mqtt_client *c, const char *why, uint32_t delay_s)
{
	bool was_up = c->state == ST_UP;
	park_bev(c);
	roost_resolve_cancel(c->resolving);
	c->resolving = NULL;
	evtimer_del(c->ping);
	evtimer_del(c->handshake);
	memset(c->qos2_pending, 0, 65536 / 8); /* clean session: ids start over */
	c->state = ST_IDLE;
	c->attempt++;
	c->backoff_s = delay_s;
	if (was_up)
		roost_log_warn(c->log, "mqtt: lost the connection to broker %s:%d (%s); reconnecting in %u s",
		               c->cfg->broker, c->cfg->port, why, delay_s);
	else if (c->attempt == 1 || !c->was_up)
		roost_log_warn(c->log, "mqtt: cannot connect to broker %s:%d (%s); retrying in %u s",
		               c->cfg->broker, c->cfg->port, why, delay_s);
	else
		roost_log_debug(c->log, "mqtt: still cannot connect to broker %s:%d (%s); retrying in %u s",
		                c->cfg->broker, c->cfg->port, why, delay_s);
	struct timeval tv = {(time_t)delay_s, 0};
	evtimer_add(c->reconnect, &tv);
}

static void on_resolved(void *arg, int gai_err, const struct addrinfo *ai)
{
	roost_mqtt_client *c = arg;
	c->resolving = NULL; /* freed by the resolver after this returns */
	uint32_t next = roost_hub_backoff_next(c->backoff_s, MQTT_CLIENT_BACKOFF_MAX);
	if (gai_err) {
		char why[200];
		snprintf(why, sizeof why, "cannot resolve %s: %s", c->cfg->broker, gai_strerror(gai_err));
		conn_lost(c, why, next);
		return;
	}
	const struct addrinfo *a = roost_resolve_nth(ai, c->attempt % roost_resolve_count(ai));
	c->bev = bufferevent_socket_new(c->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev) {
		conn_lost(c, "out of memory", next);
		return;
	}
	bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->state = ST_CONNECTING;
	/* May report a failure through on_event before it returns. */
	if (bufferevent_socket_connect(c->bev, a->ai_addr, (int)a->ai_addrlen) != 0 &&
	    c->state == ST_CONNECTING)
		conn_lost(c, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()), next);
}

static void on_handshake_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	roost_mqtt_client *c = arg;
	conn_lost(c, "no answer to CONNECT/SUBSCRIBE in time",
	          roost_hub_backoff_next(c->backoff_s, MQTT_CLIENT_BACKOFF_MAX));
}

static void on_reconnect(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	roost_mqtt_client *c = arg;
	if (c->parked) {
		bufferevent_free(c->parked);
		c->parked = NULL;
	}
	roost_log_info(c->log, "mqtt: connecting to broker %s:%d as %s", c->cfg->broker, c->cfg->port,
	               c->client_id);
	c->state = ST_RESOLVING;
	struct timeval tv = {MQTT_CLIENT_HANDSHAKE_S, 0};
	evtimer_add(c->handshake, &tv);
	if (roost_resolve_start(c->base, c->cfg->broker, c->cfg->port, on_resolved, c, &c->resolving) !=
	    ROOST_OK)
		conn_lost(c, "out of memory", roost_hub_backoff_next(c->backoff_s, MQTT_CLIENT_BACKOFF_MAX));
}

static void on_ping(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	roost_mqtt_client *c = arg;
	if (c->ping_outstanding) {
		conn_lost(c, "no PINGRESP within the keepalive", 1);
		return;
	}
	uint8_t buf[2];
	send_bytes(c, buf, roost_encode_empty(buf, sizeof buf, ROOST_MQTT_PINGREQ));
	c->ping_outstanding = true;
	struct timeval tv = {(time_t)c->cfg->keepalive, 0};
	evtimer_add(c->ping, &tv);
}

/* ---- interface ------------------------------------------------------- */

static roost_err make_client_id(roost_mqtt_client *c)
{
	if (c->cfg->client_id) {
		c->client_id = roost_strdup(c->cfg->client_id);
		return c->client_id ? ROOST_OK : ROOST_ERR_NOMEM;
	}
	unsigned char r[4];
	if (RAND_bytes(r, sizeof r) != 1)
		return ROOST_ERR_IO;
	char id[32];
	snprintf(id, sizeof id, "roost-hub-%02x%02x%02x%02x", r[0], r[1], r[2], r[3]);
	c->client_id = roost_strdup(id);
	return c->client_id ? ROOST_OK : ROOST_ERR_NOMEM;
}

static roost_err check_config(const roost_log *log, const roost_mqtt_config *m, const char *path)
{
	if (m->password && !m->username) {
		/* [MQTT-3.1.2-22] no password without a user name */
		roost_log_error(log, "%s: mqtt.password is set without mqtt.username", path);
		return ROOST_ERR_CONFIG;
	}
	if (m->n_topics == 0) {
		roost_log_error(log, "%s: mqtt.topics is empty: nothing to subscribe to on %s", path,
		                m->broker);
		return ROOST_ERR_CONFIG;
	}
	for (size_t i = 0; i < m->n_topics; i++) {
		if (!roost_topic_filter_valid((const uint8_t *)m->topics[i], strlen(m->topics[i]))) {
			roost_log_error(log, "%s: mqtt.topics: '%s' is not a valid topic filter", path,
			                m->topics[i]);
			return ROOST_ERR_CONFIG;
		}
	}
	return ROOST_OK;
}

roost_err roost_mqtt_client_new(struct event_base *base, const roost_log *log,
                                const roost_mqtt_config *mqtt, uint32_t max_packet,
                                const char *config_path, roost_mqtt_client_msg_fn fn, void *ctx,
                                roost_mqtt_client **out)
{
	const char *path = config_path ? config_path : "the configuration";
	roost_err err = check_config(log, mqtt, path);
	if (err)
		return err;
	roost_mqtt_client *c = roost_calloc(1, sizeof *c);
	if (!c)
		return ROOST_ERR_NOMEM;
	c->base = base;
	c->log = log;
	c->cfg = mqtt;
	c->config_path = path;
	c->max_packet = max_packet;
	c->fn = fn;
	c->ctx = ctx;
	err = make_client_id(c);
	if (err)
		goto fail;
	err = ROOST_ERR_NOMEM;
	c->qos2_pending = roost_calloc(65536 / 8, 1);
	c->reconnect = evtimer_new(base, on_reconnect, c);
	c->ping = evtimer_new(base, on_ping, c);
	c->handshake = evtimer_new(base, on_handshake_timeout, c);
	if (!c->qos2_pending || !c->reconnect || !c->ping || !c->handshake)
		goto fail;
	struct timeval now = {0, 0};
	evtimer_add(c->reconnect, &now);
	*out = c;
	return ROOST_OK;
fail:
	roost_mqtt_client_free(c);
	return err;
}

void roost_mqtt_client_free(roost_mqtt_client *c)
{
	if (!c)
		return;
	if (c->bev && c->state == ST_UP) {
		/* A clean goodbye; flushed on a best-effort basis as the
		 * socket closes. */
		uint8_t buf[2];
		size_t n = roost_encode_empty(buf, sizeof buf, ROOST_MQTT_DISCONNECT);
		evutil_socket_t fd = bufferevent_getfd(c->bev);
		if (fd >= 0 && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
			(void)!send(fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
	}
	roost_resolve_cancel(c->resolving);
	if (c->bev)
		bufferevent_free(c->bev);
	if (c->parked)
		bufferevent_free(c->parked);
	if (c->reconnect)
		event_free(c->reconnect);
	if (c->ping)
		event_free(c->ping);
	if (c->handshake)
		event_free(c->handshake);
	roost_free(c->qos2_pending);
	roost_free(c->client_id);
	roost_free(c);
}
