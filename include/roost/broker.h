/*
 * broker.h — the broker object and its embedding API.
 *
 * One roost_broker holds everything a running broker needs: the event base
 * it runs on (borrowed), the configuration (borrowed, immutable), the log
 * sink, the clock, the topic trie, the sessions and the connections. There
 * are no globals: main() builds one broker and passes it explicitly; tests
 * can build several side by side.
 *
 * This header is what a component may call (publish, subscribe, hooks,
 * services, the loop, log and configuration). Creating, starting, reloading
 * and stopping the broker is the daemon's business: roost/daemon.h.
 */
#ifndef ROOST_BROKER_H
#define ROOST_BROKER_H

#include <stdbool.h>
#include <stdint.h>

#include "roost/bus.h"
#include "roost/clock.h"
#include "roost/config.h"
#include "roost/error.h"
#include "roost/log.h"
#include "roost/message.h"

struct event_base;
typedef struct roost_broker roost_broker;

/*
 * Publish a message as a component (the HTTP API, the example component, a
 * third party's): authorised by the same decision as a client's PUBLISH,
 * then retained handling and fan-out exactly as for one. Borrows msg.
 * Returns ROOST_ERR_BAD_TOPIC (not a topic name), ROOST_ERR_TOO_LARGE
 * (beyond limits.max_topic_levels/max_topic_length) or
 * ROOST_ERR_NOT_AUTHORIZED (a '$' topic, or refused by an auth hook, asked
 * with client id "$component") and delivers nothing; an HTTP front end
 * answers 400 / 400 / 403.
 */
roost_err roost_broker_publish(roost_broker *b, roost_msg *msg);

/* ---- the component API ----------------------------------------------
 * What an in-process component (the hub connector, the example component,
 * a third party's) uses: subscribe with a callback, publish, the event bus,
 * and the loop, log and configuration it runs with. A component subscriber
 * goes through the same trie and fan-out as a client: it is a session whose
 * deliveries call a function instead of writing to a socket.
 */
typedef struct roost_broker_sub roost_broker_sub;

/*
 * Called for each message matching the filter, at the delivery QoS (the
 * lower of published and requested). msg is borrowed: take a reference
 * (roost_msg_ref) to keep it. Runs on the publish path: never block.
 */
typedef void (*roost_msg_fn)(void *ctx, roost_msg *msg, uint8_t qos);

/* filter must be a valid topic filter (ROOST_ERR_BAD_TOPIC otherwise). */
roost_err roost_broker_subscribe(roost_broker *b, const char *filter, uint8_t qos, roost_msg_fn fn,
                                 void *ctx, roost_broker_sub **out);
void roost_broker_unsubscribe(roost_broker *b, roost_broker_sub *sub);

struct event_base *roost_broker_base(roost_broker *b);
const roost_log *roost_broker_log(roost_broker *b);
const roost_config *roost_broker_config(roost_broker *b);
roost_bus *roost_broker_bus(roost_broker *b);

/*
 * Named services: a component offers an interface to the components started
 * after it (the HTTP component registers "http", a roost_http *, on which the
 * connector and the example component add routes). The name is copied; the
 * interface pointer is borrowed and must stay valid until the component
 * stops. ROOST_ERR_EXISTS when the name is taken.
 */
roost_err roost_broker_service_add(roost_broker *b, const char *name, void *iface);
void roost_broker_service_remove(roost_broker *b, const char *name);
/* The interface registered under name, or NULL. */
void *roost_broker_service_find(const roost_broker *b, const char *name);

/*
 * Authentication and authorisation hooks (as Mosquitto's plugins): a
 * component can decide who connects and who may publish or subscribe where.
 * Each callback answers ROOST_AUTH_ALLOW, ROOST_AUTH_DENY or
 * ROOST_AUTH_DEFER; hooks are asked in registration order and the first
 * that does not defer decides; when all defer, the password_file, acl_file
 * and allow_anonymous settings decide. Either callback may be NULL (defer).
 * username is NULL for anonymous clients; loopback is true when the
 * client's own address is loopback (it connects from this machine), whatever
 * the listener's address. access is ROOST_ACL_READ (a
 * message is about to be delivered), ROOST_ACL_WRITE (a client publishes) or
 * ROOST_ACL_SUBSCRIBE (a client subscribes; topic is the filter).
 */
enum { ROOST_AUTH_DEFER = 0, ROOST_AUTH_ALLOW = 1, ROOST_AUTH_DENY = 2 };
/*
 * MQTT 5 enhanced authentication (MQTT 5.0 4.12), optional: a hook that
 * sets auth_method implements the exchange of that name. auth_step is
 * called with the client's Authentication Data, first from CONNECT (or
 * from AUTH 0x19 when the client re-authenticates), then from each AUTH
 * 0x18, and answers ROOST_AUTH_STEP_CONTINUE (send out[0..*out_len) back in
 * AUTH 0x18), ROOST_AUTH_STEP_SUCCESS (out goes in CONNACK / AUTH 0x00) or
 * ROOST_AUTH_STEP_FAIL (CONNACK 0x87, or DISCONNECT 0x87 on
 * re-authentication). *state is the hook's, per exchange: NULL at its
 * start, released with auth_free (may be NULL) when the exchange or the
 * connection ends. A success admits the client as its user name (or as
 * anonymous) without the password check. A CONNECT naming a method no hook
 * implements is refused with 0x8C [MQTT-4.12.0-1].
 */
enum { ROOST_AUTH_STEP_FAIL = 0, ROOST_AUTH_STEP_CONTINUE = 1, ROOST_AUTH_STEP_SUCCESS = 2 };
typedef struct roost_auth_hook {
	int (*connect)(void *ctx, const char *client_id, const char *username, const uint8_t *password,
	               size_t password_len, bool loopback);
	int (*acl)(void *ctx, const char *client_id, const char *username, const char *topic, size_t len,
	           int access);
	void *ctx;
	const char *auth_method;
	int (*auth_step)(void *ctx, void **state, const char *client_id, const uint8_t *data, size_t len,
	                 uint8_t *out, size_t out_cap, size_t *out_len);
	void (*auth_free)(void *ctx, void *state);
} roost_auth_hook;
/* The hook is borrowed until removed. */
roost_err roost_broker_auth_hook_add(roost_broker *b, const roost_auth_hook *hook);
void roost_broker_auth_hook_remove(roost_broker *b, const roost_auth_hook *hook);

/* ---- administration (the HTTP API's /api/clients, /api/retained, ...) ---- */

/* One session, as the status page shows it (strings borrowed for the call). */
typedef struct roost_client_info {
	const char *client_id;
	const char *username;        /* NULL: anonymous */
	const char *addr;            /* "ip:port" while online, else NULL */
	uint8_t version;             /* protocol level while online (3, 4, 5), else 0 */
	bool persistent;             /* clean session 0: kept while offline */
	uint64_t idle_ms;            /* since its last packet (online only) */
	size_t subscriptions, queued, inflight;
} roost_client_info;
/* Visit every session (online and offline); returning false stops. */
void roost_broker_clients_foreach(roost_broker *b, bool (*visit)(void *ctx, const roost_client_info *ci),
                                  void *ctx);
/* Close the client's connection as a network drop would: its will is
 * published, a persistent session is kept. ROOST_ERR_NOT_FOUND when no
 * client with this id is online. */
roost_err roost_broker_client_disconnect(roost_broker *b, const char *client_id);
/* Remove an offline session (its subscriptions and queued messages, from
 * the store too). ROOST_ERR_NOT_FOUND without one, ROOST_ERR_EXISTS while
 * its client is online (disconnect it first). */
roost_err roost_broker_session_remove(roost_broker *b, const char *client_id);
/* Visit the retained messages matching filter (borrowed), with the '$'
 * rule [MQTT-4.7.2-1]; ROOST_ERR_BAD_TOPIC for an invalid filter. */
roost_err roost_broker_retained_foreach(roost_broker *b, const char *filter,
                                        bool (*visit)(void *ctx, const roost_msg *msg), void *ctx);

/*
 * The broker's figures, as $SYS (broker/sys.c) and /metrics report them.
 * Counters only grow (since start); the rest are read at the moment of the
 * call. Each counter is incremented at the one place its event happens.
 */
#define ROOST_STATS_COMMIT_BUCKETS 12
/* Upper bounds (milliseconds) of the store commit latency histogram. */
#define ROOST_STATS_COMMIT_BOUNDS_MS {1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000}
typedef struct roost_broker_stats {
	uint64_t connections;        /* sockets currently open (CONNECT or not) */
	uint64_t clients_connected;  /* connections past CONNACK, now */
	uint64_t clients_maximum;    /* most clients_connected at once */
	uint64_t clients_expired;    /* persistent sessions removed by their expiry */
	uint64_t connects;           /* CONNECTs accepted */
	uint64_t packets_received;   /* MQTT packets of every type, from clients */
	uint64_t packets_sent;       /* MQTT packets of every type, to clients */
	uint64_t bytes_received;     /* MQTT bytes read from clients */
	uint64_t bytes_sent;         /* MQTT bytes queued to clients' connections */
	uint64_t msgs_received;      /* PUBLISH packets accepted from clients */
	uint64_t msgs_sent;          /* PUBLISH packets written to clients */
	uint64_t msgs_dropped;       /* dropped by queue limits or back-pressure */
	uint64_t msgs_expired;       /* of those: Message Expiry Interval passed before delivery (v5) */
	uint64_t msgs_too_large;     /* of those: over the receiver's Maximum Packet Size (v5) */
	/* Filled by roost_broker_stats_get, not counted: */
	uint64_t msgs_stored;        /* queued + in flight in every session, and retained */
	uint64_t sessions;           /* sessions in memory (online + offline) */
	uint64_t retained;
	uint64_t subscriptions;
	uint64_t uptime_ms;
	/* The durable store (all 0 when persistence is off). */
	uint64_t store_size;         /* bytes of the database and its WAL on disk */
	uint64_t store_commits;
	uint64_t store_moved_aside;  /* databases lost to corruption, over all starts */
	/* Latency of each commit attempt, by the broker's clock: commit_le[i]
	 * counts commits of at most ROOST_STATS_COMMIT_BOUNDS_MS[i] (not
	 * cumulative); the sum is in milliseconds. */
	uint64_t commit_le[ROOST_STATS_COMMIT_BUCKETS];
	uint64_t commit_count, commit_sum_ms;
} roost_broker_stats;
void roost_broker_stats_get(const roost_broker *b, roost_broker_stats *out);

/*
 * The clients connected to each listener, by protocol version, for the
 * metrics' labels. Fills at most cap entries, in configuration order, and
 * returns the number of listeners.
 */
typedef struct roost_listener_stats {
	int port;                    /* the bound port */
	const char *bind;            /* as configured ("" for the default) */
	uint64_t clients_v31, clients_v311, clients_v5;
} roost_listener_stats;
size_t roost_broker_listener_stats(const roost_broker *b, roost_listener_stats *out, size_t cap);

/*
 * Figures a component reports ($SYS/broker/roost/<source>/<name> and the
 * metric roost_<source>_<metric>): it registers a source whose fn fills up
 * to cap items when asked (at $SYS publish time and at each /metrics
 * scrape). name, metric and help are static strings; a text item (a state)
 * has text set and appears in $SYS only.
 */
typedef enum { ROOST_STAT_COUNTER, ROOST_STAT_GAUGE, ROOST_STAT_TEXT } roost_stat_kind;
typedef struct roost_stat {
	const char *name;            /* $SYS leaf: "delivered" */
	const char *metric;          /* metric suffix: "events_delivered_total" */
	const char *help;
	roost_stat_kind kind;
	uint64_t value;
	const char *text;            /* ROOST_STAT_TEXT: static or owned by the source */
} roost_stat;
typedef size_t (*roost_stats_fn)(void *ctx, roost_stat *out, size_t cap);
#define ROOST_STATS_SOURCE_MAX_ITEMS 16
/* source ("hub") is copied; fn/ctx are borrowed until removed.
 * ROOST_ERR_EXISTS when the name is taken. */
roost_err roost_broker_stats_source_add(roost_broker *b, const char *source, roost_stats_fn fn, void *ctx);
void roost_broker_stats_source_remove(roost_broker *b, const char *source);
/* Visit every source with its items (filled just now). */
typedef void (*roost_stats_visit)(void *ctx, const char *source, const roost_stat *items, size_t n);
void roost_broker_stats_sources(roost_broker *b, roost_stats_visit visit, void *ctx);

#endif
