/*
 * hub_client.c — ordered, at-least-once delivery of events to Home
 * Assistant's REST API; see hub_client.h.
 *
 * One request at a time, always for the spool's head. The flow:
 *
 *   enqueue ──► spool ──► kick (next loop turn) ──► send_head
 *   send_head: no usable connection? resolve the host (hub_resolve.h, never
 *              blocks), open one evhttp connection to the numeric address
 *              (TLS bufferevent for https), then POST the head.
 *   on_response: verdict (hub_proto.h) ─► pop + kick | drop + kick |
 *                keep + retry timer (backoff)
 *
 * A connection that failed or was closed by the server is never reused:
 * evhttp would reconnect with the same bufferevent, and an OpenSSL
 * bufferevent cannot run a second handshake. It is marked dead inside
 * libevent's callback and freed at the next send (never inside its own
 * callback), or at free.
 */
#include <assert.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "roost/alloc.h"
#include "roost/persist.h"

#include "hub_client.h"
#include "hub_proto.h"
#include "hub_resolve.h"
#include "spool.h"

/* Home Assistant answers /api/events with a few bytes of JSON; anything
 * much larger is not HA and is not read. */
#define HUB_MAX_ANSWER 65536

typedef enum hub_state {
	HUB_NEW,  /* nothing sent yet */
	HUB_UP,   /* the last attempt got an answer */
	HUB_DOWN, /* unreachable or answering 5xx: retrying */
	HUB_AUTH, /* 401/403: waiting for a configuration fix */
} hub_state;

struct roost_hub_client {
	struct event_base *base;
	const roost_log *log;
	roost_spool *spool;
	roost_persist *store; /* NULL: the spool lives in memory only */
	const char *config_path;
	uint32_t timeout_s, retry_max_s;

	/* target, from hub.url */
	char *url;
	bool https;
	bool host_is_ip;
	char *host;        /* without IPv6 brackets */
	int port;
	char *host_header; /* host[:port] as in the URL */
	char *path;        /* <url path>/api/events/<event_type> */
	char *auth;        /* "Bearer <token>" */
	bool verify_tls;
	SSL_CTX *ssl_ctx;

	/* the connection */
	struct evhttp_connection *evcon;
	bool evcon_dead;   /* failed or closed: replace before the next request */
	bool reused;       /* the request in flight went on an already-used connection */
	SSL *ssl;          /* of evcon (https), owned by its bufferevent */
	roost_resolve *resolving;
	size_t attempt;    /* rotates through the resolved addresses on failures */

	/* delivery */
	struct event *kick;  /* send from the loop, not from the enqueuing caller */
	struct event *retry; /* send after the backoff */
	bool busy;           /* a lookup or a request is in flight */
	uint64_t inflight_seq;
	int inflight_err;    /* evhttp_request_error, or -1 */
	uint32_t backoff_s;  /* last delay; 0 after a success */
	hub_state state;
	uint64_t delivered, rejected, retries;
	uint64_t lost;       /* events not queued: no memory */
};

static void send_head(roost_hub_client *h);

/* ---- setup ---------------------------------------------------------- */

static roost_err parse_url(roost_hub_client *h, const char *url, const char *event_type)
{
	roost_err err = ROOST_ERR_CONFIG;
	char *type_enc = NULL;
	struct evhttp_uri *u = evhttp_uri_parse_with_flags(url, 0);
	if (!u) {
		roost_log_error(h->log, "hub.url '%s' is not a URL (expected http://HOST:PORT or https://...)",
		                url);
		return ROOST_ERR_CONFIG;
	}
	const char *scheme = evhttp_uri_get_scheme(u);
	const char *host = evhttp_uri_get_host(u);
	if (!scheme || (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)) {
		roost_log_error(h->log, "hub.url '%s': the scheme must be http or https", url);
		goto out;
	}
	if (!host || !*host) {
		roost_log_error(h->log, "hub.url '%s' has no host", url);
		goto out;
	}
	if (evhttp_uri_get_userinfo(u) || evhttp_uri_get_query(u) || evhttp_uri_get_fragment(u)) {
		roost_log_error(h->log, "hub.url '%s': give only scheme, host, port and path; the token "
		                "goes in hub.token", url);
		goto out;
	}
	h->https = strcasecmp(scheme, "https") == 0;
	int port = evhttp_uri_get_port(u);
	h->port = port > 0 ? port : h->https ? 443 : 80;
	size_t hl = strlen(host);
	bool bracketed = hl > 2 && host[0] == '[' && host[hl - 1] == ']';
	h->host = bracketed ? roost_strndup(host + 1, hl - 2) : roost_strdup(host);
	char hh[300];
	if (port > 0)
		snprintf(hh, sizeof hh, "%s:%d", host, port);
	else
		snprintf(hh, sizeof hh, "%s", host);
	h->host_header = roost_strdup(hh);
	unsigned char buf[sizeof(struct in6_addr)];
	h->host_is_ip = h->host && (inet_pton(AF_INET, h->host, buf) == 1 ||
	                            inet_pton(AF_INET6, h->host, buf) == 1);

	const char *path = evhttp_uri_get_path(u);
	size_t pl = path ? strlen(path) : 0;
	while (pl > 0 && path[pl - 1] == '/')
		pl--; /* "http://ha:8123/" and "http://ha:8123" are the same */
	type_enc = evhttp_uriencode(event_type, -1, 0);
	if (!type_enc || !h->host || !h->host_header) {
		err = ROOST_ERR_NOMEM;
		goto out;
	}
	static const char api[] = "/api/events/";
	size_t n = pl + sizeof api - 1 + strlen(type_enc) + 1;
	h->path = roost_malloc(n);
	if (!h->path) {
		err = ROOST_ERR_NOMEM;
		goto out;
	}
	snprintf(h->path, n, "%.*s%s%s", (int)pl, path ? path : "", api, type_enc);
	err = ROOST_OK;
out:
	free(type_enc); /* libevent's allocation */
	evhttp_uri_free(u);
	return err;
}

static roost_err tls_setup(roost_hub_client *h, const roost_hub_config *hub)
{
	h->ssl_ctx = SSL_CTX_new(TLS_client_method());
	if (!h->ssl_ctx)
		return ROOST_ERR_NOMEM;
	SSL_CTX_set_min_proto_version(h->ssl_ctx, TLS1_2_VERSION);
	if (!hub->verify_tls) {
		SSL_CTX_set_verify(h->ssl_ctx, SSL_VERIFY_NONE, NULL);
		roost_log_warn(h->log, "hub.verify_tls is false: the certificate of %s is not checked, "
		               "so anyone on the path can read the token", h->host);
		return ROOST_OK;
	}
	SSL_CTX_set_verify(h->ssl_ctx, SSL_VERIFY_PEER, NULL);
	if (hub->cafile) {
		if (SSL_CTX_load_verify_locations(h->ssl_ctx, hub->cafile, NULL) != 1) {
			char why[256];
			ERR_error_string_n(ERR_get_error(), why, sizeof why);
			ERR_clear_error();
			roost_log_error(h->log, "hub.cafile '%s': cannot load CA certificates: %s",
			                hub->cafile, why);
			return ROOST_ERR_CONFIG;
		}
	} else if (SSL_CTX_set_default_verify_paths(h->ssl_ctx) != 1) {
		ERR_clear_error();
		roost_log_warn(h->log, "no system CA certificates found; set hub.cafile to verify %s",
		               h->host);
	}
	return ROOST_OK;
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	send_head(arg);
}

roost_err roost_hub_client_new(struct event_base *base, const roost_log *log,
                               const roost_hub_config *hub, const char *event_type,
                               const char *config_path, roost_hub_client **out)
{
	roost_err err = ROOST_ERR_NOMEM;
	roost_hub_client *h = roost_calloc(1, sizeof *h);
	if (!h)
		return ROOST_ERR_NOMEM;
	h->base = base;
	h->log = log;
	h->config_path = config_path ? config_path : "the configuration";
	h->timeout_s = hub->timeout;
	h->retry_max_s = hub->retry_max;
	h->verify_tls = hub->verify_tls;
	h->inflight_err = -1;
	if (!hub->token || !*hub->token) {
		roost_log_error(log, "hub.url is set but hub.token is missing in %s: create a long-lived "
		                "access token in your Home Assistant profile and set hub.token",
		                h->config_path);
		err = ROOST_ERR_CONFIG;
		goto fail;
	}
	h->url = roost_strdup(hub->url);
	if (!h->url)
		goto fail;
	err = parse_url(h, hub->url, event_type);
	if (err)
		goto fail;
	err = ROOST_ERR_NOMEM;
	size_t alen = strlen(hub->token) + sizeof "Bearer ";
	h->auth = roost_malloc(alen);
	if (!h->auth)
		goto fail;
	snprintf(h->auth, alen, "Bearer %s", hub->token);
	if (h->https && (err = tls_setup(h, hub)) != ROOST_OK)
		goto fail;
	err = ROOST_ERR_NOMEM;
	h->spool = roost_spool_new(hub->spool_max);
	h->kick = event_new(base, -1, 0, on_kick, h);
	h->retry = evtimer_new(base, on_kick, h);
	if (!h->spool || !h->kick || !h->retry)
		goto fail;
	*out = h;
	return ROOST_OK;
fail:
	roost_hub_client_free(h);
	return err;
}

/* ---- the connection -------------------------------------------------- */

static void conn_free(roost_hub_client *h)
{
	if (!h->evcon)
		return;
	/* No close callback into us while it goes (and with it any request). */
	evhttp_connection_set_closecb(h->evcon, NULL, NULL);
	evhttp_connection_free(h->evcon);
	h->evcon = NULL;
	h->ssl = NULL;
	h->evcon_dead = false;
}

static void on_conn_closed(struct evhttp_connection *evcon, void *arg)
{
	roost_hub_client *h = arg;
	if (evcon == h->evcon)
		h->evcon_dead = true; /* freed at the next send, not here */
}

static roost_err conn_open(roost_hub_client *h, const char *addr)
{
	struct bufferevent *bev = NULL;
	if (h->https) {
		SSL *ssl = SSL_new(h->ssl_ctx);
		if (!ssl)
			return ROOST_ERR_NOMEM;
		X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
		X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		int ok = h->host_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, h->host)
		                       : SSL_set_tlsext_host_name(ssl, h->host) == 1 &&
		                                 X509_VERIFY_PARAM_set1_host(param, h->host, 0) == 1;
		if (ok != 1) {
			SSL_free(ssl);
			return ROOST_ERR_NOMEM;
		}
		bev = bufferevent_openssl_socket_new(h->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
		                                     BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
		if (!bev) {
			SSL_free(ssl);
			return ROOST_ERR_NOMEM;
		}
		/* Servers often close TLS without close_notify; the HTTP framing
		 * (Content-Length) says whether the answer was complete. */
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
		h->ssl = ssl;
	}
	/* evhttp owns bev from here (NULL: it makes a plain one). addr is
	 * numeric, so evhttp's own lookup cannot block. */
	h->evcon = evhttp_connection_base_bufferevent_new(h->base, NULL, bev, addr,
	                                                  (ev_uint16_t)h->port);
	if (!h->evcon) {
		if (bev)
			bufferevent_free(bev);
		h->ssl = NULL;
		return ROOST_ERR_NOMEM;
	}
	evhttp_connection_set_timeout(h->evcon, (int)h->timeout_s);
	evhttp_connection_set_retries(h->evcon, 0);
	evhttp_connection_set_max_body_size(h->evcon, HUB_MAX_ANSWER);
	evhttp_connection_set_max_headers_size(h->evcon, HUB_MAX_ANSWER);
	evhttp_connection_set_closecb(h->evcon, on_conn_closed, h);
	h->evcon_dead = false;
	return ROOST_OK;
}

/* ---- outcomes -------------------------------------------------------- */

static size_t queued(const roost_hub_client *h) { return roost_spool_count(h->spool); }

static void schedule_retry(roost_hub_client *h, uint32_t delay_s)
{
	struct timeval tv = {(time_t)delay_s, 0};
	evtimer_add(h->retry, &tv);
}

/* The attempt failed without a usable answer (or with 5xx / 429 ...). */
static void attempt_failed(roost_hub_client *h, const char *why)
{
	h->busy = false;
	h->evcon_dead = h->evcon != NULL;
	h->attempt++;
	h->retries++;
	h->backoff_s = roost_hub_backoff_next(h->backoff_s, h->retry_max_s);
	if (h->state != HUB_DOWN) {
		roost_log_warn(h->log, "Home Assistant at %s is not reachable (%s): holding events in the "
		               "spool (%zu queued), retrying with backoff up to %u s",
		               h->url, why, queued(h), h->retry_max_s);
		h->state = HUB_DOWN;
	} else {
		roost_log_debug(h->log, "Home Assistant at %s still not reachable (%s): %zu queued, next "
		                "try in %u s", h->url, why, queued(h), h->backoff_s);
	}
	schedule_retry(h, h->backoff_s);
}

static void auth_refused(roost_hub_client *h, int status)
{
	h->busy = false;
	h->retries++;
	h->backoff_s = h->retry_max_s;
	if (h->state != HUB_AUTH) {
		roost_log_error(h->log, "Home Assistant refused the token (%d): check hub.token in %s — "
		                "create a long-lived access token in your HA profile; events wait in the "
		                "spool (%zu queued), retrying every %u s",
		                status, h->config_path, queued(h), h->retry_max_s);
		h->state = HUB_AUTH;
	} else {
		roost_log_debug(h->log, "Home Assistant still refuses the token (%d): %zu queued", status,
		                queued(h));
	}
	schedule_retry(h, h->backoff_s);
}

/* Home Assistant answered: it is reachable. held: the events that waited
 * for this answer (the one it answered included, counted before its pop). */
static void reachable(roost_hub_client *h, size_t held)
{
	if (h->state == HUB_DOWN || h->state == HUB_AUTH)
		roost_log_notice(h->log, "Home Assistant at %s accepts events again: %zu event%s held "
		                 "meanwhile, %zu left to deliver", h->url, held, held == 1 ? "" : "s",
		                 queued(h));
	else if (h->state == HUB_NEW)
		roost_log_info(h->log, "delivering events to Home Assistant at %s", h->url);
	h->state = HUB_UP;
	h->backoff_s = 0;
}

/* Remove the head if it is still the one that was sent (a full spool may
 * have dropped it meanwhile). */
static void pop_inflight(roost_hub_client *h)
{
	uint64_t seq;
	if (roost_spool_peek(h->spool, NULL, &seq) && seq == h->inflight_seq) {
		roost_spool_pop(h->spool);
		if (h->store)
			roost_persist_spool_remove(h->store, seq);
	}
}

static void log_rejected(roost_hub_client *h, uint64_t n, int status, const char *answer)
{
	if (n & (n - 1))
		return; /* 1, 2, 4, 8 ...: visible, never a flood */
	roost_log_warn(h->log, "Home Assistant rejected an event with %d%s%s%s: dropped it (%llu "
	               "rejected so far)%s", status, answer ? " (" : "", answer ? answer : "",
	               answer ? ")" : "", (unsigned long long)n,
	               status == 404 ? "; check hub.url and mqtt.event_type" : "");
}

static void describe_failure(roost_hub_client *h, char *why, size_t cap)
{
	const char *what = "connection failed";
	switch (h->inflight_err) {
	case EVREQ_HTTP_TIMEOUT: what = "no answer within hub.timeout"; break;
	case EVREQ_HTTP_EOF: what = "connection closed"; break;
	case EVREQ_HTTP_INVALID_HEADER: what = "invalid HTTP answer"; break;
	case EVREQ_HTTP_DATA_TOO_LONG: what = "answer too long"; break;
	default: break;
	}
	if (h->ssl) {
		long vr = SSL_get_verify_result(h->ssl);
		if (h->verify_tls && vr != X509_V_OK) {
			snprintf(why, cap, "TLS certificate of %s not accepted: %s", h->host,
			         X509_verify_cert_error_string(vr));
			return;
		}
		/* The TLS bufferevent keeps OpenSSL's errors in its own queue. */
		unsigned long e = bufferevent_get_openssl_error(evhttp_connection_get_bufferevent(h->evcon));
		if (e) {
			char s[200];
			ERR_error_string_n(e, s, sizeof s);
			snprintf(why, cap, "%s: TLS: %s", what, s);
			return;
		}
	}
	snprintf(why, cap, "%s", what);
}

/* A short, printable excerpt of HA's answer for the log, or NULL. */
static const char *answer_excerpt(struct evhttp_request *req, char *buf, size_t cap)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_copyout(in, buf, cap - 1);
	if (n == (size_t)-1 || n == 0)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = ' ';
	buf[n] = '\0';
	return buf;
}

static void on_request_error(enum evhttp_request_error err, void *arg)
{
	roost_hub_client *h = arg;
	h->inflight_err = (int)err;
}

static void on_response(struct evhttp_request *req, void *arg)
{
	roost_hub_client *h = arg;
	int status = req ? evhttp_request_get_response_code(req) : 0;
	char why[300], text[160];
	size_t held = queued(h);
	switch (roost_hub_verdict_of(status)) {
	case ROOST_HUB_DELIVERED:
		pop_inflight(h);
		reachable(h, held);
		h->delivered++;
		h->busy = false;
		event_active(h->kick, EV_TIMEOUT, 0);
		return;
	case ROOST_HUB_REJECTED:
		pop_inflight(h);
		reachable(h, held);
		h->rejected++;
		log_rejected(h, h->rejected, status, answer_excerpt(req, text, sizeof text));
		h->busy = false;
		event_active(h->kick, EV_TIMEOUT, 0);
		return;
	case ROOST_HUB_AUTH:
		auth_refused(h, status);
		return;
	case ROOST_HUB_RETRY:
		if (!status && h->reused && h->inflight_err != EVREQ_HTTP_TIMEOUT) {
			/* The server closed an idle keep-alive connection as we
			 * sent (aiohttp does after 75 s): not an outage. Once,
			 * at once, on a fresh connection. */
			h->evcon_dead = true;
			h->busy = false;
			event_active(h->kick, EV_TIMEOUT, 0);
			return;
		}
		if (status)
			snprintf(why, sizeof why, "HTTP %d", status);
		else
			describe_failure(h, why, sizeof why);
		attempt_failed(h, why);
		return;
	}
}

static void send_request(roost_hub_client *h)
{
	size_t len;
	uint64_t seq;
	const char *body = roost_spool_peek(h->spool, &len, &seq);
	assert(body); /* only pops by this client empty the spool */
	struct evhttp_request *req = evhttp_request_new(on_response, h);
	if (!req) {
		attempt_failed(h, "out of memory");
		return;
	}
	evhttp_request_set_error_cb(req, on_request_error);
	struct evkeyvalq *hd = evhttp_request_get_output_headers(req);
	struct evbuffer *out = evhttp_request_get_output_buffer(req);
	if (evhttp_add_header(hd, "Host", h->host_header) || evhttp_add_header(hd, "Authorization", h->auth) ||
	    evhttp_add_header(hd, "Content-Type", "application/json") ||
	    evhttp_add_header(hd, "Accept", "application/json") ||
	    evhttp_add_header(hd, "User-Agent", "roost") || evbuffer_add(out, body, len)) {
		evhttp_request_free(req);
		attempt_failed(h, "out of memory");
		return;
	}
	h->inflight_seq = seq;
	h->inflight_err = -1;
	/* May call on_response before returning (a connect refused at once):
	 * nothing below may assume the request is still in flight. On -1
	 * libevent has already freed req. */
	if (evhttp_make_request(h->evcon, req, EVHTTP_REQ_POST, h->path) != 0)
		attempt_failed(h, "cannot start the request");
}

static void on_resolved(void *arg, int gai_err, const struct addrinfo *ai)
{
	roost_hub_client *h = arg;
	h->resolving = NULL; /* freed by the resolver after this returns */
	char why[300];
	if (gai_err) {
		snprintf(why, sizeof why, "cannot resolve %s: %s", h->host, gai_strerror(gai_err));
		attempt_failed(h, why);
		return;
	}
	const struct addrinfo *a = roost_resolve_nth(ai, h->attempt % roost_resolve_count(ai));
	char addr[INET6_ADDRSTRLEN];
	if (getnameinfo(a->ai_addr, a->ai_addrlen, addr, sizeof addr, NULL, 0, NI_NUMERICHOST) != 0 ||
	    conn_open(h, addr) != ROOST_OK) {
		attempt_failed(h, "out of memory");
		return;
	}
	send_request(h);
}

static void send_head(roost_hub_client *h)
{
	if (h->busy || !queued(h) || evtimer_pending(h->retry, NULL))
		return;
	if (h->evcon && h->evcon_dead)
		conn_free(h); /* safe here: we are in our own timer, not its callback */
	h->busy = true;
	if (h->evcon) {
		h->reused = true;
		send_request(h);
		return;
	}
	h->reused = false;
	if (roost_resolve_start(h->base, h->host, h->port, on_resolved, h, &h->resolving) != ROOST_OK)
		attempt_failed(h, "out of memory");
}

/* ---- interface ------------------------------------------------------- */

roost_err roost_hub_client_enqueue(roost_hub_client *h, const char *body, size_t len)
{
	bool dropped;
	uint64_t oldest = 0, seq = 0;
	roost_spool_peek(h->spool, NULL, &oldest);
	roost_err err = roost_spool_push(h->spool, body, len, &dropped, &seq);
	if (!err && h->store) {
		if (dropped)
			roost_persist_spool_remove(h->store, oldest);
		roost_persist_spool_push(h->store, seq, body, len);
	}
	if (err) {
		h->lost++;
		roost_log_warn(h->log, "hub: out of memory: an event was not queued for Home Assistant");
		return err;
	}
	if (dropped) {
		uint64_t n = roost_spool_dropped(h->spool);
		if (!(n & (n - 1))) /* 1, 2, 4, 8 ...: a running count, never a flood */
			roost_log_warn(h->log, "hub spool full (%zu events, hub.spool_max): dropped the "
			               "oldest event; %llu dropped so far", roost_spool_max(h->spool),
			               (unsigned long long)n);
	}
	if (!h->busy && !evtimer_pending(h->retry, NULL))
		event_active(h->kick, EV_TIMEOUT, 0);
	return ROOST_OK;
}

typedef struct spool_load {
	roost_hub_client *h;
	uint64_t *old;     /* store seqs of the loaded rows, rewritten below */
	size_t n, cap;
	roost_err err;
} spool_load;

static void load_spooled(void *ctx, uint64_t seq, const char *body, size_t len)
{
	spool_load *l = ctx;
	if (l->err)
		return;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		uint64_t *n = roost_realloc(l->old, cap * sizeof *n);
		if (!n) {
			l->err = ROOST_ERR_NOMEM;
			return;
		}
		l->old = n;
		l->cap = cap;
	}
	l->old[l->n++] = seq;
	bool dropped;
	l->err = roost_spool_push(l->h->spool, body, len, &dropped, NULL);
}

roost_err roost_hub_client_set_store(roost_hub_client *h, roost_persist *store)
{
	static const roost_persist_visitor v = {.spool = load_spooled};
	spool_load l = {.h = h};
	roost_err err = roost_persist_load(store, &v, &l);
	if (!err)
		err = l.err;
	/* The spool numbers its entries afresh: rewrite the rows under the new
	 * numbers (one transaction, at startup). */
	for (size_t i = 0; !err && i < l.n; i++)
		err = roost_persist_spool_remove(store, l.old[i]);
	roost_free(l.old);
	if (err) {
		roost_log_error(h->log, "hub: cannot load the spooled events from the store: %s", roost_err_str(err));
		return err;
	}
	h->store = store;
	size_t n = roost_spool_count(h->spool);
	for (size_t i = 0; i < n; i++) {
		/* Walk by popping and pushing back: the spool is a FIFO. */
		size_t len;
		uint64_t seq;
		const char *body = roost_spool_peek(h->spool, &len, &seq);
		char *copy = roost_strndup(body, len);
		if (!copy)
			return ROOST_ERR_NOMEM;
		roost_spool_pop(h->spool);
		bool dropped;
		err = roost_spool_push(h->spool, copy, len, &dropped, &seq);
		if (!err)
			err = roost_persist_spool_push(store, seq, copy, len);
		roost_free(copy);
		if (err)
			return err;
	}
	if (n) {
		roost_log_notice(h->log, "hub: %zu events spooled before the restart are queued for %s", n,
		                 h->url);
		if (!h->busy && !evtimer_pending(h->retry, NULL))
			event_active(h->kick, EV_TIMEOUT, 0);
	}
	return ROOST_OK;
}

void roost_hub_client_stats(const roost_hub_client *h, roost_hub_stats *out)
{
	out->queued = queued(h);
	out->durable = h->store != NULL;
	out->delivered = h->delivered;
	out->dropped = roost_spool_dropped(h->spool) + h->lost;
	out->rejected = h->rejected;
	out->retries = h->retries;
	static const char *const names[] = {[HUB_NEW] = "new", [HUB_UP] = "up", [HUB_DOWN] = "down", [HUB_AUTH] = "auth"};
	out->state = names[h->state];
}

void roost_hub_client_free(roost_hub_client *h)
{
	if (!h)
		return;
	roost_resolve_cancel(h->resolving);
	conn_free(h); /* an in-flight request goes with it, without a callback */
	if (h->kick)
		event_free(h->kick);
	if (h->retry)
		event_free(h->retry);
	if (h->ssl_ctx)
		SSL_CTX_free(h->ssl_ctx);
	roost_spool_free(h->spool);
	roost_free(h->url);
	roost_free(h->host);
	roost_free(h->host_header);
	roost_free(h->path);
	roost_free(h->auth);
	roost_free(h);
}
