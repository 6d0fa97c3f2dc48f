/* SPDX-License-Identifier: Apache-2.0 */
/* The image store as the engine uses it (src/engine/images.c). */
#pragma once

#include "engine.h"

#include "image/pull.h"
#include "image/registry.h"
#include "image/store.h"

typedef void (*pull_progress_fn)(enum pull_event ev, const char *digest, uint64_t size,
				 void *userdata);

/* Registry options from the environment: COVE_CERTS_DIR replaces /etc/containers/certs.d,
 * COVE_REGISTRY_TIMEOUT (seconds without a byte) replaces 30, COVE_INSECURE_REGISTRIES
 * (host[:port],...) may use plain HTTP as loopback registries do. */
void images_registry_opts(struct registry_opts *o);
/* The smallest snapshot (sparse) an image gets: COVE_IMAGE_SIZE (e.g. 8g), else 0: the
 * default of 4 GiB, or more for big images. */
uint64_t images_snapshot_size(void);
/* Open (creating) STATE/images. */
int images_open(const struct cove_paths *p, struct store **ret, struct cove_error *err);
/* Pull ref (platform may be NULL), telling progress (may be NULL) how it goes. */
int images_pull(struct store *s, const char *ref, const char *platform, pull_progress_fn progress,
		void *userdata, struct store_image *ret, struct cove_error *err);
/* A stored image by name (normalized as docker does) or by a prefix of its ID; -ENOENT. */
int images_find(struct store *s, const char *ref, struct store_image *ret, struct cove_error *err);
/* Whether a container's disk sits on the image's snapshot; its name goes to ret_name. */
bool images_used_by(const struct cove_paths *p, struct store *s, const struct store_image *img,
		    char *ret_name, size_t size);
