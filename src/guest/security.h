/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Defence in depth for the container process inside the VM (docker's defaults are the
 * reference): masked and read-only /proc and /sys paths, rlimits, a capability set,
 * no_new_privs and a seccomp filter. Each returns 0, or -errno with msg set to a one-line reason.
 * Called in the child that becomes the container process, in this order.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "../proto/proto.h"

/* After pivot_root into the container root (main process only: exec sessions share its mount
 * namespace): hide /proc/kcore, /proc/keys, /proc/timer_list, /sys/firmware, ... and make
 * /proc/sys, /proc/sysrq-trigger, /proc/irq, /proc/bus, /proc/fs read-only. */
int security_mask_paths(char *msg, size_t msg_size);
/* m->rlimits, applied with setrlimit(). */
int security_set_rlimits(const struct proto_start *m, char *msg, size_t msg_size);
/* Before the switch to the container user: drop the bounding set to m->caps and keep
 * capabilities across a setuid (PR_SET_KEEPCAPS). */
int security_before_user(const struct proto_start *m, char *msg, size_t msg_size);
/* After the switch to uid, right before execve(): permitted/effective/inheritable = m->caps for
 * uid 0 (none otherwise), no ambient set, PR_SET_NO_NEW_PRIVS, then the default seccomp filter
 * unless m->unconfined. */
int security_before_exec(const struct proto_start *m, uint32_t uid, char *msg, size_t msg_size);
