/*
 * libFuzzer target: proto_decode_legacy, the parser of the frames a legacy
 * backend sends on /ws/submissions/{key}/:
 *   {"message": status, "notification_message": text,
 *    "validation_message": {counts} | ""}
 * (and a publish of the new format, which it hands to proto_decode_publish),
 * with proto_decode_publish's conventions: GW_OK and *out to free with
 * proto_pub_free, or a gw_err, a reason and nothing to free.
 *
 * Input: byte 0 picks the socket's key (always valid: the path was checked
 * before the upgrade) and whether a 256-byte size limit applies; the rest
 * is the frame.
 *
 * Invariants: a decoded frame publishes to the socket's own key, with a
 * known type and status, and reported counts only on a legacy status frame
 * (one per legacy kind, each within 0..2^53); a refusal has a known code, a
 * printable non-empty reason and leaves nothing to free.
 */
#include "fuzz.h"
#include "proto.h"

static const char *const keys[4] = {
	"42", "a.b-c_D", "x",
	"0123456789012345678901234567890123456789012345678901234567890123",
};

/* reported counts: only on a legacy status frame, at most one entry per
 * legacy kind, each count from 0 to 2^53 */
static void check_counts(const struct gw_pub *p)
{
	FUZZ_CHECK(p->ncounts <= 2);
	FUZZ_CHECK(p->counts_set || p->ncounts == 0);
	FUZZ_CHECK(!p->counts_set || p->type == GW_PUB_STATUS);
	for (size_t i = 0; i < p->ncounts; i++) {
		const struct gw_counts *c = &p->counts[i];

		FUZZ_CHECK(c->kind && (!strcmp(c->kind, "animal") || !strcmp(c->kind, "sample")));
		FUZZ_CHECK(i == 0 || strcmp(c->kind, p->counts[0].kind));
		FUZZ_CHECK(c->all >= 0 && c->all <= (INT64_C(1) << 53));
		FUZZ_CHECK(c->unknown >= 0 && c->unknown <= (INT64_C(1) << 53));
		FUZZ_CHECK(c->issues >= 0 && c->issues <= (INT64_C(1) << 53));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *key;
	struct gw_pub p;
	char err[200];
	size_t max, len;
	int rc;

	if (size < 1)
		return 0;
	key = keys[data[0] & 3];
	max = data[0] & 4 ? 256 : (size_t)1 << 20;
	len = size - 1;
	rc = proto_decode_legacy((const char *)data + 1, len, max, key, &p, err,
				 sizeof(err));
	FUZZ_CHECK(fuzz_printable(err, sizeof(err)));
	if (rc == GW_OK) {
		FUZZ_CHECK(len <= max);
		FUZZ_CHECK(!strcmp(p.key, key));
		FUZZ_CHECK(p.type >= 0 && p.type < GW_PUB_COUNT);
		FUZZ_CHECK(p.type != GW_PUB_STATUS ||
			   (p.status >= 0 && p.status < GW_ST_COUNT));
		FUZZ_CHECK(!p.notification || strlen(p.notification) <= GW_TEXT_MAX);
		check_counts(&p);
		proto_pub_free(&p);
	} else {
		FUZZ_CHECK(rc == GW_EJSON || rc == GW_EINVAL || rc == GW_ETOOBIG);
		FUZZ_CHECK(err[0] != '\0');
		FUZZ_CHECK(p.root == NULL && p.recs == NULL);
	}
	return 0;
}
