/*
 * replay_main.c — run a fuzz target's LLVMFuzzerTestOneInput over files,
 * without libFuzzer. Linked with one tests/fuzz/fuzz_<target>.c into
 * tests/fuzz/replay_<target> (ROOST_FUZZ_TARGET names it), which `make check`
 * runs in every build, so each crash ever found (tests/fuzz/regress/<target>/)
 * and each seed (tests/fuzz/corpus/<target>/) is replayed — under ASan and
 * UBSan in the sanitizer build.
 *
 *   replay_<target> [FILE|DIR]...
 *
 * Each DIR's regular files are run in name order (dot files and README*
 * skipped: a regress directory without a crash yet keeps just its README).
 * With no arguments: $ROOST_SRCDIR/tests/fuzz/regress/<target> and
 * $ROOST_SRCDIR/tests/fuzz/corpus/<target> (ROOST_SRCDIR defaults to "."),
 * both of which must exist. A crash ends the program the way the target
 * makes it (abort, a sanitizer report); the file's name is printed before it
 * runs. Exit 0 after at least one input ran, 1 when nothing could be read.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef ROOST_FUZZ_TARGET
#error "build with -DROOST_FUZZ_TARGET='\"name\"'"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Run one file; -1 if it cannot be read. */
static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "replay_%s: %s: %s\n", ROOST_FUZZ_TARGET, path, strerror(errno));
		return -1;
	}
	size_t cap = 4096, len = 0, n;
	uint8_t *buf = malloc(cap);
	while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
		len += n;
		if (len == cap) {
			uint8_t *bigger = realloc(buf, cap *= 2);
			if (!bigger)
				free(buf);
			buf = bigger;
		}
	}
	int bad = ferror(f) || !buf;
	fclose(f);
	if (bad) {
		fprintf(stderr, "replay_%s: %s: read failed\n", ROOST_FUZZ_TARGET, path);
		free(buf);
		return -1;
	}
	/* An exact-size copy, as libFuzzer gives: ASan sees any over-read. */
	uint8_t *data = malloc(len ? len : 1);
	if (!data) {
		free(buf);
		return -1;
	}
	memcpy(data, buf, len);
	free(buf);
	fprintf(stderr, "replay_%s: %s (%zu bytes)\n", ROOST_FUZZ_TARGET, path, len);
	LLVMFuzzerTestOneInput(data, len);
	free(data);
	return 0;
}

static int wanted(const struct dirent *e)
{
	return e->d_name[0] != '.' && strncmp(e->d_name, "README", 6) != 0;
}

/* Run every file of a directory, or the file itself; count what ran. */
static int run_path(const char *path, unsigned *count)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		fprintf(stderr, "replay_%s: %s: %s\n", ROOST_FUZZ_TARGET, path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		if (run_file(path) != 0)
			return -1;
		++*count;
		return 0;
	}
	struct dirent **names;
	int n = scandir(path, &names, wanted, alphasort);
	if (n < 0) {
		fprintf(stderr, "replay_%s: %s: %s\n", ROOST_FUZZ_TARGET, path, strerror(errno));
		return -1;
	}
	int rc = 0;
	for (int i = 0; i < n; i++) {
		size_t sz = strlen(path) + strlen(names[i]->d_name) + 2;
		char *file = malloc(sz);
		if (!file) {
			rc = -1;
		} else {
			snprintf(file, sz, "%s/%s", path, names[i]->d_name);
			if (stat(file, &st) == 0 && S_ISREG(st.st_mode)) {
				if (run_file(file) == 0)
					++*count;
				else
					rc = -1;
			}
			free(file);
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	unsigned count = 0;
	int rc = 0;
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			rc |= run_path(argv[i], &count);
	} else {
		const char *src = getenv("ROOST_SRCDIR");
		const char *kinds[] = {"regress", "corpus"};
		for (size_t k = 0; k < 2; k++) {
			size_t sz = strlen(src ? src : ".") + strlen(ROOST_FUZZ_TARGET) + 32;
			char *dir = malloc(sz);
			if (!dir)
				return 1;
			snprintf(dir, sz, "%s/tests/fuzz/%s/%s", src ? src : ".", kinds[k],
			         ROOST_FUZZ_TARGET);
			unsigned before = count;
			rc |= run_path(dir, &count);
			printf("replay_%s: %u inputs from %s\n", ROOST_FUZZ_TARGET, count - before, dir);
			free(dir);
		}
	}
	printf("replay_%s: %u inputs replayed, no crash\n", ROOST_FUZZ_TARGET, count);
	return rc != 0 || count == 0;
}
