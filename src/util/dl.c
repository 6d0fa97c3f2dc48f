/* SPDX-License-Identifier: Apache-2.0 */
#include "dl.h"

#include <dlfcn.h>
#include <errno.h>

#include "util.h"

int dl_load_table(const char *lib, const char *needed_for, const char *package,
		  const struct dl_symbol *syms, size_t n, char *msg, size_t msg_size)
{
	void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		str_printf(msg, msg_size,
			   "cannot load %s (needed %s): %s; install %s (apt-get install %s)", lib,
			   needed_for, dlerror(), package, package);
		return -ENOENT;
	}
	for (size_t i = 0; i < n; i++) {
		*syms[i].slot = dlsym(h, syms[i].name);
		if (!*syms[i].slot) {
			str_printf(msg, msg_size, "%s lacks %s: install a newer %s", lib,
				   syms[i].name, package);
			return -ENOENT;
		}
	}
	return 0;
}
