/* SPDX-License-Identifier: Apache-2.0 */
/* Running containers as a front end asks: start (attached or not), exec, and the short boot of a
 * stopped container that cp needs. */
#define _GNU_SOURCE
#include "container.h"
#include "supervisor.h"

#include <signal.h>
#include <string.h>

int container_start_attached(const struct cove_paths *paths, struct container *c,
			     const struct container_spec *spec,
			     bool attach, bool interactive, bool tty, void (*notice)(const char *line),
			     struct cove_error *err)
{
	struct session_opts so = { .tty = tty, .interactive = interactive, .until_started = !attach,
				   .notice = notice };
	struct session_result res = { .exit_code = EXIT_COVE };
	_cleanup_close_ int fd = -1;
	int r;

	r = supervisor_spawn(paths, c, spec, interactive ? PROTO_ATTACH_STDIN : 0, &fd, NULL, err);
	container_unlock(c); /* the supervisor holds it now */
	c->created = false;  /* and removes it if it is --rm */
	if (r < 0)
		return -EXIT_COVE;
	if (attach && tty && interactive && terminal_make_raw(0) < 0) {
		cove_error_set(err, errno, "cannot put the terminal in raw mode: %s",
			       strerror(errno));
		return -EXIT_COVE;
	}
	r = session_run(fd, NULL, &so, &res, err);
	terminal_restore();
	if (!attach)
		return r < 0 || !res.started ? -res.exit_code : 0;
	if (res.detached)
		return 0; /* it runs on; `cove attach` comes back to it */
	/* the state is final once the supervisor lets go of the lock */
	closep(&fd);
	container_wait_stopped(c);
	if (r < 0 && res.exit_code == EXIT_COVE && !res.started) {
		struct container_status st;
		if (container_get_status(c, &st) == 0 && st.status == CONTAINER_EXITED &&
		    st.error[0] && strcmp(err->msg, st.error) != 0)
			cove_error_set(err, EIO, "%s", st.error);
	}
	return r < 0 ? -res.exit_code : res.exit_code;
}

/* Connect to c's supervisor and run m there, relaying stdio per so. */
int container_exec(const struct container *c, const struct proto_start *m,
		   const struct session_opts *so, struct session_result *res,
		   struct cove_error *err)
{
	struct buf f = BUF_INIT(PROTO_HDR_SIZE + PROTO_MAX_PAYLOAD);
	int fd, r;

	r = proto_put_start(&f, 1, m);
	if (r < 0) {
		buf_done(&f);
		return cove_error_set(err, -r, "the command is too large to pass to the guest");
	}
	fd = supervisor_connect(c, err);
	if (fd < 0) {
		buf_done(&f);
		return fd;
	}
	r = session_run(fd, &f, so, res, err);
	close(fd);
	buf_done(&f);
	return r;
}

/*
 * cp on a stopped container (as docker allows): boot it with a main process that only waits
 * (cove-init's PAUSE), leaving its state, log and exit status alone, for as long as the copy
 * takes. *ret_fd is then that boot's connection; -1 when the container was running anyway.
 */
int container_boot_for_copy(const struct cove_paths *p, struct container *c,
			    const struct container_spec *spec,
			    void (*notice)(const char *line), int *ret_fd, struct cove_error *err)
{
	struct session_opts so = { .until_started = true, .no_signals = true, .notice = notice };
	struct session_result res = { .exit_code = EXIT_COVE };
	struct container_status st;
	struct container_spec mc;
	static char pause[] = "cove-pause";
	char *pause_argv[] = { pause, NULL };
	bool rm = c->rm;
	int fd = -1, r;

	*ret_fd = -1;
	container_get_status(c, &st);
	if (st.status == CONTAINER_RUNNING)
		return 0;
	r = container_lock(c, 0);
	if (r == -EBUSY)
		return 0; /* started meanwhile */
	if (r < 0)
		return cove_error_set(err, -r, "cannot lock container %s: %s", c->name,
				      strerror(-r));
	/* the container as it is, but its main process only waits; nothing is mounted over it */
	if (spec_copy(spec, &mc) < 0) {
		container_unlock(c);
		return cove_error_set(err, ENOMEM, "out of memory");
	}
	strv_free(mc.args);
	mc.args = strv_copy(pause_argv, 1);
	mc.nargs = 1;
	strv_free(mc.tmpfs);
	mc.tmpfs = NULL;
	mc.ntmpfs = 0;
	mc.terminal = mc.open_stdin = mc.readonly = mc.init = false;
	mc.tool = PROTO_TOOL_PAUSE;
	mc.maintenance = true;
	c->rm = false;
	r = mc.args ? supervisor_spawn(p, c, &mc, 0, &fd, NULL, err)
		    : cove_error_set(err, ENOMEM, "out of memory");
	c->rm = rm;
	container_unlock(c);
	spec_done(&mc);
	if (r < 0)
		return r;
	r = session_run(fd, NULL, &so, &res, err);
	if (r < 0 || !res.started) {
		close(fd);
		container_wait_stopped(c);
		return r < 0 ? r
			     : cove_error_set(err, EIO, "cannot boot container %s for the copy",
					      c->name);
	}
	*ret_fd = fd;
	return 0;
}

/* The end of container_boot_for_copy()'s boot: SIGKILL the waiting process; the guest powers off. */
void container_end_boot_for_copy(const struct container *c, int fd)
{
	struct cove_error err = { 0 };
	struct buf f = BUF_INIT(64);
	int sfd;

	if (fd < 0)
		return;
	if (proto_put_stop(&f, &(struct proto_stop){ SIGKILL, 0 }) == 0 &&
	    (sfd = supervisor_connect(c, &err)) >= 0) {
		(void)write_full(sfd, f.data, f.len);
		container_wait_stopped(c);
		close(sfd);
	}
	buf_done(&f);
	close(fd);
}
