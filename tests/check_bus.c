/* check_bus.c — the event bus: ordering, filtering by type, removal. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "roost/alloc.h"
#include "roost/bus.h"

typedef struct rec {
	char log[512];
	roost_bus *bus;
	roost_bus_listener *self;
} rec;

static void record(void *ctx, const roost_event *ev)
{
	rec *r = ctx;
	size_t n = strlen(r->log);
	snprintf(r->log + n, sizeof r->log - n, "%s:%s:%s:%llu;", ev->type, ev->data_json, ev->origin,
	         (unsigned long long)ev->time_fired_ms);
}

static void record_and_leave(void *ctx, const roost_event *ev)
{
	rec *r = ctx;
	record(r, ev);
	roost_bus_unlisten(r->bus, r->self);
}

START_TEST(test_bus_dispatch_in_order_and_by_type)
{
	roost_bus *bus = roost_bus_new();
	rec all = {0}, only_a = {0};
	ck_assert_int_eq(roost_bus_listen(bus, NULL, record, &all, NULL), ROOST_OK);
	ck_assert_int_eq(roost_bus_listen(bus, "a", record, &only_a, NULL), ROOST_OK);
	roost_bus_fire(bus, "a", "{\"n\":1}", NULL, 5);
	roost_bus_fire(bus, "b", "{\"n\":2}", "REMOTE", 6);
	roost_bus_fire(bus, "a", "{}", "LOCAL", 7);
	ck_assert_str_eq(all.log, "a:{\"n\":1}:LOCAL:5;b:{\"n\":2}:REMOTE:6;a:{}:LOCAL:7;");
	ck_assert_str_eq(only_a.log, "a:{\"n\":1}:LOCAL:5;a:{}:LOCAL:7;");
	ck_assert_uint_eq(roost_bus_fired(bus), 3);
	roost_bus_free(bus);
}
END_TEST

START_TEST(test_bus_time_defaults_to_now)
{
	roost_bus *bus = roost_bus_new();
	rec r = {0};
	roost_bus_listen(bus, NULL, record, &r, NULL);
	roost_bus_fire(bus, "t", "{}", NULL, 0);
	unsigned long long ms = strtoull(strrchr(r.log, ':') + 1, NULL, 10);
	ck_assert_uint_gt(ms, 1700000000000ULL); /* a Unix time in ms, not 0 */
	roost_bus_free(bus);
}
END_TEST

START_TEST(test_bus_listener_may_remove_itself_during_dispatch)
{
	roost_bus *bus = roost_bus_new();
	rec once = {0}, after = {0};
	once.bus = bus;
	ck_assert_int_eq(roost_bus_listen(bus, NULL, record_and_leave, &once, &once.self), ROOST_OK);
	roost_bus_listen(bus, NULL, record, &after, NULL);
	roost_bus_fire(bus, "x", "{}", NULL, 1);
	roost_bus_fire(bus, "y", "{}", NULL, 2);
	ck_assert_str_eq(once.log, "x:{}:LOCAL:1;");
	ck_assert_str_eq(after.log, "x:{}:LOCAL:1;y:{}:LOCAL:2;");
	roost_bus_free(bus);
}
END_TEST

START_TEST(test_bus_unlisten_outside_dispatch)
{
	roost_bus *bus = roost_bus_new();
	rec r = {0};
	roost_bus_listener *l;
	roost_bus_listen(bus, "a", record, &r, &l);
	roost_bus_unlisten(bus, l);
	roost_bus_fire(bus, "a", "{}", NULL, 1);
	ck_assert_str_eq(r.log, "");
	/* A listener added after the removal still works (tail is right). */
	roost_bus_listen(bus, "a", record, &r, NULL);
	roost_bus_fire(bus, "a", "{}", NULL, 2);
	ck_assert_str_eq(r.log, "a:{}:LOCAL:2;");
	roost_bus_free(bus);
}
END_TEST

START_TEST(test_bus_alloc_failure)
{
	roost_bus *bus = roost_bus_new();
	rec r = {0};
	roost_alloc_fail_after(1);
	ck_assert_int_eq(roost_bus_listen(bus, NULL, record, &r, NULL), ROOST_ERR_NOMEM);
	roost_alloc_fail_after(2);
	ck_assert_int_eq(roost_bus_listen(bus, "typed", record, &r, NULL), ROOST_ERR_NOMEM);
	roost_alloc_fail_after(0);
	roost_bus_fire(bus, "typed", "{}", NULL, 1);
	ck_assert_str_eq(r.log, "");
	roost_bus_free(bus);
}
END_TEST

Suite *bus_suite(void);
Suite *bus_suite(void)
{
	Suite *s = suite_create("bus");
	TCase *valid = tcase_create("valid");
	tcase_add_test(valid, test_bus_dispatch_in_order_and_by_type);
	tcase_add_test(valid, test_bus_time_defaults_to_now);
	suite_add_tcase(s, valid);
	TCase *life = tcase_create("lifetime");
	tcase_add_test(life, test_bus_listener_may_remove_itself_during_dispatch);
	tcase_add_test(life, test_bus_unlisten_outside_dispatch);
	tcase_add_test(life, test_bus_alloc_failure);
	suite_add_tcase(s, life);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(bus_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
