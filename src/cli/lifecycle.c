/* SPDX-License-Identifier: Apache-2.0 */
/* cove start, stop, kill, restart, rm, wait, attach, prune: a container's life after create. */
#define _GNU_SOURCE
#include "cli.h"
#include "engine/volume.h"
#include "options.h"

#include "engine/network.h"
#include "engine/container.h"
#include "engine/supervisor.h"

#include "vm/accel.h"

#include <signal.h>
#include <string.h>

#define RM_FORCE_WAIT_MS 15000

static const char *shown(const struct container *c)
{
	return c->name[0] ? c->name : c->short_id;
}

/* Send one frame on a new connection to c's supervisor and leave it open; -ENOTCONN if the
 * container is not running. */
static int send_request(const struct container *c, const struct buf *frame, struct cove_error *err)
{
	int fd = supervisor_connect(c, err);

	if (fd < 0)
		return fd;
	if (write_full(fd, frame->data, frame->len) < 0) {
		int e = errno;
		close(fd);
		return cove_error_set(err, e, "cannot talk to the supervisor of %s: %s", shown(c),
				      strerror(e));
	}
	return fd;
}

/* Run fn on each container argv names, printing the name of each that succeeds; 1 if any
 * failed (and said why). */
static int each_named(const struct cove_paths *p, int first, int argc, char **argv,
		      int (*fn)(const struct cove_paths *p, struct container *c, const void *ud),
		      const void *ud)
{
	int failed = 0;

	for (int i = first; i < argc; i++) {
		struct container c;
		if (cli_find(p, argv[i], &c) < 0 || fn(p, &c, ud) < 0) {
			failed = 1;
			continue;
		}
		printf("%s\n", argv[i]);
	}
	return failed;
}

/* ---- start ---- */

struct start_opts {
	bool attach, interactive;
	const char *accel;
};

static int start_opt(int c, const char *arg, void *ud)
{
	struct start_opts *o = ud;

	if (c == 'a')
		o->attach = true;
	else if (c == 'i')
		o->interactive = true;
	else if (c == 'A')
		o->accel = arg; /* checked with COVE_ACCEL once the options are read */
	return 0;
}

static int start_one(const struct cove_paths *p, const char *ref, const struct start_opts *o,
		     int *ret_code)
{
	struct cove_error err = { 0 };
	struct container c;
	struct container_spec spec;
	int r;

	if (cli_find(p, ref, &c) < 0)
		return -ENOENT;
	r = container_lock(&c, 0);
	if (r == -EBUSY) {
		/* already running: nothing to do (docker's answer too) */
		if (o->attach) {
			cli_error("container %s is already running; use 'cove attach'", shown(&c));
			return -EBUSY;
		}
		return 0;
	}
	if (r < 0) {
		cli_error("cannot lock container %s: %s", shown(&c), strerror(-r));
		return r;
	}
	if (container_load_spec(&c, &spec, &err) < 0) {
		cli_error("%s", err.msg);
		container_unlock(&c);
		return -EINVAL;
	}
	if (o->accel) { /* this start only */
		free(spec.accel);
		spec.accel = strdup(o->accel);
	}
	if (o->attach && o->interactive && spec.terminal && !isatty(0)) {
		cli_error("container %s has a terminal: 'start -ai' needs a terminal on stdin",
			  shown(&c));
		spec_done(&spec);
		container_unlock(&c);
		return -ENOTTY;
	}
	r = container_start_attached(p, &c, &spec, o->attach, o->interactive && spec.open_stdin,
				     spec.terminal, cli_notice, &err);
	spec_done(&spec);
	container_unlock(&c);
	if (r < 0) {
		if (err.msg[0])
			cli_error("%s", err.msg);
		*ret_code = -r;
		return -EIO;
	}
	*ret_code = r;
	return 0;
}

int cmd_start(int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{ 'a', 'a', "attach", NULL, "attach to its output and exit with its status" },
		{ 'i', 'i', "interactive", NULL, "attach stdin too" },
		{ 'A', 0, "accel", "kvm|tcg|auto",
		  "what the VM runs on this time (default: the\ncontainer's --accel, else "
		  "$COVE_ACCEL, else auto)" },
		{ 0 },
	};
	static const struct cli_verb v = {
		"start", "[OPTIONS] CONTAINER...",
		"Start stopped or created containers (with the files they had).", opts,
		.min_operands = 1, .max_operands = -1, .missing = "CONTAINER",
	};
	struct start_opts o = { 0 };
	struct cove_paths p;
	int r, failed = 0, code = 0, first;

	r = cli_parse(&v, argc, argv, start_opt, &o, &first);
	if (r)
		return r > 0 ? 0 : EXIT_COVE;
	if (paths_init_or_report(&p) < 0)
		return EXIT_COVE;
	{
		struct cove_error err = { 0 };
		enum vm_accel a;
		if (vm_accel_wanted(o.accel, &a, &err) < 0) {
			cli_error("%s", err.msg);
			return EXIT_COVE;
		}
	}
	if (o.attach && argc - first > 1) {
		cli_error("'start -a' takes one container");
		return EXIT_COVE;
	}
	for (int i = first; i < argc; i++) {
		if (start_one(&p, argv[i], &o, &code) < 0) {
			failed = 1;
			continue;
		}
		if (!o.attach)
			printf("%s\n", argv[i]);
	}
	if (o.attach)
		return failed && code == 0 ? EXIT_COVE : code;
	return failed;
}

/* ---- stop, restart ---- */

struct stop_opts {
	int timeout; /* -1: the container's own */
	int signal;  /* 0: the container's own */
};

static int stop_opt(int c, const char *arg, void *ud)
{
	struct stop_opts *o = ud;
	uint64_t v;

	if (c == 't') {
		if (parse_u64(arg, 86400, &v) < 0) {
			cli_error("invalid --time '%s': expected seconds, 0 to 86400", arg);
			return -EINVAL;
		}
		o->timeout = (int)v;
	} else if (c == 's') {
		if (signal_parse(arg, &o->signal) < 0) {
			cli_error("invalid --signal '%s': expected a signal name or number", arg);
			return -EINVAL;
		}
	}
	return 0;
}

static int stop_one(const struct cove_paths *p, struct container *c, const void *ud)
{
	const struct stop_opts *o = ud;
	struct cove_error err = { 0 };
	struct container_status st;
	struct container_spec spec;
	struct buf f = BUF_INIT(64);
	struct proto_stop m;
	int fd;

	container_get_status(c, &st);
	if (st.status != CONTAINER_RUNNING)
		return 0;
	if (container_load_spec(c, &spec, &err) < 0) {
		cli_error("%s", err.msg);
		return -EINVAL;
	}
	m.signal = (uint32_t)(o->signal ? o->signal : spec.stop_signal);
	if (m.signal < 1 || m.signal > 64)
		m.signal = SIGTERM;
	m.timeout_s = (uint32_t)(o->timeout >= 0 ? o->timeout : spec.stop_timeout);
	spec_done(&spec);
	if (proto_put_stop(&f, &m) < 0) {
		buf_done(&f);
		return -EINVAL;
	}
	fd = send_request(c, &f, &err);
	buf_done(&f);
	if (fd == -ENOTCONN)
		return 0; /* it stopped meanwhile */
	if (fd < 0) {
		cli_error("%s", err.msg);
		return fd;
	}
	/* the supervisor closes the connection as it exits; the lock says it is done */
	container_wait_stopped(c);
	close(fd);
	return 0;
}

/* stop and restart: the same options, then fn on each container named. */
static const struct cli_option stop_options[] = {
	{ 't', 't', "time", "SECS",
	  "seconds to wait before SIGKILL (default: the\ncontainer's --stop-timeout, 10)" },
	{ 't', 0, "timeout", "SECS", NULL },
	{ 's', 's', "signal", "SIG", "signal to send first" },
	{ 0 },
};

static int stop_like(int argc, char **argv, const struct cli_verb *v,
		     int (*fn)(const struct cove_paths *p, struct container *c, const void *ud))
{
	struct stop_opts o = { .timeout = -1 };
	struct cove_paths p;
	int r, first;

	r = cli_parse(v, argc, argv, stop_opt, &o, &first);
	if (r)
		return r > 0 ? 0 : EXIT_COVE;
	if (paths_init_or_report(&p) < 0)
		return EXIT_COVE;
	return each_named(&p, first, argc, argv, fn, &o);
}

int cmd_stop(int argc, char **argv)
{
	static const struct cli_verb v = {
		"stop", "[OPTIONS] CONTAINER...",
		"Stop running containers: the stop signal (the image's StopSignal, or\n"
		"--stop-signal, or SIGTERM), then SIGKILL after the timeout, then a clean\n"
		"shutdown of the VM (sync, unmount, power off).",
		stop_options, .min_operands = 1, .max_operands = -1, .missing = "CONTAINER",
	};
	return stop_like(argc, argv, &v, stop_one);
}

static int restart_one(const struct cove_paths *p, struct container *c, const void *ud)
{
	struct start_opts so = { 0 };
	int code;

	if (stop_one(p, c, ud) < 0)
		return -EIO;
	return start_one(p, c->id, &so, &code);
}

int cmd_restart(int argc, char **argv)
{
	static const struct cli_verb v = {
		"restart", "[OPTIONS] CONTAINER...",
		"Stop containers (as 'cove stop' does) and start them again.", stop_options,
		.min_operands = 1, .max_operands = -1, .missing = "CONTAINER",
	};
	return stop_like(argc, argv, &v, restart_one);
}

/* ---- kill ---- */

static int kill_one(const struct cove_paths *p, struct container *c, const void *ud)
{
	const struct stop_opts *o = ud;
	struct cove_error err = { 0 };
	struct buf f = BUF_INIT(64);
	int fd;

	proto_put_u32(&f, PROTO_SIGNAL, 1, (uint32_t)o->signal);
	fd = send_request(c, &f, &err);
	buf_done(&f);
	if (fd < 0) {
		cli_error("%s", err.msg);
		return fd;
	}
	close(fd);
	return 0;
}

int cmd_kill(int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{ 's', 's', "signal", "SIG", "the signal (default SIGKILL)" },
		{ 0 },
	};
	static const struct cli_verb v = {
		"kill", "[OPTIONS] CONTAINER...",
		"Send a signal to the main process of running containers.", opts,
		.min_operands = 1, .max_operands = -1, .missing = "CONTAINER",
	};
	struct stop_opts o = { .timeout = -1, .signal = SIGKILL };
	struct cove_paths p;
	int r, first;

	r = cli_parse(&v, argc, argv, stop_opt, &o, &first);
	if (r)
		return r > 0 ? 0 : EXIT_COVE;
	if (paths_init_or_report(&p) < 0)
		return EXIT_COVE;
	return each_named(&p, first, argc, argv, kill_one, &o);
}

/* ---- rm, prune ---- */

struct rm_opts {
	bool force, all, volumes;
};

static int rm_opt(int c, const char *arg, void *ud)
{
	struct rm_opts *o = ud;

	if (c == 'f')
		o->force = true;
	else if (c == 'a')
		o->all = true;
	else if (c == 'v')
		o->volumes = true;
	return 0;
}

/* Remove c; a running one only with force (it is killed first). */
static int rm_one(const struct cove_paths *p, struct container *c, const void *ud)
{
	const struct rm_opts *o = ud;
	bool force = o->force;
	struct container_status st;
	struct container_spec spec;
	struct cove_error ignored = { 0 };
	int r;

	r = container_lock(c, 0);
	if (r == -EBUSY && !force) {
		cli_error("container %s is running: stop it first, or use 'cove rm -f'", shown(c));
		return r;
	}
	if (r == -EBUSY) {
		struct stop_opts so = { .timeout = 0, .signal = SIGKILL };
		(void)stop_one(p, c, &so);
		r = container_lock(c, RM_FORCE_WAIT_MS);
		if (r == -EBUSY && container_get_status(c, &st) == 0 && st.pid > 0) {
			/* a supervisor that does not answer: end it (QEMU dies with it) */
			kill(st.pid, SIGKILL);
			r = container_lock(c, RM_FORCE_WAIT_MS);
		}
	}
	if (r == -ENOENT)
		return 0; /* gone meanwhile (--rm) */
	if (r < 0) {
		cli_error("cannot lock container %s: %s", shown(c), strerror(-r));
		return r;
	}
	r = o->volumes ? container_load_spec(c, &spec, &ignored) : -1;
	container_remove(c);
	if (r == 0) {
		volumes_release(p, &spec); /* its anonymous volumes no one else uses */
		spec_done(&spec);
	}
	return 0;
}

/* rm --all and prune: every container; running ones only with force (killed first). Prints
 * the ID of each removed; 1 if any could not be. */
static int remove_all(const struct cove_paths *p, bool force)
{
	const struct rm_opts o = { .force = true };
	struct cove_error err = { 0 };
	char **ids;
	size_t n;
	int failed = 0;

	container_gc(p); /* and what creates and rms killed half-way left */
	if (container_list(p, &ids, &n, &err) < 0) {
		cli_error("%s", err.msg);
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		struct container c;

		if (container_find(p, ids[i], &c, &err) < 0)
			continue; /* gone meanwhile */
		if (!force && container_lock(&c, 0) < 0)
			continue; /* running */
		if (rm_one(p, &c, &o) < 0)
			failed = 1;
		else
			printf("%s\n", c.id);
	}
	container_list_free(ids, n);
	return failed;
}

int cmd_ctr_rm(int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{ 'f', 'f', "force", NULL, "kill and remove running containers too" },
		{ 'v', 'v', "volumes", NULL, "remove its anonymous volumes too" },
		{ 'a', 'a', "all", NULL, "remove every container (running ones only with -f)" },
		{ 0 },
	};
	static const struct cli_verb v = {
		"rm", "[OPTIONS] CONTAINER...",
		"Remove containers: their state, writable disk, logs and name.", opts,
		.max_operands = -1,
	};
	struct rm_opts o = { 0 };
	struct cove_paths p;
	int r, failed = 0, first;

	r = cli_parse(&v, argc, argv, rm_opt, &o, &first);
	if (r)
		return r > 0 ? 0 : EXIT_COVE;
	if (!o.all && first >= argc) {
		cli_error("missing CONTAINER; see 'cove rm --help'");
		return EXIT_COVE;
	}
	if (paths_init_or_report(&p) < 0)
		return EXIT_COVE;
	if (o.all)
		failed = remove_all(&p, o.force);
	failed |= each_named(&p, first, argc, argv, rm_one, &o);
	net_gc(&p); /* the leases of what was removed, of supervisors that died */
	return failed;
}

int cmd_ctr_prune(int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{ 'f', 'f', "force", NULL, "do not ask (cove never asks)" },
		{ 0 },
	};
	static const struct cli_verb v = {
		"prune", "[OPTIONS]", "Remove every container that is not running.", opts,
		.max_operands = 0,
	};
	struct rm_opts o = { 0 };
	struct cove_paths p;
	int r, first;

	r = cli_parse(&v, argc, argv, rm_opt, &o, &first);
	if (r)
		return r > 0 ? 0 : EXIT_COVE;
	if (paths_init_or_report(&p) < 0)
		return EXIT_COVE;
	return remove_all(&p, false);
}

/* ---- wait ---- */

int cmd_wait(int argc, char **argv)
{
	static const struct cli_verb v = {
		"wait", "CONTAINER...", "Wait until containers stop, then print their exit codes.",
		NULL, .min_operands = 1, .max_operands = -1, .missing = "CONTAINER",
	};
	struct cove_paths p;
	int r, failed = 0, first;

	r = cli_parse(&v, argc, argv, rm_opt, NULL, &first);
	if (r)
		return r > 0 ? 0 : EXIT_COVE;
	if (paths_init_or_report(&p) < 0)
		return EXIT_COVE;
	for (int i = first; i < argc; i++) {
		struct container c;
		struct container_status st;

		if (cli_find(&p, argv[i], &c) < 0) {
			failed = 1;
			continue;
		}
		/* a created container: until someone starts it and it ends */
		for (;;) {
			container_get_status(&c, &st);
			if (st.status != CONTAINER_CREATED)
				break;
			if (access(c.dir, F_OK) < 0)
				break;
			usleep(100000);
		}
		container_wait_stopped(&c);
		if (container_get_status(&c, &st) < 0 || access(c.dir, F_OK) < 0) {
			/* --rm: removed as it ended; its status went with it */
			cli_error("container %s was removed as it exited", argv[i]);
			failed = 1;
			continue;
		}
		printf("%d\n", st.exit_code);
		fflush(stdout);
	}
	return failed;
}

/* ---- attach ---- */

struct attach_opts {
	bool no_stdin;
};

static int attach_opt(int c, const char *arg, void *ud)
{
	struct attach_opts *o = ud;

	if (c == 'n')
		o->no_stdin = true;
	return 0;
}

int cmd_attach(int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{ 'n', 0, "no-stdin", NULL, "do not send our stdin" },
		{ 0 },
	};
	static const struct cli_verb v = {
		"attach", "[OPTIONS] CONTAINER",
		"Attach this terminal to a running container's main process: its output,\n"
		"and its input if it was started with -i. Exits with its status; with a terminal,\n"
		"Ctrl-P Ctrl-Q detaches and leaves it running.",
		opts, .min_operands = 1, .max_operands = 1, .missing = "CONTAINER",
	};
	struct attach_opts o = { 0 };
	struct cove_error err = { 0 };
	struct session_result res = { .exit_code = EXIT_COVE };
	struct session_opts so = { 0 };
	struct buf f = BUF_INIT(64);
	struct cove_paths p;
	struct container c;
	struct container_spec spec;
	int r, fd, first;

	r = cli_parse(&v, argc, argv, attach_opt, &o, &first);
	if (r)
		return r > 0 ? 0 : EXIT_COVE;
	if (paths_init_or_report(&p) < 0 || cli_find(&p, argv[first], &c) < 0)
		return EXIT_COVE;
	if (container_load_spec(&c, &spec, &err) < 0) {
		cli_error("%s", err.msg);
		return EXIT_COVE;
	}
	so.tty = spec.terminal;
	so.interactive = !o.no_stdin && spec.open_stdin;
	spec_done(&spec);
	proto_put_attach(&f, so.interactive ? PROTO_ATTACH_STDIN : 0);
	fd = supervisor_connect(&c, &err);
	if (fd < 0) {
		buf_done(&f);
		cli_error("%s", err.msg);
		return EXIT_COVE;
	}
	if (so.tty && so.interactive && isatty(0) && terminal_make_raw(0) < 0) {
		cli_error("cannot put the terminal in raw mode: %s", strerror(errno));
		close(fd);
		buf_done(&f);
		return EXIT_COVE;
	}
	r = session_run(fd, &f, &so, &res, &err);
	terminal_restore();
	buf_done(&f);
	close(fd);
	if (r < 0) {
		cli_error("%s", err.msg);
		return res.exit_code;
	}
	if (res.detached)
		return 0;
	/* it exited: return once its state is final, as run does */
	container_wait_stopped(&c);
	return res.exit_code;
}
