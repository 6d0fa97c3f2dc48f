/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The VM launcher: one QEMU microvm per container. PVH vmlinux + initramfs, a virtio-blk disk,
 * a virtio-serial port to cove-init over a socketpair (no path, no race), the console in a
 * per-container boot log. Which accelerator it runs on is decided by accel.h.
 *
 * QEMU runs the guest's devices, so a hostile guest attacks it first. It gets everything it
 * uses as an open file descriptor (the kernel and initramfs, the disks through -add-fd, the
 * sockets) and, when the caller is root, runs as a user of its own (a uid per VM, from a range
 * no account uses, taken under a lock in confine_dir) in a mount namespace of its own whose
 * root holds only /usr, the library links, ld.so.cache, five device nodes and its own /proc;
 * under its seccomp sandbox in every case. Its console and stderr come back through a pipe and a
 * socket that a thread of ours drains into boot_log and qemu_log, each bounded (VM_LOG_MAX,
 * then one older file, PATH.1), so that a guest cannot fill the host's disk through them.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>
#include <sys/types.h>

#include "../util/error.h"

#define VM_MAX_NICS 4 /* as PROTO_MAX_NICS */
#define VM_MAX_SHARES 16 /* as PROTO_MAX_MOUNTS */
#define VM_MAX_DISKS 16

/* A host directory (or one file) the guest mounts over virtio-9p by tag. */
struct vm_share {
	char path[4096];
	char file[256];  /* "": path is a directory; else path is a file, shared alone in a
			  * directory of its own under this name (confined QEMU only) */
	bool readonly;   /* enforced by the host: QEMU's view of it is a read-only mount */
	char tag[16];
};

/* A further disk (a block volume), found by the guest by its serial. */
struct vm_disk {
	int fd;          /* the caller's; QEMU gets a dup; <= 0: zeros, blank bytes (a template's) */
	uint64_t blank;
	bool readonly;
	char serial[16];
};

struct vm_config {
	const char *qemu;      /* qemu-system-x86_64 */
	const char *kernel;    /* PVH vmlinux */
	const char *initrd;    /* initramfs with cove-init */
	const char *disk;      /* the container's root disk; NULL for none (a probe boot) */
	const char *disk_format; /* "qcow2" or "raw" */
	const char *boot_log;  /* guest console output goes here */
	const char *qemu_log;  /* QEMU's own stderr goes here */
	unsigned cpus;
	uint64_t memory;       /* bytes */
	bool kvm;
	const char *cpu;       /* KVM only: QEMU's -cpu (NULL: "host") */
	uint64_t tsc_khz;      /* TCG only: skips the guest's TSC calibration (0 = none) */
	bool keep_logs;        /* the logs outlive the run, so errors may point at them */
	bool disk_scratch;     /* the root disk goes with the run (--rm): the guest's flushes of
				* it are not passed to the host's disk */
	const char *confine_dir; /* root: QEMU as a uid of its own, locked here; NULL: as we run */
	size_t nics;           /* virtio-net NICs, in this order: */
	int tap_fds[VM_MAX_NICS]; /* > 0: on this tap (the caller keeps it) */
	const char *user_net;  /* else for the first, non-NULL: QEMU's user networking, -netdev this */
	const uint8_t *macs[VM_MAX_NICS]; /* each NIC's MAC, 6 bytes */
	const struct vm_share *shares; /* virtio-9p shares: a confined QEMU gets CAP_CHOWN, */
	size_t nshares;                /* CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and CAP_FOWNER to
					* serve them as the guest asks, never a setuid bit */
	const struct vm_disk *disks;
	size_t ndisks;
	/* templates (docs/internals/templates.md): */
	int mem_fd;            /* > 0: guest RAM is this file (a memfd), shared when mem_share (a
				* template being made), else mapped private, copy-on-write */
	bool mem_share;
	uint64_t blank_disk;   /* without a disk: a disk of zeros this big (a template's) */
	bool blank_nics;       /* the NICs on no network, with proto_template_mac()s */
	int incoming_fd;       /* > 0: the devices' saved state, for vm_restore() */
	bool qmp;              /* a QMP monitor on vm.qmp_fd */
};

#define VM_LOG_MAX (256u << 10) /* boot_log and qemu_log rotate at this size, one older kept */
#define VM_UID_BASE 0x70000000u /* the first of the uids a confined QEMU runs as */
#define VM_UID_SLOTS 4096

struct vm {
	pid_t pid;   /* 0 once reaped */
	int status;  /* wait status, valid once reaped */
	bool reaped;
	bool killed; /* we killed it */
	int pidfd;   /* readable when QEMU exits; -1 where pidfd_open is missing */
	int ctl_fd;  /* host end of the control channel */
	uid_t uid;   /* QEMU's uid (the caller's when not confined) */
	int uid_lock_fd; /* holds the uid's slot while the VM lives */
	int qmp_fd;      /* QEMU's monitor (vm_config.qmp), or -1 */
	bool draining;   /* the log thread runs */
	pthread_t drain; /* copies QEMU's console and stderr into the logs */
};

#define VM_INIT ((struct vm){ .pidfd = -1, .ctl_fd = -1, .uid_lock_fd = -1, .qmp_fd = -1 })

/* QEMU inherits a memory file at this descriptor (vm_config.mem_fd): where another process may
 * take it from a running QEMU (pidfd_getfd) to restore a VM that shares its pages */
#define VM_MEM_FD 40

/* The host's TSC rate in kHz, measured once and cached in cache_file (may be NULL). */
int vm_tsc_khz(const char *cache_file, uint64_t *ret);
/* Find qemu-system-x86_64: $COVE_QEMU, else $PATH. */
int vm_find_qemu(char *buf, size_t size, struct cove_error *err);

/*
 * Start QEMU. The child dies with the calling thread (PR_SET_PDEATHSIG) and sits in a process
 * group of its own, so Ctrl-C on the terminal reaches the container, not QEMU.
 */
int vm_start(const struct vm_config *c, struct vm *ret, struct cove_error *err);
/* Whether vm_start would confine QEMU (root, and COVE_QEMU_CONFINE is not 0). */
bool vm_confinable(void);
/*
 * A VM started with incoming_fd and qmp: load the devices' state (the RAM is mem_fd's) and run
 * it, within timeout_ms. Fails (QEMU is then killed) when the state does not fit this QEMU.
 */
int vm_restore(struct vm *vm, const struct vm_config *c, int timeout_ms, struct cove_error *err);
/*
 * A VM started with mem_share and qmp, its guest waiting: save its devices' state (not its
 * RAM, which stays in mem_fd) to state_fd, and let QEMU quit.
 */
int vm_save(struct vm *vm, const struct vm_config *c, int state_fd, int timeout_ms,
	    struct cove_error *err);
/*
 * Wait until deadline (now_ns()) for cove-init's HELLO on the VM's channel (made non-blocking):
 * true when it came, with its version in *ret_version (may be NULL). Another first frame waits
 * on for QEMU's end; *ret_exited (may be NULL) tells whether QEMU exited meanwhile.
 */
bool vm_await_hello(struct vm *vm, uint64_t deadline, uint32_t *ret_version, bool *ret_exited);
/* Wait up to timeout_ms for QEMU to exit; returns 1 if it exited, 0 on timeout. Once it has,
 * its logs are complete. */
int vm_wait(struct vm *vm, int timeout_ms, int *ret_status);
/* SIGKILL QEMU and reap it. Safe to call more than once. */
void vm_kill(struct vm *vm);
void vm_done(struct vm *vm);
/*
 * Explain why a VM failed in one line: that QEMU was killed by a signal (not by us), with
 * QEMU's most telling stderr line (a KVM error, an "error:" line, else its last line naming
 * itself); else the most telling line of the boot log (a kernel panic, a cove-init error, or
 * the last line).
 */
void vm_explain(const struct vm_config *c, const struct vm *vm, char *buf, size_t size);
