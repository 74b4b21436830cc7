/*
 * The RabbitMQ bridge (see bridge.h). One broker thread owns the
 * rabbitmq-c connection, with two channels: 1 consumes the durable ingest
 * queue with a prefetch window and manual acks, 2 consumes the RPC queue
 * (a small prefetch window, each request acknowledged once its answer is
 * published) and publishes the answers, so RPC deliveries never take delivery
 * tags of the ingest channel and ack coalescing stays simple.
 *
 * Waiting: the thread sleeps in poll() on the AMQP socket and an eventfd. The
 * writer's ack sink (writer thread, after each commit), RPC answers (service
 * thread) and quiesce/stop (main thread) queue their work under b->lock and
 * write the eventfd. Before polling we drain what rabbitmq-c already holds
 * (amqp_frames_enqueued / amqp_data_in_buffer), and we call into rabbitmq-c
 * at least every heartbeat/2 so it sends heartbeats and notices a silent
 * peer. No busy polling, no fixed-interval consume loop.
 *
 * Acknowledgement: a delivery is acked only when the writer reports its
 * commit. AMQP jobs reach the writer only from this thread, in delivery
 * order, and the writer reports them in commit order (FIFO batches), so the
 * reports arrive in increasing tag order; a run of OK reports becomes one
 * basic.ack with multiple=1. The bookkeeping is ackq.c's: each job's report
 * slot is reserved before the job goes to the writer, so no report can be
 * dropped (a later multiple-ack would cover it: a requeue would become an
 * ack, and the message would be lost), and a publish the store keeps
 * refusing on its own is dead-lettered at its --amqp-max-attempts-th
 * failure instead of cycling forever. Delivery tags belong to one
 * connection: the job cookie carries a 16-bit connection generation above a
 * 48-bit tag, and reports for an earlier connection are dropped (the broker
 * redelivers those messages; the message_id dedup makes the replay harmless,
 * and without an id they are applied again: counted in /metrics).
 *
 * Back-pressure: a delivery goes to the writer only while the store accepts
 * commits and the writer's queue has room (--writer-queue). Else it is held
 * here, unacknowledged, with every later one, and the thread stops reading
 * the socket (it still reads at each heartbeat tick, so heartbeats flow)
 * until the held deliveries could be handed over; the broker sends at most
 * --amqp-prefetch unacknowledged deliveries, which bounds what is held.
 *
 * On a channel or connection error everything is torn down, /readyz reports
 * the reason, and the thread reconnects with exponential back-off (100 ms
 * doubling to 10 s) and jitter. --amqp may list several URLs (the nodes of
 * a cluster): each attempt takes the next one in turn, so a connection lost
 * with its node goes on at another node at once; the back-off only starts
 * when a whole round of them failed.
 *
 * Queue types (--amqp-queue-type): classic, or quorum for a clustered
 * broker. Quorum applies to the ingest and dead-letter queues, which must
 * then be durable, non-exclusive and not auto-delete (they are in both
 * modes). Their dead-lettering is RabbitMQ's default at-most-once: a
 * rejected message goes to the dead-letter exchange once, without the
 * at-least-once strategy's extra requirements (x-overflow reject-publish).
 * The RPC queue stays a classic non-durable queue in both modes: requests
 * are short-lived, a quorum queue cannot be anything but durable, and when
 * the node that holds it goes, the gateways' consumers are cancelled and
 * they declare it again on the node they reconnect to.
 */
#include "bridge.h"

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "ackq.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "proto.h"
#include "writer.h"

#define CH_INGEST 1
#define CH_RPC 2
#define RPC_PREFETCH 64          /* RPC requests being answered at once */
#define TAG_BITS ACKQ_TAG_BITS
#define TAG_MASK ACKQ_TAG_MASK
#define GEN_MASK ACKQ_GEN_MASK
#define HELD_RETRY_MS 20         /* retry held deliveries this often */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 10000
#define RPC_MAX 4096             /* largest RPC request body */
#define FRAME_MAX 131072

/* an RPC answer waiting to be published by the broker thread */
struct rpc_out {
	struct rpc_out *next;
	uint64_t cookie;         /* gen << 48 | delivery tag of the request */
	char *reply_to;          /* malloc'd */
	char *corr_id;           /* malloc'd or NULL */
	char *body;              /* malloc'd JSON text, or NULL until answered */
};

/* an RPC request handed to cfg.rpc; freed by its reply or discard */
struct rpc_req {
	struct gw_rpc pub;       /* first: the callee sees only this */
	struct bridge *b;
	struct rpc_out *out;
};

struct bridge {
	struct bridge_cfg bc;    /* the injected writer and RPC callback */
	const struct gw_config *cfg;
	pthread_t thread;
	int efd;                 /* eventfd: wakes the broker thread */
	atomic_int stop;         /* bridge_stop: flush, close, exit */
	atomic_int quiesced;     /* bridge_quiesce: submit nothing more */

	struct ackq *aq;         /* commit reports (the writer) -> acks (this thread) */

	/* b->lock guards this block; held only to append or swap */
	pthread_mutex_t lock;
	struct rpc_out *out_head, **out_tail;
	int connected;
	char reason[256];

	/* submit_lock: held by the broker thread around check-quiesced +
	 * writer_submit, and by bridge_quiesce to set the flag, so no job is
	 * submitted once bridge_quiesce returns */
	pthread_mutex_t submit_lock;

	/* broker thread only */
	struct gw_job *held, **held_tail; /* deliveries waiting for the writer, in order */
	size_t nheld;
	int paused;              /* held because the writer's queue was full */
	amqp_connection_state_t conn;
	unsigned gen;            /* connection generation (16 bits used) */
	char *urls;              /* writable copy of --amqp, parsed into targets */
	struct amqp_target {
		struct amqp_connection_info ci;  /* strings point into urls */
		const char *vhost;
	} *targets;              /* malloc'd, ntargets of them */
	size_t ntargets, cur;    /* cur: the target of this or the next attempt */
	struct amqp_connection_info ci;  /* a copy of targets[cur].ci */
	const char *vhost;
	char *queue;             /* ingest queue name */
	amqp_bytes_t ctag;       /* ingest consumer tag, malloc'd */
	int cancelled;
	unsigned seed;
};

/* ---- state shared with other threads ---- */

static void bridge_wake(struct bridge *b)
{
	uint64_t one = 1;
	ssize_t r = write(b->efd, &one, sizeof(one));

	(void)r;   /* EAGAIN only when the counter is saturated: already awake */
}

/* broker thread: marks the bridge down with a reason; returns -1 */
static int set_down(struct bridge *b, const char *what, const char *why)
{
	pthread_mutex_lock(&b->lock);
	b->connected = 0;
	snprintf(b->reason, sizeof(b->reason), "broker %s:%d: %s: %s",
		 b->ci.host, b->ci.port, what, why);
	pthread_mutex_unlock(&b->lock);
	GW_SET(broker_up, 0);
	GW_WARN("%s: broker %s:%d: %s: %s", __func__, b->ci.host, b->ci.port, what, why);
	return -1;
}

static void set_up(struct bridge *b)
{
	pthread_mutex_lock(&b->lock);
	b->connected = 1;
	b->reason[0] = '\0';
	pthread_mutex_unlock(&b->lock);
	GW_SET(broker_up, 1);
}

int bridge_connected(struct bridge *b, char *reason, size_t len)
{
	int c;

	pthread_mutex_lock(&b->lock);
	c = b->connected;
	if (!c)
		snprintf(reason, len, "%s", b->reason);
	pthread_mutex_unlock(&b->lock);
	return c;
}

/* writer thread, after a commit (a job's committed callback): the report
 * fills the slot reserved for it (it cannot fail), and the broker thread is
 * woken when it is the first since its last flush (one write per batch) */
static void bridge_committed(struct gw_job *job, void *arg)
{
	struct bridge *b = arg;

	if (ackq_report(b->aq, job->cookie, writer_ack_of(job)))
		bridge_wake(b);
}

static void rpc_out_free(struct rpc_out *o)
{
	if (!o)
		return;
	free(o->reply_to);
	free(o->corr_id);
	free(o->body);
	free(o);
}

/* any thread: hands a finished answer to the broker thread */
static void rpc_post_reply(struct bridge *b, struct rpc_out *o)
{
	o->next = NULL;
	pthread_mutex_lock(&b->lock);
	*b->out_tail = o;
	b->out_tail = &o->next;
	pthread_mutex_unlock(&b->lock);
	bridge_wake(b);
}

static char *error_json(const char *code, const char *detail)
{
	json_t *o = json_pack("{s:s, s:s}", "error", code, "detail", detail);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return s;
}

/* any thread (struct gw_rpc's reply): the answer goes to the broker thread */
static void rpc_reply(struct gw_rpc *pub, char *body)
{
	struct rpc_req *q = (struct rpc_req *)pub;
	struct rpc_out *o = q->out;

	o->body = body ? body : error_json("unavailable", "the gateway cannot answer now");
	if (o->body)
		rpc_post_reply(q->b, o);
	else
		rpc_out_free(o);
	free(q);
}

/* any thread (struct gw_rpc's discard): touches nothing but the request */
static void rpc_discard(struct gw_rpc *pub)
{
	struct rpc_req *q = (struct rpc_req *)pub;

	rpc_out_free(q->out);
	free(q);
}

/* ---- rabbitmq-c error handling ---- */

/* broker thread: the one place that turns an amqp_rpc_reply_t into a log
 * line and a return code (0 normal, -1 with the bridge marked down) */
static int amqp_check(struct bridge *b, amqp_rpc_reply_t r, const char *what)
{
	char why[200];

	switch (r.reply_type) {
	case AMQP_RESPONSE_NORMAL:
		return 0;
	case AMQP_RESPONSE_NONE:
		snprintf(why, sizeof(why), "no reply from the broker");
		break;
	case AMQP_RESPONSE_LIBRARY_EXCEPTION:
		snprintf(why, sizeof(why), "%s", amqp_error_string2(r.library_error));
		break;
	case AMQP_RESPONSE_SERVER_EXCEPTION:
		if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
			amqp_connection_close_t *m = r.reply.decoded;
			snprintf(why, sizeof(why), "connection closed by the broker: %u %.*s",
				 m->reply_code, (int)m->reply_text.len, (char *)m->reply_text.bytes);
		} else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
			amqp_channel_close_t *m = r.reply.decoded;
			snprintf(why, sizeof(why), "channel closed by the broker: %u %.*s",
				 m->reply_code, (int)m->reply_text.len, (char *)m->reply_text.bytes);
		} else {
			snprintf(why, sizeof(why), "unexpected broker method 0x%08x", r.reply.id);
		}
		break;
	default:
		snprintf(why, sizeof(why), "unknown reply type %d", (int)r.reply_type);
	}
	return set_down(b, what, why);
}

/* broker thread: same for the int status codes of rabbitmq-c */
static int amqp_status_check(struct bridge *b, int status, const char *what)
{
	if (status == AMQP_STATUS_OK)
		return 0;
	return set_down(b, what, amqp_error_string2(status));
}

/* ---- connect and declare ---- */

/* broker thread: drops the held deliveries (never handed to the writer);
 * unacknowledged, the broker delivers them again */
static void drop_held(struct bridge *b)
{
	ackq_unreserve(b->aq, b->nheld);
	while (b->held) {
		struct gw_job *j = b->held;
		b->held = j->next;
		writer_job_free(j);
	}
	b->held_tail = &b->held;
	b->nheld = 0;
	b->paused = 0;
	GW_SET(amqp_held, 0);
}

static void teardown(struct bridge *b)
{
	drop_held(b);
	if (b->conn) {
		amqp_destroy_connection(b->conn);   /* closes the socket */
		b->conn = NULL;
	}
	amqp_bytes_free(b->ctag);
	b->ctag = amqp_empty_bytes;
	b->cancelled = 0;
	b->gen = (b->gen + 1) & GEN_MASK;   /* old delivery tags are void now */
}

static int declare_queue(struct bridge *b, amqp_channel_t ch, const char *name,
			 int durable, amqp_table_t args, const char *what)
{
	amqp_queue_declare(b->conn, ch, amqp_cstring_bytes(name), 0, durable, 0, 0, args);
	return amqp_check(b, amqp_get_rpc_reply(b->conn), what);
}

static int bind_queue(struct bridge *b, const char *queue, const char *exchange,
		      const char *key)
{
	amqp_queue_bind(b->conn, CH_INGEST, amqp_cstring_bytes(queue),
			amqp_cstring_bytes(exchange), amqp_cstring_bytes(key), amqp_empty_table);
	return amqp_check(b, amqp_get_rpc_reply(b->conn), "queue.bind");
}

/* broker thread: declares exchanges, queues and bindings (idempotent; a
 * queue that exists with other arguments, such as another type, is refused
 * by the broker with PRECONDITION_FAILED, which set_down logs) */
static int declare_all(struct bridge *b)
{
	const struct gw_config *c = b->cfg;
	amqp_table_entry_t e[2];
	amqp_table_t args;
	int rc = 0, quorum = !strcmp(c->amqp_queue_type, "quorum");

	amqp_exchange_declare(b->conn, CH_INGEST, amqp_cstring_bytes(c->amqp_exchange),
			      amqp_cstring_bytes(c->amqp_exchange_type), 0, 1, 0, 0,
			      amqp_empty_table);
	if (amqp_check(b, amqp_get_rpc_reply(b->conn), "exchange.declare"))
		return -1;
	amqp_exchange_declare(b->conn, CH_INGEST, amqp_cstring_bytes(c->amqp_dead_letter),
			      amqp_cstring_bytes("fanout"), 0, 1, 0, 0, amqp_empty_table);
	if (amqp_check(b, amqp_get_rpc_reply(b->conn), "exchange.declare (dead letters)"))
		return -1;
	/* e[0]: the queue type (only when quorum: an explicit "classic" would
	 * refuse queues declared by earlier versions without the argument) */
	e[0].key = amqp_cstring_bytes("x-queue-type");
	e[0].value.kind = AMQP_FIELD_KIND_UTF8;
	e[0].value.value.bytes = amqp_cstring_bytes("quorum");
	args.num_entries = quorum;
	args.entries = e;
	if (declare_queue(b, CH_INGEST, c->amqp_dead_letter, 1, args,
			  "queue.declare (dead letters)") ||
	    bind_queue(b, c->amqp_dead_letter, c->amqp_dead_letter, ""))
		return -1;

	e[quorum].key = amqp_cstring_bytes("x-dead-letter-exchange");
	e[quorum].value.kind = AMQP_FIELD_KIND_UTF8;
	e[quorum].value.value.bytes = amqp_cstring_bytes(c->amqp_dead_letter);
	args.num_entries = quorum + 1;
	if (declare_queue(b, CH_INGEST, b->queue, 1, args, "queue.declare (ingest)"))
		return -1;
	if (!strcmp(c->amqp_exchange_type, "fanout"))
		return bind_queue(b, b->queue, c->amqp_exchange, "");

	/* one binding per comma-separated key */
	char *keys = strdup(c->amqp_binding_keys), *save = NULL, *k;
	if (!keys)
		return set_down(b, "queue.bind", "out of memory");
	for (k = strtok_r(keys, ", ", &save); k && !rc; k = strtok_r(NULL, ", ", &save))
		rc = bind_queue(b, b->queue, c->amqp_exchange, k);
	free(keys);
	return rc;
}

/* broker thread: connect, log in, open channels, declare, consume */
static int bridge_connect(struct bridge *b)
{
	const struct gw_config *c = b->cfg;
	struct timeval tv = { 5, 0 };
	amqp_socket_t *sock;
	amqp_basic_consume_ok_t *ok;
	int st;

	b->conn = amqp_new_connection();
	if (!b->conn)
		return set_down(b, "connect", "out of memory");
	sock = amqp_tcp_socket_new(b->conn);
	if (!sock)
		return set_down(b, "connect", "cannot create a socket");
	amqp_set_handshake_timeout(b->conn, &tv);
	amqp_set_rpc_timeout(b->conn, &tv);
	st = amqp_socket_open_noblock(sock, b->ci.host, b->ci.port, &tv);
	if (amqp_status_check(b, st, "connect"))
		return -1;
	if (amqp_check(b, amqp_login(b->conn, b->vhost, 0, FRAME_MAX, (int)c->amqp_heartbeat,
				     AMQP_SASL_METHOD_PLAIN, b->ci.user, b->ci.password),
		       "login"))
		return -1;
	amqp_channel_open(b->conn, CH_INGEST);
	if (amqp_check(b, amqp_get_rpc_reply(b->conn), "channel.open"))
		return -1;
	amqp_channel_open(b->conn, CH_RPC);
	if (amqp_check(b, amqp_get_rpc_reply(b->conn), "channel.open (rpc)"))
		return -1;
	if (declare_all(b))
		return -1;
	if (declare_queue(b, CH_RPC, c->amqp_rpc_queue, 0, amqp_empty_table,
			  "queue.declare (rpc)"))
		return -1;

	amqp_basic_qos(b->conn, CH_INGEST, 0, (uint16_t)c->amqp_prefetch, 0);
	if (amqp_check(b, amqp_get_rpc_reply(b->conn), "basic.qos"))
		return -1;
	ok = amqp_basic_consume(b->conn, CH_INGEST, amqp_cstring_bytes(b->queue),
				amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
	if (amqp_check(b, amqp_get_rpc_reply(b->conn), "basic.consume"))
		return -1;
	b->ctag = amqp_bytes_malloc_dup(ok->consumer_tag);
	/* requests are acknowledged once answered, at most RPC_PREFETCH at a
	 * time: a flood of them waits in the broker, not in our memory */
	amqp_basic_qos(b->conn, CH_RPC, 0, RPC_PREFETCH, 0);
	if (amqp_check(b, amqp_get_rpc_reply(b->conn), "basic.qos (rpc)"))
		return -1;
	amqp_basic_consume(b->conn, CH_RPC, amqp_cstring_bytes(c->amqp_rpc_queue),
			   amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
	if (amqp_check(b, amqp_get_rpc_reply(b->conn), "basic.consume (rpc)"))
		return -1;
	return 0;
}

/* ---- acknowledgements ---- */

/* broker thread (ackq_flush's send): one ack, nack or reject; an AMQP
 * status (non-zero: the connection failed) */
static int send_ack(void *arg, int op, uint64_t tag, unsigned attempts)
{
	struct bridge *b = arg;

	if (!b->conn)
		return AMQP_STATUS_CONNECTION_CLOSED;
	switch (op) {
	case ACKQ_ACK:
		return amqp_basic_ack(b->conn, CH_INGEST, tag, 1);
	case ACKQ_REJECT:
		/* valid JSON the store refused as content: dead-letter it */
		GW_INC(dead_lettered);
		return amqp_basic_reject(b->conn, CH_INGEST, tag, 0);
	case ACKQ_DEAD:
		GW_INC(dead_lettered);
		GW_WARN("%s: delivery %llu failed in the store %u times; dead-lettered", __func__,
			(unsigned long long)tag, attempts);
		return amqp_basic_reject(b->conn, CH_INGEST, tag, 0);
	case ACKQ_RETRY:
		GW_INC(amqp_retries);
		GW_WARN("%s: delivery %llu failed in the store (attempt %u of %ld); requeued",
			__func__, (unsigned long long)tag, attempts, b->cfg->amqp_max_attempts);
		return amqp_basic_nack(b->conn, CH_INGEST, tag, 0, 1);
	default:
		return amqp_basic_nack(b->conn, CH_INGEST, tag, 0, 1);
	}
}

/* broker thread: sends the queued commit reports; a run of OKs becomes one
 * multiple-ack (see the top comment for why that is safe). -1 on a lost
 * connection. When not connected (conn NULL) the reports are dropped: they
 * belong to an earlier connection, whose deliveries come again. */
static int flush_acks(struct bridge *b)
{
	struct ackq_stats st = { 0 };
	int rc = ackq_flush(b->aq, b->gen, send_ack, b, &st);

	if (st.lost)
		GW_ADD(amqp_acks_lost, st.lost);
	if (!rc && st.lost_track)
		return set_down(b, "ack bookkeeping", "a commit report matched no delivery; "
				"reconnecting so that the broker redelivers what is unacknowledged");
	return amqp_status_check(b, rc, "basic.ack");
}

/* broker thread: publishes the RPC answers that are ready */
static int flush_replies(struct bridge *b)
{
	struct rpc_out *o, *next;
	int rc = 0;

	if (!b->conn)
		return 0;   /* keep them until we are connected again */
	pthread_mutex_lock(&b->lock);
	o = b->out_head;
	b->out_head = NULL;
	b->out_tail = &b->out_head;
	pthread_mutex_unlock(&b->lock);

	for (; o; o = next) {
		amqp_basic_properties_t p;

		next = o->next;
		if (!rc) {
			memset(&p, 0, sizeof(p));
			p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
			p.content_type = amqp_cstring_bytes("application/json");
			p.delivery_mode = 1;
			if (o->corr_id) {
				p._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
				p.correlation_id = amqp_cstring_bytes(o->corr_id);
			}
			rc = amqp_basic_publish(b->conn, CH_RPC, amqp_empty_bytes,
						amqp_cstring_bytes(o->reply_to), 0, 0, &p,
						amqp_cstring_bytes(o->body));
			/* a request of an earlier connection was redelivered
			 * already: its tag means nothing on this one */
			if (!rc && (o->cookie >> TAG_BITS) == b->gen)
				rc = amqp_basic_ack(b->conn, CH_RPC, o->cookie & TAG_MASK, 0);
		}
		rpc_out_free(o);
	}
	return amqp_status_check(b, rc, "rpc reply");
}

/* ---- deliveries ---- */

/* broker thread: hands the held deliveries to the writer, oldest first, as
 * long as the store accepts commits and the writer's queue has room; what is
 * left stays held (and the thread stops reading the socket meanwhile). After
 * bridge_quiesce nothing is handed over any more: held ones are dropped. */
static void submit_held(struct bridge *b)
{
	pthread_mutex_lock(&b->submit_lock);
	if (atomic_load(&b->quiesced)) {
		pthread_mutex_unlock(&b->submit_lock);
		drop_held(b);
		return;
	}
	while (b->held) {
		struct gw_job *j = b->held, *next = j->next;

		if (!writer_ready(b->bc.writer))
			break;
		if (writer_submit(b->bc.writer, j)) {
			if (!b->paused)
				GW_INC(writer_queue_full);   /* consuming pauses */
			b->paused = 1;
			break;
		}
		b->held = next;
		b->nheld--;
	}
	if (!b->held) {
		b->held_tail = &b->held;
		b->paused = 0;
	}
	pthread_mutex_unlock(&b->submit_lock);
	GW_SET(amqp_held, (int64_t)b->nheld);
}

/* broker thread: one ingest delivery. Invalid -> reject (dead letter);
 * valid -> a writer job, acked after its commit. -1 on a lost connection. */
static int on_delivery(struct bridge *b, amqp_envelope_t *env)
{
	amqp_basic_properties_t *p = &env->message.properties;
	uint64_t tag = env->delivery_tag;
	struct gw_delivery d = {
		.body = env->message.body.bytes, .body_len = env->message.body.len,
		.routing_key = env->routing_key.bytes,
		.routing_key_len = env->routing_key.len,
		.has_message_id = (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) != 0,
		.message_id = p->message_id.bytes, .message_id_len = p->message_id.len,
	};
	char err[200];
	struct gw_pub pub;
	struct gw_job *job;
	int rc;

	if (atomic_load(&b->quiesced))
		return 0;   /* not acked: the broker redelivers it after we close */
	if (tag > TAG_MASK)
		return set_down(b, "consume", "delivery tags exhausted; reconnecting");
	memset(&pub, 0, sizeof(pub));
	rc = proto_decode_delivery(&d, (size_t)b->cfg->max_publish, &pub, err, sizeof(err));
	if (rc == GW_EINTERNAL) {
		GW_ERR("%s: delivery %llu: %s; requeued", __func__, (unsigned long long)tag, err);
		return amqp_status_check(b, amqp_basic_nack(b->conn, CH_INGEST, tag, 0, 1),
					 "basic.nack");
	}
	if (rc != GW_OK) {
		GW_INC(publishes[GW_SRC_AMQP][GW_OUT_INVALID]);
		GW_INC(dead_lettered);
		GW_WARN_RL("%s: delivery %llu (routing key %.*s) dead-lettered: %s: %s", __func__,
			(unsigned long long)tag, (int)env->routing_key.len,
			(char *)env->routing_key.bytes, proto_err_name(rc), err);
		return amqp_status_check(b, amqp_basic_reject(b->conn, CH_INGEST, tag, 0),
					 "basic.reject");
	}
	if (env->redelivered && !pub.id)
		GW_INC(amqp_redelivered_no_id);
	job = writer_job_new(GW_SRC_AMQP, ((uint64_t)b->gen << TAG_BITS) | tag);
	/* the report slot first: a job whose report could be dropped must
	 * not reach the writer */
	if (!job || ackq_reserve(b->aq, job->cookie,
				 ackq_digest(env->routing_key.bytes, env->routing_key.len,
					     env->message.body.bytes, env->message.body.len))) {
		GW_ERR("%s: delivery %llu: out of memory; requeued", __func__, (unsigned long long)tag);
		writer_job_free(job);
		proto_pub_free(&pub);
		return amqp_status_check(b, amqp_basic_nack(b->conn, CH_INGEST, tag, 0, 1),
					 "basic.nack");
	}
	job->pub = pub;
	job->bytes = env->message.body.len;
	job->committed = bridge_committed;
	job->committed_arg = b;
	/* in order behind any held ones, then hand over what the writer takes */
	*b->held_tail = job;
	b->held_tail = &job->next;
	b->nheld++;
	submit_held(b);
	return 0;
}

static char *bytes_dup(amqp_bytes_t s)
{
	char *d = malloc(s.len + 1);

	if (d) {
		memcpy(d, s.bytes, s.len);
		d[s.len] = '\0';
	}
	return d;
}

/* broker thread: one RPC request; the answer comes back through
 * rpc_post_reply. Requests without reply_to are logged and dropped. */
static void on_rpc(struct bridge *b, amqp_envelope_t *env)
{
	amqp_basic_properties_t *p = &env->message.properties;
	struct rpc_out *o;
	struct rpc_req *q = NULL;
	const char *detail = NULL;
	char key[GW_KEY_MAX + 1];
	int method;

	if (!(p->_flags & AMQP_BASIC_REPLY_TO_FLAG) || !p->reply_to.len) {
		GW_WARN_RL("%s: RPC request without reply_to dropped", __func__);
		amqp_basic_reject(b->conn, CH_RPC, env->delivery_tag, 0);
		return;
	}
	o = calloc(1, sizeof(*o));
	if (o)
		o->cookie = ((uint64_t)b->gen << TAG_BITS) | (env->delivery_tag & TAG_MASK);
	if (!o || !(o->reply_to = bytes_dup(p->reply_to)) ||
	    ((p->_flags & AMQP_BASIC_CORRELATION_ID_FLAG) &&
	     !(o->corr_id = bytes_dup(p->correlation_id))))
		goto oom;

	if (proto_decode_rpc(env->message.body.bytes, env->message.body.len, RPC_MAX,
			     &method, key, &detail)) {
		if (!(o->body = error_json("bad_request", detail)))
			goto oom;
		GW_DBG("%s: bad RPC request: %s", __func__, detail);
		rpc_post_reply(b, o);
		return;
	}
	q = calloc(1, sizeof(*q));
	if (!q)
		goto oom;
	q->b = b;
	q->out = o;
	q->pub.method = method;
	snprintf(q->pub.key, sizeof(q->pub.key), "%s", key);
	q->pub.reply = rpc_reply;
	q->pub.discard = rpc_discard;
	b->bc.rpc(b->bc.rpc_arg, &q->pub);
	return;
oom:
	GW_ERR("%s: out of memory; RPC request dropped", __func__);
	amqp_basic_reject(b->conn, CH_RPC, env->delivery_tag, 0);
	free(q);
	rpc_out_free(o);
}

/* broker thread: a frame other than a delivery (put back by
 * amqp_consume_message). 0 to go on, -1 when the connection must go. */
static int on_other_frame(struct bridge *b)
{
	amqp_frame_t f;
	char why[200];
	int st = amqp_simple_wait_frame(b->conn, &f);

	if (amqp_status_check(b, st, "read frame"))
		return -1;
	if (f.frame_type != AMQP_FRAME_METHOD)
		return 0;
	switch (f.payload.method.id) {
	case AMQP_BASIC_CANCEL_OK_METHOD:
	case AMQP_BASIC_ACK_METHOD:
		return 0;
	case AMQP_BASIC_CANCEL_METHOD:
		return set_down(b, "consume", "the broker cancelled the consumer (queue deleted?)");
	case AMQP_CHANNEL_CLOSE_METHOD: {
		amqp_channel_close_t *m = f.payload.method.decoded;
		snprintf(why, sizeof(why), "channel %u closed by the broker: %u %.*s",
			 f.channel, m->reply_code, (int)m->reply_text.len, (char *)m->reply_text.bytes);
		return set_down(b, "consume", why);
	}
	case AMQP_CONNECTION_CLOSE_METHOD: {
		amqp_connection_close_t *m = f.payload.method.decoded;
		amqp_connection_close_ok_t close_ok;
		snprintf(why, sizeof(why), "connection closed by the broker: %u %.*s",
			 m->reply_code, (int)m->reply_text.len, (char *)m->reply_text.bytes);
		amqp_send_method(b->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &close_ok);
		return set_down(b, "consume", why);
	}
	default:
		GW_DBG("%s: ignored method 0x%08x on channel %u", __func__,
		       f.payload.method.id, f.channel);
		return 0;
	}
}

/* broker thread: reads at most one delivery or frame. A 1 ms timeout rather
 * than zero: with a zero timeout rabbitmq-c never compares its deadline with
 * the heartbeat deadline, so it would not notice a silent broker. */
static int consume_one(struct bridge *b)
{
	struct timeval tv = { 0, 1000 };
	amqp_envelope_t env;
	amqp_rpc_reply_t r;
	int rc;

	amqp_maybe_release_buffers(b->conn);
	r = amqp_consume_message(b->conn, &env, &tv, 0);
	if (r.reply_type == AMQP_RESPONSE_NORMAL) {
		rc = 0;
		if (env.channel == CH_RPC)
			on_rpc(b, &env);
		else
			rc = on_delivery(b, &env);
		amqp_destroy_envelope(&env);
		return rc;
	}
	if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
		if (r.library_error == AMQP_STATUS_TIMEOUT)
			return 0;
		if (r.library_error == AMQP_STATUS_UNEXPECTED_STATE)
			return on_other_frame(b);
	}
	return amqp_check(b, r, "consume");
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void drain_eventfd(struct bridge *b)
{
	uint64_t v;
	ssize_t r = read(b->efd, &v, sizeof(v));

	(void)r;
}

/* broker thread: serves one connection until it fails (-1) or bridge_stop
 * (0, after the last acks went out) */
static int serve_connection(struct bridge *b)
{
	uint64_t tick = b->cfg->amqp_heartbeat ? (uint64_t)b->cfg->amqp_heartbeat * 500 : 1000;
	uint64_t next_tick = now_ms() + tick;

	for (;;) {
		struct pollfd pf[2];
		uint64_t now;

		if (atomic_load(&b->stop))
			return flush_acks(b) || flush_replies(b) ? -1 : 0;
		if (atomic_load(&b->quiesced) && !b->cancelled) {
			/* stop the flow; what is already on the way stays unacked
			 * and is redelivered after we close */
			b->cancelled = 1;
			amqp_basic_cancel(b->conn, CH_INGEST, b->ctag);
			if (amqp_check(b, amqp_get_rpc_reply(b->conn), "basic.cancel"))
				return -1;
		}
		if (flush_acks(b) || flush_replies(b))
			return -1;
		if (b->held)
			submit_held(b);
		now = now_ms();
		/* while deliveries are held, read nothing more but at the tick
		 * (heartbeats): the broker's prefetch window then fills and stops */
		if (!b->held && (amqp_frames_enqueued(b->conn) || amqp_data_in_buffer(b->conn))) {
			if (consume_one(b))
				return -1;
			continue;
		}
		pf[0].fd = amqp_get_sockfd(b->conn);
		pf[0].events = b->held ? 0 : POLLIN;
		pf[1].fd = b->efd;
		pf[1].events = POLLIN;
		pf[0].revents = pf[1].revents = 0;
		if (now < next_tick) {
			uint64_t wait = next_tick - now;

			if (b->held && wait > HELD_RETRY_MS)
				wait = HELD_RETRY_MS;   /* the writer wakes no one when it has room */
			if (poll(pf, 2, (int)wait) < 0 && errno != EINTR)
				return set_down(b, "poll", strerror(errno));
		}
		if (pf[1].revents)
			drain_eventfd(b);
		now = now_ms();
		if (pf[0].revents || now >= next_tick) {
			/* data, or time to let rabbitmq-c send and check heartbeats */
			next_tick = now + tick;
			if (consume_one(b))
				return -1;
		}
	}
}

/* broker thread: waits ms or until woken for stop; drops acks meanwhile */
static void backoff_wait(struct bridge *b, unsigned ms)
{
	uint64_t end = now_ms() + ms;

	for (;;) {
		struct pollfd pf = { .fd = b->efd, .events = POLLIN };
		uint64_t now = now_ms();

		flush_acks(b);   /* conn is NULL: reports of the old connection are dropped */
		if (atomic_load(&b->stop) || now >= end)
			return;
		if (poll(&pf, 1, (int)(end - now)) > 0)
			drain_eventfd(b);
	}
}

static void *bridge_main(void *arg)
{
	struct bridge *b = arg;
	unsigned backoff = BACKOFF_MIN_MS;
	size_t failed = 0;       /* attempts since the last connection */
	int connected_once = 0;

	while (!atomic_load(&b->stop)) {
		b->ci = b->targets[b->cur].ci;
		b->vhost = b->targets[b->cur].vhost;
		if (bridge_connect(b) == 0) {
			failed = 0;
			if (connected_once)
				GW_INC(broker_reconnects);
			GW_INFO("%s: consuming %s from broker %s:%d (exchange %s, %s)", __func__,
				b->queue, b->ci.host, b->ci.port, b->cfg->amqp_exchange,
				b->cfg->amqp_exchange_type);
			connected_once = 1;
			backoff = BACKOFF_MIN_MS;
			set_up(b);
			if (serve_connection(b) == 0) {
				struct timeval tv = { 2, 0 };

				/* graceful: unacked deliveries go back to the queue */
				amqp_set_rpc_timeout(b->conn, &tv);
				amqp_connection_close(b->conn, AMQP_REPLY_SUCCESS);
				teardown(b);
				break;
			}
		}
		teardown(b);
		if (atomic_load(&b->stop))
			break;
		/* the next node next time; back off only after a whole round */
		b->cur = (b->cur + 1) % b->ntargets;
		if (++failed % b->ntargets) {
			GW_INFO("%s: trying the next broker, %s:%d", __func__,
				b->targets[b->cur].ci.host, b->targets[b->cur].ci.port);
			continue;
		}
		/* full back-off in [backoff/2, backoff] */
		unsigned wait = backoff / 2 + (unsigned)rand_r(&b->seed) % (backoff / 2 + 1);
		GW_INFO("%s: reconnecting to the broker in %u ms", __func__, wait);
		backoff_wait(b, wait);
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
	}
	pthread_mutex_lock(&b->lock);
	b->connected = 0;
	snprintf(b->reason, sizeof(b->reason), "broker bridge stopped");
	pthread_mutex_unlock(&b->lock);
	GW_SET(broker_up, 0);
	return NULL;
}

/* ---- life cycle (main thread) ---- */

static void bridge_free(struct bridge *b)
{
	struct rpc_out *o, *next;

	for (o = b->out_head; o; o = next) {
		next = o->next;
		rpc_out_free(o);
	}
	if (b->efd >= 0)
		close(b->efd);
	ackq_free(b->aq);
	free(b->queue);
	free(b->targets);
	free(b->urls);
	pthread_mutex_destroy(&b->lock);
	pthread_mutex_destroy(&b->submit_lock);
	free(b);
}

/* main thread: --amqp is one URL or a comma-separated list of them (the
 * nodes of a cluster, tried in turn); -1 (logged) when one cannot be used */
static int parse_targets(struct bridge *b, const char *list)
{
	char *save = NULL, *u;
	size_t n = 1;

	for (const char *p = list; *p; p++)
		n += *p == ',';
	b->urls = strdup(list);
	b->targets = calloc(n, sizeof(*b->targets));
	if (!b->urls || !b->targets)
		return -1;
	for (u = strtok_r(b->urls, ",", &save); u; u = strtok_r(NULL, ",", &save)) {
		struct amqp_target *t = &b->targets[b->ntargets];

		u += strspn(u, " \t");
		u[strcspn(u, " \t")] = '\0';
		if (!*u)
			continue;
		amqp_default_connection_info(&t->ci);
		if (amqp_parse_url(u, &t->ci) != AMQP_STATUS_OK) {
			/* the text is not logged: it holds a password */
			GW_ERR("%s: --amqp: cannot parse URL number %zu; expected "
			       "amqp://user:pass@host:port/vhost[,amqp://...]",
			       __func__, b->ntargets + 1);
			return -1;
		}
		if (t->ci.ssl) {
			GW_ERR("%s: --amqp: amqps:// is not supported; use amqp:// (or a local "
			       "TLS proxy)", __func__);
			return -1;
		}
		/* "amqp://host/" (empty vhost) means the default vhost, as without
		 * a path */
		t->vhost = t->ci.vhost && *t->ci.vhost ? t->ci.vhost : "/";
		b->ntargets++;
	}
	if (!b->ntargets) {
		GW_ERR("%s: --amqp: no URL given", __func__);
		return -1;
	}
	return 0;
}

int bridge_start(const struct bridge_cfg *bc, struct bridge **out)
{
	const struct gw_config *c = bc->cfg;
	struct bridge *b = calloc(1, sizeof(*b));
	int n;

	*out = NULL;
	if (!b)
		return -1;
	b->bc = *bc;
	b->cfg = c;
	b->efd = -1;
	b->out_tail = &b->out_head;
	b->held_tail = &b->held;
	b->ctag = amqp_empty_bytes;
	b->seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	pthread_mutex_init(&b->lock, NULL);
	pthread_mutex_init(&b->submit_lock, NULL);

	b->aq = ackq_new((unsigned)c->amqp_max_attempts, NULL);
	if (!b->aq || parse_targets(b, c->amqp))
		goto init_fail;
	b->ci = b->targets[0].ci;
	if (c->instance && *c->instance) {
		n = snprintf(NULL, 0, "%s.%s", c->amqp_queue, c->instance);
		b->queue = malloc((size_t)n + 1);
		if (b->queue)
			snprintf(b->queue, (size_t)n + 1, "%s.%s", c->amqp_queue, c->instance);
	} else {
		b->queue = strdup(c->amqp_queue);
	}
	if (!b->queue)
		goto init_fail;
	snprintf(b->reason, sizeof(b->reason), "broker %s:%d: connecting", b->ci.host, b->ci.port);
	b->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (b->efd < 0) {
		GW_ERR("%s: eventfd: %s", __func__, strerror(errno));
		goto init_fail;
	}
	GW_SET(broker_up, 0);
	if (pthread_create(&b->thread, NULL, bridge_main, b)) {
		GW_ERR("%s: cannot start the broker thread", __func__);
		goto init_fail;
	}
	*out = b;
	return 0;

init_fail:
	bridge_free(b);
	return -1;
}

void bridge_quiesce(struct bridge *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&b->submit_lock);
	atomic_store(&b->quiesced, 1);
	pthread_mutex_unlock(&b->submit_lock);
	bridge_wake(b);
}

void bridge_stop(struct bridge *b)
{
	if (!b)
		return;
	bridge_quiesce(b);
	atomic_store(&b->stop, 1);
	bridge_wake(b);
	pthread_join(b->thread, NULL);
	/* the writer has stopped (main calls writer_stop first): no more
	 * committed reports can come */
	bridge_free(b);
}
