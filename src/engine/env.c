/* SPDX-License-Identifier: Apache-2.0 */
/* Environment lists as docker builds them: -e K=V, -e K (copied from here), and the merge of
 * the image's, ours and the user's, later ones winning. */
#define _GNU_SOURCE
#include "engine.h"

#include <stdio.h>
#include <string.h>

int env_list_add(char ***env, size_t *n, const char *kv, struct cove_error *err)
{
	const char *eq = strchr(kv, '=');
	char **nv;
	char *s;

	if (kv[0] == '=' || kv[0] == '\0')
		return cove_error_set(err, EINVAL,
				      "invalid environment variable '%s': expected KEY=VALUE", kv);
	if (!eq) {
		const char *v = getenv(kv);

		if (!v)
			return 0; /* docker: -e K with K unset here sets nothing */
		if (asprintf(&s, "%s=%s", kv, v) < 0)
			return cove_error_set(err, ENOMEM, "out of memory");
	} else if (!(s = strdup(kv))) {
		return cove_error_set(err, ENOMEM, "out of memory");
	}
	nv = realloc(*env, (*n + 2) * sizeof(char *));
	if (!nv) {
		free(s);
		return cove_error_set(err, ENOMEM, "out of memory");
	}
	*env = nv;
	nv[(*n)++] = s;
	nv[*n] = NULL;
	return 0;
}

void env_list_free(char **env, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(env[i]);
	free(env);
}

char **merge_env(char **base, size_t nbase, char **add, size_t nadd, uint32_t *ret_n)
{
	char **out = calloc(nbase + nadd + 1, sizeof(char *));
	size_t n = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < nbase + nadd; i++) {
		char *kv = i < nbase ? base[i] : add[i - nbase];
		size_t klen = strcspn(kv, "=");
		size_t j;

		for (j = 0; j < n; j++)
			if (strncmp(out[j], kv, klen) == 0 && out[j][klen] == '=')
				break;
		out[j] = kv;
		if (j == n)
			n++;
	}
	out[n] = NULL;
	*ret_n = (uint32_t)n;
	return out;
}
