/* SPDX-License-Identifier: Apache-2.0 */
/* Volumes and bind mounts (see volume.c). */
#pragma once

#include <jansson.h>
#include <limits.h>

#include "engine.h"

struct container_spec;

#define VOLUME_NAME_MAX 128
#define VOLUME_DEFAULT_SIZE (32ULL << 30) /* a block volume's sparse image */
#define VOLUME_MIN_SIZE (16ULL << 20)
#define VOLUME_MAX_SIZE (16ULL << 40)
#define MOUNTS_MAX 16 /* binds and volumes of one container (PROTO_MAX_MOUNTS) */

enum mount_type { MOUNT_BIND = 1, MOUNT_VOLUME = 2 };

/* One -v or --mount of a container (a tmpfs one is a --tmpfs). */
struct mount_spec {
	enum mount_type type;
	char source[PATH_MAX]; /* bind: an absolute host path; volume: its name ("" anonymous) */
	char target[PATH_MAX]; /* absolute, in the container */
	bool readonly;
	bool nocopy;           /* volume: never filled from the image */
	bool create_source;    /* bind from -v: a missing host directory is made, as docker does */
};

struct volume {
	char name[VOLUME_NAME_MAX + 1];
	char dir[PATH_MAX];   /* STATE/volumes/NAME */
	char data[PATH_MAX];  /* its disk image (block) or directory (dir) */
	char created[40];
	bool block;           /* an ext4 image on a disk of its own; else a shared directory */
	bool anonymous;       /* made for one container's image VOLUME or -v /path */
	uint64_t size;        /* block: the image's size */
	json_t *labels;       /* an object, never NULL once loaded */
};

/* What `cove volume create` asks for. */
struct volume_create_request {
	const char *name;     /* NULL: an anonymous volume (64 hex digits) */
	const char *type;     /* "block" (NULL) or "dir" */
	uint64_t size;        /* 0: VOLUME_DEFAULT_SIZE */
	json_t *labels;       /* may be NULL */
	bool anonymous;
};

/* -v ARG and --mount ARG, parsed and checked (one line in why when it is wrong). --mount of type
 * tmpfs gives *ret_tmpfs, a --tmpfs value (allocated), instead of *ret. */
int mount_parse_v(const char *arg, struct mount_spec *ret, char *why, size_t size);
int mount_parse_mount(const char *arg, struct mount_spec *ret, char **ret_tmpfs, char *why,
		      size_t size);
/* As a container's spec keeps it (a JSON object, allocated), and back. */
char *mount_format(const struct mount_spec *m);
int mount_parse_saved(const char *s, struct mount_spec *ret);

int volume_check_name(const char *name, char *why, size_t size);
/* Make a volume; with an existing name it is that volume (as docker's create is), unless its
 * kind differs. */
int volume_create(const struct cove_paths *p, const struct volume_create_request *q,
		  struct volume *ret, struct cove_error *err);
int volume_get(const struct cove_paths *p, const char *name, struct volume *ret,
	       struct cove_error *err);
void volume_done(struct volume *v);
/* Every volume, sorted by name, allocated. */
int volume_list(const struct cove_paths *p, struct volume **ret, size_t *ret_n,
		struct cove_error *err);
void volume_list_free(struct volume *v, size_t n);
/* Remove it and its data (-ENOENT when there is none); refused while a container names it. */
int volume_remove(const struct cove_paths *p, const char *name, struct cove_error *err);
/* docker's inspect entry of a volume, and a container's Mounts as docker's inspect shows
 * them. */
json_t *volume_json(const struct volume *v);
json_t *mounts_json(const struct cove_paths *p, const struct container_spec *s);

/*
 * At a container's create: give each anonymous volume of s (an image VOLUME, -v /path) a name,
 * make the named volumes that do not exist yet, make the host directories of -v binds, and check
 * everything a start will need: 0 or -errno with err.
 */
int volumes_for_create(const struct cove_paths *p, struct container_spec *s,
		       struct cove_error *err);
/* Remove the anonymous volumes of s no other container names (rm -v, --rm), once s's
 * container is gone. */
void volumes_release(const struct cove_paths *p, const struct container_spec *s);

/* A container's mounts as its VM gets them, made by volumes_attach for one boot. */
struct volume_attachment {
	struct vm_share shares[MOUNTS_MAX];
	size_t nshares;
	struct vm_disk disks[MOUNTS_MAX];
	size_t ndisks;
	int locks[MOUNTS_MAX];  /* held while the VM runs */
	size_t nlocks;
	struct proto_mount mounts[MOUNTS_MAX]; /* START's; strings point into this */
	size_t nmounts;
	char tags[MOUNTS_MAX][16];
	char files[MOUNTS_MAX][256];
	char *targets[MOUNTS_MAX];
	char scratch[PATH_MAX]; /* without root: where single files are linked to be shared */
};
/* Lock, check (e2fsck -p) and open what s mounts, for container id. Fails with one line. */
int volumes_attach(const struct cove_paths *p, const struct container_spec *s, const char *id,
		   const char *name, struct volume_attachment *ret, struct cove_error *err);
/* Let go of the locks, descriptors and links (safe on one that failed or was never made). */
void volumes_detach(struct volume_attachment *a);
