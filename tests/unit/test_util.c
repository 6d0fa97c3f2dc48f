/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for src/util: struct buf limits, the parsers, bounded strings, file reading. */
#define _GNU_SOURCE /* mkostemp, pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/util.h"
#include "test.h"

/* ---------------------------------------------------------------- buf */

TEST(buf_zero_init_is_empty)
{
	struct buf b = BUF_INIT(8);

	CHECK(b.data == NULL);
	CHECK_EQ_INT(b.len, 0);
	CHECK_EQ_INT(buf_append(&b, NULL, 0), 0);
	CHECK(b.data == NULL);
	buf_done(&b);
}

TEST(buf_append_up_to_max)
{
	struct buf b = BUF_INIT(8);

	CHECK_EQ_INT(buf_append(&b, "abcd", 4), 0);
	CHECK_EQ_INT(buf_append(&b, "efgh", 4), 0);
	CHECK_EQ_INT(b.len, 8);
	CHECK(memcmp(b.data, "abcdefgh", 8) == 0);
	CHECK(b.cap <= b.max);
	buf_done(&b);
}

TEST(buf_append_past_max_fails_unchanged)
{
	struct buf b = BUF_INIT(8);

	CHECK_EQ_INT(buf_append(&b, "abcdef", 6), 0);
	CHECK_EQ_INT(buf_append(&b, "xyz", 3), -E2BIG);
	CHECK_EQ_INT(b.len, 6);
	CHECK(memcmp(b.data, "abcdef", 6) == 0);
	CHECK_EQ_INT(buf_append(&b, "xy", 2), 0);
	CHECK_EQ_INT(buf_append(&b, "z", 1), -E2BIG);
	CHECK_EQ_INT(b.len, 8);
	buf_done(&b);
}

TEST(buf_first_append_over_max_allocates_nothing)
{
	struct buf b = BUF_INIT(8);

	CHECK_EQ_INT(buf_append(&b, "123456789", 9), -E2BIG);
	CHECK(b.data == NULL);
	CHECK_EQ_INT(b.len, 0);
	CHECK_EQ_INT(b.cap, 0);
}

TEST(buf_max_zero_refuses_everything)
{
	struct buf b = { 0 };

	CHECK_EQ_INT(buf_append(&b, "a", 1), -E2BIG);
	CHECK_EQ_INT(buf_reserve(&b, 1), -E2BIG);
	CHECK(b.data == NULL);
}

TEST(buf_reserve_overflow)
{
	struct buf b = BUF_INIT(SIZE_MAX);

	CHECK_EQ_INT(buf_append(&b, "ab", 2), 0);
	CHECK_EQ_INT(buf_reserve(&b, SIZE_MAX), -E2BIG);
	CHECK_EQ_INT(buf_reserve(&b, SIZE_MAX - 1), -E2BIG);
	CHECK_EQ_INT(b.len, 2);
	buf_done(&b);
}

TEST(buf_cap_never_exceeds_max)
{
	struct buf b = BUF_INIT(300);

	CHECK_EQ_INT(buf_append(&b, "x", 1), 0);
	CHECK(b.cap <= 300);
	CHECK_EQ_INT(buf_reserve(&b, 299), 0);
	CHECK_EQ_INT(b.cap, 300);
	CHECK_EQ_INT(buf_reserve(&b, 300), -E2BIG);
	buf_done(&b);
}

TEST(buf_consume)
{
	struct buf b = BUF_INIT(64);

	CHECK_EQ_INT(buf_append(&b, "abcdef", 6), 0);
	buf_consume(&b, 0);
	CHECK_EQ_INT(b.len, 6);
	buf_consume(&b, 2);
	CHECK_EQ_INT(b.len, 4);
	CHECK(memcmp(b.data, "cdef", 4) == 0);
	/* room freed by consume can be appended again */
	CHECK_EQ_INT(buf_append(&b, "gh", 2), 0);
	CHECK(memcmp(b.data, "cdefgh", 6) == 0);
	buf_consume(&b, 6);
	CHECK_EQ_INT(b.len, 0);
	CHECK_EQ_INT(buf_append(&b, "ij", 2), 0);
	buf_consume(&b, 100); /* more than len: empties */
	CHECK_EQ_INT(b.len, 0);
	buf_done(&b);
}

TEST(buf_consume_frees_room_under_max)
{
	struct buf b = BUF_INIT(4);

	CHECK_EQ_INT(buf_append(&b, "abcd", 4), 0);
	CHECK_EQ_INT(buf_append(&b, "e", 1), -E2BIG);
	buf_consume(&b, 1);
	CHECK_EQ_INT(buf_append(&b, "e", 1), 0);
	CHECK(memcmp(b.data, "bcde", 4) == 0);
	buf_done(&b);
}

TEST(buf_reset_and_done)
{
	struct buf b = BUF_INIT(16);

	CHECK_EQ_INT(buf_append(&b, "abc", 3), 0);
	buf_reset(&b);
	CHECK_EQ_INT(b.len, 0);
	CHECK(b.data != NULL);
	buf_done(&b);
	CHECK(b.data == NULL);
	CHECK_EQ_INT(b.len, 0);
	CHECK_EQ_INT(b.cap, 0);
	CHECK_EQ_INT(b.max, 16); /* max is kept: the buffer is reusable */
	CHECK_EQ_INT(buf_append(&b, "abc", 3), 0);
	buf_done(&b);
	buf_done(&b); /* idempotent */
}

/* ---------------------------------------------------------------- parse_size */

static int size_of(const char *s, uint64_t *ret)
{
	*ret = 0xdeadbeef;
	return parse_size(s, ret);
}

TEST(parse_size_plain)
{
	uint64_t v;

	CHECK_EQ_INT(size_of("0", &v), 0);
	CHECK_EQ_INT(v, 0);
	CHECK_EQ_INT(size_of("512", &v), 0);
	CHECK_EQ_INT(v, 512);
	CHECK_EQ_INT(size_of("1b", &v), 0);
	CHECK_EQ_INT(v, 1);
}

TEST(parse_size_units)
{
	uint64_t v;

	CHECK_EQ_INT(size_of("64k", &v), 0);
	CHECK_EQ_INT(v, 64ull << 10);
	CHECK_EQ_INT(size_of("512m", &v), 0);
	CHECK_EQ_INT(v, 512ull << 20);
	CHECK_EQ_INT(size_of("1g", &v), 0);
	CHECK_EQ_INT(v, 1ull << 30);
	CHECK_EQ_INT(size_of("2T", &v), 0);
	CHECK_EQ_INT(v, 2ull << 40);
	CHECK_EQ_INT(size_of("256M", &v), 0);
	CHECK_EQ_INT(v, 256ull << 20);
}

TEST(parse_size_fraction)
{
	uint64_t v;

	CHECK_EQ_INT(size_of("1.5g", &v), 0);
	CHECK_EQ_INT(v, 3ull << 29);
	CHECK_EQ_INT(size_of("0.5k", &v), 0);
	CHECK_EQ_INT(v, 512);
	CHECK_EQ_INT(size_of("2.25m", &v), 0);
	CHECK_EQ_INT(v, 9ull << 18);
}

TEST(parse_size_long_suffixes)
{
	uint64_t v;

	CHECK_EQ_INT(size_of("64MiB", &v), 0);
	CHECK_EQ_INT(v, 64ull << 20);
	CHECK_EQ_INT(size_of("1kb", &v), 0);
	CHECK_EQ_INT(v, 1024);
	CHECK_EQ_INT(size_of("3GB", &v), 0);
	CHECK_EQ_INT(v, 3ull << 30);
	CHECK_EQ_INT(size_of("1Gi", &v), 0);
	CHECK_EQ_INT(v, 1ull << 30);
}

TEST(parse_size_rejects_junk)
{
	static const char *const junk[] = {
		"",    "m",   "abc", "12x",   "1.g",  ".5g", "-1",   "+1",  " 1",   "1 ",    "1 g",
		"1gg", "1bi", "1ib", "1.5.5", "1..5", "1e3", "0x10", "1g ", "1,5g", "1Mi B", "1kk",
	};
	uint64_t v;

	for (size_t i = 0; i < ARRAY_SIZE(junk); i++) {
		int r = size_of(junk[i], &v);
		if (r != -EINVAL)
			printf("# parse_size(\"%s\") = %d\n", junk[i], r);
		CHECK_EQ_INT(r, -EINVAL);
		CHECK_EQ_INT(v, 0xdeadbeef); /* *ret untouched */
	}
	CHECK_EQ_INT(parse_size(NULL, &v), -EINVAL);
}

TEST(parse_size_rejects_overflow)
{
	static const char *const big[] = {
		"18446744073709551616", /* 2^64 */
		"99999999999999999999999",
		"17179869184g",	      /* 2^34 GiB = 2^64 */
		"16777216t",	      /* 2^24 TiB = 2^64 */
		"18014398509481984k", /* 2^54 KiB = 2^64 */
	};
	uint64_t v;

	for (size_t i = 0; i < ARRAY_SIZE(big); i++) {
		int r = size_of(big[i], &v);
		if (r != -ERANGE)
			printf("# parse_size(\"%s\") = %d\n", big[i], r);
		CHECK_EQ_INT(r, -ERANGE);
		CHECK_EQ_INT(v, 0xdeadbeef);
	}
}

TEST(parse_size_fraction_near_the_top)
{
	/* the whole part is the largest that fits (2^64 - 2^40); a fraction of a binary unit is
	 * less than one unit, so whole + fraction still fits: 0.99 TiB more, no wrap-around */
	uint64_t v = 0;

	CHECK_EQ_INT(size_of("16777215.99t", &v), 0);
	CHECK(v == (16777215ULL << 40) + (99ULL << 40) / 100);
}

TEST(parse_size_largest)
{
	uint64_t v;

	CHECK_EQ_INT(size_of("16777215t", &v), 0);
	CHECK(v == (UINT64_MAX - ((1ull << 40) - 1)));
	CHECK_EQ_INT(size_of("17179869183g", &v), 0);
	CHECK(v == (UINT64_MAX - ((1ull << 30) - 1)));
}

/* ---------------------------------------------------------------- parse_u64 */

TEST(parse_u64_valid)
{
	uint64_t v = 1;

	CHECK_EQ_INT(parse_u64("0", 10, &v), 0);
	CHECK_EQ_INT(v, 0);
	CHECK_EQ_INT(parse_u64("007", 10, &v), 0);
	CHECK_EQ_INT(v, 7);
	CHECK_EQ_INT(parse_u64("18446744073709551615", UINT64_MAX, &v), 0);
	CHECK(v == UINT64_MAX);
}

TEST(parse_u64_max_bound)
{
	uint64_t v = 5;

	CHECK_EQ_INT(parse_u64("100", 100, &v), 0);
	CHECK_EQ_INT(v, 100);
	v = 5;
	CHECK_EQ_INT(parse_u64("101", 100, &v), -ERANGE);
	CHECK_EQ_INT(v, 5);
	CHECK_EQ_INT(parse_u64("1", 0, &v), -ERANGE);
}

TEST(parse_u64_rejects_overflow)
{
	uint64_t v = 5;

	CHECK_EQ_INT(parse_u64("18446744073709551616", UINT64_MAX, &v), -ERANGE);
	CHECK_EQ_INT(parse_u64("99999999999999999999", UINT64_MAX, &v), -ERANGE);
	CHECK_EQ_INT(v, 5);
}

TEST(parse_u64_rejects_junk)
{
	static const char *const junk[] = { "", "-1", "+1", " 1", "1 ", "0x10", "1a", "1.0", "1k" };
	uint64_t v = 5;

	for (size_t i = 0; i < ARRAY_SIZE(junk); i++)
		CHECK_EQ_INT(parse_u64(junk[i], UINT64_MAX, &v), -EINVAL);
	CHECK_EQ_INT(parse_u64(NULL, UINT64_MAX, &v), -EINVAL);
	CHECK_EQ_INT(v, 5);
}

/* ---------------------------------------------------------------- strings */

TEST(str_copy_fits)
{
	char d[4];

	CHECK_EQ_INT(str_copy(d, sizeof(d), "abc"), 0);
	CHECK_EQ_STR(d, "abc");
	CHECK_EQ_INT(str_copy(d, 1, ""), 0);
	CHECK_EQ_STR(d, "");
}

TEST(str_copy_truncates)
{
	char d[4] = "zzz";

	CHECK_EQ_INT(str_copy(d, sizeof(d), "abcd"), -ENAMETOOLONG);
	CHECK_EQ_STR(d, "abc");
	CHECK_EQ_INT(str_copy(d, 1, "x"), -ENAMETOOLONG);
	CHECK_EQ_STR(d, "");
}

TEST(str_copy_size_zero)
{
	char d[2] = "q";

	CHECK_EQ_INT(str_copy(d, 0, "x"), -ENAMETOOLONG);
	CHECK_EQ_STR(d, "q"); /* nothing written */
}

TEST(str_printf_truncates)
{
	char d[6];

	CHECK_EQ_INT(str_printf(d, sizeof(d), "%s-%d", "ab", 12), 0);
	CHECK_EQ_STR(d, "ab-12");
	CHECK_EQ_INT(str_printf(d, sizeof(d), "%s-%d", "ab", 123), -ENAMETOOLONG);
	CHECK_EQ_STR(d, "ab-12");
}

/* ---------------------------------------------------------------- files */

static int tmpfile_with(const char *content, size_t len, char *path, size_t size)
{
	const char *dir = getenv("TMPDIR");
	_cleanup_close_ int fd = -1;
	int r;

	r = str_printf(path, size, "%s/cove-test-util-XXXXXX", dir && *dir ? dir : "/tmp");
	if (r < 0)
		return r;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = write_full(fd, content, len);
	if (r < 0)
		unlink(path);
	return r;
}

TEST(read_file_within_max)
{
	char path[4096];
	_cleanup_free_ char *s = NULL;
	size_t len = 0;

	CHECK_EQ_INT(tmpfile_with("0123456789", 10, path, sizeof(path)), 0);
	CHECK_EQ_INT(read_file(path, 10, &s, &len), 0);
	CHECK_EQ_INT(len, 10);
	CHECK_EQ_STR(s, "0123456789"); /* NUL-terminated */
	free(s);
	s = NULL;
	CHECK_EQ_INT(read_file(path, 1000, &s, NULL), 0);
	CHECK_EQ_STR(s, "0123456789");
	unlink(path);
}

TEST(read_file_over_max)
{
	char path[4096];
	char *s = (char *)"untouched";
	size_t len = 77;

	CHECK_EQ_INT(tmpfile_with("0123456789", 10, path, sizeof(path)), 0);
	CHECK_EQ_INT(read_file(path, 9, &s, &len), -EFBIG);
	CHECK_EQ_STR(s, "untouched");
	CHECK_EQ_INT(len, 77);
	CHECK_EQ_INT(read_file(path, 0, &s, &len), -EFBIG);
	unlink(path);
}

TEST(read_file_empty)
{
	char path[4096];
	_cleanup_free_ char *s = NULL;
	size_t len = 77;

	CHECK_EQ_INT(tmpfile_with("", 0, path, sizeof(path)), 0);
	CHECK_EQ_INT(read_file(path, 0, &s, &len), 0);
	CHECK_EQ_INT(len, 0);
	CHECK_EQ_STR(s, "");
	unlink(path);
}

TEST(read_file_missing)
{
	char *s = NULL;

	CHECK_EQ_INT(read_file("/nonexistent/cove/file", 10, &s, NULL), -ENOENT);
	CHECK(s == NULL);
}

TEST(read_full_early_eof)
{
	_cleanup_close_ int rfd = -1, wfd = -1;
	int fds[2];
	char got[8];

	CHECK_EQ_INT(pipe2(fds, O_CLOEXEC), 0);
	rfd = fds[0];
	wfd = fds[1];
	CHECK_EQ_INT(write_full(wfd, "abc", 3), 0);
	CHECK_EQ_INT(read_full(rfd, got, 2), 0);
	CHECK(memcmp(got, "ab", 2) == 0);
	close(TAKE_FD(wfd));
	CHECK_EQ_INT(read_full(rfd, got, 2), -EIO);
}

TEST(one_line)
{
	char s[] = "a\033[2Jb\r\nc\x7f\xc3\xa9";

	CHECK_EQ_STR(str_one_line(s), "a?[2Jb??c?\xc3\xa9");
}

int main(void)
{
	RUN(buf_zero_init_is_empty);
	RUN(buf_append_up_to_max);
	RUN(buf_append_past_max_fails_unchanged);
	RUN(buf_first_append_over_max_allocates_nothing);
	RUN(buf_max_zero_refuses_everything);
	RUN(buf_reserve_overflow);
	RUN(buf_cap_never_exceeds_max);
	RUN(buf_consume);
	RUN(buf_consume_frees_room_under_max);
	RUN(buf_reset_and_done);

	RUN(parse_size_plain);
	RUN(parse_size_units);
	RUN(parse_size_fraction);
	RUN(parse_size_long_suffixes);
	RUN(parse_size_rejects_junk);
	RUN(parse_size_rejects_overflow);
	RUN(parse_size_fraction_near_the_top);
	RUN(parse_size_largest);

	RUN(parse_u64_valid);
	RUN(parse_u64_max_bound);
	RUN(parse_u64_rejects_overflow);
	RUN(parse_u64_rejects_junk);

	RUN(str_copy_fits);
	RUN(str_copy_truncates);
	RUN(str_copy_size_zero);
	RUN(str_printf_truncates);

	RUN(read_file_within_max);
	RUN(read_file_over_max);
	RUN(read_file_empty);
	RUN(read_file_missing);
	RUN(read_full_early_eof);
	RUN(one_line);
	return test_done();
}
