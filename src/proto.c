/*
 * Wire formats, pure (jansson only, no lws/AMQP/SQLite).
 *
 * Decoding parses a publish once with jansson and walks the tree, checking
 * every member against the limits in proto.h. Each failure names the field
 * with its array index ("results[3].status: ..."), so a backend author can fix
 * a publish from the 422 body or the dead-letter log line alone. Decoded
 * strings are not copied: they point into the jansson tree that the gw_pub
 * owns, and all records and messages of a publish share one allocation.
 *
 * Encoding builds jansson objects in the key order the spec shows and dumps
 * them compact with JSON_PRESERVE_ORDER, so frames are stable byte for byte
 * (legacy pages and stored events are compared textually).
 */
#include "proto.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROTO_MAX_RECS 100000 /* records/results in one publish */
#define PROTO_MAX_MSGS 64     /* messages on one validation result */
#define PROTO_QUOTE_MAX 40    /* bytes of a user value echoed in a reason */

static const char *const status_names[GW_ST_COUNT] = {
	"Waiting", "Loaded", "Submitted", "Error", "Need Revision", "Ready",
	"Completed",
};

/* GW_RES_UNKNOWN has no display name: "no result yet" is not a result */
static const char *const result_names[GW_RES_COUNT] = {
	NULL, "Pass", "Warning", "Error",
};

static const char *const type_names[GW_PUB_COUNT] = {
	"status", "records", "validation", "notification", "reset",
};

/* ---- names and keys ---- */

/* ASCII only: tolower() would depend on the locale */
static int ascii_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int ascii_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

/*
 * Case-insensitive match of in against a display name in which each space may
 * also be written as '_' or '-' (exactly one separator), so "Need Revision",
 * "need_revision", "NEED-REVISION" all match.
 */
static int name_matches(const char *in, const char *name)
{
	for (; *name; name++, in++) {
		if (*name == ' ') {
			if (*in != ' ' && *in != '_' && *in != '-')
				return 0;
		} else if (ascii_lower((unsigned char)*in) !=
			   ascii_lower((unsigned char)*name)) {
			return 0;
		}
	}
	return *in == '\0';
}

/* index of s in names[0..n) per name_matches, or -1 */
static int lookup_name(const char *s, const char *const *names, int n)
{
	int i;

	if (!s)
		return -1;
	for (i = 0; i < n; i++)
		if (names[i] && name_matches(s, names[i]))
			return i;
	return -1;
}

/* NULL if s[0..n) is a valid key, else why not */
static const char *key_problem(const char *s, size_t n)
{
	size_t i;

	if (!s || n == 0)
		return "empty";
	if (n > GW_KEY_MAX)
		return "longer than 64 bytes";
	/* keys end up in URL paths: "." and ".." would be path segments */
	if (s[0] == '.' && (n == 1 || (n == 2 && s[1] == '.')))
		return "\".\" and \"..\" are not keys";
	for (i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (!ascii_alnum(c) && c != '_' && c != '.' && c != '-')
			return "only A-Z, a-z, 0-9, '_', '.' and '-' are allowed";
	}
	return NULL;
}

/* NULL if s is a valid kind, else why not */
static const char *kind_problem(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	size_t i;

	if (n == 0)
		return "empty";
	if (n > GW_KIND_MAX)
		return "longer than 32 bytes";
	for (i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (!(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9') && c != '_')
			return "only lower case a-z, 0-9 and '_' are allowed";
	}
	/* the summary object keys kinds by name next to its "messages" array */
	if (strcmp(s, "messages") == 0)
		return "\"messages\" is reserved";
	return NULL;
}

int proto_key_valid(const char *s, size_t n)
{
	return key_problem(s, n) == NULL;
}

int proto_kind_valid(const char *s)
{
	return kind_problem(s) == NULL;
}

int proto_parse_status(const char *s)
{
	return lookup_name(s, status_names, GW_ST_COUNT);
}

const char *proto_status_name(int st)
{
	return st >= 0 && st < GW_ST_COUNT ? status_names[st] : NULL;
}

int proto_parse_result(const char *s)
{
	return lookup_name(s, result_names, GW_RES_COUNT);
}

const char *proto_result_name(int res)
{
	return res >= 0 && res < GW_RES_COUNT ? result_names[res] : NULL;
}

/* types are protocol tokens, not display names: exact match only */
int proto_parse_type(const char *s)
{
	int i;

	for (i = 0; s && i < GW_PUB_COUNT; i++)
		if (strcmp(s, type_names[i]) == 0)
			return i;
	return -1;
}

const char *proto_type_name(int type)
{
	return type >= 0 && type < GW_PUB_COUNT ? type_names[type] : NULL;
}

int proto_http_status(int err)
{
	switch (err) {
	case GW_OK: return 200;
	case GW_EJSON: return 400;
	case GW_EINVAL: return 422;
	case GW_ETOOBIG: return 413;
	default: return 500;
	}
}

const char *proto_err_name(int err)
{
	switch (err) {
	case GW_OK: return "ok";
	case GW_EJSON: return "bad_json";
	case GW_EINVAL: return "invalid";
	case GW_ETOOBIG: return "too_large";
	default: return "internal";
	}
}

/* ---- decoding ---- */

struct dec {
	char *err;     /* caller's reason buffer */
	size_t errlen;
};

/*
 * Reason lines go to logs and into JSON error bodies: keep them printable
 * ASCII so that neither a hostile value nor a jansson message quoting raw
 * input bytes can forge log lines or break json_string() on invalid UTF-8.
 */
static void sanitize(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			*s = '?';
}

static int vfail(struct dec *d, int code, const char *where,
		 const char *member, const char *fmt, va_list ap)
{
	size_t n = 0;
	int k;

	if (!d->err || d->errlen == 0)
		return code;
	if (where || member) {
		k = snprintf(d->err, d->errlen, "%s%s%s: ", where ? where : "",
			     where && *where && member ? "." : "",
			     member ? member : "");
		n = k < 0 ? 0 : (size_t)k;
	}
	if (n < d->errlen)
		vsnprintf(d->err + n, d->errlen - n, fmt, ap);
	sanitize(d->err);
	return code;
}

/* whole-publish failure (size, JSON syntax): no field to name */
static int fail(struct dec *d, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(struct dec *d, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(d, code, NULL, NULL, fmt, ap);
	va_end(ap);
	return code;
}

/* content failure at where.member (where "" = top level, member may be NULL) */
static int fail_at(struct dec *d, const char *where, const char *member,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail_at(struct dec *d, const char *where, const char *member,
		   const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(d, GW_EINVAL, where, member, fmt, ap);
	va_end(ap);
	return GW_EINVAL;
}

/* a user value for a reason line, cut to PROTO_QUOTE_MAX bytes */
static const char *quote(char dst[PROTO_QUOTE_MAX + 4], const char *s)
{
	size_t n = strlen(s);

	if (n <= PROTO_QUOTE_MAX)
		return s;
	memcpy(dst, s, PROTO_QUOTE_MAX);
	memcpy(dst + PROTO_QUOTE_MAX, "...", 4);
	return dst;
}

static const char *json_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "object";
	case JSON_ARRAY: return "array";
	case JSON_STRING: return "string";
	case JSON_INTEGER: return "integer";
	case JSON_REAL: return "number";
	case JSON_TRUE:
	case JSON_FALSE: return "boolean";
	default: return "null";
	}
}

/*
 * where.member as a string of min..max bytes into *out. An absent member (or
 * null, when optional) gives *out = NULL; required ones must be there.
 */
static int get_str(struct dec *d, json_t *obj, const char *where,
		   const char *member, size_t min, size_t max, int required,
		   const char **out)
{
	json_t *v = json_object_get(obj, member);
	size_t n;

	*out = NULL;
	if (!v || (!required && json_is_null(v)))
		return required ? fail_at(d, where, member, "missing") : GW_OK;
	if (!json_is_string(v))
		return fail_at(d, where, member, "expected a string, got %s",
			       json_type_name(v));
	n = json_string_length(v);
	if (n < min)
		return fail_at(d, where, member, "must not be empty");
	if (n > max)
		return fail_at(d, where, member, "too long (%zu bytes, limit %zu)",
			       n, max);
	*out = json_string_value(v);
	return GW_OK;
}

/* where.member as an array of at most max items (non-empty if required) */
static int get_array(struct dec *d, json_t *obj, const char *where,
		     const char *member, size_t max, int required, json_t **out)
{
	json_t *v = json_object_get(obj, member);
	size_t n;

	*out = NULL;
	if (!v || (!required && json_is_null(v)))
		return required ? fail_at(d, where, member, "missing") : GW_OK;
	if (!json_is_array(v))
		return fail_at(d, where, member, "expected an array, got %s",
			       json_type_name(v));
	n = json_array_size(v);
	if (required && n == 0)
		return fail_at(d, where, member, "must not be empty");
	if (n > max)
		return fail_at(d, where, member, "too many items (%zu, limit %zu)",
			       n, max);
	*out = v;
	return GW_OK;
}

/*
 * Envelope {"from","to","datetime","body"}: "from" and "to", when present,
 * must be strings, "datetime" a string or a number (apps send ISO 8601 text
 * or a unix time); "from" is kept for logs. The publish id is deliberately not
 * read here: the envelope is transport metadata a relay may rewrite, while
 * the id belongs to the content it deduplicates, so it stays in the body.
 */
static int decode_envelope(struct dec *d, json_t *env, struct gw_pub *out)
{
	const char *ignored;
	int rc;

	rc = get_str(d, env, "", "from", 0, GW_NAME_MAX, 0, &out->from);
	if (!rc)
		rc = get_str(d, env, "", "to", 0, GW_NAME_MAX, 0, &ignored);
	if (!rc && !json_is_number(json_object_get(env, "datetime")))
		rc = get_str(d, env, "", "datetime", 0, 64, 0, &ignored);
	return rc;
}

/*
 * "submission": a string, or a non-negative JSON integer (legacy backends
 * send their numeric primary keys). key_hint (the AMQP routing key) fills in
 * a missing one and must agree with a present one.
 */
static int decode_key(struct dec *d, json_t *msg, const char *hint,
		      struct gw_pub *out)
{
	json_t *v = json_object_get(msg, "submission");
	char num[32], q1[PROTO_QUOTE_MAX + 4], q2[PROTO_QUOTE_MAX + 4];
	const char *key, *why;
	size_t n;

	if (!v || json_is_null(v)) {
		if (!hint)
			return fail_at(d, "", "submission", "missing");
		key = hint;
	} else if (json_is_string(v)) {
		key = json_string_value(v);
	} else if (json_is_integer(v) && json_integer_value(v) >= 0) {
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
			 json_integer_value(v));
		key = num;
	} else {
		return fail_at(d, "", "submission",
			       "expected a string or a non-negative integer, got %s",
			       json_type_name(v));
	}
	n = strlen(key);
	why = key_problem(key, n);
	if (why)
		return fail_at(d, "", "submission", "\"%s\"%s is not a valid key: %s",
			       quote(q1, key), key == hint ? " (from the routing key)" : "",
			       why);
	if (hint && key != hint && strcmp(key, hint) != 0)
		return fail_at(d, "", "submission",
			       "\"%s\" does not match the routing key's \"%s\"",
			       quote(q1, key), quote(q2, hint));
	memcpy(out->key, key, n + 1);
	return GW_OK;
}

/* "id": 1..GW_ID_MAX printable ASCII bytes, like an AMQP message_id */
static int decode_id(struct dec *d, json_t *msg, struct gw_pub *out)
{
	const char *p;
	int rc;

	rc = get_str(d, msg, "", "id", 1, GW_ID_MAX, 0, &out->id);
	for (p = out->id; !rc && p && *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			rc = fail_at(d, "", "id", "must be printable ASCII");
	return rc;
}

static int decode_status(struct dec *d, json_t *msg, struct gw_pub *out)
{
	char q[PROTO_QUOTE_MAX + 4];
	const char *s;
	int rc;

	rc = get_str(d, msg, "", "status", 1, SIZE_MAX, 1, &s);
	if (rc)
		return rc;
	out->status = proto_parse_status(s);
	if (out->status < 0)
		return fail_at(d, "", "status",
			       "unknown status \"%s\" (expected Waiting, Loaded, "
			       "Submitted, Error, Need Revision, Ready or Completed)",
			       quote(q, s));
	return get_str(d, msg, "", "notification", 0, GW_TEXT_MAX, 0,
		       &out->notification);
}

/* where = "results[i].messages[j]" */
static int decode_msgtext(struct dec *d, json_t *m, const char *where,
			  struct gw_msgtext *t)
{
	int rc;

	if (!json_is_object(m))
		return fail_at(d, where, NULL, "expected an object, got %s",
			       json_type_name(m));
	rc = get_str(d, m, where, "text", 1, GW_TEXT_MAX, 1, &t->text);
	if (!rc)
		rc = get_str(d, m, where, "column", 0, GW_COLUMN_MAX, 0, &t->column);
	return rc;
}

/*
 * One item of "records" or "results" (with_result). Messages go to *next,
 * the caller's cursor in the shared message block, which has room for them
 * (see count_msgs).
 */
static int decode_rec(struct dec *d, json_t *item, const char *where,
		      int with_result, struct gw_rec *r,
		      struct gw_msgtext **next)
{
	char q[PROTO_QUOTE_MAX + 4], mwhere[96]; /* where + ".messages[N]" */
	const char *s, *why;
	json_t *msgs, *m;
	size_t j;
	int rc;

	if (!json_is_object(item))
		return fail_at(d, where, NULL, "expected an object, got %s",
			       json_type_name(item));
	rc = get_str(d, item, where, "kind", 1, SIZE_MAX, 1, &r->kind);
	if (rc)
		return rc;
	why = kind_problem(r->kind);
	if (why)
		return fail_at(d, where, "kind", "\"%s\" is not a valid kind: %s",
			       quote(q, r->kind), why);
	rc = get_str(d, item, where, "name", 1, GW_NAME_MAX, 1, &r->name);
	r->result = GW_RES_UNKNOWN;
	if (rc || !with_result)
		return rc;

	rc = get_str(d, item, where, "status", 1, SIZE_MAX, 1, &s);
	if (rc)
		return rc;
	r->result = proto_parse_result(s);
	if (r->result < 0)
		return fail_at(d, where, "status",
			       "unknown result \"%s\" (expected Pass, Warning or Error)",
			       quote(q, s));
	rc = get_array(d, item, where, "messages", PROTO_MAX_MSGS, 0, &msgs);
	if (rc || !msgs || json_array_size(msgs) == 0)
		return rc;
	r->msgs = *next;
	r->nmsg = json_array_size(msgs);
	*next += r->nmsg;
	json_array_foreach(msgs, j, m) {
		snprintf(mwhere, sizeof(mwhere), "%s.messages[%zu]", where, j);
		rc = decode_msgtext(d, m, mwhere, &r->msgs[j]);
		if (rc)
			return rc;
	}
	return GW_OK;
}

/*
 * Upper bound of the messages decode_rec will store: every array it accepts
 * has at most PROTO_MAX_MSGS items, so counting min(size, max) per item
 * reserves enough without trusting unvalidated sizes.
 */
static size_t count_msgs(json_t *arr)
{
	size_t i, n = 0, k;
	json_t *item;

	json_array_foreach(arr, i, item) {
		k = json_array_size(json_object_get(item, "messages"));
		n += k < PROTO_MAX_MSGS ? k : PROTO_MAX_MSGS;
	}
	return n;
}

/* "records" (member "records") or "validation" (member "results") */
static int decode_recs(struct dec *d, json_t *msg, const char *member,
		       int with_result, struct gw_pub *out)
{
	struct gw_msgtext *next;
	char where[48];
	json_t *arr, *item;
	size_t i, nrec, nmsg;
	int rc;

	rc = get_array(d, msg, "", member, PROTO_MAX_RECS, 1, &arr);
	if (rc)
		return rc;
	nrec = json_array_size(arr);
	nmsg = with_result ? count_msgs(arr) : 0;
	/* one block: records, then every record's messages; freed as recs */
	out->recs = calloc(1, nrec * sizeof(*out->recs) + nmsg * sizeof(*next));
	if (!out->recs)
		return fail(d, GW_EINTERNAL, "out of memory for %zu records", nrec);
	out->nrec = nrec;
	next = (struct gw_msgtext *)(out->recs + nrec);
	json_array_foreach(arr, i, item) {
		snprintf(where, sizeof(where), "%s[%zu]", member, i);
		rc = decode_rec(d, item, where, with_result, &out->recs[i], &next);
		if (rc)
			return rc;
	}
	return GW_OK;
}

/* msg: the publish object itself (the envelope's body, or the bare root) */
static int decode_body(struct dec *d, json_t *msg, const char *key_hint,
		       struct gw_pub *out)
{
	char q[PROTO_QUOTE_MAX + 4];
	const char *s;
	int rc;

	rc = get_str(d, msg, "", "type", 1, SIZE_MAX, 1, &s);
	if (rc)
		return rc;
	out->type = proto_parse_type(s);
	if (out->type < 0)
		return fail_at(d, "", "type",
			       "unknown type \"%s\" (expected status, records, "
			       "validation, notification or reset)", quote(q, s));
	rc = decode_key(d, msg, key_hint, out);
	if (!rc)
		rc = decode_id(d, msg, out);
	if (rc)
		return rc;

	switch (out->type) {
	case GW_PUB_STATUS:
		return decode_status(d, msg, out);
	case GW_PUB_RECORDS:
		return decode_recs(d, msg, "records", 0, out);
	case GW_PUB_VALIDATION:
		return decode_recs(d, msg, "results", 1, out);
	case GW_PUB_NOTIFICATION:
		return get_str(d, msg, "", "notification", 0, GW_TEXT_MAX, 1,
			       &out->notification);
	default: /* GW_PUB_RESET carries nothing else */
		return GW_OK;
	}
}

/*
 * The start of every decode: *out cleared, the size checked before any
 * parse (an oversized body must not cost one), the JSON parsed into
 * out->root and required to be an object. jansson also rejects invalid
 * UTF-8, \u0000 and trailing garbage; JSON_DECODE_ANY lets a scalar through
 * to the clearer "must be a JSON object" reason, still GW_EJSON. what names
 * the thing in reasons ("publish", "frame"). GW_OK, or a gw_err with *out
 * needing no freeing.
 */
static int load_object(struct dec *d, const char *buf, size_t len, size_t max,
		       const char *what, struct gw_pub *out)
{
	json_error_t je;
	int rc;

	memset(out, 0, sizeof(*out));
	out->status = GW_ST_NONE;
	if (d->err && d->errlen)
		d->err[0] = '\0';
	if (max && len > max)
		return fail(d, GW_ETOOBIG, "%s is %zu bytes, limit %zu", what, len, max);
	out->root = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (!out->root)
		return fail(d, GW_EJSON, "not valid JSON: %s (line %d, column %d)",
			    je.text, je.line, je.column);
	if (!json_is_object(out->root)) {
		rc = fail(d, GW_EJSON, "%s must be a JSON object, got %s",
			  !strcmp(what, "frame") ? "a frame" : what, json_type_name(out->root));
		proto_pub_free(out);
		return rc;
	}
	return GW_OK;
}

int proto_decode_publish(const char *buf, size_t len, size_t max,
			 const char *key_hint, struct gw_pub *out,
			 char *err, size_t errlen)
{
	struct dec d = { err, errlen };
	json_error_t je;
	json_t *msg, *body;
	int rc;

	if ((rc = load_object(&d, buf, len, max, "publish", out)) != GW_OK)
		return rc;
	/* an object with a "body" object is an envelope; anything else is bare.
	 * Existing apps also send the body as a JSON string holding the
	 * object: it is parsed and put in place of the string, so the strings
	 * of *out still all live in root. */
	msg = out->root;
	body = json_object_get(msg, "body");
	if (json_is_string(body) && !json_object_get(msg, "type")) {
		json_t *inner = json_loadb(json_string_value(body), json_string_length(body),
					   JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
		if (!inner) {
			rc = fail_at(&d, "", "body", "a string body must hold a JSON object: %s",
				     je.text);
			goto fail;
		}
		if (!json_is_object(inner)) {
			rc = fail_at(&d, "", "body", "a string body must hold a JSON object, not %s",
				     json_type_name(inner));
			json_decref(inner);
			goto fail;
		}
		if (json_object_set_new(msg, "body", inner)) {
			rc = fail(&d, GW_EINTERNAL, "out of memory");
			goto fail;
		}
		body = inner;
	}
	if (json_is_object(body)) {
		rc = decode_envelope(&d, msg, out);
		if (rc)
			goto fail;
		msg = body;
	}
	/* unknown members are ignored, so newer backends can add fields */
	rc = decode_body(&d, msg, key_hint, out);
	if (rc)
		goto fail;
	return GW_OK;
fail:
	proto_pub_free(out);
	return rc;
}

void proto_pub_free(struct gw_pub *p)
{
	if (!p)
		return;
	json_decref(p->root);
	free(p->recs); /* the messages live in the same block */
	memset(p, 0, sizeof(*p));
	p->status = GW_ST_NONE;
}

/* ---- the legacy backend frame ---- */

/* validation_message.member: a count, a non-negative integer (absent: 0) */
static int legacy_count(struct dec *d, json_t *vm, const char *member, int64_t *out, int *seen)
{
	json_t *v = json_object_get(vm, member);

	*out = 0;
	if (!v || json_is_null(v))
		return GW_OK;
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > ((json_int_t)1 << 53))
		return fail_at(d, "validation_message", member,
			       "expected a count (an integer from 0 to 2^53), got %s",
			       json_is_integer(v) ? "an integer out of range" : json_type_name(v));
	*out = (int64_t)json_integer_value(v);
	*seen = 1;
	return GW_OK;
}

static int legacy_counts(struct dec *d, json_t *vm, struct gw_pub *out)
{
	static const struct { const char *kind, *all, *unkn, *issues; } kinds[2] = {
		{ "animal", "animals", "animal_unkn", "animal_issues" },
		{ "sample", "samples", "sample_unkn", "sample_issues" },
	};
	int rc = GW_OK;

	if (!vm || json_is_null(vm))
		return GW_OK;               /* leave the stored counts alone */
	if (json_is_string(vm) && json_string_length(vm) == 0) {
		out->counts_set = 1;        /* "": no records, no counts */
		return GW_OK;
	}
	if (!json_is_object(vm))
		return fail_at(d, "", "validation_message",
			       "expected an object of counts or \"\", got %s", json_type_name(vm));
	out->counts_set = 1;
	for (size_t i = 0; i < 2 && !rc; i++) {
		struct gw_counts *c = &out->counts[out->ncounts];
		int seen = 0;

		rc = legacy_count(d, vm, kinds[i].all, &c->all, &seen);
		if (!rc)
			rc = legacy_count(d, vm, kinds[i].unkn, &c->unknown, &seen);
		if (!rc)
			rc = legacy_count(d, vm, kinds[i].issues, &c->issues, &seen);
		if (!rc && seen) {
			c->kind = kinds[i].kind;
			out->ncounts++;
		}
	}
	return rc;
}

int proto_decode_legacy(const char *buf, size_t len, size_t max, const char *key,
			struct gw_pub *out, char *err, size_t errlen)
{
	struct dec d = { err, errlen };
	char q[PROTO_QUOTE_MAX + 4];
	const char *s;
	int rc;

	if ((rc = load_object(&d, buf, len, max, "frame", out)) != GW_OK)
		return rc;
	if (json_object_get(out->root, "type") || json_object_get(out->root, "body")) {
		/* a publish of the new format, bare or in an envelope */
		proto_pub_free(out);
		return proto_decode_publish(buf, len, max, key, out, err, errlen);
	}
	if (!key || !proto_key_valid(key, strlen(key))) {
		rc = fail(&d, GW_EINVAL, "no valid submission key for this frame");
		goto fail;
	}
	memcpy(out->key, key, strlen(key) + 1);
	out->type = GW_PUB_STATUS;
	rc = get_str(&d, out->root, "", "message", 1, SIZE_MAX, 1, &s);
	if (rc)
		goto fail;
	out->status = proto_parse_status(s);
	if (out->status < 0) {
		rc = fail_at(&d, "", "message",
			     "unknown status \"%s\" (expected Waiting, Loaded, "
			     "Submitted, Error, Need Revision, Ready or Completed)", quote(q, s));
		goto fail;
	}
	rc = get_str(&d, out->root, "", "notification_message", 0, GW_TEXT_MAX, 0,
		     &out->notification);
	if (!rc)
		rc = legacy_counts(&d, json_object_get(out->root, "validation_message"), out);
	if (rc)
		goto fail;
	return GW_OK;
fail:
	proto_pub_free(out);
	return rc;
}

/* ---- state and encoding ---- */

void proto_state_clear(struct gw_state *st)
{
	size_t i;

	if (!st)
		return;
	free(st->notification);
	st->notification = NULL;
	for (i = 0; i < st->ntop && i < GW_TOP_MSGS; i++) {
		free(st->top[i].text);
		free(st->top[i].column);
	}
	memset(st->top, 0, sizeof(st->top));
	memset(st->kinds, 0, sizeof(st->kinds));
	st->ntop = 0;
	st->nkinds = 0;
}

void proto_iso8601(int64_t ms, char out[32])
{
	int64_t secs = ms / 1000, rem = ms % 1000;
	time_t t;
	struct tm tm;
	size_t n;

	if (rem < 0) { /* floor, so -1 ms is 23:59:59.999 of the day before */
		rem += 1000;
		secs--;
	}
	t = (time_t)secs;
	if (!gmtime_r(&t, &tm)) {
		out[0] = '\0';
		return;
	}
	/* strftime bounds the year's width, which gcc cannot see through %d */
	n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	if (n == 0 || n + 6 > 32) {
		out[0] = '\0';
		return;
	}
	snprintf(out + n, 32 - n, ".%03dZ", (int)rem);
}

static const struct gw_kind_sum *find_kind(const struct gw_state *st,
					   const char *kind)
{
	size_t i;

	for (i = 0; i < st->nkinds && i < GW_MAX_KINDS; i++)
		if (strcmp(st->kinds[i].kind, kind) == 0)
			return &st->kinds[i];
	return NULL;
}

/* computed here rather than via summary.c so that proto links alone */
static int64_t kind_unknown(const struct gw_kind_sum *k)
{
	if (!k)
		return 0;
	return k->reported ? k->rep_unknown : k->all - k->known;
}

static int64_t kind_issues(const struct gw_kind_sum *k)
{
	if (!k)
		return 0;
	return k->reported ? k->rep_issues : k->known - k->pass - k->warning;
}

static int64_t kind_all(const struct gw_kind_sum *k)
{
	return k ? k->all : 0;
}

/*
 * json_object_set_new() that remembers a failure, so an encoder builds the
 * whole document and checks once. set_new releases val even on failure and
 * rejects a NULL val (an allocation that failed).
 */
static void put(json_t *obj, const char *key, json_t *val, int *ok)
{
	if (json_object_set_new(obj, key, val) != 0)
		*ok = 0;
}

static json_t *str_or_null(const char *s)
{
	return s && *s ? json_string(s) : json_null();
}

static json_t *int_json(int64_t v)
{
	return json_integer((json_int_t)v);
}

static json_t *status_json(const struct gw_state *st)
{
	return str_or_null(proto_status_name(st->status));
}

static json_t *notification_json(const struct gw_state *st)
{
	return json_string(st->notification ? st->notification : "");
}

static json_t *kind_json(const struct gw_kind_sum *k)
{
	json_t *o = json_object();
	int ok = o != NULL;

	put(o, "all", int_json(k->all), &ok);
	put(o, "known", int_json(k->known), &ok);
	put(o, "unknown", int_json(kind_unknown(k)), &ok);
	if (k->reported) {
		/* counts a legacy publisher sent: no pass/warning/error split */
		put(o, "issues", int_json(kind_issues(k)), &ok);
		put(o, "reported", json_true(), &ok);
	} else {
		put(o, "pass", int_json(k->pass), &ok);
		put(o, "warning", int_json(k->warning), &ok);
		put(o, "error", int_json(k->error), &ok);
		put(o, "issues", int_json(kind_issues(k)), &ok);
	}
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *top_json(const struct gw_top_msg *t)
{
	json_t *o = json_object();
	int ok = o != NULL;

	put(o, "kind", json_string(t->kind), &ok);
	put(o, "text", json_string(t->text ? t->text : ""), &ok);
	put(o, "column", str_or_null(t->column), &ok);
	put(o, "count", int_json(t->count), &ok);
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *proto_summary_json(const struct gw_state *st)
{
	json_t *sum = json_object(), *msgs = json_array();
	int ok = sum && msgs;
	size_t i;

	for (i = 0; ok && i < st->nkinds && i < GW_MAX_KINDS; i++)
		put(sum, st->kinds[i].kind, kind_json(&st->kinds[i]), &ok);
	for (i = 0; ok && i < st->ntop && i < GW_TOP_MSGS; i++)
		if (json_array_append_new(msgs, top_json(&st->top[i])) != 0)
			ok = 0;
	put(sum, "messages", msgs, &ok);
	if (!ok) {
		json_decref(sum);
		return NULL;
	}
	return sum;
}

/*
 * The frames sent to browsers are written straight into one growing buffer
 * instead of being built as a jansson tree and dumped: they are made for
 * every publish on the writer thread, and the tree costs an allocation per
 * member. The output is byte for byte what json_dumps(JSON_COMPACT |
 * JSON_PRESERVE_ORDER) gives for the same document (test_proto checks).
 */
struct sb {
	char *p;
	size_t len, cap;
	int oom;
};

static void sb_raw(struct sb *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 512;
		char *np;

		while (cap < b->len + n + 1)
			cap *= 2;
		np = realloc(b->p, cap);
		if (!np) {
			b->oom = 1;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

#define SB_LIT(b, lit) sb_raw((b), (lit), sizeof(lit) - 1)

/* a JSON string; the input is valid UTF-8 (decoded or stored by us) */
static void sb_str(struct sb *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	const char *run = s;

	SB_LIT(b, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[6];
		size_t n = 2;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		sb_raw(b, run, (size_t)(s - run));
		run = s + 1;
		esc[0] = '\\';
		switch (c) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			n = 6;
		}
		sb_raw(b, esc, n);
	}
	sb_raw(b, run, (size_t)(s - run));
	SB_LIT(b, "\"");
}

static void sb_str_or_null(struct sb *b, const char *s)
{
	if (s && *s)
		sb_str(b, s);
	else
		SB_LIT(b, "null");
}

static void sb_int(struct sb *b, int64_t v)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%lld", (long long)v);

	sb_raw(b, num, (size_t)n);
}

/* ,"name":<integer> */
static void sb_member_int(struct sb *b, const char *name, int64_t v)
{
	SB_LIT(b, ",\"");
	sb_raw(b, name, strlen(name));
	SB_LIT(b, "\":");
	sb_int(b, v);
}

/* the NUL-terminated text (malloc'd), or NULL when memory ran out */
static char *sb_finish(struct sb *b)
{
	sb_raw(b, "", 1);
	if (b->oom) {
		free(b->p);
		return NULL;
	}
	return b->p;
}

static void sb_kind(struct sb *b, const struct gw_kind_sum *k)
{
	SB_LIT(b, "{\"all\":");
	sb_int(b, k->all);
	sb_member_int(b, "known", k->known);
	sb_member_int(b, "unknown", kind_unknown(k));
	if (k->reported) {
		sb_member_int(b, "issues", kind_issues(k));
		SB_LIT(b, ",\"reported\":true}");
		return;
	}
	sb_member_int(b, "pass", k->pass);
	sb_member_int(b, "warning", k->warning);
	sb_member_int(b, "error", k->error);
	sb_member_int(b, "issues", kind_issues(k));
	SB_LIT(b, "}");
}

/* the same document as proto_summary_json */
static void sb_summary(struct sb *b, const struct gw_state *st)
{
	size_t i;

	SB_LIT(b, "{");
	for (i = 0; i < st->nkinds && i < GW_MAX_KINDS; i++) {
		sb_str(b, st->kinds[i].kind);
		SB_LIT(b, ":");
		sb_kind(b, &st->kinds[i]);
		SB_LIT(b, ",");
	}
	SB_LIT(b, "\"messages\":[");
	for (i = 0; i < st->ntop && i < GW_TOP_MSGS; i++) {
		const struct gw_top_msg *t = &st->top[i];

		SB_LIT(b, "{\"kind\":");
		sb_str(b, t->kind);
		SB_LIT(b, ",\"text\":");
		sb_str(b, t->text ? t->text : "");
		SB_LIT(b, ",\"column\":");
		sb_str_or_null(b, t->column);
		sb_member_int(b, "count", t->count);
		SB_LIT(b, "}");
		if (i + 1 < st->ntop && i + 1 < GW_TOP_MSGS)
			SB_LIT(b, ",");
	}
	SB_LIT(b, "]}");
}

char *proto_encode_legacy(const struct gw_state *st)
{
	const struct gw_kind_sum *a = find_kind(st, "animal");
	const struct gw_kind_sum *s = find_kind(st, "sample");
	struct sb b = { 0 };
	int any = 0;

	for (size_t i = 0; i < st->nkinds && i < GW_MAX_KINDS; i++)
		any |= st->kinds[i].all > 0 || st->kinds[i].reported;
	SB_LIT(&b, "{\"message\":");
	sb_str_or_null(&b, proto_status_name(st->status));
	SB_LIT(&b, ",\"notification_message\":");
	sb_str(&b, st->notification ? st->notification : "");
	SB_LIT(&b, ",\"validation_message\":");
	if (!any) {
		/* "" while the submission has no records at all */
		SB_LIT(&b, "\"\"}");
		return sb_finish(&b);
	}
	SB_LIT(&b, "{\"animals\":");
	sb_int(&b, kind_all(a));
	sb_member_int(&b, "samples", kind_all(s));
	sb_member_int(&b, "animal_unkn", kind_unknown(a));
	sb_member_int(&b, "sample_unkn", kind_unknown(s));
	sb_member_int(&b, "animal_issues", kind_issues(a));
	sb_member_int(&b, "sample_issues", kind_issues(s));
	SB_LIT(&b, "}}");
	return sb_finish(&b);
}

/* {"op":op,"submission":..,"epoch":..,"seq":.. : the head of events and snapshots */
static void sb_head(struct sb *b, const char *op, const struct gw_state *st,
		    const char *epoch)
{
	SB_LIT(b, "{\"op\":");
	sb_str(b, op);
	SB_LIT(b, ",\"submission\":");
	sb_str(b, st->key);
	SB_LIT(b, ",\"epoch\":");
	sb_str_or_null(b, epoch);
	sb_member_int(b, "seq", (int64_t)st->seq);
}

/* ,"status":..,"notification":..,"summary":{..}: the same in every document */
static void sb_state(struct sb *b, const struct gw_state *st)
{
	SB_LIT(b, ",\"status\":");
	sb_str_or_null(b, proto_status_name(st->status));
	SB_LIT(b, ",\"notification\":");
	sb_str(b, st->notification ? st->notification : "");
	SB_LIT(b, ",\"summary\":");
	sb_summary(b, st);
}

/*
 * The event is stored and replayed as is, so it carries the full state after
 * the change, not a delta. at NULL or "": st->updated_at is used.
 */
char *proto_encode_event(const struct gw_state *st, const char *epoch,
			 int type, const char *at)
{
	struct sb b = { 0 };

	sb_head(&b, "event", st, epoch);
	SB_LIT(&b, ",\"type\":");
	sb_str_or_null(&b, proto_type_name(type));
	sb_state(&b, st);
	SB_LIT(&b, ",\"at\":");
	sb_str_or_null(&b, at && *at ? at : st->updated_at);
	SB_LIT(&b, "}");
	return sb_finish(&b);
}

/* updated_at is null for a submission never published to */
char *proto_encode_snapshot(const struct gw_state *st, const char *epoch)
{
	struct sb b = { 0 };

	sb_head(&b, "snapshot", st, epoch);
	sb_state(&b, st);
	SB_LIT(&b, ",\"updated_at\":");
	sb_str_or_null(&b, st->updated_at);
	SB_LIT(&b, "}");
	return sb_finish(&b);
}

/* "status","notification","summary" for the REST document */
static void put_state(json_t *doc, const struct gw_state *st, int *ok)
{
	put(doc, "status", status_json(st), ok);
	put(doc, "notification", notification_json(st), ok);
	put(doc, "summary", proto_summary_json(st), ok);
}

json_t *proto_state_json(const struct gw_state *st, const char *epoch)
{
	json_t *doc = json_object();
	int ok = doc != NULL;

	put(doc, "submission", json_string(st->key), &ok);
	put(doc, "exists", json_boolean(st->exists), &ok);
	put_state(doc, st, &ok);
	put(doc, "epoch", str_or_null(epoch), &ok);
	put(doc, "seq", int_json((int64_t)st->seq), &ok);
	put(doc, "updated_at", str_or_null(st->updated_at), &ok);
	if (!ok) {
		json_decref(doc);
		return NULL;
	}
	return doc;
}

/* ---- /ws commands ---- */

/* a command's reason line: printable ASCII, like the publish reasons */
static int cmd_fail(char *reason, size_t rlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int cmd_fail(char *reason, size_t rlen, int code, const char *fmt, ...)
{
	va_list ap;

	if (!reason || !rlen)
		return code;
	va_start(ap, fmt);
	vsnprintf(reason, rlen, fmt, ap);
	va_end(ap);
	sanitize(reason);
	return code;
}

/* "filter": absent, null or {"kinds":[event types]}; an empty list is all */
static int cmd_filter(json_t *f, uint32_t *mask, char *reason, size_t rlen)
{
	json_t *kinds, *v;
	size_t i;

	*mask = 0;
	if (!f || json_is_null(f))
		return GW_OK;
	kinds = json_object_get(f, "kinds");
	if (!json_is_object(f) || !json_is_array(kinds))
		return cmd_fail(reason, rlen, GW_EINVAL,
				"filter must be {\"kinds\":[event types]}");
	json_array_foreach(kinds, i, v) {
		int t = proto_parse_type(json_string_value(v));

		if (t < 0)
			return cmd_fail(reason, rlen, GW_EINVAL,
					"filter.kinds[%zu]: unknown event type", i);
		*mask |= 1u << t;
	}
	return GW_OK;
}

/* "since": absent, null or {"epoch": string, "seq": integer >= 0} */
static int cmd_since(json_t *since, struct gw_cmd *out, char *reason, size_t rlen)
{
	json_t *epoch, *seq;

	if (!since || json_is_null(since))
		return GW_OK;
	epoch = json_object_get(since, "epoch");
	seq = json_object_get(since, "seq");
	if (!json_is_object(since) || !json_is_string(epoch) ||
	    !json_is_integer(seq) || json_integer_value(seq) < 0)
		return cmd_fail(reason, rlen, GW_EINVAL,
				"since must be {\"epoch\":string,\"seq\":integer >= 0}");
	out->has_since = 1;
	out->since_epoch = json_string_value(epoch);
	out->since_seq = (uint64_t)json_integer_value(seq);
	return GW_OK;
}

/* "mode": absent, null, "all" or "latest" */
static int cmd_mode(json_t *mode, int *out, char *reason, size_t rlen)
{
	const char *m = json_string_value(mode);

	*out = GW_MODE_ALL;
	if (!mode || json_is_null(mode) || (m && !strcmp(m, "all")))
		return GW_OK;
	if (m && !strcmp(m, "latest")) {
		*out = GW_MODE_LATEST;
		return GW_OK;
	}
	return cmd_fail(reason, rlen, GW_EINVAL, "mode must be \"all\" or \"latest\"");
}

/*
 * The checks run in the order the gateway always answered them (key,
 * filter, since, then mode), so a command with several faults keeps
 * getting the same reason.
 */
int proto_decode_command(const char *buf, size_t len, struct gw_cmd *out,
			 char *reason, size_t rlen)
{
	static const char *const ops[GW_CMD_COUNT] = {
		"subscribe", "unsubscribe", "ping",
	};
	json_error_t je;
	json_t *id;
	const char *op;
	int rc;

	memset(out, 0, sizeof(*out));
	out->op = -1;
	if (reason && rlen)
		reason[0] = '\0';
	out->root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(out->root))
		return cmd_fail(reason, rlen, GW_EJSON, "not a JSON object: %s",
				out->root ? "wrong type" : je.text);
	id = json_object_get(out->root, "id");
	if (json_is_integer(id) || json_is_string(id))
		out->id = id;
	op = json_string_value(json_object_get(out->root, "op"));
	if (!op)
		return cmd_fail(reason, rlen, GW_EINVAL, "op is required");
	for (int i = 0; i < GW_CMD_COUNT; i++)
		if (!strcmp(op, ops[i]))
			out->op = i;
	if (out->op < 0)
		return cmd_fail(reason, rlen, GW_EINVAL,
				"unknown op (subscribe, unsubscribe, ping)");
	out->key = json_string_value(json_object_get(out->root, "submission"));
	if (out->op == GW_CMD_UNSUBSCRIBE && !out->key)
		return cmd_fail(reason, rlen, GW_EINVAL, "submission is required");
	if (out->op != GW_CMD_SUBSCRIBE) {
		if (out->op == GW_CMD_PING)
			out->key = NULL;
		return GW_OK;
	}
	if (!out->key || !proto_key_valid(out->key, strlen(out->key))) {
		out->key = NULL;
		return cmd_fail(reason, rlen, GW_EINVAL,
				"submission must be a key of [A-Za-z0-9_.-]{1,64}");
	}
	rc = cmd_filter(json_object_get(out->root, "filter"), &out->filter, reason, rlen);
	if (!rc)
		rc = cmd_since(json_object_get(out->root, "since"), out, reason, rlen);
	if (!rc)
		rc = cmd_mode(json_object_get(out->root, "mode"), &out->mode, reason, rlen);
	return rc;
}

void proto_cmd_free(struct gw_cmd *c)
{
	if (!c)
		return;
	json_decref(c->root);
	memset(c, 0, sizeof(*c));
	c->op = -1;
}

/* ---- AMQP deliveries ---- */

int proto_routing_hint(const void *rk, size_t len, char out[GW_KEY_MAX + 1])
{
	static const char pfx[] = "submission.";
	const char *s = rk, *dot;
	size_t kn;
	char type[32];

	out[0] = '\0';
	if (len <= sizeof(pfx) - 1 || memcmp(s, pfx, sizeof(pfx) - 1))
		return -1;
	s += sizeof(pfx) - 1;
	len -= sizeof(pfx) - 1;
	dot = memrchr(s, '.', len);
	if (!dot)
		return -1;
	kn = (size_t)(dot - s);
	if (len - kn - 1 >= sizeof(type))
		return -1;
	memcpy(type, dot + 1, len - kn - 1);
	type[len - kn - 1] = '\0';
	if (proto_parse_type(type) < 0 || !proto_key_valid(s, kn))
		return -1;
	memcpy(out, s, kn);
	out[kn] = '\0';
	return 0;
}

/*
 * The message_id becomes the publish id; the string is kept inside
 * pub->root so that it lives as long as the publish. On failure the caller
 * frees pub.
 */
static int attach_message_id(struct gw_pub *pub, const void *mid, size_t len,
			     char *err, size_t errlen)
{
	const unsigned char *b = mid;
	json_t *s;

	if (len < 1 || len > GW_ID_MAX) {
		snprintf(err, errlen, "message_id: must be 1 to %d bytes", GW_ID_MAX);
		return GW_EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		if (b[i] < 0x21 || b[i] > 0x7e) {
			snprintf(err, errlen, "message_id: must be printable ASCII");
			return GW_EINVAL;
		}
	}
	s = json_stringn(mid, len);
	/* a member of that name sent by the publisher is replaced, which is
	 * harmless: nothing reads the member back, only pub->id */
	if (!s || json_object_set_new(pub->root, "\x01message_id", s)) {
		snprintf(err, errlen, "out of memory");
		return GW_EINTERNAL;
	}
	pub->id = json_string_value(s);
	return GW_OK;
}

int proto_decode_delivery(const struct gw_delivery *d, size_t max,
			  struct gw_pub *out, char *err, size_t errlen)
{
	char hint[GW_KEY_MAX + 1];
	int rc;

	proto_routing_hint(d->routing_key, d->routing_key_len, hint);
	rc = proto_decode_publish(d->body, d->body_len, max, hint[0] ? hint : NULL,
				  out, err, errlen);
	if (rc == GW_OK && !out->id && d->has_message_id) {
		rc = attach_message_id(out, d->message_id, d->message_id_len, err, errlen);
		if (rc != GW_OK)
			proto_pub_free(out);
	}
	return rc;
}

int proto_decode_rpc(const void *buf, size_t len, size_t max, int *method,
		     char key[GW_KEY_MAX + 1], const char **detail)
{
	json_t *req = NULL;
	const char *m = NULL, *k = NULL;

	*detail = NULL;
	key[0] = '\0';
	if (len > max)
		*detail = "request too large";
	else if (!(req = json_loadb(buf, len, 0, NULL)) || !json_is_object(req))
		*detail = "the request is not a JSON object";
	else if (!(m = json_string_value(json_object_get(req, "method"))))
		*detail = "\"method\" is missing (get_submission or presence)";
	else if (strcmp(m, "get_submission") && strcmp(m, "presence"))
		*detail = "unknown \"method\" (get_submission or presence)";
	else if (!(k = json_string_value(json_object_get(req, "submission"))) ||
		 !proto_key_valid(k, strlen(k)))
		*detail = "\"submission\" must be a key of 1 to 64 characters [A-Za-z0-9_.-]";
	if (!*detail) {
		*method = strcmp(m, "presence") ? GW_RPC_GET : GW_RPC_PRESENCE;
		memcpy(key, k, strlen(k) + 1);
	}
	json_decref(req);
	return *detail ? -1 : 0;
}

/* ---- Server-Sent Events ---- */

void proto_event_id(const char *epoch, uint64_t seq, char *out, size_t len)
{
	snprintf(out, len, "%s:%llu", epoch ? epoch : "", (unsigned long long)seq);
}

int proto_parse_event_id(const char *s, char *epoch, size_t elen, uint64_t *seq)
{
	const char *colon = s ? strrchr(s, ':') : NULL;
	size_t n;
	uint64_t v = 0;

	if (!colon || colon == s || !colon[1])
		return -1;
	n = (size_t)(colon - s);
	if (n > GW_EPOCH_MAX || n + 1 > elen)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		      (c >= 'A' && c <= 'Z') || c == '_' || c == '-'))
			return -1;
	}
	for (const char *p = colon + 1; *p; p++) {
		if (*p < '0' || *p > '9' || v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	memcpy(epoch, s, n);
	epoch[n] = '\0';
	*seq = v;
	return 0;
}

char *proto_encode_sse(const char *id, const char *data, size_t len)
{
	struct sb b = { 0 };
	size_t i = 0;

	if (len && memchr(data, '\0', len))
		return NULL;     /* the result is a C string */
	if (id) {
		if (strpbrk(id, "\r\n"))
			return NULL;
		SB_LIT(&b, "id: ");
		sb_raw(&b, id, strlen(id));
		SB_LIT(&b, "\n");
	}
	/* every line of data its own data: field; the reader joins them
	 * with LF again. A trailing line end does not make an empty line. */
	do {
		size_t start = i;

		while (i < len && data[i] != '\n' && data[i] != '\r')
			i++;
		SB_LIT(&b, "data: ");
		sb_raw(&b, data + start, i - start);
		SB_LIT(&b, "\n");
		if (i < len && data[i] == '\r' && i + 1 < len && data[i + 1] == '\n')
			i++;
		if (i < len)
			i++;
	} while (i < len);
	SB_LIT(&b, "\n");
	return sb_finish(&b);
}
