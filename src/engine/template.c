/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "template.h"

#include "image/digest.h"
#include "proto/proto.h"
#include "vm/accel.h"
#include "vm/qcow2.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#define SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)
#define META_MAX 4096
#define STATE_MAX (64u << 20)
#define COPY_CHUNK (1u << 20)
#define RAM_PAGE 4096u
#define SAVE_TIMEOUT_MS 60000
#define KEEP_IDLE_S 120 /* a keeper holds a template's memfd this long after its last use */

bool template_enabled(void)
{
	const char *e = getenv("COVE_TEMPLATE");

	return !(e && strcmp(e, "0") == 0);
}

bool template_fits(const struct vm_config *c)
{
	return (c->disk || c->blank_disk) && c->nics <= VM_MAX_NICS &&
	       c->nshares <= VM_MAX_SHARES && c->ndisks <= VM_MAX_DISKS;
}

/* a volume's disk: its size, whether it is open (a container's) or blank (a template's) */
static int volume_size(const struct vm_disk *d, uint64_t *ret)
{
	struct stat st;

	*ret = d->blank;
	if (d->fd <= 0)
		return 0;
	if (fstat(d->fd, &st) < 0)
		return -errno;
	*ret = (uint64_t)st.st_size;
	return 0;
}

/* c's volume disks as a template has them: zeros of the same sizes */
static int blank_disks(const struct vm_config *c, struct vm_disk disks[VM_MAX_DISKS])
{
	if (c->ndisks > VM_MAX_DISKS)
		return -E2BIG;
	for (size_t i = 0; i < c->ndisks; i++) {
		int r;

		disks[i] = c->disks[i];
		if ((r = volume_size(&c->disks[i], &disks[i].blank)) < 0)
			return r;
		disks[i].fd = 0;
	}
	return 0;
}

/* "rw ro" of the shares, "SIZE:rw" of the disks: the devices a template must have alike */
static int devices_text(const struct vm_config *c, char *shares, char *disks, size_t size)
{
	size_t n = 0;

	shares[0] = disks[0] = '\0';
	for (size_t i = 0; i < c->nshares; i++, n = strlen(shares))
		str_printf(shares + n, size - n, " %s", c->shares[i].readonly ? "ro" : "rw");
	n = 0;
	for (size_t i = 0; i < c->ndisks; i++, n = strlen(disks)) {
		uint64_t v;
		int r = volume_size(&c->disks[i], &v);

		if (r < 0)
			return r;
		str_printf(disks + n, size - n, " %llu:%s", (unsigned long long)v,
			   c->disks[i].readonly ? "ro" : "rw");
	}
	return 0;
}

/* what identifies a file's version without reading it */
static int file_id(const char *path, char *buf, size_t size)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	return str_printf(buf, size, "%llu:%llu:%llu:%lld.%09ld", (unsigned long long)st.st_dev,
			  (unsigned long long)st.st_ino, (unsigned long long)st.st_size,
			  (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
}

/* what QEMU maps: -m counts whole MiB */
static uint64_t ram_size(const struct vm_config *c)
{
	return c->memory >> 20 << 20;
}

static int disk_size(const struct vm_config *c, uint64_t *ret)
{
	*ret = c->blank_disk;
	return c->disk ? disk_virtual_size(c->disk, c->disk_format, ret) : 0;
}

/*
 * The key: the files first (the lines up to "accel", which prune compares), then the shape:
 * everything a restored VM must have in common with its template's boot. Not the TSC rate
 * given to a TCG guest (measured again in each state directory, a few kHz apart): the host's
 * clock is the same.
 */
static int key_of(const struct vm_config *c, char *text, size_t size, char id[TEMPLATE_ID_LEN + 1])
{
	char k[128], i[128], q[128], digest[DIGEST_STRING_MAX];
	char shares[4 * VM_MAX_SHARES], disks[32 * VM_MAX_DISKS];
	uint64_t disk = 0;
	int r;

	if ((r = file_id(c->kernel, k, sizeof(k))) < 0 || (r = file_id(c->initrd, i, sizeof(i))) < 0 ||
	    (r = file_id(c->qemu, q, sizeof(q))) < 0 || (r = disk_size(c, &disk)) < 0 ||
	    (r = devices_text(c, shares, disks, sizeof(disks))) < 0)
		return r;
	r = str_printf(text, size,
		       "cove-template 1\nproto %d\nkernel %s\ninitrd %s\nqemu %s\naccel %s\ncpu %s\n"
		       "debug %d\nmemory %llu\ncpus %u\nnics %zu\ndisk %llu\nshares%s\nvolumes%s\n",
		       PROTO_VERSION, k, i, q, c->kvm ? "kvm" : "tcg", c->kvm && c->cpu ? c->cpu : "-",
		       getenv("COVE_DEBUG") != NULL,
		       (unsigned long long)c->memory, c->cpus, c->nics, (unsigned long long)disk,
		       shares, disks);
	if (r < 0 || (r = digest_buffer(text, strlen(text), digest)) < 0)
		return r;
	str_printf(id, TEMPLATE_ID_LEN + 1, "%.*s", TEMPLATE_ID_LEN,
		   digest + DIGEST_SHA256_PREFIX_LEN);
	return 0;
}

/* the next page of buf's n bytes from i (the last may be short): all zeros? */
static bool zero_page(const uint8_t *buf, size_t n, size_t i, size_t *len)
{
	*len = n - i < RAM_PAGE ? n - i : RAM_PAGE;
	return mem_is_zero(buf + i, *len);
}

/* buf's n bytes at off of to, but for its pages of zeros (holes there) */
static int write_nonzero(int to, const uint8_t *buf, size_t n, off_t off)
{
	size_t i = 0, len;
	int r;

	while (i < n) {
		size_t start;

		while (i < n && zero_page(buf, n, i, &len))
			i += len;
		start = i;
		while (i < n && !zero_page(buf, n, i, &len))
			i += len;
		if (i == start)
			continue;
		if (lseek(to, off + (off_t)start, SEEK_SET) < 0)
			return -errno;
		r = write_full(to, buf + start, i - start);
		if (r < 0)
			return r;
	}
	return 0;
}

/*
 * The data of from (what SEEK_DATA finds: the pages the guest touched), copied to the same
 * offsets of to when to >= 0, a fresh file: its pages of zeros stay holes there (~8 MiB of a
 * template's RAM here). The digest covers each range's offset, length and bytes.
 */
static int copy_ranges(int from, int to, uint64_t size, char digest[DIGEST_STRING_MAX])
{
	_cleanup_digest_hasher_ struct digest_hasher *h = NULL;
	_cleanup_free_ uint8_t *buf = malloc(COPY_CHUNK);
	off_t off = 0;
	int r;

	if (!buf || digest_hasher_new(&h) < 0)
		return -ENOMEM;
	for (;;) {
		off_t data = lseek(from, off, SEEK_DATA), hole;
		uint8_t range[16];

		if (data < 0 && errno == ENXIO)
			break;
		if (data < 0 || (hole = lseek(from, data, SEEK_HOLE)) < 0)
			return -errno;
		if ((uint64_t)hole > size)
			return -EFBIG;
		for (int i = 0; i < 8; i++) {
			range[i] = (uint8_t)((uint64_t)data >> (8 * i));
			range[8 + i] = (uint8_t)((uint64_t)(hole - data) >> (8 * i));
		}
		digest_hasher_update(h, range, sizeof(range));
		if (lseek(from, data, SEEK_SET) < 0)
			return -errno;
		for (off_t pos = data; pos < hole;) {
			size_t n = (size_t)(hole - pos) < COPY_CHUNK ? (size_t)(hole - pos) : COPY_CHUNK;

			if ((r = read_full(from, buf, n)) < 0)
				return r;
			digest_hasher_update(h, buf, n);
			if (to >= 0 && (r = write_nonzero(to, buf, n, pos)) < 0)
				return r;
			pos += (off_t)n;
		}
		off = hole;
	}
	return digest_hasher_final(h, digest);
}

/* meta's "NAME sha256:..." line */
static int meta_digest(const char *meta, const char *name, char ret[DIGEST_STRING_MAX])
{
	char want[32];
	const char *p;

	str_printf(want, sizeof(want), "\n%s ", name);
	p = strstr(meta, want);
	if (!p)
		return -EBADMSG;
	p += strlen(want);
	if (strcspn(p, "\n") != DIGEST_STRING_MAX - 1)
		return -EBADMSG;
	str_printf(ret, DIGEST_STRING_MAX, "%.*s", DIGEST_STRING_MAX - 1, p);
	return digest_is_valid(ret) ? 0 : -EBADMSG;
}

/* A memfd of a running QEMU restored from this template, if there is one to share. */
static int take_from_holder(const struct template *t, const char *id, uint64_t memory)
{
	char dir[4300], want[64];
	_cleanup_(closedirp) DIR *d = NULL;
	struct dirent *de;

	str_printf(dir, sizeof(dir), "%s/holders", t->dir);
	str_printf(want, sizeof(want), "/memfd:cove-template-%s (deleted)", id);
	d = opendir(dir);
	while (d && (de = readdir(d))) {
		char path[4600], link[128], self[64];
		uint64_t pid;
		struct stat st;
		int pidfd, fd;
		ssize_t n;

		if (parse_u64(de->d_name, INT32_MAX, &pid) < 0 || pid == 0)
			continue;
		str_printf(path, sizeof(path), "%s/%s", dir, de->d_name);
		pidfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
		if (pidfd < 0) {
			if (errno == ESRCH)
				unlink(path);
			continue;
		}
		fd = (int)syscall(SYS_pidfd_getfd, pidfd, VM_MEM_FD, 0);
		close(pidfd);
		if (fd < 0)
			continue;
		/* ours (a QEMU runs as another user, or is this user's anyway), sealed, whole */
		str_printf(self, sizeof(self), "/proc/self/fd/%d", fd);
		n = readlink(self, link, sizeof(link) - 1);
		if (n > 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
		    (uint64_t)st.st_size == memory && fcntl(fd, F_GET_SEALS) == SEALS &&
		    (link[n] = '\0', strcmp(link, want) == 0)) {
			(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
			(void)utimensat(AT_FDCWD, path, NULL, 0); /* in use: a keeper stays */
			return fd;
		}
		close(fd);
	}
	return -ENOENT;
}

/* An empty memfd for the RAM file, and the file, open: template_load reads it. */
static int open_ram(struct template *t, const char *id, uint64_t memory, char *why,
		    size_t size)
{
	char path[4300], name[64];
	struct stat st;

	str_printf(path, sizeof(path), "%s/ram", t->dir);
	t->ram_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (t->ram_fd < 0 || fstat(t->ram_fd, &st) < 0)
		return str_printf(why, size, "cannot read '%s': %s", path, strerror(errno)),
		       errno == ENOENT ? -EBADMSG : -errno;
	if ((uint64_t)st.st_size != memory)
		return str_printf(why, size, "'%s' is not the size of the VM's memory", path),
		       -EBADMSG;
	str_printf(name, sizeof(name), "cove-template-%s", id);
	t->mem_fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (t->mem_fd < 0 || ftruncate(t->mem_fd, (off_t)memory) < 0)
		return str_printf(why, size, "cannot make a memfd: %s", strerror(errno)), -errno;
	return 0;
}

/* In a grandchild of init's (a session of its own): nothing of the caller's (its locks, its
 * sockets) but the descriptor keep (-1: none), stdio on /dev/null, signals unblocked. */
static void detach(const char *name, int keep)
{
	sigset_t none;
	int null;

	if (keep > 3)
		syscall(SYS_close_range, 3, keep - 1, 0);
	syscall(SYS_close_range, keep >= 3 ? keep + 1 : 3, ~0U, 0);
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
	}
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	prctl(PR_SET_NAME, name);
}

/*
 * A process that holds a memfd just read from ram, so that the next restore takes it (as from a
 * running QEMU) rather than reading the file again: it stays while restores use it (they touch
 * its holder file) and for KEEP_IDLE_S after, and leaves at once when the template is removed.
 */
static void keep(const struct template *t, int mem)
{
	pid_t pid = fork();

	if (pid < 0)
		return;
	if (pid == 0) {
		char path[4300];
		pid_t keeper;

		/* the memfd at its place first: the keeper can serve it from its first moment, and
		 * is a holder before the caller returns */
		if (setsid() < 0 || dup2(mem, VM_MEM_FD) < 0)
			_exit(1);
		keeper = fork();
		if (keeper != 0) {
			if (keeper > 0)
				template_hold(t, keeper);
			_exit(0);
		}
		detach("cove-tmpl-keep", VM_MEM_FD);
		str_printf(path, sizeof(path), "%s/holders/%d", t->dir, (int)getpid());
		for (;;) {
			struct stat st;
			struct timespec now;

			sleep(5);
			clock_gettime(CLOCK_REALTIME, &now);
			if (stat(path, &st) < 0)
				_exit(0); /* the template is gone */
			if (now.tv_sec - st.st_mtim.tv_sec > KEEP_IDLE_S) {
				unlink(path);
				_exit(0);
			}
		}
	}
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

int template_open(const struct cove_paths *p, const struct vm_config *c, struct template *ret,
		  char *why, size_t size)
{
	char text[META_MAX], id[TEMPLATE_ID_LEN + 1], path[4300], ram[DIGEST_STRING_MAX];
	char state[DIGEST_STRING_MAX], got[DIGEST_STRING_MAX];
	_cleanup_free_ char *meta = NULL;
	_cleanup_close_ int lock = -1; /* load.lock, while the RAM is read */
	struct cove_error err = { 0 };
	struct template t = TEMPLATE_INIT;
	uint64_t len;
	int r;

	*ret = TEMPLATE_INIT;
	r = key_of(c, text, sizeof(text), id);
	if (r < 0)
		return str_printf(why, size, "no template key: %s", strerror(-r)), r;
	str_printf(t.dir, sizeof(t.dir), "%s/%s", p->templates, id);
	str_printf(path, sizeof(path), "%s/meta", t.dir);
	r = read_file(path, META_MAX, &meta, NULL);
	if (r == -ENOENT)
		return -ENOENT;
	if (r < 0)
		return str_printf(why, size, "cannot read '%s': %s", path, strerror(-r)), r;
	/* another key under the same ID: as good as none */
	if (strncmp(meta, text, strlen(text)) != 0)
		return -ENOENT;
	if (meta_digest(meta + strlen(text) - 1, "ram", ram) < 0 ||
	    meta_digest(meta + strlen(text) - 1, "state", state) < 0) {
		r = -EBADMSG;
		str_printf(why, size, "'%s' is damaged", path);
		goto corrupt;
	}
	str_printf(path, sizeof(path), "%s/state", t.dir);
	t.state_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (t.state_fd < 0) {
		r = errno == ENOENT ? -EBADMSG : -errno;
		str_printf(why, size, "cannot open '%s': %s", path, strerror(errno));
		goto corrupt;
	}
	if (digest_fd(t.state_fd, STATE_MAX, got, &len, &err) < 0 || strcmp(got, state) != 0) {
		r = -EBADMSG;
		str_printf(why, size, "'%s' is damaged (its digest differs)", path);
		goto corrupt;
	}
	lseek(t.state_fd, 0, SEEK_SET);
	t.mem_fd = take_from_holder(&t, id, ram_size(c));
	if (t.mem_fd < 0) {
		/* one reads the file for all who start at once; they then take its memfd */
		str_printf(path, sizeof(path), "%s/load.lock", t.dir);
		lock = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (lock >= 0)
			(void)flock(lock, LOCK_EX);
		t.mem_fd = take_from_holder(&t, id, ram_size(c));
	}
	if (t.mem_fd < 0) {
		r = open_ram(&t, id, ram_size(c), why, size);
		if (r < 0)
			goto corrupt;
		t.lock_fd = TAKE_FD(lock); /* until template_load is done */
		str_copy(t.ram_digest, sizeof(t.ram_digest), ram);
	}
	*ret = t;
	return 0;
corrupt:
	if (r == -EBADMSG)
		template_discard(&t); /* made again by the next start */
	else
		template_close(&t);
	return r;
}

int template_load(struct template *t, char *why, size_t size)
{
	char got[DIGEST_STRING_MAX];
	struct stat st;
	int r;

	if (t->ram_fd < 0)
		return 0;
	if (fstat(t->mem_fd, &st) < 0) {
		r = -errno;
		str_printf(why, size, "cannot read the memfd: %s", strerror(-r));
	} else if ((r = copy_ranges(t->ram_fd, t->mem_fd, (uint64_t)st.st_size, got)) < 0) {
		str_printf(why, size, "cannot read '%s/ram': %s", t->dir, strerror(-r));
	} else if (strcmp(got, t->ram_digest) != 0) {
		r = -EBADMSG;
		str_printf(why, size, "'%s/ram' is damaged (its digest differs)", t->dir);
	} else if (fcntl(t->mem_fd, F_ADD_SEALS, SEALS) < 0) {
		r = -errno;
		str_printf(why, size, "cannot seal the memfd: %s", strerror(-r));
	}
	if (r < 0) {
		/* as template_open leaves it */
		if (r == -EBADMSG)
			template_discard(t); /* made again by the next start */
		else
			template_close(t);
		return r;
	}
	keep(t, t->mem_fd); /* before the lock goes: the others find it */
	closep(&t->ram_fd);
	closep(&t->lock_fd);
	return 0;
}

void template_close(struct template *t)
{
	closep(&t->mem_fd);
	closep(&t->state_fd);
	closep(&t->ram_fd);
	closep(&t->lock_fd);
}

void template_discard(struct template *t)
{
	template_close(t);
	if (t->dir[0])
		(void)remove_tree(t->dir);
}

#define STRIKE_WINDOW_S (24 * 3600)

/* failures of the template at dir (TEMPLATES/ID) in the last day */
static unsigned strikes(const char *dir)
{
	char path[4400];
	_cleanup_free_ char *s = NULL;
	struct stat st;
	uint64_t n;

	str_printf(path, sizeof(path), "%s.failed", dir);
	if (stat(path, &st) < 0 || time(NULL) - st.st_mtim.tv_sec > STRIKE_WINDOW_S ||
	    read_file(path, 32, &s, NULL) < 0)
		return 0;
	s[strcspn(s, "\n")] = '\0';
	return parse_u64(s, 1000, &n) == 0 ? (unsigned)n : 0;
}

void template_failed(struct template *t)
{
	char path[4400], line[32];

	if (!t->dir[0])
		return;
	str_printf(path, sizeof(path), "%s.failed", t->dir);
	str_printf(line, sizeof(line), "%u\n", strikes(t->dir) + 1);
	(void)write_file_atomic(path, line, strlen(line), 0600);
	template_discard(t);
}

void template_hold(const struct template *t, pid_t qemu)
{
	char path[4300];
	int fd;

	str_printf(path, sizeof(path), "%s/holders", t->dir);
	(void)mkdir(path, 0700);
	str_printf(path, sizeof(path), "%s/holders/%d", t->dir, (int)qemu);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0)
		close(fd);
}

void template_unhold(const struct template *t, pid_t qemu)
{
	char path[4300];

	str_printf(path, sizeof(path), "%s/holders/%d", t->dir, (int)qemu);
	(void)unlink(path);
}

/* Templates of other files (an older kernel, initramfs, QEMU or cove) are gone for good. */
static void prune(const struct cove_paths *p, const char *text, const char *keep)
{
	_cleanup_(closedirp) DIR *d = opendir(p->templates);
	const char *accel = strstr(text, "\naccel ");
	size_t files = accel ? (size_t)(accel - text) : strlen(text);
	struct dirent *de;

	while (d && (de = readdir(d))) {
		char path[4400];
		_cleanup_free_ char *meta = NULL;

		if (strlen(de->d_name) != TEMPLATE_ID_LEN || strcmp(de->d_name, keep) == 0)
			continue;
		str_printf(path, sizeof(path), "%s/%s/meta", p->templates, de->d_name);
		if (read_file(path, META_MAX, &meta, NULL) == 0 && strncmp(meta, text, files) == 0)
			continue;
		str_printf(path, sizeof(path), "%s/%s", p->templates, de->d_name);
		(void)remove_tree(path);
	}
}

static int fsync_path(const char *path)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);

	return fd < 0 || fsync(fd) < 0 ? -errno : 0;
}

/* Boot the template's VM in new/, wait for HELLO, save it: ram, state and meta. */
static int make_in(const struct vm_config *shape, const char *dir, const char *text,
		   struct cove_error *err)
{
	struct vm_config c = *shape;
	struct vm vm = VM_INIT;
	struct vm_share shares[VM_MAX_SHARES];
	struct vm_disk disks[VM_MAX_DISKS];
	char boot_log[4300], qemu_log[4300], path[4300], meta[META_MAX + 256], share[4300];
	char sdig[DIGEST_STRING_MAX], rdig[DIGEST_STRING_MAX], why[512];
	_cleanup_close_ int mem = -1, state = -1, ram = -1;
	uint64_t disk = 0;
	uint32_t version = 0;
	int r = 0;

	r = disk_size(shape, &disk);
	if (r < 0)
		return cove_error_set(err, -r, "cannot read the disk's size: %s", strerror(-r));
	mem = memfd_create("cove-template-new", MFD_CLOEXEC);
	if (mem < 0 || ftruncate(mem, (off_t)ram_size(shape)) < 0)
		return cove_error_set(err, errno, "cannot make a memfd: %s", strerror(errno));
	str_printf(boot_log, sizeof(boot_log), "%s/boot.log", dir);
	str_printf(qemu_log, sizeof(qemu_log), "%s/qemu.log", dir);
	c.disk = NULL;
	c.blank_disk = disk;
	c.blank_nics = true;
	c.user_net = NULL;
	memset(c.tap_fds, 0, sizeof(c.tap_fds));
	/* the same shares and volume disks, as devices on nothing: an empty directory, zeros */
	str_printf(share, sizeof(share), "%s/share", dir);
	if (c.nshares && mkdir(share, 0755) < 0)
		return cove_error_set(err, errno, "cannot create '%s': %s", share, strerror(errno));
	for (size_t i = 0; i < c.nshares; i++) {
		shares[i] = shape->shares[i];
		str_copy(shares[i].path, sizeof(shares[i].path), share);
		shares[i].file[0] = '\0';
	}
	r = blank_disks(shape, disks);
	if (r < 0)
		return cove_error_set(err, -r, "cannot read a volume's size: %s", strerror(-r));
	c.shares = shares;
	c.disks = disks;
	c.mem_fd = mem;
	c.mem_share = true;
	c.qmp = true;
	c.incoming_fd = 0;
	c.boot_log = boot_log;
	c.qemu_log = qemu_log;
	c.keep_logs = true;
	if (vm_start(&c, &vm, err) < 0)
		return -EIO;
	if (!vm_await_hello(&vm, now_ns() + (c.kvm ? 20000 : 60000) * 1000000ULL, &version, NULL))
		r = cove_error_set(err, ETIMEDOUT, "the template's VM did not say HELLO: %s",
				   (vm_explain(&c, &vm, why, sizeof(why)), why));
	else if (version != PROTO_VERSION)
		r = cove_error_set(err, EPROTO, "the template's VM speaks protocol %u, not %u",
				   version, PROTO_VERSION);
	str_printf(path, sizeof(path), "%s/state", dir);
	if (r == 0 && (state = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
		r = cove_error_set(err, errno, "cannot create '%s': %s", path, strerror(errno));
	if (r == 0)
		r = vm_save(&vm, &c, state, SAVE_TIMEOUT_MS, err);
	vm_done(&vm);
	if (r < 0)
		return r;
	if (fsync(state) < 0 || lseek(state, 0, SEEK_SET) < 0 ||
	    digest_fd(state, STATE_MAX, sdig, NULL, err) < 0)
		return cove_error_set(err, errno ?: EIO, "cannot save '%s'", path);
	/* the digest is of the file read back as template_load reads it: its data ranges as the
	 * filesystem reports them, which need not be the memfd's */
	str_printf(path, sizeof(path), "%s/ram", dir);
	ram = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (ram < 0 || ftruncate(ram, (off_t)ram_size(shape)) < 0 ||
	    (r = copy_ranges(mem, ram, ram_size(shape), rdig)) < 0 || fsync(ram) < 0 ||
	    (r = copy_ranges(ram, -1, ram_size(shape), rdig)) < 0)
		return cove_error_set(err, r < 0 ? -r : errno, "cannot write '%s': %s", path,
				      strerror(r < 0 ? -r : errno));
	str_printf(meta, sizeof(meta), "%sram %s\nstate %s\n", text, rdig, sdig);
	str_printf(path, sizeof(path), "%s/meta", dir);
	r = write_file_atomic(path, meta, strlen(meta), 0600);
	if (r < 0)
		return cove_error_set(err, -r, "cannot write '%s': %s", path, strerror(-r));
	return 0;
}

int template_make(const struct cove_paths *p, const struct vm_config *c, struct cove_error *err)
{
	char text[META_MAX], id[TEMPLATE_ID_LEN + 1], dir[4300], tmp[4300], path[4300];
	_cleanup_free_ char *meta = NULL;
	_cleanup_close_ int lock = -1;
	int r;

	if (!template_fits(c))
		return cove_error_set(err, EINVAL, "this VM's shape has no template");
	r = key_of(c, text, sizeof(text), id);
	if (r < 0)
		return cove_error_set(err, -r, "no template key: %s", strerror(-r));
	r = mkdir_p(p->templates, 0700);
	if (r < 0)
		return cove_error_set(err, -r, "cannot create '%s': %s", p->templates, strerror(-r));
	str_printf(path, sizeof(path), "%s/%s.lock", p->templates, id);
	lock = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lock < 0)
		return cove_error_set(err, errno, "cannot create '%s': %s", path, strerror(errno));
	if (flock(lock, LOCK_EX | LOCK_NB) < 0)
		return cove_error_set(err, EBUSY, "the template is being made by another process");
	str_printf(dir, sizeof(dir), "%s/%s", p->templates, id);
	str_printf(path, sizeof(path), "%s/meta", dir);
	if (read_file(path, META_MAX, &meta, NULL) == 0 && strncmp(meta, text, strlen(text)) == 0)
		return 0;
	if (strikes(dir) >= TEMPLATE_STRIKES)
		return cove_error_set(err, EAGAIN,
				      "this shape's template failed to restore %d times today: "
				      "not made again until %s.failed is a day old (or removed)",
				      TEMPLATE_STRIKES, dir);
	str_printf(tmp, sizeof(tmp), "%s/.new-%s", p->templates, id);
	(void)remove_tree(tmp);
	if (mkdir(tmp, 0700) < 0)
		return cove_error_set(err, errno, "cannot create '%s': %s", tmp, strerror(errno));
	r = make_in(c, tmp, text, err);
	if (r == 0) {
		(void)remove_tree(dir);
		if (rename(tmp, dir) < 0)
			r = cove_error_set(err, errno, "cannot rename '%s': %s", tmp, strerror(errno));
		else
			(void)fsync_path(p->templates);
	}
	if (r < 0) {
		(void)remove_tree(tmp);
		return r;
	}
	prune(p, text, id);
	return 0;
}

int template_prepare(const struct cove_paths *p, uint64_t memory, unsigned cpus, size_t nics,
		     uint64_t disk, struct cove_error *err)
{
	char qemu[4096], tsc[4200];
	struct vm_accel_ctx x = { .qemu = qemu, .kernel = p->kernel, .initrd = p->initrd,
				  .cache_dir = p->cache, .confine_dir = p->run };
	struct vm_verdict v;
	enum vm_accel want;
	struct vm_config c = { .qemu = qemu, .kernel = p->kernel, .initrd = p->initrd,
			       .cpus = cpus, .memory = memory, .confine_dir = p->run, .nics = nics,
			       .blank_disk = disk };

	if (vm_find_qemu(qemu, sizeof(qemu), err) < 0 || paths_prepare_run(p, err) < 0 ||
	    vm_accel_wanted(NULL, &want, err) < 0 || vm_accel_choose(&x, want, &v, err) < 0)
		return -EIO;
	c.kvm = v.kvm;
	c.cpu = v.kvm ? v.cpu : NULL;
	(void)mkdir(p->cache, 0755);
	str_printf(tsc, sizeof(tsc), "%s/tsc_khz", p->cache);
	if (!v.kvm && vm_tsc_khz(tsc, &c.tsc_khz) < 0)
		c.tsc_khz = 0;
	return template_make(p, &c, err);
}

void template_make_later(const struct cove_paths *p, const struct vm_config *c)
{
	struct vm_config shape = *c;
	struct vm_disk disks[VM_MAX_DISKS];
	pid_t pid;

	/* the volumes by their sizes: their descriptors do not go along */
	if (blank_disks(c, disks) < 0)
		return;
	shape.disks = disks;
	pid = fork();
	if (pid < 0)
		return;
	if (pid == 0) {
		struct cove_error err = { 0 };

		if (setsid() < 0 || fork() != 0)
			_exit(0);
		detach("cove-template", -1);
		/* behind the container that asked for it, whose boot is what the user waits on */
		(void)setpriority(PRIO_PROCESS, 0, 10);
		_exit(template_make(p, &shape, &err) < 0 ? 1 : 0);
	}
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* 512M, 4G: a size as a user gives it */
static void size_text(const char *bytes, size_t len, char *buf, size_t size)
{
	char num[32];
	uint64_t v;

	str_printf(num, sizeof(num), "%.*s", (int)len, bytes);
	if (parse_u64(num, UINT64_MAX, &v) < 0 || v == 0)
		str_copy(buf, size, num);
	else if (v % (1ULL << 30) == 0)
		str_printf(buf, size, "%lluG", (unsigned long long)(v >> 30));
	else if (v % (1ULL << 20) == 0)
		str_printf(buf, size, "%lluM", (unsigned long long)(v >> 20));
	else
		str_copy(buf, size, num);
}

int template_list(const struct cove_paths *p, char ***ret, size_t *ret_n)
{
	_cleanup_(closedirp) DIR *d = opendir(p->templates);
	struct dirent *de;
	char **v = NULL;
	size_t n = 0;

	*ret = NULL;
	*ret_n = 0;
	while (d && (de = readdir(d))) {
		static const char *const keys[] = { "accel", "memory", "cpus", "nics", "disk" };
		char path[4400], line[512], **nv;
		_cleanup_free_ char *meta = NULL;
		struct stat st;
		size_t len;

		if (strlen(de->d_name) != TEMPLATE_ID_LEN)
			continue;
		str_printf(path, sizeof(path), "%s/%s/meta", p->templates, de->d_name);
		if (read_file(path, META_MAX, &meta, NULL) < 0)
			continue;
		str_copy(line, sizeof(line), de->d_name);
		for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
			char want[32], val[32];
			const char *k;
			size_t vlen;

			str_printf(want, sizeof(want), "\n%s ", keys[i]);
			k = strstr(meta, want);
			if (!k)
				continue;
			k += strlen(want);
			vlen = strcspn(k, "\n");
			if (strcmp(keys[i], "memory") == 0 || strcmp(keys[i], "disk") == 0)
				size_text(k, vlen, val, sizeof(val));
			else
				str_printf(val, sizeof(val), "%.*s", (int)vlen, k);
			len = strlen(line);
			str_printf(line + len, sizeof(line) - len, " %s=%s", keys[i], val);
		}
		str_printf(path, sizeof(path), "%s/%s/ram", p->templates, de->d_name);
		len = strlen(line);
		str_printf(line + len, sizeof(line) - len, " ram=%lluM",
			   stat(path, &st) == 0 ? (unsigned long long)st.st_blocks / 2048 : 0ULL);
		nv = realloc(v, (n + 2) * sizeof(*v));
		if (!nv)
			break;
		v = nv;
		if (!(v[n] = strdup(line)))
			break;
		v[++n] = NULL;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}
