/* SPDX-License-Identifier: Apache-2.0 */
/* Small libc-only helpers shared by the host and the guest: cleanup attributes, fd I/O. */
#pragma once

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _noreturn_ __attribute__((noreturn))

static inline void freep(void *p)
{
	free(*(void **)p);
}
/* Close *fd if open and mark it closed (-1); errno is preserved. */
static inline void closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		*fd = -1;
		errno = saved;
	}
}
static inline void fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}
static inline void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}
static inline void pclosep(FILE **f)
{
	if (*f)
		pclose(*f);
}
#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Hand a cleanup-owned pointer or fd over to someone else. */
#define TAKE_PTR(p)                                                                                \
	({                                                                                         \
		__typeof__(p) _p = (p);                                                            \
		(p) = NULL;                                                                        \
		_p;                                                                                \
	})
#define TAKE_FD(fd)                                                                                \
	({                                                                                         \
		int _fd = (fd);                                                                    \
		(fd) = -1;                                                                         \
		_fd;                                                                               \
	})

/* Whether all n bytes at p are 0. */
bool mem_is_zero(const void *p, size_t n);
/* Write all of buf, retrying on EINTR and short writes. Returns 0 or -errno. */
int write_full(int fd, const void *buf, size_t len);
/* Read exactly len bytes. Returns 0, -EIO on early EOF, or -errno. */
int read_full(int fd, void *buf, size_t len);
/* Write path whole or not at all: a temporary file beside it (PATH.PID.tmp) with mode, fsync'd,
 * then renamed over path. Returns 0 or -errno (the temporary file is gone either way). */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* Read a whole small file (at most max bytes) into a NUL-terminated buffer. */
int read_file(const char *path, size_t max, char **ret, size_t *ret_len);
/* Bounded string copy: always NUL-terminates; returns -ENAMETOOLONG if truncated. */
int str_copy(char *dst, size_t size, const char *src);
/* Bounded formatted print into dst; -ENAMETOOLONG if truncated. */
int str_printf(char *dst, size_t size, const char *fmt, ...) _printf_(3, 4);
/* An untrusted string made fit for a one-line message: at most 80 bytes of it, controls,
 * quotes and non-ASCII bytes as '?', "..." when cut. Returns out. */
#define STR_SHOWN_MAX 96
const char *str_shown(const char *s, char out[STR_SHOWN_MAX]);
/* Make s one line of plain text, in place: every control character (escape sequences, CR, LF,
 * DEL) becomes '?'; other bytes, UTF-8 included, stay. Returns s. */
char *str_one_line(char *s);
/* Parse a decimal unsigned integer in [0, max]; whole string must match. */
int parse_u64(const char *s, uint64_t max, uint64_t *ret);
/* Parse a docker-style size: 512, 64k, 256m, 1g, 1.5g (binary units). */
int parse_size(const char *s, uint64_t *ret);
/* Monotonic clock in nanoseconds. */
uint64_t now_ns(void);
/* mkdir -p: create path and its missing parents with mode; 0 if it exists already. */
int mkdir_p(const char *path, mode_t mode);
/* Remove a directory and everything under it (links are removed, not followed); 0 once it is
 * gone. */
int remove_tree(const char *path);
/* 2 * bytes random hex digits and a NUL into out (an ID); -errno if the kernel has no entropy */
int random_hex(char *out, size_t bytes);
/* Set or clear O_NONBLOCK. */
int fd_set_nonblock(int fd, bool on);
