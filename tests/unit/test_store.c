/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/image/store: blobs (verify, wrong digest/size, resume, concurrent
 * writers in two processes), the image index (put/get/list/remove/tag) and GC, each in a
 * fresh temp dir.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <sys/file.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "image/store.h"
#include "test.h"

static char tmp_root[256];
static char store_dir[300];

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static struct store *fresh_store(void)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	struct cove_error err = { 0 };
	struct store *s = NULL;

	if (tmp_root[0])
		nftw(tmp_root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	snprintf(tmp_root, sizeof(tmp_root), "%s/test_store.XXXXXX", base);
	if (!mkdtemp(tmp_root)) {
		perror("mkdtemp");
		exit(1);
	}
	/* the store makes missing parents */
	snprintf(store_dir, sizeof(store_dir), "%s/state/images", tmp_root);
	if (store_open(store_dir, &s, &err) < 0) {
		printf("# %s\n", err.msg);
		exit(1);
	}
	return s;
}

static void fill(uint8_t *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		buf[i] = (uint8_t)(seed >> 16);
	}
}

static int count_dir(const char *sub)
{
	char path[512];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "%s/%s", store_dir, sub);
	d = opendir(path);
	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static bool exists(const char *sub)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", store_dir, sub);
	return lstat(path, &st) == 0;
}

/* ---- blobs ------------------------------------------------------------------------------ */

TEST(open_makes_layout)
{
	struct store *s = fresh_store();
	struct store *again = NULL;
	struct cove_error err = { 0 };

	CHECK(exists("blobs/sha256"));
	CHECK(exists("blobs/tmp"));
	CHECK(exists("snapshots"));
	CHECK(exists("oci-layout"));
	CHECK(exists("lock"));
	CHECK_EQ_STR(store_root(s), store_dir);
	CHECK_EQ_INT(store_open(store_dir, &again, &err), 0); /* idempotent */
	store_free(again);
	store_free(s);
	store_free(NULL);
}

TEST(write_commit_verify)
{
	struct store *s = fresh_store();
	struct store_blob_writer *w = NULL;
	struct cove_error err = { 0 };
	static uint8_t data[300000];
	char d[DIGEST_STRING_MAX], *buf = NULL;
	size_t len = 0;
	int fd;

	fill(data, sizeof(data), 1);
	digest_buffer(data, sizeof(data), d);
	CHECK(!store_blob_has(s, d));
	CHECK_EQ_INT(store_blob_writer_new(s, d, sizeof(data), &w, &err), 0);
	CHECK_EQ_INT(store_blob_writer_offset(w), 0);
	for (size_t off = 0; off < sizeof(data); off += 70000) {
		size_t n = sizeof(data) - off < 70000 ? sizeof(data) - off : 70000;
		CHECK_EQ_INT(store_blob_write(w, data + off, n, &err), 0);
		CHECK(!store_blob_has(s, d)); /* nothing visible before commit */
	}
	CHECK_EQ_INT(store_blob_commit(w, &err), 0);
	store_blob_writer_free(w);
	CHECK(store_blob_has(s, d));
	CHECK_EQ_INT(count_dir("blobs/tmp"), 0);

	fd = store_blob_open(s, d);
	CHECK(fd >= 0);
	if (fd >= 0) {
		uint64_t size = 0;
		char d2[DIGEST_STRING_MAX];

		CHECK_EQ_INT(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
		CHECK_EQ_INT(digest_fd(fd, 1 << 20, d2, &size, &err), 0);
		CHECK_EQ_STR(d2, d);
		CHECK_EQ_INT(size, sizeof(data));
		close(fd);
	}
	CHECK_EQ_INT(store_blob_read_small(s, d, sizeof(data), &buf, &len, &err), 0);
	CHECK_EQ_INT(len, sizeof(data));
	CHECK(buf && memcmp(buf, data, len) == 0 && buf[len] == '\0');
	free(buf);
	CHECK_EQ_INT(store_blob_read_small(s, d, sizeof(data) - 1, &buf, &len, &err), -EFBIG);
	CHECK_EQ_INT(store_blob_open(s, "sha256:00"), -EINVAL);
	CHECK(!store_blob_has(s, "sha512:00"));
	store_free(s);
}

TEST(wrong_digest)
{
	struct store *s = fresh_store();
	struct store_blob_writer *w = NULL;
	struct cove_error err = { 0 };
	char d[DIGEST_STRING_MAX], want[128];

	digest_buffer("hello", 5, d);
	CHECK_EQ_INT(store_blob_writer_new(s, d, 5, &w, &err), 0);
	CHECK_EQ_INT(store_blob_write(w, "hellO", 5, &err), 0);
	CHECK_EQ_INT(store_blob_commit(w, &err), -EBADMSG);
	snprintf(want, sizeof(want), "blob %s does not match its digest (got sha256:", d);
	CHECK(strncmp(err.msg, want, strlen(want)) == 0);
	CHECK_EQ_INT(count_dir("blobs/tmp"), 0);
	CHECK_EQ_INT(count_dir("blobs/sha256"), 0);
	err = (struct cove_error){ 0 };
	CHECK_EQ_INT(store_blob_write(w, "x", 1, &err), -EINVAL); /* dead after failure */
	store_blob_writer_free(w);

	err = (struct cove_error){ 0 };
	CHECK_EQ_INT(store_blob_writer_new(s, "sha512:abc", 5, &w, &err), -EOPNOTSUPP);
	CHECK_EQ_INT(store_blob_put(s, "hellO", 5, d, NULL, &err), -EBADMSG);
	CHECK_EQ_INT(count_dir("blobs/sha256"), 0);
	store_free(s);
}

TEST(wrong_size)
{
	struct store *s = fresh_store();
	struct store_blob_writer *w = NULL;
	struct cove_error err = { 0 };
	char d[DIGEST_STRING_MAX];

	digest_buffer("hello", 5, d);
	/* short: the right bytes but fewer than announced */
	CHECK_EQ_INT(store_blob_writer_new(s, d, 6, &w, &err), 0);
	CHECK_EQ_INT(store_blob_write(w, "hello", 5, &err), 0);
	CHECK_EQ_INT(store_blob_commit(w, &err), -EBADMSG);
	CHECK(strstr(err.msg, "is short: got 5 of 6 bytes") != NULL);
	store_blob_writer_free(w);
	CHECK_EQ_INT(count_dir("blobs/tmp"), 0);

	/* long: fails as soon as too much arrives */
	err = (struct cove_error){ 0 };
	CHECK_EQ_INT(store_blob_writer_new(s, d, 4, &w, &err), 0);
	CHECK_EQ_INT(store_blob_write(w, "hel", 3, &err), 0);
	CHECK_EQ_INT(store_blob_write(w, "lo", 2, &err), -EBADMSG);
	CHECK(strstr(err.msg, "larger than its expected 4 bytes") != NULL);
	CHECK_EQ_INT(count_dir("blobs/tmp"), 0);
	err = (struct cove_error){ 0 };
	CHECK_EQ_INT(store_blob_commit(w, &err), -EINVAL);
	store_blob_writer_free(w);
	CHECK_EQ_INT(count_dir("blobs/sha256"), 0);
	store_free(s);
}

TEST(resume_partial)
{
	struct store *s = fresh_store();
	struct store_blob_writer *w = NULL;
	struct cove_error err = { 0 };
	static uint8_t data[200000];
	char d[DIGEST_STRING_MAX], partial[128];

	fill(data, sizeof(data), 2);
	digest_buffer(data, sizeof(data), d);
	snprintf(partial, sizeof(partial), "blobs/tmp/%s.partial", digest_hex(d));

	CHECK_EQ_INT(store_blob_writer_new(s, d, sizeof(data), &w, &err), 0);
	CHECK_EQ_INT(store_blob_write(w, data, 123457, &err), 0);
	store_blob_writer_free(w); /* the connection dropped: the partial stays */
	CHECK(exists(partial));
	CHECK(!store_blob_has(s, d));

	w = NULL;
	CHECK_EQ_INT(store_blob_writer_new(s, d, sizeof(data), &w, &err), 0);
	CHECK_EQ_INT(store_blob_writer_offset(w), 123457);
	CHECK_EQ_INT(store_blob_write(w, data + 123457, sizeof(data) - 123457, &err), 0);
	CHECK_EQ_INT(store_blob_commit(w, &err), 0);
	store_blob_writer_free(w);
	CHECK(store_blob_has(s, d));
	CHECK(!exists(partial));

	/* a partial longer than the blob is emptied */
	CHECK_EQ_INT(store_blob_writer_new(s, d, 10, &w, &err), 0);
	CHECK_EQ_INT(store_blob_write(w, data, 10, &err), 0);
	store_blob_writer_free(w);
	CHECK_EQ_INT(store_blob_writer_new(s, d, 5, &w, &err), 0);
	CHECK_EQ_INT(store_blob_writer_offset(w), 0);
	store_blob_writer_discard(w);
	CHECK(!exists(partial));

	/* a partial with wrong bytes (a crash left garbage) fails at commit, then is gone */
	{
		char other[DIGEST_STRING_MAX];

		digest_buffer("abcdef", 6, other);
		CHECK_EQ_INT(store_blob_writer_new(s, other, 6, &w, &err), 0);
		CHECK_EQ_INT(store_blob_write(w, "XYZ", 3, &err), 0);
		store_blob_writer_free(w);
		CHECK_EQ_INT(store_blob_writer_new(s, other, 6, &w, &err), 0);
		CHECK_EQ_INT(store_blob_writer_offset(w), 3);
		CHECK_EQ_INT(store_blob_write(w, "def", 3, &err), 0);
		CHECK_EQ_INT(store_blob_commit(w, &err), -EBADMSG);
		store_blob_writer_free(w);
		CHECK_EQ_INT(count_dir("blobs/tmp"), 0);
		CHECK_EQ_INT(store_blob_put(s, "abcdef", 6, other, NULL, &err), 0);
		CHECK(store_blob_has(s, other));
	}
	store_free(s);
}

TEST(second_writer_of_a_held_partial_writes_privately)
{
	struct store *s = fresh_store();
	struct store_blob_writer *a = NULL, *b = NULL;
	struct cove_error err = { 0 };
	char d[DIGEST_STRING_MAX];

	digest_buffer("0123456789", 10, d);
	CHECK_EQ_INT(store_blob_writer_new(s, d, 10, &a, &err), 0);
	CHECK_EQ_INT(store_blob_write(a, "01234", 5, &err), 0);
	CHECK_EQ_INT(store_blob_writer_new(s, d, 10, &b, &err), 0);
	CHECK_EQ_INT(store_blob_writer_offset(b), 0);
	CHECK_EQ_INT(count_dir("blobs/tmp"), 2);
	CHECK_EQ_INT(store_blob_write(b, "0123456789", 10, &err), 0);
	CHECK_EQ_INT(store_blob_commit(b, &err), 0);
	CHECK_EQ_INT(store_blob_write(a, "56789", 5, &err), 0);
	CHECK_EQ_INT(store_blob_commit(a, &err), 0); /* already there: temp dropped */
	store_blob_writer_free(a);
	store_blob_writer_free(b);
	CHECK_EQ_INT(count_dir("blobs/tmp"), 0);
	CHECK_EQ_INT(count_dir("blobs/sha256"), 1);
	store_free(s);
}

static int child_write(const char *digest, const uint8_t *data, size_t len, unsigned seed)
{
	struct store *s = NULL;
	struct store_blob_writer *w = NULL;
	struct cove_error err = { 0 };
	int r;

	if (store_open(store_dir, &s, &err) < 0)
		return 2;
	r = store_blob_writer_new(s, digest, len, &w, &err);
	for (size_t off = store_blob_writer_offset(w); r == 0 && off < len;) {
		size_t n = 1 + (seed = seed * 1103515245u + 12345u) % 65536;

		if (n > len - off)
			n = len - off;
		r = store_blob_write(w, data + off, n, &err);
		off += n;
		if ((seed >> 8) % 4 == 0)
			usleep(100);
	}
	if (r == 0)
		r = store_blob_commit(w, &err);
	if (r < 0)
		fprintf(stderr, "child: %s\n", err.msg);
	store_blob_writer_free(w);
	store_free(s);
	return r < 0 ? 1 : 0;
}

TEST(concurrent_writers_in_two_processes)
{
	struct store *s = fresh_store();
	static uint8_t data[1 << 20];
	char d[DIGEST_STRING_MAX];

	fill(data, sizeof(data), 3);
	digest_buffer(data, sizeof(data), d);
	for (int round = 0; round < 5; round++) {
		pid_t pids[2];
		int status, ok = 0;

		if (round > 0) {
			char path[512];

			snprintf(path, sizeof(path), "%s/blobs/sha256/%s", store_dir,
				 digest_hex(d));
			unlink(path);
		}
		for (int i = 0; i < 2; i++) {
			pids[i] = fork();
			if (pids[i] == 0)
				_exit(child_write(d, data, sizeof(data),
						  (unsigned)(round * 2 + i)));
		}
		/* a reader meanwhile never sees a partial blob */
		for (int i = 0; i < 200; i++) {
			struct stat st;
			char path[512];

			snprintf(path, sizeof(path), "%s/blobs/sha256/%s", store_dir,
				 digest_hex(d));
			if (stat(path, &st) == 0)
				CHECK_EQ_INT(st.st_size, sizeof(data));
			usleep(50);
		}
		for (int i = 0; i < 2; i++) {
			CHECK(waitpid(pids[i], &status, 0) == pids[i]);
			ok += WIFEXITED(status) && WEXITSTATUS(status) == 0;
		}
		CHECK_EQ_INT(ok, 2);
		CHECK(store_blob_has(s, d));
		CHECK_EQ_INT(count_dir("blobs/sha256"), 1);
		CHECK_EQ_INT(count_dir("blobs/tmp"), 0);
	}
	{
		struct cove_error err = { 0 };
		char *buf = NULL;
		size_t len = 0;

		CHECK_EQ_INT(store_blob_read_small(s, d, sizeof(data), &buf, &len, &err), 0);
		free(buf);
	}
	store_free(s);
}

TEST(corrupt_blob_detected_on_read)
{
	struct store *s = fresh_store();
	struct cove_error err = { 0 };
	char d[DIGEST_STRING_MAX], path[512], *buf = NULL;
	size_t len;
	int fd;

	CHECK_EQ_INT(store_blob_put(s, "{\"a\":1}", 7, NULL, d, &err), 0);
	snprintf(path, sizeof(path), "%s/blobs/sha256/%s", store_dir, digest_hex(d));
	fd = open(path, O_WRONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK_EQ_INT(pwrite(fd, "2", 1, 5), 1);
	close(fd);
	CHECK_EQ_INT(store_blob_read_small(s, d, 100, &buf, &len, &err), -EBADMSG);
	CHECK(strstr(err.msg, "is corrupt") != NULL);
	CHECK(buf == NULL);
	store_free(s);
}

/* ---- images ----------------------------------------------------------------------------- */

struct fake_image {
	char manifest[DIGEST_STRING_MAX];
	char config[DIGEST_STRING_MAX];
	char layers[2][DIGEST_STRING_MAX];
};

/* Store a config, two layers (layer0 seeded by seed, layer1 shared by all) and a manifest. */
static void make_image(struct store *s, unsigned seed, struct fake_image *img)
{
	struct cove_error err = { 0 };
	uint8_t layer[4096];
	char config[512], manifest[2048];
	uint64_t lsize[2] = { sizeof(layer), 100 };

	fill(layer, sizeof(layer), seed);
	CHECK_EQ_INT(store_blob_put(s, layer, sizeof(layer), NULL, img->layers[0], &err), 0);
	fill(layer, 100, 999);
	CHECK_EQ_INT(store_blob_put(s, layer, 100, NULL, img->layers[1], &err), 0);
	snprintf(config, sizeof(config),
		 "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Env\":[\"S=%u\"]},"
		 "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"%s\",\"%s\"]}}",
		 seed, img->layers[0], img->layers[1]);
	CHECK_EQ_INT(store_blob_put(s, config, strlen(config), NULL, img->config, &err), 0);
	snprintf(manifest, sizeof(manifest),
		 "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":\"%s\","
		 "\"digest\":\"%s\",\"size\":%zu},\"layers\":[{\"mediaType\":"
		 "\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"%s\",\"size\":%llu},"
		 "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"%s\","
		 "\"size\":%llu}]}",
		 MEDIA_TYPE_OCI_MANIFEST, MEDIA_TYPE_OCI_CONFIG, img->config, strlen(config),
		 img->layers[0], (unsigned long long)lsize[0], img->layers[1],
		 (unsigned long long)lsize[1]);
	CHECK_EQ_INT(store_blob_put(s, manifest, strlen(manifest), NULL, img->manifest, &err), 0);
}

static struct store_image record(const char *ref, const struct fake_image *f)
{
	struct store_image img = { .media_type = IMAGE_MEDIA_TYPE_OCI_MANIFEST };

	snprintf(img.reference, sizeof(img.reference), "%s", ref);
	memcpy(img.manifest_digest, f->manifest, DIGEST_STRING_MAX);
	memcpy(img.config_digest, f->config, DIGEST_STRING_MAX);
	return img;
}

TEST(image_put_get_list_remove_tag)
{
	struct store *s = fresh_store();
	struct cove_error err = { 0 };
	struct fake_image a, b;
	struct store_image img, got, *list = NULL;
	size_t n = 0;
	char *json = NULL;
	size_t json_len = 0;

	make_image(s, 1, &a);
	make_image(s, 2, &b);
	img = record("docker.io/library/debian:bookworm", &a);
	CHECK_EQ_INT(store_blob_put(s, "", 0, NULL, NULL, &err), 0); /* empty blob is fine */
	CHECK_EQ_INT(store_snapshot_name(a.manifest, img.snapshot), 0);
	img.created = 1704844800; /* 2024-01-10T00:00:00Z */
	CHECK_EQ_INT(store_image_put(s, &img, &err), 0);
	CHECK_EQ_INT(store_image_get(s, "docker.io/library/debian:bookworm", &got, &err), 0);
	CHECK_EQ_STR(got.manifest_digest, a.manifest);
	CHECK_EQ_STR(got.config_digest, a.config);
	CHECK_EQ_INT(got.media_type, IMAGE_MEDIA_TYPE_OCI_MANIFEST);
	CHECK_EQ_INT(got.created, 1704844800);
	CHECK(got.manifest_size > 100);
	CHECK(strncmp(got.snapshot, "snapshots/", 10) == 0);

	img = record("127.0.0.1:5000/foo@"
		     "sha256:0000000000000000000000000000000000000000000000000000000000000000",
		     &b);
	CHECK_EQ_INT(store_image_put(s, &img, &err), 0);
	CHECK_EQ_INT(store_image_tag(s, "docker.io/library/debian:bookworm",
				     "docker.io/library/debian:12", &err),
		     0);
	CHECK_EQ_INT(store_image_list(s, &list, &n, &err), 0);
	CHECK_EQ_INT(n, 3);
	if (n == 3) {
		CHECK_EQ_STR(list[0].reference, "docker.io/library/debian:bookworm");
		CHECK_EQ_STR(list[2].reference, "docker.io/library/debian:12");
		CHECK_EQ_STR(list[2].manifest_digest, a.manifest);
		CHECK_EQ_STR(list[1].manifest_digest, b.manifest);
		CHECK(list[1].created > 1704844800);
		CHECK(list[1].snapshot[0] == '\0');
	}
	free(list);

	/* put replaces */
	img = record("docker.io/library/debian:12", &b);
	CHECK_EQ_INT(store_image_put(s, &img, &err), 0);
	CHECK_EQ_INT(store_image_get(s, "docker.io/library/debian:12", &got, &err), 0);
	CHECK_EQ_STR(got.manifest_digest, b.manifest);

	/* index.json is an OCI index our own parser reads */
	CHECK_EQ_INT(read_file("index.json", 0, &json, &json_len), -ENOENT);
	{
		char path[512];
		struct image_index *idx = NULL;

		snprintf(path, sizeof(path), "%s/index.json", store_dir);
		CHECK_EQ_INT(read_file(path, 1 << 20, &json, &json_len), 0);
		CHECK_EQ_INT(image_index_parse(json, json_len, NULL, &idx, &err), 0);
		if (idx)
			CHECK_EQ_INT(idx->n_manifests, 3);
		image_index_free(idx);
		free(json);
	}

	CHECK_EQ_INT(store_image_remove(s, "docker.io/library/debian:bookworm", &err), 0);
	err = (struct cove_error){ 0 };
	CHECK_EQ_INT(store_image_get(s, "docker.io/library/debian:bookworm", &got, &err), -ENOENT);
	CHECK_EQ_STR(err.msg, "no image 'docker.io/library/debian:bookworm' in the store");
	err = (struct cove_error){ 0 };
	CHECK_EQ_INT(store_image_remove(s, "docker.io/library/debian:bookworm", &err), -ENOENT);
	err = (struct cove_error){ 0 };
	CHECK_EQ_INT(store_image_tag(s, "nope:1", "nope:2", &err), -ENOENT);
	err = (struct cove_error){ 0 };
	CHECK_EQ_INT(store_image_get(s, "bad ref", &got, &err), -EINVAL);

	/* the manifest must be stored first */
	img = record("x:1", &a);
	img.manifest_digest[10] = img.manifest_digest[10] == '0' ? '1' : '0';
	err = (struct cove_error){ 0 };
	CHECK_EQ_INT(store_image_put(s, &img, &err), -ENOENT);
	CHECK(strstr(err.msg, "is not in the store") != NULL);
	img = record("x:1", &a);
	snprintf(img.snapshot, sizeof(img.snapshot), "../../etc/passwd");
	CHECK_EQ_INT(store_image_put(s, &img, NULL), -EINVAL);
	CHECK_EQ_INT(store_image_list(s, &list, &n, &err), 0);
	CHECK_EQ_INT(n, 2);
	free(list);
	store_free(s);
}

TEST(snapshot_path)
{
	struct store *s = fresh_store();
	char buf[512], want[512];
	const char *d = "sha256:abababababababababababababababababababababababababababababababab";

	CHECK_EQ_INT(store_snapshot_path(s, d, buf, sizeof(buf)), 0);
	snprintf(want, sizeof(want), "%s/snapshots/%s.ext4", store_dir, d + 7);
	CHECK_EQ_STR(buf, want);
	CHECK_EQ_INT(store_snapshot_path(s, "sha256:ab", buf, sizeof(buf)), -EINVAL);
	CHECK_EQ_INT(store_snapshot_path(s, d, buf, 20), -ENAMETOOLONG);
	store_free(s);
}

static void touch(const char *sub, size_t size, time_t age)
{
	char path[512];
	struct timespec ts[2];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", store_dir, sub);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	if (ftruncate(fd, (off_t)size) < 0)
		perror("ftruncate");
	ts[0].tv_sec = ts[1].tv_sec = time(NULL) - age;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	futimens(fd, ts);
	close(fd);
}

static bool has_blob(struct store *s, const char *d)
{
	return store_blob_has(s, d);
}

TEST(gc)
{
	struct store *s = fresh_store();
	struct cove_error err = { 0 };
	struct fake_image a, b, c;
	int ylock = -1;
	struct store_image img;
	char idx_digest[DIGEST_STRING_MAX], orphan[DIGEST_STRING_MAX], index[2048], snap[128];
	uint64_t freed = 0;

	make_image(s, 1, &a);
	make_image(s, 2, &b);
	make_image(s, 3, &c); /* never named: garbage */
	CHECK_EQ_INT(store_blob_put(s, "orphan", 6, NULL, orphan, &err), 0);
	/* b is named through an index that also lists a manifest that was never pulled */
	snprintf(index, sizeof(index),
		 "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":[{\"mediaType\":\"%s\","
		 "\"digest\":\"%s\",\"size\":10,\"platform\":{\"os\":\"linux\",\"architecture\":"
		 "\"amd64\"}},{\"mediaType\":\"%s\",\"digest\":\"sha256:%064d\",\"size\":10,"
		 "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\"}}]}",
		 MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST, b.manifest, MEDIA_TYPE_OCI_MANIFEST,
		 7);
	CHECK_EQ_INT(store_blob_put(s, index, strlen(index), NULL, idx_digest, &err), 0);

	img = record("a:1", &a);
	CHECK_EQ_INT(store_snapshot_name(a.manifest, img.snapshot), 0);
	CHECK_EQ_INT(store_image_put(s, &img, &err), 0);
	img = record("b:1", &b);
	memcpy(img.manifest_digest, idx_digest, sizeof(idx_digest));
	img.media_type = IMAGE_MEDIA_TYPE_OCI_INDEX;
	CHECK_EQ_INT(store_image_put(s, &img, &err), 0);

	snprintf(snap, sizeof(snap), "snapshots/%s.ext4", digest_hex(a.manifest));
	touch(snap, 1000, 0);
	snprintf(snap, sizeof(snap), "snapshots/%s.ext4", digest_hex(b.manifest));
	touch(snap, 1000, 0);
	snprintf(snap, sizeof(snap), "snapshots/%s.ext4", digest_hex(c.manifest));
	touch(snap, 1000, 0);			    /* c's: removed */
	touch("snapshots/x.ext4.Ab12Cd", 50, 7200); /* a dead ext4 writer's temp: removed */
	touch("snapshots/z.ext4.Ab12Cd", 50, 0);    /* fresh, but its writer is dead: removed */
	touch("snapshots/y.ext4.Ab12Cd", 50, 0);    /* its writer holds it: kept */
	{
		char y[512];
		snprintf(y, sizeof(y), "%s/snapshots/y.ext4.Ab12Cd", store_dir);
		ylock = open(y, O_RDONLY | O_CLOEXEC);
		CHECK(ylock >= 0 && flock(ylock, LOCK_EX) == 0);
	}
	touch("blobs/tmp/old.partial", 40, 7200);   /* stale: removed */
	touch("blobs/tmp/new.partial", 40, 0);	    /* fresh: kept */

	CHECK_EQ_INT(count_dir("blobs/sha256"), 3 * 3 + 1 + 1 + 1); /* layer1 is shared */
	store_unpin(s);						    /* store_blob_put pinned it */
	CHECK_EQ_INT(store_gc(s, &freed, &err), 0);
	if (err.code)
		printf("# %s\n", err.msg);
	CHECK(has_blob(s, a.manifest) && has_blob(s, a.config) && has_blob(s, a.layers[0]));
	CHECK(has_blob(s, a.layers[1]));
	CHECK(has_blob(s, idx_digest) && has_blob(s, b.manifest) && has_blob(s, b.config));
	CHECK(has_blob(s, b.layers[0]));
	CHECK(!has_blob(s, c.manifest) && !has_blob(s, c.config) && !has_blob(s, c.layers[0]));
	CHECK(!has_blob(s, orphan));
	CHECK_EQ_INT(count_dir("snapshots"), 3);
	CHECK(!exists("snapshots/x.ext4.Ab12Cd") && exists("snapshots/y.ext4.Ab12Cd"));
	CHECK(!exists("snapshots/z.ext4.Ab12Cd"));
	CHECK(!exists("blobs/tmp/old.partial") && exists("blobs/tmp/new.partial"));
	/* the disk space given back (blocks, not sizes: a half-written snapshot is sparse): c's
	 * manifest, config and 4096-byte layer, the orphan and the temps, a block or so each */
	CHECK(freed >= 4096 + 3 * 512);
	CHECK(freed <= 16 * 4096);
	/* image prune: a dead writer's download goes too, fresh or not */
	CHECK_EQ_INT(store_gc_all(s, &freed, &err), 0);
	CHECK(!exists("blobs/tmp/new.partial") && exists("snapshots/y.ext4.Ab12Cd"));

	/* remove a: its own blobs go, the shared layer stays for b */
	CHECK_EQ_INT(store_image_remove(s, "a:1", &err), 0);
	CHECK_EQ_INT(store_pin(s, &err), 0);
	CHECK_EQ_INT(store_gc(s, &freed, &err), 0); /* our own pin does not block us */
	CHECK(!has_blob(s, a.manifest) && !has_blob(s, a.layers[0]));
	CHECK(has_blob(s, a.layers[1]) && has_blob(s, b.layers[1]));
	CHECK_EQ_INT(count_dir("snapshots"), 2); /* b's, and y while its writer lives */
	CHECK(freed >= 4096 + 1000);
	close(ylock);
	store_free(s);
}

TEST(gc_refuses_while_another_process_pins)
{
	struct store *s = fresh_store();
	struct cove_error err = { 0 };
	int to_child[2], from_child[2];
	uint64_t freed;
	pid_t pid;
	char c;

	CHECK_EQ_INT(pipe(to_child), 0);
	CHECK_EQ_INT(pipe(from_child), 0);
	pid = fork();
	if (pid == 0) {
		struct store *cs = NULL;

		if (store_open(store_dir, &cs, NULL) < 0 || store_pin(cs, NULL) < 0)
			_exit(1);
		(void)!write(from_child[1], "p", 1);
		(void)!read(to_child[0], &c, 1);
		store_free(cs);
		_exit(0);
	}
	CHECK_EQ_INT(read(from_child[0], &c, 1), 1);
	CHECK_EQ_INT(store_gc(s, &freed, &err), -EBUSY);
	CHECK(strstr(err.msg, "is busy") != NULL);
	CHECK_EQ_INT(write(to_child[1], "q", 1), 1);
	waitpid(pid, NULL, 0);
	err = (struct cove_error){ 0 };
	CHECK_EQ_INT(store_gc(s, &freed, &err), 0);
	CHECK_EQ_INT(freed, 0);
	close(to_child[0]);
	close(to_child[1]);
	close(from_child[0]);
	close(from_child[1]);
	store_free(s);
}

TEST(gc_stops_on_a_corrupt_manifest)
{
	struct store *s = fresh_store();
	struct cove_error err = { 0 };
	struct fake_image a;
	struct store_image img;
	char path[512], orphan[DIGEST_STRING_MAX];
	uint64_t freed;
	int fd;

	make_image(s, 1, &a);
	CHECK_EQ_INT(store_blob_put(s, "orphan", 6, NULL, orphan, &err), 0);
	img = record("a:1", &a);
	CHECK_EQ_INT(store_image_put(s, &img, &err), 0);
	snprintf(path, sizeof(path), "%s/blobs/sha256/%s", store_dir, digest_hex(a.manifest));
	fd = open(path, O_WRONLY | O_CLOEXEC);
	CHECK_EQ_INT(pwrite(fd, "[", 1, 0), 1);
	close(fd);
	CHECK_EQ_INT(store_gc(s, &freed, &err), -EBADMSG);
	CHECK(strstr(err.msg, "nothing was removed") != NULL);
	CHECK(has_blob(s, orphan) && has_blob(s, a.layers[0]));
	store_free(s);
}

int main(void)
{
	RUN(open_makes_layout);
	RUN(write_commit_verify);
	RUN(wrong_digest);
	RUN(wrong_size);
	RUN(resume_partial);
	RUN(second_writer_of_a_held_partial_writes_privately);
	RUN(concurrent_writers_in_two_processes);
	RUN(corrupt_blob_detected_on_read);
	RUN(image_put_get_list_remove_tag);
	RUN(snapshot_path);
	RUN(gc);
	RUN(gc_refuses_while_another_process_pins);
	RUN(gc_stops_on_a_corrupt_manifest);
	if (tmp_root[0])
		nftw(tmp_root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return test_done();
}
