/*
 * mqtt_client.h — roost's one MQTT 3.1.1 client for another broker: the hub
 * connector's external-broker mode (mqtt.broker) and the bridges (bridges:)
 * both run on it.
 *
 * It connects to the first of its addresses ("host" or "host:port",
 * "[v6]:port"), over plain TCP or TLS (OpenSSL: SNI, host name
 * verification, a CA file or the system CAs, an optional client
 * certificate), with the caller's client id, clean session flag, keepalive,
 * credentials and will, then subscribes to its filters at their QoS. Each
 * PUBLISH received is handed to the message callback, then acknowledged
 * (PUBACK; PUBREC ... PUBREL → PUBCOMP, a QoS 2 packet id that is seen again
 * before its PUBREL is not handed over twice).
 *
 * Publishing: roost_mqtt_client_publish sends at QoS 0, 1 or 2 with the
 * caller's packet id; the acked callback says when the broker has it
 * (PUBACK, or PUBCOMP after the PUBREL this client sends on PUBREC). A
 * resend after a reconnect (dup) of a QoS 2 id already PUBREC'd sends the
 * PUBREL again instead [MQTT-4.3.3-1]. The caller keeps its own inflight
 * window and resends on up().
 *
 * The bridge flag: with bridge_flag the CONNECT carries protocol level
 * 0x84 (4 | 0x80, Mosquitto's try_private), which tells a Mosquitto
 * upstream not to send our own messages back to us. A broker that refuses
 * it (CONNACK 1, or closing before any CONNACK) is tried again at once with
 * plain level 4, and that choice is kept.
 *
 * Keepalive: a PINGREQ every keepalive seconds; no PINGRESP by the next one
 * drops the connection. Any loss of the connection or a refused
 * subscription leads to a reconnect with exponential backoff from 1 s to
 * 60 s, rotating through the addresses, and a new SUBSCRIBE; a refused
 * CONNACK (bad credentials ...) is logged once at error level as a
 * configuration problem, with the reason, and retried every 60 s.
 * Packets are built and parsed with the codec (roost/codec.h) only.
 *
 * Runs on the broker's event loop; never blocks (names through hub_resolve.h).
 */
#ifndef ROOST_CONNECTOR_MQTT_CLIENT_H
#define ROOST_CONNECTOR_MQTT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roost/error.h"
#include "roost/log.h"

struct event_base;
typedef struct roost_mqtt_client roost_mqtt_client;

typedef struct roost_mqtt_client_sub {
	const char *filter;
	uint8_t qos;
} roost_mqtt_client_sub;

typedef struct roost_mqtt_client_tls {
	const char *cafile;   /* NULL: the system CAs */
	const char *certfile; /* client certificate (with keyfile); NULL = none */
	const char *keyfile;
	bool insecure;        /* no certificate or host name check (tests, never production) */
} roost_mqtt_client_tls;

/* Everything is borrowed and must outlive the client. */
typedef struct roost_mqtt_client_options {
	const char *label;              /* log prefix: "mqtt", "bridge upstream" */
	const char *keys;               /* config key prefix for hints: "mqtt.", "bridges[0]." */
	const char *config_path;        /* names the file in messages; NULL = "the configuration" */
	const char *const *addresses;   /* "host", "host:port" or "[v6]:port", tried in turn */
	size_t n_addresses;
	int port;                       /* for an address without one */
	const char *client_id;
	uint16_t keepalive;             /* seconds; 0 = none */
	bool clean_session;
	bool bridge_flag;               /* try protocol level 0x84 first */
	const char *username, *password; /* NULL = none */
	const roost_mqtt_client_tls *tls; /* NULL = plain TCP */
	const char *will_topic;         /* NULL = no will */
	const char *will_payload;
	bool will_retain;
	uint8_t will_qos;
	const roost_mqtt_client_sub *subs;
	size_t n_subs;
	uint32_t max_packet;            /* accepted packet size; 0 = protocol maximum */
} roost_mqtt_client_options;

typedef struct roost_mqtt_client_handler {
	/* One application message; every pointer is borrowed for the call. */
	void (*message)(void *ctx, const char *topic, size_t topic_len, const uint8_t *payload,
	                size_t payload_len, uint8_t qos, bool retain);
	/* Connected and subscribed: resend the inflight window now. May be NULL. */
	void (*up)(void *ctx, bool session_present);
	/* The connection went (after up). May be NULL. */
	void (*down)(void *ctx);
	/* The broker has the QoS 1/2 message with this packet id. May be NULL. */
	void (*acked)(void *ctx, uint16_t packet_id);
	void *ctx;
} roost_mqtt_client_handler;

/*
 * Check the options (TLS files are loaded now) and start connecting from the
 * loop. Problems are logged and give ROOST_ERR_CONFIG.
 */
roost_err roost_mqtt_client_new(struct event_base *base, const roost_log *log,
                                const roost_mqtt_client_options *o, const roost_mqtt_client_handler *h,
                                roost_mqtt_client **out);

/* Connected and subscribed. */
bool roost_mqtt_client_up(const roost_mqtt_client *c);

/* Send one PUBLISH (QoS 1/2 with packet_id != 0); ROOST_ERR_IO when not up. */
roost_err roost_mqtt_client_publish(roost_mqtt_client *c, const char *topic, size_t topic_len,
                                    const uint8_t *payload, size_t payload_len, uint8_t qos, bool retain,
                                    uint16_t packet_id, bool dup);

/* The address of the current (or last) connection, "host:port", for logs. */
const char *roost_mqtt_client_peer(const roost_mqtt_client *c);

/* Sends DISCONNECT when connected (so the broker drops the will), closes
 * and frees everything. */
void roost_mqtt_client_free(roost_mqtt_client *c);

#endif
