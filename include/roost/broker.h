/*
 * broker.h — the broker object and its embedding API.
 *
 * One roost_broker holds everything a running broker needs: the event base
 * it runs on (borrowed), the configuration (borrowed, immutable), the log
 * sink, the clock, the topic trie, the sessions and the connections. There
 * are no globals: main() builds one broker and passes it explicitly; tests
 * can build several side by side.
 *
 * Lifetime: roost_broker_new() -> roost_broker_listen() -> run the event
 * base -> roost_broker_shutdown() (closes listeners and connections,
 * publishing no wills: a clean stop is not a client failure) ->
 * roost_broker_free().
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

/* cfg and log must outlive the broker. */
roost_broker *roost_broker_new(struct event_base *base, const roost_config *cfg,
                               const roost_log *log, roost_clock clock);
void roost_broker_free(roost_broker *b);

/*
 * Open the durable store configured in persistence.path (nothing when it is
 * unset) and load it: retained messages, persistent sessions with their
 * subscriptions and queued messages. Call before roost_broker_listen. Fails
 * only when no database can be created at all; a corrupt one is moved aside.
 */
roost_err roost_broker_open_store(roost_broker *b);

/* Open every configured listener; logs "listening on ADDR:PORT" for each. */
roost_err roost_broker_listen(roost_broker *b);

/* Re-read every TLS listener's certificate and key (SIGHUP); connected
 * clients are not dropped, and a failed reload keeps the old ones. */
void roost_broker_reload_tls(roost_broker *b);

/* Stop accepting, close all connections (flushing what is queued). */
void roost_broker_shutdown(roost_broker *b);

/*
 * Publish a message as the broker itself (components, wills, $SYS): retained
 * handling and fan-out exactly as for a client PUBLISH. Borrows msg.
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
 * username is NULL for anonymous clients. access is ROOST_ACL_READ (a
 * message is about to be delivered), ROOST_ACL_WRITE (a client publishes) or
 * ROOST_ACL_SUBSCRIBE (a client subscribes; topic is the filter).
 */
enum { ROOST_AUTH_DEFER = 0, ROOST_AUTH_ALLOW = 1, ROOST_AUTH_DENY = 2 };
typedef struct roost_auth_hook {
	int (*connect)(void *ctx, const char *client_id, const char *username, const uint8_t *password,
	               size_t password_len, bool loopback);
	int (*acl)(void *ctx, const char *client_id, const char *username, const char *topic, size_t len,
	           int access);
	void *ctx;
} roost_auth_hook;
/* The hook is borrowed until removed. */
roost_err roost_broker_auth_hook_add(roost_broker *b, const roost_auth_hook *hook);
void roost_broker_auth_hook_remove(roost_broker *b, const roost_auth_hook *hook);

/*
 * Load password_file and acl_file (at start, before listening). Every
 * problem is printed as "file:line: message" to the log; returns
 * ROOST_ERR_CONFIG then.
 */
roost_err roost_broker_load_auth(roost_broker *b);
/* SIGHUP: re-read both files; on any error the old ones stay. Clients are
 * not dropped; a subscription the new ACL no longer grants is removed at
 * once, and every delivery is checked against the new ACL. */
void roost_broker_reload_auth(roost_broker *b);

typedef struct roost_broker_stats {
	uint64_t connections;        /* currently open */
	uint64_t msgs_received;      /* PUBLISH packets accepted from clients */
	uint64_t msgs_sent;          /* PUBLISH packets written to clients */
	uint64_t msgs_dropped;       /* dropped by queue limits or back-pressure */
	uint64_t sessions;           /* sessions in memory (online + offline) */
	uint64_t retained;
	uint64_t subscriptions;
} roost_broker_stats;
void roost_broker_stats_get(const roost_broker *b, roost_broker_stats *out);

/* For the daemon (systemd's STATUS=): fn(ctx) runs after a connection opened
 * or closed, stats.connections already updated. One watcher; fn NULL removes
 * it, which main does before roost_broker_free. */
void roost_broker_watch_connections(roost_broker *b, void (*fn)(void *ctx), void *ctx);

#endif
