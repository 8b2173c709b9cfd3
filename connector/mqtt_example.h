/*
 * mqtt_example.h — the example component: how to write a roost component.
 *
 * The C counterpart of Home Assistant's 2015 `mqtt_example` custom component,
 * kept small on purpose: it is the reference a third party copies. Read
 * mqtt_example.c top to bottom; every roost API it calls is explained where
 * it is called. What it does:
 *
 *   - subscribes to MQTT_EXAMPLE_TOPIC inside the broker (no socket: the
 *     broker calls a function for each matching message);
 *   - keeps the last payload as the state of the entity MQTT_EXAMPLE_ENTITY_ID,
 *     with Home Assistant's last_changed / last_updated times;
 *   - fires a `state_changed` event on roost's bus when the state changes,
 *     with Home Assistant's data {"entity_id", "old_state", "new_state"};
 *   - on roost's HTTP API (when it is enabled) exposes
 *       GET  /api/states/mqtt_example.state
 *            -> {"entity_id", "state", "attributes": {}, "last_changed",
 *                "last_updated"}, or 404 {"message": "Entity not found."}
 *       POST /api/services/mqtt_example/set_state {"new_state": "on"}
 *            -> publishes "on" to the topic, which comes back through the
 *               subscription and becomes the state; answers the list of
 *               states that changed ([] or [<new state>]), as Home Assistant
 *               answers service calls.
 *
 * The component API in one paragraph. A component is a roost_component
 * (include/roost/component.h): a name and start/stop. List it in
 * connector/components.c; main() starts components in that order once the
 * MQTT listeners are open, and stops them in reverse order before the broker
 * is freed. start() gets the broker and returns its state through *state;
 * stop() gets that state back and must free everything. From the broker
 * (include/roost/broker.h) a component takes its loop (roost_broker_base),
 * log (roost_broker_log), configuration (roost_broker_config), the event bus
 * (roost_broker_bus, include/roost/bus.h), subscribes with
 * roost_broker_subscribe, publishes with roost_broker_publish
 * (include/roost/message.h), and finds other components' interfaces with
 * roost_broker_service_find — the HTTP API is the service "http"
 * (include/roost/http.h). Everything runs on one event loop: never block.
 *
 * Configuration: none. The topic and entity id are the constants below, as
 * in the 2015 example; a real component would read its own config section.
 */
#ifndef ROOST_MQTT_EXAMPLE_H
#define ROOST_MQTT_EXAMPLE_H

#include "roost/component.h"

#define MQTT_EXAMPLE_TOPIC "home-assistant/mqtt_example"
#define MQTT_EXAMPLE_ENTITY_ID "mqtt_example.state"

/* Longest state kept, as Home Assistant's MAX_LENGTH_STATE_STATE. */
#define MQTT_EXAMPLE_MAX_STATE 255

extern const roost_component roost_mqtt_example_component;

#endif
