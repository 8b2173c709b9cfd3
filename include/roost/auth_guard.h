/*
 * auth_guard.h — two small tables in front of the costly password check.
 *
 *  - A cache of successful verifications: a device that reconnects every
 *    few seconds does not cost a PBKDF2 run (15 ms here, ~100 ms on a Pi)
 *    each time. Entries are keyed by HMAC-SHA256 under a random per-process
 *    key over (scope, user name, password), so the table holds no password
 *    and nothing an attacker could test guesses against offline. scope
 *    tells user tables apart (the broker passes the password db); the
 *    broker clears the cache whenever the password files are reloaded.
 *    Entries expire after ttl_ms.
 *  - A backoff table of failed logins per (user name, address): after the
 *    k-th failure in a row the next check of that pair waits
 *    ROOST_LOGIN_BACKOFF_MIN_MS * 2^(k-1), at most ROOST_LOGIN_BACKOFF_MAX_MS;
 *    a success resets the pair. Another user from the same address (many
 *    devices behind one NAT, Home Assistant in Docker) is never delayed.
 *
 * Both are pure (no I/O, no threads, no clock: the caller passes now_ms, so
 * tests use a fake clock), bounded (the oldest entry goes first when full)
 * and used from the broker's loop thread only. Strings are borrowed.
 */
#ifndef ROOST_AUTH_GUARD_H
#define ROOST_AUTH_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roost/error.h"

typedef struct roost_auth_cache roost_auth_cache;

/* NULL when out of memory or when no random key could be drawn. */
roost_auth_cache *roost_auth_cache_new(size_t max_entries, uint64_t ttl_ms);
void roost_auth_cache_free(roost_auth_cache *c);
/* True when (scope, user, password) was added within ttl_ms before now_ms. */
bool roost_auth_cache_hit(roost_auth_cache *c, const void *scope, const char *user, const void *password,
                          size_t len, uint64_t now_ms);
/* Remember a verified (scope, user, password) from now_ms. */
roost_err roost_auth_cache_add(roost_auth_cache *c, const void *scope, const char *user, const void *password,
                               size_t len, uint64_t now_ms);
void roost_auth_cache_clear(roost_auth_cache *c);
size_t roost_auth_cache_count(const roost_auth_cache *c);

#define ROOST_LOGIN_BACKOFF_MIN_MS 500u
#define ROOST_LOGIN_BACKOFF_MAX_MS 30000u
/* A pair with no failure for this long is forgotten (its count restarts). */
#define ROOST_LOGIN_BACKOFF_FORGET_MS (10u * 60u * 1000u)

typedef struct roost_login_backoff roost_login_backoff;

roost_login_backoff *roost_login_backoff_new(size_t max_entries);
void roost_login_backoff_free(roost_login_backoff *t);
/* Milliseconds (user, addr) must still wait before its password is checked;
 * 0 when it need not. addr is the peer's address without the port. */
uint64_t roost_login_backoff_delay(roost_login_backoff *t, const char *user, const char *addr, uint64_t now_ms);
/* A failed check at now_ms: the pair's delay doubles (from MIN to MAX). */
void roost_login_backoff_failed(roost_login_backoff *t, const char *user, const char *addr, uint64_t now_ms);
/* A successful one: the pair starts afresh. */
void roost_login_backoff_succeeded(roost_login_backoff *t, const char *user, const char *addr);
size_t roost_login_backoff_count(const roost_login_backoff *t);

#endif
