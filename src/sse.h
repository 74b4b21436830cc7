/*
 * The Server-Sent Events adapter (sse.c): GET /sse/submissions/{key}, a
 * text/event-stream of the submission's snapshot (or the events missed
 * since Last-Event-ID), then its live events, as a session of the core.
 * Service thread only.
 */
#ifndef GW_SSE_H
#define GW_SSE_H

#include <stddef.h>

struct lws;

/* bytes of per-session data an SSE stream needs */
size_t sse_pss_size(void);
/* 1 when an HTTP request for path belongs to this adapter (under /sse/) */
int sse_path(const char *path);
/* the lws callback for the HTTP reasons of a request sse_path claimed
 * (LWS_CALLBACK_HTTP, HTTP_WRITEABLE, TIMER, CLOSED_HTTP...) */
int sse_callback(struct lws *wsi, int reason, void *user, void *in, size_t len);

#endif
