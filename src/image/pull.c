/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "pull.h"

#include "digest.h"
#include "inflate.h"
#include "reference.h"
#include "../ext4/writer.h"

#include "../ext4/archive_dl.h"
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#define DEFAULT_PARALLEL 3
#define DEFAULT_MIN_SNAPSHOT (4ULL << 30)
#define SNAPSHOT_HEADROOM (1ULL << 30)
#define MAX_SNAPSHOT (1ULL << 40)
#define SNAPSHOT_DISK_MARGIN (256ULL << 20) /* left free on the disk */

#define PROGRESS_STEP (256u << 10) /* report downloads every this many bytes */

/* A layer's blob while it downloads, read by the snapshot's writer as it grows. */
struct growing {
	int fd;           /* the blob writer's temp file (pread only) */
	uint64_t size;    /* what it will hold */
	uint64_t have;    /* what it holds now */
	bool failed;      /* its download failed */
};

/* The layers of a pull as the snapshot's writer reads them: in the store, or growing. */
struct feed {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct growing *jobs;  /* per download */
	ssize_t *job_of;       /* per manifest layer: its download, or -1 (in the store) */
	bool verified;         /* every download committed: the digests held */
	bool abort;            /* a download or a commit failed */
};

struct blob_sink {
	struct store_blob_writer *w;
	struct cove_error err;
	const struct pull_opts *o;
	const char *digest;
	uint64_t received, reported;
	struct feed *feed;     /* the snapshot being written meanwhile, or NULL */
	struct growing *g;
};

static void feed_set(struct feed *f, struct growing *g, uint64_t add, bool fail, int verdict)
{
	pthread_mutex_lock(&f->mu);
	if (g) {
		g->have += add;
		g->failed |= fail;
	}
	if (verdict > 0)
		f->verified = true;
	else if (verdict < 0)
		f->abort = true;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

/* Up to n bytes at off of a growing blob, once they are there; 0 at its end, -ECANCELED when
 * the pull failed meanwhile. */
static ssize_t growing_read(struct feed *f, struct growing *g, void *buf, size_t n, uint64_t off)
{
	uint64_t have;
	ssize_t r;

	pthread_mutex_lock(&f->mu);
	while (g->have <= off && g->have < g->size && !g->failed && !f->abort)
		pthread_cond_wait(&f->cv, &f->mu);
	have = g->have;
	r = g->failed || f->abort ? -ECANCELED : 0;
	pthread_mutex_unlock(&f->mu);
	if (r < 0 || off >= have)
		return r;
	if (n > have - off)
		n = (size_t)(have - off);
	do
		r = pread(g->fd, buf, n, (off_t)off);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

static void progress(const struct pull_opts *o, enum pull_event ev, const char *digest,
		     uint64_t size)
{
	if (o && o->progress)
		o->progress(ev, digest, size, o->userdata);
}

static int sink_write(const void *data, size_t len, void *userdata)
{
	struct blob_sink *k = userdata;
	int r = store_blob_write(k->w, data, len, &k->err);

	if (k->feed)
		feed_set(k->feed, k->g, r == 0 ? len : 0, r < 0, 0);
	if (r == 0) {
		k->received += len;
		if (k->received - k->reported >= PROGRESS_STEP) {
			k->reported = k->received;
			progress(k->o, PULL_LAYER_BYTES, k->digest, k->received);
		}
	}
	return r;
}

/* Download one blob (resuming a partial) into the store unless it is there. */
static int fetch_blob(struct store *s, struct registry_client *c, const char *repo,
		      const struct image_descriptor *d, struct cove_error *err)
{
	struct blob_sink k = { 0 };
	int r;

	if (store_blob_has(s, d->digest))
		return 0;
	r = store_blob_writer_new(s, d->digest, d->size, &k.w, err);
	if (r < 0)
		return r;
	r = registry_get_blob(c, repo, d->digest, d->size, sink_write, &k,
			      store_blob_writer_offset(k.w), err);
	if (r < 0 && k.err.code)
		*err = k.err;
	if (r == 0)
		r = store_blob_commit(k.w, err);
	store_blob_writer_free(k.w);
	return r;
}

/* A manifest or index by digest: from the store, or from the registry into the store. */
/* A manifest or index by digest: from the store, or (with a client) from the registry into the
 * store. *ret_type is the registry's Content-Type, NULL when it came from the store. */
static int fetch_manifest(struct store *s, struct registry_client *c, const char *repo,
			  const char *digest, struct buf *ret_body, char **ret_type,
			  struct cove_error *err)
{
	char got[DIGEST_STRING_MAX];
	_cleanup_free_ char *data = NULL;
	size_t len;
	int r;

	if (!c || store_blob_has(s, digest)) {
		r = store_blob_read_small(s, digest, MANIFEST_MAX_SIZE, &data, &len, c ? NULL : err);
		if (r == 0) {
			buf_reset(ret_body);
			*ret_type = NULL;
			return buf_append(ret_body, data, len);
		}
		if (!c)
			return r;
	}
	r = registry_get_manifest(c, repo, digest, ret_body, ret_type, got, err);
	if (r < 0)
		return r;
	return store_blob_put(s, ret_body->data, ret_body->len, digest, got, err);
}

/* The sha256 of a layer's uncompressed content (its diff_id), computed in a thread of its own
 * while the same layer is written into the snapshot. */
struct diff_hash {
	int fd;
	atomic_bool stop; /* the writer failed: no point (and no CPU to spend) hashing the rest */
	char digest[DIGEST_STRING_MAX];
	char error[256];
};

static void *diff_hash_run(void *arg)
{
	struct diff_hash *d = arg;
	struct archive *a = archive_read_new();
	struct archive_entry *ae;
	struct digest_hasher *h = NULL;
	char buf[64 * 1024];
	la_ssize_t n;

	if (!a || digest_hasher_new(&h) < 0) {
		str_copy(d->error, sizeof(d->error), "out of memory");
		goto out;
	}
	if (ext4_layer_filters(a) != ARCHIVE_OK || archive_read_support_format_raw(a) != ARCHIVE_OK ||
	    archive_read_open_fd(a, d->fd, sizeof(buf)) != ARCHIVE_OK ||
	    archive_read_next_header(a, &ae) != ARCHIVE_OK) {
		str_printf(d->error, sizeof(d->error), "%s", archive_error_string(a));
		goto out;
	}
	while (!atomic_load(&d->stop) && (n = archive_read_data(a, buf, sizeof(buf))) > 0)
		digest_hasher_update(h, buf, (size_t)n);
	if (n < 0)
		str_printf(d->error, sizeof(d->error), "%s", archive_error_string(a));
	else
		digest_hasher_final(h, d->digest);
out:
	digest_hasher_free(h);
	archive_read_free(a);
	return NULL;
}

/*
 * One pass over a gzip, zstd or plain tar layer: a thread of its own reads the blob and
 * decodes it (gzip: ISA-L, else zlib; zstd: libzstd) into a ring of buffers, which the ext4
 * writer takes in turn on this thread, hashing each (the diff_id) before libarchive parses the
 * tar straight out of it: each byte is decoded once and copied nowhere, and the two stages run
 * on two cores. Other compressions (xz, bzip2, lzma) take libarchive's filters.
 */
enum codec { CODEC_NONE, CODEC_GZIP, CODEC_ZSTD };

/* a layer's decoder: gzip or zstd, one interface */
struct decoder {
	enum codec codec;
	struct gunzip *gz;
	struct unzstd *zs;
};

static int decoder_init(struct decoder *d, enum codec c)
{
	*d = (struct decoder){ .codec = c };
	return c == CODEC_GZIP ? gunzip_new(&d->gz) : unzstd_new(&d->zs);
}

static int decoder_feed(struct decoder *d, const uint8_t *in, size_t in_len, uint8_t *out,
			size_t out_size, size_t *used, size_t *made, struct cove_error *err)
{
	return d->codec == CODEC_GZIP
		       ? gunzip_feed(d->gz, in, in_len, out, out_size, used, made, err)
		       : unzstd_feed(d->zs, in, in_len, out, out_size, used, made, err);
}

static int decoder_end(struct decoder *d, struct cove_error *err)
{
	return d->codec == CODEC_GZIP ? gunzip_end(d->gz, err) : unzstd_end(d->zs, err);
}

static void decoder_done(struct decoder *d)
{
	gunzip_free(d->gz);
	unzstd_free(d->zs);
}

static const char *codec_name(enum codec c)
{
	return c == CODEC_GZIP ? gunzip_engine() : c == CODEC_ZSTD ? "zstd" : "copy";
}

#define UNPACK_CHUNK (1u << 20)
#define RING	     4	/* buffers between the decoder and the writer, on the layer being applied */
#define RING_AHEAD   32 /* ... on the next layer, decoded meanwhile where there are cores for it */

struct unpack {
	int blob_fd;       /* the layer as stored, or: */
	bool own_fd;	   /* (closed with the unpack) */
	struct feed *feed; /* ... the layer as it downloads */
	struct growing *g;
	uint64_t off;
	enum codec codec;
	bool probe;	   /* the codec is the thread's to find out, from the first bytes */
	bool probed;	   /* ... and it did */
	bool other;	   /* ... and the layer is not for this path (xz, bzip2, lzma) */
	pthread_t thread;
	bool joined;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned cap;	   /* buffers in the ring (allocated as they are first filled) */
	uint8_t *buf[RING_AHEAD];
	size_t len[RING_AHEAD];
	bool full[RING_AHEAD];
	unsigned fill_k, take_k;
	bool taken;        /* the writer holds buf[take_k] */
	bool end;          /* the decoder is done: what is full is the rest */
	bool gone;         /* the writer stopped: so does the decoder */
	struct digest_hasher *h; /* the writer's: what it takes */
	char error[256];   /* the decoder's */
	uint64_t cpu_ns;   /* the decoder's CPU time */
	uint64_t started;  /* when the thread started */
};

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* the decoder: the next empty buffer, or NULL once the writer is gone (or memory is short) */
static uint8_t *ring_fill(struct unpack *u)
{
	uint8_t *b;

	pthread_mutex_lock(&u->mu);
	while (u->full[u->fill_k] && !u->gone)
		pthread_cond_wait(&u->cv, &u->mu);
	if (!u->gone && !u->buf[u->fill_k] && !(u->buf[u->fill_k] = malloc(UNPACK_CHUNK)))
		str_copy(u->error, sizeof(u->error), "out of memory");
	b = u->gone ? NULL : u->buf[u->fill_k];
	pthread_mutex_unlock(&u->mu);
	return b;
}

static void ring_filled(struct unpack *u, size_t n, bool end)
{
	pthread_mutex_lock(&u->mu);
	if (n) {
		u->len[u->fill_k] = n;
		u->full[u->fill_k] = true;
		u->fill_k = (u->fill_k + 1) % u->cap;
	}
	u->end |= end;
	pthread_cond_broadcast(&u->cv);
	pthread_mutex_unlock(&u->mu);
}

/* the writer (ext4_tar_read_fn): the last block back, the next one hashed and handed over */
static ssize_t ring_take(void *ud, const void **ret)
{
	struct unpack *u = ud;
	ssize_t n;

	pthread_mutex_lock(&u->mu);
	if (u->taken) {
		u->full[u->take_k] = false;
		u->take_k = (u->take_k + 1) % u->cap;
		u->taken = false;
		pthread_cond_broadcast(&u->cv);
	}
	while (!u->full[u->take_k] && !u->end)
		pthread_cond_wait(&u->cv, &u->mu);
	if (!u->full[u->take_k]) {
		n = u->error[0] ? -1 : 0;
	} else {
		u->taken = true;
		*ret = u->buf[u->take_k];
		n = (ssize_t)u->len[u->take_k];
	}
	pthread_mutex_unlock(&u->mu);
	if (n > 0)
		digest_hasher_update(u->h, *ret, (size_t)n);
	return n;
}

static int layer_codec(struct feed *f, struct growing *g, int fd, enum codec *ret);

/* a read-ahead's first step: what the layer is compressed with (the writer waits for this) */
static void unpack_probe(struct unpack *u)
{
	int r = layer_codec(u->feed, u->g, u->blob_fd, &u->codec);

	pthread_mutex_lock(&u->mu);
	if (r == -ECANCELED)
		str_copy(u->error, sizeof(u->error), "the download failed");
	else if (r == 0)
		u->other = true;
	u->probed = true;
	pthread_cond_broadcast(&u->cv);
	pthread_mutex_unlock(&u->mu);
}

static void *unpack_run(void *arg)
{
	struct unpack *u = arg;
	struct decoder dec = { 0 };
	bool coded;
	struct cove_error err = { 0 };
	uint8_t *in = NULL;
	uint64_t t0 = thread_cpu_ns();

	if (u->probe) {
		unpack_probe(u);
		if (u->other || u->error[0])
			goto out;
	}
	coded = u->codec != CODEC_NONE;
	in = coded ? malloc(UNPACK_CHUNK) : NULL;
	if ((coded && !in) || (coded && decoder_init(&dec, u->codec) < 0)) {
		str_copy(u->error, sizeof(u->error), "out of memory");
		goto out;
	}
	for (;;) {
		/* a plain tar is read straight into the next buffer */
		uint8_t *dst = coded ? in : ring_fill(u);
		ssize_t n;
		size_t off = 0;

		if (!dst)
			goto out; /* the writer stopped, or memory is short */
		n = u->g ? growing_read(u->feed, u->g, dst, UNPACK_CHUNK, u->off)
			 : read(u->blob_fd, dst, UNPACK_CHUNK);
		if (!u->g && n < 0 && errno == EINTR)
			continue;
		if (n == -ECANCELED) {
			str_copy(u->error, sizeof(u->error), "the download failed");
			goto out;
		}
		if (n < 0) {
			str_printf(u->error, sizeof(u->error), "%s",
				   strerror(u->g ? (int)-n : errno));
			goto out;
		}
		u->off += (uint64_t)n;
		if (!coded) {
			if (n == 0)
				break;
			ring_filled(u, (size_t)n, false);
			continue;
		}
		/* n == 0: what the decoder still holds comes out */
		for (;;) {
			uint8_t *out = ring_fill(u);
			size_t used, made;

			if (!out)
				goto out;
			if (decoder_feed(&dec, in + off, (size_t)n - off, out, UNPACK_CHUNK, &used,
					 &made, &err) < 0) {
				str_copy(u->error, sizeof(u->error), err.msg);
				goto out;
			}
			off += used;
			ring_filled(u, made, false);
			if (used == 0 && made == 0)
				break;
		}
		if (n == 0)
			break;
	}
	if (coded && decoder_end(&dec, &err) < 0)
		str_copy(u->error, sizeof(u->error), err.msg);
out:
	u->cpu_ns = thread_cpu_ns() - t0;
	ring_filled(u, 0, true);
	decoder_done(&dec);
	free(in);
	return NULL;
}

/* gzip, zstd (where cove has libzstd), or no compression libarchive would know (m[0..n): the
 * layer's first bytes): the one-pass path is for these */
static bool one_pass(const uint8_t *m, ssize_t n, enum codec *ret)
{
	*ret = CODEC_NONE;
	if (n < 0)
		return false;
	if (gunzip_magic(m, (size_t)n))
		*ret = CODEC_GZIP;
	else if (unzstd_magic(m, (size_t)n))
		*ret = CODEC_ZSTD;
	if (*ret == CODEC_ZSTD)
		return unzstd_available();
	return *ret == CODEC_GZIP ||
	       (!(n >= 6 && memcmp(m, "\xfd" "7zXZ\0", 6) == 0) && /* xz */
		!(n >= 3 && memcmp(m, "BZh", 3) == 0) &&            /* bzip2 */
		!(n >= 1 && m[0] == 0x5d));                          /* lzma */
}

static ssize_t growing_head(struct feed *f, struct growing *g, uint8_t *m, size_t n);

/* What a layer (its blob open as fd, or growing as g) is compressed with, from its first bytes:
 * 1 when the one-pass path takes it (*ret: its codec), 0 when libarchive's filters do,
 * -ECANCELED when its download failed. */
static int layer_codec(struct feed *f, struct growing *g, int fd, enum codec *ret)
{
	uint8_t head[6] = { 0 };
	ssize_t n = g ? growing_head(f, g, head, sizeof(head)) : pread(fd, head, sizeof(head), 0);

	if (n == -ECANCELED)
		return -ECANCELED;
	return one_pass(head, n, ret);
}

/* Stop an unpack's thread: at its next buffer, or once the download it waits for moves. */
static void unpack_stop(struct unpack *u)
{
	if (u->joined)
		return;
	pthread_mutex_lock(&u->mu);
	u->gone = true;
	pthread_cond_broadcast(&u->cv);
	pthread_mutex_unlock(&u->mu);
	pthread_join(u->thread, NULL);
	u->joined = true;
}

/* Stop an unpack's thread and free it. */
static void unpack_free(struct unpack *u)
{
	if (!u)
		return;
	unpack_stop(u);
	for (unsigned k = 0; k < RING_AHEAD; k++)
		free(u->buf[k]);
	digest_hasher_free(u->h);
	if (u->own_fd)
		close(u->blob_fd);
	pthread_mutex_destroy(&u->mu);
	pthread_cond_destroy(&u->cv);
	free(u);
}

/*
 * Start decoding a layer (its blob open as fd, or growing as g) into a ring of cap buffers.
 * With probe, the thread finds the codec itself (a read-ahead: the writer is busy with the
 * layer before). NULL when there is no memory or thread for it.
 */
static struct unpack *unpack_start(int fd, bool own_fd, struct feed *f, struct growing *g,
				   enum codec codec, bool probe, unsigned cap)
{
	struct unpack *u = calloc(1, sizeof(*u));

	if (!u) {
		if (own_fd)
			close(fd);
		return NULL;
	}
	*u = (struct unpack){ .blob_fd = fd, .own_fd = own_fd, .feed = f, .g = g, .codec = codec,
			      .probe = probe, .probed = !probe, .cap = cap, .started = now_ns() };
	pthread_mutex_init(&u->mu, NULL);
	pthread_cond_init(&u->cv, NULL);
	if (digest_hasher_new(&u->h) < 0 || pthread_create(&u->thread, NULL, unpack_run, u) != 0) {
		u->joined = true; /* no thread to stop */
		unpack_free(u);
		return NULL;
	}
	return u;
}

/* Whether a read-ahead found its layer to be one it decodes (waits for it to know); its errors
 * are apply_one_pass's to report. */
static bool unpack_usable(struct unpack *u)
{
	bool ok;

	pthread_mutex_lock(&u->mu);
	while (!u->probed && !u->end)
		pthread_cond_wait(&u->cv, &u->mu);
	ok = u->probed && !u->other;
	pthread_mutex_unlock(&u->mu);
	return ok;
}

/* Apply layer i from u, in one pass; *ret_digest is its diff_id. */
static int apply_one_pass(struct ext4_writer *w, struct unpack *u, size_t i, const char *digest,
			  char ret_digest[DIGEST_STRING_MAX], struct cove_error *err)
{
	uint64_t cpu = thread_cpu_ns();
	int r;

	r = ext4_writer_add_tar_blocks(w, ring_take, u, err);
	/* the rest of the stream (the tar's padding) counts for the diff_id too */
	if (r == 0) {
		const void *b;

		while (ring_take(u, &b) > 0)
			;
	}
	unpack_stop(u); /* a writer that failed: the decoder stops at its next buffer */
	if (getenv("COVE_PULL_STATS"))
		fprintf(stderr,
			"cove: layer %zu: %s: read+%s %.0f ms CPU, sha256+tar+ext4 %.0f ms CPU, "
			"%.0f ms wall\n",
			i + 1, digest, codec_name(u->codec), u->cpu_ns / 1e6,
			(thread_cpu_ns() - cpu) / 1e6, (now_ns() - u->started) / 1e6);
	/* a broken stream makes a broken tar too: the stream's own error says more */
	if (u->error[0]) {
		*err = (struct cove_error){ 0 };
		return cove_error_set(err, EBADMSG, "layer %zu (%s) cannot be read: %s", i + 1,
				      digest, u->error);
	}
	if (r < 0)
		return r;
	digest_hasher_final(u->h, ret_digest);
	return 0;
}

/* The first bytes of a growing layer (all of them when it is shorter) */
static ssize_t growing_head(struct feed *f, struct growing *g, uint8_t *m, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = growing_read(f, g, m + got, n - got, got);

		if (r < 0)
			return r;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* A growing layer whole (for libarchive's filters, which read it as a file): a descriptor of
 * its own on it once it has all arrived */
static int growing_whole(struct feed *f, struct growing *g)
{
	char path[64];
	bool ok;

	pthread_mutex_lock(&f->mu);
	while (g->have < g->size && !g->failed && !f->abort)
		pthread_cond_wait(&f->cv, &f->mu);
	ok = !g->failed && !f->abort;
	pthread_mutex_unlock(&f->mu);
	if (!ok)
		return -ECANCELED;
	str_printf(path, sizeof(path), "/proc/self/fd/%d", g->fd);
	return open(path, O_RDONLY | O_CLOEXEC);
}

/*
 * Decode the next layer while the writer applies this one, where a third core can take it
 * (COVE_PULL_AHEAD=1 always, =0 never): on two cores the decoder and the writer already take
 * both. At most RING_AHEAD MiB of it wait for the writer.
 */
static bool read_ahead(void)
{
	const char *e = getenv("COVE_PULL_AHEAD");

	if (e)
		return strcmp(e, "0") != 0;
	return sysconf(_SC_NPROCESSORS_ONLN) > 2;
}

/* Layer k as it downloads, or NULL when it is read from the store. */
static struct growing *growing_of(struct feed *feed, size_t k)
{
	return feed && feed->job_of[k] >= 0 ? &feed->jobs[feed->job_of[k]] : NULL;
}

static struct unpack *unpack_ahead(struct store *s, struct feed *feed,
				   const struct image_manifest *m, size_t k)
{
	struct growing *g = growing_of(feed, k);
	int fd = g ? -1 : store_blob_open(s, m->layers[k].digest);

	if (!g && fd < 0)
		return NULL;
	return unpack_start(fd, !g, feed, g, CODEC_NONE, true, RING_AHEAD);
}

/* COVE_PULL_STATS=1: when each step of a pull ended, in ms since the pull began (stderr) */
static uint64_t stats_t0;

static void stats_mark(const char *step)
{
	if (stats_t0)
		fprintf(stderr, "cove: %6.0f ms  %s\n", (now_ns() - stats_t0) / 1e6, step);
}

static int write_snapshot(struct store *s, const struct image_manifest *m,
			  const struct image_config *cfg, const char *path, uint64_t min_size,
			  struct feed *feed, struct cove_error *err)
{
	/* another pull of the image may finish first: its snapshot stays, containers may use it */
	struct ext4_writer_opts wo = { .label = "cove", .keep_existing = true };
	struct ext4_writer *w = NULL;
	struct unpack *ahead = NULL; /* the next layer, decoding already (read_ahead) */
	struct statvfs vfs;
	uint64_t compressed = 0;
	int r = 0;

	for (size_t i = 0; i < m->n_layers; i++)
		compressed += m->layers[i].size;
	/* sparse: a generous size costs only what is written */
	wo.size_bytes = compressed < (MAX_SNAPSHOT - SNAPSHOT_HEADROOM) / 8
				? compressed * 8 + SNAPSHOT_HEADROOM
				: MAX_SNAPSHOT;
	if (wo.size_bytes < min_size)
		wo.size_bytes = min_size;
	/*
	 * Never more than the disk can hold, less a margin: a layer that unpacks to more than
	 * that (a decompression bomb) stops with "image is full", not with a full disk.
	 */
	if (statvfs(store_root(s), &vfs) == 0) {
		uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
		uint64_t cap = avail > SNAPSHOT_DISK_MARGIN ? avail - SNAPSHOT_DISK_MARGIN : 0;
		cap -= cap / 10;
		if (wo.size_bytes > cap)
			wo.size_bytes = cap > EXT4_WRITER_MIN_SIZE ? cap : EXT4_WRITER_MIN_SIZE;
	}
	r = ext4_writer_new(path, &wo, &w, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < m->n_layers && r == 0; i++) {
		struct growing *g = growing_of(feed, i);
		_cleanup_close_ int fd = g ? -1 : store_blob_open(s, m->layers[i].digest);
		struct diff_hash dh = { .fd = -1 };
		struct unpack *u = ahead;
		pthread_t t;
		bool hashing = false;
		enum codec codec;
		int pass;

		ahead = NULL;
		if (u && !unpack_usable(u)) { /* not a layer for one pass: the usual way below */
			unpack_free(u);
			u = NULL;
		}
		if (!u && !g && fd < 0) {
			r = cove_error_set(err, fd, "layer %s is missing from the store",
					   m->layers[i].digest);
			break;
		}
		if (!u) {
			pass = layer_codec(feed, g, fd, &codec);
			if (pass == -ECANCELED) {
				r = cove_error_set(err, ECANCELED, "a download failed");
				break;
			}
			if (pass > 0 && !(u = unpack_start(fd, false, feed, g, codec, false, RING))) {
				r = cove_error_set(err, ENOMEM, "cannot start a thread: out of memory");
				break;
			}
		}
		if (u) {
			char got[DIGEST_STRING_MAX];

			if (read_ahead() && i + 1 < m->n_layers)
				ahead = unpack_ahead(s, feed, m, i + 1);
			r = apply_one_pass(w, u, i, m->layers[i].digest, got, err);
			unpack_free(u);
			if (r == 0 && cfg && i < cfg->n_diff_ids && strcmp(got, cfg->diff_ids[i]) != 0)
				r = cove_error_set(err, EBADMSG,
						   "layer %zu (%s) unpacks to %s, but the image "
						   "config says %s",
						   i + 1, m->layers[i].digest, got, cfg->diff_ids[i]);
			else if (r < 0 && err->code != EBADMSG)
				cove_error_prefix(err, "layer %zu (%s)", i + 1, m->layers[i].digest);
			continue;
		}
		if (g && (fd = growing_whole(feed, g)) < 0) {
			r = cove_error_set(err, ECANCELED, "a download failed");
			break;
		}
		/* the diff_id check reads the blob through a descriptor of its own */
		if (cfg && i < cfg->n_diff_ids) {
			char again[64];

			str_printf(again, sizeof(again), "/proc/self/fd/%d", fd);
			dh.fd = open(again, O_RDONLY | O_CLOEXEC);
			hashing = dh.fd >= 0 && pthread_create(&t, NULL, diff_hash_run, &dh) == 0;
		}
		r = ext4_writer_add_tar(w, fd, err);
		if (r < 0) {
			cove_error_prefix(err, "layer %zu (%s)", i + 1, m->layers[i].digest);
			atomic_store(&dh.stop, true);
		}
		if (hashing) {
			pthread_join(t, NULL);
			if (r == 0 && dh.error[0])
				r = cove_error_set(err, EBADMSG, "layer %zu (%s) cannot be read: %s",
						   i + 1, m->layers[i].digest, dh.error);
			else if (r == 0 && strcmp(dh.digest, cfg->diff_ids[i]) != 0)
				r = cove_error_set(err, EBADMSG,
						   "layer %zu (%s) unpacks to %s, but the image "
						   "config says %s",
						   i + 1, m->layers[i].digest, dh.digest,
						   cfg->diff_ids[i]);
		}
		closep(&dh.fd);
	}
	unpack_free(ahead); /* after a failure: it stops */
	/* named only once every download's digest held */
	if (r == 0 && feed) {
		pthread_mutex_lock(&feed->mu);
		while (!feed->verified && !feed->abort)
			pthread_cond_wait(&feed->cv, &feed->mu);
		if (feed->abort)
			r = cove_error_set(err, ECANCELED, "a download failed");
		pthread_mutex_unlock(&feed->mu);
	}
	stats_mark("snapshot: every layer applied");
	if (r == 0)
		r = ext4_writer_finish(w, err);
	stats_mark("snapshot: metadata written and synced");
	ext4_writer_free(w);
	return r;
}

/* The snapshot written by a thread of its own while the layers download (image_pull). */
struct snap_job {
	struct store *s;
	const struct image_manifest *m;
	const struct image_config *cfg;
	const char *path;
	uint64_t min_size;
	struct feed *feed;
	struct cove_error err;
	int r;
};

static void *snap_run(void *arg)
{
	struct snap_job *j = arg;

	j->r = write_snapshot(j->s, j->m, j->cfg, j->path, j->min_size, j->feed, &j->err);
	return NULL;
}

int image_write_snapshot(struct store *s, const struct image_manifest *m,
			 const struct image_config *cfg, const char *manifest_digest,
			 uint64_t min_size, struct cove_error *err)
{
	char path[4096];
	struct stat st;
	int r;

	r = store_snapshot_path(s, manifest_digest, path, sizeof(path));
	if (r < 0)
		return cove_error_set(err, r, "cannot name the snapshot of %s", manifest_digest);
	if (stat(path, &st) == 0)
		return 0;
	store_snapshot_reclaim(s, manifest_digest);
	return write_snapshot(s, m, cfg, path, min_size ? min_size : DEFAULT_MIN_SNAPSHOT, NULL, err);
}

/* Parse the top manifest, following an index to the platform's manifest. */
static int resolve_manifest(struct store *s, struct registry_client *c, const char *repo,
			    const struct buf *top, const char *top_type,
			    const struct image_platform *platform, struct image_manifest **ret,
			    char ret_digest[DIGEST_STRING_MAX], struct cove_error *err)
{
	enum image_media_type type;
	int r;

	r = manifest_detect_type(top->data, top->len, top_type, &type, err);
	if (r < 0)
		return r;
	if (image_media_type_is_index(type)) {
		struct image_index *idx = NULL;
		const struct image_descriptor *d;
		struct buf body = BUF_INIT(MANIFEST_MAX_SIZE);
		_cleanup_free_ char *ctype = NULL;

		r = image_index_parse(top->data, top->len, top_type, &idx, err);
		if (r < 0)
			return r;
		r = image_index_select(idx, platform, &d, err);
		if (r == 0) {
			str_copy(ret_digest, DIGEST_STRING_MAX, d->digest);
			r = fetch_manifest(s, c, repo, d->digest, &body, &ctype, err);
		}
		if (r == 0)
			r = image_manifest_parse(body.data, body.len, ctype, ret, err);
		buf_done(&body);
		image_index_free(idx);
		return r;
	}
	return image_manifest_parse(top->data, top->len, top_type, ret, err);
}

int image_pull(struct store *s, const char *reference, const struct pull_opts *o,
	       struct store_image *ret, struct cove_error *err)
{
	struct reference ref;
	struct registry_client *c = NULL;
	struct buf top = BUF_INIT(MANIFEST_MAX_SIZE);
	_cleanup_free_ char *top_type = NULL, *config_data = NULL;
	struct image_manifest *m = NULL;
	struct image_config *cfg = NULL;
	struct registry_blob_job *jobs = NULL;
	struct blob_sink *sinks = NULL;
	struct feed feed = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };
	struct snap_job sj = { 0 };
	pthread_t snap_thread;
	bool overlap = false;
	struct store_image img = { 0 };
	char top_digest[DIGEST_STRING_MAX], digest[DIGEST_STRING_MAX] = "", snap[4096];
	enum image_media_type top_media;
	size_t njobs = 0, config_len;
	struct stat st;
	int r;

	stats_t0 = getenv("COVE_PULL_STATS") ? now_ns() : 0;
	r = reference_parse(reference, &ref, err);
	if (r < 0)
		return r;
	r = reference_format(&ref, img.reference, sizeof(img.reference));
	if (r < 0)
		return cove_error_set(err, r, "reference '%s' is too long", reference);
	r = registry_client_new(reference_api_host(&ref), &o->registry, &c, err);
	if (r < 0)
		return r;
	stats_mark("libcurl loaded");
	r = store_pin(s, err);
	if (r < 0)
		goto out;

	r = registry_get_manifest(c, ref.repository, reference_pull_ref(&ref), &top, &top_type,
				  top_digest, err);
	if (r < 0)
		goto out;
	r = manifest_detect_type(top.data, top.len, top_type, &top_media, err);
	if (r < 0)
		goto out;
	r = store_blob_put(s, top.data, top.len, top_digest, NULL, err);
	if (r < 0)
		goto out;
	str_copy(digest, sizeof(digest), top_digest);
	r = resolve_manifest(s, c, ref.repository, &top, top_type, o->platform, &m, digest, err);
	if (r < 0)
		goto out;
	progress(o, PULL_RESOLVED, digest, 0);
	stats_mark("manifest");

	/* the config: small, fetched first, checked against the manifest */
	r = fetch_blob(s, c, ref.repository, &m->config, err);
	if (r < 0)
		goto out;
	r = store_blob_read_small(s, m->config.digest, IMAGE_CONFIG_MAX_SIZE, &config_data,
				  &config_len, err);
	if (r < 0)
		goto out;
	r = image_config_parse(config_data, config_len, &cfg, err);
	if (r < 0)
		goto out;
	r = image_config_check_layers(cfg, m, err);
	if (r < 0)
		goto out;
	stats_mark("config");

	/* the layers that are missing, in parallel */
	jobs = calloc(m->n_layers ? m->n_layers : 1, sizeof(*jobs));
	sinks = calloc(m->n_layers ? m->n_layers : 1, sizeof(*sinks));
	if (!jobs || !sinks) {
		r = cove_error_set(err, ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < m->n_layers; i++) {
		const struct image_descriptor *d = &m->layers[i];
		bool dup = false;

		for (size_t j = 0; j < njobs; j++)
			dup = dup || strcmp(jobs[j].digest, d->digest) == 0;
		if (dup)
			continue;
		if (store_blob_has(s, d->digest)) {
			progress(o, PULL_LAYER_HAVE, d->digest, d->size);
			continue;
		}
		r = store_blob_writer_new(s, d->digest, d->size, &sinks[njobs].w, err);
		if (r < 0)
			goto out;
		sinks[njobs].o = o;
		sinks[njobs].digest = d->digest;
		sinks[njobs].received = sinks[njobs].reported = store_blob_writer_offset(sinks[njobs].w);
		progress(o, PULL_LAYER_START, d->digest, d->size);
		jobs[njobs] = (struct registry_blob_job){
			.digest = d->digest,
			.size = d->size,
			.resume_offset = store_blob_writer_offset(sinks[njobs].w),
			.write = sink_write,
			.userdata = &sinks[njobs],
		};
		njobs++;
	}
	/* the snapshot (once per platform manifest) is written while the layers download: each
	 * layer is read as it arrives, and the snapshot is named only once every digest held */
	r = store_snapshot_path(s, digest, snap, sizeof(snap));
	if (r < 0) {
		r = cove_error_set(err, r, "cannot name the snapshot of %s", digest);
		goto out;
	}
	if (njobs && stat(snap, &st) < 0) {
		feed.jobs = calloc(njobs, sizeof(*feed.jobs));
		feed.job_of = calloc(m->n_layers, sizeof(*feed.job_of));
		if (!feed.jobs || !feed.job_of) {
			r = cove_error_set(err, ENOMEM, "out of memory");
			goto out;
		}
		for (size_t j = 0; j < njobs; j++) {
			feed.jobs[j] = (struct growing){ .fd = store_blob_writer_fd(sinks[j].w),
							 .size = jobs[j].size,
							 .have = jobs[j].resume_offset };
			sinks[j].feed = &feed;
			sinks[j].g = &feed.jobs[j];
		}
		for (size_t i = 0; i < m->n_layers; i++) {
			feed.job_of[i] = -1;
			for (size_t j = 0; j < njobs; j++)
				if (strcmp(jobs[j].digest, m->layers[i].digest) == 0)
					feed.job_of[i] = (ssize_t)j;
		}
		store_snapshot_reclaim(s, digest);
		sj = (struct snap_job){ .s = s, .m = m, .cfg = cfg, .path = snap,
					.min_size = o->min_snapshot_size ? o->min_snapshot_size
									 : DEFAULT_MIN_SNAPSHOT,
					.feed = &feed };
		overlap = pthread_create(&snap_thread, NULL, snap_run, &sj) == 0;
		for (size_t j = 0; !overlap && j < njobs; j++)
			sinks[j].feed = NULL;
	}
	if (njobs) {
		r = registry_get_blobs(c, ref.repository, jobs, njobs,
				       o->parallel ? o->parallel : DEFAULT_PARALLEL, err);
		stats_mark("layers downloaded and their digests checked");
		for (size_t i = 0; i < njobs; i++) {
			if (jobs[i].result < 0) {
				if (r == 0 || !err->code)
					*err = sinks[i].err.code ? sinks[i].err : jobs[i].err;
				r = jobs[i].result;
				continue;
			}
			if (r == 0 && (r = store_blob_commit(sinks[i].w, err)) == 0)
				progress(o, PULL_LAYER_DONE, jobs[i].digest, jobs[i].size);
		}
		stats_mark("layer blobs synced");
	}
	if (overlap) {
		feed_set(&feed, NULL, 0, false, r == 0 ? 1 : -1);
		if (r == 0)
			progress(o, PULL_UNPACKING, digest, 0);
		pthread_join(snap_thread, NULL);
		overlap = false;
		if (r == 0 && sj.r < 0) {
			*err = sj.err;
			r = sj.r;
		}
	}
	if (r < 0)
		goto out;
	if (stat(snap, &st) < 0) {
		progress(o, PULL_UNPACKING, digest, 0);
		r = image_write_snapshot(s, m, cfg, digest, o->min_snapshot_size, err);
		if (r < 0)
			goto out;
	}

	str_copy(img.manifest_digest, sizeof(img.manifest_digest), top_digest);
	img.media_type = top_media;
	img.manifest_size = top.len;
	str_copy(img.config_digest, sizeof(img.config_digest), m->config.digest);
	img.created = (int64_t)time(NULL);
	r = store_snapshot_name(digest, img.snapshot);
	if (r < 0)
		goto out;
	r = store_image_put(s, &img, err);
	if (r < 0)
		goto out;
	progress(o, PULL_DONE, top_digest, 0);
	stats_mark("image recorded");
	*ret = img;
out:
	if (overlap) { /* failed before the downloads: the writer stops, and leaves nothing */
		feed_set(&feed, NULL, 0, false, -1);
		pthread_join(snap_thread, NULL);
	}
	free(feed.jobs);
	free(feed.job_of);
	for (size_t i = 0; sinks && i < njobs; i++)
		store_blob_writer_free(sinks[i].w);
	free(jobs);
	free(sinks);
	image_config_free(cfg);
	image_manifest_free(m);
	buf_done(&top);
	store_unpin(s);
	registry_client_free(c);
	return r;
}

int image_load_config(struct store *s, const struct store_image *img,
		      const struct image_platform *platform, struct image_manifest **ret_manifest,
		      struct image_config **ret_config, struct cove_error *err)
{
	_cleanup_free_ char *type = NULL, *config_data = NULL;
	struct image_manifest *m = NULL;
	struct image_config *cfg = NULL;
	char digest[DIGEST_STRING_MAX];
	struct buf top = BUF_INIT(MANIFEST_MAX_SIZE);
	size_t config_len;
	int r;

	r = fetch_manifest(s, NULL, NULL, img->manifest_digest, &top, &type, err);
	if (r < 0) {
		buf_done(&top);
		return r;
	}
	r = resolve_manifest(s, NULL, NULL, &top, image_media_type_to_string(img->media_type),
			     platform, &m, digest, err);
	buf_done(&top);
	if (r < 0)
		return r;
	r = store_blob_read_small(s, m->config.digest, IMAGE_CONFIG_MAX_SIZE, &config_data,
				  &config_len, err);
	if (r == 0)
		r = image_config_parse(config_data, config_len, &cfg, err);
	if (r < 0) {
		image_manifest_free(m);
		return r;
	}
	*ret_manifest = m;
	*ret_config = cfg;
	return 0;
}
