/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pulling an image: reference -> registry -> manifest (index -> platform) -> config and layers
 * into the content store (each blob verified while it streams) -> one ext4 snapshot per image
 * with the layers applied in order -> the store's index names it. A pull that dies at any
 * point leaves only verified blobs, resumable partials and temp files: never an image entry or
 * a snapshot that a run would take for complete.
 */
#pragma once

#include <stdbool.h>

#include "manifest.h"
#include "registry.h"
#include "store.h"

enum pull_event {
	PULL_RESOLVED,   /* the manifest is known: digest = manifest digest */
	PULL_LAYER_HAVE, /* layer digest already in the store */
	PULL_LAYER_START, /* layer digest will be downloaded (size bytes) */
	PULL_LAYER_BYTES, /* size bytes of layer digest have arrived (from any thread) */
	PULL_LAYER_DONE, /* layer digest downloaded and verified (size bytes) */
	PULL_UNPACKING,  /* writing the snapshot */
	PULL_DONE,
};

struct pull_opts {
	const struct image_platform *platform; /* NULL: this host's */
	struct registry_opts registry;
	unsigned parallel;                     /* concurrent layer downloads; 0: 3 */
	uint64_t min_snapshot_size;            /* 0: 4 GiB (sparse) */
	/* called from the downloading threads too: must be thread-safe */
	void (*progress)(enum pull_event ev, const char *digest, uint64_t size, void *userdata);
	void *userdata;
};

/*
 * Pull reference (as a user typed it) into s and fill *ret with the image now named by the
 * normalized reference. An image already complete in the store costs one manifest request.
 */
int image_pull(struct store *s, const char *reference, const struct pull_opts *o,
	       struct store_image *ret, struct cove_error *err);

/*
 * Write the ext4 snapshot of manifest m (digest manifest_digest) from its layers, which must be
 * in the store, unless it exists: sparse, at least min_size (0: 4 GiB) or 8x the compressed
 * layers + 1 GiB. Appears atomically. With cfg, each layer's uncompressed content must match
 * its diff_id (checked in a second thread while the layer is written; -EBADMSG otherwise).
 */
int image_write_snapshot(struct store *s, const struct image_manifest *m,
			 const struct image_config *cfg, const char *manifest_digest,
			 uint64_t min_size, struct cove_error *err);

/*
 * The platform manifest and config of a stored image (following an index to this host's
 * platform, or platform). Free with image_manifest_free / image_config_free.
 */
int image_load_config(struct store *s, const struct store_image *img,
		      const struct image_platform *platform, struct image_manifest **ret_manifest,
		      struct image_config **ret_config, struct cove_error *err);
