/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "vm.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#define QEMU_MAX_ARGS 64

static uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

int vm_tsc_khz(const char *cache_file, uint64_t *ret)
{
	_cleanup_free_ char *s = NULL;
	uint64_t khz, t0, c0, t1, c1;
	struct timespec req = { 0, 20 * 1000 * 1000 };

	if (cache_file && read_file(cache_file, 64, &s, NULL) == 0) {
		s[strcspn(s, "\n")] = '\0';
		if (parse_u64(s, 100000000, &khz) == 0 && khz > 0) {
			*ret = khz;
			return 0;
		}
	}
	/* 20 ms against CLOCK_MONOTONIC_RAW gives well under 0.1% error */
	t0 = now_ns();
	c0 = rdtsc();
	nanosleep(&req, NULL);
	c1 = rdtsc();
	t1 = now_ns();
	if (t1 <= t0 || c1 <= c0)
		return -EIO;
	khz = (c1 - c0) * 1000000ULL / (t1 - t0);
	if (cache_file) {
		char line[32];

		str_printf(line, sizeof(line), "%llu\n", (unsigned long long)khz);
		(void)write_file_atomic(cache_file, line, strlen(line), 0644);
	}
	*ret = khz;
	return 0;
}

int vm_find_qemu(char *buf, size_t size, struct cove_error *err)
{
	const char *env = getenv("COVE_QEMU"), *path, *p;

	if (env && *env) {
		if (access(env, X_OK) < 0)
			return cove_error_set(err, errno, "QEMU '%s' (from COVE_QEMU) is not executable: %s",
					      env, strerror(errno));
		return str_copy(buf, size, env);
	}
	path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path;;) {
		const char *colon = strchr(p, ':');
		int len = colon ? (int)(colon - p) : (int)strlen(p);

		if (len > 0 && str_printf(buf, size, "%.*s/qemu-system-x86_64", len, p) == 0 &&
		    access(buf, X_OK) == 0)
			return 0;
		if (!colon)
			break;
		p = colon + 1;
	}
	return cove_error_set(err, ENOENT,
			      "qemu-system-x86_64 not found in PATH: install it (apt-get install "
			      "qemu-system-x86) or run scripts/setup.sh");
}

int vm_start(const struct vm_config *c, struct vm *ret, struct cove_error *err)
{
	char mem[32], smp[32], append[512], drive[4096], chardev[64], con[4096];
	const char *argv[QEMU_MAX_ARGS];
	int sp[2], logfd, n = 0;
	pid_t parent = getpid(), pid;

	if (access(c->kernel, R_OK) < 0)
		return cove_error_set(err, errno,
				      "guest kernel '%s' is missing: build it with kernel/build.sh "
				      "(or run scripts/setup.sh)",
				      c->kernel);
	if (access(c->initrd, R_OK) < 0)
		return cove_error_set(err, errno,
				      "guest initramfs '%s' is missing: rebuild cove (ninja -C build)",
				      c->initrd);

	str_printf(mem, sizeof(mem), "%lluM", (unsigned long long)(c->memory >> 20));
	str_printf(smp, sizeof(smp), "%u", c->cpus);
	str_printf(append, sizeof(append), "console=ttyS0 quiet panic=-1 rdinit=/init%s",
		   getenv("COVE_DEBUG") ? " cove.debug" : "");
	if (!c->kvm && c->tsc_khz) {
		size_t len = strlen(append);
		str_printf(append + len, sizeof(append) - len, " tsc_early_khz=%llu",
			   (unsigned long long)c->tsc_khz);
	}
	if ((c->disk && strchr(c->disk, ',')) || strchr(c->boot_log, ','))
		return cove_error_set(err, EINVAL, "paths given to QEMU must not contain ','");
	if ((c->disk && str_printf(drive, sizeof(drive),
				   "id=d0,file=%s,format=%s,if=none,cache=unsafe", c->disk,
				   c->disk_format) < 0) ||
	    str_printf(con, sizeof(con), "file,id=con0,path=%s", c->boot_log) < 0)
		return cove_error_set(err, ENAMETOOLONG, "state directory path is too long");

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		return cove_error_set(err, errno, "socketpair failed: %s", strerror(errno));
	str_printf(chardev, sizeof(chardev), "socket,id=c0,fd=%d", sp[1]);

	argv[n++] = c->qemu;
	argv[n++] = "-M";
	/*
	 * Guest RAM stays anonymous memory (transparent huge pages): a memfd backend saved ~7 MiB
	 * of an idle guest's ~100 MiB but cost ~70 ms per boot under TCG here.
	 */
	argv[n++] = "microvm,x-option-roms=off";
	argv[n++] = "-accel";
	/* a small translation cache: an idle guest runs little code, and the default reserves
	 * (and, as it fills, pays for) far more */
	argv[n++] = c->kvm ? "kvm" : "tcg,tb-size=32";
	if (c->kvm) {
		argv[n++] = "-cpu";
		argv[n++] = c->cpu ? c->cpu : "host";
	}
	argv[n++] = "-m";
	argv[n++] = mem;
	argv[n++] = "-smp";
	argv[n++] = smp;
	/* QEMU runs the guest's devices, so it gets a seccomp filter: no obsolete syscalls, no
	 * setuid/setgid, no fork/exec, no priority or affinity games */
	argv[n++] = "-sandbox";
	argv[n++] = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny";
	argv[n++] = "-nodefaults";
	argv[n++] = "-no-user-config";
	argv[n++] = "-display";
	argv[n++] = "none";
	argv[n++] = "-no-reboot";
	argv[n++] = "-chardev";
	argv[n++] = con;
	argv[n++] = "-serial";
	argv[n++] = "chardev:con0";
	argv[n++] = "-kernel";
	argv[n++] = c->kernel;
	argv[n++] = "-initrd";
	argv[n++] = c->initrd;
	argv[n++] = "-append";
	argv[n++] = append;
	if (c->disk) {
		argv[n++] = "-drive";
		argv[n++] = drive;
		argv[n++] = "-device";
		argv[n++] = "virtio-blk-device,drive=d0";
	}
	argv[n++] = "-device";
	argv[n++] = "virtio-serial-device,max_ports=2";
	argv[n++] = "-chardev";
	argv[n++] = chardev;
	argv[n++] = "-device";
	argv[n++] = "virtserialport,chardev=c0,name=cove.0";
	/* memory the guest frees goes back to the host */
	argv[n++] = "-device";
	argv[n++] = "virtio-balloon-device,free-page-reporting=on";
	argv[n] = NULL;

	logfd = open(c->qemu_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (logfd < 0) {
		int e = errno;
		close(sp[0]);
		close(sp[1]);
		return cove_error_set(err, e, "cannot create '%s': %s", c->qemu_log, strerror(e));
	}

	pid = fork();
	if (pid < 0) {
		int e = errno;
		close(sp[0]);
		close(sp[1]);
		close(logfd);
		return cove_error_set(err, e, "fork failed: %s", strerror(e));
	}
	if (pid == 0) {
		int nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
		sigset_t none;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		setpgid(0, 0);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		for (int s = 1; s < NSIG; s++)
			signal(s, SIG_DFL);
		/* the guest's end must survive exec: clear its close-on-exec flag */
		fcntl(sp[1], F_SETFD, 0);
		dup2(nullfd, 0);
		dup2(logfd, 1);
		dup2(logfd, 2);
		execv(c->qemu, (char **)argv);
		dprintf(2, "cannot execute '%s': %s\n", c->qemu, strerror(errno));
		_exit(127);
	}
	close(sp[1]);
	close(logfd);
	ret->pid = pid;
	ret->ctl_fd = sp[0];
	ret->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	return 0;
}

int vm_wait(struct vm *vm, int timeout_ms, int *ret_status)
{
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ULL;
	int status;

	if (vm->pid <= 0)
		return 1;
	for (;;) {
		pid_t r = waitpid(vm->pid, &status, WNOHANG);
		if (r == vm->pid) {
			vm->pid = 0;
			vm->status = status;
			vm->reaped = true;
			if (ret_status)
				*ret_status = status;
			return 1;
		}
		if (r < 0 && errno != EINTR) {
			vm->pid = 0;
			return 1;
		}
		if (now_ns() >= deadline)
			return 0;
		if (vm->pidfd >= 0) {
			struct pollfd p = { .fd = vm->pidfd, .events = POLLIN };
			uint64_t left = (deadline - now_ns()) / 1000000ULL + 1;
			poll(&p, 1, (int)(left > 1000 ? 1000 : left));
		} else {
			usleep(5000);
		}
	}
}

void vm_kill(struct vm *vm)
{
	if (vm->pid > 0) {
		kill(vm->pid, SIGKILL);
		vm->killed = true;
		while (waitpid(vm->pid, &vm->status, 0) < 0 && errno == EINTR)
			;
		vm->pid = 0;
		vm->reaped = true;
	}
}

void vm_done(struct vm *vm)
{
	vm_kill(vm);
	closep(&vm->pidfd);
	closep(&vm->ctl_fd);
	vm->pidfd = vm->ctl_fd = -1;
}

/*
 * The most telling line of a log: the last one containing the first of prefer[] that occurs
 * (in order of preference), else the last non-empty line. Kernel timestamps are stripped.
 */
static int pick_line(const char *path, const char *const *prefer, size_t nprefer, char *buf,
		     size_t size)
{
	_cleanup_free_ char *s = NULL;
	const char *best = NULL, *last = NULL;
	size_t best_rank = nprefer, len;
	char *line, *next;

	if (read_file(path, 4u << 20, &s, &len) < 0)
		return -ENOENT;
	for (line = s; line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		line[strcspn(line, "\r")] = '\0';
		if (line[0] == '[') { /* "[    0.123456] " */
			char *end = strchr(line, ']');
			if (end && end[1] == ' ')
				line = end + 2;
		}
		if (!*line)
			continue;
		last = line;
		for (size_t i = 0; i < nprefer && i <= best_rank; i++) {
			if (strstr(line, prefer[i])) {
				best = line; /* same rank: the later line wins */
				best_rank = i;
				break;
			}
		}
	}
	if (!best)
		best = last;
	if (!best)
		return -ENOENT;
	str_copy(buf, size, best);
	return 0;
}

void vm_explain(const struct vm_config *c, const struct vm *vm, char *buf, size_t size)
{
	static const char *const qemu_prefer[] = { "KVM internal error", "error:", "qemu" };
	static const char *const boot_prefer[] = { "Kernel panic", "cove-init: fatal", "cove-init:" };
	char line[512];
	bool said = pick_line(c->qemu_log, qemu_prefer, ARRAY_SIZE(qemu_prefer), line,
			      sizeof(line)) == 0;

	if (vm && vm->reaped && !vm->killed && WIFSIGNALED(vm->status)) {
		if (said)
			str_printf(buf, size, "QEMU was killed by signal %d (%s); it said: %s",
				   WTERMSIG(vm->status), strsignal(WTERMSIG(vm->status)), line);
		else
			str_printf(buf, size, "QEMU was killed by signal %d (%s)",
				   WTERMSIG(vm->status), strsignal(WTERMSIG(vm->status)));
		return;
	}
	if (said) {
		str_printf(buf, size, "QEMU said: %s", line);
		return;
	}
	if (pick_line(c->boot_log, boot_prefer, ARRAY_SIZE(boot_prefer), line, sizeof(line)) == 0) {
		if (c->keep_logs)
			str_printf(buf, size, "guest console: %s (boot log: %s)", line, c->boot_log);
		else
			str_printf(buf, size, "guest console: %s", line);
		return;
	}
	str_printf(buf, size, "no output from QEMU or the guest");
}
