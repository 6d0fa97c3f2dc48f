/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Defence in depth for the container process (docker's defaults are the reference): masked and
 * read-only /proc and /sys paths, rlimits, capabilities, no_new_privs and a seccomp filter.
 *
 * cove-init is static musl with no kernel headers, so the few kernel structures used here
 * (capset's header and data, classic BPF, seccomp_data) are defined below.
 *
 * The seccomp filter is docker's default profile (moby profiles/seccomp/default.json) for
 * x86_64: an allow-list; anything else fails with EPERM. Syscalls that the profile allows only
 * with a capability are allowed when that capability is in the container's set. Syscall numbers
 * above the newest one the profile knows fail with ENOSYS instead, so that libc falls back to an
 * older call as it does on an older kernel. Non-x86_64 ABIs (i386, x32) fail with EPERM.
 */
#define _GNU_SOURCE
#include "security.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../proto/caps.h"
#include "../util/util.h"

#ifndef __x86_64__
#error "the seccomp filter knows the x86_64 syscall table only"
#endif

/* ------------------------------------------------------------------ /proc and /sys */

/* docker's masked and read-only paths: proto/caps.c, shared with the host's config.json */

static int fail(char *msg, size_t msg_size, int err, const char *what, const char *path)
{
	if (path)
		str_printf(msg, msg_size, "%s '%s': %s", what, path, strerror(err));
	else
		str_printf(msg, msg_size, "%s: %s", what, strerror(err));
	return -err;
}

/* A missing path is not an error: what the kernel does not have needs no hiding. */
static int mask_path(const char *path, char *msg, size_t msg_size)
{
	struct stat st;
	int r;

	if (stat(path, &st) < 0)
		return errno == ENOENT ? 0 : fail(msg, msg_size, errno, "cannot mask", path);
	if (S_ISDIR(st.st_mode))
		r = mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
			  "mode=0555");
	else
		r = mount("/dev/null", path, NULL, MS_BIND, NULL);
	if (r < 0)
		return errno == ENOENT ? 0 : fail(msg, msg_size, errno, "cannot mask", path);
	return 0;
}

static int readonly_path(const char *path, char *msg, size_t msg_size)
{
	unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY;
	struct statvfs sv;

	if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0)
		return errno == ENOENT ? 0 : fail(msg, msg_size, errno, "cannot bind", path);
	/* a bind remount replaces the per-mount flags: keep what the mount had */
	if (statvfs(path, &sv) < 0)
		return fail(msg, msg_size, errno, "cannot stat", path);
	if (sv.f_flag & ST_NOSUID)
		flags |= MS_NOSUID;
	if (sv.f_flag & ST_NODEV)
		flags |= MS_NODEV;
	if (sv.f_flag & ST_NOEXEC)
		flags |= MS_NOEXEC;
	if (sv.f_flag & ST_NOATIME)
		flags |= MS_NOATIME;
	if (sv.f_flag & ST_NODIRATIME)
		flags |= MS_NODIRATIME;
	if (sv.f_flag & ST_RELATIME)
		flags |= MS_RELATIME;
	if (mount(path, path, NULL, flags, NULL) < 0)
		return fail(msg, msg_size, errno, "cannot make read-only", path);
	return 0;
}

/* docker also masks each CPU's thermal_throttle (a side channel on real hardware) */
static int mask_thermal_throttle(char *msg, size_t msg_size)
{
	_cleanup_(closedirp) DIR *d = opendir("/sys/devices/system/cpu");
	struct dirent *e;
	char path[256];
	int r;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		const char *p = e->d_name;

		if (strncmp(p, "cpu", 3) != 0 || !p[3] || strspn(p + 3, "0123456789") != strlen(p + 3))
			continue;
		if (str_printf(path, sizeof(path), "/sys/devices/system/cpu/%s/thermal_throttle", p) < 0)
			continue;
		r = mask_path(path, msg, msg_size);
		if (r < 0)
			return r;
	}
	return 0;
}

int security_mask_paths(char *msg, size_t msg_size)
{
	int r;

	for (size_t i = 0; i < proto_n_masked_paths; i++) {
		r = mask_path(proto_masked_paths[i], msg, msg_size);
		if (r < 0)
			return r;
	}
	r = mask_thermal_throttle(msg, msg_size);
	if (r < 0)
		return r;
	for (size_t i = 0; i < proto_n_readonly_paths; i++) {
		r = readonly_path(proto_readonly_paths[i], msg, msg_size);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ------------------------------------------------------------------ rlimits */

/* docker's --ulimit names, by RLIMIT_* number */
static const char *const rlimit_names[] = {
	"cpu",  "fsize",  "data",       "stack",    "core", "rss",    "nproc",  "nofile",
	"memlock", "as", "locks", "sigpending", "msgqueue", "nice", "rtprio", "rttime",
};

static void rlimit_value(uint64_t v, char *buf, size_t size)
{
	if (v == UINT64_MAX)
		str_copy(buf, size, "unlimited");
	else
		str_printf(buf, size, "%llu", (unsigned long long)v);
}

int security_set_rlimits(const struct proto_start *m, char *msg, size_t msg_size)
{
	for (uint32_t i = 0; i < m->nrlimits; i++) {
		const struct proto_rlimit *l = &m->rlimits[i];
		struct rlimit rl = {
			.rlim_cur = l->soft == UINT64_MAX ? RLIM_INFINITY : (rlim_t)l->soft,
			.rlim_max = l->hard == UINT64_MAX ? RLIM_INFINITY : (rlim_t)l->hard,
		};
		char soft[24], hard[24];
		int e;

		if (l->resource >= ARRAY_SIZE(rlimit_names) || l->soft > l->hard) {
			str_printf(msg, msg_size, "invalid rlimit %u", l->resource);
			return -EINVAL;
		}
		if (setrlimit((int)l->resource, &rl) == 0)
			continue;
		e = errno;
		rlimit_value(l->soft, soft, sizeof(soft));
		rlimit_value(l->hard, hard, sizeof(hard));
		str_printf(msg, msg_size, "cannot set ulimit %s=%s:%s: %s", rlimit_names[l->resource],
			   soft, hard, strerror(e));
		return -e;
	}
	return 0;
}

/* ------------------------------------------------------------------ capabilities */

/* linux/capability.h */
#define CAPS_VERSION_3 0x20080522
struct caps_header {
	uint32_t version;
	int pid;
};
struct caps_data {
	uint32_t effective;
	uint32_t permitted;
	uint32_t inheritable;
};

enum {
	CAPN_DAC_READ_SEARCH = 2,
	CAPN_SYS_MODULE = 16,
	CAPN_SYS_RAWIO = 17,
	CAPN_SYS_CHROOT = 18,
	CAPN_SYS_PTRACE = 19,
	CAPN_SYS_PACCT = 20,
	CAPN_SYS_ADMIN = 21,
	CAPN_SYS_BOOT = 22,
	CAPN_SYS_NICE = 23,
	CAPN_SYS_TIME = 25,
	CAPN_SYS_TTY_CONFIG = 26,
	CAPN_SYSLOG = 34,
	CAPN_PERFMON = 38,
	CAPN_BPF = 39,
};

#define CAP_BIT(n) (UINT64_C(1) << (n))

int security_before_user(const struct proto_start *m, char *msg, size_t msg_size)
{
	/* every capability the kernel knows but the container does not get; the kernel says
	 * EINVAL past its last one (/proc/sys/kernel/cap_last_cap) */
	for (unsigned cap = 0; cap < 64; cap++) {
		if (cap <= CAPS_LAST && (m->caps & CAP_BIT(cap)))
			continue;
		if (prctl(PR_CAPBSET_DROP, (unsigned long)cap, 0UL, 0UL, 0UL) == 0)
			continue;
		if (errno == EINVAL)
			break;
		str_printf(msg, msg_size, "cannot drop capability %u from the bounding set: %s", cap,
			   strerror(errno));
		return -errno;
	}
	if (prctl(PR_SET_KEEPCAPS, 1UL, 0UL, 0UL, 0UL) < 0)
		return fail(msg, msg_size, errno, "cannot keep capabilities across setuid", NULL);
	return 0;
}

/* ------------------------------------------------------------------ seccomp */

/* linux/seccomp.h, linux/filter.h, linux/audit.h */
#ifndef PR_SET_SECCOMP
#define PR_SET_SECCOMP 22
#endif
#define SECCOMP_MODE_FILTER_ 2
#define SECCOMP_RET_ALLOW_ 0x7fff0000U
#define SECCOMP_RET_ERRNO_ 0x00050000U
#define AUDIT_ARCH_X86_64_ 0xc000003eU /* EM_X86_64 | 64-bit | little-endian */
#define X32_SYSCALL_BIT 0x40000000U
#define BPF_MAXINSNS_ 4096

/* struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6] */
#define DATA_NR 0
#define DATA_ARCH 4
#define DATA_ARG0_LO 16 /* little-endian: the low 32 bits of args[0] */

/* classic BPF opcodes used here */
enum {
	OP_LD_ABS = 0x20, /* BPF_LD | BPF_W | BPF_ABS */
	OP_JA = 0x05,     /* BPF_JMP | BPF_JA */
	OP_JEQ = 0x15,    /* BPF_JMP | BPF_JEQ | BPF_K */
	OP_JGE = 0x35,    /* BPF_JMP | BPF_JGE | BPF_K */
	OP_JSET = 0x45,   /* BPF_JMP | BPF_JSET | BPF_K */
	OP_RET = 0x06,    /* BPF_RET | BPF_K */
};

struct bpf_insn_ {
	uint16_t code;
	uint8_t jt;
	uint8_t jf;
	uint32_t k;
};

struct bpf_prog_ {
	unsigned short len;
	struct bpf_insn_ *insns;
};

/* x86_64 numbers newer than some libc headers (musl 1.2.3 stops at 446) */
#ifndef SYS_uretprobe
#define SYS_uretprobe 335
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_fsopen
#define SYS_fsopen 430
#endif
#ifndef SYS_fsconfig
#define SYS_fsconfig 431
#endif
#ifndef SYS_fsmount
#define SYS_fsmount 432
#endif
#ifndef SYS_fspick
#define SYS_fspick 433
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#ifndef SYS_faccessat2
#define SYS_faccessat2 439
#endif
#ifndef SYS_process_madvise
#define SYS_process_madvise 440
#endif
#ifndef SYS_epoll_pwait2
#define SYS_epoll_pwait2 441
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef SYS_quotactl_fd
#define SYS_quotactl_fd 443
#endif
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#endif
#ifndef SYS_landlock_add_rule
#define SYS_landlock_add_rule 445
#endif
#ifndef SYS_landlock_restrict_self
#define SYS_landlock_restrict_self 446
#endif
#ifndef SYS_memfd_secret
#define SYS_memfd_secret 447
#endif
#ifndef SYS_process_mrelease
#define SYS_process_mrelease 448
#endif
#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif
#ifndef SYS_set_mempolicy_home_node
#define SYS_set_mempolicy_home_node 450
#endif
#ifndef SYS_cachestat
#define SYS_cachestat 451
#endif
#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
#ifndef SYS_map_shadow_stack
#define SYS_map_shadow_stack 453
#endif
#ifndef SYS_futex_wake
#define SYS_futex_wake 454
#endif
#ifndef SYS_futex_wait
#define SYS_futex_wait 455
#endif
#ifndef SYS_futex_requeue
#define SYS_futex_requeue 456
#endif
#ifndef SYS_statmount
#define SYS_statmount 457
#endif
#ifndef SYS_listmount
#define SYS_listmount 458
#endif
#ifndef SYS_lsm_get_self_attr
#define SYS_lsm_get_self_attr 459
#endif
#ifndef SYS_lsm_set_self_attr
#define SYS_lsm_set_self_attr 460
#endif
#ifndef SYS_lsm_list_modules
#define SYS_lsm_list_modules 461
#endif
#ifndef SYS_mseal
#define SYS_mseal 462
#endif
#ifndef SYS_setxattrat
#define SYS_setxattrat 463
#endif
#ifndef SYS_getxattrat
#define SYS_getxattrat 464
#endif
#ifndef SYS_listxattrat
#define SYS_listxattrat 465
#endif
#ifndef SYS_removexattrat
#define SYS_removexattrat 466
#endif

/* Numbers from here on are newer than the profile: ENOSYS (open_tree_attr is 467). */
#define NR_KNOWN 467

/* What the filter does with one syscall number. */
enum action {
	ACT_EPERM = 0,
	ACT_ALLOW,
	ACT_ENOSYS,
	ACT_CLONE,       /* allowed without namespace flags */
	ACT_PERSONALITY, /* allowed for the personalities docker allows */
	ACT_SOCKET,      /* allowed but for AF_ALG and AF_VSOCK */
};

#define ALWAYS (-1)
#define RULE(name, cap) { SYS_##name, cap }

/* docker's default profile for amd64; entries with a capability are allowed when the
 * container has it. Names the profile lists for other ABIs only (chown32, _llseek, socketcall,
 * recv, send, waitpid, stime, ...) do not exist on x86_64. */
static const struct {
	uint16_t nr;
	int8_t cap;
} allow_rules[] = {
	RULE(accept, ALWAYS), RULE(accept4, ALWAYS), RULE(access, ALWAYS),
	RULE(adjtimex, ALWAYS), RULE(alarm, ALWAYS), RULE(bind, ALWAYS), RULE(brk, ALWAYS),
	RULE(cachestat, ALWAYS), RULE(capget, ALWAYS), RULE(capset, ALWAYS), RULE(chdir, ALWAYS),
	RULE(chmod, ALWAYS), RULE(chown, ALWAYS), RULE(clock_adjtime, ALWAYS),
	RULE(clock_getres, ALWAYS), RULE(clock_gettime, ALWAYS), RULE(clock_nanosleep, ALWAYS),
	RULE(close, ALWAYS), RULE(close_range, ALWAYS), RULE(connect, ALWAYS),
	RULE(copy_file_range, ALWAYS), RULE(creat, ALWAYS), RULE(dup, ALWAYS), RULE(dup2, ALWAYS),
	RULE(dup3, ALWAYS), RULE(epoll_create, ALWAYS), RULE(epoll_create1, ALWAYS),
	RULE(epoll_ctl, ALWAYS), RULE(epoll_ctl_old, ALWAYS), RULE(epoll_pwait, ALWAYS),
	RULE(epoll_pwait2, ALWAYS), RULE(epoll_wait, ALWAYS), RULE(epoll_wait_old, ALWAYS),
	RULE(eventfd, ALWAYS), RULE(eventfd2, ALWAYS), RULE(execve, ALWAYS),
	RULE(execveat, ALWAYS), RULE(exit, ALWAYS), RULE(exit_group, ALWAYS),
	RULE(faccessat, ALWAYS), RULE(faccessat2, ALWAYS), RULE(fadvise64, ALWAYS),
	RULE(fallocate, ALWAYS), RULE(fanotify_mark, ALWAYS), RULE(fchdir, ALWAYS),
	RULE(fchmod, ALWAYS), RULE(fchmodat, ALWAYS), RULE(fchmodat2, ALWAYS),
	RULE(fchown, ALWAYS), RULE(fchownat, ALWAYS), RULE(fcntl, ALWAYS),
	RULE(fdatasync, ALWAYS), RULE(fgetxattr, ALWAYS), RULE(flistxattr, ALWAYS),
	RULE(flock, ALWAYS), RULE(fork, ALWAYS), RULE(fremovexattr, ALWAYS),
	RULE(fsetxattr, ALWAYS), RULE(fstat, ALWAYS), RULE(fstatfs, ALWAYS), RULE(fsync, ALWAYS),
	RULE(ftruncate, ALWAYS), RULE(futex, ALWAYS), RULE(futex_requeue, ALWAYS),
	RULE(futex_wait, ALWAYS), RULE(futex_waitv, ALWAYS), RULE(futex_wake, ALWAYS),
	RULE(futimesat, ALWAYS), RULE(getcpu, ALWAYS), RULE(getcwd, ALWAYS),
	RULE(getdents, ALWAYS), RULE(getdents64, ALWAYS), RULE(getegid, ALWAYS),
	RULE(geteuid, ALWAYS), RULE(getgid, ALWAYS), RULE(getgroups, ALWAYS),
	RULE(getitimer, ALWAYS), RULE(getpeername, ALWAYS), RULE(getpgid, ALWAYS),
	RULE(getpgrp, ALWAYS), RULE(getpid, ALWAYS), RULE(getppid, ALWAYS),
	RULE(getpriority, ALWAYS), RULE(getrandom, ALWAYS), RULE(getresgid, ALWAYS),
	RULE(getresuid, ALWAYS), RULE(getrlimit, ALWAYS), RULE(get_robust_list, ALWAYS),
	RULE(getrusage, ALWAYS), RULE(getsid, ALWAYS), RULE(getsockname, ALWAYS),
	RULE(getsockopt, ALWAYS), RULE(get_thread_area, ALWAYS), RULE(gettid, ALWAYS),
	RULE(gettimeofday, ALWAYS), RULE(getuid, ALWAYS), RULE(getxattr, ALWAYS),
	RULE(getxattrat, ALWAYS), RULE(inotify_add_watch, ALWAYS), RULE(inotify_init, ALWAYS),
	RULE(inotify_init1, ALWAYS), RULE(inotify_rm_watch, ALWAYS), RULE(io_cancel, ALWAYS),
	RULE(ioctl, ALWAYS), RULE(io_destroy, ALWAYS), RULE(io_getevents, ALWAYS),
	RULE(io_pgetevents, ALWAYS), RULE(ioprio_get, ALWAYS), RULE(ioprio_set, ALWAYS),
	RULE(io_setup, ALWAYS), RULE(io_submit, ALWAYS), RULE(kill, ALWAYS),
	RULE(landlock_add_rule, ALWAYS), RULE(landlock_create_ruleset, ALWAYS),
	RULE(landlock_restrict_self, ALWAYS), RULE(lchown, ALWAYS), RULE(lgetxattr, ALWAYS),
	RULE(link, ALWAYS), RULE(linkat, ALWAYS), RULE(listen, ALWAYS), RULE(listmount, ALWAYS),
	RULE(listxattr, ALWAYS), RULE(listxattrat, ALWAYS), RULE(llistxattr, ALWAYS),
	RULE(lremovexattr, ALWAYS), RULE(lseek, ALWAYS), RULE(lsetxattr, ALWAYS),
	RULE(lstat, ALWAYS), RULE(madvise, ALWAYS), RULE(map_shadow_stack, ALWAYS),
	RULE(membarrier, ALWAYS), RULE(memfd_create, ALWAYS), RULE(memfd_secret, ALWAYS),
	RULE(mincore, ALWAYS), RULE(mkdir, ALWAYS), RULE(mkdirat, ALWAYS), RULE(mknod, ALWAYS),
	RULE(mknodat, ALWAYS), RULE(mlock, ALWAYS), RULE(mlock2, ALWAYS), RULE(mlockall, ALWAYS),
	RULE(mmap, ALWAYS), RULE(mprotect, ALWAYS), RULE(mq_getsetattr, ALWAYS),
	RULE(mq_notify, ALWAYS), RULE(mq_open, ALWAYS), RULE(mq_timedreceive, ALWAYS),
	RULE(mq_timedsend, ALWAYS), RULE(mq_unlink, ALWAYS), RULE(mremap, ALWAYS),
	RULE(mseal, ALWAYS), RULE(msgctl, ALWAYS), RULE(msgget, ALWAYS), RULE(msgrcv, ALWAYS),
	RULE(msgsnd, ALWAYS), RULE(msync, ALWAYS), RULE(munlock, ALWAYS),
	RULE(munlockall, ALWAYS), RULE(munmap, ALWAYS), RULE(name_to_handle_at, ALWAYS),
	RULE(nanosleep, ALWAYS), RULE(newfstatat, ALWAYS), RULE(open, ALWAYS),
	RULE(openat, ALWAYS), RULE(openat2, ALWAYS), RULE(pause, ALWAYS),
	RULE(pidfd_open, ALWAYS), RULE(pidfd_send_signal, ALWAYS), RULE(pipe, ALWAYS),
	RULE(pipe2, ALWAYS), RULE(pkey_alloc, ALWAYS), RULE(pkey_free, ALWAYS),
	RULE(pkey_mprotect, ALWAYS), RULE(poll, ALWAYS), RULE(ppoll, ALWAYS), RULE(prctl, ALWAYS),
	RULE(pread64, ALWAYS), RULE(preadv, ALWAYS), RULE(preadv2, ALWAYS),
	RULE(prlimit64, ALWAYS), RULE(process_mrelease, ALWAYS), RULE(pselect6, ALWAYS),
	RULE(pwrite64, ALWAYS), RULE(pwritev, ALWAYS), RULE(pwritev2, ALWAYS), RULE(read, ALWAYS),
	RULE(readahead, ALWAYS), RULE(readlink, ALWAYS), RULE(readlinkat, ALWAYS),
	RULE(readv, ALWAYS), RULE(recvfrom, ALWAYS), RULE(recvmmsg, ALWAYS),
	RULE(recvmsg, ALWAYS), RULE(remap_file_pages, ALWAYS), RULE(removexattr, ALWAYS),
	RULE(removexattrat, ALWAYS), RULE(rename, ALWAYS), RULE(renameat, ALWAYS),
	RULE(renameat2, ALWAYS), RULE(restart_syscall, ALWAYS), RULE(rmdir, ALWAYS),
	RULE(rseq, ALWAYS), RULE(rt_sigaction, ALWAYS), RULE(rt_sigpending, ALWAYS),
	RULE(rt_sigprocmask, ALWAYS), RULE(rt_sigqueueinfo, ALWAYS), RULE(rt_sigreturn, ALWAYS),
	RULE(rt_sigsuspend, ALWAYS), RULE(rt_sigtimedwait, ALWAYS),
	RULE(rt_tgsigqueueinfo, ALWAYS), RULE(sched_getaffinity, ALWAYS),
	RULE(sched_getattr, ALWAYS), RULE(sched_getparam, ALWAYS),
	RULE(sched_get_priority_max, ALWAYS), RULE(sched_get_priority_min, ALWAYS),
	RULE(sched_getscheduler, ALWAYS), RULE(sched_rr_get_interval, ALWAYS),
	RULE(sched_setaffinity, ALWAYS), RULE(sched_setattr, ALWAYS),
	RULE(sched_setparam, ALWAYS), RULE(sched_setscheduler, ALWAYS), RULE(sched_yield, ALWAYS),
	RULE(seccomp, ALWAYS), RULE(select, ALWAYS), RULE(semctl, ALWAYS), RULE(semget, ALWAYS),
	RULE(semop, ALWAYS), RULE(semtimedop, ALWAYS), RULE(sendfile, ALWAYS),
	RULE(sendmmsg, ALWAYS), RULE(sendmsg, ALWAYS), RULE(sendto, ALWAYS),
	RULE(setfsgid, ALWAYS), RULE(setfsuid, ALWAYS), RULE(setgid, ALWAYS),
	RULE(setgroups, ALWAYS), RULE(setitimer, ALWAYS), RULE(setpgid, ALWAYS),
	RULE(setpriority, ALWAYS), RULE(setregid, ALWAYS), RULE(setresgid, ALWAYS),
	RULE(setresuid, ALWAYS), RULE(setreuid, ALWAYS), RULE(setrlimit, ALWAYS),
	RULE(set_robust_list, ALWAYS), RULE(setsid, ALWAYS), RULE(setsockopt, ALWAYS),
	RULE(set_thread_area, ALWAYS), RULE(set_tid_address, ALWAYS), RULE(setuid, ALWAYS),
	RULE(setxattr, ALWAYS), RULE(setxattrat, ALWAYS), RULE(shmat, ALWAYS),
	RULE(shmctl, ALWAYS), RULE(shmdt, ALWAYS), RULE(shmget, ALWAYS), RULE(shutdown, ALWAYS),
	RULE(sigaltstack, ALWAYS), RULE(signalfd, ALWAYS), RULE(signalfd4, ALWAYS),
	RULE(socketpair, ALWAYS), RULE(splice, ALWAYS), RULE(stat, ALWAYS), RULE(statfs, ALWAYS),
	RULE(statmount, ALWAYS), RULE(statx, ALWAYS), RULE(symlink, ALWAYS),
	RULE(symlinkat, ALWAYS), RULE(sync, ALWAYS), RULE(sync_file_range, ALWAYS),
	RULE(syncfs, ALWAYS), RULE(sysinfo, ALWAYS), RULE(tee, ALWAYS), RULE(tgkill, ALWAYS),
	RULE(time, ALWAYS), RULE(timer_create, ALWAYS), RULE(timer_delete, ALWAYS),
	RULE(timer_getoverrun, ALWAYS), RULE(timer_gettime, ALWAYS), RULE(timer_settime, ALWAYS),
	RULE(timerfd_create, ALWAYS), RULE(timerfd_gettime, ALWAYS),
	RULE(timerfd_settime, ALWAYS), RULE(times, ALWAYS), RULE(tkill, ALWAYS),
	RULE(truncate, ALWAYS), RULE(umask, ALWAYS), RULE(uname, ALWAYS), RULE(unlink, ALWAYS),
	RULE(unlinkat, ALWAYS), RULE(uretprobe, ALWAYS), RULE(utime, ALWAYS),
	RULE(utimensat, ALWAYS), RULE(utimes, ALWAYS), RULE(vfork, ALWAYS), RULE(vmsplice, ALWAYS),
	RULE(wait4, ALWAYS), RULE(waitid, ALWAYS), RULE(write, ALWAYS), RULE(writev, ALWAYS),
	/* ptrace cannot bypass seccomp since Linux 4.8 */
	RULE(ptrace, ALWAYS), RULE(process_vm_readv, ALWAYS), RULE(process_vm_writev, ALWAYS),
	/* amd64 only */
	RULE(arch_prctl, ALWAYS), RULE(modify_ldt, ALWAYS),

	RULE(open_by_handle_at, CAPN_DAC_READ_SEARCH),
	RULE(bpf, CAPN_SYS_ADMIN), RULE(clone, CAPN_SYS_ADMIN), RULE(clone3, CAPN_SYS_ADMIN),
	RULE(fanotify_init, CAPN_SYS_ADMIN), RULE(fsconfig, CAPN_SYS_ADMIN),
	RULE(fsmount, CAPN_SYS_ADMIN), RULE(fsopen, CAPN_SYS_ADMIN), RULE(fspick, CAPN_SYS_ADMIN),
	RULE(lookup_dcookie, CAPN_SYS_ADMIN), RULE(lsm_get_self_attr, CAPN_SYS_ADMIN),
	RULE(lsm_list_modules, CAPN_SYS_ADMIN), RULE(lsm_set_self_attr, CAPN_SYS_ADMIN),
	RULE(mount, CAPN_SYS_ADMIN), RULE(mount_setattr, CAPN_SYS_ADMIN),
	RULE(move_mount, CAPN_SYS_ADMIN), RULE(open_tree, CAPN_SYS_ADMIN),
	RULE(perf_event_open, CAPN_SYS_ADMIN), RULE(quotactl, CAPN_SYS_ADMIN),
	RULE(quotactl_fd, CAPN_SYS_ADMIN), RULE(setdomainname, CAPN_SYS_ADMIN),
	RULE(sethostname, CAPN_SYS_ADMIN), RULE(setns, CAPN_SYS_ADMIN),
	RULE(syslog, CAPN_SYS_ADMIN), RULE(umount2, CAPN_SYS_ADMIN),
	RULE(unshare, CAPN_SYS_ADMIN),
	RULE(reboot, CAPN_SYS_BOOT),
	RULE(chroot, CAPN_SYS_CHROOT),
	RULE(delete_module, CAPN_SYS_MODULE), RULE(init_module, CAPN_SYS_MODULE),
	RULE(finit_module, CAPN_SYS_MODULE),
	RULE(acct, CAPN_SYS_PACCT),
	RULE(kcmp, CAPN_SYS_PTRACE), RULE(pidfd_getfd, CAPN_SYS_PTRACE),
	RULE(process_madvise, CAPN_SYS_PTRACE),
	RULE(iopl, CAPN_SYS_RAWIO), RULE(ioperm, CAPN_SYS_RAWIO),
	RULE(settimeofday, CAPN_SYS_TIME), RULE(clock_settime, CAPN_SYS_TIME),
	RULE(vhangup, CAPN_SYS_TTY_CONFIG),
	RULE(get_mempolicy, CAPN_SYS_NICE), RULE(mbind, CAPN_SYS_NICE),
	RULE(set_mempolicy, CAPN_SYS_NICE), RULE(set_mempolicy_home_node, CAPN_SYS_NICE),
	RULE(syslog, CAPN_SYSLOG),
	RULE(bpf, CAPN_BPF),
	RULE(perf_event_open, CAPN_PERFMON),
};

/* The action for every syscall number below NR_KNOWN, for a container with these caps. */
static int seccomp_policy(uint64_t caps, uint8_t act[NR_KNOWN])
{
	memset(act, ACT_EPERM, NR_KNOWN);
	for (size_t i = 0; i < ARRAY_SIZE(allow_rules); i++) {
		if (allow_rules[i].nr >= NR_KNOWN)
			return -EINVAL;
		if (allow_rules[i].cap == ALWAYS || (caps & CAP_BIT(allow_rules[i].cap)))
			act[allow_rules[i].nr] = ACT_ALLOW;
	}
	act[SYS_socket] = ACT_SOCKET;
	act[SYS_personality] = ACT_PERSONALITY;
	if (!(caps & CAP_BIT(CAPN_SYS_ADMIN))) {
		act[SYS_clone] = ACT_CLONE;
		act[SYS_clone3] = ACT_ENOSYS; /* libc falls back to clone, which is checked */
	}
	return 0;
}

/* A run of syscall numbers from lo up to the next run's lo with one action. */
struct run {
	uint32_t lo;
	uint8_t act;
};

struct filter {
	struct bpf_insn_ insns[BPF_MAXINSNS_];
	size_t len;
	bool overflow;
};

static void emit(struct filter *f, uint16_t code, uint32_t k, uint8_t jt, uint8_t jf)
{
	if (f->len >= ARRAY_SIZE(f->insns)) {
		f->overflow = true;
		return;
	}
	f->insns[f->len++] = (struct bpf_insn_){ .code = code, .jt = jt, .jf = jf, .k = k };
}

#define RET_ALLOW SECCOMP_RET_ALLOW_
#define RET_ERRNO(e) (SECCOMP_RET_ERRNO_ | (uint32_t)(e))

/* clone's namespace flags: CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET */
#define CLONE_NS_FLAGS 0x7e020000U
#define AF_ALG_ 38
#define AF_VSOCK_ 40

static size_t leaf_size(uint8_t act)
{
	switch (act) {
	case ACT_CLONE:
		return 4;
	case ACT_PERSONALITY:
		return 8;
	case ACT_SOCKET:
		return 5;
	default:
		return 1;
	}
}

/* The instructions that end the filter for one run: the argument checks compare the low 32
 * bits, which is all the kernel reads of these int arguments (and all of clone's flags that
 * create namespaces). */
static void emit_leaf(struct filter *f, uint8_t act)
{
	switch (act) {
	case ACT_ALLOW:
		emit(f, OP_RET, RET_ALLOW, 0, 0);
		break;
	case ACT_ENOSYS:
		emit(f, OP_RET, RET_ERRNO(ENOSYS), 0, 0);
		break;
	case ACT_CLONE:
		emit(f, OP_LD_ABS, DATA_ARG0_LO, 0, 0);
		emit(f, OP_JSET, CLONE_NS_FLAGS, 1, 0);
		emit(f, OP_RET, RET_ALLOW, 0, 0);
		emit(f, OP_RET, RET_ERRNO(EPERM), 0, 0);
		break;
	case ACT_PERSONALITY:
		/* PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and 0xffffffff (query) */
		emit(f, OP_LD_ABS, DATA_ARG0_LO, 0, 0);
		emit(f, OP_JEQ, 0x0, 5, 0);
		emit(f, OP_JEQ, 0x8, 4, 0);
		emit(f, OP_JEQ, 0x20000, 3, 0);
		emit(f, OP_JEQ, 0x20008, 2, 0);
		emit(f, OP_JEQ, 0xffffffff, 1, 0);
		emit(f, OP_RET, RET_ERRNO(EPERM), 0, 0);
		emit(f, OP_RET, RET_ALLOW, 0, 0);
		break;
	case ACT_SOCKET:
		emit(f, OP_LD_ABS, DATA_ARG0_LO, 0, 0);
		emit(f, OP_JEQ, AF_ALG_, 2, 0);
		emit(f, OP_JEQ, AF_VSOCK_, 1, 0);
		emit(f, OP_RET, RET_ALLOW, 0, 0);
		emit(f, OP_RET, RET_ERRNO(EPERM), 0, 0);
		break;
	default:
		emit(f, OP_RET, RET_ERRNO(EPERM), 0, 0);
		break;
	}
}

/* Conditional jumps reach 255 instructions ahead; further needs an extra JA. */
static size_t tree_size(const struct run *r, size_t n)
{
	size_t mid, left;

	if (n == 1)
		return leaf_size(r[0].act);
	mid = n / 2;
	left = tree_size(r, mid);
	return 1 + (left > 255) + left + tree_size(r + mid, n - mid);
}

/* A binary search over the runs, on the syscall number in A: about log2(runs) jumps. */
static void emit_tree(struct filter *f, const struct run *r, size_t n)
{
	size_t mid, left;

	if (n == 1) {
		emit_leaf(f, r[0].act);
		return;
	}
	mid = n / 2;
	left = tree_size(r, mid);
	if (left <= 255) {
		emit(f, OP_JGE, r[mid].lo, (uint8_t)left, 0);
	} else {
		emit(f, OP_JGE, r[mid].lo, 0, 1);
		emit(f, OP_JA, (uint32_t)left, 0, 0);
	}
	emit_tree(f, r, mid);
	emit_tree(f, r + mid, n - mid);
}

static int seccomp_build(uint64_t caps, struct filter *f)
{
	uint8_t act[NR_KNOWN];
	struct run runs[NR_KNOWN + 1];
	size_t nruns = 0;
	int r;

	r = seccomp_policy(caps, act);
	if (r < 0)
		return r;
	for (uint32_t nr = 0; nr < NR_KNOWN; nr++) {
		if (nruns && runs[nruns - 1].act == act[nr])
			continue;
		runs[nruns++] = (struct run){ .lo = nr, .act = act[nr] };
	}
	if (runs[nruns - 1].act != ACT_ENOSYS)
		runs[nruns++] = (struct run){ .lo = NR_KNOWN, .act = ACT_ENOSYS };

	f->len = 0;
	f->overflow = false;
	emit(f, OP_LD_ABS, DATA_ARCH, 0, 0);
	emit(f, OP_JEQ, AUDIT_ARCH_X86_64_, 1, 0);
	emit(f, OP_RET, RET_ERRNO(EPERM), 0, 0);
	emit(f, OP_LD_ABS, DATA_NR, 0, 0);
	emit(f, OP_JGE, X32_SYSCALL_BIT, 0, 1); /* x32 ABI: no */
	emit(f, OP_RET, RET_ERRNO(EPERM), 0, 0);
	emit_tree(f, runs, nruns);
	return f->overflow ? -E2BIG : 0;
}

static int install_seccomp(uint64_t caps, char *msg, size_t msg_size)
{
	static struct filter f; /* 32 KiB: not on the small clone stack */
	struct bpf_prog_ prog;
	int r;

	r = seccomp_build(caps, &f);
	if (r < 0) {
		str_printf(msg, msg_size, "cannot build the seccomp filter: %s", strerror(-r));
		return r;
	}
	prog = (struct bpf_prog_){ .len = (unsigned short)f.len, .insns = f.insns };
	if (prctl(PR_SET_SECCOMP, (unsigned long)SECCOMP_MODE_FILTER_, (unsigned long)&prog, 0UL,
		  0UL) < 0)
		return fail(msg, msg_size, errno, "cannot install the seccomp filter", NULL);
	return 0;
}

int security_before_exec(const struct proto_start *m, uint32_t uid, char *msg, size_t msg_size)
{
	struct caps_header h = { .version = CAPS_VERSION_3, .pid = 0 };
	struct caps_data d[2] = { { 0 } };
	uint64_t set = 0;

	if (uid == 0) {
		uint64_t permitted;

		/* what the kernel cannot grant (a capability it does not know) is left out */
		if (syscall(SYS_capget, &h, d) < 0)
			return fail(msg, msg_size, errno, "cannot read capabilities", NULL);
		permitted = d[0].permitted | (uint64_t)d[1].permitted << 32;
		set = m->caps & CAPS_ALL & permitted;
	}
	for (int i = 0; i < 2; i++) {
		uint32_t v = (uint32_t)(set >> (32 * i));

		d[i] = (struct caps_data){ .effective = v, .permitted = v, .inheritable = v };
	}
	h = (struct caps_header){ .version = CAPS_VERSION_3, .pid = 0 };
	if (syscall(SYS_capset, &h, d) < 0)
		return fail(msg, msg_size, errno, "cannot set capabilities", NULL);
	if (prctl(PR_CAP_AMBIENT, (unsigned long)PR_CAP_AMBIENT_CLEAR_ALL, 0UL, 0UL, 0UL) < 0 &&
	    errno != EINVAL)
		return fail(msg, msg_size, errno, "cannot clear the ambient capabilities", NULL);
	if (prctl(PR_SET_KEEPCAPS, 0UL, 0UL, 0UL, 0UL) < 0)
		return fail(msg, msg_size, errno, "cannot reset keep-capabilities", NULL);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1UL, 0UL, 0UL, 0UL) < 0)
		return fail(msg, msg_size, errno, "cannot set no_new_privs", NULL);
	if (m->unconfined)
		return 0;
	return install_seccomp(m->caps, msg, msg_size);
}
