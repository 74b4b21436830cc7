/*
 * libFuzzer target: the request parsers of reqparse.c, each fed the same
 * input as one NUL-terminated string (lws hands headers and the URI over
 * that way): the legacy socket's, the event stream's and the status page's
 * key paths, the read
 * API's routes, the static-file path guard, the Cookie and Authorization
 * headers, and the numeric query values (since=, limit=).
 *
 * Input: byte 0 sets the size of the output buffer for the cookie and the
 * bearer token (1 to 256 bytes, allocated exactly, so a write past it is an
 * ASan report); the rest is the string.
 *
 * Invariants: a key taken from a path is valid and the path is exactly
 * prefix + key (+ "/"); a path the file server may open cannot climb out of
 * the web directory or name a hidden file; a cookie or bearer value is a
 * piece of the header that fits its buffer; a number is what strtoull
 * reads from the same digits, and one it cannot hold is refused.
 */
#include <errno.h>
#include <strings.h>

#include "fuzz.h"
#include "reqparse.h"

static int key_ok(const char *key)
{
	return proto_key_valid(key, strlen(key));
}

/* path is prefix + key, optionally followed by one '/' */
static int is_key_path(const char *path, const char *prefix, const char *key)
{
	size_t pl = strlen(prefix), kl = strlen(key);

	return !strncmp(path, prefix, pl) && !strncmp(path + pl, key, kl) &&
	       (!path[pl + kl] || !strcmp(path + pl + kl, "/"));
}

static void key_paths(const char *s)
{
	static const char *const prefixes[] = {
		"/ws/submissions/", "/submissions/", "/sse/submissions/"
	};
	char key[GW_KEY_MAX + 1];

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		if (reqparse_key_path(s, prefixes[i], key))
			continue;
		FUZZ_CHECK(key_ok(key));
		FUZZ_CHECK(is_key_path(s, prefixes[i], key));
	}
}

static void api_path(const char *s)
{
	static const char base[] = "/api/v1/submissions";
	char key[GW_KEY_MAX + 1], want[GW_KEY_MAX + 64];
	size_t bl = sizeof(base) - 1, wl;
	int r = reqparse_api_path(s, key);
	int under = !strncmp(s, base, bl) && (s[bl] == '\0' || s[bl] == '/');

	FUZZ_CHECK(r >= REQ_API_NONE && r <= REQ_API_UNKNOWN);
	FUZZ_CHECK((r != REQ_API_NONE) == under);
	switch (r) {
	case REQ_API_LIST:
		FUZZ_CHECK(!strcmp(s, base) || !strcmp(s, "/api/v1/submissions/"));
		FUZZ_CHECK(key[0] == '\0');
		break;
	case REQ_API_STATE:
		FUZZ_CHECK(key_ok(key));
		FUZZ_CHECK(is_key_path(s, "/api/v1/submissions/", key));
		break;
	case REQ_API_EVENTS:
		FUZZ_CHECK(key_ok(key));
		snprintf(want, sizeof(want), "%s/%s/events", base, key);
		FUZZ_CHECK(!strcmp(s, want));
		break;
	case REQ_API_UNKNOWN:
		FUZZ_CHECK(key_ok(key));
		snprintf(want, sizeof(want), "%s/%s/", base, key);
		wl = strlen(want);
		FUZZ_CHECK(!strncmp(s, want, wl));
		FUZZ_CHECK(s[wl] != '\0' && strcmp(s + wl, "events"));
		break;
	default:
		FUZZ_CHECK(key[0] == '\0');
		break;
	}
}

static void safe_path(const char *s)
{
	if (!reqparse_safe_rel_path(s))
		return;
	FUZZ_CHECK(s[0] != '\0' && s[0] != '.');
	FUZZ_CHECK(!strstr(s, "..") && !strstr(s, "//") && !strstr(s, "/."));
	for (const char *p = s; *p; p++)
		FUZZ_CHECK(strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				  "0123456789._-/", *p) != NULL);
}

static void cookie(const char *s, size_t len)
{
	static const char *const names[] = { "token", "a" };
	char *out = malloc(len);

	FUZZ_CHECK(out != NULL);
	for (size_t i = 0; i < 2; i++) {
		if (reqparse_cookie(s, names[i], out, len))
			continue;
		FUZZ_CHECK(strlen(out) < len);
		FUZZ_CHECK(strstr(s, out) != NULL);
		FUZZ_CHECK(!strchr(out, ';'));
	}
	free(out);
}

static void bearer(const char *s, size_t len)
{
	char *out = malloc(len);
	size_t n;

	FUZZ_CHECK(out != NULL);
	if (!reqparse_bearer(s, out, len)) {
		n = strlen(out);
		FUZZ_CHECK(n >= 1 && n < len);
		FUZZ_CHECK(!strncasecmp(s, "bearer", 6) && (s[6] == ' ' || s[6] == '\t'));
		FUZZ_CHECK(out[0] != ' ' && out[0] != '\t');
		FUZZ_CHECK(out[n - 1] != ' ' && out[n - 1] != '\t');
		FUZZ_CHECK(strstr(s + 6, out) != NULL);
	}
	free(out);
}

/* strict decimal: exactly what strtoull reads from all-digit text that
 * does not overflow */
static void number(const char *s)
{
	uint64_t v = 12345;
	size_t n = strlen(s);
	int digits = n > 0 && strspn(s, "0123456789") == n;
	unsigned long long ref;

	errno = 0;
	ref = strtoull(s, NULL, 10);
	if (reqparse_uint(s, &v)) {
		FUZZ_CHECK(v == 12345);
		FUZZ_CHECK(!digits || errno == ERANGE);
		return;
	}
	FUZZ_CHECK(digits && errno == 0 && v == ref);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t len;
	char *s;

	if (size < 1)
		return 0;
	len = 1 + (size_t)data[0];
	s = fuzz_cstr(data + 1, size - 1);
	key_paths(s);
	api_path(s);
	safe_path(s);
	cookie(s, len);
	bearer(s, len);
	number(s);
	free(s);
	return 0;
}
