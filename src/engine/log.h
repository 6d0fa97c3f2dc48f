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

/* docker's json-file options: the log is rotated at max_size bytes and max_files files are
 * kept (PATH, PATH.1, ... PATH.<max_files - 1>, oldest last); one file is truncated instead. */
#define LOG_MAX_FILES 100
struct log_writer {
	int fd;
	const char *path;
	uint64_t size, max_size; /* max_size 0: no limit */
	unsigned max_files;
};
int log_open(struct log_writer *w, const char *path, uint64_t max_size, unsigned max_files);
int log_write(struct log_writer *w, enum log_stream stream, const void *data, size_t len);
void log_close(struct log_writer *w);
/* PATH.<n> into buf (n 0: PATH itself). */
int log_file_name(const char *path, unsigned n, char *buf, size_t size);

struct log_record {
	char time[40];
	enum log_stream stream;
	uint8_t *data;
	size_t len;
};

/* Read the next record from f: 1 and *rec (data valid until the next call), 0 at the end
 * (or at a record not yet completely written), -EPROTO for a damaged log. */
int log_next(FILE *f, struct log_record *rec, uint8_t **buf, size_t *cap);
