/* message.c — immutable refcounted application messages. */
#include <assert.h>
#include <string.h>

#include "roost/alloc.h"
#include "roost/codec.h"
#include "roost/message.h"

/* One allocation: header, topic + NUL, properties, payload. */
static roost_msg *msg_alloc(const char *topic, size_t topic_len, size_t props_len, const uint8_t *payload,
                            size_t payload_len, uint8_t qos, bool retain)
{
	assert(topic_len <= UINT16_MAX);
	assert(payload_len <= UINT32_MAX && props_len <= UINT32_MAX);
	roost_msg *m = roost_malloc(sizeof *m + topic_len + 1 + props_len + payload_len);
	if (!m)
		return NULL;
	memset(m, 0, sizeof *m);
	m->refs = 1;
	m->qos = qos;
	m->retain = retain;
	m->topic_len = (uint16_t)topic_len;
	m->props_len = (uint32_t)props_len;
	m->payload_len = (uint32_t)payload_len;
	m->expiry_base_ms = ROOST_MSG_BASE_UNSET;
	memcpy(m->topic, topic, topic_len);
	m->topic[topic_len] = '\0';
	m->props = (uint8_t *)m->topic + topic_len + 1;
	m->payload = m->props + props_len;
	if (payload_len)
		memcpy((uint8_t *)m->payload, payload, payload_len);
	return m;
}

/* The expiry property, if any, is first: remember it. */
static void note_expiry(roost_msg *m)
{
	roost_props_iter it;
	roost_prop prop;
	roost_props_iter_init(&it, (roost_bytes){m->props, m->props_len});
	if (m->props_len && roost_props_next(&it, &prop) && prop.id == ROOST_PROP_MESSAGE_EXPIRY) {
		m->has_expiry = true;
		m->expiry_s = prop.u32;
		m->shared_off = 5;
	}
}

roost_msg *roost_msg_new_props(const char *topic, size_t topic_len, const uint8_t *props,
                               size_t props_len, const uint8_t *payload, size_t payload_len,
                               uint8_t qos, bool retain)
{
	roost_msg *m = msg_alloc(topic, topic_len, props_len, payload, payload_len, qos, retain);
	if (m && props_len) {
		memcpy((uint8_t *)m->props, props, props_len);
		note_expiry(m);
	}
	return m;
}

/* Is this property one that travels with the message? */
static bool forwarded(uint8_t id)
{
	return id != ROOST_PROP_TOPIC_ALIAS && id != ROOST_PROP_SUBSCRIPTION_ID;
}

roost_msg *roost_msg_new_v5(const char *topic, size_t topic_len, const uint8_t *props, size_t props_len,
                            const uint8_t *payload, size_t payload_len, uint8_t qos, bool retain,
                            uint64_t now_ms)
{
	/* The kept properties are never longer than the received ones. */
	roost_msg *m = msg_alloc(topic, topic_len, props_len, payload, payload_len, qos, retain);
	if (!m)
		return NULL;
	uint8_t *out = (uint8_t *)m->props;
	size_t at = 0, expiry_at = 0;
	roost_props_iter it;
	roost_prop prop;
	roost_props_iter_init(&it, (roost_bytes){props, props_len});
	const uint8_t *start = props;
	while (roost_props_next(&it, &prop)) {
		size_t n = (size_t)(it.p - start);
		if (prop.id == ROOST_PROP_MESSAGE_EXPIRY) {
			/* First, so it can be left out of the shared part. */
			memmove(out + 5, out, at);
			memcpy(out, start, 5);
			expiry_at = 5;
			m->has_expiry = true;
			m->expiry_s = prop.u32;
			at += 5;
		} else if (forwarded(prop.id)) {
			memcpy(out + at, start, n);
			at += n;
		}
		start = it.p;
	}
	m->shared_off = (uint8_t)expiry_at;
	m->expiry_base_ms = now_ms;
	if (at != props_len) {
		/* Shorter: the payload moves up to follow the properties. */
		memmove(out + at, m->payload, payload_len);
		m->props_len = (uint32_t)at;
		m->payload = out + at;
	}
	return m;
}

roost_msg *roost_msg_new(const char *topic, size_t topic_len, const uint8_t *payload,
                         size_t payload_len, uint8_t qos, bool retain)
{
	return roost_msg_new_props(topic, topic_len, NULL, 0, payload, payload_len, qos, retain);
}

bool roost_msg_expiry_left(roost_msg *m, uint64_t now_ms, uint32_t *left)
{
	if (!m->has_expiry) {
		*left = UINT32_MAX;
		return true;
	}
	if (m->expiry_base_ms == ROOST_MSG_BASE_UNSET)
		m->expiry_base_ms = now_ms; /* restored from a store: counts from now */
	uint64_t waited = now_ms > m->expiry_base_ms ? now_ms - m->expiry_base_ms : 0;
	uint64_t life = (uint64_t)m->expiry_s * 1000u;
	if (waited >= life)
		return false;
	*left = (uint32_t)((life - waited + 999) / 1000); /* never 0 while alive */
	return true;
}

void roost_msg_unref(roost_msg *m)
{
	if (!m)
		return;
	assert(m->refs > 0);
	if (--m->refs == 0)
		roost_free(m);
}

size_t roost_msg_size(const roost_msg *m)
{
	return sizeof *m + m->topic_len + 1 + m->props_len + m->payload_len;
}
