/* SPDX-License-Identifier: Apache-2.0 */
/* Published ports: listeners of the supervisor's and a relay to the container (ports.c). */
#pragma once

#include "engine.h"

struct port_map {
	uint32_t host_ip;   /* host byte order; 0: every address */
	unsigned host_port; /* 0 in a spec: one the kernel chooses */
	unsigned ctr_port;
};

struct port_proxy;

/* -p's forms: CTR, HOST:CTR, IP:HOST:CTR, IP::CTR, each with an optional /tcp. why says what
 * is wrong. */
int port_parse(const char *arg, struct port_map *ret, char *why, size_t size);
/* The canonical spec kept with the container ("0.0.0.0:8080:80/tcp"), and what ls, port and
 * inspect show once the host port is known ("0.0.0.0:8080->80/tcp"). */
void port_format(const struct port_map *m, char *buf, size_t size);
void port_describe(const struct port_map *m, char *buf, size_t size);

/* Listen on each spec's host address and port (a port in use fails here, saying so). */
int ports_open(char *const *specs, size_t n, struct port_proxy **ret, struct cove_error *err);
size_t ports_count(const struct port_proxy *p);
const struct port_map *ports_map(const struct port_proxy *p, size_t i);
/* Relay every connection to target (the container's address) from a thread of its own. */
int ports_start(struct port_proxy *p, uint32_t target, struct cove_error *err);
/* Stop relaying, close everything. NULL-safe. */
void ports_close(struct port_proxy *p);
