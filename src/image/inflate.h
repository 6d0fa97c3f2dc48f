/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A streaming gzip decoder for layers: Intel's ISA-L (isal_inflate: the gzip header parsed, the
 * CRC-32 and size of each member checked) where cove was built with it, else zlib, which checks
 * the same. Several members in a row are one stream, as gzip -dc reads them; zero bytes after
 * the last are allowed (padding), anything else is an error. COVE_INFLATE=zlib picks zlib at
 * run time (the test suite runs the pull tests both ways).
 *
 *     struct gunzip *g;
 *     gunzip_new(&g);
 *     while (...) {
 *         r = gunzip_feed(g, in, in_len, out, out_size, &used, &made);  // any number of times
 *     }
 *     r = gunzip_end(g, err);   // the stream was whole
 *     gunzip_free(g);
 *
 * And the same for zstd layers (unzstd_*), with libzstd's streaming decoder where cove was built
 * with it: frames one after another are one stream, and a frame that asks for a window larger
 * than 2^UNZSTD_WINDOW_LOG bytes is refused before anything is allocated for it (a hostile
 * layer cannot make the decoder take more memory than that).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../util/error.h"

struct gunzip;

/* The decoder in use, for bench and errors: "isa-l" or "zlib". */
const char *gunzip_engine(void);
int gunzip_new(struct gunzip **ret);
void gunzip_free(struct gunzip *g);
/*
 * Decode from in[0..in_len) into out[0..out_size): *ret_used bytes of input were taken and
 * *ret_made bytes written. Call again with the rest of the input and more room; 0, or -EBADMSG
 * with err saying what is wrong with the stream (a bad header, a CRC or size mismatch, a
 * corrupt block, garbage after the end).
 */
int gunzip_feed(struct gunzip *g, const uint8_t *in, size_t in_len, uint8_t *out, size_t out_size,
		size_t *ret_used, size_t *ret_made, struct cove_error *err);
/* After the last input: 0 when the stream ended where a member ends, else -EBADMSG. */
int gunzip_end(struct gunzip *g, struct cove_error *err);
/* Whether the bytes start a gzip stream (1f 8b). */
bool gunzip_magic(const uint8_t *p, size_t len);

#define UNZSTD_WINDOW_LOG 27 /* 128 MiB, zstd's own default limit */

struct unzstd;

/* Whether cove was built with libzstd (else zstd layers take libarchive's filter). */
bool unzstd_available(void);
int unzstd_new(struct unzstd **ret);
void unzstd_free(struct unzstd *z);
/* As gunzip_feed: -EBADMSG with err saying what is wrong (a corrupt frame, a window too big). */
int unzstd_feed(struct unzstd *z, const uint8_t *in, size_t in_len, uint8_t *out, size_t out_size,
		size_t *ret_used, size_t *ret_made, struct cove_error *err);
/* After the last input: 0 when the stream ended where a frame ends, else -EBADMSG. */
int unzstd_end(struct unzstd *z, struct cove_error *err);
/* Whether the bytes start a zstd frame (28 b5 2f fd). */
bool unzstd_magic(const uint8_t *p, size_t len);
