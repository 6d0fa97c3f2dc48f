/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libarchive, loaded with dlopen() the first time a layer or an archive is read or written.
 * Linking it makes every cove command load its dependency tree (libxml2, ICU, libstdc++ among
 * them: ~12 ms a start here), which `cove run` of a stored image never uses. Files that use
 * libarchive include this instead of <archive.h>; their archive_* calls go through the table
 * below. archive_dl_load() loads it (thread-safe, once) and says what to install when it
 * cannot; a call made without it loads it then, and ends the process if it cannot.
 */
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <stdatomic.h>

#include "../util/error.h"

/* every libarchive function cove calls */
#define ARCHIVE_DL_SYMBOLS(X)                                                                      \
	X(archive_entry_atime) X(archive_entry_atime_is_set) X(archive_entry_atime_nsec)           \
	X(archive_entry_filetype) X(archive_entry_free) X(archive_entry_gid)                       \
	X(archive_entry_hardlink) X(archive_entry_hardlink_utf8) X(archive_entry_mode)             \
	X(archive_entry_mtime) X(archive_entry_mtime_is_set) X(archive_entry_mtime_nsec)           \
	X(archive_entry_new) X(archive_entry_pathname) X(archive_entry_pathname_utf8)              \
	X(archive_entry_rdevmajor) X(archive_entry_rdevminor) X(archive_entry_set_filetype)        \
	X(archive_entry_set_gid) X(archive_entry_set_mtime) X(archive_entry_set_pathname)          \
	X(archive_entry_set_perm) X(archive_entry_set_size) X(archive_entry_set_uid)               \
	X(archive_entry_size) X(archive_entry_size_is_set) X(archive_entry_sparse_count)           \
	X(archive_entry_symlink) X(archive_entry_symlink_utf8) X(archive_entry_uid)                \
	X(archive_entry_xattr_next) X(archive_entry_xattr_reset) X(archive_errno)                  \
	X(archive_error_string) X(archive_read_data) X(archive_read_data_block)                    \
	X(archive_read_free) X(archive_read_new) X(archive_read_next_header) X(archive_read_open)  \
	X(archive_read_open_fd) X(archive_read_support_filter_bzip2)                               \
	X(archive_read_support_filter_gzip) X(archive_read_support_filter_lzma)                    \
	X(archive_read_support_filter_xz) X(archive_read_support_filter_zstd)                      \
	X(archive_read_support_format_raw) X(archive_read_support_format_tar) X(archive_set_error) \
	X(archive_write_add_filter_none) X(archive_write_close) X(archive_write_data)              \
	X(archive_write_free) X(archive_write_header) X(archive_write_new)                         \
	X(archive_write_open_fd) X(archive_write_set_bytes_in_last_block)                          \
	X(archive_write_set_format_pax_restricted)

struct archive_dl {
#define ARCHIVE_DL_FIELD(name) __typeof__(name) *name;
	ARCHIVE_DL_SYMBOLS(ARCHIVE_DL_FIELD)
#undef ARCHIVE_DL_FIELD
	atomic_bool loaded;
};

extern struct archive_dl archive_dl;

/* Load libarchive.so.13 and resolve the table, once; 0 or -ENOENT with a message saying what to
 * install. */
int archive_dl_load(struct cove_error *err);

/* The table, loaded; a process that cannot load it ends with that message (exit 125). */
void archive_dl_load_or_exit(void);
static inline struct archive_dl *archive_dl_table(void)
{
	if (__builtin_expect(!atomic_load_explicit(&archive_dl.loaded, memory_order_acquire), 0))
		archive_dl_load_or_exit();
	return &archive_dl;
}

#ifndef ARCHIVE_DL_NO_REDIRECT
#define archive_entry_atime (archive_dl_table()->archive_entry_atime)
#define archive_entry_atime_is_set (archive_dl_table()->archive_entry_atime_is_set)
#define archive_entry_atime_nsec (archive_dl_table()->archive_entry_atime_nsec)
#define archive_entry_filetype (archive_dl_table()->archive_entry_filetype)
#define archive_entry_free (archive_dl_table()->archive_entry_free)
#define archive_entry_gid (archive_dl_table()->archive_entry_gid)
#define archive_entry_hardlink (archive_dl_table()->archive_entry_hardlink)
#define archive_entry_hardlink_utf8 (archive_dl_table()->archive_entry_hardlink_utf8)
#define archive_entry_mode (archive_dl_table()->archive_entry_mode)
#define archive_entry_mtime (archive_dl_table()->archive_entry_mtime)
#define archive_entry_mtime_is_set (archive_dl_table()->archive_entry_mtime_is_set)
#define archive_entry_mtime_nsec (archive_dl_table()->archive_entry_mtime_nsec)
#define archive_entry_new (archive_dl_table()->archive_entry_new)
#define archive_entry_pathname (archive_dl_table()->archive_entry_pathname)
#define archive_entry_pathname_utf8 (archive_dl_table()->archive_entry_pathname_utf8)
#define archive_entry_rdevmajor (archive_dl_table()->archive_entry_rdevmajor)
#define archive_entry_rdevminor (archive_dl_table()->archive_entry_rdevminor)
#define archive_entry_set_filetype (archive_dl_table()->archive_entry_set_filetype)
#define archive_entry_set_gid (archive_dl_table()->archive_entry_set_gid)
#define archive_entry_set_mtime (archive_dl_table()->archive_entry_set_mtime)
#define archive_entry_set_pathname (archive_dl_table()->archive_entry_set_pathname)
#define archive_entry_set_perm (archive_dl_table()->archive_entry_set_perm)
#define archive_entry_set_size (archive_dl_table()->archive_entry_set_size)
#define archive_entry_set_uid (archive_dl_table()->archive_entry_set_uid)
#define archive_entry_size (archive_dl_table()->archive_entry_size)
#define archive_entry_size_is_set (archive_dl_table()->archive_entry_size_is_set)
#define archive_entry_sparse_count (archive_dl_table()->archive_entry_sparse_count)
#define archive_entry_symlink (archive_dl_table()->archive_entry_symlink)
#define archive_entry_symlink_utf8 (archive_dl_table()->archive_entry_symlink_utf8)
#define archive_entry_uid (archive_dl_table()->archive_entry_uid)
#define archive_entry_xattr_next (archive_dl_table()->archive_entry_xattr_next)
#define archive_entry_xattr_reset (archive_dl_table()->archive_entry_xattr_reset)
#define archive_errno (archive_dl_table()->archive_errno)
#define archive_error_string (archive_dl_table()->archive_error_string)
#define archive_read_data (archive_dl_table()->archive_read_data)
#define archive_read_data_block (archive_dl_table()->archive_read_data_block)
#define archive_read_free (archive_dl_table()->archive_read_free)
#define archive_read_new (archive_dl_table()->archive_read_new)
#define archive_read_next_header (archive_dl_table()->archive_read_next_header)
#define archive_read_open (archive_dl_table()->archive_read_open)
#define archive_read_open_fd (archive_dl_table()->archive_read_open_fd)
#define archive_read_support_filter_bzip2 (archive_dl_table()->archive_read_support_filter_bzip2)
#define archive_read_support_filter_gzip (archive_dl_table()->archive_read_support_filter_gzip)
#define archive_read_support_filter_lzma (archive_dl_table()->archive_read_support_filter_lzma)
#define archive_read_support_filter_xz (archive_dl_table()->archive_read_support_filter_xz)
#define archive_read_support_filter_zstd (archive_dl_table()->archive_read_support_filter_zstd)
#define archive_read_support_format_raw (archive_dl_table()->archive_read_support_format_raw)
#define archive_read_support_format_tar (archive_dl_table()->archive_read_support_format_tar)
#define archive_set_error (archive_dl_table()->archive_set_error)
#define archive_write_add_filter_none (archive_dl_table()->archive_write_add_filter_none)
#define archive_write_close (archive_dl_table()->archive_write_close)
#define archive_write_data (archive_dl_table()->archive_write_data)
#define archive_write_free (archive_dl_table()->archive_write_free)
#define archive_write_header (archive_dl_table()->archive_write_header)
#define archive_write_new (archive_dl_table()->archive_write_new)
#define archive_write_open_fd (archive_dl_table()->archive_write_open_fd)
#define archive_write_set_bytes_in_last_block (archive_dl_table()->archive_write_set_bytes_in_last_block)
#define archive_write_set_format_pax_restricted (archive_dl_table()->archive_write_set_format_pax_restricted)
#endif
