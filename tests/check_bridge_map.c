/*
 * check_bridge_map.c — the pure parts of a bridge (connector/bridge_map.c):
 * Mosquitto's prefix mapping both ways, prefixes without wildcards, the
 * queued body (round trip and malformed bodies), and the echo filter
 * (window, one copy only, ring reuse).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "roost/alloc.h"

#include "bridge_map.h"

static const char *map(const char *topic, const char *from, const char *to)
{
	static char out[128];
	size_t n;
	if (!roost_bridge_map_topic(topic, strlen(topic), from, to, out, sizeof out, &n))
		return NULL;
	ck_assert_uint_eq(n, strlen(out));
	return out;
}

START_TEST(test_bridge_map_prefixes_both_ways)
{
	/* out: local_prefix + rest -> remote_prefix + rest */
	ck_assert_str_eq(map("sensors/t1", "", "home1/"), "home1/sensors/t1");
	ck_assert_str_eq(map("sensors/t1", NULL, "home1/"), "home1/sensors/t1");
	/* in: the other way round */
	ck_assert_str_eq(map("home1/cmd/light", "home1/", "local/"), "local/cmd/light");
	ck_assert_str_eq(map("home1/cmd/light", "home1/", NULL), "cmd/light");
	ck_assert_str_eq(map("a/b", NULL, NULL), "a/b");
	/* a topic without the prefix is not mapped */
	ck_assert_ptr_null(map("home2/cmd", "home1/", ""));
	ck_assert_ptr_null(map("home", "home1/", ""));
	/* too small an output */
	char small[4];
	size_t n;
	ck_assert(!roost_bridge_map_topic("abcd", 4, "", "", small, sizeof small, &n));
	ck_assert(roost_bridge_map_topic("abc", 3, "", "", small, sizeof small, &n));
}
END_TEST

START_TEST(test_bridge_join_and_prefix_rules)
{
	char *s = roost_bridge_join("home1/", "sensors/#");
	ck_assert_str_eq(s, "home1/sensors/#");
	roost_free(s);
	s = roost_bridge_join(NULL, "#");
	ck_assert_str_eq(s, "#");
	roost_free(s);
	ck_assert(roost_bridge_prefix_valid(NULL));
	ck_assert(roost_bridge_prefix_valid(""));
	ck_assert(roost_bridge_prefix_valid("a/b/"));
	ck_assert(!roost_bridge_prefix_valid("a/+/"));
	ck_assert(!roost_bridge_prefix_valid("#"));
}
END_TEST

START_TEST(test_bridge_body_round_trip_and_malformed)
{
	const uint8_t payload[] = {0, 1, 0xff, 'x'};
	uint8_t buf[64];
	size_t n = roost_bridge_body_size(5, sizeof payload);
	ck_assert_uint_eq(n, 3 + 5 + 4);
	roost_bridge_body_encode(buf, "a/b/c", 5, payload, sizeof payload, 2, true);
	roost_bridge_msg m;
	ck_assert_int_eq(roost_bridge_body_decode(buf, n, &m), ROOST_OK);
	ck_assert_uint_eq(m.topic_len, 5);
	ck_assert(memcmp(m.topic, "a/b/c", 5) == 0);
	ck_assert_uint_eq(m.payload_len, 4);
	ck_assert(memcmp(m.payload, payload, 4) == 0);
	ck_assert_uint_eq(m.qos, 2);
	ck_assert(m.retain);
	roost_bridge_body_encode(buf, "t", 1, NULL, 0, 1, false); /* empty payload */
	ck_assert_int_eq(roost_bridge_body_decode(buf, 4, &m), ROOST_OK);
	ck_assert_uint_eq(m.payload_len, 0);
	ck_assert(!m.retain);
	/* every truncation of a body is refused or shorter in payload, never read past */
	roost_bridge_body_encode(buf, "a/b/c", 5, payload, sizeof payload, 1, false);
	for (size_t i = 0; i < 8; i++)
		ck_assert_int_eq(roost_bridge_body_decode(buf, i, &m), ROOST_ERR_MALFORMED);
	buf[0] = 3; /* QoS 3 */
	ck_assert_int_eq(roost_bridge_body_decode(buf, n, &m), ROOST_ERR_MALFORMED);
	buf[0] = 0x11; /* unknown flag */
	ck_assert_int_eq(roost_bridge_body_decode(buf, n, &m), ROOST_ERR_MALFORMED);
}
END_TEST

START_TEST(test_bridge_echo_window_and_one_copy)
{
	roost_bridge_echo *e = calloc(1, sizeof *e);
	uint64_t h = roost_bridge_echo_hash("h/both/a", 8, (const uint8_t *)"x", 1);
	ck_assert_uint_ne(h, roost_bridge_echo_hash("h/both/a", 8, (const uint8_t *)"y", 1));
	ck_assert_uint_ne(h, roost_bridge_echo_hash("h/both/", 7, (const uint8_t *)"ax", 2)); /* separator */
	ck_assert(!roost_bridge_echo_take(e, h, 1000, 5000)); /* nothing sent yet */
	roost_bridge_echo_note(e, h, 1000);
	ck_assert(roost_bridge_echo_take(e, h, 3000, 5000));  /* came straight back */
	ck_assert(!roost_bridge_echo_take(e, h, 3000, 5000)); /* a second copy is someone else's */
	roost_bridge_echo_note(e, h, 1000);
	ck_assert(!roost_bridge_echo_take(e, h, 7000, 5000)); /* too late: not an echo */
	/* the ring forgets the oldest */
	roost_bridge_echo_note(e, h, 10000);
	for (int i = 0; i < ROOST_BRIDGE_ECHO_SLOTS; i++)
		roost_bridge_echo_note(e, (uint64_t)i * 2 + 2, 10000);
	ck_assert(!roost_bridge_echo_take(e, h, 10001, 5000));
	free(e);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("bridge_map");
	TCase *t = tcase_create("pure");
	tcase_add_test(t, test_bridge_map_prefixes_both_ways);
	tcase_add_test(t, test_bridge_join_and_prefix_rules);
	tcase_add_test(t, test_bridge_body_round_trip_and_malformed);
	tcase_add_test(t, test_bridge_echo_window_and_one_copy);
	suite_add_tcase(s, t);
	SRunner *r = srunner_create(s);
	srunner_run_all(r, CK_NORMAL);
	int failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
