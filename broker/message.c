/* message.c — immutable refcounted application messages. */
#include <assert.h>
#include <string.h>

#include "roost/alloc.h"
#include "roost/message.h"

roost_msg *roost_msg_new_props(const char *topic, size_t topic_len, const uint8_t *props,
                               size_t props_len, const uint8_t *payload, size_t payload_len,
                               uint8_t qos, bool retain)
{
	assert(topic_len <= UINT16_MAX);
	assert(payload_len <= UINT32_MAX && props_len <= UINT32_MAX);
	/* One allocation: header, topic + NUL, properties, payload. */
	roost_msg *m = roost_malloc(sizeof *m + topic_len + 1 + props_len + payload_len);
	if (!m)
		return NULL;
	m->refs = 1;
	m->qos = qos;
	m->retain = retain;
	m->topic_len = (uint16_t)topic_len;
	m->props_len = (uint32_t)props_len;
	m->payload_len = (uint32_t)payload_len;
	m->store_id = 0;
	memcpy(m->topic, topic, topic_len);
	m->topic[topic_len] = '\0';
	uint8_t *p = (uint8_t *)m->topic + topic_len + 1;
	if (props_len)
		memcpy(p, props, props_len);
	m->props = p;
	p += props_len;
	if (payload_len)
		memcpy(p, payload, payload_len);
	m->payload = p;
	return m;
}

roost_msg *roost_msg_new(const char *topic, size_t topic_len, const uint8_t *payload,
                         size_t payload_len, uint8_t qos, bool retain)
{
	return roost_msg_new_props(topic, topic_len, NULL, 0, payload, payload_len, qos, retain);
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
