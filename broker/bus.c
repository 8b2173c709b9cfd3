/* bus.c — synchronous, ordered event bus. */
#include <assert.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "roost/alloc.h"
#include "roost/bus.h"

struct roost_bus_listener {
	roost_bus_listener *next;
	char *type; /* NULL: every type */
	roost_event_fn fn;
	void *ctx;
	bool removed;
};

struct roost_bus {
	roost_bus_listener *head, *tail;
	uint64_t fired;
	int dispatching;  /* depth of nested roost_bus_fire calls */
	bool have_removed;
};

roost_bus *roost_bus_new(void)
{
	return roost_calloc(1, sizeof(roost_bus));
}

static void listener_free(roost_bus_listener *l)
{
	roost_free(l->type);
	roost_free(l);
}

void roost_bus_free(roost_bus *bus)
{
	if (!bus)
		return;
	assert(bus->dispatching == 0);
	for (roost_bus_listener *l = bus->head, *n; l; l = n) {
		n = l->next;
		listener_free(l);
	}
	roost_free(bus);
}

roost_err roost_bus_listen(roost_bus *bus, const char *type, roost_event_fn fn, void *ctx,
                           roost_bus_listener **out)
{
	roost_bus_listener *l = roost_calloc(1, sizeof *l);
	if (!l)
		return ROOST_ERR_NOMEM;
	if (type && !(l->type = roost_strdup(type))) {
		roost_free(l);
		return ROOST_ERR_NOMEM;
	}
	l->fn = fn;
	l->ctx = ctx;
	/* Appended: listeners are called in registration order. */
	if (bus->tail)
		bus->tail->next = l;
	else
		bus->head = l;
	bus->tail = l;
	if (out)
		*out = l;
	return ROOST_OK;
}

/* Unlink removed listeners; only when no dispatch is walking the list. */
static void sweep(roost_bus *bus)
{
	roost_bus_listener **pp = &bus->head, *prev = NULL;
	while (*pp) {
		roost_bus_listener *l = *pp;
		if (l->removed) {
			*pp = l->next;
			listener_free(l);
		} else {
			prev = l;
			pp = &l->next;
		}
	}
	bus->tail = prev;
	bus->have_removed = false;
}

void roost_bus_unlisten(roost_bus *bus, roost_bus_listener *l)
{
	if (!l)
		return;
	l->removed = true;
	bus->have_removed = true;
	if (bus->dispatching == 0)
		sweep(bus);
}

roost_err roost_bus_fire(roost_bus *bus, const char *type, const char *data_json, const char *origin,
                         uint64_t time_fired_ms)
{
	if (time_fired_ms == 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		time_fired_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
	}
	roost_event ev = {type, data_json, origin ? origin : "LOCAL", time_fired_ms};
	bus->fired++;
	bus->dispatching++;
	for (roost_bus_listener *l = bus->head; l; l = l->next)
		if (!l->removed && (!l->type || strcmp(l->type, type) == 0))
			l->fn(l->ctx, &ev);
	if (--bus->dispatching == 0 && bus->have_removed)
		sweep(bus);
	return ROOST_OK;
}

uint64_t roost_bus_fired(const roost_bus *bus)
{
	return bus->fired;
}
