/*
 * persist.h — the durable store: SQLite 3 in WAL mode.
 *
 * What it keeps: retained messages, persistent sessions (their
 * subscriptions, queued and inflight QoS 1/2 deliveries with packet ids and
 * state, inbound QoS 2 packet ids), the hub connector's event spool and a few
 * counters. Messages are stored once and referenced by each delivery; a
 * message row goes when its last delivery does. No whole-state snapshots:
 * every change is a few row writes, so bytes written stay close to the
 * message size (SD cards).
 *
 * Group commit: the first write after a commit opens a transaction and the
 * caller (the broker) commits once per pass of its event loop, then releases
 * the acknowledgements that waited for it.
 *
 * The batch contract ("acknowledged means stored"):
 * - roost_persist_writes() counts every ATTEMPTED write, including one that
 *   fails (at prepare, BEGIN or statement time), so a caller compares it
 *   before and after its operation to tell whether that operation touched
 *   the store, whatever the outcome; it never needs the write's return.
 * - Any failed write poisons the open batch: later writes of that batch are
 *   counted but not run, roost_persist_dirty() is true (a failure with no
 *   transaction open still calls on_dirty once, so a commit gets scheduled).
 * - roost_persist_commit() of a poisoned batch rolls everything of the batch
 *   back, counts commit_errors and returns ROOST_ERR_IO; so does a failing
 *   COMMIT. The caller must then not acknowledge anything of the batch.
 * - The next write starts a clean batch.
 *
 * Durability: sync NORMAL (WAL, synchronous=NORMAL) survives a crash of the
 * process at any instant (kill -9): committed transactions are in the WAL
 * file, which the OS keeps. sync FULL (synchronous=FULL) also fsyncs the WAL
 * at each commit, so it survives power loss.
 *
 * Startup never fails because of the database's contents: an unreadable,
 * corrupt or foreign database is moved aside (renamed to
 * "<path>.corrupt-<unix time>"), the loss is logged at error level with what
 * could be counted, roost_persist_stats.moved_aside counts it, and an empty
 * database is created. Only an unusable *directory* (cannot create a file)
 * is an error.
 *
 * The path ":memory:" gives an in-memory database for unit tests.
 */
#ifndef ROOST_PERSIST_H
#define ROOST_PERSIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roost/error.h"
#include "roost/log.h"
#include "roost/message.h"

#define ROOST_PERSIST_SCHEMA_VERSION 1

/* Components find the broker's store as the named service "store". */
typedef struct roost_persist roost_persist;

typedef enum roost_persist_sync {
	ROOST_PERSIST_SYNC_NORMAL = 0,
	ROOST_PERSIST_SYNC_FULL = 1,
} roost_persist_sync;

typedef struct roost_persist_stats {
	uint64_t moved_aside;   /* databases found unusable and moved aside (this start) */
	uint64_t commits;
	uint64_t commit_errors;
	uint64_t writes;        /* row operations since open */
} roost_persist_stats;

roost_err roost_persist_open(const char *path, roost_persist_sync sync, const roost_log *log,
                             roost_persist **out);
/* Commits anything pending, then closes. */
void roost_persist_close(roost_persist *p);

const roost_persist_stats *roost_persist_stats_get(const roost_persist *p);
bool roost_persist_dirty(const roost_persist *p);
uint64_t roost_persist_writes(const roost_persist *p);
/* Commit the open transaction, if any. On error the transaction is rolled
 * back: everything written since the last commit is lost and the caller must
 * not acknowledge it. */
roost_err roost_persist_commit(roost_persist *p);
/* fn(ctx) is called when a write opens a new transaction: the moment the
 * owner must schedule its commit. */
void roost_persist_set_on_dirty(roost_persist *p, void (*fn)(void *ctx), void *ctx);

/* ---- writes (each joins the open transaction, opening one if needed) ---- */
/* Retained: a zero-length payload removes the topic's retained message. */
roost_err roost_persist_retain_set(roost_persist *p, const roost_msg *msg);
roost_err roost_persist_session_add(roost_persist *p, const char *client_id);
/* Removes the session with its subscriptions, deliveries and QoS 2 ids. */
roost_err roost_persist_session_remove(roost_persist *p, const char *client_id);
roost_err roost_persist_sub_set(roost_persist *p, const char *client_id, const char *filter, size_t len,
                                uint8_t options);
roost_err roost_persist_sub_remove(roost_persist *p, const char *client_id, const char *filter, size_t len);
/* Stores msg if it has no store_id yet (sets msg->store_id), then the delivery. */
roost_err roost_persist_delivery_add(roost_persist *p, const char *client_id, uint64_t seq, roost_msg *msg,
                                     uint8_t qos, uint16_t packet_id, uint8_t state);
roost_err roost_persist_delivery_update(roost_persist *p, const char *client_id, uint64_t seq,
                                        uint16_t packet_id, uint8_t state);
/* Removes the delivery, and the message store_id if no delivery uses it any more. */
roost_err roost_persist_delivery_remove(roost_persist *p, const char *client_id, uint64_t seq,
                                        uint64_t store_id);
roost_err roost_persist_qos2_set(roost_persist *p, const char *client_id, uint16_t packet_id, bool added);
/* Spool (the hub connector's events): FIFO by seq. */
roost_err roost_persist_spool_push(roost_persist *p, uint64_t seq, const char *body, size_t len);
roost_err roost_persist_spool_remove(roost_persist *p, uint64_t seq);
/* Counters that survive restarts. */
roost_err roost_persist_counter_set(roost_persist *p, const char *name, uint64_t value);
uint64_t roost_persist_counter_get(roost_persist *p, const char *name);

/* ---- load at startup ---- */
/*
 * Visit everything stored, in an order that rebuilds state: retained
 * messages, sessions, subscriptions, deliveries in ascending seq per
 * session, QoS 2 ids, spool entries in seq order. Messages passed to the
 * visitor are new references the visitor must release (or keep). Any
 * callback may be NULL.
 */
typedef struct roost_persist_visitor {
	void (*retained)(void *ctx, roost_msg *msg);
	void (*session)(void *ctx, const char *client_id);
	void (*sub)(void *ctx, const char *client_id, const char *filter, uint8_t options);
	void (*delivery)(void *ctx, const char *client_id, uint64_t seq, roost_msg *msg /* NULL after PUBREC */,
	                 uint8_t qos, uint16_t packet_id, uint8_t state, uint64_t store_id);
	void (*qos2)(void *ctx, const char *client_id, uint16_t packet_id);
	void (*spool)(void *ctx, uint64_t seq, const char *body, size_t len);
} roost_persist_visitor;

roost_err roost_persist_load(roost_persist *p, const roost_persist_visitor *v, void *ctx);

#endif
