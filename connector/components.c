/*
 * components.c — the components linked into the roost daemon, in start
 * order. main() starts them after the listeners are open and stops them in
 * reverse order.
 */
#include <stddef.h>

#include "roost/component.h"

extern const roost_component roost_http_component;
extern const roost_component roost_metrics_component;
extern const roost_component roost_admin_component;
extern const roost_component roost_connector_component;
extern const roost_component roost_mqtt_example_component;

const roost_component *const roost_components[] = {
	&roost_http_component,      /* first: the others register routes on it */
	&roost_metrics_component,
	&roost_admin_component,
	&roost_connector_component,
	&roost_mqtt_example_component,
	NULL,
};
