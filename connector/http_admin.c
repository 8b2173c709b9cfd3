/*
 * http_admin.c — the JSON endpoints a household fixes its MQTT problems with
 * (is my device connected, what is on this topic, delete a stale retained
 * message), on the HTTP API:
 *
 *   GET    /api/status                      the broker's figures
 *   GET    /api/clients                     every session, online or not
 *   POST   /api/clients/<id>/disconnect     as a network drop: will published
 *   DELETE /api/sessions/<id>               remove an offline session
 *   GET    /api/retained?filter=<filter>    retained messages (default "#")
 *   DELETE /api/retained/<topic>            clear one (an empty retained publish)
 *
 * Ids and topics are percent-decoded from the rest of the path. The API's
 * token rule applies as to every route. On top of it, because a browser
 * can be made to send these requests: the Host header must name this
 * server by address (or "localhost", or http.bind): a name that merely
 * resolves here is DNS rebinding; a request whose Origin is not this
 * server is refused, and so is a destructive request carrying a simple-form
 * content type (what a cross-site form can send without a preflight).
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <cjson/cJSON.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "roost/alloc.h"
#include "roost/broker.h"
#include "roost/codec.h"
#include "roost/component.h"
#include "roost/http.h"

typedef struct admin {
	roost_broker *b;
	roost_http *h;
	const char *bind; /* http.bind, borrowed from the config */
} admin;

/* ---- the browser checks ---- */

/* The host part of a Host header ("a:80", "[::1]:80", "a"), in out. */
static void host_name(const char *host, char *out, size_t cap)
{
	const char *end;
	if (*host == '[') {
		host++;
		end = strchr(host, ']');
	} else {
		end = strchr(host, ':');
	}
	size_t n = end ? (size_t)(end - host) : strlen(host);
	if (n >= cap)
		n = cap - 1;
	memcpy(out, host, n);
	out[n] = '\0';
}

static bool host_allowed(const admin *a, const char *host)
{
	if (!host || !*host)
		return false;
	char name[256];
	unsigned char addr[16];
	host_name(host, name, sizeof name);
	return inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1 ||
	       strcmp(name, "localhost") == 0 || (a->bind && strcmp(name, a->bind) == 0);
}

/* An Origin, when sent, must be this server as the Host header names it. */
static bool origin_allowed(const char *origin, const char *host)
{
	if (!origin)
		return true;
	const char *rest = strncmp(origin, "http://", 7) == 0 ? origin + 7
	                   : strncmp(origin, "https://", 8) == 0 ? origin + 8 : NULL;
	return rest && host && strcmp(rest, host) == 0;
}

static bool simple_form_type(const char *ctype)
{
	static const char *const simple[] = {"application/x-www-form-urlencoded", "multipart/form-data",
	                                     "text/plain"};
	for (size_t i = 0; ctype && i < sizeof simple / sizeof simple[0]; i++)
		if (strncasecmp(ctype, simple[i], strlen(simple[i])) == 0)
			return true;
	return false;
}

/* Answers the request itself and returns false when it must not proceed. */
static bool request_trusted(const admin *a, struct evhttp_request *req)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	const char *host = evhttp_find_header(in, "Host");
	if (!host_allowed(a, host)) {
		roost_http_reply_message(req, 403, "Host %s is not this server's address (DNS rebinding?)",
		                         host ? host : "(none)");
		return false;
	}
	if (!origin_allowed(evhttp_find_header(in, "Origin"), host)) {
		roost_http_reply_message(req, 403, "Cross-site request refused");
		return false;
	}
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	if (cmd != EVHTTP_REQ_GET && simple_form_type(evhttp_find_header(in, "Content-Type"))) {
		roost_http_reply_message(req, 415, "Cross-site request refused: simple form content type");
		return false;
	}
	return true;
}

/* The percent-decoded rest of the path (caller frees with free()), or NULL
 * after answering 400. */
static char *decoded(struct evhttp_request *req, const char *rest, size_t rest_len, const char *what)
{
	char *raw = roost_malloc(rest_len + 1);
	if (!raw) {
		roost_http_reply_message(req, 500, "Out of memory");
		return NULL;
	}
	memcpy(raw, rest, rest_len);
	raw[rest_len] = '\0';
	size_t len = 0;
	char *out = evhttp_uridecode(raw, 0, &len);
	roost_free(raw);
	if (!out || len == 0 || strlen(out) != len || !roost_utf8_valid((const uint8_t *)out, len)) {
		free(out);
		roost_http_reply_message(req, 400, "Invalid %s", what);
		return NULL;
	}
	return out;
}

/* ---- handlers ---- */

/* Answer body (NULL: it could not be built) and free it. */
static void reply_built(struct evhttp_request *req, cJSON *body)
{
	if (body)
		roost_http_reply_json(req, 200, body);
	else
		roost_http_reply_message(req, 500, "Out of memory");
	cJSON_Delete(body);
}

/* A new object at the end of arr, or NULL. */
static cJSON *array_item(cJSON *arr)
{
	cJSON *o = cJSON_CreateObject();
	if (o && !cJSON_AddItemToArray(arr, o)) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static void add_source(void *ctx, const char *source, const roost_stat *items, size_t n)
{
	cJSON *obj = cJSON_AddObjectToObject(ctx, source);
	for (size_t i = 0; obj && i < n; i++) {
		if (items[i].kind == ROOST_STAT_TEXT)
			cJSON_AddStringToObject(obj, items[i].name, items[i].text ? items[i].text : "");
		else
			cJSON_AddNumberToObject(obj, items[i].name, (double)items[i].value);
	}
}

static void status_handler(void *ctx, struct evhttp_request *req, const char *rest)
{
	(void)rest;
	admin *a = ctx;
	if (!request_trusted(a, req))
		return;
	roost_broker_stats st;
	roost_broker_stats_get(a->b, &st);
	cJSON *o = cJSON_CreateObject();
	const struct {
		const char *k;
		uint64_t v;
	} nums[] = {
		{"uptime_seconds", st.uptime_ms / 1000}, {"clients_connected", st.clients_connected},
		{"sessions", st.sessions}, {"messages_received", st.msgs_received}, {"messages_sent", st.msgs_sent},
		{"messages_dropped", st.msgs_dropped}, {"bytes_received", st.bytes_received},
		{"bytes_sent", st.bytes_sent}, {"subscriptions", st.subscriptions}, {"retained", st.retained},
		{"store_size", st.store_size}, {"store_commits", st.store_commits},
	};
	for (size_t i = 0; o && i < sizeof nums / sizeof nums[0]; i++)
		cJSON_AddNumberToObject(o, nums[i].k, (double)nums[i].v);
	if (o)
		roost_broker_stats_sources(a->b, add_source, o);
	reply_built(req, o);
}

static bool add_client(void *ctx, const roost_client_info *ci)
{
	cJSON *c = array_item(ctx);
	if (!c)
		return false;
	cJSON_AddStringToObject(c, "client_id", ci->client_id);
	if (ci->username)
		cJSON_AddStringToObject(c, "username", ci->username);
	else
		cJSON_AddNullToObject(c, "username");
	cJSON_AddBoolToObject(c, "connected", ci->addr != NULL);
	if (ci->addr) {
		cJSON_AddStringToObject(c, "address", ci->addr);
		cJSON_AddStringToObject(c, "protocol_version",
		                        ci->version == ROOST_MQTT_V5 ? "5" : ci->version == ROOST_MQTT_V31 ? "3.1" : "3.1.1");
		cJSON_AddNumberToObject(c, "idle_seconds", (double)(ci->idle_ms / 1000));
	}
	cJSON_AddBoolToObject(c, "persistent", ci->persistent);
	cJSON_AddNumberToObject(c, "subscriptions", (double)ci->subscriptions);
	cJSON_AddNumberToObject(c, "queued", (double)ci->queued);
	cJSON_AddNumberToObject(c, "inflight", (double)ci->inflight);
	return true;
}

static void clients_handler(void *ctx, struct evhttp_request *req, const char *rest)
{
	(void)rest;
	admin *a = ctx;
	if (!request_trusted(a, req))
		return;
	cJSON *arr = cJSON_CreateArray();
	if (arr)
		roost_broker_clients_foreach(a->b, add_client, arr);
	reply_built(req, arr);
}

/* POST /api/clients/<id>/disconnect */
static void disconnect_handler(void *ctx, struct evhttp_request *req, const char *rest)
{
	admin *a = ctx;
	static const char suffix[] = "/disconnect";
	size_t n = strlen(rest), ns = sizeof suffix - 1;
	if (n <= ns || strcmp(rest + n - ns, suffix) != 0) {
		roost_http_reply_message(req, 404, "Not found");
		return;
	}
	if (!request_trusted(a, req))
		return;
	char *id = decoded(req, rest, n - ns, "client id");
	if (!id)
		return;
	if (roost_broker_client_disconnect(a->b, id) == ROOST_OK)
		roost_http_reply_message(req, 200, "Client %s disconnected.", id);
	else
		roost_http_reply_message(req, 404, "No client %s is connected", id);
	free(id);
}

/* DELETE /api/sessions/<id> */
static void session_delete_handler(void *ctx, struct evhttp_request *req, const char *rest)
{
	admin *a = ctx;
	if (!request_trusted(a, req))
		return;
	char *id = decoded(req, rest, strlen(rest), "client id");
	if (!id)
		return;
	roost_err err = roost_broker_session_remove(a->b, id);
	if (err == ROOST_OK)
		roost_http_reply_message(req, 200, "Session %s removed.", id);
	else if (err == ROOST_ERR_EXISTS)
		roost_http_reply_message(req, 409, "Client %s is connected: disconnect it first", id);
	else
		roost_http_reply_message(req, 404, "No session %s", id);
	free(id);
}

static bool add_retained(void *ctx, const roost_msg *m)
{
	cJSON *r = array_item(ctx);
	if (!r)
		return false;
	cJSON_AddStringToObject(r, "topic", m->topic);
	cJSON_AddNumberToObject(r, "qos", m->qos);
	cJSON_AddNumberToObject(r, "size", (double)m->payload_len);
	/* Text as text; anything else as hex, for the page to show. */
	char *text = roost_malloc(m->payload_len * 2 + 1);
	if (!text)
		return false;
	bool is_text = roost_utf8_valid(m->payload, m->payload_len);
	if (is_text) {
		memcpy(text, m->payload, m->payload_len);
		text[m->payload_len] = '\0';
	} else {
		for (size_t i = 0; i < m->payload_len; i++)
			snprintf(text + 2 * i, 3, "%02x", m->payload[i]);
		text[2 * m->payload_len] = '\0';
	}
	cJSON_AddStringToObject(r, is_text ? "payload" : "payload_hex", text);
	roost_free(text);
	return true;
}

static void retained_list_handler(void *ctx, struct evhttp_request *req, const char *rest)
{
	(void)rest;
	admin *a = ctx;
	if (!request_trusted(a, req))
		return;
	struct evkeyvalq params;
	TAILQ_INIT(&params);
	const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	if (query && evhttp_parse_query_str(query, &params) != 0) {
		roost_http_reply_message(req, 400, "Invalid query string");
		return;
	}
	const char *filter = evhttp_find_header(&params, "filter");
	cJSON *arr = cJSON_CreateArray();
	roost_err err = arr ? roost_broker_retained_foreach(a->b, filter ? filter : "#", add_retained, arr) : ROOST_ERR_NOMEM;
	if (err == ROOST_ERR_BAD_TOPIC) {
		roost_http_reply_message(req, 400, "Invalid topic filter");
		cJSON_Delete(arr);
	} else {
		reply_built(req, err ? (cJSON_Delete(arr), NULL) : arr);
	}
	evhttp_clear_headers(&params);
}

/* DELETE /api/retained/<topic>: an empty retained publish, authorised and
 * fanned out like any (subscribers see it cleared [MQTT-3.3.1-10]). */
static void retained_delete_handler(void *ctx, struct evhttp_request *req, const char *rest)
{
	admin *a = ctx;
	if (!request_trusted(a, req))
		return;
	char *topic = decoded(req, rest, strlen(rest), "topic");
	if (!topic)
		return;
	roost_msg *m = roost_msg_new(topic, strlen(topic), NULL, 0, 0, true);
	roost_err err = m ? roost_broker_publish(a->b, m) : ROOST_ERR_NOMEM;
	roost_msg_unref(m);
	if (err)
		roost_http_reply_publish_error(req, err, topic);
	else
		roost_http_reply_message(req, 200, "Retained message on %s cleared.", topic);
	free(topic);
}

/* ---- the component ---- */

static const struct {
	const char *method, *path;
	roost_http_handler fn;
} routes[] = {
	{"GET", "/api/status", status_handler},
	{"GET", "/api/clients", clients_handler},
	{"POST", "/api/clients/{client_id}", disconnect_handler},
	{"DELETE", "/api/sessions/{client_id}", session_delete_handler},
	{"GET", "/api/retained", retained_list_handler},
	{"DELETE", "/api/retained/{topic}", retained_delete_handler},
};
enum { N_ROUTES = sizeof routes / sizeof routes[0] };

/* Remove the first n routes (the ones this component added) and free. */
static void admin_free(admin *a, size_t n)
{
	for (size_t i = 0; i < n; i++)
		roost_http_route_remove(a->h, routes[i].method, routes[i].path);
	roost_free(a);
}

static void admin_stop(void *state)
{
	if (state)
		admin_free(state, N_ROUTES);
}

static roost_err admin_start(roost_broker *b, void **state)
{
	*state = NULL;
	roost_http *h = roost_broker_service_find(b, "http");
	if (!h)
		return ROOST_OK;
	admin *a = roost_calloc(1, sizeof *a);
	if (!a)
		return ROOST_ERR_NOMEM;
	a->b = b;
	a->h = h;
	a->bind = roost_broker_config(b)->http.bind;
	for (size_t i = 0; i < N_ROUTES; i++) {
		roost_err err = roost_http_route_add(h, routes[i].method, routes[i].path, routes[i].fn, a);
		if (err) {
			admin_free(a, i);
			return err;
		}
	}
	*state = a;
	return ROOST_OK;
}

/* Optional like the API it is served on. */
const roost_component roost_admin_component = {"http_admin", admin_start, admin_stop, true};
