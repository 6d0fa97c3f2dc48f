/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ext4 image writer: formats a new ext4 image file with libext2fs (no mount, no root, no
 * mkfs.ext4 subprocess) and fills it from a host directory tree or from tar layers applied in
 * order with OCI layer semantics. See docs/internals/ext4-writer.md.
 *
 *     struct ext4_writer_opts o = { .size_bytes = 256 << 20 };
 *     r = ext4_writer_new("rootfs.img", &o, &w, &err);
 *     r = ext4_writer_add_tar(w, layer0_fd, &err);     // then layer1, ...
 *     r = ext4_writer_finish(w, &err);                  // rootfs.img appears atomically
 *     ext4_writer_free(w);                              // always; removes the temp file if
 *                                                       // finish was not reached
 *
 * Every function returns 0 or -errno and fills err with one line naming the subject. After
 * any error in add_dir/add_tar the writer is unusable (the image is left half-written): only
 * ext4_writer_free() is meaningful then. A writer is not thread-safe.
 *
 * Layer input is untrusted: paths with a ".." component, paths or hardlink targets that pass
 * through a symlink inside the image, names longer than 255 bytes, paths longer than 4095
 * bytes, uid/gid beyond 32 bits and data beyond the image's free space are rejected with an
 * error naming the entry. Symlinks of the image are never followed.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "../util/error.h"

#define EXT4_WRITER_BLOCK_SIZE 4096u
#define EXT4_WRITER_MIN_SIZE   (4ull << 20)
#define EXT4_WRITER_MAX_SIZE   (16ull << 40)

struct ext4_writer;

struct ext4_writer_opts {
	uint64_t size_bytes; /* image size, required; rounded down to 4 KiB, 4 MiB .. 16 TiB */
	uint64_t inodes;     /* 0 = one per 16 KiB of image (at least 1024) */
	const char *label;   /* volume label (at most 16 bytes) or NULL */
	bool journal;	     /* add a default-sized jbd2 journal (has_journal) */
	bool keep_existing;  /* finish keeps a file another writer put at image_path first */
};

/*
 * Create image_path's temp file "<image_path>.XXXXXX" (O_EXCL), make it a sparse file of
 * o->size_bytes and format it: ext4 with 4096-byte blocks, 256-byte inodes, / (0755, 0:0) and
 * /lost+found. Nothing appears at image_path until ext4_writer_finish().
 */
struct archive;
/* The decompressors a layer may use (gzip, bzip2, xz, lzma, zstd), all in-process: what the
 * writer reads, and so all any reader of a layer or an image archive should enable (libarchive's
 * "all" includes filters that run external programs on the bytes). ARCHIVE_OK or an error. */
int ext4_layer_filters(struct archive *a);

/* The image is written to "IMAGE.XXXXXX" (flock()ed while the writer lives) and renamed into
 * place by ext4_writer_finish. */
int ext4_writer_new(const char *image_path, const struct ext4_writer_opts *o,
		    struct ext4_writer **ret, struct cove_error *err);

/*
 * Copy the tree under host_dir into / of the image: files (holes kept), dirs, symlinks,
 * hardlinks within the tree, devices, fifos, sockets, owners, modes, times (ns), xattrs
 * (user., trusted., security., system.posix_acl_*). Never follows symlinks of the host tree.
 * host_dir's own metadata is not copied: / keeps its mode and owner. Existing entries of the
 * image at the same paths are replaced (a dir over a dir is merged).
 */
int ext4_writer_add_dir(struct ext4_writer *w, const char *host_dir, struct cove_error *err);

/*
 * Apply one tar layer read from fd (plain, gzip, bzip2, xz, lzma or zstd, autodetected) onto
 * the image, entries in order, with OCI semantics: an entry replaces what is at its path (dirs
 * recursively), a dir over a dir only updates metadata (owner, mode, times, xattrs),
 * ".wh.NAME" deletes NAME, ".wh..wh..opq" empties its dir when it is seen, hardlinks point to
 * paths already in the image, missing parents are created (0755, 0:0). fd is not closed.
 */
int ext4_writer_add_tar(struct ext4_writer *w, int fd, struct cove_error *err);
/* The same, with the (uncompressed) tar handed over in blocks: read sets *buf to the next one
 * and returns its length, 0 at the end, -1 when the stream failed. The writer stops reading at
 * the tar's end; what follows is the caller's. */
typedef ssize_t (*ext4_tar_read_fn)(void *ud, const void **buf);
int ext4_writer_add_tar_blocks(struct ext4_writer *w, ext4_tar_read_fn read, void *ud,
			       struct cove_error *err);

/* Write all metadata, fsync, rename the temp file to image_path, fsync its directory. After
 * success the image passes e2fsck -fn. The writer must still be freed. */
int ext4_writer_finish(struct ext4_writer *w, struct cove_error *err);

/* NULL-safe. If finish did not succeed, the temp file is removed. */
void ext4_writer_free(struct ext4_writer *w);

/*
 * Estimate what a tree or a tar stream (read to its end; fd is not closed or rewound) needs:
 * bytes of data blocks (files rounded to blocks, dirs, slow symlinks, big xattrs) and inodes.
 * For a tar the sum over all its entries is an upper bound of what applying it adds.
 */
int ext4_estimate_dir(const char *dir, uint64_t *ret_bytes, uint64_t *ret_inodes,
		      struct cove_error *err);
int ext4_estimate_tar(int fd, uint64_t *ret_bytes, uint64_t *ret_inodes, struct cove_error *err);

/*
 * Fill o->size_bytes and o->inodes from an estimate, with headroom: size = bytes * 1.2 +
 * inode tables + 32 MiB (+ the journal when o->journal), inodes = inodes * 1.25 + 1024 or one
 * per 16 KiB of image, whichever is more. Sizes are rounded up to 1 MiB.
 */
void ext4_writer_opts_autosize(struct ext4_writer_opts *o, uint64_t bytes, uint64_t inodes);
