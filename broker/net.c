/*
 * net.c — listeners: plain TCP and TLS. Accepted sockets become
 * connections; the max_connections limit is applied here, before any
 * per-client state exists.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "roost/alloc.h"

static void accept_cb(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
	(void)evl;
	roost_listener *l = arg;
	roost_broker *b = l->b;
	int32_t max = b->cfg->limits.max_connections;
	if (b->shutting_down || (max >= 0 && b->stats.connections >= (uint64_t)max)) {
		/* A client retrying in a loop must not flood the log. */
		roost_log_limited(b->log, &l->refused_rl, roost_clock_now(&b->clock), ROOST_LOG_NOTICE,
		                  "connection refused: limits.max_connections (%d) reached", max);
		evutil_closesocket(fd);
		return;
	}
	if (!conn_new(l, fd, sa, salen))
		roost_log_error(b->log, "out of memory accepting a connection");
}

static void accept_error_cb(struct evconnlistener *evl, void *arg)
{
	(void)evl;
	roost_listener *l = arg;
	int err = EVUTIL_SOCKET_ERROR();
	/* EMFILE and friends: keep listening; the next close frees a slot.
	 * libevent retries at once, so this repeats: rate-limited. */
	roost_log_limited(l->b->log, &l->accept_rl, roost_clock_now(&l->b->clock), ROOST_LOG_WARNING,
	                  "accept failed: %s", evutil_socket_error_to_string(err));
}

/* Parse bind + port; sets *loopback when the address is loopback-only. */
static int make_addr(const roost_listener_config *lc, struct sockaddr_storage *ss, int *sslen, bool *loopback)
{
	const char *bind = lc->bind ? lc->bind : "0.0.0.0";
	memset(ss, 0, sizeof *ss);
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, bind, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)lc->port);
		*sslen = sizeof *sin;
		*loopback = (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
		return 0;
	}
	if (inet_pton(AF_INET6, bind, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)lc->port);
		*sslen = sizeof *sin6;
		*loopback = IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
		return 0;
	}
	return -1;
}

static roost_err listen_one(roost_broker *b, const roost_listener_config *lc, roost_listener *l)
{
	struct sockaddr_storage ss;
	int sslen;
	const char *bind = lc->bind ? lc->bind : "0.0.0.0";
	const char *fmt = strchr(bind, ':') ? "[%s]:%d" : "%s:%d";
	l->b = b;
	l->cfg = lc;
	l->refused_rl = (roost_log_ratelimit)ROOST_LOG_RATELIMIT(10);
	l->accept_rl = (roost_log_ratelimit)ROOST_LOG_RATELIMIT(10);
	if (make_addr(lc, &ss, &sslen, &l->loopback) != 0) {
		roost_log_error(b->log, "listener: bind address '%s' is not an IPv4 or IPv6 address", bind);
		return ROOST_ERR_CONFIG;
	}
	if (lc->certfile && !(l->ssl = broker_tls_ctx_new(lc, b->log)))
		return ROOST_ERR_CONFIG;
	unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC;
	l->l = evconnlistener_new_bind(b->base, accept_cb, l, flags, 1024, (struct sockaddr *)&ss, sslen);
	if (!l->l) {
		char spec[300];
		snprintf(spec, sizeof spec, fmt, bind, lc->port);
		roost_log_error(b->log, "cannot listen on %s: %s", spec,
		                evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		return ROOST_ERR_IO;
	}
	evconnlistener_set_error_cb(l->l, accept_error_cb);
	/* Report the real port (port 0 asks the kernel for one). */
	struct sockaddr_storage bound;
	socklen_t blen = sizeof bound;
	l->port = lc->port;
	if (getsockname(evconnlistener_get_fd(l->l), (struct sockaddr *)&bound, &blen) == 0)
		l->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
		                                           : ((struct sockaddr_in *)&bound)->sin_port);
	char spec[300];
	snprintf(spec, sizeof spec, fmt, bind, l->port);
	roost_log_info(b->log, "listening on %s%s", spec, l->ssl ? " (TLS)" : "");
	return ROOST_OK;
}

roost_err roost_broker_listen(roost_broker *b)
{
	const roost_config *cfg = b->cfg;
	b->listeners = roost_calloc(cfg->n_listeners, sizeof *b->listeners);
	if (!b->listeners)
		return ROOST_ERR_NOMEM;
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		b->n_listeners++; /* counted first: shutdown frees a half-made one */
		roost_err err = listen_one(b, &cfg->listeners[i], &b->listeners[i]);
		if (err)
			return err;
	}
	return ROOST_OK;
}

void roost_broker_reload_tls(roost_broker *b)
{
	for (size_t i = 0; i < b->n_listeners; i++) {
		roost_listener *l = &b->listeners[i];
		if (!l->ssl)
			continue;
		SSL_CTX *fresh = broker_tls_ctx_new(l->cfg, b->log);
		if (!fresh) {
			roost_log_error(b->log, "TLS listener port %d: reload failed, keeping the old certificate",
			                l->port);
			continue;
		}
		/* Connections accepted so far keep the old context (their SSL
		 * objects hold a reference); new ones get the fresh one. */
		SSL_CTX_free(l->ssl);
		l->ssl = fresh;
		roost_log_notice(b->log, "TLS listener port %d: certificate reloaded", l->port);
	}
}

void roost_broker_shutdown(roost_broker *b)
{
	b->shutting_down = true;
	for (size_t i = 0; i < b->n_listeners; i++) {
		roost_listener *l = &b->listeners[i];
		if (l->l)
			evconnlistener_free(l->l);
		l->l = NULL;
	}
	while (b->conns)
		conn_close(b->conns, false, "broker shutting down");
}

/* After every connection is freed: the TLS contexts. */
void broker_listeners_free(roost_broker *b)
{
	for (size_t i = 0; i < b->n_listeners; i++)
		SSL_CTX_free(b->listeners[i].ssl);
	roost_free(b->listeners);
	b->listeners = NULL;
	b->n_listeners = 0;
}
