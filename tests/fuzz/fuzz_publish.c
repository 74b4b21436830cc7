/*
 * libFuzzer target: proto_decode_publish, which reads every publish from
 * outside (HTTP body, AMQP body, legacy socket), bare or in a
 * from/to/datetime/body envelope.
 *
 * Input: byte 0 chooses how the decoder is called, the rest is the publish.
 *   bits 0-2: the key hint (none, a few valid keys, one invalid), as an AMQP
 *             routing key would give it
 *   bit 3:    a 256-byte size limit instead of 1 MiB
 *   bits 4-7: the reason buffer's size, 1 to 241 bytes (the adapters use 200)
 *
 * Invariants: a decoded publish is what the writer may trust (valid key
 * equal to the hint, known type and status, kinds, names, results and
 * message texts within their limits, printable id); a refusal has a known
 * code, a printable non-empty reason and leaves nothing to free.
 */
#include "fuzz.h"
#include "proto.h"

static const char *const hints[8] = {
	NULL, "42", "a.b-c_D", "..", NULL,
	"0123456789012345678901234567890123456789012345678901234567890123",
	"x", NULL,
};

static int printable_id(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= GW_ID_MAX && fuzz_printable(s, n + 1);
}

static void check_recs(const struct gw_pub *p)
{
	int validation = p->type == GW_PUB_VALIDATION;

	FUZZ_CHECK(p->nrec >= 1 && p->recs != NULL);
	for (size_t i = 0; i < p->nrec; i++) {
		const struct gw_rec *r = &p->recs[i];
		size_t nl = r->name ? strlen(r->name) : 0;

		FUZZ_CHECK(proto_kind_valid(r->kind));
		FUZZ_CHECK(nl >= 1 && nl <= GW_NAME_MAX);
		if (!validation) {
			FUZZ_CHECK(r->result == GW_RES_UNKNOWN && r->nmsg == 0);
			continue;
		}
		FUZZ_CHECK(r->result > GW_RES_UNKNOWN && r->result < GW_RES_COUNT);
		FUZZ_CHECK(r->nmsg <= 64 && (r->nmsg == 0 || r->msgs != NULL));
		for (size_t j = 0; j < r->nmsg; j++) {
			const struct gw_msgtext *m = &r->msgs[j];
			size_t tl = m->text ? strlen(m->text) : 0;

			FUZZ_CHECK(tl >= 1 && tl <= GW_TEXT_MAX);
			FUZZ_CHECK(!m->column || strlen(m->column) <= GW_COLUMN_MAX);
		}
	}
}

static void check_ok(const struct gw_pub *p, const char *hint)
{
	FUZZ_CHECK(p->root != NULL);
	FUZZ_CHECK(proto_key_valid(p->key, strlen(p->key)));
	FUZZ_CHECK(!hint || !strcmp(p->key, hint));
	FUZZ_CHECK(p->type >= 0 && p->type < GW_PUB_COUNT);
	FUZZ_CHECK(!p->id || printable_id(p->id));
	FUZZ_CHECK(!p->notification || strlen(p->notification) <= GW_TEXT_MAX);
	FUZZ_CHECK(!p->counts_set && p->ncounts == 0);   /* legacy frames only */
	switch (p->type) {
	case GW_PUB_STATUS:
		FUZZ_CHECK(p->status >= 0 && p->status < GW_ST_COUNT);
		break;
	case GW_PUB_NOTIFICATION:
		FUZZ_CHECK(p->notification != NULL);
		break;
	case GW_PUB_RECORDS:
	case GW_PUB_VALIDATION:
		check_recs(p);
		break;
	default:
		break;
	}
	if (p->type != GW_PUB_RECORDS && p->type != GW_PUB_VALIDATION)
		FUZZ_CHECK(p->nrec == 0 && p->recs == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *hint, *body;
	size_t len, max, errlen;
	struct gw_pub p;
	char *err;
	int rc;

	if (size < 1)
		return 0;
	hint = hints[data[0] & 7];
	max = data[0] & 8 ? 256 : (size_t)1 << 20;
	errlen = 1 + 16 * (size_t)(data[0] >> 4);
	body = (const char *)data + 1;
	len = size - 1;
	err = malloc(errlen);   /* exactly errlen: ASan sees one byte too many */
	FUZZ_CHECK(err != NULL);

	rc = proto_decode_publish(body, len, max, hint, &p, err, errlen);
	FUZZ_CHECK(fuzz_printable(err, errlen));
	if (rc == GW_OK) {
		FUZZ_CHECK(len <= max);
		FUZZ_CHECK(err[0] == '\0');
		check_ok(&p, hint);
		proto_pub_free(&p);
		FUZZ_CHECK(p.root == NULL && p.recs == NULL);
	} else {
		FUZZ_CHECK(rc == GW_EJSON || rc == GW_EINVAL || rc == GW_ETOOBIG);
		FUZZ_CHECK((rc == GW_ETOOBIG) == (len > max));
		FUZZ_CHECK(errlen < 2 || err[0] != '\0');
		FUZZ_CHECK(p.root == NULL && p.recs == NULL && p.nrec == 0);
		FUZZ_CHECK(proto_http_status(rc) >= 400 && proto_http_status(rc) < 500);
	}
	free(err);
	return 0;
}
