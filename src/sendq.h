/*
 * A connection's send queue: a ring of references to shared payload buffers
 * (buf.h), oldest first, with latest-state slots.
 *
 * An entry put with sendq_put_latest() is a *replaceable* frame: its owner
 * (a subscription that wants the latest state, not every event) keeps the
 * slot handle, and while that frame is still queued a newer one may replace
 * it in place, in O(1), without moving anything (the owner says when: the
 * core replaces only while the reader is behind). So a reader that stops
 * reading costs one frame per such subscription, however many events come,
 * plus what was queued for it before it fell behind.
 * The replaced frame keeps its place: a submission's frames stay in seq
 * order, and across submissions frames go out in the order in which each
 * submission first had something pending.
 *
 * Slot handles are absolute positions (entries ever queued before, plus
 * one), so they survive the ring's growth and go stale by themselves once
 * their entry is popped or cleared: no back-pointer from an entry to its
 * owner is needed, and an owner may go away while its frame is queued.
 *
 * Pure: no lws, no locks. The owner (the core, service thread) bounds it.
 */
#ifndef GW_SENDQ_H
#define GW_SENDQ_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct sendq_ent {
	struct gw_buf *b;        /* a reference, owned by the queue */
	int latest;              /* 1: put by sendq_put_latest (replaceable) */
};

struct sendq {
	struct sendq_ent *ent;   /* ring; malloc'd, grows by doubling */
	unsigned head, len, cap;
	unsigned nlatest;        /* replaceable entries queued */
	uint64_t popped;         /* entries that left (popped or cleared): the
				  * absolute position of head */
	size_t bytes;            /* payload bytes queued (a shared buffer counts
				  * once per queue that holds it) */
	size_t lbytes;           /* of which in replaceable entries */
};

/* an empty queue (all zero); sendq_free releases what it holds */
void sendq_init(struct sendq *q);
/* drops every reference and frees the ring; q is empty (and usable) after */
void sendq_free(struct sendq *q);

/* appends a reference to b; 0, or -1 when out of memory */
int sendq_push(struct sendq *q, struct gw_buf *b);
/*
 * The latest state of one owner: when replace is set and *slot names an
 * entry still queued, its buffer is replaced by b (1); otherwise b is
 * appended as a replaceable entry and *slot names it from now on (0; an
 * entry it named before stays queued, to be written as it is). -1 when out
 * of memory (nothing changed). *slot starts as 0 ("nothing queued").
 */
int sendq_put_latest(struct sendq *q, struct gw_buf *b, uint64_t *slot, int replace);
/* 1 when slot names an entry still queued */
int sendq_slot_live(const struct sendq *q, uint64_t slot);

/* the oldest entry, which the caller now owns (gw_buf_unref it); NULL when
 * empty */
struct gw_buf *sendq_pop(struct sendq *q);
/* the i-th oldest entry's buffer (i < q->len), still the queue's */
static inline struct gw_buf *sendq_at(const struct sendq *q, unsigned i)
{
	return q->ent[(q->head + i) % q->cap].b;
}
/* drops every queued reference; slots handed out so far go stale */
void sendq_clear(struct sendq *q);

/* entries that count against a bound: all but the replaceable ones, which
 * are bounded by their owners (one each) */
static inline unsigned sendq_bounded(const struct sendq *q)
{
	return q->len - q->nlatest;
}

/* their payload bytes */
static inline size_t sendq_bounded_bytes(const struct sendq *q)
{
	return q->bytes - q->lbytes;
}

#endif
