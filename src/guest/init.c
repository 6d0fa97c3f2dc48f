/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cove-init: PID 1 of a cove VM. Mounts the basics, opens the virtio-serial port to the host,
 * says HELLO, then serves the host's frames: starts the container's main process (stream 1)
 * and exec sessions (streams 2..) when asked, relays each one's stdio, reaps zombies, reports
 * each exit status, answers STATS; when the main process has exited (or on SHUTDOWN) it syncs
 * and powers the VM off. Every failure is reported to the host (or, before the port is open,
 * on the console, which the host keeps as the boot log) and ends in an ERROR frame, a log line
 * or a power-off, never a hang.
 */
#define _GNU_SOURCE
#include "guest.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>

/* <linux/random.h>, which musl does not ship */
#ifndef RNDADDENTROPY
#define RNDADDENTROPY _IOW('R', 0x03, int[2])
#endif
#ifndef RNDRESEEDCRNG
#define RNDRESEEDCRNG _IO('R', 0x07)
#endif

#define MAX_SESSIONS	 64	    /* processes started by the host at once, the main one too */
#define OUT_QUEUE_MAX	 (4u << 20) /* bytes waiting to go to the host */
#define OUT_QUEUE_HIGH	 (1u << 20) /* stop reading the processes' output above this */
/* A guard only: the host keeps at most STDIN_WINDOW (src/cli/supervisor.c, 256 KiB) of each
 * stream's stdin in flight, acknowledged with STDIN_ACK; a host that ignores it is stopped
 * here, at the cost of stalling every stream. */
#define IN_QUEUE_HIGH	 (20u << 20) /* stop reading the port above this much stdin, in all */
#define ACK_BATCH	 (16u << 10) /* acknowledge stdin in pieces of at least this much */
#define DRAIN_TIMEOUT_MS 3000	    /* after a process exits, wait this long for its output */
#define FLUSH_TIMEOUT_MS 30000	    /* before power-off, wait this long for the host to read */
#define SHUTDOWN_REAP_MS 5000	    /* on SHUTDOWN, wait this long for killed processes */

/* One process the host started: the main process (stream 1) or an exec session. */
struct session {
	uint32_t stream; /* 0: a free slot */
	struct container_proc proc;
	struct buf stdin_q; /* bytes for the process's stdin */
	uint32_t unacked;   /* stdin taken (or dropped) but not yet acknowledged */
	bool stdin_eof;	    /* host sent STDIN_EOF */
	bool exited;	    /* reaped: status is valid */
	int status;
	uint64_t exit_time;
};

struct init {
	int port;
	int sigfd;
	struct proto_reader reader;
	struct buf out; /* frames to the host, of every stream */
	struct session sessions[MAX_SESSIONS];
	bool main_started; /* the main START was handled */
	bool main_failed;  /* ... and its process did not start: power off */
	bool execs_killed; /* the main process exited and the exec sessions were killed */
	char disk[32];	   /* the root disk under /sys/block, for STATS */
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

/* The loopback interface, up: containers talk to themselves on 127.0.0.1. */
static void loopback_up(void)
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return;
	str_copy(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
			guest_log("cannot bring lo up: %s", strerror(errno));
	}
	close(fd);
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
	mount_basic("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
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

/* n bytes of sess's stdin were taken by the process (or dropped): tell the host, in batches,
 * so that it can send more (STDIN_ACK). */
static void stdin_taken(struct init *s, struct session *sess, size_t n)
{
	sess->unacked += (uint32_t)n;
	if (sess->unacked && (sess->unacked >= ACK_BATCH || sess->stdin_q.len == 0)) {
		queue_frame(s, proto_put_u32(&s->out, PROTO_STDIN_ACK, sess->stream, sess->unacked));
		sess->unacked = 0;
	}
}

/* Write as much of the output queue as the port takes now; blocking: all of it, unless the
 * host reads nothing for FLUSH_TIMEOUT_MS. */
static void flush_out(struct init *s, bool blocking)
{
	uint64_t last = now_ns();

	while (s->out.len > 0) {
		ssize_t n = write(s->port, s->out.data, s->out.len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd p = { .fd = s->port, .events = POLLOUT };
				if (!blocking)
					return;
				if (now_ns() - last > FLUSH_TIMEOUT_MS * 1000000ULL) {
					guest_log("the host does not read; dropping %zu bytes",
						  s->out.len);
					s->out.len = 0;
					return;
				}
				if (poll(&p, 1, 1000) > 0 && !(p.revents & POLLOUT))
					usleep(10000); /* hung up: do not spin */
				continue;
			}
			guest_log("write to host failed: %s", strerror(errno));
			s->out.len = 0;
			return;
		}
		buf_consume(&s->out, (size_t)n);
		last = now_ns();
	}
}

static struct session *find_session(struct init *s, uint32_t stream)
{
	if (stream == 0)
		return NULL;
	for (size_t i = 0; i < MAX_SESSIONS; i++)
		if (s->sessions[i].stream == stream)
			return &s->sessions[i];
	return NULL;
}

static struct session *free_slot(struct init *s)
{
	for (size_t i = 0; i < MAX_SESSIONS; i++)
		if (s->sessions[i].stream == 0)
			return &s->sessions[i];
	return NULL;
}

static void session_open(struct session *sess, uint32_t stream, const struct container_proc *proc)
{
	sess->stream = stream;
	sess->proc = *proc;
	sess->stdin_eof = false;
	sess->exited = false;
	sess->unacked = 0;
	buf_reset(&sess->stdin_q);
	fd_set_nonblock(sess->proc.out_fd, true); /* with a terminal, also in_fd */
	if (sess->proc.err_fd >= 0)
		fd_set_nonblock(sess->proc.err_fd, true);
	if (sess->proc.in_fd >= 0 && !sess->proc.terminal)
		fd_set_nonblock(sess->proc.in_fd, true);
}

static void session_free(struct session *sess)
{
	if (sess->proc.terminal)
		sess->proc.in_fd = -1; /* the same descriptor as out_fd */
	closep(&sess->proc.in_fd);
	closep(&sess->proc.out_fd);
	closep(&sess->proc.err_fd);
	buf_done(&sess->stdin_q);
	sess->stream = 0;
	sess->proc.pid = 0;
}

static void send_exit(struct init *s, struct session *sess)
{
	struct proto_exit e = { 0 };

	if (WIFSIGNALED(sess->status)) {
		e.kind = PROTO_EXIT_SIGNAL;
		e.status = (uint32_t)WTERMSIG(sess->status);
	} else {
		e.kind = PROTO_EXIT_CODE;
		e.status = (uint32_t)WEXITSTATUS(sess->status);
	}
	queue_frame(s, proto_put_exit(&s->out, sess->stream, &e));
}

static _noreturn_ void unmount_and_power_off(void)
{
	sync();
	volumes_unstage();
	if (umount2(GUEST_ROOTFS, 0) < 0 && errno != EINVAL)
		umount2(GUEST_ROOTFS, MNT_DETACH);
	power_off();
}

/* The main process is done (main is NULL when it never started): its EXIT goes last. */
static _noreturn_ void finish(struct init *s, struct session *main)
{
	if (main)
		send_exit(s, main);
	flush_out(s, true);
	guest_trace("EXIT sent");
	unmount_and_power_off();
}

/* SHUTDOWN: no EXIT frames; whatever runs is killed. */
static _noreturn_ void shutdown_vm(void)
{
	uint64_t deadline = now_ns() + SHUTDOWN_REAP_MS * 1000000ULL;

	guest_trace("SHUTDOWN received");
	kill(-1, SIGKILL);
	for (;;) {
		pid_t pid = waitpid(-1, NULL, WNOHANG);

		if (pid > 0 || (pid < 0 && errno == EINTR))
			continue;
		if (pid < 0)
			break; /* ECHILD: all reaped */
		if (now_ns() > deadline) {
			guest_log("processes did not end after SIGKILL; powering off anyway");
			break;
		}
		usleep(10000);
	}
	unmount_and_power_off();
}

static void start_main(struct init *s, const struct proto_start *m)
{
	struct container_proc proc;
	const char *dev = strrchr(m->rootfs, '/');
	char msg[512];
	uint32_t kind;
	int r;

	guest_trace("START received");
	s->main_started = true;
	if (dev && dev[1])
		str_copy(s->disk, sizeof(s->disk), dev + 1);
	kind = PROTO_ERR_INTERNAL;
	r = 0;
	for (uint32_t i = 0; i < m->nnets && r == 0; i++)
		r = net_configure(&m->nets[i], msg, sizeof(msg));
	if (r == 0)
		r = net_write_etc(m, msg, sizeof(msg));
	if (r == 0 && m->nnets)
		r = net_dns_stub(m->resolv, msg, sizeof(msg));
	if (r == 0)
		r = container_start(m, &proc, &kind, msg, sizeof(msg));
	guest_trace("process started");
	if (r < 0) {
		send_error(s, 1, kind, msg);
		/* the process never ran: the VM has nothing more to do */
		s->main_failed = true;
		return;
	}
	session_open(&s->sessions[0], 1, &proc); /* the first START: every slot is free */
	queue_frame(s, proto_put_u32(&s->out, PROTO_STARTED, 1, (uint32_t)proc.pid));
}

static void start_exec(struct init *s, uint32_t stream, const struct proto_start *m)
{
	struct session *main = find_session(s, 1), *sess = free_slot(s);
	struct container_proc proc;
	char msg[512];
	uint32_t kind;
	int r;

	if (!main || main->exited) {
		send_error(s, stream, PROTO_ERR_INTERNAL, "the container is not running");
		return;
	}
	if (find_session(s, stream)) {
		str_printf(msg, sizeof(msg), "stream %u is already in use", stream);
		send_error(s, stream, PROTO_ERR_INTERNAL, msg);
		return;
	}
	if (!sess) {
		str_printf(msg, sizeof(msg),
			   "too many processes in the container (at most %d at once)",
			   MAX_SESSIONS);
		send_error(s, stream, PROTO_ERR_INTERNAL, msg);
		return;
	}
	r = container_exec(m, main->proc.pid, &proc, &kind, msg, sizeof(msg));
	if (r < 0) {
		send_error(s, stream, kind, msg);
		return;
	}
	session_open(sess, stream, &proc);
	queue_frame(s, proto_put_u32(&s->out, PROTO_STARTED, stream, (uint32_t)proc.pid));
}

static void handle_start(struct init *s, const struct proto_hdr *h, const uint8_t *p)
{
	_cleanup_(proto_start_done) struct proto_start m = { 0 };
	char msg[256];

	const char *bad = NULL;

	if (proto_get_start(p, h->len, &m) < 0)
		bad = "malformed START message";
	else if (h->stream == 1 && s->main_started)
		bad = "the main process was already started";
	else if (h->stream == 1 && (m.exec || (m.tool && m.tool != PROTO_TOOL_PAUSE)))
		bad = "stream 1 is the main process: its START sets neither exec nor a tool "
		      "but PAUSE";
	else if (h->stream != 1 && m.tool == PROTO_TOOL_PAUSE)
		bad = "PAUSE is for the main process only";
	if (h->stream == 1) {
		if (!bad) {
			start_main(s, &m);
			return;
		}
		send_error(s, 1, PROTO_ERR_INTERNAL, bad);
		if (!s->main_started) /* the main process cannot start: nothing more to do */
			s->main_started = s->main_failed = true;
		return;
	}
	if (bad) {
		send_error(s, h->stream, PROTO_ERR_INTERNAL, bad);
		return;
	}
	if (!m.exec) {
		str_printf(msg, sizeof(msg),
			   "stream %u: only stream 1 runs the main process (an exec session sets "
			   "exec)",
			   h->stream);
		send_error(s, h->stream, PROTO_ERR_INTERNAL, msg);
		return;
	}
	start_exec(s, h->stream, &m);
}

static void close_stdin(struct session *sess)
{
	if (sess->proc.terminal) {
		/* a terminal has no separate stdin to close: send the EOF character */
		struct termios t;
		uint8_t eof = 4;
		if (tcgetattr(sess->proc.out_fd, &t) == 0)
			eof = t.c_cc[VEOF];
		(void)write_full(sess->proc.out_fd, &eof, 1);
		return;
	}
	closep(&sess->proc.in_fd);
}

static void handle_stats(struct init *s, const struct proto_hdr *h)
{
	struct proto_stats st;
	int r;

	if (h->len != 0) {
		guest_log("ignoring a STATS answer sent to the guest");
		return;
	}
	guest_stats(s->disk, &st);
	r = proto_put_stats(&s->out, &st);
	if (r == -E2BIG)
		guest_log("output queue to the host is full; STATS not answered");
	else
		queue_frame(s, r);
}

/*
 * This VM was restored from a template: the same kernel state as every other VM restored from
 * it, down to the RNG. Before anything runs in the container it takes fresh entropy from the
 * host and reseeds the RNG (so /dev/urandom, AT_RANDOM and the boot_id, which nothing read in
 * the template, are its own), the host's wall clock and its own MACs. Then it says HELLO to this
 * host. Nothing of the template's disks needs forgetting: the kernel drops a block device's
 * page cache at its last close (the partition scan's reads included), and nothing in the
 * template holds a disk open.
 */
static void handle_resume(struct init *s, const struct proto_hdr *h, const uint8_t *p)
{
	struct proto_resume m;
	struct proto_hello hello = { .version = PROTO_VERSION };
	struct {
		int entropy_count, buf_size;
		uint8_t buf[PROTO_ENTROPY];
	} pool = { PROTO_ENTROPY * 8, PROTO_ENTROPY, { 0 } };
	struct timespec ts;
	struct utsname u;
	int fd;

	guest_trace("RESUME received");
	if (proto_get_resume(p, h->len, &m) < 0)
		die("malformed RESUME message");
	memcpy(pool.buf, m.entropy, sizeof(pool.buf));
	fd = open("/dev/urandom", O_RDWR | O_CLOEXEC);
	if (fd < 0 || ioctl(fd, RNDADDENTROPY, &pool) < 0 || ioctl(fd, RNDRESEEDCRNG) < 0)
		die("cannot reseed the RNG after a restore: %s", strerror(errno));
	close(fd);
	explicit_bzero(&pool, sizeof(pool));
	explicit_bzero(&m.entropy, sizeof(m.entropy));
	ts.tv_sec = (time_t)(m.realtime_ns / 1000000000ULL);
	ts.tv_nsec = (long)(m.realtime_ns % 1000000000ULL);
	if (clock_settime(CLOCK_REALTIME, &ts) < 0)
		guest_log("cannot set the clock: %s", strerror(errno));
	for (unsigned i = 0; i < m.nmacs; i++) {
		uint8_t from[6];
		int r;

		proto_template_mac(i, from);
		r = net_take_mac(from, m.macs[i]);
		if (r < 0)
			guest_log("NIC %u cannot take its MAC: %s", i, strerror(-r));
	}
	/* QEMU cannot give back memory that a shared template backs (it would have to punch a
	 * hole in the template itself, which is sealed): the guest stops offering it */
	fd = open("/sys/module/page_reporting/parameters/page_reporting_order",
		  O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "64\n", 3) != 3)
		guest_log("cannot stop free page reporting: %s", strerror(errno));
	if (fd >= 0)
		close(fd);
	guest_trace("unique");
	guest_log("resumed from a template");
	uname(&u);
	hello.kernel = u.release;
	queue_frame(s, proto_put_hello(&s->out, &hello));
}

static void handle_frame(struct init *s, const struct proto_hdr *h, const uint8_t *p)
{
	struct session *sess = find_session(s, h->stream);
	bool running = sess && !sess->exited;
	uint16_t rows, cols;
	uint32_t v;

	/* frames for an unknown or finished stream are late, not wrong: ignored */
	switch (h->type) {
	case PROTO_START:
		handle_start(s, h, p);
		break;
	case PROTO_STDIN:
		if (!running)
			break;
		if (sess->proc.in_fd < 0 || sess->stdin_eof) {
			stdin_taken(s, sess, h->len); /* nobody will read it */
			break;
		}
		if (buf_append(&sess->stdin_q, p, h->len) < 0) {
			guest_log("stdin queue of stream %u overflowed; dropping %u bytes",
				  h->stream, h->len);
			stdin_taken(s, sess, h->len);
		}
		break;
	case PROTO_STDIN_EOF:
		if (!running || sess->stdin_eof)
			break;
		sess->stdin_eof = true;
		if (sess->stdin_q.len == 0 && sess->proc.in_fd >= 0)
			close_stdin(sess);
		break;
	case PROTO_SIGNAL:
		if (proto_get_u32(p, h->len, &v) == 0 && v >= 1 && v <= 64 && v < NSIG && running &&
		    sess->proc.pid > 0)
			kill(sess->proc.pid, (int)v);
		break;
	case PROTO_RESIZE:
		if (proto_get_resize(p, h->len, &rows, &cols) == 0 && sess && sess->proc.terminal &&
		    sess->proc.out_fd >= 0) {
			struct winsize ws = { .ws_row = rows, .ws_col = cols };
			ioctl(sess->proc.out_fd, TIOCSWINSZ, &ws);
		}
		break;
	case PROTO_STATS:
		handle_stats(s, h);
		break;
	case PROTO_SHUTDOWN:
		shutdown_vm();
	case PROTO_RESUME:
		handle_resume(s, h, p);
		break;
	default:
		guest_log("ignoring unexpected message %s", proto_type_name(h->type));
		break;
	}
}

static void read_port(struct init *s)
{
	struct proto_hdr h;
	const uint8_t *payload;
	ssize_t n = proto_reader_read(&s->reader, s->port);
	int r;

	if (n == -EAGAIN)
		return;
	if (n < 0)
		die("read from host failed: %s", strerror((int)-n));
	if (n == 0) {
		/* host side not connected (yet, or any more); avoid spinning */
		usleep(10000);
		return;
	}
	while ((r = proto_reader_next(&s->reader, &h, &payload)) > 0)
		handle_frame(s, &h, payload);
	if (r < 0)
		die("malformed message from host: %s", strerror(-r));
}

/* Returns false at EOF (or error) of this output. Reads only while the output queue is below
 * OUT_QUEUE_HIGH, so that it never grows past OUT_QUEUE_HIGH + one frame per read. */
static bool pump_output(struct init *s, struct session *sess, int fd, uint16_t type)
{
	uint8_t tmp[PROTO_MAX_DATA];
	ssize_t n;

	if (s->out.len >= OUT_QUEUE_HIGH)
		return true;
	n = read(fd, tmp, sizeof(tmp));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return true;
	if (n <= 0)
		return false; /* EOF, or EIO on a pty whose last slave closed */
	queue_frame(s, proto_put_data(&s->out, type, sess->stream, tmp, (size_t)n));
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
		for (size_t i = 0; i < MAX_SESSIONS; i++) {
			struct session *sess = &s->sessions[i];

			if (!sess->stream || sess->exited || sess->proc.pid != pid)
				continue;
			sess->exited = true;
			sess->status = status;
			sess->exit_time = now_ns();
			/* nothing reads its stdin any more */
			buf_done(&sess->stdin_q);
			if (sess->proc.terminal)
				sess->proc.in_fd = -1;
			else
				closep(&sess->proc.in_fd);
			if (sess->stream == 1)
				guest_trace("process exited");
			break;
		}
	}
}

static void write_stdin(struct init *s, struct session *sess)
{
	ssize_t n = write(sess->proc.in_fd, sess->stdin_q.data, sess->stdin_q.len);

	if (n < 0) {
		size_t dropped = sess->stdin_q.len;

		if (errno == EAGAIN || errno == EINTR)
			return;
		/* EPIPE: the process closed its stdin; drop what it will never read */
		buf_reset(&sess->stdin_q);
		stdin_taken(s, sess, dropped);
		if (!sess->proc.terminal)
			closep(&sess->proc.in_fd);
		return;
	}
	buf_consume(&sess->stdin_q, (size_t)n);
	stdin_taken(s, sess, (size_t)n);
	if (sess->stdin_q.len == 0 && sess->stdin_eof)
		close_stdin(sess);
}

/*
 * Sessions whose process has exited: EXIT once their output is drained (or DRAIN_TIMEOUT_MS
 * after the exit). When the main process has exited, the exec sessions are killed (as docker
 * does), their EXITs go first and the main's last, then the VM powers off. Sets *timeout
 * while something is waited for.
 */
static void check_sessions(struct init *s, int *timeout)
{
	struct session *main = find_session(s, 1);
	uint64_t now = now_ns(), drain = DRAIN_TIMEOUT_MS * 1000000ULL;
	bool others = false;

	if (s->main_failed)
		finish(s, NULL);
	if (main && main->exited && !s->execs_killed) {
		for (size_t i = 0; i < MAX_SESSIONS; i++) {
			struct session *sess = &s->sessions[i];
			if (sess->stream > 1 && !sess->exited && sess->proc.pid > 0)
				kill(sess->proc.pid, SIGKILL);
		}
		s->execs_killed = true;
	}
	for (size_t i = 0; i < MAX_SESSIONS; i++) {
		struct session *sess = &s->sessions[i];
		bool drained = sess->proc.out_fd < 0 && sess->proc.err_fd < 0;

		if (sess->stream <= 1)
			continue;
		if (!sess->exited) {
			others = true;
			continue;
		}
		if (!drained && now - sess->exit_time <= drain) {
			others = true;
			*timeout = 100;
			continue;
		}
		if (!drained)
			guest_log("output of stream %u did not end; not waiting for it",
				  sess->stream);
		send_exit(s, sess);
		session_free(sess);
	}
	if (!main || !main->exited)
		return;
	*timeout = 100;
	if (!others && main->proc.out_fd < 0 && main->proc.err_fd < 0)
		finish(s, main);
	if (now - main->exit_time > drain) {
		for (size_t i = 0; i < MAX_SESSIONS; i++) {
			struct session *sess = &s->sessions[i];

			if (sess->stream <= 1)
				continue;
			if (sess->exited)
				send_exit(s, sess);
			else
				guest_log("the process of stream %u did not end", sess->stream);
		}
		if (main->proc.out_fd >= 0 || main->proc.err_fd >= 0)
			guest_log("output of the main process did not end; not waiting for it");
		finish(s, main);
	}
}

enum { WATCH_OUT, WATCH_ERR, WATCH_IN };

static void loop(struct init *s)
{
	for (;;) {
		struct pollfd p[2 + MAX_SESSIONS * 3];
		struct {
			struct session *sess;
			int what;
		} watch[ARRAY_SIZE(p)];
		size_t stdin_total = 0;
		int n = 0, timeout = -1;
		bool port_in;

		check_sessions(s, &timeout);
		for (size_t i = 0; i < MAX_SESSIONS; i++)
			stdin_total += s->sessions[i].stdin_q.len;
		port_in = stdin_total < IN_QUEUE_HIGH;
		p[n++] = (struct pollfd){
			.fd = s->port,
			.events = (port_in ? POLLIN : 0) | (s->out.len ? POLLOUT : 0),
		};
		p[n++] = (struct pollfd){ .fd = s->sigfd, .events = POLLIN };
		for (size_t i = 0; i < MAX_SESSIONS; i++) {
			struct session *sess = &s->sessions[i];
			const int fds[] = { [WATCH_OUT] = sess->proc.out_fd,
					    [WATCH_ERR] = sess->proc.err_fd,
					    [WATCH_IN] = sess->proc.in_fd };

			if (!sess->stream)
				continue;
			for (int w = WATCH_OUT; w <= WATCH_IN; w++) {
				short ev = w == WATCH_IN ? POLLOUT : POLLIN;

				if (fds[w] < 0)
					continue;
				if (w == WATCH_IN ? !sess->stdin_q.len
						  : s->out.len >= OUT_QUEUE_HIGH)
					continue;
				watch[n] = (typeof(watch[0])){ sess, w };
				p[n++] = (struct pollfd){ .fd = fds[w], .events = ev };
			}
		}
		if (poll(p, (nfds_t)n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			die("poll failed: %s", strerror(errno));
		}
		if (p[1].revents)
			reap(s);
		/* the processes' descriptors first: handling the port may start new sessions */
		for (int i = 2; i < n; i++) {
			struct session *sess = watch[i].sess;

			if (!p[i].revents)
				continue;
			switch (watch[i].what) {
			case WATCH_OUT:
				if (sess->proc.out_fd != p[i].fd)
					break;
				if (!pump_output(s, sess, p[i].fd, PROTO_STDOUT)) {
					if (sess->proc.terminal)
						sess->proc.in_fd = -1; /* same descriptor */
					closep(&sess->proc.out_fd);
				}
				break;
			case WATCH_ERR:
				if (sess->proc.err_fd == p[i].fd &&
				    !pump_output(s, sess, p[i].fd, PROTO_STDERR))
					closep(&sess->proc.err_fd);
				break;
			case WATCH_IN:
				if (sess->proc.in_fd == p[i].fd && sess->stdin_q.len)
					write_stdin(s, sess);
				break;
			}
		}
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			if (port_in)
				read_port(s);
			else
				usleep(10000); /* hung up, and not reading now: do not spin */
		}
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
	static struct init s = {
		.port = -1,
		.out = BUF_INIT(OUT_QUEUE_MAX),
		.disk = "vda",
	};
	struct proto_hello hello = { .version = PROTO_VERSION };
	struct utsname u;
	sigset_t mask;
	int r;

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

	for (size_t i = 0; i < MAX_SESSIONS; i++) {
		s.sessions[i].proc =
			(struct container_proc){ .in_fd = -1, .out_fd = -1, .err_fd = -1 };
		/* the port is not read at IN_QUEUE_HIGH; one read of it adds at most 64 KiB */
		s.sessions[i].stdin_q = BUF_INIT(IN_QUEUE_HIGH + PROTO_MAX_PAYLOAD);
	}

	setup_system();
	loopback_up();
	guest_debug = cmdline_has("cove.debug");
	r = container_init();
	if (r < 0)
		guest_log("cannot open /proc/self/ns/pid: %s; exec sessions will fail",
			  strerror(-r));
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
