/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A container's spec: what it runs and how its VM is made, typed, loaded and saved here only.
 * On disk (STATE/containers/ID/config.json) it is an OCI runtime-spec config.json: process
 * (args, env, cwd, terminal, user, capabilities, rlimits, noNewPrivileges), root (readonly),
 * hostname, mounts (the --tmpfs ones), linux (namespaces, resources.memory.limit), and what OCI
 * has no field for in annotations io.cove.* (see docs/layout.md). A runc- or podman-made
 * config.json loads too, with what cove supports of it; a config.json of the layout before
 * this one (cove 0.1's own keys) is read as well, so older containers keep working.
 * START, the message that runs the container's main process in the guest, is made from it.
 */
#pragma once

#include <jansson.h>

#include "engine.h"

#define SPEC_MAX_RLIMITS 16

struct spec_rlimit {
	int resource;          /* RLIMIT_* */
	uint64_t soft, hard;   /* UINT64_MAX: unlimited */
};

struct container_spec {
	/* process */
	char **args;           /* NULL-terminated; NULL: the guest's shell */
	size_t nargs;
	char **env;            /* "K=V", NULL-terminated */
	size_t nenv;
	char *cwd;             /* absolute */
	char *user;            /* docker's USER, resolved in the guest; "" for uid/gid */
	uint32_t uid, gid;     /* when user is "" */
	bool terminal, open_stdin;
	uint64_t caps;         /* the capability set (proto/caps.h bits) */
	struct spec_rlimit rlimits[SPEC_MAX_RLIMITS];
	size_t nrlimits;
	/* filesystem and security */
	bool readonly;         /* the root filesystem */
	char *hostname;
	char **tmpfs;          /* "PATH[:OPTIONS]" as --tmpfs takes them, NULL-terminated */
	size_t ntmpfs;
	char **mounts;         /* -v, --mount: volume.h mount_format's JSON objects */
	size_t nmounts;
	bool init;             /* a small init as PID 1 */
	bool unconfined;       /* no seccomp filter */
	/* cove's own (annotations io.cove.*) */
	char *id, *name, *created; /* created: RFC 3339 */
	char *image;           /* the reference as given ("" with --rootfs) */
	char *snapshot;        /* the store snapshot the disk sits on */
	char *rootfs;          /* --rootfs DIR ("" for an image) */
	unsigned cpus;
	uint64_t memory;       /* bytes of guest RAM */
	bool autoremove;
	char *accel;           /* --accel as given; NULL: COVE_ACCEL, else auto */
	char *network;         /* --network as given; NULL: the default (cove as root, else user) */
	char **more_networks;  /* further --network (or network connect): a NIC on each */
	size_t nmore_networks;
	char **ports;          /* -p, canonical: "IP:HOSTPORT:CTRPORT/tcp" (HOSTPORT 0: any) */
	size_t nports;
	char *ip;              /* --ip; NULL: a free address of the network's */
	char *mac;             /* --mac-address; NULL: one made from the address */
	char **dns, **dns_search; /* --dns, --dns-search: replace the network's */
	size_t ndns, ndns_search;
	char **dns_options;    /* --dns-option: resolv.conf's options (replace the host's) */
	size_t ndns_options;
	char **add_hosts;      /* --add-host NAME:IP (or NAME:host-gateway) */
	size_t nadd_hosts;
	char **aliases;        /* --network-alias: more names for it on a network with DNS */
	size_t naliases;
	int stop_signal;       /* 1..64 */
	int stop_timeout;      /* seconds */
	uint64_t log_max_size; /* container.log rotates at this size (0: never) */
	unsigned log_max_files;/* and this many files are kept */
	char **entrypoint, **cmd; /* as the image and the flags made them (for inspect) */
	size_t nentrypoint, ncmd;
	char **cap_add, **cap_drop;
	size_t ncap_add, ncap_drop;
	json_t *labels;        /* an object of strings, never NULL once loaded or initialised */
	/* for one boot only, never saved */
	uint8_t tool;          /* enum proto_tool of the main process */
	bool maintenance;      /* a boot for cp: state and log left alone */
};

#define SPEC_MIN_MEMORY (64ULL << 20) /* a VM needs at least this */
#define SPEC_DEFAULT_MEMORY (512ULL << 20)
#define SPEC_MAX_MEMORY (1ULL << 40)
#define SPEC_MAX_CPUS 64
#define SPEC_MAX_STOP_TIMEOUT 86400
#define SPEC_LOG_MAX_SIZE (10ULL << 20)
#define SPEC_LOG_MAX_FILES 3

/* Empty, with cove's defaults (1 CPU, 512 MiB, cwd /, SIGTERM, 10 s, docker's capabilities,
 * a log of at most 3 files of 10 MiB). */
void spec_init(struct container_spec *s);
void spec_done(struct container_spec *s);
/* A deep copy. */
int spec_copy(const struct container_spec *s, struct container_spec *ret);

/* The OCI config.json of s. */
int spec_to_json(const struct container_spec *s, json_t **ret, struct cove_error *err);
/* s from a config.json: cove's (OCI + io.cove.* annotations), another runtime's, or cove's
 * previous layout. Says what is wrong with one it cannot use. */
int spec_from_json(json_t *j, struct container_spec *ret, struct cove_error *err);

/* A NULL-terminated copy of v[n] (strings copied), or NULL when out of memory. */
char **strv_copy(char *const *v, size_t n);
void strv_free(char **v);

/* docker's --ulimit names: "nofile" -> RLIMIT_NOFILE; -1 for none. And back (NULL). */
int spec_rlimit_parse(const char *name);
const char *spec_rlimit_name(int resource);

/* The START that runs s's main process (stream 1). Strings point into s; free the arrays with
 * spec_start_done. */
int spec_start(const struct container_spec *s, struct proto_start *m, struct cove_error *err);
void spec_start_done(struct proto_start *m);
