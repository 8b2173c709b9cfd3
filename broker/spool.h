/*
 * spool.h — a bounded FIFO of byte bodies: the memory side of a component's
 * queue (roost/queue.h, broker/queue.c), which the hub connector's events
 * and a bridge's outbound messages wait in.
 *
 * A pure data structure: no I/O, no logging, no clock. Each entry is a copy
 * of one event body (bytes, NUL-terminated for convenience) with a sequence
 * number that grows by one per push, so a sender can tell whether the head
 * it sent is still the head when the answer arrives (it may have been
 * dropped meanwhile). A durable queue reloading its rows sets the next
 * number (roost_spool_set_next_seq) so entries keep the numbers they are
 * stored under.
 *
 * Capacity: at most `max` entries. Pushing onto a full spool drops the
 * OLDEST entry (the head) to make room and counts it: while Home Assistant is
 * unreachable the newest state is worth more than the oldest. The ring grows
 * on demand (doubling) up to `max`, so a large spool_max costs nothing until
 * it is used.
 *
 * Ownership: the spool owns its copies. roost_spool_peek returns a borrowed
 * pointer that stays valid until the next push or pop.
 *
 */
#ifndef ROOST_CONNECTOR_SPOOL_H
#define ROOST_CONNECTOR_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roost/error.h"

typedef struct roost_spool roost_spool;

/* New empty spool holding at most max (>= 1) entries; NULL on allocation failure. */
roost_spool *roost_spool_new(size_t max);
/* Frees the spool and every entry still in it. NULL is ignored. */
void roost_spool_free(roost_spool *s);

/*
 * Append a copy of data[0..len). When the spool is full the oldest entry is
 * dropped first and *dropped_oldest (may be NULL) is set to true.
 * ROOST_ERR_NOMEM leaves the spool exactly as it was (nothing dropped).
 * *seq (may be NULL) receives the new entry's sequence number.
 */
roost_err roost_spool_push(roost_spool *s, const char *data, size_t len, bool *dropped_oldest,
                           uint64_t *seq);

/*
 * The oldest entry (borrowed; NUL-terminated) with its length and sequence
 * number (either out-param may be NULL), or NULL when the spool is empty.
 */
const char *roost_spool_peek(const roost_spool *s, size_t *len, uint64_t *seq);

/* The i-th oldest entry (0 = the head), as roost_spool_peek; NULL past the end. */
const char *roost_spool_peek_at(const roost_spool *s, size_t i, size_t *len, uint64_t *seq);

/* The next push gets sequence number seq, which must not be below the one
 * it would have got. */
void roost_spool_set_next_seq(roost_spool *s, uint64_t seq);

/* Remove the oldest entry; no-op when empty. */
void roost_spool_pop(roost_spool *s);

size_t roost_spool_count(const roost_spool *s);
size_t roost_spool_max(const roost_spool *s);
/* Entries dropped because the spool was full, since creation. */
uint64_t roost_spool_dropped(const roost_spool *s);

#endif
