/*
 * statusgate: start-up and shutdown order, signal flags, and the dispatch of
 * the sub-commands (serve, publish, demo).
 *
 * Start: options, logging, the writer (opens, creates and migrates the
 * store), a read handle, the registry, the lws context, then the broker
 * thread. SIGTERM/SIGINT only set a flag. Stop: refuse new work, close
 * WebSockets with 1001, stop taking AMQP deliveries, let the writer commit
 * everything it was given, answer and fan out what it returns, acknowledge
 * to the broker, then tear down in reverse order.
 */
#include <libwebsockets.h>
#include <pthread.h>
#include <sys/resource.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "cli.h"
#include "config.h"
#include "hub.h"
#include "log.h"
#include "server.h"
#include "store.h"
#include "writer.h"

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: statusgate COMMAND [options]\n\n"
		"A WebSocket gateway that pushes the status of submissions to browsers.\n\n"
		"Commands:\n"
		"  serve     run the gateway (HTTP, WebSocket, status page, optional RabbitMQ)\n"
		"  publish   send one publish to a gateway over HTTP or AMQP\n"
		"  demo      play a realistic submission life cycle against a running gateway\n"
		"  version   print the version\n\n"
		"Run 'statusgate COMMAND --help' for the options of a command.\n");
}

/*
 * main thread, at start: the soft open-files limit set to what
 * --max-connections needs (as far as the hard limit allows), since lws
 * sizes its connection table by it; lowered too: Debian's lws 4.1 (built
 * with _DEBUG) scans its whole descriptor table at every close
 * (sanity_assert_no_sockfd_traces), and a container's limit of a million
 * would make each close walk 8 MB. Says so when the limit is short.
 */
static void fit_nofile(const struct gw_config *cfg)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)cfg->max_connections + 1024;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	if (rl.rlim_cur != want) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < want)
		GW_WARN("%s: the open-files limit is %llu, below the %ld connections of "
			"--max-connections (plus files of our own): raise it (ulimit -n, LimitNOFILE=)",
			__func__, (unsigned long long)rl.rlim_cur, cfg->max_connections);
}

/* any thread (the core's readiness check): the broker's state */
static int broker_connected(void *arg, char *why, size_t len)
{
	return bridge_connected(arg, why, len);
}

static int serve(int argc, char **argv)
{
	struct gw_config cfg;
	struct hub *hub = NULL;
	struct writer *writer = NULL;
	struct store *rstore = NULL;
	struct bridge *bridge = NULL;
	struct writer_cfg wcfg;
	struct sigaction sa;
	sigset_t block, old;
	char err[256];
	int rc = 1, r;

	r = config_load(&cfg, argc, argv);
	if (r) {
		config_release(&cfg);
		return r > 0 ? 0 : 2;
	}
	log_init(log_parse_level(cfg.log_level), !strcmp(cfg.log_format, "json"));
	fit_nofile(&cfg);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* the threads we start inherit a mask without the stop signals, so the
	 * kernel delivers them to this (the service) thread and the loop wakes */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, &old);

	hub = hub_new(&cfg);
	if (!hub)
		goto init_fail;
	memset(&wcfg, 0, sizeof(wcfg));
	wcfg.db_path = cfg.db;
	wcfg.history = (unsigned)cfg.history;
	wcfg.batch = (unsigned)cfg.batch;
	wcfg.queue_bytes = (size_t)cfg.writer_queue;
	wcfg.dedup_window_ms = (int64_t)cfg.dedup_window * 1000;
	/* --retention 0 keeps everything; --retention-final only shortens it */
	wcfg.retention_ms = (int64_t)cfg.retention * 1000;
	if (cfg.retention && cfg.retention_final && cfg.retention_final < cfg.retention)
		wcfg.retention_final_ms = (int64_t)cfg.retention_final * 1000;
	wcfg.done = hub_jobs_done;   /* finished batches go to the service thread */
	wcfg.done_arg = hub;
	if (writer_start(&wcfg, &writer, err, sizeof(err))) {
		GW_ERR("%s: cannot open the store %s: %s", __func__, cfg.db, err);
		goto init_fail;
	}
	if (store_open(cfg.db, STORE_READ, &rstore, err, sizeof(err))) {
		GW_ERR("%s: cannot open a read handle on %s: %s", __func__, cfg.db, err);
		goto init_fail;
	}
	hub_set_store(hub, writer, rstore);
	hub_set_wake(hub, server_wake, NULL);
	if (server_start(hub))
		goto init_fail;
	if (cfg.amqp) {
		struct bridge_cfg bcfg = { &cfg, writer, hub_rpc, hub };

		if (bridge_start(&bcfg, &bridge))
			goto init_fail;
		hub_set_broker(hub, broker_connected, bridge);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	GW_INFO("%s: statusgate %s ready; store %s (epoch %s)", __func__, GW_VERSION,
		cfg.db, writer_epoch(writer));
	if (cfg.retention)
		GW_INFO("%s: retention: submissions go %lds after their last event (%lds once "
			"final)", __func__, cfg.retention,
			wcfg.retention_final_ms ? cfg.retention_final : cfg.retention);
	else
		GW_INFO("%s: retention off (--retention 0): the store keeps every submission",
			__func__);
	if (!cfg.auth_secret)
		GW_WARN("%s: NO --auth-secret: any browser can watch any submission. "
			"Set --auth-secret for production.", __func__);
	if (!cfg.publish_token)
		GW_WARN("%s: no --publish-token: publishing is accepted from --publish-networks peers only",
			__func__);

	server_run(&g_stop);

	GW_INFO("%s: stopping: closing connections, committing what was received", __func__);
	hub_drain(hub);
	if (bridge)
		bridge_quiesce(bridge);
	writer_stop(writer);   /* its last batches are posted to the core ... */
	hub_run_all(hub);      /* ... which answers and fans them out here */
	if (bridge) {
		hub_set_broker(hub, NULL, NULL);   /* RPC requests still posted are dropped */
		bridge_stop(bridge);
		bridge = NULL;
	}
	server_drain(hub, 2000);
	rc = 0;
	GW_INFO("%s: stopped", __func__);

init_fail:
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (bridge) {
		bridge_quiesce(bridge);
		if (writer)
			writer_stop(writer);
		if (hub)
			hub_set_broker(hub, NULL, NULL);
		bridge_stop(bridge);
	} else if (writer && rc) {
		writer_stop(writer);
	}
	server_stop();
	hub_free(hub);         /* after every connection closed: leftovers are freed */
	store_close(rstore);
	writer_free(writer);
	config_release(&cfg);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
		printf("statusgate %s\n", GW_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "serve"))
		return serve(argc - 1, argv + 1);
	if (!strcmp(argv[1], "publish"))
		return cmd_publish(argc - 1, argv + 1);
	if (!strcmp(argv[1], "demo"))
		return cmd_demo(argc - 1, argv + 1);
	fprintf(stderr, "statusgate: unknown command \"%s\"\n\n", argv[1]);
	usage(stderr);
	return 2;
}
