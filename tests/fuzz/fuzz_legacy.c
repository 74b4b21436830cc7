/*
 * libFuzzer target: proto_decode_legacy, the parser of the frames a legacy
 * backend sends on /ws/submissions/{key}/:
 *   {"message": status, "notification_message": text,
 *    "validation_message": {counts} | ""}
 * It is written against the prototype
 *   int proto_decode_legacy(const char *buf, size_t len, size_t max,
 *                           const char *key, struct gw_pub *out,
 *                           char *err, size_t errlen);
 * with proto_decode_publish's conventions (GW_OK and *out to free with
 * proto_pub_free, or a gw_err, a reason and nothing to free).
 *
 * Input: byte 0 picks the socket's key (always valid: the path was checked
 * before the upgrade) and whether a 256-byte size limit applies; the rest
 * is the frame.
 *
 * Invariants: a decoded frame publishes to the socket's own key, with a
 * known type and status; a refusal has a known code, a printable non-empty
 * reason and leaves nothing to free.
 */
#include "fuzz.h"
#include "proto.h"

static const char *const keys[4] = {
	"42", "a.b-c_D", "x",
	"0123456789012345678901234567890123456789012345678901234567890123",
};

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
		proto_pub_free(&p);
	} else {
		FUZZ_CHECK(rc == GW_EJSON || rc == GW_EINVAL || rc == GW_ETOOBIG);
		FUZZ_CHECK(err[0] != '\0');
		FUZZ_CHECK(p.root == NULL && p.recs == NULL);
	}
	return 0;
}
