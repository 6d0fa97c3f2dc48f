/* SPDX-License-Identifier: Apache-2.0 */
/* cove-init: PID 1 of the guest. Only libc, src/util and src/proto may be used here. */
#pragma once

#include <sys/types.h>

#include "../proto/proto.h"
#include "../util/util.h"

#define GUEST_PORT_NAME "cove.0"
#define GUEST_ROOTFS	"/run/cove/rootfs"

/* Log a line on the VM console (it lands in the container's boot log on the host). */
void guest_log(const char *fmt, ...) _printf_(1, 2);
/* With "cove.debug" on the kernel command line: log a timestamped step (boot time). */
extern bool guest_debug;
void guest_trace(const char *what);

/*
 * A process started inside the container (the main process or an exec session). After
 * container_start() or container_exec() succeeds the caller owns the cove-init ends of its
 * stdio: in_fd (write; -1 without stdin), out_fd and err_fd (read). With a terminal, out_fd
 * is the pty master, in_fd is the same descriptor and err_fd is -1.
 */
struct container_proc {
	pid_t pid; /* as cove-init sees it (the VM's first PID namespace) */
	int in_fd;
	int out_fd;
	int err_fd;
	bool terminal;
};

/* Once at boot, with /proc mounted: remember cove-init's own PID namespace, which
 * container_exec() leaves and comes back to around each fork. Returns 0 or -errno. */
int container_init(void);

/*
 * Start the container's main process (START with exec = 0): mount the root filesystem (once),
 * then clone into new mount, PID, UTS and IPC namespaces, set up /proc, /sys, /dev, the tmpfs
 * mounts and pivot_root, then run what m describes (behind a tiny init with m->init). Returns
 * 0, or -errno with *ret_kind set to a PROTO_ERR_* kind and msg filled with a one-line reason.
 */
int container_start(const struct proto_start *m, struct container_proc *ret, uint32_t *ret_kind,
		    char *msg, size_t msg_size);

/*
 * Start an exec session (START with exec = 1) in the namespaces of the running main process
 * main_pid: a command, or with m->tool one of cove-init's own tools. Same results as
 * container_start().
 */
int container_exec(const struct proto_start *m, pid_t main_pid, struct container_proc *ret,
		   uint32_t *ret_kind, char *msg, size_t msg_size);

/* PROTO_STATS: measure the VM now; disk is the root disk's name under /sys/block ("vda").
 * A number that cannot be read is left 0. */
void guest_stats(const char *disk, struct proto_stats *ret);

/* net.c: eth0 as START says, and the /etc files the host made, under /run/cove (hosts,
 * hostname, resolv.conf) for container.c to bind. msg says what failed. */
int net_configure(const struct proto_net *n, char *msg, size_t size);
/* The NIC whose MAC is from (a template's) takes the MAC to. */
int net_take_mac(const uint8_t from[6], const uint8_t to[6]);
int net_write_etc(const struct proto_start *m, char *msg, size_t size);
/* When the host's resolv.conf says "# cove: names from IP...", a resolver on 127.0.0.11 (a
 * process of its own) that asks those servers in turn, so that a container on several networks
 * finds names on each. */
int net_dns_stub(const char *resolv, char *msg, size_t size);

/* Unmount the bind mounts and volumes (volume.c), at power-off. */
void volumes_unstage(void);
