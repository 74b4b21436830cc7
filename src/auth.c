/*
 * Access control (see auth.h). Secrets are compared in constant time
 * (CRYPTO_memcmp) so a timing probe learns nothing about the token.
 */
#include "auth.h"

#include <libwebsockets.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"

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
	if (server_header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, hdr, sizeof(hdr)))
		return 0;
	if (strncasecmp(hdr, "Bearer ", 7))
		return 0;
	return secret_equal(hdr + 7, app->cfg->publish_token);
}

int auth_publisher(struct gw_app *app, struct lws *wsi, char *reason, size_t len)
{
	char hdr[512];

	if (!app->cfg->publish_token) {
		if (server_peer_is_loopback(wsi))
			return 0;
		snprintf(reason, len, "no --publish-token is configured, so only loopback peers may publish");
		return 403;
	}
	if (server_header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, hdr, sizeof(hdr))) {
		snprintf(reason, len, "an Authorization: Bearer <publish token> header is required");
		return 401;
	}
	if (!auth_has_publish_token(app, wsi)) {
		snprintf(reason, len, "the publish token is not valid");
		return 403;
	}
	return 0;
}

int auth_origin(struct gw_app *app, struct lws *wsi, char *reason, size_t len)
{
	const char *list = app->cfg->allowed_origin;
	char origin[256];

	if (!list || !*list)
		return 0;
	if (server_header(wsi, WSI_TOKEN_ORIGIN, origin, sizeof(origin)))
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

int auth_browser(struct gw_app *app, struct lws *wsi, const char *key,
		 struct gw_claims **out, char *reason, size_t len)
{
	*out = NULL;
	if (!app->cfg->auth_secret)
		return 0;
	snprintf(reason, len, "browser tokens are not verified by this build yet");
	return 401;
}

int auth_allows(const struct gw_claims *c, const char *key)
{
	if (!c)
		return 1;
	if (c->all)
		return 1;
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->keys[i], key))
			return 1;
	return 0;
}

void auth_claims_free(struct gw_claims *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		free(c->keys[i]);
	free(c->keys);
	free(c);
}
