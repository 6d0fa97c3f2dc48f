/* SPDX-License-Identifier: Apache-2.0 */
/* Published ports: listeners of the supervisor's and a relay to the container (ports.c). */
#pragma once

#include "engine.h"

struct port_map {
	uint32_t host_ip;   /* host byte order; 0: every address */
	unsigned host_port; /* 0 in a spec: one the kernel chooses */
	unsigned ctr_port;
	unsigned relay_port; /* the relay connects here rather than to ctr_port (0: ctr_port) */
	bool udp;
};

struct port_proxy;

/* -p's forms: CTR, HOST:CTR, IP:HOST:CTR, IP::CTR, each with an optional /tcp or /udp, where
 * each port may be a range (8000-8009:80-89, the same length on both sides; 80-89 alone: ports
 * the kernel picks): at most max maps into ret. why says what is wrong. */
int port_parse_all(const char *arg, struct port_map *ret, size_t max, size_t *ret_n, char *why,
		   size_t size);
/* One port, no range (as a spec keeps them). */
int port_parse(const char *arg, struct port_map *ret, char *why, size_t size);
/* The canonical spec kept with the container ("0.0.0.0:8080:80/tcp"), and what ls, port and
 * inspect show once the host port is known ("0.0.0.0:8080->80/tcp"). */
void port_format(const struct port_map *m, char *buf, size_t size);
void port_describe(const struct port_map *m, char *buf, size_t size);

/* Listen on each spec's host address and port (a port in use fails here, saying so). */
int ports_open(char *const *specs, size_t n, struct port_proxy **ret, struct cove_error *err);
size_t ports_count(const struct port_proxy *p);
const struct port_map *ports_map(const struct port_proxy *p, size_t i);
/* With QEMU's user networking the host cannot reach the guest's address: each port gets a
 * free port on the host's loopback that QEMU forwards to the guest; the -netdev options
 * that ask it to (",hostfwd=...") are appended to buf. ports_start's target is then
 * 127.0.0.1. */
int ports_user_forwards(struct port_proxy *p, char *buf, size_t size, struct cove_error *err);
/* Relay every connection to target (the container's address) from a thread of its own. */
int ports_start(struct port_proxy *p, uint32_t target, struct cove_error *err);
/* Stop relaying, close everything. NULL-safe. */
void ports_close(struct port_proxy *p);
