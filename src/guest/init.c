/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cove-init: PID 1 of a cove VM. Mounts the basics, opens the virtio-serial port to the host,
 * says HELLO, starts the container process when asked, relays its stdio, reaps zombies, reports
 * the exit status, then syncs and powers the VM off. Every failure is reported to the host (or,
 * before the port is open, on the console, which the host keeps as the boot log) and ends in a
 * power-off, never a hang.
 */
#define _GNU_SOURCE
#include "guest.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>

#define OUT_QUEUE_MAX (4u << 20)  /* bytes waiting to go to the host */
#define OUT_QUEUE_HIGH (1u << 20) /* stop reading the process above this */
#define IN_QUEUE_HIGH (1u << 20)  /* stop reading the port above this much pending stdin */
#define DRAIN_TIMEOUT_MS 3000     /* after the process exits, wait this long for its output */

struct init {
	int port;
	int sigfd;
	struct proto_reader reader;
	struct buf out;   /* frames to the host */
	struct buf stdin_q; /* bytes for the process's stdin */
	bool stdin_eof;   /* host sent STDIN_EOF */
	struct container_proc proc;
	bool started;
	bool exited;
	int status;
	uint64_t exit_time;
};

bool guest_debug;

void guest_trace(const char *what)
{
	struct timespec ts;

	if (!guest_debug)
		return;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	guest_log("%5ld.%06ld %s", (long)ts.tv_sec, ts.tv_nsec / 1000, what);
}

void guest_log(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	(void)write_full(2, "cove-init: ", 11);
	(void)write_full(2, line, (size_t)n);
}

static _noreturn_ void power_off(void)
{
	sync();
	if (reboot(RB_POWER_OFF) < 0)
		guest_log("power off failed: %s", strerror(errno));
	for (;;)
		pause();
}

static _noreturn_ void die(const char *fmt, ...) _printf_(1, 2);
static void die(const char *fmt, ...)
{
	char line[900];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	guest_log("fatal: %s", line);
	power_off();
}

static void mount_basic(const char *src, const char *dst, const char *type, unsigned long flags,
			const char *data)
{
	if (mkdir(dst, 0755) < 0 && errno != EEXIST)
		die("cannot create '%s': %s", dst, strerror(errno));
	if (mount(src, dst, type, flags, data) < 0)
		die("cannot mount %s on '%s': %s", type, dst, strerror(errno));
}

static void setup_system(void)
{
	/*
	 * The initramfs is the absolute root mount, which pivot_root cannot move away from.
	 * Bind it onto a mount of its own and make that our root, as switch_root does.
	 */
	if (mkdir("/sysroot", 0755) < 0 && errno != EEXIST)
		die("cannot create /sysroot: %s", strerror(errno));
	if (mount("/", "/sysroot", NULL, MS_BIND, NULL) < 0 || chdir("/sysroot") < 0 ||
	    mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 || chdir("/") < 0)
		die("cannot set up the root mount: %s", strerror(errno));

	mount_basic("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount_basic("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount_basic("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
	mount_basic("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
		    "newinstance,ptmxmode=0666,mode=0620,gid=5");
	mount_basic("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		    NULL);
	mount_basic("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
	if (mkdir("/run/cove", 0700) < 0 && errno != EEXIST)
		die("cannot create /run/cove: %s", strerror(errno));
	/* the console's /dev/ptmx comes from devtmpfs; use our devpts instance's */
	unlink("/dev/ptmx");
	if (symlink("pts/ptmx", "/dev/ptmx") < 0)
		die("cannot link /dev/ptmx: %s", strerror(errno));
}

/* Find /dev/vportNpM whose name is GUEST_PORT_NAME; the port may appear a moment after boot. */
static int open_port(void)
{
	for (int tries = 0; tries < 500; tries++) {
		_cleanup_(closedirp) DIR *d = opendir("/sys/class/virtio-ports");
		struct dirent *de;

		while (d && (de = readdir(d))) {
			char path[512], *name = NULL;
			int r;

			if (de->d_name[0] == '.')
				continue;
			if (str_printf(path, sizeof(path), "/sys/class/virtio-ports/%s/name",
				       de->d_name) < 0)
				continue;
			r = read_file(path, 256, &name, NULL);
			if (r < 0)
				continue;
			name[strcspn(name, "\n")] = '\0';
			r = strcmp(name, GUEST_PORT_NAME);
			free(name);
			if (r != 0)
				continue;
			if (str_printf(path, sizeof(path), "/dev/%s", de->d_name) < 0)
				continue;
			int fd = open(path, O_RDWR | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
			if (fd >= 0)
				return fd;
		}
		usleep(10000);
	}
	die("virtio-serial port '%s' not found", GUEST_PORT_NAME);
}

static void queue_frame(struct init *s, int r)
{
	if (r == -E2BIG)
		die("output queue to the host overflowed");
	if (r < 0)
		die("cannot encode a message: %s", strerror(-r));
}

static void send_error(struct init *s, uint32_t stream, uint32_t kind, const char *msg)
{
	queue_frame(s, proto_put_error(&s->out, stream, kind, msg));
}

/* Write as much of the output queue as the port takes now. */
static void flush_out(struct init *s, bool blocking)
{
	while (s->out.len > 0) {
		ssize_t n = write(s->port, s->out.data, s->out.len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd p = { .fd = s->port, .events = POLLOUT };
				if (!blocking)
					return;
				poll(&p, 1, 1000);
				continue;
			}
			guest_log("write to host failed: %s", strerror(errno));
			s->out.len = 0;
			return;
		}
		buf_consume(&s->out, (size_t)n);
	}
}

static void handle_start(struct init *s, const struct proto_hdr *h, const uint8_t *p)
{
	struct proto_start m = { 0 };
	char msg[512];
	uint32_t kind;
	int r;

	if (s->started || h->stream != 1) {
		send_error(s, h->stream, PROTO_ERR_INTERNAL, "unexpected START");
		return;
	}
	r = proto_get_start(p, h->len, &m);
	if (r < 0) {
		send_error(s, h->stream, PROTO_ERR_INTERNAL, "malformed START message");
		return;
	}
	guest_trace("START received");
	r = container_spawn(&m, &s->proc, &kind, msg, sizeof(msg));
	guest_trace("process started");
	proto_start_done(&m);
	s->started = true;
	if (r < 0) {
		send_error(s, 1, kind, msg);
		/* the process never ran: report it as finished so the host ends the session */
		s->exited = true;
		s->status = -1;
		return;
	}
	fd_set_nonblock(s->proc.out_fd, true);
	if (s->proc.err_fd >= 0)
		fd_set_nonblock(s->proc.err_fd, true);
	if (s->proc.in_fd >= 0 && !s->proc.terminal)
		fd_set_nonblock(s->proc.in_fd, true);
	queue_frame(s, proto_put_u32(&s->out, PROTO_STARTED, 1, (uint32_t)s->proc.pid));
}

static void close_stdin(struct init *s)
{
	if (s->proc.terminal) {
		/* a terminal has no separate stdin to close: send the EOF character */
		struct termios t;
		uint8_t eof = 4;
		if (tcgetattr(s->proc.out_fd, &t) == 0)
			eof = t.c_cc[VEOF];
		(void)write_full(s->proc.out_fd, &eof, 1);
		return;
	}
	closep(&s->proc.in_fd);
}

static void handle_frame(struct init *s, const struct proto_hdr *h, const uint8_t *p)
{
	uint32_t v;
	uint16_t rows, cols;

	switch (h->type) {
	case PROTO_START:
		handle_start(s, h, p);
		break;
	case PROTO_STDIN:
		if (s->proc.in_fd < 0 || s->stdin_eof)
			break;
		if (buf_append(&s->stdin_q, p, h->len) < 0)
			die("stdin queue overflowed");
		break;
	case PROTO_STDIN_EOF:
		s->stdin_eof = true;
		if (s->stdin_q.len == 0 && s->proc.in_fd >= 0)
			close_stdin(s);
		break;
	case PROTO_SIGNAL:
		if (proto_get_u32(p, h->len, &v) == 0 && v >= 1 && v < NSIG && s->started &&
		    !s->exited && s->proc.pid > 0)
			kill(s->proc.pid, (int)v);
		break;
	case PROTO_RESIZE:
		if (proto_get_resize(p, h->len, &rows, &cols) == 0 && s->proc.terminal &&
		    s->proc.out_fd >= 0) {
			struct winsize ws = { .ws_row = rows, .ws_col = cols };
			ioctl(s->proc.out_fd, TIOCSWINSZ, &ws);
		}
		break;
	default:
		guest_log("ignoring unexpected message %s", proto_type_name(h->type));
		break;
	}
}

static void read_port(struct init *s)
{
	uint8_t tmp[65536];
	struct proto_hdr h;
	const uint8_t *payload;
	ssize_t n;
	int r;

	size_t want = proto_reader_room(&s->reader);

	if (want > sizeof(tmp))
		want = sizeof(tmp);
	n = read(s->port, tmp, want);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		die("read from host failed: %s", strerror(errno));
	}
	if (n == 0) {
		/* host side not connected (yet, or any more); avoid spinning */
		usleep(10000);
		return;
	}
	r = proto_reader_feed(&s->reader, tmp, (size_t)n);
	if (r < 0)
		die("host sent too much at once");
	while ((r = proto_reader_next(&s->reader, &h, &payload)) > 0)
		handle_frame(s, &h, payload);
	if (r < 0)
		die("malformed message from host: %s", strerror(-r));
}

/* Returns false at EOF (or error) of this stream. */
static bool pump_output(struct init *s, int fd, uint16_t type)
{
	uint8_t tmp[PROTO_MAX_DATA];
	ssize_t n = read(fd, tmp, sizeof(tmp));

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return true;
	if (n <= 0)
		return false; /* EOF, or EIO on a pty whose last slave closed */
	queue_frame(s, proto_put_data(&s->out, type, 1, tmp, (size_t)n));
	return true;
}

static void reap(struct init *s)
{
	struct signalfd_siginfo si;
	int status;
	pid_t pid;

	while (read(s->sigfd, &si, sizeof(si)) > 0)
		;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (s->started && pid == s->proc.pid && !s->exited) {
			s->exited = true;
			s->status = status;
			s->exit_time = now_ns();
			guest_trace("process exited");
		}
	}
}

static void write_stdin(struct init *s)
{
	ssize_t n = write(s->proc.in_fd, s->stdin_q.data, s->stdin_q.len);

	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		/* EPIPE: the process closed its stdin; drop what it will never read */
		buf_reset(&s->stdin_q);
		if (!s->proc.terminal)
			closep(&s->proc.in_fd);
		return;
	}
	buf_consume(&s->stdin_q, (size_t)n);
	if (s->stdin_q.len == 0 && s->stdin_eof)
		close_stdin(s);
}

static void finish(struct init *s)
{
	struct proto_exit e = { 0 };

	if (s->status >= 0) {
		if (WIFSIGNALED(s->status)) {
			e.kind = PROTO_EXIT_SIGNAL;
			e.status = (uint32_t)WTERMSIG(s->status);
		} else {
			e.kind = PROTO_EXIT_CODE;
			e.status = (uint32_t)WEXITSTATUS(s->status);
		}
		queue_frame(s, proto_put_exit(&s->out, 1, &e));
	}
	flush_out(s, true);
	guest_trace("EXIT sent");
	sync();
	if (umount2(GUEST_ROOTFS, 0) < 0 && errno != EINVAL)
		umount2(GUEST_ROOTFS, MNT_DETACH);
	power_off();
}

static void loop(struct init *s)
{
	for (;;) {
		struct pollfd p[5];
		int n = 0, i_port, i_sig, i_out = -1, i_err = -1, i_in = -1;
		int timeout = -1;
		bool out_open = s->started && s->proc.out_fd >= 0;
		bool err_open = s->started && s->proc.err_fd >= 0;

		if (s->exited && !out_open && !err_open)
			finish(s);
		if (s->exited && now_ns() - s->exit_time > DRAIN_TIMEOUT_MS * 1000000ULL) {
			guest_log("output of the process did not end; not waiting for it");
			finish(s);
		}
		if (s->exited)
			timeout = 100;

		i_port = n;
		p[n++] = (struct pollfd){
			.fd = s->port,
			.events = (s->stdin_q.len < IN_QUEUE_HIGH ? POLLIN : 0) |
				  (s->out.len ? POLLOUT : 0),
		};
		i_sig = n;
		p[n++] = (struct pollfd){ .fd = s->sigfd, .events = POLLIN };
		if (out_open && s->out.len < OUT_QUEUE_HIGH) {
			i_out = n;
			p[n++] = (struct pollfd){ .fd = s->proc.out_fd, .events = POLLIN };
		}
		if (err_open && s->out.len < OUT_QUEUE_HIGH) {
			i_err = n;
			p[n++] = (struct pollfd){ .fd = s->proc.err_fd, .events = POLLIN };
		}
		if (s->stdin_q.len && s->proc.in_fd >= 0) {
			i_in = n;
			p[n++] = (struct pollfd){ .fd = s->proc.in_fd, .events = POLLOUT };
		}
		if (poll(p, (nfds_t)n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			die("poll failed: %s", strerror(errno));
		}
		if (p[i_sig].revents)
			reap(s);
		if (p[i_port].revents & POLLIN)
			read_port(s);
		if (p[i_port].revents & POLLOUT)
			flush_out(s, false);
		if (i_in >= 0 && p[i_in].revents)
			write_stdin(s);
		if (i_out >= 0 && p[i_out].revents &&
		    !pump_output(s, s->proc.out_fd, PROTO_STDOUT)) {
			if (s->proc.terminal)
				s->proc.in_fd = -1; /* same descriptor as out_fd */
			closep(&s->proc.out_fd);
		}
		if (i_err >= 0 && p[i_err].revents &&
		    !pump_output(s, s->proc.err_fd, PROTO_STDERR))
			closep(&s->proc.err_fd);
		if (s->out.len)
			flush_out(s, false);
	}
}

static bool cmdline_has(const char *word)
{
	_cleanup_free_ char *cmd = NULL;
	size_t n = strlen(word);

	if (read_file("/proc/cmdline", 4096, &cmd, NULL) < 0)
		return false;
	for (char *p = cmd; (p = strstr(p, word)); p += n)
		if ((p == cmd || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\n' || !p[n]))
			return true;
	return false;
}

int main(void)
{
	struct init s = {
		.port = -1,
		.out = BUF_INIT(OUT_QUEUE_MAX),
		.stdin_q = BUF_INIT(IN_QUEUE_HIGH + PROTO_MAX_PAYLOAD),
		.proc = { .in_fd = -1, .out_fd = -1, .err_fd = -1 },
	};
	struct proto_hello hello = { .version = PROTO_VERSION };
	struct utsname u;
	sigset_t mask;

	if (getpid() != 1) {
		fprintf(stderr, "cove-init: must run as PID 1 of a cove VM\n");
		return 1;
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGPIPE);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sigdelset(&mask, SIGPIPE);
	s.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (s.sigfd < 0)
		die("signalfd failed: %s", strerror(errno));

	setup_system();
	guest_debug = cmdline_has("cove.debug");
	guest_trace("mounted");
	s.port = open_port();
	guest_trace("port open");
	proto_reader_init(&s.reader);

	uname(&u);
	hello.kernel = u.release;
	queue_frame(&s, proto_put_hello(&s.out, &hello));
	flush_out(&s, true);
	loop(&s);
}
