/*
 * The service core: everything the service thread owns, behind one API.
 *
 * It keeps the registry (submission -> watching sessions), every WebSocket
 * session's bounded send queue, the finished-job loop (fan-out of committed
 * events, then each job's own completion callback), RPC answers, readiness
 * and the shutdown state. Other threads reach it in one way only: a task
 * posted with hub_post() (handoff.h), after which the injected wake function
 * (lws_cancel_service) makes the service thread run hub_run(). The writer's
 * finished batches and the broker's RPC requests arrive that way.
 *
 * The core knows no adapter: it does not know HTTP from WebSocket from AMQP.
 * A finished job carries its own completion callback; a session is a struct
 * an adapter (WebSocket, Server-Sent Events) embeds at the start of its
 * per-session data, and its kind says how its frames are written.
 *
 * Latest-state delivery: a subscription in mode latest (and every legacy
 * and SSE one, whose frames each carry the whole state) gets every event
 * while its reader keeps up; once the reader is behind, a newer event of
 * its submission replaces the frame still queued where it stands
 * (sendq.h), so a slow reader is never closed for being slow and its
 * memory is bounded by its subscriptions.
 */
#ifndef GW_HUB_H
#define GW_HUB_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "handoff.h"
#include "netaddr.h"
#include "sendq.h"

struct lws;
struct hub;
struct gw_config;
struct writer;
struct store;
struct gw_job;
struct gw_rpc;
struct reg_sub;

/* what a session is, which decides how its frames are written */
enum gw_session_kind {
	GW_SESS_LEGACY = 0,      /* WebSocket /ws/submissions/{key}/: legacy frames */
	GW_SESS_MUX = 1,         /* WebSocket /ws: event frames */
	GW_SESS_SSE = 2,         /* GET /sse/submissions/{key}: text/event-stream */
};

/*
 * One connection as the core sees it. An adapter embeds it first in its
 * per-session data (lws allocates and frees that memory) and hands it to
 * hub_session_open when the connection is established (ESTABLISHED, or the
 * SSE request) and to hub_session_close when it closes; the fields are the
 * core's, adapters only read kind and ip.
 */
struct gw_session {
	struct lws *wsi;
	struct hub *hub;
	struct gw_session *prev, *next;   /* the hub's list of open sessions */
	unsigned char kind;      /* enum gw_session_kind */
	unsigned char direct;    /* frames go to the socket with our own sendmsg
				  * (a WebSocket on plain TCP, no extension) */
	unsigned char output_closed; /* a close frame went out or came in: no more data */
	unsigned char rx_paused; /* we stopped reading its commands until its queue drains */
	unsigned char ping_due;  /* a ping goes out at the next WRITEABLE */
	unsigned char pinged;    /* one went out since the peer was last seen */
	unsigned char behind;    /* its socket is full, frames wait for
				  * WRITEABLE (latest-state frames are then
				  * replaced, not appended) */
	unsigned char close_at_once; /* shutdown: our close frame, then the TCP
				  * close (no waiting for the peer's answer) */
	int fd;                  /* the socket (direct sessions write to it) */
	unsigned asked;          /* not direct: the core's loop turn when it last
				  * asked lws for WRITEABLE with frames queued */
	const char *ip;          /* the client's address (forwarded through a
				  * trusted proxy): the core's per-address count
				  * holds the string while the session is open */
	struct reg_sub *subs;    /* this session's subscriptions */
	struct sendq q;          /* frames to write, oldest first */
	unsigned qgrace;         /* replayed frames still queued (an upper bound):
				  * fan-out may exceed --send-queue by this many */
	unsigned dirty;          /* 1 + its index in the core's list of sessions
				  * with frames to write before the loop sleeps; 0: none */
	int close_code;          /* non-zero: close once WRITEABLE */
	const char *close_reason;/* a string constant (hub_close_soon) */
	int64_t seen;            /* monotonic second anything last came from the peer */
	int64_t close_by;        /* monotonic second: closing, dropped if still open then */
	/* the adapter's deadline: hub_tick calls on_deadline(s) once the wall
	 * clock (unix seconds) reaches it; 0: none */
	int64_t deadline;
	void (*on_deadline)(struct gw_session *s);
	/* the adapter's refill: called when the queue has been written empty
	 * (a paged replay reads its next page there); NULL: none */
	void (*on_drain)(struct gw_session *s);
};

/* how a frame enters a session's queue (hub_send) */
enum hub_send_kind {
	HUB_LIVE = 0,            /* fan-out: bounded by --send-queue */
	HUB_REPLY,               /* an answer to the client's own command */
	HUB_REPLAY,              /* an event the client asked to be replayed */
};

/* ---- life cycle (main thread) ---- */

/* a core for cfg; NULL when out of memory */
struct hub *hub_new(const struct gw_config *cfg);
/* the writer (whose done callback is hub_jobs_done) and the read handle,
 * neither owned; before the service loop runs */
void hub_set_store(struct hub *h, struct writer *w, struct store *rstore);
/* after the loop and every other thread stopped: runs what is still posted
 * (tasks get a NULL core, so they only free) and frees the core */
void hub_free(struct hub *h);
/* wake: called after a task is posted, from any thread (lws_cancel_service) */
void hub_set_wake(struct hub *h, void (*wake)(void *arg), void *arg);
/* broker: readiness asks it (any thread; 1 when connected, else 0 and why) */
void hub_set_broker(struct hub *h, int (*connected)(void *arg, char *why, size_t len), void *arg);

/* ---- other threads ---- */

/* any thread: runs fn(hub, arg) on the service thread soon; 0 or -1 (then
 * fn is not called and arg is still the caller's) */
int hub_post(struct hub *h, handoff_fn fn, void *arg);
/* writer thread (the writer's done callback): a committed batch, linked by
 * next, comes back for fan-out and completion */
void hub_jobs_done(void *hub, struct gw_job *batch);
/* broker thread (the bridge's RPC callback): answered on the service thread */
void hub_rpc(void *hub, struct gw_rpc *req);

/* ---- service thread ---- */

/* the core of a connection's context */
struct hub *hub_of(struct lws *wsi);
/* runs every posted task (finished jobs, RPC requests), then fans out the
 * committed jobs up to a budget of pushes per loop turn (the rest wait for
 * the next turn, which it asks for) */
void hub_run(struct hub *h);
/* the same without a budget: everything, at shutdown */
void hub_run_all(struct hub *h);
/* once a second: sessions whose deadline passed get on_deadline (their
 * deadline is cleared first; the callback may set a new one); a session
 * silent for --ping-interval seconds is pinged, one silent for twice that
 * is dropped */
void hub_tick(struct hub *h);
/* RECEIVE, RECEIVE_PONG: the peer is alive */
void hub_seen(struct gw_session *s);
const struct gw_config *hub_cfg(const struct hub *h);
struct writer *hub_writer(const struct hub *h);
/* the read handle (snapshots, replays, the read API) */
struct store *hub_store(const struct hub *h);
const char *hub_epoch(const struct hub *h);
/* 1 and a reason when the gateway cannot serve (store, broker, stopping) */
int hub_not_ready(struct hub *h, char *reason, size_t len);
/* shutdown began: refuse new work */
int hub_draining(const struct hub *h);
/* begins the shutdown: no new work; every session closes with 1001 */
void hub_drain(struct hub *h);
/* 1 while sessions are open or HTTP answers are being written */
int hub_busy(const struct hub *h);
/* an HTTP answer begun / finished (drained at stop) */
void hub_reply_begin(struct hub *h);
void hub_reply_end(struct hub *h);

/* 0 when one more connection (WebSocket or SSE) from ip is within the
 * limits, else an HTTP status (503, 429) and a reason */
int hub_admit(struct hub *h, const char *ip, char *reason, size_t len);
/* ESTABLISHED (or an SSE request accepted): registers s (zeroed here) for
 * wsi, of kind (enum gw_session_kind: 0 legacy, 1 /ws, 2 SSE); 0 or -1 */
int hub_session_open(struct hub *h, struct gw_session *s, struct lws *wsi,
		     const char *ip, int kind);
/* CLOSED: leaves every group and frees what s holds */
void hub_session_close(struct gw_session *s);
/* s watches key from now on (a new subscription, or NULL when out of
 * memory); an existing one of s for key is replaced */
struct reg_sub *hub_join(struct gw_session *s, const char *key);
void hub_leave(struct gw_session *s, struct reg_sub *sub);
/* number of sessions watching key (presence) */
size_t hub_presence(struct hub *h, const char *key);

/* queues a reference to b for s; 0, or -1 when it does not fit (a LIVE
 * frame makes s a lagging reader, closed with 1013) or s is closing */
int hub_send(struct gw_session *s, struct gw_buf *b, int kind);
/* frames queued for s, not yet written */
unsigned hub_queued(const struct gw_session *s);
/* a reply made for s only; takes a malloc'd string (NULL: out of memory) */
void hub_send_str(struct gw_session *s, char *json);
/* closes s with code once its queue is written (5 s at most); reason is a
 * string constant of at most 123 bytes (it is kept, not copied) */
void hub_close_soon(struct gw_session *s, int code, const char *reason);
/* WRITEABLE: writes what is queued: a direct session's frames in one
 * sendmsg, otherwise an lws_write per frame (a WebSocket message, or HTTP
 * body bytes for SSE) while lws takes them whole; -1 to close the
 * connection */
int hub_writeable(struct gw_session *s);
/* before the event loop waits (libev prepare): writes the frames queued in
 * this loop turn, every direct session's in one sendmsg, without asking lws
 * for WRITEABLE (and so without an epoll_ctl) unless the socket is full */
void hub_flush(struct hub *h);
/* lws is closing the connection itself (it sent a close frame for a
 * protocol error, or answers the peer's close): nothing more may be written
 * after that frame (RFC 6455 5.5.1), so the queue is dropped and s leaves
 * its groups at once */
void hub_output_closed(struct gw_session *s);
/* after a client message was handled: stops reading from a client whose
 * replies pile up (hub_writeable reads on once half of them are out) */
void hub_received(struct gw_session *s);

#endif
