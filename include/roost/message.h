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
	const uint8_t *props; /* points inside this allocation */
	const uint8_t *payload;
	char topic[];         /* topic_len bytes + NUL */
} roost_msg;

/* New message with refs == 1; NULL on allocation failure. */
roost_msg *roost_msg_new(const char *topic, size_t topic_len, const uint8_t *payload,
                         size_t payload_len, uint8_t qos, bool retain);

/* The same with v5 properties to forward. */
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

/* Bytes this message occupies (for queue byte limits and memory accounting). */
size_t roost_msg_size(const roost_msg *m);

#endif
