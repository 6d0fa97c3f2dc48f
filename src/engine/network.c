/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Container networking. As root, a network is a Linux bridge on a private subnet with, unless
 * it is internal, outbound NAT (nftables: table ip cove, made again from every network's
 * definition whenever one is added or removed; containers on different networks cannot reach
 * each other). The default network "cove" (bridge cove0) is made on first use on a /24 that no
 * host route overlaps; `cove network create` makes others (bridge cove-ID), each with a DNS
 * server (dnsmasq) on its gateway that knows its running containers by name, short ID and
 * alias and forwards everything else to the host's resolvers.
 *
 * Each running container holds a lease in STATE/networks/NAME.leases (a locked file of
 * "IP ID MAC NAME..." lines; a lease whose container is not running is free again, and its
 * DNS entry goes with it) and a tap on the bridge that only its supervisor and its QEMU hold
 * open, so that it disappears with them. The guest configures eth0 from START.
 *
 * Without root, "user" is QEMU's user networking (slirp): outbound TCP/UDP through QEMU's own
 * sockets, the host's loopback as 10.0.2.2, no tap and no lease.
 */
#define _GNU_SOURCE
#include "network.h"

#include "container.h"
#include "spec.h"

#include "../image/json.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define NET_DEFAULT "cove"
#define NET_USER "user"
#define NET_BRIDGE "cove0"
#define NET_MTU 1500
#define LEASES_MAX (4u << 20)
#define HOSTS_MAX 65536u  /* addresses a network leases at most */
#define NAMES_MAX 1024    /* a lease's names: "NAME SHORTID ALIAS..." */

/* QEMU's user networking (slirp), with its own fixed addresses */
#define USER_SUBNET 0x0a000200u /* 10.0.2.0/24 */
#define USER_GATEWAY (USER_SUBNET + 2) /* the host's loopback, as the guest sees it */
#define USER_DNS (USER_SUBNET + 3)
#define USER_GUEST (USER_SUBNET + 15)

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

static bool in_subnet(uint32_t a, uint32_t subnet, unsigned prefix)
{
	return (a & mask_of(prefix)) == subnet;
}

static bool overlap(uint32_t a, unsigned pa, uint32_t b, unsigned pb)
{
	unsigned p = pa < pb ? pa : pb;

	return (a & mask_of(p)) == (b & mask_of(p));
}

/* "A.B.C.D/N": the subnet with its host bits zero, N 8..29 (a /30 has room for one container) */
static int cidr_parse(const char *s, uint32_t *ret, unsigned *ret_prefix, char *why, size_t size)
{
	char ip[32];
	const char *slash = s ? strchr(s, '/') : NULL;
	uint64_t prefix;
	uint32_t a = 0;

	if (!slash || (size_t)(slash - s) >= sizeof(ip)) {
		str_printf(why, size, "expected A.B.C.D/N");
		return -EINVAL;
	}
	memcpy(ip, s, (size_t)(slash - s));
	ip[slash - s] = '\0';
	if (ip_parse(ip, &a) < 0 || parse_u64(slash + 1, 32, &prefix) < 0) {
		str_printf(why, size, "expected A.B.C.D/N");
		return -EINVAL;
	}
	if (prefix < 8 || prefix > 29) {
		str_printf(why, size, "its prefix must be /8 to /29");
		return -EINVAL;
	}
	if (a & ~mask_of((unsigned)prefix)) {
		char net[16];

		net_ip_text(a & mask_of((unsigned)prefix), net, sizeof(net));
		str_printf(why, size, "it has host bits set: did you mean %s/%u?", net,
			   (unsigned)prefix);
		return -EINVAL;
	}
	*ret = a;
	*ret_prefix = (unsigned)prefix;
	return 0;
}

const char *net_default_name(void)
{
	return geteuid() == 0 ? NET_DEFAULT : NET_USER;
}

const char *net_canonical(const char *name)
{
	if (!name)
		return net_default_name();
	if (strcmp(name, "bridge") == 0 || strcmp(name, "default") == 0)
		return NET_DEFAULT;
	if (strcmp(name, "slirp") == 0 || strcmp(name, "slirp4netns") == 0)
		return NET_USER;
	return name;
}

static bool reserved_name(const char *name)
{
	static const char *const names[] = { "none", "host", NET_USER, "slirp", "slirp4netns",
					     "bridge", "default", NET_DEFAULT };

	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strcmp(name, names[i]) == 0)
			return true;
	return false;
}

static bool valid_net_name(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > NET_NAME_MAX || !isalnum((unsigned char)name[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && !strchr("_.-", name[i]))
			return false;
	return true;
}

/* a host name or domain: letters, digits, '-', '_' and '.', at most 253 */
static bool valid_dns_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 253 || s[0] == '.' || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("-_.", s[i]))
			return false;
	return true;
}

/* a resolv.conf option: ndots:2, edns0, timeout:1, use-vc */
static bool valid_dns_option(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64 || !isalpha((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr(":-_", s[i]))
			return false;
	return true;
}

/* Whether a.b.c.d/prefix overlaps a route of the host's (IPv4, this network namespace) other
 * than one of cove's own bridges. */
static bool route_overlaps(uint32_t net, unsigned prefix)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/net/route", "re");
	char line[512];

	while (f && fgets(line, sizeof(line), f)) {
		char ifname[64];
		unsigned dst, gw, flags, refcnt, use, metric, mask;

		if (sscanf(line, "%63s %x %x %x %u %u %u %x", ifname, &dst, &gw, &flags, &refcnt, &use,
			   &metric, &mask) != 8 ||
		    strcmp(ifname, NET_BRIDGE) == 0 || strncmp(ifname, "cove-", 5) == 0)
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

/* ---- checks of the flags ------------------------------------------------------------------ */

int net_check_ip(const char *s, char *why, size_t size)
{
	uint32_t a;

	if (ip_parse(s, &a) < 0) {
		str_printf(why, size, "'%s' is not an IPv4 address", s);
		return -EINVAL;
	}
	return 0;
}

int net_parse_mac(const char *s, uint8_t mac[6], char *why, size_t size)
{
	unsigned v[6];
	char end;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
		   &end) != 6 ||
	    strlen(s) != 17) {
		str_printf(why, size, "'%s' is not a MAC address (expected 02:42:ac:11:00:02)", s);
		return -EINVAL;
	}
	if (v[0] & 1) {
		str_printf(why, size, "'%s' is a multicast MAC address: its first byte must be even",
			   s);
		return -EINVAL;
	}
	if ((v[0] | v[1] | v[2] | v[3] | v[4] | v[5]) == 0) {
		str_printf(why, size, "'%s' is not a usable MAC address", s);
		return -EINVAL;
	}
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	return 0;
}

int net_check_add_host(const char *s, char *why, size_t size)
{
	const char *colon = strchr(s, ':');
	char name[256];

	if (!colon || colon == s || (size_t)(colon - s) >= sizeof(name)) {
		str_printf(why, size, "'%s': expected NAME:IP", s);
		return -EINVAL;
	}
	memcpy(name, s, (size_t)(colon - s));
	name[colon - s] = '\0';
	if (!valid_dns_name(name)) {
		str_printf(why, size, "'%s': '%s' is not a host name", s, name);
		return -EINVAL;
	}
	if (strcmp(colon + 1, "host-gateway") == 0)
		return 0;
	if (net_check_ip(colon + 1, why, size) < 0) {
		str_printf(why, size, "'%s': expected NAME:IP (an IPv4 address, or host-gateway)", s);
		return -EINVAL;
	}
	return 0;
}

int net_check_fields(const struct container_spec *s, char *why, size_t size)
{
	uint8_t mac[6];

	if (s->network && *s->network && !valid_net_name(s->network)) {
		str_printf(why, size, "'%s' is not a network name", s->network);
		return -EINVAL;
	}
	if (s->nmore_networks + 1 > PROTO_MAX_NICS) {
		str_printf(why, size, "a container is on at most %d networks", PROTO_MAX_NICS);
		return -EINVAL;
	}
	for (size_t i = 0; i < s->nmore_networks; i++) {
		const char *n = net_canonical(s->more_networks[i]);

		if (!valid_net_name(n) || strcmp(n, "none") == 0 || strcmp(n, NET_USER) == 0 ||
		    strcmp(n, "host") == 0) {
			str_printf(why, size,
				   "'%s' cannot be one of several networks (none and user stand "
				   "alone)",
				   s->more_networks[i]);
			return -EINVAL;
		}
		if (s->network && strcmp(net_canonical(s->network), n) == 0) {
			str_printf(why, size, "network '%s' is named twice", n);
			return -EINVAL;
		}
		for (size_t k = 0; k < i; k++)
			if (strcmp(net_canonical(s->more_networks[k]), n) == 0) {
				str_printf(why, size, "network '%s' is named twice", n);
				return -EINVAL;
			}
	}
	if (s->ip && net_check_ip(s->ip, why, size) < 0)
		return -EINVAL;
	if (s->mac && net_parse_mac(s->mac, mac, why, size) < 0)
		return -EINVAL;
	for (size_t i = 0; i < s->ndns; i++)
		if (net_check_ip(s->dns[i], why, size) < 0)
			return -EINVAL;
	for (size_t i = 0; i < s->nadd_hosts; i++)
		if (net_check_add_host(s->add_hosts[i], why, size) < 0)
			return -EINVAL;
	for (size_t i = 0; i < s->ndns_search; i++)
		if (!valid_dns_name(s->dns_search[i])) {
			str_printf(why, size, "'%s' is not a domain", s->dns_search[i]);
			return -EINVAL;
		}
	for (size_t i = 0; i < s->ndns_options; i++)
		if (!valid_dns_option(s->dns_options[i])) {
			str_printf(why, size, "'%s' is not a resolver option (e.g. ndots:2, edns0)",
				   s->dns_options[i]);
			return -EINVAL;
		}
	for (size_t i = 0; i < s->naliases; i++)
		if (!valid_dns_name(s->aliases[i])) {
			str_printf(why, size, "'%s' is not a host name", s->aliases[i]);
			return -EINVAL;
		}
	return 0;
}

/* ---- the network's definition: STATE/networks/NAME.json --------------------------------- */

static int def_path(const struct cove_paths *p, const char *name, const char *ext, char *buf,
		    size_t size)
{
	return str_printf(buf, size, "%s/networks/%s.%s", p->state, name, ext);
}

static int def_load(const struct cove_paths *p, const char *name, struct net_def *d,
		    struct cove_error *err)
{
	char path[PATH_MAX];
	_cleanup_json_ json_t *j = NULL;
	json_int_t prefix;

	memset(d, 0, sizeof(*d));
	str_copy(d->name, sizeof(d->name), name);
	def_path(p, name, "json", path, sizeof(path));
	j = json_load_file(path, 0, NULL);
	if (!j)
		return -ENOENT;
	prefix = json_integer_value(json_object_get(j, "PrefixLen"));
	if (ip_parse(json_string_value(json_object_get(j, "Subnet")), &d->subnet) < 0 ||
	    ip_parse(json_string_value(json_object_get(j, "Gateway")), &d->gateway) < 0 ||
	    prefix < 8 || prefix > 30 || !json_string_value(json_object_get(j, "Bridge")) ||
	    strlen(json_string_value(json_object_get(j, "Bridge"))) >= sizeof(d->bridge))
		return cove_error_set(err, EINVAL, "network '%s' is damaged: remove '%s'", name,
				      path);
	d->prefix = (unsigned)prefix;
	str_copy(d->bridge, sizeof(d->bridge), json_string_value(json_object_get(j, "Bridge")));
	str_copy(d->id, sizeof(d->id), json_string_value(json_object_get(j, "Id")) ?: "");
	str_copy(d->created, sizeof(d->created),
		 json_string_value(json_object_get(j, "Created")) ?: "");
	d->internal = json_is_true(json_object_get(j, "Internal"));
	d->dns = json_is_true(json_object_get(j, "DNS"));
	d->forwarding_ours = json_is_true(json_object_get(j, "ForwardingEnabledByCove"));
	return 0;
}

static int def_save(const struct cove_paths *p, const struct net_def *d, json_t *labels,
		    struct cove_error *err)
{
	char path[PATH_MAX], subnet[16], gw[16];
	_cleanup_json_ json_t *j = NULL;
	_cleanup_free_ char *text = NULL;
	int r;

	net_ip_text(d->subnet, subnet, sizeof(subnet));
	net_ip_text(d->gateway, gw, sizeof(gw));
	j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:b, s:b, s:O}", "Name", d->name,
		      "Id", d->id, "Created", d->created, "Driver", "bridge", "Subnet", subnet,
		      "Gateway", gw, "PrefixLen", (int)d->prefix, "Bridge", d->bridge, "Internal",
		      d->internal, "DNS", d->dns, "Labels", labels ? labels : json_object());
	if (j && d->forwarding_ours)
		json_object_set_new(j, "ForwardingEnabledByCove", json_true());
	text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
	if (!text)
		return cove_error_set(err, ENOMEM, "out of memory");
	def_path(p, d->name, "json", path, sizeof(path));
	r = write_file_atomic(path, text, strlen(text), 0644);
	if (r < 0)
		return cove_error_set(err, -r, "cannot write '%s': %s", path, strerror(-r));
	return 0;
}

/* Every definition in STATE/networks, sorted by name with the default first. */
static int by_name(const void *a, const void *b)
{
	const struct net_def *x = a, *y = b;
	bool dx = strcmp(x->name, NET_DEFAULT) == 0, dy = strcmp(y->name, NET_DEFAULT) == 0;

	return dx != dy ? (dx ? -1 : 1) : strcmp(x->name, y->name);
}

static int defs_all(const struct cove_paths *p, struct net_def **ret, size_t *ret_n)
{
	char dir[PATH_MAX];
	_cleanup_(closedirp) DIR *d = NULL;
	struct net_def *v = NULL;
	struct dirent *de;
	size_t n = 0;

	*ret = NULL;
	*ret_n = 0;
	str_printf(dir, sizeof(dir), "%s/networks", p->state);
	d = opendir(dir);
	while (d && (de = readdir(d))) {
		size_t len = strlen(de->d_name);
		char name[NET_NAME_MAX + 1];
		struct cove_error ignored = { 0 };
		struct net_def *nv;

		if (len <= 5 || len - 5 > NET_NAME_MAX || strcmp(de->d_name + len - 5, ".json") != 0)
			continue;
		memcpy(name, de->d_name, len - 5);
		name[len - 5] = '\0';
		nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv) {
			free(v);
			return -ENOMEM;
		}
		v = nv;
		if (def_load(p, name, &v[n], &ignored) == 0)
			n++;
	}
	if (n)
		qsort(v, n, sizeof(*v), by_name);
	*ret = v;
	*ret_n = n;
	return 0;
}

/* ---- the bridges and their rules ------------------------------------------------------------ */

/* Runs a program with the signals a supervisor blocks or ignores set back to their defaults,
 * stdout to /dev/null, stdin from in (or /dev/null), stderr to errfd (or /dev/null); with
 * keep_caps, its capabilities (bounding set) cut to those bits, and no new privileges. */
static pid_t spawn(char *const argv[], const char *in, int errfd, uint64_t keep_caps)
{
	int pin[2] = { -1, -1 };
	pid_t pid;

	if (in && pipe2(pin, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		int e = errno;

		if (in) {
			close(pin[0]);
			close(pin[1]);
		}
		return -e;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		dup2(in ? pin[0] : null, 0);
		dup2(null, 1);
		dup2(errfd >= 0 ? errfd : null, 2);
		for (int cap = 0; keep_caps && cap < 64; cap++)
			if (!(keep_caps & (UINT64_C(1) << cap)) &&
			    prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
				_exit(126);
		if (keep_caps && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
			_exit(126);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (in) {
		close(pin[0]);
		(void)write_full(pin[1], in, strlen(in));
		close(pin[1]);
	}
	return pid;
}

static int wait_for(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int run_nft(const char *rules, char *why, size_t size)
{
	char *const argv[] = { (char *)"nft", (char *)"-f", (char *)"-", NULL };
	pid_t pid = spawn(argv, rules, -1, 0);
	int code;

	if (pid < 0) {
		str_printf(why, size, "cannot run nft: %s", strerror((int)-pid));
		return -EIO;
	}
	code = wait_for(pid);
	if (code != 0) {
		str_printf(why, size, code == 127 ? "nft is missing (apt-get install nftables)"
						  : "nft refused the rules");
		return -EIO;
	}
	return 0;
}

static bool forwarding_ours(const struct cove_paths *p, const struct net_def *defs, size_t n)
{
	char path[PATH_MAX];

	str_printf(path, sizeof(path), "%s/networks/forwarding-by-cove", p->state);
	for (size_t i = 0; i < n; i++)
		if (defs[i].forwarding_ours)
			return true;
	return access(path, F_OK) == 0;
}

/*
 * table ip cove, from every network: traffic within a network is bridged; what leaves an
 * internal network, or goes from one network to another, is dropped; the rest leaves with
 * its source masqueraded and only replies come back in. When cove turned forwarding on,
 * nothing else is forwarded.
 */
static int apply_rules(const struct cove_paths *p, char *why, size_t size)
{
	_cleanup_free_ struct net_def *defs = NULL;
	struct buf b = BUF_INIT(1u << 20);
	char line[512], subnet[16];
	size_t n = 0;
	int r;

	if (defs_all(p, &defs, &n) < 0) {
		str_printf(why, size, "out of memory");
		return -ENOMEM;
	}
#define ADD(...)                                                       \
	do {                                                           \
		str_printf(line, sizeof(line), __VA_ARGS__);           \
		buf_append(&b, line, strlen(line));                    \
	} while (0)
	ADD("table ip cove\ndelete table ip cove\ntable ip cove {\n");
	ADD("  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n");
	for (size_t i = 0; i < n; i++) {
		if (defs[i].internal)
			continue;
		net_ip_text(defs[i].subnet, subnet, sizeof(subnet));
		ADD("    ip saddr %s/%u ip daddr != %s/%u masquerade\n", subnet, defs[i].prefix,
		    subnet, defs[i].prefix);
	}
	ADD("  }\n  chain forward {\n    type filter hook forward priority filter; policy accept;\n");
	for (size_t i = 0; i < n; i++)
		ADD("    iifname \"%s\" oifname \"%s\" accept\n", defs[i].bridge, defs[i].bridge);
	if (n > 1) {
		struct buf set = BUF_INIT(1u << 16);

		for (size_t i = 0; i < n; i++) {
			str_printf(line, sizeof(line), "%s\"%s\"", i ? ", " : "", defs[i].bridge);
			buf_append(&set, line, strlen(line));
		}
		buf_append(&set, "", 1);
		ADD("    iifname { %s } oifname { %s } drop\n", (char *)set.data, (char *)set.data);
		buf_done(&set);
	}
	for (size_t i = 0; i < n; i++) {
		if (defs[i].internal) {
			ADD("    iifname \"%s\" drop\n    oifname \"%s\" drop\n", defs[i].bridge,
			    defs[i].bridge);
			continue;
		}
		ADD("    iifname \"%s\" accept\n", defs[i].bridge);
		ADD("    oifname \"%s\" ct state established,related accept\n", defs[i].bridge);
		ADD("    oifname \"%s\" drop\n", defs[i].bridge);
	}
	if (forwarding_ours(p, defs, n))
		ADD("    drop\n");
	ADD("  }\n}\n");
#undef ADD
	if (buf_append(&b, "", 1) < 0) {
		buf_done(&b);
		str_printf(why, size, "too many networks for one rule set");
		return -E2BIG;
	}
	r = run_nft((char *)b.data, why, size);
	buf_done(&b);
	return r;
}

static int ifreq_ioctl(int fd, unsigned long req, struct ifreq *ifr, const char *name)
{
	str_copy(ifr->ifr_name, sizeof(ifr->ifr_name), name);
	return ioctl(fd, req, ifr) < 0 ? -errno : 0;
}

static int set_flag(int fd, const char *name, bool up)
{
	struct ifreq ifr = { 0 };
	int r = ifreq_ioctl(fd, SIOCGIFFLAGS, &ifr, name);

	if (r < 0)
		return r;
	if (up)
		ifr.ifr_flags |= IFF_UP;
	else
		ifr.ifr_flags &= ~IFF_UP;
	return ifreq_ioctl(fd, SIOCSIFFLAGS, &ifr, name);
}

static void sin_of(struct sockaddr *sa, uint32_t addr)
{
	struct sockaddr_in *in = (struct sockaddr_in *)sa;

	memset(in, 0, sizeof(*in));
	in->sin_family = AF_INET;
	in->sin_addr.s_addr = htonl(addr);
}

/* IPv4 forwarding on (remembering that cove turned it on, so that the rules forward only
 * cove's own traffic). */
static int forwarding_on(const struct cove_paths *p, struct cove_error *err)
{
	_cleanup_free_ char *fwd = NULL;
	_cleanup_close_ int w = -1;
	char mark[PATH_MAX];

	if (read_file("/proc/sys/net/ipv4/ip_forward", 16, &fwd, NULL) < 0 || fwd[0] != '0')
		return 0;
	str_printf(mark, sizeof(mark), "%s/networks/forwarding-by-cove", p->state);
	if (write_file_atomic(mark, "1\n", 2, 0644) < 0)
		return cove_error_set(err, errno, "cannot write '%s': %s", mark, strerror(errno));
	w = open("/proc/sys/net/ipv4/ip_forward", O_WRONLY | O_CLOEXEC);
	if (w < 0 || write_full(w, "1\n", 2) < 0)
		return cove_error_set(err, errno, "cannot enable IPv4 forwarding: %s",
				      strerror(errno));
	return 0;
}

/* The bridge with the gateway's address, up; forwarding and the rules when it was made. */
static int bridge_ensure(const struct cove_paths *p, const struct net_def *d,
			 struct cove_error *err)
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
	if ((r = set_flag(fd, d->bridge, true)) < 0)
		goto fail;
	if (!created)
		return 0;
	if ((r = forwarding_on(p, err)) < 0)
		return r;
	if (apply_rules(p, why, sizeof(why)) < 0)
		return cove_error_set(err, EIO, "cannot set up NAT for network '%s': %s", d->name,
				      why);
	return 0;
fail:
	return cove_error_set(err, -r, "cannot configure the bridge %s: %s", d->bridge,
			      strerror(-r));
}

static void bridge_delete(const char *name)
{
	_cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd >= 0) {
		(void)set_flag(fd, name, false);
		(void)ioctl(fd, SIOCBRDELBR, name);
	}
}

/* STATE/networks/.lock: one create or remove at a time */
static int defs_lock(const struct cove_paths *p, struct cove_error *err)
{
	char dir[PATH_MAX], path[PATH_MAX + 8];
	int fd, r;

	str_printf(dir, sizeof(dir), "%s/networks", p->state);
	r = mkdir_p(dir, 0755);
	if (r < 0)
		return cove_error_set(err, -r, "cannot create '%s': %s", dir, strerror(-r));
	str_printf(path, sizeof(path), "%s/.lock", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || flock(fd, LOCK_EX) < 0) {
		r = errno;
		if (fd >= 0)
			close(fd);
		return cove_error_set(err, r, "cannot lock '%s': %s", path, strerror(r));
	}
	return fd;
}

/* The default network's definition, made the first time: a /24 no route overlaps. */
static int def_default(const struct cove_paths *p, struct net_def *d, struct cove_error *err)
{
	_cleanup_close_ int lock = -1;
	int r = def_load(p, NET_DEFAULT, d, err);

	if (r != -ENOENT)
		return r;
	lock = defs_lock(p, err);
	if (lock < 0)
		return lock;
	r = def_load(p, NET_DEFAULT, d, err);
	if (r != -ENOENT)
		return r;
	str_copy(d->bridge, sizeof(d->bridge), NET_BRIDGE);
	if ((r = random_hex(d->id, 32)) < 0)
		return cove_error_set(err, -r, "getrandom failed: %s", strerror(-r));
	container_timestamp(d->created, sizeof(d->created));
	d->prefix = 24;
	for (size_t i = 0; i < ARRAY_SIZE(default_subnets); i++) {
		if (!route_overlaps(default_subnets[i], 24)) {
			d->subnet = default_subnets[i];
			d->gateway = d->subnet + 1;
			return def_save(p, d, NULL, err);
		}
	}
	return cove_error_set(err, EADDRINUSE,
			      "every subnet cove would use for its network overlaps a route of "
			      "this host's (10.89-92.0.0/24, 172.30.0.0/24, 192.168.100.0/24)");
}

/* The definition of the network called name (with make_default, the default one is made the
 * first time), or one line saying there is no such network. */
static int def_find(const struct cove_paths *p, const char *name, bool make_default,
		    struct net_def *d, struct cove_error *err)
{
	int r = -ENOENT;

	if (make_default && strcmp(name, NET_DEFAULT) == 0)
		r = def_default(p, d, err);
	else if (valid_net_name(name))
		r = def_load(p, name, d, err);
	if (r == -ENOENT && !err->msg[0])
		return cove_error_set(err, ENOENT,
				      "no such network: '%s' (cove network ls lists them; cove "
				      "network create makes one)",
				      name);
	return r;
}

/* ---- checks against the networks there are ------------------------------------------------ */

int net_check_name(const struct cove_paths *p, const char *name, struct cove_error *err)
{
	struct net_def d;

	name = net_canonical(name);
	if (strcmp(name, "none") == 0 || strcmp(name, NET_USER) == 0 ||
	    strcmp(name, NET_DEFAULT) == 0)
		return 0;
	if (strcmp(name, "host") == 0)
		return cove_error_set(err, EINVAL,
				      "--network host is not possible: a container has a kernel of "
				      "its own; publish ports with -p");
	return def_find(p, name, false, &d, err);
}

int net_check_spec(const struct cove_paths *p, const struct container_spec *s,
		   struct cove_error *err)
{
	const char *name = net_canonical(s->network);
	char why[256], subnet[16];
	struct net_def d;
	uint32_t a = 0;
	int r;

	if (net_check_fields(s, why, sizeof(why)) < 0)
		return cove_error_set(err, EINVAL, "%s", why);
	r = net_check_name(p, name, err);
	if (r < 0)
		return r;
	if (s->nmore_networks && (strcmp(name, "none") == 0 || strcmp(name, NET_USER) == 0))
		return cove_error_set(err, EINVAL,
				      "--network %s stands alone: a container on several networks "
				      "is on bridges only",
				      name);
	for (size_t i = 0; i < s->nmore_networks; i++)
		if ((r = net_check_name(p, s->more_networks[i], err)) < 0)
			return r;
	if (!s->ip)
		return 0;
	if (strcmp(name, "none") == 0 || strcmp(name, NET_USER) == 0)
		return cove_error_set(err, EINVAL, "--ip needs a network with addresses, not '%s'",
				      name);
	r = def_find(p, name, true, &d, err);
	if (r < 0)
		return r;
	(void)ip_parse(s->ip, &a);
	net_ip_text(d.subnet, subnet, sizeof(subnet));
	if (!in_subnet(a, d.subnet, d.prefix))
		return cove_error_set(err, EINVAL, "--ip %s is not in network '%s' (%s/%u)", s->ip,
				      name, subnet, d.prefix);
	if (a == d.gateway || a == d.subnet || a == (d.subnet | ~mask_of(d.prefix)))
		return cove_error_set(err, EINVAL,
				      "--ip %s is the %s address of network '%s' (%s/%u)", s->ip,
				      a == d.gateway ? "gateway" : a == d.subnet ? "network"
										 : "broadcast",
				      name, subnet, d.prefix);
	return 0;
}

/* ---- the DNS server of a network: dnsmasq on its gateway ---------------------------------- */

/* dnsmasq's pid when it is the one this network started (its command line names our pid
 * file), else 0 */
static pid_t dns_pid(const struct cove_paths *p, const struct net_def *d)
{
	char path[PATH_MAX], proc[64];
	_cleanup_free_ char *text = NULL, *cmdline = NULL;
	size_t len = 0;
	long pid;

	def_path(p, d->name, "dns.pid", path, sizeof(path));
	if (read_file(path, 32, &text, NULL) < 0 || (pid = strtol(text, NULL, 10)) <= 1 ||
	    pid > INT32_MAX)
		return 0;
	str_printf(proc, sizeof(proc), "/proc/%ld/cmdline", pid);
	if (read_file(proc, 1 << 16, &cmdline, &len) < 0)
		return 0;
	for (size_t i = 0; i < len; i += strlen(cmdline + i) + 1)
		if (strncmp(cmdline + i, "--pid-file=", 11) == 0 &&
		    strcmp(cmdline + i + 11, path) == 0)
			return (pid_t)pid;
	return 0;
}

static int dns_start(const struct cove_paths *p, const struct net_def *d, struct cove_error *err)
{
	char pid_file[PATH_MAX + 16], hosts[PATH_MAX + 16], log[PATH_MAX + 16], listen[48];
	char msg[512] = "";
	int errp[2], code;
	ssize_t n;
	pid_t pid;

	def_path(p, d->name, "dns.pid", pid_file + 11, sizeof(pid_file) - 11);
	memcpy(pid_file, "--pid-file=", 11);
	def_path(p, d->name, "hosts", hosts + 13, sizeof(hosts) - 13);
	memcpy(hosts, "--addn-hosts=", 13);
	def_path(p, d->name, "dns.log", log + 15, sizeof(log) - 15);
	memcpy(log, "--log-facility=", 15);
	memcpy(listen, "--listen-address=", 17);
	net_ip_text(d->gateway, listen + 17, sizeof(listen) - 17);
	{
		/* as root, for the hosts file is re-read on SIGHUP from a state directory that only
		 * root may enter, but with no capability beyond binding port 53 and setting its
		 * group (see docs/internals/security.md) */
		char *const argv[] = { (char *)"dnsmasq", (char *)"--conf-file=/dev/null",
				       (char *)"--no-hosts", hosts, listen,
				       (char *)"--bind-interfaces", pid_file, log,
				       (char *)"--user=root", (char *)"--group=root",
				       (char *)"--no-negcache", (char *)"--domain-needed",
				       (char *)"--cache-size=1000", NULL };

		if (pipe2(errp, O_CLOEXEC) < 0)
			return cove_error_set(err, errno, "cannot make a pipe: %s", strerror(errno));
		pid = spawn(argv, NULL, errp[1],
			    UINT64_C(1) << CAP_NET_BIND_SERVICE | UINT64_C(1) << CAP_SETGID);
		close(errp[1]);
	}
	if (pid < 0) {
		close(errp[0]);
		return cove_error_set(err, (int)-pid, "cannot run dnsmasq: %s",
				      strerror((int)-pid));
	}
	/* its foreground process exits once the daemon is listening, or says why it cannot */
	code = wait_for(pid);
	(void)fd_set_nonblock(errp[0], true);
	n = read(errp[0], msg, sizeof(msg) - 1);
	close(errp[0]);
	msg[n > 0 ? n : 0] = '\0';
	if (code == 127)
		return cove_error_set(err, ENOENT,
				      "network '%s' needs dnsmasq for its DNS server (apt-get "
				      "install dnsmasq-base)",
				      d->name);
	if (code != 0)
		return cove_error_set(err, EIO, "cannot start the DNS server of network '%s': %s",
				      d->name, msg[0] ? str_one_line(msg) : "dnsmasq failed");
	return 0;
}

static void dns_stop(const struct cove_paths *p, const struct net_def *d)
{
	char path[PATH_MAX];
	pid_t pid = dns_pid(p, d);

	if (pid > 0)
		kill(pid, SIGTERM);
	def_path(p, d->name, "dns.pid", path, sizeof(path));
	unlink(path);
}

/* The names the leases give, as dnsmasq reads them; the server started, told or stopped. */
static int dns_sync(const struct cove_paths *p, const struct net_def *d, const char *hosts,
		    size_t leases, struct cove_error *err)
{
	char path[PATH_MAX];
	pid_t pid;
	int r;

	def_path(p, d->name, "hosts", path, sizeof(path));
	r = write_file_atomic(path, hosts, strlen(hosts), 0644);
	if (r < 0)
		return cove_error_set(err, -r, "cannot write '%s': %s", path, strerror(-r));
	if (leases == 0) {
		dns_stop(p, d);
		return 0;
	}
	pid = dns_pid(p, d);
	if (pid > 0)
		return kill(pid, SIGHUP) == 0 ? 0 : dns_start(p, d, err);
	return dns_start(p, d, err);
}

/* ---- leases ------------------------------------------------------------------------------- */

struct lease_req {
	const char *id;
	uint32_t want;           /* --ip, or 0: any free address */
	const char *mac;         /* "02:..." */
	const char *names;       /* "NAME SHORTID ALIAS...", for DNS */
};

struct lease {
	uint32_t addr;
	char id[65], mac[18];
	const char *names;       /* into the line */
};

/* "IP ID [MAC [NAMES...]]" (cove 0.2 wrote "IP ID") */
static bool lease_parse(char *line, const struct net_def *d, struct lease *l)
{
	char ip[32], mac[18] = "-";
	int end = 0;

	if (sscanf(line, "%31s %64s %17s %n", ip, l->id, mac, &end) < 2 ||
	    ip_parse(ip, &l->addr) < 0 || !in_subnet(l->addr, d->subnet, d->prefix))
		return false;
	str_copy(l->mac, sizeof(l->mac), mac);
	l->names = end ? line + end : "";
	return true;
}

/*
 * Under the lease file's lock: drop id's lease and those of containers not running, then take
 * one for q if given (its --ip, or the first free address); keep the network's DNS in step.
 * When nothing changes (net_gc, on every create and rm), nothing is written.
 */
static int leases_update(const struct cove_paths *p, const struct net_def *d, const char *id,
			 const struct lease_req *q, uint32_t *ret, struct cove_error *err)
{
	char path[PATH_MAX], lock[PATH_MAX + 8], ip[16], gw[16], l[NAMES_MAX + 128];
	_cleanup_close_ int lfd = -1;
	_cleanup_free_ char *text = NULL;
	_cleanup_free_ uint8_t *used = NULL;
	struct buf out = BUF_INIT(LEASES_MAX + NAMES_MAX + 128);
	struct buf hosts = BUF_INIT(LEASES_MAX + 256);
	uint32_t span = ~mask_of(d->prefix) + 1, kept = 0;
	bool changed = q != NULL;
	char *line, *next;
	int r;

	if (span > HOSTS_MAX)
		span = HOSTS_MAX;
	used = calloc(span, 1);
	def_path(p, d->name, "leases", path, sizeof(path));
	str_printf(lock, sizeof(lock), "%s.lock", path);
	lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (!used || lfd < 0 || flock(lfd, LOCK_EX) < 0) {
		r = used ? errno : ENOMEM;
		buf_done(&out);
		buf_done(&hosts);
		return cove_error_set(err, r, "cannot lock '%s': %s", lock, strerror(r));
	}
	if (read_file(path, LEASES_MAX, &text, NULL) < 0)
		text = NULL;
	net_ip_text(d->gateway, gw, sizeof(gw));
	str_printf(l, sizeof(l), "%s\thost.cove.internal\n", gw);
	buf_append(&hosts, l, strlen(l));
	for (line = text; line && *line; line = next) {
		struct lease e;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (!lease_parse(line, d, &e) || (id && strcmp(e.id, id) == 0) ||
		    !container_id_running(p, e.id) || e.addr - d->subnet >= span) {
			changed = true;
			continue;
		}
		used[e.addr - d->subnet] = 1;
		kept++;
		buf_append(&out, line, strlen(line));
		buf_append(&out, "\n", 1);
		if (*e.names) {
			net_ip_text(e.addr, ip, sizeof(ip));
			str_printf(l, sizeof(l), "%s\t%s\n", ip, e.names);
			buf_append(&hosts, l, strlen(l));
		}
	}
	if (q) {
		uint32_t host = 0;

		if (q->want) {
			host = q->want - d->subnet;
			if (host == 0 || host + 1 >= span || q->want == d->gateway || used[host]) {
				net_ip_text(q->want, ip, sizeof(ip));
				r = cove_error_set(err, EADDRINUSE,
						   "address %s is already in use on network '%s'", ip,
						   d->name);
				goto done;
			}
		}
		for (uint32_t h = 2; h + 1 < span && !host; h++)
			if (!used[h] && d->subnet + h != d->gateway)
				host = h;
		if (!host) {
			r = cove_error_set(err, EADDRNOTAVAIL,
					   "network '%s' has no free address: remove a container",
					   d->name);
			goto done;
		}
		*ret = d->subnet + host;
		kept++;
		net_ip_text(*ret, ip, sizeof(ip));
		str_printf(l, sizeof(l), "%s %s %s %s\n", ip, q->id, q->mac, q->names);
		buf_append(&out, l, strlen(l));
		str_printf(l, sizeof(l), "%s\t%s\n", ip, q->names);
		buf_append(&hosts, l, strlen(l));
	}
	/* unchanged, with the DNS server running exactly when there are leases: done */
	if (!changed && (!d->dns || (kept > 0) == (dns_pid(p, d) > 0))) {
		r = 0;
		goto done;
	}
	r = write_file_atomic(path, out.len ? (const char *)out.data : "", out.len, 0644);
	if (r < 0) {
		r = cove_error_set(err, -r, "cannot write '%s': %s", path, strerror(-r));
		goto done;
	}
	if (d->dns && buf_append(&hosts, "", 1) == 0)
		r = dns_sync(p, d, (const char *)hosts.data, kept, err);
done:
	buf_done(&out);
	buf_done(&hosts);
	return r;
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
	    (r = ifreq_ioctl(sock, SIOCBRADDIF, &ifr, bridge)) < 0 ||
	    (r = set_flag(sock, name, true)) < 0) {
		close(fd);
		return cove_error_set(err, sock < 0 ? errno : -r, "cannot set up the tap %s: %s",
				      name, strerror(sock < 0 ? errno : -r));
	}
	return fd;
}

/* ---- /etc files ---------------------------------------------------------------------------- */

/* resolv.conf: the network's DNS server, else the host's resolvers that a container can reach
 * (not loopback); the host's search domains and options; --dns and --dns-search replace. */
static char *resolv_for(const struct container_spec *s, const uint32_t *servers, size_t n)
{
	_cleanup_fclose_ FILE *f = fopen("/etc/resolv.conf", "re");
	struct buf b = BUF_INIT(PROTO_MAX_ETC_FILE - 1);
	uint32_t server = n ? servers[0] : 0;
	char line[512], ip[16];
	bool any = false;

	for (size_t i = 0; i < s->ndns; i++) {
		str_printf(line, sizeof(line), "nameserver %s\n", s->dns[i]);
		buf_append(&b, line, strlen(line));
		any = true;
	}
	if (!any && n > 1) {
		/* several networks with names: cove-init's resolver asks each in turn */
		str_copy(line, sizeof(line), "nameserver 127.0.0.11\n# cove: names from");
		buf_append(&b, line, strlen(line));
		for (size_t i = 0; i < n; i++) {
			net_ip_text(servers[i], ip, sizeof(ip));
			str_printf(line, sizeof(line), " %s", ip);
			buf_append(&b, line, strlen(line));
		}
		buf_append(&b, "\n", 1);
		any = true;
	}
	if (!any && server) {
		net_ip_text(server, ip, sizeof(ip));
		str_printf(line, sizeof(line), "nameserver %s\n", ip);
		buf_append(&b, line, strlen(line));
		any = true;
	}
	if (s->ndns_search) {
		buf_append(&b, "search", 6);
		for (size_t i = 0; i < s->ndns_search; i++) {
			buf_append(&b, " ", 1);
			buf_append(&b, s->dns_search[i], strlen(s->dns_search[i]));
		}
		buf_append(&b, "\n", 1);
	}
	if (s->ndns_options) {
		buf_append(&b, "options", 7);
		for (size_t i = 0; i < s->ndns_options; i++) {
			buf_append(&b, " ", 1);
			buf_append(&b, s->dns_options[i], strlen(s->dns_options[i]));
		}
		buf_append(&b, "\n", 1);
	}
	while (f && fgets(line, sizeof(line), f)) {
		char word[64], arg[256];

		if (sscanf(line, "%63s %255s", word, arg) != 2)
			continue;
		if (strcmp(word, "nameserver") == 0) {
			if (s->ndns || server || strncmp(arg, "127.", 4) == 0 ||
			    strcmp(arg, "::1") == 0)
				continue;
			any = true;
		} else if (!(strcmp(word, "search") == 0 && !s->ndns_search) &&
			   !(strcmp(word, "options") == 0 && !s->ndns_options)) {
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

/* hosts: localhost, the container's own address and name, host.cove.internal, --add-host */
static char *hosts_for(const struct container_spec *s, uint32_t addr, uint32_t host_gw)
{
	struct buf b = BUF_INIT(PROTO_MAX_ETC_FILE - 1);
	char line[600], ip[16], gw[16];
	const char *hostname = s->hostname && *s->hostname ? s->hostname : "localhost";

	net_ip_text(addr, ip, sizeof(ip));
	net_ip_text(host_gw, gw, sizeof(gw));
	str_printf(line, sizeof(line),
		   "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
		   "%s\t%s\n%s\thost.cove.internal\n",
		   ip, hostname, gw);
	buf_append(&b, line, strlen(line));
	for (size_t i = 0; i < s->nadd_hosts; i++) {
		const char *h = s->add_hosts[i], *colon = strchr(h, ':');

		if (!colon)
			continue;
		str_printf(line, sizeof(line), "%s\t%.*s\n",
			   strcmp(colon + 1, "host-gateway") == 0 ? gw : colon + 1,
			   (int)(colon - h), h);
		buf_append(&b, line, strlen(line));
	}
	if (buf_append(&b, "", 1) < 0) {
		buf_done(&b);
		return NULL;
	}
	return (char *)b.data;
}

/* ---- attach / detach ---------------------------------------------------------------------- */

static void mac_of(uint32_t addr, uint8_t mac[6])
{
	const uint8_t m[6] = { 0x02, 0x63, (uint8_t)(addr >> 24), (uint8_t)(addr >> 16),
			       (uint8_t)(addr >> 8), (uint8_t)addr };

	memcpy(mac, m, 6);
}

static void mac_text(const uint8_t m[6], char buf[18])
{
	str_printf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

static int attach_user(const struct container_spec *s, struct net_attachment *a,
		       struct cove_error *err)
{
	char why[160];

	a->user_mode = true;
	str_copy(a->def.name, sizeof(a->def.name), NET_USER);
	a->def.subnet = USER_SUBNET;
	a->def.prefix = 24;
	a->def.gateway = USER_GATEWAY;
	mac_of(USER_GUEST, a->net.mac);
	if (s->mac && net_parse_mac(s->mac, a->net.mac, why, sizeof(why)) < 0)
		return cove_error_set(err, EINVAL, "--mac-address %s", why);
	a->net.addr = USER_GUEST;
	a->net.prefix = 24;
	a->net.gateway = USER_GATEWAY;
	a->net.mtu = NET_MTU;
	a->hosts = hosts_for(s, USER_GUEST, USER_GATEWAY);
	{
		const uint32_t dns = USER_DNS;

		a->resolv = resolv_for(s, &dns, 1);
	}
	if (!a->hosts || !a->resolv)
		return cove_error_set(err, ENOMEM, "out of memory");
	a->attached = true;
	return 0;
}

/* The NIC of index on a bridge network: its lease (the first NIC's with --ip and
 * --mac-address) and its tap; the first NIC's also has the default route. */
static int attach_bridge(const struct cove_paths *p, const struct container_spec *s,
			 const char *network, unsigned index, struct net_attachment *ret,
			 struct cove_error *err)
{
	struct net_attachment a = { .tap_fd = -1 };
	char names[NAMES_MAX], mac[18], why[160];
	struct lease_req q = { .id = s->id, .mac = mac, .names = names };
	uint32_t addr = 0;
	size_t len;
	int r;

	if (geteuid() != 0)
		return cove_error_set(err, EPERM,
				      "--network %s needs root; without root a container has "
				      "--network user (QEMU's user networking) or none",
				      network);
	r = def_find(p, network, true, &a.def, err);
	if (r == 0)
		r = bridge_ensure(p, &a.def, err);
	if (r < 0)
		return r;
	if (index == 0 && s->ip)
		(void)ip_parse(s->ip, &q.want);
	/* the names others find it by on a network with DNS */
	str_printf(names, sizeof(names), "%s %.12s", s->name ? s->name : s->id, s->id);
	for (size_t i = 0; i < s->naliases; i++) {
		len = strlen(names);
		str_printf(names + len, sizeof(names) - len, " %s", s->aliases[i]);
	}
	if (index == 0 && s->mac && net_parse_mac(s->mac, a.net.mac, why, sizeof(why)) < 0)
		return cove_error_set(err, EINVAL, "--mac-address %s", why);
	/* the MAC made from the address is known only once it is leased: "-" until then */
	str_copy(mac, sizeof(mac), index == 0 && s->mac ? s->mac : "-");
	r = leases_update(p, &a.def, s->id, &q, &addr, err);
	if (r < 0)
		return r;
	if (index != 0 || !s->mac)
		mac_of(addr, a.net.mac);
	if (index == 0)
		str_printf(a.tap, sizeof(a.tap), "cv%.12s", s->id);
	else
		str_printf(a.tap, sizeof(a.tap), "cx%.11s%u", s->id, index);
	a.tap_fd = tap_open(a.tap, a.def.bridge, err);
	if (a.tap_fd < 0) {
		struct cove_error ignored = { 0 };

		(void)leases_update(p, &a.def, s->id, NULL, NULL, &ignored);
		return -EIO;
	}
	a.net.addr = addr;
	a.net.prefix = (uint8_t)a.def.prefix;
	a.net.gateway = index == 0 ? a.def.gateway : 0;
	a.net.mtu = NET_MTU;
	a.attached = true;
	*ret = a;
	return 0;
}

int net_attach(const struct cove_paths *p, const struct container_spec *s,
	       struct net_attachment ret[PROTO_MAX_NICS], size_t *ret_n, struct cove_error *err)
{
	const char *network = net_canonical(s->network);
	size_t n = 0;
	int r = 0;

	*ret_n = 0;
	for (size_t i = 0; i < PROTO_MAX_NICS; i++)
		ret[i] = (struct net_attachment){ .tap_fd = -1 };
	if (strcmp(network, "none") == 0)
		return 0;
	if (strcmp(network, NET_USER) == 0) {
		r = attach_user(s, &ret[0], err);
		if (r < 0) {
			net_detach(p, s->id, &ret[0]);
			return r;
		}
		*ret_n = 1;
		return 0;
	}
	r = attach_bridge(p, s, network, 0, &ret[n], err);
	if (r == 0)
		n++;
	for (size_t i = 0; r == 0 && i < s->nmore_networks && n < PROTO_MAX_NICS; i++) {
		const char *more = net_canonical(s->more_networks[i]);

		if (strcmp(more, "none") == 0 || strcmp(more, NET_USER) == 0)
			continue; /* net_check_spec refused these; a hand-edited config.json */
		r = attach_bridge(p, s, more, (unsigned)n, &ret[n], err);
		if (r == 0)
			n++;
	}
	if (r == 0) {
		/* the /etc files: names from the first network's DNS server, or from every
		 * network's where two or more have one */
		uint32_t servers[PROTO_MAX_NICS];
		size_t k = 0;

		for (size_t i = 0; i < n; i++)
			if (ret[i].def.dns)
				servers[k++] = ret[i].def.gateway;
		if (k == 1 && !ret[0].def.dns)
			k = 0;
		ret[0].hosts = hosts_for(s, ret[0].net.addr, ret[0].def.gateway);
		ret[0].resolv = resolv_for(s, servers, k);
		if (!ret[0].hosts || !ret[0].resolv)
			r = cove_error_set(err, ENOMEM, "out of memory");
	}
	if (r < 0) {
		while (n)
			net_detach(p, s->id, &ret[--n]);
		return r;
	}
	*ret_n = n;
	return 0;
}

void net_detach(const struct cove_paths *p, const char *id, struct net_attachment *a)
{
	struct cove_error ignored = { 0 };

	if (a->def.name[0] && !a->user_mode)
		(void)leases_update(p, &a->def, id, NULL, NULL, &ignored);
	closep(&a->tap_fd);
	free(a->hosts);
	free(a->resolv);
	a->hosts = a->resolv = NULL;
	a->attached = false;
}

void net_addr_text(const struct net_attachment *a, char ip[16], char gw[16], char mac[18])
{
	net_ip_text(a->net.addr, ip, 16);
	net_ip_text(a->net.gateway, gw, 16);
	mac_text(a->net.mac, mac);
}

/* ---- cove network ... ---------------------------------------------------------------------- */

/* The first /24 of 10.89.1.0 to 10.89.255.0, then 10.90.x.0..., that neither a host route nor
 * another network overlaps. */
static int pick_subnet(const struct net_def *defs, size_t n, uint32_t *ret)
{
	for (uint32_t net = 0x0a590100; net < 0x0a600000; net += 0x100) {
		bool taken = route_overlaps(net, 24);

		for (size_t i = 0; i < n && !taken; i++)
			taken = overlap(net, 24, defs[i].subnet, defs[i].prefix);
		if (!taken) {
			*ret = net;
			return 0;
		}
	}
	return -EADDRNOTAVAIL;
}

int net_create(const struct cove_paths *p, const struct net_create_request *q,
	       struct net_def *ret, struct cove_error *err)
{
	_cleanup_free_ struct net_def *defs = NULL;
	_cleanup_close_ int lock = -1;
	struct net_def d = { 0 }, cove;
	char why[160], path[PATH_MAX], subnet[16];
	size_t n = 0;
	int r;

	if (!valid_net_name(q->name))
		return cove_error_set(err, EINVAL,
				      "invalid network name '%s': letters, digits, '_', '.' and '-', "
				      "at most %d, starting with a letter or digit",
				      q->name, NET_NAME_MAX);
	if (reserved_name(q->name))
		return cove_error_set(err, EEXIST, "'%s' is a network cove has already", q->name);
	if (geteuid() != 0)
		return cove_error_set(err, EPERM,
				      "cove network create needs root (a bridge and NAT rules on "
				      "the host); without root containers use --network user");
	/* the default network first, so that a new one never takes its subnet */
	r = def_default(p, &cove, err);
	if (r < 0)
		return r;
	lock = defs_lock(p, err);
	if (lock < 0)
		return lock;
	if (def_load(p, q->name, &d, err) == 0)
		return cove_error_set(err, EEXIST, "network '%s' exists already", q->name);
	if (err->msg[0])
		return -EINVAL;
	if (defs_all(p, &defs, &n) < 0)
		return cove_error_set(err, ENOMEM, "out of memory");
	memset(&d, 0, sizeof(d));
	str_copy(d.name, sizeof(d.name), q->name);
	if (q->subnet) {
		if (cidr_parse(q->subnet, &d.subnet, &d.prefix, why, sizeof(why)) < 0)
			return cove_error_set(err, EINVAL, "invalid --subnet '%s': %s", q->subnet,
					      why);
		for (size_t i = 0; i < n; i++)
			if (overlap(d.subnet, d.prefix, defs[i].subnet, defs[i].prefix)) {
				net_ip_text(defs[i].subnet, subnet, sizeof(subnet));
				return cove_error_set(err, EADDRINUSE,
						      "--subnet %s overlaps network '%s' (%s/%u)",
						      q->subnet, defs[i].name, subnet,
						      defs[i].prefix);
			}
		if (route_overlaps(d.subnet, d.prefix))
			return cove_error_set(err, EADDRINUSE,
					      "--subnet %s overlaps a route of this host's (ip "
					      "route shows them): choose another",
					      q->subnet);
	} else if (q->gateway) {
		return cove_error_set(err, EINVAL, "--gateway needs --subnet");
	} else {
		d.prefix = 24;
		if (pick_subnet(defs, n, &d.subnet) < 0)
			return cove_error_set(err, EADDRNOTAVAIL,
					      "no free /24 in 10.89.1.0 to 10.95.255.0: give --subnet");
	}
	d.gateway = d.subnet + 1;
	if (q->gateway) {
		net_ip_text(d.subnet, subnet, sizeof(subnet));
		if (ip_parse(q->gateway, &d.gateway) < 0)
			return cove_error_set(err, EINVAL, "invalid --gateway '%s': not an IPv4 "
							   "address",
					      q->gateway);
		if (!in_subnet(d.gateway, d.subnet, d.prefix) || d.gateway == d.subnet ||
		    d.gateway == (d.subnet | ~mask_of(d.prefix)))
			return cove_error_set(err, EINVAL,
					      "invalid --gateway '%s': not a host address of %s/%u",
					      q->gateway, subnet, d.prefix);
	}
	if ((r = random_hex(d.id, 32)) < 0)
		return cove_error_set(err, -r, "getrandom failed: %s", strerror(-r));
	str_printf(d.bridge, sizeof(d.bridge), "cove-%.10s", d.id);
	container_timestamp(d.created, sizeof(d.created));
	d.internal = q->internal;
	d.dns = true;
	r = def_save(p, &d, q->labels, err);
	if (r == 0)
		r = bridge_ensure(p, &d, err);
	if (r < 0) {
		bridge_delete(d.bridge);
		def_path(p, d.name, "json", path, sizeof(path));
		unlink(path);
		(void)apply_rules(p, why, sizeof(why));
		return r;
	}
	if (ret)
		*ret = d;
	return 0;
}

/* The names of the containers whose spec names network (running or not), ", "-separated. */
static bool uses_network(const struct container_spec *s, const void *arg)
{
	bool uses = strcmp(net_canonical(s->network), arg) == 0;

	for (size_t k = 0; k < s->nmore_networks; k++)
		uses |= strcmp(net_canonical(s->more_networks[k]), arg) == 0;
	return uses;
}

int net_remove(const struct cove_paths *p, const char *name, struct cove_error *err)
{
	static const char *const exts[] = { "leases", "leases.lock", "hosts", "dns.log", "json" };
	_cleanup_close_ int lock = -1;
	char users[1024], path[PATH_MAX], why[160];
	struct net_def d;
	int r;

	name = net_canonical(name);
	if (reserved_name(name))
		return cove_error_set(err, EPERM, "'%s' is cove's own network and cannot be removed",
				      name);
	r = def_find(p, name, false, &d, err);
	if (r < 0)
		return r;
	if (geteuid() != 0)
		return cove_error_set(err, EPERM, "removing a network needs root");
	lock = defs_lock(p, err);
	if (lock < 0)
		return lock;
	container_users(p, uses_network, name, users, sizeof(users));
	if (users[0])
		return cove_error_set(err, EBUSY,
				      "network '%s' is used by %s: remove %s first (cove rm)", name,
				      users, strchr(users, ',') ? "them" : "it");
	dns_stop(p, &d);
	bridge_delete(d.bridge);
	for (size_t i = 0; i < ARRAY_SIZE(exts); i++) {
		def_path(p, name, exts[i], path, sizeof(path));
		unlink(path);
	}
	r = apply_rules(p, why, sizeof(why));
	if (r < 0)
		return cove_error_set(err, EIO, "network '%s' is removed, but its rules are not: %s",
				      name, why);
	return 0;
}

int net_list(const struct cove_paths *p, struct net_def **ret, size_t *ret_n,
	     struct cove_error *err)
{
	struct net_def cove;

	/* the default network is listed from the start, as docker's bridge is */
	if (geteuid() == 0 && def_default(p, &cove, err) < 0)
		return -EIO;
	if (defs_all(p, ret, ret_n) < 0)
		return cove_error_set(err, ENOMEM, "out of memory");
	return 0;
}

int net_inspect(const struct cove_paths *p, const char *name, json_t **ret,
		struct cove_error *err)
{
	char path[PATH_MAX], subnet[40], gw[16];
	_cleanup_json_ json_t *file = NULL;
	_cleanup_free_ char *text = NULL;
	json_t *j, *ctrs;
	struct net_def d;
	char *line, *next;
	int r;

	name = net_canonical(name);
	r = def_find(p, name, false, &d, err);
	if (r < 0)
		return r;
	def_path(p, name, "json", path, sizeof(path));
	file = json_load_file(path, 0, NULL);
	net_ip_text(d.subnet, subnet, sizeof(subnet));
	str_printf(subnet + strlen(subnet), sizeof(subnet) - strlen(subnet), "/%u", d.prefix);
	net_ip_text(d.gateway, gw, sizeof(gw));
	ctrs = json_object();
	def_path(p, name, "leases", path, sizeof(path));
	if (read_file(path, LEASES_MAX, &text, NULL) < 0)
		text = NULL;
	for (line = text; line && *line; line = next) {
		struct lease e;
		char ip[40], cname[NAMES_MAX];

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (!lease_parse(line, &d, &e) || !container_id_running(p, e.id))
			continue;
		net_ip_text(e.addr, ip, sizeof(ip));
		str_printf(ip + strlen(ip), sizeof(ip) - strlen(ip), "/%u", d.prefix);
		str_copy(cname, sizeof(cname), e.names);
		cname[strcspn(cname, " ")] = '\0';
		if (strcmp(e.mac, "-") == 0) {
			uint8_t m[6];

			mac_of(e.addr, m);
			mac_text(m, e.mac);
		}
		json_object_set_new(ctrs, e.id,
				    json_pack("{s:s, s:s, s:s, s:s}", "Name", cname, "MacAddress",
					      e.mac, "IPv4Address",
					      ip, "IPv6Address", ""));
	}
	j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:{s:s, s:{}, s:[{s:s, s:s}]}, s:b, s:b, "
		      "s:o, s:{s:s}, s:O}",
		      "Name", d.name, "Id", d.id, "Created", d.created, "Scope", "local", "Driver",
		      "bridge", "EnableIPv6", 0, "IPAM", "Driver", "default", "Options", "Config",
		      "Subnet", subnet, "Gateway", gw, "Internal", d.internal, "DNSEnabled", d.dns,
		      "Containers", ctrs, "Options", "com.docker.network.bridge.name", d.bridge,
		      "Labels",
		      json_is_object(json_object_get(file, "Labels")) ? json_object_get(file, "Labels")
								      : json_object());
	if (!j)
		return cove_error_set(err, ENOMEM, "out of memory");
	*ret = j;
	return 0;
}

void net_gc(const struct cove_paths *p)
{
	_cleanup_free_ struct net_def *defs = NULL;
	size_t n = 0;

	if (geteuid() != 0 || defs_all(p, &defs, &n) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		struct cove_error ignored = { 0 };

		(void)leases_update(p, &defs[i], NULL, NULL, NULL, &ignored);
	}
}

int net_connect(const struct cove_paths *p, const char *ref, const char *network, bool connect,
		struct cove_error *err)
{
	struct container c;
	struct container_spec sp;
	const char *name = net_canonical(network), *primary;
	size_t at = SIZE_MAX;
	int r;

	if (strcmp(name, "none") == 0 || strcmp(name, NET_USER) == 0 || strcmp(name, "host") == 0)
		return cove_error_set(err, EINVAL,
				      "'%s' cannot be connected or disconnected: give it to cove run "
				      "--network",
				      name);
	if (connect && (r = net_check_name(p, name, err)) < 0)
		return r;
	r = container_find(p, ref, &c, err);
	if (r < 0)
		return r;
	if (container_lock(&c, 0) < 0)
		return cove_error_set(err, EBUSY,
				      "container %s is running: stop it first (cove stop %s); its "
				      "networks change while it is stopped",
				      c.name, c.name);
	r = container_load_spec(&c, &sp, err);
	if (r < 0) {
		container_unlock(&c);
		return r;
	}
	primary = net_canonical(sp.network);
	for (size_t i = 0; i < sp.nmore_networks; i++)
		if (strcmp(net_canonical(sp.more_networks[i]), name) == 0)
			at = i;
	if (connect) {
		if (strcmp(primary, name) == 0 || at != SIZE_MAX) {
			r = cove_error_set(err, EEXIST, "container %s is on network '%s' already",
					   c.name, name);
		} else if (strcmp(primary, NET_USER) == 0) {
			r = cove_error_set(err, EINVAL,
					   "container %s is on --network user, which stands alone: "
					   "make it again with --network %s",
					   c.name, name);
		} else if (strcmp(primary, "none") == 0) {
			free(sp.network);
			sp.network = strdup(name);
			r = sp.network ? 0 : cove_error_set(err, ENOMEM, "out of memory");
		} else if (sp.nmore_networks + 1 >= PROTO_MAX_NICS) {
			r = cove_error_set(err, E2BIG, "container %s is on %d networks, the most there "
							"may be",
					   c.name, PROTO_MAX_NICS);
		} else {
			char **nv = realloc(sp.more_networks,
					    (sp.nmore_networks + 2) * sizeof(char *));

			if (nv) {
				sp.more_networks = nv;
				nv[sp.nmore_networks] = strdup(name);
				nv[sp.nmore_networks + 1] = NULL;
			}
			if (!nv || !nv[sp.nmore_networks])
				r = cove_error_set(err, ENOMEM, "out of memory");
			else
				sp.nmore_networks++;
		}
	} else if (strcmp(primary, name) == 0) {
		/* its first network goes: the next is first (--ip and --mac-address were the
		 * first's), else it has none */
		free(sp.network);
		free(sp.ip);
		free(sp.mac);
		sp.ip = sp.mac = NULL;
		if (sp.nmore_networks) {
			sp.network = sp.more_networks[0];
			memmove(sp.more_networks, sp.more_networks + 1,
				sp.nmore_networks * sizeof(char *));
			sp.nmore_networks--;
		} else {
			sp.network = strdup("none");
			r = sp.network ? 0 : cove_error_set(err, ENOMEM, "out of memory");
		}
	} else if (at != SIZE_MAX) {
		free(sp.more_networks[at]);
		memmove(sp.more_networks + at, sp.more_networks + at + 1,
			(sp.nmore_networks - at) * sizeof(char *));
		sp.nmore_networks--;
	} else {
		r = cove_error_set(err, ENOENT, "container %s is not on network '%s'", c.name, name);
	}
	if (r == 0)
		r = container_save_spec(&c, &sp, err);
	spec_done(&sp);
	container_unlock(&c);
	return r;
}
