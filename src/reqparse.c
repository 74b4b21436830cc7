/*
 * Request parsing (see reqparse.h). Every function reads one NUL-terminated
 * string that came from the network and never writes past the caller's
 * buffer: lengths are checked before each copy, and an input that does not
 * fit is refused rather than cut, so a truncated token or key can never be
 * mistaken for a shorter valid one. The functions are fuzzed by
 * tests/fuzz/fuzz_path.c.
 */
#include "reqparse.h"

#include <string.h>

static int blank(int c)
{
	return c == ' ' || c == '\t';
}

int reqparse_cookie(const char *hdr, const char *name, char *out, size_t len)
{
	size_t nl = strlen(name);

	for (const char *p = hdr; *p;) {
		const char *e = strchr(p, ';'), *v;
		size_t n;

		if (!e)
			e = p + strlen(p);
		while (p < e && blank(*p))
			p++;
		v = memchr(p, '=', (size_t)(e - p));
		if (v) {
			const char *ne = v;

			while (ne > p && blank(ne[-1]))
				ne--;
			if ((size_t)(ne - p) == nl && !memcmp(p, name, nl)) {
				v++;
				while (v < e && blank(*v))
					v++;
				n = (size_t)(e - v);
				while (n && blank(v[n - 1]))
					n--;
				if (n >= 2 && v[0] == '"' && v[n - 1] == '"')
					v++, n -= 2;
				if (n >= len)
					return -1;
				memcpy(out, v, n);
				out[n] = '\0';
				return 0;
			}
		}
		if (!*e)
			break;
		p = e + 1;
	}
	return -1;
}

int reqparse_bearer(const char *hdr, char *out, size_t len)
{
	static const char scheme[] = "bearer";
	size_t i, n;

	for (i = 0; i < sizeof(scheme) - 1; i++) {
		int c = (unsigned char)hdr[i];

		if ((c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c) != scheme[i])
			return -1;   /* also stops at the NUL of a short header */
	}
	if (!blank(hdr[i]))
		return -1;       /* "Bearerx", or "Bearer" alone */
	hdr += i;
	while (blank(*hdr))
		hdr++;
	n = strlen(hdr);
	while (n && blank(hdr[n - 1]))
		n--;
	if (!n || n >= len)
		return -1;
	memcpy(out, hdr, n);
	out[n] = '\0';
	return 0;
}

int reqparse_safe_rel_path(const char *p)
{
	if (!*p || strstr(p, "..") || strstr(p, "//") || strstr(p, "/."))
		return 0;
	if (p[0] == '.')
		return 0;
	for (; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-' || *p == '/'))
			return 0;
	return 1;
}

int reqparse_key_path(const char *path, const char *prefix,
		      char key[GW_KEY_MAX + 1])
{
	size_t pl = strlen(prefix), n;

	if (strncmp(path, prefix, pl))
		return -1;
	path += pl;
	n = strcspn(path, "/");
	if (path[n] && strcmp(path + n, "/"))
		return -1;
	if (!proto_key_valid(path, n))
		return -1;
	memcpy(key, path, n);
	key[n] = '\0';
	return 0;
}

int reqparse_api_path(const char *path, char key[GW_KEY_MAX + 1])
{
	static const char subs[] = "/api/v1/submissions";
	const char *rest = path + sizeof(subs) - 1;
	size_t n;

	key[0] = '\0';
	if (strncmp(path, subs, sizeof(subs) - 1) || (*rest && *rest != '/'))
		return REQ_API_NONE;
	if (!*rest || !strcmp(rest, "/"))
		return REQ_API_LIST;
	rest++;
	n = strcspn(rest, "/");
	if (!proto_key_valid(rest, n))
		return REQ_API_BADKEY;
	memcpy(key, rest, n);
	key[n] = '\0';
	if (!rest[n] || !strcmp(rest + n, "/"))
		return REQ_API_STATE;
	if (!strcmp(rest + n, "/events"))
		return REQ_API_EVENTS;
	return REQ_API_UNKNOWN;
}

int reqparse_uint(const char *v, uint64_t *out)
{
	uint64_t x = 0;

	if (!*v)
		return -1;
	for (; *v; v++) {
		unsigned d = (unsigned)(unsigned char)*v - '0';

		if (d > 9 || x > (UINT64_MAX - d) / 10)
			return -1;   /* not a digit, or x * 10 + d would wrap */
		x = x * 10 + d;
	}
	*out = x;
	return 0;
}
