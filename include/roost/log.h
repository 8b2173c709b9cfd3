/*
 * log.h — the log sink every module writes through.
 *
 * main() builds one roost_log (level threshold + write callback) and hands a
 * pointer to every module that logs. The codec never logs. The default sink
 * writes "<ts> <level> <message>\n" to stderr; when stderr is the systemd
 * journal main() picks roost_log_journal instead, which writes sd-daemon
 * priority prefixes ("<3>error ...") so `journalctl -p err` works.
 *
 * Every line passes through roost_log_msg (or roost_log_limited), which
 * escapes control bytes (< 0x20 and 0x7f) as \xNN in the formatted message:
 * client ids, user names and topics come from the network, and a newline in
 * one must not forge a second log line. Sinks receive escaped text only.
 */
#ifndef ROOST_LOG_H
#define ROOST_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum roost_log_level {
	ROOST_LOG_ERROR = 0,
	ROOST_LOG_WARNING,
	ROOST_LOG_NOTICE,
	ROOST_LOG_INFO,
	ROOST_LOG_DEBUG,
} roost_log_level;

typedef struct roost_log {
	roost_log_level level;
	/* Receives a formatted, escaped line without trailing newline. */
	void (*write)(void *ctx, roost_log_level level, const char *line);
	void *ctx;
} roost_log;

/* Parse "error|warning|notice|info|debug"; returns -1 when unknown. */
int roost_log_level_parse(const char *s);
const char *roost_log_level_name(roost_log_level level);

/* The default sink: timestamped lines on stderr (ctx unused). */
void roost_log_stderr(void *ctx, roost_log_level level, const char *line);

/* The journal sink: "<N>level message" on stderr, N the syslog priority
 * (error 3, warning 4, notice 5, info 6, debug 7); journald stamps the time. */
void roost_log_journal(void *ctx, roost_log_level level, const char *line);

/* True when stderr is the journal's stream: $JOURNAL_STREAM ("DEV:INODE", set
 * by systemd) names stderr's device and inode (see systemd.exec(5)). */
bool roost_log_stderr_is_journal(void);

/* Escape src into dst (cap bytes, always NUL-terminated): each byte < 0x20
 * or 0x7f becomes \xNN, everything else is copied. Returns dst. */
char *roost_log_escape(char *dst, size_t cap, const char *src);

void roost_log_msg(const roost_log *log, roost_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define roost_log_error(l, ...) roost_log_msg((l), ROOST_LOG_ERROR, __VA_ARGS__)
#define roost_log_warn(l, ...) roost_log_msg((l), ROOST_LOG_WARNING, __VA_ARGS__)
#define roost_log_notice(l, ...) roost_log_msg((l), ROOST_LOG_NOTICE, __VA_ARGS__)
#define roost_log_info(l, ...) roost_log_msg((l), ROOST_LOG_INFO, __VA_ARGS__)
#define roost_log_debug(l, ...) roost_log_msg((l), ROOST_LOG_DEBUG, __VA_ARGS__)

/*
 * A rate limit for one cause of repeated lines (accept failures, refused
 * connections, ...). The caller keeps one per cause, zero-initialised but for
 * interval_ms (ROOST_LOG_RATELIMIT(seconds)). roost_log_limited writes at
 * most one line per interval; the lines dropped meanwhile are counted and the
 * next line written ends with " (N more like this)". No timer: a count still
 * pending when the cause stops is told with its next occurrence.
 */
typedef struct roost_log_ratelimit {
	uint64_t interval_ms; /* at most one line per interval */
	uint64_t next_ms;     /* clock time from which the next line may be written */
	uint64_t suppressed;  /* lines dropped since the last one written */
} roost_log_ratelimit;

#define ROOST_LOG_RATELIMIT(seconds) {.interval_ms = (uint64_t)(seconds) * 1000u}

/* Like roost_log_msg, limited by rl; now_ms from the caller's roost_clock. */
void roost_log_limited(const roost_log *log, roost_log_ratelimit *rl, uint64_t now_ms,
                       roost_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

#endif
