/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OCI / Docker image manifests, indexes (manifest lists) and image configs: untrusted JSON in,
 * structs out. Pure functions (no I/O, no globals), so they are unit-tested and fuzzed.
 *
 *     enum image_media_type t;
 *     r = manifest_detect_type(body, len, http_content_type, &t, &err);
 *     if (image_media_type_is_index(t)) {
 *             r = image_index_parse(body, len, http_content_type, &idx, &err);
 *             r = image_index_select(idx, NULL, &desc, &err);     // linux/<host arch>
 *     } else {
 *             r = image_manifest_parse(body, len, http_content_type, &m, &err);
 *     }
 *     r = image_config_parse(config_bytes, config_len, &c, &err);
 *     r = image_config_check_layers(c, m, &err);
 *
 * Every parser checks the input size before parsing (MANIFEST_MAX_SIZE, IMAGE_CONFIG_MAX_SIZE),
 * rejects duplicate keys, bounds every string and array, and on a wrong JSON type names the
 * JSON path: "invalid image config: config.Env[3] is not a string". Returns 0 or -errno:
 * -EFBIG (too large), -EOPNOTSUPP (schema1, unknown media types, non-sha256 digests),
 * -EINVAL (anything else malformed), -ENOMEM. The media type comes from the HTTP Content-Type
 * when it names a manifest type, else from the JSON's "mediaType", else from the content
 * (a "manifests" array is an index, "config" + "layers" a manifest).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../util/error.h"
#include "digest.h"

#define MANIFEST_MAX_SIZE	 (4u << 20)   /* manifests and indexes, bytes */
#define IMAGE_CONFIG_MAX_SIZE	 (8u << 20)   /* image config JSON, bytes */
#define IMAGE_BLOB_MAX_SIZE	 (1ull << 40) /* any descriptor's size (1 TiB) */
#define MANIFEST_MAX_LAYERS	 512u
#define IMAGE_INDEX_MAX_ENTRIES	 1024u
#define IMAGE_STRING_MAX	 (64u << 10) /* any string field, bytes */
#define IMAGE_MEDIA_TYPE_MAX	 255u
#define IMAGE_PLATFORM_FIELD_MAX 64u /* os, architecture, variant incl. NUL */
#define IMAGE_CONFIG_MAX_ENV	 4096u
#define IMAGE_CONFIG_MAX_ARGS	 4096u /* Entrypoint, Cmd */
#define IMAGE_CONFIG_MAX_LABELS	 4096u
#define IMAGE_CONFIG_MAX_PORTS	 4096u /* ExposedPorts */
#define IMAGE_CONFIG_MAX_VOLUMES 4096u

#define MEDIA_TYPE_OCI_MANIFEST	       "application/vnd.oci.image.manifest.v1+json"
#define MEDIA_TYPE_OCI_INDEX	       "application/vnd.oci.image.index.v1+json"
#define MEDIA_TYPE_OCI_CONFIG	       "application/vnd.oci.image.config.v1+json"
#define MEDIA_TYPE_DOCKER_MANIFEST     "application/vnd.docker.distribution.manifest.v2+json"
#define MEDIA_TYPE_DOCKER_LIST	       "application/vnd.docker.distribution.manifest.list.v2+json"
#define MEDIA_TYPE_DOCKER_CONFIG       "application/vnd.docker.container.image.v1+json"
#define MEDIA_TYPE_DOCKER_SCHEMA1      "application/vnd.docker.distribution.manifest.v1+json"
#define MEDIA_TYPE_DOCKER_SCHEMA1_SIGN "application/vnd.docker.distribution.manifest.v1+prettyjws"

enum image_media_type {
	IMAGE_MEDIA_TYPE_OCI_MANIFEST = 1,
	IMAGE_MEDIA_TYPE_OCI_INDEX,
	IMAGE_MEDIA_TYPE_DOCKER_MANIFEST,
	IMAGE_MEDIA_TYPE_DOCKER_LIST,
};

enum image_layer_compression {
	IMAGE_LAYER_NONE = 0, /* not a layer (config, index entry) */
	IMAGE_LAYER_TAR,
	IMAGE_LAYER_GZIP,
	IMAGE_LAYER_ZSTD,
};

struct image_platform {
	char os[IMAGE_PLATFORM_FIELD_MAX];
	char architecture[IMAGE_PLATFORM_FIELD_MAX];
	char variant[IMAGE_PLATFORM_FIELD_MAX]; /* "" when none */
};

struct image_descriptor {
	char *media_type;
	char digest[DIGEST_STRING_MAX]; /* validated sha256 */
	uint64_t size; /* <= IMAGE_BLOB_MAX_SIZE; configs <= IMAGE_CONFIG_MAX_SIZE */
	bool has_platform;
	struct image_platform platform;
	enum image_layer_compression compression; /* layers only */
};

struct image_manifest {
	enum image_media_type media_type;
	struct image_descriptor config;
	struct image_descriptor *layers;
	size_t n_layers; /* <= MANIFEST_MAX_LAYERS */
};

struct image_index {
	enum image_media_type media_type;
	struct image_descriptor *manifests;
	size_t n_manifests; /* <= IMAGE_INDEX_MAX_ENTRIES */
};

struct image_label {
	char *key;
	char *value;
};

/* Absent fields are NULL (strings, vectors) and 0 (counts). String vectors are also
 * NULL-terminated. Entrypoint/Cmd that are JSON null count as absent. */
struct image_config {
	char *architecture;
	char *os;
	char *variant;
	char **entrypoint;
	size_t n_entrypoint;
	char **cmd;
	size_t n_cmd;
	char **env;
	size_t n_env;
	char *working_dir;
	char *user;
	char *stop_signal;
	struct image_label *labels;
	size_t n_labels;
	char **exposed_ports; /* keys of ExposedPorts: "80/tcp" */
	size_t n_exposed_ports;
	char **volumes; /* keys of Volumes */
	size_t n_volumes;
	char **diff_ids; /* rootfs.diff_ids, validated sha256 digests */
	size_t n_diff_ids;
};

/* The type for a media type string: 0, or -EOPNOTSUPP (schema1: "schema1 manifests are not
 * supported: ..."; anything else: "unsupported manifest media type '...'"). */
int image_media_type_from_string(const char *s, enum image_media_type *ret, struct cove_error *err);
const char *image_media_type_to_string(enum image_media_type t);
bool image_media_type_is_index(enum image_media_type t);
/* The compression of an accepted layer media type (OCI tar/+gzip/+zstd, their
 * nondistributable forms, Docker rootfs.diff.tar.gzip and foreign), or IMAGE_LAYER_NONE. */
enum image_layer_compression image_layer_media_type(const char *s);

/* What the document is: Content-Type (may be NULL, and may carry parameters), then
 * "mediaType", then the content. */
int manifest_detect_type(const void *data, size_t len, const char *content_type,
			 enum image_media_type *ret, struct cove_error *err);

/* An image manifest (OCI or Docker schema2); an index is refused ("... is an image index"). */
int image_manifest_parse(const void *data, size_t len, const char *content_type,
			 struct image_manifest **ret, struct cove_error *err);
void image_manifest_free(struct image_manifest *m);

/* An OCI index or Docker manifest list; a manifest is refused. */
int image_index_parse(const void *data, size_t len, const char *content_type,
		      struct image_index **ret, struct cove_error *err);
void image_index_free(struct image_index *idx);

/* An image config (OCI or Docker: same JSON). */
int image_config_parse(const void *data, size_t len, struct image_config **ret,
		       struct cove_error *err);
void image_config_free(struct image_config *c);
/* rootfs.diff_ids must name as many layers as the manifest has. */
int image_config_check_layers(const struct image_config *c, const struct image_manifest *m,
			      struct cove_error *err);

/* "os/arch[/variant]" or "arch[/variant]" (os linux); arch aliases are normalized
 * (x86_64 -> amd64, aarch64 -> arm64, i386 -> 386, armhf -> arm/v7, armel -> arm/v6). */
int image_platform_parse(const char *s, struct image_platform *ret, struct cove_error *err);
/* linux + this host's architecture in OCI terms (amd64, arm64, ...), no variant. */
void image_platform_host(struct image_platform *ret);
/* "os/arch" or "os/arch/variant" into buf (truncated to fit). */
void image_platform_format(const struct image_platform *p, char *buf, size_t size);
/* Whether an index entry's platform satisfies want: same os and (normalized) architecture;
 * want without variant takes any variant, arm64's "v8" equals no variant. */
bool image_platform_matches(const struct image_platform *entry, const struct image_platform *want);

/*
 * The manifest of idx for want (NULL: image_platform_host()). Only entries that are image
 * manifests and carry a platform are considered; among several matches an exact variant
 * match is preferred (for want without variant: an entry without variant, or arm64/v8), then
 * the first in the index. *ret points into idx. -ENOENT with the available platforms listed
 * when none matches: "no linux/s390x image in the index (it has linux/amd64, linux/arm64/v8)".
 */
int image_index_select(const struct image_index *idx, const struct image_platform *want,
		       const struct image_descriptor **ret, struct cove_error *err);

static inline void image_manifest_freep(struct image_manifest **p)
{
	image_manifest_free(*p);
}
static inline void image_index_freep(struct image_index **p)
{
	image_index_free(*p);
}
static inline void image_config_freep(struct image_config **p)
{
	image_config_free(*p);
}
#define _cleanup_image_manifest_ _cleanup_(image_manifest_freep)
#define _cleanup_image_index_	 _cleanup_(image_index_freep)
#define _cleanup_image_config_	 _cleanup_(image_config_freep)
