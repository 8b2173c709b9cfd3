/* loader.c — shared by the password-file and ACL-file loaders (loader.h). */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "loader.h"

void loader_error(load_state *st, int line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (st->fatal)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (roost_config_errors_add(st->errs, st->name, line, msg) != 0)
		st->fatal = ROOST_ERR_NOMEM;
}

const char *loader_quote(char *buf, size_t size, const char *s, size_t n)
{
	size_t o = 0;

	assert(size >= LOADER_QUOTE_BUF);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (i >= LOADER_QUOTE_MAX) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (c < 0x20 || c >= 0x7f)
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
		else
			buf[o++] = (char)c;
	}
	buf[o] = '\0';
	return buf;
}

roost_err loader_read_all(const char *path, char **text, size_t *len, int *e)
{
	*e = 0;
	if (roost_config_read_file(path, LOADER_MAX_FILE, text, len) == 0)
		return ROOST_OK;
	*e = errno;
	return *e == ENOMEM ? ROOST_ERR_NOMEM : ROOST_ERR_IO;
}
