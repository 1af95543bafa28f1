/* SPDX-License-Identifier: MIT
 * harness.h - a minimal unit-test harness: CHECK records a failure and goes
 * on; the runner prints "N passed, 0 failed" last. */
#ifndef EL_HARNESS_H
#define EL_HARNESS_H

#include <stddef.h>
#include <stdio.h>

extern int h_failed_checks;
#define CHECK(cond)                                                                    \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
			h_failed_checks++;                                             \
		}                                                                      \
	} while (0)
#define CHECK_EQ(a, b)                                                                 \
	do {                                                                           \
		long long _a = (long long)(a), _b = (long long)(b);                    \
		if (_a != _b) {                                                        \
			fprintf(stderr, "  %s:%d: CHECK_EQ failed: %s = %lld, %s = %lld\n",  \
				__FILE__, __LINE__, #a, _a, #b, _b);                   \
			h_failed_checks++;                                             \
		}                                                                      \
	} while (0)

/* Runs each test, prints "ok"/"FAIL" and its name, and counts it. */
struct h_test {
	const char *name;
	void (*fn)(void);
};
static inline void h_run(const struct h_test *tests, size_t n, int *passed, int *failed)
{
	for (size_t i = 0; i < n; i++) {
		int before = h_failed_checks;
		tests[i].fn();
		int ok = h_failed_checks == before;
		printf("%s %s\n", ok ? "ok  " : "FAIL", tests[i].name);
		ok ? (*passed)++ : (*failed)++;
	}
}

#endif
