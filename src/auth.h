/*
 * Who may do what. Browsers: with --auth-secret, an HS256 JWT (query
 * ?token= or cookie "token") whose exp is in the future and whose
 * "submissions" claim lists the key or "*". Publishers: the bearer publish
 * token, or a direct peer in --publish-networks (default loopback when no
 * token is configured). Origins: the
 * --allowed-origin list. Service thread only (reads request headers).
 */
#ifndef GW_AUTH_H
#define GW_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "token.h"   /* struct gw_claims */

struct lws;
struct gw_config;

/* Checks the Origin header against --allowed-origin. 0 or 403. */
int auth_origin(const struct gw_config *cfg, struct lws *wsi, char *reason, size_t len);

/* Browser token of an upgrade or read request, taken from the query
 * (?token=), else an Authorization: Bearer header, else the cookie "token".
 * Returns 0 and *out (NULL in open mode or for a publish-token holder, else
 * malloc'd claims freed with auth_claims_free) or 401 (no token, malformed,
 * bad signature, alg not HS256, expired) / 403 (key not in the claim) /
 * 503 (out of memory) with a reason. When key is not NULL the token must
 * also allow it. */
int auth_browser(const struct gw_config *cfg, struct lws *wsi, const char *key,
		 struct gw_claims **out, char *reason, size_t len);
/* 1 when claims allow key now: listed and not expired (NULL: always) */
int auth_allows(const struct gw_claims *c, const char *key);
/* 1 when the claims' exp has passed (NULL: never) */
int auth_expired(const struct gw_claims *c);
/* seconds until the claims expire (0 once they have; -1 for NULL: never) */
int64_t auth_seconds_left(const struct gw_claims *c);
void auth_claims_free(struct gw_claims *c);

/* 1 when the request may publish: it carries the bearer publish token, or
 * comes straight (no Forwarded, X-Forwarded-For or X-Real-IP; not from a
 * trusted proxy) from an address in --publish-networks */
int auth_trusted_publisher(const struct gw_config *cfg, struct lws *wsi);
/* Publisher check for an HTTP request: 0 when trusted, else 401 (a token is
 * configured and none was sent) or 403 (wrong token, untrusted address,
 * relayed request) with a reason. */
int auth_publisher(const struct gw_config *cfg, struct lws *wsi, char *reason, size_t len);
/* 1 when a bearer publish token is configured and presented correctly */
int auth_has_publish_token(const struct gw_config *cfg, struct lws *wsi);

#endif
