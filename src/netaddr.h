/*
 * Network addresses, pure: sets of CIDR prefixes (--publish-networks,
 * --trusted-proxies) and the client address behind a chain of proxies
 * (X-Forwarded-For). IPv4 is held as IPv4-mapped IPv6 (::ffff:a.b.c.d), so
 * "127.0.0.1" and "::ffff:127.0.0.1" are one address and one prefix list
 * serves both families. No lws here: any thread, and tests link it alone.
 */
#ifndef GW_NETADDR_H
#define GW_NETADDR_H

#include <stddef.h>

/* longest textual address we produce (IPv6 with a mapped IPv4 tail) */
#define GW_ADDR_MAX 64

struct netset;

/*
 * Parses a comma-separated list of prefixes ("127.0.0.0/8, ::1, 10.1.2.3"):
 * an address without "/len" is a host. The words "loopback" (127.0.0.0/8
 * and ::1) and "none" (nothing) are accepted too. "" gives an empty set.
 * Returns 0 and *out (freed with netset_free), or -1 with a reason.
 */
int netset_parse(const char *list, struct netset **out, char *err, size_t errlen);
void netset_free(struct netset *set);
/* number of prefixes in the set (0 for NULL) */
size_t netset_size(const struct netset *set);
/* 1 when the textual address addr (v4, v6 or v4-mapped) is in set */
int netset_contains(const struct netset *set, const char *addr);

/*
 * Canonical text of an address: IPv4 and IPv4-mapped IPv6 as dotted quad,
 * IPv6 in RFC 5952 form; surrounding blanks and [brackets] are dropped.
 * Returns 0, or -1 when in is not an address.
 */
int netaddr_canon(const char *in, size_t len, char *out, size_t outlen);

/*
 * The client of a request relayed by trusted proxies: walks the
 * X-Forwarded-For list (xff, comma-separated, may be NULL) from the right and
 * returns the first address that is not itself in proxies; when every entry
 * is a proxy the leftmost one. Without a usable X-Forwarded-For, real_ip
 * (X-Real-IP, may be NULL) is used. Returns 0 and the canonical address in
 * out, or -1 when neither header holds an address (out untouched).
 */
int netaddr_forwarded_client(const char *xff, const char *real_ip,
			     const struct netset *proxies, char *out, size_t outlen);

#endif
