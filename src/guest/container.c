/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Starting the container's process inside the VM: root filesystem, namespaces, /proc, /dev,
 * pivot_root, identity, stdio, exec. Any failure in the child is sent back to the parent over
 * a close-on-exec pipe as (kind, errno, message), so that nothing fails silently.
 */
#define _GNU_SOURCE
#include "guest.h"

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct child_ctx {
	const struct proto_start *m;
	int err_fd;     /* write end of the error pipe */
	int stdin_fd;   /* child's ends */
	int stdout_fd;
	int stderr_fd;
	int pty_slave;
};

struct child_report {
	uint32_t kind;
	int32_t err;
	char msg[480];
};

static bool rootfs_mounted;

static _noreturn_ void child_fail(int fd, uint32_t kind, int err, const char *fmt, ...)
	_printf_(4, 5);
static void child_fail(int fd, uint32_t kind, int err, const char *fmt, ...)
{
	struct child_report r = { .kind = kind, .err = err };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r.msg, sizeof(r.msg), fmt, ap);
	va_end(ap);
	(void)write_full(fd, &r, sizeof(r));
	_exit(127);
}

static void mount_or_fail(int efd, const char *src, const char *dst, const char *type,
			  unsigned long flags, const char *data)
{
	if (mkdir_p(dst, 0755) < 0)
		child_fail(efd, PROTO_ERR_INTERNAL, errno, "cannot create mount point '%s': %s", dst,
			   strerror(errno));
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
		{ "null", 1, 3 }, { "zero", 1, 5 },    { "full", 1, 7 },
		{ "random", 1, 8 }, { "urandom", 1, 9 }, { "tty", 5, 0 },
	};
	static const struct {
		const char *name, *target;
	} links[] = {
		{ "fd", "/proc/self/fd" },     { "stdin", "/proc/self/fd/0" },
		{ "stdout", "/proc/self/fd/1" }, { "stderr", "/proc/self/fd/2" },
		{ "ptmx", "pts/ptmx" },
	};
	char path[4096];

	str_printf(path, sizeof(path), "%s/dev", root);
	mount_or_fail(efd, "tmpfs", path, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=65536k");
	for (size_t i = 0; i < ARRAY_SIZE(nodes); i++) {
		str_printf(path, sizeof(path), "%s/dev/%s", root, nodes[i].name);
		if (mknod(path, S_IFCHR | 0666, makedev(nodes[i].maj, nodes[i].min)) < 0)
			child_fail(efd, PROTO_ERR_INTERNAL, errno, "cannot create '/dev/%s': %s",
				   nodes[i].name, strerror(errno));
		chmod(path, 0666);
	}
	for (size_t i = 0; i < ARRAY_SIZE(links); i++) {
		str_printf(path, sizeof(path), "%s/dev/%s", root, links[i].name);
		if (symlink(links[i].target, path) < 0)
			child_fail(efd, PROTO_ERR_INTERNAL, errno, "cannot create '/dev/%s': %s",
				   links[i].name, strerror(errno));
	}
	/* The VM is this container's alone, so its devpts instance is the container's. */
	str_printf(path, sizeof(path), "%s/dev/pts", root);
	mount_or_fail(efd, "/dev/pts", path, NULL, MS_BIND, NULL);
	str_printf(path, sizeof(path), "%s/dev/shm", root);
	mount_or_fail(efd, "shm", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		      "mode=1777,size=65536k");
	str_printf(path, sizeof(path), "%s/dev/mqueue", root);
	mount_or_fail(efd, "mqueue", path, "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
}

/* Split a colon-separated line of /etc/passwd or /etc/group into at most max fields. */
static int split_fields(char *line, char **fields, int max)
{
	int n = 0;

	line[strcspn(line, "\n")] = '\0';
	while (n < max) {
		fields[n++] = line;
		line = strchr(line, ':');
		if (!line)
			break;
		*line++ = '\0';
	}
	return n;
}

static bool parse_id(const char *s, uint32_t *ret)
{
	uint64_t v;

	if (parse_u64(s, UINT32_MAX - 1, &v) < 0)
		return false;
	*ret = (uint32_t)v;
	return true;
}

struct identity {
	uint32_t uid, gid;
	uint32_t groups[64];
	uint32_t ngroups;
	char name[256];
	char home[1024];
	bool found; /* the user has a passwd entry */
};

/* Look a user up by name or number in the container's /etc/passwd. */
static void passwd_lookup(const char *user, bool numeric, uint32_t uid, struct identity *id)
{
	_cleanup_fclose_ FILE *f = fopen("/etc/passwd", "re");
	char line[2048];

	while (f && fgets(line, sizeof(line), f)) {
		char *fld[7] = { 0 };
		uint32_t v, g;

		if (split_fields(line, fld, 7) < 6 || !parse_id(fld[2], &v) || !parse_id(fld[3], &g))
			continue;
		if (numeric ? v != uid : strcmp(fld[0], user) != 0)
			continue;
		id->uid = v;
		id->gid = g;
		id->found = true;
		str_copy(id->name, sizeof(id->name), fld[0]);
		if (fld[5][0] == '/')
			str_copy(id->home, sizeof(id->home), fld[5]);
		return;
	}
}

/* Resolve a group name or number into *ret_gid (group may be NULL); with member, also add
 * every group that lists member to id->groups. */
static int group_lookup(const char *group, uint32_t *ret_gid, const char *member,
			struct identity *id)
{
	_cleanup_fclose_ FILE *f = fopen("/etc/group", "re");
	char line[8192];
	bool numeric = group && parse_id(group, ret_gid);
	int found = group ? (numeric ? 1 : 0) : 1;

	while (f && fgets(line, sizeof(line), f)) {
		char *fld[4] = { 0 };
		uint32_t g;

		if (split_fields(line, fld, 4) < 3 || !parse_id(fld[2], &g))
			continue;
		if (group && !numeric && !found && strcmp(fld[0], group) == 0) {
			*ret_gid = g;
			found = 1;
		}
		if (member && fld[3] && id->ngroups < ARRAY_SIZE(id->groups)) {
			for (char *p = fld[3], *end; p && *p; p = end) {
				end = strchr(p, ',');
				if (end)
					*end++ = '\0';
				if (strcmp(p, member) == 0) {
					id->groups[id->ngroups++] = g;
					break;
				}
			}
		}
	}
	return found ? 0 : -ENOENT;
}

/*
 * The identity the process runs as: docker's USER (name|uid[:group|gid]) resolved in the
 * container's own /etc/passwd and /etc/group, or the numeric ids of START. A numeric uid need
 * not exist (gid 0 then, as in docker); a name must.
 */
static void resolve_identity(int efd, const struct proto_start *m, struct identity *id)
{
	char user[257], *group;
	uint32_t uid = 0;
	bool numeric;

	memset(id, 0, sizeof(*id));
	str_copy(id->home, sizeof(id->home), "/");
	if (!m->user || !m->user[0]) {
		id->uid = m->uid;
		id->gid = m->gid;
		id->ngroups = m->ngroups < ARRAY_SIZE(id->groups) ? m->ngroups : ARRAY_SIZE(id->groups);
		if (id->ngroups)
			memcpy(id->groups, m->groups, id->ngroups * sizeof(uint32_t));
		struct identity tmp = { 0 };
		passwd_lookup(NULL, true, m->uid, &tmp);
		if (tmp.found && tmp.home[0])
			str_copy(id->home, sizeof(id->home), tmp.home);
		return;
	}
	str_copy(user, sizeof(user), m->user);
	group = strchr(user, ':');
	if (group)
		*group++ = '\0';
	numeric = parse_id(user, &uid);
	passwd_lookup(user, numeric, uid, id);
	if (!id->found) {
		if (!numeric)
			child_fail(efd, PROTO_ERR_EXEC, ENOENT,
				   "unable to find user '%s': no matching entry in the image's /etc/passwd",
				   user);
		id->uid = uid;
		id->gid = 0;
	}
	if (group && group_lookup(group, &id->gid, NULL, id) < 0)
		child_fail(efd, PROTO_ERR_EXEC, ENOENT,
			   "unable to find group '%s': no matching entry in the image's /etc/group",
			   group);
	/* supplementary groups: where /etc/group lists the user by name */
	if (id->found)
		(void)group_lookup(NULL, &(uint32_t){ 0 }, id->name, id);
}

static const char *env_get(char **env, const char *key)
{
	size_t n = strlen(key);

	for (; env && *env; env++)
		if (strncmp(*env, key, n) == 0 && (*env)[n] == '=')
			return *env + n + 1;
	return NULL;
}

/* execve() with a PATH search in the container's environment, as execvp does. */
static int exec_command(char **argv, char **env)
{
	const char *path, *p;
	char full[4096];
	int saved = ENOENT;

	if (strchr(argv[0], '/')) {
		execve(argv[0], argv, env);
		return -errno;
	}
	path = env_get(env, "PATH");
	if (!path)
		path = DEFAULT_PATH;
	for (p = path;; ) {
		const char *colon = strchr(p, ':');
		size_t len = colon ? (size_t)(colon - p) : strlen(p);

		if (len == 0)
			len = 1, p = "."; /* empty element means the cwd */
		if (len + 1 + strlen(argv[0]) < sizeof(full)) {
			memcpy(full, p, len);
			full[len] = '/';
			memcpy(full + len + 1, argv[0], strlen(argv[0]) + 1);
			execve(full, argv, env);
			if (errno != ENOENT && errno != ENOTDIR)
				saved = errno;
		}
		if (!colon)
			break;
		p = colon + 1;
	}
	return -saved;
}

static int child_main(void *arg)
{
	struct child_ctx *c = arg;
	const struct proto_start *m = c->m;
	int efd = c->err_fd;
	char **env = m->env;
	struct identity id;
	sigset_t none;
	int r;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);

	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		child_fail(efd, PROTO_ERR_INTERNAL, errno, "cannot make mounts private: %s",
			   strerror(errno));
	/* pivot_root needs the new root to be a mount point of its own */
	if (mount(GUEST_ROOTFS, GUEST_ROOTFS, NULL, MS_BIND | MS_REC, NULL) < 0)
		child_fail(efd, PROTO_ERR_INTERNAL, errno, "cannot bind the root filesystem: %s",
			   strerror(errno));
	mount_or_fail(efd, "proc", GUEST_ROOTFS "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		      NULL);
	mount_or_fail(efd, "sysfs", GUEST_ROOTFS "/sys", "sysfs",
		      MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, NULL);
	mount_or_fail(efd, "cgroup2", GUEST_ROOTFS "/sys/fs/cgroup", "cgroup2",
		      MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	setup_dev(efd, GUEST_ROOTFS);
	if (mkdir_p(GUEST_ROOTFS "/tmp", 01777) < 0)
		child_fail(efd, PROTO_ERR_INTERNAL, errno, "cannot create /tmp: %s", strerror(errno));

	if (chdir(GUEST_ROOTFS) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 ||
	    umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
		child_fail(efd, PROTO_ERR_INTERNAL, errno, "cannot switch to the root filesystem: %s",
			   strerror(errno));

	if (m->hostname[0] && sethostname(m->hostname, strlen(m->hostname)) < 0)
		child_fail(efd, PROTO_ERR_INTERNAL, errno, "cannot set hostname '%s': %s", m->hostname,
			   strerror(errno));

	/* docker creates a missing working directory, owned by root */
	if (mkdir_p(m->cwd, 0755) < 0)
		child_fail(efd, PROTO_ERR_INTERNAL, errno, "cannot create working directory '%s': %s",
			   m->cwd, strerror(errno));

	resolve_identity(efd, m, &id);
	if (!env_get(env, "HOME")) {
		size_t n = m->envc;
		char **e = calloc(n + 2, sizeof(char *));
		static char home_kv[1100];

		if (!e)
			child_fail(efd, PROTO_ERR_INTERNAL, ENOMEM, "out of memory");
		str_printf(home_kv, sizeof(home_kv), "HOME=%s", id.home);
		memcpy(e, env, n * sizeof(char *));
		e[n] = home_kv;
		env = e;
	}

	/* stdio */
	if (m->terminal) {
		if (setsid() < 0 || ioctl(c->pty_slave, TIOCSCTTY, 0) < 0)
			child_fail(efd, PROTO_ERR_INTERNAL, errno, "cannot attach the terminal: %s",
				   strerror(errno));
		if (dup2(c->pty_slave, 0) < 0 || dup2(c->pty_slave, 1) < 0 ||
		    dup2(c->pty_slave, 2) < 0)
			child_fail(efd, PROTO_ERR_INTERNAL, errno, "cannot set up stdio: %s",
				   strerror(errno));
	} else {
		if (dup2(c->stdin_fd, 0) < 0 || dup2(c->stdout_fd, 1) < 0 ||
		    dup2(c->stderr_fd, 2) < 0)
			child_fail(efd, PROTO_ERR_INTERNAL, errno, "cannot set up stdio: %s",
				   strerror(errno));
	}

	/* the terminal belongs to the user it runs as */
	if (m->terminal)
		(void)fchown(0, id.uid, (gid_t)-1);
	if (setgroups(id.ngroups, id.groups) < 0 || setresgid(id.gid, id.gid, id.gid) < 0 ||
	    setresuid(id.uid, id.uid, id.uid) < 0)
		child_fail(efd, PROTO_ERR_INTERNAL, errno, "cannot switch to user %u:%u: %s", id.uid,
			   id.gid, strerror(errno));

	if (chdir(m->cwd) < 0)
		child_fail(efd, PROTO_ERR_EXEC, errno, "cannot change to working directory '%s': %s",
			   m->cwd, strerror(errno));

	r = exec_command(m->argv, env);
	if (r == -ENOENT || r == -ENOTDIR)
		child_fail(efd, PROTO_ERR_NOTFOUND, -r,
			   "'%s': executable file not found in $PATH or the container", m->argv[0]);
	child_fail(efd, PROTO_ERR_EXEC, -r, "'%s': cannot execute: %s", m->argv[0], strerror(-r));
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

	if (!name || str_printf(path, sizeof(path), "/sys/block/%s/queue/read_ahead_kb", name + 1) < 0)
		return;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	(void)write_full(fd, "2048", 4);
	close(fd);
}

static int mount_rootfs(const char *dev, char *msg, size_t msg_size)
{
	if (rootfs_mounted)
		return 0;
	if (mkdir_p(GUEST_ROOTFS, 0755) < 0) {
		str_printf(msg, msg_size, "cannot create '%s': %s", GUEST_ROOTFS, strerror(errno));
		return -errno;
	}
	tune_block_device(dev);
	if (mount(dev, GUEST_ROOTFS, "ext4", MS_NOATIME, NULL) < 0) {
		int e = errno;
		str_printf(msg, msg_size, "cannot mount the root filesystem '%s' (ext4): %s", dev,
			   strerror(e));
		return -e;
	}
	rootfs_mounted = true;
	return 0;
}

int container_spawn(const struct proto_start *m, struct container_proc *ret, uint32_t *ret_kind,
		    char *msg, size_t msg_size)
{
	static char stack[256 * 1024] __attribute__((aligned(16)));
	struct child_ctx c = { .m = m, .err_fd = -1, .stdin_fd = -1, .stdout_fd = -1,
			       .stderr_fd = -1, .pty_slave = -1 };
	int errp[2] = { -1, -1 }, inp[2] = { -1, -1 }, outp[2] = { -1, -1 }, errs[2] = { -1, -1 };
	_cleanup_close_ int master = -1;
	struct child_report rep;
	ssize_t n;
	pid_t pid;
	int r;

	*ret_kind = PROTO_ERR_INTERNAL;
	r = mount_rootfs(m->rootfs, msg, msg_size);
	if (r < 0)
		return r;
	guest_trace("root filesystem mounted");

	if (pipe2(errp, O_CLOEXEC) < 0)
		goto fail_errno;
	c.err_fd = errp[1];
	if (m->terminal) {
		struct winsize ws = { .ws_row = m->rows, .ws_col = m->cols };
		char name[64];

		master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0 ||
		    ptsname_r(master, name, sizeof(name)) != 0)
			goto fail_errno;
		if (ws.ws_row && ws.ws_col)
			ioctl(master, TIOCSWINSZ, &ws);
		c.pty_slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (c.pty_slave < 0)
			goto fail_errno;
	} else {
		if (m->open_stdin) {
			if (pipe2(inp, O_CLOEXEC) < 0)
				goto fail_errno;
			c.stdin_fd = inp[0];
		} else {
			c.stdin_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
			if (c.stdin_fd < 0)
				goto fail_errno;
		}
		if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errs, O_CLOEXEC) < 0)
			goto fail_errno;
		c.stdout_fd = outp[1];
		c.stderr_fd = errs[1];
	}

	guest_trace("cloning");
	pid = clone(child_main, stack + sizeof(stack),
		    CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | SIGCHLD, &c);
	if (pid < 0)
		goto fail_errno;

	/* our copies of the child's ends */
	closep(&errp[1]);
	closep(&c.stdin_fd);
	closep(&c.stdout_fd);
	closep(&c.stderr_fd);
	closep(&c.pty_slave);

	do
		n = read(errp[0], &rep, sizeof(rep));
	while (n < 0 && errno == EINTR);
	closep(&errp[0]);
	if (n == (ssize_t)sizeof(rep)) {
		rep.msg[sizeof(rep.msg) - 1] = '\0';
		waitpid(pid, NULL, 0);
		*ret_kind = rep.kind;
		str_copy(msg, msg_size, rep.msg);
		closep(&inp[1]);
		closep(&outp[0]);
		closep(&errs[0]);
		return -(rep.err ? rep.err : EIO);
	}

	ret->pid = pid;
	ret->terminal = m->terminal;
	if (m->terminal) {
		ret->in_fd = master;
		ret->out_fd = TAKE_FD(master);
		ret->err_fd = -1;
	} else {
		ret->in_fd = inp[1];
		ret->out_fd = outp[0];
		ret->err_fd = errs[0];
	}
	return 0;

fail_errno:
	r = -errno;
	str_printf(msg, msg_size, "cannot start the container process: %s", strerror(errno));
	closep(&errp[0]);
	closep(&errp[1]);
	closep(&inp[0]);
	closep(&inp[1]);
	closep(&outp[0]);
	closep(&outp[1]);
	closep(&errs[0]);
	closep(&errs[1]);
	closep(&c.pty_slave);
	if (!m->open_stdin && !m->terminal)
		closep(&c.stdin_fd);
	return r;
}
