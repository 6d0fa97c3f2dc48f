/* SPDX-License-Identifier: Apache-2.0 */
/* Linux capability names and sets (libc only: compiled into the CLI and into cove-init). */
#include "caps.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

/* linux/capability.h, in order: the index is the capability number. */
static const char *const cap_names[CAPS_LAST + 1] = {
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_DAC_READ_SEARCH",
	"CAP_FOWNER",
	"CAP_FSETID",
	"CAP_KILL",
	"CAP_SETGID",
	"CAP_SETUID",
	"CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST",
	"CAP_NET_ADMIN",
	"CAP_NET_RAW",
	"CAP_IPC_LOCK",
	"CAP_IPC_OWNER",
	"CAP_SYS_MODULE",
	"CAP_SYS_RAWIO",
	"CAP_SYS_CHROOT",
	"CAP_SYS_PTRACE",
	"CAP_SYS_PACCT",
	"CAP_SYS_ADMIN",
	"CAP_SYS_BOOT",
	"CAP_SYS_NICE",
	"CAP_SYS_RESOURCE",
	"CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG",
	"CAP_MKNOD",
	"CAP_LEASE",
	"CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL",
	"CAP_SETFCAP",
	"CAP_MAC_OVERRIDE",
	"CAP_MAC_ADMIN",
	"CAP_SYSLOG",
	"CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND",
	"CAP_AUDIT_READ",
	"CAP_PERFMON",
	"CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
};

#define BIT(n) (UINT64_C(1) << (n))

/* CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE NET_RAW
 * SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP */
const uint64_t caps_default = BIT(0) | BIT(1) | BIT(3) | BIT(4) | BIT(5) | BIT(6) | BIT(7) |
			      BIT(8) | BIT(10) | BIT(13) | BIT(18) | BIT(27) | BIT(29) | BIT(31);

int caps_parse(const char *name, uint64_t *ret)
{
	if (!name)
		return -EINVAL;
	if (strcasecmp(name, "ALL") == 0) {
		*ret = CAPS_ALL;
		return 0;
	}
	if (strncasecmp(name, "CAP_", 4) == 0)
		name += 4;
	if (!name[0])
		return -EINVAL;
	for (unsigned i = 0; i <= CAPS_LAST; i++) {
		if (strcasecmp(name, cap_names[i] + 4) == 0) {
			*ret = BIT(i);
			return 0;
		}
	}
	return -EINVAL;
}

const char *caps_name(unsigned cap)
{
	return cap <= CAPS_LAST ? cap_names[cap] : NULL;
}

int caps_format(uint64_t set, char *buf, size_t size)
{
	size_t len = 0;

	if (size == 0)
		return -ENOSPC;
	buf[0] = '\0';
	for (unsigned i = 0; i <= CAPS_LAST; i++) {
		size_t n;

		if (!(set & BIT(i)))
			continue;
		n = strlen(cap_names[i]);
		/* separator, name, terminating NUL */
		if ((len ? 1 : 0) + n + 1 > size - len) {
			buf[0] = '\0';
			return -ENOSPC;
		}
		if (len)
			buf[len++] = ',';
		memcpy(buf + len, cap_names[i], n + 1);
		len += n;
	}
	return 0;
}

const char *const proto_masked_paths[] = {
	"/proc/acpi",	     "/proc/asound",	   "/proc/interrupts",
	"/proc/kcore",	     "/proc/keys",	   "/proc/latency_stats",
	"/proc/sched_debug", "/proc/scsi",	   "/proc/timer_list",
	"/proc/timer_stats", "/sys/devices/virtual/powercap", "/sys/firmware",
};
const size_t proto_n_masked_paths = sizeof(proto_masked_paths) / sizeof(proto_masked_paths[0]);

const char *const proto_readonly_paths[] = {
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};
const size_t proto_n_readonly_paths = sizeof(proto_readonly_paths) / sizeof(proto_readonly_paths[0]);
