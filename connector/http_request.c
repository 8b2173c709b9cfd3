/* http_request.c — route table, request validation, event-stream encoding. */
#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "roost/alloc.h"
#include "roost/codec.h"

#include "http_request.h"

static void fail(roost_http_error *err, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail(roost_http_error *err, int status, const char *fmt, ...)
{
	err->status = status;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof err->message, fmt, ap);
	va_end(ap);
}

/* ---- route table ---------------------------------------------------------- */

typedef struct route {
	struct route *next;
	char *method;
	char *path;      /* a prefix route's literal part, without the placeholder */
	size_t path_len;
	bool prefix;
	roost_http_handler fn;
	void *ctx;
} route;

struct roost_http_routes {
	route *head;
};

roost_http_routes *roost_http_routes_new(void)
{
	return roost_calloc(1, sizeof(roost_http_routes));
}

static void route_free(route *rt)
{
	roost_free(rt->method);
	roost_free(rt->path);
	roost_free(rt);
}

void roost_http_routes_free(roost_http_routes *r)
{
	if (!r)
		return;
	for (route *rt = r->head, *n; rt; rt = n) {
		n = rt->next;
		route_free(rt);
	}
	roost_free(r);
}

static bool method_valid(const char *m)
{
	if (!m || !*m || strlen(m) > 16)
		return false;
	for (; *m; m++)
		if (*m < 'A' || *m > 'Z')
			return false;
	return true;
}

/*
 * "/x" (exact) or "/x/{name}" (a placeholder: a prefix route). The
 * placeholder is one whole last segment: '{' right after a '/', a non-empty
 * name of [a-z0-9_], '}' at the end. *prefix_len receives the length of the
 * part that is matched literally.
 */
static bool path_parse(const char *p, bool *prefix, size_t *prefix_len)
{
	if (!p || p[0] != '/')
		return false;
	size_t n = strlen(p);
	const char *open = strchr(p, '{');
	*prefix = open != NULL;
	*prefix_len = open ? (size_t)(open - p) : n;
	if (!open)
		return strchr(p, '}') == NULL;
	if (open[-1] != '/' || memchr(p, '}', (size_t)(open - p)) || n < (size_t)(open - p) + 3 ||
	    p[n - 1] != '}')
		return false;
	for (const char *c = open + 1; c < p + n - 1; c++)
		if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '_'))
			return false;
	return true;
}

/* Two placeholder routes with the same prefix are the same route, whatever
 * their placeholders are called. */
static route *route_find(const roost_http_routes *r, const char *method, const char *path,
                         route ***link)
{
	bool prefix;
	size_t len;
	if (!path_parse(path, &prefix, &len))
		return NULL;
	for (route **pp = (route **)&r->head; *pp; pp = &(*pp)->next) {
		route *rt = *pp;
		if (rt->prefix == prefix && rt->path_len == len && strncmp(rt->path, path, len) == 0 &&
		    strcmp(rt->method, method) == 0) {
			if (link)
				*link = pp;
			return rt;
		}
	}
	return NULL;
}

roost_err roost_http_routes_add(roost_http_routes *r, const char *method, const char *path,
                                roost_http_handler fn, void *ctx)
{
	bool prefix;
	size_t len;
	if (!method_valid(method) || !path_parse(path, &prefix, &len) || !fn)
		return ROOST_ERR_INVALID;
	if (route_find(r, method, path, NULL))
		return ROOST_ERR_EXISTS;
	route *rt = roost_calloc(1, sizeof *rt);
	if (!rt)
		return ROOST_ERR_NOMEM;
	rt->path_len = len;
	rt->method = roost_strdup(method);
	rt->path = roost_strndup(path, rt->path_len);
	if (!rt->method || !rt->path) {
		route_free(rt);
		return ROOST_ERR_NOMEM;
	}
	rt->prefix = prefix;
	rt->fn = fn;
	rt->ctx = ctx;
	rt->next = r->head;
	r->head = rt;
	return ROOST_OK;
}

roost_err roost_http_routes_remove(roost_http_routes *r, const char *method, const char *path)
{
	route **link;
	route *rt = route_find(r, method, path, &link);
	if (!rt)
		return ROOST_ERR_NOT_FOUND;
	*link = rt->next;
	route_free(rt);
	return ROOST_OK;
}

/* How well rt matches path: -1 not at all, else higher is more specific. */
static long route_score(const route *rt, const char *path)
{
	if (!rt->prefix)
		return strcmp(rt->path, path) == 0 ? LONG_MAX : -1;
	return strncmp(rt->path, path, rt->path_len) == 0 ? (long)rt->path_len : -1;
}

static void allow_append(char *allow, size_t size, const char *method)
{
	if (!size)
		return;
	size_t n = strlen(allow);
	/* Each method once: "GET, POST". */
	for (const char *p = allow; (p = strstr(p, method)); p += strlen(method)) {
		bool start = p == allow || p[-1] == ' ';
		char end = p[strlen(method)];
		if (start && (end == ',' || end == '\0'))
			return;
	}
	snprintf(allow + n, size - n, "%s%s", n ? ", " : "", method);
}

roost_http_match roost_http_routes_match(const roost_http_routes *r, const char *method,
                                         const char *path, roost_http_handler *fn, void **ctx,
                                         const char **rest, char *allow, size_t allow_size)
{
	const route *best = NULL;
	long best_score = -1;
	bool path_known = false;
	if (allow_size)
		allow[0] = '\0';
	for (const route *rt = r->head; rt; rt = rt->next) {
		long s = route_score(rt, path);
		if (s < 0)
			continue;
		path_known = true;
		if (strcmp(rt->method, method) != 0) {
			allow_append(allow, allow_size, rt->method);
			continue;
		}
		if (s > best_score) {
			best = rt;
			best_score = s;
		}
	}
	if (!best)
		return path_known ? ROOST_HTTP_MATCH_NO_METHOD : ROOST_HTTP_MATCH_NO_PATH;
	*fn = best->fn;
	*ctx = best->ctx;
	*rest = best->prefix ? path + best->path_len : path + strlen(path);
	return ROOST_HTTP_MATCH_FOUND;
}

/* ---- authorisation -------------------------------------------------------- */

bool roost_http_addr_is_loopback(const char *addr)
{
	struct in_addr a4;
	struct in6_addr a6;
	if (!addr)
		return false;
	if (inet_pton(AF_INET, addr, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, addr, &a6) == 1) {
		static const uint8_t loop6[16] = {[15] = 1};
		static const uint8_t v4mapped[12] = {[10] = 0xff, [11] = 0xff};
		if (memcmp(a6.s6_addr, loop6, 16) == 0)
			return true;
		return memcmp(a6.s6_addr, v4mapped, 12) == 0 && a6.s6_addr[12] == 127;
	}
	return false;
}

/* The Authorization value v (n bytes, not NUL-terminated) carries token. */
static bool auth_ok_n(const char *v, size_t n, const char *token)
{
	if (!v || !token || !*token)
		return false;
	if (n < 7 || strncasecmp(v, "Bearer ", 7) != 0)
		return false;
	size_t i = 7;
	while (i < n && v[i] == ' ')
		i++;
	size_t tlen = strlen(token);
	/* The length is not secret (tokens are long and random); the bytes are. */
	if (n - i != tlen)
		return false;
	return CRYPTO_memcmp(v + i, token, tlen) == 0;
}

bool roost_http_auth_ok(const char *authorization, const char *token)
{
	return authorization && auth_ok_n(authorization, strlen(authorization), token);
}

/* ---- request heads ---------------------------------------------------------- */

size_t roost_http_head_end(const char *buf, size_t len, size_t *scan)
{
	for (size_t i = *scan; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		/* An empty line: LF right after the previous LF (or the start),
		 * optionally with a CR between, as evhttp reads lines. */
		size_t start = i > 0 && buf[i - 1] == '\r' ? i - 1 : i;
		if (start == 0 || buf[start - 1] == '\n')
			return i + 1;
	}
	*scan = len;
	return 0;
}

/* The next line of head at *pos without its LF or CRLF; false at the end. */
static bool head_line(const char *head, size_t len, size_t *pos, const char **line, size_t *n)
{
	if (*pos >= len)
		return false;
	const char *s = head + *pos;
	const char *lf = memchr(s, '\n', len - *pos);
	size_t end = lf ? (size_t)(lf - s) : len - *pos;
	*pos += end + (lf != NULL);
	if (end && s[end - 1] == '\r')
		end--;
	*line = s;
	*n = end;
	return true;
}

static bool is_tchar(unsigned char c)
{
	return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Printable text and HT only: a CR inside a line, a NUL or another control
 * character is refused rather than read differently by evhttp. */
static bool line_text_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

/* evhttp reads a request body for these methods only (http.c,
 * evhttp_method_may_have_body), and knows no others. */
static const struct {
	const char *name;
	bool body;
} methods[] = {
	{"GET", true}, {"POST", true}, {"PUT", true}, {"PATCH", true}, {"DELETE", true},
	{"OPTIONS", true}, {"CONNECT", true}, {"HEAD", false}, {"TRACE", false},
};

static roost_err request_line(const char *l, size_t n, roost_http_head *out, bool *may_have_body)
{
	const char *sp1 = memchr(l, ' ', n);
	const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(l + n - sp1 - 1)) : NULL;
	if (!sp1 || !sp2 || sp2 == sp1 + 1 || memchr(sp2 + 1, ' ', (size_t)(l + n - sp2 - 1)) ||
	    !line_text_ok(l, n) || memchr(l, '\t', n)) {
		fail(&out->err, 400, "Bad request: malformed request line");
		return ROOST_ERR_MALFORMED;
	}
	size_t ml = (size_t)(sp1 - l), vl = (size_t)(l + n - sp2 - 1);
	if (vl != 8 || (memcmp(sp2 + 1, "HTTP/1.1", 8) != 0 && memcmp(sp2 + 1, "HTTP/1.0", 8) != 0)) {
		fail(&out->err, 505, "HTTP version not supported (1.0 and 1.1 are)");
		return ROOST_ERR_UNSUPPORTED;
	}
	for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
		if (strlen(methods[i].name) == ml && memcmp(l, methods[i].name, ml) == 0) {
			*may_have_body = methods[i].body;
			out->target_off = (size_t)(sp1 + 1 - l);
			out->target_len = (size_t)(sp2 - sp1 - 1);
			return ROOST_OK;
		}
	}
	fail(&out->err, 501, "Method not implemented");
	return ROOST_ERR_UNSUPPORTED;
}

/* The headers the gate decides on, first occurrences (as evhttp_find_header). */
typedef struct head_fields {
	const char *auth;
	size_t auth_len;
	const char *length;
	size_t length_len;
	bool has_length, has_te, has_expect, expect_continue;
} head_fields;

static bool name_is(const char *name, size_t n, const char *want)
{
	return strlen(want) == n && strncasecmp(name, want, n) == 0;
}

static roost_err header_line(const char *l, size_t n, head_fields *f, roost_http_error *err)
{
	const char *colon = memchr(l, ':', n);
	size_t nl = colon ? (size_t)(colon - l) : 0;
	bool ok = colon && nl > 0 && line_text_ok(l, n);
	for (size_t i = 0; ok && i < nl; i++)
		ok = is_tchar((unsigned char)l[i]);
	if (!ok) {
		/* Also an obs-fold continuation (a line starting with white space). */
		fail(err, 400, "Bad request: malformed header line");
		return ROOST_ERR_MALFORMED;
	}
	/* The value as evhttp keeps it: leading spaces and trailing white space off. */
	const char *v = colon + 1, *e = l + n;
	while (v < e && *v == ' ')
		v++;
	while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	size_t vl = (size_t)(e - v);
	if (name_is(l, nl, "Content-Length")) {
		if (f->has_length) {
			fail(err, 400, "Bad request: more than one Content-Length");
			return ROOST_ERR_MALFORMED;
		}
		f->has_length = true;
		f->length = v;
		f->length_len = vl;
	} else if (name_is(l, nl, "Transfer-Encoding")) {
		f->has_te = true;
	} else if (name_is(l, nl, "Authorization") && !f->auth) {
		f->auth = v;
		f->auth_len = vl;
	} else if (name_is(l, nl, "Expect") && !f->has_expect) {
		f->has_expect = true;
		f->expect_continue = vl == 12 && strncasecmp(v, "100-continue", 12) == 0;
	}
	return ROOST_OK;
}

/* Content-Length: decimal digits only, so that evhttp's strtoll reads the
 * same number (no sign, no white space inside). *len saturates above max. */
static bool body_length(const head_fields *f, uint64_t max, uint64_t *len)
{
	*len = 0;
	if (!f->has_length)
		return true;
	if (f->length_len == 0)
		return false;
	for (size_t i = 0; i < f->length_len; i++) {
		if (!isdigit((unsigned char)f->length[i]))
			return false;
		if (*len <= max) /* past max it can only grow: stop counting */
			*len = *len * 10 + (uint64_t)(f->length[i] - '0');
	}
	return true;
}

/* The method name of a head whose request line parsed (for messages). */
static int method_len(const roost_http_head *h) { return (int)h->target_off - 1; }

void roost_http_head_check(const char *head, size_t len, const char *token, size_t max_body,
                           roost_http_head *out)
{
	memset(out, 0, sizeof *out);
	size_t pos = 0, n;
	const char *l;
	bool may_have_body = false;
	head_fields f = {0};
	if (!head_line(head, len, &pos, &l, &n) || n == 0) {
		fail(&out->err, 400, "Bad request: malformed request line");
		return;
	}
	/* The request line and the header lines must be readable before
	 * anything is judged; the token next, so that no other answer tells a
	 * stranger anything. */
	roost_err rl = request_line(l, n, out, &may_have_body);
	if (rl == ROOST_ERR_MALFORMED)
		return;
	roost_http_error line_err = out->err;
	while (head_line(head, len, &pos, &l, &n) && n > 0)
		if (header_line(l, n, &f, &out->err) != ROOST_OK)
			return;
	bool length_ok = body_length(&f, max_body, &out->body_len);
	/* Framed: where this request ends is known, so its body can be skipped
	 * and the connection kept. */
	out->framed = length_ok && !f.has_te && (may_have_body || out->body_len == 0);
	if (token && !auth_ok_n(f.auth, f.auth_len, token)) {
		fail(&out->err, 401, "Unauthorized");
	} else if (rl != ROOST_OK) {
		out->err = line_err;
	} else if (f.has_te) {
		fail(&out->err, 411, "Length required: send the body with a Content-Length "
		                     "(Transfer-Encoding is not supported)");
	} else if (!length_ok) {
		fail(&out->err, 400, "Bad request: invalid Content-Length");
	} else if (!may_have_body && out->body_len) {
		fail(&out->err, 400, "Bad request: a %.*s request has no body", method_len(out), head);
	} else if (out->body_len > max_body) {
		fail(&out->err, 413, "Request body too large (limit %zu bytes)", max_body);
	} else if (f.has_expect && !f.expect_continue) {
		fail(&out->err, 417, "Expectation failed: only Expect: 100-continue is supported");
	}
}

/* ---- request bodies -------------------------------------------------------- */

static bool all_space(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return false;
	return true;
}

/*
 * Does the JSON text spell a NUL character ("\u0000")? cJSON ends its strings
 * there, silently cutting a key or a value short ("topic\u0000x" would become
 * a second "topic"). Outside strings a backslash is invalid JSON anyway.
 */
static bool has_nul_escape(const char *s, size_t len)
{
	for (size_t i = 0; i + 5 < len; i++) {
		if (s[i] != '\\')
			continue;
		if (memcmp(s + i + 1, "u0000", 5) == 0)
			return true;
		i++; /* the escaped character */
	}
	return false;
}

static int key_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * The first key that some object in the tree under item has twice, or NULL
 * (*oom set when there was no memory to look). cJSON keeps both and
 * answers lookups with the first, so {"topic": "a", "topic": "$SYS/x"}
 * would mean one thing to us and another to whoever reads it next. Sorting
 * the keys makes an object of n keys cost n log n, not n^2. Recursion is
 * bounded by cJSON's nesting limit (CJSON_NESTING_LIMIT, 1000).
 */
static const char *duplicate_key(const cJSON *item, bool *oom)
{
	for (const cJSON *c = item->child; c; c = c->next) {
		const char *d = duplicate_key(c, oom);
		if (d || *oom)
			return d;
	}
	if (!cJSON_IsObject(item))
		return NULL;
	size_t n = 0;
	for (const cJSON *c = item->child; c; c = c->next)
		n++;
	if (n < 2)
		return NULL;
	const char **keys = roost_malloc(n * sizeof *keys);
	if (!keys) {
		*oom = true;
		return NULL;
	}
	n = 0;
	for (const cJSON *c = item->child; c; c = c->next)
		keys[n++] = c->string;
	qsort(keys, n, sizeof *keys, key_cmp);
	const char *dup = NULL;
	for (size_t i = 1; i < n && !dup; i++)
		if (strcmp(keys[i - 1], keys[i]) == 0)
			dup = keys[i];
	roost_free(keys);
	return dup;
}

cJSON *roost_http_json_object_parse(const char *body, size_t len, const char *what,
                                    roost_http_error *err)
{
	if (all_space(body, len)) {
		cJSON *empty = cJSON_CreateObject();
		if (!empty)
			fail(err, 500, "out of memory");
		return empty;
	}
	/* A NUL inside the body would end cJSON's parse early and hide garbage. */
	if (memchr(body, '\0', len)) {
		fail(err, 400, "%s should be valid JSON.", what);
		return NULL;
	}
	/* cJSON wants NUL-terminated text; the body is a view into a buffer. */
	char *text = roost_strndup(body, len);
	if (!text) {
		fail(err, 500, "out of memory");
		return NULL;
	}
	cJSON *root = cJSON_ParseWithLengthOpts(text, len + 1, NULL, 1);
	roost_free(text);
	if (!root) {
		fail(err, 400, "%s should be valid JSON.", what);
		return NULL;
	}
	if (has_nul_escape(body, len)) {
		cJSON_Delete(root);
		fail(err, 400, "%s should not contain \\u0000 (NUL characters are not supported).", what);
		return NULL;
	}
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		fail(err, 400, "%s should be a JSON object.", what);
		return NULL;
	}
	bool oom = false;
	const char *dup = duplicate_key(root, &oom);
	if (dup || oom) {
		if (oom)
			fail(err, 500, "out of memory");
		else
			fail(err, 400, "%s has the key '%.100s' more than once.", what, dup);
		cJSON_Delete(root);
		return NULL;
	}
	return root;
}

roost_err roost_http_json_string(const cJSON *item, const char *key, char **out,
                                 roost_http_error *err)
{
	if (cJSON_IsString(item)) {
		*out = roost_strdup(item->valuestring);
	} else if (cJSON_IsNumber(item) && isfinite(item->valuedouble)) {
		char *txt = cJSON_PrintUnformatted(item);
		*out = txt ? roost_strdup(txt) : NULL;
		cJSON_free(txt);
	} else {
		fail(err, 400, "%s must be a string", key);
		return ROOST_ERR_INVALID;
	}
	if (!*out) {
		fail(err, 500, "out of memory");
		return ROOST_ERR_NOMEM;
	}
	return ROOST_OK;
}

/* A growing property block (its bytes as roost_prop_encode writes them). */
typedef struct prop_buf {
	uint8_t *p;
	size_t len, cap;
} prop_buf;

static bool prop_add(prop_buf *b, const roost_prop *prop)
{
	size_t need = roost_prop_encode(NULL, 0, prop);
	if (b->len + need > b->cap) {
		size_t cap = (b->len + need) * 2;
		uint8_t *n = roost_realloc(b->p, cap);
		if (!n)
			return false;
		b->p = n;
		b->cap = cap;
	}
	b->len += roost_prop_encode(b->p + b->len, b->cap - b->len, prop);
	return true;
}

/* A string property value: UTF-8 (cJSON guarantees it) without U+0000, <= 65535 bytes. */
static bool prop_string(const cJSON *v, roost_bytes *out)
{
	if (!cJSON_IsString(v))
		return false;
	size_t n = strlen(v->valuestring);
	*out = (roost_bytes){(const uint8_t *)v->valuestring, n};
	return n <= 65535 && roost_utf8_valid(out->ptr, n);
}

static roost_err bad_prop(roost_http_error *err, const char *what)
{
	fail(err, 400, "properties: %s", what);
	return ROOST_ERR_INVALID;
}

static roost_err user_props(const cJSON *list, prop_buf *b, roost_http_error *err)
{
	const cJSON *pair;
	if (!cJSON_IsArray(list))
		return bad_prop(err, "user_properties must be a list of [key, value] pairs");
	cJSON_ArrayForEach(pair, list) {
		roost_prop up = {.id = ROOST_PROP_USER_PROPERTY};
		if (!cJSON_IsArray(pair) || cJSON_GetArraySize(pair) != 2 ||
		    !prop_string(cJSON_GetArrayItem(pair, 0), &up.str) || !prop_string(cJSON_GetArrayItem(pair, 1), &up.str2))
			return bad_prop(err, "user_properties must be a list of [key, value] pairs of strings");
		if (!prop_add(b, &up))
			return ROOST_ERR_NOMEM;
	}
	return ROOST_OK;
}

/* correlation_data: base64 of the binary value. */
static roost_err correlation(const cJSON *v, prop_buf *b, roost_http_error *err)
{
	size_t n = cJSON_IsString(v) ? strlen(v->valuestring) : 1;
	if (!cJSON_IsString(v) || n % 4 || n / 4 * 3 > 65535)
		return bad_prop(err, "correlation_data must be base64 of at most 65535 bytes");
	uint8_t *bin = roost_malloc(n / 4 * 3 + 1);
	if (!bin)
		return ROOST_ERR_NOMEM;
	int len = EVP_DecodeBlock(bin, (const unsigned char *)v->valuestring, (int)n);
	roost_err e = ROOST_OK;
	if (len < 0) {
		e = bad_prop(err, "correlation_data must be base64 of at most 65535 bytes");
	} else {
		/* EVP_DecodeBlock counts the '=' padding as zero bytes. */
		size_t real = (size_t)len - (n && v->valuestring[n - 1] == '=') - (n > 1 && v->valuestring[n - 2] == '=');
		roost_prop cd = {.id = ROOST_PROP_CORRELATION_DATA, .str = {bin, real}};
		if (!prop_add(b, &cd))
			e = ROOST_ERR_NOMEM;
	}
	roost_free(bin);
	return e;
}

static roost_err publish_props(const cJSON *obj, prop_buf *b, roost_http_error *err)
{
	if (!cJSON_IsObject(obj))
		return bad_prop(err, "must be an object");
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "message_expiry_interval");
	if (v) {
		/* First: a message keeps its expiry in front of the shared properties. */
		if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 4294967295.0 ||
		    v->valuedouble != floor(v->valuedouble))
			return bad_prop(err, "message_expiry_interval must be an integer 0..4294967295 (seconds)");
		if (!prop_add(b, &(roost_prop){.id = ROOST_PROP_MESSAGE_EXPIRY, .u32 = (uint32_t)v->valuedouble}))
			return ROOST_ERR_NOMEM;
	}
	const cJSON *it;
	cJSON_ArrayForEach(it, obj) {
		roost_prop prop = {0};
		roost_err e = ROOST_OK;
		if (!strcmp(it->string, "message_expiry_interval"))
			continue;
		if (!strcmp(it->string, "content_type")) {
			prop.id = ROOST_PROP_CONTENT_TYPE;
			if (!prop_string(it, &prop.str))
				return bad_prop(err, "content_type must be a string");
		} else if (!strcmp(it->string, "response_topic")) {
			prop.id = ROOST_PROP_RESPONSE_TOPIC;
			/* [MQTT-3.3.2-14] a topic name: no wildcards. */
			if (!prop_string(it, &prop.str) || !roost_topic_name_valid(prop.str.ptr, prop.str.len))
				return bad_prop(err, "response_topic must be a topic name (no + or #)");
		} else if (!strcmp(it->string, "correlation_data")) {
			e = correlation(it, b, err);
		} else if (!strcmp(it->string, "user_properties")) {
			e = user_props(it, b, err);
		} else {
			fail(err, 400, "properties: extra key not allowed: '%.100s' (expected content_type, response_topic, "
			     "correlation_data, message_expiry_interval, user_properties)", it->string);
			return ROOST_ERR_INVALID;
		}
		if (e)
			return e;
		if (prop.id && !prop_add(b, &prop))
			return ROOST_ERR_NOMEM;
	}
	return ROOST_OK;
}

static roost_err publish_fields(const cJSON *root, roost_http_publish *out, roost_http_error *err)
{
	const cJSON *it;
	cJSON_ArrayForEach(it, root) {
		if (strcmp(it->string, "topic") && strcmp(it->string, "payload") &&
		    strcmp(it->string, "qos") && strcmp(it->string, "retain") && strcmp(it->string, "properties")) {
			fail(err, 400, "extra key not allowed: '%.100s' (expected topic, payload, qos, retain, properties)",
			     it->string);
			return ROOST_ERR_INVALID;
		}
	}
	const cJSON *topic = cJSON_GetObjectItemCaseSensitive(root, "topic");
	if (!topic) {
		fail(err, 400, "topic is required");
		return ROOST_ERR_INVALID;
	}
	if (!cJSON_IsString(topic)) {
		fail(err, 400, "topic must be a string");
		return ROOST_ERR_INVALID;
	}
	size_t tlen = strlen(topic->valuestring);
	/* [MQTT-4.7.3-1] non-empty, [MQTT-3.3.2-2] no wildcards, valid UTF-8. */
	if (tlen > 65535 || !roost_topic_name_valid((const uint8_t *)topic->valuestring, tlen)) {
		fail(err, 400, "topic is not a valid MQTT topic name "
		               "(non-empty UTF-8, no + or # wildcards, at most 65535 bytes)");
		return ROOST_ERR_INVALID;
	}
	/* Who may publish where ($ topics, the ACL, topic limits) is not
	 * decided here but by roost_broker_publish, as for every publisher;
	 * roost_http_publish_status maps its answer. */
	const cJSON *qos = cJSON_GetObjectItemCaseSensitive(root, "qos");
	if (qos) {
		double q = cJSON_IsNumber(qos) ? qos->valuedouble : -1;
		if (!(q == 0 || q == 1 || q == 2)) {
			fail(err, 400, "qos must be the integer 0, 1 or 2");
			return ROOST_ERR_INVALID;
		}
		out->qos = (uint8_t)q;
	}
	const cJSON *retain = cJSON_GetObjectItemCaseSensitive(root, "retain");
	if (retain) {
		if (!cJSON_IsBool(retain)) {
			fail(err, 400, "retain must be true or false");
			return ROOST_ERR_INVALID;
		}
		out->retain = cJSON_IsTrue(retain);
	}
	out->topic = roost_strdup(topic->valuestring);
	if (!out->topic) {
		fail(err, 500, "out of memory");
		return ROOST_ERR_NOMEM;
	}
	const cJSON *payload = cJSON_GetObjectItemCaseSensitive(root, "payload");
	roost_err e = payload ? roost_http_json_string(payload, "payload", &out->payload, err)
	                      : ((out->payload = roost_strdup("")) ? ROOST_OK : ROOST_ERR_NOMEM);
	if (e == ROOST_ERR_NOMEM)
		fail(err, 500, "out of memory");
	if (e)
		return e;
	out->payload_len = strlen(out->payload);
	const cJSON *props = cJSON_GetObjectItemCaseSensitive(root, "properties");
	if (props) {
		prop_buf b = {0};
		e = publish_props(props, &b, err);
		out->props = b.p;
		out->props_len = b.len;
		if (e == ROOST_ERR_NOMEM)
			fail(err, 500, "out of memory");
		return e;
	}
	return ROOST_OK;
}

roost_err roost_http_publish_parse(const char *body, size_t len, roost_http_publish *out,
                                   roost_http_error *err)
{
	memset(out, 0, sizeof *out);
	cJSON *root = roost_http_json_object_parse(body, len, "Data", err);
	if (!root)
		return err->status == 500 ? ROOST_ERR_NOMEM : ROOST_ERR_INVALID;
	roost_err e = publish_fields(root, out, err);
	cJSON_Delete(root);
	if (e)
		roost_http_publish_cleanup(out);
	return e;
}

void roost_http_publish_cleanup(roost_http_publish *p)
{
	roost_free(p->topic);
	roost_free(p->payload);
	roost_free(p->props);
	memset(p, 0, sizeof *p);
}

bool roost_http_event_type_valid(const char *type)
{
	size_t n = strlen(type);
	if (n == 0 || n > ROOST_HTTP_MAX_EVENT_TYPE)
		return false;
	for (const char *p = type; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("_.-", *p))
			return false;
	return true;
}

roost_err roost_http_event_parse(const char *type, const char *body, size_t len, char **data_json,
                                 roost_http_error *err)
{
	*data_json = NULL;
	if (!roost_http_event_type_valid(type)) {
		fail(err, 400, "invalid event type (1 to %d characters of A-Z a-z 0-9 _ . -)",
		     ROOST_HTTP_MAX_EVENT_TYPE);
		return ROOST_ERR_INVALID;
	}
	cJSON *root = roost_http_json_object_parse(body, len, "Event data", err);
	if (!root)
		return err->status == 500 ? ROOST_ERR_NOMEM : ROOST_ERR_INVALID;
	/* Re-printed compactly: listeners get one canonical line, no raw newlines. */
	char *txt = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	*data_json = txt ? roost_strdup(txt) : NULL;
	cJSON_free(txt);
	if (!*data_json) {
		fail(err, 500, "out of memory");
		return ROOST_ERR_NOMEM;
	}
	return ROOST_OK;
}

int roost_http_publish_status(roost_err e)
{
	switch (e) {
	case ROOST_OK: return 200;
	case ROOST_ERR_NOT_AUTHORIZED: return 403;
	case ROOST_ERR_BAD_TOPIC:
	case ROOST_ERR_TOO_LARGE:
	case ROOST_ERR_BAD_UTF8:
	case ROOST_ERR_INVALID: return 400;
	case ROOST_ERR_QUOTA: return 503;
	default: return 500;
	}
}

/* ---- the event stream ------------------------------------------------------ */

bool roost_http_restrict_match(const char *list, const char *type)
{
	if (!list || !*list)
		return true;
	size_t tlen = strlen(type);
	for (const char *p = list;;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		if (n == tlen && strncmp(p, type, n) == 0)
			return true;
		if (!comma)
			return false;
		p = comma + 1;
	}
}

char *roost_http_time_iso(uint64_t unix_us, char *buf)
{
	time_t secs = (time_t)(unix_us / 1000000u);
	struct tm tm;
	gmtime_r(&secs, &tm);
	size_t n = strftime(buf, ROOST_HTTP_TIME_LEN, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, ROOST_HTTP_TIME_LEN - n, ".%06u+00:00", (unsigned)(unix_us % 1000000u));
	return buf;
}

/* A JSON string literal for s (quotes included); roost_malloc'd. */
static char *json_quote(const char *s)
{
	cJSON *str = cJSON_CreateString(s);
	char *txt = str ? cJSON_PrintUnformatted(str) : NULL;
	cJSON_Delete(str);
	char *out = txt ? roost_strdup(txt) : NULL;
	cJSON_free(txt);
	return out;
}

char *roost_http_sse_event(const roost_event *ev, size_t *len)
{
	char when[ROOST_HTTP_TIME_LEN];
	roost_http_time_iso(ev->time_fired_ms * 1000u, when);
	char *type = json_quote(ev->type);
	char *origin = json_quote(ev->origin ? ev->origin : "LOCAL");
	const char *data = ev->data_json && *ev->data_json ? ev->data_json : "{}";
	char *out = NULL;
	if (type && origin) {
		size_t n = strlen(type) + strlen(origin) + strlen(data) + strlen(when) + 96;
		out = roost_malloc(n);
		if (out) {
			int w = snprintf(out, n,
			                 "data: {\"event_type\": %s, \"data\": %s, \"origin\": %s, "
			                 "\"time_fired\": \"%s\"}\n\n",
			                 type, data, origin, when);
			assert(w > 0 && (size_t)w < n);
			*len = (size_t)w;
			/* Raw CR/LF in JSON can only be white space: blank them so the
			 * event stays one "data:" line (the framing ends at "\n\n"). */
			for (char *p = out + 6; p < out + *len - 2; p++)
				if (*p == '\n' || *p == '\r')
					*p = ' ';
		}
	}
	roost_free(type);
	roost_free(origin);
	return out;
}
