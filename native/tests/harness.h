/* SPDX-License-Identifier: MIT
 * harness.h - a minimal unit-test harness: CHECK records a failure and goes
 * on; the runner prints "N passed, 0 failed" last. */
#ifndef EL_HARNESS_H
#define EL_HARNESS_H

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

#endif
