/* log.c — the log sink. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "roost/log.h"

static const char *const level_names[] = {"error", "warning", "notice", "info", "debug"};

int roost_log_level_parse(const char *s)
{
	for (int i = 0; i < (int)(sizeof level_names / sizeof level_names[0]); i++)
		if (strcmp(s, level_names[i]) == 0)
			return i;
	if (strcmp(s, "warn") == 0)
		return ROOST_LOG_WARNING;
	return -1;
}

const char *roost_log_level_name(roost_log_level level)
{
	return (unsigned)level < sizeof level_names / sizeof level_names[0] ? level_names[level] : "?";
}

void roost_log_stderr(void *ctx, roost_log_level level, const char *line)
{
	(void)ctx;
	struct timespec ts;
	struct tm tm;
	char stamp[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	/* One fprintf per line so concurrent writers never interleave a line. */
	fprintf(stderr, "%s.%03ldZ %s %s\n", stamp, ts.tv_nsec / 1000000L,
	        roost_log_level_name(level), line);
}

void roost_log_msg(const roost_log *log, roost_log_level level, const char *fmt, ...)
{
	if (!log || !log->write || level > log->level)
		return;
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	log->write(log->ctx, level, line);
}
