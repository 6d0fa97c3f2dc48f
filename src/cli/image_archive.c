/* SPDX-License-Identifier: Apache-2.0 */
/* cove image save|load (and the `cove save` / `cove load` shortcuts). */
#define _GNU_SOURCE
#include "cli.h"
#include "options.h"
#include "engine/images.h"

#include "image/archives.h"
#include "image/reference.h"

#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


static const struct cli_option save_options[] = {
	{ 'o', 'o', "output", "FILE", "write to FILE (replaced only once the archive is complete)" },
	{ 'f', 0, "format", "FMT",
	  "oci (default): an OCI image layout, as skopeo's oci-archive;\ndocker: the `docker save` "
	  "format, for `docker load`" },
	{ 0 },
};
static const struct cli_verb save_verb = {
	"image save", "[OPTIONS] IMAGE...",
	"Write images to a tar archive, on stdout unless -o is given.", save_options,
	.min_operands = 1, .max_operands = -1, .missing = "IMAGE",
};

static const struct cli_option load_options[] = {
	{ 'i', 'i', "input", "FILE", "read FILE (an archive or an OCI layout directory)" },
	{ 'q', 'q', "quiet", NULL, "print nothing" },
	{ 'p', 0, "platform", "OS/ARCH[/VARIANT]",
	  "for multi-platform images: the platform to unpack" },
	{ 0 },
};
static const struct cli_verb load_verb = {
	"image load", "[OPTIONS]",
	"Load images from a tar archive (OCI or `docker save`, plain or compressed) or\n"
	"an OCI layout directory; the archive is read from stdin unless -i is given.",
	load_options, .max_operands = 0,
};

static int parse_format(const char *s, enum image_archive_format *ret)
{
	if (strcmp(s, "oci") == 0 || strcmp(s, "oci-archive") == 0)
		*ret = IMAGE_ARCHIVE_OCI;
	else if (strcmp(s, "docker") == 0 || strcmp(s, "docker-archive") == 0)
		*ret = IMAGE_ARCHIVE_DOCKER;
	else
		return -EINVAL;
	return 0;
}

/*
 * Where the archive goes: a regular file (new or replaced) is written as "FILE.XXXXXX" and
 * renamed over FILE once complete; anything else (/dev/null, a pipe) is written directly.
 */
static int open_output(const char *path, char *tmp, size_t size, struct cove_error *err)
{
	struct stat st;
	mode_t mask;
	int fd;

	tmp[0] = '\0';
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		if (S_ISDIR(st.st_mode))
			return cove_error_set(err, EISDIR, "'%s' is a directory", path);
		fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
		if (fd < 0)
			return cove_error_set(err, errno, "unable to open '%s': %m", path);
		if (isatty(fd)) {
			close(fd);
			return cove_error_set(err, EINVAL,
					      "refusing to write an image archive to a terminal");
		}
		return fd;
	}
	if (str_printf(tmp, size, "%s.XXXXXX", path) < 0)
		return cove_error_set(err, ENAMETOOLONG, "output path '%s' is too long", path);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		int e = errno;

		tmp[0] = '\0';
		return cove_error_set(err, e, "unable to create '%s': %s", path, strerror(e));
	}
	mask = umask(0);
	umask(mask);
	(void)fchmod(fd, 0666 & ~mask);
	return fd;
}

struct save_opts {
	const char *output;
	enum image_archive_format fmt;
};

static int save_opt(int c, const char *value, void *ud)
{
	struct save_opts *o = ud;

	if (c == 'o') {
		o->output = value;
	} else if (c == 'f' && parse_format(value, &o->fmt) < 0) {
		cli_error("unknown archive format '%s'; use oci or docker", value);
		return -EINVAL;
	}
	return 0;
}

int cmd_image_save(int argc, char **argv)
{
	struct save_opts so = { .fmt = IMAGE_ARCHIVE_OCI };
	int first;
	struct cove_error err = { 0 };
	enum image_archive_format fmt = IMAGE_ARCHIVE_OCI;
	struct cove_paths paths;
	struct store *s = NULL;
	const char *output = NULL;
	_cleanup_free_ const char **refs = NULL;
	_cleanup_free_ struct store_image *imgs = NULL;
	char tmp[PATH_MAX + 8] = "";
	int c, fd = -1, rc = EXIT_COVE, n;

	c = cli_parse(&save_verb, argc, argv, save_opt, &so, &first);
	if (c)
		return c > 0 ? 0 : EXIT_COVE;
	output = so.output;
	fmt = so.fmt;
	n = argc - first;
	if (output && strcmp(output, "-") == 0)
		output = NULL;
	if (!output && isatty(STDOUT_FILENO)) {
		cli_error("refusing to write an image archive to a terminal; use -o FILE or "
			  "redirect the output");
		return EXIT_COVE;
	}
	refs = calloc((size_t)n, sizeof(*refs));
	imgs = calloc((size_t)n, sizeof(*imgs));
	if (!refs || !imgs) {
		cli_error("out of memory");
		return EXIT_COVE;
	}
	if (paths_init(&paths, &err) < 0 || images_open(&paths, &s, &err) < 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	for (int i = 0; i < n; i++) {
		if (images_find(s, argv[first + i], &imgs[i], &err) < 0) {
			cli_error("%s", err.msg);
			goto out;
		}
		refs[i] = imgs[i].reference;
	}
	if (output) {
		fd = open_output(output, tmp, sizeof(tmp), &err);
		if (fd < 0) {
			cli_error("%s", err.msg);
			goto out;
		}
	}
	if (image_save(s, refs, (size_t)n, output ? fd : STDOUT_FILENO, fmt, &err) < 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (tmp[0]) {
		if (fsync(fd) < 0 || rename(tmp, output) < 0) {
			cli_error("unable to write '%s': %m", output);
			goto out;
		}
		tmp[0] = '\0';
	}
	rc = 0;
out:
	if (tmp[0])
		(void)unlink(tmp);
	if (fd >= 0)
		close(fd);
	store_free(s);
	return rc;
}

static void print_loaded(const struct image_loaded *l)
{
	struct cove_error ignore = { 0 };
	struct reference r;
	char name[REFERENCE_STRING_MAX];

	if (!l->named) {
		printf("Loaded image ID: %s\n", l->manifest_digest);
		return;
	}
	if (reference_parse(l->reference, &r, &ignore) < 0 ||
	    reference_familiar(&r, name, sizeof(name)) < 0)
		(void)str_copy(name, sizeof(name), l->reference);
	printf("Loaded image: %s\n", name);
}

struct load_opts {
	const char *input;
	bool quiet, have_platform;
	struct image_platform platform;
};

static int load_opt(int c, const char *value, void *ud)
{
	struct load_opts *o = ud;
	struct cove_error err = { 0 };

	if (c == 'i') {
		o->input = value;
	} else if (c == 'q') {
		o->quiet = true;
	} else if (c == 'p') {
		if (image_platform_parse(value, &o->platform, &err) < 0) {
			cli_error("%s", err.msg);
			return -EINVAL;
		}
		o->have_platform = true;
	}
	return 0;
}

int cmd_image_load(int argc, char **argv)
{
	struct load_opts lo = { 0 };
	int first;
	struct cove_error err = { 0 };
	struct image_load_result res = { 0 };
	struct image_load_opts o = { .min_snapshot_size = images_snapshot_size() };
	struct cove_paths paths;
	struct store *s = NULL;
	const char *input = NULL;
	bool quiet = false;
	int r;

	r = cli_parse(&load_verb, argc, argv, load_opt, &lo, &first);
	if (r)
		return r > 0 ? 0 : EXIT_COVE;
	input = lo.input;
	quiet = lo.quiet;
	if (lo.have_platform)
		o.platform = &lo.platform;
	if (input && strcmp(input, "-") == 0)
		input = NULL;
	if (!input && isatty(STDIN_FILENO)) {
		cli_error("refusing to read an image archive from a terminal; use -i FILE or "
			  "redirect the input");
		return EXIT_COVE;
	}
	if (paths_init(&paths, &err) < 0 || images_open(&paths, &s, &err) < 0) {
		cli_error("%s", err.msg);
		store_free(s);
		return EXIT_COVE;
	}
	r = input ? image_load(s, input, &o, &res, &err)
		  : image_load_fd(s, STDIN_FILENO, &o, &res, &err);
	store_free(s);
	if (r < 0) {
		cli_error("%s", err.msg);
		return EXIT_COVE;
	}
	for (size_t i = 0; !quiet && i < res.n; i++)
		print_loaded(&res.images[i]);
	image_load_result_done(&res);
	return 0;
}
