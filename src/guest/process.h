/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The child side of starting a process in the container, shared by the main process and exec
 * sessions (internal to src/guest: container.c puts the child into the container's namespaces,
 * then hands over to process_exec() or process_tool()). Everything here runs in the forked
 * child; a failure before execve() goes back to cove-init through the close-on-exec error pipe
 * as one struct child_report, so that nothing fails silently.
 */
#pragma once

#include "guest.h"

struct child_report {
	uint32_t kind; /* PROTO_ERR_* */
	int32_t err;   /* errno */
	char msg[480];
};

/* The child's side of a process being started; every descriptor is close-on-exec. */
struct child_ctx {
	const struct proto_start *m;
	int err_fd;   /* write end of the error pipe */
	int stdin_fd; /* without a terminal: what becomes 0, 1 and 2 */
	int stdout_fd;
	int stderr_fd;
	int pty_slave; /* with a terminal: the slave, which becomes 0, 1 and 2; else -1 */
};

/* Report (kind, err, message) on err_fd and _exit(127). */
_noreturn_ void child_fail(int err_fd, uint32_t kind, int err, const char *fmt, ...) _printf_(4, 5);
/* Default dispositions and an empty mask: undo what cove-init blocked. */
void child_reset_signals(void);
/*
 * Resolve the identity, set up stdio, the rlimits, the capabilities, the user, the working
 * directory and seccomp, then execve(m->argv) with a PATH search. With with_init (the main
 * process with START init = 1) the caller stays behind as a tiny init (see process.c).
 */
_noreturn_ void process_exec(struct child_ctx *c, bool with_init);
/* m->tool, as root and without the security steps, with pipes for stdio: _exit(0) on
 * success, else its one-line message on stderr and _exit(1). */
_noreturn_ void process_tool(struct child_ctx *c);

/* Bind mounts and volumes (volume.c): mounted by cove-init under /run/cove/vol before the main
 * process is made (0, or -errno with msg); opened by that process before pivot_root (fds[i] per
 * m->mounts[i]) and mounted over the container's paths after it. */
int volumes_stage(const struct proto_start *m, char *msg, size_t size);
void volumes_open(int efd, const struct proto_start *m, int fds[]);
void volumes_mount(int efd, const struct proto_start *m, const int fds[]);
