/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Published ports (-p): the supervisor listens on each host address and port itself, before
 * the VM boots (a port in use is an error before anything runs), and a thread of its own
 * relays each connection to the container's address (as Apple's container and docker-proxy
 * do). This works from the host's loopback and from other machines alike, with no NAT rule.
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

struct relay {
	int fd[2];          /* the client's, the container's */
	bool connecting;    /* the container side's connect() is in progress */
	bool shut[2];       /* fd[i] will send nothing more (its read side is done) */
	struct buf to[2];   /* to[i]: bytes waiting to be written to fd[i] */
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
};

static int parse_port(const char *s, size_t len, bool zero_ok, unsigned *ret)
{
	char buf[8];
	uint64_t v;

	if (len == 0 && zero_ok) {
		*ret = 0;
		return 0;
	}
	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (parse_u64(buf, 65535, &v) < 0 || (v == 0 && !zero_ok))
		return -EINVAL;
	*ret = (unsigned)v;
	return 0;
}

int port_parse(const char *arg, struct port_map *ret, char *why, size_t size)
{
	const char *proto = strchr(arg, '/'), *end = proto ? proto : arg + strlen(arg);
	const char *c1, *c2 = NULL;
	struct in_addr in;

	memset(ret, 0, sizeof(*ret));
	if (proto && strcmp(proto, "/tcp") != 0) {
		str_printf(why, size, strcmp(proto, "/udp") == 0
					      ? "UDP ports are not published yet: use /tcp"
					      : "expected /tcp after the port");
		return -EINVAL;
	}
	c1 = memchr(arg, ':', (size_t)(end - arg));
	if (c1)
		c2 = memchr(c1 + 1, ':', (size_t)(end - c1 - 1));
	if (c2) { /* IP:HOST:CTR or IP::CTR */
		char ip[INET_ADDRSTRLEN];

		if ((size_t)(c1 - arg) >= sizeof(ip))
			goto bad;
		memcpy(ip, arg, (size_t)(c1 - arg));
		ip[c1 - arg] = '\0';
		if (inet_pton(AF_INET, ip, &in) != 1) {
			str_printf(why, size, "'%s' is not an IPv4 address", ip);
			return -EINVAL;
		}
		ret->host_ip = ntohl(in.s_addr);
		if (parse_port(c1 + 1, (size_t)(c2 - c1 - 1), true, &ret->host_port) < 0 ||
		    parse_port(c2 + 1, (size_t)(end - c2 - 1), false, &ret->ctr_port) < 0)
			goto bad;
	} else if (c1) { /* HOST:CTR */
		if (parse_port(arg, (size_t)(c1 - arg), false, &ret->host_port) < 0 ||
		    parse_port(c1 + 1, (size_t)(end - c1 - 1), false, &ret->ctr_port) < 0)
			goto bad;
	} else if (parse_port(arg, (size_t)(end - arg), false, &ret->ctr_port) < 0) { /* CTR */
		goto bad;
	}
	return 0;
bad:
	str_printf(why, size, "expected [IP:]HOSTPORT:CONTAINERPORT[/tcp] or CONTAINERPORT, ports "
			      "1 to 65535 (ranges are not supported yet)");
	return -EINVAL;
}

void port_format(const struct port_map *m, char *buf, size_t size)
{
	char ip[16];

	net_ip_text(m->host_ip, ip, sizeof(ip));
	str_printf(buf, size, "%s:%u:%u/tcp", ip, m->host_port, m->ctr_port);
}

void port_describe(const struct port_map *m, char *buf, size_t size)
{
	char ip[16];

	net_ip_text(m->host_ip, ip, sizeof(ip));
	str_printf(buf, size, "%s:%u->%u/tcp", ip, m->host_port, m->ctr_port);
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
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		sa.sin_addr.s_addr = htonl(p->map[i].host_ip);
		sa.sin_port = htons((uint16_t)p->map[i].host_port);
		if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
		    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 128) < 0 ||
		    getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
			int e = errno;
			struct port_map m = p->map[i];

			if (fd >= 0)
				close(fd);
			p->n = i;
			ports_close(p);
			if (e == EADDRINUSE)
				return cove_error_set(err, e,
						      "port %u is already in use: publish another "
						      "(-p OTHER:%u) or stop what listens there",
						      m.host_port, m.ctr_port);
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

static void accept_one(struct port_proxy *p, size_t i)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(p->target),
				  .sin_port = htons((uint16_t)p->map[i].ctr_port) };
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

static void *proxy_main(void *arg)
{
	struct port_proxy *p = arg;

	for (;;) {
		struct pollfd fds[1 + MAX_PORTS + 2 * MAX_CONNS];
		size_t at[MAX_CONNS], n = 0;

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
		if (poll(fds, n, -1) < 0 && errno != EINTR)
			break;
		if (fds[0].revents)
			break;
		for (size_t i = 0; i < p->n; i++)
			if (fds[1 + i].revents & POLLIN)
				accept_one(p, i);
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
	closep(&p->wake[0]);
	closep(&p->wake[1]);
	free(p);
}
