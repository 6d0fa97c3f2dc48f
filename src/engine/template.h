/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Templates (docs/internals/templates.md): a VM booted once to the point where cove-init waits
 * for its container, then saved (its RAM in a file, its devices' state through QEMU's
 * migration), so that later VMs of the same shape start from there instead of booting. A
 * restored VM maps the template's RAM private and copy-on-write, so all of them share the pages
 * none has written.
 *
 * On disk, TEMPLATES/ID/ (ID: 16 hex digits of the sha256 of the key, below):
 *   meta      the key (what the template was made from: the identity of the kernel, initramfs
 *             and QEMU files, the accelerator, memory, vCPUs, NICs, disk size, shares and
 *             volumes), then the sha256 of ram and of state
 *   ram       the guest's RAM (sparse)
 *   state     QEMU's device state (~70 KB)
 *   boot.log, qemu.log   of the boot that made it
 *   holders/PID          a running QEMU that maps it (its memfd at VM_MEM_FD)
 * TEMPLATES/ID.lock is held while one is made. A template whose key no longer matches the
 * files (a new kernel, initramfs, QEMU or cove-init) is never used; a corrupt one is removed.
 */
#pragma once

#include "engine.h"

#include "image/digest.h"
#include "vm/vm.h"

#define TEMPLATE_ID_LEN 16
#define TEMPLATE_DISK (4ULL << 30) /* the disk of every image that unpacks to under ~3.5 GiB */

struct template {
	char dir[4200];
	int mem_fd;   /* the RAM: a sealed memfd (nothing can write it, a private mapping can) */
	int state_fd;
	/* a load template_load() has still to do (ram_fd >= 0): mem_fd is empty, unsealed */
	int ram_fd;   /* the ram file */
	int lock_fd;  /* load.lock, held until the load is done */
	char ram_digest[DIGEST_STRING_MAX];
};

#define TEMPLATE_INIT \
	((struct template){ .mem_fd = -1, .state_fd = -1, .ram_fd = -1, .lock_fd = -1 })

/* Whether templates are used (COVE_TEMPLATE is not 0). */
bool template_enabled(void);
/* Whether a VM like c can start from a template: a root disk (or blank_disk, its size), and no
 * more NICs, shares or volume disks than a VM has. */
bool template_fits(const struct vm_config *c);
/*
 * Open the template for c (with its disk's virtual size): 0; -ENOENT when there is none (make
 * one); another error with why (a corrupt template, then removed, or one that cannot be read).
 * Its RAM comes from a QEMU restored from it, or a keeper, when one runs; else from the ram
 * file, by template_load(), which may run while QEMU starts: QEMU maps mem_fd then, but
 * touches no guest memory before the state loads.
 */
int template_open(const struct cove_paths *p, const struct vm_config *c, struct template *ret,
		  char *why, size_t size);
/* Read the ram file into mem_fd, check it and seal it (nothing to do when mem_fd came from a
 * running QEMU): 0; else an error with why, t closed, and for a damaged file (-EBADMSG) the
 * template removed, as template_open does. */
int template_load(struct template *t, char *why, size_t size);
void template_close(struct template *t);
/* A damaged template: removed, so that it is made again. */
void template_discard(struct template *t);
/*
 * A template whose VM could not be restored (QEMU refused its state, or the guest did not
 * answer): removed too, and counted in TEMPLATES/ID.failed; after TEMPLATE_STRIKES failures in a
 * day, that shape is not made again until the day is over, so that a template that cannot work
 * on this host costs its containers nothing more.
 */
#define TEMPLATE_STRIKES 2
void template_failed(struct template *t);
/* QEMU qemu maps the template's RAM (at VM_MEM_FD): a later restore may share it. */
void template_hold(const struct template *t, pid_t qemu);
void template_unhold(const struct template *t, pid_t qemu);
/*
 * Make the template for c: boot a VM of its shape, wait for cove-init's HELLO, save it. 0 when
 * made or already there, -EBUSY when another process is making it.
 */
int template_make(const struct cove_paths *p, const struct vm_config *c, struct cove_error *err);
/*
 * `cove system prepare`: the template for containers of this memory, vCPUs and NICs on a disk
 * of disk bytes, on the accelerator a container would get now. Returns what
 * template_make does.
 */
int template_prepare(const struct cove_paths *p, uint64_t memory, unsigned cpus, size_t nics,
		     uint64_t disk, struct cove_error *err);
/* The same in a process of its own that outlives the caller (the first start of a shape). */
void template_make_later(const struct cove_paths *p, const struct vm_config *c);
/* One line per template on disk: "ID SIZE memory=.. cpus=.. nics=.. disk=.. accel=..". */
int template_list(const struct cove_paths *p, char ***ret, size_t *ret_n);
