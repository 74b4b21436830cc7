/*
 * `statusgate publish`: sends one publish (SPEC 3.1) to a gateway, for shell
 * scripts and backend jobs, and says by its exit status whether it was taken:
 * 0 taken, 1 refused or failed, 2 usage error.
 *
 * The publish is a JSON document (--json, --file, or stdin) or is built from
 * --submission/--type/--status/--notification. Two transports:
 *   - AMQP (--amqp URL): one persistent message (delivery_mode 2,
 *     application/json, message_id = --id or the document's "id") to the
 *     exchange with routing key submission.<key>.<type>, mandatory, on a
 *     channel in confirm mode; success only on the broker's basic.ack with no
 *     basic.return before it (an unroutable message is a failure, a missing
 *     exchange closes the channel: also a failure).
 *   - HTTP (--http URL, the default): POST /api/v1/publish with a small
 *     blocking HTTP/1.1 client over a POSIX socket; prints the gateway's JSON
 *     answer; success on 2xx. Plain http only: put https behind curl.
 * Single-threaded: everything here runs on the main thread.
 */
#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <errno.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "httpc.h"
#include "config.h"

#define EXIT_REFUSED 1
#define EXIT_USAGE 2
#define DOC_MAX (64u << 20)   /* largest document read from a file or stdin */

struct pub_opts {
	char *http;
	char *amqp;
	char *exchange;
	char *routing_key;
	char *token;
	char *id;
	char *json;
	char *file;
	char *submission;
	char *type;
	char *status;
	char *notification;
	long timeout;
	int quiet;
};

#define POPT(field) offsetof(struct pub_opts, field)

static const struct gw_opt publish_opts[] = {
	{ "http", GW_OPT_STR, POPT(http), NULL, "URL",
	  "gateway to POST to (default http://127.0.0.1:8080; plain http only, no https)", 0, 0 },
	{ "amqp", GW_OPT_STR, POPT(amqp), NULL, "URL",
	  "publish through RabbitMQ instead: amqp://user:pass@host:port/vhost", 0, 0 },
	{ "exchange", GW_OPT_STR, POPT(exchange), "statusgate", "NAME",
	  "AMQP exchange to publish to", 0, 0 },
	{ "routing-key", GW_OPT_STR, POPT(routing_key), NULL, "KEY",
	  "AMQP routing key (default submission.<key>.<type>)", 0, 0 },
	{ "token", GW_OPT_STR, POPT(token), NULL, "TOKEN",
	  "publish token for HTTP (Authorization: Bearer); also STATUSGATE_PUBLISH_TOKEN", 0, 0 },
	{ "id", GW_OPT_STR, POPT(id), NULL, "ID",
	  "idempotency id (the AMQP message_id): the same id twice has one effect", 0, 0 },
	{ "json", GW_OPT_STR, POPT(json), NULL, "DOC", "the publish as a JSON document", 0, 0 },
	{ "file", GW_OPT_STR, POPT(file), NULL, "FILE",
	  "read the JSON document from FILE (- for stdin)", 0, 0 },
	{ "submission", GW_OPT_STR, POPT(submission), NULL, "KEY",
	  "build the publish from flags: the submission key", 0, 0 },
	{ "type", GW_OPT_STR, POPT(type), NULL, "TYPE",
	  "status, notification or reset (default: status with --status, else notification)", 0, 0 },
	{ "status", GW_OPT_STR, POPT(status), NULL, "STATUS",
	  "Waiting, Loaded, Submitted, Error, Need Revision, Ready or Completed", 0, 0 },
	{ "notification", GW_OPT_STR, POPT(notification), NULL, "TEXT", "notification text", 0, 0 },
	{ "timeout", GW_OPT_INT, POPT(timeout), "10", "SECONDS",
	  "give up after this long", 1, 3600 },
	{ "quiet", GW_OPT_FLAG, POPT(quiet), NULL, NULL, "print nothing on success", 0, 0 },
	{ NULL, 0, 0, NULL, NULL, NULL, 0, 0 },
};

static const char usage[] =
	"Usage: statusgate publish [options]\n"
	"       statusgate publish --submission 42 --status Loaded --notification 'Data loaded'\n"
	"       echo '{\"type\":\"status\",\"submission\":\"42\",\"status\":\"Ready\"}' | statusgate publish\n"
	"       statusgate publish --amqp amqp://guest:guest@localhost/ --file publish.json\n\n"
	"Sends one publish to a gateway over HTTP (the default) or through RabbitMQ.\n"
	"The document comes from --json, --file, the flags --submission/--status/...,\n"
	"or stdin. Exit status: 0 taken, 1 refused or failed, 2 usage error.\n"
	"Over AMQP it waits for the broker's publisher confirm; an unroutable message\n"
	"or a missing exchange is a failure. The HTTP client speaks plain http only;\n"
	"for https use curl -H 'Authorization: Bearer ...' --data @doc.json.\n";

/* ---- the document ---- */

static char *read_all(FILE *f, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap), *nb;

	while (buf) {
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
		if (n == cap) {
			if (cap >= DOC_MAX) {
				free(buf);
				return NULL;
			}
			cap *= 2;
			nb = realloc(buf, cap);
			if (!nb)
				free(buf);
			buf = nb;
		}
	}
	if (buf && ferror(f)) {
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

/* the object that carries "submission"/"type": the envelope's body or the
 * document itself */
static json_t *publish_body(json_t *doc)
{
	json_t *body = json_object_get(doc, "body");

	return json_is_object(body) ? body : doc;
}

/* builds the document; returns a new reference or NULL (reason printed) */
static json_t *build_doc(const struct pub_opts *o)
{
	json_t *doc;
	json_error_t jerr;
	int flags = o->submission || o->status || o->notification || o->type;
	int sources = !!o->json + !!o->file + !!flags;

	if (sources > 1) {
		fprintf(stderr, "statusgate publish: give the publish one way: --json, --file or the "
			"--submission/--status/... flags\n");
		return NULL;
	}
	if (flags) {
		const char *type = o->type ? o->type : o->status ? "status" : "notification";

		if (!o->submission) {
			fprintf(stderr, "statusgate publish: --submission KEY is required with --status, "
				"--notification or --type\n");
			return NULL;
		}
		doc = json_pack("{s:s, s:s}", "type", type, "submission", o->submission);
		if (doc && o->status)
			json_object_set_new(doc, "status", json_string(o->status));
		if (doc && o->notification)
			json_object_set_new(doc, "notification", json_string(o->notification));
		if (!doc)
			fprintf(stderr, "statusgate publish: the values must be UTF-8 text\n");
		return doc;
	}
	if (o->json) {
		doc = json_loads(o->json, JSON_REJECT_DUPLICATES, &jerr);
	} else {
		FILE *f = stdin;
		size_t len = 0;
		char *text;

		if (o->file && strcmp(o->file, "-")) {
			f = fopen(o->file, "rb");
			if (!f) {
				fprintf(stderr, "statusgate publish: %s: %s\n", o->file, strerror(errno));
				return NULL;
			}
		} else if (isatty(0)) {
			fprintf(stderr, "statusgate publish: reading the JSON document from stdin "
				"(see --help for the other ways)\n");
		}
		text = read_all(f, &len);
		if (f != stdin)
			fclose(f);
		if (!text) {
			fprintf(stderr, "statusgate publish: cannot read the document\n");
			return NULL;
		}
		doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
		free(text);
	}
	if (!doc) {
		fprintf(stderr, "statusgate publish: not valid JSON: %s (line %d, column %d)\n",
			jerr.text, jerr.line, jerr.column);
		return NULL;
	}
	if (!json_is_object(doc)) {
		fprintf(stderr, "statusgate publish: the publish must be a JSON object\n");
		json_decref(doc);
		return NULL;
	}
	return doc;
}

/* ---- AMQP ---- */

static int amqp_failed(amqp_rpc_reply_t r, const char *what)
{
	switch (r.reply_type) {
	case AMQP_RESPONSE_NORMAL:
		return 0;
	case AMQP_RESPONSE_LIBRARY_EXCEPTION:
		fprintf(stderr, "statusgate publish: %s: %s\n", what,
			amqp_error_string2(r.library_error));
		break;
	case AMQP_RESPONSE_SERVER_EXCEPTION:
		if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
			amqp_connection_close_t *m = r.reply.decoded;
			fprintf(stderr, "statusgate publish: %s: broker closed the connection: %u %.*s\n",
				what, m->reply_code, (int)m->reply_text.len, (char *)m->reply_text.bytes);
		} else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
			amqp_channel_close_t *m = r.reply.decoded;
			fprintf(stderr, "statusgate publish: %s: broker closed the channel: %u %.*s\n",
				what, m->reply_code, (int)m->reply_text.len, (char *)m->reply_text.bytes);
		} else {
			fprintf(stderr, "statusgate publish: %s: unexpected method 0x%08x\n", what,
				r.reply.id);
		}
		break;
	default:
		fprintf(stderr, "statusgate publish: %s: no reply from the broker\n", what);
	}
	return -1;
}

/* waits for the confirm of delivery tag 1; 0 when acked and not returned */
static int await_confirm(amqp_connection_state_t conn, long timeout_s)
{
	struct timeval tv = { timeout_s, 0 };
	int returned = 0;

	for (;;) {
		amqp_frame_t f;
		int st = amqp_simple_wait_frame_noblock(conn, &f, &tv);

		if (st == AMQP_STATUS_TIMEOUT) {
			fprintf(stderr, "statusgate publish: no confirm from the broker within %ld s\n",
				timeout_s);
			return -1;
		}
		if (st != AMQP_STATUS_OK) {
			fprintf(stderr, "statusgate publish: waiting for the confirm: %s\n",
				amqp_error_string2(st));
			return -1;
		}
		if (f.frame_type != AMQP_FRAME_METHOD)
			continue;
		switch (f.payload.method.id) {
		case AMQP_BASIC_ACK_METHOD:
			if (returned) {
				fprintf(stderr, "statusgate publish: unroutable: no queue is bound for "
					"this routing key on the exchange (is the gateway's queue declared?)\n");
				return -1;
			}
			return 0;
		case AMQP_BASIC_NACK_METHOD:
			fprintf(stderr, "statusgate publish: the broker refused the message (nack)\n");
			return -1;
		case AMQP_BASIC_RETURN_METHOD: {
			amqp_basic_return_t *m = f.payload.method.decoded;
			amqp_message_t msg;
			amqp_rpc_reply_t r;

			fprintf(stderr, "statusgate publish: returned by the broker: %u %.*s\n",
				m->reply_code, (int)m->reply_text.len, (char *)m->reply_text.bytes);
			returned = 1;
			r = amqp_read_message(conn, f.channel, &msg, 0);
			if (amqp_failed(r, "reading the returned message"))
				return -1;
			amqp_destroy_message(&msg);
			break;
		}
		case AMQP_CHANNEL_CLOSE_METHOD: {
			amqp_channel_close_t *m = f.payload.method.decoded;
			fprintf(stderr, "statusgate publish: the broker closed the channel: %u %.*s\n",
				m->reply_code, (int)m->reply_text.len, (char *)m->reply_text.bytes);
			return -1;
		}
		case AMQP_CONNECTION_CLOSE_METHOD: {
			amqp_connection_close_t *m = f.payload.method.decoded;
			fprintf(stderr, "statusgate publish: the broker closed the connection: %u %.*s\n",
				m->reply_code, (int)m->reply_text.len, (char *)m->reply_text.bytes);
			return -1;
		}
		default:
			break;
		}
	}
}

static int publish_amqp(const struct pub_opts *o, const char *body, const char *rk,
			const char *msg_id)
{
	struct amqp_connection_info ci;
	struct timeval tv = { o->timeout, 0 };
	amqp_connection_state_t conn = NULL;
	amqp_socket_t *sock;
	amqp_basic_properties_t p;
	char *url = strdup(o->amqp);
	int rc = EXIT_REFUSED, st;

	if (!url)
		return EXIT_REFUSED;
	amqp_default_connection_info(&ci);
	if (amqp_parse_url(url, &ci) != AMQP_STATUS_OK || ci.ssl) {
		fprintf(stderr, "statusgate publish: --amqp wants amqp://user:pass@host:port/vhost, "
			"not \"%s\"\n", o->amqp);
		free(url);
		return EXIT_USAGE;
	}
	conn = amqp_new_connection();
	sock = conn ? amqp_tcp_socket_new(conn) : NULL;
	if (!sock) {
		fprintf(stderr, "statusgate publish: out of memory\n");
		goto done;
	}
	amqp_set_handshake_timeout(conn, &tv);
	amqp_set_rpc_timeout(conn, &tv);
	st = amqp_socket_open_noblock(sock, ci.host, ci.port, &tv);
	if (st != AMQP_STATUS_OK) {
		fprintf(stderr, "statusgate publish: cannot connect to %s:%d: %s\n", ci.host, ci.port,
			amqp_error_string2(st));
		goto done;
	}
	if (amqp_failed(amqp_login(conn, ci.vhost && *ci.vhost ? ci.vhost : "/", 0, 131072, 0,
				   AMQP_SASL_METHOD_PLAIN, ci.user, ci.password), "login"))
		goto done;
	amqp_channel_open(conn, 1);
	if (amqp_failed(amqp_get_rpc_reply(conn), "channel.open"))
		goto done;
	amqp_confirm_select(conn, 1);
	if (amqp_failed(amqp_get_rpc_reply(conn), "confirm.select"))
		goto done;

	memset(&p, 0, sizeof(p));
	p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
	p.content_type = amqp_cstring_bytes("application/json");
	p.delivery_mode = 2;   /* persistent */
	if (msg_id) {
		p._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
		p.message_id = amqp_cstring_bytes(msg_id);
	}
	st = amqp_basic_publish(conn, 1, amqp_cstring_bytes(o->exchange), amqp_cstring_bytes(rk),
				1, 0, &p, amqp_cstring_bytes(body));
	if (st != AMQP_STATUS_OK) {
		fprintf(stderr, "statusgate publish: basic.publish: %s\n", amqp_error_string2(st));
		goto done;
	}
	if (await_confirm(conn, o->timeout))
		goto done;
	if (!o->quiet)
		printf("{\"published\":true,\"exchange\":\"%s\",\"routing_key\":\"%s\"}\n",
		       o->exchange, rk);
	rc = 0;
	amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
	amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
done:
	if (conn)
		amqp_destroy_connection(conn);
	free(url);
	return rc;
}

/* ---- HTTP ---- */

static int publish_http(const struct pub_opts *o, const char *body)
{
	const char *token = o->token ? o->token : getenv("STATUSGATE_PUBLISH_TOKEN");
	struct httpc_url u;
	struct httpc_resp r;
	char err[256];
	int rc;

	if (httpc_parse_url(o->http ? o->http : "http://127.0.0.1:8080", &u, err, sizeof(err))) {
		fprintf(stderr, "statusgate publish: --http: %s\n", err);
		return EXIT_USAGE;
	}
	if (token && strpbrk(token, "\r\n")) {
		fprintf(stderr, "statusgate publish: --token must be one line\n");
		return EXIT_USAGE;
	}
	if (httpc_request(&u, "POST", "/api/v1/publish", body, strlen(body), token,
			  (int)o->timeout, &r, err, sizeof(err))) {
		fprintf(stderr, "statusgate publish: %s\n", err);
		return EXIT_REFUSED;
	}
	rc = r.status >= 200 && r.status < 300 ? 0 : EXIT_REFUSED;
	if (rc || !o->quiet)
		printf("%s%s", r.body, r.len && r.body[r.len - 1] == '\n' ? "" : "\n");
	if (rc)
		fprintf(stderr, "statusgate publish: the gateway answered HTTP %d\n", r.status);
	httpc_resp_free(&r);
	return rc;
}

int cmd_publish(int argc, char **argv)
{
	struct pub_opts o;
	json_t *doc = NULL, *body;
	char *text = NULL, *rk = NULL;
	const char *msg_id = NULL;
	int rc = EXIT_USAGE, r;

	memset(&o, 0, sizeof(o));
	r = config_parse(publish_opts, &o, argc, argv, usage);
	if (r) {
		config_free(publish_opts, &o);
		return r > 0 ? 0 : EXIT_USAGE;
	}
	if (o.http && o.amqp) {
		fprintf(stderr, "statusgate publish: give either --http or --amqp, not both\n");
		goto done;
	}
	doc = build_doc(&o);
	if (!doc)
		goto done;
	body = publish_body(doc);
	if (o.id && json_object_set_new(body, "id", json_string(o.id))) {
		fprintf(stderr, "statusgate publish: --id must be UTF-8 text\n");
		goto done;
	}
	msg_id = json_string_value(json_object_get(body, "id"));
	text = json_dumps(doc, JSON_COMPACT);
	if (!text) {
		fprintf(stderr, "statusgate publish: out of memory\n");
		rc = EXIT_REFUSED;
		goto done;
	}
	if (!o.amqp) {
		rc = publish_http(&o, text);
		goto done;
	}
	if (o.routing_key) {
		rk = strdup(o.routing_key);
	} else {
		const char *key = json_string_value(json_object_get(body, "submission"));
		const char *type = json_string_value(json_object_get(body, "type"));
		json_t *num = json_object_get(body, "submission");
		char nbuf[32];

		if (!key && json_is_integer(num)) {
			snprintf(nbuf, sizeof(nbuf), "%lld", (long long)json_integer_value(num));
			key = nbuf;
		}
		if (!key || !type) {
			fprintf(stderr, "statusgate publish: the document needs \"submission\" and "
				"\"type\" to make a routing key (or give --routing-key)\n");
			goto done;
		}
		if (asprintf(&rk, "submission.%s.%s", key, type) < 0)
			rk = NULL;
	}
	if (!rk) {
		rc = EXIT_REFUSED;
		goto done;
	}
	rc = publish_amqp(&o, text, rk, msg_id);
done:
	free(rk);
	free(text);
	json_decref(doc);
	config_free(publish_opts, &o);
	return rc;
}
