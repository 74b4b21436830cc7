/*
 * Access control (see auth.h). Secrets are compared in constant time
 * (CRYPTO_memcmp) so a timing probe learns nothing about the token. Browser
 * tokens are found here (query, bearer header, cookie) and verified by
 * token.c, which pins the algorithm to HS256.
 */
#include "auth.h"

#include <libwebsockets.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conn.h"
#include "gateway.h"
#include "reqparse.h"

static int secret_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	return la == lb && CRYPTO_memcmp(a, b, la) == 0;
}

int auth_has_publish_token(struct gw_app *app, struct lws *wsi)
{
	char hdr[512];

	if (!app->cfg->publish_token)
		return 0;
	if (conn_header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, hdr, sizeof(hdr)))
		return 0;
	if (strncasecmp(hdr, "Bearer ", 7))
		return 0;
	return secret_equal(hdr + 7, app->cfg->publish_token);
}

/* a peer trusted by its address: it must be in --publish-networks, talk to
 * us directly (a relayed request's TCP peer is the proxy, which vouches for
 * nobody) and not be one of our own proxies */
static int trusted_by_address(struct gw_app *app, struct lws *wsi)
{
	char peer[GW_ADDR_MAX];

	if (!netset_size(app->cfg->publish_nets))
		return 0;
	conn_peer(wsi, peer, sizeof(peer));
	return netset_contains(app->cfg->publish_nets, peer) &&
	       !netset_contains(app->cfg->proxy_nets, peer) && !conn_relayed(wsi);
}

int auth_trusted_publisher(struct gw_app *app, struct lws *wsi)
{
	return auth_has_publish_token(app, wsi) || trusted_by_address(app, wsi);
}

int auth_publisher(struct gw_app *app, struct lws *wsi, char *reason, size_t len)
{
	char hdr[512];

	if (auth_trusted_publisher(app, wsi))
		return 0;
	if (!conn_header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, hdr, sizeof(hdr)) && app->cfg->publish_token) {
		snprintf(reason, len, "the publish token is not valid");
		return 403;
	}
	if (app->cfg->publish_token) {
		snprintf(reason, len, "an Authorization: Bearer <publish token> header is required");
		return 401;
	}
	if (netset_size(app->cfg->publish_nets) && conn_relayed(wsi)) {
		snprintf(reason, len, "a request relayed by a proxy is never trusted by its address; "
			 "configure --publish-token and send it as a bearer token");
		return 403;
	}
	snprintf(reason, len, "no --publish-token is configured and this peer is not in --publish-networks");
	return 403;
}

int auth_origin(struct gw_app *app, struct lws *wsi, char *reason, size_t len)
{
	const char *list = app->cfg->allowed_origin;
	char origin[256];

	if (!list || !*list)
		return 0;
	if (conn_header(wsi, WSI_TOKEN_ORIGIN, origin, sizeof(origin)))
		return 0;   /* not a browser: browsers always send Origin on upgrades */
	for (const char *p = list; *p;) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		while (n && *p == ' ')
			p++, n--;
		while (n && p[n - 1] == ' ')
			n--;
		if (n == strlen(origin) && !strncasecmp(p, origin, n))
			return 0;
		if (!e)
			break;
		p = e + 1;
	}
	snprintf(reason, len, "origin %s is not allowed", origin);
	return 403;
}

/* the browser token of a request: query, bearer header, then cookie */
static int find_token(struct lws *wsi, char *out, size_t len)
{
	char *hdr = malloc(GW_TOKEN_MAX + 64);
	const char *q;
	int r = -1;

	if (!hdr)
		return -1;
	q = lws_get_urlarg_by_name(wsi, "token=", out, (int)len);

	/* lws 4.1 returns a pointer past "token=" inside out, later ones out */
	if (q && *q) {
		memmove(out, q, strlen(q) + 1);
		r = 0;
	} else if (!conn_header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, hdr, GW_TOKEN_MAX + 64) &&
		   !reqparse_bearer(hdr, out, len)) {
		r = 0;   /* an empty "Bearer " is no token: the cookie may hold one */
	} else if (!conn_header(wsi, WSI_TOKEN_HTTP_COOKIE, hdr, GW_TOKEN_MAX + 64) &&
		   !reqparse_cookie(hdr, "token", out, len) && *out) {
		r = 0;
	}
	free(hdr);
	return r;
}

int auth_browser(struct gw_app *app, struct lws *wsi, const char *key,
		 struct gw_claims **out, char *reason, size_t len)
{
	char *tok;
	struct gw_claims *c = NULL;
	int r;

	*out = NULL;
	if (!app->cfg->auth_secret)
		return 0;
	/* a backend holding the publish token may read everything it can write */
	if (auth_has_publish_token(app, wsi))
		return 0;
	tok = malloc(GW_TOKEN_MAX + 1);
	if (!tok) {
		snprintf(reason, len, "out of memory");
		return 503;
	}
	if (find_token(wsi, tok, GW_TOKEN_MAX + 1)) {
		free(tok);
		snprintf(reason, len, "a token is required (?token=, an Authorization: Bearer header, or a cookie named token)");
		return 401;
	}
	r = token_verify(app->cfg->auth_secret, tok, strlen(tok), (int64_t)time(NULL),
			 &c, reason, len);
	free(tok);
	if (r == GW_TOKEN_ENOMEM)
		return 503;
	if (r)
		return 401;
	if (key && !auth_allows(c, key)) {
		snprintf(reason, len, "the token does not allow submission %s", key);
		token_claims_free(c);
		return 403;
	}
	*out = c;
	return 0;
}

int auth_allows(const struct gw_claims *c, const char *key)
{
	return token_allows(c, key, (int64_t)time(NULL));
}

int auth_expired(const struct gw_claims *c)
{
	return token_expired(c, (int64_t)time(NULL));
}

void auth_claims_free(struct gw_claims *c)
{
	token_claims_free(c);
}
