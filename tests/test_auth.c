/*
 * Browser tokens (token.c) and per-address connection counts (iplimit.c):
 * HS256 only (none, RS256 and case variants refused before the signature
 * is looked at), bad signatures, strict base64url, exp/nbf with leeway, the
 * submissions claim; and the iplimit table's counts, growth and self-free.
 * Tokens are minted here with OpenSSL's HMAC, independently of token.c.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "iplimit.h"
#include "token.h"

#define SECRET "unit-test-secret"
#define NOW 1700000000LL

static void b64url(const unsigned char *in, size_t len, char *out)
{
	static const char a[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;

	for (size_t i = 0; i < len; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = a[(acc >> bits) & 63];
		}
	}
	if (bits)
		out[o++] = a[(acc << (6 - bits)) & 63];
	out[o] = '\0';
}

/* header.payload.signature, signed with secret (NULL: empty signature) */
static char *mint(const char *header, const char *payload, const char *secret)
{
	char *t = malloc(8192);
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int ml = 0;
	size_t n;

	b64url((const unsigned char *)header, strlen(header), t);
	n = strlen(t);
	t[n++] = '.';
	b64url((const unsigned char *)payload, strlen(payload), t + n);
	n = strlen(t);
	t[n++] = '.';
	t[n] = '\0';
	if (secret) {
		HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)t, n - 1, mac, &ml);
		b64url(mac, ml, t + n);
	}
	return t;
}

static int verify(const char *tok, struct gw_claims **c)
{
	char reason[200];

	*c = NULL;
	return token_verify(SECRET, tok, strlen(tok), NOW, c, reason, sizeof(reason));
}

/* the verdict for a token made of header and payload signed with SECRET */
static int verdict(const char *header, const char *payload)
{
	struct gw_claims *c;
	char *t = mint(header, payload, SECRET);
	int r = verify(t, &c);

	token_claims_free(c);
	free(t);
	return r;
}

static const char HS[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

static void test_good(void)
{
	struct gw_claims *c;
	char *t = mint(HS, "{\"exp\":1700000600,\"submissions\":[\"42\",\"a.b-c_d\"]}", SECRET);

	CHECK_EQ_INT(verify(t, &c), GW_TOKEN_OK);
	CHECK(c && !c->all && c->n == 2 && c->exp == 1700000600);
	CHECK(token_allows(c, "42", NOW));
	CHECK(token_allows(c, "a.b-c_d", NOW));
	CHECK(!token_allows(c, "43", NOW));
	CHECK(!token_allows(c, "4", NOW));
	CHECK(!token_expired(c, NOW));
	/* it expires (after the leeway) and then allows nothing */
	CHECK(token_allows(c, "42", 1700000600 + GW_TOKEN_LEEWAY - 1));
	CHECK(!token_allows(c, "42", 1700000600 + GW_TOKEN_LEEWAY));
	CHECK(token_expired(c, 1700000600 + GW_TOKEN_LEEWAY));
	token_claims_free(c);
	free(t);

	t = mint(HS, "{\"exp\":1700000600.5,\"submissions\":[\"*\"],\"nbf\":1699999999,\"sub\":\"u\"}", SECRET);
	CHECK_EQ_INT(verify(t, &c), GW_TOKEN_OK);
	CHECK(c && c->all && token_allows(c, "anything", NOW));
	token_claims_free(c);
	free(t);
	/* no typ is fine; an empty list allows nothing */
	t = mint("{\"alg\":\"HS256\"}", "{\"exp\":1700000600,\"submissions\":[]}", SECRET);
	CHECK_EQ_INT(verify(t, &c), GW_TOKEN_OK);
	CHECK(c && !token_allows(c, "42", NOW));
	token_claims_free(c);
	free(t);
	/* NULL claims are open mode */
	CHECK(token_allows(NULL, "42", NOW));
	CHECK(!token_expired(NULL, NOW));
}

static void test_alg_pinned(void)
{
	static const char *const heads[] = {
		"{\"alg\":\"none\",\"typ\":\"JWT\"}", "{\"alg\":\"None\"}",
		"{\"alg\":\"RS256\"}", "{\"alg\":\"HS512\"}", "{\"alg\":\"HS384\"}",
		"{\"alg\":\"hs256\"}", "{\"alg\":\"ES256\"}", "{\"alg\":\"\"}",
		"{\"typ\":\"JWT\"}", "{\"alg\":256}", "{\"alg\":null}",
		"{\"alg\":\"HS256\",\"crit\":[\"b64\"],\"b64\":false}",
	};
	const char *pl = "{\"exp\":1700000600,\"submissions\":[\"*\"]}";
	struct gw_claims *c;

	for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++)
		CHECK_EQ_INT(verdict(heads[i], pl), GW_TOKEN_EALG);
	/* alg none without a signature, the classic */
	char *t = mint("{\"alg\":\"none\"}", pl, NULL);
	CHECK_EQ_INT(verify(t, &c), GW_TOKEN_EALG);
	CHECK(!c);
	free(t);
	/* duplicate alg (a parser-confusion trick) is malformed */
	CHECK_EQ_INT(verdict("{\"alg\":\"HS256\",\"alg\":\"none\"}", pl), GW_TOKEN_EMALFORMED);
}

static void test_signature(void)
{
	const char *pl = "{\"exp\":1700000600,\"submissions\":[\"*\"]}";
	struct gw_claims *c;
	char *t = mint(HS, pl, "another secret");
	char *p;

	CHECK_EQ_INT(verify(t, &c), GW_TOKEN_ESIG);
	free(t);
	t = mint(HS, pl, NULL);                /* empty signature */
	CHECK_EQ_INT(verify(t, &c), GW_TOKEN_ESIG);
	free(t);
	t = mint(HS, pl, SECRET);
	p = strrchr(t, '.') + 1;
	p[3] = p[3] == 'A' ? 'B' : 'A';        /* one flipped character */
	CHECK_EQ_INT(verify(t, &c), GW_TOKEN_ESIG);
	free(t);
	/* a payload changed after signing */
	t = mint(HS, pl, SECRET);
	{
		char *t2 = mint(HS, "{\"exp\":1700000600,\"submissions\":[\"x\"]}", SECRET);
		char buf[8192];
		const char *d1 = strchr(t, '.'), *s2 = strrchr(t2, '.');
		size_t hl = (size_t)(d1 - t), pl2 = (size_t)(s2 - strchr(t2, '.'));
		snprintf(buf, sizeof(buf), "%.*s%.*s%s", (int)hl, t, (int)pl2, strchr(t2, '.'), strrchr(t, '.'));
		CHECK_EQ_INT(verify(buf, &c), GW_TOKEN_ESIG);
		free(t2);
	}
	/* a truncated signature */
	p = strrchr(t, '.') + 1;
	p[strlen(p) - 4] = '\0';
	{
		int r = verify(t, &c);
		CHECK(r == GW_TOKEN_ESIG || r == GW_TOKEN_EMALFORMED);
	}
	free(t);
	CHECK(!c);
}

static void test_malformed(void)
{
	static const char *const bad[] = {
		"", "abc", "a.b", "a.b.c.d", "..",
		"eyJhbGciOiJIUzI1NiJ9.e30.a+b/", "eyJhbGciOiJIUzI1NiJ9=.e30.",
		"bm90IGpzb24.e30.", "WzFd.e30.",   /* "not json", [1] */
	};
	struct gw_claims *c;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = verify(bad[i], &c);
		CHECK(r == GW_TOKEN_EMALFORMED);
		if (r != GW_TOKEN_EMALFORMED)
			fprintf(stderr, "  token %zu (\"%s\") gave %d\n", i, bad[i], r);
		CHECK(!c);
	}
	/* over the size limit */
	{
		char *big = malloc(GW_TOKEN_MAX + 2);
		memset(big, 'A', GW_TOKEN_MAX + 1);
		big[GW_TOKEN_MAX + 1] = '\0';
		CHECK_EQ_INT(verify(big, &c), GW_TOKEN_EMALFORMED);
		free(big);
	}
	/* an empty token as a NULL pointer (fuzz_token found the NULL + 0 that
	 * UBSan reports as undefined) */
	{
		char reason[200];

		c = NULL;
		CHECK_EQ_INT(token_verify(SECRET, NULL, 0, NOW, &c, reason, sizeof(reason)),
			     GW_TOKEN_EMALFORMED);
		CHECK(!c);
	}
	/* an HS256 header, nothing else: no signature to match */
	CHECK_EQ_INT(verify("eyJhbGciOiJIUzI1NiJ9..", &c), GW_TOKEN_ESIG);
	/* a payload that is not JSON, signed correctly */
	CHECK_EQ_INT(verdict(HS, "exp=1"), GW_TOKEN_EMALFORMED);
}

static void test_claims(void)
{
	CHECK_EQ_INT(verdict(HS, "{\"submissions\":[\"*\"]}"), GW_TOKEN_EEXPIRED);
	CHECK_EQ_INT(verdict(HS, "{\"exp\":1699999000,\"submissions\":[\"*\"]}"), GW_TOKEN_EEXPIRED);
	/* within the leeway */
	CHECK_EQ_INT(verdict(HS, "{\"exp\":1699999998,\"submissions\":[\"*\"]}"), GW_TOKEN_OK);
	CHECK_EQ_INT(verdict(HS, "{\"exp\":\"tomorrow\",\"submissions\":[\"*\"]}"), GW_TOKEN_EMALFORMED);
	CHECK_EQ_INT(verdict(HS, "{\"exp\":1700000600,\"nbf\":1700000100,\"submissions\":[\"*\"]}"),
		     GW_TOKEN_ENOTYET);
	CHECK_EQ_INT(verdict(HS, "{\"exp\":1700000600,\"nbf\":1700000003,\"submissions\":[\"*\"]}"),
		     GW_TOKEN_OK);
	CHECK_EQ_INT(verdict(HS, "{\"exp\":1700000600}"), GW_TOKEN_ECLAIMS);
	CHECK_EQ_INT(verdict(HS, "{\"exp\":1700000600,\"submissions\":\"42\"}"), GW_TOKEN_ECLAIMS);
	CHECK_EQ_INT(verdict(HS, "{\"exp\":1700000600,\"submissions\":[42]}"), GW_TOKEN_ECLAIMS);
	CHECK_EQ_INT(verdict(HS, "{\"exp\":1700000600,\"submissions\":[\"a b\"]}"), GW_TOKEN_ECLAIMS);
}

/*
 * exp and nbf near the 64-bit limits: adding or subtracting the leeway must
 * not overflow (signed overflow is undefined; UBSan aborts the sanitizer
 * run). Integers are bounded like real numbers, to +-GW_TOKEN_TIME_MAX
 * seconds, and a time beyond that is not a number of seconds.
 */
static void test_time_limits(void)
{
	static const char *const absurd[] = {
		"{\"exp\":9223372036854775807,\"submissions\":[\"*\"]}",
		"{\"exp\":9223372036854775803,\"submissions\":[\"*\"]}",
		"{\"exp\":-9223372036854775808,\"submissions\":[\"*\"]}",
		"{\"exp\":9000000000000000,\"submissions\":[\"*\"]}",
		"{\"exp\":1700000600,\"nbf\":-9223372036854775808,\"submissions\":[\"*\"]}",
		"{\"exp\":1700000600,\"nbf\":-9223372036854775805,\"submissions\":[\"*\"]}",
		"{\"exp\":1700000600,\"nbf\":9223372036854775807,\"submissions\":[\"*\"]}",
		"{\"exp\":1700000600,\"nbf\":-9000000000000000,\"submissions\":[\"*\"]}",
		"{\"exp\":9e15,\"submissions\":[\"*\"]}",
		"{\"exp\":1e300,\"submissions\":[\"*\"]}",
	};
	struct gw_claims *c;
	char *t;

	for (size_t i = 0; i < sizeof(absurd) / sizeof(absurd[0]); i++) {
		int r = verdict(HS, absurd[i]);

		CHECK_EQ_INT(r, GW_TOKEN_EMALFORMED);
		if (r != GW_TOKEN_EMALFORMED)
			fprintf(stderr, "  payload %s gave %d\n", absurd[i], r);
	}
	/* the largest accepted times work, and stay in force at any sane now */
	t = mint(HS, "{\"exp\":8999999999999999,\"nbf\":-8999999999999999,"
		 "\"submissions\":[\"*\"]}", SECRET);
	CHECK_EQ_INT(verify(t, &c), GW_TOKEN_OK);
	CHECK(c && c->exp == GW_TOKEN_TIME_MAX - 1);
	CHECK(token_allows(c, "42", NOW));
	CHECK(!token_expired(c, NOW));
	CHECK(token_expired(c, INT64_MAX));
	token_claims_free(c);
	free(t);
	/* a far past exp is just expired */
	CHECK_EQ_INT(verdict(HS, "{\"exp\":-8999999999999999,\"submissions\":[\"*\"]}"),
		     GW_TOKEN_EEXPIRED);
	/* checked at any now, even the extremes, without overflow */
	t = mint(HS, "{\"exp\":1700000600,\"submissions\":[\"*\"]}", SECRET);
	{
		char reason[200];

		c = NULL;
		CHECK_EQ_INT(token_verify(SECRET, t, strlen(t), INT64_MIN, &c, reason,
					  sizeof(reason)), GW_TOKEN_OK);
		CHECK(c && !token_expired(c, INT64_MIN) && token_expired(c, INT64_MAX));
		token_claims_free(c);
		c = NULL;
		CHECK_EQ_INT(token_verify(SECRET, t, strlen(t), INT64_MAX, &c, reason,
					  sizeof(reason)), GW_TOKEN_EEXPIRED);
		CHECK(!c);
	}
	free(t);
}

static void test_b64url(void)
{
	unsigned char out[16];

	CHECK_EQ_INT(token_b64url_decode("", 0, out), 0);
	CHECK_EQ_INT(token_b64url_decode("YQ", 2, out), 1);
	CHECK(out[0] == 'a');
	CHECK_EQ_INT(token_b64url_decode("YWI", 3, out), 2);
	CHECK_EQ_INT(token_b64url_decode("YWJj", 4, out), 3);
	CHECK(!memcmp(out, "abc", 3));
	CHECK_EQ_INT(token_b64url_decode("-_8", 3, out), 2);
	CHECK(out[0] == 0xfb && out[1] == 0xff);
	CHECK_EQ_INT(token_b64url_decode("Y", 1, out), -1);     /* lone sextet */
	CHECK_EQ_INT(token_b64url_decode("YR", 2, out), -1);    /* unused bits set */
	CHECK_EQ_INT(token_b64url_decode("YQ==", 4, out), -1);  /* padding */
	CHECK_EQ_INT(token_b64url_decode("+/8", 3, out), -1);   /* standard alphabet */
}

static void test_iplimit(void)
{
	struct ip_table *t = NULL;
	char ip[32];

	CHECK_EQ_INT(iplimit_count(t, "1.2.3.4"), 0);
	CHECK_EQ_INT(iplimit_add(&t, "1.2.3.4"), 0);
	CHECK_EQ_INT(iplimit_add(&t, "1.2.3.4"), 0);
	CHECK_EQ_INT(iplimit_add(&t, "::1"), 0);
	CHECK_EQ_INT(iplimit_count(t, "1.2.3.4"), 2);
	CHECK_EQ_INT(iplimit_count(t, "::1"), 1);
	CHECK_EQ_INT(iplimit_count(t, "1.2.3.5"), 0);
	CHECK_EQ_INT(iplimit_addresses(t), 2);
	/* enough addresses to grow the table several times */
	for (int i = 0; i < 5000; i++) {
		snprintf(ip, sizeof(ip), "10.0.%d.%d", i / 256, i % 256);
		CHECK_EQ_INT(iplimit_add(&t, ip), 0);
	}
	CHECK_EQ_INT(iplimit_addresses(t), 5002);
	CHECK_EQ_INT(iplimit_count(t, "10.0.19.135"), 1);
	CHECK_EQ_INT(iplimit_count(t, "1.2.3.4"), 2);
	for (int i = 0; i < 5000; i++) {
		snprintf(ip, sizeof(ip), "10.0.%d.%d", i / 256, i % 256);
		iplimit_del(&t, ip);
	}
	CHECK_EQ_INT(iplimit_addresses(t), 2);
	iplimit_del(&t, "1.2.3.4");
	iplimit_del(&t, "not counted");        /* harmless */
	CHECK_EQ_INT(iplimit_count(t, "1.2.3.4"), 1);
	iplimit_del(&t, "1.2.3.4");
	iplimit_del(&t, "::1");
	CHECK(t == NULL);                      /* the empty table frees itself */
	iplimit_del(&t, "::1");
	CHECK(t == NULL);
}

int main(void)
{
	test_good();
	test_alg_pinned();
	test_signature();
	test_malformed();
	test_claims();
	test_time_limits();
	test_b64url();
	test_iplimit();
	return check_report();
}
