/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz the tar reader cove cp uses on the host for what a container sends (`cp CTR:SRC DST`):
 * the input is the tar stream as it would come out of the guest. It is extracted twice under a
 * fresh directory P: into an existing directory (P/d) and to a new name (P/new). Whatever the
 * input, nothing may appear in P but those two names (an entry that escaped aborts), and no
 * device node and no setuid or setgid file may appear anywhere (cp without -a). P is made under
 * $TMPDIR, else /dev/shm, else /tmp.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/tar.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)flag;
	(void)ftw;
	if (S_ISBLK(st->st_mode) || S_ISCHR(st->st_mode)) {
		fprintf(stderr, "fuzz_tar: a device node '%s' was made\n", path);
		abort();
	}
	if (st->st_mode & (S_ISUID | S_ISGID)) {
		fprintf(stderr, "fuzz_tar: '%s' kept a setuid or setgid bit\n", path);
		abort();
	}
	/* a 0555 directory from the archive must not stop the clean-up */
	chmod(path, 0700);
	remove(path);
	return 0;
}

static void extract(const uint8_t *data, size_t size, const char *dst)
{
	char msg[1024];
	int fd = memfd_create("tar", MFD_CLOEXEC);

	if (fd < 0)
		abort();
	if (write_full(fd, data, size) < 0 || lseek(fd, 0, SEEK_SET) != 0)
		abort();
	msg[0] = '\0';
	/* as the host reads what a container sends */
	if (tar_cp_in(fd, dst, &(struct tar_in_opts){ 0 }, msg, sizeof(msg)) < 0 &&
	    (!msg[0] || strchr(msg, '\n')))
		abort(); /* a failure always says why, in one line */
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char base[256];
	char top[300], d[320], n[320];
	DIR *dir;
	struct dirent *de;

	if (!base[0]) {
		const char *t = getenv("TMPDIR");
		struct stat st;

		if (!t || !*t)
			t = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
		str_copy(base, sizeof(base), t);
	}
	str_printf(top, sizeof(top), "%s/fuzz_tar.XXXXXX", base);
	if (!mkdtemp(top))
		abort();
	str_printf(d, sizeof(d), "%s/d", top);
	str_printf(n, sizeof(n), "%s/new", top);
	if (mkdir(d, 0755) < 0)
		abort();
	extract(data, size, d);
	extract(data, size, n);
	dir = opendir(top);
	if (!dir)
		abort();
	while ((de = readdir(dir))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    strcmp(de->d_name, "d") == 0 || strcmp(de->d_name, "new") == 0)
			continue;
		fprintf(stderr, "fuzz_tar: '%s' escaped the destination\n", de->d_name);
		abort();
	}
	closedir(dir);
	nftw(top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
