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

Suite *message_suite(void);
Suite *message_suite(void)
{
	Suite *s = suite_create("message");
	TCase *valid = tcase_create("valid");
	tcase_add_test(valid, test_message_layout_copies_once);
	tcase_add_test(valid, test_message_props_and_empty_payload);
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
