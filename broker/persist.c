/*
 * persist.c — the durable store on SQLite 3 (WAL). See include/roost/persist.h.
 *
 * Statements are prepared once and cached. Writes join one open
 * transaction, committed by the caller once per event-loop pass (group
 * commit). Opening checks the file before trusting it (quick_check, schema
 * version) and moves an unusable file aside instead of refusing to start.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "roost/alloc.h"
#include "roost/persist.h"

enum stmt_id {
	ST_RETAIN_PUT,
	ST_RETAIN_DEL,
	ST_SESSION_ADD,
	ST_SESSION_DEL,
	ST_SESSION_DEL_SUBS,
	ST_SESSION_DEL_DELIV,
	ST_SESSION_DEL_QOS2,
	ST_MSG_GC_ALL,
	ST_SUB_PUT,
	ST_SUB_DEL,
	ST_MSG_ADD,
	ST_MSG_ADD_ID,
	ST_DELIV_ADD,
	ST_DELIV_UPD,
	ST_DELIV_DEL,
	ST_MSG_GC,
	ST_QOS2_ADD,
	ST_QOS2_DEL,
	ST_SPOOL_ADD,
	ST_SPOOL_DEL,
	ST_COUNTER_PUT,
	ST_COUNTER_GET,
	ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
	[ST_RETAIN_PUT] = "INSERT OR REPLACE INTO retained(topic, qos, payload, props) VALUES (?1, ?2, ?3, ?4)",
	[ST_RETAIN_DEL] = "DELETE FROM retained WHERE topic = ?1",
	[ST_SESSION_ADD] = "INSERT OR IGNORE INTO sessions(client_id) VALUES (?1)",
	[ST_SESSION_DEL] = "DELETE FROM sessions WHERE client_id = ?1",
	[ST_SESSION_DEL_SUBS] = "DELETE FROM subs WHERE client_id = ?1",
	[ST_SESSION_DEL_DELIV] = "DELETE FROM deliveries WHERE client_id = ?1",
	[ST_SESSION_DEL_QOS2] = "DELETE FROM qos2_in WHERE client_id = ?1",
	[ST_MSG_GC_ALL] = "DELETE FROM messages WHERE id NOT IN (SELECT msg_id FROM deliveries)",
	[ST_SUB_PUT] = "INSERT OR REPLACE INTO subs(client_id, filter, options) VALUES (?1, ?2, ?3)",
	[ST_SUB_DEL] = "DELETE FROM subs WHERE client_id = ?1 AND filter = ?2",
	[ST_MSG_ADD] = "INSERT INTO messages(topic, qos, retain, payload, props) VALUES (?1, ?2, ?3, ?4, ?5)",
	[ST_MSG_ADD_ID] = "INSERT OR IGNORE INTO messages(id, topic, qos, retain, payload, props) "
	                  "VALUES (?6, ?1, ?2, ?3, ?4, ?5)",
	[ST_DELIV_ADD] = "INSERT OR REPLACE INTO deliveries(client_id, seq, msg_id, qos, packet_id, state) "
	                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[ST_DELIV_UPD] = "UPDATE deliveries SET packet_id = ?3, state = ?4 WHERE client_id = ?1 AND seq = ?2",
	[ST_DELIV_DEL] = "DELETE FROM deliveries WHERE client_id = ?1 AND seq = ?2",
	[ST_MSG_GC] = "DELETE FROM messages WHERE id = ?1 AND NOT EXISTS "
	              "(SELECT 1 FROM deliveries WHERE msg_id = ?1)",
	[ST_QOS2_ADD] = "INSERT OR IGNORE INTO qos2_in(client_id, packet_id) VALUES (?1, ?2)",
	[ST_QOS2_DEL] = "DELETE FROM qos2_in WHERE client_id = ?1 AND packet_id = ?2",
	[ST_SPOOL_ADD] = "INSERT OR REPLACE INTO spool(seq, body) VALUES (?1, ?2)",
	[ST_SPOOL_DEL] = "DELETE FROM spool WHERE seq = ?1",
	[ST_COUNTER_PUT] = "INSERT OR REPLACE INTO counters(name, value) VALUES (?1, ?2)",
	[ST_COUNTER_GET] = "SELECT value FROM counters WHERE name = ?1",
};

/* Schema version 1. Later versions append migrations, never edit this. */
static const char schema_v1[] =
	"CREATE TABLE retained(topic BLOB PRIMARY KEY, qos INTEGER NOT NULL, payload BLOB NOT NULL,"
	" props BLOB) WITHOUT ROWID;"
	"CREATE TABLE sessions(client_id TEXT PRIMARY KEY) WITHOUT ROWID;"
	"CREATE TABLE subs(client_id TEXT NOT NULL, filter BLOB NOT NULL, options INTEGER NOT NULL,"
	" PRIMARY KEY(client_id, filter)) WITHOUT ROWID;"
	"CREATE TABLE messages(id INTEGER PRIMARY KEY AUTOINCREMENT, topic BLOB NOT NULL,"
	" qos INTEGER NOT NULL, retain INTEGER NOT NULL, payload BLOB NOT NULL, props BLOB);"
	"CREATE TABLE deliveries(client_id TEXT NOT NULL, seq INTEGER NOT NULL, msg_id INTEGER NOT NULL,"
	" qos INTEGER NOT NULL, packet_id INTEGER NOT NULL, state INTEGER NOT NULL,"
	" PRIMARY KEY(client_id, seq));"
	"CREATE INDEX deliveries_msg ON deliveries(msg_id);"
	"CREATE TABLE qos2_in(client_id TEXT NOT NULL, packet_id INTEGER NOT NULL,"
	" PRIMARY KEY(client_id, packet_id)) WITHOUT ROWID;"
	"CREATE TABLE spool(seq INTEGER PRIMARY KEY, body BLOB NOT NULL);"
	"CREATE TABLE counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
	"PRAGMA user_version = 1;";

/* migrations[v] upgrades a database at version v to v + 1 (none yet). */
static const char *const migrations[] = {
	[0] = schema_v1,
};

struct roost_persist {
	sqlite3 *db;
	char *path;
	const roost_log *log;
	sqlite3_stmt *st[ST_COUNT];
	bool in_txn;
	bool batch_failed;      /* a write of the open batch failed: commit rolls back */
	roost_persist_stats stats;
	void (*on_dirty)(void *ctx);
	void *on_dirty_ctx;
};

void roost_persist_set_on_dirty(roost_persist *p, void (*fn)(void *ctx), void *ctx)
{
	p->on_dirty = fn;
	p->on_dirty_ctx = ctx;
}

static roost_err fail_sql(roost_persist *p, const char *what)
{
	roost_log_error(p->log, "store %s: %s: %s", p->path, what, sqlite3_errmsg(p->db));
	return ROOST_ERR_IO;
}

static sqlite3_stmt *stmt(roost_persist *p, enum stmt_id id)
{
	if (!p->st[id] && sqlite3_prepare_v3(p->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &p->st[id],
	                                     NULL) != SQLITE_OK) {
		fail_sql(p, "prepare");
		return NULL;
	}
	return p->st[id];
}

/* The batch became dirty (a transaction opened, or a write failed without
 * one): the owner must schedule its commit, which settles the batch. */
static void announce_dirty(roost_persist *p)
{
	if (p->on_dirty)
		p->on_dirty(p->on_dirty_ctx);
}

/* A write of this batch failed: the whole batch is lost. Announced when it is
 * the first news of this batch, so a commit still comes and reports it. */
static roost_err poison(roost_persist *p, const char *what)
{
	bool was_dirty = roost_persist_dirty(p);
	p->batch_failed = true;
	roost_err err = fail_sql(p, what);
	if (!was_dirty)
		announce_dirty(p);
	return err;
}

/* Join (or open) the batch transaction. */
static roost_err begin(roost_persist *p)
{
	if (p->in_txn)
		return ROOST_OK;
	if (sqlite3_exec(p->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return poison(p, "begin");
	p->in_txn = true;
	announce_dirty(p);
	return ROOST_OK;
}

/* Run a prepared write with its parameters bound; resets it. A failure
 * poisons the batch. */
static roost_err run(roost_persist *p, sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_DONE)
		return poison(p, "write");
	/* Some errors (SQLITE_FULL, IOERR, NOMEM) roll the transaction back by
	 * themselves; what follows would then commit on its own, outside the
	 * batch. Checked even after a success, to be sure. */
	if (sqlite3_get_autocommit(p->db)) {
		p->in_txn = false;
		return poison(p, "write (transaction rolled back by SQLite)");
	}
	return ROOST_OK;
}

/*
 * The one entry of every write: counts the attempt (roost_persist_writes),
 * refuses to run anything once the batch is poisoned (it will be rolled
 * back; a statement run now could end up committed alone), then opens the
 * batch and prepares the statement. NULL on error.
 */
static sqlite3_stmt *write_stmt(roost_persist *p, enum stmt_id id)
{
	p->stats.writes++;
	if (p->batch_failed)
		return NULL;
	if (begin(p) != ROOST_OK)
		return NULL;
	sqlite3_stmt *s = stmt(p, id);
	if (!s)
		poison(p, "prepare");
	return s;
}

roost_err roost_persist_commit(roost_persist *p)
{
	if (p->batch_failed) {
		/* Nothing of a poisoned batch is kept: its acknowledgements must
		 * not go out. The next batch starts clean. */
		if (p->in_txn && !sqlite3_get_autocommit(p->db))
			sqlite3_exec(p->db, "ROLLBACK", NULL, NULL, NULL);
		p->in_txn = false;
		p->batch_failed = false;
		p->stats.commit_errors++;
		roost_log_error(p->log, "store %s: a write of this batch failed; rolled the batch back", p->path);
		return ROOST_ERR_IO;
	}
	if (!p->in_txn)
		return ROOST_OK;
	p->in_txn = false;
	if (sqlite3_exec(p->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		p->stats.commit_errors++;
		roost_err err = fail_sql(p, "commit");
		if (!sqlite3_get_autocommit(p->db))
			sqlite3_exec(p->db, "ROLLBACK", NULL, NULL, NULL);
		return err;
	}
	p->stats.commits++;
	return ROOST_OK;
}

bool roost_persist_dirty(const roost_persist *p) { return p->in_txn || p->batch_failed; }
uint64_t roost_persist_writes(const roost_persist *p) { return p->stats.writes; }
const roost_persist_stats *roost_persist_stats_get(const roost_persist *p) { return &p->stats; }

/* ---- open, check, move aside ---- */

static long long count_rows(sqlite3 *db, const char *table)
{
	char sql[96];
	snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
	sqlite3_stmt *s = NULL;
	long long n = -1;
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return n;
}

static void move_aside(roost_persist *p, const char *why)
{
	/* Say what is being lost, as far as the file still lets us count. */
	long long r = -1, ses = -1, d = -1, sp = -1;
	if (p->db) {
		r = count_rows(p->db, "retained");
		ses = count_rows(p->db, "sessions");
		d = count_rows(p->db, "deliveries");
		sp = count_rows(p->db, "spool");
		sqlite3_close_v2(p->db);
		p->db = NULL;
	}
	/* A name not used yet: two bad starts in one second must not overwrite
	 * the first bad file. */
	char aside[4200];
	struct stat st;
	snprintf(aside, sizeof aside, "%s.corrupt-%lld", p->path, (long long)time(NULL));
	for (int n = 2; stat(aside, &st) == 0 && n < 1000; n++)
		snprintf(aside, sizeof aside, "%s.corrupt-%lld-%d", p->path, (long long)time(NULL), n);
	static const char *const suffixes[] = {"", "-wal", "-shm"};
	for (size_t i = 0; i < 3; i++) {
		char from[4200], to[4200];
		snprintf(from, sizeof from, "%s%s", p->path, suffixes[i]);
		snprintf(to, sizeof to, "%s%s", aside, suffixes[i]);
		if (rename(from, to) != 0 && errno != ENOENT)
			roost_log_error(p->log, "store: cannot move %s aside: %s", from, strerror(errno));
	}
	p->stats.moved_aside++;
	roost_log_error(p->log,
	                "STORE LOST: %s is unusable (%s); moved it to %s and starting with an empty store. "
	                "It held %lld retained messages, %lld persistent sessions, %lld queued deliveries, "
	                "%lld spooled events (-1 = could not be counted).",
	                p->path, why, aside, r, ses, d, sp);
}

/* Check the opened file; returns NULL when usable, else why not. */
static const char *check_db(roost_persist *p, int *version)
{
	sqlite3_stmt *s = NULL;
	const char *why = NULL;
	if (sqlite3_prepare_v2(p->db, "PRAGMA quick_check", -1, &s, NULL) != SQLITE_OK)
		return sqlite3_errmsg(p->db);
	int rc = sqlite3_step(s);
	if (rc != SQLITE_ROW || strcmp((const char *)sqlite3_column_text(s, 0), "ok") != 0)
		why = rc == SQLITE_ROW ? "integrity check failed" : sqlite3_errmsg(p->db);
	sqlite3_finalize(s);
	if (why)
		return why;
	if (sqlite3_prepare_v2(p->db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_ROW) {
		sqlite3_finalize(s);
		return sqlite3_errmsg(p->db);
	}
	*version = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	if (*version == 0 && count_rows(p->db, "sqlite_master") != 0)
		return "not a roost database (tables without a schema version)";
	if (*version > ROOST_PERSIST_SCHEMA_VERSION)
		return "written by a newer roost (schema version too high)";
	return NULL;
}

static roost_err open_db(roost_persist *p, roost_persist_sync sync, const char **why)
{
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
	if (sqlite3_open_v2(p->path, &p->db, flags, NULL) != SQLITE_OK) {
		*why = p->db ? sqlite3_errmsg(p->db) : "cannot open";
		return ROOST_ERR_IO;
	}
	sqlite3_extended_result_codes(p->db, 1);
	int version = 0;
	if ((*why = check_db(p, &version)) != NULL)
		return ROOST_ERR_INVALID;
	/* Small pages keep each commit's WAL frames close to the size of what
	 * changed (SD cards wear by bytes written); page_size only applies to a
	 * new, empty database. Every table whose key is its identity is WITHOUT
	 * ROWID, so an update touches one b-tree, not a table and an index. */
	const char *pragmas = sync == ROOST_PERSIST_SYNC_FULL
		? "PRAGMA page_size=1024; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
		: "PRAGMA page_size=1024; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;";
	if (strcmp(p->path, ":memory:") == 0)
		pragmas = "PRAGMA synchronous=OFF;";
	if (sqlite3_exec(p->db, pragmas, NULL, NULL, NULL) != SQLITE_OK) {
		*why = sqlite3_errmsg(p->db);
		return ROOST_ERR_INVALID;
	}
	/* Apply migrations from the file's version up to ours, each atomically. */
	for (int v = version; v < ROOST_PERSIST_SCHEMA_VERSION; v++) {
		if (sqlite3_exec(p->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(p->db, migrations[v], NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(p->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
			*why = sqlite3_errmsg(p->db);
			sqlite3_exec(p->db, "ROLLBACK", NULL, NULL, NULL);
			return ROOST_ERR_INVALID;
		}
		if (v > 0)
			roost_log_notice(p->log, "store %s: migrated schema %d -> %d", p->path, v, v + 1);
	}
	return ROOST_OK;
}

roost_err roost_persist_open(const char *path, roost_persist_sync sync, const roost_log *log,
                             roost_persist **out)
{
	roost_persist *p = roost_calloc(1, sizeof *p);
	if (!p)
		return ROOST_ERR_NOMEM;
	p->log = log;
	p->path = roost_strdup(path);
	if (!p->path) {
		roost_free(p);
		return ROOST_ERR_NOMEM;
	}
	const char *why = NULL;
	roost_err err = open_db(p, sync, &why);
	if (err == ROOST_ERR_INVALID || (err == ROOST_ERR_IO && p->db)) {
		char reason[256];
		snprintf(reason, sizeof reason, "%s", why ? why : "unknown");
		move_aside(p, reason);
		err = open_db(p, sync, &why);
	}
	if (err) {
		roost_log_error(log, "store %s: cannot create a database: %s", path, why ? why : "?");
		if (p->db)
			sqlite3_close_v2(p->db);
		roost_free(p->path);
		roost_free(p);
		return ROOST_ERR_IO;
	}
	*out = p;
	return ROOST_OK;
}

void roost_persist_close(roost_persist *p)
{
	if (!p)
		return;
	roost_persist_commit(p);
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(p->st[i]);
	sqlite3_close_v2(p->db);
	roost_free(p->path);
	roost_free(p);
}

/* ---- writes ---- */

static void bind_text(sqlite3_stmt *s, int i, const char *t, size_t len)
{
	sqlite3_bind_text(s, i, t, (int)len, SQLITE_STATIC);
}

static void bind_blob(sqlite3_stmt *s, int i, const void *b, size_t len)
{
	/* A zero-length blob must still be a blob, not NULL. */
	if (len == 0)
		sqlite3_bind_zeroblob(s, i, 0);
	else
		sqlite3_bind_blob(s, i, b, (int)len, SQLITE_STATIC);
}

roost_err roost_persist_retain_set(roost_persist *p, const roost_msg *msg)
{
	sqlite3_stmt *s = write_stmt(p, msg->payload_len ? ST_RETAIN_PUT : ST_RETAIN_DEL);
	if (!s)
		return ROOST_ERR_IO;
	bind_blob(s, 1, msg->topic, msg->topic_len);
	if (msg->payload_len) {
		sqlite3_bind_int(s, 2, msg->qos);
		bind_blob(s, 3, msg->payload, msg->payload_len);
		bind_blob(s, 4, msg->props, msg->props_len);
	}
	return run(p, s);
}

static roost_err run_id(roost_persist *p, enum stmt_id id, const char *client_id)
{
	sqlite3_stmt *s = write_stmt(p, id);
	if (!s)
		return ROOST_ERR_IO;
	bind_text(s, 1, client_id, strlen(client_id));
	return run(p, s);
}

roost_err roost_persist_session_add(roost_persist *p, const char *client_id)
{
	return run_id(p, ST_SESSION_ADD, client_id);
}

roost_err roost_persist_session_remove(roost_persist *p, const char *client_id)
{
	roost_err err = run_id(p, ST_SESSION_DEL, client_id);
	if (!err)
		err = run_id(p, ST_SESSION_DEL_SUBS, client_id);
	if (!err)
		err = run_id(p, ST_SESSION_DEL_QOS2, client_id);
	if (!err)
		err = run_id(p, ST_SESSION_DEL_DELIV, client_id);
	if (!err) {
		sqlite3_stmt *s = write_stmt(p, ST_MSG_GC_ALL);
		err = s ? run(p, s) : ROOST_ERR_IO;
	}
	return err;
}

roost_err roost_persist_sub_set(roost_persist *p, const char *client_id, const char *filter, size_t len,
                                uint8_t options)
{
	sqlite3_stmt *s = write_stmt(p, ST_SUB_PUT);
	if (!s)
		return ROOST_ERR_IO;
	bind_text(s, 1, client_id, strlen(client_id));
	bind_blob(s, 2, filter, len);
	sqlite3_bind_int(s, 3, options);
	return run(p, s);
}

roost_err roost_persist_sub_remove(roost_persist *p, const char *client_id, const char *filter, size_t len)
{
	sqlite3_stmt *s = write_stmt(p, ST_SUB_DEL);
	if (!s)
		return ROOST_ERR_IO;
	bind_text(s, 1, client_id, strlen(client_id));
	bind_blob(s, 2, filter, len);
	return run(p, s);
}

/* Make sure the message has a row; assigns msg->store_id the first time. */
static roost_err store_msg(roost_persist *p, roost_msg *msg)
{
	sqlite3_stmt *s = write_stmt(p, msg->store_id ? ST_MSG_ADD_ID : ST_MSG_ADD);
	if (!s)
		return ROOST_ERR_IO;
	bind_blob(s, 1, msg->topic, msg->topic_len);
	sqlite3_bind_int(s, 2, msg->qos);
	sqlite3_bind_int(s, 3, msg->retain);
	bind_blob(s, 4, msg->payload, msg->payload_len);
	bind_blob(s, 5, msg->props, msg->props_len);
	if (msg->store_id)
		sqlite3_bind_int64(s, 6, (sqlite3_int64)msg->store_id);
	roost_err err = run(p, s);
	if (!err && !msg->store_id)
		msg->store_id = (uint64_t)sqlite3_last_insert_rowid(p->db);
	return err;
}

roost_err roost_persist_delivery_add(roost_persist *p, const char *client_id, uint64_t seq, roost_msg *msg,
                                     uint8_t qos, uint16_t packet_id, uint8_t state)
{
	roost_err err = store_msg(p, msg);
	if (err)
		return err;
	sqlite3_stmt *s = write_stmt(p, ST_DELIV_ADD);
	if (!s)
		return ROOST_ERR_IO;
	bind_text(s, 1, client_id, strlen(client_id));
	sqlite3_bind_int64(s, 2, (sqlite3_int64)seq);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)msg->store_id);
	sqlite3_bind_int(s, 4, qos);
	sqlite3_bind_int(s, 5, packet_id);
	sqlite3_bind_int(s, 6, state);
	return run(p, s);
}

roost_err roost_persist_delivery_update(roost_persist *p, const char *client_id, uint64_t seq,
                                        uint16_t packet_id, uint8_t state)
{
	sqlite3_stmt *s = write_stmt(p, ST_DELIV_UPD);
	if (!s)
		return ROOST_ERR_IO;
	bind_text(s, 1, client_id, strlen(client_id));
	sqlite3_bind_int64(s, 2, (sqlite3_int64)seq);
	sqlite3_bind_int(s, 3, packet_id);
	sqlite3_bind_int(s, 4, state);
	return run(p, s);
}

roost_err roost_persist_delivery_remove(roost_persist *p, const char *client_id, uint64_t seq,
                                        uint64_t store_id)
{
	sqlite3_stmt *s = write_stmt(p, ST_DELIV_DEL);
	if (!s)
		return ROOST_ERR_IO;
	bind_text(s, 1, client_id, strlen(client_id));
	sqlite3_bind_int64(s, 2, (sqlite3_int64)seq);
	roost_err err = run(p, s);
	if (err || !store_id)
		return err;
	s = write_stmt(p, ST_MSG_GC);
	if (!s)
		return ROOST_ERR_IO;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)store_id);
	return run(p, s);
}

roost_err roost_persist_qos2_set(roost_persist *p, const char *client_id, uint16_t packet_id, bool added)
{
	sqlite3_stmt *s = write_stmt(p, added ? ST_QOS2_ADD : ST_QOS2_DEL);
	if (!s)
		return ROOST_ERR_IO;
	bind_text(s, 1, client_id, strlen(client_id));
	sqlite3_bind_int(s, 2, packet_id);
	return run(p, s);
}

roost_err roost_persist_spool_push(roost_persist *p, uint64_t seq, const char *body, size_t len)
{
	sqlite3_stmt *s = write_stmt(p, ST_SPOOL_ADD);
	if (!s)
		return ROOST_ERR_IO;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)seq);
	bind_blob(s, 2, body, len);
	return run(p, s);
}

roost_err roost_persist_spool_remove(roost_persist *p, uint64_t seq)
{
	sqlite3_stmt *s = write_stmt(p, ST_SPOOL_DEL);
	if (!s)
		return ROOST_ERR_IO;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)seq);
	return run(p, s);
}

roost_err roost_persist_counter_set(roost_persist *p, const char *name, uint64_t value)
{
	sqlite3_stmt *s = write_stmt(p, ST_COUNTER_PUT);
	if (!s)
		return ROOST_ERR_IO;
	bind_text(s, 1, name, strlen(name));
	sqlite3_bind_int64(s, 2, (sqlite3_int64)value);
	return run(p, s);
}

uint64_t roost_persist_counter_get(roost_persist *p, const char *name)
{
	sqlite3_stmt *s = stmt(p, ST_COUNTER_GET);
	if (!s)
		return 0;
	bind_text(s, 1, name, strlen(name));
	uint64_t v = sqlite3_step(s) == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(s, 0) : 0;
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return v;
}

/* ---- load ---- */

static roost_msg *row_msg(sqlite3_stmt *s, int topic_col, int qos_col, int retain_col, int payload_col,
                          int props_col)
{
	const void *topic = sqlite3_column_blob(s, topic_col);
	int tlen = sqlite3_column_bytes(s, topic_col);
	const void *payload = sqlite3_column_blob(s, payload_col);
	int plen = sqlite3_column_bytes(s, payload_col);
	const void *props = sqlite3_column_blob(s, props_col);
	int prlen = sqlite3_column_bytes(s, props_col);
	if (!topic || tlen <= 0 || tlen > UINT16_MAX)
		return NULL;
	return roost_msg_new_props(topic, (size_t)tlen, props, (size_t)prlen, payload, (size_t)plen,
	                           (uint8_t)(sqlite3_column_int(s, qos_col) & 3),
	                           retain_col >= 0 ? sqlite3_column_int(s, retain_col) != 0 : true);
}

typedef roost_err (*row_fn)(roost_persist *p, sqlite3_stmt *s, const roost_persist_visitor *v, void *ctx);

static roost_err each_row(roost_persist *p, const char *sql, row_fn fn, const roost_persist_visitor *v,
                          void *ctx)
{
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(p->db, sql, -1, &s, NULL) != SQLITE_OK)
		return fail_sql(p, "load");
	int rc;
	roost_err err = ROOST_OK;
	while (!err && (rc = sqlite3_step(s)) == SQLITE_ROW)
		err = fn(p, s, v, ctx);
	if (!err && rc != SQLITE_DONE)
		err = fail_sql(p, "load");
	sqlite3_finalize(s);
	return err;
}

static roost_err load_retained(roost_persist *p, sqlite3_stmt *s, const roost_persist_visitor *v, void *ctx)
{
	(void)p;
	roost_msg *m = row_msg(s, 0, 1, -1, 2, 3);
	if (!m)
		return ROOST_ERR_NOMEM;
	if (v->retained)
		v->retained(ctx, m);
	else
		roost_msg_unref(m);
	return ROOST_OK;
}

static roost_err load_session(roost_persist *p, sqlite3_stmt *s, const roost_persist_visitor *v, void *ctx)
{
	(void)p;
	if (v->session)
		v->session(ctx, (const char *)sqlite3_column_text(s, 0));
	return ROOST_OK;
}

static roost_err load_sub(roost_persist *p, sqlite3_stmt *s, const roost_persist_visitor *v, void *ctx)
{
	(void)p;
	int len = sqlite3_column_bytes(s, 1);
	char *filter = roost_strndup(sqlite3_column_blob(s, 1), (size_t)len);
	if (!filter)
		return ROOST_ERR_NOMEM;
	if (v->sub)
		v->sub(ctx, (const char *)sqlite3_column_text(s, 0), filter, (uint8_t)sqlite3_column_int(s, 2));
	roost_free(filter);
	return ROOST_OK;
}

static roost_err load_delivery(roost_persist *p, sqlite3_stmt *s, const roost_persist_visitor *v, void *ctx)
{
	(void)p;
	/* d.client_id, d.seq, d.qos, d.packet_id, d.state, d.msg_id, m.topic, m.qos, m.retain, m.payload, m.props */
	roost_msg *m = NULL;
	if (sqlite3_column_type(s, 6) != SQLITE_NULL) {
		m = row_msg(s, 6, 7, 8, 9, 10);
		if (!m)
			return ROOST_ERR_NOMEM;
		m->store_id = (uint64_t)sqlite3_column_int64(s, 5);
	}
	uint8_t state = (uint8_t)sqlite3_column_int(s, 4);
	if (v->delivery && (m || state == 3))
		v->delivery(ctx, (const char *)sqlite3_column_text(s, 0), (uint64_t)sqlite3_column_int64(s, 1), m,
		            (uint8_t)sqlite3_column_int(s, 2), (uint16_t)sqlite3_column_int(s, 3), state,
		            (uint64_t)sqlite3_column_int64(s, 5));
	roost_msg_unref(m);
	return ROOST_OK;
}

static roost_err load_qos2(roost_persist *p, sqlite3_stmt *s, const roost_persist_visitor *v, void *ctx)
{
	(void)p;
	if (v->qos2)
		v->qos2(ctx, (const char *)sqlite3_column_text(s, 0), (uint16_t)sqlite3_column_int(s, 1));
	return ROOST_OK;
}

static roost_err load_spool(roost_persist *p, sqlite3_stmt *s, const roost_persist_visitor *v, void *ctx)
{
	(void)p;
	if (v->spool)
		v->spool(ctx, (uint64_t)sqlite3_column_int64(s, 0), sqlite3_column_blob(s, 1),
		         (size_t)sqlite3_column_bytes(s, 1));
	return ROOST_OK;
}

roost_err roost_persist_load(roost_persist *p, const roost_persist_visitor *v, void *ctx)
{
	roost_err err = each_row(p, "SELECT topic, qos, payload, props FROM retained", load_retained, v, ctx);
	if (!err)
		err = each_row(p, "SELECT client_id FROM sessions", load_session, v, ctx);
	if (!err)
		err = each_row(p, "SELECT client_id, filter, options FROM subs", load_sub, v, ctx);
	if (!err)
		err = each_row(p,
		               "SELECT d.client_id, d.seq, d.qos, d.packet_id, d.state, d.msg_id, m.topic, m.qos,"
		               " m.retain, m.payload, m.props FROM deliveries d LEFT JOIN messages m"
		               " ON m.id = d.msg_id ORDER BY d.client_id, d.seq",
		               load_delivery, v, ctx);
	if (!err)
		err = each_row(p, "SELECT client_id, packet_id FROM qos2_in", load_qos2, v, ctx);
	if (!err)
		err = each_row(p, "SELECT seq, body FROM spool ORDER BY seq", load_spool, v, ctx);
	return err;
}
