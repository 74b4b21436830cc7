/*
 * Per-address connection counts (see iplimit.h). FNV-1a over the address
 * text picks a bucket; buckets chain. The bucket array doubles when the
 * average chain passes two entries, so a flood from many addresses stays
 * O(1) per connection. An entry is removed when its count drops to zero.
 */
#include "iplimit.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct ip_entry {
	struct ip_entry *next;
	size_t count;
	char ip[];               /* NUL-terminated */
};

struct ip_table {
	struct ip_entry **b;     /* malloc'd bucket array */
	size_t nb;               /* power of two */
	size_t n;                /* entries */
};

static uint32_t hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static struct ip_entry **slot(const struct ip_table *t, const char *ip)
{
	struct ip_entry **p = &t->b[hash(ip) & (t->nb - 1)];

	while (*p && strcmp((*p)->ip, ip))
		p = &(*p)->next;
	return p;
}

size_t iplimit_count(const struct ip_table *t, const char *ip)
{
	struct ip_entry *e;

	if (!t)
		return 0;
	e = *slot(t, ip);
	return e ? e->count : 0;
}

const char *iplimit_key(const struct ip_table *t, const char *ip)
{
	struct ip_entry *e;

	if (!t)
		return NULL;
	e = *slot(t, ip);
	return e ? e->ip : NULL;
}

size_t iplimit_addresses(const struct ip_table *t)
{
	return t ? t->n : 0;
}

static void grow(struct ip_table *t)
{
	size_t nb = t->nb * 2;
	struct ip_entry **b = calloc(nb, sizeof(*b));

	if (!b)
		return;   /* longer chains, still correct */
	for (size_t i = 0; i < t->nb; i++) {
		struct ip_entry *e = t->b[i], *next;
		for (; e; e = next) {
			next = e->next;
			e->next = b[hash(e->ip) & (nb - 1)];
			b[hash(e->ip) & (nb - 1)] = e;
		}
	}
	free(t->b);
	t->b = b;
	t->nb = nb;
}

int iplimit_add(struct ip_table **tp, const char *ip)
{
	struct ip_table *t = *tp;
	struct ip_entry **p, *e;
	size_t len = strlen(ip);

	if (!t) {
		t = calloc(1, sizeof(*t));
		if (!t)
			return -1;
		t->nb = 64;
		t->b = calloc(t->nb, sizeof(*t->b));
		if (!t->b) {
			free(t);
			return -1;
		}
		*tp = t;
	}
	p = slot(t, ip);
	if (*p) {
		(*p)->count++;
		return 0;
	}
	e = malloc(sizeof(*e) + len + 1);
	if (!e) {
		if (!t->n)
			iplimit_del(tp, ip);   /* frees the empty table */
		return -1;
	}
	memcpy(e->ip, ip, len + 1);
	e->count = 1;
	e->next = NULL;
	*p = e;
	t->n++;
	if (t->n > t->nb * 2)
		grow(t);
	return 0;
}

void iplimit_del(struct ip_table **tp, const char *ip)
{
	struct ip_table *t = *tp;
	struct ip_entry **p, *e;

	if (!t)
		return;
	p = slot(t, ip);
	e = *p;
	if (e && --e->count == 0) {
		*p = e->next;
		free(e);
		t->n--;
	}
	if (!t->n) {
		free(t->b);
		free(t);
		*tp = NULL;
	}
}
