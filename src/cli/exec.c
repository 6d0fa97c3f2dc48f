/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cove exec: a new process in a running container (its namespaces, its environment), relayed
 * like the main one. cove cp: files and trees in and out of a running container, as a tar
 * stream through an exec session that runs cove-init's own tar code in the container.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "options.h"
#include "engine/container.h"
#include "engine/spec.h"
#include "engine/supervisor.h"

#include "util/buf.h"
#include "util/tar.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

struct exec_opts {
	bool detach, interactive, tty;
	char **env;
	size_t envc;
	const char *workdir;
	const char *user;
};


static const struct cli_option exec_options[] = {
	{ 'd', 'd', "detach", NULL, "run it in the background" },
	{ 'i', 'i', "interactive", NULL, "keep stdin open and send it to the command" },
	{ 't', 't', "tty", NULL, "allocate a terminal" },
	{ 'e', 'e', "env", "K=V", "set an environment variable (K alone: copy ours)" },
	{ 'w', 'w', "workdir", "DIR", "working directory (default: the container's)" },
	{ 'u', 'u', "user", "USER[:GROUP]", "run as this user (default: the container's)" },
	{ 0 },
};

static const struct cli_verb exec_verb = {
	"exec", "[OPTIONS] CONTAINER COMMAND [ARG...]",
	"Run a command in a running container: its namespaces, its environment.", exec_options,
	"Exit status: the command's own; 125 if cove failed (or the container is not\n"
	"running), 126 if the command cannot be executed, 127 if it was not found.",
	.command_follows = true, .max_operands = -1,
};

static int exec_opt(int c, const char *value, void *ud)
{
	struct exec_opts *o = ud;
	struct cove_error err = { 0 };

	switch (c) {
	case 'd':
		o->detach = true;
		break;
	case 'i':
		o->interactive = true;
		break;
	case 't':
		o->tty = true;
		break;
	case 'e':
		if (env_list_add(&o->env, &o->envc, value, &err) < 0) {
			cli_error("%s", err.msg);
			return -EINVAL;
		}
		break;
	case 'w':
		if (cli_check_workdir(value) < 0)
			return -EINVAL;
		o->workdir = value;
		break;
	case 'u':
		o->user = value;
		break;
	}
	return 0;
}

int cmd_exec(int argc, char **argv)
{
	struct exec_opts o = { 0 };
	struct cove_error err = { 0 };
	struct session_result res = { .exit_code = EXIT_COVE };
	struct session_opts so = { 0 };
	struct proto_start m;
	struct cove_paths p;
	struct container c;
	struct container_spec spec = { 0 };
	char **env = NULL, term_env[] = "TERM=xterm";
	char **base = NULL;
	uint32_t envc;
	int first, r, code = EXIT_COVE;

	r = cli_parse(&exec_verb, argc, argv, exec_opt, &o, &first);
	if (r) {
		code = r > 0 ? 0 : EXIT_COVE;
		goto out;
	}
	if (argc - first < 2) {
		cli_error("missing %s; see 'cove exec --help'",
			  argc - first < 1 ? "CONTAINER" : "COMMAND");
		goto out;
	}
	if (o.tty && o.interactive && !o.detach && !isatty(0)) {
		cli_error("-it needs a terminal on stdin; drop -t, or run from a terminal");
		goto out;
	}
	if (paths_init(&p, &err) < 0 || container_find(&p, argv[first], &c, &err) < 0 ||
	    container_load_spec(&c, &spec, &err) < 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (spec_start(&spec, &m, &err) < 0) {
		cli_error("%s", err.msg);
		goto out;
	}
	/* the container's environment, TERM with -t, then -e */
	base = calloc(m.envc + 2, sizeof(char *));
	if (base) {
		memcpy(base, m.env, m.envc * sizeof(char *));
		if (o.tty)
			base[m.envc] = term_env;
		env = merge_env(base, m.envc + (o.tty ? 1 : 0), o.env, o.envc, &envc);
	}
	if (!env) {
		cli_error("out of memory");
		spec_start_done(&m);
		goto out;
	}
	free(m.argv);
	m.argv = argv + first + 1;
	m.argc = (uint32_t)(argc - first - 1);
	free(m.env);
	m.env = env;
	m.envc = envc;
	env = NULL;
	if (o.workdir)
		m.cwd = (char *)o.workdir;
	if (o.user)
		m.user = (char *)o.user;
	m.terminal = o.tty;
	m.open_stdin = o.interactive && !o.detach;
	m.exec = 1;
	m.rows = m.cols = 0;
	so.tty = o.tty;
	so.interactive = m.open_stdin;
	so.until_started = o.detach;
	if (o.tty && o.interactive && !o.detach && terminal_make_raw(0) < 0) {
		cli_error("cannot put the terminal in raw mode: %s", strerror(errno));
		m.argv = NULL;
		spec_start_done(&m);
		goto out;
	}
	r = container_exec(&c, &m, &so, &res, &err);
	terminal_restore();
	m.argv = NULL; /* ours, not allocated */
	spec_start_done(&m);
	if (r < 0) {
		cli_error("%s", err.msg);
		code = res.exit_code;
		goto out;
	}
	code = o.detach || res.detached ? (res.started ? 0 : res.exit_code) : res.exit_code;
out:
	free(base);
	env_list_free(o.env, o.envc);
	spec_done(&spec);
	return code;
}

/* ---- cp ---- */

/* "CTR:PATH" -> the container reference and the path; a local path has no colon before its
 * first slash ("./a:b" is local). */
static bool split_remote(char *arg, char **ret_ctr, char **ret_path)
{
	char *colon = strchr(arg, ':');
	char *slash = strchr(arg, '/');

	if (!colon || colon == arg || (slash && slash < colon))
		return false;
	*colon = '\0';
	*ret_ctr = arg;
	*ret_path = colon + 1;
	return true;
}

/* A container path, absolute: relative ones are taken from the container's working dir. */
static int container_path(const struct container_spec *spec, const char *path, char *buf,
			  size_t size)
{
	const char *cwd = spec->cwd;

	if (path[0] == '/')
		return str_copy(buf, size, path);
	if (!cwd || cwd[0] != '/')
		cwd = "/";
	return str_printf(buf, size, "%s%s%s", cwd, cwd[strlen(cwd) - 1] == '/' ? "" : "/",
			  path[0] ? path : ".");
}

static int cp_opt(int c, const char *value, void *ud)
{
	if (c == 'a')
		*(bool *)ud = true; /* -L is accepted for docker's sake: links are kept as links */
	return 0;
}

int cmd_cp(int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{ 'a', 'a', "archive", NULL,
		  "keep the files' owners (uid and gid); without it, files copied\nto the host "
		  "belong to you" },
		{ 'L', 'L', "follow-link", NULL, "accepted, for docker's sake" },
		{ 0 },
	};
	static const struct cli_verb v = {
		"cp", "[OPTIONS] SRC CONTAINER:DST | CONTAINER:SRC DST",
		"Copy files and trees into or out of a running container, keeping\n"
		"modes, owners, times and links. SRC ending in /. copies a directory's\n"
		"contents. '-' as SRC or DST is a tar stream on stdin or stdout.\n"
		"A stopped container is booted for the copy (its command does not\n"
		"run) and left stopped, with its state as it was.\n"
		"What comes from a container is not trusted on the host: device nodes are\n"
		"skipped, setuid and setgid bits cleared, and nothing lands outside the name asked\n"
		"for.",
		opts, .max_operands = -1,
	};
	struct cove_error err = { 0 };
	struct session_result res = { .exit_code = EXIT_COVE };
	struct session_opts so = { .no_signals = true };
	struct buf errs = BUF_INIT(1 << 16);
	struct proto_start m;
	struct cove_paths p;
	struct container c;
	struct container_spec spec = { 0 };
	char *src_ctr = NULL, *src_path, *dst_ctr = NULL, *dst_path, cpath[4096], *targv[2];
	int first, r, pfd[2] = { -1, -1 }, code = 1, status, maint_fd = -1;
	bool in, archive = false;
	pid_t pid = -1;

	r = cli_parse(&v, argc, argv, cp_opt, &archive, &first);
	if (r)
		return r > 0 ? 0 : EXIT_COVE;
	if (argc - first != 2) {
		cli_error("cove cp takes SRC and DST, one of them CONTAINER:PATH; see 'cove cp --help'");
		return EXIT_COVE;
	}
	in = !split_remote(argv[first], &src_ctr, &src_path);
	if (!split_remote(argv[first + 1], &dst_ctr, &dst_path))
		dst_ctr = NULL;
	if (in == !dst_ctr) {
		cli_error("exactly one of SRC and DST must be CONTAINER:PATH (write ./%s for a local "
			  "path with a colon)",
			  argv[first]);
		return EXIT_COVE;
	}
	if (paths_init(&p, &err) < 0 ||
	    container_find(&p, in ? dst_ctr : src_ctr, &c, &err) < 0 ||
	    container_load_spec(&c, &spec, &err) < 0) {
		cli_error("%s", err.msg);
		return 1;
	}
	if (container_path(&spec, in ? dst_path : src_path, cpath, sizeof(cpath)) < 0 ||
	    spec_start(&spec, &m, &err) < 0) {
		cli_error("%s", err.msg[0] ? err.msg : "path too long");
		spec_done(&spec);
		return 1;
	}
	if (container_boot_for_copy(&p, &c, &spec, cli_notice, &maint_fd, &err) < 0) {
		cli_error("%s", err.msg);
		spec_start_done(&m);
		spec_done(&spec);
		return 1;
	}
	targv[0] = cpath;
	targv[1] = NULL;
	free(m.argv);
	m.argv = targv;
	m.argc = 1;
	m.user = (char *)"0:0";
	m.cwd = (char *)"/";
	m.terminal = 0;
	m.exec = 1;
	m.tool = in ? PROTO_TOOL_TAR_IN : PROTO_TOOL_TAR_OUT;
	m.open_stdin = in;
	so.interactive = in;
	so.err_capture = &errs;

	/* the local end: a child writing or reading the tar, unless it is our stdin/stdout */
	const char *local = in ? argv[first] : argv[first + 1];
	if (strcmp(local, "-") != 0) {
		if (pipe2(pfd, O_CLOEXEC) < 0) {
			cli_error("pipe failed: %s", strerror(errno));
			goto done;
		}
		pid = fork();
		if (pid < 0) {
			cli_error("fork failed: %s", strerror(errno));
			goto done;
		}
		if (pid == 0) {
			char msg[1024];
			signal(SIGPIPE, SIG_DFL);
			if (in) {
				close(pfd[0]);
				r = tar_cp_out(pfd[1], local, msg, sizeof(msg));
			} else {
				/* from a container that may be hostile: docker's rules and less */
				struct tar_in_opts to = { .keep_owners = archive };
				char top[256];

				close(pfd[1]);
				if (tar_cp_top(cpath, top, sizeof(top)) == 0)
					to.top = top;
				r = tar_cp_in(pfd[0], local, &to, msg, sizeof(msg));
				if (to.skipped)
					cli_error("skipped %u device node%s: a container's devices are "
						  "not made on the host",
						  to.skipped, to.skipped == 1 ? "" : "s");
			}
			if (r < 0)
				cli_error("%s", msg);
			_exit(r < 0 ? 1 : 0);
		}
		if (in) {
			closep(&pfd[1]);
			so.in_fd = pfd[0];
		} else {
			closep(&pfd[0]);
			so.out_fd = pfd[1];
		}
	} else {
		so.in_fd = 0;
		so.out_fd = 1;
	}
	r = container_exec(&c, &m, &so, &res, &err);
	if (pfd[1] >= 0)
		closep(&pfd[1]); /* EOF for the local reader */
	if (pid > 0) {
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	if (r < 0) {
		cli_error("%s", err.msg);
		goto done;
	}
	if (res.exit_code != 0) {
		/* the guest's one line, if it said anything */
		char *line = (char *)errs.data;
		if (errs.len && buf_append(&errs, "", 1) == 0) {
			line[strcspn(line, "\n")] = '\0';
			cli_error("%s", line);
		} else {
			cli_error("copying %s the container failed (status %d)", in ? "into" : "out of",
				  res.exit_code);
		}
		goto done;
	}
	if (pid > 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		goto done; /* the local end said why */
	code = 0;
done:
	container_end_boot_for_copy(&c, maint_fd);
	closep(&pfd[0]);
	closep(&pfd[1]);
	m.argv = NULL;
	spec_start_done(&m);
	buf_done(&errs);
	spec_done(&spec);
	return code;
}
