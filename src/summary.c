/*
 * Validation summary arithmetic, pure: no SQLite, no allocation.
 *
 * A record is always in exactly one result class (unknown, pass, warning,
 * error). The store keeps per (submission, kind) counters of those classes
 * and moves one record at a time with summary_transition(): take it out of
 * its old class, put it in the new one. So the summary never needs a scan of
 * the records, however many there are. unknown and issues are derived on
 * read, so they cannot drift from the stored counters.
 *
 * Any thread; the functions touch only what they are given.
 */
#include "summary.h"

#include <string.h>

/* a result that is not a known enum gw_result value counts as unknown, both
 * when entering and when leaving, so a bad value cannot unbalance the
 * counters */
static int res_known(int res)
{
	return res > GW_RES_UNKNOWN && res < GW_RES_COUNT;
}

static int64_t *res_counter(struct gw_kind_sum *k, int res)
{
	switch (res) {
	case GW_RES_PASS:
		return &k->pass;
	case GW_RES_WARNING:
		return &k->warning;
	case GW_RES_ERROR:
		return &k->error;
	default:
		return NULL;
	}
}

void summary_transition(struct gw_kind_sum *k, int old_res, int new_res)
{
	int64_t *c;

	if (old_res < 0) {
		k->all++;
	} else if (res_known(old_res)) {
		k->known--;
		if ((c = res_counter(k, old_res)))
			(*c)--;
	}

	if (new_res < 0) {
		k->all--;
	} else if (res_known(new_res)) {
		k->known++;
		if ((c = res_counter(k, new_res)))
			(*c)++;
	}
}

int64_t summary_unknown(const struct gw_kind_sum *k)
{
	return k->all - k->known;
}

int64_t summary_issues(const struct gw_kind_sum *k)
{
	return k->known - k->pass - k->warning;
}

const struct gw_kind_sum *summary_find(const struct gw_state *st, const char *kind)
{
	if (!st || !kind)
		return NULL;
	for (size_t i = 0; i < st->nkinds && i < GW_MAX_KINDS; i++)
		if (!strcmp(st->kinds[i].kind, kind))
			return st->kinds[i].all > 0 ? &st->kinds[i] : NULL;
	return NULL;
}
