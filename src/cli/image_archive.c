/* SPDX-License-Identifier: Apache-2.0 */
/* cove image save|load (and the `cove save` / `cove load` shortcuts). */
#define _GNU_SOURCE
#include "cli.h"
#include "engine/images.h"

#include "image/archives.h"
#include "image/reference.h"

#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


static void save_usage(FILE *f)
{
	fprintf(f,
		"Usage: cove image save [-o FILE] [--format oci|docker] IMAGE...\n\n"
		"Write images to a tar archive, on stdout unless -o is given.\n\n"
		"  -o, --output FILE   write to FILE (replaced only once the archive is complete)\n"
		"      --format FMT    oci (default): an OCI image layout, as skopeo's "
		"oci-archive;\n"
		"                      docker: the `docker save` format, for `docker load`\n");
}

static void load_usage(FILE *f)
{
	fprintf(f, "Usage: cove image load [-i FILE] [-q] [--platform OS/ARCH[/VARIANT]]\n\n"
		   "Load images from a tar archive (OCI or `docker save`, plain or compressed) or\n"
		   "an OCI layout directory; the archive is read from stdin unless -i is given.\n\n"
		   "  -i, --input FILE    read FILE (an archive or an OCI layout directory)\n"
		   "  -q, --quiet         print nothing\n"
		   "      --platform P    for multi-platform images: the platform to unpack\n");
}

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

int cmd_image_save(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "format", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct cove_error err = { 0 };
	enum image_archive_format fmt = IMAGE_ARCHIVE_OCI;
	struct cove_paths paths;
	struct store *s = NULL;
	const char *output = NULL;
	_cleanup_free_ const char **refs = NULL;
	_cleanup_free_ struct store_image *imgs = NULL;
	char tmp[PATH_MAX + 8] = "";
	int c, fd = -1, rc = EXIT_COVE, n;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+o:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			output = optarg;
			break;
		case 'f':
			if (parse_format(optarg, &fmt) < 0) {
				cli_error("unknown archive format '%s'; use oci or docker", optarg);
				return EXIT_COVE;
			}
			break;
		case 'h':
			save_usage(stdout);
			return 0;
		default:
			cli_error("unknown option '%s'; see 'cove image save --help'",
				  argv[optind - 1]);
			return EXIT_COVE;
		}
	}
	n = argc - optind;
	if (n < 1) {
		cli_error("save needs at least one IMAGE; see 'cove image save --help'");
		return EXIT_COVE;
	}
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
		if (images_find(s, argv[optind + i], &imgs[i], &err) < 0) {
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

int cmd_image_load(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "input", required_argument, NULL, 'i' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "platform", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct cove_error err = { 0 };
	struct image_load_result res = { 0 };
	struct image_load_opts o = { .min_snapshot_size = images_snapshot_size() };
	struct image_platform plat;
	struct cove_paths paths;
	struct store *s = NULL;
	const char *input = NULL;
	bool quiet = false;
	int c, r;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+i:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'i':
			input = optarg;
			break;
		case 'q':
			quiet = true;
			break;
		case 'p':
			if (image_platform_parse(optarg, &plat, &err) < 0) {
				cli_error("%s", err.msg);
				return EXIT_COVE;
			}
			o.platform = &plat;
			break;
		case 'h':
			load_usage(stdout);
			return 0;
		default:
			cli_error("unknown option '%s'; see 'cove image load --help'",
				  argv[optind - 1]);
			return EXIT_COVE;
		}
	}
	if (optind != argc) {
		cli_error("load takes no arguments (use -i FILE); see 'cove image load --help'");
		return EXIT_COVE;
	}
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
