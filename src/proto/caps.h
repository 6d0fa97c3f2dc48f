/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Linux capability names and sets, shared by the CLI (--cap-add/--cap-drop, inspect) and
 * cove-init (which applies the set). A set is a bit mask: bit N = capability N (0..CAPS_LAST).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define CAPS_LAST 40 /* CAP_CHECKPOINT_RESTORE */
#define CAPS_ALL ((UINT64_C(1) << (CAPS_LAST + 1)) - 1)

/* docker's default set: CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW SETGID SETUID SETFCAP
 * SETPCAP NET_BIND_SERVICE SYS_CHROOT KILL AUDIT_WRITE */
extern const uint64_t caps_default;

/* "CHOWN", "cap_chown", "CAP_CHOWN" -> its bit mask; "ALL" -> CAPS_ALL. -EINVAL if unknown. */
int caps_parse(const char *name, uint64_t *ret);
/* docker's masked paths (files get /dev/null, directories an empty read-only tmpfs) and its
 * read-only paths: what cove-init applies to every container, and what config.json says. */
extern const char *const proto_masked_paths[];
extern const size_t proto_n_masked_paths;
extern const char *const proto_readonly_paths[];
extern const size_t proto_n_readonly_paths;

/* "CAP_CHOWN" for 0, NULL when out of range. */
const char *caps_name(unsigned cap);
/* "CAP_CHOWN,CAP_KILL,..." (ascending); "" for none. -ENOSPC if it does not fit. */
int caps_format(uint64_t set, char *buf, size_t size);
