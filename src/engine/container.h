/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A container on disk, under STATE/containers/ID:
 *
 *   config.json    what it runs (written once by create; see docs/layout.md)
 *   state.json     created | running | exited, exit code, times, error (atomic rename)
 *   lock           flock()ed exclusively by whoever owns the container now: its supervisor for
 *                  as long as it runs, or a command changing it (start, rm). A free lock means
 *                  nothing runs, whatever state.json says.
 *   disk.qcow2     the writable layer over the image snapshot (disk.ext4 for --rootfs)
 *   container.log  the main process's output, as records (see log.c)
 *   boot.log, qemu.log  the guest console and QEMU's stderr of the last boot
 *   name, image, autoremove   small files other commands read
 *
 * Names are STATE/names/NAME -> ID symlinks, created atomically so two containers can never
 * share a name. The supervisor's control socket is RUN/ID.sock.
 */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include <jansson.h>

#include "engine.h"
#include "spec.h"

struct container {
	char id[65];
	char short_id[13];
	char name[65];
	char dir[PATH_MAX];
	char disk[PATH_MAX + 32];
	char disk_format[8];
	char boot_log[PATH_MAX + 32];
	char qemu_log[PATH_MAX + 32];
	char log[PATH_MAX + 32];
	char sock[PATH_MAX + 80];
	char name_link[PATH_MAX + 80];
	int lock_fd;
	bool rm;
	bool created; /* made by this process: container_abandon() removes it */
};

enum container_status_kind { CONTAINER_CREATED, CONTAINER_RUNNING, CONTAINER_EXITED };

/* a NIC beyond the first, while running */
struct container_nic {
	char network[64], ip[16], mac[18];
	int prefix;
};

struct container_status {
	enum container_status_kind status;
	int exit_code;        /* exited: the main process's code, 128+N for signal N */
	pid_t pid;            /* running: the supervisor */
	char started_at[40];  /* RFC 3339, "" if never */
	char finished_at[40];
	char error[512];      /* why it ended abnormally, "" if it did not */
	char accel[8];        /* what its VM runs on: "kvm", "tcg"; "" before it was chosen */
	char boot[200];       /* how its VM started: "restored" from a template, "cold", or
			       * "cold: " and why no template served */
	/* running: its place on a network ("" with none) */
	char network[64], ip[16], gateway[16], mac[18];
	int prefix;
	char ports[2048];     /* running: "0.0.0.0:8080->80/tcp, ..." as docker's PORTS */
	struct container_nic more[3]; /* running: its other networks (PROTO_MAX_NICS - 1) */
	size_t nmore;
};

bool container_valid_name(const char *name);
/* The archive of the offline image ref names (busybox), or -ENOENT. */
int container_offline_image(const struct cove_paths *p, const char *ref, char *buf, size_t size);
/* Make a new container directory (locked by this process). */
int container_create(const struct cove_paths *p, const char *name, bool rm, struct container *ret,
		     struct cove_error *err);
/* A copy-on-write qcow2 disk over a read-only base image; snapshot (may be "") names the
 * store snapshot it is, recorded for `cove image rm`. */
int container_disk_from_image(struct container *c, const char *image, const char *snapshot,
			      struct cove_error *err);
/* A fresh ext4 disk written from a host directory. */
int container_disk_from_dir(struct container *c, const char *dir, struct cove_error *err);
/* Remove a container this process created but could not finish setting up. */
void container_abandon(struct container *c);

/* Find a container by name, full ID or unique ID prefix (not locked). */
int container_find(const struct cove_paths *p, const char *ref, struct container *ret,
		   struct cove_error *err);
/* Every container's ID, oldest first; free with strv_free-like loop + free. */
int container_list(const struct cove_paths *p, char ***ret_ids, size_t *ret_n,
		   struct cove_error *err);
void container_list_free(char **ids, size_t n);

/* config.json, the container's spec (spec.h): written once, atomically; loaded into ret
 * (spec_done() it). */
int container_save_spec(struct container *c, const struct container_spec *s,
			struct cove_error *err);
int container_load_spec(const struct container *c, struct container_spec *ret,
			struct cove_error *err);
/* state.json as it is now; a "running" container whose lock is free is reported as exited. */
int container_get_status(const struct container *c, struct container_status *ret);
int container_save_status(const struct container *c, const struct container_status *s);
const char *container_status_name(enum container_status_kind k);

/*
 * Take the container's lock: with wait_ms 0, fail at once (-EBUSY) if something owns it; else
 * wait up to wait_ms. The fd is c->lock_fd (close-on-exec).
 */
int container_lock(struct container *c, int wait_ms);
void container_unlock(struct container *c);
/* Whether the container of that ID runs: its lock file is there and held. */
bool container_id_running(const struct cove_paths *p, const char *id);
/* Remove the container's name, directory and socket (the caller holds the lock). */
void container_remove(struct container *c);
/* The names of the containers whose spec uses(spec, arg) says yes, ", "-separated into buf ("" for none): who is in the way of removing a network or
 * a volume. */
void container_users(const struct cove_paths *p,
		     bool (*uses)(const struct container_spec *s, const void *arg), const void *arg,
		     char *buf, size_t size);
/* Remove leftovers of --rm containers whose supervisor died, of creates and rms that died
 * half-way (a directory without config.json, its lock free), and names of no container. */
void container_gc(const struct cove_paths *p);

/* Wait until nothing holds c's lock (its supervisor has exited). */
void container_wait_stopped(const struct container *c);
/*
 * Start c (whose lock this process holds; a supervisor takes it over). With attach, relay its
 * stdio until it exits and return its exit status; without, return 0 once it runs. On failure
 * returns -(exit status) with err set. notice (may be NULL) gets the supervisor's notices.
 */
int container_start_attached(const struct cove_paths *paths, struct container *c,
			     const struct container_spec *spec,
			     bool attach, bool interactive, bool tty, void (*notice)(const char *line),
			     struct cove_error *err);
/* Run m in running c as an exec session (START on a new connection), relaying stdio per so. */
int container_exec(const struct container *c, const struct proto_start *m,
		   const struct session_opts *so, struct session_result *res,
		   struct cove_error *err);
/*
 * cp on a stopped container (as docker allows): boot it with a main process that only waits
 * (cove-init's PAUSE), leaving its state, log and exit status alone, for as long as the copy
 * takes. *ret_fd is then that boot's connection; -1 when the container was running anyway.
 * container_end_boot_for_copy() ends it.
 */
int container_boot_for_copy(const struct cove_paths *p, struct container *c,
			    const struct container_spec *spec,
			    void (*notice)(const char *line), int *ret_fd, struct cove_error *err);
void container_end_boot_for_copy(const struct container *c, int fd);

/* Now, as RFC 3339 with nanoseconds in UTC. */
void container_timestamp(char *buf, size_t size);
/* Parse such a timestamp back (seconds since the epoch), or -1. */
double container_parse_time(const char *s);
