/*
 * What a connection says about itself: request headers and the client's
 * address. A leaf over lws (it knows nothing of the gateway), shared by auth
 * and the HTTP and WebSocket adapters. Service thread only.
 */
#ifndef GW_CONN_H
#define GW_CONN_H

#include <stddef.h>

#include "netaddr.h"

struct lws;

/* header value by lws token (e.g. WSI_TOKEN_HTTP_AUTHORIZATION): 0, or -1
 * when absent or longer than len - 1 (out is then "") */
int conn_header(struct lws *wsi, int token, char *out, size_t len);
/* a header lws has no token for, by lower-case name with its colon
 * ("x-real-ip:"): 0 or -1 as conn_header */
int conn_header_custom(struct lws *wsi, const char *name, char *out, size_t len);
/* the TCP peer's canonical address ("" if unknown) */
void conn_peer(struct lws *wsi, char *out, size_t len);
/* 1 when the request says it was relayed by a proxy: it carries Forwarded,
 * X-Forwarded-For or X-Real-IP */
int conn_relayed(struct lws *wsi);
/* the client's address: the forwarded one when the peer is in proxies (see
 * netaddr_forwarded_client), else the peer's */
void conn_client(struct lws *wsi, const struct netset *proxies, char *out, size_t len);

/* the "error" word of an HTTP status: "unauthorized" for 401... */
const char *conn_status_error(int status);
/* Refuses a WebSocket upgrade (LWS_CALLBACK_HTTP_CONFIRM_UPGRADE): the whole
 * answer, headers and JSON body {"error","detail"}, in one write, with
 * Connection: close. Returns 1 (what the callback returns to lws), or -1
 * when it could not be written. */
int conn_refuse(struct lws *wsi, int status, const char *error, const char *detail);

#endif
