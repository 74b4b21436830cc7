/*
 * libFuzzer target: chunked_feed, the decoder of chunked request bodies
 * (lws 4.1 hands the HTTP adapter the raw framing of a POST body).
 *
 * Input: byte 0 sets the piece size (1 to 256 bytes) in which the body is
 * fed a second time, as the network may cut it anywhere; the rest is the
 * body with its chunk framing.
 *
 * Invariants: data out is never longer than the framing in, and every
 * output buffer is sized to the promise in chunked.h (exactly the input's
 * length, so a byte more is an ASan report); the decoder is incremental,
 * so the same bytes fed in one piece or in small ones give the same data,
 * the same verdict and the same consumed length, and once it has said DONE
 * or BAD it consumes nothing more; a body it calls complete is read again
 * by a plain one-pass reference decoder written here, which must find the
 * same data in the same bytes.
 */
#include "chunked.h"
#include "fuzz.h"

/* one-pass reference for a body already known to be well formed: hex size,
 * ignore to CRLF, data, CRLF ... size 0, trailer lines, empty line. Returns
 * the data length or -1 (the framing was not what chunked_feed accepted). */
static long reference(const uint8_t *in, size_t len, uint8_t *out)
{
	size_t i = 0, o = 0;

	for (;;) {
		uint64_t size = 0;
		size_t digits = 0;

		while (i < len && in[i] && strchr("0123456789abcdefABCDEF", in[i])) {
			uint8_t c = in[i++];

			size = size * 16 + (uint64_t)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
			if (++digits > 15)
				return -1;
		}
		if (!digits)
			return -1;
		while (i < len && in[i] != '\r')        /* extensions */
			i++;
		if (i + 1 >= len || in[i + 1] != '\n')
			return -1;
		i += 2;
		if (!size)
			break;
		if (size > len - i)
			return -1;
		memcpy(out + o, in + i, (size_t)size);
		o += (size_t)size;
		i += (size_t)size;
		if (i + 1 >= len || in[i] != '\r' || in[i + 1] != '\n')
			return -1;
		i += 2;
	}
	for (;;) {                                  /* trailers, then CRLF */
		size_t start = i;

		while (i < len && in[i] != '\r')
			i++;
		if (i + 1 >= len || in[i + 1] != '\n')
			return -1;
		i += 2;
		if (i - start == 2)
			break;
	}
	return i == len ? (long)o : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct chunked whole, parts;
	size_t piece, len, outlen, used, off = 0, total_out = 0;
	uint8_t *in, *out1, *out2, *out3, *ref;
	int r1, r2 = GW_CHUNKED_MORE;
	long n;

	if (size < 1)
		return 0;
	piece = 1 + (size_t)data[0];
	len = size - 1;
	in = fuzz_dup(data + 1, len);
	out1 = malloc(len ? len : 1);     /* the room chunked.h asks for */
	out2 = malloc(len ? len : 1);
	FUZZ_CHECK(out1 && out2);

	chunked_init(&whole);
	r1 = chunked_feed(&whole, in, len, out1, &outlen, &used);
	FUZZ_CHECK(r1 == GW_CHUNKED_MORE || r1 == GW_CHUNKED_DONE || r1 == GW_CHUNKED_BAD);
	FUZZ_CHECK(used <= len && outlen <= used);
	FUZZ_CHECK(r1 == GW_CHUNKED_DONE || r1 == GW_CHUNKED_BAD || used == len);

	/* the same bytes in pieces, each into a buffer of exactly its size */
	chunked_init(&parts);
	while (off < len && r2 == GW_CHUNKED_MORE) {
		size_t n2 = len - off < piece ? len - off : piece, o2, u2;
		uint8_t *buf = malloc(n2);

		FUZZ_CHECK(buf != NULL);
		r2 = chunked_feed(&parts, in + off, n2, buf, &o2, &u2);
		FUZZ_CHECK(u2 <= n2 && o2 <= u2);
		FUZZ_CHECK(r2 != GW_CHUNKED_MORE || u2 == n2);
		memcpy(out2 + total_out, buf, o2);
		free(buf);
		total_out += o2;
		off += u2;
	}
	FUZZ_CHECK(r2 == r1);
	FUZZ_CHECK(off == used);
	FUZZ_CHECK(total_out == outlen && !memcmp(out1, out2, outlen));

	/* finished: nothing more is taken */
	if (r1 != GW_CHUNKED_MORE && used < len) {
		out3 = malloc(len - used);
		FUZZ_CHECK(out3 != NULL);
		FUZZ_CHECK(chunked_feed(&whole, in + used, len - used, out3, &outlen, &used) == r1);
		FUZZ_CHECK(used == 0 && outlen == 0);
		free(out3);
	}

	if (r1 == GW_CHUNKED_DONE) {
		ref = malloc(len + 1);
		FUZZ_CHECK(ref != NULL);
		n = reference(in, off, ref);
		FUZZ_CHECK(n >= 0 && (size_t)n == total_out);
		FUZZ_CHECK(!memcmp(ref, out2, total_out));
		free(ref);
	}
	free(out2);
	free(out1);
	free(in);
	return 0;
}
