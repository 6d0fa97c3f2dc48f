/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for src/image/digest: parsing sha256 digests, the streaming hasher, fds. */
#define _GNU_SOURCE /* pipe2 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "image/digest.h"
#include "test.h"

/* sha256("") and sha256("abc") */
#define EMPTY "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define ABC_HEX "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define ABC     "sha256:" ABC_HEX

TEST(valid_digest)
{
	struct cove_error err = { 0 };

	CHECK_EQ_INT(digest_validate(EMPTY, &err), 0);
	CHECK_EQ_INT(err.code, 0);
	CHECK(digest_is_valid(ABC));
	CHECK_EQ_STR(digest_hex(ABC), ABC_HEX);
}

TEST(rejects_uppercase_short_long)
{
	struct cove_error err = { 0 };

	CHECK_EQ_INT(
		digest_validate(
			"sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
			&err),
		-EINVAL);
	CHECK(strstr(err.msg, "64 lowercase hex") != NULL);
	CHECK(!digest_is_valid("sha256:ba7816bf"));
	CHECK(!digest_is_valid(ABC "0"));
	CHECK(!digest_is_valid("sha256:"));
	CHECK(!digest_is_valid(""));
	CHECK(!digest_is_valid(NULL));
	CHECK(!digest_is_valid(ABC_HEX)); /* bare hex */
	CHECK(!digest_is_valid(
		"SHA256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
	CHECK(!digest_is_valid(
		"sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a "));
	CHECK(!digest_is_valid(
		"sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ag"));
}

TEST(rejects_other_algorithms_by_name)
{
	struct cove_error err = { 0 };

	CHECK_EQ_INT(digest_validate("sha512:abcdef0123", &err), -EOPNOTSUPP);
	CHECK(strstr(err.msg, "unsupported digest algorithm 'sha512'") != NULL);
	err = (struct cove_error){ 0 };
	CHECK_EQ_INT(
		digest_validate("multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
				&err),
		-EOPNOTSUPP);
	CHECK(strstr(err.msg, "'multihash+base58'") != NULL);
	err = (struct cove_error){ 0 };
	/* not a digest at all */
	CHECK_EQ_INT(digest_validate("Sha512:abc", &err), -EINVAL);
	err = (struct cove_error){ 0 };
	CHECK_EQ_INT(digest_validate("nocolon", &err), -EINVAL);
	err = (struct cove_error){ 0 };
	CHECK_EQ_INT(digest_validate("sha512:", &err), -EINVAL);
}

TEST(message_is_one_sanitized_line)
{
	struct cove_error err = { 0 };
	char evil[300];

	memset(evil, 'x', sizeof(evil));
	memcpy(evil, "bad\n\x1b[31m", 9);
	evil[sizeof(evil) - 1] = '\0';
	CHECK_EQ_INT(digest_validate(evil, &err), -EINVAL);
	CHECK(strchr(err.msg, '\n') == NULL);
	CHECK(strchr(err.msg, '\x1b') == NULL);
	CHECK(strstr(err.msg, "...") != NULL);
	CHECK(strlen(err.msg) < 200);
}

TEST(from_hex)
{
	char d[DIGEST_STRING_MAX];

	CHECK_EQ_INT(digest_from_hex(ABC_HEX, d), 0);
	CHECK_EQ_STR(d, ABC);
	CHECK_EQ_INT(digest_from_hex("abc", d), -EINVAL);
	CHECK(digest_hex_is_valid(ABC_HEX));
	CHECK(!digest_hex_is_valid(ABC));
}

TEST(buffer_known_answers)
{
	char d[DIGEST_STRING_MAX];

	CHECK_EQ_INT(digest_buffer("", 0, d), 0);
	CHECK_EQ_STR(d, EMPTY);
	CHECK_EQ_INT(digest_buffer("abc", 3, d), 0);
	CHECK_EQ_STR(d, ABC);
}

TEST(streaming_equals_one_shot)
{
	struct digest_hasher *h = NULL;
	char d1[DIGEST_STRING_MAX], d2[DIGEST_STRING_MAX];
	static char data[100000];

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)(i * 7 + (i >> 8));
	CHECK_EQ_INT(digest_hasher_new(&h), 0);
	for (size_t off = 0, step = 1; off < sizeof(data); off += step, step = step * 3 + 1) {
		size_t n = off + step > sizeof(data) ? sizeof(data) - off : step;
		CHECK_EQ_INT(digest_hasher_update(h, data + off, n), 0);
	}
	CHECK_EQ_INT(digest_hasher_count(h), sizeof(data));
	CHECK_EQ_INT(digest_hasher_final(h, d1), 0);
	CHECK_EQ_INT(digest_buffer(data, sizeof(data), d2), 0);
	CHECK_EQ_STR(d1, d2);
	/* final resets: the hasher is reusable */
	CHECK_EQ_INT(digest_hasher_count(h), 0);
	CHECK_EQ_INT(digest_hasher_update(h, "abc", 3), 0);
	CHECK_EQ_INT(digest_hasher_final(h, d1), 0);
	CHECK_EQ_STR(d1, ABC);
	digest_hasher_free(h);
	digest_hasher_free(NULL);
}

TEST(fd_and_pipe)
{
	struct cove_error err = { 0 };
	char d[DIGEST_STRING_MAX];
	uint64_t size = 0;
	int p[2];

	CHECK_EQ_INT(pipe2(p, O_CLOEXEC), 0);
	CHECK_EQ_INT(write(p[1], "abc", 3), 3);
	close(p[1]);
	CHECK_EQ_INT(digest_fd(p[0], 1024, d, &size, &err), 0);
	CHECK_EQ_STR(d, ABC);
	CHECK_EQ_INT(size, 3);
	close(p[0]);

	CHECK_EQ_INT(pipe2(p, O_CLOEXEC), 0);
	CHECK_EQ_INT(write(p[1], "abcdef", 6), 6);
	close(p[1]);
	CHECK_EQ_INT(digest_fd(p[0], 5, d, &size, &err), -EFBIG);
	CHECK(err.msg[0] != '\0');
	close(p[0]);
}

TEST(digest_set_sorted_and_linear)
{
	struct digest_set s = { 0 };
	char d[3][DIGEST_STRING_MAX];

	for (int i = 0; i < 3; i++) {
		char hex[65];
		memset(hex, "abc"[i], 64);
		hex[64] = '\0';
		CHECK_EQ_INT(digest_from_hex(hex, d[i]), 0);
	}
	CHECK(!digest_set_has(&s, d[0]));
	CHECK_EQ_INT(digest_set_add(&s, d[2]), 0);
	CHECK_EQ_INT(digest_set_add(&s, d[0]), 0);
	CHECK_EQ_INT(digest_set_add(&s, d[2]), 0);
	CHECK(digest_set_has(&s, d[2]) && !digest_set_has(&s, d[1])); /* unsorted: linear */
	digest_set_sort(&s);
	CHECK_EQ_INT(s.n, 2);
	CHECK_EQ_STR(s.v[0], d[0]);
	CHECK_EQ_STR(s.v[1], d[2]);
	CHECK(digest_set_has(&s, d[0]) && digest_set_has(&s, d[2]) && !digest_set_has(&s, d[1]));
	CHECK_EQ_INT(digest_set_add(&s, d[1]), 0);
	CHECK(digest_set_has(&s, d[1])); /* an add unsorts it */
	digest_set_done(&s);
	CHECK(s.n == 0 && s.v == NULL);
}

int main(void)
{
	RUN(valid_digest);
	RUN(rejects_uppercase_short_long);
	RUN(rejects_other_algorithms_by_name);
	RUN(message_is_one_sanitized_line);
	RUN(from_hex);
	RUN(buffer_known_answers);
	RUN(streaming_equals_one_shot);
	RUN(fd_and_pipe);
	RUN(digest_set_sorted_and_linear);
	return test_done();
}
