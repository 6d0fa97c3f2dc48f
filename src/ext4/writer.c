/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ext4 image writer on top of libext2fs. How it is put together:
 *
 * - Formatting follows what mke2fs does for a pre-zeroed device: the image is a fresh sparse
 *   file, so inode tables are marked zeroed instead of being written.
 * - File data never goes through ext2fs_file_*: it is gathered (1 MiB at most at a time),
 *   blocks are allocated in runs with ext2fs_new_range() near a moving goal, and runs that
 *   follow each other on disk (most files' do) wait in a 2 MiB buffer to go in one io_channel
 *   write; the extent tree is built once per file from the run list.
 * - Every directory of the image was created by this writer, so an in-memory index
 *   (dir inode, name) -> (inode, file type) answers all lookups without reading directory
 *   blocks, and new names are appended to the last directory block. Both keep the cost of a
 *   large directory linear instead of quadratic.
 * - Paths from layers are resolved component by component through that index and never
 *   through a symlink of the image.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* SEEK_DATA, mkostemp, reallocarray */
#endif
#include "writer.h"

#include "archive_dl.h"
#include <dirent.h>
#include <et/com_err.h>
#include <ext2fs/ext2_fs.h>
#include <ext2fs/ext2fs.h>
#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "../util/util.h"

#define BLOCK_SIZE	    EXT4_WRITER_BLOCK_SIZE
#define INODE_SIZE	    256
#define DATA_BUF_SIZE	    (1u << 20)	  /* file data gathered before one allocation */
#define COMBINE_SIZE	    (2u << 20)	  /* data of runs that follow each other, written at once */
#define READ_BUF_SIZE	    (1u << 20)	  /* host file reads */
#define MAX_PATH_LEN	    4095	  /* bytes of a normalised path in the image */
#define MAX_NAME_LEN	    255		  /* bytes of one component */
#define MAX_DEPTH	    256		  /* nesting of a host tree we walk */
#define MAX_XATTRS	    128		  /* xattrs of one entry */
#define XATTR_VALUES_MAX    (64u * 1024)  /* bytes of xattr values of one entry */
#define MAX_EXTENT_LEN	    32768u	  /* blocks in one initialised extent */
#define MAX_LBLK	    0xffffffffull /* logical blocks addressable by an extent */
#define TIME_MIN	    ((int64_t)INT32_MIN)
#define TIME_MAX	    0x27fffffffll /* latest time with epoch bits < 3 (year 2310) */
#define DEFAULT_INODE_RATIO 16384
#define MIN_INODES	    1024
#define HEADROOM_BYTES	    (32ull << 20)

#define DIV_ROUND_UP(a, b) ((a) / (b) + ((a) % (b) != 0)) /* no overflow near UINT64_MAX */

struct xattr {
	const char *name;
	const void *value;
	size_t size;
};

/* What an entry is, whatever it came from (a tar header or an lstat of the host tree). */
struct entry {
	const char *path; /* for messages */
	uint32_t mode;	  /* S_IFMT type and the 07777 bits */
	uint32_t uid, gid;
	uint64_t size;	     /* regular files */
	uint64_t data_bytes; /* what the data will take at most, for the early "full" check */
	uint32_t rdev_major, rdev_minor;
	struct timespec atime, mtime, ctime;
	const char *link_target; /* symlinks */
	const struct xattr *xattrs;
	size_t n_xattrs;
};

/* Yields a regular file's data in increasing offsets; *ret_len == 0 at the end. */
struct data_src {
	int (*next)(void *userdata, const void **ret_buf, size_t *ret_len, uint64_t *ret_off,
		    struct cove_error *err);
	void *userdata;
};

/* One name in one directory of the image. */
struct dent {
	struct dent *next;
	uint32_t dir;
	uint32_t ino;
	uint32_t hash;
	uint8_t ft;
	uint8_t len;
	char name[];
};

/* A run of blocks of the file being written: logical lblk.. maps to physical pblk.. */
struct run {
	uint64_t lblk;
	blk64_t pblk;
	uint32_t len;
};

/* host (dev, ino) -> image inode, for hardlinks inside a copied tree */
struct hl_slot {
	dev_t dev;
	ino_t ino;
	uint32_t image_ino; /* 0 = empty slot */
};

struct hl_map {
	struct hl_slot *slots;
	size_t n_slots, count;
};

#define WRITEBACK_KICK (32ULL << 20)

/*
 * The image is synced while it is written: every WRITEBACK_KICK bytes of file data the disk is
 * asked to start writing, and a thread of the writer's syncs what is there so far. The final
 * fsync then has only the tail left. (On a virtual disk a sync of the whole image at the end,
 * mostly the device's cache flush, took ~110 ms after a 127 MB layer; ~40 ms this way.)
 */
struct syncer {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int fd;
	bool running, want, stop;
	int error; /* the first failed sync's: a later fsync of the same file may not see it */
};

struct ext4_writer {
	ext2_filsys fs;
	char *image_path;
	char *tmp_path;
	int fd;
	bool finished;
	bool keep_existing;
	bool broken;
	uint64_t unkicked; /* bytes of file data since writeback was last started */
	struct syncer sync;
	struct timespec now;
	blk64_t goal; /* where the next data run is looked for */

	/*
	 * File data waits in comb until a run does not follow the ones before on disk or the
	 * buffer is full, then goes in one write: most files are small and their blocks follow
	 * each other, and a write each cost more than their bytes.
	 */
	uint8_t *comb;
	blk64_t comb_pblk; /* the block of comb[0] */
	uint64_t comb_n;   /* blocks waiting */

	/* the regular file being written, gathered at data (in comb, after what waits) */
	uint8_t *data;
	uint64_t data_off; /* file offset of data[0], block aligned */
	size_t data_len;
	uint64_t data_pos; /* end of what was put so far, to insist on increasing offsets */
	uint64_t data_blocks;
	struct run *runs;
	size_t n_runs, cap_runs;

	/*
	 * The last block of the directory a name last went into, kept in dirbuf until a name
	 * goes elsewhere: a layer lists a directory's names together, so each block is read and
	 * checksummed once rather than once per name.
	 */
	uint8_t *dirbuf;
	ext2_ino_t tail_dir; /* 0: dirbuf holds nothing */
	blk64_t tail_blk;
	bool tail_dirty;

	struct dent **buckets;
	size_t n_buckets, n_dents;
	uint32_t hash_seed;

	/* scratch for one entry's xattrs read from the host */
	struct xattr xattrs[MAX_XATTRS];
	char *xattr_names;
	uint8_t *xattr_values;
};

/* ---- errors ---------------------------------------------------------------------------- */

static int e2_errno(errcode_t e)
{
	if (e > 0 && e < 4096)
		return (int)e;
	switch (e) {
	case EXT2_ET_BLOCK_ALLOC_FAIL:
	case EXT2_ET_INODE_ALLOC_FAIL:
	case EXT2_ET_DIR_NO_SPACE:
	case EXT2_ET_DIR_NO_SPACE_FOR_CSUM:
	case EXT2_ET_EA_NO_SPACE:
		return ENOSPC;
	case EXT2_ET_NO_MEMORY:
		return ENOMEM;
	case EXT2_ET_FILE_NOT_FOUND:
		return ENOENT;
	case EXT2_ET_FILE_TOO_BIG:
		return EFBIG;
	case EXT2_ET_EA_KEY_NOT_FOUND:
		return ENODATA;
	case EXT2_ET_INVALID_ARGUMENT:
	case EXT2_ET_EA_BAD_NAME_LEN:
	case EXT2_ET_EA_BAD_VALUE_SIZE:
		return EINVAL;
	default:
		return EIO;
	}
}

static const char *e2_message(errcode_t e)
{
	switch (e) {
	case EXT2_ET_BLOCK_ALLOC_FAIL:
	case EXT2_ET_DIR_NO_SPACE:
	case EXT2_ET_DIR_NO_SPACE_FOR_CSUM:
	case ENOSPC:
		return "image is full (no space left on device)";
	case EXT2_ET_INODE_ALLOC_FAIL:
		return "image is full (no free inodes)";
	case EXT2_ET_EA_NO_SPACE:
		return "extended attributes do not fit in the inode and one block";
	default:
		return error_message(e);
	}
}

static const char *display(const char *path)
{
	return path && *path ? path : "/";
}

/* "unable to write 'usr/bin/x' into image: image is full (no space left on device)" */
static int fail_write(struct cove_error *err, errcode_t e, const char *path)
{
	return cove_error_set(err, e2_errno(e), "unable to write '%s' into image: %s",
			      display(path), e2_message(e));
}

static int fail_remove(struct cove_error *err, errcode_t e, const char *path)
{
	return cove_error_set(err, e2_errno(e), "unable to remove '%s' from image: %s",
			      display(path), e2_message(e));
}

static void ext2_errors_init(void)
{
	static bool done;

	if (!done) {
		add_error_table(&et_ext2_error_table);
		done = true;
	}
}

/* ---- the name index -------------------------------------------------------------------- */

/* FNV-1a, seeded per writer so a layer cannot aim its names at one bucket ahead of time */
static uint32_t name_hash(const struct ext4_writer *w, uint32_t dir, const char *name, size_t len)
{
	uint32_t h = (2166136261u ^ w->hash_seed) * 16777619u ^ dir;

	for (size_t i = 0; i < len; i++) {
		h ^= (uint8_t)name[i];
		h *= 16777619u;
	}
	return h;
}

static struct dent *index_find(struct ext4_writer *w, uint32_t dir, const char *name, size_t len)
{
	uint32_t h = name_hash(w, dir, name, len);

	for (struct dent *d = w->buckets[h & (w->n_buckets - 1)]; d; d = d->next)
		if (d->hash == h && d->dir == dir && d->len == len &&
		    memcmp(d->name, name, len) == 0)
			return d;
	return NULL;
}

static int index_grow(struct ext4_writer *w)
{
	size_t n = w->n_buckets * 2;
	struct dent **b = calloc(n, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < w->n_buckets; i++) {
		struct dent *d = w->buckets[i];

		while (d) {
			struct dent *next = d->next;

			d->next = b[d->hash & (n - 1)];
			b[d->hash & (n - 1)] = d;
			d = next;
		}
	}
	free(w->buckets);
	w->buckets = b;
	w->n_buckets = n;
	return 0;
}

static int index_add(struct ext4_writer *w, uint32_t dir, const char *name, size_t len,
		     uint32_t ino, uint8_t ft)
{
	struct dent *d;
	size_t slot;

	if (w->n_dents >= w->n_buckets && index_grow(w) < 0)
		return -ENOMEM;
	d = malloc(sizeof(*d) + len);
	if (!d)
		return -ENOMEM;
	d->dir = dir;
	d->ino = ino;
	d->hash = name_hash(w, dir, name, len);
	d->ft = ft;
	d->len = (uint8_t)len;
	memcpy(d->name, name, len);
	slot = d->hash & (w->n_buckets - 1);
	d->next = w->buckets[slot];
	w->buckets[slot] = d;
	w->n_dents++;
	return 0;
}

static void index_del(struct ext4_writer *w, uint32_t dir, const char *name, size_t len)
{
	uint32_t h = name_hash(w, dir, name, len);

	for (struct dent **p = &w->buckets[h & (w->n_buckets - 1)]; *p; p = &(*p)->next) {
		struct dent *d = *p;

		if (d->hash == h && d->dir == dir && d->len == len &&
		    memcmp(d->name, name, len) == 0) {
			*p = d->next;
			free(d);
			w->n_dents--;
			return;
		}
	}
}

static void index_free(struct ext4_writer *w)
{
	for (size_t i = 0; w->buckets && i < w->n_buckets; i++) {
		struct dent *d = w->buckets[i];

		while (d) {
			struct dent *next = d->next;

			free(d);
			d = next;
		}
	}
	free(w->buckets);
	w->buckets = NULL;
}

/* ---- inodes ---------------------------------------------------------------------------- */

union inode_buf {
	struct ext2_inode_large i;
	uint8_t raw[INODE_SIZE];
};

static uint8_t mode_to_ft(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		return EXT2_FT_REG_FILE;
	case S_IFDIR:
		return EXT2_FT_DIR;
	case S_IFLNK:
		return EXT2_FT_SYMLINK;
	case S_IFCHR:
		return EXT2_FT_CHRDEV;
	case S_IFBLK:
		return EXT2_FT_BLKDEV;
	case S_IFIFO:
		return EXT2_FT_FIFO;
	case S_IFSOCK:
		return EXT2_FT_SOCK;
	default:
		return EXT2_FT_UNKNOWN;
	}
}

/* ext4's on-disk time: low 32 bits of seconds, 2 epoch bits and nanoseconds in the extra word */
static void time_encode(const struct timespec *ts, __u32 *ret_sec, __u32 *ret_extra)
{
	int64_t s = ts->tv_sec;
	uint64_t epoch;
	uint32_t ns = ts->tv_nsec >= 0 && ts->tv_nsec < 1000000000 ? (uint32_t)ts->tv_nsec : 0;

	if (s < TIME_MIN)
		s = TIME_MIN;
	if (s > TIME_MAX)
		s = TIME_MAX;
	/* the epoch counts whole 2^32 spans past the signed 32-bit range */
	epoch = (uint64_t)(s - (int64_t)(int32_t)(uint32_t)s) >> 32;
	*ret_sec = (uint32_t)s;
	*ret_extra = (uint32_t)(epoch & 3) | (ns << 2);
}

static void inode_set_times(struct ext2_inode_large *in, const struct entry *e)
{
	time_encode(&e->atime, &in->i_atime, &in->i_atime_extra);
	time_encode(&e->mtime, &in->i_mtime, &in->i_mtime_extra);
	time_encode(&e->ctime, &in->i_ctime, &in->i_ctime_extra);
	time_encode(&e->mtime, &in->i_crtime, &in->i_crtime_extra);
}

static void inode_set_owner(struct ext2_inode_large *in, uint32_t uid, uint32_t gid)
{
	in->i_uid = (__u16)uid;
	ext2fs_set_i_uid_high(*in, uid >> 16);
	in->i_gid = (__u16)gid;
	ext2fs_set_i_gid_high(*in, gid >> 16);
}

static void inode_init(struct ext2_inode_large *in, const struct entry *e)
{
	memset(in, 0, sizeof(*in));
	in->i_mode = (__u16)e->mode;
	inode_set_owner(in, e->uid, e->gid);
	in->i_links_count = 1;
	in->i_extra_isize = sizeof(struct ext2_inode_large) - EXT2_GOOD_OLD_INODE_SIZE;
	inode_set_times(in, e);
}

static errcode_t inode_read(struct ext4_writer *w, ext2_ino_t ino, struct ext2_inode_large *in)
{
	return ext2fs_read_inode_full(w->fs, ino, (struct ext2_inode *)in, sizeof(*in));
}

/* Updates keep the in-inode xattr area that follows struct ext2_inode_large. */
static errcode_t inode_write(struct ext4_writer *w, ext2_ino_t ino, struct ext2_inode_large *in)
{
	return ext2fs_write_inode_full(w->fs, ino, (struct ext2_inode *)in, sizeof(*in));
}

/* A new inode is written whole, so nothing of a freed inode that had the number survives. */
static errcode_t inode_write_new(struct ext4_writer *w, ext2_ino_t ino,
				 const struct ext2_inode_large *in)
{
	union inode_buf b;

	memset(&b, 0, sizeof(b));
	b.i = *in;
	return ext2fs_write_inode_full(w->fs, ino, (struct ext2_inode *)&b, INODE_SIZE);
}

/* Build the extent tree of a fresh inode (already written with inode_write_new) from runs. */
static errcode_t inode_set_extents(struct ext4_writer *w, ext2_ino_t ino,
				   struct ext2_inode_large *in, const struct run *runs, size_t n)
{
	ext2_extent_handle_t h;
	errcode_t e;

	in->i_flags |= EXT4_EXTENTS_FL;
	e = ext2fs_extent_open2(w->fs, ino, (struct ext2_inode *)in, &h);
	if (e)
		return e;
	for (size_t i = 0; i < n && !e; i++) {
		struct ext2fs_extent ex = {
		    .e_pblk = runs[i].pblk,
		    .e_lblk = runs[i].lblk,
		    .e_len = runs[i].len,
		};

		if (i == 0) {
			e = ext2fs_extent_insert(h, 0, &ex);
		} else {
			e = ext2fs_extent_goto(h, runs[i - 1].lblk);
			if (!e)
				e = ext2fs_extent_insert(h, EXT2_EXTENT_INSERT_AFTER, &ex);
		}
		if (!e)
			e = ext2fs_extent_fix_parents(h);
	}
	ext2fs_extent_free(h);
	return e;
}

/* ---- directories ----------------------------------------------------------------------- */

/* Put a name into one directory block if it fits; returns true when it did. */
static bool dirblock_insert(struct ext4_writer *w, uint8_t *buf, const char *name, size_t len,
			    ext2_ino_t ino, uint8_t ft, errcode_t *ret_e)
{
	unsigned int end = BLOCK_SIZE, need = EXT2_DIR_REC_LEN(len), off = 0;

	if (ext2fs_has_feature_metadata_csum(w->fs->super))
		end -= sizeof(struct ext2_dir_entry_tail);
	*ret_e = 0;
	while (off < end) {
		struct ext2_dir_entry *de = (struct ext2_dir_entry *)(buf + off);
		unsigned int rec_len, used;

		*ret_e = ext2fs_get_rec_len(w->fs, de, &rec_len);
		if (*ret_e)
			return false;
		if (rec_len < 8 || rec_len % 4 || off + rec_len > end) {
			*ret_e = EXT2_ET_DIR_CORRUPTED;
			return false;
		}
		used = de->inode ? EXT2_DIR_REC_LEN(ext2fs_dirent_name_len(de)) : 0;
		if (rec_len >= used + need) {
			if (used) {
				*ret_e = ext2fs_set_rec_len(w->fs, used, de);
				if (*ret_e)
					return false;
				de = (struct ext2_dir_entry *)(buf + off + used);
				rec_len -= used;
			}
			de->inode = ino;
			*ret_e = ext2fs_set_rec_len(w->fs, rec_len, de);
			if (*ret_e)
				return false;
			ext2fs_dirent_set_name_len(de, (int)len);
			ext2fs_dirent_set_file_type(de, ft);
			memcpy(de->name, name, len);
			return true;
		}
		off += rec_len;
	}
	return false;
}

/* Write the kept directory block back, and keep none. */
static errcode_t tail_put(struct ext4_writer *w)
{
	errcode_t e = 0;

	if (w->tail_dir && w->tail_dirty)
		e = ext2fs_write_dir_block4(w->fs, w->tail_blk, w->dirbuf, 0, w->tail_dir);
	w->tail_dir = 0;
	w->tail_dirty = false;
	return e;
}

/* Keep the last block of dir in dirbuf. */
static errcode_t tail_get(struct ext4_writer *w, ext2_ino_t dir)
{
	struct ext2_inode_large din;
	blk64_t pblk = 0;
	uint64_t nblk;
	errcode_t e;

	if (w->tail_dir == dir)
		return 0;
	e = tail_put(w);
	if (!e)
		e = inode_read(w, dir, &din);
	if (e)
		return e;
	nblk = EXT2_I_SIZE(&din) / BLOCK_SIZE;
	if (nblk == 0)
		return EXT2_ET_DIR_CORRUPTED;
	e = ext2fs_bmap2(w->fs, dir, (struct ext2_inode *)&din, NULL, 0, nblk - 1, NULL, &pblk);
	if (e)
		return e;
	if (!pblk)
		return EXT2_ET_DIR_CORRUPTED;
	e = ext2fs_read_dir_block4(w->fs, pblk, w->dirbuf, 0, dir);
	if (e)
		return e;
	w->tail_dir = dir;
	w->tail_blk = pblk;
	return 0;
}

/* Append a name to the last block of dir, growing dir by a block when it is full. */
static errcode_t dir_append(struct ext4_writer *w, ext2_ino_t dir, const char *name, size_t len,
			    ext2_ino_t ino, uint8_t ft)
{
	errcode_t e;

	for (int attempt = 0; attempt < 2; attempt++) {
		e = tail_get(w, dir);
		if (e)
			return e;
		if (dirblock_insert(w, w->dirbuf, name, len, ino, ft, &e)) {
			w->tail_dirty = true;
			return 0;
		}
		if (!e)
			e = tail_put(w);
		if (!e)
			e = ext2fs_expand_dir(w->fs, dir);
		if (e)
			return e;
	}
	return EXT2_ET_DIR_NO_SPACE;
}

static int dir_add(struct ext4_writer *w, ext2_ino_t dir, const char *name, ext2_ino_t ino,
		   uint32_t mode, const char *path, struct cove_error *err)
{
	size_t len = strlen(name);
	uint8_t ft = mode_to_ft(mode);
	errcode_t e;

	if (len == 0 || len > MAX_NAME_LEN)
		return cove_error_set(err, ENAMETOOLONG, "unable to write '%s' into image: %s",
				      display(path), "invalid name length");

	e = dir_append(w, dir, name, len, ino, ft);
	if (e)
		return fail_write(err, e, path);
	if (index_add(w, dir, name, len, ino, ft) < 0)
		return fail_write(err, ENOMEM, path);
	return 0;
}

static int dir_nlink_add(struct ext4_writer *w, ext2_ino_t dir, int delta, const char *path,
			 struct cove_error *err)
{
	struct ext2_inode_large din;
	errcode_t e;

	e = inode_read(w, dir, &din);
	if (e)
		return fail_write(err, e, path);
	if (delta > 0 && din.i_links_count >= EXT2_LINK_MAX - 1)
		return cove_error_set(err, EMLINK,
				      "unable to write '%s' into image: too many subdirectories",
				      display(path));
	if (delta < 0 && din.i_links_count <= 2)
		return 0;
	din.i_links_count = (__u16)(din.i_links_count + delta);
	e = inode_write(w, dir, &din);
	if (e)
		return fail_write(err, e, path);
	return 0;
}

struct child {
	ext2_ino_t ino;
	uint8_t ft;
	char name[MAX_NAME_LEN + 1];
};

struct children {
	struct child *v;
	size_t n, cap;
	bool nomem;
};

static int children_cb(struct ext2_dir_entry *de, int offset _unused_, int blocksize _unused_,
		       char *buf _unused_, void *userdata)
{
	struct children *c = userdata;
	int len = ext2fs_dirent_name_len(de);

	if (de->inode == 0 || (len == 1 && de->name[0] == '.') ||
	    (len == 2 && de->name[0] == '.' && de->name[1] == '.'))
		return 0;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		struct child *v = reallocarray(c->v, cap, sizeof(*v));

		if (!v) {
			c->nomem = true;
			return DIRENT_ABORT;
		}
		c->v = v;
		c->cap = cap;
	}
	c->v[c->n].ino = de->inode;
	c->v[c->n].ft = (uint8_t)ext2fs_dirent_file_type(de);
	memcpy(c->v[c->n].name, de->name, (size_t)len);
	c->v[c->n].name[len] = '\0';
	c->n++;
	return 0;
}

static errcode_t dir_children(struct ext4_writer *w, ext2_ino_t dir, struct children *c)
{
	errcode_t e;

	e = tail_put(w);
	if (!e)
		e = ext2fs_dir_iterate(w->fs, dir, 0, NULL, children_cb, c);
	if (!e && c->nomem)
		e = EXT2_ET_NO_MEMORY;
	return e;
}

static errcode_t comb_write(struct ext4_writer *w, const uint8_t *keep, size_t len);

/* Drop one link of ino; free its blocks, xattr block and the inode when none is left. */
static int inode_release(struct ext4_writer *w, ext2_ino_t ino, const char *path,
			 struct cove_error *err)
{
	struct ext2_inode_large in;
	bool is_dir;
	errcode_t e;

	e = inode_read(w, ino, &in);
	if (e)
		return fail_remove(err, e, path);
	is_dir = LINUX_S_ISDIR(in.i_mode);
	if (!is_dir && in.i_links_count > 1) {
		in.i_links_count--;
		e = inode_write(w, ino, &in);
		return e ? fail_remove(err, e, path) : 0;
	}
	/* data waiting for its write goes first: its blocks may be among those freed here */
	e = comb_write(w, w->data, w->data_len);
	if (e)
		return fail_remove(err, e, path);
	if (ext2fs_inode_has_valid_blocks2(w->fs, (struct ext2_inode *)&in)) {
		e = ext2fs_punch(w->fs, ino, (struct ext2_inode *)&in, NULL, 0, ~0ULL);
		if (e)
			return fail_remove(err, e, path);
	}
	e = ext2fs_free_ext_attr(w->fs, ino, &in);
	if (e)
		return fail_remove(err, e, path);
	in.i_links_count = 0;
	in.i_dtime = (__u32)w->now.tv_sec;
	e = inode_write(w, ino, &in);
	if (e)
		return fail_remove(err, e, path);
	ext2fs_inode_alloc_stats2(w->fs, ino, -1, is_dir);
	return 0;
}

/* Remove name (inode ino, type ft) from dir, recursively for directories. */
static int remove_entry(struct ext4_writer *w, ext2_ino_t dir, const char *name, ext2_ino_t ino,
			uint8_t ft, const char *path, unsigned int depth, struct cove_error *err)
{
	errcode_t e;
	int r;

	if (ft == EXT2_FT_DIR) {
		struct children c = {};

		if (depth > MAX_PATH_LEN / 2)
			return cove_error_set(err, ELOOP, "unable to remove '%s' from image: %s",
					      display(path), "directories nested too deeply");
		e = dir_children(w, ino, &c);
		if (e) {
			free(c.v);
			return fail_remove(err, e, path);
		}
		r = 0;
		for (size_t i = 0; i < c.n && r >= 0; i++)
			r = remove_entry(w, ino, c.v[i].name, c.v[i].ino, c.v[i].ft, path,
					 depth + 1, err);
		free(c.v);
		if (r < 0)
			return r;
	}
	e = tail_put(w);
	if (!e)
		e = ext2fs_unlink(w->fs, dir, name, ino, 0);
	if (e)
		return fail_remove(err, e, path);
	index_del(w, dir, name, strlen(name));
	if (ft == EXT2_FT_DIR) {
		r = dir_nlink_add(w, dir, -1, path, err);
		if (r < 0)
			return r;
	}
	return inode_release(w, ino, path, err);
}

/* Remove everything inside dir. */
static int dir_empty(struct ext4_writer *w, ext2_ino_t dir, const char *path,
		     struct cove_error *err)
{
	struct children c = {};
	errcode_t e;
	int r = 0;

	e = dir_children(w, dir, &c);
	if (e) {
		free(c.v);
		return fail_remove(err, e, path);
	}
	for (size_t i = 0; i < c.n && r >= 0; i++)
		r = remove_entry(w, dir, c.v[i].name, c.v[i].ino, c.v[i].ft, path, 1, err);
	free(c.v);
	return r;
}

/* ---- xattrs ---------------------------------------------------------------------------- */

/* Namespaces ext4 stores and the kernel reads back; others (e.g. system.nfs4_acl) are skipped. */
static bool xattr_supported(const char *name)
{
	return strncmp(name, "user.", 5) == 0 || strncmp(name, "trusted.", 8) == 0 ||
	       strncmp(name, "security.", 9) == 0 || strcmp(name, "system.posix_acl_access") == 0 ||
	       strcmp(name, "system.posix_acl_default") == 0;
}

struct xattr_names {
	char **v;
	size_t n, cap;
	bool nomem;
};

static int xattr_names_cb(char *name, char *value _unused_, size_t value_len _unused_,
			  void *userdata)
{
	struct xattr_names *x = userdata;

	if (x->n == x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 8;
		char **v = reallocarray(x->v, cap, sizeof(*v));

		if (!v) {
			x->nomem = true;
			return XATTR_ABORT;
		}
		x->v = v;
		x->cap = cap;
	}
	x->v[x->n] = strdup(name);
	if (!x->v[x->n]) {
		x->nomem = true;
		return XATTR_ABORT;
	}
	x->n++;
	return 0;
}

static errcode_t xattrs_clear(struct ext2_xattr_handle *h)
{
	struct xattr_names x = {};
	errcode_t e;

	e = ext2fs_xattrs_iterate(h, xattr_names_cb, &x);
	if (!e && x.nomem)
		e = EXT2_ET_NO_MEMORY;
	for (size_t i = 0; i < x.n; i++) {
		if (!e)
			e = ext2fs_xattr_remove(h, x.v[i]);
		free(x.v[i]);
	}
	free(x.v);
	return e;
}

/* Set the entry's xattrs on ino; with replace, drop the ones it had first. */
static int xattrs_apply(struct ext4_writer *w, ext2_ino_t ino, const struct entry *e, bool replace,
			struct cove_error *err)
{
	struct ext2_xattr_handle *h = NULL;
	errcode_t r;

	if (e->n_xattrs == 0 && !replace)
		return 0;
	r = ext2fs_xattrs_open(w->fs, ino, &h);
	if (!r)
		r = ext2fs_xattrs_read(h);
	if (!r && replace)
		r = xattrs_clear(h);
	for (size_t i = 0; i < e->n_xattrs && !r; i++) {
		const struct xattr *x = &e->xattrs[i];

		if (!xattr_supported(x->name))
			continue;
		r = ext2fs_xattr_set(h, x->name, x->value, x->size);
	}
	if (h) {
		errcode_t c = ext2fs_xattrs_close(&h);

		if (!r)
			r = c;
	}
	if (r)
		return cove_error_set(err, e2_errno(r),
				      "unable to write extended attributes of '%s' into image: %s",
				      display(e->path), e2_message(r));
	return 0;
}

/* ---- file data ------------------------------------------------------------------------- */

static void data_reset(struct ext4_writer *w)
{
	w->data_off = 0;
	w->data_len = 0;
	w->data_pos = 0;
	w->data_blocks = 0;
	w->n_runs = 0;
}

static errcode_t run_add(struct ext4_writer *w, uint64_t lblk, blk64_t pblk, uint32_t len)
{
	if (w->n_runs > 0) {
		struct run *last = &w->runs[w->n_runs - 1];

		if (last->lblk + last->len == lblk && last->pblk + last->len == pblk &&
		    last->len + len <= MAX_EXTENT_LEN) {
			last->len += len;
			return 0;
		}
	}
	if (w->n_runs == w->cap_runs) {
		size_t cap = w->cap_runs ? w->cap_runs * 2 : 64;
		struct run *v = reallocarray(w->runs, cap, sizeof(*v));

		if (!v)
			return EXT2_ET_NO_MEMORY;
		w->runs = v;
		w->cap_runs = cap;
	}
	w->runs[w->n_runs++] = (struct run){.lblk = lblk, .pblk = pblk, .len = len};
	return 0;
}

/* Write the data waiting in comb; the len bytes at keep (what is being gathered, after it) move
 * to comb's start, and the gathering goes on there. */
static errcode_t comb_write(struct ext4_writer *w, const uint8_t *keep, size_t len)
{
	errcode_t e = 0;

	if (w->comb_n)
		e = io_channel_write_blk64(w->fs->io, w->comb_pblk, (int)w->comb_n, w->comb);
	w->comb_n = 0;
	if (keep != w->comb && len)
		memmove(w->comb, keep, len);
	w->data = w->comb;
	return e;
}

/* Allocate blocks for the gathered data (its last block padded with zeros), to be written. */
static errcode_t data_flush(struct ext4_writer *w)
{
	uint64_t nblk, lblk, done = 0;
	uint8_t *p = w->data;
	errcode_t e;

	if (w->data_len == 0)
		return 0;
	nblk = DIV_ROUND_UP(w->data_len, BLOCK_SIZE);
	memset(w->data + w->data_len, 0, nblk * BLOCK_SIZE - w->data_len);
	lblk = w->data_off / BLOCK_SIZE;
	if (lblk + nblk > MAX_LBLK)
		return EXT2_ET_FILE_TOO_BIG;
	while (done < nblk) {
		blk64_t pblk, plen;

		e = ext2fs_new_range(w->fs, 0, w->goal, nblk - done, NULL, &pblk, &plen);
		if (e)
			return e;
		ext2fs_block_alloc_stats_range(w->fs, pblk, (blk_t)plen, +1);
		e = run_add(w, lblk + done, pblk, (uint32_t)plen);
		if (e)
			return e;
		if (w->comb_n && pblk != w->comb_pblk + w->comb_n) {
			/* not where the waiting data ends: that goes, this moves to comb's start */
			e = comb_write(w, p, (nblk - done) * BLOCK_SIZE);
			if (e)
				return e;
			p = w->comb;
		}
		if (!w->comb_n)
			w->comb_pblk = pblk;
		w->comb_n += plen;
		p += plen * BLOCK_SIZE;
		done += plen;
		w->goal = pblk + plen;
	}
	w->data_blocks += nblk;
	w->data_len = 0;
	w->data = p;
	/* room for the next file's gathering */
	if (COMBINE_SIZE - w->comb_n * BLOCK_SIZE < DATA_BUF_SIZE)
		return comb_write(w, w->data, w->data_len);
	return 0;
}

/* Put len bytes at file offset off (>= everything put before); holes of whole blocks stay
 * holes. */
static errcode_t data_put(struct ext4_writer *w, uint64_t off, const uint8_t *buf, size_t len)
{
	errcode_t e;

	if (len == 0)
		return 0;
	if (off < w->data_pos)
		return EXT2_ET_INVALID_ARGUMENT;
	if (w->data_len > 0) {
		uint64_t end = w->data_off + w->data_len;
		uint64_t block_end = DIV_ROUND_UP(end, BLOCK_SIZE) * BLOCK_SIZE;

		if (off >= block_end) {
			e = data_flush(w);
			if (e)
				return e;
		} else {
			memset(w->data + w->data_len, 0, off - end);
			w->data_len += off - end;
		}
	}
	if (w->data_len == 0) {
		w->data_off = off / BLOCK_SIZE * BLOCK_SIZE;
		w->data_len = off - w->data_off;
		memset(w->data, 0, w->data_len);
	}
	w->data_pos = off + len;
	while (len > 0) {
		size_t n = DATA_BUF_SIZE - w->data_len;

		if (n > len)
			n = len;
		memcpy(w->data + w->data_len, buf, n);
		w->data_len += n;
		buf += n;
		len -= n;
		if (w->data_len == DATA_BUF_SIZE) {
			e = data_flush(w);
			if (e)
				return e;
			w->data_off += DATA_BUF_SIZE;
		}
	}
	return 0;
}

/* Copy everything src yields (bounded by e->size) into the data runs of the current file. */
static int data_copy(struct ext4_writer *w, const struct entry *e, const struct data_src *src,
		     struct cove_error *err)
{
	for (;;) {
		const void *buf;
		size_t len;
		uint64_t off;
		errcode_t r;
		int q;

		q = src->next(src->userdata, &buf, &len, &off, err);
		if (q < 0)
			return q;
		if (len == 0)
			break;
		if (off > e->size || len > e->size - off)
			return cove_error_set(err, EINVAL, "unable to write '%s' into image: %s",
					      display(e->path), "data beyond the file's size");
		r = data_put(w, off, buf, len);
		if (r == EXT2_ET_INVALID_ARGUMENT)
			return cove_error_set(err, EINVAL, "unable to write '%s' into image: %s",
					      display(e->path), "data out of order");
		if (r)
			return fail_write(err, r, e->path);
	}
	return 0;
}

/* ---- creating entries ------------------------------------------------------------------ */

/* A new regular file, symlink, device, fifo or socket named name in parent. */
static int create_node(struct ext4_writer *w, ext2_ino_t parent, const char *name,
		       const struct entry *e, const struct data_src *src, ext2_ino_t *ret_ino,
		       struct cove_error *err)
{
	union inode_buf b;
	struct ext2_inode_large *in = &b.i;
	uint32_t type = e->mode & S_IFMT;
	bool has_data = false;
	ext2_ino_t ino;
	errcode_t r;
	int q;

	if (type == S_IFREG &&
	    DIV_ROUND_UP(e->data_bytes, BLOCK_SIZE) > ext2fs_free_blocks_count(w->fs->super))
		return fail_write(err, ENOSPC, e->path);
	r = ext2fs_new_inode(w->fs, parent, (int)e->mode, NULL, &ino);
	if (r)
		return fail_write(err, r, e->path);
	ext2fs_inode_alloc_stats2(w->fs, ino, +1, 0);

	inode_init(in, e);
	data_reset(w);
	switch (type) {
	case S_IFREG:
		has_data = true;
		if (src) {
			q = data_copy(w, e, src, err);
			if (q < 0)
				return q;
		}
		break;
	case S_IFLNK: {
		size_t len = strlen(e->link_target);

		if (len < sizeof(in->i_block)) {
			memcpy(in->i_block, e->link_target, len);
		} else {
			has_data = true;
			r = data_put(w, 0, (const uint8_t *)e->link_target, len);
			if (r)
				return fail_write(err, r, e->path);
		}
		break;
	}
	case S_IFCHR:
	case S_IFBLK:
		/* the kernel's old (8:8) or new (12:20) device number encoding */
		if (e->rdev_major < 256 && e->rdev_minor < 256) {
			in->i_block[0] = e->rdev_major * 256 + e->rdev_minor;
		} else {
			in->i_block[1] = (e->rdev_minor & 0xff) | (e->rdev_major << 8) |
					 ((e->rdev_minor & ~0xffu) << 12);
		}
		break;
	case S_IFIFO:
	case S_IFSOCK:
		break;
	default:
		return cove_error_set(err, EINVAL, "unable to write '%s' into image: %s",
				      display(e->path), "unsupported file type");
	}
	if (has_data) {
		r = data_flush(w);
		if (r)
			return fail_write(err, r, e->path);
		in->i_flags |= EXT4_EXTENTS_FL;
	}
	r = ext2fs_inode_size_set(w->fs, (struct ext2_inode *)in,
				  type == S_IFLNK ? strlen(e->link_target) : e->size);
	if (!r)
		r = inode_write_new(w, ino, in);
	if (!r && has_data) {
		r = inode_set_extents(w, ino, in, w->runs, w->n_runs);
		if (!r)
			r = ext2fs_iblk_add_blocks(w->fs, (struct ext2_inode *)in, w->data_blocks);
		if (!r)
			r = inode_write(w, ino, in);
	}
	data_reset(w);
	if (r)
		return fail_write(err, r, e->path);
	q = xattrs_apply(w, ino, e, false, err);
	if (q < 0)
		return q;
	q = dir_add(w, parent, name, ino, e->mode, e->path, err);
	if (q < 0)
		return q;
	if (ret_ino)
		*ret_ino = ino;
	return 0;
}

static int make_dir(struct ext4_writer *w, ext2_ino_t parent, const char *name,
		    const struct entry *e, ext2_ino_t *ret_ino, struct cove_error *err)
{
	union inode_buf b;
	struct ext2_inode_large *in = &b.i;
	struct run run;
	char *block = NULL;
	blk64_t blk;
	ext2_ino_t ino;
	errcode_t r;
	int q;

	/* refuse before anything is allocated */
	{
		struct ext2_inode_large pin;

		r = inode_read(w, parent, &pin);
		if (r)
			return fail_write(err, r, e->path);
		if (pin.i_links_count >= EXT2_LINK_MAX - 1)
			return cove_error_set(err, EMLINK, "unable to write '%s' into image: %s",
					      display(e->path), "too many subdirectories");
	}
	r = ext2fs_new_inode(w->fs, parent, LINUX_S_IFDIR | 0755, NULL, &ino);
	if (r)
		return fail_write(err, r, e->path);
	ext2fs_inode_alloc_stats2(w->fs, ino, +1, 1);
	inode_init(in, e);
	in->i_mode = (__u16)(LINUX_S_IFDIR | (e->mode & 07777));
	in->i_links_count = 2;

	r = ext2fs_new_block2(w->fs, ext2fs_find_inode_goal(w->fs, ino, (struct ext2_inode *)in, 0),
			      NULL, &blk);
	if (r)
		return fail_write(err, r, e->path);
	ext2fs_block_alloc_stats2(w->fs, blk, +1);
	r = ext2fs_new_dir_block(w->fs, ino, parent, &block);
	if (!r)
		r = ext2fs_write_dir_block4(w->fs, blk, block, 0, ino);
	ext2fs_free_mem(&block);
	if (!r)
		r = ext2fs_inode_size_set(w->fs, (struct ext2_inode *)in, BLOCK_SIZE);
	if (!r)
		r = inode_write_new(w, ino, in);
	run = (struct run){.lblk = 0, .pblk = blk, .len = 1};
	if (!r)
		r = inode_set_extents(w, ino, in, &run, 1);
	if (!r)
		r = ext2fs_iblk_add_blocks(w->fs, (struct ext2_inode *)in, 1);
	if (!r)
		r = inode_write(w, ino, in);
	if (r)
		return fail_write(err, r, e->path);
	q = xattrs_apply(w, ino, e, false, err);
	if (q < 0)
		return q;
	q = dir_add(w, parent, name, ino, LINUX_S_IFDIR, e->path, err);
	if (q < 0)
		return q;
	q = dir_nlink_add(w, parent, +1, e->path, err);
	if (q < 0)
		return q;
	if (ret_ino)
		*ret_ino = ino;
	return 0;
}

/* A dir entry over an existing dir: owner, permissions, times and xattrs become the entry's. */
static int dir_update(struct ext4_writer *w, ext2_ino_t ino, const struct entry *e,
		      struct cove_error *err)
{
	struct ext2_inode_large in;
	errcode_t r;

	r = inode_read(w, ino, &in);
	if (r)
		return fail_write(err, r, e->path);
	in.i_mode = (__u16)(LINUX_S_IFDIR | (e->mode & 07777));
	inode_set_owner(&in, e->uid, e->gid);
	inode_set_times(&in, e);
	r = inode_write(w, ino, &in);
	if (r)
		return fail_write(err, r, e->path);
	return xattrs_apply(w, ino, e, true, err);
}

/* Another name for an existing non-directory inode. */
static int link_inode(struct ext4_writer *w, ext2_ino_t parent, const char *name, ext2_ino_t ino,
		      const char *path, struct cove_error *err)
{
	struct ext2_inode_large in;
	errcode_t r;

	r = inode_read(w, ino, &in);
	if (r)
		return fail_write(err, r, path);
	if (LINUX_S_ISDIR(in.i_mode))
		return cove_error_set(err, EPERM, "unable to write '%s' into image: %s",
				      display(path), "hardlink to a directory");
	if (in.i_links_count >= EXT2_LINK_MAX)
		return cove_error_set(err, EMLINK, "unable to write '%s' into image: %s",
				      display(path), "too many links");
	in.i_links_count++;
	r = inode_write(w, ino, &in);
	if (r)
		return fail_write(err, r, path);
	return dir_add(w, parent, name, ino, in.i_mode, path, err);
}

/* Put an entry at name in parent, replacing what is there (a dir over a dir is merged). */
static int put_entry(struct ext4_writer *w, ext2_ino_t parent, const char *name,
		     const struct entry *e, const struct data_src *src, ext2_ino_t *ret_ino,
		     struct cove_error *err)
{
	struct dent *d = index_find(w, parent, name, strlen(name));
	int r;

	if (d && d->ft == EXT2_FT_DIR && S_ISDIR(e->mode)) {
		r = dir_update(w, d->ino, e, err);
		if (r >= 0 && ret_ino)
			*ret_ino = d->ino;
		return r;
	}
	if (d) {
		r = remove_entry(w, parent, name, d->ino, d->ft, e->path, 0, err);
		if (r < 0)
			return r;
	}
	if (S_ISDIR(e->mode))
		return make_dir(w, parent, name, e, ret_ino, err);
	return create_node(w, parent, name, e, src, ret_ino, err);
}

static int writer_usable(struct ext4_writer *w, struct cove_error *err)
{
	if (!w || !w->fs || w->finished)
		return cove_error_set(err, EINVAL, "image writer is already finished");
	if (w->broken)
		return cove_error_set(err, EIO, "image '%s' is unusable after an earlier error",
				      w->image_path);
	return 0;
}

/* ---- paths from layers ----------------------------------------------------------------- */

/*
 * Normalise a layer path into out (MAX_PATH_LEN + 1 bytes): leading "./", empty and "."
 * components go; "" is the root. -EPERM for a ".." component or an absolute path (only "/"
 * itself, the root, may start with a slash), -ENAMETOOLONG for a component over 255 bytes or
 * a path over 4095.
 */
static int path_normalise(const char *in, char *out, size_t size)
{
	size_t o = 0;

	if (in[0] == '/' && in[strspn(in, "/")] != '\0')
		return -EPERM;

	while (*in) {
		const char *slash = strchr(in, '/');
		size_t len = slash ? (size_t)(slash - in) : strlen(in);

		if (len == 2 && in[0] == '.' && in[1] == '.')
			return -EPERM;
		if (len > 0 && !(len == 1 && in[0] == '.')) {
			if (len > MAX_NAME_LEN || o + 1 + len >= size)
				return -ENAMETOOLONG;
			if (o > 0)
				out[o++] = '/';
			memcpy(out + o, in, len);
			o += len;
		}
		in += len;
		if (*in == '/')
			in++;
	}
	out[o] = '\0';
	return 0;
}

static struct entry implicit_dir(struct ext4_writer *w, const char *path)
{
	return (struct entry){
	    .path = path,
	    .mode = S_IFDIR | 0755,
	    .atime = w->now,
	    .mtime = w->now,
	    .ctime = w->now,
	};
}

/*
 * Walk the parent components of path (normalised, not the root) from / through the index:
 * returns the parent dir and the last component. Missing dirs are created (0755, 0:0) when
 * create is set, else -ENOENT is returned with err untouched. A symlink on the way is refused:
 * the image's symlinks are never followed. what names the layer entry in messages.
 */
static int resolve_parent(struct ext4_writer *w, const char *path, bool create, const char *what,
			  ext2_ino_t *ret_dir, const char **ret_leaf, struct cove_error *err)
{
	ext2_ino_t dir = EXT2_ROOT_INO;
	const char *p = path, *slash;
	int r;

	while ((slash = strchr(p, '/'))) {
		size_t len = (size_t)(slash - p);
		int prefix = (int)(slash - path);
		struct dent *d = index_find(w, dir, p, len);

		if (!d) {
			char name[MAX_NAME_LEN + 1], sub[MAX_PATH_LEN + 1];
			struct entry e;

			if (!create)
				return -ENOENT;
			memcpy(name, p, len);
			name[len] = '\0';
			memcpy(sub, path, (size_t)prefix);
			sub[prefix] = '\0';
			e = implicit_dir(w, sub);
			r = make_dir(w, dir, name, &e, &dir, err);
			if (r < 0)
				return r;
		} else if (d->ft == EXT2_FT_SYMLINK) {
			return cove_error_set(err, ELOOP,
					      "layer entry '%s' escapes the root filesystem "
					      "through symlink '%.*s'",
					      what, prefix, path);
		} else if (d->ft != EXT2_FT_DIR) {
			return cove_error_set(err, ENOTDIR,
					      "unable to write layer entry '%s': '%.*s' is not a "
					      "directory",
					      what, prefix, path);
		} else {
			dir = d->ino;
		}
		p = slash + 1;
	}
	*ret_dir = dir;
	*ret_leaf = p;
	return 0;
}

/* ---- tar layers ------------------------------------------------------------------------ */

struct tar_src {
	struct archive *a;
	const char *path;
};

static int tar_next(void *userdata, const void **ret_buf, size_t *ret_len, uint64_t *ret_off,
		    struct cove_error *err)
{
	struct tar_src *t = userdata;
	la_int64_t off = 0;
	int r;

	r = archive_read_data_block(t->a, ret_buf, ret_len, &off);
	if (r == ARCHIVE_EOF) {
		*ret_len = 0;
		return 0;
	}
	if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
		return cove_error_set(err, EIO, "unable to read layer entry '%s': %s", t->path,
				      archive_error_string(t->a) ?: "unknown error");
	if (off < 0)
		return cove_error_set(err, EINVAL, "unable to read layer entry '%s': %s", t->path,
				      "negative data offset");
	*ret_off = (uint64_t)off;
	return 0;
}

/* Fill e from a tar header; strings and xattrs stay owned by ae. */
static int tar_entry(struct archive_entry *ae, const char *path, struct entry *e,
		     struct xattr *xattrs, struct cove_error *err)
{
	la_int64_t uid = archive_entry_uid(ae), gid = archive_entry_gid(ae);
	const char *name;
	const void *value;
	size_t size;

	*e = (struct entry){.path = path, .mode = archive_entry_mode(ae)};
	if (uid < 0 || uid > UINT32_MAX || gid < 0 || gid > UINT32_MAX)
		return cove_error_set(err, EINVAL,
				      "layer entry '%s' has an invalid owner %lld:%lld", path,
				      (long long)uid, (long long)gid);
	e->uid = (uint32_t)uid;
	e->gid = (uint32_t)gid;
	if (archive_entry_mtime_is_set(ae)) {
		e->mtime.tv_sec = archive_entry_mtime(ae);
		e->mtime.tv_nsec = archive_entry_mtime_nsec(ae);
	}
	e->atime = e->mtime;
	if (archive_entry_atime_is_set(ae)) {
		e->atime.tv_sec = archive_entry_atime(ae);
		e->atime.tv_nsec = archive_entry_atime_nsec(ae);
	}
	e->ctime = e->mtime;

	switch (e->mode & S_IFMT) {
	case S_IFREG:
		if (archive_entry_size_is_set(ae)) {
			la_int64_t s = archive_entry_size(ae);

			if (s < 0)
				return cove_error_set(err, EINVAL,
						      "layer entry '%s' has a negative size", path);
			e->size = (uint64_t)s;
			/* a sparse entry carries less data than its size */
			e->data_bytes = archive_entry_sparse_count(ae) > 0 ? 0 : e->size;
		}
		break;
	case S_IFLNK:
		e->link_target = archive_entry_symlink(ae);
		if (!e->link_target)
			e->link_target = archive_entry_symlink_utf8(ae);
		if (!e->link_target || !*e->link_target)
			return cove_error_set(err, EINVAL,
					      "layer entry '%s' is a symlink to nothing", path);
		if (strlen(e->link_target) >= BLOCK_SIZE)
			return cove_error_set(err, ENAMETOOLONG,
					      "layer entry '%s' has a symlink target over %u bytes",
					      path, BLOCK_SIZE - 1);
		break;
	case S_IFCHR:
	case S_IFBLK:
		if (archive_entry_rdevmajor(ae) >= (1u << 12) ||
		    archive_entry_rdevminor(ae) >= (1u << 20))
			return cove_error_set(
			    err, EINVAL, "layer entry '%s' has an invalid device number", path);
		e->rdev_major = (uint32_t)archive_entry_rdevmajor(ae);
		e->rdev_minor = (uint32_t)archive_entry_rdevminor(ae);
		break;
	case S_IFDIR:
	case S_IFIFO:
	case S_IFSOCK:
		break;
	default:
		return cove_error_set(err, EINVAL, "layer entry '%s' has an unsupported type 0%o",
				      path, e->mode & S_IFMT);
	}

	archive_entry_xattr_reset(ae);
	while (archive_entry_xattr_next(ae, &name, &value, &size) == ARCHIVE_OK) {
		if (!name)
			continue;
		if (e->n_xattrs == MAX_XATTRS)
			return cove_error_set(
			    err, E2BIG, "layer entry '%s' has more than %d extended attributes",
			    path, MAX_XATTRS);
		if (size > XATTR_VALUES_MAX)
			return cove_error_set(err, E2BIG,
					      "layer entry '%s' has an extended attribute over %u "
					      "bytes",
					      path, XATTR_VALUES_MAX);
		xattrs[e->n_xattrs++] = (struct xattr){.name = name, .value = value, .size = size};
	}
	e->xattrs = xattrs;
	return 0;
}

/* ".wh.NAME" deletes NAME; ".wh..wh..opq" empties its directory. */
static int tar_whiteout(struct ext4_writer *w, const char *path, const char *raw,
			struct cove_error *err)
{
	const char *leaf;
	ext2_ino_t dir;
	struct dent *d;
	int r;

	if (strcmp(strrchr(path, '/') ? strrchr(path, '/') + 1 : path, ".wh..wh..opq") == 0) {
		r = resolve_parent(w, path, true, raw, &dir, &leaf, err);
		if (r < 0)
			return r;
		return dir_empty(w, dir, path, err);
	}
	r = resolve_parent(w, path, false, raw, &dir, &leaf, err);
	if (r == -ENOENT)
		return 0; /* nothing there to delete */
	if (r < 0)
		return r;
	if (strncmp(leaf, ".wh..wh.", 8) == 0)
		return 0; /* aufs bookkeeping (.wh..wh.plnk, ...), not a whiteout */
	leaf += 4;
	if (!*leaf || strcmp(leaf, ".") == 0 || strcmp(leaf, "..") == 0)
		return cove_error_set(err, EINVAL, "layer entry '%s' is an invalid whiteout", raw);
	d = index_find(w, dir, leaf, strlen(leaf));
	if (!d)
		return 0;
	return remove_entry(w, dir, leaf, d->ino, d->ft, path, 0, err);
}

static int tar_hardlink(struct ext4_writer *w, ext2_ino_t dir, const char *leaf, const char *path,
			const char *raw, const char *raw_target, struct cove_error *err)
{
	char target[MAX_PATH_LEN + 1];
	const char *tleaf;
	ext2_ino_t tdir;
	struct dent *t, *d;
	int r;

	r = path_normalise(raw_target, target, sizeof(target));
	if (r == -EPERM || (r == 0 && !*target))
		return cove_error_set(err, EPERM,
				      "layer entry '%s' escapes the root filesystem (hardlink to "
				      "'%s')",
				      raw, raw_target);
	if (r < 0)
		return cove_error_set(err, -r, "layer entry '%s' has an invalid hardlink target",
				      raw);
	/*
	 * Removing what is at the entry's path may remove the target too (it may live inside a
	 * replaced dir), so the target is resolved again after each removal; the second round
	 * finds the path free.
	 */
	for (;;) {
		r = resolve_parent(w, target, false, raw, &tdir, &tleaf, err);
		if (r < 0 && r != -ENOENT)
			return r;
		t = r < 0 ? NULL : index_find(w, tdir, tleaf, strlen(tleaf));
		if (!t)
			return cove_error_set(
			    err, ENOENT,
			    "layer entry '%s' is a hardlink to '%s', which is not "
			    "in the image",
			    raw, target);
		if (t->ft == EXT2_FT_DIR)
			return cove_error_set(err, EPERM,
					      "layer entry '%s' is a hardlink to directory '%s'",
					      raw, target);
		d = index_find(w, dir, leaf, strlen(leaf));
		if (!d)
			break;
		if (d->ino == t->ino)
			return 0;
		r = remove_entry(w, dir, leaf, d->ino, d->ft, path, 0, err);
		if (r < 0)
			return r;
	}
	return link_inode(w, dir, leaf, t->ino, path, err);
}

static int tar_apply_entry(struct ext4_writer *w, struct archive *a, struct archive_entry *ae,
			   struct cove_error *err)
{
	char path[MAX_PATH_LEN + 1];
	struct xattr xattrs[MAX_XATTRS];
	const char *raw, *base, *leaf, *hardlink;
	struct tar_src ts = {.a = a};
	struct data_src src = {.next = tar_next, .userdata = &ts};
	struct entry e;
	ext2_ino_t dir;
	int r;

	raw = archive_entry_pathname(ae);
	if (!raw)
		raw = archive_entry_pathname_utf8(ae);
	if (!raw)
		return cove_error_set(err, EINVAL, "layer entry without a usable name");
	r = path_normalise(raw, path, sizeof(path));
	if (r == -EPERM)
		return cove_error_set(err, EPERM, "layer entry '%s' escapes the root filesystem",
				      raw);
	if (r < 0)
		return cove_error_set(err, ENAMETOOLONG,
				      "layer entry '%.200s...' has a name that is too long", raw);
	ts.path = path;
	hardlink = archive_entry_hardlink(ae);
	if (!hardlink)
		hardlink = archive_entry_hardlink_utf8(ae);

	if (!*path) {
		if (hardlink || archive_entry_filetype(ae) != AE_IFDIR)
			return cove_error_set(
			    err, EPERM, "layer entry '%s' would replace the root directory", raw);
		r = tar_entry(ae, path, &e, xattrs, err);
		if (r < 0)
			return r;
		return dir_update(w, EXT2_ROOT_INO, &e, err);
	}
	base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	if (strncmp(base, ".wh.", 4) == 0)
		return tar_whiteout(w, path, raw, err);

	r = resolve_parent(w, path, true, raw, &dir, &leaf, err);
	if (r < 0)
		return r;
	if (hardlink)
		return tar_hardlink(w, dir, leaf, path, raw, hardlink, err);
	r = tar_entry(ae, path, &e, xattrs, err);
	if (r < 0)
		return r;
	return put_entry(w, dir, leaf, &e, &src, NULL, err);
}

static void locale_restore(locale_t *old)
{
	if (*old)
		uselocale(*old);
}

static void locale_freep(locale_t *l)
{
	if (*l)
		freelocale(*l);
}

static void archive_freep(struct archive **a)
{
	if (*a)
		archive_read_free(*a);
}

int ext4_layer_filters(struct archive *a)
{
	if (archive_read_support_filter_gzip(a) != ARCHIVE_OK ||
	    archive_read_support_filter_bzip2(a) != ARCHIVE_OK ||
	    archive_read_support_filter_xz(a) != ARCHIVE_OK ||
	    archive_read_support_filter_lzma(a) != ARCHIVE_OK ||
	    archive_read_support_filter_zstd(a) != ARCHIVE_OK)
		return ARCHIVE_FATAL;
	return ARCHIVE_OK;
}

struct tar_source {
	int fd;                /* >= 0: read from it; else: */
	ext4_tar_read_fn read; /* the caller's blocks */
	void *ud;
};

static la_ssize_t source_read(struct archive *a, void *ud, const void **buf)
{
	const struct tar_source *src = ud;
	ssize_t n = src->read(src->ud, buf);

	if (n < 0)
		archive_set_error(a, EIO, "the layer's stream failed");
	return n;
}

/* A reader for one layer stream: tar only, compression autodetected (from a descriptor; the
 * caller's blocks are plain tar), no external programs. */
static int tar_open(const struct tar_source *src, struct archive **ret, struct cove_error *err)
{
	_cleanup_(archive_freep) struct archive *a = NULL;
	int r = archive_dl_load(err);

	if (r < 0)
		return r;
	a = archive_read_new();
	if (!a)
		return cove_error_set(err, ENOMEM, "unable to read layer: out of memory");
	if (ext4_layer_filters(a) != ARCHIVE_OK ||
	    archive_read_support_format_tar(a) != ARCHIVE_OK)
		return cove_error_set(err, ENOTSUP, "unable to read layer: %s",
				      archive_error_string(a) ?: "libarchive lacks a decompressor");
	if ((src->fd >= 0 ? archive_read_open_fd(a, src->fd, 128 * 1024)
			  : archive_read_open(a, (void *)src, NULL, source_read, NULL)) != ARCHIVE_OK)
		return cove_error_set(err, EIO, "unable to read layer: %s",
				      archive_error_string(a) ?: "unknown error");
	*ret = TAKE_PTR(a);
	return 0;
}

static int add_tar(struct ext4_writer *w, const struct tar_source *src, struct cove_error *err);

int ext4_writer_add_tar(struct ext4_writer *w, int fd, struct cove_error *err)
{
	struct tar_source src = { .fd = fd };

	return add_tar(w, &src, err);
}

int ext4_writer_add_tar_blocks(struct ext4_writer *w, ext4_tar_read_fn read, void *ud,
			       struct cove_error *err)
{
	struct tar_source src = { .fd = -1, .read = read, .ud = ud };

	return add_tar(w, &src, err);
}

static void *syncer_run(void *arg)
{
	struct syncer *y = arg;

	pthread_mutex_lock(&y->mu);
	for (;;) {
		while (!y->want && !y->stop)
			pthread_cond_wait(&y->cv, &y->mu);
		if (!y->want)
			break;
		y->want = false;
		pthread_mutex_unlock(&y->mu);
		if (fdatasync(y->fd) < 0) {
			int e = errno;

			pthread_mutex_lock(&y->mu);
			y->error = y->error ? y->error : e;
		} else {
			pthread_mutex_lock(&y->mu);
		}
	}
	pthread_mutex_unlock(&y->mu);
	return NULL;
}

/* count file data written; now and then, start its writeback and a sync behind the writer */
static void writeback_kick(struct ext4_writer *w, uint64_t bytes)
{
	struct syncer *y = &w->sync;

	w->unkicked += bytes;
	if (w->unkicked < WRITEBACK_KICK)
		return;
	w->unkicked = 0;
	(void)sync_file_range(w->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	if (!y->running) {
		y->fd = w->fd;
		pthread_mutex_init(&y->mu, NULL);
		pthread_cond_init(&y->cv, NULL);
		y->running = pthread_create(&y->thread, NULL, syncer_run, y) == 0;
		if (!y->running) {
			pthread_mutex_destroy(&y->mu);
			pthread_cond_destroy(&y->cv);
			return;
		}
	}
	pthread_mutex_lock(&y->mu);
	y->want = true;
	pthread_cond_signal(&y->cv);
	pthread_mutex_unlock(&y->mu);
}

/* Stop the syncing thread (after the sync it is doing); the errno of a sync that failed, or 0. */
static int syncer_stop(struct ext4_writer *w)
{
	struct syncer *y = &w->sync;

	if (!y->running)
		return y->error;
	pthread_mutex_lock(&y->mu);
	y->stop = true;
	y->want = false;
	pthread_cond_signal(&y->cv);
	pthread_mutex_unlock(&y->mu);
	pthread_join(y->thread, NULL);
	pthread_mutex_destroy(&y->mu);
	pthread_cond_destroy(&y->cv);
	y->running = false;
	return y->error;
}

static int add_tar(struct ext4_writer *w, const struct tar_source *src, struct cove_error *err)
{
	_cleanup_(locale_freep) locale_t utf8 = (locale_t)0;
	_cleanup_(locale_restore) locale_t old = (locale_t)0;
	_cleanup_(archive_freep) struct archive *a = NULL;
	struct archive_entry *ae;
	int r;

	r = writer_usable(w, err);
	if (r < 0)
		return r;
	/* names in pax headers are UTF-8: keep libarchive from converting them to "C" */
	utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	if (utf8)
		old = uselocale(utf8);
	r = tar_open(src, &a, err);
	while (r >= 0) {
		int q = archive_read_next_header(a, &ae);

		if (q == ARCHIVE_EOF)
			break;
		if (q != ARCHIVE_OK && q != ARCHIVE_WARN) {
			r = cove_error_set(err, EIO, "unable to read layer: %s",
					   archive_error_string(a) ?: "unknown error");
			break;
		}
		r = tar_apply_entry(w, a, ae, err);
		/* the disk writes while we parse on: finish's fsync then has little left to wait
		 * for */
		if (r >= 0)
			writeback_kick(w, (uint64_t)archive_entry_size(ae));
	}
	if (r < 0)
		w->broken = true;
	return r;
}

/* ---- host trees ------------------------------------------------------------------------ */

static uint64_t hl_hash(dev_t dev, ino_t ino)
{
	return ((uint64_t)ino * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)dev * 0xc2b2ae3d27d4eb4full);
}

static uint32_t hl_find(const struct hl_map *m, dev_t dev, ino_t ino)
{
	if (m->n_slots == 0)
		return 0;
	for (size_t i = hl_hash(dev, ino) & (m->n_slots - 1);; i = (i + 1) & (m->n_slots - 1)) {
		const struct hl_slot *s = &m->slots[i];

		if (s->image_ino == 0)
			return 0;
		if (s->dev == dev && s->ino == ino)
			return s->image_ino;
	}
}

static int hl_add(struct hl_map *m, dev_t dev, ino_t ino, uint32_t image_ino)
{
	if ((m->count + 1) * 2 > m->n_slots) {
		size_t n = m->n_slots ? m->n_slots * 2 : 256;
		struct hl_slot *v = calloc(n, sizeof(*v));

		if (!v)
			return -ENOMEM;
		for (size_t i = 0; i < m->n_slots; i++) {
			const struct hl_slot *s = &m->slots[i];
			size_t j;

			if (s->image_ino == 0)
				continue;
			for (j = hl_hash(s->dev, s->ino) & (n - 1); v[j].image_ino;
			     j = (j + 1) & (n - 1))
				;
			v[j] = *s;
		}
		free(m->slots);
		m->slots = v;
		m->n_slots = n;
	}
	for (size_t i = hl_hash(dev, ino) & (m->n_slots - 1);; i = (i + 1) & (m->n_slots - 1)) {
		if (m->slots[i].image_ino == 0) {
			m->slots[i] =
			    (struct hl_slot){.dev = dev, .ino = ino, .image_ino = image_ino};
			m->count++;
			return 0;
		}
	}
}

struct walk {
	struct ext4_writer *w; /* NULL when estimating */
	struct hl_map hl;
	char path[PATH_MAX]; /* relative path of the current entry, for messages */
	uint8_t *buf;	     /* READ_BUF_SIZE */
	uint64_t bytes, inodes;
	struct cove_error *err;
};

struct host_src {
	struct walk *k;
	int fd;
	uint64_t size, pos, seg_end;
	bool sparse;
};

/* Regular file data in READ_BUF_SIZE chunks, skipping holes (SEEK_DATA/SEEK_HOLE). */
static int host_next(void *userdata, const void **ret_buf, size_t *ret_len, uint64_t *ret_off,
		     struct cove_error *err)
{
	struct host_src *h = userdata;
	uint64_t want;
	ssize_t n;

	*ret_len = 0;
	if (h->pos >= h->size)
		return 0;
	if (h->pos >= h->seg_end) {
		off_t d = h->sparse ? lseek(h->fd, (off_t)h->pos, SEEK_DATA) : (off_t)h->pos;
		off_t e;

		if (d < 0 && errno == ENXIO)
			return 0; /* a hole up to the end */
		if (d < 0 && errno != EINVAL)
			return cove_error_set(err, errno, "unable to read '%s': %m", h->k->path);
		if (d < 0)
			d = (off_t)h->pos, h->sparse = false;
		if ((uint64_t)d >= h->size)
			return 0;
		e = h->sparse ? lseek(h->fd, d, SEEK_HOLE) : -1;
		h->pos = (uint64_t)d;
		h->seg_end = e < 0 || (uint64_t)e > h->size ? h->size : (uint64_t)e;
		if (h->seg_end <= h->pos)
			h->seg_end = h->size;
	}
	want = h->seg_end - h->pos;
	if (want > READ_BUF_SIZE)
		want = READ_BUF_SIZE;
	do
		n = pread(h->fd, h->k->buf, (size_t)want, (off_t)h->pos);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return cove_error_set(err, errno, "unable to read '%s': %m", h->k->path);
	if (n == 0)
		return cove_error_set(err, EIO, "unable to read '%s': %s", h->k->path,
				      "it shrank while being copied");
	*ret_buf = h->k->buf;
	*ret_len = (size_t)n;
	*ret_off = h->pos;
	h->pos += (uint64_t)n;
	return 0;
}

/* The supported xattrs of fd, or of path without following it when fd < 0, into w's scratch. */
static int host_xattrs(struct walk *k, int fd, const char *path, struct entry *e)
{
	struct ext4_writer *w = k->w;
	size_t used = 0, count = 0;
	ssize_t n;

	n = fd >= 0 ? flistxattr(fd, w->xattr_names, XATTR_LIST_MAX)
		    : llistxattr(path, w->xattr_names, XATTR_LIST_MAX);
	if (n < 0) {
		/* no xattr support here; or no /proc to reach a symlink or device by */
		if (errno == ENOTSUP || errno == ENODATA || (fd < 0 && errno == ENOENT))
			return 0;
		return cove_error_set(k->err, errno,
				      "unable to list extended attributes of '%s': %m", k->path);
	}
	for (char *p = w->xattr_names; p < w->xattr_names + n; p += strlen(p) + 1) {
		ssize_t v;

		if (!xattr_supported(p))
			continue;
		if (count == MAX_XATTRS)
			return cove_error_set(k->err, E2BIG,
					      "'%s' has more than %d extended attributes", k->path,
					      MAX_XATTRS);
		v = fd >= 0 ? fgetxattr(fd, p, w->xattr_values + used, XATTR_VALUES_MAX - used)
			    : lgetxattr(path, p, w->xattr_values + used, XATTR_VALUES_MAX - used);
		if (v < 0 && errno == ENODATA)
			continue;
		if (v < 0 && errno == ERANGE)
			return cove_error_set(k->err, E2BIG,
					      "extended attributes of '%s' exceed %u bytes",
					      k->path, XATTR_VALUES_MAX);
		if (v < 0)
			return cove_error_set(k->err, errno,
					      "unable to read extended attribute '%s' of '%s': %m",
					      p, k->path);
		w->xattrs[count++] =
		    (struct xattr){.name = p, .value = w->xattr_values + used, .size = (size_t)v};
		used += (size_t)v;
	}
	e->xattrs = w->xattrs;
	e->n_xattrs = count;
	return 0;
}

static struct entry host_entry(const struct stat *st, const char *path)
{
	struct entry e = {
	    .path = path,
	    .mode = st->st_mode,
	    .uid = st->st_uid,
	    .gid = st->st_gid,
	    .size = S_ISREG(st->st_mode) ? (uint64_t)st->st_size : 0,
	    .rdev_major = major(st->st_rdev),
	    .rdev_minor = minor(st->st_rdev),
	    .atime = st->st_atim,
	    .mtime = st->st_mtim,
	    .ctime = st->st_mtim,
	};
	return e;
}

static int names_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in d except "." and "..", sorted so images are reproducible. */
static int read_names(DIR *d, char ***ret, size_t *ret_n)
{
	char **v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;

	for (;;) {
		errno = 0;
		de = readdir(d);
		if (!de)
			break;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n == cap) {
			char **nv = reallocarray(v, cap ? cap * 2 : 32, sizeof(*v));

			if (!nv)
				goto nomem;
			v = nv;
			cap = cap ? cap * 2 : 32;
		}
		v[n] = strdup(de->d_name);
		if (!v[n])
			goto nomem;
		n++;
	}
	if (errno) {
		int r = -errno;

		for (size_t i = 0; i < n; i++)
			free(v[i]);
		free(v);
		return r;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), names_cmp);
	*ret = v;
	*ret_n = n;
	return 0;
nomem:
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
	return -ENOMEM;
}

static int walk_dir(struct walk *k, int dfd, ext2_ino_t dir, unsigned int depth);

/* Copy (or, when estimating, count) one entry of the host tree; k->path names it. */
static int walk_one(struct walk *k, int dfd, ext2_ino_t dir, const char *name, unsigned int depth)
{
	struct ext4_writer *w = k->w;
	_cleanup_close_ int fd = -1;
	char proc[64 + MAX_NAME_LEN];
	char target[BLOCK_SIZE];
	struct stat st, st2;
	struct entry e;
	ext2_ino_t ino = 0;
	uint32_t linked = 0;
	int r;

	if (strlen(name) > MAX_NAME_LEN)
		return cove_error_set(k->err, ENAMETOOLONG, "'%s' has a name over %d bytes",
				      k->path, MAX_NAME_LEN);
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return cove_error_set(k->err, errno, "unable to stat '%s': %m", k->path);
	e = host_entry(&st, k->path);

	if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
		linked = hl_find(&k->hl, st.st_dev, st.st_ino);
		if (linked && !w)
			return 0; /* counted at its first name */
	}
	if (!w) {
		k->inodes++;
		if (S_ISREG(st.st_mode))
			k->bytes += DIV_ROUND_UP((uint64_t)st.st_size, BLOCK_SIZE) * BLOCK_SIZE;
		else if (S_ISLNK(st.st_mode) && st.st_size >= 60)
			k->bytes += BLOCK_SIZE;
	}
	if (linked) {
		struct dent *d = index_find(w, dir, name, strlen(name));

		if (d && d->ino == linked)
			return 0;
		if (d) {
			r = remove_entry(w, dir, name, d->ino, d->ft, k->path, 0, k->err);
			if (r < 0)
				return r;
		}
		return link_inode(w, dir, name, linked, k->path, k->err);
	}

	switch (st.st_mode & S_IFMT) {
	case S_IFDIR:
		if (depth >= MAX_DEPTH)
			return cove_error_set(k->err, ELOOP, "'%s' is nested more than %d deep",
					      k->path, MAX_DEPTH);
		fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return cove_error_set(k->err, errno, "unable to open '%s': %m", k->path);
		if (w) {
			r = host_xattrs(k, fd, NULL, &e);
			if (r < 0)
				return r;
			r = put_entry(w, dir, name, &e, NULL, &ino, k->err);
			if (r < 0)
				return r;
		}
		return walk_dir(k, TAKE_FD(fd), ino, depth + 1);
	case S_IFREG: {
		struct host_src hs = {.k = k, .size = e.size};
		struct data_src src = {.next = host_next, .userdata = &hs};

		if (!w)
			break;
		fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
		if (fd < 0)
			return cove_error_set(k->err, errno, "unable to open '%s': %m", k->path);
		if (fstat(fd, &st2) < 0 || st2.st_ino != st.st_ino || st2.st_dev != st.st_dev)
			return cove_error_set(k->err, EBUSY, "'%s' changed while being copied",
					      k->path);
		hs.fd = fd;
		hs.sparse = (uint64_t)st.st_blocks * 512 < e.size;
		e.data_bytes = hs.sparse ? (uint64_t)st.st_blocks * 512 : e.size;
		r = host_xattrs(k, fd, NULL, &e);
		if (r < 0)
			return r;
		r = put_entry(w, dir, name, &e, &src, &ino, k->err);
		if (r < 0)
			return r;
		break;
	}
	case S_IFLNK: {
		ssize_t n;

		if (!w)
			break;
		n = readlinkat(dfd, name, target, sizeof(target));
		if (n < 0)
			return cove_error_set(k->err, errno, "unable to read symlink '%s': %m",
					      k->path);
		if ((size_t)n >= sizeof(target) || n == 0)
			return cove_error_set(k->err, ENAMETOOLONG,
					      "symlink '%s' has a target that is empty or over %u "
					      "bytes",
					      k->path, BLOCK_SIZE - 1);
		target[n] = '\0';
		e.link_target = target;
	}
		__attribute__((fallthrough));
	case S_IFCHR:
	case S_IFBLK:
	case S_IFIFO:
	case S_IFSOCK:
		if (!w)
			break;
		/* an xattr of a symlink or a device is reached through its directory's fd */
		r = str_printf(proc, sizeof(proc), "/proc/self/fd/%d/%s", dfd, name);
		if (r < 0)
			return cove_error_set(k->err, -r, "'%s': name too long", k->path);
		r = host_xattrs(k, -1, proc, &e);
		if (r < 0)
			return r;
		r = put_entry(w, dir, name, &e, NULL, &ino, k->err);
		if (r < 0)
			return r;
		break;
	default:
		return cove_error_set(k->err, EINVAL, "'%s' has an unsupported file type", k->path);
	}
	if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
		r = hl_add(&k->hl, st.st_dev, st.st_ino, w ? ino : 1);
		if (r < 0)
			return cove_error_set(k->err, -r, "unable to copy '%s': out of memory",
					      k->path);
	}
	return 0;
}

/* Walk the directory open at dfd (taken over), whose image dir is dir. */
static int walk_dir(struct walk *k, int dfd, ext2_ino_t dir, unsigned int depth)
{
	_cleanup_(closedirp) DIR *d = NULL;
	size_t base = strlen(k->path), n = 0, dir_bytes = 24;
	char **names = NULL;
	int r;

	d = fdopendir(dfd);
	if (!d) {
		r = cove_error_set(k->err, errno, "unable to read directory '%s': %m",
				   base ? k->path : ".");
		close(dfd);
		return r;
	}
	r = read_names(d, &names, &n);
	if (r < 0)
		return cove_error_set(k->err, -r, "unable to read directory '%s': %s",
				      base ? k->path : ".", strerror(-r));
	for (size_t i = 0; i < n && r >= 0; i++) {
		r = str_printf(k->path + base, sizeof(k->path) - base, "%s%s", base ? "/" : "",
			       names[i]);
		if (r < 0) {
			r = cove_error_set(k->err, ENAMETOOLONG,
					   "'%s/%s' has a path that is too long", k->path,
					   names[i]);
			break;
		}
		dir_bytes += EXT2_DIR_REC_LEN(strlen(names[i]));
		r = walk_one(k, dirfd(d), dir, names[i], depth);
	}
	k->path[base] = '\0';
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (!k->w)
		k->bytes += DIV_ROUND_UP(dir_bytes, BLOCK_SIZE - 12) * BLOCK_SIZE;
	return r;
}

static int walk_tree(struct walk *k, const char *host_dir)
{
	int fd, r;

	fd = open(host_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return cove_error_set(k->err, errno, "unable to open directory '%s': %m", host_dir);
	r = walk_dir(k, fd, EXT2_ROOT_INO, 0);
	free(k->hl.slots);
	k->hl.slots = NULL;
	return r;
}

int ext4_writer_add_dir(struct ext4_writer *w, const char *host_dir, struct cove_error *err)
{
	_cleanup_free_ struct walk *k = NULL;
	_cleanup_free_ uint8_t *buf = NULL;
	int r;

	r = writer_usable(w, err);
	if (r < 0)
		return r;
	k = calloc(1, sizeof(*k));
	buf = malloc(READ_BUF_SIZE);
	if (!k || !buf)
		return cove_error_set(err, ENOMEM, "unable to copy '%s': out of memory", host_dir);
	k->w = w;
	k->buf = buf;
	k->err = err;
	r = walk_tree(k, host_dir);
	if (r < 0)
		w->broken = true;
	return r;
}

int ext4_estimate_dir(const char *dir, uint64_t *ret_bytes, uint64_t *ret_inodes,
		      struct cove_error *err)
{
	_cleanup_free_ struct walk *k = calloc(1, sizeof(struct walk));
	int r;

	if (!k)
		return cove_error_set(err, ENOMEM, "unable to size '%s': out of memory", dir);
	k->err = err;
	k->inodes = 1;
	r = walk_tree(k, dir);
	if (r < 0)
		return r;
	*ret_bytes = k->bytes;
	*ret_inodes = k->inodes;
	return 0;
}

int ext4_estimate_tar(int fd, uint64_t *ret_bytes, uint64_t *ret_inodes, struct cove_error *err)
{
	_cleanup_(locale_freep) locale_t utf8 = (locale_t)0;
	_cleanup_(locale_restore) locale_t old = (locale_t)0;
	_cleanup_(archive_freep) struct archive *a = NULL;
	struct archive_entry *ae;
	uint64_t bytes = 0, inodes = 1, dirents = 0;
	int r;

	utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	if (utf8)
		old = uselocale(utf8);
	r = tar_open(&(struct tar_source){ .fd = fd }, &a, err);
	if (r < 0)
		return r;
	for (;;) {
		const char *name;
		int q = archive_read_next_header(a, &ae);

		if (q == ARCHIVE_EOF)
			break;
		if (q != ARCHIVE_OK && q != ARCHIVE_WARN)
			return cove_error_set(err, EIO, "unable to read layer: %s",
					      archive_error_string(a) ?: "unknown error");
		name = archive_entry_pathname(ae);
		if (name) {
			const char *base = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;

			if (strncmp(base, ".wh.", 4) == 0)
				continue;
			dirents += EXT2_DIR_REC_LEN(strlen(base) > MAX_NAME_LEN ? MAX_NAME_LEN
										: strlen(base));
		}
		if (archive_entry_hardlink(ae))
			continue;
		inodes++;
		switch (archive_entry_filetype(ae)) {
		case AE_IFREG:
			if (archive_entry_size(ae) > 0)
				bytes +=
				    DIV_ROUND_UP((uint64_t)archive_entry_size(ae), BLOCK_SIZE) *
				    BLOCK_SIZE;
			break;
		case AE_IFDIR:
			bytes += BLOCK_SIZE;
			break;
		case AE_IFLNK:
			if (archive_entry_symlink(ae) && strlen(archive_entry_symlink(ae)) >= 60)
				bytes += BLOCK_SIZE;
			break;
		default:
			break;
		}
	}
	*ret_bytes = bytes + DIV_ROUND_UP(dirents, BLOCK_SIZE) * BLOCK_SIZE;
	*ret_inodes = inodes;
	return 0;
}

void ext4_writer_opts_autosize(struct ext4_writer_opts *o, uint64_t bytes, uint64_t inodes)
{
	uint64_t size, n;

	if (bytes > EXT4_WRITER_MAX_SIZE)
		bytes = EXT4_WRITER_MAX_SIZE;
	if (inodes > UINT32_MAX / 2)
		inodes = UINT32_MAX / 2;
	n = inodes + inodes / 4 + MIN_INODES;
	size = bytes + bytes / 5 + HEADROOM_BYTES;
	if (n < (size + n * INODE_SIZE) / DEFAULT_INODE_RATIO)
		n = (size + n * INODE_SIZE) / DEFAULT_INODE_RATIO;
	size += n * INODE_SIZE;
	if (o->journal) {
		int j = ext2fs_default_journal_size(size / BLOCK_SIZE);

		if (j > 0)
			size += (uint64_t)j * BLOCK_SIZE;
	}
	size = DIV_ROUND_UP(size, 1u << 20) << 20;
	if (size > EXT4_WRITER_MAX_SIZE)
		size = EXT4_WRITER_MAX_SIZE;
	if (n > size / 1024)
		n = size / 1024;
	o->size_bytes = size;
	o->inodes = n;
}

/* ---- formatting and the writer's life ------------------------------------------------- */

static int format_image(struct ext4_writer *w, const struct ext4_writer_opts *o, uint64_t blocks,
			uint64_t inodes, struct cove_error *err)
{
	struct ext2_super_block param;
	union inode_buf zero;
	char fdname[16];
	struct entry e;
	ext2_filsys fs;
	ext2_ino_t lpf;
	int fd, r;
	errcode_t x;

	memset(&param, 0, sizeof(param));
	ext2fs_blocks_count_set(&param, blocks);
	param.s_log_block_size = 2; /* 1024 << 2 */
	param.s_rev_level = EXT2_DYNAMIC_REV;
	param.s_inode_size = INODE_SIZE;
	param.s_inodes_count = (__u32)inodes;
	param.s_log_groups_per_flex = 4;
	ext2fs_set_feature_xattr(&param);
	ext2fs_set_feature_dir_index(&param);
	ext2fs_set_feature_filetype(&param);
	ext2fs_set_feature_extents(&param);
	ext2fs_set_feature_64bit(&param);
	ext2fs_set_feature_flex_bg(&param);
	ext2fs_set_feature_sparse_super(&param);
	ext2fs_set_feature_large_file(&param);
	ext2fs_set_feature_huge_file(&param);
	ext2fs_set_feature_dir_nlink(&param);
	ext2fs_set_feature_extra_isize(&param);
	ext2fs_set_feature_metadata_csum(&param);

	/* libext2fs takes over this descriptor: its own opens would lack O_CLOEXEC */
	fd = fcntl(w->fd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0)
		return cove_error_set(err, errno, "unable to format '%s': %m", w->image_path);
	r = str_printf(fdname, sizeof(fdname), "%d", fd);
	if (r < 0) {
		close(fd);
		return cove_error_set(err, EINVAL, "unable to format '%s'", w->image_path);
	}
	x = ext2fs_initialize(fdname, EXT2_FLAG_64BITS, &param, unixfd_io_manager, &fs);
	if (x)
		return cove_error_set(err, e2_errno(x), "unable to format '%s': %s", w->image_path,
				      error_message(x));
	w->fs = fs;
	fs->now = w->now.tv_sec;

	if (getrandom(&w->hash_seed, sizeof(w->hash_seed), 0) != (ssize_t)sizeof(w->hash_seed) ||
	    getrandom(fs->super->s_uuid, sizeof(fs->super->s_uuid), 0) !=
		(ssize_t)sizeof(fs->super->s_uuid) ||
	    getrandom(fs->super->s_hash_seed, sizeof(fs->super->s_hash_seed), 0) !=
		(ssize_t)sizeof(fs->super->s_hash_seed))
		return cove_error_set(err, errno ?: EIO, "unable to format '%s': getrandom: %m",
				      w->image_path);
	fs->super->s_uuid[6] = (fs->super->s_uuid[6] & 0x0f) | 0x40; /* RFC 4122 version 4 */
	fs->super->s_uuid[8] = (fs->super->s_uuid[8] & 0x3f) | 0x80;
	fs->super->s_def_hash_version = EXT2_HASH_HALF_MD4;
	fs->super->s_max_mnt_count = -1;
	fs->super->s_kbytes_written = 1;
	fs->super->s_checksum_type = EXT2_CRC32C_CHKSUM;
	if (o->label)
		memcpy(fs->super->s_volume_name, o->label, strlen(o->label));
	ext2fs_init_csum_seed(fs);

	x = ext2fs_allocate_tables(fs);
	if (!x)
		x = ext2fs_convert_subcluster_bitmap(fs, &fs->block_map);
	if (x)
		goto fail;
	/* a fresh sparse file reads as zeros: inode tables need no writing */
	for (dgrp_t g = 0; g < fs->group_desc_count; g++) {
		ext2fs_bg_flags_set(fs, g, EXT2_BG_INODE_ZEROED);
		ext2fs_group_desc_csum_set(fs, g);
	}
	/* reserved inodes must carry valid checksums */
	memset(&zero, 0, sizeof(zero));
	for (ext2_ino_t ino = 1; ino < EXT2_FIRST_INODE(fs->super) && !x; ino++)
		x = ext2fs_write_inode_full(fs, ino, (struct ext2_inode *)&zero, INODE_SIZE);
	if (x)
		goto fail;

	x = ext2fs_mkdir(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, NULL);
	if (x)
		goto fail;
	e = implicit_dir(w, "/");
	r = dir_update(w, EXT2_ROOT_INO, &e, err);
	if (r < 0)
		return r;
	for (ext2_ino_t ino = EXT2_ROOT_INO + 1; ino < EXT2_FIRST_INODE(fs->super); ino++)
		ext2fs_inode_alloc_stats2(fs, ino, +1, 0);
	ext2fs_mark_inode_bitmap2(fs->inode_map, EXT2_BAD_INO);
	ext2fs_inode_alloc_stats2(fs, EXT2_BAD_INO, +1, 0);
	x = ext2fs_update_bb_inode(fs, NULL);
	if (x)
		goto fail;

	e = implicit_dir(w, "lost+found");
	e.mode = S_IFDIR | 0700;
	r = make_dir(w, EXT2_ROOT_INO, "lost+found", &e, &lpf, err);
	if (r < 0)
		return r;
	/* like mke2fs: room for e2fsck to reconnect files without allocating */
	for (int i = 1; i < 4 && !x; i++)
		x = ext2fs_expand_dir(fs, lpf);
	if (x)
		goto fail;

	if (o->journal) {
		struct ext2fs_journal_params jp;

		x = ext2fs_get_journal_params(&jp, fs);
		if (!x)
			x = ext2fs_add_journal_inode3(
			    fs, &jp, ~0ULL, EXT2_MKJOURNAL_LAZYINIT | EXT2_MKJOURNAL_NO_MNT_CHECK);
		if (x)
			goto fail;
	}
	return 0;
fail:
	return cove_error_set(err, e2_errno(x), "unable to format '%s': %s", w->image_path,
			      e2_message(x));
}

static void writer_freep(struct ext4_writer **w)
{
	ext4_writer_free(*w);
}

/*
 * mkostemp tmp_path ("IMAGE.XXXXXX") and lock it for this writer's life: a temp file whose lock
 * is free is a dead writer's, and another cove removes it (store_snapshot_reclaim, GC). One
 * that opened ours between the create and the lock has removed it by the time the lock is
 * ours (it unlinks with the lock held): then the name is gone, and a new one is made.
 */
static int temp_create(struct ext4_writer *w)
{
	size_t n = strlen(w->tmp_path);

	for (int attempt = 0; attempt < 8; attempt++) {
		struct stat st;

		memcpy(w->tmp_path + n - 6, "XXXXXX", 6);
		w->fd = mkostemp(w->tmp_path, O_CLOEXEC);
		if (w->fd < 0)
			return -errno;
		while (flock(w->fd, LOCK_EX) < 0 && errno == EINTR)
			;
		if (fstat(w->fd, &st) < 0) {
			int r = -errno;

			(void)unlink(w->tmp_path);
			close(w->fd);
			w->fd = -1;
			return r;
		}
		if (st.st_nlink > 0)
			return 0;
		close(w->fd);
		w->fd = -1;
	}
	return -EAGAIN;
}

/* Rename the finished temp file to IMAGE; with keep_existing an IMAGE that another writer put
 * there first stays (containers may already use it as a backing file) and ours goes. */
static int temp_publish(struct ext4_writer *w)
{
	if (!w->keep_existing)
		return rename(w->tmp_path, w->image_path) < 0 ? -errno : 0;
	if (renameat2(AT_FDCWD, w->tmp_path, AT_FDCWD, w->image_path, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno == EINVAL || errno == ENOSYS) { /* a filesystem without it: link is atomic */
		if (link(w->tmp_path, w->image_path) == 0) {
			(void)unlink(w->tmp_path);
			return 0;
		}
	}
	if (errno != EEXIST)
		return -errno;
	(void)unlink(w->tmp_path);
	return 0;
}

int ext4_writer_new(const char *image_path, const struct ext4_writer_opts *o,
		    struct ext4_writer **ret, struct cove_error *err)
{
	_cleanup_(writer_freep) struct ext4_writer *w = NULL;
	uint64_t blocks, inodes;
	size_t plen;
	int r;

	if (!image_path || !*image_path || !o)
		return cove_error_set(err, EINVAL, "no image path given");
	plen = strlen(image_path);
	if (plen + 8 >= PATH_MAX)
		return cove_error_set(err, ENAMETOOLONG, "image path '%s' is too long", image_path);
	if (o->size_bytes < EXT4_WRITER_MIN_SIZE || o->size_bytes > EXT4_WRITER_MAX_SIZE)
		return cove_error_set(err, EINVAL,
				      "image size %llu is out of range (4 MiB to 16 TiB)",
				      (unsigned long long)o->size_bytes);
	if (o->label && strlen(o->label) > sizeof(((struct ext2_super_block *)0)->s_volume_name))
		return cove_error_set(err, EINVAL, "label '%s' is longer than 16 bytes", o->label);
	blocks = o->size_bytes / BLOCK_SIZE;
	inodes = o->inodes;
	if (inodes == 0) {
		inodes = o->size_bytes / DEFAULT_INODE_RATIO;
		if (inodes < MIN_INODES)
			inodes = MIN_INODES;
	}
	if (inodes < 16 || inodes > o->size_bytes / 1024 || inodes > UINT32_MAX)
		return cove_error_set(err, EINVAL,
				      "%llu inodes do not fit an image of %llu bytes (at most one "
				      "per KiB)",
				      (unsigned long long)inodes,
				      (unsigned long long)o->size_bytes);
	ext2_errors_init();

	w = calloc(1, sizeof(*w));
	if (!w)
		return cove_error_set(err, ENOMEM, "out of memory");
	w->fd = -1;
	clock_gettime(CLOCK_REALTIME, &w->now);
	w->image_path = strdup(image_path);
	w->tmp_path = malloc(plen + 8);
	w->data = w->comb = malloc(COMBINE_SIZE);
	w->dirbuf = malloc(BLOCK_SIZE);
	w->xattr_names = malloc(XATTR_LIST_MAX + 1);
	w->xattr_values = malloc(XATTR_VALUES_MAX);
	w->n_buckets = 1024;
	w->buckets = calloc(w->n_buckets, sizeof(*w->buckets));
	if (!w->image_path || !w->tmp_path || !w->comb || !w->dirbuf || !w->xattr_names ||
	    !w->xattr_values || !w->buckets)
		return cove_error_set(err, ENOMEM, "out of memory");
	r = str_printf(w->tmp_path, plen + 8, "%s.XXXXXX", image_path);
	if (r < 0)
		return cove_error_set(err, -r, "image path '%s' is too long", image_path);
	r = temp_create(w);
	if (r < 0) {
		r = cove_error_set(err, -r, "unable to create '%s': %s", w->tmp_path, strerror(-r));
		free(w->tmp_path);
		w->tmp_path = NULL;
		return r;
	}
	w->keep_existing = o->keep_existing;
	if (fchmod(w->fd, 0644) < 0 || ftruncate(w->fd, (off_t)(blocks * BLOCK_SIZE)) < 0)
		return cove_error_set(err, errno, "unable to size '%s': %m", w->tmp_path);
	r = format_image(w, o, blocks, inodes, err);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(w);
	return 0;
}

static int fsync_parent(const char *path)
{
	char dir[PATH_MAX];
	_cleanup_close_ int fd = -1;
	char *slash;
	int r;

	r = str_copy(dir, sizeof(dir), path);
	if (r < 0)
		return r;
	slash = strrchr(dir, '/');
	if (!slash)
		r = str_copy(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		return -errno;
	return 0;
}

int ext4_writer_finish(struct ext4_writer *w, struct cove_error *err)
{
	struct dent *lpf;
	errcode_t x;
	int r;

	r = writer_usable(w, err);
	if (r < 0)
		return r;
	/* e2fsck insists on /lost+found; a layer may have deleted it */
	lpf = index_find(w, EXT2_ROOT_INO, "lost+found", strlen("lost+found"));
	if (!lpf) {
		struct entry e = implicit_dir(w, "lost+found");

		e.mode = S_IFDIR | 0700;
		r = make_dir(w, EXT2_ROOT_INO, "lost+found", &e, NULL, err);
		if (r < 0) {
			w->broken = true;
			return r;
		}
	}
	x = comb_write(w, w->data, w->data_len);
	if (!x)
		x = tail_put(w);
	if (!x)
		x = ext2fs_close2(w->fs, 0);
	if (x) {
		w->broken = true;
		return cove_error_set(err, e2_errno(x), "unable to write '%s': %s", w->tmp_path,
				      e2_message(x));
	}
	w->fs = NULL;
	r = syncer_stop(w);
	if (r)
		return cove_error_set(err, r, "unable to write '%s': %s", w->tmp_path, strerror(r));
	if (fsync(w->fd) < 0)
		return cove_error_set(err, errno, "unable to write '%s': %m", w->tmp_path);
	r = temp_publish(w);
	if (r < 0)
		return cove_error_set(err, -r, "unable to rename '%s' to '%s': %s", w->tmp_path,
				      w->image_path, strerror(-r));
	w->finished = true;
	r = fsync_parent(w->image_path);
	if (r < 0)
		return cove_error_set(err, -r, "unable to sync the directory of '%s': %s",
				      w->image_path, strerror(-r));
	return 0;
}

void ext4_writer_free(struct ext4_writer *w)
{
	if (!w)
		return;
	(void)syncer_stop(w);
	if (w->fs)
		ext2fs_free(w->fs);
	if (!w->finished && w->tmp_path)
		unlink(w->tmp_path);
	if (w->fd >= 0)
		close(w->fd);
	index_free(w);
	free(w->runs);
	free(w->comb);
	free(w->dirbuf);
	free(w->xattr_names);
	free(w->xattr_values);
	free(w->tmp_path);
	free(w->image_path);
	free(w);
}
