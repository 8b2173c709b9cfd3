/*
 * fuzz_passwd.c — libFuzzer target for the password-file loader and editor.
 *
 * Zero setup: each input is a whole password file. Besides the sanitizers'
 * own checks it asserts, aborting on any violation:
 *   - the loader's contract: success means a db and no errors; failure means
 *     no db and at least one error, each with a line inside the input;
 *   - roost_auth_edit() keeps a good file good: adding user "fuzz" with a
 *     known hash gives a file that loads, has that user and verifies its
 *     password; deleting the user again gives a file that loads with the
 *     original number of users.
 * Passwords of users from the input are never checked: an input may ask for
 * ten million PBKDF2 iterations, which measures OpenSSL, not us. The added
 * user's hash uses one iteration, so its check is cheap.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "roost/alloc.h"
#include "roost/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* roost_auth_hash_new("pw", 2, 1, ...) */
static const char FUZZ_HASH[] =
	"$7$1$jq8LhHC08NwIx8ch$kRTq1za17Eof1T7WDc9GoymawDlPOVBrMaRVapFGlTwWvh932MCPUPjII/kiqcbiHZT3HX93Lzu9tqQ5WHkCpg==";

static size_t count_lines(const char *s, size_t n)
{
	size_t lines = n > 0 && s[n - 1] != '\n';
	for (size_t i = 0; i < n; i++)
		lines += s[i] == '\n';
	return lines;
}

static roost_auth_db *load(const char *text, size_t len, roost_err *err)
{
	static FILE *devnull;
	roost_auth_db *db = NULL;
	roost_config_errors errs;

	if (!devnull)
		devnull = fopen("/dev/null", "w");
	*err = roost_auth_load_string("fuzz", text, len, &db, &errs);
	if (*err == ROOST_OK) {
		if (!db || errs.count != 0)
			abort();
	} else {
		if (db || (*err == ROOST_ERR_CONFIG && errs.count == 0))
			abort();
		for (size_t i = 0; i < errs.count; i++)
			if (errs.items[i].line < 1 || (size_t)errs.items[i].line > count_lines(text, len))
				abort();
		if (devnull)
			roost_config_errors_print(&errs, devnull);
	}
	roost_config_errors_cleanup(&errs);
	return db;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	roost_err err;
	roost_auth_db *db = load(text, size, &err);

	if (!db)
		return 0;
	size_t before = roost_auth_count(db);
	roost_auth_free(db);

	char *added = NULL, *removed = NULL;
	size_t added_len, removed_len;
	if (roost_auth_edit(text, size, "fuzz", FUZZ_HASH, &added, &added_len) != ROOST_OK)
		abort();
	db = load(added, added_len, &err);
	if (!db || roost_auth_count(db) < before || roost_auth_count(db) > before + 1 ||
	    !roost_auth_check(db, "fuzz", "pw", 2) || roost_auth_check(db, "fuzz", "pX", 2))
		abort();
	size_t with = roost_auth_count(db);
	roost_auth_free(db);

	if (roost_auth_edit(added, added_len, "fuzz", NULL, &removed, &removed_len) != ROOST_OK)
		abort();
	db = load(removed, removed_len, &err);
	if (!db || roost_auth_count(db) != with - 1)
		abort();
	roost_auth_free(db);
	roost_free(added);
	roost_free(removed);
	return 0;
}
