/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libcove, the engine under the command line: containers on disk (container.h), their
 * supervisors (supervisor.h), attached sessions, images as the engine sees them (images.h),
 * where things are. A front end (src/cli, later an OCI runtime command line) parses, calls
 * these and prints; nothing here prints to the terminal or exits the process. Errors come back
 * as -errno with a struct cove_error that says what went wrong in words a user understands.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "../proto/proto.h"
#include "../util/buf.h"
#include "../util/error.h"
#include "../vm/vm.h"

/* Exit codes, as docker and podman use them. */
#define EXIT_COVE 125     /* cove itself failed */
#define EXIT_CANNOT_EXEC 126
#define EXIT_NOT_FOUND 127

/* "SIGTERM", "TERM", "15" -> 15; -EINVAL if it is none. */
int signal_parse(const char *s, int *ret);
/* "SIGTERM" for 15 (a number for those without a name). */
const char *signal_name(int sig, char *buf, size_t size);

/* Where things are. Build-tree paths win when cove runs from its build directory. */
struct cove_paths {
	char kernel[4096];
	char initrd[4096];
	char images[4096];   /* directory holding NAME.ext4 offline images */
	char state[4096];    /* persistent state: containers */
	char run[4096];      /* runtime state: supervisors' sockets */
	char cache[4096];    /* measured host facts (TSC rate, the accelerator's verdict) */
	char templates[4096]; /* saved VMs to restore (cache/templates, or COVE_TEMPLATES) */
	bool build_tree;
};
int paths_init(struct cove_paths *p, struct cove_error *err);
/* The run directory (supervisors' sockets): made when missing (after a reboot /run is empty),
 * and refused unless it is a directory of ours that no one else may write. */
int paths_prepare_run(const struct cove_paths *p, struct cove_error *err);

/* The terminal: raw mode on the host's stdin, restored on every exit path. */
int terminal_make_raw(int fd);
void terminal_restore(void);
/* Window size of fd, or with fd < 0 of the first of stdin/stdout/stderr that is a terminal. */
int terminal_size(int fd, uint16_t *ret_rows, uint16_t *ret_cols);

/* Relay stdio between this process and a container's process, over a connection to its
 * supervisor (see supervisor.h), after sending first (may be NULL). */
struct session_opts {
	bool tty;
	bool interactive;
	bool until_started; /* return once the process runs (cove run -d, cove start) */
	bool no_signals;    /* do not forward SIGINT and friends (they end this command) */
	int in_fd;          /* what interactive sends: 0, stdin, by default */
	int out_fd;         /* where STDOUT goes: 0 means stdout (1) */
	struct buf *err_capture; /* if set, STDERR is kept here instead of written to stderr */
	/* the supervisor's one-line notices (KVM fell back to TCG), already made plain text;
	 * NULL: dropped */
	void (*notice)(const char *line);
};
struct session_result {
	int exit_code; /* what the command exits with */
	bool started;  /* the process ran */
	bool detached; /* the user detached (Ctrl-P Ctrl-Q): it runs on */
};
int session_run(int fd, const struct buf *first, const struct session_opts *o,
		struct session_result *ret, struct cove_error *err);

/* Append "K=V" to a NULL-terminated list (-e K copies K from our environment, or adds nothing
 * when it is unset); -EINVAL with err set for a bad one. */
int env_list_add(char ***env, size_t *n, const char *kv, struct cove_error *err);
void env_list_free(char **env, size_t n);
/* docker's environment rules: every "K=V" of add over base, later ones winning, into a new
 * NULL-terminated array (the strings are not copied). */
char **merge_env(char **base, size_t nbase, char **add, size_t nadd, uint32_t *ret_n);
