/*
 * The send queue of one connection (see sendq.h): a ring that doubles when
 * full, and replaceable entries addressed by absolute position. Entry k
 * (counting every entry ever queued, from 0) is at ring index
 * (head + k - popped) % cap while popped <= k < popped + len.
 */
#include "sendq.h"

#include <stdlib.h>
#include <string.h>

void sendq_init(struct sendq *q)
{
	memset(q, 0, sizeof(*q));
}

void sendq_free(struct sendq *q)
{
	sendq_clear(q);
	free(q->ent);
	q->ent = NULL;
	q->cap = q->head = 0;
}

static int grow(struct sendq *q)
{
	unsigned ncap = q->cap ? q->cap * 2 : 8;
	struct sendq_ent *ne;

	if (ncap < q->cap)
		return -1;
	ne = malloc(ncap * sizeof(*ne));
	if (!ne)
		return -1;
	for (unsigned i = 0; i < q->len; i++)
		ne[i] = q->ent[(q->head + i) % q->cap];
	free(q->ent);
	q->ent = ne;
	q->cap = ncap;
	q->head = 0;
	return 0;
}

static int append(struct sendq *q, struct gw_buf *b, int latest)
{
	struct sendq_ent *e;

	if (q->len == q->cap && grow(q))
		return -1;
	e = &q->ent[(q->head + q->len) % q->cap];
	e->b = gw_buf_ref(b);
	e->latest = latest;
	q->len++;
	q->nlatest += latest != 0;
	q->bytes += b->len;
	if (latest)
		q->lbytes += b->len;
	return 0;
}

int sendq_push(struct sendq *q, struct gw_buf *b)
{
	return append(q, b, 0);
}

int sendq_slot_live(const struct sendq *q, uint64_t slot)
{
	return slot && slot - 1 >= q->popped && slot - 1 < q->popped + q->len;
}

int sendq_put_latest(struct sendq *q, struct gw_buf *b, uint64_t *slot, int replace)
{
	if (replace && sendq_slot_live(q, *slot)) {
		struct sendq_ent *e = &q->ent[(q->head + (unsigned)(*slot - 1 - q->popped)) % q->cap];

		q->bytes = q->bytes - e->b->len + b->len;
		q->lbytes = q->lbytes - e->b->len + b->len;
		gw_buf_unref(e->b);
		e->b = gw_buf_ref(b);
		return 1;
	}
	if (append(q, b, 1))
		return -1;
	*slot = q->popped + q->len;   /* the position of the new entry, plus one */
	return 0;
}

struct gw_buf *sendq_pop(struct sendq *q)
{
	struct sendq_ent *e;

	if (!q->len)
		return NULL;
	e = &q->ent[q->head];
	q->head = (q->head + 1) % q->cap;
	q->len--;
	q->popped++;
	q->nlatest -= e->latest != 0;
	q->bytes -= e->b->len;
	if (e->latest)
		q->lbytes -= e->b->len;
	return e->b;
}

void sendq_clear(struct sendq *q)
{
	struct gw_buf *b;

	while ((b = sendq_pop(q)))
		gw_buf_unref(b);
}
