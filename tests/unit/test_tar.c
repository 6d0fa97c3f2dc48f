/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/util/tar.c: round trips of a tree with every kind of entry, archives made
 * by GNU tar (gnu, posix, ustar formats) read by tar_cp_in and ours read by GNU tar, docker cp's
 * naming rules, and hand-made hostile or broken archives. Runs as root (owners, device nodes)
 * in a directory under /tmp that it removes at the end. Set COVE_TEST_SLOW=1 to also archive
 * a sparse file over 8 GiB.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/tar.h"
#include "util/util.h"
#include "test.h"

static char top[] = "/tmp/cove-tar-test-XXXXXX";
static char self_exe[4096];
static char msg[512];
/* what the guest trusts (everything); the host's options are tested on their own */
static struct tar_in_opts keep_all = { .keep_owners = true, .keep_devices = true,
				       .keep_setid = true, .merge_meta = true };

/* ---------------------------------------------------------------- helpers */

/* A path under the test directory; a few results can be alive at once. */
static const char *P(const char *fmt, ...) _printf_(1, 2);
static const char *P(const char *fmt, ...)
{
	static char bufs[16][4096];
	static unsigned int next;
	char *b = bufs[next++ % ARRAY_SIZE(bufs)];
	char rel[3500];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	snprintf(b, sizeof(bufs[0]), "%s/%s", top, rel);
	return b;
}

static int sh(const char *fmt, ...) _printf_(1, 2);
static int sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void put_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0 || write_full(fd, data, len) < 0) {
		printf("# cannot write %s: %s\n", path, strerror(errno));
		exit(2);
	}
	close(fd);
}

static void put_str(const char *path, const char *s)
{
	put_file(path, s, strlen(s));
}

static char *get_file(const char *path, size_t *ret_len)
{
	char *data = NULL;

	if (read_file(path, 64 << 20, &data, ret_len) < 0)
		return NULL;
	return data;
}

static bool file_is(const char *path, const char *content)
{
	size_t len;
	char *data = get_file(path, &len);
	bool ok = data && len == strlen(content) && memcmp(data, content, len) == 0;

	free(data);
	return ok;
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static void set_mtime(const char *path, time_t t)
{
	struct timespec ts[2] = { { t, 0 }, { t, 0 } };

	if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) < 0) {
		printf("# cannot set the time of %s: %s\n", path, strerror(errno));
		exit(2);
	}
}

static void must(int r, const char *what)
{
	if (r < 0) {
		printf("# %s: %s\n", what, strerror(errno));
		exit(2);
	}
}

static int cp_out_to_file(const char *src, const char *tar_path)
{
	int fd = open(tar_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int r;

	must(fd, tar_path);
	msg[0] = '\0';
	r = tar_cp_out(fd, src, msg, sizeof(msg));
	close(fd);
	return r;
}

static int cp_in_from_file(const char *tar_path, const char *dst)
{
	int fd = open(tar_path, O_RDONLY | O_CLOEXEC);
	int r;

	must(fd, tar_path);
	msg[0] = '\0';
	r = tar_cp_in(fd, dst, &keep_all, msg, sizeof(msg));
	close(fd);
	return r;
}

/* tar_cp_out in a child writing to a pipe, tar_cp_in reading it: short reads and writes. */
static int cp_through_pipe(const char *src, const char *dst)
{
	int p[2], st, r;
	pid_t pid;

	must(pipe2(p, O_CLOEXEC), "pipe");
	pid = fork();
	must(pid, "fork");
	if (pid == 0) {
		char m[512];

		close(p[0]);
		_exit(tar_cp_out(p[1], src, m, sizeof(m)) < 0 ? 1 : 0);
	}
	close(p[1]);
	msg[0] = '\0';
	r = tar_cp_in(p[0], dst, &keep_all, msg, sizeof(msg));
	close(p[0]);
	waitpid(pid, &st, 0);
	if (r == 0 && (!WIFEXITED(st) || WEXITSTATUS(st) != 0))
		r = -EIO;
	return r;
}

/* ---------------------------------------------------------------- tree comparison */

static char diff[16384];

static bool same_content(const char *a, const char *b)
{
	int fa = open(a, O_RDONLY | O_CLOEXEC), fb = open(b, O_RDONLY | O_CLOEXEC);
	static char ba[65536], bb[65536];
	bool same = fa >= 0 && fb >= 0;

	while (same) {
		ssize_t na = read(fa, ba, sizeof(ba)), nb;

		if (na < 0 || read_full(fb, bb, (size_t)na) < 0 ||
		    memcmp(ba, bb, (size_t)na) != 0) {
			same = false;
			break;
		}
		if (na == 0) {
			nb = read(fb, bb, 1);
			same = nb == 0;
			break;
		}
	}
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	return same;
}

/* "" when b is a copy of a (sockets in a are not copied), else the first difference. */
static bool compare_entry(const char *a, const char *b, bool meta);

static bool compare_dir(const char *a, const char *b)
{
	DIR *d = opendir(a);
	struct dirent *de;
	size_t na = 0, nb = 0;
	bool ok = true;

	if (!d) {
		snprintf(diff, sizeof(diff), "cannot open %s", a);
		return false;
	}
	while (ok && (de = readdir(d))) {
		char ca[4096], cb[4096];
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(ca, sizeof(ca), "%s/%s", a, de->d_name);
		snprintf(cb, sizeof(cb), "%s/%s", b, de->d_name);
		if (lstat(ca, &st) == 0 && S_ISSOCK(st.st_mode)) {
			if (exists(cb)) {
				snprintf(diff, sizeof(diff), "%s: a socket was copied", cb);
				ok = false;
			}
			continue;
		}
		na++;
		ok = compare_entry(ca, cb, true);
	}
	closedir(d);
	if (!ok)
		return false;
	d = opendir(b);
	if (!d) {
		snprintf(diff, sizeof(diff), "cannot open %s", b);
		return false;
	}
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			nb++;
	closedir(d);
	if (na != nb) {
		snprintf(diff, sizeof(diff), "%s has %zu entries, %s has %zu", a, na, b, nb);
		return false;
	}
	return true;
}

static bool compare_entry(const char *a, const char *b, bool meta)
{
	struct stat sa, sb;

	if (lstat(a, &sa) < 0 || lstat(b, &sb) < 0) {
		snprintf(diff, sizeof(diff), "%s or %s is missing", a, b);
		return false;
	}
	if ((sa.st_mode & S_IFMT) != (sb.st_mode & S_IFMT)) {
		snprintf(diff, sizeof(diff), "%s: type %o, copy %o", a, sa.st_mode & S_IFMT,
			 sb.st_mode & S_IFMT);
		return false;
	}
	if (meta) {
		if (sa.st_mode != sb.st_mode || sa.st_uid != sb.st_uid || sa.st_gid != sb.st_gid ||
		    sa.st_mtim.tv_sec != sb.st_mtim.tv_sec) {
			snprintf(diff, sizeof(diff),
				 "%s: mode %o uid %u gid %u mtime %lld, copy %o %u %u %lld", a,
				 sa.st_mode, sa.st_uid, sa.st_gid, (long long)sa.st_mtim.tv_sec,
				 sb.st_mode, sb.st_uid, sb.st_gid, (long long)sb.st_mtim.tv_sec);
			return false;
		}
	}
	if (!S_ISDIR(sa.st_mode) && (sa.st_size != sb.st_size || sa.st_nlink != sb.st_nlink)) {
		snprintf(diff, sizeof(diff), "%s: size %lld nlink %lu, copy %lld %lu", a,
			 (long long)sa.st_size, (unsigned long)sa.st_nlink, (long long)sb.st_size,
			 (unsigned long)sb.st_nlink);
		return false;
	}
	if ((S_ISCHR(sa.st_mode) || S_ISBLK(sa.st_mode)) && sa.st_rdev != sb.st_rdev) {
		snprintf(diff, sizeof(diff), "%s: device differs", a);
		return false;
	}
	if (S_ISREG(sa.st_mode) && !same_content(a, b)) {
		snprintf(diff, sizeof(diff), "%s: content differs", a);
		return false;
	}
	if (S_ISLNK(sa.st_mode)) {
		char la[4096] = { 0 }, lb[4096] = { 0 };

		if (readlink(a, la, sizeof(la) - 1) < 0 || readlink(b, lb, sizeof(lb) - 1) < 0 ||
		    strcmp(la, lb) != 0) {
			snprintf(diff, sizeof(diff), "%s: link '%s', copy '%s'", a, la, lb);
			return false;
		}
	}
	if (S_ISDIR(sa.st_mode))
		return compare_dir(a, b);
	return true;
}

static const char *compare_trees(const char *a, const char *b, bool root_meta)
{
	diff[0] = '\0';
	compare_entry(a, b, root_meta);
	return diff;
}

static bool same_inode(const char *a, const char *b)
{
	struct stat sa, sb;

	return lstat(a, &sa) == 0 && lstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

/* ---------------------------------------------------------------- the test tree */

#define LONG_A                                                                                     \
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"        \
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" /* 151 */
#define LONG_B                                                                                     \
	"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"      \
	"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"      \
	"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" /* 236 */

/* 90 and 60 bytes: ustar splits a path of them into prefix and name */
#define SPLIT_A                                                                                    \
	"ssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssss" \
	"ss"
#define SPLIT_B "tttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt"

static char long_target[320];

static void make_big(const char *path, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	static uint8_t chunk[65536];

	must(fd, path);
	for (size_t off = 0; off < size; off += sizeof(chunk)) {
		for (size_t i = 0; i < sizeof(chunk); i++)
			chunk[i] = (uint8_t)((off + i) * 7 + ((off + i) >> 9));
		must(write_full(fd, chunk, size - off < sizeof(chunk) ? size - off : sizeof(chunk)),
		     path);
	}
	close(fd);
}

/* Everything tar_cp_out keeps, plus a socket (left out). with_all: also the entries that the
 * ustar format cannot hold (long names, large ids, mtimes out of range). */
static void make_tree(const char *root, bool with_all)
{
	char p[4096];
	int fd;

	must(mkdir_p(root, 0755), root);
	must(chmod(root, 0755), root);
#define AT(rel) (snprintf(p, sizeof(p), "%s/%s", root, rel), p)
	put_str(AT("file"), "hello\n");
	make_big(AT("big"), 20 << 20);
	put_str(AT("empty"), "");
	must(symlink("../somewhere/x", AT("rel")), "symlink");
	must(symlink("/etc/passwd", AT("abs")), "symlink");
	must(mkdir(AT("sub"), 0755), "mkdir");
	put_str(AT("sub/hard1"), "linked\n");
	{
		char a[4096], b[4096];

		snprintf(a, sizeof(a), "%s/sub/hard1", root);
		snprintf(b, sizeof(b), "%s/hard2", root);
		must(link(a, b), "link");
	}
	must(mkfifo(AT("fifo"), 0640), "mkfifo");
	must(mknod(AT("null"), S_IFCHR | 0666, makedev(1, 3)), "mknod");
	must(mknod(AT("blk"), S_IFBLK | 0660, makedev(7, 200)), "mknod");
	put_str(AT("owned"), "setuid\n");
	must(chown(p, 1234, 5678), "chown");
	must(chmod(p, 04750), "chmod");
	must(mkdir(AT("private"), 0700), "mkdir");
	put_str(AT("private/secret"), "s\n");
	must(chmod(AT("private/secret"), 0600), "chmod");
	must(mkdir(AT("sticky"), 0755), "mkdir");
	must(chmod(p, 01777), "chmod");
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	{
		struct sockaddr_un sa = { .sun_family = AF_UNIX };

		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sock", root);
		if (strlen(root) + 6 < sizeof(sa.sun_path))
			must(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), "bind");
		close(fd);
	}
	if (with_all) {
		must(mkdir(AT(LONG_A), 0755), "mkdir");
		put_str(AT(LONG_A "/" LONG_B), "long name\n");
		must(symlink(long_target, AT("longlink")), "symlink");
		{
			char a[4096], b[4096];

			snprintf(a, sizeof(a), "%s/%s/%s", root, LONG_A, LONG_B);
			snprintf(b, sizeof(b), "%s/%s/hard", root, LONG_A);
			must(link(a, b), "link");
		}
		put_str(AT("bigid"), "big ids\n");
		must(chown(p, 3000000, 4000000), "chown");
		put_str(AT("future"), "year 2286\n");
		set_mtime(p, 10000000000LL);
		put_str(AT("past"), "1969\n");
		set_mtime(p, -86400);
	}
	/* mtimes last, directories after their contents */
	set_mtime(AT("file"), 1600000001);
	set_mtime(AT("big"), 1600000002);
	set_mtime(AT("empty"), 1600000003);
	set_mtime(AT("rel"), 1600000004);
	set_mtime(AT("abs"), 1600000005);
	set_mtime(AT("sub/hard1"), 1600000006);
	set_mtime(AT("fifo"), 1600000007);
	set_mtime(AT("null"), 1600000008);
	set_mtime(AT("owned"), 1600000009);
	set_mtime(AT("private/secret"), 1600000010);
	set_mtime(AT("private"), 1600000011);
	set_mtime(AT("sticky"), 1600000012);
	set_mtime(AT("sub"), 1600000013);
	if (with_all) {
		set_mtime(AT("longlink"), 1600000014);
		set_mtime(AT(LONG_A), 1600000015);
	}
	set_mtime(root, 1600000016);
#undef AT
}

/* ---------------------------------------------------------------- round trips */

TEST(round_trip_file)
{
	make_tree(P("rt/src"), true);
	must(mkdir(P("rt/dst"), 0755), "mkdir");
	CHECK_EQ_INT(cp_out_to_file(P("rt/src"), P("rt/a.tar")), 0);
	CHECK_EQ_STR(msg, "");
	CHECK_EQ_INT(cp_in_from_file(P("rt/a.tar"), P("rt/dst")), 0);
	CHECK_EQ_STR(msg, "");
	CHECK_EQ_STR(compare_trees(P("rt/src"), P("rt/dst/src"), true), "");
	CHECK(same_inode(P("rt/dst/src/sub/hard1"), P("rt/dst/src/hard2")));
	CHECK(!exists(P("rt/dst/src/sock")));
	{
		struct stat st;

		CHECK(lstat(P("rt/dst/src/owned"), &st) == 0 && st.st_uid == 1234 &&
		      st.st_gid == 5678 && (st.st_mode & 07777) == 04750);
		CHECK(lstat(P("rt/dst/src/private"), &st) == 0 && (st.st_mode & 07777) == 0700);
		CHECK(lstat(P("rt/dst/src/big"), &st) == 0 && st.st_size == 20 << 20);
		CHECK(lstat(P("rt/dst/src/future"), &st) == 0 &&
		      st.st_mtim.tv_sec == 10000000000LL);
		CHECK(lstat(P("rt/dst/src/past"), &st) == 0 && st.st_mtim.tv_sec == -86400);
		CHECK(lstat(P("rt/dst/src/bigid"), &st) == 0 && st.st_uid == 3000000 &&
		      st.st_gid == 4000000);
	}
	{
		char l[4096] = { 0 };

		CHECK(readlink(P("rt/dst/src/abs"), l, sizeof(l) - 1) > 0);
		CHECK_EQ_STR(l, "/etc/passwd");
		memset(l, 0, sizeof(l));
		CHECK(readlink(P("rt/dst/src/rel"), l, sizeof(l) - 1) > 0);
		CHECK_EQ_STR(l, "../somewhere/x");
		memset(l, 0, sizeof(l));
		CHECK(readlink(P("rt/dst/src/longlink"), l, sizeof(l) - 1) > 0);
		CHECK_EQ_STR(l, long_target);
	}
	/* the archive is whole blocks */
	{
		struct stat st;

		CHECK(stat(P("rt/a.tar"), &st) == 0 && st.st_size % 512 == 0);
	}
}

TEST(round_trip_pipe)
{
	/* the same tree again, through a pipe, into a new name */
	CHECK_EQ_INT(cp_through_pipe(P("rt/src"), P("rt/piped")), 0);
	CHECK_EQ_STR(msg, "");
	CHECK_EQ_STR(compare_trees(P("rt/src"), P("rt/piped"), true), "");
	CHECK(same_inode(P("rt/piped/sub/hard1"), P("rt/piped/hard2")));
}

TEST(extract_twice_replaces_and_merges)
{
	/* a second extraction over the first: files are replaced, directories merge */
	put_str(P("rt/dst/src/file"), "changed\n");
	put_str(P("rt/dst/src/extra"), "kept\n");
	CHECK_EQ_INT(cp_in_from_file(P("rt/a.tar"), P("rt/dst")), 0);
	CHECK_EQ_STR(msg, "");
	CHECK(file_is(P("rt/dst/src/file"), "hello\n"));
	CHECK(file_is(P("rt/dst/src/extra"), "kept\n"));
	CHECK(same_inode(P("rt/dst/src/sub/hard1"), P("rt/dst/src/hard2")));
	unlink(P("rt/dst/src/extra")); /* changes the directory's mtime */
	CHECK_EQ_STR(compare_trees(P("rt/src"), P("rt/dst/src"), false), "");
}

TEST(gnu_tar_reads_ours)
{
	CHECK_EQ_INT(sh("tar -tvf %s >%s 2>&1", P("rt/a.tar"), P("rt/list")), 0);
	must(mkdir(P("rt/gnu"), 0755), "mkdir");
	CHECK_EQ_INT(sh("tar -C %s --numeric-owner -xpf %s 2>%s", P("rt/gnu"), P("rt/a.tar"),
			P("rt/gnu.err")),
		     0);
	/* nothing but warnings about the mtimes of "past" and "future" */
	CHECK_EQ_INT(sh("grep -v 'time stamp' %s", P("rt/gnu.err")), 1);
	CHECK_EQ_STR(compare_trees(P("rt/src"), P("rt/gnu/src"), true), "");
	CHECK(same_inode(P("rt/gnu/src/sub/hard1"), P("rt/gnu/src/hard2")));
	/* the listing shows the numeric owners and the long names */
	CHECK_EQ_INT(sh("grep -q '1234/5678' %s", P("rt/list")), 0);
	CHECK_EQ_INT(sh("grep -q '3000000/4000000' %s", P("rt/list")), 0);
	CHECK_EQ_INT(sh("grep -q 'src/" LONG_A "/" LONG_B "$' %s", P("rt/list")), 0);
}

static void gnu_format(const char *format, bool with_all)
{
	const char *src = P("%s/src", format), *dst = P("%s/dst", format);

	make_tree(src, with_all);
	must(mkdir(dst, 0755), "mkdir");
	CHECK_EQ_INT(sh("tar --format=%s -C %s -cf %s . 2>/dev/null", format, src,
			P("%s/a.tar", format)),
		     0);
	CHECK_EQ_INT(cp_in_from_file(P("%s/a.tar", format), dst), 0);
	CHECK_EQ_STR(msg, "");
	/* "./" is the destination itself: it keeps its own mode and mtime */
	CHECK_EQ_STR(compare_trees(src, dst, false), "");
	CHECK(same_inode(P("%s/dst/sub/hard1", format), P("%s/dst/hard2", format)));
	/* and as a new name, "." becomes that name, with the source's metadata */
	CHECK_EQ_INT(cp_in_from_file(P("%s/a.tar", format), P("%s/renamed", format)), 0);
	CHECK_EQ_STR(msg, "");
	CHECK_EQ_STR(compare_trees(src, P("%s/renamed", format), true), "");
}

TEST(gnu_tar_gnu_format)
{
	must(mkdir(P("gnu"), 0755), "mkdir");
	gnu_format("gnu", true);
}

TEST(gnu_tar_posix_format)
{
	must(mkdir(P("posix"), 0755), "mkdir");
	gnu_format("posix", true);
}

TEST(gnu_tar_ustar_format)
{
	/* ustar: names up to 255 bytes split into prefix and name */
	must(mkdir(P("ustar"), 0755), "mkdir");
	gnu_format("ustar", false);
	must(mkdir_p(P("ustar/split/" SPLIT_A "/" SPLIT_B), 0755), "mkdir");
	put_str(P("ustar/split/" SPLIT_A "/" SPLIT_B "/0123456789"), "split\n");
	CHECK_EQ_INT(sh("tar --format=ustar -C %s -cf %s split", P("ustar"), P("ustar/s.tar")), 0);
	CHECK_EQ_INT(cp_in_from_file(P("ustar/s.tar"), P("ustar/dst")), 0);
	CHECK_EQ_STR(msg, "");
	CHECK(file_is(P("ustar/dst/split/" SPLIT_A "/" SPLIT_B "/0123456789"), "split\n"));
}

TEST(changing_file_size)
{
	/* a sysfs file says 4096 bytes and has fewer: the entry is padded to 4096 */
	const char *src = "/sys/kernel/mm/transparent_hugepage/enabled";
	struct stat st;
	size_t len;
	char *data;

	if (stat(src, &st) < 0 || st.st_size != 4096) {
		printf("# skipped: no %s\n", src);
		return;
	}
	must(mkdir(P("sysfs"), 0755), "mkdir");
	CHECK_EQ_INT(cp_out_to_file(src, P("sysfs/a.tar")), 0);
	CHECK(stat(P("sysfs/a.tar"), &st) == 0 && st.st_size == 512 + 4096 + 1024);
	CHECK_EQ_INT(sh("tar -tf %s >/dev/null", P("sysfs/a.tar")), 0);
	CHECK_EQ_INT(cp_in_from_file(P("sysfs/a.tar"), P("sysfs")), 0);
	data = get_file(P("sysfs/enabled"), &len);
	CHECK(data && len == 4096 && strchr(data, '[') != NULL);
	free(data);
}

TEST(large_file_over_8gib)
{
	/* a sparse file just over 8 GiB: pax size, read back by GNU tar */
	const char *f = P("huge/file");
	int fd;

	if (!getenv("COVE_TEST_SLOW")) {
		printf("# skipped: set COVE_TEST_SLOW=1\n");
		return;
	}
	must(mkdir(P("huge"), 0755), "mkdir");
	fd = open(f, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	must(fd, f);
	must(pwrite(fd, "end", 3, (8ULL << 30) + 100), "pwrite");
	close(fd);
	CHECK_EQ_INT(sh("%s --cp-out %s | tar -tvf - | grep -q ' 8589934695 '", self_exe, f), 0);
}

/* ---------------------------------------------------------------- docker cp naming */

TEST(cp_file_into_dir)
{
	must(mkdir(P("n"), 0755), "mkdir");
	must(mkdir(P("n/dir"), 0755), "mkdir");
	put_str(P("n/f"), "f\n");
	CHECK_EQ_INT(cp_through_pipe(P("n/f"), P("n/dir")), 0);
	CHECK(file_is(P("n/dir/f"), "f\n"));
	/* a trailing slash on an existing directory is the same */
	CHECK_EQ_INT(cp_through_pipe(P("n/f"), P("n/dir/")), 0);
	CHECK(file_is(P("n/dir/f"), "f\n"));
	/* through a symlink to a directory */
	must(symlink("dir", P("n/dirlink")), "symlink");
	put_str(P("n/g"), "g\n");
	CHECK_EQ_INT(cp_through_pipe(P("n/g"), P("n/dirlink")), 0);
	CHECK(file_is(P("n/dir/g"), "g\n"));
}

TEST(cp_file_to_new_name)
{
	CHECK_EQ_INT(cp_through_pipe(P("n/f"), P("n/dir/newname")), 0);
	CHECK(file_is(P("n/dir/newname"), "f\n"));
	/* onto an existing file: replaced */
	put_str(P("n/dir/existing"), "old\n");
	CHECK_EQ_INT(cp_through_pipe(P("n/f"), P("n/dir/existing")), 0);
	CHECK(file_is(P("n/dir/existing"), "f\n"));
	/* a symlink as source is kept as a symlink */
	must(symlink("/nowhere", P("n/link")), "symlink");
	CHECK_EQ_INT(cp_through_pipe(P("n/link"), P("n/dir/link2")), 0);
	{
		char l[64] = { 0 };

		CHECK(readlink(P("n/dir/link2"), l, sizeof(l) - 1) > 0);
		CHECK_EQ_STR(l, "/nowhere");
	}
}

TEST(cp_dir_into_dir_and_new_name)
{
	must(mkdir(P("n/tree"), 0750), "mkdir");
	must(mkdir(P("n/tree/sub"), 0755), "mkdir");
	put_str(P("n/tree/a"), "a\n");
	put_str(P("n/tree/sub/b"), "b\n");
	must(mkdir(P("n/into"), 0755), "mkdir");
	CHECK_EQ_INT(cp_through_pipe(P("n/tree"), P("n/into")), 0);
	CHECK_EQ_STR(compare_trees(P("n/tree"), P("n/into/tree"), true), "");
	CHECK_EQ_INT(cp_through_pipe(P("n/tree"), P("n/copy")), 0);
	CHECK_EQ_STR(compare_trees(P("n/tree"), P("n/copy"), true), "");
	/* "tree/" is the directory too */
	CHECK_EQ_INT(cp_through_pipe(P("n/tree/"), P("n/copy2")), 0);
	CHECK_EQ_STR(compare_trees(P("n/tree"), P("n/copy2"), true), "");
}

TEST(cp_dir_contents)
{
	/* "tree/." into an existing directory: the contents, not the directory */
	must(mkdir(P("n/contents"), 0755), "mkdir");
	put_str(P("n/contents/other"), "other\n");
	CHECK_EQ_INT(cp_through_pipe(P("n/tree/."), P("n/contents")), 0);
	CHECK(file_is(P("n/contents/a"), "a\n"));
	CHECK(file_is(P("n/contents/sub/b"), "b\n"));
	CHECK(file_is(P("n/contents/other"), "other\n"));
	CHECK(!exists(P("n/contents/tree")));
	{
		struct stat st;

		/* the destination keeps its own mode */
		CHECK(stat(P("n/contents"), &st) == 0 && (st.st_mode & 07777) == 0755);
	}
	/* to a new name: that name is the directory */
	CHECK_EQ_INT(cp_through_pipe(P("n/tree/."), P("n/contents2")), 0);
	CHECK_EQ_STR(compare_trees(P("n/tree"), P("n/contents2"), true), "");
	/* the archive names the entries "./a", "./sub/b" */
	CHECK_EQ_INT(cp_out_to_file(P("n/tree/."), P("n/contents.tar")), 0);
	CHECK_EQ_INT(sh("tar -tf %s | sort | tr '\\n' ' ' | grep -qx './ ./a ./sub/ ./sub/b '",
			P("n/contents.tar")),
		     0);
}

TEST(cp_dir_onto_file_fails)
{
	put_str(P("n/afile"), "untouched\n");
	CHECK_EQ_INT(cp_through_pipe(P("n/tree"), P("n/afile")), -EISDIR);
	CHECK(strstr(msg, "cannot copy a directory to a file") != NULL);
	CHECK(strchr(msg, '\n') == NULL);
	CHECK(file_is(P("n/afile"), "untouched\n"));
	/* a file to "afile/": not a directory */
	CHECK_EQ_INT(cp_through_pipe(P("n/f"), P("n/afile/")), -ENOTDIR);
	CHECK(file_is(P("n/afile"), "untouched\n"));
}

TEST(cp_missing_parent_fails)
{
	CHECK_EQ_INT(cp_through_pipe(P("n/f"), P("n/missing/x")), -ENOENT);
	CHECK(strstr(msg, "no such directory") != NULL);
	CHECK(strstr(msg, "missing") != NULL);
	CHECK(!exists(P("n/missing")));
	/* a missing directory named with a trailing slash */
	CHECK_EQ_INT(cp_through_pipe(P("n/f"), P("n/missing/")), -ENOENT);
	CHECK(strstr(msg, "no such directory") != NULL);
	CHECK(!exists(P("n/missing")));
}

TEST(cp_out_errors)
{
	int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	int p[2];

	CHECK_EQ_INT(tar_cp_out(fd, P("n/nothing-here"), msg, sizeof(msg)), -ENOENT);
	CHECK(strstr(msg, "cannot open '") != NULL && strstr(msg, "nothing-here'") != NULL);
	CHECK(strstr(msg, strerror(ENOENT)) != NULL);
	CHECK_EQ_INT(tar_cp_out(fd, P("n/f/"), msg, sizeof(msg)), -ENOTDIR);
	close(fd);
	/* a closed pipe */
	must(pipe2(p, O_CLOEXEC), "pipe");
	close(p[0]);
	signal(SIGPIPE, SIG_IGN);
	CHECK_EQ_INT(tar_cp_out(p[1], P("n/tree"), msg, sizeof(msg)), -EPIPE);
	CHECK(strstr(msg, "cannot write the archive") != NULL);
	close(p[1]);
}

/* ---------------------------------------------------------------- hand-made archives */

struct tarb {
	uint8_t data[64 * 1024];
	size_t len;
};

static void tb_checksum(uint8_t *h)
{
	unsigned int sum = 0;

	memset(h + 148, ' ', 8);
	for (int i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
}

/* Append a header; returns it so a test can damage it (then tb_checksum it again). */
static uint8_t *tb_header(struct tarb *t, const char *name, char type, const char *link,
			  size_t size)
{
	uint8_t *h = t->data + t->len;

	memset(h, 0, 512);
	memcpy(h, name, strlen(name) < 100 ? strlen(name) : 100);
	snprintf((char *)h + 100, 8, "%07o", type == '5' ? 0755 : 0644);
	snprintf((char *)h + 108, 8, "%07o", 0);
	snprintf((char *)h + 116, 8, "%07o", 0);
	snprintf((char *)h + 124, 12, "%011zo", size);
	snprintf((char *)h + 136, 12, "%011o", 1600000000);
	h[156] = (uint8_t)type;
	if (link)
		memcpy(h + 157, link, strlen(link) < 100 ? strlen(link) : 100);
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	tb_checksum(h);
	t->len += 512;
	return h;
}

static void tb_data(struct tarb *t, const void *data, size_t len)
{
	memcpy(t->data + t->len, data, len);
	t->len += (len + 511) / 512 * 512;
}

static void tb_file(struct tarb *t, const char *name, const char *content)
{
	tb_header(t, name, '0', NULL, strlen(content));
	tb_data(t, content, strlen(content));
}

static void tb_pax(struct tarb *t, const char *key, const char *value)
{
	char rec[1024];
	size_t n = strlen(key) + strlen(value) + 3, len = n + 1;

	while ((size_t)snprintf(rec, sizeof(rec), "%zu", len) + n != len)
		len = n + strlen(rec);
	snprintf(rec, sizeof(rec), "%zu %s=%s\n", len, key, value);
	tb_header(t, "PaxHeaders/x", 'x', NULL, len);
	tb_data(t, rec, len);
}

static void tb_end(struct tarb *t)
{
	memset(t->data + t->len, 0, 1024);
	t->len += 1024;
}

static int tb_extract(const struct tarb *t, const char *dst)
{
	put_file(P("sec/in.tar"), t->data, t->len);
	return cp_in_from_file(P("sec/in.tar"), dst);
}

static void sec_setup(void)
{
	if (!exists(P("sec"))) {
		must(mkdir(P("sec"), 0755), "mkdir");
		must(mkdir(P("sec/outside"), 0755), "mkdir");
		put_str(P("sec/outside/target"), "orig\n");
		put_str(P("sec/x"), "x\n");
	}
	sh("rm -rf %s && mkdir %s", P("sec/dst"), P("sec/dst"));
}

TEST(refuse_dotdot)
{
	static struct tarb t;

	sec_setup();
	t.len = 0;
	tb_file(&t, "../escape", "bad\n");
	tb_end(&t);
	CHECK_EQ_INT(tb_extract(&t, P("sec/dst")), -EINVAL);
	CHECK(strstr(msg, "../escape") != NULL && strstr(msg, "'..'") != NULL);
	CHECK(!exists(P("sec/escape")));
	/* deeper, and hidden in a pax path */
	t.len = 0;
	tb_file(&t, "a/../../escape2", "bad\n");
	tb_end(&t);
	CHECK_EQ_INT(tb_extract(&t, P("sec/dst")), -EINVAL);
	CHECK(!exists(P("sec/escape2")));
	t.len = 0;
	tb_pax(&t, "path", "../escape3");
	tb_file(&t, "harmless", "bad\n");
	tb_end(&t);
	CHECK_EQ_INT(tb_extract(&t, P("sec/dst")), -EINVAL);
	CHECK(!exists(P("sec/escape3")));
	CHECK(!exists(P("sec/dst/harmless")));
	/* in a GNU long name */
	t.len = 0;
	tb_header(&t, "././@LongLink", 'L', NULL, 11);
	tb_data(&t, "../escape4", 11);
	tb_file(&t, "harmless", "bad\n");
	tb_end(&t);
	CHECK_EQ_INT(tb_extract(&t, P("sec/dst")), -EINVAL);
	CHECK(!exists(P("sec/escape4")));
	/* and when copying to a new name */
	t.len = 0;
	tb_file(&t, "top/ok", "ok\n");
	tb_file(&t, "top/../../escape5", "bad\n");
	tb_end(&t);
	CHECK_EQ_INT(tb_extract(&t, P("sec/dst/new")), -EINVAL);
	CHECK(!exists(P("sec/escape5")));
	CHECK(file_is(P("sec/dst/new/ok"), "ok\n"));
	/* an entry outside the first entry's top-level directory, copying to a new name */
	t.len = 0;
	tb_file(&t, "top/ok", "ok\n");
	tb_file(&t, "other", "bad\n");
	tb_end(&t);
	CHECK_EQ_INT(tb_extract(&t, P("sec/dst/new2")), -EINVAL);
	CHECK(!exists(P("sec/dst/other")));
}

TEST(refuse_absolute)
{
	static struct tarb t;
	char abs[128];

	sec_setup();
	snprintf(abs, sizeof(abs), "/tmp/cove-tar-abs-%d", (int)getpid());
	t.len = 0;
	tb_file(&t, abs, "bad\n");
	tb_end(&t);
	CHECK_EQ_INT(tb_extract(&t, P("sec/dst")), -EINVAL);
	CHECK(strstr(msg, "absolute") != NULL);
	CHECK(!exists(abs));
	CHECK(!exists(P("sec/dst/tmp")));
	/* a hard link to an absolute path */
	t.len = 0;
	tb_header(&t, "h", '1', P("sec/x"), 0);
	tb_end(&t);
	CHECK_EQ_INT(tb_extract(&t, P("sec/dst")), -EINVAL);
	CHECK(!exists(P("sec/dst/h")));
}

TEST(refuse_symlink_in_archive)
{
	static struct tarb t;

	sec_setup();
	t.len = 0;
	tb_header(&t, "a", '2', P("sec/outside"), 0);
	tb_file(&t, "a/file", "bad\n");
	tb_end(&t);
	CHECK_EQ_INT(tb_extract(&t, P("sec/dst")), -ELOOP);
	CHECK(strstr(msg, "'a/file'") != NULL && strstr(msg, "symlink") != NULL);
	CHECK(!exists(P("sec/outside/file")));
	/* a relative symlink that climbs out, then a directory under it */
	t.len = 0;
	tb_header(&t, "up", '2', "../outside", 0);
	tb_header(&t, "up/newdir/", '5', NULL, 0);
	tb_end(&t);
	CHECK(tb_extract(&t, P("sec/dst")) < 0);
	CHECK(!exists(P("sec/outside/newdir")));
}

TEST(refuse_symlink_on_disk)
{
	static struct tarb t;

	sec_setup();
	must(symlink(P("sec/outside"), P("sec/dst/b")), "symlink");
	t.len = 0;
	tb_file(&t, "b/file", "bad\n");
	tb_end(&t);
	CHECK_EQ_INT(tb_extract(&t, P("sec/dst")), -ELOOP);
	CHECK(strstr(msg, "'b/file'") != NULL && strstr(msg, "symlink") != NULL);
	CHECK(!exists(P("sec/outside/file")));
	/* a file over a symlink replaces the link, and does not write through it */
	must(symlink(P("sec/outside/target"), P("sec/dst/f")), "symlink");
	t.len = 0;
	tb_file(&t, "f", "new\n");
	tb_end(&t);
	CHECK_EQ_INT(tb_extract(&t, P("sec/dst")), 0);
	CHECK(file_is(P("sec/outside/target"), "orig\n"));
	CHECK(file_is(P("sec/dst/f"), "new\n"));
	{
		struct stat st;

		CHECK(lstat(P("sec/dst/f"), &st) == 0 && S_ISREG(st.st_mode));
	}
	/* a directory entry over the symlink replaces it too */
	t.len = 0;
	tb_header(&t, "b/", '5', NULL, 0);
	tb_file(&t, "b/file", "inside\n");
	tb_end(&t);
	CHECK_EQ_INT(tb_extract(&t, P("sec/dst")), 0);
	CHECK(file_is(P("sec/dst/b/file"), "inside\n"));
	CHECK(!exists(P("sec/outside/file")));
}

TEST(refuse_hardlink_out)
{
	static struct tarb t;
	struct stat st;

	sec_setup();
	t.len = 0;
	tb_header(&t, "h", '1', "../x", 0);
	tb_end(&t);
	CHECK_EQ_INT(tb_extract(&t, P("sec/dst")), -EINVAL);
	CHECK(strstr(msg, "'h'") != NULL && strstr(msg, "../x") != NULL);
	CHECK(!exists(P("sec/dst/h")));
	CHECK(stat(P("sec/x"), &st) == 0 && st.st_nlink == 1);
	/* through a symlink made by the archive */
	t.len = 0;
	tb_header(&t, "a", '2', P("sec/outside"), 0);
	tb_header(&t, "h", '1', "a/target", 0);
	tb_end(&t);
	CHECK_EQ_INT(tb_extract(&t, P("sec/dst")), -ELOOP);
	CHECK(!exists(P("sec/dst/h")));
	CHECK(stat(P("sec/outside/target"), &st) == 0 && st.st_nlink == 1);
	/* a hard link to a symlink links the symlink itself */
	t.len = 0;
	tb_header(&t, "l", '2', P("sec/outside/target"), 0);
	tb_header(&t, "h2", '1', "l", 0);
	tb_end(&t);
	CHECK_EQ_INT(tb_extract(&t, P("sec/dst")), 0);
	CHECK(lstat(P("sec/dst/h2"), &st) == 0 && S_ISLNK(st.st_mode));
	CHECK(stat(P("sec/outside/target"), &st) == 0 && st.st_nlink == 1);
}

TEST(broken_archives)
{
	static struct tarb t;
	uint8_t *h;

	sec_setup();
	/* bad checksum */
	t.len = 0;
	h = tb_header(&t, "f", '0', NULL, 0);
	h[0] = 'g';
	tb_end(&t);
	CHECK_EQ_INT(tb_extract(&t, P("sec/dst")), -EPROTO);
	CHECK(strstr(msg, "checksum") != NULL);
	CHECK(!exists(P("sec/dst/g")));
	/* bad octal */
	t.len = 0;
	h = tb_header(&t, "f", '0', NULL, 0);
	memcpy(h + 124, "0000000001x", 11);
	tb_checksum(h);
	tb_end(&t);
	CHECK_EQ_INT(tb_extract(&t, P("sec/dst")), -EINVAL);
	CHECK(strstr(msg, "bad size") != NULL && strstr(msg, "'f'") != NULL);
	/* truncated in the data */
	t.len = 0;
	tb_header(&t, "f", '0', NULL, 2000);
	tb_data(&t, "abc", 3);
	CHECK_EQ_INT(tb_extract(&t, P("sec/dst")), -EPROTO);
	CHECK(strstr(msg, "truncated") != NULL && strstr(msg, "'f'") != NULL);
	/* truncated in a header */
	t.len = 0;
	tb_file(&t, "ok", "ok\n");
	tb_header(&t, "g", '0', NULL, 0);
	t.len -= 200;
	CHECK_EQ_INT(tb_extract(&t, P("sec/dst")), -EPROTO);
	CHECK(strstr(msg, "truncated") != NULL);
	/* a pax header with a bad record */
	t.len = 0;
	tb_header(&t, "PaxHeaders/x", 'x', NULL, 12);
	tb_data(&t, "99 path=abc\n", 12);
	tb_file(&t, "f", "f\n");
	tb_end(&t);
	CHECK_EQ_INT(tb_extract(&t, P("sec/dst")), -EPROTO);
	/* a pax header too large to accept */
	t.len = 0;
	tb_header(&t, "PaxHeaders/x", 'x', NULL, 100 << 20);
	tb_end(&t);
	CHECK_EQ_INT(tb_extract(&t, P("sec/dst")), -EPROTO);
	/* messages are one line */
	CHECK(strchr(msg, '\n') == NULL);
}

TEST(archive_variants)
{
	static struct tarb t;
	uint8_t *h;
	struct stat st;

	sec_setup();
	/* EOF right after an entry, without the end blocks */
	t.len = 0;
	tb_file(&t, "noend", "no end\n");
	CHECK_EQ_INT(tb_extract(&t, P("sec/dst")), 0);
	CHECK(file_is(P("sec/dst/noend"), "no end\n"));
	/* an empty archive */
	t.len = 0;
	CHECK_EQ_INT(tb_extract(&t, P("sec/dst")), 0);
	tb_end(&t);
	CHECK_EQ_INT(tb_extract(&t, P("sec/dst")), 0);
	/* base-256 size, uid and mtime */
	t.len = 0;
	h = tb_header(&t, "b256", '0', NULL, 0);
	memset(h + 124, 0, 12);
	h[124] = 0x80;
	h[135] = 5;
	memset(h + 108, 0, 8);
	h[108] = 0x80;
	h[113] = 0x01; /* 0x01 << 16 ... */
	h[114] = 0x00;
	h[115] = 0x07;		   /* 65543 */
	memset(h + 136, 0xff, 12); /* -1 */
	tb_checksum(h);
	tb_data(&t, "five\n", 5);
	tb_end(&t);
	CHECK_EQ_INT(tb_extract(&t, P("sec/dst")), 0);
	CHECK(file_is(P("sec/dst/b256"), "five\n"));
	CHECK(lstat(P("sec/dst/b256"), &st) == 0 && st.st_uid == 65543 && st.st_mtim.tv_sec == -1);
	/* a pax size, uid, mtime and long path override the header */
	t.len = 0;
	tb_pax(&t, "size", "3");
	tb_pax(&t, "uid", "4242");
	tb_pax(&t, "mtime", "1234567890.5");
	tb_pax(&t, "path", "paxdir/" LONG_B);
	tb_header(&t, "wrong", '0', NULL, 999);
	tb_data(&t, "pax", 3);
	tb_header(&t, "after", '5', NULL, 0);
	tb_end(&t);
	CHECK_EQ_INT(tb_extract(&t, P("sec/dst")), 0);
	CHECK_EQ_STR(msg, "");
	CHECK(file_is(P("sec/dst/paxdir/" LONG_B), "pax"));
	CHECK(lstat(P("sec/dst/paxdir/" LONG_B), &st) == 0 && st.st_uid == 4242 &&
	      st.st_mtim.tv_sec == 1234567890 && st.st_mtim.tv_nsec == 500000000);
	CHECK(!exists(P("sec/dst/wrong")));
	CHECK(lstat(P("sec/dst/after"), &st) == 0 && S_ISDIR(st.st_mode));
	/* global pax headers, volume labels and unknown types are skipped */
	t.len = 0;
	tb_header(&t, "global", 'g', NULL, 12);
	tb_data(&t, "12 path=gg\n\n", 12);
	tb_header(&t, "label", 'V', NULL, 0);
	tb_header(&t, "vendor", 'Q', NULL, 4);
	tb_data(&t, "data", 4);
	tb_file(&t, "real", "real\n");
	tb_end(&t);
	CHECK_EQ_INT(tb_extract(&t, P("sec/dst")), 0);
	CHECK(file_is(P("sec/dst/real"), "real\n"));
	CHECK(!exists(P("sec/dst/gg")) && !exists(P("sec/dst/label")) &&
	      !exists(P("sec/dst/vendor")));
	/* a directory entry over an existing file replaces it; a file over a directory fails */
	t.len = 0;
	tb_header(&t, "real/", '5', NULL, 0);
	tb_end(&t);
	CHECK_EQ_INT(tb_extract(&t, P("sec/dst")), 0);
	CHECK(lstat(P("sec/dst/real"), &st) == 0 && S_ISDIR(st.st_mode));
	t.len = 0;
	tb_file(&t, "real", "real\n");
	tb_end(&t);
	CHECK_EQ_INT(tb_extract(&t, P("sec/dst")), -EISDIR);
	/* missing parent directories are made */
	t.len = 0;
	tb_file(&t, "p/q/r", "deep\n");
	tb_end(&t);
	CHECK_EQ_INT(tb_extract(&t, P("sec/dst")), 0);
	CHECK(file_is(P("sec/dst/p/q/r"), "deep\n"));
}

TEST(read_only_dir_is_filled)
{
	/* a directory's mode is applied after its contents, so 0555 does not get in the way */
	static struct tarb t;
	uint8_t *h;
	struct stat st;

	sec_setup();
	t.len = 0;
	h = tb_header(&t, "ro/", '5', NULL, 0);
	snprintf((char *)h + 100, 8, "%07o", 0555);
	tb_checksum(h);
	tb_file(&t, "ro/inside", "in\n");
	tb_end(&t);
	CHECK_EQ_INT(tb_extract(&t, P("sec/dst")), 0);
	CHECK(file_is(P("sec/dst/ro/inside"), "in\n"));
	CHECK(lstat(P("sec/dst/ro"), &st) == 0 && (st.st_mode & 07777) == 0555 &&
	      st.st_mtim.tv_sec == 1600000000);
}

/* ---------------------------------------------------------------- from a hostile container */

static int host_in(const char *tar_path, const char *dst, struct tar_in_opts *o)
{
	int fd = open(tar_path, O_RDONLY | O_CLOEXEC);
	int r;

	must(fd, tar_path);
	msg[0] = '\0';
	r = tar_cp_in(fd, dst, o, msg, sizeof(msg));
	close(fd);
	return r;
}

/* on the host: no device nodes, no setuid/setgid, owners only when asked (as root) */
TEST(host_distrusts_metadata)
{
	struct tar_in_opts o = { 0 };
	struct stat st;

	CHECK_EQ_INT(sh("mkdir -p '%s' '%s' && cd '%s' && echo x >suid && chmod 4755 suid && "
			"echo y >sgid && chmod 2755 sgid && chown 1234:5678 suid && mkfifo fifo && "
			"mknod disk b 8 0 && chmod 666 disk && mkdir sdir && chmod 2775 sdir && "
			"tar -cf ../h.tar .",
			P("host/src"), P("host/out"), P("host/src")),
		     0);
	CHECK_EQ_INT(host_in(P("host/h.tar"), P("host/out"), &o), 0);
	CHECK_EQ_STR(msg, "");
	CHECK_EQ_INT(o.skipped, 1);
	CHECK(!exists(P("host/out/disk")));
	CHECK(stat(P("host/out/suid"), &st) == 0 && (st.st_mode & 07777) == 0755 && st.st_uid == 0);
	CHECK(stat(P("host/out/sgid"), &st) == 0 && (st.st_mode & 07777) == 0755);
	CHECK(stat(P("host/out/sdir"), &st) == 0 && (st.st_mode & 07777) == 0775);
	CHECK(lstat(P("host/out/fifo"), &st) == 0 && S_ISFIFO(st.st_mode));
	/* with -a, owners are the archive's (setid still cleared) */
	o = (struct tar_in_opts){ .keep_owners = true };
	CHECK_EQ_INT(sh("mkdir -p '%s'", P("host/out-a")), 0);
	CHECK_EQ_INT(host_in(P("host/h.tar"), P("host/out-a"), &o), 0);
	CHECK(stat(P("host/out-a/suid"), &st) == 0 && st.st_uid == 1234 && st.st_gid == 5678 &&
	      (st.st_mode & 07777) == 0755);
}

/* into an existing directory, the archive may only hold the name that was asked for */
TEST(host_holds_the_name)
{
	struct tar_in_opts o = { .top = "report.txt" };
	struct stat st;

	CHECK_EQ_INT(sh("mkdir -p '%s' '%s' && cd '%s' && echo evil >.bashrc && echo ok >report.txt"
			" && tar -cf ../bashrc.tar .bashrc && tar -cf ../dot.tar ./.bashrc && "
			"tar -cf ../good.tar report.txt",
			P("name/src"), P("name/home"), P("name/src")),
		     0);
	CHECK_EQ_INT(host_in(P("name/bashrc.tar"), P("name/home"), &o), -EINVAL);
	CHECK(strstr(msg, "is not under the name that was asked for") != NULL);
	CHECK_EQ_INT(host_in(P("name/dot.tar"), P("name/home"), &o), -EINVAL);
	CHECK(!exists(P("name/home/.bashrc")));
	CHECK_EQ_INT(host_in(P("name/good.tar"), P("name/home"), &o), 0);
	CHECK(file_is(P("name/home/report.txt"), "ok\n"));
	/* a directory that was there keeps its own mode, owner and time */
	CHECK_EQ_INT(sh("mkdir -p '%s' && chmod 0700 '%s' && touch -d 2001-01-01 '%s' && "
			"mkdir -p '%s' && chmod 0777 '%s' && cd '%s' && tar -cf ../d.tar d",
			P("name/home/d"), P("name/home/d"), P("name/home/d"), P("name/t/d"),
			P("name/t/d"), P("name/t")),
		     0);
	o.top = "d";
	CHECK_EQ_INT(host_in(P("name/d.tar"), P("name/home"), &o), 0);
	CHECK(stat(P("name/home/d"), &st) == 0 && (st.st_mode & 0777) == 0700 &&
	      st.st_mtime == 978307200);
}

TEST(top_name)
{
	char b[64];

	CHECK(tar_cp_top("/app/report.txt", b, sizeof(b)) == 0 && strcmp(b, "report.txt") == 0);
	CHECK(tar_cp_top("/app/dir/", b, sizeof(b)) == 0 && strcmp(b, "dir") == 0);
	CHECK(tar_cp_top("rel", b, sizeof(b)) == 0 && strcmp(b, "rel") == 0);
	CHECK_EQ_INT(tar_cp_top("/app/.", b, sizeof(b)), 1);
	CHECK_EQ_INT(tar_cp_top("/", b, sizeof(b)), 1);
	CHECK_EQ_INT(tar_cp_top("/app/..", b, sizeof(b)), 1);
	CHECK_EQ_INT(tar_cp_top("/a/0123456789012345678901234567890123456789012345678901234567890123456789", b, sizeof(b)), -ENAMETOOLONG);
}

int main(int argc, char **argv)
{
	/* used by large_file_over_8gib: write an archive of argv[2] to stdout */
	if (argc == 3 && strcmp(argv[1], "--cp-out") == 0) {
		char m[512];
		int r = tar_cp_out(1, argv[2], m, sizeof(m));

		if (r < 0)
			fprintf(stderr, "%s\n", m);
		return r < 0;
	}
	if (geteuid() != 0) {
		printf("# skipped: test_tar needs root (owners, device nodes)\n");
		return 0;
	}
	if (readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1) < 0) {
		printf("# readlink /proc/self/exe: %s\n", strerror(errno));
		return 1;
	}
	if (!mkdtemp(top)) {
		printf("# mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	memset(long_target, 'l', 300);
	memcpy(long_target, "../", 3);

	RUN(round_trip_file);
	RUN(round_trip_pipe);
	RUN(extract_twice_replaces_and_merges);
	RUN(gnu_tar_reads_ours);
	RUN(gnu_tar_gnu_format);
	RUN(gnu_tar_posix_format);
	RUN(gnu_tar_ustar_format);
	RUN(changing_file_size);
	RUN(large_file_over_8gib);

	RUN(cp_file_into_dir);
	RUN(cp_file_to_new_name);
	RUN(cp_dir_into_dir_and_new_name);
	RUN(cp_dir_contents);
	RUN(cp_dir_onto_file_fails);
	RUN(cp_missing_parent_fails);
	RUN(cp_out_errors);

	RUN(refuse_dotdot);
	RUN(refuse_absolute);
	RUN(refuse_symlink_in_archive);
	RUN(refuse_symlink_on_disk);
	RUN(refuse_hardlink_out);
	RUN(broken_archives);
	RUN(archive_variants);
	RUN(read_only_dir_is_filled);
	RUN(host_distrusts_metadata);
	RUN(host_holds_the_name);
	RUN(top_name);

	if (!getenv("COVE_TEST_KEEP"))
		sh("rm -rf '%s'", top);
	else
		printf("# kept %s\n", top);
	return test_done();
}
