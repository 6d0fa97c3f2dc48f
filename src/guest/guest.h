/* SPDX-License-Identifier: Apache-2.0 */
/* cove-init: PID 1 of the guest. Only libc, src/util and src/proto may be used here. */
#pragma once

#include <sys/types.h>

#include "../proto/proto.h"
#include "../util/util.h"

#define GUEST_PORT_NAME "cove.0"
#define GUEST_ROOTFS "/run/cove/rootfs"

/* Log a line on the VM console (it lands in the container's boot log on the host). */
void guest_log(const char *fmt, ...) _printf_(1, 2);
/* With "cove.debug" on the kernel command line: log a timestamped step (boot time). */
extern bool guest_debug;
void guest_trace(const char *what);

/*
 * A process started inside the container. After container_spawn() succeeds the caller owns the
 * host-side ends of its stdio: in_fd (write; -1 without stdin), out_fd and err_fd (read;
 * err_fd is -1 with a terminal, where out_fd is the pty master).
 */
struct container_proc {
	pid_t pid;
	int in_fd;
	int out_fd;
	int err_fd;
	int terminal;
};

/*
 * Mount the root filesystem (once) and start the process described by m in new mount, PID,
 * UTS and IPC namespaces with pivot_root. Returns 0, or -errno with *ret_kind set to a
 * PROTO_ERR_* kind and msg filled with a one-line reason.
 */
int container_spawn(const struct proto_start *m, struct container_proc *ret, uint32_t *ret_kind,
		    char *msg, size_t msg_size);
