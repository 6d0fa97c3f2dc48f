/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One option parser for every verb, with docker's rules: -abc (combined flags), -tVALUE and
 * -t VALUE, --name=VALUE and --name VALUE, "--" ends the options, and options may follow the
 * operands (`cove image rm IMG -f`) except where the verb runs a command (run, exec: what
 * follows IMAGE or CONTAINER is the command's). --help everywhere, -h too where the verb does
 * not use it (run's -h is --hostname, as in docker). The help text is made from the same table,
 * in one layout.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "util/error.h"

struct cli_option {
	int id;           /* passed to the verb's callback: the short letter, or >= 256 */
	char letter;      /* -x, 0 for none */
	const char *name; /* --name, NULL for none */
	const char *arg;  /* the value's name in the help ("SECS"); NULL: a flag, takes none */
	const char *help; /* its help, lines split by '\n'; NULL: an alias, not listed */
};

struct cli_verb {
	const char *name;     /* as typed after `cove`: "stop", "image rm" */
	const char *args;     /* after the name in the usage line: "[OPTIONS] CONTAINER..." */
	const char *about;    /* what it does, shown under the usage line */
	const struct cli_option *options; /* ends with { 0 } */
	const char *more;     /* shown after the options (NULL: nothing) */
	bool command_follows; /* options end at the first operand (the rest is a command) */
	int min_operands;     /* fewer: "missing ..." (see missing) */
	int max_operands;     /* more: "too many arguments" (-1: no limit) */
	const char *missing;  /* what is missing when there are too few: "CONTAINER" */
};

/* The verb's help, as --help prints it. */
void cli_usage(const struct cli_verb *v, FILE *f);

/*
 * Parse argv[1..] (argv[0] is the verb). For each option, opt(id, value or NULL, ud); a
 * negative return stops the parse (opt has said why). Operands end up, in order, at
 * argv[*ret_first..argc). Returns 0, 1 after printing --help (exit 0), or -EINVAL after saying
 * what was wrong in one line (exit 125).
 */
int cli_parse(const struct cli_verb *v, int argc, char **argv,
	      int (*opt)(int id, const char *value, void *ud), void *ud, int *ret_first);

/* cli_parse for verbs that return an exit code: -1 to go on, else the code (0 after --help,
 * EXIT_COVE after a bad option). */
int cli_parse_verb(const struct cli_verb *v, int argc, char **argv,
		   int (*opt)(int id, const char *value, void *ud), void *ud, int *ret_first);

/* --format: "table" (false) or "json"/"{{json .}}" (true) into *ret_json; anything else is
 * refused in one line (-EINVAL). */
int cli_parse_format(const char *value, bool *ret_json);
/* --label KEY=VALUE (or KEY alone: "") into *labels (an object made on first use); -EINVAL,
 * said, for a bad one. */
int cli_add_label(json_t **labels, const char *kv);
/* -w/--workdir: an absolute path, else one line (-EINVAL). */
int cli_check_workdir(const char *value);
/* -m/--memory: a size from SPEC_MIN_MEMORY to SPEC_MAX_MEMORY into *ret, else one line
 * (-EINVAL). */
int cli_parse_memory(const char *value, uint64_t *ret);
/* --cpus: a number above 0 and at most SPEC_MAX_CPUS; a fraction is rounded up (docker takes
 * fractions, a VM has whole CPUs). Else one line (-EINVAL). */
int cli_parse_cpus(const char *value, unsigned *ret);

struct cli_command;
/*
 * Run the command argv[1] names from cmds[n] (an entry without run is a heading in the help),
 * with argv shifted by one; --help, -h and `help` list them. group is what comes before the
 * command ("image"; NULL for cove itself).
 */
int cli_dispatch(const char *group, const char *about, const struct cli_command *cmds, size_t n,
		 int argc, char **argv);

/* docker's inspect of named things: fn gives each name's JSON (NULL, with err, when it cannot);
 * they are printed as one array. 125 when any failed, else 0. */
int cli_inspect_each(char **names, int n, json_t *(*fn)(const char *name, void *ud,
							  struct cove_error *err),
		     void *ud);
/* docker's rm of named things: fn removes each (0, or -errno with err: said on stderr, unless
 * it is -ENOENT and missing_ok); the name is printed when it did. 125 when any failed. */
int cli_remove_each(char **names, int n, bool missing_ok,
		    int (*fn)(const char *name, void *ud, struct cove_error *err), void *ud);
