/*
 * check_acl.c — the acl_file loader and decisions (broker/acl.c).
 *
 * Each syntax form of Mosquitto's acl_file is loaded from memory and probed
 * through roost_acl_check() only, the way the broker will use it. The
 * subscription rule (an entry must cover the whole filter) is checked on a
 * table of filter pairs; a differential test compares plain topic entries and
 * substituted patterns with roost_topic_matches(), the reference matcher.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "roost/acl.h"
#include "roost/alloc.h"
#include "roost/topic.h"

Suite *acl_suite(void);

#define R ROOST_ACL_READ
#define W ROOST_ACL_WRITE
#define SUB ROOST_ACL_SUBSCRIBE

/* ---- helpers ------------------------------------------------------------ */

static roost_acl *load_ok(const char *text)
{
	roost_acl *acl = NULL;
	roost_config_errors errs;
	roost_err err = roost_acl_load_string("acl", text, strlen(text), &acl, &errs);

	if (err) {
		roost_config_errors_print(&errs, stderr);
		ck_abort_msg("load failed: %s", roost_err_str(err));
	}
	ck_assert_uint_eq(errs.count, 0);
	roost_config_errors_cleanup(&errs);
	ck_assert_ptr_nonnull(acl);
	return acl;
}

static void load_bad(const char *text, size_t len, roost_config_errors *errs)
{
	roost_acl *acl = NULL;
	roost_err err = roost_acl_load_string("acl", text, len, &acl, errs);

	ck_assert_int_eq(err, ROOST_ERR_CONFIG);
	ck_assert_ptr_null(acl);
	ck_assert_uint_gt(errs->count, 0);
}

static bool has_error(const roost_config_errors *errs, int line, const char *needle)
{
	for (size_t i = 0; i < errs->count; i++)
		if (errs->items[i].line == line && strstr(errs->items[i].message, needle) &&
		    strcmp(errs->items[i].file, "acl") == 0)
			return true;
	return false;
}

static void expect_one_error(const char *text, int line, const char *needle)
{
	roost_config_errors errs;

	load_bad(text, strlen(text), &errs);
	if (!has_error(&errs, line, needle)) {
		roost_config_errors_print(&errs, stderr);
		ck_abort_msg("no error on line %d mentioning '%s' for input: %s", line, needle, text);
	}
	ck_assert_uint_eq(errs.count, 1);
	roost_config_errors_cleanup(&errs);
}

/* May (client id, username) do access on topic? */
static bool may(const roost_acl *acl, const char *cid, const char *user, const char *topic, int access)
{
	return roost_acl_check(acl, cid, user, topic, strlen(topic), access);
}

/* ---- valid -------------------------------------------------------------- */

START_TEST(test_topic_lines_before_any_user_apply_to_anonymous_only)
{
	roost_acl *acl = load_ok("topic read public/#\n"
	                         "user alice\n"
	                         "topic readwrite alice/#\n");

	ck_assert(may(acl, "c1", NULL, "public/news", R));
	ck_assert(!may(acl, "c1", "alice", "public/news", R));
	ck_assert(!may(acl, "c1", "bob", "public/news", R));
	ck_assert(may(acl, "c1", "alice", "alice/x", R));
	ck_assert(!may(acl, "c1", NULL, "alice/x", R));
	roost_acl_free(acl);
}
END_TEST

START_TEST(test_user_block_applies_to_that_user_only_and_blocks_add_up)
{
	roost_acl *acl = load_ok("user alice\n"
	                         "topic home/alice/#\n"
	                         "user bob smith\n"
	                         "topic home/bob/#\n"
	                         "user alice\n"
	                         "topic read shared/#\n");

	ck_assert_uint_eq(roost_acl_count(acl), 3);
	ck_assert(may(acl, "c", "alice", "home/alice/lamp", W));
	ck_assert(may(acl, "c", "alice", "shared/x", R));
	ck_assert(!may(acl, "c", "alice", "home/bob/lamp", W));
	ck_assert(may(acl, "c", "bob smith", "home/bob/lamp", W));
	ck_assert(!may(acl, "c", "bob smith", "shared/x", R));
	ck_assert(!may(acl, "c", "bob", "home/bob/lamp", W));
	ck_assert(!may(acl, "c", "Alice", "home/alice/lamp", W));
	roost_acl_free(acl);
}
END_TEST

START_TEST(test_no_access_word_means_readwrite)
{
	/* One word after the keyword is the filter, even "read" (as in Mosquitto). */
	roost_acl *acl = load_ok("topic a/b\n"
	                         "topic read\n"
	                         "pattern p/%c\n");

	ck_assert(may(acl, "c", NULL, "a/b", R));
	ck_assert(may(acl, "c", NULL, "a/b", W));
	ck_assert(may(acl, "c", NULL, "read", R));
	ck_assert(may(acl, "c", NULL, "read", W));
	ck_assert(may(acl, "c", "u", "p/c", W));
	ck_assert(may(acl, "c", "u", "p/c", R));
	roost_acl_free(acl);
}
END_TEST

START_TEST(test_read_write_readwrite_grant_only_their_access)
{
	roost_acl *acl = load_ok("topic read r\n"
	                         "topic write w\n"
	                         "topic readwrite rw\n");

	ck_assert(may(acl, "c", NULL, "r", R));
	ck_assert(!may(acl, "c", NULL, "r", W));
	ck_assert(may(acl, "c", NULL, "r", SUB));
	ck_assert(!may(acl, "c", NULL, "w", R));
	ck_assert(may(acl, "c", NULL, "w", W));
	ck_assert(!may(acl, "c", NULL, "w", SUB)); /* subscribing needs read */
	ck_assert(may(acl, "c", NULL, "rw", R));
	ck_assert(may(acl, "c", NULL, "rw", W));
	ck_assert(may(acl, "c", NULL, "rw", SUB));
	/* Two entries with different access add up. */
	roost_acl_free(acl);
	acl = load_ok("topic read x\ntopic write x\n");
	ck_assert(may(acl, "c", NULL, "x", R) && may(acl, "c", NULL, "x", W));
	roost_acl_free(acl);
}
END_TEST

START_TEST(test_deny_wins_whatever_the_order)
{
	roost_acl *acl = load_ok("topic readwrite home/#\n"
	                         "topic deny home/secret/#\n"
	                         "user alice\n"
	                         "topic deny home/alice/diary\n"
	                         "topic readwrite home/#\n");

	ck_assert(may(acl, "c", NULL, "home/lamp", W));
	ck_assert(!may(acl, "c", NULL, "home/secret", R));
	ck_assert(!may(acl, "c", NULL, "home/secret/x", W));
	ck_assert(!may(acl, "c", NULL, "home/secret/x", SUB));
	ck_assert(may(acl, "c", "alice", "home/lamp", W));
	ck_assert(!may(acl, "c", "alice", "home/alice/diary", R));
	/* Anonymous denies are not alice's. */
	ck_assert(may(acl, "c", "alice", "home/secret/x", R));
	roost_acl_free(acl);
}
END_TEST

/* Where Mosquitto 2.0 lets a user's own grant beat a pattern deny, roost denies. */
START_TEST(test_pattern_deny_beats_a_user_grant)
{
	roost_acl *acl = load_ok("user alice\n"
	                         "topic readwrite devices/#\n"
	                         "pattern deny devices/%c/config\n");

	ck_assert(may(acl, "lamp", "alice", "devices/lamp/state", W));
	ck_assert(!may(acl, "lamp", "alice", "devices/lamp/config", W));
	ck_assert(may(acl, "lamp", "alice", "devices/fan/config", W));
	roost_acl_free(acl);
}
END_TEST

START_TEST(test_whatever_is_not_granted_is_denied)
{
	roost_acl *acl = load_ok("");

	ck_assert_uint_eq(roost_acl_count(acl), 0);
	ck_assert(!may(acl, "c", NULL, "a", R));
	ck_assert(!may(acl, "c", "alice", "a", W));
	ck_assert(!may(acl, "c", "alice", "#", SUB));
	roost_acl_free(acl);
	acl = load_ok("user alice\ntopic a\n");
	ck_assert(!may(acl, "c", "bob", "a", R)); /* no block: only patterns, and there are none */
	ck_assert(!may(acl, "c", NULL, "a", R));
	ck_assert(!may(acl, "c", "alice", "b", R));
	roost_acl_free(acl);
}
END_TEST

START_TEST(test_pattern_substitutes_client_id_and_username_as_whole_levels)
{
	roost_acl *acl = load_ok("pattern readwrite clients/%c/#\n"
	                         "pattern read users/%u/+/in\n"
	                         "pattern write %u/%c\n");

	ck_assert(may(acl, "lamp1", "alice", "clients/lamp1/state", W));
	ck_assert(may(acl, "lamp1", "alice", "clients/lamp1", R));
	ck_assert(!may(acl, "lamp1", "alice", "clients/lamp2/state", W));
	ck_assert(may(acl, "lamp1", "alice", "users/alice/x/in", R));
	ck_assert(!may(acl, "lamp1", "alice", "users/alice/x/in", W));
	ck_assert(!may(acl, "lamp1", "alice", "users/bob/x/in", R));
	ck_assert(may(acl, "lamp1", "alice", "alice/lamp1", W));
	ck_assert(!may(acl, "lamp1", "alice", "lamp1/alice", W));
	/* Patterns apply to every client, wherever they appear in the file. */
	ck_assert(may(acl, "x", "bob", "clients/x/y", W));
	ck_assert(may(acl, "x", NULL, "clients/x/y", W));
	roost_acl_free(acl);
	acl = load_ok("user alice\ntopic a\npattern clients/%c\n");
	ck_assert(may(acl, "x", "bob", "clients/x", W));
	roost_acl_free(acl);
}
END_TEST

START_TEST(test_percent_inside_a_longer_level_is_literal)
{
	roost_acl *acl = load_ok("pattern dev_%c/x\npattern a/%cc\npattern b/%%c\n");

	ck_assert(!may(acl, "lamp", "u", "dev_lamp/x", W));
	ck_assert(may(acl, "lamp", "u", "dev_%c/x", W));
	ck_assert(!may(acl, "lamp", "u", "a/lampc", W));
	ck_assert(may(acl, "lamp", "u", "a/%cc", W));
	ck_assert(may(acl, "lamp", "u", "b/%%c", W));
	roost_acl_free(acl);
}
END_TEST

START_TEST(test_topic_lines_never_substitute)
{
	roost_acl *acl = load_ok("topic clients/%c\nuser alice\ntopic users/%u\n");

	ck_assert(!may(acl, "lamp", NULL, "clients/lamp", W));
	ck_assert(may(acl, "lamp", NULL, "clients/%c", W));
	ck_assert(!may(acl, "lamp", "alice", "users/alice", W));
	ck_assert(may(acl, "lamp", "alice", "users/%u", W));
	roost_acl_free(acl);
}
END_TEST

START_TEST(test_username_pattern_does_not_apply_to_anonymous)
{
	roost_acl *acl = load_ok("topic readwrite x/#\n"
	                         "pattern users/%u/#\n"
	                         "pattern deny x/%u\n"
	                         "user alice\n"
	                         "topic readwrite x/#\n");

	ck_assert(!may(acl, "c", NULL, "users//x", W));
	ck_assert(!may(acl, "c", NULL, "users/%u/x", W));
	ck_assert(may(acl, "c", "alice", "users/alice/x", W));
	/* The %u deny does not apply to anonymous clients either (as in Mosquitto). */
	ck_assert(may(acl, "c", NULL, "x/c", W));
	ck_assert(!may(acl, "c", "alice", "x/alice", W));
	ck_assert(may(acl, "c", "alice", "x/bob", W));
	/* An empty username is a username: its level is the empty level. */
	ck_assert(may(acl, "c", "", "users//x", W));
	roost_acl_free(acl);
}
END_TEST

/*
 * A client picks its own id (and, without a password file, its username).
 * With '+', '#' or '/' in it, substitution would turn a grant meant for one
 * level into a wildcard or into several levels. Mosquitto denies such a
 * client outright; roost refuses the substitution: the grant does not apply.
 */
START_TEST(test_wildcard_or_slash_in_an_id_never_widens_a_pattern_grant)
{
	roost_acl *acl = load_ok("pattern readwrite clients/%c/#\n"
	                         "pattern readwrite users/%u\n"
	                         "topic read public/#\n");
	static const char *const bad[] = {"+", "#", "a/b", "a+", "x#", "/", "+/+"};

	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		const char *id = bad[i];
		char own[64];
		snprintf(own, sizeof own, "clients/%s/x", id);
		ck_assert_msg(!may(acl, id, NULL, "clients/other/x", W), "id '%s' widened a grant", id);
		ck_assert_msg(!may(acl, id, NULL, "clients/a/b/x", W), "id '%s' widened a grant", id);
		ck_assert_msg(!may(acl, id, NULL, own, W), "id '%s' used a grant it cannot own", id);
		ck_assert_msg(!may(acl, id, NULL, "clients/+/#", SUB), "id '%s' widened a subscription", id);
		ck_assert_msg(!may(acl, "ok", id, "users/other", W), "username '%s' widened a grant", id);
		ck_assert_msg(!may(acl, "ok", id, "users/+", SUB), "username '%s' widened a subscription", id);
		/* Grants that do not depend on the id still work. */
		ck_assert(may(acl, id, NULL, "public/x", R));
	}
	/* A NULL client id never substitutes either. */
	ck_assert(!may(acl, NULL, NULL, "clients//x", W));
	/* And ordinary ids still do. */
	ck_assert(may(acl, "lamp", NULL, "clients/lamp/x", W));
	ck_assert(may(acl, "lamp", "alice", "users/alice", W));
	roost_acl_free(acl);
}
END_TEST

/* ... and cannot escape a pattern deny: there the level acts as '+'. */
START_TEST(test_wildcard_or_slash_in_an_id_cannot_escape_a_pattern_deny)
{
	roost_acl *acl = load_ok("topic readwrite #\n"
	                         "pattern deny clients/%c/config\n"
	                         "user alice\n"
	                         "topic readwrite #\n");

	ck_assert(!may(acl, "lamp", NULL, "clients/lamp/config", W));
	ck_assert(may(acl, "lamp", NULL, "clients/fan/config", W));
	ck_assert(!may(acl, "+", NULL, "clients/fan/config", W));
	ck_assert(!may(acl, "+", NULL, "clients/+/config", W));
	ck_assert(!may(acl, "a/b", NULL, "clients/a/config", W));
	ck_assert(!may(acl, "#", "alice", "clients/x/config", R));
	ck_assert(!may(acl, "#", "alice", "clients/+/config", SUB));
	ck_assert(may(acl, "#", "alice", "clients/x/state", W));
	ck_assert(!may(acl, NULL, NULL, "clients/x/config", W));
	roost_acl_free(acl);
}
END_TEST

struct cover_case {
	const char *acl, *sub;
	bool granted;
};

/* An entry grants a subscription when it covers every topic the filter can match. */
static const struct cover_case cover_cases[] = {
	{"sensors/#", "sensors/+/temp", true},
	{"sensors/#", "sensors/#", true},
	{"sensors/#", "sensors", true},
	{"sensors/#", "sensors/kitchen", true},
	{"sensors/#", "#", false},
	{"sensors/#", "+/temp", false},
	{"sensors/+/temp", "sensors/+/temp", true},
	{"sensors/+/temp", "sensors/kitchen/temp", true},
	{"sensors/+/temp", "sensors/#", false},
	{"sensors/+/temp", "sensors/+/+", false},
	{"sensors/kitchen/temp", "sensors/+/temp", false},
	{"a/+", "a/#", false},   /* a/# also matches a and a/b/c */
	{"a/+", "a/+", true},
	{"a/+/#", "a/+", true},  /* a/+/# matches a/x through its parent rule */
	{"a/+/#", "a/#", false}, /* but not a itself */
	{"#", "#", true},
	{"#", "+/+/#", true},
	{"+", "+", true},
	{"+", "#", false},
	{"+/#", "#", false},     /* equivalent for real topics, refused level by level */
	{"a/b", "a/b", true},
	{"a/b", "a/+", false},
	{"a//b", "a/+/b", false},
	{"a/+/b", "a//b", true},
	{"#", "$SYS/#", false},  /* [MQTT-4.7.2-1] */
	{"+/broker/#", "$SYS/broker/load", false},
	{"$SYS/#", "$SYS/broker/+", true},
	{"$SYS/#", "#", false},
};

START_TEST(test_subscription_filter_must_be_covered_by_a_read_entry)
{
	const struct cover_case *c = &cover_cases[_i];
	char text[128];

	snprintf(text, sizeof text, "topic read %s\n", c->acl);
	roost_acl *acl = load_ok(text);
	ck_assert_msg(may(acl, "c", NULL, c->sub, SUB) == c->granted, "acl '%s' %s subscription '%s'", c->acl,
	              c->granted ? "must grant" : "must not grant", c->sub);
	roost_acl_free(acl);
	/* The same rule through a pattern (the other code path). */
	snprintf(text, sizeof text, "pattern read %s\n", c->acl);
	acl = load_ok(text);
	ck_assert(may(acl, "c", "u", c->sub, SUB) == c->granted);
	roost_acl_free(acl);
	/* A deny covering the filter refuses it; a grant of everything does not help. */
	snprintf(text, sizeof text, "topic read #\ntopic read $SYS/#\ntopic deny %s\n", c->acl);
	acl = load_ok(text);
	if (c->granted)
		ck_assert(!may(acl, "c", NULL, c->sub, SUB));
	roost_acl_free(acl);
}
END_TEST

START_TEST(test_subscription_with_patterns_covers_substituted_levels)
{
	roost_acl *acl = load_ok("pattern read clients/%c/#\n");

	ck_assert(may(acl, "lamp", NULL, "clients/lamp/#", SUB));
	ck_assert(may(acl, "lamp", NULL, "clients/lamp/+/x", SUB));
	ck_assert(!may(acl, "lamp", NULL, "clients/+/#", SUB));
	ck_assert(!may(acl, "lamp", NULL, "clients/#", SUB));
	roost_acl_free(acl);
}
END_TEST

/*
 * A deny on part of a granted filter does not refuse the SUBSCRIBE; the
 * READ check on each delivered message (retained ones too) withholds it.
 */
START_TEST(test_partial_deny_allows_the_filter_and_withholds_the_topic)
{
	roost_acl *acl = load_ok("topic read sensors/#\ntopic deny sensors/secret\n");

	ck_assert(may(acl, "c", NULL, "sensors/#", SUB));
	ck_assert(may(acl, "c", NULL, "sensors/kitchen", R));
	ck_assert(!may(acl, "c", NULL, "sensors/secret", R));
	ck_assert(!may(acl, "c", NULL, "sensors/secret", SUB));
	roost_acl_free(acl);
}
END_TEST

START_TEST(test_dollar_topics_need_an_explicit_grant)
{
	roost_acl *acl = load_ok("topic readwrite #\ntopic read +/broker/#\n");

	ck_assert(may(acl, "c", NULL, "a/b", W));
	ck_assert(!may(acl, "c", NULL, "$SYS/broker/load", R));
	ck_assert(!may(acl, "c", NULL, "$share/x", W));
	roost_acl_free(acl);
	acl = load_ok("topic read $SYS/#\ntopic write $app/+/cmd\n");
	ck_assert(may(acl, "c", NULL, "$SYS/broker/load", R));
	ck_assert(!may(acl, "c", NULL, "$SYS/broker/load", W));
	ck_assert(may(acl, "c", NULL, "$app/x/cmd", W));
	ck_assert(!may(acl, "c", NULL, "app/x/cmd", W));
	roost_acl_free(acl);
}
END_TEST

START_TEST(test_filter_is_the_rest_of_the_line_spaces_included)
{
	roost_acl *acl = load_ok("topic read living room/lamp 1\n"
	                         "topic   write\t  a b/+  \r\n"
	                         "user  bob  smith \n"
	                         "topic read x y\n");

	ck_assert(may(acl, "c", NULL, "living room/lamp 1", R));
	ck_assert(!may(acl, "c", NULL, "living room/lamp 1", W));
	ck_assert(!may(acl, "c", NULL, "living room/lamp", R));
	ck_assert(may(acl, "c", NULL, "a b/c", W));
	ck_assert(!may(acl, "c", NULL, "a b/c", R));
	/* Blanks around the username go, blanks inside it stay. */
	ck_assert(may(acl, "c", "bob  smith", "x y", R));
	ck_assert(!may(acl, "c", "bob smith", "x y", R));
	roost_acl_free(acl);
}
END_TEST

START_TEST(test_comments_blank_lines_crlf_and_blanks_are_ignored)
{
	roost_acl *acl = load_ok("# acl\r\n"
	                         "\r\n"
	                         "   \t \n"
	                         "   # indented comment\n"
	                         "\ttopic   read   \t a/#   \r\n"
	                         "topic #\n"); /* '#' after the keyword is a filter, not a comment */

	ck_assert_uint_eq(roost_acl_count(acl), 2);
	ck_assert(may(acl, "c", NULL, "a/b", R));
	ck_assert(may(acl, "c", NULL, "z", W));
	roost_acl_free(acl);
}
END_TEST

START_TEST(test_bad_arguments_are_denied)
{
	roost_acl *acl = load_ok("topic #\n");

	ck_assert(!roost_acl_check(acl, "c", NULL, "a", 1, 0));
	ck_assert(!roost_acl_check(acl, "c", NULL, "a", 1, R | W));
	ck_assert(!roost_acl_check(acl, "c", NULL, "a", 1, 8));
	ck_assert(!roost_acl_check(acl, "c", NULL, "", 0, R));
	ck_assert(!roost_acl_check(acl, "c", NULL, NULL, 0, R));
	ck_assert(roost_acl_check(acl, "c", NULL, "abc", 1, R)); /* only len bytes count */
	roost_acl_free(acl);
}
END_TEST

/* Differential: entries against the reference matcher on generated topics. */
static void gen(uint32_t *seed, char *out, size_t cap, bool filter)
{
	static const char *const parts[] = {"a", "b", "", "$SYS", "+", "#", "c"};
	size_t n = 0;
	*seed = *seed * 1103515245u + 12345u;
	int levels = 1 + (int)((*seed >> 16) % 4);

	for (int i = 0; i < levels; i++) {
		*seed = *seed * 1103515245u + 12345u;
		const char *p = parts[(*seed >> 16) % (filter ? 7 : 4)];
		if (p[0] == '#' && i != levels - 1)
			p = "+";
		if (p[0] == '$' && i != 0)
			p = "c";
		n += (size_t)snprintf(out + n, cap - n, "%s%s", i ? "/" : "", p);
	}
}

START_TEST(test_topic_entries_agree_with_the_reference_matcher)
{
	uint32_t seed = 42;
	char f[64], t[64], text[192];

	for (int i = 0; i < 3000; i++) {
		gen(&seed, f, sizeof f, true);
		gen(&seed, t, sizeof t, false);
		if (t[0] == '\0')
			continue; /* a topic name has at least one character [MQTT-4.7.3-1] */
		snprintf(text, sizeof text, "topic read %s\npattern write %s\n", f, f);
		roost_acl *acl = load_ok(text);
		bool want = roost_topic_matches(f, strlen(f), t, strlen(t));
		ck_assert_msg(may(acl, "c", NULL, t, R) == want, "topic '%s' vs '%s'", f, t);
		ck_assert_msg(may(acl, "c", NULL, t, W) == want, "pattern '%s' vs '%s'", f, t);
		/* A filter without wildcards covers exactly the topic it names. */
		ck_assert_msg(may(acl, "c", NULL, t, SUB) == want, "subscribe '%s' vs '%s'", f, t);
		roost_acl_free(acl);
	}
}
END_TEST

START_TEST(test_substituted_pattern_agrees_with_the_substituted_filter)
{
	static const char *const pats[] = {"%c", "a/%c", "%c/#", "+/%u/%c", "%u/+", "x/%u/#", "%c/%c"};
	static const char *const topics[] = {"lamp", "a/lamp", "lamp/x/y", "q/alice/lamp", "alice/z",
	                                     "x/alice", "lamp/lamp", "a/alice", "lamp/alice"};

	for (size_t p = 0; p < sizeof pats / sizeof *pats; p++) {
		char text[64], sub[64];
		size_t n = 0;
		snprintf(text, sizeof text, "pattern read %s\n", pats[p]);
		for (const char *s = pats[p]; *s;) {
			if (s[0] == '%' && (s[1] == 'c' || s[1] == 'u')) {
				n += (size_t)snprintf(sub + n, sizeof sub - n, "%s", s[1] == 'c' ? "lamp" : "alice");
				s += 2;
			} else {
				sub[n++] = *s++;
			}
		}
		sub[n] = '\0';
		roost_acl *acl = load_ok(text);
		for (size_t t = 0; t < sizeof topics / sizeof *topics; t++) {
			bool want = roost_topic_matches(sub, n, topics[t], strlen(topics[t]));
			ck_assert_msg(may(acl, "lamp", "alice", topics[t], R) == want, "pattern '%s' vs '%s'", pats[p],
			              topics[t]);
		}
		roost_acl_free(acl);
	}
}
END_TEST

/* ---- malformed ---------------------------------------------------------- */

START_TEST(test_unknown_keyword_is_an_error)
{
	expect_one_error("topic a\nsubscribe a/b\n", 2, "unknown keyword 'subscribe'");
	expect_one_error("Topic a\n", 1, "unknown keyword 'Topic'");
}
END_TEST

START_TEST(test_unknown_access_word_is_an_error)
{
	expect_one_error("topic Read a/b\n", 1, "unknown access 'Read'");
	expect_one_error("pattern rw a/%c\n", 1, "pattern: unknown access 'rw'");
	/* Without an access word a filter cannot hold a space. */
	expect_one_error("topic living room\n", 1, "unknown access 'living'");
}
END_TEST

START_TEST(test_missing_filter_or_username_is_an_error)
{
	expect_one_error("topic\n", 1, "topic: missing topic filter");
	expect_one_error("pattern   \t\n", 1, "pattern: missing topic filter");
	expect_one_error("user\n", 1, "user: missing username");
	expect_one_error("user   \r\n", 1, "user: missing username");
}
END_TEST

START_TEST(test_invalid_filter_is_an_error)
{
	expect_one_error("topic read a/#/b\n", 1, "invalid topic filter 'a/#/b'");
	expect_one_error("topic read a+\n", 1, "invalid topic filter");
	expect_one_error("pattern write %c#\n", 1, "invalid topic filter");
	expect_one_error("topic read caf\xc3\n", 1, "invalid topic filter 'caf\\xc3'");
}
END_TEST

START_TEST(test_nul_byte_is_an_error)
{
	static const char text[] = "topic read a\0b\nuser x\0y\n";
	roost_config_errors errs;

	load_bad(text, sizeof text - 1, &errs);
	ck_assert(has_error(&errs, 1, "invalid topic filter 'a\\x00b'"));
	ck_assert(has_error(&errs, 2, "NUL byte"));
	roost_config_errors_cleanup(&errs);
}
END_TEST

START_TEST(test_every_error_is_collected_with_its_line)
{
	const char *text = "topic read ok\n"   /* 1 */
	                   "bogus\n"           /* 2 */
	                   "# fine\n"          /* 3 */
	                   "topic nope a b\n"  /* 4 */
	                   "user\n"            /* 5 */
	                   "pattern read #/a\n"; /* 6 */
	roost_config_errors errs;

	load_bad(text, strlen(text), &errs);
	ck_assert_uint_eq(errs.count, 4);
	ck_assert(has_error(&errs, 2, "unknown keyword"));
	ck_assert(has_error(&errs, 4, "unknown access 'nope'"));
	ck_assert(has_error(&errs, 5, "missing username"));
	ck_assert(has_error(&errs, 6, "invalid topic filter"));
	char buf[2048] = {0};
	FILE *f = fmemopen(buf, sizeof buf, "w");
	roost_config_errors_print(&errs, f);
	fclose(f);
	ck_assert_ptr_nonnull(strstr(buf, "acl:4: topic: unknown access 'nope'"));
	roost_config_errors_cleanup(&errs);
}
END_TEST

START_TEST(test_unreadable_file_is_an_io_error_with_the_path)
{
	roost_acl *acl = NULL;
	roost_config_errors errs;

	ck_assert_int_eq(roost_acl_load_file("/nonexistent/roost/acl", &acl, &errs), ROOST_ERR_IO);
	ck_assert_ptr_null(acl);
	ck_assert_uint_eq(errs.count, 1);
	ck_assert_str_eq(errs.items[0].file, "/nonexistent/roost/acl");
	ck_assert_int_eq(errs.items[0].line, 0);
	roost_config_errors_cleanup(&errs);
}
END_TEST

/* ---- limits ------------------------------------------------------------- */

START_TEST(test_filter_length_limit)
{
	size_t n = ROOST_ACL_MAX_TOPIC;
	char *text = malloc(n + 32);

	memcpy(text, "topic read ", 11);
	memset(text + 11, 'a', n + 1);
	text[11 + n + 1] = '\0';
	expect_one_error(text, 1, "longer than 65535");
	text[11 + n] = '\0';
	roost_acl *acl = load_ok(text);
	ck_assert(roost_acl_check(acl, "c", NULL, text + 11, n, R));
	ck_assert(!roost_acl_check(acl, "c", NULL, text + 11, n - 1, R));
	roost_acl_free(acl);
	free(text);
}
END_TEST

START_TEST(test_many_users_and_entries)
{
	size_t cap = 10000 * 48, n = 0;
	char *text = malloc(cap);

	for (int i = 0; i < 10000; i++)
		n += (size_t)snprintf(text + n, cap - n, "user u%d\ntopic home/u%d/#\n", i, i);
	n += (size_t)snprintf(text + n, cap - n, "pattern read clients/%%c\n");
	roost_acl *acl = load_ok(text);
	ck_assert_uint_eq(roost_acl_count(acl), 10001);
	ck_assert(may(acl, "c", "u9999", "home/u9999/x", W));
	ck_assert(!may(acl, "c", "u9999", "home/u9998/x", W));
	ck_assert(may(acl, "c", "u5", "clients/c", R));
	roost_acl_free(acl);
	free(text);
}
END_TEST

START_TEST(test_long_ids_and_deep_topics)
{
	size_t n = 65535;
	char *id = malloc(n + 1), *topic = malloc(n + 16);

	memset(id, 'i', n);
	id[n] = '\0';
	snprintf(topic, n + 16, "c/%s", id);
	roost_acl *acl = load_ok("pattern c/%c\ntopic read +/+/+/+/+/+/+/+/#\n");
	ck_assert(may(acl, id, "u", topic, W));
	topic[3] = 'x';
	ck_assert(!may(acl, id, "u", topic, W));
	/* 30000 levels. */
	for (size_t i = 0; i < 60000; i += 2) {
		topic[i] = 'x';
		topic[i + 1] = '/';
	}
	topic[59999] = '\0';
	ck_assert(may(acl, "c", NULL, topic, R));
	ck_assert(may(acl, "c", NULL, topic, SUB));
	ck_assert(!may(acl, "c", NULL, "x/x/x/x/x/x/x", R));
	roost_acl_free(acl);
	free(id);
	free(topic);
}
END_TEST

/* ---- lifetime ----------------------------------------------------------- */

static const char FULL[] = "# every form\n"
                           "topic read public/#\n"
                           "topic deny public/secret\n"
                           "pattern readwrite clients/%c/#\n"
                           "pattern deny clients/%c/config\n"
                           "user alice\n"
                           "topic alice/#\n"
                           "topic deny alice/diary\n"
                           "user bob\n"
                           "topic write bob/out\n"
                           "user alice\n"
                           "topic read shared\n";

START_TEST(test_load_survives_every_allocation_failure)
{
	for (int good = 0; good < 2; good++) {
		char text[sizeof FULL + 16];
		snprintf(text, sizeof text, "%s%s", FULL, good ? "" : "oops\n");
		for (unsigned long n = 1;; n++) {
			roost_acl *acl = NULL;
			roost_config_errors errs;
			roost_alloc_fail_after(n);
			roost_err err = roost_acl_load_string("acl", text, strlen(text), &acl, &errs);
			roost_alloc_fail_after(0);
			roost_config_errors_cleanup(&errs);
			if (err == ROOST_ERR_NOMEM) {
				ck_assert_ptr_null(acl);
				continue;
			}
			ck_assert_int_eq(err, good ? ROOST_OK : ROOST_ERR_CONFIG);
			if (good) {
				ck_assert_uint_eq(roost_acl_count(acl), 8);
				ck_assert(may(acl, "c", "alice", "shared", R));
				ck_assert(!may(acl, "c", "alice", "alice/diary", R));
			}
			roost_acl_free(acl);
			break;
		}
	}
}
END_TEST

START_TEST(test_load_file_survives_every_allocation_failure)
{
	char path[] = "/tmp/check_acl.XXXXXX";
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, FULL, sizeof FULL - 1), (ssize_t)(sizeof FULL - 1));
	close(fd);
	for (unsigned long n = 1;; n++) {
		roost_acl *acl = NULL;
		roost_config_errors errs;
		roost_alloc_fail_after(n);
		roost_err err = roost_acl_load_file(path, &acl, &errs);
		roost_alloc_fail_after(0);
		roost_config_errors_cleanup(&errs);
		if (err == ROOST_ERR_NOMEM)
			continue;
		ck_assert_int_eq(err, ROOST_OK);
		ck_assert(may(acl, "lamp", "bob", "clients/lamp/x", W));
		roost_acl_free(acl);
		break;
	}
	unlink(path);
}
END_TEST

START_TEST(test_check_does_not_allocate)
{
	roost_acl *acl = load_ok(FULL);

	roost_alloc_fail_after(1);
	ck_assert(may(acl, "lamp", "alice", "clients/lamp/state", W));
	ck_assert(!may(acl, "lamp", "alice", "clients/lamp/config", W));
	ck_assert(may(acl, "lamp", "alice", "alice/#", SUB));
	ck_assert_uint_eq(roost_alloc_count(), 0);
	roost_alloc_fail_after(0);
	roost_acl_free(acl);
}
END_TEST

START_TEST(test_free_and_count_accept_null)
{
	roost_acl_free(NULL);
	ck_assert_uint_eq(roost_acl_count(NULL), 0);
}
END_TEST

START_TEST(test_acl_is_independent_of_the_source_text)
{
	char *text = strdup(FULL);
	roost_acl *acl = load_ok(text);

	memset(text, 'x', strlen(text));
	free(text);
	ck_assert(may(acl, "c", NULL, "public/x", R));
	ck_assert(may(acl, "c", "bob", "bob/out", W));
	roost_acl_free(acl);
}
END_TEST

Suite *acl_suite(void)
{
	Suite *s = suite_create("acl");
	TCase *tc;

	tc = tcase_create("valid");
	tcase_add_test(tc, test_topic_lines_before_any_user_apply_to_anonymous_only);
	tcase_add_test(tc, test_user_block_applies_to_that_user_only_and_blocks_add_up);
	tcase_add_test(tc, test_no_access_word_means_readwrite);
	tcase_add_test(tc, test_read_write_readwrite_grant_only_their_access);
	tcase_add_test(tc, test_deny_wins_whatever_the_order);
	tcase_add_test(tc, test_pattern_deny_beats_a_user_grant);
	tcase_add_test(tc, test_whatever_is_not_granted_is_denied);
	tcase_add_test(tc, test_pattern_substitutes_client_id_and_username_as_whole_levels);
	tcase_add_test(tc, test_percent_inside_a_longer_level_is_literal);
	tcase_add_test(tc, test_topic_lines_never_substitute);
	tcase_add_test(tc, test_username_pattern_does_not_apply_to_anonymous);
	tcase_add_test(tc, test_wildcard_or_slash_in_an_id_never_widens_a_pattern_grant);
	tcase_add_test(tc, test_wildcard_or_slash_in_an_id_cannot_escape_a_pattern_deny);
	tcase_add_loop_test(tc, test_subscription_filter_must_be_covered_by_a_read_entry, 0,
	                    (int)(sizeof cover_cases / sizeof *cover_cases));
	tcase_add_test(tc, test_subscription_with_patterns_covers_substituted_levels);
	tcase_add_test(tc, test_partial_deny_allows_the_filter_and_withholds_the_topic);
	tcase_add_test(tc, test_dollar_topics_need_an_explicit_grant);
	tcase_add_test(tc, test_filter_is_the_rest_of_the_line_spaces_included);
	tcase_add_test(tc, test_comments_blank_lines_crlf_and_blanks_are_ignored);
	tcase_add_test(tc, test_bad_arguments_are_denied);
	tcase_add_test(tc, test_topic_entries_agree_with_the_reference_matcher);
	tcase_add_test(tc, test_substituted_pattern_agrees_with_the_substituted_filter);
	suite_add_tcase(s, tc);

	tc = tcase_create("malformed");
	tcase_add_test(tc, test_unknown_keyword_is_an_error);
	tcase_add_test(tc, test_unknown_access_word_is_an_error);
	tcase_add_test(tc, test_missing_filter_or_username_is_an_error);
	tcase_add_test(tc, test_invalid_filter_is_an_error);
	tcase_add_test(tc, test_nul_byte_is_an_error);
	tcase_add_test(tc, test_every_error_is_collected_with_its_line);
	tcase_add_test(tc, test_unreadable_file_is_an_io_error_with_the_path);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_filter_length_limit);
	tcase_add_test(tc, test_many_users_and_entries);
	tcase_add_test(tc, test_long_ids_and_deep_topics);
	suite_add_tcase(s, tc);

	tc = tcase_create("lifetime");
	tcase_add_test(tc, test_load_survives_every_allocation_failure);
	tcase_add_test(tc, test_load_file_survives_every_allocation_failure);
	tcase_add_test(tc, test_check_does_not_allocate);
	tcase_add_test(tc, test_free_and_count_accept_null);
	tcase_add_test(tc, test_acl_is_independent_of_the_source_text);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(acl_suite());

	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
