/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "container.h"
#include "network.h"

#include "ext4/writer.h"
#include "vm/qcow2.h"

#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#define DISK_HEADROOM (256ULL << 20)

bool container_valid_name(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 64)
		return false;
	if (!((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z') ||
	      (name[0] >= '0' && name[0] <= '9')))
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' || *p == '-'))
			return false;
	return true;
}

int container_offline_image(const struct cove_paths *p, const char *ref, char *buf, size_t size)
{
	static const char *const busybox[] = {
		"busybox", "busybox:latest", "library/busybox", "library/busybox:latest",
		"docker.io/library/busybox", "docker.io/library/busybox:latest",
	};

	for (size_t i = 0; i < ARRAY_SIZE(busybox); i++) {
		if (strcmp(ref, busybox[i]) != 0)
			continue;
		if (str_printf(buf, size, "%s/busybox.oci.tar", p->images) < 0 ||
		    access(buf, R_OK) < 0)
			return -ENOENT;
		return 0;
	}
	return -ENOENT;
}

/* Remove a container directory (it holds only files). */
static void remove_dir(const char *dir)
{
	_cleanup_(closedirp) DIR *d = opendir(dir);
	struct dirent *de;

	while (d && (de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, ".."))
			unlinkat(dirfd(d), de->d_name, 0);
	rmdir(dir);
}


static bool is_id(const char *s)
{
	if (strlen(s) != 64)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

/* Fill c's paths for the container with this ID. */
static int fill(const struct cove_paths *p, const char *id, struct container *c,
		struct cove_error *err)
{
	char path[PATH_MAX + 64];
	_cleanup_free_ char *name = NULL;

	memset(c, 0, sizeof(*c));
	c->lock_fd = -1;
	str_copy(c->id, sizeof(c->id), id);
	memcpy(c->short_id, c->id, 12);
	if (str_printf(c->dir, sizeof(c->dir), "%s/containers/%s", p->state, id) < 0)
		return cove_error_set(err, ENAMETOOLONG, "state path too long: '%s'", p->state);
	str_printf(c->boot_log, sizeof(c->boot_log), "%s/boot.log", c->dir);
	str_printf(c->qemu_log, sizeof(c->qemu_log), "%s/qemu.log", c->dir);
	str_printf(c->log, sizeof(c->log), "%s/container.log", c->dir);
	/* 128 bits of the ID keep the socket path short enough for sun_path */
	if (str_printf(c->sock, sizeof(c->sock), "%s/%.32s.sock", p->run, id) < 0 ||
	    strlen(c->sock) >= 108)
		return cove_error_set(err, ENAMETOOLONG,
				      "the runtime directory '%s' is too long for a socket path",
				      p->run);
	str_printf(path, sizeof(path), "%s/name", c->dir);
	if (read_file(path, 128, &name, NULL) == 0) {
		name[strcspn(name, "\n")] = '\0';
		if (container_valid_name(name)) {
			str_copy(c->name, sizeof(c->name), name);
			str_printf(c->name_link, sizeof(c->name_link), "%s/names/%s", p->state,
				   name);
		}
	}
	str_printf(path, sizeof(path), "%s/disk.qcow2", c->dir);
	if (access(path, F_OK) == 0) {
		str_copy(c->disk, sizeof(c->disk), path);
		str_copy(c->disk_format, sizeof(c->disk_format), "qcow2");
	} else {
		str_printf(c->disk, sizeof(c->disk), "%s/disk.ext4", c->dir);
		str_copy(c->disk_format, sizeof(c->disk_format), "raw");
	}
	str_printf(path, sizeof(path), "%s/autoremove", c->dir);
	c->rm = access(path, F_OK) == 0;
	return 0;
}

int container_find(const struct cove_paths *p, const char *ref, struct container *c,
		   struct cove_error *err)
{
	char path[PATH_MAX + 80], target[80], found[65] = "";
	_cleanup_(closedirp) DIR *d = NULL;
	struct dirent *de;
	size_t n = strlen(ref);
	ssize_t len;

	if (n == 0)
		return cove_error_set(err, EINVAL, "empty container name or ID");
	if (container_valid_name(ref) &&
	    str_printf(path, sizeof(path), "%s/names/%s", p->state, ref) == 0 &&
	    (len = readlink(path, target, sizeof(target) - 1)) > 0) {
		target[len] = '\0';
		str_printf(path, sizeof(path), "%s/containers/%s/config.json", p->state, target);
		if (is_id(target) && access(path, F_OK) == 0)
			return fill(p, target, c, err);
	}
	/* a whole ID (what ls and rm --all pass): no need to scan every container */
	if (is_id(ref) && str_printf(path, sizeof(path), "%s/containers/%s/config.json", p->state,
				     ref) == 0 &&
	    access(path, F_OK) == 0)
		return fill(p, ref, c, err);
	/* an ID or a unique prefix of one */
	for (const char *s = ref; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')) || n > 64)
			return cove_error_set(err, ENOENT, "no such container: '%s'", ref);
	str_printf(path, sizeof(path), "%s/containers", p->state);
	d = opendir(path);
	while (d && (de = readdir(d))) {
		char cfg[PATH_MAX + 160];

		if (!is_id(de->d_name) || strncmp(de->d_name, ref, n) != 0)
			continue;
		str_printf(cfg, sizeof(cfg), "%s/%s/config.json", path, de->d_name);
		if (access(cfg, F_OK) < 0)
			continue; /* still being created, or half removed */
		if (found[0])
			return cove_error_set(err, EINVAL,
					      "'%s' matches more than one container; give more of "
					      "the ID",
					      ref);
		str_copy(found, sizeof(found), de->d_name);
	}
	if (!found[0])
		return cove_error_set(err, ENOENT, "no such container: '%s'", ref);
	return fill(p, found, c, err);
}

struct id_time {
	char *id;
	double t;
};

static int by_time(const void *a, const void *b)
{
	const struct id_time *x = a, *y = b;

	return x->t < y->t ? -1 : x->t > y->t ? 1 : strcmp(x->id, y->id);
}

int container_list(const struct cove_paths *p, char ***ret_ids, size_t *ret_n,
		   struct cove_error *err)
{
	char path[PATH_MAX + 16];
	_cleanup_(closedirp) DIR *d = NULL;
	struct id_time *v = NULL;
	struct dirent *de;
	size_t n = 0, cap = 0;
	char **ids;

	*ret_ids = NULL;
	*ret_n = 0;
	str_printf(path, sizeof(path), "%s/containers", p->state);
	d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0
				       : cove_error_set(err, errno, "cannot read '%s': %s", path,
							strerror(errno));
	while ((de = readdir(d))) {
		char cfg[PATH_MAX + 160];
		struct stat st;

		if (!is_id(de->d_name))
			continue;
		str_printf(cfg, sizeof(cfg), "%s/%s/config.json", path, de->d_name);
		if (stat(cfg, &st) < 0)
			continue;
		if (n == cap) {
			struct id_time *nv = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*v));
			if (!nv)
				goto oom;
			v = nv;
		}
		v[n].id = strdup(de->d_name);
		if (!v[n].id)
			goto oom;
		v[n].t = (double)st.st_mtim.tv_sec + (double)st.st_mtim.tv_nsec / 1e9;
		n++;
	}
	if (n)
		qsort(v, n, sizeof(*v), by_time);
	ids = calloc(n + 1, sizeof(char *));
	if (!ids)
		goto oom;
	for (size_t i = 0; i < n; i++)
		ids[i] = v[i].id;
	free(v);
	*ret_ids = ids;
	*ret_n = n;
	return 0;
oom:
	for (size_t i = 0; i < n; i++)
		free(v[i].id);
	free(v);
	return cove_error_set(err, ENOMEM, "out of memory");
}

void container_list_free(char **ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

void container_timestamp(char *buf, size_t size)
{
	struct timespec ts;
	struct tm tm;
	char s[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
	str_printf(buf, size, "%s.%09ldZ", s, ts.tv_nsec);
}

double container_parse_time(const char *s)
{
	struct tm tm = { 0 };
	const char *rest;
	double frac = 0;

	if (!s || !*s)
		return -1;
	rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!rest)
		return -1;
	if (*rest == '.')
		frac = strtod(rest, NULL);
	return (double)timegm(&tm) + frac;
}

static int save_json(const char *dir, const char *file, json_t *j)
{
	char path[PATH_MAX + 32];
	_cleanup_free_ char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
	int r;

	if (!s)
		return -ENOMEM;
	if (str_printf(path, sizeof(path), "%s/%s", dir, file) < 0)
		return -ENAMETOOLONG;
	r = write_file_atomic(path, s, strlen(s), 0600);
	return r;
}

int container_save_spec(struct container *c, const struct container_spec *s,
			struct cove_error *err)
{
	json_t *j = NULL;
	int r = spec_to_json(s, &j, err);

	if (r < 0)
		return r;
	r = save_json(c->dir, "config.json", j);
	json_decref(j);
	if (r < 0)
		return cove_error_set(err, r, "cannot write '%s/config.json': %s", c->dir,
				      strerror(-r));
	return 0;
}

int container_load_spec(const struct container *c, struct container_spec *ret,
			struct cove_error *err)
{
	char path[PATH_MAX + 32];
	json_error_t je;
	json_t *j;
	int r;

	str_printf(path, sizeof(path), "%s/config.json", c->dir);
	j = json_load_file(path, 0, &je);
	if (!j)
		return cove_error_set(err, EINVAL,
				      "container %s: cannot read its config.json (%s); remove it "
				      "with 'cove rm %s'",
				      c->short_id, je.text, c->short_id);
	r = spec_from_json(j, ret, err);
	json_decref(j);
	if (r < 0)
		return cove_error_prefix(err, "container %s (remove it with 'cove rm %s')",
					 c->short_id, c->short_id);
	return 0;
}

const char *container_status_name(enum container_status_kind k)
{
	switch (k) {
	case CONTAINER_CREATED:
		return "created";
	case CONTAINER_RUNNING:
		return "running";
	default:
		return "exited";
	}
}

static void copy_str(json_t *o, const char *key, char *buf, size_t size)
{
	const char *v = json_string_value(json_object_get(o, key));

	str_copy(buf, size, v ? v : "");
}

/* 1 while something holds dir's lock (its supervisor, or a command changing it), 0 when it is
 * free, -errno when there is no lock file to ask */
static int lock_held(const char *dir)
{
	char path[PATH_MAX + 16];
	_cleanup_close_ int fd = -1;

	str_printf(path, sizeof(path), "%s/lock", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return flock(fd, LOCK_SH | LOCK_NB) < 0;
}

bool container_id_running(const struct cove_paths *p, const char *id)
{
	char dir[PATH_MAX];

	str_printf(dir, sizeof(dir), "%s/containers/%.64s", p->state, id);
	return lock_held(dir) == 1;
}

int container_get_status(const struct container *c, struct container_status *ret)
{
	char path[PATH_MAX + 32];
	json_t *j;
	const char *st;

	memset(ret, 0, sizeof(*ret));
	str_printf(path, sizeof(path), "%s/state.json", c->dir);
	j = json_load_file(path, 0, NULL);
	if (!j)
		return 0; /* never started */
	st = json_string_value(json_object_get(j, "status"));
	ret->status = st && strcmp(st, "running") == 0	 ? CONTAINER_RUNNING
		      : st && strcmp(st, "exited") == 0 ? CONTAINER_EXITED
							 : CONTAINER_CREATED;
	ret->exit_code = (int)json_integer_value(json_object_get(j, "exit_code"));
	ret->pid = (pid_t)json_integer_value(json_object_get(j, "pid"));
	copy_str(j, "started_at", ret->started_at, sizeof(ret->started_at));
	copy_str(j, "finished_at", ret->finished_at, sizeof(ret->finished_at));
	copy_str(j, "error", ret->error, sizeof(ret->error));
	copy_str(j, "accelerator", ret->accel, sizeof(ret->accel));
	copy_str(j, "boot", ret->boot, sizeof(ret->boot));
	copy_str(j, "network", ret->network, sizeof(ret->network));
	copy_str(j, "ip", ret->ip, sizeof(ret->ip));
	copy_str(j, "gateway", ret->gateway, sizeof(ret->gateway));
	copy_str(j, "mac", ret->mac, sizeof(ret->mac));
	copy_str(j, "ports", ret->ports, sizeof(ret->ports));
	ret->prefix = (int)json_integer_value(json_object_get(j, "prefix"));
	{
		json_t *more = json_object_get(j, "more_networks"), *e;
		size_t i;

		json_array_foreach(more, i, e) {
			struct container_nic *o = &ret->more[ret->nmore];

			if (ret->nmore == ARRAY_SIZE(ret->more))
				break;
			copy_str(e, "network", o->network, sizeof(o->network));
			copy_str(e, "ip", o->ip, sizeof(o->ip));
			copy_str(e, "mac", o->mac, sizeof(o->mac));
			o->prefix = (int)json_integer_value(json_object_get(e, "prefix"));
			ret->nmore++;
		}
	}
	json_decref(j);
	if (ret->status != CONTAINER_RUNNING)
		return 0;
	/* running only while its supervisor holds the lock */
	if (lock_held(c->dir) == 0) {
		ret->status = CONTAINER_EXITED;
		ret->exit_code = 255;
		ret->pid = 0;
		if (!ret->finished_at[0])
			container_timestamp(ret->finished_at, sizeof(ret->finished_at));
		str_copy(ret->error, sizeof(ret->error),
			 "its supervisor died (killed, or the host restarted)");
	}
	return 0;
}

int container_save_status(const struct container *c, const struct container_status *s)
{
	json_t *j = json_pack("{s:s, s:i, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s}",
			      "status", container_status_name(s->status), "exit_code", s->exit_code,
			      "pid", (json_int_t)s->pid, "started_at", s->started_at,
			      "finished_at", s->finished_at, "error", s->error, "accelerator",
			      s->accel, "boot", s->boot, "network", s->network, "ip", s->ip, "gateway", s->gateway,
			      "mac", s->mac, "prefix", s->prefix, "ports", s->ports);
	json_t *more = json_array();
	int r;

	if (!j || !more) {
		json_decref(j);
		json_decref(more);
		return -ENOMEM;
	}
	for (size_t i = 0; i < s->nmore && i < ARRAY_SIZE(s->more); i++)
		json_array_append_new(more, json_pack("{s:s, s:s, s:s, s:i}", "network",
						      s->more[i].network, "ip", s->more[i].ip,
						      "mac", s->more[i].mac, "prefix",
						      s->more[i].prefix));
	json_object_set_new(j, "more_networks", more);
	r = save_json(c->dir, "state.json", j);
	json_decref(j);
	return r;
}

int container_lock(struct container *c, int wait_ms)
{
	char path[PATH_MAX + 16];
	uint64_t deadline = now_ns() + (uint64_t)wait_ms * 1000000ULL;

	if (c->lock_fd < 0) {
		str_printf(path, sizeof(path), "%s/lock", c->dir);
		c->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (c->lock_fd < 0)
			return -errno;
	}
	for (;;) {
		if (flock(c->lock_fd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK)
			return -errno;
		if (now_ns() >= deadline)
			return -EBUSY;
		usleep(20000);
	}
}

/* Wait until nothing holds c's lock: its supervisor has finished writing the final state. */
void container_wait_stopped(const struct container *c)
{
	char path[PATH_MAX + 16];
	_cleanup_close_ int fd = -1;

	str_printf(path, sizeof(path), "%s/lock", c->dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		while (flock(fd, LOCK_SH) < 0 && errno == EINTR)
			;
}

void container_unlock(struct container *c)
{
	closep(&c->lock_fd);
}

void container_remove(struct container *c)
{
	char link[80];
	ssize_t n;

	/* the name only if it still points at us */
	if (c->name_link[0] && (n = readlink(c->name_link, link, sizeof(link) - 1)) > 0) {
		link[n] = '\0';
		if (strcmp(link, c->id) == 0)
			unlink(c->name_link);
	}
	unlink(c->sock);
	remove_dir(c->dir);
	closep(&c->lock_fd);
	c->created = false;
}

void container_users(const struct cove_paths *p,
		     bool (*uses)(const struct container_spec *s, const void *arg), const void *arg,
		     char *buf, size_t size)
{
	struct cove_error ignored = { 0 };
	char **ids = NULL;
	size_t n = 0;

	buf[0] = '\0';
	if (container_list(p, &ids, &n, &ignored) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		struct container c;
		struct container_spec s;
		size_t len = strlen(buf);

		if (container_find(p, ids[i], &c, &ignored) < 0)
			continue;
		if (container_load_spec(&c, &s, &ignored) == 0) {
			if (uses(&s, arg))
				str_printf(buf + len, size - len, "%s%s", len ? ", " : "", c.name);
			spec_done(&s);
		}
	}
	container_list_free(ids, n);
}

/* A directory with no config.json whose lock is free, made over GC_GRACE_SEC ago: what a
 * create or an rm killed half-way left (a live creator holds the lock from the moment the
 * directory exists, give or take the grace). */
#define GC_GRACE_SEC 2

static void gc_half_made(const struct cove_paths *p)
{
	char path[PATH_MAX + 16];
	_cleanup_(closedirp) DIR *d = NULL;
	struct dirent *de;
	time_t now = time(NULL);

	str_printf(path, sizeof(path), "%s/containers", p->state);
	d = opendir(path);
	while (d && (de = readdir(d))) {
		struct container c;
		struct cove_error err = { 0 };
		char cfg[PATH_MAX + 160];
		struct stat st;

		if (!is_id(de->d_name) || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(st.st_mode) || st.st_mtime > now - GC_GRACE_SEC)
			continue;
		str_printf(cfg, sizeof(cfg), "%s/%s/config.json", path, de->d_name);
		if (access(cfg, F_OK) == 0 || fill(p, de->d_name, &c, &err) < 0)
			continue;
		if (container_lock(&c, 0) == 0)
			container_remove(&c);
		container_unlock(&c);
	}
}

/* names/NAME links to containers that are gone */
static void gc_names(const struct cove_paths *p)
{
	char path[PATH_MAX + 16];
	_cleanup_(closedirp) DIR *d = NULL;
	struct dirent *de;

	str_printf(path, sizeof(path), "%s/names", p->state);
	d = opendir(path);
	while (d && (de = readdir(d))) {
		char link[80], dir[PATH_MAX + 160];
		ssize_t n;

		if (de->d_name[0] == '.')
			continue;
		n = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);
		if (n < 0)
			continue;
		link[n] = '\0';
		str_printf(dir, sizeof(dir), "%s/containers/%s", p->state, link);
		if (!is_id(link) || access(dir, F_OK) < 0)
			unlinkat(dirfd(d), de->d_name, 0);
	}
}

void container_gc(const struct cove_paths *p)
{
	char **ids = NULL;
	size_t n = 0;
	struct cove_error err = { 0 };

	gc_half_made(p);
	gc_names(p);
	if (container_list(p, &ids, &n, &err) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		struct container c;
		struct container_status st;

		if (fill(p, ids[i], &c, &err) < 0 || !c.rm)
			continue;
		container_get_status(&c, &st);
		if (st.status != CONTAINER_EXITED || container_lock(&c, 0) < 0)
			continue;
		container_remove(&c);
	}
	container_list_free(ids, n);
	/* and the leases (with DNS entries) of containers whose supervisor died */
	net_gc(p);
}

static int write_small(const char *dir, const char *file, const char *content)
{
	char path[PATH_MAX + 64];
	_cleanup_close_ int fd = -1;

	if (str_printf(path, sizeof(path), "%s/%s", dir, file) < 0)
		return -ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	return write_full(fd, content, strlen(content));
}

int container_create(const struct cove_paths *p, const char *name, bool rm, struct container *c,
		     struct cove_error *err)
{
	char id[65], path[PATH_MAX + 64];
	int r;

	container_gc(p);
	r = random_hex(id, 32);
	if (r < 0)
		return cove_error_set(err, -r, "getrandom failed: %s", strerror(-r));
	r = fill(p, id, c, err);
	if (r < 0)
		return r;
	c->rm = rm;
	str_copy(c->name, sizeof(c->name), name ? name : c->short_id);

	str_printf(path, sizeof(path), "%s/names", p->state);
	if ((r = mkdir_p(path, 0700)) < 0 || (r = mkdir_p(c->dir, 0700)) < 0)
		return cove_error_set(err, r, "cannot create '%s': %s", c->dir, strerror(-r));
	r = paths_prepare_run(p, err);
	if (r < 0)
		return r;
	c->created = true;

	r = container_lock(c, 0);
	if (r < 0)
		return cove_error_set(err, -r, "cannot lock '%s/lock': %s", c->dir, strerror(-r));
	if (rm && (r = write_small(c->dir, "autoremove", "")) < 0)
		return cove_error_set(err, r, "cannot write in '%s': %s", c->dir, strerror(-r));

	str_printf(c->name_link, sizeof(c->name_link), "%s/names/%s", p->state, c->name);
	if (symlink(c->id, c->name_link) < 0) {
		int e = errno;
		c->name_link[0] = '\0';
		if (e == EEXIST)
			return cove_error_set(err, e,
					      "the container name '%s' is already in use; choose "
					      "another --name, or remove that container",
					      c->name);
		return cove_error_set(err, e, "cannot record the name '%s': %s", c->name,
				      strerror(e));
	}
	str_printf(path, sizeof(path), "%s\n", c->name);
	if ((r = write_small(c->dir, "name", path)) < 0)
		return cove_error_set(err, r, "cannot write in '%s': %s", c->dir, strerror(-r));
	return 0;
}

int container_disk_from_image(struct container *c, const char *image, const char *snapshot,
			      struct cove_error *err)
{
	char backing[PATH_MAX];
	struct stat st;

	if (!realpath(image, backing) || stat(backing, &st) < 0)
		return cove_error_set(err, errno, "cannot open image '%s': %s", image, strerror(errno));
	str_printf(c->disk, sizeof(c->disk), "%s/disk.qcow2", c->dir);
	str_copy(c->disk_format, sizeof(c->disk_format), "qcow2");
	/* which store snapshot the disk sits on, so that `image rm` can refuse to pull it away */
	if (snapshot && snapshot[0]) {
		char line[160];
		int r;

		str_printf(line, sizeof(line), "%s\n", snapshot);
		r = write_small(c->dir, "image", line);
		if (r < 0)
			return cove_error_set(err, r, "cannot write in '%s': %s", c->dir, strerror(-r));
	}
	return qcow2_create_overlay(c->disk, backing, "raw", ((uint64_t)st.st_size + 511) & ~511ULL,
				    err);
}

int container_disk_from_dir(struct container *c, const char *dir, struct cove_error *err)
{
	struct ext4_writer_opts o = { 0 };
	struct ext4_writer *w = NULL;
	uint64_t bytes = 0, inodes = 0;
	int r;

	str_printf(c->disk, sizeof(c->disk), "%s/disk.ext4", c->dir);
	str_copy(c->disk_format, sizeof(c->disk_format), "raw");
	r = ext4_estimate_dir(dir, &bytes, &inodes, err);
	if (r < 0)
		return r;
	o.size_bytes = bytes + bytes / 4 + DISK_HEADROOM;
	o.inodes = inodes + inodes / 4 + 16384;
	r = ext4_writer_new(c->disk, &o, &w, err);
	if (r < 0)
		return r;
	r = ext4_writer_add_dir(w, dir, err);
	if (r == 0)
		r = ext4_writer_finish(w, err);
	ext4_writer_free(w);
	if (r < 0)
		return cove_error_prefix(err, "cannot use --rootfs '%s'", dir);
	return 0;
}

void container_abandon(struct container *c)
{
	if (c->created)
		container_remove(c);
}
