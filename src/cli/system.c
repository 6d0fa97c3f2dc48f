/* SPDX-License-Identifier: Apache-2.0 */
/* cove system info: what cove will use on this host. */
#define _GNU_SOURCE
#include "cli.h"
#include "options.h"

#include "config.h"

#include "engine/spec.h"
#include "engine/template.h"
#include "vm/accel.h"

#include <string.h>
#include <sys/stat.h>

static void file_line(const char *label, const char *path)
{
	struct stat st;

	if (stat(path, &st) == 0)
		printf("%-14s %s (%lld KiB)\n", label, path, (long long)st.st_size / 1024);
	else
		printf("%-14s %s (missing)\n", label, path);
}

static void qemu_version(const char *qemu, char *buf, size_t size)
{
	char cmd[4200];
	_cleanup_(pclosep) FILE *f = NULL;

	str_copy(buf, size, "unknown");
	if (str_printf(cmd, sizeof(cmd), "'%s' --version 2>/dev/null", qemu) < 0 || strchr(qemu, '\''))
		return;
	f = popen(cmd, "re");
	if (f && fgets(buf, (int)size, f))
		buf[strcspn(buf, "\n")] = '\0';
}

/* The accelerator, and the KVM line that says why: asks for a probe boot where none is known. */
static void accel_lines(const struct cove_paths *p, const char *qemu, bool reprobe)
{
	struct vm_accel_ctx x = { .qemu = qemu, .kernel = p->kernel, .initrd = p->initrd,
				  .cache_dir = p->cache, .confine_dir = p->run };
	struct cove_error err = { 0 };
	struct vm_verdict v;
	enum vm_accel want;
	uint64_t khz = 0;

	if (!qemu) {
		printf("%-14s unknown: QEMU is missing\n", "accelerator");
		return;
	}
	if (reprobe && vm_accel_forget(&x) < 0)
		printf("%-14s cannot forget the cached verdict in %s\n", "kvm probe", p->cache);
	if (vm_accel_wanted(NULL, &want, &err) < 0 || vm_accel_choose(&x, want, &v, &err) < 0) {
		printf("%-14s none: %s\n", "accelerator", err.msg);
		return;
	}
	printf("%-14s %s%s\n", "accelerator", v.kvm ? "kvm" : "tcg",
	       v.kvm ? "" : " (software emulation, slower)");
	if (want != VM_ACCEL_AUTO)
		printf("%-14s %s (COVE_ACCEL)\n", "asked for", vm_accel_name(want));
	if (v.probed)
		printf("%-14s %s %s%s: %s\n", "kvm probe", vm_kvm_device(), v.when,
		       v.fresh ? " (just now)" : "", v.reason);
	else
		printf("%-14s not probed: %s\n", "kvm probe", v.reason);
	if (v.kvm)
		printf("%-14s %s\n", "cpu", v.cpu);
	else if (vm_tsc_khz(NULL, &khz) == 0)
		printf("%-14s %llu kHz\n", "host tsc", (unsigned long long)khz);
}

static int list_templates(const struct cove_paths *p)
{
	char **lines;
	size_t n;

	if (template_list(p, &lines, &n) < 0)
		return EXIT_COVE;
	for (size_t i = 0; i < n; i++) {
		printf("%-14s %s\n", "template", lines[i]);
		free(lines[i]);
	}
	if (!n)
		printf("%-14s none yet (%s)\n", "template", p->templates);
	free(lines);
	return 0;
}

static int info(bool reprobe)
{
	struct cove_error err = { 0 };
	struct cove_paths p;
	char qemu[4096], qv[256], release[4096];
	_cleanup_free_ char *rel = NULL;
	bool have_qemu;

	if (paths_init_or_report(&p) < 0)
		return EXIT_COVE;
	printf("%-14s %s\n", "cove", COVE_VERSION);
	have_qemu = vm_find_qemu(qemu, sizeof(qemu), &err) == 0;
	accel_lines(&p, have_qemu ? qemu : NULL, reprobe);
	if (have_qemu) {
		qemu_version(qemu, qv, sizeof(qv));
		printf("%-14s %s (%s)\n", "qemu", qemu, qv);
	} else {
		printf("%-14s missing: %s\n", "qemu", err.msg);
	}
	file_line("kernel", p.kernel);
	/* the kernel build records its release next to the cached vmlinux */
	if (str_printf(release, sizeof(release), "%s.release", p.kernel) == 0 &&
	    read_file(release, 256, &rel, NULL) == 0) {
		rel[strcspn(rel, "\n")] = '\0';
		printf("%-14s %s\n", "kernel release", rel);
	}
	file_line("initramfs", p.initrd);
	printf("%-14s %s\n", "images", p.images);
	printf("%-14s %s\n", "state", p.state);
	return list_templates(&p);
}

static int info_opt(int c, const char *value, void *ud)
{
	*(bool *)ud = true; /* --probe */
	return 0;
}

static int cmd_info(int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{ 'P', 0, "probe", NULL, "forget that verdict and test KVM again now" },
		{ 0 },
	};
	static const struct cli_verb v = {
		"system info", "[OPTIONS]",
		"Show the accelerator (kvm or tcg) and why, the guest kernel, the initramfs, where\n"
		"state is kept, and the versions of cove, QEMU and the guest kernel.\n\n"
		"KVM is used where a test boot of cove's kernel under it reached cove's init on\n"
		"this host; that verdict is kept until the host kernel, QEMU or cove's kernel or\n"
		"initramfs change. COVE_ACCEL=kvm|tcg|auto (or --accel on run, create and start)\n"
		"chooses instead.",
		opts, .max_operands = 0,
	};
	bool reprobe = false;
	int first, r;

	r = cli_parse(&v, argc, argv, info_opt, &reprobe, &first);
	if (r)
		return r > 0 ? 0 : EXIT_COVE;
	return info(reprobe);
}

struct prepare_opts {
	uint64_t memory;
	unsigned cpus;
};

static int prepare_opt(int c, const char *value, void *ud)
{
	struct prepare_opts *o = ud;

	if (c == 'm')
		return cli_parse_memory(value, &o->memory);
	return cli_parse_cpus(value, &o->cpus); /* as run takes it: the same shape */
}

static int cmd_prepare(int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{ 'm', 'm', "memory", "SIZE", "for VMs of this memory (default 512m)" },
		{ 'c', 0, "cpus", "N", "for VMs of this many virtual CPUs, as run takes it (default 1)" },
		{ 0 },
	};
	static const struct cli_verb v = {
		"system prepare", "[OPTIONS]",
		"Make the templates that containers of this shape start from: a VM booted once\n"
		"and saved, restored by each later start instead of a boot (one for a container\n"
		"on a network, one for --network none). The first start of a shape makes its\n"
		"template anyway; this does it now. COVE_TEMPLATE=0 turns templates off.",
		opts, .max_operands = 0,
	};
	struct prepare_opts o = { .memory = SPEC_DEFAULT_MEMORY, .cpus = 1 };
	struct cove_error err = { 0 };
	struct cove_paths p;
	int first, r;

	r = cli_parse(&v, argc, argv, prepare_opt, &o, &first);
	if (r)
		return r > 0 ? 0 : EXIT_COVE;
	if (paths_init_or_report(&p) < 0)
		return EXIT_COVE;
	for (size_t nics = 1; nics <= 1; nics--) {
		r = template_prepare(&p, o.memory, o.cpus, nics, TEMPLATE_DISK, &err);
		if (r == -EBUSY) {
			err = (struct cove_error){ 0 };
			continue; /* another process makes it */
		}
		if (r < 0) {
			cli_error("cannot make a template: %s", err.msg);
			return EXIT_COVE;
		}
	}
	return list_templates(&p);
}

int cmd_system(int argc, char **argv)
{
	static const struct cli_command sub[] = {
		{ "info", cmd_info, "Show what cove uses on this host, and why" },
		{ "prepare", cmd_prepare, "Make the templates containers start from, now" },
	};

	return cli_dispatch("system", "About this host.", sub, ARRAY_SIZE(sub), argc, argv);
}
