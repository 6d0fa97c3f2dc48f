/* SPDX-License-Identifier: Apache-2.0 */
/* A container's config.json to the START message that runs its main process (or an exec). */
#define _GNU_SOURCE
#include "spec.h"

#include <string.h>

static char **strv_of(json_t *a, uint32_t *ret_n)
{
	size_t n = json_array_size(a);
	char **v = calloc(n + 1, sizeof(char *));
	size_t i;
	json_t *e;

	*ret_n = 0;
	if (!v)
		return NULL;
	json_array_foreach(a, i, e) {
		const char *s = json_string_value(e);
		if (!s) {
			free(v);
			return NULL;
		}
		v[(*ret_n)++] = (char *)s;
	}
	return v;
}

static const char *str_or(json_t *o, const char *key, const char *def)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : def;
}

int spec_start(json_t *config, struct proto_start *m, struct cove_error *err)
{
	json_t *proc = json_object_get(config, "process");
	json_t *rl = json_object_get(config, "rlimits");
	size_t i;
	json_t *e;

	memset(m, 0, sizeof(*m));
	if (!json_is_object(proc))
		return cove_error_set(err, EINVAL, "the container's config has no process");
	m->argv = strv_of(json_object_get(proc, "args"), &m->argc);
	m->env = strv_of(json_object_get(proc, "env"), &m->envc);
	m->tmpfs = strv_of(json_object_get(config, "tmpfs"), &m->ntmpfs);
	if (!m->argv || !m->env || !m->tmpfs || m->argc == 0) {
		spec_start_done(m);
		return cove_error_set(err, EINVAL, "the container's config has a bad process");
	}
	m->cwd = (char *)str_or(proc, "cwd", "/");
	m->user = (char *)str_or(proc, "user", "");
	m->hostname = (char *)str_or(config, "hostname", "");
	m->rootfs = (char *)"/dev/vda";
	m->terminal = json_is_true(json_object_get(proc, "terminal"));
	m->open_stdin = json_is_true(json_object_get(proc, "open_stdin"));
	m->readonly = json_is_true(json_object_get(config, "readonly"));
	m->init = json_is_true(json_object_get(config, "init"));
	m->unconfined = json_is_true(json_object_get(config, "unconfined"));
	m->caps = (uint64_t)json_integer_value(json_object_get(config, "caps"));
	m->tool = (uint8_t)json_integer_value(json_object_get(config, "tool"));
	if (json_array_size(rl) > PROTO_MAX_RLIMITS) {
		spec_start_done(m);
		return cove_error_set(err, EINVAL, "the container's config has too many ulimits");
	}
	m->rlimits = calloc(json_array_size(rl) + 1, sizeof(*m->rlimits));
	if (!m->rlimits) {
		spec_start_done(m);
		return cove_error_set(err, ENOMEM, "out of memory");
	}
	json_array_foreach(rl, i, e) {
		json_int_t soft = json_integer_value(json_object_get(e, "soft"));
		json_int_t hard = json_integer_value(json_object_get(e, "hard"));

		m->rlimits[i].resource = (uint32_t)json_integer_value(json_object_get(e, "resource"));
		m->rlimits[i].soft = soft < 0 ? UINT64_MAX : (uint64_t)soft;
		m->rlimits[i].hard = hard < 0 ? UINT64_MAX : (uint64_t)hard;
		m->nrlimits++;
	}
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
