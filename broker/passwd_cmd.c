/*
 * passwd_cmd.c — `roost passwd`: the file-system and terminal half of
 * password-file editing. The format work (hashing, rewriting the text) is
 * pure and lives in auth.c; this file only reads the old file, asks for the
 * password and replaces the file atomically.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "roost/alloc.h"
#include "roost/auth.h"
#include "roost/config.h"
#include "roost/passwd_cmd.h"
#include "roost/persist.h"

#define PROG "roost passwd"

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: roost passwd [--config CONFIG] [-b] USER [PASSWORD]\n"
	        "       roost passwd [-c] [-I ITERATIONS] FILE USER\n"
	        "       roost passwd [-c] [-I ITERATIONS] -b FILE USER PASSWORD\n"
	        "       roost passwd -D [FILE] USER\n"
	        "\n"
	        "Without FILE: the `passwd` file beside the store (persistence.path of\n"
	        "CONFIG or of the embedded defaults; $STATE_DIRECTORY under systemd),\n"
	        "which roost reads by default and re-reads within 2 s of a change.\n"
	        "\n"
	        "  -b  batch: take the password from the command line\n"
	        "  -c  create FILE, or overwrite it with only USER\n"
	        "  -D  delete USER\n"
	        "  -I  PBKDF2 iterations (default %d; Mosquitto's own default is 101)\n"
	        "\n"
	        "Writes Mosquitto's $7$ (PBKDF2-SHA512) format: the file works with roost\n"
	        "and with Mosquitto's password_file.\n",
	        ROOST_AUTH_DEFAULT_ITERATIONS);
}

/* ---- reading the password ----------------------------------------------- */

/*
 * Read one line from fd into buf (cap bytes, NUL-terminated, without the
 * line break). Returns 1 for a line, 0 at end of input before any byte, -1
 * on error or a line too long for buf.
 */
static int read_line(int fd, char *buf, size_t cap, size_t *n)
{
	*n = 0;
	for (;;) {
		char c;
		ssize_t r = read(fd, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		if (c == '\n')
			break;
		if (*n + 1 >= cap)
			return -1;
		buf[(*n)++] = c;
	}
	if (*n > 0 && buf[*n - 1] == '\r')
		(*n)--;
	buf[*n] = '\0';
	return 1;
}

/*
 * Prompt on the terminal with echo off (ECHONL still moves to the next
 * line), or read standard input when there is no terminal. Echo goes off
 * before the prompt appears, so nothing typed after the prompt can echo;
 * TCSAFLUSH drops anything typed before it.
 */
static int ask(int fd, bool tty, const char *prompt, char *buf, size_t cap, size_t *n)
{
	struct termios old, quiet;
	bool restore = false;
	int r;

	if (tty) {
		if (tcgetattr(fd, &old) == 0) {
			quiet = old;
			quiet.c_lflag &= ~(tcflag_t)ECHO;
			quiet.c_lflag |= ECHONL;
			restore = tcsetattr(fd, TCSAFLUSH, &quiet) == 0;
		}
		if (write(fd, prompt, strlen(prompt)) < 0) {
			if (restore)
				tcsetattr(fd, TCSANOW, &old);
			return -1;
		}
	}
	r = read_line(fd, buf, cap, n);
	if (restore)
		tcsetattr(fd, TCSANOW, &old);
	return r;
}

/* The password into buf (cap bytes); 0 on success, else prints and returns 1. */
static int get_password(char *buf, char *again, size_t cap, size_t *n)
{
	size_t n2 = 0;
	int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	bool tty = fd >= 0;
	int rc = 1;

	if (!tty)
		fd = STDIN_FILENO;
	if (ask(fd, tty, "Password: ", buf, cap, n) != 1 || ask(fd, tty, "Reenter password: ", again, cap, &n2) != 1)
		fprintf(stderr, PROG ": could not read the password (at most %d bytes)\n", ROOST_AUTH_MAX_FIELD);
	else if (*n != n2 || CRYPTO_memcmp(buf, again, *n) != 0)
		fprintf(stderr, PROG ": passwords do not match; nothing written\n");
	else
		rc = 0;
	if (tty)
		close(fd);
	OPENSSL_cleanse(again, cap);
	return rc;
}

/* ---- files -------------------------------------------------------------- */

static int read_file(const char *path, char **text, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0;

	if (!f) {
		fprintf(stderr, PROG ": %s: %s\n", path, strerror(errno));
		return 1;
	}
	for (;;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 4096;
			char *nb = cap > (size_t)64 * 1024 * 1024 ? NULL : roost_realloc(buf, cap + 1);
			if (!nb) {
				fprintf(stderr, PROG ": %s: too large or out of memory\n", path);
				goto fail;
			}
			buf = nb;
		}
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
	}
	if (ferror(f)) {
		fprintf(stderr, PROG ": %s: read error\n", path);
		goto fail;
	}
	fclose(f);
	*text = buf;
	*len = n;
	return 0;
fail:
	fclose(f);
	roost_free(buf);
	return 1;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* How the new file is owned: mode, and a group to give it (-1: keep). */
typedef struct file_owner {
	mode_t mode;
	gid_t gid;
} file_owner;

/*
 * Replace path with data: temp file in the same directory, own->mode, the
 * old owner when we are root (own->gid overrides the group), fsync, rename,
 * fsync of the directory so the rename itself survives a power cut.
 */
static int replace_file(const char *path, const char *data, size_t len, const struct stat *old,
                        const file_owner *own)
{
	size_t plen = strlen(path);
	char *tmp = roost_malloc(plen + sizeof ".tmp-XXXXXX");
	char *dir = roost_strdup(path);
	int fd = -1;

	if (!tmp || !dir) {
		fprintf(stderr, PROG ": out of memory\n");
		goto fail;
	}
	memcpy(tmp, path, plen);
	memcpy(tmp + plen, ".tmp-XXXXXX", sizeof ".tmp-XXXXXX");
	fd = mkstemp(tmp);
	if (fd < 0) {
		fprintf(stderr, PROG ": cannot create a file beside %s: %s\n", path, strerror(errno));
		goto fail_nounlink;
	}
	if (fchmod(fd, own->mode) != 0 || (old && geteuid() == 0 && fchown(fd, old->st_uid, old->st_gid) != 0) ||
	    (own->gid != (gid_t)-1 && fchown(fd, (uid_t)-1, own->gid) != 0) ||
	    write_all(fd, data, len) != 0 || fsync(fd) != 0) {
		fprintf(stderr, PROG ": cannot write %s: %s\n", tmp, strerror(errno));
		goto fail;
	}
	if (close(fd) != 0) {
		fd = -1;
		fprintf(stderr, PROG ": cannot write %s: %s\n", tmp, strerror(errno));
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		fprintf(stderr, PROG ": cannot replace %s: %s\n", path, strerror(errno));
		goto fail;
	}
	char *slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	int dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd); /* best effort: some file systems refuse it */
		close(dfd);
	}
	roost_free(tmp);
	roost_free(dir);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	if (tmp)
		unlink(tmp);
fail_nounlink:
	roost_free(tmp);
	roost_free(dir);
	return 1;
}

/* Warn (without refusing) when the file we leave behind would not load. */
static void warn_if_unloadable(const char *file, const char *text, size_t len)
{
	roost_auth_db *db = NULL;
	roost_config_errors errs;

	if (roost_auth_load_string(file, text, len, &db, &errs) == ROOST_ERR_CONFIG) {
		fprintf(stderr, PROG ": warning: other lines of %s have problems; roost will refuse the file "
		                "until they are fixed:\n", file);
		roost_config_errors_print(&errs, stderr);
	}
	roost_auth_free(db);
	roost_config_errors_cleanup(&errs);
}

/* ---- the default file ----------------------------------------------------- */

/*
 * The store's directory, new string: the persist module's one rule for where
 * the store lives ($STATE_DIRECTORY under systemd for a relative path, a
 * directory path holding roost.db, else the database file's directory).
 */
static char *store_dir(const roost_config *cfg)
{
	char dir[PATH_MAX];
	if (roost_persist_resolve_dir(cfg->persistence.path, dir, sizeof dir) != ROOST_OK)
		return NULL;
	return roost_strdup(dir);
}

char *roost_passwd_default_path(const roost_config *cfg)
{
	char *dir = store_dir(cfg);
	size_t n = dir ? strlen(dir) : 0;
	char *path = dir ? roost_malloc(n + sizeof "/passwd") : NULL;
	if (path) {
		memcpy(path, dir, n);
		memcpy(path + n, "/passwd", sizeof "/passwd");
	}
	roost_free(dir);
	return path;
}

/* The default file of --config CONFIG (or of the embedded defaults). */
static char *default_file(const char *config)
{
	roost_config *cfg = NULL;
	if (roost_config_load_cli(PROG, config, &cfg) != 0)
		return NULL;
	char *path = roost_passwd_default_path(cfg);
	if (!path)
		fprintf(stderr, PROG ": out of memory\n");
	roost_config_free(cfg);
	return path;
}

/* The default file is read by roost running as its own user: 0640 and
 * group roost when that group exists (an installed system). */
static file_owner owner_for(bool default_file)
{
	file_owner own = {default_file ? 0640 : 0600, (gid_t)-1};
	struct group *g = default_file ? getgrnam("roost") : NULL;
	if (g)
		own.gid = g->gr_gid;
	return own;
}

/* ---- main --------------------------------------------------------------- */

typedef struct opts {
	bool batch, create, del;
	int iterations;
	const char *file, *user, *password;
	const char *config;   /* --config: whose store directory, without FILE */
} opts;

/* 0 ok, 2 usage error, -1 help printed. */
static int parse_args(int argc, char **argv, opts *o)
{
	int i = 1;

	o->iterations = ROOST_AUTH_DEFAULT_ITERATIONS;
	for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		if (!strcmp(a, "-h") || !strcmp(a, "--help"))
			return -1;
		if (!strcmp(a, "--config")) {
			if (i + 1 >= argc) {
				fprintf(stderr, PROG ": --config needs a file\n");
				return 2;
			}
			o->config = argv[++i];
			continue;
		}
		if (!strcmp(a, "-I")) {
			char *end;
			long v;
			if (i + 1 >= argc) {
				fprintf(stderr, PROG ": -I needs a number\n");
				return 2;
			}
			errno = 0;
			v = strtol(argv[++i], &end, 10);
			if (errno || *end || end == argv[i] || v < 1 || v > ROOST_AUTH_MAX_ITERATIONS) {
				fprintf(stderr, PROG ": -I: iterations must be from 1 to %d\n", ROOST_AUTH_MAX_ITERATIONS);
				return 2;
			}
			o->iterations = (int)v;
			continue;
		}
		for (const char *c = a + 1; *c; c++) {
			if (*c == 'b')
				o->batch = true;
			else if (*c == 'c')
				o->create = true;
			else if (*c == 'D')
				o->del = true;
			else {
				fprintf(stderr, PROG ": unknown option '-%c'\n", *c);
				return 2;
			}
		}
	}
	if (o->del && (o->batch || o->create)) {
		fprintf(stderr, PROG ": -D cannot be combined with -b or -c\n");
		return 2;
	}
	int want = o->batch ? 3 : 2;
	bool no_file = argc - i == want - 1; /* the default password file beside the store */
	if (!no_file && argc - i != want) {
		fprintf(stderr, PROG ": expected %s\n", o->batch ? "[FILE] USER PASSWORD" : "[FILE] USER");
		return 2;
	}
	if (no_file && o->create) {
		fprintf(stderr, PROG ": -c needs FILE (the default file is created when missing)\n");
		return 2;
	}
	if (no_file && strchr(argv[i], '/')) {
		/* `-b FILE USER` without the password, most likely. */
		fprintf(stderr, PROG ": '%s' looks like a file, not a user name; expected %s\n", argv[i],
		        o->batch ? "[FILE] USER PASSWORD" : "[FILE] USER");
		return 2;
	}
	if (!no_file && o->config) {
		fprintf(stderr, PROG ": --config is for the form without FILE\n");
		return 2;
	}
	o->file = no_file ? NULL : argv[i++];
	o->user = argv[i];
	o->password = o->batch ? argv[i + 1] : NULL;
	return 0;
}

int roost_passwd_main(int argc, char **argv)
{
	opts o = {0};
	char *pw = NULL, *again = NULL, *hash = NULL, *text = NULL, *out = NULL, *real = NULL, *dflt = NULL;
	size_t pwlen = 0, len = 0, out_len = 0;
	struct stat st;
	bool exists;
	roost_err err;
	int rc = 1;

	int u = parse_args(argc, argv, &o);
	if (u != 0) {
		usage(u < 0 ? stdout : stderr);
		return u < 0 ? 0 : 2;
	}
	if (!roost_auth_username_valid(o.user)) {
		fprintf(stderr, PROG ": invalid username: it must be valid UTF-8 without ':' or control characters, "
		                "must not start with '#' or begin or end with a blank\n");
		return 1;
	}
	if (!o.file && !(o.file = dflt = default_file(o.config)))
		return 1;

	/* A symbolic link is followed so that the link itself stays. The
	 * default file is created when missing. */
	exists = stat(o.file, &st) == 0;
	if (!exists && (errno != ENOENT || !(o.create || (dflt && !o.del)))) {
		int e = errno;
		fprintf(stderr, PROG ": %s: %s%s\n", o.file, strerror(e),
		        e == ENOENT && !o.del ? " (use -c to create it)" : "");
		goto done;
	}
	if (exists && !S_ISREG(st.st_mode)) {
		fprintf(stderr, PROG ": %s: not a regular file\n", o.file);
		goto done;
	}
	const char *target = o.file;
	if (exists) {
		real = realpath(o.file, NULL);
		if (!real) {
			fprintf(stderr, PROG ": %s: %s\n", o.file, strerror(errno));
			goto done;
		}
		target = real;
	}

	if (!o.del) {
		if (o.batch) {
			pwlen = strlen(o.password);
		} else {
			pw = roost_malloc(ROOST_AUTH_MAX_FIELD + 2);
			again = roost_malloc(ROOST_AUTH_MAX_FIELD + 2);
			if (!pw || !again) {
				fprintf(stderr, PROG ": out of memory\n");
				goto done;
			}
			if (get_password(pw, again, ROOST_AUTH_MAX_FIELD + 2, &pwlen) != 0)
				goto done;
		}
		const char *p = o.batch ? o.password : pw;
		if (pwlen == 0) {
			fprintf(stderr, PROG ": empty password; nothing written\n");
			goto done;
		}
		if (pwlen > ROOST_AUTH_MAX_FIELD) {
			fprintf(stderr, PROG ": password longer than %d bytes\n", ROOST_AUTH_MAX_FIELD);
			goto done;
		}
		err = roost_auth_hash_new(p, pwlen, o.iterations, &hash);
		if (err) {
			fprintf(stderr, PROG ": cannot hash the password: %s\n", roost_err_str(err));
			goto done;
		}
	}

	if (exists && !o.create && read_file(target, &text, &len) != 0)
		goto done;
	err = roost_auth_edit(text, len, o.user, hash, &out, &out_len);
	if (err == ROOST_ERR_NOT_FOUND) {
		fprintf(stderr, PROG ": user '%s' is not in %s\n", o.user, o.file);
		goto done;
	}
	if (err) {
		fprintf(stderr, PROG ": %s\n", roost_err_str(err));
		goto done;
	}
	warn_if_unloadable(o.file, out, out_len);
	file_owner own = owner_for(dflt != NULL);
	rc = replace_file(target, out, out_len, exists ? &st : NULL, &own);
	if (rc == 0 && dflt)
		printf("%s %s in %s; a running roost picks it up within 2 s\n", o.user, o.del ? "deleted" : "set",
		       o.file);

done:
	if (pw)
		OPENSSL_cleanse(pw, ROOST_AUTH_MAX_FIELD + 2);
	roost_free(pw);
	roost_free(again);
	roost_free(hash);
	roost_free(text);
	roost_free(out);
	free(real); /* from realpath(), which uses malloc */
	roost_free(dflt);
	return rc;
}
