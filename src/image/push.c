/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "push.h"

#include "pull.h"
#include "reference.h"

#include <string.h>
#include <sys/stat.h>

static void progress(const struct push_opts *o, enum push_event ev, const char *digest,
		     uint64_t size)
{
	if (o->progress)
		o->progress(ev, digest, size, o->userdata);
}

/* One blob: present, mounted, or uploaded from the store. */
static int push_blob(struct store *s, struct registry_client *c, const char *repo,
		     const char *from_repo, const struct image_descriptor *d,
		     const struct push_opts *o, struct cove_error *err)
{
	_cleanup_close_ int fd = -1;
	int r;

	r = registry_blob_exists(c, repo, d->digest, NULL, err);
	if (r < 0)
		return r;
	if (r > 0) {
		progress(o, PUSH_BLOB_EXISTS, d->digest, d->size);
		return 0;
	}
	if (from_repo && strcmp(from_repo, repo) != 0) {
		r = registry_blob_mount(c, repo, d->digest, from_repo, d->size, NULL, NULL, err);
		if (r < 0)
			return r;
		if (r > 0) {
			progress(o, PUSH_BLOB_MOUNTED, d->digest, d->size);
			return 0;
		}
	}
	fd = store_blob_open(s, d->digest);
	if (fd < 0)
		return cove_error_set(err, fd, "blob %s of the image is not in the store", d->digest);
	r = registry_blob_upload_fd(c, repo, d->digest, d->size, fd, err);
	if (r == 0)
		progress(o, PUSH_BLOB_PUSHED, d->digest, d->size);
	return r;
}

int image_push(struct store *s, const struct store_image *img, const char *target,
	       const struct push_opts *o, char ret_digest[DIGEST_STRING_MAX],
	       struct cove_error *err)
{
	struct reference dst, src;
	struct registry_client *c = NULL;
	struct image_manifest *m = NULL;
	struct image_config *cfg = NULL;
	_cleanup_free_ char *body = NULL;
	char digest[DIGEST_STRING_MAX];
	const char *from = NULL, *media;
	struct cove_error ignore = { 0 };
	size_t len;
	int r;

	r = reference_parse(target ? target : img->reference, &dst, err);
	if (r < 0)
		return r;
	if (!dst.tag[0] && !dst.digest[0])
		str_copy(dst.tag, sizeof(dst.tag), "latest");
	if (reference_parse(img->reference, &src, &ignore) == 0 &&
	    strcmp(src.registry, dst.registry) == 0)
		from = src.repository;

	/* the manifest to push: the stored one, or this platform's when it is an index */
	r = image_load_config(s, img, NULL, &m, &cfg, err);
	if (r < 0)
		return r;
	if (image_media_type_is_index(img->media_type)) {
		/* find the platform manifest's digest: it names the snapshot */
		const char *hex = strrchr(img->snapshot, '/');
		str_printf(digest, sizeof(digest), "sha256:%.64s", hex ? hex + 1 : "");
	} else {
		str_copy(digest, sizeof(digest), img->manifest_digest);
	}
	r = store_blob_read_small(s, digest, MANIFEST_MAX_SIZE, &body, &len, err);
	if (r < 0)
		goto out;
	media = image_media_type_to_string(m->media_type);

	r = registry_client_new(reference_api_host(&dst), &o->registry, &c, err);
	if (r < 0)
		goto out;
	r = push_blob(s, c, dst.repository, from, &m->config, o, err);
	for (size_t i = 0; r == 0 && i < m->n_layers; i++)
		r = push_blob(s, c, dst.repository, from, &m->layers[i], o, err);
	if (r < 0)
		goto out;
	r = registry_put_manifest(c, dst.repository, dst.tag[0] ? dst.tag : dst.digest, body, len,
				  media, ret_digest, err);
	if (r == 0)
		progress(o, PUSH_DONE, ret_digest, len);
out:
	registry_client_free(c);
	image_config_free(cfg);
	image_manifest_free(m);
	return r;
}
