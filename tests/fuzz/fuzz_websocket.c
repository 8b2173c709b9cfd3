/*
 * fuzz_websocket.c — the WebSocket decode path (roost_ws_decode: the HTTP
 * Upgrade, then wslay's frame parsing into the MQTT byte stream) against a
 * model of RFC 6455 written here from the contract in include/roost/ws.h.
 *
 * Input: byte 0 picks the mode (bit 0 set: the bytes are the whole stream,
 * request included; clear: a fixed valid upgrade request comes first and
 * the bytes are frames), byte 1 the size of the pieces the stream is fed in
 * (1..256), the rest is the stream. Aborts unless:
 *   - once decode returns an error, every later call returns it too and
 *     drains its input; no MQTT byte ever comes out before the upgrade;
 *   - in frame mode the response is a 101, and the MQTT bytes and the
 *     verdict (keep going / close) are the model's: the unmasked payloads of
 *     binary frames and their continuations, up to the first frame that
 *     breaks a rule (unmasked, RSV bits, a text frame [MQTT-6.0.0-1], a bad
 *     opcode or continuation order, a control frame fragmented or over 125
 *     bytes, a length not in its shortest form, over max_frame) or a close
 *     frame, whatever the piece size;
 *   - after a close, MQTT bytes to send are dropped, never framed; before,
 *     they become one unmasked binary frame.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "roost/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FRAME 1000u

static const char request[] = "GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                              "Sec-WebSocket-Protocol: mqtt\r\n\r\n";

#define CHECK(x) \
	do { \
		if (!(x)) \
			abort(); \
	} while (0)

typedef struct model {
	uint8_t *out; /* expected MQTT bytes */
	size_t n;
	bool error;   /* decode must say: close */
	bool either;  /* it may say either (a close frame cut short: wslay checks
	               * its reason's UTF-8 as it arrives) */
} model;

static uint64_t be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* One frame at p (avail bytes). Returns the bytes it took, 0 when the model
 * stops here (m->error says whether as an error; else it is incomplete). */
static size_t model_frame(model *m, const uint8_t *p, size_t avail, bool *in_msg)
{
	if (avail < 2)
		return 0;
	bool fin = p[0] & 0x80, mask = p[1] & 0x80;
	unsigned rsv = (p[0] >> 4) & 7, op = p[0] & 0x0F;
	uint64_t len = p[1] & 0x7F;
	bool control = op >= 8;
	size_t off = 2;
	if (control && (len > 125 || !fin))
		return m->error = true, 0;
	if (len >= 126) {
		size_t ext = len == 126 ? 2 : 8;
		if (avail < off + ext)
			return 0;
		len = be(p + off, ext);
		off += ext;
		if ((ext == 2 && len < 126) || (ext == 8 && (len < 65536 || (len >> 63))))
			return m->error = true, 0;
	}
	const uint8_t *key = p + off;
	if (mask) {
		if (avail < off + 4)
			return 0;
		off += 4;
	}
	size_t have = avail - off < len ? avail - off : (size_t)len;
	if (len > 0 && have == 0)
		return 0; /* judged at its first payload byte */
	bool op_ok = *in_msg ? (op == 0 || op == 8 || op == 9 || op == 10)
	                     : (op == 1 || op == 2 || op == 8 || op == 9 || op == 10);
	if (rsv || !mask || !op_ok || (!control && len > MAX_FRAME) || op == 1)
		return m->error = true, 0;
	if (op == 8) { /* a close frame ends it too, once it is whole */
		m->error = have == len;
		m->either = have < len;
		return 0;
	}
	if (op == 0 || op == 2) {
		for (size_t i = 0; i < have; i++)
			m->out[m->n++] = p[off + i] ^ key[i % 4];
		if (have == len)
			*in_msg = !fin;
	}
	return have == len ? off + have : 0;
}

static void run_model(model *m, const uint8_t *p, size_t n)
{
	bool in_msg = false;
	size_t took;
	while ((took = model_frame(m, p, n, &in_msg)) > 0) {
		p += took;
		n -= took;
	}
}

/* Feed stream in pieces; returns the last verdict, MQTT bytes in mqtt. */
static roost_err feed(roost_ws *w, const uint8_t *s, size_t n, size_t piece, struct evbuffer *mqtt,
                      struct evbuffer *wire)
{
	struct evbuffer *in = evbuffer_new();
	CHECK(in);
	roost_err first = ROOST_OK, err = ROOST_OK;
	for (size_t at = 0; at < n; at += piece) {
		size_t k = n - at < piece ? n - at : piece;
		evbuffer_add(in, s + at, k);
		err = roost_ws_decode(w, in, mqtt, wire);
		if (first) {
			CHECK(err == first); /* sticky */
			CHECK(evbuffer_get_length(in) == 0);
		}
		if (err)
			first = err;
		if (!roost_ws_upgraded(w))
			CHECK(evbuffer_get_length(mqtt) == 0);
	}
	CHECK((err != ROOST_OK) == (roost_ws_error(w) != NULL));
	evbuffer_free(in);
	return err;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	bool raw = data[0] & 1;
	size_t piece = (size_t)data[1] + 1;
	const uint8_t *frames = data + 2;
	size_t nframes = size - 2;
	size_t rl = raw ? 0 : sizeof request - 1;
	uint8_t *stream = malloc(rl + nframes + 1);
	CHECK(stream);
	memcpy(stream, request, rl);
	if (nframes)
		memcpy(stream + rl, frames, nframes);

	roost_ws *w = roost_ws_new(MAX_FRAME);
	struct evbuffer *mqtt = evbuffer_new(), *wire = evbuffer_new();
	CHECK(w && mqtt && wire);
	roost_err err = feed(w, stream, rl + nframes, piece, mqtt, wire);
	if (!raw) {
		CHECK(roost_ws_upgraded(w));
		CHECK(evbuffer_get_length(wire) >= 13);
		CHECK(memcmp(evbuffer_pullup(wire, 13), "HTTP/1.1 101 ", 13) == 0);
		model m = {.out = malloc(nframes + 1)};
		CHECK(m.out);
		run_model(&m, frames, nframes);
		CHECK(m.either || (err != ROOST_OK) == m.error);
		CHECK(evbuffer_get_length(mqtt) == m.n);
		CHECK(m.n == 0 || memcmp(evbuffer_pullup(mqtt, -1), m.out, m.n) == 0);
		free(m.out);
	}
	struct evbuffer *src = evbuffer_new();
	CHECK(src);
	evbuffer_add(src, "\x30\x00", 2);
	size_t before = evbuffer_get_length(wire);
	CHECK(roost_ws_encode(w, src, wire, 64) == ROOST_OK);
	CHECK(evbuffer_get_length(src) == 0);
	if (err || !roost_ws_upgraded(w))
		CHECK(evbuffer_get_length(wire) == before);
	else
		CHECK(evbuffer_get_length(wire) == before + 4); /* 0x82 0x02 + 2 bytes, unmasked */
	evbuffer_free(src);
	evbuffer_free(mqtt);
	evbuffer_free(wire);
	roost_ws_free(w);
	free(stream);
	return 0;
}
