/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "options.h"

#include "cli.h"
#include "engine/spec.h"

#include <string.h>

#define ID_HELP (-1)

static bool uses_letter_h(const struct cli_verb *v)
{
	for (const struct cli_option *o = v->options; o && o->id; o++)
		if (o->letter == 'h')
			return true;
	return false;
}

void cli_usage(const struct cli_verb *v, FILE *f)
{
	bool own_h = uses_letter_h(v);

	fprintf(f, "Usage: cove %s %s\n\n%s\n", v->name, v->args, v->about);
	fprintf(f, "\nOptions:\n");
	for (const struct cli_option *o = v->options; o && o->id; o++) {
		char head[64];
		const char *line = o->help, *nl;
		int n;

		if (!o->help)
			continue;
		n = snprintf(head, sizeof(head), "  %s%c%s%s%s%s%s", o->letter ? "-" : " ",
			     o->letter ? o->letter : ' ', o->letter && o->name ? "," : " ",
			     o->name ? " --" : "", o->name ? o->name : "", o->arg ? " " : "",
			     o->arg ? o->arg : "");
		/* the help starts in column 30, or on the next line when the head is wider */
		for (bool first = true; line; first = false, line = nl ? nl + 1 : NULL) {
			nl = strchr(line, '\n');
			if (first && n < 29)
				fprintf(f, "%-29s %.*s\n", head, nl ? (int)(nl - line) : (int)strlen(line),
					line);
			else if (first)
				fprintf(f, "%s\n%-29s %.*s\n", head, "",
					nl ? (int)(nl - line) : (int)strlen(line), line);
			else
				fprintf(f, "%-29s %.*s\n", "", nl ? (int)(nl - line) : (int)strlen(line),
					line);
		}
	}
	fprintf(f, "%-29s %s\n", own_h ? "      --help" : "  -h, --help", "show this help");
	if (v->more)
		fprintf(f, "\n%s\n", v->more);
}

static const struct cli_option *by_letter(const struct cli_verb *v, char c)
{
	static const struct cli_option help = { ID_HELP, 'h', "help", NULL, "" };

	for (const struct cli_option *o = v->options; o && o->id; o++)
		if (o->letter == c)
			return o;
	return c == 'h' ? &help : NULL;
}

static const struct cli_option *by_name(const struct cli_verb *v, const char *name, size_t len)
{
	static const struct cli_option help = { ID_HELP, 0, "help", NULL, "" };

	for (const struct cli_option *o = v->options; o && o->id; o++)
		if (o->name && strlen(o->name) == len && strncmp(o->name, name, len) == 0)
			return o;
	return len == 4 && strncmp(name, "help", 4) == 0 ? &help : NULL;
}

enum problem { UNKNOWN, NEEDS_VALUE, TAKES_NONE };

static int fail(const struct cli_verb *v, enum problem what, const char *opt, int len)
{
	if (what == UNKNOWN)
		cli_error("unknown option '%.*s'; see 'cove %s --help'", len, opt, v->name);
	else
		cli_error("option '%.*s' %s; see 'cove %s --help'", len, opt,
			  what == NEEDS_VALUE ? "needs a value" : "takes no value", v->name);
	return -EINVAL;
}

int cli_parse(const struct cli_verb *v, int argc, char **argv,
	      int (*opt)(int id, const char *value, void *ud), void *ud, int *ret_first)
{
	char **operands = calloc((size_t)argc + 1, sizeof(char *));
	int nops = 0, i, r = 0, first;
	bool help = false;

	if (!operands) {
		cli_error("out of memory");
		return -EINVAL;
	}
	for (i = 1; i < argc && r == 0; i++) {
		char *a = argv[i];
		const struct cli_option *o;
		const char *value = NULL;

		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[0] != '-' || a[1] == '\0') { /* an operand ("-" is one: stdin or stdout) */
			operands[nops++] = a;
			if (v->command_follows) {
				i++;
				break;
			}
			continue;
		}
		if (a[1] == '-') { /* --name, --name=value, --name value */
			const char *eq = strchr(a + 2, '=');
			size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);

			o = by_name(v, a + 2, len);
			if (!o) {
				r = fail(v, UNKNOWN, a, eq ? (int)(eq - a) : (int)strlen(a));
				break;
			}
			if (o->arg) {
				if (eq)
					value = eq + 1;
				else if (i + 1 < argc)
					value = argv[++i];
				else
					r = fail(v, NEEDS_VALUE, a, (int)strlen(a));
			} else if (eq) {
				r = fail(v, TAKES_NONE, a, (int)(eq - a));
			}
			if (r == 0 && o->id == ID_HELP)
				help = true;
			else if (r == 0)
				r = opt(o->id, value, ud) < 0 ? -EINVAL : 0;
			continue;
		}
		/* -x, -abc, -tVALUE, -t VALUE */
		for (const char *p = a + 1; *p && r == 0; p++) {
			char flag[3] = { '-', *p, '\0' };

			o = by_letter(v, *p);
			if (!o) {
				r = fail(v, UNKNOWN, flag, 2);
				break;
			}
			if (o->id == ID_HELP) {
				help = true;
				continue;
			}
			if (!o->arg) {
				r = opt(o->id, NULL, ud) < 0 ? -EINVAL : 0;
				continue;
			}
			if (p[1])
				value = p + 1;
			else if (i + 1 < argc)
				value = argv[++i];
			else {
				r = fail(v, NEEDS_VALUE, flag, 2);
				break;
			}
			r = opt(o->id, value, ud) < 0 ? -EINVAL : 0;
			break; /* the rest of this word was the value */
		}
	}
	if (r < 0) {
		free(operands);
		return r;
	}
	if (help) {
		free(operands);
		cli_usage(v, stdout);
		return 1;
	}
	/* operands last, in order: those seen, then everything after "--" or the command */
	while (i < argc)
		operands[nops++] = argv[i++];
	first = argc - nops;
	memcpy(argv + first, operands, (size_t)nops * sizeof(char *));
	free(operands);
	if (nops < v->min_operands) {
		cli_error("missing %s; see 'cove %s --help'", v->missing ? v->missing : "arguments",
			  v->name);
		return -EINVAL;
	}
	if (v->max_operands >= 0 && nops > v->max_operands) {
		cli_error("too many arguments ('%s'); see 'cove %s --help'",
			  argv[first + v->max_operands], v->name);
		return -EINVAL;
	}
	*ret_first = first;
	return 0;
}

int cli_parse_format(const char *value, bool *ret_json)
{
	if (strcmp(value, "json") == 0 || strcmp(value, "{{json .}}") == 0) {
		*ret_json = true;
		return 0;
	}
	if (strcmp(value, "table") == 0) {
		*ret_json = false;
		return 0;
	}
	cli_error("unsupported --format '%s': use table or json", value);
	return -EINVAL;
}

int cli_parse_memory(const char *value, uint64_t *ret)
{
	uint64_t v;

	if (parse_size(value, &v) < 0) {
		cli_error("invalid --memory '%s': expected a size such as 256m or 1g", value);
		return -EINVAL;
	}
	if (v < SPEC_MIN_MEMORY) {
		cli_error("--memory %s is too small: a VM needs at least 64m", value);
		return -EINVAL;
	}
	if (v > SPEC_MAX_MEMORY) {
		cli_error("--memory %s is too large", value);
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

int cli_parse_cpus(const char *value, unsigned *ret)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(value, &end);
	if (errno || end == value || *end || !(d > 0) || d > SPEC_MAX_CPUS) {
		cli_error("invalid --cpus '%s': expected a number above 0 and at most %d", value,
			  SPEC_MAX_CPUS);
		return -EINVAL;
	}
	*ret = (unsigned)d;
	if ((double)*ret < d)
		(*ret)++;
	return 0;
}

int cli_check_workdir(const char *value)
{
	if (value[0] == '/')
		return 0;
	cli_error("invalid working directory '%s': it must be an absolute path", value);
	return -EINVAL;
}

static void group_usage(const char *group, const char *about, const struct cli_command *cmds,
			size_t n, FILE *f)
{
	fprintf(f, "Usage: cove %s%sCOMMAND [OPTIONS]\n\n%s\n", group ? group : "", group ? " " : "",
		about);
	if (n && cmds[0].run)
		fprintf(f, "\nCommands:\n");
	for (size_t i = 0; i < n; i++) {
		if (!cmds[i].run)
			fprintf(f, "\n%s\n", cmds[i].name);
		else if (cmds[i].summary)
			fprintf(f, "  %-10s %s\n", cmds[i].name, cmds[i].summary);
	}
	fprintf(f, "\nRun 'cove %s%sCOMMAND --help' for more about a command.\n", group ? group : "",
		group ? " " : "");
}

int cli_dispatch(const char *group, const char *about, const struct cli_command *cmds, size_t n,
		 int argc, char **argv)
{
	if (argc < 2) {
		group_usage(group, about, cmds, n, stderr);
		return EXIT_COVE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		group_usage(group, about, cmds, n, stdout);
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		if (cmds[i].run && strcmp(argv[1], cmds[i].name) == 0)
			return cmds[i].run(argc - 1, argv + 1);
	cli_error("unknown command '%s%s%s'; see 'cove %s%s--help'", group ? group : "",
		  group ? " " : "", argv[1], group ? group : "", group ? " " : "");
	return EXIT_COVE;
}

int cli_parse_verb(const struct cli_verb *v, int argc, char **argv,
		   int (*opt)(int id, const char *value, void *ud), void *ud, int *ret_first)
{
	int r = cli_parse(v, argc, argv, opt, ud, ret_first);

	return r == 0 ? -1 : r > 0 ? 0 : EXIT_COVE;
}

int cli_add_label(json_t **labels, const char *kv)
{
	const char *eq = strchr(kv, '=');
	size_t klen = eq ? (size_t)(eq - kv) : strlen(kv);
	char key[256];

	if (klen == 0 || klen >= sizeof(key)) {
		cli_error("invalid label '%s': expected KEY=VALUE", kv);
		return -EINVAL;
	}
	memcpy(key, kv, klen);
	key[klen] = '\0';
	if (!*labels)
		*labels = json_object();
	json_object_set_new(*labels, key, json_string(eq ? eq + 1 : ""));
	return 0;
}

int cli_inspect_each(char **names, int n, json_t *(*fn)(const char *name, void *ud,
							  struct cove_error *err),
		     void *ud)
{
	json_t *arr = json_array();
	char *text;
	int code = 0;

	for (int i = 0; arr && i < n; i++) {
		struct cove_error err = { 0 };
		json_t *j = fn(names[i], ud, &err);

		if (!j) {
			cli_error("%s", err.msg);
			code = 125;
			continue;
		}
		json_array_append_new(arr, j);
	}
	text = arr ? json_dumps(arr, JSON_INDENT(4)) : NULL;
	if (text && json_array_size(arr))
		printf("%s\n", text);
	free(text);
	json_decref(arr);
	return code;
}

int cli_remove_each(char **names, int n, bool missing_ok,
		    int (*fn)(const char *name, void *ud, struct cove_error *err), void *ud)
{
	int code = 0;

	for (int i = 0; i < n; i++) {
		struct cove_error err = { 0 };
		int r = fn(names[i], ud, &err);

		if (r == -ENOENT && missing_ok)
			continue;
		if (r < 0) {
			cli_error("%s", err.msg);
			code = 125;
			continue;
		}
		printf("%s\n", names[i]);
	}
	return code;
}
