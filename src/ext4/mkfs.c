/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cove-mkfs: build an ext4 image from host trees and tar layers, without mounting anything.
 *
 *     cove-mkfs [--size SIZE] [--inodes N] [--label L] [--journal]
 *               (--dir DIR | --tar FILE|-)... IMAGE
 *
 * Sources are applied in the order given; each --tar is one layer (OCI whiteouts honoured).
 * Without --size the image is sized from a first pass over every source (dirs are walked,
 * tar files read through once) plus headroom; a tar from stdin then needs --size.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <getopt.h>
#include <string.h>
#include <sys/stat.h>

#include "../util/error.h"
#include "../util/util.h"
#include "writer.h"

#define MAX_SOURCES 256

struct source {
	bool is_tar;
	const char *path; /* "-" = stdin for a tar */
};

static void usage(FILE *f)
{
	fputs("usage: cove-mkfs [--size SIZE] [--inodes N] [--label LABEL] [--journal]\n"
	      "                 (--dir DIR | --tar FILE|-)... IMAGE\n"
	      "\n"
	      "Build an ext4 image at IMAGE from host directories and tar layers (plain, gzip,\n"
	      "bzip2, xz or zstd), applied in order with OCI whiteout semantics.\n"
	      "\n"
	      "  --size SIZE    image size (e.g. 512m, 2g); default: sized from the sources\n"
	      "                 with headroom (needs every --tar to be a regular file)\n"
	      "  --inodes N     number of inodes; default: from the size (or the sources)\n"
	      "  --label LABEL  volume label, at most 16 bytes\n"
	      "  --journal      add a jbd2 journal\n"
	      "  --dir DIR      copy the tree under DIR into /\n"
	      "  --tar FILE     apply a tar layer; '-' reads standard input\n",
	      f);
}

static int open_tar(const char *path, struct cove_error *err)
{
	int fd;

	if (strcmp(path, "-") == 0)
		return STDIN_FILENO;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cove_error_set(err, errno, "unable to open '%s': %m", path);
	return fd;
}

/* First pass: add up what every source needs. */
static int estimate(const struct source *src, size_t n, uint64_t *ret_bytes, uint64_t *ret_inodes,
		    struct cove_error *err)
{
	uint64_t bytes = 0, inodes = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t b = 0, in = 0;
		int r;

		if (src[i].is_tar) {
			_cleanup_close_ int fd = -1;
			struct stat st;

			if (strcmp(src[i].path, "-") == 0)
				return cove_error_set(
				    err, EINVAL,
				    "--size is required when a layer is read from "
				    "standard input");
			fd = open_tar(src[i].path, err);
			if (fd < 0)
				return fd;
			if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
				return cove_error_set(
				    err, EINVAL, "--size is required: '%s' is not a regular file",
				    src[i].path);
			r = ext4_estimate_tar(fd, &b, &in, err);
			if (r < 0)
				return cove_error_prefix(err, "'%s'", src[i].path);
		} else {
			r = ext4_estimate_dir(src[i].path, &b, &in, err);
			if (r < 0)
				return r;
		}
		bytes += b;
		inodes += in;
	}
	*ret_bytes = bytes;
	*ret_inodes = inodes;
	return 0;
}

static void writer_freep(struct ext4_writer **w)
{
	ext4_writer_free(*w);
}

/* Everything but printing: the writer is freed (its temp file removed) on every path. */
static int mkfs(int argc, char **argv, struct cove_error *err)
{
	static const struct option options[] = {
	    {"size", required_argument, NULL, 's'},  {"inodes", required_argument, NULL, 'i'},
	    {"label", required_argument, NULL, 'L'}, {"journal", no_argument, NULL, 'j'},
	    {"dir", required_argument, NULL, 'd'},   {"tar", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},	     {}};
	_cleanup_(writer_freep) struct ext4_writer *w = NULL;
	struct ext4_writer_opts o = {};
	struct source src[MAX_SOURCES];
	uint64_t inodes = 0;
	const char *image;
	size_t n = 0;
	int c, r;

	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 's':
			if (parse_size(optarg, &o.size_bytes) < 0 || o.size_bytes == 0)
				return cove_error_set(
				    err, EINVAL, "invalid --size '%s' (try 512m or 2g)", optarg);
			break;
		case 'i':
			if (parse_u64(optarg, UINT32_MAX, &inodes) < 0 || inodes == 0)
				return cove_error_set(err, EINVAL, "invalid --inodes '%s'", optarg);
			break;
		case 'L':
			o.label = optarg;
			break;
		case 'j':
			o.journal = true;
			break;
		case 'd':
		case 't':
			if (n == MAX_SOURCES)
				return cove_error_set(
				    err, E2BIG, "more than %d --dir/--tar sources", MAX_SOURCES);
			src[n++] = (struct source){.is_tar = c == 't', .path = optarg};
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return cove_error_set(err, EINVAL,
					      "invalid arguments (see cove-mkfs --help)");
		}
	}
	if (optind + 1 != argc)
		return cove_error_set(err, EINVAL,
				      "expected exactly one IMAGE argument (see cove-mkfs --help)");
	if (n == 0)
		return cove_error_set(
		    err, EINVAL, "nothing to put in the image: give at least one --dir or --tar");
	image = argv[optind];

	if (o.size_bytes == 0) {
		uint64_t bytes = 0, est_inodes = 0;

		r = estimate(src, n, &bytes, &est_inodes, err);
		if (r < 0)
			return r;
		ext4_writer_opts_autosize(&o, bytes, est_inodes);
	}
	if (inodes)
		o.inodes = inodes;

	r = ext4_writer_new(image, &o, &w, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		if (src[i].is_tar) {
			_cleanup_close_ int fd = open_tar(src[i].path, err);

			if (fd < 0)
				return fd;
			r = ext4_writer_add_tar(w, fd, err);
			if (fd == STDIN_FILENO)
				fd = -1;
			if (r < 0)
				return cove_error_prefix(err, "'%s'", src[i].path);
		} else {
			r = ext4_writer_add_dir(w, src[i].path, err);
			if (r < 0)
				return r;
		}
	}
	return ext4_writer_finish(w, err);
}

int main(int argc, char **argv)
{
	struct cove_error err = {};
	int r;

	r = mkfs(argc, argv, &err);
	if (r < 0) {
		fprintf(stderr, "cove-mkfs: %s\n", err.msg);
		return 1;
	}
	return 0;
}
