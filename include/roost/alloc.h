/*
 * alloc.h — the one allocation wrapper.
 *
 * All roost code allocates through these functions so that tests and fuzzers
 * can make the Nth allocation fail (roost_alloc_fail_after) and check that
 * every path cleans up. The failure counter is the only process-wide state in
 * roost; it is test instrumentation, inert unless a test arms it.
 */
#ifndef ROOST_ALLOC_H
#define ROOST_ALLOC_H

#include <stddef.h>

void *roost_malloc(size_t n);
void *roost_calloc(size_t count, size_t n);
void *roost_realloc(void *p, size_t n);
char *roost_strdup(const char *s);
char *roost_strndup(const char *s, size_t n);
void roost_free(void *p);

/*
 * Make allocation number n (1-based, counted from this call) and every one
 * after it fail; n == 0 disarms. Returns nothing: tests read back
 * roost_alloc_count() to know how many allocations a path made.
 */
void roost_alloc_fail_after(unsigned long n);
unsigned long roost_alloc_count(void);

#endif
