/*
 * Unit tests for log.c: a message with bytes from outside (control
 * characters, a newline, bytes that are not UTF-8) comes out on one line,
 * escaped, in text and JSON; valid UTF-8 passes unchanged; a rate-limited
 * call site writes at most GW_LOG_RL_PER_S lines a second and then says how
 * many it left out. stderr is captured in a temporary file.
 */
#include "log.h"
#include "check.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static FILE *cap;
static int saved_fd;

static void capture_start(void)
{
	cap = tmpfile();
	CHECK(cap != NULL);
	fflush(stderr);
	saved_fd = dup(STDERR_FILENO);
	dup2(fileno(cap), STDERR_FILENO);
}

/* the captured text (malloc'd); stderr goes back to what it was */
static char *capture_end(void)
{
	long n;
	char *text;

	fflush(stderr);
	dup2(saved_fd, STDERR_FILENO);
	close(saved_fd);
	n = ftell(cap);
	text = calloc(1, (size_t)n + 1);
	rewind(cap);
	if (n > 0 && fread(text, 1, (size_t)n, cap) != (size_t)n)
		text[0] = '\0';
	fclose(cap);
	return text;
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void test_escaping(void)
{
	char *out;

	log_init(GW_LOG_INFO, 0);
	capture_start();
	gw_log(GW_LOG_WARN, "key %s end", "a\nFORGED\r\x07\x7f\xff\xfe back\\slash \xc3\xa9t\xc3\xa9");
	out = capture_end();
	CHECK_EQ_INT(count_lines(out), 1);
	CHECK(strstr(out, "key a\\x0aFORGED\\x0d\\x07\\x7f\\xff\\xfe back\\\\slash \xc3\xa9t\xc3\xa9 end\n") != NULL);
	free(out);

	/* overlong and surrogate encodings are not UTF-8 */
	capture_start();
	gw_log(GW_LOG_WARN, "%s", "\xc0\xaf \xed\xa0\x80");
	out = capture_end();
	CHECK(strstr(out, "\\xc0\\xaf \\xed\\xa0\\x80\n") != NULL);
	free(out);

	/* JSON: one object per line, the bytes escaped inside the string */
	log_init(GW_LOG_INFO, 1);
	capture_start();
	gw_log(GW_LOG_WARN, "key %s", "a\n\"}{\"level\":\"error\xff");
	out = capture_end();
	CHECK_EQ_INT(count_lines(out), 1);
	{
		json_error_t je;
		json_t *o = json_loads(out, 0, &je);
		CHECK(o != NULL);
		CHECK_EQ_STR(json_string_value(json_object_get(o, "level")), "warn");
		CHECK_EQ_STR(json_string_value(json_object_get(o, "msg")),
			     "key a\\x0a\"}{\"level\":\"error\\xff");
		json_decref(o);
	}
	free(out);
	log_init(GW_LOG_INFO, 0);
}

static void rate_limited(int i)
{
	GW_WARN_RL("%s: refusal %d", __func__, i);
}

static void test_rate_limit(void)
{
	char *out;
	int lines;

	capture_start();
	for (int i = 0; i < 100; i++)
		rate_limited(i);
	out = capture_end();
	lines = count_lines(out);
	/* one second, or two if the loop straddled a second's turn */
	CHECK(lines >= GW_LOG_RL_PER_S && lines <= 2 * GW_LOG_RL_PER_S + 1);
	CHECK(strstr(out, "refusal 0\n") != NULL);
	free(out);

	/* in a later second: the count of what was left out, then the line */
	sleep(1);
	capture_start();
	rate_limited(100);
	out = capture_end();
	CHECK_EQ_INT(count_lines(out), 2);
	CHECK(strstr(out, "more lines like the next were left out in the last second") != NULL);
	CHECK(strstr(out, "refusal 100\n") != NULL);
	free(out);
}

int main(void)
{
	test_escaping();
	test_rate_limit();
	return check_report();
}
