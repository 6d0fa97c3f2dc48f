/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pushing a stored image: its blobs (config and layers) go up unless the repository has them
 * (mounted from the image's own repository when it is on the same registry), then the manifest,
 * byte for byte as stored, so the digest a registry reports is the one the store has.
 */
#pragma once

#include "manifest.h"
#include "registry.h"
#include "store.h"

enum push_event {
	PUSH_BLOB_EXISTS,  /* the registry has it already */
	PUSH_BLOB_MOUNTED, /* linked from the source repository */
	PUSH_BLOB_PUSHED,  /* uploaded (size bytes) */
	PUSH_DONE,         /* digest = the manifest's */
};

struct push_opts {
	struct registry_opts registry;
	void (*progress)(enum push_event ev, const char *digest, uint64_t size, void *userdata);
	void *userdata;
};

/*
 * Push img to target (a reference as a user types it; NULL: img's own name). An image stored
 * from an index goes up as this host's platform manifest. ret_digest gets the manifest digest.
 */
int image_push(struct store *s, const struct store_image *img, const char *target,
	       const struct push_opts *o, char ret_digest[DIGEST_STRING_MAX],
	       struct cove_error *err);
