/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Bind mounts and volumes in the guest. cove-init mounts each one under /run/cove/vol/N before
 * the container's process is made: a share of the host's over virtio-9p (by its tag), or a block
 * volume, an ext4 disk found by its serial, whose content is its data/ directory (so that the
 * filesystem's lost+found is not in the container's sight). The container's first process opens
 * them before pivot_root and, once inside its root (so that the mount points and any link on
 * the way resolve there, as for a tmpfs), fills an empty volume from what the image has at the
 * path (docker's behaviour) and binds each over its path.
 */
#define _GNU_SOURCE
#include "process.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

/* the new mount API (Linux 5.2), which musl's headers know by number only */
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif

#define VOL_DIR "/run/cove/vol"
#define NINEP_OPTS "trans=virtio,version=9p2000.L,msize=524288,cache=mmap,access=client"

static bool staged;

/* the /dev node of the virtio disk whose serial is serial */
static int disk_of(const char *serial, char *buf, size_t size)
{
	_cleanup_(closedirp) DIR *d = opendir("/sys/block");
	struct dirent *de;

	while (d && (de = readdir(d))) {
		char path[300], *s = NULL;
		bool match;

		if (strncmp(de->d_name, "vd", 2) != 0 ||
		    str_printf(path, sizeof(path), "/sys/block/%s/serial", de->d_name) < 0 ||
		    read_file(path, 256, &s, NULL) < 0)
			continue;
		s[strcspn(s, "\n")] = '\0';
		match = strcmp(s, serial) == 0;
		free(s);
		if (match)
			return str_printf(buf, size, "/dev/%s", de->d_name);
	}
	return -ENOENT;
}

int volumes_stage(const struct proto_start *m, char *msg, size_t size)
{
	if (staged)
		return 0;
	for (uint32_t i = 0; i < m->nmounts; i++) {
		const struct proto_mount *v = &m->mounts[i];
		unsigned long flags = MS_NOSUID | MS_NODEV | (v->readonly ? MS_RDONLY : 0);
		char dir[64], dev[64], data[96];

		str_printf(dir, sizeof(dir), VOL_DIR "/%u", i);
		if (mkdir_p(dir, 0700) < 0)
			return str_printf(msg, size, "cannot create '%s': %s", dir, strerror(errno)),
			       -errno;
		if (v->kind == PROTO_MOUNT_9P) {
			if (mount(v->tag, dir, "9p", flags, NINEP_OPTS) < 0)
				return str_printf(msg, size, "cannot mount the share for %s: %s",
						  v->dst, strerror(errno)),
				       -errno;
			continue;
		}
		if (disk_of(v->tag, dev, sizeof(dev)) < 0)
			return str_printf(msg, size, "the volume's disk for %s is missing", v->dst),
			       -ENODEV;
		/* the host checked it (e2fsck -p) and holds it for this VM alone; no zeroing of
		 * inode tables behind the container's back (the image is sparse) */
		if (mount(dev, dir, "ext4", flags | MS_NOATIME, "noinit_itable") < 0)
			return str_printf(msg, size, "cannot mount the volume for %s: %s", v->dst,
					  strerror(errno)),
			       -errno;
		str_printf(data, sizeof(data), "%s/data", dir);
		if (mkdir(data, 0755) < 0 && errno != EEXIST)
			return str_printf(msg, size, "cannot prepare the volume for %s: %s", v->dst,
					  strerror(errno)),
			       -errno;
	}
	staged = true;
	return 0;
}

void volumes_unstage(void)
{
	if (!staged)
		return;
	for (uint32_t i = PROTO_MAX_MOUNTS; i-- > 0;) {
		char dir[64];

		str_printf(dir, sizeof(dir), VOL_DIR "/%u", i);
		if (umount2(dir, 0) < 0 && errno != EINVAL && errno != ENOENT)
			(void)umount2(dir, MNT_DETACH);
	}
}

void volumes_open(int efd, const struct proto_start *m, int fds[])
{
	for (uint32_t i = 0; i < m->nmounts; i++) {
		const struct proto_mount *v = &m->mounts[i];
		char path[400];

		if (v->kind == PROTO_MOUNT_BLOCK)
			str_printf(path, sizeof(path), VOL_DIR "/%u/data", i);
		else if (v->file[0])
			str_printf(path, sizeof(path), VOL_DIR "/%u/%s", i, v->file);
		else
			str_printf(path, sizeof(path), VOL_DIR "/%u", i);
		/* a copy of the mount, detached: it outlives the old root's unmount, and goes
		 * where the container's root says its path is */
		fds[i] = (int)syscall(SYS_open_tree, AT_FDCWD, path,
				      OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
		if (fds[i] < 0)
			child_fail(efd, PROTO_ERR_INTERNAL, errno, "cannot open the mount for %s: %s",
				   v->dst, strerror(errno));
	}
}

static bool dir_empty(int fd)
{
	int dup_fd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_(closedirp) DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
	struct dirent *de;

	if (!d) {
		if (dup_fd >= 0)
			close(dup_fd);
		return false;
	}
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			return false;
	return true;
}

static int copy_file(int src, int dst)
{
	char buf[65536];

	for (;;) {
		ssize_t n = read(src, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		if (write_full(dst, buf, (size_t)n) < 0)
			return -errno;
	}
}

/* what is in directory src, copied into directory dst: owners, modes, times and links kept */
static int copy_tree(int src, int dst, int depth)
{
	int dup_fd = openat(src, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_(closedirp) DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
	struct dirent *de;
	int r = 0;

	if (!d)
		return dup_fd >= 0 ? (close(dup_fd), -ENOMEM) : -errno;
	if (depth > 256)
		return -ELOOP;
	while (r == 0 && (de = readdir(d))) {
		const char *n = de->d_name;
		struct stat st;
		struct timespec ts[2];

		if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
			continue;
		if (fstatat(src, n, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
		if (S_ISDIR(st.st_mode)) {
			_cleanup_close_ int s = -1, t = -1;

			if (mkdirat(dst, n, 0700) < 0 ||
			    (s = openat(src, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
			    (t = openat(dst, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
				return -errno;
			r = copy_tree(s, t, depth + 1);
		} else if (S_ISREG(st.st_mode)) {
			_cleanup_close_ int s = -1, t = -1;

			if ((s = openat(src, n, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
			    (t = openat(dst, n, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
					0600)) < 0)
				return -errno;
			r = copy_file(s, t);
		} else if (S_ISLNK(st.st_mode)) {
			char target[PATH_MAX];
			ssize_t len = readlinkat(src, n, target, sizeof(target) - 1);

			if (len < 0)
				return -errno;
			target[len] = '\0';
			if (symlinkat(target, dst, n) < 0)
				return -errno;
		} else if (mknodat(dst, n, st.st_mode & S_IFMT, st.st_rdev) < 0) {
			continue; /* a device or fifo the share cannot hold: left out */
		}
		if (r < 0)
			return r;
		(void)fchownat(dst, n, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW);
		/* a share refuses a setuid bit (the host never holds one): the rest is kept */
		if (!S_ISLNK(st.st_mode) && fchmodat(dst, n, st.st_mode & 07777, 0) < 0)
			(void)fchmodat(dst, n, st.st_mode & 01777, 0);
		ts[0] = st.st_atim;
		ts[1] = st.st_mtim;
		(void)utimensat(dst, n, ts, AT_SYMLINK_NOFOLLOW);
	}
	return r;
}

/* an empty volume gets what the image has at its path, and that directory's owner and mode */
static void populate(int efd, const struct proto_mount *v, int tree)
{
	_cleanup_close_ int src = open(v->dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int vol = openat(tree, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat st;
	int r;

	if (src < 0 || vol < 0 || dir_empty(src) || !dir_empty(vol))
		return;
	r = copy_tree(src, vol, 0);
	if (r < 0)
		child_fail(efd, PROTO_ERR_INTERNAL, -r,
			   "cannot fill the volume at %s with the image's content: %s", v->dst,
			   strerror(-r));
	if (fstat(src, &st) == 0) {
		(void)fchown(vol, st.st_uid, st.st_gid);
		(void)fchmod(vol, st.st_mode & 07777);
	}
}

void volumes_mount(int efd, const struct proto_start *m, const int fds[])
{
	char shown[STR_SHOWN_MAX];

	for (uint32_t i = 0; i < m->nmounts; i++) {
		const struct proto_mount *v = &m->mounts[i];
		unsigned long ro = v->readonly ? MS_RDONLY : 0;
		struct stat st;

		/* the mount point, as what is mounted on it: a file for a file */
		if (v->file[0]) {
			char parent[PATH_MAX];
			int fd;

			str_copy(parent, sizeof(parent), v->dst);
			*strrchr(parent, '/') = '\0';
			if ((parent[0] && mkdir_p(parent, 0755) < 0) ||
			    ((fd = open(v->dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) < 0 &&
			     errno != EISDIR) ||
			    (fd >= 0 && close(fd) < 0))
				child_fail(efd, PROTO_ERR_INTERNAL, errno,
					   "cannot create mount point '%s': %s",
					   str_shown(v->dst, shown), strerror(errno));
			if (stat(v->dst, &st) == 0 && S_ISDIR(st.st_mode))
				child_fail(efd, PROTO_ERR_INTERNAL, EISDIR,
					   "cannot mount a file on '%s': it is a directory in the image",
					   str_shown(v->dst, shown));
		} else {
			if (mkdir_p(v->dst, 0755) < 0)
				child_fail(efd, PROTO_ERR_INTERNAL, errno,
					   "cannot create mount point '%s': %s",
					   str_shown(v->dst, shown), strerror(errno));
			if (v->populate)
				populate(efd, v, fds[i]);
		}
		if (syscall(SYS_move_mount, fds[i], "", AT_FDCWD, v->dst, MOVE_MOUNT_F_EMPTY_PATH) < 0 ||
		    (ro && mount(NULL, v->dst, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID |
						       MS_NODEV,
				 NULL) < 0))
			child_fail(efd, PROTO_ERR_INTERNAL, errno, "cannot mount on '%s': %s",
				   str_shown(v->dst, shown), strerror(errno));
		close(fds[i]);
	}
}
