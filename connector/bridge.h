/*
 * bridge.h — the bridges component's counters, for the metrics work.
 *
 * The component (bridge.c) registers the service "bridges" (a
 * roost_bridges *); roost_bridges_stats fills one entry per configured
 * bridge, in configuration order.
 */
#ifndef ROOST_CONNECTOR_BRIDGE_H
#define ROOST_CONNECTOR_BRIDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct roost_bridges roost_bridges;

typedef struct roost_bridge_stats {
	const char *name;     /* borrowed from the configuration */
	bool up;              /* connected and subscribed */
	uint64_t sent;        /* messages the upstream has (QoS 1/2 acknowledged, QoS 0 written) */
	uint64_t received;    /* messages from the upstream published locally */
	uint64_t queued;      /* QoS 1/2 messages waiting in the durable queue now */
	uint64_t dropped;     /* queue full (oldest first), or QoS 0 while the upstream is away */
	uint64_t echoes;      /* our own messages that came straight back, not published again */
	uint64_t reconnects;  /* connections after the first */
} roost_bridge_stats;

/* Fills up to cap entries; returns the number of bridges. */
size_t roost_bridges_stats(const roost_bridges *bs, roost_bridge_stats *out, size_t cap);

#endif
