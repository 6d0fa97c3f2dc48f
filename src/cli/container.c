/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "container.h"

#include "ext4/writer.h"
#include "vm/qcow2.h"

#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>

#define DISK_HEADROOM (256ULL << 20)

bool container_valid_name(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 64)
		return false;
	if (!((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z') ||
	      (name[0] >= '0' && name[0] <= '9')))
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' || *p == '-'))
			return false;
	return true;
}

int container_offline_image(const struct cli_paths *p, const char *ref, char *buf, size_t size)
{
	static const char *const busybox[] = {
		"busybox", "busybox:latest", "library/busybox", "library/busybox:latest",
		"docker.io/library/busybox", "docker.io/library/busybox:latest",
	};

	for (size_t i = 0; i < ARRAY_SIZE(busybox); i++) {
		if (strcmp(ref, busybox[i]) != 0)
			continue;
		if (str_printf(buf, size, "%s/busybox.oci.tar", p->images) < 0 ||
		    access(buf, R_OK) < 0)
			return -ENOENT;
		return 0;
	}
	return -ENOENT;
}

/* Remove a container directory (it holds only files). */
static void remove_dir(const char *dir)
{
	_cleanup_(closedirp) DIR *d = opendir(dir);
	struct dirent *de;

	while (d && (de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, ".."))
			unlinkat(dirfd(d), de->d_name, 0);
	rmdir(dir);
}

static void unlink_name_of(const char *state, const char *dir)
{
	char path[PATH_MAX + 80];
	_cleanup_free_ char *name = NULL;

	if (str_printf(path, sizeof(path), "%s/name", dir) < 0 ||
	    read_file(path, 128, &name, NULL) < 0)
		return;
	name[strcspn(name, "\n")] = '\0';
	if (container_valid_name(name) &&
	    str_printf(path, sizeof(path), "%s/names/%s", state, name) == 0)
		unlink(path);
}

/* Remove --rm containers whose owner died (their lock is free). */
static void gc(const struct cli_paths *p)
{
	char dir[PATH_MAX];
	_cleanup_(closedirp) DIR *d = NULL;
	struct dirent *de;

	if (str_printf(dir, sizeof(dir), "%s/containers", p->state) < 0)
		return;
	d = opendir(dir);
	while (d && (de = readdir(d))) {
		char cdir[PATH_MAX + 80], marker[PATH_MAX + 100];
		_cleanup_close_ int lock = -1;

		if (de->d_name[0] == '.' || strlen(de->d_name) != 64)
			continue;
		if (str_printf(cdir, sizeof(cdir), "%s/%s", dir, de->d_name) < 0 ||
		    str_printf(marker, sizeof(marker), "%s/autoremove", cdir) < 0 ||
		    access(marker, F_OK) < 0)
			continue;
		str_printf(marker, sizeof(marker), "%s/lock", cdir);
		lock = open(marker, O_RDONLY | O_CLOEXEC);
		if (lock >= 0 && flock(lock, LOCK_EX | LOCK_NB) < 0)
			continue; /* its owner still runs */
		unlink_name_of(p->state, cdir);
		remove_dir(cdir);
	}
}

static int write_small(const char *dir, const char *file, const char *content)
{
	char path[PATH_MAX + 64];
	_cleanup_close_ int fd = -1;

	if (str_printf(path, sizeof(path), "%s/%s", dir, file) < 0)
		return -ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	return write_full(fd, content, strlen(content));
}

int container_create(const struct cli_paths *p, const char *name, bool rm, struct container *c,
		     struct cove_error *err)
{
	uint8_t rnd[32];
	char path[PATH_MAX + 64];
	int r;

	memset(c, 0, sizeof(*c));
	c->lock_fd = -1;
	c->rm = rm;
	gc(p);

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return cove_error_set(err, errno, "getrandom failed: %s", strerror(errno));
	for (size_t i = 0; i < sizeof(rnd); i++)
		str_printf(c->id + 2 * i, 3, "%02x", rnd[i]);
	memcpy(c->short_id, c->id, 12);
	str_copy(c->name, sizeof(c->name), name ? name : c->short_id);

	if (str_printf(c->dir, sizeof(c->dir), "%s/containers/%s", p->state, c->id) < 0)
		return cove_error_set(err, ENAMETOOLONG, "state path too long: '%s'", p->state);
	str_printf(path, sizeof(path), "%s/names", p->state);
	if ((r = mkdir_p(path, 0700)) < 0 || (r = mkdir_p(c->dir, 0700)) < 0)
		return cove_error_set(err, r, "cannot create '%s': %s", c->dir, strerror(-r));
	c->created = true;

	str_printf(path, sizeof(path), "%s/lock", c->dir);
	c->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (c->lock_fd < 0 || flock(c->lock_fd, LOCK_EX) < 0)
		return cove_error_set(err, errno, "cannot lock '%s': %s", path, strerror(errno));
	if (rm && (r = write_small(c->dir, "autoremove", "")) < 0)
		return cove_error_set(err, r, "cannot write in '%s': %s", c->dir, strerror(-r));

	str_printf(c->name_link, sizeof(c->name_link), "%s/names/%s", p->state, c->name);
	if (symlink(c->id, c->name_link) < 0) {
		int e = errno;
		c->name_link[0] = '\0';
		if (e == EEXIST)
			return cove_error_set(err, e,
					      "the container name '%s' is already in use; choose "
					      "another --name",
					      c->name);
		return cove_error_set(err, e, "cannot record the name '%s': %s", c->name,
				      strerror(e));
	}
	str_printf(path, sizeof(path), "%s\n", c->name);
	if ((r = write_small(c->dir, "name", path)) < 0)
		return cove_error_set(err, r, "cannot write in '%s': %s", c->dir, strerror(-r));

	str_printf(c->boot_log, sizeof(c->boot_log), "%s/boot.log", c->dir);
	str_printf(c->qemu_log, sizeof(c->qemu_log), "%s/qemu.log", c->dir);
	return 0;
}

int container_disk_from_image(struct container *c, const char *image, const char *snapshot,
			      struct cove_error *err)
{
	char backing[PATH_MAX];
	struct stat st;

	if (!realpath(image, backing) || stat(backing, &st) < 0)
		return cove_error_set(err, errno, "cannot open image '%s': %s", image, strerror(errno));
	str_printf(c->disk, sizeof(c->disk), "%s/disk.qcow2", c->dir);
	str_copy(c->disk_format, sizeof(c->disk_format), "qcow2");
	/* which store snapshot the disk sits on, so that `image rm` can refuse to pull it away */
	if (snapshot && snapshot[0]) {
		char line[160];
		int r;

		str_printf(line, sizeof(line), "%s\n", snapshot);
		r = write_small(c->dir, "image", line);
		if (r < 0)
			return cove_error_set(err, r, "cannot write in '%s': %s", c->dir, strerror(-r));
	}
	return qcow2_create_overlay(c->disk, backing, "raw", ((uint64_t)st.st_size + 511) & ~511ULL,
				    err);
}

int container_disk_from_dir(struct container *c, const char *dir, struct cove_error *err)
{
	struct ext4_writer_opts o = { 0 };
	struct ext4_writer *w = NULL;
	uint64_t bytes = 0, inodes = 0;
	int r;

	str_printf(c->disk, sizeof(c->disk), "%s/disk.ext4", c->dir);
	str_copy(c->disk_format, sizeof(c->disk_format), "raw");
	r = ext4_estimate_dir(dir, &bytes, &inodes, err);
	if (r < 0)
		return r;
	o.size_bytes = bytes + bytes / 4 + DISK_HEADROOM;
	o.inodes = inodes + inodes / 4 + 16384;
	r = ext4_writer_new(c->disk, &o, &w, err);
	if (r < 0)
		return r;
	r = ext4_writer_add_dir(w, dir, err);
	if (r == 0)
		r = ext4_writer_finish(w, err);
	ext4_writer_free(w);
	if (r < 0)
		return cove_error_prefix(err, "cannot use --rootfs '%s'", dir);
	return 0;
}

void container_finish(struct container *c, int exit_code)
{
	char state[64];

	if (!c->created)
		return;
	if (c->rm) {
		if (c->name_link[0])
			unlink(c->name_link);
		remove_dir(c->dir);
	} else {
		str_printf(state, sizeof(state), "exited %d\n", exit_code);
		write_small(c->dir, "state", state);
	}
	closep(&c->lock_fd);
	c->created = false;
}
