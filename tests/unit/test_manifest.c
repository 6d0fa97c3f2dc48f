/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for src/image/manifest: documents shaped like what docker push to
 * docker-registry 2.8, buildkit (multi-arch with attestations), skopeo and umoci write, then
 * each way they can be wrong.
 */
#include <stdlib.h>
#include <string.h>

#include "image/manifest.h"
#include "test.h"

#define H4(c)  c c c c
#define H16(c) H4(c) H4(c) H4(c) H4(c)
#define D(c)   "sha256:" H16(c) H16(c) H16(c) H16(c)

/* docker push to registry:2.8 */
static const char docker_manifest[] =
	"{\n"
	"   \"schemaVersion\": 2,\n"
	"   \"mediaType\": \"application/vnd.docker.distribution.manifest.v2+json\",\n"
	"   \"config\": {\n"
	"      \"mediaType\": \"application/vnd.docker.container.image.v1+json\",\n"
	"      \"size\": 1472,\n"
	"      \"digest\": \"" D(
		"c") "\"\n"
		     "   },\n"
		     "   \"layers\": [\n"
		     "      {\n"
		     "         \"mediaType\": "
		     "\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\n"
		     "         \"size\": 29150001,\n"
		     "         \"digest\": \"" D(
			     "1") "\"\n"
				  "      },\n"
				  "      {\n"
				  "         \"mediaType\": "
				  "\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\n"
				  "         \"size\": 32,\n"
				  "         \"digest\": \"" D("2") "\"\n"
								   "      }\n"
								   "   ]\n"
								   "}";

/* buildkit's multi-arch index: two images and an attestation manifest */
static const char oci_index[] =
	"{\n"
	"  \"schemaVersion\": 2,\n"
	"  \"mediaType\": \"application/vnd.oci.image.index.v1+json\",\n"
	"  \"manifests\": [\n"
	"    {\n"
	"      \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\",\n"
	"      \"digest\": \"" D(
		"a") "\",\n"
		     "      \"size\": 1035,\n"
		     "      \"platform\": { \"architecture\": \"amd64\", \"os\": \"linux\" }\n"
		     "    },\n"
		     "    {\n"
		     "      \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\",\n"
		     "      \"digest\": \"" D(
			     "b") "\",\n"
				  "      \"size\": 1035,\n"
				  "      \"platform\": { \"architecture\": \"arm64\", \"os\": "
				  "\"linux\", \"variant\": \"v8\" }\n"
				  "    },\n"
				  "    {\n"
				  "      \"mediaType\": "
				  "\"application/vnd.oci.image.manifest.v1+json\",\n"
				  "      \"digest\": \"" D(
					  "e") "\",\n"
					       "      \"size\": 566,\n"
					       "      \"annotations\": {\n"
					       "        \"vnd.docker.reference.digest\": \"" D(
						       "a") "\",\n"
							    "        "
							    "\"vnd.docker.reference.type\": "
							    "\"attestation-manifest\"\n"
							    "      },\n"
							    "      \"platform\": { "
							    "\"architecture\": \"unknown\", "
							    "\"os\": \"unknown\" }\n"
							    "    }\n"
							    "  ]\n"
							    "}\n";

/* a Docker manifest list (docker manifest push) */
static const char docker_list[] =
	"{\"schemaVersion\":2,"
	"\"mediaType\":\"application/vnd.docker.distribution.manifest.list.v2+json\","
	"\"manifests\":["
	"{\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\"size\":528,"
	"\"digest\":\"" D(
		"3") "\",\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\","
		     "\"variant\":\"v6\"}},"
		     "{\"mediaType\":\"application/"
		     "vnd.docker.distribution.manifest.v2+json\",\"size\":528,"
		     "\"digest\":\"" D(
			     "4") "\",\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\","
				  "\"variant\":\"v7\"}},"
				  "{\"mediaType\":\"application/"
				  "vnd.docker.distribution.manifest.v2+json\",\"size\":528,"
				  "\"digest\":\"" D(
					  "5") "\",\"platform\":{\"architecture\":\"arm64\",\"os\":"
					       "\"linux\"}},"
					       "{\"mediaType\":\"application/"
					       "vnd.docker.distribution.manifest.v2+json\","
					       "\"size\":1125,"
					       "\"digest\":\"" D(
						       "6") "\",\"platform\":{\"architecture\":"
							    "\"amd64\",\"os\":\"windows\","
							    "\"os.version\":\"10.0.17763.5329\"}}"
							    "]}";

/* umoci: no top-level mediaType; skopeo copy oci: with zstd layers */
static const char umoci_manifest[] =
	"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/"
	"vnd.oci.image.config.v1+json\","
	"\"digest\":\"" D(
		"c") "\",\"size\":633},\"layers\":[{\"mediaType\":"
		     "\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"" D(
			     "1") "\",\"size\":2811478},"
				  "{\"mediaType\":\"application/"
				  "vnd.oci.image.layer.v1.tar+zstd\",\"digest\":\"" D(
					  "2") "\","
					       "\"size\":100},{\"mediaType\":\"application/"
					       "vnd.oci.image.layer.nondistributable.v1.tar\","
					       "\"digest\":\"" D(
						       "7") "\",\"size\":0,\"urls\":[\"https://"
							    "example.com/layer\"]}],"
							    "\"annotations\":{\"org.opencontainers."
							    "image.created\":\"2024-01-10T00:00:"
							    "00Z\"}}";

static const char umoci_index[] =
	"{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
	"\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" D(
		"a") "\",\"size\":700,"
		     "\"annotations\":{\"org.opencontainers.image.ref.name\":\"latest\"}}]}";

static const char schema1[] =
	"{\n"
	"   \"schemaVersion\": 1,\n"
	"   \"name\": \"library/hello-world\",\n"
	"   \"tag\": \"latest\",\n"
	"   \"architecture\": \"amd64\",\n"
	"   \"fsLayers\": [ { \"blobSum\": \"" D("a") "\" } ],\n"
						      "   \"history\": [ { \"v1Compatibility\": "
						      "\"{\\\"id\\\":\\\"e45a5af57b00\\\"}\" } ],\n"
						      "   \"signatures\": [ { \"header\": { "
						      "\"alg\": \"ES256\" }, \"signature\": \"x\","
						      " \"protected\": \"y\" } ]\n"
						      "}";

/* docker build's config (container_config etc. are ignored) */
static const char docker_config[] =
	"{\"architecture\":\"amd64\",\"config\":{\"Hostname\":\"\",\"Domainname\":\"\","
	"\"User\":\"1000:1000\",\"AttachStdin\":false,\"ExposedPorts\":{\"8080/tcp\":{},"
	"\"9090/udp\":{}},\"Tty\":false,\"Env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:"
	"/usr/bin:/sbin:/bin\",\"LANG=C.UTF-8\",\"APP_HOME=/app\"],\"Cmd\":[\"--port\",\"8080\"],"
	"\"Image\":\"" D("9") "\",\"Volumes\":{\"/data\":{}},\"WorkingDir\":\"/app\","
			      "\"Entrypoint\":[\"/app/"
			      "server\"],\"OnBuild\":null,\"Labels\":{\"maintainer\":\"ops\","
			      "\"org.opencontainers.image.source\":\"https://example.com/"
			      "app\"},\"StopSignal\":\"SIGINT\"},"
			      "\"container\":\"3f5d\",\"container_config\":{\"Cmd\":[\"/bin/"
			      "sh\",\"-c\",\"#(nop) \"]},"
			      "\"created\":\"2024-01-10T00:00:00.123Z\",\"docker_version\":\"24.0."
			      "7\",\"history\":[{"
			      "\"created\":\"2024-01-10T00:00:00Z\",\"created_by\":\"ADD file:x in "
			      "/\"}],\"os\":\"linux\","
			      "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D("d") "\",\"" D(
				      "f") "\"]}}";

/* buildkit's OCI config for debian on arm64 */
static const char oci_config[] =
	"{\"architecture\":\"arm64\",\"variant\":\"v8\",\"config\":{\"Env\":[\"PATH=/usr/local/"
	"sbin:"
	"/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"],\"Cmd\":[\"bash\"],\"Entrypoint\":null},"
	"\"created\":\"2024-01-11T00:00:00Z\",\"history\":[{\"created\":\"2024-01-11T00:00:00Z\","
	"\"created_by\":\"# debian.sh\"}],\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\","
	"\"diff_ids\":[\"" D("d") "\"]}}";

#define LEN(s) (sizeof(s) - 1)

static int parse_m(const char *json, const char *ct, struct image_manifest **m,
		   struct cove_error *err)
{
	*err = (struct cove_error){ 0 };
	return image_manifest_parse(json, strlen(json), ct, m, err);
}

static int parse_c(const char *json, struct image_config **c, struct cove_error *err)
{
	*err = (struct cove_error){ 0 };
	return image_config_parse(json, strlen(json), c, err);
}

TEST(docker_manifest)
{
	struct cove_error err = { 0 };
	struct image_manifest *m = NULL;

	CHECK_EQ_INT(image_manifest_parse(docker_manifest, LEN(docker_manifest),
					  MEDIA_TYPE_DOCKER_MANIFEST, &m, &err),
		     0);
	if (!m)
		return;
	CHECK_EQ_INT(m->media_type, IMAGE_MEDIA_TYPE_DOCKER_MANIFEST);
	CHECK_EQ_STR(m->config.media_type, MEDIA_TYPE_DOCKER_CONFIG);
	CHECK_EQ_STR(m->config.digest, D("c"));
	CHECK_EQ_INT(m->config.size, 1472);
	CHECK_EQ_INT(m->n_layers, 2);
	CHECK_EQ_INT(m->layers[0].size, 29150001);
	CHECK_EQ_INT(m->layers[0].compression, IMAGE_LAYER_GZIP);
	CHECK_EQ_STR(m->layers[1].digest, D("2"));
	image_manifest_free(m);
}

TEST(umoci_manifest_without_media_type)
{
	struct cove_error err = { 0 };
	struct image_manifest *m = NULL;
	enum image_media_type t = 0;

	CHECK_EQ_INT(manifest_detect_type(umoci_manifest, LEN(umoci_manifest), NULL, &t, &err), 0);
	CHECK_EQ_INT(t, IMAGE_MEDIA_TYPE_OCI_MANIFEST);
	CHECK_EQ_INT(parse_m(umoci_manifest, "application/octet-stream", &m, &err), 0);
	if (!m)
		return;
	CHECK_EQ_INT(m->media_type, IMAGE_MEDIA_TYPE_OCI_MANIFEST);
	CHECK_EQ_INT(m->n_layers, 3);
	CHECK_EQ_INT(m->layers[1].compression, IMAGE_LAYER_ZSTD);
	CHECK_EQ_INT(m->layers[2].compression, IMAGE_LAYER_TAR);
	CHECK_EQ_INT(m->layers[2].size, 0);
	image_manifest_free(m);
}

TEST(detect_types)
{
	struct cove_error err = { 0 };
	enum image_media_type t = 0;

	CHECK_EQ_INT(manifest_detect_type(oci_index, LEN(oci_index), NULL, &t, &err), 0);
	CHECK_EQ_INT(t, IMAGE_MEDIA_TYPE_OCI_INDEX);
	CHECK(image_media_type_is_index(t));
	CHECK_EQ_INT(
		manifest_detect_type(docker_list, LEN(docker_list), "application/json", &t, &err),
		0);
	CHECK_EQ_INT(t, IMAGE_MEDIA_TYPE_DOCKER_LIST);
	CHECK_EQ_INT(manifest_detect_type(umoci_index, LEN(umoci_index), "", &t, &err), 0);
	CHECK_EQ_INT(t, IMAGE_MEDIA_TYPE_OCI_INDEX);
	/* Content-Type first, with parameters and any case */
	CHECK_EQ_INT(
		manifest_detect_type(umoci_index, LEN(umoci_index),
				     " Application/VND.docker.distribution.manifest.list.v2+json;"
				     " charset=utf-8",
				     &t, &err),
		0);
	CHECK_EQ_INT(t, IMAGE_MEDIA_TYPE_DOCKER_LIST);
	CHECK_EQ_INT(manifest_detect_type(docker_manifest, LEN(docker_manifest),
					  MEDIA_TYPE_OCI_MANIFEST, &t, &err),
		     0);
	CHECK_EQ_INT(t, IMAGE_MEDIA_TYPE_OCI_MANIFEST);
	CHECK_EQ_INT(manifest_detect_type("{\"schemaVersion\":2}", 19, NULL, &t, &err), -EINVAL);
	CHECK(strstr(err.msg, "unable to tell its type") != NULL);
	err = (struct cove_error){ 0 };
	CHECK_EQ_INT(manifest_detect_type(oci_index, LEN(oci_index), MEDIA_TYPE_DOCKER_MANIFEST, &t,
					  &err),
		     -EINVAL);
	CHECK(strstr(err.msg, "disagrees") != NULL);
}

TEST(schema1_refused)
{
	struct cove_error err = { 0 };
	struct image_manifest *m = NULL;
	enum image_media_type t;

	CHECK_EQ_INT(parse_m(schema1, NULL, &m, &err), -EOPNOTSUPP);
	CHECK(strncmp(err.msg, "schema1 manifests are not supported: ", 37) == 0);
	CHECK_EQ_INT(parse_m(docker_manifest, MEDIA_TYPE_DOCKER_SCHEMA1_SIGN, &m, &err),
		     -EOPNOTSUPP);
	CHECK(strncmp(err.msg, "schema1 manifests are not supported: ", 37) == 0);
	CHECK(strstr(err.msg, "prettyjws") != NULL);
	err = (struct cove_error){ 0 };
	CHECK_EQ_INT(image_media_type_from_string(MEDIA_TYPE_DOCKER_SCHEMA1, &t, &err),
		     -EOPNOTSUPP);
	CHECK(strncmp(err.msg, "schema1 manifests are not supported: ", 37) == 0);
	/* without a schemaVersion, fsLayers gives it away */
	CHECK_EQ_INT(parse_m("{\"fsLayers\":[],\"name\":\"x\"}", NULL, &m, &err), -EOPNOTSUPP);
	CHECK(strncmp(err.msg, "schema1", 7) == 0);
	CHECK(m == NULL);
}

TEST(unknown_types_rejected_by_name)
{
	struct cove_error err = { 0 };
	struct image_manifest *m = NULL;
	struct image_index *idx = NULL;

	CHECK_EQ_INT(parse_m("{\"schemaVersion\":2,\"mediaType\":"
			     "\"application/vnd.oci.artifact.manifest.v1+json\",\"blobs\":[]}",
			     NULL, &m, &err),
		     -EOPNOTSUPP);
	CHECK(strstr(err.msg, "'application/vnd.oci.artifact.manifest.v1+json'") != NULL);
	CHECK_EQ_INT(parse_m(docker_manifest, "application/vnd.example.thing+json", &m, &err),
		     -EOPNOTSUPP);
	CHECK(strstr(err.msg, "'application/vnd.example.thing+json'") != NULL);
	CHECK_EQ_INT(parse_m("{\"schemaVersion\":3,\"layers\":[],\"config\":{}}", NULL, &m, &err),
		     -EOPNOTSUPP);
	CHECK(strstr(err.msg, "schemaVersion 3") != NULL);
	/* an index is not a manifest, and the other way round */
	CHECK_EQ_INT(parse_m(oci_index, NULL, &m, &err), -EINVAL);
	CHECK(strstr(err.msg, "is an image index") != NULL);
	err = (struct cove_error){ 0 };
	CHECK_EQ_INT(image_index_parse(docker_manifest, LEN(docker_manifest), NULL, &idx, &err),
		     -EINVAL);
	CHECK(strstr(err.msg, "not an index") != NULL);
	CHECK(m == NULL && idx == NULL);
}

static char *replace(const char *s, const char *from, const char *to)
{
	const char *at = strstr(s, from);
	size_t n = strlen(s) - strlen(from) + strlen(to) + 1;
	char *out = malloc(n);

	if (!at || !out) {
		free(out);
		return NULL;
	}
	memcpy(out, s, (size_t)(at - s));
	memcpy(out + (at - s), to, strlen(to));
	memcpy(out + (at - s) + strlen(to), at + strlen(from), strlen(at + strlen(from)) + 1);
	return out;
}

/* docker_manifest with one substring replaced: the expected code and message part */
static void bad_manifest(const char *from, const char *to, int code, const char *msg)
{
	struct cove_error err = { 0 };
	struct image_manifest *m = NULL;
	char *json = replace(docker_manifest, from, to);

	CHECK(json != NULL);
	if (!json)
		return;
	CHECK_EQ_INT(parse_m(json, NULL, &m, &err), code);
	if (!strstr(err.msg, msg))
		printf("# message: %s\n", err.msg);
	CHECK(strstr(err.msg, msg) != NULL);
	CHECK(m == NULL);
	image_manifest_free(m);
	free(json);
}

TEST(bad_descriptors_name_their_path)
{
	bad_manifest("\"size\": 32", "\"size\": -1", -EINVAL, "layers[1].size -1 is out of range");
	bad_manifest("\"size\": 32", "\"size\": \"32\"", -EINVAL,
		     "layers[1].size is not an integer");
	bad_manifest("\"size\": 32", "\"size\": 32.0", -EINVAL, "layers[1].size is not an integer");
	bad_manifest("\"size\": 32", "\"size\": 2000000000000", -EINVAL, "out of range");
	bad_manifest("\"size\": 1472", "\"size\": 9000000", -EINVAL, "config.size 9000000 is out");
	bad_manifest(D("2"), "sha512:abcdef", -EOPNOTSUPP,
		     "layers[1].digest: unsupported digest algorithm 'sha512'");
	bad_manifest(D("2"), "sha256:ABC", -EINVAL, "layers[1].digest: invalid digest");
	bad_manifest("\"size\": 32,", "", -EINVAL, "layers[1].size is missing");
	bad_manifest("application/vnd.docker.image.rootfs.diff.tar.gzip\",\n         \"size\": 32",
		     "application/vnd.in-toto+json\",\n         \"size\": 32", -EOPNOTSUPP,
		     "layers[1].mediaType 'application/vnd.in-toto+json' is not a supported layer");
	bad_manifest("application/vnd.docker.container.image.v1+json",
		     "application/vnd.cncf.helm.config.v1+json", -EOPNOTSUPP,
		     "config.mediaType 'application/vnd.cncf.helm.config.v1+json' is not an image");
	bad_manifest("\"layers\": [", "\"layerz\": [", -EINVAL, "layers is missing");
	bad_manifest("\"config\": {", "\"config\": [{", -EINVAL, "malformed JSON");
	bad_manifest("\"schemaVersion\": 2", "\"schemaVersion\": \"2\"", -EINVAL,
		     "schemaVersion is not an integer");
	/* duplicate keys: parsers that keep the first and the last would disagree */
	bad_manifest("\"size\": 32,", "\"size\": 32, \"size\": 33,", -EINVAL, "duplicate");
}

TEST(size_limits_checked_first)
{
	struct cove_error err = { 0 };
	struct image_manifest *m = NULL;
	struct image_config *c = NULL;
	size_t big = MANIFEST_MAX_SIZE + 1;
	char *buf = malloc(IMAGE_CONFIG_MAX_SIZE + 1);

	if (!buf)
		return;
	memset(buf, ' ', IMAGE_CONFIG_MAX_SIZE + 1);
	memcpy(buf, docker_manifest, LEN(docker_manifest)); /* valid JSON + whitespace */
	CHECK_EQ_INT(image_manifest_parse(buf, big - 1, NULL, &m, &err), 0);
	image_manifest_free(m);
	m = NULL;
	CHECK_EQ_INT(image_manifest_parse(buf, big, NULL, &m, &err), -EFBIG);
	CHECK(strstr(err.msg, "over the limit") != NULL);
	memcpy(buf, docker_config, LEN(docker_config));
	CHECK_EQ_INT(image_config_parse(buf, IMAGE_CONFIG_MAX_SIZE, &c, &err), 0);
	image_config_free(c);
	c = NULL;
	CHECK_EQ_INT(image_config_parse(buf, IMAGE_CONFIG_MAX_SIZE + 1, &c, &err), -EFBIG);
	CHECK_EQ_INT(image_manifest_parse(NULL, 0, NULL, &m, &err), -EINVAL);
	free(buf);
}

static char *many_layers(size_t n)
{
	static const char layer[] = "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\","
				    "\"digest\":\"" D("1") "\",\"size\":1}";
	size_t cap = 512 + n * sizeof(layer);
	char *s = malloc(cap);
	size_t len;

	if (!s)
		return NULL;
	len = (size_t)snprintf(s, cap,
			       "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"%s\",\"digest\":"
			       "\"%s\",\"size\":2},\"layers\":[",
			       MEDIA_TYPE_OCI_CONFIG, D("c"));
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(s + len, cap - len, "%s%s", i ? "," : "", layer);
	snprintf(s + len, cap - len, "]}");
	return s;
}

TEST(layer_count_bounded)
{
	struct cove_error err = { 0 };
	struct image_manifest *m = NULL;
	char *ok = many_layers(MANIFEST_MAX_LAYERS), *bad = many_layers(MANIFEST_MAX_LAYERS + 1);

	CHECK_EQ_INT(parse_m(ok, NULL, &m, &err), 0);
	if (m)
		CHECK_EQ_INT(m->n_layers, MANIFEST_MAX_LAYERS);
	image_manifest_free(m);
	m = NULL;
	CHECK_EQ_INT(parse_m(bad, NULL, &m, &err), -EINVAL);
	CHECK(strstr(err.msg, "513 layers") != NULL);
	free(ok);
	free(bad);
}

TEST(index_entries_and_bounds)
{
	struct cove_error err = { 0 };
	struct image_index *idx = NULL;
	static const char entry[] = "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
				    "\"digest\":\"" D("a") "\",\"size\":10}";
	size_t cap = (IMAGE_INDEX_MAX_ENTRIES + 1) * sizeof(entry) + 64, len;
	char *s = malloc(cap);

	CHECK_EQ_INT(image_index_parse(oci_index, LEN(oci_index), NULL, &idx, &err), 0);
	if (idx) {
		CHECK_EQ_INT(idx->n_manifests, 3);
		CHECK(idx->manifests[1].has_platform);
		CHECK_EQ_STR(idx->manifests[1].platform.variant, "v8");
		CHECK_EQ_STR(idx->manifests[2].platform.os, "unknown");
		CHECK_EQ_INT(idx->manifests[0].compression, IMAGE_LAYER_NONE);
	}
	image_index_free(idx);
	idx = NULL;
	CHECK_EQ_INT(image_index_parse(umoci_index, LEN(umoci_index), NULL, &idx, &err), 0);
	if (idx)
		CHECK(!idx->manifests[0].has_platform);
	image_index_free(idx);
	idx = NULL;

	if (!s)
		return;
	len = (size_t)snprintf(s, cap, "{\"schemaVersion\":2,\"manifests\":[");
	for (size_t i = 0; i <= IMAGE_INDEX_MAX_ENTRIES; i++)
		len += (size_t)snprintf(s + len, cap - len, "%s%s", i ? "," : "", entry);
	snprintf(s + len, cap - len, "]}");
	CHECK_EQ_INT(image_index_parse(s, strlen(s), NULL, &idx, &err), -EINVAL);
	CHECK(strstr(err.msg, "1025 entries") != NULL);
	free(s);

	err = (struct cove_error){ 0 };
	static const char no_arch[] = "{\"manifests\":[{\"mediaType\":\"x\",\"digest\":\"" D(
		"a") "\",\"size\":1,\"platform\":{\"os\":\"linux\"}}]}";
	CHECK_EQ_INT(image_index_parse(no_arch, LEN(no_arch), NULL, &idx, &err), -EINVAL);
	CHECK(strstr(err.msg, "manifests[0].platform.architecture is missing") != NULL);
	err = (struct cove_error){ 0 };
	static const char not_array[] =
		"{\"mediaType\":\"" MEDIA_TYPE_OCI_INDEX "\",\"manifests\":{}}";
	CHECK_EQ_INT(image_index_parse(not_array, LEN(not_array), NULL, &idx, &err), -EINVAL);
	CHECK(strstr(err.msg, "manifests is not an array") != NULL);
}

static const char *select_in(const char *json, const char *platform, struct cove_error *err)
{
	static char digest[DIGEST_STRING_MAX];
	struct image_index *idx = NULL;
	const struct image_descriptor *d = NULL;
	struct image_platform p;
	int r;

	*err = (struct cove_error){ 0 };
	digest[0] = '\0';
	if (image_index_parse(json, strlen(json), NULL, &idx, err) < 0)
		return "parse failed";
	if (platform && image_platform_parse(platform, &p, err) < 0) {
		image_index_free(idx);
		return "platform parse failed";
	}
	r = image_index_select(idx, platform ? &p : NULL, &d, err);
	if (r == 0)
		memcpy(digest, d->digest, sizeof(digest));
	image_index_free(idx);
	return r == 0 ? digest : "none";
}

TEST(platform_selection)
{
	struct cove_error err;
	struct image_platform host;

	image_platform_host(&host);
	CHECK_EQ_STR(host.os, "linux");
#if defined(__x86_64__)
	CHECK_EQ_STR(host.architecture, "amd64");
	CHECK_EQ_STR(select_in(oci_index, NULL, &err), D("a"));
#elif defined(__aarch64__)
	CHECK_EQ_STR(host.architecture, "arm64");
	CHECK_EQ_STR(select_in(oci_index, NULL, &err), D("b"));
#endif
	CHECK_EQ_STR(select_in(oci_index, "linux/amd64", &err), D("a"));
	CHECK_EQ_STR(select_in(oci_index, "x86_64", &err), D("a"));
	/* arm64 entries with variant v8 match "linux/arm64", and the other way round */
	CHECK_EQ_STR(select_in(oci_index, "linux/arm64", &err), D("b"));
	CHECK_EQ_STR(select_in(oci_index, "linux/arm64/v8", &err), D("b"));
	CHECK_EQ_STR(select_in(oci_index, "linux/aarch64", &err), D("b"));
	CHECK_EQ_STR(select_in(docker_list, "linux/arm64/v8", &err), D("5"));
	CHECK_EQ_STR(select_in(docker_list, "linux/arm/v7", &err), D("4"));
	CHECK_EQ_STR(select_in(docker_list, "linux/armhf", &err), D("4"));
	CHECK_EQ_STR(select_in(docker_list, "linux/arm/v6", &err), D("3"));
	CHECK_EQ_STR(select_in(docker_list, "linux/arm", &err), D("3")); /* first arm */
	CHECK_EQ_STR(select_in(docker_list, "windows/amd64", &err), D("6"));
	CHECK_EQ_STR(select_in(docker_list, "linux/arm/v5", &err), "none");

	CHECK_EQ_STR(select_in(oci_index, "linux/s390x", &err), "none");
	CHECK_EQ_INT(err.code, ENOENT);
	CHECK_EQ_STR(err.msg, "no linux/s390x image in the index (it has linux/amd64, "
			      "linux/arm64/v8)");
	/* the attestation entry is never chosen */
	CHECK_EQ_STR(select_in(oci_index, "unknown/unknown", &err), "none");
	CHECK(strstr(err.msg, "unknown/unknown image") != NULL);
	/* entries without a platform are not chosen either */
	CHECK_EQ_STR(select_in(umoci_index, "linux/amd64", &err), "none");
	CHECK(strstr(err.msg, "names no platforms") != NULL);
}

TEST(platform_parse)
{
	struct cove_error err = { 0 };
	struct image_platform p;
	char buf[64];

	CHECK_EQ_INT(image_platform_parse("linux/arm64/v8", &p, &err), 0);
	image_platform_format(&p, buf, sizeof(buf));
	CHECK_EQ_STR(buf, "linux/arm64/v8");
	CHECK_EQ_INT(image_platform_parse("ARM64", &p, &err), 0);
	image_platform_format(&p, buf, sizeof(buf));
	CHECK_EQ_STR(buf, "linux/arm64");
	CHECK_EQ_INT(image_platform_parse("linux/armel", &p, &err), 0);
	image_platform_format(&p, buf, sizeof(buf));
	CHECK_EQ_STR(buf, "linux/arm/v6");
	CHECK_EQ_INT(image_platform_parse("linux//v8", &p, &err), -EINVAL);
	CHECK(strstr(err.msg, "invalid platform 'linux//v8'") != NULL);
	CHECK_EQ_INT(image_platform_parse("a/b/c/d", &p, NULL), -EINVAL);
	CHECK_EQ_INT(image_platform_parse("linux/", &p, NULL), -EINVAL);
	CHECK_EQ_INT(image_platform_parse("", &p, NULL), -EINVAL);
	CHECK_EQ_INT(image_platform_parse("linux/amd 64", &p, NULL), -EINVAL);
}

TEST(docker_config)
{
	struct cove_error err;
	struct image_config *c = NULL;

	CHECK_EQ_INT(parse_c(docker_config, &c, &err), 0);
	if (!c)
		return;
	CHECK_EQ_STR(c->architecture, "amd64");
	CHECK_EQ_STR(c->os, "linux");
	CHECK(c->variant == NULL);
	CHECK_EQ_STR(c->user, "1000:1000");
	CHECK_EQ_STR(c->working_dir, "/app");
	CHECK_EQ_STR(c->stop_signal, "SIGINT");
	CHECK_EQ_INT(c->n_entrypoint, 1);
	CHECK_EQ_STR(c->entrypoint[0], "/app/server");
	CHECK(c->entrypoint[1] == NULL);
	CHECK_EQ_INT(c->n_cmd, 2);
	CHECK_EQ_STR(c->cmd[1], "8080");
	CHECK_EQ_INT(c->n_env, 3);
	CHECK_EQ_STR(c->env[1], "LANG=C.UTF-8");
	CHECK(c->env[3] == NULL);
	CHECK_EQ_INT(c->n_labels, 2);
	CHECK_EQ_STR(c->labels[0].key, "maintainer");
	CHECK_EQ_STR(c->labels[0].value, "ops");
	CHECK_EQ_INT(c->n_exposed_ports, 2);
	CHECK_EQ_STR(c->exposed_ports[0], "8080/tcp");
	CHECK_EQ_STR(c->exposed_ports[1], "9090/udp");
	CHECK_EQ_INT(c->n_volumes, 1);
	CHECK_EQ_STR(c->volumes[0], "/data");
	CHECK_EQ_INT(c->n_diff_ids, 2);
	CHECK_EQ_STR(c->diff_ids[1], D("f"));
	image_config_free(c);
}

TEST(oci_config_nulls_and_layers_check)
{
	struct cove_error err;
	struct image_config *c = NULL;
	struct image_manifest *m = NULL;

	CHECK_EQ_INT(parse_c(oci_config, &c, &err), 0);
	if (!c)
		return;
	CHECK_EQ_STR(c->variant, "v8");
	CHECK(c->entrypoint == NULL); /* null */
	CHECK_EQ_INT(c->n_entrypoint, 0);
	CHECK_EQ_STR(c->cmd[0], "bash");
	CHECK(c->user == NULL && c->working_dir == NULL && c->labels == NULL);
	CHECK_EQ_INT(parse_m(docker_manifest, NULL, &m, &err), 0);
	if (m) {
		CHECK_EQ_INT(image_config_check_layers(c, m, &err), -EINVAL);
		CHECK(strstr(err.msg, "lists 1 layers (rootfs.diff_ids) but the manifest has 2") !=
		      NULL);
	}
	image_config_free(c);
	c = NULL;
	CHECK_EQ_INT(parse_c(docker_config, &c, &err), 0);
	if (c && m)
		CHECK_EQ_INT(image_config_check_layers(c, m, &err), 0);
	image_config_free(c);
	image_manifest_free(m);
}

static void bad_config(const char *from, const char *to, int code, const char *msg)
{
	struct cove_error err;
	struct image_config *c = NULL;
	char *json = replace(docker_config, from, to);

	CHECK(json != NULL);
	if (!json)
		return;
	CHECK_EQ_INT(parse_c(json, &c, &err), code);
	if (!strstr(err.msg, msg))
		printf("# message: %s\n", err.msg);
	CHECK(strstr(err.msg, msg) != NULL);
	CHECK(c == NULL);
	image_config_free(c);
	free(json);
}

TEST(bad_configs_name_their_path)
{
	bad_config("\"APP_HOME=/app\"]", "\"APP_HOME=/app\",4]", -EINVAL,
		   "invalid image config: config.Env[3] is not a string");
	bad_config("\"Env\":[", "\"Env\":{\"a\":[", -EINVAL, "malformed JSON");
	bad_config("\"Cmd\":[\"--port\",\"8080\"]", "\"Cmd\":\"--port 8080\"", -EINVAL,
		   "config.Cmd is not an array");
	bad_config("\"maintainer\":\"ops\"", "\"maintainer\":7", -EINVAL,
		   "config.Labels.maintainer is not a string");
	bad_config("\"User\":\"1000:1000\"", "\"User\":1000", -EINVAL,
		   "config.User is not a string");
	bad_config("\"ExposedPorts\":{", "\"ExposedPorts\":[{", -EINVAL, "malformed JSON");
	bad_config("\"Volumes\":{\"/data\":{}}", "\"Volumes\":[\"/data\"]", -EINVAL,
		   "config.Volumes is not an object");
	bad_config("\"type\":\"layers\"", "\"type\":\"zfs\"", -EOPNOTSUPP, "rootfs.type 'zfs'");
	bad_config("\"rootfs\"", "\"rootfz\"", -EINVAL, "rootfs is missing");
	bad_config(D("f"), "sha256:F", -EINVAL, "rootfs.diff_ids[1]: invalid digest");
	bad_config("\"architecture\":\"amd64\"", "\"architecture\":[]", -EINVAL,
		   "architecture is not a string");
	bad_config("\"config\":{\"Hostname\"", "\"config\":[{\"Hostname\"", -EINVAL,
		   "malformed JSON");
}

TEST(config_bounds)
{
	struct cove_error err;
	struct image_config *c = NULL;
	size_t n = IMAGE_CONFIG_MAX_ENV + 1, cap = n * 8 + 256, len;
	char *s = malloc(cap), *big = malloc(IMAGE_STRING_MAX + 256);

	if (!s || !big) {
		free(s);
		free(big);
		return;
	}
	len = (size_t)snprintf(s, cap, "{\"config\":{\"Env\":[");
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(s + len, cap - len, "%s\"A=1\"", i ? "," : "");
	snprintf(s + len, cap - len, "]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}");
	CHECK_EQ_INT(parse_c(s, &c, &err), -EINVAL);
	CHECK(strstr(err.msg, "config.Env has too many entries (4097, at most 4096)") != NULL);

	len = (size_t)snprintf(big, IMAGE_STRING_MAX + 256, "{\"config\":{\"WorkingDir\":\"");
	memset(big + len, 'a', IMAGE_STRING_MAX + 1);
	len += IMAGE_STRING_MAX + 1;
	snprintf(big + len, 128, "\"},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}");
	CHECK_EQ_INT(parse_c(big, &c, &err), -EINVAL);
	CHECK(strstr(err.msg, "config.WorkingDir is too long") != NULL);
	CHECK(c == NULL);
	free(s);
	free(big);

	/* a scratch image: no config at all, no layers */
	CHECK_EQ_INT(parse_c("{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]},\"config\":null}",
			     &c, &err),
		     0);
	if (c)
		CHECK(c->n_diff_ids == 0 && c->env == NULL && c->os == NULL);
	image_config_free(c);
	/* "\u0000" would cut a C string short: refused */
	c = NULL;
	CHECK_EQ_INT(parse_c("{\"config\":{\"User\":\"root\\u0000x\"},\"rootfs\":{\"type\":"
			     "\"layers\",\"diff_ids\":[]}}",
			     &c, &err),
		     -EINVAL);
	CHECK(c == NULL);
}

TEST(free_null)
{
	image_manifest_free(NULL);
	image_index_free(NULL);
	image_config_free(NULL);
}

int main(void)
{
	RUN(docker_manifest);
	RUN(umoci_manifest_without_media_type);
	RUN(detect_types);
	RUN(schema1_refused);
	RUN(unknown_types_rejected_by_name);
	RUN(bad_descriptors_name_their_path);
	RUN(size_limits_checked_first);
	RUN(layer_count_bounded);
	RUN(index_entries_and_bounds);
	RUN(platform_selection);
	RUN(platform_parse);
	RUN(docker_config);
	RUN(oci_config_nulls_and_layers_check);
	RUN(bad_configs_name_their_path);
	RUN(config_bounds);
	RUN(free_null);
	return test_done();
}
