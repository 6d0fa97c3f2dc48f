/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Write the seed corpus of fuzz_proto: valid frame sequences of every message type and the
 * edge cases the decoders must refuse. Built by hand, not by meson:
 *
 *     gcc -std=gnu11 -Isrc fuzz/gen_proto_corpus.c src/proto/proto.c src/util/util.c \
 *         src/util/buf.c -o /tmp/gen_proto_corpus && /tmp/gen_proto_corpus fuzz/corpus/proto
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "proto/proto.h"
#include "util/buf.h"

#define BIG ((size_t)PROTO_HDR_SIZE + PROTO_MAX_PAYLOAD)

static int dir_fd = -1;

static void must(int r, const char *what)
{
	if (r < 0) {
		fprintf(stderr, "gen_proto_corpus: %s: %s\n", what, strerror(-r));
		exit(1);
	}
}

static void raw(struct buf *b, const void *p, size_t n)
{
	must(buf_append(b, p, n), "append");
}

static void u8(struct buf *b, uint8_t v)
{
	raw(b, &v, 1);
}

static void u16(struct buf *b, uint16_t v)
{
	uint8_t p[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
	raw(b, p, 2);
}

static void u32(struct buf *b, uint32_t v)
{
	uint8_t p[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
	raw(b, p, 4);
}

static void strn(struct buf *b, const char *s, size_t n)
{
	u32(b, (uint32_t)n);
	raw(b, s, n);
}

static void str(struct buf *b, const char *s)
{
	strn(b, s, strlen(s));
}

static void hdr(struct buf *b, uint32_t len, uint16_t type, uint16_t flags, uint32_t stream)
{
	u32(b, len);
	u16(b, type);
	u16(b, flags);
	u32(b, stream);
}

/* A frame around a hand-built payload. */
static void frame(struct buf *b, uint16_t type, uint32_t stream, const struct buf *payload)
{
	hdr(b, (uint32_t)payload->len, type, 0, stream);
	raw(b, payload->data, payload->len);
}

static void save(const char *name, struct buf *b)
{
	_cleanup_close_ int fd = -1;

	fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		must(-errno, name);
	must(write_full(fd, b->data, b->len), name);
	buf_reset(b);
}

static const char host64[] = "hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh";

static void put_hello(struct buf *b, const char *kernel)
{
	must(proto_put_hello(b, &(struct proto_hello){ PROTO_VERSION, (char *)kernel }), "hello");
}

static void put_start_cat(struct buf *b, uint32_t stream)
{
	char *argv[] = { (char *)"/bin/cat", NULL };
	char *env[] = { (char *)"PATH=/usr/bin:/bin", (char *)"HOME=/root", NULL };
	struct proto_start s = {
		.argv = argv,
		.argc = 1,
		.env = env,
		.envc = 2,
		.cwd = (char *)"/",
		.hostname = (char *)"cove",
		.rootfs = (char *)"/dev/vda",
		.open_stdin = 1,
		/* v5/v6: the main process's network and /etc files */
		.nnets = stream == 1,
		.nets = { { .mac = { 0x02, 0x63, 10, 89, 0, 2 }, .addr = 0x0a590002, .prefix = 24,
			    .gateway = 0x0a590001, .mtu = 1500 } },
		.hosts = (char *)"127.0.0.1\tlocalhost\n10.89.0.2\tcove\n",
		.resolv = (char *)"nameserver 192.0.2.53\n",
	};

	must(proto_put_start(b, stream, &s), "start");
}

/* START payload sections, for hand-made invalid variants */
static void start_tail(struct buf *p)
{
	u32(p, 1); /* envc */
	str(p, "A=B");
	str(p, "/");
	str(p, "h");
	str(p, "/dev/vda");
	u32(p, 0);
	u32(p, 0);
	u32(p, 0);
	u8(p, 0);
	u8(p, 0);
	u16(p, 0);
	u16(p, 0);
	for (int i = 0; i < 5; i++) /* exec, tool, readonly, init, unconfined */
		u8(p, 0);
	u32(p, 0); /* caps, low */
	u32(p, 0);
	u32(p, 0); /* nrlimits */
	u32(p, 0); /* ntmpfs */
	u8(p, 0);  /* has_net */
	str(p, ""); /* hosts */
	str(p, ""); /* resolv */
}

int main(int argc, char **argv)
{
	struct buf b = BUF_INIT(BIG), p = BUF_INIT(BIG);
	struct proto_exit exit0 = { PROTO_EXIT_CODE, 0 }, exit255 = { PROTO_EXIT_CODE, 255 },
			  killed = { PROTO_EXIT_SIGNAL, 9 };
	char msg[PROTO_MAX_MESSAGE + 1];

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	dir_fd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0)
		must(-errno, argv[1]);

	/* --- valid streams --- */
	put_hello(&b, "6.6.30-cove");
	save("valid-hello", &b);

	/* a whole session with every message type, as both sides would see it interleaved */
	put_hello(&b, "6.6.30-cove");
	put_start_cat(&b, 1);
	must(proto_put_u32(&b, PROTO_STARTED, 1, 42), "started");
	must(proto_put_data(&b, PROTO_STDIN, 1, "ping\n", 5), "stdin");
	must(proto_put_resize(&b, 1, 24, 80), "resize");
	must(proto_put_data(&b, PROTO_STDIN_EOF, 1, NULL, 0), "eof");
	must(proto_put_data(&b, PROTO_STDOUT, 1, "ping\n", 5), "stdout");
	must(proto_put_data(&b, PROTO_STDERR, 1, "warning\n", 8), "stderr");
	must(proto_put_u32(&b, PROTO_SIGNAL, 1, 15), "signal");
	must(proto_put_exit(&b, 1, &exit0), "exit");
	must(proto_put_error(&b, 2, PROTO_ERR_NOTFOUND, "exec: 'nope': not found"), "error");
	save("valid-session", &b);

	/* the supervisor's one-line notice to a client */
	must(proto_put_data(&b, PROTO_NOTICE, 0, "KVM failed: booting again under TCG", 35),
	     "notice");
	save("valid-notice", &b);

	/* the supervisor's messages: stats both ways, shutdown, attach, stop */
	{
		struct proto_stats st = { 512 << 20, 400 << 20, 123456789, 987654321, 4096, 8192,
					  0, 0, 7, 1 };
		must(proto_put_empty(&b, PROTO_STATS, 0), "stats request");
		must(proto_put_stats(&b, &st), "stats");
		must(proto_put_empty(&b, PROTO_SHUTDOWN, 0), "shutdown");
		must(proto_put_attach(&b, PROTO_ATTACH_STDIN), "attach");
		must(proto_put_stop(&b, &(struct proto_stop){ 15, 10 }), "stop");
		must(proto_put_u32(&b, PROTO_STDIN_ACK, 2, 16384), "stdin ack");
		save("valid-supervisor", &b);
	}
	{
		struct proto_resume r = { .realtime_ns = 1796469357000000000ULL, .nmacs = 2,
					  .macs = { { 2, 0x63, 10, 89, 0, 2 }, { 2, 0x63, 10, 90, 0, 7 } } };

		for (unsigned i = 0; i < PROTO_ENTROPY; i++)
			r.entropy[i] = (uint8_t)(i * 37 + 11);
		must(proto_put_resume(&b, &r), "resume");
		save("valid-resume", &b);
	}
	{
		char *av[] = { (char *)"/bin/sh", NULL };
		char *tmpfs[] = { (char *)"/data:size=1m,mode=1777", (char *)"/run", NULL };
		struct proto_rlimit rl[] = { { 7, 1024, 4096 }, { 6, UINT64_MAX, UINT64_MAX } };
		struct proto_start s = {
			.argv = av, .argc = 1, .cwd = (char *)"/", .hostname = (char *)"h",
			.rootfs = (char *)"/dev/vda", .exec = 1, .tool = PROTO_TOOL_TAR_IN,
			.readonly = 1, .init = 1, .unconfined = 1, .caps = 0xa80425fbULL,
			.rlimits = rl, .nrlimits = 2, .tmpfs = tmpfs, .ntmpfs = 2,
		};
		must(proto_put_start(&b, 3, &s), "start v3");
		save("valid-start-v3", &b);
	}

	{
		char *av[] = { (char *)"/bin/sh", (char *)"-c", (char *)"", (char *)"echo $0",
			       NULL };
		char *env[] = { (char *)"TERM=xterm", (char *)"EMPTY=", (char *)"X==", NULL };
		uint32_t groups[] = { 0, 10, 4294967294u };
		struct proto_start s = {
			.argv = av,
			.argc = 4,
			.env = env,
			.envc = 3,
			.cwd = (char *)"/home/user/a b",
			.hostname = (char *)host64,
			.rootfs = (char *)"/dev/vdb",
			.uid = 1000,
			.gid = 4294967294u,
			.groups = groups,
			.ngroups = 3,
			.terminal = 1,
			.open_stdin = 1,
			.rows = 65535,
			.cols = 1,
		};
		must(proto_put_start(&b, 0xffffffffu, &s), "start full");
		save("valid-start-full", &b);
	}
	{
		char *av[] = { (char *)"sh", NULL };
		struct proto_mount mounts[] = {
			{ PROTO_MOUNT_9P, 1, 0, (char *)"cove0", (char *)"", (char *)"/src" },
			{ PROTO_MOUNT_9P, 0, 0, (char *)"cove1", (char *)"hosts", (char *)"/etc/hosts" },
			{ PROTO_MOUNT_BLOCK, 0, 1, (char *)"covevol0", (char *)"", (char *)"/var/lib/db" },
		};
		struct proto_start s = { .argv = av, .argc = 1, .cwd = (char *)"/",
					 .hostname = (char *)"", .rootfs = (char *)"/dev/vda",
					 .mounts = mounts, .nmounts = 3 };
		must(proto_put_start(&b, 1, &s), "start mounts");
		save("valid-start-mounts", &b);
	}
	{
		char *av[] = { (char *)"x", NULL };
		struct proto_start s = {
			.argv = av,
			.argc = 1,
			.cwd = (char *)"/",
			.hostname = (char *)"",
			.rootfs = (char *)"/",
		};
		must(proto_put_start(&b, 1, &s), "start min");
		save("valid-start-minimal", &b);
	}
	put_hello(&b, host64); /* the longest kernel release */
	must(proto_put_exit(&b, 0, &exit255), "exit");
	must(proto_put_exit(&b, 3, &killed), "exit");
	save("valid-hello64-exits", &b);

	memset(msg, 'e', PROTO_MAX_MESSAGE);
	msg[PROTO_MAX_MESSAGE] = '\0';
	must(proto_put_error(&b, 1, PROTO_ERR_EXEC, msg), "error max");
	save("valid-error-max", &b);

	must(proto_put_data(&b, PROTO_STDOUT, 7, "\0\xff\n", 3), "stdout");
	must(proto_put_data(&b, PROTO_STDERR, 7, "e", 1), "stderr");
	must(proto_put_data(&b, PROTO_STDIN_EOF, 7, NULL, 0), "eof");
	must(proto_put_resize(&b, 7, 0, 65535), "resize");
	must(proto_put_u32(&b, PROTO_SIGNAL, 7, 64), "signal");
	must(proto_put_u32(&b, PROTO_STARTED, 7, 0xffffffffu), "started");
	save("valid-data-misc", &b);

	save("empty", &b);

	/* --- truncated --- */
	put_hello(&b, "6.1");
	b.len = 6;
	save("trunc-header", &b);
	put_start_cat(&b, 1);
	b.len -= 9;
	save("trunc-payload", &b);

	/* --- bad headers --- */
	put_hello(&b, "6.1");
	hdr(&b, 4, PROTO_SIGNAL, 1, 1);
	u32(&b, 9);
	save("bad-flags", &b);
	hdr(&b, 0, 0, 0, 0);
	save("bad-type-zero", &b);
	hdr(&b, 4, PROTO_TYPE_MAX, 0, 1);
	u32(&b, 0);
	save("bad-type-unknown", &b);
	hdr(&b, PROTO_MAX_PAYLOAD + 1, PROTO_START, 0, 1);
	save("bad-len-over-max", &b);
	hdr(&b, 0xffffffffu, PROTO_STDOUT, 0, 1);
	save("bad-len-ffffffff", &b);
	hdr(&b, PROTO_MAX_DATA + 1, PROTO_STDOUT, 0, 1);
	raw(&b, "xxxx", 4);
	save("bad-data-over-max", &b);
	hdr(&b, 0, PROTO_STDIN, 0, 1);
	save("bad-data-empty", &b);
	hdr(&b, 8, PROTO_HELLO, 0, 1);
	u32(&b, 1);
	u32(&b, 0);
	save("bad-hello-stream", &b);

	/* --- bad payloads under good headers --- */
	u32(&p, 0xffffffffu); /* argc */
	start_tail(&p);
	frame(&b, PROTO_START, 1, &p);
	buf_reset(&p);
	save("bad-start-argc-huge", &b);

	u32(&p, 1);
	strn(&p, "s\0h", 3);
	start_tail(&p);
	frame(&b, PROTO_START, 1, &p);
	buf_reset(&p);
	save("bad-start-nul", &b);

	u32(&p, 1);
	u32(&p, 0x10001); /* string longer than the payload */
	str(&p, "sh");
	start_tail(&p);
	frame(&b, PROTO_START, 1, &p);
	buf_reset(&p);
	save("bad-start-string-len", &b);

	u32(&p, 1);
	str(&p, "sh");
	start_tail(&p);
	u8(&p, 0);
	frame(&b, PROTO_START, 1, &p);
	buf_reset(&p);
	save("bad-start-trailing", &b);

	u32(&p, 1);
	str(&p, "6.1");
	u8(&p, 0);
	frame(&b, PROTO_HELLO, 0, &p);
	buf_reset(&p);
	save("bad-hello-trailing", &b);

	hdr(&b, 5, PROTO_EXIT, 0, 1);
	u8(&b, 2);
	u32(&b, 0);
	hdr(&b, 5, PROTO_EXIT, 0, 1);
	u8(&b, 0);
	u32(&b, 256);
	save("bad-exit", &b);

	u32(&p, 3);
	str(&p, "unknown kind");
	frame(&b, PROTO_ERROR, 1, &p);
	buf_reset(&p);
	save("bad-error-kind", &b);

	buf_done(&b);
	buf_done(&p);
	close(dir_fd);
	return 0;
}
