/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Docker-compatible image references (distribution/reference's grammar and normalisation):
 *
 *     debian                      -> docker.io/library/debian:latest
 *     user/repo                   -> docker.io/user/repo:latest
 *     127.0.0.1:5000/x/y:v1       -> registry "127.0.0.1:5000", repository "x/y", tag "v1"
 *     localhost/x, [::1]:5000/x   -> registry "localhost" / "[::1]:5000"
 *     repo@sha256:<64 hex>        -> digest only (no tag)
 *     repo:tag@sha256:<64 hex>    -> both kept; the digest is what gets pulled
 *
 * The first component is a registry host if it contains '.' or ':' or is "localhost" (or is a
 * bracketed IPv6 address); otherwise the registry is docker.io. "index.docker.io" is an alias
 * of docker.io, whose API endpoint is registry-1.docker.io. Repository components are
 * [a-z0-9]+ joined by '.', '_', '__' or runs of '-'; a tag is [A-Za-z0-9_][A-Za-z0-9_.-]{0,127};
 * registry + '/' + repository is at most 255 characters. A bare 64-hex string is refused (it
 * looks like an image ID, as docker says).
 *
 * A struct reference holds its strings inline: no allocation, no free.
 */
#pragma once

#include <stdbool.h>

#include "../util/error.h"

#define REFERENCE_NAME_MAX   255 /* registry "/" repository */
#define REFERENCE_TAG_MAX    128
#define REFERENCE_DIGEST_MAX 71 /* "sha256:" + 64 */
/* Enough for any formatted reference: name ":" tag "@" digest NUL. */
#define REFERENCE_STRING_MAX                                                                       \
	(REFERENCE_NAME_MAX + 1 + REFERENCE_TAG_MAX + 1 + REFERENCE_DIGEST_MAX + 1)

#define REFERENCE_DOCKER_HUB	 "docker.io"
#define REFERENCE_DOCKER_HUB_API "registry-1.docker.io"
#define REFERENCE_DEFAULT_TAG	 "latest"

struct reference {
	char registry[REFERENCE_NAME_MAX + 1];	 /* "docker.io", "127.0.0.1:5000", "[::1]:5000" */
	char repository[REFERENCE_NAME_MAX + 1]; /* "library/debian" */
	char tag[REFERENCE_TAG_MAX + 1];	 /* "" when only a digest was given */
	char digest[REFERENCE_DIGEST_MAX + 1];	 /* "" or "sha256:<64 hex>" */
};

/*
 * Parse and normalise s. A reference without tag and digest gets tag "latest".
 * Errors (-EINVAL), all "invalid reference 'S': ...":
 *   "repository name must be lowercase", "tag 'T' is invalid",
 *   "digest must be sha256:<64 hex digits>", "registry host 'H' is invalid",
 *   "repository name component 'C' is invalid", "repository name must not be more than 255
 *   characters", "cannot be a 64-character hexadecimal string (an image ID)", "empty".
 */
int reference_parse(const char *s, struct reference *ret, struct cove_error *err);

/* "registry/repository[:tag][@digest]", always fully qualified. -ENAMETOOLONG if size is short. */
int reference_format(const struct reference *r, char *buf, size_t size);
/* The short form a user types: docker.io/ and library/ dropped ("debian:bookworm",
 * "user/repo:latest", "127.0.0.1:5000/x:v1", "debian@sha256:..."). */
int reference_familiar(const struct reference *r, char *buf, size_t size);
/* "registry/repository" without tag or digest. */
int reference_name(const struct reference *r, char *buf, size_t size);
/* What to ask the registry for: the digest if there is one, else the tag. */
const char *reference_pull_ref(const struct reference *r);
/* The host to send API requests to: registry-1.docker.io for docker.io, else the registry. */
const char *reference_api_host(const struct reference *r);

/* Whether s is a valid tag / registry host ("host[:port]", "[v6]:port"). */
bool reference_tag_is_valid(const char *s);
bool reference_host_is_valid(const char *s);
