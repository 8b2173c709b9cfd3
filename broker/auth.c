/*
 * auth.c — Mosquitto-compatible password files: load, check, hash, edit.
 *
 * Compatibility notes (Mosquitto 2.0 src/security_default.c and
 * apps/mosquitto_passwd, read for semantics only):
 *   - $7$ is PKCS5_PBKDF2_HMAC(password, salt, iterations, SHA-512, 64 bytes);
 *     $6$ is SHA-512(password || salt). Mosquitto refuses any salt that does
 *     not decode to 12 bytes or hash that does not decode to 64, so we do too:
 *     a file roost accepts is a file Mosquitto accepts.
 *   - Mosquitto hashes strlen(password), i.e. stops at a NUL; MQTT passwords
 *     are binary data, so we hash all len bytes. The two agree for every
 *     password that can be typed into mosquitto_passwd.
 *   - Mosquitto skips a bad line with a log warning and keeps running with
 *     fewer users; we refuse the whole file with every error listed, because a
 *     user silently missing after a reload is worse than a failed reload that
 *     says why (the broker keeps the previous db then).
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <netinet/in.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "roost/alloc.h"
#include "roost/auth.h"
#include "roost/codec.h"
#include "roost/uthash_cfg.h"

#include "loader.h"

/* A password file bigger than this is not a password file. */
/* Untrusted text quoted in an error message is cut after this many bytes. */

enum hash_kind {
	KIND_SHA512 = 6, /* $6$ */
	KIND_PBKDF2 = 7, /* $7$ */
};

/* kind is enum hash_kind; iterations for $7$ only; known unused inside a db. */
typedef roost_auth_cred cred;

typedef struct user {
	char *name;
	int line;
	cred cred;
	UT_hash_handle hh;
} user;

struct roost_auth_db {
	user *users;    /* uthash by name */
	size_t count;
	cred dummy;     /* hashed for unknown users; never matches */
};

/* ---- errors ------------------------------------------------------------- */


/* ---- small text helpers ------------------------------------------------- */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static void trim(const char **s, size_t *n)
{
	while (*n > 0 && is_blank(**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && is_blank((*s)[*n - 1]))
		(*n)--;
}

static bool is_b64(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
	       c == '/';
}

/*
 * Strict standard base64 with padding: length a multiple of 4, '=' only as
 * the last one or two characters. Returns -1 when the text is not base64,
 * else the decoded length; the bytes are written to out only when that
 * length is exactly want (want <= ROOST_AUTH_HASH_LEN).
 */
static long b64_decode(const char *s, size_t n, unsigned char *out, size_t want)
{
	size_t pad = 0;

	assert(want <= ROOST_AUTH_HASH_LEN);
	if (n == 0 || n % 4 != 0 || n > INT_MAX)
		return -1;
	if (s[n - 1] == '=')
		pad = s[n - 2] == '=' ? 2 : 1;
	for (size_t i = 0; i < n - pad; i++)
		if (!is_b64(s[i]))
			return -1;
	size_t full = n / 4 * 3;
	if (full - pad != want)
		return (long)(full - pad);
	/* EVP_DecodeBlock writes whole groups (padding bytes included). */
	unsigned char tmp[ROOST_AUTH_HASH_LEN + 3];
	int r = EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)n);
	if (r < 0 || (size_t)r != full)
		return -1;
	memcpy(out, tmp, want);
	OPENSSL_cleanse(tmp, sizeof tmp);
	return (long)want;
}

/* ---- hashing ------------------------------------------------------------ */

/* out receives ROOST_AUTH_HASH_LEN bytes. false when OpenSSL fails. */
static bool compute(const cred *c, const char *pw, size_t len, unsigned char *out)
{
	if (!pw)
		pw = "";
	if (len > INT_MAX)
		return false;
	if (c->kind == KIND_PBKDF2)
		return PKCS5_PBKDF2_HMAC(pw, (int)len, c->salt, sizeof c->salt, c->iterations, EVP_sha512(),
		                         ROOST_AUTH_HASH_LEN, out) == 1;

	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int outlen = 0;
	bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha512(), NULL) == 1 && EVP_DigestUpdate(ctx, pw, len) == 1 &&
	          EVP_DigestUpdate(ctx, c->salt, sizeof c->salt) == 1 && EVP_DigestFinal_ex(ctx, out, &outlen) == 1 &&
	          outlen == ROOST_AUTH_HASH_LEN;
	EVP_MD_CTX_free(ctx);
	return ok;
}

/* ---- loading ------------------------------------------------------------ */

/*
 * Parse "$7$<iterations>$<salt>$<hash>" or "$6$<salt>$<hash>" into *c.
 * Returns false after adding an error for the line.
 */
static bool parse_hash(load_state *st, int line, const char *s, size_t n, cred *c)
{
	char q[LOADER_QUOTE_BUF];
	const char *end = s + n;
	const char *fields[4];
	size_t lens[4];
	size_t nf = 0;

	if (n < 3 || s[0] != '$' || (s[1] != '6' && s[1] != '7') || s[2] != '$') {
		const char *t = memchr(s + 1, '$', n > 1 ? n - 1 : 0);
		if (n > 1 && s[0] == '$' && t)
			loader_error(st, line, "unknown password hash type '%s' (roost reads $7$ PBKDF2-SHA512 and $6$ SHA-512)",
			          loader_quote(q, sizeof q, s, (size_t)(t - s) + 1));
		else
			loader_error(st, line, "password is not a hash (expected $7$... or $6$...; "
			                    "write it with `roost passwd` or mosquitto_passwd)");
		return false;
	}
	c->kind = s[1] == '7' ? KIND_PBKDF2 : KIND_SHA512;
	size_t want = c->kind == KIND_PBKDF2 ? 3 : 2;
	for (const char *p = s + 3; nf < 4;) {
		const char *d = memchr(p, '$', (size_t)(end - p));
		fields[nf] = p;
		lens[nf] = (size_t)((d ? d : end) - p);
		nf++;
		if (!d)
			break;
		p = d + 1;
	}
	if (nf != want) {
		loader_error(st, line, "$%c$ hash must have %zu '$'-separated fields after the type, found %s", s[1], want,
		          nf > want ? "more" : "fewer");
		return false;
	}
	size_t f = 0;
	if (c->kind == KIND_PBKDF2) {
		long long it = 0;
		bool ok = lens[0] > 0 && lens[0] <= 9;
		for (size_t i = 0; ok && i < lens[0]; i++) {
			if (fields[0][i] < '0' || fields[0][i] > '9')
				ok = false;
			else
				it = it * 10 + (fields[0][i] - '0');
		}
		if (!ok || it < 1 || it > ROOST_AUTH_MAX_ITERATIONS) {
			loader_error(st, line, "$7$ iterations must be a number from 1 to %d, got '%s'", ROOST_AUTH_MAX_ITERATIONS,
			          loader_quote(q, sizeof q, fields[0], lens[0]));
			return false;
		}
		c->iterations = (int)it;
		f = 1;
	} else {
		c->iterations = 1;
	}
	long sl = b64_decode(fields[f], lens[f], c->salt, sizeof c->salt);
	if (sl < 0) {
		loader_error(st, line, "salt is not valid base64: '%s'", loader_quote(q, sizeof q, fields[f], lens[f]));
		return false;
	}
	if (sl != ROOST_AUTH_SALT_LEN) {
		loader_error(st, line, "salt must decode to %d bytes (Mosquitto's format), got %ld", ROOST_AUTH_SALT_LEN, sl);
		return false;
	}
	f++;
	long hl = b64_decode(fields[f], lens[f], c->hash, sizeof c->hash);
	if (hl < 0) {
		loader_error(st, line, "hash is not valid base64: '%s'", loader_quote(q, sizeof q, fields[f], lens[f]));
		return false;
	}
	if (hl != ROOST_AUTH_HASH_LEN) {
		loader_error(st, line, "hash must decode to %d bytes, got %ld", ROOST_AUTH_HASH_LEN, hl);
		return false;
	}
	return true;
}

static void user_free(user *u)
{
	if (!u)
		return;
	roost_free(u->name);
	OPENSSL_cleanse(&u->cred, sizeof u->cred);
	roost_free(u);
}

/* One non-blank, non-comment line. */
static void parse_line(load_state *st, roost_auth_db *db, int line, const char *s, size_t n)
{
	char q[LOADER_QUOTE_BUF];
	const char *colon = memchr(s, ':', n);

	if (memchr(s, '\0', n)) {
		loader_error(st, line, "line contains a NUL byte");
		return;
	}
	if (!colon) {
		loader_error(st, line, "expected 'username:hash', found no ':'");
		return;
	}
	const char *name = s;
	size_t name_len = (size_t)(colon - s);
	const char *h = colon + 1;
	size_t hlen = n - name_len - 1;
	trim(&name, &name_len);
	trim(&h, &hlen);
	if (name_len == 0) {
		loader_error(st, line, "empty username before ':'");
		return;
	}
	if (name_len > ROOST_AUTH_MAX_FIELD) {
		loader_error(st, line, "username longer than %d bytes", ROOST_AUTH_MAX_FIELD);
		return;
	}
	if (hlen == 0) {
		loader_error(st, line, "user '%s' has no password hash after ':'", loader_quote(q, sizeof q, name, name_len));
		return;
	}
	cred c;
	if (!parse_hash(st, line, h, hlen, &c))
		return;

	user *u;
	HASH_FIND(hh, db->users, name, name_len, u);
	if (u) {
		loader_error(st, line, "duplicate user '%s' (first on line %d)", loader_quote(q, sizeof q, name, name_len), u->line);
		return;
	}
	u = roost_calloc(1, sizeof *u);
	if (!u || !(u->name = roost_strndup(name, name_len))) {
		roost_free(u);
		st->fatal = ROOST_ERR_NOMEM;
		return;
	}
	u->line = line;
	u->cred = c;
	OPENSSL_cleanse(&c, sizeof c);
	roost_uthash_oom_flag = 0;
	HASH_ADD_KEYPTR(hh, db->users, u->name, name_len, u);
	if (roost_uthash_oom_flag) {
		user_free(u);
		st->fatal = ROOST_ERR_NOMEM;
		return;
	}
	db->count++;
	/*
	 * The dummy for unknown users costs as much as the dearest entry: the
	 * first entry replaces roost's default, then any $7$ beats $6$ and more
	 * iterations beat fewer.
	 */
	if (db->count == 1 || (u->cred.kind == KIND_PBKDF2 && (db->dummy.kind != KIND_PBKDF2 ||
	                                                        u->cred.iterations > db->dummy.iterations))) {
		db->dummy.kind = u->cred.kind;
		db->dummy.iterations = u->cred.iterations;
	}
}

roost_err roost_auth_load_string(const char *name, const char *text, size_t len, roost_auth_db **out,
                                 roost_config_errors *errs)
{
	load_state st = {.name = name ? name : "password_file", .errs = errs};
	roost_auth_db *db = NULL;

	assert(out && errs);
	*out = NULL;
	errs->items = NULL;
	errs->count = 0;
	if (!text && len > 0)
		return ROOST_ERR_INVALID;
	db = roost_calloc(1, sizeof *db);
	if (!db)
		return ROOST_ERR_NOMEM;
	/* The dummy stands for roost's own default until the file says more. */
	db->dummy.kind = KIND_PBKDF2;
	db->dummy.iterations = ROOST_AUTH_DEFAULT_ITERATIONS;
	if (RAND_bytes(db->dummy.salt, sizeof db->dummy.salt) != 1)
		memset(db->dummy.salt, 0x5a, sizeof db->dummy.salt);

	int line = 0;
	for (size_t pos = 0; pos < len && !st.fatal;) {
		const char *s = text + pos;
		const char *nl = memchr(s, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - s) : len - pos;
		pos += n + (nl ? 1 : 0);
		line++;
		const char *t = s;
		size_t tn = n;
		trim(&t, &tn);
		if (tn == 0 || t[0] == '#')
			continue;
		parse_line(&st, db, line, t, tn);
	}
	if (st.fatal || errs->count > 0) {
		roost_auth_free(db);
		return st.fatal ? st.fatal : ROOST_ERR_CONFIG;
	}
	*out = db;
	return ROOST_OK;
}


roost_err roost_auth_load_file(const char *path, roost_auth_db **out, roost_config_errors *errs)
{
	char *text = NULL;
	size_t len = 0;
	int e;

	assert(path && out && errs);
	*out = NULL;
	errs->items = NULL;
	errs->count = 0;
	roost_err err = loader_read_all(path, &text, &len, &e);
	if (err == ROOST_ERR_IO) {
		char msg[512];
		snprintf(msg, sizeof msg, "cannot read password file: %s", strerror(e));
		if (roost_config_errors_add(errs, path, 0, msg) != 0)
			return ROOST_ERR_NOMEM;
	}
	if (err)
		return err;
	err = roost_auth_load_string(path, text, len, out, errs);
	OPENSSL_cleanse(text, len);
	roost_free(text);
	return err;
}

void roost_auth_free(roost_auth_db *db)
{
	user *u, *tmp;

	if (!db)
		return;
	HASH_ITER(hh, db->users, u, tmp) {
		HASH_DEL(db->users, u);
		user_free(u);
	}
	roost_free(db);
}

size_t roost_auth_count(const roost_auth_db *db)
{
	return db ? db->count : 0;
}

/* ---- checking ----------------------------------------------------------- */

void roost_auth_lookup(const roost_auth_db *db, const char *username, roost_auth_cred *out)
{
	const user *u = NULL;
	if (db && username)
		HASH_FIND(hh, db->users, username, strlen(username), u);
	/* Same work for every caller: an unknown user hashes against the dummy. */
	if (u || db)
		*out = u ? u->cred : db->dummy;
	else
		memset(out, 0, sizeof *out);
	out->known = u != NULL;
}

bool roost_auth_cred_verify(const roost_auth_cred *c, const char *password, size_t len)
{
	unsigned char got[ROOST_AUTH_HASH_LEN];
	if (c->kind != KIND_PBKDF2 && c->kind != KIND_SHA512)
		return false; /* no db at all */
	bool ok = compute(c, password, len, got);
	bool same = CRYPTO_memcmp(got, c->hash, sizeof got) == 0;
	OPENSSL_cleanse(got, sizeof got);
	return ok & same & c->known;
}

bool roost_auth_check(const roost_auth_db *db, const char *username, const char *password, size_t len)
{
	roost_auth_cred c;
	if (!db)
		return false;
	roost_auth_lookup(db, username, &c);
	bool ok = roost_auth_cred_verify(&c, password, len);
	OPENSSL_cleanse(&c, sizeof c);
	return ok;
}

/* ---- writing ------------------------------------------------------------ */

roost_err roost_auth_hash_new(const char *password, size_t len, int iterations, char **out)
{
	cred c = {.kind = KIND_PBKDF2, .iterations = iterations};
	/* 4 * ceil(n / 3) characters each, plus NUL. */
	unsigned char salt64[(ROOST_AUTH_SALT_LEN + 2) / 3 * 4 + 1];
	unsigned char hash64[(ROOST_AUTH_HASH_LEN + 2) / 3 * 4 + 1];

	assert(out);
	*out = NULL;
	if ((!password && len > 0) || len > ROOST_AUTH_MAX_FIELD || iterations < 1 ||
	    iterations > ROOST_AUTH_MAX_ITERATIONS)
		return ROOST_ERR_INVALID;
	if (RAND_bytes(c.salt, sizeof c.salt) != 1 || !compute(&c, password, len, c.hash))
		return ROOST_ERR_IO;
	EVP_EncodeBlock(salt64, c.salt, sizeof c.salt);
	EVP_EncodeBlock(hash64, c.hash, sizeof c.hash);
	OPENSSL_cleanse(&c, sizeof c);
	size_t n = 3 + 10 + 1 + sizeof salt64 + 1 + sizeof hash64;
	char *s = roost_malloc(n);
	if (!s)
		return ROOST_ERR_NOMEM;
	snprintf(s, n, "$7$%d$%s$%s", iterations, (const char *)salt64, (const char *)hash64);
	*out = s;
	return ROOST_OK;
}

bool roost_auth_username_valid(const char *username)
{
	size_t n;

	if (!username || (n = strlen(username)) == 0 || n > ROOST_AUTH_MAX_FIELD)
		return false;
	if (!roost_utf8_valid((const uint8_t *)username, n))
		return false;
	if (username[0] == '#' || is_blank(username[0]) || is_blank(username[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)username[i];
		if (c == ':' || c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

typedef struct outbuf {
	char *p;
	size_t n, cap;
	bool nomem;
} outbuf;

static void put(outbuf *b, const char *s, size_t n)
{
	if (b->nomem)
		return;
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->n + n + 1)
			cap *= 2;
		char *p = roost_realloc(b->p, cap);
		if (!p) {
			b->nomem = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

/* The trimmed username of a user line, or false for blank/comment/other. */
static bool line_user(const char *s, size_t n, const char **name, size_t *name_len)
{
	trim(&s, &n);
	if (n == 0 || s[0] == '#')
		return false;
	const char *colon = memchr(s, ':', n);
	if (!colon)
		return false;
	*name = s;
	*name_len = (size_t)(colon - s);
	trim(name, name_len);
	return true;
}

roost_err roost_auth_edit(const char *text, size_t len, const char *username, const char *hash, char **out,
                          size_t *out_len)
{
	outbuf b = {0};
	bool found = false;
	size_t ulen;

	assert(out && out_len);
	*out = NULL;
	*out_len = 0;
	if ((!text && len > 0) || !roost_auth_username_valid(username) || (hash && strpbrk(hash, "\r\n")))
		return ROOST_ERR_INVALID;
	ulen = strlen(username);
	for (size_t pos = 0; pos < len;) {
		const char *s = text + pos;
		const char *nl = memchr(s, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - s) : len - pos;
		pos += n + (nl ? 1 : 0);
		/* The line's own terminator: "\n", "\r\n", or none on the last line. */
		size_t body = n;
		const char *eol = "\n";
		if (body > 0 && s[body - 1] == '\r') {
			body--;
			eol = "\r\n";
		}
		const char *name;
		size_t name_len;
		if (line_user(s, body, &name, &name_len) && name_len == ulen && memcmp(name, username, ulen) == 0) {
			if (hash && !found) {
				put(&b, username, ulen);
				put(&b, ":", 1);
				put(&b, hash, strlen(hash));
				put(&b, eol, strlen(eol));
			}
			found = true;
			continue;
		}
		put(&b, s, body);
		put(&b, eol, strlen(eol));
	}
	if (hash && !found) {
		put(&b, username, ulen);
		put(&b, ":", 1);
		put(&b, hash, strlen(hash));
		put(&b, "\n", 1);
	}
	if (!hash && !found) {
		roost_free(b.p);
		return ROOST_ERR_NOT_FOUND;
	}
	if (b.nomem) {
		roost_free(b.p);
		return ROOST_ERR_NOMEM;
	}
	if (!b.p && !(b.p = roost_calloc(1, 1)))
		return ROOST_ERR_NOMEM;
	*out = b.p;
	*out_len = b.n;
	return ROOST_OK;
}

/* ---- who is on this machine -------------------------------------------- */

bool roost_auth_addr_is_loopback(const struct sockaddr *sa)
{
	if (!sa)
		return false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		/* ::ffff:127.0.0.0/104: byte 12 is the first IPv4 octet. */
		return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

bool roost_auth_anonymous_allowed(int allow_anonymous, bool peer_loopback)
{
	return allow_anonymous == 1 || (allow_anonymous == -1 && peer_loopback);
}
