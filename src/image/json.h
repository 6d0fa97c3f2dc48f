/* SPDX-License-Identifier: Apache-2.0 */
/* Small jansson helpers for host code: a cleanup attribute and string vectors as arrays. */
#pragma once

#include <jansson.h>

#include "../util/util.h"

/* json_decrefp() is jansson's own (NULL-safe) */
#define _cleanup_json_ _cleanup_(json_decrefp)

/* n strings as a new JSON array (NULL when out of memory). */
static inline json_t *json_strv(char *const *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}
