/*
 * connection.c — one client connection: framing, dispatch, output, timers
 * and the close path.
 *
 * Reading: the input buffer is framed with roost_frame_peek; a complete packet
 * is made contiguous (evbuffer_pullup, a no-op when it already is), handed to
 * its handler through the single dispatch switch, then drained. Every packet
 * read in one callback produces output into the same evbuffer, and libevent
 * writes it with one writev when the callback returns: replies and fan-out are
 * coalesced without a write per message.
 *
 * Acknowledged means stored: while a packet is handled, the connection
 * remembers the store's write counter from before; the first output to it
 * after the counter moved starts holding (conn_hold_until_commit): from then
 * on its output waits in c->hold, in order, until the store's group commit
 * reports back through conn_commit_done — released when it committed, the
 * connection closed unacknowledged when it did not. Every reply goes
 * through conn_out, so no handler can send an ack around the hold.
 *
 * Closing: conn_close() runs the close logic (will, session detach, log) at
 * once but never frees the connection: that happens in the broker's reaper,
 * after the current callback has returned.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "internal.h"
#include "roost/alloc.h"

static void read_cb(struct bufferevent *bev, void *arg);
static void write_cb(struct bufferevent *bev, void *arg);
static void event_cb(struct bufferevent *bev, short what, void *arg);
static void timer_cb(evutil_socket_t fd, short what, void *arg);
static void schedule_timer(roost_conn *c);

const char *conn_client_id(const roost_conn *c)
{
	return c->session ? roost_session_client_id(c->session) : "-";
}

/*
 * The client id for a log line, cut to ROOST_LOG_ID_MAX bytes (at a UTF-8
 * boundary) with its length appended, so that a long id cannot push what
 * the line is about (a close reason) past the log line's end.
 */
#define ROOST_LOG_ID_MAX 64
typedef struct log_id {
	char s[ROOST_LOG_ID_MAX + 32];
} log_id;

static const char *conn_log_id(const roost_conn *c, log_id *out)
{
	const char *id = conn_client_id(c);
	size_t len = strlen(id);
	if (len <= ROOST_LOG_ID_MAX)
		return id;
	size_t n = ROOST_LOG_ID_MAX;
	while (n > 0 && ((unsigned char)id[n] & 0xC0) == 0x80)
		n--; /* do not split a multi-byte character */
	snprintf(out->s, sizeof out->s, "%.*s\xe2\x80\xa6(%zu bytes)", (int)n, id, len);
	return out->s;
}

static void format_addr(char *out, size_t cap, const struct sockaddr *sa)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
		port = ntohs(in->sin_port);
		snprintf(out, cap, "%s:%u", ip, port);
	} else if (sa->sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)sa)->sin6_addr)) {
		/* An IPv4 client of the dual-stack listener: shown as IPv4. */
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], ip, sizeof ip);
		snprintf(out, cap, "%s:%u", ip, ntohs(in6->sin6_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
		port = ntohs(in6->sin6_port);
		snprintf(out, cap, "[%s]:%u", ip, port);
	} else {
		snprintf(out, cap, "unix");
	}
}

/* The socket's bufferevent: plain, or OpenSSL on a TLS listener. NULL when
 * out of memory (fd is then still open). */
static struct bufferevent *transport_bev_new(roost_listener *l, evutil_socket_t fd)
{
	if (!l->ssl)
		return bufferevent_socket_new(l->b->base, fd, BEV_OPT_CLOSE_ON_FREE);
	SSL *ssl = SSL_new(l->ssl);
	if (!ssl)
		return NULL;
	struct bufferevent *bev =
		bufferevent_openssl_socket_new(l->b->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (!bev)
		SSL_free(ssl);
	else /* a peer that closes without close_notify is an EOF, not an error */
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

roost_conn *conn_new(roost_listener *l, evutil_socket_t fd, const struct sockaddr *sa, int salen)
{
	(void)salen;
	roost_broker *b = l->b;
	roost_conn *c = roost_calloc(1, sizeof *c);
	if (!c) {
		evutil_closesocket(fd);
		return NULL;
	}
	c->b = b;
	c->listener = l;
	format_addr(c->addr, sizeof c->addr, sa);
	c->peer_loopback = roost_auth_addr_is_loopback(sa);
	int one = 1;
	/* We coalesce writes ourselves; Nagle would only add latency. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->bev = transport_bev_new(l, fd);
	/* A websockets listener: the connection reads and writes MQTT bytes
	 * through a filter that speaks WebSocket underneath (ws.c). */
	if (c->bev && l->cfg && l->cfg->protocol == ROOST_LISTENER_WEBSOCKETS) {
		if (!(c->ws = broker_ws_new(c->bev, (uint64_t)b->cfg->limits.max_packet_size + ROOST_MQTT_MAX_FIXED_HEADER)))
			goto fail;
		c->bev = broker_ws_bev(c->ws);
	}
	c->timer = event_new(b->base, -1, 0, timer_cb, c);
	if (!c->bev || !c->timer)
		goto fail;
	bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
	/* libevent reads and writes at most 16 KiB per call by default: a 100 KB
	 * message then costs a dozen syscalls. Allow 256 KiB per call. */
	bufferevent_set_max_single_read(c->bev, 256 * 1024);
	bufferevent_set_max_single_write(c->bev, 256 * 1024);
	if (bufferevent_enable(c->bev, EV_READ) != 0)
		goto fail;
	c->last_rx_ms = roost_clock_now(&b->clock);
	/* [MQTT-3.1.0-1] the first packet must be CONNECT, and it must come
	 * soon: a connection that never speaks is closed (limits.connect_timeout). */
	struct timeval tv = {.tv_sec = b->cfg->limits.connect_timeout, .tv_usec = 0};
	event_add(c->timer, &tv);
	c->next = b->conns;
	if (b->conns)
		b->conns->prev = c;
	b->conns = c;
	b->stats.connections++;
	broker_connections_changed(b);
	return c;
fail:
	if (c->ws)
		broker_ws_free(c->b, c->ws, false);
	else if (c->bev)
		bufferevent_free(c->bev);
	else
		evutil_closesocket(fd);
	if (c->timer)
		event_free(c->timer);
	roost_free(c);
	return NULL;
}

/*
 * A server DISCONNECT was queued (conn_disconnect): the connection is closed
 * already, but the packet should still reach the client. For TCP and TLS
 * (a WebSocket connection's layer flushes itself), one non-blocking
 * write of what is unsent, straight to the socket (through the TLS session
 * for TLS), just before the socket is freed: a client that does not read
 * loses it, nobody waits for it.
 */
static void linger_write(roost_conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	size_t n = evbuffer_get_length(out);
	if (!c->linger || n == 0)
		return;
	const void *data = evbuffer_pullup(out, (ev_ssize_t)n);
	if (!data)
		return;
	SSL *ssl = c->listener && c->listener->ssl ? bufferevent_openssl_get_ssl(c->bev) : NULL;
	if (ssl && n <= INT_MAX)
		(void)SSL_write(ssl, data, (int)n);
	else if (!ssl) /* a peer gone already is no SIGPIPE */
		(void)send(bufferevent_getfd(c->bev), data, n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/*
 * A lingering close after a server DISCONNECT. Closing a socket that still
 * has unread input makes the kernel answer with RST, which can destroy the
 * DISCONNECT before the client has read it, and fails the client's next
 * write (a PUBREL already on its way) before it reads why. So the socket
 * stops sending (SHUT_WR: the client reads the DISCONNECT, then EOF) and
 * what the client still sends is read and thrown away until it closes, for
 * LINGER_MS and LINGER_BYTES at most. At most LINGER_MAX sockets linger at
 * once; beyond that, or while shutting down, they are closed at once.
 */
#define LINGER_MS 2000
#define LINGER_BYTES (1024 * 1024)
#define LINGER_MAX 256

struct lingerer {
	roost_broker *b;
	struct lingerer *next, *prev;
	struct event *ev;
	evutil_socket_t fd;
	size_t discarded;
};

static void linger_end(struct lingerer *l)
{
	roost_broker *b = l->b;
	if (l->prev)
		l->prev->next = l->next;
	else
		b->lingering = l->next;
	if (l->next)
		l->next->prev = l->prev;
	b->n_lingering--;
	event_free(l->ev);
	evutil_closesocket(l->fd);
	roost_free(l);
}

static void linger_cb(evutil_socket_t fd, short what, void *arg)
{
	struct lingerer *l = arg;
	if (what & EV_TIMEOUT) {
		linger_end(l);
		return;
	}
	char buf[4096];
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
		if (n > 0 && (l->discarded += (size_t)n) <= LINGER_BYTES)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return; /* read all there is: wait for more, or for the client's close */
		linger_end(l); /* EOF, an error, or too much */
		return;
	}
}

/* Keep c's socket (a duplicate of its descriptor: the bufferevent closes its
 * own) lingering as above; false when it cannot, and it just closes. */
static bool linger_start(roost_conn *c)
{
	roost_broker *b = c->b;
	evutil_socket_t fd = bufferevent_getfd(c->bev);
	if (!c->linger || c->ws || b->shutting_down || b->n_lingering >= LINGER_MAX || fd < 0)
		return false;
	struct lingerer *l = roost_calloc(1, sizeof *l);
	evutil_socket_t dup_fd = l ? dup(fd) : -1;
	struct event *ev = dup_fd >= 0 ? event_new(b->base, dup_fd, EV_READ | EV_PERSIST, linger_cb, l) : NULL;
	struct timeval tv = {.tv_sec = LINGER_MS / 1000, .tv_usec = (LINGER_MS % 1000) * 1000};
	if (!ev || event_add(ev, &tv) != 0) {
		if (ev)
			event_free(ev);
		if (dup_fd >= 0)
			evutil_closesocket(dup_fd);
		roost_free(l);
		return false;
	}
	shutdown(dup_fd, SHUT_WR);
	*l = (struct lingerer){.b = b, .next = b->lingering, .ev = ev, .fd = dup_fd};
	if (l->next)
		l->next->prev = l;
	b->lingering = l;
	b->n_lingering++;
	return true;
}

void broker_lingering_free(roost_broker *b)
{
	while (b->lingering)
		linger_end(b->lingering);
}

static void aliases_free(roost_conn *c);

void broker_conn_free(roost_conn *c)
{
	assert(c->state == CONN_DEAD);
	if (c->auth_hook && c->auth_hook->auth_free && c->auth_state)
		c->auth_hook->auth_free(c->auth_hook->ctx, c->auth_state);
	roost_free(c->auth_connect);
	aliases_free(c);
	if (c->ws) { /* its last response (a server DISCONNECT too) may still be on its way */
		broker_ws_free(c->b, c->ws, !c->b->shutting_down);
	} else {
		linger_write(c);
		linger_start(c);
		bufferevent_free(c->bev);
	}
	event_free(c->timer);
	roost_free(c);
}

/* ---- the hold: acknowledgements wait for the commit ---- */

void conn_hold_until_commit(roost_conn *c)
{
	if (c->hold || c->state == CONN_DEAD)
		return;
	c->hold = evbuffer_new();
	if (!c->hold) {
		/* Sending the ack now would acknowledge what may not be stored:
		 * stop writing, and let the timer close it (not from inside a
		 * handler or a fan-out). */
		bufferevent_disable(c->bev, EV_WRITE);
		c->overflowed = true;
		event_active(c->timer, EV_TIMEOUT, 0);
		return;
	}
	c->hold_next = c->b->holding;
	c->b->holding = c;
	/* Normally the write that moved the counter scheduled it already; one
	 * that failed before opening a transaction may not have. */
	broker_store_commit_soon(c->b);
}

/* Closed: forget its held output (it was never acknowledged). */
static void unhold(roost_conn *c)
{
	if (!c->hold)
		return;
	for (roost_conn **pp = &c->b->holding; *pp; pp = &(*pp)->hold_next) {
		if (*pp == c) {
			*pp = c->hold_next;
			break;
		}
	}
	c->hold_next = NULL;
	evbuffer_free(c->hold);
	c->hold = NULL;
}

static const char *flush_reason(const roost_conn *c);

void conn_commit_done(roost_broker *b, bool committed)
{
	while (b->holding) {
		roost_conn *c = b->holding;
		if (!committed) {
			conn_close(c, false, "the store could not commit; acknowledgements withheld");
			continue; /* conn_close unholds it */
		}
		b->holding = c->hold_next;
		c->hold_next = NULL;
		struct evbuffer *out = bufferevent_get_output(c->bev);
		evbuffer_add_buffer(out, c->hold);
		evbuffer_free(c->hold);
		c->hold = NULL;
		/* A reply-then-close (refused CONNECT) waited for this too. */
		if (c->state == CONN_CLOSING && evbuffer_get_length(out) == 0)
			conn_close(c, false, "%s", flush_reason(c));
	}
}

/*
 * Where output for c goes now: its held buffer when its acknowledgements
 * must wait for the store, else the socket's output buffer. The one place
 * that decides: the hold starts at the first output after this packet's
 * handling wrote to the store (the counter moved, whether or not the write
 * succeeded: a failed write poisons the batch and the commit reports it).
 */
static struct evbuffer *conn_out(roost_conn *c)
{
	if (!c->hold && c->dispatching && broker_store_writes(c->b) != c->dispatch_mark)
		conn_hold_until_commit(c);
	return c->hold ? c->hold : bufferevent_get_output(c->bev);
}

/* ---- output ---- */

/*
 * A client that does not read: once more than ROOST_OUTPUT_HIGH_WATER is
 * unsent it is "slow" (QoS 0 to it is dropped, its own input is not read),
 * until it drains below half of that. Slow for longer than
 * limits.slow_client_timeout, or past ROOST_OUTPUT_HARD_LIMIT, it is cut
 * off — but not from here: sending happens inside fan-out, where closing
 * (and publishing a will) would re-enter it, so the connection's timer is
 * fired at once and closes it.
 */
static void check_overflow(roost_conn *c)
{
	if (c->overflowed)
		return;
	size_t unsent = evbuffer_get_length(bufferevent_get_output(c->bev));
	if (!c->slow_since && unsent <= ROOST_OUTPUT_HIGH_WATER)
		return;
	if (!c->slow_since) {
		c->slow_since = roost_clock_now(&c->b->clock);
		/* write_cb runs when it has drained below half the mark. */
		bufferevent_setwatermark(c->bev, EV_WRITE, ROOST_OUTPUT_HIGH_WATER / 2, 0);
		roost_log_notice(c->b->log, "client %s (%s) is not reading: %zu bytes unsent; QoS 0 messages to it "
		                 "are dropped until it catches up", conn_client_id(c), c->addr, unsent);
		schedule_timer(c); /* its grace ends with limits.slow_client_timeout */
		return;
	}
	if (unsent > ROOST_OUTPUT_HARD_LIMIT) {
		c->overflowed = true;
		event_active(c->timer, EV_TIMEOUT, 0);
	}
}

bool conn_is_slow(roost_conn *c)
{
	check_overflow(c);
	return c->slow_since != 0;
}

void conn_send(roost_conn *c, const void *data, size_t len)
{
	if (c->state == CONN_DEAD)
		return;
	evbuffer_add(conn_out(c), data, len);
	c->b->stats.packets_sent++;
	c->b->stats.bytes_sent += len;
	check_overflow(c);
}


static void unref_payload(const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	roost_msg_unref(arg);
}

/* ---- v5 Topic Aliases ---- */

/* Aliases we assign to one connection at most, whatever its Topic Alias
 * Maximum: each keeps a copy of its topic. */
#define ROOST_TOPIC_ALIAS_OUT_CAP 1024

struct alias_in {
	char *topic;
	size_t len;
};

struct alias_out {
	UT_hash_handle hh;
	uint16_t alias;
	char topic[]; /* hh key */
};

roost_err conn_alias_in_set(roost_conn *c, uint16_t alias, roost_bytes topic)
{
	assert(alias >= 1 && alias <= c->b->cfg->limits.max_topic_alias);
	if (!c->alias_in && !(c->alias_in = roost_calloc(c->b->cfg->limits.max_topic_alias + 1, sizeof *c->alias_in)))
		return ROOST_ERR_NOMEM;
	char *copy = roost_strndup((const char *)topic.ptr, topic.len);
	if (!copy)
		return ROOST_ERR_NOMEM;
	/* [MQTT-3.3.2-10] a known alias may be given a new topic. */
	roost_free(c->alias_in[alias].topic);
	c->alias_in[alias] = (struct alias_in){copy, topic.len};
	return ROOST_OK;
}

bool conn_alias_in_find(const roost_conn *c, uint16_t alias, roost_bytes *topic)
{
	if (!c->alias_in || alias > c->b->cfg->limits.max_topic_alias || !c->alias_in[alias].topic)
		return false;
	*topic = (roost_bytes){(const uint8_t *)c->alias_in[alias].topic, c->alias_in[alias].len};
	return true;
}

static void aliases_free(roost_conn *c)
{
	if (c->alias_in)
		for (unsigned i = 0; i <= c->b->cfg->limits.max_topic_alias; i++)
			roost_free(c->alias_in[i].topic);
	roost_free(c->alias_in);
	struct alias_out *a, *tmp;
	HASH_ITER(hh, c->alias_out, a, tmp) {
		HASH_DEL(c->alias_out, a);
		roost_free(a);
	}
}

/*
 * The alias of topic for a delivery to c, assigning the next one first come
 * first served while the client's Topic Alias Maximum allows
 * [MQTT-3.3.2-11]; 0 when none. *known says whether the client already has
 * it (then the topic is left out of the PUBLISH, v5 3.3.2.3.4).
 */
static uint16_t alias_out(roost_conn *c, const roost_msg *msg, bool *known)
{
	*known = false;
	uint16_t max = c->v5.topic_alias_max < ROOST_TOPIC_ALIAS_OUT_CAP ? c->v5.topic_alias_max : ROOST_TOPIC_ALIAS_OUT_CAP;
	if (c->version != ROOST_MQTT_V5 || !max)
		return 0;
	struct alias_out *a;
	HASH_FIND(hh, c->alias_out, msg->topic, msg->topic_len, a);
	if (a) {
		*known = true;
		return a->alias;
	}
	if (c->alias_out_n >= max || !(a = roost_malloc(sizeof *a + msg->topic_len + 1)))
		return 0;
	memcpy(a->topic, msg->topic, msg->topic_len + 1);
	a->alias = (uint16_t)(c->alias_out_n + 1);
	roost_uthash_oom_flag = 0;
	HASH_ADD(hh, c->alias_out, topic[0], msg->topic_len, a);
	if (roost_uthash_oom_flag) {
		roost_free(a);
		return 0;
	}
	c->alias_out_n++;
	return a->alias;
}

/* Subscription Identifiers one delivery carries at most (more matching
 * subscriptions with identifiers are rare; the rest are left out). */
enum { MAX_SUB_IDS = 8, SUB_PROPS_CAP = 5 + 3 + MAX_SUB_IDS * 5 }; /* expiry, alias, ids */

/*
 * The per-subscriber part of a v5 PUBLISH's properties, written in front of
 * the shared ones: the expiry left [MQTT-3.3.2-6] and one Subscription
 * Identifier per matching subscription [MQTT-3.3.4-3]. Returns its length.
 */
static size_t subscriber_props(const roost_conn *c, roost_msg *msg, uint8_t *out)
{
	size_t n = 0;
	uint32_t left;
	if (msg->has_expiry) {
		if (!roost_msg_expiry_left(msg, roost_clock_now(&c->b->clock), &left))
			left = 0; /* went out before: a resend carries what is left, nothing */
		n += roost_prop_encode(out + n, 5, &(roost_prop){.id = ROOST_PROP_MESSAGE_EXPIRY, .u32 = left});
	}
	uint32_t ids[MAX_SUB_IDS];
	size_t k = roost_session_sub_ids(c->session, msg->topic, msg->topic_len, ids, MAX_SUB_IDS);
	for (size_t i = 0; i < k; i++)
		n += roost_prop_encode(out + n, 5, &(roost_prop){.id = ROOST_PROP_SUBSCRIPTION_ID, .u32 = ids[i]});
	return n;
}

/* The PUBLISH as it goes to c, but for the per-subscriber properties. */
static roost_publish publish_view(const roost_conn *c, const roost_msg *msg, uint8_t qos, uint16_t packet_id,
                                  bool dup)
{
	roost_publish p = {
		.qos = qos & ROOST_DELIVER_QOS_MASK,
		.dup = dup,
		.retain = (qos & ROOST_DELIVER_RETAIN) != 0,
		.packet_id = packet_id,
		.topic = {(const uint8_t *)msg->topic, msg->topic_len},
		.payload = {msg->payload, msg->payload_len},
	};
	if (c->version == ROOST_MQTT_V5) {
		/* The shared properties sit just before the payload. */
		size_t shared;
		p.payload.ptr = roost_msg_shared_props(msg, &shared);
		p.payload.len += shared;
		p.props_shared_len = shared;
	}
	return p;
}

bool conn_publish_fits(const roost_conn *c, roost_msg *msg)
{
	if (c->version != ROOST_MQTT_V5 || !c->v5.max_packet)
		return true;
	roost_publish p = publish_view(c, msg, 1, 1, false);
	uint8_t mine[SUB_PROPS_CAP];
	p.props = (roost_bytes){mine, subscriber_props(c, msg, mine) + (c->v5.topic_alias_max ? 3 : 0)};
	size_t head = roost_encode_publish_header(NULL, 0, c->version, &p);
	return head && head - p.props_shared_len + p.payload.len <= c->v5.max_packet;
}

void conn_send_publish(roost_conn *c, roost_msg *msg, uint8_t qos, uint16_t packet_id, bool dup)
{
	if (c->state == CONN_DEAD)
		return;
	struct evbuffer *out = conn_out(c);
	roost_publish p = publish_view(c, msg, qos, packet_id, dup);
	uint8_t mine[SUB_PROPS_CAP];
	if (c->version == ROOST_MQTT_V5) {
		size_t n = subscriber_props(c, msg, mine);
		bool known;
		uint16_t alias = alias_out(c, msg, &known);
		if (alias) {
			n += roost_prop_encode(mine + n, 3, &(roost_prop){.id = ROOST_PROP_TOPIC_ALIAS, .u32 = alias});
			if (known)
				p.topic.len = 0; /* the alias stands for it: this is the saving */
		}
		p.props = (roost_bytes){mine, n};
	}
	/* Encode the per-subscriber header straight into the output buffer. */
	size_t want = (size_t)msg->topic_len + sizeof mine + 16;
	struct evbuffer_iovec vec;
	if (evbuffer_reserve_space(out, (ev_ssize_t)want, &vec, 1) < 1)
		return;
	size_t n = roost_encode_publish_header(vec.iov_base, vec.iov_len, c->version, &p);
	assert(n > 0 && n <= vec.iov_len);
	vec.iov_len = n;
	evbuffer_commit_space(out, &vec, 1);
	/* The shared properties (v5) and the payload: one span of the message. */
	if (p.payload.len >= ROOST_ZERO_COPY_MIN) {
		/* Shared: the output buffer holds a message reference until the
		 * bytes are written. */
		roost_msg_ref(msg);
		if (evbuffer_add_reference(out, p.payload.ptr, p.payload.len, unref_payload, msg) != 0)
			roost_msg_unref(msg);
	} else if (p.payload.len) {
		evbuffer_add(out, p.payload.ptr, p.payload.len);
	}
	c->b->stats.msgs_sent++;
	c->b->stats.packets_sent++;
	c->b->stats.bytes_sent += n + msg->payload_len;
	check_overflow(c);
}

void conn_send_ack(roost_conn *c, uint8_t type, uint16_t packet_id)
{
	conn_send_ack_rc(c, type, packet_id, ROOST_RC5_SUCCESS, NULL);
}

void conn_send_ack_rc(roost_conn *c, uint8_t type, uint16_t packet_id, uint8_t reason, const char *why)
{
	uint8_t buf[8 + 3 + 128];
	uint8_t props[3 + 128];
	roost_ack a = {.packet_id = packet_id};
	if (c->version == ROOST_MQTT_V5) {
		a.reason = reason;
		/* [MQTT-3.1.2-29] a Reason String only when problem information is allowed. */
		if (why && c->v5.problem_info) {
			size_t wl = strlen(why);
			roost_prop rs = {.id = ROOST_PROP_REASON_STRING, .str = {(const uint8_t *)why, wl < 128 ? wl : 128}};
			a.props = (roost_bytes){props, roost_prop_encode(props, sizeof props, &rs)};
		}
	}
	size_t n = roost_encode_ack(buf, sizeof buf, c->version, type, &a);
	assert(n > 0 && n <= sizeof buf);
	conn_send(c, buf, n);
}

/* ---- close ---- */

static void conn_unlink(roost_conn *c)
{
	roost_broker *b = c->b;
	if (c->prev)
		c->prev->next = c->next;
	else
		b->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
	b->stats.connections--;
	broker_connections_changed(b);
}

static void conn_close_v(roost_conn *c, bool publish_will, const char *fmt, va_list ap)
{
	if (c->state == CONN_DEAD)
		return;
	roost_broker *b = c->b;
	char why[512];
	vsnprintf(why, sizeof why, fmt, ap);
	log_id id;
	roost_log_msg(b->log, publish_will ? ROOST_LOG_NOTICE : ROOST_LOG_INFO, "client %s (%s) closed: %s",
	              conn_log_id(c, &id), c->addr, why);
	c->state = CONN_DEAD;
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	event_del(c->timer);
	conn_unlink(c);
	unhold(c);

	/* The will is authorised again as it is published: rights may have
	 * shrunk since CONNECT (a reload, an auth hook). Decided while the
	 * session is still attached, since the decision needs its identity. */
	if (c->will && publish_will && !b->shutting_down)
		broker_authz_will(b, c);
	roost_msg *will = c->will;
	c->will = NULL;
	roost_session *s = c->session;
	if (s)
		b->stats.clients_connected--; /* it was past CONNACK */
	c->session = NULL;
	if (s && roost_session_conn(s) == c) {
		roost_session_set_conn(s, NULL);
		if (will && publish_will && c->will_delay && !roost_session_clean(s) && !b->shutting_down) {
			/* [MQTT-3.1.3-9] the will waits for its delay, or for the
			 * session's end if that is first (a clean session ends now,
			 * so its will goes now). */
			broker_expiry_will_delay(b, s, will, c->will_delay);
			will = NULL;
		}
		/* [MQTT-3.1.2-6] a clean session ends with its connection
		 * ([MQTT-3.1.2-5] v5: Session Expiry Interval 0); another
		 * ends when its interval has passed (expiry.c). */
		if (roost_session_clean(s))
			broker_session_destroy(b, s);
		else
			broker_expiry_session_offline(b, s);
	}
	/* [MQTT-3.1.2-8] the will is published when the network connection is
	 * closed for any reason other than DISCONNECT. Published after the
	 * session is detached so a will on a topic the client itself subscribed
	 * to is not queued to a dead connection. */
	if (will && publish_will && !b->shutting_down)
		broker_publish(b, will);
	roost_msg_unref(will);
	broker_schedule_reap(b, c);
}

void conn_close(roost_conn *c, bool publish_will, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	conn_close_v(c, publish_will, fmt, ap);
	va_end(ap);
}

/* DISCONNECT's reason codes (MQTT 5.0 3.14.2.1) a server may send. */
static bool disconnect_code_ok(uint8_t code)
{
	static const uint8_t ok[] = {0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90,
	                             0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F,
	                             0xA0, 0xA1, 0xA2};
	return memchr(ok, code, sizeof ok) != NULL;
}

/* Queue DISCONNECT(code, Reason String why) on the socket's own buffer
 * (not the hold: what is held is never acknowledged now). */
static void send_disconnect(roost_conn *c, uint8_t code, const char *why)
{
	uint8_t pbuf[256], pkt[300];
	roost_props_writer w;
	roost_props_writer_init(&w, pbuf, sizeof pbuf);
	if (c->v5.problem_info) { /* [MQTT-3.1.2-29] */
		size_t n = strlen(why);
		roost_props_put_bytes(&w, ROOST_PROP_REASON_STRING, why, n > 200 ? 200 : n);
	}
	roost_disconnect d = {.reason = code, .props = roost_props_writer_bytes(&w)};
	size_t n = roost_encode_disconnect(pkt, sizeof pkt, ROOST_MQTT_V5, &d);
	if (n == 0 || n > sizeof pkt)
		return;
	evbuffer_add(bufferevent_get_output(c->bev), pkt, n);
	c->linger = true;
}

void conn_send_auth(roost_conn *c, uint8_t reason, const uint8_t *data, size_t len)
{
	uint8_t pbuf[1100], pkt[1200];
	roost_props_writer w;
	roost_props_writer_init(&w, pbuf, sizeof pbuf);
	const char *method = c->auth_hook->auth_method;
	roost_props_put_bytes(&w, ROOST_PROP_AUTH_METHOD, method, strlen(method));
	if (len)
		roost_props_put_bytes(&w, ROOST_PROP_AUTH_DATA, data, len);
	roost_auth a = {.reason = reason, .props = roost_props_writer_bytes(&w)};
	size_t n = w.overflow ? 0 : roost_encode_auth(pkt, sizeof pkt, ROOST_MQTT_V5, &a);
	if (n == 0 || n > sizeof pkt) {
		conn_close(c, false, "AUTH does not fit");
		return;
	}
	conn_send(c, pkt, n);
}

void conn_disconnect(roost_conn *c, uint8_t code, const char *fmt, ...)
{
	if (c->state == CONN_DEAD)
		return;
	char why[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	if (!disconnect_code_ok(code))
		code = ROOST_RC5_UNSPECIFIED;
	/* A 3.1.1 client has no server DISCONNECT: it is just closed. */
	bool v5 = c->version == ROOST_MQTT_V5 && c->state == CONN_ACTIVE;
	if (v5)
		send_disconnect(c, code, why);
	/* [MQTT-3.1.2-8] a close for any reason but the client's DISCONNECT
	 * publishes the will. */
	if (v5)
		conn_close(c, true, "DISCONNECT 0x%02x: %s", code, why);
	else
		conn_close(c, true, "%s", why);
}

void conn_close_codec(roost_conn *c, const char *what, const roost_codec_error *e)
{
	/* 0x81 malformed, 0x82 protocol error, 0x95 packet too large. */
	conn_disconnect(c, roost_err_reason_code(e->err, ROOST_MQTT_V5), "%s: %s: %s at byte %zu", what,
	                roost_err_str(e->err), e->why ? e->why : "", e->offset);
}

/* Reason to log once the output of a closing connection is flushed. */
static const char *flush_reason(const roost_conn *c)
{
	return c->session ? "closed after reply" : "connection refused";
}

void conn_close_after_flush(roost_conn *c, const char *why)
{
	if (c->state >= CONN_CLOSING)
		return;
	log_id id;
	roost_log_notice(c->b->log, "client %s (%s): %s", conn_log_id(c, &id), c->addr, why);
	c->state = CONN_CLOSING;
	bufferevent_disable(c->bev, EV_READ);
	if (!c->hold && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		conn_close(c, false, "%s", flush_reason(c));
	/* otherwise write_cb finishes the close when the buffer drains, after
	 * conn_commit_done released what was held */
}

/* ---- events ---- */

static void write_cb(struct bufferevent *bev, void *arg)
{
	roost_conn *c = arg;
	if (c->state == CONN_CLOSING) {
		conn_close(c, false, "%s", flush_reason(c));
	} else if (c->slow_since && evbuffer_get_length(bufferevent_get_output(bev)) <= ROOST_OUTPUT_HIGH_WATER / 2) {
		/* Drained below the low mark: no longer slow; read again,
		 * starting with what arrived meanwhile. */
		c->slow_since = 0;
		bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
		if (c->read_paused) {
			c->read_paused = false;
			bufferevent_enable(bev, EV_READ);
			read_cb(bev, c);
		}
	}
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	roost_conn *c = arg;
	if (what & BEV_EVENT_EOF)
		conn_close(c, c->state == CONN_ACTIVE, "connection closed by peer without DISCONNECT");
	else if (what & BEV_EVENT_ERROR) {
		/* Under a WebSocket filter, the TLS bufferevent is the one below. */
		struct bufferevent *low = bufferevent_get_underlying(bev);
		unsigned long tls_err = c->listener && c->listener->ssl ? bufferevent_get_openssl_error(low ? low : bev) : 0;
		const char *ws_why = c->ws ? broker_ws_error(c->ws) : NULL;
		if (ws_why) {
			conn_close(c, c->state == CONN_ACTIVE, "WebSocket: %s", ws_why);
		} else if (tls_err) {
			char buf[256];
			ERR_error_string_n(tls_err, buf, sizeof buf);
			conn_close(c, c->state == CONN_ACTIVE, "TLS error: %s", buf);
		} else {
			conn_close(c, c->state == CONN_ACTIVE, "socket error: %s",
			           evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		}
	}
}

/* Milliseconds until a slow client's grace runs out; UINT64_MAX when not slow. */
static uint64_t slow_left_ms(const roost_conn *c, uint64_t now)
{
	if (!c->slow_since)
		return UINT64_MAX;
	uint64_t limit = (uint64_t)c->b->cfg->limits.slow_client_timeout * 1000u;
	uint64_t gone = now - c->slow_since;
	return gone >= limit ? 0 : limit - gone;
}

/*
 * One timer per connection serves both deadlines of an active connection:
 * keepalive expiry ([MQTT-3.1.2-24]: one and a half keepalive periods
 * without a packet) and a slow client's grace. It is not re-armed per
 * packet: when it fires it checks the clock and sleeps for what is left, so
 * an idle broker has no periodic wake-ups.
 */
static void schedule_timer(roost_conn *c)
{
	uint64_t now = roost_clock_now(&c->b->clock);
	uint64_t left = roost_keepalive_left_ms(c->last_rx_ms, now, c->keepalive); /* 0 keepalive: UINT64_MAX */
	uint64_t slow = slow_left_ms(c, now);
	if (slow < left)
		left = slow;
	event_del(c->timer);
	if (left == UINT64_MAX)
		return;
	struct timeval tv = {.tv_sec = (time_t)(left / 1000), .tv_usec = (suseconds_t)(left % 1000) * 1000};
	event_add(c->timer, &tv);
}

void conn_arm_keepalive(roost_conn *c)
{
	schedule_timer(c);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	roost_conn *c = arg;
	roost_broker *b = c->b;
	if (c->overflowed && c->state != CONN_DEAD) {
		/* No DISCONNECT: it would queue behind what the client does not read. */
		conn_close(c, true, "not reading: %zu bytes unsent (more than %u)",
		           evbuffer_get_length(bufferevent_get_output(c->bev)), ROOST_OUTPUT_HARD_LIMIT);
		return;
	}
	if (c->state == CONN_AWAIT_CONNECT) {
		conn_close(c, false, "no CONNECT within %u s", b->cfg->limits.connect_timeout);
		return;
	}
	if (c->state == CONN_AUTH_EXCHANGE) {
		conn_close(c, false, "authentication exchange not finished within %u s (limits.connect_timeout)",
		           b->cfg->limits.connect_timeout);
		return;
	}
	if (c->state != CONN_ACTIVE)
		return;
	uint64_t now = roost_clock_now(&b->clock);
	if (roost_keepalive_left_ms(c->last_rx_ms, now, c->keepalive) == 0) {
		conn_disconnect(c, ROOST_RC5_KEEPALIVE_TIMEOUT, "keepalive expired (%u s x 1.5 without a packet)",
		                c->keepalive);
		return;
	}
	if (slow_left_ms(c, now) == 0) {
		conn_close(c, true, "not reading: %zu bytes unsent for %u s (limits.slow_client_timeout)",
		           evbuffer_get_length(bufferevent_get_output(c->bev)), b->cfg->limits.slow_client_timeout);
		return;
	}
	schedule_timer(c);
}

/* ---- input ---- */

static void dispatch_switch(roost_conn *c, uint8_t type, const uint8_t *pkt, size_t len)
{
	if (c->state == CONN_AUTH_EXCHANGE && type != ROOST_MQTT_AUTH) {
		/* [MQTT-4.12.0-4] nothing but AUTH until CONNACK */
		conn_close(c, false, "%s during the authentication exchange [MQTT-4.12.0-4]", roost_mqtt_type_name(type));
		return;
	}
	if (c->state == CONN_AWAIT_CONNECT && type != ROOST_MQTT_CONNECT) {
		conn_close(c, false, "first packet is %s, not CONNECT [MQTT-3.1.0-1]",
		           roost_mqtt_type_name(type));
		return;
	}
	switch (type) {
	case ROOST_MQTT_CONNECT:
		if (c->state != CONN_AWAIT_CONNECT) {
			conn_disconnect(c, ROOST_RC5_PROTOCOL_ERROR, "second CONNECT [MQTT-3.1.0-2]");
			return;
		}
		handle_connect(c, pkt, len);
		return;
	case ROOST_MQTT_PUBLISH:
		handle_publish(c, pkt, len);
		return;
	case ROOST_MQTT_PUBACK:
	case ROOST_MQTT_PUBREC:
	case ROOST_MQTT_PUBCOMP:
		handle_puback(c, pkt, len);
		return;
	case ROOST_MQTT_PUBREL:
		handle_pubrel(c, pkt, len);
		return;
	case ROOST_MQTT_SUBSCRIBE:
		handle_subscribe(c, pkt, len);
		return;
	case ROOST_MQTT_UNSUBSCRIBE:
		handle_unsubscribe(c, pkt, len);
		return;
	case ROOST_MQTT_PINGREQ:
		handle_pingreq(c, pkt, len);
		return;
	case ROOST_MQTT_DISCONNECT:
		handle_disconnect(c, pkt, len);
		return;
	case ROOST_MQTT_AUTH:
		handle_auth(c, pkt, len);
		return;
	default:
		/* CONNACK, SUBACK, UNSUBACK, PINGRESP only flow server -> client;
		 * AUTH needs MQTT 5. */
		conn_disconnect(c, ROOST_RC5_PROTOCOL_ERROR, "unexpected %s from a client", roost_mqtt_type_name(type));
		return;
	}
}

/*
 * Until CONNACK the client is not authenticated: a packet longer than
 * limits.max_connect_size (a CONNECT with its will fits in the default) is
 * refused from its fixed header, before its body is buffered, so a
 * stranger cannot make us hold max_packet_size bytes per connection.
 */
static bool too_big_before_connack(roost_conn *c, const roost_frame *f)
{
	size_t remaining = f->remaining_len;
	uint32_t max = c->b->cfg->limits.max_connect_size;
	if (remaining <= max)
		return false;
	conn_close(c, false, "%s of %zu bytes before CONNACK exceeds limits.max_connect_size (%u)",
	           roost_mqtt_type_name(f->type), remaining, max);
	return true;
}

/*
 * Before CONNECT, bytes that are not MQTT but another protocol pointed at
 * this port: a TLS ClientHello (a handshake record, 0x16 0x03 0x0?) or an
 * HTTP request (a method and a space: a WebSocket client on the MQTT port).
 * Closed with a line that says what to change; a real CONNECT starts with
 * 0x10 and is never taken for either. True when it closed c.
 */
static bool closed_as_wrong_protocol(roost_conn *c, struct evbuffer *in)
{
	static const char *const methods[] = {"GET ", "POST ", "HEAD ", "PUT ", "OPTIONS ", "DELETE ", "CONNECT "};
	if (c->ws)
		return false; /* the filter already spoke HTTP: this is what the frames carried */
	uint8_t p[8];
	ev_ssize_t got = evbuffer_copyout(in, p, sizeof p);
	size_t n = got > 0 ? (size_t)got : 0;
	if (n >= 3 && p[0] == 0x16 && p[1] == 0x03 && p[2] <= 0x04) {
		conn_close(c, false, "not MQTT: looks like TLS: is the client pointed at the TLS port?");
		return true;
	}
	for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
		size_t ml = strlen(methods[i]);
		if (n >= ml && memcmp(p, methods[i], ml) == 0) {
			conn_close(c, false, "not MQTT: looks like HTTP (%.*s): is it a WebSocket client pointed at the "
			           "MQTT port? use a listener with protocol: websockets", (int)(ml - 1), methods[i]);
			return true;
		}
	}
	return false;
}

void conn_handle_packet(roost_conn *c, const uint8_t *pkt, size_t len)
{
	assert(len > 0);
	c->dispatch_mark = broker_store_writes(c->b);
	c->b->stats.packets_received++;
	c->b->stats.bytes_received += len;
	c->dispatching = true;
	dispatch_switch(c, pkt[0] >> 4, pkt, len);
	c->dispatching = false;
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	roost_conn *c = arg;
	roost_broker *b = c->b;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t max_packet = b->cfg->limits.max_packet_size;
	for (;;) {
		if (!c->read_paused && c->state == CONN_ACTIVE && conn_is_slow(c)) {
			/* Back-pressure: the client is not reading what we send, so
			 * we stop reading what it sends until its output drains. */
			c->read_paused = true;
			bufferevent_disable(bev, EV_READ);
			return;
		}
		if (c->state == CONN_AUTHENTICATING)
			return; /* what follows the CONNECT waits for its verdict */
		if (c->state != CONN_AWAIT_CONNECT && c->state != CONN_ACTIVE && c->state != CONN_AUTH_EXCHANGE) {
			evbuffer_drain(in, evbuffer_get_length(in));
			return;
		}
		size_t avail = evbuffer_get_length(in);
		if (avail == 0)
			return;
		uint8_t hdr[ROOST_MQTT_MAX_FIXED_HEADER];
		size_t hn = avail < sizeof hdr ? avail : sizeof hdr;
		evbuffer_copyout(in, hdr, hn);
		if (c->state == CONN_AWAIT_CONNECT && hdr[0] != (ROOST_MQTT_CONNECT << 4) &&
		    closed_as_wrong_protocol(c, in))
			return;
		roost_frame f = {0};
		roost_codec_error e = {0};
		roost_err err = roost_frame_peek(hdr, hn, max_packet, c->version, &f, &e);
		if (err == ROOST_ERR_NEED_MORE && f.header_len == 0)
			return; /* fixed header incomplete */
		if (err && err != ROOST_ERR_NEED_MORE) {
			conn_close_codec(c, "bad packet", &e);
			return;
		}
		if ((c->state == CONN_AWAIT_CONNECT || c->state == CONN_AUTH_EXCHANGE) && too_big_before_connack(c, &f))
			return;
		if (avail < f.total_len)
			return; /* body incomplete: wait for more */
		const uint8_t *pkt = evbuffer_pullup(in, (ev_ssize_t)f.total_len);
		if (!pkt) {
			conn_close(c, true, "out of memory reading a %zu-byte packet", f.total_len);
			return;
		}
		c->last_rx_ms = roost_clock_now(&b->clock);
		conn_handle_packet(c, pkt, f.total_len);
		evbuffer_drain(in, f.total_len);
	}
}
