/* SPDX-License-Identifier: Apache-2.0 */
#include "curl_dl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <string.h>

struct curl_dl curl_dl;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char load_error[512];

#define RESOLVE(field, symbol)                                                                     \
	do {                                                                                       \
		*(void **)&curl_dl.field = dlsym(h, symbol);                                       \
		if (!curl_dl.field) {                                                              \
			str_printf(load_error, sizeof(load_error),                                 \
				   "libcurl.so.4 lacks %s: install a newer libcurl4", symbol);      \
			return;                                                                    \
		}                                                                                  \
	} while (0)

static void load(void)
{
	void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		str_printf(load_error, sizeof(load_error),
			   "cannot load libcurl.so.4 (needed to talk to registries): %s; install "
			   "libcurl4 (apt-get install libcurl4)",
			   dlerror());
		return;
	}
	RESOLVE(global_init, "curl_global_init");
	RESOLVE(easy_init, "curl_easy_init");
	RESOLVE(easy_setopt, "curl_easy_setopt");
	RESOLVE(easy_perform, "curl_easy_perform");
	RESOLVE(easy_cleanup, "curl_easy_cleanup");
	RESOLVE(easy_reset, "curl_easy_reset");
	RESOLVE(easy_getinfo, "curl_easy_getinfo");
	RESOLVE(easy_strerror, "curl_easy_strerror");
	RESOLVE(easy_escape, "curl_easy_escape");
	RESOLVE(free, "curl_free");
	RESOLVE(url, "curl_url");
	RESOLVE(url_get, "curl_url_get");
	RESOLVE(url_set, "curl_url_set");
	RESOLVE(url_cleanup, "curl_url_cleanup");
	RESOLVE(share_init, "curl_share_init");
	RESOLVE(share_setopt, "curl_share_setopt");
	RESOLVE(share_cleanup, "curl_share_cleanup");
	RESOLVE(slist_append, "curl_slist_append");
	RESOLVE(slist_free_all, "curl_slist_free_all");
	RESOLVE(version_info, "curl_version_info");
}

int curl_dl_load(struct cove_error *err)
{
	pthread_once(&once, load);
	if (load_error[0])
		return cove_error_set(err, ENOENT, "%s", load_error);
	return 0;
}
