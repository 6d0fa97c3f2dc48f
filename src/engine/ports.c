/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Published ports (-p): the supervisor listens on each host address and port itself, before
 * the VM boots (a port in use is an error before anything runs), and a thread of its own
 * relays each connection to the container's address (as Apple's container and docker-proxy
 * do), and each UDP client's datagrams through a socket of its own (a flow, forgotten after two
 * silent minutes). This works from the host's loopback and from other machines alike, with no
 * NAT rule.
 */
#define _GNU_SOURCE
#include "ports.h"
#include "network.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_PORTS 64
#define MAX_CONNS 256
#define RELAY_BUF (64u << 10)
#define MAX_FLOWS 256
#define DGRAM_MAX 65536
#define FLOW_IDLE_NS (120ULL * 1000000000) /* a UDP flow silent this long is forgotten */

struct relay {
	int fd[2];          /* the client's, the container's */
	bool connecting;    /* the container side's connect() is in progress */
	bool shut[2];       /* fd[i] will send nothing more (its read side is done) */
	struct buf to[2];   /* to[i]: bytes waiting to be written to fd[i] */
};

/* a UDP client of a published port: datagrams from it go out of fd (connected to the
 * container's port), the container's answers go back to it from the published port */
struct flow {
	int fd;
	size_t map;
	struct sockaddr_in peer;
	uint64_t last;      /* now_ns() of its last datagram */
};

struct port_proxy {
	size_t n;
	struct port_map map[MAX_PORTS];
	int listen_fd[MAX_PORTS];
	uint32_t target;    /* the container's address, host byte order */
	int wake[2];
	pthread_t thread;
	bool running;
	struct relay *conns[MAX_CONNS];
	struct flow *flows[MAX_FLOWS];
};

/* "N" or "N-M" (N <= M), ports 1..65535; "" is 0 when zero_ok */
static int parse_range(const char *s, size_t len, bool zero_ok, unsigned *lo, unsigned *hi)
{
	const char *dash = memchr(s, '-', len);
	char buf[8];
	uint64_t v[2];

	if (zero_ok && (len == 0 || (len == 1 && s[0] == '0'))) {
		*lo = *hi = 0;
		return 0;
	}
	for (int k = 0; k < 2; k++) {
		const char *a = k ? (dash ? dash + 1 : s) : s;
		size_t n = k ? (size_t)(s + len - a) : dash ? (size_t)(dash - s) : len;

		if (n == 0 || n >= sizeof(buf))
			return -EINVAL;
		memcpy(buf, a, n);
		buf[n] = '\0';
		if (parse_u64(buf, 65535, &v[k]) < 0 || v[k] == 0)
			return -EINVAL;
	}
	if (v[0] > v[1])
		return -EINVAL;
	*lo = (unsigned)v[0];
	*hi = (unsigned)v[1];
	return 0;
}

int port_parse_all(const char *arg, struct port_map *ret, size_t max, size_t *ret_n, char *why,
		   size_t size)
{
	const char *proto = strchr(arg, '/'), *end = proto ? proto : arg + strlen(arg);
	const char *c1, *c2 = NULL, *host = NULL, *ctr = arg;
	unsigned hlo = 0, hhi = 0, clo, chi;
	uint32_t ip = 0;
	bool udp = false;

	*ret_n = 0;
	if (proto && strcmp(proto, "/tcp") != 0 && strcmp(proto, "/udp") != 0) {
		str_printf(why, size, "expected /tcp or /udp after the port");
		return -EINVAL;
	}
	udp = proto && strcmp(proto, "/udp") == 0;
	c1 = memchr(arg, ':', (size_t)(end - arg));
	if (c1)
		c2 = memchr(c1 + 1, ':', (size_t)(end - c1 - 1));
	if (c2) { /* IP:HOST:CTR or IP::CTR */
		char ipt[INET_ADDRSTRLEN];
		struct in_addr in;

		if ((size_t)(c1 - arg) >= sizeof(ipt))
			goto bad;
		memcpy(ipt, arg, (size_t)(c1 - arg));
		ipt[c1 - arg] = '\0';
		if (inet_pton(AF_INET, ipt, &in) != 1) {
			str_printf(why, size, "'%s' is not an IPv4 address", ipt);
			return -EINVAL;
		}
		ip = ntohl(in.s_addr);
		host = c1 + 1;
		ctr = c2 + 1;
		if (parse_range(host, (size_t)(c2 - host), true, &hlo, &hhi) < 0)
			goto bad;
	} else if (c1) { /* HOST:CTR */
		host = arg;
		ctr = c1 + 1;
		if (parse_range(host, (size_t)(c1 - host), false, &hlo, &hhi) < 0)
			goto bad;
	}
	if (parse_range(ctr, (size_t)(end - ctr), false, &clo, &chi) < 0)
		goto bad;
	if (hlo && hhi - hlo != chi - clo) {
		str_printf(why, size, "the host range and the container range differ in length");
		return -EINVAL;
	}
	if (chi - clo + 1 > max) {
		str_printf(why, size, "at most %zu ports at once", max);
		return -EINVAL;
	}
	for (unsigned k = 0; k <= chi - clo; k++)
		ret[k] = (struct port_map){ .host_ip = ip, .host_port = hlo ? hlo + k : 0,
					    .ctr_port = clo + k, .udp = udp };
	*ret_n = chi - clo + 1;
	return 0;
bad:
	str_printf(why, size, "expected [IP:]HOSTPORT:CONTAINERPORT[/tcp|/udp] or CONTAINERPORT, "
			      "ports 1 to 65535 or ranges of them (8000-8009)");
	return -EINVAL;
}

int port_parse(const char *arg, struct port_map *ret, char *why, size_t size)
{
	size_t n;

	return port_parse_all(arg, ret, 1, &n, why, size);
}

/* IP:HOSTPORT, sep, CTRPORT/PROTO */
static void port_text(const struct port_map *m, const char *sep, char *buf, size_t size)
{
	char ip[16];

	net_ip_text(m->host_ip, ip, sizeof(ip));
	str_printf(buf, size, "%s:%u%s%u/%s", ip, m->host_port, sep, m->ctr_port,
		   m->udp ? "udp" : "tcp");
}

void port_format(const struct port_map *m, char *buf, size_t size)
{
	port_text(m, ":", buf, size);
}

void port_describe(const struct port_map *m, char *buf, size_t size)
{
	port_text(m, "->", buf, size);
}

/* ---- the listeners ----------------------------------------------------------------------- */

int ports_open(char *const *specs, size_t n, struct port_proxy **ret, struct cove_error *err)
{
	struct port_proxy *p;

	*ret = NULL;
	if (n > MAX_PORTS)
		return cove_error_set(err, E2BIG, "at most %d ports may be published", MAX_PORTS);
	p = calloc(1, sizeof(*p));
	if (!p)
		return cove_error_set(err, ENOMEM, "out of memory");
	p->wake[0] = p->wake[1] = -1;
	for (size_t i = 0; i < n; i++) {
		struct sockaddr_in sa = { .sin_family = AF_INET };
		socklen_t len = sizeof(sa);
		char why[160];
		int fd, one = 1;

		if (port_parse(specs[i], &p->map[i], why, sizeof(why)) < 0) {
			ports_close(p);
			return cove_error_set(err, EINVAL, "invalid published port '%s': %s", specs[i],
					      why);
		}
		fd = socket(AF_INET,
			    (p->map[i].udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC | SOCK_NONBLOCK,
			    0);
		sa.sin_addr.s_addr = htonl(p->map[i].host_ip);
		sa.sin_port = htons((uint16_t)p->map[i].host_port);
		if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
		    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		    (!p->map[i].udp && listen(fd, 128) < 0) ||
		    getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
			int e = errno;
			struct port_map m = p->map[i];

			if (fd >= 0)
				close(fd);
			p->n = i;
			ports_close(p);
			if (e == EADDRINUSE)
				return cove_error_set(err, e,
						      "port %u%s is already in use: publish another "
						      "(-p OTHER:%u%s) or stop what listens there",
						      m.host_port, m.udp ? "/udp" : "", m.ctr_port,
						      m.udp ? "/udp" : "");
			return cove_error_set(err, e, "cannot listen on port %u: %s", m.host_port,
					      strerror(e));
		}
		p->map[i].host_port = ntohs(sa.sin_port); /* the one the kernel chose for 0 */
		p->listen_fd[i] = fd;
		p->n = i + 1;
	}
	*ret = p;
	return 0;
}

size_t ports_count(const struct port_proxy *p)
{
	return p ? p->n : 0;
}

const struct port_map *ports_map(const struct port_proxy *p, size_t i)
{
	return &p->map[i];
}

/* ---- the relay ------------------------------------------------------------------------------ */

static void relay_free(struct relay *r)
{
	for (int i = 0; i < 2; i++) {
		closep(&r->fd[i]);
		buf_done(&r->to[i]);
	}
	free(r);
}

static struct sockaddr_in target_of(const struct port_proxy *p, size_t i)
{
	return (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr.s_addr = htonl(p->target),
				     .sin_port = htons((uint16_t)(p->map[i].relay_port
									  ?: p->map[i].ctr_port)) };
}

static void accept_one(struct port_proxy *p, size_t i)
{
	struct sockaddr_in sa = target_of(p, i);
	int c = accept4(p->listen_fd[i], NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK), u;
	struct relay *r;
	size_t k;

	if (c < 0)
		return;
	for (k = 0; k < MAX_CONNS && p->conns[k]; k++)
		;
	u = k < MAX_CONNS ? socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0) : -1;
	r = u >= 0 ? calloc(1, sizeof(*r)) : NULL;
	if (!r || (connect(u, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS)) {
		close(c);
		if (u >= 0)
			close(u);
		free(r);
		return;
	}
	r->fd[0] = c;
	r->fd[1] = u;
	r->connecting = true;
	r->to[0] = BUF_INIT(RELAY_BUF);
	r->to[1] = BUF_INIT(RELAY_BUF);
	p->conns[k] = r;
}

/* Move what fd[from] has into to[1 - from]; false when the pair is done. */
static bool pump(struct relay *r, int from)
{
	uint8_t tmp[RELAY_BUF];
	struct buf *b = &r->to[1 - from];
	size_t room = b->max - b->len;
	ssize_t n;

	if (room == 0 || r->shut[from])
		return true;
	n = read(r->fd[from], tmp, room < sizeof(tmp) ? room : sizeof(tmp));
	if (n > 0)
		return buf_append(b, tmp, (size_t)n) == 0;
	if (n == 0) {
		r->shut[from] = true;
		if (!b->len)
			shutdown(r->fd[1 - from], SHUT_WR);
		return true;
	}
	return errno == EAGAIN || errno == EINTR;
}

static bool flush_to(struct relay *r, int to)
{
	if (r->to[to].len && buf_write_to(&r->to[to], r->fd[to]) < 0)
		return false;
	if (!r->to[to].len && r->shut[1 - to])
		shutdown(r->fd[to], SHUT_WR);
	return true;
}

static void flow_free(struct port_proxy *p, size_t k)
{
	close(p->flows[k]->fd);
	free(p->flows[k]);
	p->flows[k] = NULL;
}

/* Datagrams that reached published UDP port i: each to the container from its client's flow
 * (a new one for a new client; the oldest goes when the table is full). */
static void udp_in(struct port_proxy *p, size_t i, uint8_t *dgram, size_t size)
{
	for (int burst = 0; burst < 64; burst++) {
		struct sockaddr_in from, to = target_of(p, i);
		socklen_t len = sizeof(from);
		ssize_t n = recvfrom(p->listen_fd[i], dgram, size, 0, (struct sockaddr *)&from, &len);
		size_t k, free_k = MAX_FLOWS, oldest = 0;

		if (n < 0)
			return;
		for (k = 0; k < MAX_FLOWS; k++) {
			struct flow *f = p->flows[k];

			if (!f) {
				if (free_k == MAX_FLOWS)
					free_k = k;
				continue;
			}
			if (f->map == i && f->peer.sin_port == from.sin_port &&
			    f->peer.sin_addr.s_addr == from.sin_addr.s_addr)
				break;
			if (!p->flows[oldest] || f->last < p->flows[oldest]->last)
				oldest = k;
		}
		if (k == MAX_FLOWS) {
			struct flow *f;

			if (free_k == MAX_FLOWS) {
				flow_free(p, oldest);
				free_k = oldest;
			}
			f = calloc(1, sizeof(*f));
			if (!f)
				continue;
			f->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
			if (f->fd < 0 || connect(f->fd, (struct sockaddr *)&to, sizeof(to)) < 0) {
				if (f->fd >= 0)
					close(f->fd);
				free(f);
				continue;
			}
			f->map = i;
			f->peer = from;
			p->flows[k = free_k] = f;
		}
		p->flows[k]->last = now_ns();
		(void)!send(p->flows[k]->fd, dgram, (size_t)n, 0);
	}
}

/* The container's answers on flow k, back to its client from the published port. */
static void udp_out(struct port_proxy *p, size_t k, uint8_t *dgram, size_t size)
{
	struct flow *f = p->flows[k];

	for (int burst = 0; burst < 64; burst++) {
		ssize_t n = recv(f->fd, dgram, size, 0);

		if (n < 0)
			return;
		f->last = now_ns();
		(void)!sendto(p->listen_fd[f->map], dgram, (size_t)n, 0,
			      (struct sockaddr *)&f->peer, sizeof(f->peer));
	}
}

static void *proxy_main(void *arg)
{
	struct port_proxy *p = arg;
	_cleanup_free_ uint8_t *dgram = malloc(DGRAM_MAX);

	if (!dgram)
		return NULL;

	for (;;) {
		struct pollfd fds[1 + MAX_PORTS + 2 * MAX_CONNS + MAX_FLOWS];
		size_t at[MAX_CONNS], fat[MAX_FLOWS], n = 0;
		uint64_t now = now_ns();
		bool any_flow = false;

		for (size_t k = 0; k < MAX_CONNS; k++)
			at[k] = SIZE_MAX; /* no pollfd: a pair accepted during this round */

		fds[n++] = (struct pollfd){ .fd = p->wake[0], .events = POLLIN };
		for (size_t i = 0; i < p->n; i++)
			fds[n++] = (struct pollfd){ .fd = p->listen_fd[i], .events = POLLIN };
		for (size_t k = 0; k < MAX_CONNS; k++) {
			struct relay *r = p->conns[k];

			if (!r)
				continue;
			at[k] = n;
			for (int s = 0; s < 2; s++) {
				short ev = 0;

				if (s == 1 && r->connecting) {
					ev = POLLOUT;
				} else {
					if (!r->shut[s] && r->to[1 - s].len < r->to[1 - s].max)
						ev |= POLLIN;
					if (r->to[s].len)
						ev |= POLLOUT;
				}
				fds[n++] = (struct pollfd){ .fd = r->fd[s], .events = ev };
			}
		}
		for (size_t k = 0; k < MAX_FLOWS; k++) {
			fat[k] = SIZE_MAX;
			if (p->flows[k] && now - p->flows[k]->last > FLOW_IDLE_NS)
				flow_free(p, k);
			if (!p->flows[k])
				continue;
			any_flow = true;
			fat[k] = n;
			fds[n++] = (struct pollfd){ .fd = p->flows[k]->fd, .events = POLLIN };
		}
		if (poll(fds, n, any_flow ? 10000 : -1) < 0 && errno != EINTR)
			break;
		if (fds[0].revents)
			break;
		for (size_t k = 0; k < MAX_FLOWS; k++)
			if (fat[k] != SIZE_MAX && p->flows[k] && fds[fat[k]].revents)
				udp_out(p, k, dgram, DGRAM_MAX);
		for (size_t i = 0; i < p->n; i++) {
			if (!(fds[1 + i].revents & POLLIN))
				continue;
			if (p->map[i].udp)
				udp_in(p, i, dgram, DGRAM_MAX);
			else
				accept_one(p, i);
		}
		for (size_t k = 0; k < MAX_CONNS; k++) {
			struct relay *r = p->conns[k];
			bool alive = true;

			if (!r || at[k] == SIZE_MAX)
				continue;
			if (r->connecting) {
				int e = 0;
				socklen_t len = sizeof(e);

				if (!fds[at[k] + 1].revents)
					continue;
				if (getsockopt(r->fd[1], SOL_SOCKET, SO_ERROR, &e, &len) < 0 || e)
					alive = false;
				r->connecting = false;
			} else {
				for (int s = 0; s < 2 && alive; s++) {
					short re = fds[at[k] + (size_t)s].revents;

					if (re & (POLLIN | POLLHUP | POLLERR))
						alive = pump(r, s);
					if (alive && (re & POLLOUT))
						alive = flush_to(r, s);
				}
			}
			if (alive && r->shut[0] && r->shut[1] && !r->to[0].len && !r->to[1].len)
				alive = false;
			if (!alive) {
				relay_free(r);
				p->conns[k] = NULL;
			}
		}
	}
	return NULL;
}

int ports_user_forwards(struct port_proxy *p, char *buf, size_t size, struct cove_error *err)
{
	for (size_t i = 0; p && i < p->n; i++) {
		struct sockaddr_in sa = { .sin_family = AF_INET,
					  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		socklen_t len = sizeof(sa);
		int fd = socket(AF_INET, (p->map[i].udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC,
				0);
		size_t at = strlen(buf);

		/* a port the kernel has free now; QEMU binds it a moment later */
		if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		    getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
			int e = errno;

			if (fd >= 0)
				close(fd);
			return cove_error_set(err, e, "cannot find a free port on 127.0.0.1: %s",
					      strerror(e));
		}
		close(fd);
		p->map[i].relay_port = ntohs(sa.sin_port);
		if (str_printf(buf + at, size - at, ",hostfwd=%s:127.0.0.1:%u-:%u",
			       p->map[i].udp ? "udp" : "tcp", p->map[i].relay_port,
			       p->map[i].ctr_port) < 0)
			return cove_error_set(err, E2BIG, "too many published ports");
	}
	return 0;
}

int ports_start(struct port_proxy *p, uint32_t target, struct cove_error *err)
{
	sigset_t all, old;
	int r;

	if (!p || !p->n)
		return 0;
	p->target = target;
	if (pipe2(p->wake, O_CLOEXEC) < 0)
		return cove_error_set(err, errno, "cannot make a pipe: %s", strerror(errno));
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = -pthread_create(&p->thread, NULL, proxy_main, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0)
		return cove_error_set(err, -r, "cannot start the port relay: %s", strerror(-r));
	p->running = true;
	return 0;
}

void ports_close(struct port_proxy *p)
{
	if (!p)
		return;
	if (p->running) {
		(void)!write(p->wake[1], "x", 1);
		pthread_join(p->thread, NULL);
	}
	for (size_t i = 0; i < p->n; i++)
		close(p->listen_fd[i]);
	for (size_t k = 0; k < MAX_CONNS; k++)
		if (p->conns[k])
			relay_free(p->conns[k]);
	for (size_t k = 0; k < MAX_FLOWS; k++)
		if (p->flows[k])
			flow_free(p, k);
	closep(&p->wake[0]);
	closep(&p->wake[1]);
	free(p);
}
