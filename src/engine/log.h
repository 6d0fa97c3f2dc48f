/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The container log: what the main process wrote, kept by its supervisor as records
 *
 *     <RFC 3339 time> <stdout|stderr> <length>\n<length bytes>
 *
 * so that binary output survives and every chunk keeps its time and stream.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum log_stream { LOG_STDOUT = 1, LOG_STDERR = 2 };

int log_append(int fd, enum log_stream stream, const void *data, size_t len);

struct log_record {
	char time[40];
	enum log_stream stream;
	uint8_t *data;
	size_t len;
};

/* Read the next record from f: 1 and *rec (data valid until the next call), 0 at the end
 * (or at a record not yet completely written), -EPROTO for a damaged log. */
int log_next(FILE *f, struct log_record *rec, uint8_t **buf, size_t *cap);
