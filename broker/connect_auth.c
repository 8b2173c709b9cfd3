/*
 * connect_auth.c — the password check of a CONNECT, off the event loop.
 *
 * handle_connect() asks broker_connect_verify() when a user name must be
 * proven by a password. In order:
 *  1. the cache of successful verifications (auth_guard.h): a device that
 *     reconnects with the right password is admitted at once;
 *  2. the backoff table: a (user name, address) pair that failed recently
 *     waits its delay (0.5 s doubling to 30 s) on a timer first;
 *  3. the worker pool (auth_worker.c) hashes the password.
 * Meanwhile the connection is CONN_AUTHENTICATING: it reads nothing (input
 * waits in the kernel, so pipelined packets are kept and bounded) and the
 * CONNECT continues in handle_connect_resume() when the verdict arrives.
 *
 * The connection may be closed while its check is pending; the reaper then
 * frees it. A pending check therefore holds no reference: it keeps the
 * connection's address and a generation number it gave it, and finds it
 * again among the broker's open connections before touching it. The check
 * keeps its own copy of the CONNECT packet, re-decoded on resumption.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "internal.h"
#include "roost/alloc.h"
#include "roost/auth_guard.h"

/* Bounds: checks waiting at once (each holds a CONNECT copy), entries in
 * the cache and the backoff table, and how long a verification is trusted. */
#define MAX_PENDING 256
#define CACHE_ENTRIES 1024
#define CACHE_TTL_MS (15u * 60u * 1000u)
#define BACKOFF_ENTRIES 4096

struct connect_pending {
	connect_pending *next, *prev; /* b->auth_pending */
	roost_broker *b;
	roost_conn *c;                /* compared, never dereferenced before being found */
	uint64_t gen;
	uint64_t epoch;               /* of the password files the check ran against */
	const void *scope;            /* their users db, as the cache's scope */
	uint8_t *pkt;                 /* the CONNECT, copied */
	size_t len;
	const uint8_t *password;      /* inside pkt */
	size_t plen;
	char gen_id[64];              /* a generated client id, or "" */
	char *user;
	char host[56];                /* the peer's address without the port */
	struct event *delay;          /* backoff timer; NULL when none */
};

static void pending_free(connect_pending *p)
{
	roost_broker *b = p->b;
	if (p->prev)
		p->prev->next = p->next;
	else
		b->auth_pending = p->next;
	if (p->next)
		p->next->prev = p->prev;
	b->n_auth_pending--;
	if (p->delay)
		event_free(p->delay);
	OPENSSL_cleanse(p->pkt, p->len);
	roost_free(p->pkt);
	roost_free(p->user);
	roost_free(p);
}

/* The connection, if it is still open and still waiting for this check. */
static roost_conn *pending_conn(const connect_pending *p)
{
	for (roost_conn *c = p->b->conns; c; c = c->next)
		if (c == p->c)
			return c->auth_gen == p->gen && c->state == CONN_AUTHENTICATING ? c : NULL;
	return NULL;
}

static void on_verified(void *ctx, bool ok)
{
	connect_pending *p = ctx;
	roost_broker *b = p->b;
	uint64_t now = roost_clock_now(&b->clock);
	if (ok) {
		/* Files reloaded meanwhile: the cache was cleared, and this result
		 * belongs to the old ones. */
		if (p->epoch == b->auth_epoch)
			roost_auth_cache_add(b->auth_cache, p->scope, p->user, p->password, p->plen, now);
		roost_login_backoff_succeeded(b->login_backoff, p->user, p->host);
	} else {
		roost_login_backoff_failed(b->login_backoff, p->user, p->host, now);
	}
	roost_conn *c = pending_conn(p);
	if (c) {
		connect_verdict v = {ok ? ROOST_AUTH_ALLOW : ROOST_AUTH_DENY, ok ? ROOST_CONNACK_ACCEPTED : ROOST_CONNACK_BAD_CREDENTIALS,
		                     ok ? NULL : "bad user name or password"};
		handle_connect_resume(c, p->pkt, p->len, p->gen_id, &v);
	}
	pending_free(p);
}

/* Hand the check to the pool, against the connection's current users. */
static bool submit(connect_pending *p, roost_conn *c)
{
	roost_broker *b = p->b;
	const struct roost_auth_db *users = broker_authz_users(b, c);
	roost_auth_cred cred;
	roost_auth_lookup(users, p->user, &cred);
	p->scope = users;
	p->epoch = b->auth_epoch;
	roost_err err = broker_auth_pool_submit(b->auth_pool, &cred, p->password, p->plen, on_verified, p);
	OPENSSL_cleanse(&cred, sizeof cred);
	return err == ROOST_OK;
}

static void on_delay(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	connect_pending *p = arg;
	roost_conn *c = pending_conn(p);
	if (c && submit(p, c))
		return;
	if (c) {
		connect_verdict v = {ROOST_AUTH_DENY, ROOST_CONNACK_UNAVAILABLE, "out of memory checking the password"};
		handle_connect_resume(c, p->pkt, p->len, p->gen_id, &v);
	}
	pending_free(p);
}

static bool guard_init(roost_broker *b)
{
	if (!b->auth_cache)
		b->auth_cache = roost_auth_cache_new(CACHE_ENTRIES, CACHE_TTL_MS);
	if (!b->login_backoff)
		b->login_backoff = roost_login_backoff_new(BACKOFF_ENTRIES);
	if (!b->auth_pool)
		b->auth_pool = broker_auth_pool_new(b->base);
	return b->auth_cache && b->login_backoff && b->auth_pool;
}

static connect_pending *pending_new(roost_conn *c, const char *user, const uint8_t *pw, size_t plen,
                                    const uint8_t *pkt, size_t len, const char *gen_id)
{
	roost_broker *b = c->b;
	connect_pending *p = roost_calloc(1, sizeof *p);
	if (!p || !(p->pkt = roost_malloc(len)) || !(p->user = roost_strdup(user))) {
		if (p)
			roost_free(p->pkt);
		roost_free(p);
		return NULL;
	}
	memcpy(p->pkt, pkt, len);
	p->len = len;
	p->password = pw ? p->pkt + (pw - pkt) : NULL;
	p->plen = plen;
	snprintf(p->gen_id, sizeof p->gen_id, "%s", gen_id ? gen_id : "");
	/* "1.2.3.4:5678" or "[::1]:5678": the address is what is before the last ':'. */
	const char *colon = strrchr(c->addr, ':');
	size_t hl = colon ? (size_t)(colon - c->addr) : strlen(c->addr);
	snprintf(p->host, sizeof p->host, "%.*s", (int)hl, c->addr);
	p->b = b;
	p->c = c;
	p->gen = c->auth_gen = ++b->auth_gens;
	if ((p->next = b->auth_pending))
		p->next->prev = p;
	b->auth_pending = p;
	b->n_auth_pending++;
	return p;
}

int broker_connect_verify(roost_conn *c, const char *user, const uint8_t *pw, size_t plen, const uint8_t *pkt,
                          size_t len, const char *gen_id, connect_verdict *v)
{
	roost_broker *b = c->b;
	uint64_t now = roost_clock_now(&b->clock);
	*v = (connect_verdict){ROOST_AUTH_DENY, ROOST_CONNACK_UNAVAILABLE, "out of memory checking the password"};
	if (!guard_init(b))
		return v->verdict;
	if (roost_auth_cache_hit(b->auth_cache, broker_authz_users(b, c), user, pw, plen, now)) {
		*v = (connect_verdict){ROOST_AUTH_ALLOW, 0, NULL};
		return v->verdict;
	}
	if (b->n_auth_pending >= MAX_PENDING) {
		v->why = "too many logins being checked at once";
		return v->verdict;
	}
	connect_pending *p = pending_new(c, user, pw, plen, pkt, len, gen_id);
	if (!p)
		return v->verdict;
	uint64_t wait = roost_login_backoff_delay(b->login_backoff, user, p->host, now);
	if (wait) {
		struct timeval tv = {.tv_sec = (time_t)(wait / 1000), .tv_usec = (suseconds_t)(wait % 1000) * 1000};
		p->delay = evtimer_new(b->base, on_delay, p);
		if (!p->delay || evtimer_add(p->delay, &tv) != 0) {
			pending_free(p);
			return v->verdict;
		}
		roost_log_info(b->log, "client - (%s): login as '%s' waits %llu ms after failed logins", c->addr, user,
		               (unsigned long long)wait);
	} else if (!submit(p, c)) {
		pending_free(p);
		return v->verdict;
	}
	/* Suspended: nothing more is read until the verdict. */
	c->state = CONN_AUTHENTICATING;
	bufferevent_disable(c->bev, EV_READ);
	*v = (connect_verdict){ROOST_AUTH_PENDING, 0, NULL};
	return v->verdict;
}

void broker_connect_auth_reloaded(roost_broker *b)
{
	b->auth_epoch++;
	if (b->auth_cache)
		roost_auth_cache_clear(b->auth_cache);
}

void broker_connect_auth_free(roost_broker *b)
{
	broker_auth_pool_free(b->auth_pool); /* threads joined, no callback after this */
	b->auth_pool = NULL;
	while (b->auth_pending)
		pending_free(b->auth_pending);
	roost_auth_cache_free(b->auth_cache);
	b->auth_cache = NULL;
	roost_login_backoff_free(b->login_backoff);
	b->login_backoff = NULL;
}
