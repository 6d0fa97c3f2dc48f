/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz the image document parsers (src/image/manifest.c): the input goes to the type
 * detector, the manifest and index parsers under every Content-Type the registry client can
 * pass (none, the four supported, schema1, a generic and an unknown one), and the config
 * parser. What parses must hold what the header promises (bounded counts, valid digests,
 * NUL-terminated strings); what fails must leave one non-empty line in the error. Indexes go
 * through platform selection, manifest + config through the layer check. Any broken promise
 * aborts.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image/digest.h"
#include "image/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const content_types[] = {
	NULL,
	MEDIA_TYPE_OCI_MANIFEST,
	MEDIA_TYPE_OCI_INDEX,
	MEDIA_TYPE_DOCKER_MANIFEST,
	MEDIA_TYPE_DOCKER_LIST,
	MEDIA_TYPE_DOCKER_SCHEMA1_SIGN,
	"application/json; charset=utf-8",
	"application/vnd.example+json",
};

static void must(bool ok)
{
	if (!ok)
		abort();
}

/* A failure must say something, on one line, with a positive errno; success says nothing. */
static void check_error(int r, const struct cove_error *err)
{
	if (r == 0) {
		must(err->code == 0);
		return;
	}
	must(r < 0 && err->code == -r);
	must(err->msg[0] != '\0' && strlen(err->msg) < sizeof(err->msg));
	must(strchr(err->msg, '\n') == NULL);
}

static void check_descriptor(const struct image_descriptor *d)
{
	must(d->media_type && strlen(d->media_type) <= IMAGE_MEDIA_TYPE_MAX);
	must(digest_is_valid(d->digest));
	must(d->size <= IMAGE_BLOB_MAX_SIZE);
	if (d->has_platform)
		must(strlen(d->platform.os) < IMAGE_PLATFORM_FIELD_MAX &&
		     strlen(d->platform.architecture) < IMAGE_PLATFORM_FIELD_MAX &&
		     strlen(d->platform.variant) < IMAGE_PLATFORM_FIELD_MAX);
}

static void check_strv(char **v, size_t n, size_t max)
{
	must(n <= max);
	if (!v) {
		must(n == 0);
		return;
	}
	for (size_t i = 0; i < n; i++)
		must(v[i] && strlen(v[i]) <= IMAGE_STRING_MAX);
	must(v[n] == NULL);
}

static void fuzz_index(const struct image_index *idx)
{
	static const char *const wants[] = { "linux/amd64", "linux/arm64", "linux/arm/v7",
					     "windows/amd64", "unknown/unknown" };
	const struct image_descriptor *d;
	struct cove_error err = { 0 };
	int r;

	must(idx->n_manifests <= IMAGE_INDEX_MAX_ENTRIES);
	must(image_media_type_is_index(idx->media_type));
	for (size_t i = 0; i < idx->n_manifests; i++)
		check_descriptor(&idx->manifests[i]);
	r = image_index_select(idx, NULL, &d, &err);
	check_error(r, &err);
	if (r == 0)
		must(d >= idx->manifests && d < idx->manifests + idx->n_manifests);
	for (size_t w = 0; w < sizeof(wants) / sizeof(wants[0]); w++) {
		struct image_platform p;

		must(image_platform_parse(wants[w], &p, NULL) == 0);
		err = (struct cove_error){ 0 };
		r = image_index_select(idx, &p, &d, &err);
		check_error(r, &err);
		if (r == 0)
			must(image_platform_matches(&d->platform, &p));
	}
}

static void fuzz_manifest(const struct image_manifest *m)
{
	must(!image_media_type_is_index(m->media_type));
	must(m->n_layers <= MANIFEST_MAX_LAYERS);
	check_descriptor(&m->config);
	must(m->config.size <= IMAGE_CONFIG_MAX_SIZE);
	for (size_t i = 0; i < m->n_layers; i++) {
		check_descriptor(&m->layers[i]);
		must(m->layers[i].compression != IMAGE_LAYER_NONE);
	}
}

static void fuzz_config(const struct image_config *c)
{
	check_strv(c->entrypoint, c->n_entrypoint, IMAGE_CONFIG_MAX_ARGS);
	check_strv(c->cmd, c->n_cmd, IMAGE_CONFIG_MAX_ARGS);
	check_strv(c->env, c->n_env, IMAGE_CONFIG_MAX_ENV);
	check_strv(c->exposed_ports, c->n_exposed_ports, IMAGE_CONFIG_MAX_PORTS);
	check_strv(c->volumes, c->n_volumes, IMAGE_CONFIG_MAX_VOLUMES);
	check_strv(c->diff_ids, c->n_diff_ids, MANIFEST_MAX_LAYERS);
	for (size_t i = 0; i < c->n_diff_ids; i++)
		must(digest_is_valid(c->diff_ids[i]));
	must(c->n_labels <= IMAGE_CONFIG_MAX_LABELS);
	for (size_t i = 0; i < c->n_labels; i++)
		must(c->labels[i].key && c->labels[i].value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct image_manifest *manifest = NULL;
	struct image_config *config = NULL;
	struct cove_error err = { 0 };
	int r;

	for (size_t i = 0; i < sizeof(content_types) / sizeof(content_types[0]); i++) {
		struct image_manifest *m = NULL;
		struct image_index *idx = NULL;
		enum image_media_type t;

		err = (struct cove_error){ 0 };
		r = manifest_detect_type(data, size, content_types[i], &t, &err);
		check_error(r, &err);

		err = (struct cove_error){ 0 };
		r = image_manifest_parse(data, size, content_types[i], &m, &err);
		check_error(r, &err);
		must((r == 0) == (m != NULL));
		if (m)
			fuzz_manifest(m);
		if (m && !manifest)
			manifest = m;
		else
			image_manifest_free(m);

		err = (struct cove_error){ 0 };
		r = image_index_parse(data, size, content_types[i], &idx, &err);
		check_error(r, &err);
		must((r == 0) == (idx != NULL));
		if (idx)
			fuzz_index(idx);
		image_index_free(idx);
	}

	err = (struct cove_error){ 0 };
	r = image_config_parse(data, size, &config, &err);
	check_error(r, &err);
	must((r == 0) == (config != NULL));
	if (config) {
		fuzz_config(config);
		if (manifest) {
			err = (struct cove_error){ 0 };
			r = image_config_check_layers(config, manifest, &err);
			check_error(r, &err);
			must((r == 0) == (config->n_diff_ids == manifest->n_layers));
		}
	}
	image_config_free(config);
	image_manifest_free(manifest);

	/* the same bytes as a digest and as a platform string */
	if (size < 256) {
		char s[256];
		struct image_platform p;

		memcpy(s, data, size);
		s[size] = '\0';
		err = (struct cove_error){ 0 };
		r = digest_validate(s, &err);
		check_error(r, &err);
		err = (struct cove_error){ 0 };
		r = image_platform_parse(s, &p, &err);
		check_error(r, &err);
	}
	return 0;
}
