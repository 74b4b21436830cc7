/*
 * Send queue: FIFO order, latest-state slots replaced in place (O(1), same
 * position), slots going stale when their entry leaves, growth keeping
 * slots valid, the bounded count and the byte count, and every reference
 * released (the sanitizer build checks the leaks).
 */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "sendq.h"

static struct gw_buf *buf(const char *s)
{
	return gw_buf_new(s, strlen(s));
}

/* pops one entry and compares its payload */
static int pop_is(struct sendq *q, const char *want)
{
	struct gw_buf *b = sendq_pop(q);
	int ok = b && !strcmp((const char *)gw_buf_data(b), want);

	if (!ok)
		fprintf(stderr, "popped \"%s\", wanted \"%s\"\n",
			b ? (const char *)gw_buf_data(b) : "(nothing)", want);
	gw_buf_unref(b);
	return ok;
}

static void put(struct sendq *q, const char *s)
{
	struct gw_buf *b = buf(s);

	CHECK_EQ_INT(sendq_push(q, b), 0);
	gw_buf_unref(b);
}

static int latest(struct sendq *q, const char *s, uint64_t *slot)
{
	struct gw_buf *b = buf(s);
	int r = sendq_put_latest(q, b, slot, 1);

	gw_buf_unref(b);
	return r;
}

static void test_fifo(void)
{
	struct sendq q;

	sendq_init(&q);
	CHECK(sendq_pop(&q) == NULL);
	put(&q, "a");
	put(&q, "bb");
	put(&q, "ccc");
	CHECK_EQ_INT(q.len, 3);
	CHECK_EQ_INT(q.bytes, 6);
	CHECK_EQ_INT(sendq_bounded(&q), 3);
	CHECK(pop_is(&q, "a"));
	CHECK(pop_is(&q, "bb"));
	CHECK_EQ_INT(q.bytes, 3);
	CHECK(pop_is(&q, "ccc"));
	CHECK(sendq_pop(&q) == NULL);
	CHECK_EQ_INT(q.popped, 3);
	sendq_free(&q);
}

static void test_latest_replaces_in_place(void)
{
	struct sendq q;
	uint64_t a = 0, b = 0;

	sendq_init(&q);
	put(&q, "reply");
	CHECK_EQ_INT(latest(&q, "A1", &a), 0);     /* appended */
	CHECK(a != 0 && sendq_slot_live(&q, a));
	put(&q, "all1");
	CHECK_EQ_INT(latest(&q, "B1", &b), 0);
	CHECK_EQ_INT(latest(&q, "A2", &a), 1);     /* replaced, same place */
	CHECK_EQ_INT(latest(&q, "A333", &a), 1);
	CHECK_EQ_INT(latest(&q, "B2", &b), 1);
	CHECK_EQ_INT(q.len, 4);
	CHECK_EQ_INT(q.nlatest, 2);
	CHECK_EQ_INT(sendq_bounded(&q), 2);
	CHECK_EQ_INT(q.bytes, 5 + 4 + 4 + 2);
	CHECK_EQ_INT(q.lbytes, 4 + 2);
	CHECK_EQ_INT(sendq_bounded_bytes(&q), 5 + 4);
	CHECK(pop_is(&q, "reply"));
	CHECK(pop_is(&q, "A333"));                 /* A's latest, where A1 was */
	CHECK(!sendq_slot_live(&q, a));            /* gone out: stale */
	CHECK_EQ_INT(q.nlatest, 1);
	/* A again: appended at the back, behind B's pending frame */
	CHECK_EQ_INT(latest(&q, "A4", &a), 0);
	CHECK(pop_is(&q, "all1"));
	CHECK(pop_is(&q, "B2"));
	CHECK(pop_is(&q, "A4"));
	CHECK_EQ_INT(q.len, 0);
	CHECK_EQ_INT(q.nlatest, 0);
	CHECK_EQ_INT(q.bytes, 0);
	CHECK_EQ_INT(q.lbytes, 0);
	sendq_free(&q);
}

/* a reader that never reads: thousands of events for three owners keep
 * three entries */
static void test_bounded_by_owners(void)
{
	struct sendq q;
	uint64_t slot[3] = { 0, 0, 0 };
	char s[32];

	sendq_init(&q);
	for (int i = 0; i < 10000; i++) {
		snprintf(s, sizeof(s), "%d:%d", i % 3, i);
		CHECK(latest(&q, s, &slot[i % 3]) >= 0);
	}
	CHECK_EQ_INT(q.len, 3);
	CHECK(q.cap <= 8);
	CHECK(pop_is(&q, "0:9999"));
	CHECK(pop_is(&q, "1:9997"));
	CHECK(pop_is(&q, "2:9998"));
	sendq_free(&q);
}

/* the ring grows and wraps while slots stay valid */
static void test_growth_keeps_slots(void)
{
	struct sendq q;
	uint64_t a = 0;
	char s[32];

	sendq_init(&q);
	for (int i = 0; i < 5; i++) {        /* move head off 0 so the ring wraps */
		snprintf(s, sizeof(s), "old%d", i);
		put(&q, s);
	}
	for (int i = 0; i < 5; i++)
		gw_buf_unref(sendq_pop(&q));
	CHECK_EQ_INT(latest(&q, "a0", &a), 0);
	for (int i = 0; i < 100; i++) {
		snprintf(s, sizeof(s), "x%d", i);
		put(&q, s);
	}
	CHECK(q.cap >= 101);
	CHECK_EQ_INT(latest(&q, "a1", &a), 1);
	CHECK(pop_is(&q, "a1"));
	for (int i = 0; i < 100; i++) {
		snprintf(s, sizeof(s), "x%d", i);
		CHECK(pop_is(&q, s));
	}
	sendq_free(&q);
}

/* clearing (a lagging close, a shutdown) makes every slot stale, and a
 * later put appends instead of writing into a dropped entry */
static void test_clear_stales_slots(void)
{
	struct sendq q;
	uint64_t a = 0;

	sendq_init(&q);
	CHECK_EQ_INT(latest(&q, "a1", &a), 0);
	put(&q, "x");
	sendq_clear(&q);
	CHECK(!sendq_slot_live(&q, a));
	CHECK_EQ_INT(q.len, 0);
	CHECK_EQ_INT(q.nlatest, 0);
	CHECK_EQ_INT(q.bytes, 0);
	CHECK_EQ_INT(latest(&q, "a2", &a), 0);
	CHECK_EQ_INT(q.len, 1);
	CHECK(pop_is(&q, "a2"));
	CHECK(!sendq_slot_live(&q, 0));
	sendq_free(&q);
	/* usable again after free */
	put(&q, "again");
	CHECK(pop_is(&q, "again"));
	sendq_free(&q);
}

/* one buffer shared by several queues (fan-out): each holds a reference */
static void test_shared_buffer(void)
{
	struct sendq q1, q2;
	uint64_t s1 = 0;
	struct gw_buf *b = buf("event");

	sendq_init(&q1);
	sendq_init(&q2);
	CHECK_EQ_INT(sendq_push(&q1, b), 0);
	CHECK_EQ_INT(sendq_put_latest(&q2, b, &s1, 1), 0);
	CHECK_EQ_INT(b->refs, 3);
	sendq_free(&q1);
	CHECK_EQ_INT(b->refs, 2);
	sendq_free(&q2);
	CHECK_EQ_INT(b->refs, 1);
	gw_buf_unref(b);
}

/* a reader that is not behind gets every frame: with replace off a newer
 * frame is appended and the slot moves to it; the older one is written as
 * it is, and once replacing is on again only the newest is replaced */
static void test_append_when_not_behind(void)
{
	struct sendq q;
	uint64_t slot = 0;
	struct gw_buf *b;

	sendq_init(&q);
	b = buf("s1");
	CHECK_EQ_INT(sendq_put_latest(&q, b, &slot, 0), 0);
	gw_buf_unref(b);
	b = buf("s2");
	CHECK_EQ_INT(sendq_put_latest(&q, b, &slot, 0), 0);
	gw_buf_unref(b);
	CHECK_EQ_INT(q.len, 2);
	CHECK_EQ_INT(q.nlatest, 2);
	CHECK_EQ_INT(sendq_bounded(&q), 0);
	CHECK_EQ_INT(latest(&q, "s3", &slot), 1);   /* replaces s2, not s1 */
	CHECK_EQ_INT(q.len, 2);
	CHECK(pop_is(&q, "s1"));
	CHECK(pop_is(&q, "s3"));
	CHECK_EQ_INT(q.bytes, 0);
	CHECK_EQ_INT(q.lbytes, 0);
	CHECK_EQ_INT(q.nlatest, 0);
	sendq_free(&q);
}

int main(void)
{
	test_fifo();
	test_latest_replaces_in_place();
	test_bounded_by_owners();
	test_growth_keeps_slots();
	test_clear_stales_slots();
	test_shared_buffer();
	test_append_when_not_behind();
	return check_report();
}
