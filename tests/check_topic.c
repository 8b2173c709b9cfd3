/*
 * check_topic.c — the topic trie (broker/topic.c).
 *
 * Every matching example of MQTT 3.1.1 section 4.7 is checked three ways:
 * the reference matcher, the tree's subscription match, and retain_match in
 * the other direction (retained topic, subscribing filter). A differential
 * test then drives the tree with random filters and topics and compares it
 * with the reference matcher; allocation-failure tests fail every allocation
 * of subscribe and retain_set in turn and check the tree is left unchanged.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "roost/alloc.h"
#include "roost/topic.h"

Suite *topic_suite(void);

#define S(s) (s), strlen(s)

/* ---- helpers ----------------------------------------------------------- */

#define MAX_VISITS 64

struct visits {
	size_t n;
	size_t stop_after; /* 0: never stop */
	void *sub[MAX_VISITS];
	uint8_t opt[MAX_VISITS];
};

static bool collect_sub(void *ctx, void *sub, uint8_t options)
{
	struct visits *v = ctx;

	ck_assert_uint_lt(v->n, MAX_VISITS);
	v->sub[v->n] = sub;
	v->opt[v->n] = options;
	v->n++;
	return v->stop_after == 0 || v->n < v->stop_after;
}

static bool collect_value(void *ctx, void *value)
{
	struct visits *v = ctx;

	ck_assert_uint_lt(v->n, MAX_VISITS);
	v->sub[v->n++] = value;
	return v->stop_after == 0 || v->n < v->stop_after;
}

static bool count_sub(void *ctx, void *sub, uint8_t options)
{
	(*(size_t *)ctx)++;
	return true;
}

static bool count_value(void *ctx, void *value)
{
	(*(size_t *)ctx)++;
	return true;
}

static struct visits match(const roost_topic_tree *t, const char *topic)
{
	struct visits v = {0};

	roost_topic_tree_match(t, S(topic), collect_sub, &v);
	return v;
}

static struct visits retained(const roost_topic_tree *t, const char *filter)
{
	struct visits v = {0};

	roost_topic_tree_retain_match(t, S(filter), collect_value, &v);
	return v;
}

static size_t times(const struct visits *v, const void *p)
{
	size_t k = 0;

	for (size_t i = 0; i < v->n; i++)
		k += v->sub[i] == p;
	return k;
}

static roost_topic_tree *tree_new(void)
{
	roost_topic_tree *t = roost_topic_tree_new(NULL);

	ck_assert_ptr_nonnull(t);
	return t;
}

static void subscribe(roost_topic_tree *t, const char *filter, void *sub, uint8_t opt)
{
	ck_assert_int_eq(roost_topic_tree_subscribe(t, S(filter), sub, opt, NULL), ROOST_OK);
}

static void retain(roost_topic_tree *t, const char *topic, void *value)
{
	void *old;

	ck_assert_int_eq(roost_topic_tree_retain_set(t, S(topic), value, &old), ROOST_OK);
}

/*
 * One example, three ways: reference matcher, subscription match, and
 * retain_match of the filter over the topic stored as a retained value.
 */
static void check_case(const char *filter, const char *topic, bool want)
{
	roost_topic_tree *t = tree_new();
	int sub, value;
	struct visits v;

	ck_assert_msg(roost_topic_matches(S(filter), S(topic)) == want,
	              "roost_topic_matches(\"%s\", \"%s\") != %d", filter, topic, want);

	subscribe(t, filter, &sub, 1);
	v = match(t, topic);
	ck_assert_msg(v.n == (want ? 1u : 0u), "match filter \"%s\" topic \"%s\": %zu visits, want %d",
	              filter, topic, v.n, want);
	if (want)
		ck_assert(v.sub[0] == &sub && v.opt[0] == 1);

	retain(t, topic, &value);
	v = retained(t, filter);
	ck_assert_msg(v.n == (want ? 1u : 0u),
	              "retain_match filter \"%s\" retained \"%s\": %zu visits, want %d", filter, topic,
	              v.n, want);
	if (want)
		ck_assert(v.sub[0] == &value);
	roost_topic_tree_free(t);
}

/* ---- valid: MQTT 3.1.1 section 4.7 -------------------------------------- */

START_TEST(test_MQTT_4_7_1_2_multi_level_wildcard_examples)
{
	check_case("sport/tennis/player1/#", "sport/tennis/player1", true);
	check_case("sport/tennis/player1/#", "sport/tennis/player1/ranking", true);
	check_case("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true);
	check_case("sport/tennis/player1/#", "sport/tennis/player2", false);
	check_case("sport/tennis/player1/#", "sport/tennis", false);
	check_case("sport/tennis/#", "sport/tennis/player1/ranking", true);
}
END_TEST

START_TEST(test_MQTT_4_7_1_2_multi_level_matches_parent)
{
	check_case("sport/#", "sport", true);
	check_case("sport/#", "sport/", true);
	check_case("sport/#", "sports", false);
	check_case("a/b/#", "a/b", true);
	check_case("a/b/#", "a", false);
}
END_TEST

START_TEST(test_MQTT_4_7_1_2_hash_alone_matches_everything)
{
	check_case("#", "sport", true);
	check_case("#", "sport/tennis/player1", true);
	check_case("#", "/", true);
	check_case("#", "/finance", true);
	check_case("#", "a//b", true);
}
END_TEST

/* "sport/tennis/#/ranking" is invalid and rejected by the codec; the tree
 * gives it the reference matcher's meaning: a non-final '#' matches nothing. */
START_TEST(test_MQTT_4_7_1_2_non_final_hash_matches_nothing)
{
	check_case("sport/tennis/#/ranking", "sport/tennis/player1/ranking", false);
	check_case("sport/tennis/#/ranking", "sport/tennis/#/ranking", false);
	check_case("#/a", "x/a", false);
	/* '#' inside a level is just text ("sport/tennis#" is invalid too). */
	check_case("sport/tennis#", "sport/tennis#", true);
	check_case("sport/tennis#", "sport/tennis", false);
}
END_TEST

START_TEST(test_MQTT_4_7_1_3_single_level_wildcard_examples)
{
	check_case("sport/tennis/+", "sport/tennis/player1", true);
	check_case("sport/tennis/+", "sport/tennis/player2", true);
	check_case("sport/tennis/+", "sport/tennis/player1/ranking", false);
	check_case("sport/+/player1", "sport/tennis/player1", true);
	check_case("+/tennis/#", "sport/tennis/player1", true);
	check_case("+/tennis/#", "sport/tennis", true);
	check_case("+", "sport", true);
	check_case("+", "sport/tennis", false);
}
END_TEST

START_TEST(test_MQTT_4_7_1_3_plus_does_not_match_parent)
{
	check_case("sport/+", "sport", false);
	check_case("sport/+", "sport/", true);
}
END_TEST

START_TEST(test_MQTT_4_7_1_3_finance_examples)
{
	check_case("+/+", "/finance", true);
	check_case("/+", "/finance", true);
	check_case("+", "/finance", false);
}
END_TEST

START_TEST(test_MQTT_4_7_2_1_hash_does_not_match_dollar)
{
	check_case("#", "$SYS/broker/uptime", false);
	check_case("#", "$SYS", false);
	check_case("#", "$", false);
	check_case("+", "$SYS", false);
	check_case("+/#", "$SYS/x", false);
}
END_TEST

START_TEST(test_MQTT_4_7_2_1_plus_monitor_clients)
{
	check_case("+/monitor/Clients", "$SYS/monitor/Clients", false);
	check_case("+/monitor/Clients", "SYS/monitor/Clients", true);
	{
		/* With an exact "$SYS" sibling, backing out of it must not take the '+'. */
		roost_topic_tree *t = tree_new();
		int a, b;

		subscribe(t, "+/monitor/Clients", &a, 0);
		subscribe(t, "$SYS/monitor/Clients", &b, 0);
		ck_assert_uint_eq(match(t, "$SYS/monitor/Clients").n, 1);
		ck_assert_uint_eq(match(t, "SYS/monitor/Clients").n, 1);
		roost_topic_tree_free(t);
	}
}
END_TEST

START_TEST(test_MQTT_4_7_2_1_dollar_sys_filters_match)
{
	check_case("$SYS/#", "$SYS/broker/uptime", true);
	check_case("$SYS/#", "$SYS", true);
	check_case("$SYS/monitor/+", "$SYS/monitor/Clients", true);
	check_case("$SYS/monitor/Clients", "$SYS/monitor/Clients", true);
	/* The rule is about the first level only. */
	check_case("a/+", "a/$x", true);
	check_case("a/#", "a/$x/y", true);
	check_case("$SYS/#", "SYS/x", false);
}
END_TEST

/* To receive both, a client subscribes to "#" and "$SYS/#". */
START_TEST(test_MQTT_4_7_2_1_hash_and_dollar_sys_together)
{
	roost_topic_tree *t = tree_new();
	int sub;
	struct visits v;

	subscribe(t, "#", &sub, 0);
	subscribe(t, "$SYS/#", &sub, 1);
	v = match(t, "$SYS/broker/load");
	ck_assert_uint_eq(v.n, 1);
	ck_assert_uint_eq(v.opt[0], 1);
	v = match(t, "sport");
	ck_assert_uint_eq(v.n, 1);
	ck_assert_uint_eq(v.opt[0], 0);
	roost_topic_tree_free(t);
}
END_TEST

START_TEST(test_MQTT_4_7_3_4_no_normalisation)
{
	check_case("ACCOUNTS", "Accounts", false);
	check_case("Accounts", "Accounts", true);
	check_case("Accounts payable", "Accounts payable", true);
	check_case("Accounts payable", "Accountspayable", false);
	check_case("/finance", "finance", false);
	check_case("finance", "/finance", false);
	check_case("finance/", "finance", false);
	check_case("/", "/", true);
	check_case("a//b", "a//b", true);
	check_case("a//b", "a/b", false);
	check_case("a/+/b", "a//b", true);
	check_case("+/+", "/", true);
	check_case("+", "/", false);
}
END_TEST

START_TEST(test_overlapping_subscriptions_visited_per_filter)
{
	roost_topic_tree *t = tree_new();
	int a, b;
	struct visits v;

	subscribe(t, "a/+", &a, 0);
	subscribe(t, "a/#", &a, 1);
	subscribe(t, "a/b", &a, 2);
	subscribe(t, "a/c", &a, 2);
	subscribe(t, "a/b", &b, 0);
	ck_assert_uint_eq(roost_topic_tree_subscription_count(t), 5);
	v = match(t, "a/b");
	ck_assert_uint_eq(v.n, 4);
	ck_assert_uint_eq(times(&v, &a), 3);
	ck_assert_uint_eq(times(&v, &b), 1);
	v = match(t, "a");
	ck_assert_uint_eq(v.n, 1); /* only "a/#" */
	ck_assert_uint_eq(v.opt[0], 1);
	roost_topic_tree_free(t);
}
END_TEST

START_TEST(test_MQTT_3_8_4_3_resubscribe_replaces_options)
{
	roost_topic_tree *t = tree_new();
	int a, b;
	bool replaced = true;
	struct visits v;

	ck_assert_int_eq(roost_topic_tree_subscribe(t, S("a/b"), &a, 1, &replaced), ROOST_OK);
	ck_assert(!replaced);
	ck_assert_int_eq(roost_topic_tree_subscribe(t, S("a/b"), &b, 0, &replaced), ROOST_OK);
	ck_assert(!replaced);
	ck_assert_int_eq(roost_topic_tree_subscribe(t, S("a/b"), &a, 2, &replaced), ROOST_OK);
	ck_assert(replaced);
	ck_assert_uint_eq(roost_topic_tree_subscription_count(t), 2);
	v = match(t, "a/b");
	ck_assert_uint_eq(v.n, 2);
	for (size_t i = 0; i < v.n; i++)
		ck_assert_uint_eq(v.opt[i], v.sub[i] == &a ? 2 : 0);
	roost_topic_tree_free(t);
}
END_TEST

START_TEST(test_visitor_false_stops_match)
{
	roost_topic_tree *t = tree_new();
	int s[4];
	struct visits v = {.stop_after = 2};

	subscribe(t, "#", &s[0], 0);
	subscribe(t, "a/#", &s[1], 0);
	subscribe(t, "a/+", &s[2], 0);
	subscribe(t, "a/b", &s[3], 0);
	roost_topic_tree_match(t, S("a/b"), collect_sub, &v);
	ck_assert_uint_eq(v.n, 2);
	roost_topic_tree_free(t);
}
END_TEST

START_TEST(test_retain_set_replace_remove)
{
	roost_topic_tree *t = tree_new();
	int v1, v2;
	void *old = &v1;

	ck_assert_int_eq(roost_topic_tree_retain_set(t, S("a/b"), &v1, &old), ROOST_OK);
	ck_assert_ptr_null(old);
	ck_assert_ptr_eq(roost_topic_tree_retain_find(t, S("a/b")), &v1);
	ck_assert_ptr_null(roost_topic_tree_retain_find(t, S("a")));
	ck_assert_ptr_null(roost_topic_tree_retain_find(t, S("a/b/c")));
	ck_assert_uint_eq(roost_topic_tree_retained_count(t), 1);

	ck_assert_int_eq(roost_topic_tree_retain_set(t, S("a/b"), &v2, &old), ROOST_OK);
	ck_assert_ptr_eq(old, &v1);
	ck_assert_ptr_eq(roost_topic_tree_retain_find(t, S("a/b")), &v2);
	ck_assert_uint_eq(roost_topic_tree_retained_count(t), 1);

	ck_assert_int_eq(roost_topic_tree_retain_set(t, S("a/b"), NULL, &old), ROOST_OK);
	ck_assert_ptr_eq(old, &v2);
	ck_assert_ptr_null(roost_topic_tree_retain_find(t, S("a/b")));
	ck_assert_uint_eq(roost_topic_tree_retained_count(t), 0);
	ck_assert_uint_eq(roost_topic_tree_node_count(t), 1);

	/* Removing what is not there is not an error. */
	old = &v1;
	ck_assert_int_eq(roost_topic_tree_retain_set(t, S("x/y"), NULL, &old), ROOST_OK);
	ck_assert_ptr_null(old);
	ck_assert_uint_eq(roost_topic_tree_node_count(t), 1);
	roost_topic_tree_free(t);
}
END_TEST

START_TEST(test_retain_match_wildcards)
{
	roost_topic_tree *t = tree_new();
	int sport, tennis, p1, sys, slash_fin, fin, slash, dollar_only;
	struct visits v;

	retain(t, "sport", &sport);
	retain(t, "sport/tennis", &tennis);
	retain(t, "sport/tennis/player1", &p1);
	retain(t, "$SYS/x", &sys);
	retain(t, "$", &dollar_only);
	retain(t, "/finance", &slash_fin);
	retain(t, "finance", &fin);
	retain(t, "/", &slash);
	/* Subscriptions share the tree; their nodes must not confuse retain_match. */
	subscribe(t, "sport/+/#", &fin, 0);
	subscribe(t, "+/+", &fin, 0);

	v = retained(t, "#"); /* [MQTT-4.7.2-1] not $SYS/x, not $ */
	ck_assert_uint_eq(v.n, 6);
	ck_assert_uint_eq(times(&v, &sys) + times(&v, &dollar_only), 0);

	v = retained(t, "sport/#"); /* [MQTT-4.7.1-2] includes sport */
	ck_assert_uint_eq(v.n, 3);
	ck_assert_uint_eq(times(&v, &sport) + times(&v, &tennis) + times(&v, &p1), 3);

	v = retained(t, "sport/tennis/#");
	ck_assert_uint_eq(v.n, 2);

	v = retained(t, "+"); /* sport, finance; not $ */
	ck_assert_uint_eq(v.n, 2);
	ck_assert_uint_eq(times(&v, &sport) + times(&v, &fin), 2);

	v = retained(t, "+/+"); /* sport/tennis, /finance, / */
	ck_assert_uint_eq(v.n, 3);
	ck_assert_uint_eq(times(&v, &tennis) + times(&v, &slash_fin) + times(&v, &slash), 3);

	v = retained(t, "/+");
	ck_assert_uint_eq(v.n, 2);
	ck_assert_uint_eq(times(&v, &slash_fin) + times(&v, &slash), 2);

	v = retained(t, "+/x"); /* [MQTT-4.7.2-1] */
	ck_assert_uint_eq(v.n, 0);
	v = retained(t, "$SYS/#");
	ck_assert_uint_eq(v.n, 1);
	ck_assert_ptr_eq(v.sub[0], &sys);
	v = retained(t, "$SYS/+");
	ck_assert_uint_eq(v.n, 1);
	v = retained(t, "$");
	ck_assert_uint_eq(v.n, 1);
	v = retained(t, "+/+/+");
	ck_assert_uint_eq(v.n, 1);
	ck_assert_ptr_eq(v.sub[0], &p1);
	v = retained(t, "sport/tennis/player1/#");
	ck_assert_uint_eq(v.n, 1);
	v = retained(t, "sport/+/player1");
	ck_assert_uint_eq(v.n, 1);
	v = retained(t, "nothing/#");
	ck_assert_uint_eq(v.n, 0);
	v = retained(t, "#/x"); /* non-final '#' */
	ck_assert_uint_eq(v.n, 0);

	v = (struct visits){.stop_after = 2};
	roost_topic_tree_retain_match(t, S("#"), collect_value, &v);
	ck_assert_uint_eq(v.n, 2);
	roost_topic_tree_free(t);
}
END_TEST

START_TEST(test_subscriptions_and_retained_share_nodes)
{
	roost_topic_tree *t = tree_new();
	int sub, val;

	subscribe(t, "a/b", &sub, 0);
	retain(t, "a/b", &val);
	ck_assert_uint_eq(roost_topic_tree_node_count(t), 3);
	ck_assert_uint_eq(match(t, "a/b").n, 1);
	ck_assert_uint_eq(retained(t, "a/b").n, 1);
	ck_assert_int_eq(roost_topic_tree_unsubscribe(t, S("a/b"), &sub), ROOST_OK);
	ck_assert_uint_eq(roost_topic_tree_node_count(t), 3); /* the retained value holds it */
	ck_assert_ptr_eq(roost_topic_tree_retain_find(t, S("a/b")), &val);
	retain(t, "a/b", NULL);
	ck_assert_uint_eq(roost_topic_tree_node_count(t), 1);
	roost_topic_tree_free(t);
}
END_TEST

/* ---- lifetime ---------------------------------------------------------- */

START_TEST(test_unsubscribe_not_found)
{
	roost_topic_tree *t = tree_new();
	int a, b;

	ck_assert_int_eq(roost_topic_tree_unsubscribe(t, S("a/b"), &a), ROOST_ERR_NOT_FOUND);
	subscribe(t, "a/b", &a, 0);
	ck_assert_int_eq(roost_topic_tree_unsubscribe(t, S("a/b"), &b), ROOST_ERR_NOT_FOUND);
	ck_assert_int_eq(roost_topic_tree_unsubscribe(t, S("a"), &a), ROOST_ERR_NOT_FOUND);
	ck_assert_int_eq(roost_topic_tree_unsubscribe(t, S("a/+"), &a), ROOST_ERR_NOT_FOUND);
	ck_assert_int_eq(roost_topic_tree_unsubscribe(t, S("a/#"), &a), ROOST_ERR_NOT_FOUND);
	ck_assert_int_eq(roost_topic_tree_unsubscribe(t, S("a/b/c"), &a), ROOST_ERR_NOT_FOUND);
	ck_assert_uint_eq(roost_topic_tree_subscription_count(t), 1);
	ck_assert_int_eq(roost_topic_tree_unsubscribe(t, S("a/b"), &a), ROOST_OK);
	ck_assert_int_eq(roost_topic_tree_unsubscribe(t, S("a/b"), &a), ROOST_ERR_NOT_FOUND);
	ck_assert_uint_eq(roost_topic_tree_subscription_count(t), 0);
	roost_topic_tree_free(t);
}
END_TEST

START_TEST(test_pruning_restores_empty_tree)
{
	static const char *filters[] = {"a/b/c", "a/b", "a/+/c", "a/#", "#", "+", "/", "a//b", "$SYS/#", ""};
	roost_topic_tree *t = tree_new();
	int subs[3];
	size_t nf = sizeof(filters) / sizeof(filters[0]);

	ck_assert_uint_eq(roost_topic_tree_node_count(t), 1);
	for (size_t i = 0; i < nf; i++)
		for (size_t k = 0; k < 3; k++)
			subscribe(t, filters[i], &subs[k], 0);
	retain(t, "a/b/c/d", &subs[0]);
	retain(t, "x", &subs[0]);
	ck_assert_uint_eq(roost_topic_tree_subscription_count(t), 3 * nf);
	ck_assert_uint_gt(roost_topic_tree_node_count(t), 10);

	/* Partial removal keeps shared prefixes. */
	ck_assert_int_eq(roost_topic_tree_unsubscribe(t, S("a/b/c"), &subs[0]), ROOST_OK);
	ck_assert_uint_eq(match(t, "a/b/c").n, 3 * 4 - 1); /* a/b/c, a/+/c, a/#, # */

	for (size_t i = 0; i < nf; i++)
		for (size_t k = 0; k < 3; k++) {
			roost_err want = (i == 0 && k == 0) ? ROOST_ERR_NOT_FOUND : ROOST_OK;

			ck_assert_int_eq(roost_topic_tree_unsubscribe(t, S(filters[i]), &subs[k]), want);
		}
	ck_assert_uint_eq(roost_topic_tree_subscription_count(t), 0);
	ck_assert_uint_gt(roost_topic_tree_node_count(t), 1); /* retained values remain */
	ck_assert_ptr_eq(roost_topic_tree_retain_find(t, S("a/b/c/d")), &subs[0]);
	retain(t, "a/b/c/d", NULL);
	ck_assert_uint_eq(roost_topic_tree_node_count(t), 2); /* root + "x" */
	retain(t, "x", NULL);
	ck_assert_uint_eq(roost_topic_tree_node_count(t), 1);
	ck_assert_uint_eq(roost_topic_tree_retained_count(t), 0);
	ck_assert_uint_eq(match(t, "a/b/c").n, 0);
	roost_topic_tree_free(t);
}
END_TEST

START_TEST(test_node_count_incremental)
{
	roost_topic_tree *t = tree_new();
	int a;

	subscribe(t, "a/b/c", &a, 0);
	ck_assert_uint_eq(roost_topic_tree_node_count(t), 4);
	subscribe(t, "a/+/#", &a, 0);
	ck_assert_uint_eq(roost_topic_tree_node_count(t), 6);
	retain(t, "a/b", &a);
	ck_assert_uint_eq(roost_topic_tree_node_count(t), 6);
	ck_assert_int_eq(roost_topic_tree_unsubscribe(t, S("a/b/c"), &a), ROOST_OK);
	ck_assert_uint_eq(roost_topic_tree_node_count(t), 5);
	ck_assert_int_eq(roost_topic_tree_unsubscribe(t, S("a/+/#"), &a), ROOST_OK);
	ck_assert_uint_eq(roost_topic_tree_node_count(t), 3);
	roost_topic_tree_free(t);
}
END_TEST

static void count_free(void *value)
{
	(*(int *)value)++;
}

START_TEST(test_free_calls_free_value_for_the_rest)
{
	roost_topic_tree *t = roost_topic_tree_new(count_free);
	int freed[5] = {0};
	void *old;
	int sub;

	ck_assert_ptr_nonnull(t);
	retain(t, "a", &freed[0]);
	retain(t, "a/b", &freed[1]);
	retain(t, "a/b/c", &freed[2]);
	retain(t, "$SYS/x", &freed[3]);
	retain(t, "z", &freed[4]);
	subscribe(t, "a/b/#", &sub, 0);
	/* Values handed back are the caller's: the tree does not free them. */
	ck_assert_int_eq(roost_topic_tree_retain_set(t, S("z"), NULL, &old), ROOST_OK);
	ck_assert_ptr_eq(old, &freed[4]);
	roost_topic_tree_free(t);
	ck_assert_int_eq(freed[0], 1);
	ck_assert_int_eq(freed[1], 1);
	ck_assert_int_eq(freed[2], 1);
	ck_assert_int_eq(freed[3], 1);
	ck_assert_int_eq(freed[4], 0);
	roost_topic_tree_free(NULL);
}
END_TEST

START_TEST(test_nomem_tree_new)
{
	for (unsigned long n = 1; n <= 2; n++) {
		roost_topic_tree *t;

		roost_alloc_fail_after(n);
		t = roost_topic_tree_new(NULL);
		roost_alloc_fail_after(0);
		ck_assert_ptr_null(t);
	}
}
END_TEST

struct snapshot {
	size_t subs, retained, nodes;
	size_t m_ab, m_axyz, m_dollar, r_all;
};

static struct snapshot snap(const roost_topic_tree *t)
{
	struct snapshot s = {
		.subs = roost_topic_tree_subscription_count(t),
		.retained = roost_topic_tree_retained_count(t),
		.nodes = roost_topic_tree_node_count(t),
	};

	roost_topic_tree_match(t, S("a/b"), count_sub, &s.m_ab);
	roost_topic_tree_match(t, S("a/x/y/z"), count_sub, &s.m_axyz);
	roost_topic_tree_match(t, S("$SYS/q"), count_sub, &s.m_dollar);
	roost_topic_tree_retain_match(t, S("#"), count_value, &s.r_all);
	return s;
}

static void snap_eq(struct snapshot a, struct snapshot b)
{
	ck_assert_uint_eq(a.subs, b.subs);
	ck_assert_uint_eq(a.retained, b.retained);
	ck_assert_uint_eq(a.nodes, b.nodes);
	ck_assert_uint_eq(a.m_ab, b.m_ab);
	ck_assert_uint_eq(a.m_axyz, b.m_axyz);
	ck_assert_uint_eq(a.m_dollar, b.m_dollar);
	ck_assert_uint_eq(a.r_all, b.r_all);
}

static roost_topic_tree *populated(int *cells)
{
	roost_topic_tree *t = tree_new();

	subscribe(t, "a/b", &cells[0], 0);
	subscribe(t, "a/+", &cells[1], 0);
	subscribe(t, "$SYS/#", &cells[1], 0);
	retain(t, "a/c", &cells[2]);
	return t;
}

/* Fail allocation 1, 2, ... of each call until it succeeds. */
START_TEST(test_nomem_subscribe_leaves_tree_unchanged)
{
	static const char *filters[] = {"a/x/y/z", "a/x/+/#", "+/x/y/z", "a/c", "new/level/s", "#"};
	int cells[3];
	roost_topic_tree *t0 = populated(cells);

	/* A second subscriber on a node with room allocates nothing. */
	roost_alloc_fail_after(1);
	ck_assert_int_eq(roost_topic_tree_subscribe(t0, S("a/b"), &cells[2], 0, NULL), ROOST_OK);
	roost_alloc_fail_after(0);
	roost_topic_tree_free(t0);

	for (size_t f = 0; f < sizeof(filters) / sizeof(filters[0]); f++) {
		roost_topic_tree *t = populated(cells);
		struct snapshot before = snap(t), after;
		unsigned long failures = 0;
		int sub;
		roost_err err;

		for (unsigned long n = 1;; n++) {
			ck_assert_uint_lt(n, 100);
			roost_alloc_fail_after(n);
			err = roost_topic_tree_subscribe(t, S(filters[f]), &sub, 1, NULL);
			roost_alloc_fail_after(0);
			if (err == ROOST_OK)
				break;
			ck_assert_int_eq(err, ROOST_ERR_NOMEM);
			snap_eq(snap(t), before);
			failures++;
		}
		ck_assert_uint_gt(failures, 0);
		after = snap(t);
		ck_assert_uint_eq(after.subs, before.subs + 1);
		ck_assert_int_eq(roost_topic_tree_unsubscribe(t, S(filters[f]), &sub), ROOST_OK);
		snap_eq(snap(t), before);
		roost_topic_tree_free(t);
	}
}
END_TEST

/* The subscriber array grows geometrically; each growth can fail. */
START_TEST(test_nomem_subscriber_array_growth)
{
	roost_topic_tree *t = tree_new();
	char subs[40];
	size_t failures = 0, n;

	for (size_t i = 0; i < sizeof(subs); i++) {
		roost_err err;

		roost_alloc_fail_after(1);
		err = roost_topic_tree_subscribe(t, S("a/b"), &subs[i], 0, NULL);
		roost_alloc_fail_after(0);
		if (err) {
			ck_assert_int_eq(err, ROOST_ERR_NOMEM);
			failures++;
			ck_assert_uint_eq(roost_topic_tree_subscription_count(t), i);
			subscribe(t, "a/b", &subs[i], 0);
		}
		n = 0;
		roost_topic_tree_match(t, S("a/b"), count_sub, &n);
		ck_assert_uint_eq(n, i + 1);
	}
	ck_assert_uint_ge(failures, 5); /* cap 2, 4, 8, 16, 32, 64 */
	/* Shrinking on unsubscribe may fail harmlessly. */
	for (size_t i = 0; i < sizeof(subs); i++) {
		roost_err err;

		roost_alloc_fail_after(1);
		err = roost_topic_tree_unsubscribe(t, S("a/b"), &subs[i]);
		roost_alloc_fail_after(0);
		ck_assert_int_eq(err, ROOST_OK);
		n = 0;
		roost_topic_tree_match(t, S("a/b"), count_sub, &n);
		ck_assert_uint_eq(n, sizeof(subs) - i - 1);
	}
	ck_assert_uint_eq(roost_topic_tree_node_count(t), 1);
	roost_topic_tree_free(t);
}
END_TEST

START_TEST(test_nomem_retain_set_leaves_tree_unchanged)
{
	static const char *topics[] = {"a/x/y/z", "a/c", "a", "q/r/s/t/u", "$SYS/q"};
	int cells[3], value;

	for (size_t f = 0; f < sizeof(topics) / sizeof(topics[0]); f++) {
		roost_topic_tree *t = populated(cells);
		struct snapshot before = snap(t);
		void *prev = roost_topic_tree_retain_find(t, S(topics[f]));
		void *old = &value;
		roost_err err;

		for (unsigned long n = 1;; n++) {
			ck_assert_uint_lt(n, 100);
			roost_alloc_fail_after(n);
			err = roost_topic_tree_retain_set(t, S(topics[f]), &value, &old);
			roost_alloc_fail_after(0);
			if (err == ROOST_OK)
				break;
			ck_assert_int_eq(err, ROOST_ERR_NOMEM);
			ck_assert_ptr_null(old);
			snap_eq(snap(t), before);
			ck_assert_ptr_eq(roost_topic_tree_retain_find(t, S(topics[f])), prev);
		}
		ck_assert_ptr_eq(old, prev);
		ck_assert_ptr_eq(roost_topic_tree_retain_find(t, S(topics[f])), &value);
		/* Putting the old state back (removal, or replacement in place) never allocates. */
		roost_alloc_fail_after(1);
		err = roost_topic_tree_retain_set(t, S(topics[f]), prev, &old);
		roost_alloc_fail_after(0);
		ck_assert_int_eq(err, ROOST_OK);
		ck_assert_ptr_eq(old, &value);
		snap_eq(snap(t), before);
		roost_topic_tree_free(t);
	}
}
END_TEST

/* Growing a child table (uthash bucket expansion) can fail mid-insert. */
START_TEST(test_nomem_child_table_growth)
{
	roost_topic_tree *t = tree_new();
	int sub;
	size_t failures = 0;
	char f[32];

	for (int i = 0; i < 1500; i++) {
		roost_err err;

		snprintf(f, sizeof(f), "p/c%d", i);
		for (unsigned long n = 1;; n++) {
			ck_assert_uint_lt(n, 10);
			roost_alloc_fail_after(n);
			err = roost_topic_tree_subscribe(t, S(f), &sub, 0, NULL);
			roost_alloc_fail_after(0);
			if (err == ROOST_OK)
				break;
			ck_assert_int_eq(err, ROOST_ERR_NOMEM);
			ck_assert_uint_eq(roost_topic_tree_subscription_count(t), (size_t)i);
			ck_assert_uint_eq(roost_topic_tree_node_count(t), (size_t)i + (i ? 2 : 1));
			if (n > 1 && i > 0)
				failures++; /* the node was allocated: the table grew and failed */
		}
	}
	ck_assert_uint_gt(failures, 0);
	for (int i = 0; i < 1500; i++) {
		snprintf(f, sizeof(f), "p/c%d", i);
		ck_assert_uint_eq(match(t, f).n, 1);
	}
	for (int i = 0; i < 1500; i++) {
		snprintf(f, sizeof(f), "p/c%d", i);
		ck_assert_int_eq(roost_topic_tree_unsubscribe(t, S(f), &sub), ROOST_OK);
	}
	ck_assert_uint_eq(roost_topic_tree_node_count(t), 1);
	roost_topic_tree_free(t);
}
END_TEST

/* ---- limits ------------------------------------------------------------ */

static char *repeat_level(const char *level, size_t levels)
{
	size_t ll = strlen(level), len = levels * (ll + 1) - 1;
	char *s = malloc(len + 1);

	ck_assert_ptr_nonnull(s);
	for (size_t i = 0; i < levels; i++) {
		memcpy(s + i * (ll + 1), level, ll);
		if (i + 1 < levels)
			s[i * (ll + 1) + ll] = '/';
	}
	s[len] = '\0';
	return s;
}

START_TEST(test_deep_topics_10000_levels)
{
	enum { DEPTH = 10000 };
	roost_topic_tree *t = roost_topic_tree_new(count_free);
	char *exact = repeat_level("a", DEPTH);
	char *plus = repeat_level("+", DEPTH);
	char *miss = repeat_level("a", DEPTH);
	char *hash = repeat_level("a", DEPTH / 2);
	int subs[4], freed = 0;
	size_t n;

	ck_assert_ptr_nonnull(t);
	miss[strlen(miss) - 1] = 'b'; /* differs only at the deepest level */
	hash[strlen(hash) - 1] = '#';
	subscribe(t, exact, &subs[0], 0);
	subscribe(t, plus, &subs[1], 0);
	subscribe(t, hash, &subs[2], 0);
	subscribe(t, "#", &subs[3], 0);
	ck_assert_uint_eq(roost_topic_tree_node_count(t), 1 + 2 * DEPTH + 2); /* + two '#' */

	ck_assert_uint_eq(match(t, exact).n, 4);
	ck_assert_uint_eq(match(t, miss).n, 3);
	ck_assert_uint_eq(match(t, "a").n, 1);
	ck_assert(roost_topic_matches(S(exact), S(exact)));
	ck_assert(roost_topic_matches(S(plus), S(exact)));
	ck_assert(roost_topic_matches(S(hash), S(miss)));
	ck_assert(!roost_topic_matches(S(exact), S(miss)));

	retain(t, exact, &freed);
	n = 0;
	roost_topic_tree_retain_match(t, S("#"), count_value, &n);
	ck_assert_uint_eq(n, 1);
	n = 0;
	roost_topic_tree_retain_match(t, S(plus), count_value, &n);
	ck_assert_uint_eq(n, 1);
	n = 0;
	roost_topic_tree_retain_match(t, S(hash), count_value, &n);
	ck_assert_uint_eq(n, 1);
	n = 0;
	roost_topic_tree_retain_match(t, S(miss), count_value, &n);
	ck_assert_uint_eq(n, 0);

	ck_assert_int_eq(roost_topic_tree_unsubscribe(t, S(plus), &subs[1]), ROOST_OK);
	ck_assert_int_eq(roost_topic_tree_unsubscribe(t, S(exact), &subs[0]), ROOST_OK);
	/* The retained path stays, with the two '#' nodes; free it with a value deep inside. */
	ck_assert_uint_eq(roost_topic_tree_node_count(t), 1 + DEPTH + 2);
	roost_topic_tree_free(t);
	ck_assert_int_eq(freed, 1);
	free(exact);
	free(plus);
	free(miss);
	free(hash);
}
END_TEST

/* 65535 bytes of '/' is the longest name: 65536 empty levels. */
START_TEST(test_MQTT_4_7_3_3_longest_topic_all_empty_levels)
{
	enum { LEN = 65535 };
	roost_topic_tree *t = roost_topic_tree_new(count_free);
	char *topic = malloc(LEN + 1);
	int sub, freed = 0;
	size_t n = 0;

	ck_assert_ptr_nonnull(t);
	ck_assert_ptr_nonnull(topic);
	memset(topic, '/', LEN);
	topic[LEN] = '\0';
	subscribe(t, "#", &sub, 0);
	subscribe(t, "/#", &sub, 0);
	subscribe(t, "+/+", &sub, 0);
	ck_assert_uint_eq(match(t, topic).n, 2);
	ck_assert_int_eq(roost_topic_tree_retain_set(t, topic, LEN, &freed, NULL), ROOST_OK);
	ck_assert_uint_eq(roost_topic_tree_node_count(t), 1 + 65536 + 4);
	roost_topic_tree_retain_match(t, S("#"), count_value, &n);
	ck_assert_uint_eq(n, 1);
	ck_assert_ptr_eq(roost_topic_tree_retain_find(t, topic, LEN), &freed);
	roost_topic_tree_free(t);
	ck_assert_int_eq(freed, 1);
	free(topic);
}
END_TEST

START_TEST(test_many_subscribers_one_filter)
{
	enum { N = 5000 };
	roost_topic_tree *t = tree_new();
	char *subs = malloc(N);
	size_t n = 0;

	ck_assert_ptr_nonnull(subs);
	for (size_t i = 0; i < N; i++)
		subscribe(t, "news", &subs[i], (uint8_t)(i & 3));
	roost_topic_tree_match(t, S("news"), count_sub, &n);
	ck_assert_uint_eq(n, N);
	for (size_t i = 0; i < N; i += 2)
		ck_assert_int_eq(roost_topic_tree_unsubscribe(t, S("news"), &subs[i]), ROOST_OK);
	n = 0;
	roost_topic_tree_match(t, S("news"), count_sub, &n);
	ck_assert_uint_eq(n, N / 2);
	ck_assert_uint_eq(roost_topic_tree_subscription_count(t), N / 2);
	roost_topic_tree_free(t);
	free(subs);
}
END_TEST

START_TEST(test_embedded_nul_and_long_level)
{
	roost_topic_tree *t = tree_new();
	static const char nul_topic[] = {'a', '\0', 'b', '/', 'c'};
	char *longlvl = malloc(60000);
	int sub;

	ck_assert_ptr_nonnull(longlvl);
	memset(longlvl, 'x', 60000);
	ck_assert_int_eq(roost_topic_tree_subscribe(t, nul_topic, sizeof(nul_topic), &sub, 0, NULL), ROOST_OK);
	ck_assert_int_eq(roost_topic_tree_subscribe(t, longlvl, 60000, &sub, 0, NULL), ROOST_OK);
	ck_assert_uint_eq(match(t, "a").n, 0);
	{
		struct visits v = {0};

		roost_topic_tree_match(t, nul_topic, sizeof(nul_topic), collect_sub, &v);
		ck_assert_uint_eq(v.n, 1);
		v.n = 0;
		roost_topic_tree_match(t, longlvl, 60000, collect_sub, &v);
		ck_assert_uint_eq(v.n, 1);
		v.n = 0;
		roost_topic_tree_match(t, longlvl, 59999, collect_sub, &v);
		ck_assert_uint_eq(v.n, 0);
	}
	roost_topic_tree_free(t);
	free(longlvl);
}
END_TEST

/*
 * For hot loops: ck_assert records its location on every call (a write to
 * the runner), which dominates a test that checks millions of times.
 */
#define REQUIRE_MSG(expr, ...)                  \
	do {                                    \
		if (!(expr))                    \
			ck_abort_msg(__VA_ARGS__); \
	} while (0)
#define REQUIRE(expr) REQUIRE_MSG(expr, "Assertion '%s' failed", #expr)

/* ---- differential: tree vs roost_topic_matches ------------------------- */

static uint64_t rng_next(uint64_t *s)
{
	/* xorshift64*: fixed seed, same sequence everywhere. */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

static void random_levels(uint64_t *rng, char *out, size_t cap, const char *const *alphabet,
                          size_t nalpha)
{
	size_t levels = 1 + rng_next(rng) % 4, len = 0;

	out[0] = '\0';
	for (size_t i = 0; i < levels; i++) {
		const char *l = alphabet[rng_next(rng) % nalpha];

		len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? "/" : "", l);
		REQUIRE(len < cap);
	}
}

static const char *const filter_alpha[] = {"a", "b", "", "$x", "+", "#"};
static const char *const topic_alpha[] = {"a", "b", "", "$x"};

#define NSUBS 6
#define MAXPAIRS 512

struct pair {
	char filter[24];
	int sub;
	uint8_t opt;
};

struct model {
	struct pair p[MAXPAIRS];
	size_t n;
};

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

struct key_visits {
	const char *subs; /* base of the subscriber array */
	size_t n;
	uint32_t key[MAXPAIRS];
};

static bool collect_key(void *ctx, void *sub, uint8_t options)
{
	struct key_visits *kv = ctx;

	REQUIRE(kv->n < MAXPAIRS);
	kv->key[kv->n++] = (uint32_t)((const char *)sub - kv->subs) << 8 | options;
	return true;
}

static void compare_match(const roost_topic_tree *t, const struct model *m, const char *subs,
                          const char *topic)
{
	struct key_visits got = {.subs = subs}, want = {.subs = subs};

	roost_topic_tree_match(t, S(topic), collect_key, &got);
	for (size_t i = 0; i < m->n; i++)
		if (roost_topic_matches(S(m->p[i].filter), S(topic)))
			want.key[want.n++] = (uint32_t)m->p[i].sub << 8 | m->p[i].opt;
	qsort(got.key, got.n, sizeof(got.key[0]), cmp_u32);
	qsort(want.key, want.n, sizeof(want.key[0]), cmp_u32);
	REQUIRE_MSG(got.n == want.n, "topic \"%s\": tree visited %zu, reference %zu", topic, got.n, want.n);
	REQUIRE_MSG(memcmp(got.key, want.key, got.n * sizeof(got.key[0])) == 0,
	            "topic \"%s\": different visits", topic);
}

START_TEST(test_differential_subscriptions)
{
	roost_topic_tree *t = tree_new();
	static struct model m;
	char subs[NSUBS];
	uint64_t rng = 0x9E3779B97F4A7C15ULL;
	char buf[24];

	m.n = 0;
	for (int iter = 0; iter < 20000; iter++) {
		unsigned op = (unsigned)(rng_next(&rng) % 10);

		if (op < 4 && m.n < MAXPAIRS) {
			int sub = (int)(rng_next(&rng) % NSUBS);
			uint8_t opt = (uint8_t)(rng_next(&rng) % 3);
			bool replaced, want_replaced = false;

			random_levels(&rng, buf, sizeof(buf), filter_alpha, 6);
			REQUIRE(roost_topic_tree_subscribe(t, S(buf), &subs[sub], opt, &replaced) == ROOST_OK);
			for (size_t i = 0; i < m.n; i++)
				if (m.p[i].sub == sub && strcmp(m.p[i].filter, buf) == 0) {
					m.p[i].opt = opt;
					want_replaced = true;
				}
			if (!want_replaced) {
				strcpy(m.p[m.n].filter, buf);
				m.p[m.n].sub = sub;
				m.p[m.n].opt = opt;
				m.n++;
			}
			REQUIRE(replaced == want_replaced);
		} else if (op < 6 && m.n > 0) {
			size_t i = rng_next(&rng) % m.n;

			REQUIRE(roost_topic_tree_unsubscribe(t, S(m.p[i].filter), &subs[m.p[i].sub]) == ROOST_OK);
			m.p[i] = m.p[--m.n];
		} else if (op < 7) {
			int sub = (int)(rng_next(&rng) % NSUBS);
			bool present = false;

			random_levels(&rng, buf, sizeof(buf), filter_alpha, 6);
			for (size_t i = 0; i < m.n; i++)
				present |= m.p[i].sub == sub && strcmp(m.p[i].filter, buf) == 0;
			if (!present)
				REQUIRE(roost_topic_tree_unsubscribe(t, S(buf), &subs[sub]) == ROOST_ERR_NOT_FOUND);
		} else {
			random_levels(&rng, buf, sizeof(buf), topic_alpha, 4);
			compare_match(t, &m, subs, buf);
		}
		REQUIRE(roost_topic_tree_subscription_count(t) == m.n);
	}
	while (m.n > 0) {
		const struct pair *last = &m.p[m.n - 1];

		REQUIRE(roost_topic_tree_unsubscribe(t, S(last->filter), &subs[last->sub]) == ROOST_OK);
		m.n--;
	}
	REQUIRE(roost_topic_tree_node_count(t) == 1);
	roost_topic_tree_free(t);
}
END_TEST

#define NTOPICS 512

struct value_visits {
	const char *values; /* base of the value array */
	size_t n;
	bool seen[NTOPICS];
};

static bool collect_distinct(void *ctx, void *value)
{
	struct value_visits *vv = ctx;
	size_t i = (size_t)((const char *)value - vv->values);

	REQUIRE(i < NTOPICS);
	REQUIRE_MSG(!vv->seen[i], "value visited twice");
	vv->seen[i] = true;
	vv->n++;
	return true;
}

START_TEST(test_differential_retained)
{
	roost_topic_tree *t = tree_new();
	/* topics[i] holds values[i] when set[i]; filters are checked against all. */
	char topics[NTOPICS][24];
	bool set[NTOPICS] = {false};
	char values[NTOPICS];
	size_t ntopics = 0, nset = 0;
	uint64_t rng = 0xD1B54A32D192ED03ULL;
	char buf[24];

	for (int iter = 0; iter < 20000; iter++) {
		unsigned op = (unsigned)(rng_next(&rng) % 10);

		if (op < 5) {
			size_t i;
			void *old;

			random_levels(&rng, buf, sizeof(buf), topic_alpha, 4);
			for (i = 0; i < ntopics && strcmp(topics[i], buf) != 0; i++)
				;
			if (i == ntopics) {
				if (ntopics == NTOPICS)
					continue;
				strcpy(topics[ntopics++], buf);
			}
			if (op < 3) {
				REQUIRE(roost_topic_tree_retain_set(t, S(buf), &values[i], &old) == ROOST_OK);
				REQUIRE(old == (set[i] ? &values[i] : NULL));
				nset += !set[i];
				set[i] = true;
			} else {
				REQUIRE(roost_topic_tree_retain_set(t, S(buf), NULL, &old) == ROOST_OK);
				REQUIRE(old == (set[i] ? &values[i] : NULL));
				nset -= set[i];
				set[i] = false;
			}
			REQUIRE(roost_topic_tree_retained_count(t) == nset);
		} else {
			struct value_visits got = {.values = values};
			size_t want = 0;

			random_levels(&rng, buf, sizeof(buf), filter_alpha, 6);
			roost_topic_tree_retain_match(t, S(buf), collect_distinct, &got);
			for (size_t i = 0; i < ntopics; i++) {
				bool m = set[i] && roost_topic_matches(S(buf), S(topics[i]));
				bool seen = got.seen[i];

				REQUIRE_MSG(m == seen, "filter \"%s\" topic \"%s\": tree %d, reference %d", buf, topics[i], seen, m);
				want += m;
			}
			REQUIRE(got.n == want);
		}
	}
	for (size_t i = 0; i < ntopics; i++)
		if (set[i])
			retain(t, topics[i], NULL);
	REQUIRE(roost_topic_tree_retained_count(t) == 0);
	REQUIRE(roost_topic_tree_node_count(t) == 1);
	roost_topic_tree_free(t);
}
END_TEST

/* Exhaustive over short names: every filter against every topic, tree and reference. */
START_TEST(test_differential_exhaustive_two_levels)
{
	static const char *const fl[] = {"a", "", "$x", "+", "#"};
	static const char *const tl[] = {"a", "", "$x", "b"};
	char f[16], tp[16];
	int sub;

	for (int fn = 1; fn <= 2; fn++)
		for (int fi = 0; fi < (fn == 1 ? 5 : 25); fi++) {
			roost_topic_tree *t = tree_new();

			if (fn == 1)
				snprintf(f, sizeof(f), "%s", fl[fi]);
			else
				snprintf(f, sizeof(f), "%s/%s", fl[fi / 5], fl[fi % 5]);
			subscribe(t, f, &sub, 0);
			for (int tn = 1; tn <= 3; tn++) {
				int lim = tn == 1 ? 4 : tn == 2 ? 16 : 64;

				for (int ti = 0; ti < lim; ti++) {
					size_t n = 0;

					if (tn == 1)
						snprintf(tp, sizeof(tp), "%s", tl[ti]);
					else if (tn == 2)
						snprintf(tp, sizeof(tp), "%s/%s", tl[ti / 4], tl[ti % 4]);
					else
						snprintf(tp, sizeof(tp), "%s/%s/%s", tl[ti / 16], tl[ti / 4 % 4], tl[ti % 4]);
					roost_topic_tree_match(t, S(tp), count_sub, &n);
					REQUIRE_MSG(n == (size_t)roost_topic_matches(S(f), S(tp)), "filter \"%s\" topic \"%s\"", f, tp);
				}
			}
			roost_topic_tree_free(t);
		}
}
END_TEST

/* ---- suite ------------------------------------------------------------- */

/* limits.max_topic_levels / max_topic_length: one function, both bounds,
 * at the exact edge; 0 means unbounded. */
START_TEST(test_topic_check_limits_edges)
{
	const char *why = NULL;
	char deep[2 * 300];
	for (size_t i = 0; i < 300; i++) {
		deep[2 * i] = 'a';
		deep[2 * i + 1] = '/';
	}
	/* 200 levels: "a/a/.../a" is 399 bytes. */
	ck_assert_int_eq(roost_topic_check_limits(deep, 399, 200, 65535, &why), ROOST_OK);
	ck_assert_int_eq(roost_topic_check_limits(deep, 401, 200, 65535, &why), ROOST_ERR_TOO_LARGE);
	ck_assert_ptr_nonnull(strstr(why, "max_topic_levels"));
	ck_assert_int_eq(roost_topic_check_limits(deep, 400, 200, 65535, &why), ROOST_ERR_TOO_LARGE); /* trailing "" level */
	ck_assert_int_eq(roost_topic_check_limits(deep, 401, 0, 65535, &why), ROOST_OK);
	ck_assert_int_eq(roost_topic_check_limits(S("a"), 1, 1, &why), ROOST_OK);
	ck_assert_int_eq(roost_topic_check_limits(S("/"), 1, 65535, &why), ROOST_ERR_TOO_LARGE); /* 2 levels */
	ck_assert_int_eq(roost_topic_check_limits(S("abcd"), 200, 4, &why), ROOST_OK);
	why = NULL;
	ck_assert_int_eq(roost_topic_check_limits(S("abcde"), 200, 4, &why), ROOST_ERR_TOO_LARGE);
	ck_assert_ptr_nonnull(strstr(why, "max_topic_length"));
}
END_TEST

/* ---- shared subscriptions [MQTT-4.8.2] ---- */

static bool pick_share(void *ctx, roost_topic_share *g)
{
	struct visits *v = ctx;
	uint8_t o;

	ck_assert_uint_lt(v->n, MAX_VISITS);
	v->sub[v->n] = roost_topic_share_member(g, 0, &o); /* whoever's turn it is */
	v->opt[v->n++] = o;
	roost_topic_share_chosen(g, 0);
	return true;
}

static struct visits match_shared(const roost_topic_tree *t, const char *topic)
{
	struct visits v = {0};

	roost_topic_tree_match_shared(t, S(topic), collect_sub, pick_share, &v);
	return v;
}

START_TEST(test_MQTT_4_8_2_share_parse)
{
	const char *g, *r;
	size_t gl, rl;

	ck_assert_int_eq(roost_topic_share_parse(S("$share/grp/a/+"), &g, &gl, &r, &rl), 1);
	ck_assert_uint_eq(gl, 3);
	ck_assert_mem_eq(g, "grp", 3);
	ck_assert_uint_eq(rl, 3);
	ck_assert_mem_eq(r, "a/+", 3);
	ck_assert_int_eq(roost_topic_share_parse(S("a/b"), &g, &gl, &r, &rl), 0);
	ck_assert_int_eq(roost_topic_share_parse(S("$shared/g/a"), &g, &gl, &r, &rl), 0);
	/* [MQTT-4.8.2-1] a ShareName of at least one character, no wildcards. */
	ck_assert_int_eq(roost_topic_share_parse(S("$share//a"), &g, &gl, &r, &rl), -1);
	ck_assert_int_eq(roost_topic_share_parse(S("$share/g+/a"), &g, &gl, &r, &rl), -1);
	ck_assert_int_eq(roost_topic_share_parse(S("$share/#/a"), &g, &gl, &r, &rl), -1);
	/* [MQTT-4.8.2-2] a filter after the name. */
	ck_assert_int_eq(roost_topic_share_parse(S("$share/g"), &g, &gl, &r, &rl), -1);
	ck_assert_int_eq(roost_topic_share_parse(S("$share/g/"), &g, &gl, &r, &rl), -1);
}
END_TEST

START_TEST(test_MQTT_4_8_2_share_group_round_robin)
{
	roost_topic_tree *t = tree_new();
	int a, b, c, plain;

	subscribe(t, "$share/g/x/+", &a, 1);
	subscribe(t, "$share/g/x/+", &b, 2);
	subscribe(t, "$share/h/x/+", &c, 0); /* another group: its own copy */
	subscribe(t, "x/+", &plain, 0);
	ck_assert_uint_eq(roost_topic_tree_subscription_count(t), 4);
	/* A plain match does not see groups. */
	struct visits v = match(t, "x/1");
	ck_assert_uint_eq(v.n, 1);
	ck_assert_ptr_eq(v.sub[0], &plain);
	/* Each message: the plain subscriber, one of g, the one of h. */
	size_t got_a = 0, got_b = 0;
	for (int i = 0; i < 4; i++) {
		v = match_shared(t, "x/1");
		ck_assert_uint_eq(v.n, 3);
		ck_assert_uint_eq(times(&v, &plain), 1);
		ck_assert_uint_eq(times(&v, &c), 1);
		got_a += times(&v, &a);
		got_b += times(&v, &b);
	}
	ck_assert_uint_eq(got_a, 2);
	ck_assert_uint_eq(got_b, 2);
	/* Leaving the group; the last member takes the group away, the nodes with it. */
	ck_assert_int_eq(roost_topic_tree_unsubscribe(t, S("$share/g/x/+"), &a), ROOST_OK);
	ck_assert_int_eq(roost_topic_tree_unsubscribe(t, S("$share/g/x/+"), &a), ROOST_ERR_NOT_FOUND);
	v = match_shared(t, "x/1");
	ck_assert_uint_eq(times(&v, &b), 1);
	ck_assert_int_eq(roost_topic_tree_unsubscribe(t, S("$share/g/x/+"), &b), ROOST_OK);
	ck_assert_int_eq(roost_topic_tree_unsubscribe(t, S("$share/h/x/+"), &c), ROOST_OK);
	ck_assert_int_eq(roost_topic_tree_unsubscribe(t, S("x/+"), &plain), ROOST_OK);
	ck_assert_uint_eq(roost_topic_tree_node_count(t), 1);
	ck_assert_uint_eq(roost_topic_tree_subscription_count(t), 0);
	roost_topic_tree_free(t);
}
END_TEST

START_TEST(test_share_group_freed_with_tree)
{
	roost_topic_tree *t = tree_new();
	int a;

	subscribe(t, "$share/g/#", &a, 0);
	roost_topic_tree_free(t); /* ASan: the group and its members go too */
}
END_TEST

Suite *topic_suite(void)
{
	Suite *s = suite_create("topic");
	TCase *tc;

	tc = tcase_create("valid");
	tcase_add_test(tc, test_MQTT_4_7_1_2_multi_level_wildcard_examples);
	tcase_add_test(tc, test_MQTT_4_7_1_2_multi_level_matches_parent);
	tcase_add_test(tc, test_MQTT_4_7_1_2_hash_alone_matches_everything);
	tcase_add_test(tc, test_MQTT_4_7_1_2_non_final_hash_matches_nothing);
	tcase_add_test(tc, test_MQTT_4_7_1_3_single_level_wildcard_examples);
	tcase_add_test(tc, test_MQTT_4_7_1_3_plus_does_not_match_parent);
	tcase_add_test(tc, test_MQTT_4_7_1_3_finance_examples);
	tcase_add_test(tc, test_MQTT_4_7_2_1_hash_does_not_match_dollar);
	tcase_add_test(tc, test_MQTT_4_7_2_1_plus_monitor_clients);
	tcase_add_test(tc, test_MQTT_4_7_2_1_dollar_sys_filters_match);
	tcase_add_test(tc, test_MQTT_4_7_2_1_hash_and_dollar_sys_together);
	tcase_add_test(tc, test_MQTT_4_7_3_4_no_normalisation);
	tcase_add_test(tc, test_overlapping_subscriptions_visited_per_filter);
	tcase_add_test(tc, test_MQTT_3_8_4_3_resubscribe_replaces_options);
	tcase_add_test(tc, test_visitor_false_stops_match);
	tcase_add_test(tc, test_retain_set_replace_remove);
	tcase_add_test(tc, test_retain_match_wildcards);
	tcase_add_test(tc, test_subscriptions_and_retained_share_nodes);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_deep_topics_10000_levels);
	tcase_add_test(tc, test_topic_check_limits_edges);
	tcase_add_test(tc, test_MQTT_4_8_2_share_parse);
	tcase_add_test(tc, test_MQTT_4_8_2_share_group_round_robin);
	tcase_add_test(tc, test_share_group_freed_with_tree);
	tcase_add_test(tc, test_MQTT_4_7_3_3_longest_topic_all_empty_levels);
	tcase_add_test(tc, test_many_subscribers_one_filter);
	tcase_add_test(tc, test_embedded_nul_and_long_level);
	suite_add_tcase(s, tc);

	tc = tcase_create("lifetime");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_unsubscribe_not_found);
	tcase_add_test(tc, test_pruning_restores_empty_tree);
	tcase_add_test(tc, test_node_count_incremental);
	tcase_add_test(tc, test_free_calls_free_value_for_the_rest);
	tcase_add_test(tc, test_nomem_tree_new);
	tcase_add_test(tc, test_nomem_subscribe_leaves_tree_unchanged);
	tcase_add_test(tc, test_nomem_subscriber_array_growth);
	tcase_add_test(tc, test_nomem_retain_set_leaves_tree_unchanged);
	tcase_add_test(tc, test_nomem_child_table_growth);
	suite_add_tcase(s, tc);

	tc = tcase_create("differential");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_differential_subscriptions);
	tcase_add_test(tc, test_differential_retained);
	tcase_add_test(tc, test_differential_exhaustive_two_levels);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(topic_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
