/*
 * The reference peer for bench/amqp_ingest.py, in C with rabbitmq-c so the
 * comparison is not handicapped by a slow client:
 *
 *   amqp_ackonly publish HOST PORT EXCHANGE QUEUE N TAG
 *       publishes N persistent status publishes (message_id TAG-i) to
 *       EXCHANGE (routing key submission.<key>.status; with EXCHANGE "" to
 *       QUEUE directly) and waits until QUEUE holds N messages.
 *   amqp_ackonly consume HOST PORT QUEUE N PREFETCH
 *       consumes N messages with basic.qos PREFETCH and acknowledges each
 *       one, doing nothing else; prints the seconds from basic.consume to
 *       the last ack having been handled by the broker (a channel.close
 *       round trip after it).
 *
 * Build: cc -O2 -o amqp_ackonly amqp_ackonly.c -lrabbitmq
 */
#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void die_reply(amqp_rpc_reply_t r, const char *what)
{
	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return;
	fprintf(stderr, "amqp_ackonly: %s failed (reply type %d, library error %s)\n", what,
		(int)r.reply_type, amqp_error_string2(r.library_error));
	exit(1);
}

static amqp_connection_state_t open_conn(const char *host, int port)
{
	amqp_connection_state_t c = amqp_new_connection();
	amqp_socket_t *s = amqp_tcp_socket_new(c);

	if (!s || amqp_socket_open(s, host, port)) {
		fprintf(stderr, "amqp_ackonly: cannot connect to %s:%d\n", host, port);
		exit(1);
	}
	die_reply(amqp_login(c, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest"),
		  "login");
	amqp_channel_open(c, 1);
	die_reply(amqp_get_rpc_reply(c), "channel.open");
	return c;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint32_t depth(amqp_connection_state_t c, const char *queue)
{
	amqp_queue_declare_ok_t *ok = amqp_queue_declare(c, 1, amqp_cstring_bytes(queue), 1, 0,
							 0, 0, amqp_empty_table);
	die_reply(amqp_get_rpc_reply(c), "queue.declare passive");
	return ok->message_count;
}

static int do_publish(const char *host, int port, const char *exchange, const char *queue,
		      long n, const char *tag)
{
	amqp_connection_state_t c = open_conn(host, port);
	amqp_basic_properties_t p;
	char body[256], rk[64], mid[96];

	for (long i = 0; i < n; i++) {
		long key = i % 100;

		snprintf(body, sizeof(body),
			 "{\"type\":\"status\",\"submission\":\"bench-%ld\",\"status\":\"%s\","
			 "\"notification\":\"step %ld of the import\"}",
			 key, i % 2 ? "Loaded" : "Submitted", i);
		if (*exchange)
			snprintf(rk, sizeof(rk), "submission.bench-%ld.status", key);
		else
			snprintf(rk, sizeof(rk), "%s", queue);
		snprintf(mid, sizeof(mid), "%s-%ld", tag, i);
		memset(&p, 0, sizeof(p));
		p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
			   AMQP_BASIC_MESSAGE_ID_FLAG;
		p.content_type = amqp_cstring_bytes("application/json");
		p.delivery_mode = 2;
		p.message_id = amqp_cstring_bytes(mid);
		if (amqp_basic_publish(c, 1, amqp_cstring_bytes(exchange), amqp_cstring_bytes(rk),
				       0, 0, &p, amqp_cstring_bytes(body))) {
			fprintf(stderr, "amqp_ackonly: publish failed\n");
			return 1;
		}
	}
	for (int tries = 0; depth(c, queue) < (uint32_t)n; tries++) {
		if (tries > 600) {
			fprintf(stderr, "amqp_ackonly: %s never reached %ld messages\n", queue, n);
			return 1;
		}
		usleep(100000);
	}
	amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
	amqp_connection_close(c, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(c);
	return 0;
}

static int do_consume(const char *host, int port, const char *queue, long n, int prefetch)
{
	amqp_connection_state_t c = open_conn(host, port);
	double t0, t1;
	long got = 0;

	amqp_basic_qos(c, 1, 0, (uint16_t)prefetch, 0);
	die_reply(amqp_get_rpc_reply(c), "basic.qos");
	t0 = now();
	amqp_basic_consume(c, 1, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0, 0,
			   amqp_empty_table);
	die_reply(amqp_get_rpc_reply(c), "basic.consume");
	while (got < n) {
		amqp_envelope_t env;

		amqp_maybe_release_buffers(c);
		die_reply(amqp_consume_message(c, &env, NULL, 0), "consume");
		if (amqp_basic_ack(c, 1, env.delivery_tag, 0)) {
			fprintf(stderr, "amqp_ackonly: ack failed\n");
			return 1;
		}
		amqp_destroy_envelope(&env);
		got++;
	}
	/* a round trip: the broker has processed every ack before this answer */
	amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
	t1 = now();
	printf("%.6f\n", t1 - t0);
	amqp_connection_close(c, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(c);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 8 && !strcmp(argv[1], "publish"))
		return do_publish(argv[2], atoi(argv[3]), argv[4], argv[5], atol(argv[6]), argv[7]);
	if (argc == 7 && !strcmp(argv[1], "consume"))
		return do_consume(argv[2], atoi(argv[3]), argv[4], atol(argv[5]), atoi(argv[6]));
	fprintf(stderr, "usage: amqp_ackonly publish HOST PORT EXCHANGE QUEUE N TAG\n"
			"       amqp_ackonly consume HOST PORT QUEUE N PREFETCH\n");
	return 2;
}
