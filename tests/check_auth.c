/*
 * check_auth.c — password files (broker/auth.c) and `roost passwd`
 * (broker/passwd_cmd.c).
 *
 * Vectors come from Mosquitto, not from our own encoder: fixed lines written
 * by Debian's mosquitto_passwd 2.0.11, and files that mosquitto_passwd
 * writes at test time. In the other direction, files written by
 * roost_passwd_main() are loaded by a real /usr/sbin/mosquitto on a loopback
 * port and exercised with mosquitto_pub. Those programs come with the
 * mosquitto and mosquitto-clients packages, which CI installs: when they are
 * missing the tests fail and say so rather than skip.
 *
 * The interactive prompt is driven through a pseudo-terminal (forkpty), which
 * also proves that the password is not echoed.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "roost/alloc.h"
#include "roost/auth.h"
#include "roost/auth_guard.h"
#include "roost/passwd_cmd.h"

Suite *auth_suite(void);

static bool v4_loopback(const char *ip)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	ck_assert_int_eq(inet_pton(AF_INET, ip, &sin.sin_addr), 1);
	return roost_auth_addr_is_loopback((struct sockaddr *)&sin);
}

static bool v6_loopback(const char *ip)
{
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
	ck_assert_int_eq(inet_pton(AF_INET6, ip, &sin6.sin6_addr), 1);
	return roost_auth_addr_is_loopback((struct sockaddr *)&sin6);
}

/* "This machine" is 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104 (a v4
 * loopback client on a dual-stack listener); nothing else. */
START_TEST(test_peer_loopback_classification)
{
	ck_assert(v4_loopback("127.0.0.1"));
	ck_assert(v4_loopback("127.255.3.4"));
	ck_assert(!v4_loopback("128.0.0.1"));
	ck_assert(!v4_loopback("126.255.255.255"));
	ck_assert(!v4_loopback("0.0.0.0"));
	ck_assert(!v4_loopback("192.168.1.10"));
	ck_assert(!v4_loopback("198.18.0.2"));
	ck_assert(v6_loopback("::1"));
	ck_assert(!v6_loopback("::"));
	ck_assert(!v6_loopback("::2"));
	ck_assert(!v6_loopback("fe80::1"));
	ck_assert(v6_loopback("::ffff:127.0.0.1"));
	ck_assert(v6_loopback("::ffff:127.1.2.3"));
	ck_assert(!v6_loopback("::ffff:128.0.0.1"));
	ck_assert(!v6_loopback("::ffff:192.168.1.10"));
	ck_assert(!v6_loopback("::127.0.0.1")); /* IPv4-compatible, deprecated: not mapped */
	ck_assert(!v6_loopback("64:ff9b::7f00:1")); /* NAT64 of 127.0.0.1 comes from elsewhere */
	struct sockaddr_un_like { sa_family_t f; char path[20]; } un = {.f = AF_UNIX};
	ck_assert(!roost_auth_addr_is_loopback((struct sockaddr *)&un));
	ck_assert(!roost_auth_addr_is_loopback(NULL));
}
END_TEST

static char *default_path_for(const char *db)
{
	roost_config *cfg;
	ck_assert_int_eq(roost_config_defaults(&cfg), ROOST_OK);
	if (db != cfg->persistence.path) {
		roost_free(cfg->persistence.path);
		cfg->persistence.path = db ? roost_strdup(db) : NULL;
	}
	char *p = roost_passwd_default_path(cfg);
	roost_config_free(cfg);
	ck_assert_ptr_nonnull(p);
	return p;
}

#define ck_assert_default_path(db, want)                       \
	do {                                                       \
		char *got_ = default_path_for(db);                     \
		ck_assert_str_eq(got_, want);                          \
		roost_free(got_);                                      \
	} while (0)

/* `passwd` beside the store: the db's directory, the directory itself when
 * persistence.path names one, $STATE_DIRECTORY (first entry) while the path
 * is the default. */
START_TEST(test_default_password_file_is_beside_the_store)
{
	unsetenv("STATE_DIRECTORY");
	roost_config *cfg;
	ck_assert_int_eq(roost_config_defaults(&cfg), ROOST_OK);
	char *p = roost_passwd_default_path(cfg);
	ck_assert_str_eq(p, "./passwd");
	roost_free(p);
	roost_config_free(cfg);
	ck_assert_default_path("/var/lib/roost/roost.db", "/var/lib/roost/passwd");
	ck_assert_default_path("data/x.db", "data/passwd");
	ck_assert_default_path("/tmp", "/tmp/passwd"); /* a directory */
	ck_assert_default_path(NULL, "./passwd");
	setenv("STATE_DIRECTORY", "/var/lib/roost:/var/lib/other", 1);
	ck_assert_default_path("roost.db", "/var/lib/roost/passwd");
	ck_assert_default_path(NULL, "/var/lib/roost/passwd");
	ck_assert_default_path("/srv/mqtt/roost.db", "/srv/mqtt/passwd"); /* configured: wins */
	unsetenv("STATE_DIRECTORY");
}
END_TEST

/* Failed logins back off per (user, address): 0.5 s doubling to 30 s, reset
 * by a success; another user from the same address is never delayed. The
 * clock is the caller's: t stands for a fake one. */
START_TEST(test_login_backoff_doubles_caps_resets_and_is_per_user_and_address)
{
	roost_login_backoff *t = roost_login_backoff_new(100);
	uint64_t now = 1000000;
	ck_assert_uint_eq(roost_login_backoff_delay(t, "alice", "192.168.1.9", now), 0);
	uint64_t want[] = {500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		roost_login_backoff_failed(t, "alice", "192.168.1.9", now);
		ck_assert_uint_eq(roost_login_backoff_delay(t, "alice", "192.168.1.9", now), want[i]);
	}
	/* Time passes: what is left shrinks to 0. */
	ck_assert_uint_eq(roost_login_backoff_delay(t, "alice", "192.168.1.9", now + 10000), 20000);
	ck_assert_uint_eq(roost_login_backoff_delay(t, "alice", "192.168.1.9", now + 30000), 0);
	/* Behind the same NAT, bob is not delayed; alice elsewhere neither. */
	ck_assert_uint_eq(roost_login_backoff_delay(t, "bob", "192.168.1.9", now), 0);
	ck_assert_uint_eq(roost_login_backoff_delay(t, "alice", "192.168.1.10", now), 0);
	/* A name is not confused with a name+address split elsewhere. */
	roost_login_backoff_failed(t, "a", "b", now);
	ck_assert_uint_eq(roost_login_backoff_delay(t, "ab", "", now), 0);
	/* Success resets: the next failure starts at 0.5 s again. */
	roost_login_backoff_succeeded(t, "alice", "192.168.1.9");
	ck_assert_uint_eq(roost_login_backoff_delay(t, "alice", "192.168.1.9", now), 0);
	roost_login_backoff_failed(t, "alice", "192.168.1.9", now + 40000);
	ck_assert_uint_eq(roost_login_backoff_delay(t, "alice", "192.168.1.9", now + 40000), 500);
	/* Ten quiet minutes forget the pair and its count. */
	roost_login_backoff_failed(t, "alice", "192.168.1.9", now + 40000);
	uint64_t later = now + 40000 + ROOST_LOGIN_BACKOFF_FORGET_MS;
	ck_assert_uint_eq(roost_login_backoff_delay(t, "alice", "192.168.1.9", later), 0);
	roost_login_backoff_failed(t, "alice", "192.168.1.9", later);
	ck_assert_uint_eq(roost_login_backoff_delay(t, "alice", "192.168.1.9", later), 500);
	roost_login_backoff_free(t);
}
END_TEST

/* The table is bounded: the oldest pair goes first. */
START_TEST(test_login_backoff_is_bounded)
{
	roost_login_backoff *t = roost_login_backoff_new(2);
	roost_login_backoff_failed(t, "u1", "h", 10);
	roost_login_backoff_failed(t, "u2", "h", 10);
	roost_login_backoff_failed(t, "u3", "h", 10);
	ck_assert_uint_eq(roost_login_backoff_count(t), 2);
	ck_assert_uint_eq(roost_login_backoff_delay(t, "u1", "h", 10), 0);
	ck_assert_uint_eq(roost_login_backoff_delay(t, "u3", "h", 10), 500);
	roost_login_backoff_free(t);
}
END_TEST

/* Verified logins are cached per (scope, user, password) for ttl; nothing
 * else hits; clear() (a reload) forgets all; the table is bounded. */
START_TEST(test_auth_cache_hits_only_the_verified_triple_until_ttl)
{
	int db1, db2; /* two user tables: only their addresses matter */
	roost_auth_cache *c = roost_auth_cache_new(3, 60000);
	ck_assert_ptr_nonnull(c);
	ck_assert(!roost_auth_cache_hit(c, &db1, "alice", "pw", 2, 0));
	ck_assert_int_eq(roost_auth_cache_add(c, &db1, "alice", "pw", 2, 1000), ROOST_OK);
	ck_assert(roost_auth_cache_hit(c, &db1, "alice", "pw", 2, 1000));
	ck_assert(roost_auth_cache_hit(c, &db1, "alice", "pw", 2, 60999));
	ck_assert(!roost_auth_cache_hit(c, &db1, "alice", "pW", 2, 1000));
	ck_assert(!roost_auth_cache_hit(c, &db1, "alice", "pw\0", 3, 1000));
	ck_assert(!roost_auth_cache_hit(c, &db1, "alic", "epw", 3, 1000)); /* no ambiguity at the seam */
	ck_assert(!roost_auth_cache_hit(c, &db1, "bob", "pw", 2, 1000));
	ck_assert(!roost_auth_cache_hit(c, &db2, "alice", "pw", 2, 1000));
	ck_assert(!roost_auth_cache_hit(c, &db1, "alice", "pw", 2, 61000)); /* expired */
	ck_assert_uint_eq(roost_auth_cache_count(c), 0);
	ck_assert_int_eq(roost_auth_cache_add(c, &db1, "alice", "", 0, 0), ROOST_OK); /* empty password */
	ck_assert(roost_auth_cache_hit(c, &db1, "alice", NULL, 0, 1));
	roost_auth_cache_clear(c);
	ck_assert(!roost_auth_cache_hit(c, &db1, "alice", "", 0, 1));
	for (int i = 0; i < 4; i++) {
		char pw[8];
		snprintf(pw, sizeof pw, "p%d", i);
		ck_assert_int_eq(roost_auth_cache_add(c, &db1, "u", pw, strlen(pw), 5), ROOST_OK);
	}
	ck_assert_uint_eq(roost_auth_cache_count(c), 3);
	ck_assert(!roost_auth_cache_hit(c, &db1, "u", "p0", 2, 5)); /* the oldest went */
	ck_assert(roost_auth_cache_hit(c, &db1, "u", "p3", 2, 5));
	roost_auth_cache_free(c);
}
END_TEST

/* The worker's half of roost_auth_check: a copied credential verifies with
 * no db around, and an unknown user's dummy never does. */
START_TEST(test_cred_copy_verifies_without_the_db)
{
	char *hash;
	ck_assert_int_eq(roost_auth_hash_new("pw", 2, 10, &hash), ROOST_OK);
	char file[256];
	snprintf(file, sizeof file, "alice:%s\n", hash);
	roost_free(hash);
	roost_auth_db *db;
	roost_config_errors errs;
	ck_assert_int_eq(roost_auth_load_string("passwd", file, strlen(file), &db, &errs), ROOST_OK);
	roost_auth_cred alice, nobody;
	roost_auth_lookup(db, "alice", &alice);
	roost_auth_lookup(db, "nobody", &nobody);
	roost_auth_free(db);
	ck_assert(alice.known);
	ck_assert(!nobody.known);
	ck_assert(roost_auth_cred_verify(&alice, "pw", 2));
	ck_assert(!roost_auth_cred_verify(&alice, "px", 2));
	ck_assert(!roost_auth_cred_verify(&nobody, "pw", 2));
	roost_auth_lookup(NULL, "alice", &alice);
	ck_assert(!roost_auth_cred_verify(&alice, "pw", 2));
}
END_TEST

/* Not set: this machine only, with or without users; true: all; false: none. */
START_TEST(test_anonymous_policy_by_peer)
{
	ck_assert(roost_auth_anonymous_allowed(-1, true));
	ck_assert(!roost_auth_anonymous_allowed(-1, false));
	ck_assert(roost_auth_anonymous_allowed(1, true));
	ck_assert(roost_auth_anonymous_allowed(1, false));
	ck_assert(!roost_auth_anonymous_allowed(0, true));
	ck_assert(!roost_auth_anonymous_allowed(0, false));
}
END_TEST

#define S(s) (s), strlen(s)

/* Written by Debian's mosquitto_passwd 2.0.11 (default: $7$, 101 iterations). */
static const char MOSQ_ALICE[] =
	"alice:$7$101$OW9y3Vx6hrUFPfyv$H7DlVIGB75re90Xgsi5NovGVtL6Fn33bNOpbkyjnDQ0w9b2j1RjCDwNF3Tk+sci5Nwpt00+KTXmVDLz+9uOU9g==";
static const char MOSQ_DAVE[] =
	"dave:$7$101$mWy9exEl/XtmEABk$bRVBtadOg/rODaqZH+0gog70C2xu+bzQaj96sJfNtt+3iFzLWMJLBqVGqhAFhkdfPYxvHzujnhnnHBXSmf9XVg==";
/* mosquitto_passwd -H sha512: legacy $6$, password "pa ss:wörd" (UTF-8). */
static const char MOSQ_CAROL6[] =
	"carol:$6$Hz59sj4LsuDtg4wZ$cSXYrENkyePighcinCgI98xOW7+i/yUdZyFs4h1jtKOQY/lahpYr0IuPWQpl3bVMua0iqhjK2qNRXAVXpZ/3zg==";

/* A syntactically valid $7$ hash to build malformed lines around. */
#define SALT16 "OW9y3Vx6hrUFPfyv"
#define HASH88 "H7DlVIGB75re90Xgsi5NovGVtL6Fn33bNOpbkyjnDQ0w9b2j1RjCDwNF3Tk+sci5Nwpt00+KTXmVDLz+9uOU9g=="

/* ---- helpers ------------------------------------------------------------ */

static roost_auth_db *load_ok(const char *text)
{
	roost_auth_db *db = NULL;
	roost_config_errors errs;
	roost_err err = roost_auth_load_string("pw", text, strlen(text), &db, &errs);

	if (err) {
		roost_config_errors_print(&errs, stderr);
		ck_abort_msg("load failed: %s", roost_err_str(err));
	}
	ck_assert_uint_eq(errs.count, 0);
	roost_config_errors_cleanup(&errs);
	ck_assert_ptr_nonnull(db);
	return db;
}

/* Load text expecting failure; errs is left for the caller to inspect. */
static void load_bad(const char *text, size_t len, roost_config_errors *errs)
{
	roost_auth_db *db = NULL;
	roost_err err = roost_auth_load_string("pw", text, len, &db, errs);

	ck_assert_int_eq(err, ROOST_ERR_CONFIG);
	ck_assert_ptr_null(db);
	ck_assert_uint_gt(errs->count, 0);
}

/* Is there an error on line that mentions needle? */
static bool has_error(const roost_config_errors *errs, int line, const char *needle)
{
	for (size_t i = 0; i < errs->count; i++)
		if (errs->items[i].line == line && strstr(errs->items[i].message, needle) &&
		    strcmp(errs->items[i].file, "pw") == 0)
			return true;
	return false;
}

static void expect_one_error(const char *text, int line, const char *needle)
{
	roost_config_errors errs;

	load_bad(text, strlen(text), &errs);
	if (!has_error(&errs, line, needle)) {
		roost_config_errors_print(&errs, stderr);
		ck_abort_msg("no error on line %d mentioning '%s' for input: %s", line, needle, text);
	}
	ck_assert_uint_eq(errs.count, 1);
	roost_config_errors_cleanup(&errs);
}

static bool check(const roost_auth_db *db, const char *user, const char *pw)
{
	return roost_auth_check(db, user, pw, pw ? strlen(pw) : 0);
}

static char *tmpdir_new(void)
{
	char tmpl[] = "/tmp/check_auth.XXXXXX";
	char *d = mkdtemp(tmpl);

	ck_assert_ptr_nonnull(d);
	return strdup(d);
}

static void tmpdir_free(char *dir)
{
	char cmd[256];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
	free(dir);
}

static char *path_in(const char *dir, const char *name)
{
	char *p = NULL;

	ck_assert_int_ge(asprintf(&p, "%s/%s", dir, name), 0);
	return p;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = calloc(1, 1 << 20);
	size_t n;

	ck_assert_ptr_nonnull(f);
	n = fread(buf, 1, (1 << 20) - 1, f);
	fclose(f);
	if (len)
		*len = n;
	return buf;
}

static void spit(const char *path, const char *text)
{
	FILE *f = fopen(path, "wb");

	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(text, 1, strlen(text), f), strlen(text));
	ck_assert_int_eq(fclose(f), 0);
}

static roost_auth_db *load_path(const char *path)
{
	roost_auth_db *db = NULL;
	roost_config_errors errs;
	roost_err err = roost_auth_load_file(path, &db, &errs);

	if (err)
		roost_config_errors_print(&errs, stderr);
	ck_assert_int_eq(err, ROOST_OK);
	roost_config_errors_cleanup(&errs);
	return db;
}

/*
 * Run roost_passwd_main with the given arguments (NULL-terminated, after
 * "passwd"); stdout and stderr are captured into err (may be NULL).
 */
static int passwd_cmd(char *err, size_t errcap, ...)
{
	char *argv[16];
	int argc = 0;
	va_list ap;

	argv[argc++] = "passwd";
	va_start(ap, errcap);
	for (char *a; (a = va_arg(ap, char *)) != NULL;) {
		ck_assert_int_lt(argc, 15);
		argv[argc++] = a;
	}
	va_end(ap);
	argv[argc] = NULL;

	FILE *cap = tmpfile();
	ck_assert_ptr_nonnull(cap);
	fflush(stderr);
	fflush(stdout);
	int saved_err = dup(STDERR_FILENO), saved_out = dup(STDOUT_FILENO);
	dup2(fileno(cap), STDERR_FILENO);
	dup2(fileno(cap), STDOUT_FILENO);
	int rc = roost_passwd_main(argc, argv);
	fflush(stderr);
	fflush(stdout);
	dup2(saved_err, STDERR_FILENO);
	dup2(saved_out, STDOUT_FILENO);
	close(saved_err);
	close(saved_out);
	if (err) {
		rewind(cap);
		size_t n = fread(err, 1, errcap - 1, cap);
		err[n] = '\0';
	}
	fclose(cap);
	return rc;
}

/* Full path of a program in $PATH, /usr/sbin or /usr/bin; fails the test if absent. */
static char *need_program(const char *name)
{
	const char *path = getenv("PATH");
	char *dirs = NULL;

	ck_assert_int_ge(asprintf(&dirs, "%s:/usr/sbin:/usr/bin", path ? path : ""), 0);
	for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		char *p = NULL;
		ck_assert_int_ge(asprintf(&p, "%s/%s", d, name), 0);
		if (access(p, X_OK) == 0) {
			free(dirs);
			return p;
		}
		free(p);
	}
	free(dirs);
	ck_abort_msg("%s not found: install the mosquitto and mosquitto-clients packages "
	             "(CI installs them; these interoperability tests never skip)", name);
	return NULL;
}

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* system() of a formatted command; returns the exit status, or -1. */
static int run(const char *fmt, ...)
{
	char *cmd = NULL;
	va_list ap;

	va_start(ap, fmt);
	ck_assert_int_ge(vasprintf(&cmd, fmt, ap), 0);
	va_end(ap);
	int st = system(cmd);
	free(cmd);
	return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- valid -------------------------------------------------------------- */

START_TEST(test_mosquitto_pbkdf2_vector_verifies)
{
	char *text = NULL;
	ck_assert_int_ge(asprintf(&text, "%s\n%s\n", MOSQ_ALICE, MOSQ_DAVE), 0);
	roost_auth_db *db = load_ok(text);

	ck_assert_uint_eq(roost_auth_count(db), 2);
	ck_assert(check(db, "alice", "secret"));
	ck_assert(check(db, "dave", "correct horse battery staple"));
	ck_assert(!check(db, "alice", "Secret"));
	ck_assert(!check(db, "alice", "secre"));
	ck_assert(!check(db, "alice", "secret "));
	ck_assert(!check(db, "alice", "correct horse battery staple"));
	ck_assert(!check(db, "dave", "secret"));
	roost_auth_free(db);
	free(text);
}
END_TEST

START_TEST(test_mosquitto_sha512_legacy_vector_verifies)
{
	roost_auth_db *db = load_ok(MOSQ_CAROL6);

	ck_assert(check(db, "carol", "pa ss:w\xc3\xb6rd"));
	ck_assert(!check(db, "carol", "pa ss:word"));
	ck_assert(!check(db, "carol", ""));
	roost_auth_free(db);
}
END_TEST

START_TEST(test_file_written_by_mosquitto_passwd_verifies)
{
	char *mp = need_program("mosquitto_passwd");
	char *dir = tmpdir_new();
	char *file = path_in(dir, "pw");

	/* Both hash types Mosquitto can write, and a username with a space. */
	ck_assert_int_eq(run("'%s' -b -c '%s' user pass", mp, file), 0);
	ck_assert_int_eq(run("'%s' -b '%s' 'bob smith' 'p:w d'", mp, file), 0);
	ck_assert_int_eq(run("'%s' -H sha512 -b '%s' legacy 'old one'", mp, file), 0);
	roost_auth_db *db = load_path(file);
	ck_assert_uint_eq(roost_auth_count(db), 3);
	ck_assert(check(db, "user", "pass"));
	ck_assert(!check(db, "user", "wrong"));
	ck_assert(check(db, "bob smith", "p:w d"));
	ck_assert(!check(db, "bob smith", "p:w"));
	ck_assert(check(db, "legacy", "old one"));
	ck_assert(!check(db, "legacy", "old"));
	roost_auth_free(db);
	tmpdir_free(dir);
	free(file);
	free(mp);
}
END_TEST

START_TEST(test_comments_blank_lines_crlf_and_blanks_are_ignored)
{
	char *text = NULL;
	/* Mosquitto trims blanks around the username and the hash; so do we. */
	ck_assert_int_ge(asprintf(&text,
	                          "# users\r\n"
	                          "\r\n"
	                          "   \t\n"
	                          "   # indented comment\n"
	                          "  %s  \r\n"
	                          "dave\t:\t%s",
	                          MOSQ_ALICE, MOSQ_DAVE + 5),
	                 0);
	roost_auth_db *db = load_ok(text);
	ck_assert_uint_eq(roost_auth_count(db), 2);
	ck_assert(check(db, "alice", "secret"));
	ck_assert(check(db, "dave", "correct horse battery staple"));
	roost_auth_free(db);
	free(text);
}
END_TEST

START_TEST(test_empty_or_comment_only_file_has_no_users)
{
	roost_auth_db *db = load_ok("");

	ck_assert_uint_eq(roost_auth_count(db), 0);
	ck_assert(!check(db, "alice", "secret"));
	roost_auth_free(db);
	db = load_ok("# nobody yet\n\n");
	ck_assert_uint_eq(roost_auth_count(db), 0);
	roost_auth_free(db);
}
END_TEST

START_TEST(test_unknown_null_or_empty_user_and_null_password_are_refused)
{
	roost_auth_db *db = load_ok(MOSQ_ALICE);

	ck_assert(!check(db, "bob", "secret"));
	ck_assert(!check(db, "Alice", "secret"));
	ck_assert(!check(db, "alice ", "secret"));
	ck_assert(!check(db, "", "secret"));
	ck_assert(!check(db, NULL, "secret"));
	ck_assert(!roost_auth_check(db, "alice", NULL, 0));
	ck_assert(!roost_auth_check(NULL, "alice", "secret", 6));
	roost_auth_free(db);
}
END_TEST

/*
 * MQTT passwords are binary: all len bytes count, an embedded NUL included.
 * (Trailing NULs alone cannot count: HMAC pads its key with zeros, so
 * PBKDF2 sees "secret" and "secret\0" as the same key — in Mosquitto too.)
 */
START_TEST(test_password_is_checked_as_len_bytes_including_nul)
{
	roost_auth_db *db = load_ok(MOSQ_ALICE);

	ck_assert(roost_auth_check(db, "alice", "secretXYZ", 6));
	ck_assert(!roost_auth_check(db, "alice", "secret\0x", 8));
	ck_assert(!roost_auth_check(db, "alice", "secret", 5));
	roost_auth_free(db);
}
END_TEST

START_TEST(test_hash_new_has_mosquitto_shape_and_verifies)
{
	char *h = NULL;
	char *line = NULL;

	ck_assert_int_eq(roost_auth_hash_new(S("tr0ub4dor&3"), 1000, &h), ROOST_OK);
	/* $7$<iterations>$<16 base64 chars>$<88 base64 chars ending "=="> */
	ck_assert_int_eq(strncmp(h, "$7$1000$", 8), 0);
	ck_assert_uint_eq(strlen(h), 8 + 16 + 1 + 88);
	ck_assert_int_eq(h[8 + 16], '$');
	ck_assert_str_eq(h + strlen(h) - 2, "==");
	ck_assert_int_ge(asprintf(&line, "eve:%s\n", h), 0);
	roost_auth_db *db = load_ok(line);
	ck_assert(check(db, "eve", "tr0ub4dor&3"));
	ck_assert(!check(db, "eve", "tr0ub4dor&4"));
	roost_auth_free(db);
	roost_free(h);
	free(line);
}
END_TEST

START_TEST(test_hash_new_uses_a_fresh_salt_each_time)
{
	char *a = NULL, *b = NULL;

	ck_assert_int_eq(roost_auth_hash_new(S("same"), 10, &a), ROOST_OK);
	ck_assert_int_eq(roost_auth_hash_new(S("same"), 10, &b), ROOST_OK);
	ck_assert_str_ne(a, b);
	ck_assert_int_ne(memcmp(a, b, 6 + 16), 0);
	roost_free(a);
	roost_free(b);
}
END_TEST

START_TEST(test_default_iterations_are_written_and_verify)
{
	char *h = NULL, *line = NULL, want[32];

	ck_assert_int_eq(roost_auth_hash_new(S("pw"), ROOST_AUTH_DEFAULT_ITERATIONS, &h), ROOST_OK);
	snprintf(want, sizeof want, "$7$%d$", ROOST_AUTH_DEFAULT_ITERATIONS);
	ck_assert_int_eq(strncmp(h, want, strlen(want)), 0);
	ck_assert_int_ge(asprintf(&line, "u:%s", h), 0);
	roost_auth_db *db = load_ok(line);
	ck_assert(check(db, "u", "pw"));
	roost_auth_free(db);
	roost_free(h);
	free(line);
}
END_TEST

/*
 * An unknown user costs a real hash: as long as the dearest entry. Timing
 * is noisy, so the bounds are loose and each side takes its best of five;
 * the property guarded is "not 100x faster", which is what leaks.
 */
START_TEST(test_unknown_user_costs_as_much_as_a_known_one)
{
	char *h = NULL, *text = NULL;

	ck_assert_int_eq(roost_auth_hash_new(S("pw"), ROOST_AUTH_DEFAULT_ITERATIONS, &h), ROOST_OK);
	/* A cheap Mosquitto entry first: the dummy must follow the dear one. */
	ck_assert_int_ge(asprintf(&text, "%s\nroost:%s\n", MOSQ_ALICE, h), 0);
	roost_auth_db *db = load_ok(text);
	double known = 1e9, unknown = 1e9;
	for (int i = 0; i < 5; i++) {
		double t0 = now_s();
		ck_assert(!check(db, "roost", "wrong"));
		double t1 = now_s();
		ck_assert(!check(db, "nobody", "wrong"));
		double t2 = now_s();
		known = t1 - t0 < known ? t1 - t0 : known;
		unknown = t2 - t1 < unknown ? t2 - t1 : unknown;
	}
	ck_assert_msg(unknown > known * 0.4 && unknown < known * 2.5, "known %.2f ms, unknown %.2f ms", known * 1e3,
	              unknown * 1e3);
	roost_auth_free(db);
	roost_free(h);
	free(text);
}
END_TEST

START_TEST(test_edit_adds_replaces_and_deletes_keeping_other_lines)
{
	const char *orig = "# header\n"
	                   "alice:AAA\n"
	                   "\n"
	                   "broken line kept as is\n"
	                   "bob:BBB\n";
	char *out = NULL;
	size_t n = 0;

	/* Replace in place. */
	ck_assert_int_eq(roost_auth_edit(S(orig), "alice", "NEW", &out, &n), ROOST_OK);
	ck_assert_str_eq(out, "# header\nalice:NEW\n\nbroken line kept as is\nbob:BBB\n");
	ck_assert_uint_eq(n, strlen(out));
	roost_free(out);
	/* Append a new user at the end. */
	ck_assert_int_eq(roost_auth_edit(S(orig), "carol", "CCC", &out, &n), ROOST_OK);
	ck_assert_str_eq(out, "# header\nalice:AAA\n\nbroken line kept as is\nbob:BBB\ncarol:CCC\n");
	roost_free(out);
	/* Delete. */
	ck_assert_int_eq(roost_auth_edit(S(orig), "alice", NULL, &out, &n), ROOST_OK);
	ck_assert_str_eq(out, "# header\n\nbroken line kept as is\nbob:BBB\n");
	roost_free(out);
	/* Deleting someone absent changes nothing and says so. */
	ck_assert_int_eq(roost_auth_edit(S(orig), "zed", NULL, &out, &n), ROOST_ERR_NOT_FOUND);
	ck_assert_ptr_null(out);
	/* From nothing. */
	ck_assert_int_eq(roost_auth_edit(NULL, 0, "alice", "X", &out, &n), ROOST_OK);
	ck_assert_str_eq(out, "alice:X\n");
	roost_free(out);
}
END_TEST

START_TEST(test_edit_matches_trimmed_names_keeps_crlf_and_drops_later_duplicates)
{
	const char *orig = "  alice : old\r\n"
	                   "bob:B\r\n"
	                   "alice:dup\n"
	                   "#alice:commented\n"
	                   "alicex:other";
	char *out = NULL;
	size_t n = 0;

	ck_assert_int_eq(roost_auth_edit(S(orig), "alice", "NEW", &out, &n), ROOST_OK);
	ck_assert_str_eq(out, "alice:NEW\r\nbob:B\r\n#alice:commented\nalicex:other\n");
	roost_free(out);
}
END_TEST

START_TEST(test_username_rules_for_writing)
{
	ck_assert(roost_auth_username_valid("alice"));
	ck_assert(roost_auth_username_valid("bob smith"));
	ck_assert(roost_auth_username_valid("j\xc3\xb6rg"));
	ck_assert(roost_auth_username_valid("a#b"));
	ck_assert(!roost_auth_username_valid(NULL));
	ck_assert(!roost_auth_username_valid(""));
	ck_assert(!roost_auth_username_valid("a:b"));        /* the separator */
	ck_assert(!roost_auth_username_valid("#admin"));     /* read as a comment */
	ck_assert(!roost_auth_username_valid(" alice"));     /* trimmed on read */
	ck_assert(!roost_auth_username_valid("alice\t"));
	ck_assert(!roost_auth_username_valid("a\nb"));
	ck_assert(!roost_auth_username_valid("a\x7f"));
	ck_assert(!roost_auth_username_valid("\xc3\x28"));   /* invalid UTF-8 */
	ck_assert(!roost_auth_username_valid("\xed\xa0\x80")); /* surrogate [MQTT-1.5.3-1] */
	char *out = NULL;
	size_t n;
	ck_assert_int_eq(roost_auth_edit(S(""), "a:b", "X", &out, &n), ROOST_ERR_INVALID);
	ck_assert_int_eq(roost_auth_edit(S(""), "a", "X\nevil:Y", &out, &n), ROOST_ERR_INVALID);
	ck_assert_ptr_null(out);
}
END_TEST

/* ---- roost passwd --------------------------------------------------------- */

START_TEST(test_passwd_batch_create_add_replace_delete)
{
	char *dir = tmpdir_new();
	char *file = path_in(dir, "pw");
	char err[4096];

	ck_assert_int_eq(passwd_cmd(err, sizeof err, "-I", "1000", "-b", "-c", file, "alice", "one", NULL), 0);
	ck_assert_int_eq(passwd_cmd(err, sizeof err, "-I", "1000", "-b", file, "bob", "two", NULL), 0);
	roost_auth_db *db = load_path(file);
	ck_assert_uint_eq(roost_auth_count(db), 2);
	ck_assert(check(db, "alice", "one"));
	ck_assert(check(db, "bob", "two"));
	roost_auth_free(db);

	/* Replace alice's password; bob's line must not move or change. */
	size_t len;
	char *before = slurp(file, &len);
	char *bob_line = strstr(before, "bob:");
	ck_assert_int_eq(passwd_cmd(err, sizeof err, "-I", "1000", "-b", file, "alice", "three", NULL), 0);
	char *after = slurp(file, NULL);
	ck_assert_int_eq(strncmp(after, "alice:$7$1000$", 14), 0);
	ck_assert_ptr_nonnull(strstr(after, bob_line));
	ck_assert_str_eq(strstr(after, "\nbob:") + 1, bob_line);
	db = load_path(file);
	ck_assert(check(db, "alice", "three"));
	ck_assert(!check(db, "alice", "one"));
	roost_auth_free(db);

	/* Delete. */
	ck_assert_int_eq(passwd_cmd(err, sizeof err, "-D", file, "alice", NULL), 0);
	db = load_path(file);
	ck_assert_uint_eq(roost_auth_count(db), 1);
	ck_assert(!check(db, "alice", "three"));
	ck_assert(check(db, "bob", "two"));
	roost_auth_free(db);
	ck_assert_int_eq(passwd_cmd(err, sizeof err, "-D", file, "alice", NULL), 1);
	ck_assert_ptr_nonnull(strstr(err, "user 'alice' is not in"));

	/* -c starts over. */
	ck_assert_int_eq(passwd_cmd(err, sizeof err, "-I", "10", "-c", "-b", file, "carol", "four", NULL), 0);
	db = load_path(file);
	ck_assert_uint_eq(roost_auth_count(db), 1);
	ck_assert(check(db, "carol", "four"));
	roost_auth_free(db);
	free(before);
	free(after);
	tmpdir_free(dir);
	free(file);
}
END_TEST

START_TEST(test_passwd_writes_default_iterations_and_mode_0600)
{
	char *dir = tmpdir_new();
	char *file = path_in(dir, "pw");
	char want[32];
	struct stat st;

	spit(file, "");
	ck_assert_int_eq(chmod(file, 0644), 0);
	ck_assert_int_eq(passwd_cmd(NULL, 0, "-b", file, "alice", "pw", NULL), 0);
	ck_assert_int_eq(stat(file, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	char *text = slurp(file, NULL);
	snprintf(want, sizeof want, "alice:$7$%d$", ROOST_AUTH_DEFAULT_ITERATIONS);
	ck_assert_int_eq(strncmp(text, want, strlen(want)), 0);
	/* No temporary file left behind. */
	ck_assert_int_eq(run("test $(ls -A '%s' | wc -l) -eq 1", dir), 0);
	free(text);
	tmpdir_free(dir);
	free(file);
}
END_TEST

START_TEST(test_passwd_keeps_foreign_lines_byte_for_byte)
{
	char *dir = tmpdir_new();
	char *file = path_in(dir, "pw");
	char *orig = NULL;

	ck_assert_int_ge(asprintf(&orig, "# managed by hand\r\n%s\r\n\n%s\n", MOSQ_ALICE, MOSQ_CAROL6), 0);
	spit(file, orig);
	ck_assert_int_eq(passwd_cmd(NULL, 0, "-I", "10", "-b", file, "zed", "z", NULL), 0);
	char *text = slurp(file, NULL);
	ck_assert_int_eq(strncmp(text, orig, strlen(orig)), 0);
	ck_assert_int_eq(strncmp(text + strlen(orig), "zed:$7$10$", 10), 0);
	roost_auth_db *db = load_path(file);
	ck_assert(check(db, "alice", "secret"));
	ck_assert(check(db, "carol", "pa ss:w\xc3\xb6rd"));
	ck_assert(check(db, "zed", "z"));
	roost_auth_free(db);
	free(text);
	free(orig);
	tmpdir_free(dir);
	free(file);
}
END_TEST

START_TEST(test_passwd_follows_a_symlink_and_keeps_it)
{
	char *dir = tmpdir_new();
	char *file = path_in(dir, "real");
	char *link = path_in(dir, "link");
	struct stat st;

	spit(file, "");
	ck_assert_int_eq(symlink("real", link), 0);
	ck_assert_int_eq(passwd_cmd(NULL, 0, "-I", "10", "-b", link, "alice", "pw", NULL), 0);
	ck_assert_int_eq(lstat(link, &st), 0);
	ck_assert(S_ISLNK(st.st_mode));
	roost_auth_db *db = load_path(file);
	ck_assert(check(db, "alice", "pw"));
	roost_auth_free(db);
	tmpdir_free(dir);
	free(file);
	free(link);
}
END_TEST

START_TEST(test_passwd_usage_and_refusals)
{
	char *dir = tmpdir_new();
	char *file = path_in(dir, "pw");
	char err[4096];

	ck_assert_int_eq(passwd_cmd(err, sizeof err, NULL), 2);
	ck_assert_ptr_nonnull(strstr(err, "usage: roost passwd"));
	ck_assert_int_eq(passwd_cmd(err, sizeof err, "-b", file, "alice", NULL), 2);
	ck_assert_int_eq(passwd_cmd(err, sizeof err, file, "alice", "extra", NULL), 2);
	ck_assert_int_eq(passwd_cmd(err, sizeof err, "-x", file, "alice", NULL), 2);
	ck_assert_ptr_nonnull(strstr(err, "unknown option '-x'"));
	ck_assert_int_eq(passwd_cmd(err, sizeof err, "-D", "-c", file, "alice", NULL), 2);
	ck_assert_int_eq(passwd_cmd(err, sizeof err, "-I", "0", "-b", "-c", file, "a", "b", NULL), 2);
	ck_assert_int_eq(passwd_cmd(err, sizeof err, "-I", "10000001", "-b", "-c", file, "a", "b", NULL), 2);
	ck_assert_int_eq(passwd_cmd(err, sizeof err, "-I", "12x", "-b", "-c", file, "a", "b", NULL), 2);
	ck_assert_int_eq(passwd_cmd(err, sizeof err, "-I", NULL), 2);
	/* No file without -c. */
	ck_assert_int_eq(passwd_cmd(err, sizeof err, "-b", file, "alice", "pw", NULL), 1);
	ck_assert_ptr_nonnull(strstr(err, "use -c to create it"));
	ck_assert_int_eq(passwd_cmd(err, sizeof err, "-D", file, "alice", NULL), 1);
	ck_assert_ptr_nonnull(strstr(err, "No such file"));
	ck_assert_ptr_null(strstr(err, "use -c"));
	ck_assert_int_eq(access(file, F_OK), -1);
	/* Bad usernames and empty passwords write nothing. */
	ck_assert_int_eq(passwd_cmd(err, sizeof err, "-b", "-c", file, "a:b", "pw", NULL), 1);
	ck_assert_ptr_nonnull(strstr(err, "invalid username"));
	ck_assert_int_eq(passwd_cmd(err, sizeof err, "-b", "-c", file, "alice", "", NULL), 1);
	ck_assert_ptr_nonnull(strstr(err, "empty password"));
	ck_assert_int_eq(access(file, F_OK), -1);
	/* A directory is not a password file. */
	ck_assert_int_eq(passwd_cmd(err, sizeof err, "-b", dir, "alice", "pw", NULL), 1);
	ck_assert_ptr_nonnull(strstr(err, "not a regular file"));
	/* -h is not an error. */
	ck_assert_int_eq(passwd_cmd(err, sizeof err, "-h", NULL), 0);
	tmpdir_free(dir);
	free(file);
}
END_TEST

START_TEST(test_passwd_warns_when_other_lines_would_not_load)
{
	char *dir = tmpdir_new();
	char *file = path_in(dir, "pw");
	char err[4096];

	spit(file, "plain:text\n");
	ck_assert_int_eq(passwd_cmd(err, sizeof err, "-I", "10", "-b", file, "alice", "pw", NULL), 0);
	ck_assert_ptr_nonnull(strstr(err, "warning"));
	ck_assert_ptr_nonnull(strstr(err, ":1: password is not a hash"));
	char *text = slurp(file, NULL);
	ck_assert_int_eq(strncmp(text, "plain:text\nalice:$7$10$", 23), 0);
	free(text);
	tmpdir_free(dir);
	free(file);
}
END_TEST

/*
 * Drive the prompt through a pseudo-terminal. Each reply is sent once its
 * prompt has appeared; everything the terminal shows is returned in *shown
 * so the test can check the password never appeared there.
 */
static int prompt_session(const char *file, const char *first, const char *second, char *shown, size_t cap)
{
	int master;
	pid_t pid = forkpty(&master, NULL, NULL, NULL);

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char *argv[] = {"passwd", "-I", "10", "-c", (char *)file, "alice", NULL};
		_exit(roost_passwd_main(6, argv));
	}
	size_t n = 0;
	int step = 0;
	double deadline = now_s() + 20;
	while (now_s() < deadline) {
		struct pollfd p = {.fd = master, .events = POLLIN};
		if (poll(&p, 1, 200) <= 0)
			continue;
		ssize_t r = read(master, shown + n, cap - 1 - n);
		if (r <= 0)
			break; /* EIO: the child closed the terminal */
		n += (size_t)r;
		shown[n] = '\0';
		if (step == 0 && strstr(shown, "Password: ")) {
			ck_assert_int_gt(write(master, first, strlen(first)), 0);
			step = 1;
		}
		if (step == 1 && strstr(shown, "Reenter password: ")) {
			ck_assert_int_gt(write(master, second, strlen(second)), 0);
			step = 2;
		}
	}
	close(master);
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	return WEXITSTATUS(st);
}

START_TEST(test_passwd_prompts_twice_without_echo)
{
	char *dir = tmpdir_new();
	char *file = path_in(dir, "pw");
	char shown[8192];

	ck_assert_int_eq(prompt_session(file, "hunter2\n", "hunter2\n", shown, sizeof shown), 0);
	ck_assert_ptr_nonnull(strstr(shown, "Password: "));
	ck_assert_ptr_nonnull(strstr(shown, "Reenter password: "));
	ck_assert_ptr_null(strstr(shown, "hunter2"));
	roost_auth_db *db = load_path(file);
	ck_assert(check(db, "alice", "hunter2"));
	roost_auth_free(db);
	tmpdir_free(dir);
	free(file);
}
END_TEST

START_TEST(test_passwd_refuses_when_the_two_passwords_differ)
{
	char *dir = tmpdir_new();
	char *file = path_in(dir, "pw");
	char shown[8192];

	ck_assert_int_eq(prompt_session(file, "hunter2\n", "hunter3\n", shown, sizeof shown), 1);
	ck_assert_ptr_nonnull(strstr(shown, "passwords do not match"));
	ck_assert_ptr_null(strstr(shown, "hunter"));
	ck_assert_int_eq(access(file, F_OK), -1);
	tmpdir_free(dir);
	free(file);
}
END_TEST

/* Without a terminal (setsid, so /dev/tty fails) the two lines come from stdin. */
START_TEST(test_passwd_reads_stdin_without_a_terminal)
{
	char *dir = tmpdir_new();
	char *file = path_in(dir, "pw");
	int fds[2];

	ck_assert_int_eq(pipe(fds), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char *argv[] = {"passwd", "-I", "10", "-c", file, "alice", NULL};
		setsid();
		dup2(fds[0], STDIN_FILENO);
		close(fds[0]);
		close(fds[1]);
		int devnull = open("/dev/null", O_WRONLY);
		dup2(devnull, STDERR_FILENO);
		_exit(roost_passwd_main(6, argv));
	}
	close(fds[0]);
	ck_assert_int_eq(write(fds[1], "piped pw\r\npiped pw\n", 19), 19);
	close(fds[1]);
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	roost_auth_db *db = load_path(file);
	ck_assert(check(db, "alice", "piped pw"));
	roost_auth_free(db);
	tmpdir_free(dir);
	free(file);
}
END_TEST

/* ---- interoperability with a real Mosquitto broker ------------------------ */

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof a;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static bool port_open(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;

	close(fd);
	return ok;
}

static void stop(pid_t pid)
{
	int st;

	kill(pid, SIGTERM);
	for (int i = 0; i < 50; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return;
		usleep(100 * 1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
}

START_TEST(test_mosquitto_broker_accepts_a_file_written_by_roost)
{
	char *mosquitto = need_program("mosquitto");
	char *pub = need_program("mosquitto_pub");
	char *dir = tmpdir_new();
	char *file = path_in(dir, "pw");
	char *conf = path_in(dir, "mosquitto.conf");
	char *log = path_in(dir, "mosquitto.log");
	char *text = NULL;
	int port = free_port();

	/* Our default cost, a cheap one, and a name with a space. */
	ck_assert_int_eq(passwd_cmd(NULL, 0, "-c", "-b", file, "alice", "s3cret pw", NULL), 0);
	ck_assert_int_eq(passwd_cmd(NULL, 0, "-I", "101", "-b", file, "bob smith", "b0b", NULL), 0);
	/* Run as root, Mosquitto drops to user "mosquitto", who cannot read a 0600 file. */
	ck_assert_int_ge(asprintf(&text, "%slistener %d 127.0.0.1\nallow_anonymous false\npassword_file %s\n",
	                          geteuid() == 0 ? "user root\n" : "", port, file),
	                 0);
	spit(conf, text);

	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		execl(mosquitto, "mosquitto", "-c", conf, (char *)NULL);
		_exit(127);
	}
	/* No assertion may fail while mosquitto runs: collect, stop, then check. */
	bool up = false;
	for (int i = 0; i < 100 && !up; i++) {
		up = port_open(port);
		if (!up)
			usleep(50 * 1000);
	}
	int right = -2, wrong = -2, right2 = -2, unknown = -2, none = -2;
	if (up) {
		const char *fmt = "timeout 10 '%s' -h 127.0.0.1 -p %d -u '%s' -P '%s' -t roost/test -m hi -q 1 2>/dev/null";
		right = run(fmt, pub, port, "alice", "s3cret pw");
		wrong = run(fmt, pub, port, "alice", "s3cret");
		right2 = run(fmt, pub, port, "bob smith", "b0b");
		unknown = run(fmt, pub, port, "mallory", "s3cret pw");
		none = run("timeout 10 '%s' -h 127.0.0.1 -p %d -t roost/test -m hi 2>/dev/null", pub, port);
	}
	stop(pid);
	if (!up) {
		char *l = slurp(log, NULL);
		ck_abort_msg("mosquitto did not start on port %d; its log:\n%s", port, l);
	}
	ck_assert_msg(right == 0, "right password refused (exit %d)", right);
	ck_assert_msg(right2 == 0, "right password of the 101-iteration user refused (exit %d)", right2);
	ck_assert_msg(wrong != 0, "wrong password accepted");
	ck_assert_msg(unknown != 0, "unknown user accepted");
	ck_assert_msg(none != 0, "anonymous client accepted");
	free(text);
	free(conf);
	free(log);
	tmpdir_free(dir);
	free(file);
	free(pub);
	free(mosquitto);
}
END_TEST

/* ---- malformed ---------------------------------------------------------- */

START_TEST(test_line_without_colon_is_an_error)
{
	expect_one_error("alice\n", 1, "no ':'");
}
END_TEST

START_TEST(test_empty_username_is_an_error)
{
	expect_one_error("# c\n :$7$101$" SALT16 "$" HASH88 "\n", 2, "empty username");
}
END_TEST

START_TEST(test_missing_hash_is_an_error)
{
	expect_one_error("alice:\n", 1, "no password hash");
	expect_one_error("alice:   \r\n", 1, "no password hash");
}
END_TEST

START_TEST(test_plain_text_password_is_an_error)
{
	expect_one_error("alice:secret\n", 1, "password is not a hash");
}
END_TEST

START_TEST(test_unknown_hash_type_is_an_error)
{
	expect_one_error("alice:$5$rounds$abc\n", 1, "unknown password hash type '$5$'");
	expect_one_error("alice:$2y$10$abcdefghijklmnopqrstuv\n", 1, "unknown password hash type '$2y$'");
	expect_one_error("alice:$77$101$" SALT16 "$" HASH88 "\n", 1, "unknown password hash type '$77$'");
}
END_TEST

START_TEST(test_bad_iterations_are_an_error)
{
	expect_one_error("a:$7$0$" SALT16 "$" HASH88, 1, "iterations must be a number from 1 to");
	expect_one_error("a:$7$-1$" SALT16 "$" HASH88, 1, "iterations");
	expect_one_error("a:$7$+5$" SALT16 "$" HASH88, 1, "iterations");
	expect_one_error("a:$7$12x$" SALT16 "$" HASH88, 1, "got '12x'");
	expect_one_error("a:$7$$" SALT16 "$" HASH88, 1, "iterations");
	expect_one_error("a:$7$99999999999999999999$" SALT16 "$" HASH88, 1, "iterations");
}
END_TEST

START_TEST(test_bad_base64_is_an_error)
{
	expect_one_error("a:$7$101$OW9y3Vx6hrUFPfy!$" HASH88, 1, "salt is not valid base64");
	expect_one_error("a:$7$101$OW9y3Vx6hrUFPfy$" HASH88, 1, "salt is not valid base64");      /* 15 chars */
	expect_one_error("a:$7$101$OW9y=Vx6hrUFPfyv$" HASH88, 1, "salt is not valid base64");     /* '=' inside */
	expect_one_error("a:$7$101$" SALT16 "$H7Dl VIGB", 1, "hash is not valid base64");
	expect_one_error("a:$7$101$" SALT16 "$====", 1, "hash is not valid base64");
}
END_TEST

START_TEST(test_wrong_salt_or_hash_size_is_an_error)
{
	/* 16 salt bytes (24 chars): fine for PBKDF2, but Mosquitto refuses it. */
	expect_one_error("a:$7$101$AAAAAAAAAAAAAAAAAAAAAAAA$" HASH88, 1, "salt must decode to 12 bytes");
	expect_one_error("a:$6$AAAAAAAA$" HASH88, 1, "salt must decode to 12 bytes");
	expect_one_error("a:$7$101$" SALT16 "$AAAA", 1, "hash must decode to 64 bytes, got 3");
}
END_TEST

START_TEST(test_wrong_field_count_is_an_error)
{
	expect_one_error("a:$7$101$" SALT16, 1, "must have 3 '$'-separated fields");
	expect_one_error("a:$7$101$" SALT16 "$" HASH88 "$extra", 1, "must have 3");
	expect_one_error("a:$6$101$" SALT16 "$" HASH88, 1, "must have 2");
	expect_one_error("a:$6$", 1, "must have 2");
}
END_TEST

START_TEST(test_duplicate_user_is_an_error_naming_the_first_line)
{
	char *text = NULL;

	ck_assert_int_ge(asprintf(&text, "%s\n#\n%s\n", MOSQ_ALICE, MOSQ_ALICE), 0);
	expect_one_error(text, 3, "duplicate user 'alice' (first on line 1)");
	free(text);
}
END_TEST

START_TEST(test_nul_byte_in_a_line_is_an_error)
{
	static const char text[] = "alice:$7$101$\0" SALT16 "\n";
	roost_config_errors errs;

	load_bad(text, sizeof text - 1, &errs);
	ck_assert(has_error(&errs, 1, "NUL byte"));
	roost_config_errors_cleanup(&errs);
}
END_TEST

START_TEST(test_every_error_is_collected_with_its_line)
{
	char *text = NULL;
	roost_config_errors errs;

	ck_assert_int_ge(asprintf(&text,
	                          "%s\n"        /* 1 ok */
	                          "nocolon\n"   /* 2 */
	                          "\n"          /* 3 */
	                          "b:plain\n"   /* 4 */
	                          "%s\n"        /* 5 ok */
	                          "c:$9$x$y\n"  /* 6 */
	                          "alice:$7$101$" SALT16 "$" HASH88 "\n", /* 7 duplicate */
	                          MOSQ_ALICE, MOSQ_CAROL6),
	                 0);
	load_bad(text, strlen(text), &errs);
	ck_assert_uint_eq(errs.count, 4);
	ck_assert(has_error(&errs, 2, "no ':'"));
	ck_assert(has_error(&errs, 4, "not a hash"));
	ck_assert(has_error(&errs, 6, "unknown password hash type"));
	ck_assert(has_error(&errs, 7, "duplicate user"));
	/* The printer gives "file:line: message". */
	char buf[2048] = {0};
	FILE *f = fmemopen(buf, sizeof buf, "w");
	roost_config_errors_print(&errs, f);
	fclose(f);
	ck_assert_ptr_nonnull(strstr(buf, "pw:2: expected 'username:hash'"));
	roost_config_errors_cleanup(&errs);
	free(text);
}
END_TEST

START_TEST(test_unreadable_file_is_an_io_error_with_the_path)
{
	roost_auth_db *db = NULL;
	roost_config_errors errs;

	ck_assert_int_eq(roost_auth_load_file("/nonexistent/roost/pw", &db, &errs), ROOST_ERR_IO);
	ck_assert_ptr_null(db);
	ck_assert_uint_eq(errs.count, 1);
	ck_assert_str_eq(errs.items[0].file, "/nonexistent/roost/pw");
	ck_assert_int_eq(errs.items[0].line, 0);
	ck_assert_ptr_nonnull(strstr(errs.items[0].message, "No such file"));
	roost_config_errors_cleanup(&errs);
}
END_TEST

START_TEST(test_untrusted_text_in_messages_is_escaped_and_cut)
{
	char text[600];
	roost_config_errors errs;

	snprintf(text, sizeof text, "a:$7$101$%s$%s", "\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f\x10\x11\x12\x13",
	         HASH88);
	load_bad(text, strlen(text), &errs);
	ck_assert(has_error(&errs, 1, "'\\x01\\x02"));
	roost_config_errors_cleanup(&errs);

	memset(text, 'x', sizeof text);
	memcpy(text, "a:$7$", 5);
	snprintf(text + 400, sizeof text - 400, "$" SALT16 "$" HASH88);
	load_bad(text, strlen(text), &errs);
	ck_assert(has_error(&errs, 1, "xxx...'"));
	ck_assert_uint_lt(strlen(errs.items[0].message), 200);
	roost_config_errors_cleanup(&errs);
}
END_TEST

/* ---- limits ------------------------------------------------------------- */

START_TEST(test_iteration_bounds_in_files)
{
	char text[256];

	snprintf(text, sizeof text, "a:$7$%d$" SALT16 "$" HASH88, ROOST_AUTH_MAX_ITERATIONS);
	roost_auth_db *db = load_ok(text);
	roost_auth_free(db);
	snprintf(text, sizeof text, "a:$7$%d$" SALT16 "$" HASH88, ROOST_AUTH_MAX_ITERATIONS + 1);
	expect_one_error(text, 1, "iterations");
	db = load_ok("a:$7$1$" SALT16 "$" HASH88);
	roost_auth_free(db);
}
END_TEST

START_TEST(test_username_length_limit)
{
	size_t n = ROOST_AUTH_MAX_FIELD + 1;
	char *name = malloc(n + 1);
	char *text = NULL;

	memset(name, 'u', n);
	name[n] = '\0';
	ck_assert(!roost_auth_username_valid(name));
	ck_assert_int_ge(asprintf(&text, "%s:$7$101$" SALT16 "$" HASH88, name), 0);
	expect_one_error(text, 1, "username longer than 65535");
	free(text);
	name[n - 1] = '\0';
	ck_assert(roost_auth_username_valid(name));
	ck_assert_int_ge(asprintf(&text, "%s:$7$101$" SALT16 "$" HASH88, name), 0);
	roost_auth_db *db = load_ok(text);
	ck_assert_uint_eq(roost_auth_count(db), 1);
	roost_auth_free(db);
	free(text);
	free(name);
}
END_TEST

START_TEST(test_longest_password_hashes_and_verifies)
{
	size_t n = ROOST_AUTH_MAX_FIELD;
	char *pw = malloc(n + 1);
	char *h = NULL, *text = NULL;

	memset(pw, 'p', n + 1);
	ck_assert_int_eq(roost_auth_hash_new(pw, n + 1, 10, &h), ROOST_ERR_INVALID);
	ck_assert_int_eq(roost_auth_hash_new(pw, n, 10, &h), ROOST_OK);
	ck_assert_int_ge(asprintf(&text, "u:%s", h), 0);
	roost_auth_db *db = load_ok(text);
	ck_assert(roost_auth_check(db, "u", pw, n));
	ck_assert(!roost_auth_check(db, "u", pw, n - 1));
	roost_auth_free(db);
	roost_free(h);
	free(text);
	free(pw);
}
END_TEST

START_TEST(test_hash_new_refuses_bad_arguments)
{
	char *h = NULL;

	ck_assert_int_eq(roost_auth_hash_new("x", 1, 0, &h), ROOST_ERR_INVALID);
	ck_assert_int_eq(roost_auth_hash_new("x", 1, ROOST_AUTH_MAX_ITERATIONS + 1, &h), ROOST_ERR_INVALID);
	ck_assert_int_eq(roost_auth_hash_new(NULL, 1, 10, &h), ROOST_ERR_INVALID);
	ck_assert_ptr_null(h);
	/* An empty password is the caller's policy, not the format's. */
	ck_assert_int_eq(roost_auth_hash_new(NULL, 0, 10, &h), ROOST_OK);
	roost_free(h);
}
END_TEST

START_TEST(test_many_users_load_and_check)
{
	size_t cap = 2000 * 140, n = 0;
	char *text = malloc(cap);

	for (int i = 0; i < 2000; i++)
		n += (size_t)snprintf(text + n, cap - n, "user%d:$7$101$" SALT16 "$" HASH88 "\n", i);
	roost_auth_db *db = load_ok(text);
	ck_assert_uint_eq(roost_auth_count(db), 2000);
	ck_assert(check(db, "user1999", "secret"));
	ck_assert(!check(db, "user2000", "secret"));
	roost_auth_free(db);
	free(text);
}
END_TEST

/* ---- lifetime ----------------------------------------------------------- */

START_TEST(test_load_survives_every_allocation_failure)
{
	char *text = NULL;

	ck_assert_int_ge(asprintf(&text, "# c\n%s\n%s\n%s\nbad\n", MOSQ_ALICE, MOSQ_DAVE, MOSQ_CAROL6), 0);
	for (int good = 0; good < 2; good++) {
		if (good)
			strstr(text, "bad")[0] = '#';
		for (unsigned long n = 1;; n++) {
			roost_auth_db *db = NULL;
			roost_config_errors errs;
			roost_alloc_fail_after(n);
			roost_err err = roost_auth_load_string("pw", text, strlen(text), &db, &errs);
			roost_alloc_fail_after(0);
			roost_config_errors_cleanup(&errs);
			if (err == ROOST_ERR_NOMEM) {
				ck_assert_ptr_null(db);
				continue;
			}
			ck_assert_int_eq(err, good ? ROOST_OK : ROOST_ERR_CONFIG);
			if (good) {
				ck_assert(check(db, "dave", "correct horse battery staple"));
				ck_assert_uint_eq(roost_auth_count(db), 3);
			}
			roost_auth_free(db);
			break;
		}
	}
	free(text);
}
END_TEST

START_TEST(test_load_file_survives_every_allocation_failure)
{
	char *dir = tmpdir_new();
	char *file = path_in(dir, "pw");

	spit(file, MOSQ_ALICE);
	for (unsigned long n = 1;; n++) {
		roost_auth_db *db = NULL;
		roost_config_errors errs;
		roost_alloc_fail_after(n);
		roost_err err = roost_auth_load_file(file, &db, &errs);
		roost_alloc_fail_after(0);
		roost_config_errors_cleanup(&errs);
		if (err == ROOST_ERR_NOMEM)
			continue;
		ck_assert_int_eq(err, ROOST_OK);
		roost_auth_free(db);
		break;
	}
	tmpdir_free(dir);
	free(file);
}
END_TEST

START_TEST(test_hash_new_and_edit_survive_every_allocation_failure)
{
	for (unsigned long n = 1;; n++) {
		char *h = NULL;
		roost_alloc_fail_after(n);
		roost_err err = roost_auth_hash_new(S("pw"), 10, &h);
		roost_alloc_fail_after(0);
		if (err == ROOST_ERR_NOMEM) {
			ck_assert_ptr_null(h);
			continue;
		}
		ck_assert_int_eq(err, ROOST_OK);
		roost_free(h);
		break;
	}
	const char *orig = "# c\nalice:A\nbob:B\n";
	for (int del = 0; del < 2; del++)
		for (unsigned long n = 1;; n++) {
			char *out = NULL;
			size_t len;
			roost_alloc_fail_after(n);
			roost_err err = roost_auth_edit(S(orig), "alice", del ? NULL : "Z", &out, &len);
			roost_alloc_fail_after(0);
			if (err == ROOST_ERR_NOMEM) {
				ck_assert_ptr_null(out);
				continue;
			}
			ck_assert_int_eq(err, ROOST_OK);
			ck_assert_str_eq(out, del ? "# c\nbob:B\n" : "# c\nalice:Z\nbob:B\n");
			roost_free(out);
			break;
		}
}
END_TEST

START_TEST(test_free_and_count_accept_null)
{
	roost_auth_free(NULL);
	ck_assert_uint_eq(roost_auth_count(NULL), 0);
}
END_TEST

START_TEST(test_db_is_independent_of_the_source_text)
{
	char *text = strdup(MOSQ_ALICE);
	roost_auth_db *db = load_ok(text);

	memset(text, 'x', strlen(text));
	free(text);
	ck_assert(check(db, "alice", "secret"));
	roost_auth_free(db);
}
END_TEST

Suite *auth_suite(void)
{
	Suite *s = suite_create("auth");
	TCase *tc;

	tc = tcase_create("valid");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_mosquitto_pbkdf2_vector_verifies);
	tcase_add_test(tc, test_peer_loopback_classification);
	tcase_add_test(tc, test_anonymous_policy_by_peer);
	tcase_add_test(tc, test_default_password_file_is_beside_the_store);
	tcase_add_test(tc, test_login_backoff_doubles_caps_resets_and_is_per_user_and_address);
	tcase_add_test(tc, test_login_backoff_is_bounded);
	tcase_add_test(tc, test_auth_cache_hits_only_the_verified_triple_until_ttl);
	tcase_add_test(tc, test_cred_copy_verifies_without_the_db);
	tcase_add_test(tc, test_mosquitto_sha512_legacy_vector_verifies);
	tcase_add_test(tc, test_file_written_by_mosquitto_passwd_verifies);
	tcase_add_test(tc, test_comments_blank_lines_crlf_and_blanks_are_ignored);
	tcase_add_test(tc, test_empty_or_comment_only_file_has_no_users);
	tcase_add_test(tc, test_unknown_null_or_empty_user_and_null_password_are_refused);
	tcase_add_test(tc, test_password_is_checked_as_len_bytes_including_nul);
	tcase_add_test(tc, test_hash_new_has_mosquitto_shape_and_verifies);
	tcase_add_test(tc, test_hash_new_uses_a_fresh_salt_each_time);
	tcase_add_test(tc, test_default_iterations_are_written_and_verify);
	tcase_add_test(tc, test_unknown_user_costs_as_much_as_a_known_one);
	tcase_add_test(tc, test_edit_adds_replaces_and_deletes_keeping_other_lines);
	tcase_add_test(tc, test_edit_matches_trimmed_names_keeps_crlf_and_drops_later_duplicates);
	tcase_add_test(tc, test_username_rules_for_writing);
	tcase_add_test(tc, test_passwd_batch_create_add_replace_delete);
	tcase_add_test(tc, test_passwd_writes_default_iterations_and_mode_0600);
	tcase_add_test(tc, test_passwd_keeps_foreign_lines_byte_for_byte);
	tcase_add_test(tc, test_passwd_follows_a_symlink_and_keeps_it);
	tcase_add_test(tc, test_passwd_usage_and_refusals);
	tcase_add_test(tc, test_passwd_warns_when_other_lines_would_not_load);
	tcase_add_test(tc, test_passwd_prompts_twice_without_echo);
	tcase_add_test(tc, test_passwd_refuses_when_the_two_passwords_differ);
	tcase_add_test(tc, test_passwd_reads_stdin_without_a_terminal);
	tcase_add_test(tc, test_mosquitto_broker_accepts_a_file_written_by_roost);
	suite_add_tcase(s, tc);

	tc = tcase_create("malformed");
	tcase_add_test(tc, test_line_without_colon_is_an_error);
	tcase_add_test(tc, test_empty_username_is_an_error);
	tcase_add_test(tc, test_missing_hash_is_an_error);
	tcase_add_test(tc, test_plain_text_password_is_an_error);
	tcase_add_test(tc, test_unknown_hash_type_is_an_error);
	tcase_add_test(tc, test_bad_iterations_are_an_error);
	tcase_add_test(tc, test_bad_base64_is_an_error);
	tcase_add_test(tc, test_wrong_salt_or_hash_size_is_an_error);
	tcase_add_test(tc, test_wrong_field_count_is_an_error);
	tcase_add_test(tc, test_duplicate_user_is_an_error_naming_the_first_line);
	tcase_add_test(tc, test_nul_byte_in_a_line_is_an_error);
	tcase_add_test(tc, test_every_error_is_collected_with_its_line);
	tcase_add_test(tc, test_unreadable_file_is_an_io_error_with_the_path);
	tcase_add_test(tc, test_untrusted_text_in_messages_is_escaped_and_cut);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_iteration_bounds_in_files);
	tcase_add_test(tc, test_username_length_limit);
	tcase_add_test(tc, test_longest_password_hashes_and_verifies);
	tcase_add_test(tc, test_hash_new_refuses_bad_arguments);
	tcase_add_test(tc, test_many_users_load_and_check);
	suite_add_tcase(s, tc);

	tc = tcase_create("lifetime");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_load_survives_every_allocation_failure);
	tcase_add_test(tc, test_load_file_survives_every_allocation_failure);
	tcase_add_test(tc, test_hash_new_and_edit_survive_every_allocation_failure);
	tcase_add_test(tc, test_free_and_count_accept_null);
	tcase_add_test(tc, test_db_is_independent_of_the_source_text);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(auth_suite());

	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
