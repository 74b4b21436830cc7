/*
 * The registry: a chained hash table of groups keyed by submission, each
 * group an array of subscriptions (swap-remove keeps leave O(1), the
 * subscription remembers its index), and a doubly linked list per owner.
 * The table doubles when it averages more than one group per bucket.
 */
#include "registry.h"

#include <stdlib.h>
#include <string.h>

struct reg_group {
	struct reg_group *hnext;  /* hash chain */
	uint32_t hash;
	struct reg_sub **m;       /* members; malloc'd */
	size_t n, cap;
	struct gw_buf *state;     /* latest legacy state frame: a reference, or
				   * NULL (no state, or not known) */
	uint64_t state_seq;       /* the seq state is at */
	int64_t state_at;         /* unix seconds of the state's last event (at most) */
	int state_known;          /* 1 once registry_state_set was called */
	char key[];               /* NUL-terminated */
};

struct registry {
	struct reg_group **b;     /* buckets; malloc'd */
	size_t nb;                /* power of two */
	size_t ngroups, nsubs;
};

static uint32_t hash_key(const char *s)
{
	uint32_t h = 2166136261u;   /* FNV-1a */

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

struct registry *registry_new(void)
{
	struct registry *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->nb = 64;
	r->b = calloc(r->nb, sizeof(*r->b));
	if (!r->b) {
		free(r);
		return NULL;
	}
	return r;
}

void registry_free(struct registry *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nb; i++)
		while (r->b[i]) {
			struct reg_group *g = r->b[i];
			r->b[i] = g->hnext;
			gw_buf_unref(g->state);
			free(g->m);
			free(g);
		}
	free(r->b);
	free(r);
}

static void grow(struct registry *r)
{
	size_t nb = r->nb * 2;
	struct reg_group **b = calloc(nb, sizeof(*b));

	if (!b)
		return;   /* keep the old table: longer chains, still correct */
	for (size_t i = 0; i < r->nb; i++)
		while (r->b[i]) {
			struct reg_group *g = r->b[i];
			r->b[i] = g->hnext;
			g->hnext = b[g->hash & (nb - 1)];
			b[g->hash & (nb - 1)] = g;
		}
	free(r->b);
	r->b = b;
	r->nb = nb;
}

struct reg_group *registry_find(const struct registry *r, const char *key)
{
	uint32_t h = hash_key(key);

	for (struct reg_group *g = r->b[h & (r->nb - 1)]; g; g = g->hnext)
		if (g->hash == h && !strcmp(g->key, key))
			return g;
	return NULL;
}

static struct reg_group *group_get(struct registry *r, const char *key)
{
	struct reg_group *g = registry_find(r, key);
	size_t len;

	if (g)
		return g;
	len = strlen(key);
	g = calloc(1, sizeof(*g) + len + 1);
	if (!g)
		return NULL;
	memcpy(g->key, key, len + 1);
	g->hash = hash_key(key);
	if (r->ngroups >= r->nb)
		grow(r);
	g->hnext = r->b[g->hash & (r->nb - 1)];
	r->b[g->hash & (r->nb - 1)] = g;
	r->ngroups++;
	return g;
}

static void group_delete(struct registry *r, struct reg_group *g)
{
	struct reg_group **pp = &r->b[g->hash & (r->nb - 1)];

	while (*pp != g)
		pp = &(*pp)->hnext;
	*pp = g->hnext;
	r->ngroups--;
	gw_buf_unref(g->state);
	free(g->m);
	free(g);
}

void registry_state_set(struct reg_group *g, struct gw_buf *b, uint64_t seq, int64_t at)
{
	if (g->state_known && g->state_seq > seq)
		return;   /* it already holds a later state */
	gw_buf_unref(g->state);
	g->state = gw_buf_ref(b);
	g->state_seq = seq;
	g->state_at = at;
	g->state_known = 1;
}

int registry_state_get(const struct reg_group *g, struct gw_buf **b, uint64_t *seq,
		       int64_t *at)
{
	if (!g->state_known)
		return 0;
	*b = g->state;
	*seq = g->state_seq;
	*at = g->state_at;
	return 1;
}

void registry_state_forget(struct reg_group *g)
{
	gw_buf_unref(g->state);
	g->state = NULL;
	g->state_known = 0;
}

struct reg_sub *registry_join(struct registry *r, const char *key, void *owner,
			      struct reg_sub **head)
{
	struct reg_group *g = group_get(r, key);
	struct reg_sub *s;

	if (!g)
		return NULL;
	if (g->n == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 4;
		struct reg_sub **m = realloc(g->m, cap * sizeof(*m));
		if (!m)
			goto fail;
		g->m = m;
		g->cap = cap;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		goto fail;
	s->owner = owner;
	s->group = g;
	s->idx = g->n;
	g->m[g->n++] = s;
	s->next = *head;
	if (*head)
		(*head)->prev = s;
	*head = s;
	r->nsubs++;
	return s;

fail:
	if (!g->n)
		group_delete(r, g);
	return NULL;
}

void registry_leave(struct registry *r, struct reg_sub *s, struct reg_sub **head)
{
	struct reg_group *g = s->group;

	/* swap-remove from the group's array */
	g->m[s->idx] = g->m[--g->n];
	g->m[s->idx]->idx = s->idx;
	if (!g->n)
		group_delete(r, g);
	if (s->prev)
		s->prev->next = s->next;
	else
		*head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	r->nsubs--;
	free(s);
}

void registry_leave_all(struct registry *r, struct reg_sub **head)
{
	while (*head)
		registry_leave(r, *head, head);
}

struct reg_sub *registry_owner_find(struct reg_sub *head, const char *key)
{
	for (; head; head = head->next)
		if (!strcmp(head->group->key, key))
			return head;
	return NULL;
}

const char *registry_group_key(const struct reg_group *g)
{
	return g->key;
}

struct reg_sub *const *registry_members(const struct reg_group *g, size_t *n)
{
	*n = g->n;
	return g->m;
}

size_t registry_group_count(const struct registry *r)
{
	return r->ngroups;
}

size_t registry_sub_count(const struct registry *r)
{
	return r->nsubs;
}
