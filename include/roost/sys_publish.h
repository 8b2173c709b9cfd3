/*
 * sys_publish.h — what a component may publish under the broker's own "$SYS/broker/"
 * tree: the state of something it runs (a bridge's connection state,
 * Mosquitto's $SYS/broker/connection/<name>/state).
 *
 * Clients and roost_broker_publish may not publish '$' topics
 * [MQTT-4.7.2-1]; this is the one door for components, limited to the
 * broker's subtree and to QoS 0 state messages. It goes through the same
 * retained handling and fan-out as any message.
 */
#ifndef ROOST_SYS_PUBLISH_H
#define ROOST_SYS_PUBLISH_H

#include <stdbool.h>
#include <stddef.h>

#include "roost/error.h"

struct roost_broker;

/*
 * Publish payload (len bytes) on "$SYS/broker/" + subtopic, QoS 0, retained
 * when retain is set. ROOST_ERR_BAD_TOPIC when the result is not a topic
 * name (wildcards, empty subtopic), ROOST_ERR_NOMEM.
 */
roost_err roost_broker_sys_publish(struct roost_broker *b, const char *subtopic, const void *payload, size_t len,
                                   bool retain);

#endif
