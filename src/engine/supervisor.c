/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The supervisor: one process per running container, forked by the command that starts it and
 * then on its own (a session of its own, stdio on /dev/null). It owns QEMU and the channel to
 * cove-init, keeps the container log, records the exit status in state.json, and serves the
 * control socket through which the CLI attaches, execs, signals, asks for stats and stops.
 * It holds the container's lock for as long as it lives and exits with the container's status,
 * so that "the lock is held" means "running", whatever happens to the CLI or to it.
 *
 * Clients speak the guest protocol (src/proto) over the socket; a connection's first frame says
 * what it is: ATTACH (the main process's stdio), START (an exec session: the client's stream 1
 * is renumbered to a guest stream of its own), STATS, STOP, or SIGNAL (kill).
 */
#define _GNU_SOURCE
#include "supervisor.h"
#include "volume.h"

#include "log.h"
#include "network.h"
#include "ports.h"
#include "spec.h"
#include "template.h"

#include "vm/accel.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <netinet/in.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#define MAX_CLIENTS 64
#define CLIENT_OUT_MAX (16u << 20)
#define CLIENT_OUT_HIGH (4u << 20) /* stop reading the guest while a client is this far behind */
#define GUEST_OUT_MAX (8u << 20)
#define POWEROFF_WAIT_MS 10000   /* after the main process exits, for the guest to power off */
#define KILL_WAIT_MS 5000        /* after SIGKILL, then after SHUTDOWN */
#define STDIN_WINDOW (256u << 10) /* a stream's stdin in flight, not yet taken by its process */
#define RESTORE_TIMEOUT_MS 10000 /* QEMU loading a template, then the guest's HELLO after it */

enum role { ROLE_NEW, ROLE_ATTACH, ROLE_EXEC, ROLE_STATS, ROLE_STOP, ROLE_DONE };

struct client {
	int fd;
	enum role role;
	bool stdin;          /* ATTACH with stdin */
	bool finished;       /* exec: its EXIT or ERROR went out: close once flushed */
	uint32_t stream;     /* exec: the guest stream */
	uint64_t inflight;   /* exec: stdin sent, not yet acknowledged by the guest */
	struct proto_reader reader;
	struct buf out;
};

struct sup {
	const struct cove_paths *paths;
	struct container *c;
	const struct container_spec *spec;
	struct vm vm;
	struct vm_config vc;
	char qemu[4096];
	enum vm_accel want;
	struct vm_accel_ctx ax;
	struct net_attachment net[PROTO_MAX_NICS]; /* net[0]: the first NIC, with the default route */
	size_t nnets;
	struct volume_attachment vols; /* bind mounts and volumes: locks, disks, START's mounts */
	char user_net[4096];     /* -netdev of QEMU's user networking: "user,id=n0,hostfwd=..." */
	struct port_proxy *ports; /* -p: listeners and their relay */
	struct vm_verdict verdict;
	struct proto_reader reader;
	struct buf out;     /* frames to the guest */
	struct buf replay;  /* what went to a KVM guest before its HELLO, for a TCG re-boot */
	bool replay_lost;   /* too much for replay: no re-boot */
	char kvm_failure[512]; /* why KVM failed, set while the TCG re-boot runs */
	struct template tpl;   /* what the VM was restored from (its directory; no descriptors) */
	bool restored;         /* the VM runs from a template (until a cold re-boot) */
	bool no_restore;       /* the restored VM failed: boot cold from now on */
	bool make_template;    /* there is none for this shape: make one once the guest booted */
	pid_t holder;          /* the QEMU recorded as mapping tpl's RAM, or 0 */
	int listen_fd;
	int sigfd;
	struct log_writer log;
	struct client *clients[MAX_CLIENTS];
	bool hello, started, main_done, vm_gone;
	uint64_t main_inflight; /* the main process's stdin sent, not yet acknowledged */
	uint32_t next_stream;
	int exit_code;
	char error[512];
	struct buf last;    /* the main process's STARTED and EXIT/ERROR frames, for late attachers */
	uint64_t boot_deadline;
	int boot_timeout_ms;
	bool boot_timed_out; /* no HELLO before boot_deadline */
	/* stopping: 0 no; 1 signal sent; 2 SIGKILL sent; 3 SHUTDOWN sent */
	int stop_phase;
	uint64_t deadline;  /* of the current stop phase, or of the power-off after the exit */
	struct container_status st;
};

static void client_free(struct client *cl)
{
	closep(&cl->fd);
	proto_reader_done(&cl->reader);
	buf_done(&cl->out);
	free(cl);
}

static struct client *client_new(struct sup *s, int fd)
{
	struct client *cl;

	for (size_t i = 0; i < MAX_CLIENTS; i++) {
		if (s->clients[i])
			continue;
		cl = calloc(1, sizeof(*cl));
		if (!cl)
			return NULL;
		cl->fd = fd;
		cl->out = BUF_INIT(CLIENT_OUT_MAX);
		proto_reader_init(&cl->reader);
		fd_set_nonblock(fd, true);
		s->clients[i] = cl;
		return cl;
	}
	return NULL;
}

static void client_drop(struct sup *s, size_t i)
{
	client_free(s->clients[i]);
	s->clients[i] = NULL;
}

/* Queue a frame (already encoded in tmp) for a client; a client that falls too far behind
 * loses its connection rather than stall the container. */
static void client_send(struct client *cl, const struct buf *frame)
{
	if (cl->role == ROLE_DONE)
		return;
	if (buf_append(&cl->out, frame->data, frame->len) < 0)
		cl->role = ROLE_DONE;
}

static void client_send_error(struct client *cl, uint32_t kind, const char *msg)
{
	struct buf f = BUF_INIT(PROTO_MAX_PAYLOAD + PROTO_HDR_SIZE);

	if (proto_put_error(&f, 1, kind, msg) == 0)
		client_send(cl, &f);
	buf_done(&f);
	cl->finished = true;
}

static void broadcast(struct sup *s, enum role role, const struct buf *frame)
{
	for (size_t i = 0; i < MAX_CLIENTS; i++)
		if (s->clients[i] && s->clients[i]->role == role)
			client_send(s->clients[i], frame);
}

/* One line for the clients attached now, which print it on stderr (not part of the log). */
static void notice(struct sup *s, const char *msg)
{
	struct buf f = BUF_INIT(PROTO_HDR_SIZE + PROTO_MAX_MESSAGE);
	size_t len = strlen(msg);

	if (len > PROTO_MAX_MESSAGE)
		len = PROTO_MAX_MESSAGE;
	if (proto_put_data(&f, PROTO_NOTICE, 0, msg, len) == 0)
		broadcast(s, ROLE_ATTACH, &f);
	buf_done(&f);
}

/* COVE_TRACE=FILE: when each step of a start happened (ms since the supervisor began), for
 * bench/boot to say where the time goes */
static void trace(const char *what)
{
	static int fd = -2;
	static uint64_t t0;
	char line[128];

	if (fd == -2) {
		const char *path = getenv("COVE_TRACE");

		fd = path && *path ? open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644) : -1;
		t0 = now_ns();
	}
	if (fd < 0)
		return;
	str_printf(line, sizeof(line), "%.1f %s\n", (double)(now_ns() - t0) / 1e6, what);
	(void)write_full(fd, line, strlen(line));
}

static void save_state(struct sup *s)
{
	/* a maintenance boot (cp on a stopped container) leaves the container's state alone */
	if (!s->spec->maintenance)
		(void)container_save_status(s->c, &s->st);
}

static void guest_queue(struct sup *s, int r)
{
	if (r < 0 && !s->error[0])
		str_printf(s->error, sizeof(s->error), "cannot queue a message to the guest: %s",
			   strerror(-r));
}

/* The main process is over (or never ran): record it, tell the attached clients. */
static void main_finished(struct sup *s, int code, const char *error, uint32_t err_kind)
{
	struct buf f = BUF_INIT(PROTO_MAX_PAYLOAD + PROTO_HDR_SIZE);

	if (s->main_done)
		return;
	s->main_done = true;
	s->exit_code = code;
	if (error && !s->error[0])
		str_copy(s->error, sizeof(s->error), error);
	if (error)
		proto_put_error(&f, 1, err_kind, error);
	else if (code >= 128 && code < 128 + 65)
		proto_put_exit(&f, 1, &(struct proto_exit){ PROTO_EXIT_SIGNAL, (uint32_t)code - 128 });
	else
		proto_put_exit(&f, 1, &(struct proto_exit){ PROTO_EXIT_CODE, (uint32_t)code });
	broadcast(s, ROLE_ATTACH, &f);
	buf_append(&s->last, f.data, f.len);
	buf_done(&f);
	/* exec sessions end with the container */
	for (size_t i = 0; i < MAX_CLIENTS; i++) {
		struct client *cl = s->clients[i];
		if (cl && (cl->role == ROLE_EXEC || cl->role == ROLE_STATS) && !cl->finished)
			client_send_error(cl, PROTO_ERR_INTERNAL, "the container stopped");
	}
	/* a --rm container's disk goes anyway: no need to wait for the guest to write it back,
	 * unless it has a block volume, which outlives it */
	if (!s->vm_gone && !s->deadline)
		s->deadline = now_ns() + (uint64_t)(s->c->rm && !s->vols.ndisks ? 0 : POWEROFF_WAIT_MS) *
						 1000000ULL;
}

static struct client *exec_client(struct sup *s, uint32_t stream)
{
	for (size_t i = 0; i < MAX_CLIENTS; i++)
		if (s->clients[i] && s->clients[i]->role == ROLE_EXEC &&
		    s->clients[i]->stream == stream)
			return s->clients[i];
	return NULL;
}

/* A guest frame as clients get it (the payload is unchanged): what is about a process goes to
 * the client's stream 1; what is about the VM stays on stream 0. */
static int client_frame_of(struct buf *f, const struct proto_hdr *h, const uint8_t *p)
{
	struct proto_hdr nh = *h;
	int r;

	nh.stream = h->stream ? 1 : 0;
	r = buf_reserve(f, PROTO_HDR_SIZE + h->len);
	if (r < 0)
		return r;
	proto_hdr_encode(&nh, f->data + f->len);
	if (h->len)
		memcpy(f->data + f->len + PROTO_HDR_SIZE, p, h->len);
	f->len += PROTO_HDR_SIZE + h->len;
	return 0;
}

static void forward(struct client *cl, const struct proto_hdr *h, const uint8_t *p)
{
	struct buf f = BUF_INIT(PROTO_MAX_PAYLOAD + PROTO_HDR_SIZE);

	if (client_frame_of(&f, h, p) == 0)
		client_send(cl, &f);
	buf_done(&f);
}

static int exit_code_of(const struct proto_exit *e)
{
	return e->kind == PROTO_EXIT_SIGNAL ? 128 + (int)e->status : (int)e->status;
}

/* What the guest says of itself, kept to what can be true of this VM: no more memory than it
 * has, no more CPUs, no more processes than a kernel allows, counters that fit in an int64. */
static void stats_sane(const struct sup *s, struct proto_stats *st)
{
	uint64_t *counters[] = { &st->cpu_ns, &st->uptime_ns, &st->disk_read, &st->disk_write,
				 &st->net_rx, &st->net_tx };

	if (st->mem_total > s->spec->memory)
		st->mem_total = s->spec->memory;
	if (st->mem_available > st->mem_total)
		st->mem_available = st->mem_total;
	if (st->ncpus > (s->spec->cpus ?: 1))
		st->ncpus = s->spec->cpus ?: 1;
	if (st->pids > 4194304) /* PID_MAX_LIMIT */
		st->pids = 4194304;
	for (size_t i = 0; i < ARRAY_SIZE(counters); i++)
		if (*counters[i] > INT64_MAX)
			*counters[i] = 0;
}

/* A guest that breaks the protocol is not talked to again. */
static void guest_malformed(struct sup *s, const char *what)
{
	str_printf(s->error, sizeof(s->error), "the guest sent a malformed %s message", what);
	vm_kill(&s->vm);
}

static void guest_frame(struct sup *s, const struct proto_hdr *h, const uint8_t *p)
{
	struct proto_hello hello = { 0 };
	struct proto_exit e;
	struct proto_error pe = { 0 };
	struct client *cl;
	char msg[600];

	if (!s->hello && h->type != PROTO_HELLO) {
		str_copy(s->error, sizeof(s->error), "the guest spoke before saying HELLO");
		vm_kill(&s->vm);
		return;
	}
	switch (h->type) {
	case PROTO_HELLO:
		if (proto_get_hello(p, h->len, &hello) < 0 || hello.version != PROTO_VERSION) {
			str_printf(msg, sizeof(msg),
				   "guest protocol version %u does not match cove's %u: the "
				   "initramfs is from another build; reinstall cove",
				   hello.version, PROTO_VERSION);
			main_finished(s, EXIT_COVE, msg, PROTO_ERR_INTERNAL);
			vm_kill(&s->vm);
		}
		proto_hello_done(&hello);
		s->hello = true;
		trace("hello");
		if (s->kvm_failure[0]) /* the same guest boots under TCG: KVM was to blame */
			(void)vm_accel_record_failure(&s->ax, s->kvm_failure);
		if (s->make_template) { /* this shape's first start: for the next ones */
			s->make_template = false;
			template_make_later(s->paths, &s->vc);
		}
		return;
	case PROTO_STARTED:
		if (h->stream == 1) {
			trace("started");
			struct buf f = BUF_INIT(64);
			s->started = true;
			if (client_frame_of(&f, h, p) == 0) {
				broadcast(s, ROLE_ATTACH, &f);
				buf_append(&s->last, f.data, f.len);
			}
			buf_done(&f);
		} else if ((cl = exec_client(s, h->stream))) {
			forward(cl, h, p);
		}
		return;
	case PROTO_STDOUT:
	case PROTO_STDERR:
		if (h->stream == 1) {
			struct buf f = BUF_INIT(PROTO_HDR_SIZE + PROTO_MAX_DATA);
			if (s->log.fd >= 0)
				(void)log_write(&s->log,
						 h->type == PROTO_STDERR ? LOG_STDERR : LOG_STDOUT, p,
						 h->len);
			/* encoded once for every attached client */
			if (client_frame_of(&f, h, p) == 0)
				broadcast(s, ROLE_ATTACH, &f);
			buf_done(&f);
		} else if ((cl = exec_client(s, h->stream))) {
			forward(cl, h, p);
		}
		return;
	case PROTO_EXIT:
		trace("exit");
		if (proto_get_exit(p, h->len, &e) < 0) {
			guest_malformed(s, "EXIT");
			return;
		}
		if (h->stream == 1) {
			main_finished(s, exit_code_of(&e), NULL, 0);
		} else if ((cl = exec_client(s, h->stream))) {
			forward(cl, h, p);
			cl->finished = true;
		}
		return;
	case PROTO_ERROR:
		if (proto_get_error(p, h->len, &pe) < 0) {
			guest_malformed(s, "ERROR");
			return;
		}
		if (h->stream <= 1) {
			int code = pe.kind == PROTO_ERR_NOTFOUND ? EXIT_NOT_FOUND
				   : pe.kind == PROTO_ERR_EXEC	 ? EXIT_CANNOT_EXEC
								 : EXIT_COVE;
			main_finished(s, code, pe.message, pe.kind);
		} else if ((cl = exec_client(s, h->stream))) {
			forward(cl, h, p);
			cl->finished = true;
		}
		proto_error_done(&pe);
		return;
	case PROTO_STDIN_ACK: {
		uint32_t n;
		uint64_t *inflight = h->stream == 1 ? &s->main_inflight
				     : (cl = exec_client(s, h->stream)) ? &cl->inflight
									: NULL;
		if (proto_get_u32(p, h->len, &n) < 0)
			guest_malformed(s, "STDIN_ACK");
		else if (inflight)
			*inflight -= n < *inflight ? n : *inflight;
		return;
	}
	case PROTO_STATS: {
		struct proto_stats st;
		struct buf f = BUF_INIT(PROTO_HDR_SIZE + 256);

		if (proto_get_stats(p, h->len, &st) < 0) {
			guest_malformed(s, "STATS");
			return;
		}
		stats_sane(s, &st);
		if (proto_put_stats(&f, &st) == 0)
			for (size_t i = 0; i < MAX_CLIENTS; i++)
				if (s->clients[i] && s->clients[i]->role == ROLE_STATS &&
				    !s->clients[i]->finished) {
					client_send(s->clients[i], &f);
					s->clients[i]->finished = true;
				}
		buf_done(&f);
		return;
	}
	default:
		return;
	}
}

static void stop_step(struct sup *s)
{
	switch (s->stop_phase) {
	case 1:
		s->stop_phase = 2;
		guest_queue(s, proto_put_u32(&s->out, PROTO_SIGNAL, 1, SIGKILL));
		s->deadline = now_ns() + KILL_WAIT_MS * 1000000ULL;
		break;
	case 2:
		s->stop_phase = 3;
		guest_queue(s, proto_put_empty(&s->out, PROTO_SHUTDOWN, 0));
		s->deadline = now_ns() + KILL_WAIT_MS * 1000000ULL;
		break;
	default:
		vm_kill(&s->vm);
		s->deadline = 0;
		break;
	}
}

static void stop_begin(struct sup *s, uint32_t sig, uint32_t timeout_s)
{
	uint64_t deadline = now_ns() + (uint64_t)timeout_s * 1000000000ULL;

	if (s->main_done)
		return;
	if (s->stop_phase) {
		/* a second, more urgent stop (rm -f during a stop -t 30): go straight on */
		if (s->stop_phase == 1 && sig == SIGKILL)
			stop_step(s);
		else if (s->stop_phase == 1 && deadline < s->deadline)
			s->deadline = deadline;
		return;
	}
	s->stop_phase = 1;
	if (s->hello || s->started)
		guest_queue(s, proto_put_u32(&s->out, PROTO_SIGNAL, 1, sig));
	s->deadline = deadline;
}

/*
 * An exec runs with the container's capabilities, seccomp filter and rlimits, whatever the
 * client asked for (the socket is only this user's, but what runs in the guest is the
 * container's to decide, as with docker exec without --privileged); the main process's own
 * settings (read-only root, init, tmpfs mounts) are not an exec's. The client chooses the
 * command, environment, directory, user and terminal, and may ask for a copy (cp).
 */
static int exec_policy(const struct sup *s, struct proto_start *m)
{
	struct proto_rlimit *rl = NULL;

	if (m->tool != PROTO_TOOL_NONE && m->tool != PROTO_TOOL_TAR_OUT &&
	    m->tool != PROTO_TOOL_TAR_IN)
		return -EPERM;
	if (s->spec->nrlimits) {
		rl = calloc(s->spec->nrlimits, sizeof(*rl));
		if (!rl)
			return -ENOMEM;
		for (size_t i = 0; i < s->spec->nrlimits; i++)
			rl[i] = (struct proto_rlimit){ (uint32_t)s->spec->rlimits[i].resource,
						       s->spec->rlimits[i].soft,
						       s->spec->rlimits[i].hard };
	}
	free(m->rlimits);
	m->rlimits = rl;
	m->nrlimits = (uint32_t)s->spec->nrlimits;
	m->caps = s->spec->caps;
	m->unconfined = s->spec->unconfined;
	m->readonly = m->init = 0;
	m->ntmpfs = 0; /* the array stays m's, freed with it */
	return 0;
}

static void client_frame(struct sup *s, struct client *cl, const struct proto_hdr *h,
			 const uint8_t *p)
{
	struct proto_start m = { 0 };
	struct proto_stop stop;
	uint32_t v;
	uint16_t rows, cols;
	int r;

	if (cl->role == ROLE_NEW) {
		switch (h->type) {
		case PROTO_ATTACH:
			if (proto_get_u32(p, h->len, &v) < 0)
				goto bad;
			cl->role = ROLE_ATTACH;
			cl->stdin = v & PROTO_ATTACH_STDIN;
			if (s->last.len)
				buf_append(&cl->out, s->last.data, s->last.len);
			return;
		case PROTO_START:
			if (proto_get_start(p, h->len, &m) < 0)
				goto bad;
			cl->role = ROLE_EXEC;
			if (exec_policy(s, &m) < 0) {
				client_send_error(cl, PROTO_ERR_INTERNAL,
						  "an exec may run a command or copy files, nothing else");
			} else if (!s->started || s->main_done || s->stop_phase) {
				client_send_error(cl, PROTO_ERR_INTERNAL,
						  "the container is not running");
			} else {
				m.exec = 1;
				cl->stream = s->next_stream++;
				r = proto_put_start(&s->out, cl->stream, &m);
				if (r < 0)
					client_send_error(cl, PROTO_ERR_INTERNAL,
							  "cannot pass the command to the guest");
			}
			proto_start_done(&m);
			return;
		case PROTO_STATS:
			cl->role = ROLE_STATS;
			if (!s->hello || s->main_done)
				client_send_error(cl, PROTO_ERR_INTERNAL,
						  "the container is not running");
			else
				guest_queue(s, proto_put_empty(&s->out, PROTO_STATS, 0));
			return;
		case PROTO_STOP:
			if (proto_get_stop(p, h->len, &stop) < 0)
				goto bad;
			cl->role = ROLE_STOP;
			stop_begin(s, stop.signal, stop.timeout_s);
			if (stop.signal == SIGKILL && s->stop_phase == 1)
				s->stop_phase = 2; /* already killed: next comes SHUTDOWN */
			return;
		case PROTO_SIGNAL:
			if (proto_get_u32(p, h->len, &v) < 0 || v < 1 || v > 64)
				goto bad;
			cl->role = ROLE_STOP; /* holds on until the client goes */
			if (!s->main_done)
				guest_queue(s, proto_put_u32(&s->out, PROTO_SIGNAL, 1, v));
			return;
		default:
			goto bad;
		}
	}
	/* later frames: the stdio of an attached or exec session */
	if (cl->role != ROLE_ATTACH && cl->role != ROLE_EXEC)
		return;
	if (cl->role == ROLE_ATTACH && s->main_done)
		return;
	if (cl->role == ROLE_EXEC && (cl->finished || !cl->stream))
		return;
	v = cl->role == ROLE_EXEC ? cl->stream : 1;
	switch (h->type) {
	case PROTO_STDIN:
		if (cl->role == ROLE_EXEC || cl->stdin) {
			guest_queue(s, proto_put_data(&s->out, PROTO_STDIN, v, p, h->len));
			*(cl->role == ROLE_EXEC ? &cl->inflight : &s->main_inflight) += h->len;
		}
		return;
	case PROTO_STDIN_EOF:
		if (cl->role == ROLE_EXEC || cl->stdin)
			guest_queue(s, proto_put_empty(&s->out, PROTO_STDIN_EOF, v));
		return;
	case PROTO_SIGNAL: {
		uint32_t sig;
		if (proto_get_u32(p, h->len, &sig) == 0 && sig >= 1 && sig <= 64)
			guest_queue(s, proto_put_u32(&s->out, PROTO_SIGNAL, v, sig));
		return;
	}
	case PROTO_RESIZE:
		if (proto_get_resize(p, h->len, &rows, &cols) == 0)
			guest_queue(s, proto_put_resize(&s->out, v, rows, cols));
		return;
	default:
		return;
	}
bad:
	cl->role = ROLE_DONE;
}

/* Returns false when the client is gone. */
static bool client_read(struct sup *s, struct client *cl)
{
	struct proto_hdr h;
	const uint8_t *payload;
	ssize_t n = proto_reader_read(&cl->reader, cl->fd);
	int r;

	if (n == -EAGAIN)
		return true;
	if (n <= 0)
		return false;
	while ((r = proto_reader_next(&cl->reader, &h, &payload)) > 0 && cl->role != ROLE_DONE)
		client_frame(s, cl, &h, payload);
	return r >= 0 && cl->role != ROLE_DONE;
}

static bool client_flush(struct client *cl)
{
	return buf_write_to(&cl->out, cl->fd) == 0;
}

/* a restored VM that fails boots cold; a KVM one that fails, under TCG */
static bool can_fall_back(const struct sup *s)
{
	return (s->restored || (s->vc.kvm && s->want == VM_ACCEL_AUTO)) && !s->replay_lost;
}

static void guest_flush(struct sup *s)
{
	/* until a KVM guest says HELLO, keep a copy of what it is sent: a TCG re-boot gets it */
	bool keep = !s->hello && can_fall_back(s);

	if (keep && buf_append(&s->replay, s->out.data, s->out.len) < 0) {
		s->replay_lost = true;
		keep = false;
	}
	if (buf_write_to(&s->out, s->vm.ctl_fd) < 0)
		s->out.len = 0; /* QEMU is gone; its pidfd tells the rest */
	if (keep)
		s->replay.len -= s->out.len; /* not sent yet: still in out */
}

/* Returns false when the channel is closed (QEMU is exiting). */
static bool guest_read(struct sup *s)
{
	struct proto_hdr h;
	const uint8_t *payload;
	ssize_t n = proto_reader_read(&s->reader, s->vm.ctl_fd);
	int r;

	if (n == -EAGAIN)
		return true;
	if (n <= 0)
		return false;
	while ((r = proto_reader_next(&s->reader, &h, &payload)) > 0)
		guest_frame(s, &h, payload);
	if (r < 0) {
		str_printf(s->error, sizeof(s->error), "the guest sent a malformed message: %s",
			   strerror(-r));
		vm_kill(&s->vm);
		return false;
	}
	return true;
}

/* Only this user (and root) may drive the container, whatever the socket's mode says. */
static bool peer_allowed(int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 &&
	       (cr.uid == 0 || cr.uid == geteuid());
}

static int listen_on(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	str_copy(a.sun_path, sizeof(a.sun_path), path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	unlink(path);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 16) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/* A client whose stdin the process has not taken yet waits (its stream alone, not the VM). */
static bool stdin_window_full(const struct sup *s, const struct client *cl)
{
	if (cl->role == ROLE_EXEC)
		return cl->inflight >= STDIN_WINDOW;
	return cl->role == ROLE_ATTACH && cl->stdin && s->main_inflight >= STDIN_WINDOW;
}

static bool any_client_behind(struct sup *s)
{
	for (size_t i = 0; i < MAX_CLIENTS; i++)
		if (s->clients[i] && s->clients[i]->out.len > CLIENT_OUT_HIGH)
			return true;
	return false;
}

static void loop(struct sup *s)
{
	while (!s->vm_gone) {
		struct pollfd p[4 + MAX_CLIENTS];
		size_t map[MAX_CLIENTS];
		int n = 0, i_ctl = -1, i_pid = -1, i_lis = -1, i_sig, timeout = -1;
		uint64_t now = now_ns(), dl = 0;

		if (!s->hello)
			dl = s->boot_deadline;
		if (s->deadline && (!dl || s->deadline < dl))
			dl = s->deadline;
		if (dl) {
			if (now >= dl) {
				if (!s->hello && now >= s->boot_deadline) {
					vm_kill(&s->vm);
					s->boot_timed_out = true;
					s->vm_gone = true;
					break;
				}
				if (s->main_done) {
					vm_kill(&s->vm); /* did not power off in time, or --rm */
					s->deadline = 0;
				} else {
					stop_step(s);
				}
				continue;
			}
			timeout = (int)((dl - now) / 1000000ULL) + 1;
		}

		i_sig = n;
		p[n++] = (struct pollfd){ .fd = s->sigfd, .events = POLLIN };
		if (s->vm.ctl_fd >= 0) {
			i_ctl = n;
			p[n++] = (struct pollfd){
				.fd = s->vm.ctl_fd,
				.events = (any_client_behind(s) ? 0 : POLLIN) |
					  (s->out.len ? POLLOUT : 0),
			};
		}
		if (s->vm.pidfd >= 0) {
			i_pid = n;
			p[n++] = (struct pollfd){ .fd = s->vm.pidfd, .events = POLLIN };
		}
		if (s->listen_fd >= 0) {
			i_lis = n;
			p[n++] = (struct pollfd){ .fd = s->listen_fd, .events = POLLIN };
		}
		size_t first_client = (size_t)n;
		for (size_t i = 0; i < MAX_CLIENTS; i++) {
			struct client *cl = s->clients[i];
			if (!cl)
				continue;
			map[(size_t)n - first_client] = i;
			p[n++] = (struct pollfd){
				.fd = cl->fd,
				.events = (short)((s->out.len < GUEST_OUT_MAX / 2 &&
						   !stdin_window_full(s, cl)
							   ? POLLIN
							   : 0) |
						  (cl->out.len ? POLLOUT : 0)),
			};
		}
		if (poll(p, (nfds_t)n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[i_sig].revents) {
			struct signalfd_siginfo si;
			while (read(s->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				stop_begin(s, (uint32_t)s->spec->stop_signal ?: SIGTERM,
					   (uint32_t)s->spec->stop_timeout);
		}
		if (i_ctl >= 0 && (p[i_ctl].revents & (POLLIN | POLLHUP | POLLERR)))
			(void)guest_read(s);
		if (i_lis >= 0 && (p[i_lis].revents & POLLIN)) {
			int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0 && (!peer_allowed(fd) || !client_new(s, fd)))
				close(fd);
		}
		for (int k = (int)first_client; k < n; k++) {
			size_t i = map[(size_t)k - first_client];
			struct client *cl = s->clients[i];
			bool alive = true;

			if (!cl)
				continue;
			if (p[k].revents & POLLIN)
				alive = client_read(s, cl);
			else if (p[k].revents & (POLLHUP | POLLERR))
				alive = false;
			if (alive && cl->out.len)
				alive = client_flush(cl);
			if (!alive || cl->role == ROLE_DONE || (cl->finished && !cl->out.len))
				client_drop(s, i);
		}
		/* frames produced by this round */
		for (size_t i = 0; i < MAX_CLIENTS; i++)
			if (s->clients[i] && s->clients[i]->out.len && !client_flush(s->clients[i]))
				client_drop(s, i);
		if (s->out.len && s->vm.ctl_fd >= 0)
			guest_flush(s);
		if (i_pid >= 0 && p[i_pid].revents) {
			/* QEMU exited: take what the guest managed to send first */
			while (s->vm.ctl_fd >= 0 && guest_read(s))
				;
			vm_wait(&s->vm, 1000, NULL);
			s->vm_gone = true;
		}
	}
}

/* Send what is queued to each client, for up to a second, then close them all. */
static void farewell(struct sup *s)
{
	uint64_t end = now_ns() + 1000000000ULL;

	for (size_t i = 0; i < MAX_CLIENTS; i++) {
		struct client *cl = s->clients[i];
		if (!cl)
			continue;
		fd_set_nonblock(cl->fd, false);
		while (cl->out.len && now_ns() < end) {
			struct pollfd p = { .fd = cl->fd, .events = POLLOUT };
			if (poll(&p, 1, 100) > 0 && !client_flush(cl))
				break;
		}
		client_drop(s, i);
	}
}

static int boot_timeout_ms(bool kvm)
{
	const char *e = getenv("COVE_BOOT_TIMEOUT");
	uint64_t v;

	if (e && parse_u64(e, 3600, &v) == 0 && v > 0)
		return (int)v * 1000;
	return kvm ? 10000 : 30000;
}

static void use_tcg(struct sup *s)
{
	char cache[4096 + 16];

	s->vc.kvm = false;
	s->vc.cpu = NULL;
	(void)mkdir(s->paths->cache, 0755);
	str_printf(cache, sizeof(cache), "%s/tsc_khz", s->paths->cache);
	if (vm_tsc_khz(cache, &s->vc.tsc_khz) < 0)
		s->vc.tsc_khz = 0;
	s->boot_timeout_ms = boot_timeout_ms(false);
	str_copy(s->st.accel, sizeof(s->st.accel), "tcg");
}

/* KVM or TCG: what the container (or start --accel) asked for, COVE_ACCEL, else auto. */
static int choose_accel(struct sup *s, struct cove_error *err)
{
	char msg[1024];

	if (vm_accel_wanted(s->spec->accel, &s->want, err) < 0)
		return -EINVAL;
	s->ax = (struct vm_accel_ctx){ .qemu = s->qemu, .kernel = s->paths->kernel,
				       .initrd = s->paths->initrd, .cache_dir = s->paths->cache,
				       .confine_dir = s->paths->run };
	if (vm_accel_choose(&s->ax, s->want, &s->verdict, err) < 0)
		return -EIO;
	if (!s->verdict.kvm) {
		use_tcg(s);
		if (s->verdict.fresh && !s->verdict.inconclusive) {
			str_printf(msg, sizeof(msg),
				   "KVM does not work on this host (%s): using TCG, slower; see "
				   "'cove system info'",
				   s->verdict.reason);
			notice(s, msg);
		}
		return 0;
	}
	s->vc.kvm = true;
	s->vc.cpu = s->verdict.cpu;
	s->boot_timeout_ms = boot_timeout_ms(true);
	str_copy(s->st.accel, sizeof(s->st.accel), "kvm");
	return 0;
}

/*
 * Start from this shape's template when there is one: QEMU loads it, and RESUME (which makes
 * the guest itself: its clock, entropy, MACs) goes before START. False for a cold boot, with
 * st.boot saying why when a template was there but could not serve.
 */
static bool restore(struct sup *s)
{
	struct template t;
	struct vm_config c = s->vc;
	struct cove_error err = { 0 };
	struct proto_resume m = { 0 };
	struct buf f = BUF_INIT(256);
	struct timespec now;
	char why[512];
	int r;

	str_copy(s->st.boot, sizeof(s->st.boot), "cold");
	if (s->no_restore || !template_enabled() || !template_fits(&s->vc))
		return false;
	r = template_open(s->paths, &s->vc, &t, why, sizeof(why));
	if (r == -ENOENT || r == -EBADMSG) /* none, or a damaged one, now gone */
		s->make_template = true;
	if (r < 0) {
		if (r != -ENOENT)
			str_printf(s->st.boot, sizeof(s->st.boot), "cold: %s", why);
		return false;
	}
	c.mem_fd = t.mem_fd;
	c.incoming_fd = t.state_fd;
	c.qmp = true;
	if (vm_start(&c, &s->vm, &err) < 0) {
		template_close(&t);
		return false; /* the same fails cold, and says so */
	}
	trace("qemu started");
	/* the RAM file, when no running QEMU had it, is read while QEMU starts */
	r = template_load(&t, why, sizeof(why));
	if (r < 0) {
		vm_done(&s->vm);
		s->vm = VM_INIT;
		if (r == -EBADMSG) /* a damaged one, now gone */
			s->make_template = true;
		str_printf(s->st.boot, sizeof(s->st.boot), "cold: %s", why);
		return false;
	}
	if (vm_restore(&s->vm, &c, RESTORE_TIMEOUT_MS, &err) < 0) {
		vm_done(&s->vm);
		s->vm = VM_INIT;
		template_failed(&t); /* QEMU will not take it: made again after this boot */
		s->make_template = true;
		str_printf(s->st.boot, sizeof(s->st.boot), "cold: %s", err.msg);
		return false;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	m.realtime_ns = (uint64_t)now.tv_sec * 1000000000ULL + (uint64_t)now.tv_nsec;
	if (getrandom(m.entropy, sizeof(m.entropy), 0) != (ssize_t)sizeof(m.entropy))
		r = -EIO;
	m.nmacs = (uint8_t)s->vc.nics;
	for (size_t i = 0; i < s->vc.nics; i++)
		memcpy(m.macs[i], s->vc.macs[i], 6);
	if (r == 0)
		r = proto_put_resume(&f, &m);
	if (r == 0)
		r = write_full(s->vm.ctl_fd, f.data, f.len);
	explicit_bzero(&m, sizeof(m));
	explicit_bzero(f.data, f.len);
	buf_done(&f);
	template_close(&t); /* QEMU has its own */
	if (r < 0) {
		vm_done(&s->vm);
		s->vm = VM_INIT;
		str_copy(s->st.boot, sizeof(s->st.boot), "cold: cannot send the restored VM its RESUME");
		return false;
	}
	trace("restored");
	s->tpl = t;
	s->restored = true;
	s->holder = s->vm.pid;
	template_hold(&s->tpl, s->holder);
	str_copy(s->st.boot, sizeof(s->st.boot), "restored");
	return true;
}

static void unhold(struct sup *s)
{
	if (s->holder)
		template_unhold(&s->tpl, s->holder);
	s->holder = 0;
}

/* Start QEMU; START (queued before) and whatever followed go to the guest at once: QEMU holds
 * them until cove-init opens its port. */
static int boot(struct sup *s, struct cove_error *err)
{
	bool restored = restore(s);

	if (!restored && vm_start(&s->vc, &s->vm, err) < 0)
		return -EIO;
	if (!restored)
		trace("qemu started");
	fd_set_nonblock(s->vm.ctl_fd, true);
	s->boot_deadline = now_ns() + (uint64_t)(restored ? RESTORE_TIMEOUT_MS : s->boot_timeout_ms) *
					      1000000ULL;
	guest_flush(s);
	save_state(s); /* how it booted */
	return 0;
}

/* Why the guest never said HELLO, in one line. */
static void boot_failure(struct sup *s, char *buf, size_t size)
{
	char why[512];

	vm_explain(&s->vc, &s->vm, why, sizeof(why));
	if (s->boot_timed_out)
		str_printf(buf, size, "the VM did not answer within %d s: %s",
			   s->boot_timeout_ms / 1000, why);
	else
		str_copy(buf, size, why);
}

/*
 * The guest never said HELLO (QEMU aborted, a KVM internal error, a timeout). Restored from a
 * template: boot it cold, the template removed (it is made again), st.boot saying why. Under
 * KVM although the verdict was KVM: say so once and boot again under TCG; once that guest says
 * HELLO, TCG becomes this host's verdict. Either way the new guest gets everything the first
 * was sent. Returns true when the re-boot could not start (err says why), false when it ran or
 * was not for this case.
 */
static bool fall_back(struct sup *s, struct cove_error *err)
{
	char why[512], msg[1024];
	struct buf out = BUF_INIT(GUEST_OUT_MAX);
	bool restored = s->restored;

	if (s->hello || s->main_done || s->stop_phase || !can_fall_back(s))
		return false;
	boot_failure(s, why, sizeof(why));
	if (restored) {
		str_printf(s->st.boot, sizeof(s->st.boot), "cold: the restored VM failed: %s", why);
		unhold(s);
		template_failed(&s->tpl);
		s->make_template = true;
		s->restored = false;
		s->no_restore = true;
	} else {
		str_copy(s->kvm_failure, sizeof(s->kvm_failure), why); /* recorded once TCG boots */
		str_printf(msg, sizeof(msg),
			   "KVM failed before the guest booted (%s): booting again under TCG, as "
			   "later containers will; see 'cove system info'",
			   why);
		notice(s, msg);
	}
	vm_done(&s->vm);
	s->vm = VM_INIT;
	s->vm_gone = s->boot_timed_out = false;
	proto_reader_done(&s->reader);
	proto_reader_init(&s->reader);
	/* the new guest gets what the first one was sent, then what was still queued */
	if (buf_append(&out, s->replay.data, s->replay.len) < 0 ||
	    buf_append(&out, s->out.data, s->out.len) < 0) {
		buf_done(&out);
		cove_error_set(err, E2BIG, "too much input to send again to the guest");
		return true;
	}
	buf_done(&s->out);
	s->out = out;
	buf_done(&s->replay);
	if (!restored)
		use_tcg(s);
	save_state(s);
	if (boot(s, err) < 0)
		return true;
	loop(s);
	return fall_back(s, err); /* a cold boot under KVM may fail too */
}

/*
 * Its NICs and published ports, before START, which carries them. Where the default network
 * cannot be made (no /dev/net/tun, no bridge support), a container that asked for no network
 * runs with loopback only and notice says so, rather than no container running as root at all.
 * Fails with why.
 */
static int network_up(struct sup *s, char *why, size_t size, char *notice, size_t nsize)
{
	const struct net_attachment *first = &s->net[0];
	struct cove_error err = { 0 };

	str_copy(s->user_net, sizeof(s->user_net), "user,id=n0");
	if (net_attach(s->paths, s->spec, s->net, &s->nnets, &err) < 0) {
		if (s->spec->network || s->spec->nports) {
			str_copy(why, size, err.msg);
			return -EIO;
		}
		str_printf(notice, nsize,
			   "no network for this container (%s): it has only loopback; --network "
			   "none says so",
			   err.msg);
		err = (struct cove_error){ 0 };
	}
	if (!s->spec->nports)
		return 0;
	if (!first->attached) {
		str_copy(why, size, "publishing a port needs a network: drop --network none");
		return -EINVAL;
	}
	if (ports_open(s->spec->ports, s->spec->nports, &s->ports, &err) < 0 ||
	    (first->user_mode &&
	     ports_user_forwards(s->ports, s->user_net, sizeof(s->user_net), &err) < 0) ||
	    ports_start(s->ports, first->user_mode ? INADDR_LOOPBACK : first->net.addr, &err) < 0) {
		str_copy(why, size, err.msg);
		return -EIO;
	}
	return 0;
}

static _noreturn_ void supervise(struct sup *s, int client_fd)
{
	struct cove_error err = { 0 };
	struct proto_start m = { 0 };
	sigset_t mask;
	char why[512], net_notice[700] = "";
	int taps[PROTO_MAX_NICS], r;
	size_t ntaps = 0;

	prctl(PR_SET_NAME, "cove-supervisor");
	trace("supervisor");
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_SETMASK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	s->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	s->out = BUF_INIT(GUEST_OUT_MAX);
	s->replay = BUF_INIT(GUEST_OUT_MAX);
	s->last = BUF_INIT(2 * (PROTO_HDR_SIZE + PROTO_MAX_PAYLOAD));
	s->next_stream = 2;
	s->exit_code = EXIT_COVE;
	proto_reader_init(&s->reader);
	if (!s->spec->maintenance)
		(void)log_open(&s->log, s->c->log, s->spec->log_max_size, s->spec->log_max_files);
	if (paths_prepare_run(s->paths, &err) < 0) {
		str_copy(why, sizeof(why), err.msg);
		err = (struct cove_error){ 0 };
	} else if ((s->listen_fd = listen_on(s->c->sock)) < 0) {
		str_printf(why, sizeof(why), "cannot listen on '%s': %s", s->c->sock,
			   strerror(-s->listen_fd));
	}

	s->vc.qemu = s->qemu;
	s->vc.kernel = s->paths->kernel;
	s->vc.initrd = s->paths->initrd;
	s->vc.disk = s->c->disk;
	s->vc.disk_format = s->c->disk_format;
	s->vc.boot_log = s->c->boot_log;
	s->vc.qemu_log = s->c->qemu_log;
	s->vc.cpus = s->spec->cpus ?: 1;
	s->vc.memory = s->spec->memory;
	s->vc.keep_logs = !s->c->rm;
	s->vc.disk_scratch = s->c->rm;
	s->vc.confine_dir = s->paths->run;

	if (s->listen_fd >= 0 && !s->spec->maintenance &&
	    network_up(s, why, sizeof(why), net_notice, sizeof(net_notice)) < 0) {
		closep(&s->listen_fd);
		unlink(s->c->sock);
	}
	/* a boot for cp too: what it copies to or from a volume's path is the volume's */
	if (s->listen_fd >= 0 &&
	    volumes_attach(s->paths, s->spec, s->c->id, s->c->name, &s->vols, &err) < 0) {
		str_copy(why, sizeof(why), err.msg);
		err = (struct cove_error){ 0 };
		closep(&s->listen_fd);
		unlink(s->c->sock);
	}
	s->vc.shares = s->vols.shares;
	s->vc.nshares = s->vols.nshares;
	s->vc.disks = s->vols.disks;
	s->vc.ndisks = s->vols.ndisks;
	for (size_t i = 0; i < ports_count(s->ports); i++) {
		size_t len = strlen(s->st.ports);
		char one[64];

		port_describe(ports_map(s->ports, i), one, sizeof(one));
		str_printf(s->st.ports + len, sizeof(s->st.ports) - len, "%s%s", len ? ", " : "", one);
	}
	if (s->net[0].attached) {
		str_copy(s->st.network, sizeof(s->st.network), s->net[0].def.name);
		net_addr_text(&s->net[0], s->st.ip, s->st.gateway, s->st.mac);
		s->st.prefix = (int)s->net[0].def.prefix;
		s->vc.user_net = s->net[0].user_mode ? s->user_net : NULL;
	}
	s->vc.nics = s->nnets;
	s->st.nmore = 0;
	for (size_t i = 0; i < s->nnets; i++) {
		s->vc.tap_fds[i] = s->net[i].tap_fd;
		s->vc.macs[i] = s->net[i].net.mac;
		if (i > 0 && s->st.nmore < ARRAY_SIZE(s->st.more)) {
			struct container_nic *o = &s->st.more[s->st.nmore++];
			char gw[16];

			str_copy(o->network, sizeof(o->network), s->net[i].def.name);
			net_addr_text(&s->net[i], o->ip, gw, o->mac);
			o->prefix = (int)s->net[i].def.prefix;
		}
	}
	/* START is the guest's first frame, before anything a client sends */
	r = s->listen_fd < 0 ? -1 : spec_start(s->spec, &m, &err);
	if (r == 0 && s->nnets) {
		m.nnets = (uint8_t)s->nnets;
		for (size_t i = 0; i < s->nnets; i++)
			m.nets[i] = s->net[i].net;
		m.hosts = s->net[0].hosts;
		m.resolv = s->net[0].resolv;
	}
	if (r == 0) {
		m.mounts = s->vols.mounts;
		m.nmounts = (uint32_t)s->vols.nmounts;
	}
	if (r == 0)
		r = proto_put_start(&s->out, 1, &m);
	if (s->listen_fd >= 0 && r < 0 && !err.msg[0])
		str_copy(err.msg, sizeof(err.msg), "cannot encode the container's process");
	if (client_fd >= 0) {
		struct client *cl = client_new(s, client_fd);
		/* its ATTACH was written before the fork: take it now, so that even an error
		 * before the loop (QEMU cannot start) reaches it */
		if (!cl)
			close(client_fd);
		else if (!client_read(s, cl))
			client_drop(s, 0);
	}
	if (net_notice[0])
		notice(s, net_notice);
	trace("network and volumes");
	/* running from here, on the accelerator chosen (a probe boot, once per host, comes first) */
	if (s->listen_fd >= 0 && r == 0)
		r = choose_accel(s, &err);
	container_timestamp(s->st.started_at, sizeof(s->st.started_at));
	s->st.status = CONTAINER_RUNNING;
	s->st.pid = getpid();
	save_state(s);
	if (s->listen_fd < 0) {
		main_finished(s, EXIT_COVE, why, PROTO_ERR_INTERNAL);
	} else if (r < 0 || boot(s, &err) < 0) {
		main_finished(s, EXIT_COVE, err.msg, PROTO_ERR_INTERNAL);
	} else {
		loop(s);
		if (fall_back(s, &err))
			main_finished(s, EXIT_COVE, err.msg, PROTO_ERR_INTERNAL);
		if (!s->main_done) {
			if (s->hello)
				vm_explain(&s->vc, &s->vm, why, sizeof(why));
			else
				boot_failure(s, why, sizeof(why));
			main_finished(s, s->stop_phase >= 2 ? 128 + SIGKILL : EXIT_COVE,
				      s->error[0] ? s->error : why, PROTO_ERR_INTERNAL);
			if (s->stop_phase >= 2)
				s->error[0] = '\0'; /* stopped by request: not an error */
		}
	}
	spec_start_done(&m);
	trace("vm gone");
	vm_kill(&s->vm);
	vm_done(&s->vm);
	unhold(s);

	ports_close(s->ports);
	s->ports = NULL;
	volumes_detach(&s->vols); /* the VM is gone: its volumes are free */
	while (s->nnets) {
		struct net_attachment *a = &s->net[--s->nnets];

		/* a --rm container's id is never used again: its taps (closing one deletes it,
		 * which waits for the kernel's RCU grace periods, ~20 ms) go after its client
		 * has let go. Its lease is free before. */
		if (s->c->rm && a->tap_fd >= 0)
			taps[ntaps++] = TAKE_FD(a->tap_fd);
		net_detach(s->paths, s->c->id, a);
	}
	s->st.nmore = 0;
	s->st.network[0] = s->st.ip[0] = s->st.gateway[0] = s->st.mac[0] = s->st.ports[0] = '\0';
	s->st.prefix = 0;
	s->st.status = CONTAINER_EXITED;
	s->st.exit_code = s->exit_code;
	s->st.pid = 0;
	container_timestamp(s->st.finished_at, sizeof(s->st.finished_at));
	str_copy(s->st.error, sizeof(s->st.error), s->error);
	closep(&s->listen_fd);
	unlink(s->c->sock);
	if (s->c->rm) {
		container_remove(s->c);
		volumes_release(s->paths, s->spec); /* --rm: its anonymous volumes too */
	} else
		save_state(s);
	farewell(s);
	while (ntaps)
		close(taps[--ntaps]);
	_exit(s->exit_code & 0xff);
}

int supervisor_spawn(const struct cove_paths *paths, struct container *c,
		     const struct container_spec *spec,
		     uint32_t attach_flags, int *ret_fd, pid_t *ret_pid, struct cove_error *err)
{
	struct sup s = { .paths = paths, .c = c, .spec = spec, .listen_fd = -1, .sigfd = -1,
			 .log = { .fd = -1 }, .vm = VM_INIT };
	struct buf hello = BUF_INIT(64);
	int sp[2];
	pid_t pid;

	if (vm_find_qemu(s.qemu, sizeof(s.qemu), err) < 0)
		return -ENOENT;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		return cove_error_set(err, errno, "socketpair failed: %s", strerror(errno));
	/* the first client's ATTACH is waiting before the supervisor even runs */
	if (ret_fd && (proto_put_attach(&hello, attach_flags) < 0 ||
		       write_full(sp[0], hello.data, hello.len) < 0)) {
		buf_done(&hello);
		close(sp[0]);
		close(sp[1]);
		return cove_error_set(err, EIO, "cannot talk to the supervisor");
	}
	buf_done(&hello);
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(sp[0]);
		close(sp[1]);
		return cove_error_set(err, errno, "fork failed: %s", strerror(errno));
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);

		close(sp[0]);
		setsid();
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
			if (null > 2)
				close(null);
		}
		supervise(&s, ret_fd ? sp[1] : (close(sp[1]), -1));
	}
	close(sp[1]);
	if (ret_fd)
		*ret_fd = sp[0];
	else
		close(sp[0]);
	if (ret_pid)
		*ret_pid = pid;
	return 0;
}

int supervisor_connect(const struct container *c, struct cove_error *err)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd;

	str_copy(a.sun_path, sizeof(a.sun_path), c->sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return cove_error_set(err, errno, "socket failed: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int e = errno;
		close(fd);
		if (e == ENOENT || e == ECONNREFUSED)
			return cove_error_set(err, ENOTCONN, "container %s is not running",
					      c->name[0] ? c->name : c->short_id);
		return cove_error_set(err, e, "cannot reach the supervisor of %s: %s", c->short_id,
				      strerror(e));
	}
	return fd;
}
