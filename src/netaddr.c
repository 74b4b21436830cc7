/*
 * CIDR sets and forwarded-client resolution (see netaddr.h). Addresses are
 * parsed with inet_pton into 16 bytes (IPv4 mapped into ::ffff:0:0/96), and a
 * prefix is matched by comparing its first len bits. Sets are tiny (a few
 * networks), so a linear walk is the fastest structure there is.
 */
#include "netaddr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct prefix {
	unsigned char addr[16];
	unsigned bits;           /* 0..128, counted on the mapped form */
};

struct netset {
	size_t n;
	struct prefix p[];
};

static const unsigned char v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* text (not NUL-terminated) to 16 bytes; *v4 set when it was IPv4 */
static int parse_addr(const char *s, size_t n, unsigned char out[16], int *v4)
{
	char tmp[INET6_ADDRSTRLEN + 8];

	while (n && (*s == ' ' || *s == '\t'))
		s++, n--;
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n >= 2 && s[0] == '[' && s[n - 1] == ']')
		s++, n -= 2;
	if (!n || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	if (inet_pton(AF_INET, tmp, out + 12) == 1) {
		memcpy(out, v4mapped, 12);
		*v4 = 1;
		return 0;
	}
	if (inet_pton(AF_INET6, tmp, out) == 1) {
		*v4 = !memcmp(out, v4mapped, 12);
		return 0;
	}
	return -1;
}

static int prefix_match(const struct prefix *p, const unsigned char a[16])
{
	unsigned full = p->bits / 8, rest = p->bits % 8;

	if (memcmp(p->addr, a, full))
		return 0;
	if (!rest)
		return 1;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (p->addr[full] & mask) == (a[full] & mask);
}

static int parse_prefix(const char *s, size_t n, struct prefix *out, char *err, size_t errlen)
{
	const char *slash = memchr(s, '/', n);
	size_t alen = slash ? (size_t)(slash - s) : n;
	int v4 = 0;
	long bits;

	if (parse_addr(s, alen, out->addr, &v4)) {
		snprintf(err, errlen, "\"%.*s\" is not an IP address or CIDR prefix",
			 (int)(n > 64 ? 64 : n), s);
		return -1;
	}
	if (slash) {
		char num[8], *end;
		size_t ln = n - alen - 1;

		if (!ln || ln >= sizeof(num)) {
			snprintf(err, errlen, "bad prefix length in \"%.*s\"", (int)(n > 64 ? 64 : n), s);
			return -1;
		}
		memcpy(num, slash + 1, ln);
		num[ln] = '\0';
		bits = strtol(num, &end, 10);
		if (*end || bits < 0 || bits > (v4 ? 32 : 128)) {
			snprintf(err, errlen, "bad prefix length in \"%.*s\"", (int)(n > 64 ? 64 : n), s);
			return -1;
		}
		out->bits = (unsigned)bits + (v4 ? 96 : 0);
	} else {
		out->bits = 128;
	}
	return 0;
}

int netset_parse(const char *list, struct netset **out, char *err, size_t errlen)
{
	size_t cap = 2, i;
	struct netset *set;
	const char *p;

	*out = NULL;
	for (p = list; *p; p++)
		cap += *p == ',' ? 2 : 0;   /* "loopback" takes two slots */
	set = calloc(1, sizeof(*set) + (cap + 2) * sizeof(set->p[0]));
	if (!set) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (p = list; *p;) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		const char *w = p;
		size_t wn = n;

		while (wn && (*w == ' ' || *w == '\t'))
			w++, wn--;
		while (wn && (w[wn - 1] == ' ' || w[wn - 1] == '\t'))
			wn--;
		if (wn == 8 && !strncmp(w, "loopback", 8)) {
			i = set->n;
			parse_prefix("127.0.0.0/8", 11, &set->p[i], err, errlen);
			parse_prefix("::1", 3, &set->p[i + 1], err, errlen);
			set->n += 2;
		} else if (wn == 4 && !strncmp(w, "none", 4)) {
			/* nothing */
		} else if (wn) {
			if (parse_prefix(w, wn, &set->p[set->n], err, errlen)) {
				free(set);
				return -1;
			}
			set->n++;
		}
		if (!e)
			break;
		p = e + 1;
	}
	*out = set;
	return 0;
}

void netset_free(struct netset *set)
{
	free(set);
}

size_t netset_size(const struct netset *set)
{
	return set ? set->n : 0;
}

static int set_has(const struct netset *set, const unsigned char a[16])
{
	for (size_t i = 0; set && i < set->n; i++)
		if (prefix_match(&set->p[i], a))
			return 1;
	return 0;
}

int netset_contains(const struct netset *set, const char *addr)
{
	unsigned char a[16];
	int v4;

	if (!set || !addr || parse_addr(addr, strlen(addr), a, &v4))
		return 0;
	return set_has(set, a);
}

static int format_addr(const unsigned char a[16], int v4, char *out, size_t outlen)
{
	char tmp[INET6_ADDRSTRLEN];

	if (!inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? a + 12 : a, tmp, sizeof(tmp)))
		return -1;
	if (strlen(tmp) >= outlen)
		return -1;
	strcpy(out, tmp);
	return 0;
}

int netaddr_canon(const char *in, size_t len, char *out, size_t outlen)
{
	unsigned char a[16];
	int v4 = 0;

	if (parse_addr(in, len, a, &v4))
		return -1;
	return format_addr(a, v4, out, outlen);
}

int netaddr_forwarded_client(const char *xff, const char *real_ip,
			     const struct netset *proxies, char *out, size_t outlen)
{
	unsigned char a[16], left[16];
	int v4 = 0, lv4 = 0, have_left = 0;

	if (xff && *xff) {
		size_t end = strlen(xff);

		/* right to left: each hop appended the address it saw */
		for (;;) {
			size_t start = end;

			while (start && xff[start - 1] != ',')
				start--;
			if (!parse_addr(xff + start, end - start, a, &v4)) {
				if (!set_has(proxies, a))
					return format_addr(a, v4, out, outlen);
				memcpy(left, a, 16);
				lv4 = v4;
				have_left = 1;
			} else if (end > start) {
				/* a garbled hop: what lies left of it was written
				 * by someone we cannot vouch for; stop at the last
				 * good address */
				break;
			}
			if (!start)
				break;
			end = start - 1;
		}
		if (have_left)
			return format_addr(left, lv4, out, outlen);
	}
	if (real_ip && !parse_addr(real_ip, strlen(real_ip), a, &v4))
		return format_addr(a, v4, out, outlen);
	return -1;
}
