/* sdnotify_none.c — built without libsystemd (configure --without-systemd
 * or no libsystemd-dev): nothing to tell, nothing scheduled. */
#include "sdnotify.h"

roost_sdnotify *roost_sdnotify_new(struct event_base *base, roost_broker *b, const roost_log *log,
                                   roost_clock clock)
{
	(void)base;
	(void)b;
	(void)log;
	(void)clock;
	return NULL;
}

void roost_sdnotify_ready(roost_sdnotify *n)
{
	(void)n;
}

void roost_sdnotify_stopping(roost_sdnotify *n)
{
	(void)n;
}

void roost_sdnotify_free(roost_sdnotify *n)
{
	(void)n;
}
