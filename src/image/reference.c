/* SPDX-License-Identifier: Apache-2.0 */
#include "reference.h"

#include <string.h>

#include "../util/util.h"

/* Copy at most 100 bytes of untrusted s for a one-line message: controls, non-ASCII and quotes
 * become '?', a longer string ends in "...". */
static const char *shown(const char *s, size_t len, char out[112])
{
	size_t i, n = 0;

	for (i = 0; i < len && s[i] && n < 100; i++)
		out[n++] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\'') ? s[i] : '?';
	if (i < len && s[i]) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
	return out;
}

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
	return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_lower_hex_string(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!is_digit(s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
			return false;
	return true;
}

static bool tag_is_valid(const char *s, size_t len)
{
	if (len == 0 || len > REFERENCE_TAG_MAX)
		return false;
	if (!is_alnum(s[0]) && s[0] != '_')
		return false;
	for (size_t i = 1; i < len; i++)
		if (!is_alnum(s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
			return false;
	return true;
}

bool reference_tag_is_valid(const char *s)
{
	return s && tag_is_valid(s, strlen(s));
}

/* port-number := [0-9]+ (1..65535 here) */
static bool port_is_valid(const char *s, size_t len)
{
	unsigned v = 0;

	if (len == 0 || len > 5)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!is_digit(s[i]))
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	return v >= 1 && v <= 65535;
}

/* domain-component ('.' domain-component)*, domain-component :=
 * [a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])? */
static bool hostname_is_valid(const char *s, size_t len)
{
	size_t start = 0;

	if (len == 0)
		return false;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != '.') {
			if (!is_alnum(s[i]) && s[i] != '-')
				return false;
			continue;
		}
		/* component s[start, i) */
		if (i == start || s[start] == '-' || s[i - 1] == '-')
			return false;
		start = i + 1;
	}
	return true;
}

static bool host_is_valid(const char *s, size_t len)
{
	const char *colon;

	if (len == 0 || len > REFERENCE_NAME_MAX)
		return false;
	if (s[0] == '[') {
		const char *end = memchr(s, ']', len);
		size_t n, colons = 0;

		if (!end)
			return false;
		n = (size_t)(end - s);
		if (n < 3) /* "[::" at least */
			return false;
		for (size_t i = 1; i < n; i++) {
			if (s[i] == ':')
				colons++;
			else if (!is_hex(s[i]) && s[i] != '.')
				return false;
		}
		if (colons < 2)
			return false;
		n++;
		if (n == len)
			return true;
		return s[n] == ':' && port_is_valid(s + n + 1, len - n - 1);
	}
	colon = memchr(s, ':', len);
	if (!colon)
		return hostname_is_valid(s, len);
	return hostname_is_valid(s, (size_t)(colon - s)) &&
	       port_is_valid(colon + 1, len - (size_t)(colon - s) - 1);
}

bool reference_host_is_valid(const char *s)
{
	return s && host_is_valid(s, strlen(s));
}

/* path-component := [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)* */
static bool component_is_valid(const char *c, size_t n)
{
	size_t i = 0;

	if (n == 0 || !is_lower_alnum(c[0]))
		return false;
	while (i < n) {
		if (is_lower_alnum(c[i])) {
			i++;
			continue;
		}
		if (c[i] == '.') {
			i++;
		} else if (c[i] == '_') {
			i++;
			if (i < n && c[i] == '_')
				i++;
		} else if (c[i] == '-') {
			while (i < n && c[i] == '-')
				i++;
		} else {
			return false;
		}
		if (i >= n || !is_lower_alnum(c[i]))
			return false;
	}
	return true;
}

static bool looks_like_host(const char *s, size_t len)
{
	return memchr(s, '.', len) || memchr(s, ':', len) || s[0] == '[' ||
	       (len == 9 && memcmp(s, "localhost", 9) == 0);
}

int reference_parse(const char *s, struct reference *ret, struct cove_error *err)
{
	struct reference r;
	const char *at, *name, *slash, *colon, *path;
	size_t len, name_len, host_len, path_len;
	char show[112], show2[112];

	memset(&r, 0, sizeof(r));
	if (!s || !*s)
		return cove_error_set(err, EINVAL, "invalid reference '': empty");
	len = strnlen(s, REFERENCE_STRING_MAX);
	if (len >= REFERENCE_STRING_MAX)
		return cove_error_set(err, EINVAL, "invalid reference '%s': too long",
				      shown(s, len, show));
		/* Messages below are "invalid reference 'S': WHAT". */
#define FAIL(fmt, ...)                                                                             \
	cove_error_set(err, EINVAL, "invalid reference '%s': " fmt, shown(s, len, show),           \
		       ##__VA_ARGS__)

	if (len == 64 && is_lower_hex_string(s, 64))
		return FAIL("cannot be a 64-character hexadecimal string (an image ID)");

	/* name [":" tag] ["@" digest] */
	at = memchr(s, '@', len);
	name_len = at ? (size_t)(at - s) : len;
	if (at) {
		const char *d = at + 1;
		size_t dlen = len - name_len - 1;

		if (dlen != REFERENCE_DIGEST_MAX || memcmp(d, "sha256:", 7) != 0 ||
		    !is_lower_hex_string(d + 7, 64))
			return FAIL("digest must be sha256:<64 hex digits>");
		memcpy(r.digest, d, dlen);
		r.digest[dlen] = '\0';
	}
	slash = NULL;
	for (size_t i = name_len; i > 0; i--)
		if (s[i - 1] == '/') {
			slash = s + i - 1;
			break;
		}
	colon = NULL;
	for (size_t i = name_len; i > (size_t)(slash ? slash - s + 1 : 0); i--)
		if (s[i - 1] == ':') {
			colon = s + i - 1;
			break;
		}
	if (colon) {
		const char *t = colon + 1;
		size_t tlen = name_len - (size_t)(t - s);

		if (!tag_is_valid(t, tlen))
			return FAIL("tag '%s' is invalid", shown(t, tlen, show2));
		memcpy(r.tag, t, tlen);
		r.tag[tlen] = '\0';
		name_len = (size_t)(colon - s);
	}
	if (name_len == 0)
		return FAIL("repository name is empty");

	/* [host "/"] path */
	name = s;
	slash = memchr(name, '/', name_len);
	if (slash && looks_like_host(name, (size_t)(slash - name))) {
		host_len = (size_t)(slash - name);
		if (!host_is_valid(name, host_len))
			return FAIL("registry host '%s' is invalid", shown(name, host_len, show2));
		path = slash + 1;
		path_len = name_len - host_len - 1;
		if (host_len == 15 && memcmp(name, "index.docker.io", 15) == 0)
			str_copy(r.registry, sizeof(r.registry), REFERENCE_DOCKER_HUB);
		else {
			memcpy(r.registry, name, host_len);
			r.registry[host_len] = '\0';
		}
	} else {
		str_copy(r.registry, sizeof(r.registry), REFERENCE_DOCKER_HUB);
		path = name;
		path_len = name_len;
	}
	if (path_len == 0)
		return FAIL("repository name is empty");
	for (size_t i = 0; i < path_len; i++)
		if (path[i] >= 'A' && path[i] <= 'Z')
			return FAIL("repository name must be lowercase");
	for (size_t i = 0, start = 0; i <= path_len; i++) {
		if (i < path_len && path[i] != '/')
			continue;
		if (!component_is_valid(path + start, i - start))
			return FAIL("repository name component '%s' is invalid",
				    shown(path + start, i - start, show2));
		start = i + 1;
	}
	if (strcmp(r.registry, REFERENCE_DOCKER_HUB) == 0 && !memchr(path, '/', path_len)) {
		if (path_len + 8 > REFERENCE_NAME_MAX)
			return FAIL("repository name must not be more than %d characters",
				    REFERENCE_NAME_MAX);
		memcpy(r.repository, "library/", 8);
		memcpy(r.repository + 8, path, path_len);
		r.repository[8 + path_len] = '\0';
	} else {
		if (path_len > REFERENCE_NAME_MAX) /* the checks below need it to fit */
			return FAIL("repository name must not be more than %d characters",
				    REFERENCE_NAME_MAX);
		memcpy(r.repository, path, path_len);
		r.repository[path_len] = '\0';
	}
	if (strlen(r.registry) + 1 + strlen(r.repository) > REFERENCE_NAME_MAX)
		return FAIL("repository name must not be more than %d characters",
			    REFERENCE_NAME_MAX);
	if (!r.tag[0] && !r.digest[0])
		str_copy(r.tag, sizeof(r.tag), REFERENCE_DEFAULT_TAG);
#undef FAIL
	*ret = r;
	return 0;
}

static int format_parts(const char *registry, const char *repo, const char *tag, const char *digest,
			char *buf, size_t size)
{
	return str_printf(buf, size, "%s%s%s%s%s%s%s", registry ? registry : "",
			  registry ? "/" : "", repo, tag && *tag ? ":" : "", tag ? tag : "",
			  digest && *digest ? "@" : "", digest ? digest : "");
}

int reference_format(const struct reference *r, char *buf, size_t size)
{
	return format_parts(r->registry, r->repository, r->tag, r->digest, buf, size);
}

int reference_name(const struct reference *r, char *buf, size_t size)
{
	return format_parts(r->registry, r->repository, NULL, NULL, buf, size);
}

int reference_familiar(const struct reference *r, char *buf, size_t size)
{
	const char *repo = r->repository;

	if (strcmp(r->registry, REFERENCE_DOCKER_HUB) != 0)
		return reference_format(r, buf, size);
	if (strncmp(repo, "library/", 8) == 0 && !strchr(repo + 8, '/'))
		repo += 8;
	return format_parts(NULL, repo, r->tag, r->digest, buf, size);
}

const char *reference_pull_ref(const struct reference *r)
{
	return r->digest[0] ? r->digest : r->tag;
}

const char *reference_api_host(const struct reference *r)
{
	if (strcmp(r->registry, REFERENCE_DOCKER_HUB) == 0)
		return REFERENCE_DOCKER_HUB_API;
	return r->registry;
}
