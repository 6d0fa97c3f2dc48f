/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz the host <-> guest protocol: the input is a byte stream as it would arrive on the
 * virtio-serial port. It is fed through proto_reader twice, once in random-ish chunk sizes
 * derived from the data and once in the largest chunks the reader accepts; both must yield
 * the same frames and end the same way. Every complete frame goes through its decoder, and
 * every message that decodes is encoded again: since the encoding is canonical the bytes must
 * be identical, and decoding them again must give the same message. Any mismatch aborts.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(bool ok)
{
	if (!ok)
		abort();
}

static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
	const uint8_t *p = data;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static bool strv_equal(char *const *a, char *const *b, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (!a[i] || !b[i] || strcmp(a[i], b[i]) != 0)
			return false;
	return !a[n] && !b[n];
}

static bool start_equal(const struct proto_start *a, const struct proto_start *b)
{
	return a->argc == b->argc && strv_equal(a->argv, b->argv, a->argc) && a->envc == b->envc &&
	       strv_equal(a->env, b->env, a->envc) && strcmp(a->cwd, b->cwd) == 0 &&
	       strcmp(a->hostname, b->hostname) == 0 && strcmp(a->rootfs, b->rootfs) == 0 &&
	       strcmp(a->user, b->user) == 0 &&
	       a->uid == b->uid && a->gid == b->gid && a->ngroups == b->ngroups &&
	       (a->ngroups == 0 ||
		memcmp(a->groups, b->groups, a->ngroups * sizeof(uint32_t)) == 0) &&
	       a->terminal == b->terminal && a->open_stdin == b->open_stdin && a->rows == b->rows &&
	       a->cols == b->cols && a->exec == b->exec && a->tool == b->tool &&
	       a->readonly == b->readonly && a->init == b->init && a->unconfined == b->unconfined &&
	       a->caps == b->caps && a->nrlimits == b->nrlimits &&
	       (a->nrlimits == 0 ||
		memcmp(a->rlimits, b->rlimits, a->nrlimits * sizeof(*a->rlimits)) == 0) &&
	       a->ntmpfs == b->ntmpfs && strv_equal(a->tmpfs, b->tmpfs, a->ntmpfs);
}

/* out must hold exactly the frame h/p, byte for byte. */
static void must_be_frame(const struct buf *out, const struct proto_hdr *h, const uint8_t *p)
{
	uint8_t hdr[PROTO_HDR_SIZE];

	proto_hdr_encode(h, hdr);
	must(out->len == PROTO_HDR_SIZE + (size_t)h->len);
	must(memcmp(out->data, hdr, PROTO_HDR_SIZE) == 0);
	must(h->len == 0 || memcmp(out->data + PROTO_HDR_SIZE, p, h->len) == 0);
}

static void check_frame(const struct proto_hdr *h, const uint8_t *p)
{
	struct buf out = BUF_INIT(PROTO_HDR_SIZE + PROTO_MAX_PAYLOAD);
	uint8_t hdr[PROTO_HDR_SIZE];
	struct proto_hdr h2;

	/* the header itself is canonical */
	proto_hdr_encode(h, hdr);
	must(proto_hdr_decode(hdr, &h2) == 0);
	must(h2.len == h->len && h2.type == h->type && h2.flags == 0 && h2.stream == h->stream);

	switch (h->type) {
	case PROTO_HELLO: {
		struct proto_hello m, m2;

		if (proto_get_hello(p, h->len, &m) < 0) {
			must(!m.kernel);
			break;
		}
		must(proto_put_hello(&out, &m) == 0);
		must_be_frame(&out, h, p);
		must(proto_get_hello(out.data + PROTO_HDR_SIZE, h->len, &m2) == 0);
		must(m.version == m2.version && strcmp(m.kernel, m2.kernel) == 0);
		proto_hello_done(&m);
		proto_hello_done(&m2);
		break;
	}
	case PROTO_START: {
		struct proto_start m, m2;

		if (proto_get_start(p, h->len, &m) < 0) {
			must(!m.argv && !m.env && !m.cwd && !m.hostname && !m.rootfs && !m.user && !m.groups &&
			     !m.rlimits && !m.tmpfs);
			break;
		}
		must(m.argc >= 1 && m.argv[m.argc] == NULL && m.env && m.env[m.envc] == NULL);
		must(proto_put_start(&out, h->stream, &m) == 0);
		must_be_frame(&out, h, p);
		must(proto_get_start(out.data + PROTO_HDR_SIZE, h->len, &m2) == 0);
		must(start_equal(&m, &m2));
		proto_start_done(&m);
		proto_start_done(&m2);
		break;
	}
	case PROTO_STARTED:
	case PROTO_STDIN_ACK:
	case PROTO_SIGNAL: {
		uint32_t v;

		must(proto_get_u32(p, h->len, &v) == 0); /* the header fixed the length */
		if (proto_put_u32(&out, h->type, h->stream, v) == 0)
			must_be_frame(&out, h, p);
		else
			must(out.len == 0 && (v == 0 || v > 64));
		break;
	}
	case PROTO_RESIZE: {
		uint16_t rows, cols;

		must(proto_get_resize(p, h->len, &rows, &cols) == 0);
		must(proto_put_resize(&out, h->stream, rows, cols) == 0);
		must_be_frame(&out, h, p);
		break;
	}
	case PROTO_EXIT: {
		struct proto_exit m, m2;

		if (proto_get_exit(p, h->len, &m) < 0) {
			must(m.kind == 0 && m.status == 0);
			break;
		}
		must(proto_put_exit(&out, h->stream, &m) == 0);
		must_be_frame(&out, h, p);
		must(proto_get_exit(out.data + PROTO_HDR_SIZE, h->len, &m2) == 0);
		must(m.kind == m2.kind && m.status == m2.status);
		break;
	}
	case PROTO_ERROR: {
		struct proto_error m, m2;

		if (proto_get_error(p, h->len, &m) < 0) {
			must(!m.message);
			break;
		}
		must(proto_put_error(&out, h->stream, m.kind, m.message) == 0);
		must_be_frame(&out, h, p);
		must(proto_get_error(out.data + PROTO_HDR_SIZE, h->len, &m2) == 0);
		must(m.kind == m2.kind && strcmp(m.message, m2.message) == 0);
		proto_error_done(&m);
		proto_error_done(&m2);
		break;
	}
	case PROTO_STDIN:
	case PROTO_STDIN_EOF:
	case PROTO_STDOUT:
	case PROTO_STDERR:
	case PROTO_NOTICE:
		must(proto_put_data(&out, h->type, h->stream, p, h->len) == 0);
		must_be_frame(&out, h, p);
		break;
	case PROTO_STATS: {
		struct proto_stats m, m2;

		if (h->len == 0) {
			must(proto_put_empty(&out, PROTO_STATS, h->stream) == 0);
			must_be_frame(&out, h, p);
			break;
		}
		if (proto_get_stats(p, h->len, &m) < 0)
			break;
		must(proto_put_stats(&out, &m) == 0);
		must_be_frame(&out, h, p);
		must(proto_get_stats(out.data + PROTO_HDR_SIZE, h->len, &m2) == 0);
		must(memcmp(&m, &m2, sizeof(m)) == 0);
		break;
	}
	case PROTO_SHUTDOWN:
		must(proto_put_empty(&out, PROTO_SHUTDOWN, h->stream) == 0);
		must_be_frame(&out, h, p);
		break;
	case PROTO_RESUME: {
		struct proto_resume m, m2;

		if (proto_get_resume(p, h->len, &m) < 0)
			break;
		must(proto_put_resume(&out, &m) == 0);
		must_be_frame(&out, h, p);
		must(proto_get_resume(out.data + PROTO_HDR_SIZE, h->len, &m2) == 0);
		must(memcmp(&m, &m2, sizeof(m)) == 0);
		break;
	}
	case PROTO_ATTACH: {
		uint32_t v;

		must(proto_get_u32(p, h->len, &v) == 0);
		/* the encoder writes stream 1 and known flags only */
		if (h->stream == 1 && proto_put_attach(&out, v) == 0)
			must_be_frame(&out, h, p);
		else
			must(out.len == 0 || h->stream != 1);
		break;
	}
	case PROTO_STOP: {
		struct proto_stop m;

		if (proto_get_stop(p, h->len, &m) < 0)
			break;
		must(proto_put_stop(&out, &m) == 0);
		if (h->stream == 1)
			must_be_frame(&out, h, p);
		break;
	}
	default:
		abort(); /* the reader let an unknown type through */
	}
	buf_done(&out);
}

/* Digest of what one pass saw: every frame, then how it ended. */
struct pass {
	uint64_t digest;
	size_t frames;
	int end;
};

static void run(const uint8_t *data, size_t size, uint64_t seed, bool check, struct pass *ret)
{
	struct pass s = { .digest = 0xcbf29ce484222325ull };
	struct proto_reader r;
	size_t off = 0;
	int k = 0;

	proto_reader_init(&r);
	while (off < size && k >= 0) {
		size_t room = proto_reader_room(&r), n = size - off;
		struct proto_hdr h;
		const uint8_t *p;

		/* next() returned 0 last time, so there must be room for more */
		must(room > 0);
		if (seed) {
			uint64_t x = xorshift(&seed);
			static const size_t caps[] = { 4, 16, 256, 65536 };
			size_t c = 1 + (size_t)((x >> 8) % caps[x & 3]);
			if (n > c)
				n = c;
		}
		if (n > room)
			n = room;
		must(proto_reader_feed(&r, data + off, n) == 0);
		off += n;
		while ((k = proto_reader_next(&r, &h, &p)) > 0) {
			must(h.len <= PROTO_MAX_PAYLOAD && h.flags == 0);
			s.frames++;
			s.digest = fnv1a(s.digest, &h.type, sizeof(h.type));
			s.digest = fnv1a(s.digest, &h.stream, sizeof(h.stream));
			s.digest = fnv1a(s.digest, &h.len, sizeof(h.len));
			s.digest = fnv1a(s.digest, p, h.len);
			if (check)
				check_frame(&h, p);
		}
		if (k < 0) {
			struct proto_hdr h2;
			const uint8_t *p2;
			must(k == -EPROTO || k == -EMSGSIZE);
			must(proto_reader_next(&r, &h2, &p2) == k); /* the stream stays failed */
		}
	}
	s.end = k;
	proto_reader_done(&r);
	*ret = s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t seed = fnv1a(0xcbf29ce484222325ull, data, size) | 1;
	struct pass a, b;

	run(data, size, seed, true, &a);
	run(data, size, 0, false, &b);
	must(a.frames == b.frames && a.digest == b.digest && a.end == b.end);
	return 0;
}
