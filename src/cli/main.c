/* SPDX-License-Identifier: Apache-2.0 */
/* cove: Linux containers, each in its own lightweight virtual machine. */
#include "cli.h"
#include "options.h"
#include "engine/container.h"

#include "config.h"

#include <stdarg.h>
#include <string.h>

/* Every command; the container verbs (the first section) also answer to `cove container VERB`
 * (docker's and Apple's spelling). */
static const struct cli_command commands[] = {
	{ "Containers:", NULL, NULL },
	{ "run", cmd_run, "Run a command in a new container" },
	{ "create", cmd_create, "Create a container without starting it" },
	{ "start", cmd_start, "Start created or stopped containers" },
	{ "stop", cmd_stop, "Stop running containers" },
	{ "restart", cmd_restart, "Stop and start containers" },
	{ "kill", cmd_kill, "Send a signal to containers" },
	{ "rm", cmd_ctr_rm, "Remove containers" },
	{ "ls", cmd_ps, "List containers" },
	{ "ps", cmd_ps, "List containers (ls)" },
	{ "list", cmd_ps, NULL },
	{ "inspect", cmd_ctr_inspect, "Show containers' configuration and state as JSON" },
	{ "logs", cmd_logs, "Show a container's output" },
	{ "exec", cmd_exec, "Run a command in a running container" },
	{ "attach", cmd_attach, "Attach to a running container's main process" },
	{ "wait", cmd_wait, "Wait for containers to stop and print their exit codes" },
	{ "stats", cmd_stats, "Show containers' CPU, memory, disk and network use" },
	{ "cp", cmd_cp, "Copy files between a container and the host" },
	{ "port", cmd_port, "Show a container's published ports" },
	{ "prune", cmd_ctr_prune, "Remove every stopped container" },
	{ "Images and more:", NULL, NULL },
	{ "pull", cmd_pull, "Pull an image from a registry" },
	{ "push", cmd_push, "Push an image to a registry" },
	{ "image", cmd_image, "Manage images (pull, push, ls, inspect, tag, rm, prune, save, load)" },
	{ "images", cmd_images, "List images (image ls)" },
	{ "save", cmd_image_save, "Write images to an OCI or docker archive (image save)" },
	{ "load", cmd_image_load, "Read images from an archive or OCI layout (image load)" },
	{ "network", cmd_network, "Manage networks (create, ls, inspect, rm, prune)" },
	{ "volume", cmd_volume, "Manage volumes (create, ls, inspect, rm, prune)" },
	{ "registry", cmd_registry, "Log in to and out of registries" },
	{ "container", cmd_container, "Manage containers (the verbs above)" },
	{ "system", cmd_system, "Show information about this host (system info)" },
	{ "version", cmd_version, "Show the version" },
};
#define CONTAINER_FIRST 1  /* commands[1..CONTAINER_END) are the container verbs */
#define CONTAINER_END 19

/* One line, whatever it quotes: text from a guest or an image (an ERROR frame, a console line)
 * reaches the terminal without its control characters (escape sequences, newlines). */
void cli_error(const char *fmt, ...)
{
	char line[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "cove: %s\n", str_one_line(line));
}

void cli_notice(const char *line)
{
	cli_error("%s", line);
}

int paths_init_or_report(struct cove_paths *p)
{
	struct cove_error err = { 0 };

	if (paths_init(p, &err) < 0) {
		cli_error("%s", err.msg);
		return -EINVAL;
	}
	return 0;
}

int cli_find(const struct cove_paths *p, const char *ref, struct container *c)
{
	struct cove_error err = { 0 };

	if (container_find(p, ref, c, &err) < 0) {
		cli_error("%s", err.msg);
		return -ENOENT;
	}
	return 0;
}

int cmd_version(int argc, char **argv)
{
	printf("cove %s\n", COVE_VERSION);
	return 0;
}

int cmd_container(int argc, char **argv)
{
	return cli_dispatch("container", "Manage containers.", commands + CONTAINER_FIRST,
			    CONTAINER_END - CONTAINER_FIRST, argc, argv);
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "--version") == 0)
		return cmd_version(argc - 1, argv + 1);
	return cli_dispatch(NULL, "Linux containers, each in its own lightweight virtual machine.",
			    commands, ARRAY_SIZE(commands), argc, argv);
}
