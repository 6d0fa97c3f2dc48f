/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "../proto/proto.h"
#include "../util/error.h"
#include "../vm/vm.h"

/* Exit codes, as docker and podman use them. */
#define EXIT_COVE 125     /* cove itself failed */
#define EXIT_CANNOT_EXEC 126
#define EXIT_NOT_FOUND 127

/* Print "cove: MESSAGE" on stderr (one line). */
void cli_error(const char *fmt, ...) _printf_(1, 2);

struct cli_command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

int cmd_run(int argc, char **argv);
int cmd_system(int argc, char **argv);
int cmd_version(int argc, char **argv);

/* Where things are. Build-tree paths win when cove runs from its build directory. */
struct cli_paths {
	char kernel[4096];
	char initrd[4096];
	char images[4096];   /* directory holding NAME.ext4 offline images */
	char state[4096];    /* persistent state: containers */
	char cache[4096];    /* measured host facts (TSC rate) */
	bool build_tree;
};
int paths_init(struct cli_paths *p, struct cove_error *err);

/* The terminal: raw mode on the host's stdin, restored on every exit path. */
int terminal_make_raw(int fd);
void terminal_restore(void);
/* Window size of fd, or with fd < 0 of the first of stdin/stdout/stderr that is a terminal. */
int terminal_size(int fd, uint16_t *ret_rows, uint16_t *ret_cols);

/* Relay stdio between the local process and the container over the control channel. */
struct session_opts {
	bool tty;
	bool interactive;
	int boot_timeout_ms;
};
struct session_result {
	int exit_code; /* what `cove run` exits with */
};
int session_run(struct vm *vm, const struct vm_config *vc, const struct proto_start *start,
		const struct session_opts *o, struct session_result *ret, struct cove_error *err);
