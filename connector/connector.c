/*
 * connector.c — the hub connector component: MQTT messages become Home
 * Assistant events, and those events go to Home Assistant.
 *
 *   source                          bus                         sink
 *   embedded broker subscription ─┐
 *     (roost_broker_subscribe)    ├─► event mqtt.event_type ─► hub_client (hub.url set)
 *   or external broker client ────┘   {"topic","payload",       POST /api/events/<type>
 *     (mqtt_client.c, mqtt.broker)     "qos","retain"}          spool + retry
 *
 * The event goes through roost's bus (origin LOCAL) so every listener sees
 * it: the HTTP API's event stream as well as the delivery to Home Assistant.
 * The delivery side listens only for mqtt.event_type.
 *
 * Everything on the publish path is cheap: build the JSON body (one
 * allocation), fire; the delivery listener copies it into the spool and
 * schedules the send for the next loop turn.
 *
 * Overlapping filters (say "home-assistant/#" and "home-assistant/+/1/on")
 * are separate component subscriptions, each called for the same message;
 * the connector fires one event per message, as one MQTT subscription with
 * overlapping filters does in roost.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/rand.h>

#include "roost/alloc.h"
#include "roost/broker.h"
#include "roost/bus.h"
#include "roost/codec.h"
#include "roost/queue.h"
#include "roost/component.h"
#include "roost/config.h"
#include "roost/log.h"
#include "roost/message.h"

#include "hub_client.h"
#include "hub_proto.h"
#include "mqtt_client.h"

typedef struct connector {
	roost_broker *b;
	const roost_config *cfg;
	const roost_log *log;
	roost_bus *bus;
	roost_broker_sub **subs; /* one per mqtt.topics filter (embedded mode) */
	size_t n_subs;
	roost_msg *last;         /* the last message fired (one reference): overlap dedup */
	roost_bus_listener *listener;
	roost_hub_client *hub;   /* NULL without hub.url */
	roost_mqtt_client *mqtt; /* NULL without mqtt.broker */
	roost_mqtt_client_sub *mqtt_subs;
	char mqtt_client_id[32]; /* mqtt.client_id's default, fixed for the process */
	uint64_t fired;
	uint64_t not_fired;      /* no memory for the event body */
} connector;

static void fire(connector *c, const char *topic, size_t topic_len, const uint8_t *payload,
                 size_t payload_len, const uint8_t *props, size_t props_len, uint8_t qos, bool retain)
{
	char *json;
	size_t len;
	if (roost_hub_event_json_props(topic, topic_len, payload, payload_len, props, props_len, qos, retain, &json,
	                               &len) != ROOST_OK) {
		if (!c->not_fired++)
			roost_log_warn(c->log, "connector: out of memory: a message on %.*s fired no event",
			               (int)topic_len, topic);
		return;
	}
	if (roost_bus_fire(c->bus, c->cfg->mqtt.event_type, json, "LOCAL", 0) == ROOST_OK)
		c->fired++;
	else
		c->not_fired++;
	roost_free(json);
}

/* Embedded mode: a component subscription's delivery, on the publish path. */
static void on_message(void *ctx, roost_msg *msg, uint8_t qos)
{
	connector *c = ctx;
	if (msg == c->last)
		return; /* the same message through an overlapping filter */
	roost_msg_unref(c->last);
	c->last = roost_msg_ref(msg); /* held so its address cannot be reused */
	fire(c, msg->topic, msg->topic_len, msg->payload, msg->payload_len, msg->props, msg->props_len, qos,
	     msg->retain);
}

/* External mode: a PUBLISH from the other broker. */
static void on_client_message(void *ctx, const char *topic, size_t topic_len,
                              const uint8_t *payload, size_t payload_len, uint8_t qos, bool retain)
{
	fire(ctx, topic, topic_len, payload, payload_len, NULL, 0, qos, retain);
}

/* Delivery side: every mqtt.event_type event on the bus goes to HA. */
static void on_event(void *ctx, const roost_event *ev)
{
	connector *c = ctx;
	roost_hub_client_enqueue(c->hub, ev->data_json, strlen(ev->data_json));
}

static void stop(void *state);

/* External mode: the shared MQTT client, subscribed at QoS 2 so each
 * message arrives at the QoS it was published with. */
static roost_err start_external(connector *c)
{
	const roost_mqtt_config *m = &c->cfg->mqtt;
	const char *path = c->cfg->path ? c->cfg->path : "the configuration";
	if (m->n_topics == 0) {
		roost_log_error(c->log, "%s: mqtt.topics is empty: nothing to subscribe to on %s", path, m->broker);
		return ROOST_ERR_CONFIG;
	}
	c->mqtt_subs = roost_calloc(m->n_topics, sizeof *c->mqtt_subs);
	if (!c->mqtt_subs)
		return ROOST_ERR_NOMEM;
	for (size_t i = 0; i < m->n_topics; i++) {
		if (!roost_topic_filter_valid((const uint8_t *)m->topics[i], strlen(m->topics[i]))) {
			roost_log_error(c->log, "%s: mqtt.topics: '%s' is not a valid topic filter", path, m->topics[i]);
			return ROOST_ERR_CONFIG;
		}
		c->mqtt_subs[i] = (roost_mqtt_client_sub){m->topics[i], 2};
	}
	unsigned char r[4];
	if (!m->client_id && RAND_bytes(r, sizeof r) != 1)
		return ROOST_ERR_IO;
	snprintf(c->mqtt_client_id, sizeof c->mqtt_client_id, "roost-hub-%02x%02x%02x%02x", r[0], r[1], r[2], r[3]);
	const char *const *addr = (const char *const *)&m->broker;
	roost_mqtt_client_options o = {
		.label = "mqtt", .keys = "mqtt.", .config_path = c->cfg->path, .addresses = addr, .n_addresses = 1,
		.port = m->port, .client_id = m->client_id ? m->client_id : c->mqtt_client_id,
		.keepalive = (uint16_t)m->keepalive, .clean_session = true, .username = m->username,
		.password = m->password, .subs = c->mqtt_subs, .n_subs = m->n_topics,
		.max_packet = c->cfg->limits.max_packet_size,
	};
	roost_mqtt_client_handler h = {.message = on_client_message, .ctx = c};
	return roost_mqtt_client_new(roost_broker_base(c->b), c->log, &o, &h, &c->mqtt);
}

/* The hub's figures, for $SYS/broker/roost/hub/ and roost_hub_* metrics. */
static size_t hub_stats(void *ctx, roost_stat *out, size_t cap)
{
	connector *c = ctx;
	roost_hub_stats s;
	roost_hub_client_stats(c->hub, &s);
	const roost_stat items[] = {
		{"queued", "spool_events", "Events waiting in the spool for Home Assistant", ROOST_STAT_GAUGE, s.queued, NULL},
		{"delivered", "events_delivered_total", "Events Home Assistant accepted", ROOST_STAT_COUNTER, s.delivered, NULL},
		{"dropped", "events_dropped_total", "Events dropped from a full spool", ROOST_STAT_COUNTER, s.dropped, NULL},
		{"rejected", "events_rejected_total", "Events Home Assistant refused (4xx)", ROOST_STAT_COUNTER, s.rejected, NULL},
		{"retries", "retries_total", "Failed deliveries that were retried", ROOST_STAT_COUNTER, s.retries, NULL},
		{"state", NULL, NULL, ROOST_STAT_TEXT, 0, s.state},
	};
	size_t n = sizeof items / sizeof items[0];
	if (n > cap)
		n = cap;
	memcpy(out, items, n * sizeof *out);
	return n;
}

static roost_err subscribe_embedded(connector *c)
{
	const roost_mqtt_config *m = &c->cfg->mqtt;
	if (m->n_topics == 0)
		return ROOST_OK;
	c->subs = roost_calloc(m->n_topics, sizeof *c->subs);
	if (!c->subs)
		return ROOST_ERR_NOMEM;
	for (size_t i = 0; i < m->n_topics; i++) {
		/* QoS 2: each message arrives at the QoS it was published with. */
		roost_err err = roost_broker_subscribe(c->b, m->topics[i], 2, on_message, c, &c->subs[i]);
		if (err == ROOST_ERR_BAD_TOPIC) {
			roost_log_error(c->log, "%s: mqtt.topics: '%s' is not a valid topic filter",
			                c->cfg->path ? c->cfg->path : "configuration", m->topics[i]);
			return ROOST_ERR_CONFIG;
		}
		if (err)
			return err;
		c->n_subs++;
	}
	return ROOST_OK;
}

static roost_err start(roost_broker *b, void **state)
{
	*state = NULL;
	connector *c = roost_calloc(1, sizeof *c);
	if (!c)
		return ROOST_ERR_NOMEM;
	c->b = b;
	c->cfg = roost_broker_config(b);
	c->log = roost_broker_log(b);
	c->bus = roost_broker_bus(b);
	const roost_mqtt_config *m = &c->cfg->mqtt;
	roost_err err = ROOST_OK;

	/* The sink first, so that nothing fired at subscribe time (retained
	 * messages) is missed. */
	if (c->cfg->hub.url) {
		roost_queue *spool;
		err = roost_broker_queue_open(b, "hub", c->cfg->hub.spool_max, &spool);
		if (err)
			roost_log_error(c->log, "hub connector: cannot open its event spool: %s", roost_err_str(err));
		else
			err = roost_hub_client_new(roost_broker_base(b), c->log, &c->cfg->hub, m->event_type,
			                           c->cfg->path, spool, &c->hub);
		if (!err)
			err = roost_bus_listen(c->bus, m->event_type, on_event, c, &c->listener);
		if (!err)
			err = roost_broker_stats_source_add(b, "hub", hub_stats, c);
		if (err)
			goto fail;
	}
	if (m->broker)
		err = start_external(c);
	else
		err = subscribe_embedded(c);
	if (err)
		goto fail;

	char source[300];
	if (m->broker)
		snprintf(source, sizeof source, "broker %s:%d", m->broker, m->port);
	else
		snprintf(source, sizeof source, "the embedded broker");
	roost_log_info(c->log, "hub connector: %zu topic filter%s on %s fire %s events; %s%s", m->n_topics,
	               m->n_topics == 1 ? "" : "s", source, m->event_type,
	               c->hub ? "delivering them to Home Assistant at " : "no hub.url: not delivering them",
	               c->hub ? c->cfg->hub.url : "");
	*state = c;
	return ROOST_OK;
fail:
	stop(c);
	return err;
}

static void stop(void *state)
{
	connector *c = state;
	if (!c)
		return;
	for (size_t i = 0; i < c->n_subs; i++)
		roost_broker_unsubscribe(c->b, c->subs[i]);
	roost_free(c->subs);
	roost_mqtt_client_free(c->mqtt);
	roost_free(c->mqtt_subs);
	if (c->listener)
		roost_bus_unlisten(c->bus, c->listener);
	if (c->hub) {
		roost_broker_stats_source_remove(c->b, "hub");
		roost_hub_stats s;
		roost_hub_client_stats(c->hub, &s);
		/* Say what becomes of the queued ones: the spool is durable only
		 * with the broker's store (persistence.enabled). */
		roost_log_notice(c->log, "hub connector: %llu events fired; Home Assistant: %llu delivered, "
		                 "%llu queued (%s), %llu dropped (spool full or no memory), "
		                 "%llu rejected, %llu retries",
		                 (unsigned long long)c->fired, (unsigned long long)s.delivered,
		                 (unsigned long long)s.queued,
		                 s.durable ? "kept in the store for the next start"
		                           : "lost: persistence is off",
		                 (unsigned long long)s.dropped, (unsigned long long)s.rejected,
		                 (unsigned long long)s.retries);
		roost_hub_client_free(c->hub);
	} else if (c->fired) {
		roost_log_info(c->log, "hub connector: %llu events fired", (unsigned long long)c->fired);
	}
	roost_msg_unref(c->last);
	roost_free(c);
}

/* Required: it is the household's link to Home Assistant, and it fails to
 * start only on a configuration error or out of memory, never on the network
 * (an unreachable Home Assistant is retried): running without it would drop
 * events silently. */
const roost_component roost_connector_component = {
	.name = "connector", .start = start, .stop = stop, .optional = false,
};
