/*
 * The libwebsockets side: one context, one vhost, one protocol that serves
 * HTTP and WebSocket on the same port. The callback only dispatches: HTTP
 * reasons to http_api.c, WebSocket reasons to ws_session.c. Other threads
 * reach the service thread in exactly one way: they queue work (writer done
 * jobs, handoff tasks) and call lws_cancel_service(), which makes lws call
 * us with LWS_CALLBACK_EVENT_WAIT_CANCELLED on this thread.
 */
#include <ev.h>
#include <libwebsockets.h>
#include <signal.h>
#include <string.h>

#include "bridge.h"
#include "gateway.h"
#include "log.h"
#include "metrics.h"

_Static_assert(GW_PRE >= LWS_PRE, "GW_PRE must leave room for the lws frame header");

struct gw_app *gw_app_of(struct lws *wsi)
{
	return lws_context_user(lws_get_context(wsi));
}

int gw_app_post(struct gw_app *app, handoff_fn fn, void *arg)
{
	if (handoff_post(app->tasks, fn, arg))
		return -1;
	lws_cancel_service(app->ctx);
	return 0;
}

void server_wake(void *arg)
{
	struct gw_app *app = arg;

	if (app->ctx)
		lws_cancel_service(app->ctx);
}

void server_finish_jobs(struct gw_app *app)
{
	struct gw_job *j = writer_take_done(app->writer);

	while (j) {
		struct gw_job *next = j->next;

		if (j->result == 0) {
			ws_fanout(app, j);
			metrics_observe(&gw_metrics.publish_to_send_seconds,
					metrics_now_ns() - j->t_in_ns);
		}
		if (j->source == GW_SRC_HTTP)
			http_publish_done(app, j);
		else if (j->source == GW_SRC_WS)
			ws_publish_done(app, j);
		writer_job_free(j);
		j = next;
	}
}

int server_not_ready(struct gw_app *app, char *reason, size_t len)
{
	if (app->draining) {
		snprintf(reason, len, "shutting down");
		return 1;
	}
	if (!writer_ready(app->writer)) {
		snprintf(reason, len, "the store does not accept commits");
		return 1;
	}
	if (app->bridge && !bridge_connected(app->bridge, reason, len))
		return 1;
	return 0;
}

static int gw_callback(struct lws *wsi, enum lws_callback_reasons reason,
		       void *user, void *in, size_t len)
{
	switch (reason) {
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED: {
		/* per-vhost data may not exist yet here: use the context's */
		struct gw_app *app = lws_context_user(lws_get_context(wsi));
		if (!app || !app->writer)
			return 0;
		handoff_run(app->tasks, app);
		server_finish_jobs(app);
		return 0;
	}
	case LWS_CALLBACK_ESTABLISHED:
	case LWS_CALLBACK_RECEIVE:
	case LWS_CALLBACK_SERVER_WRITEABLE:
	case LWS_CALLBACK_CLOSED:
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		return ws_callback(wsi, (int)reason, user, in, len);
	default:
		return http_callback(wsi, (int)reason, user, in, len);
	}
}

static struct lws_protocols protocols[] = {
	{ "statusgate", gw_callback, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }   /* lws 4.1 has no LWS_PROTOCOL_LIST_TERM */
};

/* idle WebSockets are pinged after 30 s and dropped 30 s later */
static const lws_retry_bo_t idle_policy = {
	.secs_since_valid_ping = 30,
	.secs_since_valid_hangup = 60,
};

/* lws threads: route lws's own log lines through gw_log */
static void lws_emit(int level, const char *line)
{
	size_t n = strlen(line);
	int gl = level & LLL_ERR ? GW_LOG_ERROR : level & LLL_WARN ? GW_LOG_WARN :
		 level & LLL_NOTICE ? GW_LOG_INFO : GW_LOG_DEBUG;

	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	gw_log(gl, "lws: %.*s", (int)n, line);
}

/*
 * The event loop is libev's (epoll on Linux), not lws's built-in poll()
 * loop: poll() costs O(open connections) per wake-up, which is what a
 * gateway with ten thousand mostly idle pages must not pay. We own the loop
 * (lws runs on it as a "foreign" loop), so stopping and draining are ours:
 * SIGINT/SIGTERM are libev signal watchers on this thread that set the stop
 * flag and break the loop.
 */
static struct {
	struct ev_loop *loop;
	ev_signal sigint, sigterm;
	ev_timer deadline;
	volatile sig_atomic_t *stop;
} g_ev;

static void on_stop_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)revents;
	GW_INFO("%s: signal %d: stopping", __func__, w->signum);
	if (g_ev.stop)
		*g_ev.stop = 1;
	ev_break(loop, EVBREAK_ALL);
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

int server_start(struct gw_app *app)
{
	const struct gw_config *cfg = app->cfg;
	struct lws_context_creation_info info;
	static void *foreign_loops[1];
	size_t hs = http_pss_size(), ws = ws_pss_size();
	int lv = LLL_ERR | LLL_WARN;

	if (log_level() >= GW_LOG_DEBUG)
		lv |= LLL_NOTICE | LLL_INFO;
	lws_set_log_level(lv, lws_emit);

	protocols[0].per_session_data_size = hs > ws ? hs : ws;
	/* big enough for one whole frame of --max-frame in most cases; lws
	 * still delivers larger ones in pieces and ws_session reassembles */
	protocols[0].rx_buffer_size = 16384;

	g_ev.loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOENV);
	if (!g_ev.loop) {
		GW_ERR("%s: cannot create the event loop", __func__);
		return -1;
	}
	foreign_loops[0] = g_ev.loop;

	memset(&info, 0, sizeof(info));   /* lws 4.1: no lws_context_info_defaults */
	info.port = cfg->port;
	info.iface = cfg->host[0] && strcmp(cfg->host, "0.0.0.0") ? cfg->host : NULL;
	info.protocols = protocols;
	info.vhost_name = "statusgate";
	info.user = app;
	info.foreign_loops = foreign_loops;
	info.options = LWS_SERVER_OPTION_LIBEV | LWS_SERVER_OPTION_VALIDATE_UTF8 |
		       LWS_SERVER_OPTION_DISABLE_IPV6 * (info.iface && !strchr(info.iface, ':'));
	info.timeout_secs = 10;
	info.retry_and_idle_policy = &idle_policy;
	info.fd_limit_per_thread = (unsigned)(cfg->max_connections + 256);
	if (cfg->tls_cert) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = cfg->tls_cert;
		info.ssl_private_key_filepath = cfg->tls_key;
		/* HTTP/1.1 only: browsers then open WebSockets with a plain
		 * Upgrade (not RFC 8441 over h2), one code path for both */
		info.alpn = "http/1.1";
	}
	app->ctx = lws_create_context(&info);
	if (!app->ctx) {
		GW_ERR("%s: cannot listen on %s (address in use? bad TLS files?)",
		       __func__, cfg->listen);
		ev_loop_destroy(g_ev.loop);
		g_ev.loop = NULL;
		return -1;
	}
	GW_INFO("%s: serving http%s and ws%s on %s", __func__,
		cfg->tls_cert ? "s" : "", cfg->tls_cert ? "s" : "", cfg->listen);
	return 0;
}

void server_run(struct gw_app *app, volatile sig_atomic_t *stop)
{
	(void)app;
	g_ev.stop = stop;
	ev_signal_init(&g_ev.sigint, on_stop_signal, SIGINT);
	ev_signal_init(&g_ev.sigterm, on_stop_signal, SIGTERM);
	ev_signal_start(g_ev.loop, &g_ev.sigint);
	ev_signal_start(g_ev.loop, &g_ev.sigterm);
	if (!*stop)
		ev_run(g_ev.loop, 0);
}

void server_drain(struct gw_app *app, int ms)
{
	if (!app->ctx)
		return;
	/* let close frames and the last HTTP answers go out; the timer bounds
	 * the wait for peers that never answer */
	ev_timer_init(&g_ev.deadline, on_deadline, ms / 1000.0, 0.);
	ev_timer_start(g_ev.loop, &g_ev.deadline);
	while ((app->nsessions || app->http_replies) && ev_is_active(&g_ev.deadline))
		ev_run(g_ev.loop, EVRUN_ONCE);
	ev_timer_stop(g_ev.loop, &g_ev.deadline);
	for (int i = 0; i < 3; i++)
		ev_run(g_ev.loop, EVRUN_NOWAIT);
}

void server_stop(struct gw_app *app)
{
	if (!app->ctx)
		return;
	lws_context_destroy(app->ctx);
	app->ctx = NULL;
	ev_signal_stop(g_ev.loop, &g_ev.sigint);
	ev_signal_stop(g_ev.loop, &g_ev.sigterm);
	ev_loop_destroy(g_ev.loop);
	g_ev.loop = NULL;
}
