/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz the parsers of what users and registries hand us as text: image references (parse,
 * then format and parse again: the canonical form must be a fixed point) and WWW-Authenticate
 * challenges.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image/reference.h"
#include "image/registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reference a, b;
	struct registry_challenge ch;
	struct cove_error err = { 0 };
	char s[2048], canon[2048], again[2048];

	if (size >= sizeof(s))
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	if (reference_parse(s, &a, &err) == 0) {
		if (reference_format(&a, canon, sizeof(canon)) != 0)
			abort();
		memset(&err, 0, sizeof(err));
		if (reference_parse(canon, &b, &err) != 0)
			abort(); /* the canonical form must parse */
		if (reference_format(&b, again, sizeof(again)) != 0 || strcmp(canon, again) != 0)
			abort(); /* ... and be a fixed point */
		(void)reference_familiar(&a, again, sizeof(again));
	} else if (!err.msg[0] || strchr(err.msg, '\n')) {
		abort(); /* every failure says why, on one line */
	}
	(void)registry_parse_challenge(s, &ch);
	return 0;
}
