/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Making a container, as `cove run` and `cove create` ask: find (or pull) the image, make the
 * container's directory, disk and spec, with docker's rules for how the flags override the
 * image's config.
 */
#pragma once

#include "container.h"
#include "images.h"
#include "spec.h"

#include "image/manifest.h"

/* The flags of run/create, checked, and the command after IMAGE. */
struct create_request {
	const char *image;       /* a reference; NULL with rootfs */
	const char *rootfs;      /* --rootfs DIR */
	const char *platform;    /* to pull, may be NULL */
	const char *name;        /* NULL: the short ID */
	const char *hostname;    /* NULL: the short ID */
	const char *workdir;     /* NULL: the image's, else / */
	const char *user;        /* NULL: the image's, else root */
	const char *entrypoint;  /* NULL: the image's; "": none */
	const char *accel;       /* NULL: COVE_ACCEL at each start */
	const char *network;     /* NULL: the default network (cove as root, else user) */
	json_t *more_networks;   /* further --network names (may be NULL) */
	const char *ip;          /* --ip (may be NULL) */
	const char *mac;         /* --mac-address (may be NULL) */
	json_t *dns, *dns_search, *dns_options, *add_hosts, *aliases; /* string arrays (may be NULL) */
	char **env;              /* -e and --env-file, "K=V" */
	size_t nenv;
	char **args;             /* after IMAGE: replaces the image's Cmd */
	size_t nargs;
	json_t *labels;          /* --label, an object (may be NULL) */
	json_t *tmpfs;           /* --tmpfs strings (may be NULL) */
	json_t *mounts;          /* -v and --mount, volume.h mount_format strings (may be NULL) */
	json_t *volumes_from;    /* --volumes-from CTR[:ro|rw] (may be NULL) */
	json_t *cap_add, *cap_drop; /* capability names (may be NULL) */
	json_t *ports;           /* -p, canonical (ports.h port_format); may be NULL */
	bool publish_all;        /* -P: each TCP port the image exposes, on a port the kernel picks */
	struct spec_rlimit rlimits[SPEC_MAX_RLIMITS];
	size_t nrlimits;
	bool rm, interactive, tty, read_only, init, unconfined;
	bool log_unlimited;      /* --log-opt max-size=-1 */
	int stop_signal;         /* 0: the image's, else SIGTERM */
	int stop_timeout;        /* -1: 10 */
	uint64_t log_max_size;   /* 0: the default */
	unsigned log_max_files;  /* 0: the default */
	unsigned cpus;
	uint64_t memory;
};

/*
 * The spec of a new container (id, name, creation time, the snapshot its disk sits on) from
 * the request over the image's config (cfg may be NULL: --rootfs): the image's environment
 * under a default PATH, then HOSTNAME (and TERM with a terminal), then -e; --entrypoint replaces
 * the image's and drops its Cmd, arguments replace Cmd; the image's WorkingDir, User,
 * StopSignal and labels apply unless given. Fails (with err) when there is no command at all.
 */
int spec_from_request(const struct create_request *req, const struct image_config *cfg,
		      const struct container *c, const char *created, const char *snapshot,
		      struct container_spec *ret, struct cove_error *err);

/*
 * Make the container: find the image (in the store, the offline busybox, or pulled, telling
 * progress), then its directory, disk and config.json. It is returned locked by this process,
 * with its spec; on failure nothing of it is left.
 */
int container_make(const struct cove_paths *p, const struct create_request *req,
		   pull_progress_fn progress, void *userdata, struct container *ret_c,
		   struct container_spec *ret_spec, struct cove_error *err);
