/* SPDX-License-Identifier: Apache-2.0 */
#define ARCHIVE_DL_NO_REDIRECT 1
#include "archive_dl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "../util/util.h"

struct archive_dl archive_dl;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char load_error[512];

static void load(void)
{
	void *h = dlopen("libarchive.so.13", RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		str_printf(load_error, sizeof(load_error),
			   "cannot load libarchive.so.13 (needed to read image layers and archives): "
			   "%s; install libarchive13 (apt-get install libarchive13)",
			   dlerror());
		return;
	}
#define RESOLVE(name)                                                                              \
	*(void **)&archive_dl.name = dlsym(h, #name);                                              \
	if (!archive_dl.name) {                                                                    \
		str_printf(load_error, sizeof(load_error),                                         \
			   "libarchive.so.13 lacks %s: install a newer libarchive13", #name);        \
		return;                                                                            \
	}
	ARCHIVE_DL_SYMBOLS(RESOLVE)
#undef RESOLVE
	atomic_store_explicit(&archive_dl.loaded, true, memory_order_release);
}

int archive_dl_load(struct cove_error *err)
{
	pthread_once(&once, load);
	if (load_error[0])
		return cove_error_set(err, ENOENT, "%s", load_error);
	return 0;
}

void archive_dl_load_or_exit(void)
{
	pthread_once(&once, load);
	if (load_error[0]) {
		fprintf(stderr, "cove: %s\n", load_error);
		exit(125);
	}
}
