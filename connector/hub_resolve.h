/*
 * hub_resolve.h — name resolution that never blocks the event loop.
 *
 * Households reach Home Assistant as `homeassistant.local` (mDNS) and their
 * broker by name; a blocking getaddrinfo() on an unreachable mDNS name stalls
 * for seconds, and the loop also carries every MQTT client. So names are
 * resolved with glibc's getaddrinfo_a(), which goes through NSS (hosts file,
 * DNS, mDNS) on glibc's own helper thread, and polled from a short timer.
 * Numeric addresses are parsed in place, without a lookup.
 *
 * One-shot: the callback is called exactly once, from the event loop, unless
 * the request is cancelled first; the handle is freed right after the
 * callback returns, so callers forget their pointer in the callback.
 * roost_resolve_cancel() before that frees it without a callback (it may
 * wait for a lookup that glibc can no longer cancel: only at shutdown).
 */
#ifndef ROOST_CONNECTOR_HUB_RESOLVE_H
#define ROOST_CONNECTOR_HUB_RESOLVE_H

#include <netdb.h>
#include <stddef.h>

#include "roost/error.h"

struct event_base;
typedef struct roost_resolve roost_resolve;

/*
 * gai_err is 0 with ai the address list (borrowed for the call; never empty),
 * or a getaddrinfo error code (gai_strerror) with ai NULL.
 */
typedef void (*roost_resolve_fn)(void *ctx, int gai_err, const struct addrinfo *ai);

roost_err roost_resolve_start(struct event_base *base, const char *host, int port,
                              roost_resolve_fn fn, void *ctx, roost_resolve **out);
void roost_resolve_cancel(roost_resolve *r);

/* Number of entries in an address list. */
size_t roost_resolve_count(const struct addrinfo *ai);
/* Entry i (0-based, < count) of an address list. */
const struct addrinfo *roost_resolve_nth(const struct addrinfo *ai, size_t i);

#endif
