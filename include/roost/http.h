/*
 * http.h — roost's HTTP API: routes that components add, helpers to answer.
 *
 * The HTTP component (connector/http_api.c) runs one libevent evhttp server
 * on http.bind:http.port, in Home Assistant's REST shape (GET /api/,
 * POST /api/services/mqtt/publish, POST /api/events/<type>, GET /api/stream).
 * It is started first and registers itself as the broker service "http"; a
 * component started after it finds it with
 *
 *     roost_http *h = roost_broker_service_find(b, "http");
 *
 * which is NULL when the API is disabled (http.port: -1) or could not start
 * (its port in use: roost runs without it, see component.h). A component must
 * cope with that: it keeps working and simply offers no routes.
 *
 * Routes. A route is (method, path, handler, ctx). The path is matched
 * exactly ("/api/states/mqtt_example.state"), unless its last segment is a
 * placeholder in Home Assistant's view syntax, "{name}": then it matches
 * every path that begins with what precedes it ("/api/events/{event_type}"
 * matches "/api/events/", "/api/events/x" and "/api/events/x/y"), and the
 * handler receives the rest ("", "x", "x/y") to validate. Among the routes
 * whose path and method match, an exact path wins over a placeholder and a
 * longer prefix over a shorter one. A path no route matches is answered 404;
 * a path matched only by routes of other methods, 405. Paths are matched as
 * the request sent them (still percent-encoded, without the query string).
 *
 * Authorisation happens before any handler runs, and before a request's
 * body is read: when a token is configured
 * (http.token), every request must carry "Authorization: Bearer <token>";
 * without one, the listener is necessarily bound to loopback (the component
 * refuses to start otherwise). Handlers therefore never check credentials.
 *
 * Handlers run on the broker's event loop: they must answer (or start a
 * stream with evhttp_send_reply_start) without blocking. They answer with the
 * helpers below or with evhttp directly. Request bodies are bounded by the
 * server (ROOST_HTTP_MAX_BODY; larger requests get 413 before any handler
 * and before their body is read), and so are connections, event streams
 * and the time a client may take (http.max_connections, http.max_streams,
 * http.idle_timeout, http.header_timeout, http.body_timeout).
 *
 * Ownership: method and path are copied; ctx is borrowed and must outlive the
 * route. Remove your routes in your component's stop(): the HTTP component
 * stops after every component that can have added routes (components stop in
 * reverse start order).
 */
#ifndef ROOST_HTTP_H
#define ROOST_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "roost/error.h"

struct evhttp_request;
struct cJSON;

typedef struct roost_http roost_http;

/* Largest request body the server reads (1 MiB); larger ones get 413. */
#define ROOST_HTTP_MAX_BODY (1024 * 1024)

/*
 * A route's handler. req is evhttp's request (borrowed; answer it exactly
 * once). rest is what a "{name}" placeholder matched ("" for an exact
 * route), borrowed for the call.
 */
typedef void (*roost_http_handler)(void *ctx, struct evhttp_request *req, const char *rest);

/*
 * Add a route. method is an upper-case HTTP method ("GET", "POST"); path
 * starts with '/' and may end in a "{name}" placeholder segment (see above).
 * ROOST_ERR_INVALID for a bad method or path, ROOST_ERR_EXISTS when the same
 * (method, path) is taken, ROOST_ERR_NOMEM.
 */
roost_err roost_http_route_add(roost_http *h, const char *method, const char *path,
                               roost_http_handler fn, void *ctx);

/* Remove the route added with this (method, path); unknown ones are ignored. */
void roost_http_route_remove(roost_http *h, const char *method, const char *path);

/* ---- answering ---------------------------------------------------------- */

/* Answer status with body printed as JSON (Content-Type: application/json). */
void roost_http_reply_json(struct evhttp_request *req, int status, const struct cJSON *body);

/* The same with JSON text the caller already has (e.g. "[]"). */
void roost_http_reply_json_text(struct evhttp_request *req, int status, const char *json);

/*
 * Answer status with Home Assistant's message shape: {"message": "<text>"},
 * the text formatted printf-style. Used for errors ("Unauthorized") and for
 * confirmations ("Event x fired.").
 */
void roost_http_reply_message(struct evhttp_request *req, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Answer a publish the broker refused (roost_broker_publish's err, not
 * ROOST_OK) with the status the HTTP API uses for it everywhere (403 not
 * authorised, 400 bad topic or too large, 503 over a quota, 500 else) and
 * {"message": "Publish to '<topic>' refused: <why>"}; the refusal is logged.
 */
void roost_http_reply_publish_error(struct evhttp_request *req, roost_err err, const char *topic);

/*
 * The request body as one contiguous block (borrowed, valid until the answer
 * is sent; not NUL-terminated); *len receives its length. "" when empty.
 */
const char *roost_http_body(struct evhttp_request *req, size_t *len);

/*
 * The request body as a JSON object, for handlers that take one: an empty
 * body is the empty object, as in Home Assistant. When the body is not a
 * JSON object this answers the request itself (400 {"message": "Data should
 * be valid JSON."} or "... a JSON object.", 500 when out of memory) and
 * returns NULL: the handler then just returns. Caller: cJSON_Delete.
 */
struct cJSON *roost_http_body_object(struct evhttp_request *req);

/*
 * Home Assistant's timestamp: ISO 8601 in UTC with microseconds,
 * "2024-05-01T12:34:56.789012+00:00", for unix_us microseconds since the
 * epoch. buf needs ROOST_HTTP_TIME_LEN bytes (NUL included). Returns buf.
 */
#define ROOST_HTTP_TIME_LEN 33
char *roost_http_time_iso(uint64_t unix_us, char *buf);

#endif
