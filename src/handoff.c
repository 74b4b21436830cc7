/*
 * The locked task queue behind handoff.h: a singly linked FIFO whose lock is
 * held only to append a node or to take the whole list.
 */
#include "handoff.h"

#include <pthread.h>
#include <stdlib.h>

struct task {
	struct task *next;
	handoff_fn fn;
	void *arg;
};

struct handoff {
	pthread_mutex_t lock;   /* guards head and tail only */
	struct task *head, **tail;
};

struct handoff *handoff_new(void)
{
	struct handoff *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	pthread_mutex_init(&h->lock, NULL);
	h->tail = &h->head;
	return h;
}

int handoff_post(struct handoff *h, handoff_fn fn, void *arg)
{
	struct task *t = malloc(sizeof(*t));

	if (!t)
		return -1;
	t->next = NULL;
	t->fn = fn;
	t->arg = arg;
	pthread_mutex_lock(&h->lock);
	*h->tail = t;
	h->tail = &t->next;
	pthread_mutex_unlock(&h->lock);
	return 0;
}

static struct task *take_all(struct handoff *h)
{
	struct task *list;

	pthread_mutex_lock(&h->lock);
	list = h->head;
	h->head = NULL;
	h->tail = &h->head;
	pthread_mutex_unlock(&h->lock);
	return list;
}

void handoff_run(struct handoff *h, void *ctx)
{
	struct task *t = take_all(h);

	while (t) {
		struct task *next = t->next;
		t->fn(ctx, t->arg);
		free(t);
		t = next;
	}
}

void handoff_free(struct handoff *h)
{
	if (!h)
		return;
	handoff_run(h, NULL);
	pthread_mutex_destroy(&h->lock);
	free(h);
}
