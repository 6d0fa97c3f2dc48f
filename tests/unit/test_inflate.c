/* SPDX-License-Identifier: Apache-2.0 */
/* The streaming gzip decoder, with ISA-L (when built with it) and with zlib: the same bytes out,
 * the same streams refused. */
#include "test.h"

#include "image/inflate.h"
#include "util/util.h"

#include <stdlib.h>
#include <zlib.h>

#define N (3u << 20)

/* gzip of in[0..n), one member, at level (0: stored blocks) */
static size_t gz(const uint8_t *in, size_t n, int level, uint8_t *out, size_t size)
{
	z_stream z = { 0 };

	if (deflateInit2(&z, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return 0;
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = (uInt)size;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
		deflateEnd(&z);
		return 0;
	}
	deflateEnd(&z);
	return size - z.avail_out;
}

/* decode in[0..n) fed in pieces of step bytes into out; the decoder's verdict */
static int gunzip_all(const uint8_t *in, size_t n, size_t step, uint8_t *out, size_t size,
		      size_t *ret_len, char *why, size_t why_size)
{
	struct gunzip *g;
	struct cove_error err = { 0 };
	size_t len = 0, off = 0;
	int r = gunzip_new(&g);

	if (r < 0)
		return r;
	for (;;) {
		size_t piece = n - off < step ? n - off : step, used, made;

		r = gunzip_feed(g, in + off, piece, out + len, size - len > 4096 ? 4096 : size - len,
				&used, &made, &err);
		if (r < 0)
			break;
		off += used;
		len += made;
		if (used == 0 && made == 0) {
			if (off < n && len == size) {
				r = -E2BIG;
				break;
			}
			if (off == n) {
				r = gunzip_end(g, &err);
				break;
			}
		}
	}
	gunzip_free(g);
	str_copy(why, why_size, err.msg);
	*ret_len = len;
	return r;
}

static void both_ways(void (*check)(void))
{
	setenv("COVE_INFLATE", "zlib", 1);
	check();
	unsetenv("COVE_INFLATE");
	check();
}

static uint8_t *plain, *packed, *out;

static void streams_check(void)
{
	size_t n1, n2, len;
	char why[256];

	/* compressible text and incompressible bytes, fed whole and a few bytes at a time */
	for (size_t i = 0; i < N; i++)
		plain[i] = i < N / 2 ? (uint8_t)("cove layer "[i % 11]) : (uint8_t)(rand() & 0xff);
	n1 = gz(plain, N, 6, packed, 2 * N);
	CHECK(n1 > 0);
	CHECK_EQ_INT(gunzip_all(packed, n1, n1, out, N + 1, &len, why, sizeof(why)), 0);
	CHECK(len == N && memcmp(out, plain, N) == 0);
	CHECK_EQ_INT(gunzip_all(packed, n1, 7, out, N + 1, &len, why, sizeof(why)), 0);
	CHECK(len == N && memcmp(out, plain, N) == 0);
	/* two members (gzip -dc reads both), then zero padding */
	n2 = gz(plain, 1000, 0, packed + n1, 2 * N - n1);
	memset(packed + n1 + n2, 0, 512);
	CHECK_EQ_INT(gunzip_all(packed, n1 + n2 + 512, 65536, out, N + 1001, &len, why, sizeof(why)),
		     0);
	CHECK(len == N + 1000 && memcmp(out + N, plain, 1000) == 0);
	/* refused: garbage after the end, a truncated stream, a CRC that does not match, an
	 * empty one */
	packed[n1 + n2 + 100] = 'x';
	CHECK_EQ_INT(gunzip_all(packed, n1 + n2 + 512, 65536, out, N + 1001, &len, why, sizeof(why)),
		     -EBADMSG);
	CHECK(strstr(why, "after its end") != NULL);
	CHECK_EQ_INT(gunzip_all(packed, n1 - 3, 65536, out, N + 1, &len, why, sizeof(why)), -EBADMSG);
	CHECK(strstr(why, "truncated") != NULL);
	packed[n1 - 6] ^= 0x55; /* in the trailer's CRC-32 */
	CHECK_EQ_INT(gunzip_all(packed, n1, 65536, out, N + 1, &len, why, sizeof(why)), -EBADMSG);
	packed[n1 - 6] ^= 0x55;
	packed[n1 - 2] ^= 0x01; /* in its size */
	CHECK_EQ_INT(gunzip_all(packed, n1, 65536, out, N + 1, &len, why, sizeof(why)), -EBADMSG);
	packed[n1 - 2] ^= 0x01;
	packed[20] ^= 0xff; /* in the deflate data */
	CHECK(gunzip_all(packed, n1, 65536, out, N + 1, &len, why, sizeof(why)) == -EBADMSG ||
	      len != N || memcmp(out, plain, N) != 0);
	CHECK_EQ_INT(gunzip_all(packed, 0, 65536, out, N + 1, &len, why, sizeof(why)), -EBADMSG);
	CHECK(gunzip_magic(packed, 2) && !gunzip_magic(plain, 2));
}

TEST(streams)
{
	plain = malloc(N + 1000);
	packed = malloc(2 * N);
	out = malloc(N + 1001);
	CHECK(plain && packed && out);
	if (plain && packed && out)
		both_ways(streams_check);
	free(plain);
	free(packed);
	free(out);
}

int main(void)
{
	RUN(streams);
	printf("# inflate engine: %s\n", gunzip_engine());
	return test_done();
}
