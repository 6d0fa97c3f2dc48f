/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Registry HTTP API v2 client. Each request borrows an easy handle from a small pool (an idle
 * handle keeps its connections open for the next request: libcurl does not support sharing
 * connections between threads through a CURLSH) and shares DNS and TLS sessions through a
 * CURLSH; the auth state (scheme, realm, token cache) sits behind a mutex so that blob
 * downloads may run in parallel threads. See registry.h and docs/internals/registry.md.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "registry.h"

#include <arpa/inet.h>
#include "curl_dl.h" /* libcurl, loaded on first use */
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <pwd.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#if defined(__has_include)
#if __has_include("config.h")
#include "config.h"
#endif
#endif
#ifndef COVE_VERSION
#define COVE_VERSION "0.0.0"
#endif

#include "digest.h"
#include "reference.h"
#include "../util/util.h"

#define ERR_BODY_MAX	   (64u << 10)
#define TOKEN_RESPONSE_MAX (1u << 20)
#define AUTH_FILE_MAX	   (1u << 20)
#define CA_FILE_MAX	   (1u << 20)
#define CA_MAX		   64
#define HEADER_VALUE_MAX   8192
#define MAX_REDIRECTS	   5
#define TOKEN_CACHE_MAX	   32
#define HANDLE_POOL_MAX	   16
#define CRED_MAX	   4096
#define BACKOFF_MAX_MS	   10000u
#define RETRY_AFTER_MAX_S  30u

static const char *const default_certs_dirs[] = { "/etc/containers/certs.d", "/etc/docker/certs.d",
						  NULL };

static const char manifest_accept[] = "Accept: " MEDIA_TYPE_OCI_MANIFEST ", " MEDIA_TYPE_OCI_INDEX
				      ", " MEDIA_TYPE_DOCKER_MANIFEST ", " MEDIA_TYPE_DOCKER_LIST;

enum auth_mode { AUTH_UNKNOWN, AUTH_NONE, AUTH_BASIC, AUTH_BEARER };

struct token_entry {
	char *scope;
	char *header; /* "Authorization: Bearer ..." */
	uint64_t expires_ns;
	uint64_t used_ns;
};

struct registry_client {
	char *host;	/* the registry's name: "docker.io", "127.0.0.1:5000" */
	char *endpoint; /* where the API lives: "registry-1.docker.io", "127.0.0.1:5000" */
	bool allow_http;
	bool loopback;
	char *username, *password;
	char *creds_note; /* why there are no credentials although the user may have some */
	unsigned connect_timeout_s, timeout_s, tries, retry_delay_ms;
	size_t chunk_size;
	char *user_agent;
	X509 *cas[CA_MAX];
	size_t n_cas;
	char *client_cert, *client_key;

	CURLSH *share; /* DNS and TLS sessions; connections live in the pooled handles */
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
	pthread_mutex_t pool_lock;
	CURL *pool[HANDLE_POOL_MAX]; /* idle easy handles, each with its open connections */
	size_t n_pool;

	pthread_mutex_t lock; /* everything below */
	char *base_url;	      /* "https://host[:port]" once pinged; never changes after */
	enum auth_mode mode;
	char *realm, *service;
	struct token_entry tokens[TOKEN_CACHE_MAX];
};

/* ------------------------------------------------------------------ small helpers */

static void debug(const char *fmt, ...) _printf_(1, 2);
static void debug(const char *fmt, ...)
{
	static int enabled = -1;
	va_list ap;

	if (enabled < 0)
		enabled = getenv("COVE_DEBUG") != NULL;
	if (!enabled)
		return;
	va_start(ap, fmt);
	fputs("cove: registry: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* Copy at most 200 bytes of untrusted text for a one-line message. */
static const char *shown(const char *s, size_t len, char out[216])
{
	size_t i, n = 0;

	for (i = 0; i < len && s[i] && n < 200; i++)
		out[n++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (i < len && s[i]) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
	return out;
}

static void free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static char *str_dup_n(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

static char *str_fmt(const char *fmt, ...) _printf_(1, 2);
static char *str_fmt(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static bool is_loopback_host(const char *host)
{
	struct in_addr a4;
	char h[64];
	size_t n;

	if (!host)
		return false;
	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (strcmp(host, "[::1]") == 0 || strcmp(host, "::1") == 0)
		return true;
	n = strcspn(host, "/");
	if (n >= sizeof(h))
		return false;
	memcpy(h, host, n);
	h[n] = '\0';
	return inet_pton(AF_INET, h, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

/* "host[:port]" → host without port (IPv6 keeps its brackets) */
static void host_without_port(const char *hostport, char *out, size_t size)
{
	size_t n;

	if (hostport[0] == '[') {
		const char *e = strchr(hostport, ']');
		n = e ? (size_t)(e - hostport) + 1 : strlen(hostport);
	} else {
		n = strcspn(hostport, ":");
	}
	if (n >= size)
		n = size - 1;
	memcpy(out, hostport, n);
	out[n] = '\0';
}

static int b64_encode(const void *data, size_t len, char **ret)
{
	char *out;

	if (len > CRED_MAX)
		return -E2BIG;
	out = malloc(4 * ((len + 2) / 3) + 1);
	if (!out)
		return -ENOMEM;
	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	*ret = out;
	return 0;
}

/* Decode standard base64 (with padding) into a NUL-terminated string of at most CRED_MAX. */
static int b64_decode(const char *s, char **ret, size_t *ret_len)
{
	size_t len = strlen(s), pad = 0;
	unsigned char *out;
	int n;

	while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == ' '))
		len--;
	if (len == 0 || len % 4 != 0 || len / 4 * 3 > CRED_MAX)
		return -EINVAL;
	if (s[len - 1] == '=')
		pad++;
	if (s[len - 2] == '=')
		pad++;
	out = malloc(len / 4 * 3 + 1);
	if (!out)
		return -ENOMEM;
	n = EVP_DecodeBlock(out, (const unsigned char *)s, (int)len);
	if (n < 0 || (size_t)n < pad) {
		free(out);
		return -EINVAL;
	}
	n -= (int)pad;
	out[n] = '\0';
	if (memchr(out, '\0', (size_t)n)) {
		free(out);
		return -EINVAL;
	}
	*ret = (char *)out;
	*ret_len = (size_t)n;
	return 0;
}

/* repository path: [a-z0-9._/-], ≤ 255, not starting or ending with '/'. Full grammar checks
 * belong to reference_parse; this only keeps URLs well-formed. */
static bool repo_is_sane(const char *repo)
{
	size_t n = repo ? strlen(repo) : 0;

	if (n == 0 || n > REFERENCE_NAME_MAX || repo[0] == '/' || repo[n - 1] == '/')
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = repo[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' ||
		      ch == '_' || ch == '-' || ch == '/'))
			return false;
		if (ch == '/' && repo[i + 1] == '/')
			return false;
	}
	return true;
}

static int check_repo(const char *repo, struct cove_error *err)
{
	char show[216];

	if (!repo_is_sane(repo))
		return cove_error_set(err, EINVAL, "invalid repository name '%s'",
				      repo ? shown(repo, strlen(repo), show) : "");
	return 0;
}

static int check_digest(const char *digest, struct cove_error *err)
{
	return digest_validate(digest, err);
}

/* ------------------------------------------------------------------ WWW-Authenticate */

static bool is_tchar(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static const char *skip_ows(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

int registry_parse_challenge(const char *value, struct registry_challenge *ret)
{
	struct registry_challenge best, cur;
	const char *p = value;

	memset(&best, 0, sizeof(best));
	if (!value)
		return -EINVAL;
	for (;;) {
		const char *scheme;
		size_t scheme_len;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (!*p)
			break;
		scheme = p;
		while (is_tchar(*p))
			p++;
		scheme_len = (size_t)(p - scheme);
		if (scheme_len == 0)
			return -EINVAL;
		memset(&cur, 0, sizeof(cur));
		if (scheme_len == 5 && strncasecmp(scheme, "Basic", 5) == 0)
			cur.scheme = REGISTRY_AUTH_BASIC;
		else if (scheme_len == 6 && strncasecmp(scheme, "Bearer", 6) == 0)
			cur.scheme = REGISTRY_AUTH_BEARER;
		/* auth-params: name = (token | quoted-string), separated by commas */
		for (;;) {
			const char *name, *save;
			size_t name_len, vlen = 0;
			char val[1024];
			char *dst = NULL;
			size_t dst_size = 0;

			p = skip_ows(p);
			while (*p == ',')
				p = skip_ows(p + 1);
			if (!*p)
				break;
			save = p;
			name = p;
			while (is_tchar(*p))
				p++;
			name_len = (size_t)(p - name);
			p = skip_ows(p);
			if (name_len == 0)
				return -EINVAL;
			if (*p != '=') { /* the next challenge's scheme */
				p = save;
				break;
			}
			p = skip_ows(p + 1);
			if (*p == '"') {
				p++;
				while (*p && *p != '"') {
					if (*p == '\\' && p[1])
						p++;
					if (vlen + 1 >= sizeof(val))
						return -EINVAL;
					val[vlen++] = *p++;
				}
				if (*p != '"')
					return -EINVAL;
				p++;
			} else {
				while (is_tchar(*p) || *p == '/' || *p == ':' || *p == '=') {
					if (vlen + 1 >= sizeof(val))
						return -EINVAL;
					val[vlen++] = *p++;
				}
			}
			val[vlen] = '\0';
			p = skip_ows(p);
			if (*p && *p != ',')
				return -EINVAL;
			if (name_len == 5 && strncasecmp(name, "realm", 5) == 0)
				dst = cur.realm, dst_size = sizeof(cur.realm);
			else if (name_len == 7 && strncasecmp(name, "service", 7) == 0)
				dst = cur.service, dst_size = sizeof(cur.service);
			else if (name_len == 5 && strncasecmp(name, "scope", 5) == 0)
				dst = cur.scope, dst_size = sizeof(cur.scope);
			else if (name_len == 5 && strncasecmp(name, "error", 5) == 0)
				dst = cur.error, dst_size = sizeof(cur.error);
			if (dst && str_copy(dst, dst_size, val) < 0)
				return -EINVAL;
		}
		if (cur.scheme == REGISTRY_AUTH_BEARER && best.scheme != REGISTRY_AUTH_BEARER)
			best = cur;
		else if (cur.scheme == REGISTRY_AUTH_BASIC && best.scheme == REGISTRY_AUTH_NONE)
			best = cur;
	}
	*ret = best;
	return 0;
}

/* ------------------------------------------------------------------ HTTP core */

struct http_req {
	const char *method; /* GET HEAD POST PUT PATCH DELETE */
	const char *url;
	const char *label;	 /* "registry 127.0.0.1:5000", for messages */
	bool to_registry;	 /* the registry's origin: its CAs and client cert apply */
	const char *auth;	 /* "Authorization: ..." or NULL */
	const char *const *hdrs; /* NULL-terminated extra header lines */
	uint64_t range_start;	 /* > 0: Range: bytes=N- */
	unsigned timeout_s;	 /* 0: the client's */
	/* request body: memory or a reader; has_body with neither = empty body */
	bool has_body;
	const void *body;
	registry_read_fn read;
	void *read_ud;
	uint64_t body_off, body_len;
	/* a 2xx body: into out (bounded by its max) or write (bounded by limit) */
	struct buf *out;
	registry_write_fn write;
	void *write_ud;
	uint64_t limit;
	uint64_t skip; /* drop this many leading bytes of a 200 answer to a Range request */
};

struct http_resp {
	const struct http_req *req;
	long status;
	char reason[64];
	char content_type[256];
	char digest[96];
	char location[HEADER_VALUE_MAX];
	char www_auth[HEADER_VALUE_MAX];
	char content_range[128];
	unsigned retry_after; /* seconds, RETRY_AFTER_MAX_S + 1 when absent or large */
	bool has_length;
	uint64_t content_length;
	struct buf err_body;
	uint64_t received, skipped, up_pos;
	int body_error; /* the write or read callback's -errno */
	bool too_big, bad_range, header_too_long, body_ignored;
	CURLcode cc;
	char errbuf[CURL_ERROR_SIZE];
	long os_errno;
	long connect_us; /* until the request could go out; 0 if it never could */
};

static void resp_reset(struct http_resp *r, const struct http_req *req)
{
	struct buf eb = r->err_body;

	buf_reset(&eb);
	memset(r, 0, sizeof(*r));
	r->err_body = eb;
	r->err_body.max = ERR_BODY_MAX;
	r->retry_after = RETRY_AFTER_MAX_S + 1;
	r->req = req;
}

static void resp_done(struct http_resp *r)
{
	buf_done(&r->err_body);
}

static bool status_ok(long s)
{
	return s >= 200 && s < 300;
}

static void set_header_value(char *dst, size_t size, const char *v, size_t n, bool *too_long)
{
	if (n >= size) {
		*too_long = true;
		n = size - 1;
	}
	memcpy(dst, v, n);
	dst[n] = '\0';
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
	struct http_resp *r = ud;
	const struct http_req *req = r->req;
	size_t n = size * nmemb, name_len, vlen;
	const char *colon, *v;

	while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r'))
		n--;
	if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
		/* a new response (after 100 Continue or a redirect): forget the last one's headers
		 */
		const char *sp = memchr(p, ' ', n);
		long code = 0;
		size_t i;

		r->has_length = false;
		r->content_type[0] = r->digest[0] = r->location[0] = r->www_auth[0] = '\0';
		r->content_range[0] = r->reason[0] = '\0';
		r->retry_after = RETRY_AFTER_MAX_S + 1;
		if (!sp)
			return 0;
		for (i = (size_t)(sp - p) + 1; i < n && p[i] >= '0' && p[i] <= '9' && code < 1000;
		     i++)
			code = code * 10 + (p[i] - '0');
		r->status = code;
		if (i < n && p[i] == ' ') { /* the reason phrase, printable and bounded */
			size_t k = 0;
			for (i++; i < n && k < sizeof(r->reason) - 1; i++)
				r->reason[k++] = (p[i] >= 0x20 && p[i] < 0x7f) ? p[i] : '?';
			r->reason[k] = '\0';
		}
		return size * nmemb;
	}
	if (n == 0) { /* end of the headers */
		if (r->status == 206 && req && req->range_start > 0) {
			unsigned long long start = 0;
			if (sscanf(r->content_range, "bytes %llu-", &start) != 1 ||
			    start != req->range_start) {
				r->bad_range = true;
				return 0;
			}
		}
		return size * nmemb;
	}
	colon = memchr(p, ':', n);
	if (!colon)
		return size * nmemb;
	name_len = (size_t)(colon - p);
	v = colon + 1;
	while (v < p + n && (*v == ' ' || *v == '\t'))
		v++;
	vlen = (size_t)(p + n - v);
	while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
		vlen--;
#define IS(name) (name_len == sizeof(name) - 1 && strncasecmp(p, name, name_len) == 0)
	if (IS("Content-Type")) {
		set_header_value(r->content_type, sizeof(r->content_type), v, vlen,
				 &r->header_too_long);
	} else if (IS("Docker-Content-Digest")) {
		bool long_digest = false;
		set_header_value(r->digest, sizeof(r->digest), v, vlen, &long_digest);
		if (long_digest)
			r->digest[0] = '?'; /* never equal to a valid digest */
	} else if (IS("Location")) {
		set_header_value(r->location, sizeof(r->location), v, vlen, &r->header_too_long);
	} else if (IS("WWW-Authenticate")) {
		bool bearer = vlen >= 6 && strncasecmp(v, "Bearer", 6) == 0;
		bool ignored = false;
		/* keep the first one, or a Bearer over a Basic */
		if (!r->www_auth[0] || (bearer && strncasecmp(r->www_auth, "Bearer", 6) != 0))
			set_header_value(r->www_auth, sizeof(r->www_auth), v, vlen, &ignored);
	} else if (IS("Content-Range")) {
		bool ignored = false;
		set_header_value(r->content_range, sizeof(r->content_range), v, vlen, &ignored);
	} else if (IS("Retry-After")) {
		char tmp[16];
		uint64_t secs;
		if (vlen < sizeof(tmp)) {
			memcpy(tmp, v, vlen);
			tmp[vlen] = '\0';
			if (parse_u64(tmp, RETRY_AFTER_MAX_S, &secs) == 0)
				r->retry_after = (unsigned)secs;
		}
	} else if (IS("Content-Length")) {
		char tmp[24];
		uint64_t len;
		if (vlen < sizeof(tmp)) {
			memcpy(tmp, v, vlen);
			tmp[vlen] = '\0';
			if (parse_u64(tmp, UINT64_MAX, &len) == 0) {
				r->has_length = true;
				r->content_length = len;
			}
		}
		/* refuse an announced oversized 2xx body before any of it arrives */
		if (r->has_length && req && status_ok(r->status) &&
		    strcmp(req->method, "HEAD") != 0) {
			uint64_t skip = r->status == 200 ? req->skip : 0;
			if (req->out && r->content_length > req->out->max - req->out->len) {
				r->too_big = true;
				return 0;
			}
			if (req->write && r->content_length - skip > req->limit &&
			    r->content_length > skip) {
				r->too_big = true;
				return 0;
			}
		}
	}
#undef IS
	return size * nmemb;
}

#define BLOB_RECV_BUFFER (256 << 10)

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
	struct http_resp *r = ud;
	const struct http_req *req = r->req;
	size_t n = size * nmemb, off = 0;

	if (!status_ok(r->status) || (!req->out && !req->write)) {
		/* an error (or redirect) body, or one nobody asked for: keep the first 64 KiB
		 * and stop reading there (the transfer then counts as complete) */
		size_t room = r->err_body.max - r->err_body.len;
		(void)buf_append(&r->err_body, p, n < room ? n : room);
		if (n > room) {
			r->body_ignored = true;
			return 0;
		}
		return n;
	}
	if (r->status == 200 && r->skipped < req->skip) {
		uint64_t s = req->skip - r->skipped;
		off = s < n ? (size_t)s : n;
		r->skipped += off;
	}
	if (off == n)
		return n;
	if (req->out) {
		int k = buf_append(req->out, p + off, n - off);
		if (k == -E2BIG)
			r->too_big = true;
		else if (k < 0)
			r->body_error = k;
		if (k < 0)
			return 0;
	} else if (req->write) {
		int k;
		if (r->received + (n - off) > req->limit) {
			r->too_big = true;
			return 0;
		}
		k = req->write(p + off, n - off, req->write_ud);
		if (k < 0) {
			r->body_error = k;
			return 0;
		}
	}
	r->received += n - off;
	return n;
}

static size_t on_read(char *p, size_t size, size_t nmemb, void *ud)
{
	struct http_resp *r = ud;
	const struct http_req *req = r->req;
	uint64_t left = req->body_len - r->up_pos;
	size_t n = size * nmemb;

	if (n > left)
		n = (size_t)left;
	if (n == 0)
		return 0;
	if (req->body) {
		memcpy(p, (const uint8_t *)req->body + req->body_off + r->up_pos, n);
	} else {
		ssize_t k = req->read(p, n, req->body_off + r->up_pos, req->read_ud);
		if (k <= 0) {
			r->body_error = k < 0 ? (int)k : -EIO;
			return CURL_READFUNC_ABORT;
		}
		n = (size_t)k;
	}
	r->up_pos += n;
	return n;
}

static int on_seek(void *ud, curl_off_t offset, int origin)
{
	struct http_resp *r = ud;

	if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > r->req->body_len)
		return CURL_SEEKFUNC_CANTSEEK;
	r->up_pos = (uint64_t)offset;
	return CURL_SEEKFUNC_OK;
}

static CURLcode on_ssl_ctx(CURL *h, void *ssl_ctx, void *ud)
{
	struct registry_client *c = ud;
	X509_STORE *store = SSL_CTX_get_cert_store(ssl_ctx);

	(void)h;
	for (size_t i = 0; i < c->n_cas; i++)
		(void)X509_STORE_add_cert(store, c->cas[i]); /* a duplicate is harmless */
	ERR_clear_error();
	return CURLE_OK;
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ud)
{
	struct registry_client *c = ud;

	(void)h, (void)access;
	if ((unsigned)data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&c->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ud)
{
	struct registry_client *c = ud;

	(void)h;
	if ((unsigned)data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&c->share_locks[data]);
}

/* scheme, host (lowercase) and port of url. */
struct origin {
	char scheme[8];
	char host[256];
	char port[8];
};

static int url_origin(const char *url, struct origin *ret)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL;
	int r = -EINVAL;

	if (!u)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK &&
	    (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0) &&
	    str_copy(ret->scheme, sizeof(ret->scheme), scheme) == 0 &&
	    str_copy(ret->host, sizeof(ret->host), host) == 0 &&
	    str_copy(ret->port, sizeof(ret->port), port) == 0) {
		for (char *q = ret->host; *q; q++)
			if (*q >= 'A' && *q <= 'Z')
				*q = (char)(*q - 'A' + 'a');
		r = 0;
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return r;
}

static bool same_origin(const char *a, const char *b)
{
	struct origin oa, ob;

	return url_origin(a, &oa) == 0 && url_origin(b, &ob) == 0 &&
	       strcmp(oa.scheme, ob.scheme) == 0 && strcmp(oa.host, ob.host) == 0 &&
	       strcmp(oa.port, ob.port) == 0;
}

/* Resolve a Location (absolute or relative) against base; only http/https. */
static int resolve_url(const char *base, const char *location, char **ret)
{
	CURLU *u = curl_url();
	char *out = NULL, *scheme = NULL;
	int r = -EINVAL;

	if (!u)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, base, 0) == CURLUE_OK &&
	    curl_url_set(u, CURLUPART_URL, location, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0) &&
	    curl_url_get(u, CURLUPART_URL, &out, 0) == CURLUE_OK) {
		*ret = strdup(out);
		r = *ret ? 0 : -ENOMEM;
	}
	curl_free(out);
	curl_free(scheme);
	curl_url_cleanup(u);
	return r;
}

/* The URL without its query, for messages and debug output (queries may carry signatures). */
static const char *url_for_display(const char *url, char out[216])
{
	return shown(url, strcspn(url, "?#"), out);
}

static bool transport_retryable(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_GOT_NOTHING:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true;
	default:
		return false;
	}
}

static bool status_retryable(long s)
{
	return s >= 500 || s == 429 || s == 408;
}

/* Timed out in the TLS handshake, the TCP connection up (libcurl 7.88 reports no connect time
 * then: its message is the only sign). */
static bool tls_stalled(const struct http_resp *r)
{
	return r->cc == CURLE_OPERATION_TIMEDOUT && strstr(r->errbuf, "SSL connection timeout");
}

/* A message for a failed transfer (cc != OK, not one of ours). */
static int transport_error(struct registry_client *c, const struct http_req *req,
			   const struct http_resp *r, struct cove_error *err)
{
	char show[216];
	const char *what = req->label;
	unsigned t = req->timeout_s ? req->timeout_s : c->timeout_s;
	unsigned tc = t < c->connect_timeout_s ? t : c->connect_timeout_s;

	switch (r->cc) {
	case CURLE_OPERATION_TIMEDOUT:
		/* both limits apply while connecting; curl's TLS handshake is part of that */
		if (r->connect_us == 0 && tls_stalled(r))
			return cove_error_set(err, ETIMEDOUT,
					      "TLS handshake with %s did not finish within %u s",
					      what, tc);
		if (r->connect_us == 0)
			return cove_error_set(err, ETIMEDOUT,
					      "cannot connect to %s: no answer within %u s", what,
					      tc);
		if (r->status == 0 && r->received == 0)
			return cove_error_set(err, ETIMEDOUT, "%s did not answer within %u s", what,
					      t);
		return cove_error_set(err, ETIMEDOUT, "%s stopped sending data for %u s", what, t);
	case CURLE_COULDNT_CONNECT:
		return cove_error_set(err, ECONNREFUSED, "cannot connect to %s: %s", what,
				      r->os_errno ? strerror((int)r->os_errno)
						  : "connection failed");
	case CURLE_COULDNT_RESOLVE_HOST:
		return cove_error_set(err, EHOSTUNREACH, "cannot resolve the host of %s", what);
	case CURLE_COULDNT_RESOLVE_PROXY:
		return cove_error_set(err, EHOSTUNREACH, "cannot resolve the proxy for %s", what);
	case CURLE_PEER_FAILED_VERIFICATION:
		return cove_error_set(err, EPROTO,
				      "TLS certificate of %s is not trusted: %s (put the CA that "
				      "signed it in /etc/containers/certs.d/%s/ca.crt)",
				      what, shown(r->errbuf, sizeof(r->errbuf), show), c->host);
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
		return cove_error_set(err, EPROTO, "TLS handshake with %s failed: %s", what,
				      shown(r->errbuf, sizeof(r->errbuf), show));
	default:
		if (transport_retryable(r->cc))
			return cove_error_set(
				err, ECONNRESET, "connection to %s was dropped: %s", what,
				r->errbuf[0] ? shown(r->errbuf, sizeof(r->errbuf), show)
					     : curl_easy_strerror(r->cc));
		return cove_error_set(err, EIO, "request to %s failed: %s", what,
				      r->errbuf[0] ? shown(r->errbuf, sizeof(r->errbuf), show)
						   : curl_easy_strerror(r->cc));
	}
}

/*
 * One transfer, no auth logic, no redirects. Returns 0 when an HTTP answer arrived (any
 * status; r->status), else -errno with err set. A too-big body (-EFBIG), a callback error
 * and a bad Content-Range (-EPROTO) are reported by the caller, which knows what it fetched:
 * they return -EFBIG/-ECANCELED/-EPROTO without a message.
 */
static CURL *handle_get(struct registry_client *c)
{
	CURL *h = NULL;

	pthread_mutex_lock(&c->pool_lock);
	if (c->n_pool > 0)
		h = c->pool[--c->n_pool];
	pthread_mutex_unlock(&c->pool_lock);
	if (h) {
		curl_easy_reset(h); /* options only: connections and caches stay */
		return h;
	}
	return curl_easy_init();
}

static void handle_put(struct registry_client *c, CURL *h)
{
	pthread_mutex_lock(&c->pool_lock);
	if (c->n_pool < HANDLE_POOL_MAX) {
		c->pool[c->n_pool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&c->pool_lock);
	if (h)
		curl_easy_cleanup(h);
}

static int http_do(struct registry_client *c, const struct http_req *req, struct http_resp *r,
		   struct cove_error *err)
{
	struct curl_slist *hl = NULL, *tmp;
	char range[48], show[216];
	struct origin o;
	CURL *h;
	int ret = 0;

	resp_reset(r, req);
	h = handle_get(c);
	if (!h)
		return cove_error_set(err, ENOMEM, "cannot create a curl handle");
#define ADD(line)                                                                                  \
	do {                                                                                       \
		tmp = curl_slist_append(hl, line);                                                 \
		if (!tmp) {                                                                        \
			ret = cove_error_set(err, ENOMEM, "out of memory");                        \
			goto out;                                                                  \
		}                                                                                  \
		hl = tmp;                                                                          \
	} while (0)
	for (const char *const *p = req->hdrs; p && *p; p++)
		ADD(*p);
	if (req->auth)
		ADD(req->auth);
	if (req->range_start > 0) {
		snprintf(range, sizeof(range), "Range: bytes=%llu-",
			 (unsigned long long)req->range_start);
		ADD(range);
	}
	ADD("Expect:");
#undef ADD
	curl_easy_setopt(h, CURLOPT_URL, req->url);
	curl_easy_setopt(h, CURLOPT_SHARE, c->share);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, c->user_agent);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	/* the TLS handshake counts as connecting: a shorter request timeout bounds it too */
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT,
			 (long)(req->timeout_s && req->timeout_s < c->connect_timeout_s
					? req->timeout_s
					: c->connect_timeout_s));
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
			 (long)(req->timeout_s ? req->timeout_s : c->timeout_s));
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	/* a blob comes in large pieces: fewer reads, writes and wake-ups than curl's 16 KiB */
	if (req->write)
		curl_easy_setopt(h, CURLOPT_BUFFERSIZE, (long)BLOB_RECV_BUFFER);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (req->to_registry && c->n_cas > 0) {
		curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
		curl_easy_setopt(h, CURLOPT_SSL_CTX_DATA, c);
	}
	if (req->to_registry && c->client_cert && c->client_key) {
		curl_easy_setopt(h, CURLOPT_SSLCERT, c->client_cert);
		curl_easy_setopt(h, CURLOPT_SSLKEY, c->client_key);
	}
	if (url_origin(req->url, &o) == 0 && is_loopback_host(o.host))
		curl_easy_setopt(h, CURLOPT_PROXY, "");
	if (strcmp(req->method, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (strcmp(req->method, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		if (req->has_body && req->body_len > 0) {
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
			curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
			curl_easy_setopt(h, CURLOPT_READDATA, r);
		} else {
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		}
	} else if (strcmp(req->method, "PUT") == 0 || strcmp(req->method, "PATCH") == 0) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->body_len);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, r);
		curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(h, CURLOPT_SEEKDATA, r);
		if (strcmp(req->method, "PATCH") == 0)
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PATCH");
	} else if (strcmp(req->method, "DELETE") == 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
	}

	r->cc = curl_easy_perform(h);
	{
		/* connected when the request went out (a reused connection has no connect time) */
		curl_off_t t = 0;
		curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &r->os_errno);
		if (curl_easy_getinfo(h, CURLINFO_PRETRANSFER_TIME_T, &t) == CURLE_OK)
			r->connect_us = (long)t;
		if (r->connect_us == 0 && r->status != 0)
			r->connect_us = 1;
	}
	debug("%s %s -> %ld (%s)", req->method, url_for_display(req->url, show), r->status,
	      curl_easy_strerror(r->cc));
	if (r->cc == CURLE_WRITE_ERROR && r->body_ignored)
		r->cc = CURLE_OK; /* the status is all that mattered */
	if (r->too_big)
		ret = -EFBIG;
	else if (r->body_error)
		ret = -ECANCELED;
	else if (r->bad_range)
		ret = -EPROTO;
	else if (r->cc != CURLE_OK)
		ret = transport_error(c, req, r, err);
	else if (r->header_too_long)
		ret = cove_error_set(err, EPROTO, "%s sent a header longer than %d bytes",
				     req->label, HEADER_VALUE_MAX);
out:
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hl);
	handle_put(c, h);
	return ret;
}

/* The registry's error JSON as "CODE: message" (or ""), bounded and printable. */
static void registry_error_text(const struct http_resp *r, char *out, size_t size)
{
	json_t *root, *errors, *e0;
	json_error_t jerr;
	char a[216], b[216];

	out[0] = '\0';
	if (r->err_body.len == 0)
		return;
	root = json_loadb((const char *)r->err_body.data, r->err_body.len, 0, &jerr);
	if (!root)
		return;
	errors = json_object_get(root, "errors");
	e0 = json_is_array(errors) ? json_array_get(errors, 0) : NULL;
	if (json_is_object(e0)) {
		const char *code = json_string_value(json_object_get(e0, "code"));
		const char *msg = json_string_value(json_object_get(e0, "message"));
		if (code && msg && *msg)
			snprintf(out, size, "%s: %s", shown(code, strlen(code), a),
				 shown(msg, strlen(msg), b));
		else if (code)
			snprintf(out, size, "%s", shown(code, strlen(code), a));
	} else {
		/* token servers: {"details": "..."} */
		const char *d = json_string_value(json_object_get(root, "details"));
		if (!d)
			d = json_string_value(json_object_get(root, "error"));
		if (d)
			snprintf(out, size, "%s", shown(d, strlen(d), a));
	}
	json_decref(root);
}

static const char *reason_phrase(const struct http_resp *r)
{
	if (r->reason[0])
		return r->reason;
	switch (r->status) {
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 416:
		return "Range Not Satisfiable";
	case 429:
		return "Too Many Requests";
	case 500:
		return "Internal Server Error";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	default:
		return "";
	}
}

/* ------------------------------------------------------------------ auth */

static void token_entry_clear(struct token_entry *t)
{
	free(t->scope);
	free_secret(t->header);
	memset(t, 0, sizeof(*t));
}

/* Whether every "repository:NAME:ACTIONS" item of want is covered by an item of have. */
static bool scope_covers(const char *have, const char *want)
{
	const char *w = want;

	if (strcmp(have, want) == 0)
		return true;
	while (*w) {
		size_t wl = strcspn(w, " ");
		const char *wa = NULL, *h = have;
		bool covered = false;

		for (size_t i = wl; i > 0; i--)
			if (w[i - 1] == ':') {
				wa = w + i - 1;
				break;
			}
		if (!wa)
			return false;
		while (*h && !covered) {
			size_t hl = strcspn(h, " ");
			const char *ha = NULL;

			for (size_t i = hl; i > 0; i--)
				if (h[i - 1] == ':') {
					ha = h + i - 1;
					break;
				}
			if (ha && ha - h == wa - w && memcmp(h, w, (size_t)(wa - w)) == 0) {
				/* same resource: each wanted action must be among the held ones */
				const char *a = wa + 1, *aend = w + wl;
				covered = true;
				while (a < aend && covered) {
					size_t al = strcspn(a, ", ");
					const char *x = ha + 1, *xend = h + hl;
					bool found = false;

					if (a + al > aend)
						al = (size_t)(aend - a);
					while (x < xend && !found) {
						size_t xl = strcspn(x, ", ");
						if (x + xl > xend)
							xl = (size_t)(xend - x);
						found = xl == al && memcmp(x, a, al) == 0;
						x += xl + 1;
					}
					covered = found;
					a += al + 1;
				}
			}
			h += hl;
			while (*h == ' ')
				h++;
		}
		if (!covered)
			return false;
		w += wl;
		while (*w == ' ')
			w++;
	}
	return true;
}

static bool refuse_plain_credentials(struct registry_client *c, const char *url)
{
	struct origin o;

	if (url_origin(url, &o) < 0)
		return true;
	return strcmp(o.scheme, "http") == 0 && !c->allow_http && !is_loopback_host(o.host);
}

static int basic_header(struct registry_client *c, char **ret)
{
	_cleanup_free_ char *pair = NULL, *b64 = NULL;
	int r;

	pair = str_fmt("%s:%s", c->username, c->password);
	if (!pair)
		return -ENOMEM;
	r = b64_encode(pair, strlen(pair), &b64);
	explicit_bzero(pair, strlen(pair));
	if (r < 0)
		return r;
	*ret = str_fmt("Authorization: Basic %s", b64);
	explicit_bzero(b64, strlen(b64));
	return *ret ? 0 : -ENOMEM;
}

static const char *action_word(const char *scope)
{
	return scope && strstr(scope, ",push") ? "push" : "pull";
}

/* Fetch a token for scope (NULL: none) from the realm. Called with c->lock held. */
static int fetch_token(struct registry_client *c, const char *scope, const char *subject,
		       char **ret_header, uint64_t *ret_expires, struct cove_error *err)
{
	_cleanup_free_ char *url = NULL, *auth = NULL, *label = NULL;
	struct buf body = BUF_INIT(TOKEN_RESPONSE_MAX), q = BUF_INIT(16384);
	struct http_resp resp = { 0 };
	struct origin o;
	json_t *root = NULL;
	json_error_t jerr;
	char show[216], detail[512];
	const char *token;
	json_int_t expires_in = 60;
	int r = 0;

	if (!c->realm || url_origin(c->realm, &o) < 0)
		return cove_error_set(
			err, EPROTO, "registry %s asked for a token from an invalid realm '%s'",
			c->host, c->realm ? shown(c->realm, strlen(c->realm), show) : "");
	label = str_fmt("token server %s (for %s)", o.host, c->host);
	if (!label)
		return -ENOMEM;
	/* realm?service=S&scope=A&scope=B */
	r = buf_append(&q, c->realm, strlen(c->realm));
	if (r >= 0 && c->service && *c->service) {
		char *e = curl_easy_escape(NULL, c->service, 0);
		if (!e)
			r = -ENOMEM;
		if (r >= 0)
			r = buf_append(&q, strchr(c->realm, '?') ? "&service=" : "?service=", 9);
		if (r >= 0)
			r = buf_append(&q, e, strlen(e));
		curl_free(e);
	}
	for (const char *s = scope; r >= 0 && s && *s;) {
		size_t n = strcspn(s, " ");
		char *e = curl_easy_escape(NULL, s, (int)n);
		bool first = memchr(q.data, '?', q.len) == NULL;

		if (!e) {
			r = -ENOMEM;
			break;
		}
		r = buf_append(&q, first ? "?scope=" : "&scope=", 7);
		if (r >= 0)
			r = buf_append(&q, e, strlen(e));
		curl_free(e);
		s += n;
		while (*s == ' ')
			s++;
	}
	if (r >= 0)
		r = buf_append(&q, "", 1);
	if (r < 0) {
		buf_done(&q);
		return cove_error_set(err, -r, "token request URL for %s is too long", c->host);
	}
	url = (char *)TAKE_PTR(q.data);
	if (c->username) {
		if (refuse_plain_credentials(c, url))
			return cove_error_set(
				err, EPERM,
				"refusing to send the credentials for %s to %s over plain HTTP",
				c->host, url_for_display(url, show));
		r = basic_header(c, &auth);
		if (r < 0)
			return cove_error_set(err, -r, "cannot encode the credentials for %s",
					      c->host);
	}
	for (unsigned attempt = 1;; attempt++) {
		struct http_req req = {
			.method = "GET",
			.url = url,
			.label = label,
			.auth = auth,
			.out = &body,
		};
		struct cove_error e2 = { 0 };

		buf_reset(&body);
		r = http_do(c, &req, &resp, &e2);
		if (r == -EFBIG)
			r = cove_error_set(&e2, EFBIG, "%s sent a token response over %u bytes",
					   label, TOKEN_RESPONSE_MAX);
		if (r < 0 && (!transport_retryable(resp.cc) || attempt >= c->tries)) {
			cove_error_set(err, e2.code, "%s", e2.msg);
			goto out;
		}
		if (r == 0 && (!status_retryable(resp.status) || attempt >= c->tries))
			break;
		sleep_ms(c->retry_delay_ms << (attempt - 1) < BACKOFF_MAX_MS
				 ? c->retry_delay_ms << (attempt - 1)
				 : BACKOFF_MAX_MS);
	}
	if (resp.status == 401 || resp.status == 403) {
		registry_error_text(&resp, detail, sizeof(detail));
		r = cove_error_set(err, EACCES, "%s access denied for %s: %s answered %ld %s%s%s%s",
				   action_word(scope), subject, label, resp.status,
				   reason_phrase(&resp), detail[0] ? ": " : "", detail,
				   c->username ? " (check the user name and password)" : "");
		goto out;
	}
	if (resp.status != 200) {
		registry_error_text(&resp, detail, sizeof(detail));
		r = cove_error_set(err, EIO, "%s answered %ld %s%s%s", label, resp.status,
				   reason_phrase(&resp), detail[0] ? ": " : "", detail);
		goto out;
	}
	root = json_loadb((const char *)body.data, body.len, 0, &jerr);
	token = json_string_value(json_object_get(root, "token"));
	if (!token || !*token)
		token = json_string_value(json_object_get(root, "access_token"));
	if (!token || !*token) {
		r = cove_error_set(err, EPROTO, "%s sent no token", label);
		goto out;
	}
	for (const char *t = token; *t; t++)
		if (*t <= 0x20 || *t >= 0x7f) {
			r = cove_error_set(err, EPROTO, "%s sent a token with invalid characters",
					   label);
			goto out;
		}
	if (json_is_integer(json_object_get(root, "expires_in")))
		expires_in = json_integer_value(json_object_get(root, "expires_in"));
	if (expires_in <= 0 || expires_in > 86400 * 365)
		expires_in = 60;
	*ret_header = str_fmt("Authorization: Bearer %s", token);
	if (!*ret_header) {
		r = cove_error_set(err, ENOMEM, "out of memory");
		goto out;
	}
	*ret_expires = now_ns() + (uint64_t)expires_in * 900000000ull; /* 90% of it */
	debug("token for %s from %s, %lld s", scope ? scope : "(no scope)", label,
	      (long long)expires_in);
	r = 0;
out:
	json_decref(root);
	if (body.data)
		explicit_bzero(body.data, body.len);
	buf_done(&body);
	resp_done(&resp);
	if (auth)
		explicit_bzero(auth, strlen(auth));
	return r;
}

/* The Authorization header for a request to the registry (NULL when anonymous). fresh tells
 * whether a token was fetched just now. */
static int auth_header(struct registry_client *c, const char *scope, const char *subject,
		       char **ret, bool *fresh, struct cove_error *err)
{
	const char *key = scope ? scope : "";
	struct token_entry *slot = NULL;
	uint64_t now = now_ns();
	int r = 0;

	*ret = NULL;
	*fresh = false;
	pthread_mutex_lock(&c->lock);
	if (c->mode == AUTH_BASIC) {
		if (c->username)
			r = basic_header(c, ret);
		goto out;
	}
	if (c->mode != AUTH_BEARER)
		goto out;
	for (size_t i = 0; i < TOKEN_CACHE_MAX; i++) {
		struct token_entry *t = &c->tokens[i];
		if (t->scope && now < t->expires_ns && scope_covers(t->scope, key)) {
			t->used_ns = now;
			*ret = strdup(t->header);
			r = *ret ? 0 : -ENOMEM;
			goto out;
		}
	}
	/* a free, expired or least recently used slot */
	for (size_t i = 0; i < TOKEN_CACHE_MAX; i++) {
		struct token_entry *t = &c->tokens[i];
		if (!t->scope || now >= t->expires_ns) {
			slot = t;
			break;
		}
		if (!slot || t->used_ns < slot->used_ns)
			slot = t;
	}
	{
		char *hdr = NULL, *sc = strdup(key);
		uint64_t exp = 0;

		if (!sc) {
			r = -ENOMEM;
			goto out;
		}
		r = fetch_token(c, scope, subject, &hdr, &exp, err);
		if (r < 0) {
			free(sc);
			pthread_mutex_unlock(&c->lock);
			return r;
		}
		token_entry_clear(slot);
		slot->scope = sc;
		slot->header = hdr;
		slot->expires_ns = exp;
		slot->used_ns = now;
		*ret = strdup(hdr);
		r = *ret ? 0 : -ENOMEM;
		*fresh = true;
	}
out:
	pthread_mutex_unlock(&c->lock);
	if (r < 0)
		return cove_error_set(err, -r, "cannot prepare the credentials for %s", c->host);
	return 0;
}

/* Learn from a 401's challenge. Returns true when the request is worth repeating. */
static bool handle_challenge(struct registry_client *c, const struct http_resp *resp,
			     const char *scope, bool sent_auth, bool fresh)
{
	struct registry_challenge ch;
	bool retry = false;

	if (registry_parse_challenge(resp->www_auth, &ch) < 0 || ch.scheme == REGISTRY_AUTH_NONE)
		return false;
	pthread_mutex_lock(&c->lock);
	if (ch.scheme == REGISTRY_AUTH_BASIC) {
		retry = c->mode != AUTH_BASIC && c->username && !sent_auth;
		c->mode = AUTH_BASIC;
	} else {
		bool changed = !c->realm || strcmp(c->realm, ch.realm) != 0 || !c->service ||
			       strcmp(c->service, ch.service) != 0;
		if (changed) {
			char *realm = strdup(ch.realm), *service = strdup(ch.service);
			if (realm && service) {
				free(c->realm);
				free(c->service);
				c->realm = realm;
				c->service = service;
			} else {
				free(realm);
				free(service);
			}
		}
		/* drop tokens for this scope: they were refused */
		for (size_t i = 0; i < TOKEN_CACHE_MAX; i++)
			if (c->tokens[i].scope &&
			    scope_covers(c->tokens[i].scope, scope ? scope : ""))
				token_entry_clear(&c->tokens[i]);
		retry = c->mode != AUTH_BEARER || !fresh || changed;
		c->mode = AUTH_BEARER;
	}
	pthread_mutex_unlock(&c->lock);
	return retry;
}

/* An answer to GET /v2/ over plain HTTP that says a registry speaks it there (not, say, the 400
 * a TLS server gives a plain request) */
static bool registry_answer(const struct http_resp *r)
{
	return status_ok(r->status) || r->status == 401;
}

/*
 * GET /v2/ once to learn the scheme (HTTPS, or plain HTTP where allowed) and the auth method.
 * HTTPS is asked first, except on the loopback with no certificates configured for it: there a
 * plain registry is the usual case, and asking it HTTPS first costs loading the system's CA
 * bundle (~20 ms) for nothing. A loopback TLS registry answers the plain request with a 400 or
 * not at all, and is then asked HTTPS.
 */
static int ensure_endpoint(struct registry_client *c, struct cove_error *err)
{
	const char *schemes[2] = { "https", "http" };
	_cleanup_free_ char *label = NULL, *fallback = NULL;
	struct http_resp resp = { 0 };
	bool http_first = c->loopback && c->n_cas == 0 && !c->client_cert;
	int r = 0;

	pthread_mutex_lock(&c->lock);
	if (c->base_url)
		goto out;
	label = str_fmt("registry %s", c->host);
	if (!label) {
		r = cove_error_set(err, ENOMEM, "out of memory");
		goto out;
	}
	if (http_first) {
		schemes[0] = "http";
		schemes[1] = "https";
	}
	for (size_t i = 0; i < (c->allow_http ? 2u : 1u); i++) {
		_cleanup_free_ char *base = str_fmt("%s://%s", schemes[i], c->endpoint);
		_cleanup_free_ char *url = str_fmt("%s/v2/", base ? base : "");
		/* the first of two: a plain server may sit on a ClientHello, a TLS one on a request */
		bool probe = i == 0 && c->allow_http;
		struct http_req req = {
			.method = "GET",
			.url = url,
			.label = label,
			.to_registry = true,
			.timeout_s = probe ? (c->timeout_s < 5 ? c->timeout_s : 5) : 0,
		};
		struct cove_error e2 = { 0 };
		unsigned attempt = 1;

		if (!base || !url) {
			r = cove_error_set(err, ENOMEM, "out of memory");
			goto out;
		}
		resp_done(&resp);
		resp = (struct http_resp){ 0 };
		for (;; attempt++) {
			memset(&e2, 0, sizeof(e2));
			r = http_do(c, &req, &resp, &e2);
			if (r == 0 || !transport_retryable(resp.cc) || attempt >= c->tries || probe)
				break;
			sleep_ms(c->retry_delay_ms);
		}
		if (probe && http_first) {
			if (r == 0 && registry_answer(&resp))
				goto found;
			/* nobody there, or a server that says nothing: HTTPS would fare no better */
			if (r < 0 && (resp.cc == CURLE_COULDNT_CONNECT ||
				      resp.cc == CURLE_OPERATION_TIMEDOUT)) {
				*err = e2;
				goto out;
			}
			/* not a plain registry: HTTPS next, and this answer if that fails too */
			if (r == 0)
				fallback = TAKE_PTR(base);
			continue;
		}
		if (r < 0) {
			bool no_tls = resp.cc == CURLE_SSL_CONNECT_ERROR ||
				      resp.cc == CURLE_RECV_ERROR || resp.cc == CURLE_GOT_NOTHING ||
				      tls_stalled(&resp);

			/* not TLS on the other side: try plain HTTP where allowed */
			if (probe && no_tls)
				continue;
			/* nor after a plain answer unlike a registry's: the plain answers stand */
			if (fallback && no_tls) {
				c->base_url = TAKE_PTR(fallback);
				r = 0;
				goto out;
			}
			*err = e2;
			goto out;
		}
found:
		if (resp.status == 401) {
			struct registry_challenge ch;
			if (registry_parse_challenge(resp.www_auth, &ch) == 0) {
				if (ch.scheme == REGISTRY_AUTH_BASIC) {
					c->mode = AUTH_BASIC;
				} else if (ch.scheme == REGISTRY_AUTH_BEARER) {
					c->mode = AUTH_BEARER;
					c->realm = strdup(ch.realm);
					c->service = strdup(ch.service);
					if (!c->realm || !c->service) {
						r = cove_error_set(err, ENOMEM, "out of memory");
						goto out;
					}
				}
			}
		} else if (status_ok(resp.status)) {
			c->mode = AUTH_NONE;
		}
		debug("%s: %s, auth %d", c->host, base, (int)c->mode);
		c->base_url = TAKE_PTR(base);
		r = 0;
		break;
	}
out:
	pthread_mutex_unlock(&c->lock);
	resp_done(&resp);
	return r;
}

/*
 * A request to the registry with auth and redirects: attaches the Authorization for scope,
 * answers one 401 by (re)authenticating and repeating, and follows redirects of GET/HEAD,
 * sending the Authorization only to the registry's origin. req->url is a path ("/v2/...") or
 * an absolute URL. Returns 0 with the final answer in resp (any status), or -errno.
 */
static int request(struct registry_client *c, struct http_req *req, const char *scope,
		   const char *subject, struct http_resp *resp, struct cove_error *err)
{
	_cleanup_free_ char *url = NULL, *label = NULL;
	bool follow = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
	unsigned hops = 0, auth_rounds = 0;
	int r;

	r = ensure_endpoint(c, err);
	if (r < 0)
		return r;
	if (req->url[0] == '/')
		url = str_fmt("%s%s", c->base_url, req->url);
	else
		url = strdup(req->url);
	label = str_fmt("registry %s", c->host);
	if (!url || !label)
		return cove_error_set(err, ENOMEM, "out of memory");
	for (;;) {
		_cleanup_free_ char *auth = NULL, *next = NULL, *other = NULL;
		bool mine = same_origin(url, c->base_url), fresh = false;
		char show[216];
		struct origin o;

		if (mine) {
			r = auth_header(c, scope, subject, &auth, &fresh, err);
			if (r < 0)
				return r;
		}
		req->url = url;
		req->auth = auth;
		req->to_registry = mine;
		if (!mine) {
			other = url_origin(url, &o) == 0 ? str_fmt("blob storage %s:%s (for %s)",
								   o.host, o.port, c->host)
							 : NULL;
			if (!other)
				return cove_error_set(err, ENOMEM, "out of memory");
		}
		req->label = mine ? label : other;
		r = http_do(c, req, resp, err);
		if (auth)
			explicit_bzero(auth, strlen(auth));
		if (r < 0)
			return r;
		if (resp->status == 401 && mine && auth_rounds < 2 &&
		    handle_challenge(c, resp, scope, auth != NULL, fresh)) {
			auth_rounds++; /* a request body is sent again from its start */
			continue;
		}
		if (follow && resp->status >= 300 && resp->status < 400 && resp->status != 304 &&
		    resp->location[0]) {
			struct origin from, to;

			if (++hops > MAX_REDIRECTS)
				return cove_error_set(err, ELOOP,
						      "%s redirected more than %d times", label,
						      MAX_REDIRECTS);
			if (resolve_url(url, resp->location, &next) < 0 ||
			    url_origin(url, &from) < 0 || url_origin(next, &to) < 0)
				return cove_error_set(
					err, EPROTO, "%s redirected to an invalid URL '%s'", label,
					shown(resp->location, strlen(resp->location), show));
			if (strcmp(from.scheme, "https") == 0 && strcmp(to.scheme, "http") == 0 &&
			    !c->allow_http && !is_loopback_host(to.host))
				return cove_error_set(err, EPROTO,
						      "%s redirected from HTTPS to plain HTTP (%s)",
						      label, url_for_display(next, show));
			free(url);
			url = TAKE_PTR(next);
			continue;
		}
		return 0;
	}
}

/* A message for an unexpected status: access denied, unknown, or "answered N Reason". */
static int status_error(struct registry_client *c, const struct http_resp *resp, const char *scope,
			const char *subject, const char *unknown_what, struct cove_error *err)
{
	char detail[512], hint[300];

	registry_error_text(resp, detail, sizeof(detail));
	if (resp->status == 401 || resp->status == 403) {
		/* name the repository, not the tag or digest: "host/repo" */
		char name[REFERENCE_STRING_MAX];
		char *slash, *cut;

		str_copy(name, sizeof(name), subject);
		slash = strrchr(name, '/');
		cut = strchr(name, '@');
		if (!cut && slash)
			cut = strchr(slash, ':');
		if (cut)
			*cut = '\0';
		subject = name;
		if (c->username)
			snprintf(hint, sizeof(hint), " (%ld for user '%s')", resp->status,
				 c->username);
		else if (c->creds_note)
			snprintf(hint, sizeof(hint), " (%s)", c->creds_note);
		else
			snprintf(hint, sizeof(hint), " (%ld, no credentials for %s)", resp->status,
				 c->host);
		return cove_error_set(err, EACCES, "%s access denied for %s%s%s%s",
				      action_word(scope), subject, detail[0] ? ": " : "", detail,
				      hint);
	}
	if (resp->status == 404 && unknown_what)
		return cove_error_set(err, ENOENT, "%s unknown: %s", unknown_what, subject);
	return cove_error_set(err, resp->status == 429 ? EAGAIN : EIO,
			      "registry %s answered %ld %s%s%s", c->host, resp->status,
			      reason_phrase(resp), detail[0] ? ": " : "", detail);
}

static unsigned backoff_ms(struct registry_client *c, unsigned attempt,
			   const struct http_resp *resp)
{
	unsigned ms = c->retry_delay_ms;

	for (unsigned i = 1; i < attempt && ms < BACKOFF_MAX_MS; i++)
		ms *= 2;
	if (ms > BACKOFF_MAX_MS)
		ms = BACKOFF_MAX_MS;
	if (resp && resp->retry_after <= RETRY_AFTER_MAX_S)
		ms = resp->retry_after * 1000u;
	return ms;
}

/* Copy a per-attempt error into err (which keeps the first message it gets). */
static int fail_with(struct cove_error *err, const struct cove_error *e, int r)
{
	if (e->code)
		return cove_error_set(err, e->code, "%s", e->msg);
	return cove_error_set(err, r, "%s", strerror(r < 0 ? -r : r));
}

/* request() leaves req->url pointing at its own copy: put the caller's back. */
static int request_keep_url(struct registry_client *c, struct http_req *req, const char *scope,
			    const char *subject, struct http_resp *resp, struct cove_error *err)
{
	const char *url = req->url;
	int r;

	resp_reset(resp, req); /* no stale answer if it fails before sending (auth) */
	r = request(c, req, scope, subject, resp, err);

	req->url = url;
	req->auth = NULL;
	req->label = NULL;
	return r;
}

/* request() with retries on dropped connections, 5xx, 429 and 408. req->out is emptied before
 * each attempt. Returns 0 with the last answer in resp, or -errno. */
static int request_retry(struct registry_client *c, struct http_req *req, const char *scope,
			 const char *subject, struct http_resp *resp, struct cove_error *err)
{
	for (unsigned attempt = 1;; attempt++) {
		struct cove_error e = { 0 };
		bool retry;
		int r;

		if (req->out)
			buf_reset(req->out);
		r = request_keep_url(c, req, scope, subject, resp, &e);
		retry = r < 0 ? e.code && transport_retryable(resp->cc)
			      : status_retryable(resp->status);
		if (!retry || attempt >= c->tries)
			return r < 0 ? (e.code ? fail_with(err, &e, r) : r) : 0;
		debug("retrying %s (attempt %u)", subject, attempt + 1);
		sleep_ms(backoff_ms(c, attempt, r < 0 ? NULL : resp));
	}
}

/* ------------------------------------------------------------------ client */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void curl_init_once(void)
{
	curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n > m && strcmp(s + n - m, suffix) == 0;
}

/* Load ROOT/NAME/ *.crt as extra CAs and ROOT/NAME/X.cert + X.key as the client certificate. */
static int load_certs_dir(struct registry_client *c, const char *root, const char *name,
			  struct cove_error *err)
{
	_cleanup_free_ char *dir = str_fmt("%s/%s", root, name);
	_cleanup_(closedirp) DIR *d = NULL;
	struct dirent *de;

	if (!dir)
		return cove_error_set(err, ENOMEM, "out of memory");
	d = opendir(dir);
	if (!d) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		return cove_error_set(err, errno, "cannot open '%s': %s", dir, strerror(errno));
	}
	while ((errno = 0, de = readdir(d))) {
		_cleanup_free_ char *path = NULL, *data = NULL;
		size_t len = 0, found = 0;
		BIO *bio;
		int r;

		if (de->d_name[0] == '.')
			continue;
		if (has_suffix(de->d_name, ".cert")) {
			_cleanup_free_ char *key = NULL;
			struct stat st;

			if (c->client_cert)
				continue;
			path = str_fmt("%s/%s", dir, de->d_name);
			key = str_fmt("%.*s.key", (int)(strlen(path) - 5), path ? path : "");
			if (!path || !key)
				return cove_error_set(err, ENOMEM, "out of memory");
			if (stat(key, &st) < 0)
				return cove_error_set(err, ENOENT,
						      "client certificate '%s' has no key '%s'",
						      path, key);
			c->client_cert = TAKE_PTR(path);
			c->client_key = TAKE_PTR(key);
			continue;
		}
		if (!has_suffix(de->d_name, ".crt"))
			continue;
		path = str_fmt("%s/%s", dir, de->d_name);
		if (!path)
			return cove_error_set(err, ENOMEM, "out of memory");
		r = read_file(path, CA_FILE_MAX, &data, &len);
		if (r < 0)
			return cove_error_set(err, r, "cannot read CA certificate '%s': %s", path,
					      strerror(-r));
		bio = BIO_new_mem_buf(data, (int)len);
		if (!bio)
			return cove_error_set(err, ENOMEM, "out of memory");
		for (;;) {
			X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
			if (!x)
				break;
			if (c->n_cas >= CA_MAX) {
				X509_free(x);
				BIO_free(bio);
				return cove_error_set(err, E2BIG,
						      "more than %d CA certificates for %s", CA_MAX,
						      c->host);
			}
			c->cas[c->n_cas++] = x;
			found++;
		}
		BIO_free(bio);
		ERR_clear_error();
		if (found == 0)
			return cove_error_set(err, EINVAL, "no PEM certificate in '%s'", path);
		debug("%zu CA certificate(s) from %s", found, path);
	}
	if (errno)
		return cove_error_set(err, errno, "cannot read '%s': %s", dir, strerror(errno));
	return 0;
}

static int lookup_credentials(const char *host, char **ret_user, char **ret_password,
			      char **ret_note, struct cove_error *err);

int registry_client_new(const char *host, const struct registry_opts *opts,
			struct registry_client **ret, struct cove_error *err)
{
	static const struct registry_opts defaults;
	struct registry_client *c;
	const char *const *roots;
	char bare[256], show[216];
	int r;

	if (!opts)
		opts = &defaults;
	if (!reference_host_is_valid(host))
		return cove_error_set(err, EINVAL, "invalid registry host '%s'",
				      host ? shown(host, strlen(host), show) : "");
	r = curl_dl_load(err);
	if (r < 0)
		return r;
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_result != CURLE_OK)
		return cove_error_set(err, EIO, "cannot initialise libcurl: %s",
				      curl_easy_strerror(curl_init_result));
	c = calloc(1, sizeof(*c));
	if (!c)
		return cove_error_set(err, ENOMEM, "out of memory");
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->pool_lock, NULL);
	for (size_t i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&c->share_locks[i], NULL);
	c->host = strdup(host);
	if (strcmp(host, REFERENCE_DOCKER_HUB) == 0 || strcmp(host, "index.docker.io") == 0)
		c->endpoint = strdup(REFERENCE_DOCKER_HUB_API);
	else
		c->endpoint = strdup(host);
	c->user_agent = opts->user_agent ? strdup(opts->user_agent) : strdup("cove/" COVE_VERSION);
	if (!c->host || !c->endpoint || !c->user_agent) {
		r = cove_error_set(err, ENOMEM, "out of memory");
		goto fail;
	}
	host_without_port(host, bare, sizeof(bare));
	c->loopback = is_loopback_host(bare);
	c->allow_http = opts->insecure || c->loopback;
	for (const char *const *p = opts->insecure_hosts; p && *p && !c->allow_http; p++)
		c->allow_http = strcasecmp(*p, host) == 0 || strcasecmp(*p, bare) == 0;
	c->connect_timeout_s = opts->connect_timeout_s ? opts->connect_timeout_s : 10;
	c->timeout_s = opts->timeout_s ? opts->timeout_s : 30;
	c->tries = opts->tries ? opts->tries : 4;
	c->retry_delay_ms = opts->retry_delay_ms ? opts->retry_delay_ms : 500;
	if (c->retry_delay_ms > BACKOFF_MAX_MS)
		c->retry_delay_ms = BACKOFF_MAX_MS;
	c->chunk_size = opts->chunk_size;

	if (opts->username && opts->password) {
		c->username = strdup(opts->username);
		c->password = strdup(opts->password);
		if (!c->username || !c->password) {
			r = cove_error_set(err, ENOMEM, "out of memory");
			goto fail;
		}
	} else if (!opts->anonymous) {
		r = lookup_credentials(host, &c->username, &c->password, &c->creds_note, err);
		if (r < 0)
			goto fail;
	}

	roots = opts->certs_dirs ? opts->certs_dirs : default_certs_dirs;
	for (const char *const *p = roots; *p; p++) {
		r = load_certs_dir(c, *p, c->host, err);
		if (r >= 0 && strcmp(c->endpoint, c->host) != 0)
			r = load_certs_dir(c, *p, c->endpoint, err);
		if (r < 0)
			goto fail;
	}
	if (c->n_cas > 0) {
		const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
		if (!v->ssl_version || strncmp(v->ssl_version, "OpenSSL", 7) != 0) {
			r = cove_error_set(
				err, EOPNOTSUPP,
				"extra CA certificates for %s need libcurl built with OpenSSL",
				host);
			goto fail;
		}
	}

	c->share = curl_share_init();
	if (!c->share) {
		r = cove_error_set(err, ENOMEM, "cannot create a curl share handle");
		goto fail;
	}
	curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	*ret = c;
	return 0;
fail:
	registry_client_free(c);
	return r;
}

void registry_client_free(struct registry_client *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_pool; i++)
		curl_easy_cleanup(c->pool[i]); /* before the share they use */
	if (c->share)
		curl_share_cleanup(c->share);
	for (size_t i = 0; i < TOKEN_CACHE_MAX; i++)
		token_entry_clear(&c->tokens[i]);
	for (size_t i = 0; i < c->n_cas; i++)
		X509_free(c->cas[i]);
	free(c->host);
	free(c->endpoint);
	free(c->username);
	free_secret(c->password);
	free(c->creds_note);
	free(c->user_agent);
	free(c->client_cert);
	free(c->client_key);
	free(c->base_url);
	free(c->realm);
	free(c->service);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->pool_lock);
	for (size_t i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&c->share_locks[i]);
	free(c);
}

const char *registry_client_host(const struct registry_client *c)
{
	return c->host;
}

/* ------------------------------------------------------------------ pull */

static char *make_scope(const char *repo, bool push, const char *from)
{
	if (from)
		return str_fmt("repository:%s:pull,push repository:%s:pull", repo, from);
	return str_fmt("repository:%s:%s", repo, push ? "pull,push" : "pull");
}

/* The media type from a Content-Type header, or the manifest's own mediaType. */
static char *manifest_media_type(const struct http_resp *resp, const struct buf *body)
{
	size_t n = strcspn(resp->content_type, ";");
	json_t *root;
	json_error_t jerr;
	char *mt = NULL;

	while (n > 0 && (resp->content_type[n - 1] == ' ' || resp->content_type[n - 1] == '\t'))
		n--;
	if (n > 0 && strncmp(resp->content_type, "application/octet-stream", n) != 0 &&
	    strncmp(resp->content_type, "text/plain", n) != 0 &&
	    strncmp(resp->content_type, "application/json", n) != 0)
		return str_dup_n(resp->content_type, n);
	root = json_loadb((const char *)body->data, body->len, 0, &jerr);
	if (json_is_string(json_object_get(root, "mediaType"))) {
		const char *v = json_string_value(json_object_get(root, "mediaType"));
		if (strlen(v) < 256)
			mt = strdup(v);
	}
	json_decref(root);
	if (!mt && n > 0)
		mt = str_dup_n(resp->content_type, n);
	return mt;
}

/* repo and ref (a tag, or a digest when it has a ':') of a manifest request. */
static int check_manifest_ref(const char *repo, const char *ref, bool *ret_by_digest,
			      struct cove_error *err)
{
	char show[216];
	bool by_digest;
	int r;

	r = check_repo(repo, err);
	if (r < 0)
		return r;
	by_digest = ref && strchr(ref, ':');
	if (!ref || (by_digest ? !digest_is_valid(ref) : !reference_tag_is_valid(ref)))
		return cove_error_set(err, EINVAL, "invalid tag or digest '%s'",
				      ref ? shown(ref, strlen(ref), show) : "");
	*ret_by_digest = by_digest;
	return 0;
}

int registry_get_manifest(struct registry_client *c, const char *repo, const char *ref,
			  struct buf *ret_body, char **ret_media_type,
			  char ret_digest[DIGEST_STRING_MAX], struct cove_error *err)
{
	static const char *const hdrs[] = { manifest_accept, NULL };
	_cleanup_free_ char *path = NULL, *scope = NULL, *subject = NULL, *media = NULL;
	struct buf body = BUF_INIT(MANIFEST_MAX_SIZE);
	struct http_resp resp = { 0 };
	char digest[DIGEST_STRING_MAX], show[216];
	bool by_digest;
	int r;

	r = check_manifest_ref(repo, ref, &by_digest, err);
	if (r < 0)
		return r;
	path = str_fmt("/v2/%s/manifests/%s", repo, ref);
	scope = make_scope(repo, false, NULL);
	subject = str_fmt("%s/%s%s%s", c->host, repo, by_digest ? "@" : ":", ref);
	if (!path || !scope || !subject)
		return cove_error_set(err, ENOMEM, "out of memory");
	{
		struct http_req req = { .method = "GET", .url = path, .hdrs = hdrs, .out = &body };
		r = request_retry(c, &req, scope, subject, &resp, err);
	}
	if (r == -EFBIG) {
		r = cove_error_set(err, EFBIG, "manifest %s is larger than %u MiB", subject,
				   MANIFEST_MAX_SIZE >> 20);
		goto out;
	}
	if (r < 0) {
		r = r == -ECANCELED ? cove_error_set(err, ENOMEM, "out of memory") : r;
		goto out;
	}
	if (resp.status != 200) {
		r = status_error(c, &resp, scope, subject, "manifest", err);
		goto out;
	}
	r = digest_buffer(body.data, body.len, digest);
	if (r < 0) {
		r = cove_error_set(err, r, "cannot hash manifest %s", subject);
		goto out;
	}
	if (resp.digest[0] && strncmp(resp.digest, "sha256:", 7) == 0 &&
	    strcmp(resp.digest, digest) != 0) {
		r = cove_error_set(err, EBADMSG,
				   "manifest %s does not match its Docker-Content-Digest %s (its "
				   "sha256 is %s)",
				   subject, shown(resp.digest, strlen(resp.digest), show), digest);
		goto out;
	}
	if (by_digest && strcmp(ref, digest) != 0) {
		r = cove_error_set(err, EBADMSG, "manifest %s has digest %s", subject, digest);
		goto out;
	}
	media = manifest_media_type(&resp, &body);
	if (ret_media_type) {
		if (!media) {
			r = cove_error_set(err, EPROTO, "manifest %s has no media type", subject);
			goto out;
		}
		*ret_media_type = TAKE_PTR(media);
	}
	if (ret_digest)
		memcpy(ret_digest, digest, DIGEST_STRING_MAX);
	buf_done(ret_body);
	*ret_body = body;
	body = (struct buf)BUF_INIT(0);
	r = 0;
out:
	buf_done(&body);
	resp_done(&resp);
	return r;
}

int registry_get_blob(struct registry_client *c, const char *repo, const char *digest,
		      uint64_t expected_size, registry_write_fn write, void *userdata,
		      uint64_t resume_offset, struct cove_error *err)
{
	_cleanup_free_ char *path = NULL, *scope = NULL, *subject = NULL;
	struct http_resp resp = { 0 };
	struct cove_error last = { 0 };
	uint64_t received = resume_offset;
	unsigned failures = 0, attempts = 0;
	bool known = expected_size != REGISTRY_SIZE_UNKNOWN;
	char show[216];
	int r;

	r = check_repo(repo, err);
	if (r >= 0)
		r = check_digest(digest, err);
	if (r < 0)
		return r;
	if (known && resume_offset > expected_size)
		return cove_error_set(err, EINVAL, "resume offset %llu is past the size of blob %s",
				      (unsigned long long)resume_offset, digest);
	if (known && resume_offset == expected_size)
		return 0;
	path = str_fmt("/v2/%s/blobs/%s", repo, digest);
	scope = make_scope(repo, false, NULL);
	subject = str_fmt("%s/%s@%s", c->host, repo, digest);
	if (!path || !scope || !subject)
		return cove_error_set(err, ENOMEM, "out of memory");

	/* An attempt that brought data does not count as a failure (up to 100 attempts). */
	while (failures < c->tries && attempts < 100) {
		struct http_req req = {
			.method = "GET",
			.url = path,
			.write = write,
			.write_ud = userdata,
			.limit = known ? expected_size - received : UINT64_MAX - received,
			.range_start = received,
			.skip = received,
		};
		struct cove_error e = { 0 };
		bool retry;

		if (attempts++ > 0) {
			unsigned ms = backoff_ms(c, failures ? failures : 1,
						 resp.status && !resp.cc ? &resp : NULL);
			debug("retrying %s from byte %llu", subject, (unsigned long long)received);
			sleep_ms(ms);
		}
		r = request_keep_url(c, &req, scope, subject, &resp, &e);
		received += resp.received;
		if (r == -EFBIG) {
			r = cove_error_set(err, EFBIG,
					   "blob %s is larger than the expected %llu bytes",
					   subject, (unsigned long long)expected_size);
			goto out;
		}
		if (r == -ECANCELED) {
			r = cove_error_set(err, resp.body_error, "cannot store blob %s: %s", digest,
					   strerror(-resp.body_error));
			goto out;
		}
		if (r == -EPROTO && resp.bad_range) {
			r = cove_error_set(
				err, EPROTO,
				"registry %s answered a request for blob %s from byte "
				"%llu with Content-Range '%s'",
				c->host, digest, (unsigned long long)req.range_start,
				shown(resp.content_range, sizeof(resp.content_range), show));
			goto out;
		}
		if (r < 0) {
			retry = e.code &&
				(transport_retryable(resp.cc) ||
				 (resp.cc == CURLE_OPERATION_TIMEDOUT && resp.received > 0));
			if (!retry) {
				r = fail_with(err, &e, r);
				goto out;
			}
			last = e;
		} else if (resp.status == 200 || resp.status == 206) {
			if (!known || received == expected_size) {
				r = 0;
				goto out;
			}
			/* the answer ended early without curl noticing (no Content-Length) */
			last = (struct cove_error){ 0 };
			cove_error_set(&last, EIO, "connection to registry %s ended early",
				       c->host);
		} else if (resp.status == 416 && known && received == expected_size) {
			r = 0;
			goto out;
		} else if (status_retryable(resp.status)) {
			last = (struct cove_error){ 0 };
			status_error(c, &resp, scope, subject, "blob", &last);
		} else {
			r = status_error(c, &resp, scope, subject, "blob", err);
			goto out;
		}
		if (resp.received == 0)
			failures++;
	}
	if (known && received < expected_size && received > resume_offset)
		r = cove_error_set(
			err, last.code ? last.code : EIO,
			"blob %s is incomplete: got %llu of %llu bytes after %u tries: %s", subject,
			(unsigned long long)received, (unsigned long long)expected_size, attempts,
			last.msg);
	else
		r = cove_error_set(err, last.code ? last.code : EIO, "%s", last.msg);
out:
	resp_done(&resp);
	return r;
}

struct fd_sink {
	int fd;
	uint64_t off;
	struct digest_hasher *h;
};

static int fd_sink_write(const void *data, size_t len, void *ud)
{
	struct fd_sink *s = ud;
	const uint8_t *p = data;
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(s->fd, p + done, len - done, (off_t)s->off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)n;
		s->off += (uint64_t)n;
	}
	return digest_hasher_update(s->h, data, len);
}

int registry_get_blob_to_fd(struct registry_client *c, const char *repo, const char *digest,
			    uint64_t expected_size, int fd, struct cove_error *err)
{
	_cleanup_digest_hasher_ struct digest_hasher *h = NULL;
	struct fd_sink sink = { .fd = fd };
	char got[DIGEST_STRING_MAX];
	uint8_t chunk[65536];
	struct stat st;
	int r;

	r = check_digest(digest, err);
	if (r < 0)
		return r;
	if (fstat(fd, &st) < 0)
		return cove_error_set(err, errno, "cannot stat the file for blob %s: %s", digest,
				      strerror(errno));
	r = digest_hasher_new(&h);
	if (r < 0)
		return cove_error_set(err, r, "cannot hash blob %s", digest);
	sink.h = h;
	/* hash what an earlier download left */
	while (sink.off < (uint64_t)st.st_size) {
		ssize_t n = pread(fd, chunk, sizeof(chunk), (off_t)sink.off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return cove_error_set(err, n < 0 ? errno : EIO,
					      "cannot read the partial blob %s: %s", digest,
					      n < 0 ? strerror(errno) : "unexpected end of file");
		digest_hasher_update(h, chunk, (size_t)n);
		sink.off += (uint64_t)n;
	}
	if (expected_size != REGISTRY_SIZE_UNKNOWN && sink.off > expected_size)
		return cove_error_set(err, EBADMSG, "partial blob %s is larger than %llu bytes",
				      digest, (unsigned long long)expected_size);
	r = registry_get_blob(c, repo, digest, expected_size, fd_sink_write, &sink, sink.off, err);
	if (r < 0)
		return r;
	r = digest_hasher_final(h, got);
	if (r < 0)
		return cove_error_set(err, r, "cannot hash blob %s", digest);
	if (strcmp(got, digest) != 0)
		return cove_error_set(err, EBADMSG, "blob %s/%s@%s has digest %s", c->host, repo,
				      digest, got);
	return 0;
}

struct blobs_run {
	struct registry_client *c;
	const char *repo;
	struct registry_blob_job *jobs;
	size_t n, next;
	bool failed;
	pthread_mutex_t lock;
};

static void *blobs_worker(void *ud)
{
	struct blobs_run *run = ud;

	for (;;) {
		struct registry_blob_job *j;

		pthread_mutex_lock(&run->lock);
		if (run->failed || run->next >= run->n) {
			pthread_mutex_unlock(&run->lock);
			return NULL;
		}
		j = &run->jobs[run->next++];
		pthread_mutex_unlock(&run->lock);
		memset(&j->err, 0, sizeof(j->err));
		j->result = registry_get_blob(run->c, run->repo, j->digest, j->size, j->write,
					      j->userdata, j->resume_offset, &j->err);
		if (j->result < 0) {
			pthread_mutex_lock(&run->lock);
			run->failed = true;
			pthread_mutex_unlock(&run->lock);
		}
	}
}

int registry_get_blobs(struct registry_client *c, const char *repo, struct registry_blob_job *jobs,
		       size_t n, unsigned parallel, struct cove_error *err)
{
	struct blobs_run run = { .c = c, .repo = repo, .jobs = jobs, .n = n };
	pthread_t threads[16];
	size_t started = 0;

	for (size_t i = 0; i < n; i++)
		jobs[i].result = 1; /* not run */
	if (parallel == 0)
		parallel = 1;
	if (parallel > ARRAY_SIZE(threads))
		parallel = ARRAY_SIZE(threads);
	if (parallel > n)
		parallel = (unsigned)n;
	pthread_mutex_init(&run.lock, NULL);
	for (unsigned i = 1; i < parallel; i++) {
		if (pthread_create(&threads[started], NULL, blobs_worker, &run) != 0)
			break;
		started++;
	}
	blobs_worker(&run); /* this thread works too */
	for (size_t i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	pthread_mutex_destroy(&run.lock);
	for (size_t i = 0; i < n; i++)
		if (jobs[i].result < 0)
			return fail_with(err, &jobs[i].err, jobs[i].result);
	for (size_t i = 0; i < n; i++)
		if (jobs[i].result > 0) /* cannot happen without a failure */
			return cove_error_set(err, ECANCELED, "blob %s was not downloaded",
					      jobs[i].digest);
	return 0;
}

/* ------------------------------------------------------------------ push */

int registry_blob_exists(struct registry_client *c, const char *repo, const char *digest,
			 uint64_t *ret_size, struct cove_error *err)
{
	_cleanup_free_ char *path = NULL, *scope = NULL, *subject = NULL;
	struct http_resp resp = { 0 };
	int r;

	r = check_repo(repo, err);
	if (r >= 0)
		r = check_digest(digest, err);
	if (r < 0)
		return r;
	path = str_fmt("/v2/%s/blobs/%s", repo, digest);
	scope = make_scope(repo, false, NULL);
	subject = str_fmt("%s/%s@%s", c->host, repo, digest);
	if (!path || !scope || !subject)
		return cove_error_set(err, ENOMEM, "out of memory");
	{
		struct http_req req = { .method = "HEAD", .url = path };
		r = request_retry(c, &req, scope, subject, &resp, err);
	}
	if (r < 0)
		goto out;
	if (resp.status == 200) {
		if (ret_size)
			*ret_size = resp.has_length ? resp.content_length : REGISTRY_SIZE_UNKNOWN;
		r = 1;
	} else if (resp.status == 404) {
		r = 0;
	} else {
		r = status_error(c, &resp, scope, subject, "blob", err);
	}
out:
	resp_done(&resp);
	return r;
}

/* The Location of an upload answer, resolved, or an error. */
static int upload_location(struct registry_client *c, const struct http_resp *resp, char **ret,
			   struct cove_error *err)
{
	char show[216];

	if (!resp->location[0])
		return cove_error_set(err, EPROTO,
				      "registry %s started an upload without a Location", c->host);
	if (resolve_url(c->base_url, resp->location, ret) < 0)
		return cove_error_set(err, EPROTO,
				      "registry %s sent an invalid upload Location '%s'", c->host,
				      shown(resp->location, strlen(resp->location), show));
	return 0;
}

static char *with_query(const char *url, const char *name, const char *value)
{
	char *e = curl_easy_escape(NULL, value, 0), *s;

	if (!e)
		return NULL;
	s = str_fmt("%s%c%s=%s", url, strchr(url, '?') ? '&' : '?', name, e);
	curl_free(e);
	return s;
}

/* PUT (or PATCH chunks, then PUT) size bytes to an upload session. One try; the caller retries
 * the whole upload. retryable tells whether that is worth it. */
static int upload_to(struct registry_client *c, const char *location, const char *digest,
		     uint64_t size, registry_read_fn read, void *ud, const char *scope,
		     const char *subject, bool *retryable, struct cove_error *err)
{
	static const char *const octet[] = { "Content-Type: application/octet-stream", NULL };
	_cleanup_free_ char *loc = strdup(location), *put = NULL;
	struct http_resp resp = { 0 };
	uint64_t off = 0;
	int r = 0;

	*retryable = false;
	if (!loc)
		return cove_error_set(err, ENOMEM, "out of memory");
	if (c->chunk_size > 0 && size > c->chunk_size) {
		while (off < size) {
			uint64_t n = size - off < c->chunk_size ? size - off : c->chunk_size;
			char range[64];
			const char *hdrs[] = { octet[0], range, NULL };
			struct http_req req = {
				.method = "PATCH",
				.url = loc,
				.hdrs = hdrs,
				.has_body = true,
				.read = read,
				.read_ud = ud,
				.body_off = off,
				.body_len = n,
			};
			char *next = NULL;

			snprintf(range, sizeof(range), "Content-Range: %llu-%llu",
				 (unsigned long long)off, (unsigned long long)(off + n - 1));
			r = request_keep_url(c, &req, scope, subject, &resp, err);
			if (r < 0) {
				*retryable = transport_retryable(resp.cc);
				goto out;
			}
			if (resp.status != 202) {
				*retryable = status_retryable(resp.status) || resp.status == 404;
				r = status_error(c, &resp, scope, subject, "blob upload", err);
				goto out;
			}
			r = upload_location(c, &resp, &next, err);
			if (r < 0)
				goto out;
			free(loc);
			loc = next;
			off += n;
		}
	}
	put = with_query(loc, "digest", digest);
	if (!put) {
		r = cove_error_set(err, ENOMEM, "out of memory");
		goto out;
	}
	{
		struct http_req req = {
			.method = "PUT",
			.url = put,
			.hdrs = octet,
			.has_body = true,
			.read = read,
			.read_ud = ud,
			.body_off = off,
			.body_len = size - off,
		};
		r = request_keep_url(c, &req, scope, subject, &resp, err);
	}
	if (r < 0) {
		*retryable = r != -ECANCELED && transport_retryable(resp.cc);
		if (r == -ECANCELED)
			r = cove_error_set(err, resp.body_error, "cannot read blob %s: %s", digest,
					   strerror(-resp.body_error));
		goto out;
	}
	if (resp.status != 201 && resp.status != 204 && resp.status != 200) {
		*retryable = status_retryable(resp.status) || resp.status == 404;
		r = status_error(c, &resp, scope, subject, "blob upload", err);
		goto out;
	}
	if (resp.digest[0] && strcmp(resp.digest, digest) != 0) {
		char show[216];
		r = cove_error_set(err, EBADMSG, "registry %s stored blob %s as %s", c->host,
				   digest, shown(resp.digest, strlen(resp.digest), show));
		goto out;
	}
	r = 0;
out:
	resp_done(&resp);
	return r;
}

/* POST an upload (optionally a mount) then upload; retried as a whole. Returns 1 if mounted. */
static int push_blob(struct registry_client *c, const char *repo, const char *digest,
		     const char *from, uint64_t size, registry_read_fn read, void *ud,
		     struct cove_error *err)
{
	_cleanup_free_ char *path = NULL, *scope = NULL, *subject = NULL;
	struct http_resp resp = { 0 };
	int r;

	r = check_repo(repo, err);
	if (r >= 0 && from)
		r = check_repo(from, err);
	if (r >= 0)
		r = check_digest(digest, err);
	if (r < 0)
		return r;
	if (from) {
		_cleanup_free_ char *d = curl_easy_escape(NULL, digest, 0);
		_cleanup_free_ char *f = curl_easy_escape(NULL, from, 0);
		path = d && f ? str_fmt("/v2/%s/blobs/uploads/?mount=%s&from=%s", repo, d, f)
			      : NULL;
	} else {
		path = str_fmt("/v2/%s/blobs/uploads/", repo);
	}
	scope = make_scope(repo, true, from);
	subject = str_fmt("%s/%s", c->host, repo);
	if (!path || !scope || !subject)
		return cove_error_set(err, ENOMEM, "out of memory");
	for (unsigned attempt = 1;; attempt++) {
		_cleanup_free_ char *loc = NULL;
		struct http_req req = { .method = "POST", .url = path };
		struct cove_error e = { 0 };
		bool retryable = false;

		r = request_keep_url(c, &req, scope, subject, &resp, &e);
		if (r < 0) {
			retryable = transport_retryable(resp.cc);
		} else if (resp.status == 201 && from) {
			r = 1;
			goto out;
		} else if (resp.status != 202) {
			retryable = status_retryable(resp.status);
			r = status_error(c, &resp, scope, subject, "blob upload", &e);
		} else {
			r = upload_location(c, &resp, &loc, &e);
			if (r >= 0 && !read) {
				/* a declined mount without a source: cancel the session */
				struct http_req del = { .method = "DELETE", .url = loc };
				struct cove_error ignored = { 0 };
				(void)request_keep_url(c, &del, scope, subject, &resp, &ignored);
				r = 0;
				goto out;
			}
			if (r >= 0)
				r = upload_to(c, loc, digest, size, read, ud, scope, subject,
					      &retryable, &e);
			if (r >= 0) {
				r = 0;
				goto out;
			}
		}
		if (!retryable || attempt >= c->tries) {
			fail_with(err, &e, r);
			r = cove_error_prefix(err, "cannot push blob %s", digest);
			goto out;
		}
		sleep_ms(backoff_ms(c, attempt, NULL));
	}
out:
	resp_done(&resp);
	return r;
}

int registry_blob_upload(struct registry_client *c, const char *repo, const char *digest,
			 uint64_t size, registry_read_fn read, void *userdata,
			 struct cove_error *err)
{
	if (!read)
		return cove_error_set(err, EINVAL, "blob upload without a source");
	return push_blob(c, repo, digest, NULL, size, read, userdata, err);
}

static ssize_t fd_read(void *buf, size_t len, uint64_t offset, void *ud)
{
	int fd = *(int *)ud;

	for (;;) {
		ssize_t n = pread(fd, buf, len, (off_t)offset);
		if (n >= 0)
			return n;
		if (errno != EINTR)
			return -errno;
	}
}

int registry_blob_upload_fd(struct registry_client *c, const char *repo, const char *digest,
			    uint64_t size, int fd, struct cove_error *err)
{
	return push_blob(c, repo, digest, NULL, size, fd_read, &fd, err);
}

int registry_blob_mount(struct registry_client *c, const char *repo, const char *digest,
			const char *from, uint64_t size, registry_read_fn read, void *userdata,
			struct cove_error *err)
{
	if (!from)
		return cove_error_set(err, EINVAL, "blob mount without a source repository");
	return push_blob(c, repo, digest, from, size, read, userdata, err);
}

int registry_put_manifest(struct registry_client *c, const char *repo, const char *ref,
			  const void *body, size_t len, const char *media_type,
			  char ret_digest[DIGEST_STRING_MAX], struct cove_error *err)
{
	_cleanup_free_ char *path = NULL, *scope = NULL, *subject = NULL, *ctype = NULL;
	struct http_resp resp = { 0 };
	char digest[DIGEST_STRING_MAX], show[216];
	bool by_digest;
	int r;

	r = check_manifest_ref(repo, ref, &by_digest, err);
	if (r < 0)
		return r;
	if (len > MANIFEST_MAX_SIZE)
		return cove_error_set(err, EFBIG, "manifest is larger than %u MiB",
				      MANIFEST_MAX_SIZE >> 20);
	if (!media_type || !*media_type || strlen(media_type) > 255 || strpbrk(media_type, "\r\n"))
		return cove_error_set(err, EINVAL, "invalid manifest media type");
	r = digest_buffer(body, len, digest);
	if (r < 0)
		return cove_error_set(err, r, "cannot hash the manifest");
	if (by_digest && strcmp(ref, digest) != 0)
		return cove_error_set(err, EINVAL, "manifest has digest %s, not %s", digest, ref);
	path = str_fmt("/v2/%s/manifests/%s", repo, ref);
	scope = make_scope(repo, true, NULL);
	subject = str_fmt("%s/%s%s%s", c->host, repo, by_digest ? "@" : ":", ref);
	ctype = str_fmt("Content-Type: %s", media_type);
	if (!path || !scope || !subject || !ctype)
		return cove_error_set(err, ENOMEM, "out of memory");
	{
		const char *hdrs[] = { ctype, NULL };
		struct http_req req = { .method = "PUT",
					.url = path,
					.hdrs = hdrs,
					.has_body = true,
					.body = body,
					.body_len = len };
		r = request_retry(c, &req, scope, subject, &resp, err);
	}
	if (r < 0)
		goto out;
	if (resp.status != 201 && resp.status != 200 && resp.status != 204) {
		r = status_error(c, &resp, scope, subject, "manifest", err);
		goto out;
	}
	if (resp.digest[0] && strcmp(resp.digest, digest) != 0) {
		r = cove_error_set(err, EBADMSG, "registry %s stored manifest %s as %s", c->host,
				   digest, shown(resp.digest, strlen(resp.digest), show));
		goto out;
	}
	if (ret_digest)
		memcpy(ret_digest, digest, DIGEST_STRING_MAX);
	r = 0;
out:
	resp_done(&resp);
	return r;
}

int registry_check_login(struct registry_client *c, struct cove_error *err)
{
	struct http_resp resp = { 0 };
	enum auth_mode mode;
	int r;

	if (!c->username)
		return cove_error_set(err, EINVAL, "no credentials for %s", c->host);
	r = ensure_endpoint(c, err);
	if (r < 0)
		return r;
	pthread_mutex_lock(&c->lock);
	mode = c->mode;
	if (mode == AUTH_BEARER) {
		char *hdr = NULL;
		uint64_t exp;
		r = fetch_token(c, NULL, c->host, &hdr, &exp, err);
		free_secret(hdr);
	}
	pthread_mutex_unlock(&c->lock);
	if (mode != AUTH_BASIC)
		return r < 0 ? cove_error_prefix(err, "login to %s failed", c->host) : 0;
	{
		struct http_req req = { .method = "GET", .url = "/v2/" };
		r = request_retry(c, &req, NULL, c->host, &resp, err);
	}
	if (r >= 0 && resp.status != 200)
		r = status_error(c, &resp, NULL, c->host, NULL, err);
	resp_done(&resp);
	return r < 0 ? cove_error_prefix(err, "login to %s failed", c->host) : 0;
}

/* ------------------------------------------------------------------ credentials */

static char *docker_config_path(void)
{
	const char *dir = getenv("DOCKER_CONFIG"), *home;

	if (dir && *dir)
		return str_fmt("%s/config.json", dir);
	home = getenv("HOME");
	if (!home || !*home) {
		struct passwd *pw = getpwuid(getuid());
		home = pw ? pw->pw_dir : NULL;
	}
	return home ? str_fmt("%s/.docker/config.json", home) : NULL;
}

static bool is_docker_hub(const char *h, size_t n)
{
	return (n == 9 && strncasecmp(h, "docker.io", 9) == 0) ||
	       (n == 15 && strncasecmp(h, "index.docker.io", 15) == 0) ||
	       (n == 20 && strncasecmp(h, "registry-1.docker.io", 20) == 0);
}

/* An auths key ("host", "https://host/v1/") names host? */
static bool auth_key_matches(const char *key, const char *host)
{
	size_t n;

	if (strncasecmp(key, "https://", 8) == 0)
		key += 8;
	else if (strncasecmp(key, "http://", 7) == 0)
		key += 7;
	n = strcspn(key, "/");
	if (is_docker_hub(host, strlen(host)))
		return is_docker_hub(key, n);
	return n == strlen(host) && strncasecmp(key, host, n) == 0;
}

/* Parse an auth file; ENOENT = empty. */
static int load_auth_file(const char *path, json_t **ret, struct cove_error *err)
{
	_cleanup_free_ char *data = NULL;
	json_error_t jerr;
	size_t len = 0;
	json_t *root;
	int r;

	r = read_file(path, AUTH_FILE_MAX, &data, &len);
	if (r == -ENOENT) {
		*ret = NULL;
		return 0;
	}
	if (r < 0)
		return cove_error_set(err, r, "cannot read '%s': %s", path,
				      r == -EFBIG ? "larger than 1 MiB" : strerror(-r));
	root = json_loadb(data, len, 0, &jerr);
	explicit_bzero(data, len);
	if (!root)
		return cove_error_set(err, EINVAL, "invalid JSON in '%s': line %d: %s", path,
				      jerr.line, jerr.text);
	if (!json_is_object(root)) {
		json_decref(root);
		return cove_error_set(err, EINVAL, "'%s' is not a JSON object", path);
	}
	*ret = root;
	return 0;
}

static int lookup_in_file(const char *path, const char *host, char **ret_user, char **ret_password,
			  char **ret_note, struct cove_error *err)
{
	json_t *root = NULL, *auths, *helpers, *v;
	const char *key, *store;
	int r;

	r = load_auth_file(path, &root, err);
	if (r < 0 || !root)
		return r;
	helpers = json_object_get(root, "credHelpers");
	json_object_foreach(helpers, key, v)
	{
		if (auth_key_matches(key, host) && json_is_string(v)) {
			char show[216];
			const char *helper = json_string_value(v);
			r = cove_error_set(
				err, EOPNOTSUPP,
				"credential helper 'docker-credential-%s' for %s (credHelpers "
				"in '%s') is not supported; remove it and log in with 'cove "
				"registry login %s'",
				shown(helper, strlen(helper), show), host, path, host);
			goto out;
		}
	}
	r = 0;
	auths = json_object_get(root, "auths");
	json_object_foreach(auths, key, v)
	{
		const char *auth = json_string_value(json_object_get(v, "auth"));
		const char *user = json_string_value(json_object_get(v, "username"));
		const char *pass = json_string_value(json_object_get(v, "password"));

		if (!auth_key_matches(key, host))
			continue;
		if (auth && *auth) {
			char *dec = NULL, *colon;
			size_t n;

			if (b64_decode(auth, &dec, &n) < 0 || !(colon = strchr(dec, ':')) ||
			    colon == dec) {
				free_secret(dec);
				r = cove_error_set(err, EINVAL,
						   "invalid \"auth\" for %s in '%s' (not base64 of "
						   "user:password)",
						   host, path);
				goto out;
			}
			*ret_user = str_dup_n(dec, (size_t)(colon - dec));
			*ret_password = strdup(colon + 1);
			free_secret(dec);
		} else if (user && *user && pass) {
			*ret_user = strdup(user);
			*ret_password = strdup(pass);
		} else {
			if (json_object_get(v, "identitytoken") && !*ret_note)
				*ret_note =
					str_fmt("identity tokens ('%s') are not supported", path);
			continue;
		}
		if (!*ret_user || !*ret_password) {
			free(*ret_user);
			free_secret(*ret_password);
			*ret_user = *ret_password = NULL;
			r = cove_error_set(err, ENOMEM, "out of memory");
			goto out;
		}
		debug("credentials for %s from %s", host, path);
		r = 1;
		goto out;
	}
	store = json_string_value(json_object_get(root, "credsStore"));
	if (store && *store && !*ret_note) {
		char show[216];
		*ret_note = str_fmt("credential helper 'docker-credential-%s' (credsStore in '%s') "
				    "is not supported; log in with 'cove registry login %s'",
				    shown(store, strlen(store), show), path, host);
	}
out:
	json_decref(root);
	return r;
}

static int lookup_credentials(const char *host, char **ret_user, char **ret_password,
			      char **ret_note, struct cove_error *err)
{
	const char *env = getenv("REGISTRY_AUTH_FILE"), *xdg = getenv("XDG_RUNTIME_DIR");
	_cleanup_free_ char *docker = docker_config_path();
	_cleanup_free_ char *podman = xdg && *xdg ? str_fmt("%s/containers/auth.json", xdg) : NULL;
	const char *files[] = { env && *env ? env : NULL, docker, podman };
	char *user = NULL, *pass = NULL, *note = NULL;
	int r = 0;

	for (size_t i = 0; i < ARRAY_SIZE(files) && r == 0; i++)
		if (files[i])
			r = lookup_in_file(files[i], host, &user, &pass, &note, err);
	if (r > 0) {
		free(note);
		*ret_user = user;
		*ret_password = pass;
		return 1;
	}
	if (r == 0 && ret_note)
		*ret_note = note;
	else
		free(note);
	return r;
}

int registry_credentials_lookup(const char *host, char **ret_user, char **ret_password,
				struct cove_error *err)
{
	return lookup_credentials(host, ret_user, ret_password, NULL, err);
}

/* Write root to path atomically (0600), creating its directory (0700). */
static int write_auth_file(const char *path, json_t *root, struct cove_error *err)
{
	_cleanup_free_ char *dir = NULL, *tmp = NULL, *real = NULL;
	_cleanup_close_ int fd = -1, dfd = -1;
	const char *target = path;
	char *text, *slash;
	int r;

	real = realpath(path, NULL); /* write beside a symlink's target */
	if (real)
		target = real;
	dir = strdup(target);
	tmp = str_fmt("%s.XXXXXX", target);
	if (!dir || !tmp)
		return cove_error_set(err, ENOMEM, "out of memory");
	slash = strrchr(dir, '/');
	if (slash && slash != dir)
		*slash = '\0';
	else if (slash)
		slash[1] = '\0';
	else
		memcpy(dir, ".", 2); /* target is at least one character long */
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return cove_error_set(err, errno, "cannot create '%s': %s", dir, strerror(errno));
	text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (!text)
		return cove_error_set(err, ENOMEM, "cannot encode '%s'", path);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		r = cove_error_set(err, errno, "cannot create '%s': %s", tmp, strerror(errno));
		goto out;
	}
	if (fchmod(fd, 0600) < 0 || write_full(fd, text, strlen(text)) < 0 ||
	    write_full(fd, "\n", 1) < 0 || fsync(fd) < 0) {
		r = cove_error_set(err, errno ? errno : EIO, "cannot write '%s': %s", tmp,
				   strerror(errno ? errno : EIO));
		unlink(tmp);
		goto out;
	}
	if (rename(tmp, target) < 0) {
		r = cove_error_set(err, errno, "cannot replace '%s': %s", target, strerror(errno));
		unlink(tmp);
		goto out;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0)
		(void)fsync(dfd);
	r = 0;
out:
	explicit_bzero(text, strlen(text));
	free(text);
	return r;
}

/* Remove every auths key naming host; returns how many. */
static size_t remove_auth_keys(json_t *auths, const char *host)
{
	const char *key;
	json_t *v;
	void *tmp;
	size_t n = 0;

	json_object_foreach_safe(auths, tmp, key, v)
	{
		if (auth_key_matches(key, host)) {
			json_object_del(auths, key);
			n++;
		}
	}
	return n;
}

int registry_credentials_store(const char *host, const char *user, const char *password,
			       struct cove_error *err)
{
	_cleanup_free_ char *path = docker_config_path(), *pair = NULL, *b64 = NULL;
	json_t *root = NULL, *auths, *entry;
	int r;

	if (!reference_host_is_valid(host))
		return cove_error_set(err, EINVAL, "invalid registry host");
	if (!user || !*user || strchr(user, ':') || strlen(user) > 1024 || !password ||
	    strlen(password) > 2048)
		return cove_error_set(err, EINVAL,
				      "invalid user name or password (a user name may not be "
				      "empty or contain ':')");
	if (!path)
		return cove_error_set(err, ENOENT, "cannot find the home directory");
	r = load_auth_file(path, &root, err);
	if (r < 0)
		return r;
	if (!root)
		root = json_object();
	auths = json_object_get(root, "auths");
	if (!auths) {
		auths = json_object();
		if (json_object_set_new(root, "auths", auths) < 0)
			auths = NULL;
	}
	if (!json_is_object(auths)) {
		r = cove_error_set(err, EINVAL, "\"auths\" in '%s' is not an object", path);
		goto out;
	}
	remove_auth_keys(auths, host);
	pair = str_fmt("%s:%s", user, password);
	if (!pair || b64_encode(pair, strlen(pair), &b64) < 0) {
		r = cove_error_set(err, ENOMEM, "out of memory");
		goto out;
	}
	entry = json_pack("{s:s}", "auth", b64);
	if (!entry ||
	    json_object_set_new(
		    auths, is_docker_hub(host, strlen(host)) ? "https://index.docker.io/v1/" : host,
		    entry) < 0) {
		r = cove_error_set(err, ENOMEM, "out of memory");
		goto out;
	}
	r = write_auth_file(path, root, err);
out:
	if (pair)
		explicit_bzero(pair, strlen(pair));
	if (b64)
		explicit_bzero(b64, strlen(b64));
	json_decref(root);
	return r;
}

int registry_credentials_remove(const char *host, struct cove_error *err)
{
	_cleanup_free_ char *path = docker_config_path();
	json_t *root = NULL;
	int r;

	if (!path)
		return cove_error_set(err, ENOENT, "cannot find the home directory");
	r = load_auth_file(path, &root, err);
	if (r < 0 || !root)
		return r;
	if (remove_auth_keys(json_object_get(root, "auths"), host) == 0) {
		json_decref(root);
		return 0;
	}
	r = write_auth_file(path, root, err);
	json_decref(root);
	return r < 0 ? r : 1;
}
