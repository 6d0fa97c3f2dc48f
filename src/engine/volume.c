/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Volumes and bind mounts. A bind mount is a host directory (or one file) the VM gets over
 * virtio-9p, served by the container's own confined QEMU (vm.c). A named volume lives in
 * STATE/volumes/NAME: volume.json, a lock file, and either disk.img, a sparse ext4 image that the
 * VM gets as a virtio-blk disk of its own (the default: no file-sharing protocol on the data
 * path), or _data, a directory shared like a bind mount (--opt type=dir: what several running
 * containers may use at once). A block volume is mounted by one running container at a time:
 * its supervisor holds the lock file exclusively (a dir volume's holders share it) for as long as
 * the VM runs, so the lock goes with the process, however it ends. Before each attach the image
 * is checked with e2fsck -p, which replays the journal of a VM that was killed.
 *
 * A container's spec keeps its mounts as JSON objects (mount_format); its anonymous volumes
 * (-v /path, an image's VOLUME) get their names when it is made, and go with it on rm -v, --rm.
 */
#define _GNU_SOURCE
#include "volume.h"

#include "container.h"
#include "spec.h"

#include "../vm/vm.h"

#include "../image/json.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define VOLUME_JSON_MAX (64u << 10)

/* ---- parsing -v and --mount ----------------------------------------------------------------- */

/* an absolute container path, made canonical in place (no "//", no trailing "/"); "/", "." and
 * ".." components are refused */
static int target_clean(char *t, char *why, size_t size, const char *arg)
{
	char out[PATH_MAX];
	size_t n = 0;
	const char *p = t;

	if (t[0] != '/')
		return str_printf(why, size, "'%s': the path in the container must be absolute", arg),
		       -EINVAL;
	while (*p) {
		size_t len;

		while (*p == '/')
			p++;
		len = strcspn(p, "/");
		if (!len)
			break;
		if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
			return str_printf(why, size, "'%s': '.' and '..' are not allowed in a mount path",
					  arg),
			       -EINVAL;
		if (n + 1 + len >= sizeof(out))
			return str_printf(why, size, "'%s': the path is too long", arg), -EINVAL;
		out[n++] = '/';
		memcpy(out + n, p, len);
		n += len;
		p += len;
	}
	if (n == 0)
		return str_printf(why, size, "'%s': cannot mount over the container's root directory",
				  arg),
		       -EINVAL;
	out[n] = '\0';
	memcpy(t, out, n + 1);
	return 0;
}

int volume_check_name(const char *name, char *why, size_t size)
{
	size_t n = strlen(name);

	/* docker's rule: [a-zA-Z0-9][a-zA-Z0-9_.-]+ */
	bool ok = n >= 2 && n <= VOLUME_NAME_MAX &&
		  strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n &&
		  name[0] != '_' && name[0] != '.' && name[0] != '-';

	if (!ok) {
		char shown[STR_SHOWN_MAX];

		str_printf(why, size,
			   "invalid volume name '%s': use 2 to %d letters, digits, '_', '.' or '-', "
			   "starting with a letter or digit (a host path must be absolute)",
			   str_shown(name, shown), VOLUME_NAME_MAX);
		return -EINVAL;
	}
	return 0;
}

static int source_set(struct mount_spec *m, const char *src, size_t len, char *why, size_t size,
		      const char *arg)
{
	if (len >= sizeof(m->source))
		return str_printf(why, size, "'%s': the source is too long", arg), -EINVAL;
	memcpy(m->source, src, len);
	m->source[len] = '\0';
	if (len == 0) {
		m->type = MOUNT_VOLUME;
		return 0;
	}
	if (m->source[0] == '/') {
		m->type = MOUNT_BIND;
		return 0;
	}
	m->type = MOUNT_VOLUME;
	if (m->source[0] == '.' || m->source[0] == '~' || strchr(m->source, '/'))
		return str_printf(why, size, "'%s': a host path must be absolute (e.g. \"$PWD/%s\")",
				  arg, m->source),
		       -EINVAL;
	return volume_check_name(m->source, why, size);
}

int mount_parse_v(const char *arg, struct mount_spec *ret, char *why, size_t size)
{
	const char *parts[3], *opts = NULL, *src = "", *dst;
	size_t lens[3], n = 0, srclen = 0;
	struct mount_spec m = { 0 };
	int r;

	for (const char *p = arg;;) {
		const char *c = strchr(p, ':');

		if (n == 3)
			return str_printf(why, size,
					  "invalid -v '%s': expected [SOURCE:]PATH[:OPTIONS]", arg),
			       -EINVAL;
		parts[n] = p;
		lens[n++] = c ? (size_t)(c - p) : strlen(p);
		if (!c)
			break;
		p = c + 1;
	}
	if (n == 1) {
		dst = parts[0];
	} else if (n == 2 && parts[1][0] != '/') { /* PATH:OPTIONS */
		dst = parts[0];
		opts = parts[1];
	} else {
		src = parts[0];
		srclen = lens[0];
		dst = parts[1];
		opts = n == 3 ? parts[2] : NULL;
	}
	if (str_printf(m.target, sizeof(m.target), "%.*s", (int)(opts ? strcspn(dst, ":") : strlen(dst)),
		       dst) < 0)
		return str_printf(why, size, "invalid -v '%s': the path is too long", arg), -EINVAL;
	if ((r = source_set(&m, src, srclen, why, size, arg)) < 0 ||
	    (r = target_clean(m.target, why, size, arg)) < 0)
		return r;
	for (const char *o = opts; o && *o;) {
		size_t len = strcspn(o, ",");

#define IS(s) (len == strlen(s) && strncmp(o, s, len) == 0)
		if (IS("ro") || IS("readonly"))
			m.readonly = true;
		else if (IS("rw"))
			m.readonly = false;
		else if (IS("nocopy") && m.type == MOUNT_VOLUME)
			m.nocopy = true;
		else if (!(IS("z") || IS("Z") || IS("private") || IS("rprivate") || IS("shared") ||
			   IS("rshared") || IS("slave") || IS("rslave") || IS("consistent") ||
			   IS("cached") || IS("delegated") || IS("copy")))
			return str_printf(why, size,
					  "invalid -v '%s': unknown option '%.*s' (ro, rw%s)", arg,
					  (int)len, o, m.type == MOUNT_VOLUME ? ", nocopy" : ""),
			       -EINVAL;
#undef IS
		o += len;
		o += *o == ',';
	}
	m.create_source = m.type == MOUNT_BIND;
	*ret = m;
	return 0;
}

static bool bool_value(const char *v, size_t len, bool *ret)
{
	if (len == 0 || (len == 4 && strncmp(v, "true", 4) == 0) || (len == 1 && v[0] == '1')) {
		*ret = true;
		return true;
	}
	if ((len == 5 && strncmp(v, "false", 5) == 0) || (len == 1 && v[0] == '0')) {
		*ret = false;
		return true;
	}
	return false;
}

int mount_parse_mount(const char *arg, struct mount_spec *ret, char **ret_tmpfs, char *why,
		      size_t size)
{
	struct mount_spec m = { 0 };
	char type[16] = "", tmpfs_opts[256] = "", val[PATH_MAX];
	bool have_src = false, have_dst = false;
	int r;

	*ret_tmpfs = NULL;
	for (const char *o = arg; *o;) {
		const char *eq, *v;
		size_t klen, vlen = 0, vn = 0;

		klen = strcspn(o, "=,");
		eq = o[klen] == '=' ? o + klen : NULL;
		v = eq ? eq + 1 : o + klen;
		/* a value may be "quoted" (with "" for a quote), as docker's CSV allows */
		if (eq && *v == '"') {
			for (v++;; v++) {
				if (!*v)
					return str_printf(why, size, "invalid --mount '%s': unterminated quote",
							  arg),
					       -EINVAL;
				if (*v == '"' && v[1] != '"')
					break;
				if (*v == '"')
					v++;
				if (vn + 1 >= sizeof(val))
					return str_printf(why, size, "invalid --mount '%s': too long",
							  arg),
					       -EINVAL;
				val[vn++] = *v;
			}
			v++;
			if (*v && *v != ',')
				return str_printf(why, size, "invalid --mount '%s': text after a quote",
						  arg),
				       -EINVAL;
		} else if (eq) {
			vlen = strcspn(v, ",");
			if (vlen >= sizeof(val))
				return str_printf(why, size, "invalid --mount '%s': too long", arg),
				       -EINVAL;
			memcpy(val, v, vlen);
			vn = vlen;
			v += vlen;
		}
		val[vn] = '\0';
#define KEY(s) (klen == strlen(s) && strncmp(o, s, klen) == 0)
		if (KEY("type")) {
			str_copy(type, sizeof(type), val);
		} else if (KEY("source") || KEY("src")) {
			if ((r = source_set(&m, val, vn, why, size, arg)) < 0)
				return r;
			have_src = true;
		} else if (KEY("destination") || KEY("dst") || KEY("target")) {
			if (str_copy(m.target, sizeof(m.target), val) < 0)
				return str_printf(why, size, "invalid --mount '%s': too long", arg),
				       -EINVAL;
			have_dst = true;
		} else if (KEY("readonly") || KEY("ro")) {
			if (!bool_value(val, vn, &m.readonly))
				return str_printf(why, size, "invalid --mount '%s': readonly takes true or false",
						  arg),
				       -EINVAL;
		} else if (KEY("volume-nocopy")) {
			if (!bool_value(val, vn, &m.nocopy))
				return str_printf(why, size,
						  "invalid --mount '%s': volume-nocopy takes true or false",
						  arg),
				       -EINVAL;
		} else if (KEY("tmpfs-size") || KEY("tmpfs-mode")) {
			size_t len = strlen(tmpfs_opts);

			str_printf(tmpfs_opts + len, sizeof(tmpfs_opts) - len, ",%s=%s",
				   KEY("tmpfs-size") ? "size" : "mode", val);
		} else if (KEY("volume-driver")) {
			if (strcmp(val, "local") != 0)
				return str_printf(why, size,
						  "invalid --mount '%s': the only volume driver is 'local'",
						  arg),
				       -EINVAL;
		} else if (!(KEY("bind-propagation") || KEY("consistency") ||
			     KEY("bind-nonrecursive"))) {
			return str_printf(why, size, "invalid --mount '%s': unknown key '%.*s'", arg,
					  (int)klen, o),
			       -EINVAL;
		}
#undef KEY
		o = v;
		o += *o == ',';
	}
	if (!have_dst)
		return str_printf(why, size, "invalid --mount '%s': it needs a destination (dst=PATH)",
				  arg),
		       -EINVAL;
	if ((r = target_clean(m.target, why, size, arg)) < 0)
		return r;
	if (strcmp(type, "tmpfs") == 0) {
		if (have_src)
			return str_printf(why, size, "invalid --mount '%s': a tmpfs has no source", arg),
			       -EINVAL;
		if (asprintf(ret_tmpfs, "%s%s%s%s", m.target, tmpfs_opts[0] || m.readonly ? ":" : "",
			     tmpfs_opts[0] ? tmpfs_opts + 1 : "",
			     m.readonly ? (tmpfs_opts[0] ? ",ro" : "ro") : "") < 0)
			return -ENOMEM;
		return 0;
	}
	if (tmpfs_opts[0])
		return str_printf(why, size, "invalid --mount '%s': tmpfs-size and tmpfs-mode are for type=tmpfs",
				  arg),
		       -EINVAL;
	if (strcmp(type, "bind") == 0) {
		if (!have_src || m.type != MOUNT_BIND)
			return str_printf(why, size,
					  "invalid --mount '%s': type=bind needs an absolute source path",
					  arg),
			       -EINVAL;
		if (access(m.source, F_OK) < 0)
			return str_printf(why, size, "invalid --mount '%s': bind source path '%s' does not exist",
					  arg, m.source),
			       -ENOENT;
	} else if (strcmp(type, "volume") == 0 || !type[0]) {
		if (have_src && m.type != MOUNT_VOLUME)
			return str_printf(why, size,
					  "invalid --mount '%s': a volume's source is its name, not a path (type=bind for a host path)",
					  arg),
			       -EINVAL;
		m.type = MOUNT_VOLUME;
	} else {
		return str_printf(why, size,
				  "invalid --mount '%s': type must be bind, volume or tmpfs", arg),
		       -EINVAL;
	}
	*ret = m;
	return 0;
}

char *mount_format(const struct mount_spec *m)
{
	_cleanup_json_ json_t *j = json_pack("{s:s, s:s, s:s, s:b, s:b}", "type",
					     m->type == MOUNT_BIND ? "bind" : "volume", "source",
					     m->source, "target", m->target, "readonly", m->readonly,
					     "nocopy", m->nocopy);

	return j ? json_dumps(j, JSON_COMPACT) : NULL;
}

int mount_parse_saved(const char *s, struct mount_spec *ret)
{
	_cleanup_json_ json_t *j = json_loads(s, 0, NULL);
	const char *type = json_string_value(json_object_get(j, "type"));
	const char *src = json_string_value(json_object_get(j, "source"));
	const char *dst = json_string_value(json_object_get(j, "target"));
	char why[16];

	memset(ret, 0, sizeof(*ret));
	if (!type || !src || !dst || str_copy(ret->source, sizeof(ret->source), src) < 0 ||
	    str_copy(ret->target, sizeof(ret->target), dst) < 0)
		return -EINVAL;
	ret->type = strcmp(type, "bind") == 0 ? MOUNT_BIND : MOUNT_VOLUME;
	ret->readonly = json_is_true(json_object_get(j, "readonly"));
	ret->nocopy = json_is_true(json_object_get(j, "nocopy"));
	if (target_clean(ret->target, why, sizeof(why), dst) < 0 ||
	    (ret->type == MOUNT_BIND ? ret->source[0] != '/'
				     : (ret->source[0] &&
					volume_check_name(ret->source, why, sizeof(why)) < 0)))
		return -EINVAL;
	return 0;
}

/* ---- the store ---------------------------------------------------------------------------- */

static int vol_dir(const struct cove_paths *p, const char *name, char *buf, size_t size)
{
	return str_printf(buf, size, "%s/volumes/%s", p->state, name);
}

void volume_done(struct volume *v)
{
	if (v->labels)
		json_decref(v->labels);
	v->labels = NULL;
}

static int volume_load(const char *dir, const char *name, struct volume *v)
{
	char path[PATH_MAX + 16];
	_cleanup_json_ json_t *j = NULL;
	const char *kind;

	memset(v, 0, sizeof(*v));
	str_copy(v->name, sizeof(v->name), name);
	str_copy(v->dir, sizeof(v->dir), dir);
	str_printf(path, sizeof(path), "%s/volume.json", dir);
	j = json_load_file(path, 0, NULL);
	kind = json_string_value(json_object_get(j, "Kind"));
	if (!kind || (strcmp(kind, "block") != 0 && strcmp(kind, "dir") != 0))
		return -EINVAL;
	v->block = strcmp(kind, "block") == 0;
	v->anonymous = json_is_true(json_object_get(j, "Anonymous"));
	v->size = (uint64_t)json_integer_value(json_object_get(j, "Size"));
	str_copy(v->created, sizeof(v->created),
		 json_string_value(json_object_get(j, "CreatedAt")) ?: "");
	v->labels = json_object_get(j, "Labels");
	v->labels = json_is_object(v->labels) ? json_incref(v->labels) : json_object();
	str_printf(v->data, sizeof(v->data), "%s/%s", dir, v->block ? "disk.img" : "_data");
	return 0;
}

int volume_get(const struct cove_paths *p, const char *name, struct volume *ret,
	       struct cove_error *err)
{
	char dir[PATH_MAX], why[300];

	if (volume_check_name(name, why, sizeof(why)) < 0)
		return cove_error_set(err, EINVAL, "%s", why);
	vol_dir(p, name, dir, sizeof(dir));
	if (access(dir, F_OK) < 0)
		return cove_error_set(err, ENOENT, "no such volume: %s", name);
	if (volume_load(dir, name, ret) < 0)
		return cove_error_set(err, EINVAL, "volume '%s' is damaged: remove '%s'", name, dir);
	return 0;
}

/* the store's lock: one create or remove at a time */
static int store_lock(const struct cove_paths *p, struct cove_error *err)
{
	char path[PATH_MAX];
	int fd, r;

	str_printf(path, sizeof(path), "%s/volumes", p->state);
	r = mkdir_p(path, 0700);
	if (r < 0)
		return cove_error_set(err, -r, "cannot create '%s': %s", path, strerror(-r));
	str_printf(path, sizeof(path), "%s/volumes/.lock", p->state);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || flock(fd, LOCK_EX) < 0) {
		r = errno;
		if (fd >= 0)
			close(fd);
		return cove_error_set(err, r, "cannot lock '%s': %s", path, strerror(r));
	}
	return fd;
}

static const char *sbin_tool(const char *name, char *buf, size_t size)
{
	static const char *const dirs[] = { "/usr/sbin", "/sbin", "/usr/bin", "/bin" };

	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
		if (str_printf(buf, size, "%s/%s", dirs[i], name) == 0 && access(buf, X_OK) == 0)
			return buf;
	return NULL;
}

/* Run a tool (with env, "K=V", added to its environment) with its output in out (its last
 * line is what it said); its exit status, or -errno when it could not run. */
static int run_tool(const char *const argv[], char *env, char *out, size_t size)
{
	int pfd[2], status;
	size_t len = 0;
	bool line_done = false;
	pid_t pid;

	out[0] = '\0';
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -errno;
	}
	if (pid == 0) {
		sigset_t none;
		int null = open("/dev/null", O_RDONLY);

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		dup2(null, 0);
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		if (env)
			putenv(env);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(pfd[1]);
	/* keep the tail of what it says; its last non-empty line is the one shown */
	for (;;) {
		char chunk[512];
		ssize_t n = read(pfd[0], chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++) {
			if (chunk[i] == '\n') {
				if (len)
					line_done = true;
				continue;
			}
			if (line_done) {
				len = 0;
				line_done = false;
			}
			if (len + 1 < size) {
				out[len++] = chunk[i];
				out[len] = '\0';
			}
		}
	}
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* mke2fs's profile, cove's own: every volume has the same features whatever the host's
 * /etc/mke2fs.conf says (or whether the user may read it) */
static const char mke2fs_conf[] =
	"[defaults]\n"
	"\tbase_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr\n"
	"\tblocksize = 4096\n\tinode_size = 256\n\tinode_ratio = 16384\n"
	"[fs_types]\n\text4 = {\n"
	"\t\tfeatures = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,"
	"extra_isize\n\t}\n";

static int mkfs(const char *img, uint64_t size, const char *conf, struct cove_error *err)
{
	char tool[64], said[512], env[PATH_MAX + 16];
	int fd, r;

	if (!sbin_tool("mkfs.ext4", tool, sizeof(tool)))
		return cove_error_set(err, ENOENT,
				      "mkfs.ext4 is missing: install e2fsprogs (apt-get install "
				      "e2fsprogs)");
	fd = open(img, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
		r = errno;
		if (fd >= 0)
			close(fd);
		return cove_error_set(err, r, "cannot create '%s' of %llu bytes: %s", img,
				      (unsigned long long)size, strerror(r));
	}
	close(fd);
	/* sparse: nothing is zeroed that holes already are (the kernel skips its lazy inode table
	 * zeroing too: the guest mounts with noinit_itable) */
	r = write_file_atomic(conf, mke2fs_conf, strlen(mke2fs_conf), 0644);
	if (r < 0)
		return cove_error_set(err, -r, "cannot write '%s': %s", conf, strerror(-r));
	str_printf(env, sizeof(env), "MKE2FS_CONFIG=%s", conf);
	const char *argv[] = { tool, "-q", "-F", "-m", "0", "-E",
			 "lazy_itable_init=1,lazy_journal_init=1,nodiscard,root_owner=0:0",
			 img, NULL };
	r = run_tool(argv, env, said, sizeof(said));
	if (r != 0)
		return cove_error_set(err, EIO, "mkfs.ext4 failed on '%s': %s", img,
				      said[0] ? str_one_line(said) : "no output");
	return 0;
}

int volume_create(const struct cove_paths *p, const struct volume_create_request *q,
		  struct volume *ret, struct cove_error *err)
{
	_cleanup_close_ int lock = -1;
	char name[VOLUME_NAME_MAX + 1], dir[PATH_MAX], tmp[PATH_MAX + 32], path[PATH_MAX + 48];
	char why[300], created[40], conf[PATH_MAX];
	bool block = !q->type || strcmp(q->type, "block") == 0;
	uint64_t size = q->size ? q->size : VOLUME_DEFAULT_SIZE;
	_cleanup_json_ json_t *j = NULL;
	_cleanup_free_ char *text = NULL;
	int r;

	if (q->type && !block && strcmp(q->type, "dir") != 0)
		return cove_error_set(err, EINVAL,
				      "unknown volume type '%s': use block (an ext4 disk, the default) "
				      "or dir (a directory running containers can share)",
				      q->type);
	if (size < VOLUME_MIN_SIZE || size > VOLUME_MAX_SIZE)
		return cove_error_set(err, EINVAL, "a volume's size must be between 16m and 16t");
	if (q->name) {
		if (volume_check_name(q->name, why, sizeof(why)) < 0)
			return cove_error_set(err, EINVAL, "%s", why);
		str_copy(name, sizeof(name), q->name);
	} else if ((r = random_hex(name, 32)) < 0) {
		return cove_error_set(err, -r, "cannot make a volume name: %s", strerror(-r));
	}
	lock = store_lock(p, err);
	if (lock < 0)
		return lock;
	vol_dir(p, name, dir, sizeof(dir));
	if (access(dir, F_OK) == 0) {
		r = volume_get(p, name, ret, err);
		if (r == 0 && ret->block != block) {
			volume_done(ret);
			return cove_error_set(err, EEXIST, "volume '%s' exists, of type %s", name,
					      block ? "dir" : "block");
		}
		return r;
	}
	/* made aside, then renamed into place: a volume is whole or absent */
	str_printf(tmp, sizeof(tmp), "%s/volumes/.new-%s", p->state, name);
	(void)remove_tree(tmp);
	if (mkdir(tmp, 0700) < 0)
		return cove_error_set(err, errno, "cannot create '%s': %s", tmp, strerror(errno));
	str_printf(path, sizeof(path), "%s/%s", tmp, block ? "disk.img" : "_data");
	str_printf(conf, sizeof(conf), "%s/volumes/.mke2fs.conf", p->state);
	r = block ? mkfs(path, size, conf, err)
		  : (mkdir(path, 0755) < 0 ? cove_error_set(err, errno, "cannot create '%s': %s",
							    path, strerror(errno))
					  : 0);
	if (r < 0)
		goto fail;
	container_timestamp(created, sizeof(created));
	j = json_pack("{s:s, s:s, s:s, s:b, s:O}", "Name", name, "CreatedAt", created, "Kind",
		      block ? "block" : "dir", "Anonymous", q->anonymous, "Labels",
		      q->labels ? q->labels : json_object());
	if (j && block)
		json_object_set_new(j, "Size", json_integer((json_int_t)size));
	text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
	str_printf(path, sizeof(path), "%s/volume.json", tmp);
	if (!text) {
		r = cove_error_set(err, ENOMEM, "out of memory");
		goto fail;
	}
	r = write_file_atomic(path, text, strlen(text), 0600);
	if (r < 0) {
		r = cove_error_set(err, -r, "cannot write '%s': %s", path, strerror(-r));
		goto fail;
	}
	if (rename(tmp, dir) < 0) {
		r = cove_error_set(err, errno, "cannot create '%s': %s", dir, strerror(errno));
		goto fail;
	}
	chmod(dir, 0711);
	return volume_get(p, name, ret, err);
fail:
	(void)remove_tree(tmp);
	return r;
}

static int by_volume_name(const void *a, const void *b)
{
	return strcmp(((const struct volume *)a)->name, ((const struct volume *)b)->name);
}

int volume_list(const struct cove_paths *p, struct volume **ret, size_t *ret_n,
		struct cove_error *err)
{
	char dir[PATH_MAX], one[PATH_MAX + 256];
	_cleanup_(closedirp) DIR *d = NULL;
	struct volume *v = NULL;
	struct dirent *de;
	size_t n = 0;

	*ret = NULL;
	*ret_n = 0;
	str_printf(dir, sizeof(dir), "%s/volumes", p->state);
	d = opendir(dir);
	while (d && (de = readdir(d))) {
		char why[8];
		struct volume *nv;

		if (de->d_name[0] == '.' || volume_check_name(de->d_name, why, sizeof(why)) < 0)
			continue;
		nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv) {
			volume_list_free(v, n);
			return cove_error_set(err, ENOMEM, "out of memory");
		}
		v = nv;
		str_printf(one, sizeof(one), "%s/%s", dir, de->d_name);
		if (volume_load(one, de->d_name, &v[n]) == 0)
			n++;
	}
	if (n)
		qsort(v, n, sizeof(*v), by_volume_name);
	*ret = v;
	*ret_n = n;
	return 0;
}

void volume_list_free(struct volume *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		volume_done(&v[i]);
	free(v);
}

static bool names_volume(const struct container_spec *s, const void *name)
{
	for (size_t k = 0; k < s->nmounts; k++) {
		struct mount_spec m;

		if (mount_parse_saved(s->mounts[k], &m) == 0 && m.type == MOUNT_VOLUME &&
		    strcmp(m.source, name) == 0)
			return true;
	}
	return false;
}

/* the holder a lock file names ("ID NAME"), or "" */
static void lock_holder(int fd, char *buf, size_t size)
{
	char line[256] = "";
	ssize_t n = pread(fd, line, sizeof(line) - 1, 0);
	const char *sp;

	line[n > 0 ? n : 0] = '\0';
	line[strcspn(line, "\n")] = '\0';
	sp = strchr(line, ' ');
	str_copy(buf, size, sp ? sp + 1 : "");
}

static int lock_open(const struct volume *v, struct cove_error *err)
{
	char path[PATH_MAX + 16];
	int fd;

	str_printf(path, sizeof(path), "%s/lock", v->dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return cove_error_set(err, errno, "cannot open '%s': %s", path, strerror(errno));
	return fd;
}

int volume_remove(const struct cove_paths *p, const char *name, struct cove_error *err)
{
	_cleanup_close_ int lock = -1, vlock = -1;
	char users[1024], gone[PATH_MAX + 64];
	struct volume v;
	int r;

	lock = store_lock(p, err);
	if (lock < 0)
		return lock;
	r = volume_get(p, name, &v, err);
	if (r < 0)
		return r;
	volume_done(&v);
	container_users(p, names_volume, name, users, sizeof(users));
	if (users[0])
		return cove_error_set(err, EBUSY,
				      "volume '%s' is in use by container %s: remove %s first (cove rm)",
				      name, users, strchr(users, ',') ? "them" : "it");
	vlock = lock_open(&v, err);
	if (vlock < 0)
		return vlock;
	if (flock(vlock, LOCK_EX | LOCK_NB) < 0)
		return cove_error_set(err, EBUSY, "volume '%s' is in use by a running container",
				      name);
	/* out of sight at once, then deleted */
	str_printf(gone, sizeof(gone), "%s/volumes/.gone-%s", p->state, name);
	(void)remove_tree(gone);
	if (rename(v.dir, gone) < 0)
		return cove_error_set(err, errno, "cannot remove '%s': %s", v.dir, strerror(errno));
	r = remove_tree(gone);
	if (r < 0)
		return cove_error_set(err, -r, "volume '%s' is removed, but '%s' is left: %s", name,
				      gone, strerror(-r));
	return 0;
}

json_t *volume_json(const struct volume *v)
{
	json_t *opts = json_pack("{s:s}", "type", v->block ? "block" : "dir");

	if (opts && v->block) {
		char sz[32];

		str_printf(sz, sizeof(sz), "%llu", (unsigned long long)v->size);
		json_object_set_new(opts, "size", json_string(sz));
	}
	return json_pack("{s:s, s:s, s:O, s:s, s:s, s:o, s:s, s:b}", "CreatedAt", v->created,
			 "Driver", "local", "Labels", v->labels, "Mountpoint", v->data, "Name",
			 v->name, "Options", opts ? opts : json_object(), "Scope", "local",
			 "Anonymous", v->anonymous);
}

/* ---- a container's mounts ------------------------------------------------------------------ */

json_t *mounts_json(const struct cove_paths *p, const struct container_spec *s)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < s->nmounts; i++) {
		struct mount_spec m;
		struct volume v;
		struct cove_error ignored = { 0 };
		json_t *e;

		if (mount_parse_saved(s->mounts[i], &m) < 0)
			continue;
		if (m.type == MOUNT_BIND) {
			e = json_pack("{s:s, s:s, s:s, s:s, s:b, s:s}", "Type", "bind", "Source",
				      m.source, "Destination", m.target, "Mode", m.readonly ? "ro" : "",
				      "RW", !m.readonly, "Propagation", "rprivate");
		} else {
			bool found = volume_get(p, m.source, &v, &ignored) == 0;

			e = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:s}", "Type", "volume",
				      "Name", m.source, "Source", found ? v.data : "", "Destination",
				      m.target, "Driver", "local", "Mode", m.readonly ? "ro" : "",
				      "RW", !m.readonly, "Propagation", "");
			if (found)
				volume_done(&v);
		}
		if (e)
			json_array_append_new(a, e);
	}
	return a;
}

int volumes_for_create(const struct cove_paths *p, struct container_spec *s,
		       struct cove_error *err)
{
	struct mount_spec m[MOUNTS_MAX];
	bool made[MOUNTS_MAX] = { false };
	int r = 0;

	if (s->nmounts > MOUNTS_MAX)
		return cove_error_set(err, E2BIG, "a container has at most %d bind mounts and volumes",
				      MOUNTS_MAX);
	for (size_t i = 0; i < s->nmounts; i++) {
		if (mount_parse_saved(s->mounts[i], &m[i]) < 0)
			return cove_error_set(err, EINVAL, "a mount of this container is damaged");
		for (size_t k = 0; k < i; k++)
			if (strcmp(m[k].target, m[i].target) == 0)
				return cove_error_set(err, EINVAL, "duplicate mount point: %s",
						      m[i].target);
		for (size_t k = 0; k < s->ntmpfs; k++) {
			size_t len = strcspn(s->tmpfs[k], ":");

			if (strlen(m[i].target) == len && strncmp(s->tmpfs[k], m[i].target, len) == 0)
				return cove_error_set(err, EINVAL, "duplicate mount point: %s",
						      m[i].target);
		}
	}
	for (size_t i = 0; i < s->nmounts && r == 0; i++) {
		struct volume v;

		if (m[i].type == MOUNT_BIND) {
			struct stat st;

			if (stat(m[i].source, &st) == 0)
				continue;
			if (errno != ENOENT)
				r = cove_error_set(err, errno, "cannot use bind source '%s': %s",
						   m[i].source, strerror(errno));
			else if ((r = mkdir_p(m[i].source, 0755)) < 0)
				r = cove_error_set(err, -r,
						   "bind source '%s' does not exist and cannot be "
						   "created: %s",
						   m[i].source, strerror(-r));
			continue;
		}
		if (m[i].source[0]) {
			/* a named one: made on first use */
			if (volume_get(p, m[i].source, &v, err) == 0) {
				volume_done(&v);
				continue;
			}
			*err = (struct cove_error){ 0 };
		}
		{
			struct volume_create_request q = { .name = m[i].source[0] ? m[i].source : NULL,
							   .anonymous = !m[i].source[0] };

			r = volume_create(p, &q, &v, err);
		}
		if (r < 0)
			break;
		made[i] = !m[i].source[0];
		if (!m[i].source[0]) {
			char *f;

			str_copy(m[i].source, sizeof(m[i].source), v.name);
			f = mount_format(&m[i]);
			if (!f)
				r = cove_error_set(err, ENOMEM, "out of memory");
			else {
				free(s->mounts[i]);
				s->mounts[i] = f;
			}
		}
		volume_done(&v);
	}
	if (r < 0) {
		struct cove_error ignored = { 0 };

		for (size_t i = 0; i < s->nmounts; i++)
			if (made[i])
				(void)volume_remove(p, m[i].source, &ignored);
	}
	return r;
}

void volumes_release(const struct cove_paths *p, const struct container_spec *s)
{
	/* called once the container is gone: volume_remove refuses one another container names */
	for (size_t i = 0; i < s->nmounts; i++) {
		struct cove_error ignored = { 0 };
		struct mount_spec m;
		struct volume v;
		bool anonymous;

		if (mount_parse_saved(s->mounts[i], &m) < 0 || m.type != MOUNT_VOLUME ||
		    volume_get(p, m.source, &v, &ignored) < 0)
			continue;
		anonymous = v.anonymous;
		volume_done(&v);
		if (anonymous)
			(void)volume_remove(p, m.source, &ignored);
	}
}

/*
 * Without root QEMU cannot be given one file in a mount namespace of its own: the file is
 * hard-linked into a directory of its own (STATE/shares/ID/N), which is shared instead, so its
 * siblings stay out of the guest's sight (Apple's way). A link needs the same filesystem (the
 * state directory is under $HOME, where a user's files mostly are).
 */
static int link_alone(const struct cove_paths *p, const char *id, struct volume_attachment *a,
		      struct vm_share *sh, const char *base, struct cove_error *err)
{
	char dir[PATH_MAX + 32], dst[PATH_MAX + 300];
	int r;

	if (!a->scratch[0])
		str_printf(a->scratch, sizeof(a->scratch), "%s/shares/%s", p->state, id);
	str_printf(dir, sizeof(dir), "%s/%zu", a->scratch, a->nshares);
	(void)remove_tree(dir);
	r = mkdir_p(dir, 0700);
	if (r < 0)
		return cove_error_set(err, -r, "cannot create '%s': %s", dir, strerror(-r));
	str_printf(dst, sizeof(dst), "%s/%s", dir, base);
	if (link(sh->path, dst) < 0)
		return cove_error_set(err, errno,
				      "cannot share the single file '%s' without root: %s (it must be "
				      "on the same filesystem as '%s'); bind its directory instead",
				      sh->path, strerror(errno), p->state);
	str_copy(sh->path, sizeof(sh->path), dir);
	return 0;
}

void volumes_detach(struct volume_attachment *a)
{
	if (a->scratch[0]) {
		(void)remove_tree(a->scratch);
		a->scratch[0] = '\0';
	}
	for (size_t i = 0; i < a->ndisks; i++)
		closep(&a->disks[i].fd);
	for (size_t i = 0; i < a->nlocks; i++)
		closep(&a->locks[i]);
	for (size_t i = 0; i < MOUNTS_MAX; i++) {
		free(a->targets[i]);
		a->targets[i] = NULL;
	}
	a->ndisks = a->nlocks = a->nshares = a->nmounts = 0;
}

/* e2fsck -p: replays the journal of a VM that was killed and mends what is safe to mend */
static int fsck(const struct volume *v, struct cove_error *err)
{
	char tool[64], said[512];
	int r;

	if (!sbin_tool("e2fsck", tool, sizeof(tool)))
		return cove_error_set(err, ENOENT,
				      "e2fsck is missing: install e2fsprogs (apt-get install e2fsprogs)");
	const char *argv[] = { tool, "-p", v->data, NULL };
	r = run_tool(argv, NULL, said, sizeof(said));
	if (r < 0 || r >= 4)
		return cove_error_set(err, EIO,
				      "volume '%s' has errors e2fsck -p cannot mend (%s): run "
				      "e2fsck -f '%s', or remove the volume",
				      v->name, said[0] ? str_one_line(said) : "no output", v->data);
	return 0;
}

static size_t depth(const char *path)
{
	size_t n = 0;

	for (; *path; path++)
		n += *path == '/';
	return n;
}

int volumes_attach(const struct cove_paths *p, const struct container_spec *s, const char *id,
		   const char *name, struct volume_attachment *a, struct cove_error *err)
{
	size_t order[MOUNTS_MAX];
	int r = 0;

	memset(a, 0, sizeof(*a));
	if (s->nmounts > MOUNTS_MAX)
		return cove_error_set(err, E2BIG, "a container has at most %d bind mounts and volumes",
				      MOUNTS_MAX);
	/* parents before what is mounted under them */
	for (size_t i = 0; i < s->nmounts; i++)
		order[i] = i;
	for (size_t i = 1; i < s->nmounts; i++)
		for (size_t k = i; k > 0; k--) {
			struct mount_spec x, y;

			if (mount_parse_saved(s->mounts[order[k - 1]], &x) < 0 ||
			    mount_parse_saved(s->mounts[order[k]], &y) < 0 ||
			    depth(x.target) <= depth(y.target))
				break;
			size_t t = order[k];
			order[k] = order[k - 1];
			order[k - 1] = t;
		}
	for (size_t oi = 0; oi < s->nmounts && r == 0; oi++) {
		struct proto_mount *pm = &a->mounts[a->nmounts];
		struct mount_spec m;
		struct volume v;
		struct stat st;
		size_t i = a->nmounts;

		if (mount_parse_saved(s->mounts[order[oi]], &m) < 0) {
			r = cove_error_set(err, EINVAL, "a mount of this container is damaged");
			break;
		}
		a->targets[i] = strdup(m.target);
		if (!a->targets[i]) {
			r = cove_error_set(err, ENOMEM, "out of memory");
			break;
		}
		*pm = (struct proto_mount){ .readonly = m.readonly, .tag = a->tags[i],
					    .file = a->files[i], .dst = a->targets[i] };
		a->files[i][0] = '\0';
		if (m.type == MOUNT_BIND) {
			struct vm_share *sh = &a->shares[a->nshares];
			const char *base;

			if (stat(m.source, &st) < 0) {
				r = cove_error_set(err, errno, "bind source '%s' cannot be used: %s",
						   m.source, strerror(errno));
				break;
			}
			str_copy(sh->path, sizeof(sh->path), m.source);
			sh->readonly = m.readonly;
			if (!S_ISDIR(st.st_mode)) {
				base = strrchr(m.source, '/') + 1;
				if (!*base || strlen(base) >= sizeof(sh->file)) {
					r = cove_error_set(err, EINVAL, "bind source '%s' has no usable name",
							   m.source);
					break;
				}
				str_copy(a->files[i], sizeof(a->files[i]), base);
				if (vm_confinable()) {
					str_copy(sh->file, sizeof(sh->file), base);
				} else if ((r = link_alone(p, id, a, sh, base, err)) < 0) {
					break;
				}
			}
			str_printf(sh->tag, sizeof(sh->tag), "cove%zu", a->nshares);
			str_copy(a->tags[i], sizeof(a->tags[i]), sh->tag);
			pm->kind = PROTO_MOUNT_9P;
			a->nshares++;
			a->nmounts++;
			continue;
		}
		if ((r = volume_get(p, m.source, &v, err)) < 0)
			break;
		{
			int fd = lock_open(&v, err);
			char holder[128];

			if (fd < 0) {
				volume_done(&v);
				r = fd;
				break;
			}
			a->locks[a->nlocks++] = fd;
			if (flock(fd, (v.block ? LOCK_EX : LOCK_SH) | LOCK_NB) < 0) {
				lock_holder(fd, holder, sizeof(holder));
				r = cove_error_set(err, EBUSY,
						   "volume '%s' is in use by running container %s: a "
						   "block volume is mounted by one running container "
						   "at a time (a volume made with --opt type=dir can be "
						   "shared)",
						   v.name, holder[0] ? holder : "(another)");
				volume_done(&v);
				break;
			}
			if (v.block) {
				char line[256];

				str_printf(line, sizeof(line), "%s %s\n", id, name);
				/* who holds it, for the next one's error */
				if (ftruncate(fd, 0) < 0 ||
				    pwrite(fd, line, strlen(line), 0) != (ssize_t)strlen(line))
					line[0] = '\0';
			}
		}
		pm->populate = !m.nocopy && !m.readonly;
		if (!v.block) {
			struct vm_share *sh = &a->shares[a->nshares];

			str_copy(sh->path, sizeof(sh->path), v.data);
			sh->readonly = m.readonly;
			str_printf(sh->tag, sizeof(sh->tag), "cove%zu", a->nshares);
			str_copy(a->tags[i], sizeof(a->tags[i]), sh->tag);
			pm->kind = PROTO_MOUNT_9P;
			a->nshares++;
		} else {
			struct vm_disk *d = &a->disks[a->ndisks];

			if ((r = fsck(&v, err)) < 0) {
				volume_done(&v);
				break;
			}
			d->fd = open(v.data, (m.readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOFOLLOW);
			if (d->fd < 0) {
				r = cove_error_set(err, errno, "cannot open volume '%s': %s", v.name,
						   strerror(errno));
				volume_done(&v);
				break;
			}
			d->readonly = m.readonly;
			str_printf(d->serial, sizeof(d->serial), "covevol%zu", a->ndisks);
			str_copy(a->tags[i], sizeof(a->tags[i]), d->serial);
			pm->kind = PROTO_MOUNT_BLOCK;
			a->ndisks++;
		}
		volume_done(&v);
		a->nmounts++;
	}
	if (r < 0)
		volumes_detach(a);
	return r;
}
