/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "log.h"

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
