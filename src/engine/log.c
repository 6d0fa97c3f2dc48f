/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "log.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "container.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#define LOG_MAX_RECORD (1u << 20)

int log_append(int fd, enum log_stream stream, const void *data, size_t len)
{
	char head[96], ts[40];
	struct iovec iov[2];
	ssize_t n;
	int hl;

	container_timestamp(ts, sizeof(ts));
	hl = snprintf(head, sizeof(head), "%s %s %zu\n", ts,
		      stream == LOG_STDERR ? "stderr" : "stdout", len);
	if (hl < 0 || (size_t)hl >= sizeof(head))
		return -EINVAL;
	/* one writev on an O_APPEND file: a reader never sees half a header */
	iov[0] = (struct iovec){ head, (size_t)hl };
	iov[1] = (struct iovec){ (void *)data, len };
	do
		n = writev(fd, iov, 2);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if ((size_t)n != (size_t)hl + len)
		return -EIO;
	return 0;
}

int log_next(FILE *f, struct log_record *rec, uint8_t **buf, size_t *cap)
{
	char line[128], stream[16];
	unsigned long long len;
	long start = ftell(f);

	if (!fgets(line, sizeof(line), f)) {
		clearerr(f); /* EOF is sticky: a follower reads on once the writer adds more */
		fseek(f, start, SEEK_SET);
		return 0;
	}
	if (!strchr(line, '\n')) {
		fseek(f, start, SEEK_SET); /* the writer is mid-record */
		return 0;
	}
	if (sscanf(line, "%39s %15s %llu", rec->time, stream, &len) != 3 || len > LOG_MAX_RECORD)
		return -EPROTO;
	rec->stream = strcmp(stream, "stderr") == 0 ? LOG_STDERR : LOG_STDOUT;
	if (len + 1 > *cap) {
		uint8_t *nb = realloc(*buf, len + 1);
		if (!nb)
			return -ENOMEM;
		*buf = nb;
		*cap = len + 1;
	}
	if (len && fread(*buf, 1, len, f) != len) {
		clearerr(f);
		fseek(f, start, SEEK_SET);
		return 0;
	}
	rec->data = *buf;
	rec->len = len;
	return 1;
}

int log_file_name(const char *path, unsigned n, char *buf, size_t size)
{
	return n ? str_printf(buf, size, "%s.%u", path, n) : str_copy(buf, size, path);
}

int log_open(struct log_writer *w, const char *path, uint64_t max_size, unsigned max_files)
{
	struct stat st;

	*w = (struct log_writer){ .fd = -1, .path = path, .max_size = max_size,
				  .max_files = max_files ? max_files : 1 };
	w->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (w->fd < 0)
		return -errno;
	if (fstat(w->fd, &st) == 0)
		w->size = (uint64_t)st.st_size;
	return 0;
}

/* PATH -> PATH.1 -> ... -> PATH.<max_files - 1>, the oldest dropped; a fresh PATH. */
static int rotate(struct log_writer *w)
{
	char from[4200], to[4200];

	if (w->max_files <= 1) {
		if (ftruncate(w->fd, 0) < 0)
			return -errno;
		w->size = 0;
		return 0;
	}
	for (unsigned i = w->max_files - 1; i >= 1; i--) {
		if (log_file_name(w->path, i - 1, from, sizeof(from)) < 0 ||
		    log_file_name(w->path, i, to, sizeof(to)) < 0)
			return -ENAMETOOLONG;
		if (rename(from, to) < 0 && errno != ENOENT)
			return -errno;
	}
	closep(&w->fd);
	return log_open(w, w->path, w->max_size, w->max_files);
}

int log_write(struct log_writer *w, enum log_stream stream, const void *data, size_t len)
{
	int r;

	if (w->fd < 0)
		return -EBADF;
	if (w->max_size && w->size > 0 && w->size + len + 64 > w->max_size && (r = rotate(w)) < 0)
		return r;
	r = log_append(w->fd, stream, data, len);
	if (r == 0) {
		off_t end = lseek(w->fd, 0, SEEK_CUR); /* O_APPEND: the file's end */
		w->size = end > 0 ? (uint64_t)end : w->size + len;
	}
	return r;
}

void log_close(struct log_writer *w)
{
	closep(&w->fd);
}
