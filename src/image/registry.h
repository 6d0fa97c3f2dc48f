/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A client of the registry HTTP API v2 (OCI distribution spec) over libcurl.
 *
 *     struct registry_opts opts = { 0 };           // zero = defaults
 *     struct registry_client *c;
 *     registry_client_new("127.0.0.1:5000", &opts, &c, &err);
 *     registry_get_manifest(c, "x/busybox", "v1", &body, &type, digest, &err);
 *     registry_get_blob(c, "x/busybox", "sha256:...", size, write_cb, ctx, 0, &err);
 *     registry_client_free(c);
 *
 * Transport: HTTPS with the system CAs plus every *.crt in CERTS_DIR/HOST/ (default roots
 * /etc/containers/certs.d and /etc/docker/certs.d; client.cert/client.key there are used as a
 * client certificate). Plain HTTP is allowed for loopback hosts (127.0.0.0/8, localhost, [::1]),
 * for opts.insecure_hosts and with opts.insecure: HTTPS is tried first and plain HTTP only when
 * the server does not speak TLS (a certificate that fails verification stays an error). The
 * first request pings /v2/ to learn the scheme and the auth method. Proxies come from the
 * environment, except for loopback hosts.
 *
 * Auth: anonymous until a 401; then Basic with the credentials, or Bearer tokens fetched from
 * the challenge's realm (Basic-authenticated when there are credentials), cached per scope
 * ("repository:NAME:pull", "repository:NAME:pull,push") until 90% of expires_in, fetched again
 * after a 401. Credentials come from opts or the auth files (see registry_credentials_lookup).
 *
 * Robustness: every response body is bounded (manifests 4 MiB, error bodies 64 KiB, tokens
 * 1 MiB, blobs their expected size) while receiving; a connection that brings no byte for
 * opts.timeout_s is dropped. 5xx, 429, 408 and dropped connections are retried (opts.tries,
 * exponential backoff from opts.retry_delay_ms); blob downloads resume where they stopped.
 * Redirects (≤ 5, http/https only) are followed for GET/HEAD; the Authorization header goes only
 * to the registry's own origin (scheme, host, port).
 *
 * Errors: -errno plus a one-line message naming the registry and the repository, with the
 * registry's errors[0].code/message when it sent one: EACCES "pull access denied for
 * 127.0.0.1:5000/x: UNAUTHORIZED: authentication required", ENOENT "manifest unknown:
 * 127.0.0.1:5000/x:tag", EIO "registry 127.0.0.1:5000 answered 500 Internal Server Error",
 * ETIMEDOUT "registry 127.0.0.1:5000 did not answer within 30 s", EPROTO (TLS), EBADMSG (digest
 * mismatch), EFBIG (too large), ECONNREFUSED.
 *
 * A client may be used from several threads at once (registry_get_blobs does).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../util/buf.h"
#include "../util/error.h"
#include "digest.h"   /* DIGEST_STRING_MAX */
#include "manifest.h" /* MANIFEST_MAX_SIZE, MEDIA_TYPE_* */

#define REGISTRY_SIZE_UNKNOWN UINT64_MAX

struct registry_opts {
	bool insecure;			   /* allow plain HTTP for this registry */
	const char *const *insecure_hosts; /* NULL-terminated: hosts where plain HTTP is allowed */
	const char *const *certs_dirs; /* NULL-terminated roots of HOST/ *.crt; NULL: defaults */
	const char *username;	       /* with password: use these, not the auth files */
	const char *password;
	bool anonymous;		    /* never send credentials */
	unsigned connect_timeout_s; /* 0: 10 */
	unsigned timeout_s;	    /* abort when no byte came for this long; 0: 30 */
	unsigned tries;		    /* attempts per request; 0: 4 */
	unsigned retry_delay_ms;    /* first backoff, doubled each try (≤ 10 s); 0: 500 */
	size_t chunk_size;	    /* uploads: 0 = one PUT; else PATCH chunks of this size */
	const char *user_agent;	    /* NULL: "cove/VERSION" */
};

struct registry_client;

/* host is a registry as in a reference ("docker.io", "127.0.0.1:5000", "[::1]:5000"); docker.io
 * talks to registry-1.docker.io. No network traffic yet. Reads the CA dir and the auth files:
 * -EOPNOTSUPP when the host's credentials are in a credential helper (credHelpers). */
int registry_client_new(const char *host, const struct registry_opts *opts,
			struct registry_client **ret, struct cove_error *err);
void registry_client_free(struct registry_client *c);
/* The registry's name as given to registry_client_new. */
const char *registry_client_host(const struct registry_client *c);

/*
 * Fetch a manifest or index by tag or digest ("sha256:..."). The Accept header lists the OCI
 * manifest and index and the Docker schema2 manifest and list. ret_body receives the exact bytes
 * (its old content is freed; its max becomes MANIFEST_MAX_SIZE), ret_media_type the
 * Content-Type without parameters (malloc'd; may be NULL), ret_digest the sha256 of the body
 * (may be NULL). The digest must match Docker-Content-Digest when sent, and ref when ref is a
 * digest (-EBADMSG otherwise).
 */
int registry_get_manifest(struct registry_client *c, const char *repo, const char *ref,
			  struct buf *ret_body, char **ret_media_type,
			  char ret_digest[DIGEST_STRING_MAX], struct cove_error *err);

/* Receives blob data in order; returns 0 or -errno (which aborts the download). */
typedef int (*registry_write_fn)(const void *data, size_t len, void *userdata);
/* Fills buf with up to len bytes of the source at offset; returns the count (0 only at the
 * end) or -errno. Called again from 0 when an upload is retried. */
typedef ssize_t (*registry_read_fn)(void *buf, size_t len, uint64_t offset, void *userdata);

/*
 * Download bytes [resume_offset, expected_size) of a blob into write (the caller hashes and
 * stores them). Fails with -EFBIG as soon as more than expected_size bytes arrive, -EIO when
 * fewer did after all tries. expected_size may be REGISTRY_SIZE_UNKNOWN. Dropped connections
 * and 5xx/429 are retried with a Range request from the byte reached.
 */
int registry_get_blob(struct registry_client *c, const char *repo, const char *digest,
		      uint64_t expected_size, registry_write_fn write, void *userdata,
		      uint64_t resume_offset, struct cove_error *err);

/* Download into fd (appending after its current size, which is hashed first) and check the
 * sha256: -EBADMSG on a mismatch (the caller then truncates). */
int registry_get_blob_to_fd(struct registry_client *c, const char *repo, const char *digest,
			    uint64_t expected_size, int fd, struct cove_error *err);

struct registry_blob_job {
	const char *digest;
	uint64_t size;
	uint64_t resume_offset;
	registry_write_fn write;
	void *userdata;
	int result;	       /* out: 0, -errno, or 1 if never started (after a failure) */
	struct cove_error err; /* out */
};
/* Run jobs with up to parallel downloads at once (threads). After a failure no new job starts;
 * returns the first failure (its message in err), or 0. */
int registry_get_blobs(struct registry_client *c, const char *repo, struct registry_blob_job *jobs,
		       size_t n, unsigned parallel, struct cove_error *err);

/* 1 (and the size, if ret_size) when the repository has the blob, 0 when not. */
int registry_blob_exists(struct registry_client *c, const char *repo, const char *digest,
			 uint64_t *ret_size, struct cove_error *err);
/* Upload size bytes from read (a one-PUT or chunked upload per opts.chunk_size); the registry
 * checks them against digest. */
int registry_blob_upload(struct registry_client *c, const char *repo, const char *digest,
			 uint64_t size, registry_read_fn read, void *userdata,
			 struct cove_error *err);
int registry_blob_upload_fd(struct registry_client *c, const char *repo, const char *digest,
			    uint64_t size, int fd, struct cove_error *err);
/* Ask the registry to link the blob from repository from: 1 when mounted; when it declines
 * (202), upload it from read and return 0, or, with read NULL, cancel and return 0. */
int registry_blob_mount(struct registry_client *c, const char *repo, const char *digest,
			const char *from, uint64_t size, registry_read_fn read, void *userdata,
			struct cove_error *err);
/* PUT a manifest under ref (tag or its own digest) with Content-Type media_type. */
int registry_put_manifest(struct registry_client *c, const char *repo, const char *ref,
			  const void *body, size_t len, const char *media_type,
			  char ret_digest[DIGEST_STRING_MAX], struct cove_error *err);

/* Check that the credentials are accepted (GET /v2/, or a token without scope), for login. */
int registry_check_login(struct registry_client *c, struct cove_error *err);

/*
 * Credentials. Lookup order: $REGISTRY_AUTH_FILE, the docker config ($DOCKER_CONFIG/config.json
 * or ~/.docker/config.json), ${XDG_RUNTIME_DIR}/containers/auth.json. Entries match by host with
 * any scheme or path ("https://host/v1/"); docker.io also matches index.docker.io and
 * registry-1.docker.io. An entry has "auth" (base64 user:password) or "username"/"password".
 * Returns 1 and malloc'd strings when found, 0 when not. -EOPNOTSUPP when credHelpers names a
 * helper for the host (credential helpers are not supported).
 */
int registry_credentials_lookup(const char *host, char **ret_user, char **ret_password,
				struct cove_error *err);
/* Store or replace auths[host] in the docker config (docker.io as https://index.docker.io/v1/),
 * keeping the file's other keys; written 0600 to a temporary file and renamed. */
int registry_credentials_store(const char *host, const char *user, const char *password,
			       struct cove_error *err);
/* Remove auths[host] (every key matching host) from the docker config: 1 removed, 0 none. */
int registry_credentials_remove(const char *host, struct cove_error *err);

/* A WWW-Authenticate challenge (exposed for tests and fuzzing). */
struct registry_challenge {
	enum { REGISTRY_AUTH_NONE, REGISTRY_AUTH_BASIC, REGISTRY_AUTH_BEARER } scheme;
	char realm[1024];
	char service[256];
	char scope[1024];
	char error[64];
};
/* Parse a header value; the first Bearer or Basic challenge wins (Bearer before Basic when both
 * are listed). -EINVAL when malformed or when a parameter is over its buffer. */
int registry_parse_challenge(const char *value, struct registry_challenge *ret);
