/*
 * The lws context and the service loop (server.c): creates the context on a
 * libev loop with the core as its user data, dispatches lws callbacks to the
 * adapters, runs the loop, drains and destroys it.
 */
#ifndef GW_SERVER_H
#define GW_SERVER_H

#include <signal.h>

struct hub;

/* main thread: listens on --listen (https with --tls-cert); 0 or -1 */
int server_start(struct hub *hub);
/* main thread, which becomes the service thread: runs the event loop until
 * SIGINT/SIGTERM set *stop */
void server_run(volatile sig_atomic_t *stop);
/* any thread: wakes the service thread, which then runs the core's posted
 * tasks (lws_cancel_service); a no-op before start and after stop */
void server_wake(void *arg);
/* main thread, at shutdown: services the loop until no session or HTTP
 * answer is left, or ms passed */
void server_drain(struct hub *hub, int ms);
/* main thread: destroys the context (every connection closes) */
void server_stop(void);

#endif
