/* SPDX-License-Identifier: Apache-2.0 */
/*
 * PROTO_STATS: what the VM uses, from /proc and /sys. Each number that cannot be read is left
 * 0; nothing here fails.
 */
#define _GNU_SOURCE
#include "guest.h"

#include <fcntl.h>
#include <string.h>
#include <time.h>

/* The start of a /proc or /sys file (the part of it a line-oriented parser needs). */
static bool read_head(const char *path, char *buf, size_t size)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0;

	if (fd < 0)
		return false;
	while (len < size - 1) {
		ssize_t n = read(fd, buf + len, size - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return len > 0;
}

/* The next decimal number in *p (skipping spaces), advancing *p past it; 0 when none. */
static uint64_t next_u64(const char **p)
{
	const char *s = *p;
	uint64_t v = 0;

	while (*s == ' ' || *s == '\t')
		s++;
	while (*s >= '0' && *s <= '9') {
		uint64_t d = (uint64_t)(*s - '0');
		v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
		s++;
	}
	*p = s;
	return v;
}

/* "Key:   123 kB" in /proc/meminfo, in bytes. */
static uint64_t meminfo_bytes(const char *meminfo, const char *key)
{
	size_t n = strlen(key);

	for (const char *line = meminfo; line && *line;) {
		if (strncmp(line, key, n) == 0 && line[n] == ':') {
			const char *p = line + n + 1;
			uint64_t kb = next_u64(&p);
			return kb > UINT64_MAX / 1024 ? UINT64_MAX : kb * 1024;
		}
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return 0;
}

/* Busy time of all CPUs from the "cpu " line of /proc/stat: user, nice, system, irq, softirq
 * and steal (not idle, not iowait), converted from USER_HZ ticks to nanoseconds. */
static uint64_t cpu_busy_ns(void)
{
	char buf[1024];
	const char *p;
	uint64_t f[8], busy, hz;
	long tck = sysconf(_SC_CLK_TCK);

	if (!read_head("/proc/stat", buf, sizeof(buf)) || strncmp(buf, "cpu ", 4) != 0)
		return 0;
	p = buf + 4;
	for (size_t i = 0; i < ARRAY_SIZE(f); i++)
		f[i] = next_u64(&p); /* user nice system idle iowait irq softirq steal */
	busy = f[0] + f[1] + f[2] + f[5] + f[6] + f[7];
	hz = tck > 0 ? (uint64_t)tck : 100;
	return busy / hz * 1000000000ULL + busy % hz * 1000000000ULL / hz;
}

/* Sectors read and written, from /sys/block/DISK/stat (fields 3 and 7), in bytes. */
static void disk_bytes(const char *disk, uint64_t *ret_read, uint64_t *ret_write)
{
	char path[128], buf[512];
	const char *p = buf;
	uint64_t f[7];

	if (!disk[0] || strchr(disk, '/') ||
	    str_printf(path, sizeof(path), "/sys/block/%s/stat", disk) < 0 ||
	    !read_head(path, buf, sizeof(buf)))
		return;
	for (size_t i = 0; i < ARRAY_SIZE(f); i++)
		f[i] = next_u64(&p);
	*ret_read = f[2] * 512;
	*ret_write = f[6] * 512;
}

/* Bytes received and sent by every interface but lo, from /proc/net/dev. */
static void net_bytes(uint64_t *ret_rx, uint64_t *ret_tx)
{
	_cleanup_free_ char *s = NULL;
	uint64_t rx = 0, tx = 0;
	char *line, *next;

	if (read_file("/proc/net/dev", 256 * 1024, &s, NULL) < 0)
		return;
	for (line = s; line; line = next) {
		char *colon, *name;
		const char *p;
		uint64_t f[9];

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		colon = strchr(line, ':');
		if (!colon)
			continue; /* the two header lines */
		*colon = '\0';
		for (name = line; *name == ' '; name++)
			;
		if (strcmp(name, "lo") == 0)
			continue;
		p = colon + 1;
		/* rx: bytes packets errs drop fifo frame compressed multicast; tx: bytes ... */
		for (size_t i = 0; i < ARRAY_SIZE(f); i++)
			f[i] = next_u64(&p);
		rx += f[0];
		tx += f[8];
	}
	*ret_rx = rx;
	*ret_tx = tx;
}

/* The container's processes: neither cove-init (PID 1) nor kernel threads (kthreadd, PID 2,
 * and its children), as docker's PIDS counts the container's own. */
static uint32_t count_pids(void)
{
	_cleanup_(closedirp) DIR *d = opendir("/proc");
	struct dirent *de;
	uint32_t n = 0;

	while (d && (de = readdir(d))) {
		const char *c = de->d_name, *rp;
		char path[300], stat[512];
		long ppid;

		while (*c >= '0' && *c <= '9')
			c++;
		if (c == de->d_name || *c != '\0' || strcmp(de->d_name, "1") == 0 ||
		    strcmp(de->d_name, "2") == 0)
			continue;
		if (str_printf(path, sizeof(path), "/proc/%s/stat", de->d_name) < 0 ||
		    !read_head(path, stat, sizeof(stat)) || !(rp = strrchr(stat, ')')))
			continue;
		/* "pid (comm) state ppid ..." */
		if (sscanf(rp + 1, " %*c %ld", &ppid) == 1 && ppid != 2)
			n++;
	}
	return n;
}

void guest_stats(const char *disk, struct proto_stats *ret)
{
	char meminfo[4096];
	struct timespec ts;
	long ncpus = sysconf(_SC_NPROCESSORS_ONLN);

	*ret = (struct proto_stats){ 0 };
	if (read_head("/proc/meminfo", meminfo, sizeof(meminfo))) {
		ret->mem_total = meminfo_bytes(meminfo, "MemTotal");
		ret->mem_available = meminfo_bytes(meminfo, "MemAvailable");
	}
	ret->cpu_ns = cpu_busy_ns();
	if (clock_gettime(CLOCK_BOOTTIME, &ts) == 0)
		ret->uptime_ns = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	disk_bytes(disk, &ret->disk_read, &ret->disk_write);
	net_bytes(&ret->net_rx, &ret->net_tx);
	ret->pids = count_pids();
	ret->ncpus = ncpus > 0 ? (uint32_t)ncpus : 0;
}
