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
 * duplicate, when the store still holds them, else a snapshot. The first
 * bytes are a retry: hint with jitter, so that a crowd of pages does not
 * reconnect in step after a restart.
 *
 * Every --sse-heartbeat seconds (a timer of server.c's loop: lws 4.1's own
 * timers are unreliable on libev) each idle stream gets a comment, which
 * keeps proxies from closing it. lws does not read an HTTP connection
 * while its answer is being written, so a reader that went away shows
 * itself only then: the heartbeat looks (MSG_PEEK) for its end of stream,
 * and ends a stream whose token has expired.
 */
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "auth.h"
#include "config.h"
#include "conn.h"
#include "hub.h"
#include "log.h"
#include "metrics.h"
#include "proto.h"
#include "registry.h"
#include "sse.h"
#include "store.h"

#define PREFIX "/sse/"
#define REPLAY_MAX 100000
#define RETRY_MIN_MS 1000    /* the reconnect hint: 1 to 3 s, spread evenly */
#define RETRY_SPREAD_MS 2000
#define END_STREAM 1000      /* hub_close_soon's code, never sent: a stream just ends */

/* lws's per-session data of an SSE request */
struct sse_pss {
	struct gw_session s;     /* the core's part; first; s.hub set while open */
	char key[GW_KEY_MAX + 1];
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
	static const char pfx[] = PREFIX "submissions/";
	size_t n;

	if (strncmp(path, pfx, sizeof(pfx) - 1))
		return -1;
	path += sizeof(pfx) - 1;
	n = strcspn(path, "/");
	if (path[n] && strcmp(path + n, "/"))
		return -1;
	if (!proto_key_valid(path, n))
		return -1;
	memcpy(key, path, n);
	key[n] = '\0';
	return 0;
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
	GW_WARN("%s: refused an event stream to %s: %d %s", __func__, ip, status, why);
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

struct replay {
	struct gw_session *s;
	const char *epoch;
	uint64_t last;
	int failed;
};

/* service thread: one stored event during a replay */
static int replay_one(void *arg, uint64_t seq, const char *json, size_t len)
{
	struct replay *r = arg;

	r->last = seq;
	if (send_frame(r->s, r->epoch, seq, json, len, HUB_REPLAY)) {
		r->failed = 1;
		return 1;
	}
	return 0;
}

static int count_only(void *arg, uint64_t seq, const char *json, size_t len)
{
	(void)arg, (void)seq, (void)json, (void)len;
	return 0;
}

/* After the join: what the reader missed since (since_epoch, from) when it
 * can be replayed exactly (same epoch, every missed event still stored),
 * else a snapshot; then live events follow from the seq it was given,
 * which is returned. Replay + live has no gap and no duplicate for the
 * same reason as on /ws: the replay is read on this thread after the join,
 * and fan-out skips what the subscription was already given. */
static uint64_t catch_up(struct sse_pss *p, struct gw_state *st, int has_since,
			 const char *since_epoch, uint64_t from)
{
	struct hub *h = p->s.hub;
	struct store *rs = hub_store(h);
	const char *epoch = hub_epoch(h);
	char *snap;

	if (has_since && !strcmp(since_epoch, epoch)) {
		uint64_t oldest = 0;
		struct replay r = { &p->s, epoch, from, 0 };

		if (from == st->seq)
			return st->seq;          /* nothing missed */
		if (from < st->seq) {
			int n = store_events_since(rs, p->key, from, 1, count_only, NULL, &oldest);

			if (n >= 0 && oldest && oldest <= from + 1 &&
			    store_events_since(rs, p->key, from, REPLAY_MAX,
					       replay_one, &r, &oldest) >= 0 && !r.failed)
				/* events committed after the state read came in the replay too */
				return r.last > st->seq ? r.last : st->seq;
		}
	}
	snap = proto_encode_snapshot(st, epoch);
	if (!snap || send_frame(&p->s, epoch, st->seq, snap, strlen(snap), HUB_REPLY))
		hub_close_soon(&p->s, END_STREAM, "out of memory");
	free(snap);
	return st->seq;
}

/* LWS_CALLBACK_HTTP for a path under /sse/ */
static int on_request(struct sse_pss *p, struct lws *wsi)
{
	struct hub *h = hub_of(wsi);
	const struct gw_config *cfg = hub_cfg(h);
	char path[256], why[200], ip[GW_ADDR_MAX], origin[256], since_epoch[GW_EPOCH_MAX + 1];
	char retry[40];
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
		GW_WARN("%s: %s sent another request on its event stream; closing it", __func__, p->s.ip);
		return -1;
	}
	memset(p, 0, sizeof(*p));
	conn_client(wsi, cfg->proxy_nets, ip, sizeof(ip));
	method = lws_http_get_uri_and_method(wsi, &uri, &ulen);
	if (method < 0 || !uri || ulen <= 0 || (size_t)ulen >= sizeof(path))
		return refuse(wsi, ip, 404, "no such event stream");
	memcpy(path, uri, (size_t)ulen);
	path[ulen] = '\0';
	path[strcspn(path, "?")] = '\0';
	if (stream_key(path, p->key))
		return refuse(wsi, ip, 404, "no event stream here (use /sse/submissions/{key})");
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
	sub->last_seq = catch_up(p, &state, has_since, since_epoch, from);
	proto_state_clear(&state);
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

/* one stream at a heartbeat: a comment when nothing else is queued */
static void beat(struct gw_session *s, void *arg)
{
	static const char comment[] = ": keep-alive\n\n";
	struct sse_pss *p = (struct sse_pss *)s;   /* s is its first member */
	struct gw_buf *b;

	(void)arg;
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
}

void sse_heartbeat(struct hub *h)
{
	hub_foreach(h, GW_SESS_SSE, beat, NULL);
}

static void on_closed(struct sse_pss *p)
{
	if (p->s.hub)
		hub_session_close(&p->s);
	auth_claims_free(p->claims);
	p->claims = NULL;
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
