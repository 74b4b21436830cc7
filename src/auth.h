/*
 * Who may do what. Browsers: with --auth-secret, an HS256 JWT (query
 * ?token= or cookie "token") whose exp is in the future and whose
 * "submissions" claim lists the key or "*". Publishers: the bearer publish
 * token, or a loopback peer when no token is configured. Origins: the
 * --allowed-origin list. Service thread only (reads request headers).
 */
#ifndef GW_AUTH_H
#define GW_AUTH_H

#include <stddef.h>
#include <stdint.h>

struct lws;
struct gw_app;

/* what a browser's token allows; NULL claims = open mode (everything) */
struct gw_claims {
	int all;                 /* "*" */
	int64_t exp;             /* unix seconds */
	size_t n;
	char **keys;             /* malloc'd strings */
};

/* Checks the Origin header against --allowed-origin. 0 or 403. */
int auth_origin(struct gw_app *app, struct lws *wsi, char *reason, size_t len);

/* Browser token of an upgrade request. Returns 0 and *out (NULL in open
 * mode, else malloc'd claims freed with auth_claims_free) or 401/403 with a
 * reason. When key is not NULL the token must also allow it. */
int auth_browser(struct gw_app *app, struct lws *wsi, const char *key,
		 struct gw_claims **out, char *reason, size_t len);
/* 1 when claims allow key now (NULL claims: open mode, always) */
int auth_allows(const struct gw_claims *c, const char *key);
void auth_claims_free(struct gw_claims *c);

/* Publisher check for an HTTP request or a legacy upgrade: 0 when allowed,
 * else 401 (no credentials) or 403 (wrong token / not loopback). */
int auth_publisher(struct gw_app *app, struct lws *wsi, char *reason, size_t len);
/* 1 when a bearer publish token is configured and presented correctly */
int auth_has_publish_token(struct gw_app *app, struct lws *wsi);

#endif
