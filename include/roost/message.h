/*
 * message.h — an application message, immutable and refcounted.
 *
 * An inbound PUBLISH is copied out of the connection's input buffer exactly
 * once, into one allocation holding the header fields, the topic (NUL
 * terminated), the v5 properties and the payload. From then on it is shared:
 * every holder — a session queue, an inflight slot, the retained store, an
 * output buffer, a component — holds one reference. Functions that borrow a
 * message take `const roost_msg *` or say so; a function that consumes a
 * reference is named *_take.
 *
 * The broker is single-threaded per event base, so refs is a plain int.
 *
 * MQTT 5 properties: `props` holds what is forwarded, built once at
 * creation. The Topic Alias and Subscription Identifiers of the inbound
 * PUBLISH are per connection / per subscription and are not kept
 * [MQTT-3.3.2-7], [MQTT-3.3.4-6]. A Message Expiry Interval is moved to the
 * front of `props` (5 bytes): it is stored with the message (so it survives a
 * restart), but each subscriber gets the value decremented by the time the
 * message waited [MQTT-3.3.2-6], so the sender writes it per subscriber and
 * attaches only props[shared_off..] + payload, which are contiguous, by
 * reference. Everything else (Payload Format Indicator, Content Type,
 * Response Topic, Correlation Data, User Properties) is forwarded unchanged
 * and in order [MQTT-3.3.2-17], [MQTT-3.3.2-18].
 */
#ifndef ROOST_MESSAGE_H
#define ROOST_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct roost_msg {
	int refs;
	uint8_t qos;          /* QoS the publisher used */
	bool retain;          /* RETAIN as published */
	uint16_t topic_len;
	uint32_t props_len;   /* v5 properties to forward, 0 for v3 */
	uint32_t payload_len;
	uint64_t store_id;    /* id in a durable store, 0 when not stored */
	bool has_expiry;      /* a Message Expiry Interval was given */
	uint8_t shared_off;   /* 5 when props starts with the expiry property, else 0 */
	uint32_t expiry_s;    /* Message Expiry Interval as received, seconds */
	uint64_t expiry_base_ms; /* clock time the interval counts from; ROOST_MSG_BASE_UNSET until known */
	const uint8_t *props; /* points inside this allocation; props + props_len == payload */
	const uint8_t *payload;
	char topic[];         /* topic_len bytes + NUL */
} roost_msg;

/* New message with refs == 1; NULL on allocation failure. */
roost_msg *roost_msg_new(const char *topic, size_t topic_len, const uint8_t *payload,
                         size_t payload_len, uint8_t qos, bool retain);

#define ROOST_MSG_BASE_UNSET UINT64_MAX

/*
 * A message with v5 properties from an inbound PUBLISH (validated by the
 * codec): the Topic Alias and Subscription Identifiers are left out, the
 * Message Expiry Interval counts from now_ms (broker clock).
 */
roost_msg *roost_msg_new_v5(const char *topic, size_t topic_len, const uint8_t *props, size_t props_len,
                            const uint8_t *payload, size_t payload_len, uint8_t qos, bool retain,
                            uint64_t now_ms);

/*
 * The same for properties already in stored form (a durable store's copy):
 * the expiry, if any, counts from the first roost_msg_expiry_left call — a
 * restart loses the monotonic clock, so the stored interval starts again at
 * load (the Pi has no real-time clock to say how long it was down).
 */
roost_msg *roost_msg_new_props(const char *topic, size_t topic_len, const uint8_t *props,
                               size_t props_len, const uint8_t *payload, size_t payload_len,
                               uint8_t qos, bool retain);

static inline roost_msg *roost_msg_ref(roost_msg *m)
{
	m->refs++;
	return m;
}

/* Drop one reference; frees the message when it was the last. NULL is ignored. */
void roost_msg_unref(roost_msg *m);

/*
 * Seconds of the Message Expiry Interval left at now_ms, rounded down, in
 * *left; false when the message has expired (never delivered afterwards
 * [MQTT-3.3.2-5]). Without an interval: true and *left = UINT32_MAX.
 */
bool roost_msg_expiry_left(roost_msg *m, uint64_t now_ms, uint32_t *left);

/* The properties every subscriber gets unchanged (after the expiry). */
static inline const uint8_t *roost_msg_shared_props(const roost_msg *m, size_t *len)
{
	*len = m->props_len - m->shared_off;
	return m->props + m->shared_off;
}

/* Bytes this message occupies (for queue byte limits and memory accounting). */
size_t roost_msg_size(const roost_msg *m);

#endif
