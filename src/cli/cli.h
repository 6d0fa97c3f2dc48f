/* SPDX-License-Identifier: Apache-2.0 */
/* The cove command line: one file per verb group over the engine (src/engine). */
#pragma once

#include <stdio.h>

#include "engine/engine.h"

/* Print "cove: MESSAGE" on stderr (one line). */
void cli_error(const char *fmt, ...) _printf_(1, 2);
/* A supervisor's notice, as cli_error prints it (for session_opts.notice). */
void cli_notice(const char *line);
/* paths_init, saying why on stderr when it fails. */
int paths_init_or_report(struct cove_paths *p);

struct store;
struct store_image;
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
