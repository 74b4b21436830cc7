/*
 * Validation summary arithmetic, pure. The store keeps one row of counters
 * per (submission, kind) and moves a record between result classes with
 * summary_transition(), so a publish costs O(1) per record instead of a scan.
 */
#ifndef GW_SUMMARY_H
#define GW_SUMMARY_H

#include "proto.h"

/* A record moves from old_res to new_res. old_res = -1: the record is new.
 * new_res = -1: the record is removed. Results are enum gw_result. */
void summary_transition(struct gw_kind_sum *k, int old_res, int new_res);

/* all - known */
int64_t summary_unknown(const struct gw_kind_sum *k);
/* known records whose result is neither Pass nor Warning */
int64_t summary_issues(const struct gw_kind_sum *k);
/* the counters of one kind in a state; NULL when the kind has no records */
const struct gw_kind_sum *summary_find(const struct gw_state *st, const char *kind);

#endif
