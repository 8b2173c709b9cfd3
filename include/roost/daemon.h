/*
 * daemon.h — what only the daemon (main) and tests that build a broker in
 * process call: create, load, listen, reload, shut down and free the broker.
 * Components never see these (they get roost/broker.h): a component that
 * could stop the listeners or free the broker under the others is a
 * component that owns the process.
 *
 * Lifetime: roost_broker_new() -> roost_broker_load_auth() ->
 * roost_broker_open_store() -> roost_broker_listen() -> run the event base
 * -> roost_broker_shutdown() (closes listeners and connections, publishing
 * no wills: a clean stop is not a client failure) -> roost_broker_free().
 */
#ifndef ROOST_DAEMON_H
#define ROOST_DAEMON_H

#include "roost/broker.h"
#include "roost/clock.h"
#include "roost/config.h"
#include "roost/error.h"
#include "roost/log.h"

struct event_base;

/* cfg and log must outlive the broker. */
roost_broker *roost_broker_new(struct event_base *base, const roost_config *cfg,
                               const roost_log *log, roost_clock clock);
/* Shuts down first if roost_broker_shutdown was not called. */
void roost_broker_free(roost_broker *b);

/*
 * Load password_file and acl_file (at start, before listening). Every
 * problem is printed as "file:line: message" to the log; returns
 * ROOST_ERR_CONFIG then.
 */
roost_err roost_broker_load_auth(roost_broker *b);
/* SIGHUP: re-read both files; on any error the old ones stay. Clients are
 * not dropped; a subscription the new ACL no longer grants is removed at
 * once, a will its client may no longer publish is dropped, and every
 * delivery not yet sent (queued and retained ones too) is checked against
 * the new ACL. */
void roost_broker_reload_auth(roost_broker *b);

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

/* systemd's STATUS=: fn(ctx) runs after a connection opened or closed,
 * stats.connections already updated. One watcher; fn NULL removes it, which
 * main does before roost_broker_free. */
void roost_broker_watch_connections(roost_broker *b, void (*fn)(void *ctx), void *ctx);

#endif
