/*
 * queue.h — a component's durable queue: a bounded FIFO of byte bodies kept
 * in the broker's store.
 *
 * A component (the hub connector's events for Home Assistant, a bridge's
 * outbound messages for its upstream) opens a queue by name. Each append
 * gets a sequence number that grows with every append and is never reused
 * by that queue, also across restarts; peek shows the oldest entries, and
 * ack removes every entry up to a sequence number once the component has
 * delivered them.
 *
 * Durability: with persistence on, append and ack write the store's "queue"
 * table inside the broker's open transaction, so they are committed by the
 * same group commit as the sessions: an append made while a client's packet
 * is handled (a component subscriber's callback on the publish path) holds
 * that client's acknowledgement until it is committed. "Acknowledged" then
 * means "in the queue", also after a kill -9. With persistence off the
 * queue lives in memory only. Opening a queue loads what the store holds
 * under its name, in order.
 *
 * Bound: at most max_items entries. Appending to a full queue drops the
 * OLDEST entry (counted; the caller logs it): the newest data is worth
 * more than the oldest. One opener per name.
 *
 * Ownership: the queue owns its copies; bodies returned by peek are borrowed
 * until the next append, ack or close.
 */
#ifndef ROOST_QUEUE_H
#define ROOST_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roost/error.h"

struct roost_broker;
typedef struct roost_queue roost_queue;

typedef struct roost_queue_item {
	uint64_t seq;
	const void *body; /* len bytes, followed by a NUL (not counted) */
	size_t len;
} roost_queue_item;

/*
 * Open queue name (1..64 characters of [A-Za-z0-9_.-]) holding at most
 * max_items (>= 1) entries, with what the store keeps under that name; when
 * it keeps more than max_items, the oldest are dropped (counted).
 * ROOST_ERR_INVALID for a bad name or bound, ROOST_ERR_IO when the store
 * cannot be read, ROOST_ERR_NOMEM.
 */
roost_err roost_broker_queue_open(struct roost_broker *b, const char *name, size_t max_items,
                                  roost_queue **out);
/* A queue in memory only, for units that run without a broker. */
roost_queue *roost_queue_new_memory(size_t max_items);
/* Frees the memory side; what is stored stays for the next open. NULL is ignored. */
void roost_queue_close(roost_queue *q);

/*
 * Append a copy of body[0..len). *seq (may be NULL) receives its sequence
 * number, *dropped_oldest (may be NULL) whether the oldest entry made room.
 * ROOST_ERR_NOMEM leaves the queue as it was.
 */
roost_err roost_queue_append(roost_queue *q, const void *body, size_t len, uint64_t *seq,
                             bool *dropped_oldest);
/* Up to n of the oldest entries with a seq greater than after (0 = from the
 * oldest), in order, into out; returns how many. */
size_t roost_queue_peek(const roost_queue *q, uint64_t after, roost_queue_item *out, size_t n);
/* Remove every entry with seq <= upto. */
roost_err roost_queue_ack(roost_queue *q, uint64_t upto);

size_t roost_queue_count(const roost_queue *q);
size_t roost_queue_max(const roost_queue *q);
/* Entries dropped because the queue was full, since open. */
uint64_t roost_queue_dropped(const roost_queue *q);
/* True when the queue is kept in the store. */
bool roost_queue_durable(const roost_queue *q);

#endif
