/*
 * Unit tests for netaddr.c (CIDR sets, canonical addresses, the client
 * behind trusted proxies) and chunked.c (the chunked body decoder, fed whole
 * and a byte at a time). Exit status 0 = pass.
 */
#include "chunked.h"
#include "netaddr.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>

static struct netset *set(const char *list)
{
	struct netset *s = NULL;
	char err[160] = "";

	CHECK_EQ_INT(netset_parse(list, &s, err, sizeof(err)), 0);
	CHECK(s != NULL);
	return s;
}

static void bad_set(const char *list, const char *want)
{
	struct netset *s = (struct netset *)1;
	char err[160] = "";

	CHECK_EQ_INT(netset_parse(list, &s, err, sizeof(err)), -1);
	CHECK(s == NULL);
	if (!strstr(err, want))
		fprintf(stderr, "netset_parse(\"%s\"): \"%s\" lacks \"%s\"\n", list, err, want);
	CHECK(strstr(err, want) != NULL);
}

static void test_sets(void)
{
	struct netset *s = set("10.0.0.0/8, 192.168.1.7 ,fd00::/8");

	CHECK_EQ_INT(netset_size(s), 3);
	CHECK(netset_contains(s, "10.1.2.3"));
	CHECK(netset_contains(s, "::ffff:10.1.2.3"));   /* the mapped form is the same host */
	CHECK(!netset_contains(s, "11.0.0.1"));
	CHECK(netset_contains(s, "192.168.1.7"));
	CHECK(!netset_contains(s, "192.168.1.8"));
	CHECK(netset_contains(s, "fd12::1"));
	CHECK(!netset_contains(s, "fe80::1"));
	CHECK(!netset_contains(s, "not an address"));
	CHECK(!netset_contains(s, ""));
	CHECK(!netset_contains(s, NULL));
	netset_free(s);

	s = set("loopback");
	CHECK_EQ_INT(netset_size(s), 2);
	CHECK(netset_contains(s, "127.0.0.1"));
	CHECK(netset_contains(s, "127.255.0.9"));
	CHECK(netset_contains(s, "::1"));
	CHECK(netset_contains(s, "::ffff:127.0.0.2"));
	CHECK(!netset_contains(s, "128.0.0.1"));
	CHECK(!netset_contains(s, "::2"));
	netset_free(s);

	/* prefixes not on a byte boundary, and the extremes */
	s = set("172.16.0.0/12,0.0.0.0/0");
	CHECK(netset_contains(s, "8.8.8.8"));
	netset_free(s);
	s = set("172.16.0.0/12");
	CHECK(netset_contains(s, "172.31.255.255"));
	CHECK(!netset_contains(s, "172.32.0.0"));
	CHECK(!netset_contains(s, "172.15.255.255"));
	CHECK(!netset_contains(s, "::1"));
	netset_free(s);
	s = set("2001:db8::/127");
	CHECK(netset_contains(s, "2001:db8::1"));
	CHECK(!netset_contains(s, "2001:db8::2"));
	netset_free(s);

	s = set("");
	CHECK_EQ_INT(netset_size(s), 0);
	CHECK(!netset_contains(s, "127.0.0.1"));
	netset_free(s);
	s = set("none");
	CHECK_EQ_INT(netset_size(s), 0);
	netset_free(s);
	CHECK_EQ_INT(netset_size(NULL), 0);

	bad_set("10.0.0.0/33", "prefix length");
	bad_set("::/129", "prefix length");
	bad_set("10.0.0.0/", "prefix length");
	bad_set("10.0.0.0/8x", "prefix length");
	bad_set("10.0.0.0/-1", "prefix length");
	bad_set("example.com", "not an IP address");
	bad_set("10.0.0.0/8,300.1.1.1", "300.1.1.1");
}

static void test_canon(void)
{
	char out[GW_ADDR_MAX];

	CHECK_EQ_INT(netaddr_canon("::ffff:127.0.0.1", 16, out, sizeof(out)), 0);
	CHECK_EQ_STR(out, "127.0.0.1");
	CHECK_EQ_INT(netaddr_canon(" [2001:DB8:0:0::1] ", 19, out, sizeof(out)), 0);
	CHECK_EQ_STR(out, "2001:db8::1");
	CHECK_EQ_INT(netaddr_canon("1.2.3", 5, out, sizeof(out)), -1);
	CHECK_EQ_INT(netaddr_canon("", 0, out, sizeof(out)), -1);
	CHECK_EQ_INT(netaddr_canon("1.2.3.4", 7, out, 4), -1);   /* no room */
}

static void client(const char *xff, const char *rip, const struct netset *proxies,
		   const char *want)
{
	char out[GW_ADDR_MAX] = "unchanged";
	int rc = netaddr_forwarded_client(xff, rip, proxies, out, sizeof(out));

	if (!want) {
		CHECK_EQ_INT(rc, -1);
		CHECK_EQ_STR(out, "unchanged");
		return;
	}
	CHECK_EQ_INT(rc, 0);
	if (strcmp(out, want))
		fprintf(stderr, "xff \"%s\" real-ip \"%s\": got %s, want %s\n",
			xff ? xff : "", rip ? rip : "", out, want);
	CHECK_EQ_STR(out, want);
}

static void test_forwarded(void)
{
	struct netset *px = set("127.0.0.1,10.0.0.0/8");

	/* the rightmost address that is not one of our proxies; what a
	 * client wrote on the left cannot push it aside */
	client("203.0.113.9", NULL, px, "203.0.113.9");
	client("6.6.6.6, 203.0.113.9", NULL, px, "203.0.113.9");
	client("6.6.6.6, 203.0.113.9, 10.1.1.1", NULL, px, "203.0.113.9");
	client("203.0.113.9,10.1.1.1,127.0.0.1", NULL, px, "203.0.113.9");
	client(" ::ffff:198.51.100.2 ", NULL, px, "198.51.100.2");
	client("2001:db8::7", NULL, px, "2001:db8::7");
	client("[2001:db8::7]", NULL, px, "2001:db8::7");
	/* every hop a proxy: the leftmost is the best we know */
	client("10.9.9.9, 10.1.1.1", NULL, px, "10.9.9.9");
	/* garbage on the right: nothing to believe in the header, so X-Real-IP */
	client("6.6.6.6, unknown", "198.51.100.3", px, "198.51.100.3");
	/* garbage left of a proxy hop: stop at the last good address */
	client("evil, 10.1.1.1", NULL, px, "10.1.1.1");
	/* no X-Forwarded-For: X-Real-IP */
	client(NULL, "198.51.100.3", px, "198.51.100.3");
	client("", "198.51.100.3", px, "198.51.100.3");
	client(",,", "198.51.100.3", px, "198.51.100.3");
	/* neither: nothing */
	client(NULL, NULL, px, NULL);
	client("junk", "junk", px, NULL);
	netset_free(px);
	/* with no proxy set, the rightmost address is taken */
	client("6.6.6.6, 203.0.113.9", NULL, NULL, "203.0.113.9");
}

/* decodes in whole, then again fed in pieces of step bytes */
static void decode(const char *in, int want, const char *data)
{
	for (size_t step = 0; step <= 3; step++) {
		size_t len = strlen(in), off = 0, total = 0;
		unsigned char *out = malloc(len + 1);
		struct chunked c;
		int r = GW_CHUNKED_MORE;

		chunked_init(&c);
		while (off < len && r == GW_CHUNKED_MORE) {
			size_t n = step ? (len - off < step ? len - off : step) : len, got = 0, used = 0;

			r = chunked_feed(&c, (const unsigned char *)in + off, n, out + total, &got, &used);
			CHECK(used <= n);
			if (r == GW_CHUNKED_MORE)
				CHECK_EQ_INT(used, n);
			total += got;
			off += used;
		}
		if (r != want)
			fprintf(stderr, "chunked \"%s\" step %zu: %d, want %d\n", in, step, r, want);
		CHECK_EQ_INT(r, want);
		if (data && want == GW_CHUNKED_DONE) {
			CHECK_EQ_INT(total, strlen(data));
			CHECK(!memcmp(out, data, total));
		}
		free(out);
	}
}

static void test_chunked(void)
{
	size_t got, used;
	struct chunked c;
	unsigned char out[64];

	decode("5\r\nhello\r\n0\r\n\r\n", GW_CHUNKED_DONE, "hello");
	decode("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", GW_CHUNKED_DONE, "hello world");
	decode("A;name=val\r\n0123456789\r\n0\r\n\r\n", GW_CHUNKED_DONE, "0123456789");
	decode("a\r\n0123456789\r\n000\r\nX-Trailer: 1\r\nY: 2\r\n\r\n", GW_CHUNKED_DONE, "0123456789");
	decode("0\r\n\r\n", GW_CHUNKED_DONE, "");
	decode("5\r\nhel", GW_CHUNKED_MORE, NULL);
	decode("5\r\nhello\r\n0\r\n", GW_CHUNKED_MORE, NULL);
	/* malformed framing */
	decode("zz\r\n", GW_CHUNKED_BAD, NULL);
	decode("\r\n", GW_CHUNKED_BAD, NULL);
	decode("5\nhello\r\n", GW_CHUNKED_BAD, NULL);
	decode("5\r\nhelloX\r\n", GW_CHUNKED_BAD, NULL);
	decode("5\r\nhello\r\n0\r\n\n", GW_CHUNKED_BAD, NULL);
	decode("0\r\nX-T: 1\n\r\n", GW_CHUNKED_BAD, NULL);
	/* sizes cannot overflow: at most 15 hex digits */
	decode("1000000000000000\r\n", GW_CHUNKED_BAD, NULL);
	decode("ffffffffffffffff\r\n", GW_CHUNKED_BAD, NULL);

	/* a line without end is refused once past the bound */
	{
		size_t n = GW_CHUNKED_LINE_MAX + 16;
		char *line = malloc(n + 1);
		memset(line, 'a', n);
		memcpy(line, "1;", 2);
		line[n] = '\0';
		decode(line, GW_CHUNKED_BAD, NULL);
		free(line);
	}

	/* bytes after the end are left unconsumed */
	chunked_init(&c);
	CHECK_EQ_INT(chunked_feed(&c, (const unsigned char *)"1\r\nx\r\n0\r\n\r\nGET /", 17, out, &got, &used),
		     GW_CHUNKED_DONE);
	CHECK_EQ_INT(got, 1);
	CHECK_EQ_INT(used, 11);   /* "1\r\nx\r\n0\r\n\r\n" */
	/* and a finished or broken decoder stays so */
	CHECK_EQ_INT(chunked_feed(&c, (const unsigned char *)"5\r\n", 3, out, &got, &used), GW_CHUNKED_DONE);
	CHECK_EQ_INT(used, 0);
	chunked_init(&c);
	CHECK_EQ_INT(chunked_feed(&c, (const unsigned char *)"g", 1, out, &got, &used), GW_CHUNKED_BAD);
	CHECK_EQ_INT(chunked_feed(&c, (const unsigned char *)"0\r\n\r\n", 5, out, &got, &used), GW_CHUNKED_BAD);
}

int main(void)
{
	test_sets();
	test_canon();
	test_forwarded();
	test_chunked();
	return check_report();
}
