/* SPDX-License-Identifier: Apache-2.0 */
/* cove network create|ls|inspect|rm|prune, docker's verbs over engine/network.c. */
#include "cli.h"
#include "options.h"

#include "engine/network.h"

#include <string.h>

enum { OPT_SUBNET = 256, OPT_GATEWAY, OPT_INTERNAL, OPT_LABEL, OPT_FORMAT, OPT_DRIVER };

struct net_flags {
	struct net_create_request q;
	bool quiet, json, force;
};

static int net_opt(int c, const char *value, void *ud)
{
	struct net_flags *o = ud;

	switch (c) {
	case OPT_SUBNET:
		o->q.subnet = value;
		break;
	case OPT_GATEWAY:
		o->q.gateway = value;
		break;
	case OPT_INTERNAL:
		o->q.internal = true;
		break;
	case OPT_DRIVER:
		if (strcmp(value, "bridge") != 0) {
			cli_error("invalid --driver '%s': cove's networks are bridges (bridge)", value);
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
	}
	return 0;
}

static int cmd_net_create(int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{ OPT_SUBNET, 0, "subnet", "CIDR",
		  "its addresses, e.g. 10.20.0.0/24 (default: a free /24\nof 10.89.1.0 and up)" },
		{ OPT_GATEWAY, 0, "gateway", "IP", "the host's address on it (default: the first)" },
		{ OPT_INTERNAL, 0, "internal", NULL, "no way out: no NAT, nothing forwarded" },
		{ OPT_LABEL, 0, "label", "K=V", "set a label on the network" },
		{ OPT_DRIVER, 'd', "driver", "bridge", "the only driver there is" },
		{ 0 },
	};
	static const struct cli_verb v = {
		"network create", "[OPTIONS] NAME",
		"Create a network: a bridge with NAT out, and a DNS server on its gateway by which "
		"its\ncontainers find each other by name and --network-alias. Needs root.",
		opts, .min_operands = 1, .max_operands = 1, .missing = "NAME",
	};
	struct net_flags o = { 0 };
	struct cove_error err = { 0 };
	struct cove_paths paths;
	struct net_def d;
	int first, r;

	if ((r = cli_parse_verb(&v, argc, argv, net_opt, &o, &first)) >= 0)
		goto out;
	o.q.name = argv[first];
	r = 0;
	if (paths_init_or_report(&paths) < 0) {
		r = EXIT_COVE;
	} else if (net_create(&paths, &o.q, &d, &err) < 0) {
		cli_error("%s", err.msg);
		r = EXIT_COVE;
	} else {
		printf("%s\n", d.id);
	}
out:
	json_decref(o.q.labels);
	return r;
}

/* Parse, then list every network (dead leases reclaimed first): -1 to go on, else the exit
 * code. */
static int parse_and_list(const struct cli_verb *v, int argc, char **argv, struct net_flags *o,
			  struct cove_paths *paths, struct net_def **all, size_t *n)
{
	struct cove_error err = { 0 };
	int first, r;

	if ((r = cli_parse_verb(v, argc, argv, net_opt, o, &first)) >= 0)
		return r;
	if (paths_init_or_report(paths) < 0)
		return EXIT_COVE;
	net_gc(paths);
	if (net_list(paths, all, n, &err) < 0) {
		cli_error("%s", err.msg);
		return EXIT_COVE;
	}
	return -1;
}

static int cmd_net_ls(int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{ 'q', 'q', "quiet", NULL, "only names" },
		{ OPT_FORMAT, 0, "format", "FMT", "table (default) or json" },
		{ 0 },
	};
	static const struct cli_verb v = { "network ls", "[OPTIONS]", "List networks.", opts,
					   .max_operands = 0 };
	struct net_flags o = { 0 };
	struct cove_paths paths;
	_cleanup_free_ struct net_def *all = NULL;
	size_t n = 0;
	int r;

	if ((r = parse_and_list(&v, argc, argv, &o, &paths, &all, &n)) >= 0)
		return r;
	if (!o.quiet && !o.json)
		printf("%-14s %-20s %-8s %-18s %s\n", "NETWORK ID", "NAME", "DRIVER", "SUBNET",
		       "GATEWAY");
	for (size_t i = 0; i < n; i++) {
		char subnet[40], gw[16];

		net_ip_text(all[i].subnet, subnet, sizeof(subnet));
		str_printf(subnet + strlen(subnet), sizeof(subnet) - strlen(subnet), "/%u",
			   all[i].prefix);
		net_ip_text(all[i].gateway, gw, sizeof(gw));
		if (o.quiet) {
			printf("%s\n", all[i].name);
		} else if (o.json) {
			json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "ID", all[i].id,
					      "Name", all[i].name, "Driver", "bridge", "Subnet",
					      subnet, "Gateway", gw, "Internal", all[i].internal);
			char *line = j ? json_dumps(j, JSON_COMPACT) : NULL;

			if (line)
				printf("%s\n", line);
			free(line);
			json_decref(j);
		} else {
			printf("%-14.12s %-20s %-8s %-18s %s%s\n", all[i].id, all[i].name, "bridge",
			       subnet, gw, all[i].internal ? " (internal)" : "");
		}
	}
	return 0;
}

static json_t *inspect_one(const char *name, void *ud, struct cove_error *err)
{
	json_t *j;

	return net_inspect(ud, name, &j, err) < 0 ? NULL : j;
}

static int cmd_net_inspect(int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{ OPT_FORMAT, 0, "format", "json", "the only format there is" },
		{ 0 },
	};
	static const struct cli_verb v = { "network inspect", "[OPTIONS] NETWORK...",
					   "Show networks as JSON (docker's shape).", opts,
					   .min_operands = 1, .max_operands = -1,
					   .missing = "NETWORK" };
	struct net_flags o = { 0 };
	struct cove_paths paths;
	int first, r;

	if ((r = cli_parse_verb(&v, argc, argv, net_opt, &o, &first)) >= 0)
		return r;
	if (paths_init_or_report(&paths) < 0)
		return EXIT_COVE;
	net_gc(&paths);
	return cli_inspect_each(argv + first, argc - first, inspect_one, &paths);
}

static int remove_one(const char *name, void *ud, struct cove_error *err)
{
	return net_remove(ud, name, err);
}

static int cmd_net_rm(int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{ 'f', 'f', "force", NULL, "no error for a network that is not there" },
		{ 0 },
	};
	static const struct cli_verb v = { "network rm", "[OPTIONS] NETWORK...",
					   "Remove networks no container uses.", opts,
					   .min_operands = 1, .max_operands = -1,
					   .missing = "NETWORK" };
	struct net_flags o = { 0 };
	struct cove_paths paths;
	int first, r;

	if ((r = cli_parse_verb(&v, argc, argv, net_opt, &o, &first)) >= 0)
		return r;
	if (paths_init_or_report(&paths) < 0)
		return EXIT_COVE;
	return cli_remove_each(argv + first, argc - first, o.force, remove_one, &paths);
}

static int cmd_net_prune(int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{ 'f', 'f', "force", NULL, "do not ask (cove never asks)" },
		{ 0 },
	};
	static const struct cli_verb v = { "network prune", "[OPTIONS]",
					   "Remove every network no container uses.", opts,
					   .max_operands = 0 };
	struct net_flags o = { 0 };
	struct cove_paths paths;
	_cleanup_free_ struct net_def *all = NULL;
	size_t n = 0;
	int r;

	if ((r = parse_and_list(&v, argc, argv, &o, &paths, &all, &n)) >= 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		struct cove_error e = { 0 };

		/* the default network ("bridge" is its docker name) stays; one in use is
		 * skipped */
		if (strcmp(all[i].name, net_canonical("bridge")) == 0)
			continue;
		if (net_remove(&paths, all[i].name, &e) == 0)
			printf("%s\n", all[i].name);
		else if (e.code != EBUSY)
			cli_error("%s", e.msg);
	}
	return 0;
}

static int connect_verb(int argc, char **argv, bool connect)
{
	static const struct cli_verb vc = {
		"network connect", "NETWORK CONTAINER",
		"Give a stopped container a NIC on another network (from its next start).", NULL,
		.min_operands = 2, .max_operands = 2, .missing = "NETWORK and CONTAINER",
	};
	static const struct cli_verb vd = {
		"network disconnect", "NETWORK CONTAINER",
		"Take a network away from a stopped container (from its next start).", NULL,
		.min_operands = 2, .max_operands = 2, .missing = "NETWORK and CONTAINER",
	};
	static const struct cli_option none[] = { { 0 } };
	struct cli_verb v = connect ? vc : vd;
	struct net_flags o = { 0 };
	struct cove_error err = { 0 };
	struct cove_paths paths;
	int first, r;

	v.options = none;
	if ((r = cli_parse_verb(&v, argc, argv, net_opt, &o, &first)) >= 0)
		return r;
	if (paths_init_or_report(&paths) < 0)
		return EXIT_COVE;
	if (net_connect(&paths, argv[first + 1], argv[first], connect, &err) < 0) {
		cli_error("%s", err.msg);
		return EXIT_COVE;
	}
	return 0;
}

static int cmd_net_connect(int argc, char **argv)
{
	return connect_verb(argc, argv, true);
}

static int cmd_net_disconnect(int argc, char **argv)
{
	return connect_verb(argc, argv, false);
}

int cmd_network(int argc, char **argv)
{
	static const struct cli_command sub[] = {
		{ "create", cmd_net_create, "Create a network" },
		{ "ls", cmd_net_ls, "List networks" },
		{ "list", cmd_net_ls, NULL },
		{ "inspect", cmd_net_inspect, "Show networks as JSON" },
		{ "rm", cmd_net_rm, "Remove networks" },
		{ "remove", cmd_net_rm, NULL },
		{ "prune", cmd_net_prune, "Remove networks no container uses" },
		{ "connect", cmd_net_connect, "Give a stopped container a NIC on a network" },
		{ "disconnect", cmd_net_disconnect, "Take a network away from a stopped container" },
	};

	return cli_dispatch("network", "Manage networks.", sub, ARRAY_SIZE(sub), argc, argv);
}
