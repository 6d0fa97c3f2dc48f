/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/image/archives: an image built in a temp store (no registry) is saved as
 * OCI and docker archives and loaded into fresh stores; real tools (umoci, skopeo) read what
 * we write and write what we load; broken and hostile archives are refused and leave nothing
 * in the store's index.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "image/archives.h"
#include "test.h"

#define SNAPSHOT_SIZE (64ull << 20)
#define REF	      "docker.io/library/testimg:v1"
#define REF2	      "example.com/team/other:2.0"

static char tmp_root[256];
static int store_seq;
static bool have_tools;

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static void cleanup_tmp(void)
{
	if (tmp_root[0])
		nftw(tmp_root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void tmp_path(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", tmp_root, name);
}

static struct store *new_store(void)
{
	struct cove_error err = { 0 };
	struct store *s = NULL;
	char dir[512];

	snprintf(dir, sizeof(dir), "%s/store%d", tmp_root, ++store_seq);
	if (store_open(dir, &s, &err) < 0) {
		printf("# %s\n", err.msg);
		exit(1);
	}
	return s;
}

static int sh(const char *fmt, ...) _printf_(1, 2);
static int sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* ---- building archives in memory ---------------------------------------------------- */

struct tentry {
	const char *path;
	int type; /* AE_IFREG (0 too), AE_IFDIR, AE_IFLNK */
	const void *data;
	size_t len;
	const char *link;
	bool hardlink;
};

struct membuf {
	uint8_t *data;
	size_t len, cap;
};

static la_ssize_t mem_write(struct archive *a, void *userdata, const void *buf, size_t n)
{
	struct membuf *m = userdata;

	(void)a;
	if (m->len + n > m->cap) {
		m->cap = (m->len + n) * 2;
		m->data = realloc(m->data, m->cap);
		if (!m->data)
			abort();
	}
	memcpy(m->data + m->len, buf, n);
	m->len += n;
	return (la_ssize_t)n;
}

/* A tar (format pax) of entries into m; with gzip, compressed. raw: one raw gzip stream. */
static void make_tar(struct membuf *m, const struct tentry *e, size_t n, bool gzip)
{
	struct archive *a = archive_write_new();

	archive_write_set_format_pax_restricted(a);
	if (gzip)
		archive_write_add_filter_gzip(a);
	archive_write_set_bytes_in_last_block(a, 1);
	archive_write_open(a, m, NULL, mem_write, NULL);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *ae = archive_entry_new();
		int type = e[i].type ? e[i].type : (int)AE_IFREG;

		archive_entry_set_pathname(ae, e[i].path);
		if (e[i].hardlink) {
			archive_entry_set_hardlink(ae, e[i].link);
			archive_entry_set_filetype(ae, AE_IFREG);
		} else {
			archive_entry_set_filetype(ae, (unsigned)type);
		}
		archive_entry_set_perm(ae, type == AE_IFDIR ? 0755 : 0644);
		archive_entry_set_mtime(ae, 1700000000, 0);
		if (type == AE_IFLNK)
			archive_entry_set_symlink(ae, e[i].link);
		if (type == AE_IFREG && !e[i].hardlink)
			archive_entry_set_size(ae, (la_int64_t)e[i].len);
		archive_write_header(a, ae);
		if (type == AE_IFREG && e[i].len)
			archive_write_data(a, e[i].data, e[i].len);
		archive_entry_free(ae);
	}
	archive_write_close(a);
	archive_write_free(a);
}

/* gzip of a buffer (libarchive's raw format + gzip filter). */
static void gzip_buf(struct membuf *out, const void *data, size_t len)
{
	struct archive *a = archive_write_new();
	struct archive_entry *ae = archive_entry_new();

	archive_write_set_format_raw(a);
	archive_write_add_filter_gzip(a);
	archive_write_set_bytes_in_last_block(a, 1);
	archive_write_open(a, out, NULL, mem_write, NULL);
	archive_entry_set_pathname(ae, "data");
	archive_entry_set_filetype(ae, AE_IFREG);
	archive_entry_set_size(ae, (la_int64_t)len);
	archive_write_header(a, ae);
	archive_write_data(a, data, len);
	archive_entry_free(ae);
	archive_write_close(a);
	archive_write_free(a);
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0 || write_full(fd, data, len) < 0) {
		printf("# cannot write %s\n", path);
		exit(1);
	}
	close(fd);
}

static void write_tar_file(const char *path, const struct tentry *e, size_t n)
{
	struct membuf m = { 0 };

	make_tar(&m, e, n, false);
	write_file(path, m.data, m.len);
	free(m.data);
}

/* ---- a test image ------------------------------------------------------------------- */

struct test_image {
	char manifest[DIGEST_STRING_MAX];
	char config[DIGEST_STRING_MAX];
	char layer[DIGEST_STRING_MAX];
	char diff_id[DIGEST_STRING_MAX];
};

/* One gzip layer (a dir, two files, a symlink, and big bytes of noise if big > 0), its
 * config for arch (NULL: this host's) and an OCI manifest; named ref unless ref is NULL. */
static void build_image_arch(struct store *s, const char *ref, const char *content, size_t big,
			     const char *arch, struct test_image *ret)
{
	static const char osr[] = "ID=cove-test\n";
	uint8_t *noise = malloc(big ? big : 1);
	const struct tentry files[] = {
		{ .path = "etc/", .type = AE_IFDIR },
		{ .path = "etc/os-release", .data = osr, .len = sizeof(osr) - 1 },
		{ .path = "hello.txt", .data = content, .len = strlen(content) },
		{ .path = "greeting", .type = AE_IFLNK, .link = "hello.txt" },
		{ .path = "big.bin", .data = noise, .len = big },
	};
	struct membuf tar = { 0 }, gz = { 0 };
	struct cove_error err = { 0 };
	struct image_platform host;
	struct store_image img = { .media_type = IMAGE_MEDIA_TYPE_OCI_MANIFEST };
	char config[1024], manifest[2048];
	uint32_t seed = 42;
	int r = 0;

	for (size_t i = 0; i < big; i++) {
		seed = seed * 1103515245u + 12345u;
		noise[i] = (uint8_t)(seed >> 16);
	}
	image_platform_host(&host);
	if (!arch)
		arch = host.architecture;
	make_tar(&tar, files, ARRAY_SIZE(files) - (big ? 0 : 1), false);
	free(noise);
	gzip_buf(&gz, tar.data, tar.len);
	digest_buffer(tar.data, tar.len, ret->diff_id);
	r |= store_blob_put(s, gz.data, gz.len, NULL, ret->layer, &err);
	snprintf(config, sizeof(config),
		 "{\"architecture\":\"%s\",\"os\":\"linux\",\"config\":{\"Cmd\":[\"/bin/sh\"],"
		 "\"Env\":[\"PATH=/bin\"]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"%s\"]}}",
		 arch, ret->diff_id);
	r |= store_blob_put(s, config, strlen(config), NULL, ret->config, &err);
	snprintf(
		manifest, sizeof(manifest),
		"{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":\"%s\","
		"\"digest\":\"%s\",\"size\":%zu},\"layers\":[{\"mediaType\":"
		"\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"%s\",\"size\":%zu}]}",
		MEDIA_TYPE_OCI_MANIFEST, MEDIA_TYPE_OCI_CONFIG, ret->config, strlen(config),
		ret->layer, gz.len);
	r |= store_blob_put(s, manifest, strlen(manifest), NULL, ret->manifest, &err);
	str_copy(img.manifest_digest, sizeof(img.manifest_digest), ret->manifest);
	str_copy(img.config_digest, sizeof(img.config_digest), ret->config);
	if (ref) {
		str_copy(img.reference, sizeof(img.reference), ref);
		r |= store_image_put(s, &img, &err);
	}
	if (r) {
		printf("# build_image: %s\n", err.msg);
		exit(1);
	}
	free(tar.data);
	free(gz.data);
}

static void build_image(struct store *s, const char *ref, const char *content,
			struct test_image *ret)
{
	build_image_arch(s, ref, content, 0, NULL, ret);
}

static int save_to(struct store *s, const char *const *refs, size_t n,
		   enum image_archive_format fmt, const char *path, struct cove_error *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int r;

	if (fd < 0)
		return -errno;
	r = image_save(s, refs, n, fd, fmt, err);
	close(fd);
	return r;
}

static const struct image_load_opts load_opts = { .min_snapshot_size = SNAPSHOT_SIZE };
static void expect_refused(const char *path, int code, const char *what);

static size_t n_images(struct store *s)
{
	struct cove_error err = { 0 };
	struct store_image *all = NULL;
	size_t n = 0;

	if (store_image_list(s, &all, &n, &err) < 0)
		return 9999;
	free(all);
	return n;
}

static int n_snapshots(struct store *s)
{
	char path[600];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "%s/snapshots", store_root(s));
	d = opendir(path);
	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static bool snapshot_exists(struct store *s, const struct store_image *img)
{
	char path[600];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", store_root(s), img->snapshot);
	return img->snapshot[0] && stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The manifest and config of a stored single-manifest image. */
static int image_parts(struct store *s, const struct store_image *img, struct image_manifest **m,
		       struct image_config **cfg, struct cove_error *err)
{
	char *data = NULL;
	size_t len;
	int r;

	r = store_blob_read_small(s, img->manifest_digest, MANIFEST_MAX_SIZE, &data, &len, err);
	if (r == 0)
		r = image_manifest_parse(data, len, NULL, m, err);
	free(data);
	data = NULL;
	if (r == 0)
		r = store_blob_read_small(s, (*m)->config.digest, IMAGE_CONFIG_MAX_SIZE, &data,
					  &len, err);
	if (r == 0)
		r = image_config_parse(data, len, cfg, err);
	free(data);
	return r;
}

static bool same_file(const char *a, const char *b)
{
	return sh("cmp -s '%s' '%s'", a, b) == 0;
}

/* ---- round trips --------------------------------------------------------------------- */

TEST(oci_round_trip)
{
	struct store *s = new_store(), *t = new_store();
	struct cove_error err = { 0 };
	struct test_image ti;
	struct image_load_result res = { 0 };
	struct store_image got;
	const char *refs[] = { REF, "testimg:v1", REF2 };
	char file[300], again[300];

	build_image(s, REF, "hello\n", &ti);
	CHECK_EQ_INT(store_image_tag(s, REF, REF2, &err), 0);
	tmp_path(file, sizeof(file), "rt.oci.tar");
	tmp_path(again, sizeof(again), "rt2.oci.tar");
	/* "testimg:v1" is REF as a user types it: the same image, listed once */
	CHECK_EQ_INT(save_to(s, refs, 3, IMAGE_ARCHIVE_OCI, file, &err), 0);
	CHECK_EQ_STR(err.msg, "");
	CHECK_EQ_INT(save_to(s, refs, 3, IMAGE_ARCHIVE_OCI, again, &err), 0);
	CHECK(same_file(file, again)); /* deterministic */

	CHECK_EQ_INT(image_load(t, file, &load_opts, &res, &err), 0);
	CHECK_EQ_STR(err.msg, "");
	CHECK_EQ_INT(res.n, 2);
	CHECK(res.n == 2 && res.images[0].named && res.images[1].named);
	CHECK_EQ_STR(res.n ? res.images[0].reference : "", REF);
	CHECK_EQ_STR(res.n ? res.images[0].manifest_digest : "", ti.manifest);
	CHECK_EQ_STR(res.n > 1 ? res.images[1].reference : "", REF2);
	CHECK_EQ_INT(store_image_get(t, REF, &got, &err), 0);
	CHECK_EQ_STR(got.manifest_digest, ti.manifest);
	CHECK_EQ_STR(got.config_digest, ti.config);
	CHECK(snapshot_exists(t, &got));
	CHECK_EQ_INT(store_image_get(t, REF2, &got, &err), 0);
	CHECK_EQ_STR(got.manifest_digest, ti.manifest);
	CHECK_EQ_INT(n_snapshots(t), 1);
	CHECK(store_blob_has(t, ti.layer));
	image_load_result_done(&res);

	/* the archive unpacked: an OCI layout directory, copied blob by blob */
	{
		struct store *u = new_store();
		char dir[300];

		tmp_path(dir, sizeof(dir), "rt.layout");
		CHECK_EQ_INT(sh("mkdir -p '%s' && tar -xf '%s' -C '%s'", dir, file, dir), 0);
		CHECK_EQ_INT(image_load(u, dir, &load_opts, &res, &err), 0);
		CHECK_EQ_STR(err.msg, "");
		CHECK_EQ_INT(res.n, 2);
		CHECK_EQ_INT(store_image_get(u, REF, &got, &err), 0);
		CHECK_EQ_STR(got.manifest_digest, ti.manifest);
		CHECK(store_blob_has(u, ti.layer));
		CHECK(snapshot_exists(u, &got));
		image_load_result_done(&res);
		/* a blob that is a symlink is not followed */
		CHECK_EQ_INT(sh("cd '%s/blobs/sha256' && mv %s x && ln -s x %s", dir,
				digest_hex(ti.layer), digest_hex(ti.layer)),
			     0);
		store_free(u);
		u = new_store();
		CHECK_EQ_INT(image_load(u, dir, &load_opts, &res, &err), -ELOOP);
		CHECK_EQ_INT(n_images(u), 0);
		store_free(u);
		memset(&err, 0, sizeof(err));
	}

	/* again, gzip-compressed, into the same store: replaces the entries */
	CHECK_EQ_INT(sh("gzip -c '%s' > '%s.gz'", file, file), 0);
	char gzfile[310];

	str_printf(gzfile, sizeof(gzfile), "%s.gz", file);
	CHECK_EQ_INT(image_load(t, gzfile, &load_opts, &res, &err), 0);
	CHECK_EQ_STR(err.msg, "");
	CHECK_EQ_INT(res.n, 2);
	CHECK_EQ_INT(n_images(t), 2);
	image_load_result_done(&res);
	store_free(s);
	store_free(t);
}

TEST(docker_round_trip)
{
	struct store *s = new_store(), *t = new_store();
	struct cove_error err = { 0 };
	struct test_image ti;
	struct image_load_result res = { 0 };
	struct store_image got;
	struct image_manifest *m = NULL;
	struct image_config *cfg = NULL;
	const char *refs[] = { REF };
	char file[300], again[300];

	build_image(s, REF, "hello docker\n", &ti);
	tmp_path(file, sizeof(file), "rt.docker.tar");
	tmp_path(again, sizeof(again), "rt2.docker.tar");
	CHECK_EQ_INT(save_to(s, refs, 1, IMAGE_ARCHIVE_DOCKER, file, &err), 0);
	CHECK_EQ_STR(err.msg, "");
	CHECK_EQ_INT(save_to(s, refs, 1, IMAGE_ARCHIVE_DOCKER, again, &err), 0);
	CHECK(same_file(file, again));
	/* docker's layout: the layer uncompressed under its diff id, the config by its hex */
	CHECK_EQ_INT(sh("tar -tf '%s' | grep -qx '%s/layer.tar'", file, digest_hex(ti.diff_id)), 0);
	CHECK_EQ_INT(sh("tar -tf '%s' | grep -qx '%s.json'", file, digest_hex(ti.config)), 0);
	CHECK_EQ_INT(sh("tar -xOf '%s' manifest.json | grep -q '\"RepoTags\":\\[\"testimg:v1\"\\]'",
			file),
		     0);
	CHECK_EQ_INT(sh("tar -xOf '%s' repositories | grep -q '\"testimg\":{\"v1\":'", file), 0);

	CHECK_EQ_INT(image_load(t, file, &load_opts, &res, &err), 0);
	CHECK_EQ_STR(err.msg, "");
	CHECK_EQ_INT(res.n, 1);
	CHECK_EQ_STR(res.n ? res.images[0].reference : "", REF);
	CHECK_EQ_STR(res.n ? res.images[0].config_digest : "", ti.config); /* docker's image ID */
	CHECK_EQ_INT(store_image_get(t, REF, &got, &err), 0);
	CHECK_EQ_STR(got.config_digest, ti.config);
	CHECK(snapshot_exists(t, &got));
	CHECK_EQ_INT(image_parts(t, &got, &m, &cfg, &err), 0);
	CHECK(m && m->n_layers == 1);
	CHECK(cfg && cfg->n_diff_ids == 1);
	if (m && cfg && m->n_layers == 1 && cfg->n_diff_ids == 1) {
		CHECK_EQ_STR(cfg->diff_ids[0], ti.diff_id);
		CHECK_EQ_STR(m->layers[0].digest, ti.diff_id); /* stored uncompressed */
		CHECK_EQ_STR(m->layers[0].media_type, "application/vnd.oci.image.layer.v1.tar");
	}
	image_manifest_free(m);
	image_config_free(cfg);
	image_load_result_done(&res);

	/* loading the same archive again makes the same manifest */
	CHECK_EQ_INT(image_load(t, file, &load_opts, &res, &err), 0);
	CHECK_EQ_STR(res.n ? res.images[0].manifest_digest : "", got.manifest_digest);
	image_load_result_done(&res);
	/* and saving it from there (its layer now stored uncompressed) gives the same bytes */
	CHECK_EQ_INT(save_to(t, refs, 1, IMAGE_ARCHIVE_DOCKER, again, &err), 0);
	CHECK_EQ_STR(err.msg, "");
	CHECK(same_file(file, again));
	store_free(s);
	store_free(t);
}

/* A docker archive as docker itself lays it out: layer first, manifest.json last, a legacy
 * v1 ID as the layer's directory, and a gzip-compressed layer.tar (docker load takes it). */
TEST(docker_foreign_layout)
{
	struct store *s = new_store(), *t = new_store();
	struct cove_error err = { 0 };
	struct test_image ti;
	struct image_load_result res = { 0 };
	struct store_image got;
	char *layer = NULL, *config = NULL, manifest[1024], file[300];
	size_t layer_len = 0, config_len = 0;
	const char *v1 = "1111111111111111111111111111111111111111111111111111111111111111";
	char lpath[100];

	build_image(s, REF, "docker layout\n", &ti);
	CHECK_EQ_INT(store_blob_read_small(s, ti.layer, 1 << 20, &layer, &layer_len, &err), 0);
	CHECK_EQ_INT(store_blob_read_small(s, ti.config, 1 << 20, &config, &config_len, &err), 0);
	snprintf(lpath, sizeof(lpath), "%s/layer.tar", v1);
	snprintf(manifest, sizeof(manifest),
		 "[{\"Config\":\"./cfg.json\",\"RepoTags\":[\"foo/bar:1\",\"foo/bar:latest\"],"
		 "\"Layers\":[\"%s\"]}]",
		 lpath);
	const struct tentry e[] = {
		{ .path = v1, .type = AE_IFDIR },
		{ .path = lpath, .data = layer, .len = layer_len },
		{ .path = "cfg.json", .data = config, .len = config_len },
		{ .path = "manifest.json", .data = manifest, .len = strlen(manifest) },
	};
	tmp_path(file, sizeof(file), "foreign.docker.tar");
	write_tar_file(file, e, ARRAY_SIZE(e));
	CHECK_EQ_INT(image_load(t, file, &load_opts, &res, &err), 0);
	CHECK_EQ_STR(err.msg, "");
	CHECK_EQ_INT(res.n, 2);
	CHECK_EQ_STR(res.n ? res.images[0].reference : "", "docker.io/foo/bar:1");
	CHECK_EQ_INT(store_image_get(t, "docker.io/foo/bar:latest", &got, &err), 0);
	CHECK_EQ_STR(got.config_digest, ti.config);
	CHECK(snapshot_exists(t, &got));
	image_load_result_done(&res);
	free(layer);
	free(config);
	store_free(s);
	store_free(t);
}

/* An index with this host's platform and another one: saved as the index when both are
 * stored, else as the host's manifest alone. */
TEST(index_images)
{
	struct store *s = new_store(), *t = new_store(), *u = new_store();
	struct cove_error err = { 0 };
	struct test_image host, other;
	struct image_platform hp;
	struct image_load_result res = { 0 };
	struct store_image img = { .reference = "example.com/multi:1",
				   .media_type = IMAGE_MEDIA_TYPE_OCI_INDEX },
			   got;
	const char *refs[] = { "example.com/multi:1" };
	char idx[1024], file[300], snap[128];
	const char *other_arch;

	image_platform_host(&hp);
	other_arch = strcmp(hp.architecture, "s390x") == 0 ? "arm64" : "s390x";
	build_image_arch(s, NULL, "host\n", 0, NULL, &host);
	build_image_arch(s, NULL, "other\n", 0, other_arch, &other);
	/* the sizes: read back the manifests */
	{
		char *m1 = NULL, *m2 = NULL;
		size_t l1 = 0, l2 = 0;

		store_blob_read_small(s, other.manifest, 1 << 20, &m1, &l1, &err);
		store_blob_read_small(s, host.manifest, 1 << 20, &m2, &l2, &err);
		snprintf(idx, sizeof(idx),
			 "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":["
			 "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu,"
			 "\"platform\":{\"os\":\"linux\",\"architecture\":\"%s\"}},"
			 "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu,"
			 "\"platform\":{\"os\":\"linux\",\"architecture\":\"%s\"}}]}",
			 MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST, other.manifest, l1,
			 other_arch, MEDIA_TYPE_OCI_MANIFEST, host.manifest, l2, hp.architecture);
		free(m1);
		free(m2);
	}
	CHECK_EQ_INT(store_blob_put(s, idx, strlen(idx), NULL, img.manifest_digest, &err), 0);
	store_snapshot_name(host.manifest, snap);
	str_copy(img.snapshot, sizeof(img.snapshot), snap);
	str_copy(img.config_digest, sizeof(img.config_digest), host.config);
	CHECK_EQ_INT(store_image_put(s, &img, &err), 0);

	/* complete: the index travels */
	tmp_path(file, sizeof(file), "index-full.tar");
	CHECK_EQ_INT(save_to(s, refs, 1, IMAGE_ARCHIVE_OCI, file, &err), 0);
	CHECK_EQ_STR(err.msg, "");
	CHECK_EQ_INT(image_load(t, file, &load_opts, &res, &err), 0);
	CHECK_EQ_STR(err.msg, "");
	CHECK_EQ_INT(store_image_get(t, "example.com/multi:1", &got, &err), 0);
	CHECK_EQ_STR(got.manifest_digest, img.manifest_digest);
	CHECK_EQ_INT(got.media_type, IMAGE_MEDIA_TYPE_OCI_INDEX);
	CHECK_EQ_STR(got.snapshot, snap);
	CHECK_EQ_STR(got.config_digest, host.config);
	CHECK(snapshot_exists(t, &got));
	CHECK(store_blob_has(t, other.layer));
	image_load_result_done(&res);

	/* the other platform's layer is gone: only the host's manifest travels */
	{
		char path[600];

		snprintf(path, sizeof(path), "%s/blobs/sha256/%s", store_root(s),
			 digest_hex(other.layer));
		CHECK_EQ_INT(unlink(path), 0);
	}
	tmp_path(file, sizeof(file), "index-partial.tar");
	CHECK_EQ_INT(save_to(s, refs, 1, IMAGE_ARCHIVE_OCI, file, &err), 0);
	CHECK_EQ_STR(err.msg, "");
	CHECK_EQ_INT(image_load(u, file, &load_opts, &res, &err), 0);
	CHECK_EQ_INT(store_image_get(u, "example.com/multi:1", &got, &err), 0);
	CHECK_EQ_STR(got.manifest_digest, host.manifest);
	CHECK(snapshot_exists(u, &got));
	CHECK(!store_blob_has(u, other.manifest));
	image_load_result_done(&res);
	/* docker format takes the host's manifest too */
	tmp_path(file, sizeof(file), "index.docker.tar");
	CHECK_EQ_INT(save_to(s, refs, 1, IMAGE_ARCHIVE_DOCKER, file, &err), 0);
	CHECK_EQ_INT(sh("tar -tf '%s' | grep -qx '%s.json'", file, digest_hex(host.config)), 0);
	store_free(s);
	store_free(t);
	store_free(u);
}

/* Save into a pipe while another process loads from it: both stream. A 3 MiB layer takes the
 * big-file paths: streamed under its diff id (manifest.json came first), or through a temp
 * file when the archive gives no hint before the layer. */
TEST(pipe_streaming)
{
	struct store *s = new_store(), *t = new_store();
	struct cove_error err = { 0 };
	struct test_image ti;
	struct image_load_result res = { 0 };
	struct store_image got;
	const char *refs[] = { REF };

	build_image_arch(s, REF, "piped\n", 3u << 20, NULL, &ti);
	for (int fmt = IMAGE_ARCHIVE_OCI; fmt <= IMAGE_ARCHIVE_DOCKER; fmt++) {
		int p[2], status = 0;
		pid_t pid;

		CHECK_EQ_INT(pipe2(p, O_CLOEXEC), 0);
		pid = fork();
		if (pid == 0) {
			struct cove_error cerr = { 0 };

			close(p[0]);
			_exit(image_save(s, refs, 1, p[1], (enum image_archive_format)fmt, &cerr) <
					      0
				      ? 1
				      : 0);
		}
		close(p[1]);
		memset(&err, 0, sizeof(err));
		CHECK_EQ_INT(image_load_fd(t, p[0], &load_opts, &res, &err), 0);
		CHECK_EQ_STR(err.msg, "");
		close(p[0]);
		waitpid(pid, &status, 0);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		CHECK_EQ_INT(res.n, 1);
		CHECK_EQ_INT(store_image_get(t, REF, &got, &err), 0);
		CHECK_EQ_STR(got.config_digest, ti.config);
		CHECK(snapshot_exists(t, &got));
		if (fmt == IMAGE_ARCHIVE_DOCKER)
			CHECK(store_blob_has(t, ti.diff_id));
		image_load_result_done(&res);
	}
	/* docker order (layer before manifest.json): hashed through a temp file */
	{
		char file[300], out[300];
		struct store *u = new_store();

		tmp_path(file, sizeof(file), "pipe.docker.tar");
		tmp_path(out, sizeof(out), "pipe.docker.reordered.tar");
		CHECK_EQ_INT(save_to(s, refs, 1, IMAGE_ARCHIVE_DOCKER, file, &err), 0);
		CHECK_EQ_INT(
			sh("mkdir -p '%s.d' && tar -xf '%s' -C '%s.d' && cd '%s.d' && "
			   "tar -cf '%s' --sort=name */ repositories [0-9a-f]*.json manifest.json",
			   file, file, file, file, out),
			0);
		CHECK_EQ_INT(image_load(u, out, &load_opts, &res, &err), 0);
		CHECK_EQ_STR(err.msg, "");
		CHECK_EQ_INT(store_image_get(u, REF, &got, &err), 0);
		CHECK(store_blob_has(u, ti.diff_id));
		image_load_result_done(&res);
		store_free(u);
	}
	store_free(s);
	store_free(t);
}

/* A docker archive entry without RepoTags: stored under its manifest digest. */
TEST(docker_unnamed)
{
	struct store *s = new_store(), *t = new_store();
	struct cove_error err = { 0 };
	struct test_image ti;
	struct image_load_result res = { 0 };
	struct store_image got;
	char *layer = NULL, *config = NULL, manifest[512], file[300];
	size_t layer_len = 0, config_len = 0;

	build_image(s, REF, "unnamed\n", &ti);
	CHECK_EQ_INT(store_blob_read_small(s, ti.layer, 1 << 20, &layer, &layer_len, &err), 0);
	CHECK_EQ_INT(store_blob_read_small(s, ti.config, 1 << 20, &config, &config_len, &err), 0);
	snprintf(manifest, sizeof(manifest),
		 "[{\"Config\":\"c.json\",\"RepoTags\":null,\"Layers\":[\"l.tar\"]}]");
	const struct tentry e[] = {
		{ .path = "c.json", .data = config, .len = config_len },
		{ .path = "l.tar", .data = layer, .len = layer_len },
		{ .path = "manifest.json", .data = manifest, .len = strlen(manifest) },
	};
	tmp_path(file, sizeof(file), "unnamed.docker.tar");
	write_tar_file(file, e, ARRAY_SIZE(e));
	CHECK_EQ_INT(image_load(t, file, &load_opts, &res, &err), 0);
	CHECK_EQ_STR(err.msg, "");
	CHECK_EQ_INT(res.n, 1);
	if (res.n == 1) {
		CHECK(!res.images[0].named);
		CHECK_EQ_STR(res.images[0].config_digest, ti.config);
		CHECK_EQ_INT(store_image_get(t, res.images[0].manifest_digest, &got, &err), 0);
		CHECK(snapshot_exists(t, &got));
	}
	image_load_result_done(&res);
	free(layer);
	free(config);
	store_free(s);
	store_free(t);
}

/* Two images; the second's layer escapes with "..": its snapshot fails, and the first
 * image's snapshot, already written, is removed again. */
TEST(refuse_bad_layer_rolls_back)
{
	struct store *s = new_store();
	struct cove_error err = { 0 };
	struct test_image ti;
	struct membuf bad = { 0 };
	char *layer = NULL, *config = NULL, *bcfg = NULL, manifest[1024], file[300], bdiff[80];
	size_t layer_len = 0, config_len = 0;
	const struct tentry evil[] = {
		{ .path = "../../escaped", .data = "x", .len = 1 },
	};

	build_image(s, REF, "rollback\n", &ti);
	CHECK_EQ_INT(store_blob_read_small(s, ti.layer, 1 << 20, &layer, &layer_len, &err), 0);
	CHECK_EQ_INT(store_blob_read_small(s, ti.config, 1 << 20, &config, &config_len, &err), 0);
	make_tar(&bad, evil, ARRAY_SIZE(evil), false);
	digest_buffer(bad.data, bad.len, bdiff);
	bcfg = malloc(512);
	snprintf(bcfg, 512,
		 "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":"
		 "\"layers\",\"diff_ids\":[\"%s\"]}}",
		 bdiff);
	snprintf(manifest, sizeof(manifest),
		 "[{\"Config\":\"good.json\",\"RepoTags\":[\"good:1\"],\"Layers\":[\"good.tar\"]},"
		 "{\"Config\":\"bad.json\",\"RepoTags\":[\"bad:1\"],\"Layers\":[\"bad.tar\"]}]");
	const struct tentry e[] = {
		{ .path = "good.json", .data = config, .len = config_len },
		{ .path = "good.tar", .data = layer, .len = layer_len },
		{ .path = "bad.json", .data = bcfg, .len = strlen(bcfg) },
		{ .path = "bad.tar", .data = bad.data, .len = bad.len },
		{ .path = "manifest.json", .data = manifest, .len = strlen(manifest) },
	};
	tmp_path(file, sizeof(file), "badlayer.docker.tar");
	write_tar_file(file, e, ARRAY_SIZE(e));
	expect_refused(file, EPERM, "escapes");
	free(layer);
	free(config);
	free(bcfg);
	free(bad.data);
	store_free(s);
}

/* ---- real tools ------------------------------------------------------------------------ */

TEST(tools_read_ours)
{
	struct store *s = new_store();
	struct cove_error err = { 0 };
	struct test_image ti;
	const char *refs[] = { REF };
	char oci[300], docker[300], dir[300];

	if (!have_tools) {
		printf("# skipped: umoci or skopeo missing\n");
		return;
	}
	build_image(s, REF, "for the tools\n", &ti);
	tmp_path(oci, sizeof(oci), "tools.oci.tar");
	tmp_path(docker, sizeof(docker), "tools.docker.tar");
	tmp_path(dir, sizeof(dir), "tools.layout");
	CHECK_EQ_INT(save_to(s, refs, 1, IMAGE_ARCHIVE_OCI, oci, &err), 0);
	CHECK_EQ_INT(save_to(s, refs, 1, IMAGE_ARCHIVE_DOCKER, docker, &err), 0);
	CHECK_EQ_INT(sh("mkdir -p '%s' && tar -xf '%s' -C '%s'", dir, oci, dir), 0);
	CHECK_EQ_INT(sh("umoci stat --image '%s:v1' >/dev/null", dir), 0);
	CHECK_EQ_INT(sh("skopeo inspect oci-archive:'%s':v1 >/dev/null", oci), 0);
	CHECK_EQ_INT(sh("skopeo inspect docker-archive:'%s' | grep -q '\"Digest\"'", docker), 0);
	/* skopeo sees the same config as we stored, and our layer */
	CHECK_EQ_INT(sh("skopeo inspect --raw oci-archive:'%s':v1 | grep -q '%s'", oci, ti.config),
		     0);
	CHECK_EQ_INT(sh("skopeo inspect --config docker-archive:'%s' | grep -q '%s'", docker,
			ti.diff_id),
		     0);
	store_free(s);
}

TEST(tools_write_we_load)
{
	struct store *s = new_store();
	struct cove_error err = { 0 };
	struct image_load_result res = { 0 };
	struct store_image got;
	char layout[300], layer[300], rootfs[300], ociar[300], dockar[300];

	if (!have_tools) {
		printf("# skipped: umoci or skopeo missing\n");
		return;
	}
	tmp_path(layout, sizeof(layout), "umoci.layout");
	tmp_path(layer, sizeof(layer), "umoci.layer.tar");
	tmp_path(rootfs, sizeof(rootfs), "umoci.rootfs");
	tmp_path(ociar, sizeof(ociar), "skopeo.oci.tar");
	tmp_path(dockar, sizeof(dockar), "skopeo.docker.tar");
	CHECK_EQ_INT(sh("mkdir -p '%s/etc' && echo made-by-umoci > '%s/etc/motd' && "
			"tar -cf '%s' -C '%s' etc",
			rootfs, rootfs, layer, rootfs),
		     0);
	CHECK_EQ_INT(sh("umoci init --layout '%s' && umoci new --image '%s:t1' && "
			"umoci raw add-layer --image '%s:t1' '%s'",
			layout, layout, layout, layer),
		     0);
	CHECK_EQ_INT(sh("skopeo --insecure-policy copy -q oci:'%s':t1 oci-archive:'%s':t1", layout,
			ociar),
		     0);
	CHECK_EQ_INT(sh("skopeo --insecure-policy copy -q oci:'%s':t1 "
			"docker-archive:'%s':example.com/made/by-skopeo:t1",
			layout, dockar),
		     0);

	/* the layout directory, into an empty store */
	{
		struct store *u = new_store();

		CHECK_EQ_INT(image_load(u, layout, &load_opts, &res, &err), 0);
		CHECK_EQ_STR(err.msg, "");
		CHECK_EQ_INT(res.n, 1);
		CHECK_EQ_INT(n_images(u), 1);
		image_load_result_done(&res);
		store_free(u);
	}

	/* oci-archive: ref.name "t1" is a bare tag, so the image goes under its digest */
	CHECK_EQ_INT(image_load(s, ociar, &load_opts, &res, &err), 0);
	CHECK_EQ_STR(err.msg, "");
	CHECK_EQ_INT(res.n, 1);
	if (res.n == 1) {
		CHECK(!res.images[0].named);
		CHECK_EQ_STR(res.images[0].reference, res.images[0].manifest_digest);
		CHECK_EQ_INT(store_image_get(s, res.images[0].manifest_digest, &got, &err), 0);
		CHECK(snapshot_exists(s, &got));
	}
	image_load_result_done(&res);

	/* the layout directory itself: the same image, already in the store */
	CHECK_EQ_INT(image_load(s, layout, &load_opts, &res, &err), 0);
	CHECK_EQ_STR(err.msg, "");
	CHECK_EQ_INT(res.n, 1);
	image_load_result_done(&res);

	/* docker-archive: named by RepoTags */
	CHECK_EQ_INT(image_load(s, dockar, &load_opts, &res, &err), 0);
	CHECK_EQ_STR(err.msg, "");
	CHECK_EQ_INT(res.n, 1);
	CHECK_EQ_STR(res.n ? res.images[0].reference : "", "example.com/made/by-skopeo:t1");
	CHECK_EQ_INT(store_image_get(s, "example.com/made/by-skopeo:t1", &got, &err), 0);
	CHECK(snapshot_exists(s, &got));
	image_load_result_done(&res);
	CHECK_EQ_INT(n_images(s), 2);
	store_free(s);
}

/* ---- refusals ------------------------------------------------------------------------ */

static const char layout_json[] = "{\"imageLayoutVersion\":\"1.0.0\"}";

/* Load path into a fresh store: it must fail with code, a message containing what, and
 * leave no image and no snapshot. */
static void expect_refused(const char *path, int code, const char *what)
{
	struct store *s = new_store();
	struct cove_error err = { 0 };
	struct image_load_result res = { 0 };
	int r = image_load(s, path, &load_opts, &res, &err);

	if (r != -code)
		printf("# message: %s\n", err.msg);

	CHECK_EQ_INT(r, -code);
	if (!strstr(err.msg, what))
		printf("# message: %s\n", err.msg);
	CHECK(strstr(err.msg, what) != NULL);
	CHECK_EQ_INT(n_images(s), 0);
	CHECK_EQ_INT(n_snapshots(s), 0);
	CHECK_EQ_INT(res.n, 0);
	store_free(s);
}

TEST(refuse_wrong_blob)
{
	char file[300], name[100], d[DIGEST_STRING_MAX];

	digest_buffer("something else", 14, d);
	snprintf(name, sizeof(name), "blobs/sha256/%s", digest_hex(d));
	const struct tentry e[] = {
		{ .path = "oci-layout", .data = layout_json, .len = sizeof(layout_json) - 1 },
		{ .path = name, .data = "not that", .len = 8 },
	};
	tmp_path(file, sizeof(file), "wrong-blob.tar");
	write_tar_file(file, e, ARRAY_SIZE(e));
	expect_refused(file, EBADMSG, "does not match its digest");
}

TEST(refuse_dotdot)
{
	char file[300];
	const struct tentry e[] = {
		{ .path = "oci-layout", .data = layout_json, .len = sizeof(layout_json) - 1 },
		{ .path = "blobs/../../evil", .data = "x", .len = 1 },
	};

	tmp_path(file, sizeof(file), "dotdot.tar");
	write_tar_file(file, e, ARRAY_SIZE(e));
	expect_refused(file, EINVAL, "'..'");
}

TEST(refuse_absolute)
{
	char file[300];
	const struct tentry e[] = {
		{ .path = "/etc/evil", .data = "x", .len = 1 },
	};

	tmp_path(file, sizeof(file), "absolute.tar");
	write_tar_file(file, e, ARRAY_SIZE(e));
	expect_refused(file, EINVAL, "absolute path");
}

TEST(refuse_links)
{
	char file[300];
	const struct tentry sym[] = {
		{ .path = "oci-layout", .data = layout_json, .len = sizeof(layout_json) - 1 },
		{ .path = "index.json", .type = AE_IFLNK, .link = "/etc/passwd" },
	};
	const struct tentry hard[] = {
		{ .path = "oci-layout", .data = layout_json, .len = sizeof(layout_json) - 1 },
		{ .path = "index.json", .link = "oci-layout", .hardlink = true },
	};

	tmp_path(file, sizeof(file), "symlink.tar");
	write_tar_file(file, sym, ARRAY_SIZE(sym));
	expect_refused(file, EINVAL, "symbolic link");
	tmp_path(file, sizeof(file), "hardlink.tar");
	write_tar_file(file, hard, ARRAY_SIZE(hard));
	expect_refused(file, EINVAL, "hard link");
}

TEST(refuse_truncated)
{
	struct store *s = new_store();
	struct cove_error err = { 0 };
	struct test_image ti;
	const char *refs[] = { REF };
	char file[300];
	struct stat st;

	build_image(s, REF, "to be truncated\n", &ti);
	tmp_path(file, sizeof(file), "truncated.tar");
	CHECK_EQ_INT(save_to(s, refs, 1, IMAGE_ARCHIVE_OCI, file, &err), 0);
	CHECK_EQ_INT(stat(file, &st), 0);
	/* cut inside the last blob's data (the layer, the biggest) */
	CHECK_EQ_INT(truncate(file, st.st_size - 1024 - 700), 0);
	expect_refused(file, EBADMSG, "truncated");
	store_free(s);
}

TEST(refuse_oversized_manifest_json)
{
	size_t big = (4u << 20) + 1;
	char *data = calloc(1, big), file[300];

	memset(data, ' ', big);
	const struct tentry e[] = {
		{ .path = "manifest.json", .data = data, .len = big },
	};
	tmp_path(file, sizeof(file), "big-manifest.tar");
	write_tar_file(file, e, ARRAY_SIZE(e));
	expect_refused(file, EFBIG, "manifest.json");
	free(data);
}

TEST(refuse_not_an_archive)
{
	char file[300], dir[300];

	tmp_path(file, sizeof(file), "garbage.tar");
	write_file(file, "this is not a tar file at all, just some text......", 51);
	expect_refused(file, EINVAL, "not a tar archive");
	tmp_path(dir, sizeof(dir), "empty.dir");
	mkdir(dir, 0755);
	expect_refused(dir, ENOENT, "no oci-layout");
}

/* A docker archive whose layer does not match its config's diff id: refused, nothing kept
 * even though the config and the layer went into the store as blobs. */
TEST(refuse_docker_diff_id_mismatch)
{
	struct store *s = new_store();
	struct cove_error err = { 0 };
	struct test_image ti;
	char *config = NULL, manifest[512], file[300];
	size_t config_len = 0;

	build_image(s, REF, "mismatch\n", &ti);
	CHECK_EQ_INT(store_blob_read_small(s, ti.config, 1 << 20, &config, &config_len, &err), 0);
	snprintf(manifest, sizeof(manifest),
		 "[{\"Config\":\"c.json\",\"RepoTags\":[\"x:1\"],\"Layers\":[\"l/layer.tar\"]}]");
	const struct tentry e[] = {
		{ .path = "manifest.json", .data = manifest, .len = strlen(manifest) },
		{ .path = "c.json", .data = config, .len = config_len },
		{ .path = "l/layer.tar", .data = "not the layer", .len = 13 },
	};
	tmp_path(file, sizeof(file), "mismatch.docker.tar");
	write_tar_file(file, e, ARRAY_SIZE(e));
	expect_refused(file, EBADMSG, "does not match diff id");
	free(config);
	store_free(s);
}

TEST(save_unknown_image)
{
	struct store *s = new_store();
	struct cove_error err = { 0 };
	const char *refs[] = { "nosuch:image" };
	char file[300];

	tmp_path(file, sizeof(file), "unknown.tar");
	CHECK_EQ_INT(save_to(s, refs, 1, IMAGE_ARCHIVE_OCI, file, &err), -ENOENT);
	CHECK(strstr(err.msg, "nosuch:image") != NULL);
	store_free(s);
}

int main(void)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

	snprintf(tmp_root, sizeof(tmp_root), "%s/test_archive.XXXXXX", base);
	if (!mkdtemp(tmp_root)) {
		perror("mkdtemp");
		return 1;
	}
	have_tools = sh("command -v umoci >/dev/null && command -v skopeo >/dev/null") == 0;
	RUN(oci_round_trip);
	RUN(docker_round_trip);
	RUN(docker_foreign_layout);
	RUN(index_images);
	RUN(pipe_streaming);
	RUN(docker_unnamed);
	RUN(refuse_bad_layer_rolls_back);
	RUN(tools_read_ours);
	RUN(tools_write_we_load);
	RUN(refuse_wrong_blob);
	RUN(refuse_dotdot);
	RUN(refuse_absolute);
	RUN(refuse_links);
	RUN(refuse_truncated);
	RUN(refuse_oversized_manifest_json);
	RUN(refuse_not_an_archive);
	RUN(refuse_docker_diff_id_mismatch);
	RUN(save_unknown_image);
	if (!getenv("KEEP"))
		cleanup_tmp();
	return test_done();
}
