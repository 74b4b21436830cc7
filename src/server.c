/*
 * The libwebsockets side: one context, one vhost, one protocol that serves
 * HTTP and WebSocket on the same port, on a libev loop. The callback only
 * dispatches: HTTP reasons to http_api.c, WebSocket reasons (and the upgrade
 * check) to ws_session.c, and LWS_CALLBACK_EVENT_WAIT_CANCELLED to the core,
 * which runs the tasks other threads posted (they wake us with
 * lws_cancel_service through server_wake, the one lws call allowed off this
 * thread).
 */
#include <ev.h>
#include <libwebsockets.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/resource.h>

#include "config.h"
#include "http_api.h"
#include "hub.h"
#include "log.h"
#include "server.h"
#include "ws_session.h"

#define GW_RX_BUFFER 128
#define GW_TX_PACKET (4u << 20)
_Static_assert(GW_RX_BUFFER >= 125, "lws needs a whole control frame in its rx buffer");
_Static_assert(GW_PRE >= LWS_PRE, "GW_PRE must leave room for the lws frame header");

/* lws_cancel_service's context: set by server_start, cleared by
 * server_stop; read by other threads through server_wake */
static struct lws_context *_Atomic g_ctx;

void server_wake(void *arg)
{
	struct lws_context *ctx = atomic_load(&g_ctx);

	(void)arg;
	if (ctx)
		lws_cancel_service(ctx);
}

static int gw_callback(struct lws *wsi, enum lws_callback_reasons reason,
		       void *user, void *in, size_t len)
{
	switch (reason) {
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED: {
		/* per-vhost data may not exist yet here: use the context's */
		struct hub *h = lws_context_user(lws_get_context(wsi));
		if (h)
			hub_run(h);
		return 0;
	}
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return ws_confirm_upgrade(wsi);
	case LWS_CALLBACK_ESTABLISHED:
	case LWS_CALLBACK_RECEIVE:
	case LWS_CALLBACK_SERVER_WRITEABLE:
	case LWS_CALLBACK_CLOSED:
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
	case LWS_CALLBACK_WS_SERVER_DROP_PROTOCOL:
	case LWS_CALLBACK_RECEIVE_PONG:
		return ws_callback(wsi, (int)reason, user, in, len);
	default:
		return http_callback(wsi, (int)reason, user, in, len);
	}
}

static struct lws_protocols protocols[] = {
	{ "statusgate", gw_callback, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }   /* lws 4.1 has no LWS_PROTOCOL_LIST_TERM */
};

/* no lws validity timers: lws 4.1 keeps each connection's timer in one
 * sorted list that an insert walks from its head, and a new 30 s timer
 * goes last, so every WebSocket connect (and every idle ping) walked every
 * open connection: with 10,000 connecting at once, half of the service
 * thread's time. The core pings idle WebSockets itself from its
 * once-a-second walk (hub_tick): after 30 s without a word from the peer,
 * and drops them 30 s later, as this policy did. */
static const lws_retry_bo_t idle_policy = {
	.secs_since_valid_ping = 0,
	.secs_since_valid_hangup = 0,
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
	ev_timer tick;           /* once a second: hub_tick */
	ev_prepare flush;        /* before each wait: hub_flush */
	struct hub *hub;
	volatile sig_atomic_t *stop;
} g_ev;

/* our own timer: lws 4.1's libev glue re-arms its timer with ev_timer_set
 * on an active watcher, so an lws_sul scheduled earlier than the pending
 * one fires late; a plain repeating libev timer has no such problem */
static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	hub_tick(g_ev.hub);
}

/* libev runs prepare watchers right before it waits for events: the
 * frames queued during this loop turn go out there, each session's in one
 * sendmsg (Redis writes its clients' replies in beforeSleep the same way) */
static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	hub_flush(g_ev.hub);
}

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

/* the soft descriptor limit set (within the hard one) to --max-connections
 * and some room for files, the broker and HTTP. lws sizes its tables from
 * it, and Debian's lws 4.1 (built with _DEBUG) scans its whole descriptor
 * table at every close (sanity_assert_no_sockfd_traces): a container's
 * limit of a million would make each close walk 8 MB. */
static void fit_fd_limit(rlim_t want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur == want)
		return;
	rl.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want ? rl.rlim_max : want;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		GW_WARN("%s: cannot set the descriptor limit to %lu", __func__,
			(unsigned long)rl.rlim_cur);
}

int server_start(struct hub *hub)
{
	const struct gw_config *cfg = hub_cfg(hub);
	struct lws_context *ctx;
	struct lws_context_creation_info info;
	static void *foreign_loops[1];
	size_t hs = http_pss_size(), ws = ws_pss_size();
	int lv = LLL_ERR | LLL_WARN;

	if (log_level() >= GW_LOG_DEBUG)
		lv |= LLL_NOTICE | LLL_INFO;
	lws_set_log_level(lv, lws_emit);

	protocols[0].per_session_data_size = hs > ws ? hs : ws;
	/* lws allocates rx_buffer_size bytes per WebSocket for as long as it
	 * is open, most of them idle pages that send nothing: 128 holds any
	 * control frame whole (ping and close payloads are at most 125 bytes,
	 * and lws must see them whole), and ws_session reassembles longer
	 * messages from their pieces. lws 4.1 also caps each send() at
	 * rx_buffer_size unless tx_packet_size is set (lib/core-net/output.c,
	 * lws_issue_raw), and buffers the rest: set it so that any frame we
	 * make goes to the kernel in one call. It reserves no memory. */
	protocols[0].rx_buffer_size = GW_RX_BUFFER;
	protocols[0].tx_packet_size = GW_TX_PACKET;

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
	info.user = hub;
	info.foreign_loops = foreign_loops;
	info.options = LWS_SERVER_OPTION_LIBEV | LWS_SERVER_OPTION_VALIDATE_UTF8 |
		       LWS_SERVER_OPTION_DISABLE_IPV6 * (info.iface && !strchr(info.iface, ':'));
	info.timeout_secs = 10;
	info.retry_and_idle_policy = &idle_policy;
	/* no fd_limit_per_thread: lws 4.1 finds a connection from its
	 * descriptor by indexing a table when its limit is the process's
	 * (ulimit -n), but by scanning the whole table when a lower limit is
	 * given (wsi_from_fd, lib/plat/unix/unix-fds.c), on every event: with
	 * 10,000 connections a third of the service thread went there */
	info.fd_limit_per_thread = 0;
	fit_fd_limit((rlim_t)cfg->max_connections + 256);
	if (cfg->tls_cert) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = cfg->tls_cert;
		info.ssl_private_key_filepath = cfg->tls_key;
		/* HTTP/1.1 only: browsers then open WebSockets with a plain
		 * Upgrade (not RFC 8441 over h2), one code path for both */
		info.alpn = "http/1.1";
	}
	ctx = lws_create_context(&info);
	if (!ctx) {
		GW_ERR("%s: cannot listen on %s (address in use? bad TLS files?)",
		       __func__, cfg->listen);
		ev_loop_destroy(g_ev.loop);
		g_ev.loop = NULL;
		return -1;
	}
	atomic_store(&g_ctx, ctx);
	g_ev.hub = hub;
	ev_timer_init(&g_ev.tick, on_tick, 1., 1.);
	ev_timer_start(g_ev.loop, &g_ev.tick);
	ev_prepare_init(&g_ev.flush, on_prepare);
	ev_prepare_start(g_ev.loop, &g_ev.flush);
	GW_INFO("%s: serving http%s and ws%s on %s", __func__,
		cfg->tls_cert ? "s" : "", cfg->tls_cert ? "s" : "", cfg->listen);
	return 0;
}

void server_run(volatile sig_atomic_t *stop)
{
	g_ev.stop = stop;
	ev_signal_init(&g_ev.sigint, on_stop_signal, SIGINT);
	ev_signal_init(&g_ev.sigterm, on_stop_signal, SIGTERM);
	ev_signal_start(g_ev.loop, &g_ev.sigint);
	ev_signal_start(g_ev.loop, &g_ev.sigterm);
	if (!*stop)
		ev_run(g_ev.loop, 0);
}

void server_drain(struct hub *hub, int ms)
{
	if (!atomic_load(&g_ctx))
		return;
	/* let close frames and the last HTTP answers go out; the timer bounds
	 * the wait for peers that never answer */
	ev_timer_init(&g_ev.deadline, on_deadline, ms / 1000.0, 0.);
	ev_timer_start(g_ev.loop, &g_ev.deadline);
	while (hub_busy(hub) && ev_is_active(&g_ev.deadline))
		ev_run(g_ev.loop, EVRUN_ONCE);
	ev_timer_stop(g_ev.loop, &g_ev.deadline);
	for (int i = 0; i < 3; i++)
		ev_run(g_ev.loop, EVRUN_NOWAIT);
}

void server_stop(void)
{
	struct lws_context *ctx = atomic_exchange(&g_ctx, NULL);

	if (!ctx)
		return;
	lws_context_destroy(ctx);
	ev_signal_stop(g_ev.loop, &g_ev.sigint);
	ev_signal_stop(g_ev.loop, &g_ev.sigterm);
	ev_timer_stop(g_ev.loop, &g_ev.tick);
	ev_prepare_stop(g_ev.loop, &g_ev.flush);
	ev_loop_destroy(g_ev.loop);
	g_ev.loop = NULL;
}
