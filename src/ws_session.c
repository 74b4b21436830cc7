/*
 * WebSocket sessions, service thread only.
 *
 * Two endpoints share this code: the legacy /ws/submissions/{key}/ (one
 * implicit subscription, legacy frames) and the multiplexed /ws (commands,
 * many subscriptions, event frames, recovery with since).
 *
 * Sending: each session has a bounded ring of references to shared payload
 * buffers (buf.h). Fan-out appends a reference per member and asks for
 * WRITEABLE; each WRITEABLE makes exactly one lws_write() of the oldest
 * buffer. A member whose ring is full is not waited for: its queue is
 * dropped, it is told it lags (on /ws) and it is closed with 1013, so one
 * slow browser never delays the rest of its group.
 *
 * Ordering: a subscription remembers the last seq it was given (snapshot,
 * replay or live). Fan-out skips events at or below it, so an event that was
 * committed before a snapshot was read but handed over after it is never
 * sent twice, and replay + live has no gap (the replay is read after the
 * join, on this same thread, and every later commit comes through fan-out).
 */
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "conn.h"
#include "gateway.h"
#include "iplimit.h"
#include "log.h"
#include "metrics.h"
#include "proto.h"
#include "reqparse.h"
#include "store.h"

#define CLOSE_TRY_AGAIN_LATER 1013
#define GARBAGE_LIMIT 10     /* consecutive bad commands before we hang up */
#define REPLAY_MAX 100000
#define FORCE_SLACK 4096     /* replies beyond the bounds: one rx buffer of commands */

struct gw_session {
	struct lws *wsi;
	struct gw_app *app;
	struct gw_session *prev, *next;   /* app->sessions */
	int mux;                 /* 1: /ws; 0: legacy */
	int publisher;           /* legacy socket of a trusted publisher (auth_trusted_publisher) */
	char key[GW_KEY_MAX + 1];/* legacy: the watched submission */
	char ip[64];
	struct gw_claims *claims;/* NULL: open mode; freed at close */
	struct reg_sub *subs;    /* this session's subscriptions */
	struct gw_buf **q;       /* ring of payload refs; malloc'd */
	unsigned qhead, qlen, qcap;
	unsigned qgrace;         /* replayed frames still queued (an upper bound):
				  * fan-out may exceed --send-queue by this many */
	int close_code;          /* non-zero: close once WRITEABLE */
	char close_reason[96];
	unsigned char *rx;       /* reassembly of a fragmented message */
	size_t rxlen;
	int rx_oversize;         /* current message exceeded --max-frame */
	int garbage;             /* consecutive refused commands */
	int rx_paused;           /* we stopped reading its commands until its queue drains */
};

size_t ws_pss_size(void)
{
	return sizeof(struct gw_session);
}

/* ---- sending ---- */

static void close_soon(struct gw_session *s, int code, const char *reason)
{
	if (s->close_code)
		return;
	s->close_code = code;
	snprintf(s->close_reason, sizeof(s->close_reason), "%s", reason);
	if (s->rx_paused) {      /* let the peer's close frame in */
		s->rx_paused = 0;
		lws_rx_flow_control(s->wsi, 1);
	}
	lws_callback_on_writable(s->wsi);
	/* a peer that does not read may never make us writable: bound it */
	lws_set_timeout(s->wsi, PENDING_TIMEOUT_CLOSE_SEND, 5);
}

static void queue_clear(struct gw_session *s)
{
	s->qgrace = 0;
	while (s->qlen) {
		gw_buf_unref(s->q[s->qhead]);
		s->qhead = (s->qhead + 1) % s->qcap;
		s->qlen--;
	}
}

/* appends a reference; force goes beyond the --send-queue bound (replies to
 * the client's own commands and replays, which the client asked for), up to
 * a hard bound of a whole replay plus some slack (on_receive stops reading
 * a client's commands long before that; the bound is a backstop). Live
 * fan-out may use the room of replayed frames still queued (qgrace): a
 * client that asked for a long replay is not "lagging" for it. 0 or -1. */
static int queue_push(struct gw_session *s, struct gw_buf *b, int force)
{
	const struct gw_config *cfg = s->app->cfg;
	unsigned limit = (unsigned)cfg->send_queue;
	unsigned replay = cfg->history < REPLAY_MAX ? (unsigned)cfg->history : REPLAY_MAX;

	if (s->close_code)
		return -1;
	if (!force && s->qlen >= limit + s->qgrace)
		return -1;
	if (force && s->qlen >= limit + replay + FORCE_SLACK)
		return -1;
	if (s->qlen == s->qcap) {
		unsigned ncap = s->qcap ? s->qcap * 2 : 8;
		struct gw_buf **nq = malloc(ncap * sizeof(*nq));

		if (!nq)
			return -1;
		for (unsigned i = 0; i < s->qlen; i++)
			nq[i] = s->q[(s->qhead + i) % s->qcap];
		free(s->q);
		s->q = nq;
		s->qcap = ncap;
		s->qhead = 0;
	}
	s->q[(s->qhead + s->qlen) % s->qcap] = gw_buf_ref(b);
	if (!s->qlen)
		lws_callback_on_writable(s->wsi);
	s->qlen++;
	return 0;
}

static void lagging(struct gw_session *s)
{
	GW_INC(drops);
	GW_INC(lagging_closes);
	GW_WARN("%s: %s is not reading (%u frames queued); closing it with 1013",
		__func__, s->ip, s->qlen);
	queue_clear(s);
	if (s->mux) {
		static const char msg[] = "{\"op\":\"error\",\"code\":\"lagging\","
			"\"reason\":\"send queue full; reconnect with since to recover\"}";
		struct gw_buf *b = gw_buf_new(msg, sizeof(msg) - 1);
		if (b) {
			queue_push(s, b, 1);
			gw_buf_unref(b);
		}
	}
	close_soon(s, CLOSE_TRY_AGAIN_LATER, "lagging");
}

/* a reply made for this session only; takes a malloc'd string */
static void send_str(struct gw_session *s, char *json)
{
	struct gw_buf *b = gw_buf_take_str(json);

	if (!b)
		return;
	if (queue_push(s, b, 1) && !s->close_code)
		lagging(s);   /* it sends commands but does not read the replies */
	gw_buf_unref(b);
}

static void send_json(struct gw_session *s, json_t *o)
{
	send_str(s, json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER));
	json_decref(o);
}

static void send_error(struct gw_session *s, json_t *id, const char *code,
		       const char *reason)
{
	json_t *o = json_object();

	json_object_set_new(o, "op", json_string("error"));
	if (id)
		json_object_set(o, "id", id);
	json_object_set_new(o, "code", json_string(code));
	json_object_set_new(o, "reason", json_string(reason));
	send_json(s, o);
}

static int on_writeable(struct gw_session *s)
{
	struct gw_buf *b;
	int n;

	if (!s->qlen && s->close_code) {
		lws_close_reason(s->wsi, (enum lws_close_status)s->close_code,
				 (unsigned char *)s->close_reason, strlen(s->close_reason));
		return -1;
	}
	if (!s->qlen)
		return 0;
	b = s->q[s->qhead];
	n = lws_write(s->wsi, gw_buf_data(b), b->len, LWS_WRITE_TEXT);
	s->qhead = (s->qhead + 1) % s->qcap;
	s->qlen--;
	gw_buf_unref(b);
	if (n < 0)
		return -1;
	GW_INC(frames_out);
	if (s->qgrace)
		s->qgrace--;
	if (s->rx_paused && s->qlen <= (unsigned)s->app->cfg->send_queue / 2) {
		s->rx_paused = 0;
		lws_rx_flow_control(s->wsi, 1);
	}
	if (s->qlen || s->close_code)
		lws_callback_on_writable(s->wsi);
	return 0;
}

/* ---- fan-out ---- */

void ws_fanout(struct gw_app *app, const struct gw_job *j)
{
	struct reg_group *g = registry_find(app->reg, j->key);
	struct reg_sub *const *m;
	size_t n;

	GW_INC(events);
	if (!g)
		return;
	m = registry_members(g, &n);
	for (size_t i = 0; i < n; i++) {
		struct reg_sub *sub = m[i];
		struct gw_session *s = sub->owner;

		if (sub->last_seq >= j->seq)
			continue;    /* already in its snapshot or replay */
		sub->last_seq = j->seq;
		if (sub->filter && !(sub->filter & (1u << j->type)))
			continue;
		if (queue_push(s, sub->legacy ? j->legacy : j->event, 0) && !s->close_code)
			lagging(s);
	}
}

size_t ws_presence(struct gw_app *app, const char *key)
{
	struct reg_group *g = registry_find(app->reg, key);
	size_t n = 0;

	if (g)
		registry_members(g, &n);
	return n;
}

/* ---- upgrade and paths ---- */

/* "/ws/submissions/{key}" with an optional trailing slash -> key; 0 or -1 */
static int legacy_key(const char *path, char *key)
{
	return reqparse_key_path(path, "/ws/submissions/", key);
}

static void request_path(struct lws *wsi, char *out, size_t len)
{
	if (server_header(wsi, WSI_TOKEN_GET_URI, out, len))
		out[0] = '\0';
}

int ws_check_upgrade(struct gw_app *app, struct lws *wsi, char *reason, size_t len)
{
	char path[256], key[GW_KEY_MAX + 1], peer[64];
	struct gw_claims *claims = NULL;
	int legacy, st;

	request_path(wsi, path, sizeof(path));
	legacy = !legacy_key(path, key);
	if (!legacy && strcmp(path, "/ws") && strcmp(path, "/ws/")) {
		snprintf(reason, len, "no WebSocket endpoint at %s (use /ws or /ws/submissions/{key}/)", path);
		return 404;
	}
	if (app->draining) {
		snprintf(reason, len, "shutting down");
		return 503;
	}
	if (app->nsessions >= (size_t)app->cfg->max_connections) {
		snprintf(reason, len, "too many connections (%ld)", app->cfg->max_connections);
		return 503;
	}
	conn_client(wsi, app->cfg->proxy_nets, peer, sizeof(peer));
	if (iplimit_count(app->ips, peer) >= (size_t)app->cfg->max_connections_per_ip) {
		snprintf(reason, len, "too many connections from %s (at most %ld)", peer,
			 app->cfg->max_connections_per_ip);
		return 429;
	}
	if ((st = auth_origin(app, wsi, reason, len)) != 0)
		return st;
	/* a trusted publisher on the legacy socket needs no browser token */
	if (legacy && auth_trusted_publisher(app, wsi))
		return 0;
	st = auth_browser(app, wsi, legacy ? key : NULL, &claims, reason, len);
	auth_claims_free(claims);
	return st;
}

static void send_legacy_state(struct gw_session *s, struct reg_sub *sub)
{
	struct gw_state st;

	memset(&st, 0, sizeof(st));
	if (store_get_state(s->app->rstore, s->key, &st)) {
		GW_ERR("%s: cannot read %s from the store", __func__, s->key);
		return;
	}
	sub->last_seq = st.seq;
	/* a submission nobody published to gets no frame: legacy pages render
	 * their state server-side, and a frame of nulls would blank it */
	if (st.exists)
		send_str(s, proto_encode_legacy(&st));
	proto_state_clear(&st);
}

static int on_established(struct gw_session *s, struct lws *wsi)
{
	struct gw_app *app = gw_app_of(wsi);
	char path[256], reason[160];

	memset(s, 0, sizeof(*s));
	s->wsi = wsi;
	s->app = app;
	conn_client(wsi, app->cfg->proxy_nets, s->ip, sizeof(s->ip));
	if (iplimit_add(&app->ips, s->ip)) {
		s->app = NULL;   /* nothing to undo in CLOSED */
		return -1;
	}
	request_path(wsi, path, sizeof(path));
	s->mux = legacy_key(path, s->key) != 0;
	s->next = app->sessions;
	if (app->sessions)
		app->sessions->prev = s;
	app->sessions = s;
	app->nsessions++;
	GW_SET(ws_connections, (int64_t)app->nsessions);

	if (!s->mux && auth_trusted_publisher(app, wsi))
		s->publisher = 1;
	else if (auth_browser(app, wsi, s->mux ? NULL : s->key, &s->claims, reason, sizeof(reason))) {
		/* checked before the upgrade; the token can only have expired since */
		close_soon(s, LWS_CLOSE_STATUS_POLICY_VIOLATION, "forbidden");
		return 0;
	}
	if (!s->mux) {
		struct reg_sub *sub = registry_join(app->reg, s->key, s, &s->subs);
		if (!sub)
			return -1;
		sub->legacy = 1;
		send_legacy_state(s, sub);
	}
	GW_SET(groups, (int64_t)registry_group_count(app->reg));
	GW_SET(subscriptions, (int64_t)registry_sub_count(app->reg));
	GW_DBG("%s: %s connected to %s", __func__, s->ip, s->mux ? "/ws" : s->key);
	return 0;
}

static void on_closed(struct gw_session *s)
{
	struct gw_app *app = s->app;

	if (!app)
		return;   /* never established */
	registry_leave_all(app->reg, &s->subs);
	queue_clear(s);
	free(s->q);
	free(s->rx);
	auth_claims_free(s->claims);
	if (s->prev)
		s->prev->next = s->next;
	else
		app->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	app->nsessions--;
	iplimit_del(&app->ips, s->ip);
	GW_SET(ws_connections, (int64_t)app->nsessions);
	GW_SET(groups, (int64_t)registry_group_count(app->reg));
	GW_SET(subscriptions, (int64_t)registry_sub_count(app->reg));
	s->app = NULL;
}

void ws_close_all(struct gw_app *app)
{
	for (struct gw_session *s = app->sessions; s; s = s->next) {
		queue_clear(s);
		close_soon(s, LWS_CLOSE_STATUS_GOINGAWAY, "server shutting down");
	}
}

/* ---- legacy socket: publishes from a token holder ---- */

static void legacy_receive(struct gw_session *s, const char *msg, size_t len)
{
	struct gw_app *app = s->app;
	struct gw_job *job;
	char err[200];
	int r;

	if (!s->publisher) {
		GW_WARN("%s: %s sent a frame on the legacy socket of %s but is not a trusted publisher; closing",
			__func__, s->ip, s->key);
		close_soon(s, LWS_CLOSE_STATUS_POLICY_VIOLATION,
			   "publishing needs a publish token or a --publish-networks peer");
		return;
	}
	job = writer_job_new(GW_SRC_WS, 0);
	if (!job)
		return;
	job->cookie = (uintptr_t)s->wsi;
	r = proto_decode_legacy(msg, len, (size_t)app->cfg->max_publish, s->key,
				&job->pub, err, sizeof(err));
	if (r) {
		GW_WARN("%s: refused a publish from %s on %s: %s", __func__, s->ip, s->key, err);
		GW_INC(publishes[GW_SRC_WS][GW_OUT_INVALID]);
		json_t *e = json_pack("{s:s, s:s}", "error", proto_err_name(r), "detail", err);
		if (e)
			send_json(s, e);
		writer_job_free(job);
		return;
	}
	writer_submit(app->writer, job);
}

void ws_publish_done(struct gw_app *app, struct gw_job *job)
{
	/* the legacy socket has no acknowledgement; failures are logged by the
	 * writer and the sender sees its own event arrive (it is a member) */
	(void)app;
	(void)job;
}

/* ---- /ws commands ---- */

struct replay {
	struct gw_session *s;
	uint32_t filter;
	uint64_t last;
	int failed;
};

/* service thread: one stored event during a replay */
static int replay_one(void *arg, uint64_t seq, const char *json, size_t len)
{
	struct replay *r = arg;
	struct gw_buf *b;

	r->last = seq;
	if (r->filter) {
		json_t *o = json_loadb(json, len, 0, NULL);
		int type = proto_parse_type(json_string_value(json_object_get(o, "type")));
		json_decref(o);
		if (type >= 0 && !(r->filter & (1u << type)))
			return 0;
	}
	b = gw_buf_new(json, len);
	if (!b) {
		r->failed = 1;
		return 1;
	}
	if (queue_push(r->s, b, 1)) {
		r->failed = 1;
		gw_buf_unref(b);
		return 1;
	}
	r->s->qgrace++;
	gw_buf_unref(b);
	return 0;
}

static int count_only(void *arg, uint64_t seq, const char *json, size_t len)
{
	(void)arg, (void)seq, (void)json, (void)len;
	return 0;
}

/* cmd was decoded by proto_decode_command: its key, filter and since are valid */
static void cmd_subscribe(struct gw_session *s, const struct gw_cmd *cmd)
{
	struct gw_app *app = s->app;
	json_t *id = cmd->id;
	const char *key = cmd->key;
	const char *epoch = writer_epoch(app->writer);
	char reason[160];
	uint32_t filter = cmd->filter;
	struct reg_sub *sub;
	struct gw_state st;
	int replayed = 0;

	if (!auth_allows(s->claims, key)) {
		send_error(s, id, "forbidden", auth_expired(s->claims) ? "the token has expired"
			   : "the token does not allow this submission");
		return;
	}
	sub = registry_owner_find(s->subs, key);
	if (sub) {
		registry_leave(app->reg, sub, &s->subs);   /* re-subscribe: start over */
	} else {
		size_t n = 0;
		for (struct reg_sub *x = s->subs; x; x = x->next)
			n++;
		if (n >= (size_t)app->cfg->max_subscriptions) {
			snprintf(reason, sizeof(reason), "at most %ld subscriptions per connection",
				 app->cfg->max_subscriptions);
			send_error(s, id, "too_many", reason);
			return;
		}
	}
	sub = registry_join(app->reg, key, s, &s->subs);
	if (!sub) {
		send_error(s, id, "unavailable", "out of memory");
		return;
	}
	sub->filter = filter;
	memset(&st, 0, sizeof(st));
	if (store_get_state(app->rstore, key, &st)) {
		registry_leave(app->reg, sub, &s->subs);
		send_error(s, id, "unavailable", "the store cannot be read");
		return;
	}
	/* ack first, then replay or snapshot, then live events */
	json_t *ack = json_pack("{s:s}", "op", "ack");
	if (id)
		json_object_set(ack, "id", id);
	json_object_set_new(ack, "submission", json_string(key));
	json_object_set_new(ack, "epoch", json_string(epoch));
	json_object_set_new(ack, "seq", json_integer((json_int_t)st.seq));
	send_json(s, ack);

	if (cmd->has_since && !strcmp(cmd->since_epoch, epoch)) {
		uint64_t from = cmd->since_seq;
		uint64_t oldest = 0;
		struct replay r = { s, filter, from, 0 };

		if (from == st.seq) {
			replayed = 1;    /* nothing missed */
		} else if (from < st.seq) {
			/* only when every missed event is still stored */
			int n = store_events_since(app->rstore, key, from, 1,
						   count_only, NULL, &oldest);
			if (n >= 0 && oldest && oldest <= from + 1 &&
			    store_events_since(app->rstore, key, from, REPLAY_MAX,
					       replay_one, &r, &oldest) >= 0 && !r.failed) {
				replayed = 1;
				/* events committed after the state read came in the replay too */
				if (r.last > st.seq)
					st.seq = r.last;
			}
		}
	}
	if (!replayed)
		send_str(s, proto_encode_snapshot(&st, epoch));
	sub->last_seq = st.seq;
	proto_state_clear(&st);
	GW_SET(groups, (int64_t)registry_group_count(app->reg));
	GW_SET(subscriptions, (int64_t)registry_sub_count(app->reg));
}

static void cmd_unsubscribe(struct gw_session *s, const struct gw_cmd *cmd)
{
	json_t *id = cmd->id;
	const char *key = cmd->key;
	struct reg_sub *sub = registry_owner_find(s->subs, key);

	if (!sub) {
		send_error(s, id, "not_found", "not subscribed to this submission");
		return;
	}
	registry_leave(s->app->reg, sub, &s->subs);
	GW_SET(groups, (int64_t)registry_group_count(s->app->reg));
	GW_SET(subscriptions, (int64_t)registry_sub_count(s->app->reg));
	json_t *ack = json_pack("{s:s}", "op", "ack");
	if (id)
		json_object_set(ack, "id", id);
	json_object_set_new(ack, "submission", json_string(key));
	send_json(s, ack);
}

static void mux_receive(struct gw_session *s, const char *msg, size_t len)
{
	struct gw_cmd cmd;
	char reason[200];
	int r = proto_decode_command(msg, len, &cmd, reason, sizeof(reason));

	if (r == GW_EJSON) {
		send_error(s, NULL, "bad_request", reason);
		s->garbage++;
		goto out;
	}
	s->garbage = 0;
	if (r) {
		send_error(s, cmd.id, "bad_request", reason);
		if (cmd.op < 0)      /* no op, or one we do not know */
			s->garbage++;
	} else if (cmd.op == GW_CMD_SUBSCRIBE) {
		cmd_subscribe(s, &cmd);
	} else if (cmd.op == GW_CMD_UNSUBSCRIBE) {
		cmd_unsubscribe(s, &cmd);
	} else {
		json_t *pong = json_pack("{s:s}", "op", "pong");
		if (cmd.id)
			json_object_set(pong, "id", cmd.id);
		send_json(s, pong);
	}
out:
	proto_cmd_free(&cmd);
	if (s->garbage >= GARBAGE_LIMIT)
		close_soon(s, LWS_CLOSE_STATUS_POLICY_VIOLATION, "too many bad commands");
}

/* reassembles fragments up to --max-frame, then handles the whole message */
static int on_receive(struct gw_session *s, struct lws *wsi, const void *in, size_t len)
{
	size_t max = (size_t)s->app->cfg->max_frame;
	int final = lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi);

	if (s->close_code)
		return 0;
	if (lws_is_first_fragment(wsi) && !s->rxlen)
		s->rx_oversize = 0;
	if (!s->rx_oversize) {
		if (s->rxlen + len > max) {
			s->rx_oversize = 1;
			free(s->rx);
			s->rx = NULL;
			s->rxlen = 0;
		} else if (len) {
			unsigned char *nrx = realloc(s->rx, s->rxlen + len);
			if (!nrx)
				return -1;
			s->rx = nrx;
			memcpy(s->rx + s->rxlen, in, len);
			s->rxlen += len;
		}
	}
	if (!final)
		return 0;
	if (s->rx_oversize) {
		char reason[96];
		snprintf(reason, sizeof(reason), "message over the %zu byte limit", max);
		GW_WARN("%s: %s sent an oversize message", __func__, s->ip);
		if (s->mux) {
			send_error(s, NULL, "too_large", reason);
			if (++s->garbage >= GARBAGE_LIMIT)
				close_soon(s, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "too large");
		} else {
			close_soon(s, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "message too large");
		}
	} else if (lws_frame_is_binary(wsi)) {
		if (s->mux) {
			send_error(s, NULL, "bad_request", "binary messages are not accepted");
			s->garbage++;
		} else {
			close_soon(s, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE, "text frames only");
		}
	} else if (s->mux) {
		mux_receive(s, (const char *)s->rx, s->rxlen);
	} else {
		legacy_receive(s, (const char *)s->rx, s->rxlen);
	}
	free(s->rx);
	s->rx = NULL;
	s->rxlen = 0;
	s->rx_oversize = 0;
	/* the client sets the pace: while its replies pile up, read no more
	 * of its commands (on_writeable resumes), so pipelining many commands
	 * costs it waiting, not us memory */
	if (!s->rx_paused && !s->close_code && s->qlen >= (unsigned)s->app->cfg->send_queue) {
		s->rx_paused = 1;
		lws_rx_flow_control(wsi, 0);
	}
	return 0;
}

int ws_callback(struct lws *wsi, int reason, void *user, void *in, size_t len)
{
	struct gw_session *s = user;

	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED:
		return on_established(s, wsi);
	case LWS_CALLBACK_RECEIVE:
		return s->app ? on_receive(s, wsi, in, len) : -1;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return s->app ? on_writeable(s) : -1;
	case LWS_CALLBACK_CLOSED:
		on_closed(s);
		return 0;
	default:
		return 0;
	}
}
