/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host <-> guest wire protocol, compiled into both the CLI and cove-init.
 * See docs/protocol.md. Everything here is pure: bytes in, struct out (or the reverse);
 * nothing does I/O, and every decoder treats its input as hostile.
 *
 * A frame is a 12-byte header followed by `len` payload bytes, all little-endian:
 *
 *     u32 len      payload length, <= PROTO_MAX_PAYLOAD (and the type's own bound)
 *     u16 type     enum proto_type
 *     u16 flags    0 (reserved; a non-zero value is rejected)
 *     u32 stream   which process the frame is about: 0 = the VM / init itself,
 *                  1 = the container's main process, 2.. = later exec sessions
 *
 * Strings inside payloads are u32 length + bytes (no NUL on the wire; a NUL inside is
 * rejected); string lists are u32 count + strings. Decoders reject trailing bytes.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../util/buf.h"

#define PROTO_VERSION 8
#define PROTO_HDR_SIZE 12
#define PROTO_MAX_PAYLOAD (1u << 20)    /* any frame */
#define PROTO_MAX_DATA (32u * 1024)     /* one STDIN/STDOUT/STDERR chunk */
#define PROTO_MAX_STRING (64u * 1024)   /* one string inside a payload */
#define PROTO_MAX_LIST 4096             /* entries in argv, env, groups */
#define PROTO_MAX_MESSAGE 4096          /* ERROR and NOTICE text */

enum proto_type {
	PROTO_HELLO = 1,   /* guest -> host, stream 0: struct proto_hello */
	PROTO_START = 2,   /* host -> guest: struct proto_start (stream = the new process) */
	PROTO_STARTED = 3, /* guest -> host: u32 guest pid */
	PROTO_STDIN = 4,   /* host -> guest: raw bytes, 1..PROTO_MAX_DATA */
	PROTO_STDIN_EOF = 5, /* host -> guest: empty payload */
	PROTO_STDOUT = 6,  /* guest -> host: raw bytes, 1..PROTO_MAX_DATA */
	PROTO_STDERR = 7,  /* guest -> host: raw bytes, 1..PROTO_MAX_DATA */
	PROTO_SIGNAL = 8,  /* host -> guest: u32 signal number (1..64) */
	PROTO_RESIZE = 9,  /* host -> guest: u16 rows, u16 cols */
	PROTO_EXIT = 10,   /* guest -> host: struct proto_exit; stdout/stderr of stream are done */
	PROTO_ERROR = 11,  /* guest -> host: struct proto_error */
	PROTO_STATS = 12,  /* host -> guest, stream 0: empty (a request);
			    * guest -> host, stream 0: struct proto_stats (the answer) */
	PROTO_SHUTDOWN = 13, /* host -> guest, stream 0, empty: kill every process, sync, unmount,
			      * power off */
	/* Between the CLI and a container's supervisor only (never to or from a guest): */
	PROTO_ATTACH = 14, /* client -> supervisor: u32 flags (PROTO_ATTACH_*): relay stream 1 */
	PROTO_STOP = 15,   /* client -> supervisor: struct proto_stop */
	PROTO_STDIN_ACK = 16, /* guest -> host: u32 bytes (>= 1) of the stream's STDIN the process
			       * has taken (or that were dropped): the host keeps what is in
			       * flight per stream under a window, so one process that does not
			       * read its stdin cannot stall the channel the others share */
	PROTO_NOTICE = 17, /* supervisor -> client, stream 0: text, 1..PROTO_MAX_MESSAGE bytes,
			    * one line for the user's stderr (KVM fell back to TCG) */
	PROTO_RESUME = 18, /* host -> guest, stream 0, before START: struct proto_resume; the VM
			    * was restored from a template (it said HELLO to another host before):
			    * it makes itself unique, then says HELLO again */
	PROTO_TYPE_MAX
};

struct proto_hdr {
	uint32_t len;
	uint16_t type;
	uint16_t flags;
	uint32_t stream;
};

struct proto_hello {
	uint32_t version;   /* PROTO_VERSION of the guest */
	char *kernel;       /* uname -r of the guest kernel */
};

/* The container's network interface (eth0), configured by the guest before the main process
 * starts: no DHCP on the boot path. */
struct proto_net {
	uint8_t mac[6];     /* unicast, as QEMU's NIC has it */
	uint32_t addr;      /* IPv4, host byte order */
	uint8_t prefix;     /* 1..30 */
	uint32_t gateway;   /* 0: no default route; else inside addr/prefix */
	uint16_t mtu;       /* 576..65535 */
};

#define PROTO_MAX_NICS 4

/*
 * What a VM restored from a template needs to be itself rather than a copy: the host's wall
 * clock, fresh entropy for the kernel's RNG (reseeded before any process runs), and its NICs'
 * MACs. A template's NIC i has the MAC proto_template_mac(i); the guest gives it macs[i].
 */
#define PROTO_ENTROPY 64
struct proto_resume {
	uint64_t realtime_ns;          /* CLOCK_REALTIME on the host when sent */
	uint8_t entropy[PROTO_ENTROPY];
	uint8_t nmacs;                 /* <= PROTO_MAX_NICS */
	uint8_t macs[PROTO_MAX_NICS][6]; /* unicast */
};

#define PROTO_MAX_MOUNTS 16 /* bind mounts and volumes of one container */
#define PROTO_MAX_TAG 20    /* a 9p mount tag or a virtio-blk serial, as the VM has it */

enum proto_mount_kind {
	PROTO_MOUNT_9P = 1,    /* a directory the host shares over virtio-9p, by its mount tag */
	PROTO_MOUNT_BLOCK = 2, /* an ext4 volume on its own virtio-blk disk, by its serial */
};

/* A bind mount or a volume, mounted over the container's root (main process only). */
struct proto_mount {
	uint8_t kind;       /* enum proto_mount_kind */
	uint8_t readonly;   /* 1: read-only in the container (the host enforces it too) */
	uint8_t populate;   /* 1: when the volume is empty, first copy in what the image has at
			     * dst (docker's behaviour for volumes) */
	char *tag;          /* [A-Za-z0-9_-], 1..PROTO_MAX_TAG bytes */
	char *file;         /* "": the share itself; else the one file of the share to mount
			     * (a single-file bind), a plain name */
	char *dst;          /* absolute path in the container, not "/" */
};
#define PROTO_MAX_ETC_FILE (64u * 1024) /* /etc/hosts or /etc/resolv.conf the host made */

/* What to run; mirrors the OCI runtime spec's `process` plus what the VM needs. */
struct proto_start {
	char **argv;        /* argc >= 1 entries, NULL-terminated */
	uint32_t argc;
	char **env;         /* "K=V" strings, NULL-terminated */
	uint32_t envc;
	char *cwd;          /* absolute path inside the container */
	char *hostname;     /* may be "" */
	char *rootfs;       /* guest block device holding the root filesystem, "/dev/vda" */
	char *user;         /* NULL or "", or docker's USER: name|uid[:group|gid], looked up in the
			     * container's /etc/passwd and /etc/group by the guest; when set it
			     * replaces uid, gid and groups */
	uint32_t uid;
	uint32_t gid;
	uint32_t *groups;   /* additional gids */
	uint32_t ngroups;
	uint8_t terminal;   /* 1: allocate a pty, stdout carries both streams */
	uint8_t open_stdin; /* 0: stdin is /dev/null */
	uint16_t rows, cols;/* initial window size when terminal */
	uint8_t exec;       /* 1: join the running container's namespaces (stream >= 2) */
	uint8_t tool;       /* enum proto_tool: run cove-init's own code instead of argv */
	uint8_t readonly;   /* mount the root filesystem read-only (main process only) */
	uint8_t init;       /* a small reaper runs as the container's PID 1 (main process only) */
	uint8_t unconfined; /* 1: no seccomp filter (0, the default: the default filter) */
	uint64_t caps;      /* capabilities: bit N = capability N (bounding set; also permitted,
			     * effective and inheritable for UID 0) */
	struct proto_rlimit *rlimits;
	uint32_t nrlimits;  /* <= PROTO_MAX_RLIMITS */
	char **tmpfs;       /* "PATH" or "PATH:OPTIONS" tmpfs mounts (main process only) */
	uint32_t ntmpfs;
	/* main process only: */
	uint8_t nnets;      /* NICs to configure from nets (the first has the default route);
			     * 0: the VM has only lo */
	struct proto_net nets[PROTO_MAX_NICS];
	char *hosts;        /* NULL or "": the image's /etc/hosts; else its content */
	char *resolv;       /* the same for /etc/resolv.conf */
	struct proto_mount *mounts; /* mounted in order after the tmpfs ones */
	uint32_t nmounts;   /* <= PROTO_MAX_MOUNTS */
};

struct proto_rlimit {
	uint32_t resource;  /* RLIMIT_* number, < 16 */
	uint64_t soft, hard;/* soft <= hard; UINT64_MAX = unlimited */
};

#define PROTO_MAX_RLIMITS 16

enum proto_tool {
	PROTO_TOOL_NONE = 0,
	PROTO_TOOL_TAR_OUT = 1, /* write a tar of argv[0] (a path in the container) to stdout */
	PROTO_TOOL_TAR_IN = 2,  /* extract the tar on stdin to argv[0] (docker cp rules) */
	PROTO_TOOL_PAUSE = 3,   /* main process only: set the container up, then wait to be
				 * killed (cp on a stopped container runs its tools meanwhile) */
	PROTO_TOOL_MAX
};

/* What the guest reports for PROTO_STATS; all counters since boot. */
struct proto_stats {
	uint64_t mem_total;     /* bytes: MemTotal */
	uint64_t mem_available; /* bytes: MemAvailable */
	uint64_t cpu_ns;        /* busy CPU time of all guest CPUs (not idle, not iowait) */
	uint64_t uptime_ns;     /* CLOCK_BOOTTIME when measured */
	uint64_t disk_read;     /* bytes read from the root disk */
	uint64_t disk_write;    /* bytes written to it */
	uint64_t net_rx;        /* bytes received by every interface but lo */
	uint64_t net_tx;
	uint32_t pids;          /* processes in the guest */
	uint32_t ncpus;
};

enum {
	PROTO_ATTACH_STDIN = 1, /* the client sends STDIN (and STDIN_EOF) */
};

struct proto_stop {
	uint32_t signal;        /* 1..64: first signal */
	uint32_t timeout_s;     /* then SIGKILL after this many seconds */
};

enum proto_exit_kind {
	PROTO_EXIT_CODE = 0,   /* status = exit code 0..255 */
	PROTO_EXIT_SIGNAL = 1, /* status = signal number */
};

struct proto_exit {
	uint8_t kind;
	uint32_t status;
};

enum proto_error_kind {
	PROTO_ERR_INTERNAL = 0, /* cove-init failed: host exits 125 */
	PROTO_ERR_EXEC = 1,     /* command found but cannot be executed: 126 */
	PROTO_ERR_NOTFOUND = 2, /* command not found: 127 */
};

struct proto_error {
	uint32_t kind;
	char *message;
};

/* Header: encode into exactly PROTO_HDR_SIZE bytes; decode validates type, flags and the
 * per-type payload bound (returns -EPROTO or -EMSGSIZE without touching *ret on failure). */
void proto_hdr_encode(const struct proto_hdr *h, uint8_t out[PROTO_HDR_SIZE]);
int proto_hdr_decode(const uint8_t in[PROTO_HDR_SIZE], struct proto_hdr *ret);

/* Append one whole frame (header + payload) to out. Return 0, -E2BIG, -ENOMEM or -EINVAL
 * (value out of the protocol's bounds). */
int proto_put_data(struct buf *out, uint16_t type, uint32_t stream, const void *data, size_t len);
int proto_put_hello(struct buf *out, const struct proto_hello *m);
int proto_put_start(struct buf *out, uint32_t stream, const struct proto_start *m);
int proto_put_u32(struct buf *out, uint16_t type, uint32_t stream, uint32_t v); /* STARTED, SIGNAL */
int proto_put_resize(struct buf *out, uint32_t stream, uint16_t rows, uint16_t cols);
int proto_put_exit(struct buf *out, uint32_t stream, const struct proto_exit *m);
int proto_put_error(struct buf *out, uint32_t stream, uint32_t kind, const char *message);
/* Empty payload: STDIN_EOF, STATS (a request), SHUTDOWN. */
int proto_put_empty(struct buf *out, uint16_t type, uint32_t stream);
int proto_put_stats(struct buf *out, const struct proto_stats *m);
int proto_put_resume(struct buf *out, const struct proto_resume *m);
int proto_put_attach(struct buf *out, uint32_t flags);
int proto_put_stop(struct buf *out, const struct proto_stop *m);

/* Payload decoders: p/len is exactly the payload of a frame whose header decoded. They
 * allocate what they return (free with the matching *_done, which is also safe on a
 * zeroed struct) and return 0, -EPROTO (malformed) or -ENOMEM. */
int proto_get_hello(const uint8_t *p, size_t len, struct proto_hello *ret);
int proto_get_start(const uint8_t *p, size_t len, struct proto_start *ret);
int proto_get_u32(const uint8_t *p, size_t len, uint32_t *ret); /* STARTED, SIGNAL, ATTACH;
								  * caller checks SIGNAL is 1..64 */
int proto_get_resize(const uint8_t *p, size_t len, uint16_t *ret_rows, uint16_t *ret_cols);
int proto_get_exit(const uint8_t *p, size_t len, struct proto_exit *ret);
int proto_get_error(const uint8_t *p, size_t len, struct proto_error *ret);
int proto_get_stats(const uint8_t *p, size_t len, struct proto_stats *ret);
int proto_get_resume(const uint8_t *p, size_t len, struct proto_resume *ret);
/* The MAC of a template's NIC i (i < PROTO_MAX_NICS): locally administered, never a
 * container's (cove gives those from another prefix). */
void proto_template_mac(unsigned i, uint8_t mac[6]);
int proto_get_stop(const uint8_t *p, size_t len, struct proto_stop *ret);
void proto_hello_done(struct proto_hello *m);
void proto_start_done(struct proto_start *m);
void proto_error_done(struct proto_error *m);

/*
 * Incremental reader: feed it whatever arrived; it yields whole frames.
 * proto_reader_next() returns 1 and fills *hdr / *payload (valid until the next call) when a
 * frame is complete, 0 when more bytes are needed, or a negative error for a bad header
 * (after which the stream is unusable).
 */
struct proto_reader {
	struct buf in;
	size_t consumed;
};
void proto_reader_init(struct proto_reader *r);
int proto_reader_feed(struct proto_reader *r, const void *data, size_t len);
int proto_reader_next(struct proto_reader *r, struct proto_hdr *hdr, const uint8_t **payload);
/* How many bytes proto_reader_feed() accepts now (it fails with -E2BIG beyond that): read at
 * most this much from the fd. Never 0 while next() returns 0, so a reader cannot deadlock. */
size_t proto_reader_room(const struct proto_reader *r);
/*
 * One read(2) of fd straight into the reader (at most 64 KiB, never more than it takes): the
 * way every peer reads frames. Returns the bytes read (> 0), 0 at end of file, -EAGAIN when
 * there is nothing now (EAGAIN, EINTR), or another -errno. Then call proto_reader_next().
 */
ssize_t proto_reader_read(struct proto_reader *r, int fd);
void proto_reader_done(struct proto_reader *r);
const char *proto_type_name(uint16_t type);
