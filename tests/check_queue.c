/*
 * check_queue.c — a component's durable queue (roost/queue.h, broker/queue.c):
 * order, peek after a seq, ack up to a seq, the bound (oldest dropped first,
 * counted), memory only without persistence, and what survives a reopen of
 * the store: the entries, their numbers, numbers never reused, a lowered
 * bound. Appends join the broker's open transaction (the group commit).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "roost/alloc.h"
#include "roost/broker.h"
#include "roost/daemon.h"
#include "roost/persist.h"
#include "roost/queue.h"

typedef struct fixture {
	struct event_base *base;
	roost_config *cfg;
	roost_broker *b;
	roost_log log;
} fixture;

static char tmpdir[64];

/* A broker with its store at path (NULL: persistence off). */
static void broker_up(fixture *f, const char *path)
{
	memset(f, 0, sizeof *f);
	f->base = event_base_new();
	ck_assert_int_eq(roost_config_defaults(&f->cfg), ROOST_OK);
	f->cfg->persistence.enabled = path != NULL;
	if (path) {
		roost_free(f->cfg->persistence.path);
		f->cfg->persistence.path = roost_strdup(path);
	}
	f->log = (roost_log){.level = ROOST_LOG_ERROR};
	f->b = roost_broker_new(f->base, f->cfg, &f->log, roost_clock_system());
	ck_assert_ptr_nonnull(f->b);
	ck_assert_int_eq(roost_broker_open_store(f->b), ROOST_OK);
}

static void broker_down(fixture *f)
{
	roost_broker_free(f->b); /* commits what is pending */
	roost_config_free(f->cfg);
	event_base_free(f->base);
}

static char *db_path(void)
{
	static char path[128];
	snprintf(tmpdir, sizeof tmpdir, "/tmp/check_queue.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(path, sizeof path, "%s/q.db", tmpdir);
	return path;
}

static void rm_tmpdir(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

static void append_str(roost_queue *q, const char *s, uint64_t want_seq)
{
	uint64_t seq = 0;
	ck_assert_int_eq(roost_queue_append(q, s, strlen(s), &seq, NULL), ROOST_OK);
	ck_assert_uint_eq(seq, want_seq);
}

/* "seq:body,seq:body" of everything in q. */
static const char *contents(const roost_queue *q)
{
	static char out[512];
	roost_queue_item it[32];
	size_t n = roost_queue_peek(q, 0, it, 32);
	out[0] = 0;
	for (size_t i = 0; i < n; i++)
		snprintf(out + strlen(out), sizeof out - strlen(out), "%s%llu:%.*s", i ? "," : "",
		         (unsigned long long)it[i].seq, (int)it[i].len, (const char *)it[i].body);
	return out;
}

START_TEST(test_queue_order_peek_after_and_ack)
{
	roost_queue *q = roost_queue_new_memory(10);
	append_str(q, "a", 1);
	append_str(q, "b", 2);
	append_str(q, "c", 3);
	ck_assert_str_eq(contents(q), "1:a,2:b,3:c");
	roost_queue_item it[4];
	ck_assert_uint_eq(roost_queue_peek(q, 1, it, 4), 2); /* after seq 1 */
	ck_assert_uint_eq(it[0].seq, 2);
	ck_assert_str_eq(it[1].body, "c"); /* NUL-terminated copy */
	ck_assert_uint_eq(roost_queue_peek(q, 0, it, 1), 1); /* at most n */
	ck_assert_int_eq(roost_queue_ack(q, 2), ROOST_OK);
	ck_assert_str_eq(contents(q), "3:c");
	ck_assert_int_eq(roost_queue_ack(q, 2), ROOST_OK); /* again: nothing */
	ck_assert_uint_eq(roost_queue_count(q), 1);
	ck_assert(!roost_queue_durable(q));
	roost_queue_close(q);
}
END_TEST

START_TEST(test_queue_full_drops_oldest_and_counts)
{
	roost_queue *q = roost_queue_new_memory(2);
	append_str(q, "a", 1);
	append_str(q, "b", 2);
	bool dropped = false;
	uint64_t seq;
	ck_assert_int_eq(roost_queue_append(q, "c", 1, &seq, &dropped), ROOST_OK);
	ck_assert(dropped);
	ck_assert_uint_eq(seq, 3);
	ck_assert_str_eq(contents(q), "2:b,3:c");
	ck_assert_uint_eq(roost_queue_dropped(q), 1);
	ck_assert_uint_eq(roost_queue_max(q), 2);
	roost_queue_close(q);
}
END_TEST

START_TEST(test_queue_bad_name_or_bound)
{
	fixture f;
	broker_up(&f, NULL);
	roost_queue *q = (roost_queue *)&f; /* must be reset */
	ck_assert_int_eq(roost_broker_queue_open(f.b, "", 5, &q), ROOST_ERR_INVALID);
	ck_assert_ptr_null(q);
	ck_assert_int_eq(roost_broker_queue_open(f.b, "a b", 5, &q), ROOST_ERR_INVALID);
	ck_assert_int_eq(roost_broker_queue_open(f.b, "ok", 0, &q), ROOST_ERR_INVALID);
	ck_assert_ptr_null(roost_queue_new_memory(0));
	broker_down(&f);
}
END_TEST

/* Persistence off: the queue works, in memory, and a new broker has none of it. */
START_TEST(test_queue_memory_only_without_store)
{
	fixture f;
	broker_up(&f, NULL);
	roost_queue *q;
	ck_assert_int_eq(roost_broker_queue_open(f.b, "bridge-x", 5, &q), ROOST_OK);
	ck_assert(!roost_queue_durable(q));
	append_str(q, "m1", 1);
	ck_assert_str_eq(contents(q), "1:m1");
	roost_queue_close(q);
	broker_down(&f);
}
END_TEST

/* Appends join the broker's open batch (its group commit), and a reopened
 * store gives the entries back with their numbers; numbers go on from the
 * last one; queues of other names are apart. */
START_TEST(test_queue_survives_reopen_and_joins_the_batch)
{
	char *path = db_path();
	fixture f;
	broker_up(&f, path);
	roost_persist *store = roost_broker_service_find(f.b, "store");
	ck_assert_ptr_nonnull(store);
	roost_queue *q, *other;
	ck_assert_int_eq(roost_broker_queue_open(f.b, "bridge-up", 100, &q), ROOST_OK);
	ck_assert_int_eq(roost_broker_queue_open(f.b, "hub", 100, &other), ROOST_OK);
	ck_assert(roost_queue_durable(q));
	uint64_t w = roost_persist_writes(store);
	append_str(q, "one", 1);
	ck_assert_uint_gt(roost_persist_writes(store), w); /* the caller's handling wrote */
	ck_assert(roost_persist_dirty(store));            /* waits for the group commit */
	append_str(q, "two", 2);
	append_str(q, "three", 3);
	append_str(other, "hub-event", 1);
	ck_assert_int_eq(roost_queue_ack(q, 1), ROOST_OK);
	roost_queue_close(q);
	roost_queue_close(other);
	broker_down(&f);

	broker_up(&f, path);
	ck_assert_int_eq(roost_broker_queue_open(f.b, "bridge-up", 100, &q), ROOST_OK);
	ck_assert_str_eq(contents(q), "2:two,3:three");
	append_str(q, "four", 4);
	ck_assert_int_eq(roost_queue_ack(q, 4), ROOST_OK);
	roost_queue_close(q);
	broker_down(&f);

	broker_up(&f, path);
	ck_assert_int_eq(roost_broker_queue_open(f.b, "bridge-up", 100, &q), ROOST_OK);
	ck_assert_uint_eq(roost_queue_count(q), 0);
	append_str(q, "five", 5); /* never reused: acked rows leave no hole in the numbering */
	ck_assert_int_eq(roost_broker_queue_open(f.b, "hub", 100, &other), ROOST_OK);
	ck_assert_str_eq(contents(other), "1:hub-event");
	roost_queue_close(other);
	roost_queue_close(q);
	broker_down(&f);
	rm_tmpdir();
}
END_TEST

/* A bound lowered across a restart keeps the newest entries; the oldest are
 * dropped from the store as well (counted), and a drop while running
 * removes the row too. */
START_TEST(test_queue_lowered_bound_and_drops_are_stored)
{
	char *path = db_path();
	fixture f;
	broker_up(&f, path);
	roost_queue *q;
	ck_assert_int_eq(roost_broker_queue_open(f.b, "b", 4, &q), ROOST_OK);
	for (int i = 1; i <= 5; i++) {
		char s[8];
		snprintf(s, sizeof s, "m%d", i);
		append_str(q, s, (uint64_t)i);
	}
	ck_assert_uint_eq(roost_queue_dropped(q), 1);
	roost_queue_close(q);
	broker_down(&f);

	broker_up(&f, path);
	ck_assert_int_eq(roost_broker_queue_open(f.b, "b", 2, &q), ROOST_OK);
	ck_assert_str_eq(contents(q), "4:m4,5:m5");
	ck_assert_uint_eq(roost_queue_dropped(q), 2);
	roost_queue_close(q);
	broker_down(&f);

	broker_up(&f, path);
	ck_assert_int_eq(roost_broker_queue_open(f.b, "b", 10, &q), ROOST_OK);
	ck_assert_str_eq(contents(q), "4:m4,5:m5"); /* the rows went, not only the memory */
	roost_queue_close(q);
	broker_down(&f);
	rm_tmpdir();
}
END_TEST

static Suite *queue_suite(void)
{
	Suite *s = suite_create("queue");
	TCase *t = tcase_create("memory");
	tcase_add_test(t, test_queue_order_peek_after_and_ack);
	tcase_add_test(t, test_queue_full_drops_oldest_and_counts);
	tcase_add_test(t, test_queue_bad_name_or_bound);
	tcase_add_test(t, test_queue_memory_only_without_store);
	suite_add_tcase(s, t);
	t = tcase_create("durable");
	tcase_add_test(t, test_queue_survives_reopen_and_joins_the_batch);
	tcase_add_test(t, test_queue_lowered_bound_and_drops_are_stored);
	tcase_set_timeout(t, 30);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *r = srunner_create(queue_suite());
	srunner_run_all(r, CK_NORMAL);
	int failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
