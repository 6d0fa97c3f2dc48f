/* SPDX-License-Identifier: Apache-2.0 */
/* cove run: create a container, boot its VM, run its command attached, return its status. */
#define _GNU_SOURCE
#include "cli.h"
#include "container.h"
#include "images.h"

#include "image/archives.h"
#include "image/pull.h"

#include <getopt.h>
#include <limits.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_MEMORY (512ULL << 20)
#define MIN_MEMORY (64ULL << 20)
#define MAX_CPUS 64
#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: cove run [OPTIONS] IMAGE [COMMAND [ARG...]]\n"
		"       cove run [OPTIONS] --rootfs DIR [COMMAND [ARG...]]\n"
		"\n"
		"Run a command in a new container, in a virtual machine of its own.\n"
		"\n"
		"Options:\n"
		"      --rm                 remove the container when it exits\n"
		"  -i, --interactive        keep stdin open and send it to the container\n"
		"  -t, --tty                allocate a terminal in the container\n"
		"  -e, --env K=V            set an environment variable (K alone: copy it from here)\n"
		"  -w, --workdir DIR        working directory inside the container\n"
		"  -u, --user USER[:GROUP]  run as this user (name or UID) and group (name or GID)\n"
		"  -h, --hostname NAME      container host name (default: the short ID)\n"
		"      --name NAME          name the container\n"
		"      --cpus N             virtual CPUs of the VM (default 1)\n"
		"  -m, --memory SIZE        memory of the VM, e.g. 256m, 1g (default 512m)\n"
		"      --rootfs DIR         use a directory as the root filesystem instead of an image\n"
		"      --entrypoint CMD     run CMD instead of the image's entrypoint (\"\" for none)\n"
		"      --platform OS/ARCH   the platform to pull when IMAGE is not here yet\n"
		"      --help               show this help\n"
		"\n"
		"IMAGE is pulled from its registry when it is not here yet; busybox is available\n"
		"offline. The image's entrypoint, command, environment, working directory and user\n"
		"apply unless overridden.\n"
		"Exit status: the command's own; 125 if cove failed, 126 if the command cannot be\n"
		"executed, 127 if it was not found.\n");
}

struct run_opts {
	bool rm, interactive, tty;
	char **env;
	size_t envc;
	const char *workdir;
	const char *user;
	const char *hostname;
	const char *name;
	const char *rootfs;
	const char *entrypoint;
	const char *platform;
	unsigned cpus;
	uint64_t memory;
};

static int add_env(struct run_opts *o, const char *kv)
{
	const char *eq = strchr(kv, '=');
	char **n;
	char *s;

	if (kv[0] == '=' || kv[0] == '\0') {
		cli_error("invalid environment variable '%s': expected KEY=VALUE", kv);
		return -EINVAL;
	}
	if (!eq) {
		const char *v = getenv(kv);
		size_t len;

		if (!v)
			return 0; /* docker: -e K with K unset here sets nothing */
		len = strlen(kv) + strlen(v) + 2;
		s = malloc(len);
		if (!s)
			return -ENOMEM;
		str_printf(s, len, "%s=%s", kv, v);
	} else {
		s = strdup(kv);
		if (!s)
			return -ENOMEM;
	}
	n = realloc(o->env, (o->envc + 2) * sizeof(char *));
	if (!n) {
		free(s);
		return -ENOMEM;
	}
	o->env = n;
	o->env[o->envc++] = s;
	o->env[o->envc] = NULL;
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

/* Put every "K=V" of add over base, later ones winning, into a new NULL-terminated array. */
static char **merge_env(char **base, size_t nbase, char **add, size_t nadd, uint32_t *ret_n)
{
	char **out = calloc(nbase + nadd + 1, sizeof(char *));
	size_t n = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < nbase + nadd; i++) {
		char *kv = i < nbase ? base[i] : add[i - nbase];
		size_t klen = strcspn(kv, "=");
		size_t j;

		for (j = 0; j < n; j++)
			if (strncmp(out[j], kv, klen) == 0 && out[j][klen] == '=')
				break;
		out[j] = kv;
		if (j == n)
			n++;
	}
	out[n] = NULL;
	*ret_n = (uint32_t)n;
	return out;
}

static int boot_timeout_ms(bool kvm)
{
	const char *s = getenv("COVE_BOOT_TIMEOUT");
	uint64_t v;

	if (s && parse_u64(s, 3600, &v) == 0 && v > 0)
		return (int)v * 1000;
	return kvm ? 10000 : 30000;
}

static int parse_args(int argc, char **argv, struct run_opts *o, int *ret_optind)
{
	enum { OPT_RM = 256, OPT_NAME, OPT_CPUS, OPT_ROOTFS, OPT_HELP, OPT_ENTRYPOINT, OPT_PLATFORM };
	static const struct option longopts[] = {
		{ "rm", no_argument, NULL, OPT_RM },
		{ "interactive", no_argument, NULL, 'i' },
		{ "tty", no_argument, NULL, 't' },
		{ "env", required_argument, NULL, 'e' },
		{ "workdir", required_argument, NULL, 'w' },
		{ "user", required_argument, NULL, 'u' },
		{ "hostname", required_argument, NULL, 'h' },
		{ "name", required_argument, NULL, OPT_NAME },
		{ "cpus", required_argument, NULL, OPT_CPUS },
		{ "memory", required_argument, NULL, 'm' },
		{ "rootfs", required_argument, NULL, OPT_ROOTFS },
		{ "entrypoint", required_argument, NULL, OPT_ENTRYPOINT },
		{ "platform", required_argument, NULL, OPT_PLATFORM },
		{ "help", no_argument, NULL, OPT_HELP },
		{ "detach", no_argument, NULL, 'd' },
		{ 0 },
	};
	uint64_t v;
	int c;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+ite:w:u:h:m:d", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_RM:
			o->rm = true;
			break;
		case 'i':
			o->interactive = true;
			break;
		case 't':
			o->tty = true;
			break;
		case 'e':
			if (add_env(o, optarg) < 0)
				return -EINVAL;
			break;
		case 'w':
			if (optarg[0] != '/') {
				cli_error("invalid working directory '%s': it must be an absolute path",
					  optarg);
				return -EINVAL;
			}
			o->workdir = optarg;
			break;
		case 'u':
			if (!valid_user(optarg)) {
				cli_error("invalid --user '%s': expected NAME|UID[:GROUP|GID]", optarg);
				return -EINVAL;
			}
			o->user = optarg;
			break;
		case 'h':
			if (!valid_hostname(optarg)) {
				cli_error("invalid hostname '%s': use letters, digits, '-' and '.', at "
					  "most 63 characters",
					  optarg);
				return -EINVAL;
			}
			o->hostname = optarg;
			break;
		case OPT_NAME:
			if (!container_valid_name(optarg)) {
				cli_error("invalid container name '%s': use [a-zA-Z0-9][a-zA-Z0-9_.-]*, "
					  "at most 64 characters",
					  optarg);
				return -EINVAL;
			}
			o->name = optarg;
			break;
		case OPT_CPUS: {
			/* docker accepts fractions; a VM has whole CPUs, so round up */
			char *end;
			double d;
			errno = 0;
			d = strtod(optarg, &end);
			if (errno || *end || !(d > 0) || d > MAX_CPUS) {
				cli_error("invalid --cpus '%s': expected a number from 1 to %d", optarg,
					  MAX_CPUS);
				return -EINVAL;
			}
			o->cpus = (unsigned)d;
			if ((double)o->cpus < d)
				o->cpus++;
			break;
		}
		case 'm':
			if (parse_size(optarg, &v) < 0) {
				cli_error("invalid --memory '%s': expected a size such as 256m or 1g",
					  optarg);
				return -EINVAL;
			}
			if (v < MIN_MEMORY) {
				cli_error("--memory %s is too small: a VM needs at least 64m", optarg);
				return -EINVAL;
			}
			if (v > (1ULL << 40)) {
				cli_error("--memory %s is too large", optarg);
				return -EINVAL;
			}
			o->memory = v;
			break;
		case OPT_ROOTFS:
			o->rootfs = optarg;
			break;
		case OPT_ENTRYPOINT:
			o->entrypoint = optarg;
			break;
		case OPT_PLATFORM:
			o->platform = optarg;
			break;
		case OPT_HELP:
			usage(stdout);
			return 1;
		case 'd':
			cli_error("detached containers (-d) are not supported yet; run attached");
			return -EINVAL;
		case ':':
			cli_error("option '%s' needs a value; see 'cove run --help'", argv[optind - 1]);
			return -EINVAL;
		default:
			if (optopt && optopt < 256)
				cli_error("unknown option '-%c'; see 'cove run --help'", optopt);
			else
				cli_error("unknown option '%s'; see 'cove run --help'", argv[optind - 1]);
			return -EINVAL;
		}
	}
	*ret_optind = optind;
	return 0;
}

/*
 * Find IMAGE: in the store (by name or ID), else the offline busybox (loaded into the store),
 * else pull it. Fills the snapshot's path and name and the image's config.
 */
static int resolve_image(const struct cli_paths *paths, const char *ref, const char *platform,
			 char *image, size_t size, char *snapshot, size_t ssize,
			 struct image_config **ret_config, struct cove_error *err)
{
	struct store *s = NULL;
	struct store_image img;
	struct image_manifest *m = NULL;
	struct cove_error nf = { 0 };
	int r;

	*ret_config = NULL;
	snapshot[0] = '\0';
	r = images_open(paths, &s, err);
	if (r < 0)
		return r;
	r = images_find(s, ref, &img, &nf);
	if (r == -ENOENT && container_offline_image(paths, ref, image, size) == 0) {
		/* the offline busybox: into the store once, an ordinary image from then on */
		struct image_load_result lr = { 0 };

		r = image_load(s, image, NULL, &lr, err);
		image_load_result_done(&lr);
		if (r == 0)
			r = images_find(s, ref, &img, err);
	} else if (r == -ENOENT) {
		r = images_pull(s, ref, platform, false, &img, err);
	} else if (r < 0) {
		*err = nf;
	}
	if (r == 0)
		r = image_load_config(s, &img, NULL, &m, ret_config, err);
	if (r == 0 && (str_printf(image, size, "%s/%s", store_root(s), img.snapshot) < 0 ||
		       str_copy(snapshot, ssize, img.snapshot) < 0))
		r = cove_error_set(err, ENAMETOOLONG, "image path too long");
	image_manifest_free(m);
	store_free(s);
	return r;
}

/* docker's rules: --entrypoint replaces the image's (and drops its Cmd); arguments replace Cmd. */
static char **build_argv(const struct run_opts *o, const struct image_config *c, char **args,
			 size_t nargs, uint32_t *ret_argc)
{
	char **ep = NULL, **cmd = NULL, *user_ep[2] = { (char *)o->entrypoint, NULL };
	size_t nep = 0, ncmd = 0, n = 0;
	char **out;

	if (o->entrypoint) {
		ep = user_ep;
		nep = o->entrypoint[0] ? 1 : 0;
	} else if (c) {
		ep = c->entrypoint;
		nep = c->n_entrypoint;
	}
	if (nargs) {
		cmd = args;
		ncmd = nargs;
	} else if (c && !o->entrypoint) {
		cmd = c->cmd;
		ncmd = c->n_cmd;
	}
	out = calloc(nep + ncmd + 1, sizeof(char *));
	if (!out)
		return NULL;
	for (size_t i = 0; i < nep; i++)
		out[n++] = ep[i];
	for (size_t i = 0; i < ncmd; i++)
		out[n++] = cmd[i];
	*ret_argc = (uint32_t)n;
	return out;
}

int cmd_run(int argc, char **argv)
{
	struct run_opts o = { .cpus = 1, .memory = DEFAULT_MEMORY };
	struct cove_error err = { 0 };
	struct cli_paths paths;
	struct container ct = { 0 };
	struct vm vm = { .pid = 0, .pidfd = -1, .ctl_fd = -1 };
	struct vm_config vc = { 0 };
	struct proto_start start = { 0 };
	struct session_opts so = { 0 };
	struct session_result res = { .exit_code = EXIT_COVE };
	char qemu[PATH_MAX], image[PATH_MAX + 64], hostname[65], snapshot[128] = "";
	_cleanup_free_ char **env = NULL, **base_env = NULL, **run_argv = NULL;
	struct image_config *cfg = NULL;
	char sh[] = "sh";
	char *default_argv[] = { sh, NULL };
	char term_env[] = "TERM=xterm", path_env[] = DEFAULT_PATH, host_env[80];
	size_t nbase = 0;
	int first, r, exit_code = EXIT_COVE;

	uint64_t t0 = now_ns();
	bool debug = getenv("COVE_DEBUG") != NULL;

	r = parse_args(argc, argv, &o, &first);
	if (r != 0)
		goto out_opts;
	if (!o.rootfs && first >= argc) {
		cli_error("missing IMAGE; see 'cove run --help'");
		r = -EINVAL;
		goto out_opts;
	}
	if (paths_init(&paths, &err) < 0)
		goto fail;

	/* the root filesystem: an offline image, or a directory */
	if (!o.rootfs) {
		const char *img = argv[first++];
		if (resolve_image(&paths, img, o.platform, image, sizeof(image), snapshot,
				  sizeof(snapshot), &cfg, &err) < 0)
			goto fail;
	} else {
		struct stat st;
		if (stat(o.rootfs, &st) < 0 || !S_ISDIR(st.st_mode)) {
			cove_error_set(&err, ENOTDIR, "--rootfs '%s' is not a directory", o.rootfs);
			goto fail;
		}
	}
	if (vm_find_qemu(qemu, sizeof(qemu), &err) < 0)
		goto fail;
	if (o.tty && o.interactive && !isatty(0)) {
		cove_error_set(&err, ENOTTY,
			       "-it needs a terminal on stdin; drop -t, or run from a terminal");
		goto fail;
	}

	if (container_create(&paths, o.name, o.rm, &ct, &err) < 0)
		goto fail;
	if (o.rootfs ? container_disk_from_dir(&ct, o.rootfs, &err) < 0
		     : container_disk_from_image(&ct, image, snapshot, &err) < 0)
		goto fail;

	/* the process: argv, env, identity */
	str_copy(hostname, sizeof(hostname), o.hostname ? o.hostname : ct.short_id);
	str_printf(host_env, sizeof(host_env), "HOSTNAME=%s", hostname);
	/* the image's environment (with a default PATH), ours, then -e */
	base_env = calloc((cfg ? cfg->n_env : 0) + 4, sizeof(char *));
	if (!base_env) {
		cove_error_set(&err, ENOMEM, "out of memory");
		goto fail;
	}
	base_env[nbase++] = path_env;
	for (size_t i = 0; cfg && i < cfg->n_env; i++)
		base_env[nbase++] = cfg->env[i];
	base_env[nbase++] = host_env;
	if (o.tty)
		base_env[nbase++] = term_env;
	env = merge_env(base_env, nbase, o.env, o.envc, &start.envc);
	run_argv = build_argv(&o, cfg, argv + first, (size_t)(argc - first), &start.argc);
	if (!env || !run_argv) {
		cove_error_set(&err, ENOMEM, "out of memory");
		goto fail;
	}
	start.env = env;
	start.argv = run_argv;
	if (start.argc == 0) {
		if (cfg) {
			cove_error_set(&err, EINVAL,
				       "no command: the image has no entrypoint or command; give one "
				       "after IMAGE");
			goto fail;
		}
		start.argv = default_argv;
		start.argc = 1;
	}
	if (!o.workdir && cfg && cfg->working_dir && cfg->working_dir[0] == '/')
		o.workdir = cfg->working_dir;
	if (!o.user && cfg && cfg->user && cfg->user[0])
		o.user = cfg->user;
	start.cwd = (char *)(o.workdir ? o.workdir : "/");
	start.hostname = hostname;
	start.rootfs = (char *)"/dev/vda";
	start.user = (char *)(o.user ? o.user : "");
	start.terminal = o.tty;
	start.open_stdin = o.interactive;

	/* the VM */
	vc.qemu = qemu;
	vc.kernel = paths.kernel;
	vc.initrd = paths.initrd;
	vc.disk = ct.disk;
	vc.disk_format = ct.disk_format;
	vc.boot_log = ct.boot_log;
	vc.qemu_log = ct.qemu_log;
	vc.cpus = o.cpus;
	vc.memory = o.memory;
	vc.keep_logs = !o.rm;
	vc.kvm = vm_kvm_usable();
	if (!vc.kvm) {
		char cache[PATH_MAX + 16];
		(void)mkdir(paths.cache, 0755); /* STATE exists: container_create made it */
		str_printf(cache, sizeof(cache), "%s/tsc_khz", paths.cache);
		if (vm_tsc_khz(cache, &vc.tsc_khz) < 0)
			vc.tsc_khz = 0;
	}
	if (debug)
		fprintf(stderr, "cove: debug: %.1f ms from main to starting QEMU\n",
			(double)(now_ns() - t0) / 1e6);
	if (vm_start(&vc, &vm, &err) < 0)
		goto fail;

	so.tty = o.tty;
	so.interactive = o.interactive;
	so.boot_timeout_ms = boot_timeout_ms(vc.kvm);
	if (o.tty && o.interactive && terminal_make_raw(0) < 0) {
		cove_error_set(&err, errno, "cannot put the terminal in raw mode: %s",
			       strerror(errno));
		goto fail;
	}
	r = session_run(&vm, &vc, &start, &so, &res, &err);
	terminal_restore();
	exit_code = res.exit_code;
	if (r < 0) {
		cli_error("%s", err.msg);
		goto cleanup;
	}
	/* let the guest finish its power-off (its disk is synced) unless the disk is going away */
	if (!o.rm && vm_wait(&vm, 5000, NULL) == 0)
		vm_kill(&vm);
	goto cleanup;

fail:
	terminal_restore();
	cli_error("%s", err.msg);
	exit_code = EXIT_COVE;
cleanup:
	vm_done(&vm);
	container_finish(&ct, exit_code);
	image_config_free(cfg);
out_opts:
	for (size_t i = 0; i < o.envc; i++)
		free(o.env[i]);
	free(o.env);
	if (r > 0)
		return 0; /* --help */
	return r == -EINVAL && exit_code == EXIT_COVE ? EXIT_COVE : exit_code;
}
