/*
 * component.h — how an in-process component plugs into roost.
 *
 * A component is a descriptor with a name and a start/stop pair. main()
 * starts every linked component after the listeners are open and stops them
 * (in reverse order) before the broker is freed. A component talks to the
 * broker only through include/roost/ (broker.h's component API, bus.h,
 * message.h, log.h, config.h): the hub connector is built exactly as a third
 * party's component would be.
 *
 * start() returns ROOST_OK with *state set (may be NULL), or an error. A
 * component that is not configured returns ROOST_OK and does nothing.
 *
 * What an error does depends on `optional`:
 *   - ROOST_ERR_CONFIG always stops the daemon: the configuration asks for
 *     something that cannot be honoured (a non-loopback HTTP API without a
 *     token, a hub.url that is not a URL); it is a problem to fix, not to hide.
 *   - any other error of an optional component (its port is in use, its
 *     address is gone) is logged by main() and the broker runs without it:
 *     MQTT service must not depend on a convenience. The component logs what
 *     to change itself ("set http.port to another port or -1 ..."). Its
 *     stop() is then not called; start() must have released everything.
 *   - any other error of a required component stops the daemon.
 * Components started after a failed optional one must cope with its absence
 * (e.g. roost_broker_service_find(b, "http") returns NULL).
 */
#ifndef ROOST_COMPONENT_H
#define ROOST_COMPONENT_H

#include <stdbool.h>

#include "roost/broker.h"
#include "roost/error.h"

typedef struct roost_component {
	const char *name;
	roost_err (*start)(roost_broker *b, void **state);
	void (*stop)(void *state);
	bool optional;  /* see above: the broker may run without it */
} roost_component;

#endif
