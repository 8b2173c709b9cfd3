/*
 * fuzz_http.c — libFuzzer target for the HTTP API's pure half
 * (connector/http_request.c): route table, token check, loopback test,
 * publish and event request validation, event-stream encoding.
 *
 * Zero setup. Input: NUL-separated parts (missing ones are empty)
 *
 *   routes \0 method \0 path \0 authorization \0 token \0 address \0
 *   restrict-list \0 time-ms \0 body (the rest; it may hold NULs)
 *
 * routes is a list of lines "METHOD /path" (add) or "-METHOD /path"
 * (remove), applied after the server's built-in routes. The request
 * (method, path) is then matched; when it reaches the publish or event
 * route, body goes to that validator as the server would send it; and the
 * validators also run on their own (the event type is the path).
 *
 * Besides the sanitizers' own checks, every result is compared with a
 * model written from the documented contracts (http.h, http_request.h),
 * not from the code, aborting on any difference:
 *   - routes: add is INVALID / EXISTS / OK exactly as the path syntax and a
 *     naive list of the routes say, remove NOT_FOUND / OK likewise; match
 *     gives the most specific route (exact over placeholder, longer prefix
 *     over shorter), the right rest, 404 vs 405, and an Allow list holding
 *     each other method of that path exactly once; a short Allow buffer is
 *     never overrun and stays terminated;
 *   - roost_http_auth_ok: "Bearer <token>" (scheme in any case) and nothing
 *     else; roost_http_addr_is_loopback against inet_pton/inet_ntop;
 *     roost_http_restrict_match against a naive split;
 *   - publish: accepted exactly when the body is a JSON object with only
 *     topic/payload/qos/retain, a valid topic, a string or finite
 *     number payload, qos 0..2 and a boolean retain — and then with those
 *     values; refused with 400 and a message, the output zeroed. A body
 *     with a "\u0000" escape is refused: cJSON would cut the string there;
 *   - events: accepted exactly for a valid type and an empty or object
 *     body, data re-printed on one line and equal to the body's data;
 *   - SSE: "data: " + one JSON line + "\n\n" whose event_type, origin, data
 *     and time_fired are the event's;
 *   - request heads (the body read as one): the end is the first empty line,
 *     found the same fed at once or byte by byte; an admitted head has a
 *     three-part HTTP/1.x request line, carries the token in its first
 *     Authorization header, has no Transfer-Encoding and a framed body
 *     within the limit; a head without the token anywhere gets 400 or 401;
 *     a body object repeating a key is refused;
 *   - with every allocation from the Nth on failing (roost_alloc), each
 *     validator answers NOMEM / 500 and leaks nothing.
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "roost/alloc.h"
#include "roost/codec.h"

#include "http_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                 \
	do {                     \
		if (!(x))        \
			abort(); \
	} while (0)

#define MAX_ROUTES 48

/* ---- input ------------------------------------------------------------------ */

/* Next NUL-separated part, as a malloc'd C string (empty when exhausted). */
static char *part(const char **p, const char *end)
{
	const char *s = *p;
	const char *z = s < end ? memchr(s, '\0', (size_t)(end - s)) : NULL;
	size_t n = (size_t)((z ? z : end) - s);
	*p = z ? z + 1 : end;
	char *out = strndup(s, n);
	CHECK(out);
	return out;
}

/* ---- routes: the model -------------------------------------------------------- */

static void handler_a(void *ctx, struct evhttp_request *req, const char *rest)
{
	(void)ctx, (void)req, (void)rest;
}

static void handler_b(void *ctx, struct evhttp_request *req, const char *rest)
{
	(void)ctx, (void)req, (void)rest;
}

typedef struct model_route {
	char method[24];
	char *literal; /* the exact path, or a placeholder route's prefix */
	bool prefix;
	bool alive;
	roost_http_handler fn;
} model_route;

typedef struct model {
	model_route r[MAX_ROUTES];
	size_t n;
} model;

/* The documented syntax: 1..16 upper-case letters. */
static bool spec_method(const char *m)
{
	size_t n = strlen(m);
	if (n < 1 || n > 16)
		return false;
	for (size_t i = 0; i < n; i++)
		if (m[i] < 'A' || m[i] > 'Z')
			return false;
	return true;
}

/*
 * The documented path syntax: '/' then either no braces at all (exact), or
 * a brace-free prefix ending in '/' and one last segment "{name}", name of
 * [a-z0-9_]+ (placeholder). *lit_len: the part matched literally.
 */
static bool spec_path(const char *p, bool *prefix, size_t *lit_len)
{
	size_t n = strlen(p);
	if (n == 0 || p[0] != '/')
		return false;
	if (!strpbrk(p, "{}")) {
		*prefix = false;
		*lit_len = n;
		return true;
	}
	const char *slash = strrchr(p, '/');
	size_t lit = (size_t)(slash - p) + 1;
	for (size_t i = 0; i < lit; i++)
		if (p[i] == '{' || p[i] == '}')
			return false;
	if (n < lit + 3 || p[lit] != '{' || p[n - 1] != '}')
		return false;
	for (size_t i = lit + 1; i < n - 1; i++)
		if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '_'))
			return false;
	*prefix = true;
	*lit_len = lit;
	return true;
}

static model_route *model_find(model *m, const char *method, const char *path)
{
	bool prefix;
	size_t lit;
	if (!spec_path(path, &prefix, &lit))
		return NULL;
	for (size_t i = 0; i < m->n; i++) {
		model_route *r = &m->r[i];
		if (r->alive && r->prefix == prefix && strlen(r->literal) == lit &&
		    strncmp(r->literal, path, lit) == 0 && strcmp(r->method, method) == 0)
			return r;
	}
	return NULL;
}

static void route_add(roost_http_routes *routes, model *m, const char *method, const char *path)
{
	bool prefix;
	size_t lit;
	bool valid = spec_method(method) && spec_path(path, &prefix, &lit);
	roost_http_handler fn = m->n % 2 ? handler_b : handler_a;
	model_route *found = valid ? model_find(m, method, path) : NULL;
	bool room = m->n < MAX_ROUTES;
	/* ctx identifies the route: its slot in the model. */
	roost_err e = roost_http_routes_add(routes, method, path, fn, room ? &m->r[m->n] : NULL);
	if (!valid) {
		CHECK(e == ROOST_ERR_INVALID);
	} else if (found) {
		CHECK(e == ROOST_ERR_EXISTS);
	} else {
		CHECK(e == ROOST_OK);
		CHECK(room); /* the caller bounds the number of adds */
		model_route *r = &m->r[m->n++];
		snprintf(r->method, sizeof r->method, "%s", method);
		r->literal = strndup(path, lit);
		CHECK(r->literal);
		r->prefix = prefix;
		r->alive = true;
		r->fn = fn;
	}
}

static void route_remove(roost_http_routes *routes, model *m, const char *method, const char *path)
{
	model_route *found = model_find(m, method, path);
	roost_err e = roost_http_routes_remove(routes, method, path);
	CHECK(e == (found ? ROOST_OK : ROOST_ERR_NOT_FOUND));
	if (found)
		found->alive = false;
}

static bool model_route_matches(const model_route *r, const char *path)
{
	if (!r->alive)
		return false;
	return r->prefix ? strncmp(r->literal, path, strlen(r->literal)) == 0
	                 : strcmp(r->literal, path) == 0;
}

/* Is method one of the ", "-separated items of allow, exactly once? */
static int allow_count(const char *allow, const char *method)
{
	int count = 0;
	size_t ml = strlen(method);
	for (const char *p = allow; *p;) {
		const char *sep = strstr(p, ", ");
		size_t n = sep ? (size_t)(sep - p) : strlen(p);
		if (n == ml && strncmp(p, method, n) == 0)
			count++;
		p += n + (sep ? 2 : 0);
	}
	return count;
}

static void route_match(const roost_http_routes *routes, model *m, const char *method,
                        const char *path, const model_route **matched, const char **rest_out)
{
	/* The model's answer. */
	const model_route *best = NULL;
	bool path_known = false;
	for (size_t i = 0; i < m->n; i++) {
		const model_route *r = &m->r[i];
		if (!model_route_matches(r, path))
			continue;
		path_known = true;
		if (strcmp(r->method, method) != 0)
			continue;
		/* Unique: two routes of one method and one score are the same route. */
		if (!best || (best->prefix && (!r->prefix || strlen(r->literal) > strlen(best->literal))))
			best = r;
	}

	roost_http_handler fn = NULL;
	void *ctx = NULL;
	const char *rest = NULL;
	char allow[MAX_ROUTES * 20 + 1];
	roost_http_match got =
		roost_http_routes_match(routes, method, path, &fn, &ctx, &rest, allow, sizeof allow);
	*matched = NULL;
	*rest_out = NULL;
	if (best) {
		CHECK(got == ROOST_HTTP_MATCH_FOUND);
		CHECK(ctx == best && fn == best->fn);
		CHECK(rest == path + (best->prefix ? strlen(best->literal) : strlen(path)));
		*matched = best;
		*rest_out = rest;
	} else if (path_known) {
		CHECK(got == ROOST_HTTP_MATCH_NO_METHOD);
		/* Allow: every method of this path, once; nothing else. */
		size_t listed = 0;
		for (size_t i = 0; i < m->n; i++) {
			const model_route *r = &m->r[i];
			bool first = true;
			for (size_t j = 0; j < i; j++)
				if (model_route_matches(&m->r[j], path) && !strcmp(m->r[j].method, r->method))
					first = false;
			if (model_route_matches(r, path) && first) {
				CHECK(allow_count(allow, r->method) == 1);
				listed += strlen(r->method) + (listed ? 2 : 0);
			}
		}
		CHECK(strlen(allow) == listed);
	} else {
		CHECK(got == ROOST_HTTP_MATCH_NO_PATH);
	}

	/* A short Allow buffer (the server's is 64 bytes) is never overrun. */
	size_t small = strlen(path) % 24;
	char *buf = malloc(small ? small : 1);
	CHECK(buf);
	roost_http_match again =
		roost_http_routes_match(routes, method, path, &fn, &ctx, &rest, small ? buf : NULL, small);
	CHECK(again == got);
	if (small)
		CHECK(memchr(buf, '\0', small) != NULL);
	free(buf);
}

/* ---- authorisation -------------------------------------------------------------- */

static void check_auth(const char *authorization, const char *token)
{
	/* "Bearer" in any case, spaces, then exactly the token. */
	bool want = false;
	if (*token && strncasecmp(authorization, "bearer ", 7) == 0) {
		const char *given = authorization + 7;
		given += strspn(given, " ");
		want = strcmp(given, token) == 0;
	}
	CHECK(roost_http_auth_ok(authorization, token) == want);
	CHECK(!roost_http_auth_ok(NULL, token));
	CHECK(!roost_http_auth_ok(authorization, NULL));
	CHECK(!roost_http_auth_ok(authorization, ""));
	if (!*token)
		return;

	size_t tl = strlen(token);
	char *h = malloc(tl + 16);
	CHECK(h);
	/* The right token is let in (one that begins with a space cannot be sent). */
	snprintf(h, tl + 16, "bEARER  %s", token);
	CHECK(roost_http_auth_ok(h, token) == (token[0] != ' '));
	/* Anything shorter, longer or one byte off is not. */
	snprintf(h, tl + 16, "Bearer %s", token);
	h[7 + tl - 1] ^= 1;
	CHECK(!roost_http_auth_ok(h, token));
	h[7 + tl - 1] ^= 1;
	h[7 + tl - 1] = '\0';
	CHECK(!roost_http_auth_ok(h, token));
	snprintf(h, tl + 16, "Bearer %sx", token);
	CHECK(!roost_http_auth_ok(h, token));
	snprintf(h, tl + 16, "Basic %s", token);
	CHECK(!roost_http_auth_ok(h, token));
	free(h);
}

static void check_loopback(const char *addr)
{
	unsigned char a[16];
	char text[INET6_ADDRSTRLEN];
	bool want = false;
	if (inet_pton(AF_INET, addr, a) == 1) {
		want = a[0] == 127;
	} else if (inet_pton(AF_INET6, addr, a) == 1) {
		CHECK(inet_ntop(AF_INET6, a, text, sizeof text));
		/* Canonical text: "::1" or "::ffff:127.x.y.z" (RFC 5952). */
		want = strcmp(text, "::1") == 0 || strncmp(text, "::ffff:127.", 11) == 0;
	}
	CHECK(roost_http_addr_is_loopback(addr) == want);
	CHECK(!roost_http_addr_is_loopback(NULL));
}

static void check_restrict(const char *list, const char *type)
{
	bool want = !*list;
	char *copy = strdup(list);
	CHECK(copy);
	/* strsep, not strtok: empty items are items ("a,,b" allows ""). */
	for (char *s = copy, *item; *list && (item = strsep(&s, ","));)
		if (strcmp(item, type) == 0)
			want = true;
	free(copy);
	CHECK(roost_http_restrict_match(list, type) == want);
	CHECK(roost_http_restrict_match(NULL, type));
}

/* ---- request bodies ---------------------------------------------------------------- */

static bool all_space(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return false;
	return true;
}

/* Does the (JSON) text spell a NUL character as an escape? */
static bool has_nul_escape(const char *s, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++) {
		if (s[i] != '\\')
			continue;
		if (s[i + 1] == 'u' && i + 5 < n && !memcmp(s + i + 2, "0000", 4))
			return true;
		i++; /* the escaped character */
	}
	return false;
}

/* Does any object in the tree repeat a key? (naively: every pair) */
static bool spec_has_duplicate(const cJSON *item)
{
	for (const cJSON *a = item->child; a; a = a->next) {
		if (spec_has_duplicate(a))
			return true;
		if (cJSON_IsObject(item))
			for (const cJSON *b = a->next; b; b = b->next)
				if (strcmp(a->string, b->string) == 0)
					return true;
	}
	return false;
}

/*
 * The body as the documented rules read it: the object, or NULL when the
 * request must be refused with 400 ("should be valid JSON / a JSON object /
 * has the key ... more than once").
 */
static cJSON *spec_object(const char *body, size_t len)
{
	if (all_space(body, len))
		return cJSON_CreateObject();
	if (memchr(body, '\0', len) || has_nul_escape(body, len))
		return NULL;
	char *text = strndup(body, len);
	CHECK(text);
	cJSON *root = cJSON_ParseWithOpts(text, NULL, 1);
	free(text);
	if (root && (!cJSON_IsObject(root) || spec_has_duplicate(root))) {
		cJSON_Delete(root);
		root = NULL;
	}
	return root;
}

static void check_error(const roost_http_error *err, int status)
{
	CHECK(err->status == status);
	CHECK(memchr(err->message, '\0', sizeof err->message) != NULL);
	CHECK(err->message[0] != '\0');
}

/* What publish must accept, from the documented rules only. */
static bool spec_publish(const cJSON *root)
{
	const cJSON *it;
	cJSON_ArrayForEach(it, root) {
		const char *k = it->string;
		if (strcmp(k, "topic") && strcmp(k, "payload") && strcmp(k, "qos") && strcmp(k, "retain"))
			return false;
	}
	const cJSON *topic = cJSON_GetObjectItemCaseSensitive(root, "topic");
	const cJSON *payload = cJSON_GetObjectItemCaseSensitive(root, "payload");
	const cJSON *qos = cJSON_GetObjectItemCaseSensitive(root, "qos");
	const cJSON *retain = cJSON_GetObjectItemCaseSensitive(root, "retain");
	if (!cJSON_IsString(topic))
		return false;
	size_t tl = strlen(topic->valuestring);
	/* '$' topics are the broker's decision (roost_broker_publish), not the parser's. */
	if (tl > 65535 || !roost_topic_name_valid((const uint8_t *)topic->valuestring, tl))
		return false;
	if (payload && !cJSON_IsString(payload) &&
	    !(cJSON_IsNumber(payload) && payload->valuedouble - payload->valuedouble == 0))
		return false;
	if (qos && !(cJSON_IsNumber(qos) && (qos->valuedouble == 0 || qos->valuedouble == 1 ||
	                                     qos->valuedouble == 2)))
		return false;
	if (retain && !cJSON_IsBool(retain))
		return false;
	return true;
}

static void check_publish(const char *body, size_t len)
{
	roost_http_publish p;
	roost_http_error err;
	cJSON *root = spec_object(body, len);
	bool want = root && spec_publish(root);

	roost_alloc_fail_after(0);
	roost_err e = roost_http_publish_parse(body, len, &p, &err);
	unsigned long allocs = roost_alloc_count();
	if (!want) {
		CHECK(e == ROOST_ERR_INVALID);
		check_error(&err, 400);
		CHECK(!p.topic && !p.payload);
	} else {
		CHECK(e == ROOST_OK);
		const cJSON *topic = cJSON_GetObjectItemCaseSensitive(root, "topic");
		const cJSON *payload = cJSON_GetObjectItemCaseSensitive(root, "payload");
		const cJSON *qos = cJSON_GetObjectItemCaseSensitive(root, "qos");
		const cJSON *retain = cJSON_GetObjectItemCaseSensitive(root, "retain");
		CHECK(p.topic && strcmp(p.topic, topic->valuestring) == 0);
		CHECK(p.payload && p.payload_len == strlen(p.payload));
		if (!payload) {
			CHECK(p.payload_len == 0);
		} else if (cJSON_IsString(payload)) {
			CHECK(strcmp(p.payload, payload->valuestring) == 0);
		} else {
			/* A number's text reads back as the same number. */
			char *end;
			CHECK(strtod(p.payload, &end) == payload->valuedouble && *end == '\0');
		}
		CHECK(p.qos == (qos ? (uint8_t)qos->valuedouble : 0));
		CHECK(p.retain == (retain ? cJSON_IsTrue(retain) : false));
		roost_http_publish_cleanup(&p);
		CHECK(!p.topic && !p.payload);
	}
	cJSON_Delete(root);

	/* Out of memory at every allocation the call made. */
	for (unsigned long n = 1; n <= allocs; n++) {
		roost_alloc_fail_after(n);
		e = roost_http_publish_parse(body, len, &p, &err);
		roost_alloc_fail_after(0);
		CHECK(e == ROOST_ERR_NOMEM);
		check_error(&err, 500);
		CHECK(!p.topic && !p.payload);
	}
}

/* The documented event type: 1..64 of [A-Za-z0-9_.-]. */
static bool spec_event_type(const char *t)
{
	size_t n = strlen(t);
	if (n < 1 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= 'A' && t[i] <= 'Z') ||
		      (t[i] >= '0' && t[i] <= '9') || t[i] == '_' || t[i] == '.' || t[i] == '-'))
			return false;
	return true;
}

/* Returns the event's data (malloc'd) when it was accepted, else NULL. */
static char *check_event(const char *type, const char *body, size_t len)
{
	roost_http_error err;
	char *data = (char *)"not set";
	bool type_ok = spec_event_type(type);
	cJSON *root = type_ok ? spec_object(body, len) : NULL;

	CHECK(roost_http_event_type_valid(type) == type_ok);
	roost_alloc_fail_after(0);
	roost_err e = roost_http_event_parse(type, body, len, &data, &err);
	unsigned long allocs = roost_alloc_count();
	char *kept = NULL;
	if (!root) {
		CHECK(e == ROOST_ERR_INVALID);
		check_error(&err, 400);
		CHECK(data == NULL);
	} else {
		CHECK(e == ROOST_OK && data);
		/* One line, and the body's data. */
		CHECK(!strpbrk(data, "\r\n"));
		char *want = cJSON_PrintUnformatted(root);
		CHECK(want && strcmp(data, want) == 0);
		cJSON_free(want);
		cJSON *again = cJSON_Parse(data);
		CHECK(cJSON_IsObject(again));
		cJSON_Delete(again);
		kept = strdup(data);
		CHECK(kept);
		roost_free(data);
	}
	cJSON_Delete(root);

	for (unsigned long n = 1; n <= allocs; n++) {
		roost_alloc_fail_after(n);
		e = roost_http_event_parse(type, body, len, &data, &err);
		roost_alloc_fail_after(0);
		CHECK(e == ROOST_ERR_NOMEM);
		check_error(&err, 500);
		CHECK(data == NULL);
	}
	return kept;
}

/* ---- the event stream --------------------------------------------------------------- */

/* ---- request heads ---------------------------------------------------------------------- */

/* The value of the first header line named name (case-insensitive), as evhttp keeps it. */
static char *spec_header(const char *head, size_t len, const char *name)
{
	size_t nl = strlen(name);
	for (size_t pos = 0; pos < len;) {
		const char *l = head + pos;
		const char *lf = memchr(l, '\n', len - pos);
		size_t n = lf ? (size_t)(lf - l) : len - pos;
		pos += n + 1;
		if (n && l[n - 1] == '\r')
			n--;
		if (l == head)
			continue; /* the request line */
		if (n == 0)
			break;
		if (n > nl && l[nl] == ':' && strncasecmp(l, name, nl) == 0) {
			const char *v = l + nl + 1, *e = l + n;
			while (v < e && *v == ' ')
				v++;
			while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
				e--;
			char *out = strndup(v, (size_t)(e - v));
			CHECK(out);
			return out;
		}
	}
	return NULL;
}

static void check_head(const char *buf, size_t len, const char *token)
{
	/* The end of the head: found at once, or byte by byte, at the same place,
	 * just after the first empty line. */
	size_t scan = 0, end = roost_http_head_end(buf, len, &scan);
	size_t step = 0, found = 0;
	for (size_t i = 1; i <= len && i <= 4096 && !found; i++)
		found = roost_http_head_end(buf, i, &step);
	if (len <= 4096)
		CHECK(found == end);
	if (!end)
		return;
	CHECK(buf[end - 1] == '\n');
	CHECK(end == 1 || buf[end - 2] == '\n' || (buf[end - 2] == '\r' && (end == 2 || buf[end - 3] == '\n')));
	const char *tok = *token ? token : NULL;
	roost_http_head h;
	roost_http_head_check(buf, end, tok, 1000, &h);
	static const int statuses[] = {0, 400, 401, 411, 413, 417, 501, 505};
	bool known = false;
	for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
		known |= h.err.status == statuses[i];
	CHECK(known);
	if (h.err.status)
		check_error(&h.err, h.err.status);
	char *auth = spec_header(buf, end, "Authorization");
	char *te = spec_header(buf, end, "Transfer-Encoding");
	/* Admitted: a request line of three parts, a known version, the token,
	 * no Transfer-Encoding, a body within the limit that is framed. */
	if (h.err.status == 0) {
		const char *sp = memchr(buf, ' ', end);
		CHECK(sp && (size_t)(sp - buf) + 1 == h.target_off && h.target_len > 0);
		CHECK(!memcmp(buf + h.target_off + h.target_len, " HTTP/1.", 8));
		CHECK(!tok || roost_http_auth_ok(auth, tok));
		CHECK(!te);
		CHECK(h.body_len <= 1000 && h.framed);
	}
	/* A head that does not carry the token anywhere is never admitted, and
	 * is told nothing but 401 (or 400 when it cannot even be read). */
	if (tok && !memmem(buf, end, tok, strlen(tok)))
		CHECK(h.err.status == 401 || h.err.status == 400);
	free(auth);
	free(te);
}

static void check_sse(const char *type, const char *data_json, const char *origin, uint64_t ms)
{
	roost_event ev = {.type = type, .data_json = data_json, .origin = origin, .time_fired_ms = ms};
	size_t len = 0;
	roost_alloc_fail_after(0);
	char *out = roost_http_sse_event(&ev, &len);
	unsigned long allocs = roost_alloc_count();
	CHECK(out);
	CHECK(len == strlen(out) && len > 8);
	CHECK(strncmp(out, "data: ", 6) == 0 && strcmp(out + len - 2, "\n\n") == 0);
	CHECK(!memchr(out, '\n', len - 2) && !memchr(out, '\r', len - 2));

	/* Only valid JSON data gives a JSON line; the stream embeds it as is. */
	cJSON *data = cJSON_ParseWithOpts(data_json && *data_json ? data_json : "{}", NULL, 1);
	if (data) {
		const char *line_end = NULL;
		cJSON *line = cJSON_ParseWithLengthOpts(out + 6, len - 8, &line_end, 0);
		CHECK(cJSON_IsObject(line) && line_end == out + len - 2);
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(line, "event_type");
		const cJSON *o = cJSON_GetObjectItemCaseSensitive(line, "origin");
		const cJSON *tf = cJSON_GetObjectItemCaseSensitive(line, "time_fired");
		CHECK(cJSON_IsString(t) && strcmp(t->valuestring, type) == 0);
		CHECK(cJSON_IsString(o) && strcmp(o->valuestring, origin ? origin : "LOCAL") == 0);
		/* Printed, as cJSON_Compare is wrong for repeated keys. Raw CR/LF,
		 * which cJSON lets into strings, become spaces. */
		char *want = cJSON_PrintUnformatted(data);
		char *got = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(line, "data"));
		CHECK(want && got);
		CHECK(strcmp(want, got) == 0 || (data_json && strpbrk(data_json, "\r\n")));
		cJSON_free(want);
		cJSON_free(got);
		CHECK(cJSON_IsString(tf));
		/* Up to year 9999: "YYYY-MM-DDTHH:MM:SS.uuuuuu+00:00" and the same instant. */
		if (ms < 253402300800000ull) {
			struct tm tm = {0};
			unsigned us;
			int used = 0;
			const char *s = tf->valuestring;
			CHECK(strlen(s) == 32 && strcmp(s + 26, "+00:00") == 0);
			CHECK(sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%6u%n", &tm.tm_year, &tm.tm_mon,
			             &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &us, &used) == 7);
			CHECK(used == 26);
			tm.tm_year -= 1900;
			tm.tm_mon -= 1;
			CHECK((uint64_t)timegm(&tm) * 1000u + us / 1000u == ms && us % 1000u == 0);
		}
		cJSON_Delete(line);
		cJSON_Delete(data);
	}
	roost_free(out);

	for (unsigned long n = 1; n <= allocs; n++) {
		roost_alloc_fail_after(n);
		out = roost_http_sse_event(&ev, &len);
		roost_alloc_fail_after(0);
		CHECK(out == NULL);
	}
}

/* ---- the request ---------------------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *bytes, size_t size)
{
	static const struct {
		const char *method, *path;
	} builtin[] = {
		/* As connector/http_api.c adds them. */
		{"GET", "/api/"},
		{"POST", "/api/services/mqtt/publish"},
		{"POST", "/api/services/mqtt/mqtt_send"},
		{"POST", "/api/events/{event_type}"},
		{"GET", "/api/stream"},
	};
	const char *p = (const char *)bytes, *end = p + size;
	char *routes_text = part(&p, end);
	char *method = part(&p, end);
	char *path = part(&p, end);
	char *authorization = part(&p, end);
	char *token = part(&p, end);
	char *addr = part(&p, end);
	char *restrict_list = part(&p, end);
	char *time_text = part(&p, end);
	const char *body = p;
	size_t body_len = (size_t)(end - p);

	/* Routes. */
	model m = {.n = 0};
	roost_http_routes *routes = roost_http_routes_new();
	CHECK(routes);
	for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++)
		route_add(routes, &m, builtin[i].method, builtin[i].path);
	char *save = NULL;
	for (char *line = strtok_r(routes_text, "\n", &save); line && m.n < MAX_ROUTES;
	     line = strtok_r(NULL, "\n", &save)) {
		bool remove = line[0] == '-';
		char *rm = line + remove;
		char *sp = strchr(rm, ' ');
		const char *rpath = sp ? sp + 1 : "";
		if (sp)
			*sp = '\0';
		if (remove)
			route_remove(routes, &m, rm, rpath);
		else
			route_add(routes, &m, rm, rpath);
	}
	const model_route *matched;
	const char *rest;
	route_match(routes, &m, method, path, &matched, &rest);

	/* Authorisation, and the gate before a body is read. */
	check_auth(authorization, token);
	check_loopback(addr);
	check_head(body, body_len, token);

	/* The handlers the built-in routes lead to, and the validators alone. */
	char *data = NULL;
	if (matched == &m.r[1] || matched == &m.r[2])
		check_publish(body, body_len);
	if (matched == &m.r[3])
		data = check_event(rest, body, body_len);
	if (!matched || matched > &m.r[3]) {
		check_publish(body, body_len);
		data = check_event(path, body, body_len);
	}

	/* The event as /api/stream sends it. */
	check_restrict(restrict_list, path);
	uint64_t ms = strtoull(time_text, NULL, 10);
	check_sse(path, data, size % 2 ? "REMOTE" : NULL, ms);
	/* Raw data is embedded as is: it must still be framed on one line. */
	if (!memchr(body, '\0', body_len)) {
		char *raw = strndup(body, body_len);
		CHECK(raw);
		check_sse(path, raw, "LOCAL", ms);
		free(raw);
	}

	free(data);
	roost_http_routes_free(routes);
	for (size_t i = 0; i < m.n; i++)
		free(m.r[i].literal);
	free(routes_text);
	free(method);
	free(path);
	free(authorization);
	free(token);
	free(addr);
	free(restrict_list);
	free(time_text);
	return 0;
}
