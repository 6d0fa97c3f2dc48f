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
#include <net/route.h>
#include <netinet/in.h>
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
