/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Container networking, as root: the default network "cove" is a Linux bridge (cove0) on a
 * private /24 that cove picks so that it collides with no route the host has, with outbound
 * NAT (nftables, table ip cove). Each running container gets an address leased from
 * STATE/networks/NAME.leases (a locked file: "IP ID" lines; a lease whose container is not
 * running is free again) and a tap on the bridge that only its supervisor and its QEMU hold
 * open, so that it disappears with them. The guest configures eth0 from START.
 */
#define _GNU_SOURCE
#include "network.h"

#include "../image/json.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define NET_DEFAULT "cove"
#define NET_BRIDGE "cove0"
#define NET_MTU 1500
#define LEASES_MAX (64u << 10)

/* candidates for the default network's /24, the first that no host route overlaps */
static const uint32_t default_subnets[] = {
	0x0a590000, /* 10.89.0.0 */ 0x0a5a0000, 0x0a5b0000, 0x0a5c0000, 0xac1e0000, /* 172.30 */
	0xc0a86400, /* 192.168.100.0 */
};

void net_ip_text(uint32_t a, char *buf, size_t size)
{
	str_printf(buf, size, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

static int ip_parse(const char *s, uint32_t *ret)
{
	struct in_addr in;

	if (!s || inet_pton(AF_INET, s, &in) != 1)
		return -EINVAL;
	*ret = ntohl(in.s_addr);
	return 0;
}

static uint32_t mask_of(unsigned prefix)
{
	return prefix ? ~UINT32_C(0) << (32 - prefix) : 0;
}

const char *net_default_name(void)
{
	return geteuid() == 0 ? NET_DEFAULT : "none";
}

/* Whether a.b.c.d/prefix overlaps a route of the host's (IPv4, this network namespace). */
static bool route_overlaps(uint32_t net, unsigned prefix)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/net/route", "re");
	char line[512];

	while (f && fgets(line, sizeof(line), f)) {
		char ifname[64];
		unsigned dst, gw, flags, refcnt, use, metric, mask;

		if (sscanf(line, "%63s %x %x %x %u %u %u %x", ifname, &dst, &gw, &flags, &refcnt, &use,
			   &metric, &mask) != 8 ||
		    strcmp(ifname, NET_BRIDGE) == 0)
			continue;
		dst = ntohl(dst);
		mask = ntohl(mask);
		if (mask == 0)
			continue; /* the default route overlaps everything */
		if ((net & mask) == (dst & mask) || (dst & mask_of(prefix)) == net)
			return true;
	}
	return false;
}

/* ---- the network's definition: STATE/networks/NAME.json --------------------------------- */

static int def_path(const struct cove_paths *p, const char *name, const char *ext, char *buf,
		    size_t size)
{
	return str_printf(buf, size, "%s/networks/%s.%s", p->state, name, ext);
}

static int def_load(const struct cove_paths *p, struct net_def *d, struct cove_error *err)
{
	char path[PATH_MAX];
	_cleanup_json_ json_t *j = NULL;

	def_path(p, d->name, "json", path, sizeof(path));
	j = json_load_file(path, 0, NULL);
	if (!j)
		return -ENOENT;
	if (ip_parse(json_string_value(json_object_get(j, "Subnet")), &d->subnet) < 0 ||
	    ip_parse(json_string_value(json_object_get(j, "Gateway")), &d->gateway) < 0 ||
	    json_integer_value(json_object_get(j, "PrefixLen")) < 8 ||
	    json_integer_value(json_object_get(j, "PrefixLen")) > 30 ||
	    !json_string_value(json_object_get(j, "Bridge")))
		return cove_error_set(err, EINVAL, "network '%s' is damaged: remove '%s'", d->name,
				      path);
	d->prefix = (unsigned)json_integer_value(json_object_get(j, "PrefixLen"));
	str_copy(d->bridge, sizeof(d->bridge), json_string_value(json_object_get(j, "Bridge")));
	d->forwarding_ours = json_is_true(json_object_get(j, "ForwardingEnabledByCove"));
	return 0;
}

static int def_save(const struct cove_paths *p, const struct net_def *d, struct cove_error *err)
{
	char path[PATH_MAX], subnet[16], gw[16];
	_cleanup_json_ json_t *j = NULL;
	_cleanup_free_ char *text = NULL;
	int r;

	net_ip_text(d->subnet, subnet, sizeof(subnet));
	net_ip_text(d->gateway, gw, sizeof(gw));
	j = json_pack("{s:s, s:s, s:s, s:i, s:s, s:b}", "Name", d->name, "Subnet", subnet,
		      "Gateway", gw, "PrefixLen", (int)d->prefix, "Bridge", d->bridge,
		      "ForwardingEnabledByCove", d->forwarding_ours);
	text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
	if (!text)
		return cove_error_set(err, ENOMEM, "out of memory");
	def_path(p, d->name, "json", path, sizeof(path));
	r = write_file_atomic(path, text, strlen(text), 0644);
	if (r < 0)
		return cove_error_set(err, -r, "cannot write '%s': %s", path, strerror(-r));
	return 0;
}

/* ---- the bridge and NAT ------------------------------------------------------------------ */

static int run_nft(const char *rules, char *why, size_t size)
{
	int in[2], status;
	pid_t pid;

	if (pipe2(in, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		close(in[0]);
		close(in[1]);
		return -errno;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

		dup2(in[0], 0);
		if (null >= 0)
			dup2(null, 1);
		execlp("nft", "nft", "-f", "-", (char *)NULL);
		dprintf(2, "nft: %s\n", strerror(errno));
		_exit(127);
	}
	close(in[0]);
	(void)write_full(in[1], rules, strlen(rules));
	close(in[1]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		str_printf(why, size, WIFEXITED(status) && WEXITSTATUS(status) == 127
					      ? "nft is missing (apt-get install nftables)"
					      : "nft refused the rules");
		return -EIO;
	}
	return 0;
}

/* table ip cove: masquerade what leaves the subnet; forward only the subnet's traffic when
 * forwarding was off before cove turned it on */
static int apply_nat(const struct net_def *d, char *why, size_t size)
{
	char subnet[16], rules[2048];

	net_ip_text(d->subnet, subnet, sizeof(subnet));
	str_printf(rules, sizeof(rules),
		   "table ip cove\n"
		   "delete table ip cove\n"
		   "table ip cove {\n"
		   "  chain postrouting {\n"
		   "    type nat hook postrouting priority srcnat; policy accept;\n"
		   "    ip saddr %s/%u ip daddr != %s/%u masquerade\n"
		   "  }\n"
		   "  chain forward {\n"
		   "    type filter hook forward priority filter; policy accept;\n"
		   "    iifname \"%s\" accept\n"
		   "    oifname \"%s\" ct state established,related accept\n"
		   "    oifname \"%s\" drop\n"
		   "%s"
		   "  }\n"
		   "}\n",
		   subnet, d->prefix, subnet, d->prefix, d->bridge, d->bridge, d->bridge,
		   d->forwarding_ours ? "    drop\n" : "");
	return run_nft(rules, why, size);
}

static int ifreq_ioctl(int fd, unsigned long req, struct ifreq *ifr, const char *name)
{
	str_copy(ifr->ifr_name, sizeof(ifr->ifr_name), name);
	return ioctl(fd, req, ifr) < 0 ? -errno : 0;
}

static int set_up(int fd, const char *name)
{
	struct ifreq ifr = { 0 };
	int r = ifreq_ioctl(fd, SIOCGIFFLAGS, &ifr, name);

	if (r < 0)
		return r;
	ifr.ifr_flags |= IFF_UP;
	return ifreq_ioctl(fd, SIOCSIFFLAGS, &ifr, name);
}

static void sin_of(struct sockaddr *sa, uint32_t addr)
{
	struct sockaddr_in *in = (struct sockaddr_in *)sa;

	memset(in, 0, sizeof(*in));
	in->sin_family = AF_INET;
	in->sin_addr.s_addr = htonl(addr);
}

/* The bridge with the gateway's address, up; NAT and forwarding the first time. */
static int bridge_ensure(const struct cove_paths *p, struct net_def *d, struct cove_error *err)
{
	_cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr = { 0 };
	char why[256];
	bool created = false;
	int r;

	if (fd < 0)
		return cove_error_set(err, errno, "cannot open a socket: %s", strerror(errno));
	if (ioctl(fd, SIOCBRADDBR, d->bridge) == 0)
		created = true;
	else if (errno != EEXIST)
		return cove_error_set(err, errno, "cannot create the bridge %s: %s", d->bridge,
				      strerror(errno));
	r = ifreq_ioctl(fd, SIOCGIFADDR, &ifr, d->bridge);
	if (r < 0 || ntohl(((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr.s_addr) != d->gateway) {
		sin_of(&ifr.ifr_addr, d->gateway);
		if ((r = ifreq_ioctl(fd, SIOCSIFADDR, &ifr, d->bridge)) < 0)
			goto fail;
		sin_of(&ifr.ifr_netmask, mask_of(d->prefix));
		if ((r = ifreq_ioctl(fd, SIOCSIFNETMASK, &ifr, d->bridge)) < 0)
			goto fail;
		created = true;
	}
	if ((r = set_up(fd, d->bridge)) < 0)
		goto fail;
	if (!created)
		return 0;
	{
		_cleanup_free_ char *fwd = NULL;

		if (read_file("/proc/sys/net/ipv4/ip_forward", 16, &fwd, NULL) == 0 && fwd[0] == '0') {
			_cleanup_close_ int w =
				open("/proc/sys/net/ipv4/ip_forward", O_WRONLY | O_CLOEXEC);
			if (w < 0 || write_full(w, "1\n", 2) < 0)
				return cove_error_set(err, errno,
						      "cannot enable IPv4 forwarding: %s",
						      strerror(errno));
			d->forwarding_ours = true;
			r = def_save(p, d, err);
			if (r < 0)
				return r;
		}
	}
	if (apply_nat(d, why, sizeof(why)) < 0)
		return cove_error_set(err, EIO, "cannot set up NAT for network '%s': %s", d->name,
				      why);
	return 0;
fail:
	return cove_error_set(err, -r, "cannot configure the bridge %s: %s", d->bridge,
			      strerror(-r));
}

/* The default network's definition, made the first time: a /24 no route overlaps. */
static int def_default(const struct cove_paths *p, struct net_def *d, struct cove_error *err)
{
	char dir[PATH_MAX];
	int r;

	memset(d, 0, sizeof(*d));
	str_copy(d->name, sizeof(d->name), NET_DEFAULT);
	r = def_load(p, d, err);
	if (r != -ENOENT)
		return r;
	str_printf(dir, sizeof(dir), "%s/networks", p->state);
	r = mkdir_p(dir, 0755);
	if (r < 0)
		return cove_error_set(err, -r, "cannot create '%s': %s", dir, strerror(-r));
	str_copy(d->bridge, sizeof(d->bridge), NET_BRIDGE);
	d->prefix = 24;
	for (size_t i = 0; i < ARRAY_SIZE(default_subnets); i++) {
		if (!route_overlaps(default_subnets[i], 24)) {
			d->subnet = default_subnets[i];
			d->gateway = d->subnet + 1;
			return def_save(p, d, err);
		}
	}
	return cove_error_set(err, EADDRINUSE,
			      "every subnet cove would use for its network overlaps a route of "
			      "this host's (10.89-92.0.0/24, 172.30.0.0/24, 192.168.100.0/24)");
}

/* ---- leases ------------------------------------------------------------------------------- */

static bool container_running(const struct cove_paths *p, const char *id)
{
	char path[PATH_MAX];
	_cleanup_close_ int fd = -1;

	str_printf(path, sizeof(path), "%s/containers/%.64s/lock", p->state, id);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd >= 0 && flock(fd, LOCK_SH | LOCK_NB) < 0;
}

/* Under the lease file's lock: drop id's lease and those of containers not running, then take
 * one for id if want. */
static int leases_update(const struct cove_paths *p, const struct net_def *d, const char *id,
			 bool want, uint32_t *ret, struct cove_error *err)
{
	char path[PATH_MAX], lock[PATH_MAX + 8];
	_cleanup_close_ int lfd = -1;
	_cleanup_free_ char *text = NULL;
	struct buf out = BUF_INIT(LEASES_MAX + 128);
	uint8_t used[256] = { 0 };
	char *line, *next;
	int r;

	def_path(p, d->name, "leases", path, sizeof(path));
	str_printf(lock, sizeof(lock), "%s.lock", path);
	lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lfd < 0 || flock(lfd, LOCK_EX) < 0)
		return cove_error_set(err, errno, "cannot lock '%s': %s", lock, strerror(errno));
	if (read_file(path, LEASES_MAX, &text, NULL) < 0)
		text = NULL;
	for (line = text; line && *line; line = next) {
		char ip[32], cid[80];
		uint32_t a;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (sscanf(line, "%31s %79s", ip, cid) != 2 || ip_parse(ip, &a) < 0 ||
		    (a & mask_of(d->prefix)) != d->subnet || strcmp(cid, id) == 0 ||
		    !container_running(p, cid))
			continue;
		used[a & 255] = 1;
		buf_append(&out, line, strlen(line));
		buf_append(&out, "\n", 1);
	}
	if (want) {
		uint32_t host = 0, n = ~mask_of(d->prefix);
		char ip[16], l[128];

		for (uint32_t h = 2; h < n && h < 255 && !host; h++)
			if (!used[h] && d->subnet + h != d->gateway)
				host = h;
		if (!host) {
			buf_done(&out);
			return cove_error_set(err, EADDRNOTAVAIL,
					      "network '%s' has no free address: remove a container",
					      d->name);
		}
		*ret = d->subnet + host;
		net_ip_text(*ret, ip, sizeof(ip));
		str_printf(l, sizeof(l), "%s %s\n", ip, id);
		buf_append(&out, l, strlen(l));
	}
	r = write_file_atomic(path, out.len ? (const char *)out.data : "", out.len, 0644);
	buf_done(&out);
	if (r < 0)
		return cove_error_set(err, -r, "cannot write '%s': %s", path, strerror(-r));
	return 0;
}

/* ---- the tap ------------------------------------------------------------------------------ */

static int tap_open(const char *name, const char *bridge, struct cove_error *err)
{
	_cleanup_close_ int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr = { 0 };
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC), r;

	if (fd < 0)
		return cove_error_set(err, errno, "cannot open /dev/net/tun: %s", strerror(errno));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (sock < 0 || (r = ifreq_ioctl(fd, TUNSETIFF, &ifr, name)) < 0 ||
	    (r = ifreq_ioctl(sock, SIOCGIFINDEX, &ifr, name)) < 0 ||
	    (r = ifreq_ioctl(sock, SIOCBRADDIF, &ifr, bridge)) < 0 || (r = set_up(sock, name)) < 0) {
		close(fd);
		return cove_error_set(err, sock < 0 ? errno : -r, "cannot set up the tap %s: %s",
				      name, strerror(sock < 0 ? errno : -r));
	}
	return fd;
}

/* ---- /etc files ---------------------------------------------------------------------------- */

/* The host's resolvers that a container can reach (not loopback), its search domains. */
static char *resolv_for_container(void)
{
	_cleanup_fclose_ FILE *f = fopen("/etc/resolv.conf", "re");
	struct buf b = BUF_INIT(PROTO_MAX_ETC_FILE - 1);
	char line[512];
	bool any = false;

	while (f && fgets(line, sizeof(line), f)) {
		char word[64], arg[256];

		if (sscanf(line, "%63s %255s", word, arg) != 2)
			continue;
		if (strcmp(word, "nameserver") == 0) {
			if (strncmp(arg, "127.", 4) == 0 || strcmp(arg, "::1") == 0)
				continue;
			any = true;
		} else if (strcmp(word, "search") != 0 && strcmp(word, "options") != 0) {
			continue;
		}
		buf_append(&b, line, strlen(line));
	}
	if (!any || buf_append(&b, "", 1) < 0) {
		buf_done(&b);
		return strdup("");
	}
	return (char *)b.data;
}

/* ---- attach / detach ---------------------------------------------------------------------- */

int net_check_name(const char *name, struct cove_error *err)
{
	if (!name || strcmp(name, "none") == 0 || strcmp(name, NET_DEFAULT) == 0 ||
	    strcmp(name, "bridge") == 0 || strcmp(name, "default") == 0)
		return 0;
	return cove_error_set(err, ENOENT,
			      "no such network: '%s' (networks: none, %s; 'cove network create' "
			      "is not there yet)",
			      name, NET_DEFAULT);
}

int net_attach(const struct cove_paths *p, const char *id, const char *network,
	       const char *hostname, struct net_attachment *ret, struct cove_error *err)
{
	struct net_attachment a = { .tap_fd = -1 };
	char ip[16], gw[16], hosts[1024];
	uint32_t addr = 0;
	int r;

	*ret = a;
	if (!network)
		network = net_default_name();
	if (strcmp(network, "none") == 0)
		return 0;
	r = net_check_name(network, err);
	if (r < 0)
		return r;
	if (geteuid() != 0)
		return cove_error_set(err, EPERM,
				      "--network %s needs root; without root a container has only "
				      "--network none",
				      network);
	r = def_default(p, &a.def, err);
	if (r == 0)
		r = bridge_ensure(p, &a.def, err);
	if (r == 0)
		r = leases_update(p, &a.def, id, true, &addr, err);
	if (r < 0)
		return r;
	str_printf(a.tap, sizeof(a.tap), "cv%.12s", id);
	a.tap_fd = tap_open(a.tap, a.def.bridge, err);
	if (a.tap_fd < 0) {
		struct cove_error ignored = { 0 };

		(void)leases_update(p, &a.def, id, false, NULL, &ignored);
		return -EIO;
	}
	a.net = (struct proto_net){ .mac = { 0x02, 0x63, (uint8_t)(addr >> 24),
					     (uint8_t)(addr >> 16), (uint8_t)(addr >> 8),
					     (uint8_t)addr },
				    .addr = addr, .prefix = (uint8_t)a.def.prefix,
				    .gateway = a.def.gateway, .mtu = NET_MTU };
	net_ip_text(addr, ip, sizeof(ip));
	net_ip_text(a.def.gateway, gw, sizeof(gw));
	str_printf(hosts, sizeof(hosts),
		   "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
		   "%s\t%s\n%s\thost.cove.internal\n",
		   ip, hostname && *hostname ? hostname : "localhost", gw);
	a.hosts = strdup(hosts);
	a.resolv = resolv_for_container();
	if (!a.hosts || !a.resolv) {
		net_detach(p, id, &a);
		return cove_error_set(err, ENOMEM, "out of memory");
	}
	a.attached = true;
	*ret = a;
	return 0;
}

void net_detach(const struct cove_paths *p, const char *id, struct net_attachment *a)
{
	struct cove_error ignored = { 0 };

	if (a->def.name[0])
		(void)leases_update(p, &a->def, id, false, NULL, &ignored);
	closep(&a->tap_fd);
	free(a->hosts);
	free(a->resolv);
	a->hosts = a->resolv = NULL;
	a->attached = false;
}

void net_addr_text(const struct net_attachment *a, char ip[16], char gw[16], char mac[18])
{
	const uint8_t *m = a->net.mac;

	net_ip_text(a->net.addr, ip, 16);
	net_ip_text(a->net.gateway, gw, 16);
	str_printf(mac, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}
