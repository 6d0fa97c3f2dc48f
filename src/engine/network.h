/* SPDX-License-Identifier: Apache-2.0 */
/* A running container's place on a network (see network.c). */
#pragma once

#include "engine.h"

struct net_def {
	char name[64];
	char bridge[16];
	uint32_t subnet, gateway; /* host byte order */
	unsigned prefix;
	bool forwarding_ours;     /* cove turned IPv4 forwarding on */
};

struct net_attachment {
	bool attached;
	struct net_def def;
	char tap[16];
	int tap_fd;               /* QEMU's NIC backend; the tap goes when the last holder does */
	struct proto_net net;     /* for START */
	char *hosts, *resolv;     /* the container's /etc/hosts and /etc/resolv.conf */
};

/* "cove" as root, "none" otherwise: what --network means when it is not given. */
const char *net_default_name(void);
/* 0 for a network --network may name (none, cove and docker's names for it: bridge, default),
 * else one line saying so. */
int net_check_name(const char *name, struct cove_error *err);
/* Lease an address and make the tap for container id on network (NULL: the default). With
 * "none", *ret is left detached and 0 is returned. */
int net_attach(const struct cove_paths *p, const char *id, const char *network,
	       const char *hostname, struct net_attachment *ret, struct cove_error *err);
/* Free the lease, close the tap. Safe on a detached one. */
void net_detach(const struct cove_paths *p, const char *id, struct net_attachment *a);
/* a.b.c.d of a host-byte-order IPv4 address */
void net_ip_text(uint32_t a, char *buf, size_t size);
void net_addr_text(const struct net_attachment *a, char ip[16], char gw[16], char mac[18]);
