/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for src/proto: round trips, one test per rejection rule, the incremental reader. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "proto/proto.h"
#include "util/buf.h"
#include "test.h"

#define BIG (PROTO_HDR_SIZE + PROTO_MAX_PAYLOAD)

/* --- a raw payload builder, to hand-craft what an encoder refuses to produce --- */

static void b_raw(struct buf *b, const void *p, size_t n)
{
	if (buf_append(b, p, n) < 0)
		abort();
}

static void b_u8(struct buf *b, uint8_t v)
{
	b_raw(b, &v, 1);
}

static void b_u16(struct buf *b, uint16_t v)
{
	uint8_t p[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
	b_raw(b, p, 2);
}

static void b_u32(struct buf *b, uint32_t v)
{
	uint8_t p[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
	b_raw(b, p, 4);
}

static void b_strn(struct buf *b, const char *s, size_t n)
{
	b_u32(b, (uint32_t)n);
	b_raw(b, s, n);
}

static void b_str(struct buf *b, const char *s)
{
	b_strn(b, s, strlen(s));
}

static void b_hdr(struct buf *b, uint32_t len, uint16_t type, uint16_t flags, uint32_t stream)
{
	b_u32(b, len);
	b_u16(b, type);
	b_u16(b, flags);
	b_u32(b, stream);
}

/* The sections of a valid START payload, so a test can replace exactly one of them. */
static void s_argv(struct buf *b)
{
	b_u32(b, 2);
	b_str(b, "/bin/sh");
	b_str(b, "-c");
}

static void s_env(struct buf *b)
{
	b_u32(b, 1);
	b_str(b, "PATH=/bin");
}

static void s_paths(struct buf *b)
{
	b_str(b, "/");
	b_str(b, "box");
	b_str(b, "/dev/vda");
	b_str(b, ""); /* user */
}

static void s_ids(struct buf *b)
{
	b_u32(b, 1000);
	b_u32(b, 1000);
	b_u32(b, 1);
	b_u32(b, 27);
}

/* terminal, open_stdin, rows, cols, then v3's exec, tool, readonly, init, unconfined, caps,
 * no rlimits, no tmpfs, then v5's: no network, no hosts, no resolv, then v7's: no mounts */
static void s_tty(struct buf *b)
{
	b_u8(b, 1);
	b_u8(b, 1);
	b_u16(b, 24);
	b_u16(b, 80);
	for (int i = 0; i < 5; i++)
		b_u8(b, 0);
	b_u32(b, 0xa80425fb);
	b_u32(b, 0);
	b_u32(b, 0);
	b_u32(b, 0);
	b_u8(b, 0);
	b_str(b, "");
	b_str(b, "");
	b_u32(b, 0);
}

static int get_start(const struct buf *b, struct proto_start *m)
{
	return proto_get_start(b->data, b->len, m);
}

static bool start_is_zero(const struct proto_start *m)
{
	return !m->argv && !m->env && !m->cwd && !m->hostname && !m->rootfs && !m->user && !m->groups &&
	       m->argc == 0 && m->envc == 0 && m->ngroups == 0;
}

/* Decode the one frame in b: header checked against type/stream, payload returned. */
static int one_frame(const struct buf *b, uint16_t type, uint32_t stream, const uint8_t **ret_p,
		     size_t *ret_len)
{
	struct proto_hdr h;
	int r;

	if (b->len < PROTO_HDR_SIZE)
		return -EIO;
	r = proto_hdr_decode(b->data, &h);
	if (r < 0)
		return r;
	if (h.type != type || h.stream != stream || h.flags != 0 ||
	    b->len != PROTO_HDR_SIZE + h.len)
		return -EIO;
	*ret_p = b->data + PROTO_HDR_SIZE;
	*ret_len = h.len;
	return 0;
}

static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	if (!s)
		abort();
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* Large constant inputs for the START rejection tests. */
static const char *repeat_static(void)
{
	static char s[PROTO_MAX_STRING + 1];

	memset(s, 'a', sizeof(s));
	return s;
}

static const void *zeros_static(void)
{
	static const uint8_t z[(PROTO_MAX_LIST + 1) * 4];

	return z;
}

/* ---------------------------------------------------------------- header */

TEST(hdr_little_endian_bytes)
{
	struct proto_hdr h = {
		.len = 0x04030201, .type = 0x0605, .flags = 0, .stream = 0x0a090807
	};
	const uint8_t want[PROTO_HDR_SIZE] = { 1, 2, 3, 4, 5, 6, 0, 0, 7, 8, 9, 10 };
	uint8_t out[PROTO_HDR_SIZE];

	proto_hdr_encode(&h, out);
	CHECK(memcmp(out, want, sizeof(want)) == 0);
}

TEST(hdr_roundtrip)
{
	struct proto_hdr h = { .len = 4, .type = PROTO_SIGNAL, .stream = 0xdeadbeef }, d;
	uint8_t out[PROTO_HDR_SIZE];

	proto_hdr_encode(&h, out);
	CHECK_EQ_INT(proto_hdr_decode(out, &d), 0);
	CHECK_EQ_INT(d.len, 4);
	CHECK_EQ_INT(d.type, PROTO_SIGNAL);
	CHECK_EQ_INT(d.flags, 0);
	CHECK_EQ_INT(d.stream, 0xdeadbeef);
}

static int hdr(uint32_t len, uint16_t type, uint16_t flags, uint32_t stream)
{
	struct proto_hdr h = { .len = len, .type = type, .flags = flags, .stream = stream };
	struct proto_hdr d = { .len = 77, .type = 77, .flags = 77, .stream = 77 };
	uint8_t out[PROTO_HDR_SIZE];
	int r;

	proto_hdr_encode(&h, out);
	r = proto_hdr_decode(out, &d);
	/* on failure *ret is untouched */
	if (r < 0 && (d.len != 77 || d.type != 77 || d.flags != 77 || d.stream != 77))
		return -EIO;
	return r;
}

TEST(hdr_rejects_type_zero)
{
	CHECK_EQ_INT(hdr(0, 0, 0, 1), -EPROTO);
}

TEST(hdr_rejects_type_unknown)
{
	CHECK_EQ_INT(hdr(0, PROTO_TYPE_MAX, 0, 1), -EPROTO);
	CHECK_EQ_INT(hdr(0, 0xffff, 0, 1), -EPROTO);
}

TEST(hdr_rejects_flags)
{
	CHECK_EQ_INT(hdr(4, PROTO_SIGNAL, 1, 1), -EPROTO);
	CHECK_EQ_INT(hdr(4, PROTO_SIGNAL, 0x8000, 1), -EPROTO);
}

TEST(hdr_rejects_len_over_max_payload)
{
	CHECK_EQ_INT(hdr(PROTO_MAX_PAYLOAD, PROTO_START, 0, 1), 0);
	CHECK_EQ_INT(hdr(PROTO_MAX_PAYLOAD + 1, PROTO_START, 0, 1), -EMSGSIZE);
	CHECK_EQ_INT(hdr(UINT32_MAX, PROTO_START, 0, 1), -EMSGSIZE);
}

TEST(hdr_data_bounds)
{
	static const uint16_t types[] = { PROTO_STDIN, PROTO_STDOUT, PROTO_STDERR };

	for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
		CHECK_EQ_INT(hdr(1, types[i], 0, 1), 0);
		CHECK_EQ_INT(hdr(PROTO_MAX_DATA, types[i], 0, 1), 0);
	}
}

TEST(hdr_rejects_data_empty)
{
	CHECK_EQ_INT(hdr(0, PROTO_STDIN, 0, 1), -EPROTO);
	CHECK_EQ_INT(hdr(0, PROTO_STDOUT, 0, 1), -EPROTO);
	CHECK_EQ_INT(hdr(0, PROTO_STDERR, 0, 1), -EPROTO);
}

TEST(hdr_rejects_data_over_max)
{
	CHECK_EQ_INT(hdr(PROTO_MAX_DATA + 1, PROTO_STDIN, 0, 1), -EMSGSIZE);
	CHECK_EQ_INT(hdr(PROTO_MAX_DATA + 1, PROTO_STDOUT, 0, 1), -EMSGSIZE);
	CHECK_EQ_INT(hdr(PROTO_MAX_DATA + 1, PROTO_STDERR, 0, 1), -EMSGSIZE);
}

/* proto_reader_read over a pipe: frames split across reads, -EAGAIN when empty, 0 at EOF */
TEST(reader_read_from_fd)
{
	struct buf b = BUF_INIT(1024);
	struct proto_reader r;
	struct proto_hdr h;
	const uint8_t *p;
	int fds[2];

	CHECK_EQ_INT(pipe2(fds, O_NONBLOCK), 0);
	proto_reader_init(&r);
	CHECK_EQ_INT(proto_put_u32(&b, PROTO_STARTED, 1, 42), 0);
	CHECK_EQ_INT(proto_put_data(&b, PROTO_STDOUT, 1, "hi", 2), 0);
	CHECK_EQ_INT(proto_reader_read(&r, fds[0]), -EAGAIN);
	CHECK_EQ_INT(write(fds[1], b.data, 5), 5);
	CHECK_EQ_INT(proto_reader_read(&r, fds[0]), 5);
	CHECK_EQ_INT(proto_reader_next(&r, &h, &p), 0);
	CHECK_EQ_INT(write(fds[1], b.data + 5, b.len - 5), (long long)(b.len - 5));
	CHECK_EQ_INT(proto_reader_read(&r, fds[0]), (long long)(b.len - 5));
	CHECK_EQ_INT(proto_reader_next(&r, &h, &p), 1);
	CHECK_EQ_INT(h.type, PROTO_STARTED);
	CHECK_EQ_INT(proto_reader_next(&r, &h, &p), 1);
	CHECK_EQ_INT(h.type, PROTO_STDOUT);
	CHECK(h.len == 2 && memcmp(p, "hi", 2) == 0);
	CHECK_EQ_INT(proto_reader_next(&r, &h, &p), 0);
	close(fds[1]);
	CHECK_EQ_INT(proto_reader_read(&r, fds[0]), 0);
	CHECK_EQ_INT(proto_reader_read(&r, -1), -EBADF);
	close(fds[0]);
	proto_reader_done(&r);
	buf_done(&b);
}

TEST(notice_bounds)
{
	struct buf b = BUF_INIT(PROTO_HDR_SIZE + PROTO_MAX_MESSAGE + 1);
	char text[PROTO_MAX_MESSAGE + 1];

	memset(text, 'x', sizeof(text));
	CHECK_EQ_INT(hdr(1, PROTO_NOTICE, 0, 0), 0);
	CHECK_EQ_INT(hdr(PROTO_MAX_MESSAGE, PROTO_NOTICE, 0, 0), 0);
	CHECK_EQ_INT(hdr(0, PROTO_NOTICE, 0, 0), -EPROTO);
	CHECK_EQ_INT(hdr(PROTO_MAX_MESSAGE + 1, PROTO_NOTICE, 0, 0), -EMSGSIZE);
	CHECK_EQ_INT(proto_put_data(&b, PROTO_NOTICE, 0, text, PROTO_MAX_MESSAGE + 1), -EINVAL);
	CHECK_EQ_INT(proto_put_data(&b, PROTO_NOTICE, 0, text, 0), -EINVAL);
	CHECK_EQ_INT(proto_put_data(&b, PROTO_NOTICE, 0, text, PROTO_MAX_MESSAGE), 0);
	CHECK_EQ_INT((int)b.len, (int)(PROTO_HDR_SIZE + PROTO_MAX_MESSAGE));
	CHECK_EQ_STR(proto_type_name(PROTO_NOTICE), "NOTICE");
	buf_done(&b);
}

TEST(hdr_rejects_stdin_eof_payload)
{
	CHECK_EQ_INT(hdr(0, PROTO_STDIN_EOF, 0, 1), 0);
	CHECK_EQ_INT(hdr(1, PROTO_STDIN_EOF, 0, 1), -EMSGSIZE);
}

TEST(hdr_rejects_u32_not_4)
{
	CHECK_EQ_INT(hdr(4, PROTO_STARTED, 0, 1), 0);
	CHECK_EQ_INT(hdr(3, PROTO_STARTED, 0, 1), -EPROTO);
	CHECK_EQ_INT(hdr(5, PROTO_STARTED, 0, 1), -EMSGSIZE);
	CHECK_EQ_INT(hdr(4, PROTO_SIGNAL, 0, 1), 0);
	CHECK_EQ_INT(hdr(0, PROTO_SIGNAL, 0, 1), -EPROTO);
	CHECK_EQ_INT(hdr(8, PROTO_SIGNAL, 0, 1), -EMSGSIZE);
}

TEST(hdr_rejects_resize_not_4)
{
	CHECK_EQ_INT(hdr(4, PROTO_RESIZE, 0, 1), 0);
	CHECK_EQ_INT(hdr(2, PROTO_RESIZE, 0, 1), -EPROTO);
	CHECK_EQ_INT(hdr(6, PROTO_RESIZE, 0, 1), -EMSGSIZE);
}

TEST(hdr_rejects_exit_not_5)
{
	CHECK_EQ_INT(hdr(5, PROTO_EXIT, 0, 1), 0);
	CHECK_EQ_INT(hdr(4, PROTO_EXIT, 0, 1), -EPROTO);
	CHECK_EQ_INT(hdr(6, PROTO_EXIT, 0, 1), -EMSGSIZE);
}

TEST(hdr_rejects_hello_bounds)
{
	CHECK_EQ_INT(hdr(8, PROTO_HELLO, 0, 0), 0);
	CHECK_EQ_INT(hdr(8 + 64, PROTO_HELLO, 0, 0), 0);
	CHECK_EQ_INT(hdr(7, PROTO_HELLO, 0, 0), -EPROTO);
	CHECK_EQ_INT(hdr(8 + 65, PROTO_HELLO, 0, 0), -EMSGSIZE);
}

TEST(hdr_rejects_error_bounds)
{
	CHECK_EQ_INT(hdr(8 + PROTO_MAX_MESSAGE, PROTO_ERROR, 0, 1), 0);
	CHECK_EQ_INT(hdr(7, PROTO_ERROR, 0, 1), -EPROTO);
	CHECK_EQ_INT(hdr(8 + PROTO_MAX_MESSAGE + 1, PROTO_ERROR, 0, 1), -EMSGSIZE);
}

TEST(hdr_rejects_start_too_short)
{
	CHECK_EQ_INT(hdr(67, PROTO_START, 0, 1), 0);
	CHECK_EQ_INT(hdr(66, PROTO_START, 0, 1), -EPROTO);
}

TEST(hdr_rejects_hello_stream_nonzero)
{
	CHECK_EQ_INT(hdr(8, PROTO_HELLO, 0, 1), -EPROTO);
}

TEST(hdr_rejects_start_stream_zero)
{
	CHECK_EQ_INT(hdr(42, PROTO_START, 0, 0), -EPROTO);
}

TEST(type_names)
{
	CHECK_EQ_STR(proto_type_name(PROTO_HELLO), "HELLO");
	CHECK_EQ_STR(proto_type_name(PROTO_START), "START");
	CHECK_EQ_STR(proto_type_name(PROTO_STARTED), "STARTED");
	CHECK_EQ_STR(proto_type_name(PROTO_STDIN), "STDIN");
	CHECK_EQ_STR(proto_type_name(PROTO_STDIN_EOF), "STDIN_EOF");
	CHECK_EQ_STR(proto_type_name(PROTO_STDOUT), "STDOUT");
	CHECK_EQ_STR(proto_type_name(PROTO_STDERR), "STDERR");
	CHECK_EQ_STR(proto_type_name(PROTO_SIGNAL), "SIGNAL");
	CHECK_EQ_STR(proto_type_name(PROTO_RESIZE), "RESIZE");
	CHECK_EQ_STR(proto_type_name(PROTO_EXIT), "EXIT");
	CHECK_EQ_STR(proto_type_name(PROTO_ERROR), "ERROR");
	CHECK_EQ_STR(proto_type_name(0), "UNKNOWN");
	CHECK_EQ_STR(proto_type_name(PROTO_TYPE_MAX), "UNKNOWN");
	CHECK_EQ_STR(proto_type_name(0xffff), "UNKNOWN");
}

/* ---------------------------------------------------------------- round trips */

TEST(hello_wire_bytes)
{
	struct buf b = BUF_INIT(BIG);
	struct proto_hello m = { .version = 1, .kernel = (char *)"6.1" };
	const uint8_t want[] = { 11, 0, 0, 0, 1, 0, 0, 0, 0,   0,   0,	0, /* header */
				 1,  0, 0, 0, 3, 0, 0, 0, '6', '.', '1' };

	CHECK_EQ_INT(proto_put_hello(&b, &m), 0);
	CHECK_EQ_INT(b.len, sizeof(want));
	CHECK(b.len == sizeof(want) && memcmp(b.data, want, sizeof(want)) == 0);
	buf_done(&b);
}

TEST(hello_roundtrip)
{
	struct buf b = BUF_INIT(BIG);
	_cleanup_free_ char *k = repeat('k', 64);
	struct proto_hello m = { .version = PROTO_VERSION, .kernel = k }, d;
	const uint8_t *p;
	size_t len;

	CHECK_EQ_INT(proto_put_hello(&b, &m), 0);
	CHECK_EQ_INT(one_frame(&b, PROTO_HELLO, 0, &p, &len), 0);
	CHECK_EQ_INT(proto_get_hello(p, len, &d), 0);
	CHECK_EQ_INT(d.version, PROTO_VERSION);
	CHECK_EQ_STR(d.kernel, k);
	proto_hello_done(&d);
	CHECK(d.kernel == NULL);
	buf_done(&b);
}

TEST(hello_any_version_decodes)
{
	struct buf b = BUF_INIT(BIG);
	struct proto_hello m = { .version = 0xffffffff, .kernel = (char *)"" }, d;
	const uint8_t *p;
	size_t len;

	CHECK_EQ_INT(proto_put_hello(&b, &m), 0);
	CHECK_EQ_INT(one_frame(&b, PROTO_HELLO, 0, &p, &len), 0);
	CHECK_EQ_INT(proto_get_hello(p, len, &d), 0);
	CHECK_EQ_INT(d.version, 0xffffffff);
	CHECK_EQ_STR(d.kernel, "");
	proto_hello_done(&d);
	buf_done(&b);
}

static bool strv_equal(char *const *a, char *const *b, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (strcmp(a[i], b[i]) != 0)
			return false;
	return b[n] == NULL;
}

TEST(start_roundtrip)
{
	char *argv[] = { (char *)"/bin/sh", (char *)"-c", (char *)"", (char *)"echo hi", NULL };
	char *env[] = { (char *)"PATH=/usr/bin:/bin", (char *)"EMPTY=", (char *)"X==y", NULL };
	uint32_t groups[] = { 0, 10, 4294967294u };
	struct proto_start m = {
		.argv = argv, .argc = 4, .env = env, .envc = 3, .cwd = (char *)"/root",
		.hostname = (char *)"box", .rootfs = (char *)"/dev/vda", .user = (char *)"app:staff",
		.uid = 1000,
		.gid = 4294967294u, .groups = groups, .ngroups = 3, .terminal = 1,
		.open_stdin = 1, .rows = 0xffff, .cols = 0x1234,
	}, d;
	struct buf b = BUF_INIT(BIG);
	const uint8_t *p;
	size_t len;

	CHECK_EQ_INT(proto_put_start(&b, 7, &m), 0);
	CHECK_EQ_INT(one_frame(&b, PROTO_START, 7, &p, &len), 0);
	CHECK_EQ_INT(proto_get_start(p, len, &d), 0);
	CHECK_EQ_INT(d.argc, 4);
	CHECK(strv_equal(argv, d.argv, 4));
	CHECK_EQ_INT(d.envc, 3);
	CHECK(strv_equal(env, d.env, 3));
	CHECK_EQ_STR(d.cwd, "/root");
	CHECK_EQ_STR(d.hostname, "box");
	CHECK_EQ_STR(d.user, "app:staff");
	CHECK_EQ_STR(d.rootfs, "/dev/vda");
	CHECK_EQ_INT(d.uid, 1000);
	CHECK_EQ_INT(d.gid, 4294967294u);
	CHECK_EQ_INT(d.ngroups, 3);
	CHECK(d.groups && memcmp(d.groups, groups, sizeof(groups)) == 0);
	CHECK_EQ_INT(d.terminal, 1);
	CHECK_EQ_INT(d.open_stdin, 1);
	CHECK_EQ_INT(d.rows, 0xffff);
	CHECK_EQ_INT(d.cols, 0x1234);
	proto_start_done(&d);
	CHECK(start_is_zero(&d));
	proto_start_done(&d); /* idempotent */
	buf_done(&b);
}

TEST(start_roundtrip_minimal)
{
	char *argv[] = { (char *)"true", NULL };
	struct proto_start m = {
		.argv = argv, .argc = 1, .cwd = (char *)"/", .hostname = (char *)"",
		.rootfs = (char *)"/dev/vda",
	}, d;
	struct buf b = BUF_INIT(BIG);
	const uint8_t *p;
	size_t len;

	CHECK_EQ_INT(proto_put_start(&b, 1, &m), 0);
	CHECK_EQ_INT(one_frame(&b, PROTO_START, 1, &p, &len), 0);
	CHECK_EQ_INT(proto_get_start(p, len, &d), 0);
	CHECK_EQ_INT(d.argc, 1);
	CHECK(strv_equal(argv, d.argv, 1));
	CHECK_EQ_INT(d.envc, 0);
	CHECK(d.env && d.env[0] == NULL); /* an empty list is still a NULL-terminated array */
	CHECK_EQ_STR(d.hostname, "");
	CHECK_EQ_INT(d.ngroups, 0);
	CHECK(d.groups == NULL);
	CHECK_EQ_INT(d.terminal, 0);
	proto_start_done(&d);
	buf_done(&b);
}

TEST(start_roundtrip_limits)
{
	/* PROTO_MAX_LIST entries everywhere, a PROTO_MAX_STRING cwd, a 64-byte hostname */
	_cleanup_free_ char **argv = calloc(PROTO_MAX_LIST + 1, sizeof(char *));
	_cleanup_free_ char **env = calloc(PROTO_MAX_LIST + 1, sizeof(char *));
	_cleanup_free_ uint32_t *groups = calloc(PROTO_MAX_LIST, sizeof(uint32_t));
	_cleanup_free_ char *cwd = repeat('/', PROTO_MAX_STRING);
	_cleanup_free_ char *host = repeat('h', 64);
	struct proto_start m = { 0 }, d;
	struct buf b = BUF_INIT(BIG);
	const uint8_t *p;
	size_t len;

	CHECK(argv && env && groups);
	if (!argv || !env || !groups)
		return;
	for (uint32_t i = 0; i < PROTO_MAX_LIST; i++) {
		argv[i] = (char *)"a";
		env[i] = (char *)"K=V";
		groups[i] = i;
	}
	m = (struct proto_start){
		.argv = argv,
		.argc = PROTO_MAX_LIST,
		.env = env,
		.envc = PROTO_MAX_LIST,
		.cwd = cwd,
		.hostname = host,
		.rootfs = (char *)"/dev/vdb",
		.groups = groups,
		.ngroups = PROTO_MAX_LIST,
	};
	CHECK_EQ_INT(proto_put_start(&b, 2, &m), 0);
	CHECK_EQ_INT(one_frame(&b, PROTO_START, 2, &p, &len), 0);
	CHECK_EQ_INT(proto_get_start(p, len, &d), 0);
	CHECK_EQ_INT(d.argc, PROTO_MAX_LIST);
	CHECK(d.argv && strv_equal(argv, d.argv, PROTO_MAX_LIST));
	CHECK(d.env && strv_equal(env, d.env, PROTO_MAX_LIST));
	CHECK_EQ_STR(d.cwd, cwd);
	CHECK_EQ_STR(d.hostname, host);
	CHECK(d.groups && memcmp(d.groups, groups, PROTO_MAX_LIST * sizeof(uint32_t)) == 0);
	proto_start_done(&d);
	buf_done(&b);
}

TEST(u32_roundtrip)
{
	struct buf b = BUF_INIT(BIG);
	const uint8_t *p;
	uint32_t v = 0;
	size_t len;

	CHECK_EQ_INT(proto_put_u32(&b, PROTO_STARTED, 1, 0x89abcdef), 0);
	CHECK_EQ_INT(one_frame(&b, PROTO_STARTED, 1, &p, &len), 0);
	CHECK_EQ_INT(proto_get_u32(p, len, &v), 0);
	CHECK_EQ_INT(v, 0x89abcdef);
	buf_reset(&b);
	for (uint32_t sig = 1; sig <= 64; sig++) {
		buf_reset(&b);
		CHECK_EQ_INT(proto_put_u32(&b, PROTO_SIGNAL, 3, sig), 0);
		CHECK_EQ_INT(one_frame(&b, PROTO_SIGNAL, 3, &p, &len), 0);
		CHECK_EQ_INT(proto_get_u32(p, len, &v), 0);
		CHECK_EQ_INT(v, sig);
	}
	buf_done(&b);
}

TEST(resize_roundtrip)
{
	struct buf b = BUF_INIT(BIG);
	uint16_t rows = 1, cols = 1;
	const uint8_t *p;
	size_t len;

	CHECK_EQ_INT(proto_put_resize(&b, 1, 50, 0xfedc), 0);
	CHECK_EQ_INT(one_frame(&b, PROTO_RESIZE, 1, &p, &len), 0);
	CHECK_EQ_INT(proto_get_resize(p, len, &rows, &cols), 0);
	CHECK_EQ_INT(rows, 50);
	CHECK_EQ_INT(cols, 0xfedc);
	buf_done(&b);
}

/* v5/v6: the networks of up to four NICs and the /etc files, for the main process */
TEST(start_net_roundtrip)
{
	char *argv[] = { (char *)"/bin/sh", NULL };
	struct proto_start m = {
		.argv = argv, .argc = 1, .cwd = (char *)"/", .hostname = (char *)"web",
		.rootfs = (char *)"/dev/vda", .nnets = 2,
		.nets = { { .mac = { 0x02, 0x63, 10, 89, 0, 2 }, .addr = 0x0a590002, .prefix = 24,
			    .gateway = 0x0a590001, .mtu = 1500 },
			  { .mac = { 0x02, 0x63, 10, 77, 0, 9 }, .addr = 0x0a4d0009, .prefix = 16,
			    .gateway = 0, .mtu = 9000 } },
		.hosts = (char *)"10.89.0.2\tweb\n", .resolv = (char *)"nameserver 192.0.2.53\n",
	}, d;
	struct buf b = BUF_INIT(BIG);
	const uint8_t *p;
	size_t len;

	CHECK_EQ_INT(proto_put_start(&b, 1, &m), 0);
	CHECK_EQ_INT(one_frame(&b, PROTO_START, 1, &p, &len), 0);
	CHECK_EQ_INT(proto_get_start(p, len, &d), 0);
	CHECK_EQ_INT(d.nnets, 2);
	CHECK(memcmp(d.nets[0].mac, m.nets[0].mac, 6) == 0 && d.nets[0].addr == 0x0a590002);
	CHECK(d.nets[0].prefix == 24 && d.nets[0].gateway == 0x0a590001 && d.nets[0].mtu == 1500);
	CHECK(memcmp(d.nets[1].mac, m.nets[1].mac, 6) == 0 && d.nets[1].addr == 0x0a4d0009);
	CHECK(d.nets[1].prefix == 16 && d.nets[1].gateway == 0 && d.nets[1].mtu == 9000);
	CHECK_EQ_STR(d.hosts, "10.89.0.2\tweb\n");
	CHECK_EQ_STR(d.resolv, "nameserver 192.0.2.53\n");
	proto_start_done(&d);

	/* refused: a multicast MAC, /31, the network's own or broadcast address, a gateway
	 * outside the subnet or equal to the address, a tiny MTU */
	buf_reset(&b);
	m.nets[0].mac[0] = 0x03;
	CHECK_EQ_INT(proto_put_start(&b, 1, &m), -EINVAL);
	m.nets[0].mac[0] = 0x02;
	m.nets[0].prefix = 31;
	CHECK_EQ_INT(proto_put_start(&b, 1, &m), -EINVAL);
	m.nets[0].prefix = 24;
	m.nets[0].addr = 0x0a590000;
	CHECK_EQ_INT(proto_put_start(&b, 1, &m), -EINVAL);
	m.nets[0].addr = 0x0a5900ff;
	CHECK_EQ_INT(proto_put_start(&b, 1, &m), -EINVAL);
	m.nets[0].addr = 0x0a590002;
	m.nets[0].gateway = 0x0a5a0001;
	CHECK_EQ_INT(proto_put_start(&b, 1, &m), -EINVAL);
	m.nets[0].gateway = 0x0a590002;
	CHECK_EQ_INT(proto_put_start(&b, 1, &m), -EINVAL);
	m.nets[0].gateway = 0x0a590001;
	m.nets[0].mtu = 100;
	CHECK_EQ_INT(proto_put_start(&b, 1, &m), -EINVAL);
	m.nets[0].mtu = 1500;
	m.nnets = PROTO_MAX_NICS + 1; /* more NICs than there may be */
	CHECK_EQ_INT(proto_put_start(&b, 1, &m), -EINVAL);
	m.nnets = 2;
	m.nets[1].addr = 0x0a4d0000; /* the second is checked as the first is */
	CHECK_EQ_INT(proto_put_start(&b, 1, &m), -EINVAL);
	CHECK_EQ_INT(b.len, 0);
	buf_done(&b);
}

/* v7: bind mounts and volumes, for the main process */
TEST(start_mounts_roundtrip)
{
	char *argv[] = { (char *)"/bin/sh", NULL };
	struct proto_mount mounts[] = {
		{ .kind = PROTO_MOUNT_9P, .readonly = 1, .tag = (char *)"cove0", .file = (char *)"",
		  .dst = (char *)"/src" },
		{ .kind = PROTO_MOUNT_9P, .tag = (char *)"cove1", .file = (char *)"hosts",
		  .dst = (char *)"/etc/hosts" },
		{ .kind = PROTO_MOUNT_BLOCK, .populate = 1, .tag = (char *)"covevol0",
		  .file = (char *)"", .dst = (char *)"/var/lib/data" },
	};
	struct proto_start m = {
		.argv = argv, .argc = 1, .cwd = (char *)"/", .hostname = (char *)"",
		.rootfs = (char *)"/dev/vda", .mounts = mounts, .nmounts = 3,
	}, d;
	struct buf b = BUF_INIT(BIG);
	const uint8_t *p;
	size_t len;

	CHECK_EQ_INT(proto_put_start(&b, 1, &m), 0);
	CHECK_EQ_INT(one_frame(&b, PROTO_START, 1, &p, &len), 0);
	CHECK_EQ_INT(proto_get_start(p, len, &d), 0);
	CHECK_EQ_INT(d.nmounts, 3);
	CHECK(d.mounts[0].kind == PROTO_MOUNT_9P && d.mounts[0].readonly == 1 &&
	      d.mounts[0].populate == 0);
	CHECK_EQ_STR(d.mounts[1].file, "hosts");
	CHECK_EQ_STR(d.mounts[2].tag, "covevol0");
	CHECK_EQ_STR(d.mounts[2].dst, "/var/lib/data");
	CHECK(d.mounts[2].kind == PROTO_MOUNT_BLOCK && d.mounts[2].populate == 1);
	proto_start_done(&d);

	/* refused: an unknown kind, a tag the guest could not match, a file with a '/', a file of
	 * a block volume, a relative or root destination, too many */
	buf_reset(&b);
	mounts[0].kind = 3;
	CHECK_EQ_INT(proto_put_start(&b, 1, &m), -EINVAL);
	mounts[0].kind = PROTO_MOUNT_9P;
	mounts[0].tag = (char *)"cove 0";
	CHECK_EQ_INT(proto_put_start(&b, 1, &m), -EINVAL);
	mounts[0].tag = (char *)"abcdefghijklmnopqrstu"; /* 21 bytes */
	CHECK_EQ_INT(proto_put_start(&b, 1, &m), -EINVAL);
	mounts[0].tag = (char *)"cove0";
	mounts[1].file = (char *)"../hosts";
	CHECK_EQ_INT(proto_put_start(&b, 1, &m), -EINVAL);
	mounts[1].file = (char *)"..";
	CHECK_EQ_INT(proto_put_start(&b, 1, &m), -EINVAL);
	mounts[1].file = (char *)"hosts";
	mounts[2].file = (char *)"x";
	CHECK_EQ_INT(proto_put_start(&b, 1, &m), -EINVAL);
	mounts[2].file = (char *)"";
	mounts[2].dst = (char *)"var";
	CHECK_EQ_INT(proto_put_start(&b, 1, &m), -EINVAL);
	mounts[2].dst = (char *)"//";
	CHECK_EQ_INT(proto_put_start(&b, 1, &m), -EINVAL);
	mounts[2].dst = (char *)"/d";
	m.nmounts = PROTO_MAX_MOUNTS + 1;
	CHECK_EQ_INT(proto_put_start(&b, 1, &m), -EINVAL);
	CHECK_EQ_INT(b.len, 0);
	buf_done(&b);
}

TEST(start_v3_fields_roundtrip)
{
	char *argv[] = { (char *)"/bin/sh", NULL };
	char *tmpfs[] = { (char *)"/data:size=1m", NULL };
	struct proto_rlimit rl[] = { { 7, 100, 200 }, { 4, UINT64_MAX, UINT64_MAX } };
	struct proto_start m = {
		.argv = argv, .argc = 1, .cwd = (char *)"/", .hostname = (char *)"",
		.rootfs = (char *)"/dev/vda", .exec = 1, .tool = PROTO_TOOL_TAR_OUT, .readonly = 1,
		.init = 1, .unconfined = 1, .caps = 0x1ffffffffffULL, .rlimits = rl, .nrlimits = 2,
		.tmpfs = tmpfs, .ntmpfs = 1,
	}, d;
	struct buf b = BUF_INIT(BIG);
	const uint8_t *p;
	size_t len;

	CHECK_EQ_INT(proto_put_start(&b, 5, &m), 0);
	CHECK_EQ_INT(one_frame(&b, PROTO_START, 5, &p, &len), 0);
	CHECK_EQ_INT(proto_get_start(p, len, &d), 0);
	CHECK_EQ_INT(d.exec, 1);
	CHECK_EQ_INT(d.tool, PROTO_TOOL_TAR_OUT);
	CHECK_EQ_INT(d.readonly + d.init + d.unconfined, 3);
	CHECK(d.caps == 0x1ffffffffffULL);
	CHECK_EQ_INT(d.nrlimits, 2);
	CHECK(d.rlimits[0].resource == 7 && d.rlimits[0].soft == 100 && d.rlimits[0].hard == 200);
	CHECK(d.rlimits[1].soft == UINT64_MAX && d.rlimits[1].hard == UINT64_MAX);
	CHECK_EQ_INT(d.ntmpfs, 1);
	CHECK_EQ_STR(d.tmpfs[0], "/data:size=1m");
	proto_start_done(&d);

	/* refused: caps beyond CAP_LAST_CAP, soft > hard, unknown resource, tool, relative tmpfs */
	buf_reset(&b);
	m.caps = 1ULL << 41;
	CHECK_EQ_INT(proto_put_start(&b, 5, &m), -EINVAL);
	m.caps = 0;
	rl[0].soft = 300;
	CHECK_EQ_INT(proto_put_start(&b, 5, &m), -EINVAL);
	rl[0].soft = 100;
	rl[0].resource = 16;
	CHECK_EQ_INT(proto_put_start(&b, 5, &m), -EINVAL);
	rl[0].resource = 7;
	m.tool = PROTO_TOOL_MAX;
	CHECK_EQ_INT(proto_put_start(&b, 5, &m), -EINVAL);
	m.tool = 0;
	tmpfs[0] = (char *)"data";
	CHECK_EQ_INT(proto_put_start(&b, 5, &m), -EINVAL);
	CHECK_EQ_INT(b.len, 0);
	buf_done(&b);
}

TEST(supervisor_messages_roundtrip)
{
	struct proto_stats st = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, ds;
	struct proto_stop stop = { 15, 30 }, dstop;
	struct buf b = BUF_INIT(BIG);
	const uint8_t *p;
	size_t len;
	uint32_t v;

	CHECK_EQ_INT(proto_put_stats(&b, &st), 0);
	CHECK_EQ_INT(one_frame(&b, PROTO_STATS, 0, &p, &len), 0);
	CHECK_EQ_INT(proto_get_stats(p, len, &ds), 0);
	CHECK(memcmp(&st, &ds, sizeof(st)) == 0);
	CHECK_EQ_INT(proto_get_stats(p, len - 1, &ds), -EPROTO);
	buf_reset(&b);
	CHECK_EQ_INT(proto_put_stop(&b, &stop), 0);
	CHECK_EQ_INT(one_frame(&b, PROTO_STOP, 1, &p, &len), 0);
	CHECK_EQ_INT(proto_get_stop(p, len, &dstop), 0);
	CHECK(dstop.signal == 15 && dstop.timeout_s == 30);
	buf_reset(&b);
	CHECK_EQ_INT(proto_put_attach(&b, PROTO_ATTACH_STDIN), 0);
	CHECK_EQ_INT(one_frame(&b, PROTO_ATTACH, 1, &p, &len), 0);
	CHECK_EQ_INT(proto_get_u32(p, len, &v), 0);
	CHECK_EQ_INT(v, PROTO_ATTACH_STDIN);
	buf_reset(&b);
	CHECK_EQ_INT(proto_put_attach(&b, 2), -EINVAL);
	CHECK_EQ_INT(proto_put_stop(&b, &(struct proto_stop){ 0, 1 }), -EINVAL);
	CHECK_EQ_INT(proto_put_stop(&b, &(struct proto_stop){ 65, 1 }), -EINVAL);
	CHECK_EQ_INT(proto_put_empty(&b, PROTO_STATS, 1), -EINVAL);
	CHECK_EQ_INT(proto_put_empty(&b, PROTO_STDOUT, 1), -EINVAL);
	CHECK_EQ_INT(b.len, 0);
	/* STATS and SHUTDOWN are about the VM: stream 0 only */
	CHECK_EQ_INT(hdr(0, PROTO_STATS, 0, 1), -EPROTO);
	CHECK_EQ_INT(hdr(0, PROTO_SHUTDOWN, 0, 0), 0);
	CHECK_EQ_INT(hdr(1, PROTO_SHUTDOWN, 0, 0), -EMSGSIZE);
	buf_done(&b);
}

TEST(resume_roundtrip)
{
	struct proto_resume m = { .realtime_ns = 1764932400123456789ULL, .nmacs = 2 }, d;
	struct buf b = BUF_INIT(BIG);
	const uint8_t *p;
	uint8_t *w;
	size_t len;

	for (unsigned i = 0; i < PROTO_ENTROPY; i++)
		m.entropy[i] = (uint8_t)(i * 7 + 1);
	memcpy(m.macs[0], "\x02\x42\xac\x11\x00\x02", 6);
	memcpy(m.macs[1], "\x02\x42\xac\x12\x00\x05", 6);
	CHECK_EQ_INT(proto_put_resume(&b, &m), 0);
	CHECK_EQ_INT(one_frame(&b, PROTO_RESUME, 0, &p, &len), 0);
	CHECK_EQ_INT(proto_get_resume(p, len, &d), 0);
	CHECK(memcmp(&m, &d, sizeof(m)) == 0);
	CHECK_EQ_INT(proto_get_resume(p, len - 1, &d), -EPROTO);
	/* a multicast MAC, a MAC past nmacs, too many MACs: refused both ways */
	w = (uint8_t *)p + 8 + PROTO_ENTROPY + 1;
	w[0] = 0x03;
	CHECK_EQ_INT(proto_get_resume(p, len, &d), -EPROTO);
	w[0] = 0x02;
	w[2 * 6] = 0x02;
	CHECK_EQ_INT(proto_get_resume(p, len, &d), -EPROTO);
	w[2 * 6] = 0;
	w[-1] = PROTO_MAX_NICS + 1;
	CHECK_EQ_INT(proto_get_resume(p, len, &d), -EPROTO);
	buf_reset(&b);
	m.macs[1][0] = 0x01;
	CHECK_EQ_INT(proto_put_resume(&b, &m), -EINVAL);
	m.macs[1][0] = 0x02;
	m.nmacs = PROTO_MAX_NICS + 1;
	CHECK_EQ_INT(proto_put_resume(&b, &m), -EINVAL);
	CHECK_EQ_INT(b.len, 0);
	/* about the VM: stream 0 only */
	CHECK_EQ_INT(hdr(8 + PROTO_ENTROPY + 1 + PROTO_MAX_NICS * 6, PROTO_RESUME, 0, 1), -EPROTO);
	CHECK_EQ_STR(proto_type_name(PROTO_RESUME), "RESUME");
	buf_done(&b);
}

TEST(exit_roundtrip)
{
	static const struct proto_exit cases[] = {
		{ PROTO_EXIT_CODE, 0 },
		{ PROTO_EXIT_CODE, 255 },
		{ PROTO_EXIT_SIGNAL, 1 },
		{ PROTO_EXIT_SIGNAL, 64 },
	};
	struct buf b = BUF_INIT(BIG);
	struct proto_exit d;
	const uint8_t *p;
	size_t len;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		buf_reset(&b);
		CHECK_EQ_INT(proto_put_exit(&b, 9, &cases[i]), 0);
		CHECK_EQ_INT(one_frame(&b, PROTO_EXIT, 9, &p, &len), 0);
		CHECK_EQ_INT(proto_get_exit(p, len, &d), 0);
		CHECK_EQ_INT(d.kind, cases[i].kind);
		CHECK_EQ_INT(d.status, cases[i].status);
	}
	buf_done(&b);
}

TEST(error_roundtrip)
{
	_cleanup_free_ char *msg = repeat('e', PROTO_MAX_MESSAGE);
	struct buf b = BUF_INIT(BIG);
	struct proto_error d;
	const uint8_t *p;
	size_t len;

	CHECK_EQ_INT(proto_put_error(&b, 1, PROTO_ERR_NOTFOUND, "executable file not found"), 0);
	CHECK_EQ_INT(one_frame(&b, PROTO_ERROR, 1, &p, &len), 0);
	CHECK_EQ_INT(proto_get_error(p, len, &d), 0);
	CHECK_EQ_INT(d.kind, PROTO_ERR_NOTFOUND);
	CHECK_EQ_STR(d.message, "executable file not found");
	proto_error_done(&d);
	CHECK(d.message == NULL);

	buf_reset(&b);
	CHECK_EQ_INT(proto_put_error(&b, 0, PROTO_ERR_INTERNAL, msg), 0);
	CHECK_EQ_INT(one_frame(&b, PROTO_ERROR, 0, &p, &len), 0);
	CHECK_EQ_INT(proto_get_error(p, len, &d), 0);
	CHECK_EQ_STR(d.message, msg);
	proto_error_done(&d);
	buf_done(&b);
}

TEST(data_roundtrip)
{
	static const uint16_t types[] = { PROTO_STDIN, PROTO_STDOUT, PROTO_STDERR };
	_cleanup_free_ char *big = repeat('\0', PROTO_MAX_DATA);
	struct buf b = BUF_INIT(BIG);
	const uint8_t *p;
	size_t len;

	for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
		buf_reset(&b);
		CHECK_EQ_INT(proto_put_data(&b, types[i], 4, "x\0y", 3), 0);
		CHECK_EQ_INT(one_frame(&b, types[i], 4, &p, &len), 0);
		CHECK(len == 3 && memcmp(p, "x\0y", 3) == 0);
		buf_reset(&b);
		CHECK_EQ_INT(proto_put_data(&b, types[i], 4, big, PROTO_MAX_DATA), 0);
		CHECK_EQ_INT(one_frame(&b, types[i], 4, &p, &len), 0);
		CHECK(len == PROTO_MAX_DATA && memcmp(p, big, len) == 0);
	}
	buf_reset(&b);
	CHECK_EQ_INT(proto_put_data(&b, PROTO_STDIN_EOF, 4, NULL, 0), 0);
	CHECK_EQ_INT(one_frame(&b, PROTO_STDIN_EOF, 4, &p, &len), 0);
	CHECK_EQ_INT(len, 0);
	buf_done(&b);
}

/* ---------------------------------------------------------------- encoders refuse */

/* Run an encoder on a buffer holding 3 bytes already; it must fail with want and leave them. */
#define CHECK_PUT_FAILS(call, want)                                                                \
	do {                                                                                       \
		struct buf b = BUF_INIT(BIG);                                                      \
		b_raw(&b, "abc", 3);                                                               \
		struct buf *out = &b;                                                              \
		CHECK_EQ_INT((call), (want));                                                      \
		CHECK_EQ_INT(b.len, 3);                                                            \
		CHECK(memcmp(b.data, "abc", 3) == 0);                                              \
		buf_done(&b);                                                                      \
	} while (0)

TEST(put_data_refuses)
{
	_cleanup_free_ char *big = repeat('x', PROTO_MAX_DATA + 1);

	CHECK_PUT_FAILS(proto_put_data(out, PROTO_STDOUT, 1, "x", 0), -EINVAL);
	CHECK_PUT_FAILS(proto_put_data(out, PROTO_STDOUT, 1, NULL, 1), -EINVAL);
	CHECK_PUT_FAILS(proto_put_data(out, PROTO_STDOUT, 1, big, PROTO_MAX_DATA + 1), -EINVAL);
	CHECK_PUT_FAILS(proto_put_data(out, PROTO_STDIN_EOF, 1, "x", 1), -EINVAL);
	CHECK_PUT_FAILS(proto_put_data(out, PROTO_HELLO, 1, "x", 1), -EINVAL);
	CHECK_PUT_FAILS(proto_put_data(out, 0, 1, "x", 1), -EINVAL);
}

TEST(put_u32_refuses)
{
	CHECK_PUT_FAILS(proto_put_u32(out, PROTO_SIGNAL, 1, 0), -EINVAL);
	CHECK_PUT_FAILS(proto_put_u32(out, PROTO_SIGNAL, 1, 65), -EINVAL);
	CHECK_PUT_FAILS(proto_put_u32(out, PROTO_STARTED, 1, 0), -EINVAL);
	CHECK_PUT_FAILS(proto_put_u32(out, PROTO_EXIT, 1, 0), -EINVAL);
}

TEST(put_hello_refuses)
{
	_cleanup_free_ char *k = repeat('k', 65);
	struct proto_hello m = { .version = 1, .kernel = k };
	struct proto_hello null = { .version = 1 };

	CHECK_PUT_FAILS(proto_put_hello(out, &m), -EINVAL);
	CHECK_PUT_FAILS(proto_put_hello(out, &null), -EINVAL);
}

TEST(put_exit_refuses)
{
	struct proto_exit code = { PROTO_EXIT_CODE, 256 }, sig0 = { PROTO_EXIT_SIGNAL, 0 },
			  sig65 = { PROTO_EXIT_SIGNAL, 65 }, kind = { 2, 0 };

	CHECK_PUT_FAILS(proto_put_exit(out, 1, &code), -EINVAL);
	CHECK_PUT_FAILS(proto_put_exit(out, 1, &sig0), -EINVAL);
	CHECK_PUT_FAILS(proto_put_exit(out, 1, &sig65), -EINVAL);
	CHECK_PUT_FAILS(proto_put_exit(out, 1, &kind), -EINVAL);
}

TEST(put_error_refuses)
{
	_cleanup_free_ char *msg = repeat('e', PROTO_MAX_MESSAGE + 1);

	CHECK_PUT_FAILS(proto_put_error(out, 1, PROTO_ERR_NOTFOUND + 1, "x"), -EINVAL);
	CHECK_PUT_FAILS(proto_put_error(out, 1, PROTO_ERR_EXEC, NULL), -EINVAL);
	CHECK_PUT_FAILS(proto_put_error(out, 1, PROTO_ERR_EXEC, msg), -EINVAL);
}

TEST(put_start_refuses)
{
	char *argv[] = { (char *)"sh", NULL };
	char *bad_env[] = { (char *)"NOEQUALS", NULL };
	char *bad_env2[] = { (char *)"=v", NULL };
	char *null_argv[] = { NULL, NULL };
	uint32_t bad_groups[] = { UINT32_MAX };
	_cleanup_free_ char *host = repeat('h', 65);
	_cleanup_free_ char *huge = repeat('a', PROTO_MAX_STRING + 1);
	const struct proto_start ok = {
		.argv = argv,
		.argc = 1,
		.cwd = (char *)"/",
		.hostname = (char *)"",
		.rootfs = (char *)"/dev/vda",
	};
	struct buf scratch = BUF_INIT(BIG);
	struct proto_start m;

	m = ok;
	CHECK_EQ_INT(proto_put_start(&scratch, 1, &m), 0);
	buf_done(&scratch);
	CHECK_PUT_FAILS(proto_put_start(out, 0, &m), -EINVAL); /* stream 0 */
	m = ok;
	m.argc = 0;
	CHECK_PUT_FAILS(proto_put_start(out, 1, &m), -EINVAL);
	m = ok;
	m.argv = NULL;
	CHECK_PUT_FAILS(proto_put_start(out, 1, &m), -EINVAL);
	m = ok;
	m.argv = null_argv;
	CHECK_PUT_FAILS(proto_put_start(out, 1, &m), -EINVAL);
	m = ok;
	m.argc = PROTO_MAX_LIST + 1;
	CHECK_PUT_FAILS(proto_put_start(out, 1, &m), -EINVAL);
	m = ok;
	m.argv = (char *[]){ huge, NULL };
	CHECK_PUT_FAILS(proto_put_start(out, 1, &m), -EINVAL);
	m = ok;
	m.env = bad_env;
	m.envc = 1;
	CHECK_PUT_FAILS(proto_put_start(out, 1, &m), -EINVAL);
	m = ok;
	m.env = bad_env2;
	m.envc = 1;
	CHECK_PUT_FAILS(proto_put_start(out, 1, &m), -EINVAL);
	m = ok;
	m.envc = 1; /* env NULL */
	CHECK_PUT_FAILS(proto_put_start(out, 1, &m), -EINVAL);
	m = ok;
	m.cwd = (char *)"relative";
	CHECK_PUT_FAILS(proto_put_start(out, 1, &m), -EINVAL);
	m = ok;
	m.cwd = (char *)"";
	CHECK_PUT_FAILS(proto_put_start(out, 1, &m), -EINVAL);
	m = ok;
	m.cwd = NULL;
	CHECK_PUT_FAILS(proto_put_start(out, 1, &m), -EINVAL);
	m = ok;
	m.hostname = host;
	CHECK_PUT_FAILS(proto_put_start(out, 1, &m), -EINVAL);
	m = ok;
	m.hostname = NULL;
	CHECK_PUT_FAILS(proto_put_start(out, 1, &m), -EINVAL);
	m = ok;
	m.rootfs = (char *)"vda";
	CHECK_PUT_FAILS(proto_put_start(out, 1, &m), -EINVAL);
	m = ok;
	m.uid = UINT32_MAX;
	CHECK_PUT_FAILS(proto_put_start(out, 1, &m), -EINVAL);
	m = ok;
	m.gid = UINT32_MAX;
	CHECK_PUT_FAILS(proto_put_start(out, 1, &m), -EINVAL);
	m = ok;
	m.groups = bad_groups;
	m.ngroups = 1;
	CHECK_PUT_FAILS(proto_put_start(out, 1, &m), -EINVAL);
	m = ok;
	m.ngroups = 1; /* groups NULL */
	CHECK_PUT_FAILS(proto_put_start(out, 1, &m), -EINVAL);
	m = ok;
	m.terminal = 2;
	CHECK_PUT_FAILS(proto_put_start(out, 1, &m), -EINVAL);
	m = ok;
	m.open_stdin = 2;
	CHECK_PUT_FAILS(proto_put_start(out, 1, &m), -EINVAL);
}

TEST(put_start_refuses_over_max_payload)
{
	/* 17 strings of 64 KiB: every one within bounds, the frame over PROTO_MAX_PAYLOAD */
	_cleanup_free_ char *s = repeat('a', PROTO_MAX_STRING);
	char *argv[18];
	struct proto_start m = {
		.argv = argv,
		.argc = 17,
		.cwd = (char *)"/",
		.hostname = (char *)"",
		.rootfs = (char *)"/dev/vda",
	};

	for (size_t i = 0; i < 17; i++)
		argv[i] = s;
	argv[17] = NULL;
	CHECK_PUT_FAILS(proto_put_start(out, 1, &m), -EINVAL);
}

TEST(put_rolls_back_on_e2big)
{
	struct proto_exit e = { PROTO_EXIT_CODE, 3 };
	struct buf b = BUF_INIT(PROTO_HDR_SIZE + 4); /* room for a header + 4 bytes, not 5 */

	b_raw(&b, "z", 1);
	CHECK_EQ_INT(proto_put_resize(&b, 1, 1, 1), -E2BIG); /* 1 + 16 > 16 */
	CHECK_EQ_INT(b.len, 1);
	buf_reset(&b);
	CHECK_EQ_INT(proto_put_resize(&b, 1, 1, 1), 0);
	buf_reset(&b);
	CHECK_EQ_INT(proto_put_exit(&b, 1, &e), -E2BIG);
	CHECK_EQ_INT(b.len, 0);
	CHECK_EQ_INT(proto_put_error(&b, 1, 0, "long message"), -E2BIG);
	CHECK_EQ_INT(proto_put_hello(&b, &(struct proto_hello){ 1, (char *)"6.1.0" }), -E2BIG);
	CHECK_EQ_INT(b.len, 0);
	buf_done(&b);
}

TEST(put_appends_frames)
{
	struct buf b = BUF_INIT(BIG);
	struct proto_hdr h;

	CHECK_EQ_INT(proto_put_u32(&b, PROTO_STARTED, 1, 42), 0);
	CHECK_EQ_INT(proto_put_data(&b, PROTO_STDOUT, 1, "hi", 2), 0);
	CHECK_EQ_INT(b.len, 2 * PROTO_HDR_SIZE + 4 + 2);
	CHECK_EQ_INT(proto_hdr_decode(b.data + PROTO_HDR_SIZE + 4, &h), 0);
	CHECK_EQ_INT(h.type, PROTO_STDOUT);
	CHECK_EQ_INT(h.len, 2);
	buf_done(&b);
}

/* ---------------------------------------------------------------- START decoder rejects */

#define START_REJECT(name, sections, want)                                                         \
	TEST(name)                                                                                 \
	{                                                                                          \
		struct buf b = BUF_INIT(BIG);                                                      \
		struct proto_start m = { .argc = 99 };                                             \
		sections;                                                                          \
		CHECK_EQ_INT(get_start(&b, &m), (want));                                           \
		CHECK(start_is_zero(&m));                                                          \
		buf_done(&b);                                                                      \
	}

/* the valid base, to be sure the variants below fail for the reason they name */
TEST(get_start_base_ok)
{
	struct buf b = BUF_INIT(BIG);
	struct proto_start m;

	s_argv(&b);
	s_env(&b);
	s_paths(&b);
	s_ids(&b);
	s_tty(&b);
	CHECK_EQ_INT(get_start(&b, &m), 0);
	CHECK_EQ_INT(m.argc, 2);
	CHECK_EQ_STR(m.argv[1], "-c");
	CHECK(m.argv[2] == NULL);
	CHECK_EQ_STR(m.env[0], "PATH=/bin");
	CHECK(m.env[1] == NULL);
	CHECK_EQ_INT(m.groups[0], 27);
	proto_start_done(&m);
	buf_done(&b);
}

START_REJECT(get_start_rejects_argc_zero,
	     (b_u32(&b, 0), s_env(&b), s_paths(&b), s_ids(&b), s_tty(&b)), -EPROTO)
START_REJECT(get_start_rejects_argc_over_list,
	     (b_u32(&b, PROTO_MAX_LIST + 1), s_env(&b), s_paths(&b), s_ids(&b), s_tty(&b)), -EPROTO)
START_REJECT(get_start_rejects_argc_over_remaining,
	     (b_u32(&b, 1000), b_str(&b, "sh"), s_env(&b), s_paths(&b), s_ids(&b), s_tty(&b)),
	     -EPROTO)
START_REJECT(get_start_rejects_argc_huge,
	     (b_u32(&b, UINT32_MAX), s_env(&b), s_paths(&b), s_ids(&b), s_tty(&b)), -EPROTO)
START_REJECT(get_start_rejects_string_over_remaining,
	     (b_u32(&b, 1), b_u32(&b, 1000), b_raw(&b, "sh", 2), s_env(&b), s_paths(&b), s_ids(&b),
	      s_tty(&b)),
	     -EPROTO)
START_REJECT(get_start_rejects_string_over_max,
	     (b_u32(&b, 1), b_u32(&b, PROTO_MAX_STRING + 1), b_raw(&b, repeat_static(), 65537),
	      s_env(&b), s_paths(&b), s_ids(&b), s_tty(&b)),
	     -EPROTO)
START_REJECT(get_start_rejects_nul_in_argv,
	     (b_u32(&b, 1), b_strn(&b, "s\0h", 3), s_env(&b), s_paths(&b), s_ids(&b), s_tty(&b)),
	     -EPROTO)
START_REJECT(get_start_rejects_envc_over_list,
	     (s_argv(&b), b_u32(&b, PROTO_MAX_LIST + 1), s_paths(&b), s_ids(&b), s_tty(&b)),
	     -EPROTO)
START_REJECT(get_start_rejects_envc_over_remaining,
	     (s_argv(&b), b_u32(&b, 100), s_paths(&b), s_ids(&b), s_tty(&b)), -EPROTO)
START_REJECT(get_start_rejects_env_without_equals,
	     (s_argv(&b), b_u32(&b, 1), b_str(&b, "PATH"), s_paths(&b), s_ids(&b), s_tty(&b)),
	     -EPROTO)
START_REJECT(get_start_rejects_env_empty_key,
	     (s_argv(&b), b_u32(&b, 1), b_str(&b, "=x"), s_paths(&b), s_ids(&b), s_tty(&b)),
	     -EPROTO)
START_REJECT(get_start_rejects_nul_in_env,
	     (s_argv(&b), b_u32(&b, 1), b_strn(&b, "A=\0", 3), s_paths(&b), s_ids(&b), s_tty(&b)),
	     -EPROTO)
START_REJECT(get_start_rejects_cwd_relative,
	     (s_argv(&b), s_env(&b), b_str(&b, "tmp"), b_str(&b, "h"), b_str(&b, "/dev/vda"), b_str(&b, ""),
	      s_ids(&b), s_tty(&b)),
	     -EPROTO)
START_REJECT(get_start_rejects_cwd_empty,
	     (s_argv(&b), s_env(&b), b_str(&b, ""), b_str(&b, "h"), b_str(&b, "/dev/vda"), b_str(&b, ""),
	      s_ids(&b), s_tty(&b)),
	     -EPROTO)
START_REJECT(get_start_rejects_hostname_over_64,
	     (s_argv(&b), s_env(&b), b_str(&b, "/"),
	      b_str(&b, "hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh"),
	      b_str(&b, "/dev/vda"), b_str(&b, ""), s_ids(&b), s_tty(&b)),
	     -EPROTO)
START_REJECT(get_start_rejects_rootfs_relative,
	     (s_argv(&b), s_env(&b), b_str(&b, "/"), b_str(&b, "h"), b_str(&b, "vda"), b_str(&b, ""), s_ids(&b),
	      s_tty(&b)),
	     -EPROTO)
START_REJECT(get_start_rejects_user_over_256,
	     (s_argv(&b), s_env(&b), b_str(&b, "/"), b_str(&b, "h"), b_str(&b, "/dev/vda"),
	      b_strn(&b, "uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu"
			 "uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu"
			 "uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu"
			 "uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu", 257),
	      s_ids(&b), s_tty(&b)),
	     -EPROTO)
START_REJECT(get_start_rejects_uid_minus_one,
	     (s_argv(&b), s_env(&b), s_paths(&b), b_u32(&b, UINT32_MAX), b_u32(&b, 0), b_u32(&b, 0),
	      s_tty(&b)),
	     -EPROTO)
START_REJECT(get_start_rejects_gid_minus_one,
	     (s_argv(&b), s_env(&b), s_paths(&b), b_u32(&b, 0), b_u32(&b, UINT32_MAX), b_u32(&b, 0),
	      s_tty(&b)),
	     -EPROTO)
START_REJECT(get_start_rejects_group_minus_one,
	     (s_argv(&b), s_env(&b), s_paths(&b), b_u32(&b, 0), b_u32(&b, 0), b_u32(&b, 1),
	      b_u32(&b, UINT32_MAX), s_tty(&b)),
	     -EPROTO)
START_REJECT(get_start_rejects_ngroups_over_remaining,
	     (s_argv(&b), s_env(&b), s_paths(&b), b_u32(&b, 0), b_u32(&b, 0), b_u32(&b, 3),
	      b_u32(&b, 5), s_tty(&b)),
	     -EPROTO)
START_REJECT(get_start_rejects_ngroups_over_list,
	     (s_argv(&b), s_env(&b), s_paths(&b), b_u32(&b, 0), b_u32(&b, 0),
	      b_u32(&b, PROTO_MAX_LIST + 1), b_raw(&b, zeros_static(), (PROTO_MAX_LIST + 1) * 4),
	      s_tty(&b)),
	     -EPROTO)
START_REJECT(get_start_rejects_terminal_2,
	     (s_argv(&b), s_env(&b), s_paths(&b), s_ids(&b), b_u8(&b, 2), b_u8(&b, 0), b_u16(&b, 0),
	      b_u16(&b, 0)),
	     -EPROTO)
START_REJECT(get_start_rejects_open_stdin_2,
	     (s_argv(&b), s_env(&b), s_paths(&b), s_ids(&b), b_u8(&b, 0), b_u8(&b, 2), b_u16(&b, 0),
	      b_u16(&b, 0)),
	     -EPROTO)
START_REJECT(get_start_rejects_trailing_byte,
	     (s_argv(&b), s_env(&b), s_paths(&b), s_ids(&b), s_tty(&b), b_u8(&b, 0)), -EPROTO)

TEST(get_start_rejects_every_truncation)
{
	struct buf b = BUF_INIT(BIG);
	struct proto_start m;

	s_argv(&b);
	s_env(&b);
	s_paths(&b);
	s_ids(&b);
	s_tty(&b);
	for (size_t n = 0; n < b.len; n++) {
		_cleanup_free_ uint8_t *copy =
			malloc(n ? n : 1); /* exact size: ASan sees overreads */
		if (n)
			memcpy(copy, b.data, n);
		CHECK_EQ_INT(proto_get_start(copy, n, &m), -EPROTO);
		CHECK(start_is_zero(&m));
	}
	buf_done(&b);
}

/* ---------------------------------------------------------------- other decoders reject */

TEST(get_hello_rejects_trailing_byte)
{
	struct buf b = BUF_INIT(BIG);
	struct proto_hello m;

	b_u32(&b, 1);
	b_str(&b, "6.1");
	b_u8(&b, 0);
	CHECK_EQ_INT(proto_get_hello(b.data, b.len, &m), -EPROTO);
	CHECK(m.kernel == NULL && m.version == 0);
	buf_done(&b);
}

TEST(get_hello_rejects_truncation)
{
	struct buf b = BUF_INIT(BIG);
	struct proto_hello m;

	b_u32(&b, 1);
	b_str(&b, "6.1");
	for (size_t n = 0; n < b.len; n++) {
		_cleanup_free_ uint8_t *copy = malloc(n ? n : 1);
		if (n)
			memcpy(copy, b.data, n);
		CHECK_EQ_INT(proto_get_hello(copy, n, &m), -EPROTO);
		CHECK(m.kernel == NULL);
	}
	CHECK_EQ_INT(proto_get_hello(NULL, 0, &m), -EPROTO);
	buf_done(&b);
}

TEST(get_hello_rejects_kernel_over_64)
{
	struct buf b = BUF_INIT(BIG);
	struct proto_hello m;

	b_u32(&b, 1);
	b_str(&b, "12345678901234567890123456789012345678901234567890123456789012345");
	CHECK_EQ_INT(proto_get_hello(b.data, b.len, &m), -EPROTO);
	buf_done(&b);
}

TEST(get_hello_rejects_nul_in_kernel)
{
	struct buf b = BUF_INIT(BIG);
	struct proto_hello m;

	b_u32(&b, 1);
	b_strn(&b, "6.1\0", 4);
	CHECK_EQ_INT(proto_get_hello(b.data, b.len, &m), -EPROTO);
	buf_done(&b);
}

TEST(get_u32_rejects_len)
{
	const uint8_t p[5] = { 1, 0, 0, 0, 0 };
	uint32_t v = 7;

	CHECK_EQ_INT(proto_get_u32(p, 3, &v), -EPROTO);
	CHECK_EQ_INT(proto_get_u32(p, 5, &v), -EPROTO);
	CHECK_EQ_INT(v, 0);
	CHECK_EQ_INT(proto_get_u32(p, 4, &v), 0);
	CHECK_EQ_INT(v, 1);
}

TEST(get_u32_leaves_signal_range_to_caller)
{
	const uint8_t p[4] = { 0xff, 0, 0, 0 };
	uint32_t v;

	CHECK_EQ_INT(proto_get_u32(p, 4, &v), 0);
	CHECK_EQ_INT(v, 255);
}

TEST(get_resize_rejects_len)
{
	const uint8_t p[5] = { 0 };
	uint16_t rows = 1, cols = 1;

	CHECK_EQ_INT(proto_get_resize(p, 3, &rows, &cols), -EPROTO);
	CHECK_EQ_INT(proto_get_resize(p, 5, &rows, &cols), -EPROTO);
	CHECK_EQ_INT(rows, 0);
	CHECK_EQ_INT(cols, 0);
}

static int get_exit_raw(uint8_t kind, uint32_t status, size_t len)
{
	uint8_t p[6] = { kind,
			 (uint8_t)status,
			 (uint8_t)(status >> 8),
			 (uint8_t)(status >> 16),
			 (uint8_t)(status >> 24),
			 0 };
	struct proto_exit m = { 9, 9 };
	int r = proto_get_exit(p, len, &m);

	if (r < 0 && (m.kind != 0 || m.status != 0))
		return -EIO;
	return r;
}

TEST(get_exit_rejects_kind)
{
	CHECK_EQ_INT(get_exit_raw(2, 0, 5), -EPROTO);
	CHECK_EQ_INT(get_exit_raw(0xff, 0, 5), -EPROTO);
}

TEST(get_exit_rejects_code_over_255)
{
	CHECK_EQ_INT(get_exit_raw(PROTO_EXIT_CODE, 255, 5), 0);
	CHECK_EQ_INT(get_exit_raw(PROTO_EXIT_CODE, 256, 5), -EPROTO);
}

TEST(get_exit_rejects_signal_range)
{
	CHECK_EQ_INT(get_exit_raw(PROTO_EXIT_SIGNAL, 0, 5), -EPROTO);
	CHECK_EQ_INT(get_exit_raw(PROTO_EXIT_SIGNAL, 65, 5), -EPROTO);
	CHECK_EQ_INT(get_exit_raw(PROTO_EXIT_SIGNAL, 9, 5), 0);
}

TEST(get_exit_rejects_len)
{
	CHECK_EQ_INT(get_exit_raw(0, 0, 4), -EPROTO);
	CHECK_EQ_INT(get_exit_raw(0, 0, 6), -EPROTO);
}

TEST(get_error_rejects_kind)
{
	struct buf b = BUF_INIT(BIG);
	struct proto_error m;

	b_u32(&b, PROTO_ERR_NOTFOUND + 1);
	b_str(&b, "x");
	CHECK_EQ_INT(proto_get_error(b.data, b.len, &m), -EPROTO);
	CHECK(m.message == NULL && m.kind == 0);
	buf_done(&b);
}

TEST(get_error_rejects_message_over_max)
{
	_cleanup_free_ char *msg = repeat('e', PROTO_MAX_MESSAGE + 1);
	struct buf b = BUF_INIT(BIG);
	struct proto_error m;

	b_u32(&b, 0);
	b_str(&b, msg);
	CHECK_EQ_INT(proto_get_error(b.data, b.len, &m), -EPROTO);
	buf_done(&b);
}

TEST(get_error_rejects_nul)
{
	struct buf b = BUF_INIT(BIG);
	struct proto_error m;

	b_u32(&b, 0);
	b_strn(&b, "a\0b", 3);
	CHECK_EQ_INT(proto_get_error(b.data, b.len, &m), -EPROTO);
	buf_done(&b);
}

TEST(get_error_rejects_trailing_and_truncation)
{
	struct buf b = BUF_INIT(BIG);
	struct proto_error m;

	b_u32(&b, 1);
	b_str(&b, "boom");
	CHECK_EQ_INT(proto_get_error(b.data, b.len - 1, &m), -EPROTO);
	b_u8(&b, 'x');
	CHECK_EQ_INT(proto_get_error(b.data, b.len, &m), -EPROTO);
	CHECK(m.message == NULL);
	buf_done(&b);
}

/* ---------------------------------------------------------------- reader */

struct frame_rec {
	uint16_t type;
	uint32_t stream;
	uint32_t len;
	uint8_t first; /* first payload byte, or 0 */
};

/* Every message type, in one stream. */
static void build_session(struct buf *b, struct frame_rec *want, size_t *ret_n)
{
	char *argv[] = { (char *)"/bin/cat", NULL };
	char *env[] = { (char *)"HOME=/root", NULL };
	struct proto_start s = {
		.argv = argv,
		.argc = 1,
		.env = env,
		.envc = 1,
		.cwd = (char *)"/",
		.hostname = (char *)"c",
		.rootfs = (char *)"/dev/vda",
		.open_stdin = 1,
	};
	struct proto_exit e = { PROTO_EXIT_CODE, 0 };
	size_t n = 0, before;

#define ADD(call, t, st)                                                                           \
	do {                                                                                       \
		before = b->len;                                                                   \
		if ((call) < 0)                                                                    \
			abort();                                                                   \
		want[n++] = (struct frame_rec){                                                    \
			t, st, (uint32_t)(b->len - before - PROTO_HDR_SIZE),                       \
			b->len - before > PROTO_HDR_SIZE ? b->data[before + PROTO_HDR_SIZE] : 0    \
		};                                                                                 \
	} while (0)
	ADD(proto_put_hello(b, &(struct proto_hello){ PROTO_VERSION, (char *)"6.6.1" }),
	    PROTO_HELLO, 0);
	ADD(proto_put_start(b, 1, &s), PROTO_START, 1);
	ADD(proto_put_u32(b, PROTO_STARTED, 1, 77), PROTO_STARTED, 1);
	ADD(proto_put_data(b, PROTO_STDIN, 1, "ping\n", 5), PROTO_STDIN, 1);
	ADD(proto_put_resize(b, 1, 40, 120), PROTO_RESIZE, 1);
	ADD(proto_put_data(b, PROTO_STDIN_EOF, 1, NULL, 0), PROTO_STDIN_EOF, 1);
	ADD(proto_put_data(b, PROTO_STDOUT, 1, "ping\n", 5), PROTO_STDOUT, 1);
	ADD(proto_put_data(b, PROTO_STDERR, 1, "warn", 4), PROTO_STDERR, 1);
	ADD(proto_put_u32(b, PROTO_SIGNAL, 1, 15), PROTO_SIGNAL, 1);
	ADD(proto_put_exit(b, 1, &e), PROTO_EXIT, 1);
	ADD(proto_put_error(b, 2, PROTO_ERR_EXEC, "permission denied"), PROTO_ERROR, 2);
#undef ADD
	*ret_n = n;
}

/* Drain r into got; return -EIO on overflow, or next()'s error. */
static int drain(struct proto_reader *r, struct frame_rec *got, size_t *n, size_t max)
{
	struct proto_hdr h;
	const uint8_t *p;
	int k;

	while ((k = proto_reader_next(r, &h, &p)) > 0) {
		if (*n >= max)
			return -EIO;
		got[(*n)++] = (struct frame_rec){ h.type, h.stream, h.len, h.len ? p[0] : 0 };
	}
	return k;
}

static bool recs_equal(const struct frame_rec *a, size_t na, const struct frame_rec *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (a[i].type != b[i].type || a[i].stream != b[i].stream || a[i].len != b[i].len ||
		    a[i].first != b[i].first)
			return false;
	return true;
}

TEST(reader_split_at_every_byte)
{
	struct frame_rec want[16], got[16];
	struct buf b = BUF_INIT(BIG);
	size_t nwant, ngot;

	build_session(&b, want, &nwant);
	CHECK_EQ_INT(nwant, 11);
	for (size_t i = 0; i <= b.len; i++) {
		struct proto_reader r;

		proto_reader_init(&r);
		ngot = 0;
		CHECK_EQ_INT(proto_reader_feed(&r, b.data, i), 0);
		CHECK_EQ_INT(drain(&r, got, &ngot, ARRAY_SIZE(got)), 0);
		CHECK_EQ_INT(proto_reader_feed(&r, b.data + i, b.len - i), 0);
		CHECK_EQ_INT(drain(&r, got, &ngot, ARRAY_SIZE(got)), 0);
		CHECK(recs_equal(want, nwant, got, ngot));
		proto_reader_done(&r);
	}
	buf_done(&b);
}

TEST(reader_split_at_every_pair)
{
	struct frame_rec want[16], got[16];
	struct buf b = BUF_INIT(BIG);
	size_t nwant, ngot;

	build_session(&b, want, &nwant);
	for (size_t i = 0; i <= b.len; i++)
		for (size_t j = i; j <= b.len; j++) {
			struct proto_reader r;

			proto_reader_init(&r);
			ngot = 0;
			CHECK_EQ_INT(proto_reader_feed(&r, b.data, i), 0);
			CHECK_EQ_INT(drain(&r, got, &ngot, ARRAY_SIZE(got)), 0);
			CHECK_EQ_INT(proto_reader_feed(&r, b.data + i, j - i), 0);
			CHECK_EQ_INT(drain(&r, got, &ngot, ARRAY_SIZE(got)), 0);
			CHECK_EQ_INT(proto_reader_feed(&r, b.data + j, b.len - j), 0);
			CHECK_EQ_INT(drain(&r, got, &ngot, ARRAY_SIZE(got)), 0);
			CHECK(recs_equal(want, nwant, got, ngot));
			proto_reader_done(&r);
		}
	buf_done(&b);
}

TEST(reader_byte_at_a_time)
{
	struct frame_rec want[16], got[16];
	struct buf b = BUF_INIT(BIG);
	struct proto_reader r;
	size_t nwant, ngot = 0;

	build_session(&b, want, &nwant);
	proto_reader_init(&r);
	for (size_t i = 0; i < b.len; i++) {
		CHECK_EQ_INT(proto_reader_feed(&r, b.data + i, 1), 0);
		CHECK_EQ_INT(drain(&r, got, &ngot, ARRAY_SIZE(got)), 0);
	}
	CHECK(recs_equal(want, nwant, got, ngot));
	/* compaction: nothing left buffered once the last frame was taken and we feed again */
	CHECK_EQ_INT(proto_reader_feed(&r, "\x04", 1), 0);
	CHECK_EQ_INT(r.in.len, 1);
	proto_reader_done(&r);
	buf_done(&b);
}

TEST(reader_decoded_payloads)
{
	struct frame_rec want[16];
	struct buf b = BUF_INIT(BIG);
	struct proto_reader r;
	struct proto_hdr h;
	const uint8_t *p;
	size_t nwant;
	int seen = 0;

	build_session(&b, want, &nwant);
	proto_reader_init(&r);
	CHECK_EQ_INT(proto_reader_feed(&r, b.data, b.len), 0);
	while (proto_reader_next(&r, &h, &p) > 0) {
		if (h.type == PROTO_START) {
			struct proto_start s;
			CHECK_EQ_INT(proto_get_start(p, h.len, &s), 0);
			CHECK_EQ_STR(s.argv[0], "/bin/cat");
			proto_start_done(&s);
			seen++;
		} else if (h.type == PROTO_ERROR) {
			struct proto_error e;
			CHECK_EQ_INT(proto_get_error(p, h.len, &e), 0);
			CHECK_EQ_STR(e.message, "permission denied");
			proto_error_done(&e);
			seen++;
		}
	}
	CHECK_EQ_INT(seen, 2);
	proto_reader_done(&r);
	buf_done(&b);
}

TEST(reader_partial_header_waits)
{
	struct proto_reader r;
	struct proto_hdr h;
	const uint8_t *p;
	uint8_t junk[11];

	memset(junk, 0xff, sizeof(junk)); /* a bad header, but not complete yet */
	proto_reader_init(&r);
	CHECK_EQ_INT(proto_reader_next(&r, &h, &p), 0);
	CHECK_EQ_INT(proto_reader_feed(&r, junk, sizeof(junk)), 0);
	CHECK_EQ_INT(proto_reader_next(&r, &h, &p), 0);
	CHECK_EQ_INT(proto_reader_feed(&r, junk, 1), 0);
	CHECK_EQ_INT(proto_reader_next(&r, &h, &p), -EPROTO);
	proto_reader_done(&r);
}

TEST(reader_rejects_oversize_header_with_12_bytes)
{
	struct buf b = BUF_INIT(64);
	struct proto_reader r;
	struct proto_hdr h;
	const uint8_t *p;

	b_hdr(&b, PROTO_MAX_PAYLOAD + 1, PROTO_START, 0, 1);
	proto_reader_init(&r);
	CHECK_EQ_INT(proto_reader_feed(&r, b.data, 11), 0);
	CHECK_EQ_INT(proto_reader_next(&r, &h, &p), 0);
	CHECK_EQ_INT(proto_reader_feed(&r, b.data + 11, 1), 0);
	CHECK_EQ_INT(proto_reader_next(&r, &h, &p), -EMSGSIZE);
	CHECK_EQ_INT(proto_reader_next(&r, &h, &p), -EMSGSIZE); /* stays failed */
	CHECK(r.in.len == 12);
	proto_reader_done(&r);
	buf_done(&b);
}

TEST(reader_rejects_oversize_data_header_with_12_bytes)
{
	struct buf b = BUF_INIT(64);
	struct proto_reader r;
	struct proto_hdr h;
	const uint8_t *p;

	b_hdr(&b, PROTO_MAX_DATA + 1, PROTO_STDOUT, 0, 1);
	proto_reader_init(&r);
	CHECK_EQ_INT(proto_reader_feed(&r, b.data, 12), 0);
	CHECK_EQ_INT(proto_reader_next(&r, &h, &p), -EMSGSIZE);
	proto_reader_done(&r);
	buf_done(&b);
}

TEST(reader_rejects_bad_flags_after_good_frame)
{
	struct buf b = BUF_INIT(64);
	struct proto_reader r;
	struct proto_hdr h;
	const uint8_t *p;

	CHECK_EQ_INT(proto_put_u32(&b, PROTO_SIGNAL, 1, 9), 0);
	b_hdr(&b, 4, PROTO_SIGNAL, 1, 1);
	proto_reader_init(&r);
	CHECK_EQ_INT(proto_reader_feed(&r, b.data, b.len), 0);
	CHECK_EQ_INT(proto_reader_next(&r, &h, &p), 1);
	CHECK_EQ_INT(h.type, PROTO_SIGNAL);
	CHECK_EQ_INT(proto_reader_next(&r, &h, &p), -EPROTO);
	proto_reader_done(&r);
	buf_done(&b);
}

TEST(reader_max_frame_and_room)
{
	/* A frame of the largest payload followed by another frame, fed in 64 KiB reads that
	 * never ask for more than proto_reader_room(): the reader never fails with -E2BIG. */
	struct buf b = BUF_INIT(2 * BIG);
	struct proto_reader r;
	struct proto_hdr h;
	const uint8_t *p;
	size_t off = 0;
	int frames = 0;

	b_hdr(&b, PROTO_MAX_PAYLOAD, PROTO_START, 0, 1);
	CHECK_EQ_INT(buf_reserve(&b, PROTO_MAX_PAYLOAD), 0);
	memset(b.data + b.len, 'x', PROTO_MAX_PAYLOAD);
	b.len += PROTO_MAX_PAYLOAD;
	CHECK_EQ_INT(proto_put_data(&b, PROTO_STDOUT, 1, "tail", 4), 0);

	proto_reader_init(&r);
	CHECK_EQ_INT(proto_reader_room(&r), BIG);
	while (off < b.len) {
		size_t room = proto_reader_room(&r), n = b.len - off;
		int k;

		CHECK(room > 0);
		if (room == 0)
			break;
		if (n > 65536)
			n = 65536;
		if (n > room)
			n = room;
		CHECK_EQ_INT(proto_reader_feed(&r, b.data + off, n), 0);
		off += n;
		while ((k = proto_reader_next(&r, &h, &p)) > 0) {
			frames++;
			if (h.type == PROTO_START)
				CHECK(h.len == PROTO_MAX_PAYLOAD && p[0] == 'x' &&
				      p[h.len - 1] == 'x');
			else
				CHECK(h.len == 4 && memcmp(p, "tail", 4) == 0);
		}
		CHECK_EQ_INT(k, 0);
	}
	CHECK_EQ_INT(frames, 2);
	CHECK(r.in.len <= BIG);
	proto_reader_done(&r);
	buf_done(&b);
}

TEST(reader_refuses_more_than_room)
{
	struct buf b = BUF_INIT(2 * BIG);
	struct proto_reader r;

	CHECK_EQ_INT(buf_reserve(&b, BIG + 1), 0);
	memset(b.data, 0, BIG + 1);
	proto_reader_init(&r);
	CHECK_EQ_INT(proto_reader_feed(&r, b.data, BIG + 1), -E2BIG);
	CHECK_EQ_INT(r.in.len, 0);
	CHECK_EQ_INT(proto_reader_feed(&r, b.data, BIG), 0);
	CHECK_EQ_INT(proto_reader_room(&r), 0);
	CHECK_EQ_INT(proto_reader_feed(&r, b.data, 1), -E2BIG);
	proto_reader_done(&r);
	buf_done(&b);
}

TEST(reader_feed_empty)
{
	struct proto_reader r;

	proto_reader_init(&r);
	CHECK_EQ_INT(proto_reader_feed(&r, NULL, 0), 0);
	CHECK_EQ_INT(proto_reader_feed(&r, NULL, 1), -EINVAL);
	proto_reader_done(&r);
	proto_reader_done(&r);
}

int main(void)
{
	RUN(hdr_little_endian_bytes);
	RUN(hdr_roundtrip);
	RUN(hdr_rejects_type_zero);
	RUN(hdr_rejects_type_unknown);
	RUN(hdr_rejects_flags);
	RUN(hdr_rejects_len_over_max_payload);
	RUN(hdr_data_bounds);
	RUN(hdr_rejects_data_empty);
	RUN(hdr_rejects_data_over_max);
	RUN(notice_bounds);
	RUN(reader_read_from_fd);
	RUN(hdr_rejects_stdin_eof_payload);
	RUN(hdr_rejects_u32_not_4);
	RUN(hdr_rejects_resize_not_4);
	RUN(hdr_rejects_exit_not_5);
	RUN(hdr_rejects_hello_bounds);
	RUN(hdr_rejects_error_bounds);
	RUN(hdr_rejects_start_too_short);
	RUN(hdr_rejects_hello_stream_nonzero);
	RUN(hdr_rejects_start_stream_zero);
	RUN(type_names);

	RUN(hello_wire_bytes);
	RUN(hello_roundtrip);
	RUN(hello_any_version_decodes);
	RUN(start_roundtrip);
	RUN(start_roundtrip_minimal);
	RUN(start_roundtrip_limits);
	RUN(u32_roundtrip);
	RUN(resize_roundtrip);
	RUN(exit_roundtrip);
	RUN(error_roundtrip);
	RUN(data_roundtrip);

	RUN(put_data_refuses);
	RUN(put_u32_refuses);
	RUN(put_hello_refuses);
	RUN(put_exit_refuses);
	RUN(put_error_refuses);
	RUN(put_start_refuses);
	RUN(put_start_refuses_over_max_payload);
	RUN(put_rolls_back_on_e2big);
	RUN(put_appends_frames);

	RUN(get_start_base_ok);
	RUN(get_start_rejects_argc_zero);
	RUN(get_start_rejects_argc_over_list);
	RUN(get_start_rejects_argc_over_remaining);
	RUN(get_start_rejects_argc_huge);
	RUN(get_start_rejects_string_over_remaining);
	RUN(get_start_rejects_string_over_max);
	RUN(get_start_rejects_nul_in_argv);
	RUN(get_start_rejects_envc_over_list);
	RUN(get_start_rejects_envc_over_remaining);
	RUN(get_start_rejects_env_without_equals);
	RUN(get_start_rejects_env_empty_key);
	RUN(get_start_rejects_nul_in_env);
	RUN(get_start_rejects_cwd_relative);
	RUN(get_start_rejects_cwd_empty);
	RUN(get_start_rejects_hostname_over_64);
	RUN(get_start_rejects_rootfs_relative);
	RUN(get_start_rejects_user_over_256);
	RUN(get_start_rejects_uid_minus_one);
	RUN(get_start_rejects_gid_minus_one);
	RUN(get_start_rejects_group_minus_one);
	RUN(get_start_rejects_ngroups_over_remaining);
	RUN(get_start_rejects_ngroups_over_list);
	RUN(get_start_rejects_terminal_2);
	RUN(get_start_rejects_open_stdin_2);
	RUN(get_start_rejects_trailing_byte);
	RUN(get_start_rejects_every_truncation);

	RUN(get_hello_rejects_trailing_byte);
	RUN(get_hello_rejects_truncation);
	RUN(get_hello_rejects_kernel_over_64);
	RUN(get_hello_rejects_nul_in_kernel);
	RUN(get_u32_rejects_len);
	RUN(get_u32_leaves_signal_range_to_caller);
	RUN(get_resize_rejects_len);
	RUN(get_exit_rejects_kind);
	RUN(get_exit_rejects_code_over_255);
	RUN(get_exit_rejects_signal_range);
	RUN(get_exit_rejects_len);
	RUN(get_error_rejects_kind);
	RUN(get_error_rejects_message_over_max);
	RUN(get_error_rejects_nul);
	RUN(get_error_rejects_trailing_and_truncation);

	RUN(start_v3_fields_roundtrip);
	RUN(start_net_roundtrip);
	RUN(supervisor_messages_roundtrip);
	RUN(resume_roundtrip);
	RUN(reader_split_at_every_byte);
	RUN(reader_split_at_every_pair);
	RUN(reader_byte_at_a_time);
	RUN(reader_decoded_payloads);
	RUN(reader_partial_header_waits);
	RUN(reader_rejects_oversize_header_with_12_bytes);
	RUN(reader_rejects_oversize_data_header_with_12_bytes);
	RUN(reader_rejects_bad_flags_after_good_frame);
	RUN(reader_max_frame_and_room);
	RUN(reader_refuses_more_than_room);
	RUN(reader_feed_empty);
	RUN(start_mounts_roundtrip);
	return test_done();
}
