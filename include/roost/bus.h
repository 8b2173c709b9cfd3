/*
 * bus.h — roost's event bus, in Home Assistant's shape.
 *
 * An event has a type ("mqtt_message_received"), a JSON object as data, an
 * origin ("LOCAL" or "REMOTE", as in Home Assistant) and the wall-clock time
 * it was fired. Components fire events and listen for them: the hub
 * connector fires one per MQTT message it receives, the HTTP API streams them
 * as server-sent events, and POST /api/events/<type> fires them.
 *
 * Dispatch is synchronous and in firing order: roost_bus_fire() calls every
 * matching listener before it returns. Listeners must therefore be quick (the
 * connector appends to its spool; the stream appends to output buffers) and
 * must not remove *other* listeners while called; removing themselves is
 * allowed. The event and its strings are borrowed for the call.
 */
#ifndef ROOST_BUS_H
#define ROOST_BUS_H

#include <stdint.h>

#include "roost/error.h"

typedef struct roost_bus roost_bus;
typedef struct roost_bus_listener roost_bus_listener;

typedef struct roost_event {
	const char *type;
	const char *data_json;  /* a JSON object, e.g. {"topic":"a","payload":"b","qos":0,"retain":false} */
	const char *origin;     /* "LOCAL" or "REMOTE" */
	uint64_t time_fired_ms; /* Unix time, milliseconds */
} roost_event;

typedef void (*roost_event_fn)(void *ctx, const roost_event *ev);

roost_bus *roost_bus_new(void);
/* Frees the bus and every listener still registered. */
void roost_bus_free(roost_bus *bus);

/*
 * Listen for events of one type, or of every type when type is NULL.
 * *out (may be NULL) receives a handle for roost_bus_unlisten.
 */
roost_err roost_bus_listen(roost_bus *bus, const char *type, roost_event_fn fn, void *ctx,
                           roost_bus_listener **out);
void roost_bus_unlisten(roost_bus *bus, roost_bus_listener *l);

/*
 * Fire an event: data_json must be a JSON object (not checked here: the
 * callers build it with a JSON library or validated it); time_fired_ms 0
 * means now.
 */
roost_err roost_bus_fire(roost_bus *bus, const char *type, const char *data_json, const char *origin,
                         uint64_t time_fired_ms);

/* Number of events fired since creation (for $SYS and tests). */
uint64_t roost_bus_fired(const roost_bus *bus);

#endif
