/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cove create / cove run: parse the flags into a request, have the engine make the container
 * (engine/create.c: image, disk, spec), then, for run, start its supervisor and attach to it
 * (or, with -d, return once it runs).
 */
#define _GNU_SOURCE
#include "cli.h"
#include "options.h"
#include "engine/container.h"
#include "engine/create.h"
#include "engine/supervisor.h"

#include "proto/caps.h"


#include "vm/accel.h"
#include "engine/network.h"
#include "engine/ports.h"
#include "engine/spec.h"
#include "engine/volume.h"

#include <limits.h>
#include <string.h>
#include <sys/resource.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>


struct run_opts {
	bool create; /* cove create */
	bool detach;
	const char *cidfile;
	struct create_request q;
};

static int add_env(struct run_opts *o, const char *kv)
{
	struct cove_error err = { 0 };

	if (env_list_add(&o->q.env, &o->q.nenv, kv, &err) < 0) {
		cli_error("%s", err.msg);
		return -EINVAL;
	}
	return 0;
}

/* docker's --user: name|uid[:group|gid]; names are resolved in the image by the guest. */
static bool valid_user(const char *s)
{
	size_t n = strlen(s);
	const char *colon = strchr(s, ':');

	if (n == 0 || n > 256 || s[0] == ':' || (colon && (colon[1] == '\0' || strchr(colon + 1, ':'))))
		return false;
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == '/' || (unsigned char)*p == 0x7f)
			return false;
	return true;
}

static bool valid_hostname(const char *h)
{
	size_t n = strlen(h);

	if (n == 0 || n > 63)
		return false;
	for (const char *p = h; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
			return false;
	return h[0] != '-';
}


static int parse_limit(const char *s, uint64_t *ret)
{
	if (strcmp(s, "-1") == 0 || strcmp(s, "unlimited") == 0) {
		*ret = UINT64_MAX;
		return 0;
	}
	return parse_u64(s, INT64_MAX, ret);
}

/* docker's --ulimit NAME=SOFT[:HARD] */
static int add_ulimit(struct run_opts *o, const char *arg)
{
	char buf[128], *eq, *colon;
	uint64_t soft, hard;
	size_t j;
	int res;

	if (str_copy(buf, sizeof(buf), arg) < 0 || !(eq = strchr(buf, '=')))
		goto bad;
	*eq = '\0';
	colon = strchr(eq + 1, ':');
	if (colon)
		*colon = '\0';
	res = spec_rlimit_parse(buf);
	if (res < 0 || parse_limit(eq + 1, &soft) < 0 ||
	    parse_limit(colon ? colon + 1 : eq + 1, &hard) < 0)
		goto bad;
	if (soft > hard) {
		cli_error("invalid --ulimit '%s': the soft limit is above the hard one", arg);
		return -EINVAL;
	}
	/* a later --ulimit for the same resource wins */
	for (j = 0; j < o->q.nrlimits && o->q.rlimits[j].resource != res; j++)
		;
	if (j == SPEC_MAX_RLIMITS)
		goto bad;
	o->q.rlimits[j] = (struct spec_rlimit){ res, soft, hard };
	if (j == o->q.nrlimits)
		o->q.nrlimits++;
	return 0;
bad:
	cli_error("invalid --ulimit '%s': expected NAME=SOFT[:HARD] with NAME one of core, cpu, "
		  "data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, "
		  "rttime, sigpending, stack, as",
		  arg);
	return -EINVAL;
}

/* --env-file: KEY=VALUE lines; blank lines and # comments skipped; KEY alone copies ours. */
static int add_env_file(struct run_opts *o, const char *path)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	char line[65536];
	unsigned lineno = 0;

	if (!f) {
		cli_error("cannot read --env-file '%s': %s", path, strerror(errno));
		return -EINVAL;
	}
	while (fgets(line, sizeof(line), f)) {
		char *p = line;
		lineno++;
		p[strcspn(p, "\r\n")] = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p || *p == '#')
			continue;
		if (*p == '=' || strcspn(p, " \t") < strcspn(p, "=")) {
			cli_error("invalid --env-file '%s' line %u: '%s' is not KEY=VALUE", path,
				  lineno, p);
			return -EINVAL;
		}
		if (add_env(o, p) < 0)
			return -EINVAL;
	}
	return 0;
}

static int add_cap(json_t **list, const char *name, const char *flag)
{
	uint64_t bits;

	if (caps_parse(name, &bits) < 0) {
		cli_error("invalid %s '%s': not a capability name (e.g. NET_ADMIN, CAP_SYS_TIME, ALL)",
			  flag, name);
		return -EINVAL;
	}
	if (!*list)
		*list = json_array();
	json_array_append_new(*list, json_string(name));
	return 0;
}

static int add_net_flag(struct run_opts *o, int c, const char *value);

enum {
	OPT_RM = 256, OPT_NAME, OPT_CPUS, OPT_ROOTFS, OPT_ENTRYPOINT, OPT_PLATFORM, OPT_ENV_FILE,
	OPT_READ_ONLY, OPT_TMPFS, OPT_ULIMIT, OPT_CAP_ADD, OPT_CAP_DROP, OPT_INIT, OPT_STOP_SIGNAL,
	OPT_STOP_TIMEOUT, OPT_CIDFILE, OPT_SECURITY_OPT, OPT_ACCEL, OPT_LOG_OPT, OPT_NETWORK, OPT_NET,
	OPT_PUBLISH_ALL, OPT_IP, OPT_MAC, OPT_DNS, OPT_DNS_SEARCH, OPT_DNS_OPTION, OPT_DNS_OPT,
	OPT_ADD_HOST, OPT_ALIAS, OPT_NET_ALIAS, OPT_MOUNT, OPT_VOLUMES_FROM,
};

/* run's options; create's are the same without the first (-d) */
static const struct cli_option run_options[] = {
	{ 'd', 'd', "detach", NULL, "run in the background and print the container's ID" },
	{ OPT_RM, 0, "rm", NULL, "remove the container when it exits" },
	{ 'i', 'i', "interactive", NULL, "keep stdin open and send it to the container" },
	{ 't', 't', "tty", NULL,
	  "allocate a terminal in the container (with -i, Ctrl-P\nCtrl-Q detaches and leaves it "
	  "running)" },
	{ 'e', 'e', "env", "K=V", "set an environment variable (K alone: copy it from here)" },
	{ OPT_ENV_FILE, 0, "env-file", "FILE", "read KEY=VALUE lines (# comments) as -e" },
	{ 'w', 'w', "workdir", "DIR", "working directory inside the container" },
	{ 'u', 'u', "user", "USER[:GROUP]",
	  "run as this user (name or UID) and group (name or GID)" },
	{ 'h', 'h', "hostname", "NAME", "container host name (default: the short ID)" },
	{ OPT_NAME, 0, "name", "NAME", "name the container" },
	{ OPT_CPUS, 0, "cpus", "N", "virtual CPUs of the VM; a fraction is rounded up (default 1)" },
	{ 'm', 'm', "memory", "SIZE", "memory of the VM, e.g. 256m, 1g (default 512m)" },
	{ OPT_ROOTFS, 0, "rootfs", "DIR", "use a directory as the root filesystem instead of an image" },
	{ OPT_ENTRYPOINT, 0, "entrypoint", "CMD", "run CMD instead of the image's entrypoint (\"\" for none)" },
	{ OPT_PLATFORM, 0, "platform", "OS/ARCH", "the platform to pull when IMAGE is not here yet" },
	{ OPT_LOG_OPT, 0, "log-opt", "K=V",
	  "the log's rotation: max-size=SIZE (-1: none), max-file=N\n(default 10m, 3 files)" },
	{ OPT_ACCEL, 0, "accel", "kvm|tcg|auto",
	  "what the VM runs on (default: $COVE_ACCEL, else auto:\nKVM where a test boot under it "
	  "worked here, else TCG)" },
	{ OPT_NETWORK, 0, "network", "NAME",
	  "connect it to a network: cove (the default as root:\nits own address on the cove0 "
	  "bridge, NAT out), one\n'cove network create' made, user (QEMU's user\nnetworking, "
	  "the default without root) or none; several --network:\na NIC on each (the first has the "
	  "default route)" },
	{ OPT_NET, 0, "net", "NAME", NULL },
	{ OPT_IP, 0, "ip", "IP", "its address on the network (default: a free one)" },
	{ OPT_MAC, 0, "mac-address", "MAC", "its NIC's MAC address" },
	{ OPT_ALIAS, 0, "network-alias", "NAME",
	  "another name it has on the network's DNS" },
	{ OPT_NET_ALIAS, 0, "net-alias", "NAME", NULL },
	{ OPT_DNS, 0, "dns", "IP", "a DNS server for /etc/resolv.conf (replaces the network's)" },
	{ OPT_DNS_SEARCH, 0, "dns-search", "DOMAIN", "a search domain for /etc/resolv.conf" },
	{ OPT_DNS_OPTION, 0, "dns-option", "OPT", "a resolver option for /etc/resolv.conf (ndots:2)" },
	{ OPT_DNS_OPT, 0, "dns-opt", "OPT", NULL },
	{ OPT_ADD_HOST, 0, "add-host", "NAME:IP",
	  "a line for /etc/hosts (IP host-gateway: the host)" },
	{ 'P', 'P', "publish-all", NULL,
	  "publish every port the image exposes, each on a port\nthe kernel picks" },
	{ 'p', 'p', "publish", "[IP:]HOST:CTR[/udp]",
	  "publish a container port on the host (CTR alone: a\nport the kernel picks; ranges: "
	  "8000-8009:80-89;\nsee 'cove port')" },
	{ 'l', 'l', "label", "K=V", "set a label on the container" },
	{ OPT_READ_ONLY, 0, "read-only", NULL, "mount the root filesystem read-only" },
	{ 'v', 'v', "volume", "[SRC:]PATH[:ro]",
	  "mount a host directory or file (SRC an absolute path),\na named volume (SRC a name; made "
	  "on first use) or\na new anonymous volume (PATH alone)" },
	{ OPT_MOUNT, 0, "mount", "type=T,...",
	  "type=bind|volume|tmpfs,src=..,dst=..[,readonly]\n[,volume-nocopy][,tmpfs-size=..]"
	  "[,tmpfs-mode=..]" },
	{ OPT_VOLUMES_FROM, 0, "volumes-from", "CTR[:ro]",
	  "mount the bind mounts and volumes of another container" },
	{ OPT_TMPFS, 0, "tmpfs", "PATH[:OPTS]", "mount a tmpfs (OPTS: size=64m,mode=1777,ro,noexec,...)" },
	{ OPT_ULIMIT, 0, "ulimit", "NAME=SOFT[:HARD]", "set a resource limit (nofile, nproc, core, ...)" },
	{ OPT_CAP_ADD, 0, "cap-add", "CAP", "add a capability (or ALL) to the default set" },
	{ OPT_CAP_DROP, 0, "cap-drop", "CAP", "drop a capability (or ALL)" },
	{ OPT_SECURITY_OPT, 0, "security-opt", "OPT",
	  "seccomp=unconfined: run without the seccomp filter;\nno-new-privileges (always on)" },
	{ OPT_INIT, 0, "init", NULL, "run a small init as PID 1 that reaps zombies" },
	{ OPT_STOP_SIGNAL, 0, "stop-signal", "SIG",
	  "signal that stops the container (default: the image's,\nor SIGTERM)" },
	{ OPT_STOP_TIMEOUT, 0, "stop-timeout", "SECS", "seconds before stop kills it (default 10)" },
	{ OPT_CIDFILE, 0, "cidfile", "FILE", "write the container's ID to FILE (which must not exist)" },
	{ 0 },
};

#define RUN_MORE                                                                                   \
	"With --rootfs DIR instead of IMAGE, a directory is the root filesystem.\n"                \
	"IMAGE is pulled from its registry when it is not here yet; busybox is available\n"        \
	"offline. The image's entrypoint, command, environment, working directory and user\n"      \
	"apply unless overridden.\n"                                                               \
	"Exit status: the command's own; 125 if cove failed, 126 if the command cannot be\n"       \
	"executed, 127 if it was not found."

static const struct cli_verb run_verb = {
	"run", "[OPTIONS] IMAGE|--rootfs DIR [COMMAND [ARG...]]",
	"Run a command in a new container, in a virtual machine of its own.", run_options,
	RUN_MORE, .command_follows = true, .max_operands = -1,
};
static const struct cli_verb create_verb = {
	"create", "[OPTIONS] IMAGE|--rootfs DIR [COMMAND [ARG...]]",
	"Create a container, in a virtual machine of its own, without starting it; print its ID.",
	run_options + 1, RUN_MORE, .command_follows = true, .max_operands = -1,
};

/* -v and --mount, checked as given (a --mount of type tmpfs is a --tmpfs) */
static int add_mount(struct run_opts *o, int c, const char *value)
{
	struct mount_spec m;
	char why[PATH_MAX + 256], *tmpfs = NULL, *f;
	int r = c == 'v' ? mount_parse_v(value, &m, why, sizeof(why))
			 : mount_parse_mount(value, &m, &tmpfs, why, sizeof(why));

	if (r < 0) {
		cli_error("%s", why);
		return -EINVAL;
	}
	if (tmpfs) {
		if (!o->q.tmpfs)
			o->q.tmpfs = json_array();
		json_array_append_new(o->q.tmpfs, json_string(tmpfs));
		free(tmpfs);
		return 0;
	}
	f = mount_format(&m);
	if (!f) {
		cli_error("out of memory");
		return -EINVAL;
	}
	if (!o->q.mounts)
		o->q.mounts = json_array();
	json_array_append_new(o->q.mounts, json_string(f));
	free(f);
	return 0;
}

/* --ip, --mac-address, --dns, --dns-search, --add-host, --network-alias: checked as given */
static int add_net_flag(struct run_opts *o, int c, const char *value)
{
	json_t **list = c == OPT_DNS	      ? &o->q.dns
			: c == OPT_DNS_SEARCH ? &o->q.dns_search
			: c == OPT_DNS_OPTION ? &o->q.dns_options
			: c == OPT_ADD_HOST   ? &o->q.add_hosts
					      : &o->q.aliases;
	struct container_spec probe = { 0 };
	char *one[2] = { (char *)value, NULL }, why[256];
	const char *flag = c == OPT_IP		? "--ip"
			   : c == OPT_MAC	? "--mac-address"
			   : c == OPT_DNS	? "--dns"
			   : c == OPT_DNS_SEARCH ? "--dns-search"
			   : c == OPT_DNS_OPTION ? "--dns-option"
			   : c == OPT_ADD_HOST	? "--add-host"
						: "--network-alias";

	switch (c) {
	case OPT_IP:
		probe.ip = one[0];
		break;
	case OPT_MAC:
		probe.mac = one[0];
		break;
	case OPT_DNS:
		probe.dns = one, probe.ndns = 1;
		break;
	case OPT_DNS_SEARCH:
		probe.dns_search = one, probe.ndns_search = 1;
		break;
	case OPT_DNS_OPTION:
		probe.dns_options = one, probe.ndns_options = 1;
		break;
	case OPT_ADD_HOST:
		probe.add_hosts = one, probe.nadd_hosts = 1;
		break;
	default:
		probe.aliases = one, probe.naliases = 1;
		break;
	}
	if (net_check_fields(&probe, why, sizeof(why)) < 0) {
		cli_error("invalid %s: %s", flag, why);
		return -EINVAL;
	}
	if (c == OPT_IP) {
		o->q.ip = value;
	} else if (c == OPT_MAC) {
		o->q.mac = value;
	} else {
		if (!*list)
			*list = json_array();
		json_array_append_new(*list, json_string(value));
	}
	return 0;
}

static int run_opt(int c, const char *optarg, void *ud)
{
	struct run_opts *o = ud;
	uint64_t v;

	switch (c) {
	case OPT_RM:
		o->q.rm = true;
		break;
	case 'i':
		o->q.interactive = true;
		break;
	case 't':
		o->q.tty = true;
		break;
	case 'e':
		if (add_env(o, optarg) < 0)
			return -EINVAL;
		break;
	case 'w':
		if (cli_check_workdir(optarg) < 0)
			return -EINVAL;
		o->q.workdir = optarg;
		break;
	case 'u':
		if (!valid_user(optarg)) {
			cli_error("invalid --user '%s': expected NAME|UID[:GROUP|GID]", optarg);
			return -EINVAL;
		}
		o->q.user = optarg;
		break;
	case 'h':
		if (!valid_hostname(optarg)) {
			cli_error("invalid hostname '%s': use letters, digits, '-' and '.', at "
				  "most 63 characters",
				  optarg);
			return -EINVAL;
		}
		o->q.hostname = optarg;
		break;
	case OPT_NAME:
		if (!container_valid_name(optarg)) {
			cli_error("invalid container name '%s': use [a-zA-Z0-9][a-zA-Z0-9_.-]*, "
				  "at most 64 characters",
				  optarg);
			return -EINVAL;
		}
		o->q.name = optarg;
		break;
	case OPT_CPUS:
		if (cli_parse_cpus(optarg, &o->q.cpus) < 0)
			return -EINVAL;
		break;
	case 'm':
		if (cli_parse_memory(optarg, &o->q.memory) < 0)
			return -EINVAL;
		break;
	case OPT_ROOTFS:
		o->q.rootfs = optarg;
		break;
	case OPT_ENTRYPOINT:
		o->q.entrypoint = optarg;
		break;
	case OPT_PLATFORM:
		o->q.platform = optarg;
		break;
	case 'd':
		o->detach = true;
		break;
	case OPT_ENV_FILE:
		if (add_env_file(o, optarg) < 0)
			return -EINVAL;
		break;
	case 'l':
		if (cli_add_label(&o->q.labels, optarg) < 0)
			return -EINVAL;
		break;
	case OPT_READ_ONLY:
		o->q.read_only = true;
		break;
	case OPT_TMPFS:
		if (optarg[0] != '/' || strlen(optarg) > 4096) {
			cli_error("invalid --tmpfs '%s': expected an absolute PATH[:OPTIONS]",
				  optarg);
			return -EINVAL;
		}
		if (!o->q.tmpfs)
			o->q.tmpfs = json_array();
		json_array_append_new(o->q.tmpfs, json_string(optarg));
		break;
	case 'v':
	case OPT_MOUNT:
		if (add_mount(o, c, optarg) < 0)
			return -EINVAL;
		break;
	case OPT_VOLUMES_FROM:
		if (strlen(optarg) > 256) {
			cli_error("invalid --volumes-from '%s'", optarg);
			return -EINVAL;
		}
		if (!o->q.volumes_from)
			o->q.volumes_from = json_array();
		json_array_append_new(o->q.volumes_from, json_string(optarg));
		break;
	case OPT_ULIMIT:
		if (add_ulimit(o, optarg) < 0)
			return -EINVAL;
		break;
	case OPT_CAP_ADD:
		if (add_cap(&o->q.cap_add, optarg, "--cap-add") < 0)
			return -EINVAL;
		break;
	case OPT_CAP_DROP:
		if (add_cap(&o->q.cap_drop, optarg, "--cap-drop") < 0)
			return -EINVAL;
		break;
	case OPT_INIT:
		o->q.init = true;
		break;
	case OPT_STOP_SIGNAL:
		if (signal_parse(optarg, &o->q.stop_signal) < 0) {
			cli_error("invalid --stop-signal '%s': expected a signal name or number "
				  "(e.g. SIGTERM, 15)",
				  optarg);
			return -EINVAL;
		}
		break;
	case OPT_STOP_TIMEOUT:
		if (parse_u64(optarg, 86400, &v) < 0) {
			cli_error("invalid --stop-timeout '%s': expected seconds, 0 to 86400",
				  optarg);
			return -EINVAL;
		}
		o->q.stop_timeout = (int)v;
		break;
	case OPT_CIDFILE:
		o->cidfile = optarg;
		break;
	case OPT_ACCEL:
		o->q.accel = optarg; /* checked with COVE_ACCEL, below */
		break;
	case 'p': {
		struct port_map pm[64];
		char why[160], canon[64];
		size_t n;

		if (port_parse_all(optarg, pm, ARRAY_SIZE(pm), &n, why, sizeof(why)) < 0) {
			cli_error("invalid -p '%s': %s", optarg, why);
			return -EINVAL;
		}
		if (!o->q.ports)
			o->q.ports = json_array();
		for (size_t i = 0; i < n; i++) {
			port_format(&pm[i], canon, sizeof(canon));
			json_array_append_new(o->q.ports, json_string(canon));
		}
		break;
	}
	case 'P':
		o->q.publish_all = true;
		break;
	case OPT_NETWORK:
	case OPT_NET:
		/* whether they exist is asked before anything is made (container_make) */
		if (!o->q.network) {
			o->q.network = optarg;
			break;
		}
		if (!o->q.more_networks)
			o->q.more_networks = json_array();
		json_array_append_new(o->q.more_networks, json_string(optarg));
		break;
	case OPT_IP:
	case OPT_MAC:
	case OPT_DNS:
	case OPT_DNS_SEARCH:
	case OPT_ADD_HOST:
	case OPT_ALIAS:
	case OPT_NET_ALIAS:
		return add_net_flag(o, c, optarg);
	case OPT_DNS_OPTION:
	case OPT_DNS_OPT:
		return add_net_flag(o, OPT_DNS_OPTION, optarg);
	case OPT_LOG_OPT:
		if (strncmp(optarg, "max-size=", 9) == 0) {
			if (strcmp(optarg + 9, "-1") == 0) {
				o->q.log_unlimited = true;
				break;
			}
			if (parse_size(optarg + 9, &v) == 0 && v >= 4096) {
				o->q.log_max_size = v;
				o->q.log_unlimited = false;
				break;
			}
		} else if (strncmp(optarg, "max-file=", 9) == 0) {
			if (parse_u64(optarg + 9, 100, &v) == 0 && v >= 1) {
				o->q.log_max_files = (unsigned)v;
				break;
			}
		}
		cli_error("invalid --log-opt '%s': cove takes max-size=SIZE (at least 4k, or -1 for "
			  "no limit) and max-file=N (1 to 100)",
			  optarg);
		return -EINVAL;
	case OPT_SECURITY_OPT:
		if (strcmp(optarg, "seccomp=unconfined") == 0 ||
		    strcmp(optarg, "seccomp:unconfined") == 0) {
			o->q.unconfined = true;
		} else if (strcmp(optarg, "no-new-privileges") == 0 ||
			   strcmp(optarg, "no-new-privileges=true") == 0 ||
			   strcmp(optarg, "no-new-privileges:true") == 0) {
			/* always on */
		} else {
			cli_error("unsupported --security-opt '%s': cove knows "
				  "seccomp=unconfined and no-new-privileges",
				  optarg);
			return -EINVAL;
		}
		break;
	}
	return 0;
}


/* Claim the --cidfile before anything is created (docker refuses an existing one). */
static int open_cidfile(const char *path, struct cove_error *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

	if (fd < 0 && errno == EEXIST)
		return cove_error_set(err, EEXIST,
				      "--cidfile '%s' already exists; remove it or choose another",
				      path);
	if (fd < 0)
		return cove_error_set(err, errno, "cannot create --cidfile '%s': %s", path,
				      strerror(errno));
	return fd;
}


static int run_or_create(int argc, char **argv, bool create)
{
	struct run_opts o = { .create = create,
			      .q = { .cpus = 1, .memory = SPEC_DEFAULT_MEMORY, .stop_timeout = -1 } };
	struct cove_error err = { 0 };
	struct cove_paths paths;
	struct container ct = { .lock_fd = -1 };
	struct container_spec sp = { 0 };
	struct cli_progress progress;
	bool made = false;
	int first, r, exit_code = EXIT_COVE, cidfd = -1;

	r = cli_parse(create ? &create_verb : &run_verb, argc, argv, run_opt, &o, &first);
	if (r != 0)
		goto out;
	if (!o.q.rootfs && first >= argc) {
		cli_error("missing IMAGE; see 'cove %s --help'", create ? "create" : "run");
		r = -EINVAL;
		goto out;
	}
	if (!o.q.rootfs)
		o.q.image = argv[first++];
	o.q.args = argv + first;
	o.q.nargs = (size_t)(argc - first);
	if (paths_init(&paths, &err) < 0)
		goto fail;
	{
		enum vm_accel a;
		if (vm_accel_wanted(o.q.accel, &a, &err) < 0) /* a bad one, before anything is made */
			goto fail;
	}
	if (!create) {
		char qemu[PATH_MAX];
		if (vm_find_qemu(qemu, sizeof(qemu), &err) < 0)
			goto fail;
	}
	if (o.q.tty && o.q.interactive && !o.detach && !create && !isatty(0)) {
		cove_error_set(&err, ENOTTY,
			       "-it needs a terminal on stdin; drop -t, or run from a terminal");
		goto fail;
	}
	/* claimed before anything is made (docker refuses an existing one) */
	if (o.cidfile && (cidfd = open_cidfile(o.cidfile, &err)) < 0)
		goto fail;

	cli_progress_init(&progress, o.q.image, false);
	if (container_make(&paths, &o.q, cli_progress, &progress, &ct, &sp, &err) < 0)
		goto fail;
	made = true;
	if (cidfd >= 0 && write_full(cidfd, ct.id, strlen(ct.id)) < 0) {
		cove_error_set(&err, errno, "cannot write --cidfile '%s': %s", o.cidfile,
			       strerror(errno));
		goto fail;
	}
	closep(&cidfd);
	if (create) {
		printf("%s\n", ct.id);
		ct.created = false; /* it stays */
		exit_code = 0;
		goto out;
	}
	exit_code = container_start_attached(&paths, &ct, &sp, !o.detach, o.q.interactive,
					     o.q.tty, cli_notice, &err);
	if (exit_code < 0) {
		if (err.msg[0])
			cli_error("%s", err.msg);
		exit_code = -exit_code;
	} else if (o.detach) {
		printf("%s\n", ct.id);
	}
	goto out;

fail:
	if (cidfd >= 0) {
		closep(&cidfd);
		unlink(o.cidfile); /* ours, made above: nothing to point at */
	}
	terminal_restore();
	cli_error("%s", err.msg);
	exit_code = EXIT_COVE;
	if (made) {
		container_abandon(&ct);
		volumes_release(&paths, &sp);
	}
out:
	container_unlock(&ct);
	if (made)
		spec_done(&sp);
	env_list_free(o.q.env, o.q.nenv);
	json_decref(o.q.labels);
	json_decref(o.q.tmpfs);
	json_decref(o.q.mounts);
	json_decref(o.q.volumes_from);
	json_decref(o.q.cap_add);
	json_decref(o.q.ports);
	json_decref(o.q.more_networks);
	json_decref(o.q.dns);
	json_decref(o.q.dns_search);
	json_decref(o.q.dns_options);
	json_decref(o.q.add_hosts);
	json_decref(o.q.aliases);
	json_decref(o.q.cap_drop);
	if (r > 0)
		return 0; /* --help */
	return r == -EINVAL ? EXIT_COVE : exit_code;
}

int cmd_run(int argc, char **argv)
{
	return run_or_create(argc, argv, false);
}

int cmd_create(int argc, char **argv)
{
	return run_or_create(argc, argv, true);
}
