/* check_persist.c — the durable store: round trips through SQLite, group
 * commit, message garbage collection and every kind of bad file. */
#include <check.h>
#include <stdarg.h>
#include <dirent.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "roost/alloc.h"
#include "roost/clock.h"
#include "roost/persist.h"

static const roost_log quiet = {.level = ROOST_LOG_ERROR, .write = NULL};

typedef struct loaded {
	char log[2048];
	roost_msg *msgs[16];
	int n_msgs;
} loaded;

static void addf(loaded *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void addf(loaded *l, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t n = strlen(l->log);
	vsnprintf(l->log + n, sizeof l->log - n, fmt, ap);
	va_end(ap);
}

static void v_retained(void *ctx, roost_msg *m)
{
	addf(ctx, "R %s=%.*s q%u;", m->topic, (int)m->payload_len, (const char *)m->payload, m->qos);
	roost_msg_unref(m);
}
static void v_session(void *ctx, const char *id) { addf(ctx, "S %s;", id); }
static void v_sub(void *ctx, const char *id, const char *f, uint8_t o) { addf(ctx, "F %s %s %u;", id, f, o); }
static void v_delivery(void *ctx, const char *id, uint64_t seq, roost_msg *m, uint8_t qos, uint16_t pid,
                       uint8_t state, uint64_t store_id)
{
	addf(ctx, "D %s #%llu %s q%u p%u s%u%s;", id, (unsigned long long)seq, m ? m->topic : "-", qos, pid, state,
	     m && m->store_id == store_id ? "" : (m ? " BADID" : ""));
}
static void v_qos2(void *ctx, const char *id, uint16_t pid) { addf(ctx, "Q %s %u;", id, pid); }
static void v_spool(void *ctx, uint64_t seq, const char *body, size_t len)
{
	addf(ctx, "P %llu %.*s;", (unsigned long long)seq, (int)len, body);
}

static void v_owner(void *ctx, const char *id, const char *owner) { addf(ctx, "O %s %s;", id, owner ? owner : "(anonymous)"); }
static const roost_persist_visitor visitor = {v_retained, v_session, v_sub, v_delivery, v_qos2, v_spool, v_owner};

static void load_all(roost_persist *p, loaded *l)
{
	memset(l, 0, sizeof *l);
	ck_assert_int_eq(roost_persist_load(p, &visitor, l), ROOST_OK);
}

static roost_msg *msg(const char *topic, const char *payload, uint8_t qos, bool retain)
{
	return roost_msg_new(topic, strlen(topic), (const uint8_t *)payload, strlen(payload), qos, retain);
}

static char tmpdir[64];

static void make_tmpdir(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/roost-persist-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
	DIR *d = opendir(tmpdir);
	if (!d)
		return;
	struct dirent *e;
	char path[512];
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
		if (unlink(path) != 0) { /* a directory a test made: its files, then it */
			char cmd[600];
			snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
			ck_assert_int_eq(system(cmd), 0);
		}
	}
	closedir(d);
	rmdir(tmpdir);
}

static int count_files(const char *prefix)
{
	DIR *d = opendir(tmpdir);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
			n++;
	closedir(d);
	return n;
}

typedef struct captured {
	char text[8192];
} captured;

static void capture_write(void *ctx, roost_log_level level, const char *line)
{
	captured *c = ctx;
	size_t n = strlen(c->text);
	snprintf(c->text + n, sizeof c->text - n, "%s|%s\n", level == ROOST_LOG_ERROR ? "E" : "-", line);
}

static roost_log capture_log(captured *c)
{
	roost_log l = {.level = ROOST_LOG_DEBUG, .write = capture_write, .ctx = c};
	return l;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = calloc(1, (size_t)n + 1);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return buf;
}

START_TEST(test_persist_round_trip)
{
	roost_persist *p;
	ck_assert_int_eq(roost_persist_open(":memory:", ROOST_PERSIST_SYNC_NORMAL, &quiet, &p), ROOST_OK);
	roost_msg *r1 = msg("home/a", "on", 1, true), *r2 = msg("home/a", "off", 0, true);
	roost_msg *r3 = msg("home/b", "x", 2, true), *del = msg("home/b", "", 0, true);
	roost_persist_retain_set(p, r1);
	roost_persist_retain_set(p, r2); /* replaces */
	roost_persist_retain_set(p, r3);
	roost_persist_retain_set(p, del); /* [MQTT-3.3.1-10] zero length removes */
	roost_persist_session_add(p, "dev1");
	roost_persist_sub_set(p, "dev1", "home/#", 6, 1);
	roost_persist_sub_set(p, "dev1", "x/+", 3, 2);
	roost_persist_sub_set(p, "dev1", "x/+", 3, 0); /* replaces */
	roost_msg *m = msg("home/c", "1", 1, false);
	roost_persist_delivery_add(p, "dev1", 4, m, 1, 0, 0);
	ck_assert_uint_ne(m->store_id, 0);
	roost_persist_delivery_add(p, "dev1", 2, m, 1, 7, 1);
	roost_persist_delivery_update(p, "dev1", 4, 8, 1);
	roost_persist_qos2_set(p, "dev1", 33, true);
	roost_persist_spool_push(p, 2, "{\"b\":2}", 7);
	roost_persist_spool_push(p, 1, "{\"a\":1}", 7);
	ck_assert(roost_persist_dirty(p));
	ck_assert_int_eq(roost_persist_commit(p), ROOST_OK);
	ck_assert(!roost_persist_dirty(p));
	loaded l;
	load_all(p, &l);
	ck_assert_str_eq(l.log, "R home/a=off q0;S dev1;F dev1 home/# 1;F dev1 x/+ 0;"
	                        "D dev1 #2 home/c q1 p7 s1;D dev1 #4 home/c q1 p8 s1;Q dev1 33;"
	                        "P 1 {\"a\":1};P 2 {\"b\":2};");
	roost_msg_unref(r1);
	roost_msg_unref(r2);
	roost_msg_unref(r3);
	roost_msg_unref(del);
	roost_msg_unref(m);
	roost_persist_close(p);
}
END_TEST

static int on_dirty_calls;
static void count_dirty(void *ctx)
{
	(void)ctx;
	on_dirty_calls++;
}

/* Group commit: one transaction per batch, announced once. */
START_TEST(test_persist_group_commit_batches)
{
	roost_persist *p;
	ck_assert_int_eq(roost_persist_open(":memory:", ROOST_PERSIST_SYNC_NORMAL, &quiet, &p), ROOST_OK);
	on_dirty_calls = 0;
	roost_persist_set_on_dirty(p, count_dirty, NULL);
	uint64_t w0 = roost_persist_writes(p);
	for (int i = 0; i < 100; i++) {
		char id[16];
		snprintf(id, sizeof id, "c%d", i);
		roost_persist_session_add(p, id);
	}
	ck_assert_int_eq(on_dirty_calls, 1);
	ck_assert_uint_eq(roost_persist_writes(p) - w0, 100);
	ck_assert_int_eq(roost_persist_commit(p), ROOST_OK);
	ck_assert_uint_eq(roost_persist_stats_get(p)->commits, 1);
	ck_assert_int_eq(roost_persist_commit(p), ROOST_OK); /* nothing open: no-op */
	ck_assert_uint_eq(roost_persist_stats_get(p)->commits, 1);
	roost_persist_session_add(p, "again");
	ck_assert_int_eq(on_dirty_calls, 2);
	roost_persist_close(p); /* commits what is pending */
}
END_TEST

/* A message row lives as long as a delivery refers to it. */
START_TEST(test_persist_message_rows_released_with_last_delivery)
{
	make_tmpdir();
	char path[128];
	snprintf(path, sizeof path, "%s/r.db", tmpdir);
	roost_persist *p;
	ck_assert_int_eq(roost_persist_open(path, ROOST_PERSIST_SYNC_NORMAL, &quiet, &p), ROOST_OK);
	roost_msg *m = msg("t", "payload", 1, false);
	roost_persist_session_add(p, "a");
	roost_persist_session_add(p, "b");
	roost_persist_delivery_add(p, "a", 1, m, 1, 0, 0);
	roost_persist_delivery_add(p, "b", 1, m, 1, 0, 0); /* stored once, referenced twice */
	roost_persist_delivery_remove(p, "a", 1, m->store_id);
	roost_persist_commit(p);
	sqlite3 *db;
	sqlite3_open(path, &db);
	sqlite3_stmt *st;
	sqlite3_prepare_v2(db, "SELECT count(*) FROM messages", -1, &st, NULL);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_int_eq(sqlite3_column_int(st, 0), 1);
	sqlite3_reset(st);
	roost_persist_delivery_remove(p, "b", 1, m->store_id);
	roost_persist_commit(p);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_int_eq(sqlite3_column_int(st, 0), 0);
	sqlite3_finalize(st);
	/* The message can be stored again under its id (another delivery later). */
	roost_persist_delivery_add(p, "a", 2, m, 1, 0, 0);
	roost_persist_session_remove(p, "b");
	roost_persist_commit(p);
	loaded l;
	load_all(p, &l);
	ck_assert_str_eq(l.log, "S a;D a #2 t q1 p0 s0;");
	sqlite3_close(db);
	roost_msg_unref(m);
	roost_persist_close(p);
	remove_tmpdir();
}
END_TEST

/* What was committed survives closing and reopening the file. */
START_TEST(test_persist_survives_reopen)
{
	make_tmpdir();
	char path[128];
	snprintf(path, sizeof path, "%s/s.db", tmpdir);
	roost_persist *p;
	ck_assert_int_eq(roost_persist_open(path, ROOST_PERSIST_SYNC_FULL, &quiet, &p), ROOST_OK);
	roost_msg *r = msg("keep", "me", 1, true);
	roost_persist_retain_set(p, r);
	roost_persist_counter_set(p, "lost", 3);
	roost_persist_close(p);
	ck_assert_int_eq(roost_persist_open(path, ROOST_PERSIST_SYNC_NORMAL, &quiet, &p), ROOST_OK);
	loaded l;
	load_all(p, &l);
	ck_assert_str_eq(l.log, "R keep=me q1;");
	ck_assert_uint_eq(roost_persist_counter_get(p, "lost"), 3);
	ck_assert_uint_eq(roost_persist_counter_get(p, "absent"), 0);
	ck_assert_uint_eq(roost_persist_stats_get(p)->moved_aside, 0);
	roost_persist_close(p);
	roost_msg_unref(r);
	remove_tmpdir();
}
END_TEST

/* Every write path of the store, numbered, so one test drives them all. */
enum { W_RETAIN, W_UNRETAIN, W_SESSION_ADD, W_SESSION_DEL, W_SUB_SET, W_SUB_DEL, W_DELIV_ADD, W_DELIV_UPD,
       W_DELIV_DEL, W_QOS2_ADD, W_QOS2_DEL, W_SPOOL_PUSH, W_SPOOL_DEL, W_COUNTER, W_KINDS };

static roost_err write_kind(roost_persist *p, int kind, roost_msg *m)
{
	roost_msg *gone = msg("t/r", "", 0, true);
	roost_err err = ROOST_ERR_INVALID;
	switch (kind) {
	case W_RETAIN: err = roost_persist_retain_set(p, m); break;
	case W_UNRETAIN: err = roost_persist_retain_set(p, gone); break;
	case W_SESSION_ADD: err = roost_persist_session_add(p, "new"); break;
	case W_SESSION_DEL: err = roost_persist_session_remove(p, "old"); break;
	case W_SUB_SET: err = roost_persist_sub_set(p, "old", "a/#", 3, 1); break;
	case W_SUB_DEL: err = roost_persist_sub_remove(p, "old", "old/#", 5); break;
	case W_DELIV_ADD: err = roost_persist_delivery_add(p, "old", 9, m, 1, 0, 0); break;
	case W_DELIV_UPD: err = roost_persist_delivery_update(p, "old", 1, 5, 1); break;
	case W_DELIV_DEL: err = roost_persist_delivery_remove(p, "old", 1, 1); break;
	case W_QOS2_ADD: err = roost_persist_qos2_set(p, "old", 8, true); break;
	case W_QOS2_DEL: err = roost_persist_qos2_set(p, "old", 7, false); break;
	case W_SPOOL_PUSH: err = roost_persist_spool_push(p, 5, "e", 1); break;
	case W_SPOOL_DEL: err = roost_persist_spool_remove(p, 1); break;
	case W_COUNTER: err = roost_persist_counter_set(p, "c", 2); break;
	}
	roost_msg_unref(gone);
	return err;
}

static const char stored_before[] = "R t/r=keep q1;S old;F old old/# 1;D old #1 t/d q1 p0 s0;Q old 7;P 1 e1;";

static void store_before(roost_persist *p)
{
	roost_msg *r = msg("t/r", "keep", 1, true), *d = msg("t/d", "d", 1, false);
	roost_persist_retain_set(p, r);
	roost_persist_session_add(p, "old");
	roost_persist_sub_set(p, "old", "old/#", 5, 1);
	roost_persist_delivery_add(p, "old", 1, d, 1, 0, 0);
	roost_persist_qos2_set(p, "old", 7, true);
	roost_persist_spool_push(p, 1, "e1", 2);
	roost_persist_counter_set(p, "c", 1);
	ck_assert_int_eq(roost_persist_commit(p), ROOST_OK);
	roost_msg_unref(r);
	roost_msg_unref(d);
}

/*
 * "Acknowledged means stored": a write that fails at statement time (here
 * another process holds the database's write lock, SQLITE_BUSY) is counted
 * as attempted, poisons the batch, and the commit rolls everything of it
 * back and fails; the next batch starts clean. Driven over every write path.
 */
START_TEST(test_persist_failed_write_poisons_batch)
{
	make_tmpdir();
	char path[128];
	snprintf(path, sizeof path, "%s/w.db", tmpdir);
	roost_persist *p;
	ck_assert_int_eq(roost_persist_open(path, ROOST_PERSIST_SYNC_NORMAL, &quiet, &p), ROOST_OK);
	store_before(p);
	on_dirty_calls = 0;
	roost_persist_set_on_dirty(p, count_dirty, NULL);
	int kind = _i;
	roost_msg *m = msg("t/r", "new", 1, true);
	sqlite3 *other;
	ck_assert_int_eq(sqlite3_open(path, &other), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	uint64_t w0 = roost_persist_writes(p);
	ck_assert_int_ne(write_kind(p, kind, m), ROOST_OK);
	ck_assert_uint_gt(roost_persist_writes(p), w0); /* counted although it failed */
	ck_assert(roost_persist_dirty(p));
	ck_assert_int_eq(on_dirty_calls, 1); /* the owner schedules a commit */
	ck_assert_int_eq(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	/* The lock is gone, but the batch stays poisoned: nothing more of it runs. */
	uint64_t w1 = roost_persist_writes(p);
	ck_assert_int_ne(roost_persist_session_add(p, "later"), ROOST_OK);
	ck_assert_uint_eq(roost_persist_writes(p), w1 + 1);
	ck_assert_int_eq(roost_persist_commit(p), ROOST_ERR_IO);
	ck_assert_uint_eq(roost_persist_stats_get(p)->commit_errors, 1);
	ck_assert(!roost_persist_dirty(p));
	loaded l;
	load_all(p, &l);
	ck_assert_str_eq(l.log, stored_before);
	ck_assert_uint_eq(roost_persist_counter_get(p, "c"), 1);
	/* The next batch is clean and the same write now succeeds. */
	ck_assert_int_eq(write_kind(p, kind, m), ROOST_OK);
	ck_assert_int_eq(roost_persist_commit(p), ROOST_OK);
	load_all(p, &l);
	if (kind != W_COUNTER)
		ck_assert_str_ne(l.log, stored_before);
	else
		ck_assert_uint_eq(roost_persist_counter_get(p, "c"), 2);
	sqlite3_close(other);
	roost_msg_unref(m);
	roost_persist_close(p);
	remove_tmpdir();
}
END_TEST

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	fclose(f);
}

/* Open a bad file: the broker must still get a working, empty store, the
 * bad file kept aside, and the loss counted. */
static void expect_moved_aside(const char *path)
{
	roost_persist *p;
	ck_assert_int_eq(roost_persist_open(path, ROOST_PERSIST_SYNC_NORMAL, &quiet, &p), ROOST_OK);
	ck_assert_uint_eq(roost_persist_stats_get(p)->moved_aside, 1);
	ck_assert_int_eq(count_files("bad.db.corrupt-"), 1);
	loaded l;
	load_all(p, &l);
	ck_assert_str_eq(l.log, "");
	roost_msg *r = msg("new", "ok", 0, true); /* and it works */
	ck_assert_int_eq(roost_persist_retain_set(p, r), ROOST_OK);
	ck_assert_int_eq(roost_persist_commit(p), ROOST_OK);
	roost_msg_unref(r);
	roost_persist_close(p);
}

START_TEST(test_persist_garbage_file_moved_aside)
{
	make_tmpdir();
	char path[128];
	snprintf(path, sizeof path, "%s/bad.db", tmpdir);
	char garbage[8192];
	for (size_t i = 0; i < sizeof garbage; i++)
		garbage[i] = (char)(i * 7 + 3);
	write_file(path, garbage, sizeof garbage);
	expect_moved_aside(path);
	remove_tmpdir();
}
END_TEST

START_TEST(test_persist_truncated_file_moved_aside)
{
	make_tmpdir();
	char path[128];
	snprintf(path, sizeof path, "%s/bad.db", tmpdir);
	roost_persist *p;
	ck_assert_int_eq(roost_persist_open(path, ROOST_PERSIST_SYNC_NORMAL, &quiet, &p), ROOST_OK);
	char big[4000];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = 0;
	for (int i = 0; i < 50; i++) {
		char t[16];
		snprintf(t, sizeof t, "t/%d", i);
		roost_msg *r = msg(t, big, 0, true);
		roost_persist_retain_set(p, r);
		roost_msg_unref(r);
	}
	roost_persist_close(p); /* checkpointed into the main file */
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(truncate(path, st.st_size / 3), 0);
	expect_moved_aside(path);
	remove_tmpdir();
}
END_TEST

/* A newer roost's file is refused, not moved aside: downgrading roost must
 * not cost the household its data. */
START_TEST(test_persist_newer_schema_refused_untouched)
{
	make_tmpdir();
	char path[128];
	snprintf(path, sizeof path, "%s/bad.db", tmpdir);
	sqlite3 *db;
	sqlite3_open(path, &db);
	sqlite3_exec(db, "CREATE TABLE future(x); INSERT INTO future VALUES (42); PRAGMA user_version = 99;", NULL,
	             NULL, NULL);
	sqlite3_close(db);
	struct stat before, after;
	ck_assert_int_eq(stat(path, &before), 0);
	char *file_before = slurp(path);
	captured cap = {0};
	roost_log log = capture_log(&cap);
	roost_persist *p = (roost_persist *)1;
	ck_assert_int_eq(roost_persist_open(path, ROOST_PERSIST_SYNC_NORMAL, &log, &p), ROOST_ERR_UNSUPPORTED);
	ck_assert_ptr_null(p);
	ck_assert_int_eq(count_files("bad.db.corrupt-"), 0);
	ck_assert_int_eq(stat(path, &after), 0);
	ck_assert_int_eq(before.st_size, after.st_size);
	char *file_after = slurp(path);
	ck_assert_mem_eq(file_before, file_after, (size_t)before.st_size);
	ck_assert_ptr_nonnull(strstr(cap.text, "newer roost"));
	ck_assert_ptr_null(strstr(cap.text, "STORE LOST"));
	free(file_before);
	free(file_after);
	remove_tmpdir();
}
END_TEST

START_TEST(test_persist_foreign_database_moved_aside)
{
	make_tmpdir();
	char path[128];
	snprintf(path, sizeof path, "%s/bad.db", tmpdir);
	sqlite3 *db;
	sqlite3_open(path, &db);
	sqlite3_exec(db, "CREATE TABLE photos(id, blob);", NULL, NULL, NULL);
	sqlite3_close(db);
	expect_moved_aside(path);
	remove_tmpdir();
}
END_TEST

START_TEST(test_persist_two_bad_starts_keep_both_files)
{
	make_tmpdir();
	char path[128];
	snprintf(path, sizeof path, "%s/bad.db", tmpdir);
	for (int i = 0; i < 2; i++) {
		write_file(path, "not a database, not at all, no", 30);
		roost_persist *p;
		ck_assert_int_eq(roost_persist_open(path, ROOST_PERSIST_SYNC_NORMAL, &quiet, &p), ROOST_OK);
		roost_persist_close(p);
	}
	ck_assert_int_eq(count_files("bad.db.corrupt-"), 2);
	remove_tmpdir();
}
END_TEST

START_TEST(test_persist_unusable_directory_is_an_error)
{
	roost_persist *p = NULL;
	ck_assert_int_eq(roost_persist_open("/nonexistent-dir/sub/roost.db", ROOST_PERSIST_SYNC_NORMAL, &quiet, &p),
	                 ROOST_ERR_IO);
	ck_assert_ptr_null(p);
}
END_TEST

/* Two starts of three on bad files: the count of lost databases is kept
 * beside the database, so it does not go back to 1 with each new file. */
START_TEST(test_persist_moved_aside_count_survives_losses)
{
	make_tmpdir();
	char path[128];
	snprintf(path, sizeof path, "%s/bad.db", tmpdir);
	roost_persist *p;
	for (int i = 1; i <= 3; i++) {
		write_file(path, "not a database, not at all, no", 30);
		ck_assert_int_eq(roost_persist_open(path, ROOST_PERSIST_SYNC_NORMAL, &quiet, &p), ROOST_OK);
		ck_assert_uint_eq(roost_persist_stats_get(p)->moved_aside, 1);
		ck_assert_uint_eq(roost_persist_stats_get(p)->moved_aside_total, (uint64_t)i);
		roost_persist_close(p);
	}
	ck_assert_int_eq(roost_persist_open(path, ROOST_PERSIST_SYNC_NORMAL, &quiet, &p), ROOST_OK);
	ck_assert_uint_eq(roost_persist_stats_get(p)->moved_aside, 0);
	ck_assert_uint_eq(roost_persist_stats_get(p)->moved_aside_total, 3);
	roost_persist_close(p);
	char state[160];
	snprintf(state, sizeof state, "%s.state", path);
	char *text = slurp(state);
	ck_assert_ptr_nonnull(strstr(text, "moved_aside=3\n"));
	free(text);
	remove_tmpdir();
}
END_TEST

/* A second roost on the same database is refused by the advisory lock
 * beside it, with the holder's pid; readers still work, and the lock goes
 * with the first store. */
START_TEST(test_persist_second_open_refused_by_lock)
{
	make_tmpdir();
	char path[128];
	snprintf(path, sizeof path, "%s/l.db", tmpdir);
	roost_persist *p, *q = (roost_persist *)1;
	ck_assert_int_eq(roost_persist_open(path, ROOST_PERSIST_SYNC_NORMAL, &quiet, &p), ROOST_OK);
	roost_persist_session_add(p, "a");
	roost_persist_commit(p);
	captured cap = {0};
	roost_log log = capture_log(&cap);
	ck_assert_int_eq(roost_persist_open(path, ROOST_PERSIST_SYNC_NORMAL, &log, &q), ROOST_ERR_EXISTS);
	ck_assert_ptr_null(q);
	char pid[32];
	snprintf(pid, sizeof pid, "pid %ld holds", (long)getpid());
	ck_assert_msg(strstr(cap.text, pid) && strstr(cap.text, "l.db.lock"), "%s", cap.text);
	ck_assert_int_eq(count_files("l.db.corrupt"), 0);
	/* A plain SQLite reader is not locked out (roost backup). */
	sqlite3 *db;
	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_stmt *st;
	ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM sessions", -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_int_eq(sqlite3_column_int(st, 0), 1);
	sqlite3_finalize(st);
	sqlite3_close(db);
	roost_persist_close(p);
	ck_assert_int_eq(roost_persist_open(path, ROOST_PERSIST_SYNC_NORMAL, &quiet, &q), ROOST_OK);
	roost_persist_close(q);
	remove_tmpdir();
}
END_TEST

/* The last run had data; now the file is gone (deleted, replaced): the
 * start is reported at error level, and roost still starts. */
START_TEST(test_persist_emptied_database_reported)
{
	make_tmpdir();
	char path[128];
	snprintf(path, sizeof path, "%s/e.db", tmpdir);
	roost_persist *p;
	ck_assert_int_eq(roost_persist_open(path, ROOST_PERSIST_SYNC_NORMAL, &quiet, &p), ROOST_OK);
	roost_persist_session_add(p, "a");
	roost_persist_close(p);
	unlink(path);
	captured cap = {0};
	roost_log log = capture_log(&cap);
	ck_assert_int_eq(roost_persist_open(path, ROOST_PERSIST_SYNC_NORMAL, &log, &p), ROOST_OK);
	ck_assert_msg(strstr(cap.text, "E|store") && strstr(cap.text, "is empty, but the last run had data"), "%s",
	              cap.text);
	roost_persist_close(p);
	/* Said once: the side file now knows it is empty. */
	memset(&cap, 0, sizeof cap);
	ck_assert_int_eq(roost_persist_open(path, ROOST_PERSIST_SYNC_NORMAL, &log, &p), ROOST_OK);
	ck_assert_ptr_null(strstr(cap.text, "is empty"));
	/* Roost's own $SYS messages are not data a user could miss. */
	roost_msg *sys = msg("$SYS/broker/store/moved_aside", "0", 0, true);
	roost_persist_retain_set(p, sys);
	roost_msg_unref(sys);
	roost_persist_close(p);
	char state[160];
	snprintf(state, sizeof state, "%s.state", path);
	char *text = slurp(state);
	ck_assert_ptr_nonnull(strstr(text, "had_data=0\n"));
	free(text);
	remove_tmpdir();
}
END_TEST

/* A -wal with content beside a missing main file: someone removed only the
 * database. Reported. */
START_TEST(test_persist_orphan_wal_reported)
{
	make_tmpdir();
	char path[128], wal[140];
	snprintf(path, sizeof path, "%s/w.db", tmpdir);
	snprintf(wal, sizeof wal, "%s-wal", path);
	write_file(wal, "leftover wal frames, not valid ones", 35);
	captured cap = {0};
	roost_log log = capture_log(&cap);
	roost_persist *p;
	ck_assert_int_eq(roost_persist_open(path, ROOST_PERSIST_SYNC_NORMAL, &log, &p), ROOST_OK);
	ck_assert_msg(strstr(cap.text, "E|store") && strstr(cap.text, "a -wal file with content"), "%s", cap.text);
	roost_persist_close(p);
	remove_tmpdir();
}
END_TEST

/* persistence.path names a directory: created when its parent exists. */
START_TEST(test_persist_missing_directory_created)
{
	make_tmpdir();
	char path[128];
	snprintf(path, sizeof path, "%s/state/roost.db", tmpdir);
	roost_persist *p;
	ck_assert_int_eq(roost_persist_open(path, ROOST_PERSIST_SYNC_NORMAL, &quiet, &p), ROOST_OK);
	roost_persist_close(p);
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);
	remove_tmpdir();
}
END_TEST

/* Mosquitto's persistence_location: a trailing slash or an existing
 * directory means roost.db inside it; relative paths follow systemd's
 * $STATE_DIRECTORY. */
START_TEST(test_persist_resolve_path_rules)
{
	make_tmpdir();
	char buf[256], want[256];
	unsetenv("STATE_DIRECTORY");
	ck_assert_int_eq(roost_persist_resolve_path(NULL, buf, sizeof buf), ROOST_OK);
	ck_assert_str_eq(buf, "roost.db");
	ck_assert_int_eq(roost_persist_resolve_dir("roost.db", buf, sizeof buf), ROOST_OK);
	ck_assert_str_eq(buf, ".");
	ck_assert_int_eq(roost_persist_resolve_path("/var/lib/roost/", buf, sizeof buf), ROOST_OK);
	ck_assert_str_eq(buf, "/var/lib/roost/roost.db");
	ck_assert_int_eq(roost_persist_resolve_path(tmpdir, buf, sizeof buf), ROOST_OK); /* exists */
	snprintf(want, sizeof want, "%s/roost.db", tmpdir);
	ck_assert_str_eq(buf, want);
	ck_assert_int_eq(roost_persist_resolve_dir(tmpdir, buf, sizeof buf), ROOST_OK);
	ck_assert_str_eq(buf, tmpdir);
	ck_assert_int_eq(roost_persist_resolve_path("/srv/x.db", buf, sizeof buf), ROOST_OK);
	ck_assert_str_eq(buf, "/srv/x.db");
	setenv("STATE_DIRECTORY", "/var/lib/roost:/var/lib/other", 1);
	ck_assert_int_eq(roost_persist_resolve_path("roost.db", buf, sizeof buf), ROOST_OK);
	ck_assert_str_eq(buf, "/var/lib/roost/roost.db");
	ck_assert_int_eq(roost_persist_resolve_dir(NULL, buf, sizeof buf), ROOST_OK);
	ck_assert_str_eq(buf, "/var/lib/roost");
	ck_assert_int_eq(roost_persist_resolve_path("/abs/r.db", buf, sizeof buf), ROOST_OK);
	ck_assert_str_eq(buf, "/abs/r.db");
	unsetenv("STATE_DIRECTORY");
	ck_assert_int_eq(roost_persist_resolve_path("roost.db", buf, 4), ROOST_ERR_TOO_LARGE);
	remove_tmpdir();
}
END_TEST

/* One roost_msg per message row after a restart, shared by every delivery
 * that refers to it, with its store_id set. */
static roost_msg *seen[8];
static int n_seen;
static void v_delivery_keep(void *ctx, const char *id, uint64_t seq, roost_msg *m, uint8_t qos, uint16_t pid,
                            uint8_t state, uint64_t store_id)
{
	(void)ctx, (void)id, (void)seq, (void)qos, (void)pid, (void)state;
	ck_assert_int_lt(n_seen, 8);
	ck_assert_ptr_nonnull(m);
	ck_assert_uint_eq(m->store_id, store_id);
	seen[n_seen++] = roost_msg_ref(m);
}

START_TEST(test_persist_load_shares_one_message_per_row)
{
	roost_persist *p;
	ck_assert_int_eq(roost_persist_open(":memory:", ROOST_PERSIST_SYNC_NORMAL, &quiet, &p), ROOST_OK);
	roost_msg *a = msg("t/a", "shared", 1, false), *b = msg("t/b", "other", 1, false);
	const char *ids[] = {"s1", "s2", "s3"};
	for (int i = 0; i < 3; i++) {
		roost_persist_session_add(p, ids[i]);
		roost_persist_delivery_add(p, ids[i], 1, a, 1, 0, 0);
	}
	roost_persist_delivery_add(p, "s1", 2, b, 1, 0, 0);
	ck_assert_int_eq(roost_persist_commit(p), ROOST_OK);
	roost_persist_visitor v = {.delivery = v_delivery_keep};
	n_seen = 0;
	ck_assert_int_eq(roost_persist_load(p, &v, NULL), ROOST_OK);
	ck_assert_int_eq(n_seen, 4);
	/* ORDER BY client_id, seq: s1#1 (a), s1#2 (b), s2#1 (a), s3#1 (a) */
	ck_assert_ptr_eq(seen[0], seen[2]);
	ck_assert_ptr_eq(seen[0], seen[3]);
	ck_assert_ptr_ne(seen[0], seen[1]);
	ck_assert_uint_eq(seen[0]->store_id, a->store_id);
	ck_assert_uint_eq(seen[1]->store_id, b->store_id);
	ck_assert_int_eq(seen[0]->refs, 3); /* only the deliveries hold it now */
	for (int i = 0; i < n_seen; i++)
		roost_msg_unref(seen[i]);
	roost_msg_unref(a);
	roost_msg_unref(b);
	roost_persist_close(p);
}
END_TEST

/* ---- a VFS that fails writes on purpose ----
 * Tests run as root, where file permissions prove nothing: this wrapper of
 * the default VFS makes xWrite fail (SQLITE_FULL, as a full disk does)
 * once shim_budget writes have succeeded. roost_persist_options.test_vfs
 * selects it. */
typedef struct shim_file {
	sqlite3_file base;
	sqlite3_file *real; /* follows this struct in the same allocation */
} shim_file;

static sqlite3_vfs *real_vfs;
static long shim_budget = -1; /* writes left before failing; -1 = never fail */
static long shim_failures;

#define REAL(f) (((shim_file *)(f))->real)
static int shim_close(sqlite3_file *f) { return REAL(f)->pMethods->xClose(REAL(f)); }
static int shim_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o) { return REAL(f)->pMethods->xRead(REAL(f), b, n, o); }
static int shim_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
{
	if (shim_budget == 0) {
		shim_failures++;
		return SQLITE_FULL;
	}
	if (shim_budget > 0)
		shim_budget--;
	return REAL(f)->pMethods->xWrite(REAL(f), b, n, o);
}
static int shim_truncate(sqlite3_file *f, sqlite3_int64 n) { return REAL(f)->pMethods->xTruncate(REAL(f), n); }
static int shim_sync(sqlite3_file *f, int fl) { return REAL(f)->pMethods->xSync(REAL(f), fl); }
static int shim_size(sqlite3_file *f, sqlite3_int64 *n) { return REAL(f)->pMethods->xFileSize(REAL(f), n); }
static int shim_lock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int shim_unlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int shim_reserved(sqlite3_file *f, int *r) { return REAL(f)->pMethods->xCheckReservedLock(REAL(f), r); }
static int shim_fcntl(sqlite3_file *f, int op, void *a) { return REAL(f)->pMethods->xFileControl(REAL(f), op, a); }
static int shim_sector(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int shim_devchar(sqlite3_file *f) { return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f)); }
static int shim_shmmap(sqlite3_file *f, int i, int sz, int e, void volatile **pp) { return REAL(f)->pMethods->xShmMap(REAL(f), i, sz, e, pp); }
static int shim_shmlock(sqlite3_file *f, int o, int n, int fl) { return REAL(f)->pMethods->xShmLock(REAL(f), o, n, fl); }
static void shim_shmbarrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int shim_shmunmap(sqlite3_file *f, int del) { return REAL(f)->pMethods->xShmUnmap(REAL(f), del); }

static const sqlite3_io_methods shim_io = {
	2, shim_close, shim_read, shim_write, shim_truncate, shim_sync, shim_size, shim_lock, shim_unlock,
	shim_reserved, shim_fcntl, shim_sector, shim_devchar, shim_shmmap, shim_shmlock, shim_shmbarrier,
	shim_shmunmap, NULL, NULL,
};

static int shim_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out)
{
	(void)vfs;
	shim_file *sf = (shim_file *)f;
	sf->real = (sqlite3_file *)(sf + 1);
	int rc = real_vfs->xOpen(real_vfs, name, sf->real, flags, out);
	f->pMethods = rc == SQLITE_OK && sf->real->pMethods ? &shim_io : NULL;
	return rc;
}

static sqlite3_vfs shim_vfs;

static void shim_register(void)
{
	if (real_vfs)
		return;
	real_vfs = sqlite3_vfs_find(NULL);
	shim_vfs = *real_vfs;
	shim_vfs.zName = "roost-test-failwrite";
	shim_vfs.szOsFile = (int)sizeof(shim_file) + real_vfs->szOsFile;
	shim_vfs.xOpen = shim_open;
	ck_assert_int_eq(sqlite3_vfs_register(&shim_vfs, 0), SQLITE_OK);
}

static roost_persist *open_shim(const char *path)
{
	shim_register();
	shim_budget = -1;
	shim_failures = 0;
	roost_persist_options o = {.path = path, .log = &quiet, .test_vfs = "roost-test-failwrite"};
	roost_persist *p;
	ck_assert_int_eq(roost_persist_open_ex(&o, &p), ROOST_OK);
	return p;
}

/* Disk full at statement time: a message too big for the page cache spills
 * to the WAL inside the INSERT, which fails. The batch's earlier, successful
 * writes are rolled back with it, and the next batch is clean. */
START_TEST(test_persist_vfs_write_fails_at_statement_time)
{
	make_tmpdir();
	char path[128];
	snprintf(path, sizeof path, "%s/v.db", tmpdir);
	roost_persist *p = open_shim(path);
	ck_assert_int_eq(roost_persist_session_add(p, "before"), ROOST_OK);
	ck_assert_int_eq(roost_persist_commit(p), ROOST_OK);
	ck_assert_int_eq(roost_persist_session_add(p, "early"), ROOST_OK); /* same batch as the failure */
	size_t big = 8u << 20;
	char *payload = malloc(big + 1);
	memset(payload, 'p', big);
	payload[big] = 0;
	roost_msg *m = msg("big", payload, 1, true);
	free(payload);
	shim_budget = 0;
	uint64_t w0 = roost_persist_writes(p);
	ck_assert_int_ne(roost_persist_retain_set(p, m), ROOST_OK);
	ck_assert_uint_gt(shim_failures, 0);
	ck_assert_uint_eq(roost_persist_writes(p), w0 + 1);
	shim_budget = -1;
	ck_assert_int_eq(roost_persist_commit(p), ROOST_ERR_IO);
	ck_assert_int_eq(roost_persist_session_add(p, "after"), ROOST_OK);
	ck_assert_int_eq(roost_persist_commit(p), ROOST_OK);
	roost_persist_close(p);
	ck_assert_int_eq(roost_persist_open(path, ROOST_PERSIST_SYNC_NORMAL, &quiet, &p), ROOST_OK);
	loaded l;
	load_all(p, &l);
	ck_assert_str_eq(l.log, "S after;S before;");
	roost_persist_close(p);
	roost_msg_unref(m);
	remove_tmpdir();
}
END_TEST

/*
 * The Nth write to the files fails (N = 0..): whatever N, every batch whose
 * commit returned OK is in the database after a reopen and no batch whose
 * commit failed is — the contract the broker's acknowledgements rest on.
 */
START_TEST(test_persist_vfs_nth_write_fails_committed_means_stored)
{
	make_tmpdir();
	char path[128];
	snprintf(path, sizeof path, "%s/n.db", tmpdir);
	roost_persist *p = open_shim(path);
	roost_persist_session_add(p, "setup");
	ck_assert_int_eq(roost_persist_commit(p), ROOST_OK);
	shim_budget = _i;
	bool ok[6];
	int n_ok = 0;
	for (int i = 0; i < 6; i++) {
		char id[8], body[2100];
		snprintf(id, sizeof id, "b%d", i);
		memset(body, 'a' + i, sizeof body - 1);
		body[sizeof body - 1] = 0;
		roost_persist_session_add(p, id);
		roost_persist_spool_push(p, (uint64_t)i + 1, body, strlen(body)); /* spans pages */
		ok[i] = roost_persist_commit(p) == ROOST_OK;
		n_ok += ok[i];
	}
	shim_budget = -1;
	roost_persist_close(p);
	ck_assert_int_eq(roost_persist_open(path, ROOST_PERSIST_SYNC_NORMAL, &quiet, &p), ROOST_OK);
	loaded l;
	load_all(p, &l);
	for (int i = 0; i < 6; i++) {
		char want[16];
		snprintf(want, sizeof want, "S b%d;", i);
		ck_assert_msg((strstr(l.log, want) != NULL) == ok[i], "N=%d batch %d committed=%d, stored: %s", _i, i,
		              ok[i], l.log);
	}
	if (_i < 3)
		ck_assert_int_lt(n_ok, 6); /* the failure really hit a batch */
	roost_persist_close(p);
	remove_tmpdir();
}
END_TEST

/* The store's filesystem passes 90 % full: one warning per crossing,
 * checked at commit at most once a minute (fake clock). Needs a small
 * filesystem of its own: a tmpfs, where mounting works. */
static int count_lines(const char *text, const char *needle)
{
	int n = 0;
	for (const char *t = text; (t = strstr(t, needle)); t++)
		n++;
	return n;
}

static void commit_at(roost_persist *p, uint64_t *now, uint64_t advance)
{
	static int n;
	char id[16];
	*now += advance;
	snprintf(id, sizeof id, "s%d", n++);
	ck_assert_int_eq(roost_persist_session_add(p, id), ROOST_OK);
	ck_assert_int_eq(roost_persist_commit(p), ROOST_OK);
}

START_TEST(test_persist_disk_90_percent_warned_once_per_crossing)
{
	make_tmpdir();
	char fs[128], path[160], filler[160];
	snprintf(fs, sizeof fs, "%s/fs", tmpdir);
	ck_assert_int_eq(mkdir(fs, 0700), 0);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "mount -t tmpfs -o size=8m roost-test %s 2>/dev/null", fs);
	if (system(cmd) != 0) {
		fprintf(stderr, "check_persist: cannot mount a tmpfs here; the 90 %% warning is not exercised\n");
		remove_tmpdir();
		return;
	}
	snprintf(path, sizeof path, "%s/roost.db", fs);
	snprintf(filler, sizeof filler, "%s/filler", fs);
	uint64_t now = 1000;
	roost_clock clock = {roost_clock_fake_now, &now};
	captured cap = {0};
	roost_log log = capture_log(&cap);
	roost_persist_options o = {.path = path, .log = &log, .clock = &clock};
	roost_persist *p;
	ck_assert_int_eq(roost_persist_open_ex(&o, &p), ROOST_OK);
	commit_at(p, &now, 0); /* first check: nearly empty */
	ck_assert_int_eq(count_lines(cap.text, "% full"), 0);
	static char block[64 * 1024];
	FILE *f = fopen(filler, "wb");
	for (int i = 0; i < 7 * 16 + 8; i++) /* 7.5 MiB of 8 */
		ck_assert_uint_eq(fwrite(block, 1, sizeof block, f), sizeof block);
	fclose(f);
	commit_at(p, &now, 1000); /* within the minute: not checked yet */
	ck_assert_int_eq(count_lines(cap.text, "% full"), 0);
	commit_at(p, &now, ROOST_PERSIST_CHECK_MS);
	ck_assert_int_eq(count_lines(cap.text, "filesystem is 9"), 1);
	commit_at(p, &now, ROOST_PERSIST_CHECK_MS); /* still full: no second line */
	commit_at(p, &now, ROOST_PERSIST_CHECK_MS);
	ck_assert_int_eq(count_lines(cap.text, "% full"), 1);
	unlink(filler);
	commit_at(p, &now, ROOST_PERSIST_CHECK_MS);
	ck_assert_int_eq(count_lines(cap.text, "is back to"), 1);
	roost_persist_close(p);
	snprintf(cmd, sizeof cmd, "umount %s", fs);
	ck_assert_int_eq(system(cmd), 0);
	remove_tmpdir();
}
END_TEST

/* A file as roost 1 (schema version 1) wrote it, made here with that
 * version's DDL: retained message, session, and the lost-database count
 * that v1 kept inside the file. */
static const char v1_file[] =
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
	"PRAGMA user_version = 1;"
	"INSERT INTO retained VALUES (CAST('home/a' AS BLOB), 1, CAST('on' AS BLOB), NULL);"
	"INSERT INTO sessions VALUES ('dev1');"
	"INSERT INTO counters VALUES ('store_moved_aside', 2);";

static int pragma_int(const char *path, const char *sql)
{
	sqlite3 *db;
	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_stmt *st;
	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	int v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* Upgrading from version 1: a copy of the file as it was is taken first
 * (roost.db.pre-v3, via roost_persist_backup), the count of lost databases
 * moves from the file to the side file, and the data is all there. */
START_TEST(test_persist_migration_from_v1_copies_the_file_first)
{
	make_tmpdir();
	char path[128], copy[160];
	snprintf(path, sizeof path, "%s/m.db", tmpdir);
	snprintf(copy, sizeof copy, "%s.pre-v%d", path, ROOST_PERSIST_SCHEMA_VERSION);
	sqlite3 *db;
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, v1_file, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	roost_persist *p;
	ck_assert_int_eq(roost_persist_open(path, ROOST_PERSIST_SYNC_NORMAL, &quiet, &p), ROOST_OK);
	ck_assert_uint_eq(roost_persist_stats_get(p)->moved_aside_total, 2);
	ck_assert_uint_eq(roost_persist_counter_get(p, "store_moved_aside"), 0); /* gone from the file */
	loaded l;
	load_all(p, &l);
	ck_assert_str_eq(l.log, "R home/a=on q1;S dev1;");
	roost_persist_close(p);
	ck_assert_int_eq(pragma_int(path, "PRAGMA user_version"), ROOST_PERSIST_SCHEMA_VERSION);
	/* A session written before owners were kept is not given one. */
	ck_assert_int_eq(pragma_int(path, "SELECT owner_known FROM sessions"), 0);
	/* The copy is version 1 with everything in it. */
	ck_assert_int_eq(pragma_int(copy, "PRAGMA user_version"), 1);
	ck_assert_int_eq(pragma_int(copy, "SELECT value FROM counters WHERE name = 'store_moved_aside'"), 2);
	ck_assert_int_eq(pragma_int(copy, "SELECT count(*) FROM retained"), 1);
	ck_assert_int_eq(pragma_int(copy, "SELECT count(*) FROM sessions"), 1);
	/* Reopening: nothing more to migrate, the count stays. */
	ck_assert_int_eq(roost_persist_open(path, ROOST_PERSIST_SYNC_NORMAL, &quiet, &p), ROOST_OK);
	ck_assert_uint_eq(roost_persist_stats_get(p)->moved_aside_total, 2);
	roost_persist_close(p);
	remove_tmpdir();
}
END_TEST

/* A persistent session's owner survives a restart, anonymous included;
 * one whose owner was never recorded comes back without one. */
START_TEST(test_persist_session_owner_round_trip)
{
	make_tmpdir();
	char path[128];
	snprintf(path, sizeof path, "%s/o.db", tmpdir);
	roost_persist *p;
	ck_assert_int_eq(roost_persist_open(path, ROOST_PERSIST_SYNC_NORMAL, &quiet, &p), ROOST_OK);
	ck_assert_int_eq(roost_persist_session_add(p, "a"), ROOST_OK);
	ck_assert_int_eq(roost_persist_session_set_owner(p, "a", "alice"), ROOST_OK);
	ck_assert_int_eq(roost_persist_session_add(p, "b"), ROOST_OK);
	ck_assert_int_eq(roost_persist_session_set_owner(p, "b", NULL), ROOST_OK);
	ck_assert_int_eq(roost_persist_session_add(p, "c"), ROOST_OK);
	ck_assert_int_eq(roost_persist_commit(p), ROOST_OK);
	roost_persist_close(p);
	ck_assert_int_eq(roost_persist_open(path, ROOST_PERSIST_SYNC_NORMAL, &quiet, &p), ROOST_OK);
	loaded l;
	load_all(p, &l);
	ck_assert_str_eq(l.log, "S a;O a alice;S b;O b (anonymous);S c;");
	roost_persist_close(p);
	remove_tmpdir();
}
END_TEST

/* Another application's SQLite file with a user_version of its own is not
 * mistaken for a roost store: moved aside, like any foreign file. */
START_TEST(test_persist_other_application_id_moved_aside)
{
	make_tmpdir();
	char path[128];
	snprintf(path, sizeof path, "%s/bad.db", tmpdir);
	sqlite3 *db;
	sqlite3_open(path, &db);
	sqlite3_exec(db, "PRAGMA application_id = 12345; PRAGMA user_version = 1;", NULL, NULL, NULL);
	sqlite3_close(db);
	expect_moved_aside(path);
	remove_tmpdir();
}
END_TEST

Suite *persist_suite(void);
Suite *persist_suite(void)
{
	Suite *s = suite_create("persist");
	TCase *valid = tcase_create("valid");
	tcase_add_test(valid, test_persist_round_trip);
	tcase_add_test(valid, test_persist_session_owner_round_trip);
	tcase_add_test(valid, test_persist_group_commit_batches);
	tcase_add_test(valid, test_persist_message_rows_released_with_last_delivery);
	tcase_add_test(valid, test_persist_survives_reopen);
	tcase_add_test(valid, test_persist_load_shares_one_message_per_row);
	suite_add_tcase(s, valid);
	TCase *fail = tcase_create("write_failures");
	tcase_add_loop_test(fail, test_persist_failed_write_poisons_batch, 0, W_KINDS);
	tcase_add_test(fail, test_persist_vfs_write_fails_at_statement_time);
	tcase_add_loop_test(fail, test_persist_vfs_nth_write_fails_committed_means_stored, 0, 12);
	suite_add_tcase(s, fail);
	TCase *bad = tcase_create("malformed");
	tcase_add_test(bad, test_persist_garbage_file_moved_aside);
	tcase_add_test(bad, test_persist_truncated_file_moved_aside);
	tcase_add_test(bad, test_persist_newer_schema_refused_untouched);
	tcase_add_test(bad, test_persist_foreign_database_moved_aside);
	tcase_add_test(bad, test_persist_two_bad_starts_keep_both_files);
	tcase_add_test(bad, test_persist_unusable_directory_is_an_error);
	tcase_add_test(bad, test_persist_moved_aside_count_survives_losses);
	tcase_add_test(bad, test_persist_second_open_refused_by_lock);
	tcase_add_test(bad, test_persist_emptied_database_reported);
	tcase_add_test(bad, test_persist_orphan_wal_reported);
	tcase_add_test(bad, test_persist_missing_directory_created);
	tcase_add_test(bad, test_persist_resolve_path_rules);
	tcase_add_test(bad, test_persist_disk_90_percent_warned_once_per_crossing);
	tcase_add_test(bad, test_persist_migration_from_v1_copies_the_file_first);
	tcase_add_test(bad, test_persist_other_application_id_moved_aside);
	suite_add_tcase(s, bad);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(persist_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
