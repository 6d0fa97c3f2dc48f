/* SPDX-License-Identifier: Apache-2.0 */
/* cove ls (ps), inspect, logs, stats: what containers there are and what they are doing. */
#define _GNU_SOURCE
#include "cli.h"
#include "engine/volume.h"
#include "image/json.h"
#include "options.h"
#include "engine/container.h"
#include "engine/log.h"
#include "engine/network.h"
#include "engine/images.h"

#include "image/store.h"
#include "engine/supervisor.h"

#include "proto/caps.h"
#include "util/buf.h"

#include <poll.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static void human_ago(double t, char *buf, size_t size, const char *suffix)
{
	double d = (double)time(NULL) - t;
	long n;
	const char *unit;

	if (d < 1) {
		str_printf(buf, size, "Less than a second%s", suffix);
		return;
	}
	if (d < 60)
		n = (long)d, unit = "second";
	else if (d < 3600)
		n = (long)(d / 60), unit = "minute";
	else if (d < 86400 * 2)
		n = (long)(d / 3600), unit = "hour";
	else if (d < 86400 * 14)
		n = (long)(d / 86400), unit = "day";
	else
		n = (long)(d / (86400 * 7)), unit = "week";
	if (n == 1 && strcmp(unit, "hour") == 0)
		str_printf(buf, size, "About an hour%s", suffix);
	else
		str_printf(buf, size, "%ld %s%s%s", n, unit, n == 1 ? "" : "s", suffix);
}

/* docker's STATUS column: "Up 5 seconds", "Exited (0) 3 minutes ago", "Created". */
static void status_text(const struct container_status *st, char *buf, size_t size)
{
	char ago[64];

	switch (st->status) {
	case CONTAINER_RUNNING:
		human_ago(container_parse_time(st->started_at), ago, sizeof(ago), "");
		str_printf(buf, size, "Up %s", ago);
		break;
	case CONTAINER_EXITED:
		human_ago(container_parse_time(st->finished_at), ago, sizeof(ago), " ago");
		str_printf(buf, size, "Exited (%d) %s", st->exit_code, ago);
		break;
	default:
		str_copy(buf, size, "Created");
	}
}

static void command_text(const struct container_spec *spec, char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < spec->nargs; i++) {
		int w = snprintf(buf + n, size - n, "%s%s", i ? " " : "", spec->args[i]);
		if (w < 0 || (size_t)w >= size - n)
			break;
		n += (size_t)w;
	}
}

static const char *image_text(const struct container_spec *spec)
{
	const char *img = spec->image, *rootfs = spec->rootfs;

	if (img && img[0])
		return img;
	return rootfs && rootfs[0] ? rootfs : "-";
}

struct filter {
	char key[16];
	char value[256];
};

static bool label_matches(const struct container_spec *spec, const char *want)
{
	json_t *labels = spec->labels;
	const char *eq = strchr(want, '=');
	char key[256];
	const char *v;

	if (!eq)
		return json_object_get(labels, want) != NULL;
	str_printf(key, sizeof(key), "%.*s", (int)(eq - want), want);
	v = json_string_value(json_object_get(labels, key));
	return v && strcmp(v, eq + 1) == 0;
}

static bool matches(const struct container *c, const struct container_spec *spec,
		    const struct container_status *st,
		    const struct filter *f, size_t nf)
{
	/* docker: the same key ORs, different keys AND */
	for (size_t i = 0; i < nf; i++) {
		bool any = false;

		for (size_t j = 0; j < nf; j++) {
			const char *v = f[j].value;
			if (strcmp(f[i].key, f[j].key) != 0)
				continue;
			if (strcmp(f[j].key, "id") == 0)
				any |= strncmp(c->id, v, strlen(v)) == 0;
			else if (strcmp(f[j].key, "name") == 0)
				any |= strstr(c->name, v) != NULL;
			else if (strcmp(f[j].key, "status") == 0)
				any |= strcmp(container_status_name(st->status), v) == 0;
			else if (strcmp(f[j].key, "label") == 0)
				any |= label_matches(spec, v);
			else if (strcmp(f[j].key, "ancestor") == 0)
				any |= strcmp(image_text(spec), v) == 0;
			else if (strcmp(f[j].key, "exited") == 0)
				any |= st->status == CONTAINER_EXITED && atoi(v) == st->exit_code;
		}
		if (!any)
			return false;
	}
	return true;
}

/* A table of 7 columns, printed with docker's three-space gaps once every width is known. */
#define TABLE_COLS 7
struct table {
	char **cells;
	size_t rows;
	size_t width[TABLE_COLS];
};

static int table_add(struct table *t, const char *a, const char *b, const char *c, const char *d,
		     const char *e, const char *f, const char *g)
{
	const char *row[TABLE_COLS] = { a, b, c, d, e, f, g };
	char **n = realloc(t->cells, (t->rows + 1) * TABLE_COLS * sizeof(char *));

	if (!n)
		return -ENOMEM;
	t->cells = n;
	for (size_t i = 0; i < TABLE_COLS; i++) {
		/* display width: count UTF-8 lead bytes, not bytes */
		size_t w = 0;
		for (const char *p = row[i]; *p; p++)
			w += ((unsigned char)*p & 0xc0) != 0x80;
		n[t->rows * TABLE_COLS + i] = strdup(row[i]);
		if (!n[t->rows * TABLE_COLS + i])
			return -ENOMEM;
		if (w > t->width[i])
			t->width[i] = w;
	}
	t->rows++;
	return 0;
}

static void table_print(const struct table *t)
{
	for (size_t r = 0; r < t->rows; r++) {
		for (size_t i = 0; i < TABLE_COLS; i++) {
			const char *cell = t->cells[r * TABLE_COLS + i];
			size_t w = 0;
			for (const char *p = cell; *p; p++)
				w += ((unsigned char)*p & 0xc0) != 0x80;
			fputs(cell, stdout);
			if (i + 1 < TABLE_COLS)
				printf("%*s", (int)(t->width[i] - w + 3), "");
		}
		putchar('\n');
	}
}

static void table_done(struct table *t)
{
	for (size_t i = 0; t->cells && i < t->rows * TABLE_COLS; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}

struct ps_opts {
	bool all, quiet, no_trunc, json;
	struct filter filters[16];
	size_t nf;
};

static int ps_opt(int c, const char *value, void *ud)
{
	struct ps_opts *o = ud;

	switch (c) {
	case 'a':
		o->all = true;
		break;
	case 'q':
		o->quiet = true;
		break;
	case 'T':
		o->no_trunc = true;
		break;
	case 'F':
		return cli_parse_format(value, &o->json);
	case 'f': {
		const char *eq = strchr(value, '=');
		static const char *const keys[] = { "id", "name", "status", "label",
						    "ancestor", "exited" };
		size_t k;
		if (!eq || o->nf == ARRAY_SIZE(o->filters)) {
			cli_error("invalid --filter '%s': expected KEY=VALUE", value);
			return -EINVAL;
		}
		for (k = 0; k < ARRAY_SIZE(keys); k++)
			if (strlen(keys[k]) == (size_t)(eq - value) &&
			    strncmp(value, keys[k], strlen(keys[k])) == 0)
				break;
		if (k == ARRAY_SIZE(keys)) {
			cli_error("invalid --filter '%s': the keys are id, name, status, label, "
				  "ancestor, exited",
				  value);
			return -EINVAL;
		}
		str_copy(o->filters[o->nf].key, sizeof(o->filters[o->nf].key), keys[k]);
		str_copy(o->filters[o->nf].value, sizeof(o->filters[o->nf].value), eq + 1);
		if (strcmp(keys[k], "status") == 0 || strcmp(keys[k], "exited") == 0)
			o->all = true; /* asking for exited ones means showing them */
		o->nf++;
		break;
	}
	}
	return 0;
}

int cmd_ps(int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{ 'a', 'a', "all", NULL, "show all containers, not only running ones" },
		{ 'q', 'q', "quiet", NULL, "only IDs" },
		{ 'T', 0, "no-trunc", NULL, "full IDs and commands" },
		{ 'F', 0, "format", "FORMAT", "table (default) or json (one object a line)" },
		{ 'f', 'f', "filter", "K=V",
		  "id, name, status (created|running|exited),\nlabel (KEY or KEY=VALUE), ancestor, "
		  "exited (code)" },
		{ 0 },
	};
	static const struct cli_verb v = {
		"ls", "[OPTIONS]", "List containers (running ones; -a for all).", opts,
		.max_operands = 0,
	};
	struct ps_opts po = { 0 };
	struct table t = { 0 };
	struct cove_error err = { 0 };
	struct cove_paths p;
	char **ids = NULL;
	size_t n = 0;
	int first, r;

	r = cli_parse(&v, argc, argv, ps_opt, &po, &first);
	if (r)
		return r > 0 ? 0 : EXIT_COVE;
	if (paths_init_or_report(&p) < 0)
		return EXIT_COVE;
	if (container_list(&p, &ids, &n, &err) < 0) {
		cli_error("%s", err.msg);
		return 1;
	}
	if (!po.quiet && !po.json && table_add(&t, "CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS",
					 "PORTS", "NAMES") < 0)
		goto oom;
	/* newest first, as docker lists */
	for (size_t k = n; k-- > 0;) {
		struct container ct;
		struct container_status st;
		struct container_spec spec;
		char cmd[4096], created[64], status[96];

		if (container_find(&p, ids[k], &ct, &err) < 0 ||
		    container_load_spec(&ct, &spec, &err) < 0)
			continue;
		container_get_status(&ct, &st);
		if ((!po.all && st.status != CONTAINER_RUNNING) ||
		    !matches(&ct, &spec, &st, po.filters, po.nf)) {
			spec_done(&spec);
			continue;
		}
		command_text(&spec, cmd, sizeof(cmd));
		human_ago(container_parse_time(spec.created), created, sizeof(created), " ago");
		status_text(&st, status, sizeof(status));
		if (po.quiet) {
			printf("%s\n", po.no_trunc ? ct.id : ct.short_id);
		} else if (po.json) {
			json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:O, s:s}",
					      "ID", ct.id, "Names", ct.name, "Image",
					      image_text(&spec), "Command", cmd, "CreatedAt",
					      spec.created ?: "", "State",
					      container_status_name(st.status), "Status", status,
					      "ExitCode", st.exit_code, "Labels", spec.labels, "Ports",
					      st.ports);
			char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
			if (s)
				printf("%s\n", s);
			free(s);
			json_decref(o);
		} else {
			char qcmd[4100];
			if (!po.no_trunc && strlen(cmd) > 20)
				str_printf(qcmd, sizeof(qcmd), "\"%.19s…\"", cmd);
			else
				str_printf(qcmd, sizeof(qcmd), "\"%s\"", cmd);
			if (table_add(&t, po.no_trunc ? ct.id : ct.short_id, image_text(&spec), qcmd,
				      created, status, st.ports, ct.name) < 0) {
				spec_done(&spec);
				goto oom;
			}
		}
		spec_done(&spec);
	}
	table_print(&t);
	table_done(&t);
	container_list_free(ids, n);
	return 0;
oom:
	table_done(&t);
	container_list_free(ids, n);
	cli_error("out of memory");
	return 1;
}

/* ---- inspect ---- */

static json_t *ulimits_json(const struct container_spec *spec)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < spec->nrlimits; i++) {
		const struct spec_rlimit *l = &spec->rlimits[i];
		json_array_append_new(
			a, json_pack("{s:s, s:I, s:I}", "Name", spec_rlimit_name(l->resource) ?: "",
				     "Soft", l->soft == UINT64_MAX ? (json_int_t)-1 : (json_int_t)l->soft,
				     "Hard", l->hard == UINT64_MAX ? (json_int_t)-1 : (json_int_t)l->hard));
	}
	return a;
}

/* one of NetworkSettings.Networks */
static void endpoint(json_t *nets, const struct container_spec *spec, const char *network,
		     const char *ip, int prefix, const char *gateway, const char *mac)
{
	json_object_set_new(nets, network,
			    json_pack("{s:s, s:i, s:s, s:s, s:o}", "IPAddress", ip, "IPPrefixLen",
				      prefix, "Gateway", gateway, "MacAddress", mac, "Aliases",
				      json_strv(spec->aliases, spec->naliases)));
}

/* docker's NetworkSettings: the addresses while it runs, the first network's at the top */
static json_t *network_settings(const struct container_spec *spec,
				const struct container_status *st)
{
	json_t *nets = json_object(), *j;

	if (nets && st->network[0])
		endpoint(nets, spec, st->network, st->ip, st->prefix, st->gateway, st->mac);
	for (size_t i = 0; nets && i < st->nmore; i++)
		endpoint(nets, spec, st->more[i].network, st->more[i].ip, st->more[i].prefix, "",
			 st->more[i].mac);
	j = json_pack("{s:s, s:i, s:s, s:s, s:o?, s:s}", "IPAddress", st->ip, "IPPrefixLen",
		      st->prefix, "Gateway", st->gateway, "MacAddress", st->mac, "Networks", nets,
		      "Ports", st->ports);
	return j;
}

struct sample {
	struct proto_stats s;
	uint64_t host_pss; /* bytes: supervisor + QEMU */
	bool ok;
};

static int sample(const struct container *c, int timeout_ms, struct sample *ret);

static json_t *inspect_one(const struct cove_paths *p, const struct container *c,
			   const struct container_spec *spec, const struct container_status *st)
{
	char caps[2048], sig[32];
	json_t *j;

	caps_format(spec->caps, caps, sizeof(caps));
	signal_name(spec->stop_signal, sig, sizeof(sig));
	j = json_pack(
		"{s:s, s:s, s:s, s:s?, s:o,"
		" s:{s:s, s:b, s:b, s:I, s:i, s:s, s:s, s:s, s:s, s:s},"
		" s:s, s:s, s:s, s:s, s:s,"
		" s:{s:s, s:s, s:o, s:o, s:o, s:s, s:O, s:b, s:b, s:s, s:i, s:s},"
		" s:{s:b, s:b, s:o, s:o, s:o, s:o, s:b, s:I, s:i, s:b, s:s, s:s?, s:{s:I, s:i}},"
		" s:{s:s, s:s, s:s}}",
		"Id", c->id, "Name", c->name, "Created", spec->created ?: "", "Path",
		spec->nargs ? spec->args[0] : NULL, "Args",
		json_strv(spec->nargs ? spec->args + 1 : NULL, spec->nargs ? spec->nargs - 1 : 0),
		"State", "Status", container_status_name(st->status), "Running",
		st->status == CONTAINER_RUNNING, "Paused", 0, "Pid", (json_int_t)st->pid, "ExitCode",
		st->exit_code, "Error", st->error, "StartedAt", st->started_at, "FinishedAt",
		st->finished_at, "Accelerator", st->accel, "Boot", st->boot,
		"Image", image_text(spec), "ImageSnapshot", spec->snapshot ?: "",
		"LogPath", c->log, "BootLogPath", c->boot_log, "HostnamePath", "",
		"Config", "Hostname", spec->hostname ?: "", "User", spec->user ?: "", "Env",
		json_strv(spec->env, spec->nenv), "Cmd", json_strv(spec->cmd, spec->ncmd),
		"Entrypoint", json_strv(spec->entrypoint, spec->nentrypoint), "WorkingDir",
		spec->cwd ?: "/", "Labels", spec->labels, "Tty", spec->terminal, "OpenStdin",
		spec->open_stdin, "StopSignal", sig, "StopTimeout", spec->stop_timeout, "Image",
		image_text(spec),
		"HostConfig", "AutoRemove", spec->autoremove, "ReadonlyRootfs", spec->readonly,
		"CapAdd", json_strv(spec->cap_add, spec->ncap_add), "CapDrop",
		json_strv(spec->cap_drop, spec->ncap_drop), "Tmpfs",
		json_strv(spec->tmpfs, spec->ntmpfs), "Ulimits", ulimits_json(spec), "Init",
		spec->init, "Memory", (json_int_t)spec->memory, "Cpus", (int)spec->cpus,
		"SeccompUnconfined", spec->unconfined, "Rootfs", spec->rootfs ?: "", "Accel",
		spec->accel, "LogConfig", "max-size", (json_int_t)spec->log_max_size, "max-file",
		(int)spec->log_max_files,
		"Cove", "Capabilities", caps, "Disk", c->disk, "Socket", c->sock);
	if (j) {
		json_t *hc = json_object_get(j, "HostConfig"), *ns = network_settings(spec, st);
		struct sample now;

		/* what the guest's NICs moved, asked of a running one (not waited for long) */
		if (ns && st->status == CONTAINER_RUNNING && sample(c, 2000, &now) == 0) {
			json_object_set_new(ns, "RxBytes", json_integer((json_int_t)now.s.net_rx));
			json_object_set_new(ns, "TxBytes", json_integer((json_int_t)now.s.net_tx));
		}
		json_object_set_new(j, "NetworkSettings", ns);
		json_object_set_new(j, "Mounts", mounts_json(p, spec));

		json_object_set_new(hc, "NetworkMode", json_string(net_canonical(spec->network)));
		json_object_set_new(hc, "Dns", json_strv(spec->dns, spec->ndns));
		json_object_set_new(hc, "DnsSearch", json_strv(spec->dns_search, spec->ndns_search));
		json_object_set_new(hc, "DnsOptions",
				    json_strv(spec->dns_options, spec->ndns_options));
		json_object_set_new(hc, "ExtraHosts", json_strv(spec->add_hosts, spec->nadd_hosts));
		json_object_set_new(json_object_get(j, "Config"), "MacAddress",
				    json_string(spec->mac ?: ""));
	}
	return j;
}

static int inspect_opt(int c, const char *value, void *ud)
{
	bool json = false;

	if (cli_parse_format(value, &json) < 0)
		return -EINVAL;
	if (!json) {
		cli_error("inspect writes JSON only; drop --format or use --format json");
		return -EINVAL;
	}
	return 0;
}

/* cove port CTR: docker's "80/tcp -> 0.0.0.0:8080" lines, from what the supervisor bound */
int cmd_port(int argc, char **argv)
{
	static const struct cli_verb v = {
		"port", "CONTAINER", "Show the ports a running container publishes on the host.",
		NULL, .min_operands = 1, .max_operands = 1, .missing = "CONTAINER",
	};
	struct container_status st;
	struct cove_paths p;
	struct container c;
	char *save = NULL, *one;
	int first, r;

	r = cli_parse(&v, argc, argv, NULL, NULL, &first);
	if (r)
		return r > 0 ? 0 : EXIT_COVE;
	if (paths_init_or_report(&p) < 0 || cli_find(&p, argv[first], &c) < 0)
		return EXIT_COVE;
	container_get_status(&c, &st);
	for (one = strtok_r(st.ports, ", ", &save); one; one = strtok_r(NULL, ", ", &save)) {
		char *arrow = strstr(one, "->");

		if (arrow) {
			*arrow = '\0';
			printf("%s -> %s\n", arrow + 2, one);
		}
	}
	return 0;
}

int cmd_ctr_inspect(int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{ 'F', 0, "format", "json", "the only format there is" },
		{ 0 },
	};
	static const struct cli_verb v = {
		"inspect", "[OPTIONS] CONTAINER|IMAGE...",
		"Show containers' configuration and state as a JSON array (images' when no name\n"
		"is a container).",
		opts, .min_operands = 1, .max_operands = -1, .missing = "CONTAINER",
	};
	struct cove_error err = { 0 };
	struct cove_paths p;
	json_t *out;
	int failed = 0, first, r;
	char *s;

	r = cli_parse(&v, argc, argv, inspect_opt, NULL, &first);
	if (r)
		return r > 0 ? 0 : EXIT_COVE;
	if (paths_init_or_report(&p) < 0)
		return EXIT_COVE;
	/* docker's habit: `inspect IMAGE` when none of the names is a container */
	{
		bool any = false;
		for (int i = first; i < argc && !any; i++) {
			struct container c;
			any = container_find(&p, argv[i], &c, &err) == 0;
		}
		if (!any) {
			struct store *st = NULL;
			struct store_image img;
			char **iv;
			int rc;

			if (images_open(&p, &st, &err) < 0) {
				cli_error("%s", err.msg);
				return EXIT_COVE;
			}
			for (int i = first; i < argc; i++) {
				if (images_find(st, argv[i], &img, &err) < 0) {
					store_free(st);
					cli_error("no such container or image: '%s'", argv[i]);
					return 1;
				}
			}
			store_free(st);
			iv = calloc((size_t)argc + 2, sizeof(char *));
			if (!iv) {
				cli_error("out of memory");
				return EXIT_COVE;
			}
			iv[0] = (char *)"image";
			iv[1] = (char *)"inspect";
			memcpy(iv + 2, argv + first, (size_t)(argc - first) * sizeof(char *));
			rc = cmd_image(argc - first + 2, iv);
			free(iv);
			return rc;
		}
	}
	out = json_array();
	for (int i = first; i < argc; i++) {
		struct container c;
		struct container_status st;
		struct container_spec spec;
		json_t *o;

		if (container_find(&p, argv[i], &c, &err) < 0 ||
		    container_load_spec(&c, &spec, &err) < 0) {
			cli_error("%s", err.msg);
			failed = 1;
			continue;
		}
		container_get_status(&c, &st);
		o = inspect_one(&p, &c, &spec, &st);
		if (o)
			json_array_append_new(out, o);
		spec_done(&spec);
	}
	s = json_dumps(out, JSON_INDENT(4));
	if (s)
		printf("%s\n", s);
	free(s);
	json_decref(out);
	return failed;
}

/* ---- logs ---- */

struct logs_opts {
	bool follow, timestamps, boot;
	long tail; /* -1: all */
};

static int print_boot_log(const struct container *c)
{
	_cleanup_fclose_ FILE *f = fopen(c->boot_log, "re");
	char buf[65536];
	size_t n;

	if (!f) {
		cli_error("container %s has no boot log yet (never started)", c->name);
		return 1;
	}
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, stdout);
	return 0;
}

/* Write one record; at_line_start tracks where -t prefixes go; skip counts lines to drop. */
static void emit(const struct log_record *r, const struct logs_opts *o, bool *at_line_start,
		 long *skip)
{
	FILE *f = r->stream == LOG_STDERR ? stderr : stdout;
	const uint8_t *p = r->data, *end = r->data + r->len;

	if (f == stderr)
		fflush(stdout); /* keep the order the two streams were written in */

	while (p < end) {
		const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);

		if (*skip > 0) {
			if (nl)
				(*skip)--;
			p += len;
			continue;
		}
		if (o->timestamps && at_line_start[r->stream])
			fprintf(f, "%s ", r->time);
		fwrite(p, 1, len, f);
		at_line_start[r->stream] = nl != NULL;
		p += len;
	}
}

static int logs_opt(int c, const char *value, void *ud)
{
	struct logs_opts *o = ud;
	uint64_t v;

	switch (c) {
	case 'f':
		o->follow = true;
		break;
	case 't':
		o->timestamps = true;
		break;
	case 'n':
		if (strcmp(value, "all") == 0) {
			o->tail = -1;
		} else if (parse_u64(value, 1000000000, &v) == 0) {
			o->tail = (long)v;
		} else {
			cli_error("invalid --tail '%s': expected a number of lines or 'all'",
				  value);
			return -EINVAL;
		}
		break;
	case 'B':
		o->boot = true;
		break;
	}
	return 0;
}

int cmd_logs(int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{ 'f', 'f', "follow", NULL, "keep printing new output until it stops" },
		{ 'n', 'n', "tail", "N", "only the last N lines ('all': every line)" },
		{ 't', 't', "timestamps", NULL, "prefix each line with when it was written" },
		{ 'B', 0, "boot", NULL, "the VM's boot log (kernel and cove-init) instead" },
		{ 0 },
	};
	static const struct cli_verb v = {
		"logs", "[OPTIONS] CONTAINER",
		"Show what a container's main process wrote (stdout and stderr).", opts,
		.min_operands = 1, .max_operands = 1, .missing = "CONTAINER",
	};
	struct logs_opts o = { .tail = -1 };
	struct cove_paths p;
	struct container c;
	struct log_record rec;
	uint8_t *buf = NULL;
	size_t cap = 0;
	bool at_line_start[3] = { true, true, true };
	long lines = 0, skip = 0;
	_cleanup_fclose_ FILE *f = NULL;
	unsigned nold;
	bool last_nl = true;
	int first, r = 0;

	r = cli_parse(&v, argc, argv, logs_opt, &o, &first);
	if (r)
		return r > 0 ? 0 : EXIT_COVE;
	if (paths_init_or_report(&p) < 0)
		return EXIT_COVE;
	if (cli_find(&p, argv[first], &c) < 0)
		return 1;
	if (o.boot)
		return print_boot_log(&c);
	/* the rotated files, oldest first, then the current one */
	for (nold = 0; nold < LOG_MAX_FILES; nold++) {
		char name[PATH_MAX + 48];
		if (log_file_name(c.log, nold + 1, name, sizeof(name)) < 0 || access(name, F_OK) < 0)
			break;
	}
	for (int pass = o.tail >= 0 ? 0 : 1; pass < 2; pass++) {
		/* pass 0 counts lines (the last N are shown), pass 1 prints */
		for (unsigned n = nold + 1; n-- > 0;) {
			char name[PATH_MAX + 48];
			if (log_file_name(c.log, n, name, sizeof(name)) < 0)
				continue;
			if (f)
				fclose(f);
			f = fopen(name, "re");
			while (f && (r = log_next(f, &rec, &buf, &cap)) > 0) {
				if (pass == 1) {
					emit(&rec, &o, at_line_start, &skip);
					continue;
				}
				for (size_t i = 0; i < rec.len; i++)
					lines += rec.data[i] == '\n';
				last_nl = rec.len && rec.data[rec.len - 1] == '\n';
			}
			if (f && r < 0) {
				cli_error("the log of %s is damaged: %s", c.name, name);
				free(buf);
				return 1;
			}
		}
		if (pass == 0) {
			if (!last_nl && lines >= 0 && buf)
				lines++; /* a last line without its newline */
			skip = lines > o.tail ? lines - o.tail : 0;
		}
	}
	for (;;) {
		struct stat now, cur;
		fflush(stdout);
		fflush(stderr);
		if (!o.follow)
			break;
		struct container_status st;
		if (container_get_status(&c, &st) < 0 || access(c.dir, F_OK) < 0)
			break;
		if (st.status != CONTAINER_RUNNING) {
			/* one last pass: what was written before it stopped */
			while (f && (r = log_next(f, &rec, &buf, &cap)) > 0)
				emit(&rec, &o, at_line_start, &skip);
			break;
		}
		usleep(100000);
		/* the log was rotated: the rest of the old file, then the new one */
		if (f && stat(c.log, &now) == 0 && fstat(fileno(f), &cur) == 0 &&
		    now.st_ino != cur.st_ino) {
			while ((r = log_next(f, &rec, &buf, &cap)) > 0)
				emit(&rec, &o, at_line_start, &skip);
			fclose(f);
			f = NULL;
		}
		if (!f)
			f = fopen(c.log, "re");
		while (f && (r = log_next(f, &rec, &buf, &cap)) > 0)
			emit(&rec, &o, at_line_start, &skip);
	}
	fflush(stdout);
	free(buf);
	return 0;
}

/* ---- stats ---- */

static uint64_t pss_of(pid_t pid)
{
	char path[64];
	_cleanup_free_ char *s = NULL;
	const char *p;

	str_printf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
	if (read_file(path, 1 << 16, &s, NULL) < 0 || !(p = strstr(s, "\nPss:")))
		return 0;
	return strtoull(p + 5, NULL, 10) * 1024;
}

/* The supervisor and its children (QEMU). */
static uint64_t host_memory(pid_t sup)
{
	char path[96];
	_cleanup_free_ char *kids = NULL;
	uint64_t total = pss_of(sup);

	str_printf(path, sizeof(path), "/proc/%d/task/%d/children", (int)sup, (int)sup);
	if (read_file(path, 4096, &kids, NULL) == 0)
		for (char *t = strtok(kids, " \n"); t; t = strtok(NULL, " \n"))
			total += pss_of((pid_t)atoi(t));
	return total;
}

static int sample(const struct container *c, int timeout_ms, struct sample *ret)
{
	struct cove_error err = { 0 };
	struct proto_reader rd;
	struct buf req = BUF_INIT(64);
	struct container_status st;
	struct proto_hdr h;
	const uint8_t *pl;
	int fd, r = -EIO;

	memset(ret, 0, sizeof(*ret));
	proto_put_empty(&req, PROTO_STATS, 0);
	fd = supervisor_connect(c, &err);
	if (fd < 0 || write_full(fd, req.data, req.len) < 0) {
		buf_done(&req);
		if (fd >= 0)
			close(fd);
		return -ENOTCONN;
	}
	buf_done(&req);
	proto_reader_init(&rd);
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;
		if (poll(&pfd, 1, timeout_ms) <= 0)
			break;
		n = proto_reader_read(&rd, fd);
		if (n == -EAGAIN)
			continue;
		if (n <= 0)
			break;
		if (proto_reader_next(&rd, &h, &pl) > 0) {
			if (h.type == PROTO_STATS && proto_get_stats(pl, h.len, &ret->s) == 0)
				r = 0;
			break;
		}
	}
	proto_reader_done(&rd);
	close(fd);
	if (r == 0 && container_get_status(c, &st) == 0 && st.pid > 0)
		ret->host_pss = host_memory(st.pid);
	ret->ok = r == 0;
	return r;
}

static void bytes_text(uint64_t b, char *buf, size_t size)
{
	static const char *const units[] = { "B", "kB", "MB", "GB", "TB" };
	double v = (double)b;
	size_t u = 0;

	while (v >= 1000 && u + 1 < ARRAY_SIZE(units))
		v /= 1000, u++;
	if (u == 0)
		str_printf(buf, size, "%lluB", (unsigned long long)b);
	else
		str_printf(buf, size, "%.3g%s", v, units[u]);
}

static void mib_text(uint64_t b, char *buf, size_t size)
{
	if (b >= (1ULL << 30))
		str_printf(buf, size, "%.2fGiB", (double)b / (1ULL << 30));
	else
		str_printf(buf, size, "%.2fMiB", (double)b / (1ULL << 20));
}

static void print_stats(const struct container *c, const struct sample *a, const struct sample *b,
			bool json)
{
	const struct proto_stats *s = &b->s;
	uint64_t used = s->mem_total > s->mem_available ? s->mem_total - s->mem_available : 0;
	double dt = (double)(b->s.uptime_ns - a->s.uptime_ns);
	double cpu = dt > 0 ? 100.0 * (double)(b->s.cpu_ns - a->s.cpu_ns) / dt : 0;
	double memp = s->mem_total ? 100.0 * (double)used / (double)s->mem_total : 0;
	char u[32], l[32], h[32], br[32], bw[32], nr[32], nt[32], mem[80], blk[80], net[80];

	if (json) {
		json_t *o = json_pack("{s:s, s:s, s:f, s:I, s:I, s:f, s:I, s:I, s:I, s:I, s:I, s:i}",
				      "ID", c->id, "Name", c->name, "CPUPerc", cpu, "MemUsage",
				      (json_int_t)used, "MemLimit", (json_int_t)s->mem_total, "MemPerc",
				      memp, "HostMem", (json_int_t)b->host_pss, "BlockRead",
				      (json_int_t)s->disk_read, "BlockWrite", (json_int_t)s->disk_write,
				      "NetRx", (json_int_t)s->net_rx, "NetTx", (json_int_t)s->net_tx,
				      "PIDs", (int)s->pids);
		char *t = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(4)) : NULL;
		if (t)
			printf("%s\n", t);
		free(t);
		json_decref(o);
		return;
	}
	mib_text(used, u, sizeof(u));
	mib_text(s->mem_total, l, sizeof(l));
	mib_text(b->host_pss, h, sizeof(h));
	bytes_text(s->disk_read, br, sizeof(br));
	bytes_text(s->disk_write, bw, sizeof(bw));
	bytes_text(s->net_rx, nr, sizeof(nr));
	bytes_text(s->net_tx, nt, sizeof(nt));
	str_printf(mem, sizeof(mem), "%s / %s", u, l);
	str_printf(blk, sizeof(blk), "%s / %s", br, bw);
	str_printf(net, sizeof(net), "%s / %s", nr, nt);
	printf("%-12s   %-20s   %6.2f%%   %-22s   %6.2f%%   %-10s   %-18s   %-18s   %u\n",
	       c->short_id, c->name, cpu, mem, memp, h, net, blk, s->pids);
}

struct stats_opts {
	bool no_stream, json;
};

static int stats_opt(int c, const char *value, void *ud)
{
	struct stats_opts *o = ud;

	switch (c) {
	case 'N':
		o->no_stream = true;
		break;
	case 'a':
		break;
	case 'F':
		return cli_parse_format(value, &o->json);
	}
	return 0;
}

int cmd_stats(int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{ 'N', 0, "no-stream", NULL, "print once and exit" },
		{ 'a', 'a', "all", NULL, "accepted (only running containers have figures)" },
		{ 'F', 0, "format", "FMT", "table (default) or json (one object a line)" },
		{ 0 },
	};
	static const struct cli_verb v = {
		"stats", "[OPTIONS] [CONTAINER...]",
		"Show running containers' resource use: CPU (of the VM), memory as the\n"
		"guest sees it and as the host pays for it (PSS of QEMU and the\n"
		"supervisor), network and disk I/O, processes.",
		opts, .max_operands = -1,
	};
	struct stats_opts o = { 0 };
	bool no_stream = false, json = false, tty = isatty(1);
	struct cove_error err = { 0 };
	struct cove_paths p;
	struct container *cs = NULL;
	struct sample *prev = NULL, *cur = NULL;
	size_t n = 0;
	int first, r, code = 0;

	r = cli_parse(&v, argc, argv, stats_opt, &o, &first);
	if (r)
		return r > 0 ? 0 : EXIT_COVE;
	no_stream = o.no_stream;
	json = o.json;
	if (paths_init_or_report(&p) < 0)
		return EXIT_COVE;
	if (first < argc) {
		cs = calloc((size_t)(argc - first), sizeof(*cs));
		for (int i = first; cs && i < argc; i++) {
			struct container_status st;
			if (container_find(&p, argv[i], &cs[n], &err) < 0) {
				cli_error("%s", err.msg);
				free(cs);
				return 1;
			}
			container_get_status(&cs[n], &st);
			if (st.status != CONTAINER_RUNNING) {
				cli_error("container %s is not running", argv[i]);
				free(cs);
				return 1;
			}
			n++;
		}
	} else {
		char **ids;
		size_t m;
		if (container_list(&p, &ids, &m, &err) < 0) {
			cli_error("%s", err.msg);
			return 1;
		}
		cs = calloc(m + 1, sizeof(*cs));
		for (size_t i = 0; cs && i < m; i++) {
			struct container_status st;
			if (container_find(&p, ids[i], &cs[n], &err) < 0)
				continue;
			container_get_status(&cs[n], &st);
			if (st.status == CONTAINER_RUNNING)
				n++;
		}
		container_list_free(ids, m);
	}
	prev = calloc(n + 1, sizeof(*prev));
	cur = calloc(n + 1, sizeof(*cur));
	if (!cs || !prev || !cur) {
		cli_error("out of memory");
		code = 1;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		sample(&cs[i], 10000, &prev[i]);
	for (;;) {
		usleep(no_stream ? 500000 : 1000000);
		for (size_t i = 0; i < n; i++)
			sample(&cs[i], 10000, &cur[i]);
		if (tty && !no_stream && !json)
			printf("\033[2J\033[H");
		if (!json)
			printf("%-12s   %-20s   %7s   %-22s   %7s   %-10s   %-18s   %-18s   %s\n",
			       "CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %",
			       "HOST MEM", "NET I/O", "BLOCK I/O", "PIDS");
		for (size_t i = 0; i < n; i++) {
			if (!cur[i].ok) {
				/* stopped meanwhile, or the guest did not answer */
				if (first < argc) {
					struct container_status st;
					container_get_status(&cs[i], &st);
					if (st.status == CONTAINER_RUNNING)
						cli_error("container %s did not answer the stats request",
							  cs[i].name);
					else
						cli_error("container %s is not running", cs[i].name);
					code = 1;
				}
				continue;
			}
			print_stats(&cs[i], prev[i].ok ? &prev[i] : &cur[i], &cur[i], json);
		}
		fflush(stdout);
		if (no_stream)
			break;
		memcpy(prev, cur, n * sizeof(*cur));
	}
out:
	free(cs);
	free(prev);
	free(cur);
	return code;
}
