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
#include "config.h"

static int secret_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	return la == lb && CRYPTO_memcmp(a, b, la) == 0;
}

int auth_has_publish_token(const struct gw_config *cfg, struct lws *wsi)
{
	char hdr[512];

	if (!cfg->publish_token)
		return 0;
	if (conn_header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, hdr, sizeof(hdr)))
		return 0;
	if (strncasecmp(hdr, "Bearer ", 7))
		return 0;
	return secret_equal(hdr + 7, cfg->publish_token);
}

/* a peer trusted by its address: it must be in --publish-networks, talk to
 * us directly (a relayed request's TCP peer is the proxy, which vouches for
 * nobody) and not be one of our own proxies */
static int trusted_by_address(const struct gw_config *cfg, struct lws *wsi)
{
	char peer[GW_ADDR_MAX];

	if (!netset_size(cfg->publish_nets))
		return 0;
	conn_peer(wsi, peer, sizeof(peer));
	return netset_contains(cfg->publish_nets, peer) &&
	       !netset_contains(cfg->proxy_nets, peer) && !conn_relayed(wsi);
}

int auth_trusted_publisher(const struct gw_config *cfg, struct lws *wsi)
{
	return auth_has_publish_token(cfg, wsi) || trusted_by_address(cfg, wsi);
}

int auth_publisher(const struct gw_config *cfg, struct lws *wsi, char *reason, size_t len)
{
	char hdr[512];

	if (auth_trusted_publisher(cfg, wsi))
		return 0;
	if (!conn_header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, hdr, sizeof(hdr)) && cfg->publish_token) {
		snprintf(reason, len, "the publish token is not valid");
		return 403;
	}
	if (cfg->publish_token) {
		snprintf(reason, len, "an Authorization: Bearer <publish token> header is required");
		return 401;
	}
	if (netset_size(cfg->publish_nets) && conn_relayed(wsi)) {
		snprintf(reason, len, "a request relayed by a proxy is never trusted by its address; "
			 "configure --publish-token and send it as a bearer token");
		return 403;
	}
	snprintf(reason, len, "no --publish-token is configured and this peer is not in --publish-networks");
	return 403;
}

/* 1 when origin is one of the comma-separated list (case-insensitive) */
static int origin_listed(const char *list, const char *origin)
{
	for (const char *p = list; *p;) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		while (n && *p == ' ')
			p++, n--;
		while (n && p[n - 1] == ' ')
			n--;
		if (n == strlen(origin) && !strncasecmp(p, origin, n))
			return 1;
		if (!e)
			break;
		p = e + 1;
	}
	return 0;
}

int auth_origin(const struct gw_config *cfg, struct lws *wsi, char *reason, size_t len)
{
	const char *list = cfg->allowed_origin;
	char origin[256];

	if (!list || !*list)
		return 0;
	if (conn_header(wsi, WSI_TOKEN_ORIGIN, origin, sizeof(origin)))
		return 0;   /* not a browser: browsers always send Origin on upgrades */
	if (origin_listed(list, origin))
		return 0;
	snprintf(reason, len, "origin %s is not allowed", origin);
	return 403;
}

/*
 * May a token that came in a cookie be used for this request? A browser
 * attaches cookies to requests that other sites make it send (a WebSocket
 * opened by any page: cross-site WebSocket hijacking), so the cookie counts
 * only when the request comes from an allowed Origin: one of
 * --allowed-origin, or, without that option, the request's own host. A
 * request without Origin is not one a browser made for another site
 * (browsers send Origin on every upgrade and cross-origin request).
 */
static int cookie_origin_ok(const struct gw_config *cfg, struct lws *wsi)
{
	char origin[256], host[256];
	const char *o;

	if (conn_header(wsi, WSI_TOKEN_ORIGIN, origin, sizeof(origin)))
		return lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) <= 0;
	if (cfg->allowed_origin && *cfg->allowed_origin)
		return origin_listed(cfg->allowed_origin, origin);
	/* the request's own host: Origin is scheme://host[:port] */
	o = strstr(origin, "://");
	if (!o || conn_header(wsi, WSI_TOKEN_HOST, host, sizeof(host)))
		return 0;
	return !strcasecmp(o + 3, host);
}

/* The value of the cookie called name in a Cookie header ("a=1; token=x"):
 * names are compared whole (no "xtoken" for "token"), surrounding blanks
 * and a pair of double quotes are removed. 0 and out, or -1. */
static int cookie_value(const char *hdr, const char *name, char *out, size_t len)
{
	size_t nl = strlen(name);

	for (const char *p = hdr; *p;) {
		const char *e = strchr(p, ';'), *v;
		size_t n;

		if (!e)
			e = p + strlen(p);
		while (p < e && (*p == ' ' || *p == '\t'))
			p++;
		v = memchr(p, '=', (size_t)(e - p));
		if (v) {
			const char *ne = v;
			while (ne > p && (ne[-1] == ' ' || ne[-1] == '\t'))
				ne--;
			if ((size_t)(ne - p) == nl && !memcmp(p, name, nl)) {
				v++;
				while (v < e && (*v == ' ' || *v == '\t'))
					v++;
				n = (size_t)(e - v);
				while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
					n--;
				if (n >= 2 && v[0] == '"' && v[n - 1] == '"')
					v++, n -= 2;
				if (n >= len)
					return -1;
				memcpy(out, v, n);
				out[n] = '\0';
				return 0;
			}
		}
		if (!*e)
			break;
		p = e + 1;
	}
	return -1;
}

/* the browser token of a request: query, bearer header, then cookie; 0
 * (with *from_cookie), or -1 when there is none */
static int find_token(struct lws *wsi, char *out, size_t len, int *from_cookie)
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
		 !strncasecmp(hdr, "Bearer ", 7) && strlen(hdr + 7) < len) {
		snprintf(out, len, "%s", hdr + 7);
		r = 0;
	} else if (!conn_header(wsi, WSI_TOKEN_HTTP_COOKIE, hdr, GW_TOKEN_MAX + 64) &&
		   !cookie_value(hdr, "token", out, len) && *out) {
		*from_cookie = 1;
		r = 0;
	}
	free(hdr);
	return r;
}

int auth_browser(const struct gw_config *cfg, struct lws *wsi, const char *key,
		 struct gw_claims **out, char *reason, size_t len)
{
	char *tok;
	struct gw_claims *c = NULL;
	int r, from_cookie = 0;

	*out = NULL;
	if (!cfg->auth_secret)
		return 0;
	/* a backend holding the publish token may read everything it can write */
	if (auth_has_publish_token(cfg, wsi))
		return 0;
	tok = malloc(GW_TOKEN_MAX + 1);
	if (!tok) {
		snprintf(reason, len, "out of memory");
		return 503;
	}
	if (find_token(wsi, tok, GW_TOKEN_MAX + 1, &from_cookie)) {
		free(tok);
		snprintf(reason, len, "a token is required (?token=, an Authorization: Bearer header, or a cookie named token)");
		return 401;
	}
	if (from_cookie && !cookie_origin_ok(cfg, wsi)) {
		free(tok);
		snprintf(reason, len, "a token cookie counts only for requests from an allowed Origin "
			 "(--allowed-origin, or this host); pass ?token= instead");
		return 403;
	}
	r = token_verify(cfg->auth_secret, tok, strlen(tok), (int64_t)time(NULL),
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

int64_t auth_seconds_left(const struct gw_claims *c)
{
	int64_t now = (int64_t)time(NULL);

	if (!c)
		return -1;
	/* exp is bounded by token.c, so this cannot overflow */
	return c->exp + GW_TOKEN_LEEWAY > now ? c->exp + GW_TOKEN_LEEWAY - now : 0;
}

void auth_claims_free(struct gw_claims *c)
{
	token_claims_free(c);
}
