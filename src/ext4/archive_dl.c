/* SPDX-License-Identifier: Apache-2.0 */
#define ARCHIVE_DL_NO_REDIRECT 1
#include "archive_dl.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "../util/dl.h"
#include "../util/util.h"

struct archive_dl archive_dl;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char load_error[512];

static void load(void)
{
#define SYMBOL(name) { #name, (void **)&archive_dl.name },
	const struct dl_symbol syms[] = { ARCHIVE_DL_SYMBOLS(SYMBOL) };
#undef SYMBOL

	if (dl_load_table("libarchive.so.13", "to read image layers and archives", "libarchive13",
			  syms, ARRAY_SIZE(syms), load_error, sizeof(load_error)) == 0)
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
