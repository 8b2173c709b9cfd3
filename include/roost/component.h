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
 * start() returns ROOST_OK with *state set (may be NULL), or an error, which
 * stops the daemon with that error logged: a component that is configured but
 * cannot start is a configuration problem to fix, not to hide. A component
 * that is not configured returns ROOST_OK and does nothing.
 */
#ifndef ROOST_COMPONENT_H
#define ROOST_COMPONENT_H

#include "roost/broker.h"
#include "roost/error.h"

typedef struct roost_component {
	const char *name;
	roost_err (*start)(roost_broker *b, void **state);
	void (*stop)(void *state);
} roost_component;

#endif
