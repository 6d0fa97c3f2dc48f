/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host <-> guest wire protocol (see proto.h for the framing, docs/protocol.md for the
 * payloads). Encoders and decoders share one validator per message, so an encoder refuses
 * exactly what the peer's decoder would reject.
 */
#include "proto.h"

#include <assert.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

/* Bounds the kernel itself imposes (__NEW_UTS_LEN, _NSIG - 1); part of the wire contract. */
#define PROTO_MAX_KERNEL   64
#define PROTO_MAX_HOSTNAME 64
#define PROTO_MAX_USER     256
#define PROTO_MAX_SIGNAL   64

#define HELLO_MIN (4u + 4u)
#define HELLO_MAX (HELLO_MIN + PROTO_MAX_KERNEL)
/* argc + one argv string, envc, cwd, hostname, rootfs, user, uid, gid, ngroups, terminal,
 * open_stdin, rows, cols, exec, tool, readonly, init, unconfined, caps, nrlimits, ntmpfs: the
 * smallest payload that can possibly decode. */
#define START_MIN  (4u + 4u + 4u + 4u * 4u + 4u + 4u + 4u + 1u + 1u + 2u + 2u + 5u + 8u + 4u + 4u)
#define RLIMIT_SIZE (4u + 8u + 8u)
#define NET_SIZE (6u + 4u + 1u + 4u + 2u)
#define STATS_SIZE (8u * 8u + 4u + 4u)
#define STOP_SIZE  8u
#define RESUME_SIZE (8u + PROTO_ENTROPY + 1u + PROTO_MAX_NICS * 6u)
#define ERROR_MIN  (4u + 4u)
#define ERROR_MAX  (ERROR_MIN + PROTO_MAX_MESSAGE)
#define EXIT_SIZE  5u
#define READER_MAX ((size_t)PROTO_HDR_SIZE + PROTO_MAX_PAYLOAD)
#define READ_CHUNK ((size_t)64 * 1024)

static const struct {
	const char *name;
	uint32_t min, max; /* payload length bounds */
} proto_types[PROTO_TYPE_MAX] = {
	[PROTO_HELLO] = { "HELLO", HELLO_MIN, HELLO_MAX },
	[PROTO_START] = { "START", START_MIN, PROTO_MAX_PAYLOAD },
	[PROTO_STARTED] = { "STARTED", 4, 4 },
	[PROTO_STDIN] = { "STDIN", 1, PROTO_MAX_DATA },
	[PROTO_STDIN_EOF] = { "STDIN_EOF", 0, 0 },
	[PROTO_STDOUT] = { "STDOUT", 1, PROTO_MAX_DATA },
	[PROTO_STDERR] = { "STDERR", 1, PROTO_MAX_DATA },
	[PROTO_SIGNAL] = { "SIGNAL", 4, 4 },
	[PROTO_RESIZE] = { "RESIZE", 4, 4 },
	[PROTO_EXIT] = { "EXIT", EXIT_SIZE, EXIT_SIZE },
	[PROTO_ERROR] = { "ERROR", ERROR_MIN, ERROR_MAX },
	[PROTO_STATS] = { "STATS", 0, STATS_SIZE },
	[PROTO_SHUTDOWN] = { "SHUTDOWN", 0, 0 },
	[PROTO_ATTACH] = { "ATTACH", 4, 4 },
	[PROTO_STOP] = { "STOP", STOP_SIZE, STOP_SIZE },
	[PROTO_STDIN_ACK] = { "STDIN_ACK", 4, 4 },
	[PROTO_NOTICE] = { "NOTICE", 1, PROTO_MAX_MESSAGE },
	[PROTO_RESUME] = { "RESUME", RESUME_SIZE, RESUME_SIZE },
};

const char *proto_type_name(uint16_t type)
{
	if (type == 0 || type >= PROTO_TYPE_MAX)
		return "UNKNOWN";
	return proto_types[type].name;
}

/* Little-endian packing, byte by byte: independent of the host's endianness and alignment. */
static void le16_put(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void le32_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint16_t le16_get(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t le32_get(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void proto_hdr_encode(const struct proto_hdr *h, uint8_t out[PROTO_HDR_SIZE])
{
	le32_put(out, h->len);
	le16_put(out + 4, h->type);
	le16_put(out + 6, h->flags);
	le32_put(out + 8, h->stream);
}

int proto_hdr_decode(const uint8_t in[PROTO_HDR_SIZE], struct proto_hdr *ret)
{
	struct proto_hdr h = {
		.len = le32_get(in),
		.type = le16_get(in + 4),
		.flags = le16_get(in + 6),
		.stream = le32_get(in + 8),
	};

	if (h.type == 0 || h.type >= PROTO_TYPE_MAX)
		return -EPROTO;
	if (h.flags != 0)
		return -EPROTO;
	if (h.len > PROTO_MAX_PAYLOAD || h.len > proto_types[h.type].max)
		return -EMSGSIZE;
	if (h.len < proto_types[h.type].min)
		return -EPROTO;
	/* HELLO is about the VM itself; START creates a process, which stream 0 is not. */
	if (h.type == PROTO_HELLO && h.stream != 0)
		return -EPROTO;
	if (h.type == PROTO_START && h.stream == 0)
		return -EPROTO;
	if ((h.type == PROTO_STATS || h.type == PROTO_SHUTDOWN || h.type == PROTO_RESUME) &&
	    h.stream != 0)
		return -EPROTO;
	*ret = h;
	return 0;
}

/*
 * Validators shared by encoders and decoders. They return -EINVAL; decoders turn that into
 * -EPROTO. A string is checked by its length (which, for a decoded string, is its wire length:
 * decoders have already rejected embedded NULs).
 */
static int string_check(const char *s, size_t max, size_t *total)
{
	size_t n;

	if (!s)
		return -EINVAL;
	n = strnlen(s, max + 1);
	if (n > max)
		return -EINVAL;
	*total += 4 + n;
	return 0;
}

static int strv_check(char *const *v, uint32_t n, uint32_t min, bool is_env, size_t *total)
{
	int r;

	if (n < min || n > PROTO_MAX_LIST)
		return -EINVAL;
	if (n > 0 && !v)
		return -EINVAL;
	*total += 4;
	for (uint32_t i = 0; i < n; i++) {
		r = string_check(v[i], PROTO_MAX_STRING, total);
		if (r < 0)
			return r;
		/* "KEY=VALUE" with a non-empty key */
		if (is_env && (v[i][0] == '=' || !strchr(v[i], '=')))
			return -EINVAL;
		if (*total > PROTO_MAX_PAYLOAD)
			return -EINVAL;
	}
	return 0;
}

static bool id_valid(uint32_t id)
{
	/* (uid_t)-1 means "unchanged" to setresuid(): never a valid identity. */
	return id != UINT32_MAX;
}

static bool name_ok(const char *s, size_t max, bool tag)
{
	size_t n = strlen(s);

	if (n == 0 || n > max || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (const char *p = s; *p; p++)
		if (tag ? !((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			    (*p >= '0' && *p <= '9') || *p == '_' || *p == '-')
			: *p == '/')
			return false;
	return true;
}

static int mount_check(const struct proto_mount *m, size_t *total)
{
	int r;

	if ((m->kind != PROTO_MOUNT_9P && m->kind != PROTO_MOUNT_BLOCK) || m->readonly > 1 ||
	    m->populate > 1 || !m->tag || !m->file || !m->dst)
		return -EINVAL;
	if (!name_ok(m->tag, PROTO_MAX_TAG, true) ||
	    (m->file[0] && (m->kind != PROTO_MOUNT_9P || !name_ok(m->file, 255, false))) ||
	    m->dst[0] != '/' || m->dst[strspn(m->dst, "/")] == '\0')
		return -EINVAL;
	*total += 3;
	r = string_check(m->tag, PROTO_MAX_TAG, total);
	if (r == 0)
		r = string_check(m->file, 255, total);
	if (r == 0)
		r = string_check(m->dst, PROTO_MAX_STRING, total);
	return r;
}

static int start_check(const struct proto_start *m, size_t *ret_len)
{
	size_t total = 0;
	int r;

	r = strv_check(m->argv, m->argc, 1, false, &total);
	if (r < 0)
		return r;
	r = strv_check(m->env, m->envc, 0, true, &total);
	if (r < 0)
		return r;
	r = string_check(m->cwd, PROTO_MAX_STRING, &total);
	if (r < 0)
		return r;
	if (m->cwd[0] != '/')
		return -EINVAL;
	r = string_check(m->hostname, PROTO_MAX_HOSTNAME, &total);
	if (r < 0)
		return r;
	r = string_check(m->rootfs, PROTO_MAX_STRING, &total);
	if (r < 0)
		return r;
	if (m->rootfs[0] != '/')
		return -EINVAL;
	r = string_check(m->user ? m->user : "", PROTO_MAX_USER, &total);
	if (r < 0)
		return r;
	if (!id_valid(m->uid) || !id_valid(m->gid))
		return -EINVAL;
	if (m->ngroups > PROTO_MAX_LIST || (m->ngroups > 0 && !m->groups))
		return -EINVAL;
	for (uint32_t i = 0; i < m->ngroups; i++)
		if (!id_valid(m->groups[i]))
			return -EINVAL;
	if (m->terminal > 1 || m->open_stdin > 1 || m->exec > 1 || m->tool >= PROTO_TOOL_MAX ||
	    m->readonly > 1 || m->init > 1 || m->unconfined > 1)
		return -EINVAL;
	if (m->caps >> 41) /* CAP_LAST_CAP is 40 */
		return -EINVAL;
	if (m->nrlimits > PROTO_MAX_RLIMITS || (m->nrlimits > 0 && !m->rlimits))
		return -EINVAL;
	for (uint32_t i = 0; i < m->nrlimits; i++)
		if (m->rlimits[i].resource >= PROTO_MAX_RLIMITS ||
		    m->rlimits[i].soft > m->rlimits[i].hard)
			return -EINVAL;
	r = strv_check(m->tmpfs, m->ntmpfs, 0, false, &total);
	if (r < 0)
		return r;
	for (uint32_t i = 0; i < m->ntmpfs; i++)
		if (m->tmpfs[i][0] != '/')
			return -EINVAL;
	if (m->nnets > PROTO_MAX_NICS)
		return -EINVAL;
	for (uint32_t i = 0; i < m->nnets; i++) {
		const struct proto_net *n = &m->nets[i];
		uint32_t mask;

		if (n->prefix < 1 || n->prefix > 30) /* before the shift (found by fuzz_proto) */
			return -EINVAL;
		mask = ~UINT32_C(0) << (32 - n->prefix);
		if ((n->mac[0] & 1) || n->mtu < 576 || (n->addr & ~mask) == 0 ||
		    (n->addr & ~mask) == ~mask ||
		    (n->gateway && ((n->gateway & mask) != (n->addr & mask) ||
				    n->gateway == n->addr)))
			return -EINVAL;
	}
	r = string_check(m->hosts ? m->hosts : "", PROTO_MAX_ETC_FILE, &total);
	if (r < 0)
		return r;
	r = string_check(m->resolv ? m->resolv : "", PROTO_MAX_ETC_FILE, &total);
	if (r < 0)
		return r;
	if (m->nmounts > PROTO_MAX_MOUNTS || (m->nmounts > 0 && !m->mounts))
		return -EINVAL;
	for (uint32_t i = 0; i < m->nmounts; i++) {
		r = mount_check(&m->mounts[i], &total);
		if (r < 0)
			return r;
	}
	total += 4 + 4 + 4 + 4 + (size_t)m->ngroups * 4 + 1 + 1 + 2 + 2 + 5 + 8 + 4 +
		 (size_t)m->nrlimits * RLIMIT_SIZE + 1 + (size_t)m->nnets * NET_SIZE;
	if (total > PROTO_MAX_PAYLOAD)
		return -EINVAL;
	if (ret_len)
		*ret_len = total;
	return 0;
}

/* a plain name: no '/', not "." or "..", and the same bounds as a tag for the tag */
static int hello_check(const struct proto_hello *m, size_t *ret_len)
{
	size_t total = 4;
	int r;

	/* Any version is valid on the wire: the host must be able to read and report it. */
	r = string_check(m->kernel, PROTO_MAX_KERNEL, &total);
	if (r < 0)
		return r;
	*ret_len = total;
	return 0;
}

static int exit_check(const struct proto_exit *m)
{
	switch (m->kind) {
	case PROTO_EXIT_CODE:
		return m->status <= 255 ? 0 : -EINVAL;
	case PROTO_EXIT_SIGNAL:
		return m->status >= 1 && m->status <= PROTO_MAX_SIGNAL ? 0 : -EINVAL;
	default:
		return -EINVAL;
	}
}

static int error_check(uint32_t kind, const char *message, size_t *ret_len)
{
	size_t total = 4;
	int r;

	if (kind > PROTO_ERR_NOTFOUND)
		return -EINVAL;
	r = string_check(message, PROTO_MAX_MESSAGE, &total);
	if (r < 0)
		return r;
	*ret_len = total;
	return 0;
}

/*
 * Encoding: every encoder validates and sizes the payload first, reserves the whole frame, and
 * only then writes into the reserved space and bumps out->len. A failure appends nothing.
 */
static int frame_begin(struct buf *out, uint16_t type, uint32_t stream, size_t len, uint8_t **ret)
{
	struct proto_hdr h = { .len = (uint32_t)len, .type = type, .stream = stream };
	uint8_t *p;
	int r;

	if (len > PROTO_MAX_PAYLOAD)
		return -EINVAL;
	r = buf_reserve(out, PROTO_HDR_SIZE + len);
	if (r < 0)
		return r;
	p = out->data + out->len;
	proto_hdr_encode(&h, p);
	*ret = p + PROTO_HDR_SIZE;
	return 0;
}

static void frame_end(struct buf *out, size_t len, const uint8_t *end)
{
	assert(end == out->data + out->len + PROTO_HDR_SIZE + len);
	(void)end;
	out->len += PROTO_HDR_SIZE + len;
}

static uint8_t *w_u8(uint8_t *w, uint8_t v)
{
	*w = v;
	return w + 1;
}

static uint8_t *w_u16(uint8_t *w, uint16_t v)
{
	le16_put(w, v);
	return w + 2;
}

static uint8_t *w_u32(uint8_t *w, uint32_t v)
{
	le32_put(w, v);
	return w + 4;
}

static uint8_t *w_u64(uint8_t *w, uint64_t v)
{
	le32_put(w, (uint32_t)v);
	le32_put(w + 4, (uint32_t)(v >> 32));
	return w + 8;
}

static uint8_t *w_str(uint8_t *w, const char *s)
{
	size_t n = strlen(s); /* bounded: checked by the validator */

	w = w_u32(w, (uint32_t)n);
	memcpy(w, s, n);
	return w + n;
}

static uint8_t *w_strv(uint8_t *w, char *const *v, uint32_t n)
{
	w = w_u32(w, n);
	for (uint32_t i = 0; i < n; i++)
		w = w_str(w, v[i]);
	return w;
}

int proto_put_data(struct buf *out, uint16_t type, uint32_t stream, const void *data, size_t len)
{
	uint8_t *w;
	int r;

	switch (type) {
	case PROTO_STDIN:
	case PROTO_STDOUT:
	case PROTO_STDERR:
		if (len < 1 || len > PROTO_MAX_DATA || !data)
			return -EINVAL;
		break;
	case PROTO_STDIN_EOF:
		if (len != 0)
			return -EINVAL;
		break;
	case PROTO_NOTICE:
		if (len < 1 || len > PROTO_MAX_MESSAGE || !data)
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	r = frame_begin(out, type, stream, len, &w);
	if (r < 0)
		return r;
	if (len > 0)
		memcpy(w, data, len);
	frame_end(out, len, w + len);
	return 0;
}

int proto_put_hello(struct buf *out, const struct proto_hello *m)
{
	size_t len;
	uint8_t *w;
	int r;

	r = hello_check(m, &len);
	if (r < 0)
		return r;
	r = frame_begin(out, PROTO_HELLO, 0, len, &w);
	if (r < 0)
		return r;
	w = w_u32(w, m->version);
	w = w_str(w, m->kernel);
	frame_end(out, len, w);
	return 0;
}

int proto_put_start(struct buf *out, uint32_t stream, const struct proto_start *m)
{
	size_t len;
	uint8_t *w;
	int r;

	if (stream == 0)
		return -EINVAL;
	r = start_check(m, &len);
	if (r < 0)
		return r;
	r = frame_begin(out, PROTO_START, stream, len, &w);
	if (r < 0)
		return r;
	w = w_strv(w, m->argv, m->argc);
	w = w_strv(w, m->env, m->envc);
	w = w_str(w, m->cwd);
	w = w_str(w, m->hostname);
	w = w_str(w, m->rootfs);
	w = w_str(w, m->user ? m->user : "");
	w = w_u32(w, m->uid);
	w = w_u32(w, m->gid);
	w = w_u32(w, m->ngroups);
	for (uint32_t i = 0; i < m->ngroups; i++)
		w = w_u32(w, m->groups[i]);
	w = w_u8(w, m->terminal);
	w = w_u8(w, m->open_stdin);
	w = w_u16(w, m->rows);
	w = w_u16(w, m->cols);
	w = w_u8(w, m->exec);
	w = w_u8(w, m->tool);
	w = w_u8(w, m->readonly);
	w = w_u8(w, m->init);
	w = w_u8(w, m->unconfined);
	w = w_u64(w, m->caps);
	w = w_u32(w, m->nrlimits);
	for (uint32_t i = 0; i < m->nrlimits; i++) {
		w = w_u32(w, m->rlimits[i].resource);
		w = w_u64(w, m->rlimits[i].soft);
		w = w_u64(w, m->rlimits[i].hard);
	}
	w = w_strv(w, m->tmpfs, m->ntmpfs);
	w = w_u8(w, m->nnets);
	for (uint32_t i = 0; i < m->nnets; i++) {
		memcpy(w, m->nets[i].mac, 6);
		w += 6;
		w = w_u32(w, m->nets[i].addr);
		w = w_u8(w, m->nets[i].prefix);
		w = w_u32(w, m->nets[i].gateway);
		w = w_u16(w, m->nets[i].mtu);
	}
	w = w_str(w, m->hosts ? m->hosts : "");
	w = w_str(w, m->resolv ? m->resolv : "");
	w = w_u32(w, m->nmounts);
	for (uint32_t i = 0; i < m->nmounts; i++) {
		w = w_u8(w, m->mounts[i].kind);
		w = w_u8(w, m->mounts[i].readonly);
		w = w_u8(w, m->mounts[i].populate);
		w = w_str(w, m->mounts[i].tag);
		w = w_str(w, m->mounts[i].file);
		w = w_str(w, m->mounts[i].dst);
	}
	frame_end(out, len, w);
	return 0;
}

int proto_put_u32(struct buf *out, uint16_t type, uint32_t stream, uint32_t v)
{
	uint8_t *w;
	int r;

	switch (type) {
	case PROTO_STARTED:
	case PROTO_STDIN_ACK:
		if (v == 0) /* a pid; a byte count */
			return -EINVAL;
		break;
	case PROTO_SIGNAL:
		if (v < 1 || v > PROTO_MAX_SIGNAL)
			return -EINVAL;
		break;
	case PROTO_ATTACH:
		break;
	default:
		return -EINVAL;
	}
	r = frame_begin(out, type, stream, 4, &w);
	if (r < 0)
		return r;
	w = w_u32(w, v);
	frame_end(out, 4, w);
	return 0;
}

int proto_put_resize(struct buf *out, uint32_t stream, uint16_t rows, uint16_t cols)
{
	uint8_t *w;
	int r;

	r = frame_begin(out, PROTO_RESIZE, stream, 4, &w);
	if (r < 0)
		return r;
	w = w_u16(w, rows);
	w = w_u16(w, cols);
	frame_end(out, 4, w);
	return 0;
}

int proto_put_exit(struct buf *out, uint32_t stream, const struct proto_exit *m)
{
	uint8_t *w;
	int r;

	r = exit_check(m);
	if (r < 0)
		return r;
	r = frame_begin(out, PROTO_EXIT, stream, EXIT_SIZE, &w);
	if (r < 0)
		return r;
	w = w_u8(w, m->kind);
	w = w_u32(w, m->status);
	frame_end(out, EXIT_SIZE, w);
	return 0;
}

int proto_put_error(struct buf *out, uint32_t stream, uint32_t kind, const char *message)
{
	size_t len;
	uint8_t *w;
	int r;

	r = error_check(kind, message, &len);
	if (r < 0)
		return r;
	r = frame_begin(out, PROTO_ERROR, stream, len, &w);
	if (r < 0)
		return r;
	w = w_u32(w, kind);
	w = w_str(w, message);
	frame_end(out, len, w);
	return 0;
}

int proto_put_empty(struct buf *out, uint16_t type, uint32_t stream)
{
	uint8_t *w;
	int r;

	switch (type) {
	case PROTO_STDIN_EOF:
		break;
	case PROTO_STATS:
	case PROTO_SHUTDOWN:
		if (stream != 0)
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	r = frame_begin(out, type, stream, 0, &w);
	if (r < 0)
		return r;
	frame_end(out, 0, w);
	return 0;
}

int proto_put_stats(struct buf *out, const struct proto_stats *m)
{
	uint8_t *w;
	int r;

	r = frame_begin(out, PROTO_STATS, 0, STATS_SIZE, &w);
	if (r < 0)
		return r;
	w = w_u64(w, m->mem_total);
	w = w_u64(w, m->mem_available);
	w = w_u64(w, m->cpu_ns);
	w = w_u64(w, m->uptime_ns);
	w = w_u64(w, m->disk_read);
	w = w_u64(w, m->disk_write);
	w = w_u64(w, m->net_rx);
	w = w_u64(w, m->net_tx);
	w = w_u32(w, m->pids);
	w = w_u32(w, m->ncpus);
	frame_end(out, STATS_SIZE, w);
	return 0;
}

void proto_template_mac(unsigned i, uint8_t mac[6])
{
	static const uint8_t base[6] = { 0x06, 0xc0, 0x7e, 0x00, 0x00, 0x00 };

	memcpy(mac, base, 6);
	mac[5] = (uint8_t)(i + 1);
}

/* unicast, not all zero */
static bool mac_ok(const uint8_t mac[6])
{
	static const uint8_t zero[6];

	return !(mac[0] & 1) && memcmp(mac, zero, 6) != 0;
}

int proto_put_resume(struct buf *out, const struct proto_resume *m)
{
	uint8_t *w;
	int r;

	if (m->nmacs > PROTO_MAX_NICS)
		return -EINVAL;
	for (unsigned i = 0; i < m->nmacs; i++)
		if (!mac_ok(m->macs[i]))
			return -EINVAL;
	r = frame_begin(out, PROTO_RESUME, 0, RESUME_SIZE, &w);
	if (r < 0)
		return r;
	w = w_u64(w, m->realtime_ns);
	memcpy(w, m->entropy, PROTO_ENTROPY);
	w += PROTO_ENTROPY;
	*w++ = m->nmacs;
	for (unsigned i = 0; i < PROTO_MAX_NICS; i++, w += 6) {
		if (i < m->nmacs)
			memcpy(w, m->macs[i], 6);
		else
			memset(w, 0, 6);
	}
	frame_end(out, RESUME_SIZE, w);
	return 0;
}

int proto_put_attach(struct buf *out, uint32_t flags)
{
	uint8_t *w;
	int r;

	if (flags & ~(uint32_t)PROTO_ATTACH_STDIN)
		return -EINVAL;
	r = frame_begin(out, PROTO_ATTACH, 1, 4, &w);
	if (r < 0)
		return r;
	w = w_u32(w, flags);
	frame_end(out, 4, w);
	return 0;
}

int proto_put_stop(struct buf *out, const struct proto_stop *m)
{
	uint8_t *w;
	int r;

	if (m->signal < 1 || m->signal > PROTO_MAX_SIGNAL)
		return -EINVAL;
	r = frame_begin(out, PROTO_STOP, 1, STOP_SIZE, &w);
	if (r < 0)
		return r;
	w = w_u32(w, m->signal);
	w = w_u32(w, m->timeout_s);
	frame_end(out, STOP_SIZE, w);
	return 0;
}

/*
 * Decoding: a cursor over the payload. Every read checks the bytes left; every count and
 * length is checked against both the bytes left and the protocol's limit before allocating.
 */
struct cursor {
	const uint8_t *p;
	size_t left;
};

static int r_u8(struct cursor *c, uint8_t *ret)
{
	if (c->left < 1)
		return -EPROTO;
	*ret = c->p[0];
	c->p += 1;
	c->left -= 1;
	return 0;
}

static int r_u16(struct cursor *c, uint16_t *ret)
{
	if (c->left < 2)
		return -EPROTO;
	*ret = le16_get(c->p);
	c->p += 2;
	c->left -= 2;
	return 0;
}

static int r_u32(struct cursor *c, uint32_t *ret)
{
	if (c->left < 4)
		return -EPROTO;
	*ret = le32_get(c->p);
	c->p += 4;
	c->left -= 4;
	return 0;
}

static int r_u64(struct cursor *c, uint64_t *ret)
{
	if (c->left < 8)
		return -EPROTO;
	*ret = (uint64_t)le32_get(c->p) | (uint64_t)le32_get(c->p + 4) << 32;
	c->p += 8;
	c->left -= 8;
	return 0;
}

static int r_str(struct cursor *c, size_t max, char **ret)
{
	uint32_t n;
	char *s;
	int r;

	r = r_u32(c, &n);
	if (r < 0)
		return r;
	if (n > max || n > c->left)
		return -EPROTO;
	if (n > 0 && memchr(c->p, '\0', n))
		return -EPROTO;
	s = malloc((size_t)n + 1);
	if (!s)
		return -ENOMEM;
	if (n > 0)
		memcpy(s, c->p, n);
	s[n] = '\0';
	c->p += n;
	c->left -= n;
	*ret = s;
	return 0;
}

static void strv_free(char **v)
{
	if (!v)
		return;
	for (char **i = v; *i; i++)
		free(*i);
	free(v);
}

/* A NULL-terminated list of min..PROTO_MAX_LIST strings. */
static int r_strv(struct cursor *c, uint32_t min, char ***ret, uint32_t *ret_n)
{
	char **v;
	uint32_t n;
	int r;

	r = r_u32(c, &n);
	if (r < 0)
		return r;
	/* each entry takes at least its 4-byte length */
	if (n < min || n > PROTO_MAX_LIST || n > c->left / 4)
		return -EPROTO;
	v = calloc((size_t)n + 1, sizeof(char *));
	if (!v)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		r = r_str(c, PROTO_MAX_STRING, &v[i]);
		if (r < 0) {
			strv_free(v);
			return r;
		}
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

void proto_hello_done(struct proto_hello *m)
{
	free(m->kernel);
	*m = (struct proto_hello){};
}

void proto_start_done(struct proto_start *m)
{
	strv_free(m->argv);
	strv_free(m->env);
	free(m->cwd);
	free(m->hostname);
	free(m->rootfs);
	free(m->user);
	free(m->groups);
	free(m->rlimits);
	strv_free(m->tmpfs);
	free(m->hosts);
	free(m->resolv);
	for (uint32_t i = 0; m->mounts && i < m->nmounts; i++) {
		free(m->mounts[i].tag);
		free(m->mounts[i].file);
		free(m->mounts[i].dst);
	}
	free(m->mounts);
	*m = (struct proto_start){};
}

void proto_error_done(struct proto_error *m)
{
	free(m->message);
	*m = (struct proto_error){};
}

int proto_get_hello(const uint8_t *p, size_t len, struct proto_hello *ret)
{
	_cleanup_(proto_hello_done) struct proto_hello m = {};
	struct cursor c = { p, len };
	size_t n;
	int r;

	*ret = (struct proto_hello){};
	r = r_u32(&c, &m.version);
	if (r < 0)
		return r;
	r = r_str(&c, PROTO_MAX_KERNEL, &m.kernel);
	if (r < 0)
		return r;
	if (c.left != 0 || hello_check(&m, &n) < 0)
		return -EPROTO;
	*ret = m;
	m = (struct proto_hello){};
	return 0;
}

int proto_get_start(const uint8_t *p, size_t len, struct proto_start *ret)
{
	_cleanup_(proto_start_done) struct proto_start m = {};
	struct cursor c = { p, len };
	int r;

	*ret = (struct proto_start){};
	r = r_strv(&c, 1, &m.argv, &m.argc);
	if (r < 0)
		return r;
	r = r_strv(&c, 0, &m.env, &m.envc);
	if (r < 0)
		return r;
	r = r_str(&c, PROTO_MAX_STRING, &m.cwd);
	if (r < 0)
		return r;
	r = r_str(&c, PROTO_MAX_HOSTNAME, &m.hostname);
	if (r < 0)
		return r;
	r = r_str(&c, PROTO_MAX_STRING, &m.rootfs);
	if (r < 0)
		return r;
	r = r_str(&c, PROTO_MAX_USER, &m.user);
	if (r < 0)
		return r;
	r = r_u32(&c, &m.uid);
	if (r < 0)
		return r;
	r = r_u32(&c, &m.gid);
	if (r < 0)
		return r;
	r = r_u32(&c, &m.ngroups);
	if (r < 0)
		return r;
	if (m.ngroups > PROTO_MAX_LIST || m.ngroups > c.left / 4)
		return -EPROTO;
	if (m.ngroups > 0) {
		m.groups = calloc(m.ngroups, sizeof(uint32_t));
		if (!m.groups)
			return -ENOMEM;
		for (uint32_t i = 0; i < m.ngroups; i++)
			(void)r_u32(&c, &m.groups[i]); /* cannot fail: checked above */
	}
	r = r_u8(&c, &m.terminal);
	if (r < 0)
		return r;
	r = r_u8(&c, &m.open_stdin);
	if (r < 0)
		return r;
	r = r_u16(&c, &m.rows);
	if (r < 0)
		return r;
	r = r_u16(&c, &m.cols);
	if (r < 0)
		return r;
	if ((r = r_u8(&c, &m.exec)) < 0 || (r = r_u8(&c, &m.tool)) < 0 ||
	    (r = r_u8(&c, &m.readonly)) < 0 || (r = r_u8(&c, &m.init)) < 0 ||
	    (r = r_u8(&c, &m.unconfined)) < 0 || (r = r_u64(&c, &m.caps)) < 0 ||
	    (r = r_u32(&c, &m.nrlimits)) < 0)
		return r;
	if (m.nrlimits > PROTO_MAX_RLIMITS || m.nrlimits > c.left / RLIMIT_SIZE)
		return -EPROTO;
	if (m.nrlimits > 0) {
		m.rlimits = calloc(m.nrlimits, sizeof(*m.rlimits));
		if (!m.rlimits)
			return -ENOMEM;
		for (uint32_t i = 0; i < m.nrlimits; i++) {
			/* cannot fail: checked above */
			(void)r_u32(&c, &m.rlimits[i].resource);
			(void)r_u64(&c, &m.rlimits[i].soft);
			(void)r_u64(&c, &m.rlimits[i].hard);
		}
	}
	r = r_strv(&c, 0, &m.tmpfs, &m.ntmpfs);
	if (r < 0)
		return r;
	r = r_u8(&c, &m.nnets);
	if (r < 0)
		return r;
	if (m.nnets > PROTO_MAX_NICS)
		return -EPROTO;
	for (uint32_t i = 0; i < m.nnets; i++) {
		if (c.left < NET_SIZE)
			return -EPROTO;
		memcpy(m.nets[i].mac, c.p, 6);
		c.p += 6;
		c.left -= 6;
		(void)r_u32(&c, &m.nets[i].addr); /* cannot fail: checked above */
		(void)r_u8(&c, &m.nets[i].prefix);
		(void)r_u32(&c, &m.nets[i].gateway);
		(void)r_u16(&c, &m.nets[i].mtu);
	}
	r = r_str(&c, PROTO_MAX_ETC_FILE, &m.hosts);
	if (r < 0)
		return r;
	r = r_str(&c, PROTO_MAX_ETC_FILE, &m.resolv);
	if (r < 0)
		return r;
	r = r_u32(&c, &m.nmounts);
	if (r < 0)
		return r;
	if (m.nmounts > PROTO_MAX_MOUNTS)
		return -EPROTO;
	if (m.nmounts > 0) {
		m.mounts = calloc(m.nmounts, sizeof(*m.mounts));
		if (!m.mounts)
			return -ENOMEM;
	}
	for (uint32_t i = 0; i < m.nmounts; i++) {
		struct proto_mount *t = &m.mounts[i];

		if ((r = r_u8(&c, &t->kind)) < 0 || (r = r_u8(&c, &t->readonly)) < 0 ||
		    (r = r_u8(&c, &t->populate)) < 0 ||
		    (r = r_str(&c, PROTO_MAX_TAG, &t->tag)) < 0 ||
		    (r = r_str(&c, 255, &t->file)) < 0 ||
		    (r = r_str(&c, PROTO_MAX_STRING, &t->dst)) < 0)
			return r;
	}
	if (c.left != 0 || start_check(&m, NULL) < 0)
		return -EPROTO;
	*ret = m;
	m = (struct proto_start){};
	return 0;
}

/* STARTED (pid) and SIGNAL: only the framing is checked here. The receiver of a SIGNAL must
 * itself check the number is 1..64 before passing it to kill(). */
int proto_get_u32(const uint8_t *p, size_t len, uint32_t *ret)
{
	*ret = 0;
	if (len != 4)
		return -EPROTO;
	*ret = le32_get(p);
	return 0;
}

int proto_get_resize(const uint8_t *p, size_t len, uint16_t *ret_rows, uint16_t *ret_cols)
{
	*ret_rows = *ret_cols = 0;
	if (len != 4)
		return -EPROTO;
	*ret_rows = le16_get(p);
	*ret_cols = le16_get(p + 2);
	return 0;
}

int proto_get_exit(const uint8_t *p, size_t len, struct proto_exit *ret)
{
	struct proto_exit m;

	*ret = (struct proto_exit){};
	if (len != EXIT_SIZE)
		return -EPROTO;
	m = (struct proto_exit){ .kind = p[0], .status = le32_get(p + 1) };
	if (exit_check(&m) < 0)
		return -EPROTO;
	*ret = m;
	return 0;
}

int proto_get_stats(const uint8_t *p, size_t len, struct proto_stats *ret)
{
	struct cursor c = { p, len };

	*ret = (struct proto_stats){};
	if (len != STATS_SIZE)
		return -EPROTO;
	(void)r_u64(&c, &ret->mem_total); /* cannot fail: the length is exact */
	(void)r_u64(&c, &ret->mem_available);
	(void)r_u64(&c, &ret->cpu_ns);
	(void)r_u64(&c, &ret->uptime_ns);
	(void)r_u64(&c, &ret->disk_read);
	(void)r_u64(&c, &ret->disk_write);
	(void)r_u64(&c, &ret->net_rx);
	(void)r_u64(&c, &ret->net_tx);
	(void)r_u32(&c, &ret->pids);
	(void)r_u32(&c, &ret->ncpus);
	return 0;
}

int proto_get_resume(const uint8_t *p, size_t len, struct proto_resume *ret)
{
	struct proto_resume m = { 0 };
	struct cursor c = { p, len };

	*ret = (struct proto_resume){ 0 };
	if (len != RESUME_SIZE)
		return -EPROTO;
	(void)r_u64(&c, &m.realtime_ns); /* cannot fail: the length is exact */
	p += 8;
	memcpy(m.entropy, p, PROTO_ENTROPY);
	p += PROTO_ENTROPY;
	m.nmacs = *p++;
	if (m.nmacs > PROTO_MAX_NICS)
		return -EPROTO;
	for (unsigned i = 0; i < PROTO_MAX_NICS; i++, p += 6) {
		memcpy(m.macs[i], p, 6);
		if (i < m.nmacs ? !mac_ok(m.macs[i]) : !!memcmp(m.macs[i], "\0\0\0\0\0\0", 6))
			return -EPROTO;
	}
	*ret = m;
	return 0;
}

int proto_get_stop(const uint8_t *p, size_t len, struct proto_stop *ret)
{
	*ret = (struct proto_stop){};
	if (len != STOP_SIZE)
		return -EPROTO;
	ret->signal = le32_get(p);
	ret->timeout_s = le32_get(p + 4);
	if (ret->signal < 1 || ret->signal > PROTO_MAX_SIGNAL)
		return -EPROTO;
	return 0;
}

int proto_get_error(const uint8_t *p, size_t len, struct proto_error *ret)
{
	_cleanup_(proto_error_done) struct proto_error m = {};
	struct cursor c = { p, len };
	size_t n;
	int r;

	*ret = (struct proto_error){};
	r = r_u32(&c, &m.kind);
	if (r < 0)
		return r;
	r = r_str(&c, PROTO_MAX_MESSAGE, &m.message);
	if (r < 0)
		return r;
	if (c.left != 0 || error_check(m.kind, m.message, &n) < 0)
		return -EPROTO;
	*ret = m;
	m = (struct proto_error){};
	return 0;
}

/*
 * Reader: in holds at most one header + the largest payload. Bytes of frames already returned
 * stay in place (so a returned payload remains valid) until the next feed compacts them away.
 */
void proto_reader_init(struct proto_reader *r)
{
	*r = (struct proto_reader){ .in = BUF_INIT(READER_MAX) };
}

size_t proto_reader_room(const struct proto_reader *r)
{
	return r->in.max - (r->in.len - r->consumed);
}

int proto_reader_feed(struct proto_reader *r, const void *data, size_t len)
{
	if (len == 0)
		return 0;
	if (!data)
		return -EINVAL;
	if (r->consumed > 0) {
		buf_consume(&r->in, r->consumed);
		r->consumed = 0;
	}
	return buf_append(&r->in, data, len);
}

ssize_t proto_reader_read(struct proto_reader *r, int fd)
{
	size_t want = proto_reader_room(r);
	ssize_t n;

	if (want > READ_CHUNK)
		want = READ_CHUNK;
	if (r->consumed > 0) {
		buf_consume(&r->in, r->consumed);
		r->consumed = 0;
	}
	if (buf_reserve(&r->in, want) < 0)
		return -ENOMEM;
	n = read(fd, r->in.data + r->in.len, want);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
	r->in.len += (size_t)n;
	return n;
}

int proto_reader_next(struct proto_reader *r, struct proto_hdr *hdr, const uint8_t **payload)
{
	size_t avail = r->in.len - r->consumed;
	struct proto_hdr h;
	const uint8_t *p;
	int k;

	if (avail < PROTO_HDR_SIZE)
		return 0;
	p = r->in.data + r->consumed;
	/* Checked as soon as it is complete: a bad or oversized header fails before its payload
	 * is waited for. The header stays unconsumed, so every later call fails the same way. */
	k = proto_hdr_decode(p, &h);
	if (k < 0)
		return k;
	if (avail - PROTO_HDR_SIZE < h.len)
		return 0;
	r->consumed += PROTO_HDR_SIZE + h.len;
	*hdr = h;
	*payload = p + PROTO_HDR_SIZE;
	return 1;
}

void proto_reader_done(struct proto_reader *r)
{
	buf_done(&r->in);
	r->consumed = 0;
}
