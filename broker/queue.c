/*
 * queue.c — a component's durable queue; see roost/queue.h.
 *
 * The memory side is a spool (spool.h), whose entries keep the sequence
 * numbers they are stored under; the durable side is the store's "queue"
 * table. Every change is made to both, memory first: a store write that
 * fails poisons the broker's open batch, which then acknowledges nothing,
 * so the memory side may run ahead of the store but never behind what was
 * acknowledged.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "roost/alloc.h"
#include "roost/queue.h"

#include "spool.h"

#define QUEUE_NAME_MAX 64
/* The store's counter that keeps a queue's next number once it is empty
 * (with no row left, nothing else remembers it). */
#define QUEUE_COUNTER_PREFIX "queue_next:"

struct roost_queue {
	roost_spool *mem;
	roost_persist *store; /* NULL: memory only */
	uint64_t dropped;
	char name[QUEUE_NAME_MAX + 1];
};

static bool name_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > QUEUE_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '_' || ch == '.' || ch == '-'))
			return false;
	}
	return true;
}

roost_queue *roost_queue_new_memory(size_t max_items)
{
	if (max_items < 1)
		return NULL;
	roost_queue *q = roost_calloc(1, sizeof *q);
	if (!q)
		return NULL;
	q->mem = roost_spool_new(max_items);
	if (!q->mem) {
		roost_free(q);
		return NULL;
	}
	return q;
}

/* One stored row, in seq order: the memory side takes its number. */
static roost_err load_row(void *ctx, uint64_t seq, const void *body, size_t len)
{
	roost_queue *q = ctx;
	uint64_t last = 0;
	size_t n = roost_spool_count(q->mem);
	if (n)
		roost_spool_peek_at(q->mem, n - 1, NULL, &last);
	if (seq > last)
		roost_spool_set_next_seq(q->mem, seq);
	bool dropped;
	roost_err err = roost_spool_push(q->mem, body, len, &dropped, NULL);
	if (!err && dropped)
		q->dropped++;
	return err;
}

roost_err roost_broker_queue_open(roost_broker *b, const char *name, size_t max_items, roost_queue **out)
{
	*out = NULL;
	if (!name_valid(name) || max_items < 1)
		return ROOST_ERR_INVALID;
	roost_queue *q = roost_queue_new_memory(max_items);
	if (!q)
		return ROOST_ERR_NOMEM;
	memcpy(q->name, name, strlen(name) + 1);
	if (b->store) {
		char counter[sizeof QUEUE_COUNTER_PREFIX + QUEUE_NAME_MAX];
		snprintf(counter, sizeof counter, QUEUE_COUNTER_PREFIX "%s", name);
		uint64_t next = roost_persist_counter_get(b->store, counter);
		if (next > 1)
			roost_spool_set_next_seq(q->mem, next);
		roost_err err = roost_persist_queue_load(b->store, name, load_row, q);
		uint64_t head = 0;
		/* Rows beyond a lowered bound went in the load: drop them from
		 * the store too. */
		if (!err && q->dropped && roost_spool_peek(q->mem, NULL, &head))
			err = roost_persist_queue_remove_upto(b->store, name, head - 1);
		if (err) {
			roost_queue_close(q);
			return err;
		}
		q->store = b->store;
	}
	*out = q;
	return ROOST_OK;
}

void roost_queue_close(roost_queue *q)
{
	if (!q)
		return;
	roost_spool_free(q->mem);
	roost_free(q);
}

roost_err roost_queue_append(roost_queue *q, const void *body, size_t len, uint64_t *seq, bool *dropped_oldest)
{
	uint64_t oldest = 0, s = 0;
	bool dropped = false;
	roost_spool_peek(q->mem, NULL, &oldest);
	roost_err err = roost_spool_push(q->mem, body, len, &dropped, &s);
	if (err)
		return err;
	if (dropped)
		q->dropped++;
	if (q->store) {
		if (dropped)
			roost_persist_queue_remove_upto(q->store, q->name, oldest);
		roost_persist_queue_put(q->store, q->name, s, body, len);
	}
	if (seq)
		*seq = s;
	if (dropped_oldest)
		*dropped_oldest = dropped;
	return ROOST_OK;
}

size_t roost_queue_peek(const roost_queue *q, uint64_t after, roost_queue_item *out, size_t n)
{
	size_t got = 0, count = roost_spool_count(q->mem);
	for (size_t i = 0; i < count && got < n; i++) {
		roost_queue_item *it = &out[got];
		it->body = roost_spool_peek_at(q->mem, i, &it->len, &it->seq);
		if (it->seq > after)
			got++;
	}
	return got;
}

roost_err roost_queue_ack(roost_queue *q, uint64_t upto)
{
	uint64_t seq;
	bool any = false;
	while (roost_spool_peek(q->mem, NULL, &seq) && seq <= upto) {
		roost_spool_pop(q->mem);
		any = true;
	}
	if (!any || !q->store)
		return ROOST_OK;
	roost_err err = roost_persist_queue_remove_upto(q->store, q->name, upto);
	if (!err && roost_spool_count(q->mem) == 0) {
		char counter[sizeof QUEUE_COUNTER_PREFIX + QUEUE_NAME_MAX];
		snprintf(counter, sizeof counter, QUEUE_COUNTER_PREFIX "%s", q->name);
		err = roost_persist_counter_set(q->store, counter, upto + 1);
	}
	return err;
}

size_t roost_queue_count(const roost_queue *q) { return roost_spool_count(q->mem); }
size_t roost_queue_max(const roost_queue *q) { return roost_spool_max(q->mem); }
uint64_t roost_queue_dropped(const roost_queue *q) { return q->dropped; }
bool roost_queue_durable(const roost_queue *q) { return q->store != NULL; }
