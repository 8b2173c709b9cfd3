/* check_message.c — refcounted immutable messages. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "roost/alloc.h"
#include "roost/message.h"

START_TEST(test_message_layout_copies_once)
{
	char topic[] = "a/b";
	uint8_t payload[] = {1, 2, 3, 0, 5};
	roost_msg *m = roost_msg_new(topic, 3, payload, sizeof payload, 1, true);
	ck_assert_ptr_nonnull(m);
	/* The message owns copies: changing the source does not change it. */
	topic[0] = 'x';
	payload[0] = 9;
	ck_assert_str_eq(m->topic, "a/b");
	ck_assert_uint_eq(m->topic_len, 3);
	ck_assert_uint_eq(m->payload_len, 5);
	ck_assert_mem_eq(m->payload, "\x01\x02\x03\x00\x05", 5);
	ck_assert_uint_eq(m->qos, 1);
	ck_assert(m->retain);
	ck_assert_int_eq(m->refs, 1);
	ck_assert_uint_eq(m->props_len, 0);
	ck_assert_uint_ge(roost_msg_size(m), sizeof *m + 3 + 1 + 5);
	roost_msg_unref(m);
}
END_TEST

START_TEST(test_message_props_and_empty_payload)
{
	uint8_t props[] = {0x01, 0x01};
	roost_msg *m = roost_msg_new_props("t", 1, props, 2, NULL, 0, 0, false);
	ck_assert_ptr_nonnull(m);
	ck_assert_uint_eq(m->props_len, 2);
	ck_assert_mem_eq(m->props, props, 2);
	ck_assert_uint_eq(m->payload_len, 0);
	roost_msg_unref(m);
}
END_TEST

START_TEST(test_message_refcount_lifetime)
{
	roost_msg *m = roost_msg_new("t", 1, (const uint8_t *)"x", 1, 0, false);
	ck_assert_ptr_eq(roost_msg_ref(m), m);
	ck_assert_int_eq(m->refs, 2);
	roost_msg_unref(m);
	ck_assert_int_eq(m->refs, 1);
	roost_msg_unref(m); /* freed: ASan reports a leak or double free if wrong */
	roost_msg_unref(NULL);
}
END_TEST

START_TEST(test_message_alloc_failure)
{
	roost_alloc_fail_after(1);
	roost_msg *m = roost_msg_new("t", 1, (const uint8_t *)"x", 1, 0, false);
	roost_alloc_fail_after(0);
	ck_assert_ptr_null(m);
}
END_TEST

/* v5 PUBLISH properties as received: User Property (a,b), Topic Alias 3,
 * Message Expiry Interval 60, Content Type "c", Subscription Identifier 5. */
static const uint8_t v5_props[] = {0x26, 0, 1, 'a', 0, 1, 'b', 0x23, 0, 3, 0x02, 0, 0, 0, 60,
                                   0x03, 0, 1, 'c', 0x0B, 5};

START_TEST(test_message_v5_keeps_forwarded_props_MQTT_3_3_2_7)
{
	roost_msg *m = roost_msg_new_v5("t", 1, v5_props, sizeof v5_props, (const uint8_t *)"pay", 3, 1, false, 5000);
	ck_assert_ptr_nonnull(m);
	/* Expiry first, then the others in order; no alias, no identifier. */
	const uint8_t want[] = {0x02, 0, 0, 0, 60, 0x26, 0, 1, 'a', 0, 1, 'b', 0x03, 0, 1, 'c'};
	ck_assert_uint_eq(m->props_len, sizeof want);
	ck_assert_mem_eq(m->props, want, sizeof want);
	ck_assert(m->has_expiry);
	ck_assert_uint_eq(m->expiry_s, 60);
	size_t n;
	const uint8_t *shared = roost_msg_shared_props(m, &n);
	ck_assert_uint_eq(n, sizeof want - 5);
	/* Shared properties and payload are one span (sent by reference). */
	ck_assert_ptr_eq(shared + n, m->payload);
	ck_assert_mem_eq(m->payload, "pay", 3);
	roost_msg_unref(m);
}
END_TEST

START_TEST(test_message_expiry_left_MQTT_3_3_2_6)
{
	roost_msg *m = roost_msg_new_v5("t", 1, v5_props, sizeof v5_props, NULL, 0, 0, false, 5000);
	uint32_t left;
	ck_assert(roost_msg_expiry_left(m, 5000, &left));
	ck_assert_uint_eq(left, 60);
	ck_assert(roost_msg_expiry_left(m, 5000 + 20000, &left));
	ck_assert_uint_eq(left, 40);
	ck_assert(!roost_msg_expiry_left(m, 5000 + 60000, &left)); /* [MQTT-3.3.2-5] */
	roost_msg_unref(m);
	/* Without an interval, never expires. */
	m = roost_msg_new("t", 1, NULL, 0, 0, false);
	ck_assert(roost_msg_expiry_left(m, UINT64_MAX / 2, &left));
	ck_assert_uint_eq(left, UINT32_MAX);
	roost_msg_unref(m);
}
END_TEST

START_TEST(test_message_stored_expiry_restarts_at_load)
{
	/* What a store gives back: the stored form, expiry first. */
	const uint8_t stored[] = {0x02, 0, 0, 0, 10, 0x03, 0, 1, 'c'};
	roost_msg *m = roost_msg_new_props("t", 1, stored, sizeof stored, NULL, 0, 1, false);
	ck_assert(m->has_expiry);
	ck_assert_uint_eq(m->shared_off, 5);
	uint32_t left;
	ck_assert(roost_msg_expiry_left(m, 777000, &left)); /* first look: counts from here */
	ck_assert_uint_eq(left, 10);
	ck_assert(!roost_msg_expiry_left(m, 787000, &left));
	roost_msg_unref(m);
}
END_TEST

Suite *message_suite(void);
Suite *message_suite(void)
{
	Suite *s = suite_create("message");
	TCase *valid = tcase_create("valid");
	tcase_add_test(valid, test_message_layout_copies_once);
	tcase_add_test(valid, test_message_props_and_empty_payload);
	tcase_add_test(valid, test_message_v5_keeps_forwarded_props_MQTT_3_3_2_7);
	tcase_add_test(valid, test_message_expiry_left_MQTT_3_3_2_6);
	tcase_add_test(valid, test_message_stored_expiry_restarts_at_load);
	suite_add_tcase(s, valid);
	TCase *life = tcase_create("lifetime");
	tcase_add_test(life, test_message_refcount_lifetime);
	tcase_add_test(life, test_message_alloc_failure);
	suite_add_tcase(s, life);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(message_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
