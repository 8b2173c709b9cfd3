/*
 * check_config.c — the configuration table and YAML parser.
 *
 * valid:     defaults, etc/roost.yaml, every key, accepted spellings.
 * malformed: every kind of error, with the exact line and message, and
 *            several errors collected from one file.
 * limits:    both bounds of every integer key, overflow, integer syntax.
 * lifetime:  missing files, allocation failure at every step, ownership.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "roost/alloc.h"
#include "roost/config.h"
#include "roost/log.h"



Suite *config_suite(void);

#define NAME "test.yaml"

static roost_err load(const char *yaml, roost_config **cfg, roost_config_errors *errs)
{
	return roost_config_load_string(NAME, yaml, strlen(yaml), cfg, errs);
}

/* Load yaml that must be valid; the caller frees the result. */
static roost_config *load_ok(const char *yaml)
{
	roost_config *cfg = NULL;
	roost_config_errors errs;
	roost_err err = load(yaml, &cfg, &errs);
	if (err != ROOST_OK)
		roost_config_errors_print(&errs, stderr);
	ck_assert_int_eq(err, ROOST_OK);
	ck_assert_uint_eq(errs.count, 0);
	ck_assert_ptr_nonnull(cfg);
	return cfg;
}

/* Load yaml that must fail with exactly one error: line and message. */
static void expect_error(const char *yaml, int line, const char *message)
{
	roost_config *cfg = (roost_config *)1;
	roost_config_errors errs;
	roost_err err = load(yaml, &cfg, &errs);
	ck_assert_int_eq(err, ROOST_ERR_CONFIG);
	ck_assert_ptr_null(cfg);
	if (errs.count != 1)
		roost_config_errors_print(&errs, stderr);
	ck_assert_uint_eq(errs.count, 1);
	ck_assert_str_eq(errs.items[0].file, NAME);
	ck_assert_str_eq(errs.items[0].message, message);
	ck_assert_int_eq(errs.items[0].line, line);
	roost_config_errors_cleanup(&errs);
}

/* Like expect_error, for messages that embed libyaml's wording: a prefix. */
static void expect_error_prefix(const char *yaml, int line, const char *prefix)
{
	roost_config *cfg = NULL;
	roost_config_errors errs;
	ck_assert_int_eq(load(yaml, &cfg, &errs), ROOST_ERR_CONFIG);
	ck_assert_ptr_null(cfg);
	ck_assert_uint_eq(errs.count, 1);
	ck_assert_msg(strncmp(errs.items[0].message, prefix, strlen(prefix)) == 0, "message '%s' lacks '%s'",
	              errs.items[0].message, prefix);
	ck_assert_int_eq(errs.items[0].line, line);
	roost_config_errors_cleanup(&errs);
}

static void check_defaults(const roost_config *cfg)
{
	ck_assert_uint_eq(cfg->n_listeners, 1);
	ck_assert_ptr_null(cfg->listeners[0].bind); /* not set: "::" dual-stack */
	ck_assert_int_eq(cfg->listeners[0].port, 1883);
	ck_assert_int_eq(cfg->allow_anonymous, -1); /* not set: loopback only */
	ck_assert_uint_eq(cfg->limits.max_packet_size, 268435455);
	ck_assert_uint_eq(cfg->limits.max_connect_size, 262144);
	ck_assert_uint_eq(cfg->limits.max_queued_messages, 1000);
	ck_assert_uint_eq(cfg->limits.max_queued_bytes, 0);
	ck_assert_uint_eq(cfg->limits.max_inflight_messages, 20);
	ck_assert_int_eq(cfg->limits.max_connections, -1);
	ck_assert_uint_eq(cfg->limits.connect_timeout, 10);
	ck_assert_uint_eq(cfg->limits.max_keepalive, 65535);
	ck_assert_uint_eq(cfg->limits.max_subscriptions, 0);
	ck_assert_uint_eq(cfg->limits.max_topic_levels, 200);
	ck_assert_uint_eq(cfg->limits.max_topic_length, 65535);
	ck_assert_uint_eq(cfg->limits.max_retained_messages, 0);
	ck_assert_int_eq(cfg->log_level, ROOST_LOG_INFO);
	ck_assert(cfg->persistence.enabled);
	ck_assert_str_eq(cfg->persistence.path, "roost.db");
	ck_assert_int_eq(cfg->persistence.sync, 0);
}

START_TEST(test_persistence_keys)
{
	roost_config *cfg = load_ok("persistence:\n  path: /var/lib/roost/roost.db\n  sync: FULL\n");
	ck_assert_str_eq(cfg->persistence.path, "/var/lib/roost/roost.db");
	ck_assert_int_eq(cfg->persistence.sync, 1);
	roost_config_free(cfg);
	cfg = load_ok("persistence:\n  enabled: false\n");
	ck_assert(!cfg->persistence.enabled);
	roost_config_free(cfg);
	expect_error("persistence:\n  sync: fast\n", 2, "persistence.sync: expected one of normal, full, got 'fast'");
}
END_TEST

static void check_defaults_of(const char *yaml)
{
	roost_config *cfg = load_ok(yaml);
	check_defaults(cfg);
	ck_assert_str_eq(cfg->path, NAME);
	roost_config_free(cfg);
}

/* ---- valid ------------------------------------------------------------- */

START_TEST(test_defaults)
{
	roost_config *cfg = NULL;
	ck_assert_int_eq(roost_config_defaults(&cfg), ROOST_OK);
	check_defaults(cfg);
	ck_assert_ptr_null(cfg->path);
	roost_config_free(cfg);
}
END_TEST

START_TEST(test_etc_roost_yaml_is_the_defaults)
{
	const char *srcdir = getenv("ROOST_SRCDIR");
	char path[4096];
	snprintf(path, sizeof path, "%s/etc/roost.yaml", srcdir ? srcdir : ".");
	roost_config *cfg = NULL;
	roost_config_errors errs;
	roost_err err = roost_config_load_file(path, &cfg, &errs);
	if (err)
		roost_config_errors_print(&errs, stderr);
	ck_assert_int_eq(err, ROOST_OK);
	ck_assert_uint_eq(errs.count, 0);
	check_defaults(cfg);
	ck_assert_str_eq(cfg->path, path);
	roost_config_free(cfg);
}
END_TEST

START_TEST(test_empty_inputs_are_the_defaults)
{
	check_defaults_of("");
	check_defaults_of("# only a comment\n\n   # and another\n");
	check_defaults_of("---\n");
	check_defaults_of("---\n...\n");
	check_defaults_of("~\n");
	check_defaults_of("{}\n");
	/* A section with every key commented out is null: all its defaults. */
	check_defaults_of("limits:\n  # max_packet_size: 5\nlog:\n");
	check_defaults_of("limits: {}\nlog: {}\n");
}
END_TEST

START_TEST(test_every_key)
{
	roost_config *cfg = load_ok(
		"listeners:\n"
		"  - port: 8883\n"
		"    bind: 127.0.0.1\n"
		"  - port: 0\n"
		"  - {bind: '::1', port: 65535}\n"
		"allow_anonymous: false\n"
		"limits:\n"
		"  max_packet_size: 1024\n"
		"  max_queued_messages: 0\n"
		"  max_queued_bytes: 1099511627776\n"
		"  max_inflight_messages: 65535\n"
		"  max_connections: 500\n"
		"  connect_timeout: 3600\n"
		"  max_keepalive: 0\n"
		"  max_subscriptions: 10000000\n"
		"log:\n"
		"  level: debug\n");
	ck_assert_uint_eq(cfg->n_listeners, 3);
	ck_assert_int_eq(cfg->listeners[0].port, 8883);
	ck_assert_str_eq(cfg->listeners[0].bind, "127.0.0.1");
	ck_assert_int_eq(cfg->listeners[1].port, 0);
	ck_assert_ptr_null(cfg->listeners[1].bind); /* bind defaults per listener */
	ck_assert_int_eq(cfg->listeners[2].port, 65535);
	ck_assert_str_eq(cfg->listeners[2].bind, "::1");
	ck_assert(!cfg->allow_anonymous);
	ck_assert_uint_eq(cfg->limits.max_packet_size, 1024);
	ck_assert_uint_eq(cfg->limits.max_queued_messages, 0);
	ck_assert_uint_eq(cfg->limits.max_queued_bytes, 1099511627776ULL);
	ck_assert_uint_eq(cfg->limits.max_inflight_messages, 65535);
	ck_assert_int_eq(cfg->limits.max_connections, 500);
	ck_assert_uint_eq(cfg->limits.connect_timeout, 3600);
	ck_assert_uint_eq(cfg->limits.max_keepalive, 0);
	ck_assert_uint_eq(cfg->limits.max_subscriptions, 10000000);
	ck_assert_int_eq(cfg->log_level, ROOST_LOG_DEBUG);
	roost_config_free(cfg);
}
END_TEST

/* listeners[].protocol: Mosquitto's words; mqtt by default, anything else
 * refused with its line. */
START_TEST(test_listener_protocol)
{
	roost_config *cfg = load_ok("listeners:\n  - port: 1\n  - port: 9001\n    protocol: websockets\n"
	                            "  - port: 2\n    protocol: mqtt\n");
	ck_assert_int_eq(cfg->listeners[0].protocol, ROOST_LISTENER_MQTT);
	ck_assert_int_eq(cfg->listeners[1].protocol, ROOST_LISTENER_WEBSOCKETS);
	ck_assert_int_eq(cfg->listeners[2].protocol, ROOST_LISTENER_MQTT);
	roost_config_free(cfg);
	expect_error_prefix("listeners:\n  - port: 1\n    protocol: ws\n", 3, "listeners[0].protocol:");
}
END_TEST

/* Per-listener security: not set means the top-level key (-1 / NULL). */
START_TEST(test_listener_security_keys)
{
	roost_config *cfg = load_ok("password_file: /etc/roost/passwd\n"
	                            "listeners:\n"
	                            "  - port: 1883\n"
	                            "  - port: 8883\n"
	                            "    allow_anonymous: false\n"
	                            "    password_file: /etc/roost/tls-users\n"
	                            "    acl_file: /etc/roost/tls-acl\n"
	                            "  - {port: 1884, allow_anonymous: true}\n");
	ck_assert_int_eq(cfg->listeners[0].allow_anonymous, -1);
	ck_assert_ptr_null(cfg->listeners[0].password_file);
	ck_assert_ptr_null(cfg->listeners[0].acl_file);
	ck_assert_int_eq(cfg->listeners[1].allow_anonymous, 0);
	ck_assert_str_eq(cfg->listeners[1].password_file, "/etc/roost/tls-users");
	ck_assert_str_eq(cfg->listeners[1].acl_file, "/etc/roost/tls-acl");
	ck_assert_int_eq(cfg->listeners[2].allow_anonymous, 1);
	ck_assert_str_eq(cfg->password_file, "/etc/roost/passwd");
	roost_config_free(cfg);
	expect_error("listeners:\n  - port: 1\n    allow_anonymous: perhaps\n", 3,
	             "listeners[0].allow_anonymous: expected true or false, got 'perhaps'");
}
END_TEST

START_TEST(test_unset_keys_keep_defaults)
{
	roost_config *cfg = load_ok("limits:\n  max_inflight_messages: 5\n");
	ck_assert_uint_eq(cfg->limits.max_inflight_messages, 5);
	ck_assert_uint_eq(cfg->limits.max_queued_messages, 1000);
	ck_assert_uint_eq(cfg->n_listeners, 1);
	ck_assert_int_eq(cfg->listeners[0].port, 1883);
	ck_assert_int_eq(cfg->log_level, ROOST_LOG_INFO);
	roost_config_free(cfg);
}
END_TEST

static const struct {
	const char *text;
	bool value;
} bools[] = {
	{"true", true}, {"false", false}, {"yes", true}, {"no", false}, {"on", true}, {"off", false},
	{"TRUE", true}, {"False", false}, {"Yes", true}, {"NO", false}, {"On", true}, {"oFF", false},
	{"\"true\"", true}, {"'no'", false},
};

START_TEST(test_bool_spellings)
{
	char yaml[64];
	snprintf(yaml, sizeof yaml, "allow_anonymous: %s\n", bools[_i].text);
	roost_config *cfg = load_ok(yaml);
	ck_assert_msg(cfg->allow_anonymous == bools[_i].value, "%s", bools[_i].text);
	roost_config_free(cfg);
}
END_TEST

START_TEST(test_log_levels)
{
	static const struct {
		const char *text;
		int level;
	} levels[] = {
		{"error", ROOST_LOG_ERROR}, {"warning", ROOST_LOG_WARNING}, {"notice", ROOST_LOG_NOTICE},
		{"info", ROOST_LOG_INFO},   {"debug", ROOST_LOG_DEBUG},     {"DEBUG", ROOST_LOG_DEBUG},
		{"Warning", ROOST_LOG_WARNING}, {"'error'", ROOST_LOG_ERROR},
	};
	for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
		char yaml[64];
		snprintf(yaml, sizeof yaml, "log:\n  level: %s\n", levels[i].text);
		roost_config *cfg = load_ok(yaml);
		ck_assert_int_eq(cfg->log_level, levels[i].level);
		roost_config_free(cfg);
	}
}
END_TEST

START_TEST(test_quoted_integers)
{
	roost_config *cfg = load_ok("limits:\n  max_inflight_messages: \"123\"\n  max_keepalive: '60'\n"
	                            "listeners:\n  - port: \"1884\"\n");
	ck_assert_uint_eq(cfg->limits.max_inflight_messages, 123);
	ck_assert_uint_eq(cfg->limits.max_keepalive, 60);
	ck_assert_int_eq(cfg->listeners[0].port, 1884);
	roost_config_free(cfg);
}
END_TEST

START_TEST(test_flow_style)
{
	roost_config *cfg = load_ok("{listeners: [{port: 1}], limits: {max_keepalive: 7}, log: {level: error}}");
	ck_assert_int_eq(cfg->listeners[0].port, 1);
	ck_assert_uint_eq(cfg->limits.max_keepalive, 7);
	ck_assert_int_eq(cfg->log_level, ROOST_LOG_ERROR);
	roost_config_free(cfg);
}
END_TEST

START_TEST(test_errors_print)
{
	roost_config *cfg = NULL;
	roost_config_errors errs;
	ck_assert_int_eq(load("allow_anonymous: 3\nlimits:\n  max_keepalive: -1\n", &cfg, &errs), ROOST_ERR_CONFIG);
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);
	ck_assert_ptr_nonnull(f);
	roost_config_errors_print(&errs, f);
	fclose(f);
	ck_assert_str_eq(buf, "test.yaml:1: allow_anonymous: expected true or false, got '3'\n"
	                      "test.yaml:3: limits.max_keepalive: must be between 0 and 65535, got -1\n");
	free(buf);
	roost_config_errors_cleanup(&errs);
}
END_TEST

START_TEST(test_string_without_name)
{
	roost_config *cfg = NULL;
	roost_config_errors errs;
	ck_assert_int_eq(roost_config_load_string(NULL, "", 0, &cfg, &errs), ROOST_OK);
	ck_assert_ptr_null(cfg->path);
	roost_config_free(cfg);
	ck_assert_int_eq(roost_config_load_string(NULL, "x: 1", 4, &cfg, &errs), ROOST_ERR_CONFIG);
	ck_assert_str_eq(errs.items[0].file, "<string>");
	roost_config_errors_cleanup(&errs);
	/* errs may be NULL when only the verdict matters. */
	ck_assert_int_eq(roost_config_load_string("n", "x: 1", 4, &cfg, NULL), ROOST_ERR_CONFIG);
	ck_assert_ptr_null(cfg);
}
END_TEST

/* The length is honoured: bytes after len are not parsed. */
START_TEST(test_length_bounds_input)
{
	const char *text = "log:\n  level: debug\nGARBAGE: [";
	roost_config *cfg = NULL;
	roost_config_errors errs;
	ck_assert_int_eq(roost_config_load_string(NAME, text, 20, &cfg, &errs), ROOST_OK);
	ck_assert_int_eq(cfg->log_level, ROOST_LOG_DEBUG);
	roost_config_free(cfg);
}
END_TEST

/* ---- malformed --------------------------------------------------------- */

START_TEST(test_syntax_error)
{
	expect_error_prefix("limits:\n  max_packet_size: 5\n bad: 1\n", 3, "YAML syntax error: ");
	expect_error_prefix("limits:\n\tmax_packet_size: 5\n", 2, "YAML syntax error: ");
	expect_error("log: \"abc\n", 2,
	             "YAML syntax error: found unexpected end of stream (while scanning a quoted scalar at line 1)");
	expect_error_prefix("a: 1\n\xff\n", 2, "invalid YAML input: ");
	expect_error("listeners:\n  - port: 1\n bind: x\n", 3,
	             "YAML syntax error: did not find expected key (while parsing a block mapping at line 1)");
}
END_TEST

START_TEST(test_errors_before_syntax_error_are_kept)
{
	roost_config *cfg = NULL;
	roost_config_errors errs;
	ck_assert_int_eq(load("allow_anonymous: maybe\nlog:\n  level: loud\n  x: [\n", &cfg, &errs), ROOST_ERR_CONFIG);
	ck_assert_ptr_null(cfg);
	ck_assert_uint_eq(errs.count, 4);
	ck_assert_int_eq(errs.items[0].line, 1);
	ck_assert_int_eq(errs.items[1].line, 3);
	ck_assert_int_eq(errs.items[2].line, 4); /* unknown key x */
	ck_assert_str_eq(errs.items[2].message, "unknown key 'log.x'");
	ck_assert_int_eq(errs.items[3].line, 5);
	ck_assert(strncmp(errs.items[3].message, "YAML syntax error: ", 19) == 0);
	roost_config_errors_cleanup(&errs);
}
END_TEST

START_TEST(test_unknown_key)
{
	expect_error("allow_anonymous: true\nzebra: 1\n", 2, "unknown key 'zebra'");
	expect_error("limits:\n  zebra: {a: [1, 2]}\n", 2, "unknown key 'limits.zebra'");
	expect_error("listeners:\n  - port: 1\n    zebra: 2\n", 3, "unknown key 'listeners[0].zebra'");
	/* A dotted key is not a shortcut for a nested one. */
	expect_error("limits.max_keepalive: 5\n", 1, "unknown key 'limits.max_keepalive'");
	expect_error("limits:\n  limits: 1\n", 2, "unknown key 'limits.limits'");
}
END_TEST

START_TEST(test_unknown_key_suggestions)
{
	expect_error("limits:\n  max_inflight_mesages: 10\n", 2,
	             "unknown key 'limits.max_inflight_mesages'; did you mean 'max_inflight_messages'?");
	expect_error("alow_anonymous: true\n", 1, "unknown key 'alow_anonymous'; did you mean 'allow_anonymous'?");
	expect_error("\n\nlimits:\n  max-inflight-messages: 10\n", 4,
	             "unknown key 'limits.max-inflight-messages'; did you mean 'max_inflight_messages'?");
	expect_error("Allow_Anonymous: true\n", 1, "unknown key 'Allow_Anonymous'; did you mean 'allow_anonymous'?");
	expect_error("limits:\n  MaxPacketSize: 1\n", 2,
	             "unknown key 'limits.MaxPacketSize'; did you mean 'max_packet_size'?");
	expect_error("listeners:\n  - port: 1\n    bnid: x\n", 3,
	             "unknown key 'listeners[0].bnid'; did you mean 'bind'?");
	expect_error("listner:\n  - port: 1\n", 1, "unknown key 'listner'; did you mean 'listeners'?");
	expect_error("limitz:\n  max_keepalive: 1\n", 1, "unknown key 'limitz'; did you mean 'limits'?");
	/* A key of another section: suggest its full path. */
	expect_error("max_keepalive: 5\n", 1, "unknown key 'max_keepalive'; did you mean 'limits.max_keepalive'?");
	expect_error("limits:\n  level: info\n", 2, "unknown key 'limits.level'; did you mean 'log.level'?");
	/* Three edits away: no suggestion. */
	expect_error("alw_anonymus_: true\n", 1, "unknown key 'alw_anonymus_'");
}
END_TEST

START_TEST(test_wrong_type)
{
	expect_error("limits:\n  max_inflight_messages: abc\n", 2,
	             "limits.max_inflight_messages: expected an integer, got 'abc'");
	expect_error("allow_anonymous: maybe\n", 1, "allow_anonymous: expected true or false, got 'maybe'");
	expect_error("allow_anonymous: 1\n", 1, "allow_anonymous: expected true or false, got '1'");
	expect_error("log:\n  level: loud\n", 2,
	             "log.level: expected one of error, warning, notice, info, debug, got 'loud'");
	expect_error("listeners:\n  - port: http\n", 2, "listeners[0].port: expected an integer, got 'http'");
	/* A multi-line value is reported where the value is. */
	expect_error("limits:\n  max_keepalive:\n    abc\n", 3, "limits.max_keepalive: expected an integer, got 'abc'");
}
END_TEST

START_TEST(test_missing_value)
{
	expect_error("allow_anonymous:\n", 1, "allow_anonymous: missing value, expected true or false");
	expect_error("limits:\n  max_keepalive: ~\n", 2, "limits.max_keepalive: missing value, expected an integer");
	expect_error("listeners:\n  - port: 1\n    bind:\n", 3, "listeners[0].bind: missing value, expected a string");
	expect_error("listeners:\n  - port: 1\n    bind: ''\n", 3, "listeners[0].bind: must not be empty");
}
END_TEST

START_TEST(test_mapping_where_scalar_expected)
{
	expect_error("limits:\n  max_packet_size:\n    a: 1\n", 2,
	             "limits.max_packet_size: expected an integer, got a mapping");
	expect_error("allow_anonymous: [true]\n", 1, "allow_anonymous: expected true or false, got a sequence");
	expect_error("log:\n  level: {x: 1}\n", 2,
	             "log.level: expected one of error, warning, notice, info, debug, got a mapping");
}
END_TEST

START_TEST(test_scalar_where_mapping_expected)
{
	expect_error("limits: 5\n", 1, "limits: expected a mapping, got a scalar");
	expect_error("log: [info]\n", 1, "log: expected a mapping, got a sequence");
	expect_error("listeners: 1883\n", 1, "listeners: expected a sequence of mappings, got a scalar");
	expect_error("listeners:\n  port: 1883\n", 1, "listeners: expected a sequence of mappings, got a mapping");
	expect_error("listeners:\n  - 1883\n", 2, "listeners[0]: expected a mapping, got a scalar");
	expect_error("listeners:\n  - port: 1\n  - [1]\n", 3, "listeners[1]: expected a mapping, got a sequence");
}
END_TEST

START_TEST(test_top_level_not_a_mapping)
{
	expect_error("hello\n", 1, "the top level must be a mapping, got a scalar");
	expect_error("# c\n- port: 1\n", 2, "the top level must be a mapping, got a sequence");
	expect_error("[1, 2]\n", 1, "the top level must be a mapping, got a sequence");
}
END_TEST

START_TEST(test_listeners_errors)
{
	expect_error("listeners: []\n", 1, "listeners: at least 1 listener required");
	expect_error("listeners:\n", 1, "listeners: at least 1 listener required");
	expect_error("listeners:\n  - bind: 127.0.0.1\n", 2, "listeners[0]: missing required key 'port'");
	expect_error("listeners:\n  - port: 1\n  - {}\n", 3, "listeners[1]: missing required key 'port'");
	expect_error("listeners:\n  - port: 65536\n", 2, "listeners[0].port: must be between 0 and 65535, got 65536");
	expect_error("listeners:\n  - port: -1\n", 2, "listeners[0].port: must be between 0 and 65535, got -1");
}
END_TEST

START_TEST(test_duplicate_key)
{
	expect_error("allow_anonymous: true\nlog: {}\nallow_anonymous: false\n", 3,
	             "duplicate key 'allow_anonymous' (first on line 1)");
	expect_error("limits:\n  max_keepalive: 1\n  max_keepalive: 2\n", 3,
	             "duplicate key 'limits.max_keepalive' (first on line 2)");
	expect_error("limits: {}\nlimits:\n  max_keepalive: 2\n", 2, "duplicate key 'limits' (first on line 1)");
	expect_error("listeners:\n  - port: 1\n    bind: a\n    bind: b\n", 4,
	             "duplicate key 'listeners[0].bind' (first on line 3)");
	expect_error("listeners:\n  - port: 1\nlisteners:\n  - port: 2\n", 3,
	             "duplicate key 'listeners' (first on line 1)");
}
END_TEST

START_TEST(test_aliases_and_documents)
{
	expect_error("limits:\n  max_keepalive: &k 5\n  connect_timeout: *k\n", 3,
	             "limits.connect_timeout: YAML aliases are not supported");
	expect_error("log: {}\n---\nlog: {}\n", 2, "only one YAML document is allowed");
	expect_error("? [a, b]\n: 1\n", 1, "keys must be scalars, got a sequence");
	expect_error("limits:\n  ? {a: 1}\n  : 1\n", 2, "limits: keys must be scalars, got a mapping");
}
END_TEST

START_TEST(test_untrusted_text_is_escaped)
{
	expect_error("allow_anonymous: \"a\\nb\\u0001\"\n", 1,
	             "allow_anonymous: expected true or false, got 'a\\x0ab\\x01'");
	expect_error("\"zeb\\0ra\": 1\n", 1, "unknown key 'zeb\\x00ra'");
	expect_error("listeners:\n  - port: 1\n    bind: \"a\\0b\"\n", 3,
	             "listeners[0].bind: must not contain a NUL character");
	char yaml[300], msg[300];
	snprintf(yaml, sizeof yaml, "log:\n  level: %0200d\n", 7);
	snprintf(msg, sizeof msg, "log.level: expected one of error, warning, notice, info, debug, got '%048d...'", 0);
	expect_error(yaml, 2, msg);
}
END_TEST

/* Every kind of error in one file: all reported, in file order, right lines. */
START_TEST(test_many_errors_in_one_file)
{
	static const char yaml[] =
		"listeners:\n"                       /*  1 */
		"  - port: 70000\n"                  /*  2 */
		"    bnid: x\n"                      /*  3 */
		"  - bind: 1.2.3.4\n"                /*  4 */
		"alow_anonymous: true\n"             /*  5 */
		"allow_anonymous: maybe\n"           /*  6 */
		"allow_anonymous: yes\n"             /*  7 */
		"limits:\n"                          /*  8 */
		"  max_inflight_mesages: 3\n"        /*  9 */
		"  max_inflight_messages: abc\n"     /* 10 */
		"  max_packet_size: 0\n"             /* 11 */
		"  connect_timeout:\n"               /* 12 */
		"    a: 1\n"                         /* 13 */
		"log: info\n";                       /* 14 */
	static const struct {
		int line;
		const char *message;
	} want[] = {
		{2, "listeners[0].port: must be between 0 and 65535, got 70000"},
		{3, "unknown key 'listeners[0].bnid'; did you mean 'bind'?"},
		{4, "listeners[1]: missing required key 'port'"},
		{5, "unknown key 'alow_anonymous'; did you mean 'allow_anonymous'?"},
		{6, "allow_anonymous: expected true or false, got 'maybe'"},
		{7, "duplicate key 'allow_anonymous' (first on line 6)"},
		{9, "unknown key 'limits.max_inflight_mesages'; did you mean 'max_inflight_messages'?"},
		{10, "limits.max_inflight_messages: expected an integer, got 'abc'"},
		{11, "limits.max_packet_size: must be between 1 and 268435455, got 0"},
		{12, "limits.connect_timeout: expected an integer, got a mapping"},
		{14, "log: expected a mapping, got a scalar"},
	};
	roost_config *cfg = NULL;
	roost_config_errors errs;
	ck_assert_int_eq(load(yaml, &cfg, &errs), ROOST_ERR_CONFIG);
	ck_assert_ptr_null(cfg);
	ck_assert_uint_eq(errs.count, sizeof want / sizeof want[0]);
	for (size_t i = 0; i < errs.count; i++) {
		ck_assert_str_eq(errs.items[i].file, NAME);
		ck_assert_int_eq(errs.items[i].line, want[i].line);
		ck_assert_str_eq(errs.items[i].message, want[i].message);
	}
	roost_config_errors_cleanup(&errs);
}
END_TEST

/* ---- limits ------------------------------------------------------------ */

static const struct {
	const char *key; /* under limits: */
	long long min, max;
} int_keys[] = {
	{"max_packet_size", 1, 268435455},
	{"max_queued_messages", 0, 10000000},
	{"max_queued_bytes", 0, 1099511627776LL},
	{"max_inflight_messages", 1, 65535},
	{"max_connections", -1, 10000000},
	{"connect_timeout", 1, 3600},
	{"max_keepalive", 0, 65535},
	{"max_subscriptions", 0, 10000000},
	{"max_topic_levels", 1, 65535},
	{"max_topic_length", 1, 65535},
	{"max_retained_messages", 0, 100000000},
	{"max_connect_size", 128, 268435455},
};

static long long limit_value(const roost_config *cfg, const char *key)
{
	const roost_limits_config *l = &cfg->limits;
	if (!strcmp(key, "max_packet_size")) return l->max_packet_size;
	if (!strcmp(key, "max_queued_messages")) return l->max_queued_messages;
	if (!strcmp(key, "max_queued_bytes")) return (long long)l->max_queued_bytes;
	if (!strcmp(key, "max_inflight_messages")) return l->max_inflight_messages;
	if (!strcmp(key, "max_connections")) return l->max_connections;
	if (!strcmp(key, "connect_timeout")) return l->connect_timeout;
	if (!strcmp(key, "max_keepalive")) return l->max_keepalive;
	if (!strcmp(key, "max_subscriptions")) return l->max_subscriptions;
	if (!strcmp(key, "max_topic_levels")) return l->max_topic_levels;
	if (!strcmp(key, "max_topic_length")) return l->max_topic_length;
	if (!strcmp(key, "max_retained_messages")) return l->max_retained_messages;
	if (!strcmp(key, "max_connect_size")) return l->max_connect_size;
	ck_abort_msg("no such key %s", key);
	return 0;
}

START_TEST(test_int_bounds)
{
	const char *key = int_keys[_i].key;
	long long lo = int_keys[_i].min, hi = int_keys[_i].max;
	char yaml[128], msg[256];

	const long long good[] = {lo, hi, lo + 1, hi - 1};
	for (size_t i = 0; i < 4; i++) {
		snprintf(yaml, sizeof yaml, "limits:\n  %s: %lld\n", key, good[i]);
		roost_config *cfg = load_ok(yaml);
		ck_assert_int_eq(limit_value(cfg, key), good[i]);
		roost_config_free(cfg);
	}
	const long long bad[] = {lo - 1, hi + 1};
	for (size_t i = 0; i < 2; i++) {
		snprintf(yaml, sizeof yaml, "# bounds\nlimits:\n  %s: %lld\n", key, bad[i]);
		snprintf(msg, sizeof msg, "limits.%s: must be between %lld and %lld, got %lld", key, lo, hi, bad[i]);
		expect_error(yaml, 3, msg);
	}
	/* Beyond 64 bits: still a range error, not a wrap-around. */
	snprintf(yaml, sizeof yaml, "limits:\n  %s: 18446744073709551617\n", key);
	snprintf(msg, sizeof msg, "limits.%s: must be between %lld and %lld, got 18446744073709551617", key, lo, hi);
	expect_error(yaml, 2, msg);
}
END_TEST

START_TEST(test_integer_syntax)
{
	static const char *const not_ints[] = {
		"12abc", "1.5", "0x10", "1e3", "1_000", "+", "'-'", "--1", "+-1", "1 000", "' 12'", "'12 '", "\"\"",
		"12.", "١٢", "99999999999999999999999x",
	};
	for (size_t i = 0; i < sizeof not_ints / sizeof not_ints[0]; i++) {
		char yaml[128];
		snprintf(yaml, sizeof yaml, "limits:\n  max_keepalive: %s\n", not_ints[i]);
		roost_config *cfg = NULL;
		roost_config_errors errs;
		ck_assert_int_eq(load(yaml, &cfg, &errs), ROOST_ERR_CONFIG);
		ck_assert_uint_eq(errs.count, 1);
		ck_assert_msg(strstr(errs.items[0].message, "expected an integer, got '"), "%s: %s", not_ints[i],
		              errs.items[0].message);
		roost_config_errors_cleanup(&errs);
	}
	/* Signs and leading zeros (decimal, not octal). */
	roost_config *cfg = load_ok("limits:\n  max_keepalive: +60\n  max_connections: -1\n"
	                            "  connect_timeout: 010\n  max_subscriptions: -0\n");
	ck_assert_uint_eq(cfg->limits.max_keepalive, 60);
	ck_assert_int_eq(cfg->limits.max_connections, -1);
	ck_assert_uint_eq(cfg->limits.connect_timeout, 10);
	ck_assert_uint_eq(cfg->limits.max_subscriptions, 0);
	roost_config_free(cfg);
	expect_error("limits:\n  max_connections: -9223372036854775808\n", 2,
	             "limits.max_connections: must be between -1 and 10000000, got -9223372036854775808");
	expect_error("limits:\n  max_connections: -9223372036854775809\n", 2,
	             "limits.max_connections: must be between -1 and 10000000, got -9223372036854775809");
	expect_error("limits:\n  max_queued_bytes: 9223372036854775807\n", 2,
	             "limits.max_queued_bytes: must be between 0 and 1099511627776, got 9223372036854775807");
}
END_TEST

/* ---- lifetime ---------------------------------------------------------- */

START_TEST(test_missing_file)
{
	roost_config *cfg = (roost_config *)1;
	roost_config_errors errs;
	const char *path = "/nonexistent/roost-test/roost.yaml";
	ck_assert_int_eq(roost_config_load_file(path, &cfg, &errs), ROOST_ERR_IO);
	ck_assert_ptr_null(cfg);
	ck_assert_uint_eq(errs.count, 1);
	ck_assert_str_eq(errs.items[0].file, path);
	ck_assert_int_eq(errs.items[0].line, 0);
	ck_assert_ptr_nonnull(strstr(errs.items[0].message, path));
	ck_assert_ptr_nonnull(strstr(errs.items[0].message, "No such file"));
	roost_config_errors_cleanup(&errs);
	ck_assert_uint_eq(errs.count, 0);
}
END_TEST

START_TEST(test_directory_is_io_error)
{
	roost_config *cfg = NULL;
	roost_config_errors errs;
	ck_assert_int_eq(roost_config_load_file("/", &cfg, &errs), ROOST_ERR_IO);
	ck_assert_ptr_null(cfg);
	ck_assert_uint_eq(errs.count, 1);
	roost_config_errors_cleanup(&errs);
}
END_TEST

START_TEST(test_load_file_errors_name_the_file)
{
	char path[] = "/tmp/check_config_XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	static const char text[] = "log:\n  level: shouting\n";
	ck_assert_int_eq(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
	close(fd);
	roost_config *cfg = NULL;
	roost_config_errors errs;
	ck_assert_int_eq(roost_config_load_file(path, &cfg, &errs), ROOST_ERR_CONFIG);
	unlink(path);
	ck_assert_uint_eq(errs.count, 1);
	ck_assert_str_eq(errs.items[0].file, path);
	ck_assert_int_eq(errs.items[0].line, 2);
	roost_config_errors_cleanup(&errs);
}
END_TEST

START_TEST(test_free_null)
{
	roost_config_free(NULL);
	roost_config_errors_cleanup(NULL);
	roost_config_errors errs = {0};
	roost_config_errors_cleanup(&errs);
	roost_config_errors_print(&errs, stdout);
}
END_TEST

static const char full_yaml[] =
	"listeners:\n  - port: 1\n    bind: a\n  - port: 2\n  - port: 3\n    bind: c\n"
	"allow_anonymous: no\nlimits:\n  max_keepalive: 5\nlog:\n  level: debug\n";
static const char bad_yaml[] =
	"listeners:\n  - port: x\n    bnid: y\n  - bind: z\nalow: 1\nlimits:\n  max_keepalive: 99999\n"
	"  max_keepalive: 1\nlog: 3\n";

/* Allocation n fails for n = 1, 2, ... until the load succeeds. */
static void fail_each_allocation(const char *yaml, roost_err final_err)
{
	unsigned long n;
	for (n = 1; n < 100000; n++) {
		roost_config *cfg = (roost_config *)1;
		roost_config_errors errs;
		roost_alloc_fail_after(n);
		roost_err err = load(yaml, &cfg, &errs);
		roost_alloc_fail_after(0);
		if (err == final_err) {
			if (err == ROOST_OK)
				roost_config_free(cfg);
			else
				ck_assert_ptr_null(cfg);
			roost_config_errors_cleanup(&errs);
			break;
		}
		ck_assert_int_eq(err, ROOST_ERR_NOMEM);
		ck_assert_ptr_null(cfg);
		roost_config_errors_cleanup(&errs); /* a partial list is the caller's */
	}
	ck_assert_uint_gt(n, 1);
	ck_assert_uint_lt(n, 100000);
}

START_TEST(test_alloc_failure_valid)
{
	fail_each_allocation(full_yaml, ROOST_OK);
	fail_each_allocation("", ROOST_OK);
}
END_TEST

START_TEST(test_alloc_failure_invalid)
{
	fail_each_allocation(bad_yaml, ROOST_ERR_CONFIG);
}
END_TEST

START_TEST(test_alloc_failure_defaults_and_file)
{
	unsigned long n;
	for (n = 1;; n++) {
		roost_config *cfg = (roost_config *)1;
		roost_alloc_fail_after(n);
		roost_err err = roost_config_defaults(&cfg);
		roost_alloc_fail_after(0);
		if (err == ROOST_OK) {
			roost_config_free(cfg);
			break;
		}
		ck_assert_int_eq(err, ROOST_ERR_NOMEM);
		ck_assert_ptr_null(cfg);
	}
	ck_assert_uint_gt(n, 1);

	const char *srcdir = getenv("ROOST_SRCDIR");
	char path[4096];
	snprintf(path, sizeof path, "%s/etc/roost.yaml", srcdir ? srcdir : ".");
	for (n = 1;; n++) {
		roost_config *cfg = (roost_config *)1;
		roost_config_errors errs;
		roost_alloc_fail_after(n);
		roost_err err = roost_config_load_file(path, &cfg, &errs);
		roost_alloc_fail_after(0);
		roost_config_errors_cleanup(&errs);
		if (err == ROOST_OK) {
			roost_config_free(cfg);
			break;
		}
		ck_assert_int_eq(err, ROOST_ERR_NOMEM);
		ck_assert_ptr_null(cfg);
	}
	ck_assert_uint_gt(n, 1);
	/* The missing-file path allocates its one error too. */
	for (n = 1;; n++) {
		roost_config *cfg = NULL;
		roost_config_errors errs;
		roost_alloc_fail_after(n);
		roost_err err = roost_config_load_file("/nonexistent/x.yaml", &cfg, &errs);
		roost_alloc_fail_after(0);
		roost_config_errors_cleanup(&errs);
		if (err == ROOST_ERR_IO)
			break;
		ck_assert_int_eq(err, ROOST_ERR_NOMEM);
	}
}
END_TEST

START_TEST(test_config_owns_its_strings)
{
	char *yaml = strdup("listeners:\n  - port: 1\n    bind: 10.0.0.1\n");
	ck_assert_ptr_nonnull(yaml);
	char name[] = "owned.yaml";
	roost_config *cfg = NULL;
	roost_config_errors errs;
	ck_assert_int_eq(roost_config_load_string(name, yaml, strlen(yaml), &cfg, &errs), ROOST_OK);
	memset(yaml, 'x', strlen(yaml));
	free(yaml);
	name[0] = 'X';
	ck_assert_str_eq(cfg->listeners[0].bind, "10.0.0.1");
	ck_assert_str_eq(cfg->path, "owned.yaml");
	roost_config_free(cfg);
}
END_TEST

/* The hub connector's sections: Home Assistant's MQTT keys, hub, http. */
START_TEST(test_connector_sections)
{
	roost_config *cfg = load_ok("mqtt:\n"
	                            "  broker: 192.168.1.5\n"
	                            "  port: 1884\n"
	                            "  client_id: roost-hub\n"
	                            "  keepalive: 30\n"
	                            "  username: ha\n"
	                            "  password: secret\n"
	                            "  topics: [\"home-assistant/#\", \"zigbee2mqtt/+/state\"]\n"
	                            "  event_type: my_event\n"
	                            "hub:\n"
	                            "  url: https://ha.local:8123\n"
	                            "  token: TOKEN\n"
	                            "  cafile: /etc/ssl/ca.pem\n"
	                            "  verify_tls: false\n"
	                            "  spool_max: 50\n"
	                            "  retry_max: 5\n"
	                            "  timeout: 3\n"
	                            "http:\n"
	                            "  port: 0\n"
	                            "  bind: 0.0.0.0\n"
	                            "  token: T2\n");
	ck_assert_str_eq(cfg->mqtt.broker, "192.168.1.5");
	ck_assert_int_eq(cfg->mqtt.port, 1884);
	ck_assert_str_eq(cfg->mqtt.client_id, "roost-hub");
	ck_assert_uint_eq(cfg->mqtt.keepalive, 30);
	ck_assert_str_eq(cfg->mqtt.username, "ha");
	ck_assert_str_eq(cfg->mqtt.password, "secret");
	ck_assert_uint_eq(cfg->mqtt.n_topics, 2);
	ck_assert_str_eq(cfg->mqtt.topics[0], "home-assistant/#");
	ck_assert_str_eq(cfg->mqtt.topics[1], "zigbee2mqtt/+/state");
	ck_assert_str_eq(cfg->mqtt.event_type, "my_event");
	ck_assert_str_eq(cfg->hub.url, "https://ha.local:8123");
	ck_assert_str_eq(cfg->hub.token, "TOKEN");
	ck_assert_str_eq(cfg->hub.cafile, "/etc/ssl/ca.pem");
	ck_assert(!cfg->hub.verify_tls);
	ck_assert_uint_eq(cfg->hub.spool_max, 50);
	ck_assert_uint_eq(cfg->hub.retry_max, 5);
	ck_assert_uint_eq(cfg->hub.timeout, 3);
	ck_assert_int_eq(cfg->http.port, 0);
	ck_assert_str_eq(cfg->http.bind, "0.0.0.0");
	ck_assert_str_eq(cfg->http.token, "T2");
	roost_config_free(cfg);
}
END_TEST

/* $SYS updates: every 10 s by default, 0 turns them off, a day at most. */
START_TEST(test_sys_interval_bounds)
{
	roost_config *cfg = load_ok("");
	ck_assert_uint_eq(cfg->sys_interval, 10);
	roost_config_free(cfg);
	cfg = load_ok("sys_interval: 0\n");
	ck_assert_uint_eq(cfg->sys_interval, 0);
	roost_config_free(cfg);
	cfg = load_ok("sys_interval: 86400\n");
	ck_assert_uint_eq(cfg->sys_interval, 86400);
	roost_config_free(cfg);
	expect_error("log:\n  level: info\nsys_interval: 86401\n", 3,
	             "sys_interval: must be between 0 and 86400, got 86401");
	expect_error("sys_interval: -1\n", 1, "sys_interval: must be between 0 and 86400, got -1");
}
END_TEST

START_TEST(test_connector_defaults)
{
	roost_config *cfg = load_ok("");
	ck_assert_ptr_null(cfg->mqtt.broker); /* embedded broker */
	ck_assert_int_eq(cfg->mqtt.port, 1883);
	ck_assert_ptr_null(cfg->mqtt.client_id);
	ck_assert_uint_eq(cfg->mqtt.keepalive, 60);
	ck_assert_uint_eq(cfg->mqtt.n_topics, 1);
	ck_assert_str_eq(cfg->mqtt.topics[0], "home-assistant/#");
	ck_assert_str_eq(cfg->mqtt.event_type, "mqtt_message_received");
	ck_assert_ptr_null(cfg->hub.url);
	ck_assert(cfg->hub.verify_tls);
	ck_assert_uint_eq(cfg->hub.spool_max, 10000);
	ck_assert_int_eq(cfg->http.port, 8124);
	ck_assert_str_eq(cfg->http.bind, "127.0.0.1");
	ck_assert_ptr_null(cfg->http.token);
	roost_config_free(cfg);
}
END_TEST

/* The HTTP API's limits (issue 9): defaults, every key, bounds. */
START_TEST(test_http_limits)
{
	roost_config *cfg = load_ok("");
	ck_assert_uint_eq(cfg->http.max_connections, 64);
	ck_assert_uint_eq(cfg->http.idle_timeout, 60);
	ck_assert_uint_eq(cfg->http.header_timeout, 10);
	ck_assert_uint_eq(cfg->http.body_timeout, 10);
	ck_assert_uint_eq(cfg->http.max_streams, 16);
	roost_config_free(cfg);
	cfg = load_ok("http:\n  max_connections: 100000\n  idle_timeout: 1\n  header_timeout: 3600\n"
	              "  body_timeout: 2\n  max_streams: 0\n");
	ck_assert_uint_eq(cfg->http.max_connections, 100000);
	ck_assert_uint_eq(cfg->http.idle_timeout, 1);
	ck_assert_uint_eq(cfg->http.header_timeout, 3600);
	ck_assert_uint_eq(cfg->http.body_timeout, 2);
	ck_assert_uint_eq(cfg->http.max_streams, 0);
	roost_config_free(cfg);
	expect_error("http:\n  max_connections: 0\n", 2,
	             "http.max_connections: must be between 1 and 100000, got 0");
	expect_error("http:\n  idle_timeout: 0\n", 2, "http.idle_timeout: must be between 1 and 86400, got 0");
	expect_error("http:\n  header_timeout: 3601\n", 2,
	             "http.header_timeout: must be between 1 and 3600, got 3601");
	expect_error("http:\n  body_timeout: -1\n", 2, "http.body_timeout: must be between 1 and 3600, got -1");
	expect_error("http:\n  max_streams: 10001\n", 2,
	             "http.max_streams: must be between 0 and 10000, got 10001");
}
END_TEST

START_TEST(test_string_list_forms_and_errors)
{
	roost_config *cfg = load_ok("mqtt:\n  topics: one/#\n");
	ck_assert_uint_eq(cfg->mqtt.n_topics, 1);
	ck_assert_str_eq(cfg->mqtt.topics[0], "one/#");
	roost_config_free(cfg);
	cfg = load_ok("mqtt:\n  topics:\n    - a\n    - b\n    - c\n");
	ck_assert_uint_eq(cfg->mqtt.n_topics, 3);
	ck_assert_str_eq(cfg->mqtt.topics[2], "c");
	roost_config_free(cfg);
	expect_error("mqtt:\n  topics: []\n", 2, "mqtt.topics: at least one element required");
	expect_error("mqtt:\n  topics:\n    - a\n    - {x: 1}\n", 4, "mqtt.topics: expected a string, got a mapping");
	expect_error("mqtt:\n  topics: [a, \"\"]\n", 2, "mqtt.topics: elements must be non-empty strings without NUL");
	expect_error("mqtt:\n  topics: {a: b}\n", 2,
	             "mqtt.topics: expected a string or a sequence of strings, got a mapping");
	expect_error("hub:\n  spool_max: 0\n", 2, "hub.spool_max: must be between 1 and 10000000, got 0");
}
END_TEST

Suite *config_suite(void)
{
	Suite *s = suite_create("config");

	TCase *tc = tcase_create("valid");
	tcase_add_test(tc, test_connector_sections);
	tcase_add_test(tc, test_persistence_keys);
	tcase_add_test(tc, test_connector_defaults);
	tcase_add_test(tc, test_sys_interval_bounds);
	tcase_add_test(tc, test_string_list_forms_and_errors);
	tcase_add_test(tc, test_http_limits);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_listener_protocol);
	tcase_add_test(tc, test_etc_roost_yaml_is_the_defaults);
	tcase_add_test(tc, test_empty_inputs_are_the_defaults);
	tcase_add_test(tc, test_every_key);
	tcase_add_test(tc, test_listener_security_keys);
	tcase_add_test(tc, test_unset_keys_keep_defaults);
	tcase_add_loop_test(tc, test_bool_spellings, 0, (int)(sizeof bools / sizeof bools[0]));
	tcase_add_test(tc, test_log_levels);
	tcase_add_test(tc, test_quoted_integers);
	tcase_add_test(tc, test_flow_style);
	tcase_add_test(tc, test_errors_print);
	tcase_add_test(tc, test_string_without_name);
	tcase_add_test(tc, test_length_bounds_input);
	suite_add_tcase(s, tc);

	tc = tcase_create("malformed");
	tcase_add_test(tc, test_syntax_error);
	tcase_add_test(tc, test_errors_before_syntax_error_are_kept);
	tcase_add_test(tc, test_unknown_key);
	tcase_add_test(tc, test_unknown_key_suggestions);
	tcase_add_test(tc, test_wrong_type);
	tcase_add_test(tc, test_missing_value);
	tcase_add_test(tc, test_mapping_where_scalar_expected);
	tcase_add_test(tc, test_scalar_where_mapping_expected);
	tcase_add_test(tc, test_top_level_not_a_mapping);
	tcase_add_test(tc, test_listeners_errors);
	tcase_add_test(tc, test_duplicate_key);
	tcase_add_test(tc, test_aliases_and_documents);
	tcase_add_test(tc, test_untrusted_text_is_escaped);
	tcase_add_test(tc, test_many_errors_in_one_file);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_loop_test(tc, test_int_bounds, 0, (int)(sizeof int_keys / sizeof int_keys[0]));
	tcase_add_test(tc, test_integer_syntax);
	suite_add_tcase(s, tc);

	tc = tcase_create("lifetime");
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_directory_is_io_error);
	tcase_add_test(tc, test_load_file_errors_name_the_file);
	tcase_add_test(tc, test_free_null);
	tcase_add_test(tc, test_alloc_failure_valid);
	tcase_add_test(tc, test_alloc_failure_invalid);
	tcase_add_test(tc, test_alloc_failure_defaults_and_file);
	tcase_add_test(tc, test_config_owns_its_strings);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
