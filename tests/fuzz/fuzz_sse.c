/*
 * libFuzzer target: the Server-Sent Events side of proto.c, the parser of
 * the Last-Event-ID a browser sends (or ?last_event_id=) and the encoder of
 * the events every stream gets.
 *
 * Input: byte 0 sets the size of the epoch buffer (1 to 256 bytes, exactly
 * allocated, so a write past it is an ASan report); the rest is used twice,
 * as an event id (up to its first NUL, as lws hands a header over) and as
 * the data of an event.
 *
 * Invariants: a parsed id has an epoch of [A-Za-z0-9_-]{1,64} that fits the
 * buffer, and the id made again from it parses to the same epoch and seq;
 * an encoded event is "id: " plus the id (when given) and "data: " lines
 * only, ends with an empty line, has no CR, and a reader that joins its
 * data lines with LF gets the data back with CRLF and CR made LF and one
 * final line end dropped; data with a NUL, or an id with a line end, is
 * refused.
 */
#include "fuzz.h"
#include "proto.h"

static int epoch_char(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       c == '_' || c == '-';
}

static void event_id(const char *s, size_t elen)
{
	char *epoch = malloc(elen), again[GW_EVENT_ID_MAX], epoch2[GW_EPOCH_MAX + 1];
	uint64_t seq = 0, seq2 = 0;
	size_t n;

	FUZZ_CHECK(epoch != NULL);
	if (proto_parse_event_id(s, epoch, elen, &seq) == 0) {
		n = strlen(epoch);
		FUZZ_CHECK(n >= 1 && n <= GW_EPOCH_MAX && n < elen);
		for (size_t i = 0; i < n; i++)
			FUZZ_CHECK(epoch_char(epoch[i]));
		FUZZ_CHECK(!strncmp(s, epoch, n) && s[n] == ':');
		proto_event_id(epoch, seq, again, sizeof(again));
		FUZZ_CHECK(proto_parse_event_id(again, epoch2, sizeof(epoch2), &seq2) == 0);
		FUZZ_CHECK(!strcmp(epoch, epoch2) && seq == seq2);
	}
	free(epoch);
}

/* data with CRLF and CR made LF, and one final LF dropped */
static char *normalised(const char *d, size_t len, size_t *out)
{
	char *r = malloc(len + 1);
	size_t o = 0;

	FUZZ_CHECK(r != NULL);
	for (size_t i = 0; i < len; i++) {
		if (d[i] == '\r') {
			r[o++] = '\n';
			if (i + 1 < len && d[i + 1] == '\n')
				i++;
		} else {
			r[o++] = d[i];
		}
	}
	if (o && r[o - 1] == '\n')
		o--;
	*out = o;
	return r;
}

static void encode(const char *id, const char *data, size_t len)
{
	char *ev = proto_encode_sse(id, data, len), *line, *next, *want, *got;
	size_t wl, gl = 0, ndata = 0;
	int first = 1;

	if (memchr(data, '\0', len) || (id && strpbrk(id, "\r\n"))) {
		FUZZ_CHECK(ev == NULL);
		return;
	}
	FUZZ_CHECK(ev != NULL);
	FUZZ_CHECK(!strchr(ev, '\r'));
	FUZZ_CHECK(strlen(ev) >= 2 && !strcmp(ev + strlen(ev) - 2, "\n\n"));
	want = normalised(data, len, &wl);
	got = malloc(strlen(ev) + 1);
	FUZZ_CHECK(got != NULL);
	/* the lines before the final empty one */
	ev[strlen(ev) - 2] = '\0';
	for (line = ev; line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (first && id) {
			FUZZ_CHECK(!strncmp(line, "id: ", 4) && !strcmp(line + 4, id));
			first = 0;
			continue;
		}
		FUZZ_CHECK(!strncmp(line, "data: ", 6));
		if (ndata++)
			got[gl++] = '\n';
		first = 0;
		memcpy(got + gl, line + 6, strlen(line + 6));
		gl += strlen(line + 6);
	}
	FUZZ_CHECK(gl == wl && !memcmp(got, want, wl));
	free(want);
	free(got);
	free(ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	if (size < 1)
		return 0;
	s = fuzz_cstr(data + 1, size - 1);
	event_id(s, (size_t)data[0] + 1);
	encode(NULL, (const char *)data + 1, size - 1);
	encode(s, (const char *)data + 1, size - 1);
	free(s);
	return 0;
}
