/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Image archives: `cove image save` and `cove image load`. See docs/internals/archives.md.
 *
 *     r = image_save(s, refs, n, out_fd, IMAGE_ARCHIVE_OCI, &err);   // a tar on out_fd
 *
 *     struct image_load_result res = { 0 };
 *     r = image_load(s, "x.tar", NULL, &res, &err);     // or image_load_fd(s, 0, ...)
 *     for (size_t i = 0; i < res.n; i++)
 *             printf("Loaded image: %s\n", res.images[i].reference);
 *     image_load_result_done(&res);
 *
 * Save writes an OCI image layout archive (oci-layout, index.json, blobs/sha256/...) or a
 * `docker save` archive (manifest.json, <config-hex>.json, <diff-id-hex>/layer.tar
 * uncompressed, repositories). Output is deterministic: fixed owners, modes and mtimes, blobs
 * sorted. Stored blobs are re-hashed while they are copied out.
 *
 * Load reads a tar (plain or gzip/zstd/xz/bzip2-compressed, from a file or a pipe) in one
 * pass, or an OCI layout directory. Every blob is verified against its digest while it is
 * copied into the store; names inside the archive are never trusted: entries with "..",
 * absolute paths, links or devices are refused, and so are oversized index.json/manifest.json
 * files, more than IMAGE_ARCHIVE_MAX_ENTRIES entries and blobs larger than the free space of
 * the store. Each image gets its ext4 snapshot and then a store entry; a failure leaves no
 * new store entry and no new snapshot (verified blobs may stay: GC removes them).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manifest.h"
#include "store.h"

#define IMAGE_ARCHIVE_MAX_ENTRIES 100000u     /* tar entries in one archive */
#define IMAGE_ARCHIVE_MAX_IMAGES  1024u	      /* images in index.json / manifest.json */
#define IMAGE_ARCHIVE_SMALL_MAX	  (1u << 20)  /* docker files kept in memory until named */
#define IMAGE_ARCHIVE_MEMORY_MAX  (64u << 20) /* ... all of them together */

enum image_archive_format {
	IMAGE_ARCHIVE_OCI = 1, /* OCI image layout as a tar ("oci-archive") */
	IMAGE_ARCHIVE_DOCKER,  /* `docker save` layout ("docker-archive") */
};

/*
 * Write the images named refs[0..n) (store references, exactly or as a user types them) as
 * one tar stream to out_fd (not closed). An image whose top manifest is an index is saved
 * with its index when every manifest the index lists (with config and layers) is stored,
 * else as the platform manifest its snapshot was made from. OCI: index.json names each image
 * with io.containerd.image.name (full name) and org.opencontainers.image.ref.name (the tag);
 * images stored under their digest get no name. Docker: RepoTags use the short names docker
 * prints ("busybox:latest"); each layer is decompressed (libarchive, raw) and its sha256 must
 * equal the config's diff id. -ENOENT for an unknown image, -EBADMSG for a corrupt blob,
 * -EIO (with libarchive's message) for a failed write.
 */
int image_save(struct store *s, const char *const *refs, size_t n, int out_fd,
	       enum image_archive_format fmt, struct cove_error *err);

struct image_load_opts {
	const struct image_platform *platform; /* for indexes; NULL: this host's */
	uint64_t min_snapshot_size;	       /* 0: 4 GiB (sparse), as pull */
};

struct image_loaded {
	/* the store reference: a normalized name, or the manifest digest when the archive
	 * gives none */
	char reference[STORE_REFERENCE_MAX];
	bool named;
	char manifest_digest[DIGEST_STRING_MAX]; /* what `cove image ls` shows as IMAGE ID */
	char config_digest[DIGEST_STRING_MAX];	 /* docker's image ID */
};

struct image_load_result {
	struct image_loaded *images;
	size_t n;
};

/*
 * Load the archive or OCI layout directory at path into s; *ret lists one element per store
 * entry made, in archive order. Names: OCI entries take io.containerd.image.name, else
 * org.opencontainers.image.ref.name when it is a reference (contains '/', ':' or '@'; a bare
 * tag such as skopeo writes names no repository and is ignored); docker entries take
 * RepoTags. An image with no name is stored under its manifest digest. The same manifest
 * under several names gets one snapshot and several entries.
 */
int image_load(struct store *s, const char *path, const struct image_load_opts *o,
	       struct image_load_result *ret, struct cove_error *err);
/* The same for a tar stream read from fd (a file or a pipe; not closed). */
int image_load_fd(struct store *s, int fd, const struct image_load_opts *o,
		  struct image_load_result *ret, struct cove_error *err);
/* Free what a load returned; the struct is left empty. */
void image_load_result_done(struct image_load_result *r);
