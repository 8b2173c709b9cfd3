/* clock.c — monotonic system clock and the fake clock used by tests. */
#include <time.h>

#include "roost/clock.h"

static uint64_t system_now(void *ctx)
{
	(void)ctx;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

roost_clock roost_clock_system(void)
{
	return (roost_clock){.now_ms = system_now, .ctx = NULL};
}

uint64_t roost_clock_fake_now(void *ctx)
{
	return *(const uint64_t *)ctx;
}
