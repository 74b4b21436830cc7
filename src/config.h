/*
 * Options: one table per command (serve, publish, demo) drives defaults,
 * STATUSGATE_<NAME> environment overrides, --long options and --help, so an
 * option cannot exist on the command line without its variable and its help.
 * Precedence: built-in default < environment < command line.
 */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include <stddef.h>

struct netset;

/* GW_OPT_DURATION: a long of seconds, given as "90", "90s", "15m", "12h",
 * "30d" or a sum such as "1d12h" (config_parse_duration) */
enum gw_opt_type { GW_OPT_STR, GW_OPT_INT, GW_OPT_FLAG, GW_OPT_DURATION };

struct gw_opt {
	const char *name;        /* long option, also STATUSGATE_<NAME> */
	int type;                /* enum gw_opt_type */
	size_t offset;           /* into the command's config struct */
	const char *def;         /* default as text; NULL: unset */
	const char *arg;         /* metavariable for --help, e.g. "HOST:PORT" */
	const char *help;
	long min, max;           /* GW_OPT_INT and GW_OPT_DURATION bounds */
};

/* Parses env then argv into base (a struct whose fields the table names:
 * char * for STR (malloc'd, replaced on override), long for INT, int for
 * FLAG). Returns 0; 1 when --help was printed; -1 on a bad option (the
 * reason is printed to stderr). */
int config_parse(const struct gw_opt *opts, void *base, int argc, char **argv,
		 const char *usage);
void config_free(const struct gw_opt *opts, void *base);
void config_print_help(const struct gw_opt *opts, const char *usage);
/* any thread. A duration: one or more <digits><unit> with unit s, m, h or d
 * ("90s", "12h", "1d12h"), or plain digits meaning seconds. Sets *seconds
 * and returns 0, or returns -1 with a one-line reason in err. */
int config_parse_duration(const char *s, long *seconds, char *err, size_t errlen);

/* the gateway's own options */
struct gw_config {
	char *listen;            /* HOST:PORT */
	char *host;              /* split from listen by config_check */
	int port;
	char *db;
	char *web_dir;
	char *log_level;
	char *log_format;
	char *publish_token;
	char *auth_secret;
	char *allowed_origin;    /* comma-separated list, "" = any */
	char *publish_networks;  /* CIDR list; NULL: loopback, or none with a token */
	char *trusted_proxies;   /* CIDR list; NULL or "": none */
	struct netset *publish_nets; /* parsed by config_load; freed by config_release */
	struct netset *proxy_nets;
	char *tls_cert;
	char *tls_key;
	char *amqp;              /* amqp://user:pass@host:port/vhost */
	char *amqp_exchange;
	char *amqp_exchange_type;
	char *amqp_queue;
	char *amqp_binding_keys; /* comma-separated, for direct exchanges */
	char *amqp_dead_letter;
	char *amqp_rpc_queue;
	char *instance;          /* suffix for a per-instance ingest queue */
	long amqp_prefetch;
	long amqp_heartbeat;
	long amqp_max_attempts;  /* deliveries of a failing publish before dead-lettering */
	long max_connections;
	long max_connections_per_ip;
	long max_subscriptions;
	long max_frame;
	long max_publish;
	long send_queue;
	long send_queue_bytes;
	long ping_interval;
	long sse_heartbeat;      /* seconds between comments on an idle SSE stream */
	long send_buffer;        /* SO_SNDBUF of browser sockets; 0: the kernel's */
	long history;
	long dedup_window;
	long batch;
	long retention;          /* seconds; 0: keep submissions forever */
	long retention_final;    /* seconds, for Completed/Error ones; 0: as retention */
	char *amqp_queue_type;   /* classic or quorum */
	long writer_queue;       /* bytes of publishes queued for the writer at most */
};

extern const struct gw_opt gw_serve_opts[];

/* main thread: parse `statusgate serve` options and check them. Returns 0,
 * 1 for --help, -1 on error (already reported). */
int config_load(struct gw_config *cfg, int argc, char **argv);
void config_release(struct gw_config *cfg);

#endif
