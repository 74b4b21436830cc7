/*
 * Reference-counted payload buffers shared by every receiver of an event.
 * See buf.h for the ownership rules.
 */
#include "buf.h"

#include <stdlib.h>
#include <string.h>

struct gw_buf *gw_buf_new(const void *data, size_t len)
{
	struct gw_buf *b = malloc(sizeof(*b) + GW_PRE + len + 1);

	if (!b)
		return NULL;
	b->refs = 1;
	b->hdr = 0;
	b->len = len;
	b->t_in_ns = 0;
	if (len)
		memcpy(b->mem + GW_PRE, data, len);
	b->mem[GW_PRE + len] = '\0';
	return b;
}

struct gw_buf *gw_buf_take_str(char *s)
{
	struct gw_buf *b;

	if (!s)
		return NULL;
	b = gw_buf_new(s, strlen(s));
	free(s);
	return b;
}

struct gw_buf *gw_buf_ref(struct gw_buf *b)
{
	if (b)
		b->refs++;
	return b;
}

void gw_buf_unref(struct gw_buf *b)
{
	if (b && --b->refs == 0)
		free(b);
}
