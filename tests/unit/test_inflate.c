/* SPDX-License-Identifier: Apache-2.0 */
/* The streaming gzip decoder, with ISA-L (when built with it) and with zlib: the same bytes out,
 * the same streams refused. The zstd decoder likewise (when built with libzstd). */
#include "test.h"

#include "image/inflate.h"
#include "util/util.h"

#include "config.h"

#include <stdlib.h>
#include <zlib.h>
#ifdef HAVE_ZSTD
#include <zstd.h>
#endif

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

enum kind { GZIP, ZSTD };

/* decode in[0..n) fed in pieces of step bytes into o, with the gzip or the zstd decoder; its
 * verdict */
static int decode_all(enum kind k, const uint8_t *in, size_t n, size_t step, uint8_t *o,
		      size_t size, size_t *ret_len, char *why, size_t why_size)
{
	struct gunzip *g = NULL;
	struct unzstd *z = NULL;
	struct cove_error err = { 0 };
	size_t len = 0, off = 0;
	int r = k == GZIP ? gunzip_new(&g) : unzstd_new(&z);

	if (r < 0)
		return r;
	for (;;) {
		size_t piece = n - off < step ? n - off : step, used, made;
		size_t room = size - len > 4096 ? 4096 : size - len;

		r = k == GZIP ? gunzip_feed(g, in + off, piece, o + len, room, &used, &made, &err)
			      : unzstd_feed(z, in + off, piece, o + len, room, &used, &made, &err);
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
				r = k == GZIP ? gunzip_end(g, &err) : unzstd_end(z, &err);
				break;
			}
		}
	}
	gunzip_free(g);
	unzstd_free(z);
	str_copy(why, why_size, err.msg);
	*ret_len = len;
	return r;
}

static int gunzip_all(const uint8_t *in, size_t n, size_t step, uint8_t *o, size_t size,
		      size_t *ret_len, char *why, size_t why_size)
{
	return decode_all(GZIP, in, n, step, o, size, ret_len, why, why_size);
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

#ifdef HAVE_ZSTD
/* zstd of in[0..n) at level, with a content checksum; one frame */
static size_t zs(const uint8_t *in, size_t n, int level, uint8_t *o, size_t size)
{
	ZSTD_CCtx *c = ZSTD_createCCtx();
	size_t r;

	ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level);
	ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
	r = ZSTD_compress2(c, o, size, in, n);
	ZSTD_freeCCtx(c);
	return ZSTD_isError(r) ? 0 : r;
}

static int unzstd_all(const uint8_t *in, size_t n, size_t step, uint8_t *o, size_t size,
		      size_t *ret_len, char *why, size_t why_size)
{
	return decode_all(ZSTD, in, n, step, o, size, ret_len, why, why_size);
}

TEST(zstd_streams)
{
	/* a frame whose header asks for a 256 MiB window (log 28), then an empty last block */
	static const uint8_t wide[] = { 0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x90, 0x01, 0x00, 0x00 };
	size_t n1, n2, len;
	char why[256];

	plain = malloc(N + 1000);
	packed = malloc(2 * N);
	out = malloc(N + 1001);
	CHECK(plain && packed && out);
	if (!plain || !packed || !out)
		goto done;
	for (size_t i = 0; i < N; i++)
		plain[i] = i < N / 2 ? (uint8_t)("cove layer "[i % 11]) : (uint8_t)(rand() & 0xff);
	n1 = zs(plain, N, 3, packed, 2 * N);
	CHECK(n1 > 0);
	CHECK(unzstd_magic(packed, 4) && !unzstd_magic(plain, 4));
	CHECK_EQ_INT(unzstd_all(packed, n1, n1, out, N + 1, &len, why, sizeof(why)), 0);
	CHECK(len == N && memcmp(out, plain, N) == 0);
	CHECK_EQ_INT(unzstd_all(packed, n1, 7, out, N + 1, &len, why, sizeof(why)), 0);
	CHECK(len == N && memcmp(out, plain, N) == 0);
	/* two frames are one stream */
	n2 = zs(plain, 1000, 1, packed + n1, 2 * N - n1);
	CHECK(n2 > 0);
	CHECK_EQ_INT(unzstd_all(packed, n1 + n2, 65536, out, N + 1001, &len, why, sizeof(why)), 0);
	CHECK(len == N + 1000 && memcmp(out + N, plain, 1000) == 0);
	/* refused: truncated, a checksum that does not match, garbage after the end, empty, and
	 * a window beyond the limit */
	CHECK_EQ_INT(unzstd_all(packed, n1 - 3, 65536, out, N + 1, &len, why, sizeof(why)),
		     -EBADMSG);
	CHECK(strstr(why, "truncated") != NULL);
	packed[n1 - 2] ^= 0x55; /* in the frame's checksum */
	CHECK_EQ_INT(unzstd_all(packed, n1, 65536, out, N + 1, &len, why, sizeof(why)), -EBADMSG);
	CHECK(strstr(why, "corrupt") != NULL);
	packed[n1 - 2] ^= 0x55;
	packed[n1 + n2] = 'x';
	CHECK_EQ_INT(unzstd_all(packed, n1 + n2 + 1, 65536, out, N + 1001, &len, why, sizeof(why)),
		     -EBADMSG);
	CHECK_EQ_INT(unzstd_all(packed, 0, 65536, out, N + 1, &len, why, sizeof(why)), -EBADMSG);
	CHECK(strstr(why, "empty") != NULL);
	CHECK_EQ_INT(unzstd_all(wide, sizeof(wide), 65536, out, N + 1, &len, why, sizeof(why)),
		     -EBADMSG);
	CHECK(strstr(why, "window larger than 128 MiB") != NULL);
done:
	free(plain);
	free(packed);
	free(out);
}
#endif

int main(void)
{
	RUN(streams);
#ifdef HAVE_ZSTD
	RUN(zstd_streams);
#endif
	printf("# inflate engine: %s\n", gunzip_engine());
	return test_done();
}
