/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Minimal unit-test support. Each test binary prints one line per case,
 * "ok - NAME" or "not ok - NAME: WHY", and exits 1 if any case failed. tests/run counts them.
 *
 *     TEST(name) { CHECK(x == 1); CHECK_EQ_INT(a, b); }
 *     int main(void) { RUN(name); return test_done(); }
 */
#pragma once

#include <stdio.h>
#include <string.h>

static int test_failed_total;
static int test_case_failed;
static const char *test_case_name;

#define TEST(name) static void test_##name(void)

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond) && !test_case_failed) {                                                \
			printf("not ok - %s: %s:%d: CHECK(%s)\n", test_case_name, __FILE__,        \
			       __LINE__, #cond);                                                   \
			test_case_failed = 1;                                                      \
		}                                                                                  \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
	do {                                                                                       \
		long long _a = (long long)(a), _b = (long long)(b);                                \
		if (_a != _b && !test_case_failed) {                                               \
			printf("not ok - %s: %s:%d: %s == %lld, expected %lld\n", test_case_name,  \
			       __FILE__, __LINE__, #a, _a, _b);                                    \
			test_case_failed = 1;                                                      \
		}                                                                                  \
	} while (0)

#define CHECK_EQ_STR(a, b)                                                                         \
	do {                                                                                       \
		const char *_a = (a), *_b = (b);                                                   \
		if ((!_a || !_b || strcmp(_a, _b) != 0) && !test_case_failed) {                    \
			printf("not ok - %s: %s:%d: %s == \"%s\", expected \"%s\"\n",              \
			       test_case_name, __FILE__, __LINE__, #a, _a ? _a : "(null)",          \
			       _b ? _b : "(null)");                                                 \
			test_case_failed = 1;                                                      \
		}                                                                                  \
	} while (0)

#define RUN(name)                                                                                  \
	do {                                                                                       \
		test_case_name = #name;                                                            \
		test_case_failed = 0;                                                              \
		test_##name();                                                                     \
		if (!test_case_failed)                                                             \
			printf("ok - %s\n", #name);                                                \
		else                                                                               \
			test_failed_total++;                                                       \
		fflush(stdout);                                                                    \
	} while (0)

static inline int test_done(void)
{
	return test_failed_total ? 1 : 0;
}
