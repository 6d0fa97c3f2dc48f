/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "create.h"
#include "volume.h"
#include "network.h"
#include "ports.h"

#include "../image/archives.h"
#include "../image/json.h"
#include "../proto/caps.h"

#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/*
 * Find IMAGE: in the store (by name or ID), else the offline busybox (loaded into the store),
 * else pull it. Fills the snapshot's path and name and the image's config.
 */
static int resolve_image(const struct cove_paths *paths, const char *ref, const char *platform,
			 pull_progress_fn progress, void *userdata, char *image, size_t size,
			 char *snapshot, size_t ssize, struct image_config **ret_config,
			 struct cove_error *err)
{
	struct store *s = NULL;
	struct store_image img;
	struct image_manifest *m = NULL;
	struct cove_error nf = { 0 };
	int r;

	*ret_config = NULL;
	snapshot[0] = '\0';
	r = images_open(paths, &s, err);
	if (r < 0)
		return r;
	r = images_find(s, ref, &img, &nf);
	if (r == -ENOENT && container_offline_image(paths, ref, image, size) == 0) {
		/* the offline busybox: into the store once, an ordinary image from then on */
		struct image_load_result lr = { 0 };

		r = image_load(s, image, NULL, &lr, err);
		image_load_result_done(&lr);
		if (r == 0)
			r = images_find(s, ref, &img, err);
	} else if (r == -ENOENT) {
		r = images_pull(s, ref, platform, progress, userdata, &img, err);
	} else if (r < 0) {
		*err = nf;
	}
	if (r == 0)
		r = image_load_config(s, &img, NULL, &m, ret_config, err);
	if (r == 0 && (str_printf(image, size, "%s/%s", store_root(s), img.snapshot) < 0 ||
		       str_copy(snapshot, ssize, img.snapshot) < 0))
		r = cove_error_set(err, ENAMETOOLONG, "image path too long");
	image_manifest_free(m);
	store_free(s);
	return r;
}

/* docker's rules: --entrypoint replaces the image's (and drops its Cmd); arguments replace Cmd. */
static char **build_argv(const struct create_request *q, const struct image_config *c,
			 size_t *ret_argc)
{
	char **ep = NULL, **cmd = NULL, *user_ep[2] = { (char *)q->entrypoint, NULL };
	size_t nep = 0, ncmd = 0, n = 0;
	char **out;

	if (q->entrypoint) {
		ep = user_ep;
		nep = q->entrypoint[0] ? 1 : 0;
	} else if (c) {
		ep = c->entrypoint;
		nep = c->n_entrypoint;
	}
	if (q->nargs) {
		cmd = q->args;
		ncmd = q->nargs;
	} else if (c && !q->entrypoint) {
		cmd = c->cmd;
		ncmd = c->n_cmd;
	}
	out = calloc(nep + ncmd + 1, sizeof(char *));
	if (!out)
		return NULL;
	for (size_t i = 0; i < nep; i++)
		out[n++] = ep[i];
	for (size_t i = 0; i < ncmd; i++)
		out[n++] = cmd[i];
	*ret_argc = n;
	return out;
}

/* The capability set: the default, then --cap-add, then --cap-drop (docker's order: drop wins,
 * except that "ALL" in drop with explicit adds keeps the adds). */
static uint64_t effective_caps(const struct create_request *q)
{
	uint64_t set = caps_default, add = 0, drop = 0, b;
	size_t i;
	json_t *e;

	json_array_foreach(q->cap_add, i, e)
		if (caps_parse(json_string_value(e), &b) == 0)
			add |= b;
	json_array_foreach(q->cap_drop, i, e)
		if (caps_parse(json_string_value(e), &b) == 0)
			drop |= b;
	if (drop == CAPS_ALL)
		return add;
	return (set | add) & ~drop;
}

/* a JSON array of strings (may be NULL) as a NULL-terminated vector */
static int strv_of(json_t *a, char ***ret, size_t *ret_n)
{
	size_t n = json_array_size(a), i;
	json_t *e;

	*ret = calloc(n + 1, sizeof(char *));
	if (!*ret)
		return -ENOMEM;
	*ret_n = n;
	json_array_foreach(a, i, e)
		if (!((*ret)[i] = strdup(json_string_value(e) ?: "")))
			return -ENOMEM;
	return 0;
}

/* The image's VOLUMEs: an anonymous volume at each path no -v, --mount or --tmpfs covers. */
static int image_volumes(const struct image_config *cfg, struct container_spec *s)
{
	for (size_t i = 0; i < cfg->n_volumes; i++) {
		struct mount_spec m = { .type = MOUNT_VOLUME };
		char why[64], **nv, *f;
		bool covered = false;

		if (str_copy(m.target, sizeof(m.target), cfg->volumes[i]) < 0 ||
		    mount_parse_v(m.target, &m, why, sizeof(why)) < 0)
			continue; /* a path no container could mount: docker ignores it too */
		for (size_t k = 0; k < s->nmounts && !covered; k++) {
			struct mount_spec o;

			covered = mount_parse_saved(s->mounts[k], &o) == 0 &&
				  strcmp(o.target, m.target) == 0;
		}
		for (size_t k = 0; k < s->ntmpfs && !covered; k++)
			covered = strncmp(s->tmpfs[k], m.target, strlen(m.target)) == 0 &&
				  (s->tmpfs[k][strlen(m.target)] == '\0' ||
				   s->tmpfs[k][strlen(m.target)] == ':');
		if (covered)
			continue;
		f = mount_format(&m);
		nv = f ? realloc(s->mounts, (s->nmounts + 2) * sizeof(char *)) : NULL;
		if (!nv) {
			free(f);
			return -ENOMEM;
		}
		s->mounts = nv;
		nv[s->nmounts++] = f;
		nv[s->nmounts] = NULL;
	}
	return 0;
}

/* --volumes-from CTR[:ro|rw]: CTR's mounts, appended to mounts where no mount has their
 * target yet */
static int volumes_from(const struct cove_paths *p, json_t *from, json_t *mounts,
			struct cove_error *err)
{
	size_t i;
	json_t *e;

	json_array_foreach(from, i, e) {
		char ref[260];
		const char *v = json_string_value(e), *colon = strchr(v, ':');
		bool ro = false;
		struct container c;
		struct container_spec os;
		int r;

		str_printf(ref, sizeof(ref), "%.*s", colon ? (int)(colon - v) : (int)strlen(v), v);
		if (colon && strcmp(colon + 1, "ro") != 0 && strcmp(colon + 1, "rw") != 0)
			return cove_error_set(err, EINVAL,
					      "invalid --volumes-from '%s': the mode is ro or rw", v);
		ro = colon && strcmp(colon + 1, "ro") == 0;
		r = container_find(p, ref, &c, err);
		if (r < 0)
			return r;
		r = container_load_spec(&c, &os, err);
		if (r < 0)
			return r;
		for (size_t k = 0; k < os.nmounts; k++) {
			struct mount_spec m;
			bool taken = false;
			size_t n;
			json_t *x;
			char *f;

			if (mount_parse_saved(os.mounts[k], &m) < 0)
				continue;
			json_array_foreach(mounts, n, x) {
				struct mount_spec o;

				taken |= mount_parse_saved(json_string_value(x), &o) == 0 &&
					 strcmp(o.target, m.target) == 0;
			}
			if (taken)
				continue;
			if (colon)
				m.readonly = ro;
			f = mount_format(&m);
			if (!f || json_array_append_new(mounts, json_string(f)) < 0) {
				free(f);
				spec_done(&os);
				return cove_error_set(err, ENOMEM, "out of memory");
			}
			free(f);
		}
		spec_done(&os);
	}
	return 0;
}

/* -P: each port the image exposes ("80/tcp", "53/udp" or "80"), on a port the kernel picks,
 * unless a -p already publishes it. */
static int publish_exposed(const struct image_config *cfg, struct container_spec *s)
{
	for (size_t i = 0; i < cfg->n_exposed_ports; i++) {
		const char *e = cfg->exposed_ports[i];
		struct port_map m = { 0 };
		char spec[64], why[160], **nv;
		bool have = false;

		if (port_parse(e, &m, why, sizeof(why)) < 0 || m.host_port || m.host_ip)
			continue;
		for (size_t k = 0; k < s->nports && !have; k++) {
			struct port_map o;

			have = port_parse(s->ports[k], &o, why, sizeof(why)) == 0 &&
			       o.ctr_port == m.ctr_port && o.udp == m.udp;
		}
		if (have)
			continue;
		port_format(&m, spec, sizeof(spec));
		nv = realloc(s->ports, (s->nports + 2) * sizeof(char *));
		if (!nv)
			return -ENOMEM;
		s->ports = nv;
		if (!(nv[s->nports] = strdup(spec)))
			return -ENOMEM;
		nv[++s->nports] = NULL;
	}
	return 0;
}

/* the image's environment under a default PATH, HOSTNAME, TERM with a terminal, then -e */
static char **environment(const struct create_request *q, const struct image_config *cfg,
			  const char *hostname, size_t *ret_n)
{
	char path_env[] = DEFAULT_PATH, term_env[] = "TERM=xterm", host_env[80];
	_cleanup_free_ char **base = calloc((cfg ? cfg->n_env : 0) + 4, sizeof(char *));
	_cleanup_free_ char **merged = NULL;
	size_t nbase = 0;
	uint32_t n;

	if (!base)
		return NULL;
	str_printf(host_env, sizeof(host_env), "HOSTNAME=%s", hostname);
	base[nbase++] = path_env;
	for (size_t i = 0; cfg && i < cfg->n_env; i++)
		base[nbase++] = cfg->env[i];
	base[nbase++] = host_env;
	if (q->tty)
		base[nbase++] = term_env;
	merged = merge_env(base, nbase, q->env, q->nenv, &n);
	if (!merged)
		return NULL;
	*ret_n = n;
	return strv_copy(merged, n); /* its strings point into base and q */
}

int spec_from_request(const struct create_request *q, const struct image_config *cfg,
		      const struct container *c, const char *created, const char *snapshot,
		      struct container_spec *ret, struct cove_error *err)
{
	struct container_spec s;
	_cleanup_free_ char **argv = NULL;
	char *ep[2] = { (char *)q->entrypoint, NULL }, *shell[2] = { (char *)"sh", NULL };
	const char *workdir = q->workdir, *user = q->user;
	bool image_cmd = cfg && !q->entrypoint;
	size_t argc = 0;
	int stop_signal = q->stop_signal;

	spec_init(&s);
	argv = build_argv(q, cfg, &argc);
	if (!argv)
		goto oom;
	if (argc == 0 && cfg) {
		spec_done(&s);
		return cove_error_set(err, EINVAL,
				      "no command: the image has no entrypoint or command; give one "
				      "after IMAGE");
	}
	if (!workdir && cfg && cfg->working_dir && cfg->working_dir[0] == '/')
		workdir = cfg->working_dir;
	if (!user && cfg && cfg->user && cfg->user[0])
		user = cfg->user;
	if (!stop_signal && cfg && cfg->stop_signal &&
	    signal_parse(cfg->stop_signal, &stop_signal) < 0)
		stop_signal = 0;
	{
		const struct {
			char **field;
			const char *v;
		} strs[] = {
			{ &s.cwd, workdir ? workdir : "/" },
			{ &s.user, user ? user : "" },
			{ &s.hostname, q->hostname ? q->hostname : c->short_id },
			{ &s.id, c->id },
			{ &s.name, c->name },
			{ &s.created, created },
			{ &s.image, q->rootfs ? "" : q->image },
			{ &s.snapshot, snapshot ? snapshot : "" },
			{ &s.rootfs, q->rootfs ? q->rootfs : "" },
			{ &s.accel, q->accel },
			{ &s.network, q->network },
			{ &s.ip, q->ip },
			{ &s.mac, q->mac },
		};
		for (size_t i = 0; i < ARRAY_SIZE(strs); i++)
			if (strs[i].v && !(*strs[i].field = strdup(strs[i].v)))
				goto oom;
	}
	/* no command at all (--rootfs): the guest's shell */
	s.args = argc ? strv_copy(argv, argc) : strv_copy(shell, 1);
	s.nargs = argc ? argc : 1;
	s.env = environment(q, cfg, s.hostname, &s.nenv);
	/* as inspect shows them: --entrypoint replaces the image's and drops its Cmd */
	s.entrypoint = q->entrypoint ? strv_copy(ep, 1)
				     : strv_copy(cfg ? cfg->entrypoint : NULL,
						 cfg ? cfg->n_entrypoint : 0);
	s.nentrypoint = q->entrypoint ? 1 : cfg ? cfg->n_entrypoint : 0;
	s.cmd = q->nargs ? strv_copy(q->args, q->nargs)
			 : strv_copy(image_cmd ? cfg->cmd : NULL, image_cmd ? cfg->n_cmd : 0);
	s.ncmd = q->nargs ? q->nargs : image_cmd ? cfg->n_cmd : 0;
	if (!s.args || !s.env || !s.entrypoint || !s.cmd ||
	    strv_of(q->tmpfs, &s.tmpfs, &s.ntmpfs) < 0 ||
	    strv_of(q->mounts, &s.mounts, &s.nmounts) < 0 ||
	    (cfg && image_volumes(cfg, &s) < 0) ||
	    strv_of(q->cap_add, &s.cap_add, &s.ncap_add) < 0 ||
	    (q->ports && strv_of(q->ports, &s.ports, &s.nports) < 0) ||
	    (q->more_networks &&
	     strv_of(q->more_networks, &s.more_networks, &s.nmore_networks) < 0) ||
	    (q->dns && strv_of(q->dns, &s.dns, &s.ndns) < 0) ||
	    (q->dns_search && strv_of(q->dns_search, &s.dns_search, &s.ndns_search) < 0) ||
	    (q->dns_options && strv_of(q->dns_options, &s.dns_options, &s.ndns_options) < 0) ||
	    (q->add_hosts && strv_of(q->add_hosts, &s.add_hosts, &s.nadd_hosts) < 0) ||
	    (q->aliases && strv_of(q->aliases, &s.aliases, &s.naliases) < 0) ||
	    strv_of(q->cap_drop, &s.cap_drop, &s.ncap_drop) < 0)
		goto oom;
	s.terminal = q->tty;
	s.open_stdin = q->interactive;
	s.cpus = q->cpus ? q->cpus : 1;
	if (q->memory)
		s.memory = q->memory;
	s.autoremove = q->rm;
	s.stop_signal = stop_signal ? stop_signal : SIGTERM;
	s.stop_timeout = q->stop_timeout >= 0 ? q->stop_timeout : 10;
	if (q->log_unlimited)
		s.log_max_size = 0;
	else if (q->log_max_size)
		s.log_max_size = q->log_max_size;
	if (q->log_max_files)
		s.log_max_files = q->log_max_files;
	if (q->publish_all && cfg && publish_exposed(cfg, &s) < 0)
		goto oom;
	s.readonly = q->read_only;
	s.init = q->init;
	s.unconfined = q->unconfined;
	s.caps = effective_caps(q);
	memcpy(s.rlimits, q->rlimits, q->nrlimits * sizeof(*q->rlimits));
	s.nrlimits = q->nrlimits;
	/* the image's labels, then --label */
	for (size_t i = 0; cfg && i < cfg->n_labels; i++)
		json_object_set_new(s.labels, cfg->labels[i].key, json_string(cfg->labels[i].value));
	if (q->labels)
		json_object_update(s.labels, q->labels);
	*ret = s;
	return 0;
oom:
	spec_done(&s);
	return cove_error_set(err, ENOMEM, "out of memory");
}

int container_make(const struct cove_paths *p, const struct create_request *q,
		   pull_progress_fn progress, void *userdata, struct container *ret_c,
		   struct container_spec *ret_spec, struct cove_error *err)
{
	struct container c = { .lock_fd = -1 };
	struct container_spec s;
	struct image_config *cfg = NULL;
	char image[PATH_MAX + 64], snapshot[128] = "", created[40];
	struct create_request req = *q;
	_cleanup_json_ json_t *mounts = q->mounts ? json_deep_copy(q->mounts) : json_array();
	int r;

	/* a network or a --volumes-from container that is not there fails before anything is
	 * pulled or made */
	r = net_check_name(p, q->network, err);
	if (r < 0)
		return r;
	if (!mounts)
		return cove_error_set(err, ENOMEM, "out of memory");
	if (q->volumes_from && (r = volumes_from(p, q->volumes_from, mounts, err)) < 0)
		return r;
	req.mounts = mounts;
	q = &req;
	/* the root filesystem: an image, or a directory */
	if (!q->rootfs) {
		r = resolve_image(p, q->image, q->platform, progress, userdata, image, sizeof(image),
				  snapshot, sizeof(snapshot), &cfg, err);
		if (r < 0)
			return r;
	} else {
		struct stat st;
		if (stat(q->rootfs, &st) < 0 || !S_ISDIR(st.st_mode))
			return cove_error_set(err, ENOTDIR, "--rootfs '%s' is not a directory",
					      q->rootfs);
	}
	r = container_create(p, q->name, q->rm, &c, err);
	if (r == 0)
		r = q->rootfs ? container_disk_from_dir(&c, q->rootfs, err)
			      : container_disk_from_image(&c, image, snapshot, err);
	container_timestamp(created, sizeof(created));
	if (r == 0)
		r = spec_from_request(q, cfg, &c, created, q->rootfs ? NULL : snapshot, &s, err);
	image_config_free(cfg);
	if (r == 0 && (r = net_check_spec(p, &s, err)) < 0)
		spec_done(&s);
	else if (r == 0 && (r = volumes_for_create(p, &s, err)) < 0)
		spec_done(&s);
	if (r == 0) {
		r = container_save_spec(&c, &s, err);
		if (r < 0) {
			volumes_release(p, &s);
			spec_done(&s);
		}
	}
	if (r < 0) {
		container_abandon(&c);
		container_unlock(&c);
		return r;
	}
	*ret_c = c;
	*ret_spec = s;
	return 0;
}
