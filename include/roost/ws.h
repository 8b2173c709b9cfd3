/*
 * ws.h — the WebSocket server side of MQTT over WebSockets (MQTT 5.0
 * section 6, RFC 6455), as a pure translator between evbuffers.
 *
 * One roost_ws per connection. roost_ws_decode reads what the client sent:
 * first the HTTP Upgrade request (at most ROOST_WS_MAX_REQUEST bytes), then
 * WebSocket frames; it appends the MQTT byte stream carried in binary frames
 * to `mqtt` and whatever the server must send back (the 101 or 4xx response,
 * pongs, close frames) to `wire`. roost_ws_encode wraps MQTT bytes into
 * binary frames. No sockets, no events, no logging: the caller moves the
 * bytes, so the same code serves the broker's bufferevent filter and the
 * fuzzer.
 *
 * Once decode returns an error the connection is over: roost_ws_error says
 * why (for the log line), `wire` may hold a last response or close frame to
 * flush, and later calls drain their input and return the same error.
 * Frames are parsed by wslay (no message buffering: payload chunks go
 * straight to `mqtt`, so an MQTT packet may span frames and a frame may hold
 * several packets [MQTT-6.0.0-2], [MQTT-6.0.0-3]).
 */
#ifndef ROOST_WS_H
#define ROOST_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>

#include "roost/error.h"

typedef struct roost_ws roost_ws;

/* Largest HTTP Upgrade request (request line and headers) accepted. */
#define ROOST_WS_MAX_REQUEST 8192u

/* A codec refusing frames with more than max_frame payload bytes. NULL when
 * out of memory. */
roost_ws *roost_ws_new(uint64_t max_frame);
void roost_ws_free(roost_ws *w);

/*
 * Consume all of in. ROOST_OK: keep going (more may be appended later).
 * ROOST_ERR_PROTOCOL: the connection must close (a bad request, a text or
 * oversize frame, a frame breaking RFC 6455, a close frame received);
 * ROOST_ERR_NOMEM: out of memory. Either way roost_ws_error says why.
 */
roost_err roost_ws_decode(roost_ws *w, struct evbuffer *in, struct evbuffer *mqtt, struct evbuffer *wire);

/* Move up to max bytes of in (at least 1 when in is not empty) into wire as
 * one binary frame. Once the upgrade failed or a close frame went out, in
 * is dropped instead: nothing may follow a close frame (RFC 6455 5.5.1). */
roost_err roost_ws_encode(roost_ws *w, struct evbuffer *in, struct evbuffer *wire, size_t max);

/* True once the 101 response was produced: MQTT may flow. */
bool roost_ws_upgraded(const roost_ws *w);
/* Why the connection must close; NULL while it need not. */
const char *roost_ws_error(const roost_ws *w);

#endif
