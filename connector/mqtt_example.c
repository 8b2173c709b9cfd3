/*
 * mqtt_example.c — the example component (see mqtt_example.h for what it
 * does and the component API in one paragraph).
 *
 * Written to be read: each roost call says what it does and what it
 * promises. Copy this file to start a component of your own.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "roost/alloc.h"     /* roost_malloc & co: all roost code allocates through them */
#include "roost/broker.h"    /* subscribe, publish, bus, log, services */
#include "roost/bus.h"       /* roost_bus_fire */
#include "roost/codec.h"     /* roost_utf8_valid */
#include "roost/component.h" /* roost_component: name, start, stop */
#include "roost/http.h"      /* routes on roost's HTTP API */
#include "roost/log.h"
#include "roost/message.h"   /* roost_msg: an immutable, refcounted MQTT message */

#include "mqtt_example.h"

#define STATE_PATH "/api/states/" MQTT_EXAMPLE_ENTITY_ID
#define SERVICE_PATH "/api/services/mqtt_example/set_state"

/* Everything the component owns; start() allocates it, stop() frees it. */
typedef struct example {
	roost_broker *b;
	const roost_log *log;
	roost_http *http;      /* borrowed from the "http" service; NULL without the API */
	roost_broker_sub *sub; /* our subscription, for roost_broker_unsubscribe */
	char *state;           /* NULL until the first message */
	uint64_t last_changed_us, last_updated_us;
	uint64_t changes;      /* state changes so far */
} example;

/*
 * Wall-clock time in microseconds. Entity timestamps are calendar times
 * shown to people and to Home Assistant, so they come from CLOCK_REALTIME,
 * not from the broker's monotonic clock (which measures durations).
 */
static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/*
 * The entity in Home Assistant's state shape. cJSON objects are the caller's
 * to cJSON_Delete (cJSON allocates with its own malloc). NULL on allocation
 * failure.
 */
static cJSON *state_json(const example *ex)
{
	char changed[ROOST_HTTP_TIME_LEN], updated[ROOST_HTTP_TIME_LEN];
	cJSON *o = cJSON_CreateObject();
	if (!o || !cJSON_AddStringToObject(o, "entity_id", MQTT_EXAMPLE_ENTITY_ID) ||
	    !cJSON_AddStringToObject(o, "state", ex->state) || !cJSON_AddObjectToObject(o, "attributes") ||
	    !cJSON_AddStringToObject(o, "last_changed", roost_http_time_iso(ex->last_changed_us, changed)) ||
	    !cJSON_AddStringToObject(o, "last_updated", roost_http_time_iso(ex->last_updated_us, updated))) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/*
 * Tell the bus, in Home Assistant's shape: state_changed with
 * {"entity_id", "old_state" (null the first time), "new_state"}.
 * roost_bus_fire calls every listener (the hub connector, HTTP event
 * streams, ...) before it returns; it copies nothing it keeps, so the JSON
 * text is ours to free afterwards. Time 0 means "now".
 */
static void fire_state_changed(example *ex, cJSON *old_state /* taken */)
{
	cJSON *data = cJSON_CreateObject();
	cJSON *new_state = state_json(ex);
	char *txt = NULL;
	if (data && new_state && cJSON_AddStringToObject(data, "entity_id", MQTT_EXAMPLE_ENTITY_ID)) {
		cJSON_AddItemToObject(data, "old_state", old_state ? old_state : cJSON_CreateNull());
		old_state = NULL; /* now owned by data */
		cJSON_AddItemToObject(data, "new_state", new_state);
		new_state = NULL;
		txt = cJSON_PrintUnformatted(data);
	}
	if (txt)
		roost_bus_fire(roost_broker_bus(ex->b), "state_changed", txt, "LOCAL", 0);
	else
		roost_log_warn(ex->log, "mqtt_example: out of memory firing state_changed");
	cJSON_free(txt);
	cJSON_Delete(data);
	cJSON_Delete(new_state);
	cJSON_Delete(old_state);
}

/*
 * The subscription callback (roost_msg_fn). The broker calls it for each
 * message on our topic, on the publish path itself: it must be quick and
 * must not block. msg is borrowed for the call — roost_msg_ref() it to keep
 * it; here we copy the payload instead. qos is the delivery QoS (the lower of
 * the publisher's and our subscription's).
 */
static void on_message(void *ctx, roost_msg *msg, uint8_t qos)
{
	(void)qos;
	example *ex = ctx;
	size_t len = msg->payload_len;
	/* A state is text: valid UTF-8 without NUL, at most 255 bytes (Home
	 * Assistant's limit). Anything else is refused, loudly. */
	if (len > MQTT_EXAMPLE_MAX_STATE || !roost_utf8_valid(msg->payload, len)) {
		roost_log_warn(ex->log, "mqtt_example: ignoring a payload on %s that is not a state "
		                        "(%u bytes; want UTF-8 text of at most %d bytes)",
		               msg->topic, (unsigned)len, MQTT_EXAMPLE_MAX_STATE);
		return;
	}
	/* The same state again changes nothing and fires nothing, as in HA. */
	if (ex->state && strlen(ex->state) == len && memcmp(ex->state, msg->payload, len) == 0)
		return;
	char *s = roost_strndup((const char *)msg->payload, len);
	if (!s) {
		roost_log_warn(ex->log, "mqtt_example: out of memory keeping the state");
		return;
	}
	cJSON *old_state = ex->state ? state_json(ex) : NULL;
	roost_free(ex->state);
	ex->state = s;
	ex->last_changed_us = ex->last_updated_us = now_us();
	ex->changes++;
	roost_log_debug(ex->log, "mqtt_example: %s is now '%s'", MQTT_EXAMPLE_ENTITY_ID, ex->state);
	fire_state_changed(ex, old_state);
}

/*
 * GET /api/states/mqtt_example.state — a route handler (roost_http_handler).
 * The HTTP component already checked the token; we only answer, exactly once.
 */
static void get_state(void *ctx, struct evhttp_request *req, const char *rest)
{
	(void)rest; /* an exact route: rest is "" */
	example *ex = ctx;
	if (!ex->state) {
		roost_http_reply_message(req, 404, "Entity not found.");
		return;
	}
	cJSON *o = state_json(ex);
	if (!o) {
		roost_http_reply_message(req, 500, "Out of memory");
		return;
	}
	roost_http_reply_json(req, 200, o);
	cJSON_Delete(o);
}

/*
 * POST /api/services/mqtt_example/set_state {"new_state": "..."} — the
 * service. It does not set the state itself: it publishes to the topic like
 * any MQTT client would, and the state follows from the subscription. So the
 * broker stays the single source of truth (retained messages, other
 * subscribers see the same thing).
 */
static void set_state(void *ctx, struct evhttp_request *req, const char *rest)
{
	(void)rest;
	example *ex = ctx;
	/* Parses the body; on bad JSON it has already answered 400 for us. */
	cJSON *root = roost_http_body_object(req);
	if (!root)
		return;
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, "new_state");
	const char *text = cJSON_GetStringValue(item); /* NULL unless a JSON string */
	if (!item) {
		roost_http_reply_message(req, 400, "new_state is required");
	} else if (!text) {
		roost_http_reply_message(req, 400, "new_state must be a string");
	} else if (strlen(text) > MQTT_EXAMPLE_MAX_STATE) {
		roost_http_reply_message(req, 400, "new_state is longer than %d bytes",
		                         MQTT_EXAMPLE_MAX_STATE);
	} else {
		/*
		 * roost_msg_new copies topic and payload into one refcounted
		 * allocation (refs 1: ours). roost_broker_publish borrows it: the
		 * broker takes its own references for whoever keeps it (queues,
		 * retained store), so we drop ours right after. QoS 0, not retained,
		 * as the 2015 example's mqtt.publish.
		 */
		uint64_t before = ex->changes;
		roost_msg *m = roost_msg_new(MQTT_EXAMPLE_TOPIC, strlen(MQTT_EXAMPLE_TOPIC),
		                             (const uint8_t *)text, strlen(text), 0, false);
		roost_err e = m ? roost_broker_publish(ex->b, m) : ROOST_ERR_NOMEM;
		roost_msg_unref(m);
		if (e) {
			/* The broker decides who may publish where, for us too. */
			roost_log_warn(ex->log, "mqtt_example: publish to %s refused by the broker: %s",
			               MQTT_EXAMPLE_TOPIC, roost_err_str(e));
			roost_http_reply_publish_error(req, e, MQTT_EXAMPLE_TOPIC);
		} else {
			/* In-process subscribers are called during the publish, so our own
			 * on_message has already run: answer the states that changed. */
			cJSON *changed = cJSON_CreateArray();
			if (changed && ex->changes != before)
				cJSON_AddItemToArray(changed, state_json(ex));
			if (changed)
				roost_http_reply_json(req, 200, changed);
			else
				roost_http_reply_message(req, 500, "Out of memory");
			cJSON_Delete(changed);
		}
	}
	cJSON_Delete(root);
}

/* Undo whatever start() managed to do; safe on a half-built example. */
static void example_free(example *ex)
{
	if (!ex)
		return;
	if (ex->http) {
		roost_http_route_remove(ex->http, "GET", STATE_PATH);
		roost_http_route_remove(ex->http, "POST", SERVICE_PATH);
	}
	roost_broker_unsubscribe(ex->b, ex->sub); /* NULL is ignored */
	roost_free(ex->state);
	roost_free(ex);
}

/*
 * start(): called once, after the MQTT listeners are open and after the
 * components listed before us (the HTTP API) have started. Return ROOST_OK
 * with *state set, or an error: component.h says what main() does with it
 * (this component is optional: roost runs on without it).
 */
static roost_err example_start(roost_broker *b, void **state)
{
	*state = NULL;
	roost_err e = ROOST_ERR_NOMEM;
	example *ex = roost_calloc(1, sizeof *ex);
	if (!ex)
		goto fail;
	ex->b = b;
	ex->log = roost_broker_log(b);
	/*
	 * Subscribe inside the broker: the filter goes through the same trie and
	 * fan-out as a client's SUBSCRIBE, and on_message is called for every
	 * match. QoS 0: we keep the latest state, a lost update is replaced by
	 * the next one.
	 */
	e = roost_broker_subscribe(b, MQTT_EXAMPLE_TOPIC, 0, on_message, ex, &ex->sub);
	if (e)
		goto fail;
	/*
	 * The HTTP API, if enabled, registered itself as the service "http"
	 * (it starts first). NULL means http.port is -1 or the API could not
	 * start (port in use): keep tracking the state, just offer no routes.
	 */
	ex->http = roost_broker_service_find(b, "http");
	if (ex->http) {
		if ((e = roost_http_route_add(ex->http, "GET", STATE_PATH, get_state, ex)) != ROOST_OK ||
		    (e = roost_http_route_add(ex->http, "POST", SERVICE_PATH, set_state, ex)) != ROOST_OK)
			goto fail;
	}
	roost_log_info(ex->log, "mqtt_example: %s follows %s%s", MQTT_EXAMPLE_ENTITY_ID,
	               MQTT_EXAMPLE_TOPIC, ex->http ? "" : " (no HTTP API: no routes)");
	*state = ex;
	return ROOST_OK;
fail:
	roost_log_error(roost_broker_log(b), "mqtt_example: cannot start: %s", roost_err_str(e));
	example_free(ex);
	return e;
}

/* stop(): called once at shutdown, in reverse start order; free everything. */
static void example_stop(void *state)
{
	example_free(state);
}

/* Optional: a demonstration nothing depends on. */
const roost_component roost_mqtt_example_component = {
	.name = "mqtt_example", .start = example_start, .stop = example_stop, .optional = true,
};
