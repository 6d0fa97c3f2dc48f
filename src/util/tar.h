/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small tar writer and reader (POSIX pax/ustar) for `cove cp`, with libc only: the same code
 * runs in cove-init (inside the container's mount namespace) and in the CLI (on the host).
 * Both ends follow docker cp's rules, so `cp SRC CTR:DST` and `cp CTR:SRC DST` behave alike.
 */
#pragma once

#include <stddef.h>

/*
 * Write a tar of src to out_fd. src is a file, a symlink (kept as a link, not followed) or a
 * directory (recursively). The archive's top-level entry is named basename(src); a src that
 * ends in "/." puts the directory's contents at the top level instead. Modes, owners (numeric),
 * mtimes, symlinks, hard links within the tree, FIFOs and device nodes are kept; names and link
 * targets of any length (pax headers). Returns 0, or -errno with msg set to a one-line reason
 * naming the path.
 */
int tar_cp_out(int out_fd, const char *src, char *msg, size_t msg_size);

#include <stdbool.h>

/* How much of an archive's metadata to trust (all of it inside the container; on the host,
 * from a container that may be hostile, docker's rules and less). */
struct tar_in_opts {
	bool keep_owners;  /* numeric owners from the archive (when running as root) */
	bool keep_devices; /* make device nodes (else they are skipped and counted) */
	bool keep_setid;   /* keep setuid and setgid bits (else they are cleared) */
	bool merge_meta;   /* directories that exist take the archive's owner, mode and time */
	const char *top;   /* when dst is an existing directory, the one top-level name entries
			    * may have (what was asked for); NULL: any (a directory's contents) */
	unsigned skipped;  /* out: device nodes skipped */
};

/*
 * Extract the tar on in_fd to dst, as docker cp does: when dst is an existing directory, the
 * archive's entries go into it; otherwise dst's parent must be a directory and the archive's
 * top-level entry is created as dst (renamed). An existing file is replaced; a directory merges
 * (and keeps its own owner, mode and time unless o->merge_meta). Entries may not escape: absolute names, "..", and
 * paths through symlinks (in the archive or already on disk) are refused; no mode is ever set
 * through a link. o says what to keep. Returns 0, or -errno with msg set to a one-line reason
 * naming the entry.
 */
int tar_cp_in(int in_fd, const char *dst, struct tar_in_opts *o, char *msg, size_t msg_size);

/* The top-level name tar_cp_out(src) gives its entries: src's last component (trailing
 * slashes dropped) into buf and 0, or 1 when it writes a directory's contents ("dir/.", "/"). */
int tar_cp_top(const char *src, char *buf, size_t size);
