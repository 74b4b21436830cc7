/*
 * Unit tests for reqparse.c: cookie values, bearer credentials (an empty
 * "Bearer " is no token), the static-file path guard, key paths of the
 * legacy socket and the status page, the read API's routes, and unsigned
 * query values. Each output buffer is sized exactly, so a write one byte too
 * far shows up under the sanitizer build. Exit status 0 = pass.
 */
#include "reqparse.h"
#include "check.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* reqparse_cookie into a heap buffer of exactly len bytes; the value or NULL */
static char cookie_buf[256];
static const char *cookie(const char *hdr, const char *name, size_t len)
{
	char *out = malloc(len);
	const char *r = NULL;

	if (out && !reqparse_cookie(hdr, name, out, len)) {
		snprintf(cookie_buf, sizeof(cookie_buf), "%s", out);
		r = cookie_buf;
	}
	free(out);
	return r;
}

static void test_cookie(void)
{
	CHECK_EQ_STR(cookie("token=abc", "token", 64), "abc");
	CHECK_EQ_STR(cookie("a=1; token=abc; b=2", "token", 64), "abc");
	CHECK_EQ_STR(cookie("a=1;token=abc", "token", 64), "abc");
	CHECK_EQ_STR(cookie(" \ttoken \t= \tabc \t; b=2", "token", 64), "abc");
	CHECK_EQ_STR(cookie("token=\"abc\"", "token", 64), "abc");
	CHECK_EQ_STR(cookie("token=\"\"", "token", 64), "");
	CHECK_EQ_STR(cookie("token=\"", "token", 64), "\"");   /* one quote is kept */
	CHECK_EQ_STR(cookie("token=", "token", 64), "");
	CHECK_EQ_STR(cookie("token=a=b", "token", 64), "a=b");
	/* the first cookie of that name wins */
	CHECK_EQ_STR(cookie("token=one; token=two", "token", 64), "one");
	/* names are whole */
	CHECK_EQ_STR(cookie("xtoken=abc", "token", 64), NULL);
	CHECK_EQ_STR(cookie("tokenx=abc", "token", 64), NULL);
	CHECK_EQ_STR(cookie("xtoken=abc; token=def", "token", 64), "def");
	CHECK_EQ_STR(cookie("Token=abc", "token", 64), NULL);
	CHECK_EQ_STR(cookie("token", "token", 64), NULL);
	CHECK_EQ_STR(cookie("", "token", 64), NULL);
	CHECK_EQ_STR(cookie(";;;", "token", 64), NULL);
	CHECK_EQ_STR(cookie("a=1;", "token", 64), NULL);
	/* the value must fit with its NUL: 3 bytes need 4 */
	CHECK_EQ_STR(cookie("token=abc", "token", 4), "abc");
	CHECK_EQ_STR(cookie("token=abc", "token", 3), NULL);
	CHECK_EQ_STR(cookie("token=", "token", 1), "");
}

static char bearer_buf[256];
static const char *bearer(const char *hdr, size_t len)
{
	char *out = malloc(len);
	const char *r = NULL;

	if (out && !reqparse_bearer(hdr, out, len)) {
		snprintf(bearer_buf, sizeof(bearer_buf), "%s", out);
		r = bearer_buf;
	}
	free(out);
	return r;
}

static void test_bearer(void)
{
	CHECK_EQ_STR(bearer("Bearer abc", 64), "abc");
	CHECK_EQ_STR(bearer("bearer abc", 64), "abc");
	CHECK_EQ_STR(bearer("BEARER abc", 64), "abc");
	CHECK_EQ_STR(bearer("Bearer \t abc \t", 64), "abc");
	CHECK_EQ_STR(bearer("Bearer\tabc", 64), "abc");
	CHECK_EQ_STR(bearer("Bearer a b", 64), "a b");
	/* an empty bearer hides nothing: the caller goes on to the cookie */
	CHECK_EQ_STR(bearer("Bearer ", 64), NULL);
	CHECK_EQ_STR(bearer("Bearer    ", 64), NULL);
	CHECK_EQ_STR(bearer("Bearer \t ", 64), NULL);
	CHECK_EQ_STR(bearer("Bearer", 64), NULL);
	/* other schemes and near misses */
	CHECK_EQ_STR(bearer("Basic YWxhZGRpbjpvcGVuc2VzYW1l", 64), NULL);
	CHECK_EQ_STR(bearer("Bearerabc", 64), NULL);
	CHECK_EQ_STR(bearer("Beare abc", 64), NULL);
	CHECK_EQ_STR(bearer(" Bearer abc", 64), NULL);
	CHECK_EQ_STR(bearer("", 64), NULL);
	CHECK_EQ_STR(bearer("B", 64), NULL);
	/* must fit with its NUL */
	CHECK_EQ_STR(bearer("Bearer abc", 4), "abc");
	CHECK_EQ_STR(bearer("Bearer abc", 3), NULL);
	CHECK_EQ_STR(bearer("Bearer abc  ", 4), "abc");
}

static void test_safe_rel_path(void)
{
	static const char *const good[] = {
		"index.html", "submission.html", "js/app.js", "a/b/c.css",
		"x", "a-b_c.d", "a.b.c", "/index.html", "dir/",
	};
	static const char *const bad[] = {
		"", ".", "..", "../etc/passwd", "a/../b", "a/..", "..a",
		".hidden", "a/.hidden", "a//b", "//x", "a\\b", "a b", "a%2e%2e",
		"a?b", "a\x01", "caf\xc3\xa9", "a/b/.", "~root",
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		CHECK(reqparse_safe_rel_path(good[i]) == 1);
		if (reqparse_safe_rel_path(good[i]) != 1)
			fprintf(stderr, "  \"%s\" refused\n", good[i]);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(reqparse_safe_rel_path(bad[i]) == 0);
		if (reqparse_safe_rel_path(bad[i]) != 0)
			fprintf(stderr, "  \"%s\" accepted\n", bad[i]);
	}
}

static void test_key_path(void)
{
	char key[GW_KEY_MAX + 1];
	char path[128];
	const char *ws = "/ws/submissions/";

	CHECK_EQ_INT(reqparse_key_path("/ws/submissions/42", ws, key), 0);
	CHECK_EQ_STR(key, "42");
	CHECK_EQ_INT(reqparse_key_path("/ws/submissions/a.b-c_D/", ws, key), 0);
	CHECK_EQ_STR(key, "a.b-c_D");
	CHECK_EQ_INT(reqparse_key_path("/submissions/42/", "/submissions/", key), 0);
	CHECK_EQ_STR(key, "42");
	CHECK_EQ_INT(reqparse_key_path("/ws/submissions/", ws, key), -1);
	CHECK_EQ_INT(reqparse_key_path("/ws/submissions//", ws, key), -1);
	CHECK_EQ_INT(reqparse_key_path("/ws/submissions/42//", ws, key), -1);
	CHECK_EQ_INT(reqparse_key_path("/ws/submissions/42/x", ws, key), -1);
	CHECK_EQ_INT(reqparse_key_path("/ws/submissions/../", ws, key), -1);
	CHECK_EQ_INT(reqparse_key_path("/ws/submissions/.", ws, key), -1);
	CHECK_EQ_INT(reqparse_key_path("/ws/submissions/a b", ws, key), -1);
	CHECK_EQ_INT(reqparse_key_path("/ws/submission/42", ws, key), -1);
	CHECK_EQ_INT(reqparse_key_path("/ws", ws, key), -1);
	CHECK_EQ_INT(reqparse_key_path("", ws, key), -1);
	/* the longest key fits the buffer exactly; one more byte is refused */
	snprintf(path, sizeof(path), "%s%0*d/", ws, GW_KEY_MAX, 7);
	CHECK_EQ_INT(reqparse_key_path(path, ws, key), 0);
	CHECK_EQ_INT(strlen(key), GW_KEY_MAX);
	snprintf(path, sizeof(path), "%s%0*d", ws, GW_KEY_MAX + 1, 7);
	CHECK_EQ_INT(reqparse_key_path(path, ws, key), -1);
}

static void test_api_path(void)
{
	char key[GW_KEY_MAX + 1];

	CHECK_EQ_INT(reqparse_api_path("/api/v1/submissions", key), REQ_API_LIST);
	CHECK_EQ_STR(key, "");
	CHECK_EQ_INT(reqparse_api_path("/api/v1/submissions/", key), REQ_API_LIST);
	CHECK_EQ_INT(reqparse_api_path("/api/v1/submissions/42", key), REQ_API_STATE);
	CHECK_EQ_STR(key, "42");
	CHECK_EQ_INT(reqparse_api_path("/api/v1/submissions/42/", key), REQ_API_STATE);
	CHECK_EQ_STR(key, "42");
	CHECK_EQ_INT(reqparse_api_path("/api/v1/submissions/x.y/events", key), REQ_API_EVENTS);
	CHECK_EQ_STR(key, "x.y");
	CHECK_EQ_INT(reqparse_api_path("/api/v1/submissions/42/events/", key), REQ_API_UNKNOWN);
	CHECK_EQ_INT(reqparse_api_path("/api/v1/submissions/42/x", key), REQ_API_UNKNOWN);
	CHECK_EQ_STR(key, "42");
	CHECK_EQ_INT(reqparse_api_path("/api/v1/submissions/42//", key), REQ_API_UNKNOWN);
	CHECK_EQ_INT(reqparse_api_path("/api/v1/submissions//", key), REQ_API_BADKEY);
	CHECK_EQ_STR(key, "");
	CHECK_EQ_INT(reqparse_api_path("/api/v1/submissions/..", key), REQ_API_BADKEY);
	CHECK_EQ_INT(reqparse_api_path("/api/v1/submissions/a%20b", key), REQ_API_BADKEY);
	CHECK_EQ_INT(reqparse_api_path("/api/v1/submissionsX", key), REQ_API_NONE);
	CHECK_EQ_INT(reqparse_api_path("/api/v1/submission", key), REQ_API_NONE);
	CHECK_EQ_INT(reqparse_api_path("/api/v1/publish", key), REQ_API_NONE);
	CHECK_EQ_INT(reqparse_api_path("", key), REQ_API_NONE);
}

static void test_uint(void)
{
	uint64_t v = 7;

	CHECK_EQ_INT(reqparse_uint("0", &v), 0);
	CHECK_EQ_INT(v, 0);
	CHECK_EQ_INT(reqparse_uint("00017", &v), 0);
	CHECK_EQ_INT(v, 17);
	CHECK_EQ_INT(reqparse_uint("18446744073709551615", &v), 0);
	CHECK(v == UINT64_MAX);
	CHECK_EQ_INT(reqparse_uint("18446744073709551614", &v), 0);
	CHECK(v == UINT64_MAX - 1);
	v = 7;
	/* beyond UINT64_MAX: refused, not wrapped or saturated */
	CHECK_EQ_INT(reqparse_uint("18446744073709551616", &v), -1);
	CHECK_EQ_INT(reqparse_uint("18446744073709551620", &v), -1);
	CHECK_EQ_INT(reqparse_uint("99999999999999999999999999", &v), -1);
	CHECK_EQ_INT(reqparse_uint("000000000000000000000000001", &v), 0);
	CHECK_EQ_INT(v, 1);
	v = 7;
	CHECK_EQ_INT(reqparse_uint("", &v), -1);
	CHECK_EQ_INT(reqparse_uint("-1", &v), -1);
	CHECK_EQ_INT(reqparse_uint("+1", &v), -1);
	CHECK_EQ_INT(reqparse_uint(" 1", &v), -1);
	CHECK_EQ_INT(reqparse_uint("1 ", &v), -1);
	CHECK_EQ_INT(reqparse_uint("1x", &v), -1);
	CHECK_EQ_INT(reqparse_uint("0x10", &v), -1);
	CHECK_EQ_INT(v, 7);              /* untouched on failure */
}

int main(void)
{
	test_cookie();
	test_bearer();
	test_safe_rel_path();
	test_key_path();
	test_api_path();
	test_uint();
	return check_report();
}
