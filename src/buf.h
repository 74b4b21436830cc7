/*
 * Reference-counted, immutable payloads for fan-out.
 *
 * An event is serialised once into a gw_buf; every session queue that must
 * send it holds a reference, and the last gw_buf_unref() frees it. GW_PRE
 * bytes are reserved in front of the payload so that lws_write() can put the
 * WebSocket frame header there without a copy (GW_PRE >= LWS_PRE is checked
 * in server.c, which is the only file that knows LWS_PRE).
 *
 * The reference count is not atomic: a buffer is built on one thread and then
 * handed over whole; after the hand-off only the service thread touches it.
 */
#ifndef GW_BUF_H
#define GW_BUF_H

#include <stddef.h>
#include <stdint.h>

#define GW_PRE 32

struct gw_buf {
	unsigned refs;
	unsigned char hdr;       /* service thread: bytes of the WebSocket frame
				  * header built right before the payload (the
				  * same for every receiver); 0: not built yet */
	size_t len;              /* payload bytes, not counting GW_PRE or NUL */
	uint64_t t_in_ns;        /* a live event's publish arrival (metrics_now_ns),
				  * for publish-to-send when a frame of it is
				  * written; 0 for anything else */
	unsigned char mem[];     /* GW_PRE spare bytes, payload, NUL */
};

/* payload pointer: GW_PRE writable bytes precede it */
static inline unsigned char *gw_buf_data(struct gw_buf *b) { return b->mem + GW_PRE; }

/* any thread; malloc'd with refs = 1; NULL on allocation failure */
struct gw_buf *gw_buf_new(const void *data, size_t len);
/* any thread: takes over a json string from json_dumps() (frees it) */
struct gw_buf *gw_buf_take_str(char *s);
struct gw_buf *gw_buf_ref(struct gw_buf *b);
void gw_buf_unref(struct gw_buf *b);

#endif
