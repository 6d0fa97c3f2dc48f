/* SPDX-License-Identifier: Apache-2.0 */
/* cove volume create|ls|inspect|rm|prune, docker's verbs over engine/volume.c. */
#include "cli.h"
#include "options.h"

#include "engine/volume.h"

#include <string.h>

enum { OPT_OPT = 256, OPT_LABEL, OPT_FORMAT, OPT_DRIVER };

struct vol_flags {
	struct volume_create_request q;
	bool quiet, json, force, all;
};

/* --opt type=block|dir, --opt size=SIZE (docker's -o) */
static int add_opt(struct vol_flags *o, const char *kv)
{
	static char type[8];

	if (strncmp(kv, "type=", 5) == 0 && (strcmp(kv + 5, "block") == 0 || strcmp(kv + 5, "dir") == 0)) {
		str_copy(type, sizeof(type), kv + 5);
		o->q.type = type;
		return 0;
	}
	if (strncmp(kv, "size=", 5) == 0 && parse_size(kv + 5, &o->q.size) == 0 && o->q.size > 0)
		return 0;
	cli_error("invalid --opt '%s': expected type=block (an ext4 disk, the default), type=dir "
		  "(a directory running containers can share) or size=SIZE (e.g. 10g; block only)",
		  kv);
	return -EINVAL;
}

static int vol_opt(int c, const char *value, void *ud)
{
	struct vol_flags *o = ud;

	switch (c) {
	case OPT_OPT:
		return add_opt(o, value);
	case OPT_DRIVER:
		if (strcmp(value, "local") != 0) {
			cli_error("invalid --driver '%s': the only volume driver is local", value);
			return -EINVAL;
		}
		break;
	case OPT_LABEL:
		return cli_add_label(&o->q.labels, value);
	case OPT_FORMAT:
		return cli_parse_format(value, &o->json);
	case 'q':
		o->quiet = true;
		break;
	case 'f':
		o->force = true;
		break;
	case 'a':
		o->all = true;
		break;
	}
	return 0;
}

static int cmd_vol_create(int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{ OPT_OPT, 'o', "opt", "K=V",
		  "type=block (default: an ext4 disk of its own, one\nrunning container at a time) or "
		  "type=dir (a directory,\nshared live by running containers); size=SIZE of a\nblock "
		  "volume (default 32g, sparse)" },
		{ OPT_LABEL, 0, "label", "K=V", "set a label on the volume" },
		{ OPT_DRIVER, 'd', "driver", "local", "the only driver there is" },
		{ 0 },
	};
	static const struct cli_verb v = {
		"volume create", "[OPTIONS] [NAME]",
		"Create a volume (an existing one of that name is left as it is). Without NAME it "
		"gets a\nrandom one.",
		opts, .max_operands = 1,
	};
	struct vol_flags o = { 0 };
	struct cove_error err = { 0 };
	struct cove_paths paths;
	struct volume vol;
	int first, r;

	if ((r = cli_parse_verb(&v, argc, argv, vol_opt, &o, &first)) >= 0)
		goto out;
	o.q.name = first < argc ? argv[first] : NULL;
	if (o.q.size && o.q.type && strcmp(o.q.type, "dir") == 0) {
		cli_error("--opt size= is for block volumes: a dir volume takes what the host's disk has");
		r = EXIT_COVE;
		goto out;
	}
	r = 0;
	if (paths_init_or_report(&paths) < 0) {
		r = EXIT_COVE;
	} else if (volume_create(&paths, &o.q, &vol, &err) < 0) {
		cli_error("%s", err.msg);
		r = EXIT_COVE;
	} else {
		printf("%s\n", vol.name);
		volume_done(&vol);
	}
out:
	json_decref(o.q.labels);
	return r;
}

/* Parse, then list every volume: -1 to go on, else the exit code. */
static int parse_and_list(const struct cli_verb *v, int argc, char **argv, struct vol_flags *o,
			  struct cove_paths *paths, struct volume **all, size_t *n)
{
	struct cove_error err = { 0 };
	int first, r;

	if ((r = cli_parse_verb(v, argc, argv, vol_opt, o, &first)) >= 0)
		return r;
	if (paths_init_or_report(paths) < 0)
		return EXIT_COVE;
	if (volume_list(paths, all, n, &err) < 0) {
		cli_error("%s", err.msg);
		return EXIT_COVE;
	}
	return -1;
}

static int cmd_vol_ls(int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{ 'q', 'q', "quiet", NULL, "only names" },
		{ OPT_FORMAT, 0, "format", "FMT", "table (default) or json" },
		{ 0 },
	};
	static const struct cli_verb v = { "volume ls", "[OPTIONS]", "List volumes.", opts,
					   .max_operands = 0 };
	struct vol_flags o = { 0 };
	struct cove_paths paths;
	struct volume *all = NULL;
	size_t n = 0;
	int r;

	if ((r = parse_and_list(&v, argc, argv, &o, &paths, &all, &n)) >= 0)
		return r;
	if (!o.quiet && !o.json)
		printf("%-8s %-6s %s\n", "DRIVER", "TYPE", "VOLUME NAME");
	for (size_t i = 0; i < n; i++) {
		if (o.quiet) {
			printf("%s\n", all[i].name);
		} else if (o.json) {
			json_t *j = volume_json(&all[i]);
			char *line = j ? json_dumps(j, JSON_COMPACT) : NULL;

			if (line)
				printf("%s\n", line);
			free(line);
			json_decref(j);
		} else {
			printf("%-8s %-6s %s\n", "local", all[i].block ? "block" : "dir", all[i].name);
		}
	}
	volume_list_free(all, n);
	return 0;
}

static json_t *inspect_one(const char *name, void *ud, struct cove_error *err)
{
	struct volume vol;
	json_t *j;

	if (volume_get(ud, name, &vol, err) < 0)
		return NULL;
	j = volume_json(&vol);
	volume_done(&vol);
	if (!j)
		cove_error_set(err, ENOMEM, "out of memory");
	return j;
}

static int cmd_vol_inspect(int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{ OPT_FORMAT, 0, "format", "json", "the only format there is" },
		{ 0 },
	};
	static const struct cli_verb v = { "volume inspect", "[OPTIONS] VOLUME...",
					   "Show volumes as JSON (docker's shape).", opts,
					   .min_operands = 1, .max_operands = -1,
					   .missing = "VOLUME" };
	struct vol_flags o = { 0 };
	struct cove_paths paths;
	int first, r;

	if ((r = cli_parse_verb(&v, argc, argv, vol_opt, &o, &first)) >= 0)
		return r;
	if (paths_init_or_report(&paths) < 0)
		return EXIT_COVE;
	return cli_inspect_each(argv + first, argc - first, inspect_one, &paths);
}

static int remove_one(const char *name, void *ud, struct cove_error *err)
{
	return volume_remove(ud, name, err);
}

static int cmd_vol_rm(int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{ 'f', 'f', "force", NULL, "no error for a volume that is not there" },
		{ 0 },
	};
	static const struct cli_verb v = { "volume rm", "[OPTIONS] VOLUME...",
					   "Remove volumes no container uses, with their data.", opts,
					   .min_operands = 1, .max_operands = -1,
					   .missing = "VOLUME" };
	struct vol_flags o = { 0 };
	struct cove_paths paths;
	int first, r;

	if ((r = cli_parse_verb(&v, argc, argv, vol_opt, &o, &first)) >= 0)
		return r;
	if (paths_init_or_report(&paths) < 0)
		return EXIT_COVE;
	return cli_remove_each(argv + first, argc - first, o.force, remove_one, &paths);
}

static int cmd_vol_prune(int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{ 'a', 'a', "all", NULL, "named volumes too, not only anonymous ones" },
		{ 'f', 'f', "force", NULL, "do not ask (cove never asks)" },
		{ 0 },
	};
	static const struct cli_verb v = { "volume prune", "[OPTIONS]",
					   "Remove the anonymous volumes no container uses (with -a, "
					   "every unused volume).",
					   opts, .max_operands = 0 };
	struct vol_flags o = { 0 };
	struct cove_paths paths;
	struct volume *all = NULL;
	size_t n = 0;
	int r;

	if ((r = parse_and_list(&v, argc, argv, &o, &paths, &all, &n)) >= 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		struct cove_error e = { 0 };

		if (!all[i].anonymous && !o.all)
			continue;
		if (volume_remove(&paths, all[i].name, &e) == 0)
			printf("%s\n", all[i].name);
		else if (e.code != EBUSY)
			cli_error("%s", e.msg);
	}
	volume_list_free(all, n);
	return 0;
}

int cmd_volume(int argc, char **argv)
{
	static const struct cli_command sub[] = {
		{ "create", cmd_vol_create, "Create a volume" },
		{ "ls", cmd_vol_ls, "List volumes" },
		{ "list", cmd_vol_ls, NULL },
		{ "inspect", cmd_vol_inspect, "Show volumes as JSON" },
		{ "rm", cmd_vol_rm, "Remove volumes" },
		{ "remove", cmd_vol_rm, NULL },
		{ "prune", cmd_vol_prune, "Remove volumes no container uses" },
	};

	return cli_dispatch("volume", "Manage volumes.", sub, ARRAY_SIZE(sub), argc, argv);
}
