/*
 * auth.h — users and passwords: Mosquitto's password_file, read and written.
 *
 * The file holds one `username:hash` line per user; blank lines and lines
 * whose first non-blank character is '#' are ignored, blanks around the
 * username and the hash are trimmed (as Mosquitto does), "\r\n" endings are
 * accepted. Two hash forms exist, both with standard base64 (with padding):
 *
 *   $7$<iterations>$<salt>$<hash>  PBKDF2-HMAC-SHA512, 12-byte salt, 64-byte
 *                                  hash; Mosquitto 2.x writes 101 iterations,
 *                                  roost writes ROOST_AUTH_DEFAULT_ITERATIONS.
 *   $6$<salt>$<hash>               legacy (Mosquitto <= 1.6): SHA-512 of
 *                                  password || salt, once; 12-byte salt.
 *
 * Anything else is an error for that line: plain-text passwords, other hash
 * types, bad base64, a salt or hash of the wrong size, a username given twice.
 * The loader never stops at the first problem: every error is collected as
 * "file:line: message" in the same roost_config_errors list the config module
 * uses, so one printer reports config, password and ACL files alike.
 *
 * A loaded roost_auth_db is immutable; a reload builds a new one and the
 * broker swaps pointers, so a check never sees a half-loaded file. The db
 * owns every string and hash in it; roost_auth_free() releases all of it.
 *
 * Checking (roost_auth_check) is pure — no I/O, no allocation of ours — and
 * does the same work whether or not the user exists: an unknown user is
 * hashed against a dummy entry as costly as the file's most expensive entry
 * (roost's default cost when the file is empty), and hashes are compared with
 * CRYPTO_memcmp, so probing usernames learns nothing from the answer and, in
 * a file written by one tool, nothing from the timing either.
 *
 * Writing (used by `roost passwd`): roost_auth_hash_new() makes a new $7$
 * hash with a random salt; roost_auth_edit() rewrites the text of a password
 * file to add, replace or delete one user, leaving every other line byte for
 * byte as it was. Neither touches the file system.
 */
#ifndef ROOST_AUTH_H
#define ROOST_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "roost/config.h"
#include "roost/error.h"

/*
 * PBKDF2 iterations written by roost passwd. Measured with OpenSSL 3.0 on
 * the development machine (AMD EPYC, one core): 10 000 -> 7.2 ms, 20 000 ->
 * 14.6 ms, 50 000 -> 45 ms (medians of 51). A Raspberry Pi 4 is roughly 5-8x
 * slower, so one verification there costs about 75-120 ms: unnoticeable at
 * CONNECT, yet 200x Mosquitto's 101 for an attacker holding the file.
 */
#define ROOST_AUTH_DEFAULT_ITERATIONS 20000
/* Upper bound accepted in a file and by -I: a bigger count is a typo, and
 * every CONNECT would stall the broker's single thread for seconds. */
#define ROOST_AUTH_MAX_ITERATIONS 10000000
#define ROOST_AUTH_SALT_LEN 12
#define ROOST_AUTH_HASH_LEN 64
/* MQTT strings are at most 65535 bytes [MQTT-1.5.3]. */
#define ROOST_AUTH_MAX_FIELD 65535

typedef struct roost_auth_db roost_auth_db;

/*
 * Parse the password file at path. On success *out is a new db (possibly
 * with no users) and errs->count is 0. On failure returns ROOST_ERR_CONFIG
 * (every problem is in *errs), ROOST_ERR_IO (cannot read; one error with
 * line 0) or ROOST_ERR_NOMEM (errs may be partial), and *out is NULL. *errs is
 * reset on entry; the caller frees it with roost_config_errors_cleanup().
 */
roost_err roost_auth_load_file(const char *path, roost_auth_db **out, roost_config_errors *errs);

/* The same from memory; name is used in error messages. text may hold NULs
 * (each is an error on its line) and need not be NUL-terminated. */
roost_err roost_auth_load_string(const char *name, const char *text, size_t len,
                                 roost_auth_db **out, roost_config_errors *errs);

void roost_auth_free(roost_auth_db *db);

/* Number of users in the file. */
size_t roost_auth_count(const roost_auth_db *db);

/*
 * True when username is in the db and password (len bytes, may hold NULs,
 * may be NULL when len is 0) hashes to its stored hash. Always computes one
 * hash of the cost of a real entry, even for an unknown or NULL username, and
 * compares in constant time. Thread-safe on a shared db (no mutation).
 */
bool roost_auth_check(const roost_auth_db *db, const char *username, const char *password, size_t len);

/*
 * One user's stored credential, copied out of a db, so that a worker thread
 * can verify a password without a reference to the db (a reload frees it).
 * known is false for an unknown user: the copy is then the db's dummy, as
 * costly as a real entry, and never verifies.
 */
typedef struct roost_auth_cred {
	int kind;        /* 6 or 7: the $N$ of the line */
	int iterations;  /* $7$ only */
	unsigned char salt[ROOST_AUTH_SALT_LEN];
	unsigned char hash[ROOST_AUTH_HASH_LEN];
	bool known;
} roost_auth_cred;

/* Copy username's credential (or the dummy) into *out; cheap, no hashing. */
void roost_auth_lookup(const roost_auth_db *db, const char *username, roost_auth_cred *out);

/* The costly half of roost_auth_check: hash password (len bytes) with c's
 * salt and cost and compare in constant time. Thread-safe, pure. */
bool roost_auth_cred_verify(const roost_auth_cred *c, const char *password, size_t len);

/*
 * A new "$7$<iterations>$<salt>$<hash>" string for password with a fresh
 * random 12-byte salt (RAND_bytes). iterations 1..ROOST_AUTH_MAX_ITERATIONS.
 * *out is owned by the caller (roost_free). ROOST_ERR_INVALID for a bad
 * argument, ROOST_ERR_IO when OpenSSL fails, ROOST_ERR_NOMEM.
 */
roost_err roost_auth_hash_new(const char *password, size_t len, int iterations, char **out);

/*
 * Whether username can be written to a password file and read back as the
 * same name: 1..65535 bytes of valid UTF-8, no ':' (the separator), no
 * control characters, no leading/trailing blank (the reader trims them) and
 * no leading '#' (the reader would see a comment).
 */
bool roost_auth_username_valid(const char *username);

/*
 * Rewrite the text of a password file for one user. With hash non-NULL the
 * user's line becomes "username:hash" in place (appended at the end when the
 * user is new); with hash NULL the user's line is removed (ROOST_ERR_NOT_FOUND
 * when there is none). Every other line — other users, comments, blank or
 * even malformed lines — is kept byte for byte and in order; a later
 * duplicate line of the same user is dropped so the result loads. *out is a
 * new NUL-terminated buffer (roost_free) of *out_len bytes ending in '\n'
 * unless empty. ROOST_ERR_INVALID for an invalid username or a hash holding
 * a line break.
 */
roost_err roost_auth_edit(const char *text, size_t len, const char *username, const char *hash,
                          char **out, size_t *out_len);

/*
 * Who may connect without a user name. A client is "on this machine" when
 * its PEER address (not the listener's) is loopback: 127.0.0.0/8, ::1 or
 * ::ffff:127.0.0.0/104 (an IPv4 loopback client on a dual-stack socket).
 * Pure: no I/O, any address family (non-IP families are not loopback).
 */
bool roost_auth_addr_is_loopback(const struct sockaddr *sa);

/*
 * The anonymous policy: allow_anonymous 1 admits everyone, 0 no one, -1
 * (not set, the default) admits clients on this machine only, whether or not
 * users exist, so a household's `mosquitto_pub -h 127.0.0.1` keeps working
 * after the first LAN user is added.
 */
bool roost_auth_anonymous_allowed(int allow_anonymous, bool peer_loopback);

#endif
