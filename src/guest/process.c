/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The last steps of every process cove-init starts in the container, main process and exec
 * sessions alike, run in the child once it is inside the container's namespaces: identity
 * (docker's USER resolved in the container's own /etc/passwd and /etc/group), stdio, rlimits,
 * capabilities, the user switch, the working directory, seccomp, then execve() with a PATH
 * search -- behind a tiny init when asked -- or, for a tool, cove-init's own code.
 */
#define _GNU_SOURCE
#include "process.h"
#include "security.h"
#include "../util/tar.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>

#define DEFAULT_PATH	"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define PASSWD_LINE_MAX 2048
#define GROUP_LINE_MAX	8192

void child_fail(int fd, uint32_t kind, int err, const char *fmt, ...)
{
	struct child_report r = { .kind = kind, .err = err };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r.msg, sizeof(r.msg), fmt, ap);
	va_end(ap);
	(void)write_full(fd, &r, sizeof(r)); /* < PIPE_BUF: one atomic write */
	_exit(127);
}

void child_reset_signals(void)
{
	sigset_t none;

	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Everything but 0, 1 and 2, for a child that will not execve(): what cove-init had open
 * (the port, other sessions' pipes) must not stay open in it. */
static void close_other_fds(void)
{
	if (syscall(SYS_close_range, 3u, ~0u, 0u) == 0)
		return;
	for (int fd = 3; fd < 1024; fd++)
		close(fd);
}

/* A file of the image, for reading: a regular file only (opening a FIFO would block). */
static FILE *open_image_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	struct stat st;
	FILE *f;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return NULL;
	}
	f = fdopen(fd, "r");
	if (!f)
		close(fd);
	return f;
}

/* The next line of f into line (newline removed); a line longer than size is skipped whole,
 * so that its tail is never taken for a record. Returns false at the end of the file. */
static bool read_line(FILE *f, char *line, size_t size)
{
	while (fgets(line, (int)size, f)) {
		size_t n = strlen(line);
		int ch;

		if (n > 0 && line[n - 1] == '\n') {
			line[n - 1] = '\0';
			return true;
		}
		if (feof(f))
			return true;
		while ((ch = getc(f)) != EOF && ch != '\n')
			;
	}
	return false;
}

/* Split a colon-separated line of /etc/passwd or /etc/group into at most max fields. */
static int split_fields(char *line, char **fields, int max)
{
	int n = 0;

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
	_cleanup_fclose_ FILE *f = open_image_file("/etc/passwd");
	char line[PASSWD_LINE_MAX];

	while (f && read_line(f, line, sizeof(line))) {
		char *fld[7] = { 0 };
		uint32_t v, g;

		if (split_fields(line, fld, 7) < 6 || !parse_id(fld[2], &v) ||
		    !parse_id(fld[3], &g))
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
	_cleanup_fclose_ FILE *f = open_image_file("/etc/group");
	_cleanup_free_ char *line = malloc(GROUP_LINE_MAX);
	bool numeric = group && parse_id(group, ret_gid);
	int found = group ? (numeric ? 1 : 0) : 1;

	while (f && line && read_line(f, line, GROUP_LINE_MAX)) {
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
	char user[257], shown[STR_SHOWN_MAX], *group;
	uint32_t uid = 0;
	bool numeric;

	memset(id, 0, sizeof(*id));
	str_copy(id->home, sizeof(id->home), "/");
	if (!m->user || !m->user[0]) {
		struct identity tmp = { 0 };

		id->uid = m->uid;
		id->gid = m->gid;
		id->ngroups =
			m->ngroups < ARRAY_SIZE(id->groups) ? m->ngroups : ARRAY_SIZE(id->groups);
		if (id->ngroups)
			memcpy(id->groups, m->groups, id->ngroups * sizeof(uint32_t));
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
				   "unable to find user '%s': no matching entry in the image's "
				   "/etc/passwd",
				   str_shown(user, shown));
		id->uid = uid;
		id->gid = 0;
	}
	if (group && group_lookup(group, &id->gid, NULL, id) < 0)
		child_fail(efd, PROTO_ERR_EXEC, ENOENT,
			   "unable to find group '%s': no matching entry in the image's /etc/group",
			   str_shown(group, shown));
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

/* m->env, plus HOME from the user's passwd entry when m->env has none (as docker does). */
static char **env_with_home(int efd, const struct proto_start *m, const char *home)
{
	static char home_kv[1100];
	char **e;

	if (env_get(m->env, "HOME"))
		return m->env;
	e = calloc(m->envc + 2, sizeof(char *));
	if (!e)
		child_fail(efd, PROTO_ERR_INTERNAL, ENOMEM, "out of memory");
	str_printf(home_kv, sizeof(home_kv), "HOME=%s", home);
	if (m->envc)
		memcpy(e, m->env, m->envc * sizeof(char *));
	e[m->envc] = home_kv;
	return e;
}

/* The prepared terminal or pipes become 0, 1 and 2; a terminal also becomes the controlling
 * terminal of a new session. */
static void setup_stdio(struct child_ctx *c)
{
	int efd = c->err_fd;

	if (c->pty_slave >= 0) {
		if (setsid() < 0 || ioctl(c->pty_slave, TIOCSCTTY, 0) < 0)
			child_fail(efd, PROTO_ERR_INTERNAL, errno, "cannot attach the terminal: %s",
				   strerror(errno));
		if (dup2(c->pty_slave, 0) < 0 || dup2(c->pty_slave, 1) < 0 ||
		    dup2(c->pty_slave, 2) < 0)
			child_fail(efd, PROTO_ERR_INTERNAL, errno, "cannot set up stdio: %s",
				   strerror(errno));
		return;
	}
	if (dup2(c->stdin_fd, 0) < 0 || dup2(c->stdout_fd, 1) < 0 || dup2(c->stderr_fd, 2) < 0)
		child_fail(efd, PROTO_ERR_INTERNAL, errno, "cannot set up stdio: %s",
			   strerror(errno));
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
	for (p = path;;) {
		const char *colon = strchr(p, ':');
		size_t len = colon ? (size_t)(colon - p) : strlen(p);
		const char *dir = p;

		if (len == 0)
			len = 1, dir = "."; /* an empty element means the cwd */
		if (len + 1 + strlen(argv[0]) < sizeof(full)) {
			memcpy(full, dir, len);
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

/*
 * The tiny init's loop (START init = 1): it is PID 1 of the container and the command is its
 * only child. Every signal it gets (all are blocked and taken with sigwaitinfo, so none is
 * lost or ignored) goes on to the command, except SIGCHLD, on which it reaps every zombie;
 * when the command is reaped, it exits as the command did. Death by signal N becomes exit code
 * 128 + N: PID 1 of a PID namespace cannot be killed by a signal it raises on itself.
 */
static _noreturn_ void init_loop(pid_t child)
{
	sigset_t all;

	sigfillset(&all);
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&all, &si);
		pid_t pid;
		int status;

		if (sig < 0)
			continue;
		if (sig != SIGCHLD) {
			kill(child, sig);
			continue;
		}
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			if (pid != child)
				continue;
			if (WIFSIGNALED(status))
				_exit(128 + WTERMSIG(status));
			_exit(WEXITSTATUS(status));
		}
	}
}

/* Fork the command off the tiny init. Returns in the command's process only. */
static void start_under_init(struct child_ctx *c)
{
	sigset_t all, none;
	pid_t pid;

	/* from here on the init takes every signal with sigwaitinfo() */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	pid = fork();
	if (pid < 0)
		child_fail(c->err_fd, PROTO_ERR_INTERNAL, errno, "cannot start the command: %s",
			   strerror(errno));
	if (pid > 0) {
		/* the error pipe is the command's to close (by execve) or to write */
		close_other_fds();
		init_loop(pid);
	}
	if (c->pty_slave >= 0) {
		/* its own process group in the terminal's foreground, so that ^C reaches the
		 * command once, not also through the init (SIGTTOU is blocked here) */
		if (setpgid(0, 0) < 0 || tcsetpgrp(0, getpid()) < 0)
			child_fail(c->err_fd, PROTO_ERR_INTERNAL, errno,
				   "cannot give the terminal to the command: %s", strerror(errno));
	}
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

void process_exec(struct child_ctx *c, bool with_init)
{
	const struct proto_start *m = c->m;
	int efd = c->err_fd;
	char msg[400], shown[STR_SHOWN_MAX];
	struct identity id;
	char **env;
	int r;

	resolve_identity(efd, m, &id);
	env = env_with_home(efd, m, id.home);
	setup_stdio(c);
	/* the terminal belongs to the user it runs as */
	if (c->pty_slave >= 0)
		(void)fchown(0, id.uid, (gid_t)-1);

	msg[0] = '\0';
	r = security_set_rlimits(m, msg, sizeof(msg));
	if (r == 0)
		r = security_before_user(m, msg, sizeof(msg));
	if (r < 0)
		child_fail(efd, PROTO_ERR_INTERNAL, -r, "%s",
			   msg[0] ? msg : "cannot set up the process's limits");
	if (setgroups(id.ngroups, id.groups) < 0 || setresgid(id.gid, id.gid, id.gid) < 0 ||
	    setresuid(id.uid, id.uid, id.uid) < 0)
		child_fail(efd, PROTO_ERR_INTERNAL, errno, "cannot switch to user %u:%u: %s",
			   id.uid, id.gid, strerror(errno));
	if (chdir(m->cwd) < 0)
		child_fail(efd, PROTO_ERR_EXEC, errno,
			   "cannot change to working directory '%s': %s", str_shown(m->cwd, shown),
			   strerror(errno));
	r = security_before_exec(m, id.uid, msg, sizeof(msg));
	if (r < 0)
		child_fail(efd, PROTO_ERR_INTERNAL, -r, "%s",
			   msg[0] ? msg : "cannot set up the process's security");
	if (with_init)
		start_under_init(c);

	r = exec_command(m->argv, env);
	if (r == -ENOENT || r == -ENOTDIR)
		child_fail(efd, PROTO_ERR_NOTFOUND, -r,
			   "'%s': executable file not found in $PATH or the container",
			   str_shown(m->argv[0], shown));
	child_fail(efd, PROTO_ERR_EXEC, -r, "'%s': cannot execute: %s",
		   str_shown(m->argv[0], shown), strerror(-r));
}

void process_tool(struct child_ctx *c)
{
	const struct proto_start *m = c->m;
	char msg[512] = "";
	int r;

	setup_stdio(c);
	/* running: from here on, failures are the tool's own and go to its stderr */
	close_other_fds();
	switch (m->tool) {
	case PROTO_TOOL_TAR_OUT:
		r = tar_cp_out(1, m->argv[0], msg, sizeof(msg) - 1);
		break;
	case PROTO_TOOL_TAR_IN:
		/* into the container: everything the archive says, as root there may */
		r = tar_cp_in(0, m->argv[0],
			      &(struct tar_in_opts){ .keep_owners = true, .keep_devices = true,
						     .keep_setid = true, .merge_meta = true },
			      msg, sizeof(msg) - 1);
		break;
	case PROTO_TOOL_PAUSE:
		for (;;)
			pause(); /* until the host's SIGKILL */
	default:
		str_copy(msg, sizeof(msg) - 1, "unknown tool");
		r = -EINVAL;
		break;
	}
	if (r < 0) {
		size_t n;

		if (!msg[0])
			str_copy(msg, sizeof(msg) - 1, strerror(-r));
		n = strnlen(msg, sizeof(msg) - 1);
		msg[n++] = '\n';
		(void)write_full(2, msg, n);
		_exit(1);
	}
	_exit(0);
}
