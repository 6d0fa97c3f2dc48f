/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for src/image/reference: a table of valid and invalid references, then the parts. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "image/reference.h"
#include "util/error.h"
#include "test.h"

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

struct valid_case {
	const char *in, *canonical, *familiar, *api_host, *pull_ref;
};

static const struct valid_case valid[] = {
	{ "debian", "docker.io/library/debian:latest", "debian:latest", "registry-1.docker.io",
	  "latest" },
	{ "debian:bookworm", "docker.io/library/debian:bookworm", "debian:bookworm", NULL,
	  "bookworm" },
	{ "library/debian", "docker.io/library/debian:latest", "debian:latest", NULL, NULL },
	{ "docker.io/debian", "docker.io/library/debian:latest", "debian:latest", NULL, NULL },
	{ "docker.io/library/debian:12", "docker.io/library/debian:12", "debian:12", NULL, NULL },
	{ "index.docker.io/debian", "docker.io/library/debian:latest", "debian:latest", NULL,
	  NULL },
	{ "user/repo", "docker.io/user/repo:latest", "user/repo:latest", NULL, NULL },
	{ "user/repo/deep:v1", "docker.io/user/repo/deep:v1", "user/repo/deep:v1", NULL, NULL },
	{ "docker.io/library/a/b", "docker.io/library/a/b:latest", "library/a/b:latest", NULL,
	  NULL },
	{ "127.0.0.1:5000/x", "127.0.0.1:5000/x:latest", "127.0.0.1:5000/x:latest",
	  "127.0.0.1:5000", NULL },
	{ "127.0.0.1:5000/x/y:v1.2-rc_3", "127.0.0.1:5000/x/y:v1.2-rc_3", NULL, NULL, "v1.2-rc_3" },
	{ "localhost/x", "localhost/x:latest", "localhost/x:latest", "localhost", NULL },
	{ "localhost:5000/x:t", "localhost:5000/x:t", NULL, NULL, NULL },
	{ "quay.io/podman/stable", "quay.io/podman/stable:latest", NULL, "quay.io", NULL },
	{ "Registry.Example.COM/x", "Registry.Example.COM/x:latest", NULL, NULL, NULL },
	{ "[::1]:5000/x", "[::1]:5000/x:latest", NULL, "[::1]:5000", NULL },
	{ "[fe80::1]/x", "[fe80::1]/x:latest", NULL, NULL, NULL },
	{ "my-host.example:443/a_b/c__d/e-f/g--h/i.j:T",
	  "my-host.example:443/a_b/c__d/e-f/g--h/i.j:T", NULL, NULL, NULL },
	{ "debian@sha256:" D64, "docker.io/library/debian@sha256:" D64, "debian@sha256:" D64, NULL,
	  "sha256:" D64 },
	{ "debian:12@sha256:" D64, "docker.io/library/debian:12@sha256:" D64,
	  "debian:12@sha256:" D64, NULL, "sha256:" D64 },
	{ "127.0.0.1:5000/x@sha256:" D64, "127.0.0.1:5000/x@sha256:" D64, NULL, NULL,
	  "sha256:" D64 },
	{ "x:_under", "docker.io/library/x:_under", NULL, NULL, NULL },
	{ "localhost:5000", "docker.io/library/localhost:5000", "localhost:5000", NULL, "5000" },
	{ "a0123456789", "docker.io/library/a0123456789:latest", NULL, NULL, NULL },
};

struct invalid_case {
	const char *in, *msg;
};

static const struct invalid_case invalid[] = {
	{ "", "invalid reference '': empty" },
	{ "Foo", "invalid reference 'Foo': repository name must be lowercase" },
	{ "Foo/bar", "invalid reference 'Foo/bar': repository name must be lowercase" },
	{ "127.0.0.1:5000/Foo",
	  "invalid reference '127.0.0.1:5000/Foo': repository name must be lowercase" },
	{ "debian:", "invalid reference 'debian:': tag '' is invalid" },
	{ "debian:-bad", "invalid reference 'debian:-bad': tag '-bad' is invalid" },
	{ "debian:.bad", "invalid reference 'debian:.bad': tag '.bad' is invalid" },
	{ "debian:a+b", "invalid reference 'debian:a+b': tag 'a+b' is invalid" },
	{ "debian@sha256:1234",
	  "invalid reference 'debian@sha256:1234': digest must be sha256:<64 hex digits>" },
	{ "debian@sha512:" D64, "digest must be sha256:<64 hex digits>" },
	{ "debian@sha256:"
	  "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
	  "digest must be sha256:<64 hex digits>" },
	{ "debian@", "digest must be sha256:<64 hex digits>" },
	{ "a@b@sha256:" D64, "digest must be sha256:<64 hex digits>" },
	{ D64, "cannot be a 64-character hexadecimal string (an image ID)" },
	{ "a//b", "repository name component '' is invalid" },
	{ "a/", "repository name component '' is invalid" },
	{ "/a", "repository name component '' is invalid" },
	{ "-a", "repository name component '-a' is invalid" },
	{ "a-", "repository name component 'a-' is invalid" },
	{ "a..b", "repository name component 'a..b' is invalid" },
	{ "a___b", "repository name component 'a___b' is invalid" },
	{ "a._b", "repository name component 'a._b' is invalid" },
	{ "a b", "repository name component 'a b' is invalid" },
	{ "host:0/x", "registry host 'host:0' is invalid" },
	{ "host:99999/x", "registry host 'host:99999' is invalid" },
	{ "host:/x", "registry host 'host:' is invalid" },
	{ "-host.com/x", "registry host '-host.com' is invalid" },
	{ "host..com/x", "registry host 'host..com' is invalid" },
	{ "http://host/x", "registry host 'http:' is invalid" },
	{ "[zz::1]/x", "registry host '[zz::1]' is invalid" },
	{ "[::1/x", "registry host '[::1' is invalid" },
	{ "localhost/", "repository name is empty" },
	{ ":tag", "repository name is empty" },
	{ "a/b:c/d", "repository name component 'b:c' is invalid" },
	{ "deb\nian", "invalid reference 'deb?ian'" },
};

TEST(valid_table)
{
	char buf[REFERENCE_STRING_MAX];

	for (size_t i = 0; i < ARRAY_SIZE(valid); i++) {
		const struct valid_case *c = &valid[i];
		struct cove_error err = { 0 };
		struct reference r;
		int rc = reference_parse(c->in, &r, &err);

		if (rc < 0) {
			printf("# '%s': %s\n", c->in, err.msg);
			CHECK(rc == 0);
			continue;
		}
		CHECK_EQ_INT(reference_format(&r, buf, sizeof(buf)), 0);
		CHECK_EQ_STR(buf, c->canonical);
		if (c->familiar) {
			CHECK_EQ_INT(reference_familiar(&r, buf, sizeof(buf)), 0);
			CHECK_EQ_STR(buf, c->familiar);
		}
		if (c->api_host)
			CHECK_EQ_STR(reference_api_host(&r), c->api_host);
		if (c->pull_ref)
			CHECK_EQ_STR(reference_pull_ref(&r), c->pull_ref);
		/* the canonical form parses back to itself */
		{
			struct reference r2;
			char buf2[REFERENCE_STRING_MAX];

			CHECK_EQ_INT(reference_parse(c->canonical, &r2, NULL), 0);
			CHECK_EQ_INT(reference_format(&r2, buf2, sizeof(buf2)), 0);
			CHECK_EQ_STR(buf2, c->canonical);
		}
	}
}

TEST(invalid_table)
{
	for (size_t i = 0; i < ARRAY_SIZE(invalid); i++) {
		const struct invalid_case *c = &invalid[i];
		struct cove_error err = { 0 };
		struct reference r;
		int rc = reference_parse(c->in, &r, &err);

		if (rc != -EINVAL || !strstr(err.msg, c->msg)) {
			printf("# '%s': rc %d, message '%s', expected '%s'\n", c->in, rc, err.msg,
			       c->msg);
			CHECK(rc == -EINVAL && strstr(err.msg, c->msg));
		}
		CHECK(strncmp(err.msg, "invalid reference '", 19) == 0);
		CHECK(!strchr(err.msg, '\n'));
	}
}

TEST(table_size)
{
	CHECK(ARRAY_SIZE(valid) + ARRAY_SIZE(invalid) >= 40);
}

TEST(parts)
{
	struct reference r;
	char buf[REFERENCE_STRING_MAX];

	CHECK_EQ_INT(reference_parse("127.0.0.1:5000/a/b:v1@sha256:" D64, &r, NULL), 0);
	CHECK_EQ_STR(r.registry, "127.0.0.1:5000");
	CHECK_EQ_STR(r.repository, "a/b");
	CHECK_EQ_STR(r.tag, "v1");
	CHECK_EQ_STR(r.digest, "sha256:" D64);
	CHECK_EQ_INT(reference_name(&r, buf, sizeof(buf)), 0);
	CHECK_EQ_STR(buf, "127.0.0.1:5000/a/b");
	CHECK_EQ_INT(reference_parse("debian@sha256:" D64, &r, NULL), 0);
	CHECK_EQ_STR(r.tag, "");
	CHECK_EQ_STR(r.registry, "docker.io");
	CHECK_EQ_STR(r.repository, "library/debian");
	/* a short output buffer is an error, not a truncation */
	CHECK_EQ_INT(reference_format(&r, buf, 10), -ENAMETOOLONG);
}

TEST(tag_limits)
{
	char s[200], tag[130];
	struct reference r;
	struct cove_error err = { 0 };

	memset(tag, 'a', 128);
	tag[128] = '\0';
	snprintf(s, sizeof(s), "x:%s", tag);
	CHECK_EQ_INT(reference_parse(s, &r, NULL), 0);
	CHECK_EQ_STR(r.tag, tag);
	tag[128] = 'a';
	tag[129] = '\0';
	snprintf(s, sizeof(s), "x:%s", tag);
	CHECK_EQ_INT(reference_parse(s, &r, &err), -EINVAL);
	CHECK(strstr(err.msg, "is invalid"));
	CHECK(reference_tag_is_valid("v1.0"));
	CHECK(!reference_tag_is_valid(".v1"));
}

TEST(name_length)
{
	char s[600];
	struct reference r;
	struct cove_error err = { 0 };

	/* docker.io/ + library/ + 237 = 255 */
	memset(s, 'a', 237);
	s[237] = '\0';
	CHECK_EQ_INT(reference_parse(s, &r, NULL), 0);
	memset(s, 'a', 238);
	s[238] = '\0';
	CHECK_EQ_INT(reference_parse(s, &r, &err), -EINVAL);
	CHECK(strstr(err.msg, "must not be more than 255 characters"));
	/* the message shows a bounded prefix of the input */
	CHECK(strlen(err.msg) < 250);
	/* host + path over 255 */
	memcpy(s, "h.io/", 5);
	memset(s + 5, 'b', 251);
	s[256] = '\0';
	err.code = 0;
	CHECK_EQ_INT(reference_parse(s, &r, &err), -EINVAL);
	CHECK(strstr(err.msg, "must not be more than 255 characters"));
	s[255] = '\0'; /* exactly 255 */
	CHECK_EQ_INT(reference_parse(s, &r, NULL), 0);
	/* far too long overall */
	memset(s, 'a', sizeof(s) - 1);
	s[sizeof(s) - 1] = '\0';
	err.code = 0;
	CHECK_EQ_INT(reference_parse(s, &r, &err), -EINVAL);
	CHECK(strstr(err.msg, "too long"));
}

TEST(hosts)
{
	CHECK(reference_host_is_valid("127.0.0.1:5000"));
	CHECK(reference_host_is_valid("localhost"));
	CHECK(reference_host_is_valid("[::1]:5000"));
	CHECK(reference_host_is_valid("a-b.c"));
	CHECK(!reference_host_is_valid(""));
	CHECK(!reference_host_is_valid("a:b"));
	CHECK(!reference_host_is_valid("a:1:2"));
	CHECK(!reference_host_is_valid("[::1]x"));
	CHECK(!reference_host_is_valid("a_b.com"));
}

int main(void)
{
	RUN(valid_table);
	RUN(invalid_table);
	RUN(table_size);
	RUN(parts);
	RUN(tag_limits);
	RUN(name_length);
	RUN(hosts);
	return test_done();
}
