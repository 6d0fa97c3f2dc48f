/* SPDX-License-Identifier: Apache-2.0 */
/* cove: Linux containers, each in its own lightweight virtual machine. */
#include "cli.h"
#include "images.h"

#include "config.h"

#include <stdarg.h>
#include <string.h>

static const struct cli_command commands[] = {
	{ "run", cmd_run, "Run a command in a new container" },
	{ "pull", cmd_pull, "Pull an image from a registry" },
	{ "push", cmd_push, "Push an image to a registry" },
	{ "image", cmd_image, "Manage images (pull, push, ls, inspect, tag, rm, prune, save, load)" },
	{ "images", cmd_images, "List images (image ls)" },
	{ "save", cmd_image_save, "Write images to an OCI or docker archive (image save)" },
	{ "load", cmd_image_load, "Read images from an archive or OCI layout (image load)" },
	{ "registry", cmd_registry, "Log in to and out of registries" },
	{ "system", cmd_system, "Show information about this host (system info)" },
	{ "version", cmd_version, "Show the version" },
};

void cli_error(const char *fmt, ...)
{
	va_list ap;

	fputs("cove: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: cove COMMAND [OPTIONS]\n\n"
		   "Linux containers, each in its own lightweight virtual machine.\n\n"
		   "Commands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nRun 'cove COMMAND --help' for more about a command.\n");
}

int cmd_version(int argc, char **argv)
{
	printf("cove %s\n", COVE_VERSION);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_COVE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0)
		return cmd_version(argc - 1, argv + 1);
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	cli_error("unknown command '%s'; see 'cove --help'", argv[1]);
	return EXIT_COVE;
}
