/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Starting processes in the container: the root filesystem, the main process's namespaces,
 * /proc, /dev, tmpfs mounts and pivot_root; exec sessions joining those namespaces; and the
 * cove-init side of each start (stdio, the error pipe). What the child does once inside the
 * namespaces is process.c, the same for both.
 */
#define _GNU_SOURCE
#include "process.h"
#include "security.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>

/* How long the child may take from fork to execve() before cove-init gives up on it. */
#define START_TIMEOUT_MS 30000
#define TMPFS_DATA_MAX	 4096 /* the kernel takes one page of mount options */

static bool rootfs_mounted;
static int own_pidns = -1;

int container_init(void)
{
	own_pidns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
	return own_pidns < 0 ? -errno : 0;
}

/* ---- the main process: namespaces and mounts ---- */

static void mount_or_fail(int efd, const char *src, const char *dst, const char *type,
			  unsigned long flags, const char *data)
{
	if (mkdir_p(dst, 0755) < 0)
		child_fail(efd, PROTO_ERR_INTERNAL, errno, "cannot create mount point '%s': %s",
			   dst, strerror(errno));
	if (mount(src, dst, type, flags, data) < 0)
		child_fail(efd, PROTO_ERR_INTERNAL, errno, "cannot mount %s on '%s': %s",
			   type ? type : src, dst, strerror(errno));
}

static void setup_dev(int efd, const char *root)
{
	static const struct {
		const char *name;
		unsigned maj, min;
	} nodes[] = {
		{ "null", 1, 3 },   { "zero", 1, 5 },	 { "full", 1, 7 },
		{ "random", 1, 8 }, { "urandom", 1, 9 }, { "tty", 5, 0 },
	};
	static const struct {
		const char *name, *target;
	} links[] = {
		{ "fd", "/proc/self/fd" },	 { "stdin", "/proc/self/fd/0" },
		{ "stdout", "/proc/self/fd/1" }, { "stderr", "/proc/self/fd/2" },
		{ "ptmx", "pts/ptmx" },
	};
	char path[4096];

	/*
	 * The devices a container may open are docker's default list, and only those: its /dev is
	 * nodev (as is every other filesystem it can write), and each allowed node is the VM's own,
	 * bound in. A node the container makes with mknod (its root disk, the console) cannot be
	 * opened anywhere; the bound ones can.
	 */
	str_printf(path, sizeof(path), "%s/dev", root);
	mount_or_fail(efd, "tmpfs", path, "tmpfs", MS_NOSUID | MS_NOEXEC | MS_NODEV,
		      "mode=755,size=65536k");
	for (size_t i = 0; i < ARRAY_SIZE(nodes); i++) {
		char vm_node[64];
		int fd;

		str_printf(vm_node, sizeof(vm_node), "/dev/%s", nodes[i].name);
		str_printf(path, sizeof(path), "%s/dev/%s", root, nodes[i].name);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		if (fd < 0)
			child_fail(efd, PROTO_ERR_INTERNAL, errno, "cannot create '/dev/%s': %s",
				   nodes[i].name, strerror(errno));
		close(fd);
		if (access(vm_node, F_OK) < 0 &&
		    mknod(vm_node, S_IFCHR | 0666, makedev(nodes[i].maj, nodes[i].min)) < 0)
			child_fail(efd, PROTO_ERR_INTERNAL, errno, "cannot create '%s': %s", vm_node,
				   strerror(errno));
		if (mount(vm_node, path, NULL, MS_BIND, NULL) < 0)
			child_fail(efd, PROTO_ERR_INTERNAL, errno, "cannot bind '/dev/%s': %s",
				   nodes[i].name, strerror(errno));
	}
	for (size_t i = 0; i < ARRAY_SIZE(links); i++) {
		str_printf(path, sizeof(path), "%s/dev/%s", root, links[i].name);
		if (symlink(links[i].target, path) < 0)
			child_fail(efd, PROTO_ERR_INTERNAL, errno, "cannot create '/dev/%s': %s",
				   links[i].name, strerror(errno));
	}
	/* The VM is this container's alone, so its devpts instance is the container's: exec
	 * sessions get their terminals from cove-init's /dev/ptmx and see them here. */
	str_printf(path, sizeof(path), "%s/dev/pts", root);
	mount_or_fail(efd, "/dev/pts", path, NULL, MS_BIND, NULL);
	str_printf(path, sizeof(path), "%s/dev/shm", root);
	mount_or_fail(efd, "shm", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		      "mode=1777,size=65536k");
	str_printf(path, sizeof(path), "%s/dev/mqueue", root);
	mount_or_fail(efd, "mqueue", path, "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
}

/*
 * One START tmpfs entry, "PATH" or "PATH:OPTIONS", as docker's --tmpfs: OPTIONS is a comma
 * list where ro, rw, nosuid, suid, nodev, dev, noexec and exec are mount flags (nosuid, nodev
 * and noexec by default) and anything else (size=, mode=, uid=, gid=, nr_inodes=) goes to
 * tmpfs, which rejects what it does not know. Runs after pivot_root, so that PATH and any
 * symlink on the way resolve inside the container's root.
 */
static void mount_tmpfs(int efd, const char *spec)
{
	static const struct {
		const char *name;
		unsigned long flag;
		bool set;
	} flags_list[] = {
		{ "ro", MS_RDONLY, true },     { "rw", MS_RDONLY, false },
		{ "nosuid", MS_NOSUID, true }, { "suid", MS_NOSUID, false },
		{ "nodev", MS_NODEV, true },   { "dev", MS_NODEV, false },
		{ "noexec", MS_NOEXEC, true }, { "exec", MS_NOEXEC, false },
	};
	unsigned long flags = MS_NOSUID | MS_NODEV | MS_NOEXEC;
	const char *colon = strchr(spec, ':'), *opt;
	char path[4096], data[TMPFS_DATA_MAX], shown[STR_SHOWN_MAX];
	size_t plen = colon ? (size_t)(colon - spec) : strlen(spec), dlen = 0;

	if (plen >= sizeof(path))
		child_fail(efd, PROTO_ERR_INTERNAL, ENAMETOOLONG, "tmpfs path '%s' is too long",
			   str_shown(spec, shown));
	memcpy(path, spec, plen);
	path[plen] = '\0';
	if (path[strspn(path, "/")] == '\0')
		child_fail(efd, PROTO_ERR_INTERNAL, EINVAL,
			   "a tmpfs cannot be mounted on the container's root directory");
	data[0] = '\0';
	for (opt = colon ? colon + 1 : NULL; opt && *opt;) {
		const char *comma = strchr(opt, ',');
		size_t len = comma ? (size_t)(comma - opt) : strlen(opt);
		bool known = false;

		for (size_t i = 0; i < ARRAY_SIZE(flags_list); i++) {
			if (strlen(flags_list[i].name) != len ||
			    strncmp(opt, flags_list[i].name, len) != 0)
				continue;
			if (flags_list[i].set)
				flags |= flags_list[i].flag;
			else
				flags &= ~flags_list[i].flag;
			known = true;
		}
		if (!known && len > 0) {
			if (dlen + (dlen > 0) + len >= sizeof(data))
				child_fail(efd, PROTO_ERR_INTERNAL, E2BIG,
					   "tmpfs options for '%s' are too long",
					   str_shown(path, shown));
			if (dlen > 0)
				data[dlen++] = ',';
			memcpy(data + dlen, opt, len);
			dlen += len;
			data[dlen] = '\0';
		}
		opt = comma ? comma + 1 : NULL;
	}
	if (mkdir_p(path, 0755) < 0)
		child_fail(efd, PROTO_ERR_INTERNAL, errno,
			   "cannot create tmpfs mount point '%s': %s", str_shown(path, shown),
			   strerror(errno));
	if (mount("tmpfs", path, "tmpfs", flags, dlen ? data : NULL) < 0) {
		char shown_data[STR_SHOWN_MAX];

		child_fail(efd, PROTO_ERR_INTERNAL, errno, "cannot mount a tmpfs on '%s' (%s): %s",
			   str_shown(path, shown), str_shown(data, shown_data), strerror(errno));
	}
}

/* /etc/hosts, /etc/hostname and /etc/resolv.conf as the host made them (net.c wrote them under
 * /run/cove), bound over the image's as docker does; a file the image lacks is made, unless
 * the root is read-only. */
static void bind_etc(int efd, bool readonly)
{
	static const char *const files[] = { "hosts", "hostname", "resolv.conf" };

	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		char src[64], dst[128];
		struct stat st;

		str_printf(src, sizeof(src), "/run/cove/%s", files[i]);
		str_printf(dst, sizeof(dst), GUEST_ROOTFS "/etc/%s", files[i]);
		if (stat(src, &st) < 0)
			continue;
		/* a link or anything else the image put there is replaced by a file */
		if (lstat(dst, &st) < 0 || !S_ISREG(st.st_mode)) {
			int fd;

			if (readonly)
				continue;
			(void)mkdir_p(GUEST_ROOTFS "/etc", 0755);
			(void)unlink(dst);
			fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
			if (fd < 0)
				continue;
			close(fd);
		}
		mount_or_fail(efd, src, dst, NULL, MS_BIND, NULL);
	}
}

/* The cloned child: PID 1 of the container's new PID namespace, in its own mount namespace. */
static int main_child(void *arg)
{
	struct child_ctx *c = arg;
	const struct proto_start *m = c->m;
	int efd = c->err_fd;
	char msg[400], shown[STR_SHOWN_MAX];
	int r, vol_fds[PROTO_MAX_MOUNTS];

	child_reset_signals();
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		child_fail(efd, PROTO_ERR_INTERNAL, errno, "cannot make mounts private: %s",
			   strerror(errno));
	/* pivot_root needs the new root to be a mount point of its own; nodev: no device node on
	 * the container's disk opens (see setup_dev) */
	if (mount(GUEST_ROOTFS, GUEST_ROOTFS, NULL, MS_BIND | MS_REC, NULL) < 0 ||
	    mount(NULL, GUEST_ROOTFS, NULL, MS_REMOUNT | MS_BIND | MS_NODEV | MS_NOATIME, NULL) < 0)
		child_fail(efd, PROTO_ERR_INTERNAL, errno, "cannot bind the root filesystem: %s",
			   strerror(errno));
	mount_or_fail(efd, "proc", GUEST_ROOTFS "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		      NULL);
	mount_or_fail(efd, "sysfs", GUEST_ROOTFS "/sys", "sysfs",
		      MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, NULL);
	mount_or_fail(efd, "cgroup2", GUEST_ROOTFS "/sys/fs/cgroup", "cgroup2",
		      MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	setup_dev(efd, GUEST_ROOTFS);
	bind_etc(efd, m->readonly);
	volumes_open(efd, m, vol_fds);
	if (mkdir_p(GUEST_ROOTFS "/tmp", 01777) < 0)
		child_fail(efd, PROTO_ERR_INTERNAL, errno, "cannot create /tmp: %s",
			   strerror(errno));

	if (chdir(GUEST_ROOTFS) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 ||
	    umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
		child_fail(efd, PROTO_ERR_INTERNAL, errno,
			   "cannot switch to the root filesystem: %s", strerror(errno));

	if (m->hostname[0] && sethostname(m->hostname, strlen(m->hostname)) < 0)
		child_fail(efd, PROTO_ERR_INTERNAL, errno, "cannot set hostname '%s': %s",
			   str_shown(m->hostname, shown), strerror(errno));
	for (uint32_t i = 0; i < m->ntmpfs; i++)
		mount_tmpfs(efd, m->tmpfs[i]);
	volumes_mount(efd, m, vol_fds);
	/* docker creates a missing working directory, owned by root */
	if (mkdir_p(m->cwd, 0755) < 0)
		child_fail(efd, PROTO_ERR_INTERNAL, errno,
			   "cannot create working directory '%s': %s", str_shown(m->cwd, shown),
			   strerror(errno));
	/* Read-only: the whole ext4 (its superblock, for every mount of it and every later exec
	 * session), once the mount points and the working directory exist. */
	if (m->readonly && mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOATIME, NULL) < 0)
		child_fail(efd, PROTO_ERR_INTERNAL, errno,
			   "cannot make the root filesystem read-only: %s", strerror(errno));

	msg[0] = '\0';
	r = security_mask_paths(msg, sizeof(msg));
	if (r < 0)
		child_fail(efd, PROTO_ERR_INTERNAL, -r, "%s",
			   msg[0] ? msg : "cannot mask /proc and /sys paths");
	if (m->tool == PROTO_TOOL_PAUSE)
		process_tool(c);
	process_exec(c, m->init);
}

/*
 * Bigger reads: executables and libraries come off the disk in a few large requests instead
 * of many small ones, which matters most under TCG where each request is slow.
 */
static void tune_block_device(const char *dev)
{
	const char *name = strrchr(dev, '/');
	char path[256];
	int fd;

	if (!name ||
	    str_printf(path, sizeof(path), "/sys/block/%s/queue/read_ahead_kb", name + 1) < 0)
		return;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	(void)write_full(fd, "2048", 4);
	close(fd);
}

/* Mounted read-write even for a read-only container, whose child remounts it read-only once
 * it has created the mount points; read-only at once only when the disk itself is. */
static int mount_rootfs(const char *dev, bool readonly, char *msg, size_t msg_size)
{
	char shown[STR_SHOWN_MAX];
	int r;

	if (rootfs_mounted)
		return 0;
	if (mkdir_p(GUEST_ROOTFS, 0755) < 0) {
		r = -errno;
		str_printf(msg, msg_size, "cannot create '%s': %s", GUEST_ROOTFS, strerror(-r));
		return r;
	}
	tune_block_device(dev);
	r = mount(dev, GUEST_ROOTFS, "ext4", MS_NOATIME, NULL);
	if (r < 0 && readonly && (errno == EROFS || errno == EACCES))
		r = mount(dev, GUEST_ROOTFS, "ext4", MS_NOATIME | MS_RDONLY, NULL);
	if (r < 0) {
		r = -errno;
		str_printf(msg, msg_size, "cannot mount the root filesystem '%s' (ext4): %s",
			   str_shown(dev, shown), strerror(-r));
		return r;
	}
	rootfs_mounted = true;
	return 0;
}

/* ---- cove-init's side of a start: stdio and the error pipe ---- */

struct stdio_set {
	int child_in, child_out, child_err, pty_slave; /* handed to the child */
	int in, out, err;			       /* kept by cove-init */
	bool terminal;
};

static void stdio_close_child(struct stdio_set *io)
{
	closep(&io->child_in);
	closep(&io->child_out);
	closep(&io->child_err);
	closep(&io->pty_slave);
}

static void stdio_close(struct stdio_set *io)
{
	stdio_close_child(io);
	if (io->in != io->out)
		closep(&io->in);
	io->in = -1;
	closep(&io->out);
	closep(&io->err);
}

/* A pty (from cove-init's devpts, which the container shares) or three pipes. */
static int stdio_open(const struct proto_start *m, bool terminal, struct stdio_set *io)
{
	int p[2], r;

	*io = (struct stdio_set){ .child_in = -1,
				  .child_out = -1,
				  .child_err = -1,
				  .pty_slave = -1,
				  .in = -1,
				  .out = -1,
				  .err = -1,
				  .terminal = terminal };
	if (terminal) {
		struct winsize ws = { .ws_row = m->rows, .ws_col = m->cols };
		char name[64];

		io->out = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (io->out < 0 || grantpt(io->out) < 0 || unlockpt(io->out) < 0 ||
		    ptsname_r(io->out, name, sizeof(name)) != 0)
			goto fail;
		if (ws.ws_row && ws.ws_col)
			ioctl(io->out, TIOCSWINSZ, &ws);
		io->pty_slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (io->pty_slave < 0)
			goto fail;
		io->in = io->out;
		return 0;
	}
	if (m->open_stdin) {
		if (pipe2(p, O_CLOEXEC) < 0)
			goto fail;
		io->child_in = p[0];
		io->in = p[1];
	} else {
		io->child_in = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (io->child_in < 0)
			goto fail;
	}
	if (pipe2(p, O_CLOEXEC) < 0)
		goto fail;
	io->out = p[0];
	io->child_out = p[1];
	if (pipe2(p, O_CLOEXEC) < 0)
		goto fail;
	io->err = p[0];
	io->child_err = p[1];
	return 0;
fail:
	r = -errno;
	stdio_close(io);
	return r;
}

static struct child_ctx child_ctx_of(const struct proto_start *m, int err_fd,
				     const struct stdio_set *io)
{
	return (struct child_ctx){ .m = m,
				   .err_fd = err_fd,
				   .stdin_fd = io->child_in,
				   .stdout_fd = io->child_out,
				   .stderr_fd = io->child_err,
				   .pty_slave = io->pty_slave };
}

/*
 * Wait until the child pid execs (the close-on-exec error pipe rfd reads EOF) or reports why
 * it could not (one struct child_report); a child that does neither in START_TIMEOUT_MS is
 * killed. On failure the child is reaped here.
 */
static int wait_started(int rfd, pid_t pid, uint32_t *ret_kind, char *msg, size_t msg_size)
{
	uint64_t deadline = now_ns() + START_TIMEOUT_MS * 1000000ULL;
	struct child_report rep;
	ssize_t n;
	int r;

	for (;;) {
		struct pollfd p = { .fd = rfd, .events = POLLIN };
		uint64_t now = now_ns();

		if (now >= deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			str_printf(msg, msg_size, "the process did not start within %d s",
				   START_TIMEOUT_MS / 1000);
			return -ETIMEDOUT;
		}
		r = poll(&p, 1, (int)((deadline - now) / 1000000ULL) + 1);
		if (r < 0 && errno != EINTR) {
			r = -errno;
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			str_printf(msg, msg_size, "cannot wait for the process to start: %s",
				   strerror(-r));
			return r;
		}
		if (r > 0)
			break;
	}
	do
		n = read(rfd, &rep, sizeof(rep));
	while (n < 0 && errno == EINTR);
	if (n == 0)
		return 0; /* execve() closed it */
	if (n != (ssize_t)sizeof(rep)) {
		r = n < 0 ? -errno : -EIO;
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		str_printf(msg, msg_size, "the process failed to start (no report)");
		return r;
	}
	waitpid(pid, NULL, 0);
	rep.msg[sizeof(rep.msg) - 1] = '\0';
	*ret_kind = rep.kind <= PROTO_ERR_NOTFOUND ? rep.kind : PROTO_ERR_INTERNAL;
	str_copy(msg, msg_size, rep.msg);
	return -(rep.err > 0 ? rep.err : EIO);
}

static void proc_from(struct container_proc *ret, pid_t pid, struct stdio_set *io)
{
	ret->pid = pid;
	ret->terminal = io->terminal;
	ret->in_fd = TAKE_FD(io->in);
	ret->out_fd = TAKE_FD(io->out);
	ret->err_fd = TAKE_FD(io->err);
}

int container_start(const struct proto_start *m, struct container_proc *ret, uint32_t *ret_kind,
		    char *msg, size_t msg_size)
{
	static char stack[256 * 1024] __attribute__((aligned(16)));
	_cleanup_close_ int err_r = -1;
	int errp[2], r;
	struct stdio_set io;
	struct child_ctx c;
	pid_t pid;

	*ret_kind = PROTO_ERR_INTERNAL;
	r = mount_rootfs(m->rootfs, m->readonly, msg, msg_size);
	if (r < 0)
		return r;
	guest_trace("root filesystem mounted");
	r = volumes_stage(m, msg, msg_size);
	if (r < 0)
		return r;

	r = stdio_open(m, m->terminal, &io);
	if (r < 0) {
		str_printf(msg, msg_size, "cannot set up the process's stdio: %s", strerror(-r));
		return r;
	}
	if (pipe2(errp, O_CLOEXEC) < 0) {
		r = -errno;
		stdio_close(&io);
		str_printf(msg, msg_size, "cannot create a pipe: %s", strerror(-r));
		return r;
	}
	err_r = errp[0];
	c = child_ctx_of(m, errp[1], &io);
	guest_trace("cloning");
	pid = clone(main_child, stack + sizeof(stack),
		    CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | SIGCHLD, &c);
	r = pid < 0 ? -errno : 0;
	close(errp[1]);
	stdio_close_child(&io);
	if (r == 0)
		r = wait_started(err_r, pid, ret_kind, msg, msg_size);
	else
		str_printf(msg, msg_size, "cannot start the container process: %s", strerror(-r));
	if (r < 0) {
		stdio_close(&io);
		return r;
	}
	proc_from(ret, pid, &io);
	return 0;
}

/* ---- exec sessions: join the main process's namespaces ---- */

static const struct {
	const char *name;
	int type;
} exec_ns[] = {
	{ "pid", CLONE_NEWPID }, /* entered by cove-init around the fork */
	{ "mnt", CLONE_NEWNS },
	{ "uts", CLONE_NEWUTS },
	{ "ipc", CLONE_NEWIPC },
};

static _noreturn_ void exec_child(struct child_ctx *c, const int *nsfd)
{
	child_reset_signals();
	/* joining the mount namespace also sets root and cwd to the container's root */
	for (size_t i = 1; i < ARRAY_SIZE(exec_ns); i++)
		if (setns(nsfd[i], exec_ns[i].type) < 0)
			child_fail(c->err_fd, PROTO_ERR_INTERNAL, errno,
				   "cannot join the container's %s namespace: %s", exec_ns[i].name,
				   strerror(errno));
	for (size_t i = 0; i < ARRAY_SIZE(exec_ns); i++)
		close(nsfd[i]);
	if (c->m->tool)
		process_tool(c);
	process_exec(c, false);
}

int container_exec(const struct proto_start *m, pid_t main_pid, struct container_proc *ret,
		   uint32_t *ret_kind, char *msg, size_t msg_size)
{
	int nsfd[ARRAY_SIZE(exec_ns)] = { -1, -1, -1, -1 };
	_cleanup_close_ int err_r = -1;
	int errp[2] = { -1, -1 }, r;
	struct stdio_set io;
	struct child_ctx c;
	pid_t pid;

	*ret_kind = PROTO_ERR_INTERNAL;
	if (own_pidns < 0) {
		str_copy(msg, msg_size, "cove-init cannot start exec sessions (no PID namespace)");
		return -EBADF;
	}
	for (size_t i = 0; i < ARRAY_SIZE(exec_ns); i++) {
		char path[64];

		str_printf(path, sizeof(path), "/proc/%d/ns/%s", (int)main_pid, exec_ns[i].name);
		nsfd[i] = open(path, O_RDONLY | O_CLOEXEC);
		if (nsfd[i] < 0) {
			r = -errno;
			if (r == -ENOENT || r == -ESRCH)
				str_copy(msg, msg_size, "the container is not running");
			else
				str_printf(msg, msg_size, "cannot open '%s': %s", path,
					   strerror(-r));
			goto out;
		}
	}
	/* a tool's stdio is always pipes: its output is data, not a terminal's */
	r = stdio_open(m, m->terminal && !m->tool, &io);
	if (r < 0) {
		str_printf(msg, msg_size, "cannot set up the process's stdio: %s", strerror(-r));
		goto out;
	}
	if (pipe2(errp, O_CLOEXEC) < 0) {
		r = -errno;
		str_printf(msg, msg_size, "cannot create a pipe: %s", strerror(-r));
		stdio_close(&io);
		goto out;
	}
	err_r = errp[0];
	c = child_ctx_of(m, errp[1], &io);

	/* the next child is born in the container's PID namespace; cove-init itself stays */
	if (setns(nsfd[0], CLONE_NEWPID) < 0) {
		r = -errno;
		str_printf(msg, msg_size, "cannot enter the container's PID namespace: %s",
			   strerror(-r));
		close(errp[1]);
		stdio_close(&io);
		goto out;
	}
	pid = fork();
	if (pid == 0)
		exec_child(&c, nsfd);
	r = pid < 0 ? -errno : 0;
	if (setns(own_pidns, CLONE_NEWPID) < 0)
		guest_log("cannot return to cove-init's PID namespace: %s", strerror(errno));
	close(errp[1]);
	stdio_close_child(&io);
	if (r == 0)
		r = wait_started(err_r, pid, ret_kind, msg, msg_size);
	else if (r == -ENOMEM) /* what fork says when the namespace's init is gone */
		str_copy(msg, msg_size, "the container is not running");
	else
		str_printf(msg, msg_size, "cannot start the process: %s", strerror(-r));
	if (r < 0) {
		stdio_close(&io);
		goto out;
	}
	proc_from(ret, pid, &io);
out:
	for (size_t i = 0; i < ARRAY_SIZE(exec_ns); i++)
		closep(&nsfd[i]);
	return r;
}
