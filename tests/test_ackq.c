/*
 * The broker's acknowledgement bookkeeping (ackq.c): runs of OK reports
 * become one multiple-ack that never crosses a report that is not OK (nor a
 * missing one); reports of an earlier connection are not sent; a publish
 * that keeps failing alone is dead-lettered at the max_attempts-th failure;
 * an allocation failure refuses a reservation (the delivery is then nacked
 * by the caller) instead of dropping a report later; and reports made on
 * another thread while reservations grow the arrays are never lost.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ackq.h"
#include "check.h"
#include "writer.h"

struct sent {
	int op;
	uint64_t tag;
	unsigned attempts;
};

static struct sent out[4096];
static int nout;

static int record(void *arg, int op, uint64_t tag, unsigned attempts)
{
	(void)arg;
	if (nout < 4096)
		out[nout++] = (struct sent){ op, tag, attempts };
	return 0;
}

static uint64_t cookie(unsigned gen, uint64_t tag)
{
	return ((uint64_t)gen << ACKQ_TAG_BITS) | tag;
}

static uint64_t digest_of(const char *body)
{
	return ackq_digest("submission.k.status", 19, body, strlen(body));
}

#define CHECK_SENT(i, o, t) do { CHECK_EQ_INT(out[i].op, o); CHECK_EQ_INT(out[i].tag, t); } while (0)

static void test_runs_and_gaps(void)
{
	struct ackq *q = ackq_new(5, NULL);
	struct ackq_stats st = { 0 };
	static const int acks[] = { GW_ACK_OK, GW_ACK_OK, GW_ACK_REQUEUE, GW_ACK_OK,
				    GW_ACK_REJECT, GW_ACK_OK, GW_ACK_OK };

	for (uint64_t t = 1; t <= 7; t++)
		CHECK_EQ_INT(ackq_reserve(q, cookie(0, t), digest_of("x")), 0);
	CHECK_EQ_INT(ackq_pending(q), 7);
	CHECK_EQ_INT(ackq_report(q, cookie(0, 1), acks[0]), 1);   /* first: wake */
	for (uint64_t t = 2; t <= 7; t++)
		CHECK_EQ_INT(ackq_report(q, cookie(0, t), acks[t - 1]), 0);
	nout = 0;
	CHECK_EQ_INT(ackq_flush(q, 0, record, NULL, &st), 0);
	CHECK_EQ_INT(nout, 5);
	CHECK_SENT(0, ACKQ_ACK, 2);       /* 1-2, not 3 */
	CHECK_SENT(1, ACKQ_REQUEUE, 3);
	CHECK_SENT(2, ACKQ_ACK, 4);
	CHECK_SENT(3, ACKQ_REJECT, 5);
	CHECK_SENT(4, ACKQ_ACK, 7);
	CHECK_EQ_INT(ackq_pending(q), 0);
	CHECK(!st.lost_track);

	/* a missing report (which the reservations make impossible): the run
	 * before it is acked, nothing after it, and the caller must reconnect */
	for (uint64_t t = 8; t <= 10; t++)
		ackq_reserve(q, cookie(0, t), digest_of("x"));
	ackq_report(q, cookie(0, 8), GW_ACK_OK);
	ackq_report(q, cookie(0, 10), GW_ACK_OK);     /* 9 never reported */
	nout = 0;
	CHECK_EQ_INT(ackq_flush(q, 0, record, NULL, &st), 0);
	CHECK_EQ_INT(nout, 1);
	CHECK_SENT(0, ACKQ_ACK, 8);
	CHECK(st.lost_track);
	ackq_free(q);
}

static void test_generations(void)
{
	struct ackq *q = ackq_new(5, NULL);
	struct ackq_stats st = { 0 };

	ackq_reserve(q, cookie(0, 1), 11);
	ackq_reserve(q, cookie(0, 2), 13);
	/* the connection closed: generation 1 starts at tag 1 again */
	ackq_reserve(q, cookie(1, 1), 15);
	ackq_reserve(q, cookie(1, 2), 17);
	ackq_report(q, cookie(0, 1), GW_ACK_OK);
	ackq_report(q, cookie(0, 2), GW_ACK_REQUEUE);
	ackq_report(q, cookie(1, 1), GW_ACK_OK);
	ackq_report(q, cookie(1, 2), GW_ACK_REQUEUE);
	nout = 0;
	CHECK_EQ_INT(ackq_flush(q, 1, record, NULL, &st), 0);
	CHECK_EQ_INT(nout, 2);
	CHECK_SENT(0, ACKQ_ACK, 1);
	CHECK_SENT(1, ACKQ_REQUEUE, 2);
	CHECK_EQ_INT(st.lost, 1);         /* gen 0's OK: delivered again */
	CHECK(!st.lost_track);

	/* held deliveries dropped at a reconnect give their slots back */
	ackq_reserve(q, cookie(1, 3), 19);
	ackq_reserve(q, cookie(1, 4), 21);
	ackq_unreserve(q, 2);
	CHECK_EQ_INT(ackq_pending(q), 0);
	ackq_free(q);
}

/* a poison message (same routing key and body each time) comes back after
 * each requeue; the third failure dead-letters it. Another message failing
 * meanwhile keeps its own count; success forgets a count. */
static void test_attempts(void)
{
	struct ackq *q = ackq_new(3, NULL);
	struct ackq_stats st = { 0 };
	uint64_t poison = digest_of("{\"poison\":1}"), other = digest_of("{\"other\":1}");
	uint64_t tag = 0;

	CHECK(poison != other);
	for (int attempt = 1; attempt <= 3; attempt++) {
		ackq_reserve(q, cookie(0, ++tag), poison);
		ackq_reserve(q, cookie(0, ++tag), other);
		ackq_report(q, cookie(0, tag - 1), GW_ACK_RETRY);
		ackq_report(q, cookie(0, tag), attempt < 2 ? GW_ACK_RETRY : GW_ACK_OK);
		nout = 0;
		CHECK_EQ_INT(ackq_flush(q, 0, record, NULL, &st), 0);
		if (attempt < 3) {
			CHECK_SENT(0, ACKQ_RETRY, tag - 1);
			CHECK_EQ_INT(out[0].attempts, attempt);
		} else {
			CHECK_SENT(0, ACKQ_DEAD, tag - 1);
			CHECK_EQ_INT(out[0].attempts, 3);
		}
		if (attempt < 2) {
			CHECK_SENT(1, ACKQ_RETRY, tag);
		} else {
			CHECK_SENT(1, ACKQ_ACK, tag);
		}
	}
	CHECK_EQ_INT(ackq_attempts(q, poison), 0);   /* forgotten once dead */
	CHECK_EQ_INT(ackq_attempts(q, other), 0);    /* forgotten on success */
	ackq_free(q);
}

/* a realloc that fails from the nth call on */
static int allocs_left;

static void *failing_realloc(void *p, size_t n)
{
	if (allocs_left-- <= 0)
		return NULL;
	return realloc(p, n);
}

/* Out of memory refuses a reservation; the bookkeeping stays consistent:
 * every reserved delivery still gets exactly its own answer. (The old code
 * grew the array in the writer's report and dropped the report when that
 * failed, and the next multiple-ack then acknowledged that delivery.) */
static void test_allocation_failure(void)
{
	struct ackq *q;
	struct ackq_stats st = { 0 };
	uint64_t t, last_ok = 0;
	int refused = 0;

	allocs_left = 3;            /* the first arrays of 1024, then nothing */
	q = ackq_new(5, failing_realloc);
	for (t = 1; t <= 1100; t++) {
		if (ackq_reserve(q, cookie(0, t), digest_of("y"))) {
			refused++;          /* the caller nacks it with requeue */
			continue;
		}
		ackq_report(q, cookie(0, t), t == 500 ? GW_ACK_REQUEUE : GW_ACK_OK);
		last_ok = t;
		if (ackq_pending(q) == 1024) {
			nout = 0;
			CHECK_EQ_INT(ackq_flush(q, 0, record, NULL, &st), 0);
			CHECK_EQ_INT(nout, 3);
			CHECK_SENT(0, ACKQ_ACK, 499);
			CHECK_SENT(1, ACKQ_REQUEUE, 500);
			CHECK_SENT(2, ACKQ_ACK, 1024);
		}
	}
	CHECK_EQ_INT(refused, 0);   /* flushing made room: no growth needed */
	CHECK_EQ_INT(last_ok, 1100);
	/* now more in flight than the arrays hold (1025..1100 were not flushed):
	 * the reservation that needs the arrays to grow is refused */
	for (t = 1101; !ackq_reserve(q, cookie(0, t), digest_of("y")); t++)
		;
	CHECK_EQ_INT(ackq_pending(q), 1024);
	CHECK_EQ_INT(t, 1101 + 1024 - 76);
	/* what was reserved is still answered in full */
	for (uint64_t u = 1101; u < t; u++)
		ackq_report(q, cookie(0, u), GW_ACK_OK);
	nout = 0;
	CHECK_EQ_INT(ackq_flush(q, 0, record, NULL, &st), 0);
	CHECK_EQ_INT(nout, 1);
	CHECK_SENT(0, ACKQ_ACK, t - 1);
	CHECK(!st.lost_track);
	ackq_free(q);
}

/* the writer reports on its own thread while the broker thread reserves
 * (growing the arrays) and flushes: every report comes out once */
struct race {
	struct ackq *q;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t reserved;           /* tags reserved so far (under mu) */
	uint64_t n;
};

static void *reporter(void *arg)
{
	struct race *r = arg;

	for (uint64_t t = 1; t <= r->n; t++) {
		pthread_mutex_lock(&r->mu);
		while (r->reserved < t)
			pthread_cond_wait(&r->cv, &r->mu);
		pthread_mutex_unlock(&r->mu);
		ackq_report(r->q, cookie(0, t), t % 97 ? GW_ACK_OK : GW_ACK_REQUEUE);
	}
	return NULL;
}

static uint64_t acked_to;
static int requeues, misordered;

static int count(void *arg, int op, uint64_t tag, unsigned attempts)
{
	(void)arg;
	(void)attempts;
	if (op == ACKQ_ACK) {
		if (tag <= acked_to)
			misordered++;
		acked_to = tag;
	} else if (op == ACKQ_REQUEUE) {
		if (tag % 97 || tag <= acked_to)
			misordered++;
		requeues++;
	}
	return 0;
}

static void test_concurrent_reports(void)
{
	struct race r = { ackq_new(5, NULL), PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
			  0, 200000 };
	struct ackq_stats st = { 0 };
	pthread_t th;

	pthread_create(&th, NULL, reporter, &r);
	for (uint64_t t = 1; t <= r.n; t++) {
		CHECK_EQ_INT(ackq_reserve(r.q, cookie(0, t), t), 0);
		pthread_mutex_lock(&r.mu);
		r.reserved = t;
		pthread_cond_signal(&r.cv);
		pthread_mutex_unlock(&r.mu);
		if (t % 1000 == 0)
			ackq_flush(r.q, 0, count, NULL, &st);
	}
	pthread_join(th, NULL);
	ackq_flush(r.q, 0, count, NULL, &st);
	CHECK_EQ_INT(ackq_pending(r.q), 0);
	CHECK_EQ_INT(requeues, 200000 / 97);
	CHECK_EQ_INT(acked_to, 200000);
	CHECK_EQ_INT(misordered, 0);
	CHECK(!st.lost_track);
	ackq_free(r.q);
}

int main(void)
{
	test_runs_and_gaps();
	test_generations();
	test_attempts();
	test_allocation_failure();
	test_concurrent_reports();
	return check_report();
}
