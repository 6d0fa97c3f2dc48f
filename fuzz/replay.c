/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Replay saved fuzz inputs without libFuzzer: every regular file in each directory argument
 * (or each file argument) is passed to LLVMFuzzerTestOneInput once. A crash or a sanitizer
 * report fails the run; so does a directory without inputs (a corpus that went missing).
 *
 *     fuzz_proto fuzz/corpus/proto   ->   ok - fuzz replay fuzz/corpus/proto (42 inputs)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util.h"

#define REPLAY_MAX_INPUT (16u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Provided by the sanitizer runtimes when they are linked in. */
extern void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

/* The input being run, named when it crashes (an abort(), or a sanitizer report). */
static char current_input[4096];

static void name_current_input(void)
{
	static const char msg[] = "fuzz replay: failed on input ";

	if (!current_input[0])
		return;
	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void)!write(STDERR_FILENO, current_input, strlen(current_input));
	(void)!write(STDERR_FILENO, "\n", 1);
}

static void on_abort(int sig)
{
	name_current_input();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Read the regular file name (relative to dir_fd) whole, up to REPLAY_MAX_INPUT bytes.
 * Returns 1 and the contents, 0 for something that is not a regular file, or -errno. */
static int read_input(int dir_fd, const char *name, uint8_t **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ uint8_t *data = NULL;
	struct stat st;
	size_t len;
	int r;

	fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return errno == ELOOP ? 0 : -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return 0;
	if (st.st_size < 0 || (uint64_t)st.st_size > REPLAY_MAX_INPUT)
		return -EFBIG;
	len = (size_t)st.st_size;
	data = malloc(len ? len : 1); /* exact size, so ASan catches reads past the end */
	if (!data)
		return -ENOMEM;
	r = read_full(fd, data, len);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(data);
	*ret_len = len;
	return 1;
}

static int replay_one(int dir_fd, const char *name, const char *shown, size_t *count)
{
	_cleanup_free_ uint8_t *data = NULL;
	size_t len = 0;
	int r;

	r = read_input(dir_fd, name, &data, &len);
	if (r < 0) {
		fprintf(stderr, "fuzz replay: unable to read '%s': %s\n", shown, strerror(-r));
		return r;
	}
	if (r == 0)
		return 0;
	(void)str_copy(current_input, sizeof(current_input), shown);
	LLVMFuzzerTestOneInput(data, len);
	current_input[0] = '\0';
	(*count)++;
	return 0;
}

static int dot_filter(const struct dirent *de)
{
	return de->d_name[0] != '.';
}

static int replay_path(const char *path, size_t *count)
{
	_cleanup_close_ int fd = -1;
	struct dirent **names = NULL;
	struct stat st;
	int n, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		r = -errno;
		fprintf(stderr, "fuzz replay: unable to open '%s': %s\n", path, strerror(-r));
		return r;
	}
	if (!S_ISDIR(st.st_mode))
		return replay_one(AT_FDCWD, path, path, count);

	/* sorted, so a failure reproduces in the same order */
	n = scandir(path, &names, dot_filter, alphasort);
	if (n < 0) {
		r = -errno;
		fprintf(stderr, "fuzz replay: unable to list '%s': %s\n", path, strerror(-r));
		return r;
	}
	for (int i = 0; i < n; i++) {
		char shown[4096];

		if (r == 0) {
			(void)str_printf(shown, sizeof(shown), "%s/%s", path, names[i]->d_name);
			r = replay_one(fd, names[i]->d_name, shown, count);
		}
		free(names[i]);
	}
	free(names);
	return r;
}

int main(int argc, char **argv)
{
	int failed = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
		return 2;
	}
	if (__sanitizer_set_death_callback)
		__sanitizer_set_death_callback(name_current_input);
	signal(SIGABRT, on_abort);
	for (int i = 1; i < argc; i++) {
		size_t count = 0;

		if (replay_path(argv[i], &count) < 0) {
			printf("not ok - fuzz replay %s\n", argv[i]);
			failed = 1;
		} else if (count == 0) {
			printf("not ok - fuzz replay %s: no inputs\n", argv[i]);
			failed = 1;
		} else {
			printf("ok - fuzz replay %s (%zu inputs)\n", argv[i], count);
		}
		fflush(stdout);
	}
	return failed;
}
