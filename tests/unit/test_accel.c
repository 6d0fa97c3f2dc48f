/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The accelerator choice without a guest: what is asked for, a missing KVM device, and a probe
 * whose QEMU (/bin/false) fails under KVM and TCG alike, which blames the guest, not KVM. The
 * probe with a real guest is tested by tests/integration/t_accel.sh.
 */
#include "test.h"
#include "vm/accel.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/cove-test-accel.XXXXXX";
static char kernel[256], initrd[256], dev[256], cache[256], verdict[300];

static struct vm_accel_ctx ctx(const char *qemu)
{
	return (struct vm_accel_ctx){ .qemu = qemu, .kernel = kernel, .initrd = initrd,
				      .cache_dir = cache };
}

static void touch(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd >= 0) {
		if (write(fd, text, strlen(text)) < 0)
			perror(path);
		close(fd);
	}
}

TEST(parse)
{
	enum vm_accel a = VM_ACCEL_TCG;

	CHECK_EQ_INT(vm_accel_parse("auto", &a), 0);
	CHECK_EQ_INT(a, VM_ACCEL_AUTO);
	CHECK_EQ_INT(vm_accel_parse("kvm", &a), 0);
	CHECK_EQ_INT(a, VM_ACCEL_KVM);
	CHECK_EQ_INT(vm_accel_parse("tcg", &a), 0);
	CHECK_EQ_INT(a, VM_ACCEL_TCG);
	CHECK_EQ_INT(vm_accel_parse("KVM", &a), -EINVAL);
	CHECK_EQ_INT(vm_accel_parse("", &a), -EINVAL);
	CHECK_EQ_INT(vm_accel_parse("kvm ", &a), -EINVAL);
	CHECK_EQ_STR(vm_accel_name(VM_ACCEL_KVM), "kvm");
}

TEST(wanted_flag_then_env_then_auto)
{
	struct cove_error err = { 0 };
	enum vm_accel a;

	unsetenv("COVE_ACCEL");
	CHECK_EQ_INT(vm_accel_wanted(NULL, &a, &err), 0);
	CHECK_EQ_INT(a, VM_ACCEL_AUTO);
	setenv("COVE_ACCEL", "tcg", 1);
	CHECK_EQ_INT(vm_accel_wanted(NULL, &a, &err), 0);
	CHECK_EQ_INT(a, VM_ACCEL_TCG);
	CHECK_EQ_INT(vm_accel_wanted("kvm", &a, &err), 0);
	CHECK_EQ_INT(a, VM_ACCEL_KVM);
	setenv("COVE_ACCEL", "fast\nlane", 1);
	CHECK_EQ_INT(vm_accel_wanted(NULL, &a, &err), -EINVAL);
	CHECK_EQ_STR(err.msg, "invalid COVE_ACCEL 'fast?lane': expected kvm, tcg or auto");
	err = (struct cove_error){ 0 };
	CHECK_EQ_INT(vm_accel_wanted("kv", &a, &err), -EINVAL);
	CHECK_EQ_STR(err.msg, "invalid --accel 'kv': expected kvm, tcg or auto");
	unsetenv("COVE_ACCEL");
}

TEST(tcg_asked_for_probes_nothing)
{
	struct vm_accel_ctx x = ctx("/nonexistent/qemu");
	struct cove_error err = { 0 };
	struct vm_verdict v;

	CHECK_EQ_INT(vm_accel_choose(&x, VM_ACCEL_TCG, &v, &err), 0);
	CHECK(!v.kvm && !v.probed);
	CHECK_EQ_INT(access(verdict, F_OK), -1);
}

TEST(no_device)
{
	struct vm_accel_ctx x = ctx("/bin/false");
	struct cove_error err = { 0 };
	struct vm_verdict v;

	setenv("COVE_KVM_DEVICE", "/nonexistent/kvm", 1);
	CHECK_EQ_INT(vm_accel_choose(&x, VM_ACCEL_AUTO, &v, &err), 0);
	CHECK(!v.kvm && !v.probed);
	CHECK_EQ_STR(v.reason, "no usable /nonexistent/kvm (No such file or directory)");
	CHECK_EQ_INT(vm_accel_choose(&x, VM_ACCEL_KVM, &v, &err), -ENODEV);
	CHECK_EQ_STR(err.msg, "KVM was asked for, but '/nonexistent/kvm' cannot be opened: No such "
			      "file or directory; use --accel auto or tcg");
	setenv("COVE_KVM_DEVICE", dev, 1);
}

/* a QEMU that fails under TCG too: the guest (here QEMU itself) is to blame; nothing cached */
TEST(probe_failing_everywhere_is_inconclusive)
{
	struct vm_accel_ctx x = ctx("/bin/false");
	struct cove_error err = { 0 };
	struct vm_verdict v;

	touch(verdict, "key garbage\naccel tcg\n");
	CHECK_EQ_INT(vm_accel_choose(&x, VM_ACCEL_AUTO, &v, &err), 0);
	CHECK(!v.kvm && v.probed && v.fresh && v.inconclusive);
	CHECK(strstr(v.reason, "the probe boot failed under KVM (") == v.reason);
	CHECK(strstr(v.reason, ") and under TCG (") != NULL);
	/* the stale verdict was not trusted, and nothing replaced it */
	{
		char *s = NULL;
		CHECK_EQ_INT(read_file(verdict, 4096, &s, NULL), 0);
		CHECK_EQ_STR(s, "key garbage\naccel tcg\n");
		free(s);
	}
	/* --accel kvm then boots under KVM: the container's own boot says what is wrong */
	CHECK_EQ_INT(vm_accel_choose(&x, VM_ACCEL_KVM, &v, &err), 0);
	CHECK(v.kvm);
	CHECK_EQ_STR(v.cpu, "host");
}

TEST(missing_kernel_is_an_error_not_a_verdict)
{
	struct vm_accel_ctx x = ctx("/bin/false");
	struct cove_error err = { 0 };
	struct vm_verdict v;

	x.kernel = "/nonexistent/vmlinux";
	CHECK_EQ_INT(vm_accel_choose(&x, VM_ACCEL_AUTO, &v, &err), -EIO);
	CHECK(strstr(err.msg, "guest kernel '/nonexistent/vmlinux' is missing") == err.msg);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	snprintf(kernel, sizeof(kernel), "%s/vmlinux", dir);
	snprintf(initrd, sizeof(initrd), "%s/initrd", dir);
	snprintf(dev, sizeof(dev), "%s/kvm", dir);
	snprintf(cache, sizeof(cache), "%s/cache", dir);
	snprintf(verdict, sizeof(verdict), "%s/accel", cache);
	mkdir(cache, 0755);
	touch(kernel, "");
	touch(initrd, "");
	touch(dev, "");
	setenv("COVE_KVM_DEVICE", dev, 1);
	RUN(parse);
	RUN(wanted_flag_then_env_then_auto);
	RUN(tcg_asked_for_probes_nothing);
	RUN(no_device);
	RUN(probe_failing_everywhere_is_inconclusive);
	RUN(missing_kernel_is_an_error_not_a_verdict);
	{
		char cmd[300];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			perror("rm");
	}
	return test_done();
}
