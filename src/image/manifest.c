/* SPDX-License-Identifier: Apache-2.0 */
#include "manifest.h"
#include "json.h"

#include <jansson.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>

/* Longest JSON path or quoted value kept in a message. */
#define PATH_LEN 256

/* Where a parse is, for its messages: "invalid image config: config.Env[3] is not a string". */
struct jctx {
	const char *what;
	struct cove_error *err;
};

/* Copy at most 80 bytes of untrusted s into out for a one-line message: controls and
 * non-ASCII bytes become '?' (and quotes, unless keep_quotes: s is quoted in the message),
 * a longer string ends in "...". */
static const char *shown_q(const char *s, char out[96], bool keep_quotes)
{
	size_t i, n = 0;

	for (i = 0; s[i] && n < 80; i++)
		out[n++] =
			(s[i] >= 0x20 && s[i] < 0x7f && (keep_quotes || s[i] != '\'')) ? s[i] : '?';
	if (s[i]) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
	return out;
}

static const char *shown(const char *s, char out[96])
{
	return shown_q(s, out, false);
}

static int jfail(struct jctx *c, int code, const char *fmt, ...) _printf_(3, 4);
static int jfail(struct jctx *c, int code, const char *fmt, ...)
{
	char msg[900];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return cove_error_set(c->err, code, "%s: %s", c->what, msg);
}

/* Every failure leaves a message, -ENOMEM included (no-op when one is set already). */
static int finish(struct jctx *c, int r)
{
	if (r < 0)
		return jfail(c, -r, "%s", r == -ENOMEM ? "out of memory" : strerror(-r));
	return r;
}

/* parent.key (key untrusted: shown sanitized) */
static void path_key(char out[PATH_LEN], const char *parent, const char *key)
{
	char show[96];

	if (parent && parent[0])
		(void)str_printf(out, PATH_LEN, "%s.%s", parent, shown(key, show));
	else
		(void)str_printf(out, PATH_LEN, "%s", shown(key, show));
}

static void path_index(char out[PATH_LEN], const char *parent, size_t i)
{
	(void)str_printf(out, PATH_LEN, "%s[%zu]", parent, i);
}

static void strv_free(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}


/* ---- media types ------------------------------------------------------------------------ */

static const struct {
	const char *name;
	enum image_media_type type;
} media_types[] = {
	{ MEDIA_TYPE_OCI_MANIFEST, IMAGE_MEDIA_TYPE_OCI_MANIFEST },
	{ MEDIA_TYPE_OCI_INDEX, IMAGE_MEDIA_TYPE_OCI_INDEX },
	{ MEDIA_TYPE_DOCKER_MANIFEST, IMAGE_MEDIA_TYPE_DOCKER_MANIFEST },
	{ MEDIA_TYPE_DOCKER_LIST, IMAGE_MEDIA_TYPE_DOCKER_LIST },
};

static const struct {
	const char *name;
	enum image_layer_compression compression;
} layer_types[] = {
	{ "application/vnd.oci.image.layer.v1.tar", IMAGE_LAYER_TAR },
	{ "application/vnd.oci.image.layer.v1.tar+gzip", IMAGE_LAYER_GZIP },
	{ "application/vnd.oci.image.layer.v1.tar+zstd", IMAGE_LAYER_ZSTD },
	{ "application/vnd.oci.image.layer.nondistributable.v1.tar", IMAGE_LAYER_TAR },
	{ "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", IMAGE_LAYER_GZIP },
	{ "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", IMAGE_LAYER_ZSTD },
	{ "application/vnd.docker.image.rootfs.diff.tar.gzip", IMAGE_LAYER_GZIP },
	{ "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", IMAGE_LAYER_GZIP },
	{ "application/vnd.docker.image.rootfs.diff.tar", IMAGE_LAYER_TAR },
};

static bool is_schema1(const char *s)
{
	return strcmp(s, MEDIA_TYPE_DOCKER_SCHEMA1) == 0 ||
	       strcmp(s, MEDIA_TYPE_DOCKER_SCHEMA1_SIGN) == 0;
}

static int schema1_refused(struct cove_error *err, const char *why)
{
	return cove_error_set(err, EOPNOTSUPP,
			      "schema1 manifests are not supported: %s (push the image again "
			      "with a current docker, podman or skopeo)",
			      why);
}

int image_media_type_from_string(const char *s, enum image_media_type *ret, struct cove_error *err)
{
	char show[96];

	for (size_t i = 0; i < ARRAY_SIZE(media_types); i++)
		if (strcmp(s, media_types[i].name) == 0) {
			*ret = media_types[i].type;
			return 0;
		}
	if (is_schema1(s)) {
		char why[160];

		(void)str_printf(why, sizeof(why), "media type '%s'", s);
		return schema1_refused(err, why);
	}
	return cove_error_set(err, EOPNOTSUPP, "unsupported manifest media type '%s'",
			      shown(s, show));
}

const char *image_media_type_to_string(enum image_media_type t)
{
	for (size_t i = 0; i < ARRAY_SIZE(media_types); i++)
		if (media_types[i].type == t)
			return media_types[i].name;
	return "unknown";
}

bool image_media_type_is_index(enum image_media_type t)
{
	return t == IMAGE_MEDIA_TYPE_OCI_INDEX || t == IMAGE_MEDIA_TYPE_DOCKER_LIST;
}

enum image_layer_compression image_layer_media_type(const char *s)
{
	for (size_t i = 0; i < ARRAY_SIZE(layer_types); i++)
		if (strcmp(s, layer_types[i].name) == 0)
			return layer_types[i].compression;
	return IMAGE_LAYER_NONE;
}

/* ---- JSON helpers ----------------------------------------------------------------------- */

static int load_json(struct jctx *c, const void *data, size_t len, size_t max, json_t **ret)
{
	json_error_t je;
	json_t *root;
	char show[96];

	if (len > max)
		return jfail(c, EFBIG, "%zu bytes is over the limit of %zu bytes", len, max);
	root = json_loadb(data ? data : "", len, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return jfail(c, EINVAL, "malformed JSON at line %d column %d: %s", je.line,
			     je.column, shown_q(je.text, show, true)); /* jansson's own words */
	if (!json_is_object(root)) {
		json_decref(root);
		return jfail(c, EINVAL, "the document is not a JSON object");
	}
	*ret = root;
	return 0;
}

/* A JSON string as a new C string of at most max bytes. */
static int dup_string(struct jctx *c, json_t *v, const char *path, size_t max, char **ret)
{
	size_t n;
	char *s;

	if (!json_is_string(v))
		return jfail(c, EINVAL, "%s is not a string", path);
	n = json_string_length(v);
	if (n > max)
		return jfail(c, EINVAL, "%s is too long (%zu bytes, at most %zu)", path, n, max);
	/* without JSON_ALLOW_NUL jansson refuses "\u0000", so strlen == n */
	s = strndup(json_string_value(v), n);
	if (!s)
		return -ENOMEM;
	*ret = s;
	return 0;
}

/* obj.key, a string; absent or null leaves *ret NULL. */
static int opt_string(struct jctx *c, json_t *obj, const char *parent, const char *key, size_t max,
		      char **ret)
{
	json_t *v = json_object_get(obj, key);
	char path[PATH_LEN];

	if (!v || json_is_null(v))
		return 0;
	path_key(path, parent, key);
	return dup_string(c, v, path, max, ret);
}

/* obj.key, a string into a fixed buffer of size bytes; required or "" when absent. */
static int fixed_string(struct jctx *c, json_t *obj, const char *parent, const char *key,
			bool required, char *out, size_t size)
{
	json_t *v = json_object_get(obj, key);
	char path[PATH_LEN];

	path_key(path, parent, key);
	if (!v) {
		if (required)
			return jfail(c, EINVAL, "%s is missing", path);
		out[0] = '\0';
		return 0;
	}
	if (!json_is_string(v))
		return jfail(c, EINVAL, "%s is not a string", path);
	if (json_string_length(v) >= size)
		return jfail(c, EINVAL, "%s is too long (%zu bytes, at most %zu)", path,
			     json_string_length(v), size - 1);
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

/* obj.key, an array of strings (absent or null: NULL, 0); NULL-terminated. */
static int opt_strv(struct jctx *c, json_t *obj, const char *parent, const char *key, size_t max_n,
		    char ***ret, size_t *ret_n)
{
	json_t *v = json_object_get(obj, key);
	char path[PATH_LEN], epath[PATH_LEN];
	char **strv;
	size_t n;
	int r;

	if (!v || json_is_null(v))
		return 0;
	path_key(path, parent, key);
	if (!json_is_array(v))
		return jfail(c, EINVAL, "%s is not an array", path);
	n = json_array_size(v);
	if (n > max_n)
		return jfail(c, EINVAL, "%s has too many entries (%zu, at most %zu)", path, n,
			     max_n);
	strv = calloc(n + 1, sizeof(char *));
	if (!strv)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		path_index(epath, path, i);
		r = dup_string(c, json_array_get(v, i), epath, IMAGE_STRING_MAX, &strv[i]);
		if (r < 0) {
			strv_free(strv, i);
			return r;
		}
	}
	*ret = strv;
	*ret_n = n;
	return 0;
}

/* The keys of obj.key, an object (absent or null: NULL, 0); NULL-terminated. */
static int opt_keys(struct jctx *c, json_t *obj, const char *parent, const char *key, size_t max_n,
		    char ***ret, size_t *ret_n)
{
	json_t *v = json_object_get(obj, key), *value;
	char path[PATH_LEN];
	const char *k;
	char **strv;
	size_t n, i = 0;

	if (!v || json_is_null(v))
		return 0;
	path_key(path, parent, key);
	if (!json_is_object(v))
		return jfail(c, EINVAL, "%s is not an object", path);
	n = json_object_size(v);
	if (n > max_n)
		return jfail(c, EINVAL, "%s has too many entries (%zu, at most %zu)", path, n,
			     max_n);
	strv = calloc(n + 1, sizeof(char *));
	if (!strv)
		return -ENOMEM;
	json_object_foreach(v, k, value)
	{
		size_t kl = strlen(k);

		if (i >= n || kl > IMAGE_STRING_MAX) {
			strv_free(strv, i);
			return jfail(c, EINVAL, "%s has a key that is too long", path);
		}
		strv[i] = strndup(k, kl);
		if (!strv[i]) {
			strv_free(strv, i);
			return -ENOMEM;
		}
		i++;
	}
	*ret = strv;
	*ret_n = i;
	return 0;
}

/* ---- descriptors ------------------------------------------------------------------------ */

enum desc_kind {
	DESC_CONFIG,
	DESC_LAYER,
	DESC_ENTRY,
};

static void descriptor_done(struct image_descriptor *d)
{
	free(d->media_type);
	d->media_type = NULL;
}

static int parse_platform(struct jctx *c, json_t *v, const char *path, struct image_platform *p)
{
	int r;

	if (!json_is_object(v))
		return jfail(c, EINVAL, "%s is not an object", path);
	r = fixed_string(c, v, path, "os", true, p->os, sizeof(p->os));
	if (r < 0)
		return r;
	r = fixed_string(c, v, path, "architecture", true, p->architecture,
			 sizeof(p->architecture));
	if (r < 0)
		return r;
	return fixed_string(c, v, path, "variant", false, p->variant, sizeof(p->variant));
}

static int parse_descriptor(struct jctx *c, json_t *v, const char *path, enum desc_kind kind,
			    struct image_descriptor *d)
{
	char sub[PATH_LEN], show[96];
	struct cove_error derr = { 0 };
	json_t *mt, *digest, *size, *platform;
	uint64_t max_size = kind == DESC_CONFIG ? IMAGE_CONFIG_MAX_SIZE : IMAGE_BLOB_MAX_SIZE;
	json_int_t sz;
	int r;

	if (!v)
		return jfail(c, EINVAL, "%s is missing", path);
	if (!json_is_object(v))
		return jfail(c, EINVAL, "%s is not an object", path);

	mt = json_object_get(v, "mediaType");
	path_key(sub, path, "mediaType");
	if (!mt)
		return jfail(c, EINVAL, "%s is missing", sub);
	r = dup_string(c, mt, sub, IMAGE_MEDIA_TYPE_MAX, &d->media_type);
	if (r < 0)
		return r;
	if (kind == DESC_CONFIG && strcmp(d->media_type, MEDIA_TYPE_OCI_CONFIG) != 0 &&
	    strcmp(d->media_type, MEDIA_TYPE_DOCKER_CONFIG) != 0)
		return jfail(c, EOPNOTSUPP,
			     "%s '%s' is not an image config (an artifact, not a container image?)",
			     sub, shown(d->media_type, show));
	if (kind == DESC_LAYER) {
		d->compression = image_layer_media_type(d->media_type);
		if (d->compression == IMAGE_LAYER_NONE)
			return jfail(c, EOPNOTSUPP, "%s '%s' is not a supported layer type", sub,
				     shown(d->media_type, show));
	}

	digest = json_object_get(v, "digest");
	path_key(sub, path, "digest");
	if (!digest)
		return jfail(c, EINVAL, "%s is missing", sub);
	if (!json_is_string(digest))
		return jfail(c, EINVAL, "%s is not a string", sub);
	r = digest_validate(json_string_value(digest), &derr);
	if (r < 0 || json_string_length(digest) >= DIGEST_STRING_MAX)
		return jfail(c, r < 0 ? -r : EINVAL, "%s: %s", sub, derr.msg);
	memcpy(d->digest, json_string_value(digest), DIGEST_STRING_MAX);

	size = json_object_get(v, "size");
	path_key(sub, path, "size");
	if (!size)
		return jfail(c, EINVAL, "%s is missing", sub);
	if (!json_is_integer(size))
		return jfail(c, EINVAL, "%s is not an integer", sub);
	sz = json_integer_value(size);
	if (sz < 0 || (uint64_t)sz > max_size)
		return jfail(c, EINVAL, "%s %lld is out of range (0 to %llu)", sub, (long long)sz,
			     (unsigned long long)max_size);
	d->size = (uint64_t)sz;

	platform = json_object_get(v, "platform");
	if (platform && !json_is_null(platform)) {
		path_key(sub, path, "platform");
		r = parse_platform(c, platform, sub, &d->platform);
		if (r < 0)
			return r;
		d->has_platform = true;
	}
	return 0;
}

/* ---- detection -------------------------------------------------------------------------- */

enum ct_class {
	CT_GENERIC, /* missing, application/json, octet-stream, ...: look at the JSON */
	CT_KNOWN,
};

/* Classify an HTTP Content-Type: one of ours, schema1 (refused), another vendor type
 * (refused by name), or generic. Parameters after ';' are ignored, case is not. */
static int classify_content_type(const char *ct, enum image_media_type *ret, struct cove_error *err)
{
	char type[IMAGE_MEDIA_TYPE_MAX + 1], show[96];
	size_t n = 0;
	int r;

	if (!ct)
		return CT_GENERIC;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	while (ct[n] && ct[n] != ';' && ct[n] != ' ' && ct[n] != '\t') {
		if (n >= IMAGE_MEDIA_TYPE_MAX)
			return cove_error_set(err, EINVAL, "Content-Type '%s' is too long",
					      shown(ct, show));
		type[n] = (ct[n] >= 'A' && ct[n] <= 'Z') ? (char)(ct[n] - 'A' + 'a') : ct[n];
		n++;
	}
	type[n] = '\0';
	if (n == 0 || strncmp(type, "application/vnd.", 16) != 0)
		return CT_GENERIC;
	r = image_media_type_from_string(type, ret, err);
	if (r < 0)
		return r;
	return CT_KNOWN;
}

static int detect(struct jctx *c, json_t *root, const char *content_type,
		  enum image_media_type *ret)
{
	enum image_media_type from_ct = 0, from_json = 0;
	json_t *sv, *mt;
	char show[96];
	int cls, r;

	cls = classify_content_type(content_type, &from_ct, c->err);
	if (cls < 0)
		return cls;

	sv = json_object_get(root, "schemaVersion");
	if (sv) {
		if (!json_is_integer(sv))
			return jfail(c, EINVAL, "schemaVersion is not an integer");
		if (json_integer_value(sv) == 1)
			return schema1_refused(c->err, "the document has schemaVersion 1");
		if (json_integer_value(sv) != 2)
			return jfail(c, EOPNOTSUPP, "schemaVersion %lld is not supported",
				     (long long)json_integer_value(sv));
	}

	mt = json_object_get(root, "mediaType");
	if (mt) {
		if (!json_is_string(mt))
			return jfail(c, EINVAL, "mediaType is not a string");
		if (json_string_length(mt) > IMAGE_MEDIA_TYPE_MAX)
			return jfail(c, EINVAL, "mediaType is too long");
		r = image_media_type_from_string(json_string_value(mt), &from_json, c->err);
		if (r < 0)
			return r;
	}

	if (cls == CT_KNOWN) {
		if (from_json &&
		    image_media_type_is_index(from_json) != image_media_type_is_index(from_ct))
			return jfail(c, EINVAL, "Content-Type '%s' disagrees with mediaType '%s'",
				     image_media_type_to_string(from_ct),
				     shown(json_string_value(mt), show));
		*ret = from_ct;
		return 0;
	}
	if (from_json) {
		*ret = from_json;
		return 0;
	}
	/* umoci and older skopeo write OCI documents without a top-level mediaType */
	if (json_object_get(root, "fsLayers") || json_object_get(root, "signatures"))
		return schema1_refused(c->err, "the document has fsLayers");
	if (json_is_array(json_object_get(root, "manifests"))) {
		*ret = IMAGE_MEDIA_TYPE_OCI_INDEX;
		return 0;
	}
	if (json_object_get(root, "config") && json_object_get(root, "layers")) {
		*ret = IMAGE_MEDIA_TYPE_OCI_MANIFEST;
		return 0;
	}
	return jfail(c, EINVAL, "unable to tell its type: no mediaType, no manifests, no layers");
}

static int detect_type_impl(struct jctx *c, const void *data, size_t len, const char *content_type,
			    enum image_media_type *ret)
{
	_cleanup_json_ json_t *root = NULL;
	enum image_media_type t;
	int r;

	r = load_json(c, data, len, MANIFEST_MAX_SIZE, &root);
	if (r < 0)
		return r;
	r = detect(c, root, content_type, &t);
	if (r < 0)
		return r;
	*ret = t;
	return 0;
}

int manifest_detect_type(const void *data, size_t len, const char *content_type,
			 enum image_media_type *ret, struct cove_error *err)
{
	struct jctx c = { .what = "invalid manifest", .err = err };

	return finish(&c, detect_type_impl(&c, data, len, content_type, ret));
}

/* ---- manifests and indexes -------------------------------------------------------------- */

void image_manifest_free(struct image_manifest *m)
{
	if (!m)
		return;
	descriptor_done(&m->config);
	for (size_t i = 0; i < m->n_layers; i++)
		descriptor_done(&m->layers[i]);
	free(m->layers);
	free(m);
}

static int manifest_parse_impl(struct jctx *c, const void *data, size_t len,
			       const char *content_type, struct image_manifest **ret)
{
	_cleanup_image_manifest_ struct image_manifest *m = NULL;
	_cleanup_json_ json_t *root = NULL;
	char path[PATH_LEN];
	json_t *layers;
	size_t n;
	int r;

	r = load_json(c, data, len, MANIFEST_MAX_SIZE, &root);
	if (r < 0)
		return r;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	r = detect(c, root, content_type, &m->media_type);
	if (r < 0)
		return r;
	if (image_media_type_is_index(m->media_type))
		return jfail(c, EINVAL, "it is an image index (%s), not a manifest",
			     image_media_type_to_string(m->media_type));

	r = parse_descriptor(c, json_object_get(root, "config"), "config", DESC_CONFIG, &m->config);
	if (r < 0)
		return r;

	layers = json_object_get(root, "layers");
	if (!layers)
		return jfail(c, EINVAL, "layers is missing");
	if (!json_is_array(layers))
		return jfail(c, EINVAL, "layers is not an array");
	n = json_array_size(layers);
	if (n > MANIFEST_MAX_LAYERS)
		return jfail(c, EINVAL, "it has %zu layers, at most %u are supported", n,
			     MANIFEST_MAX_LAYERS);
	m->layers = calloc(n ? n : 1, sizeof(*m->layers));
	if (!m->layers)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		path_index(path, "layers", i);
		m->n_layers = i + 1; /* so a half-parsed entry is freed */
		r = parse_descriptor(c, json_array_get(layers, i), path, DESC_LAYER, &m->layers[i]);
		if (r < 0)
			return r;
	}
	*ret = TAKE_PTR(m);
	return 0;
}

int image_manifest_parse(const void *data, size_t len, const char *content_type,
			 struct image_manifest **ret, struct cove_error *err)
{
	struct jctx c = { .what = "invalid image manifest", .err = err };

	return finish(&c, manifest_parse_impl(&c, data, len, content_type, ret));
}

void image_index_free(struct image_index *idx)
{
	if (!idx)
		return;
	for (size_t i = 0; i < idx->n_manifests; i++)
		descriptor_done(&idx->manifests[i]);
	free(idx->manifests);
	free(idx);
}

static int index_parse_impl(struct jctx *c, const void *data, size_t len, const char *content_type,
			    struct image_index **ret)
{
	_cleanup_image_index_ struct image_index *idx = NULL;
	_cleanup_json_ json_t *root = NULL;
	char path[PATH_LEN];
	json_t *manifests;
	size_t n;
	int r;

	r = load_json(c, data, len, MANIFEST_MAX_SIZE, &root);
	if (r < 0)
		return r;
	idx = calloc(1, sizeof(*idx));
	if (!idx)
		return -ENOMEM;
	r = detect(c, root, content_type, &idx->media_type);
	if (r < 0)
		return r;
	if (!image_media_type_is_index(idx->media_type))
		return jfail(c, EINVAL, "it is an image manifest (%s), not an index",
			     image_media_type_to_string(idx->media_type));

	manifests = json_object_get(root, "manifests");
	if (!manifests)
		return jfail(c, EINVAL, "manifests is missing");
	if (!json_is_array(manifests))
		return jfail(c, EINVAL, "manifests is not an array");
	n = json_array_size(manifests);
	if (n > IMAGE_INDEX_MAX_ENTRIES)
		return jfail(c, EINVAL, "it has %zu entries, at most %u are supported", n,
			     IMAGE_INDEX_MAX_ENTRIES);
	idx->manifests = calloc(n ? n : 1, sizeof(*idx->manifests));
	if (!idx->manifests)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		path_index(path, "manifests", i);
		idx->n_manifests = i + 1;
		r = parse_descriptor(c, json_array_get(manifests, i), path, DESC_ENTRY,
				     &idx->manifests[i]);
		if (r < 0)
			return r;
	}
	*ret = TAKE_PTR(idx);
	return 0;
}

int image_index_parse(const void *data, size_t len, const char *content_type,
		      struct image_index **ret, struct cove_error *err)
{
	struct jctx c = { .what = "invalid image index", .err = err };

	return finish(&c, index_parse_impl(&c, data, len, content_type, ret));
}

/* ---- image config ----------------------------------------------------------------------- */

void image_config_free(struct image_config *c)
{
	if (!c)
		return;
	free(c->architecture);
	free(c->os);
	free(c->variant);
	strv_free(c->entrypoint, c->n_entrypoint);
	strv_free(c->cmd, c->n_cmd);
	strv_free(c->env, c->n_env);
	free(c->working_dir);
	free(c->user);
	free(c->stop_signal);
	for (size_t i = 0; i < c->n_labels; i++) {
		free(c->labels[i].key);
		free(c->labels[i].value);
	}
	free(c->labels);
	strv_free(c->exposed_ports, c->n_exposed_ports);
	strv_free(c->volumes, c->n_volumes);
	strv_free(c->diff_ids, c->n_diff_ids);
	free(c);
}

static int parse_labels(struct jctx *c, json_t *obj, struct image_config *ic)
{
	json_t *v = json_object_get(obj, "Labels"), *value;
	char path[PATH_LEN];
	const char *k;
	size_t n;
	int r;

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_object(v))
		return jfail(c, EINVAL, "config.Labels is not an object");
	n = json_object_size(v);
	if (n > IMAGE_CONFIG_MAX_LABELS)
		return jfail(c, EINVAL, "config.Labels has too many entries (%zu, at most %u)", n,
			     IMAGE_CONFIG_MAX_LABELS);
	ic->labels = calloc(n ? n : 1, sizeof(*ic->labels));
	if (!ic->labels)
		return -ENOMEM;
	json_object_foreach(v, k, value)
	{
		struct image_label *l;
		size_t kl = strlen(k);

		path_key(path, "config.Labels", k);
		if (ic->n_labels >= n || kl > IMAGE_STRING_MAX)
			return jfail(c, EINVAL, "%s: the key is too long", path);
		l = &ic->labels[ic->n_labels++];
		l->key = strndup(k, kl);
		if (!l->key)
			return -ENOMEM;
		r = dup_string(c, value, path, IMAGE_STRING_MAX, &l->value);
		if (r < 0)
			return r;
	}
	return 0;
}

static int parse_container_config(struct jctx *c, json_t *cfg, struct image_config *ic)
{
	static const char p[] = "config";
	int r;

	if (!cfg || json_is_null(cfg))
		return 0;
	if (!json_is_object(cfg))
		return jfail(c, EINVAL, "config is not an object");
	r = opt_strv(c, cfg, p, "Entrypoint", IMAGE_CONFIG_MAX_ARGS, &ic->entrypoint,
		     &ic->n_entrypoint);
	if (r < 0)
		return r;
	r = opt_strv(c, cfg, p, "Cmd", IMAGE_CONFIG_MAX_ARGS, &ic->cmd, &ic->n_cmd);
	if (r < 0)
		return r;
	r = opt_strv(c, cfg, p, "Env", IMAGE_CONFIG_MAX_ENV, &ic->env, &ic->n_env);
	if (r < 0)
		return r;
	r = opt_string(c, cfg, p, "WorkingDir", IMAGE_STRING_MAX, &ic->working_dir);
	if (r < 0)
		return r;
	r = opt_string(c, cfg, p, "User", IMAGE_STRING_MAX, &ic->user);
	if (r < 0)
		return r;
	r = opt_string(c, cfg, p, "StopSignal", IMAGE_STRING_MAX, &ic->stop_signal);
	if (r < 0)
		return r;
	r = parse_labels(c, cfg, ic);
	if (r < 0)
		return r;
	r = opt_keys(c, cfg, p, "ExposedPorts", IMAGE_CONFIG_MAX_PORTS, &ic->exposed_ports,
		     &ic->n_exposed_ports);
	if (r < 0)
		return r;
	return opt_keys(c, cfg, p, "Volumes", IMAGE_CONFIG_MAX_VOLUMES, &ic->volumes,
			&ic->n_volumes);
}

static int parse_rootfs(struct jctx *c, json_t *rootfs, struct image_config *ic)
{
	struct cove_error derr = { 0 };
	char path[PATH_LEN];
	json_t *type;
	int r;

	if (!rootfs)
		return jfail(c, EINVAL, "rootfs is missing");
	if (!json_is_object(rootfs))
		return jfail(c, EINVAL, "rootfs is not an object");
	type = json_object_get(rootfs, "type");
	if (!type)
		return jfail(c, EINVAL, "rootfs.type is missing");
	if (!json_is_string(type))
		return jfail(c, EINVAL, "rootfs.type is not a string");
	if (strcmp(json_string_value(type), "layers") != 0) {
		char show[96];

		return jfail(c, EOPNOTSUPP, "rootfs.type '%s' is not supported (only 'layers')",
			     shown(json_string_value(type), show));
	}
	if (!json_object_get(rootfs, "diff_ids"))
		return jfail(c, EINVAL, "rootfs.diff_ids is missing");
	r = opt_strv(c, rootfs, "rootfs", "diff_ids", MANIFEST_MAX_LAYERS, &ic->diff_ids,
		     &ic->n_diff_ids);
	if (r < 0)
		return r;
	for (size_t i = 0; i < ic->n_diff_ids; i++) {
		r = digest_validate(ic->diff_ids[i], &derr);
		if (r < 0) {
			path_index(path, "rootfs.diff_ids", i);
			return jfail(c, -r, "%s: %s", path, derr.msg);
		}
	}
	return 0;
}

static int config_parse_impl(struct jctx *c, const void *data, size_t len,
			     struct image_config **ret)
{
	_cleanup_image_config_ struct image_config *ic = NULL;
	_cleanup_json_ json_t *root = NULL;
	int r;

	r = load_json(c, data, len, IMAGE_CONFIG_MAX_SIZE, &root);
	if (r < 0)
		return r;
	ic = calloc(1, sizeof(*ic));
	if (!ic)
		return -ENOMEM;
	r = opt_string(c, root, "", "architecture", IMAGE_PLATFORM_FIELD_MAX - 1,
		       &ic->architecture);
	if (r < 0)
		return r;
	r = opt_string(c, root, "", "os", IMAGE_PLATFORM_FIELD_MAX - 1, &ic->os);
	if (r < 0)
		return r;
	r = opt_string(c, root, "", "variant", IMAGE_PLATFORM_FIELD_MAX - 1, &ic->variant);
	if (r < 0)
		return r;
	r = parse_container_config(c, json_object_get(root, "config"), ic);
	if (r < 0)
		return r;
	r = parse_rootfs(c, json_object_get(root, "rootfs"), ic);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(ic);
	return 0;
}

int image_config_parse(const void *data, size_t len, struct image_config **ret,
		       struct cove_error *err)
{
	struct jctx c = { .what = "invalid image config", .err = err };

	return finish(&c, config_parse_impl(&c, data, len, ret));
}

int image_config_check_layers(const struct image_config *c, const struct image_manifest *m,
			      struct cove_error *err)
{
	if (c->n_diff_ids != m->n_layers)
		return cove_error_set(err, EINVAL,
				      "image config lists %zu layers (rootfs.diff_ids) but the "
				      "manifest has %zu",
				      c->n_diff_ids, m->n_layers);
	return 0;
}

/* ---- platforms -------------------------------------------------------------------------- */

/* Architecture aliases as Go and distributions spell them, to OCI's GOARCH names. */
static const struct {
	const char *alias;
	const char *arch;
	const char *variant; /* only when none was given */
} arch_aliases[] = {
	{ "x86_64", "amd64", "" },
	{ "x86-64", "amd64", "" },
	{ "aarch64", "arm64", "" },
	{ "i386", "386", "" },
	{ "i486", "386", "" },
	{ "i586", "386", "" },
	{ "i686", "386", "" },
	{ "armhf", "arm", "v7" },
	{ "armel", "arm", "v6" },
	{ "armv7l", "arm", "v7" },
	{ "armv6l", "arm", "v6" },
	{ "ppc64el", "ppc64le", "" },
	{ "loongarch64", "loong64", "" },
};

/* Normalized copies of arch and variant for comparing: aliases resolved, arm64's "v8" and
 * amd64's "v1" (the baselines) dropped. */
static void normalize(const struct image_platform *p, struct image_platform *out)
{
	*out = *p;
	for (size_t i = 0; i < ARRAY_SIZE(arch_aliases); i++)
		if (strcmp(out->architecture, arch_aliases[i].alias) == 0) {
			(void)str_copy(out->architecture, sizeof(out->architecture),
				       arch_aliases[i].arch);
			if (!out->variant[0])
				(void)str_copy(out->variant, sizeof(out->variant),
					       arch_aliases[i].variant);
			break;
		}
	if ((strcmp(out->architecture, "arm64") == 0 && strcmp(out->variant, "v8") == 0) ||
	    (strcmp(out->architecture, "amd64") == 0 && strcmp(out->variant, "v1") == 0))
		out->variant[0] = '\0';
}

static bool platform_char_ok(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
	       ch == '-';
}

int image_platform_parse(const char *s, struct image_platform *ret, struct cove_error *err)
{
	char parts[3][IMAGE_PLATFORM_FIELD_MAX], show[96];
	struct image_platform p = { 0 };
	size_t np = 0, n = 0;

	if (!s || !*s)
		return cove_error_set(err, EINVAL, "empty platform");
	for (const char *q = s;; q++) {
		if (*q == '/' || *q == '\0') {
			if (n == 0 || np >= 3)
				goto bad;
			parts[np++][n] = '\0';
			n = 0;
			if (*q == '\0')
				break;
			continue;
		}
		char ch = (*q >= 'A' && *q <= 'Z') ? (char)(*q - 'A' + 'a') : *q;
		if (np >= 3 || !platform_char_ok(ch) || n + 1 >= IMAGE_PLATFORM_FIELD_MAX)
			goto bad;
		parts[np][n++] = ch;
	}
	if (np == 1) {
		(void)str_copy(p.os, sizeof(p.os), "linux");
		(void)str_copy(p.architecture, sizeof(p.architecture), parts[0]);
	} else {
		(void)str_copy(p.os, sizeof(p.os), parts[0]);
		(void)str_copy(p.architecture, sizeof(p.architecture), parts[1]);
		if (np == 3)
			(void)str_copy(p.variant, sizeof(p.variant), parts[2]);
	}
	for (size_t i = 0; i < ARRAY_SIZE(arch_aliases); i++)
		if (strcmp(p.architecture, arch_aliases[i].alias) == 0) {
			(void)str_copy(p.architecture, sizeof(p.architecture),
				       arch_aliases[i].arch);
			if (!p.variant[0])
				(void)str_copy(p.variant, sizeof(p.variant),
					       arch_aliases[i].variant);
			break;
		}
	*ret = p;
	return 0;
bad:
	return cove_error_set(err, EINVAL,
			      "invalid platform '%s': expected os/arch[/variant], e.g. linux/arm64",
			      shown(s, show));
}

void image_platform_host(struct image_platform *ret)
{
	const char *arch = "unknown", *variant = "";

#if defined(__x86_64__)
	arch = "amd64";
#elif defined(__aarch64__)
	arch = "arm64";
#elif defined(__i386__)
	arch = "386";
#elif defined(__arm__)
	arch = "arm";
#if defined(__ARM_ARCH) && __ARM_ARCH >= 7
	variant = "v7";
#elif defined(__ARM_ARCH) && __ARM_ARCH == 6
	variant = "v6";
#else
	variant = "v5";
#endif
#elif defined(__riscv) && __riscv_xlen == 64
	arch = "riscv64";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	arch = "ppc64le";
#elif defined(__s390x__)
	arch = "s390x";
#elif defined(__loongarch64)
	arch = "loong64";
#endif
	memset(ret, 0, sizeof(*ret));
	(void)str_copy(ret->os, sizeof(ret->os), "linux");
	(void)str_copy(ret->architecture, sizeof(ret->architecture), arch);
	(void)str_copy(ret->variant, sizeof(ret->variant), variant);
}

void image_platform_format(const struct image_platform *p, char *buf, size_t size)
{
	if (p->variant[0])
		(void)str_printf(buf, size, "%s/%s/%s", p->os, p->architecture, p->variant);
	else
		(void)str_printf(buf, size, "%s/%s", p->os, p->architecture);
}

bool image_platform_matches(const struct image_platform *entry, const struct image_platform *want)
{
	struct image_platform e, w;

	normalize(entry, &e);
	normalize(want, &w);
	if (strcmp(e.os, w.os) != 0 || strcmp(e.architecture, w.architecture) != 0)
		return false;
	return !w.variant[0] || strcmp(e.variant, w.variant) == 0;
}

static bool is_manifest_type(const char *media_type)
{
	return strcmp(media_type, MEDIA_TYPE_OCI_MANIFEST) == 0 ||
	       strcmp(media_type, MEDIA_TYPE_DOCKER_MANIFEST) == 0;
}

int image_index_select(const struct image_index *idx, const struct image_platform *want,
		       const struct image_descriptor **ret, struct cove_error *err)
{
	const struct image_descriptor *best = NULL;
	struct image_platform host, wn;
	char wanted[3 * IMAGE_PLATFORM_FIELD_MAX], list[512], show[96];
	size_t len = 0;
	int best_score = 0;

	if (!want) {
		image_platform_host(&host);
		want = &host;
	}
	normalize(want, &wn);
	for (size_t i = 0; i < idx->n_manifests; i++) {
		const struct image_descriptor *d = &idx->manifests[i];
		struct image_platform en;
		int score;

		/* buildkit's attestation manifests say unknown/unknown: never an image */
		if (!d->has_platform || !is_manifest_type(d->media_type) ||
		    strcmp(d->platform.os, "unknown") == 0 ||
		    strcmp(d->platform.architecture, "unknown") == 0 ||
		    !image_platform_matches(&d->platform, want))
			continue;
		normalize(&d->platform, &en);
		score = strcmp(en.variant, wn.variant) == 0 ? 2 : 1;
		if (score > best_score) {
			best = d;
			best_score = score;
		}
	}
	if (best) {
		*ret = best;
		return 0;
	}

	/* name what there is, leaving out attestations and other unknown/unknown entries */
	list[0] = '\0';
	for (size_t i = 0; i < idx->n_manifests; i++) {
		const struct image_descriptor *d = &idx->manifests[i];
		char one[3 * IMAGE_PLATFORM_FIELD_MAX];

		if (!d->has_platform || !is_manifest_type(d->media_type) ||
		    strcmp(d->platform.os, "unknown") == 0 ||
		    strcmp(d->platform.architecture, "unknown") == 0)
			continue;
		image_platform_format(&d->platform, one, sizeof(one));
		shown(one, show);
		if (len + strlen(show) + 8 >= sizeof(list)) {
			(void)str_copy(list + len, sizeof(list) - len, ", ...");
			break;
		}
		(void)str_printf(list + len, sizeof(list) - len, "%s%s", len ? ", " : "", show);
		len += strlen(list + len);
	}
	image_platform_format(want, wanted, sizeof(wanted));
	if (!list[0])
		return cove_error_set(err, ENOENT,
				      "no %s image in the index (it names no platforms)",
				      shown(wanted, show));
	return cove_error_set(err, ENOENT, "no %s image in the index (it has %s)",
			      shown(wanted, show), list);
}
