/*
 * The WebSocket adapter (ws_session.c): the lws callbacks of /ws and the
 * legacy /ws/submissions/{key}/. Service thread only.
 */
#ifndef GW_WS_SESSION_H
#define GW_WS_SESSION_H

#include <stddef.h>

struct lws;

/* bytes of per-session data a WebSocket connection needs */
size_t ws_pss_size(void);
/* the lws callback for the WebSocket reasons (ESTABLISHED, RECEIVE,
 * SERVER_WRITEABLE, CLOSED...) */
int ws_callback(struct lws *wsi, int reason, void *user, void *in, size_t len);
/* LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: 0 accepts; otherwise the refusal
 * (401, 403, 404, 429, 503 with a JSON reason) is written and non-zero
 * returned, as lws expects */
int ws_confirm_upgrade(struct lws *wsi);

#endif
