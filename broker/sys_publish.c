/* sys_publish.c — components' door into "$SYS/broker/"; see roost/sys_publish.h. */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "roost/alloc.h"
#include "roost/sys_publish.h"

roost_err roost_broker_sys_publish(roost_broker *b, const char *subtopic, const void *payload, size_t len,
                                   bool retain)
{
	static const char prefix[] = "$SYS/broker/";
	size_t n = strlen(subtopic);
	if (n == 0 || n > 65535 - (sizeof prefix - 1))
		return ROOST_ERR_BAD_TOPIC;
	char *topic = roost_malloc(sizeof prefix + n);
	if (!topic)
		return ROOST_ERR_NOMEM;
	memcpy(topic, prefix, sizeof prefix - 1);
	memcpy(topic + sizeof prefix - 1, subtopic, n + 1);
	size_t tlen = sizeof prefix - 1 + n;
	roost_err err = ROOST_ERR_BAD_TOPIC;
	if (roost_topic_name_valid((const uint8_t *)topic, tlen)) {
		roost_msg *m = roost_msg_new(topic, tlen, payload, len, 0, retain);
		err = m ? broker_publish(b, m) : ROOST_ERR_NOMEM;
		roost_msg_unref(m);
	}
	roost_free(topic);
	return err;
}
