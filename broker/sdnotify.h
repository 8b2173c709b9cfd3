/*
 * sdnotify.h — telling systemd how the daemon is doing (sd_notify(3)).
 *
 * Under a unit with Type=notify systemd passes $NOTIFY_SOCKET: roost sends
 * READY=1 once its listeners are open, STATUS= with the number of client
 * connections (when it changes, at most about once a second, through a
 * one-shot timer that exists only while an update is pending), STOPPING=1 on
 * shutdown, and WATCHDOG=1 from the event loop every half $WATCHDOG_USEC when
 * the unit sets WatchdogSec= (no timer otherwise, so an idle broker has no
 * wake-ups).
 *
 * Two implementations, picked by configure (--with-systemd): sdnotify.c uses
 * libsystemd; sdnotify_none.c does nothing. roost_sdnotify_new returns NULL
 * when there is nothing to tell (no $NOTIFY_SOCKET, or no libsystemd); every
 * other function accepts NULL and then does nothing. Only main uses this.
 */
#ifndef ROOST_SDNOTIFY_H
#define ROOST_SDNOTIFY_H

#include "roost/daemon.h"
#include "roost/clock.h"
#include "roost/log.h"

struct event_base;
typedef struct roost_sdnotify roost_sdnotify;

/* base, b and log are borrowed and must outlive the object. */
roost_sdnotify *roost_sdnotify_new(struct event_base *base, roost_broker *b, const roost_log *log,
                                   roost_clock clock);
/* READY=1 with the first STATUS=; starts the watchdog timer when asked for. */
void roost_sdnotify_ready(roost_sdnotify *n);
/* STOPPING=1: a clean shutdown has begun. */
void roost_sdnotify_stopping(roost_sdnotify *n);
/* Stops watching the broker's connections and frees the timers. */
void roost_sdnotify_free(roost_sdnotify *n);

#endif
