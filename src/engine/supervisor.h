/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <jansson.h>

#include "container.h"

/*
 * Start c's supervisor (this process holds c's lock; the supervisor inherits it and keeps it
 * until the container has stopped). With ret_fd, *ret_fd is a connection to it that is already
 * attached (ATTACH with attach_flags) to the main process: the caller reads STARTED, the
 * output and EXIT (or ERROR) from it. The supervisor's pid is the container's pid on the host.
 */
int supervisor_spawn(const struct cove_paths *paths, struct container *c,
		     const struct container_spec *spec,
		     uint32_t attach_flags, int *ret_fd, pid_t *ret_pid, struct cove_error *err);
/* A new connection to a running container's supervisor; -ENOTCONN when it is not running. */
int supervisor_connect(const struct container *c, struct cove_error *err);
