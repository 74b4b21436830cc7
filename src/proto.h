/*
 * Wire formats, pure: decoding and validating publishes, parsing keys and
 * statuses, and encoding the frames and documents the gateway sends.
 * No lws, AMQP or SQLite here, so tests link this file alone (with jansson).
 */
#ifndef GW_PROTO_H
#define GW_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define GW_KEY_MAX 64          /* submission key: [A-Za-z0-9_.-]{1,64} */
#define GW_KIND_MAX 32         /* record kind: [a-z0-9_]{1,32} */
#define GW_NAME_MAX 256        /* record name: 1..256 bytes of UTF-8 */
#define GW_TEXT_MAX 4096       /* notification and message texts */
#define GW_COLUMN_MAX 256
#define GW_ID_MAX 128          /* publish id / AMQP message_id */
#define GW_MAX_KINDS 16        /* distinct kinds in one submission */
#define GW_TOP_MSGS 10         /* most frequent messages in a summary */

/* statuses, in display order; GW_ST_NONE = the submission has no status */
enum gw_status {
	GW_ST_NONE = -1,
	GW_ST_WAITING = 0,
	GW_ST_LOADED,
	GW_ST_SUBMITTED,
	GW_ST_ERROR,
	GW_ST_NEED_REVISION,
	GW_ST_READY,
	GW_ST_COMPLETED,
	GW_ST_COUNT
};

/* validation result of a record */
enum gw_result {
	GW_RES_UNKNOWN = 0,
	GW_RES_PASS,
	GW_RES_WARNING,
	GW_RES_ERROR,
	GW_RES_COUNT
};

enum gw_pub_type {
	GW_PUB_STATUS = 0,
	GW_PUB_RECORDS,
	GW_PUB_VALIDATION,
	GW_PUB_NOTIFICATION,
	GW_PUB_RESET,
	GW_PUB_COUNT
};

/* decode outcomes; each maps to one HTTP status (proto_http_status) */
enum gw_err {
	GW_OK = 0,
	GW_EJSON = -1,     /* not JSON / not an object: 400 */
	GW_EINVAL = -2,    /* valid JSON, invalid content: 422 */
	GW_ETOOBIG = -3,   /* over the size limit: 413 */
	GW_EINTERNAL = -4, /* out of memory, store failure: 500 */
};

struct gw_msgtext {
	const char *text;        /* points into gw_pub.root */
	const char *column;      /* NULL when absent; points into gw_pub.root */
};

struct gw_rec {
	const char *kind;        /* points into gw_pub.root */
	const char *name;        /* points into gw_pub.root */
	int result;              /* enum gw_result; UNKNOWN for "records" */
	size_t nmsg;
	struct gw_msgtext *msgs; /* malloc'd; freed by proto_pub_free */
};

/* counts a legacy publisher reported for one kind ("validation_message") */
struct gw_counts {
	const char *kind;        /* a static string ("animal", "sample") */
	int64_t all, unknown, issues;
};

/*
 * A decoded, validated publish. All strings point into root, which the struct
 * owns; the whole thing is handed between threads by value or pointer, one
 * owner at a time.
 */
struct gw_pub {
	json_t *root;            /* owned; released by proto_pub_free */
	int type;                /* enum gw_pub_type */
	char key[GW_KEY_MAX + 1];
	int status;              /* enum gw_status; set for GW_PUB_STATUS */
	const char *notification;/* NULL when absent */
	const char *id;          /* idempotency id, NULL when absent */
	const char *from;        /* envelope "from", NULL when absent */
	size_t nrec;
	struct gw_rec *recs;     /* malloc'd; freed by proto_pub_free */
	/* a legacy status frame's validation_message: with counts_set the
	 * submission's reported counts become counts[0..ncounts) (none: "") */
	int counts_set;
	size_t ncounts;
	struct gw_counts counts[2];
};

/* any thread. Returns 1 if s[0..n) is a valid submission key. */
int proto_key_valid(const char *s, size_t n);
/* any thread. Returns 1 if s is a valid record kind. */
int proto_kind_valid(const char *s);
/* any thread. Display form, snake_case and any case accepted; -1 if unknown. */
int proto_parse_status(const char *s);
/* "Waiting" ... "Completed"; NULL for GW_ST_NONE */
const char *proto_status_name(int st);
/* "Pass", "Warning", "Error" (case-insensitive); -1 if unknown */
int proto_parse_result(const char *s);
const char *proto_result_name(int res);
/* "status", "records", ... ; -1 if unknown */
int proto_parse_type(const char *s);
const char *proto_type_name(int type);
/* 400, 422, 413, 500 for the gw_err codes; 200 for GW_OK */
int proto_http_status(int err);
/* "bad_json", "invalid", "too_large", "internal" */
const char *proto_err_name(int err);

/*
 * any thread. Decodes one publish (bare or in a from/to/datetime/body
 * envelope) from buf[0..len) (not NUL-terminated). max is the size limit in
 * bytes (0: none). On success fills *out (caller frees with proto_pub_free)
 * and returns GW_OK; on failure returns a gw_err and writes a one-line human
 * reason to err (always NUL-terminated), and *out needs no freeing.
 * key_hint, when not NULL, is a submission key taken from elsewhere (an AMQP
 * routing key): if the body has none it is used; if both exist they must agree.
 */
int proto_decode_publish(const char *buf, size_t len, size_t max,
			 const char *key_hint, struct gw_pub *out,
			 char *err, size_t errlen);
void proto_pub_free(struct gw_pub *p);

/*
 * any thread. Decodes one frame a trusted legacy backend sent on the legacy
 * socket of submission key: {"message": status, "notification_message":
 * text, "validation_message": {"animals":N,"samples":N,"animal_unkn":N,
 * "sample_unkn":N,"animal_issues":N,"sample_issues":N} | ""}, which becomes
 * a status publish carrying the reported counts ("" clears them, an absent
 * or null validation_message leaves them). A frame with a "type" member is a
 * publish of the new format (proto_decode_publish with key as the hint).
 * Same conventions and results as proto_decode_publish.
 */
int proto_decode_legacy(const char *buf, size_t len, size_t max, const char *key,
			struct gw_pub *out, char *err, size_t errlen);

/* ---- state of a submission, as the store reports it ---- */

/* a kind's summary: computed from the store's records, or, while the store
 * has no records of that kind, the counts a legacy publisher reported
 * (reported = 1: all, rep_unknown and rep_issues as sent, known = all -
 * unknown, and no pass/warning/error split) */
struct gw_kind_sum {
	char kind[GW_KIND_MAX + 1];
	int64_t all, known, pass, warning, error;
	int reported;
	int64_t rep_unknown, rep_issues;
};

struct gw_top_msg {
	char kind[GW_KIND_MAX + 1];
	char *text;              /* malloc'd; freed by proto_state_clear */
	char *column;            /* malloc'd or NULL */
	int64_t count;
};

struct gw_state {
	char key[GW_KEY_MAX + 1];
	int exists;              /* 0: never published to */
	int status;              /* enum gw_status */
	char *notification;      /* malloc'd or NULL; freed by proto_state_clear */
	char updated_at[32];     /* ISO 8601 UTC, "" if none */
	uint64_t seq;            /* last event's seq, 0 if none */
	size_t nkinds;
	struct gw_kind_sum kinds[GW_MAX_KINDS];
	size_t ntop;
	struct gw_top_msg top[GW_TOP_MSGS];
};

void proto_state_clear(struct gw_state *st);

/* ISO 8601 UTC with milliseconds of a unix time in ms: 2026-11-24T04:22:15.123Z */
void proto_iso8601(int64_t ms, char out[32]);

/*
 * The summary object used everywhere outside the legacy frame:
 * {"animal":{"all":..,"known":..,"unknown":..,"pass":..,"warning":..,
 *            "error":..,"issues":..}, ...,
 *  "messages":[{"kind":..,"text":..,"column":..,"count":..}, ...]}
 * New reference.
 */
json_t *proto_summary_json(const struct gw_state *st);

/*
 * Legacy frame (SPEC 2.1):
 * {"message": status|null, "notification_message": text|"",
 *  "validation_message": ""|{"animals":..,"samples":..,"animal_unkn":..,
 *     "sample_unkn":..,"animal_issues":..,"sample_issues":..}}
 * Returns a malloc'd NUL-terminated string (free()).
 */
char *proto_encode_legacy(const struct gw_state *st);

/* {"op":"event","submission":..,"epoch":..,"seq":..,"type":..,"status":..,
 *  "notification":..,"summary":{..},"at":..}; malloc'd string */
char *proto_encode_event(const struct gw_state *st, const char *epoch,
			 int type, const char *at);

/* {"op":"snapshot","submission":..,"epoch":..,"seq":..,"status":..,
 *  "notification":..,"summary":{..},"updated_at":..}; malloc'd string */
char *proto_encode_snapshot(const struct gw_state *st, const char *epoch);

/* REST document for GET /api/v1/submissions/{key}: {"submission":..,
 * "exists":..,"status":..,"notification":..,"summary":{..},"epoch":..,
 * "seq":..,"updated_at":..}. New reference. */
json_t *proto_state_json(const struct gw_state *st, const char *epoch);

/* ---- /ws commands (SPEC 2.2) ---- */

enum gw_cmd_op {
	GW_CMD_SUBSCRIBE = 0,
	GW_CMD_UNSUBSCRIBE,
	GW_CMD_PING,
	GW_CMD_COUNT
};

enum gw_mode {
	GW_MODE_ALL = 0,         /* every event, in order (the default) */
	GW_MODE_LATEST,          /* the latest state; a queued frame may be replaced */
};

/*
 * One decoded /ws command. id, key and since_epoch point into root, which
 * the struct owns, so they live until proto_cmd_free.
 */
struct gw_cmd {
	json_t *root;            /* owned; released by proto_cmd_free */
	json_t *id;              /* borrowed: an integer or a string; NULL when
				  * absent or of another type */
	int op;                  /* enum gw_cmd_op; -1 when missing or unknown */
	const char *key;         /* "submission": a valid key for subscribe,
				  * any string for unsubscribe, else NULL */
	int has_since;           /* subscribe gave since {epoch, seq} */
	const char *since_epoch;
	uint64_t since_seq;
	uint32_t filter;         /* 1u << enum gw_pub_type per kind wanted; 0: all */
	int mode;                /* enum gw_mode */
};

/*
 * any thread. Decodes one /ws command from buf[0..len) (not NUL-terminated).
 * Returns GW_OK; GW_EJSON when it is not a JSON object (no id can be read);
 * or GW_EINVAL when an object is wrong (op -1: op missing or unknown; else a
 * bad argument of a known op), with id set when the command has one so
 * that the error can carry it. reason gets a one-line printable ASCII
 * reason on failure. Call proto_cmd_free after every call, whatever it
 * returned.
 */
int proto_decode_command(const char *buf, size_t len, struct gw_cmd *out,
			 char *reason, size_t rlen);
void proto_cmd_free(struct gw_cmd *c);

/* ---- AMQP deliveries (SPEC 3.2), as plain bytes ---- */

/*
 * One ingest delivery. rabbitmq-c's amqp_bytes_t may hold bytes == NULL for
 * an empty value; these pointers may too.
 */
struct gw_delivery {
	const void *body;
	size_t body_len;
	const void *routing_key;
	size_t routing_key_len;
	int has_message_id;      /* the message_id property is set (maybe empty) */
	const void *message_id;
	size_t message_id_len;
};

/*
 * any thread. The key of a routing key "submission.<key>.<type>" (type one
 * of the publish types) into out: 0, or -1 (out = "") when the routing key
 * has another form or an invalid key. A key may contain dots; the type is
 * what follows the last one.
 */
int proto_routing_hint(const void *rk, size_t len, char out[GW_KEY_MAX + 1]);

/*
 * any thread. Decodes a delivery as proto_decode_publish does its body, with
 * the routing key's key as key_hint, and the message_id (1..GW_ID_MAX bytes
 * of printable ASCII without spaces) as the publish id when the body has
 * none. Same results and ownership as proto_decode_publish.
 */
int proto_decode_delivery(const struct gw_delivery *d, size_t max,
			  struct gw_pub *out, char *err, size_t errlen);

enum gw_rpc_method {
	GW_RPC_GET = 0,          /* "get_submission" */
	GW_RPC_PRESENCE,         /* "presence" */
};

/*
 * any thread. An RPC request body {"method":..,"submission":..} of at most
 * max bytes: 0 with *method (enum gw_rpc_method) and key, or -1 with
 * *detail, a static string for the bad_request answer.
 */
int proto_decode_rpc(const void *buf, size_t len, size_t max, int *method,
		     char key[GW_KEY_MAX + 1], const char **detail);
/* ---- Server-Sent Events (SPEC 2.4) ---- */

#define GW_EPOCH_MAX 64        /* an epoch in an event id: [A-Za-z0-9_-]{1,64} */
#define GW_EVENT_ID_MAX (GW_EPOCH_MAX + 22)   /* "<epoch>:<seq>" and its NUL */

/* any thread. The id of an SSE event, "<epoch>:<seq>" (what /ws calls
 * since: {epoch, seq}), into out[0..len). */
void proto_event_id(const char *epoch, uint64_t seq, char *out, size_t len);
/* any thread. Reads an id made by proto_event_id (a Last-Event-ID): the
 * epoch into epoch[0..elen) and the seq. 0, or -1 when s is not such an id
 * (then nothing is written). */
int proto_parse_event_id(const char *s, char *epoch, size_t elen, uint64_t *seq);
/*
 * any thread. One event of a text/event-stream: "id: <id>\n" (unless id is
 * NULL), one "data: <line>\n" per line of data[0..len) (LF, CR and CRLF end
 * a line; a reader joins them again with LF), then the empty line that ends
 * the event. A malloc'd NUL-terminated string; NULL when out of memory,
 * when id holds a CR or LF, or when data holds a NUL.
 */
char *proto_encode_sse(const char *id, const char *data, size_t len);

#endif
