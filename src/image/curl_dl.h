/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libcurl, loaded with dlopen() the first time a registry is contacted. Linking it would make
 * every cove command pay for loading libcurl's dependency tree (about 40 libraries: TLS,
 * Kerberos, LDAP, SSH, ...; ~15 ms per start here), which `cove run` of a stored image never
 * uses. registry.c includes this instead of <curl/curl.h>; its curl_* calls go through the
 * table below, filled by curl_dl_load() (thread-safe, once).
 */
#pragma once

#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

#include "../util/error.h"

struct curl_dl {
	CURLcode (*global_init)(long flags);
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *curl, CURLoption option, ...);
	CURLcode (*easy_perform)(CURL *curl);
	void (*easy_cleanup)(CURL *curl);
	void (*easy_reset)(CURL *curl);
	CURLcode (*easy_getinfo)(CURL *curl, CURLINFO info, ...);
	const char *(*easy_strerror)(CURLcode code);
	char *(*easy_escape)(CURL *curl, const char *s, int length);
	void (*free)(void *p);
	CURLU *(*url)(void);
	CURLUcode (*url_get)(const CURLU *u, CURLUPart what, char **part, unsigned int flags);
	CURLUcode (*url_set)(CURLU *u, CURLUPart what, const char *part, unsigned int flags);
	void (*url_cleanup)(CURLU *u);
	CURLSH *(*share_init)(void);
	CURLSHcode (*share_setopt)(CURLSH *share, CURLSHoption option, ...);
	CURLSHcode (*share_cleanup)(CURLSH *share);
	struct curl_slist *(*slist_append)(struct curl_slist *list, const char *s);
	void (*slist_free_all)(struct curl_slist *list);
	curl_version_info_data *(*version_info)(CURLversion age);
};

extern struct curl_dl curl_dl;

/* Load libcurl.so.4 and resolve the table, once; 0 or -ENOENT with a message saying what to
 * install. */
int curl_dl_load(struct cove_error *err);

/* curl.h defines these three as pass-through macros when its type checks are off */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_share_setopt
#define curl_global_init (curl_dl.global_init)
#define curl_easy_init (curl_dl.easy_init)
#define curl_easy_setopt (curl_dl.easy_setopt)
#define curl_easy_perform (curl_dl.easy_perform)
#define curl_easy_cleanup (curl_dl.easy_cleanup)
#define curl_easy_reset (curl_dl.easy_reset)
#define curl_easy_getinfo (curl_dl.easy_getinfo)
#define curl_easy_strerror (curl_dl.easy_strerror)
#define curl_easy_escape (curl_dl.easy_escape)
#define curl_free (curl_dl.free)
#define curl_url (curl_dl.url)
#define curl_url_get (curl_dl.url_get)
#define curl_url_set (curl_dl.url_set)
#define curl_url_cleanup (curl_dl.url_cleanup)
#define curl_share_init (curl_dl.share_init)
#define curl_share_setopt (curl_dl.share_setopt)
#define curl_share_cleanup (curl_dl.share_cleanup)
#define curl_slist_append (curl_dl.slist_append)
#define curl_slist_free_all (curl_dl.slist_free_all)
#define curl_version_info (curl_dl.version_info)
