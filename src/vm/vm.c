/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "vm.h"
#include "qcow2.h"

#include "../proto/proto.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <grp.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>

#define QEMU_MAX_ARGS 256

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

/* ---- the logs: QEMU's console and stderr, drained by a thread into bounded files ---------- */

struct sink {
	const char *path;
	int fd;
	uint64_t size;
};

struct drain {
	int fds[2];         /* console socket, stderr pipe: our ends */
	struct sink sinks[2];
	char paths[2][4096];
};

static void sink_open(struct sink *k)
{
	k->fd = open(k->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	k->size = 0;
}

/* past VM_LOG_MAX, PATH becomes PATH.1 (replacing an older one) and PATH starts again */
static void sink_write(struct sink *k, const char *p, size_t n)
{
	if (k->fd < 0)
		return;
	if (k->size + n > VM_LOG_MAX) {
		char old[4200];

		if (str_printf(old, sizeof(old), "%s.1", k->path) == 0)
			(void)rename(k->path, old);
		closep(&k->fd);
		sink_open(k);
		if (k->fd < 0)
			return;
	}
	if (write_full(k->fd, p, n) == 0)
		k->size += n;
}

static void *drain_main(void *arg)
{
	struct drain *d = arg;
	char buf[65536];

	while (d->fds[0] >= 0 || d->fds[1] >= 0) {
		struct pollfd p[2] = { { .fd = d->fds[0], .events = POLLIN },
				       { .fd = d->fds[1], .events = POLLIN } };

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < 2; i++) {
			ssize_t n;

			if (d->fds[i] < 0 || !p[i].revents)
				continue;
			n = read(d->fds[i], buf, sizeof(buf));
			if (n > 0)
				sink_write(&d->sinks[i], buf, (size_t)n);
			else if (n == 0 || (errno != EINTR && errno != EAGAIN))
				closep(&d->fds[i]);
		}
	}
	for (int i = 0; i < 2; i++) {
		closep(&d->fds[i]);
		closep(&d->sinks[i].fd);
	}
	free(d);
	return NULL;
}

/* Takes con_fd and err_fd (closed on failure too). */
static int drain_start(struct vm *vm, const struct vm_config *c, int con_fd, int err_fd)
{
	struct drain *d = calloc(1, sizeof(*d));
	sigset_t all, old;
	int r;

	if (!d) {
		close(con_fd);
		close(err_fd);
		return -ENOMEM;
	}
	d->fds[0] = con_fd;
	d->fds[1] = err_fd;
	str_copy(d->paths[0], sizeof(d->paths[0]), c->boot_log);
	str_copy(d->paths[1], sizeof(d->paths[1]), c->qemu_log);
	for (int i = 0; i < 2; i++) {
		d->sinks[i].path = d->paths[i];
		sink_open(&d->sinks[i]);
	}
	/* the thread takes no signals: the supervisor's signalfd must see them all */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = -pthread_create(&vm->drain, NULL, drain_main, d);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0) {
		for (int i = 0; i < 2; i++) {
			closep(&d->fds[i]);
			closep(&d->sinks[i].fd);
		}
		free(d);
		return r;
	}
	vm->draining = true;
	return 0;
}

static void drain_join(struct vm *vm)
{
	if (vm->draining) {
		pthread_join(vm->drain, NULL);
		vm->draining = false;
	}
}

/* ---- confinement ------------------------------------------------------------------------- */

bool vm_confinable(void)
{
	const char *e = getenv("COVE_QEMU_CONFINE");

	return geteuid() == 0 && !(e && strcmp(e, "0") == 0);
}

/* A uid of QEMU's own: slot i of VM_UID_SLOTS, held by a lock on confine_dir/qemu-uid/i. */
static int take_uid(const char *dir, uid_t *ret_uid, int *ret_fd, struct cove_error *err)
{
	char d[4200], f[4300];
	unsigned first = (unsigned)getpid() % VM_UID_SLOTS;
	int r;

	if (str_printf(d, sizeof(d), "%s/qemu-uid", dir) < 0)
		return cove_error_set(err, ENAMETOOLONG, "'%s' is too long", dir);
	r = mkdir_p(d, 0700);
	if (r < 0)
		return cove_error_set(err, -r, "cannot create '%s': %s", d, strerror(-r));
	for (unsigned k = 0; k < VM_UID_SLOTS; k++) {
		unsigned slot = (first + k) % VM_UID_SLOTS;
		int fd;

		str_printf(f, sizeof(f), "%s/%u", d, slot);
		fd = open(f, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0)
			return cove_error_set(err, errno, "cannot create '%s': %s", f, strerror(errno));
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			*ret_uid = VM_UID_BASE + slot;
			*ret_fd = fd;
			return 0;
		}
		close(fd);
	}
	return cove_error_set(err, EAGAIN, "all %u uids for QEMU are in use", VM_UID_SLOTS);
}

/* The group that may open /dev/kvm, when others may not: a confined QEMU needs it. */
static gid_t kvm_group(void)
{
	struct stat st;

	if (stat("/dev/kvm", &st) < 0 || (st.st_mode & 0006) == 0006 || (st.st_mode & 0060) != 0060)
		return (gid_t)-1;
	return st.st_gid;
}

static void child_fail(const char *what)
{
	dprintf(2, "cove: cannot confine QEMU: %s: %s\n", what, strerror(errno));
	_exit(126);
}

/* bind src (a directory or a file) on dst, made here as what src is; read-only unless rw */
static void bind_at(const char *src, const char *dst, bool dir, bool need, bool rw)
{
	struct stat st;
	int fd;

	if (stat(src, &st) < 0) {
		if (need)
			child_fail(src);
		return;
	}
	if (dir ? mkdir(dst, 0755) < 0
		: ((fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0 || close(fd) < 0))
		child_fail(dst);
	if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0 ||
	    mount(NULL, dst, NULL,
		  MS_REMOUNT | MS_BIND | (rw ? 0 : MS_RDONLY) | MS_NOSUID | (rw ? MS_NODEV : 0),
		  NULL) < 0)
		child_fail(src);
}

static void bind_ro(const char *src, const char *dst, bool dir, bool need)
{
	bind_at(src, dst, dir, need, false);
}

/* The shares under /share/N of QEMU's root: a directory bound there, or a file alone in a
 * directory of its own; read-only ones on read-only mounts, so that not even QEMU can write. */
static void bind_shares(const struct vm_config *c)
{
	if (!c->nshares)
		return;
	if (mkdir("share", 0755) < 0)
		child_fail("share");
	for (size_t i = 0; i < c->nshares; i++) {
		const struct vm_share *sh = &c->shares[i];
		char dir[32], file[300];

		str_printf(dir, sizeof(dir), "share/%zu", i);
		if (!sh->file[0]) {
			bind_at(sh->path, dir, true, true, !sh->readonly);
			continue;
		}
		if (mkdir(dir, 0755) < 0)
			child_fail(dir);
		str_printf(file, sizeof(file), "%s/%s", dir, sh->file);
		bind_at(sh->path, file, false, true, !sh->readonly);
	}
}

/*
 * What serves a share may never leave a setuid bit on the host: a filter (on top of QEMU's own
 * sandbox) fails every chmod, create and mknod whose mode has S_ISUID with EPERM, and the calls
 * that could do the same out of its sight (openat2, fchmodat2, io_uring) with ENOSYS. A setgid
 * bit the kernel itself clears, since QEMU is in none of the groups a guest can give a file
 * (but its own). Device nodes need CAP_MKNOD, which QEMU never has.
 */
static int no_setuid_filter(void)
{
	static const struct {
		int nr, arg;
	} mode_calls[] = {
		{ 2 /* open */, 2 },   { 85 /* creat */, 1 },   { 90 /* chmod */, 1 },
		{ 91 /* fchmod */, 1 }, { 133 /* mknod */, 1 }, { 257 /* openat */, 3 },
		{ 259 /* mknodat */, 2 }, { 268 /* fchmodat */, 2 },
	};
	static const int nosys[] = { 425 /* io_uring_setup */, 437 /* openat2 */,
				     452 /* fchmodat2 */ };
	struct sock_filter f[64];
	size_t n = 0;
	struct sock_fprog prog;

#define STMT(c, k) (f[n++] = (struct sock_filter)BPF_STMT(c, k))
#define JUMP(c, k, t, e) (f[n++] = (struct sock_filter)BPF_JUMP(c, k, t, e))
	STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
	JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
	STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
	STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
	for (size_t i = 0; i < ARRAY_SIZE(nosys); i++) {
		JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nosys[i], 0, 1);
		STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);
	}
	for (size_t i = 0; i < ARRAY_SIZE(mode_calls); i++) {
		/* nr == call ? (mode & S_ISUID ? EPERM : allow) : next; the mode's low word */
		JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)mode_calls[i].nr, 0, 3);
		STMT(BPF_LD | BPF_W | BPF_ABS,
		     offsetof(struct seccomp_data, args) + 8 * (uint32_t)mode_calls[i].arg);
		JUMP(BPF_JMP | BPF_JSET | BPF_K, S_ISUID, 0, 1);
		STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
		/* not setuid (or another call): reload nr for the next comparison */
		STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
	}
	STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
#undef STMT
#undef JUMP
	prog = (struct sock_fprog){ .len = (unsigned short)n, .filter = f };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0 ? -errno : 0;
}

/* the capabilities a confined QEMU keeps to serve shares as the guest's root asks */
static const int share_caps[] = { CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER };

/* as root, before the change of uid: the bounding set cut to what is kept (nothing without
 * shares), and the permitted set kept across setresuid */
static void caps_prepare(bool shares)
{
	for (int cap = 0; cap <= CAP_LAST_CAP; cap++) {
		bool keep = false;

		for (size_t i = 0; shares && i < ARRAY_SIZE(share_caps); i++)
			keep |= share_caps[i] == cap;
		if (!keep && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			child_fail("dropping capabilities");
	}
	if (shares && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		child_fail("PR_SET_KEEPCAPS");
}

/* after it: the kept ones made ambient, so that QEMU has them after execve */
static void caps_raise(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = { 0 };

	for (size_t i = 0; i < ARRAY_SIZE(share_caps); i++) {
		d[share_caps[i] / 32].effective |= 1u << (share_caps[i] % 32);
		d[share_caps[i] / 32].permitted |= 1u << (share_caps[i] % 32);
		d[share_caps[i] / 32].inheritable |= 1u << (share_caps[i] % 32);
	}
	if (syscall(SYS_capset, &h, d) < 0)
		child_fail("capset");
	for (size_t i = 0; i < ARRAY_SIZE(share_caps); i++)
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, share_caps[i], 0, 0) < 0)
			child_fail("raising ambient capabilities");
}

/*
 * In the child, as root: a mount namespace whose root is a new, read-only tmpfs holding only
 * what QEMU needs (/usr read-only, the /lib and /bin links or directories, ld.so.cache, the
 * device nodes null, zero, random, urandom and kvm, its own /proc with the processes of other
 * users hidden), then uid uid. Everything else it uses is an open descriptor. The tmpfs is
 * mounted on dir (which exists) and made the root with pivot_root.
 */
static void confine(const struct vm_config *c, uid_t uid, gid_t kvm_gid)
{
	static const char *const links[] = { "bin", "sbin", "lib", "lib32", "lib64", "libx32" };
	static const char *const nodes[] = { "null", "zero", "random", "urandom", "kvm" };
	char src[64], target[256];

	if (unshare(CLONE_NEWNS) < 0)
		child_fail("unshare(CLONE_NEWNS)");
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
		child_fail("making / a slave mount");
	if (mount("cove-qemu", c->confine_dir, "tmpfs", MS_NOSUID | MS_NODEV,
		  "size=64k,nr_inodes=128,mode=0755") < 0 || chdir(c->confine_dir) < 0)
		child_fail(c->confine_dir);
	bind_ro("/usr", "usr", true, true);
	for (size_t i = 0; i < ARRAY_SIZE(links); i++) {
		struct stat st;
		ssize_t n;

		str_printf(src, sizeof(src), "/%s", links[i]);
		if (lstat(src, &st) < 0)
			continue;
		if (S_ISLNK(st.st_mode)) { /* merged /usr: lib -> usr/lib */
			n = readlink(src, target, sizeof(target) - 1);
			if (n < 0)
				child_fail(src);
			target[n] = '\0';
			if (symlink(target, links[i]) < 0)
				child_fail(links[i]);
		} else if (S_ISDIR(st.st_mode)) {
			bind_ro(src, links[i], true, true);
		}
	}
	if (mkdir("etc", 0755) < 0 || mkdir("dev", 0755) < 0 || mkdir("proc", 0555) < 0 ||
	    mkdir("old", 0700) < 0)
		child_fail("making the root");
	bind_ro("/etc/ld.so.cache", "etc/ld.so.cache", false, false);
	for (size_t i = 0; i < ARRAY_SIZE(nodes); i++) {
		char dst[32];

		if (strcmp(nodes[i], "kvm") == 0 && !c->kvm)
			continue;
		str_printf(src, sizeof(src), "/dev/%s", nodes[i]);
		str_printf(dst, sizeof(dst), "dev/%s", nodes[i]);
		bind_ro(src, dst, false, strcmp(nodes[i], "kvm") != 0);
	}
	if (symlink("/proc/self/fd", "dev/fd") < 0)
		child_fail("dev/fd");
	bind_shares(c);
	/* a proc of its own where the kernel allows (it may not, under some container runtimes);
	 * with the capabilities shares need, only its processes' part of it (no /proc/sys, no
	 * sysrq-trigger), and nothing less will do */
	if (c->nshares) {
		if (mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
			  "hidepid=invisible,subset=pid") < 0)
			child_fail("/proc (subset=pid, which sharing a directory needs)");
	} else if (mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
			 "hidepid=invisible") < 0 &&
		   mount("/proc", "proc", NULL, MS_BIND | MS_REC, NULL) < 0) {
		child_fail("/proc");
	}
	if (syscall(SYS_pivot_root, ".", "old") < 0)
		child_fail("pivot_root");
	if (chdir("/") < 0 || umount2("/old", MNT_DETACH) < 0 || rmdir("/old") < 0)
		child_fail("leaving the old root");
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
		child_fail("making the root read-only");
	if (kvm_gid != (gid_t)-1 ? setgroups(1, &kvm_gid) < 0 : setgroups(0, NULL) < 0)
		child_fail("setgroups");
	caps_prepare(c->nshares > 0);
	if (setresgid(uid, uid, uid) < 0)
		child_fail("setresgid");
	if (setresuid(uid, uid, uid) < 0)
		child_fail("setresuid");
	if (c->nshares)
		caps_raise();
}

/* ---- starting QEMU ----------------------------------------------------------------------- */

/* the descriptors QEMU inherits, at these numbers */
enum { FD_CTL = 3, FD_CON, FD_KERNEL, FD_INITRD, FD_DISK, FD_BACKING, FD_TAP,
       FD_VOL = FD_TAP + VM_MAX_NICS, FD_QMP = FD_VOL + VM_MAX_DISKS, FD_STATE,
       FD_MEM = VM_MEM_FD, FD_COUNT };
_Static_assert(FD_STATE < FD_MEM, "VM_MEM_FD collides");

/* a value for QEMU's option syntax, where a comma is written twice */
static int qemu_escape(char *buf, size_t size, const char *s)
{
	size_t n = 0;

	for (; *s; s++) {
		if (n + 3 > size)
			return -ENAMETOOLONG;
		if (*s == ',')
			buf[n++] = ',';
		buf[n++] = *s;
	}
	buf[n] = '\0';
	return 0;
}

static int open_ro(const char *path, const char *what, struct cove_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return cove_error_set(err, errno, "cannot open %s '%s': %s", what, path, strerror(errno));
	return fd;
}

int vm_start(const struct vm_config *c, struct vm *ret, struct cove_error *err)
{
	char mem[32], smp[32], append[512], chardev[64], con[64], kernel[32], initrd[32];
	char backing_path[1024] = "", blk_disk[256], blk_fmt[256], blk_back[256], blk_backfmt[256];
	char addfd_disk[32], addfd_back[32], netdev[VM_MAX_NICS][64], nic[VM_MAX_NICS][96];
	char (*fsdev)[4200] = NULL, dev9p[VM_MAX_SHARES][96], vaddfd[VM_MAX_DISKS][32];
	char vfile[VM_MAX_DISKS][160], vraw[VM_MAX_DISKS][96], vdev[VM_MAX_DISKS][96];
	char machine[96], memobj[160], qmpdev[64];
	const char *argv[QEMU_MAX_ARGS];
	int fds[FD_COUNT], sp[2] = { -1, -1 }, cp[2] = { -1, -1 }, ep[2] = { -1, -1 }, n = 0, r;
	int qp[2] = { -1, -1 };
	int uid_fd = -1, qemu_fd = -1;
	uid_t uid = geteuid();
	gid_t kvm_gid = (gid_t)-1;
	bool confined = c->confine_dir && vm_confinable();
	pid_t parent = getpid(), pid;

	for (int i = 0; i < FD_COUNT; i++)
		fds[i] = -1;
	if (access(c->kernel, R_OK) < 0)
		return cove_error_set(err, errno,
				      "guest kernel '%s' is missing: build it with kernel/build.sh "
				      "(or run scripts/setup.sh)",
				      c->kernel);
	if (access(c->initrd, R_OK) < 0)
		return cove_error_set(err, errno,
				      "guest initramfs '%s' is missing: rebuild cove (ninja -C build)",
				      c->initrd);

	/* QEMU opens the kernel and initramfs again through /proc/self/fd: as another uid it
	 * needs them readable by all (as a build or an install makes them) */
	if ((r = fds[FD_KERNEL] = open_ro(c->kernel, "guest kernel", err)) < 0 ||
	    (r = fds[FD_INITRD] = open_ro(c->initrd, "guest initramfs", err)) < 0)
		goto fail;
	if (confined) {
		struct stat sk, si;

		if (fstat(fds[FD_KERNEL], &sk) < 0 || fstat(fds[FD_INITRD], &si) < 0 ||
		    !(sk.st_mode & S_IROTH) || !(si.st_mode & S_IROTH)) {
			r = cove_error_set(err, EACCES,
					   "the guest kernel and initramfs must be readable by all "
					   "(chmod a+r '%s' '%s'), or set COVE_QEMU_CONFINE=0",
					   c->kernel, c->initrd);
			goto fail;
		}
	}
	if (c->disk) {
		fds[FD_DISK] = open(c->disk, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		if (fds[FD_DISK] < 0) {
			r = cove_error_set(err, errno, "cannot open the container's disk '%s': %s",
					   c->disk, strerror(errno));
			goto fail;
		}
		if (strcmp(c->disk_format, "qcow2") == 0) {
			if (qcow2_backing(fds[FD_DISK], backing_path, sizeof(backing_path)) < 0) {
				r = cove_error_set(err, EINVAL,
						   "the container's disk '%s' is damaged: remove the "
						   "container",
						   c->disk);
				goto fail;
			}
			if (backing_path[0]) {
				fds[FD_BACKING] = open(backing_path, O_RDONLY | O_CLOEXEC);
				if (fds[FD_BACKING] < 0) {
					r = cove_error_set(err, errno,
							   "the image under the container's disk "
							   "('%s') cannot be opened: %s",
							   backing_path, strerror(errno));
					goto fail;
				}
			}
		}
	}
	if (c->nshares > VM_MAX_SHARES || c->ndisks > VM_MAX_DISKS) {
		r = cove_error_set(err, E2BIG, "too many shares or disks for one VM");
		goto fail;
	}
	for (size_t i = 0; i < c->ndisks; i++) {
		if (c->disks[i].fd <= 0)
			continue;
		fds[FD_VOL + i] = fcntl(c->disks[i].fd, F_DUPFD_CLOEXEC, 3);
		if (fds[FD_VOL + i] < 0) {
			r = cove_error_set(err, errno, "cannot pass a volume's disk: %s",
					   strerror(errno));
			goto fail;
		}
	}
	if (c->nshares && !(fsdev = calloc(VM_MAX_SHARES, sizeof(*fsdev)))) {
		r = cove_error_set(err, ENOMEM, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < c->nshares; i++) {
		const struct vm_share *sh = &c->shares[i];
		char path[4200];

		/* confined, QEMU sees it at /share/N; else as it is (a file only confined) */
		if (confined)
			str_printf(path, sizeof(path), "/share/%zu", i);
		else if (sh->file[0] || qemu_escape(path, sizeof(path), sh->path) < 0) {
			r = cove_error_set(err, EINVAL, "cannot share '%s' with this QEMU", sh->path);
			goto fail;
		}
		/* passthrough: the guest's owners and modes are the host's (QEMU may chown as a
		 * confined root's QEMU); without root, none: files are the user's, modes kept */
		str_printf(fsdev[i], sizeof(fsdev[i]),
			   "local,id=fs%zu,path=%s,security_model=%s%s", i, path,
			   confined || geteuid() == 0 ? "passthrough" : "none",
			   sh->readonly ? ",readonly=on" : "");
		str_printf(dev9p[i], sizeof(dev9p[i]), "virtio-9p-device,fsdev=fs%zu,mount_tag=%s",
			   i, sh->tag);
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, cp) < 0 || pipe2(ep, O_CLOEXEC) < 0 ||
	    (c->qmp && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, qp) < 0)) {
		r = cove_error_set(err, errno, "cannot make QEMU's channels: %s", strerror(errno));
		goto fail;
	}
	fds[FD_CTL] = sp[1];
	fds[FD_CON] = cp[1];
	fds[FD_QMP] = qp[1];
	if ((c->mem_fd > 0 && (fds[FD_MEM] = fcntl(c->mem_fd, F_DUPFD_CLOEXEC, 3)) < 0) ||
	    (c->incoming_fd > 0 && (fds[FD_STATE] = fcntl(c->incoming_fd, F_DUPFD_CLOEXEC, 3)) < 0)) {
		r = cove_error_set(err, errno, "cannot pass QEMU a template: %s", strerror(errno));
		goto fail;
	}
	if (confined) {
		r = take_uid(c->confine_dir, &uid, &uid_fd, err);
		if (r < 0)
			goto fail;
		kvm_gid = kvm_group();
		/* executed through a descriptor: it need not be under QEMU's new root */
		qemu_fd = open(c->qemu, O_PATH | O_CLOEXEC);
		if (qemu_fd < 0) {
			r = cove_error_set(err, errno, "cannot open QEMU '%s': %s", c->qemu,
					   strerror(errno));
			goto fail;
		}
	}

	str_printf(mem, sizeof(mem), "%lluM", (unsigned long long)(c->memory >> 20));
	str_printf(smp, sizeof(smp), "%u", c->cpus);
	str_printf(append, sizeof(append), "console=ttyS0 quiet panic=-1 rdinit=/init%s",
		   getenv("COVE_DEBUG") ? " cove.debug" : "");
	if (!c->kvm && c->tsc_khz) {
		size_t len = strlen(append);
		str_printf(append + len, sizeof(append) - len, " tsc_early_khz=%llu",
			   (unsigned long long)c->tsc_khz);
	}
	str_printf(chardev, sizeof(chardev), "socket,id=c0,fd=%d", FD_CTL);
	str_printf(con, sizeof(con), "socket,id=con0,fd=%d", FD_CON);
	str_printf(kernel, sizeof(kernel), "/proc/self/fd/%d", FD_KERNEL);
	str_printf(initrd, sizeof(initrd), "/proc/self/fd/%d", FD_INITRD);

	argv[n++] = c->qemu;
	argv[n++] = "-M";
	/*
	 * Guest RAM stays anonymous memory (transparent huge pages) on a cold boot: a memfd
	 * backend saved ~7 MiB of an idle guest's ~100 MiB but cost ~70 ms per boot under TCG
	 * here. A template's RAM is a memfd: shared while it is made, then mapped private by
	 * every VM restored from it, so that they share the pages none of them wrote.
	 */
	str_printf(machine, sizeof(machine), "microvm,x-option-roms=off%s",
		   c->mem_fd > 0 ? ",memory-backend=mem" : "");
	argv[n++] = machine;
	if (c->mem_fd > 0) {
		str_printf(memobj, sizeof(memobj),
			   "memory-backend-file,id=mem,size=%lluM,mem-path=/proc/self/fd/%d,share=%s",
			   (unsigned long long)(c->memory >> 20), FD_MEM, c->mem_share ? "on" : "off");
		argv[n++] = "-object";
		argv[n++] = memobj;
	}
	argv[n++] = "-accel";
	/* a small translation cache: an idle guest runs little code, and the default reserves
	 * (and, as it fills, pays for) far more. A restored guest skips the boot, whose code
	 * fills 32 MiB: 16 MiB cost it no time here, and 8 MiB ~100 ms a start */
	argv[n++] = c->kvm ? "kvm" : c->incoming_fd > 0 ? "tcg,tb-size=16" : "tcg,tb-size=32";
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
	argv[n++] = kernel;
	argv[n++] = "-initrd";
	argv[n++] = initrd;
	argv[n++] = "-append";
	argv[n++] = append;
	if (c->disk) {
		/* the disks are QEMU's only through the descriptors we opened (-add-fd); the
		 * backing image is named here, not taken from the overlay's header.
		 * cache=writeback: the host's page cache, no O_DIRECT, and every flush of the
		 * guest's (an fsync in the container) is an fdatasync of the image before it
		 * completes, so what a container committed survives the host's crash. Not for a
		 * disk that goes with the run: nothing of it is to survive, and a fresh overlay's
		 * first writes (qcow2 orders its metadata with flushes) cost ~14 fdatasyncs. */
		const char *cache = c->disk_scratch ? "cache.direct=off,cache.no-flush=on"
						    : "cache.direct=off,cache.no-flush=off";
		bool qcow2 = strcmp(c->disk_format, "qcow2") == 0;

		argv[n++] = "-add-fd";
		str_printf(addfd_disk, sizeof(addfd_disk), "fd=%d,set=%d", FD_DISK, FD_DISK);
		argv[n++] = addfd_disk;
		str_printf(blk_disk, sizeof(blk_disk),
			   "driver=file,node-name=d0f,filename=/dev/fdset/%d,%s", FD_DISK, cache);
		argv[n++] = "-blockdev";
		argv[n++] = blk_disk;
		if (fds[FD_BACKING] >= 0) {
			argv[n++] = "-add-fd";
			str_printf(addfd_back, sizeof(addfd_back), "fd=%d,set=%d", FD_BACKING,
				   FD_BACKING);
			argv[n++] = addfd_back;
			str_printf(blk_back, sizeof(blk_back),
				   "driver=file,node-name=b0f,filename=/dev/fdset/%d,read-only=on,%s",
				   FD_BACKING, cache);
			argv[n++] = "-blockdev";
			argv[n++] = blk_back;
			str_printf(blk_backfmt, sizeof(blk_backfmt),
				   "driver=raw,node-name=b0,file=b0f,read-only=on");
			argv[n++] = "-blockdev";
			argv[n++] = blk_backfmt;
		}
		str_printf(blk_fmt, sizeof(blk_fmt), "driver=%s,node-name=d0,file=d0f%s,%s",
			   qcow2 ? "qcow2" : "raw",
			   qcow2 ? (fds[FD_BACKING] >= 0 ? ",backing=b0" : ",backing=null") : "",
			   cache);
		argv[n++] = "-blockdev";
		argv[n++] = blk_fmt;
		argv[n++] = "-device";
		argv[n++] = "virtio-blk-device,drive=d0";
	} else if (c->blank_disk) {
		/* a template's: the same device, on zeros (the guest reads its partition table) */
		str_printf(blk_disk, sizeof(blk_disk),
			   "driver=null-co,node-name=d0,size=%llu,read-zeroes=on",
			   (unsigned long long)c->blank_disk);
		argv[n++] = "-blockdev";
		argv[n++] = blk_disk;
		argv[n++] = "-device";
		argv[n++] = "virtio-blk-device,drive=d0";
	}
	for (size_t i = 0; i < c->nics && i < VM_MAX_NICS; i++) {
		const uint8_t *m = c->macs[i];
		uint8_t tm[6];

		if (c->blank_nics) {
			/* a template's: on a hub of its own, which goes nowhere */
			proto_template_mac((unsigned)i, tm);
			m = tm;
			str_printf(netdev[i], sizeof(netdev[i]), "hubport,id=n%zu,hubid=%zu", i, i);
		} else if (c->tap_fds[i] > 0) {
			/* a dup of the caller's tap, which outlives this QEMU (a TCG re-boot) */
			fds[FD_TAP + i] = fcntl(c->tap_fds[i], F_DUPFD_CLOEXEC, 3);
			if (fds[FD_TAP + i] < 0) {
				r = cove_error_set(err, errno, "cannot pass the tap: %s",
						   strerror(errno));
				goto fail;
			}
			str_printf(netdev[i], sizeof(netdev[i]), "tap,id=n%zu,fd=%d,vhost=off", i,
				   FD_TAP + (int)i);
		} else if (i != 0 || !c->user_net) {
			continue;
		}
		str_printf(nic[i], sizeof(nic[i]),
			   "virtio-net-device,netdev=n%zu,mac=%02x:%02x:%02x:%02x:%02x:%02x", i, m[0],
			   m[1], m[2], m[3], m[4], m[5]);
		argv[n++] = "-netdev";
		argv[n++] = c->blank_nics || c->tap_fds[i] > 0 ? netdev[i] : c->user_net;
		argv[n++] = "-device";
		argv[n++] = nic[i];
	}
	for (size_t i = 0; i < c->ndisks; i++) {
		/* a block volume: flushes honoured as on the root disk */
		const char *ro = c->disks[i].readonly ? ",read-only=on" : "";

		str_printf(vaddfd[i], sizeof(vaddfd[i]), "fd=%zu,set=%zu", FD_VOL + i, FD_VOL + i);
		str_printf(vfile[i], sizeof(vfile[i]),
			   "driver=file,node-name=v%zuf,filename=/dev/fdset/%zu,"
			   "cache.direct=off,cache.no-flush=off%s",
			   i, FD_VOL + i, ro);
		str_printf(vraw[i], sizeof(vraw[i]), "driver=raw,node-name=v%zu,file=v%zuf%s", i, i,
			   ro);
		str_printf(vdev[i], sizeof(vdev[i]), "virtio-blk-device,drive=v%zu,serial=%s", i,
			   c->disks[i].serial);
		if (c->disks[i].fd <= 0) { /* a template's: the same device, on zeros */
			str_printf(vraw[i], sizeof(vraw[i]),
				   "driver=null-co,node-name=v%zu,size=%llu,read-zeroes=on%s", i,
				   (unsigned long long)c->disks[i].blank, ro);
		} else {
			argv[n++] = "-add-fd";
			argv[n++] = vaddfd[i];
			argv[n++] = "-blockdev";
			argv[n++] = vfile[i];
		}
		argv[n++] = "-blockdev";
		argv[n++] = vraw[i];
		argv[n++] = "-device";
		argv[n++] = vdev[i];
	}
	for (size_t i = 0; i < c->nshares; i++) {
		argv[n++] = "-fsdev";
		argv[n++] = fsdev[i];
		argv[n++] = "-device";
		argv[n++] = dev9p[i];
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
	if (c->qmp) {
		str_printf(qmpdev, sizeof(qmpdev), "socket,id=qmp,fd=%d", FD_QMP);
		argv[n++] = "-chardev";
		argv[n++] = qmpdev;
		argv[n++] = "-mon";
		argv[n++] = "chardev=qmp,mode=control";
	}
	if (c->incoming_fd > 0) {
		argv[n++] = "-incoming";
		argv[n++] = "defer";
	}
	argv[n] = NULL;

	pid = fork();
	if (pid < 0) {
		r = cove_error_set(err, errno, "fork failed: %s", strerror(errno));
		goto fail;
	}
	if (pid == 0) {
		int nullfd = open("/dev/null", O_RDWR | O_CLOEXEC), tmp[FD_COUNT];
		sigset_t none;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		setpgid(0, 0);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		for (int s = 1; s < NSIG; s++)
			signal(s, SIG_DFL);
		/* out of the way first (QEMU's own descriptor too, which a number below may
		 * take), then each at its number, open across exec */
		if (qemu_fd >= 0 && (qemu_fd = fcntl(qemu_fd, F_DUPFD_CLOEXEC, 64)) < 0)
			_exit(126);
		for (int i = FD_CTL; i < FD_COUNT; i++)
			tmp[i] = fds[i] >= 0 ? fcntl(fds[i], F_DUPFD_CLOEXEC, 64) : -1;
		dup2(nullfd, 0);
		dup2(ep[1], 1);
		dup2(ep[1], 2);
		for (int i = FD_CTL; i < FD_COUNT; i++)
			if (tmp[i] >= 0 && dup2(tmp[i], i) < 0)
				_exit(126);
		if (confined) {
			confine(c, uid, kvm_gid);
			/* a change of uid clears the parent-death signal */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)
				_exit(1);
			if (c->nshares && no_setuid_filter() < 0)
				child_fail("seccomp");
			syscall(SYS_execveat, qemu_fd, "", argv, environ, AT_EMPTY_PATH);
		} else {
			if (c->nshares && no_setuid_filter() < 0)
				child_fail("seccomp");
			execv(c->qemu, (char **)argv);
		}
		dprintf(2, "cannot execute '%s': %s\n", c->qemu, strerror(errno));
		_exit(127);
	}
	for (int i = FD_CON; i < FD_COUNT; i++)
		closep(&fds[i]);
	closep(&sp[1]);
	closep(&ep[1]);
	closep(&qemu_fd);
	free(fsdev);
	*ret = VM_INIT;
	ret->pid = pid;
	ret->ctl_fd = sp[0];
	ret->qmp_fd = qp[0];
	ret->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	ret->uid = uid;
	ret->uid_lock_fd = uid_fd;
	if (drain_start(ret, c, cp[0], ep[0]) < 0) {
		/* without the logs QEMU would block on its console: stop it */
		vm_done(ret);
		return cove_error_set(err, ENOMEM, "cannot start the VM's log thread");
	}
	return 0;

fail:
	for (int i = FD_CON; i < FD_COUNT; i++)
		closep(&fds[i]);
	closep(&qp[0]);
	closep(&sp[0]);
	closep(&sp[1]);
	closep(&cp[0]);
	closep(&ep[0]);
	closep(&ep[1]);
	closep(&uid_fd);
	closep(&qemu_fd);
	free(fsdev);
	return r;
}

/* ---- QMP: the few commands templates need ------------------------------------------------ */

/*
 * Send one command (a JSON object) with fd (> 0) attached, and wait until deadline for its
 * answer, skipping the greeting and events: 0 with the "return" line in buf, -EIO with the
 * error's "desc" in buf, -ETIMEDOUT, or -EPIPE when QEMU went away.
 */
static int qmp_call(struct vm *vm, const char *cmd, int fd, uint64_t deadline, char *buf,
		    size_t size)
{
	char in[8192];
	size_t len = 0;
	struct iovec iov = { .iov_base = (void *)cmd, .iov_len = strlen(cmd) };
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (fd > 0) {
		struct cmsghdr *cm;

		msg.msg_control = u.b;
		msg.msg_controllen = sizeof(u.b);
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	if (cmd[0] && sendmsg(vm->qmp_fd, &msg, MSG_NOSIGNAL) != (ssize_t)iov.iov_len)
		return -EPIPE;
	for (;;) {
		char *nl;
		ssize_t got;
		uint64_t now = now_ns();
		struct pollfd p = { .fd = vm->qmp_fd, .events = POLLIN };

		while ((nl = memchr(in, '\n', len))) {
			size_t line = (size_t)(nl - in) + 1;
			bool ret, error, hello;

			/* an answer's first key is "return" or "error"; an event's, "timestamp" */
			*nl = '\0';
			ret = strncmp(in, "{\"return\"", 9) == 0;
			error = strncmp(in, "{\"error\"", 8) == 0;
			hello = strncmp(in, "{\"QMP\"", 6) == 0;
			if (error) {
				const char *d = strstr(in, "\"desc\": \"");
				str_copy(buf, size, d ? d + 9 : in);
				buf[strcspn(buf, "\"")] = '\0';
				return -EIO;
			}
			if (ret || (hello && !cmd[0])) {
				str_copy(buf, size, in);
				return 0;
			}
			memmove(in, in + line, len - line);
			len -= line;
		}
		if (len == sizeof(in))
			len = 0; /* an event too long to care about */
		if (now >= deadline)
			return -ETIMEDOUT;
		if (poll(&p, 1, (int)((deadline - now) / 1000000ULL) + 1) < 0 && errno != EINTR)
			return -errno;
		if (!p.revents)
			continue;
		got = read(vm->qmp_fd, in + len, sizeof(in) - len);
		if (got == 0)
			return -EPIPE;
		if (got < 0 && errno != EINTR && errno != EAGAIN)
			return -errno;
		if (got > 0)
			len += (size_t)got;
	}
}

/* the greeting, then capabilities negotiation */
static int qmp_open(struct vm *vm, uint64_t deadline, char *buf, size_t size)
{
	int r = qmp_call(vm, "", 0, deadline, buf, size);

	return r < 0 ? r : qmp_call(vm, "{\"execute\":\"qmp_capabilities\"}\n", 0, deadline, buf, size);
}

/* Why QEMU stopped answering: its own words when it has exited. */
static int qmp_failed(struct vm *vm, const struct vm_config *c, int r, const char *what,
		      const char *said, struct cove_error *err)
{
	char why[512];

	if (r == -EIO)
		str_copy(why, sizeof(why), said);
	else if (r == -ETIMEDOUT)
		str_copy(why, sizeof(why), "QEMU did not answer in time");
	else {
		vm_wait(vm, 1000, NULL);
		vm_explain(c, vm, why, sizeof(why));
	}
	vm_kill(vm);
	return cove_error_set(err, r == -ETIMEDOUT ? ETIMEDOUT : EIO, "%s: %s", what, why);
}

/* the greeting, capabilities, and x-ignore-shared: RAM is a template's, never in the stream */
static int qmp_begin(struct vm *vm, uint64_t deadline, char *said, size_t size)
{
	int r = qmp_open(vm, deadline, said, size);

	return r < 0 ? r
		     : qmp_call(vm,
				"{\"execute\":\"migrate-set-capabilities\",\"arguments\":{"
				"\"capabilities\":[{\"capability\":\"x-ignore-shared\","
				"\"state\":true}]}}\n",
				0, deadline, said, size);
}

/* ask cmd until its "status" is done (0); -EIO once it is not pending (NULL: once it failed
 * or was cancelled) */
static int qmp_poll(struct vm *vm, const char *cmd, const char *done, const char *pending,
		    uint64_t deadline, char *said, size_t size)
{
	char want[64];

	for (;;) {
		int r = qmp_call(vm, cmd, 0, deadline, said, size);

		if (r < 0)
			return r;
		str_printf(want, sizeof(want), "\"status\": \"%s\"", done);
		if (strstr(said, want))
			return 0;
		str_printf(want, sizeof(want), "\"status\": \"%s\"", pending ? pending : "");
		if (pending ? !strstr(said, want)
			    : strstr(said, "\"status\": \"failed\"") ||
				      strstr(said, "\"status\": \"cancelled\""))
			return -EIO;
		usleep(1000);
	}
}

int vm_restore(struct vm *vm, const struct vm_config *c, int timeout_ms, struct cove_error *err)
{
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ULL;
	char cmd[128], said[512];
	int r;

	str_printf(cmd, sizeof(cmd),
		   "{\"execute\":\"migrate-incoming\",\"arguments\":{\"uri\":\"fd:%d\"}}\n",
		   FD_STATE);
	/* the state loads, then the VM runs by itself (its template was saved running) */
	if ((r = qmp_begin(vm, deadline, said, sizeof(said))) < 0 ||
	    (r = qmp_call(vm, cmd, 0, deadline, said, sizeof(said))) < 0 ||
	    (r = qmp_poll(vm, "{\"execute\":\"query-status\"}\n", "running", "inmigrate",
			  deadline, said, sizeof(said))) < 0)
		return qmp_failed(vm, c, r, "cannot restore the VM", said, err);
	return 0;
}

int vm_save(struct vm *vm, const struct vm_config *c, int state_fd, int timeout_ms,
	    struct cove_error *err)
{
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ULL;
	char said[512];
	int r;

	if ((r = qmp_begin(vm, deadline, said, sizeof(said))) < 0 ||
	    (r = qmp_call(vm, "{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"state\"}}\n",
			  state_fd, deadline, said, sizeof(said))) < 0 ||
	    (r = qmp_call(vm, "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"fd:state\"}}\n",
			  0, deadline, said, sizeof(said))) < 0 ||
	    (r = qmp_poll(vm, "{\"execute\":\"query-migrate\"}\n", "completed", NULL, deadline,
			  said, sizeof(said))) < 0)
		return qmp_failed(vm, c, r, "cannot save the VM", said, err);
	(void)qmp_call(vm, "{\"execute\":\"quit\"}\n", 0, deadline, said, sizeof(said));
	if (vm_wait(vm, timeout_ms, NULL) == 0)
		vm_kill(vm);
	return 0;
}

bool vm_await_hello(struct vm *vm, uint64_t deadline, uint32_t *ret_version, bool *ret_exited)
{
	struct proto_reader rd;
	bool hello = false, exited = false;

	fd_set_nonblock(vm->ctl_fd, true);
	proto_reader_init(&rd);
	while (!hello && !exited) {
		struct pollfd p[2] = { { .fd = vm->ctl_fd, .events = POLLIN },
				       { .fd = vm->pidfd, .events = POLLIN } };
		uint64_t now = now_ns();
		struct proto_hdr h;
		const uint8_t *payload;
		ssize_t n;

		if (now >= deadline)
			break;
		/* without a pidfd, look at QEMU every 50 ms */
		if (poll(p, 2, vm->pidfd >= 0 ? (int)((deadline - now) / 1000000ULL) + 1 : 50) < 0 &&
		    errno != EINTR)
			break;
		n = proto_reader_read(&rd, vm->ctl_fd);
		if (n > 0 && proto_reader_next(&rd, &h, &payload) > 0) {
			struct proto_hello m = { 0 };

			hello = h.type == PROTO_HELLO; /* anything else: wait for QEMU's end */
			if (hello && ret_version)
				*ret_version = proto_get_hello(payload, h.len, &m) == 0 ? m.version : 0;
			proto_hello_done(&m);
		}
		if (n == 0) /* the channel closed: QEMU is going */
			exited = vm_wait(vm, (int)((deadline - now) / 1000000ULL) + 1, NULL) == 1;
		else if (!hello && vm_wait(vm, 0, NULL) == 1)
			exited = true;
		if (n == 0 && !exited)
			break;
	}
	proto_reader_done(&rd);
	if (ret_exited)
		*ret_exited = exited;
	return hello;
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
			drain_join(vm);
			return 1;
		}
		if (r < 0 && errno != EINTR) {
			vm->pid = 0;
			drain_join(vm);
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
	drain_join(vm);
}

void vm_done(struct vm *vm)
{
	vm_kill(vm);
	closep(&vm->pidfd);
	closep(&vm->ctl_fd);
	closep(&vm->uid_lock_fd);
	closep(&vm->qmp_fd);
	vm->pidfd = vm->ctl_fd = vm->uid_lock_fd = -1;
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
