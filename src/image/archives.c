/* SPDX-License-Identifier: Apache-2.0 */
/* Image archives: save (OCI layout or docker-save tar) and load (either, or an OCI layout
 * directory). See archives.h and docs/internals/archives.md. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* O_TMPFILE, mkostemp */
#endif
#include "archives.h"
#include "../ext4/writer.h"
#include "json.h"

#include "pull.h"
#include "reference.h"

#include "../ext4/archive_dl.h"
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#define COPY_CHUNK	(128u * 1024u)
#define LAYOUT_FILE_MAX 4096u	    /* oci-layout */
#define ENTRY_PATH_MAX	4096u	    /* a tar entry's name */
#define TAGS_MAX	1024u	    /* RepoTags of one manifest.json entry */
#define NAMES_MAX	(16u << 20) /* bytes of the entry names a load remembers */

#define ANN_IMAGE_NAME	      "io.containerd.image.name"
#define ANN_REF_NAME	      "org.opencontainers.image.ref.name"
#define OCI_LAYOUT_JSON	      "{\"imageLayoutVersion\":\"1.0.0\"}"
#define MEDIA_TYPE_LAYER_TAR  "application/vnd.oci.image.layer.v1.tar"
#define MEDIA_TYPE_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define MEDIA_TYPE_LAYER_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"

static void archive_read_freep(struct archive **a)
{
	if (*a)
		archive_read_free(*a);
}
#define _cleanup_archive_read_ _cleanup_(archive_read_freep)


static const char *archive_msg(struct archive *a)
{
	const char *m = archive_error_string(a);

	return m ? m : "unknown error";
}

static int archive_code(struct archive *a)
{
	return archive_errno(a) > 0 ? archive_errno(a) : EIO;
}

/* For reading: libarchive says EILSEQ (or nothing) for a malformed archive. */
static int archive_read_code(struct archive *a)
{
	int e = archive_errno(a);

	return e <= 0 || e == EILSEQ ? EBADMSG : e;
}

/* ---- decompressing a stored layer ------------------------------------------------------- */

/*
 * Read the stored blob digest through libarchive's decompression filters (raw format: no tar
 * parsing) and hash what comes out. With out set, the bytes are also written to that tar as
 * the data of the entry just started, which must be exactly out_size bytes.
 */
static int blob_uncompressed(struct store *s, const char *digest, struct archive *out,
			     uint64_t out_size, char ret[DIGEST_STRING_MAX], uint64_t *ret_size,
			     struct cove_error *err)
{
	_cleanup_archive_read_ struct archive *a = NULL;
	_cleanup_digest_hasher_ struct digest_hasher *h = NULL;
	_cleanup_free_ uint8_t *buf = malloc(COPY_CHUNK);
	_cleanup_close_ int fd = store_blob_open(s, digest);
	struct archive_entry *e;
	uint64_t total = 0;
	int r;

	if (fd < 0)
		return cove_error_set(err, fd, "unable to open layer %s: %s", digest,
				      fd == -ENOENT ? "it is not in the store" : strerror(-fd));
	r = archive_dl_load(err);
	if (r < 0)
		return r;
	if (!buf || digest_hasher_new(&h) < 0 || !(a = archive_read_new()))
		return cove_error_set(err, ENOMEM, "out of memory");
	if (ext4_layer_filters(a) != ARCHIVE_OK ||
	    archive_read_support_format_raw(a) != ARCHIVE_OK ||
	    archive_read_open_fd(a, fd, COPY_CHUNK) != ARCHIVE_OK)
		return cove_error_set(err, archive_code(a), "unable to decompress layer %s: %s",
				      digest, archive_msg(a));
	r = archive_read_next_header(a, &e);
	if (r < ARCHIVE_WARN)
		return cove_error_set(err, archive_code(a), "unable to decompress layer %s: %s",
				      digest, archive_msg(a));
	while (r != ARCHIVE_EOF) {
		la_ssize_t n = archive_read_data(a, buf, COPY_CHUNK);

		if (n < 0)
			return cove_error_set(err, archive_code(a),
					      "unable to decompress layer %s: %s", digest,
					      archive_msg(a));
		if (n == 0)
			break;
		total += (uint64_t)n;
		if (out) {
			if (total > out_size)
				return cove_error_set(err, EBADMSG,
						      "layer %s changed while it was saved",
						      digest);
			for (size_t off = 0; off < (size_t)n;) {
				la_ssize_t w = archive_write_data(out, buf + off, (size_t)n - off);

				if (w <= 0)
					return cove_error_set(
						err, archive_code(out),
						"unable to write the image archive: %s",
						archive_msg(out));
				off += (size_t)w;
			}
		}
		digest_hasher_update(h, buf, (size_t)n);
	}
	if (out && total != out_size)
		return cove_error_set(err, EBADMSG, "layer %s changed while it was saved", digest);
	r = digest_hasher_final(h, ret);
	if (r < 0)
		return cove_error_set(err, r, "unable to hash layer %s", digest);
	*ret_size = total;
	return 0;
}

/* The layer media type for what a stored blob starts with: gzip, zstd, or a plain tar. */
static int blob_compression(struct store *s, const char *digest, const char **ret,
			    struct cove_error *err)
{
	_cleanup_close_ int fd = store_blob_open(s, digest);
	uint8_t magic[6] = { 0 };
	ssize_t n;

	if (fd < 0)
		return cove_error_set(err, fd, "unable to open blob %s: %s", digest, strerror(-fd));
	n = pread(fd, magic, sizeof(magic), 0);
	if (n < 0)
		return cove_error_set(err, errno, "unable to read blob %s: %m", digest);
	if (n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b)
		*ret = MEDIA_TYPE_LAYER_GZIP;
	else if (n >= 4 && memcmp(magic, "\x28\xb5\x2f\xfd", 4) == 0)
		*ret = MEDIA_TYPE_LAYER_ZSTD;
	else
		*ret = MEDIA_TYPE_LAYER_TAR;
	return 0;
}

/* ---- writing a tar ----------------------------------------------------------------------- */

static int tar_fail(struct archive *a, struct cove_error *err, const char *path)
{
	return cove_error_set(err, archive_code(a), "unable to write '%s' to the image archive: %s",
			      path, archive_msg(a));
}

/* Start an entry: fixed owner (0:0), mode and mtime (0), so that output is reproducible. */
static int tar_entry(struct archive *a, const char *path, bool dir, uint64_t size,
		     struct cove_error *err)
{
	struct archive_entry *e = archive_entry_new();
	int r;

	if (!e)
		return cove_error_set(err, ENOMEM, "out of memory");
	archive_entry_set_pathname(e, path);
	archive_entry_set_filetype(e, dir ? AE_IFDIR : AE_IFREG);
	archive_entry_set_perm(e, dir ? 0755 : 0644);
	archive_entry_set_size(e, dir ? 0 : (la_int64_t)size);
	archive_entry_set_mtime(e, 0, 0);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	r = archive_write_header(a, e);
	archive_entry_free(e);
	return r < ARCHIVE_WARN ? tar_fail(a, err, path) : 0;
}

static int tar_data(struct archive *a, const char *path, const void *data, size_t len,
		    struct cove_error *err)
{
	const uint8_t *p = data;

	while (len > 0) {
		la_ssize_t n = archive_write_data(a, p, len);

		if (n <= 0)
			return tar_fail(a, err, path);
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int tar_add_buffer(struct archive *a, const char *path, const void *data, size_t len,
			  struct cove_error *err)
{
	int r = tar_entry(a, path, false, len, err);

	return r < 0 ? r : tar_data(a, path, data, len, err);
}

/* Copy a stored blob into the tar, hashing it again on the way: a corrupt store fails. */
static int tar_add_blob(struct archive *a, struct store *s, const char *path, const char *digest,
			struct cove_error *err)
{
	_cleanup_close_ int fd = store_blob_open(s, digest);
	_cleanup_digest_hasher_ struct digest_hasher *h = NULL;
	_cleanup_free_ uint8_t *buf = malloc(COPY_CHUNK);
	char got[DIGEST_STRING_MAX];
	uint64_t left;
	struct stat st;
	int r;

	if (fd < 0)
		return cove_error_set(err, fd, "unable to open blob %s: %s", digest,
				      fd == -ENOENT ? "it is not in the store" : strerror(-fd));
	if (!buf || digest_hasher_new(&h) < 0)
		return cove_error_set(err, ENOMEM, "out of memory");
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return cove_error_set(err, EIO, "unable to stat blob %s", digest);
	r = tar_entry(a, path, false, (uint64_t)st.st_size, err);
	if (r < 0)
		return r;
	for (left = (uint64_t)st.st_size; left > 0;) {
		ssize_t n = read(fd, buf, left < COPY_CHUNK ? left : COPY_CHUNK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return cove_error_set(err, n < 0 ? errno : EIO,
					      "unable to read blob %s: %s", digest,
					      n < 0 ? strerror(errno) : "it shrank");
		digest_hasher_update(h, buf, (size_t)n);
		r = tar_data(a, path, buf, (size_t)n, err);
		if (r < 0)
			return r;
		left -= (uint64_t)n;
	}
	digest_hasher_final(h, got);
	if (strcmp(got, digest) != 0)
		return cove_error_set(err, EBADMSG,
				      "blob %s in the store is corrupt (its content is %s); remove "
				      "the image and pull it again",
				      digest, got);
	return 0;
}

/* A layer as docker's layer.tar: uncompressed, its sha256 checked against the diff id. */
static int tar_add_layer(struct archive *a, struct store *s, const char *path,
			 const struct image_descriptor *layer, const char *diff_id,
			 struct cove_error *err)
{
	char got[DIGEST_STRING_MAX];
	uint64_t size;
	int r;

	if (strcmp(layer->digest, diff_id) == 0)
		return tar_add_blob(a, s, path, layer->digest, err);
	/* two passes: the size goes into the header, before the data */
	r = blob_uncompressed(s, layer->digest, NULL, 0, got, &size, err);
	if (r < 0)
		return r;
	if (strcmp(got, diff_id) != 0)
		return cove_error_set(err, EBADMSG,
				      "layer %s uncompresses to %s, not to %s as the image config "
				      "says",
				      layer->digest, got, diff_id);
	r = tar_entry(a, path, false, size, err);
	if (r < 0)
		return r;
	r = blob_uncompressed(s, layer->digest, a, size, got, &size, err);
	if (r < 0)
		return r;
	if (strcmp(got, diff_id) != 0)
		return cove_error_set(err, EBADMSG, "layer %s changed while it was saved",
				      layer->digest);
	return 0;
}

/* ---- save -------------------------------------------------------------------------------- */

struct save_image {
	struct store_image img;
	char top_digest[DIGEST_STRING_MAX]; /* what index.json points to */
	enum image_media_type top_type;
	uint64_t top_size;
	const struct image_platform *platform; /* when top is a manifest taken from an index */
	struct image_platform platform_buf;
	struct image_manifest *m; /* the platform manifest */
	struct image_config *cfg;
	struct reference ref;
	bool named; /* ref is valid (the store reference is not a bare digest) */
};

static void save_image_done(struct save_image *si)
{
	image_manifest_free(si->m);
	image_config_free(si->cfg);
}

/* By its store reference, or as a user types it. */
static int find_image(struct store *s, const char *ref, struct store_image *ret,
		      struct cove_error *err)
{
	struct cove_error e = { 0 }, ignore = { 0 };
	char name[STORE_REFERENCE_MAX], show[96];
	struct reference r;
	int k;

	k = store_image_get(s, ref, ret, &e);
	if (k == 0)
		return 0;
	if (k != -ENOENT)
		return cove_error_set(err, k, "%s", e.msg);
	if (reference_parse(ref, &r, &ignore) == 0 &&
	    reference_format(&r, name, sizeof(name)) == 0 &&
	    store_image_get(s, name, ret, &ignore) == 0)
		return 0;
	return cove_error_set(err, ENOENT, "no image '%s' in the store", str_shown(ref, show));
}

/* Parse the stored manifest digest, check that its config and layers are stored, add them
 * all to bl. */
static int collect_manifest(struct store *s, const char *digest, const char *media_type,
			    struct image_manifest **ret_m, struct image_config **ret_cfg,
			    uint64_t *ret_size, struct digest_set *bl, struct cove_error *err)
{
	_cleanup_free_ char *data = NULL, *cdata = NULL;
	_cleanup_image_manifest_ struct image_manifest *m = NULL;
	_cleanup_image_config_ struct image_config *cfg = NULL;
	size_t len, clen;
	int r;

	r = store_blob_read_small(s, digest, MANIFEST_MAX_SIZE, &data, &len, err);
	if (r < 0)
		return r;
	r = image_manifest_parse(data, len, media_type, &m, err);
	if (r < 0)
		return r;
	r = store_blob_read_small(s, m->config.digest, IMAGE_CONFIG_MAX_SIZE, &cdata, &clen, err);
	if (r < 0)
		return r;
	r = image_config_parse(cdata, clen, &cfg, err);
	if (r < 0)
		return r;
	r = image_config_check_layers(cfg, m, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < m->n_layers; i++)
		if (!store_blob_has(s, m->layers[i].digest))
			return cove_error_set(err, ENOENT, "layer %s is not in the store",
					      m->layers[i].digest);
	if (digest_set_add(bl, digest) < 0 || digest_set_add(bl, m->config.digest) < 0)
		return cove_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < m->n_layers; i++)
		if (digest_set_add(bl, m->layers[i].digest) < 0)
			return cove_error_set(err, ENOMEM, "out of memory");
	if (ret_m)
		*ret_m = TAKE_PTR(m);
	if (ret_cfg)
		*ret_cfg = TAKE_PTR(cfg);
	if (ret_size)
		*ret_size = len;
	return 0;
}

/* An index: whether every manifest it lists is stored with its config and layers. */
static bool index_complete(struct store *s, const struct image_index *idx, struct digest_set *bl)
{
	for (size_t i = 0; i < idx->n_manifests; i++) {
		const struct image_descriptor *d = &idx->manifests[i];
		struct cove_error ignore = { 0 };
		enum image_media_type t;

		if (image_media_type_from_string(d->media_type, &t, NULL) < 0 ||
		    image_media_type_is_index(t) || !store_blob_has(s, d->digest))
			return false;
		if (collect_manifest(s, d->digest, d->media_type, NULL, NULL, NULL, bl, &ignore) <
		    0)
			return false;
	}
	return idx->n_manifests > 0;
}

static int resolve_save(struct store *s, const char *ref, struct save_image *si,
			struct digest_set *bl, struct cove_error *err)
{
	_cleanup_free_ char *top = NULL;
	_cleanup_image_index_ struct image_index *idx = NULL;
	struct digest_set all = { 0 };
	const struct image_descriptor *pd = NULL;
	const char *mt;
	struct cove_error ignore = { 0 };
	size_t len;
	int r;

	r = find_image(s, ref, &si->img, err);
	if (r < 0)
		return r;
	si->named = !digest_is_valid(si->img.reference) &&
		    reference_parse(si->img.reference, &si->ref, &ignore) == 0;
	mt = image_media_type_to_string(si->img.media_type);
	r = store_blob_read_small(s, si->img.manifest_digest, MANIFEST_MAX_SIZE, &top, &len, err);
	if (r < 0)
		goto fail;
	if (!image_media_type_is_index(si->img.media_type)) {
		r = collect_manifest(s, si->img.manifest_digest, mt, &si->m, &si->cfg,
				     &si->top_size, bl, err);
		if (r < 0)
			goto fail;
		memcpy(si->top_digest, si->img.manifest_digest, DIGEST_STRING_MAX);
		si->top_type = si->m->media_type;
		return 0;
	}

	r = image_index_parse(top, len, mt, &idx, err);
	if (r < 0)
		goto fail;
	/* the platform its snapshot was made from, else this host's */
	if (strlen(si->img.snapshot) == strlen("snapshots/") + DIGEST_SHA256_HEX_LEN + 5) {
		char hex[DIGEST_SHA256_HEX_LEN + 1], d[DIGEST_STRING_MAX];

		memcpy(hex, si->img.snapshot + strlen("snapshots/"), DIGEST_SHA256_HEX_LEN);
		hex[DIGEST_SHA256_HEX_LEN] = '\0';
		for (size_t i = 0; digest_from_hex(hex, d) == 0 && i < idx->n_manifests; i++)
			if (strcmp(idx->manifests[i].digest, d) == 0)
				pd = &idx->manifests[i];
	}
	if (!pd && (r = image_index_select(idx, NULL, &pd, err)) < 0)
		goto fail;
	r = collect_manifest(s, pd->digest, pd->media_type, &si->m, &si->cfg, &si->top_size, bl,
			     err);
	if (r < 0)
		goto fail;
	if (index_complete(s, idx, &all)) {
		for (size_t i = 0; i < all.n; i++)
			if (digest_set_add(bl, all.v[i]) < 0) {
				r = cove_error_set(err, ENOMEM, "out of memory");
				goto fail;
			}
		if (digest_set_add(bl, si->img.manifest_digest) < 0) {
			r = cove_error_set(err, ENOMEM, "out of memory");
			goto fail;
		}
		memcpy(si->top_digest, si->img.manifest_digest, DIGEST_STRING_MAX);
		si->top_type = si->img.media_type;
		si->top_size = len;
	} else {
		/* only one platform is here: save that manifest on its own */
		memcpy(si->top_digest, pd->digest, DIGEST_STRING_MAX);
		si->top_type = si->m->media_type;
		if (pd->has_platform) {
			si->platform_buf = pd->platform;
			si->platform = &si->platform_buf;
		}
	}
	digest_set_done(&all);
	return 0;
fail:
	digest_set_done(&all);
	return cove_error_prefix(err, "image '%s'", si->img.reference);
}

static json_t *platform_json(const struct image_platform *p)
{
	json_t *o = json_pack("{s:s, s:s}", "architecture", p->architecture, "os", p->os);

	if (o && p->variant[0] && json_object_set_new(o, "variant", json_string(p->variant)) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int save_oci(struct archive *a, struct store *s, struct save_image *sis, size_t n,
		    const struct digest_set *bl, struct cove_error *err)
{
	_cleanup_json_ json_t *root = NULL;
	_cleanup_free_ char *text = NULL;
	json_t *manifests;
	int r;

	r = tar_add_buffer(a, "oci-layout", OCI_LAYOUT_JSON, strlen(OCI_LAYOUT_JSON), err);
	if (r < 0)
		return r;
	if ((r = tar_entry(a, "blobs/", true, 0, err)) < 0 ||
	    (r = tar_entry(a, "blobs/sha256/", true, 0, err)) < 0)
		return r;
	for (size_t i = 0; i < bl->n; i++) {
		char path[128];

		(void)str_printf(path, sizeof(path), "blobs/sha256/%s", digest_hex(bl->v[i]));
		r = tar_add_blob(a, s, path, bl->v[i], err);
		if (r < 0)
			return r;
	}

	root = json_pack("{s:i, s:s, s:[]}", "schemaVersion", 2, "mediaType", MEDIA_TYPE_OCI_INDEX,
			 "manifests");
	if (!root)
		return cove_error_set(err, ENOMEM, "out of memory");
	manifests = json_object_get(root, "manifests");
	for (size_t i = 0; i < n; i++) {
		json_t *d, *ann;
		bool dup = false;

		for (size_t j = 0; j < i; j++)
			dup = dup || strcmp(sis[j].img.reference, sis[i].img.reference) == 0;
		if (dup)
			continue;
		d = json_pack("{s:s, s:s, s:I}", "mediaType",
			      image_media_type_to_string(sis[i].top_type), "digest",
			      sis[i].top_digest, "size", (json_int_t)sis[i].top_size);
		if (!d || json_array_append_new(manifests, d) < 0)
			return cove_error_set(err, ENOMEM, "out of memory");
		if (sis[i].platform &&
		    json_object_set_new(d, "platform", platform_json(sis[i].platform)) < 0)
			return cove_error_set(err, ENOMEM, "out of memory");
		if (!sis[i].named)
			continue;
		ann = json_pack("{s:s}", ANN_IMAGE_NAME, sis[i].img.reference);
		if (!ann || json_object_set_new(d, "annotations", ann) < 0 ||
		    (sis[i].ref.tag[0] &&
		     json_object_set_new(ann, ANN_REF_NAME, json_string(sis[i].ref.tag)) < 0))
			return cove_error_set(err, ENOMEM, "out of memory");
	}
	text = json_dumps(root, JSON_COMPACT);
	if (!text)
		return cove_error_set(err, ENOMEM, "out of memory");
	return tar_add_buffer(a, "index.json", text, strlen(text), err);
}

/* "busybox:latest" as docker writes RepoTags; *ret_repo = "busybox". */
static int docker_tag(const struct reference *ref, char *buf, size_t size, char *repo,
		      size_t repo_size)
{
	struct reference r = *ref;

	r.digest[0] = '\0';
	if (reference_familiar(&r, buf, size) < 0)
		return -ENAMETOOLONG;
	r.tag[0] = '\0';
	return reference_familiar(&r, repo, repo_size);
}

struct docker_layer {
	const struct image_descriptor *desc;
	const char *diff_id;
};

static int docker_layer_cmp(const void *a, const void *b)
{
	const struct docker_layer *x = a, *y = b;

	return strcmp(x->diff_id, y->diff_id);
}

static int save_docker(struct archive *a, struct store *s, struct save_image *sis, size_t n,
		       struct cove_error *err)
{
	_cleanup_json_ json_t *mj = json_array(), *repos = json_object();
	_cleanup_free_ char *mtext = NULL, *rtext = NULL;
	_cleanup_free_ struct docker_layer *layers = NULL;
	struct digest_set configs = { 0 };
	size_t n_layers = 0, cap = 0;
	int r = 0;

	if (!mj || !repos)
		return cove_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const struct save_image *si = &sis[i];
		json_t *entry, *tags;
		char tag[REFERENCE_STRING_MAX], repo[REFERENCE_STRING_MAX];
		bool dup = false;
		size_t g;

		/* one entry per config (image ID), with all its tags */
		for (g = 0; g < configs.n; g++)
			if (strcmp(configs.v[g], si->m->config.digest) == 0)
				break;
		if (g == configs.n) {
			char cfgname[80];
			json_t *lj = json_array();

			(void)str_printf(cfgname, sizeof(cfgname), "%s.json",
					 digest_hex(si->m->config.digest));
			entry = json_pack("{s:s, s:[], s:o}", "Config", cfgname, "RepoTags",
					  "Layers", lj);
			if (!entry || json_array_append_new(mj, entry) < 0 ||
			    digest_set_add(&configs, si->m->config.digest) < 0) {
				r = cove_error_set(err, ENOMEM, "out of memory");
				goto out;
			}
			for (size_t k = 0; k < si->m->n_layers; k++) {
				char lname[80];

				(void)str_printf(lname, sizeof(lname), "%s/layer.tar",
						 digest_hex(si->cfg->diff_ids[k]));
				if (json_array_append_new(lj, json_string(lname)) < 0) {
					r = cove_error_set(err, ENOMEM, "out of memory");
					goto out;
				}
				if (n_layers == cap) {
					size_t nc = cap ? cap * 2 : 16;
					void *v = reallocarray(layers, nc, sizeof(*layers));

					if (!v) {
						r = cove_error_set(err, ENOMEM, "out of memory");
						goto out;
					}
					layers = v;
					cap = nc;
				}
				layers[n_layers++] = (struct docker_layer){
					.desc = &si->m->layers[k],
					.diff_id = si->cfg->diff_ids[k],
				};
			}
		}
		entry = json_array_get(mj, g);
		if (!si->named || !si->ref.tag[0])
			continue;
		if (docker_tag(&si->ref, tag, sizeof(tag), repo, sizeof(repo)) < 0) {
			r = cove_error_set(err, ENAMETOOLONG, "image name '%s' is too long",
					   si->img.reference);
			goto out;
		}
		tags = json_object_get(entry, "RepoTags");
		for (size_t j = 0; j < json_array_size(tags); j++)
			dup = dup || strcmp(json_string_value(json_array_get(tags, j)), tag) == 0;
		if (!dup && json_array_append_new(tags, json_string(tag)) < 0) {
			r = cove_error_set(err, ENOMEM, "out of memory");
			goto out;
		}
		/* the legacy file: repository -> tag -> top layer ID */
		if (si->m->n_layers > 0) {
			json_t *rj = json_object_get(repos, repo);

			if (!rj && json_object_set_new(repos, repo, rj = json_object()) < 0) {
				r = cove_error_set(err, ENOMEM, "out of memory");
				goto out;
			}
			if (json_object_set_new(rj, si->ref.tag,
						json_string(digest_hex(
							si->cfg->diff_ids[si->m->n_layers - 1]))) <
			    0) {
				r = cove_error_set(err, ENOMEM, "out of memory");
				goto out;
			}
		}
	}
	mtext = json_dumps(mj, JSON_COMPACT);
	rtext = json_dumps(repos, JSON_COMPACT | JSON_SORT_KEYS);
	if (!mtext || !rtext) {
		r = cove_error_set(err, ENOMEM, "out of memory");
		goto out;
	}

	/* manifest.json and the configs first: a streaming reader knows the layers' diff ids
	 * before it meets them */
	r = tar_add_buffer(a, "manifest.json", mtext, strlen(mtext), err);
	if (r < 0)
		goto out;
	digest_set_sort(&configs);
	for (size_t i = 0; i < configs.n; i++) {
		char path[80];

		(void)str_printf(path, sizeof(path), "%s.json", digest_hex(configs.v[i]));
		r = tar_add_blob(a, s, path, configs.v[i], err);
		if (r < 0)
			goto out;
	}
	if (n_layers)
		qsort(layers, n_layers, sizeof(*layers), docker_layer_cmp);
	for (size_t i = 0; i < n_layers; i++) {
		char dir[80], path[80];

		if (i > 0 && strcmp(layers[i].diff_id, layers[i - 1].diff_id) == 0)
			continue;
		(void)str_printf(dir, sizeof(dir), "%s/", digest_hex(layers[i].diff_id));
		(void)str_printf(path, sizeof(path), "%s/layer.tar", digest_hex(layers[i].diff_id));
		r = tar_entry(a, dir, true, 0, err);
		if (r == 0)
			r = tar_add_layer(a, s, path, layers[i].desc, layers[i].diff_id, err);
		if (r < 0)
			goto out;
	}
	r = tar_add_buffer(a, "repositories", rtext, strlen(rtext), err);
out:
	digest_set_done(&configs);
	return r;
}

int image_save(struct store *s, const char *const *refs, size_t n, int out_fd,
	       enum image_archive_format fmt, struct cove_error *err)
{
	struct save_image *sis = NULL;
	struct digest_set bl = { 0 };
	struct archive *a = NULL;
	int r;

	if (n == 0)
		return cove_error_set(err, EINVAL, "no image to save");
	if (n > IMAGE_ARCHIVE_MAX_IMAGES)
		return cove_error_set(err, E2BIG, "%zu images are more than one archive holds (%u)",
				      n, IMAGE_ARCHIVE_MAX_IMAGES);
	if (fmt != IMAGE_ARCHIVE_OCI && fmt != IMAGE_ARCHIVE_DOCKER)
		return cove_error_set(err, EINVAL, "unknown archive format %d", (int)fmt);
	sis = calloc(n, sizeof(*sis));
	if (!sis)
		return cove_error_set(err, ENOMEM, "out of memory");
	r = store_pin(s, err);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		r = resolve_save(s, refs[i], &sis[i], &bl, err);
		if (r < 0)
			goto out;
	}
	digest_set_sort(&bl);

	r = archive_dl_load(err);
	if (r < 0)
		goto out;
	a = archive_write_new();
	if (!a) {
		r = cove_error_set(err, ENOMEM, "out of memory");
		goto out;
	}
	if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_add_filter_none(a) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
	    archive_write_open_fd(a, out_fd) != ARCHIVE_OK) {
		r = cove_error_set(err, archive_code(a), "unable to write the image archive: %s",
				   archive_msg(a));
		goto out;
	}
	r = fmt == IMAGE_ARCHIVE_OCI ? save_oci(a, s, sis, n, &bl, err)
				     : save_docker(a, s, sis, n, err);
	if (r == 0 && archive_write_close(a) != ARCHIVE_OK)
		r = cove_error_set(err, archive_code(a), "unable to write the image archive: %s",
				   archive_msg(a));
out:
	if (a)
		archive_write_free(a);
	for (size_t i = 0; i < n; i++)
		save_image_done(&sis[i]);
	free(sis);
	digest_set_done(&bl);
	store_unpin(s);
	return r;
}

/* ---- load: state ------------------------------------------------------------------------- */

/* A file of a docker archive (or any blobs/sha256/ entry), by its path in the archive. */
struct load_file {
	char *path;
	char digest[DIGEST_STRING_MAX]; /* computed (or verified) from its content */
	uint64_t size;
	char *data;   /* kept in memory until it is known to be needed, else in the store */
	bool symlink; /* never followed: refused if manifest.json names it */
};

/* One element of docker's manifest.json. */
struct docker_entry {
	char *config; /* normalized archive paths */
	char **layers;
	size_t n_layers;
	char **tags;
	size_t n_tags;
	struct image_config *cfg; /* parsed as soon as its file was seen */
};

/* An image to be made: its top manifest or index, the platform manifest its snapshot is
 * made from, and its names. */
struct load_image {
	char top_digest[DIGEST_STRING_MAX];
	enum image_media_type top_type;
	char platform_digest[DIGEST_STRING_MAX];
	struct image_manifest *m;
	char **names;
	size_t n_names;
};

struct load_ctx {
	struct store *s;
	struct cove_error *err;
	const struct image_platform *platform;
	uint64_t min_snapshot; /* 0: image_write_snapshot's default */
	int dir_fd;	       /* OCI layout directory, else -1 */
	int blobs_fd;	       /* its blobs/sha256 */
	uint8_t *buf;	       /* COPY_CHUNK */
	size_t n_entries;
	bool have_layout;
	char *layout, *index, *manifest;
	size_t layout_len, index_len, manifest_len;
	struct docker_entry *dm;
	size_t n_dm;
	struct cove_error dm_err; /* why manifest.json did not parse */
	struct load_file *files;
	size_t n_files, cap_files;
	size_t mem_used;   /* file contents kept in memory */
	size_t names_used; /* bytes of files[].path */
	struct load_image *imgs;
	size_t n_imgs;
};

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

static void docker_entries_free(struct docker_entry *dm, size_t n)
{
	for (size_t i = 0; dm && i < n; i++) {
		free(dm[i].config);
		strv_free(dm[i].layers, dm[i].n_layers);
		strv_free(dm[i].tags, dm[i].n_tags);
		image_config_free(dm[i].cfg);
	}
	free(dm);
}

static void load_ctx_done(struct load_ctx *c)
{
	free(c->buf);
	free(c->layout);
	free(c->index);
	free(c->manifest);
	docker_entries_free(c->dm, c->n_dm);
	for (size_t i = 0; i < c->n_files; i++) {
		free(c->files[i].path);
		free(c->files[i].data);
	}
	free(c->files);
	for (size_t i = 0; i < c->n_imgs; i++) {
		image_manifest_free(c->imgs[i].m);
		strv_free(c->imgs[i].names, c->imgs[i].n_names);
	}
	free(c->imgs);
	if (c->blobs_fd >= 0)
		close(c->blobs_fd);
}

void image_load_result_done(struct image_load_result *r)
{
	if (!r)
		return;
	free(r->images);
	*r = (struct image_load_result){ 0 };
}

/*
 * An archive entry's name as a relative path without "." or empty components: "./a//b/" is
 * "a/b", "./" is "". -EINVAL with *why set for absolute paths and ".." components.
 */
static int entry_path(const char *raw, char *out, size_t size, const char **why)
{
	size_t n = 0;

	if (!raw || !raw[0]) {
		*why = "it has no name";
		return -EINVAL;
	}
	if (raw[0] == '/') {
		*why = "it is an absolute path";
		return -EINVAL;
	}
	for (const char *p = raw; *p;) {
		size_t len = strcspn(p, "/");

		if (len == 2 && p[0] == '.' && p[1] == '.') {
			*why = "it has a '..' component";
			return -EINVAL;
		}
		if (len > 0 && !(len == 1 && p[0] == '.')) {
			if (n + (n > 0) + len + 1 > size) {
				*why = "its name is too long";
				return -EINVAL;
			}
			if (n > 0)
				out[n++] = '/';
			memcpy(out + n, p, len);
			n += len;
		}
		p += len;
		while (*p == '/')
			p++;
	}
	out[n] = '\0';
	return 0;
}

/* "blobs/sha256/<64 hex>" -> digest. */
static bool blob_path(const char *path, char ret[DIGEST_STRING_MAX])
{
	static const char prefix[] = "blobs/sha256/";

	return strncmp(path, prefix, sizeof(prefix) - 1) == 0 &&
	       digest_from_hex(path + sizeof(prefix) - 1, ret) == 0;
}

/* An entry of size bytes, needing room for needed bytes in the store. */
static int check_space(struct load_ctx *c, uint64_t size, uint64_t needed, const char *what)
{
	struct statvfs sv;
	char show[96];

	if (size > IMAGE_BLOB_MAX_SIZE)
		return cove_error_set(c->err, EFBIG,
				      "'%s' in the archive is %llu bytes, more than %llu",
				      str_shown(what, show), (unsigned long long)size,
				      (unsigned long long)IMAGE_BLOB_MAX_SIZE);
	if (statvfs(store_root(c->s), &sv) == 0 && needed > (uint64_t)sv.f_bavail * sv.f_frsize)
		return cove_error_set(c->err, ENOSPC,
				      "'%s' in the archive is %llu bytes, and '%s' has only %llu "
				      "bytes free",
				      str_shown(what, show), (unsigned long long)size, store_root(c->s),
				      (unsigned long long)sv.f_bavail * sv.f_frsize);
	return 0;
}

/* ---- load: reading entries --------------------------------------------------------------- */

/* Where an entry's bytes come from: the tar being read, or a file of a layout directory. */
struct src {
	struct archive *a;
	int fd;
};

static ssize_t src_read(struct load_ctx *c, struct src *x, void *buf, size_t n, const char *what)
{
	char show[96];

	if (x->a) {
		la_ssize_t r = archive_read_data(x->a, buf, n);

		if (r < 0)
			return cove_error_set(c->err, archive_read_code(x->a),
					      "the archive is truncated or corrupt at '%s': %s",
					      str_shown(what, show), archive_msg(x->a));
		return r;
	}
	for (;;) {
		ssize_t r = read(x->fd, buf, n);

		if (r >= 0)
			return r;
		if (errno != EINTR)
			return cove_error_set(c->err, errno, "unable to read '%s': %m",
					      str_shown(what, show));
	}
}

/* Read up to len bytes, fewer only at the end. */
static ssize_t src_read_full(struct load_ctx *c, struct src *x, void *buf, size_t len,
			     const char *what)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = src_read(c, x, (uint8_t *)buf + got, len - got, what);

		if (n < 0)
			return n;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static int truncated(struct load_ctx *c, const char *what, uint64_t got, uint64_t size)
{
	char show[96];

	return cove_error_set(c->err, EBADMSG,
			      "the archive is truncated: '%s' has %llu of its %llu bytes",
			      str_shown(what, show), (unsigned long long)got, (unsigned long long)size);
}

/* A small file (at most max bytes) into a NUL-terminated buffer. */
static int read_small(struct load_ctx *c, struct src *x, uint64_t size, size_t max,
		      const char *what, char **ret)
{
	_cleanup_free_ char *data = NULL;
	char show[96];
	ssize_t n;

	if (size > max)
		return cove_error_set(c->err, EFBIG,
				      "'%s' in the archive is %llu bytes, more than %zu",
				      str_shown(what, show), (unsigned long long)size, max);
	data = malloc((size_t)size + 1);
	if (!data)
		return cove_error_set(c->err, ENOMEM, "out of memory");
	n = src_read_full(c, x, data, (size_t)size, what);
	if (n < 0)
		return (int)n;
	if ((uint64_t)n != size)
		return truncated(c, what, (uint64_t)n, size);
	data[size] = '\0';
	*ret = TAKE_PTR(data);
	return 0;
}

/* Copy size bytes (head_len of them already read into head) into the store as the blob
 * digest, which the store verifies. */
static int stream_blob(struct load_ctx *c, struct src *x, const char *digest, uint64_t size,
		       const void *head, size_t head_len, const char *what)
{
	_cleanup_store_blob_writer_ struct store_blob_writer *w = NULL;
	uint64_t total = head_len;
	char show[96];
	int r;

	if (store_blob_has(c->s, digest))
		return 0;
	r = check_space(c, size, size, what);
	if (r < 0)
		return r;
	r = store_blob_writer_new(c->s, digest, size, &w, c->err);
	if (r < 0)
		return r;
	if (store_blob_writer_offset(w) > 0) {
		/* a partial download of the same blob: this copy starts at 0 */
		store_blob_writer_discard(TAKE_PTR(w));
		r = store_blob_writer_new(c->s, digest, size, &w, c->err);
		if (r < 0)
			return r;
	}
	if (head_len && (r = store_blob_write(w, head, head_len, c->err)) < 0)
		goto fail;
	for (;;) {
		ssize_t n = src_read(c, x, c->buf, COPY_CHUNK, what);

		if (n < 0) {
			r = (int)n;
			goto discard;
		}
		if (n == 0)
			break;
		total += (uint64_t)n;
		r = store_blob_write(w, c->buf, (size_t)n, c->err);
		if (r < 0)
			goto fail;
	}
	if (total != size) {
		r = truncated(c, what, total, size);
		goto discard;
	}
	r = store_blob_commit(w, c->err);
	if (r < 0)
		goto fail;
	return 0;
fail:
	cove_error_prefix(c->err, "'%s' in the archive", str_shown(what, show));
discard:
	/* an archive is not resumable: keep no partial */
	store_blob_writer_discard(TAKE_PTR(w));
	return r;
}

static int add_file(struct load_ctx *c, const char *path, const char *digest, uint64_t size,
		    char *data)
{
	char *p;

	if (c->n_files == c->cap_files) {
		size_t cap = c->cap_files ? c->cap_files * 2 : 64;
		void *v = reallocarray(c->files, cap, sizeof(*c->files));

		if (!v)
			return cove_error_set(c->err, ENOMEM, "out of memory");
		c->files = v;
		c->cap_files = cap;
	}
	c->names_used += strlen(path) + 1;
	if (c->names_used > NAMES_MAX)
		return cove_error_set(c->err, E2BIG,
				      "the archive's entry names are more than %u bytes in all",
				      NAMES_MAX);
	p = strdup(path);
	if (!p)
		return cove_error_set(c->err, ENOMEM, "out of memory");
	c->files[c->n_files] = (struct load_file){ .path = p, .size = size, .data = data };
	(void)str_copy(c->files[c->n_files].digest, DIGEST_STRING_MAX, digest);
	c->n_files++;
	return 0;
}

/* The diff id manifest.json and an already seen config give the layer at path, if any. */
static const char *docker_expected(struct load_ctx *c, const char *path)
{
	for (size_t i = 0; i < c->n_dm; i++) {
		const struct docker_entry *e = &c->dm[i];

		for (size_t j = 0; e->cfg && j < e->n_layers && j < e->cfg->n_diff_ids; j++)
			if (strcmp(e->layers[j], path) == 0)
				return e->cfg->diff_ids[j];
	}
	return NULL;
}

/* A file now known: if it is a config of manifest.json, parse it early (errors are
 * reported at the end, when the image is made). */
static void docker_note_config(struct load_ctx *c, const struct load_file *f)
{
	for (size_t i = 0; f->data && i < c->n_dm; i++)
		if (!c->dm[i].cfg && strcmp(c->dm[i].config, f->path) == 0)
			(void)image_config_parse(f->data, (size_t)f->size, &c->dm[i].cfg, NULL);
}

/* gzip, zstd, xz, bzip2 */
static bool looks_compressed(const uint8_t *p, size_t n)
{
	static const uint8_t zstd[4] = { 0x28, 0xb5, 0x2f, 0xfd };
	static const uint8_t xz[6] = { 0xfd, '7', 'z', 'X', 'Z', 0 };

	return (n >= 2 && p[0] == 0x1f && p[1] == 0x8b) || (n >= 4 && memcmp(p, zstd, 4) == 0) ||
	       (n >= 6 && memcmp(p, xz, 6) == 0) || (n >= 3 && memcmp(p, "BZh", 3) == 0);
}

/* An unnamed temp file next to the store's blobs. */
static int open_temp(struct load_ctx *c)
{
	char dir[PATH_MAX], path[PATH_MAX + 32];
	int fd;

	if (str_printf(dir, sizeof(dir), "%s/blobs/tmp", store_root(c->s)) < 0)
		return cove_error_set(c->err, ENAMETOOLONG, "store path too long");
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	(void)str_printf(path, sizeof(path), "%s/load.XXXXXX.tmp", dir);
	fd = mkostemps(path, 4, O_CLOEXEC);
	if (fd < 0)
		return cove_error_set(c->err, errno, "unable to create a temp file in '%s': %m",
				      dir);
	(void)unlink(path);
	return fd;
}

/* Copy a temp file (hashed as digest) into the store. */
static int store_from_temp(struct load_ctx *c, int fd, const char *digest, uint64_t size)
{
	_cleanup_store_blob_writer_ struct store_blob_writer *w = NULL;
	uint64_t off = 0;
	int r;

	if (store_blob_has(c->s, digest))
		return 0;
	r = store_blob_writer_new(c->s, digest, size, &w, c->err);
	if (r < 0)
		return r;
	if (store_blob_writer_offset(w) > 0) {
		store_blob_writer_discard(TAKE_PTR(w));
		r = store_blob_writer_new(c->s, digest, size, &w, c->err);
		if (r < 0)
			return r;
	}
	while (off < size) {
		ssize_t n = pread(fd, c->buf, COPY_CHUNK, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = cove_error_set(c->err, n < 0 ? errno : EIO,
					   "unable to read a temp file: %s",
					   n < 0 ? strerror(errno) : "it shrank");
			store_blob_writer_discard(TAKE_PTR(w));
			return r;
		}
		r = store_blob_write(w, c->buf, (size_t)n, c->err);
		if (r < 0) {
			store_blob_writer_discard(TAKE_PTR(w));
			return r;
		}
		off += (uint64_t)n;
	}
	return store_blob_commit(w, c->err);
}

/*
 * A file of a docker archive whose digest nobody told us: hash it. Small files stay in memory
 * (configs, legacy json) until manifest.json says which are needed; big ones are layers: when
 * manifest.json and the config came first and the file is a plain tar, the config's diff id
 * says its digest and it streams into the store; otherwise it is hashed into a temp file
 * first and copied into the store after.
 */
static int take_file(struct load_ctx *c, struct src *x, const char *path, uint64_t size)
{
	_cleanup_free_ char *data = NULL;
	_cleanup_digest_hasher_ struct digest_hasher *h = NULL;
	_cleanup_close_ int tmp = -1;
	char digest[DIGEST_STRING_MAX];
	const char *expected;
	uint64_t total;
	ssize_t n;
	int r;

	if (size <= IMAGE_ARCHIVE_SMALL_MAX) {
		r = read_small(c, x, size, IMAGE_ARCHIVE_SMALL_MAX, path, &data);
		if (r < 0)
			return r;
		r = digest_buffer(data, (size_t)size, digest);
		if (r < 0)
			return cove_error_set(c->err, r, "unable to hash '%s'", path);
		if (c->mem_used + size > IMAGE_ARCHIVE_MEMORY_MAX) {
			r = store_blob_put(c->s, data, (size_t)size, digest, NULL, c->err);
			if (r < 0)
				return r;
			return add_file(c, path, digest, size, NULL);
		}
		c->mem_used += (size_t)size;
		r = add_file(c, path, digest, size, data);
		if (r < 0)
			return r;
		data = NULL; /* owned by c->files now */
		docker_note_config(c, &c->files[c->n_files - 1]);
		return 0;
	}

	n = src_read_full(c, x, c->buf, COPY_CHUNK, path);
	if (n < 0)
		return (int)n;
	expected = docker_expected(c, path);
	if (expected && !looks_compressed(c->buf, (size_t)n)) {
		/* stream_blob reads on into c->buf: keep the head elsewhere */
		_cleanup_free_ uint8_t *head = malloc((size_t)n);

		if (!head)
			return cove_error_set(c->err, ENOMEM, "out of memory");
		memcpy(head, c->buf, (size_t)n);
		r = stream_blob(c, x, expected, size, head, (size_t)n, path);
		return r < 0 ? r : add_file(c, path, expected, size, NULL);
	}

	/* the temp file and the blob exist together for a moment */
	r = check_space(c, size, size > IMAGE_BLOB_MAX_SIZE ? size : 2 * size, path);
	if (r < 0)
		return r;
	tmp = open_temp(c);
	if (tmp < 0)
		return tmp;
	if (digest_hasher_new(&h) < 0)
		return cove_error_set(c->err, ENOMEM, "out of memory");
	for (total = 0; n > 0; n = src_read(c, x, c->buf, COPY_CHUNK, path)) {
		if (total + (uint64_t)n > size)
			return cove_error_set(c->err, EBADMSG,
					      "'%s' is longer than its header says", path);
		digest_hasher_update(h, c->buf, (size_t)n);
		r = write_full(tmp, c->buf, (size_t)n);
		if (r < 0)
			return cove_error_set(c->err, r, "unable to write a temp file: %s",
					      strerror(-r));
		total += (uint64_t)n;
	}
	if (n < 0)
		return (int)n;
	if (total != size)
		return truncated(c, path, total, size);
	digest_hasher_final(h, digest);
	r = store_from_temp(c, tmp, digest, size);
	return r < 0 ? r : add_file(c, path, digest, size, NULL);
}

static int docker_parse(const char *data, size_t len, struct docker_entry **ret, size_t *ret_n,
			struct cove_error *err);

static int take_named(struct load_ctx *c, struct src *x, const char *path, uint64_t size,
		      char **slot, size_t *slot_len, size_t max)
{
	char *data = NULL;
	int r;

	if (*slot)
		return cove_error_set(c->err, EINVAL, "the archive has more than one '%s'", path);
	r = read_small(c, x, size, max, path, &data);
	if (r < 0)
		return r;
	*slot = data;
	*slot_len = (size_t)size;
	return 0;
}

static int load_entry(struct load_ctx *c, struct archive *a, struct archive_entry *e)
{
	struct src x = { .a = a, .fd = -1 };
	const char *raw = archive_entry_pathname(e), *why = NULL;
	char path[ENTRY_PATH_MAX], digest[DIGEST_STRING_MAX], show[96];
	uint64_t size;
	int r;

	if (entry_path(raw, path, sizeof(path), &why) < 0)
		return cove_error_set(c->err, EINVAL, "refusing archive entry '%s': %s",
				      str_shown(raw ? raw : "", show), why);
	if (archive_entry_hardlink(e))
		return cove_error_set(c->err, EINVAL,
				      "refusing archive entry '%s': it is a hard link",
				      str_shown(raw, show));
	switch (archive_entry_filetype(e)) {
	case AE_IFDIR:
		return 0;
	case AE_IFREG:
		break;
	case AE_IFLNK:
		/* docker and skopeo add <v1-id>/layer.tar -> ../<diff-id>.tar for old loaders:
		 * such links are recorded, never followed, and refused if manifest.json names
		 * them; anywhere else a link is refused at once */
		if (c->have_layout || strncmp(path, "blobs/", 6) == 0 ||
		    strcmp(path, "oci-layout") == 0 || strcmp(path, "index.json") == 0 ||
		    strcmp(path, "manifest.json") == 0 || strcmp(path, "repositories") == 0)
			return cove_error_set(c->err, EINVAL,
					      "refusing archive entry '%s': it is a symbolic link",
					      str_shown(raw, show));
		r = add_file(c, path, "", 0, NULL);
		if (r == 0)
			c->files[c->n_files - 1].symlink = true;
		return r;
	default:
		return cove_error_set(c->err, EINVAL,
				      "refusing archive entry '%s': it is not a regular file",
				      str_shown(raw, show));
	}
	if (!archive_entry_size_is_set(e) || archive_entry_size(e) < 0)
		return cove_error_set(c->err, EINVAL, "archive entry '%s' has no size",
				      str_shown(raw, show));
	size = (uint64_t)archive_entry_size(e);

	if (strcmp(path, "oci-layout") == 0) {
		c->have_layout = true;
		return take_named(c, &x, path, size, &c->layout, &c->layout_len, LAYOUT_FILE_MAX);
	}
	if (strcmp(path, "index.json") == 0)
		return take_named(c, &x, path, size, &c->index, &c->index_len, MANIFEST_MAX_SIZE);
	if (strcmp(path, "manifest.json") == 0) {
		r = take_named(c, &x, path, size, &c->manifest, &c->manifest_len,
			       MANIFEST_MAX_SIZE);
		if (r < 0)
			return r;
		r = docker_parse(c->manifest, c->manifest_len, &c->dm, &c->n_dm, &c->dm_err);
		for (size_t i = 0; r == 0 && i < c->n_files; i++)
			docker_note_config(c, &c->files[i]);
		return 0;
	}
	if (strcmp(path, "repositories") == 0)
		return 0; /* docker's legacy names: manifest.json's RepoTags say the same */
	if (blob_path(path, digest)) {
		r = stream_blob(c, &x, digest, size, NULL, 0, path);
		return r < 0 ? r : add_file(c, path, digest, size, NULL);
	}
	if (strncmp(path, "blobs/", 6) == 0 || c->have_layout)
		return 0; /* other algorithms, or extra files of an OCI layout */
	return take_file(c, &x, path, size);
}

static int load_tar(struct load_ctx *c, int fd)
{
	_cleanup_archive_read_ struct archive *a = NULL;
	struct archive_entry *e;
	int r;

	r = archive_dl_load(c->err);
	if (r < 0)
		return r;
	a = archive_read_new();
	if (!a)
		return cove_error_set(c->err, ENOMEM, "out of memory");
	if (ext4_layer_filters(a) != ARCHIVE_OK ||
	    archive_read_support_format_tar(a) != ARCHIVE_OK)
		return cove_error_set(c->err, archive_code(a), "unable to read the archive: %s",
				      archive_msg(a));
	if (archive_read_open_fd(a, fd, COPY_CHUNK) != ARCHIVE_OK) {
		if (archive_read_code(a) == EBADMSG)
			return cove_error_set(c->err, EINVAL, "not a tar archive: %s",
					      archive_msg(a));
		return cove_error_set(c->err, archive_read_code(a),
				      "unable to read the archive: %s", archive_msg(a));
	}
	for (;;) {
		r = archive_read_next_header(a, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN && c->n_entries == 0 && archive_read_code(a) == EBADMSG)
			return cove_error_set(c->err, EINVAL, "not a tar archive: %s",
					      archive_msg(a));
		if (r < ARCHIVE_WARN)
			return cove_error_set(c->err, archive_read_code(a),
					      "the archive is truncated or corrupt: %s",
					      archive_msg(a));
		if (++c->n_entries > IMAGE_ARCHIVE_MAX_ENTRIES)
			return cove_error_set(c->err, E2BIG, "the archive has more than %u entries",
					      IMAGE_ARCHIVE_MAX_ENTRIES);
		r = load_entry(c, a, e);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- load: docker archives --------------------------------------------------------------- */

/* An array of at most max strings, each an archive path (normalize) or a name. */
static int dm_strings(json_t *v, size_t i, const char *key, size_t max, bool paths, char ***ret,
		      size_t *ret_n, struct cove_error *err)
{
	char **out;
	size_t n;

	if (!v || json_is_null(v)) {
		*ret = NULL;
		*ret_n = 0;
		return 0;
	}
	if (!json_is_array(v))
		return cove_error_set(err, EINVAL,
				      "invalid manifest.json: [%zu].%s is not an array", i, key);
	n = json_array_size(v);
	if (n > max)
		return cove_error_set(err, E2BIG,
				      "invalid manifest.json: [%zu].%s has %zu entries, "
				      "at most %zu are supported",
				      i, key, n, max);
	out = calloc(n ? n : 1, sizeof(*out));
	if (!out)
		return cove_error_set(err, ENOMEM, "out of memory");
	for (size_t j = 0; j < n; j++) {
		const char *s = json_string_value(json_array_get(v, j)), *why;
		char path[ENTRY_PATH_MAX];

		if (!s || strlen(s) >= ENTRY_PATH_MAX ||
		    (paths && entry_path(s, path, sizeof(path), &why) < 0)) {
			strv_free(out, j);
			return cove_error_set(
				err, EINVAL, "invalid manifest.json: [%zu].%s has an invalid entry",
				i, key);
		}
		out[j] = strdup(paths ? path : s);
		if (!out[j]) {
			strv_free(out, j);
			return cove_error_set(err, ENOMEM, "out of memory");
		}
	}
	*ret = out;
	*ret_n = n;
	return 0;
}

static int docker_parse(const char *data, size_t len, struct docker_entry **ret, size_t *ret_n,
			struct cove_error *err)
{
	_cleanup_json_ json_t *root = NULL;
	struct docker_entry *dm;
	json_error_t jerr;
	size_t n;
	int r;

	root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return cove_error_set(err, EINVAL, "invalid manifest.json: %s (line %d)", jerr.text,
				      jerr.line);
	if (!json_is_array(root))
		return cove_error_set(err, EINVAL, "invalid manifest.json: it is not an array");
	n = json_array_size(root);
	if (n == 0)
		return cove_error_set(err, EINVAL, "manifest.json lists no images");
	if (n > IMAGE_ARCHIVE_MAX_IMAGES)
		return cove_error_set(err, E2BIG,
				      "manifest.json lists %zu images, at most %u are "
				      "supported",
				      n, IMAGE_ARCHIVE_MAX_IMAGES);
	dm = calloc(n, sizeof(*dm));
	if (!dm)
		return cove_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_array_get(root, i);
		const char *cfg = json_string_value(json_object_get(o, "Config")), *why;
		char path[ENTRY_PATH_MAX];

		if (!json_is_object(o)) {
			r = cove_error_set(err, EINVAL,
					   "invalid manifest.json: [%zu] is not an object", i);
			goto fail;
		}
		if (!cfg || entry_path(cfg, path, sizeof(path), &why) < 0) {
			r = cove_error_set(
				err, EINVAL,
				"invalid manifest.json: [%zu].Config is missing or invalid", i);
			goto fail;
		}
		dm[i].config = strdup(path);
		if (!dm[i].config) {
			r = cove_error_set(err, ENOMEM, "out of memory");
			goto fail;
		}
		r = dm_strings(json_object_get(o, "Layers"), i, "Layers", MANIFEST_MAX_LAYERS, true,
			       &dm[i].layers, &dm[i].n_layers, err);
		if (r < 0)
			goto fail;
		r = dm_strings(json_object_get(o, "RepoTags"), i, "RepoTags", TAGS_MAX, false,
			       &dm[i].tags, &dm[i].n_tags, err);
		if (r < 0)
			goto fail;
	}
	*ret = dm;
	*ret_n = n;
	return 0;
fail:
	docker_entries_free(dm, n);
	return r;
}

static int file_cmp(const void *a, const void *b)
{
	const struct load_file *x = a, *y = b;

	return strcmp(x->path, y->path);
}

/* A regular file of the archive by path (files sorted). */
static int find_file(struct load_ctx *c, const char *path, struct load_file **ret)
{
	struct load_file key = { .path = (char *)path }, *f;
	char show[96];

	f = bsearch(&key, c->files, c->n_files, sizeof(*c->files), file_cmp);
	if (!f)
		return cove_error_set(c->err, ENOENT,
				      "manifest.json names '%s', which is not in the archive",
				      str_shown(path, show));
	if (f->symlink)
		return cove_error_set(c->err, EINVAL,
				      "refusing archive entry '%s': it is a symbolic link "
				      "(manifest.json names it)",
				      str_shown(path, show));
	*ret = f;
	return 0;
}

static int load_image_add(struct load_ctx *c, const char *top, enum image_media_type top_type,
			  const char *platform_digest, struct image_manifest **m, const char *name);

/* Make the OCI manifest of one manifest.json entry; the config is stored byte for byte. */
static int docker_image(struct load_ctx *c, struct docker_entry *e)
{
	_cleanup_free_ char *cdata_store = NULL, *text = NULL;
	_cleanup_image_config_ struct image_config *cfg = NULL;
	_cleanup_image_manifest_ struct image_manifest *m = NULL;
	_cleanup_json_ json_t *mj = NULL;
	struct load_file *cf;
	char mdigest[DIGEST_STRING_MAX], show[96];
	const char *cdata;
	json_t *layers;
	size_t clen;
	int r;

	r = find_file(c, e->config, &cf);
	if (r < 0)
		return r;
	if (cf->data) {
		cdata = cf->data;
		clen = (size_t)cf->size;
	} else {
		r = store_blob_read_small(c->s, cf->digest, IMAGE_CONFIG_MAX_SIZE, &cdata_store,
					  &clen, c->err);
		if (r < 0)
			return r;
		cdata = cdata_store;
	}
	r = image_config_parse(cdata, clen, &cfg, c->err);
	if (r < 0)
		return cove_error_prefix(c->err, "'%s'", str_shown(e->config, show));
	if (cfg->n_diff_ids != e->n_layers)
		return cove_error_set(c->err, EINVAL,
				      "image config '%s' has %zu diff ids, but manifest.json lists "
				      "%zu layers",
				      str_shown(e->config, show), cfg->n_diff_ids, e->n_layers);
	if (cf->data && (r = store_blob_put(c->s, cdata, clen, cf->digest, NULL, c->err)) < 0)
		return r;

	mj = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:[]}", "schemaVersion", 2, "mediaType",
		       MEDIA_TYPE_OCI_MANIFEST, "config", "mediaType", MEDIA_TYPE_OCI_CONFIG,
		       "digest", cf->digest, "size", (json_int_t)clen, "layers");
	if (!mj)
		return cove_error_set(c->err, ENOMEM, "out of memory");
	layers = json_object_get(mj, "layers");
	for (size_t i = 0; i < e->n_layers; i++) {
		struct load_file *lf;
		const char *mt = MEDIA_TYPE_LAYER_TAR;

		r = find_file(c, e->layers[i], &lf);
		if (r < 0)
			return r;
		if (lf->data && (r = store_blob_put(c->s, lf->data, (size_t)lf->size, lf->digest,
						    NULL, c->err)) < 0)
			return r;
		if (strcmp(lf->digest, cfg->diff_ids[i]) != 0) {
			/* a compressed layer.tar (docker load takes those too) */
			struct cove_error ignore = { 0 };
			char got[DIGEST_STRING_MAX];
			uint64_t usize;

			r = blob_compression(c->s, lf->digest, &mt, c->err);
			if (r < 0)
				return r;
			if (strcmp(mt, MEDIA_TYPE_LAYER_TAR) == 0 ||
			    blob_uncompressed(c->s, lf->digest, NULL, 0, got, &usize, &ignore) <
				    0 ||
			    strcmp(got, cfg->diff_ids[i]) != 0)
				return cove_error_set(c->err, EBADMSG,
						      "layer '%s' does not match diff id %s of its "
						      "image config",
						      str_shown(e->layers[i], show), cfg->diff_ids[i]);
		}
		if (json_array_append_new(layers,
					  json_pack("{s:s, s:s, s:I}", "mediaType", mt, "digest",
						    lf->digest, "size", (json_int_t)lf->size)) < 0)
			return cove_error_set(c->err, ENOMEM, "out of memory");
	}
	text = json_dumps(mj, JSON_COMPACT);
	if (!text)
		return cove_error_set(c->err, ENOMEM, "out of memory");
	r = store_blob_put(c->s, text, strlen(text), NULL, mdigest, c->err);
	if (r < 0)
		return r;
	r = image_manifest_parse(text, strlen(text), MEDIA_TYPE_OCI_MANIFEST, &m, c->err);
	if (r < 0)
		return r;

	for (size_t i = 0; i < e->n_tags; i++) {
		struct reference ref;
		char name[STORE_REFERENCE_MAX];

		r = reference_parse(e->tags[i], &ref, c->err);
		if (r < 0)
			return cove_error_prefix(c->err, "manifest.json");
		if (reference_format(&ref, name, sizeof(name)) < 0)
			return cove_error_set(c->err, ENAMETOOLONG, "image name '%s' is too long",
					      str_shown(e->tags[i], show));
		/* the first name takes m; the others find the image made */
		r = load_image_add(c, mdigest, IMAGE_MEDIA_TYPE_OCI_MANIFEST, mdigest, &m, name);
		if (r < 0)
			return r;
	}
	if (e->n_tags == 0)
		return load_image_add(c, mdigest, IMAGE_MEDIA_TYPE_OCI_MANIFEST, mdigest, &m, NULL);
	return 0;
}

static int load_docker(struct load_ctx *c)
{
	int r;

	if (c->dm_err.code)
		return cove_error_set(c->err, c->dm_err.code, "%s", c->dm_err.msg);
	if (c->n_files)
		qsort(c->files, c->n_files, sizeof(*c->files), file_cmp);
	for (size_t i = 1; i < c->n_files; i++)
		if (strcmp(c->files[i].path, c->files[i - 1].path) == 0) {
			char show[96];

			return cove_error_set(c->err, EINVAL, "the archive has '%s' twice",
					      str_shown(c->files[i].path, show));
		}
	for (size_t i = 0; i < c->n_dm; i++) {
		r = docker_image(c, &c->dm[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- load: OCI layouts ------------------------------------------------------------------- */

/* In a layout directory, copy the blob into the store; then check it is there, as big as its
 * descriptor says. */
static int ensure_blob(struct load_ctx *c, const char *digest, uint64_t size, const char *what)
{
	struct stat st;
	int r;

	if (c->dir_fd >= 0 && !store_blob_has(c->s, digest)) {
		_cleanup_close_ int fd = -1;
		struct src x = { .fd = -1 };
		char path[128];

		(void)str_printf(path, sizeof(path), "blobs/sha256/%s", digest_hex(digest));
		if (c->blobs_fd >= 0)
			fd = openat(c->blobs_fd, digest_hex(digest),
				    O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
		if (fd < 0)
			return cove_error_set(c->err,
					      errno == ENOENT || c->blobs_fd < 0 ? ENOENT : errno,
					      "%s %s is not in the OCI layout", what, digest);
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
			return cove_error_set(c->err, EINVAL,
					      "'%s' in the OCI layout is not a "
					      "regular file",
					      path);
		x.fd = fd;
		r = stream_blob(c, &x, digest, size, NULL, 0, path);
		if (r < 0)
			return r;
	}
	{
		_cleanup_close_ int fd = store_blob_open(c->s, digest);

		if (fd < 0)
			return cove_error_set(c->err, fd == -ENOENT ? ENOENT : -fd,
					      "%s %s is not in the archive", what, digest);
		if (fstat(fd, &st) < 0)
			return cove_error_set(c->err, errno, "unable to stat blob %s: %m", digest);
		if ((uint64_t)st.st_size != size)
			return cove_error_set(c->err, EBADMSG,
					      "%s %s is %lld bytes, but its descriptor says %llu",
					      what, digest, (long long)st.st_size,
					      (unsigned long long)size);
	}
	return 0;
}

/* The platform manifest of an index entry: config and layers present, config consistent. */
static int oci_manifest(struct load_ctx *c, const struct image_descriptor *d,
			struct image_manifest **ret)
{
	_cleanup_free_ char *data = NULL, *cdata = NULL;
	_cleanup_image_manifest_ struct image_manifest *m = NULL;
	_cleanup_image_config_ struct image_config *cfg = NULL;
	size_t len, clen;
	int r;

	r = ensure_blob(c, d->digest, d->size, "manifest");
	if (r < 0)
		return r;
	r = store_blob_read_small(c->s, d->digest, MANIFEST_MAX_SIZE, &data, &len, c->err);
	if (r < 0)
		return r;
	r = image_manifest_parse(data, len, d->media_type, &m, c->err);
	if (r < 0)
		return cove_error_prefix(c->err, "manifest %s", d->digest);
	r = ensure_blob(c, m->config.digest, m->config.size, "image config");
	if (r < 0)
		return r;
	r = store_blob_read_small(c->s, m->config.digest, IMAGE_CONFIG_MAX_SIZE, &cdata, &clen,
				  c->err);
	if (r < 0)
		return r;
	r = image_config_parse(cdata, clen, &cfg, c->err);
	if (r == 0)
		r = image_config_check_layers(cfg, m, c->err);
	if (r < 0)
		return cove_error_prefix(c->err, "image config %s", m->config.digest);
	for (size_t i = 0; i < m->n_layers; i++) {
		r = ensure_blob(c, m->layers[i].digest, m->layers[i].size, "layer");
		if (r < 0)
			return r;
	}
	*ret = TAKE_PTR(m);
	return 0;
}

/* The name an index.json entry gives: io.containerd.image.name, else ref.name when it is a
 * reference rather than a bare tag. "" when there is none. */
static int oci_entry_name(struct load_ctx *c, json_t *entry, char ret[STORE_REFERENCE_MAX])
{
	json_t *ann = json_object_get(entry, "annotations");
	const char *name = json_string_value(json_object_get(ann, ANN_IMAGE_NAME));
	const char *ref = json_string_value(json_object_get(ann, ANN_REF_NAME));
	struct reference r;
	char show[96];

	ret[0] = '\0';
	if (!name && ref && strpbrk(ref, "/:@"))
		name = ref;
	if (!name)
		return 0;
	if (reference_parse(name, &r, c->err) < 0)
		return cove_error_prefix(c->err, "index.json");
	if (reference_format(&r, ret, STORE_REFERENCE_MAX) < 0)
		return cove_error_set(c->err, ENAMETOOLONG, "image name '%s' is too long",
				      str_shown(name, show));
	return 0;
}

static int load_oci(struct load_ctx *c)
{
	_cleanup_json_ json_t *layout = NULL, *root = NULL;
	_cleanup_image_index_ struct image_index *idx = NULL;
	const char *version;
	json_t *entries;
	int r;

	layout = json_loadb(c->layout, c->layout_len, JSON_REJECT_DUPLICATES, NULL);
	version = json_string_value(json_object_get(layout, "imageLayoutVersion"));
	if (!version || strncmp(version, "1.", 2) != 0)
		return cove_error_set(c->err, EINVAL,
				      "invalid oci-layout file: it does not say "
				      "imageLayoutVersion 1.x");
	r = image_index_parse(c->index, c->index_len, NULL, &idx, c->err);
	if (r < 0)
		return cove_error_prefix(c->err, "index.json");
	root = json_loadb(c->index, c->index_len, JSON_REJECT_DUPLICATES, NULL);
	entries = json_object_get(root, "manifests");
	if (json_array_size(entries) != idx->n_manifests)
		return cove_error_set(c->err, EINVAL, "invalid index.json");

	for (size_t i = 0; i < idx->n_manifests; i++) {
		const struct image_descriptor *d = &idx->manifests[i];
		_cleanup_image_manifest_ struct image_manifest *m = NULL;
		char name[STORE_REFERENCE_MAX];
		enum image_media_type t;
		const char *platform_digest = d->digest;

		if (image_media_type_from_string(d->media_type, &t, NULL) < 0)
			continue; /* not an image (an artifact, a signature) */
		r = oci_entry_name(c, json_array_get(entries, i), name);
		if (r < 0)
			return r;
		if (image_media_type_is_index(t)) {
			_cleanup_free_ char *data = NULL;
			_cleanup_image_index_ struct image_index *sub = NULL;
			const struct image_descriptor *pd;
			size_t len;

			r = ensure_blob(c, d->digest, d->size, "image index");
			if (r < 0)
				return r;
			r = store_blob_read_small(c->s, d->digest, MANIFEST_MAX_SIZE, &data, &len,
						  c->err);
			if (r < 0)
				return r;
			r = image_index_parse(data, len, d->media_type, &sub, c->err);
			if (r == 0)
				r = image_index_select(sub, c->platform, &pd, c->err);
			if (r < 0)
				return cove_error_prefix(c->err, "image index %s", d->digest);
			r = oci_manifest(c, pd, &m);
			platform_digest = pd->digest;
			if (r == 0)
				r = load_image_add(c, d->digest, t, platform_digest, &m,
						   name[0] ? name : NULL);
		} else {
			r = oci_manifest(c, d, &m);
			if (r == 0)
				r = load_image_add(c, d->digest, t, platform_digest, &m,
						   name[0] ? name : NULL);
		}
		if (r < 0)
			return r;
	}
	return 0;
}

/* An OCI layout directory: oci-layout and index.json, then the blobs they reach. */
static int load_dir_files(struct load_ctx *c)
{
	static const struct {
		const char *name;
		size_t max;
	} files[] = { { "oci-layout", LAYOUT_FILE_MAX }, { "index.json", MANIFEST_MAX_SIZE } };
	char **slots[] = { &c->layout, &c->index };
	size_t *lens[] = { &c->layout_len, &c->index_len };
	int r;

	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		_cleanup_close_ int fd = openat(c->dir_fd, files[i].name,
						O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
		struct src x = { .fd = fd };
		struct stat st;

		if (fd < 0 && errno == ENOENT) {
			struct stat ignore;

			if (fstatat(c->dir_fd, "manifest.json", &ignore, AT_SYMLINK_NOFOLLOW) == 0)
				return cove_error_set(
					c->err, EOPNOTSUPP,
					"this directory looks like an unpacked docker "
					"archive; only OCI layout directories load, "
					"tar it first");
			return cove_error_set(c->err, ENOENT,
					      "not an OCI image layout: it has no %s file",
					      files[i].name);
		}
		if (fd < 0)
			return cove_error_set(c->err, errno, "unable to open '%s': %m",
					      files[i].name);
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
			return cove_error_set(c->err, EINVAL, "'%s' is not a regular file",
					      files[i].name);
		r = read_small(c, &x, (uint64_t)st.st_size, files[i].max, files[i].name, slots[i]);
		if (r < 0)
			return r;
		*lens[i] = (size_t)st.st_size;
	}
	c->have_layout = true;
	{
		_cleanup_close_ int blobs =
			openat(c->dir_fd, "blobs", O_RDONLY | O_CLOEXEC | O_DIRECTORY | O_NOFOLLOW);

		if (blobs >= 0)
			c->blobs_fd = openat(blobs, "sha256",
					     O_RDONLY | O_CLOEXEC | O_DIRECTORY | O_NOFOLLOW);
	}
	return 0;
}

/* ---- load: making the images ------------------------------------------------------------- */

static int load_image_add(struct load_ctx *c, const char *top, enum image_media_type top_type,
			  const char *platform_digest, struct image_manifest **m, const char *name)
{
	struct load_image *li = NULL;

	for (size_t i = 0; i < c->n_imgs && !li; i++)
		if (strcmp(c->imgs[i].top_digest, top) == 0)
			li = &c->imgs[i];
	if (!li) {
		void *v;

		if (!*m)
			return cove_error_set(c->err, EINVAL, "image %s has no manifest", top);
		if (c->n_imgs >= IMAGE_ARCHIVE_MAX_IMAGES)
			return cove_error_set(c->err, E2BIG, "the archive has more than %u images",
					      IMAGE_ARCHIVE_MAX_IMAGES);
		v = reallocarray(c->imgs, c->n_imgs + 1, sizeof(*c->imgs));
		if (!v)
			return cove_error_set(c->err, ENOMEM, "out of memory");
		c->imgs = v;
		li = &c->imgs[c->n_imgs++];
		*li = (struct load_image){ .top_type = top_type, .m = TAKE_PTR(*m) };
		memcpy(li->top_digest, top, DIGEST_STRING_MAX);
		memcpy(li->platform_digest, platform_digest, DIGEST_STRING_MAX);
	}
	if (!name)
		return 0;
	for (size_t i = 0; i < li->n_names; i++)
		if (strcmp(li->names[i], name) == 0)
			return 0;
	{
		char **v = reallocarray(li->names, li->n_names + 1, sizeof(*v));

		if (!v)
			return cove_error_set(c->err, ENOMEM, "out of memory");
		li->names = v;
		li->names[li->n_names] = strdup(name);
		if (!li->names[li->n_names])
			return cove_error_set(c->err, ENOMEM, "out of memory");
		li->n_names++;
	}
	return 0;
}

struct put_undo {
	char reference[STORE_REFERENCE_MAX];
	bool had_old;
	struct store_image old;
};

static bool manifest_in_store(const struct store_image *all, size_t n, const char *digest)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(all[i].manifest_digest, digest) == 0)
			return true;
	return false;
}

/* Snapshots first, then the store entries; on failure undo both. */
static int load_commit(struct load_ctx *c, struct image_load_result *ret)
{
	_cleanup_free_ bool *created = calloc(c->n_imgs ? c->n_imgs : 1, sizeof(bool));
	_cleanup_free_ struct put_undo *undo = NULL;
	_cleanup_free_ struct store_image *all = NULL;
	struct image_load_result res = { 0 };
	size_t n_undo = 0, n_puts = 0, n_all = 0;
	int r = 0;

	if (!created)
		return cove_error_set(c->err, ENOMEM, "out of memory");
	for (size_t i = 0; i < c->n_imgs; i++)
		n_puts += c->imgs[i].n_names ? c->imgs[i].n_names : 1;
	undo = calloc(n_puts, sizeof(*undo));
	res.images = calloc(n_puts, sizeof(*res.images));
	if (!undo || !res.images) {
		r = cove_error_set(c->err, ENOMEM, "out of memory");
		goto fail;
	}
	r = store_image_list(c->s, &all, &n_all, c->err);
	if (r < 0)
		goto fail;

	for (size_t i = 0; i < c->n_imgs; i++) {
		const struct load_image *li = &c->imgs[i];
		char path[PATH_MAX];
		struct stat st;

		r = store_snapshot_path(c->s, li->platform_digest, path, sizeof(path));
		if (r < 0) {
			cove_error_set(c->err, r, "cannot name the snapshot of %s",
				       li->platform_digest);
			goto fail;
		}
		if (stat(path, &st) == 0)
			continue; /* made by an earlier pull or load */
		r = image_write_snapshot(c->s, li->m, NULL, li->platform_digest, c->min_snapshot,
					 c->err);
		if (r < 0) {
			cove_error_prefix(c->err, "image '%s'",
					  li->n_names ? li->names[0] : li->top_digest);
			goto fail;
		}
		created[i] = true;
	}

	for (size_t i = 0; i < c->n_imgs; i++) {
		const struct load_image *li = &c->imgs[i];
		struct store_image img = { .media_type = li->top_type };

		memcpy(img.manifest_digest, li->top_digest, DIGEST_STRING_MAX);
		memcpy(img.config_digest, li->m->config.digest, DIGEST_STRING_MAX);
		r = store_snapshot_name(li->platform_digest, img.snapshot);
		if (r < 0) {
			cove_error_set(c->err, r, "cannot name the snapshot of %s",
				       li->platform_digest);
			goto fail;
		}
		for (size_t j = 0; j < (li->n_names ? li->n_names : 1); j++) {
			struct image_loaded *out = &res.images[res.n];
			struct put_undo *u = &undo[n_undo];
			struct cove_error ignore = { 0 };

			memcpy(out->manifest_digest, li->top_digest, DIGEST_STRING_MAX);
			memcpy(out->config_digest, li->m->config.digest, DIGEST_STRING_MAX);
			out->named = li->n_names > 0;
			(void)str_copy(out->reference, sizeof(out->reference),
				       li->n_names ? li->names[j] : li->top_digest);
			res.n++;
			/* an unnamed image the store already has by another name needs no entry */
			if (!li->n_names && manifest_in_store(all, n_all, li->top_digest))
				continue;
			(void)str_copy(img.reference, sizeof(img.reference), out->reference);
			(void)str_copy(u->reference, sizeof(u->reference), img.reference);
			u->had_old = store_image_get(c->s, img.reference, &u->old, &ignore) == 0;
			r = store_image_put(c->s, &img, c->err);
			if (r < 0)
				goto fail;
			n_undo++;
		}
	}
	*ret = res;
	return 0;

fail:
	while (n_undo-- > 0) {
		struct cove_error ignore = { 0 };

		if (undo[n_undo].had_old)
			(void)store_image_put(c->s, &undo[n_undo].old, &ignore);
		else
			(void)store_image_remove(c->s, undo[n_undo].reference, &ignore);
	}
	for (size_t i = 0; i < c->n_imgs; i++) {
		char path[PATH_MAX];

		if (created[i] &&
		    store_snapshot_path(c->s, c->imgs[i].platform_digest, path, sizeof(path)) == 0)
			(void)unlink(path);
	}
	free(res.images);
	return r;
}

static int load_finish(struct load_ctx *c, struct image_load_result *ret)
{
	int r;

	if (c->have_layout && c->index)
		r = load_oci(c);
	else if (c->have_layout)
		r = cove_error_set(c->err, EINVAL, "invalid OCI archive: it has no index.json");
	else if (c->manifest)
		r = load_docker(c);
	else
		r = cove_error_set(c->err, EINVAL,
				   "not an image archive: it has neither an oci-layout nor a "
				   "manifest.json file");
	if (r < 0)
		return r;
	if (c->n_imgs == 0)
		return cove_error_set(c->err, ENOENT, "the archive holds no container images");
	return load_commit(c, ret);
}

static int load_run(struct store *s, int fd, bool dir, const struct image_load_opts *o,
		    struct image_load_result *ret, struct cove_error *err)
{
	struct load_ctx c = {
		.s = s,
		.err = err,
		.platform = o ? o->platform : NULL,
		.min_snapshot = o ? o->min_snapshot_size : 0,
		.dir_fd = dir ? fd : -1,
		.blobs_fd = -1,
	};
	int r;

	c.buf = malloc(COPY_CHUNK);
	if (!c.buf)
		return cove_error_set(err, ENOMEM, "out of memory");
	r = store_pin(s, err);
	if (r == 0)
		r = dir ? load_dir_files(&c) : load_tar(&c, fd);
	if (r == 0)
		r = load_finish(&c, ret);
	store_unpin(s);
	load_ctx_done(&c);
	return r;
}

int image_load_fd(struct store *s, int fd, const struct image_load_opts *o,
		  struct image_load_result *ret, struct cove_error *err)
{
	struct stat st;

	/* `cove load < DIR` works too */
	return load_run(s, fd, fstat(fd, &st) == 0 && S_ISDIR(st.st_mode), o, ret, err);
}

int image_load(struct store *s, const char *path, const struct image_load_opts *o,
	       struct image_load_result *ret, struct cove_error *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	int r;

	if (fd < 0)
		return cove_error_set(err, errno, "unable to open '%s': %m", path);
	if (fstat(fd, &st) < 0)
		return cove_error_set(err, errno, "unable to stat '%s': %m", path);
	r = load_run(s, fd, S_ISDIR(st.st_mode), o, ret, err);
	if (r < 0)
		return cove_error_prefix(err, "'%s'", path);
	return 0;
}
