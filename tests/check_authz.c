/* check_authz.c — the broker's authorisation glue: component hooks before
 * the files, the anonymous policy per listener, and hook removal. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

static int hook_deny_write(void *ctx, const char *client_id, const char *username, const char *topic, size_t len,
                           int access)
{
	const char **seen = ctx;
	*seen = client_id;
	(void)username;
	if (access == ROOST_ACL_WRITE && len >= 7 && memcmp(topic, "locked/", 7) == 0)
		return ROOST_AUTH_DENY;
	return ROOST_AUTH_DEFER;
}

static roost_acl *acl_of(const char *text)
{
	roost_acl *acl = NULL;
	roost_config_errors errs = {0};
	ck_assert_int_eq(roost_acl_load_string("acl", text, strlen(text), &acl, &errs), ROOST_OK);
	roost_config_errors_cleanup(&errs);
	return acl;
}

static roost_err pub(roost_broker *b, const char *id, const char *user, const char *topic)
{
	const char *why = NULL;
	roost_err err = broker_authz_publish(b, NULL, id, user, topic, strlen(topic), &why);
	if (err)
		ck_assert_ptr_nonnull(why);
	return err;
}

/* [MQTT-4.7.2-1] nobody but the broker publishes '$' topics; a client may
 * write only its own bridge notification topic. */
START_TEST(test_authz_publish_dollar_rule_MQTT_4_7_2_1)
{
	fixture f;
	setup(&f, 1);
	ck_assert_int_eq(pub(f.b, "c1", NULL, "$SYS/broker/version"), ROOST_ERR_NOT_AUTHORIZED);
	ck_assert_int_eq(pub(f.b, "c1", NULL, "$share/x"), ROOST_ERR_NOT_AUTHORIZED);
	ck_assert_int_eq(pub(f.b, "c1", NULL, "$SYS/broker/connection/c1/state"), ROOST_OK);
	ck_assert_int_eq(pub(f.b, "c1", NULL, "$SYS/broker/connection/c2/state"), ROOST_ERR_NOT_AUTHORIZED);
	ck_assert_int_eq(pub(f.b, "c1", NULL, "$SYS/broker/connection/c1/state/x"), ROOST_ERR_NOT_AUTHORIZED);
	ck_assert_int_eq(pub(f.b, "c1", NULL, "$SYS/broker/connection/c1"), ROOST_ERR_NOT_AUTHORIZED);
	ck_assert_int_eq(pub(f.b, "c1", NULL, "home/x"), ROOST_OK);
	ck_assert_int_eq(pub(f.b, "c1", NULL, "home/+"), ROOST_ERR_BAD_TOPIC); /* [MQTT-3.3.2-2] */
	/* A component (client id NULL) has no bridge topic either. */
	ck_assert_int_eq(pub(f.b, NULL, NULL, "$SYS/broker/connection/c1/state"), ROOST_ERR_NOT_AUTHORIZED);
	ck_assert_int_eq(pub(f.b, NULL, NULL, "home/x"), ROOST_OK);
	teardown(&f);
}
END_TEST

/* The bridge exception is still subject to the ACL. */
START_TEST(test_authz_publish_acl_applies_to_bridge_topic_and_clients)
{
	fixture f;
	setup(&f, 1);
	f.b->acl = acl_of("user alice\ntopic write home/alice/#\ntopic write $SYS/broker/connection/#\n");
	ck_assert_int_eq(pub(f.b, "a", "alice", "home/alice/door"), ROOST_OK);
	ck_assert_int_eq(pub(f.b, "a", "alice", "home/bob/door"), ROOST_ERR_NOT_AUTHORIZED);
	ck_assert_int_eq(pub(f.b, "a", "alice", "$SYS/broker/connection/a/state"), ROOST_OK);
	ck_assert_int_eq(pub(f.b, "b", "bob", "$SYS/broker/connection/b/state"), ROOST_ERR_NOT_AUTHORIZED);
	ck_assert_int_eq(pub(f.b, "b", NULL, "home/alice/door"), ROOST_ERR_NOT_AUTHORIZED);
	/* A component is not an acl_file identity: only hooks decide for it. */
	ck_assert_int_eq(pub(f.b, NULL, NULL, "home/bob/door"), ROOST_OK);
	teardown(&f);
}
END_TEST

static int delivered;
static void count_msg(void *ctx, roost_msg *msg, uint8_t qos)
{
	(void)ctx;
	(void)msg;
	(void)qos;
	delivered++;
}

/* roost_broker_publish, the component path (HTTP API), is refused with an
 * error the component can answer 403/400 with, and nothing is delivered. */
START_TEST(test_authz_component_publish_refused_with_error)
{
	fixture f;
	setup(&f, 1);
	const char *seen = NULL;
	roost_auth_hook hook = {.acl = hook_deny_write, .ctx = &seen};
	ck_assert_int_eq(roost_broker_auth_hook_add(f.b, &hook), ROOST_OK);
	roost_broker_sub *sub = NULL;
	ck_assert_int_eq(roost_broker_subscribe(f.b, "#", 0, count_msg, NULL, &sub), ROOST_OK);
	ck_assert_int_eq(roost_broker_subscribe(f.b, "$SYS/#", 0, count_msg, NULL, NULL), ROOST_OK);
	size_t retained = roost_topic_tree_retained_count(f.b->tree); /* roost's own $SYS values */
	delivered = 0;
	roost_msg *m = roost_msg_new("$SYS/broker/version", 19, (const uint8_t *)"x", 1, 0, true);
	ck_assert_int_eq(roost_broker_publish(f.b, m), ROOST_ERR_NOT_AUTHORIZED);
	roost_msg_unref(m);
	m = roost_msg_new("locked/x", 8, (const uint8_t *)"x", 1, 0, false);
	ck_assert_int_eq(roost_broker_publish(f.b, m), ROOST_ERR_NOT_AUTHORIZED);
	ck_assert_str_eq(seen, "$component");
	roost_msg_unref(m);
	m = roost_msg_new("a/+", 3, (const uint8_t *)"x", 1, 0, false);
	ck_assert_int_eq(roost_broker_publish(f.b, m), ROOST_ERR_BAD_TOPIC);
	roost_msg_unref(m);
	char deep[402];
	for (size_t i = 0; i < sizeof deep; i++)
		deep[i] = i % 2 ? '/' : 'a';
	m = roost_msg_new(deep, 401, (const uint8_t *)"x", 1, 0, true); /* 201 levels */
	ck_assert_int_eq(roost_broker_publish(f.b, m), ROOST_ERR_TOO_LARGE);
	roost_msg_unref(m);
	ck_assert_int_eq(delivered, 0);
	ck_assert_uint_eq(roost_topic_tree_retained_count(f.b->tree), retained); /* nothing refused was kept */
	m = roost_msg_new("open/x", 6, (const uint8_t *)"x", 1, 0, false);
	ck_assert_int_eq(roost_broker_publish(f.b, m), ROOST_OK);
	roost_msg_unref(m);
	ck_assert_int_eq(delivered, 1);
	/* The broker's own entry is exempt: its $SYS messages are delivered. */
	m = roost_msg_new("$SYS/broker/uptime", 18, (const uint8_t *)"1", 1, 0, false);
	ck_assert_int_eq(broker_publish(f.b, m), ROOST_OK);
	roost_msg_unref(m);
	ck_assert_int_eq(delivered, 2);
	roost_broker_auth_hook_remove(f.b, &hook);
	teardown(&f);
}
END_TEST

/* A will is decided again for the rights of the moment: one its client may
 * no longer publish is dropped (released, c->will NULL). */
START_TEST(test_authz_will_decided_again_when_rights_shrink)
{
	fixture f;
	setup(&f, 1);
	f.b->acl = acl_of("user alice\ntopic write shared/#\n");
	roost_session *s = roost_session_new("a1", 2, false);
	roost_session_set_username(s, "alice", 5);
	roost_listener lo = {.loopback = true};
	roost_conn c = {.b = f.b, .listener = &lo, .session = s, .state = CONN_ACTIVE};
	c.will = roost_msg_new("shared/gone", 11, (const uint8_t *)"x", 1, 1, false);
	ck_assert(broker_authz_will(f.b, &c));
	ck_assert_ptr_nonnull(c.will);
	roost_acl_free(f.b->acl);
	f.b->acl = acl_of("user alice\ntopic write home/#\n");
	ck_assert(!broker_authz_will(f.b, &c));
	ck_assert_ptr_null(c.will);
	ck_assert(broker_authz_will(f.b, &c)); /* nothing left to decide */
	roost_session_free(s);
	teardown(&f);
}
END_TEST

/* The topics of the PUBLISH packets written to out, comma-separated. */
static void published_topics(struct evbuffer *out, char *buf, size_t cap)
{
	size_t len = evbuffer_get_length(out);
	const uint8_t *p = evbuffer_pullup(out, (ev_ssize_t)len);
	buf[0] = '\0';
	for (size_t off = 0; off < len;) {
		roost_frame f = {0};
		roost_codec_error e = {0};
		roost_err err = roost_frame_peek(p + off, len - off, 1u << 20, 4, &f, &e);
		ck_assert(err == ROOST_OK || err == ROOST_ERR_NEED_MORE);
		ck_assert_uint_le(off + f.total_len, len);
		roost_publish pub;
		ck_assert_int_eq(roost_decode_publish(p + off, f.total_len, 4, &pub, &e), ROOST_OK);
		size_t n = strlen(buf);
		snprintf(buf + n, cap - n, "%s%.*s", n ? "," : "", (int)pub.topic.len, (const char *)pub.topic.ptr);
		off += f.total_len;
	}
}

/* The single point where a queued delivery leaves for the wire decides for
 * the receiver's rights now: a denied one is dropped, the rest go out in
 * order; what is inflight already is not asked again [MQTT-4.4.0-1]. */
START_TEST(test_authz_pump_checks_each_queued_delivery_for_its_receiver)
{
	fixture f;
	setup(&f, 1);
	f.b->acl = acl_of("user alice\ntopic read shared/#\ntopic deny shared/secret\n");
	int fds[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	roost_session *s = roost_session_new("a1", 2, false);
	roost_session_set_username(s, "alice", 5);
	roost_listener lo = {.loopback = true};
	roost_conn c = {.b = f.b, .listener = &lo, .session = s, .state = CONN_ACTIVE, .version = 4};
	c.bev = bufferevent_socket_new(f.base, fds[0], BEV_OPT_CLOSE_ON_FREE);
	ck_assert_ptr_nonnull(c.bev);
	static const char *const topics[] = {"shared/a", "shared/secret", "shared/b", "other/x"};
	roost_enqueue_result r;
	for (size_t i = 0; i < 4; i++) {
		roost_msg *m = roost_msg_new(topics[i], strlen(topics[i]), (const uint8_t *)"p", 1, 1, false);
		ck_assert_int_eq(roost_session_enqueue(s, m, 1, &f.b->limits, &r), ROOST_OK);
		roost_msg_unref(m);
	}
	roost_session_set_conn(s, &c);
	broker_session_pump(f.b, s);
	char got[128];
	published_topics(bufferevent_get_output(c.bev), got, sizeof got);
	ck_assert_str_eq(got, "shared/a,shared/b");
	ck_assert_uint_eq(roost_session_queue_len(s), 0);
	ck_assert_uint_eq(roost_session_inflight_len(s), 2);
	ck_assert_uint_eq(roost_session_stats_get(s)->dropped_denied, 2);
	roost_session_set_conn(s, NULL);
	bufferevent_free(c.bev);
	close(fds[1]);
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
	tcase_add_test(tc, test_authz_publish_dollar_rule_MQTT_4_7_2_1);
	tcase_add_test(tc, test_authz_publish_acl_applies_to_bridge_topic_and_clients);
	tcase_add_test(tc, test_authz_component_publish_refused_with_error);
	tcase_add_test(tc, test_authz_will_decided_again_when_rights_shrink);
	tcase_add_test(tc, test_authz_pump_checks_each_queued_delivery_for_its_receiver);
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
