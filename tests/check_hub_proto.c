/*
 * check_hub_proto.c — the pure parts of the hub connector
 * (connector/hub_proto.c): which payloads are text, the event body, the
 * verdict on Home Assistant's answer, the retry backoff.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "roost/alloc.h"

#include "hub_proto.h"

#define TEXT(s) roost_hub_payload_is_text((const uint8_t *)(s), sizeof(s) - 1)

START_TEST(test_hub_text_valid_utf8)
{
	ck_assert(TEXT(""));
	ck_assert(TEXT("Switch is ON"));
	ck_assert(TEXT("caf\xc3\xa9"));                   /* U+00E9 */
	ck_assert(TEXT("\xe2\x82\xac 5"));                /* U+20AC */
	ck_assert(TEXT("\xf0\x9f\x8f\xa0"));              /* U+1F3E0 */
	ck_assert(TEXT("\xf4\x8f\xbf\xbf"));              /* U+10FFFF, the last code point */
	ck_assert(TEXT("\xef\xbf\xbf"));                  /* U+FFFF: a noncharacter, still UTF-8 */
	ck_assert(TEXT("a\0b"));                          /* U+0000 is UTF-8; JSON says \u0000 */
	ck_assert(TEXT("\0"));
	ck_assert(TEXT("\xc3\xa9\0\xc3\xa9"));
}
END_TEST

START_TEST(test_hub_text_rejects_invalid_utf8)
{
	ck_assert(!TEXT("\xff"));
	ck_assert(!TEXT("\x80"));                          /* lone continuation */
	ck_assert(!TEXT("\xc0\x80"));                      /* overlong U+0000 */
	ck_assert(!TEXT("\xc1\xbf"));                      /* overlong U+007F */
	ck_assert(!TEXT("\xe0\x80\xaf"));                  /* overlong '/' */
	ck_assert(!TEXT("\xf0\x80\x80\xaf"));              /* overlong '/' */
	ck_assert(!TEXT("\xed\xa0\x80"));                  /* U+D800, a surrogate */
	ck_assert(!TEXT("\xed\xbf\xbf"));                  /* U+DFFF */
	ck_assert(!TEXT("\xf4\x90\x80\x80"));              /* U+110000 */
	ck_assert(!TEXT("\xf8\x88\x80\x80\x80"));          /* 5-byte form */
	ck_assert(!TEXT("\xc3"));                          /* truncated */
	ck_assert(!TEXT("\xe2\x82"));
	ck_assert(!TEXT("\xc3\0\xa9"));                    /* a NUL inside a sequence */
	ck_assert(!TEXT("ok\xc3("));
}
END_TEST

static char *event_json(const char *topic, const void *payload, size_t len, uint8_t qos, bool retain)
{
	char *out = NULL;
	size_t out_len = 0;
	ck_assert_int_eq(roost_hub_event_json(topic, strlen(topic), payload, len, qos, retain, &out,
	                                      &out_len),
	                 ROOST_OK);
	ck_assert_uint_eq(out_len, strlen(out));
	return out;
}

START_TEST(test_hub_event_json_v5_properties)
{
	/* Message Expiry 9, User Property (a,"1\""), Content Type "text/x", User Property (a,2). */
	const uint8_t props[] = {0x02, 0, 0, 0, 9, 0x26, 0, 1, 'a', 0, 2, '1', '"', 0x03, 0, 6, 't', 'e', 'x', 't', '/',
	                         'x', 0x26, 0, 1, 'a', 0, 1, '2'};
	char *out = NULL;
	size_t len = 0;
	ck_assert_int_eq(roost_hub_event_json_props("t", 1, (const uint8_t *)"x", 1, props, sizeof props, 1, false, &out,
	                                            &len),
	                 ROOST_OK);
	ck_assert_str_eq(out, "{\"topic\":\"t\",\"payload\":\"x\",\"qos\":1,\"retain\":false,"
	                      "\"content_type\":\"text/x\",\"user_properties\":[[\"a\",\"1\\\"\"],[\"a\",\"2\"]]}");
	ck_assert_uint_eq(len, strlen(out));
	roost_free(out);
	/* Properties without either: the 3.1.1 event. */
	ck_assert_int_eq(roost_hub_event_json_props("t", 1, (const uint8_t *)"x", 1, props, 5, 0, false, &out, &len),
	                 ROOST_OK);
	ck_assert_str_eq(out, "{\"topic\":\"t\",\"payload\":\"x\",\"qos\":0,\"retain\":false}");
	roost_free(out);
}
END_TEST

START_TEST(test_hub_event_json_text)
{
	char *j = event_json("home-assistant/switch/1/on", "Switch is ON", 12, 0, false);
	ck_assert_str_eq(j, "{\"topic\":\"home-assistant/switch/1/on\",\"payload\":\"Switch is ON\","
	                    "\"qos\":0,\"retain\":false}");
	roost_free(j);
	j = event_json("t", "", 0, 2, true);
	ck_assert_str_eq(j, "{\"topic\":\"t\",\"payload\":\"\",\"qos\":2,\"retain\":true}");
	roost_free(j);
}
END_TEST

START_TEST(test_hub_event_json_escapes)
{
	const char p[] = "say \"hi\"\\\n\t\r\b\f\x01\x1f\x7f caf\xc3\xa9 /";
	char *j = event_json("a/\"b\"", p, sizeof p - 1, 1, false);
	ck_assert_str_eq(j, "{\"topic\":\"a/\\\"b\\\"\",\"payload\":\"say \\\"hi\\\"\\\\\\n\\t\\r\\b\\f"
	                    "\\u0001\\u001f\x7f caf\xc3\xa9 /\",\"qos\":1,\"retain\":false}");
	/* And a JSON parser reads back exactly the payload. */
	cJSON *o = cJSON_Parse(j);
	ck_assert_ptr_nonnull(o);
	ck_assert_str_eq(cJSON_GetObjectItem(o, "payload")->valuestring, p);
	ck_assert_str_eq(cJSON_GetObjectItem(o, "topic")->valuestring, "a/\"b\"");
	cJSON_Delete(o);
	roost_free(j);
}
END_TEST

START_TEST(test_hub_event_json_nul_is_text)
{
	char *j = event_json("t", "a\0b", 3, 0, false);
	ck_assert_str_eq(j, "{\"topic\":\"t\",\"payload\":\"a\\u0000b\",\"qos\":0,\"retain\":false}");
	roost_free(j);
}
END_TEST

START_TEST(test_hub_event_json_binary_base64)
{
	const uint8_t bin[] = {0xff, 0x00, 0x80, 'a', 'b', 'c'};
	char *j = event_json("home-assistant/camera", bin, sizeof bin, 1, true);
	ck_assert_str_eq(j, "{\"topic\":\"home-assistant/camera\",\"payload_base64\":\"/wCAYWJj\","
	                    "\"qos\":1,\"retain\":true}");
	ck_assert_ptr_null(strstr(j, "\"payload\""));
	roost_free(j);
	/* Padding: 1 and 2 trailing bytes. */
	const uint8_t one[] = {0xfe};
	j = event_json("t", one, 1, 0, false);
	ck_assert_str_eq(j, "{\"topic\":\"t\",\"payload_base64\":\"/g==\",\"qos\":0,\"retain\":false}");
	roost_free(j);
	const uint8_t two[] = {0xfe, 0xff};
	j = event_json("t", two, 2, 0, false);
	ck_assert_str_eq(j, "{\"topic\":\"t\",\"payload_base64\":\"/v8=\",\"qos\":0,\"retain\":false}");
	roost_free(j);
	/* An overlong encoding is binary, not text. */
	j = event_json("t", "\xc0\xaf", 2, 0, false);
	ck_assert_str_eq(j, "{\"topic\":\"t\",\"payload_base64\":\"wK8=\",\"qos\":0,\"retain\":false}");
	roost_free(j);
}
END_TEST

START_TEST(test_hub_event_json_large_payload)
{
	size_t n = 100000;
	uint8_t *p = malloc(n);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)i; /* contains bytes >= 0x80 in invalid positions: binary */
	char *j = event_json("big", p, n, 0, false);
	cJSON *o = cJSON_Parse(j);
	ck_assert_ptr_nonnull(o);
	ck_assert_uint_eq(strlen(cJSON_GetObjectItem(o, "payload_base64")->valuestring), (n + 2) / 3 * 4);
	cJSON_Delete(o);
	roost_free(j);
	free(p);
}
END_TEST

START_TEST(test_hub_event_json_alloc_failure)
{
	char *out = (char *)1;
	size_t len = 7;
	roost_alloc_fail_after(1);
	ck_assert_int_eq(roost_hub_event_json("t", 1, (const uint8_t *)"x", 1, 0, false, &out, &len),
	                 ROOST_ERR_NOMEM);
	roost_alloc_fail_after(0);
	ck_assert_ptr_eq(out, (char *)1); /* untouched on failure */
	ck_assert_uint_eq(len, 7);
}
END_TEST

START_TEST(test_hub_verdicts)
{
	ck_assert_int_eq(roost_hub_verdict_of(200), ROOST_HUB_DELIVERED);
	ck_assert_int_eq(roost_hub_verdict_of(201), ROOST_HUB_DELIVERED);
	ck_assert_int_eq(roost_hub_verdict_of(204), ROOST_HUB_DELIVERED);
	ck_assert_int_eq(roost_hub_verdict_of(0), ROOST_HUB_RETRY);   /* no answer */
	ck_assert_int_eq(roost_hub_verdict_of(500), ROOST_HUB_RETRY);
	ck_assert_int_eq(roost_hub_verdict_of(502), ROOST_HUB_RETRY);
	ck_assert_int_eq(roost_hub_verdict_of(503), ROOST_HUB_RETRY);
	ck_assert_int_eq(roost_hub_verdict_of(301), ROOST_HUB_RETRY);
	ck_assert_int_eq(roost_hub_verdict_of(100), ROOST_HUB_RETRY);
	ck_assert_int_eq(roost_hub_verdict_of(408), ROOST_HUB_RETRY);
	ck_assert_int_eq(roost_hub_verdict_of(429), ROOST_HUB_RETRY);
	ck_assert_int_eq(roost_hub_verdict_of(401), ROOST_HUB_AUTH);
	ck_assert_int_eq(roost_hub_verdict_of(403), ROOST_HUB_AUTH);
	ck_assert_int_eq(roost_hub_verdict_of(400), ROOST_HUB_REJECTED);
	ck_assert_int_eq(roost_hub_verdict_of(404), ROOST_HUB_REJECTED);
	ck_assert_int_eq(roost_hub_verdict_of(405), ROOST_HUB_REJECTED);
	ck_assert_int_eq(roost_hub_verdict_of(413), ROOST_HUB_REJECTED);
}
END_TEST

START_TEST(test_hub_backoff)
{
	uint32_t d = 0, seen[8];
	for (int i = 0; i < 8; i++)
		seen[i] = d = roost_hub_backoff_next(d, 60);
	const uint32_t want[8] = {1, 2, 4, 8, 16, 32, 60, 60};
	for (int i = 0; i < 8; i++)
		ck_assert_uint_eq(seen[i], want[i]);
	ck_assert_uint_eq(roost_hub_backoff_next(0, 2), 1);
	ck_assert_uint_eq(roost_hub_backoff_next(1, 2), 2);
	ck_assert_uint_eq(roost_hub_backoff_next(2, 2), 2);
	ck_assert_uint_eq(roost_hub_backoff_next(0, 1), 1);
	ck_assert_uint_eq(roost_hub_backoff_next(1, 1), 1);
	ck_assert_uint_eq(roost_hub_backoff_next(3000000000u, 3600), 3600); /* no overflow */
	ck_assert_uint_eq(roost_hub_backoff_next(90, 60), 60);             /* ceiling lowered */
}
END_TEST

Suite *hub_proto_suite(void);
Suite *hub_proto_suite(void)
{
	Suite *s = suite_create("hub_proto");
	TCase *valid = tcase_create("valid");
	tcase_add_test(valid, test_hub_text_valid_utf8);
	tcase_add_test(valid, test_hub_event_json_text);
	tcase_add_test(valid, test_hub_event_json_v5_properties);
	tcase_add_test(valid, test_hub_event_json_escapes);
	tcase_add_test(valid, test_hub_event_json_nul_is_text);
	tcase_add_test(valid, test_hub_event_json_binary_base64);
	tcase_add_test(valid, test_hub_verdicts);
	tcase_add_test(valid, test_hub_backoff);
	suite_add_tcase(s, valid);
	TCase *malformed = tcase_create("malformed");
	tcase_add_test(malformed, test_hub_text_rejects_invalid_utf8);
	suite_add_tcase(s, malformed);
	TCase *limits = tcase_create("limits");
	tcase_add_test(limits, test_hub_event_json_large_payload);
	suite_add_tcase(s, limits);
	TCase *life = tcase_create("lifetime");
	tcase_add_test(life, test_hub_event_json_alloc_failure);
	suite_add_tcase(s, life);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(hub_proto_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
