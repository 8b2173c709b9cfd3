/*
 * sys.c — the $SYS tree: Mosquitto's names and formats, roost's own under
 * $SYS/broker/roost/, and the registry of components' figures. See sys.h
 * for when it publishes and why an idle broker never wakes up for it.
 *
 * A leaf: the figures come from roost_broker_stats_get,
 * roost_broker_listener_stats and the registered sources; messages go out
 * through the broker's own entry (broker_publish, or broker_retain for a
 * refresh), which does not authorise: $SYS is the broker's.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "internal.h"
#include "roost/alloc.h"
#include "sys.h"

#if HAVE_MALLINFO2
#include <malloc.h>
#endif

/* A component's figures (roost_broker_stats_source_add). */
typedef struct stats_source {
	struct stats_source *next;
	roost_stats_fn fn;
	void *ctx;
	char name[];
} stats_source;

/* A $SYS leaf and the roost_broker_stats field it shows. */
typedef struct stat_def {
	const char *name;
	size_t field; /* offset in roost_broker_stats */
} stat_def;

/* The load averages, by the counter they follow. */
static const stat_def load_defs[] = {
	{"messages/received", offsetof(roost_broker_stats, packets_received)},
	{"messages/sent", offsetof(roost_broker_stats, packets_sent)},
	{"publish/received", offsetof(roost_broker_stats, msgs_received)},
	{"publish/sent", offsetof(roost_broker_stats, msgs_sent)},
	{"publish/dropped", offsetof(roost_broker_stats, msgs_dropped)},
	{"bytes/received", offsetof(roost_broker_stats, bytes_received)},
	{"bytes/sent", offsetof(roost_broker_stats, bytes_sent)},
	{"connections", offsetof(roost_broker_stats, connects)},
};
enum { N_LOADS = sizeof load_defs / sizeof load_defs[0] };

/* Plain figures, published as decimal integers. */
static const stat_def count_defs[] = {
	{"clients/connected", offsetof(roost_broker_stats, clients_connected)},
	{"clients/maximum", offsetof(roost_broker_stats, clients_maximum)},
	{"clients/total", offsetof(roost_broker_stats, sessions)},
	{"clients/expired", offsetof(roost_broker_stats, clients_expired)},
	{"messages/received", offsetof(roost_broker_stats, packets_received)},
	{"messages/sent", offsetof(roost_broker_stats, packets_sent)},
	{"messages/stored", offsetof(roost_broker_stats, msgs_stored)},
	{"publish/messages/received", offsetof(roost_broker_stats, msgs_received)},
	{"publish/messages/sent", offsetof(roost_broker_stats, msgs_sent)},
	{"publish/messages/dropped", offsetof(roost_broker_stats, msgs_dropped)},
	{"bytes/received", offsetof(roost_broker_stats, bytes_received)},
	{"bytes/sent", offsetof(roost_broker_stats, bytes_sent)},
	{"subscriptions/count", offsetof(roost_broker_stats, subscriptions)},
	{"retained messages/count", offsetof(roost_broker_stats, retained)},
};

/* The store's, only with one. */
static const stat_def store_defs[] = {
	{"store/size", offsetof(roost_broker_stats, store_size)},
	{"store/commits", offsetof(roost_broker_stats, store_commits)},
	{"store/moved_aside", offsetof(roost_broker_stats, store_moved_aside)},
};

enum pass { PASS_CHECK, PASS_RETAIN, PASS_PUBLISH };

struct broker_sys {
	roost_broker *b;
	struct event *timer;      /* EV_PERSIST every sys_interval; pending only while listened */
	uint64_t last_ms;         /* clock time of the last load update */
	broker_sys_load load[N_LOADS];
	uint64_t heap_max;        /* the largest heap seen at a publish */
	stats_source *sources;
	enum pass pass;
	bool listened;            /* PASS_CHECK's answer */
	bool warned_nomem;
};

static const double load_period_ms[BROKER_SYS_LOAD_PERIODS] = {60e3, 300e3, 900e3};
static const char *const load_period_name[BROKER_SYS_LOAD_PERIODS] = {"1min", "5min", "15min"};

void broker_sys_load_update(broker_sys_load *l, uint64_t count, uint64_t elapsed_ms)
{
	if (elapsed_ms == 0)
		return;
	/* The events since the last update are taken as spread evenly over
	 * the elapsed time: two updates 30 s apart give what one after 60 s
	 * gives, however rarely anyone looks. */
	double rate = (double)(count - l->count) * 60e3 / (double)elapsed_ms;
	for (int i = 0; i < BROKER_SYS_LOAD_PERIODS; i++) {
		double keep = exp(-(double)elapsed_ms / load_period_ms[i]);
		l->avg[i] = rate + keep * (l->avg[i] - rate);
	}
	l->count = count;
}

#if HAVE_MALLINFO2
static bool heap_now(uint64_t *out)
{
	struct mallinfo2 mi = mallinfo2();
	*out = (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd; /* in use, small and mmapped blocks */
	return true;
}
#else
static bool heap_now(uint64_t *out)
{
	*out = 0;
	return false; /* no mallinfo2: the heap topics are not published */
}
#endif

/* ---- one pass over the tree ---- */

/* An online client or a component would receive it: offline sessions do
 * not keep the timer running (QoS 0 is not queued for them anyway). */
static bool live_visit(void *ctx, void *sub, uint8_t options)
{
	(void)options;
	void *sink_ctx;
	if (roost_session_conn(sub) || roost_session_sink(sub, &sink_ctx)) {
		*(bool *)ctx = true;
		return false;
	}
	return true;
}

static void emit(struct broker_sys *s, const char *leaf, const char *text)
{
	roost_broker *b = s->b;
	char topic[256];
	int n = snprintf(topic, sizeof topic, "$SYS/broker/%s", leaf);
	if (n < 0 || (size_t)n >= sizeof topic)
		return;
	if (s->pass == PASS_CHECK) {
		if (!s->listened)
			roost_topic_tree_match(b->tree, topic, (size_t)n, live_visit, &s->listened);
		return;
	}
	roost_msg *m = roost_msg_new(topic, (size_t)n, (const uint8_t *)text, strlen(text), 0, true);
	if (!m) {
		if (!s->warned_nomem)
			roost_log_warn(b->log, "$SYS: out of memory publishing %s", topic);
		s->warned_nomem = true;
		return;
	}
	if (s->pass == PASS_PUBLISH)
		broker_publish(b, m);
	else
		broker_retain(b, m);
	roost_msg_unref(m);
}

static void emit_u64(struct broker_sys *s, const char *leaf, uint64_t v)
{
	char text[24];
	snprintf(text, sizeof text, "%llu", (unsigned long long)v);
	emit(s, leaf, text);
}

static uint64_t field(const roost_broker_stats *st, size_t off)
{
	uint64_t v;
	memcpy(&v, (const char *)st + off, sizeof v);
	return v;
}

static void emit_loads(struct broker_sys *s, const roost_broker_stats *st, uint64_t now)
{
	/* The check pass only asks who listens: the averages move when published. */
	bool update = s->pass != PASS_CHECK;
	uint64_t elapsed = now - s->last_ms;
	if (update)
		s->last_ms = now;
	for (size_t i = 0; i < N_LOADS; i++) {
		if (update)
			broker_sys_load_update(&s->load[i], field(st, load_defs[i].field), elapsed);
		for (int p = 0; p < BROKER_SYS_LOAD_PERIODS; p++) {
			char leaf[64], text[32];
			snprintf(leaf, sizeof leaf, "load/%s/%s", load_defs[i].name, load_period_name[p]);
			snprintf(text, sizeof text, "%.2f", s->load[i].avg[p]);
			emit(s, leaf, text);
		}
	}
}

static void emit_source(void *ctx, const char *source, const roost_stat *items, size_t n)
{
	struct broker_sys *s = ctx;
	for (size_t i = 0; i < n; i++) {
		char leaf[160];
		snprintf(leaf, sizeof leaf, "roost/%s/%s", source, items[i].name);
		if (items[i].kind == ROOST_STAT_TEXT)
			emit(s, leaf, items[i].text ? items[i].text : "");
		else
			emit_u64(s, leaf, items[i].value);
	}
}

static void emit_listeners(struct broker_sys *s)
{
	roost_listener_stats ls[16];
	size_t n = roost_broker_listener_stats(s->b, ls, sizeof ls / sizeof ls[0]);
	for (size_t i = 0; i < n && i < sizeof ls / sizeof ls[0]; i++) {
		char leaf[160];
		snprintf(leaf, sizeof leaf, "roost/listeners/%s:%d/clients", *ls[i].bind ? ls[i].bind : "*", ls[i].port);
		emit_u64(s, leaf, ls[i].clients_v31 + ls[i].clients_v311 + ls[i].clients_v5);
	}
}

static void emit_all(struct broker_sys *s, enum pass pass)
{
	roost_broker *b = s->b;
	s->pass = pass;
	s->listened = false;
	roost_broker_stats st;
	roost_broker_stats_get(b, &st);
	emit(s, "version", "roost version " PACKAGE_VERSION);
	char text[48];
	snprintf(text, sizeof text, "%llu seconds", (unsigned long long)(st.uptime_ms / 1000));
	emit(s, "uptime", text);
	for (size_t i = 0; i < sizeof count_defs / sizeof count_defs[0]; i++)
		emit_u64(s, count_defs[i].name, field(&st, count_defs[i].field));
	emit_u64(s, "clients/disconnected", st.sessions > st.clients_connected ? st.sessions - st.clients_connected : 0);
	uint64_t heap;
	if (heap_now(&heap)) {
		if (heap > s->heap_max)
			s->heap_max = heap;
		emit_u64(s, "heap/current", heap);
		emit_u64(s, "heap/maximum", s->heap_max);
	}
	if (b->store)
		for (size_t i = 0; i < sizeof store_defs / sizeof store_defs[0]; i++)
			emit_u64(s, store_defs[i].name, field(&st, store_defs[i].field));
	emit_loads(s, &st, roost_clock_now(&b->clock));
	emit_listeners(s);
	roost_broker_stats_sources(b, emit_source, s);
}

/* ---- the timer ---- */

static bool listened(struct broker_sys *s)
{
	emit_all(s, PASS_CHECK);
	return s->listened;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct broker_sys *s = arg;
	if (!listened(s)) {
		/* Nobody would receive it: sleep until the next $SYS subscriber. */
		event_del(s->timer);
		roost_log_debug(s->b->log, "$SYS: nobody subscribed: updates stopped");
		return;
	}
	emit_all(s, PASS_PUBLISH);
}

static void run_timer(struct broker_sys *s)
{
	if (event_pending(s->timer, EV_TIMEOUT, NULL))
		return;
	struct timeval tv = {.tv_sec = (time_t)s->b->cfg->sys_interval, .tv_usec = 0};
	event_add(s->timer, &tv);
	roost_log_debug(s->b->log, "$SYS: subscribed: updates every %u s", s->b->cfg->sys_interval);
}

roost_err broker_sys_new(roost_broker *b)
{
	struct broker_sys *s = roost_calloc(1, sizeof *s);
	if (!s)
		return ROOST_ERR_NOMEM;
	s->b = b;
	s->last_ms = roost_clock_now(&b->clock);
	s->timer = event_new(b->base, -1, EV_PERSIST, tick_cb, s);
	if (!s->timer) {
		roost_free(s);
		return ROOST_ERR_NOMEM;
	}
	b->sys = s;
	return ROOST_OK;
}

void broker_sys_free(roost_broker *b)
{
	struct broker_sys *s = b->sys;
	if (!s)
		return;
	while (s->sources)
		roost_broker_stats_source_remove(b, s->sources->name);
	event_free(s->timer);
	roost_free(s);
	b->sys = NULL;
}

void broker_sys_subscribed(roost_broker *b)
{
	if (!b->sys || b->cfg->sys_interval == 0 || b->shutting_down)
		return;
	emit_all(b->sys, PASS_RETAIN);
	run_timer(b->sys);
}

void broker_sys_wake(roost_broker *b)
{
	if (!b->sys || b->cfg->sys_interval == 0 || event_pending(b->sys->timer, EV_TIMEOUT, NULL))
		return;
	if (listened(b->sys))
		run_timer(b->sys);
}

void broker_sys_publish_text(roost_broker *b, const char *topic, const char *text)
{
	roost_msg *m = roost_msg_new(topic, strlen(topic), (const uint8_t *)text, strlen(text), 0, true);
	if (m)
		broker_publish(b, m);
	roost_msg_unref(m);
}

/* ---- components' figures ---- */

static stats_source **source_slot(struct broker_sys *s, const char *name)
{
	stats_source **pp = &s->sources;
	while (*pp && strcmp((*pp)->name, name) != 0)
		pp = &(*pp)->next;
	return pp;
}

roost_err roost_broker_stats_source_add(roost_broker *b, const char *source, roost_stats_fn fn, void *ctx)
{
	stats_source **pp = source_slot(b->sys, source);
	if (*pp)
		return ROOST_ERR_EXISTS;
	size_t len = strlen(source);
	stats_source *src = roost_malloc(sizeof *src + len + 1);
	if (!src)
		return ROOST_ERR_NOMEM;
	memcpy(src->name, source, len + 1);
	src->fn = fn;
	src->ctx = ctx;
	src->next = NULL;
	*pp = src; /* appended: reported in registration order */
	return ROOST_OK;
}

void roost_broker_stats_source_remove(roost_broker *b, const char *source)
{
	stats_source **pp = source_slot(b->sys, source);
	stats_source *src = *pp;
	if (!src)
		return;
	*pp = src->next;
	roost_free(src);
}

void roost_broker_stats_sources(roost_broker *b, roost_stats_visit visit, void *ctx)
{
	for (stats_source *src = b->sys->sources; src; src = src->next) {
		roost_stat items[ROOST_STATS_SOURCE_MAX_ITEMS];
		memset(items, 0, sizeof items);
		size_t n = src->fn(src->ctx, items, ROOST_STATS_SOURCE_MAX_ITEMS);
		visit(ctx, src->name, items, n < ROOST_STATS_SOURCE_MAX_ITEMS ? n : ROOST_STATS_SOURCE_MAX_ITEMS);
	}
}
