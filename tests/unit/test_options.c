/* SPDX-License-Identifier: Apache-2.0 */
/* The CLI's option parser (src/cli/options.c), with docker's rules, and its help layout. */
#define _GNU_SOURCE
#include "test.h"

#include "cli/cli.h"
#include "cli/options.h"

#include <errno.h>

#include <stdarg.h>
#include <stdlib.h>

static char said[512];
static char seen[512];

/* the parser's one line goes here instead of stderr */
void cli_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(said, sizeof(said), fmt, ap);
	va_end(ap);
}

static int record(int id, const char *value, void *ud)
{
	size_t n = strlen(seen);

	(void)ud;
	snprintf(seen + n, sizeof(seen) - n, "%s%c%s%s", n ? " " : "", id < 256 ? id : '#',
		 value ? "=" : "", value ? value : "");
	return id == 'x' ? -1 : 0;
}

static const struct cli_option opts[] = {
	{ 'f', 'f', "force", NULL, "force it" },
	{ 'q', 'q', "quiet", NULL, "say less" },
	{ 't', 't', "time", "SECS", "seconds to wait\nbefore the kill" },
	{ 't', 0, "timeout", "SECS", NULL },
	{ 300, 0, "format", "FMT", "output format" },
	{ 'x', 'x', "refuse", NULL, "refused by the callback" },
	{ 0 },
};
static const struct cli_verb rm = { "image rm", "[OPTIONS] IMAGE...", "Remove images.", opts,
				    NULL, false, 1, -1, "IMAGE" };
static const struct cli_verb run = { "run", "[OPTIONS] IMAGE [COMMAND [ARG...]]", "Run.", opts,
				     "More.", true, 1, -1, "IMAGE" };

/* parse the words of line (split at spaces) with v; the operands, space-separated */
static int parse(const struct cli_verb *v, const char *line, char *ops, size_t size)
{
	char buf[256], *words[32], *save = NULL;
	int n = 0, first = 0, r;

	snprintf(buf, sizeof(buf), "%s", line);
	words[n++] = (char *)"verb";
	for (char *w = strtok_r(buf, " ", &save); w && n < 31; w = strtok_r(NULL, " ", &save))
		words[n++] = w;
	words[n] = NULL;
	said[0] = seen[0] = ops[0] = '\0';
	r = cli_parse(v, n, words, record, NULL, &first);
	for (int i = first; r == 0 && i < n; i++) {
		size_t len = strlen(ops);
		snprintf(ops + len, size - len, "%s%s", len ? " " : "", words[i]);
	}
	return r;
}

TEST(docker_rules)
{
	char ops[256];

	CHECK_EQ_INT(parse(&rm, "-fq a b", ops, sizeof(ops)), 0);
	CHECK_EQ_STR(seen, "f q");
	CHECK_EQ_STR(ops, "a b");
	/* options after the operands, as docker takes them */
	CHECK_EQ_INT(parse(&rm, "a -f b --time=5", ops, sizeof(ops)), 0);
	CHECK_EQ_STR(seen, "f t=5");
	CHECK_EQ_STR(ops, "a b");
	CHECK_EQ_INT(parse(&rm, "-t5 -t 6 --timeout 7 --format json a", ops, sizeof(ops)), 0);
	CHECK_EQ_STR(seen, "t=5 t=6 t=7 #=json");
	CHECK_EQ_INT(parse(&rm, "-ft 3 a", ops, sizeof(ops)), 0);
	CHECK_EQ_STR(seen, "f t=3");
	/* "--" ends the options; "-" is an operand */
	CHECK_EQ_INT(parse(&rm, "-f -- -q -", ops, sizeof(ops)), 0);
	CHECK_EQ_STR(seen, "f");
	CHECK_EQ_STR(ops, "-q -");
	/* a verb that runs a command stops at its first operand */
	CHECK_EQ_INT(parse(&run, "-q busybox sh -f -c x", ops, sizeof(ops)), 0);
	CHECK_EQ_STR(seen, "q");
	CHECK_EQ_STR(ops, "busybox sh -f -c x");
}

TEST(one_line_errors)
{
	char ops[256];

	CHECK_EQ_INT(parse(&rm, "--bogus a", ops, sizeof(ops)), -EINVAL);
	CHECK_EQ_STR(said, "unknown option '--bogus'; see 'cove image rm --help'");
	CHECK_EQ_INT(parse(&rm, "--bogus=1 a", ops, sizeof(ops)), -EINVAL);
	CHECK_EQ_STR(said, "unknown option '--bogus'; see 'cove image rm --help'");
	CHECK_EQ_INT(parse(&rm, "-fz a", ops, sizeof(ops)), -EINVAL);
	CHECK_EQ_STR(said, "unknown option '-z'; see 'cove image rm --help'");
	CHECK_EQ_INT(parse(&rm, "a --time", ops, sizeof(ops)), -EINVAL);
	CHECK_EQ_STR(said, "option '--time' needs a value; see 'cove image rm --help'");
	CHECK_EQ_INT(parse(&rm, "a -t", ops, sizeof(ops)), -EINVAL);
	CHECK_EQ_STR(said, "option '-t' needs a value; see 'cove image rm --help'");
	CHECK_EQ_INT(parse(&rm, "--force=yes a", ops, sizeof(ops)), -EINVAL);
	CHECK_EQ_STR(said, "option '--force' takes no value; see 'cove image rm --help'");
	CHECK_EQ_INT(parse(&rm, "-f", ops, sizeof(ops)), -EINVAL);
	CHECK_EQ_STR(said, "missing IMAGE; see 'cove image rm --help'");
	/* the callback's own refusal stops the parse; it has said why */
	said[0] = '\0';
	CHECK_EQ_INT(parse(&rm, "-x a", ops, sizeof(ops)), -EINVAL);
	CHECK_EQ_STR(said, "");
}

TEST(help)
{
	char ops[256], *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	CHECK_EQ_INT(parse(&rm, "a --help", ops, sizeof(ops)), 1);
	CHECK_EQ_INT(parse(&rm, "-h", ops, sizeof(ops)), 1);
	cli_usage(&run, f);
	fclose(f);
	CHECK_EQ_STR(text, "Usage: cove run [OPTIONS] IMAGE [COMMAND [ARG...]]\n\n"
			   "Run.\n\n"
			   "Options:\n"
			   "  -f, --force                 force it\n"
			   "  -q, --quiet                 say less\n"
			   "  -t, --time SECS             seconds to wait\n"
			   "                              before the kill\n"
			   "      --format FMT            output format\n"
			   "  -x, --refuse                refused by the callback\n"
			   "  -h, --help                  show this help\n"
			   "\nMore.\n");
	free(text);
}

int main(void)
{
	RUN(docker_rules);
	RUN(one_line_errors);
	RUN(help);
	return test_done();
}
