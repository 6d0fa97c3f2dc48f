/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Where cove finds its guest kernel, initramfs and offline images, and where it keeps state.
 * Run from a build directory (meson-private/ next to the binary) it uses the build's own
 * outputs; installed, it uses COVE_DATADIR. COVE_KERNEL, COVE_INITRD, COVE_ROOT and
 * COVE_TEMPLATES override.
 */
#define _GNU_SOURCE
#include "engine.h"

#include "config.h"

#include <limits.h>
#include <string.h>
#include <sys/stat.h>

static int exe_dir(char *buf, size_t size)
{
	ssize_t n = readlink("/proc/self/exe", buf, size - 1);
	char *slash;

	if (n < 0)
		return -errno;
	buf[n] = '\0';
	slash = strrchr(buf, '/');
	if (!slash)
		return -EINVAL;
	*slash = '\0';
	return 0;
}

static bool is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int paths_init(struct cove_paths *p, struct cove_error *err)
{
	char dir[PATH_MAX], probe[PATH_MAX + 32];
	const char *env;

	memset(p, 0, sizeof(*p));
	if (exe_dir(dir, sizeof(dir)) == 0 &&
	    str_printf(probe, sizeof(probe), "%s/meson-private", dir) == 0 && is_dir(probe))
		p->build_tree = true;

	if (p->build_tree) {
		str_printf(p->kernel, sizeof(p->kernel), "%s/kernel/vmlinux", dir);
		str_printf(p->initrd, sizeof(p->initrd), "%s/src/guest/initramfs.cpio.gz", dir);
		str_printf(p->images, sizeof(p->images), "%s/images/busybox", dir);
	} else {
		str_printf(p->kernel, sizeof(p->kernel), "%s/vmlinux", COVE_DATADIR);
		str_printf(p->initrd, sizeof(p->initrd), "%s/initramfs.cpio.gz", COVE_DATADIR);
		str_printf(p->images, sizeof(p->images), "%s/images", COVE_DATADIR);
	}
	if ((env = getenv("COVE_KERNEL")) && *env)
		str_copy(p->kernel, sizeof(p->kernel), env);
	if ((env = getenv("COVE_INITRD")) && *env)
		str_copy(p->initrd, sizeof(p->initrd), env);

	if ((env = getenv("COVE_ROOT")) && *env) {
		if (str_printf(p->state, sizeof(p->state), "%s", env) < 0)
			return cove_error_set(err, ENAMETOOLONG, "COVE_ROOT is too long");
	} else if (geteuid() == 0) {
		str_copy(p->state, sizeof(p->state), "/var/lib/cove");
	} else if ((env = getenv("XDG_DATA_HOME")) && *env) {
		str_printf(p->state, sizeof(p->state), "%s/cove", env);
	} else if ((env = getenv("HOME")) && *env) {
		str_printf(p->state, sizeof(p->state), "%s/.local/share/cove", env);
	} else {
		return cove_error_set(err, ENOENT, "cannot tell where to keep state: set HOME or COVE_ROOT");
	}
	str_printf(p->cache, sizeof(p->cache), "%s/cache", p->state);
	if ((env = getenv("COVE_TEMPLATES")) && *env)
		str_copy(p->templates, sizeof(p->templates), env);
	else
		str_printf(p->templates, sizeof(p->templates), "%s/templates", p->cache);
	if ((env = getenv("COVE_ROOT")) && *env)
		str_printf(p->run, sizeof(p->run), "%s/run", p->state);
	else if (geteuid() == 0)
		str_copy(p->run, sizeof(p->run), "/run/cove");
	else if ((env = getenv("XDG_RUNTIME_DIR")) && *env)
		str_printf(p->run, sizeof(p->run), "%s/cove", env);
	else
		str_printf(p->run, sizeof(p->run), "%s/run", p->state);
	return 0;
}

int paths_prepare_run(const struct cove_paths *p, struct cove_error *err)
{
	struct stat st;
	int r = mkdir_p(p->run, 0700);

	if (r < 0)
		return cove_error_set(err, -r, "cannot create '%s': %s", p->run, strerror(-r));
	if (lstat(p->run, &st) < 0)
		return cove_error_set(err, errno, "cannot use '%s': %s", p->run, strerror(errno));
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022))
		return cove_error_set(err, EPERM,
				      "'%s' is not a directory of this user's that only it may "
				      "write (owner %u, mode %o): remove it, or give it to uid %u "
				      "with mode 0700",
				      p->run, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777),
				      (unsigned)geteuid());
	return 0;
}
