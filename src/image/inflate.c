/* SPDX-License-Identifier: Apache-2.0 */
/* Streaming gzip with ISA-L or zlib (see inflate.h). */
#include "inflate.h"

#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#ifdef HAVE_ISAL
#include <isa-l/igzip_lib.h>
#endif
#ifdef HAVE_ZSTD
#include <zstd.h>
#include <zstd_errors.h>
#endif

#define FEED_MAX (1u << 30) /* ISA-L counts in 32 bits */

struct gunzip {
	bool isal;
	bool in_member;   /* inside a member: its header, data or trailer */
	bool members;     /* at least one member ended */
	bool padding;     /* zero bytes after the last member */
	z_stream z;
	bool z_ready;
#ifdef HAVE_ISAL
	struct inflate_state st;
#endif
};

static bool want_isal(void)
{
#ifdef HAVE_ISAL
	const char *e = getenv("COVE_INFLATE");

	return !(e && strcmp(e, "zlib") == 0);
#else
	return false;
#endif
}

const char *gunzip_engine(void)
{
	return want_isal() ? "isa-l" : "zlib";
}

bool gunzip_magic(const uint8_t *p, size_t len)
{
	return len >= 2 && p[0] == 0x1f && p[1] == 0x8b;
}

int gunzip_new(struct gunzip **ret)
{
	struct gunzip *g = calloc(1, sizeof(*g));

	if (!g)
		return -ENOMEM;
	g->isal = want_isal();
	if (!g->isal) {
		/* 16 + window bits: a gzip wrapper, its CRC-32 and size checked */
		if (inflateInit2(&g->z, 16 + MAX_WBITS) != Z_OK) {
			free(g);
			return -ENOMEM;
		}
		g->z_ready = true;
	}
	*ret = g;
	return 0;
}

void gunzip_free(struct gunzip *g)
{
	if (!g)
		return;
	if (g->z_ready)
		inflateEnd(&g->z);
	free(g);
}

static int member_start(struct gunzip *g)
{
#ifdef HAVE_ISAL
	if (g->isal) {
		isal_inflate_init(&g->st);
		g->st.crc_flag = ISAL_GZIP;
		g->in_member = true;
		return 0;
	}
#endif
	if (inflateReset(&g->z) != Z_OK)
		return -EIO;
	g->in_member = true;
	return 0;
}

#ifdef HAVE_ISAL
static const char *isal_error(int r)
{
	switch (r) {
	case ISAL_INVALID_BLOCK:
		return "invalid deflate block";
	case ISAL_INVALID_SYMBOL:
		return "invalid deflate symbol";
	case ISAL_INVALID_LOOKBACK:
		return "invalid back-reference distance";
	case ISAL_INVALID_WRAPPER:
		return "not a gzip header";
	case ISAL_UNSUPPORTED_METHOD:
		return "a gzip member that is not deflate";
	case ISAL_INCORRECT_CHECKSUM:
		return "CRC-32 or size mismatch in a gzip trailer";
	default:
		return "corrupt gzip data";
	}
}
#endif

/* one step inside a member */
static int member_feed(struct gunzip *g, const uint8_t *in, size_t in_len, uint8_t *out,
		       size_t out_size, size_t *used, size_t *made, struct cove_error *err)
{
	if (in_len > FEED_MAX)
		in_len = FEED_MAX;
	if (out_size > FEED_MAX)
		out_size = FEED_MAX;
#ifdef HAVE_ISAL
	if (g->isal) {
		int r;

		g->st.next_in = (uint8_t *)in;
		g->st.avail_in = (uint32_t)in_len;
		g->st.next_out = out;
		g->st.avail_out = (uint32_t)out_size;
		r = isal_inflate(&g->st);
		*used = in_len - g->st.avail_in;
		*made = out_size - g->st.avail_out;
		if (r < 0)
			return cove_error_set(err, EBADMSG, "the gzip stream is corrupt: %s",
					      isal_error(r));
		if (g->st.block_state == ISAL_BLOCK_FINISH) {
			g->in_member = false;
			g->members = true;
		}
		return 0;
	}
#endif
	{
		int r;

		g->z.next_in = (Bytef *)in;
		g->z.avail_in = (uInt)in_len;
		g->z.next_out = out;
		g->z.avail_out = (uInt)out_size;
		r = inflate(&g->z, Z_NO_FLUSH);
		*used = in_len - g->z.avail_in;
		*made = out_size - g->z.avail_out;
		if (r == Z_STREAM_END) {
			g->in_member = false;
			g->members = true;
			return 0;
		}
		if (r == Z_OK || r == Z_BUF_ERROR)
			return 0;
		return cove_error_set(err, EBADMSG, "the gzip stream is corrupt: %s",
				      g->z.msg ? g->z.msg : "inflate failed");
	}
}

int gunzip_feed(struct gunzip *g, const uint8_t *in, size_t in_len, uint8_t *out, size_t out_size,
		size_t *ret_used, size_t *ret_made, struct cove_error *err)
{
	size_t skipped = 0;

	*ret_used = *ret_made = 0;
	if (!g->in_member) {
		/* between members: zeros are padding to the end; anything else starts a member,
		 * unless padding began (gzip -dc calls that trailing garbage) */
		while (skipped < in_len && in[skipped] == 0) {
			skipped++;
			g->padding = g->members;
		}
		if (skipped == in_len) {
			*ret_used = skipped;
			return 0;
		}
		if (g->padding || (skipped && !g->members))
			return cove_error_set(err, EBADMSG,
					      "the gzip stream has data after its end");
		if (member_start(g) < 0)
			return cove_error_set(err, ENOMEM, "cannot restart the gzip decoder");
	}
	if (member_feed(g, in + skipped, in_len - skipped, out, out_size, ret_used, ret_made, err) <
	    0)
		return -EBADMSG;
	*ret_used += skipped;
	return 0;
}

int gunzip_end(struct gunzip *g, struct cove_error *err)
{
	if (g->in_member)
		return cove_error_set(err, EBADMSG, "the gzip stream is truncated");
	if (!g->members)
		return cove_error_set(err, EBADMSG, "the gzip stream is empty");
	return 0;
}

/* ---- zstd ---------------------------------------------------------------------------- */

bool unzstd_magic(const uint8_t *p, size_t len)
{
	return len >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd;
}

#ifdef HAVE_ZSTD
struct unzstd {
	ZSTD_DCtx *d;
	bool in_frame; /* a frame began and has not ended */
	bool frames;   /* at least one frame ended */
};

bool unzstd_available(void)
{
	return true;
}

int unzstd_new(struct unzstd **ret)
{
	struct unzstd *z = calloc(1, sizeof(*z));

	if (!z || !(z->d = ZSTD_createDCtx())) {
		free(z);
		return -ENOMEM;
	}
	if (ZSTD_isError(ZSTD_DCtx_setParameter(z->d, ZSTD_d_windowLogMax, UNZSTD_WINDOW_LOG))) {
		ZSTD_freeDCtx(z->d);
		free(z);
		return -EINVAL;
	}
	*ret = z;
	return 0;
}

void unzstd_free(struct unzstd *z)
{
	if (!z)
		return;
	ZSTD_freeDCtx(z->d);
	free(z);
}

int unzstd_feed(struct unzstd *z, const uint8_t *in, size_t in_len, uint8_t *out, size_t out_size,
		size_t *ret_used, size_t *ret_made, struct cove_error *err)
{
	ZSTD_inBuffer i = { .src = in, .size = in_len };
	ZSTD_outBuffer o = { .dst = out, .size = out_size };
	size_t r = ZSTD_decompressStream(z->d, &o, &i);

	*ret_used = i.pos;
	*ret_made = o.pos;
	if (ZSTD_isError(r)) {
		if (ZSTD_getErrorCode(r) == ZSTD_error_frameParameter_windowTooLarge)
			return cove_error_set(err, EBADMSG,
					      "the zstd stream asks for a window larger than %u MiB",
					      (1u << UNZSTD_WINDOW_LOG) >> 20);
		return cove_error_set(err, EBADMSG, "the zstd stream is corrupt: %s",
				      ZSTD_getErrorName(r));
	}
	if (i.pos || o.pos) {
		z->in_frame = r != 0;
		z->frames |= r == 0;
	}
	return 0;
}

int unzstd_end(struct unzstd *z, struct cove_error *err)
{
	if (z->in_frame)
		return cove_error_set(err, EBADMSG, "the zstd stream is truncated");
	if (!z->frames)
		return cove_error_set(err, EBADMSG, "the zstd stream is empty");
	return 0;
}
#else
bool unzstd_available(void)
{
	return false;
}

int unzstd_new(struct unzstd **ret)
{
	*ret = NULL;
	return -ENOTSUP;
}

void unzstd_free(struct unzstd *z)
{
	(void)z;
}

int unzstd_feed(struct unzstd *z, const uint8_t *in, size_t in_len, uint8_t *out, size_t out_size,
		size_t *ret_used, size_t *ret_made, struct cove_error *err)
{
	(void)z, (void)in, (void)in_len, (void)out, (void)out_size;
	*ret_used = *ret_made = 0;
	return cove_error_set(err, ENOTSUP, "cove was built without libzstd");
}

int unzstd_end(struct unzstd *z, struct cove_error *err)
{
	(void)z;
	return cove_error_set(err, ENOTSUP, "cove was built without libzstd");
}
#endif
