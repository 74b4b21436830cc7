/*
 * A tiny check harness for the unit tests, in the spirit of Redis testhelp.h.
 * A failed check prints file:line, the expression (and for the _EQ_ forms
 * both values) to stderr, counts the failure and carries on, so one run shows
 * every broken check. main() ends with `return check_report();`, which prints
 * a one-line tally and gives the exit status ctest reads (0 = pass).
 *
 * Header-only: the counters are static, one set per test executable (each
 * test is one translation unit). Single-threaded use only.
 */
#ifndef GW_CHECK_H
#define GW_CHECK_H

#include <stdio.h>
#include <string.h>

static inline long *check_counter_(int failed)
{
	static long passed, fails;

	return failed ? &fails : &passed;
}

static inline void check_result_(int ok)
{
	(*check_counter_(!ok))++;
}

/* number of failed checks so far */
static inline long check_failures(void)
{
	return *check_counter_(1);
}

#define CHECK(expr) do { \
	int check_ok_ = !!(expr); \
	check_result_(check_ok_); \
	if (!check_ok_) \
		fprintf(stderr, "%s:%d: CHECK(%s) failed\n", \
			__FILE__, __LINE__, #expr); \
} while (0)

/* integers of any width and signedness, compared as long long (so uint64_t
 * values above LLONG_MAX compare by bit pattern: fine for tests) */
#define CHECK_EQ_INT(a, b) do { \
	long long check_a_ = (long long)(a), check_b_ = (long long)(b); \
	int check_ok_ = check_a_ == check_b_; \
	check_result_(check_ok_); \
	if (!check_ok_) \
		fprintf(stderr, "%s:%d: CHECK_EQ_INT(%s, %s) failed: %lld != %lld\n", \
			__FILE__, __LINE__, #a, #b, check_a_, check_b_); \
} while (0)

/* NUL-terminated strings; two NULLs are equal, NULL and a string are not */
#define CHECK_EQ_STR(a, b) do { \
	const char *check_a_ = (a), *check_b_ = (b); \
	int check_ok_ = (!check_a_ || !check_b_) ? check_a_ == check_b_ \
						 : !strcmp(check_a_, check_b_); \
	check_result_(check_ok_); \
	if (!check_ok_) \
		fprintf(stderr, "%s:%d: CHECK_EQ_STR(%s, %s) failed: " \
			"\"%s\" != \"%s\"\n", __FILE__, __LINE__, #a, #b, \
			check_a_ ? check_a_ : "(null)", \
			check_b_ ? check_b_ : "(null)"); \
} while (0)

/* prints the tally; returns the exit status for main: 0 if all passed */
static inline int check_report(void)
{
	long failed = *check_counter_(1), passed = *check_counter_(0);

	fprintf(stderr, "%ld checks, %ld failed\n", passed + failed, failed);
	return failed ? 1 : 0;
}

#endif
