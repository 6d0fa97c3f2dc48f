/* SPDX-License-Identifier: Apache-2.0 */
/* The cove command line: one file per verb group over the engine (src/engine). */
#pragma once

#include <pthread.h>
#include <stdio.h>

#include "engine/engine.h"
#include "image/pull.h"

/* Print "cove: MESSAGE" on stderr (one line). */
void cli_error(const char *fmt, ...) _printf_(1, 2);
/* A supervisor's notice, as cli_error prints it (for session_opts.notice). */
void cli_notice(const char *line);
/* paths_init, saying why on stderr when it fails. */
int paths_init_or_report(struct cove_paths *p);
struct container;
/* container_find, saying why on stderr when there is no such container. */
int cli_find(const struct cove_paths *p, const char *ref, struct container *c);

struct store;
struct store_image;
/* Pull progress on stderr (a bar per layer on a terminal, plain lines otherwise; none when
 * quiet), for images_pull and container_make: cli_progress with a cli_progress as userdata.
 * Called from the download threads, hence the lock. */
#define CLI_MAX_BARS 64
struct cli_bar {
	char id[16];
	uint64_t done, total;
	const char *state; /* NULL while downloading */
};
struct cli_progress {
	bool quiet;
	bool tty;
	const char *ref;
	pthread_mutex_t lock;
	struct cli_bar bars[CLI_MAX_BARS];
	size_t nbars;
	size_t drawn; /* lines of bars on the screen */
};
void cli_progress_init(struct cli_progress *p, const char *ref, bool quiet);
void cli_progress(enum pull_event ev, const char *digest, uint64_t size, void *userdata);
/* images_pull with pull progress on stderr (bars on a terminal), none when quiet. */
int cli_pull(struct store *s, const char *ref, const char *platform, bool quiet,
	     struct store_image *ret, struct cove_error *err);

/* A command of a group (see cli_dispatch in options.h); summary NULL: an alias, not listed. */
struct cli_command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

int cmd_run(int argc, char **argv);
int cmd_create(int argc, char **argv);
int cmd_start(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_kill(int argc, char **argv);
int cmd_restart(int argc, char **argv);
int cmd_ctr_rm(int argc, char **argv);
int cmd_wait(int argc, char **argv);
int cmd_attach(int argc, char **argv);
int cmd_ctr_prune(int argc, char **argv);
int cmd_exec(int argc, char **argv);
int cmd_cp(int argc, char **argv);
int cmd_ps(int argc, char **argv);
int cmd_ctr_inspect(int argc, char **argv);
int cmd_port(int argc, char **argv);
int cmd_logs(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_container(int argc, char **argv);
int cmd_system(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_image(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_push(int argc, char **argv);
int cmd_images(int argc, char **argv);
int cmd_image_save(int argc, char **argv);
int cmd_image_load(int argc, char **argv);
int cmd_registry(int argc, char **argv);
int cmd_network(int argc, char **argv);
int cmd_volume(int argc, char **argv);
