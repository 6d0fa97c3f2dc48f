/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One attached session with a container's main process: wait for the guest's HELLO, send
 * START, then relay stdin -> STDIN frames and STDOUT/STDERR frames -> our stdout/stderr,
 * forward signals and window size changes, until the guest reports EXIT (or ERROR), or QEMU
 * goes away.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>

#define OUT_QUEUE_MAX (8u << 20)
#define OUT_QUEUE_HIGH (1u << 20) /* stop reading stdin above this */

struct session {
	struct vm *vm;
	const struct vm_config *vc;
	const struct session_opts *o;
	struct proto_reader reader;
	struct buf out;
	int sigfd;
	bool hello;
	bool stdin_open;
	bool stdout_broken;
	bool done;
	int exit_code;
};

static int fail_vm_gone(struct session *s, const char *when, struct cove_error *err)
{
	char why[1024];

	vm_explain(s->vc, s->vm, why, sizeof(why));
	return cove_error_set(err, EIO, "the VM stopped %s: %s", when, why);
}

static int queue(struct session *s, int r, struct cove_error *err)
{
	if (r < 0)
		return cove_error_set(err, r, "cannot encode a message to the guest: %s", strerror(-r));
	return 0;
}

static int flush(struct session *s, bool blocking, struct cove_error *err)
{
	while (s->out.len > 0) {
		ssize_t n = write(s->vm->ctl_fd, s->out.data, s->out.len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd p = { .fd = s->vm->ctl_fd, .events = POLLOUT };
				if (!blocking)
					return 0;
				poll(&p, 1, 1000);
				continue;
			}
			if (errno == EPIPE || errno == ECONNRESET) {
				s->out.len = 0;
				return 0; /* QEMU is gone; the pidfd tells the rest */
			}
			return cove_error_set(err, errno, "cannot write to the VM: %s", strerror(errno));
		}
		buf_consume(&s->out, (size_t)n);
	}
	return 0;
}

static void write_out(struct session *s, int fd, const uint8_t *p, size_t len)
{
	if (s->stdout_broken)
		return;
	if (write_full(fd, p, len) < 0)
		s->stdout_broken = true; /* reader went away: keep draining, drop the output */
}

static int handle_frame(struct session *s, const struct proto_hdr *h, const uint8_t *p,
			struct cove_error *err)
{
	struct proto_hello hello = { 0 };
	struct proto_exit e;
	struct proto_error pe = { 0 };
	int r;

	switch (h->type) {
	case PROTO_HELLO:
		r = proto_get_hello(p, h->len, &hello);
		if (r < 0)
			return cove_error_set(err, EPROTO, "the guest sent a malformed HELLO");
		if (hello.version != PROTO_VERSION) {
			cove_error_set(err, EPROTO,
				       "guest protocol version %u does not match cove's %u: the "
				       "initramfs is from another build; reinstall cove",
				       hello.version, PROTO_VERSION);
			proto_hello_done(&hello);
			return -EPROTO;
		}
		proto_hello_done(&hello);
		s->hello = true;
		return 0;
	case PROTO_STARTED:
		return 0;
	case PROTO_STDOUT:
		write_out(s, 1, p, h->len);
		return 0;
	case PROTO_STDERR:
		write_out(s, 2, p, h->len);
		return 0;
	case PROTO_EXIT:
		if (proto_get_exit(p, h->len, &e) < 0)
			return cove_error_set(err, EPROTO, "the guest sent a malformed EXIT");
		s->exit_code = e.kind == PROTO_EXIT_SIGNAL ? 128 + (int)e.status : (int)e.status;
		s->done = true;
		return 0;
	case PROTO_ERROR:
		if (proto_get_error(p, h->len, &pe) < 0)
			return cove_error_set(err, EPROTO, "the guest sent a malformed ERROR");
		s->exit_code = pe.kind == PROTO_ERR_NOTFOUND ? EXIT_NOT_FOUND
			       : pe.kind == PROTO_ERR_EXEC   ? EXIT_CANNOT_EXEC
							     : EXIT_COVE;
		s->done = true;
		cove_error_set(err, EIO, "%s", pe.message);
		proto_error_done(&pe);
		return -EIO;
	default:
		return cove_error_set(err, EPROTO, "the guest sent an unexpected %s message",
				      proto_type_name(h->type));
	}
}

static int read_ctl(struct session *s, struct cove_error *err)
{
	uint8_t tmp[65536];
	struct proto_hdr h;
	const uint8_t *payload;
	ssize_t n;
	int r;

	size_t want = proto_reader_room(&s->reader);

	if (want > sizeof(tmp))
		want = sizeof(tmp);
	n = read(s->vm->ctl_fd, tmp, want);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		if (errno == ECONNRESET)
			n = 0;
		else
			return cove_error_set(err, errno, "cannot read from the VM: %s",
					      strerror(errno));
	}
	if (n == 0) {
		/* QEMU closed the channel: it is exiting; let its exit be the answer */
		if (vm_wait(s->vm, 5000, NULL) == 0)
			vm_kill(s->vm);
		return fail_vm_gone(s, s->hello ? "before the container finished"
						: "while booting",
				    err);
	}
	r = proto_reader_feed(&s->reader, tmp, (size_t)n);
	if (r < 0)
		return cove_error_set(err, EPROTO, "the guest sent an oversized message");
	while (!s->done && (r = proto_reader_next(&s->reader, &h, &payload)) > 0) {
		r = handle_frame(s, &h, payload, err);
		if (r < 0)
			return r;
	}
	if (r < 0)
		return cove_error_set(err, EPROTO, "the guest sent a malformed message: %s",
				      strerror(-r));
	return 0;
}

static int read_stdin(struct session *s, struct cove_error *err)
{
	uint8_t tmp[PROTO_MAX_DATA];
	ssize_t n = read(0, tmp, sizeof(tmp));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0) {
		s->stdin_open = false;
		return queue(s, proto_put_data(&s->out, PROTO_STDIN_EOF, 1, NULL, 0), err);
	}
	return queue(s, proto_put_data(&s->out, PROTO_STDIN, 1, tmp, (size_t)n), err);
}

static int handle_signal(struct session *s, struct cove_error *err)
{
	struct signalfd_siginfo si;
	uint16_t rows, cols;

	while (read(s->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGWINCH) {
			if (s->o->tty && terminal_size(-1, &rows, &cols) == 0 &&
			    queue(s, proto_put_resize(&s->out, 1, rows, cols), err) < 0)
				return -EIO;
			continue;
		}
		if (!s->hello) {
			/* still booting: nothing to forward to, give up */
			return cove_error_set(err, EINTR, "interrupted while the VM was booting");
		}
		if (queue(s, proto_put_u32(&s->out, PROTO_SIGNAL, 1, si.ssi_signo), err) < 0)
			return -EIO;
	}
	return 0;
}

int session_run(struct vm *vm, const struct vm_config *vc, const struct proto_start *start,
		const struct session_opts *o, struct session_result *ret, struct cove_error *err)
{
	struct session s = {
		.vm = vm, .vc = vc, .o = o, .out = BUF_INIT(OUT_QUEUE_MAX), .sigfd = -1,
		.stdin_open = o->interactive, .exit_code = EXIT_COVE,
	};
	uint64_t boot_deadline = now_ns() + (uint64_t)o->boot_timeout_ms * 1000000ULL;
	sigset_t mask;
	int r = 0;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGQUIT);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGUSR2);
	sigaddset(&mask, SIGWINCH);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	s.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (s.sigfd < 0)
		return cove_error_set(err, errno, "signalfd failed: %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN);
	proto_reader_init(&s.reader);
	fd_set_nonblock(vm->ctl_fd, true);

	/*
	 * Send START at once: QEMU holds it until cove-init opens its port, which saves a round
	 * trip after boot. HELLO still has to arrive, and carry our version, before anything else
	 * is sent.
	 */
	if (o->tty && !start->rows) {
		struct proto_start m = *start;
		/* no terminal here at all (-t with output to a pipe): a classic 24x80 */
		if (terminal_size(-1, &m.rows, &m.cols) < 0 || !m.rows || !m.cols) {
			m.rows = 24;
			m.cols = 80;
		}
		r = queue(&s, proto_put_start(&s.out, 1, &m), err);
	} else {
		r = queue(&s, proto_put_start(&s.out, 1, start), err);
	}
	if (r < 0 || (r = flush(&s, false, err)) < 0)
		goto out;

	while (!s.done) {
		struct pollfd p[4];
		int n = 0, i_ctl, i_pid = -1, i_sig, i_in = -1, timeout = -1;

		if (!s.hello) {
			uint64_t now = now_ns();
			if (now >= boot_deadline) {
				char why[1024];
				vm_kill(vm);
				vm_explain(vc, vm, why, sizeof(why));
				r = cove_error_set(err, ETIMEDOUT,
						   "the VM did not answer within %d s: %s",
						   o->boot_timeout_ms / 1000, why);
				goto out;
			}
			timeout = (int)((boot_deadline - now) / 1000000ULL) + 1;
		}
		i_ctl = n;
		p[n++] = (struct pollfd){ .fd = vm->ctl_fd,
					  .events = POLLIN | (s.hello && s.out.len ? POLLOUT : 0) };
		i_sig = n;
		p[n++] = (struct pollfd){ .fd = s.sigfd, .events = POLLIN };
		if (vm->pidfd >= 0) {
			i_pid = n;
			p[n++] = (struct pollfd){ .fd = vm->pidfd, .events = POLLIN };
		}
		if (s.hello && s.stdin_open && s.out.len < OUT_QUEUE_HIGH) {
			i_in = n;
			p[n++] = (struct pollfd){ .fd = 0, .events = POLLIN };
		}
		if (poll(p, (nfds_t)n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			r = cove_error_set(err, errno, "poll failed: %s", strerror(errno));
			goto out;
		}
		if (p[i_sig].revents && (r = handle_signal(&s, err)) < 0)
			goto out;
		if (p[i_ctl].revents & (POLLIN | POLLHUP | POLLERR)) {
			r = read_ctl(&s, err);
			if (r < 0)
				goto out;
		}
		if (i_in >= 0 && p[i_in].revents && (r = read_stdin(&s, err)) < 0)
			goto out;
		if (s.hello && s.out.len && (r = flush(&s, false, err)) < 0)
			goto out;
		if (!s.done && i_pid >= 0 && p[i_pid].revents) {
			/* QEMU exited: read what the guest managed to send first */
			while ((r = read_ctl(&s, err)) == 0 && !s.done)
				;
			if (!s.done)
				goto out;
			r = 0;
		}
	}
out:
	if (r == 0 || s.done)
		ret->exit_code = s.exit_code;
	proto_reader_done(&s.reader);
	buf_done(&s.out);
	closep(&s.sigfd);
	sigprocmask(SIG_UNBLOCK, &mask, NULL);
	return r;
}
