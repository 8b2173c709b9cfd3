/*
 * mqtt_client.h — the connector's MQTT 3.1.1 client for an external broker
 * (mqtt.broker set: a household that keeps its existing Mosquitto).
 *
 * It connects to mqtt.broker:mqtt.port over plain TCP with a clean session,
 * client id mqtt.client_id (or "roost-hub-<8 hex>", fixed for the process),
 * mqtt.username / mqtt.password when set, and subscribes to every filter in
 * mqtt.topics at QoS 2 (so each message arrives at the QoS it was published
 * with). Each PUBLISH received is handed to the callback, then acknowledged
 * (PUBACK; PUBREC ... PUBREL → PUBCOMP, a QoS 2 packet id that is seen again
 * before its PUBREL is not handed over twice).
 *
 * Keepalive: a PINGREQ every mqtt.keepalive seconds; no PINGRESP by the next
 * one drops the connection. Any loss of the connection, a refused CONNACK
 * (logged as a configuration problem) or a refused subscription leads to a
 * reconnect with exponential backoff from 1 s to 60 s and a new SUBSCRIBE.
 * Packets are built and parsed with the codec (roost/codec.h) only.
 *
 * Runs on the broker's event loop; never blocks (names through hub_resolve.h).
 */
#ifndef ROOST_CONNECTOR_MQTT_CLIENT_H
#define ROOST_CONNECTOR_MQTT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roost/config.h"
#include "roost/error.h"
#include "roost/log.h"

struct event_base;
typedef struct roost_mqtt_client roost_mqtt_client;

/* One application message; every pointer is borrowed for the call. */
typedef void (*roost_mqtt_client_msg_fn)(void *ctx, const char *topic, size_t topic_len,
                                         const uint8_t *payload, size_t payload_len, uint8_t qos,
                                         bool retain);

/*
 * Validate mqtt (broker, credentials, topics) and start connecting from the
 * loop. max_packet bounds what the client accepts (0 = protocol maximum).
 * config_path names the file in messages (may be NULL). base, log and mqtt
 * must outlive the client.
 */
roost_err roost_mqtt_client_new(struct event_base *base, const roost_log *log,
                                const roost_mqtt_config *mqtt, uint32_t max_packet,
                                const char *config_path, roost_mqtt_client_msg_fn fn, void *ctx,
                                roost_mqtt_client **out);

/* Sends DISCONNECT when connected, closes and frees everything. */
void roost_mqtt_client_free(roost_mqtt_client *c);

#endif
