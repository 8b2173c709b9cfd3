/*
 * persist.c — the durable store on SQLite 3 (WAL). See include/roost/persist.h.
 *
 * Statements are prepared once and cached. Writes join one open
 * transaction, committed by the caller once per event-loop pass (group
 * commit). Opening checks the file before trusting it (quick_check, schema
 * version) and moves an unusable file aside instead of refusing to start.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "roost/alloc.h"
#include "roost/persist.h"
#include "roost/uthash_cfg.h"

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
	ST_SESSION_OWNER,
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
	[ST_SESSION_OWNER] = "UPDATE sessions SET owner = ?2, owner_known = 1 WHERE client_id = ?1",
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

/*
 * Version 2: the count of databases moved aside leaves the database (it
 * cannot live in the file that gets moved; it is in "<path>.state" now,
 * carried over by migrate()), and the file says it is roost's
 * (application_id), so a foreign SQLite file is recognised even when it has
 * a user_version of its own.
 */
#define ROOST_APPLICATION_ID 0x526f6f73 /* "Roos" */
static const char schema_v2[] = "DELETE FROM counters WHERE name = 'store_moved_aside';"
                                "PRAGMA application_id = 1383034739;"
                                "PRAGMA user_version = 2;";

/*
 * Version 3: a persistent session belongs to the user who created it, also
 * across restarts (before, a restored session was claimed by whoever
 * connected first). owner NULL = anonymous; owner_known 0 for sessions
 * written before version 3, which the first client to resume claims.
 */
static const char schema_v3[] = "ALTER TABLE sessions ADD COLUMN owner TEXT;"
                                "ALTER TABLE sessions ADD COLUMN owner_known INTEGER NOT NULL DEFAULT 0;"
                                "PRAGMA user_version = 3;";

/* migrations[v] upgrades a database at version v to v + 1. */
static const char *const migrations[] = {
	[0] = schema_v1,
	[1] = schema_v2,
	[2] = schema_v3,
};
_Static_assert(sizeof migrations / sizeof migrations[0] == ROOST_PERSIST_SCHEMA_VERSION,
               "one migration per schema version");

struct roost_persist {
	sqlite3 *db;
	char *path;
	const roost_log *log;
	sqlite3_stmt *st[ST_COUNT];
	const char *vfs;        /* tests only: a registered sqlite3_vfs; NULL = default */
	roost_clock clock;
	int lock_fd;            /* holds the advisory lock on "<path>.lock"; -1 for :memory: */
	bool have_state;        /* "<path>.state" exists */
	bool had_data;          /* the side file's (and then our) idea of whether there is data */
	uint64_t next_check_ms; /* the next disk-space / had_data check at commit */
	bool space_low;         /* the filesystem is past ROOST_PERSIST_SPACE_WARN_PERCENT */
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

static bool is_memory(const char *path);
static bool has_data(roost_persist *p);
static void state_write(roost_persist *p);
static void dir_of(const char *path, char *buf, size_t cap);

/* Percent of the store's filesystem in use (as df counts it), -1 unknown. */
static int space_used_percent(const char *path)
{
	char dir[PATH_MAX];
	dir_of(path, dir, sizeof dir);
	struct statvfs v;
	if (statvfs(dir, &v) != 0 || v.f_blocks == 0)
		return -1;
	/* df: used / (used + available to unprivileged users) */
	unsigned long long used = (unsigned long long)(v.f_blocks - v.f_bfree);
	unsigned long long avail = (unsigned long long)v.f_bavail;
	return used + avail ? (int)((used * 100 + used + avail - 1) / (used + avail)) : -1;
}

/*
 * After a commit, at most once a minute (ROOST_PERSIST_CHECK_MS): warn when
 * the filesystem passes 90 % full, once per crossing, so the household
 * hears of it before writes fail; and keep the side file's had_data true.
 */
static void maintain(roost_persist *p)
{
	if (is_memory(p->path))
		return;
	uint64_t now = roost_clock_now(&p->clock);
	if (now < p->next_check_ms)
		return;
	p->next_check_ms = now + ROOST_PERSIST_CHECK_MS;
	int used = space_used_percent(p->path);
	if (used > ROOST_PERSIST_SPACE_WARN_PERCENT && !p->space_low) {
		p->space_low = true;
		roost_log_warn(p->log, "store %s: its filesystem is %d%% full (warning above %d%%); when it is full, "
		               "messages that must be stored are no longer acknowledged",
		               p->path, used, ROOST_PERSIST_SPACE_WARN_PERCENT);
	} else if (used >= 0 && used <= ROOST_PERSIST_SPACE_WARN_PERCENT && p->space_low) {
		p->space_low = false;
		roost_log_notice(p->log, "store %s: its filesystem is back to %d%% full", p->path, used);
	}
	if (!p->had_data && has_data(p)) {
		p->had_data = true;
		state_write(p);
	}
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
	maintain(p);
	return ROOST_OK;
}

bool roost_persist_dirty(const roost_persist *p) { return p->in_txn || p->batch_failed; }
uint64_t roost_persist_writes(const roost_persist *p) { return p->stats.writes; }
const roost_persist_stats *roost_persist_stats_get(const roost_persist *p) { return &p->stats; }

/* ---- the files beside the database ---- */

/* "<path><suffix>" into buf; false when it does not fit. */
static bool side_name(char *buf, size_t cap, const char *path, const char *suffix)
{
	int n = snprintf(buf, cap, "%s%s", path, suffix);
	return n > 0 && (size_t)n < cap;
}

static bool is_memory(const char *path) { return strcmp(path, ":memory:") == 0; }

/*
 * The side file "<path>.state" keeps what must outlive the database file
 * itself: how many databases were moved aside (the count cannot live in the
 * file that gets moved), and whether the last run had data, so an empty
 * database found later is reported. Written atomically: tmp, fsync, rename.
 */
static void state_read(roost_persist *p)
{
	char name[PATH_MAX + 16];
	if (!side_name(name, sizeof name, p->path, ".state"))
		return;
	FILE *f = fopen(name, "r");
	if (!f)
		return;
	p->have_state = true;
	char line[128];
	unsigned long long v;
	while (fgets(line, sizeof line, f)) {
		if (sscanf(line, "moved_aside=%llu", &v) == 1)
			p->stats.moved_aside_total = v;
		else if (sscanf(line, "had_data=%llu", &v) == 1)
			p->had_data = v != 0;
	}
	fclose(f);
}

static void state_write(roost_persist *p)
{
	char name[PATH_MAX + 16], tmp[PATH_MAX + 24];
	if (!side_name(name, sizeof name, p->path, ".state") || !side_name(tmp, sizeof tmp, name, ".tmp"))
		return;
	char text[96];
	int n = snprintf(text, sizeof text, "moved_aside=%llu\nhad_data=%d\n",
	                 (unsigned long long)p->stats.moved_aside_total, p->had_data ? 1 : 0);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	bool ok = fd >= 0 && write(fd, text, (size_t)n) == n && fsync(fd) == 0;
	if (fd >= 0)
		ok = close(fd) == 0 && ok;
	if (ok && rename(tmp, name) == 0) {
		p->have_state = true;
		return;
	}
	roost_log_error(p->log, "store: cannot write %s: %s", name, strerror(errno));
	unlink(tmp);
}

/*
 * One roost per database: an advisory lock (flock) on "<path>.lock", held
 * while open. Not SQLite's exclusive mode, so readers (`roost backup`) still
 * work. The file holds the owner's pid, for the message of the one refused.
 */
static roost_err lock_take(roost_persist *p)
{
	char name[PATH_MAX + 16];
	if (!side_name(name, sizeof name, p->path, ".lock"))
		return ROOST_ERR_INVALID;
	p->lock_fd = open(name, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (p->lock_fd < 0) {
		roost_log_error(p->log, "store %s: cannot open the lock file %s: %s; not starting", p->path, name,
		                strerror(errno));
		return ROOST_ERR_IO;
	}
	if (flock(p->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		char pid[24] = "unknown";
		ssize_t n = pread(p->lock_fd, pid, sizeof pid - 1, 0);
		if (n > 0) {
			pid[n] = 0;
			pid[strcspn(pid, "\n")] = 0;
		}
		roost_log_error(p->log,
		                "store %s is in use by another roost (pid %s holds %s); not starting a second "
		                "one on the same database",
		                p->path, pid, name);
		return ROOST_ERR_EXISTS;
	}
	char text[24];
	int n = snprintf(text, sizeof text, "%ld\n", (long)getpid());
	if (ftruncate(p->lock_fd, 0) != 0 || pwrite(p->lock_fd, text, (size_t)n, 0) != n)
		roost_log_warn(p->log, "store: cannot write the pid into %s: %s", name, strerror(errno));
	return ROOST_OK;
}

/* The directory part of path ("." for a bare name). */
static void dir_of(const char *path, char *buf, size_t cap)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		snprintf(buf, cap, ".");
	else if (slash == path)
		snprintf(buf, cap, "/");
	else
		snprintf(buf, cap, "%.*s", (int)(slash - path), path);
}

/*
 * The store's directory must exist and be writable (SQLite creates -wal and
 * -shm beside the file); a missing one is created when its parent exists.
 * An existing file must be readable and writable. Checked before anything
 * is opened, so a store roost cannot write is refused with the reason and
 * never mistaken for a corrupt one (which would be moved aside).
 */
static roost_err check_writable(roost_persist *p)
{
	char dir[PATH_MAX];
	dir_of(p->path, dir, sizeof dir);
	struct stat st;
	if (stat(dir, &st) != 0 && errno == ENOENT) {
		if (mkdir(dir, 0750) == 0) {
			roost_log_notice(p->log, "store: created the directory %s", dir);
		} else {
			roost_log_error(p->log, "store %s: cannot create the directory %s: %s%s; not starting", p->path,
			                dir, strerror(errno), errno == ENOENT ? " (its parent does not exist)" : "");
			return ROOST_ERR_IO;
		}
	}
	errno = 0;
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || access(dir, W_OK | X_OK) != 0) {
		roost_log_error(p->log, "store %s: cannot write in the directory %s: %s (running as uid %ld); "
		                "not starting, nothing touched",
		                p->path, dir, errno ? strerror(errno) : "not a directory", (long)geteuid());
		return ROOST_ERR_IO;
	}
	static const char *const suffixes[] = {"", "-wal", "-shm"};
	for (size_t i = 0; i < 3; i++) {
		char name[PATH_MAX + 8];
		if (!side_name(name, sizeof name, p->path, suffixes[i]))
			return ROOST_ERR_INVALID;
		if (stat(name, &st) != 0)
			continue;
		errno = 0;
		if (!S_ISREG(st.st_mode) || access(name, R_OK | W_OK) != 0) {
			roost_log_error(p->log, "store %s: cannot read and write %s: %s (running as uid %ld); "
			                "not starting, nothing touched",
			                p->path, name, errno ? strerror(errno) : "not a regular file", (long)geteuid());
			return ROOST_ERR_IO;
		}
	}
	return ROOST_OK;
}

/* Bytes in "<path>-wal" when the main file is missing or empty: a WAL that
 * says there was data the database does not have. */
static long long orphan_wal_bytes(const char *path)
{
	struct stat st;
	char wal[PATH_MAX + 8];
	if ((stat(path, &st) == 0 && st.st_size > 0) || !side_name(wal, sizeof wal, path, "-wal") ||
	    stat(wal, &st) != 0)
		return 0;
	return (long long)st.st_size;
}

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

/* Anything a user put there: roost's own $SYS messages do not count. */
static bool has_data(roost_persist *p)
{
	static const char sql[] = "SELECT EXISTS(SELECT 1 FROM sessions) OR EXISTS(SELECT 1 FROM spool) OR "
	                          "EXISTS(SELECT 1 FROM retained WHERE substr(topic, 1, 5) <> CAST('$SYS/' AS BLOB))";
	sqlite3_stmt *s = NULL;
	bool yes = false;
	if (sqlite3_prepare_v2(p->db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
		yes = sqlite3_column_int(s, 0) != 0;
	sqlite3_finalize(s);
	return yes;
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
	char aside[PATH_MAX + 48];
	struct stat st;
	snprintf(aside, sizeof aside, "%s.corrupt-%lld", p->path, (long long)time(NULL));
	for (int n = 2; stat(aside, &st) == 0 && n < 1000; n++)
		snprintf(aside, sizeof aside, "%s.corrupt-%lld-%d", p->path, (long long)time(NULL), n);
	static const char *const suffixes[] = {"", "-wal", "-shm"};
	for (size_t i = 0; i < 3; i++) {
		char from[PATH_MAX + 8], to[PATH_MAX + 56];
		snprintf(from, sizeof from, "%s%s", p->path, suffixes[i]);
		snprintf(to, sizeof to, "%s%s", aside, suffixes[i]);
		if (rename(from, to) != 0 && errno != ENOENT)
			roost_log_error(p->log, "store: cannot move %s aside: %s", from, strerror(errno));
	}
	p->stats.moved_aside++;
	p->stats.moved_aside_total++;
	p->had_data = false;
	state_write(p);
	roost_log_error(p->log,
	                "STORE LOST: %s is unusable (%s); moved it to %s and starting with an empty store. "
	                "It held %lld retained messages, %lld persistent sessions, %lld queued deliveries, "
	                "%lld spooled events (-1 = could not be counted). Databases lost so far: %llu.",
	                p->path, why, aside, r, ses, d, sp, (unsigned long long)p->stats.moved_aside_total);
}

/*
 * Check the opened file. ROOST_OK when usable; ROOST_ERR_INVALID when its
 * contents are unusable (corrupt, not roost's: moved aside);
 * ROOST_ERR_UNSUPPORTED when a newer roost wrote it (refused, untouched);
 * ROOST_ERR_IO when it could not be read (refused, untouched).
 */
static roost_err check_db(roost_persist *p, int *version, const char **why)
{
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(p->db, "PRAGMA quick_check", -1, &s, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(s, 0), "ok") != 0) {
		*why = "integrity check failed";
		rc = SQLITE_CORRUPT;
	} else if (rc != SQLITE_ROW) {
		*why = sqlite3_errmsg(p->db);
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW) {
		int primary = rc & 0xff;
		return primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB ? ROOST_ERR_INVALID : ROOST_ERR_IO;
	}
	if (sqlite3_prepare_v2(p->db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_ROW) {
		sqlite3_finalize(s);
		*why = sqlite3_errmsg(p->db);
		return ROOST_ERR_IO;
	}
	*version = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	if (*version == 0 && count_rows(p->db, "sqlite_master") != 0) {
		*why = "not a roost database (tables without a schema version)";
		return ROOST_ERR_INVALID;
	}
	if (sqlite3_prepare_v2(p->db, "PRAGMA application_id", -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW) {
		int app = sqlite3_column_int(s, 0);
		if (app != 0 && app != ROOST_APPLICATION_ID) {
			sqlite3_finalize(s);
			*why = "not a roost database (another application's id)";
			return ROOST_ERR_INVALID;
		}
	}
	sqlite3_finalize(s);
	if (*version > ROOST_PERSIST_SCHEMA_VERSION) {
		*why = "written by a newer roost (schema version too high); this roost does not downgrade it";
		return ROOST_ERR_UNSUPPORTED;
	}
	if (sqlite3_db_readonly(p->db, "main") == 1) {
		*why = "the database opened read-only";
		return ROOST_ERR_IO;
	}
	return ROOST_OK;
}

/* Upgrade the schema from version to ours, each step atomically, after a
 * copy of the file as it was ("<path>.pre-v<ours>") for a way back. */
static roost_err migrate(roost_persist *p, int version, const char **why)
{
	if (version > 0 && version < ROOST_PERSIST_SCHEMA_VERSION && !is_memory(p->path)) {
		char copy[PATH_MAX + 24];
		snprintf(copy, sizeof copy, "%s.pre-v%d", p->path, ROOST_PERSIST_SCHEMA_VERSION);
		if (roost_persist_backup(p->path, copy, p->vfs, p->log) != ROOST_OK) {
			*why = "cannot copy the database before migrating it";
			return ROOST_ERR_IO;
		}
		roost_log_notice(p->log, "store %s: copied to %s before migrating its schema", p->path, copy);
	}
	/* v1 kept the count of lost databases inside the file: carry it over to
	 * the side file before v2 drops it (an older roost has no side file). */
	if (version == 1 && !p->have_state && !is_memory(p->path)) {
		p->stats.moved_aside_total = roost_persist_counter_get(p, "store_moved_aside");
		state_write(p);
	}
	for (int v = version; v < ROOST_PERSIST_SCHEMA_VERSION; v++) {
		if (sqlite3_exec(p->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(p->db, migrations[v], NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(p->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
			*why = sqlite3_errmsg(p->db);
			sqlite3_exec(p->db, "ROLLBACK", NULL, NULL, NULL);
			return ROOST_ERR_IO;
		}
		if (v > 0)
			roost_log_notice(p->log, "store %s: migrated schema %d -> %d", p->path, v, v + 1);
	}
	return ROOST_OK;
}

static roost_err open_db(roost_persist *p, roost_persist_sync sync, const char **why)
{
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
	int rc = sqlite3_open_v2(p->path, &p->db, flags, p->vfs);
	if (rc != SQLITE_OK) {
		*why = p->db ? sqlite3_errmsg(p->db) : "cannot open";
		return (rc & 0xff) == SQLITE_NOTADB || (rc & 0xff) == SQLITE_CORRUPT ? ROOST_ERR_INVALID : ROOST_ERR_IO;
	}
	sqlite3_extended_result_codes(p->db, 1);
	int version = 0;
	roost_err err = check_db(p, &version, why);
	if (err)
		return err;
	/* Small pages keep each commit's WAL frames close to the size of what
	 * changed (SD cards wear by bytes written); page_size only applies to a
	 * new, empty database. Every table whose key is its identity is WITHOUT
	 * ROWID, so an update touches one b-tree, not a table and an index. */
	const char *pragmas = sync == ROOST_PERSIST_SYNC_FULL
		? "PRAGMA page_size=1024; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
		: "PRAGMA page_size=1024; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;";
	if (is_memory(p->path))
		pragmas = "PRAGMA synchronous=OFF;";
	if (sqlite3_exec(p->db, pragmas, NULL, NULL, NULL) != SQLITE_OK) {
		*why = sqlite3_errmsg(p->db);
		return ROOST_ERR_IO;
	}
	return migrate(p, version, why);
}

/* Before anything is opened: the directory, the files' permissions, the
 * lock, and what the side file and the WAL say about the last run. */
static roost_err open_files(roost_persist *p, long long *wal_bytes)
{
	roost_err err = check_writable(p);
	if (!err)
		err = lock_take(p);
	if (err)
		return err;
	state_read(p);
	*wal_bytes = orphan_wal_bytes(p->path);
	return ROOST_OK;
}

/* The database is empty: say so loudly if the last run, or a WAL left
 * behind, says it should not be. */
static void check_not_emptied(roost_persist *p, long long wal_bytes)
{
	bool now = has_data(p);
	if (!now && (p->had_data || wal_bytes > 0))
		roost_log_error(p->log,
		                "store %s is empty, but %s; was the file deleted or replaced while roost was "
		                "stopped? Starting with the empty store.",
		                p->path, p->had_data ? "the last run had data (its .state file says so)"
		                                     : "a -wal file with content was beside a missing or empty database");
	if (now != p->had_data || !p->have_state) {
		p->had_data = now;
		state_write(p);
	}
}

static void persist_free(roost_persist *p)
{
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(p->st[i]);
	if (p->db)
		sqlite3_close_v2(p->db);
	if (p->lock_fd >= 0)
		close(p->lock_fd); /* releases the lock */
	roost_free(p->path);
	roost_free(p);
}

/* Open, check, and move an unusable file aside once; the start's outcome. */
static roost_err open_checked(roost_persist *p, roost_persist_sync sync)
{
	long long wal_bytes = 0;
	if (!is_memory(p->path)) {
		roost_err err = open_files(p, &wal_bytes);
		if (err)
			return err;
	}
	const char *why = NULL;
	roost_err err = open_db(p, sync, &why);
	if (err == ROOST_ERR_INVALID) {
		char reason[256];
		snprintf(reason, sizeof reason, "%s", why ? why : "unknown");
		move_aside(p, reason);
		err = open_db(p, sync, &why);
	}
	if (err) {
		roost_log_error(p->log, "store %s: %s; not starting, the file is left as it is", p->path,
		                why ? why : roost_err_str(err));
		return err == ROOST_ERR_INVALID ? ROOST_ERR_IO : err;
	}
	if (!is_memory(p->path))
		check_not_emptied(p, wal_bytes);
	return ROOST_OK;
}

roost_err roost_persist_open_ex(const roost_persist_options *o, roost_persist **out)
{
	*out = NULL;
	roost_persist *p = roost_calloc(1, sizeof *p);
	if (!p)
		return ROOST_ERR_NOMEM;
	p->log = o->log;
	p->lock_fd = -1;
	p->vfs = o->test_vfs;
	p->clock = o->clock ? *o->clock : roost_clock_system();
	p->path = roost_strdup(o->path);
	if (!p->path) {
		roost_free(p);
		return ROOST_ERR_NOMEM;
	}
	roost_err err = open_checked(p, o->sync);
	if (err) {
		persist_free(p);
		return err;
	}
	*out = p;
	return ROOST_OK;
}

roost_err roost_persist_open(const char *path, roost_persist_sync sync, const roost_log *log,
                             roost_persist **out)
{
	roost_persist_options o = {.path = path, .sync = sync, .log = log};
	return roost_persist_open_ex(&o, out);
}

void roost_persist_close(roost_persist *p)
{
	if (!p)
		return;
	roost_persist_commit(p);
	if (!is_memory(p->path) && has_data(p) != p->had_data) {
		p->had_data = !p->had_data;
		state_write(p);
	}
	persist_free(p);
}

/* ---- where the store lives ---- */

roost_err roost_persist_resolve_path(const char *configured, char *buf, size_t cap)
{
	if (!configured || !*configured)
		configured = "roost.db";
	if (is_memory(configured)) {
		int n = snprintf(buf, cap, "%s", configured);
		return n > 0 && (size_t)n < cap ? ROOST_OK : ROOST_ERR_TOO_LARGE;
	}
	/* Relative to systemd's StateDirectory= when it gave one (its first
	 * entry), else to the working directory. */
	char base[PATH_MAX] = "";
	const char *state = getenv("STATE_DIRECTORY");
	if (configured[0] != '/' && state && *state)
		snprintf(base, sizeof base, "%.*s/", (int)strcspn(state, ":"), state);
	/* Mosquitto's persistence_location: a directory (a trailing slash, or
	 * one that exists) holds roost.db. */
	size_t len = strlen(configured);
	char joined[PATH_MAX + 8];
	snprintf(joined, sizeof joined, "%s%s", base, configured);
	struct stat st;
	bool is_dir = configured[len - 1] == '/' || (stat(joined, &st) == 0 && S_ISDIR(st.st_mode));
	int n = snprintf(buf, cap, "%s%s%s", joined, is_dir && configured[len - 1] != '/' ? "/" : "",
	                 is_dir ? "roost.db" : "");
	return n > 0 && (size_t)n < cap ? ROOST_OK : ROOST_ERR_TOO_LARGE;
}

roost_err roost_persist_resolve_dir(const char *configured, char *buf, size_t cap)
{
	char path[PATH_MAX];
	roost_err err = roost_persist_resolve_path(configured, path, sizeof path);
	if (err)
		return err;
	if (is_memory(path))
		snprintf(path, sizeof path, "./:memory:");
	char dir[PATH_MAX];
	dir_of(path, dir, sizeof dir);
	int n = snprintf(buf, cap, "%s", dir);
	return n > 0 && (size_t)n < cap ? ROOST_OK : ROOST_ERR_TOO_LARGE;
}

/* ---- online backup ---- */

/*
 * Copy src to dst with SQLite's online backup from a separate, read-only
 * connection: consistent (one read transaction, in WAL mode concurrent
 * with roost's writes) and needing neither roost's lock nor write access to
 * src. Written to "<dst>.tmp", then renamed, so dst is whole or absent.
 */
roost_err roost_persist_backup(const char *src, const char *dst, const char *vfs, const roost_log *log)
{
	char tmp[PATH_MAX + 8];
	if (!side_name(tmp, sizeof tmp, dst, ".tmp"))
		return ROOST_ERR_TOO_LARGE;
	unlink(tmp);
	sqlite3 *from = NULL, *to = NULL;
	roost_err err = ROOST_ERR_IO;
	const char *what = "open the store";
	if (sqlite3_open_v2(src, &from, SQLITE_OPEN_READONLY, vfs) != SQLITE_OK)
		goto fail;
	sqlite3_busy_timeout(from, 5000);
	what = "create the copy";
	if (sqlite3_open_v2(tmp, &to, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_backup *b = sqlite3_backup_init(to, "main", from, "main");
	what = "copy";
	if (!b)
		goto fail;
	int rc = sqlite3_backup_step(b, -1);
	sqlite3_backup_finish(b);
	if (rc != SQLITE_DONE || sqlite3_errcode(to) != SQLITE_OK)
		goto fail;
	what = "finish the copy";
	if (sqlite3_close(to) != SQLITE_OK)
		goto fail;
	to = NULL;
	if (rename(tmp, dst) != 0) {
		roost_log_error(log, "backup %s -> %s: %s", src, dst, strerror(errno));
		goto fail_quiet;
	}
	sqlite3_close(from);
	return ROOST_OK;
fail:
	roost_log_error(log, "backup %s -> %s: cannot %s: %s", src, dst, what,
	                to && sqlite3_errcode(to) ? sqlite3_errmsg(to) : from ? sqlite3_errmsg(from) : "out of memory");
fail_quiet:
	sqlite3_close(to);
	sqlite3_close(from);
	unlink(tmp);
	return err;
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

roost_err roost_persist_session_set_owner(roost_persist *p, const char *client_id, const char *owner)
{
	sqlite3_stmt *s = write_stmt(p, ST_SESSION_OWNER);
	if (!s)
		return ROOST_ERR_IO;
	bind_text(s, 1, client_id, strlen(client_id));
	if (owner)
		bind_text(s, 2, owner, strlen(owner));
	else
		sqlite3_bind_null(s, 2);
	return run(p, s);
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
	const char *id = (const char *)sqlite3_column_text(s, 0);
	if (v->session)
		v->session(ctx, id);
	if (v->session_owner && sqlite3_column_int(s, 2))
		v->session_owner(ctx, id, (const char *)sqlite3_column_text(s, 1)); /* NULL: anonymous */
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

/*
 * Messages are loaded once each, before the deliveries, and shared by
 * refcount among the deliveries that refer to them, as they were before the
 * restart: one roost_msg per message row, not one per delivery row (50
 * sessions x 200 queued 10 KB messages took 107 MB after a restart, 9 MB
 * before).
 */
typedef struct msg_entry {
	uint64_t id;
	roost_msg *m;
	UT_hash_handle hh;
} msg_entry;

typedef struct delivery_load {
	msg_entry *msgs;
	void *ctx; /* the visitor's */
} delivery_load;

static roost_err load_message(roost_persist *p, sqlite3_stmt *s, const roost_persist_visitor *v, void *ctx)
{
	(void)p;
	(void)v;
	delivery_load *dl = ctx;
	msg_entry *e = roost_calloc(1, sizeof *e);
	if (!e)
		return ROOST_ERR_NOMEM;
	/* id, topic, qos, retain, payload, props */
	e->id = (uint64_t)sqlite3_column_int64(s, 0);
	e->m = row_msg(s, 1, 2, 3, 4, 5);
	if (!e->m) {
		roost_free(e);
		return ROOST_ERR_NOMEM;
	}
	e->m->store_id = e->id; /* later deliveries keep sharing this row */
	roost_uthash_oom_flag = 0;
	HASH_ADD(hh, dl->msgs, id, sizeof e->id, e);
	if (roost_uthash_oom_flag) {
		roost_msg_unref(e->m);
		roost_free(e);
		return ROOST_ERR_NOMEM;
	}
	return ROOST_OK;
}

static roost_err load_delivery(roost_persist *p, sqlite3_stmt *s, const roost_persist_visitor *v, void *ctx)
{
	(void)p;
	delivery_load *dl = ctx;
	/* client_id, seq, qos, packet_id, state, msg_id */
	uint64_t id = (uint64_t)sqlite3_column_int64(s, 5);
	msg_entry *e = NULL;
	HASH_FIND(hh, dl->msgs, &id, sizeof id, e);
	uint8_t state = (uint8_t)sqlite3_column_int(s, 4);
	if (v->delivery && (e || state == 3))
		v->delivery(dl->ctx, (const char *)sqlite3_column_text(s, 0), (uint64_t)sqlite3_column_int64(s, 1),
		            e ? e->m : NULL, (uint8_t)sqlite3_column_int(s, 2), (uint16_t)sqlite3_column_int(s, 3),
		            state, id);
	return ROOST_OK;
}

static roost_err load_deliveries(roost_persist *p, const roost_persist_visitor *v, void *ctx)
{
	delivery_load dl = {.ctx = ctx};
	roost_err err = each_row(p, "SELECT id, topic, qos, retain, payload, props FROM messages", load_message, v,
	                         &dl);
	if (!err)
		err = each_row(p,
		               "SELECT client_id, seq, qos, packet_id, state, msg_id FROM deliveries"
		               " ORDER BY client_id, seq",
		               load_delivery, v, &dl);
	/* The deliveries took their own references; drop the loader's. */
	msg_entry *e, *tmp;
	HASH_ITER(hh, dl.msgs, e, tmp) {
		HASH_DEL(dl.msgs, e);
		roost_msg_unref(e->m);
		roost_free(e);
	}
	return err;
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
		err = each_row(p, "SELECT client_id, owner, owner_known FROM sessions", load_session, v, ctx);
	if (!err)
		err = each_row(p, "SELECT client_id, filter, options FROM subs", load_sub, v, ctx);
	if (!err)
		err = load_deliveries(p, v, ctx);
	if (!err)
		err = each_row(p, "SELECT client_id, packet_id FROM qos2_in", load_qos2, v, ctx);
	if (!err)
		err = each_row(p, "SELECT seq, body FROM spool ORDER BY seq", load_spool, v, ctx);
	return err;
}
