/*
 * Unit tests for proto.c: key/kind/status/result parsing tables, decoding of
 * every publish type (bare and enveloped) and every error class with its
 * exact gw_err code, and the encoders (legacy frame byte for byte; events,
 * snapshots and the REST document parsed back with jansson); /ws commands
 * with the exact reasons /ws answers; AMQP deliveries (routing key hint,
 * message_id) and RPC requests.
 * Exit status 0 = pass. Links proto.c and jansson only.
 */
#include "proto.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

static int decode(const char *json, const char *hint, struct gw_pub *p,
		  char *err, size_t errlen)
{
	return proto_decode_publish(json, strlen(json), 1 << 20, hint, p, err,
				    errlen);
}

static int all_zero(const void *mem, size_t n)
{
	const unsigned char *b = mem;
	size_t i;

	for (i = 0; i < n; i++)
		if (b[i])
			return 0;
	return 1;
}

/*
 * A publish that must fail with code; the reason must contain want (the field
 * path, usually) and *out must need no freeing.
 */
#define EXPECT_FAIL(json, hint, code, want) \
	expect_fail_(__LINE__, json, hint, code, want)
static void expect_fail_(int line, const char *json, const char *hint,
			 int code, const char *want)
{
	struct gw_pub p;
	char err[256];
	int rc;

	memset(&p, 0xa5, sizeof(p)); /* decode must zero it */
	rc = decode(json, hint, &p, err, sizeof(err));
	CHECK_EQ_INT(rc, code);
	CHECK(p.root == NULL && p.recs == NULL && p.nrec == 0);
	CHECK(p.id == NULL && p.from == NULL && p.notification == NULL);
	CHECK(err[0] != '\0');
	if (!strstr(err, want))
		fprintf(stderr, "line %d: reason \"%s\" lacks \"%s\"\n", line,
			err, want);
	CHECK(strstr(err, want) != NULL);
	if (rc == GW_OK)
		proto_pub_free(&p);
}

/* parse a malloc'd encoder output back; frees s */
static json_t *parse_back(char *s)
{
	json_t *j;

	CHECK(s != NULL);
	if (!s)
		return NULL;
	j = json_loads(s, 0, NULL);
	CHECK(j != NULL);
	free(s);
	return j;
}

static const char *jstr(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

static long long jint(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	CHECK(json_is_integer(v));
	return json_integer_value(v);
}

/* ---- tables ---- */

static void test_keys(void)
{
	static const struct { const char *s; int ok; } t[] = {
		{ "42", 1 }, { "a", 1 }, { "A-b_c.9", 1 }, { "...", 1 },
		{ ".hidden", 1 }, { "a..b", 1 }, { "-", 1 },
		{ "", 0 }, { ".", 0 }, { "..", 0 }, { "a/b", 0 }, { "a b", 0 },
		{ "a%2F", 0 }, { "a\\b", 0 }, { "\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87", 0 },
		{ "caf\xc3\xa9", 0 }, { "a\n", 0 }, { "a?b", 0 }, { "a#b", 0 },
	};
	char k[80];
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (proto_key_valid(t[i].s, strlen(t[i].s)) != t[i].ok)
			fprintf(stderr, "key \"%s\"\n", t[i].s);
		CHECK_EQ_INT(proto_key_valid(t[i].s, strlen(t[i].s)), t[i].ok);
	}
	memset(k, 'x', sizeof(k));
	CHECK_EQ_INT(proto_key_valid(k, 64), 1);
	CHECK_EQ_INT(proto_key_valid(k, 65), 0);
	/* n bounds the key: bytes after it do not matter */
	CHECK_EQ_INT(proto_key_valid("ab/", 2), 1);
	CHECK_EQ_INT(proto_key_valid(NULL, 0), 0);
}

static void test_kinds(void)
{
	static const struct { const char *s; int ok; } t[] = {
		{ "animal", 1 }, { "sample", 1 }, { "plot_2", 1 }, { "x", 1 },
		{ "", 0 }, { "Animal", 0 }, { "SAMPLE", 0 }, { "a-b", 0 },
		{ "a b", 0 }, { "a.b", 0 }, { "messages", 0 },
		{ "0123456789abcdef0123456789abcdef", 1 },
		{ "0123456789abcdef0123456789abcdefg", 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (proto_kind_valid(t[i].s) != t[i].ok)
			fprintf(stderr, "kind \"%s\"\n", t[i].s);
		CHECK_EQ_INT(proto_kind_valid(t[i].s), t[i].ok);
	}
	CHECK_EQ_INT(proto_kind_valid(NULL), 0);
}

static void test_statuses(void)
{
	static const struct { const char *s; int st; } t[] = {
		{ "Waiting", GW_ST_WAITING }, { "loaded", GW_ST_LOADED },
		{ "LOADED", GW_ST_LOADED }, { "Submitted", GW_ST_SUBMITTED },
		{ "error", GW_ST_ERROR }, { "Need Revision", GW_ST_NEED_REVISION },
		{ "need_revision", GW_ST_NEED_REVISION },
		{ "NEED_REVISION", GW_ST_NEED_REVISION },
		{ "NEED REVISION", GW_ST_NEED_REVISION },
		{ "Need-Revision", GW_ST_NEED_REVISION },
		{ "ready", GW_ST_READY }, { "Completed", GW_ST_COMPLETED },
		{ "", -1 }, { "Done", -1 }, { "Need  Revision", -1 },
		{ "NeedRevision", -1 }, { "Need_ Revision", -1 }, { " Loaded", -1 },
		{ "Loaded ", -1 }, { "Load", -1 }, { "Loadedx", -1 },
		{ "Need Revision_", -1 }, { "need.revision", -1 },
	};
	size_t i;
	int st;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (proto_parse_status(t[i].s) != t[i].st)
			fprintf(stderr, "status \"%s\"\n", t[i].s);
		CHECK_EQ_INT(proto_parse_status(t[i].s), t[i].st);
	}
	CHECK_EQ_INT(proto_parse_status(NULL), -1);
	/* output is always the display form, and it parses back */
	for (st = 0; st < GW_ST_COUNT; st++)
		CHECK_EQ_INT(proto_parse_status(proto_status_name(st)), st);
	CHECK_EQ_STR(proto_status_name(GW_ST_NEED_REVISION), "Need Revision");
	CHECK_EQ_STR(proto_status_name(GW_ST_NONE), NULL);
	CHECK_EQ_STR(proto_status_name(GW_ST_COUNT), NULL);
}

static void test_results_types_errs(void)
{
	CHECK_EQ_INT(proto_parse_result("Pass"), GW_RES_PASS);
	CHECK_EQ_INT(proto_parse_result("pass"), GW_RES_PASS);
	CHECK_EQ_INT(proto_parse_result("WARNING"), GW_RES_WARNING);
	CHECK_EQ_INT(proto_parse_result("eRRor"), GW_RES_ERROR);
	CHECK_EQ_INT(proto_parse_result("Fine"), -1);
	CHECK_EQ_INT(proto_parse_result(""), -1);
	CHECK_EQ_INT(proto_parse_result("Unknown"), -1);
	CHECK_EQ_INT(proto_parse_result("Passed"), -1);
	CHECK_EQ_STR(proto_result_name(GW_RES_WARNING), "Warning");
	CHECK_EQ_STR(proto_result_name(GW_RES_UNKNOWN), NULL);

	CHECK_EQ_INT(proto_parse_type("validation"), GW_PUB_VALIDATION);
	CHECK_EQ_INT(proto_parse_type("reset"), GW_PUB_RESET);
	CHECK_EQ_INT(proto_parse_type("Status"), -1);
	CHECK_EQ_STR(proto_type_name(GW_PUB_NOTIFICATION), "notification");
	CHECK_EQ_STR(proto_type_name(GW_PUB_COUNT), NULL);

	CHECK_EQ_INT(proto_http_status(GW_OK), 200);
	CHECK_EQ_INT(proto_http_status(GW_EJSON), 400);
	CHECK_EQ_INT(proto_http_status(GW_EINVAL), 422);
	CHECK_EQ_INT(proto_http_status(GW_ETOOBIG), 413);
	CHECK_EQ_INT(proto_http_status(GW_EINTERNAL), 500);
	CHECK_EQ_STR(proto_err_name(GW_EJSON), "bad_json");
	CHECK_EQ_STR(proto_err_name(GW_EINVAL), "invalid");
	CHECK_EQ_STR(proto_err_name(GW_ETOOBIG), "too_large");
	CHECK_EQ_STR(proto_err_name(GW_EINTERNAL), "internal");
}

static void test_iso8601(void)
{
	char out[32];

	proto_iso8601(1795494135123LL, out);
	CHECK_EQ_STR(out, "2026-11-24T04:22:15.123Z");
	proto_iso8601(0, out);
	CHECK_EQ_STR(out, "1970-01-01T00:00:00.000Z");
	proto_iso8601(-1, out);
	CHECK_EQ_STR(out, "1969-12-31T23:59:59.999Z");
}

/* ---- decoding, accepted ---- */

#define ENV_OPEN "{\"from\":\"importer\",\"to\":\"statusgate\"," \
	"\"datetime\":\"2026-11-24T04:22:15Z\",\"body\":"
#define ENV_CLOSE "}"

/* decodes bare, then wrapped in an envelope; checks what both share */
static void decode_both(const char *body, int type, struct gw_pub *bare,
			struct gw_pub *env)
{
	char err[256], *wrapped;
	size_t n = strlen(ENV_OPEN) + strlen(body) + strlen(ENV_CLOSE) + 1;
	int rc;

	rc = decode(body, NULL, bare, err, sizeof(err));
	if (rc)
		fprintf(stderr, "bare %s: %s\n", body, err);
	CHECK_EQ_INT(rc, GW_OK);
	CHECK_EQ_INT(bare->type, type);
	CHECK_EQ_STR(bare->key, "42");
	CHECK(bare->from == NULL);

	wrapped = malloc(n);
	snprintf(wrapped, n, "%s%s%s", ENV_OPEN, body, ENV_CLOSE);
	rc = decode(wrapped, NULL, env, err, sizeof(err));
	if (rc)
		fprintf(stderr, "enveloped %s: %s\n", body, err);
	CHECK_EQ_INT(rc, GW_OK);
	CHECK_EQ_INT(env->type, type);
	CHECK_EQ_STR(env->key, "42");
	CHECK_EQ_STR(env->from, "importer");
	free(wrapped);
}

static void test_decode_types(void)
{
	struct gw_pub b, e;
	int i;

	decode_both("{\"type\":\"status\",\"submission\":\"42\","
		    "\"status\":\"need_revision\",\"notification\":\"Data loaded\","
		    "\"id\":\"job-7\",\"future\":[1,2]}", GW_PUB_STATUS, &b, &e);
	CHECK_EQ_INT(b.status, GW_ST_NEED_REVISION);
	CHECK_EQ_INT(e.status, GW_ST_NEED_REVISION);
	CHECK_EQ_STR(b.notification, "Data loaded");
	CHECK_EQ_STR(e.notification, "Data loaded");
	CHECK_EQ_STR(b.id, "job-7");
	CHECK_EQ_STR(e.id, "job-7");
	proto_pub_free(&b);
	proto_pub_free(&e);
	CHECK(b.root == NULL && b.recs == NULL);

	/* notification is optional on a status publish */
	decode_both("{\"type\":\"status\",\"submission\":\"42\",\"status\":\"Ready\"}",
		    GW_PUB_STATUS, &b, &e);
	CHECK_EQ_INT(b.status, GW_ST_READY);
	CHECK(b.notification == NULL && e.notification == NULL && b.id == NULL);
	proto_pub_free(&b);
	proto_pub_free(&e);

	decode_both("{\"type\":\"records\",\"submission\":\"42\",\"records\":["
		    "{\"kind\":\"animal\",\"name\":\"a1\"},"
		    "{\"kind\":\"sample\",\"name\":\"s 1\",\"status\":\"Pass\"}]}",
		    GW_PUB_RECORDS, &b, &e);
	CHECK_EQ_INT(b.nrec, 2);
	CHECK_EQ_INT(e.nrec, 2);
	CHECK_EQ_STR(b.recs[0].kind, "animal");
	CHECK_EQ_STR(b.recs[0].name, "a1");
	CHECK_EQ_STR(e.recs[1].kind, "sample");
	CHECK_EQ_STR(e.recs[1].name, "s 1");
	/* records carry no result even if a member says so */
	CHECK_EQ_INT(b.recs[1].result, GW_RES_UNKNOWN);
	CHECK(b.recs[1].nmsg == 0 && b.recs[1].msgs == NULL);
	proto_pub_free(&b);
	proto_pub_free(&e);

	decode_both("{\"type\":\"validation\",\"submission\":\"42\",\"results\":["
		    "{\"kind\":\"animal\",\"name\":\"a1\",\"status\":\"Error\","
		    " \"messages\":[{\"text\":\"bad date\",\"column\":\"birth\"},"
		    "              {\"text\":\"no sex\",\"column\":null},"
		    "              {\"text\":\"odd\"}]},"
		    "{\"kind\":\"animal\",\"name\":\"a2\",\"status\":\"pass\"},"
		    "{\"kind\":\"sample\",\"name\":\"s1\",\"status\":\"WARNING\","
		    " \"messages\":[{\"text\":\"late\",\"column\":\"\"}]}]}",
		    GW_PUB_VALIDATION, &b, &e);
	for (i = 0; i < 2; i++) {
		struct gw_pub *p = i ? &e : &b;

		CHECK_EQ_INT(p->nrec, 3);
		CHECK_EQ_INT(p->recs[0].result, GW_RES_ERROR);
		CHECK_EQ_INT(p->recs[0].nmsg, 3);
		CHECK_EQ_STR(p->recs[0].msgs[0].text, "bad date");
		CHECK_EQ_STR(p->recs[0].msgs[0].column, "birth");
		CHECK_EQ_STR(p->recs[0].msgs[1].text, "no sex");
		CHECK(p->recs[0].msgs[1].column == NULL);
		CHECK(p->recs[0].msgs[2].column == NULL);
		CHECK_EQ_INT(p->recs[1].result, GW_RES_PASS);
		CHECK(p->recs[1].nmsg == 0 && p->recs[1].msgs == NULL);
		CHECK_EQ_INT(p->recs[2].result, GW_RES_WARNING);
		CHECK_EQ_INT(p->recs[2].nmsg, 1);
		CHECK_EQ_STR(p->recs[2].msgs[0].text, "late");
		CHECK_EQ_STR(p->recs[2].msgs[0].column, "");
	}
	proto_pub_free(&b);
	proto_pub_free(&e);

	decode_both("{\"type\":\"notification\",\"submission\":\"42\","
		    "\"notification\":\"Validation started\"}",
		    GW_PUB_NOTIFICATION, &b, &e);
	CHECK_EQ_STR(b.notification, "Validation started");
	CHECK_EQ_STR(e.notification, "Validation started");
	CHECK_EQ_INT(b.status, GW_ST_NONE);
	proto_pub_free(&b);
	proto_pub_free(&e);

	decode_both("{\"type\":\"reset\",\"submission\":\"42\"}", GW_PUB_RESET,
		    &b, &e);
	CHECK(b.nrec == 0 && b.recs == NULL && b.notification == NULL);
	proto_pub_free(&b);
	proto_pub_free(&e);

	/* numeric submission from legacy backends */
	decode_both("{\"type\":\"reset\",\"submission\":42}", GW_PUB_RESET, &b, &e);
	proto_pub_free(&b);
	proto_pub_free(&e);
}

static void test_decode_key_hint(void)
{
	struct gw_pub p;
	char err[256];

	CHECK_EQ_INT(decode("{\"type\":\"reset\"}", "abc", &p, err, sizeof(err)),
		     GW_OK);
	CHECK_EQ_STR(p.key, "abc");
	proto_pub_free(&p);
	CHECK_EQ_INT(decode("{\"type\":\"reset\",\"submission\":\"abc\"}", "abc",
			    &p, err, sizeof(err)), GW_OK);
	CHECK_EQ_STR(p.key, "abc");
	proto_pub_free(&p);
	CHECK_EQ_INT(decode("{\"type\":\"reset\",\"submission\":17}", "17",
			    &p, err, sizeof(err)), GW_OK);
	CHECK_EQ_STR(p.key, "17");
	proto_pub_free(&p);

	EXPECT_FAIL("{\"type\":\"reset\",\"submission\":\"abc\"}", "abd",
		    GW_EINVAL, "submission: \"abc\" does not match");
	EXPECT_FAIL("{\"type\":\"reset\",\"submission\":17}", "18",
		    GW_EINVAL, "does not match");
	EXPECT_FAIL("{\"type\":\"reset\"}", "a/b", GW_EINVAL, "routing key");
	EXPECT_FAIL("{\"type\":\"reset\"}", NULL, GW_EINVAL, "submission: missing");
}

/* ---- decoding, rejected: every class with its code ---- */

static void test_decode_errors(void)
{
	struct gw_pub p;
	static const char small[] = "{\"type\":\"reset\",\"submission\":\"4\"}";
	char err[256], big[128], *longtext;
	size_t n;
	int rc, i;

	/* JSON level: 400 */
	EXPECT_FAIL("hello", NULL, GW_EJSON, "not valid JSON");
	EXPECT_FAIL("", NULL, GW_EJSON, "not valid JSON");
	EXPECT_FAIL("{\"type\":\"reset\",\"submission\":\"42\"", NULL, GW_EJSON,
		    "not valid JSON");
	EXPECT_FAIL("{\"type\":\"reset\",\"submission\":\"42\"} x", NULL,
		    GW_EJSON, "not valid JSON");
	EXPECT_FAIL("[{\"type\":\"reset\",\"submission\":\"42\"}]", NULL,
		    GW_EJSON, "got array");
	EXPECT_FAIL("\"reset\"", NULL, GW_EJSON, "got string");
	EXPECT_FAIL("{\"type\":\"reset\",\"submission\":\"4\xff\"}", NULL,
		    GW_EJSON, "not valid JSON");
	EXPECT_FAIL("{\"type\":\"reset\",\"submission\":\"42\",\"type\":\"reset\"}",
		    NULL, GW_EJSON, "duplicate");
	EXPECT_FAIL("{\"type\":\"reset\",\"submission\":\"4\\u00002\"}", NULL,
		    GW_EJSON, "not valid JSON");

	/* the reason stays printable ASCII even when jansson quotes raw bytes */
	rc = decode("{\"type\":\xc3\x28}", NULL, &p, err, sizeof(err));
	CHECK_EQ_INT(rc, GW_EJSON);
	for (n = 0; err[n]; n++)
		CHECK(err[n] >= 0x20 && err[n] <= 0x7e);

	/* size: 413, checked before parsing (this one is not even JSON) */
	memset(big, '{', sizeof(big));
	memset(&p, 0x5a, sizeof(p));
	rc = proto_decode_publish(big, sizeof(big), 100, NULL, &p, err,
				  sizeof(err));
	CHECK_EQ_INT(rc, GW_ETOOBIG);
	CHECK_EQ_STR(err, "publish is 128 bytes, limit 100");
	CHECK(p.root == NULL && p.recs == NULL);
	n = strlen(small);
	rc = proto_decode_publish(small, n, n, NULL, &p, err, sizeof(err));
	CHECK_EQ_INT(rc, GW_OK); /* exactly at the limit is fine */
	proto_pub_free(&p);

	/* content: 422 */
	EXPECT_FAIL("{\"submission\":\"42\"}", NULL, GW_EINVAL, "type: missing");
	EXPECT_FAIL("{\"type\":7,\"submission\":\"42\"}", NULL, GW_EINVAL,
		    "type: expected a string, got integer");
	EXPECT_FAIL("{\"type\":\"delete\",\"submission\":\"42\"}", NULL, GW_EINVAL,
		    "type: unknown type \"delete\"");
	EXPECT_FAIL("{\"type\":\"reset\",\"submission\":\"a/b\"}", NULL, GW_EINVAL,
		    "submission: \"a/b\" is not a valid key");
	EXPECT_FAIL("{\"type\":\"reset\",\"submission\":\"..\"}", NULL, GW_EINVAL,
		    "submission:");
	EXPECT_FAIL("{\"type\":\"reset\",\"submission\":\"\"}", NULL, GW_EINVAL,
		    "submission:");
	EXPECT_FAIL("{\"type\":\"reset\",\"submission\":-3}", NULL, GW_EINVAL,
		    "submission: expected a string or a non-negative integer");
	EXPECT_FAIL("{\"type\":\"reset\",\"submission\":4.5}", NULL, GW_EINVAL,
		    "got number");
	EXPECT_FAIL("{\"type\":\"reset\",\"submission\":\"42\",\"id\":\"\"}", NULL,
		    GW_EINVAL, "id: must not be empty");
	EXPECT_FAIL("{\"type\":\"reset\",\"submission\":\"42\",\"id\":\"a\\tb\"}",
		    NULL, GW_EINVAL, "id: must be printable");

	EXPECT_FAIL("{\"type\":\"status\",\"submission\":\"42\"}", NULL,
		    GW_EINVAL, "status: missing");
	EXPECT_FAIL("{\"type\":\"status\",\"submission\":\"42\",\"status\":\"Done\"}",
		    NULL, GW_EINVAL, "status: unknown status \"Done\"");
	EXPECT_FAIL("{\"type\":\"status\",\"submission\":\"42\",\"status\":null}",
		    NULL, GW_EINVAL, "status: expected a string, got null");
	EXPECT_FAIL("{\"type\":\"status\",\"submission\":\"42\",\"status\":\"Ready\","
		    "\"notification\":5}", NULL, GW_EINVAL,
		    "notification: expected a string");

	EXPECT_FAIL("{\"type\":\"records\",\"submission\":\"42\",\"records\":[]}",
		    NULL, GW_EINVAL, "records: must not be empty");
	EXPECT_FAIL("{\"type\":\"records\",\"submission\":\"42\",\"records\":{}}",
		    NULL, GW_EINVAL, "records: expected an array, got object");
	EXPECT_FAIL("{\"type\":\"records\",\"submission\":\"42\"}", NULL,
		    GW_EINVAL, "records: missing");
	EXPECT_FAIL("{\"type\":\"records\",\"submission\":\"42\",\"records\":["
		    "{\"kind\":\"animal\",\"name\":\"a1\"},{\"kind\":\"animal\"}]}",
		    NULL, GW_EINVAL, "records[1].name: missing");
	EXPECT_FAIL("{\"type\":\"records\",\"submission\":\"42\",\"records\":["
		    "{\"kind\":\"animal\",\"name\":\"\"}]}",
		    NULL, GW_EINVAL, "records[0].name: must not be empty");
	EXPECT_FAIL("{\"type\":\"records\",\"submission\":\"42\",\"records\":["
		    "{\"kind\":\"Animal\",\"name\":\"a1\"}]}", NULL, GW_EINVAL,
		    "records[0].kind: \"Animal\" is not a valid kind: only lower case");
	EXPECT_FAIL("{\"type\":\"records\",\"submission\":\"42\",\"records\":["
		    "\"a1\"]}", NULL, GW_EINVAL,
		    "records[0]: expected an object, got string");

	/* the reason quoted in the task, to the byte */
	rc = decode("{\"type\":\"validation\",\"submission\":\"42\",\"results\":["
		    "{\"kind\":\"animal\",\"name\":\"a0\",\"status\":\"Pass\"},"
		    "{\"kind\":\"animal\",\"name\":\"a1\",\"status\":\"Pass\"},"
		    "{\"kind\":\"animal\",\"name\":\"a2\",\"status\":\"Pass\"},"
		    "{\"kind\":\"animal\",\"name\":\"a3\",\"status\":\"Fine\"}]}",
		    NULL, &p, err, sizeof(err));
	CHECK_EQ_INT(rc, GW_EINVAL);
	CHECK_EQ_STR(err, "results[3].status: unknown result \"Fine\" "
		     "(expected Pass, Warning or Error)");
	CHECK(all_zero(&p.root, sizeof(p.root)) && p.recs == NULL);

	EXPECT_FAIL("{\"type\":\"validation\",\"submission\":\"42\",\"results\":["
		    "{\"kind\":\"animal\",\"name\":\"a1\"}]}", NULL, GW_EINVAL,
		    "results[0].status: missing");
	EXPECT_FAIL("{\"type\":\"validation\",\"submission\":\"42\",\"results\":["
		    "{\"kind\":\"animal\",\"name\":\"a1\",\"status\":\"Error\","
		    "\"messages\":[{\"text\":\"ok\"},{\"text\":12}]}]}", NULL,
		    GW_EINVAL, "results[0].messages[1].text: expected a string, got integer");
	EXPECT_FAIL("{\"type\":\"validation\",\"submission\":\"42\",\"results\":["
		    "{\"kind\":\"animal\",\"name\":\"a1\",\"status\":\"Error\","
		    "\"messages\":[{\"column\":\"c\"}]}]}", NULL,
		    GW_EINVAL, "results[0].messages[0].text: missing");
	EXPECT_FAIL("{\"type\":\"validation\",\"submission\":\"42\",\"results\":["
		    "{\"kind\":\"animal\",\"name\":\"a1\",\"status\":\"Error\","
		    "\"messages\":[{\"text\":\"t\",\"column\":[]}]}]}", NULL,
		    GW_EINVAL, "results[0].messages[0].column: expected a string");
	EXPECT_FAIL("{\"type\":\"validation\",\"submission\":\"42\",\"results\":["
		    "{\"kind\":\"animal\",\"name\":\"a1\",\"status\":\"Error\","
		    "\"messages\":\"bad\"}]}", NULL,
		    GW_EINVAL, "results[0].messages: expected an array");

	/* 65 messages on one result: too many */
	{
		char buf[4096];
		size_t off;

		off = (size_t)snprintf(buf, sizeof(buf),
				       "{\"type\":\"validation\",\"submission\":\"42\","
				       "\"results\":[{\"kind\":\"animal\",\"name\":\"a\","
				       "\"status\":\"Error\",\"messages\":[");
		for (i = 0; i < 65; i++)
			off += (size_t)snprintf(buf + off, sizeof(buf) - off,
						"%s{\"text\":\"m%d\"}", i ? "," : "", i);
		snprintf(buf + off, sizeof(buf) - off, "]}]}");
		EXPECT_FAIL(buf, NULL, GW_EINVAL,
			    "results[0].messages: too many items (65, limit 64)");
	}

	/* overlong notification: GW_TEXT_MAX + 1 bytes */
	n = GW_TEXT_MAX + 200;
	longtext = malloc(n);
	i = snprintf(longtext, n, "{\"type\":\"notification\",\"submission\":\"42\","
		     "\"notification\":\"");
	memset(longtext + i, 'x', GW_TEXT_MAX + 1);
	strcpy(longtext + i + GW_TEXT_MAX + 1, "\"}");
	EXPECT_FAIL(longtext, NULL, GW_EINVAL,
		    "notification: too long (4097 bytes, limit 4096)");
	/* exactly GW_TEXT_MAX is accepted */
	strcpy(longtext + i + GW_TEXT_MAX, "\"}");
	CHECK_EQ_INT(decode(longtext, NULL, &p, err, sizeof(err)), GW_OK);
	CHECK_EQ_INT(strlen(p.notification), GW_TEXT_MAX);
	proto_pub_free(&p);
	free(longtext);

	EXPECT_FAIL("{\"type\":\"notification\",\"submission\":\"42\"}", NULL,
		    GW_EINVAL, "notification: missing");

	/* envelope members are checked, and errors inside the body too */
	EXPECT_FAIL("{\"from\":3,\"body\":{\"type\":\"reset\",\"submission\":\"4\"}}",
		    NULL, GW_EINVAL, "from: expected a string");
	EXPECT_FAIL("{\"from\":\"x\",\"body\":{\"type\":\"nope\",\"submission\":\"4\"}}",
		    NULL, GW_EINVAL, "type: unknown type");
	/* a "body" that is neither an object nor a string makes it a bare
	 * publish, which lacks type */
	EXPECT_FAIL("{\"body\":3}", NULL, GW_EINVAL, "type: missing");
	/* a string body must hold a JSON object */
	EXPECT_FAIL("{\"body\":\"x\"}", NULL, GW_EINVAL, "body: a string body must hold a JSON object");
	EXPECT_FAIL("{\"body\":\"[1]\"}", NULL, GW_EINVAL, "body: a string body must hold a JSON object, not array");
	EXPECT_FAIL("{\"body\":\"{\\\"type\\\":\\\"nope\\\"}\"}", NULL, GW_EINVAL, "type: unknown type");
	/* datetime: a string or a number, nothing else */
	EXPECT_FAIL("{\"datetime\":true,\"body\":{\"type\":\"reset\",\"submission\":\"4\"}}",
		    NULL, GW_EINVAL, "datetime: expected a string");

	/* a long user value is cut in the reason */
	rc = decode("{\"type\":\"status\",\"submission\":\"42\",\"status\":"
		    "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
		    NULL, &p, err, sizeof(err));
	CHECK_EQ_INT(rc, GW_EINVAL);
	CHECK(strstr(err, "...\"") != NULL);

	/* a tiny reason buffer is still NUL-terminated */
	rc = decode("{\"type\":\"delete\",\"submission\":\"42\"}", NULL, &p, err, 8);
	CHECK_EQ_INT(rc, GW_EINVAL);
	CHECK_EQ_INT(strlen(err), 7);
}

/* 100,000 records pass; 100,001 are refused */
/* the envelope as existing queue-manager apps send it: body as a JSON
 * string holding the document, datetime as a unix time */
static void test_decode_app_envelope(void)
{
	static const char *forms[] = {
		"{\"from\":\"importer\",\"to\":\"statusgate\",\"datetime\":1795494135.25,"
		"\"body\":\"{\\\"type\\\":\\\"status\\\",\\\"submission\\\":\\\"42\\\","
		"\\\"status\\\":\\\"ready\\\",\\\"notification\\\":\\\"ok\\\"}\"}",
		"{\"from\":\"importer\",\"datetime\":1795494135,"
		"\"body\":{\"type\":\"status\",\"submission\":\"42\",\"status\":\"ready\","
		"\"notification\":\"ok\"}}",
	};
	struct gw_pub p;
	char err[256];

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		int rc = decode(forms[i], NULL, &p, err, sizeof(err));
		if (rc)
			fprintf(stderr, "form %zu: %s\n", i, err);
		CHECK_EQ_INT(rc, GW_OK);
		CHECK_EQ_INT(p.type, GW_PUB_STATUS);
		CHECK_EQ_STR(p.key, "42");
		CHECK_EQ_INT(p.status, GW_ST_READY);
		CHECK_EQ_STR(p.notification, "ok");
		CHECK_EQ_STR(p.from, "importer");
		proto_pub_free(&p);
	}
}

static int legacy(const char *json, const char *key, struct gw_pub *p, char *err, size_t n)
{
	return proto_decode_legacy(json, strlen(json), 1 << 20, key, p, err, n);
}

/* frames a legacy backend sends on /ws/submissions/{key}/ */
static void test_decode_legacy(void)
{
	struct gw_pub p;
	char err[256];

	CHECK_EQ_INT(legacy("{\"message\":\"Ready\",\"notification_message\":\"Checked\","
			    "\"validation_message\":{\"animals\":3,\"samples\":2,"
			    "\"animal_unkn\":1,\"sample_unkn\":0,\"animal_issues\":1,"
			    "\"sample_issues\":2}}", "42", &p, err, sizeof(err)), GW_OK);
	CHECK_EQ_INT(p.type, GW_PUB_STATUS);
	CHECK_EQ_STR(p.key, "42");
	CHECK_EQ_INT(p.status, GW_ST_READY);
	CHECK_EQ_STR(p.notification, "Checked");
	CHECK_EQ_INT(p.counts_set, 1);
	CHECK_EQ_INT(p.ncounts, 2);
	CHECK_EQ_STR(p.counts[0].kind, "animal");
	CHECK(p.counts[0].all == 3 && p.counts[0].unknown == 1 && p.counts[0].issues == 1);
	CHECK_EQ_STR(p.counts[1].kind, "sample");
	CHECK(p.counts[1].all == 2 && p.counts[1].unknown == 0 && p.counts[1].issues == 2);
	proto_pub_free(&p);

	/* "" says: no records, no counts */
	CHECK_EQ_INT(legacy("{\"message\":\"loaded\",\"notification_message\":\"\","
			    "\"validation_message\":\"\"}", "k", &p, err, sizeof(err)), GW_OK);
	CHECK(p.counts_set == 1 && p.ncounts == 0 && p.status == GW_ST_LOADED);
	CHECK_EQ_STR(p.notification, "");
	proto_pub_free(&p);
	/* absent or null: the stored counts stay */
	CHECK_EQ_INT(legacy("{\"message\":\"need_revision\"}", "k", &p, err, sizeof(err)), GW_OK);
	CHECK(p.counts_set == 0 && p.notification == NULL && p.status == GW_ST_NEED_REVISION);
	proto_pub_free(&p);
	CHECK_EQ_INT(legacy("{\"message\":\"Ready\",\"validation_message\":null}", "k", &p,
			    err, sizeof(err)), GW_OK);
	CHECK(p.counts_set == 0);
	proto_pub_free(&p);
	/* only the kinds it names */
	CHECK_EQ_INT(legacy("{\"message\":\"Ready\",\"validation_message\":{\"samples\":4}}",
			    "k", &p, err, sizeof(err)), GW_OK);
	CHECK(p.counts_set == 1 && p.ncounts == 1);
	CHECK_EQ_STR(p.counts[0].kind, "sample");
	CHECK(p.counts[0].all == 4 && p.counts[0].unknown == 0);
	proto_pub_free(&p);
	/* the new format is accepted on the socket too, with its key as the hint */
	CHECK_EQ_INT(legacy("{\"type\":\"notification\",\"notification\":\"y\"}", "k", &p,
			    err, sizeof(err)), GW_OK);
	CHECK(p.type == GW_PUB_NOTIFICATION && p.counts_set == 0);
	CHECK_EQ_STR(p.key, "k");
	proto_pub_free(&p);
	CHECK_EQ_INT(legacy("{\"type\":\"reset\",\"submission\":\"other\"}", "k", &p,
			    err, sizeof(err)), GW_EINVAL);

	/* refusals, each with its reason */
	CHECK_EQ_INT(legacy("{\"message\":\"Dancing\"}", "k", &p, err, sizeof(err)), GW_EINVAL);
	CHECK(strstr(err, "message: unknown status") != NULL);
	CHECK_EQ_INT(legacy("{\"notification_message\":\"x\"}", "k", &p, err, sizeof(err)), GW_EINVAL);
	CHECK(strstr(err, "message: missing") != NULL);
	CHECK_EQ_INT(legacy("{\"message\":\"Ready\",\"validation_message\":{\"animals\":-1}}",
			    "k", &p, err, sizeof(err)), GW_EINVAL);
	CHECK(strstr(err, "validation_message.animals") != NULL);
	CHECK_EQ_INT(legacy("{\"message\":\"Ready\",\"validation_message\":{\"animal_unkn\":\"2\"}}",
			    "k", &p, err, sizeof(err)), GW_EINVAL);
	CHECK(strstr(err, "validation_message.animal_unkn") != NULL);
	CHECK_EQ_INT(legacy("{\"message\":\"Ready\",\"validation_message\":7}",
			    "k", &p, err, sizeof(err)), GW_EINVAL);
	CHECK(strstr(err, "validation_message") != NULL);
	CHECK_EQ_INT(legacy("{\"message\":\"Ready\",\"notification_message\":5}",
			    "k", &p, err, sizeof(err)), GW_EINVAL);
	CHECK_EQ_INT(legacy("[1]", "k", &p, err, sizeof(err)), GW_EJSON);
	CHECK_EQ_INT(legacy("{\"message\":", "k", &p, err, sizeof(err)), GW_EJSON);
	CHECK_EQ_INT(legacy("{\"message\":\"Ready\"}", "bad key!", &p, err, sizeof(err)), GW_EINVAL);
	CHECK_EQ_INT(proto_decode_legacy("{\"message\":\"Ready\"}", 20, 10, "k", &p, err, sizeof(err)),
		     GW_ETOOBIG);
	CHECK(p.root == NULL);
}

static void test_decode_limits(void)
{
	static const char head[] = "{\"type\":\"records\",\"submission\":\"42\",\"records\":[";
	static const char item[] = "{\"kind\":\"animal\",\"name\":\"a\"},";
	size_t n = sizeof(head) + 100001 * (sizeof(item) - 1) + 4, off, i;
	char *buf = malloc(n), err[256];
	struct gw_pub p;
	int rc;

	off = (size_t)snprintf(buf, n, "%s", head);
	for (i = 0; i < 100000; i++)
		off += (size_t)snprintf(buf + off, n - off, "%s", item);
	strcpy(buf + off - 1, "]}");
	rc = proto_decode_publish(buf, strlen(buf), 0, NULL, &p, err, sizeof(err));
	CHECK_EQ_INT(rc, GW_OK);
	CHECK_EQ_INT(p.nrec, 100000);
	proto_pub_free(&p);

	off--;
	off += (size_t)snprintf(buf + off, n - off, ",%s", item);
	strcpy(buf + off - 1, "]}");
	rc = proto_decode_publish(buf, strlen(buf), 0, NULL, &p, err, sizeof(err));
	CHECK_EQ_INT(rc, GW_EINVAL);
	CHECK(strstr(err, "records: too many items (100001, limit 100000)") != NULL);
	free(buf);
}

/* ---- encoding ---- */

static void fill_state(struct gw_state *st)
{
	memset(st, 0, sizeof(*st));
	strcpy(st->key, "42");
	st->exists = 1;
	st->status = GW_ST_NEED_REVISION;
	st->notification = strdup("Please fix");
	strcpy(st->updated_at, "2026-11-24T04:22:15.123Z");
	st->seq = 26;
	st->nkinds = 3;
	strcpy(st->kinds[0].kind, "animal");
	st->kinds[0].all = 10;
	st->kinds[0].known = 7;
	st->kinds[0].pass = 4;
	st->kinds[0].warning = 1;
	st->kinds[0].error = 2;
	strcpy(st->kinds[1].kind, "sample");
	st->kinds[1].all = 5;
	strcpy(st->kinds[2].kind, "plot");
	st->kinds[2].all = 3;
	st->kinds[2].known = 3;
	st->kinds[2].error = 3;
	st->ntop = 2;
	strcpy(st->top[0].kind, "animal");
	st->top[0].text = strdup("bad date");
	st->top[0].column = strdup("birth");
	st->top[0].count = 2;
	strcpy(st->top[1].kind, "plot");
	st->top[1].text = strdup("no area");
	st->top[1].count = 3;
}

static void test_legacy(void)
{
	struct gw_state st;
	char *s;

	memset(&st, 0, sizeof(st));
	strcpy(st.key, "42");
	st.status = GW_ST_NONE;
	s = proto_encode_legacy(&st);
	CHECK_EQ_STR(s, "{\"message\":null,\"notification_message\":\"\","
		     "\"validation_message\":\"\"}");
	free(s);

	st.exists = 1;
	st.status = GW_ST_LOADED;
	st.notification = strdup("Data loaded");
	s = proto_encode_legacy(&st);
	CHECK_EQ_STR(s, "{\"message\":\"Loaded\",\"notification_message\":"
		     "\"Data loaded\",\"validation_message\":\"\"}");
	free(s);
	proto_state_clear(&st);
	CHECK(st.notification == NULL);

	/* kinds that exist but hold no records still mean "no records" */
	st.nkinds = 1;
	strcpy(st.kinds[0].kind, "animal");
	s = proto_encode_legacy(&st);
	CHECK(s && strstr(s, "\"validation_message\":\"\"}") != NULL);
	free(s);

	fill_state(&st);
	s = proto_encode_legacy(&st);
	CHECK_EQ_STR(s, "{\"message\":\"Need Revision\",\"notification_message\":"
		     "\"Please fix\",\"validation_message\":{\"animals\":10,"
		     "\"samples\":5,\"animal_unkn\":3,\"sample_unkn\":5,"
		     "\"animal_issues\":2,\"sample_issues\":0}}");
	free(s);

	/* records of other kinds only: counts object with zeros */
	st.nkinds = 1;
	st.kinds[0] = st.kinds[2];
	s = proto_encode_legacy(&st);
	CHECK(s && strstr(s, "\"validation_message\":{\"animals\":0,\"samples\":0,"
			  "\"animal_unkn\":0,\"sample_unkn\":0,"
			  "\"animal_issues\":0,\"sample_issues\":0}}") != NULL);
	free(s);
	proto_state_clear(&st);
	CHECK(st.ntop == 0 && st.nkinds == 0 && st.top[0].text == NULL);

	/* counts a legacy publisher reported come back exactly as sent, even
	 * all zeros (an object, not ""), and say so in the summary */
	memset(&st, 0, sizeof(st));
	strcpy(st.key, "42");
	st.exists = 1;
	st.status = GW_ST_READY;
	st.nkinds = 2;
	strcpy(st.kinds[0].kind, "animal");
	st.kinds[0].reported = 1;
	st.kinds[0].all = 3;
	st.kinds[0].known = 2;
	st.kinds[0].rep_unknown = 1;
	st.kinds[0].rep_issues = 1;
	strcpy(st.kinds[1].kind, "sample");
	st.kinds[1].reported = 1;
	s = proto_encode_legacy(&st);
	CHECK_EQ_STR(s, "{\"message\":\"Ready\",\"notification_message\":\"\","
		     "\"validation_message\":{\"animals\":3,\"samples\":0,"
		     "\"animal_unkn\":1,\"sample_unkn\":0,\"animal_issues\":1,"
		     "\"sample_issues\":0}}");
	free(s);
	{
		json_t *sum = proto_summary_json(&st), *a = json_object_get(sum, "animal");
		CHECK(json_is_true(json_object_get(a, "reported")));
		CHECK(jint(a, "all") == 3 && jint(a, "known") == 2 && jint(a, "unknown") == 1 &&
		      jint(a, "issues") == 1);
		CHECK(json_object_get(a, "pass") == NULL && json_object_get(a, "error") == NULL);
		json_decref(sum);
	}
	s = proto_encode_event(&st, "ep", GW_PUB_STATUS, "2026-11-24T04:22:15.123Z");
	CHECK(s && strstr(s, "\"animal\":{\"all\":3,\"known\":2,\"unknown\":1,"
			  "\"issues\":1,\"reported\":true}") != NULL);
	free(s);
	proto_state_clear(&st);
}

static void check_summary(json_t *sum)
{
	json_t *a = json_object_get(sum, "animal");
	json_t *plot = json_object_get(sum, "plot");
	json_t *msgs = json_object_get(sum, "messages");
	json_t *m;

	CHECK(json_is_object(a) && json_is_object(plot));
	CHECK_EQ_INT(json_object_size(sum), 4); /* 3 kinds + messages */
	CHECK_EQ_INT(jint(a, "all"), 10);
	CHECK_EQ_INT(jint(a, "known"), 7);
	CHECK_EQ_INT(jint(a, "unknown"), 3);
	CHECK_EQ_INT(jint(a, "pass"), 4);
	CHECK_EQ_INT(jint(a, "warning"), 1);
	CHECK_EQ_INT(jint(a, "error"), 2);
	CHECK_EQ_INT(jint(a, "issues"), 2);
	CHECK_EQ_INT(jint(plot, "issues"), 3);
	CHECK_EQ_INT(jint(json_object_get(sum, "sample"), "unknown"), 5);
	CHECK(json_is_array(msgs));
	CHECK_EQ_INT(json_array_size(msgs), 2);
	m = json_array_get(msgs, 0);
	CHECK_EQ_STR(jstr(m, "kind"), "animal");
	CHECK_EQ_STR(jstr(m, "text"), "bad date");
	CHECK_EQ_STR(jstr(m, "column"), "birth");
	CHECK_EQ_INT(jint(m, "count"), 2);
	m = json_array_get(msgs, 1);
	CHECK(json_is_null(json_object_get(m, "column")));
	CHECK_EQ_INT(jint(m, "count"), 3);
}

static void test_event_snapshot_state(void)
{
	/* key order as in SPEC 2.2 */
	static const char event_head[] =
		"{\"op\":\"event\",\"submission\":\"42\",\"epoch\":\"ep1\","
		"\"seq\":26,\"type\":\"validation\",\"status\":\"Need Revision\","
		"\"notification\":\"Please fix\",\"summary\":{\"animal\":{\"all\":10,"
		"\"known\":7,\"unknown\":3,\"pass\":4,\"warning\":1,\"error\":2,"
		"\"issues\":2},";
	struct gw_state st;
	json_t *j;
	char *s;

	fill_state(&st);

	s = proto_encode_event(&st, "ep1", GW_PUB_VALIDATION,
			       "2026-11-24T04:22:16.000Z");
	CHECK(s && strncmp(s, event_head, strlen(event_head)) == 0);
	CHECK(s && strstr(s, "\"at\":\"2026-11-24T04:22:16.000Z\"}") != NULL);
	j = parse_back(s);
	CHECK_EQ_STR(jstr(j, "op"), "event");
	CHECK_EQ_STR(jstr(j, "submission"), "42");
	CHECK_EQ_STR(jstr(j, "epoch"), "ep1");
	CHECK_EQ_INT(jint(j, "seq"), 26);
	CHECK_EQ_STR(jstr(j, "type"), "validation");
	CHECK_EQ_STR(jstr(j, "status"), "Need Revision");
	CHECK_EQ_STR(jstr(j, "notification"), "Please fix");
	CHECK_EQ_STR(jstr(j, "at"), "2026-11-24T04:22:16.000Z");
	check_summary(json_object_get(j, "summary"));
	json_decref(j);

	/* no "at": the state's updated_at */
	j = parse_back(proto_encode_event(&st, "ep1", GW_PUB_RESET, NULL));
	CHECK_EQ_STR(jstr(j, "at"), "2026-11-24T04:22:15.123Z");
	CHECK_EQ_STR(jstr(j, "type"), "reset");
	json_decref(j);

	j = parse_back(proto_encode_snapshot(&st, "ep1"));
	CHECK_EQ_STR(jstr(j, "op"), "snapshot");
	CHECK_EQ_STR(jstr(j, "submission"), "42");
	CHECK_EQ_STR(jstr(j, "epoch"), "ep1");
	CHECK_EQ_INT(jint(j, "seq"), 26);
	CHECK_EQ_STR(jstr(j, "status"), "Need Revision");
	CHECK_EQ_STR(jstr(j, "notification"), "Please fix");
	CHECK_EQ_STR(jstr(j, "updated_at"), "2026-11-24T04:22:15.123Z");
	CHECK(json_object_get(j, "type") == NULL);
	check_summary(json_object_get(j, "summary"));
	json_decref(j);

	j = proto_state_json(&st, "ep1");
	CHECK(j != NULL);
	CHECK_EQ_STR(jstr(j, "submission"), "42");
	CHECK(json_is_true(json_object_get(j, "exists")));
	CHECK_EQ_STR(jstr(j, "status"), "Need Revision");
	CHECK_EQ_STR(jstr(j, "epoch"), "ep1");
	CHECK_EQ_INT(jint(j, "seq"), 26);
	check_summary(json_object_get(j, "summary"));
	json_decref(j);
	proto_state_clear(&st);

	/* a submission never published to */
	memset(&st, 0, sizeof(st));
	strcpy(st.key, "new");
	st.status = GW_ST_NONE;
	j = parse_back(proto_encode_snapshot(&st, "ep1"));
	CHECK(json_is_null(json_object_get(j, "status")));
	CHECK_EQ_STR(jstr(j, "notification"), "");
	CHECK_EQ_INT(jint(j, "seq"), 0);
	CHECK(json_is_null(json_object_get(j, "updated_at")));
	CHECK_EQ_INT(json_object_size(json_object_get(j, "summary")), 1);
	CHECK_EQ_INT(json_array_size(json_object_get(
		json_object_get(j, "summary"), "messages")), 0);
	json_decref(j);
	j = proto_state_json(&st, "ep1");
	CHECK(json_is_false(json_object_get(j, "exists")));
	CHECK(json_is_null(json_object_get(j, "status")));
	json_decref(j);
}

/* the frames are written directly, not through jansson: they must still be
 * exactly what jansson's compact dump makes of the same document */
static void check_same_as_jansson(const char *text)
{
	json_error_t e;
	json_t *doc = text ? json_loads(text, 0, &e) : NULL;
	char *again = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

	CHECK(doc != NULL);
	CHECK_EQ_STR(again, text);
	free(again);
	json_decref(doc);
}

static void test_direct_encoding(void)
{
	static const char *const texts[] = {
		"", "plain", "quote \" backslash \\ slash /", "\b\f\n\r\t",
		"\x01\x1f\x7f", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x84", "<script>",
	};
	struct gw_state st;

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		memset(&st, 0, sizeof(st));
		snprintf(st.key, sizeof(st.key), "k-%zu", i);
		st.exists = 1;
		st.status = (int)(i % GW_ST_COUNT) - (i == 0);  /* includes GW_ST_NONE */
		st.notification = strdup(texts[i]);
		st.seq = 1000000007ull * i;
		snprintf(st.updated_at, sizeof(st.updated_at), "%s", i ? "2026-11-24T04:22:15.123Z" : "");
		st.nkinds = i % 3;
		for (size_t k = 0; k < st.nkinds; k++) {
			snprintf(st.kinds[k].kind, sizeof(st.kinds[k].kind), "%s", k ? "sample" : "animal");
			st.kinds[k].all = 100000 + (int64_t)k;
			st.kinds[k].known = 7;
			st.kinds[k].pass = 3;
			st.kinds[k].warning = 2;
			st.kinds[k].error = 2;
		}
		st.ntop = i % 4;
		for (size_t m = 0; m < st.ntop; m++) {
			snprintf(st.top[m].kind, sizeof(st.top[m].kind), "animal");
			st.top[m].text = strdup(texts[(i + m) % 7]);
			st.top[m].column = m % 2 ? strdup(texts[m]) : NULL;
			st.top[m].count = (int64_t)(10 - m);
		}
		char *ev = proto_encode_event(&st, i % 2 ? "abcdef" : NULL, (int)(i % GW_PUB_COUNT),
					      i % 2 ? "2026-11-24T04:22:16.000Z" : NULL);
		char *sn = proto_encode_snapshot(&st, "e");
		char *lg = proto_encode_legacy(&st);
		check_same_as_jansson(ev);
		check_same_as_jansson(sn);
		check_same_as_jansson(lg);
		/* and the summary inside equals proto_summary_json's */
		json_t *evj = ev ? json_loads(ev, 0, NULL) : NULL;
		json_t *sum = proto_summary_json(&st);
		CHECK(json_equal(json_object_get(evj, "summary"), sum));
		json_decref(sum);
		json_decref(evj);
		free(ev);
		free(sn);
		free(lg);
		proto_state_clear(&st);
	}
}

/* ---- /ws commands ---- */

/* decodes text; returns the code, and the reason in reason */
static int command(const char *text, struct gw_cmd *c, char *reason, size_t rlen)
{
	return proto_decode_command(text, strlen(text), c, reason, rlen);
}

/* a command that must be refused with code and exactly reason; op as given */
#define EXPECT_CMD_FAIL(text, code, op, want) \
	expect_cmd_fail_(__LINE__, text, code, op, want)
static void expect_cmd_fail_(int line, const char *text, int code, int op,
			     const char *want)
{
	struct gw_cmd c;
	char reason[200];
	int rc = command(text, &c, reason, sizeof(reason));

	CHECK_EQ_INT(rc, code);
	CHECK_EQ_INT(c.op, op);
	CHECK_EQ_STR(reason, want);
	if (rc != code || strcmp(reason, want))
		fprintf(stderr, "  line %d: %s\n", line, text);
	proto_cmd_free(&c);
}

static void test_command(void)
{
	struct gw_cmd c;
	char reason[200];

	CHECK_EQ_INT(command("{\"op\":\"subscribe\",\"id\":1,\"submission\":\"42\","
			     "\"since\":{\"epoch\":\"e1\",\"seq\":17},"
			     "\"filter\":{\"kinds\":[\"status\",\"validation\"]},"
			     "\"mode\":\"latest\"}", &c, reason, sizeof(reason)), GW_OK);
	CHECK_EQ_INT(c.op, GW_CMD_SUBSCRIBE);
	CHECK(json_is_integer(c.id) && json_integer_value(c.id) == 1);
	CHECK_EQ_STR(c.key, "42");
	CHECK(c.has_since);
	CHECK_EQ_STR(c.since_epoch, "e1");
	CHECK_EQ_INT(c.since_seq, 17);
	CHECK_EQ_INT(c.filter, (1u << GW_PUB_STATUS) | (1u << GW_PUB_VALIDATION));
	CHECK_EQ_INT(c.mode, GW_MODE_LATEST);
	proto_cmd_free(&c);
	CHECK(c.root == NULL && c.id == NULL && c.key == NULL);

	/* defaults: no since, every kind, mode all; null members are absent */
	CHECK_EQ_INT(command("{\"op\":\"subscribe\",\"id\":\"a\",\"submission\":\"k\","
			     "\"since\":null,\"filter\":null,\"mode\":null}",
			     &c, reason, sizeof(reason)), GW_OK);
	CHECK(json_is_string(c.id));
	CHECK(!c.has_since && c.since_epoch == NULL && c.filter == 0);
	CHECK_EQ_INT(c.mode, GW_MODE_ALL);
	proto_cmd_free(&c);
	CHECK_EQ_INT(command("{\"op\":\"subscribe\",\"submission\":\"k\",\"mode\":\"all\","
			     "\"filter\":{\"kinds\":[]},\"since\":{\"epoch\":\"\",\"seq\":0}}",
			     &c, reason, sizeof(reason)), GW_OK);
	CHECK(c.id == NULL && c.filter == 0 && c.has_since && c.since_seq == 0);
	proto_cmd_free(&c);
	/* an id of another type is dropped, the command still works */
	CHECK_EQ_INT(command("{\"op\":\"ping\",\"id\":[1]}", &c, reason, sizeof(reason)), GW_OK);
	CHECK(c.op == GW_CMD_PING && c.id == NULL && c.key == NULL);
	proto_cmd_free(&c);
	/* unsubscribe takes any string: not being subscribed is the answer */
	CHECK_EQ_INT(command("{\"op\":\"unsubscribe\",\"id\":2,\"submission\":\"not a key\"}",
			     &c, reason, sizeof(reason)), GW_OK);
	CHECK(c.op == GW_CMD_UNSUBSCRIBE);
	CHECK_EQ_STR(c.key, "not a key");
	proto_cmd_free(&c);

	/* not an object: no id can be read */
	CHECK_EQ_INT(command("[1]", &c, reason, sizeof(reason)), GW_EJSON);
	CHECK(c.id == NULL && c.op == -1);
	CHECK_EQ_STR(reason, "not a JSON object: wrong type");
	proto_cmd_free(&c);
	CHECK_EQ_INT(command("{\"op\":", &c, reason, sizeof(reason)), GW_EJSON);
	CHECK(strncmp(reason, "not a JSON object: ", 19) == 0 && strlen(reason) > 19);
	proto_cmd_free(&c);
	CHECK_EQ_INT(proto_decode_command("", 0, &c, reason, sizeof(reason)), GW_EJSON);
	proto_cmd_free(&c);
	/* duplicate members are refused, as for publishes */
	CHECK_EQ_INT(command("{\"op\":\"ping\",\"op\":\"subscribe\"}", &c, reason, sizeof(reason)),
		     GW_EJSON);
	proto_cmd_free(&c);
	/* the reason is printable ASCII even when jansson quotes raw bytes */
	CHECK_EQ_INT(command("{\"op\":\x01\xff}", &c, reason, sizeof(reason)), GW_EJSON);
	for (const char *p = reason; *p; p++)
		CHECK((unsigned char)*p >= 0x20 && (unsigned char)*p <= 0x7e);
	proto_cmd_free(&c);

	/* the reasons /ws has always sent, in the same order */
	EXPECT_CMD_FAIL("{\"id\":1}", GW_EINVAL, -1, "op is required");
	EXPECT_CMD_FAIL("{\"op\":7}", GW_EINVAL, -1, "op is required");
	EXPECT_CMD_FAIL("{\"op\":\"Subscribe\"}", GW_EINVAL, -1,
			"unknown op (subscribe, unsubscribe, ping)");
	EXPECT_CMD_FAIL("{\"op\":\"unsubscribe\"}", GW_EINVAL, GW_CMD_UNSUBSCRIBE,
			"submission is required");
	EXPECT_CMD_FAIL("{\"op\":\"subscribe\"}", GW_EINVAL, GW_CMD_SUBSCRIBE,
			"submission must be a key of [A-Za-z0-9_.-]{1,64}");
	EXPECT_CMD_FAIL("{\"op\":\"subscribe\",\"submission\":42}", GW_EINVAL, GW_CMD_SUBSCRIBE,
			"submission must be a key of [A-Za-z0-9_.-]{1,64}");
	EXPECT_CMD_FAIL("{\"op\":\"subscribe\",\"submission\":\"..\"}", GW_EINVAL,
			GW_CMD_SUBSCRIBE, "submission must be a key of [A-Za-z0-9_.-]{1,64}");
	EXPECT_CMD_FAIL("{\"op\":\"subscribe\",\"submission\":\"k\",\"filter\":[\"status\"]}",
			GW_EINVAL, GW_CMD_SUBSCRIBE, "filter must be {\"kinds\":[event types]}");
	EXPECT_CMD_FAIL("{\"op\":\"subscribe\",\"submission\":\"k\",\"filter\":{\"kinds\":\"status\"}}",
			GW_EINVAL, GW_CMD_SUBSCRIBE, "filter must be {\"kinds\":[event types]}");
	EXPECT_CMD_FAIL("{\"op\":\"subscribe\",\"submission\":\"k\","
			"\"filter\":{\"kinds\":[\"status\",\"Status\"]}}",
			GW_EINVAL, GW_CMD_SUBSCRIBE, "filter.kinds[1]: unknown event type");
	EXPECT_CMD_FAIL("{\"op\":\"subscribe\",\"submission\":\"k\",\"since\":17}",
			GW_EINVAL, GW_CMD_SUBSCRIBE,
			"since must be {\"epoch\":string,\"seq\":integer >= 0}");
	EXPECT_CMD_FAIL("{\"op\":\"subscribe\",\"submission\":\"k\",\"since\":{\"epoch\":\"e\",\"seq\":-1}}",
			GW_EINVAL, GW_CMD_SUBSCRIBE,
			"since must be {\"epoch\":string,\"seq\":integer >= 0}");
	EXPECT_CMD_FAIL("{\"op\":\"subscribe\",\"submission\":\"k\",\"since\":{\"epoch\":1,\"seq\":1}}",
			GW_EINVAL, GW_CMD_SUBSCRIBE,
			"since must be {\"epoch\":string,\"seq\":integer >= 0}");
	EXPECT_CMD_FAIL("{\"op\":\"subscribe\",\"submission\":\"k\",\"since\":{\"epoch\":\"e\",\"seq\":1.5}}",
			GW_EINVAL, GW_CMD_SUBSCRIBE,
			"since must be {\"epoch\":string,\"seq\":integer >= 0}");
	EXPECT_CMD_FAIL("{\"op\":\"subscribe\",\"submission\":\"k\",\"mode\":\"Latest\"}",
			GW_EINVAL, GW_CMD_SUBSCRIBE, "mode must be \"all\" or \"latest\"");
	EXPECT_CMD_FAIL("{\"op\":\"subscribe\",\"submission\":\"k\",\"mode\":1}",
			GW_EINVAL, GW_CMD_SUBSCRIBE, "mode must be \"all\" or \"latest\"");
	/* several faults: the key is named first, then the filter */
	EXPECT_CMD_FAIL("{\"op\":\"subscribe\",\"filter\":1,\"since\":1}", GW_EINVAL,
			GW_CMD_SUBSCRIBE, "submission must be a key of [A-Za-z0-9_.-]{1,64}");
	EXPECT_CMD_FAIL("{\"op\":\"subscribe\",\"submission\":\"k\",\"filter\":1,\"since\":1}",
			GW_EINVAL, GW_CMD_SUBSCRIBE, "filter must be {\"kinds\":[event types]}");
	/* a failed command keeps its id for the error reply */
	CHECK_EQ_INT(command("{\"op\":\"nope\",\"id\":9}", &c, reason, sizeof(reason)), GW_EINVAL);
	CHECK(json_integer_value(c.id) == 9);
	proto_cmd_free(&c);
	/* a short reason buffer is cut, still terminated; NULL is allowed */
	CHECK_EQ_INT(command("{}", &c, reason, 5), GW_EINVAL);
	CHECK_EQ_STR(reason, "op i");
	proto_cmd_free(&c);
	CHECK_EQ_INT(command("{}", &c, NULL, 0), GW_EINVAL);
	proto_cmd_free(&c);
	proto_cmd_free(NULL);
}

/* ---- AMQP deliveries ---- */

static void test_routing_hint(void)
{
	char key[GW_KEY_MAX + 1], rk[128];

	CHECK_EQ_INT(proto_routing_hint("submission.42.status", 20, key), 0);
	CHECK_EQ_STR(key, "42");
	/* keys may hold dots: the type follows the last one */
	CHECK_EQ_INT(proto_routing_hint("submission.a.b.c.records", 24, key), 0);
	CHECK_EQ_STR(key, "a.b.c");
	/* not NUL-terminated: only len bytes are read */
	CHECK_EQ_INT(proto_routing_hint("submission.42.resetXYZ", 19, key), 0);
	CHECK_EQ_STR(key, "42");
	static const char *const bad[] = {
		"submission.42", "submission.42.", "submission..status",
		"submission.42.Status", "submission.42.unknown", "Submission.42.status",
		"submission.", "submission", "", "submission.a b.status",
		"submission.42.status.", "other.42.status",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		strcpy(key, "stale");
		CHECK_EQ_INT(proto_routing_hint(bad[i], strlen(bad[i]), key), -1);
		CHECK_EQ_STR(key, "");
	}
	CHECK_EQ_INT(proto_routing_hint(NULL, 0, key), -1);
	/* a type longer than any type name is not copied anywhere */
	snprintf(rk, sizeof(rk), "submission.42.%090d", 0);
	CHECK_EQ_INT(proto_routing_hint(rk, strlen(rk), key), -1);
	/* the longest key */
	snprintf(rk, sizeof(rk), "submission.%0*d.reset", GW_KEY_MAX, 5);
	CHECK_EQ_INT(proto_routing_hint(rk, strlen(rk), key), 0);
	CHECK_EQ_INT(strlen(key), GW_KEY_MAX);
	snprintf(rk, sizeof(rk), "submission.%0*d.reset", GW_KEY_MAX + 1, 5);
	CHECK_EQ_INT(proto_routing_hint(rk, strlen(rk), key), -1);
}

static int delivery(const char *body, const char *rk, const char *mid,
		    struct gw_pub *p, char *err, size_t errlen)
{
	struct gw_delivery d = {
		.body = body, .body_len = strlen(body),
		.routing_key = rk, .routing_key_len = rk ? strlen(rk) : 0,
		.has_message_id = mid != NULL,
		.message_id = mid, .message_id_len = mid ? strlen(mid) : 0,
	};

	return proto_decode_delivery(&d, 1 << 20, p, err, errlen);
}

static void test_delivery(void)
{
	const char *st = "{\"type\":\"status\",\"status\":\"Loaded\"}";
	char err[200], mid[GW_ID_MAX + 2];
	struct gw_pub p;

	/* the key from the routing key, the id from message_id */
	CHECK_EQ_INT(delivery(st, "submission.42.status", "m-1", &p, err, sizeof(err)), GW_OK);
	CHECK_EQ_STR(p.key, "42");
	CHECK_EQ_STR(p.id, "m-1");
	proto_pub_free(&p);
	/* the body's id wins, and then message_id is not even looked at */
	CHECK_EQ_INT(delivery("{\"type\":\"reset\",\"submission\":\"7\",\"id\":\"body\"}",
			      "x", "bad id", &p, err, sizeof(err)), GW_OK);
	CHECK_EQ_STR(p.id, "body");
	CHECK_EQ_STR(p.key, "7");
	proto_pub_free(&p);
	/* no message_id: no id */
	CHECK_EQ_INT(delivery(st, "submission.42.status", NULL, &p, err, sizeof(err)), GW_OK);
	CHECK(p.id == NULL);
	proto_pub_free(&p);
	/* a body key that disagrees with the routing key */
	CHECK_EQ_INT(delivery("{\"type\":\"reset\",\"submission\":\"7\"}", "submission.8.reset",
			      NULL, &p, err, sizeof(err)), GW_EINVAL);
	CHECK(strstr(err, "routing key") != NULL);
	/* an unusable routing key gives no hint */
	CHECK_EQ_INT(delivery(st, "statusgate", NULL, &p, err, sizeof(err)), GW_EINVAL);
	CHECK(strstr(err, "submission: missing") != NULL);
	/* message_id: 1..GW_ID_MAX bytes of printable ASCII without spaces */
	CHECK_EQ_INT(delivery(st, "submission.42.status", "", &p, err, sizeof(err)), GW_EINVAL);
	CHECK_EQ_STR(err, "message_id: must be 1 to 128 bytes");
	CHECK(p.root == NULL && p.recs == NULL);
	CHECK_EQ_INT(delivery(st, "submission.42.status", "a b", &p, err, sizeof(err)), GW_EINVAL);
	CHECK_EQ_STR(err, "message_id: must be printable ASCII");
	CHECK(p.root == NULL);
	memset(mid, 'm', GW_ID_MAX);
	mid[GW_ID_MAX] = '\0';
	CHECK_EQ_INT(delivery(st, "submission.42.status", mid, &p, err, sizeof(err)), GW_OK);
	CHECK_EQ_INT(strlen(p.id), GW_ID_MAX);
	proto_pub_free(&p);
	mid[GW_ID_MAX] = 'm';
	mid[GW_ID_MAX + 1] = '\0';
	CHECK_EQ_INT(delivery(st, "submission.42.status", mid, &p, err, sizeof(err)), GW_EINVAL);
	/* an empty message_id property whose bytes pointer is NULL */
	{
		struct gw_delivery d = {
			.body = st, .body_len = strlen(st),
			.routing_key = "submission.42.status", .routing_key_len = 20,
			.has_message_id = 1, .message_id = NULL, .message_id_len = 0,
		};
		CHECK_EQ_INT(proto_decode_delivery(&d, 0, &p, err, sizeof(err)), GW_EINVAL);
		d.body = NULL;
		d.body_len = 0;
		CHECK_EQ_INT(proto_decode_delivery(&d, 0, &p, err, sizeof(err)), GW_EJSON);
	}
	/* the size limit holds for deliveries too */
	{
		struct gw_delivery d = { .body = st, .body_len = strlen(st) };
		CHECK_EQ_INT(proto_decode_delivery(&d, 10, &p, err, sizeof(err)), GW_ETOOBIG);
	}
}

static void test_rpc(void)
{
	char key[GW_KEY_MAX + 1];
	const char *detail;
	int method = -1;

#define RPC(text, max) proto_decode_rpc(text, strlen(text), max, &method, key, &detail)
	CHECK_EQ_INT(RPC("{\"method\":\"get_submission\",\"submission\":\"42\"}", 4096), 0);
	CHECK_EQ_INT(method, GW_RPC_GET);
	CHECK_EQ_STR(key, "42");
	CHECK(detail == NULL);
	CHECK_EQ_INT(RPC("{\"method\":\"presence\",\"submission\":\"a.b\",\"x\":1}", 4096), 0);
	CHECK_EQ_INT(method, GW_RPC_PRESENCE);
	CHECK_EQ_STR(key, "a.b");
	CHECK_EQ_INT(RPC("{\"method\":\"presence\",\"submission\":\"42\"}", 10), -1);
	CHECK_EQ_STR(detail, "request too large");
	CHECK_EQ_STR(key, "");
	CHECK_EQ_INT(RPC("[]", 4096), -1);
	CHECK_EQ_STR(detail, "the request is not a JSON object");
	CHECK_EQ_INT(RPC("{", 4096), -1);
	CHECK_EQ_STR(detail, "the request is not a JSON object");
	CHECK_EQ_INT(RPC("{\"submission\":\"42\"}", 4096), -1);
	CHECK_EQ_STR(detail, "\"method\" is missing (get_submission or presence)");
	CHECK_EQ_INT(RPC("{\"method\":\"drop\",\"submission\":\"42\"}", 4096), -1);
	CHECK_EQ_STR(detail, "unknown \"method\" (get_submission or presence)");
	CHECK_EQ_INT(RPC("{\"method\":\"presence\",\"submission\":42}", 4096), -1);
	CHECK_EQ_STR(detail, "\"submission\" must be a key of 1 to 64 characters [A-Za-z0-9_.-]");
	CHECK_EQ_INT(RPC("{\"method\":\"presence\",\"submission\":\"..\"}", 4096), -1);
	CHECK(detail != NULL);
	CHECK_EQ_INT(proto_decode_rpc(NULL, 0, 4096, &method, key, &detail), -1);
	CHECK_EQ_STR(detail, "the request is not a JSON object");
#undef RPC
}

/* SSE framing: id, one data: line per line of the data, the blank line */
static void test_sse_encode(void)
{
	char *s;

	s = proto_encode_sse("ab12:7", "{\"op\":\"event\"}", 14);
	CHECK_EQ_STR(s, "id: ab12:7\ndata: {\"op\":\"event\"}\n\n");
	free(s);
	s = proto_encode_sse(NULL, "one\ntwo\r\nthree\rfour", 19);
	CHECK_EQ_STR(s, "data: one\ndata: two\ndata: three\ndata: four\n\n");
	free(s);
	/* a trailing line end adds no empty line; an empty line inside stays */
	s = proto_encode_sse(NULL, "a\n\nb\n", 5);
	CHECK_EQ_STR(s, "data: a\ndata: \ndata: b\n\n");
	free(s);
	s = proto_encode_sse("x:1", "", 0);
	CHECK_EQ_STR(s, "id: x:1\ndata: \n\n");
	free(s);
	/* an id that would end its line early is refused */
	CHECK(proto_encode_sse("a\nb:1", "{}", 2) == NULL);
	CHECK(proto_encode_sse("a\rb:1", "{}", 2) == NULL);
	/* an event frame as the gateway sends it, and its id read back */
	{
		char id[GW_EVENT_ID_MAX], epoch[GW_EPOCH_MAX + 1];
		uint64_t seq = 0;

		proto_event_id("cb559ee13a3be5cc9ffd7dfea3d3a837", 18446744073709551615ull, id, sizeof(id));
		CHECK_EQ_STR(id, "cb559ee13a3be5cc9ffd7dfea3d3a837:18446744073709551615");
		CHECK_EQ_INT(proto_parse_event_id(id, epoch, sizeof(epoch), &seq), 0);
		CHECK_EQ_STR(epoch, "cb559ee13a3be5cc9ffd7dfea3d3a837");
		CHECK(seq == 18446744073709551615ull);
	}
}

/* Last-Event-ID: "<epoch>:<seq>" or nothing usable */
static void test_parse_event_id(void)
{
	char epoch[GW_EPOCH_MAX + 1] = "unchanged";
	char small[4];
	char long_epoch[GW_EPOCH_MAX + 8];
	uint64_t seq = 99;

	CHECK_EQ_INT(proto_parse_event_id("e1:0", epoch, sizeof(epoch), &seq), 0);
	CHECK_EQ_STR(epoch, "e1");
	CHECK_EQ_INT(seq, 0);
	CHECK_EQ_INT(proto_parse_event_id("A-b_9:25", epoch, sizeof(epoch), &seq), 0);
	CHECK_EQ_STR(epoch, "A-b_9");
	CHECK_EQ_INT(seq, 25);
	seq = 99;
	strcpy(epoch, "unchanged");
	static const char *const bad[] = {
		"", ":", "e1", "e1:", ":5", "e1:-1", "e1:+1", "e1: 5", "e1:5 ", "e1:0x10",
		"e 1:5", "e1:18446744073709551616", "e1:99999999999999999999", "é:1", "e1:5:",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = proto_parse_event_id(bad[i], epoch, sizeof(epoch), &seq);
		if (r != -1)
			fprintf(stderr, "accepted bad event id \"%s\"\n", bad[i]);
		CHECK_EQ_INT(r, -1);
	}
	CHECK_EQ_INT(proto_parse_event_id(NULL, epoch, sizeof(epoch), &seq), -1);
	CHECK_EQ_STR(epoch, "unchanged");
	CHECK_EQ_INT(seq, 99);
	/* the epoch must fit: the caller's buffer and GW_EPOCH_MAX */
	CHECK_EQ_INT(proto_parse_event_id("abcd:1", small, sizeof(small), &seq), -1);
	CHECK_EQ_INT(proto_parse_event_id("abc:1", small, sizeof(small), &seq), 0);
	CHECK_EQ_STR(small, "abc");
	memset(long_epoch, 'a', GW_EPOCH_MAX + 1);
	strcpy(long_epoch + GW_EPOCH_MAX + 1, ":1");
	CHECK_EQ_INT(proto_parse_event_id(long_epoch, epoch, sizeof(epoch), &seq), -1);
	long_epoch[GW_EPOCH_MAX] = ':';
	long_epoch[GW_EPOCH_MAX + 1] = '2';
	long_epoch[GW_EPOCH_MAX + 2] = '\0';
	CHECK_EQ_INT(proto_parse_event_id(long_epoch, epoch, sizeof(epoch), &seq), 0);
	CHECK_EQ_INT(seq, 2);
	CHECK_EQ_INT(strlen(epoch), GW_EPOCH_MAX);
}

int main(void)
{
	test_keys();
	test_kinds();
	test_statuses();
	test_results_types_errs();
	test_iso8601();
	test_decode_types();
	test_decode_key_hint();
	test_decode_errors();
	test_decode_limits();
	test_decode_app_envelope();
	test_decode_legacy();
	test_legacy();
	test_event_snapshot_state();
	test_direct_encoding();
	test_command();
	test_routing_hint();
	test_delivery();
	test_rpc();
	test_sse_encode();
	test_parse_event_id();
	return check_report();
}
