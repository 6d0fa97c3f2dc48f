/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/guest/security: the seccomp filter run through a small classic-BPF
 * interpreter for every syscall number (against the policy table and against docker's profile),
 * then installed for real in forked children (denied calls fail, ordinary ones work),
 * capabilities, rlimits and, as root, the masked and read-only paths.
 *
 * The file includes security.c itself to reach the filter builder, which is static.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include "guest/security.c"

#include "test.h"

/* ------------------------------------------------------------------ a cBPF interpreter */

struct sdata {
	int32_t nr;
	uint32_t arch;
	uint64_t ip;
	uint64_t args[6];
};

#define BAD_PROGRAM 0xdeadbeefU

/* Runs the filter as the kernel would; BAD_PROGRAM for anything the kernel would refuse or
 * that this interpreter does not know (the builder uses only these instructions). */
static uint32_t bpf_run(const struct filter *f, const struct sdata *d)
{
	uint32_t a = 0;
	size_t pc = 0;

	while (pc < f->len) {
		const struct bpf_insn_ *i = &f->insns[pc];
		size_t next = pc + 1;

		switch (i->code) {
		case OP_LD_ABS:
			if (i->k % 4 || i->k + 4 > sizeof(*d))
				return BAD_PROGRAM;
			memcpy(&a, (const uint8_t *)d + i->k, 4);
			break;
		case OP_JA:
			next += i->k;
			break;
		case OP_JEQ:
			next += a == i->k ? i->jt : i->jf;
			break;
		case OP_JGE:
			next += a >= i->k ? i->jt : i->jf;
			break;
		case OP_JSET:
			next += (a & i->k) ? i->jt : i->jf;
			break;
		case OP_RET:
			return i->k;
		default:
			return BAD_PROGRAM;
		}
		if (next >= f->len)
			return BAD_PROGRAM;
		pc = next;
	}
	return BAD_PROGRAM;
}

static struct filter filt;

static uint32_t verdict(uint64_t caps, uint32_t arch, uint32_t nr, uint64_t arg0)
{
	struct sdata d = { .nr = (int32_t)nr, .arch = arch, .args = { arg0 } };

	if (seccomp_build(caps, &filt) < 0)
		return BAD_PROGRAM;
	return bpf_run(&filt, &d);
}

#define ALLOW RET_ALLOW
#define EPERM_ RET_ERRNO(EPERM)
#define ENOSYS_ RET_ERRNO(ENOSYS)
#define X86_64 AUDIT_ARCH_X86_64_
#define CAPS_ADMIN (caps_default | CAP_BIT(CAPN_SYS_ADMIN))

static const uint64_t cap_sets[] = { 0, UINT64_C(0xa80425fb), UINT64_C(0xa80425fb) | CAP_BIT(21),
				     CAPS_ALL };

/* ------------------------------------------------------------------ the filter, interpreted */

TEST(filter_is_small_and_well_formed)
{
	for (size_t i = 0; i < ARRAY_SIZE(cap_sets); i++) {
		CHECK_EQ_INT(seccomp_build(cap_sets[i], &filt), 0);
		CHECK(filt.len > 10 && filt.len < 1024);
		/* every jump lands inside the program */
		for (size_t pc = 0; pc < filt.len; pc++) {
			const struct bpf_insn_ *in = &filt.insns[pc];

			if (in->code == OP_JA)
				CHECK(pc + 1 + in->k < filt.len);
			if (in->code == OP_JEQ || in->code == OP_JGE || in->code == OP_JSET)
				CHECK(pc + 1 + in->jt < filt.len && pc + 1 + in->jf < filt.len);
		}
		CHECK(filt.insns[filt.len - 1].code == OP_RET);
	}
}

/* The binary search returns, for every number, what the policy table says. */
TEST(tree_matches_policy_for_every_number)
{
	for (size_t c = 0; c < ARRAY_SIZE(cap_sets); c++) {
		uint8_t act[NR_KNOWN];

		CHECK_EQ_INT(seccomp_policy(cap_sets[c], act), 0);
		for (uint32_t nr = 0; nr < NR_KNOWN + 200; nr++) {
			uint8_t a = nr < NR_KNOWN ? act[nr] : ACT_ENOSYS;
			uint32_t want = a == ACT_EPERM	? EPERM_
					: a == ACT_ENOSYS ? ENOSYS_
							  : ALLOW; /* arg 0 passes every check */

			CHECK_EQ_INT(verdict(cap_sets[c], X86_64, nr, 0), want);
		}
		CHECK_EQ_INT(verdict(cap_sets[c], X86_64, 0x3fffffff, 0), ENOSYS_);
		CHECK_EQ_INT(verdict(cap_sets[c], X86_64, 0x40000000, 0), EPERM_); /* x32 read */
		CHECK_EQ_INT(verdict(cap_sets[c], X86_64, 0x40000000 + SYS_getpid, 0), EPERM_);
		CHECK_EQ_INT(verdict(cap_sets[c], X86_64, 0xffffffff, 0), EPERM_);
		/* i386 (int 0x80) and anything else */
		CHECK_EQ_INT(verdict(cap_sets[c], 0x40000003, SYS_read, 0), EPERM_);
		CHECK_EQ_INT(verdict(cap_sets[c], 0xc00000b7, SYS_read, 0), EPERM_);
	}
}

static const uint32_t ordinary[] = {
	SYS_read, SYS_write, SYS_openat, SYS_open, SYS_close, SYS_execve, SYS_execveat, SYS_fork,
	SYS_vfork, SYS_wait4, SYS_futex, SYS_mmap, SYS_mprotect, SYS_brk, SYS_rt_sigreturn,
	SYS_arch_prctl, SYS_set_tid_address, SYS_ioctl, SYS_getdents64, SYS_newfstatat, SYS_statx,
	SYS_chown, SYS_fchownat, SYS_setresuid, SYS_setgroups, SYS_capget, SYS_capset, SYS_prctl,
	SYS_chroot, SYS_mknodat, SYS_connect, SYS_bind, SYS_accept4, SYS_sendmmsg, SYS_epoll_pwait,
	SYS_io_setup, SYS_memfd_create, SYS_pidfd_open, SYS_close_range, SYS_faccessat2,
	SYS_fchmodat2, SYS_futex_waitv, SYS_rseq, SYS_getrandom, SYS_seccomp, SYS_ptrace,
	SYS_process_vm_readv, SYS_name_to_handle_at, SYS_adjtimex, SYS_clock_adjtime,
	SYS_landlock_create_ruleset, SYS_mseal, SYS_statmount, SYS_listmount, SYS_setxattrat,
	SYS_modify_ldt, SYS_sched_setattr, SYS_exit_group,
};

static const uint32_t need_a_cap[] = {
	SYS_mount, SYS_umount2, SYS_unshare, SYS_setns, SYS_sethostname, SYS_setdomainname,
	SYS_quotactl, SYS_quotactl_fd, SYS_fsopen, SYS_fsmount, SYS_fsconfig, SYS_fspick,
	SYS_open_tree, SYS_move_mount, SYS_mount_setattr, SYS_fanotify_init, SYS_lookup_dcookie,
	SYS_syslog, SYS_bpf, SYS_perf_event_open, SYS_reboot, SYS_init_module, SYS_finit_module,
	SYS_delete_module, SYS_acct, SYS_kcmp, SYS_pidfd_getfd, SYS_process_madvise, SYS_iopl,
	SYS_ioperm, SYS_settimeofday, SYS_clock_settime, SYS_vhangup, SYS_mbind,
	SYS_get_mempolicy, SYS_set_mempolicy, SYS_set_mempolicy_home_node, SYS_open_by_handle_at,
	SYS_lsm_get_self_attr,
};

/* not in docker's profile at all: denied whatever the capabilities */
static const uint32_t never[] = {
	SYS_keyctl, SYS_add_key, SYS_request_key, SYS_kexec_load, SYS_kexec_file_load,
	SYS_pivot_root, SYS_swapon, SYS_swapoff, SYS_userfaultfd, SYS_io_uring_setup,
	SYS_io_uring_enter, SYS_io_uring_register, SYS_uselib, SYS_ustat, SYS_sysfs, SYS__sysctl,
	SYS_nfsservctl, SYS_create_module, SYS_get_kernel_syms, SYS_query_module,
	SYS_move_pages, SYS_migrate_pages, SYS_afs_syscall, SYS_tuxcall, SYS_security,
	SYS_vserver, SYS_getpmsg, SYS_putpmsg,
};

TEST(docker_default_profile)
{
	const uint64_t caps = UINT64_C(0xa80425fb);

	for (size_t i = 0; i < ARRAY_SIZE(ordinary); i++) {
		CHECK_EQ_INT(verdict(caps, X86_64, ordinary[i], 0), ALLOW);
		CHECK_EQ_INT(verdict(0, X86_64, ordinary[i], 0), ordinary[i] == SYS_chroot ? EPERM_
											   : ALLOW);
	}
	for (size_t i = 0; i < ARRAY_SIZE(need_a_cap); i++) {
		CHECK_EQ_INT(verdict(caps, X86_64, need_a_cap[i], 0), EPERM_);
		CHECK_EQ_INT(verdict(CAPS_ALL, X86_64, need_a_cap[i], 0), ALLOW);
	}
	for (size_t i = 0; i < ARRAY_SIZE(never); i++)
		CHECK_EQ_INT(verdict(CAPS_ALL, X86_64, never[i], 0), EPERM_);
	/* newer than the profile: ENOSYS so that libc falls back */
	CHECK_EQ_INT(verdict(caps, X86_64, 467, 0), ENOSYS_); /* open_tree_attr */
	CHECK_EQ_INT(verdict(caps, X86_64, 470, 0), ENOSYS_);
	CHECK_EQ_INT(verdict(CAPS_ALL, X86_64, 1000, 0), ENOSYS_);
}

TEST(capability_gates)
{
	const uint64_t caps = UINT64_C(0xa80425fb);

	CHECK_EQ_INT(verdict(caps | CAP_BIT(CAPN_SYS_ADMIN), X86_64, SYS_mount, 0), ALLOW);
	CHECK_EQ_INT(verdict(caps | CAP_BIT(CAPN_SYS_ADMIN), X86_64, SYS_reboot, 0), EPERM_);
	CHECK_EQ_INT(verdict(caps | CAP_BIT(CAPN_SYS_BOOT), X86_64, SYS_reboot, 0), ALLOW);
	CHECK_EQ_INT(verdict(caps | CAP_BIT(CAPN_SYS_BOOT), X86_64, SYS_kexec_load, 0), EPERM_);
	CHECK_EQ_INT(verdict(caps | CAP_BIT(CAPN_SYS_PTRACE), X86_64, SYS_kcmp, 0), ALLOW);
	CHECK_EQ_INT(verdict(caps | CAP_BIT(CAPN_SYS_TIME), X86_64, SYS_settimeofday, 0), ALLOW);
	CHECK_EQ_INT(verdict(caps | CAP_BIT(CAPN_SYSLOG), X86_64, SYS_syslog, 0), ALLOW);
	CHECK_EQ_INT(verdict(caps | CAP_BIT(CAPN_BPF), X86_64, SYS_bpf, 0), ALLOW);
	CHECK_EQ_INT(verdict(caps | CAP_BIT(CAPN_BPF), X86_64, SYS_perf_event_open, 0), EPERM_);
	CHECK_EQ_INT(verdict(caps | CAP_BIT(CAPN_PERFMON), X86_64, SYS_perf_event_open, 0), ALLOW);
	CHECK_EQ_INT(verdict(caps | CAP_BIT(CAPN_DAC_READ_SEARCH), X86_64, SYS_open_by_handle_at,
			     0),
		     ALLOW);
	CHECK_EQ_INT(verdict(caps & ~CAP_BIT(CAPN_SYS_CHROOT), X86_64, SYS_chroot, 0), EPERM_);
}

TEST(clone_and_clone3)
{
	const uint64_t caps = UINT64_C(0xa80425fb);

	CHECK_EQ_INT(verdict(caps, X86_64, SYS_clone, SIGCHLD), ALLOW);
	CHECK_EQ_INT(verdict(caps, X86_64, SYS_clone, 0x3d0f00), ALLOW); /* pthread_create */
	CHECK_EQ_INT(verdict(caps, X86_64, SYS_clone, CLONE_NEWUSER | SIGCHLD), EPERM_);
	CHECK_EQ_INT(verdict(caps, X86_64, SYS_clone, CLONE_NEWNS), EPERM_);
	CHECK_EQ_INT(verdict(caps, X86_64, SYS_clone, CLONE_NEWNET), EPERM_);
	CHECK_EQ_INT(verdict(caps, X86_64, SYS_clone, CLONE_NEWCGROUP), EPERM_);
	CHECK_EQ_INT(verdict(caps, X86_64, SYS_clone, CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC),
		     EPERM_);
	CHECK_EQ_INT(verdict(caps, X86_64, SYS_clone, UINT64_C(1) << 32 | SIGCHLD), ALLOW);
	CHECK_EQ_INT(verdict(caps, X86_64, SYS_clone3, 0), ENOSYS_);
	CHECK_EQ_INT(verdict(CAPS_ADMIN, X86_64, SYS_clone, CLONE_NEWUSER), ALLOW);
	CHECK_EQ_INT(verdict(CAPS_ADMIN, X86_64, SYS_clone3, 0), ALLOW);
}

TEST(personality_and_socket_arguments)
{
	const uint64_t caps = UINT64_C(0xa80425fb);
	static const uint64_t allowed[] = { 0, 8, 0x20000, 0x20008, 0xffffffff };
	static const uint64_t denied[] = { 1, 0x0400000 /* READ_IMPLIES_EXEC */,
					   0x0040000 /* ADDR_NO_RANDOMIZE */, 0x20001, 0xfffffffe };

	for (size_t i = 0; i < ARRAY_SIZE(allowed); i++)
		CHECK_EQ_INT(verdict(CAPS_ALL, X86_64, SYS_personality, allowed[i]), ALLOW);
	for (size_t i = 0; i < ARRAY_SIZE(denied); i++)
		CHECK_EQ_INT(verdict(CAPS_ALL, X86_64, SYS_personality, denied[i]), EPERM_);

	CHECK_EQ_INT(verdict(caps, X86_64, SYS_socket, AF_UNIX), ALLOW);
	CHECK_EQ_INT(verdict(caps, X86_64, SYS_socket, AF_INET), ALLOW);
	CHECK_EQ_INT(verdict(caps, X86_64, SYS_socket, AF_INET6), ALLOW);
	CHECK_EQ_INT(verdict(caps, X86_64, SYS_socket, AF_NETLINK), ALLOW);
	CHECK_EQ_INT(verdict(caps, X86_64, SYS_socket, AF_PACKET), ALLOW);
	CHECK_EQ_INT(verdict(caps, X86_64, SYS_socket, 39), ALLOW);
	CHECK_EQ_INT(verdict(caps, X86_64, SYS_socket, 41), ALLOW);
	CHECK_EQ_INT(verdict(caps, X86_64, SYS_socket, 38), EPERM_); /* AF_ALG */
	CHECK_EQ_INT(verdict(caps, X86_64, SYS_socket, 40), EPERM_); /* AF_VSOCK */
	CHECK_EQ_INT(verdict(CAPS_ALL, X86_64, SYS_socket, 40), EPERM_);
	/* the kernel reads an int: high bits do not smuggle AF_VSOCK through */
	CHECK_EQ_INT(verdict(caps, X86_64, SYS_socket, UINT64_C(1) << 32 | 40), EPERM_);
}

/* ------------------------------------------------------------------ in forked children */

struct child_out {
	char why[256];
};

/* Run fn in a child; its failure message (if any) lands in out->why. */
static int in_child(int (*fn)(char *why, size_t size), struct child_out *out)
{
	int p[2], status = 0;
	ssize_t n;
	pid_t pid;

	memset(out, 0, sizeof(*out));
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		char why[256] = "";
		int r;

		close(p[0]);
		r = fn(why, sizeof(why));
		if (r != 0 && !why[0])
			str_copy(why, sizeof(why), "failed");
		(void)!write(p[1], why, strlen(why));
		_exit(r == 0 ? 0 : 1);
	}
	close(p[1]);
	n = read(p[0], out->why, sizeof(out->why) - 1);
	close(p[0]);
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	if (n > 0)
		printf("# child: %s\n", out->why);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#define EXPECT(cond)                                                                               \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			snprintf(why, size, "%s:%d: %s (errno %d %s)", __FILE__, __LINE__, #cond,   \
				 errno, strerror(errno));                                          \
			return -1;                                                                 \
		}                                                                                  \
	} while (0)

static struct proto_start start_with(uint64_t caps, bool unconfined)
{
	return (struct proto_start){ .caps = caps, .unconfined = unconfined };
}

/* /proc/self of the process that reads its status, opened before it drops to another user
 * (who may not be allowed to search /: it is mode 0700 on some hosts) */
static int proc_self_fd = -1;

static uint64_t status_hex(const char *key)
{
	int fd = proc_self_fd >= 0 ? openat(proc_self_fd, "status", O_RDONLY | O_CLOEXEC)
				   : open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	_cleanup_fclose_ FILE *f = fd >= 0 ? fdopen(fd, "re") : NULL;
	char line[256];
	size_t n = strlen(key);

	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, key, n) == 0 && line[n] == ':')
			return strtoull(line + n + 1, NULL, 16);
	return UINT64_MAX;
}

static int child_confined(char *why, size_t size)
{
	struct proto_start m = start_with(UINT64_C(0xa80425fb), false);
	char msg[256] = "";
	int fd, st;
	pid_t pid;

	if (security_before_exec(&m, (uint32_t)geteuid(), msg, sizeof(msg)) < 0) {
		snprintf(why, size, "security_before_exec: %s", msg);
		return -1;
	}
	EXPECT(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1);
	EXPECT(prctl(PR_GET_SECCOMP, 0, 0, 0, 0) == 2);
	EXPECT(status_hex("CapAmb") == 0);
	if (geteuid() == 0) {
		EXPECT(status_hex("CapEff") == (UINT64_C(0xa80425fb) & status_hex("CapBnd")));
		EXPECT(status_hex("CapPrm") == status_hex("CapEff"));
		EXPECT(status_hex("CapInh") == status_hex("CapEff"));
	} else {
		EXPECT(status_hex("CapEff") == 0 && status_hex("CapPrm") == 0);
	}

	/* denied */
	errno = 0;
	EXPECT(syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3, 0) < 0 && errno == EPERM);
	errno = 0;
	EXPECT(syscall(SYS_add_key, "user", "x", "y", 1, -3) < 0 && errno == EPERM);
	errno = 0;
	EXPECT(unshare(CLONE_NEWUTS) < 0 && errno == EPERM);
	errno = 0;
	EXPECT(unshare(CLONE_NEWUSER) < 0 && errno == EPERM);
	errno = 0;
	EXPECT(mount("none", "/tmp", "tmpfs", 0, NULL) < 0 && errno == EPERM);
	errno = 0;
	EXPECT(syscall(SYS_userfaultfd, 0) < 0 && errno == EPERM);
	errno = 0;
	EXPECT(syscall(SYS_io_uring_setup, 1, NULL) < 0 && errno == EPERM);
	errno = 0;
	EXPECT(syscall(SYS_clone, CLONE_NEWNET | SIGCHLD, 0, 0, 0, 0) < 0 && errno == EPERM);
	errno = 0;
	EXPECT(socket(AF_VSOCK, SOCK_STREAM, 0) < 0 && errno == EPERM);
	errno = 0;
	EXPECT(personality(READ_IMPLIES_EXEC) < 0 && errno == EPERM);
	errno = 0;
	EXPECT(syscall(SYS_clone3, NULL, 0) < 0 && errno == ENOSYS);
	errno = 0;
	EXPECT(syscall(470) < 0 && errno == ENOSYS);

	/* ordinary life */
	EXPECT(getpid() > 0);
	EXPECT(personality(0xffffffff) >= 0);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	EXPECT(fd >= 0);
	close(fd);
	fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	EXPECT(fd >= 0);
	close(fd);
	pid = fork();
	EXPECT(pid >= 0);
	if (pid == 0)
		_exit(7);
	EXPECT(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 7);
	return 0;
}

TEST(seccomp_in_the_kernel)
{
	struct child_out out;

	CHECK_EQ_INT(in_child(child_confined, &out), 0);
}

static int child_unconfined(char *why, size_t size)
{
	struct proto_start m = start_with(UINT64_C(0xa80425fb), true);
	char msg[256] = "";

	if (security_before_exec(&m, (uint32_t)geteuid(), msg, sizeof(msg)) < 0) {
		snprintf(why, size, "security_before_exec: %s", msg);
		return -1;
	}
	EXPECT(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1);
	EXPECT(prctl(PR_GET_SECCOMP, 0, 0, 0, 0) == 0);
	errno = 0;
	EXPECT(syscall(SYS_clone3, NULL, 0) < 0 && errno != ENOSYS);
	return 0;
}

TEST(unconfined_has_no_filter)
{
	struct child_out out;

	CHECK_EQ_INT(in_child(child_unconfined, &out), 0);
}

static int child_sys_admin(char *why, size_t size)
{
	struct proto_start m = start_with(CAPS_ADMIN, false);
	char msg[256] = "";

	if (security_before_exec(&m, 0, msg, sizeof(msg)) < 0) {
		snprintf(why, size, "security_before_exec: %s", msg);
		return -1;
	}
	EXPECT(unshare(CLONE_NEWUTS) == 0);
	EXPECT(sethostname("cove-test", 9) == 0);
	errno = 0;
	EXPECT(syscall(SYS_keyctl, 0, -3, 0) < 0 && errno == EPERM);
	return 0;
}

TEST(sys_admin_allows_namespaces)
{
	struct child_out out;

	if (geteuid() != 0) {
		printf("# skipped: needs root\n");
		return;
	}
	CHECK_EQ_INT(in_child(child_sys_admin, &out), 0);
}

/* The whole sequence as the container process goes through it, to an unprivileged user. */
static int child_to_user(char *why, size_t size)
{
	struct proto_start m = start_with(UINT64_C(0xa80425fb), false);
	char msg[256] = "";

	if (security_before_user(&m, msg, sizeof(msg)) < 0) {
		snprintf(why, size, "security_before_user: %s", msg);
		return -1;
	}
	EXPECT(status_hex("CapBnd") == (UINT64_C(0xa80425fb) & status_hex("CapPrm")));
	EXPECT(prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0) == 1);
	proc_self_fd = open("/proc/self", O_PATH | O_DIRECTORY | O_CLOEXEC);
	EXPECT(setgroups(0, NULL) == 0);
	EXPECT(setresgid(65534, 65534, 65534) == 0);
	EXPECT(setresuid(65534, 65534, 65534) == 0);
	if (security_before_exec(&m, 65534, msg, sizeof(msg)) < 0) {
		snprintf(why, size, "security_before_exec: %s", msg);
		return -1;
	}
	EXPECT(status_hex("CapEff") == 0 && status_hex("CapPrm") == 0 && status_hex("CapInh") == 0);
	EXPECT(prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0) == 0);
	errno = 0;
	EXPECT(setuid(0) < 0 && errno == EPERM);
	errno = 0;
	EXPECT(unshare(CLONE_NEWUSER) < 0 && errno == EPERM);
	return 0;
}

TEST(root_to_user)
{
	struct child_out out;

	if (geteuid() != 0) {
		printf("# skipped: needs root\n");
		return;
	}
	CHECK_EQ_INT(in_child(child_to_user, &out), 0);
}

/* ------------------------------------------------------------------ rlimits */

static int child_rlimits(char *why, size_t size)
{
	struct proto_rlimit l[] = {
		{ .resource = RLIMIT_NOFILE, .soft = 100, .hard = 200 },
		{ .resource = RLIMIT_CORE, .soft = 0, .hard = 0 },
	};
	struct proto_start m = { .rlimits = l, .nrlimits = 2 };
	struct rlimit rl;
	char msg[256] = "";

	if (security_set_rlimits(&m, msg, sizeof(msg)) < 0) {
		snprintf(why, size, "security_set_rlimits: %s", msg);
		return -1;
	}
	EXPECT(getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur == 100 && rl.rlim_max == 200);
	EXPECT(getrlimit(RLIMIT_CORE, &rl) == 0 && rl.rlim_cur == 0 && rl.rlim_max == 0);

	/* raising a hard limit is refused to an unprivileged process: reported with its name */
	l[0] = (struct proto_rlimit){ .resource = RLIMIT_NOFILE, .soft = 100, .hard = UINT64_MAX };
	m.nrlimits = 1;
	if (geteuid() == 0) {
		EXPECT(security_set_rlimits(&m, msg, sizeof(msg)) == -EPERM);
		EXPECT(strstr(msg, "nofile=100:unlimited") != NULL);
	}
	l[0] = (struct proto_rlimit){ .resource = RLIMIT_STACK, .soft = 0, .hard = UINT64_MAX };
	if (getrlimit(RLIMIT_STACK, &rl) == 0 && rl.rlim_max == RLIM_INFINITY) {
		EXPECT(security_set_rlimits(&m, msg, sizeof(msg)) == 0);
		EXPECT(getrlimit(RLIMIT_STACK, &rl) == 0 && rl.rlim_cur == 0 &&
		       rl.rlim_max == RLIM_INFINITY);
	}
	l[0] = (struct proto_rlimit){ .resource = 16, .soft = 1, .hard = 1 };
	EXPECT(security_set_rlimits(&m, msg, sizeof(msg)) == -EINVAL);
	l[0] = (struct proto_rlimit){ .resource = RLIMIT_NOFILE, .soft = 2, .hard = 1 };
	EXPECT(security_set_rlimits(&m, msg, sizeof(msg)) == -EINVAL);
	m.nrlimits = 0;
	m.rlimits = NULL;
	EXPECT(security_set_rlimits(&m, msg, sizeof(msg)) == 0);
	return 0;
}

TEST(rlimits)
{
	struct child_out out;

	CHECK_EQ_INT(in_child(child_rlimits, &out), 0);
}

/* ------------------------------------------------------------------ masked paths (root) */

static int child_mask(char *why, size_t size)
{
	char msg[256] = "";
	bool had_kcore = access("/proc/kcore", F_OK) == 0;
	bool had_acpi = access("/proc/acpi", F_OK) == 0;
	struct stat st;
	int fd;

	/* a private copy of this host's mounts: nothing leaks out of the child */
	EXPECT(unshare(CLONE_NEWNS) == 0);
	EXPECT(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0);
	if (security_mask_paths(msg, sizeof(msg)) < 0) {
		snprintf(why, size, "security_mask_paths: %s", msg);
		return -1;
	}
	if (had_kcore) {
		EXPECT(stat("/proc/kcore", &st) == 0 && S_ISCHR(st.st_mode) &&
		       st.st_rdev == makedev(1, 3));
	}
	EXPECT(stat("/proc/interrupts", &st) == 0 && S_ISCHR(st.st_mode));
	if (had_acpi) {
		_cleanup_(closedirp) DIR *d = opendir("/proc/acpi");
		struct dirent *e;
		int n = 0;

		EXPECT(d != NULL);
		while ((e = readdir(d)))
			n++;
		EXPECT(n == 2); /* . and .. */
		EXPECT(mkdir("/proc/acpi/x", 0755) < 0 && errno == EROFS);
	}
	errno = 0;
	fd = open("/proc/sys/kernel/hostname", O_WRONLY | O_CLOEXEC);
	EXPECT(fd < 0 && errno == EROFS);
	errno = 0;
	fd = open("/proc/sysrq-trigger", O_WRONLY | O_CLOEXEC);
	EXPECT(fd < 0 && (errno == EROFS || errno == ENOENT));
	fd = open("/proc/sys/kernel/hostname", O_RDONLY | O_CLOEXEC);
	EXPECT(fd >= 0);
	close(fd);
	/* masking twice (an exec session does not, but it must not break) */
	if (security_mask_paths(msg, sizeof(msg)) < 0) {
		snprintf(why, size, "second security_mask_paths: %s", msg);
		return -1;
	}
	return 0;
}

TEST(mask_paths)
{
	struct child_out out;

	if (geteuid() != 0) {
		printf("# skipped: needs root\n");
		return;
	}
	CHECK_EQ_INT(in_child(child_mask, &out), 0);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	RUN(filter_is_small_and_well_formed);
	RUN(tree_matches_policy_for_every_number);
	RUN(docker_default_profile);
	RUN(capability_gates);
	RUN(clone_and_clone3);
	RUN(personality_and_socket_arguments);
	RUN(seccomp_in_the_kernel);
	RUN(unconfined_has_no_filter);
	RUN(sys_admin_allows_namespaces);
	RUN(root_to_user);
	RUN(rlimits);
	RUN(mask_paths);
	return test_done();
}
