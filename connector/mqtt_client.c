/*
 * mqtt_client.c — MQTT 3.1.1 client for another broker; see mqtt_client.h.
 *
 * States: IDLE (waiting for the reconnect timer) → RESOLVING → CONNECTING
 * (TCP, and the TLS handshake) → CONNACK (CONNECT sent) → SUBACK (SUBSCRIBE
 * sent) → UP. Any failure goes back to IDLE through conn_lost(), which
 * schedules the next attempt. A dropped bufferevent is parked and freed
 * from that timer, never inside its own callback.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "roost/alloc.h"
#include "roost/codec.h"

#include "hub_proto.h"
#include "hub_resolve.h"
#include "mqtt_client.h"

#define MQTT_CLIENT_BACKOFF_MAX 60 /* seconds */
#define MQTT_CLIENT_HANDSHAKE_S 10 /* TCP connect + TLS + CONNACK + SUBACK */
#define MQTT_CLIENT_SUB_PID 1
/* Mosquitto's bridge flag ("try_private"): the protocol level with its top
 * bit set marks the client as a bridge. */
#define MQTT_CLIENT_BRIDGE_BIT 0x80
#define PID_BITS (65536 / 8)

typedef enum client_state {
	ST_IDLE,
	ST_RESOLVING,
	ST_CONNECTING,
	ST_CONNACK,
	ST_SUBACK,
	ST_UP,
} client_state;

typedef struct address {
	char *host; /* without IPv6 brackets */
	int port;
} address;

struct roost_mqtt_client {
	struct event_base *base;
	const roost_log *log;
	roost_mqtt_client_options o;
	roost_mqtt_client_handler h;
	const char *config_path;
	address *addrs;
	size_t n_addrs;
	size_t cur;                 /* index of the address being tried */
	char peer[300];             /* "host:port" of addrs[cur] */
	SSL_CTX *ssl_ctx;           /* NULL: plain TCP */
	bool no_bridge_flag;        /* the upstream refused level 0x84: plain 4 from now on */

	client_state state;
	uint8_t level;              /* protocol level byte of the CONNECT in flight */
	struct bufferevent *bev;
	struct bufferevent *parked; /* dropped; freed from the reconnect timer */
	roost_resolve *resolving;
	size_t attempt;
	struct event *reconnect;
	struct event *ping;         /* every keepalive seconds while UP */
	struct event *handshake;    /* deadline for CONNECTING .. SUBACK */
	bool ping_outstanding;
	uint32_t backoff_s;
	bool was_up;                /* connected at least once: log losses loudly */
	bool refused_logged;        /* a CONNACK refusal was logged at error level */
	bool session_present;       /* of the last CONNACK */
	uint8_t *qos2_in;           /* bitset: inbound QoS 2 ids awaiting PUBREL */
	uint8_t *qos2_out;          /* bitset: outbound QoS 2 ids PUBREC'd, awaiting PUBCOMP */
};

static void conn_lost(roost_mqtt_client *c, const char *why, uint32_t delay_s);

static bool bit_test_and_set(uint8_t *bits, uint16_t pid, bool set)
{
	uint8_t bit = (uint8_t)(1u << (pid & 7));
	bool was = bits[pid >> 3] & bit;
	if (set)
		bits[pid >> 3] |= bit;
	else
		bits[pid >> 3] &= (uint8_t)~bit;
	return was;
}

static uint32_t next_backoff(const roost_mqtt_client *c)
{
	return roost_hub_backoff_next(c->backoff_s, MQTT_CLIENT_BACKOFF_MAX);
}

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

static roost_bytes str_bytes(const char *s) { return (roost_bytes){(const uint8_t *)s, s ? strlen(s) : 0}; }

/* The CONNECT, with the bridge bit on its protocol level when asked. */
static roost_err send_connect(roost_mqtt_client *c)
{
	const roost_mqtt_client_options *o = &c->o;
	roost_connect k = {0};
	k.clean_start = o->clean_session;
	k.keepalive = o->keepalive;
	k.client_id = str_bytes(o->client_id);
	if (o->username) {
		k.username_flag = true;
		k.username = str_bytes(o->username);
	}
	if (o->password) {
		k.password_flag = true;
		k.password = str_bytes(o->password);
	}
	if (o->will_topic) {
		k.will_flag = true;
		k.will_topic = str_bytes(o->will_topic);
		k.will_payload = str_bytes(o->will_payload);
		k.will_retain = o->will_retain;
		k.will_qos = o->will_qos;
	}
	size_t n = roost_encode_connect(NULL, 0, ROOST_MQTT_V311, &k);
	uint8_t *buf = n ? roost_malloc(n) : NULL;
	if (!buf)
		return ROOST_ERR_NOMEM;
	roost_encode_connect(buf, n, ROOST_MQTT_V311, &k);
	c->level = ROOST_MQTT_V311;
	if (o->bridge_flag && !c->no_bridge_flag) {
		/* The level follows "\0\4MQTT" after the 2..5 byte fixed header. */
		for (size_t i = 2; i + 7 <= n && i <= 5; i++) {
			if (memcmp(buf + i, "\0\4MQTT", 6) == 0) {
				c->level = ROOST_MQTT_V311 | MQTT_CLIENT_BRIDGE_BIT;
				buf[i + 6] = c->level;
				break;
			}
		}
	}
	send_bytes(c, buf, n);
	roost_free(buf);
	return ROOST_OK;
}

static roost_err send_subscribe(roost_mqtt_client *c)
{
	const roost_mqtt_client_options *o = &c->o;
	roost_sub_entry *e = roost_calloc(o->n_subs, sizeof *e);
	if (!e)
		return ROOST_ERR_NOMEM;
	for (size_t i = 0; i < o->n_subs; i++) {
		e[i].filter = str_bytes(o->subs[i].filter);
		e[i].options = o->subs[i].qos;
	}
	roost_err err = ROOST_ERR_NOMEM;
	size_t n = roost_encode_subscribe(NULL, 0, ROOST_MQTT_V311, MQTT_CLIENT_SUB_PID, e, o->n_subs);
	uint8_t *buf = n ? roost_malloc(n) : NULL;
	if (buf) {
		roost_encode_subscribe(buf, n, ROOST_MQTT_V311, MQTT_CLIENT_SUB_PID, e, o->n_subs);
		send_bytes(c, buf, n);
		roost_free(buf);
		err = ROOST_OK;
	}
	roost_free(e);
	return err;
}

/* The connection is ready for application messages. */
static void go_up(roost_mqtt_client *c, size_t refused, bool session_present)
{
	evtimer_del(c->handshake);
	bufferevent_set_timeouts(c->bev, NULL, NULL);
	c->state = ST_UP;
	c->backoff_s = 0;
	roost_log_notice(c->log, "%s: %s broker %s as %s, subscribed to %zu of %zu topic filters", c->o.label,
	                 c->was_up ? "reconnected to" : "connected to", c->peer, c->o.client_id,
	                 c->o.n_subs - refused, c->o.n_subs);
	c->was_up = true;
	if (c->o.keepalive) {
		struct timeval tv = {(time_t)c->o.keepalive, 0};
		c->ping_outstanding = false;
		evtimer_add(c->ping, &tv);
	}
	if (c->h.up)
		c->h.up(c->h.ctx, session_present);
}

/* ---- input ----------------------------------------------------------- */

static void connack_reason(const roost_mqtt_client *c, uint8_t code, char *buf, size_t cap)
{
	const char *k = c->o.keys;
	switch (code) {
	case 1: snprintf(buf, cap, "unacceptable protocol version"); break;
	case 2: snprintf(buf, cap, "client identifier rejected: check %sclient_id", k); break;
	case 3: snprintf(buf, cap, "server unavailable"); break;
	case 4: snprintf(buf, cap, "bad user name or password: check %susername and %spassword", k, k); break;
	case 5: snprintf(buf, cap, "not authorised: check %susername and the broker's ACL", k); break;
	default: snprintf(buf, cap, "refused"); break;
	}
}

/* The upstream refused level 0x84: plain level 4 at once. */
static bool bridge_flag_refused(roost_mqtt_client *c, const char *how)
{
	if (!(c->level & MQTT_CLIENT_BRIDGE_BIT))
		return false;
	c->no_bridge_flag = true;
	roost_log_notice(c->log, "%s: broker %s does not accept the bridge flag (%s): connecting as a plain "
	                 "MQTT 3.1.1 client; roost's own origin tracking keeps messages from looping",
	                 c->o.label, c->peer, how);
	conn_lost(c, "bridge flag refused", 0);
	return true;
}

static roost_err on_connack(roost_mqtt_client *c, const uint8_t *pkt, size_t len)
{
	roost_connack a;
	roost_codec_error e;
	if (c->state != ST_CONNACK || roost_decode_connack(pkt, len, ROOST_MQTT_V311, &a, &e) != ROOST_OK)
		return ROOST_ERR_PROTOCOL;
	if (a.code == 1 && bridge_flag_refused(c, "CONNACK 1"))
		return ROOST_ERR_NOT_AUTHORIZED; /* connection already gone */
	if (a.code != 0) {
		char reason[160], why[200];
		connack_reason(c, a.code, reason, sizeof reason);
		snprintf(why, sizeof why, "CONNACK %u, %s", a.code, reason);
		if (!c->refused_logged)
			roost_log_error(c->log, "%s: broker %s refused the connection (%s) — see %s", c->o.label, c->peer,
			                why, c->config_path);
		c->refused_logged = true;
		conn_lost(c, why, MQTT_CLIENT_BACKOFF_MAX);
		return ROOST_ERR_NOT_AUTHORIZED;
	}
	c->refused_logged = false;
	if (c->o.n_subs == 0) {
		go_up(c, 0, a.session_present);
		return ROOST_OK;
	}
	if (send_subscribe(c) != ROOST_OK)
		return ROOST_ERR_NOMEM;
	c->state = ST_SUBACK;
	c->session_present = a.session_present; /* told in up(), after the SUBACK */
	return ROOST_OK;
}

static roost_err on_suback(roost_mqtt_client *c, const uint8_t *pkt, size_t len)
{
	roost_suback s;
	roost_codec_error e;
	if (c->state != ST_SUBACK || roost_decode_suback(pkt, len, ROOST_MQTT_V311, &s, &e) != ROOST_OK ||
	    s.packet_id != MQTT_CLIENT_SUB_PID || s.codes.len != c->o.n_subs)
		return ROOST_ERR_PROTOCOL;
	size_t refused = 0;
	for (size_t i = 0; i < s.codes.len; i++) {
		if (s.codes.ptr[i] & ROOST_SUBACK_FAILURE) {
			refused++;
			roost_log_error(c->log, "%s: broker %s refused the subscription to '%s'", c->o.label, c->peer,
			                c->o.subs[i].filter);
		}
	}
	go_up(c, refused, c->session_present);
	return ROOST_OK;
}

static roost_err on_publish(roost_mqtt_client *c, const uint8_t *pkt, size_t len)
{
	roost_publish p;
	roost_codec_error e;
	if (c->state != ST_UP && c->state != ST_SUBACK)
		return ROOST_ERR_PROTOCOL;
	if (roost_decode_publish(pkt, len, ROOST_MQTT_V311, &p, &e) != ROOST_OK) {
		roost_log_warn(c->log, "%s: malformed PUBLISH from %s: %s at byte %zu", c->o.label, c->peer,
		               e.why ? e.why : roost_err_str(e.err), e.offset);
		return ROOST_ERR_MALFORMED;
	}
	/* QoS 2: hand over on the first PUBLISH, remember the id until PUBREL
	 * so a resent PUBLISH (DUP) is acknowledged but not handed over twice. */
	bool dup = p.qos == 2 && bit_test_and_set(c->qos2_in, p.packet_id, true);
	if (!dup)
		c->h.message(c->h.ctx, (const char *)p.topic.ptr, p.topic.len, p.payload.ptr, p.payload.len, p.qos,
		             p.retain);
	if (p.qos == 1)
		send_ack(c, ROOST_MQTT_PUBACK, p.packet_id);
	else if (p.qos == 2)
		send_ack(c, ROOST_MQTT_PUBREC, p.packet_id);
	return ROOST_OK;
}

/* PUBACK, PUBREC, PUBREL, PUBCOMP: the acknowledgement flows. */
static roost_err on_ack(roost_mqtt_client *c, uint8_t type, const uint8_t *pkt, size_t len)
{
	roost_ack a;
	roost_codec_error e;
	if (roost_decode_ack(pkt, len, ROOST_MQTT_V311, &a, &e) != ROOST_OK)
		return ROOST_ERR_MALFORMED;
	switch (type) {
	case ROOST_MQTT_PUBREL:
		bit_test_and_set(c->qos2_in, a.packet_id, false);
		send_ack(c, ROOST_MQTT_PUBCOMP, a.packet_id);
		break;
	case ROOST_MQTT_PUBREC:
		bit_test_and_set(c->qos2_out, a.packet_id, true);
		send_ack(c, ROOST_MQTT_PUBREL, a.packet_id);
		break;
	case ROOST_MQTT_PUBCOMP:
		bit_test_and_set(c->qos2_out, a.packet_id, false);
		/* fall through */
	default:
		if (c->h.acked)
			c->h.acked(c->h.ctx, a.packet_id);
		break;
	}
	return ROOST_OK;
}

static roost_err on_packet(roost_mqtt_client *c, const roost_frame *f, const uint8_t *pkt)
{
	roost_codec_error e;
	switch (f->type) {
	case ROOST_MQTT_CONNACK: return on_connack(c, pkt, f->total_len);
	case ROOST_MQTT_SUBACK: return on_suback(c, pkt, f->total_len);
	case ROOST_MQTT_PUBLISH: return on_publish(c, pkt, f->total_len);
	case ROOST_MQTT_PUBACK:
	case ROOST_MQTT_PUBREC:
	case ROOST_MQTT_PUBREL:
	case ROOST_MQTT_PUBCOMP:
		return on_ack(c, f->type, pkt, f->total_len);
	case ROOST_MQTT_PINGRESP:
		if (roost_decode_empty(pkt, f->total_len, &e) != ROOST_OK)
			return ROOST_ERR_MALFORMED;
		c->ping_outstanding = false;
		return ROOST_OK;
	default:
		return ROOST_ERR_PROTOCOL; /* nothing else is sent to a client */
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
		roost_err err = roost_frame_peek(hdr, hn, c->o.max_packet, ROOST_MQTT_V311, &f, &e);
		if (err == ROOST_ERR_NEED_MORE && f.total_len == 0)
			return; /* length bytes incomplete */
		if (err != ROOST_OK && err != ROOST_ERR_NEED_MORE) {
			conn_lost(c, err == ROOST_ERR_TOO_LARGE ? "packet too large" : "malformed packet", next_backoff(c));
			return;
		}
		if (avail < f.total_len)
			return; /* the body is still on its way */
		const uint8_t *pkt = evbuffer_pullup(in, (ev_ssize_t)f.total_len);
		if (!pkt) {
			conn_lost(c, "out of memory", next_backoff(c));
			return;
		}
		err = on_packet(c, &f, pkt);
		if (err == ROOST_ERR_NOT_AUTHORIZED)
			return; /* CONNACK refusal: conn_lost already ran */
		if (err) {
			char why[80];
			snprintf(why, sizeof why, "unexpected or invalid %s", roost_mqtt_type_name(f.type));
			conn_lost(c, why, next_backoff(c));
			return;
		}
		if (!c->bev)
			return; /* a callback dropped the connection */
		evbuffer_drain(in, f.total_len);
	}
}

/* Why a connection failed, TLS verification included. */
static void failure_reason(roost_mqtt_client *c, struct bufferevent *bev, short what, char *why, size_t cap)
{
	unsigned long tls_err = c->ssl_ctx ? bufferevent_get_openssl_error(bev) : 0;
	SSL *ssl = c->ssl_ctx ? bufferevent_openssl_get_ssl(bev) : NULL;
	long verify = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
	if (verify != X509_V_OK) {
		snprintf(why, cap, "TLS: certificate of %s not accepted: %s", c->peer,
		         X509_verify_cert_error_string(verify));
	} else if (tls_err) {
		char e[200];
		ERR_error_string_n(tls_err, e, sizeof e);
		snprintf(why, cap, "TLS: %s", e);
	} else if (what & BEV_EVENT_EOF) {
		snprintf(why, cap, "closed by the broker");
	} else {
		snprintf(why, cap, "%s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	}
	while (c->ssl_ctx && bufferevent_get_openssl_error(bev))
		; /* drain the rest of the queue */
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	roost_mqtt_client *c = arg;
	if (what & BEV_EVENT_CONNECTED) {
		if (send_connect(c) != ROOST_OK) {
			conn_lost(c, "out of memory", next_backoff(c));
			return;
		}
		c->state = ST_CONNACK;
		return;
	}
	if (c->state == ST_CONNACK && (what & BEV_EVENT_EOF) && bridge_flag_refused(c, "closed before CONNACK"))
		return;
	char why[600];
	failure_reason(c, bev, what, why, sizeof why);
	conn_lost(c, why, next_backoff(c));
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

static void log_lost(roost_mqtt_client *c, bool was_up, const char *why, uint32_t delay_s)
{
	if (was_up)
		roost_log_warn(c->log, "%s: lost the connection to broker %s (%s); reconnecting in %u s", c->o.label,
		               c->peer, why, delay_s);
	else if (c->attempt == 1 || !c->was_up)
		roost_log_warn(c->log, "%s: cannot connect to broker %s (%s); retrying in %u s", c->o.label, c->peer,
		               why, delay_s);
	else
		roost_log_debug(c->log, "%s: still cannot connect to broker %s (%s); retrying in %u s", c->o.label,
		                c->peer, why, delay_s);
}

static void conn_lost(roost_mqtt_client *c, const char *why, uint32_t delay_s)
{
	bool was_up = c->state == ST_UP;
	park_bev(c);
	roost_resolve_cancel(c->resolving);
	c->resolving = NULL;
	evtimer_del(c->ping);
	evtimer_del(c->handshake);
	if (c->o.clean_session) {
		/* A clean session: packet ids start over on both sides. */
		memset(c->qos2_in, 0, PID_BITS);
		memset(c->qos2_out, 0, PID_BITS);
	}
	c->state = ST_IDLE;
	c->attempt++;
	c->backoff_s = delay_s;
	log_lost(c, was_up, why, delay_s);
	/* Mosquitto's failover: the next address after any failure. */
	if (!was_up && delay_s)
		c->cur = (c->cur + 1) % c->n_addrs;
	struct timeval tv = {(time_t)delay_s, 0};
	evtimer_add(c->reconnect, &tv);
	if (was_up && c->h.down)
		c->h.down(c->h.ctx);
}

static bool is_ip(const char *host)
{
	unsigned char buf[16];
	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* A TLS bufferevent for host: SNI, and host name (or IP) verification. */
static struct bufferevent *tls_bev(roost_mqtt_client *c, const char *host)
{
	SSL *ssl = SSL_new(c->ssl_ctx);
	if (!ssl)
		return NULL;
	bool ip = is_ip(host);
	if (!ip)
		SSL_set_tlsext_host_name(ssl, host);
	if (!c->o.tls->insecure) {
		if (ip)
			X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host);
		else
			SSL_set1_host(ssl, host);
	}
	struct bufferevent *bev =
		bufferevent_openssl_socket_new(c->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (!bev) {
		SSL_free(ssl);
		return NULL;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

static void on_resolved(void *arg, int gai_err, const struct addrinfo *ai)
{
	roost_mqtt_client *c = arg;
	c->resolving = NULL; /* freed by the resolver after this returns */
	const address *a = &c->addrs[c->cur];
	if (gai_err) {
		char why[300];
		snprintf(why, sizeof why, "cannot resolve %s: %s", a->host, gai_strerror(gai_err));
		conn_lost(c, why, next_backoff(c));
		return;
	}
	const struct addrinfo *ad = roost_resolve_nth(ai, c->attempt % roost_resolve_count(ai));
	c->bev = c->ssl_ctx ? tls_bev(c, a->host) : bufferevent_socket_new(c->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev) {
		conn_lost(c, "out of memory", next_backoff(c));
		return;
	}
	bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->state = ST_CONNECTING;
	/* May report a failure through on_event before it returns. */
	if (bufferevent_socket_connect(c->bev, ad->ai_addr, (int)ad->ai_addrlen) != 0 && c->state == ST_CONNECTING)
		conn_lost(c, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()), next_backoff(c));
}

static void on_handshake_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	roost_mqtt_client *c = arg;
	conn_lost(c, "no answer to CONNECT/SUBSCRIBE in time", next_backoff(c));
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
	const address *a = &c->addrs[c->cur];
	snprintf(c->peer, sizeof c->peer, strchr(a->host, ':') ? "[%s]:%d" : "%s:%d", a->host, a->port);
	roost_log_info(c->log, "%s: connecting to broker %s as %s", c->o.label, c->peer, c->o.client_id);
	c->state = ST_RESOLVING;
	struct timeval tv = {MQTT_CLIENT_HANDSHAKE_S, 0};
	evtimer_add(c->handshake, &tv);
	if (roost_resolve_start(c->base, a->host, a->port, on_resolved, c, &c->resolving) != ROOST_OK)
		conn_lost(c, "out of memory", next_backoff(c));
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
	struct timeval tv = {(time_t)c->o.keepalive, 0};
	evtimer_add(c->ping, &tv);
}

/* ---- setup ----------------------------------------------------------- */

/* "host", "host:port", "[v6]" or "[v6]:port"; a bare IPv6 address (more
 * than one ':') is a host. */
static roost_err parse_address(const char *s, int def_port, address *out)
{
	const char *host = s, *end = s + strlen(s), *colon = strrchr(s, ':');
	if (*s == '[') {
		const char *rb = strchr(s, ']');
		if (!rb || (rb[1] && rb[1] != ':'))
			return ROOST_ERR_INVALID;
		host = s + 1;
		end = rb;
		colon = rb[1] == ':' ? rb + 1 : NULL;
	} else if (colon && strchr(s, ':') != colon) {
		colon = NULL; /* bare IPv6 */
	} else if (colon) {
		end = colon;
	}
	out->port = def_port;
	if (colon) {
		char *e;
		long p = strtol(colon + 1, &e, 10);
		if (!colon[1] || *e || p < 1 || p > 65535)
			return ROOST_ERR_INVALID;
		out->port = (int)p;
	}
	if (end == host)
		return ROOST_ERR_INVALID;
	out->host = roost_strndup(host, (size_t)(end - host));
	return out->host ? ROOST_OK : ROOST_ERR_NOMEM;
}

static roost_err tls_files_error(roost_mqtt_client *c, const char *key, const char *file, const char *what)
{
	char why[256];
	ERR_error_string_n(ERR_get_error(), why, sizeof why);
	ERR_clear_error();
	roost_log_error(c->log, "%s: %stls.%s '%s': cannot load %s: %s", c->config_path, c->o.keys, key, file, what,
	                why);
	return ROOST_ERR_CONFIG;
}

static roost_err tls_setup(roost_mqtt_client *c)
{
	const roost_mqtt_client_tls *t = c->o.tls;
	c->ssl_ctx = SSL_CTX_new(TLS_client_method());
	if (!c->ssl_ctx)
		return ROOST_ERR_NOMEM;
	SSL_CTX_set_min_proto_version(c->ssl_ctx, TLS1_2_VERSION);
	if (t->insecure) {
		SSL_CTX_set_verify(c->ssl_ctx, SSL_VERIFY_NONE, NULL);
		roost_log_warn(c->log, "%s: %stls.insecure is true: the broker's certificate is not checked", c->o.label,
		               c->o.keys);
	} else {
		SSL_CTX_set_verify(c->ssl_ctx, SSL_VERIFY_PEER, NULL);
		if (t->cafile && SSL_CTX_load_verify_locations(c->ssl_ctx, t->cafile, NULL) != 1)
			return tls_files_error(c, "cafile", t->cafile, "CA certificates");
		if (!t->cafile && SSL_CTX_set_default_verify_paths(c->ssl_ctx) != 1) {
			ERR_clear_error();
			roost_log_warn(c->log, "%s: no system CA certificates found; set %stls.cafile", c->o.label,
			               c->o.keys);
		}
	}
	if (!t->certfile != !t->keyfile) {
		roost_log_error(c->log, "%s: %stls.certfile and %stls.keyfile go together", c->config_path, c->o.keys,
		                c->o.keys);
		return ROOST_ERR_CONFIG;
	}
	if (t->certfile && SSL_CTX_use_certificate_chain_file(c->ssl_ctx, t->certfile) != 1)
		return tls_files_error(c, "certfile", t->certfile, "the certificate");
	if (t->keyfile && SSL_CTX_use_PrivateKey_file(c->ssl_ctx, t->keyfile, SSL_FILETYPE_PEM) != 1)
		return tls_files_error(c, "keyfile", t->keyfile, "the private key");
	return ROOST_OK;
}

static roost_err setup(roost_mqtt_client *c)
{
	const roost_mqtt_client_options *o = &c->o;
	if (o->password && !o->username) {
		/* [MQTT-3.1.2-22] no password without a user name */
		roost_log_error(c->log, "%s: %spassword is set without %susername", c->config_path, o->keys, o->keys);
		return ROOST_ERR_CONFIG;
	}
	c->addrs = roost_calloc(o->n_addresses, sizeof *c->addrs);
	if (!c->addrs)
		return ROOST_ERR_NOMEM;
	for (size_t i = 0; i < o->n_addresses; i++, c->n_addrs++) {
		roost_err err = parse_address(o->addresses[i], o->port, &c->addrs[i]);
		if (err == ROOST_ERR_INVALID)
			roost_log_error(c->log, "%s: %saddress: '%s' is not host, host:port or [IPv6]:port", c->config_path,
			                o->keys, o->addresses[i]);
		if (err)
			return err == ROOST_ERR_INVALID ? ROOST_ERR_CONFIG : err;
	}
	return o->tls ? tls_setup(c) : ROOST_OK;
}

/* ---- interface ------------------------------------------------------- */

roost_err roost_mqtt_client_new(struct event_base *base, const roost_log *log,
                                const roost_mqtt_client_options *o, const roost_mqtt_client_handler *h,
                                roost_mqtt_client **out)
{
	if (o->n_addresses == 0)
		return ROOST_ERR_INVALID;
	roost_mqtt_client *c = roost_calloc(1, sizeof *c);
	if (!c)
		return ROOST_ERR_NOMEM;
	c->base = base;
	c->log = log;
	c->o = *o;
	if (!c->o.keys)
		c->o.keys = "";
	c->h = *h;
	c->config_path = o->config_path ? o->config_path : "the configuration";
	roost_err err = setup(c);
	if (err)
		goto fail;
	err = ROOST_ERR_NOMEM;
	c->qos2_in = roost_calloc(PID_BITS, 1);
	c->qos2_out = roost_calloc(PID_BITS, 1);
	c->reconnect = evtimer_new(base, on_reconnect, c);
	c->ping = evtimer_new(base, on_ping, c);
	c->handshake = evtimer_new(base, on_handshake_timeout, c);
	if (!c->qos2_in || !c->qos2_out || !c->reconnect || !c->ping || !c->handshake)
		goto fail;
	snprintf(c->peer, sizeof c->peer, "%s:%d", c->addrs[0].host, c->addrs[0].port);
	struct timeval now = {0, 0};
	evtimer_add(c->reconnect, &now);
	*out = c;
	return ROOST_OK;
fail:
	roost_mqtt_client_free(c);
	return err;
}

bool roost_mqtt_client_up(const roost_mqtt_client *c) { return c->state == ST_UP; }

const char *roost_mqtt_client_peer(const roost_mqtt_client *c) { return c->peer; }

roost_err roost_mqtt_client_publish(roost_mqtt_client *c, const char *topic, size_t topic_len,
                                    const uint8_t *payload, size_t payload_len, uint8_t qos, bool retain,
                                    uint16_t packet_id, bool dup)
{
	if (c->state != ST_UP)
		return ROOST_ERR_IO;
	if (qos == 2 && dup && bit_test_and_set(c->qos2_out, packet_id, true)) {
		send_ack(c, ROOST_MQTT_PUBREL, packet_id); /* [MQTT-4.3.3-1] past PUBREC: only PUBREL again */
		return ROOST_OK;
	}
	if (qos == 2)
		bit_test_and_set(c->qos2_out, packet_id, false);
	roost_publish p = {.qos = qos, .dup = dup && qos, .retain = retain, .packet_id = qos ? packet_id : 0,
	                   .topic = {(const uint8_t *)topic, topic_len}, .payload = {payload, payload_len}};
	size_t n = roost_encode_publish(NULL, 0, ROOST_MQTT_V311, &p);
	uint8_t *buf = n ? roost_malloc(n) : NULL;
	if (!buf)
		return n ? ROOST_ERR_NOMEM : ROOST_ERR_TOO_LARGE;
	roost_encode_publish(buf, n, ROOST_MQTT_V311, &p);
	send_bytes(c, buf, n);
	roost_free(buf);
	return ROOST_OK;
}

/* A clean goodbye on plain TCP: the will's message first (it is a state
 * notification: the others see the same after a stop as after a crash),
 * then DISCONNECT, which makes the broker discard the will. Over TLS the
 * connection just closes and the broker publishes the will itself. */
static void say_goodbye(roost_mqtt_client *c)
{
	evutil_socket_t fd = bufferevent_getfd(c->bev);
	if (c->ssl_ctx || fd < 0 || evbuffer_get_length(bufferevent_get_output(c->bev)) != 0)
		return;
	uint8_t buf[1024];
	size_t n = 0;
	if (c->o.will_topic) {
		roost_publish p = {.retain = c->o.will_retain, .topic = str_bytes(c->o.will_topic),
		                   .payload = str_bytes(c->o.will_payload)};
		n = roost_encode_publish(buf, sizeof buf - 2, ROOST_MQTT_V311, &p);
		if (n > sizeof buf - 2)
			n = 0;
	}
	n += roost_encode_empty(buf + n, 2, ROOST_MQTT_DISCONNECT);
	(void)!send(fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

void roost_mqtt_client_free(roost_mqtt_client *c)
{
	if (!c)
		return;
	if (c->bev && c->state == ST_UP)
		say_goodbye(c);
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
	for (size_t i = 0; i < c->n_addrs; i++)
		roost_free(c->addrs[i].host);
	roost_free(c->addrs);
	if (c->ssl_ctx)
		SSL_CTX_free(c->ssl_ctx);
	roost_free(c->qos2_in);
	roost_free(c->qos2_out);
	roost_free(c);
}
