/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of src/image/registry: the challenge parser and the auth files offline, then the client
 * against real registries on 127.0.0.1 started with tests/registry/start.sh (docker-registry
 * plain, basic, token, tls; badserver.py for the error paths), images pushed with skopeo.
 *
 *     test_registry [SOURCE_ROOT]     (default: $COVE_SOURCE_ROOT, ., .., ../..)
 *
 * The integration part is skipped (one "ok - ... # SKIP" line) without docker-registry or skopeo.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "image/digest.h"
#include "image/registry.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/util.h"
#include "test.h"

extern char **environ;

static char tmp_root[64];
static char src_root[4096];

/* ------------------------------------------------------------------ helpers */

static int run(const char *const argv[])
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int status;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, 2, 1); /* keep stdout for test lines */
	if (posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return -1;
	}
	posix_spawn_file_actions_destroy(&fa);
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* Start several commands at once and wait for all; 0 when all succeeded. */
static int run_all(const char *const *argvs[], size_t n)
{
	pid_t pids[16];
	int bad = 0;

	for (size_t i = 0; i < n; i++) {
		posix_spawn_file_actions_t fa;

		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, 2, 1);
		if (posix_spawnp(&pids[i], argvs[i][0], &fa, NULL, (char *const *)argvs[i],
				 environ) != 0)
			pids[i] = -1;
		posix_spawn_file_actions_destroy(&fa);
	}
	for (size_t i = 0; i < n; i++) {
		int status;
		if (pids[i] < 0 || waitpid(pids[i], &status, 0) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0) {
			printf("# failed: %s %s %s\n", argvs[i][0], argvs[i][1], argvs[i][2]);
			bad = 1;
		}
	}
	return bad ? -1 : 0;
}

struct env {
	char dir[256];
	char registry[64], user[64], password[64], certs_dir[256], token_log[256], storage[64];
	char digest[80]; /* of x/busybox:v1 */
};

static struct env plain, basic, token, tls, bad;

static void read_env(struct env *e)
{
	char path[512], line[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/env", e->dir);
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *eq = strchr(line, '='), *v;
		line[strcspn(line, "\n")] = '\0';
		if (!eq)
			continue;
		*eq = '\0';
		v = eq + 1;
		if (strcmp(line, "REGISTRY") == 0)
			str_copy(e->registry, sizeof(e->registry), v);
		else if (strcmp(line, "REGISTRY_USER") == 0)
			str_copy(e->user, sizeof(e->user), v);
		else if (strcmp(line, "REGISTRY_PASSWORD") == 0)
			str_copy(e->password, sizeof(e->password), v);
		else if (strcmp(line, "REGISTRY_CERTS_DIR") == 0)
			str_copy(e->certs_dir, sizeof(e->certs_dir), v);
		else if (strcmp(line, "TOKEN_LOG") == 0)
			str_copy(e->token_log, sizeof(e->token_log), v);
		else if (strcmp(line, "STORAGE") == 0)
			str_copy(e->storage, sizeof(e->storage), v);
	}
	fclose(f);
	snprintf(path, sizeof(path), "%s/digest", e->dir);
	f = fopen(path, "re");
	if (f) {
		if (fgets(e->digest, sizeof(e->digest), f))
			e->digest[strcspn(e->digest, "\n")] = '\0';
		fclose(f);
	}
}

static int count_lines(const char *path)
{
	char line[4096];
	int n = 0;
	FILE *f = fopen(path, "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n++;
	fclose(f);
	return n;
}

static bool file_contains(const char *path, const char *s)
{
	_cleanup_free_ char *data = NULL;

	return read_file(path, 1 << 20, &data, NULL) == 0 && strstr(data, s);
}

struct mem_sink {
	struct buf b;
};

static int mem_write(const void *data, size_t len, void *ud)
{
	struct mem_sink *s = ud;

	return buf_append(&s->b, data, len);
}

struct mem_src {
	const uint8_t *data;
	size_t len;
	unsigned reads;
};

static ssize_t mem_read(void *buf, size_t len, uint64_t off, void *ud)
{
	struct mem_src *s = ud;

	s->reads++;
	if (off >= s->len)
		return 0;
	if (len > s->len - off)
		len = s->len - (size_t)off;
	memcpy(buf, s->data + off, len);
	return (ssize_t)len;
}

static struct registry_client *client(const struct env *e, const struct registry_opts *o)
{
	struct registry_opts opts = o ? *o : (struct registry_opts){ 0 };
	struct registry_client *c = NULL;
	struct cove_error err = { 0 };
	const char *none[] = { "/nonexistent", NULL };

	if (!opts.certs_dirs)
		opts.certs_dirs = none;
	if (!opts.tries)
		opts.tries = 3;
	if (!opts.retry_delay_ms)
		opts.retry_delay_ms = 20;
	if (registry_client_new(e->registry, &opts, &c, &err) < 0)
		printf("# client for %s: %s\n", e->registry, err.msg);
	return c;
}

static void free_clientp(struct registry_client **c)
{
	registry_client_free(*c);
}
#define _cleanup_client_ _cleanup_(free_clientp)

/* GET a badserver counter: /_count or /_sent for path. */
static long bad_counter(const char *which, const char *path)
{
	char url[512], body[32] = "";
	CURL *h = curl_easy_init();
	long v = -1;

	snprintf(url, sizeof(url), "http://%s/%s?p=%s", bad.registry, which, path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, (curl_write_callback)NULL);
	{
		FILE *f = fmemopen(body, sizeof(body) - 1, "w");
		curl_easy_setopt(h, CURLOPT_WRITEDATA, f);
		if (curl_easy_perform(h) == CURLE_OK) {
			fflush(f);
			v = strtol(body, NULL, 10);
		}
		fclose(f);
	}
	curl_easy_cleanup(h);
	return v;
}

/* The test image's manifest, as fetched: its config and layers. */
struct image {
	struct buf manifest;
	char *media_type;
	char digest[DIGEST_STRING_MAX];
	size_t n;
	char blob_digest[4][DIGEST_STRING_MAX];
	uint64_t blob_size[4];
};

static void image_done(struct image *im)
{
	buf_done(&im->manifest);
	free(im->media_type);
	memset(im, 0, sizeof(*im));
}

static int parse_image(struct image *im)
{
	json_t *root = json_loadb((const char *)im->manifest.data, im->manifest.len, 0, NULL);
	json_t *layers, *l;
	size_t i;

	if (!root)
		return -1;
	im->n = 0;
	str_copy(im->blob_digest[0], DIGEST_STRING_MAX,
		 json_string_value(json_object_get(json_object_get(root, "config"), "digest")));
	im->blob_size[0] = (uint64_t)json_integer_value(
		json_object_get(json_object_get(root, "config"), "size"));
	im->n = 1;
	layers = json_object_get(root, "layers");
	json_array_foreach(layers, i, l)
	{
		if (im->n >= 4)
			break;
		str_copy(im->blob_digest[im->n], DIGEST_STRING_MAX,
			 json_string_value(json_object_get(l, "digest")));
		im->blob_size[im->n] = (uint64_t)json_integer_value(json_object_get(l, "size"));
		im->n++;
	}
	json_decref(root);
	return 0;
}

/* Pull x/busybox:v1's manifest and all blobs (2 in parallel) and check their digests. */
static void pull_image(struct registry_client *c, const struct env *e, const char *ref)
{
	struct image im = { .manifest = BUF_INIT(0) };
	struct mem_sink sinks[4];
	struct registry_blob_job jobs[4];
	struct cove_error err = { 0 };
	int r;

	r = registry_get_manifest(c, "x/busybox", ref, &im.manifest, &im.media_type, im.digest,
				  &err);
	if (r < 0)
		printf("# %s\n", err.msg);
	CHECK_EQ_INT(r, 0);
	if (r < 0)
		return;
	CHECK_EQ_STR(im.media_type, MEDIA_TYPE_OCI_MANIFEST);
	CHECK_EQ_STR(im.digest, e->digest);
	CHECK_EQ_INT(parse_image(&im), 0);
	CHECK_EQ_INT(im.n, 3);
	memset(jobs, 0, sizeof(jobs));
	for (size_t i = 0; i < im.n; i++) {
		sinks[i].b = BUF_INIT(16 << 20);
		jobs[i].digest = im.blob_digest[i];
		jobs[i].size = im.blob_size[i];
		jobs[i].write = mem_write;
		jobs[i].userdata = &sinks[i];
	}
	r = registry_get_blobs(c, "x/busybox", jobs, im.n, 2, &err);
	if (r < 0)
		printf("# %s\n", err.msg);
	CHECK_EQ_INT(r, 0);
	for (size_t i = 0; i < im.n; i++) {
		char d[DIGEST_STRING_MAX];
		CHECK_EQ_INT(jobs[i].result, 0);
		CHECK_EQ_INT(sinks[i].b.len, im.blob_size[i]);
		digest_buffer(sinks[i].b.data, sinks[i].b.len, d);
		CHECK_EQ_STR(d, im.blob_digest[i]);
		buf_done(&sinks[i].b);
	}
	image_done(&im);
}

/* ------------------------------------------------------------------ offline */

TEST(challenge_bearer)
{
	struct registry_challenge ch;

	CHECK_EQ_INT(
		registry_parse_challenge(
			"Bearer "
			"realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
			"scope=\"repository:samalba/my-app:pull,push\"",
			&ch),
		0);
	CHECK_EQ_INT(ch.scheme, REGISTRY_AUTH_BEARER);
	CHECK_EQ_STR(ch.realm, "https://auth.docker.io/token");
	CHECK_EQ_STR(ch.service, "registry.docker.io");
	CHECK_EQ_STR(ch.scope, "repository:samalba/my-app:pull,push");
	CHECK_EQ_INT(registry_parse_challenge(
			     "bearer  realm = \"http://x/t\" , error=\"insufficient_scope\"", &ch),
		     0);
	CHECK_EQ_INT(ch.scheme, REGISTRY_AUTH_BEARER);
	CHECK_EQ_STR(ch.realm, "http://x/t");
	CHECK_EQ_STR(ch.error, "insufficient_scope");
	CHECK_EQ_STR(ch.service, "");
}

TEST(challenge_basic_and_lists)
{
	struct registry_challenge ch;

	CHECK_EQ_INT(registry_parse_challenge("Basic realm=\"Registry Realm\"", &ch), 0);
	CHECK_EQ_INT(ch.scheme, REGISTRY_AUTH_BASIC);
	CHECK_EQ_STR(ch.realm, "Registry Realm");
	/* two challenges in one header: Bearer wins, whatever the order */
	CHECK_EQ_INT(
		registry_parse_challenge("Basic realm=\"a\", Bearer realm=\"b\",service=s", &ch),
		0);
	CHECK_EQ_INT(ch.scheme, REGISTRY_AUTH_BEARER);
	CHECK_EQ_STR(ch.realm, "b");
	CHECK_EQ_STR(ch.service, "s");
	CHECK_EQ_INT(registry_parse_challenge("Negotiate, Basic realm=x", &ch), 0);
	CHECK_EQ_INT(ch.scheme, REGISTRY_AUTH_BASIC);
	CHECK_EQ_INT(registry_parse_challenge("Negotiate", &ch), 0);
	CHECK_EQ_INT(ch.scheme, REGISTRY_AUTH_NONE);
	/* quoted-pair escapes */
	CHECK_EQ_INT(registry_parse_challenge("Basic realm=\"a\\\"b\\\\c\"", &ch), 0);
	CHECK_EQ_STR(ch.realm, "a\"b\\c");
}

TEST(challenge_malformed)
{
	struct registry_challenge ch;
	char big[2048];

	CHECK_EQ_INT(registry_parse_challenge("Bearer realm=\"unterminated", &ch), -EINVAL);
	CHECK_EQ_INT(registry_parse_challenge("Bearer realm=\"a\" junk", &ch), -EINVAL);
	CHECK_EQ_INT(registry_parse_challenge("Bearer =x", &ch), -EINVAL);
	CHECK_EQ_INT(registry_parse_challenge("\"", &ch), -EINVAL);
	CHECK_EQ_INT(registry_parse_challenge(NULL, &ch), -EINVAL);
	/* a realm over its buffer is refused, not truncated */
	memcpy(big, "Bearer realm=\"", 14);
	memset(big + 14, 'a', 1100);
	memcpy(big + 1114, "\"", 2);
	CHECK_EQ_INT(registry_parse_challenge(big, &ch), -EINVAL);
	/* a service over its 256 bytes too */
	memcpy(big, "Bearer service=", 15);
	memset(big + 15, 'b', 300);
	big[315] = '\0';
	CHECK_EQ_INT(registry_parse_challenge(big, &ch), -EINVAL);
}

static void write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd >= 0) {
		(void)write_full(fd, text, strlen(text));
		close(fd);
	}
}

TEST(credentials_files)
{
	char dir[256], cfg[300], auth[300], json[1024];
	_cleanup_free_ char *data = NULL;
	struct cove_error err = { 0 };
	char *u = NULL, *p = NULL;
	struct stat st;

	snprintf(dir, sizeof(dir), "%s/docker", tmp_root);
	snprintf(cfg, sizeof(cfg), "%s/config.json", dir);
	snprintf(auth, sizeof(auth), "%s/auth.json", tmp_root);
	setenv("DOCKER_CONFIG", dir, 1);
	unsetenv("REGISTRY_AUTH_FILE");
	unsetenv("XDG_RUNTIME_DIR");

	/* nothing yet */
	CHECK_EQ_INT(registry_credentials_lookup("127.0.0.1:5000", &u, &p, &err), 0);
	/* store creates the dir and file 0600, keeps other keys */
	CHECK_EQ_INT(registry_credentials_store("127.0.0.1:5000", "alice", "s3cr:et", &err), 0);
	CHECK_EQ_INT(stat(cfg, &st), 0);
	CHECK_EQ_INT(st.st_mode & 0777, 0600);
	CHECK_EQ_INT(registry_credentials_lookup("127.0.0.1:5000", &u, &p, &err), 1);
	CHECK_EQ_STR(u, "alice");
	CHECK_EQ_STR(p, "s3cr:et");
	free(u);
	free(p);
	u = p = NULL;
	write_text(cfg, "{\"auths\": {\"https://127.0.0.1:5000/v1/\": {\"auth\": \"Ym9iOnB3\"}},"
			" \"detachKeys\": \"ctrl-x\", \"proxies\": {\"default\": {}}}");
	CHECK_EQ_INT(registry_credentials_lookup("127.0.0.1:5000", &u, &p, &err), 1);
	CHECK_EQ_STR(u, "bob");
	CHECK_EQ_STR(p, "pw");
	free(u);
	free(p);
	u = p = NULL;
	CHECK_EQ_INT(registry_credentials_store("docker.io", "carol", "pw2", &err), 0);
	CHECK_EQ_INT(registry_credentials_store("127.0.0.1:5000", "dave", "pw3", &err), 0);
	CHECK_EQ_INT(read_file(cfg, 1 << 20, &data, NULL), 0);
	CHECK(data && strstr(data, "\"detachKeys\": \"ctrl-x\""));
	CHECK(data && strstr(data, "\"proxies\""));
	CHECK(data && strstr(data, "https://index.docker.io/v1/"));
	/* the old https://127.0.0.1:5000/v1/ spelling was replaced, not duplicated */
	CHECK(data && !strstr(data, "https://127.0.0.1:5000/v1/"));
	CHECK_EQ_INT(registry_credentials_lookup("index.docker.io", &u, &p, &err), 1);
	CHECK_EQ_STR(u, "carol");
	free(u);
	free(p);
	u = p = NULL;
	CHECK_EQ_INT(registry_credentials_lookup("127.0.0.1:5000", &u, &p, &err), 1);
	CHECK_EQ_STR(u, "dave");
	free(u);
	free(p);
	u = p = NULL;
	/* username/password fields; REGISTRY_AUTH_FILE comes first */
	write_text(
		auth,
		"{\"auths\": {\"127.0.0.1:5000\": {\"username\": \"erin\", \"password\": \"x\"}}}");
	setenv("REGISTRY_AUTH_FILE", auth, 1);
	CHECK_EQ_INT(registry_credentials_lookup("127.0.0.1:5000", &u, &p, &err), 1);
	CHECK_EQ_STR(u, "erin");
	free(u);
	free(p);
	u = p = NULL;
	unsetenv("REGISTRY_AUTH_FILE");
	/* remove */
	CHECK_EQ_INT(registry_credentials_remove("127.0.0.1:5000", &err), 1);
	CHECK_EQ_INT(registry_credentials_remove("127.0.0.1:5000", &err), 0);
	CHECK_EQ_INT(registry_credentials_lookup("127.0.0.1:5000", &u, &p, &err), 0);
	CHECK(file_contains(cfg, "detachKeys"));
	CHECK(file_contains(cfg, "carol") == false); /* stored base64, never plain */
	/* invalid input is refused */
	CHECK_EQ_INT(registry_credentials_store("127.0.0.1:5000", "a:b", "x", &err), -EINVAL);
	CHECK_EQ_INT(registry_credentials_store("127.0.0.1:5000", "", "x", &err), -EINVAL);
	/* a broken file is reported and left alone */
	write_text(cfg, "{\"auths\": ");
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(registry_credentials_store("127.0.0.1:5000", "a", "b", &err), -EINVAL);
	CHECK(strstr(err.msg, "invalid JSON in"));
	CHECK(file_contains(cfg, "{\"auths\": "));
	/* bad base64 */
	write_text(cfg, "{\"auths\": {\"h.io\": {\"auth\": \"!!!!\"}}}");
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(registry_credentials_lookup("h.io", &u, &p, &err), -EINVAL);
	CHECK(strstr(err.msg, "invalid \"auth\" for h.io"));
	/* credential helpers */
	snprintf(json, sizeof(json), "{\"credHelpers\": {\"h.io\": \"ecr-login\"}}");
	write_text(cfg, json);
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(registry_credentials_lookup("h.io", &u, &p, &err), -EOPNOTSUPP);
	CHECK(strstr(err.msg, "credential helper 'docker-credential-ecr-login' for h.io"));
	{
		struct registry_client *c = NULL;
		struct registry_opts o = { .certs_dirs = (const char *const[]){ NULL } };
		memset(&err, 0, sizeof(err));
		CHECK_EQ_INT(registry_client_new("h.io", &o, &c, &err), -EOPNOTSUPP);
		o.anonymous = true;
		CHECK_EQ_INT(registry_client_new("h.io", &o, &c, &err), 0);
		registry_client_free(c);
	}
	write_text(cfg, "{\"credsStore\": \"desktop\"}");
	CHECK_EQ_INT(registry_credentials_lookup("h.io", &u, &p, &err), 0);
	unlink(cfg);
}

TEST(client_args)
{
	struct registry_client *c = NULL;
	struct cove_error err = { 0 };
	struct registry_opts o = { .anonymous = true, .certs_dirs = (const char *const[]){ NULL } };
	struct buf b = BUF_INIT(0);

	CHECK_EQ_INT(registry_client_new("http://x", &o, &c, &err), -EINVAL);
	CHECK(strstr(err.msg, "invalid registry host 'http://x'"));
	CHECK_EQ_INT(registry_client_new("docker.io", &o, &c, &err), 0);
	CHECK_EQ_STR(registry_client_host(c), "docker.io");
	/* argument checks happen before any network traffic */
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(registry_get_manifest(c, "Library/x", "latest", &b, NULL, NULL, &err),
		     -EINVAL);
	CHECK(strstr(err.msg, "invalid repository name 'Library/x'"));
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(registry_get_manifest(c, "library/x", "sha256:abc", &b, NULL, NULL, &err),
		     -EINVAL);
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(registry_get_blob(c, "library/x", "md5:00", 1, mem_write, NULL, 0, &err),
		     -EOPNOTSUPP);
	registry_client_free(c);
	c = NULL;
	/* a certs dir with a bad .crt and a .cert without key */
	{
		char d[300], f[400];
		const char *roots[] = { d, NULL };

		snprintf(d, sizeof(d), "%s/certs", tmp_root);
		mkdir(d, 0700);
		snprintf(f, sizeof(f), "%s/certs/h.io", tmp_root);
		mkdir(f, 0700);
		snprintf(f, sizeof(f), "%s/certs/h.io/ca.crt", tmp_root);
		write_text(f, "not a certificate\n");
		o.certs_dirs = roots;
		memset(&err, 0, sizeof(err));
		CHECK_EQ_INT(registry_client_new("h.io", &o, &c, &err), -EINVAL);
		CHECK(strstr(err.msg, "no PEM certificate in"));
		unlink(f);
		snprintf(f, sizeof(f), "%s/certs/h.io/client.cert", tmp_root);
		write_text(f, "x\n");
		memset(&err, 0, sizeof(err));
		CHECK_EQ_INT(registry_client_new("h.io", &o, &c, &err), -ENOENT);
		CHECK(strstr(err.msg, "has no key"));
		unlink(f);
	}
}

/* ------------------------------------------------------------------ integration */

TEST(unreachable)
{
	struct env e = { .registry = "127.0.0.1:1" };
	_cleanup_client_ struct registry_client *c = client(&e, NULL);
	struct cove_error err = { 0 };
	struct buf b = BUF_INIT(0);

	CHECK(c);
	CHECK_EQ_INT(registry_get_manifest(c, "x", "latest", &b, NULL, NULL, &err), -ECONNREFUSED);
	CHECK(strstr(err.msg, "cannot connect to registry 127.0.0.1:1"));
}

/* A socket that listens but never accepts: TCP connects, nothing answers, neither the TLS
 * probe nor plain HTTP. */
TEST(silent_listener)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	struct registry_opts o = { .timeout_s = 1 };
	struct cove_error err = { 0 };
	struct buf b = BUF_INIT(0);
	struct env e = { 0 };
	char want[200];
	uint64_t t0;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	CHECK(fd >= 0);
	CHECK_EQ_INT(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	CHECK_EQ_INT(listen(fd, 8), 0);
	CHECK_EQ_INT(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	snprintf(e.registry, sizeof(e.registry), "127.0.0.1:%u", ntohs(a.sin_port));
	{
		_cleanup_client_ struct registry_client *c = client(&e, &o);
		t0 = now_ns();
		CHECK_EQ_INT(registry_get_manifest(c, "x", "latest", &b, NULL, NULL, &err),
			     -ETIMEDOUT);
	}
	snprintf(want, sizeof(want), "registry %s did not answer within 1 s", e.registry);
	CHECK_EQ_STR(err.msg, want);
	CHECK((now_ns() - t0) / 1000000 < 4000);
	close(fd);
}

TEST(plain_pull)
{
	_cleanup_client_ struct registry_client *c = client(&plain, NULL);

	CHECK(c);
	if (c)
		pull_image(c, &plain, "v1");
}

TEST(plain_schema2_and_digest)
{
	_cleanup_client_ struct registry_client *c = client(&plain, NULL);
	struct buf a = BUF_INIT(0), b = BUF_INIT(0);
	struct cove_error err = { 0 };
	char d1[DIGEST_STRING_MAX], d2[DIGEST_STRING_MAX], zero[80];
	char *mt = NULL;

	/* schema2 comes back as schema2, not converted to schema1 */
	CHECK_EQ_INT(registry_get_manifest(c, "x/busybox", "v2s2", &a, &mt, d1, &err), 0);
	CHECK_EQ_STR(mt, MEDIA_TYPE_DOCKER_MANIFEST);
	free(mt);
	mt = NULL;
	/* pinned by digest: same bytes */
	CHECK_EQ_INT(registry_get_manifest(c, "x/busybox", d1, &b, &mt, d2, &err), 0);
	CHECK_EQ_STR(d1, d2);
	CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
	CHECK_EQ_STR(mt, MEDIA_TYPE_DOCKER_MANIFEST);
	free(mt);
	/* an unknown digest and an unknown tag */
	snprintf(zero, sizeof(zero), "sha256:%064d", 0);
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(registry_get_manifest(c, "x/busybox", zero, &b, NULL, NULL, &err), -ENOENT);
	CHECK(strstr(err.msg, "manifest unknown: "));
	{
		char want[200];
		snprintf(want, sizeof(want), "manifest unknown: %s/x/busybox:nope", plain.registry);
		memset(&err, 0, sizeof(err));
		CHECK_EQ_INT(registry_get_manifest(c, "x/busybox", "nope", &b, NULL, NULL, &err),
			     -ENOENT);
		CHECK_EQ_STR(err.msg, want);
		snprintf(want, sizeof(want), "manifest unknown: %s/nosuch/repo:v1", plain.registry);
		memset(&err, 0, sizeof(err));
		CHECK_EQ_INT(registry_get_manifest(c, "nosuch/repo", "v1", &b, NULL, NULL, &err),
			     -ENOENT);
		CHECK_EQ_STR(err.msg, want);
	}
	buf_done(&a);
	buf_done(&b);
}

TEST(plain_resume_and_fd)
{
	_cleanup_client_ struct registry_client *c = client(&plain, NULL);
	struct image im = { .manifest = BUF_INIT(0) };
	struct mem_sink full = { BUF_INIT(16 << 20) }, tail = { BUF_INIT(16 << 20) };
	struct cove_error err = { 0 };
	char path[300];
	int fd;

	CHECK_EQ_INT(registry_get_manifest(c, "x/busybox", "v1", &im.manifest, NULL, NULL, &err),
		     0);
	CHECK_EQ_INT(parse_image(&im), 0);
	/* layer 1 is busybox, about 1 MB */
	CHECK_EQ_INT(registry_get_blob(c, "x/busybox", im.blob_digest[1], im.blob_size[1],
				       mem_write, &full, 0, &err),
		     0);
	CHECK_EQ_INT(registry_get_blob(c, "x/busybox", im.blob_digest[1], im.blob_size[1],
				       mem_write, &tail, 12345, &err),
		     0);
	CHECK_EQ_INT(tail.b.len, im.blob_size[1] - 12345);
	CHECK(full.b.len > 12345 &&
	      memcmp(full.b.data + 12345, tail.b.data, full.b.len - 12345) == 0);
	/* at the end already: nothing to fetch */
	CHECK_EQ_INT(registry_get_blob(c, "x/busybox", im.blob_digest[1], im.blob_size[1],
				       mem_write, &tail, im.blob_size[1], &err),
		     0);
	/* a smaller expected size fails as soon as it is exceeded */
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(registry_get_blob(c, "x/busybox", im.blob_digest[1], 1000, mem_write, &tail, 0,
				       &err),
		     -EFBIG);
	CHECK(strstr(err.msg, "is larger than the expected 1000 bytes"));
	/* to a file holding a correct prefix */
	snprintf(path, sizeof(path), "%s/blob", tmp_root);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	CHECK_EQ_INT(write_full(fd, full.b.data, 5000), 0);
	CHECK_EQ_INT(registry_get_blob_to_fd(c, "x/busybox", im.blob_digest[1], im.blob_size[1], fd,
					     &err),
		     0);
	{
		struct stat st;
		fstat(fd, &st);
		CHECK_EQ_INT(st.st_size, im.blob_size[1]);
	}
	/* a wrong prefix is caught by the digest */
	CHECK_EQ_INT(ftruncate(fd, 0), 0);
	CHECK_EQ_INT(write_full(fd, "garbage", 7), 0);
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(registry_get_blob_to_fd(c, "x/busybox", im.blob_digest[1], im.blob_size[1], fd,
					     &err),
		     -EBADMSG);
	CHECK(strstr(err.msg, "has digest"));
	close(fd);
	buf_done(&full.b);
	buf_done(&tail.b);
	image_done(&im);
}

TEST(plain_push)
{
	struct registry_opts chunked = { .chunk_size = 256 << 10 };
	_cleanup_client_ struct registry_client *c = client(&plain, NULL);
	_cleanup_client_ struct registry_client *cc = client(&plain, &chunked);
	struct image im = { .manifest = BUF_INIT(0) }, back = { .manifest = BUF_INIT(0) };
	struct mem_sink blobs[4];
	struct cove_error err = { 0 };
	char d[DIGEST_STRING_MAX], path[300];
	uint64_t size = 0;
	int fd;

	CHECK_EQ_INT(registry_get_manifest(c, "x/busybox", "v1", &im.manifest, &im.media_type,
					   im.digest, &err),
		     0);
	CHECK_EQ_INT(parse_image(&im), 0);
	for (size_t i = 0; i < im.n; i++) {
		blobs[i].b = BUF_INIT(16 << 20);
		CHECK_EQ_INT(registry_get_blob(c, "x/busybox", im.blob_digest[i], im.blob_size[i],
					       mem_write, &blobs[i], 0, &err),
			     0);
	}
	CHECK_EQ_INT(registry_blob_exists(c, "pushed/img", im.blob_digest[0], NULL, &err), 0);
	/* config: one PUT from memory */
	{
		struct mem_src src = { blobs[0].b.data, blobs[0].b.len, 0 };
		CHECK_EQ_INT(registry_blob_upload(c, "pushed/img", im.blob_digest[0],
						  im.blob_size[0], mem_read, &src, &err),
			     0);
	}
	/* busybox layer: PATCH chunks from a file */
	snprintf(path, sizeof(path), "%s/layer", tmp_root);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK_EQ_INT(write_full(fd, blobs[1].b.data, blobs[1].b.len), 0);
	CHECK_EQ_INT(registry_blob_upload_fd(cc, "pushed/img", im.blob_digest[1], im.blob_size[1],
					     fd, &err),
		     0);
	close(fd);
	/* a wrong digest is refused by the registry */
	{
		struct mem_src src = { blobs[2].b.data, blobs[2].b.len, 0 };
		memset(&err, 0, sizeof(err));
		CHECK(registry_blob_upload(c, "pushed/img", im.blob_digest[0], blobs[2].b.len,
					   mem_read, &src, &err) < 0);
		CHECK(strstr(err.msg, "DIGEST_INVALID"));
	}
	{
		struct mem_src src = { blobs[2].b.data, blobs[2].b.len, 0 };
		memset(&err, 0, sizeof(err));
		CHECK_EQ_INT(registry_blob_upload(c, "pushed/img", im.blob_digest[2],
						  im.blob_size[2], mem_read, &src, &err),
			     0);
	}
	CHECK_EQ_INT(registry_blob_exists(c, "pushed/img", im.blob_digest[1], &size, &err), 1);
	CHECK_EQ_INT(size, im.blob_size[1]);
	/* manifest by tag, then fetched back byte-identical */
	CHECK_EQ_INT(registry_put_manifest(c, "pushed/img", "t1", im.manifest.data, im.manifest.len,
					   im.media_type, d, &err),
		     0);
	CHECK_EQ_STR(d, im.digest);
	CHECK_EQ_INT(registry_get_manifest(c, "pushed/img", "t1", &back.manifest, &back.media_type,
					   back.digest, &err),
		     0);
	CHECK(back.manifest.len == im.manifest.len &&
	      memcmp(back.manifest.data, im.manifest.data, im.manifest.len) == 0);
	CHECK_EQ_STR(back.media_type, MEDIA_TYPE_OCI_MANIFEST);
	/* an index over it */
	{
		char index[1024];
		int n = snprintf(index, sizeof(index),
				 "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":[{"
				 "\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu,\"platform\":"
				 "{\"architecture\":\"amd64\",\"os\":\"linux\"}}]}",
				 MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST, im.digest,
				 im.manifest.len);
		char *mt = NULL;
		struct buf ib = BUF_INIT(0);

		CHECK_EQ_INT(registry_put_manifest(c, "pushed/img", "idx", index, (size_t)n,
						   MEDIA_TYPE_OCI_INDEX, d, &err),
			     0);
		CHECK_EQ_INT(registry_get_manifest(c, "pushed/img", "idx", &ib, &mt, NULL, &err),
			     0);
		CHECK_EQ_STR(mt, MEDIA_TYPE_OCI_INDEX);
		CHECK(ib.len == (size_t)n && memcmp(ib.data, index, ib.len) == 0);
		free(mt);
		buf_done(&ib);
		/* a manifest pushed under a digest that is not its own is refused before sending */
		memset(&err, 0, sizeof(err));
		CHECK_EQ_INT(registry_put_manifest(c, "pushed/img", im.digest, index, (size_t)n,
						   MEDIA_TYPE_OCI_INDEX, d, &err),
			     -EINVAL);
	}
	/* mount across repos: from a repo with the blob, and a declined mount without source */
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(registry_blob_mount(c, "mounted/img", im.blob_digest[1], "x/busybox", 0, NULL,
					 NULL, &err),
		     1);
	CHECK_EQ_INT(registry_blob_exists(c, "mounted/img", im.blob_digest[1], NULL, &err), 1);
	CHECK_EQ_INT(registry_blob_mount(c, "mounted/img", im.blob_digest[0], "nosuch/repo", 0,
					 NULL, NULL, &err),
		     0);
	CHECK_EQ_INT(registry_blob_exists(c, "mounted/img", im.blob_digest[0], NULL, &err), 0);
	{
		struct mem_src src = { blobs[0].b.data, blobs[0].b.len, 0 };
		CHECK_EQ_INT(registry_blob_mount(c, "mounted/img", im.blob_digest[0], "nosuch/repo",
						 im.blob_size[0], mem_read, &src, &err),
			     0);
		CHECK(src.reads > 0);
	}
	CHECK_EQ_INT(registry_blob_exists(c, "mounted/img", im.blob_digest[0], NULL, &err), 1);
	if (err.code)
		printf("# %s\n", err.msg);
	for (size_t i = 0; i < im.n; i++)
		buf_done(&blobs[i].b);
	image_done(&im);
	image_done(&back);
}

TEST(basic_auth)
{
	struct registry_opts good = { .username = basic.user, .password = basic.password };
	struct registry_opts badpw = { .username = basic.user, .password = "wrong" };
	_cleanup_client_ struct registry_client *c = client(&basic, &good);
	_cleanup_client_ struct registry_client *cb = client(&basic, &badpw);
	_cleanup_client_ struct registry_client *ca = client(&basic, NULL);
	struct cove_error err = { 0 };
	struct buf b = BUF_INIT(0);
	char want[300];

	pull_image(c, &basic, "v1");
	CHECK_EQ_INT(registry_check_login(c, &err), 0);
	snprintf(want, sizeof(want),
		 "pull access denied for %s/x/busybox: UNAUTHORIZED: authentication required (401 "
		 "for user 'cove')",
		 basic.registry);
	CHECK_EQ_INT(registry_get_manifest(cb, "x/busybox", "v1", &b, NULL, NULL, &err), -EACCES);
	CHECK_EQ_STR(err.msg, want);
	memset(&err, 0, sizeof(err));
	CHECK(registry_check_login(cb, &err) < 0);
	CHECK(strstr(err.msg, "login to "));
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(registry_get_manifest(ca, "x/busybox", "v1", &b, NULL, NULL, &err), -EACCES);
	CHECK(strstr(err.msg, "pull access denied for "));
	CHECK(strstr(err.msg, "(401, no credentials for 127.0.0.1:"));
	buf_done(&b);
}

TEST(basic_auth_from_config)
{
	struct cove_error err = { 0 };
	char dir[300];

	snprintf(dir, sizeof(dir), "%s/docker2", tmp_root);
	setenv("DOCKER_CONFIG", dir, 1);
	CHECK_EQ_INT(registry_credentials_store(basic.registry, basic.user, basic.password, &err),
		     0);
	{
		_cleanup_client_ struct registry_client *c = client(&basic, NULL);
		pull_image(c, &basic, "v1");
	}
	snprintf(dir, sizeof(dir), "%s/docker", tmp_root);
	setenv("DOCKER_CONFIG", dir, 1);
}

TEST(token_auth)
{
	struct registry_opts good = { .username = token.user, .password = token.password };
	struct registry_opts badpw = { .username = token.user, .password = "wrong" };
	_cleanup_client_ struct registry_client *c = client(&token, &good);
	_cleanup_client_ struct registry_client *cb = client(&token, &badpw);
	_cleanup_client_ struct registry_client *ca = client(&token, NULL);
	struct cove_error err = { 0 };
	struct buf b = BUF_INIT(0);
	int before = count_lines(token.token_log), n;
	uint64_t size;

	/* manifest + 3 blobs (2 threads) + HEAD: one token */
	pull_image(c, &token, "v1");
	CHECK_EQ_INT(registry_blob_exists(c, "x/busybox", token.digest, &size, &err), 0);
	n = count_lines(token.token_log);
	CHECK_EQ_INT(n - before, 1);
	CHECK(file_contains(token.token_log, "user=cove scopes=repository:x/busybox:pull\n"));
	/* push scope: a second token, which then also serves pulls */
	{
		struct buf m = BUF_INIT(0);
		char *mt = NULL;
		CHECK_EQ_INT(registry_get_manifest(c, "x/busybox", "v1", &m, &mt, NULL, &err), 0);
		CHECK_EQ_INT(registry_put_manifest(c, "x/busybox", "v1-copy", m.data, m.len, mt,
						   NULL, &err),
			     0);
		free(mt);
		buf_done(&m);
	}
	CHECK(file_contains(token.token_log, "user=cove scopes=repository:x/busybox:pull,push\n"));
	CHECK_EQ_INT(count_lines(token.token_log) - n, 1);
	/* mount across repos needs a token for two scopes */
	n = count_lines(token.token_log);
	{
		struct image im = { .manifest = BUF_INIT(0) };
		CHECK_EQ_INT(
			registry_get_manifest(c, "x/busybox", "v1", &im.manifest, NULL, NULL, &err),
			0);
		CHECK_EQ_INT(parse_image(&im), 0);
		CHECK_EQ_INT(registry_blob_mount(c, "y/mounted", im.blob_digest[1], "x/busybox", 0,
						 NULL, NULL, &err),
			     1);
		CHECK_EQ_INT(registry_blob_exists(c, "y/mounted", im.blob_digest[1], NULL, &err),
			     1);
		image_done(&im);
	}
	CHECK(file_contains(token.token_log,
			    "scopes=repository:y/mounted:pull,push repository:x/busybox:pull\n"));
	CHECK_EQ_INT(registry_check_login(c, &err), 0);
	/* tokens expire (TOKEN_TTL=2: the client keeps them 1.8 s) */
	n = count_lines(token.token_log);
	usleep(1900 * 1000);
	CHECK_EQ_INT(registry_get_manifest(c, "x/busybox", "v1", &b, NULL, NULL, &err), 0);
	CHECK_EQ_INT(count_lines(token.token_log) - n, 1);
	if (err.code)
		printf("# %s\n", err.msg);
	/* a wrong password: the token server says 401 */
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(registry_get_manifest(cb, "x/busybox", "v1", &b, NULL, NULL, &err), -EACCES);
	CHECK(strstr(err.msg, "pull access denied for "));
	CHECK(strstr(err.msg, "answered 401 Unauthorized: incorrect username or password"));
	/* anonymous: a token without access, then the registry's 401 */
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(registry_get_manifest(ca, "x/busybox", "v1", &b, NULL, NULL, &err), -EACCES);
	CHECK(strstr(err.msg, "/x/busybox: UNAUTHORIZED: authentication required"));
	printf("# %s\n", err.msg);
	buf_done(&b);
}

TEST(tls)
{
	const char *roots[] = { tls.certs_dir, NULL };
	struct registry_opts with = { .certs_dirs = roots };
	_cleanup_client_ struct registry_client *c = client(&tls, &with);
	_cleanup_client_ struct registry_client *cn = client(&tls, NULL);
	struct cove_error err = { 0 };
	struct buf b = BUF_INIT(0);

	pull_image(c, &tls, "v1");
	CHECK_EQ_INT(registry_get_manifest(cn, "x/busybox", "v1", &b, NULL, NULL, &err), -EPROTO);
	CHECK(strstr(err.msg, "TLS certificate of registry 127.0.0.1:"));
	CHECK(strstr(err.msg, "is not trusted"));
	buf_done(&b);
}

/* badserver */

TEST(bad_retries)
{
	_cleanup_client_ struct registry_client *c = client(&bad, NULL);
	struct cove_error err = { 0 };
	struct buf b = BUF_INIT(0);
	char want[200];

	CHECK_EQ_INT(registry_get_manifest(c, "flaky500", "t", &b, NULL, NULL, &err), 0);
	CHECK_EQ_INT(bad_counter("_count", "/v2/flaky500/manifests/t"), 2);
	CHECK_EQ_INT(registry_get_manifest(c, "flaky429", "t", &b, NULL, NULL, &err), 0);
	CHECK_EQ_INT(bad_counter("_count", "/v2/flaky429/manifests/t"), 2);
	snprintf(want, sizeof(want), "registry %s answered 500 Internal Server Error",
		 bad.registry);
	CHECK_EQ_INT(registry_get_manifest(c, "always500", "t", &b, NULL, NULL, &err), -EIO);
	CHECK_EQ_STR(err.msg, want);
	CHECK_EQ_INT(bad_counter("_count", "/v2/always500/manifests/t"), 3);
	buf_done(&b);
}

TEST(bad_hang)
{
	struct registry_opts o = { .timeout_s = 1 };
	_cleanup_client_ struct registry_client *c = client(&bad, &o);
	struct cove_error err = { 0 };
	struct buf b = BUF_INIT(0);
	char want[200];
	uint64_t t0 = now_ns(), ms;

	snprintf(want, sizeof(want), "registry %s did not answer within 1 s", bad.registry);
	CHECK_EQ_INT(registry_get_manifest(c, "hang", "t", &b, NULL, NULL, &err), -ETIMEDOUT);
	ms = (now_ns() - t0) / 1000000;
	CHECK_EQ_STR(err.msg, want);
	CHECK(ms < 3000);
	printf("# hang reported after %llu ms\n", (unsigned long long)ms);
}

TEST(bad_manifests)
{
	_cleanup_client_ struct registry_client *c = client(&bad, NULL);
	struct cove_error err = { 0 };
	struct buf b = BUF_INIT(0);
	char good_digest[DIGEST_STRING_MAX], zero[80];
	long sent;

	CHECK_EQ_INT(registry_get_manifest(c, "big", "t", &b, NULL, NULL, &err), -EFBIG);
	CHECK(strstr(err.msg, "/big:t is larger than 4 MiB"));
	sent = bad_counter("_sent", "/v2/big/manifests/t");
	CHECK(sent < 32L << 20); /* stopped early, not after the server's 64 MiB */
	printf("# oversized manifest: server wrote %ld bytes before the client hung up\n", sent);
	/* an endless error body: read 64 KiB of it, then report the status */
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(registry_get_manifest(c, "bigerror", "t", &b, NULL, NULL, &err), -ENOENT);
	CHECK(strstr(err.msg, "manifest unknown: "));
	CHECK(bad_counter("_sent", "/v2/bigerror/manifests/t") < 32L << 20);
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(registry_get_manifest(c, "biglen", "t", &b, NULL, NULL, &err), -EFBIG);
	CHECK(b.len == 0);
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(registry_get_manifest(c, "wrongdigest", "t", &b, NULL, NULL, &err), -EBADMSG);
	CHECK(strstr(err.msg, "does not match its Docker-Content-Digest sha256:000"));
	CHECK_EQ_INT(registry_get_manifest(c, "good", "t", &b, NULL, good_digest, &err), 0);
	CHECK_EQ_INT(registry_get_manifest(c, "good", good_digest, &b, NULL, NULL, &err), 0);
	/* pinned to a digest the content does not have */
	snprintf(zero, sizeof(zero), "sha256:%064d", 1);
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(registry_get_manifest(c, "good", zero, &b, NULL, NULL, &err), -EBADMSG);
	CHECK(strstr(err.msg, "has digest sha256:"));
	buf_done(&b);
}

/* badserver.py's BLOB */
static struct buf bad_blob;
static char bad_blob_digest[DIGEST_STRING_MAX];

static void make_bad_blob(void)
{
	bad_blob = BUF_INIT(2 << 20);
	for (size_t i = 0; i < 1024 * 1024 + 123; i++) {
		uint8_t v = (uint8_t)((i * 31 + 7) % 256);
		buf_append(&bad_blob, &v, 1);
	}
	digest_buffer(bad_blob.data, bad_blob.len, bad_blob_digest);
}

static int get_bad_blob(struct registry_client *c, const char *repo, struct cove_error *err)
{
	struct mem_sink s = { BUF_INIT(4 << 20) };
	int r = registry_get_blob(c, repo, bad_blob_digest, bad_blob.len, mem_write, &s, 0, err);

	if (r == 0 && (s.b.len != bad_blob.len || memcmp(s.b.data, bad_blob.data, s.b.len) != 0))
		r = -EBADMSG;
	buf_done(&s.b);
	return r;
}

TEST(bad_blobs)
{
	struct registry_opts creds = { .username = "u", .password = "p" };
	_cleanup_client_ struct registry_client *c = client(&bad, NULL);
	_cleanup_client_ struct registry_client *ca = client(&bad, &creds);
	struct cove_error err = { 0 };
	char path[200];

	CHECK_EQ_INT(get_bad_blob(c, "good", &err), 0);
	/* dropped after 300000 bytes, resumed with a Range request */
	CHECK_EQ_INT(get_bad_blob(c, "drop", &err), 0);
	snprintf(path, sizeof(path), "/v2/drop/blobs/%s", bad_blob_digest);
	CHECK_EQ_INT(bad_counter("_count", path), 2);
	CHECK_EQ_INT(get_bad_blob(c, "flaky503", &err), 0);
	/* always truncated: an error after the tries */
	CHECK(get_bad_blob(c, "trunc", &err) < 0);
	CHECK(strstr(err.msg, "is incomplete: got 524349 of 1048699 bytes"));
	printf("# %s\n", err.msg);
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(get_bad_blob(c, "overflow", &err), -EFBIG);
	CHECK(strstr(err.msg, "is larger than the expected 1048699 bytes"));
	/* redirects: the Authorization goes to the same origin only */
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(get_bad_blob(ca, "auth-redir", &err), 0);
	if (err.code)
		printf("# %s\n", err.msg);
	CHECK_EQ_INT(get_bad_blob(ca, "auth-redirsame", &err), 0);
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(get_bad_blob(c, "auth-good", &err), -EACCES);
	CHECK(strstr(err.msg, "pull access denied for "));
}

/* ------------------------------------------------------------------ setup */

static void stop_all(void)
{
	struct env *all[] = { &plain, &basic, &token, &tls, &bad };
	char stop[4200];

	if (!tmp_root[0])
		return;
	snprintf(stop, sizeof(stop), "%s/tests/registry/stop.sh", src_root);
	for (size_t i = 0; i < ARRAY_SIZE(all); i++)
		if (all[i]->dir[0])
			run((const char *const[]){ stop, all[i]->dir, NULL });
	if (!getenv("COVE_TEST_KEEP"))
		run((const char *const[]){ "rm", "-rf", "--", tmp_root, NULL });
	tmp_root[0] = '\0';
}

/* Stop the registries when interrupted too (exit runs stop_all). Not async-signal-safe, which
 * is acceptable for a test about to die anyway. */
static void on_signal(int sig)
{
	exit(128 + sig);
}

static bool find_src_root(const char *arg)
{
	const char *cands[] = { arg, getenv("COVE_SOURCE_ROOT"), ".", "..", "../.." };

	for (size_t i = 0; i < ARRAY_SIZE(cands); i++) {
		char p[4200];
		if (!cands[i])
			continue;
		snprintf(p, sizeof(p), "%s/tests/registry/start.sh", cands[i]);
		if (access(p, X_OK) == 0 && realpath(cands[i], src_root))
			return true;
	}
	return false;
}

static bool have(const char *prog)
{
	return run((const char *const[]){ "sh", "-c", "command -v \"$0\" >/dev/null", prog,
					  NULL }) == 0;
}

static int setup(void)
{
	struct env *all[] = { &plain, &basic, &token, &tls, &bad };
	const char *kinds[] = { "plain", "basic", "token", "tls", "bad" };
	char start[4200], push[4200], dg[5][300], layout[300], mkimage[4200];
	const char *const *starts[6], *const *pushes[5];
	const char *argv_s[5][4], *argv_p[5][7];

	snprintf(start, sizeof(start), "%s/tests/registry/start.sh", src_root);
	snprintf(push, sizeof(push), "%s/tests/registry/push-image.sh", src_root);
	setenv("TOKEN_TTL", "2", 1);
	for (size_t i = 0; i < 5; i++) {
		snprintf(all[i]->dir, sizeof(all[i]->dir), "%s/%s", tmp_root, kinds[i]);
		argv_s[i][0] = start;
		argv_s[i][1] = kinds[i];
		argv_s[i][2] = all[i]->dir;
		argv_s[i][3] = NULL;
		starts[i] = argv_s[i];
	}
	/* one OCI layout for every push */
	snprintf(layout, sizeof(layout), "%s/layout", tmp_root);
	snprintf(mkimage, sizeof(mkimage), "%s/tests/registry/mkimage.py", src_root);
	setenv("OCI_LAYOUT", layout, 1);
	starts[5] =
		(const char *const[]){ access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3"
									     : "python3",
				       mkimage, layout, NULL };
	if (run_all(starts, 6) < 0)
		return -1;
	for (size_t i = 0; i < 4; i++) {
		read_env(all[i]);
		snprintf(dg[i], sizeof(dg[i]), "%s/digest", all[i]->dir);
		argv_p[i][0] = push;
		argv_p[i][1] = all[i]->dir;
		argv_p[i][2] = "x/busybox:v1";
		argv_p[i][3] = "-";
		argv_p[i][4] = dg[i];
		argv_p[i][5] = NULL;
		pushes[i] = argv_p[i];
	}
	argv_p[4][0] = push;
	argv_p[4][1] = plain.dir;
	argv_p[4][2] = "x/busybox:v2s2";
	argv_p[4][3] = "v2s2";
	argv_p[4][4] = NULL;
	pushes[4] = argv_p[4];
	/* the v2s2 push after the others: concurrent pushes of the same blobs to one registry
	 * race (skopeo skips a blob another push has not committed yet) */
	if (run_all(pushes, 4) < 0 || run_all(pushes + 4, 1) < 0)
		return -1;
	for (size_t i = 0; i < 5; i++)
		read_env(all[i]);
	return 0;
}

/* RUN, then the case's duration as a comment line */
#define TRUN(name)                                                                                 \
	do {                                                                                       \
		uint64_t _t = now_ns();                                                            \
		RUN(name);                                                                         \
		printf("# %s: %llu ms\n", #name, (unsigned long long)((now_ns() - _t) / 1000000)); \
	} while (0)

int main(int argc, char **argv)
{
	char dir[300];
	uint64_t t0 = now_ns();

	str_copy(tmp_root, sizeof(tmp_root), "/tmp/cove-test-registry.XXXXXX");
	if (!mkdtemp(tmp_root)) {
		printf("not ok - setup: mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	atexit(stop_all);
	signal(SIGPIPE, SIG_IGN); /* "| head" must not kill us before stop_all */
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	/* never read the user's own credentials */
	snprintf(dir, sizeof(dir), "%s/docker", tmp_root);
	setenv("DOCKER_CONFIG", dir, 1);
	unsetenv("REGISTRY_AUTH_FILE");
	unsetenv("XDG_RUNTIME_DIR");
	curl_global_init(CURL_GLOBAL_DEFAULT);

	RUN(challenge_bearer);
	RUN(challenge_basic_and_lists);
	RUN(challenge_malformed);
	RUN(credentials_files);
	RUN(client_args);
	RUN(unreachable);
	TRUN(silent_listener);

	if (!find_src_root(argc > 1 ? argv[1] : NULL) || !have("docker-registry") ||
	    !have("skopeo") || !have("openssl") || !have("python3")) {
		printf("ok - registry_integration # SKIP needs tests/registry, docker-registry, "
		       "skopeo, openssl and python3\n");
		curl_global_cleanup();
		return test_done();
	}
	test_case_name = "setup";
	test_case_failed = 0;
	if (setup() < 0) {
		printf("not ok - setup: cannot start the test registries (logs in %s)\n", tmp_root);
		setenv("COVE_TEST_KEEP", "1", 1);
		return 1;
	}
	printf("# registries up and images pushed in %llu ms\n",
	       (unsigned long long)((now_ns() - t0) / 1000000));
	make_bad_blob();

	TRUN(plain_pull);
	TRUN(plain_schema2_and_digest);
	TRUN(plain_resume_and_fd);
	TRUN(plain_push);
	TRUN(basic_auth);
	TRUN(basic_auth_from_config);
	TRUN(token_auth);
	TRUN(tls);
	TRUN(bad_retries);
	TRUN(bad_hang);
	TRUN(bad_manifests);
	TRUN(bad_blobs);

	buf_done(&bad_blob);
	if (test_failed_total)
		setenv("COVE_TEST_KEEP", "1", 1), printf("# kept %s\n", tmp_root);
	stop_all();
	curl_global_cleanup();
	printf("# %llu ms in all\n", (unsigned long long)((now_ns() - t0) / 1000000));
	return test_done();
}
