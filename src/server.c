/*
 * The libwebsockets side: one context, one vhost, one protocol that serves
 * HTTP, Server-Sent Events and WebSocket on the same port, on a libev loop.
 * The callback only dispatches: WebSocket reasons (and the upgrade check) to
 * ws_session.c, HTTP reasons to http_api.c or, for a request under /sse/,
 * to sse.c, and LWS_CALLBACK_EVENT_WAIT_CANCELLED to the core, which runs
 * the tasks other threads posted (they wake us with lws_cancel_service
 * through server_wake, the one lws call allowed off this thread). A timer of
 * our own gives the core its once-a-second tick (session deadlines: token
 * expiry, SSE heartbeats).
 *
 * The per-session data is each adapter's own (lws_wsi_user() gives it to
 * them as usual), followed by a small tail of ours that says which adapter
 * owns the connection's current HTTP request (set when the request
 * arrives).
 */
#include <errno.h>
#include <ev.h>
#include <libwebsockets.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "http_api.h"
#include "hub.h"
#include "log.h"
#include "server.h"
#include "sse.h"
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

/* who owns the HTTP request of a connection: the tail of its per-session
 * data, zeroed by lws (HTTP), at pss_tail bytes from its start */
enum { OWNER_HTTP = 0, OWNER_SSE };
static size_t pss_tail;

/* an HTTP reason: to the adapter that owns the current request, which a
 * new request decides by its path (an event stream keeps it: sse.c
 * refuses a second request there) */
static int http_dispatch(struct lws *wsi, int reason, void *user, void *in, size_t len)
{
	int *owner = user ? (int *)(void *)((char *)user + pss_tail) : NULL;

	if (owner && reason == LWS_CALLBACK_HTTP && *owner != OWNER_SSE)
		*owner = sse_path(in) ? OWNER_SSE : OWNER_HTTP;
	if (owner && *owner == OWNER_SSE)
		return sse_callback(wsi, reason, user, in, len);
	return http_callback(wsi, reason, user, in, len);
}

static void handshake_over(struct lws *wsi);

static int gw_callback(struct lws *wsi, enum lws_callback_reasons reason,
		       void *user, void *in, size_t len)
{
	switch (reason) {
	case LWS_CALLBACK_HTTP:
	case LWS_CALLBACK_WSI_DESTROY:
		handshake_over(wsi);
		break;
	case LWS_CALLBACK_ESTABLISHED:
		handshake_over(wsi);
		return ws_callback(wsi, (int)reason, user, in, len);
	default:
		break;
	}
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
	case LWS_CALLBACK_RECEIVE_PONG:
	case LWS_CALLBACK_SERVER_WRITEABLE:
	case LWS_CALLBACK_CLOSED:
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
	case LWS_CALLBACK_WS_SERVER_DROP_PROTOCOL:
		return ws_callback(wsi, (int)reason, user, in, len);
	default:
		return http_dispatch(wsi, (int)reason, user, in, len);
	}
}

static struct lws_protocols protocols[] = {
	{ "statusgate", gw_callback, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }   /* lws 4.1 has no LWS_PROTOCOL_LIST_TERM */
};

/*
 * lws's own idle check is off (a hang-up time of 0): lws 4.1 keeps one
 * validity timer per connection in a list sorted by a walk from its head,
 * so ten thousand connections cost a hundred million steps to set up. The
 * core pings idle WebSockets itself from its once-a-second tick (hub_tick).
 */
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
	ev_io accept;            /* our listening socket */
	ev_timer accept_retry;   /* out of descriptors: accept again later */
	unsigned inflight;       /* accepted connections still in their handshake */
	int *waiting;            /* accepted, not yet handed to lws: a ring */
	unsigned whead, wlen, wcap;
	struct lws_vhost *vh;
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

/* connections handed to lws at most at a time before their handshake is
 * over (see feed) */
#define ACCEPT_INFLIGHT 128

static void feed(void);

/* libev runs prepare watchers right before it waits for events: the
 * frames queued during this loop turn go out there, each session's in one
 * sendmsg (Redis writes its clients' replies in beforeSleep the same way) */
static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	hub_flush(g_ev.hub);
	if (g_ev.wlen && g_ev.inflight < ACCEPT_INFLIGHT)
		feed();
}

/*
 * Accepting. We listen ourselves, take every connection the kernel has
 * into a queue of our own at once (accept4 is cheap), and hand them to lws
 * (lws_adopt_socket_vhost) so that at most ACCEPT_INFLIGHT at a time have
 * not finished their handshake (no HTTP request or WebSocket upgrade yet).
 * lws 4.1 keeps per-connection state of handshakes in lists that each new
 * one walks (its timeout in the one sorted timer list, its header buffer in
 * the header-table list), and its own accept loop takes the whole backlog
 * at once: 10,000 browsers reconnecting together cost it O(n^2) walks and
 * 10,000 header buffers of 4 kB at once. Bounded, the walks stay short and
 * the buffers few. The queue is ours, not the kernel's backlog, because
 * that one holds SOMAXCONN (4096) and a connection it has no room for costs
 * its client a SYN retransmit a second later: with the backlog as the
 * queue, 10,000 connecting at once overflowed it 5,775 times and came in at
 * about 3,000 a second while the service thread was mostly idle. Our queue
 * holds up to --max-connections; beyond that the backlog waits again.
 */
static char accept_mark;    /* opaque user data: counted in g_ev.inflight */

/* a connection's handshake is over (a request, an upgrade, or its end);
 * inside an lws callback: the next one is handed over before the loop
 * sleeps (feed, from on_prepare), not from here */
static void handshake_over(struct lws *wsi)
{
	if (!wsi || lws_get_opaque_user_data(wsi) != &accept_mark)
		return;
	lws_set_opaque_user_data(wsi, NULL);
	g_ev.inflight--;
}

/* the queue of accepted connections (a ring of wcap descriptors) */
static void waiting_push(int fd)
{
	g_ev.waiting[(g_ev.whead + g_ev.wlen) % g_ev.wcap] = fd;
	g_ev.wlen++;
}

static int waiting_pop(void)
{
	int fd = g_ev.waiting[g_ev.whead];

	g_ev.whead = (g_ev.whead + 1) % g_ev.wcap;
	g_ev.wlen--;
	return fd;
}

/* hands queued connections to lws while fewer than ACCEPT_INFLIGHT are in
 * their handshake; accepting goes on while the queue has room. Outside any
 * lws callback (libev's accept and prepare watchers). */
static void feed(void)
{
	while (g_ev.inflight < ACCEPT_INFLIGHT && g_ev.wlen) {
		struct lws *wsi = lws_adopt_socket_vhost(g_ev.vh, waiting_pop());

		if (!wsi)
			continue;      /* lws closed the descriptor */
		lws_set_opaque_user_data(wsi, &accept_mark);
		g_ev.inflight++;
	}
	if (g_ev.accept.fd >= 0 && !ev_is_active(&g_ev.accept) &&
	    !ev_is_active(&g_ev.accept_retry) && g_ev.wlen < g_ev.wcap)
		ev_io_start(g_ev.loop, &g_ev.accept);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)revents;
	while (g_ev.wlen < g_ev.wcap) {
		int one = 1, fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* the backlog keeps them; try again in a moment */
				GW_WARN_RL("%s: cannot accept: %s", __func__, strerror(errno));
				ev_io_stop(loop, w);
				ev_timer_set(&g_ev.accept_retry, 0.1, 0.);
				ev_timer_start(loop, &g_ev.accept_retry);
			}
			break;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		waiting_push(fd);
	}
	if (g_ev.wlen == g_ev.wcap)
		ev_io_stop(loop, w);   /* full: feed starts it again */
	feed();
}

static void on_accept_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	if (g_ev.accept.fd >= 0 && g_ev.wlen < g_ev.wcap)
		ev_io_start(loop, &g_ev.accept);
}

/* a listening socket on host:port (all addresses, IPv6 and IPv4, for an
 * empty host or 0.0.0.0); -1 when it cannot be had */
static int listen_on(const char *host, int port)
{
	struct addrinfo hints, *res = NULL, *ai;
	char ps[16];
	int fd = -1, one = 1, zero = 0, any = !host[0] || !strcmp(host, "0.0.0.0");

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	hints.ai_family = any ? AF_INET6 : AF_UNSPEC;
	snprintf(ps, sizeof(ps), "%d", port);
	if (getaddrinfo(any ? NULL : host, ps, &hints, &res)) {
		if (!any)
			return -1;
		hints.ai_family = AF_INET;   /* no IPv6 here */
		if (getaddrinfo(NULL, ps, &hints, &res))
			return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6 && any)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
		if (!bind(fd, ai->ai_addr, ai->ai_addrlen) && !listen(fd, SOMAXCONN))
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0 && any && hints.ai_family == AF_INET6) {
		/* IPv6 configured off: the IPv4 wildcard alone */
		struct sockaddr_in a;

		memset(&a, 0, sizeof(a));
		a.sin_family = AF_INET;
		a.sin_port = htons((uint16_t)port);
		fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd >= 0 && (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)),
				bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, SOMAXCONN))) {
			close(fd);
			fd = -1;
		}
	}
	return fd;
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

int server_start(struct hub *hub)
{
	const struct gw_config *cfg = hub_cfg(hub);
	struct lws_context *ctx;
	struct lws_context_creation_info info;
	static void *foreign_loops[1];
	size_t hs = http_pss_size(), ws = ws_pss_size(), ss = sse_pss_size();
	int lfd;
	int lv = LLL_ERR | LLL_WARN;

	if (log_level() >= GW_LOG_DEBUG)
		lv |= LLL_NOTICE | LLL_INFO;
	lws_set_log_level(lv, lws_emit);

	if (ss > hs)
		hs = ss;
	if (ws > hs)
		hs = ws;
	pss_tail = (hs + alignof(int) - 1) / alignof(int) * alignof(int);
	protocols[0].per_session_data_size = pss_tail + sizeof(int);
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

	g_ev.wcap = cfg->max_connections > 1024 ? (unsigned)cfg->max_connections : 1024;
	g_ev.waiting = malloc(g_ev.wcap * sizeof(*g_ev.waiting));
	lfd = g_ev.waiting ? listen_on(cfg->host, cfg->port) : -1;
	if (lfd < 0) {
		GW_ERR("%s: cannot listen on %s: %s", __func__, cfg->listen,
		       g_ev.waiting ? strerror(errno) : "out of memory");
		free(g_ev.waiting);
		g_ev.waiting = NULL;
		ev_loop_destroy(g_ev.loop);
		g_ev.loop = NULL;
		return -1;
	}

	memset(&info, 0, sizeof(info));   /* lws 4.1: no lws_context_info_defaults */
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER;   /* we accept (on_accept) */
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
	 * (ulimit -n, which main fitted to --max-connections), but by scanning
	 * the whole table when a lower limit is given (wsi_from_fd,
	 * lib/plat/unix/unix-fds.c), on every event */
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
		GW_ERR("%s: cannot serve on %s (bad TLS files?)", __func__, cfg->listen);
		close(lfd);
		free(g_ev.waiting);
		g_ev.waiting = NULL;
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
	g_ev.vh = lws_get_vhost_by_name(ctx, "statusgate");
	g_ev.inflight = 0;
	g_ev.whead = g_ev.wlen = 0;
	ev_timer_init(&g_ev.accept_retry, on_accept_retry, 0.1, 0.);
	ev_io_init(&g_ev.accept, on_accept, lfd, EV_READ);
	ev_io_start(g_ev.loop, &g_ev.accept);
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
	if (g_ev.accept.fd >= 0) {
		ev_io_stop(g_ev.loop, &g_ev.accept);
		ev_timer_stop(g_ev.loop, &g_ev.accept_retry);
		close(g_ev.accept.fd);
		g_ev.accept.fd = -1;
	}
	while (g_ev.wlen)        /* accepted, never handed over: just closed */
		close(waiting_pop());
	free(g_ev.waiting);
	g_ev.waiting = NULL;
	lws_context_destroy(ctx);
	ev_signal_stop(g_ev.loop, &g_ev.sigint);
	ev_signal_stop(g_ev.loop, &g_ev.sigterm);
	ev_timer_stop(g_ev.loop, &g_ev.tick);
	ev_prepare_stop(g_ev.loop, &g_ev.flush);
	ev_loop_destroy(g_ev.loop);
	g_ev.loop = NULL;
}
