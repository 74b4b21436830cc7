/*
 * The service core (see hub.h), service thread only unless a function says
 * otherwise.
 *
 * Sending: each session has a ring of references to shared payload buffers
 * (sendq.h). Every event is serialised once per format (the writer makes
 * the /ws and legacy frames; fan-out makes the SSE form once, for the first
 * SSE member), and every member holds a reference to the same bytes.
 * Fan-out appends a reference per member and marks the session dirty;
 * before the event loop waits (hub_flush, a libev prepare watcher, as Redis
 * writes its clients in beforeSleep) each dirty session's frames go to its
 * socket in one sendmsg, the WebSocket header of an event built once in its
 * buffer for every receiver. Only a socket that is full waits for lws's
 * WRITEABLE (and so costs an epoll_ctl); the rest of a frame the socket
 * took only in part is lws's to send, before anything else. That direct
 * path is for WebSockets on plain TCP (no extension is offered); under TLS,
 * and for SSE, each WRITEABLE makes an lws_write() per queued buffer, as a
 * WebSocket text message or as HTTP body bytes, while lws takes them
 * whole. Nothing is written once a close frame went out or came in
 * (output_closed).
 *
 * Two kinds of members. A subscription in mode all must get every event:
 * its frames count against --send-queue, and a member whose queue is full
 * is not waited for: its queue is dropped, it is told it lags (on /ws) and
 * it is closed with 1013, so one slow browser never delays the rest of its
 * group. A subscription that wants the latest state (mode latest, every
 * legacy and SSE one: each frame carries the whole state) gets every event
 * while its reader keeps up; once the reader is behind, a newer event
 * replaces its frame still queued, in place (conflation): it never lags,
 * and its memory is one frame per subscription, plus what was queued for it
 * before it fell behind (at most one loop turn's events). A session is
 * behind when its socket is full (is_behind).
 *
 * Ordering: a subscription remembers the last seq it was given (snapshot,
 * replay or live). Fan-out skips events at or below it, so an event that was
 * committed before a snapshot was read but handed over after it is never
 * sent twice, and replay + live has no gap (the replay is read after the
 * join, on this same thread, and every later commit comes through fan-out).
 *
 * Hand-off: the writer posts each committed batch (hub_jobs_done) and the
 * broker thread each RPC request (hub_rpc) as a task; hub_run, on the
 * service thread, runs them in the order they were posted.
 */
#include "hub.h"

#include <errno.h>
#include <libwebsockets.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include "bridge.h"
#include "config.h"
#include "iplimit.h"
#include "log.h"
#include "metrics.h"
#include "proto.h"
#include "registry.h"
#include "store.h"
#include "writer.h"

#define CLOSE_TRY_AGAIN_LATER 1013
/* a replay page (ws_session.c reads 256 events at a time) may go past the
 * frame bound by this much */
#define REPLAY_SLACK 512
#define FORCE_SLACK 4096     /* replies beyond the bounds: one rx buffer of commands */
/*
 * lws 4.1 writes a close frame for lws_write(..., 4): the value its private
 * LWS_WRITE_CLOSE has (lib/roles/ws/private-lib-roles-ws.h), which the
 * public header leaves out ("handled by lws_close_reason"). Used only to
 * close every connection at once at shutdown (hub_writeable); the Debian 12
 * package (4.1.6) is the one the build and the image pin.
 */
#if LWS_LIBRARY_VERSION_MAJOR != 4 || LWS_LIBRARY_VERSION_MINOR != 1
#error "check GW_LWS_WRITE_CLOSE against this libwebsockets' private LWS_WRITE_CLOSE"
#endif
#define GW_LWS_WRITE_CLOSE ((enum lws_write_protocol)4)

/* fan-out pushes per loop turn: past it, the rest of the committed jobs
 * wait for the next turn, so reads, handshakes and answers are not starved
 * by a batch of 1,024 events to 10,000 watchers (a job is not split) */
#define FANOUT_BUDGET 65536
/* unsent bytes the kernel keeps per direct WebSocket (TCP_NOTSENT_LOWAT) */
#define NOTSENT_LOWAT (128 * 1024)
/* sessions closed since the most open that make hub_tick trim the heap */
#define TRIM_AFTER 1024
/* frames per sendmsg at most */
#define FLUSH_FRAMES 64
/* a close frame's reason: what fits in a control frame after the code */
#define CLOSE_REASON_MAX 123

struct hub {
	const struct gw_config *cfg;
	struct writer *writer;       /* thread-safe API */
	struct store *rstore;        /* read handle */
	struct handoff *tasks;       /* any thread posts; hub_run runs */
	void (*wake)(void *arg);     /* any thread */
	void *wake_arg;
	int (*broker_connected)(void *arg, char *why, size_t len);   /* any thread */
	void *broker_arg;            /* NULL: no broker (or stopped: RPC answers are dropped) */
	struct registry *reg;
	struct gw_session *sessions; /* every open session (WebSocket and SSE) */
	struct ip_table *ips;        /* connections per client address */
	size_t nsessions;
	size_t nsse;                 /* of which SSE streams */
	size_t peak;                 /* most sessions open since the last trim */
	int64_t trimmed;             /* monotonic second of the last trim */
	size_t http_replies;         /* HTTP answers begun, not fully written */
	int draining;
	/* sessions with frames queued in this loop turn, written by hub_flush
	 * before the loop sleeps (each session's dirty is 1 + its index) */
	struct gw_session **dirty;
	unsigned ndirty, capdirty;
	unsigned turn;               /* loop turns (hub_flush runs once in each) */
	/* committed jobs not yet fanned out, in commit order (linked by next) */
	struct gw_job *pending, **pending_tail;
};

static size_t finish_job(struct hub *h, struct gw_job *j);
static void drain_jobs(struct hub *h, size_t budget);

/* ---- life cycle ---- */

struct hub *hub_new(const struct gw_config *cfg)
{
	struct hub *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->cfg = cfg;
	h->pending_tail = &h->pending;
	h->tasks = handoff_new();
	h->reg = registry_new();
	if (!h->tasks || !h->reg) {
		handoff_free(h->tasks);
		registry_free(h->reg);
		free(h);
		return NULL;
	}
	return h;
}

void hub_free(struct hub *h)
{
	if (!h)
		return;
	handoff_free(h->tasks);   /* tasks run with a NULL core: they free only */
	while (h->pending) {
		struct gw_job *j = h->pending;

		h->pending = j->next;
		finish_job(NULL, j);
	}
	registry_free(h->reg);
	free(h->dirty);
	free(h);
}

void hub_set_store(struct hub *h, struct writer *w, struct store *rstore)
{
	h->writer = w;
	h->rstore = rstore;
}

void hub_set_wake(struct hub *h, void (*wake)(void *arg), void *arg)
{
	h->wake = wake;
	h->wake_arg = arg;
}

void hub_set_broker(struct hub *h, int (*connected)(void *arg, char *why, size_t len), void *arg)
{
	h->broker_connected = connected;
	h->broker_arg = arg;
}

/* ---- hand-off (any thread) ---- */

int hub_post(struct hub *h, handoff_fn fn, void *arg)
{
	if (handoff_post(h->tasks, fn, arg))
		return -1;
	if (h->wake)
		h->wake(h->wake_arg);
	return 0;
}

void hub_run(struct hub *h)
{
	handoff_run(h->tasks, h);
	drain_jobs(h, FANOUT_BUDGET);
}

void hub_run_all(struct hub *h)
{
	handoff_run(h->tasks, h);
	drain_jobs(h, 0);
}

static int64_t mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
}

void hub_seen(struct gw_session *s)
{
	s->seen = mono_s();
	s->pinged = 0;
}

/* once thousands of connections went (a redeploy of the pages, a client
 * host that reconnects all at once), the allocator's free pages go back to
 * the system: glibc returns freed memory from the top of the heap only, and
 * connection state freed in between would otherwise stay resident until
 * the next surge. At most every 10 s; a trim walks the heap (milliseconds). */
static void trim_after_churn(struct hub *h, int64_t mono)
{
	if (h->peak < h->nsessions + TRIM_AFTER || mono - h->trimmed < 10)
		return;
#ifdef __GLIBC__
	malloc_trim(0);
#endif
	h->peak = h->nsessions;
	h->trimmed = mono;
}

void hub_tick(struct hub *h)
{
	int64_t now = (int64_t)time(NULL), mono = mono_s();
	int64_t ping = h->cfg->ping_interval;
	struct gw_session *s, *next;

	trim_after_churn(h, mono);
	/* a walk of every session once a second: a few compares each, cheaper
	 * than keeping a timer structure up to date on every connect, close and
	 * frame received (lws 4.1's sorted timer list is what made ten thousand
	 * connections quadratic) */
	for (s = h->sessions; s; s = next) {
		next = s->next;   /* the callbacks may close s, not unlink it */
		if (s->deadline && s->deadline <= now && s->on_deadline) {
			s->deadline = 0;
			s->on_deadline(s);
		}
		if (!s->q.len && s->q.ent)
			sendq_free(&s->q);   /* idle: no ring until its next frame */
		/* the drops below close at once (LWS_TO_KILL_SYNC: we are not
		 * inside a callback of that connection); lws 4.1's asynchronous
		 * kill waits for its own timer, which its libev glue fires late.
		 * Closing s unlinks it; next stays valid. */
		if (s->close_code && !s->output_closed && mono >= s->close_by) {
			s->close_by = INT64_MAX;
			lws_set_timeout(s->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_SYNC);
			continue;
		}
		/* an event stream's reader never sends anything (it cannot
		 * answer a ping): its liveness is the heartbeat's write */
		if (s->output_closed || s->close_code || s->kind == GW_SESS_SSE)
			continue;
		if (mono - s->seen >= 2 * ping) {
			GW_DBG("%s: %s said nothing for %llds, not even to a ping; dropping it",
			       __func__, s->ip, (long long)(2 * ping));
			lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
		} else if (mono - s->seen >= ping && !s->pinged) {
			s->pinged = 1;
			s->ping_due = 1;
			lws_callback_on_writable(s->wsi);
		}
	}
}

/* ---- accessors ---- */

struct hub *hub_of(struct lws *wsi)
{
	return lws_context_user(lws_get_context(wsi));
}

const struct gw_config *hub_cfg(const struct hub *h)
{
	return h->cfg;
}

struct writer *hub_writer(const struct hub *h)
{
	return h->writer;
}

struct store *hub_store(const struct hub *h)
{
	return h->rstore;
}

const char *hub_epoch(const struct hub *h)
{
	return writer_epoch(h->writer);
}

int hub_not_ready(struct hub *h, char *reason, size_t len)
{
	if (h->draining) {
		snprintf(reason, len, "shutting down");
		return 1;
	}
	if (!writer_ready(h->writer)) {
		char why[200];

		writer_why(h->writer, why, sizeof(why));
		snprintf(reason, len, "the store does not accept commits: %s", why);
		return 1;
	}
	if (h->broker_connected && !h->broker_connected(h->broker_arg, reason, len))
		return 1;
	return 0;
}

int hub_draining(const struct hub *h)
{
	return h->draining;
}

int hub_busy(const struct hub *h)
{
	return h->nsessions || h->http_replies;
}

void hub_reply_begin(struct hub *h)
{
	h->http_replies++;
}

void hub_reply_end(struct hub *h)
{
	h->http_replies--;
}

static void gauges(struct hub *h)
{
	GW_SET(ws_connections, (int64_t)(h->nsessions - h->nsse));
	GW_SET(sse_connections, (int64_t)h->nsse);
	GW_SET(groups, (int64_t)registry_group_count(h->reg));
	GW_SET(subscriptions, (int64_t)registry_sub_count(h->reg));
}

/* ---- sessions ---- */

int hub_admit(struct hub *h, const char *ip, char *reason, size_t len)
{
	if (h->nsessions >= (size_t)h->cfg->max_connections) {
		snprintf(reason, len, "too many connections (%ld)", h->cfg->max_connections);
		return 503;
	}
	if (iplimit_count(h->ips, ip) >= (size_t)h->cfg->max_connections_per_ip) {
		snprintf(reason, len, "too many connections from %s (at most %ld)", ip,
			 h->cfg->max_connections_per_ip);
		return 429;
	}
	return 0;
}

int hub_session_open(struct hub *h, struct gw_session *s, struct lws *wsi,
		     const char *ip, int kind)
{
	memset(s, 0, sizeof(*s));
	sendq_init(&s->q);
	s->wsi = wsi;
	s->kind = (unsigned char)kind;
	s->seen = mono_s();
	s->fd = lws_get_socket_fd(wsi);
	/* our own sendmsg only where the bytes on the socket are the frames
	 * themselves: a WebSocket, not under TLS, not inside an h2 stream
	 * (server.c offers no extension: permessage-deflate would transform
	 * the payload) */
	s->direct = kind != GW_SESS_SSE && !h->cfg->tls_cert &&
		    lws_get_network_wsi(wsi) == wsi && s->fd >= 0;
	if (s->direct) {
		/* the kernel takes at most this much unsent data: a reader that
		 * stops is then held by its own queue, whose bounds (or
		 * conflation) decide, instead of by up to tcp_wmem's 4 MB of
		 * per-socket copies */
		int lowat = NOTSENT_LOWAT;

		setsockopt(s->fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof(lowat));
	}
	if (h->cfg->send_buffer > 0) {
		/* what the kernel holds for a reader that does not keep up is
		 * stale by the time it arrives: a small buffer leaves the
		 * waiting to the queue, where newer states replace older ones */
		int n = (int)h->cfg->send_buffer;

		if (s->fd >= 0 && setsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &n, sizeof(n)))
			GW_WARN("%s: cannot set the send buffer of %s's socket", __func__, ip);
	}
	s->ip = "?";
	if (iplimit_add(&h->ips, ip))
		return -1;   /* s->hub stays NULL: nothing to undo at close */
	s->ip = iplimit_key(h->ips, ip);   /* the table's copy, not one per session */
	s->hub = h;
	s->next = h->sessions;
	if (h->sessions)
		h->sessions->prev = s;
	h->sessions = s;
	h->nsessions++;
	if (h->nsessions > h->peak)
		h->peak = h->nsessions;
	h->nsse += kind == GW_SESS_SSE;
	gauges(h);
	return 0;
}

/* the send-queue gauges follow s's queue across a change (it had len0
 * frames of bytes0 bytes before) */
static void queue_gauges(const struct gw_session *s, unsigned len0, size_t bytes0)
{
	GW_ADD(queued_frames, (int64_t)s->q.len - (int64_t)len0);
	GW_ADD(queued_bytes, (int64_t)s->q.bytes - (int64_t)bytes0);
}

/* s has frames for hub_flush to write before the loop sleeps */
static void mark_dirty(struct gw_session *s)
{
	struct hub *h = s->hub;

	if (s->dirty)
		return;
	if (h->ndirty == h->capdirty) {
		unsigned ncap = h->capdirty ? h->capdirty * 2 : 256;
		struct gw_session **nd = realloc(h->dirty, ncap * sizeof(*nd));

		if (!nd) {   /* out of memory: the slower way still works */
			lws_callback_on_writable(s->wsi);
			return;
		}
		h->dirty = nd;
		h->capdirty = ncap;
	}
	h->dirty[h->ndirty++] = s;
	s->dirty = h->ndirty;
}

static void undirty(struct gw_session *s)
{
	struct hub *h = s->hub;
	struct gw_session *last;

	if (!s->dirty)
		return;
	last = h->dirty[--h->ndirty];
	h->dirty[s->dirty - 1] = last;
	last->dirty = s->dirty;
	s->dirty = 0;
}

/* s's queue was empty and has a frame now: a direct session's is written
 * before the loop sleeps, another's at its next WRITEABLE */
static void want_write(struct gw_session *s)
{
	if (s->direct) {
		mark_dirty(s);
	} else {
		lws_callback_on_writable(s->wsi);
		s->asked = s->hub->turn;
	}
}

/* a reader is behind when its frames wait for the socket: a direct
 * session's write was refused or cut short; another's WRITEABLE, asked
 * for, has not come within a whole loop turn (its socket is full, and lws
 * only tells that by not calling) */
static int is_behind(const struct gw_session *s)
{
	return s->behind || (!s->direct && s->q.len && s->hub->turn - s->asked >= 2);
}

static void queue_clear(struct gw_session *s)
{
	unsigned len0 = s->q.len;
	size_t bytes0 = s->q.bytes;

	s->qgrace = 0;
	sendq_clear(&s->q);
	queue_gauges(s, len0, bytes0);
}

void hub_session_close(struct gw_session *s)
{
	struct hub *h = s->hub;

	if (!h)
		return;   /* never opened */
	registry_leave_all(h->reg, &s->subs);
	queue_clear(s);
	undirty(s);
	sendq_free(&s->q);
	if (s->prev)
		s->prev->next = s->next;
	else
		h->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	h->nsessions--;
	h->nsse -= s->kind == GW_SESS_SSE;
	iplimit_del(&h->ips, s->ip);   /* (frees the string s->ip points to) */
	s->ip = "?";
	gauges(h);
	s->hub = NULL;
}

struct reg_sub *hub_join(struct gw_session *s, const char *key)
{
	struct reg_sub *sub = registry_owner_find(s->subs, key);

	if (sub)
		registry_leave(s->hub->reg, sub, &s->subs);   /* re-subscribe: start over */
	sub = registry_join(s->hub->reg, key, s, &s->subs);
	gauges(s->hub);
	return sub;
}

void hub_leave(struct gw_session *s, struct reg_sub *sub)
{
	registry_leave(s->hub->reg, sub, &s->subs);
	gauges(s->hub);
}

size_t hub_presence(struct hub *h, const char *key)
{
	struct reg_group *g = registry_find(h->reg, key);
	size_t n = 0;

	if (g)
		registry_members(g, &n);
	return n;
}

/* ---- sending ---- */

void hub_close_soon(struct gw_session *s, int code, const char *reason)
{
	if (s->close_code)
		return;
	s->close_code = code;
	s->close_reason = reason;
	if (s->rx_paused) {      /* let the peer's close frame in */
		s->rx_paused = 0;
		lws_rx_flow_control(s->wsi, 1);
	}
	lws_callback_on_writable(s->wsi);
	/* a peer that does not read may never make us writable: hub_tick
	 * drops it after 5 s (our own deadline, not lws_set_timeout, whose
	 * sorted list makes closing ten thousand at once quadratic) */
	s->close_by = mono_s() + 5;
}

/* appends a reference. The queue is bounded in frames (--send-queue) and
 * in bytes (--send-queue-bytes; frames vary from a hundred bytes to tens of
 * kilobytes). Replies and replays (which the client asked for) go beyond
 * the bounds, up to a hard bound of one replay page and some slack past
 * them in frames and four times the byte bound (hub_received stops reading
 * a client's commands long before that, and a replay reads its next page
 * only once the queue is empty; the bound is a backstop). Live fan-out may
 * use the room of replayed frames still queued (qgrace): a client that
 * asked for a long replay is not "lagging" for it. Replaceable frames
 * (queue_latest) are bounded by their subscriptions, not here, and do not
 * count. 0 or -1. */
static int queue_push(struct gw_session *s, struct gw_buf *b, int force)
{
	const struct gw_config *cfg = s->hub->cfg;
	unsigned limit = (unsigned)cfg->send_queue;
	size_t room = (size_t)cfg->send_queue_bytes;
	unsigned bounded = sendq_bounded(&s->q), len0 = s->q.len;
	size_t bbytes = sendq_bounded_bytes(&s->q), bytes0 = s->q.bytes;

	if (s->close_code || s->output_closed)
		return -1;
	if (!force) {
		if (bounded >= limit + s->qgrace ||
		    bbytes + b->len > (s->qgrace ? 2 * room : room))
			return -1;
	} else if (bounded >= limit + REPLAY_SLACK + FORCE_SLACK ||
		   bbytes + b->len > 4 * room) {
		return -1;
	}
	if (sendq_push(&s->q, b))
		return -1;
	if (!len0)
		want_write(s);
	queue_gauges(s, len0, bytes0);
	return 0;
}

/* the latest state of sub's submission: replaces sub's live frame while it
 * is still queued (counted as conflated), else appends one. 0 or -1 (s is
 * closing, or out of memory). */
static int queue_latest(struct gw_session *s, struct reg_sub *sub, struct gw_buf *b)
{
	unsigned len0 = s->q.len;
	size_t bytes0 = s->q.bytes;
	int r;

	if (s->close_code || s->output_closed)
		return -1;
	r = sendq_put_latest(&s->q, b, &sub->qslot, is_behind(s));
	if (r < 0)
		return -1;
	if (r == 1)
		GW_INC(conflated);
	if (!len0)
		want_write(s);
	queue_gauges(s, len0, bytes0);
	return 0;
}

static void lagging(struct gw_session *s)
{
	/* every frame it will not get: the queued ones and the one that did
	 * not fit (later ones are counted by hub_send) */
	GW_ADD(drops, s->q.len + 1);
	GW_INC(lagging_closes);
	GW_WARN_RL("%s: %s is not reading (%u frames queued); closing it with 1013",
		__func__, s->ip, s->q.len);
	queue_clear(s);
	if (s->kind == GW_SESS_MUX) {
		static const char msg[] = "{\"op\":\"error\",\"code\":\"lagging\","
			"\"reason\":\"send queue full; reconnect with since to recover\"}";
		struct gw_buf *b = gw_buf_new(msg, sizeof(msg) - 1);
		if (b) {
			queue_push(s, b, 1);
			gw_buf_unref(b);
		}
	}
	hub_close_soon(s, CLOSE_TRY_AGAIN_LATER, "lagging");
}

int hub_send(struct gw_session *s, struct gw_buf *b, int kind)
{
	if (queue_push(s, b, kind != HUB_LIVE)) {
		/* a live frame that does not fit, or replies to a client that
		 * sends commands but does not read the answers */
		if (kind != HUB_REPLAY && !s->close_code && !s->output_closed)
			lagging(s);
		else if (kind == HUB_LIVE)
			GW_INC(drops);   /* for a connection already closing */
		return -1;
	}
	if (kind == HUB_REPLAY)
		s->qgrace++;
	return 0;
}

unsigned hub_queued(const struct gw_session *s)
{
	return s->q.len;
}

void hub_send_str(struct gw_session *s, char *json)
{
	struct gw_buf *b = gw_buf_take_str(json);

	if (!b)
		return;
	hub_send(s, b, HUB_REPLY);
	gw_buf_unref(b);
}

/* n frames left s's queue, written (or, the last of them, handed to lws in
 * part): counted, the replay grace used up, publish-to-send observed for
 * live events, and a client whose replies piled up is read again */
static void written(struct gw_session *s, struct gw_buf *const *b, unsigned n,
		    unsigned len0, size_t bytes0)
{
	uint64_t now = 0;

	for (unsigned i = 0; i < n; i++)
		if (b[i]->t_in_ns) {
			if (!now)
				now = metrics_now_ns();
			metrics_observe(&gw_metrics.publish_to_send_seconds, now - b[i]->t_in_ns);
		}
	queue_gauges(s, len0, bytes0);
	GW_ADD(frames_out, n);
	s->qgrace = s->qgrace > n ? s->qgrace - n : 0;
	if (s->rx_paused && sendq_bounded(&s->q) <= (unsigned)s->hub->cfg->send_queue / 2) {
		s->rx_paused = 0;
		lws_rx_flow_control(s->wsi, 1);
	}
}

/* the WebSocket header of a server text frame carrying b (FIN, no mask: the
 * same bytes for every receiver), built once per buffer in the spare bytes
 * right before its payload, so that header and payload are one piece; its
 * length. lws_write (TLS sessions) writes its own header there, the same
 * bytes. */
static unsigned frame_header(struct gw_buf *b)
{
	unsigned char *p = gw_buf_data(b);
	uint64_t len = b->len;

	if (b->hdr)
		return b->hdr;
	if (len < 126) {
		p[-2] = 0x81;
		p[-1] = (unsigned char)len;
		b->hdr = 2;
	} else if (len < 65536) {
		p[-4] = 0x81;
		p[-3] = 126;
		p[-2] = (unsigned char)(len >> 8);
		p[-1] = (unsigned char)len;
		b->hdr = 4;
	} else {
		p[-10] = 0x81;
		p[-9] = 127;
		for (int i = 0; i < 8; i++)
			p[-8 + i] = (unsigned char)(len >> (56 - 8 * i));
		b->hdr = 10;
	}
	return b->hdr;
}

/*
 * Writes a direct session's queued frames with one sendmsg (of up to
 * FLUSH_FRAMES whole frames, header and payload each one piece), again
 * while the socket takes everything. A frame the socket took only part of
 * is handed, for its rest, to lws as raw bytes (lws_write LWS_WRITE_HTTP:
 * sent, or kept in lws's own buffer, which lws writes before anything else
 * on the connection, a ping or the next WRITEABLE), so the frames on the
 * wire are always whole and in order. When the socket is full the rest
 * waits for WRITEABLE. Only while lws has nothing buffered of its own
 * (lws_partial_buffered), and never after a close frame: the callers check
 * output_closed. 0, or -1 when the connection failed.
 */
static int flush_direct(struct gw_session *s)
{
	while (s->q.len) {
		struct iovec iov[FLUSH_FRAMES];
		struct gw_buf *out[FLUSH_FRAMES];
		struct msghdr mh;
		unsigned n, done = 0, len0 = s->q.len;
		size_t bytes0 = s->q.bytes;
		ssize_t w;
		int failed = 0;

		if (lws_partial_buffered(s->wsi)) {
			s->behind = 1;
			lws_callback_on_writable(s->wsi);   /* lws flushes its part first */
			return 0;
		}
		for (n = 0; n < s->q.len && n < FLUSH_FRAMES; n++) {
			struct gw_buf *b = sendq_at(&s->q, n);
			unsigned h = frame_header(b);

			iov[n].iov_base = gw_buf_data(b) - h;
			iov[n].iov_len = h + b->len;
		}
		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = iov;
		mh.msg_iovlen = n;
		w = sendmsg(s->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				s->behind = 1;
				lws_callback_on_writable(s->wsi);
				return 0;
			}
			return -1;
		}
		/* whole frames leave the queue; so does one cut short, whose
		 * rest lws now owns */
		while (done < n && (size_t)w >= iov[done].iov_len) {
			w -= (ssize_t)iov[done].iov_len;
			out[done++] = sendq_pop(&s->q);
		}
		if (done < n && w > 0) {
			out[done] = sendq_pop(&s->q);
			failed = lws_write(s->wsi, (unsigned char *)iov[done].iov_base + w,
					   iov[done].iov_len - (size_t)w, LWS_WRITE_HTTP) < 0;
			done++;
		}
		written(s, out, done, len0, bytes0);
		for (unsigned i = 0; i < done; i++)
			gw_buf_unref(out[i]);
		if (failed)
			return -1;
		if (done < n || lws_partial_buffered(s->wsi)) {
			s->behind = 1;
			lws_callback_on_writable(s->wsi);   /* the socket is full */
			return 0;
		}
	}
	s->behind = 0;
	/* the close frame, or a replay's next page, need a WRITEABLE turn */
	if (s->close_code || s->on_drain)
		lws_callback_on_writable(s->wsi);
	return 0;
}

void hub_flush(struct hub *h)
{
	h->turn++;
	/* flush_direct queues nothing, so the list only shrinks here */
	while (h->ndirty) {
		struct gw_session *s = h->dirty[--h->ndirty];

		s->dirty = 0;
		if (s->output_closed || !s->q.len)
			continue;
		if (flush_direct(s)) {
			/* the connection failed: nothing more for it, and lws
			 * closes it now (we are in no callback of its; its
			 * CLOSED unlinks s) */
			s->output_closed = 1;
			queue_clear(s);
			lws_set_timeout(s->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_SYNC);
		}
	}
}

int hub_writeable(struct gw_session *s)
{
	unsigned len0 = s->q.len;
	size_t bytes0 = s->q.bytes;
	struct gw_buf *b;
	int n;

	if (s->output_closed)
		return 0;        /* lws finishes the close handshake itself */
	if (s->ping_due && !s->close_code && s->kind != GW_SESS_SSE) {
		/* with a payload: lws 4.1 tells us of a pong only when it
		 * carries one, and a pong echoes the ping's */
		unsigned char ping[LWS_PRE + 2] = { [LWS_PRE] = 's', [LWS_PRE + 1] = 'g' };

		s->ping_due = 0;
		if (lws_write(s->wsi, ping + LWS_PRE, 2, LWS_WRITE_PING) < 0)
			return -1;
		if (s->q.len)
			lws_callback_on_writable(s->wsi);
		return 0;
	}
	if (!s->q.len && s->close_code) {
		const char *reason = s->close_reason ? s->close_reason : "";
		size_t rlen = strnlen(reason, CLOSE_REASON_MAX);

		/* an SSE stream just ends: HTTP has no close code */
		if (s->kind == GW_SESS_SSE)
			return -1;
		if (s->close_at_once) {
			/* the close frame written here, then the connection
			 * dropped: with no close reason left for it, lws closes
			 * at once instead of arming a timer for the peer's
			 * answer, and arming ten thousand of those in lws 4.1's
			 * sorted timer list costs seconds of CPU at shutdown */
			unsigned char frame[LWS_PRE + 2 + CLOSE_REASON_MAX];

			frame[LWS_PRE] = (unsigned char)(s->close_code >> 8);
			frame[LWS_PRE + 1] = (unsigned char)(s->close_code & 0xff);
			memcpy(frame + LWS_PRE + 2, reason, rlen);
			lws_write(s->wsi, frame + LWS_PRE, rlen + 2, GW_LWS_WRITE_CLOSE);
			s->output_closed = 1;
			return -1;
		}
		lws_close_reason(s->wsi, (enum lws_close_status)s->close_code,
				 (unsigned char *)(uintptr_t)reason, rlen);
		return -1;
	}
	if (!s->q.len) {
		s->behind = 0;   /* lws wrote what it held for us */
		/* asked to refill (a replay's next page, or one that its
		 * filter emptied) */
		if (s->on_drain && !s->close_code) {
			s->on_drain(s);
			if (s->q.len && !s->direct)
				want_write(s);
		}
		return 0;
	}
	if (s->direct) {
		undirty(s);      /* written now */
		return flush_direct(s);
	}
	/* TLS and SSE: an lws_write per frame while lws takes them whole; lws
	 * keeps what the socket does not take and sends it before anything
	 * else, and then the rest waits for the next WRITEABLE: the reader is
	 * behind */
	while (s->q.len && !lws_partial_buffered(s->wsi)) {
		len0 = s->q.len;
		bytes0 = s->q.bytes;
		b = sendq_pop(&s->q);
		n = lws_write(s->wsi, gw_buf_data(b), b->len,
			      s->kind == GW_SESS_SSE ? LWS_WRITE_HTTP : LWS_WRITE_TEXT);
		if (n >= 0)
			written(s, &b, 1, len0, bytes0);
		else
			queue_gauges(s, len0, bytes0);
		gw_buf_unref(b);
		if (n < 0)
			return -1;
	}
	s->behind = lws_partial_buffered(s->wsi);
	if (!s->q.len && s->on_drain && !s->close_code)
		s->on_drain(s);
	if (s->q.len || s->close_code)
		want_write(s);   /* not direct here: asks lws, notes the turn */
	return 0;
}

void hub_output_closed(struct gw_session *s)
{
	if (!s->hub || s->output_closed)
		return;
	s->output_closed = 1;
	queue_clear(s);
	registry_leave_all(s->hub->reg, &s->subs);
	gauges(s->hub);
}

void hub_received(struct gw_session *s)
{
	/* the client sets the pace: while its replies pile up, read no more
	 * of its commands (hub_writeable resumes), so pipelining many commands
	 * costs it waiting, not us memory */
	if (!s->rx_paused && !s->close_code &&
	    sendq_bounded(&s->q) >= (unsigned)s->hub->cfg->send_queue) {
		s->rx_paused = 1;
		lws_rx_flow_control(s->wsi, 0);
	}
}

void hub_drain(struct hub *h)
{
	h->draining = 1;
	for (struct gw_session *s = h->sessions; s; s = s->next) {
		queue_clear(s);
		s->close_at_once = 1;
		hub_close_soon(s, LWS_CLOSE_STATUS_GOINGAWAY, "server shutting down");
	}
}

/* ---- the finished-job loop ---- */

/* the SSE form of a committed event, "id: <epoch>:<seq>" and the /ws event
 * in data:; NULL when out of memory */
static struct gw_buf *sse_form(struct hub *h, const struct gw_job *j)
{
	char id[GW_EVENT_ID_MAX];

	proto_event_id(hub_epoch(h), j->seq, id, sizeof(id));
	return gw_buf_take_str(proto_encode_sse(id, (const char *)gw_buf_data(j->event),
						j->event->len));
}

/* one committed event to every watcher of its submission: each format is
 * serialised once per event (the SSE form on demand), never per member;
 * the number of members looked at */
static size_t fanout(struct hub *h, const struct gw_job *j)
{
	struct reg_group *g = registry_find(h->reg, j->key);
	struct reg_sub *const *m;
	struct gw_buf *sse = NULL;
	size_t n;

	GW_INC(events);
	if (!g)
		return 0;
	/* the state late joiners of a legacy socket get (ws_session.c), with
	 * the time of its event at the latest: the job's arrival */
	registry_state_set(g, j->legacy, j->seq,
			   (int64_t)time(NULL) -
			   (int64_t)((metrics_now_ns() - j->t_in_ns) / 1000000000u) - 1);
	m = registry_members(g, &n);
	for (size_t i = 0; i < n; i++) {
		struct reg_sub *sub = m[i];
		struct gw_session *s = sub->owner;
		struct gw_buf *b = j->event;

		if (sub->replaying || sub->last_seq >= j->seq)
			continue;    /* replaying from the store, or already in its snapshot or replay */
		sub->last_seq = j->seq;
		if (sub->filter && !(sub->filter & (1u << j->type)))
			continue;
		if (sub->legacy) {
			b = j->legacy;
		} else if (s->kind == GW_SESS_SSE) {
			if (!sse && !(sse = sse_form(h, j))) {
				lagging(s);   /* out of memory: it resumes with Last-Event-ID */
				continue;
			}
			b = sse;
		}
		if (sub->legacy || sub->mode == GW_MODE_LATEST) {
			if (queue_latest(s, sub, b) && !s->close_code && !s->output_closed)
				lagging(s);
		} else {
			hub_send(s, b, HUB_LIVE);
		}
	}
	gw_buf_unref(sse);
	return n;
}

/* fan-out of one applied job, then its own completion (an HTTP answer...);
 * with a NULL core (freed at shutdown, after every connection closed) the
 * job is only completed and freed. The number of pushes. */
static size_t finish_job(struct hub *h, struct gw_job *j)
{
	size_t n = 0;

	if (h && j->result == 0)
		n = fanout(h, j);   /* publish-to-send is observed as each frame is written */
	if (j->done)
		j->done(j, j->done_arg);
	writer_job_free(j);
	return n;
}

/* service thread: works through the committed jobs, in commit order, up to
 * budget pushes (0: all of them); asks for another turn when some are left */
static void drain_jobs(struct hub *h, size_t budget)
{
	size_t pushes = 0;

	while (h->pending && (!budget || pushes < budget)) {
		struct gw_job *j = h->pending;

		h->pending = j->next;
		if (!h->pending)
			h->pending_tail = &h->pending;
		pushes += finish_job(h, j);
	}
	if (h->pending && h->wake)
		h->wake(h->wake_arg);
}

/* service thread (a task posted by hub_jobs_done): the batch joins the
 * committed jobs waiting for fan-out */
static void finish_batch(void *ctx, void *arg)
{
	struct hub *h = ctx;
	struct gw_job *j = arg;

	if (!h) {
		while (j) {
			struct gw_job *next = j->next;
			finish_job(NULL, j);
			j = next;
		}
		return;
	}
	*h->pending_tail = j;
	while (*h->pending_tail)
		h->pending_tail = &(*h->pending_tail)->next;
}

void hub_jobs_done(void *hub, struct gw_job *batch)
{
	struct hub *h = hub;

	if (hub_post(h, finish_batch, batch) == 0)
		return;
	/* out of memory for the task node: finishing here would touch the
	 * service thread's state from the writer thread, so keep trying; the
	 * node is 24 bytes and the batch already holds far more */
	GW_ERR("%s: cannot hand a finished batch to the service thread; retrying", __func__);
	while (hub_post(h, finish_batch, batch))
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
}

/* ---- RPC ---- */

/* service thread (a task posted by hub_rpc): the answer from the registry
 * or the read store. A NULL core (freed), or a broker already stopped,
 * drops the request. */
static void rpc_answer(void *ctx, void *arg)
{
	struct hub *h = ctx;
	struct gw_rpc *q = arg;
	json_t *doc = NULL;
	char *body;

	if (!h || !h->broker_arg) {
		q->discard(q);
		return;
	}
	if (q->method == GW_RPC_PRESENCE) {
		doc = json_pack("{s:s, s:I}", "submission", q->key, "presence",
				(json_int_t)hub_presence(h, q->key));
	} else {
		struct gw_state st;

		memset(&st, 0, sizeof(st));
		if (store_get_state(h->rstore, q->key, &st) == 0)
			doc = proto_state_json(&st, hub_epoch(h));
		proto_state_clear(&st);
	}
	body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	if (!body) {
		doc = json_pack("{s:s, s:s}", "error", "unavailable", "detail",
				"the store cannot be read");
		body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
		json_decref(doc);
	}
	q->reply(q, body);
}

void hub_rpc(void *hub, struct gw_rpc *req)
{
	if (hub_post(hub, rpc_answer, req))
		req->reply(req, NULL);   /* answered "unavailable" by the bridge */
}
