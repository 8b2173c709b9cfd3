/*
 * topic.h — the one topic trie: subscriptions and retained messages.
 *
 * A tree of levels ("a/b/c" -> a, b, c; "" levels are real levels: "/a" has an
 * empty first level). Each node keeps its children in a uthash table keyed by
 * the level text, so matching a topic costs O(levels) hash lookups plus the
 * '+' and '#' branches — it never walks the whole tree.
 *
 * Subscriptions: a node (the filter's last level) holds a list of
 * (subscriber, options) pairs. A subscriber is an opaque pointer chosen by the
 * caller (the broker stores session pointers: sessions outlive connections);
 * the tree never dereferences it. One (filter, subscriber) pair exists at most
 * once: subscribing again replaces its options [MQTT-3.8.4-3].
 *
 * Shared subscriptions [MQTT-4.8.2]: a filter "$share/{group}/{filter}"
 * passed to subscribe/unsubscribe is kept at {filter}'s node in a group
 * named {group}; a match visits the group once (not its members), and the
 * caller picks one member with the roost_topic_share_* calls. Plain
 * matches (roost_topic_tree_match) leave groups out.
 *
 * Retained messages: a node (the topic's last level) may hold one opaque
 * retained value. The tree owns nothing it stores: retain_set hands back the
 * previous value so the caller can release it; roost_topic_tree_free() calls
 * the free_value callback on each retained value still stored.
 *
 * Matching rules ([MQTT-4.7.1-1..3], [MQTT-4.7.2-1]): '+' matches exactly one
 * level (including an empty one); '#' matches the parent level and any number
 * of child levels ("sport/#" matches "sport"); filters beginning with a
 * wildcard do not match topic names beginning with '$'.
 *
 * Empty nodes are pruned on unsubscribe and on retain removal, so memory
 * follows the live set.
 *
 * No ACL, no sending, no validation beyond what matching needs: callers pass
 * names and filters that roost_topic_name_valid/filter_valid accepted.
 */
#ifndef ROOST_TOPIC_H
#define ROOST_TOPIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roost/error.h"

typedef struct roost_topic_tree roost_topic_tree;

/* Called once for each retained value left in the tree by _free. May be NULL. */
typedef void (*roost_topic_free_fn)(void *value);

roost_topic_tree *roost_topic_tree_new(roost_topic_free_fn free_value);
void roost_topic_tree_free(roost_topic_tree *tree);

/*
 * Add or update (filter, sub). *replaced (may be NULL) is set true when the
 * pair existed and only its options changed.
 */
roost_err roost_topic_tree_subscribe(roost_topic_tree *tree, const char *filter, size_t len,
                                     void *sub, uint8_t options, bool *replaced);

/* Remove (filter, sub). ROOST_ERR_NOT_FOUND when absent. */
roost_err roost_topic_tree_unsubscribe(roost_topic_tree *tree, const char *filter, size_t len, void *sub);

/*
 * Visit every (sub, options) whose filter matches the topic name. A subscriber
 * with several matching filters is visited once per filter (overlapping
 * subscriptions); the caller merges. The visitor must not modify the tree.
 * Returning false from the visitor stops the walk.
 */
typedef bool (*roost_topic_sub_visit)(void *ctx, void *sub, uint8_t options);
void roost_topic_tree_match(const roost_topic_tree *tree, const char *topic, size_t len,
                            roost_topic_sub_visit visit, void *ctx);

/*
 * Is filter a shared subscription "$share/{group}/{filter}"? 0: no; 1: yes,
 * with *group, *glen and *rest, *rlen (the real filter, for the caller to
 * validate) pointing into it; -1: it starts with "$share/" but the group is
 * empty or has '+' or '#' [MQTT-4.8.2-1], or no filter follows
 * [MQTT-4.8.2-2].
 */
int roost_topic_share_parse(const char *filter, size_t len, const char **group, size_t *glen,
                            const char **rest, size_t *rlen);

/* One share group met by a match: its members, counted from the member
 * whose turn it is (round robin), and how to say which one was chosen. */
typedef struct roost_topic_share roost_topic_share;
uint32_t roost_topic_share_size(const roost_topic_share *g);
void *roost_topic_share_member(const roost_topic_share *g, uint32_t i, uint8_t *options);
/* Member i (as counted by _member) got the message: the next turn is the one after it. */
void roost_topic_share_chosen(roost_topic_share *g, uint32_t i);

/* The group of a "$share/{group}/{filter}" subscription, or NULL (borrowed). */
roost_topic_share *roost_topic_tree_share_find(const roost_topic_tree *tree, const char *filter, size_t len);

/* The match with share groups: share(ctx, g) once per matching group. */
typedef bool (*roost_topic_share_visit)(void *ctx, roost_topic_share *g);
void roost_topic_tree_match_shared(const roost_topic_tree *tree, const char *topic, size_t len,
                                   roost_topic_sub_visit visit, roost_topic_share_visit share, void *ctx);

/*
 * Store value as the retained value of topic (NULL removes it). *old receives
 * the previous value (or NULL), which the caller now owns.
 */
roost_err roost_topic_tree_retain_set(roost_topic_tree *tree, const char *topic, size_t len,
                                      void *value, void **old);

/* The retained value stored at exactly this topic, or NULL (borrowed). */
void *roost_topic_tree_retain_find(const roost_topic_tree *tree, const char *topic, size_t len);

/*
 * Visit every retained value whose topic matches the filter, with the $-rule
 * applied. Returning false stops the walk. The visitor must not modify the tree.
 */
typedef bool (*roost_topic_retain_visit)(void *ctx, void *value);
void roost_topic_tree_retain_match(const roost_topic_tree *tree, const char *filter, size_t len,
                                   roost_topic_retain_visit visit, void *ctx);

/* Counters for $SYS and tests. */
size_t roost_topic_tree_subscription_count(const roost_topic_tree *tree);
size_t roost_topic_tree_retained_count(const roost_topic_tree *tree);
size_t roost_topic_tree_node_count(const roost_topic_tree *tree);

/*
 * Plain recursive matcher of one filter against one topic name, with the same
 * rules as the tree. Used by ACL checks and as the reference in differential
 * tests of the tree.
 */
bool roost_topic_matches(const char *filter, size_t flen, const char *topic, size_t tlen);

/*
 * The broker's bounds on a topic name or filter (limits.max_topic_levels,
 * limits.max_topic_length): each level costs a trie node, so one deep topic
 * must not cost megabytes. ROOST_OK, or ROOST_ERR_TOO_LARGE with *why
 * naming the limit. 0 means no bound. Used for every PUBLISH, will,
 * component publish and SUBSCRIBE filter.
 */
roost_err roost_topic_check_limits(const char *topic, size_t len, uint32_t max_levels, uint32_t max_length,
                                   const char **why);

#endif
