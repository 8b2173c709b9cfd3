/*
 * check_http_request.c — the pure half of the HTTP API: route matching,
 * authorisation decisions, request-body validation, event-stream encoding.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "roost/alloc.h"

#include "http_request.h"

/* ---- routes --------------------------------------------------------------- */

static int h_a, h_b, h_c;
static void handler(void *ctx, struct evhttp_request *req, const char *rest)
{
	(void)ctx;
	(void)req;
	(void)rest;
}
static void other_handler(void *ctx, struct evhttp_request *req, const char *rest)
{
	(void)ctx;
	(void)req;
	(void)rest;
}

static roost_http_match match(roost_http_routes *r, const char *method, const char *path,
                              void **ctx, const char **rest, char *allow)
{
	roost_http_handler fn = NULL;
	return roost_http_routes_match(r, method, path, &fn, ctx, rest, allow, 64);
}

START_TEST(test_routes_exact_and_prefix)
{
	roost_http_routes *r = roost_http_routes_new();
	ck_assert_int_eq(roost_http_routes_add(r, "GET", "/api/", handler, &h_a), ROOST_OK);
	ck_assert_int_eq(roost_http_routes_add(r, "POST", "/api/events/{event_type}", handler, &h_b), ROOST_OK);
	ck_assert_int_eq(roost_http_routes_add(r, "GET", "/api/states/x.y", other_handler, &h_c), ROOST_OK);
	void *ctx;
	const char *rest;
	char allow[64];
	ck_assert_int_eq(match(r, "GET", "/api/", &ctx, &rest, allow), ROOST_HTTP_MATCH_FOUND);
	ck_assert_ptr_eq(ctx, &h_a);
	ck_assert_str_eq(rest, "");
	/* An exact route does not match what lies below it. */
	ck_assert_int_eq(match(r, "GET", "/api/foo", &ctx, &rest, allow), ROOST_HTTP_MATCH_NO_PATH);
	ck_assert_int_eq(match(r, "GET", "/api", &ctx, &rest, allow), ROOST_HTTP_MATCH_NO_PATH);
	ck_assert_int_eq(match(r, "POST", "/api/events/my_event", &ctx, &rest, allow),
	                 ROOST_HTTP_MATCH_FOUND);
	ck_assert_ptr_eq(ctx, &h_b);
	ck_assert_str_eq(rest, "my_event");
	ck_assert_int_eq(match(r, "POST", "/api/events/", &ctx, &rest, allow), ROOST_HTTP_MATCH_FOUND);
	ck_assert_str_eq(rest, "");
	ck_assert_int_eq(match(r, "POST", "/api/events", &ctx, &rest, allow), ROOST_HTTP_MATCH_NO_PATH);
	ck_assert_int_eq(match(r, "GET", "/api/states/x.y", &ctx, &rest, allow), ROOST_HTTP_MATCH_FOUND);
	ck_assert_ptr_eq(ctx, &h_c);
	roost_http_routes_free(r);
}
END_TEST

START_TEST(test_routes_most_specific_wins)
{
	roost_http_routes *r = roost_http_routes_new();
	ck_assert_int_eq(roost_http_routes_add(r, "GET", "/a/{rest}", handler, &h_a), ROOST_OK);
	ck_assert_int_eq(roost_http_routes_add(r, "GET", "/a/b/{rest}", handler, &h_b), ROOST_OK);
	ck_assert_int_eq(roost_http_routes_add(r, "GET", "/a/b/c", handler, &h_c), ROOST_OK);
	void *ctx;
	const char *rest;
	char allow[64];
	ck_assert_int_eq(match(r, "GET", "/a/b/c", &ctx, &rest, allow), ROOST_HTTP_MATCH_FOUND);
	ck_assert_ptr_eq(ctx, &h_c);
	ck_assert_int_eq(match(r, "GET", "/a/b/cd", &ctx, &rest, allow), ROOST_HTTP_MATCH_FOUND);
	ck_assert_ptr_eq(ctx, &h_b);
	ck_assert_str_eq(rest, "cd");
	ck_assert_int_eq(match(r, "GET", "/a/x", &ctx, &rest, allow), ROOST_HTTP_MATCH_FOUND);
	ck_assert_ptr_eq(ctx, &h_a);
	roost_http_routes_free(r);
}
END_TEST

START_TEST(test_routes_wrong_method_is_405_with_allow)
{
	roost_http_routes *r = roost_http_routes_new();
	ck_assert_int_eq(roost_http_routes_add(r, "POST", "/api/services/mqtt/publish", handler, NULL),
	                 ROOST_OK);
	ck_assert_int_eq(roost_http_routes_add(r, "PUT", "/api/services/mqtt/publish", handler, NULL),
	                 ROOST_OK);
	ck_assert_int_eq(roost_http_routes_add(r, "POST", "/api/{path}", handler, NULL), ROOST_OK);
	void *ctx;
	const char *rest;
	char allow[64];
	ck_assert_int_eq(match(r, "GET", "/api/services/mqtt/publish", &ctx, &rest, allow),
	                 ROOST_HTTP_MATCH_NO_METHOD);
	ck_assert_str_eq(allow, "POST, PUT");
	roost_http_routes_free(r);
}
END_TEST

START_TEST(test_routes_add_remove)
{
	roost_http_routes *r = roost_http_routes_new();
	ck_assert_int_eq(roost_http_routes_add(r, "GET", "/x", handler, NULL), ROOST_OK);
	ck_assert_int_eq(roost_http_routes_add(r, "GET", "/x", handler, NULL), ROOST_ERR_EXISTS);
	ck_assert_int_eq(roost_http_routes_add(r, "POST", "/x", handler, NULL), ROOST_OK);
	ck_assert_int_eq(roost_http_routes_add(r, "GET", "/x/{id}", handler, NULL), ROOST_OK);
	/* Invalid methods and paths. */
	ck_assert_int_eq(roost_http_routes_add(r, "get", "/y", handler, NULL), ROOST_ERR_INVALID);
	ck_assert_int_eq(roost_http_routes_add(r, "", "/y", handler, NULL), ROOST_ERR_INVALID);
	ck_assert_int_eq(roost_http_routes_add(r, "GET", "y", handler, NULL), ROOST_ERR_INVALID);
	ck_assert_int_eq(roost_http_routes_add(r, "GET", "/y{id}", handler, NULL), ROOST_ERR_INVALID);
	ck_assert_int_eq(roost_http_routes_add(r, "GET", "/{id}/y", handler, NULL), ROOST_ERR_INVALID);
	ck_assert_int_eq(roost_http_routes_add(r, "GET", "/y/{}", handler, NULL), ROOST_ERR_INVALID);
	ck_assert_int_eq(roost_http_routes_add(r, "GET", "/y/{a-b}", handler, NULL), ROOST_ERR_INVALID);
	ck_assert_int_eq(roost_http_routes_add(r, "GET", "/y}", handler, NULL), ROOST_ERR_INVALID);
	/* The same prefix with another placeholder name is the same route. */
	ck_assert_int_eq(roost_http_routes_add(r, "GET", "/x/{other}", handler, NULL), ROOST_ERR_EXISTS);
	ck_assert_int_eq(roost_http_routes_add(r, "GET", "/y", NULL, NULL), ROOST_ERR_INVALID);
	ck_assert_int_eq(roost_http_routes_remove(r, "GET", "/x"), ROOST_OK);
	ck_assert_int_eq(roost_http_routes_remove(r, "GET", "/x"), ROOST_ERR_NOT_FOUND);
	void *ctx;
	const char *rest;
	char allow[64];
	ck_assert_int_eq(match(r, "GET", "/x", &ctx, &rest, allow), ROOST_HTTP_MATCH_NO_METHOD);
	ck_assert_int_eq(roost_http_routes_remove(r, "POST", "/x"), ROOST_OK);
	ck_assert_int_eq(match(r, "GET", "/x", &ctx, &rest, allow), ROOST_HTTP_MATCH_NO_PATH);
	ck_assert_int_eq(match(r, "GET", "/x/1", &ctx, &rest, allow), ROOST_HTTP_MATCH_FOUND);
	ck_assert_int_eq(roost_http_routes_remove(r, "GET", "/x/{id}"), ROOST_OK);
	ck_assert_int_eq(match(r, "GET", "/x/1", &ctx, &rest, allow), ROOST_HTTP_MATCH_NO_PATH);
	roost_http_routes_free(r);
}
END_TEST

/* ---- authorisation -------------------------------------------------------- */

START_TEST(test_loopback_addresses)
{
	ck_assert(roost_http_addr_is_loopback("127.0.0.1"));
	ck_assert(roost_http_addr_is_loopback("127.1.2.3"));
	ck_assert(roost_http_addr_is_loopback("::1"));
	ck_assert(roost_http_addr_is_loopback("::ffff:127.0.0.1"));
	ck_assert(!roost_http_addr_is_loopback("0.0.0.0"));
	ck_assert(!roost_http_addr_is_loopback("::"));
	ck_assert(!roost_http_addr_is_loopback("192.168.1.2"));
	ck_assert(!roost_http_addr_is_loopback("128.0.0.1"));
	ck_assert(!roost_http_addr_is_loopback("localhost"));
	ck_assert(!roost_http_addr_is_loopback(""));
	ck_assert(!roost_http_addr_is_loopback(NULL));
}
END_TEST

START_TEST(test_bearer_token)
{
	ck_assert(roost_http_auth_ok("Bearer s3cret", "s3cret"));
	ck_assert(roost_http_auth_ok("bearer s3cret", "s3cret"));
	ck_assert(!roost_http_auth_ok("Bearer s3cre", "s3cret"));
	ck_assert(!roost_http_auth_ok("Bearer s3cretX", "s3cret"));
	ck_assert(!roost_http_auth_ok("Bearer S3cret", "s3cret"));
	ck_assert(!roost_http_auth_ok("Basic czNjcmV0", "s3cret"));
	ck_assert(!roost_http_auth_ok("s3cret", "s3cret"));
	ck_assert(!roost_http_auth_ok("Bearer ", "s3cret"));
	ck_assert(!roost_http_auth_ok(NULL, "s3cret"));
	ck_assert(!roost_http_auth_ok("Bearer ", ""));
}
END_TEST

/* ---- request heads (the gate) ------------------------------------------------ */

START_TEST(test_head_end)
{
	size_t scan = 0;
	const char *h = "GET / HTTP/1.1\r\nHost: x\r\n\r\nBODY";
	ck_assert_uint_eq(roost_http_head_end(h, strlen(h), &scan), strlen(h) - 4);
	/* LF-only line ends, as evhttp accepts them. */
	scan = 0;
	ck_assert_uint_eq(roost_http_head_end("GET / HTTP/1.0\n\nx", 17, &scan), 16);
	/* An empty first line ends the head at once (and is refused below). */
	scan = 0;
	ck_assert_uint_eq(roost_http_head_end("\r\nGET", 5, &scan), 2);
	/* One byte at a time: each byte searched once, the end found at the end. */
	const char *full = "POST /api/ HTTP/1.1\r\nContent-Length: 2\r\n\r\n";
	size_t n = strlen(full), found = 0;
	scan = 0;
	for (size_t i = 1; i <= n && !found; i++) {
		found = roost_http_head_end(full, i, &scan);
		if (!found)
			ck_assert_uint_eq(scan, i);
	}
	ck_assert_uint_eq(found, n);
	/* CR alone is not a line end. */
	scan = 0;
	ck_assert_uint_eq(roost_http_head_end("GET / HTTP/1.1\r\r\r\r", 18, &scan), 0);
}
END_TEST

static roost_http_head head(const char *text, const char *token)
{
	roost_http_head h;
	roost_http_head_check(text, strlen(text), token, 1000, &h);
	ck_assert(h.err.status == 0 || h.err.message[0]);
	return h;
}

START_TEST(test_head_admitted)
{
	roost_http_head h = head("POST /api/services/mqtt/publish HTTP/1.1\r\nHost: x\r\n"
	                         "Content-Length:  12 \r\nAuthorization: Bearer tok\r\n\r\n", "tok");
	ck_assert_int_eq(h.err.status, 0);
	ck_assert_uint_eq(h.body_len, 12);
	ck_assert(h.framed);
	ck_assert_uint_eq(h.target_off, 5);
	ck_assert_uint_eq(h.target_len, strlen("/api/services/mqtt/publish"));
	h = head("GET /api/ HTTP/1.0\n\n", NULL);
	ck_assert_int_eq(h.err.status, 0);
	ck_assert_uint_eq(h.body_len, 0);
	/* The first Authorization header counts, as for evhttp_find_header. */
	ck_assert_int_eq(head("GET / HTTP/1.1\r\nauthorization: bearer tok\r\n"
	                      "Authorization: x\r\n\r\n", "tok").err.status, 0);
	ck_assert_int_eq(head("GET / HTTP/1.1\r\nExpect: 100-Continue\r\n\r\n", NULL).err.status, 0);
	/* Exactly at the limit. */
	ck_assert_int_eq(head("POST / HTTP/1.1\r\nContent-Length: 1000\r\n\r\n", NULL).err.status, 0);
}
END_TEST

START_TEST(test_head_token_before_body)
{
	/* No token, or the wrong one: 401 before the body, whatever it says. */
	roost_http_head h = head("POST / HTTP/1.1\r\nContent-Length: 100000000\r\n\r\n", "tok");
	ck_assert_int_eq(h.err.status, 401);
	ck_assert_str_eq(h.err.message, "Unauthorized");
	ck_assert(h.framed); /* its body can be skipped, the connection kept */
	ck_assert_int_eq(head("GET / HTTP/1.1\r\nAuthorization: Bearer tok2\r\n\r\n", "tok").err.status, 401);
	ck_assert_int_eq(head("GET / HTTP/1.1\r\nAuthorization: Bearer tok\r\n\r\n", "tok2").err.status, 401);
	/* 401 comes before anything that would tell a stranger more. */
	ck_assert_int_eq(head("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", "t").err.status, 401);
	ck_assert_int_eq(head("BREW / HTTP/1.1\r\n\r\n", "t").err.status, 401);
	ck_assert(!head("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", "t").framed);
}
END_TEST

START_TEST(test_head_refusals)
{
	static const struct {
		const char *head;
		int status;
		bool framed;
	} cases[] = {
		{"\r\n", 400, false},
		{"GET /\r\n\r\n", 400, false},
		{"GET  / HTTP/1.1\r\n\r\n", 400, false},
		{"GET / x HTTP/1.1\r\n\r\n", 400, false},
		{"GET\t/ HTTP/1.1\r\n\r\n", 400, false},
		{"GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400, false},
		{"GET / HTTP/1.1\r\n: empty name\r\n\r\n", 400, false},
		{"GET / HTTP/1.1\r\nContent-Length : 5\r\n\r\n", 400, false},
		{"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", 400, false},
		{"GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", 400, false},
		{"GET / HTTP/1.1\r\nA: b\x01\r\n\r\n", 400, false},
		{"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 400, false},
		{"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", 400, false},
		{"POST / HTTP/1.1\r\nContent-Length: 5 5\r\n\r\n", 400, false},
		{"POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", 400, false},
		{"HEAD / HTTP/1.1\r\nContent-Length: 5\r\n\r\n", 400, false},
		{"GET / HTTP/2.0\r\n\r\n", 505, true},
		{"GET / http/1.1\r\n\r\n", 505, true},
		{"BREW / HTTP/1.1\r\n\r\n", 501, true},
		{"get / HTTP/1.1\r\n\r\n", 501, true},
		{"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 411, false},
		{"POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\nContent-Length: 1\r\n\r\n", 411, false},
		{"POST / HTTP/1.1\r\nContent-Length: 1001\r\n\r\n", 413, true},
		{"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999999\r\n\r\n", 413, true},
		{"GET / HTTP/1.1\r\nExpect: 200-ok\r\n\r\n", 417, true},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		roost_http_head h = head(cases[i].head, NULL);
		ck_assert_msg(h.err.status == cases[i].status, "case %zu: %d, want %d (%s)", i,
		              h.err.status, cases[i].status, h.err.message);
		ck_assert_msg(h.framed == cases[i].framed, "case %zu: framed %d", i, h.framed);
	}
	ck_assert_str_eq(head("POST / HTTP/1.1\r\nContent-Length: 1001\r\n\r\n", NULL).err.message,
	                 "Request body too large (limit 1000 bytes)");
}
END_TEST

/* ---- JSON bodies ------------------------------------------------------------ */

START_TEST(test_duplicate_keys_are_400)
{
	static const char *const dup[] = {
		"{\"topic\": \"a\", \"topic\": \"$SYS/x\"}",
		"{\"a\": 1, \"b\": 2, \"c\": 3, \"a\": 4}",
		"{\"x\": {\"k\": 1, \"k\": 2}}",
		"{\"x\": [{\"k\": 1}, {\"j\": 1, \"k\": 2, \"j\": 3}]}",
		"{\"\\u0061\": 1, \"a\": 2}", /* the same key, spelled differently */
	};
	for (size_t i = 0; i < sizeof dup / sizeof dup[0]; i++) {
		roost_http_error err = {0, ""};
		cJSON *o = roost_http_json_object_parse(dup[i], strlen(dup[i]), "Data", &err);
		ck_assert_msg(o == NULL, "accepted %s", dup[i]);
		ck_assert_int_eq(err.status, 400);
		ck_assert_msg(strstr(err.message, "more than once"), "%s", err.message);
	}
	roost_http_error err;
	const char *fine = "{\"a\": {\"k\": 1}, \"b\": {\"k\": 2}, \"A\": 3}";
	cJSON *o = roost_http_json_object_parse(fine, strlen(fine), "Data", &err);
	ck_assert_ptr_nonnull(o); /* the same key in two objects, and case, are fine */
	cJSON_Delete(o);
	roost_http_publish p;
	const char *body = "{\"topic\": \"a/b\", \"qos\": 0, \"qos\": 2}";
	ck_assert_int_eq(roost_http_publish_parse(body, strlen(body), &p, &err), ROOST_ERR_INVALID);
	ck_assert_str_eq(err.message, "Data has the key 'qos' more than once.");
}
END_TEST

/* ---- mqtt.publish bodies ---------------------------------------------------- */

static roost_err publish(const char *body, roost_http_publish *p, roost_http_error *err)
{
	return roost_http_publish_parse(body, strlen(body), p, err);
}

START_TEST(test_publish_v5_properties)
{
	roost_http_publish p;
	roost_http_error err;
	ck_assert_int_eq(publish("{\"topic\": \"t\", \"properties\": {\"content_type\": \"c\", \"user_properties\": "
	                         "[[\"k\", \"1\"], [\"k\", \"2\"]], \"correlation_data\": \"q80=\", "
	                         "\"response_topic\": \"r/x\", \"message_expiry_interval\": 60}}", &p, &err),
	                 ROOST_OK);
	/* Expiry first (a message's stored form), then the others in the body's order. */
	const uint8_t want[] = {0x02, 0, 0, 0, 60, 0x03, 0, 1, 'c', 0x26, 0, 1, 'k', 0, 1, '1', 0x26, 0, 1, 'k', 0, 1, '2',
	                        0x09, 0, 2, 0xAB, 0xCD, 0x08, 0, 3, 'r', '/', 'x'};
	ck_assert_uint_eq(p.props_len, sizeof want);
	ck_assert_mem_eq(p.props, want, sizeof want);
	roost_http_publish_cleanup(&p);
	static const char *bad[] = {
		"{\"topic\": \"t\", \"properties\": []}",
		"{\"topic\": \"t\", \"properties\": {\"response_topic\": \"a/#\"}}",
		"{\"topic\": \"t\", \"properties\": {\"message_expiry_interval\": -1}}",
		"{\"topic\": \"t\", \"properties\": {\"message_expiry_interval\": 1.5}}",
		"{\"topic\": \"t\", \"properties\": {\"correlation_data\": \"abc\"}}",
		"{\"topic\": \"t\", \"properties\": {\"user_properties\": [[\"k\"]]}}",
		"{\"topic\": \"t\", \"properties\": {\"user_properties\": [[\"k\", 1]]}}",
		"{\"topic\": \"t\", \"properties\": {\"topic_alias\": 1}}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_int_eq(publish(bad[i], &p, &err), ROOST_ERR_INVALID);
		ck_assert_int_eq(err.status, 400);
		ck_assert_msg(strstr(err.message, "properties"), "%s", err.message);
	}
}
END_TEST

START_TEST(test_publish_valid)
{
	roost_http_publish p;
	roost_http_error err;
	ck_assert_int_eq(publish("{\"topic\": \"a/b\", \"payload\": \"on\", \"qos\": 2, \"retain\": true}",
	                         &p, &err), ROOST_OK);
	ck_assert_str_eq(p.topic, "a/b");
	ck_assert_str_eq(p.payload, "on");
	ck_assert_uint_eq(p.payload_len, 2);
	ck_assert_uint_eq(p.qos, 2);
	ck_assert(p.retain);
	roost_http_publish_cleanup(&p);

	/* Defaults: payload "", qos 0, retain false. */
	ck_assert_int_eq(publish(" {\"topic\":\"x\"}\n", &p, &err), ROOST_OK);
	ck_assert_str_eq(p.payload, "");
	ck_assert_uint_eq(p.qos, 0);
	ck_assert(!p.retain);
	roost_http_publish_cleanup(&p);

	/* A number payload becomes its text, as Home Assistant's cv.string. */
	ck_assert_int_eq(publish("{\"topic\":\"t\",\"payload\":21.5}", &p, &err), ROOST_OK);
	ck_assert_str_eq(p.payload, "21.5");
	roost_http_publish_cleanup(&p);
	ck_assert_int_eq(publish("{\"topic\":\"t\",\"payload\":3}", &p, &err), ROOST_OK);
	ck_assert_str_eq(p.payload, "3");
	roost_http_publish_cleanup(&p);

	/* UTF-8 topics and payloads pass through. */
	ck_assert_int_eq(publish("{\"topic\":\"k\xc3\xbc" "che/licht\",\"payload\":\"\\u00e9t\\u00e9\"}",
	                         &p, &err), ROOST_OK);
	ck_assert_str_eq(p.topic, "k\xc3\xbc" "che/licht");
	ck_assert_str_eq(p.payload, "\xc3\xa9t\xc3\xa9");
	roost_http_publish_cleanup(&p);
}
END_TEST

static void publish_rejected(const char *body, const char *message_part)
{
	roost_http_publish p;
	roost_http_error err = {0};
	ck_assert_msg(publish(body, &p, &err) == ROOST_ERR_INVALID, "accepted: %s", body);
	ck_assert_int_eq(err.status, 400);
	ck_assert_msg(strstr(err.message, message_part), "%s: message '%s' lacks '%s'", body,
	              err.message, message_part);
	ck_assert_ptr_null(p.topic);
	ck_assert_ptr_null(p.payload);
}

/* Where a topic may be published is the broker's decision, mapped once. */
START_TEST(test_publish_status_of_broker_answers)
{
	ck_assert_int_eq(roost_http_publish_status(ROOST_OK), 200);
	ck_assert_int_eq(roost_http_publish_status(ROOST_ERR_NOT_AUTHORIZED), 403);
	ck_assert_int_eq(roost_http_publish_status(ROOST_ERR_BAD_TOPIC), 400);
	ck_assert_int_eq(roost_http_publish_status(ROOST_ERR_TOO_LARGE), 400);
	ck_assert_int_eq(roost_http_publish_status(ROOST_ERR_QUOTA), 503);
	ck_assert_int_eq(roost_http_publish_status(ROOST_ERR_NOMEM), 500);
	ck_assert_int_eq(roost_http_publish_status(ROOST_ERR_IO), 500);
	/* [MQTT-4.7.2-1] a $ topic is syntactically a topic name: the parser
	 * passes it on and the broker refuses it (ROOST_ERR_NOT_AUTHORIZED). */
	roost_http_publish p;
	roost_http_error err;
	const char *body = "{\"topic\": \"$SYS/broker/version\"}";
	ck_assert_int_eq(roost_http_publish_parse(body, strlen(body), &p, &err), ROOST_OK);
	ck_assert_str_eq(p.topic, "$SYS/broker/version");
	roost_http_publish_cleanup(&p);
}
END_TEST

START_TEST(test_publish_malformed)
{
	publish_rejected("{\"topic\": ", "Data should be valid JSON");
	publish_rejected("not json", "Data should be valid JSON");
	publish_rejected("{\"topic\": \"a\"} trailing", "Data should be valid JSON");
	publish_rejected("[1, 2]", "Data should be a JSON object");
	publish_rejected("\"a/b\"", "Data should be a JSON object");
	publish_rejected("", "topic is required");
	publish_rejected("{}", "topic is required");
	publish_rejected("{\"payload\": \"x\"}", "topic is required");
	publish_rejected("{\"topic\": 5}", "topic must be a string");
	publish_rejected("{\"topic\": null}", "topic must be a string");
	publish_rejected("{\"topic\": \"\"}", "not a valid MQTT topic");
	/* [MQTT-3.3.2-2] no wildcards in a topic name. */
	publish_rejected("{\"topic\": \"a/#\"}", "not a valid MQTT topic");
	publish_rejected("{\"topic\": \"a/+/b\"}", "not a valid MQTT topic");
	/* [MQTT-1.5.3-1] ill-formed UTF-8 (a lone continuation byte). */
	publish_rejected("{\"topic\": \"a\x80\"}", "not a valid MQTT topic");
	publish_rejected("{\"topic\": \"t\", \"qos\": 3}", "qos must be");
	publish_rejected("{\"topic\": \"t\", \"qos\": -1}", "qos must be");
	publish_rejected("{\"topic\": \"t\", \"qos\": 1.5}", "qos must be");
	publish_rejected("{\"topic\": \"t\", \"qos\": \"1\"}", "qos must be");
	publish_rejected("{\"topic\": \"t\", \"retain\": \"yes\"}", "retain must be");
	publish_rejected("{\"topic\": \"t\", \"retain\": 1}", "retain must be");
	publish_rejected("{\"topic\": \"t\", \"payload\": true}", "payload must be a string");
	publish_rejected("{\"topic\": \"t\", \"payload\": null}", "payload must be a string");
	publish_rejected("{\"topic\": \"t\", \"payload\": {\"a\": 1}}", "payload must be a string");
	publish_rejected("{\"topic\": \"t\", \"retian\": true}", "extra key not allowed: 'retian'");
}
END_TEST

START_TEST(test_publish_nul_in_body_is_not_json)
{
	roost_http_publish p;
	roost_http_error err;
	const char body[] = "{\"topic\":\"a\"}\0garbage";
	ck_assert_int_eq(roost_http_publish_parse(body, sizeof body - 1, &p, &err), ROOST_ERR_INVALID);
	ck_assert_int_eq(err.status, 400);
}
END_TEST

START_TEST(test_publish_topic_length_limit)
{
	size_t n = 65536;
	char *body = malloc(n + 32);
	strcpy(body, "{\"topic\":\"");
	memset(body + 10, 'a', n);
	strcpy(body + 10 + n, "\"}");
	roost_http_publish p;
	roost_http_error err;
	ck_assert_int_eq(roost_http_publish_parse(body, strlen(body), &p, &err), ROOST_ERR_INVALID);
	/* One byte less is the longest MQTT topic. */
	strcpy(body + 10 + n - 1, "\"}");
	ck_assert_int_eq(roost_http_publish_parse(body, strlen(body), &p, &err), ROOST_OK);
	ck_assert_uint_eq(strlen(p.topic), 65535);
	roost_http_publish_cleanup(&p);
	free(body);
}
END_TEST

START_TEST(test_publish_alloc_failure)
{
	const char *body = "{\"topic\":\"a\",\"payload\":\"b\"}";
	/* Every allocation that can fail does, in turn: NOMEM, nothing leaked. */
	for (unsigned long n = 1;; n++) {
		roost_http_publish p;
		roost_http_error err;
		roost_alloc_fail_after(n);
		roost_err e = roost_http_publish_parse(body, strlen(body), &p, &err);
		roost_alloc_fail_after(0);
		if (e == ROOST_OK) {
			roost_http_publish_cleanup(&p);
			break;
		}
		ck_assert_int_eq(e, ROOST_ERR_NOMEM);
		ck_assert_int_eq(err.status, 500);
		ck_assert_ptr_null(p.topic);
	}
}
END_TEST

/* ---- events ------------------------------------------------------------------ */

START_TEST(test_event_types)
{
	ck_assert(roost_http_event_type_valid("my_event"));
	ck_assert(roost_http_event_type_valid("a.b-c_D9"));
	ck_assert(!roost_http_event_type_valid(""));
	ck_assert(!roost_http_event_type_valid("a/b"));
	ck_assert(!roost_http_event_type_valid("a b"));
	ck_assert(!roost_http_event_type_valid("a%20b"));
	ck_assert(!roost_http_event_type_valid("\xc3\xa9"));
	char t[ROOST_HTTP_MAX_EVENT_TYPE + 2];
	memset(t, 'e', sizeof t);
	t[ROOST_HTTP_MAX_EVENT_TYPE] = '\0';
	ck_assert(roost_http_event_type_valid(t));
	t[ROOST_HTTP_MAX_EVENT_TYPE] = 'e';
	t[ROOST_HTTP_MAX_EVENT_TYPE + 1] = '\0';
	ck_assert(!roost_http_event_type_valid(t));
}
END_TEST

START_TEST(test_event_bodies)
{
	char *data;
	roost_http_error err;
	ck_assert_int_eq(roost_http_event_parse("e", "", 0, &data, &err), ROOST_OK);
	ck_assert_str_eq(data, "{}");
	roost_free(data);
	const char *body = "{\n  \"a\": [1, 2],\n  \"b\": \"x\"\n}";
	ck_assert_int_eq(roost_http_event_parse("e", body, strlen(body), &data, &err), ROOST_OK);
	ck_assert_str_eq(data, "{\"a\":[1,2],\"b\":\"x\"}");
	roost_free(data);
	ck_assert_int_eq(roost_http_event_parse("e", "[1]", 3, &data, &err), ROOST_ERR_INVALID);
	ck_assert_int_eq(err.status, 400);
	ck_assert_str_eq(err.message, "Event data should be a JSON object.");
	ck_assert_ptr_null(data);
	ck_assert_int_eq(roost_http_event_parse("e", "{", 1, &data, &err), ROOST_ERR_INVALID);
	ck_assert_str_eq(err.message, "Event data should be valid JSON.");
	ck_assert_int_eq(roost_http_event_parse("a/b", "{}", 2, &data, &err), ROOST_ERR_INVALID);
	ck_assert_int_eq(err.status, 400);
	ck_assert(strstr(err.message, "invalid event type"));
}
END_TEST

/* ---- the event stream ---------------------------------------------------------- */

START_TEST(test_restrict_list)
{
	ck_assert(roost_http_restrict_match(NULL, "x"));
	ck_assert(roost_http_restrict_match("", "x"));
	ck_assert(roost_http_restrict_match("a,b", "a"));
	ck_assert(roost_http_restrict_match("a,b", "b"));
	ck_assert(!roost_http_restrict_match("a,b", "c"));
	ck_assert(!roost_http_restrict_match("ab,b", "a"));
	ck_assert(!roost_http_restrict_match("a,b", "ab"));
	ck_assert(roost_http_restrict_match("a,,b", "b"));
}
END_TEST

START_TEST(test_time_iso)
{
	char buf[ROOST_HTTP_TIME_LEN];
	ck_assert_str_eq(roost_http_time_iso(0, buf), "1970-01-01T00:00:00.000000+00:00");
	/* 2024-05-01T12:34:56.789012 UTC */
	ck_assert_str_eq(roost_http_time_iso(1714566896789012ULL, buf),
	                 "2024-05-01T12:34:56.789012+00:00");
	ck_assert_uint_eq(strlen(buf), ROOST_HTTP_TIME_LEN - 1);
}
END_TEST

START_TEST(test_sse_event_shape)
{
	roost_event ev = {"my_event", "{\"a\":1}", "REMOTE", 1714566896789ULL};
	size_t len;
	char *s = roost_http_sse_event(&ev, &len);
	ck_assert_str_eq(s, "data: {\"event_type\": \"my_event\", \"data\": {\"a\":1}, \"origin\": "
	                    "\"REMOTE\", \"time_fired\": \"2024-05-01T12:34:56.789000+00:00\"}\n\n");
	ck_assert_uint_eq(len, strlen(s));
	roost_free(s);
	/* The payload of the data line parses as the event object. */
	roost_event odd = {"we\"ird", "{\n\"k\": \"v\\n\"\r\n}", NULL, 1};
	s = roost_http_sse_event(&odd, &len);
	ck_assert_int_eq(strncmp(s, "data: ", 6), 0);
	ck_assert_str_eq(s + len - 2, "\n\n");
	ck_assert_ptr_null(memchr(s, '\n', len - 2));
	s[len - 2] = '\0';
	cJSON *o = cJSON_Parse(s + 6);
	ck_assert_ptr_nonnull(o);
	ck_assert_str_eq(cJSON_GetObjectItem(o, "event_type")->valuestring, "we\"ird");
	ck_assert_str_eq(cJSON_GetObjectItem(o, "origin")->valuestring, "LOCAL");
	ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "data"), "k")->valuestring, "v\n");
	cJSON_Delete(o);
	roost_free(s);
}
END_TEST

Suite *http_request_suite(void);
Suite *http_request_suite(void)
{
	Suite *s = suite_create("http_request");
	TCase *routes = tcase_create("routes");
	tcase_add_test(routes, test_routes_exact_and_prefix);
	tcase_add_test(routes, test_routes_most_specific_wins);
	tcase_add_test(routes, test_routes_wrong_method_is_405_with_allow);
	tcase_add_test(routes, test_routes_add_remove);
	suite_add_tcase(s, routes);
	TCase *auth = tcase_create("auth");
	tcase_add_test(auth, test_loopback_addresses);
	tcase_add_test(auth, test_bearer_token);
	tcase_add_test(auth, test_head_token_before_body);
	suite_add_tcase(s, auth);
	TCase *heads = tcase_create("heads");
	tcase_add_test(heads, test_head_end);
	tcase_add_test(heads, test_head_admitted);
	tcase_add_test(heads, test_head_refusals);
	tcase_add_test(heads, test_duplicate_keys_are_400);
	suite_add_tcase(s, heads);
	TCase *valid = tcase_create("valid");
	tcase_add_test(valid, test_publish_valid);
	tcase_add_test(valid, test_publish_v5_properties);
	tcase_add_test(valid, test_event_types);
	tcase_add_test(valid, test_event_bodies);
	tcase_add_test(valid, test_restrict_list);
	tcase_add_test(valid, test_time_iso);
	tcase_add_test(valid, test_sse_event_shape);
	suite_add_tcase(s, valid);
	TCase *malformed = tcase_create("malformed");
	tcase_add_test(malformed, test_publish_malformed);
	tcase_add_test(malformed, test_publish_status_of_broker_answers);
	tcase_add_test(malformed, test_publish_nul_in_body_is_not_json);
	suite_add_tcase(s, malformed);
	TCase *limits = tcase_create("limits");
	tcase_add_test(limits, test_publish_topic_length_limit);
	suite_add_tcase(s, limits);
	TCase *life = tcase_create("lifetime");
	tcase_add_test(life, test_publish_alloc_failure);
	suite_add_tcase(s, life);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(http_request_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
