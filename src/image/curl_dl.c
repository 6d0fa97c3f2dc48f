/* SPDX-License-Identifier: Apache-2.0 */
#include "curl_dl.h"

#include <pthread.h>
#include <string.h>

#include "../util/dl.h"
#include "../util/util.h"

struct curl_dl curl_dl;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char load_error[512];

#define SYMBOL(field, name) { name, (void **)&curl_dl.field }

static void load(void)
{
	const struct dl_symbol syms[] = {
		SYMBOL(global_init, "curl_global_init"),
		SYMBOL(easy_init, "curl_easy_init"),
		SYMBOL(easy_setopt, "curl_easy_setopt"),
		SYMBOL(easy_perform, "curl_easy_perform"),
		SYMBOL(easy_cleanup, "curl_easy_cleanup"),
		SYMBOL(easy_reset, "curl_easy_reset"),
		SYMBOL(easy_getinfo, "curl_easy_getinfo"),
		SYMBOL(easy_strerror, "curl_easy_strerror"),
		SYMBOL(easy_escape, "curl_easy_escape"),
		SYMBOL(free, "curl_free"),
		SYMBOL(url, "curl_url"),
		SYMBOL(url_get, "curl_url_get"),
		SYMBOL(url_set, "curl_url_set"),
		SYMBOL(url_cleanup, "curl_url_cleanup"),
		SYMBOL(share_init, "curl_share_init"),
		SYMBOL(share_setopt, "curl_share_setopt"),
		SYMBOL(share_cleanup, "curl_share_cleanup"),
		SYMBOL(slist_append, "curl_slist_append"),
		SYMBOL(slist_free_all, "curl_slist_free_all"),
		SYMBOL(version_info, "curl_version_info"),
	};

	(void)dl_load_table("libcurl.so.4", "to talk to registries", "libcurl4", syms,
			    ARRAY_SIZE(syms), load_error, sizeof(load_error));
}

int curl_dl_load(struct cove_error *err)
{
	pthread_once(&once, load);
	if (load_error[0])
		return cove_error_set(err, ENOENT, "%s", load_error);
	return 0;
}
