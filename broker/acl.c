/*
 * acl.c — Mosquitto-compatible acl_file: loader and pure decisions.
 *
 * Semantics are documented in include/roost/acl.h. Read Mosquitto 2.0's
 * src/security_default.c for them (aclfile__parse, add__acl,
 * mosquitto_acl_check_default); the code here is our own. Where we differ on
 * purpose: every error in the file is reported (Mosquitto stops at the
 * first), a deny wins over every grant (Mosquitto checks the user's block
 * before patterns), substituted ids are literal text and a dangerous id
 * fails closed per entry (Mosquitto denies the whole client), and SUBSCRIBE
 * is checked against the filter (Mosquitto 2.0's default check lets every
 * subscription through and filters only at delivery).
 *
 * Layout: each block (anonymous, or one per username in a uthash) and the
 * pattern set keep their deny entries and grant entries in two arrays, so
 * "deny first" is two passes over short arrays with no allocation.
 */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "roost/acl.h"
#include "roost/alloc.h"
#include "roost/codec.h"
#include "roost/topic.h"
#include "roost/uthash_cfg.h"

#include "loader.h"

/* An ACL file bigger than this is not an ACL file. */
/* Untrusted text quoted in an error message is cut after this many bytes. */

typedef struct entry {
	char *filter;
	size_t len;
	uint8_t access; /* ROOST_ACL_READ | ROOST_ACL_WRITE bits; 0 = deny */
	bool subst;     /* a pattern with a whole "%c" or "%u" level */
	bool uses_user; /* ... and "%u" among them */
} entry;

typedef struct list {
	entry *items;
	size_t count, cap;
} list;

typedef struct block {
	char *username; /* NULL for the anonymous block */
	list deny, grant;
	UT_hash_handle hh;
} block;

struct roost_acl {
	block anon;
	block *users;   /* uthash by username */
	list pattern_deny, pattern_grant;
	size_t count;
};

/* ---- errors (same list shape as config.c) ------------------------------- */


/* ---- matching ----------------------------------------------------------- */

static size_t level_end(const char *s, size_t len, size_t start)
{
	const char *p = start < len ? memchr(s + start, '/', len - start) : NULL;
	return p ? (size_t)(p - s) : len;
}

static bool has_wildcard(const char *s, size_t len)
{
	return memchr(s, '+', len) || memchr(s, '#', len);
}

/* The value standing for "%c" or "%u" in one check. */
typedef struct value {
	const char *s;
	size_t len;
	bool dangerous; /* holds '+', '#' or '/', or is missing: never literal */
} value;

typedef struct subst {
	value cid, user;
} subst;

static value value_of(const char *s)
{
	value v = {s, s ? strlen(s) : 0, s == NULL};
	if (s && strpbrk(s, "+#/"))
		v.dangerous = true;
	return v;
}

/*
 * Does the entry's filter match (is_filter false: a topic name) or cover
 * (is_filter true: a subscription filter) the subject? Level by level:
 * entry '#' takes the rest, entry '+' any one level except a subject '#',
 * "%c"/"%u" (patterns only) the substituted value as literal text — or any
 * one level when the value is dangerous and the entry is a deny — and any
 * other level only the same text. For a topic name and a plain entry this
 * is exactly roost_topic_matches().
 */
static bool covers(const entry *e, const char *s, size_t slen, bool is_filter, const subst *sv, bool deny)
{
	const char *f = e->filter;
	size_t flen = e->len, fs = 0, ss = 0;

	/* [MQTT-4.7.2-1]: a leading wildcard does not reach '$' topics. */
	if (slen > 0 && s[0] == '$' && (f[0] == '+' || f[0] == '#') && (flen == 1 || f[1] == '/'))
		return false;
	for (;;) {
		size_t fe = level_end(f, flen, fs);
		size_t se = level_end(s, slen, ss);
		const char *fl = f + fs, *sl = s + ss;
		size_t fn = fe - fs, sn = se - ss;

		if (fn == 1 && fl[0] == '#')
			return true;
		if (is_filter && sn == 1 && sl[0] == '#')
			return false; /* only an entry '#' covers a subscribed '#' */
		if (fn == 1 && fl[0] == '+') {
			/* any one level */
		} else if (e->subst && fn == 2 && fl[0] == '%' && (fl[1] == 'c' || fl[1] == 'u')) {
			const value *v = fl[1] == 'c' ? &sv->cid : &sv->user;
			if (v->dangerous) {
				if (!deny)
					return false;
			} else if (v->len != sn || memcmp(v->s, sl, sn) != 0) {
				return false;
			}
		} else if (fn != sn || memcmp(fl, sl, fn) != 0) {
			return false;
		}
		if (se == slen) /* the subject ends: so must the entry, or in "/#" */
			return fe == flen || (flen - fe == 2 && f[fe + 1] == '#');
		if (fe == flen)
			return false;
		fs = fe + 1;
		ss = se + 1;
	}
}

static bool entry_matches(const entry *e, const char *topic, size_t len, bool is_filter, const subst *sv,
                          bool deny)
{
	if (e->subst) {
		if (e->uses_user && !sv->user.s)
			return false; /* %u patterns do not apply to anonymous clients */
		return covers(e, topic, len, is_filter, sv, deny);
	}
	if (!is_filter)
		return roost_topic_matches(e->filter, e->len, topic, len);
	return covers(e, topic, len, true, sv, deny);
}

static bool any_deny(const list *l, const char *topic, size_t len, bool is_filter, const subst *sv)
{
	for (size_t i = 0; i < l->count; i++)
		if (entry_matches(&l->items[i], topic, len, is_filter, sv, true))
			return true;
	return false;
}

static bool any_grant(const list *l, int need, const char *topic, size_t len, bool is_filter, const subst *sv)
{
	for (size_t i = 0; i < l->count; i++)
		if ((l->items[i].access & need) && entry_matches(&l->items[i], topic, len, is_filter, sv, false))
			return true;
	return false;
}

bool roost_acl_check(const roost_acl *acl, const char *client_id, const char *username, const char *topic,
                     size_t len, int access)
{
	const block *b = NULL;
	int need;

	assert(acl);
	if (access == ROOST_ACL_WRITE)
		need = ROOST_ACL_WRITE;
	else if (access == ROOST_ACL_READ || access == ROOST_ACL_SUBSCRIBE)
		need = ROOST_ACL_READ;
	else
		return false;
	if (!topic || len == 0)
		return false;
	if (username)
		HASH_FIND(hh, acl->users, username, strlen(username), b);
	else
		b = &acl->anon;

	/* A filter without wildcards covers exactly the one topic it names. */
	bool is_filter = access == ROOST_ACL_SUBSCRIBE && has_wildcard(topic, len);
	subst sv = {value_of(client_id), value_of(username)};

	if ((b && any_deny(&b->deny, topic, len, is_filter, &sv)) ||
	    any_deny(&acl->pattern_deny, topic, len, is_filter, &sv))
		return false;
	return (b && any_grant(&b->grant, need, topic, len, is_filter, &sv)) ||
	       any_grant(&acl->pattern_grant, need, topic, len, is_filter, &sv);
}

/* ---- loading ------------------------------------------------------------ */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static void trim(const char **s, size_t *n)
{
	while (*n > 0 && is_blank(**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && is_blank((*s)[*n - 1]))
		(*n)--;
}

/* Split the first word off *s (blanks around it dropped). */
static void next_word(const char **s, size_t *n, const char **w, size_t *wn)
{
	trim(s, n);
	*w = *s;
	*wn = 0;
	while (*wn < *n && !is_blank((*s)[*wn]))
		(*wn)++;
	*s += *wn;
	*n -= *wn;
	trim(s, n);
}

static bool word_is(const char *w, size_t n, const char *lit)
{
	return n == strlen(lit) && memcmp(w, lit, n) == 0;
}

static int list_add(list *l, const entry *e)
{
	if (l->count == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4;
		entry *items = roost_realloc(l->items, cap * sizeof *items);
		if (!items)
			return -1;
		l->items = items;
		l->cap = cap;
	}
	l->items[l->count++] = *e;
	return 0;
}

static void list_cleanup(list *l)
{
	for (size_t i = 0; i < l->count; i++)
		roost_free(l->items[i].filter);
	roost_free(l->items);
	l->items = NULL;
	l->count = l->cap = 0;
}

static void scan_subst(entry *e)
{
	for (size_t s = 0; s < e->len;) {
		size_t end = level_end(e->filter, e->len, s);
		if (end - s == 2 && e->filter[s] == '%' && (e->filter[s + 1] == 'c' || e->filter[s + 1] == 'u')) {
			e->subst = true;
			if (e->filter[s + 1] == 'u')
				e->uses_user = true;
		}
		s = end + 1;
	}
}

/* "topic ..." or "pattern ..." with the keyword already taken off. */
static void parse_rule(load_state *st, roost_acl *acl, block *cur, bool pattern, int line, const char *s, size_t n)
{
	char q[LOADER_QUOTE_BUF];
	const char *kw = pattern ? "pattern" : "topic";
	const char *w, *filter;
	size_t wn, flen;
	uint8_t access = ROOST_ACL_READ | ROOST_ACL_WRITE;

	next_word(&s, &n, &w, &wn);
	if (wn == 0) {
		loader_error(st, line, "%s: missing topic filter", kw);
		return;
	}
	if (n == 0) {
		/* One word: it is the filter, and the access is readwrite. */
		filter = w;
		flen = wn;
	} else {
		if (word_is(w, wn, "read"))
			access = ROOST_ACL_READ;
		else if (word_is(w, wn, "write"))
			access = ROOST_ACL_WRITE;
		else if (word_is(w, wn, "readwrite"))
			access = ROOST_ACL_READ | ROOST_ACL_WRITE;
		else if (word_is(w, wn, "deny"))
			access = 0;
		else {
			loader_error(st, line, "%s: unknown access '%s' (expected read, write, readwrite or deny)", kw,
			          loader_quote(q, sizeof q, w, wn));
			return;
		}
		filter = s;
		flen = n;
	}
	if (flen > ROOST_ACL_MAX_TOPIC) {
		loader_error(st, line, "%s: topic filter longer than %d bytes", kw, ROOST_ACL_MAX_TOPIC);
		return;
	}
	if (!roost_topic_filter_valid((const uint8_t *)filter, flen)) {
		loader_error(st, line,
		          "%s: invalid topic filter '%s' ('+' and '#' must fill a whole level, '#' only last; "
		          "valid UTF-8 without NUL)",
		          kw, loader_quote(q, sizeof q, filter, flen));
		return;
	}

	entry e = {.len = flen, .access = access};
	if (!(e.filter = roost_strndup(filter, flen))) {
		st->fatal = ROOST_ERR_NOMEM;
		return;
	}
	if (pattern)
		scan_subst(&e);
	list *l = pattern ? (access ? &acl->pattern_grant : &acl->pattern_deny) : (access ? &cur->grant : &cur->deny);
	if (list_add(l, &e) != 0) {
		roost_free(e.filter);
		st->fatal = ROOST_ERR_NOMEM;
		return;
	}
	acl->count++;
}

/* "user NAME": the block that later topic lines go to (created on first use). */
static block *parse_user(load_state *st, roost_acl *acl, int line, const char *s, size_t n)
{
	block *b;

	trim(&s, &n);
	if (n == 0) {
		loader_error(st, line, "user: missing username");
		return NULL;
	}
	if (memchr(s, '\0', n)) {
		loader_error(st, line, "user: username contains a NUL byte");
		return NULL;
	}
	HASH_FIND(hh, acl->users, s, n, b);
	if (b)
		return b;
	b = roost_calloc(1, sizeof *b);
	if (!b || !(b->username = roost_strndup(s, n))) {
		roost_free(b);
		st->fatal = ROOST_ERR_NOMEM;
		return NULL;
	}
	roost_uthash_oom_flag = 0;
	HASH_ADD_KEYPTR(hh, acl->users, b->username, n, b);
	if (roost_uthash_oom_flag) {
		roost_free(b->username);
		roost_free(b);
		st->fatal = ROOST_ERR_NOMEM;
		return NULL;
	}
	return b;
}

roost_err roost_acl_load_string(const char *name, const char *text, size_t len, roost_acl **out,
                                roost_config_errors *errs)
{
	load_state st = {.name = name ? name : "acl_file", .errs = errs};
	char q[LOADER_QUOTE_BUF];

	assert(out && errs);
	*out = NULL;
	errs->items = NULL;
	errs->count = 0;
	if (!text && len > 0)
		return ROOST_ERR_INVALID;
	roost_acl *acl = roost_calloc(1, sizeof *acl);
	if (!acl)
		return ROOST_ERR_NOMEM;
	block *cur = &acl->anon;

	int line = 0;
	for (size_t pos = 0; pos < len && !st.fatal;) {
		const char *s = text + pos;
		const char *nl = memchr(s, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - s) : len - pos;
		pos += n + (nl ? 1 : 0);
		line++;
		trim(&s, &n);
		if (n == 0 || s[0] == '#')
			continue;
		const char *kw;
		size_t kwn;
		next_word(&s, &n, &kw, &kwn);
		if (word_is(kw, kwn, "topic") || word_is(kw, kwn, "pattern")) {
			parse_rule(&st, acl, cur, kw[0] == 'p', line, s, n);
		} else if (word_is(kw, kwn, "user")) {
			block *b = parse_user(&st, acl, line, s, n);
			if (b)
				cur = b;
		} else {
			loader_error(&st, line, "unknown keyword '%s' (expected topic, pattern or user)",
			          loader_quote(q, sizeof q, kw, kwn));
		}
	}
	if (st.fatal || errs->count > 0) {
		roost_acl_free(acl);
		return st.fatal ? st.fatal : ROOST_ERR_CONFIG;
	}
	*out = acl;
	return ROOST_OK;
}


roost_err roost_acl_load_file(const char *path, roost_acl **out, roost_config_errors *errs)
{
	char *text = NULL;
	size_t len = 0;
	int e;

	assert(path && out && errs);
	*out = NULL;
	errs->items = NULL;
	errs->count = 0;
	roost_err err = loader_read_all(path, &text, &len, &e);
	if (err == ROOST_ERR_IO) {
		char msg[512];
		snprintf(msg, sizeof msg, "cannot read acl file: %s", strerror(e));
		if (roost_config_errors_add(errs, path, 0, msg) != 0)
			return ROOST_ERR_NOMEM;
	}
	if (err)
		return err;
	err = roost_acl_load_string(path, text, len, out, errs);
	roost_free(text);
	return err;
}

static void block_cleanup(block *b)
{
	list_cleanup(&b->deny);
	list_cleanup(&b->grant);
	roost_free(b->username);
}

void roost_acl_free(roost_acl *acl)
{
	block *b, *tmp;

	if (!acl)
		return;
	HASH_ITER(hh, acl->users, b, tmp) {
		HASH_DEL(acl->users, b);
		block_cleanup(b);
		roost_free(b);
	}
	block_cleanup(&acl->anon);
	list_cleanup(&acl->pattern_deny);
	list_cleanup(&acl->pattern_grant);
	roost_free(acl);
}

size_t roost_acl_count(const roost_acl *acl)
{
	return acl ? acl->count : 0;
}
