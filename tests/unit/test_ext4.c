/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ext4 writer tests: build real images (from a temp tree and from tar layers written here with
 * libarchive), check them with `e2fsck -fn`, and read back what landed with libext2fs.
 * Runs as root for the device node and security.capability cases; skips those otherwise.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <archive.h>
#include <archive_entry.h>
#include <ext2fs/ext2_fs.h>
#include <ext2fs/ext2fs.h>
#include <fcntl.h>
#include <ftw.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>

#include "ext4/writer.h"
#include "test.h"
#include "util/error.h"

#define MIB (1024u * 1024u)

/* ---- temp dirs, files, commands -------------------------------------------------------- */

static char tmp_root[256];
static char *tp_paths[512];
static size_t tp_n;

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static void tmp_new(void)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

	snprintf(tmp_root, sizeof(tmp_root), "%s/test_ext4.XXXXXX", base);
	if (!mkdtemp(tmp_root)) {
		perror("mkdtemp");
		exit(1);
	}
}

static void tmp_done(void)
{
	nftw(tmp_root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	while (tp_n > 0)
		free(tp_paths[--tp_n]);
}

/* how many files tmp_root holds (names that start with a dot aside) */
static size_t tmp_entries(void)
{
	DIR *d = opendir(tmp_root);
	size_t n = 0;

	for (struct dirent *de; d && (de = readdir(d));)
		n += de->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

/* tmp_root/rel; valid until tmp_done() */
static const char *tp(const char *rel)
{
	size_t len = strlen(tmp_root) + strlen(rel) + 2;
	char *b = malloc(len);

	if (!b || tp_n == ARRAY_SIZE(tp_paths)) {
		fputs("tp: out of paths\n", stderr);
		exit(1);
	}
	snprintf(b, len, "%s/%s", tmp_root, rel);
	tp_paths[tp_n++] = b;
	return b;
}

static void put_file(const char *rel, const void *data, size_t len, mode_t mode)
{
	int fd = open(tp(rel), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	if (fd < 0 || write_full(fd, data, len) < 0 || fchmod(fd, mode) < 0) {
		perror(rel);
		exit(1);
	}
	close(fd);
}

static void fill_pattern(uint8_t *buf, size_t len, uint32_t seed)
{
	for (size_t i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		buf[i] = (uint8_t)(seed >> 16);
	}
}

/* Exit status of argv run with output into tmp_root/cmd.out (printed when it fails). */
static int run(const char *const *argv)
{
	int status = -1;
	pid_t pid = fork();

	if (pid == 0) {
		int fd = open(tp("cmd.out"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return -1;
	if (!WIFEXITED(status))
		return -1;
	if (WEXITSTATUS(status) != 0) {
		char *out = NULL;

		if (read_file(tp("cmd.out"), 64 * 1024, &out, NULL) == 0)
			printf("# %s output:\n%s", argv[0], out);
		free(out);
	}
	return WEXITSTATUS(status);
}

static int fsck(const char *img)
{
	const char *argv[] = {"e2fsck", "-fn", img, NULL};

	return run(argv);
}

/* ---- reading images back --------------------------------------------------------------- */

static ext2_filsys img_open(const char *path)
{
	ext2_filsys fs = NULL;

	if (ext2fs_open(path, EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &fs))
		return NULL;
	return fs;
}

/* Inode of path (no symlink followed at the end), 0 if missing. */
static ext2_ino_t img_ino(ext2_filsys fs, const char *path)
{
	ext2_ino_t ino = 0;

	if (ext2fs_namei(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, path, &ino))
		return 0;
	return ino;
}

static struct ext2_inode_large img_inode(ext2_filsys fs, ext2_ino_t ino)
{
	struct ext2_inode_large in;

	memset(&in, 0, sizeof(in));
	ext2fs_read_inode_full(fs, ino, (struct ext2_inode *)&in, sizeof(in));
	return in;
}

static uint32_t img_uid(const struct ext2_inode_large *in)
{
	return in->i_uid | (uint32_t)in->osd2.linux2.l_i_uid_high << 16;
}

static uint32_t img_gid(const struct ext2_inode_large *in)
{
	return in->i_gid | (uint32_t)in->osd2.linux2.l_i_gid_high << 16;
}

/* Whole content of a regular file (malloc'd), NULL on error. */
static uint8_t *img_read(ext2_filsys fs, ext2_ino_t ino, size_t *ret_len)
{
	ext2_file_t f;
	uint64_t size;
	uint8_t *buf;
	size_t got = 0;

	if (ext2fs_file_open(fs, ino, 0, &f))
		return NULL;
	size = ext2fs_file_get_size(f);
	buf = malloc(size + 1);
	while (buf && got < size) {
		unsigned int n = 0;

		if (ext2fs_file_read(f, buf + got,
				     (unsigned int)(size - got > MIB ? MIB : size - got), &n) ||
		    n == 0) {
			free(buf);
			buf = NULL;
			break;
		}
		got += n;
	}
	ext2fs_file_close(f);
	if (buf)
		*ret_len = got;
	return buf;
}

static bool img_content_is(ext2_filsys fs, const char *path, const void *data, size_t len)
{
	ext2_ino_t ino = img_ino(fs, path);
	size_t got = 0;
	uint8_t *buf = ino ? img_read(fs, ino, &got) : NULL;
	bool ok = buf && got == len && memcmp(buf, data, len) == 0;

	free(buf);
	return ok;
}

/* The xattr's value (malloc'd) or NULL. */
static void *img_xattr(ext2_filsys fs, ext2_ino_t ino, const char *name, size_t *ret_len)
{
	struct ext2_xattr_handle *h = NULL;
	void *v = NULL;

	if (ext2fs_xattrs_open(fs, ino, &h))
		return NULL;
	if (ext2fs_xattrs_read(h) || ext2fs_xattr_get(h, name, &v, ret_len))
		v = NULL;
	ext2fs_xattrs_close(&h);
	return v;
}

static bool img_xattr_is(ext2_filsys fs, const char *path, const char *name, const void *val,
			 size_t len)
{
	size_t got = 0;
	void *v = img_xattr(fs, img_ino(fs, path), name, &got);
	bool ok = v && got == len && memcmp(v, val, len) == 0;

	ext2fs_free_mem(&v);
	return ok;
}

static char *symlink_target(ext2_filsys fs, ext2_ino_t ino)
{
	struct ext2_inode_large in = img_inode(fs, ino);
	static char buf[4096];

	if (!LINUX_S_ISLNK(in.i_mode) || in.i_size >= sizeof(buf))
		return NULL;
	if (in.i_size < sizeof(in.i_block)) {
		memcpy(buf, in.i_block, in.i_size);
	} else {
		size_t n = 0;
		uint8_t *d = img_read(fs, ino, &n);

		if (!d)
			return NULL;
		memcpy(buf, d, n);
		free(d);
	}
	buf[in.i_size] = '\0';
	return buf;
}

/* ---- writing images -------------------------------------------------------------------- */

static struct ext4_writer *writer(const char *img, uint64_t size, struct cove_error *err)
{
	struct ext4_writer_opts o = {.size_bytes = size, .label = "test"};
	struct ext4_writer *w = NULL;

	if (ext4_writer_new(img, &o, &w, err) < 0)
		return NULL;
	return w;
}

enum { F_NONE, F_GZIP, F_ZSTD, F_XZ };

struct tent {
	const char *path;
	char type; /* f file, d dir, l symlink, h hardlink, c chardev, p fifo */
	unsigned int mode;
	const char *data; /* file content, symlink or hardlink target */
	uint32_t uid, gid;
	const char *xname, *xval;
	size_t xlen;
	const void *big; /* file content when not a string */
	size_t big_len;
};

static int make_tar(const char *path, int filter, const struct tent *v, size_t n)
{
	/* libarchive converts UTF-8 names through the locale: "C" would lose them */
	locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	locale_t old = utf8 ? uselocale(utf8) : (locale_t)0;
	struct archive *a = archive_write_new();
	int r = 0;

	archive_write_set_format_pax(a);
	if (filter == F_GZIP)
		archive_write_add_filter_gzip(a);
	else if (filter == F_ZSTD)
		archive_write_add_filter_zstd(a);
	else if (filter == F_XZ)
		archive_write_add_filter_xz(a);
	if (archive_write_open_filename(a, path) != ARCHIVE_OK)
		r = -1;
	for (size_t i = 0; i < n && r == 0; i++) {
		const struct tent *t = &v[i];
		struct archive_entry *e = archive_entry_new();
		const void *data = t->big ? t->big : t->data;
		size_t len = t->big ? t->big_len : (t->data ? strlen(t->data) : 0);

		archive_entry_set_pathname_utf8(e, t->path);
		archive_entry_set_uid(e, t->uid);
		archive_entry_set_gid(e, t->gid);
		archive_entry_set_mtime(e, 1700000000, 123456789);
		switch (t->type) {
		case 'f':
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_size(e, (la_int64_t)len);
			break;
		case 'd':
			archive_entry_set_filetype(e, AE_IFDIR);
			break;
		case 'l':
			archive_entry_set_filetype(e, AE_IFLNK);
			archive_entry_set_symlink_utf8(e, t->data);
			break;
		case 'h':
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_hardlink_utf8(e, t->data);
			break;
		case 'c':
			archive_entry_set_filetype(e, AE_IFCHR);
			archive_entry_set_rdevmajor(e, 1);
			archive_entry_set_rdevminor(e, 5);
			break;
		case 'p':
			archive_entry_set_filetype(e, AE_IFIFO);
			break;
		}
		archive_entry_set_perm(e, t->mode ? t->mode : (t->type == 'd' ? 0755 : 0644));
		if (t->xname)
			archive_entry_xattr_add_entry(e, t->xname, t->xval,
						      t->xlen ? t->xlen : strlen(t->xval));
		if (archive_write_header(a, e) != ARCHIVE_OK) {
			printf("# make_tar: %s: %s\n", t->path, archive_error_string(a));
			r = -1;
		}
		if (r == 0 && t->type == 'f' && len > 0 &&
		    archive_write_data(a, data, len) != (la_ssize_t)len) {
			printf("# make_tar: %s: %s\n", t->path, archive_error_string(a));
			r = -1;
		}
		archive_entry_free(e);
	}
	if (r == 0 && archive_write_close(a) != ARCHIVE_OK) {
		printf("# make_tar: %s\n", archive_error_string(a));
		r = -1;
	}
	archive_write_free(a);
	if (utf8) {
		uselocale(old);
		freelocale(utf8);
	}
	return r;
}

/* Apply each tar in order onto a fresh image; returns the first error. */
static int apply_tars(const char *img, uint64_t size, const char *const *tars, size_t n,
		      struct cove_error *err)
{
	struct ext4_writer *w = writer(img, size, err);
	int r = w ? 0 : -1;

	for (size_t i = 0; i < n && r == 0; i++) {
		int fd = open(tars[i], O_RDONLY | O_CLOEXEC);

		r = ext4_writer_add_tar(w, fd, err);
		close(fd);
	}
	if (r == 0)
		r = ext4_writer_finish(w, err);
	ext4_writer_free(w);
	return r;
}

/* The tars applied to a fresh 32 MiB image, which e2fsck must accept; the image opened, or NULL
 * (the temp dir then gone: the test can only return). */
static ext2_filsys apply_checked(const char *const *tars, size_t n)
{
	struct cove_error err = {};
	ext2_filsys fs;

	CHECK_EQ_INT(apply_tars(tp("img"), 32 * MIB, tars, n, &err), 0);
	if (err.code)
		printf("# %s\n", err.msg);
	CHECK_EQ_INT(fsck(tp("img")), 0);
	fs = img_open(tp("img"));
	CHECK(fs != NULL);
	if (!fs)
		tmp_done();
	return fs;
}

/* One tar of entries applied to a fresh image: the return value and err of the apply. */
static int apply_entries(const struct tent *v, size_t n, struct cove_error *err)
{
	const char *tars[] = {tp("one.tar")};

	if (make_tar(tars[0], F_NONE, v, n) < 0)
		return -100;
	memset(err, 0, sizeof(*err));
	return apply_tars(tp("one.img"), 16 * MIB, tars, 1, err);
}

/* ---- tests ----------------------------------------------------------------------------- */

static const uint8_t cap_v2[20] = {0x01, 0x00, 0x00, 0x02, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00,
				   0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};

static char utf8_name[201];   /* 100 x "é": 200 bytes */
static char slow_target[100]; /* too long for a fast symlink */

static void utf8_name_init(void)
{
	for (int i = 0; i < 100; i++) {
		utf8_name[2 * i] = (char)0xc3;
		utf8_name[2 * i + 1] = (char)0xa9;
	}
	utf8_name[200] = '\0';
	memset(slow_target, 'x', sizeof(slow_target) - 1);
	memcpy(slow_target, "/very/long/", 11);
}

TEST(dir_tree_copied_exactly)
{
	static uint8_t big[3 * MIB / 2], sparse_chunk[8192];
	struct timespec ts[2] = {{1600000000, 987654321}, {1500000000, 123456789}};
	bool xattrs = true, root = geteuid() == 0, owners = root;
	char utf8_rel[512], capval[64];
	ssize_t caplen = 0;
	struct cove_error err = {};
	struct ext4_writer *w;
	ext2_filsys fs;
	int fd;

	tmp_new();
	mkdir(tp("src"), 0755);
	mkdir(tp("src/a"), 0755);
	mkdir(tp("src/a/b"), 0755);
	mkdir(tp("src/a/b/c"), 0755);
	mkdir(tp("src/sticky"), 01777);
	chmod(tp("src/sticky"), 01777);
	put_file("src/hello", "hello\n", 6, 0644);
	fill_pattern(big, sizeof(big), 1);
	put_file("src/a/b/c/big", big, sizeof(big), 0600);
	/* six data chunks in 10 MiB: holes between them, more extents than fit in the inode */
	fill_pattern(sparse_chunk, sizeof(sparse_chunk), 2);
	fd = open(tp("src/sparse"), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	for (int i = 0; i < 6; i++)
		CHECK(pwrite(fd, sparse_chunk, sizeof(sparse_chunk),
			     (off_t)i * 3 * MIB / 2 + 100) == (ssize_t)sizeof(sparse_chunk));
	CHECK(ftruncate(fd, 10 * MIB) == 0);
	close(fd);
	put_file("src/setuid", "#!/bin/sh\n", 10, 04755);
	put_file("src/owned", "x", 1, 0640);
	if (owners)
		CHECK(lchown(tp("src/owned"), 1000, 1000) == 0);
	put_file("src/bigids", "y", 1, 0644);
	if (owners)
		CHECK(lchown(tp("src/bigids"), 4000000000u, 4000000001u) == 0);
	put_file("src/h1", "linked", 6, 0644);
	CHECK(link(tp("src/h1"), tp("src/a/h2")) == 0);
	CHECK(symlink("../hello", tp("src/a/fast")) == 0);
	CHECK(symlink(slow_target, tp("src/slow")) == 0);
	CHECK(mkfifo(tp("src/fifo"), 0620) == 0);
	CHECK(chmod(tp("src/fifo"), 0620) == 0);
	if (root)
		root = mknod(tp("src/null"), S_IFCHR | 0666, makedev(1, 3)) == 0 &&
		       chmod(tp("src/null"), 0666) == 0;
	snprintf(utf8_rel, sizeof(utf8_rel), "src/a/%s", utf8_name);
	put_file(utf8_rel, "utf8", 4, 0644);
	if (setxattr(tp("src/hello"), "user.greeting", "bonjour", 7, 0) < 0)
		xattrs = false;
	if (xattrs && root &&
	    setxattr(tp("src/setuid"), "security.capability", cap_v2, sizeof(cap_v2), 0) == 0)
		caplen = getxattr(tp("src/setuid"), "security.capability", capval, sizeof(capval));
	CHECK(utimensat(AT_FDCWD, tp("src/hello"), ts, 0) == 0);
	CHECK(utimensat(AT_FDCWD, tp("src/a/fast"), ts, AT_SYMLINK_NOFOLLOW) == 0);

	w = writer(tp("img"), 64 * MIB, &err);
	CHECK(w != NULL);
	if (!w) {
		printf("# %s\n", err.msg);
		tmp_done();
		return;
	}
	CHECK_EQ_INT(ext4_writer_add_dir(w, tp("src"), &err), 0);
	CHECK(access(tp("img"), F_OK) < 0); /* nothing at the final path before finish */
	CHECK_EQ_INT(ext4_writer_finish(w, &err), 0);
	if (err.code)
		printf("# %s\n", err.msg);
	ext4_writer_free(w);
	CHECK_EQ_INT(fsck(tp("img")), 0);

	fs = img_open(tp("img"));
	CHECK(fs != NULL);
	if (!fs) {
		tmp_done();
		return;
	}
	{
		struct ext2_inode_large r = img_inode(fs, EXT2_ROOT_INO);
		struct ext2_inode_large lf = img_inode(fs, img_ino(fs, "/lost+found"));

		CHECK_EQ_INT(r.i_mode, LINUX_S_IFDIR | 0755);
		CHECK_EQ_INT(img_uid(&r), 0);
		CHECK_EQ_INT(lf.i_mode, LINUX_S_IFDIR | 0700);
		CHECK_EQ_STR((char *)fs->super->s_volume_name, "test");
	}
	{
		struct ext2_inode_large in = img_inode(fs, img_ino(fs, "/hello"));

		CHECK(img_content_is(fs, "/hello", "hello\n", 6));
		CHECK_EQ_INT(in.i_mode, LINUX_S_IFREG | 0644);
		CHECK_EQ_INT(in.i_mtime, 1500000000);
		CHECK_EQ_INT(in.i_mtime_extra >> 2, 123456789);
		CHECK_EQ_INT(in.i_atime, 1600000000);
		if (xattrs)
			CHECK(img_xattr_is(fs, "/hello", "user.greeting", "bonjour", 7));
	}
	CHECK(img_content_is(fs, "/a/b/c/big", big, sizeof(big)));
	CHECK_EQ_INT(img_inode(fs, img_ino(fs, "/a/b/c/big")).i_mode, LINUX_S_IFREG | 0600);
	{
		static uint8_t expect[10 * MIB];
		ext2_ino_t ino = img_ino(fs, "/sparse");
		struct ext2_inode_large in = img_inode(fs, ino);

		memset(expect, 0, sizeof(expect));
		for (int i = 0; i < 6; i++)
			memcpy(expect + (size_t)i * 3 * MIB / 2 + 100, sparse_chunk,
			       sizeof(sparse_chunk));
		CHECK(img_content_is(fs, "/sparse", expect, sizeof(expect)));
		/* holes kept: 6 x 3 blocks of data plus at most a few extent tree blocks */
		CHECK(ext2fs_get_stat_i_blocks(fs, (struct ext2_inode *)&in) * 512 < 32 * 4096);
	}
	{
		struct ext2_inode_large su = img_inode(fs, img_ino(fs, "/setuid"));
		struct ext2_inode_large ow = img_inode(fs, img_ino(fs, "/owned"));
		struct ext2_inode_large bi = img_inode(fs, img_ino(fs, "/bigids"));
		struct ext2_inode_large st = img_inode(fs, img_ino(fs, "/sticky"));

		CHECK_EQ_INT(su.i_mode, LINUX_S_IFREG | 04755);
		CHECK_EQ_INT(st.i_mode, LINUX_S_IFDIR | 01777);
		CHECK_EQ_INT(img_uid(&ow), owners ? 1000 : getuid());
		CHECK_EQ_INT(img_gid(&ow), owners ? 1000 : getgid());
		CHECK_EQ_INT(ow.i_mode, LINUX_S_IFREG | 0640);
		if (owners) {
			CHECK_EQ_INT(img_uid(&bi), 4000000000u);
			CHECK_EQ_INT(img_gid(&bi), 4000000001u);
		}
		if (caplen > 0)
			CHECK(img_xattr_is(fs, "/setuid", "security.capability", capval,
					   (size_t)caplen));
	}
	{
		ext2_ino_t h1 = img_ino(fs, "/h1"), h2 = img_ino(fs, "/a/h2");

		CHECK(h1 != 0);
		CHECK_EQ_INT(h1, h2);
		CHECK_EQ_INT(img_inode(fs, h1).i_links_count, 2);
		CHECK(img_content_is(fs, "/a/h2", "linked", 6));
	}
	{
		ext2_ino_t fast = img_ino(fs, "/a/fast"), slow = img_ino(fs, "/slow");
		struct ext2_inode_large f = img_inode(fs, fast);

		CHECK_EQ_STR(symlink_target(fs, fast), "../hello");
		CHECK_EQ_INT(f.i_mode & LINUX_S_IFMT, LINUX_S_IFLNK);
		CHECK_EQ_INT(f.i_mtime, 1500000000);
		CHECK_EQ_STR(symlink_target(fs, slow), slow_target);
	}
	CHECK_EQ_INT(img_inode(fs, img_ino(fs, "/fifo")).i_mode, LINUX_S_IFIFO | 0620);
	if (root) {
		struct ext2_inode_large n = img_inode(fs, img_ino(fs, "/null"));

		CHECK_EQ_INT(n.i_mode, LINUX_S_IFCHR | 0666);
		CHECK_EQ_INT(n.i_block[0], 1 * 256 + 3);
	}
	snprintf(utf8_rel, sizeof(utf8_rel), "/a/%s", utf8_name);
	CHECK(img_content_is(fs, utf8_rel, "utf8", 4));
	CHECK_EQ_INT(img_inode(fs, img_ino(fs, "/a")).i_links_count, 3); /* ., .., b */
	ext2fs_close_free(&fs);
	tmp_done();
}

TEST(estimate_and_autosize)
{
	static uint8_t big[2 * MIB];
	struct ext4_writer_opts o = {};
	struct cove_error err = {};
	uint64_t bytes = 0, inodes = 0;

	tmp_new();
	mkdir(tp("src"), 0755);
	mkdir(tp("src/d"), 0755);
	put_file("src/d/big", big, sizeof(big), 0644);
	put_file("src/small", "s", 1, 0644);
	CHECK(link(tp("src/small"), tp("src/d/small2")) == 0);
	CHECK_EQ_INT(ext4_estimate_dir(tp("src"), &bytes, &inodes, &err), 0);
	CHECK(bytes >= sizeof(big) + 4096 + 2 * 4096);
	CHECK_EQ_INT(inodes, 4); /* /, d, big, small (+ its second name) */
	ext4_writer_opts_autosize(&o, bytes, inodes);
	CHECK(o.size_bytes >= bytes + (32ull << 20));
	CHECK(o.size_bytes % MIB == 0);
	CHECK(o.inodes >= 1024);
	CHECK(ext4_estimate_dir(tp("missing"), &bytes, &inodes, &err) < 0);
	CHECK(strstr(err.msg, "missing") != NULL);
	tmp_done();
}

TEST(tar_layers_apply_in_order)
{
	static char long_name[300];
	static const struct tent l1[] = {
	    {.path = "./", .type = 'd', .mode = 0755},
	    {.path = "./etc/", .type = 'd', .mode = 0755},
	    {.path = "./etc/passwd", .type = 'f', .mode = 0644, .data = "root:x:0:0\n"},
	    {.path = "./etc/gone", .type = 'f', .mode = 0644, .data = "bye"},
	    {.path = "./opq/", .type = 'd', .mode = 0755},
	    {.path = "./opq/old1", .type = 'f', .mode = 0644, .data = "o1"},
	    {.path = "./opq/sub/", .type = 'd', .mode = 0700},
	    {.path = "./opq/sub/old2", .type = 'f', .mode = 0644, .data = "o2"},
	    {.path = "./f2d", .type = 'f', .mode = 0644, .data = "i was a file"},
	    {.path = "./d2f/", .type = 'd', .mode = 0755},
	    {.path = "./d2f/child/", .type = 'd', .mode = 0755},
	    {.path = "./d2f/child/deep", .type = 'f', .mode = 0644, .data = "deep"},
	    {.path = "./bin/tool",
	     .type = 'f',
	     .mode = 04755,
	     .data = "#!tool",
	     .uid = 0,
	     .gid = 0},
	    {.path = "./home/user/", .type = 'd', .mode = 0750, .uid = 1000, .gid = 1000},
	    {.path = "./home/user/.profile",
	     .type = 'f',
	     .mode = 0600,
	     .data = "PS1=x",
	     .uid = 1000,
	     .gid = 1000,
	     .xname = "user.mime",
	     .xval = "text/plain"},
	    {.path = "./bin/ping",
	     .type = 'f',
	     .mode = 0755,
	     .data = "ping",
	     .xname = "security.capability",
	     .xval = (const char *)cap_v2,
	     .xlen = sizeof(cap_v2)},
	    {.path = "./d2f/pinglink", .type = 'h', .data = "./bin/ping"},
	    {.path = "./usr/lib/deep/implicit/file",
	     .type = 'f',
	     .mode = 0644,
	     .data = "parents made"},
	    {.path = "./dev/null", .type = 'c', .mode = 0666},
	    {.path = "./run/fifo", .type = 'p', .mode = 0600},
	    {.path = "./sym", .type = 'l', .mode = 0, .data = "etc/passwd"},
	    {.path = "./keep/", .type = 'd', .mode = 0755},
	    {.path = "./keep/a", .type = 'f', .mode = 0644, .data = "a"},
	};
	struct tent l2[] = {
	    {.path = "etc/.wh.gone", .type = 'f', .mode = 0644, .data = ""},
	    {.path = "opq/", .type = 'd', .mode = 0711},
	    {.path = "opq/.wh..wh..opq", .type = 'f', .mode = 0644, .data = ""},
	    {.path = "opq/new", .type = 'f', .mode = 0644, .data = "fresh"},
	    {.path = "f2d/", .type = 'd', .mode = 0755},
	    {.path = "f2d/inner", .type = 'f', .mode = 0644, .data = "inside"},
	    {.path = "d2f", .type = 'f', .mode = 0644, .data = "now a file"},
	    {.path = "bin/tool2", .type = 'h', .mode = 0, .data = "bin/tool"},
	    {.path = "etc/passwd", .type = 'f', .mode = 0644, .data = "root:x:0:0:new\n"},
	    {.path = "keep/", .type = 'd', .mode = 0700, .uid = 5, .gid = 6},
	    {.path = "/", .type = 'd', .mode = 0755},
	    {.path = "sym", .type = 'f', .mode = 0644, .data = "symlink replaced"},
	    {.path = NULL, .type = 'f', .mode = 0644, .data = "long"},
	    {.path = utf8_name, .type = 'f', .mode = 0644, .data = "utf8 in pax"},
	};
	const char *tars[2];
	ext2_filsys fs;

	tmp_new();
	tars[0] = tp("l1.tar.gz");
	tars[1] = tp("l2.tar");
	memset(long_name, 'n', 255);
	long_name[255] = '\0';
	l2[12].path = long_name;
	CHECK_EQ_INT(make_tar(tars[0], F_GZIP, l1, ARRAY_SIZE(l1)), 0);
	CHECK_EQ_INT(make_tar(tars[1], F_NONE, l2, ARRAY_SIZE(l2)), 0);
	fs = apply_checked(tars, 2);
	if (!fs)
		return;
	CHECK_EQ_INT(img_ino(fs, "/etc/gone"), 0);
	CHECK(img_content_is(fs, "/etc/passwd", "root:x:0:0:new\n", 15));
	CHECK_EQ_INT(img_ino(fs, "/opq/old1"), 0);
	CHECK_EQ_INT(img_ino(fs, "/opq/sub"), 0);
	CHECK(img_content_is(fs, "/opq/new", "fresh", 5));
	CHECK_EQ_INT(img_inode(fs, img_ino(fs, "/opq")).i_mode, LINUX_S_IFDIR | 0711);
	CHECK_EQ_INT(img_inode(fs, img_ino(fs, "/opq")).i_links_count, 2);
	CHECK_EQ_INT(img_inode(fs, img_ino(fs, "/f2d")).i_mode & LINUX_S_IFMT, LINUX_S_IFDIR);
	CHECK(img_content_is(fs, "/f2d/inner", "inside", 6));
	CHECK(img_content_is(fs, "/d2f", "now a file", 10));
	CHECK_EQ_INT(img_ino(fs, "/d2f/child/deep"), 0);
	{
		ext2_ino_t t1 = img_ino(fs, "/bin/tool"), t2 = img_ino(fs, "/bin/tool2");
		struct ext2_inode_large in = img_inode(fs, t1);

		CHECK(t1 != 0);
		CHECK_EQ_INT(t1, t2);
		CHECK_EQ_INT(in.i_links_count, 2);
		CHECK_EQ_INT(in.i_mode, LINUX_S_IFREG | 04755);
		CHECK_EQ_INT(in.i_mtime, 1700000000);
		CHECK_EQ_INT(in.i_mtime_extra >> 2, 123456789);
	}
	{
		struct ext2_inode_large h = img_inode(fs, img_ino(fs, "/home/user"));
		struct ext2_inode_large p = img_inode(fs, img_ino(fs, "/home/user/.profile"));
		struct ext2_inode_large k = img_inode(fs, img_ino(fs, "/keep"));

		CHECK_EQ_INT(img_uid(&h), 1000);
		CHECK_EQ_INT(img_gid(&p), 1000);
		CHECK_EQ_INT(p.i_mode, LINUX_S_IFREG | 0600);
		CHECK(img_xattr_is(fs, "/home/user/.profile", "user.mime", "text/plain", 10));
		CHECK(img_xattr_is(fs, "/bin/ping", "security.capability", cap_v2, sizeof(cap_v2)));
		/* its second name went with d2f */
		CHECK_EQ_INT(img_inode(fs, img_ino(fs, "/bin/ping")).i_links_count, 1);
		/* a dir over a dir: metadata from the new layer, content kept */
		CHECK_EQ_INT(k.i_mode, LINUX_S_IFDIR | 0700);
		CHECK_EQ_INT(img_uid(&k), 5);
		CHECK_EQ_INT(img_gid(&k), 6);
		CHECK(img_content_is(fs, "/keep/a", "a", 1));
	}
	CHECK(img_content_is(fs, "/usr/lib/deep/implicit/file", "parents made", 12));
	CHECK_EQ_INT(img_inode(fs, img_ino(fs, "/usr/lib/deep")).i_mode, LINUX_S_IFDIR | 0755);
	{
		struct ext2_inode_large n = img_inode(fs, img_ino(fs, "/dev/null"));

		CHECK_EQ_INT(n.i_mode, LINUX_S_IFCHR | 0666);
		CHECK_EQ_INT(n.i_block[0], 1 * 256 + 5);
	}
	CHECK_EQ_INT(img_inode(fs, img_ino(fs, "/run/fifo")).i_mode, LINUX_S_IFIFO | 0600);
	CHECK(img_content_is(fs, "/sym", "symlink replaced", 16));
	{
		char p[320];

		snprintf(p, sizeof(p), "/%s", long_name);
		CHECK(img_content_is(fs, p, "long", 4));
		snprintf(p, sizeof(p), "/%s", utf8_name);
		CHECK(img_content_is(fs, p, "utf8 in pax", 11));
	}
	ext2fs_close_free(&fs);
	tmp_done();
}

/* Names going to two directories by turns, each directory many blocks long, then a layer that
 * adds names to one directory and removes it: every name is found, and e2fsck agrees. */
TEST(tar_directories_by_turns)
{
	enum { N = 400 };
	static struct tent l1[2 * N + 2], l2[N / 2 + 2];
	static char names[2 * N + N / 2][48];
	const char *tars[2];
	ext2_filsys fs;
	size_t n1 = 0, n2 = 0, k = 0;

	l1[n1++] = (struct tent){.path = "a/", .type = 'd', .mode = 0755};
	l1[n1++] = (struct tent){.path = "b/", .type = 'd', .mode = 0755};
	for (int i = 0; i < N; i++)
		for (int d = 0; d < 2; d++) {
			snprintf(names[k], sizeof(names[k]), "%c/a-name-long-enough-to-fill-%04d", 'a' + d,
				 i);
			l1[n1++] = (struct tent){.path = names[k++], .type = 'f', .mode = 0644,
						 .data = "x"};
		}
	for (int i = 0; i < N / 2; i++) {
		if (i == N / 4) /* b's last block is the one kept, with names not yet written */
			l2[n2++] = (struct tent){.path = ".wh.b", .type = 'f', .mode = 0644, .data = ""};
		snprintf(names[k], sizeof(names[k]), "%c/more-%04d", i < N / 4 ? 'b' : 'a', i);
		l2[n2++] = (struct tent){.path = names[k++], .type = 'f', .mode = 0644, .data = "y"};
	}
	tmp_new();
	tars[0] = tp("l1.tar");
	tars[1] = tp("l2.tar");
	CHECK_EQ_INT(make_tar(tars[0], F_NONE, l1, n1), 0);
	CHECK_EQ_INT(make_tar(tars[1], F_NONE, l2, n2), 0);
	fs = apply_checked(tars, 2);
	if (!fs)
		return;
	for (size_t i = 0; i < k; i++) {
		char p[64];

		snprintf(p, sizeof(p), "/%.47s", names[i]);
		if (names[i][0] == 'b')
			CHECK_EQ_INT(img_ino(fs, p), 0);
		else
			CHECK(img_content_is(fs, p, names[i][2] == 'm' ? "y" : "x", 1));
	}
	CHECK_EQ_INT(img_ino(fs, "/b"), 0);
	ext2fs_close_free(&fs);
	tmp_done();
}

TEST(tar_escapes_rejected)
{
	static const struct {
		struct tent v[3];
		size_t n;
		const char *needle;
	} cases[] = {
	    {{{.path = "../x", .type = 'f', .mode = 0644, .data = "x"}},
	     1,
	     "'../x' escapes the root filesystem"},
	    {{{.path = "a/../../b", .type = 'f', .mode = 0644, .data = "x"}},
	     1,
	     "'a/../../b' escapes"},
	    {{{.path = "link", .type = 'l', .mode = 0, .data = "/etc"},
	      {.path = "link/x", .type = 'f', .mode = 0644, .data = "x"}},
	     2,
	     "'link/x' escapes"},
	    {{{.path = "link", .type = 'l', .mode = 0, .data = "."},
	      {.path = "link/.wh.x", .type = 'f', .mode = 0644, .data = ""}},
	     2,
	     "'link/.wh.x'"},
	    {{{.path = "h", .type = 'h', .mode = 0, .data = "../../etc/passwd"}}, 1, "'h' escapes"},
	    {{{.path = "/etc/x", .type = 'f', .mode = 0644, .data = "x"}},
	     1,
	     "'/etc/x' escapes the root filesystem"},
	    {{{.path = "h", .type = 'h', .mode = 0, .data = "/etc/passwd"}}, 1, "'h' escapes"},
	    {{{.path = "d/f", .type = 'f', .mode = 0644, .data = "x"},
	      {.path = "link", .type = 'l', .mode = 0, .data = "d"},
	      {.path = "h", .type = 'h', .mode = 0, .data = "link/f"}},
	     3,
	     "'h' escapes the root filesystem through symlink 'link'"},
	    {{{.path = "h", .type = 'h', .mode = 0, .data = "nothere"}},
	     1,
	     "'h' is a hardlink to 'nothere'"},
	    {{{.path = "f", .type = 'f', .mode = 0644, .data = "x"},
	      {.path = "f/y", .type = 'f', .mode = 0644, .data = "y"}},
	     2,
	     "'f' is not a directory"},
	    {{{.path = "", .type = 'f', .mode = 0644, .data = "x"}}, 1, "replace the root"},
	};
	static char long_name[300];
	struct tent too_long = {.path = long_name, .type = 'f', .mode = 0644, .data = "x"};
	struct cove_error err;

	tmp_new();
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int r = apply_entries(cases[i].v, cases[i].n, &err);

		CHECK(r < 0 && r != -100);
		if (!strstr(err.msg, cases[i].needle)) {
			printf("# case %zu: '%s' lacks '%s'\n", i, err.msg, cases[i].needle);
			CHECK(false);
		}
		CHECK(access(tp("one.img"), F_OK) < 0);
	}
	memset(long_name, 'n', 256);
	CHECK(apply_entries(&too_long, 1, &err) < 0);
	CHECK(strstr(err.msg, "too long") != NULL);
	tmp_done();
}

TEST(tar_corrupt_or_truncated)
{
	static uint8_t big[512 * 1024];
	const struct tent v[] = {
	    {.path = "a", .type = 'f', .mode = 0644, .big = big, .big_len = sizeof(big)},
	    {.path = "b", .type = 'f', .mode = 0644, .data = "b"}};
	struct cove_error err = {};
	const char *tars[1];
	struct stat st;
	int r;

	tmp_new();
	tars[0] = tp("t.tar.gz");
	fill_pattern(big, sizeof(big), 3);
	CHECK_EQ_INT(make_tar(tars[0], F_GZIP, v, ARRAY_SIZE(v)), 0);
	CHECK(stat(tars[0], &st) == 0);
	CHECK(truncate(tars[0], st.st_size / 2) == 0);
	r = apply_tars(tp("img"), 16 * MIB, tars, 1, &err);
	CHECK(r < 0);
	CHECK(strstr(err.msg, "unable to read layer") != NULL);
	CHECK(access(tp("img"), F_OK) < 0);
	/* garbage is not a tar */
	put_file("junk", "this is not a tar archive at all, not even close......", 54, 0644);
	tars[0] = tp("junk");
	memset(&err, 0, sizeof(err));
	CHECK(apply_tars(tp("img"), 16 * MIB, tars, 1, &err) < 0);
	CHECK(strstr(err.msg, "unable to read layer") != NULL);
	tmp_done();
}

TEST(tar_compressions)
{
	static const struct tent v[] = {
	    {.path = "d/", .type = 'd', .mode = 0755},
	    {.path = "d/f", .type = 'f', .mode = 0644, .data = "compressed"}};
	static const int filters[] = {F_NONE, F_GZIP, F_ZSTD, F_XZ};
	struct cove_error err = {};

	tmp_new();
	for (size_t i = 0; i < ARRAY_SIZE(filters); i++) {
		const char *tars[] = {tp("c.tar")};
		ext2_filsys fs;

		CHECK_EQ_INT(make_tar(tars[0], filters[i], v, ARRAY_SIZE(v)), 0);
		CHECK_EQ_INT(apply_tars(tp("c.img"), 8 * MIB, tars, 1, &err), 0);
		fs = img_open(tp("c.img"));
		CHECK(fs && img_content_is(fs, "/d/f", "compressed", 10));
		if (fs)
			ext2fs_close_free(&fs);
		unlink(tp("c.img"));
	}
	tmp_done();
}

TEST(image_full_is_reported)
{
	static uint8_t big[3 * MIB];
	const struct tent one[] = {
	    {.path = "usr/big", .type = 'f', .mode = 0644, .big = big, .big_len = 12 * MIB}};
	const struct tent many[] = {
	    {.path = "f1", .type = 'f', .mode = 0644, .big = big, .big_len = sizeof(big)},
	    {.path = "f2", .type = 'f', .mode = 0644, .big = big, .big_len = sizeof(big)},
	    {.path = "f3", .type = 'f', .mode = 0644, .big = big, .big_len = sizeof(big)},
	};
	struct cove_error err = {};
	const char *tars[1];
	static uint8_t *huge;
	int r;

	tmp_new();
	tars[0] = tp("full.tar");
	huge = calloc(1, 12 * MIB);
	CHECK(huge != NULL);
	if (!huge) {
		tmp_done();
		return;
	}
	{
		struct tent t = one[0];

		t.big = huge;
		CHECK_EQ_INT(make_tar(tars[0], F_GZIP, &t, 1), 0);
	}
	r = apply_tars(tp("img"), 8 * MIB, tars, 1, &err);
	CHECK_EQ_INT(r, -ENOSPC);
	CHECK(strstr(err.msg, "'usr/big'") != NULL);
	CHECK(strstr(err.msg, "full") != NULL);
	CHECK(access(tp("img"), F_OK) < 0);

	/* each file fits alone, together they do not: the allocator runs out mid-file */
	fill_pattern(big, sizeof(big), 4);
	CHECK_EQ_INT(make_tar(tars[0], F_NONE, many, ARRAY_SIZE(many)), 0);
	memset(&err, 0, sizeof(err));
	r = apply_tars(tp("img"), 8 * MIB, tars, 1, &err);
	CHECK_EQ_INT(r, -ENOSPC);
	CHECK(strstr(err.msg, "full") != NULL);
	CHECK(strstr(err.msg, "'f") != NULL);
	free(huge);
	tmp_done();
}

TEST(writer_lifecycle)
{
	struct ext4_writer_opts o = {.size_bytes = 8 * MIB};
	struct cove_error err = {};
	struct ext4_writer *w = NULL;
	ext2_filsys fs;

	tmp_new();
	/* freed without finish: no image, no temp file left */
	CHECK_EQ_INT(ext4_writer_new(tp("img"), &o, &w, &err), 0);
	ext4_writer_free(w);
	ext4_writer_free(NULL);
	CHECK_EQ_INT(tmp_entries(), 0);

	/* bad options */
	o.size_bytes = 1024;
	CHECK(ext4_writer_new(tp("img"), &o, &w, &err) == -EINVAL);
	CHECK(strstr(err.msg, "size") != NULL);
	o = (struct ext4_writer_opts){.size_bytes = 8 * MIB, .label = "seventeen-bytes!!"};
	memset(&err, 0, sizeof(err));
	CHECK(ext4_writer_new(tp("img"), &o, &w, &err) == -EINVAL);

	/* an empty image with a journal, replacing an existing file atomically */
	put_file("img", "old", 3, 0644);
	o = (struct ext4_writer_opts){.size_bytes = 16 * MIB, .inodes = 4096, .journal = true};
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(ext4_writer_new(tp("img"), &o, &w, &err), 0);
	CHECK_EQ_INT(ext4_writer_finish(w, &err), 0);
	CHECK(ext4_writer_add_dir(w, tmp_root, &err) < 0); /* finished: refused */
	ext4_writer_free(w);
	CHECK_EQ_INT(fsck(tp("img")), 0);
	fs = img_open(tp("img"));
	CHECK(fs != NULL);
	if (fs) {
		CHECK(ext2fs_has_feature_journal(fs->super));
		CHECK(ext2fs_has_feature_metadata_csum(fs->super));
		CHECK(fs->super->s_inodes_count >= 4096);
		CHECK(img_ino(fs, "/lost+found") != 0);
		ext2fs_close_free(&fs);
	}
	tmp_done();
}

/* Two writers of one image (two pulls of one image at once): with keep_existing the first to
 * finish stays, since containers may already use it as their backing file; none is left over. */
TEST(writers_of_one_image)
{
	struct ext4_writer_opts o = {.size_bytes = 8 * MIB, .label = "one", .keep_existing = true};
	struct cove_error err = {};
	struct ext4_writer *a = NULL, *b = NULL;
	struct stat first, now;
	ext2_filsys fs;

	tmp_new();
	CHECK_EQ_INT(ext4_writer_new(tp("img"), &o, &a, &err), 0);
	o.label = "two";
	CHECK_EQ_INT(ext4_writer_new(tp("img"), &o, &b, &err), 0);
	CHECK_EQ_INT(ext4_writer_finish(a, &err), 0);
	CHECK_EQ_INT(stat(tp("img"), &first), 0);
	CHECK_EQ_INT(ext4_writer_finish(b, &err), 0);
	ext4_writer_free(a);
	ext4_writer_free(b);
	CHECK_EQ_INT(stat(tp("img"), &now), 0);
	CHECK(now.st_ino == first.st_ino);
	fs = img_open(tp("img"));
	CHECK(fs != NULL);
	if (fs) {
		CHECK(strcmp((const char *)fs->super->s_volume_name, "one") == 0);
		ext2fs_close_free(&fs);
	}
	CHECK_EQ_INT(tmp_entries(), 1);

	/* without it, the last to finish replaces the image */
	o = (struct ext4_writer_opts){.size_bytes = 8 * MIB, .label = "three"};
	CHECK_EQ_INT(ext4_writer_new(tp("img"), &o, &a, &err), 0);
	CHECK_EQ_INT(ext4_writer_finish(a, &err), 0);
	ext4_writer_free(a);
	CHECK_EQ_INT(stat(tp("img"), &now), 0);
	CHECK(now.st_ino != first.st_ino);
	tmp_done();
}

TEST(layers_onto_dir_tree)
{
	static const struct tent l[] = {
	    {.path = "etc/.wh.motd", .type = 'f', .mode = 0644, .data = ""},
	    {.path = ".wh.lost+found", .type = 'f', .mode = 0644, .data = ""},
	    {.path = "etc", .type = 'f', .mode = 0644, .data = "etc became a file"},
	};
	const char *tars[1];
	struct cove_error err = {};
	struct ext4_writer *w;
	ext2_filsys fs;
	int fd;

	tmp_new();
	tars[0] = tp("l.tar");
	mkdir(tp("src"), 0755);
	mkdir(tp("src/etc"), 0755);
	mkdir(tp("src/etc/sub"), 0755);
	put_file("src/etc/motd", "hi", 2, 0644);
	put_file("src/etc/sub/x", "x", 1, 0644);
	CHECK(link(tp("src/etc/sub/x"), tp("src/x2")) == 0);
	CHECK_EQ_INT(make_tar(tars[0], F_NONE, l, ARRAY_SIZE(l)), 0);
	w = writer(tp("img"), 16 * MIB, &err);
	CHECK(w != NULL);
	if (!w) {
		tmp_done();
		return;
	}
	CHECK_EQ_INT(ext4_writer_add_dir(w, tp("src"), &err), 0);
	CHECK_EQ_INT(ext4_writer_add_dir(w, tp("src"), &err), 0); /* again: replaces in place */
	fd = open(tars[0], O_RDONLY | O_CLOEXEC);
	CHECK_EQ_INT(ext4_writer_add_tar(w, fd, &err), 0);
	close(fd);
	CHECK_EQ_INT(ext4_writer_finish(w, &err), 0);
	if (err.code)
		printf("# %s\n", err.msg);
	ext4_writer_free(w);
	CHECK_EQ_INT(fsck(tp("img")), 0);
	fs = img_open(tp("img"));
	CHECK(fs != NULL);
	if (fs) {
		CHECK(img_content_is(fs, "/etc", "etc became a file", 17));
		CHECK_EQ_INT(img_inode(fs, img_ino(fs, "/x2")).i_links_count, 1);
		CHECK(img_ino(fs, "/lost+found") != 0); /* put back at finish */
		ext2fs_close_free(&fs);
	}
	tmp_done();
}

int main(void)
{
	utf8_name_init();
	RUN(dir_tree_copied_exactly);
	RUN(estimate_and_autosize);
	RUN(tar_layers_apply_in_order);
	RUN(tar_directories_by_turns);
	RUN(tar_escapes_rejected);
	RUN(tar_corrupt_or_truncated);
	RUN(tar_compressions);
	RUN(image_full_is_reported);
	RUN(writer_lifecycle);
	RUN(writers_of_one_image);
	RUN(layers_onto_dir_tree);
	return test_done();
}
