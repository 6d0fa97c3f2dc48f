/* SPDX-License-Identifier: Apache-2.0 */
/* cove image pull|ls|inspect|tag|rm|prune, and `cove pull`. */
#define _GNU_SOURCE
#include "cli.h"
#include "options.h"
#include "engine/images.h"

#include "image/digest.h"
#include "image/json.h"
#include "image/pull.h"
#include "image/push.h"
#include "image/reference.h"

#include <pthread.h>
#include <jansson.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void short_digest(const char *digest, char *buf, size_t size)
{
	const char *hex = strchr(digest, ':');

	str_printf(buf, size, "%.12s", hex ? hex + 1 : digest);
}

static struct cli_bar *bar_of(struct cli_progress *p, const char *id)
{
	for (size_t i = 0; i < p->nbars; i++)
		if (strcmp(p->bars[i].id, id) == 0)
			return &p->bars[i];
	if (p->nbars == CLI_MAX_BARS)
		return NULL;
	str_copy(p->bars[p->nbars].id, sizeof(p->bars[p->nbars].id), id);
	return &p->bars[p->nbars++];
}

static void redraw(struct cli_progress *p)
{
	if (p->drawn)
		fprintf(stderr, "\033[%zuA", p->drawn);
	for (size_t i = 0; i < p->nbars; i++) {
		const struct cli_bar *b = &p->bars[i];
		char line[41];
		size_t fill = b->total ? (size_t)(40 * (b->done > b->total ? b->total : b->done) / b->total) : 0;

		memset(line, ' ', 40);
		memset(line, '=', fill);
		if (fill < 40 && !b->state)
			line[fill] = '>';
		line[40] = '\0';
		if (b->state)
			fprintf(stderr, "\r\033[K%s: %s (%.1f MB)\n", b->id, b->state, (double)b->total / 1e6);
		else
			fprintf(stderr, "\r\033[K%s: [%s] %.1f/%.1f MB\n", b->id, line,
				(double)b->done / 1e6, (double)b->total / 1e6);
	}
	p->drawn = p->nbars;
	fflush(stderr);
}

void cli_progress(enum pull_event ev, const char *digest, uint64_t size, void *userdata)
{
	struct cli_progress *p = userdata;
	struct cli_bar *b;
	char id[16];

	if (p->quiet)
		return;
	short_digest(digest, id, sizeof(id));
	pthread_mutex_lock(&p->lock);
	switch (ev) {
	case PULL_RESOLVED:
		/* said only once the registry answered, so that a failure is one line */
		fprintf(stderr, "pulling %s (%s)\n", p->ref, digest);
		break;
	case PULL_LAYER_HAVE:
	case PULL_LAYER_START:
	case PULL_LAYER_BYTES:
	case PULL_LAYER_DONE:
		if (!p->tty) {
			if (ev == PULL_LAYER_HAVE)
				fprintf(stderr, "%s: already present\n", id);
			else if (ev == PULL_LAYER_DONE)
				fprintf(stderr, "%s: pulled %.1f MB\n", id, (double)size / 1e6);
			break;
		}
		b = bar_of(p, id);
		if (!b)
			break;
		if (ev == PULL_LAYER_BYTES) {
			b->done = size;
		} else {
			b->total = size;
			b->done = ev == PULL_LAYER_START ? 0 : size;
			b->state = ev == PULL_LAYER_HAVE ? "already present"
				   : ev == PULL_LAYER_DONE ? "pulled" : NULL;
		}
		redraw(p);
		break;
	case PULL_UNPACKING:
		fprintf(stderr, "writing the root filesystem\n");
		break;
	case PULL_DONE:
		break;
	}
	pthread_mutex_unlock(&p->lock);
}

void cli_progress_init(struct cli_progress *p, const char *ref, bool quiet)
{
	*p = (struct cli_progress){ .quiet = quiet, .ref = ref,
				    .tty = isatty(2) && getenv("TERM") &&
					   strcmp(getenv("TERM"), "dumb") != 0 };
	pthread_mutex_init(&p->lock, NULL);
}

int cli_pull(struct store *s, const char *ref, const char *platform, bool quiet,
	     struct store_image *ret, struct cove_error *err)
{
	struct cli_progress p;

	cli_progress_init(&p, ref, quiet);
	return images_pull(s, ref, platform, cli_progress, &p, ret, err);
}

/* What the image verbs take; each verb's table says which. */
struct image_flags {
	bool quiet, json, force;
	bool format_given; /* --format table or json */
	const char *platform;
};

enum { OPT_FORMAT = 256, OPT_PLATFORM };

#define OPT_FORMAT_JSON { OPT_FORMAT, 0, "format", "FMT", "table (default) or json" }

static int image_opt(int c, const char *value, void *ud)
{
	struct image_flags *o = ud;

	switch (c) {
	case 'q':
		o->quiet = true;
		break;
	case 'f':
		o->force = true;
		break;
	case OPT_PLATFORM:
		o->platform = value;
		break;
	case OPT_FORMAT:
		o->format_given = true;
		return cli_parse_format(value, &o->json);
	}
	return 0;
}

static int cmd_pull_args(int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{ OPT_PLATFORM, 0, "platform", "OS/ARCH[/VARIANT]",
		  "the platform to pull from a multi-platform index" },
		{ 'q', 'q', "quiet", NULL, "no progress, only the digest" },
		{ 0 },
	};
	static const struct cli_verb v = {
		"pull", "[OPTIONS] IMAGE", "Pull an image from a registry into the local store.", opts,
		.min_operands = 1, .max_operands = 1, .missing = "IMAGE",
	};
	struct image_flags o = { 0 };
	struct cove_error err = { 0 };
	struct cove_paths paths;
	struct store *s = NULL;
	struct store_image img;
	int first, r;

	if ((r = cli_parse_verb(&v, argc, argv, image_opt, &o, &first)) >= 0)
		return r;
	if (paths_init(&paths, &err) < 0 || images_open(&paths, &s, &err) < 0) {
		cli_error("%s", err.msg);
		return EXIT_COVE;
	}
	r = cli_pull(s, argv[first], o.platform, o.quiet, &img, &err);
	store_free(s);
	if (r < 0) {
		cli_error("%s", err.msg);
		return EXIT_COVE;
	}
	printf("%s\n", img.manifest_digest);
	return 0;
}

/* Bytes the snapshot occupies on disk (it is sparse). */
static uint64_t snapshot_bytes(struct store *s, const struct store_image *img)
{
	char path[PATH_MAX];
	struct stat st;

	if (!img->snapshot[0] ||
	    str_printf(path, sizeof(path), "%s/%s", store_root(s), img->snapshot) < 0 ||
	    stat(path, &st) < 0)
		return 0;
	return (uint64_t)st.st_blocks * 512;
}

static void split_ref(const char *ref, char *repo, size_t rsize, char *tag, size_t tsize)
{
	struct reference r;
	struct cove_error ignore = { 0 };

	if (digest_is_valid(ref)) { /* loaded without a name */
		str_copy(repo, rsize, "<none>");
		str_copy(tag, tsize, "<none>");
		return;
	}
	if (reference_parse(ref, &r, &ignore) < 0) {
		str_copy(repo, rsize, ref);
		str_copy(tag, tsize, "<none>");
		return;
	}
	str_printf(repo, rsize, "%s/%s", r.registry, r.repository);
	str_copy(tag, tsize, r.tag[0] ? r.tag : "<none>");
}

static int cmd_ls(int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{ 'q', 'q', "quiet", NULL, "only IDs" },
		OPT_FORMAT_JSON,
		{ 0 },
	};
	static const struct cli_verb v = { "image ls", "[OPTIONS]", "List images.", opts,
					   .max_operands = 0 };
	struct image_flags o = { 0 };
	struct cove_error err = { 0 };
	struct cove_paths paths;
	struct store *s = NULL;
	_cleanup_free_ struct store_image *all = NULL;
	size_t n = 0;
	int first, r;

	if ((r = cli_parse_verb(&v, argc, argv, image_opt, &o, &first)) >= 0)
		return r;
	if (paths_init(&paths, &err) < 0 || images_open(&paths, &s, &err) < 0 ||
	    store_image_list(s, &all, &n, &err) < 0) {
		cli_error("%s", err.msg);
		store_free(s);
		return EXIT_COVE;
	}
	if (o.json) {
		json_t *arr = json_array();
		for (size_t i = 0; i < n; i++) {
			char repo[STORE_REFERENCE_MAX], tag[256];
			split_ref(all[i].reference, repo, sizeof(repo), tag, sizeof(tag));
			json_array_append_new(
				arr, json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "name",
					       all[i].reference, "repository", repo, "tag", tag,
					       "digest", all[i].manifest_digest, "mediaType",
					       image_media_type_to_string(all[i].media_type),
					       "created", (json_int_t)all[i].created, "size",
					       (json_int_t)snapshot_bytes(s, &all[i])));
		}
		char *out = json_dumps(arr, JSON_INDENT(2));
		if (out)
			printf("%s\n", out);
		free(out);
		json_decref(arr);
	} else {
		if (!o.quiet)
			printf("%-40s %-16s %-14s %-20s %s\n", "REPOSITORY", "TAG", "IMAGE ID",
			       "CREATED", "SIZE");
		for (size_t i = 0; i < n; i++) {
			char repo[STORE_REFERENCE_MAX], tag[256], id[16], when[32];
			time_t t = (time_t)all[i].created;
			struct tm tm;

			short_digest(all[i].manifest_digest, id, sizeof(id));
			if (o.quiet) {
				printf("%s\n", id);
				continue;
			}
			split_ref(all[i].reference, repo, sizeof(repo), tag, sizeof(tag));
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M", localtime_r(&t, &tm));
			printf("%-40s %-16s %-14s %-20s %.1f MB\n", repo, tag, id, when,
			       (double)snapshot_bytes(s, &all[i]) / 1e6);
		}
	}
	store_free(s);
	return 0;
}


static int cmd_inspect(int argc, char **argv)
{
	/* JSON is the only format; --format json is accepted for docker's habits */
	static const struct cli_option opts[] = {
		{ OPT_FORMAT, 0, "format", "json", "the only format there is" },
		{ 0 },
	};
	static const struct cli_verb v = { "image inspect", "[OPTIONS] IMAGE...",
					   "Show images as JSON.", opts, .min_operands = 1,
					   .max_operands = -1, .missing = "IMAGE" };
	struct image_flags f = { 0 };
	struct cove_error err = { 0 };
	struct cove_paths paths;
	struct store *s = NULL;
	json_t *arr;
	int rc = 0, first, r;

	if ((r = cli_parse_verb(&v, argc, argv, image_opt, &f, &first)) >= 0)
		return r;
	if (f.format_given && !f.json) {
		cli_error("inspect writes JSON only; drop --format or use --format json");
		return EXIT_COVE;
	}
	if (paths_init(&paths, &err) < 0 || images_open(&paths, &s, &err) < 0) {
		cli_error("%s", err.msg);
		return EXIT_COVE;
	}
	arr = json_array();
	for (int i = first; i < argc; i++) {
		struct store_image img;
		struct image_manifest *m = NULL;
		struct image_config *c = NULL;
		json_t *o, *layers, *cfg;

		memset(&err, 0, sizeof(err));
		if (images_find(s, argv[i], &img, &err) < 0 ||
		    image_load_config(s, &img, NULL, &m, &c, &err) < 0) {
			cli_error("%s", err.msg);
			rc = EXIT_COVE;
			continue;
		}
		layers = json_array();
		for (size_t j = 0; j < m->n_layers; j++)
			json_array_append_new(layers,
					      json_pack("{s:s, s:s, s:I}", "digest",
							m->layers[j].digest, "mediaType",
							m->layers[j].media_type ? m->layers[j].media_type
										: "",
							"size", (json_int_t)m->layers[j].size));
		cfg = json_pack("{s:o, s:o, s:o, s:s, s:s, s:s}", "Entrypoint",
				json_strv(c->entrypoint, c->n_entrypoint), "Cmd",
				json_strv(c->cmd, c->n_cmd), "Env", json_strv(c->env, c->n_env),
				"WorkingDir", c->working_dir ? c->working_dir : "", "User",
				c->user ? c->user : "", "StopSignal",
				c->stop_signal ? c->stop_signal : "");
		json_t *labels = json_object();
		for (size_t j = 0; j < c->n_labels; j++)
			json_object_set_new(labels, c->labels[j].key,
					    json_string(c->labels[j].value));
		json_object_set_new(cfg, "Labels", labels);
		json_object_set_new(cfg, "ExposedPorts",
				    json_strv(c->exposed_ports, c->n_exposed_ports));
		o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:o, s:o, s:s}", "Name",
			      img.reference, "Digest", img.manifest_digest, "MediaType",
			      image_media_type_to_string(img.media_type), "Config",
			      img.config_digest, "Architecture",
			      c->architecture ? c->architecture : "", "Os", c->os ? c->os : "",
			      "Created", (json_int_t)img.created, "ContainerConfig", cfg, "Layers",
			      layers, "Snapshot", img.snapshot);
		json_array_append_new(arr, o);
		image_manifest_free(m);
		image_config_free(c);
	}
	char *out = json_dumps(arr, JSON_INDENT(2));
	if (out && json_array_size(arr))
		printf("%s\n", out);
	free(out);
	json_decref(arr);
	store_free(s);
	return rc;
}

static int cmd_tag(int argc, char **argv)
{
	static const struct cli_verb v = { "image tag", "SOURCE TARGET",
					   "Give an image another name.", NULL, .min_operands = 2,
					   .max_operands = 2, .missing = "SOURCE or TARGET" };
	struct image_flags o = { 0 };
	struct cove_error err = { 0 };
	struct cove_paths paths;
	struct store *s = NULL;
	struct store_image img;
	struct reference r;
	char target[STORE_REFERENCE_MAX];
	int rc, first;

	if ((rc = cli_parse_verb(&v, argc, argv, image_opt, &o, &first)) >= 0)
		return rc;
	rc = 0;
	if (reference_parse(argv[first + 1], &r, &err) < 0 ||
	    reference_format(&r, target, sizeof(target)) < 0 || paths_init(&paths, &err) < 0 ||
	    images_open(&paths, &s, &err) < 0 || images_find(s, argv[first], &img, &err) < 0 ||
	    store_image_tag(s, img.reference, target, &err) < 0) {
		cli_error("%s", err.msg[0] ? err.msg : "invalid target name");
		rc = EXIT_COVE;
	}
	store_free(s);
	return rc;
}

static int cmd_rm(int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{ 'f', 'f', "force", NULL, "remove it even if a container's disk sits on it" },
		{ 0 },
	};
	static const struct cli_verb v = { "image rm", "[OPTIONS] IMAGE...", "Remove images.",
					   opts, .min_operands = 1, .max_operands = -1,
					   .missing = "IMAGE" };
	struct image_flags o = { 0 };
	struct cove_error err = { 0 };
	struct cove_paths paths;
	struct store *s = NULL;
	int rc, first;
	uint64_t freed = 0;

	if ((rc = cli_parse_verb(&v, argc, argv, image_opt, &o, &first)) >= 0)
		return rc;
	rc = 0;
	if (paths_init(&paths, &err) < 0 || images_open(&paths, &s, &err) < 0) {
		cli_error("%s", err.msg);
		return EXIT_COVE;
	}
	for (int i = first; i < argc; i++) {
		struct store_image img;
		char user[128];

		memset(&err, 0, sizeof(err));
		if (images_find(s, argv[i], &img, &err) < 0) {
			cli_error("%s", err.msg);
			rc = EXIT_COVE;
			continue;
		}
		if (!o.force && images_used_by(&paths, s, &img, user, sizeof(user))) {
			cli_error("image '%s' is used by container %s; remove the container first, "
				  "or use -f",
				  argv[i], user);
			rc = EXIT_COVE;
			continue;
		}
		if (store_image_remove(s, img.reference, &err) < 0) {
			cli_error("%s", err.msg);
			rc = EXIT_COVE;
			continue;
		}
		printf("Untagged: %s\n", img.reference);
	}
	memset(&err, 0, sizeof(err));
	if (store_gc(s, &freed, &err) < 0 && err.code != EBUSY)
		cli_error("%s", err.msg);
	store_free(s);
	return rc;
}

static int cmd_prune(int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{ 'f', 'f', "force", NULL, "do not ask (cove never asks)" },
		{ 0 },
	};
	static const struct cli_verb v = { "image prune", "[OPTIONS]",
					   "Remove blobs and snapshots no image needs.", opts,
					   .max_operands = 0 };
	struct image_flags o = { 0 };
	int first, r;
	struct cove_error err = { 0 };
	struct cove_paths paths;
	struct store *s = NULL;
	uint64_t freed = 0;

	if ((r = cli_parse_verb(&v, argc, argv, image_opt, &o, &first)) >= 0)
		return r;
	if (paths_init(&paths, &err) < 0 || images_open(&paths, &s, &err) < 0 ||
	    store_gc_all(s, &freed, &err) < 0) {
		cli_error("%s", err.msg);
		store_free(s);
		return EXIT_COVE;
	}
	printf("Total reclaimed space: %.1f MB\n", (double)freed / 1e6);
	store_free(s);
	return 0;
}

int cmd_pull(int argc, char **argv)
{
	return cmd_pull_args(argc, argv);
}

int cmd_image(int argc, char **argv)
{
	static const struct cli_command sub[] = {
		{ "pull", cmd_pull_args, "Pull an image from a registry" },
		{ "push", cmd_push, "Push an image to a registry" },
		{ "ls", cmd_ls, "List images" },
		{ "list", cmd_ls, NULL },
		{ "inspect", cmd_inspect, "Show images as JSON" },
		{ "tag", cmd_tag, "Give an image another name" },
		{ "rm", cmd_rm, "Remove images" },
		{ "prune", cmd_prune, "Remove blobs and snapshots no image needs" },
		{ "save", cmd_image_save, "Write images to an OCI or docker archive" },
		{ "load", cmd_image_load, "Read images from an archive or OCI layout" },
	};

	return cli_dispatch("image", "Manage images.", sub, ARRAY_SIZE(sub), argc, argv);
}

static void on_push(enum push_event ev, const char *digest, uint64_t size, void *userdata)
{
	const bool *quiet = userdata;
	char id[16];

	if (*quiet)
		return;
	short_digest(digest, id, sizeof(id));
	switch (ev) {
	case PUSH_BLOB_EXISTS:
		fprintf(stderr, "%s: already there\n", id);
		break;
	case PUSH_BLOB_MOUNTED:
		fprintf(stderr, "%s: mounted from the source repository\n", id);
		break;
	case PUSH_BLOB_PUSHED:
		fprintf(stderr, "%s: pushed %.1f MB\n", id, (double)size / 1e6);
		break;
	case PUSH_DONE:
		break;
	}
}

int cmd_push(int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{ 'q', 'q', "quiet", NULL, "no progress, only the digest" },
		{ 0 },
	};
	static const struct cli_verb v = {
		"push", "[OPTIONS] IMAGE [DESTINATION]",
		"Push an image (its layers, config and manifest) to a registry, under its own\n"
		"name or DESTINATION.",
		opts, .min_operands = 1, .max_operands = 2, .missing = "IMAGE",
	};
	struct image_flags f = { 0 };
	struct cove_error err = { 0 };
	struct cove_paths paths;
	struct store *s = NULL;
	struct store_image img;
	struct push_opts o = { .progress = on_push, .userdata = &f.quiet };
	char digest[DIGEST_STRING_MAX];
	int first, r;

	if ((r = cli_parse_verb(&v, argc, argv, image_opt, &f, &first)) >= 0)
		return r;
	if (paths_init(&paths, &err) < 0 || images_open(&paths, &s, &err) < 0 ||
	    images_find(s, argv[first], &img, &err) < 0) {
		cli_error("%s", err.msg);
		store_free(s);
		return EXIT_COVE;
	}
	images_registry_opts(&o.registry);
	r = image_push(s, &img, argc - first == 2 ? argv[first + 1] : NULL, &o, digest, &err);
	store_free(s);
	if (r < 0) {
		cli_error("%s", err.msg);
		return EXIT_COVE;
	}
	printf("%s\n", digest);
	return 0;
}

int cmd_images(int argc, char **argv)
{
	return cmd_ls(argc, argv);
}
