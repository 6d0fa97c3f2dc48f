/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A growable byte buffer with a hard size limit (curl's dynbuf, git's strbuf).
 * Rules: a zero-initialised struct buf with .max set is valid and empty; data may be NULL
 * while len == 0; every append fails with -E2BIG instead of growing past max, leaving the
 * buffer as it was. buf_done() frees and resets it (max is kept).
 */
#pragma once

#include "util.h"

struct buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	size_t max;
};

#define BUF_INIT(limit) ((struct buf){ .max = (limit) })

int buf_append(struct buf *b, const void *data, size_t len);
int buf_reserve(struct buf *b, size_t extra);
/* Drop the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);
void buf_reset(struct buf *b);
/* Write b's contents to fd, consuming what was written, until b is empty or fd would block.
 * Returns 0 (also when it would block: b keeps the rest), or -errno. */
int buf_write_to(struct buf *b, int fd);
void buf_done(struct buf *b);
