/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Libraries cove loads with dlopen() the first time it needs them (src/image/curl_dl.h,
 * src/ext4/archive_dl.h): linked, their dependency trees would cost every command's start.
 */
#pragma once

#include <stddef.h>

struct dl_symbol {
	const char *name;
	void **slot; /* where its address goes */
};

/*
 * dlopen(lib) and dlsym each symbol into its slot. 0, or -ENOENT with msg saying what is wrong
 * and what to install: "cannot load LIB (needed NEEDED_FOR): ...; install PACKAGE (apt-get
 * install PACKAGE)", or "LIB lacks SYMBOL: install a newer PACKAGE".
 */
int dl_load_table(const char *lib, const char *needed_for, const char *package,
		  const struct dl_symbol *syms, size_t n, char *msg, size_t msg_size);
