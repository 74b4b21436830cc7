/*
 * Table-driven option handling shared by every statusgate command; see
 * config.h. getopt_long is fed from the same table that --help prints and
 * that names each STATUSGATE_<NAME> variable.
 */
#include "config.h"
#include "log.h"
#include "netaddr.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define OPT(field) offsetof(struct gw_config, field)

const struct gw_opt gw_serve_opts[] = {
	{ "listen", GW_OPT_STR, OPT(listen), "127.0.0.1:8080", "HOST:PORT",
	  "address and port for HTTP and WebSocket (0.0.0.0:8080 for all interfaces)", 0, 0 },
	{ "db", GW_OPT_STR, OPT(db), "./statusgate.db", "PATH",
	  "SQLite database file (created and migrated at start)", 0, 0 },
	{ "web-dir", GW_OPT_STR, OPT(web_dir), NULL, "DIR",
	  "directory of the status page and static files (default: the installed web/)", 0, 0 },
	{ "log-level", GW_OPT_STR, OPT(log_level), "info", "LEVEL",
	  "error, warn, info or debug", 0, 0 },
	{ "log-format", GW_OPT_STR, OPT(log_format), "text", "FORMAT",
	  "text or json (one object per line)", 0, 0 },
	{ "publish-token", GW_OPT_STR, OPT(publish_token), NULL, "TOKEN",
	  "bearer token that makes an HTTP publish or a legacy-socket frame trusted", 0, 0 },
	{ "publish-networks", GW_OPT_STR, OPT(publish_networks), NULL, "CIDRS",
	  "networks whose direct (not proxied) peers may publish without a token, "
	  "comma-separated, or none (default: loopback without --publish-token, none with it)", 0, 0 },
	{ "trusted-proxies", GW_OPT_STR, OPT(trusted_proxies), NULL, "CIDRS",
	  "reverse proxies whose X-Forwarded-For / X-Real-IP name the client (for per-IP limits and logs)", 0, 0 },
	{ "auth-secret", GW_OPT_STR, OPT(auth_secret), NULL, "SECRET",
	  "HS256 secret for browser tokens; unset: browsers connect without a token", 0, 0 },
	{ "allowed-origin", GW_OPT_STR, OPT(allowed_origin), NULL, "LIST",
	  "comma-separated browser Origins allowed to connect (unset: any)", 0, 0 },
	{ "tls-cert", GW_OPT_STR, OPT(tls_cert), NULL, "PEM",
	  "certificate chain: serve https and wss (needs --tls-key)", 0, 0 },
	{ "tls-key", GW_OPT_STR, OPT(tls_key), NULL, "PEM", "private key for --tls-cert", 0, 0 },
	{ "amqp", GW_OPT_STR, OPT(amqp), NULL, "URL",
	  "consume publishes from RabbitMQ: amqp://user:pass@host:port/vhost (a cluster: several, comma-separated)", 0, 0 },
	{ "amqp-exchange", GW_OPT_STR, OPT(amqp_exchange), "statusgate", "NAME",
	  "exchange publishers send to", 0, 0 },
	{ "amqp-exchange-type", GW_OPT_STR, OPT(amqp_exchange_type), "topic", "TYPE",
	  "topic, direct or fanout", 0, 0 },
	{ "amqp-queue", GW_OPT_STR, OPT(amqp_queue), "statusgate.ingest", "NAME",
	  "durable ingest queue (with --instance: NAME.INSTANCE)", 0, 0 },
	{ "amqp-binding-keys", GW_OPT_STR, OPT(amqp_binding_keys), "submission.#", "LIST",
	  "comma-separated binding keys of the ingest queue", 0, 0 },
	{ "amqp-dead-letter", GW_OPT_STR, OPT(amqp_dead_letter), "statusgate.dead", "NAME",
	  "dead-letter exchange and queue for rejected messages", 0, 0 },
	{ "amqp-rpc-queue", GW_OPT_STR, OPT(amqp_rpc_queue), "statusgate.rpc", "NAME",
	  "queue answering get_submission and presence requests", 0, 0 },
	{ "instance", GW_OPT_STR, OPT(instance), NULL, "NAME",
	  "instance name when several gateways share a broker", 0, 0 },
	{ "amqp-prefetch", GW_OPT_INT, OPT(amqp_prefetch), "2048", "N",
	  "unacknowledged deliveries in flight", 1, 65535 },
	{ "amqp-heartbeat", GW_OPT_INT, OPT(amqp_heartbeat), "10", "SECONDS",
	  "AMQP heartbeat interval (0: off)", 0, 600 },
	{ "amqp-max-attempts", GW_OPT_INT, OPT(amqp_max_attempts), "5", "N",
	  "deliveries of a message the store keeps refusing before it is dead-lettered", 1, 1000 },
	{ "max-connections", GW_OPT_INT, OPT(max_connections), "10000", "N",
	  "WebSocket and SSE connections in total", 1, 1000000 },
	{ "max-connections-per-ip", GW_OPT_INT, OPT(max_connections_per_ip), "1000", "N",
	  "WebSocket and SSE connections from one IP address", 1, 1000000 },
	{ "max-subscriptions", GW_OPT_INT, OPT(max_subscriptions), "100", "N",
	  "subscriptions per /ws connection", 1, 100000 },
	{ "max-frame", GW_OPT_INT, OPT(max_frame), "65536", "BYTES",
	  "largest WebSocket message a client may send", 128, 16777216 },
	{ "max-publish", GW_OPT_INT, OPT(max_publish), "1048576", "BYTES",
	  "largest publish body (HTTP or AMQP)", 256, 268435456 },
	{ "send-queue", GW_OPT_INT, OPT(send_queue), "1024", "FRAMES",
	  "frames queued per connection before it is closed as lagging (mode all)", 4, 1000000 },
	{ "ping-interval", GW_OPT_INT, OPT(ping_interval), "30", "SECONDS",
	  "ping a WebSocket silent this long; drop it when silent twice as long", 1, 3600 },
	{ "send-queue-bytes", GW_OPT_INT, OPT(send_queue_bytes), "4194304", "BYTES",
	  "bytes queued per connection before it is closed as lagging (mode all)", 65536, 1073741824 },
	{ "send-buffer", GW_OPT_INT, OPT(send_buffer), "0", "BYTES",
	  "kernel send buffer of each browser connection (0: the kernel's own sizing); "
	  "small keeps what a slow reader gets fresh", 0, 16777216 },
	{ "sse-heartbeat", GW_OPT_INT, OPT(sse_heartbeat), "15", "SECONDS",
	  "a comment on an idle Server-Sent Events stream this often, so proxies keep it open", 1, 3600 },
	{ "history", GW_OPT_INT, OPT(history), "1000", "N",
	  "events kept per submission for recovery", 1, 10000000 },
	{ "dedup-window", GW_OPT_INT, OPT(dedup_window), "604800", "SECONDS",
	  "how long publish ids are remembered for idempotency", 60, 315360000 },
	{ "batch", GW_OPT_INT, OPT(batch), "1024", "N",
	  "publishes committed together at most", 1, 100000 },
	/* retention and the broker's queue type (README: Store and retention) */
	{ "retention", GW_OPT_DURATION, OPT(retention), "30d", "DURATION",
	  "delete a submission this long after its last event (90s, 12h, 30d; 0: never)",
	  0, 100L * 365 * 86400 },
	{ "retention-final", GW_OPT_DURATION, OPT(retention_final), "7d", "DURATION",
	  "shorter retention once Completed, or Error with nothing after it (0: as --retention)",
	  0, 100L * 365 * 86400 },
	{ "amqp-queue-type", GW_OPT_STR, OPT(amqp_queue_type), "classic", "TYPE",
	  "classic, or quorum for a clustered RabbitMQ (ingest and dead-letter queues)", 0, 0 },
	{ "writer-queue", GW_OPT_INT, OPT(writer_queue), "67108864", "BYTES",
	  "publish bytes queued for the store at most; beyond it HTTP gets 503, AMQP "
	  "deliveries wait unacknowledged", 65536, 17179869184 },
	{ NULL, 0, 0, NULL, NULL, NULL, 0, 0 },
};

static void env_name(const char *opt, char *out, size_t cap)
{
	size_t n = (size_t)snprintf(out, cap, "STATUSGATE_");

	for (; *opt && n + 1 < cap; opt++)
		out[n++] = *opt == '-' ? '_' : (char)toupper((unsigned char)*opt);
	out[n] = '\0';
}

int config_parse_duration(const char *s, long *seconds, char *err, size_t errlen)
{
	const char *p = s;
	long total = 0;

	if (!s || !*s) {
		snprintf(err, errlen, "empty");
		return -1;
	}
	while (*p) {
		long n = 0, mul;

		if (!isdigit((unsigned char)*p)) {
			snprintf(err, errlen, "expected a number at \"%s\"", p);
			return -1;
		}
		for (; isdigit((unsigned char)*p); p++) {
			if (n > (LONG_MAX - 9) / 10) {
				snprintf(err, errlen, "too large");
				return -1;
			}
			n = n * 10 + (*p - '0');
		}
		switch (*p) {
		case 's': mul = 1; break;
		case 'm': mul = 60; break;
		case 'h': mul = 3600; break;
		case 'd': mul = 86400; break;
		case '\0':
			if (p == s + strspn(s, "0123456789")) {
				mul = 1;   /* the whole text is digits: seconds */
				break;
			}
			snprintf(err, errlen, "a unit (s, m, h or d) is missing at the end");
			return -1;
		case '.':
		case ',':
			snprintf(err, errlen, "no fractions (write 90m, not 1.5h)");
			return -1;
		default:
			snprintf(err, errlen, "unknown unit \"%c\" (use s, m, h or d)", *p);
			return -1;
		}
		if (*p)
			p++;
		if (n > (LONG_MAX - total) / mul) {
			snprintf(err, errlen, "too large");
			return -1;
		}
		total += n * mul;
	}
	*seconds = total;
	return 0;
}

/* stores one value; returns 0 or -1 with a message on stderr */
static int set_value(const struct gw_opt *o, void *base, const char *val,
		     const char *where)
{
	char *p = (char *)base + o->offset;

	switch (o->type) {
	case GW_OPT_STR: {
		char **s = (char **)(void *)p;
		char *dup = strdup(val);

		if (!dup)
			return -1;
		free(*s);
		*s = dup;
		return 0;
	}
	case GW_OPT_INT: {
		char *end;
		long v;

		errno = 0;
		v = strtol(val, &end, 10);
		if (errno || end == val || *end || v < o->min || v > o->max) {
			fprintf(stderr, "statusgate: %s: %s must be an integer from %ld to %ld, not \"%s\"\n",
				where, o->name, o->min, o->max, val);
			return -1;
		}
		*(long *)(void *)p = v;
		return 0;
	}
	case GW_OPT_DURATION: {
		char why[160];
		long v = 0;
		int bad = config_parse_duration(val, &v, why, sizeof(why));

		if (!bad && (v < o->min || v > o->max)) {
			snprintf(why, sizeof(why), "out of range (%ld to %ld seconds)",
				 o->min, o->max);
			bad = 1;
		}
		if (bad) {
			fprintf(stderr, "statusgate: %s: %s: bad duration \"%s\": %s "
				"(examples: 90s, 15m, 12h, 30d, 1d12h; plain numbers are seconds)\n",
				where, o->name, val, why);
			return -1;
		}
		*(long *)(void *)p = v;
		return 0;
	}
	case GW_OPT_FLAG:
		if (!strcmp(val, "1") || !strcasecmp(val, "true") || !strcasecmp(val, "yes") || !*val)
			*(int *)(void *)p = 1;
		else if (!strcmp(val, "0") || !strcasecmp(val, "false") || !strcasecmp(val, "no"))
			*(int *)(void *)p = 0;
		else {
			fprintf(stderr, "statusgate: %s: %s takes true or false, not \"%s\"\n",
				where, o->name, val);
			return -1;
		}
		return 0;
	}
	return -1;
}

void config_print_help(const struct gw_opt *opts, const char *usage)
{
	char env[96], lhs[64];

	printf("%s\nOptions (each also read from the environment variable shown):\n", usage);
	for (const struct gw_opt *o = opts; o->name; o++) {
		env_name(o->name, env, sizeof(env));
		if (o->type == GW_OPT_FLAG)
			snprintf(lhs, sizeof(lhs), "--%s", o->name);
		else
			snprintf(lhs, sizeof(lhs), "--%s %s", o->name, o->arg);
		printf("  %-34s %s\n  %-34s [%s", lhs, o->help, "", env);
		if (o->def)
			printf(", default %s", o->def);
		printf("]\n");
	}
	printf("  %-34s show this help\n", "-h, --help");
}

int config_parse(const struct gw_opt *opts, void *base, int argc, char **argv,
		 const char *usage)
{
	struct option lopts[128];
	size_t n = 0;
	char env[96];
	int c, idx;

	for (const struct gw_opt *o = opts; o->name; o++, n++) {
		const char *v;

		if (n + 2 >= sizeof(lopts) / sizeof(lopts[0]))
			return -1;
		if (o->def && set_value(o, base, o->def, "default"))
			return -1;
		env_name(o->name, env, sizeof(env));
		v = getenv(env);
		if (v && set_value(o, base, v, env))
			return -1;
		lopts[n].name = o->name;
		lopts[n].has_arg = o->type == GW_OPT_FLAG ? no_argument : required_argument;
		lopts[n].flag = NULL;
		lopts[n].val = 1000 + (int)n;
	}
	lopts[n] = (struct option){ "help", no_argument, NULL, 'h' };
	lopts[n + 1] = (struct option){ 0, 0, 0, 0 };

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", lopts, &idx)) != -1) {
		if (c == 'h') {
			config_print_help(opts, usage);
			return 1;
		}
		if (c == '?' || c == ':') {
			fprintf(stderr, "statusgate: %s option: %s (see --help)\n",
				c == ':' ? "missing value for" : "unknown",
				argv[optind - 1]);
			return -1;
		}
		const struct gw_opt *o = &opts[c - 1000];
		if (set_value(o, base, o->type == GW_OPT_FLAG ? "1" : optarg, "command line"))
			return -1;
	}
	if (optind < argc) {
		fprintf(stderr, "statusgate: unexpected argument \"%s\" (see --help)\n", argv[optind]);
		return -1;
	}
	return 0;
}

void config_free(const struct gw_opt *opts, void *base)
{
	for (const struct gw_opt *o = opts; o->name; o++)
		if (o->type == GW_OPT_STR) {
			char **s = (char **)(void *)((char *)base + o->offset);
			free(*s);
			*s = NULL;
		}
}

static int dir_exists(const char *p)
{
	struct stat st;

	return p && !stat(p, &st) && S_ISDIR(st.st_mode);
}

/* HOST:PORT, [v6]:PORT or :PORT */
static int split_listen(struct gw_config *cfg)
{
	const char *s = cfg->listen, *colon;
	char *end;
	long port;

	if (s[0] == '[') {
		const char *rb = strchr(s, ']');
		if (!rb || rb[1] != ':')
			return -1;
		cfg->host = strndup(s + 1, (size_t)(rb - s - 1));
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -1;
		cfg->host = strndup(s, (size_t)(colon - s));
	}
	port = strtol(colon + 1, &end, 10);
	if (!cfg->host || *end || end == colon + 1 || port < 0 || port > 65535)
		return -1;
	cfg->port = (int)port;
	return 0;
}

int config_load(struct gw_config *cfg, int argc, char **argv)
{
	static const char usage[] =
		"Usage: statusgate serve [options]\n\n"
		"Runs the gateway: HTTP API, WebSocket endpoints and the status page on one\n"
		"port, the SQLite store, and (with --amqp) the RabbitMQ bridge.\n";
	int r;

	memset(cfg, 0, sizeof(*cfg));
	r = config_parse(gw_serve_opts, cfg, argc, argv, usage);
	if (r)
		return r;
	if (split_listen(cfg)) {
		fprintf(stderr, "statusgate: --listen wants HOST:PORT, not \"%s\"\n", cfg->listen);
		return -1;
	}
	if (log_parse_level(cfg->log_level) < 0) {
		fprintf(stderr, "statusgate: --log-level: unknown level \"%s\"\n", cfg->log_level);
		return -1;
	}
	if (strcmp(cfg->log_format, "text") && strcmp(cfg->log_format, "json")) {
		fprintf(stderr, "statusgate: --log-format: text or json, not \"%s\"\n", cfg->log_format);
		return -1;
	}
	if (strcmp(cfg->amqp_exchange_type, "topic") && strcmp(cfg->amqp_exchange_type, "direct") &&
	    strcmp(cfg->amqp_exchange_type, "fanout")) {
		fprintf(stderr, "statusgate: --amqp-exchange-type: topic, direct or fanout, not \"%s\"\n",
			cfg->amqp_exchange_type);
		return -1;
	}
	if (strcmp(cfg->amqp_queue_type, "classic") && strcmp(cfg->amqp_queue_type, "quorum")) {
		fprintf(stderr, "statusgate: --amqp-queue-type: classic or quorum, not \"%s\"\n",
			cfg->amqp_queue_type);
		return -1;
	}
	if (!cfg->tls_cert != !cfg->tls_key) {
		fprintf(stderr, "statusgate: --tls-cert and --tls-key go together\n");
		return -1;
	}
	{
		char err[160];
		const char *nets = cfg->publish_networks ? cfg->publish_networks :
				   cfg->publish_token ? "none" : "loopback";
		if (netset_parse(nets, &cfg->publish_nets, err, sizeof(err))) {
			fprintf(stderr, "statusgate: --publish-networks: %s\n", err);
			return -1;
		}
		if (netset_parse(cfg->trusted_proxies ? cfg->trusted_proxies : "", &cfg->proxy_nets,
				 err, sizeof(err))) {
			fprintf(stderr, "statusgate: --trusted-proxies: %s\n", err);
			return -1;
		}
	}
	if (!cfg->web_dir) {
		/* installed copy first, then the source tree (running from a build dir) */
		const char *d = dir_exists(GW_WEB_DIR_DEFAULT) ? GW_WEB_DIR_DEFAULT : GW_SOURCE_WEB_DIR;
		cfg->web_dir = strdup(d);
	}
	if (!dir_exists(cfg->web_dir)) {
		fprintf(stderr, "statusgate: --web-dir: \"%s\" is not a directory\n", cfg->web_dir);
		return -1;
	}
	return 0;
}

void config_release(struct gw_config *cfg)
{
	config_free(gw_serve_opts, cfg);
	free(cfg->host);
	cfg->host = NULL;
	netset_free(cfg->publish_nets);
	netset_free(cfg->proxy_nets);
	cfg->publish_nets = cfg->proxy_nets = NULL;
}
