/* spool.c — bounded FIFO of event bodies; see spool.h. */
#include <assert.h>
#include <string.h>

#include "roost/alloc.h"

#include "spool.h"

typedef struct entry {
	uint64_t seq;
	size_t len;
	char data[]; /* len bytes + NUL */
} entry;

struct roost_spool {
	entry **ring;      /* cap slots; entries at head .. head+count-1 (mod cap) */
	size_t cap;        /* allocated slots, <= max */
	size_t head;
	size_t count;
	size_t max;
	uint64_t next_seq; /* sequence number of the next push */
	uint64_t dropped;
};

#define SPOOL_INITIAL_SLOTS 16

roost_spool *roost_spool_new(size_t max)
{
	assert(max >= 1);
	roost_spool *s = roost_calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->max = max;
	s->next_seq = 1;
	return s;
}

void roost_spool_free(roost_spool *s)
{
	if (!s)
		return;
	while (s->count)
		roost_spool_pop(s);
	roost_free(s->ring);
	roost_free(s);
}

/* Make room for one more entry below max: double the ring, unwrapping it. */
static roost_err grow(roost_spool *s)
{
	size_t cap = s->cap ? s->cap * 2 : SPOOL_INITIAL_SLOTS;
	if (cap > s->max)
		cap = s->max;
	entry **ring = roost_malloc(cap * sizeof *ring);
	if (!ring)
		return ROOST_ERR_NOMEM;
	for (size_t i = 0; i < s->count; i++)
		ring[i] = s->ring[(s->head + i) % s->cap];
	roost_free(s->ring);
	s->ring = ring;
	s->cap = cap;
	s->head = 0;
	return ROOST_OK;
}

roost_err roost_spool_push(roost_spool *s, const char *data, size_t len, bool *dropped_oldest,
                           uint64_t *seq)
{
	if (dropped_oldest)
		*dropped_oldest = false;
	entry *e = roost_malloc(sizeof *e + len + 1);
	if (!e)
		return ROOST_ERR_NOMEM;
	e->len = len;
	e->seq = s->next_seq;
	memcpy(e->data, data, len);
	e->data[len] = '\0';
	if (s->count == s->cap && s->cap < s->max && grow(s) != ROOST_OK) {
		roost_free(e);
		return ROOST_ERR_NOMEM;
	}
	if (s->count == s->max) {
		roost_spool_pop(s);
		s->dropped++;
		if (dropped_oldest)
			*dropped_oldest = true;
	}
	s->ring[(s->head + s->count) % s->cap] = e;
	s->count++;
	if (seq)
		*seq = s->next_seq;
	s->next_seq++;
	return ROOST_OK;
}

const char *roost_spool_peek(const roost_spool *s, size_t *len, uint64_t *seq)
{
	return roost_spool_peek_at(s, 0, len, seq);
}

const char *roost_spool_peek_at(const roost_spool *s, size_t i, size_t *len, uint64_t *seq)
{
	if (i >= s->count)
		return NULL;
	const entry *e = s->ring[(s->head + i) % s->cap];
	if (len)
		*len = e->len;
	if (seq)
		*seq = e->seq;
	return e->data;
}

void roost_spool_set_next_seq(roost_spool *s, uint64_t seq)
{
	assert(seq >= s->next_seq);
	s->next_seq = seq;
}

void roost_spool_pop(roost_spool *s)
{
	if (!s->count)
		return;
	roost_free(s->ring[s->head]);
	s->ring[s->head] = NULL;
	s->head = (s->head + 1) % s->cap;
	s->count--;
}

size_t roost_spool_count(const roost_spool *s) { return s->count; }
size_t roost_spool_max(const roost_spool *s) { return s->max; }
uint64_t roost_spool_dropped(const roost_spool *s) { return s->dropped; }
