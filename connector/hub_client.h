/*
 * hub_client.h — delivery of events to Home Assistant's REST API.
 *
 * Each event body handed to roost_hub_client_enqueue() is copied into a
 * bounded spool (spool.h) and POSTed, in order and one request at a time, to
 *   {hub.url}/api/events/{event_type}
 * with `Authorization: Bearer {hub.token}` and `Content-Type:
 * application/json`. Delivery is at-least-once: the spool's head is removed
 * only when Home Assistant answered 2xx, so an answer lost on the way means
 * that one event is sent again.
 *
 *   2xx          delivered: pop, send the next one at once, backoff reset
 *   no answer,   keep the head; retry after 1, 2, 4 ... hub.retry_max seconds
 *   5xx, 429 ...
 *   401, 403     configuration error (logged as such); retry every
 *                hub.retry_max seconds, events keep waiting
 *   other 4xx    HA refuses this event: logged, counted, dropped
 *
 * A full spool drops its oldest event (counted, logged). http and https
 * (OpenSSL: SNI, host name verification, hub.cafile, hub.verify_tls). One
 * persistent connection, replaced after any failure. Names are resolved
 * without blocking the loop (hub_resolve.h).
 *
 * Everything runs on the broker's event loop; enqueue never blocks and never
 * sends from inside the caller: it only appends and schedules.
 */
#ifndef ROOST_CONNECTOR_HUB_CLIENT_H
#define ROOST_CONNECTOR_HUB_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roost/config.h"
#include "roost/error.h"
#include "roost/log.h"

struct event_base;
typedef struct roost_hub_client roost_hub_client;

typedef struct roost_hub_stats {
	uint64_t queued;    /* in the spool now (the in-flight one included) */
	bool durable;       /* the spool is in the store: queued events survive a restart */
	uint64_t delivered; /* answered 2xx */
	uint64_t dropped;   /* pushed out of a full spool, or no memory to queue */
	uint64_t rejected;  /* refused by Home Assistant with a 4xx other than 401/403 */
	uint64_t retries;   /* failed attempts that were retried */
	const char *state;  /* "new" (nothing sent yet), "up", "down" (retrying), "auth" (401/403) */
} roost_hub_stats;

/*
 * Validate hub (url, token, TLS files) and build the client; nothing is sent
 * until the first event. Invalid settings are logged and give
 * ROOST_ERR_CONFIG. config_path names the file in messages (may be NULL).
 * base, log and hub must outlive the client; event_type is copied.
 */
roost_err roost_hub_client_new(struct event_base *base, const roost_log *log,
                               const roost_hub_config *hub, const char *event_type,
                               const char *config_path, roost_hub_client **out);

/* Closes the connection and frees everything, spooled events included. */
void roost_hub_client_free(roost_hub_client *h);

/* Queue a copy of one event body (a JSON object) for delivery. */
roost_err roost_hub_client_enqueue(roost_hub_client *h, const char *body, size_t len);

/*
 * Keep the spool in the durable store (the broker's "store" service): the
 * events it holds are loaded now, and from here on every event queued,
 * delivered or dropped is written through, in the broker's group commit —
 * so an MQTT message acknowledged to its publisher has its event on disk,
 * and a restart loses no event that HA has not confirmed.
 */
struct roost_persist;
roost_err roost_hub_client_set_store(roost_hub_client *h, struct roost_persist *store);

void roost_hub_client_stats(const roost_hub_client *h, roost_hub_stats *out);

#endif
