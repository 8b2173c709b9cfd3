/*
 * auth_guard.c — the verification cache and the failed-login backoff table
 * (see include/roost/auth_guard.h). uthash keeps insertion order, so the
 * head of each table is its oldest entry: the one evicted when full.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "roost/alloc.h"
#include "roost/auth_guard.h"
#include "roost/uthash_cfg.h"

#define DIGEST_LEN 32 /* SHA-256 */

/* ---- cache -------------------------------------------------------------- */

typedef struct cache_entry {
	unsigned char key[DIGEST_LEN];
	uint64_t expires_ms;
	UT_hash_handle hh;
} cache_entry;

struct roost_auth_cache {
	cache_entry *entries;
	size_t max;
	uint64_t ttl_ms;
	unsigned char secret[32];
};

roost_auth_cache *roost_auth_cache_new(size_t max_entries, uint64_t ttl_ms)
{
	roost_auth_cache *c = roost_calloc(1, sizeof *c);
	if (!c)
		return NULL;
	if (RAND_bytes(c->secret, sizeof c->secret) != 1) {
		roost_free(c);
		return NULL;
	}
	c->max = max_entries ? max_entries : 1;
	c->ttl_ms = ttl_ms;
	return c;
}

static void drop(roost_auth_cache *c, cache_entry *e)
{
	HASH_DEL(c->entries, e);
	roost_free(e);
}

void roost_auth_cache_clear(roost_auth_cache *c)
{
	cache_entry *e, *tmp;
	HASH_ITER(hh, c->entries, e, tmp)
		drop(c, e);
}

void roost_auth_cache_free(roost_auth_cache *c)
{
	if (!c)
		return;
	roost_auth_cache_clear(c);
	OPENSSL_cleanse(c->secret, sizeof c->secret);
	roost_free(c);
}

size_t roost_auth_cache_count(const roost_auth_cache *c)
{
	return HASH_COUNT(c->entries);
}

/* HMAC-SHA256(secret, scope || user || NUL || password) into out. */
static bool digest(const roost_auth_cache *c, const void *scope, const char *user, const void *pw, size_t len,
                   unsigned char out[DIGEST_LEN])
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	char sha256[] = "SHA256";
	OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", sha256, 0), OSSL_PARAM_construct_end()};
	size_t n = 0;
	bool ok = ctx && EVP_MAC_init(ctx, c->secret, sizeof c->secret, params) == 1 &&
	          EVP_MAC_update(ctx, (const unsigned char *)&scope, sizeof scope) == 1 &&
	          EVP_MAC_update(ctx, (const unsigned char *)user, strlen(user) + 1) == 1 &&
	          (len == 0 || EVP_MAC_update(ctx, pw, len) == 1) && EVP_MAC_final(ctx, out, &n, DIGEST_LEN) == 1 &&
	          n == DIGEST_LEN;
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return ok;
}

/* The entry of (scope, user, password), or NULL; *k receives its key.
 * false when the key could not be computed. */
static bool lookup(roost_auth_cache *c, const void *scope, const char *user, const void *pw, size_t len,
                   unsigned char k[DIGEST_LEN], cache_entry **e)
{
	*e = NULL;
	if (!digest(c, scope, user, pw, len, k))
		return false;
	HASH_FIND(hh, c->entries, k, DIGEST_LEN, *e);
	return true;
}

bool roost_auth_cache_hit(roost_auth_cache *c, const void *scope, const char *user, const void *password,
                          size_t len, uint64_t now_ms)
{
	unsigned char k[DIGEST_LEN];
	cache_entry *e;
	lookup(c, scope, user, password, len, k, &e);
	if (e && e->expires_ms <= now_ms) {
		drop(c, e);
		e = NULL;
	}
	return e != NULL;
}

roost_err roost_auth_cache_add(roost_auth_cache *c, const void *scope, const char *user, const void *password,
                               size_t len, uint64_t now_ms)
{
	unsigned char k[DIGEST_LEN];
	cache_entry *e;
	if (!lookup(c, scope, user, password, len, k, &e))
		return ROOST_ERR_IO;
	if (e)
		drop(c, e); /* re-added at the tail: the newest */
	else if (HASH_COUNT(c->entries) >= c->max)
		drop(c, c->entries); /* the oldest */
	if (!(e = roost_calloc(1, sizeof *e)))
		return ROOST_ERR_NOMEM;
	memcpy(e->key, k, sizeof e->key);
	e->expires_ms = now_ms + c->ttl_ms;
	HASH_ADD(hh, c->entries, key, sizeof e->key, e);
	return ROOST_OK;
}

/* ---- backoff ------------------------------------------------------------ */

typedef struct backoff_entry {
	uint32_t failures;   /* in a row */
	uint64_t until_ms;   /* no check before this */
	uint64_t last_ms;    /* of the last failure */
	UT_hash_handle hh;
	size_t key_len;
	char key[];          /* user NUL addr */
} backoff_entry;

struct roost_login_backoff {
	backoff_entry *entries;
	size_t max;
};

roost_login_backoff *roost_login_backoff_new(size_t max_entries)
{
	roost_login_backoff *t = roost_calloc(1, sizeof *t);
	if (t)
		t->max = max_entries ? max_entries : 1;
	return t;
}

static void forget(roost_login_backoff *t, backoff_entry *e)
{
	HASH_DEL(t->entries, e);
	roost_free(e);
}

void roost_login_backoff_free(roost_login_backoff *t)
{
	if (!t)
		return;
	backoff_entry *e, *tmp;
	HASH_ITER(hh, t->entries, e, tmp)
		forget(t, e);
	roost_free(t);
}

size_t roost_login_backoff_count(const roost_login_backoff *t)
{
	return HASH_COUNT(t->entries);
}

/* The entry of (user, addr), or NULL; a forgotten one is removed. key
 * receives "user NUL addr" (cap bytes) for an insert. */
static backoff_entry *find(roost_login_backoff *t, const char *user, const char *addr, uint64_t now_ms,
                           char *key, size_t cap, size_t *klen)
{
	size_t ul = strlen(user), al = strlen(addr);
	backoff_entry *e = NULL;
	*klen = 0;
	if (ul + 1 + al > cap)
		return NULL; /* a 64 KiB user name: not tracked (the check still runs) */
	memcpy(key, user, ul + 1);
	memcpy(key + ul + 1, addr, al);
	*klen = ul + 1 + al;
	HASH_FIND(hh, t->entries, key, *klen, e);
	if (e && now_ms - e->last_ms >= ROOST_LOGIN_BACKOFF_FORGET_MS) {
		forget(t, e);
		e = NULL;
	}
	return e;
}

#define KEY_CAP 1024

uint64_t roost_login_backoff_delay(roost_login_backoff *t, const char *user, const char *addr, uint64_t now_ms)
{
	char key[KEY_CAP];
	size_t klen;
	backoff_entry *e = find(t, user, addr, now_ms, key, sizeof key, &klen);
	return e && e->until_ms > now_ms ? e->until_ms - now_ms : 0;
}

void roost_login_backoff_failed(roost_login_backoff *t, const char *user, const char *addr, uint64_t now_ms)
{
	char key[KEY_CAP];
	size_t klen;
	backoff_entry *e = find(t, user, addr, now_ms, key, sizeof key, &klen);
	if (!klen)
		return;
	if (e) {
		HASH_DEL(t->entries, e); /* re-added at the tail: the newest */
	} else {
		if (HASH_COUNT(t->entries) >= t->max)
			forget(t, t->entries);
		if (!(e = roost_calloc(1, sizeof *e + klen)))
			return;
		memcpy(e->key, key, klen);
		e->key_len = klen;
	}
	if (e->failures < 32)
		e->failures++;
	uint64_t delay = (uint64_t)ROOST_LOGIN_BACKOFF_MIN_MS << (e->failures - 1);
	e->until_ms = now_ms + (delay < ROOST_LOGIN_BACKOFF_MAX_MS ? delay : ROOST_LOGIN_BACKOFF_MAX_MS);
	e->last_ms = now_ms;
	HASH_ADD(hh, t->entries, key, e->key_len, e);
}

void roost_login_backoff_succeeded(roost_login_backoff *t, const char *user, const char *addr)
{
	char key[KEY_CAP];
	size_t klen;
	backoff_entry *e = find(t, user, addr, 0, key, sizeof key, &klen);
	if (e)
		forget(t, e);
}
