/*
 * config.h — roost's configuration: a table of keys parsed from YAML into an
 * immutable struct.
 *
 * Every key is declared once in a table (config.c): its path, type, bounds,
 * default and reload policy. The parser (libyaml) walks the document, checks
 * each scalar against the table and collects *every* error with the file name
 * and 1-based line number ("roost.yaml:12: limits.max_inflight_messages: must
 * be between 1 and 65535"), so `roost --test-config` can print them all.
 * Unknown keys are errors, with "did you mean 'max_inflight_messages'?" when a
 * known key is close (edit distance).
 *
 * A parsed roost_config is never modified afterwards; a reload builds a new
 * one and the broker swaps pointers. Strings inside are owned by the struct
 * and released by roost_config_free().
 */
#ifndef ROOST_CONFIG_H
#define ROOST_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roost/error.h"

typedef struct roost_listener_config {
	char *bind;        /* address as given; NULL (default): "::" dual-stack, 0.0.0.0 without IPv6 */
	int port;          /* 0..65535; 0 = ephemeral (tests) */
	/* TLS: a listener with a certfile speaks MQTT over TLS (8883 by convention). */
	char *certfile;    /* PEM certificate chain; NULL = plain TCP */
	char *keyfile;     /* PEM private key (required with certfile) */
	char *cafile;      /* PEM CAs for verifying client certificates */
	bool require_certificate;      /* clients must present a certificate signed by cafile */
	bool use_identity_as_username; /* the certificate's CN becomes the user name */
	char *ciphers;     /* OpenSSL cipher list for TLS 1.2; NULL = OpenSSL's default */
	int tls_version;   /* minimum: 0 = TLS 1.2 (default), 1 = TLS 1.3 */
	int protocol;      /* ROOST_LISTENER_MQTT (default) or ROOST_LISTENER_WEBSOCKETS (ws, wss with certfile) */
	/* Per-listener security (Mosquitto's per_listener_settings): -1 / NULL
	 * (not set) take the top-level allow_anonymous, password_file, acl_file. */
	int allow_anonymous;
	char *password_file;
	char *acl_file;
} roost_listener_config;

/* listeners[].protocol, Mosquitto's words: mqtt | websockets. */
enum { ROOST_LISTENER_MQTT = 0, ROOST_LISTENER_WEBSOCKETS = 1 };

typedef struct roost_limits_config {
	uint32_t max_packet_size;        /* bytes, default 268435455 (protocol max) */
	uint32_t max_queued_messages;    /* per client, default 1000; 0 = unlimited */
	uint64_t max_queued_bytes;       /* per client, default 0 = unlimited */
	uint32_t max_inflight_messages;  /* per client, 1..65535, default 20 */
	int32_t max_connections;         /* -1 = unlimited (default) */
	uint32_t connect_timeout;        /* seconds to wait for CONNECT, default 10 */
	uint32_t max_keepalive;          /* seconds, 0..65535, default 65535 */
	uint32_t max_subscriptions;      /* per client, 0 = unlimited (default) */
	uint32_t slow_client_timeout;    /* seconds a client may leave >1 MiB unread, default 30 */
	uint32_t max_topic_levels;       /* levels per topic or filter, default 200 */
	uint32_t max_topic_length;       /* bytes per topic or filter, default 65535 */
	uint32_t max_retained_messages;  /* retained topics, 0 = unlimited (default) */
	uint32_t max_connect_size;       /* bytes of a packet before CONNACK, default 262144 */
	/* MQTT 5 (the connect side) */
	uint32_t receive_maximum;        /* QoS 1/2 PUBLISHes a v5 client may have unacknowledged, default 65535 */
	uint32_t max_topic_alias;        /* topic aliases a v5 client may use towards us, default 10 */
	uint32_t max_qos;                /* highest QoS accepted, 0..2, default 2 */
	uint32_t persistent_session_expiry; /* seconds an offline 3.1.1 persistent session lives, 0 = forever */
} roost_limits_config;

/*
 * mqtt: — Home Assistant's MQTT component keys, read by the hub connector.
 * Without `broker` the connector subscribes inside the embedded broker; with
 * it, it connects to that broker as an ordinary MQTT client.
 */
typedef struct roost_mqtt_config {
	char *broker;              /* host of an external broker; NULL = embedded */
	int port;                  /* 1..65535, default 1883 */
	char *client_id;           /* NULL = random "roost-hub-<hex>" */
	uint32_t keepalive;        /* seconds, 0..65535, default 60 */
	char *username;            /* NULL = none */
	char *password;            /* NULL = none */
	char **topics;             /* filters, default ["home-assistant/#"] */
	size_t n_topics;
	char *event_type;          /* default "mqtt_message_received" */
} roost_mqtt_config;

/* hub: — where events go: Home Assistant's REST API. NULL url = no delivery. */
typedef struct roost_hub_config {
	char *url;                 /* http:// or https:// base URL; NULL = disabled */
	char *token;               /* long-lived access token (Bearer) */
	char *cafile;              /* PEM CA bundle for https; NULL = system default */
	bool verify_tls;           /* default true */
	uint32_t spool_max;        /* events held while HA is unreachable, default 10000 */
	uint32_t retry_max;        /* seconds, the backoff ceiling, default 60 */
	uint32_t timeout;          /* seconds per request, default 10 */
} roost_hub_config;

/* http: — roost's own HTTP API (HA-shaped REST, event stream). */
typedef struct roost_http_config {
	int port;                  /* 0..65535, default 8124; -1 = disabled */
	char *bind;                /* default "127.0.0.1" */
	char *token;               /* Bearer token; required unless bind is loopback */
	uint32_t max_connections;  /* open connections, default 64; more are closed at once */
	uint32_t idle_timeout;     /* seconds without a byte before a connection is closed, default 60 */
	uint32_t header_timeout;   /* seconds to send a whole request head, default 10 */
	uint32_t body_timeout;     /* seconds to send a whole request body, default 10 */
	uint32_t max_streams;      /* open /api/stream clients, default 16; more get 503 */
} roost_http_config;

/*
 * bridges: — carry topics to and from other brokers (connector/bridge.c).
 * Mosquitto's semantics: local topic = local_prefix + pattern, remote topic =
 * remote_prefix + pattern; out = local -> remote, in = remote -> local.
 */
enum { ROOST_BRIDGE_OUT = 0, ROOST_BRIDGE_IN = 1, ROOST_BRIDGE_BOTH = 2 };
typedef struct roost_bridge_topic_config {
	char *pattern;             /* topic filter, required */
	int direction;             /* ROOST_BRIDGE_OUT (default), _IN, _BOTH */
	uint32_t qos;              /* 0..2, default 0 */
	char *local_prefix;        /* NULL = "" */
	char *remote_prefix;       /* NULL = "" */
} roost_bridge_topic_config;

typedef struct roost_bridge_config {
	char *name;                /* required: [A-Za-z0-9_.-], names the queue and $SYS topic */
	char **address;            /* required: host, or host:port entries tried in turn */
	size_t n_address;
	int port;                  /* default 1883, for addresses without one */
	int protocol_version;      /* 4 (MQTT 3.1.1, default); 5 is refused: not yet */
	char *client_id;           /* NULL = "roost-<name>-<hostname>" */
	uint32_t keepalive;        /* seconds, 0..65535, default 60 */
	bool clean_session;        /* default false: the upstream keeps our session */
	bool try_private;          /* default true: Mosquitto's bridge flag (protocol level 0x84) */
	char *username;            /* NULL = none */
	char *password;            /* NULL = none */
	char *tls_cafile;          /* tls.cafile; NULL = the system CAs */
	char *tls_certfile;        /* tls.certfile: client certificate */
	char *tls_keyfile;         /* tls.keyfile */
	int tls_insecure;          /* tls.insecure: -1 not set; TLS is on when any tls key is set */
	bool outgoing_retain;      /* default true; false: RETAIN cleared towards the upstream */
	uint32_t max_queued_messages; /* outbound QoS 1/2 queue bound, default 10000 */
	bool notifications;        /* default true: $SYS/broker/connection/<client id>/state upstream */
	char *notification_topic;  /* NULL = the default above */
	roost_bridge_topic_config *topics; /* at least one */
	size_t n_topics;
} roost_bridge_config;

/* persistence: — the durable store (SQLite). */
typedef struct roost_persistence_config {
	bool enabled;              /* default true; false = memory only */
	char *path;                /* default "roost.db"; see roost_persist_resolve_path() */
	int sync;                  /* 0 normal (survives kill -9), 1 full (survives power loss) */
} roost_persistence_config;

typedef struct roost_config {
	char *path;                       /* file it came from, or NULL for defaults */
	roost_listener_config *listeners; /* at least one */
	size_t n_listeners;
	/* -1 (not set): anonymous clients are accepted when their peer address
	 * is loopback (this machine), on any listener, with or without users;
	 * 1: from everywhere; 0: from nowhere. */
	int allow_anonymous;
	char *password_file;              /* Mosquitto password file; NULL = none */
	char *acl_file;                   /* Mosquitto ACL file; NULL = no ACL (all allowed) */
	roost_limits_config limits;
	bool retain_available;            /* MQTT 5 Retain Available, default true */
	char *response_information;       /* MQTT 5 Response Information prefix ("{client id}" substituted); NULL = off */
	int log_level;                    /* roost_log_level, default info */
	uint32_t sys_interval;            /* seconds between $SYS updates, default 10; 0 = no $SYS */
	roost_persistence_config persistence;
	roost_mqtt_config mqtt;
	roost_hub_config hub;
	roost_http_config http;
	roost_bridge_config *bridges;     /* none by default */
	size_t n_bridges;
} roost_config;

/* One error found while parsing: "file:line: message". */
typedef struct roost_config_error {
	char *file;
	int line;       /* 1-based; 0 when not tied to a line */
	char *message;
} roost_config_error;

typedef struct roost_config_errors {
	roost_config_error *items;
	size_t count;
} roost_config_errors;

/* The embedded defaults: one dual-stack listener on port 1883, limits as documented. */
roost_err roost_config_defaults(roost_config **out);

/*
 * Parse the file at path. On success *out is a new config and errs->count is
 * 0. On failure returns ROOST_ERR_CONFIG (or IO/NOMEM) with every problem in
 * *errs (caller frees with roost_config_errors_cleanup) and *out NULL.
 */
roost_err roost_config_load_file(const char *path, roost_config **out, roost_config_errors *errs);

/* The same from a memory buffer; name is used in error messages. */
roost_err roost_config_load_string(const char *name, const char *text, size_t len,
                                   roost_config **out, roost_config_errors *errs);

void roost_config_free(roost_config *cfg);

/*
 * For the command line (the daemon and its subcommands): load path, or the
 * embedded defaults when it is NULL, printing every problem to stderr as
 * "file:line: message" (prog names the command when the error has no
 * line). Returns 0, or the exit status: 2 for a bad file, 1 out of memory.
 */
int roost_config_load_cli(const char *prog, const char *path, roost_config **out);

/* Read a whole file into a new NUL-terminated buffer of *len bytes (the NUL
 * not counted), for the config, password and ACL loaders; -1 with errno set
 * on failure (EFBIG past max bytes, ENOMEM). */
int roost_config_read_file(const char *path, size_t max, char **text, size_t *len);

/* Append one "file:line: message" to errs (the loaders of the password and
 * ACL files report in the same list); -1 when out of memory, the list then
 * unchanged. */
int roost_config_errors_add(roost_config_errors *errs, const char *file, int line, const char *message);
void roost_config_errors_cleanup(roost_config_errors *errs);

/* Write "file:line: message" lines for every error, one per line. */
void roost_config_errors_print(const roost_config_errors *errs, void *FILE_stream);

#endif
