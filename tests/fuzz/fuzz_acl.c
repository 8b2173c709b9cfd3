/*
 * fuzz_acl.c — libFuzzer target for the acl_file loader and decisions.
 *
 * Zero setup. Input: ACL text, then optionally NUL, client id, NUL, a topic
 * name, NUL, a topic filter (missing parts are empty). Besides the
 * sanitizers' own checks it asserts, aborting on any violation:
 *   - the loader's contract: success means an ACL and no errors; failure
 *     means no ACL and at least one error, each on a line of the input;
 *   - for any loaded ACL, subscribing to a filter without wildcards is
 *     allowed exactly when reading that topic is (one matching rule);
 *   - differential against roost_topic_matches(), the reference matcher:
 *     "topic read F" grants reading name N to an anonymous client exactly
 *     when F matches N, and "pattern read F" exactly when F with each whole
 *     "%c"/"%u" level replaced by the client id / username matches N — and
 *     never when that id holds '+', '#' or '/'.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "roost/acl.h"
#include "roost/codec.h"
#include "roost/topic.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define USER "u"

static size_t count_lines(const char *s, size_t n)
{
	size_t lines = n > 0 && s[n - 1] != '\n';
	for (size_t i = 0; i < n; i++)
		lines += s[i] == '\n';
	return lines;
}

static roost_acl *load(const char *text, size_t len)
{
	static FILE *devnull;
	roost_acl *acl = NULL;
	roost_config_errors errs;

	if (!devnull)
		devnull = fopen("/dev/null", "w");
	roost_err err = roost_acl_load_string("fuzz", text, len, &acl, &errs);
	if (err == ROOST_OK) {
		if (!acl || errs.count != 0)
			abort();
	} else {
		if (acl || (err == ROOST_ERR_CONFIG && errs.count == 0))
			abort();
		for (size_t i = 0; i < errs.count; i++)
			if (errs.items[i].line < 1 || (size_t)errs.items[i].line > count_lines(text, len))
				abort();
		if (devnull)
			roost_config_errors_print(&errs, devnull);
	}
	roost_config_errors_cleanup(&errs);
	return acl;
}

/* Next NUL-separated part of the input (empty when exhausted). */
static const char *part(const char **p, const char *end, size_t *n)
{
	const char *s = *p;
	const char *z = s < end ? memchr(s, '\0', (size_t)(end - s)) : NULL;
	*n = (size_t)((z ? z : end) - s);
	*p = z ? z + 1 : end;
	return s;
}

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' || c == '\n';
}

/* F with whole "%c"/"%u" levels substituted; NULL if a dangerous id is used. */
static char *substitute(const char *f, size_t n, const char *cid, size_t *out_len)
{
	size_t cap = n * (strlen(cid) + 2) + 2, o = 0;
	char *out = malloc(cap);
	bool bad_cid = strpbrk(cid, "+#/") != NULL;

	for (size_t s = 0; s <= n;) {
		const char *slash = memchr(f + s, '/', n - s);
		size_t e = slash ? (size_t)(slash - f) : n;
		if (e - s == 2 && f[s] == '%' && (f[s + 1] == 'c' || f[s + 1] == 'u')) {
			const char *v = f[s + 1] == 'c' ? cid : USER;
			if (f[s + 1] == 'c' && bad_cid) {
				free(out);
				return NULL;
			}
			memcpy(out + o, v, strlen(v));
			o += strlen(v);
		} else {
			memcpy(out + o, f + s, e - s);
			o += e - s;
		}
		if (e == n)
			break;
		out[o++] = '/';
		s = e + 1;
	}
	*out_len = o;
	return out;
}

static void differential(const char *cid, const char *name, size_t nn, const char *f, size_t fn)
{
	if (fn == 0 || fn > 512 || blank(f[0]) || blank(f[fn - 1]) || memchr(f, '\n', fn) ||
	    !roost_topic_filter_valid((const uint8_t *)f, fn) || !roost_topic_name_valid((const uint8_t *)name, nn))
		return;
	char text[600];
	snprintf(text, sizeof text, "topic read %.*s\n", (int)fn, f);
	roost_acl *acl = load(text, strlen(text));
	if (!acl)
		abort();
	if (roost_acl_check(acl, cid, NULL, name, nn, ROOST_ACL_READ) != roost_topic_matches(f, fn, name, nn))
		abort();
	roost_acl_free(acl);

	snprintf(text, sizeof text, "pattern read %.*s\n", (int)fn, f);
	acl = load(text, strlen(text));
	if (!acl)
		abort();
	size_t sn = 0;
	char *sub = substitute(f, fn, cid, &sn);
	bool want = sub && roost_topic_matches(sub, sn, name, nn);
	if (roost_acl_check(acl, cid, USER, name, nn, ROOST_ACL_READ) != want)
		abort();
	free(sub);
	roost_acl_free(acl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	size_t an, cn, nn, fn;
	const char *acl_text = part(&p, end, &an);
	const char *c = part(&p, end, &cn);
	const char *name = part(&p, end, &nn);
	const char *filter = part(&p, end, &fn);
	char *cid = strndup(c, cn);

	roost_acl *acl = load(acl_text, an);
	if (acl) {
		const char *users[] = {NULL, USER, cid};
		for (size_t u = 0; u < 3; u++) {
			for (int access = ROOST_ACL_READ; access <= ROOST_ACL_SUBSCRIBE; access <<= 1) {
				roost_acl_check(acl, cid, users[u], name, nn, access);
				roost_acl_check(acl, cid, users[u], filter, fn, access);
			}
			if (fn > 0 && !memchr(filter, '+', fn) && !memchr(filter, '#', fn) &&
			    roost_acl_check(acl, cid, users[u], filter, fn, ROOST_ACL_SUBSCRIBE) !=
			            roost_acl_check(acl, cid, users[u], filter, fn, ROOST_ACL_READ))
				abort();
		}
		roost_acl_free(acl);
	}
	differential(cid, name, nn, filter, fn);
	free(cid);
	return 0;
}
