/* SPDX-License-Identifier: Apache-2.0 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* renameat, timegm, strptime */
#endif
#include "store.h"
#include "json.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#define HEX_LEN	     DIGEST_SHA256_HEX_LEN
#define TMP_NAME_MAX 128
#define HASH_CHUNK   (128u * 1024u)
#define GC_MAX_DEPTH 4 /* index -> index -> ... -> manifest */

#define ANNOTATION_REF	    "org.opencontainers.image.ref.name"
#define ANNOTATION_CONFIG   "io.cove.image.config"
#define ANNOTATION_CREATED  "io.cove.image.created"
#define ANNOTATION_SNAPSHOT "io.cove.image.snapshot"

struct store {
	char *root;
	int root_fd;
	int blobs_fd; /* blobs/sha256 */
	int tmp_fd;   /* blobs/tmp */
	int snapshots_fd;
	int lock_fd; /* ROOT/lock: index.json read-modify-write */
	int gc_fd;   /* ROOT/gc.lock: shared = pinned, exclusive = GC */
	bool pinned;
};

#define BLOB_KICK (16ULL << 20)

struct store_blob_writer {
	struct store *store;
	char digest[DIGEST_STRING_MAX];
	uint64_t expected;
	struct digest_hasher *hasher; /* its count is the bytes in the temp file */
	int fd;
	char tmp_name[TMP_NAME_MAX]; /* in blobs/tmp; "" once removed or renamed */
	bool partial;		     /* tmp is <hex>.partial, locked by us */
	bool done;		     /* committed or failed: only free is left */
};



static int flock_retry(int fd, int op)
{
	while (flock(fd, op) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

/* 16 random hex digits for temp names (from the clock where the kernel has no entropy yet). */
static void temp_hex(char out[17])
{
	static uint64_t counter;

	if (random_hex(out, 8) < 0)
		str_printf(out, 17, "%016" PRIx64,
			   now_ns() ^ ((uint64_t)getpid() << 32) ^ ++counter);
}

/* ---- open ------------------------------------------------------------------------------- */

static int open_subdir(int dir_fd, const char *name, int *ret)
{
	int fd;

	if (mkdirat(dir_fd, name, 0755) < 0 && errno != EEXIST)
		return -errno;
	fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	*ret = fd;
	return 0;
}

/* Write name in the root atomically: a temp file in blobs/tmp, fsync, rename, fsync root. */
static int write_atomic(struct store *s, const char *name, const void *data, size_t len)
{
	char tmp[TMP_NAME_MAX], rnd[17];
	_cleanup_close_ int fd = -1;
	int r;

	temp_hex(rnd);
	r = str_printf(tmp, sizeof(tmp), "%s.%s.tmp", name, rnd);
	if (r < 0)
		return r;
	fd = openat(s->tmp_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return -errno;
	r = write_full(fd, data, len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (r == 0 && renameat(s->tmp_fd, tmp, s->root_fd, name) < 0)
		r = -errno;
	if (r < 0) {
		(void)unlinkat(s->tmp_fd, tmp, 0);
		return r;
	}
	(void)fsync(s->root_fd);
	return 0;
}

static int open_lock_file(struct store *s, const char *name, int *ret)
{
	int fd = openat(s->root_fd, name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);

	if (fd < 0)
		return -errno;
	*ret = fd;
	return 0;
}

int store_open(const char *root, struct store **ret, struct cove_error *err)
{
	static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}\n";
	struct store *s;
	_cleanup_close_ int blobs = -1;
	struct stat st;
	int r;

	s = calloc(1, sizeof(*s));
	if (!s)
		return cove_error_set(err, ENOMEM, "out of memory");
	s->root_fd = s->blobs_fd = s->tmp_fd = s->snapshots_fd = s->lock_fd = s->gc_fd = -1;
	s->root = strdup(root);
	if (!s->root) {
		store_free(s);
		return cove_error_set(err, ENOMEM, "out of memory");
	}
	r = mkdir_p(root, 0755);
	if (r < 0)
		goto fail;
	s->root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->root_fd < 0) {
		r = -errno;
		goto fail;
	}
	r = open_subdir(s->root_fd, "blobs", &blobs);
	if (r < 0)
		goto fail;
	r = open_subdir(blobs, "sha256", &s->blobs_fd);
	if (r < 0)
		goto fail;
	r = open_subdir(blobs, "tmp", &s->tmp_fd);
	if (r < 0)
		goto fail;
	r = open_subdir(s->root_fd, "snapshots", &s->snapshots_fd);
	if (r < 0)
		goto fail;
	r = open_lock_file(s, "lock", &s->lock_fd);
	if (r < 0)
		goto fail;
	r = open_lock_file(s, "gc.lock", &s->gc_fd);
	if (r < 0)
		goto fail;
	if (fstatat(s->root_fd, "oci-layout", &st, AT_SYMLINK_NOFOLLOW) < 0) {
		r = errno == ENOENT ? write_atomic(s, "oci-layout", layout, sizeof(layout) - 1)
				    : -errno;
		if (r < 0)
			goto fail;
	}
	*ret = s;
	return 0;
fail:
	store_free(s);
	return cove_error_set(err, r, "unable to open the image store '%s': %s", root,
			      strerror(-r));
}

void store_free(struct store *s)
{
	if (!s)
		return;
	closep(&s->root_fd);
	closep(&s->blobs_fd);
	closep(&s->tmp_fd);
	closep(&s->snapshots_fd);
	closep(&s->lock_fd);
	closep(&s->gc_fd); /* drops the pin */
	free(s->root);
	free(s);
}

const char *store_root(const struct store *s)
{
	return s->root;
}

int store_pin(struct store *s, struct cove_error *err)
{
	int r;

	if (s->pinned)
		return 0;
	r = flock_retry(s->gc_fd, LOCK_SH);
	if (r < 0)
		return cove_error_set(err, r, "unable to lock the image store '%s': %s", s->root,
				      strerror(-r));
	s->pinned = true;
	return 0;
}

void store_unpin(struct store *s)
{
	if (!s->pinned)
		return;
	(void)flock(s->gc_fd, LOCK_UN);
	s->pinned = false;
}

/* ---- blobs ------------------------------------------------------------------------------ */

bool store_blob_has(struct store *s, const char *digest)
{
	struct stat st;

	if (!digest_is_valid(digest))
		return false;
	return fstatat(s->blobs_fd, digest_hex(digest), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISREG(st.st_mode);
}

int store_blob_open(struct store *s, const char *digest)
{
	int fd;

	if (!digest_is_valid(digest))
		return -EINVAL;
	fd = openat(s->blobs_fd, digest_hex(digest), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	return fd < 0 ? -errno : fd;
}

int store_blob_read_small(struct store *s, const char *digest, size_t max, char **ret,
			  size_t *ret_len, struct cove_error *err)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	char got[DIGEST_STRING_MAX];
	struct stat st;
	size_t len;
	int r;

	r = digest_validate(digest, err);
	if (r < 0)
		return r;
	fd = store_blob_open(s, digest);
	if (fd < 0)
		return cove_error_set(err, fd, "unable to open blob %s: %s", digest,
				      fd == -ENOENT ? "it is not in the store" : strerror(-fd));
	if (fstat(fd, &st) < 0)
		return cove_error_set(err, errno, "unable to stat blob %s: %s", digest,
				      strerror(errno));
	if (!S_ISREG(st.st_mode) || st.st_size < 0 || (uint64_t)st.st_size > max)
		return cove_error_set(err, EFBIG, "blob %s is %lld bytes, more than %zu", digest,
				      (long long)st.st_size, max);
	len = (size_t)st.st_size;
	buf = malloc(len + 1);
	if (!buf)
		return cove_error_set(err, ENOMEM, "out of memory reading blob %s", digest);
	r = read_full(fd, buf, len);
	if (r < 0)
		return cove_error_set(err, r, "unable to read blob %s: %s", digest, strerror(-r));
	buf[len] = '\0';
	r = digest_buffer(buf, len, got);
	if (r < 0)
		return cove_error_set(err, r, "unable to hash blob %s", digest);
	if (strcmp(got, digest) != 0)
		return cove_error_set(err, EBADMSG,
				      "blob %s in the store is corrupt (its content is %s); remove "
				      "the image and pull it again",
				      digest, got);
	*ret = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}

static void writer_remove_temp(struct store_blob_writer *w)
{
	if (w->tmp_name[0]) {
		(void)unlinkat(w->store->tmp_fd, w->tmp_name, 0);
		w->tmp_name[0] = '\0';
	}
}

/* Hash what an existing partial holds; one that is longer than expected or unreadable is
 * emptied. Leaves the file offset at its end. */
static int writer_rehash(struct store_blob_writer *w, uint64_t size)
{
	_cleanup_free_ uint8_t *chunk = NULL;
	uint64_t done = 0;
	int r = 0;

	if (size > w->expected)
		goto empty;
	chunk = malloc(HASH_CHUNK);
	if (!chunk)
		return -ENOMEM;
	while (done < size) {
		size_t n = size - done < HASH_CHUNK ? (size_t)(size - done) : HASH_CHUNK;
		ssize_t got = pread(w->fd, chunk, n, (off_t)done);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			goto empty;
		r = digest_hasher_update(w->hasher, chunk, (size_t)got);
		if (r < 0)
			return r;
		done += (uint64_t)got;
	}
	if (lseek(w->fd, (off_t)size, SEEK_SET) < 0)
		return -errno;
	return 0;
empty:
	r = digest_hasher_reset(w->hasher);
	if (r < 0)
		return r;
	if (ftruncate(w->fd, 0) < 0 || lseek(w->fd, 0, SEEK_SET) < 0)
		return -errno;
	return 0;
}

/* Take blobs/tmp/<hex>.partial: 1 if we hold it, 0 if another writer does, or -errno. The
 * name is checked to still be the inode we locked (a committing writer renames it away). */
static int writer_take_partial(struct store_blob_writer *w)
{
	struct stat st_fd, st_name;
	int r;

	r = str_printf(w->tmp_name, sizeof(w->tmp_name), "%s.partial", digest_hex(w->digest));
	if (r < 0)
		return r;
	for (int attempt = 0; attempt < 8; attempt++) {
		_cleanup_close_ int fd = openat(w->store->tmp_fd, w->tmp_name,
						O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);

		if (fd < 0)
			return -errno;
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			if (errno == EWOULDBLOCK)
				return 0;
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (fstat(fd, &st_fd) < 0)
			return -errno;
		if (fstatat(w->store->tmp_fd, w->tmp_name, &st_name, AT_SYMLINK_NOFOLLOW) < 0 ||
		    st_fd.st_dev != st_name.st_dev || st_fd.st_ino != st_name.st_ino)
			continue; /* renamed or removed under us: try again */
		if (!S_ISREG(st_fd.st_mode))
			return -EINVAL;
		w->fd = TAKE_FD(fd);
		w->partial = true;
		r = writer_rehash(w, (uint64_t)st_fd.st_size);
		return r < 0 ? r : 1;
	}
	return 0;
}

static int writer_private_temp(struct store_blob_writer *w)
{
	for (int attempt = 0; attempt < 16; attempt++) {
		char rnd[17];
		int r;

		temp_hex(rnd);
		r = str_printf(w->tmp_name, sizeof(w->tmp_name), "%s.%s.tmp", digest_hex(w->digest),
			       rnd);
		if (r < 0)
			return r;
		w->fd = openat(w->store->tmp_fd, w->tmp_name,
			       O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (w->fd >= 0)
			return 0;
		if (errno != EEXIST)
			break;
	}
	w->tmp_name[0] = '\0';
	return -errno;
}

int store_blob_writer_new(struct store *s, const char *digest, uint64_t expected_size,
			  struct store_blob_writer **ret, struct cove_error *err)
{
	struct store_blob_writer *w;
	int r;

	r = digest_validate(digest, err);
	if (r < 0)
		return r;
	if (expected_size > IMAGE_BLOB_MAX_SIZE)
		return cove_error_set(err, EFBIG, "blob %s is too large (%llu bytes)", digest,
				      (unsigned long long)expected_size);
	r = store_pin(s, err);
	if (r < 0)
		return r;
	w = calloc(1, sizeof(*w));
	if (!w)
		return cove_error_set(err, ENOMEM, "out of memory");
	w->store = s;
	w->fd = -1;
	w->expected = expected_size;
	memcpy(w->digest, digest, DIGEST_STRING_MAX);
	r = digest_hasher_new(&w->hasher);
	if (r < 0)
		goto fail;
	r = writer_take_partial(w);
	if (r == 0) {
		w->tmp_name[0] = '\0';
		r = writer_private_temp(w);
	}
	if (r < 0)
		goto fail;
	*ret = w;
	return 0;
fail:
	w->partial = false; /* a partial we could not use is left to the next attempt */
	w->tmp_name[0] = '\0';
	store_blob_writer_free(w);
	return cove_error_set(err, r, "unable to create a temp file for blob %s in '%s': %s",
			      digest, s->root, strerror(-r));
}

int store_blob_writer_fd(const struct store_blob_writer *w)
{
	return w->fd;
}

uint64_t store_blob_writer_offset(const struct store_blob_writer *w)
{
	return digest_hasher_count(w->hasher);
}

int store_blob_write(struct store_blob_writer *w, const void *data, size_t len,
		     struct cove_error *err)
{
	uint64_t have = digest_hasher_count(w->hasher);
	int r;

	if (w->done)
		return cove_error_set(err, EINVAL, "blob %s: write after commit or failure",
				      w->digest);
	if (len > w->expected - have) {
		w->done = true;
		writer_remove_temp(w);
		return cove_error_set(err, EBADMSG,
				      "blob %s is larger than its expected %llu bytes", w->digest,
				      (unsigned long long)w->expected);
	}
	r = write_full(w->fd, data, len);
	/* writeback started as it downloads: the commit's fsync has little left to wait for */
	if (r == 0 && (have + len) / BLOB_KICK != have / BLOB_KICK)
		(void)sync_file_range(w->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	if (r < 0) {
		w->done = true;
		/* keep the partial consistent with what was hashed */
		if (w->partial && ftruncate(w->fd, (off_t)have) < 0)
			writer_remove_temp(w);
		return cove_error_set(err, r, "unable to write blob %s to '%s': %s", w->digest,
				      w->store->root, strerror(-r));
	}
	r = digest_hasher_update(w->hasher, data, len);
	if (r < 0) {
		w->done = true;
		writer_remove_temp(w);
		return cove_error_set(err, r, "unable to hash blob %s", w->digest);
	}
	return 0;
}

int store_blob_commit(struct store_blob_writer *w, struct cove_error *err)
{
	struct store *s = w->store;
	uint64_t have = digest_hasher_count(w->hasher);
	char got[DIGEST_STRING_MAX];
	struct stat st;
	int r;

	if (w->done)
		return cove_error_set(err, EINVAL, "blob %s: commit after commit or failure",
				      w->digest);
	w->done = true;
	if (have != w->expected) {
		writer_remove_temp(w);
		return cove_error_set(err, EBADMSG, "blob %s is short: got %llu of %llu bytes",
				      w->digest, (unsigned long long)have,
				      (unsigned long long)w->expected);
	}
	r = digest_hasher_final(w->hasher, got);
	if (r < 0) {
		writer_remove_temp(w);
		return cove_error_set(err, r, "unable to hash blob %s", w->digest);
	}
	if (strcmp(got, w->digest) != 0) {
		writer_remove_temp(w);
		return cove_error_set(err, EBADMSG, "blob %s does not match its digest (got %s)",
				      w->digest, got);
	}
	if (fsync(w->fd) < 0) {
		r = -errno;
		writer_remove_temp(w);
		return cove_error_set(err, r, "unable to write blob %s to '%s': %s", w->digest,
				      s->root, strerror(-r));
	}
	if (fstatat(s->blobs_fd, digest_hex(w->digest), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode)) {
		writer_remove_temp(w); /* someone stored it meanwhile */
		return 0;
	}
	/* A concurrent writer may rename the same content over it: harmless. */
	if (renameat(s->tmp_fd, w->tmp_name, s->blobs_fd, digest_hex(w->digest)) < 0) {
		r = -errno;
		writer_remove_temp(w);
		return cove_error_set(err, r, "unable to store blob %s in '%s': %s", w->digest,
				      s->root, strerror(-r));
	}
	w->tmp_name[0] = '\0';
	if (fsync(s->blobs_fd) < 0)
		return cove_error_set(err, errno, "unable to sync '%s/blobs/sha256': %s", s->root,
				      strerror(errno));
	return 0;
}

void store_blob_writer_free(struct store_blob_writer *w)
{
	if (!w)
		return;
	if (!w->partial)
		writer_remove_temp(w);
	closep(&w->fd); /* drops the lock of a partial */
	digest_hasher_free(w->hasher);
	free(w);
}

void store_blob_writer_discard(struct store_blob_writer *w)
{
	if (!w)
		return;
	writer_remove_temp(w);
	store_blob_writer_free(w);
}

int store_blob_put(struct store *s, const void *data, size_t len, const char *expected_digest,
		   char ret_digest[DIGEST_STRING_MAX], struct cove_error *err)
{
	_cleanup_store_blob_writer_ struct store_blob_writer *w = NULL;
	char d[DIGEST_STRING_MAX];
	int r;

	if (expected_digest) {
		r = digest_validate(expected_digest, err);
		if (r < 0)
			return r;
	}
	r = digest_buffer(data, len, d);
	if (r < 0)
		return cove_error_set(err, r, "unable to hash a blob");
	if (expected_digest && strcmp(d, expected_digest) != 0)
		return cove_error_set(err, EBADMSG, "blob %s does not match its digest (got %s)",
				      expected_digest, d);
	if (!store_blob_has(s, d)) {
		r = store_blob_writer_new(s, d, len, &w, err);
		if (r < 0)
			return r;
		if (store_blob_writer_offset(w) > 0) {
			/* an old partial of the same blob: start over */
			store_blob_writer_discard(TAKE_PTR(w));
			r = store_blob_writer_new(s, d, len, &w, err);
			if (r < 0)
				return r;
		}
		r = store_blob_write(w, data, len, err);
		if (r < 0)
			return r;
		r = store_blob_commit(w, err);
		if (r < 0)
			return r;
	}
	if (ret_digest)
		memcpy(ret_digest, d, sizeof(d));
	return 0;
}

/* ---- the image index (index.json) ------------------------------------------------------- */

static bool reference_is_valid(const char *ref)
{
	size_t n = strnlen(ref, STORE_REFERENCE_MAX);

	if (n == 0 || n >= STORE_REFERENCE_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (ref[i] <= 0x20 || ref[i] >= 0x7f)
			return false;
	return true;
}

static bool snapshot_name_is_valid(const char *name)
{
	static const char prefix[] = "snapshots/";
	size_t pl = sizeof(prefix) - 1;
	char hex[HEX_LEN + 1];

	if (strncmp(name, prefix, pl) != 0 || strlen(name) != pl + HEX_LEN + 5 ||
	    strcmp(name + pl + HEX_LEN, ".ext4") != 0)
		return false;
	memcpy(hex, name + pl, HEX_LEN);
	hex[HEX_LEN] = '\0';
	return digest_hex_is_valid(hex);
}

int store_snapshot_name(const char *manifest_digest, char ret[STORE_SNAPSHOT_MAX])
{
	if (!digest_is_valid(manifest_digest))
		return -EINVAL;
	return str_printf(ret, STORE_SNAPSHOT_MAX, "snapshots/%s.ext4",
			  digest_hex(manifest_digest));
}

static bool tmp_remove_unused(int dir_fd, const char *name);

void store_snapshot_reclaim(struct store *s, const char *manifest_digest)
{
	char prefix[HEX_LEN + 8];
	DIR *d;
	struct dirent *de;
	int fd;

	if (!digest_is_valid(manifest_digest) ||
	    str_printf(prefix, sizeof(prefix), "%s.ext4.", digest_hex(manifest_digest)) < 0)
		return;
	fd = fcntl(s->snapshots_fd, F_DUPFD_CLOEXEC, 3);
	d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d)))
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
			(void)tmp_remove_unused(s->snapshots_fd, de->d_name);
	closedir(d);
}

int store_snapshot_path(struct store *s, const char *manifest_digest, char *buf, size_t size)
{
	if (!digest_is_valid(manifest_digest))
		return -EINVAL;
	return str_printf(buf, size, "%s/snapshots/%s.ext4", s->root, digest_hex(manifest_digest));
}

static int index_fail(struct store *s, struct cove_error *err, int code, const char *why)
{
	return cove_error_set(err, code, "image index '%s/index.json' is unreadable: %s", s->root,
			      why);
}

/* index.json, or an empty index when there is none; "manifests" is always an array. */
static int index_load(struct store *s, json_t **ret, struct cove_error *err)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	json_t *root, *manifests;
	json_error_t je;
	struct stat st;
	char show[96];
	int r;

	fd = openat(s->root_fd, "index.json", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno != ENOENT)
		return index_fail(s, err, errno, strerror(errno));
	if (fd < 0) {
		root = json_pack("{s:i, s:s, s:[]}", "schemaVersion", 2, "mediaType",
				 MEDIA_TYPE_OCI_INDEX, "manifests");
		if (!root)
			return cove_error_set(err, ENOMEM, "out of memory");
		*ret = root;
		return 0;
	}
	if (fstat(fd, &st) < 0)
		return index_fail(s, err, errno, strerror(errno));
	if (st.st_size < 0 || (uint64_t)st.st_size > STORE_INDEX_MAX_SIZE)
		return index_fail(s, err, EFBIG, "it is too large");
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return cove_error_set(err, ENOMEM, "out of memory");
	r = read_full(fd, buf, (size_t)st.st_size);
	if (r < 0)
		return index_fail(s, err, -r, strerror(-r));
	root = json_loadb(buf, (size_t)st.st_size, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return index_fail(s, err, EINVAL, str_shown(je.text, show));
	manifests = json_object_get(root, "manifests");
	if (!json_is_object(root) || !json_is_array(manifests) ||
	    json_array_size(manifests) > STORE_MAX_IMAGES) {
		json_decref(root);
		return index_fail(s, err, EINVAL, "it is not an OCI index");
	}
	*ret = root;
	return 0;
}

static int index_save(struct store *s, json_t *root, struct cove_error *err)
{
	_cleanup_free_ char *text = json_dumps(root, JSON_INDENT(1) | JSON_ENSURE_ASCII);
	int r;

	if (!text)
		return cove_error_set(err, ENOMEM, "out of memory");
	r = write_atomic(s, "index.json", text, strlen(text));
	if (r < 0)
		return cove_error_set(err, r, "unable to write '%s/index.json': %s", s->root,
				      strerror(-r));
	return 0;
}

static const char *annotation(json_t *entry, const char *key)
{
	return json_string_value(json_object_get(json_object_get(entry, "annotations"), key));
}

/* One entry of index.json as a store_image; -EINVAL if it is not one of ours. */
static int entry_to_image(json_t *entry, struct store_image *img)
{
	const char *ref = annotation(entry, ANNOTATION_REF);
	const char *cfg = annotation(entry, ANNOTATION_CONFIG);
	const char *created = annotation(entry, ANNOTATION_CREATED);
	const char *snap = annotation(entry, ANNOTATION_SNAPSHOT);
	const char *digest = json_string_value(json_object_get(entry, "digest"));
	const char *mt = json_string_value(json_object_get(entry, "mediaType"));
	json_t *size = json_object_get(entry, "size");

	memset(img, 0, sizeof(*img));
	if (!ref || !reference_is_valid(ref) || !digest_is_valid(digest) || !mt ||
	    image_media_type_from_string(mt, &img->media_type, NULL) < 0 ||
	    !json_is_integer(size) || json_integer_value(size) < 0)
		return -EINVAL;
	(void)str_copy(img->reference, sizeof(img->reference), ref);
	memcpy(img->manifest_digest, digest, DIGEST_STRING_MAX);
	img->manifest_size = (uint64_t)json_integer_value(size);
	if (cfg && digest_is_valid(cfg))
		memcpy(img->config_digest, cfg, DIGEST_STRING_MAX);
	if (snap && snapshot_name_is_valid(snap))
		(void)str_copy(img->snapshot, sizeof(img->snapshot), snap);
	if (created) {
		struct tm tm = { 0 };
		const char *end = strptime(created, "%Y-%m-%dT%H:%M:%SZ", &tm);

		if (end && !*end)
			img->created = (int64_t)timegm(&tm);
	}
	return 0;
}

static json_t *image_to_entry(const struct store_image *img)
{
	char created[32];
	struct tm tm;
	time_t t = (time_t)img->created;
	json_t *entry, *ann;

	if (!gmtime_r(&t, &tm) ||
	    strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return NULL;
	entry = json_pack("{s:s, s:s, s:I, s:{s:s, s:s}}", "mediaType",
			  image_media_type_to_string(img->media_type), "digest",
			  img->manifest_digest, "size", (json_int_t)img->manifest_size,
			  "annotations", ANNOTATION_REF, img->reference, ANNOTATION_CREATED,
			  created);
	if (!entry)
		return NULL;
	ann = json_object_get(entry, "annotations");
	if ((img->config_digest[0] &&
	     json_object_set_new(ann, ANNOTATION_CONFIG, json_string(img->config_digest)) < 0) ||
	    (img->snapshot[0] &&
	     json_object_set_new(ann, ANNOTATION_SNAPSHOT, json_string(img->snapshot)) < 0)) {
		json_decref(entry);
		return NULL;
	}
	return entry;
}

/* Remove every entry named reference; returns how many. */
static size_t index_remove_ref(json_t *manifests, const char *reference)
{
	size_t removed = 0;

	for (size_t i = json_array_size(manifests); i-- > 0;) {
		const char *ref = annotation(json_array_get(manifests, i), ANNOTATION_REF);

		if (ref && strcmp(ref, reference) == 0) {
			json_array_remove(manifests, i);
			removed++;
		}
	}
	return removed;
}

static json_t *index_find(json_t *manifests, const char *reference)
{
	for (size_t i = 0; i < json_array_size(manifests); i++) {
		json_t *e = json_array_get(manifests, i);
		const char *ref = annotation(e, ANNOTATION_REF);

		if (ref && strcmp(ref, reference) == 0)
			return e;
	}
	return NULL;
}

static int check_reference(const char *ref, struct cove_error *err)
{
	char show[96];

	if (!reference_is_valid(ref))
		return cove_error_set(err, EINVAL, "invalid image reference '%s'",
				      str_shown(ref, show));
	return 0;
}

static int lock_index(struct store *s, struct cove_error *err)
{
	int r = flock_retry(s->lock_fd, LOCK_EX);

	if (r < 0)
		return cove_error_set(err, r, "unable to lock '%s/lock': %s", s->root,
				      strerror(-r));
	return 0;
}

static void unlock_index(struct store *s)
{
	(void)flock(s->lock_fd, LOCK_UN);
}

int store_image_put(struct store *s, const struct store_image *image, struct cove_error *err)
{
	_cleanup_json_ json_t *root = NULL;
	struct store_image img = *image;
	json_t *manifests, *entry;
	struct stat st;
	int r;

	r = check_reference(img.reference, err);
	if (r < 0)
		return r;
	r = digest_validate(img.manifest_digest, err);
	if (r < 0)
		return r;
	if (img.config_digest[0] && (r = digest_validate(img.config_digest, err)) < 0)
		return r;
	if (strcmp(image_media_type_to_string(img.media_type), "unknown") == 0)
		return cove_error_set(err, EINVAL, "image '%s' has no manifest media type",
				      img.reference);
	if (img.snapshot[0] && !snapshot_name_is_valid(img.snapshot))
		return cove_error_set(err, EINVAL, "invalid snapshot name for image '%s'",
				      img.reference);
	if (fstatat(s->blobs_fd, digest_hex(img.manifest_digest), &st, AT_SYMLINK_NOFOLLOW) < 0)
		return cove_error_set(err, errno == ENOENT ? ENOENT : errno,
				      "unable to store image '%s': its manifest %s is not in the "
				      "store",
				      img.reference, img.manifest_digest);
	img.manifest_size = (uint64_t)st.st_size;
	if (img.created == 0)
		img.created = (int64_t)time(NULL);
	entry = image_to_entry(&img);
	if (!entry)
		return cove_error_set(err, ENOMEM, "out of memory");

	r = lock_index(s, err);
	if (r < 0) {
		json_decref(entry);
		return r;
	}
	r = index_load(s, &root, err);
	if (r < 0)
		goto out;
	manifests = json_object_get(root, "manifests");
	index_remove_ref(manifests, img.reference);
	if (json_array_size(manifests) >= STORE_MAX_IMAGES) {
		r = cove_error_set(err, ENOSPC, "the image store '%s' holds too many images (%u)",
				   s->root, STORE_MAX_IMAGES);
		goto out;
	}
	r = json_array_append_new(manifests, TAKE_PTR(entry)) < 0 ? -ENOMEM : 0;
	if (r < 0) {
		r = cove_error_set(err, ENOMEM, "out of memory");
		goto out;
	}
	r = index_save(s, root, err);
out:
	json_decref(entry);
	unlock_index(s);
	return r;
}

int store_image_get(struct store *s, const char *reference, struct store_image *ret,
		    struct cove_error *err)
{
	_cleanup_json_ json_t *root = NULL;
	struct store_image img;
	json_t *e;
	int r;

	r = check_reference(reference, err);
	if (r < 0)
		return r;
	r = index_load(s, &root, err);
	if (r < 0)
		return r;
	e = index_find(json_object_get(root, "manifests"), reference);
	if (!e || entry_to_image(e, &img) < 0)
		return cove_error_set(err, ENOENT, "no image '%s' in the store", reference);
	*ret = img;
	return 0;
}

int store_image_list(struct store *s, struct store_image **ret, size_t *ret_n,
		     struct cove_error *err)
{
	_cleanup_json_ json_t *root = NULL;
	_cleanup_free_ struct store_image *list = NULL;
	json_t *manifests;
	size_t n = 0;
	int r;

	r = index_load(s, &root, err);
	if (r < 0)
		return r;
	manifests = json_object_get(root, "manifests");
	list = calloc(json_array_size(manifests) + 1, sizeof(*list));
	if (!list)
		return cove_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < json_array_size(manifests); i++)
		if (entry_to_image(json_array_get(manifests, i), &list[n]) == 0)
			n++;
	*ret = TAKE_PTR(list);
	*ret_n = n;
	return 0;
}

int store_image_remove(struct store *s, const char *reference, struct cove_error *err)
{
	_cleanup_json_ json_t *root = NULL;
	int r;

	r = check_reference(reference, err);
	if (r < 0)
		return r;
	r = lock_index(s, err);
	if (r < 0)
		return r;
	r = index_load(s, &root, err);
	if (r < 0)
		goto out;
	if (index_remove_ref(json_object_get(root, "manifests"), reference) == 0) {
		r = cove_error_set(err, ENOENT, "no image '%s' in the store", reference);
		goto out;
	}
	r = index_save(s, root, err);
out:
	unlock_index(s);
	return r;
}

int store_image_tag(struct store *s, const char *source, const char *target, struct cove_error *err)
{
	_cleanup_json_ json_t *root = NULL;
	json_t *manifests, *src, *copy = NULL;
	int r;

	r = check_reference(source, err);
	if (r < 0)
		return r;
	r = check_reference(target, err);
	if (r < 0)
		return r;
	r = lock_index(s, err);
	if (r < 0)
		return r;
	r = index_load(s, &root, err);
	if (r < 0)
		goto out;
	manifests = json_object_get(root, "manifests");
	src = index_find(manifests, source);
	if (!src) {
		r = cove_error_set(err, ENOENT, "no image '%s' in the store", source);
		goto out;
	}
	if (strcmp(source, target) == 0)
		goto out;
	copy = json_deep_copy(src);
	if (!copy || json_object_set_new(json_object_get(copy, "annotations"), ANNOTATION_REF,
					 json_string(target)) < 0) {
		r = cove_error_set(err, ENOMEM, "out of memory");
		goto out;
	}
	index_remove_ref(manifests, target);
	if (json_array_append_new(manifests, TAKE_PTR(copy)) < 0) {
		r = cove_error_set(err, ENOMEM, "out of memory");
		goto out;
	}
	r = index_save(s, root, err);
out:
	json_decref(copy);
	unlock_index(s);
	return r;
}

/* ---- garbage collection ----------------------------------------------------------------- */

struct gc {
	struct store *s;
	struct digest_set live;
	struct digest_set walked; /* manifests already read */
	uint64_t freed;
	time_t now;
	bool partials; /* resumable downloads of dead writers go too, whatever their age */
};

static int gc_add(struct gc *g, json_t *v)
{
	const char *d = json_string_value(v);

	if (!d || !digest_is_valid(d))
		return 0;
	return digest_set_add(&g->live, d);
}

/*
 * Keep digest and, if it is a stored manifest or index, what it references. Deliberately
 * lenient (any JSON with config/layers/manifests digests counts; a blob that is not JSON is a
 * leaf): GC must never drop what a stored document names, even one the parser refuses.
 */
static int gc_mark(struct gc *g, const char *digest, int depth, struct cove_error *err)
{
	_cleanup_json_ json_t *root = NULL;
	_cleanup_free_ char *buf = NULL;
	struct cove_error rerr = { 0 };
	json_t *list, *v;
	size_t len, i;
	int r;

	if (!digest || !digest_is_valid(digest))
		return 0;
	r = digest_set_add(&g->live, digest);
	if (r < 0)
		return cove_error_set(err, r, "out of memory");
	if (depth > GC_MAX_DEPTH || !store_blob_has(g->s, digest) ||
	    digest_set_has(&g->walked, digest))
		return 0;
	if (digest_set_add(&g->walked, digest) < 0)
		return cove_error_set(err, ENOMEM, "out of memory");
	r = store_blob_read_small(g->s, digest, MANIFEST_MAX_SIZE, &buf, &len, &rerr);
	if (r == -EFBIG)
		return 0; /* too large for a manifest: a leaf */
	if (r < 0)
		return cove_error_set(err, r, "garbage collection stopped, nothing was removed: %s",
				      rerr.msg);
	root = json_loadb(buf, len, 0, NULL);
	if (!json_is_object(root))
		return 0;
	if (gc_add(g, json_object_get(json_object_get(root, "config"), "digest")) < 0)
		return cove_error_set(err, ENOMEM, "out of memory");
	list = json_object_get(root, "layers");
	json_array_foreach(list, i, v) if (gc_add(g, json_object_get(v, "digest")) <
					   0) return cove_error_set(err, ENOMEM, "out of memory");
	list = json_object_get(root, "manifests");
	json_array_foreach(list, i, v)
	{
		r = gc_mark(g, json_string_value(json_object_get(v, "digest")), depth + 1, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static bool is_stale(const struct gc *g, const struct stat *st)
{
	return st->st_mtime < g->now - STORE_TEMP_MAX_AGE_SEC;
}

enum gc_dir {
	GC_BLOBS,
	GC_SNAPSHOTS,
	GC_TMP,
};

/* Remove a temp file whose writer is dead: a partial may be held by a writer of a store that
 * was not pinned, and an flock we can take means nobody writes it. The name goes while the lock
 * is held, so a writer still taking the lock of a file it just made finds the name gone. */
static bool tmp_remove_unused(int dir_fd, const char *name)
{
	_cleanup_close_ int fd =
		openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);

	if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0)
		return false;
	return unlinkat(dir_fd, name, 0) == 0;
}

/* freed counts the disk space given back: a half-written snapshot is sparse. A temp file
 * (if_unused) goes only when its writer is dead. */
static void gc_remove(struct gc *g, int dir_fd, const char *name, const struct stat *st,
		      bool if_unused)
{
	if (if_unused ? tmp_remove_unused(dir_fd, name) : unlinkat(dir_fd, name, 0) == 0)
		g->freed += (uint64_t)st->st_blocks * 512;
}

static int gc_sweep(struct gc *g, int dir_fd, enum gc_dir what, struct cove_error *err)
{
	DIR *d;
	struct dirent *de;
	int fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 3);

	if (fd < 0)
		return cove_error_set(err, errno, "unable to read '%s': %s", g->s->root,
				      strerror(errno));
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return cove_error_set(err, errno, "unable to read '%s': %s", g->s->root,
				      strerror(errno));
	}
	rewinddir(d);
	while ((de = readdir(d))) {
		const char *name = de->d_name;
		char hex[HEX_LEN + 1], digest[DIGEST_STRING_MAX];
		struct stat st;

		if (name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2])))
			continue;
		if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || S_ISDIR(st.st_mode))
			continue;
		switch (what) {
		case GC_BLOBS:
			if (digest_from_hex(name, digest) == 0 &&
			    !digest_set_has(&g->live, digest))
				gc_remove(g, dir_fd, name, &st, false);
			break;
		case GC_SNAPSHOTS:
			if (strlen(name) == HEX_LEN + 5 && strcmp(name + HEX_LEN, ".ext4") == 0) {
				memcpy(hex, name, HEX_LEN);
				hex[HEX_LEN] = '\0';
				if (digest_from_hex(hex, digest) == 0 &&
				    !digest_set_has(&g->live, digest))
					gc_remove(g, dir_fd, name, &st, false);
			} else {
				/* an ext4 writer's leftover, if its writer is dead (no pinned writer
				 * runs during GC, and a live one holds its temp file's lock) */
				gc_remove(g, dir_fd, name, &st, true);
			}
			break;
		case GC_TMP:
			if (g->partials || is_stale(g, &st))
				gc_remove(g, dir_fd, name, &st, true);
			break;
		}
	}
	closedir(d);
	return 0;
}

static int gc_locked(struct gc *g, struct cove_error *err)
{
	_cleanup_json_ json_t *root = NULL;
	json_t *manifests, *e;
	size_t i;
	int r;

	r = index_load(g->s, &root, err);
	if (r < 0)
		return r;
	manifests = json_object_get(root, "manifests");
	/* every entry counts, ours or not */
	json_array_foreach(manifests, i, e)
	{
		const char *snap = annotation(e, ANNOTATION_SNAPSHOT);

		if (gc_add(g, json_object_get(json_object_get(e, "annotations"),
					      ANNOTATION_CONFIG)) < 0)
			return cove_error_set(err, ENOMEM, "out of memory");
		if (snap && snapshot_name_is_valid(snap)) {
			char d[DIGEST_STRING_MAX], hex[HEX_LEN + 1];

			memcpy(hex, snap + strlen("snapshots/"), HEX_LEN);
			hex[HEX_LEN] = '\0';
			if (digest_from_hex(hex, d) == 0 && digest_set_add(&g->live, d) < 0)
				return cove_error_set(err, ENOMEM, "out of memory");
		}
		r = gc_mark(g, json_string_value(json_object_get(e, "digest")), 0, err);
		if (r < 0)
			return r;
	}
	digest_set_sort(&g->live);
	r = gc_sweep(g, g->s->blobs_fd, GC_BLOBS, err);
	if (r < 0)
		return r;
	r = gc_sweep(g, g->s->snapshots_fd, GC_SNAPSHOTS, err);
	if (r < 0)
		return r;
	return gc_sweep(g, g->s->tmp_fd, GC_TMP, err);
}

static int gc_run(struct store *s, bool partials, uint64_t *ret_freed, struct cove_error *err)
{
	struct gc g = { .s = s, .now = time(NULL), .partials = partials };
	int r;

	/* converts our own pin, if any; anyone else's makes it fail */
	while ((r = flock(s->gc_fd, LOCK_EX | LOCK_NB)) < 0 && errno == EINTR)
		;
	if (r < 0) {
		r = errno;
		if (s->pinned)
			(void)flock_retry(s->gc_fd, LOCK_SH); /* a failed conversion drops it */
		if (r == EWOULDBLOCK)
			return cove_error_set(err, EBUSY,
					      "the image store '%s' is busy (an image is being "
					      "pulled or built); try again when it is done",
					      s->root);
		return cove_error_set(err, r, "unable to lock '%s/gc.lock': %s", s->root,
				      strerror(r));
	}
	r = lock_index(s, err);
	if (r == 0) {
		r = gc_locked(&g, err);
		unlock_index(s);
	}
	(void)flock_retry(s->gc_fd, s->pinned ? LOCK_SH : LOCK_UN);
	digest_set_done(&g.live);
	digest_set_done(&g.walked);
	if (r < 0)
		return r;
	if (ret_freed)
		*ret_freed = g.freed;
	return 0;
}

int store_gc(struct store *s, uint64_t *ret_freed, struct cove_error *err)
{
	return gc_run(s, false, ret_freed, err);
}

int store_gc_all(struct store *s, uint64_t *ret_freed, struct cove_error *err)
{
	return gc_run(s, true, ret_freed, err);
}
