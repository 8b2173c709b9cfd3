/*
 * net.c — listeners: plain TCP and TLS, each speaking MQTT or (protocol:
 * websockets) MQTT over WebSockets, ws or wss. Accepted sockets become
 * connections; the max_connections limit is applied here, before any
 * per-client state exists.
 *
 * Out of descriptors (EMFILE and friends) the pending connection stays in
 * the kernel's backlog and the listening socket stays readable: retrying at
 * once would spin the loop. The listener is paused instead and re-enabled
 * by its retry timer (100 ms, doubling to 1 s) or as soon as a closed
 * connection gave a descriptor back; one line is logged per episode.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "internal.h"
#include "roost/alloc.h"

#define ACCEPT_RETRY_MIN_MS 100u
#define ACCEPT_RETRY_MAX_MS 1000u

static void resume_accepting(roost_listener *l)
{
	event_del(l->retry);
	if (l->l)
		evconnlistener_enable(l->l);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	resume_accepting(arg);
}

void broker_listeners_resume(roost_broker *b)
{
	for (size_t i = 0; i < b->n_listeners; i++) {
		roost_listener *l = &b->listeners[i];
		if (l->retry && evtimer_pending(l->retry, NULL))
			resume_accepting(l);
	}
}

static void accept_cb(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
	(void)evl;
	roost_listener *l = arg;
	roost_broker *b = l->b;
	if (l->failed_accepts) {
		roost_log_notice(b->log, "listener port %d: accepting connections again (after %u failed accepts)",
		                 l->port, l->failed_accepts);
		l->failed_accepts = 0;
		l->retry_ms = 0;
	}
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

/* libevent already retries EAGAIN/EINTR/ECONNABORTED; what reaches here
 * would fail again at once, so every such error pauses the listener. */
static void accept_error_cb(struct evconnlistener *evl, void *arg)
{
	roost_listener *l = arg;
	int err = EVUTIL_SOCKET_ERROR();
	evconnlistener_disable(evl);
	l->retry_ms = l->retry_ms ? l->retry_ms * 2 : ACCEPT_RETRY_MIN_MS;
	if (l->retry_ms > ACCEPT_RETRY_MAX_MS)
		l->retry_ms = ACCEPT_RETRY_MAX_MS;
	if (l->failed_accepts++ == 0) {
		bool fds = err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
		roost_log_warn(l->b->log, "listener port %d: accept failed: %s; %spaused, retrying every %u..%u ms%s",
		               l->port, evutil_socket_error_to_string(err), fds ? "out of resources, " : "",
		               ACCEPT_RETRY_MIN_MS, ACCEPT_RETRY_MAX_MS, fds ? " and when a connection closes" : "");
	}
	struct timeval tv = {.tv_sec = l->retry_ms / 1000, .tv_usec = (suseconds_t)(l->retry_ms % 1000) * 1000};
	evtimer_add(l->retry, &tv);
}

/* Parse bind + port; sets *loopback when the address is loopback-only. */
static int make_addr(const char *bind, int port, struct sockaddr_storage *ss, int *sslen, bool *loopback)
{
	memset(ss, 0, sizeof *ss);
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, bind, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		*sslen = sizeof *sin;
		*loopback = (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
		return 0;
	}
	if (inet_pton(AF_INET6, bind, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		*sslen = sizeof *sin6;
		*loopback = IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
		return 0;
	}
	return -1;
}

/*
 * A listening socket made by hand rather than by evconnlistener_new_bind,
 * which cannot clear IPV6_V6ONLY: dual is the default listener, "::" taking
 * IPv4 clients too (as ::ffff:a.b.c.d). -1 with errno set on failure.
 */
static evutil_socket_t open_listen_socket(const struct sockaddr *sa, int salen, bool dual)
{
	evutil_socket_t fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1, zero = 0;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    (dual && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) != 0) ||
	    bind(fd, sa, (socklen_t)salen) != 0 || listen(fd, 1024) != 0) {
		int err = errno;
		evutil_closesocket(fd);
		errno = err;
		return -1;
	}
	return fd;
}

static void format_spec(char *out, size_t cap, const char *addr, int port)
{
	snprintf(out, cap, strchr(addr, ':') ? "[%s]:%d" : "%s:%d", addr, port);
}

/*
 * The listening socket for lc: its bind as given, or, when bind is not set,
 * "::" dual-stack, falling back to 0.0.0.0 on a host without IPv6. *shown
 * is the address to log. Errors are logged here.
 */
static roost_err listen_socket(roost_broker *b, const roost_listener_config *lc, roost_listener *l,
                               const char **shown, evutil_socket_t *out)
{
	struct sockaddr_storage ss;
	int sslen;
	bool dual = lc->bind == NULL;
	*shown = dual ? "::" : lc->bind;
	if (make_addr(*shown, lc->port, &ss, &sslen, &l->loopback) != 0) {
		roost_log_error(b->log, "listener: bind address '%s' is not an IPv4 or IPv6 address", *shown);
		return ROOST_ERR_CONFIG;
	}
	evutil_socket_t fd = open_listen_socket((struct sockaddr *)&ss, sslen, dual);
	if (fd < 0 && dual && (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL)) {
		roost_log_notice(b->log, "listener port %d: no IPv6 on this host (%s); listening on IPv4 only",
		                 lc->port, strerror(errno));
		*shown = "0.0.0.0";
		make_addr(*shown, lc->port, &ss, &sslen, &l->loopback);
		fd = open_listen_socket((struct sockaddr *)&ss, sslen, false);
	}
	if (fd < 0) {
		char spec[300];
		format_spec(spec, sizeof spec, *shown, lc->port);
		roost_log_error(b->log, "cannot listen on %s: %s", spec, strerror(errno));
		return ROOST_ERR_IO;
	}
	*out = fd;
	return ROOST_OK;
}

static roost_err listen_one(roost_broker *b, const roost_listener_config *lc, roost_listener *l)
{
	const char *shown;
	evutil_socket_t fd;
	l->b = b;
	l->cfg = lc;
	l->refused_rl = (roost_log_ratelimit)ROOST_LOG_RATELIMIT(10);
	if (lc->certfile && !(l->ssl = broker_tls_ctx_new(lc, b->log)))
		return ROOST_ERR_CONFIG;
	roost_err err = listen_socket(b, lc, l, &shown, &fd);
	if (err)
		return err;
	/* backlog 0: the socket already listens. */
	l->l = evconnlistener_new(b->base, accept_cb, l, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	l->retry = evtimer_new(b->base, retry_cb, l);
	if (!l->l)
		evutil_closesocket(fd);
	if (!l->l || !l->retry)
		return ROOST_ERR_NOMEM;
	evconnlistener_set_error_cb(l->l, accept_error_cb);
	/* Report the real port (port 0 asks the kernel for one). */
	struct sockaddr_storage bound;
	socklen_t blen = sizeof bound;
	l->port = lc->port;
	if (getsockname(fd, (struct sockaddr *)&bound, &blen) == 0)
		l->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
		                                           : ((struct sockaddr_in *)&bound)->sin_port);
	char spec[300];
	format_spec(spec, sizeof spec, shown, l->port);
	bool web = lc->protocol == ROOST_LISTENER_WEBSOCKETS;
	roost_log_info(b->log, "listening on %s%s%s", spec, web ? (l->ssl ? " (WebSockets, wss)" : " (WebSockets, ws)")
	               : l->ssl ? " (TLS)" : "",
	               lc->bind ? "" : strchr(shown, ':') ? " (IPv6 and IPv4)" : " (IPv4 only)");
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

void broker_listeners_close(roost_broker *b)
{
	for (size_t i = 0; i < b->n_listeners; i++) {
		roost_listener *l = &b->listeners[i];
		if (l->l)
			evconnlistener_free(l->l);
		l->l = NULL;
		if (l->retry)
			event_free(l->retry);
		l->retry = NULL;
	}
}

void broker_listeners_free(roost_broker *b)
{
	for (size_t i = 0; i < b->n_listeners; i++)
		SSL_CTX_free(b->listeners[i].ssl);
	roost_free(b->listeners);
	b->listeners = NULL;
	b->n_listeners = 0;
}
