/* SPDX-License-Identifier: Apache-2.0 */
#include "digest.h"

#include <openssl/evp.h>
#include <string.h>

struct digest_hasher {
	EVP_MD_CTX *ctx;
	uint64_t count;
};


static bool is_lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

bool digest_hex_is_valid(const char *hex)
{
	size_t i;

	for (i = 0; i < DIGEST_SHA256_HEX_LEN; i++)
		if (!is_lower_hex(hex[i]))
			return false;
	return hex[i] == '\0';
}

/* The OCI grammar: algorithm ::= component ([+._-] component)*, component ::= [a-z0-9]+ */
static bool algorithm_is_valid(const char *s, size_t len)
{
	bool want_component = true;

	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
			want_component = false;
		} else if (c && strchr("+._-", c)) {
			if (want_component)
				return false;
			want_component = true;
		} else {
			return false;
		}
	}
	return !want_component;
}

int digest_validate(const char *s, struct cove_error *err)
{
	char show[96];
	const char *colon;

	if (!s)
		return cove_error_set(err, EINVAL, "missing digest");
	if (strncmp(s, DIGEST_SHA256_PREFIX, DIGEST_SHA256_PREFIX_LEN) == 0) {
		if (digest_hex_is_valid(s + DIGEST_SHA256_PREFIX_LEN))
			return 0;
		return cove_error_set(err, EINVAL,
				      "invalid digest '%s': sha256 needs 64 lowercase hex digits",
				      str_shown(s, show));
	}
	colon = strchr(s, ':');
	if (colon && algorithm_is_valid(s, (size_t)(colon - s)) && colon[1]) {
		char algo[96];
		size_t n = (size_t)(colon - s) < 32 ? (size_t)(colon - s) : 32;

		memcpy(algo, s, n);
		algo[n] = '\0';
		return cove_error_set(err, EOPNOTSUPP,
				      "unsupported digest algorithm '%s' in '%s': only sha256 is "
				      "supported",
				      algo, str_shown(s, show));
	}
	return cove_error_set(err, EINVAL, "invalid digest '%s': expected sha256:<64 hex digits>",
			      str_shown(s, show));
}

bool digest_is_valid(const char *s)
{
	return s && digest_validate(s, NULL) == 0;
}

const char *digest_hex(const char *d)
{
	return d + DIGEST_SHA256_PREFIX_LEN;
}

int digest_from_hex(const char *hex, char ret[DIGEST_STRING_MAX])
{
	if (!hex || !digest_hex_is_valid(hex))
		return -EINVAL;
	memcpy(ret, DIGEST_SHA256_PREFIX, DIGEST_SHA256_PREFIX_LEN);
	memcpy(ret + DIGEST_SHA256_PREFIX_LEN, hex, DIGEST_SHA256_HEX_LEN + 1);
	return 0;
}

int digest_hasher_new(struct digest_hasher **ret)
{
	struct digest_hasher *h = calloc(1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
		digest_hasher_free(h);
		return -ENOMEM;
	}
	*ret = h;
	return 0;
}

int digest_hasher_update(struct digest_hasher *h, const void *data, size_t len)
{
	if (len == 0)
		return 0;
	if (EVP_DigestUpdate(h->ctx, data, len) != 1)
		return -EIO;
	h->count += len;
	return 0;
}

int digest_hasher_reset(struct digest_hasher *h)
{
	h->count = 0;
	return EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) == 1 ? 0 : -EIO;
}

int digest_hasher_final(struct digest_hasher *h, char ret[DIGEST_STRING_MAX])
{
	static const char hexdig[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	char *p;

	if (EVP_DigestFinal_ex(h->ctx, md, &n) != 1 || n != DIGEST_SHA256_HEX_LEN / 2)
		return -EIO;
	memcpy(ret, DIGEST_SHA256_PREFIX, DIGEST_SHA256_PREFIX_LEN);
	p = ret + DIGEST_SHA256_PREFIX_LEN;
	for (unsigned int i = 0; i < n; i++) {
		*p++ = hexdig[md[i] >> 4];
		*p++ = hexdig[md[i] & 0xf];
	}
	*p = '\0';
	return digest_hasher_reset(h);
}

uint64_t digest_hasher_count(const struct digest_hasher *h)
{
	return h->count;
}

void digest_hasher_free(struct digest_hasher *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

int digest_buffer(const void *data, size_t len, char ret[DIGEST_STRING_MAX])
{
	_cleanup_digest_hasher_ struct digest_hasher *h = NULL;
	int r;

	r = digest_hasher_new(&h);
	if (r < 0)
		return r;
	r = digest_hasher_update(h, data, len);
	if (r < 0)
		return r;
	return digest_hasher_final(h, ret);
}

int digest_fd(int fd, uint64_t max, char ret[DIGEST_STRING_MAX], uint64_t *ret_size,
	      struct cove_error *err)
{
	_cleanup_digest_hasher_ struct digest_hasher *h = NULL;
	_cleanup_free_ uint8_t *chunk = NULL;
	const size_t chunk_size = 128 * 1024;
	uint64_t total = 0;
	char d[DIGEST_STRING_MAX];
	int r;

	r = digest_hasher_new(&h);
	if (r < 0)
		return cove_error_set(err, -r, "unable to start a sha256 hash");
	chunk = malloc(chunk_size);
	if (!chunk)
		return cove_error_set(err, ENOMEM, "out of memory hashing a file");
	for (;;) {
		ssize_t n = read(fd, chunk, chunk_size);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return cove_error_set(err, errno, "unable to read a file to hash: %s",
					      strerror(errno));
		}
		if (n == 0)
			break;
		if ((uint64_t)n > max - total)
			return cove_error_set(err, EFBIG, "file to hash is over %llu bytes",
					      (unsigned long long)max);
		total += (uint64_t)n;
		r = digest_hasher_update(h, chunk, (size_t)n);
		if (r < 0)
			return cove_error_set(err, -r, "sha256 update failed");
	}
	r = digest_hasher_final(h, d);
	if (r < 0)
		return cove_error_set(err, -r, "sha256 final failed");
	memcpy(ret, d, sizeof(d));
	if (ret_size)
		*ret_size = total;
	return 0;
}

int digest_set_add(struct digest_set *s, const char *digest)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		void *v = reallocarray(s->v, cap, sizeof(*s->v));

		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	(void)str_copy(s->v[s->n++], DIGEST_STRING_MAX, digest);
	s->sorted = false;
	return 0;
}

static int digest_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

void digest_set_sort(struct digest_set *s)
{
	size_t out = 0;

	if (s->n > 0) {
		qsort(s->v, s->n, sizeof(*s->v), digest_cmp);
		for (size_t i = 1; i < s->n; i++)
			if (strcmp(s->v[i], s->v[out]) != 0)
				memmove(s->v[++out], s->v[i], DIGEST_STRING_MAX);
		s->n = out + 1;
	}
	s->sorted = true;
}

bool digest_set_has(const struct digest_set *s, const char *digest)
{
	if (s->sorted)
		return s->n && bsearch(digest, s->v, s->n, sizeof(*s->v), digest_cmp) != NULL;
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i], digest) == 0)
			return true;
	return false;
}

void digest_set_done(struct digest_set *s)
{
	free(s->v);
	*s = (struct digest_set){ 0 };
}
