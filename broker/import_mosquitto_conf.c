/*
 * import_mosquitto_conf.c — `roost import-mosquitto MOSQUITTO.CONF`: a
 * mosquitto.conf (Mosquitto 2.0's meaning) as roost YAML on stdout.
 *
 * Mosquitto's format, as its conf.c reads it: one option a line, the key is
 * the first space-separated word; a line whose first byte is '#' is a
 * comment; string values are the rest of the line with blanks trimmed,
 * numbers and booleans the next word. Options between `listener` lines
 * belong to that listener; before the first one, to the default listener
 * (`port`, `bind_address`). With `per_listener_settings true` the security
 * options (allow_anonymous, password_file, acl_file) follow the same rule,
 * otherwise they are global. `include_dir` (main file only) reads the
 * directory's *.conf files in Mosquitto's order (case-insensitive, ties by
 * case). `connection NAME` opens a bridge section.
 *
 * Every option is one row of `keys` below: what it is in Mosquitto (type,
 * bounds, scope) and what it becomes in roost (key, a note). Parsing stores
 * values; emitting walks the same rows. Mosquitto's own errors (a number
 * that is not one, a bad boolean, an empty or duplicate value, a port out
 * of range, a bridge option outside a `connection`) stop with FILE:LINE and
 * exit 2; everything roost cannot carry over is a warning FILE:LINE on
 * stderr; options that need nothing in roost are notes. The YAML is loaded
 * back through roost's own config parser before it is printed, so what is
 * printed is a config roost accepts.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "roost/alloc.h"
#include "roost/config.h"

#include "import_mosquitto.h"

#define MAX_CONF_BYTES ((size_t)1 << 20)
#define MAX_LISTENERS 64
#define MAX_FILES 256

typedef struct where {
	const char *file;
	int line;
} where;

/* One option's value; `set` once a line gave it. */
typedef struct val {
	bool set;
	long long i;
	char *s;
	where at;
} val;

/* Security options: global, or per listener with per_listener_settings. */
typedef struct security {
	val allow_anonymous, password_file, acl_file;
} security;

typedef struct mlistener {
	where at;
	val port, bind, protocol, socket_domain, max_connections;
	val certfile, keyfile, cafile, require_certificate, use_identity_as_username, ciphers, tls_version;
	security sec;
	bool defined;  /* a listener line, or options that make the default listener */
} mlistener;

typedef struct globals {
	val per_listener_settings, persistence, persistence_location, persistence_file;
	val max_packet_size, max_queued_messages, max_queued_bytes, max_inflight_messages, max_keepalive;
	val max_connections; /* the sum of the listeners' (Mosquitto's is per listener) */
} globals;

typedef struct conv {
	mlistener ls[MAX_LISTENERS + 1]; /* [0] is the default listener */
	size_t n;                        /* listeners from `listener` lines */
	mlistener *cur;
	security sec;
	globals g;
	bool local_only;                 /* no listener, port or bind_address line */
	bool in_bridge;
	char *files[MAX_FILES];          /* names every `where` points at */
	size_t n_files;
	int depth;
	bool per_listener_keys;          /* this roost has listeners[].allow_anonymous ... */
} conv;

typedef enum vtype { V_INT, V_BOOL, V_STR, V_PATH, V_WORD } vtype;
typedef enum action {
	A_STORE,   /* parse and keep in the slot */
	A_NOTE,    /* nothing to do in roost: a note */
	A_WARN,    /* not carried over: a warning */
	A_BRIDGE,  /* belongs to a `connection` section */
	A_FN,      /* a line with its own rule */
} action;
typedef enum scope { S_GLOBAL, S_LISTENER, S_SECURITY } scope;

typedef struct mkey mkey;
struct mkey {
	const char *name;
	action act;
	vtype type;
	scope scope;
	size_t off;              /* of the val in globals / mlistener / security */
	long long min, max;      /* what Mosquitto accepts */
	const char *roost;       /* the roost key it becomes */
	long long rmin, rmax;    /* roost's bounds; Mosquitto's 0 = unlimited becomes rmax when zero_max */
	bool zero_max;
	const char *note;
	int (*fn)(conv *, const mkey *, char *rest, where at);
};

static int on_listener(conv *, const mkey *, char *, where);
static int on_include_dir(conv *, const mkey *, char *, where);
static int on_connection(conv *, const mkey *, char *, where);
static int on_default_listener(conv *, const mkey *, char *, where);

#define G(m) offsetof(globals, m)
#define L(m) offsetof(mlistener, m)
#define SEC(m) offsetof(security, m)
#define STORE(n, t, sc, off, lo, hi, rk) {n, A_STORE, t, sc, off, lo, hi, rk, 0, 0, false, NULL, NULL}
#define LIMIT(n, m, lo, hi, rlo, rhi, zmax) \
	{n, A_STORE, V_INT, S_GLOBAL, G(m), lo, hi, "limits." n, rlo, rhi, zmax, NULL, NULL}
#define NOTE(n, why) {n, A_NOTE, V_STR, S_GLOBAL, 0, 0, 0, NULL, 0, 0, false, why, NULL}
#define WARN(n, why) {n, A_WARN, V_STR, S_GLOBAL, 0, 0, 0, NULL, 0, 0, false, why, NULL}
#define BRIDGE(n) {n, A_BRIDGE, V_STR, S_GLOBAL, 0, 0, 0, NULL, 0, 0, false, NULL, NULL}
#define FN(n, f) {n, A_FN, V_STR, S_GLOBAL, 0, 0, 0, NULL, 0, 0, false, NULL, f}

static const mkey keys[] = {
	/* listeners */
	FN("listener", on_listener),
	FN("port", on_default_listener),
	FN("bind_address", on_default_listener),
	STORE("protocol", V_WORD, S_LISTENER, L(protocol), 0, 0, NULL),
	STORE("socket_domain", V_WORD, S_LISTENER, L(socket_domain), 0, 0, NULL),
	STORE("max_connections", V_INT, S_LISTENER, L(max_connections), -1, 2147483647, "limits.max_connections"),
	STORE("certfile", V_PATH, S_LISTENER, L(certfile), 0, 0, "certfile"),
	STORE("keyfile", V_PATH, S_LISTENER, L(keyfile), 0, 0, "keyfile"),
	STORE("cafile", V_PATH, S_LISTENER, L(cafile), 0, 0, "cafile"),
	STORE("require_certificate", V_BOOL, S_LISTENER, L(require_certificate), 0, 1, "require_certificate"),
	STORE("use_identity_as_username", V_BOOL, S_LISTENER, L(use_identity_as_username), 0, 1,
	      "use_identity_as_username"),
	STORE("ciphers", V_STR, S_LISTENER, L(ciphers), 0, 0, "ciphers"),
	STORE("tls_version", V_WORD, S_LISTENER, L(tls_version), 0, 0, "tls_version"),
	/* security: global, or per listener with per_listener_settings true */
	STORE("per_listener_settings", V_BOOL, S_GLOBAL, G(per_listener_settings), 0, 1, NULL),
	STORE("allow_anonymous", V_BOOL, S_SECURITY, SEC(allow_anonymous), 0, 1, "allow_anonymous"),
	STORE("password_file", V_PATH, S_SECURITY, SEC(password_file), 0, 0, "password_file"),
	STORE("acl_file", V_PATH, S_SECURITY, SEC(acl_file), 0, 0, "acl_file"),
	/* limits:  Mosquitto's bounds, then roost's; 0 = unlimited -> roost's maximum */
	LIMIT("max_packet_size", max_packet_size, 20, 268435455, 1, 268435455, false),
	LIMIT("max_queued_messages", max_queued_messages, -2147483647, 2147483647, 0, 10000000, false),
	LIMIT("max_queued_bytes", max_queued_bytes, -2147483647, 2147483647, 0, 1099511627776LL, false),
	LIMIT("max_inflight_messages", max_inflight_messages, 0, 65535, 1, 65535, true),
	LIMIT("max_keepalive", max_keepalive, 10, 65535, 0, 65535, false),
	/* persistence */
	STORE("persistence", V_BOOL, S_GLOBAL, G(persistence), 0, 1, "persistence.enabled"),
	STORE("persistence_location", V_PATH, S_GLOBAL, G(persistence_location), 0, 0, "persistence.path"),
	STORE("persistence_file", V_STR, S_GLOBAL, G(persistence_file), 0, 0, NULL),
	NOTE("autosave_interval", "roost stores every change as it happens (group commit)"),
	NOTE("autosave_on_changes", "roost stores every change as it happens (group commit)"),
	/* logging and process */
	NOTE("log_dest", "roost logs to stderr (the journal under systemd); set log.level for detail"),
	NOTE("log_type", "roost logs to stderr (the journal under systemd); set log.level for detail"),
	NOTE("log_facility", "roost logs to stderr (the journal under systemd)"),
	NOTE("log_timestamp", "roost's log lines always carry a UTC timestamp"),
	NOTE("log_timestamp_format", "roost's log lines always carry a UTC timestamp"),
	NOTE("connection_messages", "roost always logs connections at level info"),
	NOTE("websockets_log_level", "roost logs to stderr"),
	NOTE("user", "run roost as its own user (the systemd unit does)"),
	NOTE("pid_file", "roost writes no pid file (systemd tracks the process)"),
	FN("include_dir", on_include_dir),
	FN("connection", on_connection),
	/* not (yet) in roost */
	WARN("max_inflight_bytes", "roost limits inflight messages by count only"),
	WARN("message_size_limit", "deprecated in Mosquitto; use max_packet_size"),
	WARN("memory_limit", "roost has no broker-wide memory cap; see limits.max_queued_bytes"),
	WARN("max_qos", "roost grants QoS up to 2"),
	WARN("max_topic_alias", "roost does not use topic aliases towards clients"),
	WARN("queue_qos0_messages", "roost does not queue QoS 0 messages for offline clients"),
	WARN("upgrade_outgoing_qos", "roost delivers at the lower of the two QoS levels, as MQTT says"),
	WARN("retain_available", "roost always supports retained messages"),
	WARN("allow_duplicate_messages", "not an option in roost"),
	WARN("check_retain_source", "not an option in roost"),
	WARN("persistent_client_expiration", "roost keeps persistent sessions until they are cleaned"),
	WARN("retry_interval", "removed in Mosquitto 2.0"),
	WARN("set_tcp_nodelay", "roost always sets TCP_NODELAY"),
	WARN("sys_interval", "roost publishes its own $SYS topics"),
	WARN("allow_zero_length_clientid", "roost assigns a client id to v5 clients that send none"),
	WARN("auto_id_prefix", "not an option in roost"),
	WARN("clientid_prefixes", "not an option in roost"),
	WARN("plugin", "roost has no plugins; its components are built in"),
	WARN("auth_plugin", "roost has no plugins; its components are built in"),
	WARN("auth_plugin_deny_special_chars", "roost has no plugins"),
	WARN("psk_file", "roost has no TLS-PSK"),
	WARN("psk_hint", "roost has no TLS-PSK"),
	WARN("capath", "use cafile (a PEM bundle)"),
	WARN("crlfile", "roost has no certificate revocation lists yet"),
	WARN("dhparamfile", "roost uses OpenSSL's built-in groups"),
	WARN("ciphers_tls1.3", "roost uses OpenSSL's TLS 1.3 cipher suites"),
	WARN("tls_engine", "roost has no TLS engines"),
	WARN("tls_engine_kpass_sha1", "roost has no TLS engines"),
	WARN("tls_keyform", "roost reads PEM keys"),
	WARN("use_subject_as_username", "roost has use_identity_as_username (the CN)"),
	WARN("use_username_as_clientid", "not an option in roost"),
	WARN("require_ocsp", "not an option in roost"),
	WARN("mount_point", "roost has no mount points"),
	WARN("bind_interface", "bind to the interface's address instead"),
	WARN("http_dir", "roost serves no files over HTTP"),
	WARN("websockets_headers_size", "roost bounds the upgrade request at 8 KiB"),
	/* bridge options: only inside a `connection` section */
	BRIDGE("address"), BRIDGE("addresses"), BRIDGE("topic"), BRIDGE("bridge_attempt_unsubscribe"),
	BRIDGE("bridge_bind_address"), BRIDGE("bridge_cafile"), BRIDGE("bridge_capath"), BRIDGE("bridge_alpn"),
	BRIDGE("bridge_certfile"), BRIDGE("bridge_keyfile"), BRIDGE("bridge_identity"), BRIDGE("bridge_insecure"),
	BRIDGE("bridge_require_ocsp"), BRIDGE("bridge_max_packet_size"), BRIDGE("bridge_outgoing_retain"),
	BRIDGE("bridge_protocol_version"), BRIDGE("bridge_psk"), BRIDGE("bridge_tls_version"),
	BRIDGE("cleansession"), BRIDGE("local_cleansession"), BRIDGE("clientid"), BRIDGE("remote_clientid"),
	BRIDGE("local_clientid"), BRIDGE("local_password"), BRIDGE("local_username"), BRIDGE("remote_password"),
	BRIDGE("remote_username"), BRIDGE("idle_timeout"), BRIDGE("keepalive_interval"), BRIDGE("notifications"),
	BRIDGE("notifications_local_only"), BRIDGE("notification_topic"), BRIDGE("restart_timeout"),
	BRIDGE("round_robin"), BRIDGE("start_type"), BRIDGE("threshold"), BRIDGE("try_private"),
};
#define N_KEYS (sizeof keys / sizeof keys[0])

/* ---- messages ------------------------------------------------------------- */

static int broken(where at, const char *fmt, const char *arg)
{
	fprintf(stderr, "%s:%d: ", at.file, at.line);
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	return 2;
}

static void say(where at, const char *kind, const char *key, const char *why)
{
	fprintf(stderr, "%s:%d: %s: %s: %s\n", at.file, at.line, kind, key, why);
}

/* ---- values ------------------------------------------------------------------ */

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	return s;
}

/* The next space-separated word of *rest (Mosquitto splits on ' ' only). */
static char *word(char **rest)
{
	char *s = *rest;
	while (*s == ' ')
		s++;
	if (!*s)
		return NULL;
	char *end = strchr(s, ' ');
	if (end) {
		*end = '\0';
		*rest = end + 1;
	} else {
		*rest = s + strlen(s);
	}
	return s;
}

/* A relative path is taken relative to the directory of the file naming
 * it, made absolute so the YAML works from any working directory. */
static char *path_from(const char *file, const char *p)
{
	if (p[0] == '/')
		return roost_strdup(p);
	const char *slash = strrchr(file, '/');
	char dir[PATH_MAX];
	int dn = slash ? (int)(slash - file) : 1;
	snprintf(dir, sizeof dir, "%.*s", slash == file ? 1 : dn, slash ? file : ".");
	char *real = realpath(dir, NULL);
	const char *base = real ? real : dir;
	size_t n = strlen(base) + 1 + strlen(p) + 1;
	char *out = roost_malloc(n);
	if (out)
		snprintf(out, n, "%s/%s", strcmp(base, "/") ? base : "", p);
	free(real); /* realpath's buffer comes from malloc */
	return out;
}

static int parse_int(const char *s, long long *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end)
		return -1;
	*out = v;
	return 0;
}

/* Parse rest as k's type into v (Mosquitto's rules); 0, or 2 on an error. */
static int set_val(const mkey *k, val *v, char *rest, where at)
{
	if (v->set && (k->type == V_STR || k->type == V_PATH))
		return broken(at, "duplicate %s value (Mosquitto refuses it)", k->name);
	char *w = k->type == V_STR || k->type == V_PATH ? trim(rest) : word(&rest);
	if (!w || !*w)
		return broken(at, "empty %s value", k->name);
	long long i = 0;
	if (k->type == V_INT && parse_int(w, &i) != 0)
		return broken(at, "%s: not a number", k->name);
	if (k->type == V_INT && (i < k->min || i > k->max))
		return broken(at, "%s: out of the range Mosquitto accepts", k->name);
	if (k->type == V_BOOL) {
		if (strcmp(w, "true") && strcmp(w, "false") && strcmp(w, "1") && strcmp(w, "0"))
			return broken(at, "%s: not a boolean (true, false, 1 or 0)", k->name);
		i = !strcmp(w, "true") || !strcmp(w, "1");
	}
	char *s = k->type == V_PATH ? path_from(at.file, w) : roost_strdup(w);
	if (!s)
		return broken(at, "%s", "out of memory");
	roost_free(v->s);
	*v = (val){.set = true, .i = i, .s = s, .at = at};
	return 0;
}

static val *slot(conv *c, const mkey *k)
{
	switch (k->scope) {
	case S_GLOBAL: return (val *)((char *)&c->g + k->off);
	case S_LISTENER: return (val *)((char *)c->cur + k->off);
	case S_SECURITY: break;
	}
	/* Read at this line, as Mosquitto does: per_listener_settings applies
	 * to the security options that come after it. */
	security *sec = c->g.per_listener_settings.i ? &c->cur->sec : &c->sec;
	return (val *)((char *)sec + k->off);
}

/* ---- lines with their own rule ----------------------------------------------- */

static int on_listener(conv *c, const mkey *k, char *rest, where at)
{
	(void)k;
	static const mkey port = STORE("listener", V_INT, S_LISTENER, 0, 0, 65535, NULL);
	if (c->n == MAX_LISTENERS)
		return broken(at, "%s", "more listeners than roost reads from one file (64)");
	c->cur = &c->ls[++c->n];
	c->cur->defined = true;
	c->cur->at = at;
	c->local_only = false;
	c->in_bridge = false;
	char *w = word(&rest);
	int rc = set_val(&port, &c->cur->port, w ? w : "", at);
	if (rc)
		return rc;
	char *addr = word(&rest);
	if (c->cur->port.i == 0 && (!addr || addr[0] == '#'))
		return broken(at, "%s", "a listener with port 0 must name a Unix socket path");
	if (addr && addr[0] != '#' && !(c->cur->bind.s = roost_strdup(addr)))
		return broken(at, "%s", "out of memory");
	c->cur->bind.set = addr && addr[0] != '#';
	return 0;
}

static int on_default_listener(conv *c, const mkey *k, char *rest, where at)
{
	static const mkey port = STORE("port", V_INT, S_LISTENER, 0, 1, 65535, NULL);
	static const mkey bind = STORE("bind_address", V_STR, S_LISTENER, 0, 0, 0, NULL);
	mlistener *d = &c->ls[0];
	c->local_only = false;
	d->defined = true;
	if (!d->at.file)
		d->at = at;
	return strcmp(k->name, "port") == 0 ? set_val(&port, &d->port, rest, at) : set_val(&bind, &d->bind, rest, at);
}

static int on_connection(conv *c, const mkey *k, char *rest, where at)
{
	(void)k;
	char *name = trim(rest);
	if (!*name)
		return broken(at, "%s", "empty connection name");
	fprintf(stderr, "%s:%d: warning: bridge '%s' not carried over: roost has no bridge yet; its options up to the "
	                "next 'connection' are left out\n", at.file, at.line, name);
	c->in_bridge = true;
	return 0;
}

static int read_file(conv *c, const char *path, where from);

/* Mosquitto's order: case-insensitive first, then by case at the first difference. */
static int conf_order(const void *a, const void *b)
{
	const char *s1 = *(char *const *)a, *s2 = *(char *const *)b;
	for (; *s1 && *s2; s1++, s2++) {
		int d = toupper((unsigned char)*s1) - toupper((unsigned char)*s2);
		if (d)
			return d;
		if (*s1 != *s2)
			return (unsigned char)*s1 - (unsigned char)*s2;
	}
	return (unsigned char)*s1 - (unsigned char)*s2;
}

static int on_include_dir(conv *c, const mkey *k, char *rest, where at)
{
	(void)k;
	if (c->depth > 1) /* Mosquitto reads include_dir in the main file only */
		return 0;
	char *dir = trim(rest);
	if (!*dir)
		return broken(at, "%s", "empty include_dir value");
	char *path = path_from(at.file, dir);
	DIR *d = path ? opendir(path) : NULL;
	if (!d) {
		int rc = broken(at, "include_dir %s: cannot be read", path ? path : dir);
		roost_free(path);
		return rc;
	}
	char *names[MAX_FILES];
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < MAX_FILES) {
		size_t len = strlen(e->d_name);
		if (len > 5 && strcmp(e->d_name + len - 5, ".conf") == 0 && (names[n] = roost_strdup(e->d_name)))
			n++;
	}
	closedir(d);
	qsort(names, n, sizeof names[0], conf_order);
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		size_t sz = strlen(path) + strlen(names[i]) + 2;
		char *file = roost_malloc(sz);
		if (file && rc == 0) {
			snprintf(file, sz, "%s/%s", path, names[i]);
			rc = read_file(c, file, at);
		}
		roost_free(file);
		roost_free(names[i]);
	}
	roost_free(path);
	return rc;
}

/* ---- reading ----------------------------------------------------------------- */

static const mkey *find_key(const char *name)
{
	for (size_t i = 0; i < N_KEYS; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static int do_line(conv *c, char *line, where at)
{
	char *rest = line;
	char *key = word(&rest);
	if (!key)
		return 0;
	const mkey *k = find_key(key);
	if (!k) {
		say(at, "warning", key, "unknown option, left out");
		return 0;
	}
	if (k->act == A_BRIDGE && !c->in_bridge)
		return broken(at, "%s: a bridge option outside a 'connection' section (Mosquitto refuses it)", key);
	switch (k->act) {
	case A_BRIDGE: return 0;
	case A_NOTE: say(at, "note", key, k->note); return 0;
	case A_WARN: say(at, "warning", key, k->note); return 0;
	case A_FN: return k->fn(c, k, rest, at);
	case A_STORE: break;
	}
	/* Mosquitto makes the default listener when one of its own options is
	 * set before the first `listener` (a per-listener password_file too). */
	if (c->cur == &c->ls[0] && (k->scope == S_LISTENER || (k->scope == S_SECURITY && c->g.per_listener_settings.i &&
	                                                      k->off == SEC(password_file))))
		c->ls[0].defined = true;
	return set_val(k, slot(c, k), rest, at);
}

static int read_file(conv *c, const char *path, where from)
{
	char *text = NULL;
	size_t len = 0;
	if (c->n_files == MAX_FILES)
		return broken(from, "%s", "too many included files");
	if (roost_config_read_file(path, MAX_CONF_BYTES, &text, &len) != 0) {
		int saved = errno;
		fprintf(stderr, "%s: %s\n", path, strerror(saved));
		return 2;
	}
	char *name = roost_strdup(path);
	if (!name) {
		roost_free(text);
		return broken(from, "%s", "out of memory");
	}
	c->files[c->n_files++] = name;
	c->depth++;
	int rc = 0, line = 0;
	for (char *p = text, *next; rc == 0 && p < text + len; p = next) {
		char *nl = memchr(p, '\n', (size_t)(text + len - p));
		next = nl ? nl + 1 : text + len;
		if (nl)
			*nl = '\0';
		line++;
		size_t n = strlen(p);
		while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == '\n'))
			p[--n] = '\0';
		if (p[0] != '#' && p[0] != '\0')
			rc = do_line(c, p, (where){name, line});
	}
	c->depth--;
	roost_free(text);
	return rc;
}

/* ---- writing ------------------------------------------------------------------ */

/* A YAML double-quoted scalar: every string goes out quoted and escaped. */
static void yq(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(out, "\\x%02x", *p);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

static void from(FILE *out, where at)
{
	if (at.file)
		fprintf(out, "  # %s:%d", at.file, at.line);
	fputc('\n', out);
}

static void emit_val(FILE *out, const char *indent, const mkey *k, const val *v)
{
	fprintf(out, "%s%s: ", indent, k->roost);
	if (k->type == V_BOOL)
		fputs(v->i ? "true" : "false", out);
	else if (k->type == V_INT)
		fprintf(out, "%lld", v->i);
	else
		yq(out, v->s);
	from(out, v->at);
}

/* Mosquitto 2.0's allow_anonymous when it is not set: false once a
 * listener is configured (local-only mode is handled by the caller). */
static void emit_security(FILE *out, const char *indent, const security *sec)
{
	for (size_t i = 0; i < N_KEYS; i++) {
		const mkey *k = &keys[i];
		if (k->act != A_STORE || k->scope != S_SECURITY)
			continue;
		const val *v = (const val *)((const char *)sec + k->off);
		if (v->set)
			emit_val(out, indent, k, v);
		else if (k->type == V_BOOL)
			fprintf(out, "%s%s: false  # not set: false in Mosquitto 2.0 once a listener is configured\n",
			        indent, k->roost);
	}
}

/* Whether listener l is carried over; says why not at the line that decides. */
static int keep(const mlistener *l, bool *kept)
{
	*kept = false;
	if (l->protocol.set && strcmp(l->protocol.s, "mqtt") != 0 && strcmp(l->protocol.s, "websockets") != 0)
		return broken(l->protocol.at, "protocol %s: Mosquitto knows mqtt and websockets", l->protocol.s);
	if (l->socket_domain.set && strcmp(l->socket_domain.s, "ipv4") && strcmp(l->socket_domain.s, "ipv6"))
		return broken(l->socket_domain.at, "socket_domain %s: Mosquitto knows ipv4 and ipv6", l->socket_domain.s);
	if (l->port.set && l->port.i == 0) {
		say(l->at, "warning", "listener", "a Unix socket listener is not carried over");
		return 0;
	}
	if (l->tls_version.set && strcmp(l->tls_version.s, "tlsv1.2") && strcmp(l->tls_version.s, "tlsv1.3")) {
		if (strcmp(l->tls_version.s, "tlsv1.1") && strcmp(l->tls_version.s, "tlsv1"))
			return broken(l->tls_version.at, "tls_version %s: not a TLS version", l->tls_version.s);
		say(l->tls_version.at, "warning", "tls_version", "roost's minimum is TLS 1.2; tlsv1.2 is used");
	}
	*kept = true;
	return 0;
}

static void emit_listener(const conv *c, FILE *out, const mlistener *l)
{
	fprintf(out, "  - port: %lld", l->port.set ? l->port.i : 1883);
	from(out, l->at);
	if (l->bind.set) {
		fputs("    bind: ", out);
		yq(out, l->bind.s);
		fputc('\n', out);
	} else if (l->socket_domain.set) {
		fprintf(out, "    bind: \"%s\"\n", strcmp(l->socket_domain.s, "ipv6") == 0 ? "::" : "0.0.0.0");
	} else {
		fputs("    # no address: every address, as in Mosquitto (roost's default bind)\n", out);
	}
	/* The same key and words as Mosquitto's (ws://, or wss:// with a certfile). */
	if (l->protocol.set && strcmp(l->protocol.s, "websockets") == 0)
		fputs("    protocol: websockets\n", out);
	for (size_t i = 0; i < N_KEYS; i++) {
		const mkey *k = &keys[i];
		const val *v = (const val *)((const char *)l + k->off);
		if (k->act != A_STORE || k->scope != S_LISTENER || !k->roost || strchr(k->roost, '.') || !v->set)
			continue;
		if (strcmp(k->name, "tls_version") == 0 && strcmp(v->s, "tlsv1.3") != 0)
			continue;
		emit_val(out, "    ", k, v);
	}
	if (c->g.per_listener_settings.i && c->per_listener_keys)
		emit_security(out, "    ", &l->sec);
}

/* *dst = *src with its own copy of the string (every val owns its s). */
static void val_copy(val *dst, const val *src)
{
	roost_free(dst->s);
	*dst = *src;
	dst->s = src->s ? roost_strdup(src->s) : NULL;
	dst->set = src->set && (!src->s || dst->s);
}

/* per_listener_settings without per-listener keys in this roost: one
 * global value, the strictest, and a warning when they differ. */
static void merge_security(conv *c, const mlistener *l)
{
	security *g = &c->sec;
	if (!l->sec.allow_anonymous.set || !l->sec.allow_anonymous.i) {
		roost_free(g->allow_anonymous.s);
		g->allow_anonymous = (val){.set = true, .i = 0, .at = l->sec.allow_anonymous.at};
	} else if (!g->allow_anonymous.set) {
		val_copy(&g->allow_anonymous, &l->sec.allow_anonymous);
	}
	val *files[] = {&g->password_file, &g->acl_file};
	const val *theirs[] = {&l->sec.password_file, &l->sec.acl_file};
	for (size_t i = 0; i < 2; i++) {
		if (theirs[i]->set && !files[i]->set)
			val_copy(files[i], theirs[i]);
		else if (theirs[i]->set && strcmp(theirs[i]->s, files[i]->s) != 0)
			say(theirs[i]->at, "warning", i ? "acl_file" : "password_file",
			    "this roost has one file for every listener; the first one named is used");
	}
}

static int emit_listeners(conv *c, FILE *out)
{
	fputs("listeners:\n", out);
	if (c->local_only) {
		fputs("  # No listener in the Mosquitto file: Mosquitto 2.0 then listens on the loopback\n"
		      "  # addresses only and allows anonymous clients, so only this machine can connect.\n"
		      "  - port: 1883\n    bind: \"127.0.0.1\"\n  - port: 1883\n    bind: \"::1\"\n", out);
		return 0;
	}
	long long conns = 0;
	bool conns_all = true, conns_any = false;
	size_t kept_n = 0;
	for (size_t i = c->ls[0].defined ? 0 : 1; i <= c->n; i++) {
		const mlistener *l = &c->ls[i];
		bool kept;
		int rc = keep(l, &kept);
		if (rc)
			return rc;
		if (!kept)
			continue;
		kept_n++;
		emit_listener(c, out, l);
		if (c->g.per_listener_settings.i && !c->per_listener_keys)
			merge_security(c, l);
		conns_any = conns_any || (l->max_connections.set && l->max_connections.i >= 0);
		conns_all = conns_all && l->max_connections.set && l->max_connections.i >= 0;
		conns += l->max_connections.set ? l->max_connections.i : 0;
	}
	if (kept_n == 0) {
		fprintf(stderr, "%s: no listener roost can serve is left; exiting\n", c->files[0]);
		return 2;
	}
	if (conns_all)
		c->g.max_connections = (val){.set = true, .i = conns};
	else if (conns_any)
		fprintf(stderr, "%s: warning: max_connections is set on some listeners only; roost's limit is for the "
		                "whole broker, left unlimited\n", c->files[0]);
	return 0;
}

static void emit_limits(const conv *c, FILE *out)
{
	bool header = false;
	static const mkey conns = LIMIT("max_connections", max_connections, -1, 0, -1, 10000000, false);
	for (size_t i = 0; i <= N_KEYS; i++) {
		const mkey *k = i < N_KEYS ? &keys[i] : &conns;
		if (k->act != A_STORE || k->scope != S_GLOBAL || !k->roost || strncmp(k->roost, "limits.", 7) != 0)
			continue;
		val v = *(const val *)((const char *)&c->g + k->off);
		if (!v.set)
			continue;
		if (k->zero_max && v.i == 0)
			v.i = k->rmax; /* Mosquitto's 0 = unlimited: roost's largest */
		if (v.i < k->rmin)
			v.i = k->rmin; /* Mosquitto reads a negative limit as none */
		if (v.i > k->rmax) {
			say(v.at, "warning", k->name, "above roost's maximum; the maximum is used");
			v.i = k->rmax;
		}
		if (!header)
			fputs("limits:\n", out);
		header = true;
		fprintf(out, "  %s: %lld", k->roost + 7, v.i);
		from(out, v.at);
	}
}

static void emit_persistence(const conv *c, FILE *out)
{
	const globals *g = &c->g;
	fputs("persistence:\n", out);
	if (!g->persistence.set || !g->persistence.i) {
		fputs("  # Mosquitto kept nothing across restarts (persistence false, its default).\n"
		      "  # Remove this line to keep retained messages and sessions (roost's default).\n"
		      "  enabled: false", out);
		from(out, g->persistence.at);
		return;
	}
	fputs("  enabled: true", out);
	from(out, g->persistence.at);
	const char *loc = g->persistence_location.set ? g->persistence_location.s : "";
	const char *sep = *loc && loc[strlen(loc) - 1] != '/' ? "/" : "";
	const char *mfile = g->persistence_file.set ? g->persistence_file.s : "mosquitto.db";
	/* Mosquitto joins location and file name as they are (location ends in '/'). */
	fprintf(out, "  # Bring Mosquitto's retained messages and sessions over, with roost stopped:\n"
	             "  #   roost import-mosquitto --db %s%s -c THIS_FILE\n", loc, mfile);
	fputs("  path: ", out);
	size_t n = strlen(loc) + strlen(sep) + sizeof "roost.db";
	char *path = roost_malloc(n);
	if (path) {
		snprintf(path, n, "%s%sroost.db", loc, sep);
		yq(out, path);
		roost_free(path);
	} else {
		yq(out, "roost.db");
	}
	from(out, g->persistence_location.at);
}

static void emit_top_security(const conv *c, FILE *out)
{
	if (c->local_only) {
		fputs("# Mosquitto 2.0 without listeners allows anonymous clients (on loopback only).\n"
		      "allow_anonymous: true\n", out);
		for (size_t i = 0; i < N_KEYS; i++) {
			const mkey *k = &keys[i];
			const val *v = (const val *)((const char *)&c->sec + k->off);
			if (k->act == A_STORE && k->scope == S_SECURITY && k->type != V_BOOL && v->set)
				emit_val(out, "", k, v);
		}
		return;
	}
	if (c->g.per_listener_settings.i && c->per_listener_keys)
		return; /* every listener carries its own */
	if (c->g.per_listener_settings.i)
		fprintf(stderr, "%s:%d: warning: per_listener_settings: this roost has no per-listener security "
		                "options; one setting for all listeners is written (the strictest)\n",
		        c->g.per_listener_settings.at.file, c->g.per_listener_settings.at.line);
	fputs("# allow_anonymous keeps Mosquitto 2.0's meaning: false also when it was not set.\n"
	      "# (roost's own default, without the key, admits anonymous clients from this machine only.)\n",
	      out);
	emit_security(out, "", &c->sec);
}

static int emit(conv *c, FILE *out)
{
	fprintf(out, "# roost.yaml converted from %s by `roost import-mosquitto`.\n"
	             "# Check it with: roost --test-config -c FILE\n", c->files[0]);
	int rc = emit_listeners(c, out);
	if (rc)
		return rc;
	emit_top_security(c, out);
	emit_limits(c, out);
	emit_persistence(c, out);
	return 0;
}

/* Does this roost read listeners[].allow_anonymous (per-listener security)? */
static bool has_per_listener_keys(void)
{
	static const char probe[] = "listeners:\n  - port: 1\n    allow_anonymous: true\n";
	roost_config *cfg = NULL;
	roost_config_errors errs = {0};
	roost_err err = roost_config_load_string("probe", probe, sizeof probe - 1, &cfg, &errs);
	roost_config_errors_cleanup(&errs);
	roost_config_free(cfg);
	return err == ROOST_OK;
}

static void cleanup(conv *c)
{
	for (size_t i = 0; i <= c->n; i++) {
		mlistener *l = &c->ls[i];
		val *vals[] = {&l->port, &l->bind, &l->protocol, &l->socket_domain, &l->max_connections, &l->certfile,
		               &l->keyfile, &l->cafile, &l->require_certificate, &l->use_identity_as_username,
		               &l->ciphers, &l->tls_version, &l->sec.allow_anonymous, &l->sec.password_file,
		               &l->sec.acl_file};
		for (size_t j = 0; j < sizeof vals / sizeof vals[0]; j++)
			roost_free(vals[j]->s);
	}
	val *g[] = {&c->sec.allow_anonymous, &c->sec.password_file, &c->sec.acl_file, &c->g.per_listener_settings,
	            &c->g.persistence, &c->g.persistence_location, &c->g.persistence_file, &c->g.max_packet_size,
	            &c->g.max_queued_messages, &c->g.max_queued_bytes, &c->g.max_inflight_messages,
	            &c->g.max_keepalive};
	for (size_t j = 0; j < sizeof g / sizeof g[0]; j++)
		roost_free(g[j]->s);
	for (size_t i = 0; i < c->n_files; i++)
		roost_free(c->files[i]);
}

/* The YAML goes through roost's own parser before it is printed. */
static int check_and_print(const char *text, size_t len)
{
	roost_config *cfg = NULL;
	roost_config_errors errs = {0};
	roost_err err = roost_config_load_string("(converted)", text, len, &cfg, &errs);
	if (err) {
		fprintf(stderr, "roost import-mosquitto: the converted configuration does not load (a bug):\n");
		roost_config_errors_print(&errs, stderr);
	} else {
		fwrite(text, 1, len, stdout);
	}
	roost_config_errors_cleanup(&errs);
	roost_config_free(cfg);
	return err ? 1 : 0;
}

int roost_import_mosquitto_conf(const char *conf_path)
{
	conv *c = roost_calloc(1, sizeof *c);
	if (!c) {
		fprintf(stderr, "roost import-mosquitto: out of memory\n");
		return 1;
	}
	c->cur = &c->ls[0];
	c->local_only = true;
	c->per_listener_keys = has_per_listener_keys();
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	int rc = out ? read_file(c, conf_path, (where){conf_path, 0}) : 1;
	if (rc == 0)
		rc = emit(c, out);
	if (out)
		fclose(out);
	if (rc == 0)
		rc = check_and_print(text, len);
	free(text); /* open_memstream's buffer comes from malloc */
	cleanup(c);
	roost_free(c);
	return rc;
}
