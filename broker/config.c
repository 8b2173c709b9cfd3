/*
 * config.c — the configuration table and its YAML parser.
 *
 * Every key lives in exactly one line of `config_keys` below (or of
 * `listener_keys` for the items of the `listeners` sequence): its dotted path,
 * type, bounds, default, reload policy and where it is stored in the struct.
 * Nothing else in this file names a key, so adding one is one table line plus
 * the struct field in include/roost/config.h.
 *
 * The parser walks libyaml's *event* stream rather than loading a document
 * tree: every event carries its own line, unknown subtrees are skipped with a
 * depth counter (no recursion on untrusted nesting), and aliases are seen as
 * what they are instead of being silently resolved. It never stops at the
 * first problem: every error is appended to a roost_config_errors list as
 * "file:line: message". Only a YAML syntax error (libyaml cannot resume after
 * one) or an allocation failure ends the walk early; the errors found up to
 * that point are kept.
 *
 * Scalars: integers are decimal with an optional sign (no octal, hex, '_' or
 * trailing junk; leading zeros are read as decimal), booleans are
 * true/false/yes/no/on/off in any case, and both may be quoted ("123"). An
 * empty value ("key:" with nothing after it) is an error for a leaf key and
 * means "all defaults" for a section such as "limits:". An empty document, or
 * one holding only comments, gives the defaults.
 *
 * On error *out is NULL and everything allocated here has been released; the
 * caller still owns *errs and releases it with roost_config_errors_cleanup()
 * (also after ROOST_ERR_NOMEM, when the list may be partial). *errs is reset
 * on entry, so do not pass a list that still holds errors.
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "roost/alloc.h"
#include "roost/config.h"
#include "roost/log.h"

/*
 * Reload policy, recorded per key for the reload path: LIVE keys take effect
 * when a reload swaps the config pointer (for new connections, packets and
 * decisions; what a session already negotiated stays), RESTART keys (e.g. the
 * listening sockets) need the process restarted and a reload only warns.
 */
typedef enum roost_reload_policy {
	ROOST_RELOAD_LIVE,
	ROOST_RELOAD_RESTART,
} roost_reload_policy;

typedef enum key_type {
	KEY_BOOL,     /* bool */
	KEY_TRIBOOL,  /* int: -1 when not set, else 0 or 1 (a default that depends on context) */
	KEY_INT,      /* int32_t / uint32_t / int64_t / uint64_t by size and sign of min */
	KEY_STRING,   /* char *, owned, never empty */
	KEY_LOGLEVEL, /* int holding a roost_log_level */
	KEY_LIST,     /* sequence of mappings, each parsed with `items` */
	KEY_STRLIST,  /* char ** + size_t count: a sequence of strings, or one string */
	KEY_ENUM,     /* int: index of the value in enum_names */
} key_type;

typedef struct key_table key_table;

typedef struct key_def {
	const char *path;            /* dotted path relative to the table */
	key_type type;
	roost_reload_policy reload;
	bool required;               /* must appear in the mapping (list items) */
	size_t offset;               /* offsetof the field in the table's struct */
	size_t size;                 /* sizeof the field (KEY_INT) */
	long long min, max;          /* inclusive bounds (KEY_INT) */
	long long def;               /* default (KEY_BOOL, KEY_INT, KEY_LOGLEVEL) */
	const char *def_str;         /* default (KEY_STRING; NULL = unset), sole element (KEY_STRLIST) */
	const key_table *items;      /* KEY_LIST: table for each element */
	size_t count_offset;         /* KEY_LIST, KEY_STRLIST: offsetof the size_t count */
	size_t item_size;            /* KEY_LIST: sizeof one element */
	size_t min_items;            /* KEY_LIST: at least this many */
	const char *item_name;       /* KEY_LIST: "listener"; KEY_ENUM: "one of a, b" */
	const char *const *enum_names; /* KEY_ENUM: NULL-terminated accepted words */
	long long not_yet_above;     /* KEY_INT with not_yet: values above are accepted words ... */
	const char *not_yet;         /* ... refused with this reason (a feature still to come) */
	bool empty_ok;               /* KEY_STRING: "" is a value (a topic prefix) */
} key_def;

struct key_table {
	const key_def *keys;
	size_t n;
};

#define MEMBER_SIZE(type, member) sizeof(((type *)0)->member)

#define DEF_BOOL(T, p, m, d, rl) \
	{ .path = p, .type = KEY_BOOL, .reload = rl, .offset = offsetof(T, m), .def = d }
#define DEF_TRIBOOL(T, p, m, rl) \
	{ .path = p, .type = KEY_TRIBOOL, .reload = rl, .offset = offsetof(T, m), .def = -1 }
#define DEF_INT(T, p, m, lo, hi, d, rl) \
	{ .path = p, .type = KEY_INT, .reload = rl, .offset = offsetof(T, m), \
	  .size = MEMBER_SIZE(T, m), .min = lo, .max = hi, .def = d }
#define DEF_INT_REQUIRED(T, p, m, lo, hi, d, rl) \
	{ .path = p, .type = KEY_INT, .reload = rl, .required = true, .offset = offsetof(T, m), \
	  .size = MEMBER_SIZE(T, m), .min = lo, .max = hi, .def = d }
#define DEF_INT_NOT_YET(T, p, m, lo, hi, d, above, why, rl) \
	{ .path = p, .type = KEY_INT, .reload = rl, .offset = offsetof(T, m), \
	  .size = MEMBER_SIZE(T, m), .min = lo, .max = hi, .def = d, .not_yet_above = above, .not_yet = why }
#define DEF_STRING_EMPTY_OK(T, p, m, rl) \
	{ .path = p, .type = KEY_STRING, .reload = rl, .offset = offsetof(T, m), .empty_ok = true }
#define DEF_STRING_REQUIRED(T, p, m, rl) \
	{ .path = p, .type = KEY_STRING, .reload = rl, .required = true, .offset = offsetof(T, m) }
#define DEF_STRLIST_REQUIRED(T, p, m, count, rl) \
	{ .path = p, .type = KEY_STRLIST, .reload = rl, .required = true, .offset = offsetof(T, m), \
	  .count_offset = offsetof(T, count), .min_items = 1 }
#define DEF_STRING(T, p, m, d, rl) \
	{ .path = p, .type = KEY_STRING, .reload = rl, .offset = offsetof(T, m), .def_str = d }
#define DEF_LOGLEVEL(T, p, m, d, rl) \
	{ .path = p, .type = KEY_LOGLEVEL, .reload = rl, .offset = offsetof(T, m), .def = d }

#define DEF_LIST(T, p, m, count, item_type, item_table, at_least, what, rl) \
	{ .path = p, .type = KEY_LIST, .reload = rl, .offset = offsetof(T, m), .items = &item_table, \
	  .count_offset = offsetof(T, count), .item_size = sizeof(item_type), .min_items = at_least, \
	  .item_name = what }

#define DEF_STRLIST(T, p, m, count, d, rl) \
	{ .path = p, .type = KEY_STRLIST, .reload = rl, .offset = offsetof(T, m), \
	  .count_offset = offsetof(T, count), .def_str = d, .min_items = 1 }

#define DEF_ENUM(T, p, m, names, expect, d, rl) \
	{ .path = p, .type = KEY_ENUM, .reload = rl, .offset = offsetof(T, m), .def = d, \
	  .enum_names = names, .item_name = expect }

#define LIVE ROOST_RELOAD_LIVE
#define RESTART ROOST_RELOAD_RESTART
#define ONE_TIB 1099511627776LL /* 2^40 */

/*
 * One element of `listeners`. `port` is required in a file; its default
 * (1883) only serves the built-in default listener. Port 0 asks the kernel
 * for a free port (tests).
 */
static const char *const tls_version_names[] = {"tlsv1.2", "tlsv1.3", NULL};
static const char *const protocol_names[] = {"mqtt", "websockets", NULL}; /* ROOST_LISTENER_* order */

static const key_def listener_keys[] = {
	/*                                       path    field min max    default reload */
	DEF_INT_REQUIRED(roost_listener_config, "port", port, 0,  65535, 1883,   RESTART),
	DEF_STRING(roost_listener_config,       "bind", bind, NULL,              RESTART), /* NULL: "::" dual-stack */
	/* TLS; certificate files are re-read on SIGHUP. */
	DEF_STRING(roost_listener_config, "certfile", certfile, NULL, LIVE),
	DEF_STRING(roost_listener_config, "keyfile", keyfile, NULL, LIVE),
	DEF_STRING(roost_listener_config, "cafile", cafile, NULL, LIVE),
	DEF_BOOL(roost_listener_config, "require_certificate", require_certificate, false, RESTART),
	DEF_BOOL(roost_listener_config, "use_identity_as_username", use_identity_as_username, false, RESTART),
	DEF_STRING(roost_listener_config, "ciphers", ciphers, NULL, RESTART),
	DEF_ENUM(roost_listener_config, "tls_version", tls_version, tls_version_names, "one of tlsv1.2, tlsv1.3", 0,
	         RESTART),
	/* MQTT over WebSockets (MQTT 5.0 section 6); with certfile: wss. */
	DEF_ENUM(roost_listener_config, "protocol", protocol, protocol_names, "one of mqtt, websockets", 0, RESTART),
	/* Per-listener security (Mosquitto's per_listener_settings); not set:
	 * the top-level key of the same name. Files re-read on SIGHUP. */
	DEF_TRIBOOL(roost_listener_config, "allow_anonymous", allow_anonymous, LIVE),
	DEF_STRING(roost_listener_config, "password_file", password_file, NULL, LIVE),
	DEF_STRING(roost_listener_config, "acl_file", acl_file, NULL, LIVE),
};
static const key_table listener_table = {listener_keys, sizeof listener_keys / sizeof listener_keys[0]};

/* One element of a bridge's `topics`, and one element of `bridges`. */
static const char *const direction_names[] = {"out", "in", "both", NULL};
static const key_def bridge_topic_keys[] = {
	DEF_STRING_REQUIRED(roost_bridge_topic_config, "pattern", pattern, RESTART),
	DEF_ENUM(roost_bridge_topic_config, "direction", direction, direction_names, "one of out, in, both", 0,
	         RESTART),
	DEF_INT(roost_bridge_topic_config, "qos", qos, 0, 2, 0, RESTART),
	DEF_STRING_EMPTY_OK(roost_bridge_topic_config, "local_prefix", local_prefix, RESTART),
	DEF_STRING_EMPTY_OK(roost_bridge_topic_config, "remote_prefix", remote_prefix, RESTART),
};
static const key_table bridge_topic_table = {bridge_topic_keys, sizeof bridge_topic_keys / sizeof bridge_topic_keys[0]};

static const key_def bridge_keys[] = {
	DEF_STRING_REQUIRED(roost_bridge_config, "name", name, RESTART),
	DEF_STRLIST_REQUIRED(roost_bridge_config, "address", address, n_address, RESTART),
	DEF_INT(roost_bridge_config, "port", port, 1, 65535, 1883, RESTART),
	DEF_INT_NOT_YET(roost_bridge_config, "protocol_version", protocol_version, 4, 5, 4, 4,
	                "MQTT 5 bridges are not supported yet; use protocol_version: 4 (MQTT 3.1.1)", RESTART),
	DEF_STRING(roost_bridge_config, "client_id", client_id, NULL, RESTART),
	DEF_INT(roost_bridge_config, "keepalive", keepalive, 0, 65535, 60, RESTART),
	DEF_BOOL(roost_bridge_config, "clean_session", clean_session, false, RESTART),
	DEF_BOOL(roost_bridge_config, "try_private", try_private, true, RESTART),
	DEF_STRING(roost_bridge_config, "username", username, NULL, RESTART),
	DEF_STRING(roost_bridge_config, "password", password, NULL, RESTART),
	DEF_STRING(roost_bridge_config, "tls.cafile", tls_cafile, NULL, RESTART),
	DEF_STRING(roost_bridge_config, "tls.certfile", tls_certfile, NULL, RESTART),
	DEF_STRING(roost_bridge_config, "tls.keyfile", tls_keyfile, NULL, RESTART),
	DEF_TRIBOOL(roost_bridge_config, "tls.insecure", tls_insecure, RESTART),
	DEF_BOOL(roost_bridge_config, "outgoing_retain", outgoing_retain, true, RESTART),
	DEF_INT(roost_bridge_config, "max_queued_messages", max_queued_messages, 1, 10000000, 10000, RESTART),
	DEF_BOOL(roost_bridge_config, "notifications", notifications, true, RESTART),
	DEF_STRING(roost_bridge_config, "notification_topic", notification_topic, NULL, RESTART),
	DEF_LIST(roost_bridge_config, "topics", topics, n_topics, roost_bridge_topic_config, bridge_topic_table, 0,
	         "topic", RESTART),
};
static const key_table bridge_table = {bridge_keys, sizeof bridge_keys / sizeof bridge_keys[0]};

/*
 * The keys of roost.yaml and their defaults (see include/roost/config.h and
 * etc/roost.yaml, which must agree with this table):
 *
 *   listeners                     sequence of {port, bind, TLS keys, allow_anonymous,
 *                                 password_file, acl_file}, at least one;
 *                                 default one listener on port 1883; bind unset:
 *                                 "::" dual-stack (IPv6 and IPv4), 0.0.0.0 without IPv6;
 *                                 protocol: mqtt (default) | websockets
 *   allow_anonymous               bool; unset: anonymous clients only from a
 *                                 loopback peer address (this machine)
 *   password_file, acl_file       Mosquitto-format files (re-read on SIGHUP)
 *   limits.max_packet_size        1..268435455 bytes, default 268435455
 *   limits.max_queued_messages    0..10000000 per client, default 1000 (0 = unlimited)
 *   limits.max_queued_bytes       0..2^40 per client, default 0 (unlimited)
 *   limits.max_inflight_messages  1..65535 per client, default 20
 *   limits.max_connections        -1..10000000, default -1 (unlimited)
 *   limits.connect_timeout        1..3600 seconds, default 10
 *   limits.max_keepalive          0..65535 seconds, default 65535
 *   limits.max_subscriptions      0..10000000 per client, default 0 (unlimited)
 *   limits.max_topic_levels       1..65535 levels per topic or filter, default 200
 *   limits.max_topic_length       1..65535 bytes per topic or filter, default 65535
 *   limits.max_retained_messages  0..100000000, default 0 (unlimited)
 *   limits.max_connect_size       128..268435455 bytes before CONNACK, default 262144
 *   limits.receive_maximum        1..65535, MQTT 5 Receive Maximum, default 65535
 *   limits.max_topic_alias        0..65535, MQTT 5 Topic Alias Maximum, default 10
 *   limits.max_qos                0..2, MQTT 5 Maximum QoS, default 2
 *   limits.persistent_session_expiry 0..4294967295 s for 3.1.1 persistent sessions, default 0 (never)
 *   retain_available              bool, MQTT 5 Retain Available, default true
 *   response_information          MQTT 5 Response Information prefix, default none
 *   log.level                     error|warning|notice|info|debug, default info
 *   sys_interval                  0..86400 seconds between $SYS updates, default 10 (0 = off)
 *
 * Only the listening sockets need a restart; every other key applies to new
 * connections and packets once a reload swaps the config in.
 */
static const char *const sync_names[] = {"normal", "full", NULL};

static const key_def config_keys[] = {
	DEF_LIST(roost_config, "listeners", listeners, n_listeners, roost_listener_config, listener_table, 1,
	         "listener", RESTART),
	DEF_TRIBOOL(roost_config, "allow_anonymous", allow_anonymous, LIVE),
	DEF_STRING(roost_config, "password_file", password_file, NULL, LIVE),
	DEF_STRING(roost_config, "acl_file", acl_file, NULL, LIVE),
	/*      struct        path                            field                          min max        default    reload */
	DEF_INT(roost_config, "limits.max_packet_size",       limits.max_packet_size,        1,  268435455, 268435455, LIVE),
	DEF_INT(roost_config, "limits.max_queued_messages",   limits.max_queued_messages,    0,  10000000,  1000,      LIVE),
	DEF_INT(roost_config, "limits.max_queued_bytes",      limits.max_queued_bytes,       0,  ONE_TIB,   0,         LIVE),
	DEF_INT(roost_config, "limits.max_inflight_messages", limits.max_inflight_messages,  1,  65535,     20,        LIVE),
	DEF_INT(roost_config, "limits.max_connections",       limits.max_connections,        -1, 10000000,  -1,        LIVE),
	DEF_INT(roost_config, "limits.connect_timeout",       limits.connect_timeout,        1,  3600,      10,        LIVE),
	DEF_INT(roost_config, "limits.max_keepalive",         limits.max_keepalive,          0,  65535,     65535,     LIVE),
	DEF_INT(roost_config, "limits.max_subscriptions",     limits.max_subscriptions,      0,  10000000,  0,         LIVE),
	DEF_INT(roost_config, "limits.slow_client_timeout",   limits.slow_client_timeout,    1,  86400,     30,        LIVE),
	DEF_INT(roost_config, "limits.max_topic_levels",      limits.max_topic_levels,       1,  65535,     200,       LIVE),
	DEF_INT(roost_config, "limits.max_topic_length",      limits.max_topic_length,       1,  65535,     65535,     LIVE),
	DEF_INT(roost_config, "limits.max_retained_messages", limits.max_retained_messages,  0,  100000000, 0,         LIVE),
	DEF_INT(roost_config, "limits.max_connect_size",      limits.max_connect_size,       128, 268435455, 262144,   LIVE),
	/* MQTT 5, the connect side: what CONNACK announces */
	DEF_INT(roost_config, "limits.receive_maximum",       limits.receive_maximum,        1,  65535,     65535,     LIVE),
	DEF_INT(roost_config, "limits.max_topic_alias",       limits.max_topic_alias,        0,  65535,     10,        LIVE),
	DEF_INT(roost_config, "limits.max_qos",               limits.max_qos,                0,  2,         2,         LIVE),
	DEF_INT(roost_config, "limits.persistent_session_expiry", limits.persistent_session_expiry, 0, 4294967295LL, 0, LIVE),
	DEF_BOOL(roost_config, "retain_available", retain_available, true, LIVE),
	DEF_STRING(roost_config, "response_information", response_information, NULL, LIVE),
	DEF_LOGLEVEL(roost_config, "log.level", log_level, ROOST_LOG_INFO, LIVE),
	DEF_INT(roost_config, "sys_interval", sys_interval, 0, 86400, 10, RESTART),
	/* persistence: the durable store; no path = in memory only. */
	DEF_BOOL(roost_config, "persistence.enabled", persistence.enabled, true, RESTART),
	DEF_STRING(roost_config, "persistence.path", persistence.path, "roost.db", RESTART),
	DEF_ENUM(roost_config, "persistence.sync", persistence.sync, sync_names, "one of normal, full", 0, RESTART),
	/* mqtt: Home Assistant's MQTT component keys, for the hub connector. */
	DEF_STRING(roost_config, "mqtt.broker", mqtt.broker, NULL, RESTART),
	DEF_INT(roost_config, "mqtt.port", mqtt.port, 1, 65535, 1883, RESTART),
	DEF_STRING(roost_config, "mqtt.client_id", mqtt.client_id, NULL, RESTART),
	DEF_INT(roost_config, "mqtt.keepalive", mqtt.keepalive, 0, 65535, 60, RESTART),
	DEF_STRING(roost_config, "mqtt.username", mqtt.username, NULL, RESTART),
	DEF_STRING(roost_config, "mqtt.password", mqtt.password, NULL, RESTART),
	DEF_STRLIST(roost_config, "mqtt.topics", mqtt.topics, mqtt.n_topics, "home-assistant/#", RESTART),
	DEF_STRING(roost_config, "mqtt.event_type", mqtt.event_type, "mqtt_message_received", RESTART),
	/* hub: Home Assistant's REST API, where events are delivered. */
	DEF_STRING(roost_config, "hub.url", hub.url, NULL, RESTART),
	DEF_STRING(roost_config, "hub.token", hub.token, NULL, RESTART),
	DEF_STRING(roost_config, "hub.cafile", hub.cafile, NULL, RESTART),
	DEF_BOOL(roost_config, "hub.verify_tls", hub.verify_tls, true, RESTART),
	DEF_INT(roost_config, "hub.spool_max", hub.spool_max, 1, 10000000, 10000, RESTART),
	DEF_INT(roost_config, "hub.retry_max", hub.retry_max, 1, 3600, 60, RESTART),
	DEF_INT(roost_config, "hub.timeout", hub.timeout, 1, 600, 10, RESTART),
	/* http: roost's own HTTP API. */
	DEF_INT(roost_config, "http.port", http.port, -1, 65535, 8124, RESTART),
	DEF_STRING(roost_config, "http.bind", http.bind, "127.0.0.1", RESTART),
	DEF_STRING(roost_config, "http.token", http.token, NULL, RESTART),
	DEF_INT(roost_config, "http.max_connections", http.max_connections, 1, 100000, 64, RESTART),
	DEF_INT(roost_config, "http.idle_timeout", http.idle_timeout, 1, 86400, 60, RESTART),
	DEF_INT(roost_config, "http.header_timeout", http.header_timeout, 1, 3600, 10, RESTART),
	DEF_INT(roost_config, "http.body_timeout", http.body_timeout, 1, 3600, 10, RESTART),
	DEF_INT(roost_config, "http.max_streams", http.max_streams, 0, 10000, 16, RESTART),
	/* bridges: other brokers to carry topics to and from. */
	DEF_LIST(roost_config, "bridges", bridges, n_bridges, roost_bridge_config, bridge_table, 0, "bridge", RESTART),
};
static const key_table config_table = {config_keys, sizeof config_keys / sizeof config_keys[0]};

/* Enough for the per-mapping "seen on line" array of any table above. */
#define MAX_TABLE_KEYS 64
_Static_assert(sizeof config_keys / sizeof config_keys[0] <= MAX_TABLE_KEYS, "raise MAX_TABLE_KEYS");
_Static_assert(sizeof listener_keys / sizeof listener_keys[0] <= MAX_TABLE_KEYS, "raise MAX_TABLE_KEYS");
/* Buffer for a displayed key path ("listeners[3].bind"): known paths only. */
#define PATH_MAX_LEN 128
/* Untrusted text quoted in a message is cut after this many bytes. */
#define QUOTE_MAX 48
/* A config file larger than this is refused before parsing. */
#define MAX_FILE_SIZE (16u * 1024 * 1024)

/* ------------------------------------------------------------------------ */
/* Error list                                                               */

typedef struct parse_state {
	yaml_parser_t yp;
	const char *name;           /* for messages */
	const char *text;
	size_t len;
	roost_config_errors errs;
	roost_err fatal;            /* ROOST_OK, or why the walk stopped */
} parse_state;

void roost_config_errors_cleanup(roost_config_errors *errs)
{
	if (!errs)
		return;
	for (size_t i = 0; i < errs->count; i++) {
		roost_free(errs->items[i].file);
		roost_free(errs->items[i].message);
	}
	roost_free(errs->items);
	errs->items = NULL;
	errs->count = 0;
}

/* Append one error; -1 when out of memory (the list stays consistent). */
int roost_config_errors_add(roost_config_errors *errs, const char *file, int line, const char *message)
{
	/* Capacity is implicit: grow to the next power of two when count is one. */
	size_t n = errs->count;
	if (n == 0 || (n & (n - 1)) == 0) {
		size_t cap = n ? n * 2 : 4;
		roost_config_error *items = roost_realloc(errs->items, cap * sizeof *items);
		if (!items)
			return -1;
		errs->items = items;
	}
	char *f = roost_strdup(file);
	char *m = roost_strdup(message);
	if (!f || !m) {
		roost_free(f);
		roost_free(m);
		return -1;
	}
	errs->items[n].file = f;
	errs->items[n].line = line;
	errs->items[n].message = m;
	errs->count = n + 1;
	return 0;
}

static int add_error(parse_state *p, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int add_error(parse_state *p, int line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (roost_config_errors_add(&p->errs, p->name, line, msg) != 0) {
		p->fatal = ROOST_ERR_NOMEM;
		return -1;
	}
	return 0;
}

void roost_config_errors_print(const roost_config_errors *errs, void *FILE_stream)
{
	FILE *f = FILE_stream;
	if (!errs || !f)
		return;
	for (size_t i = 0; i < errs->count; i++) {
		const roost_config_error *e = &errs->items[i];
		if (e->line > 0)
			fprintf(f, "%s:%d: %s\n", e->file, e->line, e->message);
		else
			fprintf(f, "%s: %s\n", e->file, e->message);
	}
}

/*
 * Copy untrusted bytes for a message: control bytes become \xNN so an error
 * stays on one line, and long values are cut with "...".
 */
static const char *quote(char *buf, size_t size, const char *s, size_t n)
{
	size_t o = 0;
	assert(size >= QUOTE_MAX + 8);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (o >= QUOTE_MAX) {
			/* Never leave half a UTF-8 character before the "...". */
			while (o > 0 && ((unsigned char)buf[o - 1] & 0xc0) == 0x80)
				o--;
			if (o > 0 && (unsigned char)buf[o - 1] >= 0xc0)
				o--;
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (c < 0x20 || c == 0x7f)
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
		else
			buf[o++] = (char)c;
	}
	buf[o] = '\0';
	return buf;
}

/*
 * Format a key path for messages or table lookups. Paths are built from
 * table names and list indexes only, so PATH_MAX_LEN never truncates them; a
 * function rather than snprintf so -Wformat-truncation has nothing to guess.
 */
static void format_path(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void format_path(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	assert(n >= 0 && (size_t)n < size);
	(void)n;
}

/* ------------------------------------------------------------------------ */
/* Table helpers                                                            */

/*
 * The child of `prefix` (length plen, "" for the table's root) that key i
 * lives under: sets *name and *nlen to that path component and returns true when
 * it is the key itself (a leaf) rather than a section. Returns false with
 * *nlen == 0 when key i is not under prefix.
 */
static bool child_of(const key_def *k, const char *prefix, size_t plen, const char **name, size_t *nlen)
{
	const char *path = k->path;
	*nlen = 0;
	if (plen) {
		if (strncmp(path, prefix, plen) != 0 || path[plen] != '.')
			return false;
		path += plen + 1;
	}
	const char *dot = strchr(path, '.');
	*name = path;
	*nlen = dot ? (size_t)(dot - path) : strlen(path);
	return dot == NULL;
}

/* Index of the first key under prefix whose next component is name, or -1. */
static int find_child(const key_table *t, const char *prefix, size_t plen, const char *name, size_t n,
                      bool *leaf)
{
	for (size_t i = 0; i < t->n; i++) {
		const char *c;
		size_t clen;
		bool is_leaf = child_of(&t->keys[i], prefix, plen, &c, &clen);
		if (clen && clen == n && memcmp(c, name, n) == 0) {
			*leaf = is_leaf;
			return (int)i;
		}
	}
	return -1;
}

static bool is_first_child(const key_table *t, size_t i, const char *prefix, size_t plen)
{
	const char *c;
	size_t clen;
	bool leaf;
	child_of(&t->keys[i], prefix, plen, &c, &clen);
	return clen && find_child(t, prefix, plen, c, clen, &leaf) == (int)i;
}

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* Equal ignoring case, '_' and '-': "Max-Inflight-Messages" ~ "max_inflight_messages". */
static bool loose_equal(const char *a, size_t an, const char *b, size_t bn)
{
	size_t i = 0, j = 0;
	for (;;) {
		while (i < an && (a[i] == '_' || a[i] == '-'))
			i++;
		while (j < bn && (b[j] == '_' || b[j] == '-'))
			j++;
		if (i == an || j == bn)
			return i == an && j == bn;
		if (lower((unsigned char)a[i]) != lower((unsigned char)b[j]))
			return false;
		i++;
		j++;
	}
}

/* Levenshtein distance, or 3 ("too far") when it is certainly above 2. */
static size_t edit_distance(const char *a, size_t an, const char *b, size_t bn)
{
	size_t row[PATH_MAX_LEN + 1];
	if ((an > bn ? an - bn : bn - an) > 2 || bn > PATH_MAX_LEN)
		return 3;
	for (size_t j = 0; j <= bn; j++)
		row[j] = j;
	for (size_t i = 1; i <= an; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= bn; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[bn];
}

/*
 * A known key close to the unknown `name`: first among the siblings (a case,
 * '_'/'-' variant, else the nearest within edit distance 2), then anywhere in
 * the table when the name is a key of another section ("level" at the top ->
 * "log.level"). Writes it into buf and returns buf, or NULL.
 */
static const char *suggest(const key_table *t, const char *prefix, size_t plen, const char *name, size_t n,
                           char *buf, size_t size)
{
	const char *best = NULL;
	size_t best_len = 0, best_d = 3;
	for (size_t i = 0; i < t->n; i++) {
		const char *c;
		size_t clen;
		child_of(&t->keys[i], prefix, plen, &c, &clen);
		if (!clen)
			continue;
		size_t d = loose_equal(name, n, c, clen) ? 0 : edit_distance(name, n, c, clen);
		if (d < best_d) {
			best = c;
			best_len = clen;
			best_d = d;
		}
	}
	if (best) {
		format_path(buf, size, "%.*s", (int)best_len, best);
		return buf;
	}
	for (size_t i = 0; i < t->n; i++) {
		const char *path = t->keys[i].path;
		const char *last = strrchr(path, '.');
		last = last ? last + 1 : path;
		if (loose_equal(name, n, last, strlen(last))) {
			format_path(buf, size, "%s", path);
			return buf;
		}
	}
	return NULL;
}

static void *field(void *base, size_t offset)
{
	return (char *)base + offset;
}

static void store_int(void *dst, const key_def *k, long long v)
{
	if (k->size == 4 && k->min < 0) {
		int32_t x = (int32_t)v;
		memcpy(dst, &x, sizeof x);
	} else if (k->size == 4) {
		uint32_t x = (uint32_t)v;
		memcpy(dst, &x, sizeof x);
	} else {
		assert(k->size == 8);
		int64_t x = (int64_t)v;
		memcpy(dst, &x, sizeof x);
	}
}

/* The table's bounds must fit the field they are stored in (assert only). */
static inline bool int_key_fits(const key_def *k)
{
	if (k->min > k->max || k->def < k->min || k->def > k->max)
		return false;
	if (k->size == 8)
		return true;
	if (k->size != 4)
		return false;
	return k->min < 0 ? k->min >= INT32_MIN && k->max <= INT32_MAX : k->max <= (long long)UINT32_MAX;
}

static void free_fields(const key_table *t, void *base);

static void free_list(const key_def *k, void *base)
{
	char *items = *(char **)field(base, k->offset);
	size_t *count = field(base, k->count_offset);
	for (size_t i = 0; items && i < *count; i++)
		free_fields(k->items, items + i * k->item_size);
	roost_free(items);
	*(char **)field(base, k->offset) = NULL;
	*count = 0;
}

static void free_strlist(const key_def *k, void *base)
{
	char **items = *(char ***)field(base, k->offset);
	size_t *count = field(base, k->count_offset);
	for (size_t i = 0; items && i < *count; i++)
		roost_free(items[i]);
	roost_free(items);
	*(char ***)field(base, k->offset) = NULL;
	*count = 0;
}

static void free_fields(const key_table *t, void *base)
{
	for (size_t i = 0; i < t->n; i++) {
		const key_def *k = &t->keys[i];
		if (k->type == KEY_STRING) {
			char **s = field(base, k->offset);
			roost_free(*s);
			*s = NULL;
		} else if (k->type == KEY_LIST) {
			free_list(k, base);
		} else if (k->type == KEY_STRLIST) {
			free_strlist(k, base);
		}
	}
}

/* Fill base with the table's defaults. base is zeroed; -1 when out of memory. */
static int apply_defaults(const key_table *t, void *base)
{
	for (size_t i = 0; i < t->n; i++) {
		const key_def *k = &t->keys[i];
		void *dst = field(base, k->offset);
		switch (k->type) {
		case KEY_BOOL:
			*(bool *)dst = k->def != 0;
			break;
		case KEY_TRIBOOL:
			*(int *)dst = (int)k->def;
			break;
		case KEY_INT:
			assert(int_key_fits(k));
			store_int(dst, k, k->def);
			break;
		case KEY_LOGLEVEL:
		case KEY_ENUM:
			*(int *)dst = (int)k->def;
			break;
		case KEY_STRING:
			if (k->def_str && !(*(char **)dst = roost_strdup(k->def_str)))
				return -1;
			break;
		case KEY_STRLIST: {
			if (!k->def_str)
				break; /* required: no default */
			char **items = roost_calloc(1, sizeof *items);
			if (!items)
				return -1;
			*(char ***)dst = items;
			if (!(items[0] = roost_strdup(k->def_str)))
				return -1;
			*(size_t *)field(base, k->count_offset) = 1;
			break;
		}
		case KEY_LIST: {
			/* The default list is min_items elements of item defaults. */
			size_t n = k->min_items ? k->min_items : 0;
			char *items = n ? roost_calloc(n, k->item_size) : NULL;
			if (n && !items)
				return -1;
			*(char **)dst = items;
			*(size_t *)field(base, k->count_offset) = n;
			for (size_t j = 0; j < n; j++)
				if (apply_defaults(k->items, items + j * k->item_size) != 0)
					return -1;
			break;
		}
		}
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Scalars                                                                  */

static bool is_null(const yaml_event_t *ev)
{
	if (ev->type != YAML_SCALAR_EVENT || ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	const char *s = (const char *)ev->data.scalar.value;
	size_t n = ev->data.scalar.length;
	return n == 0 || (n == 1 && s[0] == '~') ||
	       (n == 4 && (!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) || !memcmp(s, "NULL", 4)));
}

/* Decimal integer with optional sign: 0 ok, -1 not an integer, -2 overflow. */
static int parse_int(const char *s, size_t n, long long *out)
{
	size_t i = 0;
	bool neg = false;
	if (i < n && (s[i] == '+' || s[i] == '-'))
		neg = s[i++] == '-';
	if (i == n)
		return -1;
	unsigned long long v = 0;
	bool overflow = false;
	const unsigned long long limit = neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (limit - d) / 10)
			overflow = true; /* keep scanning: "99999999999999999999x" is not an integer */
		else
			v = v * 10 + d;
	}
	if (overflow)
		return -2;
	*out = neg ? (v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v) : (long long)v;
	return 0;
}

static bool word_is(const char *s, size_t n, const char *w)
{
	size_t wn = strlen(w);
	if (n != wn)
		return false;
	for (size_t i = 0; i < n; i++)
		if (lower((unsigned char)s[i]) != w[i])
			return false;
	return true;
}

static const char *type_expectation(const key_def *k)
{
	switch (k->type) {
	case KEY_BOOL:
	case KEY_TRIBOOL: return "true or false";
	case KEY_INT: return "an integer";
	case KEY_STRING: return "a string";
	case KEY_LOGLEVEL: return "one of error, warning, notice, info, debug";
	case KEY_LIST: return "a sequence of mappings";
	case KEY_STRLIST: return "a string or a sequence of strings";
	case KEY_ENUM: return k->item_name;
	}
	return "?";
}

static const char *event_kind(const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_MAPPING_START_EVENT: return "a mapping";
	case YAML_SEQUENCE_START_EVENT: return "a sequence";
	case YAML_ALIAS_EVENT: return "an alias";
	case YAML_SCALAR_EVENT: return is_null(ev) ? "an empty value" : "a scalar";
	default: return "something else";
	}
}

static int line_of(const yaml_event_t *ev)
{
	return (int)ev->start_mark.line + 1;
}

/* Check one scalar against k and store it at base; errors are collected. */
static int set_scalar(parse_state *p, const key_def *k, void *base, const char *path, const yaml_event_t *ev)
{
	const char *s = (const char *)ev->data.scalar.value;
	size_t n = ev->data.scalar.length;
	int line = line_of(ev);
	char q[QUOTE_MAX + 8];
	void *dst = field(base, k->offset);

	if (is_null(ev))
		return add_error(p, line, "%s: missing value, expected %s", path, type_expectation(k));
	switch (k->type) {
	case KEY_BOOL:
	case KEY_TRIBOOL: {
		int v;
		if (word_is(s, n, "true") || word_is(s, n, "yes") || word_is(s, n, "on"))
			v = 1;
		else if (word_is(s, n, "false") || word_is(s, n, "no") || word_is(s, n, "off"))
			v = 0;
		else
			return add_error(p, line, "%s: expected true or false, got '%s'", path, quote(q, sizeof q, s, n));
		if (k->type == KEY_BOOL)
			*(bool *)dst = v;
		else
			*(int *)dst = v;
		return 0;
	}
	case KEY_INT: {
		long long v = 0;
		int r = parse_int(s, n, &v);
		if (r == -1)
			return add_error(p, line, "%s: expected an integer, got '%s'", path, quote(q, sizeof q, s, n));
		if (r == -2 || v < k->min || v > k->max)
			return add_error(p, line, "%s: must be between %lld and %lld, got %s", path, k->min, k->max,
			                 quote(q, sizeof q, s, n));
		if (k->not_yet && v > k->not_yet_above)
			return add_error(p, line, "%s: %lld: %s", path, v, k->not_yet);
		store_int(dst, k, v);
		return 0;
	}
	case KEY_STRING: {
		if (n == 0 && !k->empty_ok)
			return add_error(p, line, "%s: must not be empty", path);
		if (memchr(s, '\0', n))
			return add_error(p, line, "%s: must not contain a NUL character", path);
		char *copy = roost_strndup(s, n);
		if (!copy) {
			p->fatal = ROOST_ERR_NOMEM;
			return -1;
		}
		roost_free(*(char **)dst); /* a duplicate key overwrote it; already an error */
		*(char **)dst = copy;
		return 0;
	}
	case KEY_LOGLEVEL: {
		char low[16];
		int level = -1;
		if (n < sizeof low) {
			for (size_t i = 0; i < n; i++)
				low[i] = (char)lower((unsigned char)s[i]);
			low[n] = '\0';
			if (!memchr(s, '\0', n))
				level = roost_log_level_parse(low);
		}
		if (level < 0)
			return add_error(p, line, "%s: expected %s, got '%s'", path, type_expectation(k),
			                 quote(q, sizeof q, s, n));
		*(int *)dst = level;
		return 0;
	}
	case KEY_ENUM:
		for (int i = 0; k->enum_names[i]; i++) {
			if (word_is(s, n, k->enum_names[i])) {
				*(int *)dst = i;
				return 0;
			}
		}
		return add_error(p, line, "%s: expected %s, got '%s'", path, k->item_name, quote(q, sizeof q, s, n));
	case KEY_LIST:
	case KEY_STRLIST:
		break;
	}
	assert(!"set_scalar on a list");
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Event walk                                                               */

/* Next event, or -1 after recording a syntax error (or NOMEM). */
static int next_event(parse_state *p, yaml_event_t *ev)
{
	if (yaml_parser_parse(&p->yp, ev))
		return 0;
	memset(ev, 0, sizeof *ev); /* so yaml_event_delete on it is a no-op */
	const yaml_parser_t *y = &p->yp;
	if (y->error == YAML_MEMORY_ERROR) {
		p->fatal = ROOST_ERR_NOMEM;
		return -1;
	}
	p->fatal = ROOST_ERR_CONFIG;
	const char *problem = y->problem ? y->problem : "unknown error";
	if (y->error == YAML_READER_ERROR) {
		/* The reader reports a byte offset, not a mark: count lines ourselves. */
		int line = 1;
		for (size_t i = 0; i < y->problem_offset && i < p->len; i++)
			line += p->text[i] == '\n';
		add_error(p, line, "invalid YAML input: %s", problem);
	} else if (y->context) {
		add_error(p, (int)y->problem_mark.line + 1, "YAML syntax error: %s (%s at line %d)", problem,
		          y->context, (int)y->context_mark.line + 1);
	} else {
		add_error(p, (int)y->problem_mark.line + 1, "YAML syntax error: %s", problem);
	}
	return -1;
}

/* Consume the rest of the node that starts with ev (already consumed). */
static int skip_node(parse_state *p, const yaml_event_t *ev)
{
	if (ev->type != YAML_MAPPING_START_EVENT && ev->type != YAML_SEQUENCE_START_EVENT)
		return 0;
	size_t depth = 1;
	while (depth) {
		yaml_event_t e;
		if (next_event(p, &e) != 0)
			return -1;
		if (e.type == YAML_MAPPING_START_EVENT || e.type == YAML_SEQUENCE_START_EVENT)
			depth++;
		else if (e.type == YAML_MAPPING_END_EVENT || e.type == YAML_SEQUENCE_END_EVENT)
			depth--;
		yaml_event_delete(&e);
	}
	return 0;
}

/* Report a value of the wrong kind at the key's line, then skip it. */
static int wrong_kind(parse_state *p, int key_line, const char *path, const char *expected, const yaml_event_t *ev)
{
	if (add_error(p, key_line, "%s: expected %s, got %s", path, expected, event_kind(ev)) != 0)
		return -1;
	return skip_node(p, ev);
}

static int parse_mapping(parse_state *p, const key_table *t, const char *prefix, const char *display,
                         void *base, int start_line);

/* Append one string element; 1 when it was refused (error recorded), -1 fatal. */
static int strlist_add(parse_state *p, const char *path, const yaml_event_t *e, char ***items, size_t *count)
{
	const char *s = (const char *)e->data.scalar.value;
	size_t n = e->data.scalar.length;
	if (n == 0 || is_null(e) || memchr(s, '\0', n))
		return add_error(p, line_of(e), "%s: elements must be non-empty strings without NUL", path) ? -1 : 1;
	char **grown = roost_realloc(*items, (*count + 1) * sizeof **items);
	if (!grown || !(grown[*count] = roost_strndup(s, n))) {
		if (grown)
			*items = grown;
		p->fatal = ROOST_ERR_NOMEM;
		return -1;
	}
	*items = grown;
	(*count)++;
	return 0;
}

/* A KEY_STRLIST value: one scalar, or a sequence of scalars. */
static int parse_strlist(parse_state *p, const key_def *k, void *base, const char *path, int key_line,
                         const yaml_event_t *ev)
{
	char **items = NULL;
	size_t count = 0;
	if (ev->type == YAML_SCALAR_EVENT) {
		if (strlist_add(p, path, ev, &items, &count) < 0)
			goto fail;
	} else if (ev->type == YAML_SEQUENCE_START_EVENT) {
		for (;;) {
			yaml_event_t e;
			if (next_event(p, &e) != 0)
				goto fail;
			if (e.type == YAML_SEQUENCE_END_EVENT) {
				yaml_event_delete(&e);
				break;
			}
			int r;
			if (e.type == YAML_SCALAR_EVENT) {
				r = strlist_add(p, path, &e, &items, &count);
			} else {
				r = wrong_kind(p, line_of(&e), path, "a string", &e);
			}
			yaml_event_delete(&e);
			if (r < 0)
				goto fail;
		}
	} else {
		return wrong_kind(p, key_line, path, type_expectation(k), ev);
	}
	if (count < k->min_items && add_error(p, key_line, "%s: at least one element required", path) != 0)
		goto fail;
	free_strlist(k, base);
	*(char ***)field(base, k->offset) = items;
	*(size_t *)field(base, k->count_offset) = count;
	return 0;
fail:
	for (size_t i = 0; i < count; i++)
		roost_free(items[i]);
	roost_free(items);
	return -1;
}

/* A KEY_LIST value; ev is its first event. The list replaces the default. */
static int parse_list(parse_state *p, const key_def *k, void *base, const char *path, int key_line,
                      const yaml_event_t *ev)
{
	if (ev->type != YAML_SEQUENCE_START_EVENT && !is_null(ev))
		return wrong_kind(p, key_line, path, type_expectation(k), ev);
	char *items = NULL;
	size_t count = 0;  /* elements stored in items */
	size_t index = 0;  /* elements seen, for "listeners[index]" in messages */
	while (ev->type == YAML_SEQUENCE_START_EVENT) {
		yaml_event_t e;
		if (next_event(p, &e) != 0)
			goto fail;
		if (e.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&e);
			break;
		}
		char name[PATH_MAX_LEN];
		format_path(name, sizeof name, "%s[%zu]", path, index++);
		if (e.type != YAML_MAPPING_START_EVENT) {
			int r = wrong_kind(p, line_of(&e), name, "a mapping", &e);
			yaml_event_delete(&e);
			if (r != 0)
				goto fail;
			continue;
		}
		int item_line = line_of(&e);
		yaml_event_delete(&e);
		/* Grow by one: a handful of listeners, not a hot path. */
		char *grown = roost_realloc(items, (count + 1) * k->item_size);
		if (!grown) {
			p->fatal = ROOST_ERR_NOMEM;
			goto fail;
		}
		items = grown;
		void *item = items + count * k->item_size;
		memset(item, 0, k->item_size); /* free_fields is safe on it from here */
		count++;
		if (apply_defaults(k->items, item) != 0) {
			p->fatal = ROOST_ERR_NOMEM;
			goto fail;
		}
		if (parse_mapping(p, k->items, "", name, item, item_line) != 0)
			goto fail;
	}
	if (index < k->min_items &&
	    add_error(p, key_line, "%s: at least %zu %s required", path, k->min_items, k->item_name) != 0)
		goto fail;
	free_list(k, base); /* the default, or the list of a duplicate key */
	*(char **)field(base, k->offset) = items;
	*(size_t *)field(base, k->count_offset) = count;
	return 0;
fail:
	for (size_t i = 0; i < count; i++)
		free_fields(k->items, items + i * k->item_size);
	roost_free(items);
	return -1;
}

/*
 * The body of a mapping whose MAPPING_START was consumed: prefix is the
 * table path of this mapping ("" at the table's root, "limits"), display the
 * name shown in messages ("limits", "listeners[2]").
 */
static int parse_mapping(parse_state *p, const key_table *t, const char *prefix, const char *display,
                         void *base, int start_line)
{
	int seen[MAX_TABLE_KEYS] = {0}; /* line each child was first seen on */
	size_t plen = strlen(prefix);
	assert(t->n <= MAX_TABLE_KEYS);

	for (;;) {
		yaml_event_t key;
		if (next_event(p, &key) != 0)
			return -1;
		if (key.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&key);
			break;
		}
		int key_line = line_of(&key);
		int r = 0;
		if (key.type != YAML_SCALAR_EVENT) {
			r = add_error(p, key_line, "%s%skeys must be scalars, got %s", display, *display ? ": " : "",
			              event_kind(&key));
			if (r == 0)
				r = skip_node(p, &key);
			yaml_event_delete(&key);
			yaml_event_t val;
			if (r != 0 || next_event(p, &val) != 0)
				return -1;
			r = skip_node(p, &val);
			yaml_event_delete(&val);
			if (r != 0)
				return -1;
			continue;
		}

		const char *kname = (const char *)key.data.scalar.value;
		size_t klen = key.data.scalar.length;
		bool leaf = false;
		int idx = memchr(kname, '.', klen) ? -1 : find_child(t, prefix, plen, kname, klen, &leaf);
		char path[PATH_MAX_LEN]; /* shown in messages: "listeners[0].port" */
		char sub[PATH_MAX_LEN];  /* table prefix of a section: "limits" */
		char q[QUOTE_MAX + 8];
		if (idx >= 0) {
			/* Known keys are short table names, so these never truncate. */
			format_path(path, sizeof path, "%s%s%.*s", display, *display ? "." : "", (int)klen, kname);
			format_path(sub, sizeof sub, "%s%s%.*s", prefix, plen ? "." : "", (int)klen, kname);
		}

		if (idx < 0) {
			char hint[PATH_MAX_LEN];
			const char *s = suggest(t, prefix, plen, kname, klen, hint, sizeof hint);
			quote(q, sizeof q, kname, klen);
			if (s)
				r = add_error(p, key_line, "unknown key '%s%s%s'; did you mean '%s'?", display,
				              *display ? "." : "", q, s);
			else
				r = add_error(p, key_line, "unknown key '%s%s%s'", display, *display ? "." : "", q);
		} else if (seen[idx]) {
			r = add_error(p, key_line, "duplicate key '%s' (first on line %d)", path, seen[idx]);
		} else {
			seen[idx] = key_line;
		}
		yaml_event_delete(&key);
		if (r != 0)
			return -1;

		yaml_event_t val;
		if (next_event(p, &val) != 0)
			return -1;
		const key_def *k = idx >= 0 ? &t->keys[idx] : NULL;
		if (!k) {
			r = skip_node(p, &val);
		} else if (val.type == YAML_ALIAS_EVENT) {
			r = add_error(p, key_line, "%s: YAML aliases are not supported", path);
		} else if (!leaf) {
			/* A section such as "limits": a mapping, or empty for all defaults. */
			if (val.type == YAML_MAPPING_START_EVENT) {
				r = parse_mapping(p, t, sub, path, base, key_line);
			} else if (!is_null(&val)) {
				r = wrong_kind(p, key_line, path, "a mapping", &val);
			}
		} else if (k->type == KEY_LIST) {
			r = parse_list(p, k, base, path, key_line, &val);
		} else if (k->type == KEY_STRLIST) {
			r = parse_strlist(p, k, base, path, key_line, &val);
		} else if (val.type == YAML_SCALAR_EVENT) {
			r = set_scalar(p, k, base, path, &val);
		} else {
			r = wrong_kind(p, key_line, path, type_expectation(k), &val);
		}
		yaml_event_delete(&val);
		if (r != 0)
			return -1;
	}

	for (size_t i = 0; i < t->n; i++) {
		const char *c;
		size_t clen;
		if (t->keys[i].required && child_of(&t->keys[i], prefix, plen, &c, &clen) &&
		    is_first_child(t, i, prefix, plen) && !seen[i] &&
		    add_error(p, start_line, "%s: missing required key '%.*s'", display, (int)clen, c) != 0)
			return -1;
	}
	return 0;
}

static int parse_stream(parse_state *p, roost_config *cfg)
{
	yaml_event_t ev;
	int docs = 0;
	if (next_event(p, &ev) != 0) /* STREAM_START */
		return -1;
	yaml_event_delete(&ev);
	for (;;) {
		if (next_event(p, &ev) != 0)
			return -1;
		if (ev.type == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		int r = 0;
		if (ev.type == YAML_DOCUMENT_START_EVENT) {
			int doc_line = line_of(&ev);
			yaml_event_delete(&ev);
			if (next_event(p, &ev) != 0)
				return -1;
			if (++docs > 1) {
				r = add_error(p, doc_line, "only one YAML document is allowed");
				if (r == 0)
					r = skip_node(p, &ev);
			} else if (ev.type == YAML_MAPPING_START_EVENT) {
				r = parse_mapping(p, &config_table, "", "", cfg, line_of(&ev));
			} else if (!is_null(&ev)) {
				r = add_error(p, line_of(&ev), "the top level must be a mapping, got %s", event_kind(&ev));
				if (r == 0)
					r = skip_node(p, &ev);
			}
		}
		/* DOCUMENT_END, or the node's own event after it was handled above. */
		yaml_event_delete(&ev);
		if (r != 0)
			return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Public API                                                               */

void roost_config_free(roost_config *cfg)
{
	if (!cfg)
		return;
	free_fields(&config_table, cfg);
	roost_free(cfg->path);
	roost_free(cfg);
}

static roost_config *config_new(void)
{
	roost_config *cfg = roost_calloc(1, sizeof *cfg);
	if (!cfg)
		return NULL;
	if (apply_defaults(&config_table, cfg) != 0) {
		roost_config_free(cfg);
		return NULL;
	}
	return cfg;
}

roost_err roost_config_defaults(roost_config **out)
{
	*out = config_new();
	return *out ? ROOST_OK : ROOST_ERR_NOMEM;
}

roost_err roost_config_load_string(const char *name, const char *text, size_t len, roost_config **out,
                                   roost_config_errors *errs)
{
	parse_state p = {.name = name ? name : "<string>", .text = text ? text : "", .len = text ? len : 0};
	roost_config *cfg = NULL;
	roost_err err;

	*out = NULL;
	if (errs) {
		errs->items = NULL;
		errs->count = 0;
	}
	if (!text && len)
		return ROOST_ERR_INVALID;
	cfg = config_new();
	if (!cfg || (name && !(cfg->path = roost_strdup(name)))) {
		err = ROOST_ERR_NOMEM;
		goto fail;
	}
	if (!yaml_parser_initialize(&p.yp)) {
		err = ROOST_ERR_NOMEM;
		goto fail;
	}
	yaml_parser_set_input_string(&p.yp, (const unsigned char *)p.text, p.len);
	parse_stream(&p, cfg);
	yaml_parser_delete(&p.yp);

	if (p.fatal == ROOST_ERR_NOMEM) {
		err = ROOST_ERR_NOMEM;
		goto fail;
	}
	if (p.errs.count > 0) {
		err = ROOST_ERR_CONFIG;
		goto fail;
	}
	assert(cfg->n_listeners >= 1);
	*out = cfg;
	return ROOST_OK;

fail:
	roost_config_free(cfg);
	if (errs)
		*errs = p.errs;
	else
		roost_config_errors_cleanup(&p.errs);
	return err;
}

/* Read the whole file into a new NUL-terminated buffer (not counted in
 * *len); -1 with errno set on failure (EFBIG past max bytes). */
int roost_config_read_file(const char *path, size_t max, char **text, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0;
	int saved;
	*text = NULL;
	*len = 0;
	if (!f)
		return -1;
	for (;;) {
		if (n == cap) {
			if (cap >= max) {
				errno = EFBIG;
				goto fail;
			}
			cap = cap ? cap * 2 : 4096;
			char *grown = roost_realloc(buf, cap + 1);
			if (!grown) {
				errno = ENOMEM;
				goto fail;
			}
			buf = grown;
		}
		errno = 0;
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0) {
			if (ferror(f)) {
				if (!errno)
					errno = EIO;
				goto fail;
			}
			break;
		}
	}
	fclose(f);
	buf[n] = '\0';
	*text = buf;
	*len = n;
	return 0;
fail:
	saved = errno;
	roost_free(buf);
	fclose(f);
	errno = saved;
	return -1;
}

roost_err roost_config_load_file(const char *path, roost_config **out, roost_config_errors *errs)
{
	char *text;
	size_t len;
	*out = NULL;
	if (errs) {
		errs->items = NULL;
		errs->count = 0;
	}
	if (roost_config_read_file(path, MAX_FILE_SIZE, &text, &len) != 0) {
		int e = errno;
		if (e == ENOMEM)
			return ROOST_ERR_NOMEM;
		char msg[512];
		if (snprintf(msg, sizeof msg, "cannot read '%s': %s", path, strerror(e)) >= (int)sizeof msg)
			memcpy(msg + sizeof msg - 4, "...", 4); /* a very long path: cut, still one line */
		if (errs && roost_config_errors_add(errs, path, 0, msg) != 0)
			return ROOST_ERR_NOMEM;
		return ROOST_ERR_IO;
	}
	roost_err err = roost_config_load_string(path, text, len, out, errs);
	roost_free(text);
	return err;
}

int roost_config_load_cli(const char *prog, const char *path, roost_config **out)
{
	*out = NULL;
	if (!path)
		return roost_config_defaults(out) == ROOST_OK ? 0 : 1;
	roost_config_errors errs = {0};
	roost_err err = roost_config_load_file(path, out, &errs);
	if (err) {
		roost_config_errors_print(&errs, stderr);
		if (errs.count == 0)
			fprintf(stderr, "%s: %s: %s\n", prog, path, roost_err_str(err));
	}
	roost_config_errors_cleanup(&errs);
	return err == ROOST_OK ? 0 : err == ROOST_ERR_NOMEM ? 1 : 2;
}
