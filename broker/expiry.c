/*
 * expiry.c — offline sessions end when their Session Expiry Interval has
 * passed (MQTT 5.0 3.1.2.11.2; for 3.1.1, limits.persistent_session_expiry).
 *
 * Invariant: every offline session with a finite interval is in one binary
 * min-heap keyed by its deadline (clock milliseconds), and it knows its
 * position there (roost_session_expiry_slot), so cancelling on reconnect or
 * on destruction is O(log n). One timer is armed for the heap's top only,
 * and only re-armed when the top changes: an idle broker with nothing due
 * has no timer at all. Deadlines are on the broker's monotonic clock, so a
 * wall-clock jump (a Pi's clock set by NTP at boot) does not expire anyone.
 */
#include <stdint.h>

#include "internal.h"
#include "roost/alloc.h"

static uint64_t deadline(roost_session *s)
{
	return roost_session_expiry_slot_get(s)->deadline_ms;
}

static void place(roost_broker *b, size_t i, roost_session *s)
{
	b->expiry_heap[i] = s;
	roost_session_expiry_slot_get(s)->index = i;
}

static void sift_up(roost_broker *b, size_t i)
{
	roost_session *s = b->expiry_heap[i];
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (deadline(b->expiry_heap[parent]) <= deadline(s))
			break;
		place(b, i, b->expiry_heap[parent]);
		i = parent;
	}
	place(b, i, s);
}

static void sift_down(roost_broker *b, size_t i)
{
	roost_session *s = b->expiry_heap[i];
	for (;;) {
		size_t child = 2 * i + 1;
		if (child >= b->expiry_n)
			break;
		if (child + 1 < b->expiry_n && deadline(b->expiry_heap[child + 1]) < deadline(b->expiry_heap[child]))
			child++;
		if (deadline(s) <= deadline(b->expiry_heap[child]))
			break;
		place(b, i, b->expiry_heap[child]);
		i = child;
	}
	place(b, i, s);
}

static void expiry_cb(evutil_socket_t fd, short what, void *arg);

/* The timer follows the heap's top; it is touched only when that changed. */
static void rearm(roost_broker *b)
{
	if (b->expiry_n == 0) {
		if (b->expiry_armed_ms) {
			event_del(b->expiry_ev);
			b->expiry_armed_ms = 0;
		}
		return;
	}
	uint64_t due = deadline(b->expiry_heap[0]);
	if (due == b->expiry_armed_ms && event_pending(b->expiry_ev, EV_TIMEOUT, NULL))
		return;
	uint64_t now = roost_clock_now(&b->clock);
	uint64_t left = due > now ? due - now : 0;
	struct timeval tv = {.tv_sec = (time_t)(left / 1000), .tv_usec = (suseconds_t)(left % 1000) * 1000};
	event_add(b->expiry_ev, &tv);
	b->expiry_armed_ms = due;
	b->expiry_rearms++;
}

void broker_expiry_cancel(roost_broker *b, roost_session *s)
{
	roost_session_expiry_slot *slot = roost_session_expiry_slot_get(s);
	size_t i = slot->index;
	if (i == SIZE_MAX)
		return;
	slot->index = SIZE_MAX;
	roost_session *last = b->expiry_heap[--b->expiry_n];
	if (i < b->expiry_n) {
		place(b, i, last);
		sift_up(b, i);
		sift_down(b, roost_session_expiry_slot_get(last)->index);
	}
	rearm(b);
}

/* Schedule s to end at deadline_ms (clock time); false without memory. */
static bool schedule(roost_broker *b, roost_session *s, uint64_t deadline_ms)
{
	if (!b->expiry_ev && !(b->expiry_ev = event_new(b->base, -1, 0, expiry_cb, b)))
		return false;
	broker_expiry_cancel(b, s);
	if (b->expiry_n == b->expiry_cap) {
		size_t cap = b->expiry_cap ? 2 * b->expiry_cap : 16;
		roost_session **v = roost_realloc(b->expiry_heap, cap * sizeof *v);
		if (!v)
			return false;
		b->expiry_heap = v;
		b->expiry_cap = cap;
	}
	roost_session_expiry_slot_get(s)->deadline_ms = deadline_ms;
	place(b, b->expiry_n++, s);
	sift_up(b, b->expiry_n - 1);
	rearm(b);
	return true;
}

/* The session's next event: the earlier of its end and its will's due time. */
static void reschedule(roost_broker *b, roost_session *s)
{
	roost_session_expiry_slot *slot = roost_session_expiry_slot_get(s);
	uint64_t due = roost_session_will_due(s) ? roost_session_will_due(s) : UINT64_MAX;
	if (slot->ends_ms < due)
		due = slot->ends_ms;
	if (due == UINT64_MAX) {
		broker_expiry_cancel(b, s);
		return;
	}
	if (!schedule(b, s, due))
		roost_log_warn(b->log, "session %s: out of memory scheduling its expiry; it is kept",
		               roost_session_client_id(s));
}

void broker_expiry_session_offline(roost_broker *b, roost_session *s)
{
	uint32_t secs = roost_session_expiry(s);
	roost_session_expiry_slot *slot = roost_session_expiry_slot_get(s);
	slot->ends_ms = secs == ROOST_SESSION_NEVER_EXPIRES ? UINT64_MAX
	                                                    : roost_clock_now(&b->clock) + (uint64_t)secs * 1000u;
	reschedule(b, s);
}

void broker_expiry_will_delay(roost_broker *b, roost_session *s, roost_msg *will, uint32_t delay)
{
	roost_session_will_take(s, will, roost_clock_now(&b->clock) + (uint64_t)delay * 1000u);
}

void broker_expiry_session_online(roost_broker *b, roost_session *s)
{
	broker_expiry_cancel(b, s);
	roost_msg *will = roost_session_will_remove(s);
	if (will) /* [MQTT-3.1.3-9] the client came back before the delay */
		roost_log_info(b->log, "client %s reconnected: its delayed will on %s is not published",
		               roost_session_client_id(s), will->topic);
	roost_msg_unref(will);
}

/* Publish the session's waiting will, decided again for the session's
 * identity as at any will's publication (rights may have shrunk). */
static void publish_waiting_will(roost_broker *b, roost_session *s)
{
	roost_msg *will = roost_session_will_remove(s);
	if (!will)
		return;
	const char *why = NULL;
	if (broker_authz_publish(b, NULL, roost_session_client_id(s), roost_session_username(s), will->topic,
	                         will->topic_len, &why) == ROOST_OK)
		broker_publish(b, will);
	else
		roost_log_notice(b->log, "client %s: delayed will on %s not published: %s", roost_session_client_id(s),
		                 will->topic, why);
	roost_msg_unref(will);
}

void broker_session_end(roost_broker *b, roost_session *s)
{
	/* [MQTT-3.1.3-9] the will at the session's end if that comes first */
	publish_waiting_will(b, s);
	broker_session_destroy(b, s);
}

static void expiry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	roost_broker *b = arg;
	uint64_t now = roost_clock_now(&b->clock);
	b->expiry_armed_ms = 0;
	while (b->expiry_n && deadline(b->expiry_heap[0]) <= now) {
		roost_session *s = b->expiry_heap[0];
		broker_expiry_cancel(b, s);
		uint64_t will_due = roost_session_will_due(s);
		if (will_due && will_due <= now)
			publish_waiting_will(b, s);
		if (roost_session_expiry_slot_get(s)->ends_ms <= now) {
			roost_log_info(b->log, "session %s expired (%u s offline)", roost_session_client_id(s),
			               roost_session_expiry(s));
			broker_session_end(b, s); /* gone from memory and the store */
		} else {
			reschedule(b, s);
		}
	}
	rearm(b);
}

void broker_session_set_expiry(roost_broker *b, roost_session *s, uint32_t seconds)
{
	if (seconds == 0 && !roost_session_clean(s)) {
		/* Now it ends with its connection: it leaves the durable store. */
		broker_store_session_removed(b, s);
		roost_session_set_clean(s, true);
	}
	roost_session_set_expiry(s, seconds);
}

void broker_expiry_loaded(roost_broker *b)
{
	uint32_t secs = b->cfg->limits.persistent_session_expiry;
	if (!secs)
		return;
	session_entry *e, *tmp;
	HASH_ITER(hh, b->sessions, e, tmp) {
		/* The store does not keep intervals: a restored session gets the
		 * 3.1.1 interval, counted from the start (re-based, never from a
		 * wall-clock time that may have jumped). */
		if (!roost_session_conn(e->s) && roost_session_expiry(e->s) == ROOST_SESSION_NEVER_EXPIRES) {
			roost_session_set_expiry(e->s, secs);
			broker_expiry_session_offline(b, e->s);
		}
	}
}

void broker_expiry_free(roost_broker *b)
{
	if (b->expiry_ev)
		event_free(b->expiry_ev);
	b->expiry_ev = NULL;
	roost_free(b->expiry_heap);
	b->expiry_heap = NULL;
	b->expiry_n = b->expiry_cap = 0;
}
