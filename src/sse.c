/*
 * Server-Sent Events, service thread only: GET /sse/submissions/{key}
 * answers text/event-stream for browsers (EventSource) where WebSockets
 * cannot go, with the same frames as /ws.
 *
 * The request is checked like a WebSocket upgrade (limits with hub_admit,
 * Origin, browser token from the query, a bearer header or the cookie),
 * then the headers go out at once (no Content-Length: the body ends when
 * the connection closes), the request's header table goes back to lws (an
 * event stream holds none, or lws would drop it as an "excessive hold"),
 * and the stream becomes a session of the core with one subscription in
 * mode latest: fan-out reaches it like any WebSocket, with the SSE form of
 * each event made once per event and shared (hub.c), and a reader that
 * falls behind gets the latest state instead of a growing queue.
 *
 * Every event carries "id: <epoch>:<seq>". A reconnect (EventSource sends
 * Last-Event-ID by itself; a first connection may give ?last_event_id=)
 * resumes like /ws since: the missed events in order, without gap or
 * duplicate, when the store still holds them, else a snapshot. A replay is
 * read a page at a time, as on /ws. The first bytes are a retry: hint with
 * jitter, so that a crowd of pages does not reconnect in step after a
 * restart.
 *
 * Every --sse-heartbeat seconds (the session's deadline in the core's
 * once-a-second tick: lws 4.1's own timers are unreliable on libev) an
 * idle stream gets a comment, which keeps proxies from closing it. lws does
 * not read an HTTP connection while its answer is being written, so a
 * reader that went away shows itself only then: the heartbeat looks
 * (MSG_PEEK) for its end of stream. The same deadline ends the stream when
 * the token expires (at exp plus the leeway, as WebSockets).
 */
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "auth.h"
#include "config.h"
#include "conn.h"
#include "hub.h"
#include "log.h"
#include "metrics.h"
#include "proto.h"
#include "registry.h"
#include "reqparse.h"
#include "sse.h"
#include "store.h"

#define PREFIX "/sse/"
#define REPLAY_PAGE 256      /* stored events read per turn of a replay */
#define RETRY_MIN_MS 1000    /* the reconnect hint: 1 to 3 s, spread evenly */
#define RETRY_SPREAD_MS 2000
#define END_STREAM 1000      /* hub_close_soon's code, never sent: a stream just ends */

/* lws's per-session data of an SSE request */
struct sse_pss {
	struct gw_session s;     /* the core's part; first; s.hub set while open */
	char *key;               /* the streamed submission; malloc'd (the
				  * per-session data of every connection is as
				  * large as the largest adapter's: kept small) */
	struct gw_claims *claims;/* NULL: open mode; freed at close */
};

size_t sse_pss_size(void)
{
	return sizeof(struct sse_pss);
}

int sse_path(const char *path)
{
	return path && !strncmp(path, PREFIX, sizeof(PREFIX) - 1);
}

/* "/sse/submissions/{key}" with an optional trailing slash -> key; 0 or -1 */
static int stream_key(const char *path, char *key)
{
	return reqparse_key_path(path, PREFIX "submissions/", key);
}

/* where the reader stands: the Last-Event-ID header (a reconnecting
 * EventSource), else ?last_event_id= (a client that knows its position
 * from elsewhere, e.g. a WebSocket it fell back from). 1 and the position,
 * or 0 (none, or not an id of ours: the reader gets a snapshot) */
static int resume_from(struct lws *wsi, char *epoch, size_t elen, uint64_t *seq)
{
	char v[GW_EVENT_ID_MAX + 32];
	const char *q;

	if (!conn_header_custom(wsi, "last-event-id:", v, sizeof(v)) && *v)
		return !proto_parse_event_id(v, epoch, elen, seq);
	/* lws 4.1 returns a pointer past the name inside v */
	q = lws_get_urlarg_by_name(wsi, "last_event_id=", v, (int)sizeof(v));
	return q && *q && !proto_parse_event_id(q, epoch, elen, seq);
}

static int add_header(struct lws *wsi, const char *name, const char *value,
		      unsigned char **p, unsigned char *end)
{
	return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
					   (const unsigned char *)value, (int)strlen(value), p, end);
}

/* 200 text/event-stream without a length: lws adds Connection: close, and
 * the stream ends when either side closes. origin: the request's allowed
 * Origin, echoed for a cross-origin EventSource (no credentials), or "" */
static int write_head(struct lws *wsi, const char *origin)
{
	unsigned char buf[LWS_PRE + 1024], *start = buf + LWS_PRE, *p = start,
		      *end = buf + sizeof(buf) - 1;

	if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK, "text/event-stream",
					LWS_ILLEGAL_HTTP_CONTENT_LEN, &p, end) ||
	    add_header(wsi, "cache-control:", "no-store", &p, end) ||
	    add_header(wsi, "x-content-type-options:", "nosniff", &p, end) ||
	    /* nginx: pass each event on as it comes, whatever its buffering */
	    add_header(wsi, "x-accel-buffering:", "no", &p, end))
		return -1;
	if (*origin && (add_header(wsi, "access-control-allow-origin:", origin, &p, end) ||
			add_header(wsi, "vary:", "Origin", &p, end)))
		return -1;
	return lws_finalize_write_http_header(wsi, start, &p, end) ? -1 : 0;
}

static int refuse(struct lws *wsi, const char *ip, int status, const char *why)
{
	GW_INC(ws_refused);
	GW_WARN_RL("%s: refused an event stream to %s: %d %s", __func__, ip, status, why);
	return conn_refuse(wsi, status, conn_status_error(status), why);
}

/* queues the SSE form of one frame (a /ws event or snapshot); 0 or -1 */
static int send_frame(struct gw_session *s, const char *epoch, uint64_t seq,
		      const char *json, size_t len, int kind)
{
	char id[GW_EVENT_ID_MAX];
	struct gw_buf *b;
	int r;

	proto_event_id(epoch, seq, id, sizeof(id));
	b = gw_buf_take_str(proto_encode_sse(id, json, len));
	if (!b)
		return -1;
	r = hub_send(s, b, kind);
	gw_buf_unref(b);
	return r;
}

/* the snapshot of st as the stream's next frame; 0 or -1 */
static int send_snapshot(struct gw_session *s, const struct gw_state *st)
{
	const char *epoch = hub_epoch(s->hub);
	char *snap = proto_encode_snapshot(st, epoch);
	int r = snap ? send_frame(s, epoch, st->seq, snap, strlen(snap), HUB_REPLY) : -1;

	free(snap);
	return r;
}

/*
 * Replays go as on /ws (ws_session.c): a page of stored events at a time,
 * the next once the queue has drained (the core's on_drain); fan-out leaves
 * the subscription alone meanwhile and takes over once a page comes back
 * short; a page that does not continue the last one exactly (events pruned
 * meanwhile) ends the replay with a snapshot.
 */
struct replay {
	struct gw_session *s;
	const char *epoch;
	uint64_t next;           /* the seq the next stored event must have */
	int gap, failed;
};

/* service thread: one stored event of a replay page */
static int replay_one(void *arg, uint64_t seq, int type, const char *json, size_t len)
{
	struct replay *r = arg;

	(void)type;
	if (seq != r->next) {
		r->gap = 1;
		return 1;
	}
	r->next = seq + 1;
	if (send_frame(r->s, r->epoch, seq, json, len, HUB_REPLAY)) {
		r->failed = 1;
		return 1;
	}
	return 0;
}

/* the current state instead of (the rest of) a replay */
static void replay_to_snapshot(struct sse_pss *p, struct reg_sub *sub)
{
	struct gw_state st;

	memset(&st, 0, sizeof(st));
	sub->replaying = 0;
	if (store_get_state(hub_store(p->s.hub), p->key, &st) || send_snapshot(&p->s, &st))
		hub_close_soon(&p->s, END_STREAM, "the store cannot be read");
	else
		sub->last_seq = st.seq;
	proto_state_clear(&st);
}

/* service thread: the next page of sub's replay */
static void replay_page(struct sse_pss *p, struct reg_sub *sub)
{
	struct replay r = { &p->s, hub_epoch(p->s.hub), sub->last_seq + 1, 0, 0 };
	uint64_t oldest;
	int n = store_events_since(hub_store(p->s.hub), p->key, sub->last_seq, REPLAY_PAGE,
				   replay_one, &r, &oldest);

	if (n < 0 || r.gap || r.failed) {
		GW_DBG("%s: replay of %s for %s ends with a snapshot (%s)", __func__, p->key,
		       p->s.ip, n < 0 ? "store error" : r.gap ? "events pruned" : "queue full");
		replay_to_snapshot(p, sub);
		return;
	}
	sub->last_seq = r.next - 1;
	if (n < REPLAY_PAGE)
		sub->replaying = 0;   /* caught up with the store: live from here */
}

/* the core's on_drain: the queue is empty; one more page */
static void replay_more(struct gw_session *s)
{
	struct sse_pss *p = (struct sse_pss *)s;   /* s is its first member */

	if (s->subs && s->subs->replaying)
		replay_page(p, s->subs);
}

/* After the join: what the reader missed since (since_epoch, from) when it
 * can be replayed exactly (same epoch, every missed event still stored),
 * else a snapshot; then live events. Replay + live has no gap and no
 * duplicate for the same reasons as on /ws. */
static void catch_up(struct sse_pss *p, struct reg_sub *sub, struct gw_state *st,
		     int has_since, const char *since_epoch, uint64_t from)
{
	sub->last_seq = st->seq;
	if (has_since && !strcmp(since_epoch, hub_epoch(p->s.hub)) && from <= st->seq) {
		if (from == st->seq)
			return;          /* nothing missed */
		sub->replaying = 1;
		sub->last_seq = from;
		p->s.on_drain = replay_more;
		replay_page(p, sub);
		return;
	}
	if (send_snapshot(&p->s, st))
		hub_close_soon(&p->s, END_STREAM, "out of memory");
}

static void next_deadline(struct sse_pss *p);
static void beat(struct gw_session *s);

/* LWS_CALLBACK_HTTP for a path under /sse/ */
static int on_request(struct sse_pss *p, struct lws *wsi)
{
	struct hub *h = hub_of(wsi);
	const struct gw_config *cfg = hub_cfg(h);
	char path[256], why[200], ip[GW_ADDR_MAX], origin[256], since_epoch[GW_EPOCH_MAX + 1];
	char retry[40], key[GW_KEY_MAX + 1];
	char *uri = NULL;
	int ulen = 0, method, st, has_since;
	uint64_t from = 0;
	unsigned short jitter = 0;
	struct reg_sub *sub;
	struct gw_state state;
	struct gw_buf *b;

	if (p->s.hub) {
		/* a second request on an event stream: there is no room for an
		 * answer in a body without end */
		GW_WARN_RL("%s: %s sent another request on its event stream; closing it", __func__, p->s.ip);
		return -1;
	}
	free(p->key);            /* a refused request's, on this connection */
	memset(p, 0, sizeof(*p));
	conn_client(wsi, cfg->proxy_nets, ip, sizeof(ip));
	method = lws_http_get_uri_and_method(wsi, &uri, &ulen);
	if (method < 0 || !uri || ulen <= 0 || (size_t)ulen >= sizeof(path))
		return refuse(wsi, ip, 404, "no such event stream");
	memcpy(path, uri, (size_t)ulen);
	path[ulen] = '\0';
	path[strcspn(path, "?")] = '\0';
	if (stream_key(path, key))
		return refuse(wsi, ip, 404, "no event stream here (use /sse/submissions/{key})");
	if (!(p->key = strdup(key)))
		return refuse(wsi, ip, 503, "out of memory");
	if (method != LWSHUMETH_GET)
		return refuse(wsi, ip, 405, "an event stream is read with GET");
	/* stopping: no answer at all, so that EventSource tries again later
	 * (any HTTP error status would make it give up for good) */
	if (hub_draining(h))
		return -1;
	if ((st = hub_admit(h, ip, why, sizeof(why))) != 0 ||
	    (st = auth_origin(cfg, wsi, why, sizeof(why))) != 0 ||
	    (st = auth_browser(cfg, wsi, p->key, &p->claims, why, sizeof(why))) != 0)
		return refuse(wsi, ip, st, why);
	has_since = resume_from(wsi, since_epoch, sizeof(since_epoch), &from);
	if (conn_header(wsi, WSI_TOKEN_ORIGIN, origin, sizeof(origin)))
		origin[0] = '\0';
	memset(&state, 0, sizeof(state));
	if (store_get_state(hub_store(h), p->key, &state)) {
		proto_state_clear(&state);
		auth_claims_free(p->claims);
		p->claims = NULL;
		return refuse(wsi, ip, 503, "the store cannot be read");
	}
	if (write_head(wsi, origin)) {
		proto_state_clear(&state);
		return -1;
	}
	/* everything needed from the request has been read: give its header
	 * table back and let the stream live as long as it is read */
	lws_http_headers_detach(wsi);
	lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);

	if (hub_session_open(h, &p->s, wsi, ip, GW_SESS_SSE) || !(sub = hub_join(&p->s, p->key))) {
		proto_state_clear(&state);
		return -1;   /* CLOSED_HTTP undoes what was done */
	}
	sub->mode = GW_MODE_LATEST;
	lws_get_random(lws_get_context(wsi), &jitter, sizeof(jitter));
	snprintf(retry, sizeof(retry), "retry: %u\n\n",
		 RETRY_MIN_MS + (unsigned)jitter % RETRY_SPREAD_MS);
	b = gw_buf_new(retry, strlen(retry));
	if (b) {
		hub_send(&p->s, b, HUB_REPLY);
		gw_buf_unref(b);
	}
	catch_up(p, sub, &state, has_since, since_epoch, from);
	proto_state_clear(&state);
	next_deadline(p);
	p->s.on_deadline = beat;
	GW_DBG("%s: %s streams %s%s", __func__, ip, p->key, has_since ? " (resuming)" : "");
	return 0;
}

/* 1 when the reader closed its end: the socket reads as end of stream
 * (what it may have sent is left where it is) */
static int reader_gone(struct lws *wsi)
{
	char c;
	lws_sockfd_type fd = lws_get_socket_fd(wsi);

	return fd >= 0 && recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

/* the stream's next deadline: the next heartbeat, or the token's expiry
 * when that comes first */
static void next_deadline(struct sse_pss *p)
{
	int64_t in = hub_cfg(p->s.hub)->sse_heartbeat, left = auth_seconds_left(p->claims);

	if (left >= 0 && left < in)
		in = left;
	p->s.deadline = (int64_t)time(NULL) + in;
}

/* service thread (the core's tick, at the stream's deadline): the end of a
 * stream whose reader left or whose token expired, else a comment when
 * nothing else is queued */
static void beat(struct gw_session *s)
{
	static const char comment[] = ": keep-alive\n\n";
	struct sse_pss *p = (struct sse_pss *)s;   /* s is its first member */
	struct gw_buf *b;

	if (s->close_code)
		return;
	if (reader_gone(s->wsi)) {
		GW_DBG("%s: %s closed its event stream of %s", __func__, s->ip, p->key);
		hub_close_soon(s, END_STREAM, "reader gone");
		return;
	}
	if (auth_expired(p->claims)) {
		GW_INFO("%s: the token of %s's event stream of %s has expired; ending it",
			__func__, s->ip, p->key);
		hub_close_soon(s, END_STREAM, "token expired");
		return;
	}
	if (!hub_queued(s) && (b = gw_buf_new(comment, sizeof(comment) - 1))) {
		hub_send(s, b, HUB_REPLY);
		gw_buf_unref(b);
	}
	next_deadline(p);
}

static void on_closed(struct sse_pss *p)
{
	if (p->s.hub)
		hub_session_close(&p->s);
	auth_claims_free(p->claims);
	p->claims = NULL;
	free(p->key);
	p->key = NULL;
}

int sse_callback(struct lws *wsi, int reason, void *user, void *in, size_t len)
{
	struct sse_pss *p = user;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		return p ? on_request(p, wsi) : -1;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		return p && p->s.hub ? hub_writeable(&p->s) : 0;
	case LWS_CALLBACK_HTTP_BODY:
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		return 0;            /* a GET has no body worth reading */
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
	case LWS_CALLBACK_CLOSED_HTTP:
		if (p)
			on_closed(p);
		return 0;
	default:
		return lws_callback_http_dummy(wsi, (enum lws_callback_reasons)reason, user, in, len);
	}
}
