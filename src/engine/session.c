/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One attached session over a connection to a container's supervisor (the main process, or an
 * exec): relay stdin -> STDIN frames and STDOUT/STDERR frames -> our stdout/stderr, forward
 * signals and window size changes, until EXIT (or ERROR) arrives or the supervisor goes away.
 */
#define _GNU_SOURCE
#include "engine.h"

#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>

#define OUT_QUEUE_MAX (8u << 20)
#define OUT_QUEUE_HIGH (1u << 20) /* stop reading stdin above this */

struct session {
	int fd;
	const struct session_opts *o;
	struct proto_reader reader;
	struct buf out;
	int sigfd;
	bool started;
	bool stdin_open;
	bool held_ctrl_p; /* a Ctrl-P that may start the detach sequence */
	bool detached;    /* the user typed Ctrl-P Ctrl-Q */
	bool stdout_broken;
	bool done;
	int exit_code;
};

static int queue(struct session *s, int r, struct cove_error *err)
{
	if (r < 0)
		return cove_error_set(err, r, "cannot encode a message to the guest: %s", strerror(-r));
	return 0;
}

/* Send what the socket takes now; the rest waits for POLLOUT. */
static int flush(struct session *s, struct cove_error *err)
{
	int r = buf_write_to(&s->out, s->fd);

	if (r == -EPIPE || r == -ECONNRESET) {
		s->out.len = 0;
		return 0; /* the supervisor is gone; reading tells the rest */
	}
	if (r < 0)
		return cove_error_set(err, -r, "cannot write to the supervisor: %s", strerror(-r));
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
	struct proto_exit e;
	struct proto_error pe = { 0 };

	switch (h->type) {
	case PROTO_STARTED:
		s->started = true;
		if (s->o->until_started)
			s->done = true;
		return 0;
	case PROTO_STDOUT:
		write_out(s, s->o->out_fd ? s->o->out_fd : 1, p, h->len);
		return 0;
	case PROTO_STDERR:
		if (s->o->err_capture)
			(void)buf_append(s->o->err_capture, p, h->len);
		else
			write_out(s, 2, p, h->len);
		return 0;
	case PROTO_NOTICE: {
		/* one line from the supervisor, shown as it came, but only as text */
		char line[PROTO_MAX_MESSAGE + 1];
		for (size_t i = 0; i < h->len; i++)
			line[i] = p[i] ? (char)p[i] : '?';
		line[h->len] = '\0';
		str_one_line(line);
		if (s->o->notice)
			s->o->notice(line);
		return 0;
	}
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
		return cove_error_set(err, EPROTO, "the supervisor sent an unexpected %s message",
				      proto_type_name(h->type));
	}
}

static int read_ctl(struct session *s, struct cove_error *err)
{
	struct proto_hdr h;
	const uint8_t *payload;
	ssize_t n = proto_reader_read(&s->reader, s->fd);
	int r = 0;

	if (n == -EAGAIN)
		return 0;
	if (n == -ECONNRESET)
		n = 0;
	else if (n < 0)
		return cove_error_set(err, (int)-n, "cannot read from the supervisor: %s",
				      strerror((int)-n));
	if (n == 0)
		return cove_error_set(err, EPIPE,
				      "the container's supervisor went away before it reported an "
				      "exit status; see 'cove inspect'");
	while (!s->done && (r = proto_reader_next(&s->reader, &h, &payload)) > 0) {
		r = handle_frame(s, &h, payload, err);
		if (r < 0)
			return r;
	}
	if (r < 0)
		return cove_error_set(err, EPROTO, "the supervisor sent a malformed message: %s",
				      strerror(-r));
	return 0;
}

/*
 * docker's detach keys on a terminal: Ctrl-P Ctrl-Q leaves the container running. A Ctrl-P is
 * held back until the next byte shows whether it starts the sequence. Returns how many bytes
 * of p to send (p is rewritten in place).
 */
static size_t detach_keys(struct session *s, uint8_t *p, size_t n)
{
	size_t out = 0;

	for (size_t i = 0; i < n; i++) {
		if (s->held_ctrl_p) {
			s->held_ctrl_p = false;
			if (p[i] == 0x11) {
				s->detached = true;
				s->done = true;
				return out;
			}
			p[out++] = 0x10;
		}
		if (p[i] == 0x10)
			s->held_ctrl_p = true;
		else
			p[out++] = p[i];
	}
	return out;
}

static int read_stdin(struct session *s, struct cove_error *err)
{
	uint8_t tmp[PROTO_MAX_DATA + 1];
	ssize_t n = read(s->o->in_fd, tmp, PROTO_MAX_DATA);
	size_t len;

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0) {
		s->stdin_open = false;
		return queue(s, proto_put_empty(&s->out, PROTO_STDIN_EOF, 1), err);
	}
	len = (size_t)n;
	if (s->o->tty)
		len = detach_keys(s, tmp, len);
	if (len == 0)
		return 0;
	return queue(s, proto_put_data(&s->out, PROTO_STDIN, 1, tmp, len), err);
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
		if (queue(s, proto_put_u32(&s->out, PROTO_SIGNAL, 1, si.ssi_signo), err) < 0)
			return -EIO;
	}
	return 0;
}

int session_run(int fd, const struct buf *first, const struct session_opts *o,
		struct session_result *ret, struct cove_error *err)
{
	struct session s = {
		.fd = fd, .o = o, .out = BUF_INIT(OUT_QUEUE_MAX), .sigfd = -1,
		.stdin_open = o->interactive, .exit_code = EXIT_COVE,
	};
	sigset_t mask;
	uint16_t rows, cols;
	int r = 0;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGQUIT);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGUSR2);
	sigaddset(&mask, SIGWINCH);
	if (o->no_signals) {
		sigemptyset(&mask);
		sigaddset(&mask, SIGWINCH);
	}
	sigprocmask(SIG_BLOCK, &mask, NULL);
	s.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (s.sigfd < 0)
		return cove_error_set(err, errno, "signalfd failed: %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN);
	proto_reader_init(&s.reader);
	fd_set_nonblock(fd, true);

	if (first && first->len && buf_append(&s.out, first->data, first->len) < 0)
		r = cove_error_set(err, E2BIG, "the request is too large");
	if (r == 0 && o->tty && terminal_size(-1, &rows, &cols) == 0 && rows && cols)
		r = queue(&s, proto_put_resize(&s.out, 1, rows, cols), err);
	if (r < 0 || (r = flush(&s, err)) < 0)
		goto out;

	while (!s.done) {
		struct pollfd p[3];
		int n = 0, i_fd, i_sig, i_in = -1;

		i_fd = n;
		p[n++] = (struct pollfd){ .fd = fd, .events = POLLIN | (s.out.len ? POLLOUT : 0) };
		i_sig = n;
		p[n++] = (struct pollfd){ .fd = s.sigfd, .events = POLLIN };
		if (s.stdin_open && s.out.len < OUT_QUEUE_HIGH) {
			i_in = n;
			p[n++] = (struct pollfd){ .fd = o->in_fd, .events = POLLIN };
		}
		if (poll(p, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			r = cove_error_set(err, errno, "poll failed: %s", strerror(errno));
			goto out;
		}
		if (p[i_sig].revents && (r = handle_signal(&s, err)) < 0)
			goto out;
		if (p[i_fd].revents & (POLLIN | POLLHUP | POLLERR)) {
			r = read_ctl(&s, err);
			if (r < 0)
				goto out;
		}
		if (i_in >= 0 && p[i_in].revents && (r = read_stdin(&s, err)) < 0)
			goto out;
		if (s.out.len && (r = flush(&s, err)) < 0)
			goto out;
	}
out:
	if (r == 0 || s.done)
		ret->exit_code = s.exit_code;
	ret->started = s.started;
	ret->detached = s.detached;
	proto_reader_done(&s.reader);
	buf_done(&s.out);
	closep(&s.sigfd);
	sigprocmask(SIG_UNBLOCK, &mask, NULL);
	return r;
}
