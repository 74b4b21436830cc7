/*
 * libFuzzer target: netaddr.c on the headers a client or a proxy controls:
 * X-Forwarded-For and X-Real-IP (netaddr_forwarded_client), one address
 * (netaddr_canon, netset_contains) and, for good measure, a prefix list as
 * --publish-networks and --trusted-proxies give it (netset_parse).
 *
 * Input: byte 0 sets the size of the output buffer (1 to 80 bytes,
 * allocated exactly); the rest is split at its first newline into the
 * X-Forwarded-For value and the X-Real-IP value (none when there is no
 * newline).
 *
 * Invariants: an address given back is canonical (canonicalising it again
 * changes nothing), fits its buffer and is not one of the trusted proxies
 * unless every address in the list is one; a parsed prefix list holds at
 * most two prefixes per item, and a refused one says why.
 */
#include <arpa/inet.h>

#include "fuzz.h"
#include "netaddr.h"

static struct netset *proxies;

static void check_canonical(const char *addr, size_t outlen)
{
	char again[GW_ADDR_MAX];
	unsigned char raw[16];
	size_t n = strlen(addr);

	FUZZ_CHECK(n >= 1 && n < outlen);
	FUZZ_CHECK(inet_pton(AF_INET, addr, raw) == 1 || inet_pton(AF_INET6, addr, raw) == 1);
	FUZZ_CHECK(netaddr_canon(addr, n, again, sizeof(again)) == 0);
	FUZZ_CHECK(!strcmp(again, addr));
}

/*
 * Is every address a client could have written to the right of the first
 * garbled hop a proxy? Walks xff from the right as SPEC 4 reads it: empty
 * items are skipped, any other item that is no address ends the walk.
 */
static int only_proxies(const char *xff)
{
	char one[GW_ADDR_MAX];
	size_t end = strlen(xff);

	while (end) {
		size_t start = end;

		while (start && xff[start - 1] != ',')
			start--;
		if (!netaddr_canon(xff + start, end - start, one, sizeof(one))) {
			if (!netset_contains(proxies, one))
				return 0;
		} else if (end > start) {
			break;       /* garbled, even if only blanks */
		}
		if (!start)
			break;
		end = start - 1;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t outlen;
	char *xff, *real_ip, *nl, *out, err[200];
	struct netset *set;

	if (!proxies)
		FUZZ_CHECK(netset_parse("10.0.0.0/8, 192.168.0.0/16, loopback, fd00::/8",
					&proxies, err, sizeof(err)) == 0);
	if (size < 1)
		return 0;
	outlen = 1 + (size_t)data[0] % 80;
	xff = fuzz_cstr(data + 1, size - 1);
	nl = strchr(xff, '\n');
	real_ip = nl ? nl + 1 : NULL;
	if (nl)
		*nl = '\0';
	out = malloc(outlen);
	FUZZ_CHECK(out != NULL);

	if (!netaddr_forwarded_client(xff, real_ip, proxies, out, outlen)) {
		check_canonical(out, outlen);
		/* a proxy is reported only when the list holds nothing else
		 * right of a garbled hop, or when X-Real-IP names one */
		FUZZ_CHECK(!netset_contains(proxies, out) || only_proxies(xff) || real_ip);
	}
	if (!netaddr_canon(xff, strlen(xff), out, outlen))
		check_canonical(out, outlen);
	(void)netset_contains(proxies, xff);

	if (!netset_parse(xff, &set, err, sizeof(err))) {
		size_t items = 1;

		for (const char *p = xff; *p; p++)
			items += *p == ',';
		FUZZ_CHECK(netset_size(set) <= 2 * items);
		(void)netset_contains(set, "127.0.0.1");
		(void)netset_contains(set, "2001:db8::1");
		netset_free(set);
	} else {
		FUZZ_CHECK(set == NULL && err[0] != '\0');
	}
	free(out);
	free(xff);
	return 0;
}
