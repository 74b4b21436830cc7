/*
 * The broker's acknowledgement bookkeeping, apart from AMQP: bridge.c feeds
 * it and sends what it says, and tests/test_ackq.c tests it alone.
 *
 * A delivery is acknowledged only after the writer reports its commit, and a
 * run of reports becomes one basic.ack with multiple=1. That is only safe if
 * no report is ever missing: a later multiple-ack would cover the missing
 * delivery, and if it was to be requeued or rejected it would be acked, and
 * lost. So the broker thread reserves each job's report slot before it hands
 * the job to the writer (ackq_reserve, which may fail: then the delivery is
 * nacked at once), and the writer's report (ackq_report) only fills a
 * reserved slot: it never allocates and is never dropped.
 *
 * Jobs reach the writer only from the broker thread and come back in the
 * order they were handed over, so reports come in reservation order. Each
 * reservation remembers the delivery's cookie and a digest of the message.
 *
 * A publish the store refused on its own (GW_ACK_RETRY) is requeued, and
 * its failures are counted by digest; the max_attempts-th failure rejects it
 * instead (dead-lettered), so a poison message cannot cycle forever. The
 * counts live in a small set-associative table in memory (least recently
 * used out): they restart with the process.
 *
 * Threads: ackq_report on the writer thread (under the queue's lock), all
 * else on the broker thread.
 */
#ifndef GW_ACKQ_H
#define GW_ACKQ_H

#include <stddef.h>
#include <stdint.h>

/* a job cookie: connection generation above a 48-bit delivery tag */
#define ACKQ_TAG_BITS 48
#define ACKQ_TAG_MASK ((UINT64_C(1) << ACKQ_TAG_BITS) - 1)
#define ACKQ_GEN_MASK 0xffffu

struct ackq;

/* what to send for a delivery tag (ackq_flush's send callback) */
enum ackq_op {
	ACKQ_ACK = 0,            /* basic.ack multiple=1 up to and including tag */
	ACKQ_REQUEUE,            /* basic.nack requeue: the store failed */
	ACKQ_RETRY,              /* basic.nack requeue: failed alone, attempt counted */
	ACKQ_REJECT,             /* basic.reject: invalid content, dead-lettered */
	ACKQ_DEAD,               /* basic.reject: failed alone max_attempts times */
};

/* broker thread: sends one op; 0, or non-zero when the connection failed */
typedef int (*ackq_send_fn)(void *arg, int op, uint64_t tag, unsigned attempts);

struct ackq_stats {
	uint64_t lost;           /* OK reports of an earlier connection: not acked,
				  * so the broker delivers those messages again */
	int lost_track;          /* a report matched no reservation (a bug): close
				  * the connection, so the broker redelivers what
				  * is unacknowledged */
};

/* max_attempts >= 1; realloc_fn NULL means realloc (tests inject failures) */
struct ackq *ackq_new(unsigned max_attempts, void *(*realloc_fn)(void *, size_t));
void ackq_free(struct ackq *q);

/* broker thread: the report slot of a job about to be handed to the writer.
 * 0, or -1 when out of memory (then nothing was reserved). */
int ackq_reserve(struct ackq *q, uint64_t cookie, uint64_t digest);
/* broker thread: takes back the last n reservations, whose jobs were never
 * handed to the writer */
void ackq_unreserve(struct ackq *q, size_t n);
/* writer thread: the job's outcome (enum gw_ack). Never allocates. Returns 1
 * when it is the first report since the last flush (wake the broker). */
int ackq_report(struct ackq *q, uint64_t cookie, int ack);
/*
 * broker thread: sends what the queued reports say, in order, for the
 * connection of generation gen: runs of OK as one ACKQ_ACK of the highest
 * tag, never across a report that is not OK. Reports of other generations
 * only update the attempt counts and st. Returns 0, or the first non-zero
 * of send (the remaining reports of this flush are then not sent: the
 * connection is gone). st (required) counts what the caller must know.
 */
int ackq_flush(struct ackq *q, unsigned gen, ackq_send_fn send, void *arg,
	       struct ackq_stats *st);
/* broker thread: reservations whose report has not been flushed yet */
size_t ackq_pending(const struct ackq *q);
/* failures counted for digest so far (tests, logs) */
unsigned ackq_attempts(const struct ackq *q, uint64_t digest);

/* any thread: the digest of a message (64-bit FNV-1a over both parts) */
uint64_t ackq_digest(const void *a, size_t alen, const void *b, size_t blen);

#endif
