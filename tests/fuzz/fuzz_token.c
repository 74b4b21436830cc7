/*
 * libFuzzer target: token_verify, the HS256 JWT check of every browser
 * token (?token=, Authorization: Bearer, cookie), with a fixed secret.
 *
 * A random token almost never carries a valid signature, so the claims
 * parser behind it would stay unreached; the target therefore signs some
 * inputs itself. Byte 0 chooses:
 *   bits 0-1: 0 the rest is a whole token, as a browser sends it
 *             1 the rest is the payload JSON; the target signs it under an
 *               HS256 header, so token_verify reaches the claims
 *             2 the rest is the header JSON, signed over a valid payload
 *             3 the rest is base64url for token_b64url_decode alone
 *   bits 2-4: the verification time, from a fixed set that includes the
 *             int64 extremes (exp/nbf arithmetic must not overflow)
 *
 * Invariants: accepted claims have an exp within the documented bounds,
 * are not expired at that time and list valid keys only; a token the
 * target signed never fails on its signature; a refusal gives no claims
 * and a reason; strict base64url has one spelling, so re-encoding what
 * decodes gives back the input.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "fuzz.h"
#include "proto.h"
#include "token.h"

#define SECRET "fuzz-secret"

static const int64_t times[8] = {
	1700000000, 0, -1700000000, INT64_MIN, INT64_MAX,
	GW_TOKEN_TIME_MAX, -GW_TOKEN_TIME_MAX, 4102444800,
};

static const char b64chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url without padding into out (room for 4 * (len + 2) / 3 + 1) */
static size_t b64url(const uint8_t *in, size_t len, char *out)
{
	uint32_t acc = 0;
	size_t o = 0;
	int bits = 0;

	for (size_t i = 0; i < len; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = b64chars[(acc >> bits) & 63];
		}
		acc &= (1u << bits) - 1;
	}
	if (bits)
		out[o++] = b64chars[(acc << (6 - bits)) & 63];
	out[o] = '\0';
	return o;
}

/* b64(head).b64(payload).b64(HMAC-SHA256); malloc'd */
static char *sign(const uint8_t *head, size_t hl, const uint8_t *pl, size_t pll,
		  size_t *len)
{
	char *t = malloc(4 * (hl + pll + 64) / 3 + 16);
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int ml = 0;
	size_t n;

	FUZZ_CHECK(t != NULL);
	n = b64url(head, hl, t);
	t[n++] = '.';
	n += b64url(pl, pll, t + n);
	FUZZ_CHECK(HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET),
			(const unsigned char *)t, n, mac, &ml) != NULL);
	t[n++] = '.';
	n += b64url(mac, ml, t + n);
	*len = n;
	return t;
}

static void check_claims(const struct gw_claims *c, int64_t now)
{
	FUZZ_CHECK(c != NULL);
	FUZZ_CHECK(c->exp > -GW_TOKEN_TIME_MAX && c->exp < GW_TOKEN_TIME_MAX);
	FUZZ_CHECK(!token_expired(c, now));
	FUZZ_CHECK(c->n == 0 || c->keys != NULL);
	for (size_t i = 0; i < c->n; i++) {
		FUZZ_CHECK(proto_key_valid(c->keys[i], strlen(c->keys[i])));
		FUZZ_CHECK(token_allows(c, c->keys[i], now));
	}
	/* "*" is no key, so only the wildcard claim allows it */
	FUZZ_CHECK(token_allows(c, "*", now) == (c->all != 0));
}

/* verifies tok; returns the result after checking what it must hold */
static int verify(const char *tok, size_t len, int64_t now)
{
	static struct gw_claims stale;   /* token_verify must overwrite it */
	struct gw_claims *c = &stale;
	char reason[160];
	int r;

	reason[0] = '\0';
	r = token_verify(SECRET, tok, len, now, &c, reason, sizeof(reason));
	if (r == GW_TOKEN_OK) {
		check_claims(c, now);
	} else {
		FUZZ_CHECK(r >= GW_TOKEN_ENOMEM && r <= GW_TOKEN_EMALFORMED);
		FUZZ_CHECK(c == NULL);
		FUZZ_CHECK(reason[0] != '\0');
	}
	token_claims_free(c);
	return r;
}

static void b64_roundtrip(const uint8_t *in, size_t len)
{
	unsigned char *raw = malloc(len * 3 / 4 + 1);
	char *again = malloc(len + 2);
	long n;

	FUZZ_CHECK(raw && again);
	n = token_b64url_decode((const char *)in, len, raw);
	if (n >= 0) {
		FUZZ_CHECK((size_t)n <= len * 3 / 4);
		FUZZ_CHECK(b64url(raw, (size_t)n, again) == len);
		FUZZ_CHECK(!memcmp(again, in, len));
	}
	free(again);
	free(raw);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char hs[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	static const char pl[] = "{\"exp\":4102444800,\"submissions\":[\"42\",\"*\"]}";
	const uint8_t *in = data + 1;
	size_t len = size - 1, tl;
	int64_t now;
	char *tok;
	int r;

	if (size < 1)
		return 0;
	now = times[(data[0] >> 2) & 7];
	switch (data[0] & 3) {
	case 0:
		tok = fuzz_dup(in, len);   /* exact size: no reading past it */
		verify(tok, len, now);
		free(tok);
		break;
	case 1:
		if (len > GW_TOKEN_MAX)
			return 0;
		tok = sign((const uint8_t *)hs, sizeof(hs) - 1, in, len, &tl);
		r = verify(tok, tl, now);
		FUZZ_CHECK(r != GW_TOKEN_ESIG && r != GW_TOKEN_EALG);
		FUZZ_CHECK(tl <= GW_TOKEN_MAX || r == GW_TOKEN_EMALFORMED);
		free(tok);
		break;
	case 2:
		if (len > GW_TOKEN_MAX)
			return 0;
		tok = sign(in, len, (const uint8_t *)pl, sizeof(pl) - 1, &tl);
		r = verify(tok, tl, now);
		FUZZ_CHECK(r != GW_TOKEN_ESIG);
		if (r == GW_TOKEN_OK) {
			/* only a header that pins HS256 and has no crit gets in */
			json_t *h = json_loadb((const char *)in, len, 0, NULL);
			const char *alg = json_string_value(json_object_get(h, "alg"));

			FUZZ_CHECK(alg && !strcmp(alg, "HS256"));
			FUZZ_CHECK(!json_object_get(h, "crit"));
			json_decref(h);
		}
		free(tok);
		break;
	default:
		b64_roundtrip(in, len);
		break;
	}
	return 0;
}
