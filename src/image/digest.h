/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Content digests of OCI images. Only sha256 is supported, in its canonical form
 * "sha256:" followed by 64 lowercase hex digits; other algorithms (sha512, blake3, ...) are
 * refused with an error that names them. Digests travel as NUL-terminated strings in buffers
 * of DIGEST_STRING_MAX bytes.
 *
 *     struct digest_hasher *h;
 *     char d[DIGEST_STRING_MAX];
 *     r = digest_hasher_new(&h);
 *     digest_hasher_update(h, data, len);       // any number of times
 *     digest_hasher_final(h, d);                // "sha256:..."; h may be reused after reset
 *     digest_hasher_free(h);
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../util/error.h"

#define DIGEST_SHA256_PREFIX	 "sha256:"
#define DIGEST_SHA256_PREFIX_LEN 7
#define DIGEST_SHA256_HEX_LEN	 64
/* "sha256:" + 64 hex + NUL */
#define DIGEST_STRING_MAX (DIGEST_SHA256_PREFIX_LEN + DIGEST_SHA256_HEX_LEN + 1)

/* 0 if s is "sha256:<64 lowercase hex>"; -EOPNOTSUPP for a well-formed digest of another
 * algorithm ("unsupported digest algorithm 'sha512' in '...'"), -EINVAL otherwise. */
int digest_validate(const char *s, struct cove_error *err);
/* digest_validate() without a message. */
bool digest_is_valid(const char *s);
/* Whether hex is exactly 64 lowercase hex digits (a file name under blobs/sha256). */
bool digest_hex_is_valid(const char *hex);
/* The 64 hex digits of a valid digest (a pointer into d). */
const char *digest_hex(const char *d);
/* "sha256:" + hex into ret; -EINVAL unless hex is valid. */
int digest_from_hex(const char *hex, char ret[DIGEST_STRING_MAX]);

/*
 * A growable set of digests: add, then digest_set_sort() (sorts, drops repeats) before lookups
 * by bsearch; unsorted, digest_set_has() looks at each entry. A zeroed struct is empty.
 */
struct digest_set {
	char (*v)[DIGEST_STRING_MAX];
	size_t n, cap;
	bool sorted;
};
int digest_set_add(struct digest_set *s, const char *digest); /* 0 or -ENOMEM */
void digest_set_sort(struct digest_set *s);
bool digest_set_has(const struct digest_set *s, const char *digest);
void digest_set_done(struct digest_set *s);

struct digest_hasher;

/* A streaming sha256 hasher (OpenSSL EVP). -ENOMEM on failure. */
int digest_hasher_new(struct digest_hasher **ret);
int digest_hasher_update(struct digest_hasher *h, const void *data, size_t len);
/* Write "sha256:<hex>" of everything fed since new/reset; the hasher is reset after. */
int digest_hasher_final(struct digest_hasher *h, char ret[DIGEST_STRING_MAX]);
int digest_hasher_reset(struct digest_hasher *h);
/* Bytes fed since new/reset. */
uint64_t digest_hasher_count(const struct digest_hasher *h);
void digest_hasher_free(struct digest_hasher *h);
static inline void digest_hasher_freep(struct digest_hasher **h)
{
	digest_hasher_free(*h);
}
#define _cleanup_digest_hasher_ _cleanup_(digest_hasher_freep)

/* The digest of a buffer. */
int digest_buffer(const void *data, size_t len, char ret[DIGEST_STRING_MAX]);
/* The digest of what fd yields from its current offset to EOF (read, not mmap, so pipes
 * work), and how many bytes that was (ret_size may be NULL). Fails with -EFBIG past max. */
int digest_fd(int fd, uint64_t max, char ret[DIGEST_STRING_MAX], uint64_t *ret_size,
	      struct cove_error *err);
