/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The container's network, set up by cove-init from START before the main process starts:
 * eth0 (the VM's one virtio-net NIC) gets the address, prefix, MTU and default route the host
 * chose (no DHCP on the boot path), and the /etc files the host made are written under
 * /run/cove for the container's mount namespace to bind (see container.c).
 */
#define _GNU_SOURCE
#include "guest.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <net/route.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static void sin_of(struct sockaddr *sa, uint32_t addr)
{
	struct sockaddr_in *in = (struct sockaddr_in *)sa;

	memset(in, 0, sizeof(*in));
	in->sin_family = AF_INET;
	in->sin_addr.s_addr = htonl(addr);
}

/* The interface whose MAC is mac: the NIC QEMU made for this container. */
static int find_nic(const uint8_t mac[6], char name[IFNAMSIZ])
{
	_cleanup_(closedirp) DIR *d = opendir("/sys/class/net");
	struct dirent *de;
	char want[18];

	str_printf(want, sizeof(want), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2],
		   mac[3], mac[4], mac[5]);
	while (d && (de = readdir(d))) {
		char path[300], *addr = NULL;
		bool match;

		if (de->d_name[0] == '.' || strlen(de->d_name) >= IFNAMSIZ)
			continue;
		str_printf(path, sizeof(path), "/sys/class/net/%s/address", de->d_name);
		if (read_file(path, 64, &addr, NULL) < 0)
			continue;
		match = strncmp(addr, want, 17) == 0;
		free(addr);
		if (match) {
			str_copy(name, IFNAMSIZ, de->d_name);
			return 0;
		}
	}
	return -ENODEV;
}

int net_take_mac(const uint8_t from[6], const uint8_t to[6])
{
	_cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr = { 0 };
	char name[IFNAMSIZ];
	int r;

	if (fd < 0)
		return -errno;
	r = find_nic(from, name);
	if (r < 0)
		return r;
	str_copy(ifr.ifr_name, sizeof(ifr.ifr_name), name);
	ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
	memcpy(ifr.ifr_hwaddr.sa_data, to, 6);
	return ioctl(fd, SIOCSIFHWADDR, &ifr) < 0 ? -errno : 0;
}

int net_configure(const struct proto_net *n, char *msg, size_t size)
{
	_cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr = { 0 };
	char name[IFNAMSIZ];
	int r;

	if (fd < 0)
		return str_printf(msg, size, "cannot open a socket: %s", strerror(errno)), -errno;
	/* the NIC may show up a moment after boot */
	for (int i = 0; (r = find_nic(n->mac, name)) < 0 && i < 200; i++)
		usleep(10000);
	if (r < 0) {
		str_printf(msg, size, "the VM has no network interface with the MAC cove gave it");
		return r;
	}
	str_copy(ifr.ifr_name, sizeof(ifr.ifr_name), name);
	sin_of(&ifr.ifr_addr, n->addr);
	if (ioctl(fd, SIOCSIFADDR, &ifr) < 0)
		goto fail;
	sin_of(&ifr.ifr_netmask, n->prefix ? ~UINT32_C(0) << (32 - n->prefix) : 0);
	if (ioctl(fd, SIOCSIFNETMASK, &ifr) < 0)
		goto fail;
	ifr.ifr_mtu = n->mtu;
	if (ioctl(fd, SIOCSIFMTU, &ifr) < 0)
		goto fail;
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		goto fail;
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		goto fail;
	if (n->gateway) {
		struct rtentry rt = { 0 };

		sin_of(&rt.rt_dst, 0);
		sin_of(&rt.rt_genmask, 0);
		sin_of(&rt.rt_gateway, n->gateway);
		rt.rt_flags = RTF_UP | RTF_GATEWAY;
		rt.rt_dev = name;
		if (ioctl(fd, SIOCADDRT, &rt) < 0 && errno != EEXIST)
			goto fail;
	}
	return 0;
fail:
	r = -errno;
	str_printf(msg, size, "cannot configure %s: %s", name, strerror(-r));
	return r;
}

static int write_run_file(const char *name, const char *content)
{
	char path[64];
	_cleanup_close_ int fd = -1;

	str_printf(path, sizeof(path), "/run/cove/%s", name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return -errno;
	return write_full(fd, content, strlen(content));
}

int net_write_etc(const struct proto_start *m, char *msg, size_t size)
{
	char hostname[256];
	int r = 0;

	if (m->hosts && m->hosts[0] && (r = write_run_file("hosts", m->hosts)) == 0 &&
	    m->hostname[0]) {
		str_printf(hostname, sizeof(hostname), "%s\n", m->hostname);
		r = write_run_file("hostname", hostname);
	}
	if (r == 0 && m->resolv && m->resolv[0])
		r = write_run_file("resolv.conf", m->resolv);
	if (r < 0)
		str_printf(msg, size, "cannot write the container's /etc files: %s", strerror(-r));
	return r;
}

/* ---- names across several networks: a resolver of the VM's own on 127.0.0.11 ------------- */

#define DNS_STUB_ADDR 0x7f00000bu /* 127.0.0.11, docker's embedded resolver's address */
#define DNS_STUB_MAX 8            /* servers asked, in order */
#define DNS_MSG_MAX 4096

/* Each query to the servers in order, until one does not answer NXDOMAIN (the last one's
 * answer is passed on whatever it is); one at a time, UDP only. */
static _noreturn_ void dns_stub(int sock, const uint32_t *servers, size_t n)
{
	uint8_t q[DNS_MSG_MAX], a[DNS_MSG_MAX];

	for (;;) {
		struct sockaddr_in from;
		socklen_t flen = sizeof(from);
		ssize_t ql = recvfrom(sock, q, sizeof(q), 0, (struct sockaddr *)&from, &flen), al = -1;

		if (ql < 12)
			continue;
		for (size_t i = 0; i < n; i++) {
			struct sockaddr_in to;
			int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
			struct pollfd p = { .fd = u, .events = POLLIN };

			sin_of((struct sockaddr *)&to, servers[i]);
			to.sin_port = htons(53);
			al = -1;
			if (u >= 0 && connect(u, (struct sockaddr *)&to, sizeof(to)) == 0 &&
			    send(u, q, (size_t)ql, 0) == ql && poll(&p, 1, 2000) == 1)
				al = recv(u, a, sizeof(a), 0);
			if (u >= 0)
				close(u);
			/* the same question's answer, and not "no such name" (or the last server's) */
			if (al >= 12 && a[0] == q[0] && a[1] == q[1] &&
			    ((a[3] & 0x0f) != 3 || i + 1 == n))
				break;
			if (al >= 12 && (a[0] != q[0] || a[1] != q[1]))
				al = -1;
		}
		if (al >= 12)
			(void)sendto(sock, a, (size_t)al, 0, (struct sockaddr *)&from, flen);
	}
}

int net_dns_stub(const char *resolv, char *msg, size_t size)
{
	static const char mark[] = "# cove: names from";
	const char *line = resolv ? strstr(resolv, mark) : NULL;
	uint32_t servers[DNS_STUB_MAX];
	struct sockaddr_in sa;
	size_t n = 0;
	int sock;
	pid_t pid;

	if (!line)
		return 0;
	for (const char *p = line + sizeof(mark) - 1; *p && *p != '\n' && n < DNS_STUB_MAX;) {
		char ip[16];
		size_t len;
		struct in_addr in;

		while (*p == ' ')
			p++;
		len = strcspn(p, " \n");
		if (len == 0 || len >= sizeof(ip))
			break;
		memcpy(ip, p, len);
		ip[len] = '\0';
		if (inet_pton(AF_INET, ip, &in) == 1)
			servers[n++] = ntohl(in.s_addr);
		p += len;
	}
	if (n == 0)
		return 0;
	sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	sin_of((struct sockaddr *)&sa, DNS_STUB_ADDR);
	sa.sin_port = htons(53);
	if (sock < 0 || bind(sock, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		str_printf(msg, size, "cannot start the resolver on 127.0.0.11: %s", strerror(errno));
		if (sock >= 0)
			close(sock);
		return -EIO;
	}
	pid = fork();
	if (pid < 0) {
		str_printf(msg, size, "cannot start the resolver: %s", strerror(errno));
		close(sock);
		return -EIO;
	}
	if (pid == 0) {
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		for (int fd = 0; fd < 1024; fd++)
			if (fd != sock)
				close(fd);
		prctl(PR_SET_NAME, "cove-dns");
		dns_stub(sock, servers, n);
	}
	close(sock);
	return 0;
}
