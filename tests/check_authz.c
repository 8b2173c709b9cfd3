/* check_authz.c — the broker's authorisation glue: component hooks before
 * the files, the anonymous policy per listener, and hook removal. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "../broker/internal.h"
#include "roost/acl.h"
#include "roost/alloc.h"
#include "roost/auth.h"

static int hook_connect(void *ctx, const char *client_id, const char *username, const uint8_t *password,
                        size_t plen, bool loopback)
{
	(void)ctx;
	(void)client_id;
	(void)password;
	(void)plen;
	(void)loopback;
	if (username && strcmp(username, "mallory") == 0)
		return ROOST_AUTH_DENY;
	if (username && strcmp(username, "trusted") == 0)
		return ROOST_AUTH_ALLOW;
	return ROOST_AUTH_DEFER;
}

static int hook_acl(void *ctx, const char *client_id, const char *username, const char *topic, size_t len,
                    int access)
{
	int *calls = ctx;
	(*calls)++;
	(void)client_id;
	(void)username;
	if (len >= 7 && memcmp(topic, "secret/", 7) == 0 && access == ROOST_ACL_READ)
		return ROOST_AUTH_DENY;
	return ROOST_AUTH_DEFER;
}

typedef struct fixture {
	struct event_base *base;
	roost_config *cfg;
	roost_broker *b;
	roost_log log;
} fixture;

static void setup(fixture *f, int allow_anonymous)
{
	memset(f, 0, sizeof *f);
	f->base = event_base_new();
	ck_assert_int_eq(roost_config_defaults(&f->cfg), ROOST_OK);
	f->cfg->allow_anonymous = allow_anonymous;
	f->log = (roost_log){.level = ROOST_LOG_ERROR};
	f->b = roost_broker_new(f->base, f->cfg, &f->log, roost_clock_system());
	ck_assert_ptr_nonnull(f->b);
}

static void teardown(fixture *f)
{
	roost_broker_free(f->b);
	roost_config_free(f->cfg);
	event_base_free(f->base);
}

START_TEST(test_authz_connect_hook_decides_before_the_files)
{
	fixture f;
	setup(&f, -1);
	roost_listener lan = {.loopback = false}, lo = {.loopback = true};
	roost_conn c_lan = {.b = f.b, .listener = &lan}, c_lo = {.b = f.b, .listener = &lo, .peer_loopback = true};
	const char *why = NULL;
	/* No hook: anonymous on loopback only (allow_anonymous not set). */
	ck_assert_int_eq(broker_authz_connect(f.b, &c_lo, "a", NULL, NULL, 0, false, &why), ROOST_AUTH_DEFER);
	ck_assert_int_eq(broker_authz_connect(f.b, &c_lan, "a", NULL, NULL, 0, false, &why), ROOST_AUTH_DENY);
	ck_assert_ptr_nonnull(strstr(why, "allow_anonymous: true"));
	/* Without a password_file a user name is not an identity. */
	ck_assert_int_eq(broker_authz_connect(f.b, &c_lan, "a", "trusted", NULL, 0, false, &why), ROOST_AUTH_DENY);
	static const roost_auth_hook hook = {.connect = hook_connect};
	ck_assert_int_eq(roost_broker_auth_hook_add(f.b, &hook), ROOST_OK);
	ck_assert_int_eq(broker_authz_connect(f.b, &c_lan, "a", "trusted", NULL, 0, false, &why), ROOST_AUTH_ALLOW);
	ck_assert_int_eq(broker_authz_connect(f.b, &c_lo, "a", "mallory", NULL, 0, false, &why), ROOST_AUTH_DENY);
	/* A deferring hook leaves the decision to the policy. */
	ck_assert_int_eq(broker_authz_connect(f.b, &c_lo, "a", "someone", NULL, 0, false, &why), ROOST_AUTH_DEFER);
	roost_broker_auth_hook_remove(f.b, &hook);
	ck_assert_int_eq(broker_authz_connect(f.b, &c_lo, "a", "mallory", NULL, 0, false, &why), ROOST_AUTH_DEFER);
	teardown(&f);
}
END_TEST

START_TEST(test_authz_anonymous_policy_true_and_false)
{
	fixture f;
	roost_listener lan = {.loopback = false}, lo = {.loopback = true};
	const char *why;
	setup(&f, 1);
	roost_conn c1 = {.b = f.b, .listener = &lan};
	ck_assert_int_eq(broker_authz_connect(f.b, &c1, "a", NULL, NULL, 0, false, &why), ROOST_AUTH_DEFER);
	teardown(&f);
	setup(&f, 0);
	roost_conn c2 = {.b = f.b, .listener = &lo, .peer_loopback = true};
	ck_assert_int_eq(broker_authz_connect(f.b, &c2, "a", NULL, NULL, 0, false, &why), ROOST_AUTH_DENY);
	ck_assert_ptr_nonnull(strstr(why, "allow_anonymous: false"));
	/* A verified certificate identity is accepted without a password. */
	ck_assert_int_eq(broker_authz_connect(f.b, &c2, "a", "device-7", NULL, 0, true, &why), ROOST_AUTH_ALLOW);
	teardown(&f);
}
END_TEST

START_TEST(test_authz_acl_hook_on_topics)
{
	fixture f;
	setup(&f, 1);
	roost_session *s = roost_session_new("c1", 2, true);
	roost_session_set_username(s, "u", 1);
	/* No ACL file and no hook: everything is allowed. */
	ck_assert(broker_authz_topic(f.b, s, "secret/x", 8, ROOST_ACL_READ));
	int calls = 0;
	roost_auth_hook hook = {.acl = hook_acl, .ctx = &calls};
	roost_broker_auth_hook_add(f.b, &hook);
	ck_assert(!broker_authz_topic(f.b, s, "secret/x", 8, ROOST_ACL_READ));
	ck_assert(broker_authz_topic(f.b, s, "secret/x", 8, ROOST_ACL_WRITE)); /* deferred: no file */
	ck_assert(broker_authz_topic(f.b, s, "open/x", 6, ROOST_ACL_READ));
	ck_assert_int_eq(calls, 3);
	roost_broker_auth_hook_remove(f.b, &hook);
	ck_assert(broker_authz_topic(f.b, s, "secret/x", 8, ROOST_ACL_READ));
	ck_assert_int_eq(calls, 3);
	roost_session_free(s);
	teardown(&f);
}
END_TEST

/* The PEER decides "this machine", not the listener: a loopback client of
 * a 0.0.0.0 listener is admitted, also once users exist; a LAN client of a
 * loopback-bound listener (impossible in practice, but the rule says so) is
 * not. The refusal names both ways out. */
START_TEST(test_authz_anonymous_by_peer_address_also_with_users)
{
	fixture f;
	setup(&f, -1);
	roost_listener any = {.loopback = false}, lo = {.loopback = true};
	roost_conn local = {.b = f.b, .listener = &any, .peer_loopback = true};
	roost_conn lan = {.b = f.b, .listener = &lo, .peer_loopback = false};
	const char *why = NULL;
	ck_assert_int_eq(broker_authz_connect(f.b, &local, "a", NULL, NULL, 0, false, &why), ROOST_AUTH_DEFER);
	ck_assert_int_eq(broker_authz_connect(f.b, &lan, "a", NULL, NULL, 0, false, &why), ROOST_AUTH_DENY);
	ck_assert_ptr_nonnull(strstr(why, "allow_anonymous: true"));
	ck_assert_ptr_nonnull(strstr(why, "roost passwd NAME"));
	roost_config_errors errs;
	static const char file[] = "# no lines needed to count as users\nalice:$6$AAAAAAAAAAAAAAAA$"
	                           "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\n";
	ck_assert_int_eq(roost_auth_load_string("passwd", file, sizeof file - 1, &f.b->users, &errs), ROOST_OK);
	roost_config_errors_cleanup(&errs);
	ck_assert_int_eq(broker_authz_connect(f.b, &local, "a", NULL, NULL, 0, false, &why), ROOST_AUTH_DEFER);
	ck_assert_int_eq(broker_authz_connect(f.b, &lan, "a", NULL, NULL, 0, false, &why), ROOST_AUTH_DENY);
	/* A wrong password is refused from this machine too. */
	ck_assert_int_eq(broker_authz_connect(f.b, &local, "a", "alice", (const uint8_t *)"x", 1, false, &why),
	                 ROOST_AUTH_DENY);
	teardown(&f);
}
END_TEST

/* listeners[].allow_anonymous / acl_file override the top level for clients
 * of that listener only; the decision reads broker_authz_acl(b, conn). */
START_TEST(test_authz_listener_settings_override_the_top_level)
{
	fixture f;
	setup(&f, 1);
	char acl_path[] = "/tmp/check_authz_acl.XXXXXX";
	int fd = mkstemp(acl_path);
	ck_assert_int_ge(fd, 0);
	static const char rules[] = "topic read x/#\n";
	ck_assert_int_eq(write(fd, rules, sizeof rules - 1), (ssize_t)(sizeof rules - 1));
	close(fd);
	f.cfg->listeners[0].allow_anonymous = 0;
	f.cfg->listeners[0].acl_file = roost_strdup(acl_path);
	roost_free(f.cfg->persistence.path); /* its directory holds the default passwd: none */
	f.cfg->persistence.path = roost_strdup("/nonexistent-check-authz/roost.db");
	ck_assert_int_eq(roost_broker_load_auth(f.b), ROOST_OK);
	roost_listener l0 = {.cfg = &f.cfg->listeners[0]}, other = {.loopback = true};
	roost_conn c0 = {.b = f.b, .listener = &l0, .peer_loopback = true};
	roost_conn c1 = {.b = f.b, .listener = &other, .peer_loopback = false};
	const char *why = NULL;
	ck_assert_int_eq(broker_authz_allow_anonymous(f.b, &c0), 0);
	ck_assert_int_eq(broker_authz_allow_anonymous(f.b, &c1), 1);
	ck_assert_int_eq(broker_authz_connect(f.b, &c0, "a", NULL, NULL, 0, false, &why), ROOST_AUTH_DENY);
	ck_assert_int_eq(broker_authz_connect(f.b, &c1, "a", NULL, NULL, 0, false, &why), ROOST_AUTH_DEFER);
	ck_assert_ptr_nonnull(broker_authz_acl(f.b, &c0));
	ck_assert_ptr_null(broker_authz_acl(f.b, &c1));
	ck_assert_ptr_null(broker_authz_acl(f.b, NULL));
	ck_assert(broker_authz_has_rules(f.b));
	roost_session *s = roost_session_new("c0", 2, true);
	roost_session_set_conn(s, &c0);
	ck_assert(broker_authz_topic(f.b, s, "x/1", 3, ROOST_ACL_READ));
	ck_assert(!broker_authz_topic(f.b, s, "y", 1, ROOST_ACL_READ));
	roost_session_set_conn(s, &c1); /* the same session through the other listener */
	ck_assert(broker_authz_topic(f.b, s, "y", 1, ROOST_ACL_READ));
	roost_session_set_conn(s, NULL);
	roost_session_free(s);
	unlink(acl_path);
	teardown(&f);
}
END_TEST

Suite *authz_suite(void);
Suite *authz_suite(void)
{
	Suite *s = suite_create("authz");
	TCase *tc = tcase_create("valid");
	tcase_add_test(tc, test_authz_connect_hook_decides_before_the_files);
	tcase_add_test(tc, test_authz_anonymous_policy_true_and_false);
	tcase_add_test(tc, test_authz_acl_hook_on_topics);
	tcase_add_test(tc, test_authz_anonymous_by_peer_address_also_with_users);
	tcase_add_test(tc, test_authz_listener_settings_override_the_top_level);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(authz_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
