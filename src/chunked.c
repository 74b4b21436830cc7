/*
 * The chunked decoder (see chunked.h): a byte-at-a-time state machine for
 * the framing, with the data of a chunk copied in one memcpy. Sizes are at
 * most 15 hex digits, so they cannot overflow; lines are bounded.
 */
#include "chunked.h"

#include <string.h>

enum {
	S_SIZE,          /* hex digits of a chunk size */
	S_EXT,           /* ";ext" after the size, up to CR */
	S_SIZE_LF,       /* LF after the size line */
	S_DATA,
	S_DATA_CR,       /* CR after a chunk's data */
	S_DATA_LF,
	S_TRAILER,       /* start of a trailer line, or the final CRLF */
	S_TRAILER_LINE,  /* inside a trailer line, up to CR */
	S_TRAILER_LF,    /* LF after a trailer line */
	S_END_LF,        /* LF of the final empty line */
	S_DONE,
	S_BAD
};

void chunked_init(struct chunked *c)
{
	memset(c, 0, sizeof(*c));
	c->state = S_SIZE;
}

static int hexval(unsigned char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

int chunked_feed(struct chunked *c, const unsigned char *in, size_t len,
		 unsigned char *out, size_t *outlen, size_t *used)
{
	size_t i = 0, o = 0;

	while (i < len && c->state != S_DONE && c->state != S_BAD) {
		unsigned char ch = in[i];

		if (c->state == S_DATA) {
			size_t n = len - i;

			if (n > c->remain)
				n = (size_t)c->remain;
			memcpy(out + o, in + i, n);
			o += n;
			i += n;
			c->remain -= n;
			if (!c->remain)
				c->state = S_DATA_CR;
			continue;
		}
		i++;
		if (c->state != S_DATA_CR && c->state != S_DATA_LF &&
		    ++c->line > GW_CHUNKED_LINE_MAX) {
			c->state = S_BAD;
			break;
		}
		switch (c->state) {
		case S_SIZE: {
			int v = hexval(ch);

			if (v >= 0 && c->digits < 15) {
				c->remain = c->remain * 16 + (uint64_t)v;
				c->digits++;
			} else if (c->digits && (ch == ';' || ch == ' ' || ch == '\t')) {
				c->state = S_EXT;
			} else if (c->digits && ch == '\r') {
				c->state = S_SIZE_LF;
			} else {
				c->state = S_BAD;
			}
			break;
		}
		case S_EXT:
			if (ch == '\r')
				c->state = S_SIZE_LF;
			else if (ch == '\n')
				c->state = S_BAD;
			break;
		case S_SIZE_LF:
			if (ch != '\n') {
				c->state = S_BAD;
				break;
			}
			c->line = 0;
			c->digits = 0;
			c->state = c->remain ? S_DATA : S_TRAILER;
			break;
		case S_DATA_CR:
			c->state = ch == '\r' ? S_DATA_LF : S_BAD;
			break;
		case S_DATA_LF:
			c->state = ch == '\n' ? S_SIZE : S_BAD;
			c->line = 0;
			break;
		case S_TRAILER:
			c->state = ch == '\r' ? S_END_LF : ch == '\n' ? S_BAD : S_TRAILER_LINE;
			break;
		case S_TRAILER_LINE:
			if (ch == '\r')
				c->state = S_TRAILER_LF;
			else if (ch == '\n')
				c->state = S_BAD;
			break;
		case S_TRAILER_LF:
			c->state = ch == '\n' ? S_TRAILER : S_BAD;
			c->line = 0;
			break;
		case S_END_LF:
			c->state = ch == '\n' ? S_DONE : S_BAD;
			break;
		}
	}
	*outlen = o;
	*used = i;
	if (c->state == S_BAD)
		return GW_CHUNKED_BAD;
	return c->state == S_DONE ? GW_CHUNKED_DONE : GW_CHUNKED_MORE;
}
