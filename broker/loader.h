/*
 * loader.h — what the password-file and ACL-file loaders share: collecting
 * "file:line: message" errors into a roost_config_errors list (the shape the
 * configuration uses, so one printer reports all three), quoting untrusted
 * bytes in a message, and reading a whole file.
 */
#ifndef ROOST_LOADER_H
#define ROOST_LOADER_H

#include <stddef.h>

#include "roost/config.h"
#include "roost/error.h"

/* Untrusted text in a message is cut after this many bytes. */
#define LOADER_QUOTE_MAX 64
/* Room for a quoted text: every byte may become "\xNN", plus "..." and NUL. */
#define LOADER_QUOTE_BUF (LOADER_QUOTE_MAX * 4 + 8)
/* A password or ACL file larger than this is refused. */
#define LOADER_MAX_FILE (64u * 1024 * 1024)

typedef struct load_state {
	const char *name;          /* file name in messages */
	roost_config_errors *errs;
	roost_err fatal;           /* ROOST_OK or ROOST_ERR_NOMEM */
} load_state;

/* Append "name:line: message"; after an allocation failure, st->fatal is set
 * and later errors are ignored. */
void loader_error(load_state *st, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Printable, bounded copy of untrusted bytes; buf has LOADER_QUOTE_BUF bytes. */
const char *loader_quote(char *buf, size_t size, const char *s, size_t n);

/* Read a whole file; ROOST_ERR_IO with errno in *e, or ROOST_ERR_NOMEM. */
roost_err loader_read_all(const char *path, char **text, size_t *len, int *e);

#endif
