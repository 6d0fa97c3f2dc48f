/* SPDX-License-Identifier: Apache-2.0 */
/* The image store as the engine uses it: where it is, registry options from the environment,
 * finding an image by name or ID, pulling, and which container sits on an image. */
#define _GNU_SOURCE
#include "images.h"

#include "image/reference.h"

#include <dirent.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

void images_registry_opts(struct registry_opts *o)
{
	/* a directory of HOST/ca.crt trees searched instead of /etc/containers/certs.d */
	static const char *dirs[2];
	/* registries the user allows plain HTTP for: COVE_INSECURE_REGISTRIES=host[:port],... */
	static char list[1024];
	static const char *insecure[33];
	const char *t = getenv("COVE_REGISTRY_TIMEOUT"), *ins = getenv("COVE_INSECURE_REGISTRIES");
	uint64_t secs;
	size_t n = 0;

	dirs[0] = getenv("COVE_CERTS_DIR");
	if (dirs[0] && *dirs[0])
		o->certs_dirs = dirs;
	if (ins && *ins && str_copy(list, sizeof(list), ins) == 0) {
		for (char *p = list, *comma; p && *p && n + 1 < ARRAY_SIZE(insecure); p = comma) {
			comma = strchr(p, ',');
			if (comma)
				*comma++ = '\0';
			if (*p)
				insecure[n++] = p;
		}
		insecure[n] = NULL;
		o->insecure_hosts = insecure;
	}
	/* seconds without a byte before a request is given up (default 30) */
	if (t && parse_u64(t, 3600, &secs) == 0 && secs > 0)
		o->timeout_s = (unsigned)secs;
}

uint64_t images_snapshot_size(void)
{
	const char *s = getenv("COVE_IMAGE_SIZE");
	uint64_t v;

	if (s && parse_size(s, &v) == 0 && v >= (64ULL << 20))
		return v;
	return 0; /* the default: 4 GiB, or more for big images */
}

int images_open(const struct cove_paths *p, struct store **ret, struct cove_error *err)
{
	char root[PATH_MAX + 16];
	int r;

	if (str_printf(root, sizeof(root), "%s/images", p->state) < 0)
		return cove_error_set(err, ENAMETOOLONG, "state path too long");
	r = mkdir_p(root, 0700);
	if (r < 0)
		return cove_error_set(err, r, "cannot create '%s': %s", root, strerror(-r));
	return store_open(root, ret, err);
}

int images_pull(struct store *s, const char *ref, const char *platform, pull_progress_fn progress,
		void *userdata, struct store_image *ret, struct cove_error *err)
{
	struct image_platform plat;
	struct pull_opts o = { .progress = progress, .userdata = userdata,
			       .min_snapshot_size = images_snapshot_size() };

	images_registry_opts(&o.registry);
	if (platform) {
		if (image_platform_parse(platform, &plat, err) < 0)
			return -EINVAL;
		o.platform = &plat;
	}
	return image_pull(s, ref, &o, ret, err);
}

int images_find(struct store *s, const char *ref, struct store_image *ret, struct cove_error *err)
{
	struct reference r;
	char name[STORE_REFERENCE_MAX];
	struct cove_error ignore = { 0 };

	/* by name, normalized as docker does */
	if (reference_parse(ref, &r, &ignore) == 0 && reference_format(&r, name, sizeof(name)) == 0 &&
	    store_image_get(s, name, ret, &ignore) == 0)
		return 0;
	/* by ID: a prefix (at least 4 hex digits) of the manifest digest */
	if (strlen(ref) >= 4 && strspn(ref, "0123456789abcdef") == strlen(ref)) {
		_cleanup_free_ struct store_image *all = NULL;
		size_t n = 0, found = SIZE_MAX;

		if (store_image_list(s, &all, &n, err) < 0)
			return -EIO;
		for (size_t i = 0; i < n; i++) {
			const char *hex = strchr(all[i].manifest_digest, ':');
			if (!hex || strncmp(hex + 1, ref, strlen(ref)) != 0)
				continue;
			if (found != SIZE_MAX &&
			    strcmp(all[found].manifest_digest, all[i].manifest_digest) != 0)
				return cove_error_set(err, EINVAL,
						      "image ID '%s' is ambiguous; give more digits",
						      ref);
			found = i;
		}
		if (found != SIZE_MAX) {
			*ret = all[found];
			return 0;
		}
	}
	return cove_error_set(err, ENOENT, "no image '%s' here; pull it with 'cove pull %s'", ref,
			      ref);
}

bool images_used_by(const struct cove_paths *p, struct store *s, const struct store_image *img,
		    char *ret_name, size_t size)
{
	char dir[PATH_MAX];
	_cleanup_(closedirp) DIR *d = NULL;
	struct dirent *de;

	if (!img->snapshot[0] || str_printf(dir, sizeof(dir), "%s/containers", p->state) < 0)
		return false;
	d = opendir(dir);
	while (d && (de = readdir(d))) {
		char path[PATH_MAX + 128];
		_cleanup_free_ char *used = NULL, *name = NULL;

		if (de->d_name[0] == '.' ||
		    str_printf(path, sizeof(path), "%s/%s/image", dir, de->d_name) < 0 ||
		    read_file(path, 256, &used, NULL) < 0)
			continue;
		used[strcspn(used, "\n")] = '\0';
		if (strcmp(used, img->snapshot) != 0)
			continue;
		str_printf(path, sizeof(path), "%s/%s/name", dir, de->d_name);
		if (read_file(path, 128, &name, NULL) == 0) {
			name[strcspn(name, "\n")] = '\0';
			str_copy(ret_name, size, name);
		} else {
			str_printf(ret_name, size, "%.12s", de->d_name);
		}
		return true;
	}
	return false;
}

