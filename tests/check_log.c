/* check_log.c — the log sink: control bytes escaped, rate limits, the
 * journal's priority prefixes. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "roost/log.h"

typedef struct capture {
	char lines[8][4200];
	roost_log_level levels[8];
	int n;
} capture;

static void record(void *ctx, roost_log_level level, const char *line)
{
	capture *c = ctx;
	ck_assert_int_lt(c->n, 8);
	snprintf(c->lines[c->n], sizeof c->lines[0], "%s", line);
	c->levels[c->n++] = level;
}

static roost_log capture_log(capture *c, roost_log_level level)
{
	memset(c, 0, sizeof *c);
	return (roost_log){.level = level, .write = record, .ctx = c};
}

START_TEST(test_log_escape_control_bytes)
{
	char out[128];
	ck_assert_str_eq(roost_log_escape(out, sizeof out, "a\nb\rc\td\x1b[31m\x7f\x01z"),
	                 "a\\x0ab\\x0dc\\x09d\\x1b[31m\\x7f\\x01z");
	/* UTF-8 (bytes >= 0x80) and printable ASCII pass unchanged. */
	ck_assert_str_eq(roost_log_escape(out, sizeof out, "K\xc3\xbc" "che/licht \\ ok"),
	                 "K\xc3\xbc" "che/licht \\ ok");
}
END_TEST

START_TEST(test_log_escape_never_cuts_an_escape)
{
	char out[8];
	/* "ab" + "\x0a" is 6 bytes; the next escape would need 4 more. */
	ck_assert_str_eq(roost_log_escape(out, sizeof out, "ab\n\n"), "ab\\x0a");
	ck_assert_str_eq(roost_log_escape(out, 1, "abc"), "");
}
END_TEST

START_TEST(test_log_newline_in_client_id_cannot_forge_a_line)
{
	capture c;
	roost_log log = capture_log(&c, ROOST_LOG_DEBUG);
	const char *id = "evil\n2026-12-01T00:00:00.000Z error forged";
	roost_log_notice(&log, "client %s connected", id);
	ck_assert_int_eq(c.n, 1);
	ck_assert_ptr_null(strchr(c.lines[0], '\n'));
	ck_assert_str_eq(c.lines[0], "client evil\\x0a2026-12-01T00:00:00.000Z error forged connected");
}
END_TEST

START_TEST(test_log_level_threshold)
{
	capture c;
	roost_log log = capture_log(&c, ROOST_LOG_NOTICE);
	roost_log_info(&log, "not shown");
	roost_log_warn(&log, "shown %d", 1);
	ck_assert_int_eq(c.n, 1);
	ck_assert_int_eq(c.levels[0], ROOST_LOG_WARNING);
	ck_assert_str_eq(c.lines[0], "shown 1");
}
END_TEST

START_TEST(test_log_ratelimit_counts_suppressed_lines)
{
	capture c;
	roost_log log = capture_log(&c, ROOST_LOG_DEBUG);
	roost_log_ratelimit rl = ROOST_LOG_RATELIMIT(10);
	uint64_t now = 5000;
	for (int i = 0; i < 5; i++, now += 1000)
		roost_log_limited(&log, &rl, now, ROOST_LOG_WARNING, "accept failed: %s", "EMFILE");
	ck_assert_int_eq(c.n, 1);
	ck_assert_str_eq(c.lines[0], "accept failed: EMFILE");
	roost_log_limited(&log, &rl, 14999, ROOST_LOG_WARNING, "accept failed: %s", "EMFILE");
	ck_assert_int_eq(c.n, 1);
	roost_log_limited(&log, &rl, 15000, ROOST_LOG_WARNING, "accept failed: %s", "EMFILE");
	ck_assert_int_eq(c.n, 2);
	ck_assert_str_eq(c.lines[1], "accept failed: EMFILE (5 more like this)");
	/* Quiet for longer than the interval: the next line comes alone. */
	roost_log_limited(&log, &rl, 40000, ROOST_LOG_WARNING, "accept failed: %s", "EMFILE");
	ck_assert_int_eq(c.n, 3);
	ck_assert_str_eq(c.lines[2], "accept failed: EMFILE");
}
END_TEST

START_TEST(test_log_ratelimit_below_threshold_not_counted)
{
	capture c;
	roost_log log = capture_log(&c, ROOST_LOG_NOTICE);
	roost_log_ratelimit rl = ROOST_LOG_RATELIMIT(1);
	roost_log_limited(&log, &rl, 0, ROOST_LOG_DEBUG, "hidden");
	roost_log_limited(&log, &rl, 0, ROOST_LOG_NOTICE, "first");
	ck_assert_int_eq(c.n, 1);
	ck_assert_str_eq(c.lines[0], "first");
	ck_assert_uint_eq(rl.suppressed, 0);
}
END_TEST

START_TEST(test_log_ratelimit_long_line_keeps_count_and_escapes)
{
	capture c;
	roost_log log = capture_log(&c, ROOST_LOG_DEBUG);
	roost_log_ratelimit rl = ROOST_LOG_RATELIMIT(1);
	char big[3000];
	memset(big, '\n', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	roost_log_limited(&log, &rl, 0, ROOST_LOG_ERROR, "x%s", big);
	roost_log_limited(&log, &rl, 1, ROOST_LOG_ERROR, "x%s", big);
	roost_log_limited(&log, &rl, 1000, ROOST_LOG_ERROR, "x%s", big);
	ck_assert_int_eq(c.n, 2);
	ck_assert_ptr_null(strchr(c.lines[1], '\n'));
	size_t n = strlen(c.lines[1]);
	const char *tail = "\\x0a (1 more like this)";
	ck_assert_uint_gt(n, strlen(tail));
	ck_assert_str_eq(c.lines[1] + n - strlen(tail), tail);
}
END_TEST

/* Point stderr at a temporary file; returns the file to read back. */
static FILE *redirect_stderr(void)
{
	FILE *f = tmpfile();
	ck_assert_ptr_nonnull(f);
	fflush(stderr);
	ck_assert_int_ge(dup2(fileno(f), STDERR_FILENO), 0);
	return f;
}

static void read_back(FILE *f, char *buf, size_t cap)
{
	fflush(stderr);
	rewind(f);
	size_t n = fread(buf, 1, cap - 1, f);
	buf[n] = '\0';
}

START_TEST(test_log_journal_priority_prefixes)
{
	FILE *f = redirect_stderr();
	roost_log log = {.level = ROOST_LOG_DEBUG, .write = roost_log_journal};
	roost_log_error(&log, "e");
	roost_log_warn(&log, "w");
	roost_log_notice(&log, "n");
	roost_log_info(&log, "i");
	roost_log_debug(&log, "d\n<0>forged");
	char buf[512];
	read_back(f, buf, sizeof buf);
	ck_assert_str_eq(buf, "<3>error e\n<4>warning w\n<5>notice n\n<6>info i\n"
	                      "<7>debug d\\x0a<0>forged\n");
	fclose(f);
}
END_TEST

START_TEST(test_log_stderr_format_unchanged)
{
	FILE *f = redirect_stderr();
	roost_log log = {.level = ROOST_LOG_DEBUG, .write = roost_log_stderr};
	roost_log_error(&log, "boom");
	char buf[256];
	read_back(f, buf, sizeof buf);
	/* 2026-12-01T23:45:06.789Z error boom */
	ck_assert_uint_eq(strlen(buf), 25 + strlen("error boom\n"));
	ck_assert_int_eq(buf[10], 'T');
	ck_assert_str_eq(buf + 23, "Z error boom\n");
	fclose(f);
}
END_TEST

START_TEST(test_log_journal_stream_detection)
{
	FILE *f = redirect_stderr();
	struct stat st;
	ck_assert_int_eq(fstat(STDERR_FILENO, &st), 0);
	char env[64];
	unsetenv("JOURNAL_STREAM");
	ck_assert(!roost_log_stderr_is_journal());
	snprintf(env, sizeof env, "%llu:%llu", (unsigned long long)st.st_dev,
	         (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", env, 1);
	ck_assert(roost_log_stderr_is_journal());
	/* Inherited by a child whose stderr went elsewhere: not the journal. */
	snprintf(env, sizeof env, "%llu:%llu", (unsigned long long)st.st_dev,
	         (unsigned long long)st.st_ino + 1);
	setenv("JOURNAL_STREAM", env, 1);
	ck_assert(!roost_log_stderr_is_journal());
	setenv("JOURNAL_STREAM", "12:abc", 1);
	ck_assert(!roost_log_stderr_is_journal());
	snprintf(env, sizeof env, "%llu:%llux", (unsigned long long)st.st_dev,
	         (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", env, 1);
	ck_assert(!roost_log_stderr_is_journal());
	unsetenv("JOURNAL_STREAM");
	fclose(f);
}
END_TEST

Suite *log_suite(void);
Suite *log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *esc = tcase_create("escape");
	tcase_add_test(esc, test_log_escape_control_bytes);
	tcase_add_test(esc, test_log_escape_never_cuts_an_escape);
	tcase_add_test(esc, test_log_newline_in_client_id_cannot_forge_a_line);
	tcase_add_test(esc, test_log_level_threshold);
	suite_add_tcase(s, esc);
	TCase *rate = tcase_create("ratelimit");
	tcase_add_test(rate, test_log_ratelimit_counts_suppressed_lines);
	tcase_add_test(rate, test_log_ratelimit_below_threshold_not_counted);
	tcase_add_test(rate, test_log_ratelimit_long_line_keeps_count_and_escapes);
	suite_add_tcase(s, rate);
	TCase *sink = tcase_create("sinks");
	tcase_add_test(sink, test_log_journal_priority_prefixes);
	tcase_add_test(sink, test_log_stderr_format_unchanged);
	tcase_add_test(sink, test_log_journal_stream_detection);
	suite_add_tcase(s, sink);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(log_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
