/* hub_resolve.c — non-blocking name resolution; see hub_resolve.h. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "roost/alloc.h"

#include "hub_resolve.h"

/* How often a pending lookup is polled. Lookups happen only when a
 * connection is (re)made, so this timer is idle otherwise. */
#define RESOLVE_POLL_MS 10

struct roost_resolve {
	struct event *timer;
	roost_resolve_fn fn;
	void *ctx;
	bool async;                /* getaddrinfo_a in flight (or done, not yet reported) */
	struct addrinfo *numeric;  /* result of the in-place parse */
	int numeric_err;           /* its error, when it failed */
	struct addrinfo hints;
	struct gaicb req;
	char *host;
	char port[8];
};

static void resolve_free(roost_resolve *r)
{
	if (r->numeric)
		freeaddrinfo(r->numeric);
	if (r->async && r->req.ar_result)
		freeaddrinfo(r->req.ar_result);
	if (r->timer)
		event_free(r->timer);
	roost_free(r->host);
	roost_free(r);
}

static void arm(roost_resolve *r, int ms)
{
	struct timeval tv = {0, ms * 1000};
	event_add(r->timer, &tv);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	roost_resolve *r = arg;
	int err = 0;
	const struct addrinfo *ai = r->numeric;
	if (!r->async && !ai)
		err = r->numeric_err ? r->numeric_err : EAI_NONAME;
	if (r->async) {
		err = gai_error(&r->req);
		if (err == EAI_INPROGRESS) {
			arm(r, RESOLVE_POLL_MS);
			return;
		}
		ai = err ? NULL : r->req.ar_result;
		if (!err && !ai)
			err = EAI_NONAME;
	}
	r->fn(r->ctx, err, ai);
	resolve_free(r);
}

roost_err roost_resolve_start(struct event_base *base, const char *host, int port,
                              roost_resolve_fn fn, void *ctx, roost_resolve **out)
{
	roost_resolve *r = roost_calloc(1, sizeof *r);
	if (!r)
		return ROOST_ERR_NOMEM;
	r->fn = fn;
	r->ctx = ctx;
	snprintf(r->port, sizeof r->port, "%d", port);
	r->host = roost_strdup(host);
	r->timer = evtimer_new(base, on_timer, r);
	if (!r->host || !r->timer)
		goto fail;
	r->hints.ai_family = AF_UNSPEC;
	r->hints.ai_socktype = SOCK_STREAM;
	r->hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	int err = getaddrinfo(r->host, r->port, &r->hints, &r->numeric);
	if (err == EAI_NONAME) {
		/* A name, not an address literal: look it up off the loop. */
		r->numeric = NULL;
		r->hints.ai_flags = AI_NUMERICSERV;
		r->req.ar_name = r->host;
		r->req.ar_service = r->port;
		r->req.ar_request = &r->hints;
		struct gaicb *list[1] = {&r->req};
		if (getaddrinfo_a(GAI_NOWAIT, list, 1, NULL) != 0)
			goto fail;
		r->async = true;
		arm(r, RESOLVE_POLL_MS);
	} else {
		/* Parsed (or failed) in place; report from the loop all the same,
		 * so callers see one behaviour. */
		if (err) {
			r->numeric = NULL;
			r->numeric_err = err;
		}
		arm(r, 0);
	}
	*out = r;
	return ROOST_OK;
fail:
	resolve_free(r);
	return ROOST_ERR_NOMEM;
}

void roost_resolve_cancel(roost_resolve *r)
{
	if (!r)
		return;
	if (r->async && gai_cancel(&r->req) == EAI_NOTCANCELED) {
		/* glibc is already resolving: it will write into r->req, so wait
		 * for it (bounded by the resolver's own timeouts; only at shutdown
		 * or when the connector gives up a lookup). */
		const struct gaicb *list[1] = {&r->req};
		while (gai_error(&r->req) == EAI_INPROGRESS)
			gai_suspend(list, 1, NULL);
	}
	resolve_free(r);
}

size_t roost_resolve_count(const struct addrinfo *ai)
{
	size_t n = 0;
	for (; ai; ai = ai->ai_next)
		n++;
	return n;
}

const struct addrinfo *roost_resolve_nth(const struct addrinfo *ai, size_t i)
{
	while (ai && i--)
		ai = ai->ai_next;
	return ai;
}
