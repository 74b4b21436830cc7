/*
 * HTTP: the publish API, the read API, health, metrics and static files,
 * service thread only.
 *
 * Responses are never written from the request callback: the handler fills
 * the per-session response (status, type, body) and asks for WRITEABLE; the
 * first WRITEABLE sends the headers, with the body in the same write when it
 * fits one chunk; a longer body follows in chunks on later ones, the last
 * with LWS_WRITE_HTTP_FINAL. A publish is decoded here and queued to
 * the writer; its done callback (run by the core after the commit and the
 * fan-out) answers it; if the client hung up meanwhile the job's pending
 * record is simply orphaned and freed there.
 */
#include <libwebsockets.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "auth.h"
#include "chunked.h"
#include "config.h"
#include "conn.h"
#include "http_api.h"
#include "hub.h"
#include "log.h"
#include "metrics.h"
#include "proto.h"
#include "reqparse.h"
#include "store.h"
#include "writer.h"

#define BODY_CHUNK 16384
#define HEADERS_MAX 1024   /* an answer's headers: status, type, length and three short ones */

/* a publish waiting for its commit; owned by the job (freed when it is
 * done); wsi is cleared if the connection closes first */
struct http_pending {
	struct lws *wsi;
};

#define PATH_LIMIT 256       /* longest request path we answer (414 beyond) */

/* lws's per-session data of an HTTP connection; the same memory serves a
 * WebSocket after an upgrade, so it is kept as small as ws_session's */
struct http_pss {
	char *path;              /* the request's path, query cut; malloc'd */
	int method;              /* LWSHUMETH_* */
	unsigned char *body;     /* request body; malloc'd */
	size_t blen, bcap;
	int too_big;
	int chunked;             /* Transfer-Encoding: chunked, decoded by ch */
	struct chunked ch;
	size_t raw;              /* framing + data bytes of a chunked body so far */
	struct http_pending *pending;
	/* response */
	int status;
	const char *ctype;
	const char *allow;       /* Allow header for 405 */
	char *resp;              /* malloc'd */
	size_t rlen, roff;
	int headers_sent;
	int close_after;
	int counted;             /* in the core's count of answers being written */
};

size_t http_pss_size(void)
{
	return sizeof(struct http_pss);
}

/* ---- responses ---- */

/* an answer is fully written or its connection is gone */
static void reply_finished(struct lws *wsi, struct http_pss *h)
{
	if (h->counted)
		hub_reply_end(hub_of(wsi));
	h->counted = 0;
}

/* takes resp (malloc'd) */
static int reply(struct lws *wsi, struct http_pss *h, int status,
		 const char *ctype, char *resp, size_t len)
{
	/* counted until written, so that a stopping gateway drains it */
	if (!h->counted)
		hub_reply_begin(hub_of(wsi));
	h->counted = 1;
	free(h->resp);
	h->status = status;
	h->ctype = ctype;
	h->resp = resp;
	h->rlen = resp ? len : 0;
	h->roff = 0;
	h->headers_sent = 0;
	lws_callback_on_writable(wsi);
	return 0;
}

static int reply_json(struct lws *wsi, struct http_pss *h, int status, json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);

	json_decref(o);
	if (!s)
		return -1;
	return reply(wsi, h, status, "application/json", s, strlen(s));
}

static int reply_error(struct lws *wsi, struct http_pss *h, int status,
		       const char *error, const char *detail)
{
	return reply_json(wsi, h, status,
			  json_pack("{s:s, s:s}", "error", error, "detail", detail));
}

/* the answer's headers into [*p, end), finalized (not written) */
static int add_headers(struct lws *wsi, struct http_pss *h, unsigned char **p,
		       unsigned char *end)
{
	if (lws_add_http_common_headers(wsi, (unsigned)h->status, h->ctype,
					(lws_filepos_t)h->rlen, p, end) ||
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
					(const unsigned char *)"no-store", 8, p, end) ||
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"x-content-type-options:",
					(const unsigned char *)"nosniff", 7, p, end))
		return -1;
	if (h->allow && lws_add_http_header_by_name(wsi, (const unsigned char *)"allow:",
			(const unsigned char *)h->allow, (int)strlen(h->allow), p, end))
		return -1;
	if (h->close_after && lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
			(const unsigned char *)"close", 5, p, end))
		return -1;
	return lws_finalize_http_header(wsi, p, end) ? -1 : 0;
}

static int on_writeable(struct lws *wsi, struct http_pss *h)
{
	unsigned char buf[LWS_PRE + HEADERS_MAX + BODY_CHUNK], *start = buf + LWS_PRE,
		      *p = start;
	size_t n;
	int final;

	if (!h->status)
		return 0;         /* still waiting for the writer */
	if (!h->headers_sent) {
		if (add_headers(wsi, h, &p, start + HEADERS_MAX - 1))
			return -1;
		h->headers_sent = 1;
		/* A short answer (a publish's) goes out with its headers in one
		 * write: one send, one segment for the client to wake up to.
		 * lws writes HTTP/1.1 headers and body alike as raw bytes (the
		 * vhost's ALPN is http/1.1 only, so never h2 framing) and keeps
		 * whatever the socket did not take, sending it first. */
		if (h->rlen <= BODY_CHUNK) {
			if (h->rlen)   /* resp may be NULL then */
				memcpy(p, h->resp, h->rlen);
			p += h->rlen;
			h->roff = h->rlen;
			if (lws_write(wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_FINAL) !=
			    (int)(p - start))
				return -1;
			goto done;
		}
		if (lws_write(wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_HEADERS) !=
		    (int)(p - start))
			return -1;
		lws_callback_on_writable(wsi);
		return 0;
	}
	n = h->rlen - h->roff;
	if (n > BODY_CHUNK)
		n = BODY_CHUNK;
	final = h->roff + n == h->rlen;
	memcpy(start, h->resp + h->roff, n);
	if (lws_write(wsi, start, n, final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)n)
		return -1;
	h->roff += n;
	if (!final) {
		lws_callback_on_writable(wsi);
		return 0;
	}
done:
	free(h->resp);
	h->resp = NULL;
	h->status = 0;
	reply_finished(wsi, h);
	if (h->close_after)
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* room for n more body bytes, growing geometrically; 0 or -1 */
static int body_reserve(struct http_pss *h, size_t n)
{
	size_t cap = h->bcap ? h->bcap : 1024;
	unsigned char *nb;

	if (h->blen + n <= h->bcap)
		return 0;
	while (cap < h->blen + n)
		cap *= 2;
	nb = realloc(h->body, cap);
	if (!nb)
		return -1;
	h->body = nb;
	h->bcap = cap;
	return 0;
}

static void body_drop(struct http_pss *h)
{
	free(h->body);
	h->body = NULL;
	h->blen = h->bcap = 0;
}

/* ---- publish ---- */

/* 1 when a Transfer-Encoding value ends with the chunked coding (RFC 9112:
 * chunked is the last coding applied) */
static int transfer_is_chunked(const char *te)
{
	size_t n = strlen(te);

	while (n && (te[n - 1] == ' ' || te[n - 1] == '\t'))
		n--;
	return n >= 7 && !strncasecmp(te + n - 7, "chunked", 7) &&
	       (n == 7 || te[n - 8] == ',' || te[n - 8] == ' ' || te[n - 8] == '\t');
}

/* a publish refused before it reached the writer: one log line with the
 * peer and the reason, the invalid counter, and the JSON error */
static int refuse_publish(struct lws *wsi, struct http_pss *h, int status,
			  const char *error, const char *detail)
{
	char peer[GW_ADDR_MAX];

	conn_client(wsi, hub_cfg(hub_of(wsi))->proxy_nets, peer, sizeof(peer));
	GW_WARN_RL("%s: refused a publish from %s: %d %s", __func__, peer, status, detail);
	GW_INC(publishes[GW_SRC_HTTP][GW_OUT_INVALID]);
	return reply_error(wsi, h, status, error, detail);
}

/* service thread (the job's done callback): the answer to a publish, once
 * committed and fanned out, unless the client left meanwhile */
static void publish_done(struct gw_job *job, void *arg)
{
	struct http_pending *pend = arg;
	struct http_pss *h;
	json_t *o;

	if (!pend->wsi) {        /* the client left before the commit */
		free(pend);
		return;
	}
	h = lws_wsi_user(pend->wsi);
	h->pending = NULL;
	if (job->result >= 0) {
		o = json_pack("{s:b, s:s, s:s, s:b}", "accepted", 1, "submission", job->key,
			      "type", proto_type_name(job->type), "duplicate", job->result == 1);
		if (job->result == 0) {
			json_object_set_new(o, "epoch", json_string(hub_epoch(hub_of(pend->wsi))));
			json_object_set_new(o, "seq", json_integer((json_int_t)job->seq));
		}
		reply_json(pend->wsi, h, 200, o);
	} else if (job->result == GW_EINTERNAL && job->alone) {
		/* the store refused this publish alone: sending it again will
		 * not help, unlike a 503 */
		reply_error(pend->wsi, h, 500, "internal", job->err);
	} else if (job->result == GW_EINTERNAL) {
		reply_error(pend->wsi, h, 503, "unavailable", job->err);
	} else {
		reply_error(pend->wsi, h, proto_http_status(job->result),
			    proto_err_name(job->result), job->err);
	}
	free(pend);
}

static int publish(struct hub *hub, struct lws *wsi, struct http_pss *h)
{
	struct gw_job *job;
	struct http_pending *pend;
	char err[200];
	int r;

	if (h->too_big) {
		snprintf(err, sizeof(err), "publish body over the %ld byte limit", hub_cfg(hub)->max_publish);
		return refuse_publish(wsi, h, 413, "too_large", err);
	}
	if (hub_draining(hub))
		return reply_error(wsi, h, 503, "unavailable", "shutting down");
	job = writer_job_new(GW_SRC_HTTP, 0);
	pend = calloc(1, sizeof(*pend));
	if (!job || !pend) {
		writer_job_free(job);
		free(pend);
		return reply_error(wsi, h, 500, "internal", "out of memory");
	}
	job->bytes = h->blen;
	r = proto_decode_publish((const char *)h->body, h->blen, (size_t)hub_cfg(hub)->max_publish,
				 NULL, &job->pub, err, sizeof(err));
	body_drop(h);
	if (r) {
		writer_job_free(job);
		free(pend);
		return refuse_publish(wsi, h, proto_http_status(r), proto_err_name(r), err);
	}
	job->done = publish_done;
	job->done_arg = pend;
	if (writer_submit(hub_writer(hub), job)) {
		/* the writer's queue is full (--writer-queue): try again later */
		writer_job_free(job);
		free(pend);
		GW_INC(publishes[GW_SRC_HTTP][GW_OUT_FAILED]);
		GW_INC(writer_queue_full);
		return reply_error(wsi, h, 503, "unavailable",
				   "the store's write queue is full (--writer-queue); try again");
	}
	pend->wsi = wsi;
	h->pending = pend;
	return 0;
}

/* ---- reads ---- */

/* GET .../events: at most this many per answer (?limit=, 1..EVENTS_MAX) */
#define EVENTS_DEFAULT 100
#define EVENTS_MAX 1000

struct events_acc {
	json_t *arr;
	uint64_t last;
};

static int add_event(void *arg, uint64_t seq, int type, const char *json, size_t len)
{
	struct events_acc *a = arg;
	json_t *e = json_loadb(json, len, 0, NULL);

	(void)type;
	a->last = seq;
	if (e)
		json_array_append_new(a->arr, e);
	return 0;
}

/* ?name=N as a number from lo to hi; 0 and *out, 1 when absent, -1 when bad */
static int query_number(struct lws *wsi, const char *name, unsigned long long lo,
			unsigned long long hi, unsigned long long *out)
{
	char arg[32];
	const char *v = lws_get_urlarg_by_name(wsi, name, arg, sizeof(arg));
	uint64_t n;

	/* lws copies "name=N" into arg and returns a pointer to N */
	if (!v)
		return 1;
	if (reqparse_uint(v, &n) || n < lo || n > hi)
		return -1;
	*out = n;
	return 0;
}

/* stored events after ?since=, a page of ?limit= at most: "more" says
 * whether another page follows (ask again with since = "next") */
static int get_events(struct hub *hub, struct lws *wsi, struct http_pss *h, const char *key)
{
	unsigned long long since = 0, limit = EVENTS_DEFAULT;
	uint64_t oldest = 0;
	struct events_acc acc = { json_array(), 0 };
	json_t *o;
	int n;

	if (query_number(wsi, "since=", 0, ULLONG_MAX, &since) < 0) {
		json_decref(acc.arr);
		return reply_error(wsi, h, 400, "bad_request", "since must be a non-negative integer");
	}
	if (query_number(wsi, "limit=", 1, EVENTS_MAX, &limit) < 0) {
		json_decref(acc.arr);
		return reply_error(wsi, h, 400, "bad_request", "limit must be from 1 to 1000");
	}
	acc.last = since;
	n = store_events_since(hub_store(hub), key, since, (unsigned)limit, add_event, &acc, &oldest);
	if (n < 0) {
		json_decref(acc.arr);
		return reply_error(wsi, h, 503, "unavailable", "the store cannot be read");
	}
	o = json_pack("{s:s, s:s, s:I, s:b, s:o, s:b, s:I}", "submission", key,
		      "epoch", hub_epoch(hub), "oldest", (json_int_t)oldest,
		      /* events after since were pruned: the client must take a snapshot */
		      "truncated", oldest > since + 1, "events", acc.arr,
		      "more", (unsigned long long)n == limit, "next", (json_int_t)acc.last);
	return reply_json(wsi, h, 200, o);
}

static int get_submission(struct hub *hub, struct lws *wsi, struct http_pss *h, const char *key)
{
	struct gw_state st;
	json_t *o;

	memset(&st, 0, sizeof(st));
	if (store_get_state(hub_store(hub), key, &st))
		return reply_error(wsi, h, 503, "unavailable", "the store cannot be read");
	if (!st.exists) {
		proto_state_clear(&st);
		return reply_error(wsi, h, 404, "not_found", "no submission with this key has been published to");
	}
	o = proto_state_json(&st, hub_epoch(hub));
	proto_state_clear(&st);
	return reply_json(wsi, h, 200, o);
}

static int add_listed(void *arg, const char *key, int status, const char *notification,
		      const char *updated_at, uint64_t seq)
{
	json_t *item = json_pack("{s:s, s:s?, s:s, s:s?, s:I}", "submission", key,
				 "status", proto_status_name(status),
				 "notification", notification ? notification : "",
				 "updated_at", updated_at, "seq", (json_int_t)seq);

	if (item)
		json_array_append_new(arg, item);
	return 0;
}

static int list_submissions(struct hub *hub, struct lws *wsi, struct http_pss *h)
{
	unsigned long long limit = 50;
	json_t *arr = json_array();

	if (query_number(wsi, "limit=", 1, 1000, &limit) < 0) {
		json_decref(arr);
		return reply_error(wsi, h, 400, "bad_request", "limit must be from 1 to 1000");
	}
	if (store_list_recent(hub_store(hub), (unsigned)limit, add_listed, arr) < 0) {
		json_decref(arr);
		return reply_error(wsi, h, 503, "unavailable", "the store cannot be read");
	}
	return reply_json(wsi, h, 200, json_pack("{s:o}", "submissions", arr));
}

/* ---- static files ---- */

static const char *mime_of(const char *path)
{
	static const struct { const char *ext, *type; } types[] = {
		{ ".html", "text/html; charset=utf-8" }, { ".css", "text/css; charset=utf-8" },
		{ ".js", "text/javascript; charset=utf-8" }, { ".mjs", "text/javascript; charset=utf-8" },
		{ ".json", "application/json" }, { ".svg", "image/svg+xml" },
		{ ".png", "image/png" }, { ".ico", "image/x-icon" }, { ".txt", "text/plain; charset=utf-8" },
	};
	const char *dot = strrchr(path, '.');

	for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcmp(dot, types[i].ext))
			return types[i].type;
	return "application/octet-stream";
}

static int serve_file(struct hub *hub, struct lws *wsi, struct http_pss *h, const char *rel)
{
	char full[1024];
	struct stat sb;
	int r;

	if (!reqparse_safe_rel_path(rel))
		return reply_error(wsi, h, 404, "not_found", "no such file");
	snprintf(full, sizeof(full), "%s/%s", hub_cfg(hub)->web_dir, rel);
	/* only regular files; a missing one gets our JSON 404, not lws's page */
	if (stat(full, &sb) || !S_ISREG(sb.st_mode))
		return reply_error(wsi, h, 404, "not_found", "no such file");
	r = lws_serve_http_file(wsi, full, mime_of(full), NULL, 0);
	if (r < 0)
		return reply_error(wsi, h, 404, "not_found", "no such file");
	/* >0: lws already finished the transaction; 0: it streams the file */
	return r > 0 ? (lws_http_transaction_completed(wsi) ? -1 : 0) : 0;
}

/* ---- routing ---- */

static int method_not_allowed(struct lws *wsi, struct http_pss *h, const char *allow)
{
	char detail[64];

	h->allow = allow;
	snprintf(detail, sizeof(detail), "this resource allows only %s", allow);
	return reply_error(wsi, h, 405, "method_not_allowed", detail);
}

static int route(struct hub *hub, struct lws *wsi, struct http_pss *h)
{
	const char *path = h->path;
	char reason[200], key[GW_KEY_MAX + 1];
	int get = h->method == LWSHUMETH_GET, st, api;

	if (!strcmp(path, "/healthz"))
		return get ? reply_json(wsi, h, 200, json_pack("{s:s}", "status", "ok"))
			   : method_not_allowed(wsi, h, "GET");
	if (!strcmp(path, "/readyz")) {
		if (!get)
			return method_not_allowed(wsi, h, "GET");
		if (hub_not_ready(hub, reason, sizeof(reason)))
			return reply_error(wsi, h, 503, "not_ready", reason);
		return reply_json(wsi, h, 200, json_pack("{s:s}", "status", "ready"));
	}
	if (!strcmp(path, "/metrics")) {
		char *m;
		if (!get)
			return method_not_allowed(wsi, h, "GET");
		m = metrics_render();
		return m ? reply(wsi, h, 200, "text/plain; version=0.0.4; charset=utf-8", m, strlen(m))
			 : reply_error(wsi, h, 500, "internal", "out of memory");
	}
	if (!strcmp(path, "/api/v1/publish")) {
		if (h->method != LWSHUMETH_POST)
			return method_not_allowed(wsi, h, "POST");
		return publish(hub, wsi, h);
	}
	if ((api = reqparse_api_path(path, key)) != REQ_API_NONE) {
		struct gw_claims *claims = NULL;

		if (!get)
			return method_not_allowed(wsi, h, "GET");
		if (api == REQ_API_LIST) {
			if ((st = auth_browser(hub_cfg(hub), wsi, NULL, &claims, reason, sizeof(reason))))
				return reply_error(wsi, h, st, conn_status_error(st), reason);
			st = claims && !claims->all;   /* the list names every key */
			auth_claims_free(claims);
			if (st)
				return reply_error(wsi, h, 403, "forbidden",
						   "listing submissions needs a token for \"*\"");
			return list_submissions(hub, wsi, h);
		}
		if (api == REQ_API_BADKEY)
			return reply_error(wsi, h, 404, "not_found", "not a valid submission key");
		if ((st = auth_browser(hub_cfg(hub), wsi, key, &claims, reason, sizeof(reason))))
			return reply_error(wsi, h, st, conn_status_error(st), reason);
		auth_claims_free(claims);
		if (api == REQ_API_STATE)
			return get_submission(hub, wsi, h, key);
		if (api == REQ_API_EVENTS)
			return get_events(hub, wsi, h, key);
		return reply_error(wsi, h, 404, "not_found", "no such resource");
	}
	if (!strncmp(path, "/api/", 5))
		return reply_error(wsi, h, 404, "not_found", "no such API endpoint");

	/* the status page and static files */
	if (!get)
		return method_not_allowed(wsi, h, "GET");
	if (!strcmp(path, "/"))
		return serve_file(hub, wsi, h, "index.html");
	if (!strncmp(path, "/submissions/", 13)) {
		if (!reqparse_key_path(path, "/submissions/", key))
			return serve_file(hub, wsi, h, "submission.html");
		return reply_error(wsi, h, 404, "not_found", "not a valid submission key");
	}
	return serve_file(hub, wsi, h, path + 1);
}

static int on_http(struct hub *hub, struct lws *wsi, struct http_pss *h)
{
	char *uri = NULL, clen[32];
	int ulen = 0;

	free(h->path);           /* the last request's on this connection */
	memset(h, 0, sizeof(*h));
	/* stopping: take no new request (the connection just closes), so that
	 * no answer is begun that the shutdown could cut short */
	if (hub_draining(hub))
		return -1;
	h->method = lws_http_get_uri_and_method(wsi, &uri, &ulen);
	if (h->method < 0 || !uri || ulen <= 0 || ulen >= PATH_LIMIT ||
	    !(h->path = malloc((size_t)ulen + 1))) {
		h->close_after = 1;
		return reply_error(wsi, h, 414, "bad_request", "request line too long or unreadable");
	}
	memcpy(h->path, uri, (size_t)ulen);
	h->path[ulen] = '\0';
	h->path[strcspn(h->path, "?")] = '\0';

	if (h->method != LWSHUMETH_POST)
		return route(hub, wsi, h);
	if (strcmp(h->path, "/api/v1/publish"))
		return route(hub, wsi, h);   /* answered as 405 or 404 */
	{
		char reason[200];
		int st = auth_publisher(hub_cfg(hub), wsi, reason, sizeof(reason));
		if (st) {
			h->close_after = 1;   /* do not read a body we will not use */
			return refuse_publish(wsi, h, st, conn_status_error(st), reason);
		}
	}
	if (conn_header(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, clen, sizeof(clen))) {
		char te[128];

		/* lws 4.1 passes a chunked body through undecoded (as if it
		 * were 100 MB long): we decode it, answer when its last chunk
		 * is in, and close the connection after the answer, since lws
		 * cannot find where the next request would begin */
		if (!conn_header(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING, te, sizeof(te)) &&
		    transfer_is_chunked(te)) {
			h->chunked = 1;
			h->close_after = 1;
			chunked_init(&h->ch);
			return 0;
		}
		h->close_after = 1;
		return refuse_publish(wsi, h, 411, "length_required",
				      "a publish body needs a Content-Length or Transfer-Encoding: chunked");
	}
	if (strtoll(clen, NULL, 10) <= 0) {
		h->close_after = 1;
		return refuse_publish(wsi, h, 400, "bad_json",
				      "a publish needs a JSON body with a Content-Length");
	}
	if (strtoll(clen, NULL, 10) > hub_cfg(hub)->max_publish) {
		h->too_big = 1;
		h->close_after = 1;
		return publish(hub, wsi, h);  /* refuses with 413 without reading the body */
	}
	return 0;   /* the body follows: LWS_CALLBACK_HTTP_BODY */
}

/* a piece of a chunked body: decoded into the body; the publish goes ahead
 * (or is refused) as soon as the last chunk is in or the limit is passed */
static int on_chunked_body(struct hub *hub, struct lws *wsi, struct http_pss *h,
			   const void *in, size_t len)
{
	size_t max = (size_t)hub_cfg(hub)->max_publish, out = 0, used = 0;
	int r;

	h->raw += len;
	if (body_reserve(h, len))
		return -1;
	r = chunked_feed(&h->ch, in, len, h->body + h->blen, &out, &used);
	h->blen += out;
	if (r == GW_CHUNKED_BAD)
		return refuse_publish(wsi, h, 400, "bad_request",
				      "malformed chunked body (RFC 9112 section 7.1)");
	/* the framing may cost a few times the data, not without end */
	if (h->blen > max || h->raw > 2 * max + 65536) {
		h->too_big = 1;
		body_drop(h);
		return publish(hub, wsi, h);
	}
	return r == GW_CHUNKED_DONE ? publish(hub, wsi, h) : 0;
}

static int on_body(struct hub *hub, struct lws *wsi, struct http_pss *h,
		   const void *in, size_t len)
{
	/* already answered (refused before the body) or an empty piece: lws
	 * may still hand us the body of a refused request */
	if (h->too_big || h->status || h->pending || !in || !len)
		return 0;
	if (h->chunked)
		return on_chunked_body(hub, wsi, h, in, len);
	if (h->blen + len > (size_t)hub_cfg(hub)->max_publish) {
		h->too_big = 1;
		body_drop(h);
		return 0;
	}
	if (body_reserve(h, len))
		return -1;
	memcpy(h->body + h->blen, in, len);
	h->blen += len;
	return 0;
}

static void release(struct lws *wsi, struct http_pss *h)
{
	reply_finished(wsi, h);
	if (h->pending)
		h->pending->wsi = NULL;   /* the job will free it */
	h->pending = NULL;
	body_drop(h);
	free(h->resp);
	h->resp = NULL;
	free(h->path);
	h->path = NULL;
}

int http_callback(struct lws *wsi, int reason, void *user, void *in, size_t len)
{
	struct http_pss *h = user;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		return on_http(hub_of(wsi), wsi, h);
	case LWS_CALLBACK_HTTP_BODY:
		return on_body(hub_of(wsi), wsi, h, in, len);
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		/* a chunked body is complete when its last chunk is, not here */
		return h->status || h->pending || h->chunked ? 0 : publish(hub_of(wsi), wsi, h);
	case LWS_CALLBACK_HTTP_WRITEABLE:
		return on_writeable(wsi, h);
	case LWS_CALLBACK_HTTP_FILE_COMPLETION:
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
	case LWS_CALLBACK_CLOSED_HTTP:
		if (h)
			release(wsi, h);
		return 0;
	default:
		return lws_callback_http_dummy(wsi, (enum lws_callback_reasons)reason, user, in, len);
	}
}
