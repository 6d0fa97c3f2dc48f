/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "spec.h"
#include "volume.h"
#include "network.h"
#include "ports.h"

#include "../image/json.h"
#include "../proto/caps.h"

#include <inttypes.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>

#define OCI_VERSION "1.0.2"
#define A "io.cove." /* annotation prefix */
#define A_LABEL A "label."
#define LOG_MAX_FILES_SPEC 100

static const struct {
	const char *docker; /* --ulimit's name */
	const char *oci;    /* process.rlimits[].type */
	int resource;
} rlimit_names[] = {
	{ "core", "RLIMIT_CORE", RLIMIT_CORE },
	{ "cpu", "RLIMIT_CPU", RLIMIT_CPU },
	{ "data", "RLIMIT_DATA", RLIMIT_DATA },
	{ "fsize", "RLIMIT_FSIZE", RLIMIT_FSIZE },
	{ "locks", "RLIMIT_LOCKS", RLIMIT_LOCKS },
	{ "memlock", "RLIMIT_MEMLOCK", RLIMIT_MEMLOCK },
	{ "msgqueue", "RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE },
	{ "nice", "RLIMIT_NICE", RLIMIT_NICE },
	{ "nofile", "RLIMIT_NOFILE", RLIMIT_NOFILE },
	{ "nproc", "RLIMIT_NPROC", RLIMIT_NPROC },
	{ "rss", "RLIMIT_RSS", RLIMIT_RSS },
	{ "rtprio", "RLIMIT_RTPRIO", RLIMIT_RTPRIO },
	{ "rttime", "RLIMIT_RTTIME", RLIMIT_RTTIME },
	{ "sigpending", "RLIMIT_SIGPENDING", RLIMIT_SIGPENDING },
	{ "stack", "RLIMIT_STACK", RLIMIT_STACK },
	{ "as", "RLIMIT_AS", RLIMIT_AS },
};

/* Mount points the guest makes itself: another runtime's entries for them are not ours. */
static const char *const guest_mounts[] = {
	"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup",
};

int spec_rlimit_parse(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(rlimit_names); i++)
		if (strcmp(name, rlimit_names[i].docker) == 0)
			return rlimit_names[i].resource;
	return -1;
}

const char *spec_rlimit_name(int resource)
{
	for (size_t i = 0; i < ARRAY_SIZE(rlimit_names); i++)
		if (rlimit_names[i].resource == resource)
			return rlimit_names[i].docker;
	return NULL;
}

char **strv_copy(char *const *v, size_t n)
{
	char **out = calloc(n + 1, sizeof(char *));

	for (size_t i = 0; out && i < n; i++) {
		out[i] = strdup(v[i]);
		if (!out[i]) {
			strv_free(out);
			return NULL;
		}
	}
	return out;
}

void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

void spec_init(struct container_spec *s)
{
	memset(s, 0, sizeof(*s));
	s->cpus = 1;
	s->memory = SPEC_DEFAULT_MEMORY;
	s->stop_signal = SIGTERM;
	s->stop_timeout = 10;
	s->log_max_size = SPEC_LOG_MAX_SIZE;
	s->log_max_files = SPEC_LOG_MAX_FILES;
	s->caps = caps_default;
	s->labels = json_object();
}

void spec_done(struct container_spec *s)
{
	char **strs[] = { &s->cwd, &s->user, &s->hostname, &s->id, &s->name, &s->created,
			  &s->image, &s->snapshot, &s->rootfs, &s->accel, &s->network,
			  &s->ip, &s->mac };

	strv_free(s->args);
	strv_free(s->env);
	strv_free(s->tmpfs);
	strv_free(s->entrypoint);
	strv_free(s->cmd);
	strv_free(s->cap_add);
	strv_free(s->ports);
	strv_free(s->more_networks);
	strv_free(s->mounts);
	strv_free(s->dns);
	strv_free(s->dns_search);
	strv_free(s->dns_options);
	strv_free(s->add_hosts);
	strv_free(s->aliases);
	strv_free(s->cap_drop);
	for (size_t i = 0; i < ARRAY_SIZE(strs); i++)
		free(*strs[i]);
	json_decref(s->labels);
	memset(s, 0, sizeof(*s));
}

/* ---- to JSON ----------------------------------------------------------------------------- */

static json_t *caps_json(uint64_t set)
{
	json_t *a = json_array();

	for (unsigned c = 0; a && c <= CAPS_LAST; c++)
		if (set & (UINT64_C(1) << c))
			json_array_append_new(a, json_string(caps_name(c)));
	return a;
}

static json_t *limit_json(uint64_t v)
{
	return json_integer(v == UINT64_MAX ? -1 : (json_int_t)v);
}

/* "PATH[:OPTS]" as an OCI tmpfs mount (cove's defaults: nosuid, nodev, noexec) */
static json_t *tmpfs_json(const char *spec)
{
	const char *colon = strchr(spec, ':');
	_cleanup_free_ char *path = strndup(spec, colon ? (size_t)(colon - spec) : strlen(spec));
	json_t *opts = json_array();

	if (!path || !opts)
		return json_decref(opts), NULL;
	if (colon && colon[1]) {
		_cleanup_free_ char *list = strdup(colon + 1);
		char *save = NULL;

		for (char *o = list ? strtok_r(list, ",", &save) : NULL; o;
		     o = strtok_r(NULL, ",", &save))
			json_array_append_new(opts, json_string(o));
	}
	return json_pack("{s:s, s:s, s:s, s:o}", "destination", path, "type", "tmpfs", "source",
			 "tmpfs", "options", opts);
}

static void annotate(json_t *a, const char *key, const char *value)
{
	if (value)
		json_object_set_new(a, key, json_string(value));
}

static void annotate_strv(json_t *a, const char *key, char **v, size_t n)
{
	_cleanup_json_ json_t *arr = json_strv(v, n);
	_cleanup_free_ char *s = arr ? json_dumps(arr, JSON_COMPACT) : NULL;

	annotate(a, key, s);
}

static void annotate_u64(json_t *a, const char *key, uint64_t v)
{
	char buf[32];

	str_printf(buf, sizeof(buf), "%" PRIu64, v);
	annotate(a, key, buf);
}

int spec_to_json(const struct container_spec *s, json_t **ret, struct cove_error *err)
{
	json_t *rl = json_array(), *mounts = json_array(), *ann = json_object(), *root, *proc;
	const char *k;
	json_t *v;

	*ret = NULL;
	for (size_t i = 0; rl && i < s->nrlimits; i++) {
		const char *type = NULL;
		for (size_t j = 0; j < ARRAY_SIZE(rlimit_names); j++)
			if (rlimit_names[j].resource == s->rlimits[i].resource)
				type = rlimit_names[j].oci;
		if (type)
			json_array_append_new(rl, json_pack("{s:s, s:o, s:o}", "type", type, "soft",
							    limit_json(s->rlimits[i].soft), "hard",
							    limit_json(s->rlimits[i].hard)));
	}
	for (size_t i = 0; mounts && i < s->ntmpfs; i++)
		json_array_append_new(mounts, tmpfs_json(s->tmpfs[i]));
	if (ann) {
		annotate(ann, A "id", s->id);
		annotate(ann, A "name", s->name);
		annotate(ann, A "created", s->created);
		annotate(ann, A "image", s->image ? s->image : "");
		annotate(ann, A "snapshot", s->snapshot ? s->snapshot : "");
		annotate(ann, A "rootfs", s->rootfs ? s->rootfs : "");
		annotate_u64(ann, A "vm.cpus", s->cpus);
		annotate_u64(ann, A "vm.memory", s->memory);
		annotate(ann, A "autoremove", s->autoremove ? "true" : "false");
		annotate(ann, A "accel", s->accel);
		annotate(ann, A "network", s->network);
		if (s->nmore_networks)
			annotate_strv(ann, A "more-networks", s->more_networks, s->nmore_networks);
		if (s->nmounts)
			annotate_strv(ann, A "mounts", s->mounts, s->nmounts);
		annotate(ann, A "ip", s->ip);
		annotate(ann, A "mac-address", s->mac);
		if (s->ndns)
			annotate_strv(ann, A "dns", s->dns, s->ndns);
		if (s->ndns_search)
			annotate_strv(ann, A "dns-search", s->dns_search, s->ndns_search);
		if (s->ndns_options)
			annotate_strv(ann, A "dns-option", s->dns_options, s->ndns_options);
		if (s->nadd_hosts)
			annotate_strv(ann, A "add-host", s->add_hosts, s->nadd_hosts);
		if (s->naliases)
			annotate_strv(ann, A "network-alias", s->aliases, s->naliases);
		annotate_u64(ann, A "stop-signal", (uint64_t)s->stop_signal);
		annotate_u64(ann, A "stop-timeout", (uint64_t)s->stop_timeout);
		annotate_u64(ann, A "log.max-size", s->log_max_size);
		annotate_u64(ann, A "log.max-file", s->log_max_files);
		annotate(ann, A "user", s->user ? s->user : "");
		annotate(ann, A "open-stdin", s->open_stdin ? "true" : "false");
		annotate(ann, A "init", s->init ? "true" : "false");
		annotate(ann, A "seccomp", s->unconfined ? "unconfined" : "default");
		annotate_strv(ann, A "entrypoint", s->entrypoint, s->nentrypoint);
		annotate_strv(ann, A "cmd", s->cmd, s->ncmd);
		annotate_strv(ann, A "cap-add", s->cap_add, s->ncap_add);
		if (s->nports)
			annotate_strv(ann, A "ports", s->ports, s->nports);
		annotate_strv(ann, A "cap-drop", s->cap_drop, s->ncap_drop);
		json_object_foreach(s->labels, k, v) {
			char key[512];
			if (json_is_string(v) &&
			    str_printf(key, sizeof(key), A_LABEL "%s", k) == 0)
				json_object_set(ann, key, v);
		}
	}
	proc = json_pack("{s:b, s:{s:I, s:I}, s:o, s:o, s:s, s:{s:o, s:o, s:o}, s:o, s:b}",
			 "terminal", s->terminal, "user", "uid", (json_int_t)s->uid, "gid",
			 (json_int_t)s->gid, "args", json_strv(s->args, s->nargs), "env",
			 json_strv(s->env, s->nenv), "cwd", s->cwd ? s->cwd : "/", "capabilities",
			 "bounding", caps_json(s->caps), "effective", caps_json(s->caps), "permitted",
			 caps_json(s->caps), "rlimits", rl, "noNewPrivileges", 1);
	root = json_pack("{s:s, s:b}", "path", "rootfs", "readonly", s->readonly);
	if (!proc || !root || !mounts || !ann) {
		json_decref(proc);
		json_decref(root);
		json_decref(mounts);
		json_decref(ann);
		return cove_error_set(err, ENOMEM, "out of memory");
	}
	*ret = json_pack("{s:s, s:o, s:o, s:s, s:o, s:{s:[{s:s}, {s:s}, {s:s}, {s:s}], s:{s:{s:I}},"
			 " s:o, s:o}, s:o}",
			 "ociVersion", OCI_VERSION, "process", proc, "root", root, "hostname",
			 s->hostname ? s->hostname : "", "mounts", mounts, "linux", "namespaces",
			 "type", "pid", "type", "ipc", "type", "uts", "type", "mount", "resources",
			 "memory", "limit", (json_int_t)s->memory, "maskedPaths",
			 json_strv((char **)proto_masked_paths, proto_n_masked_paths),
			 "readonlyPaths",
			 json_strv((char **)proto_readonly_paths, proto_n_readonly_paths),
			 "annotations", ann);
	if (!*ret)
		return cove_error_set(err, ENOMEM, "out of memory");
	return 0;
}

/* ---- from JSON --------------------------------------------------------------------------- */

static int set_str(char **field, json_t *v)
{
	const char *s = json_string_value(v);

	if (!s)
		return 0;
	free(*field);
	*field = strdup(s);
	return *field ? 0 : -ENOMEM;
}

/* a JSON array of strings; anything else in it is an error */
static int set_strv(char ***field, size_t *n, json_t *a)
{
	size_t i, count = json_array_size(a);
	char **v;
	json_t *e;

	if (!a)
		return 0;
	if (!json_is_array(a))
		return -EINVAL;
	v = calloc(count + 1, sizeof(char *));
	if (!v)
		return -ENOMEM;
	json_array_foreach(a, i, e) {
		if (!json_is_string(e) || !(v[i] = strdup(json_string_value(e)))) {
			strv_free(v);
			return json_is_string(e) ? -ENOMEM : -EINVAL;
		}
	}
	strv_free(*field);
	*field = v;
	*n = count;
	return 0;
}

static uint64_t limit_of(json_t *v)
{
	json_int_t i = json_integer_value(v);

	return i < 0 ? UINT64_MAX : (uint64_t)i;
}

static uint64_t caps_of(json_t *a)
{
	uint64_t set = 0, b;
	size_t i;
	json_t *e;

	json_array_foreach(a, i, e)
		if (json_is_string(e) && caps_parse(json_string_value(e), &b) == 0)
			set |= b;
	return set;
}

static bool is_guest_mount(const char *dst)
{
	for (size_t i = 0; i < ARRAY_SIZE(guest_mounts); i++)
		if (strcmp(dst, guest_mounts[i]) == 0)
			return true;
	return false;
}

/* An OCI tmpfs mount as "PATH[:OPTS]", as --tmpfs takes it: -EINVAL for one that form cannot
 * hold (found by fuzz_spec: a destination with ':' or an option with ',' came back changed) */
static int tmpfs_of(json_t *m, char **ret)
{
	const char *dst = json_string_value(json_object_get(m, "destination"));
	json_t *opts = json_object_get(m, "options"), *e;
	char buf[4200];
	size_t i, len;
	bool first = true;

	if (!dst || dst[0] != '/' || strchr(dst, ':') || str_copy(buf, sizeof(buf), dst) < 0)
		return -EINVAL;
	json_array_foreach(opts, i, e) {
		const char *o = json_string_value(e);

		if (!o)
			continue;
		len = strlen(buf);
		if (!*o || strchr(o, ',') ||
		    str_printf(buf + len, sizeof(buf) - len, "%c%s", first ? ':' : ',', o) < 0)
			return -EINVAL;
		first = false;
	}
	*ret = strdup(buf);
	return *ret ? 0 : -ENOMEM;
}

static const char *ann(json_t *a, const char *key)
{
	return json_string_value(json_object_get(a, key));
}

static bool ann_true(json_t *a, const char *key)
{
	const char *v = ann(a, key);

	return v && strcmp(v, "true") == 0;
}

static int ann_u64(json_t *a, const char *key, uint64_t max, uint64_t *ret)
{
	const char *v = ann(a, key);

	return v ? parse_u64(v, max, ret) : 0;
}

/* an annotation holding a JSON array of strings */
static int ann_strv(json_t *a, const char *key, char ***field, size_t *n)
{
	const char *v = ann(a, key);
	_cleanup_json_ json_t *arr = v ? json_loads(v, 0, NULL) : NULL;

	if (!v)
		return 0;
	return arr ? set_strv(field, n, arr) : -EINVAL;
}

static int from_oci(json_t *j, struct container_spec *s, struct cove_error *err)
{
	json_t *proc = json_object_get(j, "process"), *a = json_object_get(j, "annotations");
	json_t *user = json_object_get(proc, "user"), *e;
	uint64_t v;
	const char *k;
	size_t i;
	int r = 0;

	if (!json_is_object(proc))
		return cove_error_set(err, EINVAL, "config.json has no process");
	s->terminal = json_is_true(json_object_get(proc, "terminal"));
	s->uid = (uint32_t)json_integer_value(json_object_get(user, "uid"));
	s->gid = (uint32_t)json_integer_value(json_object_get(user, "gid"));
	if (set_strv(&s->args, &s->nargs, json_object_get(proc, "args")) < 0 ||
	    set_strv(&s->env, &s->nenv, json_object_get(proc, "env")) < 0 ||
	    set_str(&s->cwd, json_object_get(proc, "cwd")) < 0)
		return cove_error_set(err, EINVAL, "config.json has a bad process");
	if (json_object_get(proc, "capabilities"))
		s->caps = caps_of(json_object_get(json_object_get(proc, "capabilities"), "bounding"));
	json_array_foreach(json_object_get(proc, "rlimits"), i, e) {
		const char *type = json_string_value(json_object_get(e, "type"));
		for (size_t n = 0; type && n < ARRAY_SIZE(rlimit_names); n++) {
			if (strcmp(type, rlimit_names[n].oci) != 0 || s->nrlimits == SPEC_MAX_RLIMITS)
				continue;
			s->rlimits[s->nrlimits++] = (struct spec_rlimit){
				rlimit_names[n].resource, limit_of(json_object_get(e, "soft")),
				limit_of(json_object_get(e, "hard"))
			};
		}
	}
	s->readonly = json_is_true(json_object_get(json_object_get(j, "root"), "readonly"));
	r |= set_str(&s->hostname, json_object_get(j, "hostname"));
	/* tmpfs mounts, but for those the guest makes itself */
	json_array_foreach(json_object_get(j, "mounts"), i, e) {
		const char *dst = json_string_value(json_object_get(e, "destination"));
		char *t, **nv;

		if (!dst || strcmp(json_string_value(json_object_get(e, "type")) ?: "", "tmpfs") != 0 ||
		    is_guest_mount(dst))
			continue;
		t = NULL;
		if (tmpfs_of(e, &t) == -EINVAL)
			return cove_error_set(err, EINVAL,
					      "config.json has a tmpfs mount cove cannot use: '%s'",
					      dst);
		nv = t ? realloc(s->tmpfs, (s->ntmpfs + 2) * sizeof(char *)) : NULL;
		if (!nv) {
			free(t);
			return cove_error_set(err, ENOMEM, "out of memory");
		}
		s->tmpfs = nv;
		nv[s->ntmpfs++] = t;
		nv[s->ntmpfs] = NULL;
	}
	/* a memory limit is what the VM gets (io.cove.vm.memory, below, wins) */
	e = json_object_get(json_object_get(json_object_get(json_object_get(j, "linux"), "resources"),
					    "memory"),
			    "limit");
	if (json_integer_value(e) > 0)
		s->memory = (uint64_t)json_integer_value(e);
	/* cove's own */
	r |= set_str(&s->id, json_object_get(a, A "id"));
	r |= set_str(&s->name, json_object_get(a, A "name"));
	r |= set_str(&s->created, json_object_get(a, A "created"));
	r |= set_str(&s->image, json_object_get(a, A "image"));
	r |= set_str(&s->snapshot, json_object_get(a, A "snapshot"));
	r |= set_str(&s->rootfs, json_object_get(a, A "rootfs"));
	r |= set_str(&s->accel, json_object_get(a, A "accel"));
	r |= set_str(&s->network, json_object_get(a, A "network"));
	r |= set_str(&s->ip, json_object_get(a, A "ip"));
	r |= set_str(&s->mac, json_object_get(a, A "mac-address"));
	r |= set_str(&s->user, json_object_get(a, A "user"));
	if (ann_u64(a, A "vm.cpus", 1024, &v) < 0 || ann_u64(a, A "vm.memory", 1ULL << 50, &s->memory) < 0)
		return cove_error_set(err, EINVAL, "config.json has a bad io.cove.vm annotation");
	if (ann(a, A "vm.cpus"))
		s->cpus = (unsigned)v;
	if (ann_u64(a, A "stop-signal", 64, &v) < 0)
		return cove_error_set(err, EINVAL, "config.json has a bad io.cove.stop-signal");
	if (ann(a, A "stop-signal"))
		s->stop_signal = (int)v;
	if (ann_u64(a, A "stop-timeout", 86400, &v) < 0)
		return cove_error_set(err, EINVAL, "config.json has a bad io.cove.stop-timeout");
	if (ann(a, A "stop-timeout"))
		s->stop_timeout = (int)v;
	if (ann_u64(a, A "log.max-size", UINT64_MAX, &s->log_max_size) < 0 ||
	    ann_u64(a, A "log.max-file", LOG_MAX_FILES_SPEC, &v) < 0)
		return cove_error_set(err, EINVAL, "config.json has a bad io.cove.log annotation");
	if (ann(a, A "log.max-file"))
		s->log_max_files = v ? (unsigned)v : 1;
	s->autoremove = ann_true(a, A "autoremove");
	s->open_stdin = ann_true(a, A "open-stdin");
	s->init = ann_true(a, A "init");
	s->unconfined = ann(a, A "seccomp") && strcmp(ann(a, A "seccomp"), "unconfined") == 0;
	if (ann_strv(a, A "entrypoint", &s->entrypoint, &s->nentrypoint) < 0 ||
	    ann_strv(a, A "cmd", &s->cmd, &s->ncmd) < 0 ||
	    ann_strv(a, A "cap-add", &s->cap_add, &s->ncap_add) < 0 ||
	    ann_strv(a, A "ports", &s->ports, &s->nports) < 0 ||
	    ann_strv(a, A "more-networks", &s->more_networks, &s->nmore_networks) < 0 ||
	    ann_strv(a, A "mounts", &s->mounts, &s->nmounts) < 0 ||
	    ann_strv(a, A "dns", &s->dns, &s->ndns) < 0 ||
	    ann_strv(a, A "dns-search", &s->dns_search, &s->ndns_search) < 0 ||
	    ann_strv(a, A "dns-option", &s->dns_options, &s->ndns_options) < 0 ||
	    ann_strv(a, A "add-host", &s->add_hosts, &s->nadd_hosts) < 0 ||
	    ann_strv(a, A "network-alias", &s->aliases, &s->naliases) < 0 ||
	    ann_strv(a, A "cap-drop", &s->cap_drop, &s->ncap_drop) < 0)
		return cove_error_set(err, EINVAL, "config.json has a bad io.cove.* list");
	json_object_foreach(a, k, e)
		if (strncmp(k, A_LABEL, strlen(A_LABEL)) == 0 && json_is_string(e))
			json_object_set(s->labels, k + strlen(A_LABEL), e);
	return r < 0 ? cove_error_set(err, ENOMEM, "out of memory") : 0;
}

/* the layout of cove 0.1: its own keys at the top level */
static int from_v0(json_t *j, struct container_spec *s, struct cove_error *err)
{
	json_t *proc = json_object_get(j, "process"), *e;
	size_t i;
	int r = 0;

	if (!json_is_object(proc))
		return cove_error_set(err, EINVAL, "config.json has no process");
	s->terminal = json_is_true(json_object_get(proc, "terminal"));
	s->open_stdin = json_is_true(json_object_get(proc, "open_stdin"));
	if (set_strv(&s->args, &s->nargs, json_object_get(proc, "args")) < 0 ||
	    set_strv(&s->env, &s->nenv, json_object_get(proc, "env")) < 0 ||
	    set_strv(&s->entrypoint, &s->nentrypoint, json_object_get(j, "entrypoint")) < 0 ||
	    set_strv(&s->cmd, &s->ncmd, json_object_get(j, "cmd")) < 0 ||
	    set_strv(&s->cap_add, &s->ncap_add, json_object_get(j, "cap_add")) < 0 ||
	    set_strv(&s->cap_drop, &s->ncap_drop, json_object_get(j, "cap_drop")) < 0 ||
	    set_strv(&s->tmpfs, &s->ntmpfs, json_object_get(j, "tmpfs")) < 0)
		return cove_error_set(err, EINVAL, "config.json has a bad list");
	r |= set_str(&s->cwd, json_object_get(proc, "cwd"));
	r |= set_str(&s->user, json_object_get(proc, "user"));
	r |= set_str(&s->id, json_object_get(j, "id"));
	r |= set_str(&s->name, json_object_get(j, "name"));
	r |= set_str(&s->created, json_object_get(j, "created"));
	r |= set_str(&s->image, json_object_get(j, "image"));
	r |= set_str(&s->snapshot, json_object_get(j, "snapshot"));
	r |= set_str(&s->rootfs, json_object_get(j, "rootfs"));
	r |= set_str(&s->hostname, json_object_get(j, "hostname"));
	r |= set_str(&s->accel, json_object_get(j, "accel"));
	if (json_integer_value(json_object_get(j, "cpus")) > 0)
		s->cpus = (unsigned)json_integer_value(json_object_get(j, "cpus"));
	if (json_integer_value(json_object_get(j, "memory")) > 0)
		s->memory = (uint64_t)json_integer_value(json_object_get(j, "memory"));
	if (json_integer_value(json_object_get(j, "stop_signal")) > 0)
		s->stop_signal = (int)json_integer_value(json_object_get(j, "stop_signal"));
	if (json_object_get(j, "stop_timeout"))
		s->stop_timeout = (int)json_integer_value(json_object_get(j, "stop_timeout"));
	if (json_object_get(j, "caps"))
		s->caps = (uint64_t)json_integer_value(json_object_get(j, "caps"));
	s->autoremove = json_is_true(json_object_get(j, "autoremove"));
	s->readonly = json_is_true(json_object_get(j, "readonly"));
	s->init = json_is_true(json_object_get(j, "init"));
	s->unconfined = json_is_true(json_object_get(j, "unconfined"));
	json_array_foreach(json_object_get(j, "rlimits"), i, e) {
		if (s->nrlimits == SPEC_MAX_RLIMITS)
			break;
		s->rlimits[s->nrlimits++] = (struct spec_rlimit){
			(int)json_integer_value(json_object_get(e, "resource")),
			limit_of(json_object_get(e, "soft")), limit_of(json_object_get(e, "hard"))
		};
	}
	if (json_is_object(json_object_get(j, "labels")))
		json_object_update(s->labels, json_object_get(j, "labels"));
	return r < 0 ? cove_error_set(err, ENOMEM, "out of memory") : 0;
}

/* What every loader leaves must be a spec cove can run and save as it was loaded. */
static int check(const struct container_spec *s, struct cove_error *err)
{
	char why[256];
	int r;

	if (s->stop_signal < 1 || s->stop_signal > 64)
		return cove_error_set(err, EINVAL, "config.json has a stop signal out of 1..64");
	if (s->stop_timeout < 0 || s->stop_timeout > SPEC_MAX_STOP_TIMEOUT)
		return cove_error_set(err, EINVAL, "config.json has a stop timeout out of 0..%d s",
				      SPEC_MAX_STOP_TIMEOUT);
	if (s->cpus < 1 || s->cpus > SPEC_MAX_CPUS)
		return cove_error_set(err, EINVAL, "config.json asks for %u CPUs (1..%d)", s->cpus,
				      SPEC_MAX_CPUS);
	if (s->memory < SPEC_MIN_MEMORY || s->memory > SPEC_MAX_MEMORY)
		return cove_error_set(err, EINVAL,
				      "config.json asks for %" PRIu64 " bytes of memory (64 MiB to 1 TiB)",
				      s->memory);
	if (s->caps & ~CAPS_ALL)
		return cove_error_set(err, EINVAL, "config.json has unknown capabilities");
	for (size_t i = 0; i < s->nports; i++) {
		struct port_map pm;

		if (port_parse(s->ports[i], &pm, why, sizeof(why)) < 0)
			return cove_error_set(err, EINVAL, "config.json has a bad published port: %s",
					      why);
	}
	r = net_check_fields(s, why, sizeof(why));
	if (r < 0)
		return cove_error_set(err, EINVAL, "config.json has a bad network setting: %s", why);
	if (s->nmounts > MOUNTS_MAX)
		return cove_error_set(err, EINVAL, "config.json has more than %d mounts", MOUNTS_MAX);
	for (size_t i = 0; i < s->nmounts; i++) {
		struct mount_spec m;

		if (mount_parse_saved(s->mounts[i], &m) < 0)
			return cove_error_set(err, EINVAL, "config.json has a bad io.cove.mounts entry");
	}
	for (size_t i = 0; i < s->nrlimits; i++)
		if (!spec_rlimit_name(s->rlimits[i].resource) ||
		    s->rlimits[i].soft > s->rlimits[i].hard)
			return cove_error_set(err, EINVAL, "config.json has a bad rlimit");
	return 0;
}

int spec_from_json(json_t *j, struct container_spec *ret, struct cove_error *err)
{
	struct container_spec s;
	int r;

	if (!json_is_object(j))
		return cove_error_set(err, EINVAL, "config.json is not a JSON object");
	spec_init(&s);
	r = json_object_get(j, "ociVersion") ? from_oci(j, &s, err) : from_v0(j, &s, err);
	if (r == 0 && !s.labels)
		r = cove_error_set(err, ENOMEM, "out of memory");
	if (r == 0)
		r = check(&s, err);
	if (r < 0) {
		spec_done(&s);
		return r;
	}
	*ret = s;
	return 0;
}

int spec_copy(const struct container_spec *s, struct container_spec *ret)
{
	struct cove_error err = { 0 };
	json_t *j = NULL;
	int r = spec_to_json(s, &j, &err);

	if (r == 0)
		r = spec_from_json(j, ret, &err);
	json_decref(j);
	if (r == 0) {
		ret->tool = s->tool;
		ret->maintenance = s->maintenance;
	}
	return r;
}

/* ---- START ------------------------------------------------------------------------------- */

int spec_start(const struct container_spec *s, struct proto_start *m, struct cove_error *err)
{
	static char *const shell[] = { (char *)"sh", NULL };

	memset(m, 0, sizeof(*m));
	m->argv = calloc((s->nargs ? s->nargs : 1) + 1, sizeof(char *));
	m->env = calloc(s->nenv + 1, sizeof(char *));
	m->tmpfs = calloc(s->ntmpfs + 1, sizeof(char *));
	m->rlimits = calloc(s->nrlimits + 1, sizeof(*m->rlimits));
	if (!m->argv || !m->env || !m->tmpfs || !m->rlimits) {
		spec_start_done(m);
		return cove_error_set(err, ENOMEM, "out of memory");
	}
	m->argc = (uint32_t)(s->nargs ? s->nargs : 1);
	memcpy(m->argv, s->nargs ? s->args : shell, m->argc * sizeof(char *));
	m->envc = (uint32_t)s->nenv;
	if (s->nenv) /* env and tmpfs are NULL when empty */
		memcpy(m->env, s->env, s->nenv * sizeof(char *));
	m->ntmpfs = (uint32_t)s->ntmpfs;
	if (s->ntmpfs)
		memcpy(m->tmpfs, s->tmpfs, s->ntmpfs * sizeof(char *));
	for (size_t i = 0; i < s->nrlimits; i++)
		m->rlimits[i] = (struct proto_rlimit){ (uint32_t)s->rlimits[i].resource,
						       s->rlimits[i].soft, s->rlimits[i].hard };
	m->nrlimits = (uint32_t)s->nrlimits;
	m->cwd = s->cwd ? s->cwd : (char *)"/";
	m->user = s->user ? s->user : (char *)"";
	m->uid = s->uid;
	m->gid = s->gid;
	m->hostname = s->hostname ? s->hostname : (char *)"";
	m->rootfs = (char *)"/dev/vda";
	m->terminal = s->terminal;
	m->open_stdin = s->open_stdin;
	m->readonly = s->readonly;
	m->init = s->init;
	m->unconfined = s->unconfined;
	m->caps = s->caps;
	m->tool = s->tool;
	return 0;
}

void spec_start_done(struct proto_start *m)
{
	free(m->argv);
	free(m->env);
	free(m->tmpfs);
	free(m->rlimits);
	memset(m, 0, sizeof(*m));
}
