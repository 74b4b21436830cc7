/*
 * Unit tests of summary.c: the result-class transitions the store relies on
 * to keep per-kind counters without scanning records, the derived unknown and
 * issues numbers, and summary_find.
 */
#include <string.h>

#include "check.h"
#include "summary.h"

/* all, known, pass, warning, error, then the derived unknown and issues */
#define CHECK_SUM(k, a, kn, p, w, e, u, i) do { \
	CHECK_EQ_INT((k)->all, a); \
	CHECK_EQ_INT((k)->known, kn); \
	CHECK_EQ_INT((k)->pass, p); \
	CHECK_EQ_INT((k)->warning, w); \
	CHECK_EQ_INT((k)->error, e); \
	CHECK_EQ_INT(summary_unknown(k), u); \
	CHECK_EQ_INT(summary_issues(k), i); \
} while (0)

static void test_transitions(void)
{
	struct gw_kind_sum k;

	memset(&k, 0, sizeof(k));
	CHECK_SUM(&k, 0, 0, 0, 0, 0, 0, 0);

	/* new record, no result yet */
	summary_transition(&k, -1, GW_RES_UNKNOWN);
	CHECK_SUM(&k, 1, 0, 0, 0, 0, 1, 0);
	/* unknown -> pass */
	summary_transition(&k, GW_RES_UNKNOWN, GW_RES_PASS);
	CHECK_SUM(&k, 1, 1, 1, 0, 0, 0, 0);
	/* pass -> error */
	summary_transition(&k, GW_RES_PASS, GW_RES_ERROR);
	CHECK_SUM(&k, 1, 1, 0, 0, 1, 0, 1);
	/* error -> warning: a warning is not an issue */
	summary_transition(&k, GW_RES_ERROR, GW_RES_WARNING);
	CHECK_SUM(&k, 1, 1, 0, 1, 0, 0, 0);
	/* same class again changes nothing */
	summary_transition(&k, GW_RES_WARNING, GW_RES_WARNING);
	CHECK_SUM(&k, 1, 1, 0, 1, 0, 0, 0);

	/* a new record that arrives with a result (validation first) */
	summary_transition(&k, -1, GW_RES_ERROR);
	CHECK_SUM(&k, 2, 2, 0, 1, 1, 0, 1);
	/* a third, unknown */
	summary_transition(&k, -1, GW_RES_UNKNOWN);
	CHECK_SUM(&k, 3, 2, 0, 1, 1, 1, 1);

	/* removals: each takes its record out of its class */
	summary_transition(&k, GW_RES_ERROR, -1);
	CHECK_SUM(&k, 2, 1, 0, 1, 0, 1, 0);
	summary_transition(&k, GW_RES_UNKNOWN, -1);
	CHECK_SUM(&k, 1, 1, 0, 1, 0, 0, 0);
	summary_transition(&k, GW_RES_WARNING, -1);
	CHECK_SUM(&k, 0, 0, 0, 0, 0, 0, 0);

	/* known -> unknown again (a result withdrawn) */
	summary_transition(&k, -1, GW_RES_PASS);
	summary_transition(&k, GW_RES_PASS, GW_RES_UNKNOWN);
	CHECK_SUM(&k, 1, 0, 0, 0, 0, 1, 0);

	/* new and removed at once is no change */
	summary_transition(&k, -1, -1);
	CHECK_SUM(&k, 1, 0, 0, 0, 0, 1, 0);
}

static void test_bad_result_is_balanced(void)
{
	struct gw_kind_sum k;

	/* an out-of-range result counts as unknown going in and coming out,
	 * so the counters cannot drift */
	memset(&k, 0, sizeof(k));
	summary_transition(&k, -1, 42);
	CHECK_SUM(&k, 1, 0, 0, 0, 0, 1, 0);
	summary_transition(&k, 42, GW_RES_PASS);
	CHECK_SUM(&k, 1, 1, 1, 0, 0, 0, 0);
	summary_transition(&k, GW_RES_PASS, 42);
	summary_transition(&k, 42, -1);
	CHECK_SUM(&k, 0, 0, 0, 0, 0, 0, 0);
}

static void test_arithmetic(void)
{
	struct gw_kind_sum k = { .all = 100, .known = 60, .pass = 30,
				 .warning = 20, .error = 10 };

	CHECK_EQ_INT(summary_unknown(&k), 40);
	CHECK_EQ_INT(summary_issues(&k), 10);

	/* big numbers: counters are 64-bit */
	k.all = 5000000000LL;
	k.known = 4000000000LL;
	k.pass = 1000000000LL;
	k.warning = 0;
	k.error = 3000000000LL;
	CHECK_EQ_INT(summary_unknown(&k), 1000000000LL);
	CHECK_EQ_INT(summary_issues(&k), 3000000000LL);
}

static void test_find(void)
{
	struct gw_state st;
	const struct gw_kind_sum *k;

	memset(&st, 0, sizeof(st));
	CHECK(summary_find(&st, "animal") == NULL);
	CHECK(summary_find(NULL, "animal") == NULL);

	strcpy(st.kinds[0].kind, "animal");
	st.kinds[0].all = 3;
	strcpy(st.kinds[1].kind, "sample");
	st.kinds[1].all = 5;
	strcpy(st.kinds[2].kind, "empty");
	st.kinds[2].all = 0;
	st.nkinds = 3;

	k = summary_find(&st, "sample");
	CHECK(k == &st.kinds[1]);
	CHECK_EQ_INT(k ? k->all : -1, 5);
	CHECK(summary_find(&st, "animal") == &st.kinds[0]);
	CHECK(summary_find(&st, "plant") == NULL);
	CHECK(summary_find(&st, "anima") == NULL);
	CHECK(summary_find(&st, NULL) == NULL);
	/* a kind with no records is reported as absent */
	CHECK(summary_find(&st, "empty") == NULL);

	/* entries past nkinds are not looked at */
	st.nkinds = 1;
	CHECK(summary_find(&st, "sample") == NULL);
}

int main(void)
{
	test_transitions();
	test_bad_result_is_balanced();
	test_arithmetic();
	test_find();
	return check_report();
}
