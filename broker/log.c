/* log.c — the log sink: formatting, escaping, rate limits, stderr/journal. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "roost/log.h"

/* A formatted message is cut at this many bytes; escaping may grow it 4x. */
#define LINE_MAX_BYTES 1024

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

void roost_log_journal(void *ctx, roost_log_level level, const char *line)
{
	(void)ctx;
	/* syslog(3) priorities: LOG_ERR 3 .. LOG_DEBUG 7, in our level order. */
	int prio = (unsigned)level <= ROOST_LOG_DEBUG ? 3 + (int)level : 6;
	fprintf(stderr, "<%d>%s %s\n", prio, roost_log_level_name(level), line);
}

bool roost_log_stderr_is_journal(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	int used = 0;
	if (!env || sscanf(env, "%llu:%llu%n", &dev, &ino, &used) != 2 || env[used] != '\0')
		return false;
	struct stat st;
	if (fstat(STDERR_FILENO, &st) != 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

char *roost_log_escape(char *dst, size_t cap, const char *src)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)src; *p && o + 1 < cap; p++) {
		if (*p >= 0x20 && *p != 0x7f) {
			dst[o++] = (char)*p;
			continue;
		}
		if (o + 4 >= cap)
			break; /* never cut an escape in half */
		dst[o++] = '\\';
		dst[o++] = 'x';
		dst[o++] = hex[*p >> 4];
		dst[o++] = hex[*p & 0xf];
	}
	if (cap)
		dst[o] = '\0';
	return dst;
}

/* The one way out of this file: escape, then hand to the sink. */
static void emit(const roost_log *log, roost_log_level level, const char *line)
{
	char safe[4 * LINE_MAX_BYTES + 1];
	log->write(log->ctx, level, roost_log_escape(safe, sizeof safe, line));
}

static bool enabled(const roost_log *log, roost_log_level level)
{
	return log && log->write && level <= log->level;
}

void roost_log_msg(const roost_log *log, roost_log_level level, const char *fmt, ...)
{
	if (!enabled(log, level))
		return;
	char line[LINE_MAX_BYTES];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	emit(log, level, line);
}

void roost_log_limited(const roost_log *log, roost_log_ratelimit *rl, uint64_t now_ms,
                       roost_log_level level, const char *fmt, ...)
{
	if (!enabled(log, level))
		return;
	if (now_ms < rl->next_ms) {
		rl->suppressed++;
		return;
	}
	rl->next_ms = now_ms + rl->interval_ms;
	char line[LINE_MAX_BYTES];
	va_list ap;
	va_start(ap, fmt);
	/* Room is kept for the count, so a long message never loses it. */
	vsnprintf(line, sizeof line - 48, fmt, ap);
	va_end(ap);
	if (rl->suppressed) {
		size_t n = strlen(line);
		snprintf(line + n, sizeof line - n, " (%" PRIu64 " more like this)", rl->suppressed);
	}
	rl->suppressed = 0;
	emit(log, level, line);
}
