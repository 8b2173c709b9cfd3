/*
 * check_spool.c — the bounded FIFO behind component queues (broker/spool.c):
 * order, capacity with drop-oldest, sequence numbers, ring wraparound and
 * growth, allocation failure.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "roost/alloc.h"

#include "spool.h"

static void push_str(roost_spool *s, const char *str, bool *dropped)
{
	ck_assert_int_eq(roost_spool_push(s, str, strlen(str), dropped, NULL), ROOST_OK);
}

static void expect_head(roost_spool *s, const char *str)
{
	size_t len;
	const char *p = roost_spool_peek(s, &len, NULL);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(len, strlen(str));
	ck_assert_str_eq(p, str); /* NUL-terminated copy */
}

START_TEST(test_spool_fifo_order)
{
	roost_spool *s = roost_spool_new(10);
	ck_assert_ptr_null(roost_spool_peek(s, NULL, NULL));
	bool dropped = true;
	push_str(s, "{\"n\":1}", &dropped);
	ck_assert(!dropped);
	push_str(s, "{\"n\":2}", NULL);
	push_str(s, "{\"n\":3}", NULL);
	ck_assert_uint_eq(roost_spool_count(s), 3);
	expect_head(s, "{\"n\":1}");
	expect_head(s, "{\"n\":1}"); /* peek does not remove */
	roost_spool_pop(s);
	expect_head(s, "{\"n\":2}");
	roost_spool_pop(s);
	expect_head(s, "{\"n\":3}");
	roost_spool_pop(s);
	ck_assert_uint_eq(roost_spool_count(s), 0);
	ck_assert_ptr_null(roost_spool_peek(s, NULL, NULL));
	roost_spool_pop(s); /* no-op when empty */
	ck_assert_uint_eq(roost_spool_dropped(s), 0);
	roost_spool_free(s);
}
END_TEST

START_TEST(test_spool_binary_and_empty_bodies)
{
	roost_spool *s = roost_spool_new(4);
	const char bin[] = {'a', '\0', 'b'};
	ck_assert_int_eq(roost_spool_push(s, bin, sizeof bin, NULL, NULL), ROOST_OK);
	ck_assert_int_eq(roost_spool_push(s, "", 0, NULL, NULL), ROOST_OK);
	size_t len;
	const char *p = roost_spool_peek(s, &len, NULL);
	ck_assert_uint_eq(len, 3);
	ck_assert_mem_eq(p, bin, 3);
	roost_spool_pop(s);
	p = roost_spool_peek(s, &len, NULL);
	ck_assert_uint_eq(len, 0);
	ck_assert_str_eq(p, "");
	roost_spool_free(s);
}
END_TEST

START_TEST(test_spool_sequence_numbers)
{
	roost_spool *s = roost_spool_new(2);
	uint64_t a, b, c, head;
	ck_assert_int_eq(roost_spool_push(s, "a", 1, NULL, &a), ROOST_OK);
	ck_assert_int_eq(roost_spool_push(s, "b", 1, NULL, &b), ROOST_OK);
	ck_assert_uint_eq(b, a + 1);
	roost_spool_peek(s, NULL, &head);
	ck_assert_uint_eq(head, a);
	/* Full: "a" is dropped, so a sender holding seq a sees a new head. */
	ck_assert_int_eq(roost_spool_push(s, "c", 1, NULL, &c), ROOST_OK);
	ck_assert_uint_eq(c, b + 1);
	roost_spool_peek(s, NULL, &head);
	ck_assert_uint_eq(head, b);
	roost_spool_pop(s);
	roost_spool_peek(s, NULL, &head);
	ck_assert_uint_eq(head, c);
	roost_spool_free(s);
}
END_TEST

START_TEST(test_spool_full_drops_oldest_and_counts)
{
	roost_spool *s = roost_spool_new(5);
	char buf[16];
	int drops = 0;
	for (int i = 0; i < 12; i++) {
		bool dropped;
		snprintf(buf, sizeof buf, "e%d", i);
		push_str(s, buf, &dropped);
		drops += dropped;
		ck_assert(dropped == (i >= 5));
	}
	ck_assert_int_eq(drops, 7);
	ck_assert_uint_eq(roost_spool_dropped(s), 7);
	ck_assert_uint_eq(roost_spool_count(s), 5);
	ck_assert_uint_eq(roost_spool_max(s), 5);
	for (int i = 7; i < 12; i++) { /* the five newest, in order */
		snprintf(buf, sizeof buf, "e%d", i);
		expect_head(s, buf);
		roost_spool_pop(s);
	}
	ck_assert_uint_eq(roost_spool_count(s), 0);
	roost_spool_free(s);
}
END_TEST

START_TEST(test_spool_capacity_one)
{
	roost_spool *s = roost_spool_new(1);
	bool dropped;
	push_str(s, "x", &dropped);
	ck_assert(!dropped);
	push_str(s, "y", &dropped);
	ck_assert(dropped);
	expect_head(s, "y");
	ck_assert_uint_eq(roost_spool_dropped(s), 1);
	roost_spool_free(s);
}
END_TEST

/* Interleaved push/pop moves head around the ring many times, across the
 * growth steps (16, 32, ...) and with the ring wrapped when it grows. */
START_TEST(test_spool_wraparound_and_growth)
{
	roost_spool *s = roost_spool_new(1000); /* grows to ~110: never full */
	char buf[16];
	int next_in = 0, next_out = 0;
	for (int round = 0; round < 50; round++) {
		int pushes = 3 + round % 7, pops = 2 + round % 5;
		for (int i = 0; i < pushes; i++) {
			snprintf(buf, sizeof buf, "m%d", next_in++);
			push_str(s, buf, NULL);
		}
		for (int i = 0; i < pops && roost_spool_count(s); i++) {
			snprintf(buf, sizeof buf, "m%d", next_out++);
			expect_head(s, buf);
			roost_spool_pop(s);
		}
		ck_assert_uint_eq(roost_spool_count(s), (size_t)(next_in - next_out));
	}
	ck_assert_uint_eq(roost_spool_dropped(s), 0);
	while (roost_spool_count(s)) {
		snprintf(buf, sizeof buf, "m%d", next_out++);
		expect_head(s, buf);
		roost_spool_pop(s);
	}
	ck_assert_int_eq(next_out, next_in);
	roost_spool_free(s);
}
END_TEST

/* Full at a capacity that is not a growth step, wrapped, then overflowing. */
START_TEST(test_spool_wraparound_when_full)
{
	roost_spool *s = roost_spool_new(20);
	char buf[16];
	for (int i = 0; i < 20; i++) {
		snprintf(buf, sizeof buf, "w%d", i);
		push_str(s, buf, NULL);
	}
	for (int i = 0; i < 7; i++)
		roost_spool_pop(s);
	for (int i = 20; i < 40; i++) { /* 7 fit, 13 push out w7..w19 */
		snprintf(buf, sizeof buf, "w%d", i);
		push_str(s, buf, NULL);
	}
	ck_assert_uint_eq(roost_spool_dropped(s), 13);
	ck_assert_uint_eq(roost_spool_count(s), 20);
	for (int i = 20; i < 40; i++) {
		snprintf(buf, sizeof buf, "w%d", i);
		expect_head(s, buf);
		roost_spool_pop(s);
	}
	roost_spool_free(s);
}
END_TEST

START_TEST(test_spool_alloc_failure)
{
	roost_alloc_fail_after(1);
	ck_assert_ptr_null(roost_spool_new(3));
	roost_alloc_fail_after(0);

	roost_spool *s = roost_spool_new(3);
	/* The entry's copy fails: nothing changes. */
	roost_alloc_fail_after(1);
	bool dropped = true;
	ck_assert_int_eq(roost_spool_push(s, "a", 1, &dropped, NULL), ROOST_ERR_NOMEM);
	ck_assert(!dropped);
	ck_assert_uint_eq(roost_spool_count(s), 0);
	/* The copy succeeds, the ring's first allocation fails: nothing leaks. */
	roost_alloc_fail_after(2);
	ck_assert_int_eq(roost_spool_push(s, "a", 1, NULL, NULL), ROOST_ERR_NOMEM);
	ck_assert_uint_eq(roost_spool_count(s), 0);
	roost_alloc_fail_after(0);
	push_str(s, "a", NULL);
	push_str(s, "b", NULL);
	push_str(s, "c", NULL);
	/* Full: a failed push must not drop the oldest. */
	roost_alloc_fail_after(1);
	ck_assert_int_eq(roost_spool_push(s, "d", 1, &dropped, NULL), ROOST_ERR_NOMEM);
	roost_alloc_fail_after(0);
	ck_assert(!dropped);
	ck_assert_uint_eq(roost_spool_dropped(s), 0);
	ck_assert_uint_eq(roost_spool_count(s), 3);
	expect_head(s, "a");
	roost_spool_free(s);
}
END_TEST

/* Every allocation of a growth sequence fails in turn: the contents survive. */
START_TEST(test_spool_growth_failure_keeps_contents)
{
	roost_spool *s = roost_spool_new(1000);
	char buf[16];
	for (int i = 0; i < 16; i++) {
		snprintf(buf, sizeof buf, "g%d", i);
		push_str(s, buf, NULL);
	}
	roost_spool_pop(s); /* wrap: head at 1 */
	push_str(s, "g16", NULL);
	/* Ring full at 16 slots: the next push must grow; make that fail. */
	roost_alloc_fail_after(2);
	ck_assert_int_eq(roost_spool_push(s, "g17", 3, NULL, NULL), ROOST_ERR_NOMEM);
	roost_alloc_fail_after(0);
	ck_assert_uint_eq(roost_spool_count(s), 16);
	push_str(s, "g17", NULL);
	for (int i = 1; i <= 17; i++) {
		snprintf(buf, sizeof buf, "g%d", i);
		expect_head(s, buf);
		roost_spool_pop(s);
	}
	roost_spool_free(s);
}
END_TEST

START_TEST(test_spool_free_with_entries)
{
	roost_spool *s = roost_spool_new(50);
	for (int i = 0; i < 40; i++)
		push_str(s, "leak?", NULL);
	roost_spool_free(s); /* ASan's leak check proves the entries go too */
	roost_spool_free(NULL);
}
END_TEST

Suite *spool_suite(void);
Suite *spool_suite(void)
{
	Suite *s = suite_create("spool");
	TCase *valid = tcase_create("valid");
	tcase_add_test(valid, test_spool_fifo_order);
	tcase_add_test(valid, test_spool_binary_and_empty_bodies);
	tcase_add_test(valid, test_spool_sequence_numbers);
	suite_add_tcase(s, valid);
	TCase *limits = tcase_create("limits");
	tcase_add_test(limits, test_spool_full_drops_oldest_and_counts);
	tcase_add_test(limits, test_spool_capacity_one);
	tcase_add_test(limits, test_spool_wraparound_and_growth);
	tcase_add_test(limits, test_spool_wraparound_when_full);
	suite_add_tcase(s, limits);
	TCase *life = tcase_create("lifetime");
	tcase_add_test(life, test_spool_alloc_failure);
	tcase_add_test(life, test_spool_growth_failure_keeps_contents);
	tcase_add_test(life, test_spool_free_with_entries);
	suite_add_tcase(s, life);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(spool_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
