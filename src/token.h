/*
 * Browser tokens: HS256 JSON Web Tokens (RFC 7519) verified with OpenSSL's
 * HMAC-SHA256 and a constant-time comparison. The algorithm is pinned: a
 * header whose alg is anything but "HS256" ("none", "RS256", "hs256"...) is
 * refused before the signature is even looked at. Pure (no lws): any thread,
 * no shared state, so the unit tests link it alone.
 */
#ifndef GW_TOKEN_H
#define GW_TOKEN_H

#include <stddef.h>
#include <stdint.h>

/* seconds of clock skew tolerated on exp and nbf */
#define GW_TOKEN_LEEWAY 5
/* exp and nbf (integer or real) must lie strictly between -GW_TOKEN_TIME_MAX
 * and GW_TOKEN_TIME_MAX seconds (about 285 million years either side of
 * 1970); a time beyond that is refused as malformed, so that no check can
 * overflow when the leeway is added */
#define GW_TOKEN_TIME_MAX INT64_C(9000000000000000)
/* longest token accepted (header + payload + signature, base64url) */
#define GW_TOKEN_MAX 4096

/* what a browser's token allows */
struct gw_claims {
	int all;                 /* "submissions" holds "*" */
	int64_t exp;             /* unix seconds */
	size_t n;
	char **keys;             /* malloc'd array of malloc'd strings */
};

enum {
	GW_TOKEN_OK = 0,
	GW_TOKEN_EMALFORMED = -1,/* not three base64url parts of JSON objects */
	GW_TOKEN_EALG = -2,      /* alg is not HS256, or crit is present */
	GW_TOKEN_ESIG = -3,      /* signature does not match */
	GW_TOKEN_EEXPIRED = -4,  /* exp missing or in the past */
	GW_TOKEN_ENOTYET = -5,   /* nbf in the future */
	GW_TOKEN_ECLAIMS = -6,   /* submissions missing or not a list of keys */
	GW_TOKEN_ENOMEM = -7,
};

/* Verifies token (len bytes, not NUL-terminated; NULL when len is 0)
 * against secret at time now (unix seconds). Returns GW_TOKEN_OK and *out (malloc'd, freed with
 * token_claims_free) or a negative GW_TOKEN_E* with a reason. */
int token_verify(const char *secret, const char *token, size_t len, int64_t now,
		 struct gw_claims **out, char *reason, size_t rlen);
/* 1 when claims list key (or "*") and have not expired at now */
int token_allows(const struct gw_claims *c, const char *key, int64_t now);
/* 1 when the claims' exp (plus leeway) has passed at now */
int token_expired(const struct gw_claims *c, int64_t now);
void token_claims_free(struct gw_claims *c);

/* Strict base64url without padding (RFC 4648 section 5): decodes in into
 * out (room for len * 3 / 4 bytes); returns the decoded length or -1. */
long token_b64url_decode(const char *in, size_t len, unsigned char *out);

#endif
