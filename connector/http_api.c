/*
 * http_api.c — the HTTP component: roost's REST API in Home Assistant's
 * shape, on one evhttp server.
 *
 *   GET  /api/                          {"message": "API running."}
 *   POST /api/services/mqtt/publish     publish through the broker ([] on success)
 *   POST /api/services/mqtt/mqtt_send   the 2015 component's name for the same
 *   POST /api/events/<event_type>       fire an event on roost's bus (origin REMOTE)
 *   GET  /api/stream[?restrict=a,b]     the bus as server-sent events
 *
 * and whatever routes later components add (include/roost/http.h). Request
 * validation lives in http_request.c (pure, unit-tested); this file is the
 * I/O half: the server, the gate every connection reads through (limits,
 * deadlines, the token and the body's size checked before the body is
 * read: see http_conn), dispatch, and the event streams.
 *
 * Event streams. One bus listener serves every stream: each event is encoded
 * once into a refcounted block that every interested stream's output buffer
 * references (evbuffer_add_reference), so N watchers cost N small chunk
 * headers, not N copies. A client that stops reading must not make roost
 * buffer without bound: past ROOST_HTTP_STREAM_MAX_BUFFERED queued bytes its
 * connection is closed. Connections are never freed inside the bus dispatch
 * or an evhttp callback that still uses them (Redis's freeClientAsync rule):
 * the stream is marked and a zero-delay event frees it from a clean stack.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/queue.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "roost/alloc.h"
#include "roost/broker.h"
#include "roost/bus.h"
#include "roost/component.h"
#include "roost/http.h"
#include "roost/log.h"
#include "roost/message.h"

#include "http_request.h"

/* Home Assistant pinged /api/stream clients every 50 s; so do we. */
#define ROOST_HTTP_STREAM_PING_SECS 50
/* Output a stream client may leave unread before it is disconnected. */
#define ROOST_HTTP_STREAM_MAX_BUFFERED (1024 * 1024)
/* A request the gate refused, as evhttp is given it instead: a request
 * without a body, which dispatch() answers with the refusal. */
static const char REFUSED_HEAD[] = "GET / HTTP/1.1\r\n\r\n";
static const char REFUSED_HEAD_CLOSE[] = "GET / HTTP/1.1\r\nConnection: close\r\n\r\n";

static const char PING[] = "data: ping\n\n";

typedef struct stream {
	struct stream *prev, *next;
	roost_http *h;
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	char *restrict_list; /* NULL: every event type */
	char peer[64];
	bool closing;        /* marked; reap_cb frees it */
} stream;

/*
 * The gate. evhttp buffers a request's body before any callback of ours
 * runs (libevent 2.1 has no server-side header callback), and answers
 * whatever it refuses itself with an HTML page. So every connection reads
 * through a filter bufferevent (evhttp_set_bevcb) whose input filter,
 * gate_in, sees each request head before evhttp does and decides on it with
 * roost_http_head_check (token, Content-Length, framing) while the body is
 * still in the kernel:
 *
 *   HEAD   collecting a head (deadline http.header_timeout from its first byte)
 *          admitted: passed on; BODY if it has one, else the next HEAD
 *          refused:  evhttp gets REFUSED_HEAD instead, dispatch() answers
 *                    the refusal as JSON; SKIP the declared body, or DISCARD
 *                    when its end is not known (and the answer closes)
 *   BODY   passing body_left bytes on (deadline http.body_timeout)
 *   SKIP   dropping body_left bytes of a refused request (same deadline)
 *   DISCARD dropping everything until the connection closes
 *
 * A deadline that passes shuts the socket down; evhttp sees the EOF and
 * frees the connection. Only a refusal's own answer tells the client why.
 * The filter's context is freed with the bufferevent, which libevent
 * finalizes later than evhttp frees the connection (and closes the socket):
 * so an event of ours first checks that evhttp still holds the bufferevent
 * (bufferevent_free clears its callbacks at once), and never calls evhttp.
 *
 * Output goes through gate_out: evhttp takes "the filter's output is empty"
 * for "written", and closes the socket right after an answer it must close
 * on (Connection: close, HTTP/1.0). So nothing may wait below the filter
 * when its output empties: gate_out writes to the socket directly, and only
 * when the kernel is full moves all but the last byte to the socket's
 * bufferevent, whose write callback (it drained) calls gate_out again. A
 * filter passes output on only while writing is enabled, and evhttp queues
 * an answer before it enables writing: the kick event passes it on from the
 * loop (and retries the rare last byte the kernel had no room for).
 */
typedef enum gate_state { GATE_HEAD, GATE_BODY, GATE_SKIP, GATE_DISCARD } gate_state;

typedef struct http_conn {
	struct http_conn *prev, *next;
	roost_http *h;            /* NULL once the server is freed */
	struct bufferevent *bev;  /* the filter evhttp reads from */
	struct event *timer;      /* the deadline of the state; at accept, the over-limit close */
	struct event *kick;       /* writes what evhttp queued while writing was off */
	evutil_socket_t fd;       /* -1 until first read */
	bool in_kick;             /* gate_out runs from the kick (see gate_out) */
	gate_state state;
	size_t scan;              /* how much of the head was searched for its end */
	uint64_t body_left;
	bool over_limit;          /* refused at accept: http.max_connections were open */
	uint64_t passed;          /* request heads given to evhttp (refused ones included) */
	uint64_t dispatched;      /* requests dispatch() saw */
	uint64_t refused_at;      /* the ordinal of the refused head; 0: none pending */
	roost_http_error refusal;
} http_conn;

struct roost_http {
	roost_broker *b;
	const roost_log *log;
	const roost_http_config *cfg;
	struct evhttp *http;
	const char *token;        /* borrowed from the config; NULL: none required */
	roost_http_routes *routes;
	http_conn *conns;
	uint32_t n_conns;         /* admitted and open */
	uint64_t conns_refused;   /* over http.max_connections */
	uint64_t conns_timed_out; /* a head or body not sent in time */
	uint32_t n_streams;
	stream *streams;
	roost_bus_listener *bus_l;
	struct event *ping_ev;
	struct event *reap_ev;
	bool service_added;
};

/* ---- answering (http.h) --------------------------------------------------- */

void roost_http_reply_json_text(struct evhttp_request *req, int status, const char *json)
{
	struct evbuffer *buf = evbuffer_new();
	if (!buf || evbuffer_add(buf, json, strlen(json)) != 0) {
		evbuffer_free(buf);
		evhttp_send_reply(req, 500, NULL, NULL);
		return;
	}
	struct evkeyvalq *hdr = evhttp_request_get_output_headers(req);
	evhttp_remove_header(hdr, "Content-Type");
	evhttp_add_header(hdr, "Content-Type", "application/json");
	/* A NULL reason makes evhttp use the standard phrase for status. */
	evhttp_send_reply(req, status, NULL, buf);
	evbuffer_free(buf);
}

void roost_http_reply_json(struct evhttp_request *req, int status, const cJSON *body)
{
	char *txt = cJSON_PrintUnformatted(body);
	if (!txt) {
		evhttp_send_reply(req, 500, NULL, NULL);
		return;
	}
	roost_http_reply_json_text(req, status, txt);
	cJSON_free(txt);
}

void roost_http_reply_message(struct evhttp_request *req, int status, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	cJSON *obj = cJSON_CreateObject();
	if (!obj || !cJSON_AddStringToObject(obj, "message", text)) {
		cJSON_Delete(obj);
		evhttp_send_reply(req, 500, NULL, NULL);
		return;
	}
	roost_http_reply_json(req, status, obj);
	cJSON_Delete(obj);
}

void roost_http_reply_publish_error(struct evhttp_request *req, roost_err err, const char *topic)
{
	int status = roost_http_publish_status(err);
	const char *why = status == 403 ? "not authorised" : roost_err_str(err);
	roost_http_reply_message(req, status, "Publish to '%.200s' refused: %s", topic, why);
}

const char *roost_http_body(struct evhttp_request *req, size_t *len)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	*len = in ? evbuffer_get_length(in) : 0;
	if (*len == 0)
		return "";
	return (const char *)evbuffer_pullup(in, -1);
}

cJSON *roost_http_body_object(struct evhttp_request *req)
{
	size_t len;
	const char *body = roost_http_body(req, &len);
	roost_http_error err = {500, "Out of memory"};
	cJSON *obj = body ? roost_http_json_object_parse(body, len, "Data", &err) : NULL;
	if (!obj)
		roost_http_reply_message(req, err.status, "%s", err.message);
	return obj;
}

roost_err roost_http_route_add(roost_http *h, const char *method, const char *path,
                               roost_http_handler fn, void *ctx)
{
	return roost_http_routes_add(h->routes, method, path, fn, ctx);
}

void roost_http_route_remove(roost_http *h, const char *method, const char *path)
{
	(void)roost_http_routes_remove(h->routes, method, path);
}

/* ---- the gate (see http_conn above) ---------------------------------------------- */

/* 1st, 2nd, 4th, 8th ...: a running count in the log, never a flood. */
static bool worth_logging(uint64_t n)
{
	return (n & (n - 1)) == 0;
}

static void peer_name(evutil_socket_t fd, char *buf, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char host[NI_MAXHOST], serv[NI_MAXSERV];
	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sl) != 0 ||
	    getnameinfo((struct sockaddr *)&ss, sl, host, sizeof host, serv, sizeof serv,
	                NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		snprintf(buf, cap, "?");
	else
		snprintf(buf, cap, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);
}

static void conn_deadline(http_conn *c, uint32_t secs)
{
	struct timeval tv = {(time_t)secs, 0};
	if (c->timer)
		evtimer_add(c->timer, &tv);
}

static void conn_deadline_clear(http_conn *c)
{
	if (c->timer)
		evtimer_del(c->timer);
}

/* Whether evhttp still holds the connection: bufferevent_free clears the
 * callbacks at once, while the memory lives on until finalized. */
static bool conn_held(http_conn *c)
{
	bufferevent_event_cb eventcb = NULL;
	bufferevent_getcb(c->bev, NULL, NULL, &eventcb, NULL);
	return c->h && eventcb;
}

/* Close from below evhttp: it reads EOF and frees the connection. */
static void conn_shutdown(http_conn *c)
{
	evutil_socket_t fd = conn_held(c) ? bufferevent_getfd(c->bev) : -1;
	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
}

static void conn_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	http_conn *c = arg;
	if (!conn_held(c))
		return;
	c->in_kick = true;
	bufferevent_flush(c->bev, EV_WRITE, BEV_NORMAL);
	c->in_kick = false; /* c outlives a free inside: it is finalized later */
}

static void conn_output_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	(void)buf;
	http_conn *c = arg;
	if (info->n_added && c->kick)
		event_active(c->kick, EV_TIMEOUT, 1);
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	http_conn *c = arg;
	roost_http *h = c->h;
	char peer[NI_MAXHOST + 16];
	if (!conn_held(c))
		return;
	c->fd = bufferevent_getfd(c->bev);
	peer_name(c->fd, peer, sizeof peer);
	conn_shutdown(c);
	if (c->over_limit) {
		uint64_t n = ++h->conns_refused;
		if (worth_logging(n))
			roost_log_warn(h->log, "http: closed a new connection from %s: http.max_connections "
			               "(%u) are open; %llu refused so far", peer, h->cfg->max_connections,
			               (unsigned long long)n);
		return;
	}
	if (c->state == GATE_DISCARD)
		return; /* a refused client lingering: it had its answer */
	uint64_t n = ++h->conns_timed_out;
	if (worth_logging(n))
		roost_log_warn(h->log, "http: closed the connection of %s: request %s not received "
		               "within http.%s_timeout (%u s); %llu so far", peer,
		               c->state == GATE_HEAD ? "head" : "body",
		               c->state == GATE_HEAD ? "header" : "body",
		               c->state == GATE_HEAD ? h->cfg->header_timeout : h->cfg->body_timeout,
		               (unsigned long long)n);
}

/* evhttp gets REFUSED_HEAD instead of the request; dispatch() answers it. */
static void refuse(http_conn *c, const roost_http_error *err, bool framed, uint64_t body_len,
                   struct evbuffer *dst)
{
	roost_http *h = c->h;
	if (c->refused_at > c->dispatched) {
		/* The previous refusal (pipelined) is not answered yet: this
		 * connection has had enough chances. */
		c->state = GATE_DISCARD;
		conn_deadline(c, h->cfg->header_timeout);
		return;
	}
	c->refusal = *err;
	c->refused_at = ++c->passed;
	if (framed) {
		/* Its end is known: skip its body, keep the connection. */
		evbuffer_add(dst, REFUSED_HEAD, sizeof REFUSED_HEAD - 1);
		c->body_left = body_len;
		c->state = body_len ? GATE_SKIP : GATE_HEAD;
		if (body_len)
			conn_deadline(c, h->cfg->body_timeout);
	} else {
		evbuffer_add(dst, REFUSED_HEAD_CLOSE, sizeof REFUSED_HEAD_CLOSE - 1);
		c->state = GATE_DISCARD;
		conn_deadline(c, h->cfg->header_timeout); /* if it never reads the answer */
	}
}

/* The request target as evhttp will parse it (else its own HTML 400). */
static bool target_ok(const char *t, size_t n)
{
	char *copy = roost_strndup(t, n);
	struct evhttp_uri *u = copy ? evhttp_uri_parse_with_flags(copy, EVHTTP_URI_NONCONFORMANT) : NULL;
	roost_free(copy);
	if (u)
		evhttp_uri_free(u);
	return u != NULL;
}

/* Decide on the head at the start of src once it is complete; false while
 * it is not (nothing consumed). */
static bool gate_head(http_conn *c, struct evbuffer *src, struct evbuffer *dst)
{
	roost_http *h = c->h;
	size_t avail = evbuffer_get_length(src);
	if (c->scan == 0)
		conn_deadline(c, h->cfg->header_timeout); /* its first bytes */
	size_t look = avail > ROOST_HTTP_MAX_HEAD ? ROOST_HTTP_MAX_HEAD : avail;
	const char *p = (const char *)evbuffer_pullup(src, (ev_ssize_t)look);
	roost_http_head hd = {.err = {503, "Out of memory"}};
	size_t end = p ? roost_http_head_end(p, look, &c->scan) : 0;
	if (p && !end) {
		if (avail < ROOST_HTTP_MAX_HEAD)
			return false;
		hd.err.status = 431;
		snprintf(hd.err.message, sizeof hd.err.message,
		         "Request header fields too large (limit %d bytes)", ROOST_HTTP_MAX_HEAD);
	}
	if (end) {
		roost_http_head_check(p, end, h->token, ROOST_HTTP_MAX_BODY, &hd);
		if (!hd.err.status && !target_ok(p + hd.target_off, hd.target_len))
			hd.err = (roost_http_error){400, "Bad request: malformed request target"};
	}
	conn_deadline_clear(c);
	c->scan = 0;
	if (hd.err.status) {
		evbuffer_drain(src, end ? end : avail);
		refuse(c, &hd.err, end && hd.framed, hd.body_len, dst);
		return true;
	}
	evbuffer_remove_buffer(src, dst, end);
	c->passed++;
	if (hd.body_len) {
		c->state = GATE_BODY;
		c->body_left = hd.body_len;
		conn_deadline(c, h->cfg->body_timeout);
	}
	return true;
}

/* Pass or drop up to the end of the current body. */
static size_t gate_body(http_conn *c, struct evbuffer *src, struct evbuffer *dst, ev_ssize_t limit)
{
	size_t n = evbuffer_get_length(src);
	if (n > c->body_left)
		n = (size_t)c->body_left;
	if (c->state == GATE_SKIP)
		evbuffer_drain(src, n);
	else if ((n = limit >= 0 && n > (size_t)limit ? (size_t)limit : n) > 0)
		evbuffer_remove_buffer(src, dst, n);
	c->body_left -= n;
	if (!c->body_left) {
		conn_deadline_clear(c);
		c->state = GATE_HEAD;
	}
	return n;
}

/* The filter between the socket (src) and evhttp (dst). It must return
 * BEV_OK only after progress: libevent calls it again while src has data. */
static enum bufferevent_filter_result gate_in(struct evbuffer *src, struct evbuffer *dst,
                                              ev_ssize_t limit, enum bufferevent_flush_mode mode,
                                              void *ctx)
{
	(void)mode;
	http_conn *c = ctx;
	if (c->fd < 0)
		c->fd = bufferevent_getfd(c->bev);
	if (!c->h || c->over_limit)
		c->state = GATE_DISCARD;
	bool progress = false, more = true;
	for (size_t avail; more && (avail = evbuffer_get_length(src)) > 0;) {
		switch (c->state) {
		case GATE_DISCARD:
			evbuffer_drain(src, avail);
			break;
		case GATE_HEAD:
			more = gate_head(c, src, dst);
			break;
		case GATE_BODY:
		case GATE_SKIP:
			more = gate_body(c, src, dst, limit) > 0; /* 0: evhttp's input is full */
			break;
		}
		progress |= more;
	}
	return progress ? BEV_OK : BEV_NEED_MORE;
}

/* The filter between evhttp (src) and the socket (dst); see http_conn. */
static enum bufferevent_filter_result gate_out(struct evbuffer *src, struct evbuffer *dst,
                                               ev_ssize_t limit, enum bufferevent_flush_mode mode,
                                               void *ctx)
{
	(void)limit;
	(void)mode;
	http_conn *c = ctx;
	size_t n = evbuffer_get_length(src);
	if (n == 0 || evbuffer_get_length(dst) > 0)
		return BEV_NEED_MORE; /* dst drained: its write callback calls us again */
	if (!c->in_kick) {
		/* Emptying src may make evhttp free the connection from inside
		 * this call; libevent's caller here (the lower bufferevent's write
		 * callback) holds no reference and re-arms a timeout afterwards.
		 * The kick calls us holding one. */
		if (c->kick)
			event_active(c->kick, EV_TIMEOUT, 1);
		return BEV_NEED_MORE;
	}
	evutil_socket_t fd = bufferevent_getfd(c->bev);
	int w = fd >= 0 ? evbuffer_write(src, fd) : -1;
	if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
		/* Let the socket's bufferevent meet the error and report it. */
		evbuffer_add_buffer(dst, src);
		return BEV_OK;
	}
	n = evbuffer_get_length(src);
	if (n > 1)
		evbuffer_remove_buffer(src, dst, n - 1); /* the kernel is full: wait below */
	else if (n == 1 && c->kick) {
		struct timeval soon = {0, 10000}; /* the kernel had no room for it */
		event_add(c->kick, &soon);
	}
	return w > 0 || n > 1 ? BEV_OK : BEV_NEED_MORE;
}

/* Freed with the bufferevent, after evhttp let go of the connection. */
static void conn_free_ctx(void *ctx)
{
	http_conn *c = ctx;
	roost_http *h = c->h;
	if (h) {
		if (c->prev)
			c->prev->next = c->next;
		else
			h->conns = c->next;
		if (c->next)
			c->next->prev = c->prev;
		if (!c->over_limit)
			h->n_conns--;
	}
	if (c->timer)
		event_free(c->timer);
	if (c->kick)
		event_free(c->kick);
	roost_free(c);
}

/* evhttp_set_bevcb: every accepted connection reads through the gate. */
static struct bufferevent *conn_new(struct event_base *base, void *arg)
{
	roost_http *h = arg;
	http_conn *c = roost_calloc(1, sizeof *c);
	struct bufferevent *under = NULL;
	/* The socket is evhttp's to close (evhttp_connection_free does): the
	 * lower bufferevent must not close it again; the filter frees it. */
	if (!c || !(c->timer = evtimer_new(base, conn_timer_cb, c)) ||
	    !(c->kick = event_new(base, -1, 0, conn_kick_cb, c)) ||
	    !(under = bufferevent_socket_new(base, -1, 0)) ||
	    !(c->bev = bufferevent_filter_new(under, gate_in, gate_out, BEV_OPT_CLOSE_ON_FREE,
	                                      conn_free_ctx, c)) ||
	    !evbuffer_add_cb(bufferevent_get_output(c->bev), conn_output_cb, c)) {
		if (c && c->bev)
			bufferevent_free(c->bev); /* frees under and, finalized, c */
		else if (under)
			bufferevent_free(under);
		if (c && !c->bev) {
			if (c->timer)
				event_free(c->timer);
			if (c->kick)
				event_free(c->kick);
			roost_free(c);
		}
		roost_log_warn(h->log, "http: out of memory accepting a connection");
		return NULL; /* evhttp makes a plain one, which dispatch() answers 503 */
	}
	c->h = h;
	c->fd = -1;
	c->next = h->conns;
	if (c->next)
		c->next->prev = c;
	h->conns = c;
	if (h->n_conns >= h->cfg->max_connections) {
		/* evhttp sets the socket after this returns: close it from the loop. */
		c->over_limit = true;
		event_active(c->timer, EV_TIMEOUT, 1);
	} else {
		h->n_conns++;
	}
	return c->bev;
}

static http_conn *conn_of(roost_http *h, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
	for (http_conn *c = h->conns; c; c = c->next)
		if (c->bev == bev)
			return c;
	return NULL;
}

/* ---- event streams ---------------------------------------------------------- */

/* One encoded event, shared by every stream's output buffer. */
typedef struct sse_block {
	int refs;
	size_t len;
	char *data;
} sse_block;

static void block_unref(sse_block *bl)
{
	if (--bl->refs == 0) {
		roost_free(bl->data);
		roost_free(bl);
	}
}

static void block_cleanup(const void *data, size_t len, void *extra)
{
	(void)data;
	(void)len;
	block_unref(extra);
}

static void stream_unlink_free(stream *s)
{
	roost_http *h = s->h;
	h->n_streams--;
	if (s->prev)
		s->prev->next = s->next;
	else
		h->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	roost_free(s->restrict_list);
	roost_free(s);
}

static void stream_close_later(stream *s, const char *why)
{
	if (s->closing)
		return;
	s->closing = true;
	roost_log_warn(s->h->log, "http: closing event stream of %s: %s", s->peer, why);
	event_active(s->h->reap_ev, EV_TIMEOUT, 1);
}

/* Frees the streams marked closing, from a stack no evhttp or bus code is on. */
static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	roost_http *h = arg;
	for (stream *s = h->streams, *n; s; s = n) {
		n = s->next;
		if (!s->closing)
			continue;
		struct evhttp_connection *evcon = s->evcon;
		evhttp_connection_set_closecb(evcon, NULL, NULL);
		stream_unlink_free(s);
		/* Frees the request still attached to it. */
		evhttp_connection_free(evcon);
	}
}

/* evhttp is freeing the connection: the client went away or failed. */
static void stream_closed_cb(struct evhttp_connection *evcon, void *arg)
{
	(void)evcon;
	stream *s = arg;
	struct evhttp_request *req = s->req;
	roost_log_info(s->h->log, "http: event stream of %s closed", s->peer);
	stream_unlink_free(s);
	/* When the peer closed, evhttp detached our unfinished request from the
	 * connection and left it to us; ending it frees it. */
	if (evhttp_request_get_connection(req) == NULL)
		evhttp_send_reply_end(req);
}

/* What waits for the client: in the gate's filter and in the socket's
 * bufferevent below it (the filter passes output straight down). */
static size_t stream_queued(const stream *s)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(s->evcon);
	size_t n = 0;
	for (; bev; bev = bufferevent_get_underlying(bev))
		n += evbuffer_get_length(bufferevent_get_output(bev));
	return n;
}

/* Queue len bytes at data; cleanup/extra as evbuffer_add_reference. */
static void stream_send(stream *s, const void *data, size_t len,
                        evbuffer_ref_cleanup_cb cleanup, void *extra)
{
	if (stream_queued(s) > ROOST_HTTP_STREAM_MAX_BUFFERED) {
		if (cleanup)
			cleanup(data, len, extra);
		stream_close_later(s, "client is not reading (output buffer over "
		                      "1 MiB)");
		return;
	}
	struct evbuffer *buf = evbuffer_new();
	if (!buf || evbuffer_add_reference(buf, data, len, cleanup, extra) != 0) {
		evbuffer_free(buf);
		if (cleanup)
			cleanup(data, len, extra);
		stream_close_later(s, "out of memory");
		return;
	}
	evhttp_send_reply_chunk(s->req, buf);
	evbuffer_free(buf); /* whatever evhttp did not take is released here */
}

static void on_event(void *ctx, const roost_event *ev)
{
	roost_http *h = ctx;
	if (!h->streams)
		return;
	sse_block *bl = roost_malloc(sizeof *bl);
	if (!bl || !(bl->data = roost_http_sse_event(ev, &bl->len))) {
		roost_free(bl);
		roost_log_warn(h->log, "http: out of memory encoding event %s for the streams", ev->type);
		return;
	}
	bl->refs = 1; /* ours, for the loop */
	for (stream *s = h->streams; s; s = s->next) {
		if (s->closing || !roost_http_restrict_match(s->restrict_list, ev->type))
			continue;
		bl->refs++;
		stream_send(s, bl->data, bl->len, block_cleanup, bl);
	}
	block_unref(bl);
}

static void ping_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	roost_http *h = arg;
	for (stream *s = h->streams; s; s = s->next)
		if (!s->closing)
			stream_send(s, PING, sizeof PING - 1, NULL, NULL);
}

static void stream_handler(void *ctx, struct evhttp_request *req, const char *rest)
{
	(void)rest;
	roost_http *h = ctx;
	if (h->n_streams >= h->cfg->max_streams) {
		roost_log_warn(h->log, "http: refused an event stream: http.max_streams (%u) are open",
		               h->cfg->max_streams);
		roost_http_reply_message(req, 503, "Too many event streams (http.max_streams is %u)",
		                         h->cfg->max_streams);
		return;
	}
	const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	struct evkeyvalq params;
	TAILQ_INIT(&params);
	if (query && evhttp_parse_query_str(query, &params) != 0) {
		roost_http_reply_message(req, 400, "Invalid query string");
		return;
	}
	const char *restrict_list = evhttp_find_header(&params, "restrict");
	stream *s = roost_calloc(1, sizeof *s);
	if (!s || (restrict_list && *restrict_list && !(s->restrict_list = roost_strdup(restrict_list)))) {
		evhttp_clear_headers(&params);
		roost_free(s);
		roost_http_reply_message(req, 500, "Out of memory");
		return;
	}
	evhttp_clear_headers(&params);
	s->h = h;
	s->req = req;
	s->evcon = evhttp_request_get_connection(req);
	char *addr = NULL;
	ev_uint16_t port = 0;
	evhttp_connection_get_peer(s->evcon, &addr, &port);
	snprintf(s->peer, sizeof s->peer, "%s:%u", addr ? addr : "?", (unsigned)port);

	struct evkeyvalq *hdr = evhttp_request_get_output_headers(req);
	evhttp_add_header(hdr, "Content-Type", "text/event-stream");
	evhttp_add_header(hdr, "Cache-Control", "no-cache");
	evhttp_send_reply_start(req, 200, "OK");
	/* No idle timeout on a stream: it is quiet by nature, and a client
	 * that stops reading is cut off by the buffered-output limit. */
	bufferevent_set_timeouts(evhttp_connection_get_bufferevent(s->evcon), NULL, NULL);
	evhttp_connection_set_closecb(s->evcon, stream_closed_cb, s);
	h->n_streams++;
	s->next = h->streams;
	if (s->next)
		s->next->prev = s;
	h->streams = s;
	roost_log_info(h->log, "http: event stream opened by %s%s%s", s->peer,
	               s->restrict_list ? ", restricted to " : "",
	               s->restrict_list ? s->restrict_list : "");
	/* As Home Assistant: a ping first, so the client knows it is connected. */
	stream_send(s, PING, sizeof PING - 1, NULL, NULL);
}

/* ---- the built-in routes ------------------------------------------------------ */

static void api_status_handler(void *ctx, struct evhttp_request *req, const char *rest)
{
	(void)ctx;
	(void)rest;
	roost_http_reply_message(req, 200, "API running.");
}

static void publish_handler(void *ctx, struct evhttp_request *req, const char *rest)
{
	(void)rest;
	roost_http *h = ctx;
	size_t len;
	const char *body = roost_http_body(req, &len);
	roost_http_publish p;
	roost_http_error err;
	if (!body) {
		roost_http_reply_message(req, 500, "Out of memory");
		return;
	}
	if (roost_http_publish_parse(body, len, &p, &err) != ROOST_OK) {
		roost_http_reply_message(req, err.status, "%s", err.message);
		return;
	}
	/* The properties are in stored form: the expiry counts from the
	 * broker's first look at the message, which is now. */
	roost_msg *m = roost_msg_new_props(p.topic, strlen(p.topic), p.props, p.props_len, (const uint8_t *)p.payload,
	                                   p.payload_len, p.qos, p.retain);
	roost_err e = m ? roost_broker_publish(h->b, m) : ROOST_ERR_NOMEM;
	roost_msg_unref(m);
	if (e) {
		roost_log_warn(h->log, "http: publish to %.200s refused by the broker: %s", p.topic,
		               roost_err_str(e));
		roost_http_reply_publish_error(req, e, p.topic);
	} else {
		roost_log_debug(h->log, "http: published %zu bytes to %s (qos %u%s)", p.payload_len,
		                p.topic, (unsigned)p.qos, p.retain ? ", retained" : "");
		/* Home Assistant answers a service call with the states it changed. */
		roost_http_reply_json_text(req, 200, "[]");
	}
	roost_http_publish_cleanup(&p);
}

static void event_handler(void *ctx, struct evhttp_request *req, const char *type)
{
	roost_http *h = ctx;
	size_t len;
	const char *body = roost_http_body(req, &len);
	char *data = NULL;
	roost_http_error err;
	if (!body) {
		roost_http_reply_message(req, 500, "Out of memory");
		return;
	}
	if (roost_http_event_parse(type, body, len, &data, &err) != ROOST_OK) {
		roost_http_reply_message(req, err.status, "%s", err.message);
		return;
	}
	/* Home Assistant marks events fired through its REST API as REMOTE. */
	roost_bus_fire(roost_broker_bus(h->b), type, data, "REMOTE", 0);
	roost_free(data);
	roost_http_reply_message(req, 200, "Event %s fired.", type);
}

/* ---- dispatch ------------------------------------------------------------------- */

static const char *method_name(enum evhttp_cmd_type cmd)
{
	switch (cmd) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	case EVHTTP_REQ_PATCH: return "PATCH";
	case EVHTTP_REQ_TRACE: return "TRACE";
	case EVHTTP_REQ_CONNECT: return "CONNECT";
	default: return "OTHER";
	}
}

static void answer(struct evhttp_request *req, const roost_http_error *e)
{
	if (e->status == 401)
		evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", "Bearer");
	roost_http_reply_message(req, e->status, "%s", e->message);
}

/* The gate refused this request before its body was read. */
static void answer_refusal(roost_http *h, http_conn *c, struct evhttp_request *req)
{
	char peer[NI_MAXHOST + 16];
	peer_name(c->fd, peer, sizeof peer);
	roost_log_debug(h->log, "http: refused a request from %s before its body: %d %s", peer,
	                c->refusal.status, c->refusal.message);
	answer(req, &c->refusal);
}

static void dispatch(struct evhttp_request *req, void *arg)
{
	roost_http *h = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	/* evhttp answers requests it could not read itself, and the gate
	 * passes it none: this is only defence. */
	if (!evhttp_request_get_uri(req) || !uri) {
		roost_http_reply_message(req, 400, "Bad request");
		return;
	}
	http_conn *c = conn_of(h, req);
	if (!c) {
		roost_http_reply_message(req, 503, "Out of memory");
		return;
	}
	if (++c->dispatched == c->refused_at) {
		answer_refusal(h, c, req);
		return;
	}
	/* Checked by the gate already; checked again on what evhttp parsed, so
	 * that no difference between the two header parsers can let one by. */
	if (h->token && !roost_http_auth_ok(evhttp_find_header(evhttp_request_get_input_headers(req),
	                                                       "Authorization"),
	                                    h->token)) {
		answer(req, &(roost_http_error){401, "Unauthorized"});
		return;
	}
	const char *path = evhttp_uri_get_path(uri);
	if (!path || !*path)
		path = "/";
	roost_http_handler fn = NULL;
	void *ctx = NULL;
	const char *rest = NULL;
	char allow[64];
	switch (roost_http_routes_match(h->routes, method_name(evhttp_request_get_command(req)), path,
	                                &fn, &ctx, &rest, allow, sizeof allow)) {
	case ROOST_HTTP_MATCH_FOUND:
		fn(ctx, req, rest);
		return;
	case ROOST_HTTP_MATCH_NO_METHOD:
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
		roost_http_reply_message(req, 405, "Method not allowed");
		return;
	case ROOST_HTTP_MATCH_NO_PATH:
		roost_http_reply_message(req, 404, "Not found");
		return;
	}
}

/* ---- the component ------------------------------------------------------------------ */

static void http_free(roost_http *h)
{
	if (!h)
		return;
	if (h->service_added)
		roost_broker_service_remove(h->b, "http");
	roost_bus_unlisten(roost_broker_bus(h->b), h->bus_l);
	/* Streams first, without their close callbacks: evhttp_free then frees
	 * their connections and requests. */
	while (h->streams) {
		evhttp_connection_set_closecb(h->streams->evcon, NULL, NULL);
		stream_unlink_free(h->streams);
	}
	/* The gate contexts outlive evhttp's connections (libevent finalizes
	 * bufferevents later): cut them loose now. */
	for (http_conn *c = h->conns; c; c = c->next) {
		c->h = NULL;
		event_free(c->timer);
		event_free(c->kick);
		c->timer = c->kick = NULL;
	}
	h->conns = NULL;
	if (h->ping_ev)
		event_free(h->ping_ev);
	if (h->reap_ev)
		event_free(h->reap_ev);
	if (h->http)
		evhttp_free(h->http);
	roost_http_routes_free(h->routes);
	roost_free(h);
}

/* Bind, and log the port actually bound (http.port 0 = ephemeral, for tests). */
static roost_err http_listen(roost_http *h, const char *bind, int port)
{
	struct evhttp_bound_socket *sock = evhttp_bind_socket_with_handle(h->http, bind, (ev_uint16_t)port);
	if (!sock) {
		/* Optional component (component.h): the broker runs on without the
		 * API, so say which key gets it back. */
		int err = errno;
		if (err == EADDRINUSE)
			roost_log_error(h->log, "http.port %d is in use: set http.port to another port or -1 "
			                        "to turn the HTTP API off", port);
		else
			roost_log_error(h->log, "http: cannot listen on %s:%d: %s: check http.bind and "
			                        "http.port, or set http.port to -1 to turn the HTTP API off",
			                bind, port, strerror(err));
		return ROOST_ERR_IO;
	}
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	int bound = port;
	if (getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&ss, &sl) == 0)
		bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
		                                       : ((struct sockaddr_in *)&ss)->sin_port);
	if (strchr(bind, ':'))
		roost_log_notice(h->log, "http listening on [%s]:%d", bind, bound);
	else
		roost_log_notice(h->log, "http listening on %s:%d", bind, bound);
	return ROOST_OK;
}

static roost_err add_builtin_routes(roost_http *h)
{
	static const struct {
		const char *method, *path;
		roost_http_handler fn;
	} builtin[] = {
		{"GET", "/api/", api_status_handler},
		{"POST", "/api/services/mqtt/publish", publish_handler},
		{"POST", "/api/services/mqtt/mqtt_send", publish_handler}, /* the 2015 name */
		{"POST", "/api/events/{event_type}", event_handler},
		{"GET", "/api/stream", stream_handler},
	};
	for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++) {
		roost_err e = roost_http_routes_add(h->routes, builtin[i].method, builtin[i].path,
		                                    builtin[i].fn, h);
		if (e)
			return e;
	}
	return ROOST_OK;
}

static roost_err http_start(roost_broker *b, void **state)
{
	*state = NULL;
	const roost_config *cfg = roost_broker_config(b);
	const roost_log *log = roost_broker_log(b);
	if (cfg->http.port < 0) {
		roost_log_info(log, "http: API disabled (http.port is -1)");
		return ROOST_OK;
	}
	const char *bind = cfg->http.bind && *cfg->http.bind ? cfg->http.bind : "127.0.0.1";
	const char *token = cfg->http.token && *cfg->http.token ? cfg->http.token : NULL;
	if (!token && !roost_http_addr_is_loopback(bind)) {
		/* The API publishes and fires events: open to the network without a
		 * token it would be open to anyone on it. */
		roost_log_error(log, "http: http.bind is %s, not a loopback address, and http.token is "
		                     "not set: refusing to serve the API without authentication "
		                     "(set http.token, or bind to 127.0.0.1)", bind);
		return ROOST_ERR_CONFIG;
	}
	struct event_base *base = roost_broker_base(b);
	roost_err e = ROOST_ERR_NOMEM;
	roost_http *h = roost_calloc(1, sizeof *h);
	if (!h)
		goto fail;
	h->b = b;
	h->log = log;
	h->cfg = &cfg->http;
	h->token = token;
	if (!(h->routes = roost_http_routes_new()) || !(h->http = evhttp_new(base)) ||
	    !(h->ping_ev = event_new(base, -1, EV_PERSIST, ping_cb, h)) ||
	    !(h->reap_ev = event_new(base, -1, 0, reap_cb, h)))
		goto fail;
	/* The gate refuses first (as JSON); these are evhttp's own backstops. */
	evhttp_set_max_body_size(h->http, ROOST_HTTP_MAX_BODY);
	evhttp_set_max_headers_size(h->http, ROOST_HTTP_MAX_HEAD);
	evhttp_set_timeout(h->http, (int)cfg->http.idle_timeout);
	evhttp_set_bevcb(h->http, conn_new, h);
	/* Let every method evhttp knows through so a wrong one gets our JSON 405. */
	evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
	                                        EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	                                        EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH |
	                                        EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT);
	evhttp_set_gencb(h->http, dispatch, h);
	if ((e = add_builtin_routes(h)) != ROOST_OK)
		goto fail;
	if ((e = roost_bus_listen(roost_broker_bus(b), NULL, on_event, h, &h->bus_l)) != ROOST_OK)
		goto fail;
	struct timeval ping = {ROOST_HTTP_STREAM_PING_SECS, 0};
	event_add(h->ping_ev, &ping);
	if ((e = http_listen(h, bind, cfg->http.port)) != ROOST_OK)
		goto fail;
	if ((e = roost_broker_service_add(b, "http", h)) != ROOST_OK)
		goto fail;
	h->service_added = true;
	if (!token)
		roost_log_info(log, "http: no token configured; the API is open to local clients only");
	*state = h;
	return ROOST_OK;
fail:
	if (e == ROOST_ERR_NOMEM)
		roost_log_error(log, "http: out of memory starting the API");
	http_free(h);
	return e;
}

static void http_stop(void *state)
{
	http_free(state);
}

/* Optional: MQTT service must not depend on a convenience API (an occupied
 * port is logged with the key to change, and roost runs without it). */
const roost_component roost_http_component = {
	.name = "http_api", .start = http_start, .stop = http_stop, .optional = true,
};
