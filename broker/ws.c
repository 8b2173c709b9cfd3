/*
 * ws.c — MQTT over WebSockets: the HTTP Upgrade handshake and the framing
 * (include/roost/ws.h), and the bufferevent filter that puts them under a
 * connection (internal.h, broker_ws_*).
 *
 * Why a filtering bufferevent: connection.c keeps reading and writing MQTT
 * bytes from c->bev whatever the transport; the filter's input side turns
 * frames into that byte stream and its output side wraps the stream into
 * binary frames, over a socket or an OpenSSL bufferevent (wss).
 *
 * Why wslay's event API for input: it enforces RFC 6455's frame rules
 * (masking from a client, control frames short and unfragmented, RSV bits,
 * continuation order), answers ping with pong and close with close; with
 * buffering off its chunk callback streams payload straight into the MQTT
 * buffer, so no message is held whole. Output uses wslay's frame API, one
 * binary frame per call, whose payload is moved (not copied) out of the
 * connection's output buffer.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <event2/bufferevent.h>
#include <openssl/evp.h>
#include <wslay/wslay.h>

#include "internal.h"
#include "roost/alloc.h"
#include "roost/ws.h"

/* RFC 6455 1.3: appended to the client's key before hashing. */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_CODE_UNSUPPORTED_DATA 1003 /* RFC 6455 7.4.1: a text frame */

struct roost_ws {
	wslay_event_context_ptr ev;     /* input: frames in, pong/close out */
	wslay_frame_context_ptr out;    /* output: binary frames */
	struct evbuffer *in, *mqtt, *wire; /* borrowed during one decode/encode call */
	const uint8_t *payload;         /* encode: the payload being framed */
	size_t payload_len;
	uint64_t max_frame;
	uint8_t frame_opcode;           /* opcode of the frame being received */
	bool upgraded;                  /* the 101 went out */
	bool failed;                    /* decode returned an error: over */
	roost_err err;
	char why[200];
};

static void fail(roost_ws *w, roost_err err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void fail(roost_ws *w, roost_err err, const char *fmt, ...)
{
	if (w->failed)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(w->why, sizeof w->why, fmt, ap);
	va_end(ap);
	w->failed = true;
	w->err = err;
}

/* ---- wslay callbacks ---- */

static ssize_t ev_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *arg)
{
	(void)flags;
	roost_ws *w = arg;
	int n = evbuffer_remove(w->in, buf, len);
	if (n <= 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	return n;
}

static ssize_t ev_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *arg)
{
	(void)flags;
	roost_ws *w = arg;
	if (evbuffer_add(w->wire, data, len) != 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return (ssize_t)len;
}

static void ev_frame_start(wslay_event_context_ptr ctx, const struct wslay_event_on_frame_recv_start_arg *arg,
                           void *user)
{
	roost_ws *w = user;
	w->frame_opcode = arg->opcode;
	if (arg->opcode == WSLAY_TEXT_FRAME) {
		/* [MQTT-6.0.0-1] MQTT travels in binary frames only. */
		fail(w, ROOST_ERR_PROTOCOL, "text frame received; MQTT needs binary frames [MQTT-6.0.0-1]");
		wslay_event_queue_close(ctx, WS_CODE_UNSUPPORTED_DATA, (const uint8_t *)"binary frames only", 18);
		wslay_event_shutdown_read(ctx);
	}
}

static void ev_frame_chunk(wslay_event_context_ptr ctx, const struct wslay_event_on_frame_recv_chunk_arg *arg,
                           void *user)
{
	roost_ws *w = user;
	/* Continuation frames follow a binary frame here: a text message was
	 * refused at its first frame, and wslay refuses a stray continuation. */
	bool data = w->frame_opcode == WSLAY_BINARY_FRAME || w->frame_opcode == WSLAY_CONTINUATION_FRAME;
	if (!data || w->failed)
		return;
	if (evbuffer_add(w->mqtt, arg->data, arg->data_length) != 0) {
		fail(w, ROOST_ERR_NOMEM, "out of memory");
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
	}
}

static ssize_t frame_send(const uint8_t *data, size_t len, int flags, void *arg)
{
	(void)flags;
	roost_ws *w = arg;
	bool payload = w->payload && data >= w->payload && data < w->payload + w->payload_len;
	/* The payload is the front of w->in (made contiguous for wslay): move
	 * its chains instead of copying the bytes. */
	int r = payload ? evbuffer_remove_buffer(w->in, w->wire, len) : evbuffer_add(w->wire, data, len);
	if (r < 0 || (payload && (size_t)r != len))
		return WSLAY_ERR_NOMEM; /* wslay_frame_send returns it */
	return (ssize_t)len;
}

static ssize_t frame_recv_unused(uint8_t *buf, size_t len, int flags, void *arg)
{
	(void)buf;
	(void)len;
	(void)flags;
	(void)arg;
	return WSLAY_ERR_WANT_READ;
}

static int frame_genmask_unused(uint8_t *buf, size_t len, void *arg)
{
	(void)arg;
	memset(buf, 0, len); /* a server does not mask (RFC 6455 5.1) */
	return 0;
}

roost_ws *roost_ws_new(uint64_t max_frame)
{
	roost_ws *w = roost_calloc(1, sizeof *w);
	if (!w)
		return NULL;
	w->max_frame = max_frame;
	struct wslay_event_callbacks cb = {
		.recv_callback = ev_recv,
		.send_callback = ev_send,
		.on_frame_recv_start_callback = ev_frame_start,
		.on_frame_recv_chunk_callback = ev_frame_chunk,
	};
	struct wslay_frame_callbacks fcb = {frame_send, frame_recv_unused, frame_genmask_unused};
	if (wslay_event_context_server_init(&w->ev, &cb, w) != 0) {
		roost_free(w);
		return NULL;
	}
	if (wslay_frame_context_init(&w->out, &fcb, w) != 0) {
		wslay_event_context_free(w->ev);
		roost_free(w);
		return NULL;
	}
	wslay_event_config_set_no_buffering(w->ev, 1);
	wslay_event_config_set_max_recv_msg_length(w->ev, max_frame);
	return w;
}

void roost_ws_free(roost_ws *w)
{
	if (!w)
		return;
	wslay_event_context_free(w->ev);
	wslay_frame_context_free(w->out);
	roost_free(w);
}

bool roost_ws_upgraded(const roost_ws *w)
{
	return w->upgraded;
}

const char *roost_ws_error(const roost_ws *w)
{
	return w->failed ? w->why : NULL;
}

/* ---- the HTTP Upgrade request (RFC 6455 4.2) ---- */

typedef struct upgrade_req {
	bool upgrade, connection, version13;
	const char *key;
	size_t key_len;
	const char *protocol; /* the subprotocol chosen, NULL when none offered */
	bool protocol_offered;
} upgrade_req;

/* Does the comma-separated list [v, v+n) contain token, case-insensitively? */
static bool list_has(const char *v, size_t n, const char *token, const char **found)
{
	size_t tl = strlen(token);
	size_t i = 0;
	while (i < n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		size_t start = i;
		while (i < n && v[i] != ',')
			i++;
		size_t end = i;
		while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
			end--;
		if (end - start == tl && strncasecmp(v + start, token, tl) == 0) {
			if (found)
				*found = token;
			return true;
		}
	}
	return false;
}

static void header(upgrade_req *r, const char *name, size_t nl, const char *v, size_t vl)
{
#define IS(h) (nl == sizeof h - 1 && strncasecmp(name, h, nl) == 0)
	if (IS("upgrade"))
		r->upgrade |= list_has(v, vl, "websocket", NULL);
	else if (IS("connection"))
		r->connection |= list_has(v, vl, "upgrade", NULL);
	else if (IS("sec-websocket-version"))
		r->version13 = vl == 2 && memcmp(v, "13", 2) == 0;
	else if (IS("sec-websocket-key")) {
		r->key = v;
		r->key_len = vl;
	} else if (IS("sec-websocket-protocol")) {
		/* MQTT 5.0 6.0: "mqtt"; MQTT 3.1 clients still say "mqttv3.1". */
		r->protocol_offered = true;
		if (!r->protocol && !list_has(v, vl, "mqtt", &r->protocol))
			list_has(v, vl, "mqttv3.1", &r->protocol);
	}
#undef IS
}

/* Parse the request's header lines (after the request line) into r. */
static bool parse_headers(const char *p, const char *end, upgrade_req *r)
{
	while (p < end) {
		const char *eol = memchr(p, '\r', (size_t)(end - p));
		if (!eol || eol + 1 >= end || eol[1] != '\n')
			return false;
		if (eol == p)
			return true; /* the empty line */
		const char *colon = memchr(p, ':', (size_t)(eol - p));
		if (!colon || colon == p)
			return false;
		const char *v = colon + 1;
		while (v < eol && (*v == ' ' || *v == '\t'))
			v++;
		const char *ve = eol;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		header(r, p, (size_t)(colon - p), v, (size_t)(ve - v));
		p = eol + 2;
	}
	return false;
}

static void http_refuse(roost_ws *w, const char *status, const char *extra, const char *why)
{
	evbuffer_add_printf(w->wire,
	                    "HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n%sConnection: close\r\n\r\n%s\n",
	                    status, strlen(why) + 1, extra, why);
	fail(w, ROOST_ERR_PROTOCOL, "WebSocket upgrade refused (%s): %s", status, why);
}

/* Sec-WebSocket-Accept = base64(SHA-1(key + GUID)) (RFC 6455 4.2.2). */
static void accept_value(const char *key, size_t key_len, char out[29])
{
	unsigned char in[24 + sizeof WS_GUID];
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	assert(key_len == 24); /* key_ok */
	memcpy(in, key, key_len);
	memcpy(in + key_len, WS_GUID, sizeof WS_GUID - 1);
	if (EVP_Digest(in, key_len + sizeof WS_GUID - 1, digest, &dlen, EVP_sha1(), NULL) != 1 || dlen != 20)
		dlen = 0; /* a wrong accept value fails the client's check: it closes */
	EVP_EncodeBlock((unsigned char *)out, digest, 20);
}

/* The key must be base64 of 16 bytes: 24 characters ending "==". */
static bool key_ok(const char *key, size_t len)
{
	unsigned char raw[24];
	return len == 24 && key[22] == '=' && key[23] == '=' &&
	       EVP_DecodeBlock(raw, (const unsigned char *)key, 24) == 18;
}

static void answer_request(roost_ws *w, const char *req, size_t len)
{
	const char *end = req + len;
	const char *eol = memchr(req, '\r', len);
	if (!eol || len < 4 || memcmp(req, "GET ", 4) != 0) {
		http_refuse(w, "405 Method Not Allowed", "Allow: GET\r\n",
		            "not a WebSocket upgrade: MQTT over WebSockets starts with GET");
		return;
	}
	upgrade_req r = {0};
	if (!parse_headers(eol + 2, end, &r)) {
		http_refuse(w, "400 Bad Request", "", "malformed HTTP request header");
	} else if (!r.upgrade || !r.connection) {
		http_refuse(w, "400 Bad Request", "",
		            "not a WebSocket upgrade (no Upgrade: websocket / Connection: Upgrade); this port speaks MQTT over WebSockets");
	} else if (!r.version13) {
		http_refuse(w, "426 Upgrade Required", "Sec-WebSocket-Version: 13\r\n", "Sec-WebSocket-Version must be 13");
	} else if (!r.key || !key_ok(r.key, r.key_len)) {
		http_refuse(w, "400 Bad Request", "", "missing or malformed Sec-WebSocket-Key");
	} else if (r.protocol_offered && !r.protocol) {
		/* [MQTT-6.0.0-3]/[MQTT-6.0.0-4]: the subprotocol is mqtt. */
		http_refuse(w, "400 Bad Request", "", "Sec-WebSocket-Protocol offers neither mqtt nor mqttv3.1");
	} else {
		char acc[29];
		accept_value(r.key, r.key_len, acc);
		evbuffer_add_printf(w->wire,
		                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		                    "Sec-WebSocket-Accept: %s\r\n%s%s%s\r\n",
		                    acc, r.protocol ? "Sec-WebSocket-Protocol: " : "", r.protocol ? r.protocol : "",
		                    r.protocol ? "\r\n" : "");
		w->upgraded = true;
	}
}

/* Handshake step: ROOST_OK once upgraded (or while waiting for the rest). */
static void handshake(roost_ws *w, struct evbuffer *in)
{
	struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	if (end.pos < 0) {
		if (evbuffer_get_length(in) > ROOST_WS_MAX_REQUEST)
			http_refuse(w, "431 Request Header Fields Too Large", "",
			            "HTTP request header larger than 8192 bytes");
		return;
	}
	size_t len = (size_t)end.pos + 4;
	if (len > ROOST_WS_MAX_REQUEST) {
		http_refuse(w, "431 Request Header Fields Too Large", "", "HTTP request header larger than 8192 bytes");
		return;
	}
	const char *req = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
	if (!req) {
		fail(w, ROOST_ERR_NOMEM, "out of memory reading the upgrade request");
		return;
	}
	answer_request(w, req, len);
	evbuffer_drain(in, len);
}

/* After wslay stopped reading: say why, in words a user can act on. */
static void closed_by_wslay(roost_ws *w)
{
	if (wslay_event_get_close_received(w->ev)) {
		fail(w, ROOST_ERR_PROTOCOL, "close frame received (code %u)",
		     (unsigned)wslay_event_get_status_code_received(w->ev));
		return;
	}
	unsigned code = wslay_event_get_status_code_sent(w->ev);
	if (code == WSLAY_CODE_MESSAGE_TOO_BIG)
		fail(w, ROOST_ERR_TOO_LARGE, "frame larger than %llu bytes (limits.max_packet_size plus framing)",
		     (unsigned long long)w->max_frame);
	else
		fail(w, ROOST_ERR_PROTOCOL,
		     "WebSocket protocol error (close code %u): an unmasked client frame, a bad control or "
		     "continuation frame, or reserved bits set (RFC 6455 5.1-5.5)", code);
}

roost_err roost_ws_decode(roost_ws *w, struct evbuffer *in, struct evbuffer *mqtt, struct evbuffer *wire)
{
	w->wire = wire;
	if (!w->failed && !w->upgraded)
		handshake(w, in);
	if (!w->failed && w->upgraded && evbuffer_get_length(in) > 0) {
		w->in = in;
		w->mqtt = mqtt;
		int r = wslay_event_recv(w->ev);
		if (r == WSLAY_ERR_NOMEM)
			fail(w, ROOST_ERR_NOMEM, "out of memory reading frames");
		else if (r != 0) /* wslay_frame_recv refused a frame header */
			fail(w, ROOST_ERR_PROTOCOL, "malformed frame header: a control frame fragmented or over 125 "
			     "bytes, or a length not in its shortest form (RFC 6455 5.2, 5.5)");
		/* The pong or close frame wslay queued, straight into wire;
		 * sent first, so that the close code sent is known. */
		if (wslay_event_send(w->ev) != 0 && !w->failed)
			fail(w, ROOST_ERR_NOMEM, "out of memory writing a control frame");
		if (!w->failed && !wslay_event_get_read_enabled(w->ev))
			closed_by_wslay(w);
		w->in = w->mqtt = NULL;
	}
	w->wire = NULL;
	if (w->failed)
		evbuffer_drain(in, evbuffer_get_length(in));
	return w->failed ? w->err : ROOST_OK;
}

roost_err roost_ws_encode(roost_ws *w, struct evbuffer *in, struct evbuffer *wire, size_t max)
{
	size_t n = evbuffer_get_length(in);
	if (n > max)
		n = max;
	if (n == 0)
		return ROOST_OK;
	if (!w->upgraded || w->failed || wslay_event_get_close_sent(w->ev)) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return ROOST_OK;
	}
	const uint8_t *p = evbuffer_pullup(in, (ev_ssize_t)n);
	if (!p)
		return ROOST_ERR_NOMEM;
	struct wslay_frame_iocb io = {
		.fin = 1, .opcode = WSLAY_BINARY_FRAME, .mask = 0, .payload_length = n, .data = p, .data_length = n,
	};
	w->in = in;
	w->wire = wire;
	w->payload = p;
	w->payload_len = n;
	ssize_t r = wslay_frame_send(w->out, &io);
	w->in = w->wire = NULL;
	w->payload = NULL;
	/* Every callback took everything, so the frame is complete. */
	return r == (ssize_t)n ? ROOST_OK : ROOST_ERR_NOMEM;
}

/* ---- the bufferevent filter under a connection ---- */

/* Frames out are at most this long: the whole output when smaller, and a
 * bounded pullup when a slow client's backlog is large. */
#define WS_MAX_OUT_FRAME (64u * 1024u)
/* The socket's own output buffer is kept small so that unsent output stays
 * in the filter's buffer, where connection.c measures a slow client. */
#define WS_UNDER_WRITE_LOW (64u * 1024u)
#define WS_UNDER_WRITE_HIGH (256u * 1024u)
/* How long a closed connection may take to flush its last response. */
#define WS_LINGER_SECONDS 5

struct broker_ws {
	struct bufferevent *under; /* socket or TLS bufferevent, ours */
	struct bufferevent *top;   /* the filter, what the connection uses */
	roost_ws *codec;
	bool error_reported;
};

static enum bufferevent_filter_result in_filter(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t limit,
                                                enum bufferevent_flush_mode mode, void *arg)
{
	(void)limit;
	(void)mode;
	broker_ws *bw = arg;
	size_t before = evbuffer_get_length(dst);
	roost_err err = roost_ws_decode(bw->codec, src, dst, bufferevent_get_output(bw->under));
	if (err) {
		/* libevent does not report a filter's error itself: raise it
		 * (deferred, outside the filter) once, so the connection closes
		 * with roost_ws_error as its reason. */
		if (!bw->error_reported) {
			bw->error_reported = true;
			bufferevent_trigger_event(bw->top, BEV_EVENT_READING | BEV_EVENT_ERROR, BEV_TRIG_DEFER_CALLBACKS);
		}
		return BEV_ERROR;
	}
	return evbuffer_get_length(dst) > before ? BEV_OK : BEV_NEED_MORE;
}

static enum bufferevent_filter_result out_filter(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t limit,
                                                 enum bufferevent_flush_mode mode, void *arg)
{
	(void)limit;
	(void)mode;
	broker_ws *bw = arg;
	if (evbuffer_get_length(src) == 0)
		return BEV_NEED_MORE;
	return roost_ws_encode(bw->codec, src, dst, WS_MAX_OUT_FRAME) == ROOST_OK ? BEV_OK : BEV_ERROR;
}

broker_ws *broker_ws_new(struct bufferevent *under, uint64_t max_frame)
{
	broker_ws *bw = roost_calloc(1, sizeof *bw);
	if (!bw)
		return NULL;
	bw->under = under;
	bw->codec = roost_ws_new(max_frame);
	/* Not BEV_OPT_CLOSE_ON_FREE: broker_ws_free decides when the socket
	 * goes, after its last response is flushed. */
	if (bw->codec)
		bw->top = bufferevent_filter_new(under, in_filter, out_filter, 0, NULL, bw);
	if (!bw->top) {
		roost_ws_free(bw->codec);
		roost_free(bw);
		return NULL;
	}
	/* The filter frames its output from its output buffer's callback: run
	 * immediately, that is one frame per evbuffer_add (a fan-out adds a
	 * header and a payload per message). Deferred, it runs once the
	 * callback that produced the output returns: one frame per burst. */
	evbuffer_defer_callbacks(bufferevent_get_output(bw->top), bufferevent_get_base(under));
	bufferevent_setwatermark(under, EV_WRITE, WS_UNDER_WRITE_LOW, WS_UNDER_WRITE_HIGH);
	bufferevent_set_max_single_read(under, 256 * 1024);
	bufferevent_set_max_single_write(under, 256 * 1024);
	return bw;
}

struct bufferevent *broker_ws_bev(broker_ws *bw)
{
	return bw->top;
}

const char *broker_ws_error(const broker_ws *bw)
{
	return roost_ws_error(bw->codec);
}

/* A closed ws connection's socket bufferevent while its last bytes drain;
 * the broker keeps the list, so none outlives it. */
struct ws_linger {
	roost_broker *b;
	struct bufferevent *under;
	struct ws_linger *next, *prev;
};

/* At most this much unsent output is worth lingering for: a last reply (a
 * refused CONNACK, a 4xx, a close frame). More means a client that was
 * cut off for not reading: closed at once. */
#define WS_LINGER_MAX_BYTES (64 * 1024)

static void linger_done(struct bufferevent *bev, void *arg)
{
	(void)bev;
	struct ws_linger *l = arg;
	if (l->prev)
		l->prev->next = l->next;
	else
		l->b->ws_lingering = l->next;
	if (l->next)
		l->next->prev = l->prev;
	bufferevent_free(l->under);
	roost_free(l);
}

static void linger_event(struct bufferevent *bev, short what, void *arg)
{
	(void)what;
	linger_done(bev, arg);
}

void broker_ws_lingering_free(roost_broker *b)
{
	while (b->ws_lingering)
		linger_done(NULL, b->ws_lingering);
}

void broker_ws_free(roost_broker *b, broker_ws *bw, bool flush)
{
	struct bufferevent *under = bw->under;
	bufferevent_free(bw->top);
	roost_ws_free(bw->codec);
	roost_free(bw);
	size_t unsent = evbuffer_get_length(bufferevent_get_output(under));
	struct ws_linger *l = flush && unsent && unsent <= WS_LINGER_MAX_BYTES ? roost_calloc(1, sizeof *l) : NULL;
	if (!l) {
		bufferevent_free(under); /* closes the socket */
		return;
	}
	/* The filter's write callback ran when the last bytes reached the
	 * socket's buffer, not the socket: a refused CONNACK, a 4xx response or
	 * a close frame is still there. Let it drain, bounded in time. */
	*l = (struct ws_linger){.b = b, .under = under, .next = b->ws_lingering};
	if (l->next)
		l->next->prev = l;
	b->ws_lingering = l;
	bufferevent_setcb(under, NULL, linger_done, linger_event, l);
	bufferevent_setwatermark(under, EV_WRITE, 0, 0);
	struct timeval tv = {.tv_sec = WS_LINGER_SECONDS, .tv_usec = 0};
	bufferevent_set_timeouts(under, NULL, &tv);
	bufferevent_disable(under, EV_READ);
	bufferevent_enable(under, EV_WRITE);
}
