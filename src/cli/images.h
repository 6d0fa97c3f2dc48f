/* SPDX-License-Identifier: Apache-2.0 */
/* The image store as the CLI uses it (src/cli/image.c). */
#pragma once

#include "cli.h"

#include "image/registry.h"
#include "image/store.h"

/* Registry options from the environment: COVE_CERTS_DIR replaces /etc/containers/certs.d,
 * COVE_REGISTRY_TIMEOUT (seconds without a byte) replaces 30, COVE_INSECURE_REGISTRIES
 * (host[:port],...) may use plain HTTP as loopback registries do. */
void images_registry_opts(struct registry_opts *o);
/* The smallest snapshot (sparse) an image gets: COVE_IMAGE_SIZE (e.g. 8g), else 0: the
 * default of 4 GiB, or more for big images. */
uint64_t images_snapshot_size(void);
/* Open (creating) STATE/images. */
int images_open(const struct cli_paths *p, struct store **ret, struct cove_error *err);
/* Pull ref, showing progress on stderr unless quiet; platform may be NULL. */
int images_pull(struct store *s, const char *ref, const char *platform, bool quiet,
		struct store_image *ret, struct cove_error *err);
/* A stored image by name (normalized as docker does) or by a prefix of its ID; -ENOENT. */
int images_find(struct store *s, const char *ref, struct store_image *ret, struct cove_error *err);
/* Whether a container's disk sits on the image's snapshot; its name goes to ret_name. */
bool images_used_by(const struct cli_paths *p, struct store *s, const struct store_image *img,
		    char *ret_name, size_t size);

int cmd_image(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_push(int argc, char **argv);
int cmd_images(int argc, char **argv);
int cmd_image_save(int argc, char **argv);
int cmd_image_load(int argc, char **argv);
int cmd_registry(int argc, char **argv);
