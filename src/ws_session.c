/*
 * The WebSocket adapter, service thread only: the lws callbacks of the two
 * endpoints, the legacy /ws/submissions/{key}/ (one implicit subscription,
 * legacy frames; frames from trusted publishers become publishes) and the
 * multiplexed /ws (commands, many subscriptions, event frames, recovery
 * with since). Everything stateful (the session's send queue, the registry,
 * fan-out) is the core's (hub.h); this file parses what clients send and
 * turns it into core calls, snapshots and replays.
 */
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>
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
#include "store.h"
#include "writer.h"
#include "ws_session.h"

#define GARBAGE_LIMIT 10     /* consecutive bad commands before we hang up */
#define LEGACY_INFLIGHT 64   /* publishes of one legacy socket not yet committed */

/* publishes of a legacy socket still on their way through the writer;
 * shared by the session and its jobs, freed by whichever lets go last (a
 * job's done callback may run after its socket closed) */
struct inflight {
	unsigned n;
	int open;                /* the session still holds it */
};

/* lws's per-session data of a WebSocket. Kept small: ten thousands of
 * mostly idle pages each hold one, so whatever is variable or rare (the
 * key, a message in pieces, a publisher's count) is pointed to, and only
 * while it exists. */
struct ws_pss {
	struct gw_session s;     /* the core's part; first */
	char *key;               /* legacy: the watched submission; malloc'd */
	struct inflight *inflight; /* malloc'd on its first publish */
	struct gw_claims *claims;/* NULL: open mode; freed at close */
	unsigned char *rx;       /* reassembly of a message that came in pieces
				  * (lws hands over at most rx_buffer_size bytes at
				  * a time); malloc'd, grows geometrically, freed
				  * once the message is handled */
	unsigned rxlen, rxcap;
	unsigned char publisher; /* legacy socket of a trusted publisher (auth_trusted_publisher) */
	unsigned char rx_oversize; /* current message exceeded --max-frame */
	unsigned char garbage;   /* consecutive refused commands */
};

static void rx_reset(struct ws_pss *p);

size_t ws_pss_size(void)
{
	return sizeof(struct ws_pss);
}

static void send_json(struct ws_pss *p, json_t *o)
{
	hub_send_str(&p->s, json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER));
	json_decref(o);
}

static void send_error(struct ws_pss *p, json_t *id, const char *code,
		       const char *reason)
{
	json_t *o = json_object();

	json_object_set_new(o, "op", json_string("error"));
	if (id)
		json_object_set(o, "id", id);
	json_object_set_new(o, "code", json_string(code));
	json_object_set_new(o, "reason", json_string(reason));
	send_json(p, o);
}

/* ---- upgrade and paths ---- */

/* "/ws/submissions/{key}" with an optional trailing slash -> key; 0 or -1 */
static int legacy_key(const char *path, char *key)
{
	return reqparse_key_path(path, "/ws/submissions/", key);
}

static void request_path(struct lws *wsi, char *out, size_t len)
{
	if (conn_header(wsi, WSI_TOKEN_GET_URI, out, len))
		out[0] = '\0';
}

/* 0 to accept the upgrade, or an HTTP status (401, 403, 404...) and a reason */
static int check_upgrade(struct hub *h, struct lws *wsi, char *reason, size_t len)
{
	const struct gw_config *cfg = hub_cfg(h);
	char path[256], key[GW_KEY_MAX + 1], peer[GW_ADDR_MAX];
	struct gw_claims *claims = NULL;
	int legacy, st;

	request_path(wsi, path, sizeof(path));
	legacy = !legacy_key(path, key);
	if (!legacy && strcmp(path, "/ws") && strcmp(path, "/ws/")) {
		snprintf(reason, len, "no WebSocket endpoint at %s (use /ws or /ws/submissions/{key}/)", path);
		return 404;
	}
	if (hub_draining(h)) {
		snprintf(reason, len, "shutting down");
		return 503;
	}
	conn_client(wsi, cfg->proxy_nets, peer, sizeof(peer));
	if ((st = hub_admit(h, peer, reason, len)) != 0)
		return st;
	if ((st = auth_origin(cfg, wsi, reason, len)) != 0)
		return st;
	/* a trusted publisher on the legacy socket needs no browser token */
	if (legacy && auth_trusted_publisher(cfg, wsi))
		return 0;
	st = auth_browser(cfg, wsi, legacy ? key : NULL, &claims, reason, len);
	auth_claims_free(claims);
	return st;
}

int ws_confirm_upgrade(struct lws *wsi)
{
	char why[200] = "", peer[GW_ADDR_MAX];
	struct hub *h = hub_of(wsi);
	int st = check_upgrade(h, wsi, why, sizeof(why));

	if (!st)
		return 0;
	GW_INC(ws_refused);
	conn_client(wsi, hub_cfg(h)->proxy_nets, peer, sizeof(peer));
	GW_WARN_RL("%s: refused a WebSocket from %s: %d %s", __func__, peer, st, why);
	return conn_refuse(wsi, st, conn_status_error(st), why);
}

/* service thread (the core's deadline, hub_tick): access ends when the
 * token does */
static void on_token_expiry(struct gw_session *s)
{
	struct ws_pss *p = (struct ws_pss *)s;   /* s is the first member */

	if (s->close_code)
		return;
	if (!auth_expired(p->claims)) {
		s->deadline = (int64_t)time(NULL) + auth_seconds_left(p->claims);
		return;
	}
	GW_INFO("%s: the token of %s expired; closing its connection", __func__, s->ip);
	if (s->kind == GW_SESS_MUX)
		send_error(p, NULL, "forbidden", "the token has expired");
	hub_close_soon(s, LWS_CLOSE_STATUS_POLICY_VIOLATION, "token expired");
}

static void schedule_expiry(struct ws_pss *p)
{
	int64_t left = auth_seconds_left(p->claims);

	if (left < 0)
		return;   /* open mode or a publisher: no token to expire */
	p->s.deadline = (int64_t)time(NULL) + left;
	p->s.on_deadline = on_token_expiry;
}

/* unix seconds of an ISO 8601 UTC time ("2026-12-02T00:16:03.539Z"), or 0 */
static int64_t iso_seconds(const char *iso)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(iso, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm);
}

/* 1 while a kept state whose last event was at cannot have been deleted by
 * retention (which removes a submission that long after its last event) */
static int state_fresh(const struct gw_config *cfg, int64_t at)
{
	long keep = cfg->retention;

	if (cfg->retention_final && (!keep || cfg->retention_final < keep))
		keep = cfg->retention_final;
	return !keep || at + keep > (int64_t)time(NULL) + 2;
}

/* the submission's state right after a legacy connect. Its group keeps
 * the latest state frame (fan-out updates it with every event), so only
 * the first watcher of a submission reads the store; thousands of pages
 * reconnecting after a redeploy share one frame and no store read. A kept
 * state old enough for retention to have deleted the submission is read
 * again. Ordering holds either way: sub->last_seq is the seq of the frame
 * given, and fan-out gives every later event. */
static void send_legacy_state(struct ws_pss *p, struct reg_sub *sub)
{
	struct gw_state st;
	struct gw_buf *b = NULL;
	uint64_t seq;
	int64_t at;

	if (registry_state_get(sub->group, &b, &seq, &at)) {
		if (state_fresh(hub_cfg(p->s.hub), at)) {
			sub->last_seq = seq;
			if (b)
				hub_send(&p->s, b, HUB_REPLY);
			return;
		}
		registry_state_forget(sub->group);
		b = NULL;
	}
	memset(&st, 0, sizeof(st));
	if (store_get_state(hub_store(p->s.hub), p->key, &st)) {
		GW_ERR("%s: cannot read %s from the store", __func__, p->key);
		return;
	}
	sub->last_seq = st.seq;
	/* a submission nobody published to gets no frame: legacy pages render
	 * their state server-side, and a frame of nulls would blank it */
	if (st.exists)
		b = gw_buf_take_str(proto_encode_legacy(&st));
	if (b || !st.exists) {
		/* nothing to delete while it has no state: fresh until an event */
		registry_state_set(sub->group, b, st.seq,
				   st.exists ? iso_seconds(st.updated_at) : INT64_MAX / 2);
		if (b)
			hub_send(&p->s, b, HUB_REPLY);
	}
	gw_buf_unref(b);
	proto_state_clear(&st);
}

static int on_established(struct ws_pss *p, struct lws *wsi)
{
	struct hub *h = hub_of(wsi);
	const struct gw_config *cfg = hub_cfg(h);
	char path[256], reason[160], ip[GW_ADDR_MAX], key[GW_KEY_MAX + 1];
	int mux;

	request_path(wsi, path, sizeof(path));
	mux = legacy_key(path, key) != 0;
	conn_client(wsi, cfg->proxy_nets, ip, sizeof(ip));
	p->key = NULL;
	p->publisher = 0;
	p->inflight = NULL;
	p->claims = NULL;
	p->rx = NULL;
	p->rxlen = p->rxcap = 0;
	p->rx_oversize = p->garbage = 0;
	if (!mux && !(p->key = strdup(key)))
		return -1;
	if (hub_session_open(h, &p->s, wsi, ip, mux)) {
		free(p->key);
		p->key = NULL;
		return -1;
	}
	if (!mux && auth_trusted_publisher(cfg, wsi))
		p->publisher = 1;
	else if (auth_browser(cfg, wsi, mux ? NULL : p->key, &p->claims, reason, sizeof(reason))) {
		/* checked before the upgrade; the token can only have expired since */
		hub_close_soon(&p->s, LWS_CLOSE_STATUS_POLICY_VIOLATION, "forbidden");
		return 0;
	}
	schedule_expiry(p);
	if (!mux) {
		struct reg_sub *sub = hub_join(&p->s, p->key);
		if (!sub)
			return -1;
		sub->legacy = 1;
		send_legacy_state(p, sub);
	}
	GW_DBG("%s: %s connected to %s", __func__, ip, mux ? "/ws" : p->key);
	return 0;
}

static void on_closed(struct ws_pss *p)
{
	if (!p->s.hub)
		return;   /* never established */
	hub_session_close(&p->s);
	free(p->key);
	p->key = NULL;
	if (p->inflight) {
		p->inflight->open = 0;
		if (!p->inflight->n)
			free(p->inflight);
		p->inflight = NULL;
	}
	rx_reset(p);
	auth_claims_free(p->claims);
	p->claims = NULL;
}

/* ---- legacy socket: publishes from a trusted publisher ---- */

/* service thread (a legacy job's done callback): one fewer in flight */
static void legacy_done(struct gw_job *job, void *arg)
{
	struct inflight *f = arg;

	(void)job;
	if (--f->n == 0 && !f->open)
		free(f);
}

static void legacy_receive(struct ws_pss *p, const char *msg, size_t len)
{
	struct hub *h = p->s.hub;
	struct gw_job *job;
	char err[200];
	int r;

	if (!p->publisher) {
		GW_WARN_RL("%s: %s sent a frame on the legacy socket of %s but is not a trusted publisher; closing",
			__func__, p->s.ip, p->key);
		hub_close_soon(&p->s, LWS_CLOSE_STATUS_POLICY_VIOLATION,
			       "publishing needs a publish token or a --publish-networks peer");
		return;
	}
	if (!p->inflight && !(p->inflight = calloc(1, sizeof(*p->inflight))))
		return;
	p->inflight->open = 1;
	if (p->inflight->n >= LEGACY_INFLIGHT) {
		GW_WARN_RL("%s: %s has %u publishes on %s in flight; closing it with 1013",
			   __func__, p->s.ip, p->inflight->n, p->key);
		json_t *e = json_pack("{s:s, s:s}", "error", "too_many", "detail",
				      "too many publishes in flight on this socket; try again later");
		if (e)
			send_json(p, e);
		hub_close_soon(&p->s, 1013, "too many publishes in flight");
		return;
	}
	job = writer_job_new(GW_SRC_WS, 0);
	if (!job)
		return;
	/* no answer on this socket: failures are logged by the writer and the
	 * sender sees its own event arrive (it is a member); the done callback
	 * only counts it out */
	r = proto_decode_legacy(msg, len, (size_t)hub_cfg(h)->max_publish, p->key,
				&job->pub, err, sizeof(err));
	if (r) {
		GW_WARN_RL("%s: refused a publish from %s on %s: %s", __func__, p->s.ip, p->key, err);
		GW_INC(publishes[GW_SRC_WS][GW_OUT_INVALID]);
		json_t *e = json_pack("{s:s, s:s}", "error", proto_err_name(r), "detail", err);
		if (e)
			send_json(p, e);
		writer_job_free(job);
		return;
	}
	job->done = legacy_done;
	job->done_arg = p->inflight;
	job->bytes = len;
	p->inflight->n++;
	if (writer_submit(hub_writer(h), job)) {
		/* the writer's queue is full: this publisher sends faster than the
		 * store commits. The legacy protocol has no answer to a publish, so
		 * say it and close with 1013 (try again later) rather than drop
		 * its frames silently. */
		p->inflight->n--;
		writer_job_free(job);
		GW_INC(publishes[GW_SRC_WS][GW_OUT_FAILED]);
		GW_INC(writer_queue_full);
		GW_WARN_RL("%s: %s publishes to %s faster than the store commits (write queue full); "
			   "closing it with 1013", __func__, p->s.ip, p->key);
		json_t *e = json_pack("{s:s, s:s}", "error", "too_many", "detail",
				      "the store's write queue is full; try again later");
		if (e)
			send_json(p, e);
		hub_close_soon(&p->s, 1013, "write queue full");
	}
}

/* ---- /ws commands ---- */

/*
 * Replays are read from the store a page at a time, the next page only when
 * the session's queue has drained (hub's on_drain), so a client that asks
 * for its whole history costs the event loop one page per turn and the
 * memory of one page. While a subscription replays, fan-out leaves it alone:
 * every committed event is in the store before its fan-out runs, so the
 * pages catch up with everything, and once a page comes back short the
 * subscription is live (fan-out skips what the pages already gave). Each
 * page must continue the last one exactly (seq + 1): a gap (events pruned
 * meanwhile) ends the replay with a snapshot, never a silent hole.
 */
#define REPLAY_PAGE 256

struct replay {
	struct ws_pss *p;
	uint32_t filter;
	uint64_t next;           /* the seq the next stored event must have */
	int gap;
	int failed;
};

/* service thread: one stored event of a replay page */
static int replay_one(void *arg, uint64_t seq, int type, const char *json, size_t len)
{
	struct replay *r = arg;
	struct gw_buf *b;

	if (seq != r->next) {
		r->gap = 1;
		return 1;
	}
	r->next = seq + 1;
	if (r->filter && type >= 0 && !(r->filter & (1u << type)))
		return 0;
	b = gw_buf_new(json, len);
	if (!b || hub_send(&r->p->s, b, HUB_REPLAY)) {
		gw_buf_unref(b);
		r->failed = 1;
		return 1;
	}
	gw_buf_unref(b);
	return 0;
}

/* the current state of sub's submission instead of (the rest of) a replay */
static void replay_to_snapshot(struct ws_pss *p, struct reg_sub *sub, const char *key)
{
	struct gw_state st;

	memset(&st, 0, sizeof(st));
	sub->replaying = 0;
	if (store_get_state(hub_store(p->s.hub), key, &st)) {
		send_error(p, NULL, "unavailable", "the store cannot be read; subscribe again");
		hub_leave(&p->s, sub);
		return;
	}
	sub->last_seq = st.seq;
	hub_send_str(&p->s, proto_encode_snapshot(&st, hub_epoch(p->s.hub)));
	proto_state_clear(&st);
}

/* service thread: the next page of sub's replay */
static void replay_page(struct ws_pss *p, struct reg_sub *sub)
{
	const char *key = registry_group_key(sub->group);
	struct replay r = { p, sub->filter, sub->last_seq + 1, 0, 0 };
	uint64_t oldest;
	int n = store_events_since(hub_store(p->s.hub), key, sub->last_seq, REPLAY_PAGE,
				   replay_one, &r, &oldest);

	if (n < 0 || r.gap || r.failed) {
		GW_DBG("%s: replay of %s for %s ends with a snapshot (%s)", __func__, key,
		       p->s.ip, n < 0 ? "store error" : r.gap ? "events pruned" : "queue full");
		replay_to_snapshot(p, sub, key);
		return;
	}
	sub->last_seq = r.next - 1;
	if (n < REPLAY_PAGE)
		sub->replaying = 0;   /* caught up with the store: live from here */
	else if (!hub_queued(&p->s))
		/* its filter kept nothing of this page: the queue will not drain
		 * by itself, so ask for a turn to read the next one */
		lws_callback_on_writable(p->s.wsi);
}

/* the core's on_drain: the session's queue is empty; one more page */
static void replay_more(struct gw_session *s)
{
	struct ws_pss *p = (struct ws_pss *)s;

	for (struct reg_sub *sub = s->subs; sub; sub = sub->next)
		if (sub->replaying) {
			replay_page(p, sub);
			return;
		}
	s->on_drain = NULL;   /* no replay left: an empty queue needs no turn */
}

/* cmd was decoded by proto_decode_command: its key, filter and since are valid */
static void cmd_subscribe(struct ws_pss *p, const struct gw_cmd *cmd)
{
	struct hub *h = p->s.hub;
	struct store *rs = hub_store(h);
	json_t *id = cmd->id;
	const char *key = cmd->key;
	const char *epoch = hub_epoch(h);
	char reason[160];
	uint32_t filter = cmd->filter;
	struct reg_sub *sub;
	struct gw_state st;
	int replayed = 0;

	if (!auth_allows(p->claims, key)) {
		send_error(p, id, "forbidden", auth_expired(p->claims) ? "the token has expired"
			   : "the token does not allow this submission");
		return;
	}
	if (!registry_owner_find(p->s.subs, key)) {   /* (a re-subscribe starts over) */
		size_t n = 0;
		for (struct reg_sub *x = p->s.subs; x; x = x->next)
			n++;
		if (n >= (size_t)hub_cfg(h)->max_subscriptions) {
			snprintf(reason, sizeof(reason), "at most %ld subscriptions per connection",
				 hub_cfg(h)->max_subscriptions);
			send_error(p, id, "too_many", reason);
			return;
		}
	}
	sub = hub_join(&p->s, key);
	if (!sub) {
		send_error(p, id, "unavailable", "out of memory");
		return;
	}
	sub->filter = filter;
	sub->mode = cmd->mode;
	memset(&st, 0, sizeof(st));
	if (store_get_state(rs, key, &st)) {
		hub_leave(&p->s, sub);
		send_error(p, id, "unavailable", "the store cannot be read");
		return;
	}
	/* ack first, then replay or snapshot, then live events */
	json_t *ack = json_pack("{s:s}", "op", "ack");
	if (id)
		json_object_set(ack, "id", id);
	json_object_set_new(ack, "submission", json_string(key));
	json_object_set_new(ack, "epoch", json_string(epoch));
	json_object_set_new(ack, "seq", json_integer((json_int_t)st.seq));
	send_json(p, ack);

	sub->last_seq = st.seq;
	if (cmd->has_since && !strcmp(cmd->since_epoch, epoch)) {
		uint64_t from = cmd->since_seq;

		if (from == st.seq) {
			replayed = 1;    /* nothing missed */
		} else if (from < st.seq) {
			replayed = 1;    /* or a snapshot, if a page finds a gap */
			sub->replaying = 1;
			sub->last_seq = from;
			p->s.on_drain = replay_more;
			replay_page(p, sub);
		}
	}
	if (!replayed)
		hub_send_str(&p->s, proto_encode_snapshot(&st, epoch));
	proto_state_clear(&st);
}

static void cmd_unsubscribe(struct ws_pss *p, const struct gw_cmd *cmd)
{
	json_t *id = cmd->id;
	const char *key = cmd->key;
	struct reg_sub *sub = registry_owner_find(p->s.subs, key);

	if (!sub) {
		send_error(p, id, "not_found", "not subscribed to this submission");
		return;
	}
	hub_leave(&p->s, sub);
	json_t *ack = json_pack("{s:s}", "op", "ack");
	if (id)
		json_object_set(ack, "id", id);
	json_object_set_new(ack, "submission", json_string(key));
	send_json(p, ack);
}

static void mux_receive(struct ws_pss *p, const char *msg, size_t len)
{
	struct gw_cmd cmd;
	char reason[200];
	int r = proto_decode_command(msg, len, &cmd, reason, sizeof(reason));

	if (r == GW_EJSON) {
		send_error(p, NULL, "bad_request", reason);
		p->garbage++;
		goto out;
	}
	p->garbage = 0;
	if (r) {
		send_error(p, cmd.id, "bad_request", reason);
		if (cmd.op < 0)      /* no op, or one we do not know */
			p->garbage++;
	} else if (cmd.op == GW_CMD_SUBSCRIBE) {
		cmd_subscribe(p, &cmd);
	} else if (cmd.op == GW_CMD_UNSUBSCRIBE) {
		cmd_unsubscribe(p, &cmd);
	} else {
		json_t *pong = json_pack("{s:s}", "op", "pong");
		if (cmd.id)
			json_object_set(pong, "id", cmd.id);
		send_json(p, pong);
	}
out:
	proto_cmd_free(&cmd);
	if (p->garbage >= GARBAGE_LIMIT)
		hub_close_soon(&p->s, LWS_CLOSE_STATUS_POLICY_VIOLATION, "too many bad commands");
}

/* room for n more bytes of a message in pieces, growing the buffer
 * geometrically (a 16 KB command arriving in 128-byte pieces costs a few
 * reallocs, not one per piece); 0 or -1 */
static int rx_reserve(struct ws_pss *p, size_t n)
{
	size_t need = (size_t)p->rxlen + n, cap = p->rxcap ? p->rxcap : 256;
	unsigned char *nrx;

	if (need <= p->rxcap)
		return 0;
	while (cap < need)
		cap *= 2;
	nrx = realloc(p->rx, cap);
	if (!nrx)
		return -1;
	p->rx = nrx;
	p->rxcap = (unsigned)cap;
	return 0;
}

static void rx_reset(struct ws_pss *p)
{
	free(p->rx);
	p->rx = NULL;
	p->rxlen = p->rxcap = 0;
}

/* one whole message (text or binary), from the client */
static void on_message(struct ws_pss *p, struct lws *wsi, const char *msg, size_t len)
{
	if (lws_frame_is_binary(wsi)) {
		if (p->s.kind == GW_SESS_MUX) {
			send_error(p, NULL, "bad_request", "binary messages are not accepted");
			p->garbage++;
		} else {
			hub_close_soon(&p->s, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE, "text frames only");
		}
	} else if (p->s.kind == GW_SESS_MUX) {
		mux_receive(p, msg, len);
	} else {
		legacy_receive(p, msg, len);
	}
}

/* a piece of a client message: a whole message that came in one piece is
 * handled where lws has it; pieces are reassembled up to --max-frame */
static int on_receive(struct ws_pss *p, struct lws *wsi, const void *in, size_t len)
{
	size_t max = (size_t)hub_cfg(p->s.hub)->max_frame;
	int final = lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi);

	if (p->s.close_code)
		return 0;
	if (lws_is_first_fragment(wsi) && !p->rxlen)
		p->rx_oversize = 0;
	if (final && !p->rxlen && !p->rx_oversize && len <= max) {
		on_message(p, wsi, in, len);   /* no copy */
		hub_received(&p->s);
		return 0;
	}
	if (!p->rx_oversize) {
		if ((size_t)p->rxlen + len > max) {
			p->rx_oversize = 1;
			rx_reset(p);
		} else if (len) {
			if (rx_reserve(p, len))
				return -1;
			memcpy(p->rx + p->rxlen, in, len);
			p->rxlen += (unsigned)len;
		}
	}
	if (!final)
		return 0;
	if (p->rx_oversize) {
		char reason[96];
		snprintf(reason, sizeof(reason), "message over the %zu byte limit", max);
		GW_WARN_RL("%s: %s sent an oversize message", __func__, p->s.ip);
		if (p->s.kind == GW_SESS_MUX) {
			send_error(p, NULL, "too_large", reason);
			if (++p->garbage >= GARBAGE_LIMIT)
				hub_close_soon(&p->s, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "too large");
		} else {
			hub_close_soon(&p->s, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "message too large");
		}
	} else {
		on_message(p, wsi, (const char *)p->rx, p->rxlen);
	}
	rx_reset(p);
	p->rx_oversize = 0;
	hub_received(&p->s);
	return 0;
}

int ws_callback(struct lws *wsi, int reason, void *user, void *in, size_t len)
{
	struct ws_pss *p = user;

	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED:
		return on_established(p, wsi);
	case LWS_CALLBACK_RECEIVE:
		if (!p->s.hub)
			return -1;
		hub_seen(&p->s);
		return on_receive(p, wsi, in, len);
	case LWS_CALLBACK_RECEIVE_PONG:
		if (p->s.hub)
			hub_seen(&p->s);
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return p->s.hub ? hub_writeable(&p->s) : -1;
	case LWS_CALLBACK_WS_SERVER_DROP_PROTOCOL:
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		/* lws sends (or answers) a close frame next: data must not follow */
		if (p && p->s.hub)
			hub_output_closed(&p->s);
		return 0;
	case LWS_CALLBACK_CLOSED:
		on_closed(p);
		return 0;
	default:
		return 0;
	}
}
