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
 * Startup rules (roost_persist_open):
 * - A corrupt or foreign database (SQLITE_CORRUPT/NOTADB, quick_check
 *   fails, tables without a schema version) is moved aside (renamed to
 *   "<path>.corrupt-<unix time>"), the loss is logged at error level with
 *   "STORE LOST:" and what could be counted, and an empty database is
 *   created: roost starts.
 * - Everything else that stops roost from using the file refuses to open
 *   it, leaves it untouched and logs why (never "STORE LOST"):
 *   ROOST_ERR_IO for a store it cannot write (permissions on the file, its
 *   -wal/-shm or the directory; a missing directory whose parent is missing
 *   too; an I/O error reading it), ROOST_ERR_EXISTS when another roost holds
 *   the advisory lock "<path>.lock" (flock; the log names the pid),
 *   ROOST_ERR_UNSUPPORTED for a schema written by a newer roost.
 * - A missing directory is created (mode 0750) when its parent exists.
 * - The side file "<path>.state" (written atomically) keeps the number of
 *   databases moved aside over all starts (stats.moved_aside_total) and
 *   whether the last run had data; a database found empty when that file,
 *   or a -wal file with content beside a missing/empty database, says
 *   otherwise is reported at error level (roost still starts).
 * - Before a schema migration the file is copied to "<path>.pre-v<new>"
 *   with roost_persist_backup().
 *
 * The path ":memory:" gives an in-memory database for unit tests.
 */
#ifndef ROOST_PERSIST_H
#define ROOST_PERSIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roost/clock.h"
#include "roost/error.h"
#include "roost/log.h"
#include "roost/message.h"

#define ROOST_PERSIST_SCHEMA_VERSION 3
/* After a commit, at most once per ROOST_PERSIST_CHECK_MS (of the options'
 * clock): one warning when the store's filesystem passes this percentage,
 * one notice when it is back below. */
#define ROOST_PERSIST_SPACE_WARN_PERCENT 90
#define ROOST_PERSIST_CHECK_MS 60000

/* Components find the broker's store as the named service "store". */
typedef struct roost_persist roost_persist;

typedef enum roost_persist_sync {
	ROOST_PERSIST_SYNC_NORMAL = 0,
	ROOST_PERSIST_SYNC_FULL = 1,
} roost_persist_sync;

typedef struct roost_persist_stats {
	uint64_t moved_aside;   /* databases found unusable and moved aside (this start) */
	uint64_t moved_aside_total; /* ... over all starts (kept in "<path>.state") */
	uint64_t commits;
	uint64_t commit_errors;
	uint64_t writes;        /* row operations since open */
} roost_persist_stats;

typedef struct roost_persist_options {
	const char *path;          /* the database file (see roost_persist_resolve_path), or ":memory:" */
	roost_persist_sync sync;
	const roost_log *log;
	const roost_clock *clock;  /* paces the disk-space check; NULL = the system clock */
	/* TESTS ONLY: the name of a registered sqlite3_vfs to open the database
	 * with (a shim that fails writes on purpose); NULL = SQLite's default. */
	const char *test_vfs;
} roost_persist_options;

/* Open (see "Startup rules" above). *out is NULL on error. */
roost_err roost_persist_open_ex(const roost_persist_options *o, roost_persist **out);
/* roost_persist_open_ex with the default clock and VFS. */
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
/* Record the user a persistent session belongs to (NULL: anonymous). */
roost_err roost_persist_session_set_owner(roost_persist *p, const char *client_id, const char *owner);
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

/* ---- where, and copies ---- */
/*
 * The database file for persistence.path `configured` (NULL or "" = the
 * default "roost.db"): a relative path is taken relative to
 * $STATE_DIRECTORY (systemd's StateDirectory=, its first entry) when set,
 * else to the working directory; a path ending in '/' or naming an
 * existing directory means roost.db inside it (Mosquitto's
 * persistence_location). ROOST_ERR_TOO_LARGE when it does not fit in cap.
 */
roost_err roost_persist_resolve_path(const char *configured, char *buf, size_t cap);
/* The directory that holds that file ("." for the working directory):
 * other files that live beside the store go there. */
roost_err roost_persist_resolve_dir(const char *configured, char *buf, size_t cap);
/*
 * A consistent copy of the database src (live or not) in dst, made with
 * SQLite's online backup from a separate read-only connection: it needs
 * neither roost's lock nor write access to src. dst is replaced atomically.
 * vfs: as roost_persist_options.test_vfs (NULL = default).
 */
roost_err roost_persist_backup(const char *src, const char *dst, const char *vfs, const roost_log *log);

/* ---- load at startup ---- */
/*
 * Visit everything stored, in an order that rebuilds state: retained
 * messages, sessions, subscriptions, deliveries in ascending seq per
 * session, QoS 2 ids, spool entries in seq order. A retained message is a
 * new reference the visitor must release (or keep). A delivery's message is
 * borrowed (ref it to keep it): each message row is loaded once, with its
 * store_id set, and the same roost_msg is passed to every delivery that
 * refers to it, so a message queued for many sessions is in memory once
 * after a restart, as before it. Any callback may be NULL.
 */
typedef struct roost_persist_visitor {
	void (*retained)(void *ctx, roost_msg *msg);
	void (*session)(void *ctx, const char *client_id);
	void (*sub)(void *ctx, const char *client_id, const char *filter, uint8_t options);
	void (*delivery)(void *ctx, const char *client_id, uint64_t seq, roost_msg *msg /* NULL after PUBREC */,
	                 uint8_t qos, uint16_t packet_id, uint8_t state, uint64_t store_id);
	void (*qos2)(void *ctx, const char *client_id, uint16_t packet_id);
	void (*spool)(void *ctx, uint64_t seq, const char *body, size_t len);
	/* Right after session, for a session whose owner is recorded (owner
	 * NULL: it belongs to anonymous clients). Last, so positional
	 * initialisers of the fields above stay valid. */
	void (*session_owner)(void *ctx, const char *client_id, const char *owner);
} roost_persist_visitor;

roost_err roost_persist_load(roost_persist *p, const roost_persist_visitor *v, void *ctx);

#endif
