/* SPDX-License-Identifier: Apache-2.0 */
/* Networks and a running container's place on one (see network.c). */
#pragma once

#include <jansson.h>

#include "engine.h"

struct container_spec;

#define NET_NAME_MAX 63

struct net_def {
	char name[NET_NAME_MAX + 1];
	char id[65];
	char bridge[16];
	char created[40];
	uint32_t subnet, gateway; /* host byte order */
	unsigned prefix;
	bool internal;            /* no way out: no NAT, nothing forwarded */
	bool dns;                 /* a DNS server on the gateway knows the containers' names */
	bool forwarding_ours;     /* (cove 0.2's cove.json) cove turned IPv4 forwarding on */
};

struct net_attachment {
	bool attached;
	bool user_mode;           /* QEMU's user networking (slirp): no tap, no lease */
	struct net_def def;
	char tap[16];
	int tap_fd;               /* QEMU's NIC backend; the tap goes when the last holder does */
	struct proto_net net;     /* for START */
	char *hosts, *resolv;     /* the container's /etc/hosts and /etc/resolv.conf */
};

/* What `cove network create` asks for. */
struct net_create_request {
	const char *name;
	const char *subnet;       /* CIDR; NULL: a free /24 */
	const char *gateway;      /* NULL: the subnet's first address */
	bool internal;
	json_t *labels;           /* an object of strings; may be NULL */
};

/* "cove" as root, "user" (QEMU's user networking) otherwise: what --network means when it is
 * not given. */
const char *net_default_name(void);
/* The network a --network value names: "cove" for bridge/default, "user" for slirp. */
const char *net_canonical(const char *name);
/* 0 when --network may name it now (none, user, cove, or a network that exists), else one line
 * saying why. */
int net_check_name(const struct cove_paths *p, const char *name, struct cove_error *err);
/* The network flags of a spec, checked before a container is made: the network exists, --ip is
 * inside its subnet, --mac-address, --dns and --add-host are well formed. */
int net_check_spec(const struct cove_paths *p, const struct container_spec *s,
		   struct cove_error *err);
/* One value of --ip, --mac-address, --dns or --add-host (NAME:IP or NAME:host-gateway): 0 or
 * -EINVAL with why. */
int net_check_ip(const char *s, char *why, size_t size);
int net_parse_mac(const char *s, uint8_t mac[6], char *why, size_t size);
int net_check_add_host(const char *s, char *why, size_t size);

/* The same checks on a spec's fields alone (no network looked up), for every loaded spec. */
int net_check_fields(const struct container_spec *s, char *why, size_t size);

/* Lease an address and make a tap (or user networking) for each network of the container spec
 * s describes (--network, more_networks; --ip and --mac-address for the first, which also has
 * the default route and the /etc files), into ret[0..*ret_n). With "none", *ret_n is 0. On
 * failure nothing is left attached. */
int net_attach(const struct cove_paths *p, const struct container_spec *s,
	       struct net_attachment ret[PROTO_MAX_NICS], size_t *ret_n, struct cove_error *err);
/* Free the lease, close the tap. Safe on a detached one. */
void net_detach(const struct cove_paths *p, const char *id, struct net_attachment *a);

/* cove network create/rm/ls/inspect/prune (root only where they change anything). */
int net_create(const struct cove_paths *p, const struct net_create_request *q,
	       struct net_def *ret, struct cove_error *err);
int net_remove(const struct cove_paths *p, const char *name, struct cove_error *err);
/* Every network (the default one first), allocated; NULL and 0 when there is none. */
int net_list(const struct cove_paths *p, struct net_def **ret, size_t *ret_n,
	     struct cove_error *err);
/* docker's `network inspect` object for one network. */
int net_inspect(const struct cove_paths *p, const char *name, json_t **ret,
		struct cove_error *err);
/* cove network connect/disconnect: add network to a stopped container's networks, or take it
 * away (its first network taken away: the next is first, or none). */
int net_connect(const struct cove_paths *p, const char *ref, const char *network, bool connect,
		struct cove_error *err);
/* Drop the leases of containers that are not running (their supervisor died), and with them
 * their DNS entries, and a network's DNS server once it has no container. */
void net_gc(const struct cove_paths *p);

/* a.b.c.d of a host-byte-order IPv4 address */
void net_ip_text(uint32_t a, char *buf, size_t size);
void net_addr_text(const struct net_attachment *a, char ip[16], char gw[16], char mac[18]);
