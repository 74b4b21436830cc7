/*
 * Unit tests of store.c against a real SQLite: ":memory:" for the publish
 * semantics and counters, a temporary file for reopening, WAL, the epoch,
 * schema versions and read handles. Publishes are built by hand (the store
 * never looks at gw_pub.root), so these tests do not depend on the decoder.
 * No timing assertions: the 100,000-record check is about exact counts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "check.h"
#include "store.h"
#include "summary.h"

static int64_t now_ms = 1790000000000LL;

/* ---- building publishes ---- */

static void pub_init(struct gw_pub *p, int type, const char *key)
{
	memset(p, 0, sizeof(*p));
	p->type = type;
	p->status = GW_ST_NONE;
	snprintf(p->key, sizeof(p->key), "%s", key);
}

/* room for one more of n elements: doubles at powers of two, so building
 * the 10,000-record publishes stays linear */
static void *grow(void *a, size_t n, size_t size)
{
	if (n && (n & (n - 1)))
		return a;
	a = realloc(a, (n ? 2 * n : 1) * size);
	if (!a)
		abort();
	return a;
}

/* appends a record; the strings must outlive the publish */
static void pub_rec(struct gw_pub *p, const char *kind, const char *name, int result)
{
	struct gw_rec *r;

	p->recs = grow(p->recs, p->nrec, sizeof(*p->recs));
	r = &p->recs[p->nrec++];
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->name = name;
	r->result = result;
}

/* appends a message to the last record */
static void pub_msg(struct gw_pub *p, const char *text, const char *column)
{
	struct gw_rec *r = &p->recs[p->nrec - 1];

	r->msgs = grow(r->msgs, r->nmsg, sizeof(*r->msgs));
	r->msgs[r->nmsg].text = text;
	r->msgs[r->nmsg].column = column;
	r->nmsg++;
}

static void pub_free(struct gw_pub *p)
{
	for (size_t i = 0; i < p->nrec; i++)
		free(p->recs[i].msgs);
	free(p->recs);
	p->recs = NULL;
	p->nrec = 0;
}

/* applies p outside an explicit batch (the savepoint is then the
 * transaction); keeps the state in *st, freeing what was there */
static int apply(struct store *s, struct gw_pub *p, struct gw_state *st)
{
	char err[256] = "";
	int rc;

	proto_state_clear(st);
	memset(st, 0, sizeof(*st));
	rc = store_apply(s, p, ++now_ms, st, err, sizeof(err));
	if (rc < 0)
		CHECK(err[0] != '\0');
	return rc;
}

static int apply_free(struct store *s, struct gw_pub *p, struct gw_state *st)
{
	int rc = apply(s, p, st);

	pub_free(p);
	return rc;
}

static void get(struct store *s, const char *key, struct gw_state *st)
{
	proto_state_clear(st);
	CHECK_EQ_INT(store_get_state(s, key, st), 0);
}

/* the counters of one kind, as the summary reports them */
#define CHECK_KIND(st, kind, all_, known_, unknown_, pass_, warning_, error_, issues_) do { \
	const struct gw_kind_sum *k_ = summary_find(st, kind); \
	CHECK(k_ != NULL); \
	if (k_) { \
		CHECK_EQ_INT(k_->all, all_); \
		CHECK_EQ_INT(k_->known, known_); \
		CHECK_EQ_INT(summary_unknown(k_), unknown_); \
		CHECK_EQ_INT(k_->pass, pass_); \
		CHECK_EQ_INT(k_->warning, warning_); \
		CHECK_EQ_INT(k_->error, error_); \
		CHECK_EQ_INT(summary_issues(k_), issues_); \
	} \
} while (0)

#define CHECK_TOP(st, i, kind_, text_, column_, count_) do { \
	CHECK((size_t)(i) < (st)->ntop); \
	if ((size_t)(i) < (st)->ntop) { \
		CHECK_EQ_STR((st)->top[i].kind, kind_); \
		CHECK_EQ_STR((st)->top[i].text, text_); \
		CHECK_EQ_STR((st)->top[i].column, column_); \
		CHECK_EQ_INT((st)->top[i].count, count_); \
	} \
} while (0)

static struct store *open_mem(void)
{
	struct store *s = NULL;
	char err[256] = "";

	CHECK_EQ_INT(store_open(":memory:", STORE_WRITE, &s, err, sizeof(err)), 0);
	if (!s) {
		fprintf(stderr, "store_open: %s\n", err);
		exit(check_report() | 1);
	}
	return s;
}

/* ---- a temporary directory for file databases ---- */

static char tmpdir[256];

static void tmp_path(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", tmpdir, name);
}

static void tmp_remove(const char *name)
{
	static const char *const suffix[] = { "", "-wal", "-shm", "-journal" };
	char path[512];

	for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s%s", tmpdir, name, suffix[i]);
		unlink(path);
	}
}

/* ---- tests ---- */

static void test_open_memory(void)
{
	struct store *s = open_mem();
	const char *e = store_epoch(s);
	struct gw_state st;

	CHECK_EQ_INT(store_schema_version(s), gw_schema_count);
	CHECK(gw_schema_count >= 1);
	CHECK_EQ_INT(strlen(e), 32);
	CHECK_EQ_INT(strspn(e, "0123456789abcdef"), 32);

	/* an unknown submission is not an error */
	memset(&st, 0, sizeof(st));
	CHECK_EQ_INT(store_get_state(s, "nobody", &st), 0);
	CHECK_EQ_INT(st.exists, 0);
	CHECK_EQ_STR(st.key, "nobody");
	CHECK_EQ_INT(st.status, GW_ST_NONE);
	CHECK(st.notification == NULL);
	CHECK_EQ_INT(st.seq, 0);
	CHECK_EQ_INT(st.nkinds, 0);
	CHECK_EQ_INT(st.ntop, 0);
	proto_state_clear(&st);

	/* a second in-memory store is another store: another epoch */
	{
		struct store *s2 = open_mem();

		CHECK(strcmp(store_epoch(s2), e) != 0);
		store_close(s2);
	}
	store_close(s);
}

static void test_status_notification(void)
{
	struct store *s = open_mem();
	struct gw_state st;
	struct gw_pub p;

	memset(&st, 0, sizeof(st));
	pub_init(&p, GW_PUB_STATUS, "42");
	p.status = GW_ST_LOADED;
	p.notification = "Data loaded";
	CHECK_EQ_INT(apply(s, &p, &st), 0);
	CHECK_EQ_INT(st.exists, 1);
	CHECK_EQ_STR(st.key, "42");
	CHECK_EQ_INT(st.status, GW_ST_LOADED);
	CHECK_EQ_STR(st.notification, "Data loaded");
	CHECK_EQ_INT(st.seq, 1);
	CHECK_EQ_INT(st.nkinds, 0);
	CHECK(st.updated_at[0] != '\0');

	/* a status without a notification keeps the notification */
	pub_init(&p, GW_PUB_STATUS, "42");
	p.status = GW_ST_SUBMITTED;
	CHECK_EQ_INT(apply(s, &p, &st), 0);
	CHECK_EQ_INT(st.status, GW_ST_SUBMITTED);
	CHECK_EQ_STR(st.notification, "Data loaded");
	CHECK_EQ_INT(st.seq, 2);

	/* a notification keeps the status */
	pub_init(&p, GW_PUB_NOTIFICATION, "42");
	p.notification = "Submitting to the archive";
	CHECK_EQ_INT(apply(s, &p, &st), 0);
	CHECK_EQ_INT(st.status, GW_ST_SUBMITTED);
	CHECK_EQ_STR(st.notification, "Submitting to the archive");
	CHECK_EQ_INT(st.seq, 3);

	/* a first publish that is a notification: the status stays none */
	pub_init(&p, GW_PUB_NOTIFICATION, "43");
	p.notification = "hello";
	CHECK_EQ_INT(apply(s, &p, &st), 0);
	CHECK_EQ_INT(st.status, GW_ST_NONE);
	CHECK_EQ_STR(st.notification, "hello");
	CHECK_EQ_INT(st.seq, 1);

	/* store_get_state agrees with what store_apply reported */
	get(s, "42", &st);
	CHECK_EQ_INT(st.exists, 1);
	CHECK_EQ_INT(st.status, GW_ST_SUBMITTED);
	CHECK_EQ_STR(st.notification, "Submitting to the archive");
	CHECK_EQ_INT(st.seq, 3);

	proto_state_clear(&st);
	store_close(s);
}

static void test_records(void)
{
	struct store *s = open_mem();
	struct gw_state st;
	struct gw_pub p;

	memset(&st, 0, sizeof(st));
	pub_init(&p, GW_PUB_RECORDS, "r");
	pub_rec(&p, "animal", "a1", GW_RES_UNKNOWN);
	pub_rec(&p, "animal", "a2", GW_RES_UNKNOWN);
	pub_rec(&p, "sample", "s1", GW_RES_UNKNOWN);
	CHECK_EQ_INT(apply_free(s, &p, &st), 0);
	CHECK_EQ_INT(st.seq, 1);
	CHECK_EQ_INT(st.nkinds, 2);
	CHECK_EQ_STR(st.kinds[0].kind, "animal"); /* sorted by kind */
	CHECK_EQ_STR(st.kinds[1].kind, "sample");
	CHECK_KIND(&st, "animal", 2, 0, 2, 0, 0, 0, 0);
	CHECK_KIND(&st, "sample", 1, 0, 1, 0, 0, 0, 0);
	CHECK_EQ_INT(st.status, GW_ST_NONE);

	/* the same records again, plus one new: nothing counted twice,
	 * including a duplicate inside one publish */
	pub_init(&p, GW_PUB_RECORDS, "r");
	pub_rec(&p, "animal", "a1", GW_RES_UNKNOWN);
	pub_rec(&p, "animal", "a3", GW_RES_UNKNOWN);
	pub_rec(&p, "animal", "a3", GW_RES_UNKNOWN);
	pub_rec(&p, "sample", "s1", GW_RES_UNKNOWN);
	CHECK_EQ_INT(apply_free(s, &p, &st), 0);
	CHECK_EQ_INT(st.seq, 2);
	CHECK_KIND(&st, "animal", 3, 0, 3, 0, 0, 0, 0);
	CHECK_KIND(&st, "sample", 1, 0, 1, 0, 0, 0, 0);

	/* a records publish does not reset a known result */
	pub_init(&p, GW_PUB_VALIDATION, "r");
	pub_rec(&p, "animal", "a1", GW_RES_PASS);
	CHECK_EQ_INT(apply_free(s, &p, &st), 0);
	pub_init(&p, GW_PUB_RECORDS, "r");
	pub_rec(&p, "animal", "a1", GW_RES_UNKNOWN);
	CHECK_EQ_INT(apply_free(s, &p, &st), 0);
	CHECK_EQ_INT(st.seq, 4);
	CHECK_KIND(&st, "animal", 3, 1, 2, 1, 0, 0, 0);

	/* an empty records publish is still an event */
	pub_init(&p, GW_PUB_RECORDS, "r");
	CHECK_EQ_INT(apply_free(s, &p, &st), 0);
	CHECK_EQ_INT(st.seq, 5);
	CHECK_KIND(&st, "animal", 3, 1, 2, 1, 0, 0, 0);

	/* same names in another kind or submission are other records */
	pub_init(&p, GW_PUB_RECORDS, "other");
	pub_rec(&p, "animal", "a1", GW_RES_UNKNOWN);
	CHECK_EQ_INT(apply_free(s, &p, &st), 0);
	CHECK_EQ_INT(st.seq, 1);
	CHECK_KIND(&st, "animal", 1, 0, 1, 0, 0, 0, 0);
	CHECK(summary_find(&st, "sample") == NULL);
	get(s, "r", &st);
	CHECK_KIND(&st, "animal", 3, 1, 2, 1, 0, 0, 0);

	proto_state_clear(&st);
	store_close(s);
}

static void test_validation(void)
{
	struct store *s = open_mem();
	struct gw_state st;
	struct gw_pub p;

	memset(&st, 0, sizeof(st));
	pub_init(&p, GW_PUB_RECORDS, "v");
	pub_rec(&p, "animal", "a1", GW_RES_UNKNOWN);
	pub_rec(&p, "animal", "a2", GW_RES_UNKNOWN);
	pub_rec(&p, "animal", "a3", GW_RES_UNKNOWN);
	pub_rec(&p, "sample", "s1", GW_RES_UNKNOWN);
	CHECK_EQ_INT(apply_free(s, &p, &st), 0);

	pub_init(&p, GW_PUB_VALIDATION, "v");
	pub_rec(&p, "animal", "a1", GW_RES_PASS);
	pub_rec(&p, "animal", "a2", GW_RES_ERROR);
	pub_msg(&p, "missing weight", "weight");
	pub_msg(&p, "bad date", NULL);
	/* a4 is not known yet: validation adds it */
	pub_rec(&p, "animal", "a4", GW_RES_WARNING);
	pub_msg(&p, "missing weight", "weight");
	pub_rec(&p, "sample", "s1", GW_RES_ERROR);
	pub_msg(&p, "missing weight", "weight");
	pub_msg(&p, "bad date", "date");
	CHECK_EQ_INT(apply_free(s, &p, &st), 0);
	CHECK_EQ_INT(st.seq, 2);
	CHECK_KIND(&st, "animal", 4, 3, 1, 1, 1, 1, 1);
	CHECK_KIND(&st, "sample", 1, 1, 0, 0, 0, 1, 1);
	/* count DESC, then text, kind, column; NULL and "date" columns of the
	 * same text are different messages */
	CHECK_EQ_INT(st.ntop, 4);
	CHECK_TOP(&st, 0, "animal", "missing weight", "weight", 2);
	CHECK_TOP(&st, 1, "animal", "bad date", NULL, 1);
	CHECK_TOP(&st, 2, "sample", "bad date", "date", 1);
	CHECK_TOP(&st, 3, "sample", "missing weight", "weight", 1);

	/* re-validation replaces a record's messages: a2 loses both of its
	 * messages ("bad date"/NULL drops to 0 and goes) and gains new ones */
	pub_init(&p, GW_PUB_VALIDATION, "v");
	pub_rec(&p, "animal", "a2", GW_RES_WARNING);
	pub_msg(&p, "odd colour", "colour");
	pub_msg(&p, "odd colour", "colour");
	CHECK_EQ_INT(apply_free(s, &p, &st), 0);
	CHECK_EQ_INT(st.seq, 3);
	CHECK_KIND(&st, "animal", 4, 3, 1, 1, 2, 0, 0);
	CHECK_EQ_INT(st.ntop, 4);
	CHECK_TOP(&st, 0, "animal", "odd colour", "colour", 2);
	CHECK_TOP(&st, 1, "sample", "bad date", "date", 1);
	CHECK_TOP(&st, 2, "animal", "missing weight", "weight", 1);
	CHECK_TOP(&st, 3, "sample", "missing weight", "weight", 1);

	/* a result with no messages clears them; unknown again is allowed */
	pub_init(&p, GW_PUB_VALIDATION, "v");
	pub_rec(&p, "animal", "a2", GW_RES_UNKNOWN);
	pub_rec(&p, "animal", "a4", GW_RES_PASS);
	pub_rec(&p, "sample", "s1", GW_RES_ERROR);
	pub_msg(&p, "bad date", "date");
	CHECK_EQ_INT(apply_free(s, &p, &st), 0);
	CHECK_KIND(&st, "animal", 4, 2, 2, 2, 0, 0, 0);
	CHECK_KIND(&st, "sample", 1, 1, 0, 0, 0, 1, 1);
	CHECK_EQ_INT(st.ntop, 1);
	CHECK_TOP(&st, 0, "sample", "bad date", "date", 1);

	/* the same messages again: counts stay, not doubled */
	pub_init(&p, GW_PUB_VALIDATION, "v");
	pub_rec(&p, "sample", "s1", GW_RES_ERROR);
	pub_msg(&p, "bad date", "date");
	CHECK_EQ_INT(apply_free(s, &p, &st), 0);
	CHECK_EQ_INT(st.ntop, 1);
	CHECK_TOP(&st, 0, "sample", "bad date", "date", 1);

	/* a record validated twice in one publish: the last one wins */
	pub_init(&p, GW_PUB_VALIDATION, "v");
	pub_rec(&p, "animal", "a3", GW_RES_ERROR);
	pub_msg(&p, "first", NULL);
	pub_rec(&p, "animal", "a3", GW_RES_PASS);
	pub_msg(&p, "second", NULL);
	CHECK_EQ_INT(apply_free(s, &p, &st), 0);
	CHECK_KIND(&st, "animal", 4, 3, 1, 3, 0, 0, 0);
	CHECK_EQ_INT(st.ntop, 2);
	CHECK_TOP(&st, 0, "sample", "bad date", "date", 1);
	CHECK_TOP(&st, 1, "animal", "second", NULL, 1);

	/* only the GW_TOP_MSGS most frequent come back, by count then text */
	{
		static const char *const names[] = { "m0", "m1", "m2", "m3",
			"m4", "m5", "m6", "m7", "m8", "m9", "m10", "m11" };
		static const char *const texts[] = { "t00", "t01", "t02",
			"t03", "t04", "t05", "t06", "t07", "t08", "t09", "t10",
			"t11" };

		pub_init(&p, GW_PUB_VALIDATION, "top");
		for (size_t i = 0; i < 12; i++) {
			pub_rec(&p, "sample", names[i], GW_RES_ERROR);
			/* record i carries texts i..11: t11 is on all 12 */
			for (size_t j = i; j < 12; j++)
				pub_msg(&p, texts[j], NULL);
		}
		CHECK_EQ_INT(apply_free(s, &p, &st), 0);
		CHECK_EQ_INT(st.ntop, GW_TOP_MSGS);
		for (size_t i = 0; i < GW_TOP_MSGS && i < st.ntop; i++) {
			CHECK_EQ_STR(st.top[i].text, texts[11 - i]);
			CHECK_EQ_INT(st.top[i].count, 12 - (int64_t)i);
		}
	}

	proto_state_clear(&st);
	store_close(s);
}

static void test_reset(void)
{
	struct store *s = open_mem();
	struct gw_state st;
	struct gw_pub p;

	memset(&st, 0, sizeof(st));
	pub_init(&p, GW_PUB_STATUS, "x");
	p.status = GW_ST_NEED_REVISION;
	p.notification = "fix it";
	CHECK_EQ_INT(apply_free(s, &p, &st), 0);
	pub_init(&p, GW_PUB_VALIDATION, "x");
	pub_rec(&p, "animal", "a1", GW_RES_ERROR);
	pub_msg(&p, "boom", NULL);
	pub_rec(&p, "sample", "s1", GW_RES_PASS);
	CHECK_EQ_INT(apply_free(s, &p, &st), 0);
	/* another submission must not be touched by the reset */
	pub_init(&p, GW_PUB_VALIDATION, "y");
	pub_rec(&p, "animal", "a1", GW_RES_ERROR);
	pub_msg(&p, "boom", NULL);
	CHECK_EQ_INT(apply_free(s, &p, &st), 0);

	pub_init(&p, GW_PUB_RESET, "x");
	CHECK_EQ_INT(apply_free(s, &p, &st), 0);
	CHECK_EQ_INT(st.seq, 3);
	CHECK_EQ_INT(st.nkinds, 0);
	CHECK_EQ_INT(st.ntop, 0);
	CHECK_EQ_INT(st.status, GW_ST_NEED_REVISION);
	CHECK_EQ_STR(st.notification, "fix it");

	/* the records are really gone: adding them again counts from zero,
	 * and their old messages do not come back */
	pub_init(&p, GW_PUB_VALIDATION, "x");
	pub_rec(&p, "animal", "a1", GW_RES_WARNING);
	CHECK_EQ_INT(apply_free(s, &p, &st), 0);
	CHECK_EQ_INT(st.seq, 4);
	CHECK_EQ_INT(st.nkinds, 1);
	CHECK_KIND(&st, "animal", 1, 1, 0, 0, 1, 0, 0);
	CHECK_EQ_INT(st.ntop, 0);

	get(s, "y", &st);
	CHECK_KIND(&st, "animal", 1, 1, 0, 0, 0, 1, 1);
	CHECK_EQ_INT(st.ntop, 1);
	CHECK_TOP(&st, 0, "animal", "boom", NULL, 1);

	/* a reset of a submission never seen creates it, empty */
	pub_init(&p, GW_PUB_RESET, "fresh");
	CHECK_EQ_INT(apply_free(s, &p, &st), 0);
	CHECK_EQ_INT(st.exists, 1);
	CHECK_EQ_INT(st.seq, 1);
	CHECK_EQ_INT(st.nkinds, 0);

	proto_state_clear(&st);
	store_close(s);
}

/* counts a legacy publisher reported: kept with the submission, in every
 * state, replaced by the next frame's, cleared by "" and by a reset, and
 * giving way kind by kind to the store's own records */
static void test_reported_counts(void)
{
	struct store *s = open_mem();
	struct gw_state st;
	struct gw_pub p;
	const struct gw_kind_sum *k;

	memset(&st, 0, sizeof(st));
	pub_init(&p, GW_PUB_STATUS, "L");
	p.status = GW_ST_READY;
	p.counts_set = 1;
	p.ncounts = 2;
	p.counts[0] = (struct gw_counts){ "animal", 3, 1, 1 };
	p.counts[1] = (struct gw_counts){ "sample", 2, 0, 2 };
	CHECK_EQ_INT(apply_free(s, &p, &st), 0);
	CHECK_EQ_INT(st.nkinds, 2);
	k = summary_find(&st, "animal");
	CHECK(k && k->reported && k->all == 3 && k->known == 2 && k->rep_unknown == 1 &&
	      k->rep_issues == 1);
	k = summary_find(&st, "sample");
	CHECK(k && k->reported && k->all == 2 && k->rep_unknown == 0 && k->rep_issues == 2);

	/* a status without validation_message leaves them; a read sees them */
	pub_init(&p, GW_PUB_STATUS, "L");
	p.status = GW_ST_COMPLETED;
	CHECK_EQ_INT(apply_free(s, &p, &st), 0);
	get(s, "L", &st);
	CHECK_EQ_INT(st.nkinds, 2);
	CHECK_EQ_INT(st.status, GW_ST_COMPLETED);
	CHECK(summary_find(&st, "animal")->reported);

	/* records of its own for "animal": the computed summary takes over
	 * that kind; "sample" stays reported; the kinds stay sorted */
	pub_init(&p, GW_PUB_RECORDS, "L");
	pub_rec(&p, "animal", "a1", GW_RES_UNKNOWN);
	pub_rec(&p, "plot", "p1", GW_RES_UNKNOWN);
	CHECK_EQ_INT(apply_free(s, &p, &st), 0);
	CHECK_EQ_INT(st.nkinds, 3);
	CHECK_EQ_STR(st.kinds[0].kind, "animal");
	CHECK_EQ_STR(st.kinds[1].kind, "plot");
	CHECK_EQ_STR(st.kinds[2].kind, "sample");
	CHECK_KIND(&st, "animal", 1, 0, 1, 0, 0, 0, 0);
	CHECK(!summary_find(&st, "animal")->reported);
	CHECK(summary_find(&st, "sample")->reported);

	/* the next frame's counts replace them all ("animal" is still ours) */
	pub_init(&p, GW_PUB_STATUS, "L");
	p.status = GW_ST_READY;
	p.counts_set = 1;
	p.ncounts = 1;
	p.counts[0] = (struct gw_counts){ "animal", 9, 9, 0 };
	CHECK_EQ_INT(apply_free(s, &p, &st), 0);
	CHECK_EQ_INT(st.nkinds, 2);
	CHECK_KIND(&st, "animal", 1, 0, 1, 0, 0, 0, 0);
	CHECK(summary_find(&st, "sample") == NULL);

	/* a reset forgets records and reported counts: the reported animal
	 * counts would have shown again, so the reset really cleared them */
	pub_init(&p, GW_PUB_RESET, "L");
	CHECK_EQ_INT(apply_free(s, &p, &st), 0);
	CHECK_EQ_INT(st.nkinds, 0);

	/* "" (counts_set with none) clears them */
	pub_init(&p, GW_PUB_STATUS, "M");
	p.status = GW_ST_READY;
	p.counts_set = 1;
	p.ncounts = 1;
	p.counts[0] = (struct gw_counts){ "sample", 4, 4, 0 };
	CHECK_EQ_INT(apply_free(s, &p, &st), 0);
	CHECK_EQ_INT(st.nkinds, 1);
	pub_init(&p, GW_PUB_STATUS, "M");
	p.status = GW_ST_READY;
	p.counts_set = 1;
	CHECK_EQ_INT(apply_free(s, &p, &st), 0);
	CHECK_EQ_INT(st.nkinds, 0);
	get(s, "M", &st);
	CHECK_EQ_INT(st.nkinds, 0);

	proto_state_clear(&st);
	store_close(s);
}

/* forgets the publish ids older than before_ms (a retention step with only
 * that rule); returns what store_retention_step returned after the last step */
static int prune_ids(struct store *s, int64_t before_ms)
{
	struct store_retention r = { 0, 0, before_ms, 0 };
	struct store_purged out;
	int rc;

	while ((rc = store_retention_step(s, &r, &out)) > 0)
		;
	return rc;
}

static void test_duplicate_id(void)
{
	struct store *s = open_mem();
	struct gw_state st, untouched;
	struct gw_pub p;
	char err[256];

	memset(&st, 0, sizeof(st));
	pub_init(&p, GW_PUB_VALIDATION, "d");
	p.id = "msg-1";
	pub_rec(&p, "animal", "a1", GW_RES_ERROR);
	pub_msg(&p, "boom", NULL);
	CHECK_EQ_INT(apply(s, &p, &st), 0);
	CHECK_EQ_INT(st.seq, 1);

	/* the same id again: 1, *st untouched, nothing changed */
	proto_state_clear(&st);
	memset(&untouched, 0x5a, sizeof(untouched));
	memcpy(&st, &untouched, sizeof(st));
	CHECK_EQ_INT(store_apply(s, &p, ++now_ms, &st, err, sizeof(err)), 1);
	CHECK(memcmp(&st, &untouched, sizeof(st)) == 0);
	memset(&st, 0, sizeof(st));
	get(s, "d", &st);
	CHECK_EQ_INT(st.seq, 1);
	CHECK_KIND(&st, "animal", 1, 1, 0, 0, 0, 1, 1);
	CHECK_TOP(&st, 0, "animal", "boom", NULL, 1);
	pub_free(&p);

	/* ids are global: the same id for another submission is a duplicate */
	pub_init(&p, GW_PUB_STATUS, "e");
	p.id = "msg-1";
	p.status = GW_ST_READY;
	CHECK_EQ_INT(apply(s, &p, &st), 1);
	get(s, "e", &st);
	CHECK_EQ_INT(st.exists, 0);

	/* another id is applied; no id at all is always applied */
	p.id = "msg-2";
	CHECK_EQ_INT(apply(s, &p, &st), 0);
	CHECK_EQ_INT(st.seq, 1);
	p.id = NULL;
	CHECK_EQ_INT(apply(s, &p, &st), 0);
	CHECK_EQ_INT(apply(s, &p, &st), 0);
	CHECK_EQ_INT(st.seq, 3);

	/* pruning forgets old ids, so they apply again */
	CHECK_EQ_INT(prune_ids(s, now_ms + 1), 0);
	p.id = "msg-2";
	CHECK_EQ_INT(apply(s, &p, &st), 0);
	CHECK_EQ_INT(st.seq, 4);
	CHECK_EQ_INT(apply(s, &p, &st), 1);
	/* a prune before that time keeps it */
	CHECK_EQ_INT(prune_ids(s, now_ms - 1000), 0);
	CHECK_EQ_INT(apply(s, &p, &st), 1);

	proto_state_clear(&st);
	store_close(s);
}

static void test_too_many_kinds(void)
{
	static const char *const kinds[] = { "k00", "k01", "k02", "k03", "k04",
		"k05", "k06", "k07", "k08", "k09", "k10", "k11", "k12", "k13",
		"k14", "k15", "k16" };
	struct store *s = open_mem();
	struct gw_state st;
	struct gw_pub p;
	char err[256] = "";

	CHECK_EQ_INT(GW_MAX_KINDS, 16); /* kinds[] above has 17 */
	memset(&st, 0, sizeof(st));
	pub_init(&p, GW_PUB_RECORDS, "k");
	for (int i = 0; i < GW_MAX_KINDS; i++)
		pub_rec(&p, kinds[i], "n1", GW_RES_UNKNOWN);
	CHECK_EQ_INT(apply_free(s, &p, &st), 0);
	CHECK_EQ_INT(st.nkinds, GW_MAX_KINDS);
	CHECK_EQ_INT(st.seq, 1);

	/* a 17th kind fails the whole publish, even its valid first part;
	 * its id is not remembered either */
	pub_init(&p, GW_PUB_RECORDS, "k");
	p.id = "k-1";
	pub_rec(&p, "k00", "n2", GW_RES_UNKNOWN);
	pub_rec(&p, kinds[16], "n1", GW_RES_UNKNOWN);
	CHECK_EQ_INT(store_apply(s, &p, ++now_ms, &st, err, sizeof(err)), GW_EINVAL);
	CHECK(strstr(err, "kinds") != NULL);
	pub_free(&p);

	pub_init(&p, GW_PUB_VALIDATION, "k");
	p.id = "k-2";
	pub_rec(&p, "k01", "n1", GW_RES_ERROR);
	pub_msg(&p, "boom", NULL);
	pub_rec(&p, kinds[16], "n1", GW_RES_PASS);
	err[0] = '\0';
	CHECK_EQ_INT(store_apply(s, &p, ++now_ms, &st, err, sizeof(err)), GW_EINVAL);
	CHECK(err[0] != '\0');
	pub_free(&p);

	get(s, "k", &st);
	CHECK_EQ_INT(st.seq, 1);
	CHECK_EQ_INT(st.nkinds, GW_MAX_KINDS);
	CHECK_KIND(&st, "k00", 1, 0, 1, 0, 0, 0, 0);
	CHECK_KIND(&st, "k01", 1, 0, 1, 0, 0, 0, 0);
	CHECK(summary_find(&st, kinds[16]) == NULL);
	CHECK_EQ_INT(st.ntop, 0);

	/* inside a batch, a failed publish leaves the batch going: the ones
	 * around it commit, and the failed id can be used again later */
	CHECK_EQ_INT(store_begin(s), 0);
	pub_init(&p, GW_PUB_RECORDS, "k");
	p.id = "k-1";
	pub_rec(&p, "k00", "n3", GW_RES_UNKNOWN);
	CHECK_EQ_INT(store_apply(s, &p, ++now_ms, &st, err, sizeof(err)), 0);
	CHECK_EQ_INT(st.seq, 2);
	pub_free(&p);
	proto_state_clear(&st);
	pub_init(&p, GW_PUB_RECORDS, "k");
	pub_rec(&p, "k00", "n4", GW_RES_UNKNOWN);
	pub_rec(&p, kinds[16], "n1", GW_RES_UNKNOWN);
	memset(&st, 0, sizeof(st));
	CHECK_EQ_INT(store_apply(s, &p, ++now_ms, &st, err, sizeof(err)), GW_EINVAL);
	pub_free(&p);
	pub_init(&p, GW_PUB_RECORDS, "k");
	pub_rec(&p, "k00", "n5", GW_RES_UNKNOWN);
	CHECK_EQ_INT(store_apply(s, &p, ++now_ms, &st, err, sizeof(err)), 0);
	CHECK_EQ_INT(st.seq, 3);
	pub_free(&p);
	CHECK_EQ_INT(store_commit(s), 0);
	get(s, "k", &st);
	CHECK_EQ_INT(st.seq, 3);
	CHECK_KIND(&st, "k00", 3, 0, 3, 0, 0, 0, 0);

	/* a rolled back batch changes nothing */
	CHECK_EQ_INT(store_begin(s), 0);
	pub_init(&p, GW_PUB_RESET, "k");
	CHECK_EQ_INT(apply_free(s, &p, &st), 0);
	CHECK_EQ_INT(st.nkinds, 0);
	CHECK_EQ_INT(store_rollback(s), 0);
	get(s, "k", &st);
	CHECK_EQ_INT(st.seq, 3);
	CHECK_EQ_INT(st.nkinds, GW_MAX_KINDS);

	/* content the store cannot use is refused before any change */
	pub_init(&p, GW_PUB_RECORDS, "k");
	pub_rec(&p, "k00", NULL, GW_RES_UNKNOWN);
	CHECK_EQ_INT(apply_free(s, &p, &st), GW_EINVAL);
	pub_init(&p, 99, "k");
	CHECK_EQ_INT(apply_free(s, &p, &st), GW_EINVAL);
	get(s, "k", &st);
	CHECK_EQ_INT(st.seq, 3);

	proto_state_clear(&st);
	store_close(s);
}

/* ---- events ---- */

struct evlist {
	int n, stop_at;
	uint64_t seq[32];
	int type[32];
	char json[32][32];
};

static int ev_cb(void *arg, uint64_t seq, int type, const char *json, size_t len)
{
	struct evlist *e = arg;

	if (e->n < 32) {
		e->seq[e->n] = seq;
		e->type[e->n] = type;
		snprintf(e->json[e->n], sizeof(e->json[e->n]), "%.*s", (int)len, json);
	}
	e->n++;
	return e->stop_at && e->n >= e->stop_at;
}

static void test_events(void)
{
	struct store *s = open_mem();
	struct gw_state st;
	struct gw_pub p;
	struct evlist e;
	uint64_t oldest = 99;
	char json[32];

	memset(&st, 0, sizeof(st));
	/* no submission yet: no events, oldest 0 */
	memset(&e, 0, sizeof(e));
	CHECK_EQ_INT(store_events_since(s, "ev", 0, 0, ev_cb, &e, &oldest), 0);
	CHECK_EQ_INT(oldest, 0);
	CHECK_EQ_INT(e.n, 0);

	/* the daemon appends one event per applied publish, same batch */
	for (int i = 1; i <= 10; i++) {
		CHECK_EQ_INT(store_begin(s), 0);
		pub_init(&p, GW_PUB_NOTIFICATION, "ev");
		p.notification = "n";
		CHECK_EQ_INT(apply_free(s, &p, &st), 0);
		CHECK_EQ_INT(st.seq, i);
		snprintf(json, sizeof(json), "{\"seq\":%d}", i);
		CHECK_EQ_INT(store_append_event(s, "ev", st.seq, GW_PUB_NOTIFICATION,
						json, now_ms, 3), 0);
		CHECK_EQ_INT(store_commit(s), 0);
	}

	memset(&e, 0, sizeof(e));
	CHECK_EQ_INT(store_events_since(s, "ev", 0, 0, ev_cb, &e, &oldest), 3);
	CHECK_EQ_INT(oldest, 8);
	CHECK_EQ_INT(e.n, 3);
	CHECK_EQ_INT(e.seq[0], 8);
	CHECK_EQ_INT(e.seq[1], 9);
	CHECK_EQ_INT(e.seq[2], 10);
	CHECK_EQ_STR(e.json[0], "{\"seq\":8}");
	CHECK_EQ_STR(e.json[2], "{\"seq\":10}");
	CHECK_EQ_INT(e.type[0], GW_PUB_NOTIFICATION);

	memset(&e, 0, sizeof(e));
	CHECK_EQ_INT(store_events_since(s, "ev", 8, 0, ev_cb, &e, &oldest), 2);
	CHECK_EQ_INT(e.seq[0], 9);
	CHECK_EQ_INT(e.seq[1], 10);
	CHECK_EQ_INT(oldest, 8);

	/* limit, and a callback that stops early */
	memset(&e, 0, sizeof(e));
	CHECK_EQ_INT(store_events_since(s, "ev", 0, 2, ev_cb, &e, &oldest), 2);
	CHECK_EQ_INT(e.seq[1], 9);
	memset(&e, 0, sizeof(e));
	e.stop_at = 1;
	CHECK_EQ_INT(store_events_since(s, "ev", 0, 0, ev_cb, &e, &oldest), 1);
	CHECK_EQ_INT(e.seq[0], 8);

	/* nothing newer */
	memset(&e, 0, sizeof(e));
	CHECK_EQ_INT(store_events_since(s, "ev", 10, 0, ev_cb, &e, &oldest), 0);
	CHECK_EQ_INT(oldest, 8);
	CHECK_EQ_INT(store_events_since(s, "ev", UINT64_MAX, 0, ev_cb, &e, &oldest), 0);

	/* keep 0 prunes nothing */
	CHECK_EQ_INT(store_append_event(s, "ev", 11, GW_PUB_STATUS, "{}", now_ms, 0), 0);
	memset(&e, 0, sizeof(e));
	CHECK_EQ_INT(store_events_since(s, "ev", 0, 0, ev_cb, &e, &oldest), 4);
	CHECK_EQ_INT(oldest, 8);

	/* an event for a submission the store does not know is refused */
	CHECK(store_append_event(s, "ghost", 1, GW_PUB_STATUS, "{}", now_ms, 3) < 0);

	proto_state_clear(&st);
	store_close(s);
}

/* ---- list_recent ---- */

struct sublist {
	int n;
	char key[8][GW_KEY_MAX + 1];
	int status[8];
	char note[8][32];
	uint64_t seq[8];
};

static int list_cb(void *arg, const char *key, int status,
		   const char *notification, const char *updated_at, uint64_t seq)
{
	struct sublist *l = arg;

	if (l->n < 8) {
		snprintf(l->key[l->n], sizeof(l->key[l->n]), "%s", key);
		l->status[l->n] = status;
		snprintf(l->note[l->n], sizeof(l->note[l->n]), "%s",
			 notification ? notification : "(null)");
		l->seq[l->n] = seq;
		CHECK(updated_at && updated_at[0]);
	}
	l->n++;
	return 0;
}

static void test_list_recent(void)
{
	struct store *s = open_mem();
	struct gw_state st;
	struct gw_pub p;
	struct sublist l;

	memset(&st, 0, sizeof(st));
	memset(&l, 0, sizeof(l));
	CHECK_EQ_INT(store_list_recent(s, 10, list_cb, &l), 0);

	pub_init(&p, GW_PUB_STATUS, "a");
	p.status = GW_ST_WAITING;
	CHECK_EQ_INT(apply(s, &p, &st), 0);
	pub_init(&p, GW_PUB_NOTIFICATION, "b");
	p.notification = "bee";
	CHECK_EQ_INT(apply(s, &p, &st), 0);
	pub_init(&p, GW_PUB_STATUS, "c");
	p.status = GW_ST_COMPLETED;
	CHECK_EQ_INT(apply(s, &p, &st), 0);
	/* a is updated last, so it comes first */
	pub_init(&p, GW_PUB_STATUS, "a");
	p.status = GW_ST_READY;
	CHECK_EQ_INT(apply(s, &p, &st), 0);

	memset(&l, 0, sizeof(l));
	CHECK_EQ_INT(store_list_recent(s, 10, list_cb, &l), 3);
	CHECK_EQ_STR(l.key[0], "a");
	CHECK_EQ_STR(l.key[1], "c");
	CHECK_EQ_STR(l.key[2], "b");
	CHECK_EQ_INT(l.status[0], GW_ST_READY);
	CHECK_EQ_INT(l.seq[0], 2);
	CHECK_EQ_INT(l.status[2], GW_ST_NONE);
	CHECK_EQ_STR(l.note[2], "bee");
	CHECK_EQ_STR(l.note[1], "(null)");

	memset(&l, 0, sizeof(l));
	CHECK_EQ_INT(store_list_recent(s, 2, list_cb, &l), 2);
	CHECK_EQ_STR(l.key[1], "c");

	/* the same millisecond: the later-created row first */
	pub_init(&p, GW_PUB_STATUS, "d");
	p.status = GW_ST_WAITING;
	CHECK_EQ_INT(store_apply(s, &p, now_ms, &st, NULL, 0), 0);
	memset(&l, 0, sizeof(l));
	CHECK_EQ_INT(store_list_recent(s, 0, list_cb, &l), 4);
	CHECK_EQ_STR(l.key[0], "d");
	CHECK_EQ_STR(l.key[1], "a");

	proto_state_clear(&st);
	store_close(s);
}

/* ---- file databases: reopen, WAL, epoch, readers, versions ---- */

static void test_file(void)
{
	struct store *w = NULL, *r = NULL, *w2 = NULL;
	struct gw_state st;
	struct gw_pub p;
	struct evlist e;
	char path[512], err[256] = "", epoch[64];
	uint64_t oldest;
	sqlite3 *raw;

	memset(&st, 0, sizeof(st));
	tmp_path(path, sizeof(path), "store.db");
	tmp_remove("store.db");

	/* a reader cannot open a database the writer has not made */
	CHECK(store_open(path, STORE_READ, &r, err, sizeof(err)) < 0);
	CHECK(r == NULL);
	CHECK(err[0] != '\0');

	CHECK_EQ_INT(store_open(path, STORE_WRITE, &w, err, sizeof(err)), 0);
	if (!w) {
		fprintf(stderr, "store_open: %s\n", err);
		return;
	}
	CHECK_EQ_INT(store_schema_version(w), gw_schema_count);
	snprintf(epoch, sizeof(epoch), "%s", store_epoch(w));
	CHECK_EQ_INT(strlen(epoch), 32);

	/* the file really is in WAL mode */
	CHECK_EQ_INT(sqlite3_open_v2(path, &raw, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	{
		sqlite3_stmt *q = NULL;

		CHECK_EQ_INT(sqlite3_prepare_v2(raw, "PRAGMA journal_mode", -1, &q, NULL),
			     SQLITE_OK);
		CHECK_EQ_INT(sqlite3_step(q), SQLITE_ROW);
		CHECK_EQ_STR((const char *)sqlite3_column_text(q, 0), "wal");
		sqlite3_finalize(q);
	}
	sqlite3_close(raw);

	CHECK_EQ_INT(store_open(path, STORE_READ, &r, err, sizeof(err)), 0);
	if (!r) {
		fprintf(stderr, "store_open read: %s\n", err);
		store_close(w);
		return;
	}
	CHECK_EQ_STR(store_epoch(r), epoch);
	CHECK_EQ_INT(store_schema_version(r), gw_schema_count);

	/* a reader sees only committed state */
	CHECK_EQ_INT(store_begin(w), 0);
	pub_init(&p, GW_PUB_VALIDATION, "f");
	pub_rec(&p, "animal", "a1", GW_RES_ERROR);
	pub_msg(&p, "boom", "col");
	CHECK_EQ_INT(apply_free(w, &p, &st), 0);
	CHECK_EQ_INT(store_append_event(w, "f", st.seq, GW_PUB_VALIDATION,
					"{\"e\":1}", now_ms, 1000), 0);
	get(r, "f", &st);
	CHECK_EQ_INT(st.exists, 0);
	CHECK_EQ_INT(store_commit(w), 0);
	get(r, "f", &st);
	CHECK_EQ_INT(st.exists, 1);
	CHECK_EQ_INT(st.seq, 1);
	CHECK_KIND(&st, "animal", 1, 1, 0, 0, 0, 1, 1);
	CHECK_TOP(&st, 0, "animal", "boom", "col", 1);
	memset(&e, 0, sizeof(e));
	CHECK_EQ_INT(store_events_since(r, "f", 0, 0, ev_cb, &e, &oldest), 1);
	CHECK_EQ_INT(oldest, 1);
	CHECK_EQ_STR(e.json[0], "{\"e\":1}");

	/* a read handle cannot write */
	pub_init(&p, GW_PUB_RESET, "f");
	err[0] = '\0';
	CHECK_EQ_INT(store_apply(r, &p, ++now_ms, &st, err, sizeof(err)), GW_EINTERNAL);
	CHECK(err[0] != '\0');
	CHECK(store_begin(r) < 0);
	CHECK(store_append_event(r, "f", 2, 0, "{}", now_ms, 10) < 0);
	get(r, "f", &st);
	CHECK_EQ_INT(st.seq, 1);

	/* reopen: same epoch, same data */
	store_close(r);
	r = NULL;
	store_close(w);
	w = NULL;
	CHECK_EQ_INT(store_open(path, STORE_WRITE, &w2, err, sizeof(err)), 0);
	if (w2) {
		CHECK_EQ_STR(store_epoch(w2), epoch);
		CHECK_EQ_INT(store_schema_version(w2), gw_schema_count);
		get(w2, "f", &st);
		CHECK_EQ_INT(st.seq, 1);
		CHECK_KIND(&st, "animal", 1, 1, 0, 0, 0, 1, 1);
		store_close(w2);
	}

	/* a database from a newer statusgate is refused, by both modes */
	CHECK_EQ_INT(sqlite3_open(path, &raw), SQLITE_OK);
	snprintf(err, sizeof(err), "PRAGMA user_version = %u", gw_schema_count + 1);
	CHECK_EQ_INT(sqlite3_exec(raw, err, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(raw);
	err[0] = '\0';
	CHECK(store_open(path, STORE_WRITE, &w, err, sizeof(err)) < 0);
	CHECK(w == NULL);
	CHECK(strstr(err, "newer") != NULL);
	CHECK(store_open(path, STORE_READ, &r, err, sizeof(err)) < 0);
	CHECK(r == NULL);

	/* a new database is a new epoch */
	tmp_remove("store.db");
	CHECK_EQ_INT(store_open(path, STORE_WRITE, &w, err, sizeof(err)), 0);
	if (w) {
		CHECK(strcmp(store_epoch(w), epoch) != 0);
		store_close(w);
	}
	tmp_remove("store.db");
	proto_state_clear(&st);
}

/* ---- retention (store_retention_step, store_vacuum_step, store_stats) ---- */

/* one publish at time at_ms, with its event appended as the daemon does */
static uint64_t publish_at(struct store *s, struct gw_pub *p, int64_t at_ms)
{
	struct gw_state st;
	char err[256] = "";
	uint64_t seq = 0;

	memset(&st, 0, sizeof(st));
	CHECK_EQ_INT(store_begin(s), 0);
	CHECK_EQ_INT(store_apply(s, p, at_ms, &st, err, sizeof(err)), 0);
	if (st.exists) {
		seq = st.seq;
		CHECK_EQ_INT(store_append_event(s, p->key, seq, p->type, "{}", at_ms, 1000), 0);
	}
	CHECK_EQ_INT(store_commit(s), 0);
	proto_state_clear(&st);
	pub_free(p);
	return seq;
}

static uint64_t status_at(struct store *s, const char *key, int status, int64_t at_ms)
{
	struct gw_pub p;

	pub_init(&p, GW_PUB_STATUS, key);
	p.status = status;
	return publish_at(s, &p, at_ms);
}

static uint64_t note_at(struct store *s, const char *key, int64_t at_ms)
{
	struct gw_pub p;

	pub_init(&p, GW_PUB_NOTIFICATION, key);
	p.notification = "later";
	return publish_at(s, &p, at_ms);
}

static int exists(struct store *s, const char *key)
{
	struct gw_state st;
	int e;

	memset(&st, 0, sizeof(st));
	CHECK_EQ_INT(store_get_state(s, key, &st), 0);
	e = st.exists;
	proto_state_clear(&st);
	return e;
}

/* steps until nothing is left; the totals in *sum, the number of steps back */
static int sweep(struct store *s, const struct store_retention *r,
		 struct store_purged *sum)
{
	struct store_purged out;
	int rc, steps = 0;

	memset(sum, 0, sizeof(*sum));
	do {
		rc = store_retention_step(s, r, &out);
		CHECK(rc >= 0);
		sum->submissions += out.submissions;
		sum->purged += out.purged;
		sum->ids += out.ids;
		sum->rows += out.rows;
		steps++;
	} while (rc > 0 && steps < 100000);
	return steps;
}

static void test_retention_rules(void)
{
	struct store *s = open_mem();
	struct store_retention r = { 0, 0, 0, 0 };
	struct store_purged sum;
	struct store_stats ss;
	const int64_t t0 = 1800000000000LL;

	/* t0: old; t0 + 5 s: old enough for the final rule only; t0 + 20 s: new */
	status_at(s, "old", GW_ST_LOADED, t0);
	status_at(s, "old-done", GW_ST_COMPLETED, t0);
	status_at(s, "mid", GW_ST_LOADED, t0 + 5000);
	status_at(s, "mid-done", GW_ST_COMPLETED, t0 + 5000);
	status_at(s, "mid-error", GW_ST_ERROR, t0 + 5000);
	/* an Error revived by a later event is no longer final */
	status_at(s, "mid-revived", GW_ST_ERROR, t0 + 4000);
	note_at(s, "mid-revived", t0 + 5000);
	/* Completed stays final whatever comes after */
	status_at(s, "mid-done-note", GW_ST_COMPLETED, t0 + 4000);
	note_at(s, "mid-done-note", t0 + 5000);
	/* an Error set again after other events is final again */
	status_at(s, "mid-error-again", GW_ST_ERROR, t0 + 3000);
	note_at(s, "mid-error-again", t0 + 4000);
	status_at(s, "mid-error-again", GW_ST_ERROR, t0 + 5000);
	/* no longer final once the status moves on */
	status_at(s, "mid-reopened", GW_ST_COMPLETED, t0 + 4000);
	status_at(s, "mid-reopened", GW_ST_SUBMITTED, t0 + 5000);
	status_at(s, "new-done", GW_ST_COMPLETED, t0 + 20000);
	status_at(s, "new", GW_ST_WAITING, t0 + 20000);

	/* nothing is due: a step does nothing (and writes nothing) */
	r.cutoff_ms = t0 - 1;
	r.final_cutoff_ms = t0 - 1;
	CHECK_EQ_INT(store_retention_step(s, &r, &sum), 0);
	CHECK_EQ_INT(sum.submissions, 0);
	CHECK_EQ_INT(sum.rows, 0);

	/* both rules off: nothing goes */
	r.cutoff_ms = r.final_cutoff_ms = 0;
	CHECK_EQ_INT(store_retention_step(s, &r, &sum), 0);
	CHECK(exists(s, "old"));

	/* the general rule: last event before t0 + 1 s */
	r.cutoff_ms = t0 + 1000;
	sweep(s, &r, &sum);
	CHECK_EQ_INT(sum.submissions, 2);
	CHECK_EQ_INT(sum.purged, 2);
	CHECK(!exists(s, "old"));
	CHECK(!exists(s, "old-done"));
	CHECK(exists(s, "mid"));
	CHECK(exists(s, "mid-done"));

	/* the final rule: final ones whose last event is before t0 + 10 s */
	r.final_cutoff_ms = t0 + 10000;
	sweep(s, &r, &sum);
	CHECK_EQ_INT(sum.submissions, 4);
	CHECK(!exists(s, "mid-done"));
	CHECK(!exists(s, "mid-error"));
	CHECK(!exists(s, "mid-done-note"));
	CHECK(!exists(s, "mid-error-again"));
	CHECK(exists(s, "mid-revived"));
	CHECK(exists(s, "mid-reopened"));
	CHECK(exists(s, "mid"));
	CHECK(exists(s, "new-done"));
	CHECK(exists(s, "new"));
	CHECK_EQ_INT(store_stats(s, &ss), 0);
	CHECK_EQ_INT(ss.submissions, 5);

	/* a sweep that finds nothing more */
	sweep(s, &r, &sum);
	CHECK_EQ_INT(sum.submissions, 0);
	CHECK_EQ_INT(sum.rows, 0);
	store_close(s);
}

/* rows of table whose submission_id (or records' submission) is sub, or
 * all rows when sub < 0, counted on a separate handle */
static int64_t count_rows(const char *path, const char *sql)
{
	sqlite3 *raw = NULL;
	sqlite3_stmt *q = NULL;
	int64_t n = -1;

	if (sqlite3_open_v2(path, &raw, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(raw, sql, -1, &q, NULL) == SQLITE_OK &&
	    sqlite3_step(q) == SQLITE_ROW)
		n = sqlite3_column_int64(q, 0);
	else
		fprintf(stderr, "count_rows %s: %s\n", sql, raw ? sqlite3_errmsg(raw) : "open");
	sqlite3_finalize(q);
	sqlite3_close(raw);
	return n;
}

/* the writer's counters agree with the tables */
#define CHECK_COUNTERS(s, path) do { \
	struct store_stats ss_; \
	CHECK_EQ_INT(store_stats(s, &ss_), 0); \
	CHECK_EQ_INT(ss_.submissions, count_rows(path, \
		"SELECT count(*) FROM submissions WHERE updated_ms >= 0")); \
	CHECK_EQ_INT(ss_.records, count_rows(path, "SELECT count(*) FROM records")); \
	CHECK_EQ_INT(ss_.events, count_rows(path, "SELECT count(*) FROM events")); \
} while (0)

/* kind, text and name strings of the big submission (they must outlive the
 * publish that points at them) */
static char big_names[600][16];
static char big_texts[300][24];

static void test_retention_purge(void)
{
	enum { RECS = 600, EVENTS = 40, MAX_ROWS = 100 };
	struct store *s = NULL;
	struct store_retention r = { 0, 0, 0, MAX_ROWS };
	struct store_purged out, sum;
	struct gw_pub p;
	struct gw_state st;
	char path[512], err[256] = "";
	const int64_t t0 = 1800000000000LL;
	int steps = 0, rc;
	uint64_t rows = 0;

	tmp_path(path, sizeof(path), "retention.db");
	tmp_remove("retention.db");
	CHECK_EQ_INT(store_open(path, STORE_WRITE, &s, err, sizeof(err)), 0);
	if (!s) {
		fprintf(stderr, "store_open: %s\n", err);
		return;
	}
	memset(&st, 0, sizeof(st));
	/* "big": 600 records in two kinds, each with one message of 300 texts
	 * (300 message counts: more than one step takes), and 40 events;
	 * "keep": recent, must not lose a row */
	pub_init(&p, GW_PUB_VALIDATION, "big");
	for (int i = 0; i < RECS; i++) {
		snprintf(big_names[i], sizeof(big_names[i]), "r%04d", i);
		if (i < 300)
			snprintf(big_texts[i], sizeof(big_texts[i]), "problem %d", i);
		pub_rec(&p, i % 2 ? "animal" : "sample", big_names[i], GW_RES_ERROR);
		pub_msg(&p, big_texts[i % 300], "col");
	}
	publish_at(s, &p, t0);
	for (int i = 1; i < EVENTS; i++)
		note_at(s, "big", t0);
	pub_init(&p, GW_PUB_RECORDS, "keep");
	pub_rec(&p, "animal", "k1", GW_RES_UNKNOWN);
	pub_rec(&p, "animal", "k2", GW_RES_UNKNOWN);
	publish_at(s, &p, t0 + 60000);
	CHECK_COUNTERS(s, path);
	CHECK_EQ_INT(count_rows(path, "SELECT count(*) FROM records"), RECS + 2);
	CHECK_EQ_INT(count_rows(path, "SELECT count(*) FROM record_messages"), RECS);
	CHECK_EQ_INT(count_rows(path, "SELECT count(*) FROM events"), EVENTS + 1);
	CHECK_EQ_INT(count_rows(path, "SELECT count(*) FROM message_counts"), 300);

	/* the first step detaches "big": gone for readers and for the list at
	 * once, while its rows are still there */
	r.cutoff_ms = t0 + 1000;
	CHECK_EQ_INT(store_retention_step(s, &r, &out), 1);
	CHECK_EQ_INT(out.submissions, 1);
	CHECK(!exists(s, "big"));
	{
		struct sublist l;

		memset(&l, 0, sizeof(l));
		CHECK_EQ_INT(store_list_recent(s, 10, list_cb, &l), 1);
		CHECK_EQ_STR(l.key[0], "keep");
	}
	CHECK_EQ_INT(count_rows(path, "SELECT count(*) FROM records"), RECS + 2);
	CHECK_COUNTERS(s, path);

	/* then bounded steps: none deletes more than MAX_ROWS rows, give or
	 * take the row itself and its kind counts at the very end */
	do {
		rc = store_retention_step(s, &r, &out);
		CHECK(rc >= 0);
		CHECK(out.rows <= MAX_ROWS + 1 + GW_MAX_KINDS);
		rows += out.rows;
		steps++;
		/* between two steps the tables agree with the counters */
		CHECK_COUNTERS(s, path);
	} while (rc > 0 && steps < 1000);
	CHECK_EQ_INT(rc, 0);
	/* records + messages + message counts (each text is of one kind) +
	 * events + kind counts + the row */
	CHECK_EQ_INT(rows, RECS + RECS + 300 + EVENTS + 2 + 1);
	CHECK(steps >= (int)(rows / (MAX_ROWS + 1 + GW_MAX_KINDS)));
	CHECK(steps > 5);

	/* nothing of "big" is left, "keep" is whole */
	CHECK_EQ_INT(count_rows(path, "SELECT count(*) FROM submissions"), 1);
	CHECK_EQ_INT(count_rows(path, "SELECT count(*) FROM records"), 2);
	CHECK_EQ_INT(count_rows(path, "SELECT count(*) FROM record_messages"), 0);
	CHECK_EQ_INT(count_rows(path, "SELECT count(*) FROM message_counts"), 0);
	CHECK_EQ_INT(count_rows(path, "SELECT count(*) FROM kind_counts"), 1);
	CHECK_EQ_INT(count_rows(path, "SELECT count(*) FROM events"), 1);
	get(s, "keep", &st);
	CHECK_KIND(&st, "animal", 2, 0, 2, 0, 0, 0, 0);
	CHECK_COUNTERS(s, path);

	/* the freed pages go back to the file system in small steps */
	{
		struct store_stats a, b;
		int left, prev = 1 << 30, calls = 0;

		CHECK_EQ_INT(count_rows(path, "PRAGMA auto_vacuum"), 2);  /* INCREMENTAL */
		CHECK_EQ_INT(store_stats(s, &a), 0);
		CHECK(a.free_bytes > 0);
		while ((left = store_vacuum_step(s, 4)) > 0 && calls++ < 10000) {
			CHECK(left < prev);
			prev = left;
		}
		CHECK_EQ_INT(left, 0);
		CHECK(calls > 1);
		CHECK_EQ_INT(store_stats(s, &b), 0);
		CHECK_EQ_INT(b.free_bytes, 0);
		CHECK(b.bytes < a.bytes);
		CHECK_EQ_INT(a.bytes - b.bytes, a.free_bytes);
	}

	/* publish ids: forgotten in bounded steps too */
	for (int i = 0; i < 250; i++) {
		char id[16];

		snprintf(id, sizeof(id), "id-%d", i);
		pub_init(&p, GW_PUB_NOTIFICATION, "keep");
		p.notification = "x";
		p.id = id;
		publish_at(s, &p, t0 + 60000 + i);
	}
	r.cutoff_ms = 0;
	r.ids_before_ms = t0 + 60000 + 200;   /* ids 0..199 */
	steps = sweep(s, &r, &sum);
	CHECK_EQ_INT(sum.ids, 200);
	CHECK(steps >= 2);
	CHECK_EQ_INT(count_rows(path, "SELECT count(*) FROM processed"), 50);

	/* the counters follow every other path that adds or removes rows: a
	 * reset, a publish undone half-way (too many kinds: its savepoint is
	 * rolled back after some records went in), events pruned to the last N */
	pub_init(&p, GW_PUB_RESET, "keep");
	publish_at(s, &p, t0 + 70000);
	CHECK_EQ_INT(count_rows(path, "SELECT count(*) FROM records"), 0);
	CHECK_COUNTERS(s, path);
	{
		static const char *const kinds[] = { "k00", "k01", "k02", "k03", "k04",
			"k05", "k06", "k07", "k08", "k09", "k10", "k11", "k12", "k13",
			"k14", "k15", "k16" };

		pub_init(&p, GW_PUB_RECORDS, "keep");
		for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
			pub_rec(&p, kinds[i], "x", GW_RES_UNKNOWN);
		CHECK_EQ_INT(store_begin(s), 0);
		CHECK_EQ_INT(store_apply(s, &p, t0 + 70001, &st, err, sizeof(err)), GW_EINVAL);
		CHECK_EQ_INT(store_commit(s), 0);
		pub_free(&p);
	}
	CHECK_COUNTERS(s, path);
	CHECK_EQ_INT(store_begin(s), 0);
	pub_init(&p, GW_PUB_NOTIFICATION, "keep");
	p.notification = "y";
	CHECK_EQ_INT(store_apply(s, &p, t0 + 70002, &st, err, sizeof(err)), 0);
	CHECK_EQ_INT(store_append_event(s, "keep", st.seq, GW_PUB_NOTIFICATION, "{}",
					t0 + 70002, 3), 0);
	CHECK_EQ_INT(store_commit(s), 0);
	pub_free(&p);
	CHECK_EQ_INT(count_rows(path, "SELECT count(*) FROM events"), 3);
	CHECK_COUNTERS(s, path);

	proto_state_clear(&st);
	store_close(s);
	tmp_remove("retention.db");
}

/* since across a deletion: the seq floor */
static void test_retention_seq(void)
{
	struct store *s = open_mem();
	struct store_retention r = { 0, 0, 0, 0 };
	struct store_purged sum;
	struct store_stats ss;
	struct gw_state st;
	struct gw_pub p;
	struct evlist e;
	uint64_t oldest = 99;
	const int64_t t0 = 1800000000000LL;

	memset(&st, 0, sizeof(st));
	for (int i = 0; i < 5; i++)
		CHECK_EQ_INT(status_at(s, "k", GW_ST_LOADED, t0 + i), i + 1);
	pub_init(&p, GW_PUB_STATUS, "k");
	p.status = GW_ST_READY;
	p.id = "once";
	CHECK_EQ_INT(publish_at(s, &p, t0 + 5), 6);

	r.cutoff_ms = t0 + 1000;
	sweep(s, &r, &sum);
	CHECK_EQ_INT(sum.submissions, 1);
	CHECK_EQ_INT(store_stats(s, &ss), 0);
	CHECK_EQ_INT(ss.seq_floor, 7);

	/* deleted: exactly what a never-seen submission gives */
	get(s, "k", &st);
	CHECK_EQ_INT(st.exists, 0);
	CHECK_EQ_INT(st.seq, 0);
	CHECK_EQ_INT(st.status, GW_ST_NONE);
	memset(&e, 0, sizeof(e));
	CHECK_EQ_INT(store_events_since(s, "k", 3, 0, ev_cb, &e, &oldest), 0);
	CHECK_EQ_INT(oldest, 0);

	/* the publish id applied before the deletion is still remembered: a
	 * redelivery does not bring the submission back */
	pub_init(&p, GW_PUB_STATUS, "k");
	p.status = GW_ST_READY;
	p.id = "once";
	CHECK_EQ_INT(apply_free(s, &p, &st), 1);
	CHECK(!exists(s, "k"));

	/* published to again: a new submission whose seq skips 7, so no
	 * position 0..6 of the old history finds its next event stored */
	CHECK_EQ_INT(status_at(s, "k", GW_ST_WAITING, t0 + 5000), 8);
	get(s, "k", &st);
	CHECK_EQ_INT(st.exists, 1);
	CHECK_EQ_INT(st.status, GW_ST_WAITING);
	CHECK_EQ_INT(st.nkinds, 0);
	for (uint64_t since = 0; since <= 6; since++) {
		memset(&e, 0, sizeof(e));
		CHECK_EQ_INT(store_events_since(s, "k", since, 0, ev_cb, &e, &oldest), 1);
		CHECK_EQ_INT(oldest, 8);
		CHECK(oldest > since + 1);   /* the subscribe rule: a snapshot */
	}
	/* a client that saw the new history resumes in it */
	CHECK_EQ_INT(status_at(s, "k", GW_ST_LOADED, t0 + 5001), 9);
	memset(&e, 0, sizeof(e));
	CHECK_EQ_INT(store_events_since(s, "k", 8, 0, ev_cb, &e, &oldest), 1);
	CHECK_EQ_INT(e.seq[0], 9);
	CHECK(oldest <= 8 + 1);

	/* any new submission starts at the floor too (a client of it cannot
	 * hold an older position of that key) */
	CHECK_EQ_INT(status_at(s, "fresh", GW_ST_WAITING, t0 + 5000), 8);

	/* the floor only rises: deleting a submission with a lower seq leaves
	 * it; deleting k (seq 9) again raises it to 10 */
	r.cutoff_ms = t0 + 6000;
	sweep(s, &r, &sum);
	CHECK_EQ_INT(sum.submissions, 2);
	CHECK_EQ_INT(store_stats(s, &ss), 0);
	CHECK_EQ_INT(ss.seq_floor, 10);
	CHECK_EQ_INT(status_at(s, "k", GW_ST_WAITING, t0 + 7000), 11);

	proto_state_clear(&st);
	store_close(s);
}

/* a store made by the 001 schema alone, migrated: the final flags and the
 * counters come from what it holds; its auto_vacuum stays NONE */
static void test_retention_migration(void)
{
	static const char *const rows =
		"INSERT INTO meta VALUES ('epoch', 'e0');"
		"INSERT INTO submissions (id, key, status, seq, created_ms, updated_ms) VALUES"
		" (1, 'done', 6, 2, 1, 1000), (2, 'err', 3, 2, 1, 1000),"
		" (3, 'revived', 3, 2, 1, 1000), (4, 'open', 1, 1, 1, 1000);"
		"INSERT INTO events (submission_id, seq, type, at_ms, json) VALUES"
		" (1, 2, 0, 1000, '{}'), (2, 1, 3, 900, '{}'), (2, 2, 0, 1000, '{}'),"
		" (3, 1, 0, 900, '{}'), (3, 2, 3, 1000, '{}'), (4, 1, 0, 1000, '{}');"
		"INSERT INTO records (submission_id, kind, name) VALUES (4, 'animal', 'a');";
	struct store *s = NULL;
	struct store_retention r = { 0, 2000, 0, 0 };
	struct store_purged sum;
	struct store_stats ss;
	char path[512], err[256] = "";
	sqlite3 *raw = NULL;

	tmp_path(path, sizeof(path), "v1.db");
	tmp_remove("v1.db");
	CHECK_EQ_INT(sqlite3_open(path, &raw), SQLITE_OK);
	CHECK_EQ_INT(sqlite3_exec(raw, gw_schema_sql[0], NULL, NULL, NULL), SQLITE_OK);
	CHECK_EQ_INT(sqlite3_exec(raw, rows, NULL, NULL, NULL), SQLITE_OK);
	CHECK_EQ_INT(sqlite3_exec(raw, "PRAGMA user_version = 1", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(raw);

	CHECK_EQ_INT(store_open(path, STORE_WRITE, &s, err, sizeof(err)), 0);
	if (!s) {
		fprintf(stderr, "store_open: %s\n", err);
		return;
	}
	CHECK_EQ_INT(store_schema_version(s), gw_schema_count);
	CHECK_EQ_INT(store_stats(s, &ss), 0);
	CHECK_EQ_INT(ss.submissions, 4);
	CHECK_EQ_INT(ss.records, 1);
	CHECK_EQ_INT(ss.events, 6);
	CHECK_EQ_INT(ss.seq_floor, 0);
	CHECK_EQ_INT(count_rows(path, "PRAGMA auto_vacuum"), 0);

	/* final: Completed, and the Error set by the last event */
	sweep(s, &r, &sum);
	CHECK_EQ_INT(sum.submissions, 2);
	CHECK(!exists(s, "done"));
	CHECK(!exists(s, "err"));
	CHECK(exists(s, "revived"));
	CHECK(exists(s, "open"));
	CHECK_COUNTERS(s, path);
	/* freed pages stay in the file: nothing to give back */
	CHECK_EQ_INT(store_vacuum_step(s, 100), 0);
	store_close(s);
	tmp_remove("v1.db");
}

/* ---- scale: exact counts with 100,000 records in one submission ---- */

static void test_scale(void)
{
	enum { N = 100000, CHUNK = 10000 };
	struct store *s = open_mem();
	struct gw_state st;
	struct gw_pub p;
	char (*names)[16] = malloc((size_t)N * sizeof(*names));

	memset(&st, 0, sizeof(st));
	if (!names)
		abort();
	for (int i = 0; i < N; i++)
		snprintf(names[i], sizeof(names[i]), "s%06d", i);

	CHECK_EQ_INT(store_begin(s), 0);
	for (int c = 0; c < N / CHUNK; c++) {
		pub_init(&p, GW_PUB_RECORDS, "big");
		for (int i = c * CHUNK; i < (c + 1) * CHUNK; i++)
			pub_rec(&p, "sample", names[i], GW_RES_UNKNOWN);
		CHECK_EQ_INT(apply_free(s, &p, &st), 0);
	}
	/* every 10th record gets a result, every 100th an error message */
	pub_init(&p, GW_PUB_VALIDATION, "big");
	for (int i = 0; i < N; i += 10) {
		pub_rec(&p, "sample", names[i], i % 100 ? GW_RES_PASS : GW_RES_ERROR);
		if (i % 100 == 0)
			pub_msg(&p, "no barcode", "barcode");
	}
	CHECK_EQ_INT(apply_free(s, &p, &st), 0);
	CHECK_EQ_INT(store_commit(s), 0);
	CHECK_EQ_INT(st.seq, N / CHUNK + 1);
	CHECK_KIND(&st, "sample", N, N / 10, N - N / 10, N / 10 - N / 100, 0,
		   N / 100, N / 100);
	CHECK_TOP(&st, 0, "sample", "no barcode", "barcode", N / 100);

	/* one more small publish on the big submission: still exact */
	pub_init(&p, GW_PUB_VALIDATION, "big");
	pub_rec(&p, "sample", names[0], GW_RES_WARNING);      /* error -> warning */
	pub_rec(&p, "sample", names[1], GW_RES_ERROR);        /* unknown -> error */
	pub_msg(&p, "no barcode", "barcode");
	pub_rec(&p, "sample", "s-new", GW_RES_PASS);          /* new */
	pub_rec(&p, "animal", "a1", GW_RES_UNKNOWN);          /* new kind */
	CHECK_EQ_INT(apply_free(s, &p, &st), 0);
	CHECK_EQ_INT(st.seq, N / CHUNK + 2);
	CHECK_KIND(&st, "sample", N + 1, N / 10 + 2, N - N / 10 - 1,
		   N / 10 - N / 100 + 1, 1, N / 100, N / 100);
	CHECK_KIND(&st, "animal", 1, 0, 1, 0, 0, 0, 0);
	/* names[0] lost its message, names[1] gained one */
	CHECK_TOP(&st, 0, "sample", "no barcode", "barcode", N / 100);

	get(s, "big", &st);
	CHECK_KIND(&st, "sample", N + 1, N / 10 + 2, N - N / 10 - 1,
		   N / 10 - N / 100 + 1, 1, N / 100, N / 100);

	/* and a reset of it all */
	pub_init(&p, GW_PUB_RESET, "big");
	CHECK_EQ_INT(apply_free(s, &p, &st), 0);
	CHECK_EQ_INT(st.nkinds, 0);
	CHECK_EQ_INT(st.ntop, 0);

	free(names);
	proto_state_clear(&st);
	store_close(s);
}

int main(void)
{
	const char *base = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/test_store.XXXXXX",
		 base && *base ? base : "/tmp");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}

	test_open_memory();
	test_status_notification();
	test_records();
	test_validation();
	test_reset();
	test_reported_counts();
	test_duplicate_id();
	test_too_many_kinds();
	test_events();
	test_list_recent();
	test_file();
	test_retention_rules();
	test_retention_purge();
	test_retention_seq();
	test_retention_migration();
	test_scale();

	rmdir(tmpdir);
	return check_report();
}
