/* bridge_map.c — topic mapping, queued bodies, echo filter; see bridge_map.h. */
#include <string.h>

#include "roost/alloc.h"

#include "bridge_map.h"

char *roost_bridge_join(const char *prefix, const char *pattern)
{
	size_t a = prefix ? strlen(prefix) : 0, b = strlen(pattern);
	char *s = roost_malloc(a + b + 1);
	if (!s)
		return NULL;
	if (a)
		memcpy(s, prefix, a);
	memcpy(s + a, pattern, b + 1);
	return s;
}

bool roost_bridge_prefix_valid(const char *prefix)
{
	return !prefix || strpbrk(prefix, "+#") == NULL;
}

bool roost_bridge_map_topic(const char *topic, size_t len, const char *from, const char *to, char *out, size_t cap,
                            size_t *out_len)
{
	size_t f = from ? strlen(from) : 0, t = to ? strlen(to) : 0;
	if (len < f || (f && memcmp(topic, from, f) != 0))
		return false;
	size_t rest = len - f;
	if (t + rest + 1 > cap)
		return false;
	if (t)
		memcpy(out, to, t);
	memcpy(out + t, topic + f, rest);
	out[t + rest] = '\0';
	*out_len = t + rest;
	return true;
}

size_t roost_bridge_body_size(size_t topic_len, size_t payload_len) { return 3 + topic_len + payload_len; }

void roost_bridge_body_encode(uint8_t *out, const char *topic, size_t topic_len, const uint8_t *payload,
                              size_t payload_len, uint8_t qos, bool retain)
{
	out[0] = (uint8_t)((qos & 3) | (retain ? 4 : 0));
	out[1] = (uint8_t)(topic_len >> 8);
	out[2] = (uint8_t)topic_len;
	memcpy(out + 3, topic, topic_len);
	if (payload_len)
		memcpy(out + 3 + topic_len, payload, payload_len);
}

roost_err roost_bridge_body_decode(const uint8_t *body, size_t len, roost_bridge_msg *out)
{
	if (len < 3 || (body[0] & ~7u) || (body[0] & 3) == 3)
		return ROOST_ERR_MALFORMED;
	size_t tl = (size_t)body[1] << 8 | body[2];
	if (tl == 0 || 3 + tl > len)
		return ROOST_ERR_MALFORMED;
	out->qos = body[0] & 3;
	out->retain = body[0] & 4;
	out->topic = (const char *)body + 3;
	out->topic_len = tl;
	out->payload = body + 3 + tl;
	out->payload_len = len - 3 - tl;
	return ROOST_OK;
}

/* FNV-1a over the topic, a separator that no topic holds, the payload. */
uint64_t roost_bridge_echo_hash(const char *topic, size_t topic_len, const uint8_t *payload, size_t payload_len)
{
	uint64_t h = 14695981039346656037ull;
	for (size_t i = 0; i < topic_len; i++)
		h = (h ^ (uint8_t)topic[i]) * 1099511628211ull;
	h = (h ^ 0) * 1099511628211ull; /* NUL: never inside a topic [MQTT-1.5.4-2] */
	for (size_t i = 0; i < payload_len; i++)
		h = (h ^ payload[i]) * 1099511628211ull;
	return h | 1; /* 0 marks a free slot */
}

void roost_bridge_echo_note(roost_bridge_echo *e, uint64_t hash, uint64_t now_ms)
{
	e->slot[e->next].hash = hash;
	e->slot[e->next].ms = now_ms;
	e->next = (e->next + 1) % ROOST_BRIDGE_ECHO_SLOTS;
}

bool roost_bridge_echo_take(roost_bridge_echo *e, uint64_t hash, uint64_t now_ms, uint64_t window_ms)
{
	for (size_t i = 0; i < ROOST_BRIDGE_ECHO_SLOTS; i++) {
		if (e->slot[i].hash == hash && now_ms - e->slot[i].ms <= window_ms && now_ms >= e->slot[i].ms) {
			e->slot[i].hash = 0;
			return true;
		}
	}
	return false;
}
