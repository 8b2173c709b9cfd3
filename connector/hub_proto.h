/*
 * hub_proto.h — the pure parts of the hub connector's protocol: the event
 * body built from an MQTT message, the reading of Home Assistant's answer,
 * and the retry backoff.
 *
 * No I/O, no logging, no clock: the event loop code (hub_client.c,
 * mqtt_client.c, connector.c) decides *when*; these functions decide *what*,
 * and are unit-tested on their own (tests/check_hub_proto.c).
 */
#ifndef ROOST_CONNECTOR_HUB_PROTO_H
#define ROOST_CONNECTOR_HUB_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roost/error.h"

/*
 * True when payload is well-formed UTF-8 (no overlong forms, no surrogates,
 * nothing above U+10FFFF). U+0000 is allowed: JSON carries it as \u0000.
 */
bool roost_hub_payload_is_text(const uint8_t *payload, size_t len);

/*
 * The event data for one MQTT message, as a JSON object in this key order:
 *   {"topic":"...","payload":"...","qos":N,"retain":BOOL}
 * with "payload_base64" (standard alphabet, padded) in place of "payload"
 * when the payload is not text. topic must be valid UTF-8 (the broker and
 * the codec guarantee it for every topic name). *out is NUL-terminated,
 * allocated with roost_malloc (caller frees with roost_free), *out_len its
 * length without the NUL.
 */
roost_err roost_hub_event_json(const char *topic, size_t topic_len, const uint8_t *payload,
                               size_t payload_len, uint8_t qos, bool retain, char **out,
                               size_t *out_len);

/*
 * The same for a message with MQTT 5 properties (props as kept in a
 * roost_msg): when present, "content_type" and "user_properties" (pairs in
 * order) join the event data. Without those it is roost_hub_event_json's.
 */
roost_err roost_hub_event_json_props(const char *topic, size_t topic_len, const uint8_t *payload,
                                     size_t payload_len, const uint8_t *props, size_t props_len, uint8_t qos,
                                     bool retain, char **out, size_t *out_len);

/* What to do with the spool's head after Home Assistant answered `status`. */
typedef enum roost_hub_verdict {
	ROOST_HUB_DELIVERED, /* 2xx: pop it, send the next one now */
	ROOST_HUB_RETRY,     /* no answer, 5xx, 408/425/429, 1xx/3xx: keep it, back off */
	ROOST_HUB_AUTH,      /* 401/403: configuration error; keep it, retry at the ceiling */
	ROOST_HUB_REJECTED,  /* any other 4xx (400, 404, 413 ...): HA refuses this event; drop it */
} roost_hub_verdict;

/* status 0 means no HTTP answer at all (refused, reset, timeout, TLS failure). */
roost_hub_verdict roost_hub_verdict_of(int status);

/*
 * The next retry delay in seconds after a failure, given the current delay
 * (0 after a success): 1, 2, 4, ... capped at max_s (>= 1).
 */
uint32_t roost_hub_backoff_next(uint32_t cur_s, uint32_t max_s);

#endif
