/* SPDX-License-Identifier: Apache-2.0 */
/* See docs/layout.md and QEMU's docs/interop/qcow2.txt for the format. */
#include "qcow2.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#define QCOW2_MAGIC 0x514649fbu
#define CLUSTER_BITS 16
#define CLUSTER_SIZE (1u << CLUSTER_BITS)
#define HEADER_LENGTH 104
#define EXT_BACKING_FORMAT 0xe2792acau
#define MAX_L1_CLUSTERS 64 /* 64 clusters of L1 map 256 TiB */

static void be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void be64(uint8_t *p, uint64_t v)
{
	be32(p, (uint32_t)(v >> 32));
	be32(p + 4, (uint32_t)v);
}

static void be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

int qcow2_create_overlay(const char *path, const char *backing, const char *backing_format,
			 uint64_t size, struct cove_error *err)
{
	/* one L2 table maps CLUSTER_SIZE / 8 clusters */
	const uint64_t l2_span = (uint64_t)CLUSTER_SIZE * (CLUSTER_SIZE / 8);
	uint64_t l1_size = (size + l2_span - 1) / l2_span;
	uint64_t l1_clusters = (l1_size * 8 + CLUSTER_SIZE - 1) / CLUSTER_SIZE;
	uint64_t nclusters = 3 + l1_clusters; /* header, refcount table, refcount block, L1 */
	size_t blen = strlen(backing), flen = strlen(backing_format), off;
	_cleanup_free_ uint8_t *buf = NULL;
	_cleanup_close_ int fd = -1;
	int r;

	if (blen == 0 || blen > 1023 || backing[0] != '/')
		return cove_error_set(err, EINVAL, "invalid backing image path '%s'", backing);
	if (flen == 0 || flen > 16 || size == 0 || size % 512)
		return cove_error_set(err, EINVAL, "invalid qcow2 overlay parameters");
	if (l1_clusters == 0 || l1_clusters > MAX_L1_CLUSTERS)
		return cove_error_set(err, EFBIG, "disk size %llu is too large for an overlay",
				      (unsigned long long)size);

	/* cluster 0: header, extensions, backing file name */
	buf = calloc(1, CLUSTER_SIZE * 3);
	if (!buf)
		return cove_error_set(err, ENOMEM, "out of memory");
	be32(buf + 0, QCOW2_MAGIC);
	be32(buf + 4, 3);
	be32(buf + 20, CLUSTER_BITS);
	be64(buf + 24, size);
	be32(buf + 36, (uint32_t)l1_size);
	be64(buf + 40, 3ULL * CLUSTER_SIZE);          /* L1 table */
	be64(buf + 48, 1ULL * CLUSTER_SIZE);          /* refcount table */
	be32(buf + 56, 1);                            /* refcount table clusters */
	be32(buf + 96, 4);                            /* refcount_order: 16-bit refcounts */
	be32(buf + 100, HEADER_LENGTH);
	off = HEADER_LENGTH;
	be32(buf + off, EXT_BACKING_FORMAT);
	be32(buf + off + 4, (uint32_t)flen);
	memcpy(buf + off + 8, backing_format, flen);
	off += 8 + ((flen + 7) & ~(size_t)7);
	off += 8; /* end of extensions: type 0, length 0 (already zero) */
	be64(buf + 8, off);                           /* backing file name offset */
	be32(buf + 16, (uint32_t)blen);
	memcpy(buf + off, backing, blen);

	/* cluster 1: refcount table -> cluster 2: refcount block */
	be64(buf + CLUSTER_SIZE, 2ULL * CLUSTER_SIZE);
	for (uint64_t i = 0; i < nclusters; i++)
		be16(buf + 2 * CLUSTER_SIZE + 2 * i, 1);

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return cove_error_set(err, errno, "cannot create '%s': %s", path, strerror(errno));
	r = write_full(fd, buf, CLUSTER_SIZE * 3);
	/* the L1 table: zeroes, as a hole */
	if (r == 0 && ftruncate(fd, (off_t)(nclusters * CLUSTER_SIZE)) < 0)
		r = -errno;
	if (r < 0) {
		unlink(path);
		return cove_error_set(err, r, "cannot write '%s': %s", path, strerror(-r));
	}
	return 0;
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int qcow2_backing(int fd, char *buf, size_t size)
{
	uint8_t h[20];
	uint64_t off;
	uint32_t len;
	ssize_t n;

	if (pread(fd, h, sizeof(h), 0) != (ssize_t)sizeof(h) || rd32(h) != QCOW2_MAGIC)
		return -EINVAL;
	off = (uint64_t)rd32(h + 8) << 32 | rd32(h + 12);
	len = rd32(h + 16);
	if (off == 0) {
		if (size == 0)
			return -ENAMETOOLONG;
		buf[0] = '\0';
		return 0;
	}
	if (len == 0 || len > 1023 || len >= size || off > CLUSTER_SIZE)
		return -EINVAL;
	n = pread(fd, buf, len, (off_t)off);
	if (n != (ssize_t)len || buf[0] != '/' || memchr(buf, '\0', len))
		return -EINVAL;
	buf[len] = '\0';
	return 0;
}

int disk_virtual_size(const char *path, const char *format, uint64_t *ret)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint8_t h[32];
	struct stat st;

	if (fd < 0)
		return -errno;
	if (strcmp(format, "qcow2") != 0) {
		if (fstat(fd, &st) < 0)
			return -errno;
		*ret = (uint64_t)st.st_size;
		return 0;
	}
	if (pread(fd, h, sizeof(h), 0) != (ssize_t)sizeof(h))
		return -EINVAL;
	if (((uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3]) != QCOW2_MAGIC)
		return -EINVAL;
	*ret = 0;
	for (int i = 24; i < 32; i++)
		*ret = *ret << 8 | h[i];
	return 0;
}
