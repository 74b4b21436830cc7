/*
 * Registry: groups <-> subscriptions in both directions, swap-remove
 * indexes, group deletion when empty, table growth, owner lists.
 */
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "registry.h"

/* every member's idx must point back at its slot */
static int consistent(struct registry *r, const char *key)
{
	struct reg_group *g = registry_find(r, key);
	struct reg_sub *const *m;
	size_t n;

	if (!g)
		return 1;
	m = registry_members(g, &n);
	for (size_t i = 0; i < n; i++)
		if (m[i]->idx != i || m[i]->group != g)
			return 0;
	return 1;
}

static size_t members(struct registry *r, const char *key)
{
	struct reg_group *g = registry_find(r, key);
	size_t n = 0;

	if (g)
		registry_members(g, &n);
	return n;
}

static void test_join_leave(void)
{
	struct registry *r = registry_new();
	struct reg_sub *a = NULL, *b = NULL, *c = NULL;   /* owner lists */
	int oa, ob, oc;
	struct reg_sub *a1 = registry_join(r, "42", &oa, &a);
	struct reg_sub *b1 = registry_join(r, "42", &ob, &b);
	struct reg_sub *c1 = registry_join(r, "42", &oc, &c);
	struct reg_sub *a2 = registry_join(r, "43", &oa, &a);

	CHECK(a1 && b1 && c1 && a2);
	CHECK_EQ_INT(registry_group_count(r), 2);
	CHECK_EQ_INT(registry_sub_count(r), 4);
	CHECK_EQ_INT(members(r, "42"), 3);
	CHECK_EQ_INT(members(r, "43"), 1);
	CHECK_EQ_STR(registry_group_key(registry_find(r, "43")), "43");
	CHECK(registry_find(r, "44") == NULL);
	CHECK(registry_owner_find(a, "42") == a1);
	CHECK(registry_owner_find(a, "43") == a2);
	CHECK(registry_owner_find(b, "43") == NULL);

	/* leaving from the middle keeps the others' indexes right */
	registry_leave(r, a1, &a);
	CHECK_EQ_INT(members(r, "42"), 2);
	CHECK(consistent(r, "42"));
	CHECK(registry_owner_find(a, "42") == NULL);
	CHECK(registry_owner_find(a, "43") == a2);

	/* the last member leaving deletes the group */
	registry_leave(r, a2, &a);
	CHECK(a == NULL);
	CHECK(registry_find(r, "43") == NULL);
	CHECK_EQ_INT(registry_group_count(r), 1);

	registry_leave_all(r, &b);
	registry_leave_all(r, &c);
	CHECK_EQ_INT(registry_group_count(r), 0);
	CHECK_EQ_INT(registry_sub_count(r), 0);
	registry_free(r);
}

/* many groups force the table to grow; many members force arrays to grow */
static void test_growth(void)
{
	enum { OWNERS = 300, GROUPS = 2000 };
	struct registry *r = registry_new();
	struct reg_sub **lists = calloc(OWNERS, sizeof(*lists));
	char key[32];
	int ok = 1;

	for (int o = 0; o < OWNERS; o++)
		for (int g = o % 7; g < GROUPS; g += 7) {
			snprintf(key, sizeof(key), "k%d", g);
			if (!registry_join(r, key, &lists[o], &lists[o]))
				ok = 0;
		}
	CHECK(ok);
	CHECK_EQ_INT(registry_group_count(r), GROUPS);
	for (int g = 0; g < GROUPS; g += 97) {
		snprintf(key, sizeof(key), "k%d", g);
		/* owners o with o % 7 == g % 7 */
		CHECK_EQ_INT(members(r, key), (OWNERS - g % 7 + 6) / 7);
		CHECK(consistent(r, key));
	}
	/* closing every third owner walks only its own list */
	for (int o = 0; o < OWNERS; o += 3)
		registry_leave_all(r, &lists[o]);
	for (int g = 0; g < GROUPS; g += 89) {
		snprintf(key, sizeof(key), "k%d", g);
		CHECK(consistent(r, key));
	}
	for (int o = 0; o < OWNERS; o++)
		registry_leave_all(r, &lists[o]);
	CHECK_EQ_INT(registry_group_count(r), 0);
	CHECK_EQ_INT(registry_sub_count(r), 0);
	free(lists);
	registry_free(r);
}

/* the latest state frame a group keeps for late joiners: only a later seq
 * replaces it, a NULL frame ("no state") counts as known, and the group's
 * reference goes with the group */
static void test_state(void)
{
	struct registry *r = registry_new();
	struct reg_sub *list = NULL, *s;
	struct gw_buf *b1 = gw_buf_new("one", 3), *b2 = gw_buf_new("two", 3), *got = NULL;
	struct reg_group *g;
	uint64_t seq = 0;
	int64_t at = 0;

	s = registry_join(r, "k", (void *)1, &list);
	CHECK(s != NULL);
	g = registry_find(r, "k");
	CHECK(!registry_state_get(g, &got, &seq, &at));
	registry_state_set(g, NULL, 0, 100);
	CHECK(registry_state_get(g, &got, &seq, &at));
	CHECK(got == NULL);
	CHECK_EQ_INT(seq, 0);
	registry_state_set(g, b2, 7, 101);
	CHECK_EQ_INT(b2->refs, 2);
	registry_state_set(g, b1, 6, 102);          /* older: ignored */
	CHECK(registry_state_get(g, &got, &seq, &at));
	CHECK(got == b2);
	CHECK_EQ_INT(seq, 7);
	CHECK_EQ_INT(at, 101);
	CHECK_EQ_INT(b1->refs, 1);
	registry_state_set(g, b1, 8, 103);
	CHECK_EQ_INT(b2->refs, 1);
	CHECK_EQ_INT(b1->refs, 2);
	registry_state_forget(g);              /* a later set of any seq counts */
	CHECK(!registry_state_get(g, &got, &seq, &at));
	CHECK_EQ_INT(b1->refs, 1);
	registry_state_set(g, b1, 0, 104);
	CHECK(registry_state_get(g, &got, &seq, &at));
	CHECK(got == b1);
	CHECK_EQ_INT(b1->refs, 2);
	registry_leave(r, s, &list);            /* the group goes, and its reference */
	CHECK_EQ_INT(b1->refs, 1);
	CHECK(registry_find(r, "k") == NULL);
	gw_buf_unref(b1);
	gw_buf_unref(b2);
	registry_free(r);
}

int main(void)
{
	test_join_leave();
	test_growth();
	test_state();
	return check_report();
}
