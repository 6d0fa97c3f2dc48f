/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "accel.h"

#include "vm.h"


#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>

#define PROBE_TIMEOUT_MS   3000	 /* our kernel reaches HELLO in well under a second on KVM */
#define CONFIRM_TIMEOUT_MS 15000 /* the same boot under TCG, loaded machine included */
#define PROBE_MEMORY	   (128ULL << 20)
#define VERDICT_MAX	   8192
#define KEY_MAX		   4096
#define CPU_HOST	   "host"
/* QEMU 7.2 aborts with -cpu host where the (nested) KVM refuses IA32_ARCH_CAPABILITIES */
#define CPU_NO_ARCH_CAPS "host,-arch-capabilities"

int vm_accel_parse(const char *s, enum vm_accel *ret)
{
	if (strcmp(s, "auto") == 0)
		*ret = VM_ACCEL_AUTO;
	else if (strcmp(s, "kvm") == 0)
		*ret = VM_ACCEL_KVM;
	else if (strcmp(s, "tcg") == 0)
		*ret = VM_ACCEL_TCG;
	else
		return -EINVAL;
	return 0;
}

const char *vm_accel_name(enum vm_accel a)
{
	return a == VM_ACCEL_KVM ? "kvm" : a == VM_ACCEL_TCG ? "tcg" : "auto";
}

int vm_accel_wanted(const char *s, enum vm_accel *ret, struct cove_error *err)
{
	const char *env = getenv("COVE_ACCEL");
	char shown[STR_SHOWN_MAX];

	if (s && *s) {
		if (vm_accel_parse(s, ret) < 0)
			return cove_error_set(err, EINVAL,
					      "invalid --accel '%s': expected kvm, tcg or auto",
					      str_shown(s, shown));
		return 0;
	}
	if (env && *env) {
		if (vm_accel_parse(env, ret) < 0)
			return cove_error_set(err, EINVAL,
					      "invalid COVE_ACCEL '%s': expected kvm, tcg or auto",
					      str_shown(env, shown));
		return 0;
	}
	*ret = VM_ACCEL_AUTO;
	return 0;
}

const char *vm_kvm_device(void)
{
	const char *e = getenv("COVE_KVM_DEVICE");

	return e && *e ? e : "/dev/kvm";
}

static void utc_now(char *buf, size_t size)
{
	time_t t = time(NULL);
	struct tm tm;

	if (!gmtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		buf[0] = '\0';
}

/* What the verdict depends on, as one line: the host kernel, the identity of QEMU's binary (a
 * new version is a new file), our kernel and initramfs, and the device. */
static int make_key(const struct vm_accel_ctx *x, char *buf, size_t size)
{
	const char *const files[] = { x->qemu, x->kernel, x->initrd, vm_kvm_device() };
	struct utsname u;
	size_t len;

	if (uname(&u) < 0 || str_printf(buf, size, "%s %s", u.release, u.version) < 0)
		return -EINVAL;
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		struct stat st;

		len = strlen(buf);
		if (stat(files[i], &st) < 0 ||
		    str_printf(buf + len, size - len, " | %s %lld %lld.%09ld %llx", files[i],
			       (long long)st.st_size, (long long)st.st_mtim.tv_sec,
			       st.st_mtim.tv_nsec, (unsigned long long)st.st_rdev) < 0)
			return -EINVAL;
	}
	return strchr(buf, '\n') ? -EINVAL : 0;
}

static void verdict_path(const struct vm_accel_ctx *x, const char *name, char *buf, size_t size)
{
	str_printf(buf, size, "%s/%s", x->cache_dir, name);
}

/* The cached verdict, if it was made for key. */
static int load(const struct vm_accel_ctx *x, const char *key, struct vm_verdict *ret)
{
	_cleanup_free_ char *s = NULL;
	struct vm_verdict v = { 0 };
	char path[4200];
	bool key_ok = false, accel_ok = false;
	char *line, *next;

	verdict_path(x, "accel", path, sizeof(path));
	if (read_file(path, VERDICT_MAX, &s, NULL) < 0)
		return -ENOENT;
	for (line = s; line && *line; line = next) {
		char *val;
		uint64_t n;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		val = strchr(line, ' ');
		if (!val)
			continue;
		*val++ = '\0';
		if (strcmp(line, "key") == 0) {
			key_ok = strcmp(val, key) == 0;
		} else if (strcmp(line, "accel") == 0) {
			accel_ok = strcmp(val, "kvm") == 0 || strcmp(val, "tcg") == 0;
			v.kvm = strcmp(val, "kvm") == 0;
		} else if (strcmp(line, "cpu") == 0) {
			str_copy(v.cpu, sizeof(v.cpu), val);
		} else if (strcmp(line, "probed") == 0) {
			v.probed = strcmp(val, "yes") == 0;
		} else if (strcmp(line, "when") == 0) {
			str_copy(v.when, sizeof(v.when), val);
		} else if (strcmp(line, "probe_ms") == 0 && parse_u64(val, UINT32_MAX, &n) == 0) {
			v.probe_ms = n;
		} else if (strcmp(line, "reason") == 0) {
			str_copy(v.reason, sizeof(v.reason), val);
		}
	}
	if (!key_ok || !accel_ok || (v.kvm && !v.cpu[0]))
		return -ESTALE;
	*ret = v;
	return 0;
}

static int save(const struct vm_accel_ctx *x, const char *key, const struct vm_verdict *v)
{
	char path[4200], text[VERDICT_MAX];

	verdict_path(x, "accel", path, sizeof(path));
	if (str_printf(text, sizeof(text),
		       "key %s\naccel %s\ncpu %s\nprobed %s\nwhen %s\nprobe_ms %llu\nreason %s\n",
		       key, v->kvm ? "kvm" : "tcg", v->cpu, v->probed ? "yes" : "no", v->when,
		       (unsigned long long)v->probe_ms, v->reason) < 0 ||
	    strchr(v->reason, '\n') || strchr(v->cpu, '\n'))
		return -EINVAL;
	return write_file_atomic(path, text, strlen(text), 0644);
}

/* Serialises probes and updates of the verdict between processes. */
static int lock_cache(const struct vm_accel_ctx *x)
{
	char path[4200];
	int fd;

	verdict_path(x, "accel.lock", path, sizeof(path));
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			int e = errno;
			close(fd);
			return -e;
		}
	}
	return fd;
}

enum probe_result { PROBE_OK, PROBE_FAILED, PROBE_NO_QEMU };

/*
 * Boot our kernel and initramfs, no disk, under KVM with cpu (NULL: under TCG) until cove-init
 * says HELLO or timeout_ms pass. why gets what went wrong; *ret_msr tells that QEMU stumbled on
 * MSR 0x10a (IA32_ARCH_CAPABILITIES), which another CPU model avoids.
 */
static enum probe_result probe_once(const struct vm_accel_ctx *x, const char *cpu, int timeout_ms,
				    uint64_t *ret_ms, bool *ret_msr, char *why, size_t size)
{
	char boot_log[4200], qemu_log[4200], line[512], name[64];
	struct vm_config c = {
		.qemu = x->qemu,
		.kernel = x->kernel,
		.initrd = x->initrd,
		.boot_log = boot_log,
		.qemu_log = qemu_log,
		.cpus = 1,
		.memory = PROBE_MEMORY,
		.kvm = cpu != NULL,
		.cpu = cpu,
		.confine_dir = x->confine_dir,
	};
	struct vm vm = VM_INIT;
	struct cove_error err = { 0 };
	_cleanup_free_ char *log = NULL;
	uint64_t t0, deadline;
	bool hello, exited;

	*ret_msr = false;
	str_printf(name, sizeof(name), "probe-%d.console.log", (int)getpid());
	verdict_path(x, name, boot_log, sizeof(boot_log));
	str_printf(name, sizeof(name), "probe-%d.qemu.log", (int)getpid());
	verdict_path(x, name, qemu_log, sizeof(qemu_log));
	if (!c.kvm) { /* as a container gets it: no TSC calibration under TCG */
		verdict_path(x, "tsc_khz", line, sizeof(line));
		if (vm_tsc_khz(line, &c.tsc_khz) < 0)
			c.tsc_khz = 0;
	}
	t0 = now_ns();
	deadline = t0 + (uint64_t)timeout_ms * 1000000ULL;
	if (vm_start(&c, &vm, &err) < 0) {
		str_copy(why, size, err.msg);
		return PROBE_NO_QEMU;
	}
	hello = vm_await_hello(&vm, deadline, NULL, &exited);
	if (hello) {
		*ret_ms = (now_ns() - t0) / 1000000ULL;
		vm_done(&vm);
		unlink(boot_log);
		unlink(qemu_log);
		return PROBE_OK;
	}
	vm_kill(&vm);
	vm_explain(&c, &vm, line, sizeof(line));
	if (exited)
		str_copy(why, size, line);
	else
		str_printf(why, size, "no answer within %d s (%s)", timeout_ms / 1000, line);
	if (read_file(qemu_log, 1u << 20, &log, NULL) == 0 && strstr(log, "MSR 0x10a"))
		*ret_msr = true;
	vm_done(&vm);
	unlink(boot_log);
	unlink(qemu_log);
	return PROBE_FAILED;
}

static int probe(const struct vm_accel_ctx *x, struct vm_verdict *v, struct cove_error *err)
{
	char why[512], first[512] = "", tcg_why[512];
	enum probe_result r;
	uint64_t tcg_ms;
	bool msr;

	memset(v, 0, sizeof(*v));
	v->probed = v->fresh = true;
	utc_now(v->when, sizeof(v->when));
	str_copy(v->cpu, sizeof(v->cpu), CPU_HOST);
	r = probe_once(x, v->cpu, PROBE_TIMEOUT_MS, &v->probe_ms, &msr, why, sizeof(why));
	if (r == PROBE_FAILED && msr) {
		str_copy(first, sizeof(first), why);
		str_copy(v->cpu, sizeof(v->cpu), CPU_NO_ARCH_CAPS);
		r = probe_once(x, v->cpu, PROBE_TIMEOUT_MS, &v->probe_ms, &msr, why, sizeof(why));
	}
	if (r == PROBE_NO_QEMU)
		return cove_error_set(err, EIO, "%s", why);
	if (r == PROBE_OK) {
		v->kvm = true;
		if (first[0])
			str_printf(v->reason, sizeof(v->reason),
				   "the probe booted under KVM in %llu ms with -cpu %s (with -cpu "
				   "host: %s)",
				   (unsigned long long)v->probe_ms, v->cpu, first);
		else
			str_printf(v->reason, sizeof(v->reason),
				   "the probe booted under KVM in %llu ms with -cpu %s",
				   (unsigned long long)v->probe_ms, v->cpu);
		return 0;
	}
	/* KVM is to blame only if the same guest boots under TCG */
	v->cpu[0] = '\0';
	v->probe_ms = 0;
	if (probe_once(x, NULL, CONFIRM_TIMEOUT_MS, &tcg_ms, &msr, tcg_why, sizeof(tcg_why)) !=
	    PROBE_OK) {
		v->inconclusive = true;
		str_printf(v->reason, sizeof(v->reason),
			   "the probe boot failed under KVM (%s) and under TCG (%s)", why, tcg_why);
		return 0;
	}
	str_printf(v->reason, sizeof(v->reason),
		   "the probe boot under KVM failed (%s); under TCG it booted in %llu ms", why,
		   (unsigned long long)tcg_ms);
	return 0;
}

int vm_accel_choose(const struct vm_accel_ctx *x, enum vm_accel want, struct vm_verdict *ret,
		    struct cove_error *err)
{
	const char *dev = vm_kvm_device();
	struct vm_verdict v = { 0 };
	char key[KEY_MAX];
	bool keyed;
	int fd, lock;

	if (want == VM_ACCEL_TCG) {
		str_copy(v.reason, sizeof(v.reason), "TCG was asked for");
		*ret = v;
		return 0;
	}
	fd = open(dev, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (want == VM_ACCEL_KVM)
			return cove_error_set(
				err, ENODEV,
				"KVM was asked for, but '%s' cannot be opened: %s; use "
				"--accel auto or tcg",
				dev, strerror(e));
		str_printf(v.reason, sizeof(v.reason), "no usable %s (%s)", dev, strerror(e));
		*ret = v;
		return 0;
	}
	close(fd);

	/* the cached verdict; an insistent --accel kvm probes a "broken" one again */
	keyed = make_key(x, key, sizeof(key)) == 0;
	if (keyed && load(x, key, &v) == 0 && (want == VM_ACCEL_AUTO || v.kvm))
		goto done;
	(void)mkdir_p(x->cache_dir, 0755);
	lock = lock_cache(x);
	/* someone may have probed while we waited for the lock */
	if (keyed && load(x, key, &v) == 0 && (want == VM_ACCEL_AUTO || v.kvm)) {
		closep(&lock);
		goto done;
	}
	if (probe(x, &v, err) < 0) {
		closep(&lock);
		return -EIO;
	}
	if (keyed && !v.inconclusive)
		(void)save(x, key, &v);
	closep(&lock);
	if (v.inconclusive && want == VM_ACCEL_KVM) {
		/* the guest itself does not boot: let the container's boot say why */
		v.kvm = true;
		str_copy(v.cpu, sizeof(v.cpu), CPU_HOST);
	}
done:
	if (want == VM_ACCEL_KVM && !v.kvm)
		return cove_error_set(err, ENODEV,
				      "KVM was asked for, but it does not work on this host (%s); "
				      "use --accel auto or tcg",
				      v.reason);
	*ret = v;
	return 0;
}

int vm_accel_forget(const struct vm_accel_ctx *x)
{
	char path[4200];
	int lock, r = 0;

	verdict_path(x, "accel", path, sizeof(path));
	lock = lock_cache(x);
	if (unlink(path) < 0 && errno != ENOENT)
		r = -errno;
	closep(&lock);
	return r;
}

int vm_accel_record_failure(const struct vm_accel_ctx *x, const char *why)
{
	struct vm_verdict v = { .probed = true };
	char key[KEY_MAX];
	int lock, r;

	if (make_key(x, key, sizeof(key)) < 0)
		return -EINVAL;
	utc_now(v.when, sizeof(v.when));
	str_printf(v.reason, sizeof(v.reason),
		   "the probe passed, but a container's boot under KVM then failed: %s", why);
	for (char *p = v.reason; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	(void)mkdir_p(x->cache_dir, 0755);
	lock = lock_cache(x);
	r = save(x, key, &v);
	closep(&lock);
	return r;
}
