/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The tar writer and reader behind `cove cp` (see tar.h), libc only.
 *
 * Writes POSIX ustar, with a pax 'x' header for whatever does not fit: names and link targets
 * over 100 bytes, sizes from 8 GiB, owners above 2097151, mtimes before 1970 or after 2242.
 * Reads ustar, pax ('x'; 'g' is ignored), GNU ('L'/'K' long names, base-256 numbers) and v7.
 *
 * Extraction never hands the kernel a path from the archive: each entry is created relative to
 * a directory fd reached one component at a time with openat(O_DIRECTORY | O_NOFOLLOW) from the
 * destination, so neither a symlink in the archive nor one already on disk can lead outside it.
 * Both directions read and write exactly the archive's bytes (the reader stops after the two
 * zero blocks at its end), so in_fd and out_fd may be pipes or sockets shared with more data.
 */
#define _GNU_SOURCE
#include "tar.h"
#include "buf.h"
#include "util.h"

#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>

#define BLOCK		512
#define CHUNK		(64 * 1024)   /* file data is copied in pieces of this size */
#define PAX_MAX		(1024 * 1024) /* largest pax extended header written or accepted */
#define LONGNAME_MAX	(64 * 1024)   /* largest GNU 'L'/'K' long name accepted */
#define NAME_LIMIT	(256 * 1024)  /* longest archive name tar_cp_out builds */
#define DEPTH_MAX	256	      /* directory nesting tar_cp_out follows (one fd per level) */
#define PAX_HEADER_NAME "././@PaxHeader"

/* A ustar header block. GNU headers use the same layout up to devminor. */
struct ustar {
	char name[100];
	char mode[8];
	char uid[8];
	char gid[8];
	char size[12];
	char mtime[12];
	char chksum[8];
	char typeflag;
	char linkname[100];
	char magic[6];
	char version[2];
	char uname[32];
	char gname[32];
	char devmajor[8];
	char devminor[8];
	char prefix[155];
	char pad[12];
};
_Static_assert(sizeof(struct ustar) == BLOCK, "a tar header is one block");

static int fail(char *msg, size_t msg_size, int err, const char *fmt, ...) _printf_(4, 5);
static int fail(char *msg, size_t msg_size, int err, const char *fmt, ...)
{
	va_list ap;

	if (msg && msg_size > 0) {
		va_start(ap, fmt);
		vsnprintf(msg, msg_size, fmt, ap);
		va_end(ap);
	}
	return err;
}

static uint64_t pad_of(uint64_t size)
{
	return (BLOCK - size % BLOCK) % BLOCK;
}

static bool is_dot_or_dotdot(const char *s, size_t n)
{
	return (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.');
}

/* ---------------------------------------------------------------- writer */

struct hardlink {
	struct hardlink *next;
	dev_t dev;
	ino_t ino;
	char name[]; /* the archive name the inode was first written as */
};

struct writer {
	int fd;
	char *msg;
	size_t msg_size;
	uint8_t *out; /* CHUNK bytes of output not yet written */
	size_t out_len;
	char *path; /* archive name of the entry being written, without a trailing '/' */
	size_t path_len;
	size_t path_cap;
	char *prefix;		 /* what turns path back into the path on disk, for messages */
	bool contents;		 /* the archive holds a directory's contents, named "./..." */
	struct hardlink **links; /* inodes with more than one link; a power of two of buckets */
	size_t links_size;
	size_t links_count;
	unsigned int depth;
};

#define wfail(w, err, ...) fail((w)->msg, (w)->msg_size, (err), __VA_ARGS__)

/* The entry being written as a path on disk, made fit for a message. */
static const char *w_shown(struct writer *w, char out[STR_SHOWN_MAX])
{
	_cleanup_free_ char *full = NULL;
	const char *p = w->path;
	size_t n;

	if (w->contents) {
		if (p[0] == '.' && p[1] == '/')
			p += 2;
		else if (strcmp(p, ".") == 0)
			p = "";
	}
	n = strlen(w->prefix) + strlen(p) + 1;
	full = malloc(n);
	if (!full)
		return str_shown(p, out);
	snprintf(full, n, "%s%s", w->prefix, p);
	return str_shown(full[0] ? full : ".", out);
}

static int out_flush(struct writer *w)
{
	int r = write_full(w->fd, w->out, w->out_len);

	if (r < 0)
		return wfail(w, r, "cannot write the archive: %s", strerror(-r));
	w->out_len = 0;
	return 0;
}

static int out_write(struct writer *w, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len > 0) {
		size_t n = CHUNK - w->out_len;

		if (n > len)
			n = len;
		memcpy(w->out + w->out_len, p, n);
		w->out_len += n;
		p += n;
		len -= n;
		if (w->out_len == CHUNK) {
			int r = out_flush(w);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static int out_zeros(struct writer *w, uint64_t len)
{
	while (len > 0) {
		size_t n = CHUNK - w->out_len;

		if (n > len)
			n = (size_t)len;
		memset(w->out + w->out_len, 0, n);
		w->out_len += n;
		len -= n;
		if (w->out_len == CHUNK) {
			int r = out_flush(w);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* v as width-1 octal digits and a NUL; v must fit. */
static void put_octal(char *field, size_t width, uint64_t v)
{
	field[width - 1] = '\0';
	for (size_t i = width - 1; i-- > 0;) {
		field[i] = (char)('0' + (v & 7));
		v >>= 3;
	}
}

/* v in octal if it fits, else in GNU base-256 (and false: the caller adds a pax record). */
static bool put_number(char *field, size_t width, uint64_t v)
{
	if ((v >> (3 * (width - 1))) == 0) {
		put_octal(field, width, v);
		return true;
	}
	for (size_t i = width; i-- > 1;) {
		field[i] = (char)(v & 0xff);
		v >>= 8;
	}
	field[0] = (char)0x80;
	return false;
}

static void put_string(char *field, size_t width, const char *s)
{
	size_t n = strlen(s);

	memcpy(field, s, n < width ? n : width);
}

static void put_checksum(struct ustar *h)
{
	const uint8_t *p = (const uint8_t *)h;
	unsigned int sum = 0;

	memset(h->chksum, ' ', sizeof(h->chksum));
	for (size_t i = 0; i < BLOCK; i++)
		sum += p[i];
	put_octal(h->chksum, 7, sum); /* six digits, NUL, and the space left from above */
}

/* Append the pax record "LEN key=value\n"; LEN counts its own digits. */
static int pax_add(struct buf *pax, const char *key, const char *value)
{
	size_t base = strlen(key) + strlen(value) + 3, digits = 1, len;
	char num[24];

	for (;;) {
		len = base + digits;
		size_t n = (size_t)snprintf(num, sizeof(num), "%zu ", len) - 1;
		if (n == digits)
			break;
		digits = n;
	}
	if (buf_reserve(pax, len) < 0)
		return -E2BIG;
	buf_append(pax, num, digits + 1);
	buf_append(pax, key, strlen(key));
	buf_append(pax, "=", 1);
	buf_append(pax, value, strlen(value));
	buf_append(pax, "\n", 1);
	return 0;
}

static int pax_add_number(struct buf *pax, const char *key, long long v)
{
	char num[32];

	snprintf(num, sizeof(num), "%lld", v);
	return pax_add(pax, key, num);
}

/* Write the header (and a pax header before it when needed) of the entry named name. */
static int write_header(struct writer *w, const char *name, char type, const char *linkname,
			const struct stat *st, uint64_t size)
{
	struct buf pax = BUF_INIT(PAX_MAX);
	struct ustar h;
	int r = 0;

	memset(&h, 0, sizeof(h));
	if (strlen(name) > sizeof(h.name))
		r = pax_add(&pax, "path", name);
	put_string(h.name, sizeof(h.name), name);
	if (linkname) {
		if (r >= 0 && strlen(linkname) > sizeof(h.linkname))
			r = pax_add(&pax, "linkpath", linkname);
		put_string(h.linkname, sizeof(h.linkname), linkname);
	}
	put_octal(h.mode, sizeof(h.mode), st->st_mode & 07777);
	if (!put_number(h.uid, sizeof(h.uid), st->st_uid) && r >= 0)
		r = pax_add_number(&pax, "uid", (long long)st->st_uid);
	if (!put_number(h.gid, sizeof(h.gid), st->st_gid) && r >= 0)
		r = pax_add_number(&pax, "gid", (long long)st->st_gid);
	if (!put_number(h.size, sizeof(h.size), size) && r >= 0)
		r = pax_add_number(&pax, "size", (long long)size);
	if (st->st_mtim.tv_sec < 0) {
		put_octal(h.mtime, sizeof(h.mtime), 0);
		if (r >= 0)
			r = pax_add_number(&pax, "mtime", (long long)st->st_mtim.tv_sec);
	} else if (!put_number(h.mtime, sizeof(h.mtime), (uint64_t)st->st_mtim.tv_sec) && r >= 0) {
		r = pax_add_number(&pax, "mtime", (long long)st->st_mtim.tv_sec);
	}
	h.typeflag = type;
	memcpy(h.magic, "ustar", 6);
	memcpy(h.version, "00", 2);
	if (type == '3' || type == '4') {
		put_number(h.devmajor, sizeof(h.devmajor), major(st->st_rdev));
		put_number(h.devminor, sizeof(h.devminor), minor(st->st_rdev));
	}
	put_checksum(&h);
	if (r < 0) {
		char shown[STR_SHOWN_MAX];

		buf_done(&pax);
		return wfail(w, -ENAMETOOLONG, "cannot archive '%s': name too long",
			     w_shown(w, shown));
	}

	if (pax.len > 0) {
		struct ustar ph;

		memset(&ph, 0, sizeof(ph));
		put_string(ph.name, sizeof(ph.name), PAX_HEADER_NAME);
		put_octal(ph.mode, sizeof(ph.mode), 0644);
		put_octal(ph.uid, sizeof(ph.uid), 0);
		put_octal(ph.gid, sizeof(ph.gid), 0);
		put_octal(ph.size, sizeof(ph.size), pax.len);
		memcpy(ph.mtime, h.mtime, sizeof(ph.mtime));
		ph.typeflag = 'x';
		memcpy(ph.magic, "ustar", 6);
		memcpy(ph.version, "00", 2);
		put_checksum(&ph);
		r = out_write(w, &ph, sizeof(ph));
		if (r >= 0)
			r = out_write(w, pax.data, pax.len);
		if (r >= 0)
			r = out_zeros(w, pad_of(pax.len));
	}
	buf_done(&pax);
	if (r < 0)
		return r;
	return out_write(w, &h, sizeof(h));
}

static int path_set(struct writer *w, const char *s)
{
	size_t n = strlen(s);

	free(w->path);
	w->path = strdup(s);
	if (!w->path)
		return wfail(w, -ENOMEM, "out of memory");
	w->path_len = n;
	w->path_cap = n + 1;
	return 0;
}

/* Append "/name" to the archive name ("/" alone when name is ""); *ret_old undoes it. */
static int path_push(struct writer *w, const char *name, size_t *ret_old)
{
	size_t n = strlen(name), need = w->path_len + n + 2;

	if (need > NAME_LIMIT) {
		char shown[STR_SHOWN_MAX];
		return wfail(w, -ENAMETOOLONG, "cannot archive '%s': path too long",
			     w_shown(w, shown));
	}
	if (need > w->path_cap) {
		size_t cap = w->path_cap * 2 > need ? w->path_cap * 2 : need;
		char *p = realloc(w->path, cap);
		if (!p)
			return wfail(w, -ENOMEM, "out of memory");
		w->path = p;
		w->path_cap = cap;
	}
	*ret_old = w->path_len;
	w->path[w->path_len] = '/';
	memcpy(w->path + w->path_len + 1, name, n + 1);
	w->path_len += n + 1;
	return 0;
}

static void path_pop(struct writer *w, size_t old)
{
	w->path_len = old;
	w->path[old] = '\0';
}

static size_t link_bucket(const struct writer *w, dev_t dev, ino_t ino)
{
	uint64_t h = ((uint64_t)ino * 0x9e3779b97f4a7c15ULL) ^ (uint64_t)dev;

	return (size_t)(h ^ (h >> 31)) & (w->links_size - 1);
}

static const char *link_find(const struct writer *w, const struct stat *st)
{
	if (w->links_size == 0)
		return NULL;
	for (struct hardlink *l = w->links[link_bucket(w, st->st_dev, st->st_ino)]; l; l = l->next)
		if (l->dev == st->st_dev && l->ino == st->st_ino)
			return l->name;
	return NULL;
}

static int link_add(struct writer *w, const struct stat *st, const char *name)
{
	struct hardlink *l;
	size_t n = strlen(name);

	if (w->links_count >= w->links_size) {
		size_t old_size = w->links_size, size = old_size ? old_size * 2 : 256;
		struct hardlink **old = w->links;

		w->links = calloc(size, sizeof(*w->links));
		if (!w->links) {
			w->links = old;
			return wfail(w, -ENOMEM, "out of memory");
		}
		w->links_size = size;
		for (size_t i = 0; i < old_size; i++) {
			while (old[i]) {
				struct hardlink *next = old[i]->next;
				size_t b = link_bucket(w, old[i]->dev, old[i]->ino);

				old[i]->next = w->links[b];
				w->links[b] = old[i];
				old[i] = next;
			}
		}
		free(old);
	}
	l = malloc(sizeof(*l) + n + 1);
	if (!l)
		return wfail(w, -ENOMEM, "out of memory");
	l->dev = st->st_dev;
	l->ino = st->st_ino;
	memcpy(l->name, name, n + 1);
	l->next = w->links[link_bucket(w, st->st_dev, st->st_ino)];
	w->links[link_bucket(w, st->st_dev, st->st_ino)] = l;
	w->links_count++;
	return 0;
}

static int write_entry(struct writer *w, int dfd, const char *name, const struct stat *st);

/* Write the directory open as dfd (taken over) and everything under it. */
static int write_dir(struct writer *w, int dfd, const struct stat *st)
{
	_cleanup_(closedirp) DIR *d = NULL;
	char shown[STR_SHOWN_MAX];
	size_t old;
	int r;

	d = fdopendir(dfd);
	if (!d) {
		r = -errno;
		close(dfd);
		return wfail(w, r, "cannot read '%s': %s", w_shown(w, shown), strerror(-r));
	}
	if (w->depth >= DEPTH_MAX)
		return wfail(w, -ELOOP, "cannot archive '%s': directories nested too deeply",
			     w_shown(w, shown));
	r = path_push(w, "", &old);
	if (r < 0)
		return r;
	r = write_header(w, w->path, '5', NULL, st, 0);
	path_pop(w, old);
	if (r < 0)
		return r;

	w->depth++;
	for (;;) {
		struct dirent *de;
		struct stat cst;

		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno != 0) {
				r = -errno;
				wfail(w, r, "cannot read '%s': %s", w_shown(w, shown),
				      strerror(-r));
			}
			break;
		}
		if (is_dot_or_dotdot(de->d_name, strlen(de->d_name)))
			continue;
		r = path_push(w, de->d_name, &old);
		if (r < 0)
			break;
		if (fstatat(dirfd(d), de->d_name, &cst, AT_SYMLINK_NOFOLLOW) < 0) {
			r = -errno;
			if (r == -ENOENT) { /* removed since readdir: leave it out */
				r = 0;
				path_pop(w, old);
				continue;
			}
			wfail(w, r, "cannot stat '%s': %s", w_shown(w, shown), strerror(-r));
			break;
		}
		r = write_entry(w, dirfd(d), de->d_name, &cst);
		path_pop(w, old);
		if (r < 0)
			break;
	}
	w->depth--;
	return r;
}

static int write_file(struct writer *w, int dfd, const char *name)
{
	_cleanup_close_ int fd = -1;
	char shown[STR_SHOWN_MAX];
	uint64_t left;
	struct stat st;
	int r;

	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		r = -errno;
		return wfail(w, r, "cannot open '%s': %s", w_shown(w, shown), strerror(-r));
	}
	if (!S_ISREG(st.st_mode))
		return wfail(w, -EAGAIN, "cannot archive '%s': it changed while being read",
			     w_shown(w, shown));
	r = write_header(w, w->path, '0', NULL, &st, (uint64_t)st.st_size);
	if (r < 0)
		return r;

	/* Exactly st_size bytes, whatever happens to the file meanwhile: a file that grew is
	 * cut, one that shrank is padded with zeros. */
	left = (uint64_t)st.st_size;
	while (left > 0) {
		size_t n = CHUNK - w->out_len;
		ssize_t got;

		if (n == 0) {
			r = out_flush(w);
			if (r < 0)
				return r;
			continue;
		}
		if (n > left)
			n = (size_t)left;
		got = read(fd, w->out + w->out_len, n);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			return wfail(w, r, "cannot read '%s': %s", w_shown(w, shown), strerror(-r));
		}
		if (got == 0)
			break;
		w->out_len += (size_t)got;
		left -= (uint64_t)got;
	}
	return out_zeros(w, left + pad_of((uint64_t)st.st_size));
}

static int write_symlink(struct writer *w, int dfd, const char *name, const struct stat *st)
{
	char target[PATH_MAX + 1], shown[STR_SHOWN_MAX];
	ssize_t n;

	n = readlinkat(dfd, name, target, sizeof(target));
	if (n < 0) {
		int r = -errno;
		return wfail(w, r, "cannot read link '%s': %s", w_shown(w, shown), strerror(-r));
	}
	if ((size_t)n >= sizeof(target))
		return wfail(w, -ENAMETOOLONG, "cannot read link '%s': target too long",
			     w_shown(w, shown));
	target[n] = '\0';
	return write_header(w, w->path, '2', target, st, 0);
}

/* Write the entry name in dfd (lstat'ed as st), already pushed on w->path. */
static int write_entry(struct writer *w, int dfd, const char *name, const struct stat *st)
{
	char shown[STR_SHOWN_MAX];
	int fd, r;

	switch (st->st_mode & S_IFMT) {
	case S_IFREG:
	case S_IFLNK:
	case S_IFIFO:
	case S_IFCHR:
	case S_IFBLK:
		if (st->st_nlink > 1) {
			const char *first = link_find(w, st);

			if (first)
				return write_header(w, w->path, '1', first, st, 0);
			r = link_add(w, st, w->path);
			if (r < 0)
				return r;
		}
		break;
	default:
		break;
	}

	switch (st->st_mode & S_IFMT) {
	case S_IFREG:
		return write_file(w, dfd, name);
	case S_IFDIR:
		fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			r = -errno;
			return wfail(w, r, "cannot open '%s': %s", w_shown(w, shown), strerror(-r));
		}
		return write_dir(w, fd, st);
	case S_IFLNK:
		return write_symlink(w, dfd, name, st);
	case S_IFIFO:
		return write_header(w, w->path, '6', NULL, st, 0);
	case S_IFCHR:
		return write_header(w, w->path, '3', NULL, st, 0);
	case S_IFBLK:
		return write_header(w, w->path, '4', NULL, st, 0);
	default:
		return 0; /* a socket has no place in an archive */
	}
}

static int write_top(struct writer *w, const char *src)
{
	_cleanup_free_ char *s = NULL;
	_cleanup_close_ int pfd = -1;
	const char *base, *parent;
	char shown[STR_SHOWN_MAX], top[PATH_MAX];
	bool trailing = false;
	struct stat st;
	size_t len = strlen(src);
	char *slash;
	int fd, r;

	if (len == 0)
		return wfail(w, -ENOENT, "cannot open '': %s", strerror(ENOENT));
	s = strdup(src);
	if (!s)
		return wfail(w, -ENOMEM, "out of memory");
	while (len > 1 && s[len - 1] == '/') {
		s[--len] = '\0';
		trailing = true;
	}
	slash = strrchr(s, '/');
	base = slash ? slash + 1 : s;

	/* the rule tar_cp_top() tells the reading side, so the two can never disagree */
	if (tar_cp_top(src, top, sizeof(top)) == 1) {
		/* "dir/.", "/": the directory's contents, as "./" and "./name" */
		fd = open(s, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) < 0) {
			r = -errno;
			if (fd >= 0)
				close(fd);
			return wfail(w, r, "cannot open '%s': %s", str_shown(src, shown),
				     strerror(-r));
		}
		w->contents = true;
		if (strcmp(base, ".") == 0)
			len -= 1; /* "dir/." shows as "dir/" */
		w->prefix = malloc(len + 2);
		if (!w->prefix) {
			close(fd);
			return wfail(w, -ENOMEM, "out of memory");
		}
		memcpy(w->prefix, s, len);
		if (len > 0 && s[len - 1] != '/')
			w->prefix[len++] = '/';
		w->prefix[len] = '\0';
		r = path_set(w, ".");
		if (r < 0) {
			close(fd);
			return r;
		}
		return write_dir(w, fd, &st);
	}

	w->prefix = strndup(s, (size_t)(base - s));
	if (!w->prefix)
		return wfail(w, -ENOMEM, "out of memory");
	if (slash == s) {
		parent = "/";
	} else if (slash) {
		*slash = '\0';
		parent = s;
	} else {
		parent = ".";
	}
	r = path_set(w, base);
	if (r < 0)
		return r;
	pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0 || fstatat(pfd, base, &st, trailing ? 0 : AT_SYMLINK_NOFOLLOW) < 0) {
		r = -errno;
		return wfail(w, r, "cannot open '%s': %s", str_shown(src, shown), strerror(-r));
	}
	if (!trailing)
		return write_entry(w, pfd, base, &st);

	/* "name/": name must be a directory, or a symlink to one (followed) */
	if (!S_ISDIR(st.st_mode))
		return wfail(w, -ENOTDIR, "cannot open '%s': %s", str_shown(src, shown),
			     strerror(ENOTDIR));
	fd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		return wfail(w, r, "cannot open '%s': %s", str_shown(src, shown), strerror(-r));
	}
	return write_dir(w, fd, &st);
}

int tar_cp_out(int out_fd, const char *src, char *msg, size_t msg_size)
{
	struct writer w = { .fd = out_fd, .msg = msg, .msg_size = msg_size };
	int r;

	w.out = malloc(CHUNK);
	if (!w.out)
		return wfail(&w, -ENOMEM, "out of memory");
	r = write_top(&w, src);
	if (r >= 0)
		r = out_zeros(&w, 2 * BLOCK);
	if (r >= 0)
		r = out_flush(&w);

	for (size_t i = 0; i < w.links_size; i++) {
		while (w.links[i]) {
			struct hardlink *next = w.links[i]->next;
			free(w.links[i]);
			w.links[i] = next;
		}
	}
	free(w.links);
	free(w.prefix);
	free(w.path);
	free(w.out);
	return r < 0 ? r : 0;
}

/* ---------------------------------------------------------------- reader */

/* What a pax 'x' header says about the entry after it. */
struct pax {
	char *path;
	char *linkpath;
	bool has_size, has_uid, has_gid, has_mtime, sparse;
	uint64_t size, uid, gid;
	struct timespec mtime;
};

struct entry {
	char type; /* '0' '1' '2' '3' '4' '5' '6', or 0 for an entry to skip */
	char *name;
	char *linkname;
	uint64_t size; /* bytes of data after the header */
	mode_t mode;
	uid_t uid;
	gid_t gid;
	struct timespec mtime;
	unsigned int devmajor, devminor;
};

/* A directory whose mode, owner and mtime are set once everything is in it. */
struct dir_meta {
	char *path;
	mode_t mode;
	uid_t uid;
	gid_t gid;
	struct timespec mtime;
};

struct reader {
	int fd;
	char *msg;
	size_t msg_size;
	uint8_t *buf; /* CHUNK bytes */
	int root_fd;  /* entries are created relative to this directory */
	const char *dst;
	const char *rename; /* if set, the archive's top-level component becomes this name */
	char *top;	    /* that component, as named by the first entry */
	bool dst_is_file;   /* dst exists and is not a directory */
	bool seen_entry;
	bool as_root;
	struct tar_in_opts *o;
	char *cache_path; /* the parent directory walked to last, and its fd */
	int cache_fd;
	struct dir_meta *dirs;
	size_t n_dirs;
	size_t dirs_cap;
};

#define rfail(rd, err, ...) fail((rd)->msg, (rd)->msg_size, (err), __VA_ARGS__)

/* Read len bytes of the archive: 0, 1 at EOF before the first byte if eof_ok, or -errno. */
static int in_read(struct reader *rd, void *buf, size_t len, bool eof_ok, const char *what)
{
	char shown[STR_SHOWN_MAX];
	uint8_t *p = buf;
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(rd->fd, p + got, len - got);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			n = -errno;
			return rfail(rd, (int)n, "cannot read the archive: %s", strerror((int)-n));
		}
		if (n == 0) {
			if (got == 0 && eof_ok)
				return 1;
			if (what)
				return rfail(rd, -EPROTO, "truncated archive at '%s'",
					     str_shown(what, shown));
			return rfail(rd, -EPROTO, "truncated archive");
		}
		got += (size_t)n;
	}
	return 0;
}

static int in_skip(struct reader *rd, uint64_t len, const char *what)
{
	while (len > 0) {
		size_t n = len < CHUNK ? (size_t)len : CHUNK;
		int r = in_read(rd, rd->buf, n, false, what);

		if (r < 0)
			return r;
		len -= n;
	}
	return 0;
}

/* A numeric header field: octal (leading spaces, ended by NUL or space) or GNU base-256. */
static int parse_number(const char *field, size_t width, int64_t *ret)
{
	const unsigned char *f = (const unsigned char *)field;
	uint64_t v = 0;
	size_t i = 0;

	if (f[0] == 0x80 || f[0] == 0xff) {
		bool neg = f[0] == 0xff;
		unsigned int sign = neg ? 0xff : 0x00;

		v = neg ? UINT64_MAX : 0;
		for (i = 1; i < width; i++) {
			if ((v >> 56) != sign)
				return -ERANGE;
			v = (v << 8) | f[i];
		}
		if ((v >> 63) != (neg ? 1u : 0u))
			return -ERANGE;
		*ret = (int64_t)v;
		return 0;
	}
	while (i < width && f[i] == ' ')
		i++;
	for (; i < width && f[i] >= '0' && f[i] <= '7'; i++) {
		if (v > (uint64_t)INT64_MAX >> 3)
			return -ERANGE;
		v = v * 8 + (uint64_t)(f[i] - '0');
	}
	if (i < width && f[i] != '\0' && f[i] != ' ')
		return -EINVAL;
	*ret = (int64_t)v;
	return 0;
}

static bool checksum_ok(const struct ustar *h)
{
	const uint8_t *p = (const uint8_t *)h;
	size_t at = offsetof(struct ustar, chksum);
	int64_t want, ssum = 0, usum = 0;

	if (parse_number(h->chksum, sizeof(h->chksum), &want) < 0)
		return false;
	for (size_t i = 0; i < BLOCK; i++) {
		uint8_t c = (i >= at && i < at + sizeof(h->chksum)) ? ' ' : p[i];

		usum += c;
		ssum += (signed char)c; /* some old tars summed signed bytes */
	}
	return want == usum || want == ssum;
}

static void pax_done(struct pax *px)
{
	free(px->path);
	free(px->linkpath);
	memset(px, 0, sizeof(*px));
}

/* "[-]seconds[.fraction]" */
static int parse_pax_time(const char *s, struct timespec *ret)
{
	bool neg = *s == '-';
	uint64_t sec = 0, nsec = 0;
	int digits = 0;

	if (neg)
		s++;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (sec > ((uint64_t)INT64_MAX - 9) / 10)
			return -ERANGE;
		sec = sec * 10 + (uint64_t)(*s - '0');
	}
	if (*s == '.') {
		for (s++; *s >= '0' && *s <= '9'; s++) {
			if (digits < 9) {
				nsec = nsec * 10 + (uint64_t)(*s - '0');
				digits++;
			}
		}
	}
	if (*s)
		return -EINVAL;
	for (; digits < 9; digits++)
		nsec *= 10;
	ret->tv_sec = neg ? -(time_t)sec : (time_t)sec;
	ret->tv_nsec = (long)nsec;
	if (neg && nsec) {
		ret->tv_sec -= 1;
		ret->tv_nsec = 1000000000L - (long)nsec;
	}
	return 0;
}

static int pax_parse(struct reader *rd, struct pax *px, char *data, size_t len)
{
	size_t off = 0;

	while (off < len && data[off] != '\0') {
		size_t i = off, n = 0, klen;
		char *key, *val, *eq;

		for (; i < len && data[i] >= '0' && data[i] <= '9'; i++) {
			n = n * 10 + (size_t)(data[i] - '0');
			if (n > len)
				break;
		}
		if (i == off || i >= len || data[i] != ' ' || n > len - off || n < i - off + 3 ||
		    data[off + n - 1] != '\n')
			return rfail(rd, -EPROTO, "bad pax header in the archive");
		key = data + i + 1;
		data[off + n - 1] = '\0';
		eq = memchr(key, '=', (size_t)(data + off + n - 1 - key));
		if (!eq)
			return rfail(rd, -EPROTO, "bad pax header in the archive");
		*eq = '\0';
		val = eq + 1;
		klen = (size_t)(eq - key);
		if (strlen(val) != (size_t)(data + off + n - 1 - val))
			return rfail(rd, -EPROTO, "bad pax header in the archive");
		off += n;

		if (strcmp(key, "path") == 0 || strcmp(key, "linkpath") == 0) {
			char **field = key[0] == 'p' ? &px->path : &px->linkpath;

			free(*field);
			*field = NULL;
			if (*val) {
				*field = strdup(val);
				if (!*field)
					return rfail(rd, -ENOMEM, "out of memory");
			}
		} else if (strcmp(key, "size") == 0 || strcmp(key, "uid") == 0 ||
			   strcmp(key, "gid") == 0) {
			uint64_t v;

			if (parse_u64(val, INT64_MAX, &v) < 0)
				return rfail(rd, -EINVAL, "bad pax %s in the archive", key);
			if (key[0] == 's') {
				px->size = v;
				px->has_size = true;
			} else if (key[0] == 'u') {
				px->uid = v;
				px->has_uid = true;
			} else {
				px->gid = v;
				px->has_gid = true;
			}
		} else if (strcmp(key, "mtime") == 0) {
			if (parse_pax_time(val, &px->mtime) < 0)
				return rfail(rd, -EINVAL, "bad pax mtime in the archive");
			px->has_mtime = true;
		} else if (klen > 11 && strncmp(key, "GNU.sparse.", 11) == 0) {
			px->sparse = true;
		}
	}
	return 0;
}

/* The data of a pax or GNU long-name header, NUL-terminated. */
static int read_meta(struct reader *rd, uint64_t size, uint64_t max, char **ret)
{
	char *data;
	int r;

	if (size > max)
		return rfail(rd, -EPROTO, "extended header too large in the archive (%llu bytes)",
			     (unsigned long long)size);
	data = malloc((size_t)size + 1);
	if (!data)
		return rfail(rd, -ENOMEM, "out of memory");
	r = in_read(rd, data, (size_t)size, false, NULL);
	if (r >= 0)
		r = in_skip(rd, pad_of(size), NULL);
	if (r < 0) {
		free(data);
		return r;
	}
	data[size] = '\0';
	*ret = data;
	return 0;
}

static void entry_done(struct entry *e)
{
	free(e->name);
	free(e->linkname);
	memset(e, 0, sizeof(*e));
}

static int header_number(struct reader *rd, const char *field, size_t width, const char *what,
			 const char *name, int64_t *ret)
{
	char shown[STR_SHOWN_MAX];

	if (parse_number(field, width, ret) < 0)
		return rfail(rd, -EINVAL, "bad %s in the archive header of '%s'", what,
			     str_shown(name, shown));
	return 0;
}

/* The entry described by header h and whatever extended headers came before it. */
static int fill_entry(struct reader *rd, const struct ustar *h, struct pax *px, char **long_name,
		      char **long_link, int64_t size, struct entry *e)
{
	bool posix = memcmp(h->magic, "ustar", 6) == 0;
	char shown[STR_SHOWN_MAX];
	int64_t v;
	size_t n;
	int r;

	memset(e, 0, sizeof(*e));
	if (px->path) {
		e->name = TAKE_PTR(px->path);
	} else if (*long_name) {
		e->name = TAKE_PTR(*long_name);
	} else {
		size_t pn = posix ? strnlen(h->prefix, sizeof(h->prefix)) : 0;

		n = strnlen(h->name, sizeof(h->name));
		e->name = malloc(pn + n + 2);
		if (e->name) {
			if (pn)
				snprintf(e->name, pn + n + 2, "%.*s/%.*s", (int)pn, h->prefix,
					 (int)n, h->name);
			else
				snprintf(e->name, n + 1, "%.*s", (int)n, h->name);
		}
	}
	if (px->linkpath) {
		e->linkname = TAKE_PTR(px->linkpath);
	} else if (*long_link) {
		e->linkname = TAKE_PTR(*long_link);
	} else {
		n = strnlen(h->linkname, sizeof(h->linkname));
		e->linkname = strndup(h->linkname, n);
	}
	if (!e->name || !e->linkname)
		return rfail(rd, -ENOMEM, "out of memory");

	r = header_number(rd, h->mode, sizeof(h->mode), "mode", e->name, &v);
	if (r < 0)
		return r;
	e->mode = (mode_t)(v & 07777);
	if (px->has_uid) {
		v = (int64_t)px->uid;
	} else {
		r = header_number(rd, h->uid, sizeof(h->uid), "uid", e->name, &v);
		if (r < 0)
			return r;
	}
	if (v < 0 || (uint64_t)v >= (uid_t)-1)
		return rfail(rd, -EINVAL, "bad uid in the archive header of '%s'",
			     str_shown(e->name, shown));
	e->uid = (uid_t)v;
	if (px->has_gid) {
		v = (int64_t)px->gid;
	} else {
		r = header_number(rd, h->gid, sizeof(h->gid), "gid", e->name, &v);
		if (r < 0)
			return r;
	}
	if (v < 0 || (uint64_t)v >= (gid_t)-1)
		return rfail(rd, -EINVAL, "bad gid in the archive header of '%s'",
			     str_shown(e->name, shown));
	e->gid = (gid_t)v;
	if (px->has_mtime) {
		e->mtime = px->mtime;
	} else {
		r = header_number(rd, h->mtime, sizeof(h->mtime), "mtime", e->name, &v);
		if (r < 0)
			return r;
		e->mtime.tv_sec = (time_t)v;
	}
	e->size = px->has_size ? px->size : (uint64_t)size;

	switch (h->typeflag) {
	case '0':
	case '\0':
	case '7':
		n = strlen(e->name);
		e->type = (n > 0 && e->name[n - 1] == '/') ? '5' : '0';
		break;
	case '3':
	case '4':
		r = header_number(rd, h->devmajor, sizeof(h->devmajor), "device", e->name, &v);
		if (r < 0)
			return r;
		if (v < 0 || v > UINT32_MAX)
			return rfail(rd, -EINVAL, "bad device in the archive header of '%s'",
				     str_shown(e->name, shown));
		e->devmajor = (unsigned int)v;
		r = header_number(rd, h->devminor, sizeof(h->devminor), "device", e->name, &v);
		if (r < 0)
			return r;
		if (v < 0 || v > UINT32_MAX)
			return rfail(rd, -EINVAL, "bad device in the archive header of '%s'",
				     str_shown(e->name, shown));
		e->devminor = (unsigned int)v;
		e->type = h->typeflag;
		break;
	case '1':
	case '2':
	case '5':
	case '6':
		e->type = h->typeflag;
		break;
	case 'D': /* GNU dumpdir: a directory, its data a listing to skip */
		e->type = '5';
		return 0;
	case 'S':
		return rfail(rd, -EOPNOTSUPP, "cannot extract '%s': sparse files are not supported",
			     str_shown(e->name, shown));
	case 'M':
		return rfail(rd, -EOPNOTSUPP,
			     "cannot extract '%s': multi-volume archives are not supported",
			     str_shown(e->name, shown));
	default: /* a volume label or another vendor's extension: skip it and its data */
		e->type = 0;
		return 0;
	}
	if (px->sparse)
		return rfail(rd, -EOPNOTSUPP, "cannot extract '%s': sparse files are not supported",
			     str_shown(e->name, shown));
	if (e->type != '0')
		e->size = 0; /* links, directories and nodes have no data (as Go's archive/tar) */
	return 0;
}

/* The next entry: 0, 1 at the end of the archive, or -errno. */
static int read_entry(struct reader *rd, struct entry *e)
{
	_cleanup_free_ char *long_name = NULL, *long_link = NULL;
	struct ustar h;
	char shown[STR_SHOWN_MAX], hname[sizeof(h.name) + 1];
	struct pax px = { 0 };
	int64_t size;
	char *data;
	int r;

	for (;;) {
		r = in_read(rd, &h, sizeof(h), true, NULL);
		if (r != 0)
			break;
		if (mem_is_zero(&h, BLOCK)) {
			/* the end: normally a second zero block follows; EOF is fine too */
			r = in_read(rd, &h, sizeof(h), true, NULL);
			if (r >= 0)
				r = 1;
			break;
		}
		snprintf(hname, sizeof(hname), "%.*s", (int)sizeof(h.name), h.name);
		if (!checksum_ok(&h)) {
			r = rfail(rd, -EPROTO, "bad checksum in the archive header of '%s'",
				  str_shown(hname, shown));
			break;
		}
		r = header_number(rd, h.size, sizeof(h.size), "size", hname, &size);
		if (r < 0)
			break;
		if (size < 0) {
			r = rfail(rd, -EINVAL, "bad size in the archive header of '%s'",
				  str_shown(hname, shown));
			break;
		}
		if (h.typeflag == 'x') {
			r = read_meta(rd, (uint64_t)size, PAX_MAX, &data);
			if (r < 0)
				break;
			r = pax_parse(rd, &px, data, (size_t)size);
			free(data);
			if (r < 0)
				break;
		} else if (h.typeflag == 'g') {
			r = in_skip(rd, (uint64_t)size + pad_of((uint64_t)size), NULL);
			if (r < 0)
				break;
		} else if (h.typeflag == 'L' || h.typeflag == 'K') {
			char **field = h.typeflag == 'L' ? &long_name : &long_link;

			r = read_meta(rd, (uint64_t)size, LONGNAME_MAX, &data);
			if (r < 0)
				break;
			free(*field);
			*field = data;
		} else {
			r = fill_entry(rd, &h, &px, &long_name, &long_link, size, e);
			break;
		}
	}
	pax_done(&px);
	if (r != 0)
		entry_done(e);
	return r;
}

/*
 * An archive name as a path under the extraction root: no empty or "." components, the
 * top-level component renamed when copying to a new name; "" is the root itself.
 * On -EINVAL, *ret_why says what is wrong with the name.
 */
static int normalize(struct reader *rd, const char *name, char **ret, const char **ret_why)
{
	size_t len = strlen(name), out_len = 0;
	_cleanup_free_ char *out = NULL;
	bool first = true, top_pending = !rd->rename && rd->o->top;

	if (name[0] == '/') {
		*ret_why = "is an absolute path";
		return -EINVAL;
	}
	out = malloc(len + (rd->rename ? strlen(rd->rename) : 0) + 2);
	if (!out)
		return -ENOMEM;
	for (const char *p = name; *p;) {
		size_t n = strcspn(p, "/");
		const char *comp = p;

		p += n;
		if (*p)
			p++;
		if (n == 0)
			continue;
		if (n == 2 && comp[0] == '.' && comp[1] == '.') {
			*ret_why = "contains '..'";
			return -EINVAL;
		}
		/* into an existing directory, only under the name asked for ("./" aside) */
		if (top_pending && !(n == 1 && comp[0] == '.')) {
			if (strlen(rd->o->top) != n || memcmp(rd->o->top, comp, n) != 0) {
				*ret_why = "is not under the name that was asked for";
				return -EINVAL;
			}
			top_pending = false;
		}
		if (first && rd->rename) {
			if (!rd->top) {
				rd->top = strndup(comp, n);
				if (!rd->top)
					return -ENOMEM;
			} else if (strlen(rd->top) != n || memcmp(rd->top, comp, n) != 0) {
				*ret_why = "is not under the archive's first entry";
				return -EINVAL;
			}
			comp = rd->rename;
			n = strlen(comp);
		} else if (n == 1 && comp[0] == '.') {
			first = false;
			continue;
		}
		first = false;
		if (out_len > 0)
			out[out_len++] = '/';
		memcpy(out + out_len, comp, n);
		out_len += n;
	}
	if (first && rd->rename) {
		*ret_why = "is empty";
		return -EINVAL;
	}
	out[out_len] = '\0';
	*ret = TAKE_PTR(out);
	return 0;
}

/*
 * Open the directory that holds path's last component, one component at a time without
 * following symlinks, creating missing directories if create. *ret_fd is the caller's to
 * close; *ret_last points into path.
 */
static int walk_parent(struct reader *rd, const char *entry, const char *path, bool create,
		       int *ret_fd, const char **ret_last)
{
	char shown[STR_SHOWN_MAX], comp[NAME_MAX + 1];
	const char *slash = strrchr(path, '/'), *p = path;
	size_t plen;
	int cur = -1, fd, r;

	plen = slash ? (size_t)(slash - path) : 0;
	if (!slash || (rd->cache_path && strlen(rd->cache_path) == plen &&
		       memcmp(rd->cache_path, path, plen) == 0)) {
		fd = fcntl(slash ? rd->cache_fd : rd->root_fd, F_DUPFD_CLOEXEC, 3);
		if (fd < 0) {
			r = -errno;
			return rfail(rd, r, "cannot extract '%s': %s", str_shown(entry, shown),
				     strerror(-r));
		}
		*ret_fd = fd;
		*ret_last = slash ? slash + 1 : path;
		return 0;
	}

	while (p < slash) {
		size_t n = strcspn(p, "/");
		int at = cur >= 0 ? cur : rd->root_fd;

		if (n > NAME_MAX) {
			r = rfail(rd, -ENAMETOOLONG, "cannot extract '%s': %s",
				  str_shown(entry, shown), strerror(ENAMETOOLONG));
			goto out;
		}
		memcpy(comp, p, n);
		comp[n] = '\0';
		fd = openat(at, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT && create) {
			if (mkdirat(at, comp, 0755) < 0 && errno != EEXIST) {
				r = -errno;
				rfail(rd, r, "cannot create a directory for '%s': %s",
				      str_shown(entry, shown), strerror(-r));
				goto out;
			}
			fd = openat(at, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (fd < 0) {
			struct stat st;

			r = -errno;
			if ((r == -ELOOP || r == -ENOTDIR) &&
			    fstatat(at, comp, &st, AT_SYMLINK_NOFOLLOW) == 0) {
				char shown2[STR_SHOWN_MAX];
				_cleanup_free_ char *sub = strndup(path, (size_t)(p + n - path));

				r = S_ISLNK(st.st_mode) ? -ELOOP : -ENOTDIR;
				rfail(rd, r, "cannot extract '%s': '%s' is %s",
				      str_shown(entry, shown), str_shown(sub ? sub : comp, shown2),
				      S_ISLNK(st.st_mode) ? "a symlink" : "not a directory");
			} else {
				rfail(rd, r, "cannot extract '%s': %s", str_shown(entry, shown),
				      strerror(-r));
			}
			goto out;
		}
		if (cur >= 0)
			close(cur);
		cur = fd;
		p += n;
		if (*p == '/')
			p++;
	}

	/* remember it: entries of one directory usually come one after another */
	fd = fcntl(cur, F_DUPFD_CLOEXEC, 3);
	if (fd >= 0) {
		char *copy = strndup(path, plen);

		if (copy) {
			free(rd->cache_path);
			if (rd->cache_fd >= 0)
				close(rd->cache_fd);
			rd->cache_path = copy;
			rd->cache_fd = fd;
		} else {
			close(fd);
		}
	}
	*ret_fd = cur;
	*ret_last = slash + 1;
	return 0;
out:
	if (cur >= 0)
		close(cur);
	return r;
}

static int dir_meta_add(struct reader *rd, const char *path, const struct entry *e)
{
	struct dir_meta *m;

	if (rd->n_dirs == rd->dirs_cap) {
		size_t cap = rd->dirs_cap ? rd->dirs_cap * 2 : 64;

		m = realloc(rd->dirs, cap * sizeof(*m));
		if (!m)
			return rfail(rd, -ENOMEM, "out of memory");
		rd->dirs = m;
		rd->dirs_cap = cap;
	}
	m = &rd->dirs[rd->n_dirs];
	m->path = strdup(path);
	if (!m->path)
		return rfail(rd, -ENOMEM, "out of memory");
	m->mode = e->mode;
	m->uid = e->uid;
	m->gid = e->gid;
	m->mtime = e->mtime;
	rd->n_dirs++;
	return 0;
}

/* The mode an entry gets: without keep_setid, no setuid or setgid bit. */
static mode_t entry_mode(const struct reader *rd, const struct entry *e)
{
	return rd->o->keep_setid ? e->mode : e->mode & ~(mode_t)(S_ISUID | S_ISGID);
}

/*
 * chmod of last in pfd, never through a symlink: fchmodat's NOFOLLOW, else (a libc without
 * fchmodat2) the node opened O_PATH|O_NOFOLLOW, checked not to be a link, and changed through
 * its /proc/self/fd entry, which names that very inode.
 */
static int chmod_nofollow(int pfd, const char *last, mode_t mode)
{
	_cleanup_close_ int fd = -1;
	char proc[64];
	struct stat st;

	if (fchmodat(pfd, last, mode, AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != ENOSYS && errno != ENOENT)
		return -errno;
	fd = openat(pfd, last, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		return -errno;
	if (S_ISLNK(st.st_mode))
		return -ELOOP;
	str_printf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	return chmod(proc, mode) < 0 ? -errno : 0;
}

/* Owner, mode and mtime of a node just created as last in pfd (not a regular file). */
static int set_meta(struct reader *rd, const struct entry *e, int pfd, const char *last)
{
	struct timespec ts[2] = { e->mtime, e->mtime };
	char shown[STR_SHOWN_MAX];
	int r;

	if (rd->as_root && rd->o->keep_owners &&
	    fchownat(pfd, last, e->uid, e->gid, AT_SYMLINK_NOFOLLOW) < 0) {
		r = -errno;
		return rfail(rd, r, "cannot change the owner of '%s': %s",
			     str_shown(e->name, shown), strerror(-r));
	}
	if (e->type != '2' && (r = chmod_nofollow(pfd, last, entry_mode(rd, e))) < 0)
		return rfail(rd, r, "cannot change the mode of '%s': %s", str_shown(e->name, shown),
			     strerror(-r));
	if (utimensat(pfd, last, ts, AT_SYMLINK_NOFOLLOW) < 0) {
		r = -errno;
		return rfail(rd, r, "cannot set the time of '%s': %s", str_shown(e->name, shown),
			     strerror(-r));
	}
	return 0;
}

static int extract_file(struct reader *rd, const struct entry *e, int pfd, const char *last)
{
	struct timespec ts[2] = { e->mtime, e->mtime };
	_cleanup_close_ int fd = -1;
	char shown[STR_SHOWN_MAX];
	uint64_t left = e->size;
	int r;

	fd = openat(pfd, last, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC,
		    0600);
	if (fd < 0) {
		r = -errno;
		return rfail(rd, r, "cannot create '%s': %s", str_shown(e->name, shown),
			     strerror(-r));
	}
	while (left > 0) {
		size_t n = left < CHUNK ? (size_t)left : CHUNK;

		r = in_read(rd, rd->buf, n, false, e->name);
		if (r < 0)
			return r;
		r = write_full(fd, rd->buf, n);
		if (r < 0)
			return rfail(rd, r, "cannot write '%s': %s", str_shown(e->name, shown),
				     strerror(-r));
		left -= n;
	}
	r = in_skip(rd, pad_of(e->size), e->name);
	if (r < 0)
		return r;
	/* chown first: it clears the setuid and setgid bits */
	if (rd->as_root && rd->o->keep_owners && fchown(fd, e->uid, e->gid) < 0) {
		r = -errno;
		return rfail(rd, r, "cannot change the owner of '%s': %s",
			     str_shown(e->name, shown), strerror(-r));
	}
	if (fchmod(fd, entry_mode(rd, e)) < 0) {
		r = -errno;
		return rfail(rd, r, "cannot change the mode of '%s': %s", str_shown(e->name, shown),
			     strerror(-r));
	}
	if (futimens(fd, ts) < 0) {
		r = -errno;
		return rfail(rd, r, "cannot set the time of '%s': %s", str_shown(e->name, shown),
			     strerror(-r));
	}
	return 0;
}

static int extract_hardlink(struct reader *rd, const struct entry *e, int pfd, const char *last,
			    const struct stat *existing)
{
	char shown[STR_SHOWN_MAX], shown2[STR_SHOWN_MAX];
	_cleanup_free_ char *target = NULL;
	_cleanup_close_ int tfd = -1;
	const char *tlast, *why = NULL;
	struct stat tst;
	int r;

	r = normalize(rd, e->linkname, &target, &why);
	if (r < 0) {
		if (r == -EINVAL)
			return rfail(rd, r, "cannot extract '%s': the link target '%s' %s",
				     str_shown(e->name, shown), str_shown(e->linkname, shown2),
				     why);
		return rfail(rd, r, "out of memory");
	}
	if (!*target)
		return rfail(rd, -EINVAL, "cannot extract '%s': bad link target '%s'",
			     str_shown(e->name, shown), str_shown(e->linkname, shown2));
	r = walk_parent(rd, e->name, target, false, &tfd, &tlast);
	if (r < 0)
		return r;
	if (fstatat(tfd, tlast, &tst, AT_SYMLINK_NOFOLLOW) < 0) {
		r = -errno;
		return rfail(rd, r, "cannot link '%s' to '%s': %s", str_shown(e->name, shown),
			     str_shown(e->linkname, shown2), strerror(-r));
	}
	if (existing) {
		if (existing->st_dev == tst.st_dev && existing->st_ino == tst.st_ino)
			return 0; /* linked already */
		if (unlinkat(pfd, last, 0) < 0) {
			r = -errno;
			return rfail(rd, r, "cannot replace '%s': %s", str_shown(e->name, shown),
				     strerror(-r));
		}
	}
	if (linkat(tfd, tlast, pfd, last, 0) < 0) {
		r = -errno;
		return rfail(rd, r, "cannot link '%s' to '%s': %s", str_shown(e->name, shown),
			     str_shown(e->linkname, shown2), strerror(-r));
	}
	return 0;
}

static int extract(struct reader *rd, const struct entry *e)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int pfd = -1;
	char shown[STR_SHOWN_MAX];
	const char *last, *why = NULL;
	bool exists = true;
	struct stat st;
	int r;

	if (e->type == 0)
		return in_skip(rd, e->size + pad_of(e->size), e->name);
	if (!e->name[0])
		return rfail(rd, -EINVAL, "bad archive: an entry has an empty name");
	r = normalize(rd, e->name, &path, &why);
	if (r < 0) {
		if (r == -EINVAL)
			return rfail(rd, r, "cannot extract '%s': the name %s",
				     str_shown(e->name, shown), why);
		return rfail(rd, r, "out of memory");
	}
	if (!rd->seen_entry) {
		rd->seen_entry = true;
		if (rd->dst_is_file && (e->type == '5' || strchr(path, '/')))
			return rfail(rd, -EISDIR, "cannot copy a directory to a file: '%s'",
				     str_shown(rd->dst, shown));
	}
	if (!path[0]) {
		/* the destination directory itself: it merges, and keeps its own metadata */
		if (e->type != '5')
			return rfail(rd, -EINVAL, "cannot extract '%s': not a directory",
				     str_shown(e->name, shown));
		return 0;
	}

	r = walk_parent(rd, e->name, path, true, &pfd, &last);
	if (r < 0)
		return r;
	if (fstatat(pfd, last, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno != ENOENT) {
			r = -errno;
			return rfail(rd, r, "cannot extract '%s': %s", str_shown(e->name, shown),
				     strerror(-r));
		}
		exists = false;
	}
	if (exists && S_ISDIR(st.st_mode)) {
		if (e->type == '5') /* it merges; its own owner, mode and time unless trusted */
			return rd->o->merge_meta ? dir_meta_add(rd, path, e) : 0;
		return rfail(rd, -EISDIR, "cannot extract '%s': a directory is in the way",
			     str_shown(e->name, shown));
	}
	if (e->type == '1')
		return extract_hardlink(rd, e, pfd, last, exists ? &st : NULL);
	if (exists && unlinkat(pfd, last, 0) < 0) {
		r = -errno;
		return rfail(rd, r, "cannot replace '%s': %s", str_shown(e->name, shown),
			     strerror(-r));
	}

	switch (e->type) {
	case '0':
		return extract_file(rd, e, pfd, last);
	case '5':
		if (mkdirat(pfd, last, 0700) < 0) {
			r = -errno;
			return rfail(rd, r, "cannot create '%s': %s", str_shown(e->name, shown),
				     strerror(-r));
		}
		return dir_meta_add(rd, path, e);
	case '2':
		if (symlinkat(e->linkname, pfd, last) < 0) {
			r = -errno;
			return rfail(rd, r, "cannot create '%s': %s", str_shown(e->name, shown),
				     strerror(-r));
		}
		return set_meta(rd, e, pfd, last);
	default: {
		mode_t type = e->type == '3' ? S_IFCHR : e->type == '4' ? S_IFBLK : S_IFIFO;

		if (type != S_IFIFO && !rd->o->keep_devices) {
			rd->o->skipped++; /* a device node of the container's is not the host's */
			return 0;
		}

		if (mknodat(pfd, last, type | 0600, makedev(e->devmajor, e->devminor)) < 0) {
			r = -errno;
			return rfail(rd, r, "cannot create '%s': %s", str_shown(e->name, shown),
				     strerror(-r));
		}
		return set_meta(rd, e, pfd, last);
	}
	}
}

/* Directory modes, owners and mtimes, once nothing more goes into them: deepest last-made first. */
static int apply_dir_metas(struct reader *rd)
{
	char shown[STR_SHOWN_MAX];

	for (size_t i = rd->n_dirs; i-- > 0;) {
		const struct dir_meta *m = &rd->dirs[i];
		struct timespec ts[2] = { m->mtime, m->mtime };
		_cleanup_close_ int pfd = -1, fd = -1;
		const char *last;
		int r;

		r = walk_parent(rd, m->path, m->path, false, &pfd, &last);
		if (r < 0)
			return r;
		fd = openat(pfd, last, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || (rd->as_root && rd->o->keep_owners && fchown(fd, m->uid, m->gid) < 0) ||
		    fchmod(fd, rd->o->keep_setid ? m->mode : m->mode & ~(mode_t)(S_ISUID | S_ISGID)) < 0 ||
		    futimens(fd, ts) < 0) {
			r = -errno;
			return rfail(rd, r, "cannot set the mode, owner or time of '%s': %s",
				     str_shown(m->path, shown), strerror(-r));
		}
	}
	return 0;
}

/* Where entries go: into dst if it is a directory, else renamed to dst in its parent. */
static int open_dst(struct reader *rd, const char *dst, char **ret_base)
{
	_cleanup_free_ char *s = NULL;
	char shown[STR_SHOWN_MAX];
	bool wants_dir, exists = true;
	const char *parent;
	struct stat st;
	size_t len = strlen(dst);
	char *slash, *base;
	int r;

	if (len == 0)
		return rfail(rd, -ENOENT, "cannot copy to '': %s", strerror(ENOENT));
	wants_dir = dst[len - 1] == '/' || (len >= 2 && strcmp(dst + len - 2, "/.") == 0) ||
		    strcmp(dst, ".") == 0;
	if (stat(dst, &st) < 0) {
		r = -errno;
		if (r != -ENOENT && r != -ENOTDIR)
			return rfail(rd, r, "cannot copy to '%s': %s", str_shown(dst, shown),
				     strerror(-r));
		if (r == -ENOTDIR && wants_dir) /* "file/" */
			return rfail(rd, r, "cannot copy to '%s': %s", str_shown(dst, shown),
				     strerror(-r));
		exists = false;
	}
	if (exists && S_ISDIR(st.st_mode)) {
		rd->root_fd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (rd->root_fd < 0) {
			r = -errno;
			return rfail(rd, r, "cannot open '%s': %s", str_shown(dst, shown),
				     strerror(-r));
		}
		return 0;
	}
	if (wants_dir) {
		if (exists)
			return rfail(rd, -ENOTDIR, "cannot copy to '%s': %s", str_shown(dst, shown),
				     strerror(ENOTDIR));
		return rfail(rd, -ENOENT, "'%s': no such directory", str_shown(dst, shown));
	}

	/* a new name (or a file to replace) in dst's parent directory */
	s = strdup(dst);
	if (!s)
		return rfail(rd, -ENOMEM, "out of memory");
	slash = strrchr(s, '/');
	base = slash ? slash + 1 : s;
	if (is_dot_or_dotdot(base, strlen(base)))
		return rfail(rd, -ENOENT, "'%s': no such directory", str_shown(dst, shown));
	if (slash == s) {
		parent = "/";
	} else if (slash) {
		*slash = '\0';
		parent = s;
	} else {
		parent = ".";
	}
	rd->root_fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rd->root_fd < 0) {
		r = -errno;
		if (r == -ENOENT || r == -ENOTDIR)
			return rfail(rd, -ENOENT, "'%s': no such directory",
				     str_shown(parent, shown));
		return rfail(rd, r, "cannot open '%s': %s", str_shown(parent, shown), strerror(-r));
	}
	*ret_base = strdup(base);
	if (!*ret_base)
		return rfail(rd, -ENOMEM, "out of memory");
	rd->dst_is_file = exists;
	return 0;
}

int tar_cp_top(const char *src, char *buf, size_t size)
{
	size_t len = strlen(src);
	const char *base;

	while (len > 1 && src[len - 1] == '/')
		len--;
	for (base = src + len; base > src && base[-1] != '/'; base--)
		;
	if ((len == 1 && src[0] == '/') || is_dot_or_dotdot(base, (size_t)(src + len - base)))
		return 1;
	if ((size_t)(src + len - base) >= size)
		return -ENAMETOOLONG;
	memcpy(buf, base, (size_t)(src + len - base));
	buf[src + len - base] = '\0';
	return 0;
}

int tar_cp_in(int in_fd, const char *dst, struct tar_in_opts *o, char *msg, size_t msg_size)
{
	struct reader rd = {
		.o = o,
		.fd = in_fd,
		.msg = msg,
		.msg_size = msg_size,
		.dst = dst,
		.root_fd = -1,
		.cache_fd = -1,
	};
	_cleanup_free_ char *base = NULL;
	struct entry e = { 0 };
	int r;

	rd.as_root = geteuid() == 0;
	rd.buf = malloc(CHUNK);
	if (!rd.buf)
		return rfail(&rd, -ENOMEM, "out of memory");
	r = open_dst(&rd, dst, &base);
	rd.rename = base;
	while (r >= 0) {
		r = read_entry(&rd, &e);
		if (r != 0)
			break;
		r = extract(&rd, &e);
		if (r >= 0 && e.type != '0' && e.type != 0)
			r = in_skip(&rd, e.size + pad_of(e.size), e.name);
		entry_done(&e);
	}
	if (r >= 0)
		r = apply_dir_metas(&rd);

	for (size_t i = 0; i < rd.n_dirs; i++)
		free(rd.dirs[i].path);
	free(rd.dirs);
	free(rd.cache_path);
	free(rd.top);
	free(rd.buf);
	if (rd.cache_fd >= 0)
		close(rd.cache_fd);
	if (rd.root_fd >= 0)
		close(rd.root_fd);
	return r < 0 ? r : 0;
}
