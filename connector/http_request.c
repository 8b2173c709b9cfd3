/* http_request.c — route table, request validation, event-stream encoding. */
#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>

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

bool roost_http_auth_ok(const char *authorization, const char *token)
{
	if (!authorization || !token || !*token)
		return false;
	if (strncasecmp(authorization, "Bearer ", 7) != 0)
		return false;
	const char *given = authorization + 7;
	while (*given == ' ')
		given++;
	size_t glen = strlen(given), tlen = strlen(token);
	/* The length is not secret (tokens are long and random); the bytes are. */
	if (glen != tlen)
		return false;
	return CRYPTO_memcmp(given, token, tlen) == 0;
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

static roost_err publish_fields(const cJSON *root, roost_http_publish *out, roost_http_error *err)
{
	const cJSON *it;
	cJSON_ArrayForEach(it, root) {
		if (strcmp(it->string, "topic") && strcmp(it->string, "payload") &&
		    strcmp(it->string, "qos") && strcmp(it->string, "retain")) {
			fail(err, 400, "extra key not allowed: '%.100s' (expected topic, payload, qos, retain)",
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
	/* [MQTT-4.7.2-1] $-topics belong to the broker ($SYS); clients cannot publish them. */
	if (topic->valuestring[0] == '$') {
		fail(err, 400, "topic must not start with '$' (reserved for the broker)");
		return ROOST_ERR_INVALID;
	}
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
