/*
 * HTTP/1.1 chunked transfer coding (RFC 9112 section 7.1), decoding only,
 * pure and incremental: bytes go in as they arrive, the data comes out,
 * and the decoder says when the last chunk and trailers are through.
 * lws 4.1 hands a server the raw chunk framing of a request body without
 * decoding it, so the HTTP adapter runs it through this.
 */
#ifndef GW_CHUNKED_H
#define GW_CHUNKED_H

#include <stddef.h>
#include <stdint.h>

/* longest chunk-size line (size, extensions) or trailer line accepted */
#define GW_CHUNKED_LINE_MAX 4096

struct chunked {
	int state;
	uint64_t remain;         /* data bytes left in the current chunk */
	size_t line;             /* bytes of the current size/trailer line */
	int digits;              /* hex digits of the current size */
};

enum { GW_CHUNKED_MORE = 0, GW_CHUNKED_DONE = 1, GW_CHUNKED_BAD = -1 };

void chunked_init(struct chunked *c);
/*
 * Decodes in[0..len): the data found is written to out (which must have room
 * for len bytes: data is never longer than its framing) and its length to
 * *outlen; *used gets the bytes consumed (less than len only when the body
 * ended inside in). Returns GW_CHUNKED_MORE, GW_CHUNKED_DONE once the body is
 * complete, or GW_CHUNKED_BAD on malformed framing (and then stays BAD).
 */
int chunked_feed(struct chunked *c, const unsigned char *in, size_t len,
		 unsigned char *out, size_t *outlen, size_t *used);

#endif
