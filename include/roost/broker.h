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

typedef struct roost_broker_stats {
	uint64_t connections;        /* currently open */
	uint64_t msgs_received;      /* PUBLISH packets accepted from clients */
	uint64_t msgs_sent;          /* PUBLISH packets written to clients */
	uint64_t msgs_dropped;       /* dropped by queue limits or back-pressure */
	uint64_t msgs_expired;       /* of those: Message Expiry Interval passed before delivery (v5) */
	uint64_t msgs_too_large;     /* of those: over the receiver's Maximum Packet Size (v5) */
	uint64_t sessions;           /* sessions in memory (online + offline) */
	uint64_t retained;
	uint64_t subscriptions;
} roost_broker_stats;
void roost_broker_stats_get(const roost_broker *b, roost_broker_stats *out);

#endif
