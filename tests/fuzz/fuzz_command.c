/*
 * libFuzzer target: proto_decode_command, the parser of every frame a
 * browser sends on /ws. The whole input is one frame, decoded with the
 * 200-byte reason buffer ws_session.c uses.
 *
 * Invariants: an accepted command has a known op, a valid key when it
 * subscribes, a filter of known event types only, a known mode and a
 * non-negative since; a refused one has a printable non-empty reason, and
 * the error frame ws_session.c builds from it (with the command's id)
 * always serialises with its reason, since a reason jansson would refuse
 * as a JSON string would leave the client an error without one.
 */
#include "fuzz.h"
#include "proto.h"

/* what send_error() in ws_session.c puts on the wire */
static void check_error_frame(json_t *id, const char *reason)
{
	json_t *o = json_pack("{s:s, s:o*, s:s, s:s}", "op", "error",
			      "id", id ? json_incref(id) : NULL,
			      "code", "bad_request", "reason", reason);
	char *text;

	FUZZ_CHECK(o != NULL);
	text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	FUZZ_CHECK(text != NULL);
	free(text);
	json_decref(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gw_cmd c;
	char reason[200];
	int rc = proto_decode_command((const char *)data, size, &c, reason, sizeof(reason));

	FUZZ_CHECK(fuzz_printable(reason, sizeof(reason)));
	FUZZ_CHECK(!c.id || json_is_integer(c.id) || json_is_string(c.id));
	switch (rc) {
	case GW_OK:
		FUZZ_CHECK(reason[0] == '\0');
		FUZZ_CHECK(c.op >= 0 && c.op < GW_CMD_COUNT);
		if (c.op == GW_CMD_SUBSCRIBE) {
			FUZZ_CHECK(c.key && proto_key_valid(c.key, strlen(c.key)));
			FUZZ_CHECK(c.filter < (1u << GW_PUB_COUNT));
			FUZZ_CHECK(c.mode == GW_MODE_ALL || c.mode == GW_MODE_LATEST);
			FUZZ_CHECK(!c.has_since || c.since_epoch != NULL);
			FUZZ_CHECK(c.since_seq <= (uint64_t)INT64_MAX);
		} else if (c.op == GW_CMD_UNSUBSCRIBE) {
			FUZZ_CHECK(c.key != NULL);
		} else {
			FUZZ_CHECK(c.key == NULL);
		}
		break;
	case GW_EJSON:
		FUZZ_CHECK(c.op == -1 && c.id == NULL);
		FUZZ_CHECK(!json_is_object(c.root));
		FUZZ_CHECK(reason[0] != '\0');
		check_error_frame(NULL, reason);
		break;
	case GW_EINVAL:
		FUZZ_CHECK(json_is_object(c.root));
		FUZZ_CHECK(c.op >= -1 && c.op < GW_CMD_COUNT);
		FUZZ_CHECK(reason[0] != '\0');
		check_error_frame(c.id, reason);
		break;
	default:
		FUZZ_CHECK(!"unexpected result");
	}
	proto_cmd_free(&c);
	FUZZ_CHECK(c.root == NULL);
	return 0;
}
