/*
 * check_sys.c — the $SYS tree: the load-average arithmetic, and the values
 * a broker on a fake clock publishes.
 */
#include "config.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <event2/event.h>

#include "../broker/internal.h"
#include "../broker/sys.h"
#include "roost/alloc.h"

/* ---- the arithmetic ---- */

/* 60 events a minute for an hour, looked at every 10 s: the 1 minute
 * average is 60, the 15 minute one close to it (1 - e^-4 of the way). */
START_TEST(test_load_constant_rate_converges)
{
	broker_sys_load l = {{0}, 0};
	uint64_t count = 0;
	for (int i = 0; i < 360; i++) {
		count += 10;
		broker_sys_load_update(&l, count, 10000);
	}
	ck_assert_double_eq_tol(l.avg[0], 60.0, 1e-6);
	ck_assert_double_eq_tol(l.avg[1], 60.0 * (1 - exp(-12.0)), 1e-6);
	ck_assert_double_eq_tol(l.avg[2], 60.0 * (1 - exp(-4.0)), 1e-6);
	ck_assert_uint_eq(l.count, 3600);
}
END_TEST

/* Decay over elapsed time, not per sample: six updates 10 s apart give
 * what one update after 60 s gives, so nobody needs to sample on a timer. */
START_TEST(test_load_independent_of_how_often_it_is_computed)
{
	broker_sys_load a = {{120, 30, 7}, 1000}, b = a;
	for (int i = 1; i <= 6; i++)
		broker_sys_load_update(&a, 1000 + 50 * (uint64_t)i, 10000);
	broker_sys_load_update(&b, 1300, 60000);
	for (int p = 0; p < BROKER_SYS_LOAD_PERIODS; p++)
		ck_assert_double_eq_tol(a.avg[p], b.avg[p], 1e-9);
}
END_TEST

/* No events for a minute: each average keeps exp(-60 s / period). */
START_TEST(test_load_decays_by_elapsed_time)
{
	broker_sys_load l = {{60, 60, 60}, 500};
	broker_sys_load_update(&l, 500, 60000);
	ck_assert_double_eq_tol(l.avg[0], 60.0 * exp(-1.0), 1e-9);
	ck_assert_double_eq_tol(l.avg[1], 60.0 * exp(-0.2), 1e-9);
	ck_assert_double_eq_tol(l.avg[2], 60.0 * exp(-1.0 / 15), 1e-9);
	/* An hour of silence (nobody subscribed): practically nothing left. */
	broker_sys_load_update(&l, 500, 3600000);
	ck_assert_double_lt(l.avg[2], 60.0 * exp(-4.0) + 1e-9);
}
END_TEST

START_TEST(test_load_zero_elapsed_changes_nothing)
{
	broker_sys_load l = {{5, 4, 3}, 10};
	broker_sys_load_update(&l, 99, 0);
	ck_assert_double_eq(l.avg[0], 5);
	ck_assert_double_eq(l.avg[2], 3);
	ck_assert_uint_eq(l.count, 10);
}
END_TEST

/* ---- a broker on a fake clock ---- */

typedef struct fixture {
	struct event_base *base;
	roost_config *cfg;
	roost_broker *b;
	roost_log log;
	uint64_t now;
	int delivered;
} fixture;

static void setup(fixture *f)
{
	memset(f, 0, sizeof *f);
	f->now = 5000;
	f->base = event_base_new();
	ck_assert_int_eq(roost_config_defaults(&f->cfg), ROOST_OK);
	f->cfg->persistence.enabled = false;
	f->log = (roost_log){.level = ROOST_LOG_ERROR};
	f->b = roost_broker_new(f->base, f->cfg, &f->log, (roost_clock){roost_clock_fake_now, &f->now});
	ck_assert_ptr_nonnull(f->b);
}

static void teardown(fixture *f)
{
	roost_broker_free(f->b);
	roost_config_free(f->cfg);
	event_base_free(f->base);
}

static void on_sys(void *ctx, roost_msg *msg, uint8_t qos)
{
	(void)msg;
	(void)qos;
	((fixture *)ctx)->delivered++;
}

/* The retained value of a $SYS topic, as text. */
static const char *retained(fixture *f, const char *topic)
{
	static char text[128];
	roost_msg *m = roost_topic_tree_retain_find(f->b->tree, topic, strlen(topic));
	if (!m)
		return NULL;
	snprintf(text, sizeof text, "%.*s", (int)m->payload_len, (const char *)m->payload);
	ck_assert(m->retain);
	return text;
}

/* A new subscriber gets values computed at that moment (uptime and loads
 * by the broker's clock), retained, before its retained set is sent: the
 * refresh itself delivers nothing. */
START_TEST(test_new_subscriber_gets_fresh_values)
{
	fixture f;
	setup(&f);
	ck_assert_ptr_null(retained(&f, "$SYS/broker/uptime")); /* nothing before anyone asks */
	f.now += 60000;
	f.b->stats.packets_received += 300;
	f.b->stats.bytes_received += 6000;
	roost_broker_sub *sub;
	ck_assert_int_eq(roost_broker_subscribe(f.b, "$SYS/#", 0, on_sys, &f, &sub), ROOST_OK);
	ck_assert_int_eq(f.delivered, 0);
	ck_assert_str_eq(retained(&f, "$SYS/broker/uptime"), "60 seconds");
	ck_assert_str_eq(retained(&f, "$SYS/broker/version"), "roost version " PACKAGE_VERSION);
	char want[32];
	snprintf(want, sizeof want, "%.2f", 300 * (1 - exp(-1.0)));
	ck_assert_str_eq(retained(&f, "$SYS/broker/load/messages/received/1min"), want);
	snprintf(want, sizeof want, "%.2f", 6000 * (1 - exp(-1.0 / 15)));
	ck_assert_str_eq(retained(&f, "$SYS/broker/load/bytes/received/15min"), want);
	ck_assert_str_eq(retained(&f, "$SYS/broker/messages/received"), "300");
	ck_assert_str_eq(retained(&f, "$SYS/broker/clients/connected"), "0");
	ck_assert_str_eq(retained(&f, "$SYS/broker/load/connections/5min"), "0.00");
	/* Persistence off: no store topics. */
	ck_assert_ptr_null(retained(&f, "$SYS/broker/store/commits"));
	roost_broker_unsubscribe(f.b, sub);
	teardown(&f);
}
END_TEST

/* sys_interval 0: no $SYS at all. */
START_TEST(test_sys_interval_zero_publishes_nothing)
{
	fixture f;
	setup(&f);
	f.cfg->sys_interval = 0;
	roost_broker_sub *sub;
	ck_assert_int_eq(roost_broker_subscribe(f.b, "$SYS/#", 0, on_sys, &f, &sub), ROOST_OK);
	ck_assert_ptr_null(retained(&f, "$SYS/broker/uptime"));
	roost_broker_unsubscribe(f.b, sub);
	teardown(&f);
}
END_TEST

static size_t test_source(void *ctx, roost_stat *out, size_t cap)
{
	(void)ctx;
	ck_assert_uint_ge(cap, 2);
	out[0] = (roost_stat){"queued", "spool_events", "h", ROOST_STAT_GAUGE, 7, NULL};
	out[1] = (roost_stat){"state", NULL, NULL, ROOST_STAT_TEXT, 0, "up"};
	return 2;
}

/* A component's figures appear under $SYS/broker/roost/<source>/. */
START_TEST(test_component_source_under_roost)
{
	fixture f;
	setup(&f);
	ck_assert_int_eq(roost_broker_stats_source_add(f.b, "hub", test_source, NULL), ROOST_OK);
	ck_assert_int_eq(roost_broker_stats_source_add(f.b, "hub", test_source, NULL), ROOST_ERR_EXISTS);
	roost_broker_sub *sub;
	ck_assert_int_eq(roost_broker_subscribe(f.b, "$SYS/broker/roost/#", 0, on_sys, &f, &sub), ROOST_OK);
	ck_assert_str_eq(retained(&f, "$SYS/broker/roost/hub/queued"), "7");
	ck_assert_str_eq(retained(&f, "$SYS/broker/roost/hub/state"), "up");
	roost_broker_stats_source_remove(f.b, "hub");
	roost_broker_unsubscribe(f.b, sub);
	teardown(&f);
}
END_TEST

Suite *sys_suite(void);
Suite *sys_suite(void)
{
	Suite *s = suite_create("sys");
	TCase *tc = tcase_create("load");
	tcase_add_test(tc, test_load_constant_rate_converges);
	tcase_add_test(tc, test_load_independent_of_how_often_it_is_computed);
	tcase_add_test(tc, test_load_decays_by_elapsed_time);
	tcase_add_test(tc, test_load_zero_elapsed_changes_nothing);
	suite_add_tcase(s, tc);
	tc = tcase_create("tree");
	tcase_add_test(tc, test_new_subscriber_gets_fresh_values);
	tcase_add_test(tc, test_sys_interval_zero_publishes_nothing);
	tcase_add_test(tc, test_component_source_under_roost);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(sys_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
