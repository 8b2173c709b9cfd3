/*
 * sys.h — the $SYS tree (broker/sys.c), broker-private.
 *
 * roost publishes its figures as retained messages under $SYS/broker/ with
 * Mosquitto's names and formats, every sys_interval seconds, but only while
 * an online client or a component is subscribed to one of them: the timer is
 * started by a $SYS subscription and stops at the first tick nobody would
 * receive, so an idle broker has no wake-ups. A new $SYS subscriber gets
 * fresh values at once: the retained values are refreshed (without fan-out)
 * just before its retained messages are sent.
 *
 * Load averages are computed from the counters at publish time: the count
 * since the last publish, as a rate per minute, folded into each average
 * with the weight exp(-elapsed / period). The result does not depend on how
 * often it is computed, so no timer samples the counters.
 *
 * $SYS messages are retained in memory only: the store never keeps them
 * (broker_store_retain skips them), and only the broker publishes there
 * ([MQTT-4.7.2-1], broker_authz_publish).
 */
#ifndef ROOST_BROKER_SYS_H
#define ROOST_BROKER_SYS_H

#include <stdbool.h>
#include <stdint.h>

#include "roost/broker.h"
#include "roost/error.h"

/* One exponentially decaying load average over 1, 5 and 15 minutes, in
 * events per minute (Mosquitto's $SYS/broker/load/ unit). */
enum { BROKER_SYS_LOAD_PERIODS = 3 };
typedef struct broker_sys_load {
	double avg[BROKER_SYS_LOAD_PERIODS]; /* 1min, 5min, 15min */
	uint64_t count;                      /* the counter at the last update */
} broker_sys_load;

/* The counter reads count now, elapsed_ms after the last update: fold the
 * rate since then into each average. elapsed_ms 0 changes nothing. */
void broker_sys_load_update(broker_sys_load *l, uint64_t count, uint64_t elapsed_ms);

/* Created with the broker (sys_interval 0: nothing is ever published). */
roost_err broker_sys_new(roost_broker *b);
void broker_sys_free(roost_broker *b);

/* A $ filter was just subscribed (by a client or a component): refresh the
 * retained values without fan-out, and run the timer. */
void broker_sys_subscribed(roost_broker *b);
/* A persistent session came back online: its $SYS subscriptions (if any)
 * restart the timer. */
void broker_sys_wake(roost_broker *b);

/* Publish one retained $SYS value now (topic is the full name), to the
 * subscribers it has; used for values that change outside the tick (the
 * store's moved_aside count at open). */
void broker_sys_publish_text(roost_broker *b, const char *topic, const char *text);

#endif
