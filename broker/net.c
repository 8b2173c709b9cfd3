/*
 * net.c — TCP listeners. Accepted sockets become connections; the
 * max_connections limit is applied here, before any per-client state exists.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "roost/alloc.h"

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
	(void)l;
	roost_broker *b = arg;
	int32_t max = b->cfg->limits.max_connections;
	if (b->shutting_down || (max >= 0 && b->stats.connections >= (uint64_t)max)) {
		roost_log_notice(b->log, "connection refused: limits.max_connections (%d) reached", max);
		evutil_closesocket(fd);
		return;
	}
	if (!conn_new(b, fd, sa, salen))
		roost_log_error(b->log, "out of memory accepting a connection");
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	roost_broker *b = arg;
	int err = EVUTIL_SOCKET_ERROR();
	/* EMFILE and friends: keep listening; the next close frees a slot. */
	roost_log_warn(b->log, "accept failed: %s", evutil_socket_error_to_string(err));
	(void)l;
}

static roost_err listen_one(roost_broker *b, const roost_listener_config *lc, struct evconnlistener **out)
{
	struct sockaddr_storage ss;
	int sslen;
	char spec[300];
	const char *bind = lc->bind ? lc->bind : "0.0.0.0";
	memset(&ss, 0, sizeof ss);
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, bind, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)lc->port);
		sslen = sizeof *sin;
		snprintf(spec, sizeof spec, "%s:%d", bind, lc->port);
	} else if (inet_pton(AF_INET6, bind, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)lc->port);
		sslen = sizeof *sin6;
		snprintf(spec, sizeof spec, "[%s]:%d", bind, lc->port);
	} else {
		roost_log_error(b->log, "listener: bind address '%s' is not an IPv4 or IPv6 address", bind);
		return ROOST_ERR_CONFIG;
	}
	unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC;
	struct evconnlistener *l =
		evconnlistener_new_bind(b->base, accept_cb, b, flags, 1024, (struct sockaddr *)&ss, sslen);
	if (!l) {
		roost_log_error(b->log, "cannot listen on %s: %s", spec,
		                evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		return ROOST_ERR_IO;
	}
	evconnlistener_set_error_cb(l, accept_error_cb);
	/* Report the real port (port 0 asks the kernel for one). */
	struct sockaddr_storage bound;
	socklen_t blen = sizeof bound;
	int port = lc->port;
	if (getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&bound, &blen) == 0)
		port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
		                                         : ((struct sockaddr_in *)&bound)->sin_port);
	if (strchr(bind, ':'))
		roost_log_info(b->log, "listening on [%s]:%d", bind, port);
	else
		roost_log_info(b->log, "listening on %s:%d", bind, port);
	*out = l;
	return ROOST_OK;
}

roost_err roost_broker_listen(roost_broker *b)
{
	const roost_config *cfg = b->cfg;
	b->listeners = roost_calloc(cfg->n_listeners, sizeof *b->listeners);
	if (!b->listeners)
		return ROOST_ERR_NOMEM;
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		roost_err err = listen_one(b, &cfg->listeners[i], &b->listeners[i]);
		if (err)
			return err;
		b->n_listeners++;
	}
	return ROOST_OK;
}

void roost_broker_shutdown(roost_broker *b)
{
	b->shutting_down = true;
	for (size_t i = 0; i < b->n_listeners; i++)
		evconnlistener_free(b->listeners[i]);
	b->n_listeners = 0;
	while (b->conns)
		conn_close(b->conns, false, "broker shutting down");
}
