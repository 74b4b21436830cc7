/*
 * HS256 JWT verification (see token.h).
 *
 * Order matters: the header is decoded first and its alg pinned to HS256;
 * then the HMAC-SHA256 of "header.payload" is computed with OpenSSL and
 * compared with the decoded signature by CRYPTO_memcmp (constant time);
 * only a token whose signature holds has its payload parsed for claims.
 * Base64url is decoded strictly (no padding, no stray characters, zero
 * unused bits) so that one token has exactly one spelling.
 */
#include "token.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

static int b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

long token_b64url_decode(const char *in, size_t len, unsigned char *out)
{
	uint32_t acc = 0;
	int bits = 0;
	long n = 0;

	if (len % 4 == 1)
		return -1;   /* a lone sextet cannot encode a byte */
	for (size_t i = 0; i < len; i++) {
		int v = b64url_value((unsigned char)in[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc)
		return -1;   /* unused low bits must be zero */
	return n;
}

/* decodes one base64url part into a JSON object; NULL when it is not one */
static json_t *part_json(const char *p, size_t len)
{
	unsigned char *raw = malloc(len * 3 / 4 + 1);
	json_t *o = NULL;
	long n;

	if (!raw)
		return NULL;
	n = token_b64url_decode(p, len, raw);
	if (n > 0)
		o = json_loadb((const char *)raw, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
	free(raw);
	if (o && !json_is_object(o)) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

/*
 * A NumericDate: an integer or a real number of seconds, strictly within
 * +-GW_TOKEN_TIME_MAX (so that adding the leeway, here or in token_expired,
 * cannot overflow, and a real converts to int64_t without undefined
 * behaviour; NaN fails the comparison too); 0 or -1.
 */
static int numeric_date(json_t *v, int64_t *out)
{
	double d;

	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);

		if (i <= -GW_TOKEN_TIME_MAX || i >= GW_TOKEN_TIME_MAX)
			return -1;
		*out = (int64_t)i;
		return 0;
	}
	if (!json_is_real(v))
		return -1;
	d = json_real_value(v);
	if (!(d > (double)-GW_TOKEN_TIME_MAX && d < (double)GW_TOKEN_TIME_MAX))
		return -1;
	*out = (int64_t)d;
	return 0;
}

static int read_claims(json_t *payload, int64_t now, struct gw_claims **out,
		       char *reason, size_t rlen)
{
	json_t *exp = json_object_get(payload, "exp");
	json_t *nbf = json_object_get(payload, "nbf");
	json_t *subs = json_object_get(payload, "submissions");
	struct gw_claims *c;
	int64_t t;
	json_t *v;
	size_t i;

	if (!exp) {
		snprintf(reason, rlen, "the token has no exp claim");
		return GW_TOKEN_EEXPIRED;
	}
	if (numeric_date(exp, &t)) {
		snprintf(reason, rlen, "the token's exp is not a number of seconds");
		return GW_TOKEN_EMALFORMED;
	}
	if (t + GW_TOKEN_LEEWAY <= now) {
		snprintf(reason, rlen, "the token has expired");
		return GW_TOKEN_EEXPIRED;
	}
	if (nbf) {
		int64_t nb;
		if (numeric_date(nbf, &nb)) {
			snprintf(reason, rlen, "the token's nbf is not a number of seconds");
			return GW_TOKEN_EMALFORMED;
		}
		if (nb - GW_TOKEN_LEEWAY > now) {
			snprintf(reason, rlen, "the token is not valid yet (nbf)");
			return GW_TOKEN_ENOTYET;
		}
	}
	if (!json_is_array(subs)) {
		snprintf(reason, rlen, "the token has no submissions claim (a list of keys or \"*\")");
		return GW_TOKEN_ECLAIMS;
	}
	c = calloc(1, sizeof(*c));
	if (!c || (json_array_size(subs) &&
		   !(c->keys = calloc(json_array_size(subs), sizeof(*c->keys))))) {
		free(c);
		snprintf(reason, rlen, "out of memory");
		return GW_TOKEN_ENOMEM;
	}
	c->exp = t;
	json_array_foreach(subs, i, v) {
		const char *k = json_string_value(v);
		size_t kl = k ? strlen(k) : 0;

		if (k && !strcmp(k, "*")) {
			c->all = 1;
			continue;
		}
		if (!k || !proto_key_valid(k, kl)) {
			snprintf(reason, rlen, "submissions[%zu] is not a submission key", i);
			token_claims_free(c);
			return GW_TOKEN_ECLAIMS;
		}
		if (!(c->keys[c->n] = strdup(k))) {
			token_claims_free(c);
			snprintf(reason, rlen, "out of memory");
			return GW_TOKEN_ENOMEM;
		}
		c->n++;
	}
	*out = c;
	return GW_TOKEN_OK;
}

int token_verify(const char *secret, const char *token, size_t len, int64_t now,
		 struct gw_claims **out, char *reason, size_t rlen)
{
	const char *d1, *d2, *end;
	unsigned char mac[EVP_MAX_MD_SIZE], sig[64];
	unsigned int maclen = 0;
	json_t *head = NULL, *payload = NULL;
	const char *alg;
	long siglen;
	int r;

	*out = NULL;
	/* an empty token may be NULL, and NULL + 0 is undefined in C */
	end = len ? token + len : token;
	if (!len || len > GW_TOKEN_MAX ||
	    !(d1 = memchr(token, '.', len)) ||
	    !(d2 = memchr(d1 + 1, '.', (size_t)(end - d1 - 1))) ||
	    memchr(d2 + 1, '.', (size_t)(end - d2 - 1))) {
		snprintf(reason, rlen, "the token is not a JWT (three base64url parts)");
		return GW_TOKEN_EMALFORMED;
	}
	head = part_json(token, (size_t)(d1 - token));
	if (!head) {
		snprintf(reason, rlen, "the token's header is not base64url JSON");
		r = GW_TOKEN_EMALFORMED;
		goto out;
	}
	alg = json_string_value(json_object_get(head, "alg"));
	if (!alg || strcmp(alg, "HS256")) {
		snprintf(reason, rlen, "the token's alg must be HS256");
		r = GW_TOKEN_EALG;
		goto out;
	}
	if (json_object_get(head, "crit")) {
		snprintf(reason, rlen, "the token has critical header extensions we do not know");
		r = GW_TOKEN_EALG;
		goto out;
	}
	if ((size_t)(end - d2 - 1) > sizeof(sig) * 4 / 3 ||
	    (siglen = token_b64url_decode(d2 + 1, (size_t)(end - d2 - 1), sig)) < 0) {
		snprintf(reason, rlen, "the token's signature is not base64url");
		r = GW_TOKEN_EMALFORMED;
		goto out;
	}
	if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)token,
		  (size_t)(d2 - token), mac, &maclen)) {
		snprintf(reason, rlen, "cannot compute HMAC-SHA256");
		r = GW_TOKEN_ENOMEM;
		goto out;
	}
	if ((size_t)siglen != maclen || CRYPTO_memcmp(sig, mac, maclen)) {
		snprintf(reason, rlen, "the token's signature is not valid");
		r = GW_TOKEN_ESIG;
		goto out;
	}
	payload = part_json(d1 + 1, (size_t)(d2 - d1 - 1));
	if (!payload) {
		snprintf(reason, rlen, "the token's payload is not base64url JSON");
		r = GW_TOKEN_EMALFORMED;
		goto out;
	}
	r = read_claims(payload, now, out, reason, rlen);
out:
	json_decref(head);
	json_decref(payload);
	return r;
}

int token_expired(const struct gw_claims *c, int64_t now)
{
	return c && c->exp + GW_TOKEN_LEEWAY <= now;
}

int token_allows(const struct gw_claims *c, const char *key, int64_t now)
{
	if (!c)
		return 1;
	if (token_expired(c, now))
		return 0;
	if (c->all)
		return 1;
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->keys[i], key))
			return 1;
	return 0;
}

void token_claims_free(struct gw_claims *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		free(c->keys[i]);
	free(c->keys);
	free(c);
}
