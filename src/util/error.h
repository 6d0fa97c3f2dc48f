/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An error that carries more than errno: a one-line message in words a user understands
 * (what failed, and where it helps, what to do). Library code fills it and returns -errno;
 * only the CLI prints it, once.
 */
#pragma once

#include "util.h"

struct cove_error {
	int code;	/* positive errno, 0 when unset */
	char msg[1024];
};

/* Set err (if non-NULL and not already set) and return -code. */
int cove_error_set(struct cove_error *err, int code, const char *fmt, ...) _printf_(3, 4);
/* Prefix an already-set message with more context: "context: old message". */
int cove_error_prefix(struct cove_error *err, const char *fmt, ...) _printf_(2, 3);
