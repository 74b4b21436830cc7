/*
 * The gateway's shared state and the calls between its service-thread
 * modules (server.c, ws_session.c, http_api.c). Everything in struct gw_app
 * belongs to the service thread except where a field says otherwise.
 */
#ifndef GW_GATEWAY_H
#define GW_GATEWAY_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "handoff.h"
#include "registry.h"
#include "writer.h"

struct lws;
struct lws_context;
struct store;
struct bridge;
struct gw_session;
struct ip_table;

struct gw_app {
	const struct gw_config *cfg;
	struct lws_context *ctx;     /* lws_cancel_service is the only call other threads make on it */
	struct writer *writer;       /* thread-safe API */
	struct handoff *tasks;       /* any thread posts; service thread runs */
	struct bridge *bridge;       /* NULL without --amqp; its API says which calls are thread-safe */
	struct store *rstore;        /* read handle, service thread only */
	struct registry *reg;
	struct gw_session *sessions; /* every open WebSocket session */
	struct ip_table *ips;        /* connections per peer address */
	size_t nsessions;
	size_t http_replies;         /* HTTP answers begun, not fully written: drained at stop */
	int draining;                /* shutdown began: refuse new work */
	int open_mode;               /* no --auth-secret: browsers unauthenticated */
};

/* service thread: the app of a connection's context */
struct gw_app *gw_app_of(struct lws *wsi);

/* any thread: runs fn(app, arg) on the service thread soon; 0 or -1 */
int gw_app_post(struct gw_app *app, handoff_fn fn, void *arg);

/* ---- server.c ---- */
/* main thread */
int server_start(struct gw_app *app);
/* main thread: runs the event loop until *stop is set */
void server_run(struct gw_app *app, volatile sig_atomic_t *stop);
/* any thread: wakes the service thread (lws_cancel_service); arg is the app */
void server_wake(void *arg);
/* main thread, at shutdown: services the loop until every WebSocket has
 * closed or ms passed */
void server_drain(struct gw_app *app, int ms);
/* main thread: destroys the context */
void server_stop(struct gw_app *app);
/* service thread: the whole publish path after commit (fan-out, replies) */
void server_finish_jobs(struct gw_app *app);
/* service thread: 1 and a reason when not ready */
int server_not_ready(struct gw_app *app, char *reason, size_t len);

/* ---- ws_session.c ---- */
/* service thread: the lws callback for WebSocket reasons */
int ws_callback(struct lws *wsi, int reason, void *user, void *in, size_t len);
/* service thread: deliver one committed event to the group of key */
void ws_fanout(struct gw_app *app, const struct gw_job *job);
/* service thread: close every session with 1001 (shutdown) */
void ws_close_all(struct gw_app *app);
/* service thread: a job from the legacy socket finished */
void ws_publish_done(struct gw_app *app, struct gw_job *job);
/* service thread: called for the upgrade request before it is accepted;
 * returns 0 to accept, or an HTTP status to refuse with (401, 403, 404...) and
 * fills reason */
int ws_check_upgrade(struct gw_app *app, struct lws *wsi, char *reason, size_t len);
/* number of browsers watching key (presence RPC) */
size_t ws_presence(struct gw_app *app, const char *key);

/* ---- http_api.c ---- */
int http_callback(struct lws *wsi, int reason, void *user, void *in, size_t len);
/* service thread: an HTTP publish finished */
void http_publish_done(struct gw_app *app, struct gw_job *job);
/* bytes of per-session data a WebSocket connection needs */
size_t ws_pss_size(void);
/* bytes of per-session data an HTTP connection needs */
size_t http_pss_size(void);

#endif
