/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder: the capability table is being written. */
#include "caps.h"

#include <errno.h>

const uint64_t caps_default = 0xa80425fbULL;

int caps_parse(const char *name, uint64_t *ret)
{
	return -EINVAL;
}

const char *caps_name(unsigned cap)
{
	return NULL;
}

int caps_format(uint64_t set, char *buf, size_t size)
{
	if (size)
		buf[0] = '\0';
	return 0;
}
