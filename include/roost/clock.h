/*
 * clock.h — the broker's clock.
 *
 * Time is read only through a roost_clock so session expiry, keepalive
 * decisions and retry backoff can be tested on a fake clock. Monotonic
 * milliseconds; wall time only where a protocol needs it.
 */
#ifndef ROOST_CLOCK_H
#define ROOST_CLOCK_H

#include <stdint.h>

typedef struct roost_clock {
	uint64_t (*now_ms)(void *ctx); /* monotonic milliseconds */
	void *ctx;
} roost_clock;

/* A clock reading CLOCK_MONOTONIC. */
roost_clock roost_clock_system(void);

static inline uint64_t roost_clock_now(const roost_clock *c)
{
	return c->now_ms(c->ctx);
}

/* A fake clock for tests: reads *(uint64_t *)ctx. */
uint64_t roost_clock_fake_now(void *ctx);

#endif
