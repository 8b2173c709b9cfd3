/*
 * topic.c — the one topic trie: subscriptions and retained messages.
 *
 * Shape: a node per level. Literal child levels live in a uthash table keyed
 * by the level text (stored inline in the node); the '+' and '#' children
 * are kept out of that table in two pointer fields, so matching reaches them
 * without hashing, and an exact lookup can never land on a wildcard node.
 *
 * Walks never recurse and never allocate. Topics can have 65535 levels, so
 * recursion is out, and an explicit stack would need a heap fallback that can
 * fail on the hot path. Instead each walk keeps its position in the tree
 * itself: a node knows its parent, a node at depth d consumed level d-1 of
 * the topic (or filter), and when the walk backs up it recovers the parent's
 * level by scanning back to the previous '/'. Only three facts are needed to
 * resume: the node, the span of the level it consumed, and whether it was an
 * exact or a '+' step (for match) or what the filter level was (for
 * retain_match).
 *
 * Invariant: every node except the root has subscribers, a retained value
 * or a child. Removal paths prune upwards to keep it, and a failed insertion
 * prunes the nodes it created, so the tree is unchanged by a failed call.
 */
#include <string.h>

#include "roost/alloc.h"
#include "roost/topic.h"
#include "roost/uthash_cfg.h"

struct sub_entry {
	void *sub;
	uint8_t options;
};

/* Subscribers of one filter, or the members of one share group. */
struct sub_list {
	struct sub_entry *v;     /* unordered; one entry per subscriber */
	uint32_t n;
	uint32_t cap;
};

/*
 * A shared subscription group [MQTT-4.8.2]: "$share/{name}/{filter}" lives
 * at the filter's node as a group of members, of which each message goes
 * to one. cursor is where the next round-robin choice starts; it is the
 * only field a match walk changes (through roost_topic_share_chosen), and
 * it is not part of the tree's shape.
 */
struct roost_topic_share {
	struct roost_topic_share *next;
	struct sub_list members;
	uint32_t cursor;
	uint32_t len;
	char name[];
};

struct node {
	UT_hash_handle hh;       /* in parent->children; unused for '+', '#', root */
	struct node *parent;     /* NULL only for the root */
	struct node *children;   /* uthash table of literal child levels */
	struct node *plus;       /* the '+' child */
	struct node *multi;      /* the '#' child */
	struct sub_list subs;
	struct roost_topic_share *groups; /* shared subscriptions on this filter */
	void *retained;
	uint32_t nlit;           /* literal children: HASH_COUNT without touching the table */
	uint32_t len;
	char level[];            /* len bytes + NUL (the NUL is for debuggers) */
};

struct roost_topic_tree {
	struct node *root;
	roost_topic_free_fn free_value;
	size_t subscriptions;
	size_t retained;
	size_t nodes;
};

/* ---- levels ------------------------------------------------------------ */

/* End (exclusive) of the level that starts at start: the next '/' or len. */
static size_t level_end(const char *s, size_t len, size_t start)
{
	const char *slash = memchr(s + start, '/', len - start);
	return slash ? (size_t)(slash - s) : len;
}

/* Start of the level that ends at end: just after the previous '/', or 0. */
static size_t level_start(const char *s, size_t end)
{
	while (end > 0 && s[end - 1] != '/')
		end--;
	return end;
}

static bool is_plus(const char *level, size_t len)
{
	return len == 1 && level[0] == '+';
}

static bool is_multi(const char *level, size_t len)
{
	return len == 1 && level[0] == '#';
}

/* ---- nodes ------------------------------------------------------------- */

static bool node_empty(const struct node *n)
{
	return n->subs.n == 0 && !n->groups && !n->retained && !n->children && !n->plus && !n->multi;
}

/*
 * Most nodes of a topic tree have one or two children ("devices/<id>/cmd").
 * For those, comparing the few children directly is cheaper than hashing
 * the level and reading the table and its bucket array (two more cache
 * lines); the uthash item list links them all.
 */
#define SCAN_MAX 4

/* The literal child with this level text, or NULL. */
static struct node *find_literal(const struct node *n, const char *level, size_t len)
{
	struct node *c;

	if (n->nlit == 0 || len > UINT32_MAX) /* node and uthash lengths are 32-bit */
		return NULL;
	if (n->nlit <= SCAN_MAX) {
		for (c = n->children; c; c = c->hh.next)
			if (c->len == len && memcmp(c->level, level, len) == 0)
				return c;
		return NULL;
	}
	HASH_FIND(hh, n->children, level, (unsigned)len, c);
	return c;
}

/* The child that a subscribe/retain path step takes for this level. */
static struct node *find_step(const struct node *n, const char *level, size_t len)
{
	if (is_plus(level, len))
		return n->plus;
	if (is_multi(level, len))
		return n->multi;
	return find_literal(n, level, len);
}

static struct node *node_new(struct node *parent, const char *level, size_t len)
{
	struct node *n;

	if (len > UINT32_MAX || len > SIZE_MAX - sizeof(*n) - 1)
		return NULL;
	n = roost_malloc(sizeof(*n) + len + 1);
	if (!n)
		return NULL;
	memset(n, 0, sizeof(*n));
	n->parent = parent;
	n->len = (uint32_t)len;
	memcpy(n->level, level, len);
	n->level[len] = '\0';
	return n;
}

static void node_free(struct node *n)
{
	roost_free(n->subs.v);
	while (n->groups) {
		struct roost_topic_share *g = n->groups;
		n->groups = g->next;
		roost_free(g->members.v);
		roost_free(g);
	}
	roost_free(n);
}

/* Create the child of parent for this level; parent has none yet. */
static roost_err add_step(roost_topic_tree *tree, struct node *parent, const char *level,
                          size_t len, struct node **out)
{
	struct node *c = node_new(parent, level, len);

	if (!c)
		return ROOST_ERR_NOMEM;
	if (is_plus(level, len)) {
		parent->plus = c;
	} else if (is_multi(level, len)) {
		parent->multi = c;
	} else {
		/* HASH_NONFATAL_OOM: on failure the table is left as it was. */
		roost_uthash_oom_flag = 0;
		HASH_ADD_KEYPTR(hh, parent->children, c->level, (unsigned)len, c);
		if (roost_uthash_oom_flag) {
			node_free(c);
			return ROOST_ERR_NOMEM;
		}
		parent->nlit++;
	}
	tree->nodes++;
	*out = c;
	return ROOST_OK;
}

static void detach(struct node *parent, struct node *c)
{
	if (parent->plus == c)
		parent->plus = NULL;
	else if (parent->multi == c)
		parent->multi = NULL;
	else {
		HASH_DELETE(hh, parent->children, c);
		parent->nlit--;
	}
}

/* Remove n and its ancestors while they hold nothing (keeps the invariant). */
static void prune(roost_topic_tree *tree, struct node *n)
{
	while (n->parent && node_empty(n)) {
		struct node *p = n->parent;

		detach(p, n);
		node_free(n);
		tree->nodes--;
		n = p;
	}
}

/* The node for this filter or topic, or NULL. */
static struct node *path_find(const roost_topic_tree *tree, const char *s, size_t len)
{
	struct node *n = tree->root;
	size_t start = 0;

	for (;;) {
		size_t end = level_end(s, len, start);

		n = find_step(n, s + start, end - start);
		if (!n || end == len)
			return n;
		start = end + 1;
	}
}

/* The node for this filter or topic, created if needed. */
static roost_err path_make(roost_topic_tree *tree, const char *s, size_t len, struct node **out)
{
	struct node *n = tree->root;
	size_t start = 0;

	for (;;) {
		size_t end = level_end(s, len, start);
		struct node *c = find_step(n, s + start, end - start);

		if (!c) {
			roost_err err = add_step(tree, n, s + start, end - start, &c);

			if (err) {
				prune(tree, n); /* only the nodes this call created are empty */
				return err;
			}
		}
		n = c;
		if (end == len)
			break;
		start = end + 1;
	}
	*out = n;
	return ROOST_OK;
}

/*
 * Children in a fixed order: literal children, then '+', then '#'. Wildcard
 * walks ('+' and '#' in retain_match, free) use these.
 */
static const struct node *first_child(const struct node *n)
{
	if (n->children)
		return n->children;
	return n->plus ? n->plus : n->multi;
}

static const struct node *next_sibling(const struct node *c)
{
	const struct node *p = c->parent;

	if (c == p->multi)
		return NULL;
	if (c == p->plus)
		return p->multi;
	if (c->hh.next)
		return c->hh.next;
	return p->plus ? p->plus : p->multi;
}

/* A wildcard at the first level skips topics that begin with '$' [MQTT-4.7.2-1]. */
static const struct node *skip_dollar(const struct node *c)
{
	while (c && !c->parent->parent && c->len > 0 && c->level[0] == '$')
		c = next_sibling(c);
	return c;
}

static const struct node *wild_first(const struct node *n)
{
	return skip_dollar(first_child(n));
}

static const struct node *wild_next(const struct node *c)
{
	return skip_dollar(next_sibling(c));
}

/* ---- tree -------------------------------------------------------------- */

roost_topic_tree *roost_topic_tree_new(roost_topic_free_fn free_value)
{
	roost_topic_tree *tree = roost_calloc(1, sizeof(*tree));

	if (!tree)
		goto fail;
	tree->root = node_new(NULL, "", 0);
	if (!tree->root)
		goto fail;
	tree->free_value = free_value;
	tree->nodes = 1;
	return tree;
fail:
	roost_free(tree);
	return NULL;
}

void roost_topic_tree_free(roost_topic_tree *tree)
{
	struct node *n;

	if (!tree)
		return;
	/* Post-order without a stack: descend to a leaf, free it, resume at its parent. */
	n = tree->root;
	while (n) {
		struct node *c = n->children ? n->children : n->plus ? n->plus : n->multi;
		struct node *p;

		if (c) {
			n = c;
			continue;
		}
		p = n->parent;
		if (n->retained && tree->free_value)
			tree->free_value(n->retained);
		if (p)
			detach(p, n);
		node_free(n);
		n = p;
	}
	roost_free(tree);
}

/* ---- subscriptions ----------------------------------------------------- */

static struct sub_entry *find_sub(const struct sub_list *l, const void *sub)
{
	for (uint32_t i = 0; i < l->n; i++)
		if (l->v[i].sub == sub)
			return &l->v[i];
	return NULL;
}

static roost_err grow_subs(struct sub_list *l)
{
	uint32_t cap;
	struct sub_entry *subs;

	if (l->n < l->cap)
		return ROOST_OK;
	if (l->cap > UINT32_MAX / 2)
		return ROOST_ERR_NOMEM;
	cap = l->cap ? l->cap * 2 : 2;
	subs = roost_realloc(l->v, (size_t)cap * sizeof(*subs));
	if (!subs)
		return ROOST_ERR_NOMEM;
	l->v = subs;
	l->cap = cap;
	return ROOST_OK;
}

/* Add or update sub in l; false from *added when it was an update. */
static roost_err list_put(struct sub_list *l, void *sub, uint8_t options, bool *added)
{
	struct sub_entry *e = find_sub(l, sub);

	*added = !e;
	if (e) {
		e->options = options; /* [MQTT-3.8.4-3] */
		return ROOST_OK;
	}
	if (grow_subs(l))
		return ROOST_ERR_NOMEM;
	l->v[l->n++] = (struct sub_entry){sub, options};
	return ROOST_OK;
}

static void list_remove(struct sub_list *l, struct sub_entry *e)
{
	*e = l->v[--l->n];
	if (l->n == 0) {
		roost_free(l->v);
		l->v = NULL;
		l->cap = 0;
	} else if (l->cap >= 8 && l->n <= l->cap / 4) {
		/* Give memory back after a mass unsubscribe; keeping the old array on failure is fine. */
		struct sub_entry *subs = roost_realloc(l->v, (size_t)(l->cap / 2) * sizeof(*subs));

		if (subs) {
			l->v = subs;
			l->cap /= 2;
		}
	}
}

static struct roost_topic_share *find_group(const struct node *n, const char *name, size_t len)
{
	for (struct roost_topic_share *g = n->groups; g; g = g->next)
		if (g->len == len && memcmp(g->name, name, len) == 0)
			return g;
	return NULL;
}

int roost_topic_share_parse(const char *filter, size_t len, const char **group, size_t *glen,
                            const char **rest, size_t *rlen)
{
	static const char prefix[] = "$share/";
	const size_t plen = sizeof prefix - 1;

	if (len < plen || memcmp(filter, prefix, plen) != 0)
		return 0;
	const char *g = filter + plen;
	const char *slash = memchr(g, '/', len - plen);
	/* [MQTT-4.8.2-1] a ShareName of at least one character, no '+' or
	 * '#'; [MQTT-4.8.2-2] then '/' and a Topic Filter. */
	if (!slash || slash == g || slash + 1 == filter + len)
		return -1;
	if (memchr(g, '+', (size_t)(slash - g)) || memchr(g, '#', (size_t)(slash - g)))
		return -1;
	*group = g;
	*glen = (size_t)(slash - g);
	*rest = slash + 1;
	*rlen = len - plen - *glen - 1;
	return 1;
}

/* The member list that (filter, sub) goes in, created if needed: the node's
 * own for a plain filter, its group's for a shared one. */
static roost_err list_make(roost_topic_tree *tree, const char *filter, size_t len, struct node **node,
                           struct sub_list **list)
{
	const char *name, *rest;
	size_t nlen, rlen;
	bool shared = roost_topic_share_parse(filter, len, &name, &nlen, &rest, &rlen) == 1;
	roost_err err = shared ? path_make(tree, rest, rlen, node) : path_make(tree, filter, len, node);

	if (err)
		return err;
	if (!shared) {
		*list = &(*node)->subs;
		return ROOST_OK;
	}
	struct roost_topic_share *g = find_group(*node, name, nlen);
	if (!g) {
		g = roost_calloc(1, sizeof(*g) + nlen + 1);
		if (!g) {
			prune(tree, *node);
			return ROOST_ERR_NOMEM;
		}
		g->len = (uint32_t)nlen;
		memcpy(g->name, name, nlen);
		g->next = (*node)->groups;
		(*node)->groups = g;
	}
	*list = &g->members;
	return ROOST_OK;
}

/* Remove an emptied group from its node. */
static void group_drop_if_empty(struct node *n, struct sub_list *list)
{
	for (struct roost_topic_share **pp = &n->groups; *pp; pp = &(*pp)->next) {
		struct roost_topic_share *g = *pp;
		if (&g->members == list && g->members.n == 0) {
			*pp = g->next;
			roost_free(g);
			return;
		}
	}
}

roost_err roost_topic_tree_subscribe(roost_topic_tree *tree, const char *filter, size_t len,
                                     void *sub, uint8_t options, bool *replaced)
{
	struct node *n;
	struct sub_list *l;
	bool added;
	roost_err err;

	if (replaced)
		*replaced = false;
	err = list_make(tree, filter, len, &n, &l);
	if (err)
		return err;
	err = list_put(l, sub, options, &added);
	if (err) {
		group_drop_if_empty(n, l);
		prune(tree, n);
		return err;
	}
	if (added)
		tree->subscriptions++;
	else if (replaced)
		*replaced = true;
	return ROOST_OK;
}

roost_err roost_topic_tree_unsubscribe(roost_topic_tree *tree, const char *filter, size_t len, void *sub)
{
	const char *name, *rest;
	size_t nlen, rlen;
	bool shared = roost_topic_share_parse(filter, len, &name, &nlen, &rest, &rlen) == 1;
	struct node *n = shared ? path_find(tree, rest, rlen) : path_find(tree, filter, len);
	struct roost_topic_share *g = n && shared ? find_group(n, name, nlen) : NULL;
	struct sub_list *l = !n ? NULL : shared ? (g ? &g->members : NULL) : &n->subs;
	struct sub_entry *e = l ? find_sub(l, sub) : NULL;

	if (!e)
		return ROOST_ERR_NOT_FOUND;
	list_remove(l, e);
	tree->subscriptions--;
	if (shared)
		group_drop_if_empty(n, l);
	prune(tree, n);
	return ROOST_OK;
}

roost_topic_share *roost_topic_tree_share_find(const roost_topic_tree *tree, const char *filter, size_t len)
{
	const char *name, *rest;
	size_t nlen, rlen;

	if (roost_topic_share_parse(filter, len, &name, &nlen, &rest, &rlen) != 1)
		return NULL;
	struct node *n = path_find(tree, rest, rlen);
	return n ? find_group(n, name, nlen) : NULL;
}

uint32_t roost_topic_share_size(const roost_topic_share *g)
{
	return g->members.n;
}

void *roost_topic_share_member(const roost_topic_share *g, uint32_t i, uint8_t *options)
{
	const struct sub_entry *e = &g->members.v[(g->cursor + i) % g->members.n];
	*options = e->options;
	return e->sub;
}

void roost_topic_share_chosen(roost_topic_share *g, uint32_t i)
{
	g->cursor = (g->cursor + i + 1) % g->members.n;
}

/* What a match walk calls: for plain subscribers, and for share groups (may be NULL). */
typedef struct matcher {
	roost_topic_sub_visit visit;
	roost_topic_share_visit share;
	void *ctx;
} matcher;

static bool visit_subs(const struct node *n, const matcher *m)
{
	for (uint32_t i = 0; i < n->subs.n; i++)
		if (!m->visit(m->ctx, n->subs.v[i].sub, n->subs.v[i].options))
			return false;
	if (m->share)
		for (struct roost_topic_share *g = n->groups; g; g = g->next)
			if (!m->share(m->ctx, g))
				return false;
	return true;
}

void roost_topic_tree_match(const roost_topic_tree *tree, const char *topic, size_t len,
                            roost_topic_sub_visit visit, void *ctx)
{
	roost_topic_tree_match_shared(tree, topic, len, visit, NULL, ctx);
}

void roost_topic_tree_match_shared(const roost_topic_tree *tree, const char *topic, size_t len,
                                   roost_topic_sub_visit visit, roost_topic_share_visit share, void *ctx)
{
	const matcher m = {visit, share, ctx};
	const struct node *root = tree->root;
	const struct node *n = root;
	/* [MQTT-4.7.2-1] no '+' or '#' at the first level for "$..." topics */
	bool dollar = len > 0 && topic[0] == '$';
	size_t ls = 0, le = 0; /* the topic level n consumed (unused at the root) */

	for (;;) {
		/* Going down: n has just been entered. */
		if (n != root && le == len) {
			/* The topic ends here: n's filters match, and "n/#" too [MQTT-4.7.1-2]. */
			if (!visit_subs(n, &m))
				return;
			if (n->multi && !visit_subs(n->multi, &m))
				return;
		} else {
			size_t ns = n == root ? 0 : le + 1;
			size_t ne = level_end(topic, len, ns);
			bool wild = n != root || !dollar;
			const struct node *c;

			/* '#' matches this level and everything below it [MQTT-4.7.1-2]. */
			if (wild && n->multi && !visit_subs(n->multi, &m))
				return;
			c = find_literal(n, topic + ns, ne - ns);
			if (!c && wild)
				c = n->plus; /* [MQTT-4.7.1-3] */
			if (c) {
				n = c;
				ls = ns;
				le = ne;
				continue;
			}
		}
		/* Going up: n's subtree is done. An exact step is followed by the '+' step. */
		for (;;) {
			const struct node *p = n->parent;

			if (!p)
				return;
			if (n != p->plus && p->plus && (p != root || !dollar)) {
				n = p->plus; /* consumes the same level as n did */
				break;
			}
			n = p;
			if (n != root) {
				le = ls - 1;
				ls = level_start(topic, le);
			}
		}
	}
}

/* ---- retained values --------------------------------------------------- */

roost_err roost_topic_tree_retain_set(roost_topic_tree *tree, const char *topic, size_t len,
                                      void *value, void **old)
{
	struct node *n;
	void *prev;

	if (old)
		*old = NULL;
	if (!value) {
		n = path_find(tree, topic, len);
		if (!n || !n->retained)
			return ROOST_OK;
		prev = n->retained;
		n->retained = NULL;
		tree->retained--;
		prune(tree, n);
	} else {
		roost_err err = path_make(tree, topic, len, &n);

		if (err)
			return err;
		prev = n->retained;
		n->retained = value;
		if (!prev)
			tree->retained++;
	}
	if (old)
		*old = prev;
	return ROOST_OK;
}

void *roost_topic_tree_retain_find(const roost_topic_tree *tree, const char *topic, size_t len)
{
	const struct node *n = path_find(tree, topic, len);

	return n ? n->retained : NULL;
}

/* top's own value (unless top is the root) and every value below it. */
static bool visit_subtree(const struct node *top, roost_topic_retain_visit visit, void *ctx)
{
	const struct node *c;

	if (top->parent && top->retained && !visit(ctx, top->retained))
		return false;
	/* Pre-order without a stack, bounded by top. */
	c = wild_first(top);
	while (c) {
		const struct node *next;

		if (c->retained && !visit(ctx, c->retained))
			return false;
		next = wild_first(c);
		while (!next && c != top) {
			next = wild_next(c);
			if (!next)
				c = c->parent;
		}
		c = next;
	}
	return true;
}

void roost_topic_tree_retain_match(const roost_topic_tree *tree, const char *filter, size_t len,
                                   roost_topic_retain_visit visit, void *ctx)
{
	const struct node *root = tree->root;
	const struct node *n = root;
	size_t ls = 0, le = 0; /* the filter level n consumed (unused at the root) */

	for (;;) {
		/* Going down: n has just been entered. */
		if (n != root && le == len) {
			if (n->retained && !visit(ctx, n->retained))
				return;
		} else {
			size_t ns = n == root ? 0 : le + 1;
			size_t ne = level_end(filter, len, ns);
			const struct node *c;

			if (is_multi(filter + ns, ne - ns)) {
				/* "sport/#" includes "sport" [MQTT-4.7.1-2]; '#' must be last [MQTT-4.7.1-2]. */
				if (ne == len && !visit_subtree(n, visit, ctx))
					return;
				c = NULL;
			} else if (is_plus(filter + ns, ne - ns)) {
				c = wild_first(n);
			} else {
				c = find_literal(n, filter + ns, ne - ns);
			}
			if (c) {
				n = c;
				ls = ns;
				le = ne;
				continue;
			}
		}
		/* Going up: n's subtree is done. Under '+', move to n's next sibling. */
		for (;;) {
			const struct node *next;

			if (!n->parent)
				return;
			if (is_plus(filter + ls, le - ls)) {
				next = wild_next(n);
				if (next) {
					n = next; /* consumes the same level as n did */
					break;
				}
			}
			n = n->parent;
			if (n != root) {
				le = ls - 1;
				ls = level_start(filter, le);
			}
		}
	}
}

/* ---- counters ---------------------------------------------------------- */

size_t roost_topic_tree_subscription_count(const roost_topic_tree *tree)
{
	return tree->subscriptions;
}

size_t roost_topic_tree_retained_count(const roost_topic_tree *tree)
{
	return tree->retained;
}

/* Includes the root: an empty tree has one node. */
size_t roost_topic_tree_node_count(const roost_topic_tree *tree)
{
	return tree->nodes;
}

/* ---- reference matcher ------------------------------------------------- */

/*
 * One filter against one name needs no backtracking ('+' takes exactly one
 * level, '#' ends the filter), so this is a single loop over both level
 * lists: no recursion, any depth.
 */
bool roost_topic_matches(const char *filter, size_t flen, const char *topic, size_t tlen)
{
	size_t fs = 0, ts = 0;

	/* [MQTT-4.7.2-1] */
	if (tlen > 0 && topic[0] == '$' && flen > 0 && (filter[0] == '+' || filter[0] == '#') &&
	    (flen == 1 || filter[1] == '/'))
		return false;
	for (;;) {
		size_t fe = level_end(filter, flen, fs);
		size_t te = level_end(topic, tlen, ts);

		if (is_multi(filter + fs, fe - fs))
			return fe == flen; /* '#' is last and takes the rest [MQTT-4.7.1-2] */
		if (!is_plus(filter + fs, fe - fs) &&
		    (fe - fs != te - ts || memcmp(filter + fs, topic + ts, fe - fs) != 0))
			return false;
		if (te == tlen) {
			/* The name ends: the filter must end too, or end in "/#" [MQTT-4.7.1-2]. */
			return fe == flen || (flen - fe == 2 && filter[fe + 1] == '#');
		}
		if (fe == flen)
			return false;
		fs = fe + 1;
		ts = te + 1;
	}
}

roost_err roost_topic_check_limits(const char *topic, size_t len, uint32_t max_levels, uint32_t max_length,
                                   const char **why)
{
	if (max_length && len > max_length) {
		*why = "the topic is longer than limits.max_topic_length";
		return ROOST_ERR_TOO_LARGE;
	}
	if (!max_levels)
		return ROOST_OK;
	/* Levels are one more than the separators; stop counting at the bound. */
	uint32_t levels = 1;
	for (const char *p = topic, *end = topic + len; (p = memchr(p, '/', (size_t)(end - p))) != NULL; p++) {
		if (++levels > max_levels) {
			*why = "the topic has more levels than limits.max_topic_levels";
			return ROOST_ERR_TOO_LARGE;
		}
	}
	return ROOST_OK;
}
