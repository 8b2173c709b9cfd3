/*
 * log.h — the log sink every module writes through.
 *
 * main() builds one roost_log (level threshold + write callback) and hands a
 * pointer to every module that logs. The codec never logs. The default sink
 * writes "<ts> <level> <message>\n" to stderr, which journald keeps as is.
 */
#ifndef ROOST_LOG_H
#define ROOST_LOG_H

#include <stdarg.h>

typedef enum roost_log_level {
	ROOST_LOG_ERROR = 0,
	ROOST_LOG_WARNING,
	ROOST_LOG_NOTICE,
	ROOST_LOG_INFO,
	ROOST_LOG_DEBUG,
} roost_log_level;

typedef struct roost_log {
	roost_log_level level;
	/* Receives a formatted line without trailing newline. */
	void (*write)(void *ctx, roost_log_level level, const char *line);
	void *ctx;
} roost_log;

/* Parse "error|warning|notice|info|debug"; returns -1 when unknown. */
int roost_log_level_parse(const char *s);
const char *roost_log_level_name(roost_log_level level);

/* The default sink: timestamped lines on stderr (ctx unused). */
void roost_log_stderr(void *ctx, roost_log_level level, const char *line);

void roost_log_msg(const roost_log *log, roost_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define roost_log_error(l, ...) roost_log_msg((l), ROOST_LOG_ERROR, __VA_ARGS__)
#define roost_log_warn(l, ...) roost_log_msg((l), ROOST_LOG_WARNING, __VA_ARGS__)
#define roost_log_notice(l, ...) roost_log_msg((l), ROOST_LOG_NOTICE, __VA_ARGS__)
#define roost_log_info(l, ...) roost_log_msg((l), ROOST_LOG_INFO, __VA_ARGS__)
#define roost_log_debug(l, ...) roost_log_msg((l), ROOST_LOG_DEBUG, __VA_ARGS__)

#endif
