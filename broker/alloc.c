/* alloc.c — allocation wrapper with test-only failure injection. */
#include <stdlib.h>
#include <string.h>

#include "roost/alloc.h"

/*
 * The only file-scope mutable state in roost: allocation-failure injection
 * for tests. Disarmed (fail_at == 0) in production, where it costs one
 * increment and one compare per allocation.
 */
static unsigned long alloc_calls;
static unsigned long fail_at;

static int should_fail(void)
{
	alloc_calls++;
	return fail_at != 0 && alloc_calls >= fail_at;
}

void roost_alloc_fail_after(unsigned long n)
{
	alloc_calls = 0;
	fail_at = n;
}

unsigned long roost_alloc_count(void)
{
	return alloc_calls;
}

void *roost_malloc(size_t n)
{
	return should_fail() ? NULL : malloc(n);
}

void *roost_calloc(size_t count, size_t n)
{
	return should_fail() ? NULL : calloc(count, n);
}

void *roost_realloc(void *p, size_t n)
{
	return should_fail() ? NULL : realloc(p, n);
}

char *roost_strndup(const char *s, size_t n)
{
	char *d = roost_malloc(n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

char *roost_strdup(const char *s)
{
	return roost_strndup(s, strlen(s));
}

void roost_free(void *p)
{
	free(p);
}
