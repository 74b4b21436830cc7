/*
 * The HTTP adapter (http_api.c): the publish API, the read API, health,
 * metrics and static files. Service thread only.
 */
#ifndef GW_HTTP_API_H
#define GW_HTTP_API_H

#include <stddef.h>

struct lws;

/* bytes of per-session data an HTTP connection needs */
size_t http_pss_size(void);
/* the lws callback for the HTTP reasons */
int http_callback(struct lws *wsi, int reason, void *user, void *in, size_t len);

#endif
