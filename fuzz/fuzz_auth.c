/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz the WWW-Authenticate challenge parser (src/image/registry.c), which reads what any
 * registry, or anything posing as one, sends in a 401. What parses must name a known scheme
 * and leave every parameter NUL-terminated inside its buffer; parsing is a pure function of
 * the text (the same input gives the same answer twice).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image/registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(int ok)
{
	if (!ok)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct registry_challenge a, b;
	char *s;
	int r;

	if (size > 64 * 1024)
		return 0;
	s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	memset(&a, 0xa5, sizeof(a));
	r = registry_parse_challenge(s, &a);
	must(r == 0 || r == -EINVAL);
	if (r == 0) {
		must(a.scheme == REGISTRY_AUTH_NONE || a.scheme == REGISTRY_AUTH_BASIC ||
		     a.scheme == REGISTRY_AUTH_BEARER);
		must(memchr(a.realm, '\0', sizeof(a.realm)) != NULL);
		must(memchr(a.service, '\0', sizeof(a.service)) != NULL);
		must(memchr(a.scope, '\0', sizeof(a.scope)) != NULL);
		must(memchr(a.error, '\0', sizeof(a.error)) != NULL);
		memset(&b, 0, sizeof(b));
		must(registry_parse_challenge(s, &b) == 0);
		must(a.scheme == b.scheme && strcmp(a.realm, b.realm) == 0 &&
		     strcmp(a.service, b.service) == 0 && strcmp(a.scope, b.scope) == 0 &&
		     strcmp(a.error, b.error) == 0);
	}
	free(s);
	return 0;
}
