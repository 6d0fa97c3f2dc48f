/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The local image store: content-addressed blobs, an index of named images and the ext4
 * snapshots made from them, under one root directory (STATE/images). The root is also a valid
 * OCI image layout (oci-layout, index.json, blobs/sha256/). See docs/internals/image-store.md.
 *
 *     r = store_open(root, &s, &err);
 *     if (!store_blob_has(s, d)) {
 *             r = store_blob_writer_new(s, d, size, &w, &err);
 *             off = store_blob_writer_offset(w);        // > 0: resume with Range: bytes=off-
 *             r = store_blob_write(w, chunk, n, &err);   // as data arrives
 *             r = store_blob_commit(w, &err);            // verify, fsync, rename into place
 *             store_blob_writer_free(w);
 *     }
 *     r = store_image_put(s, &img, &err);
 *     store_free(s);
 *
 * Blobs appear under blobs/sha256/ only complete and verified (digest and size). Any number of
 * processes may write the same blob at once: all succeed, it is stored once. Image index
 * changes are read-modify-write under an flock on ROOT/lock and replace index.json
 * atomically. A store is not thread-safe; use one per thread.
 *
 * GC and writers: store_gc() deletes every blob no image references, so a process that writes
 * blobs before it puts the image that references them must keep GC out meanwhile:
 * store_pin() (taken automatically by store_blob_writer_new(), held until store_unpin() or
 * store_free()) makes store_gc() in any process fail with -EBUSY. Same for writing a
 * snapshot before its image is put.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../util/error.h"
#include "digest.h"
#include "manifest.h"

#define STORE_INDEX_MAX_SIZE   (16u << 20) /* index.json */
#define STORE_MAX_IMAGES       16384u
#define STORE_REFERENCE_MAX    512u /* incl. NUL; docker's own limit is 255 + tag/digest */
#define STORE_SNAPSHOT_MAX     96u  /* "snapshots/<64 hex>.ext4" incl. NUL */
#define STORE_TEMP_MAX_AGE_SEC 3600 /* older temp files are garbage */

struct store;
struct store_blob_writer;

/* One named image. For put: set reference, manifest_digest, media_type and optionally the
 * rest; manifest_size is taken from the stored manifest blob, created 0 means now. */
struct store_image {
	char reference[STORE_REFERENCE_MAX];	 /* normalized by the caller, stored as given */
	char manifest_digest[DIGEST_STRING_MAX]; /* the manifest or index the reference names */
	enum image_media_type media_type;	 /* of that manifest or index */
	uint64_t manifest_size;
	char config_digest[DIGEST_STRING_MAX]; /* of the selected platform's image; "" if none */
	int64_t created;		       /* unix seconds, when it was stored */
	char snapshot[STORE_SNAPSHOT_MAX];     /* "snapshots/<hex>.ext4" (relative), "" if none */
};

/* Create (mkdir -p) or open the store under root: blobs/sha256, blobs/tmp, snapshots,
 * oci-layout, lock files. */
int store_open(const char *root, struct store **ret, struct cove_error *err);
/* NULL-safe; releases the pin. Writers must be freed before. */
void store_free(struct store *s);
const char *store_root(const struct store *s);
/* Keep store_gc() out (a shared flock on ROOT/gc.lock); waits for a running GC. */
int store_pin(struct store *s, struct cove_error *err);
void store_unpin(struct store *s);

/*
 * Start writing the blob digest of expected_size bytes. If blobs/tmp/<hex>.partial is left
 * from an earlier attempt (and no other writer holds it), it is reused: its bytes are hashed
 * again and store_blob_writer_offset() says how many there are (a partial longer than
 * expected_size is emptied). If another writer holds the partial, this one writes a private
 * temp file from offset 0. Pins the store.
 */
int store_blob_writer_new(struct store *s, const char *digest, uint64_t expected_size,
			  struct store_blob_writer **ret, struct cove_error *err);
uint64_t store_blob_writer_offset(const struct store_blob_writer *w);
/* Its temp file, for reading what has arrived (with pread) while the rest downloads; valid until
 * the writer is freed, across the commit's rename. */
int store_blob_writer_fd(const struct store_blob_writer *w);
/* Append; more than expected_size bytes in total deletes the temp and fails with -EBADMSG.
 * After a failed write (e.g. -ENOSPC) the writer is unusable; a partial keeps what was
 * written before that call. */
int store_blob_write(struct store_blob_writer *w, const void *data, size_t len,
		     struct cove_error *err);
/* Check size and digest (-EBADMSG, temp deleted: "blob sha256:... does not match its digest
 * (got sha256:...)"), fsync, rename into blobs/sha256/ (dropping the temp if the blob is
 * already there), fsync the directory. */
int store_blob_commit(struct store_blob_writer *w, struct cove_error *err);
/* NULL-safe. An uncommitted private temp is removed; an uncommitted partial is kept for a
 * later resume (store_gc() removes partials older than STORE_TEMP_MAX_AGE_SEC). */
void store_blob_writer_free(struct store_blob_writer *w);
/* Free and remove the temp file even if it is a resumable partial. */
void store_blob_writer_discard(struct store_blob_writer *w);

/* Store a small blob held in memory; expected_digest may be NULL. Its digest in ret_digest
 * (may be NULL). -EBADMSG if it does not match expected_digest. */
int store_blob_put(struct store *s, const void *data, size_t len, const char *expected_digest,
		   char ret_digest[DIGEST_STRING_MAX], struct cove_error *err);
bool store_blob_has(struct store *s, const char *digest);
/* O_RDONLY|O_CLOEXEC fd of a stored blob, or -EINVAL (bad digest), -ENOENT, -errno. */
int store_blob_open(struct store *s, const char *digest);
/* Read a whole blob of at most max bytes (-EFBIG) and check it against its digest again
 * (-EBADMSG); the buffer is NUL-terminated (not counted in ret_len). */
int store_blob_read_small(struct store *s, const char *digest, size_t max, char **ret,
			  size_t *ret_len, struct cove_error *err);

/* Add or replace the image named img->reference. Its manifest blob must be stored. */
int store_image_put(struct store *s, const struct store_image *img, struct cove_error *err);
/* -ENOENT: "no image 'ref' in the store". */
int store_image_get(struct store *s, const char *reference, struct store_image *ret,
		    struct cove_error *err);
/* All named images, in index order; free with free(). */
int store_image_list(struct store *s, struct store_image **ret, size_t *ret_n,
		     struct cove_error *err);
int store_image_remove(struct store *s, const char *reference, struct cove_error *err);
/* Name source's image also as target (replacing what target named). */
int store_image_tag(struct store *s, const char *source, const char *target,
		    struct cove_error *err);

/*
 * Remove blobs no image references (walking each image's manifest or index, an index's
 * entries that are stored, and their configs and layers), snapshots named after no live
 * manifest, snapshots being written by no live writer, and temp files older than
 * STORE_TEMP_MAX_AGE_SEC. ret_freed: bytes (st_size) of
 * what was removed. -EBUSY while another store object (in this or another process) is
 * pinned; s's own pin does not count. A manifest that cannot be read aborts GC before
 * anything is removed.
 */
int store_gc(struct store *s, uint64_t *ret_freed, struct cove_error *err);
/* The same, and downloads a dead writer left for a later pull to resume (blobs/tmp/HEX.partial)
 * go too, whatever their age: what `image prune` runs. */
int store_gc_all(struct store *s, uint64_t *ret_freed, struct cove_error *err);

/* Remove what dead writers left of this manifest's snapshot ("<hex>.ext4.XXXXXX" whose lock is
 * free), before it is written again. */
void store_snapshot_reclaim(struct store *s, const char *manifest_digest);
/* ROOT/snapshots/<hex>.ext4 for a manifest digest; -EINVAL, -ENAMETOOLONG. */
int store_snapshot_path(struct store *s, const char *manifest_digest, char *buf, size_t size);
/* "snapshots/<hex>.ext4", for struct store_image.snapshot. */
int store_snapshot_name(const char *manifest_digest, char ret[STORE_SNAPSHOT_MAX]);

static inline void store_freep(struct store **s)
{
	store_free(*s);
}
static inline void store_blob_writer_freep(struct store_blob_writer **w)
{
	store_blob_writer_free(*w);
}
#define _cleanup_store_		    _cleanup_(store_freep)
#define _cleanup_store_blob_writer_ _cleanup_(store_blob_writer_freep)
