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

#include "auth.h"
#include "config.h"
#include "conn.h"
#include "hub.h"
#include "log.h"
#include "metrics.h"
#include "proto.h"
#include "registry.h"
#include "store.h"
#include "writer.h"
#include "ws_session.h"

#define GARBAGE_LIMIT 10     /* consecutive bad commands before we hang up */
#define REPLAY_MAX 100000

/* lws's per-session data of a WebSocket */
struct ws_pss {
	struct gw_session s;     /* the core's part; first */
	char key[GW_KEY_MAX + 1];/* legacy: the watched submission */
	int publisher;           /* legacy socket of a trusted publisher (auth_trusted_publisher) */
	struct gw_claims *claims;/* NULL: open mode; freed at close */
	unsigned char *rx;       /* reassembly of a fragmented message */
	size_t rxlen;
	int rx_oversize;         /* current message exceeded --max-frame */
	int garbage;             /* consecutive refused commands */
};

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
	static const char pfx[] = "/ws/submissions/";
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
	GW_WARN("%s: refused a WebSocket from %s: %d %s", __func__, peer, st, why);
	return conn_refuse(wsi, st, conn_status_error(st), why);
}

static void send_legacy_state(struct ws_pss *p, struct reg_sub *sub)
{
	struct gw_state st;

	memset(&st, 0, sizeof(st));
	if (store_get_state(hub_store(p->s.hub), p->key, &st)) {
		GW_ERR("%s: cannot read %s from the store", __func__, p->key);
		return;
	}
	sub->last_seq = st.seq;
	/* a submission nobody published to gets no frame: legacy pages render
	 * their state server-side, and a frame of nulls would blank it */
	if (st.exists)
		hub_send_str(&p->s, proto_encode_legacy(&st));
	proto_state_clear(&st);
}

static int on_established(struct ws_pss *p, struct lws *wsi)
{
	struct hub *h = hub_of(wsi);
	const struct gw_config *cfg = hub_cfg(h);
	char path[256], reason[160], ip[GW_ADDR_MAX];
	int mux;

	request_path(wsi, path, sizeof(path));
	mux = legacy_key(path, p->key) != 0;
	conn_client(wsi, cfg->proxy_nets, ip, sizeof(ip));
	p->publisher = 0;
	p->claims = NULL;
	p->rx = NULL;
	p->rxlen = 0;
	p->rx_oversize = p->garbage = 0;
	if (hub_session_open(h, &p->s, wsi, ip, mux))
		return -1;
	if (!mux && auth_trusted_publisher(cfg, wsi))
		p->publisher = 1;
	else if (auth_browser(cfg, wsi, mux ? NULL : p->key, &p->claims, reason, sizeof(reason))) {
		/* checked before the upgrade; the token can only have expired since */
		hub_close_soon(&p->s, LWS_CLOSE_STATUS_POLICY_VIOLATION, "forbidden");
		return 0;
	}
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
	free(p->rx);
	p->rx = NULL;
	auth_claims_free(p->claims);
	p->claims = NULL;
}

/* ---- legacy socket: publishes from a trusted publisher ---- */

static void legacy_receive(struct ws_pss *p, const char *msg, size_t len)
{
	struct hub *h = p->s.hub;
	struct gw_job *job;
	char err[200];
	int r;

	if (!p->publisher) {
		GW_WARN("%s: %s sent a frame on the legacy socket of %s but is not a trusted publisher; closing",
			__func__, p->s.ip, p->key);
		hub_close_soon(&p->s, LWS_CLOSE_STATUS_POLICY_VIOLATION,
			       "publishing needs a publish token or a --publish-networks peer");
		return;
	}
	job = writer_job_new(GW_SRC_WS, 0);
	if (!job)
		return;
	/* no answer on this socket: failures are logged by the writer and the
	 * sender sees its own event arrive (it is a member) */
	r = proto_decode_legacy(msg, len, (size_t)hub_cfg(h)->max_publish, p->key,
				&job->pub, err, sizeof(err));
	if (r) {
		GW_WARN("%s: refused a publish from %s on %s: %s", __func__, p->s.ip, p->key, err);
		GW_INC(publishes[GW_SRC_WS][GW_OUT_INVALID]);
		json_t *e = json_pack("{s:s, s:s}", "error", proto_err_name(r), "detail", err);
		if (e)
			send_json(p, e);
		writer_job_free(job);
		return;
	}
	job->bytes = len;
	if (writer_submit(hub_writer(h), job)) {
		/* the writer's queue is full: this publisher sends faster than the
		 * store commits. The legacy protocol has no answer to a publish, so
		 * say it and close with 1013 (try again later) rather than drop
		 * its frames silently. */
		writer_job_free(job);
		GW_INC(publishes[GW_SRC_WS][GW_OUT_FAILED]);
		GW_INC(writer_queue_full);
		GW_WARN("%s: %s publishes to %s faster than the store commits (write queue full); "
			"closing it with 1013", __func__, p->s.ip, p->key);
		json_t *e = json_pack("{s:s, s:s}", "error", "too_many", "detail",
				      "the store's write queue is full; try again later");
		if (e)
			send_json(p, e);
		hub_close_soon(&p->s, 1013, "write queue full");
	}
}

/* ---- /ws commands ---- */

struct replay {
	struct ws_pss *p;
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
	if (hub_send(&r->p->s, b, HUB_REPLAY)) {
		r->failed = 1;
		gw_buf_unref(b);
		return 1;
	}
	gw_buf_unref(b);
	return 0;
}

static int count_only(void *arg, uint64_t seq, const char *json, size_t len)
{
	(void)arg, (void)seq, (void)json, (void)len;
	return 0;
}

static int parse_filter(json_t *f, uint32_t *mask, char *reason, size_t len)
{
	json_t *kinds, *v;
	size_t i;

	*mask = 0;
	if (!f || json_is_null(f))
		return 0;
	kinds = json_object_get(f, "kinds");
	if (!json_is_object(f) || !json_is_array(kinds)) {
		snprintf(reason, len, "filter must be {\"kinds\":[event types]}");
		return -1;
	}
	json_array_foreach(kinds, i, v) {
		int t = proto_parse_type(json_string_value(v));
		if (t < 0) {
			snprintf(reason, len, "filter.kinds[%zu]: unknown event type", i);
			return -1;
		}
		*mask |= 1u << t;
	}
	return 0;
}

static void cmd_subscribe(struct ws_pss *p, json_t *cmd, json_t *id)
{
	struct hub *h = p->s.hub;
	struct store *rs = hub_store(h);
	json_t *jkey = json_object_get(cmd, "submission");
	json_t *since = json_object_get(cmd, "since");
	const char *key = json_string_value(jkey);
	const char *epoch = hub_epoch(h);
	char reason[160];
	uint32_t filter;
	struct reg_sub *sub;
	struct gw_state st;
	int replayed = 0;

	if (!key || !proto_key_valid(key, strlen(key))) {
		send_error(p, id, "bad_request", "submission must be a key of [A-Za-z0-9_.-]{1,64}");
		return;
	}
	if (parse_filter(json_object_get(cmd, "filter"), &filter, reason, sizeof(reason))) {
		send_error(p, id, "bad_request", reason);
		return;
	}
	if (since && !json_is_null(since) &&
	    (!json_is_object(since) || !json_is_string(json_object_get(since, "epoch")) ||
	     !json_is_integer(json_object_get(since, "seq")) ||
	     json_integer_value(json_object_get(since, "seq")) < 0)) {
		send_error(p, id, "bad_request", "since must be {\"epoch\":string,\"seq\":integer >= 0}");
		return;
	}
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

	if (since && json_is_object(since) &&
	    !strcmp(json_string_value(json_object_get(since, "epoch")), epoch)) {
		uint64_t from = (uint64_t)json_integer_value(json_object_get(since, "seq"));
		uint64_t oldest = 0;
		struct replay r = { p, filter, from, 0 };

		if (from == st.seq) {
			replayed = 1;    /* nothing missed */
		} else if (from < st.seq) {
			/* only when every missed event is still stored */
			int n = store_events_since(rs, key, from, 1,
						   count_only, NULL, &oldest);
			if (n >= 0 && oldest && oldest <= from + 1 &&
			    store_events_since(rs, key, from, REPLAY_MAX,
					       replay_one, &r, &oldest) >= 0 && !r.failed) {
				replayed = 1;
				/* events committed after the state read came in the replay too */
				if (r.last > st.seq)
					st.seq = r.last;
			}
		}
	}
	if (!replayed)
		hub_send_str(&p->s, proto_encode_snapshot(&st, epoch));
	sub->last_seq = st.seq;
	proto_state_clear(&st);
}

static void cmd_unsubscribe(struct ws_pss *p, json_t *cmd, json_t *id)
{
	const char *key = json_string_value(json_object_get(cmd, "submission"));
	struct reg_sub *sub = key ? registry_owner_find(p->s.subs, key) : NULL;

	if (!key) {
		send_error(p, id, "bad_request", "submission is required");
		return;
	}
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
	json_error_t jerr;
	json_t *cmd = json_loadb(msg, len, JSON_REJECT_DUPLICATES, &jerr);
	json_t *id;
	const char *op;

	if (!json_is_object(cmd)) {
		char reason[200];
		snprintf(reason, sizeof(reason), "not a JSON object: %s", cmd ? "wrong type" : jerr.text);
		send_error(p, NULL, "bad_request", reason);
		p->garbage++;
		goto out;
	}
	id = json_object_get(cmd, "id");
	if (id && !json_is_integer(id) && !json_is_string(id))
		id = NULL;
	op = json_string_value(json_object_get(cmd, "op"));
	p->garbage = 0;
	if (!op) {
		send_error(p, id, "bad_request", "op is required");
		p->garbage++;
	} else if (!strcmp(op, "subscribe")) {
		cmd_subscribe(p, cmd, id);
	} else if (!strcmp(op, "unsubscribe")) {
		cmd_unsubscribe(p, cmd, id);
	} else if (!strcmp(op, "ping")) {
		json_t *pong = json_pack("{s:s}", "op", "pong");
		if (id)
			json_object_set(pong, "id", id);
		send_json(p, pong);
	} else {
		send_error(p, id, "bad_request", "unknown op (subscribe, unsubscribe, ping)");
		p->garbage++;
	}
out:
	json_decref(cmd);
	if (p->garbage >= GARBAGE_LIMIT)
		hub_close_soon(&p->s, LWS_CLOSE_STATUS_POLICY_VIOLATION, "too many bad commands");
}

/* reassembles fragments up to --max-frame, then handles the whole message */
static int on_receive(struct ws_pss *p, struct lws *wsi, const void *in, size_t len)
{
	size_t max = (size_t)hub_cfg(p->s.hub)->max_frame;
	int final = lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi);

	if (p->s.close_code)
		return 0;
	if (lws_is_first_fragment(wsi) && !p->rxlen)
		p->rx_oversize = 0;
	if (!p->rx_oversize) {
		if (p->rxlen + len > max) {
			p->rx_oversize = 1;
			free(p->rx);
			p->rx = NULL;
			p->rxlen = 0;
		} else if (len) {
			unsigned char *nrx = realloc(p->rx, p->rxlen + len);
			if (!nrx)
				return -1;
			p->rx = nrx;
			memcpy(p->rx + p->rxlen, in, len);
			p->rxlen += len;
		}
	}
	if (!final)
		return 0;
	if (p->rx_oversize) {
		char reason[96];
		snprintf(reason, sizeof(reason), "message over the %zu byte limit", max);
		GW_WARN("%s: %s sent an oversize message", __func__, p->s.ip);
		if (p->s.mux) {
			send_error(p, NULL, "too_large", reason);
			if (++p->garbage >= GARBAGE_LIMIT)
				hub_close_soon(&p->s, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "too large");
		} else {
			hub_close_soon(&p->s, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "message too large");
		}
	} else if (lws_frame_is_binary(wsi)) {
		if (p->s.mux) {
			send_error(p, NULL, "bad_request", "binary messages are not accepted");
			p->garbage++;
		} else {
			hub_close_soon(&p->s, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE, "text frames only");
		}
	} else if (p->s.mux) {
		mux_receive(p, (const char *)p->rx, p->rxlen);
	} else {
		legacy_receive(p, (const char *)p->rx, p->rxlen);
	}
	free(p->rx);
	p->rx = NULL;
	p->rxlen = 0;
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
		return p->s.hub ? on_receive(p, wsi, in, len) : -1;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return p->s.hub ? hub_writeable(&p->s) : -1;
	case LWS_CALLBACK_CLOSED:
		on_closed(p);
		return 0;
	default:
		return 0;
	}
}
