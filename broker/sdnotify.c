/* sdnotify.c — sd_notify(3) through libsystemd: readiness, status with the
 * connection count, watchdog pings from the event loop. See sdnotify.h. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <event2/event.h>
#include <systemd/sd-daemon.h>

#include "roost/alloc.h"
#include "sdnotify.h"

/* STATUS= is rewritten at most this often however fast clients come and go. */
#define STATUS_MIN_INTERVAL_MS 1000

struct roost_sdnotify {
	roost_broker *b;
	const roost_log *log;
	roost_clock clock;
	struct event *status_ev;   /* one-shot: a STATUS= update is pending */
	struct event *watchdog_ev; /* persistent, only with $WATCHDOG_USEC */
	bool ready;
	bool failed_logged;
	bool status_sent;
	uint64_t status_ms;        /* clock time of the last STATUS= */
	uint64_t status_count;     /* the count it reported */
};

static void notify(roost_sdnotify *n, const char *state)
{
	int r = sd_notify(0, state);
	if (r < 0 && !n->failed_logged) {
		n->failed_logged = true;
		roost_log_warn(n->log, "systemd notification failed: %s", strerror(-r));
	}
}

static void send_status(roost_sdnotify *n)
{
	roost_broker_stats st;
	roost_broker_stats_get(n->b, &st);
	n->status_ms = roost_clock_now(&n->clock);
	if (n->status_sent && st.connections == n->status_count)
		return;
	char msg[96];
	snprintf(msg, sizeof msg, "STATUS=%" PRIu64 " client connection%s", st.connections,
	         st.connections == 1 ? "" : "s");
	n->status_sent = true;
	n->status_count = st.connections;
	notify(n, msg);
}

static void on_status_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	send_status(arg);
}

/* The broker's connection count changed: send now, or once the interval
 * since the last update is over (one pending timer covers any burst). */
static void on_connections(void *arg)
{
	roost_sdnotify *n = arg;
	if (!n->ready || evtimer_pending(n->status_ev, NULL))
		return;
	uint64_t since = roost_clock_now(&n->clock) - n->status_ms;
	if (since >= STATUS_MIN_INTERVAL_MS) {
		send_status(n);
		return;
	}
	uint64_t wait = STATUS_MIN_INTERVAL_MS - since;
	struct timeval tv = {.tv_sec = (time_t)(wait / 1000), .tv_usec = (suseconds_t)(wait % 1000) * 1000};
	evtimer_add(n->status_ev, &tv);
}

/* Runs on the event loop: a loop that is stuck sends nothing, and systemd
 * restarts the service after WatchdogSec=. */
static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	notify(arg, "WATCHDOG=1");
}

roost_sdnotify *roost_sdnotify_new(struct event_base *base, roost_broker *b, const roost_log *log,
                                   roost_clock clock)
{
	if (!getenv("NOTIFY_SOCKET"))
		return NULL;
	roost_sdnotify *n = roost_calloc(1, sizeof *n);
	if (!n)
		goto fail;
	*n = (roost_sdnotify){.b = b, .log = log, .clock = clock};
	n->status_ev = evtimer_new(base, on_status_timer, n);
	if (!n->status_ev)
		goto fail;
	uint64_t usec = 0;
	if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
		n->watchdog_ev = event_new(base, -1, EV_PERSIST, on_watchdog, n);
		if (!n->watchdog_ev)
			goto fail;
	}
	roost_broker_watch_connections(b, on_connections, n);
	return n;
fail:
	roost_log_error(log, "out of memory: no systemd notifications");
	roost_sdnotify_free(n);
	return NULL;
}

void roost_sdnotify_ready(roost_sdnotify *n)
{
	if (!n)
		return;
	n->ready = true;
	notify(n, "READY=1");
	send_status(n);
	uint64_t usec = 0;
	if (n->watchdog_ev && sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
		uint64_t half = usec / 2;
		struct timeval tv = {.tv_sec = (time_t)(half / 1000000),
		                     .tv_usec = (suseconds_t)(half % 1000000)};
		event_add(n->watchdog_ev, &tv);
		roost_log_info(n->log, "systemd watchdog: a ping every %" PRIu64 " ms", half / 1000);
	}
}

void roost_sdnotify_stopping(roost_sdnotify *n)
{
	if (!n)
		return;
	n->ready = false; /* closing connections is not news */
	notify(n, "STOPPING=1");
}

void roost_sdnotify_free(roost_sdnotify *n)
{
	if (!n)
		return;
	roost_broker_watch_connections(n->b, NULL, NULL);
	if (n->status_ev)
		event_free(n->status_ev);
	if (n->watchdog_ev)
		event_free(n->watchdog_ev);
	roost_free(n);
}
