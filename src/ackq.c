/*
 * Acknowledgement bookkeeping (see ackq.h).
 *
 * Three parts. The reservations: a ring (FIFO) of (cookie, digest), broker
 * thread only. The reports: an array the writer appends to under q->lock,
 * swapped at each flush with a spare one; both arrays always have room for
 * every reservation (ackq_reserve grows them first), so the writer's append
 * cannot fail. The attempt counts: ACKQ_SETS x ACKQ_WAYS slots, the set
 * chosen by the digest, the least recently used way replaced.
 */
#include "ackq.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "writer.h"   /* enum gw_ack */

#define ACKQ_SETS 256
#define ACKQ_WAYS 4

struct pend {
	uint64_t cookie;
	uint64_t digest;
};

struct rep {
	uint64_t cookie;
	int ack;                 /* enum gw_ack */
};

struct slot {
	uint64_t digest;         /* 0: free */
	unsigned count;          /* failures so far */
	uint64_t used;           /* q->clock when last touched */
};

struct ackq {
	void *(*grow)(void *, size_t);
	unsigned max_attempts;

	pthread_mutex_t lock;    /* guards reps, nreps, capreps, overflow */
	struct rep *reps;        /* malloc'd */
	size_t nreps, capreps;
	int overflow;            /* a report found no room (cannot happen) */

	/* broker thread only */
	struct rep *spare;       /* malloc'd; swapped with reps at flush */
	size_t capspare;
	struct pend *fifo;       /* malloc'd ring of reservations */
	size_t fhead, flen, fcap;
	struct slot slots[ACKQ_SETS][ACKQ_WAYS];
	uint64_t clock;
};

struct ackq *ackq_new(unsigned max_attempts, void *(*realloc_fn)(void *, size_t))
{
	struct ackq *q = calloc(1, sizeof(*q));

	if (!q)
		return NULL;
	q->grow = realloc_fn ? realloc_fn : realloc;
	q->max_attempts = max_attempts ? max_attempts : 1;
	pthread_mutex_init(&q->lock, NULL);
	return q;
}

void ackq_free(struct ackq *q)
{
	if (!q)
		return;
	pthread_mutex_destroy(&q->lock);
	free(q->reps);
	free(q->spare);
	free(q->fifo);
	free(q);
}

/* capacity for need entries: doubles, at least 1024 */
static size_t cap_for(size_t cap, size_t need)
{
	size_t c = cap ? cap : 1024;

	while (c < need)
		c *= 2;
	return c;
}

int ackq_reserve(struct ackq *q, uint64_t cookie, uint64_t digest)
{
	size_t need = q->flen + 1;

	if (need > q->fcap) {
		size_t cap = cap_for(q->fcap, need);
		struct pend *f = q->grow(NULL, cap * sizeof(*f));

		if (!f)
			return -1;
		for (size_t i = 0; i < q->flen; i++)     /* unwrap the ring */
			f[i] = q->fifo[(q->fhead + i) % q->fcap];
		free(q->fifo);
		q->fifo = f;
		q->fhead = 0;
		q->fcap = cap;
	}
	if (need > q->capspare) {
		size_t cap = cap_for(q->capspare, need);
		struct rep *r = q->grow(q->spare, cap * sizeof(*r));

		if (!r)
			return -1;
		q->spare = r;
		q->capspare = cap;
	}
	pthread_mutex_lock(&q->lock);
	if (need > q->capreps) {
		size_t cap = cap_for(q->capreps, need);
		struct rep *r = q->grow(q->reps, cap * sizeof(*r));

		if (!r) {
			pthread_mutex_unlock(&q->lock);
			return -1;
		}
		q->reps = r;
		q->capreps = cap;
	}
	pthread_mutex_unlock(&q->lock);
	q->fifo[(q->fhead + q->flen) % q->fcap] = (struct pend){ cookie, digest };
	q->flen++;
	return 0;
}

void ackq_unreserve(struct ackq *q, size_t n)
{
	q->flen -= n < q->flen ? n : q->flen;
}

int ackq_report(struct ackq *q, uint64_t cookie, int ack)
{
	int first;

	pthread_mutex_lock(&q->lock);
	first = q->nreps == 0;
	if (q->nreps < q->capreps) {
		q->reps[q->nreps].cookie = cookie;
		q->reps[q->nreps].ack = ack;
		q->nreps++;
	} else {
		q->overflow = 1;   /* a report without a reservation: a bug */
	}
	pthread_mutex_unlock(&q->lock);
	return first;
}

size_t ackq_pending(const struct ackq *q)
{
	return q->flen;
}

/* ---- attempts ---- */

static struct slot *slot_find(struct ackq *q, uint64_t digest)
{
	struct slot *set = q->slots[digest % ACKQ_SETS];

	for (int w = 0; w < ACKQ_WAYS; w++)
		if (set[w].digest == digest)
			return &set[w];
	return NULL;
}

/* one more failure of digest; returns the count */
static unsigned slot_bump(struct ackq *q, uint64_t digest)
{
	struct slot *s = slot_find(q, digest);

	if (!s) {
		struct slot *set = q->slots[digest % ACKQ_SETS];

		s = &set[0];
		for (int w = 1; w < ACKQ_WAYS; w++)
			if (set[w].used < s->used)
				s = &set[w];
		s->digest = digest;
		s->count = 0;
	}
	s->used = ++q->clock;
	return ++s->count;
}

static void slot_forget(struct ackq *q, uint64_t digest)
{
	struct slot *s = slot_find(q, digest);

	if (s)
		memset(s, 0, sizeof(*s));
}

unsigned ackq_attempts(const struct ackq *q, uint64_t digest)
{
	const struct slot *s = slot_find((struct ackq *)q, digest);

	return s ? s->count : 0;
}

/* ---- flush ---- */

int ackq_flush(struct ackq *q, unsigned gen, ackq_send_fn send, void *arg,
	       struct ackq_stats *st)
{
	struct rep *a;
	size_t n, cap;
	uint64_t ok_hi = 0;
	int rc = 0, overflow, hole = 0;

	pthread_mutex_lock(&q->lock);
	a = q->reps;
	n = q->nreps;
	cap = q->capreps;
	overflow = q->overflow;
	q->overflow = 0;
	q->reps = q->spare;
	q->capreps = q->capspare;
	q->nreps = 0;
	pthread_mutex_unlock(&q->lock);
	q->spare = a;
	q->capspare = cap;
	st->lost_track |= overflow;

	for (size_t i = 0; i < n; i++) {
		uint64_t cookie = a[i].cookie, tag = cookie & ACKQ_TAG_MASK;
		int mine = (cookie >> ACKQ_TAG_BITS) == gen;
		struct pend p = { 0, 0 };
		unsigned count = 0;

		/* the reservation of this report is the oldest one. One before
		 * it lost its report (cannot happen): from that hole on nothing
		 * more is sent for this connection, which is then closed */
		while (q->flen) {
			p = q->fifo[q->fhead];
			q->fhead = (q->fhead + 1) % q->fcap;
			q->flen--;
			if (p.cookie == cookie)
				break;
			if ((p.cookie >> ACKQ_TAG_BITS) == gen)
				hole = 1;
			p.cookie = 0;
		}
		if (p.cookie != cookie && mine)
			hole = 1;
		if (hole)
			st->lost_track = 1;
		mine = mine && !hole;    /* the run of OKs before the hole stays */

		if (a[i].ack == GW_ACK_OK) {
			slot_forget(q, p.digest);
			if ((cookie >> ACKQ_TAG_BITS) != gen)
				st->lost++;
			else if (mine)
				ok_hi = tag;
			continue;
		}
		if (a[i].ack == GW_ACK_RETRY)
			count = slot_bump(q, p.digest);
		if (!mine || rc)
			continue;
		/* never let a multiple-ack run across a report that is not OK */
		if (ok_hi) {
			rc = send(arg, ACKQ_ACK, ok_hi, 0);
			ok_hi = 0;
			if (rc)
				continue;
		}
		switch (a[i].ack) {
		case GW_ACK_RETRY:
			if (count >= q->max_attempts) {
				slot_forget(q, p.digest);
				rc = send(arg, ACKQ_DEAD, tag, count);
			} else {
				rc = send(arg, ACKQ_RETRY, tag, count);
			}
			break;
		case GW_ACK_REJECT:
			rc = send(arg, ACKQ_REJECT, tag, 0);
			break;
		default:
			rc = send(arg, ACKQ_REQUEUE, tag, 0);
		}
	}
	if (!rc && ok_hi)
		rc = send(arg, ACKQ_ACK, ok_hi, 0);
	return rc;
}

uint64_t ackq_digest(const void *a, size_t alen, const void *b, size_t blen)
{
	uint64_t h = UINT64_C(14695981039346656037);
	const unsigned char *p = a;

	for (size_t i = 0; i < alen; i++)
		h = (h ^ p[i]) * UINT64_C(1099511628211);
	h = (h ^ 0xff) * UINT64_C(1099511628211);   /* keeps ("ab","c") from ("a","bc") */
	p = b;
	for (size_t i = 0; i < blen; i++)
		h = (h ^ p[i]) * UINT64_C(1099511628211);
	return h | 1;   /* never 0: 0 marks a free slot */
}
