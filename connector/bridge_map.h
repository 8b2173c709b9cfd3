/*
 * bridge_map.h — the pure parts of a bridge: topic mapping, the queued
 * message's body, and the echo filter. No I/O, no clock, no allocation
 * except roost_bridge_join.
 *
 * Mapping (Mosquitto's): a bridge topic {pattern, local_prefix,
 * remote_prefix} subscribes to local_prefix + pattern on one side and to
 * remote_prefix + pattern on the other; a topic arriving on one side has its
 * prefix replaced by the other side's. Prefixes hold no wildcards.
 *
 * Echo filter: a bounded ring of (hash of topic and payload, time) of what
 * went out; a message coming in with the same hash within the window is an
 * echo of our own (an upstream that does not honour the bridge flag), and
 * is taken out of the ring once matched, so only one copy is suppressed.
 */
#ifndef ROOST_CONNECTOR_BRIDGE_MAP_H
#define ROOST_CONNECTOR_BRIDGE_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roost/error.h"

/* prefix + pattern as a new string (roost_free), NULL on allocation failure. */
char *roost_bridge_join(const char *prefix, const char *pattern);

/* A prefix may not hold '+', '#' or NUL... (it is literal topic text). */
bool roost_bridge_prefix_valid(const char *prefix);

/*
 * topic[0..len) starts with from (NULL = ""): write to + the rest into out
 * (cap bytes, NUL-terminated) and its length into *out_len. False when the
 * topic does not start with from, or out is too small.
 */
bool roost_bridge_map_topic(const char *topic, size_t len, const char *from, const char *to, char *out, size_t cap,
                            size_t *out_len);

/* The queued form of an outbound message: 1 byte (qos | retain << 2), 2 bytes
 * topic length (big endian), the topic, the payload. */
size_t roost_bridge_body_size(size_t topic_len, size_t payload_len);
void roost_bridge_body_encode(uint8_t *out, const char *topic, size_t topic_len, const uint8_t *payload,
                              size_t payload_len, uint8_t qos, bool retain);
typedef struct roost_bridge_msg {
	const char *topic; /* not NUL-terminated */
	size_t topic_len;
	const uint8_t *payload;
	size_t payload_len;
	uint8_t qos;
	bool retain;
} roost_bridge_msg;
/* ROOST_ERR_MALFORMED for a body that was not made by the encoder. */
roost_err roost_bridge_body_decode(const uint8_t *body, size_t len, roost_bridge_msg *out);

#define ROOST_BRIDGE_ECHO_SLOTS 256
typedef struct roost_bridge_echo {
	struct {
		uint64_t hash;
		uint64_t ms;
	} slot[ROOST_BRIDGE_ECHO_SLOTS];
	size_t next;
} roost_bridge_echo;

uint64_t roost_bridge_echo_hash(const char *topic, size_t topic_len, const uint8_t *payload, size_t payload_len);
/* Remember a message sent at now_ms (the oldest slot is reused). */
void roost_bridge_echo_note(roost_bridge_echo *e, uint64_t hash, uint64_t now_ms);
/* True (and forgotten) when hash went out within window_ms before now_ms. */
bool roost_bridge_echo_take(roost_bridge_echo *e, uint64_t hash, uint64_t now_ms, uint64_t window_ms);

#endif
