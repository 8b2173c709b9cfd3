/*
 * fuzz_topic.c — the topic trie against the reference matcher.
 *
 * Input: filter, a NUL byte, topic (no NUL: the whole input is both). NUL
 * never occurs in an MQTT string [MQTT-4.7.3-2], so the split loses nothing.
 * The bytes are not validated first: the tree and roost_topic_matches must
 * agree on every input, valid or not. The input's filter and topic join a
 * fixed background set (so nodes have siblings, '+', '#' and '$' neighbours,
 * and both the scanned and the hashed child lookup run). Aborts unless:
 *   - match(topic) visits each subscription once exactly when its filter
 *     matches the topic;
 *   - retain_match(filter) visits each retained topic once exactly when the
 *     filter matches it;
 *   - removing what the input added restores the counters of the background.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "roost/topic.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const background_filters[] = {
	"a", "b", "c", "d", "e", "f", "+", "#", "a/+", "a/#", "+/b", "$SYS/#", "", "/", "a//#",
};
static const char *const background_topics[] = {
	"a", "b", "c", "d", "e", "f", "a/b", "a/b/c", "$SYS/x", "$", "", "/", "a//b",
};
#define NF (sizeof(background_filters) / sizeof(background_filters[0]))
#define NT (sizeof(background_topics) / sizeof(background_topics[0]))

struct seen {
	const char *base; /* visited pointers are base + index */
	unsigned count[NF + NT + 1];
};

static bool see_sub(void *ctx, void *sub, uint8_t options)
{
	struct seen *s = ctx;

	(void)options;
	s->count[(const char *)sub - s->base]++;
	return true;
}

static bool see_value(void *ctx, void *value)
{
	struct seen *s = ctx;

	s->count[(const char *)value - s->base]++;
	return true;
}

/* Share groups met by a match_shared walk. */
struct shares_seen {
	const roost_topic_share *want;
	unsigned hits, others;
};

static bool see_share(void *ctx, roost_topic_share *g)
{
	struct shares_seen *s = ctx;

	if (g == s->want)
		s->hits++;
	else
		s->others++;
	return true;
}

static bool see_nothing(void *ctx, void *sub, uint8_t options)
{
	(void)ctx;
	(void)sub;
	(void)options;
	return true;
}

static roost_topic_tree *background(const char *ids)
{
	roost_topic_tree *tree = roost_topic_tree_new(NULL);

	if (!tree)
		abort();
	for (size_t i = 0; i < NF; i++)
		if (roost_topic_tree_subscribe(tree, background_filters[i], strlen(background_filters[i]),
		                               (void *)&ids[i], 0, NULL) != ROOST_OK)
			abort();
	for (size_t i = 0; i < NT; i++)
		if (roost_topic_tree_retain_set(tree, background_topics[i], strlen(background_topics[i]),
		                                (void *)&ids[NF + i], NULL) != ROOST_OK)
			abort();
	return tree;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char ids[NF + NT + 1];
	const char *in = (const char *)data;
	const char *nul = memchr(in, '\0', size);
	const char *filter = in, *topic = in;
	size_t flen = size, tlen = size, nodes;
	roost_topic_tree *tree;
	struct seen seen = {.base = ids};
	void *old, *mine = (void *)&ids[NF + NT];
	bool replaced_bg = false;

	if (size == 0)
		return 0; /* names and filters are at least one byte [MQTT-4.7.3-1] */
	if (nul) {
		flen = (size_t)(nul - in);
		topic = nul + 1;
		tlen = size - flen - 1;
	}
	tree = background(ids);
	nodes = roost_topic_tree_node_count(tree);

	if (roost_topic_tree_subscribe(tree, filter, flen, mine, 0, NULL) != ROOST_OK)
		abort();
	roost_topic_tree_match(tree, topic, tlen, see_sub, &seen);
	for (size_t i = 0; i < NF; i++)
		if (seen.count[i] != roost_topic_matches(background_filters[i], strlen(background_filters[i]),
		                                         topic, tlen))
			abort();
	/* [MQTT-4.8.2] "$share/{group}/{filter}" is kept as a share group at
	 * {filter}: a plain match leaves it out, match_shared meets the group
	 * once when {filter} matches the topic. */
	const char *group, *rest;
	size_t glen, rlen;
	int share = roost_topic_share_parse(filter, flen, &group, &glen, &rest, &rlen);
	if (seen.count[NF + NT] != (share == 1 ? 0 : roost_topic_matches(filter, flen, topic, tlen)))
		abort();
	if (share == 1) {
		uint8_t opt;
		roost_topic_share *g = roost_topic_tree_share_find(tree, filter, flen);
		if (!g || roost_topic_share_size(g) != 1 || roost_topic_share_member(g, 0, &opt) != mine)
			abort();
		struct shares_seen ss = {.want = g};
		roost_topic_tree_match_shared(tree, topic, tlen, see_nothing, see_share, &ss);
		if (ss.others || ss.hits != (unsigned)roost_topic_matches(rest, rlen, topic, tlen))
			abort();
	}

	memset(seen.count, 0, sizeof(seen.count));
	if (roost_topic_tree_retain_set(tree, topic, tlen, mine, &old) != ROOST_OK)
		abort();
	for (size_t i = 0; i < NT; i++)
		if (old == &ids[NF + i])
			replaced_bg = true;
	if (old && !replaced_bg)
		abort();
	if (roost_topic_tree_retain_find(tree, topic, tlen) != mine)
		abort();
	roost_topic_tree_retain_match(tree, filter, flen, see_value, &seen);
	for (size_t i = 0; i < NT; i++) {
		bool want = old != &ids[NF + i] &&
		            roost_topic_matches(filter, flen, background_topics[i], strlen(background_topics[i]));

		if (seen.count[NF + i] != want)
			abort();
	}
	if (seen.count[NF + NT] != roost_topic_matches(filter, flen, topic, tlen))
		abort();

	if (roost_topic_tree_unsubscribe(tree, filter, flen, mine) != ROOST_OK)
		abort();
	if (roost_topic_tree_retain_set(tree, topic, tlen, old, &old) != ROOST_OK || old != mine)
		abort();
	if (roost_topic_tree_node_count(tree) != nodes || roost_topic_tree_subscription_count(tree) != NF ||
	    roost_topic_tree_retained_count(tree) != NT)
		abort();
	roost_topic_tree_free(tree);
	return 0;
}
