/*
 * Shared by the libFuzzer targets in tests/fuzz: an invariant check that
 * aborts (libFuzzer then saves the input as a crash artifact), and checks
 * of the reason lines every parser writes. Header-only, one copy per target.
 */
#ifndef GW_FUZZ_H
#define GW_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: invariant failed: %s\n", \
			__FILE__, __LINE__, #cond); \
		abort(); \
	} \
} while (0)

/* s is NUL-terminated within len bytes and printable ASCII (reasons go into
 * logs and JSON error bodies unescaped by anyone but us) */
static inline int fuzz_printable(const char *s, size_t len)
{
	const char *end = memchr(s, '\0', len);

	if (!end)
		return 0;
	for (; s < end; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

/* a heap copy of data[0..n) with a NUL after it (malloc'd; free()) */
static inline char *fuzz_cstr(const uint8_t *data, size_t n)
{
	char *s = malloc(n + 1);

	FUZZ_CHECK(s != NULL);
	if (n)
		memcpy(s, data, n);
	s[n] = '\0';
	return s;
}

/* a heap copy of exactly n bytes, NULL when n is 0 (as rabbitmq-c hands an
 * empty value), so that a read past the end is caught by ASan */
static inline void *fuzz_dup(const uint8_t *data, size_t n)
{
	void *p;

	if (!n)
		return NULL;
	p = malloc(n);
	FUZZ_CHECK(p != NULL);
	memcpy(p, data, n);
	return p;
}

#endif
