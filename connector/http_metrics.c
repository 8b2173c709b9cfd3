/*
 * http_metrics.c — GET /metrics on the HTTP API: the broker's figures in
 * Prometheus' text exposition format 0.0.4.
 *
 * A component like any other: it finds the "http" service and adds its
 * route, so the API's token rule applies to it as to every route (no
 * token of its own). Each scrape reads the figures at that moment through
 * roost/broker.h (roost_broker_stats_get, roost_broker_listener_stats and
 * the components' sources); nothing is sampled between scrapes.
 *
 *   roost_<name>                          broker-wide, HELP and TYPE each
 *   roost_clients_connected{listener, protocol_version}
 *   roost_store_commit_duration_seconds   histogram, by the broker's clock
 *   roost_<source>_<metric>               a component's (roost_hub_*)
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "roost/alloc.h"
#include "roost/broker.h"
#include "roost/component.h"
#include "roost/http.h"

#define METRICS_PATH "/metrics"
#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef struct metrics {
	roost_broker *b;
	roost_http *h;
} metrics;

/* A broker-wide figure: roost_<name>, from a roost_broker_stats field. */
typedef struct metric_def {
	const char *name;
	const char *type; /* "counter" or "gauge" */
	const char *help;
	size_t field;     /* offset in roost_broker_stats */
} metric_def;

#define COUNTER(n, f, h) {n, "counter", h, offsetof(roost_broker_stats, f)}
#define GAUGE(n, f, h) {n, "gauge", h, offsetof(roost_broker_stats, f)}
static const metric_def broker_metrics[] = {
	GAUGE("clients_maximum", clients_maximum, "Most clients connected at once since start."),
	GAUGE("connections", connections, "Network connections open, before or after CONNECT."),
	GAUGE("sessions", sessions, "Sessions in memory, online and offline."),
	COUNTER("connects_total", connects, "CONNECTs accepted."),
	COUNTER("clients_expired_total", clients_expired, "Persistent sessions removed by their expiry."),
	COUNTER("packets_received_total", packets_received, "MQTT packets of every type received from clients."),
	COUNTER("packets_sent_total", packets_sent, "MQTT packets of every type sent to clients."),
	COUNTER("messages_received_total", msgs_received, "PUBLISH packets accepted from clients."),
	COUNTER("messages_sent_total", msgs_sent, "PUBLISH packets sent to clients."),
	COUNTER("messages_dropped_total", msgs_dropped, "Messages dropped by queue limits, back-pressure or the ACL."),
	GAUGE("messages_stored", msgs_stored, "Messages queued or in flight for sessions, plus retained ones."),
	COUNTER("bytes_received_total", bytes_received, "MQTT bytes received from clients."),
	COUNTER("bytes_sent_total", bytes_sent, "MQTT bytes sent to clients."),
	GAUGE("subscriptions", subscriptions, "Subscriptions, of clients and components."),
	GAUGE("retained_messages", retained, "Retained messages, roost's own $SYS ones included."),
	COUNTER("store_commits_total", store_commits, "Commits of the durable store."),
	GAUGE("store_size_bytes", store_size, "Bytes of the store's database and WAL on disk."),
	COUNTER("store_moved_aside_total", store_moved_aside, "Databases lost to corruption, over all starts."),
};

static void header(struct evbuffer *out, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(out, "# HELP roost_%s %s\n# TYPE roost_%s %s\n", name, help, name, type);
}

static uint64_t field(const roost_broker_stats *st, size_t off)
{
	uint64_t v;
	memcpy(&v, (const char *)st + off, sizeof v);
	return v;
}

/* A label value, escaped as the format asks (backslash, quote, newline). */
static void label_value(char *out, size_t cap, const char *in)
{
	size_t n = 0;
	for (; *in && n + 3 < cap; in++) {
		if (*in == '\\' || *in == '"' || *in == '\n')
			out[n++] = '\\';
		out[n++] = *in == '\n' ? 'n' : *in;
	}
	out[n] = '\0';
}

static void clients_by_listener(struct evbuffer *out, roost_broker *b)
{
	roost_listener_stats ls[16];
	size_t n = roost_broker_listener_stats(b, ls, sizeof ls / sizeof ls[0]);
	header(out, "clients_connected", "gauge", "Clients connected (past CONNACK), by listener and protocol version.");
	for (size_t i = 0; i < n && i < sizeof ls / sizeof ls[0]; i++) {
		char addr[128], esc[260];
		snprintf(addr, sizeof addr, "%s:%d", *ls[i].bind ? ls[i].bind : "*", ls[i].port);
		label_value(esc, sizeof esc, addr);
		const struct {
			const char *v;
			uint64_t n;
		} by[] = {{"3.1", ls[i].clients_v31}, {"3.1.1", ls[i].clients_v311}, {"5", ls[i].clients_v5}};
		for (size_t j = 0; j < sizeof by / sizeof by[0]; j++)
			evbuffer_add_printf(out, "roost_clients_connected{listener=\"%s\",protocol_version=\"%s\"} %llu\n", esc,
			                    by[j].v, (unsigned long long)by[j].n);
	}
}

static void commit_histogram(struct evbuffer *out, const roost_broker_stats *st)
{
	static const uint64_t bounds[ROOST_STATS_COMMIT_BUCKETS] = ROOST_STATS_COMMIT_BOUNDS_MS;
	header(out, "store_commit_duration_seconds", "histogram", "Time each store commit took, by the broker's clock.");
	uint64_t cumulative = 0;
	for (size_t i = 0; i < ROOST_STATS_COMMIT_BUCKETS; i++) {
		cumulative += st->commit_le[i];
		evbuffer_add_printf(out, "roost_store_commit_duration_seconds_bucket{le=\"%g\"} %llu\n",
		                    (double)bounds[i] / 1000, (unsigned long long)cumulative);
	}
	evbuffer_add_printf(out, "roost_store_commit_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
	                    (unsigned long long)st->commit_count);
	evbuffer_add_printf(out, "roost_store_commit_duration_seconds_sum %.3f\n", (double)st->commit_sum_ms / 1000);
	evbuffer_add_printf(out, "roost_store_commit_duration_seconds_count %llu\n", (unsigned long long)st->commit_count);
}

/* A component's numbers, as roost_<source>_<metric> (its texts are $SYS only). */
static void source_metrics(void *ctx, const char *source, const roost_stat *items, size_t n)
{
	struct evbuffer *out = ctx;
	for (size_t i = 0; i < n; i++) {
		if (items[i].kind == ROOST_STAT_TEXT || !items[i].metric)
			continue;
		char name[160];
		snprintf(name, sizeof name, "%s_%s", source, items[i].metric);
		header(out, name, items[i].kind == ROOST_STAT_COUNTER ? "counter" : "gauge",
		       items[i].help ? items[i].help : items[i].name);
		evbuffer_add_printf(out, "roost_%s %llu\n", name, (unsigned long long)items[i].value);
	}
}

static void metrics_handler(void *ctx, struct evhttp_request *req, const char *rest)
{
	(void)rest;
	metrics *m = ctx;
	struct evbuffer *out = evbuffer_new();
	if (!out) {
		evhttp_send_reply(req, 500, NULL, NULL);
		return;
	}
	roost_broker_stats st;
	roost_broker_stats_get(m->b, &st);
	header(out, "uptime_seconds", "gauge", "Seconds since the broker started.");
	evbuffer_add_printf(out, "roost_uptime_seconds %llu\n", (unsigned long long)(st.uptime_ms / 1000));
	clients_by_listener(out, m->b);
	for (size_t i = 0; i < sizeof broker_metrics / sizeof broker_metrics[0]; i++) {
		const metric_def *d = &broker_metrics[i];
		header(out, d->name, d->type, d->help);
		evbuffer_add_printf(out, "roost_%s %llu\n", d->name, (unsigned long long)field(&st, d->field));
	}
	commit_histogram(out, &st);
	roost_broker_stats_sources(m->b, source_metrics, out);
	struct evkeyvalq *hdr = evhttp_request_get_output_headers(req);
	evhttp_remove_header(hdr, "Content-Type");
	evhttp_add_header(hdr, "Content-Type", METRICS_TYPE);
	evhttp_send_reply(req, 200, NULL, out);
	evbuffer_free(out);
}

static roost_err metrics_start(roost_broker *b, void **state)
{
	*state = NULL;
	roost_http *h = roost_broker_service_find(b, "http");
	if (!h)
		return ROOST_OK; /* the API is off: nowhere to serve them */
	metrics *m = roost_calloc(1, sizeof *m);
	if (!m)
		return ROOST_ERR_NOMEM;
	m->b = b;
	m->h = h;
	roost_err err = roost_http_route_add(h, "GET", METRICS_PATH, metrics_handler, m);
	if (err) {
		roost_free(m);
		return err;
	}
	*state = m;
	return ROOST_OK;
}

static void metrics_stop(void *state)
{
	metrics *m = state;
	if (!m)
		return;
	roost_http_route_remove(m->h, "GET", METRICS_PATH);
	roost_free(m);
}

/* Optional like the API it serves on: without it the broker still runs. */
const roost_component roost_metrics_component = {"http_metrics", metrics_start, metrics_stop, true};
