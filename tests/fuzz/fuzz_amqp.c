/*
 * libFuzzer target: what the broker thread reads from a delivery, as plain
 * bytes: proto_decode_delivery (routing key, message_id property and body
 * of an ingest message), proto_routing_hint alone, and proto_decode_rpc
 * (the body of an RPC request).
 *
 * Input layout:
 *   byte 0: bit 0 the message_id property is set; bit 1 a 256-byte size
 *           limit instead of 1 MiB
 *   byte 1: routing key length, byte 2: message_id length (both cut to
 *           what the input holds)
 *   then the routing key, the message_id and the body. Each part is copied
 *   to a buffer of its exact size (NULL when empty, as rabbitmq-c may hand
 *   it), so reading one byte past any of them is an ASan report.
 *
 * Invariants: a decoded publish has a valid key that agrees with the
 * routing key's when that one has the submission.<key>.<type> form, and an
 * id that is the message_id when the body brought none; refusals have a
 * printable reason and leave nothing to free; an RPC request either names
 * a method and a valid key or gets a bad_request detail.
 */
#include "fuzz.h"
#include "proto.h"

/* the next part of the input: at most want bytes, as an exact-size copy */
static void *part(const uint8_t **p, size_t *left, size_t want, size_t *len)
{
	void *copy;

	*len = want < *left ? want : *left;
	copy = fuzz_dup(*p, *len);
	*p += *len;
	*left -= *len;
	return copy;
}

static void check_hint(const void *rk, size_t len)
{
	char key[GW_KEY_MAX + 1], want[GW_KEY_MAX + 48];
	const char *dot;
	int r = proto_routing_hint(rk, len, key);

	if (r) {
		FUZZ_CHECK(key[0] == '\0');
		return;
	}
	FUZZ_CHECK(proto_key_valid(key, strlen(key)));
	snprintf(want, sizeof(want), "submission.%s.", key);
	FUZZ_CHECK(len > strlen(want) && !memcmp(rk, want, strlen(want)));
	/* the rest is exactly a type name, and holds no dot */
	dot = (const char *)rk + strlen(want);
	FUZZ_CHECK(!memchr(dot, '.', len - strlen(want)));
	{
		char type[32];
		size_t tl = len - strlen(want);

		FUZZ_CHECK(tl < sizeof(type));
		memcpy(type, dot, tl);
		type[tl] = '\0';
		FUZZ_CHECK(proto_parse_type(type) >= 0);
	}
}

static void check_delivery(const struct gw_delivery *d, size_t max)
{
	char hint[GW_KEY_MAX + 1], err[200];
	struct gw_pub p;
	int has_hint = !proto_routing_hint(d->routing_key, d->routing_key_len, hint);
	int rc = proto_decode_delivery(d, max, &p, err, sizeof(err));

	FUZZ_CHECK(fuzz_printable(err, sizeof(err)));
	if (rc != GW_OK) {
		FUZZ_CHECK(rc == GW_EJSON || rc == GW_EINVAL || rc == GW_ETOOBIG);
		FUZZ_CHECK(err[0] != '\0');
		FUZZ_CHECK(p.root == NULL && p.recs == NULL);
		return;
	}
	FUZZ_CHECK(d->body_len <= max);
	FUZZ_CHECK(proto_key_valid(p.key, strlen(p.key)));
	FUZZ_CHECK(!has_hint || !strcmp(p.key, hint));
	FUZZ_CHECK(p.type >= 0 && p.type < GW_PUB_COUNT);
	if (p.id) {
		size_t n = strlen(p.id);

		FUZZ_CHECK(n >= 1 && n <= GW_ID_MAX && fuzz_printable(p.id, n + 1));
	} else {
		/* a message_id the body did not override is the id, or a refusal */
		FUZZ_CHECK(!d->has_message_id);
	}
	proto_pub_free(&p);
}

static void check_rpc(const void *body, size_t len)
{
	char key[GW_KEY_MAX + 1];
	const char *detail = NULL;
	int method = -1;

	if (proto_decode_rpc(body, len, 4096, &method, key, &detail)) {
		FUZZ_CHECK(detail != NULL && detail[0] != '\0');
		FUZZ_CHECK(key[0] == '\0');
		return;
	}
	FUZZ_CHECK(detail == NULL && len <= 4096);
	FUZZ_CHECK(method == GW_RPC_GET || method == GW_RPC_PRESENCE);
	FUZZ_CHECK(proto_key_valid(key, strlen(key)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data + 3;
	size_t left, rkl, midl;
	struct gw_delivery d;
	void *rk, *mid, *body;

	if (size < 3)
		return 0;
	left = size - 3;
	rk = part(&p, &left, data[1], &rkl);
	mid = part(&p, &left, data[2], &midl);
	memset(&d, 0, sizeof(d));
	d.routing_key = rk;
	d.routing_key_len = rkl;
	d.has_message_id = data[0] & 1;
	d.message_id = mid;
	d.message_id_len = midl;
	body = fuzz_dup(p, left);
	d.body = body;
	d.body_len = left;

	check_hint(rk, rkl);
	check_delivery(&d, data[0] & 2 ? 256 : (size_t)1 << 20);
	check_rpc(body, left);
	free(body);
	free(mid);
	free(rk);
	return 0;
}
