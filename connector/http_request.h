/*
 * http_request.h — the pure half of roost's HTTP API: the route table,
 * request validation and the event-stream encoding.
 *
 * Nothing here does I/O, reads the event loop or logs: every function takes
 * text in and gives a decision (a route, a validated request, or an HTTP
 * status with Home Assistant's error message) back, so tests/check_http_request.c
 * covers every rule without a server. connector/http_api.c is the other half:
 * it owns the evhttp server and turns these decisions into answers.
 *
 * Ownership: strings handed back in structs are allocated with roost_malloc
 * and released by the matching *_cleanup; input strings are borrowed.
 */
#ifndef ROOST_HTTP_REQUEST_H
#define ROOST_HTTP_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roost/bus.h"
#include "roost/error.h"
#include "roost/http.h"

struct cJSON;

/* Why a request was refused: the HTTP status and the {"message"} text. */
typedef struct roost_http_error {
	int status;
	char message[200];
} roost_http_error;

/* ---- route table -------------------------------------------------------- */

typedef struct roost_http_routes roost_http_routes;

typedef enum roost_http_match {
	ROOST_HTTP_MATCH_FOUND = 0,
	ROOST_HTTP_MATCH_NO_PATH,   /* 404 */
	ROOST_HTTP_MATCH_NO_METHOD, /* 405: the path exists for other methods */
} roost_http_match;

roost_http_routes *roost_http_routes_new(void);
void roost_http_routes_free(roost_http_routes *r);

/* As roost_http_route_add (http.h): INVALID, EXISTS or NOMEM. */
roost_err roost_http_routes_add(roost_http_routes *r, const char *method, const char *path,
                                roost_http_handler fn, void *ctx);
/* ROOST_ERR_NOT_FOUND when no such route. */
roost_err roost_http_routes_remove(roost_http_routes *r, const char *method, const char *path);

/*
 * Find the route for (method, path). On FOUND, *fn and *ctx are the handler and
 * *rest points into path (what a "{name}" placeholder matched, "" for an
 * exact route). On NO_METHOD, allow (size allow_size, may be 0) receives the
 * methods that path accepts, comma-separated, for the Allow header.
 */
roost_http_match roost_http_routes_match(const roost_http_routes *r, const char *method,
                                         const char *path, roost_http_handler *fn, void **ctx,
                                         const char **rest, char *allow, size_t allow_size);

/* ---- authorisation ------------------------------------------------------- */

/*
 * True when the address text is a loopback address: 127.0.0.0/8, ::1, or
 * ::ffff:127.x.y.z. Host names (even "localhost") are not: what a name
 * resolves to can change, so only a literal address counts.
 */
bool roost_http_addr_is_loopback(const char *addr);

/*
 * True when an Authorization header value carries token as a Bearer token
 * ("Bearer <token>", scheme case-insensitive). The token is compared in
 * constant time (CRYPTO_memcmp) so a client cannot find it byte by byte from
 * response times. A NULL header is false.
 */
bool roost_http_auth_ok(const char *authorization, const char *token);

/* ---- request heads: the gate before the body ------------------------------ */

/* Longest request head (request line and headers) read; longer is a 431. */
#define ROOST_HTTP_MAX_HEAD (64 * 1024)

/*
 * Where the request head in buf[0..len) ends: the length of the head
 * through its empty line (LF or CRLF line ends, as evhttp reads them), or 0
 * when it is not complete yet. *scan is where to resume searching: 0 for a
 * new head, then left as this call set it, so that a head arriving one byte
 * at a time is searched once, not once per byte.
 */
size_t roost_http_head_end(const char *buf, size_t len, size_t *scan);

/* The decision on one request head. */
typedef struct roost_http_head {
	roost_http_error err;   /* status 0: admitted; else the refusal to answer */
	uint64_t body_len;      /* Content-Length (0 without one); saturates above max_body */
	bool framed;            /* the body's end is known (body_len bytes follow) */
	size_t target_off;      /* the request target in the head, when the line parsed */
	size_t target_len;
} roost_http_head;

/*
 * Decide on a complete request head before any of its body is read, so
 * that nothing is buffered for a request that will be refused. Refusals,
 * in this order: 400 for a head evhttp might read differently from us (a
 * malformed request line or header line, obs-fold, control characters, two
 * Content-Length headers, a non-decimal one); 401 when token is not NULL and
 * the first Authorization header does not carry it (checked as
 * roost_http_auth_ok); 505 for a version other than HTTP/1.0 and 1.1; 501
 * for a method evhttp does not know; 411 for any Transfer-Encoding (bodies
 * need a Content-Length); 400 for a body on HEAD or TRACE; 413 for a
 * Content-Length over max_body; 417 for an Expect other than 100-continue.
 * The request line is METHOD SP TARGET SP VERSION with single spaces.
 * Everything accepted here is read the same way by evhttp (tested in
 * tests/check_http_request.c), so the gate and evhttp agree on where each
 * request ends.
 */
void roost_http_head_check(const char *head, size_t len, const char *token, size_t max_body,
                           roost_http_head *out);

/* ---- request bodies ------------------------------------------------------ */

/*
 * Parse a body that must be a JSON object. An empty body (or only white
 * space) is the empty object, as in Home Assistant. Returns the object
 * (caller: cJSON_Delete) or NULL with err set to 400 with Home Assistant's
 * texts, "<what> should be valid JSON." or "<what> should be a JSON object."
 * (what: "Data", "Event data"), to 400 "<what> has the key 'k' more than
 * once." when any object in it repeats a key (JSON leaves that undefined),
 * or to 500 when out of memory.
 */
struct cJSON *roost_http_json_object_parse(const char *body, size_t len, const char *what,
                                           roost_http_error *err);

/*
 * A string field: a JSON string as is, a number as its shortest text
 * ("21.5", "3"), as Home Assistant's cv.string coerces numbers. Returns a
 * roost_malloc'd copy in *out, or ROOST_ERR_INVALID (err: 400 naming key)
 * for booleans, null, arrays and objects.
 */
roost_err roost_http_json_string(const struct cJSON *item, const char *key, char **out,
                                 roost_http_error *err);

/* A validated mqtt.publish call. */
typedef struct roost_http_publish {
	char *topic;
	char *payload;      /* never NULL; "" when absent */
	size_t payload_len;
	uint8_t qos;        /* 0..2, default 0 */
	bool retain;        /* default false */
	uint8_t *props;     /* MQTT 5 properties in a message's stored form (expiry first); NULL when none */
	size_t props_len;
} roost_http_publish;

/*
 * Validate POST /api/services/mqtt/publish's body {"topic", "payload",
 * "qos", "retain"}: topic a valid MQTT topic name (non-empty, no '+' or '#',
 * valid UTF-8, at most 65535 bytes; whether it may be published to — '$'
 * topics [MQTT-4.7.2-1], the ACL, the topic limits — is the broker's
 * decision, see roost_http_publish_status); payload a string or a number (its text), default
 * ""; qos an integer 0..2, default 0; retain a boolean, default false; no
 * other keys (a typo like "retian" must not be silently ignored); and
 * "properties", an object of MQTT 5 properties for v5 subscribers:
 * content_type, response_topic (a topic name), correlation_data (base64),
 * message_expiry_interval (0..4294967295 seconds), user_properties
 * ([[k, v], ...], strings, kept in order). ROOST_OK
 * with *out filled (caller: roost_http_publish_cleanup), or
 * ROOST_ERR_INVALID / ROOST_ERR_NOMEM with err set.
 */
roost_err roost_http_publish_parse(const char *body, size_t len, roost_http_publish *out,
                                   roost_http_error *err);
void roost_http_publish_cleanup(roost_http_publish *p);

/*
 * The HTTP status for what roost_broker_publish answered, the one mapping
 * every HTTP route that publishes uses: 200 for ROOST_OK; 403 for
 * ROOST_ERR_NOT_AUTHORIZED (a '$' topic, the ACL: the broker's authorisation
 * decision); 400 for ROOST_ERR_BAD_TOPIC and ROOST_ERR_TOO_LARGE (a topic
 * over limits.max_topic_length or limits.max_topic_levels, a message too
 * large) and other refusals of the input; 503 for ROOST_ERR_QUOTA; 500 for
 * anything else (out of memory, the store).
 */
int roost_http_publish_status(roost_err e);

/* Longest event type accepted, as Home Assistant's MAX_LENGTH_EVENT_EVENT_TYPE. */
#define ROOST_HTTP_MAX_EVENT_TYPE 64

/* An event type from a URL: 1..64 characters of [A-Za-z0-9_.-]. */
bool roost_http_event_type_valid(const char *type);

/*
 * Validate POST /api/events/<type>: a valid type and a body that is empty or
 * a JSON object. ROOST_OK with *data_json the event data as compact JSON
 * ("{}" for an empty body; caller: roost_free), else ROOST_ERR_INVALID /
 * ROOST_ERR_NOMEM with err set.
 */
roost_err roost_http_event_parse(const char *type, const char *body, size_t len, char **data_json,
                                 roost_http_error *err);

/* ---- the event stream ---------------------------------------------------- */

/*
 * True when type is one of the comma-separated types in restrict_list
 * ("a,b"); a NULL or empty list allows every type.
 */
bool roost_http_restrict_match(const char *restrict_list, const char *type);

/*
 * One event as a server-sent event in Home Assistant's /api/stream shape:
 *   data: {"event_type": ..., "data": {...}, "origin": ..., "time_fired": ...}\n\n
 * ev->data_json is embedded as is, with any raw CR/LF (legal only as white
 * space between JSON tokens) turned into spaces so the event stays on one
 * data line. Returns a roost_malloc'd string and its length, NULL on
 * allocation failure.
 */
char *roost_http_sse_event(const roost_event *ev, size_t *len);

#endif
