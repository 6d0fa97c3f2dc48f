/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A container's directory under STATE/containers/ID: its disk, boot log, QEMU log, name and a
 * lock held by the process that owns the running VM. Names are STATE/names/NAME -> ID symlinks,
 * created atomically so two containers can never share a name.
 */
#pragma once

#include <limits.h>
#include <stdbool.h>

#include "cli.h"

struct container {
	char id[65];
	char short_id[13];
	char name[65];
	char dir[PATH_MAX];
	char disk[PATH_MAX + 32];
	char disk_format[8];
	char boot_log[PATH_MAX + 32];
	char qemu_log[PATH_MAX + 32];
	char name_link[PATH_MAX + 80];
	int lock_fd;
	bool rm;
	bool created;
};

bool container_valid_name(const char *name);
/* The archive of the offline image ref names (busybox), or -ENOENT. */
int container_offline_image(const struct cli_paths *p, const char *ref, char *buf, size_t size);
/* Make a new container directory (locked); also removes leftovers of --rm containers whose
 * owner died. */
int container_create(const struct cli_paths *p, const char *name, bool rm, struct container *ret,
		     struct cove_error *err);
/* A copy-on-write qcow2 disk over a read-only base image; snapshot (may be "") names the
 * store snapshot it is, recorded for `cove image rm`. */
int container_disk_from_image(struct container *c, const char *image, const char *snapshot,
			      struct cove_error *err);
/* A fresh ext4 disk written from a host directory. */
int container_disk_from_dir(struct container *c, const char *dir, struct cove_error *err);
/* Record the exit code, or remove everything for --rm; release the lock. */
void container_finish(struct container *c, int exit_code);
