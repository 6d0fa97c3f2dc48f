/* SPDX-License-Identifier: Apache-2.0 */
/* The overlay is checked by QEMU's own tools: qemu-img check, info and compare. */
#include "test.h"
#include "vm/qcow2.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[] = "/tmp/cove-test-qcow2.XXXXXX";
static char raw[256], ovl[256];

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TEST(overlay_passes_qemu_img_check)
{
	struct cove_error err = { 0 };

	CHECK_EQ_INT(qcow2_create_overlay(ovl, raw, "raw", 3 << 20, &err), 0);
	CHECK_EQ_INT(sh("qemu-img check -q '%s' >/dev/null", ovl), 0);
}

TEST(overlay_reads_through_to_backing)
{
	CHECK_EQ_INT(sh("qemu-img compare -q '%s' '%s'", ovl, raw), 0);
	CHECK_EQ_INT(sh("qemu-img info '%s' | grep -q 'backing file format: raw'", ovl), 0);
}

TEST(overlay_takes_writes_without_touching_backing)
{
	CHECK_EQ_INT(sh("cp '%s' '%s.orig'", raw, raw), 0);
	CHECK_EQ_INT(sh("qemu-io -f qcow2 -c 'write -P 0xab 65536 131072' '%s' >/dev/null", ovl), 0);
	CHECK_EQ_INT(sh("qemu-img check -q '%s'", ovl), 0);
	CHECK_EQ_INT(sh("cmp -s '%s' '%s.orig'", raw, raw), 0);
	CHECK(sh("qemu-img compare -q '%s' '%s'", ovl, raw) != 0);
}

TEST(large_virtual_size)
{
	struct cove_error err = { 0 };
	char big[300];

	snprintf(big, sizeof(big), "%s/big.qcow2", dir);
	/* 4 TiB needs a second L1 cluster */
	CHECK_EQ_INT(qcow2_create_overlay(big, raw, "raw", 4ULL << 40, &err), 0);
	CHECK_EQ_INT(sh("qemu-img check -q '%s'", big), 0);
}

TEST(refuses_existing_file_and_bad_input)
{
	struct cove_error err = { 0 };

	CHECK(qcow2_create_overlay(ovl, raw, "raw", 1 << 20, &err) == -EEXIST);
	CHECK(strstr(err.msg, ovl) != NULL);
	memset(&err, 0, sizeof(err));
	CHECK(qcow2_create_overlay("/tmp/x.qcow2", "relative", "raw", 1 << 20, &err) == -EINVAL);
	memset(&err, 0, sizeof(err));
	CHECK(qcow2_create_overlay("/tmp/x.qcow2", raw, "raw", 1000, &err) == -EINVAL);
}

int main(void)
{
	int fd;
	char buf[4096];

	if (!mkdtemp(dir))
		return 1;
	snprintf(raw, sizeof(raw), "%s/base.raw", dir);
	snprintf(ovl, sizeof(ovl), "%s/disk.qcow2", dir);
	fd = open(raw, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	for (int i = 0; i < 768; i++) {
		memset(buf, i & 0xff, sizeof(buf));
		if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
			return 1;
	}
	close(fd);

	RUN(overlay_passes_qemu_img_check);
	RUN(overlay_reads_through_to_backing);
	RUN(overlay_takes_writes_without_touching_backing);
	RUN(large_virtual_size);
	RUN(refuses_existing_file_and_bad_input);
	sh("rm -rf '%s'", dir);
	return test_done();
}
