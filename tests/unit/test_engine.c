/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libcove without a VM: containers on disk (create, name, find by name and prefix, list,
 * lock, state, remove), the container log, environment lists, signal names, config.json to
 * START. The supervisor and sessions are tested with real VMs in tests/integration.
 */
#define _GNU_SOURCE
#include "test.h"

#include "engine/container.h"
#include "engine/create.h"
#include "engine/log.h"
#include "engine/spec.h"
#include "engine/network.h"
#include "engine/volume.h"
#include "engine/ports.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

static char dir[] = "/tmp/cove-test-engine.XXXXXX";
static struct cove_paths paths;

TEST(container_lifecycle_on_disk)
{
	struct cove_error err = { 0 };
	struct container a = { .lock_fd = -1 }, b = { .lock_fd = -1 }, f, f2;
	struct container_status st;
	struct container_spec cfg;
	char **ids = NULL;
	size_t n = 0;

	spec_init(&cfg);
	CHECK_EQ_INT(container_list(&paths, &ids, &n, &err), 0); /* none yet */
	CHECK_EQ_INT(n, 0);
	container_list_free(ids, n);
	CHECK_EQ_INT(container_create(&paths, "web", false, &a, &err), 0);
	CHECK_EQ_INT((int)strlen(a.id), 64);
	CHECK_EQ_STR(a.name, "web");
	CHECK_EQ_INT(container_find(&paths, "web", &f, &err), -ENOENT); /* no config.json yet */
	CHECK_EQ_INT(container_save_spec(&a, &cfg, &err), 0);
	err = (struct cove_error){ 0 };
	CHECK_EQ_INT(container_create(&paths, "web", false, &b, &err), -EEXIST);
	CHECK(strstr(err.msg, "'web' is already in use") != NULL);
	container_abandon(&b);
	container_unlock(&b);
	err = (struct cove_error){ 0 };
	b = (struct container){ .lock_fd = -1 };
	CHECK_EQ_INT(container_create(&paths, NULL, true, &b, &err), 0);
	CHECK_EQ_INT(container_save_spec(&b, &cfg, &err), 0);
	container_unlock(&b);
	spec_done(&cfg);

	/* by name, whole ID, unique prefix; not by a prefix both share or nothing */
	CHECK_EQ_INT(container_find(&paths, "web", &f, &err), 0);
	CHECK_EQ_STR(f.id, a.id);
	CHECK_EQ_INT(container_find(&paths, a.id, &f2, &err), 0);
	CHECK_EQ_STR(f2.id, a.id);
	CHECK_EQ_INT(container_find(&paths, b.short_id, &f2, &err), 0);
	CHECK_EQ_STR(f2.id, b.id);
	CHECK(container_find(&paths, "nosuch", &f2, &err) < 0);
	CHECK_EQ_INT(container_list(&paths, &ids, &n, &err), 0);
	CHECK_EQ_INT(n, 2);
	container_list_free(ids, n);

	/* the lock: held by a, so another handle on it cannot take it */
	CHECK_EQ_INT(container_lock(&f, 0), -EBUSY);
	/* state: created; a "running" whose lock is free reads as exited */
	CHECK_EQ_INT(container_get_status(&a, &st), 0);
	CHECK_EQ_INT(st.status, CONTAINER_CREATED);
	st.status = CONTAINER_RUNNING;
	st.pid = 4242;
	str_copy(st.accel, sizeof(st.accel), "tcg");
	CHECK_EQ_INT(container_save_status(&a, &st), 0);
	CHECK_EQ_INT(container_get_status(&f, &st), 0);
	CHECK_EQ_INT(st.status, CONTAINER_RUNNING); /* a holds the lock */
	CHECK_EQ_STR(st.accel, "tcg");
	container_unlock(&a);
	CHECK_EQ_INT(container_get_status(&f, &st), 0);
	CHECK_EQ_INT(st.status, CONTAINER_EXITED);
	CHECK_EQ_INT(st.exit_code, 255);
	CHECK(strstr(st.error, "supervisor died") != NULL);

	/* removed: name and directory gone */
	CHECK_EQ_INT(container_lock(&f, 0), 0);
	container_remove(&f);
	CHECK(container_find(&paths, "web", &f2, &err) < 0);
	CHECK_EQ_INT(access(a.dir, F_OK), -1);
}

TEST(log_round_trip)
{
	char path[256];
	FILE *f;
	struct log_record rec;
	uint8_t *buf = NULL;
	size_t cap = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/container.log", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	CHECK_EQ_INT(log_append(fd, LOG_STDOUT, "hello\n", 6), 0);
	CHECK_EQ_INT(log_append(fd, LOG_STDERR, "\0\xff", 2), 0);
	close(fd);
	f = fopen(path, "re");
	CHECK(f != NULL);
	if (!f)
		return;
	CHECK_EQ_INT(log_next(f, &rec, &buf, &cap), 1);
	CHECK(rec.stream == LOG_STDOUT && rec.len == 6 && memcmp(rec.data, "hello\n", 6) == 0);
	CHECK(rec.time[0] != '\0');
	CHECK_EQ_INT(log_next(f, &rec, &buf, &cap), 1);
	CHECK(rec.stream == LOG_STDERR && rec.len == 2 && memcmp(rec.data, "\0\xff", 2) == 0);
	CHECK_EQ_INT(log_next(f, &rec, &buf, &cap), 0);
	fclose(f);
	free(buf);
}

TEST(env_lists)
{
	struct cove_error err = { 0 };
	char **env = NULL, *base[] = { (char *)"PATH=/bin", (char *)"A=1", NULL };
	char **merged;
	size_t n = 0;
	uint32_t nm;

	setenv("COVE_TEST_FROM_HERE", "x y", 1);
	unsetenv("COVE_TEST_UNSET");
	CHECK_EQ_INT(env_list_add(&env, &n, "A=2", &err), 0);
	CHECK_EQ_INT(env_list_add(&env, &n, "COVE_TEST_FROM_HERE", &err), 0);
	CHECK_EQ_INT(env_list_add(&env, &n, "COVE_TEST_UNSET", &err), 0); /* adds nothing */
	CHECK_EQ_INT(env_list_add(&env, &n, "=x", &err), -EINVAL);
	CHECK_EQ_STR(err.msg, "invalid environment variable '=x': expected KEY=VALUE");
	CHECK_EQ_INT(n, 2);
	merged = merge_env(base, 2, env, n, &nm);
	CHECK(merged != NULL);
	if (merged) {
		CHECK_EQ_INT(nm, 3);
		CHECK_EQ_STR(merged[0], "PATH=/bin");
		CHECK_EQ_STR(merged[1], "A=2");
		CHECK_EQ_STR(merged[2], "COVE_TEST_FROM_HERE=x y");
		CHECK(merged[3] == NULL);
	}
	free(merged);
	env_list_free(env, n);
}

TEST(signal_names)
{
	char buf[32];
	int sig = 0;

	CHECK_EQ_INT(signal_parse("SIGTERM", &sig), 0);
	CHECK_EQ_INT(sig, SIGTERM);
	CHECK_EQ_INT(signal_parse("kill", &sig), 0);
	CHECK_EQ_INT(sig, SIGKILL);
	CHECK_EQ_INT(signal_parse("15", &sig), 0);
	CHECK_EQ_INT(sig, 15);
	CHECK_EQ_INT(signal_parse("SIGNOPE", &sig), -EINVAL);
	CHECK_EQ_INT(signal_parse("0", &sig), -EINVAL);
	CHECK_EQ_STR(signal_name(SIGKILL, buf, sizeof(buf)), "SIGKILL");
}

static struct container_spec sample(void)
{
	struct container_spec s;
	char *args[] = { (char *)"sh", (char *)"-c", (char *)"echo hi" };
	char *env[] = { (char *)"PATH=/bin", (char *)"A=1" };
	char *tmpfs[] = { (char *)"/run:size=1m,mode=1777", (char *)"/scratch" };
	char *cmd[] = { (char *)"-c", (char *)"echo hi" };
	char *ep[] = { (char *)"sh" };
	char *add[] = { (char *)"NET_ADMIN" };

	spec_init(&s);
	s.args = strv_copy(args, 3);
	s.nargs = 3;
	s.env = strv_copy(env, 2);
	s.nenv = 2;
	s.tmpfs = strv_copy(tmpfs, 2);
	s.ntmpfs = 2;
	s.cmd = strv_copy(cmd, 2);
	s.ncmd = 2;
	s.entrypoint = strv_copy(ep, 1);
	s.nentrypoint = 1;
	s.cap_add = strv_copy(add, 1);
	s.ncap_add = 1;
	s.cap_drop = strv_copy(NULL, 0);
	s.cwd = strdup("/data");
	s.user = strdup("nobody");
	s.hostname = strdup("box");
	s.id = strdup("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	s.name = strdup("web");
	s.created = strdup("2026-12-05T01:02:03.000000004Z");
	s.image = strdup("127.0.0.1:5000/debian:12");
	s.snapshot = strdup("snapshots/abc.ext4");
	s.rootfs = strdup("");
	s.accel = strdup("tcg");
	s.terminal = s.open_stdin = s.readonly = s.init = s.unconfined = s.autoremove = true;
	s.cpus = 2;
	s.memory = 256ULL << 20;
	s.stop_signal = SIGQUIT;
	s.stop_timeout = 3;
	s.caps = 0x5;
	s.rlimits[0] = (struct spec_rlimit){ 7, 1024, UINT64_MAX };
	s.nrlimits = 1;
	json_object_set_new(s.labels, "tier", json_string("front"));
	return s;
}

static bool strv_eq(char **a, size_t na, char **b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i], b[i]) != 0)
			return false;
	return true;
}

/* spec -> config.json -> spec keeps everything, and the file is an OCI runtime spec */
TEST(spec_round_trip)
{
	struct cove_error err = { 0 };
	struct container_spec s = sample(), t;
	json_t *j = NULL, *ann, *m;

	CHECK_EQ_INT(spec_to_json(&s, &j, &err), 0);
	CHECK_EQ_STR(json_string_value(json_object_get(j, "ociVersion")), "1.0.2");
	CHECK_EQ_STR(json_string_value(json_object_get(json_object_get(j, "process"), "cwd")), "/data");
	CHECK(json_is_true(json_object_get(json_object_get(j, "root"), "readonly")));
	CHECK_EQ_STR(json_string_value(json_array_get(json_object_get(json_object_get(
			     json_object_get(j, "process"), "capabilities"), "bounding"), 1)),
		     "CAP_DAC_READ_SEARCH");
	CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(json_object_get(
			     json_object_get(j, "process"), "rlimits"), 0), "type")),
		     "RLIMIT_NOFILE");
	m = json_array_get(json_object_get(j, "mounts"), 0);
	CHECK_EQ_STR(json_string_value(json_object_get(m, "destination")), "/run");
	CHECK_EQ_STR(json_string_value(json_object_get(m, "type")), "tmpfs");
	CHECK_EQ_STR(json_string_value(json_array_get(json_object_get(m, "options"), 1)), "mode=1777");
	CHECK_EQ_STR(json_string_value(json_array_get(json_object_get(json_object_get(j, "linux"),
								       "maskedPaths"), 3)),
		     "/proc/kcore");
	CHECK_EQ_STR(json_string_value(json_array_get(json_object_get(json_object_get(j, "linux"),
								       "readonlyPaths"), 3)),
		     "/proc/sys");
	ann = json_object_get(j, "annotations");
	CHECK_EQ_STR(json_string_value(json_object_get(ann, "io.cove.vm.cpus")), "2");
	CHECK_EQ_STR(json_string_value(json_object_get(ann, "io.cove.label.tier")), "front");
	CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(json_object_get(
			     json_object_get(j, "linux"), "resources"), "memory"), "limit")),
		     256LL << 20);

	CHECK_EQ_INT(spec_from_json(j, &t, &err), 0);
	CHECK(strv_eq(t.args, t.nargs, s.args, s.nargs) && strv_eq(t.env, t.nenv, s.env, s.nenv));
	CHECK(strv_eq(t.tmpfs, t.ntmpfs, s.tmpfs, s.ntmpfs));
	CHECK(strv_eq(t.cmd, t.ncmd, s.cmd, s.ncmd));
	CHECK(strv_eq(t.entrypoint, t.nentrypoint, s.entrypoint, s.nentrypoint));
	CHECK(strv_eq(t.cap_add, t.ncap_add, s.cap_add, s.ncap_add) && t.ncap_drop == 0);
	CHECK_EQ_STR(t.cwd, "/data");
	CHECK_EQ_STR(t.user, "nobody");
	CHECK_EQ_STR(t.hostname, "box");
	CHECK_EQ_STR(t.id, s.id);
	CHECK_EQ_STR(t.name, "web");
	CHECK_EQ_STR(t.created, s.created);
	CHECK_EQ_STR(t.image, s.image);
	CHECK_EQ_STR(t.snapshot, s.snapshot);
	CHECK_EQ_STR(t.accel, "tcg");
	CHECK(t.terminal && t.open_stdin && t.readonly && t.init && t.unconfined && t.autoremove);
	CHECK(t.cpus == 2 && t.memory == 256ULL << 20 && t.caps == 0x5);
	CHECK(t.stop_signal == SIGQUIT && t.stop_timeout == 3);
	CHECK(t.nrlimits == 1 && t.rlimits[0].resource == 7 && t.rlimits[0].soft == 1024 &&
	      t.rlimits[0].hard == UINT64_MAX);
	CHECK_EQ_STR(json_string_value(json_object_get(t.labels, "tier")), "front");
	json_decref(j);
	spec_done(&t);
	spec_done(&s);
}

TEST(spec_to_start)
{
	struct cove_error err = { 0 };
	struct container_spec s = sample();
	struct proto_start m;
	struct buf b = BUF_INIT(1 << 20);

	CHECK_EQ_INT(spec_start(&s, &m, &err), 0);
	CHECK_EQ_INT(m.argc, 3);
	CHECK_EQ_STR(m.argv[2], "echo hi");
	CHECK_EQ_STR(m.env[1], "A=1");
	CHECK_EQ_STR(m.cwd, "/data");
	CHECK_EQ_STR(m.user, "nobody");
	CHECK_EQ_STR(m.hostname, "box");
	CHECK_EQ_STR(m.rootfs, "/dev/vda");
	CHECK(m.terminal && m.open_stdin && m.readonly && m.init && m.unconfined && m.caps == 5);
	CHECK_EQ_INT(m.ntmpfs, 2);
	CHECK(m.nrlimits == 1 && m.rlimits[0].hard == UINT64_MAX);
	/* and the guest would take it */
	CHECK_EQ_INT(proto_put_start(&b, 1, &m), 0);
	spec_start_done(&m);
	buf_done(&b);
	spec_done(&s);
}

/* another runtime's config.json, as runc spec writes it: what cove supports of it */
TEST(spec_from_runc_style)
{
	struct cove_error err = { 0 };
	struct container_spec s;
	json_t *j = json_loads(
		"{\"ociVersion\":\"1.0.2-dev\",\"process\":{\"terminal\":true,\"user\":{\"uid\":1000,"
		"\"gid\":100},\"args\":[\"sh\"],\"env\":[\"PATH=/usr/bin:/bin\",\"TERM=xterm\"],"
		"\"cwd\":\"/\",\"capabilities\":{\"bounding\":[\"CAP_AUDIT_WRITE\",\"CAP_KILL\","
		"\"CAP_NET_BIND_SERVICE\"],\"effective\":[\"CAP_KILL\"]},\"rlimits\":[{\"type\":"
		"\"RLIMIT_NOFILE\",\"hard\":1024,\"soft\":1024}],\"noNewPrivileges\":true},"
		"\"root\":{\"path\":\"rootfs\",\"readonly\":true},\"hostname\":\"runc\","
		"\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"},"
		"{\"destination\":\"/dev\",\"type\":\"tmpfs\",\"source\":\"tmpfs\",\"options\":"
		"[\"nosuid\",\"strictatime\",\"mode=755\",\"size=65536k\"]},{\"destination\":"
		"\"/dev/shm\",\"type\":\"tmpfs\",\"source\":\"shm\",\"options\":[\"nosuid\"]},"
		"{\"destination\":\"/cache\",\"type\":\"tmpfs\",\"source\":\"tmpfs\",\"options\":"
		"[\"size=8m\"]}],\"linux\":{\"resources\":{\"memory\":{\"limit\":134217728}},"
		"\"namespaces\":[{\"type\":\"pid\"}],\"maskedPaths\":[\"/proc/kcore\"]}}",
		0, NULL);

	CHECK(j != NULL);
	CHECK_EQ_INT(spec_from_json(j, &s, &err), 0);
	CHECK(s.nargs == 1 && strcmp(s.args[0], "sh") == 0 && s.nenv == 2);
	CHECK(s.terminal && s.readonly && s.uid == 1000 && s.gid == 100);
	CHECK(s.user == NULL);
	CHECK_EQ_STR(s.hostname, "runc");
	CHECK_EQ_INT(s.caps, (1ULL << 29) | (1ULL << 5) | (1ULL << 10));
	CHECK(s.nrlimits == 1 && s.rlimits[0].soft == 1024);
	CHECK_EQ_INT(s.ntmpfs, 1); /* /dev and /dev/shm are the guest's own */
	CHECK_EQ_STR(s.tmpfs[0], "/cache:size=8m");
	CHECK_EQ_INT(s.memory, 134217728);
	CHECK_EQ_INT(s.cpus, 1);
	json_decref(j);
	spec_done(&s);
	/* and what `runc spec` itself writes, when runc is here */
	if (system("command -v runc >/dev/null 2>&1") == 0) {
		char cmd[700], path[300];
		snprintf(path, sizeof(path), "%s/runc", dir);
		snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && cd '%s' && runc spec", path, path);
		CHECK_EQ_INT(system(cmd), 0);
		snprintf(path, sizeof(path), "%s/runc/config.json", dir);
		j = json_load_file(path, 0, NULL);
		CHECK(j != NULL);
		CHECK_EQ_INT(spec_from_json(j, &s, &err), 0);
		CHECK(s.nargs == 1 && strcmp(s.args[0], "sh") == 0 && s.terminal);
		CHECK(s.caps & (1ULL << 5)); /* CAP_KILL */
		CHECK(s.nrlimits == 1);
		CHECK_EQ_INT(s.ntmpfs, 0);
		json_decref(j);
		spec_done(&s);
	}
}

/* config.json as cove wrote it before it was an OCI spec: older containers keep working */
TEST(spec_from_previous_layout)
{
	struct cove_error err = { 0 };
	struct container_spec s;
	json_t *j = json_pack(
		"{s:{s:[s,s], s:[s], s:s, s:s, s:b, s:b}, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:b,"
		" s:b, s:I, s:[s], s:[{s:s, s:i, s:I, s:I}], s:i, s:I, s:i, s:i, s:b, s:{s:s}}",
		"process", "args", "sh", "-c", "env", "A=1", "cwd", "/data", "user", "1000",
		"terminal", 1, "open_stdin", 0, "id", "abc", "name", "old", "created", "2026-01-01",
		"image", "busybox", "snapshot", "snapshots/x.ext4", "hostname", "box", "readonly", 1,
		"init", 1, "unconfined", 0, "caps", (json_int_t)5, "tmpfs", "/run:size=1m",
		"rlimits", "name", "nofile", "resource", 7, "soft", (json_int_t)1024, "hard",
		(json_int_t)-1, "cpus", 2, "memory", (json_int_t)(256LL << 20), "stop_signal", 3,
		"stop_timeout", 4, "autoremove", 1, "labels", "k", "v");

	CHECK_EQ_INT(spec_from_json(j, &s, &err), 0);
	CHECK(s.nargs == 2 && strcmp(s.args[1], "-c") == 0);
	CHECK_EQ_STR(s.user, "1000");
	CHECK_EQ_STR(s.name, "old");
	CHECK(s.terminal && !s.open_stdin && s.readonly && s.init && s.autoremove);
	CHECK(s.caps == 5 && s.cpus == 2 && s.stop_signal == 3 && s.stop_timeout == 4);
	CHECK(s.nrlimits == 1 && s.rlimits[0].hard == UINT64_MAX);
	CHECK_EQ_STR(s.tmpfs[0], "/run:size=1m");
	CHECK_EQ_STR(json_string_value(json_object_get(s.labels, "k")), "v");
	json_decref(j);
	spec_done(&s);
	/* one it cannot use is one line saying so */
	j = json_pack("{s:s}", "process", "nope");
	CHECK_EQ_INT(spec_from_json(j, &s, &err), -EINVAL);
	CHECK_EQ_STR(err.msg, "config.json has no process");
	json_decref(j);
}

/* what loads is a spec cove can run: out-of-range values are refused, in one line (found by
 * fuzz_spec: a stop signal of 90 loaded, then its own saved form did not) */
TEST(spec_out_of_range)
{
	static const struct {
		const char *json, *msg;
	} bad[] = {
		{ "{\"process\":{}, \"stop_signal\":90}", "config.json has a stop signal out of 1..64" },
		{ "{\"process\":{}, \"stop_timeout\":-1}", "config.json has a stop timeout out of 0..86400 s" },
		{ "{\"process\":{}, \"cpus\":65}", "config.json asks for 65 CPUs (1..64)" },
		{ "{\"process\":{}, \"memory\":1048576}",
		  "config.json asks for 1048576 bytes of memory (64 MiB to 1 TiB)" },
		{ "{\"process\":{}, \"caps\":-1}", "config.json has unknown capabilities" },
		{ "{\"process\":{}, \"rlimits\":[{\"resource\":99,\"soft\":1,\"hard\":1}]}",
		  "config.json has a bad rlimit" },
		{ "{\"ociVersion\":\"1.0.2\", \"process\":{\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\","
		  "\"soft\":10,\"hard\":5}]}}", "config.json has a bad rlimit" },
		{ "{\"ociVersion\":\"1.0.2\", \"process\":{}, \"annotations\":{\"io.cove.stop-signal\":\"0\"}}",
		  "config.json has a stop signal out of 1..64" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct cove_error err = { 0 };
		struct container_spec s;
		json_t *j = json_loads(bad[i].json, 0, NULL);

		CHECK(j != NULL);
		CHECK_EQ_INT(spec_from_json(j, &s, &err), -EINVAL);
		CHECK_EQ_STR(err.msg, bad[i].msg);
		json_decref(j);
	}
}

/* run's flags over an image's config, as docker applies them */
TEST(spec_from_flags_and_image)
{
	struct cove_error err = { 0 };
	struct container c = { .id = "feedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedface",
			       .short_id = "feedfacefeed", .name = "web" };
	char *img_ep[] = { (char *)"/entry.sh" }, *img_cmd[] = { (char *)"serve" };
	char *img_env[] = { (char *)"PATH=/opt/bin", (char *)"MODE=image", (char *)"KEEP=1" };
	char *img_ports[] = { (char *)"80/tcp", (char *)"53/udp", (char *)"443", (char *)"8080/tcp" };
	struct image_label img_labels[] = { { (char *)"tier", (char *)"image" },
					    { (char *)"team", (char *)"ops" } };
	struct image_config cfg = {
		.entrypoint = img_ep, .n_entrypoint = 1, .cmd = img_cmd, .n_cmd = 1,
		.env = img_env, .n_env = 3, .working_dir = (char *)"/srv", .user = (char *)"app",
		.stop_signal = (char *)"SIGQUIT", .labels = img_labels, .n_labels = 2,
		.exposed_ports = img_ports, .n_exposed_ports = 4,
	};
	char *env[] = { (char *)"MODE=flag", NULL }, *args[] = { (char *)"--debug" };
	struct create_request q = { .image = "registry/app:1", .env = env, .nenv = 1,
				    .tty = true, .cpus = 2, .memory = 1ULL << 30,
				    .stop_timeout = -1 };
	struct container_spec s;

	q.labels = json_pack("{s:s}", "tier", "flag");
	q.cap_add = json_pack("[s]", "NET_ADMIN");
	q.cap_drop = json_pack("[s]", "KILL");
	/* -P with -p 127.0.0.1:9000:8080: the image's 80, 53/udp and 443 on picked ports */
	q.publish_all = true;
	q.ports = json_pack("[s]", "127.0.0.1:9000:8080/tcp");
	/* the image's entrypoint and cmd, env under -e, its workdir, user, stop signal, labels */
	CHECK_EQ_INT(spec_from_request(&q, &cfg, &c, "2026-12-05T00:00:00Z", "snapshots/s.ext4", &s,
				       &err), 0);
	CHECK(s.nargs == 2 && strcmp(s.args[0], "/entry.sh") == 0 && strcmp(s.args[1], "serve") == 0);
	CHECK(s.nenv == 5);
	CHECK_EQ_STR(s.env[0], "PATH=/opt/bin"); /* the image's PATH replaces the default */
	CHECK_EQ_STR(s.env[1], "MODE=flag");
	CHECK_EQ_STR(s.env[3], "HOSTNAME=feedfacefeed");
	CHECK_EQ_STR(s.env[4], "TERM=xterm");
	CHECK_EQ_STR(s.cwd, "/srv");
	CHECK_EQ_STR(s.user, "app");
	CHECK_EQ_STR(s.hostname, "feedfacefeed");
	CHECK_EQ_INT(s.stop_signal, SIGQUIT);
	CHECK_EQ_INT(s.stop_timeout, 10);
	CHECK_EQ_STR(json_string_value(json_object_get(s.labels, "tier")), "flag");
	CHECK_EQ_STR(json_string_value(json_object_get(s.labels, "team")), "ops");
	CHECK(s.caps & (1ULL << 12));  /* CAP_NET_ADMIN added */
	CHECK(!(s.caps & (1ULL << 5))); /* CAP_KILL dropped */
	CHECK(s.cpus == 2 && s.memory == 1ULL << 30 && s.terminal && s.accel == NULL);
	CHECK_EQ_INT(s.nports, 4);
	CHECK_EQ_STR(s.ports[0], "127.0.0.1:9000:8080/tcp");
	CHECK_EQ_STR(s.ports[1], "0.0.0.0:0:80/tcp");
	CHECK_EQ_STR(s.ports[2], "0.0.0.0:0:53/udp");
	CHECK_EQ_STR(s.ports[3], "0.0.0.0:0:443/tcp");
	CHECK_EQ_STR(s.image, "registry/app:1");
	CHECK_EQ_STR(s.snapshot, "snapshots/s.ext4");
	spec_done(&s);

	/* arguments replace Cmd; --entrypoint replaces the entrypoint and drops Cmd */
	q.args = args;
	q.nargs = 1;
	CHECK_EQ_INT(spec_from_request(&q, &cfg, &c, "t", NULL, &s, &err), 0);
	CHECK(s.nargs == 2 && strcmp(s.args[1], "--debug") == 0);
	spec_done(&s);
	q.nargs = 0;
	q.entrypoint = "/bin/true";
	q.workdir = "/w";
	q.user = "1000:1000";
	q.stop_signal = SIGINT;
	CHECK_EQ_INT(spec_from_request(&q, &cfg, &c, "t", NULL, &s, &err), 0);
	CHECK(s.nargs == 1 && strcmp(s.args[0], "/bin/true") == 0 && s.ncmd == 0);
	CHECK(strcmp(s.cwd, "/w") == 0 && strcmp(s.user, "1000:1000") == 0 && s.stop_signal == SIGINT);
	spec_done(&s);
	/* --entrypoint "" and no arguments: nothing to run */
	q.entrypoint = "";
	CHECK_EQ_INT(spec_from_request(&q, &cfg, &c, "t", NULL, &s, &err), -EINVAL);
	CHECK(strstr(err.msg, "no command") == err.msg);
	json_decref(q.labels);
	json_decref(q.cap_add);
	json_decref(q.cap_drop);
	json_decref(q.ports);
}

/* -p's forms, canonical as they are kept, and what is refused */
TEST(port_forms)
{
	static const struct {
		const char *in, *canon;
	} good[] = {
		{ "80", "0.0.0.0:0:80/tcp" },
		{ "8080:80", "0.0.0.0:8080:80/tcp" },
		{ "127.0.0.1:8080:80/tcp", "127.0.0.1:8080:80/tcp" },
		{ "127.0.0.1::80", "127.0.0.1:0:80/tcp" },
		{ "5353:53/udp", "0.0.0.0:5353:53/udp" },
	};
	static const char *const bad[] = { "", "0", "65536", "80/sctp", "80/", "a:80", "1.2.3:80:80",
					   "8080:", ":80", "8000-8010:80", "80:8000-8010",
					   "1.2.3.4:80", "80:80:80:80", "90-80", "8000-:80", "80-81",
					   "1-65535" };
	/* ranges: host and container of one length, or the container's alone */
	static const struct {
		const char *in, *first, *last;
		size_t n;
	} ranges[] = {
		{ "8000-8002:80-82", "0.0.0.0:8000:80/tcp", "0.0.0.0:8002:82/tcp", 3 },
		{ "127.0.0.1::7000-7001/udp", "127.0.0.1:0:7000/udp", "127.0.0.1:0:7001/udp", 2 },
		{ "9000-9000:90", "0.0.0.0:9000:90/tcp", "0.0.0.0:9000:90/tcp", 1 },
	};
	struct port_map m, many[64];
	char why[160], canon[64];
	size_t n;

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		CHECK_EQ_INT(port_parse(good[i].in, &m, why, sizeof(why)), 0);
		port_format(&m, canon, sizeof(canon));
		CHECK_EQ_STR(canon, good[i].canon);
		CHECK_EQ_INT(port_parse(canon, &m, why, sizeof(why)), 0); /* kept, then read again */
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		why[0] = '\0';
		CHECK_EQ_INT(port_parse(bad[i], &m, why, sizeof(why)), -EINVAL);
		CHECK(why[0] != '\0');
	}
	for (size_t i = 0; i < ARRAY_SIZE(ranges); i++) {
		CHECK_EQ_INT(port_parse_all(ranges[i].in, many, ARRAY_SIZE(many), &n, why,
					    sizeof(why)), 0);
		CHECK_EQ_INT(n, ranges[i].n);
		port_format(&many[0], canon, sizeof(canon));
		CHECK_EQ_STR(canon, ranges[i].first);
		port_format(&many[n - 1], canon, sizeof(canon));
		CHECK_EQ_STR(canon, ranges[i].last);
	}
	/* more than fit, and unequal lengths */
	CHECK_EQ_INT(port_parse_all("1-65535", many, ARRAY_SIZE(many), &n, why, sizeof(why)), -EINVAL);
	CHECK(strstr(why, "at most 64") != NULL);
	CHECK_EQ_INT(port_parse_all("8000-8003:80-81", many, ARRAY_SIZE(many), &n, why, sizeof(why)),
		     -EINVAL);
	CHECK(strstr(why, "differ in length") != NULL);
}

/* --ip, --mac-address, --dns, --dns-search, --add-host and --network-alias as a spec keeps
 * them: what is accepted and what is refused, with why */
/* -v and --mount as given, and as a spec keeps them */
TEST(mount_flags)
{
	static const char *const bad_v[] = { "./src:/src", "src/x:/x", "~/x:/x", "/h:rel",
					     "/h:/", "/h:/a/../b", "/h:/x:bogus", "a:/x:y:z",
					     "x:/d", "_x:/d" };
	static const char *const bad_mount[] = { "type=bind,dst=/x", "type=bind,src=rel,dst=/x",
						 "type=volume,src=/abs,dst=/x", "src=v",
						 "type=nfs,dst=/x", "type=bind,src=/,dst=/x,bogus=1",
						 "type=tmpfs,src=x,dst=/t", "dst=\"/x" };
	struct mount_spec m, back;
	char why[PATH_MAX + 256], *tmpfs = NULL, *saved;

	CHECK_EQ_INT(mount_parse_v("/srv/data:/data:ro", &m, why, sizeof(why)), 0);
	CHECK(m.type == MOUNT_BIND && m.readonly && m.create_source);
	CHECK_EQ_STR(m.source, "/srv/data");
	CHECK_EQ_INT(mount_parse_v("db:/var/lib//db/", &m, why, sizeof(why)), 0);
	CHECK(m.type == MOUNT_VOLUME && !m.readonly);
	CHECK_EQ_STR(m.target, "/var/lib/db");
	CHECK_EQ_INT(mount_parse_v("/cache", &m, why, sizeof(why)), 0);
	CHECK(m.type == MOUNT_VOLUME && m.source[0] == '\0');
	CHECK_EQ_INT(mount_parse_v("/cache:ro,nocopy", &m, why, sizeof(why)), 0);
	CHECK(m.readonly && m.nocopy);
	for (size_t i = 0; i < ARRAY_SIZE(bad_v); i++) {
		why[0] = '\0';
		CHECK_EQ_INT(mount_parse_v(bad_v[i], &m, why, sizeof(why)) < 0, 1);
		CHECK(why[0] != '\0' && !strchr(why, '\n'));
	}
	CHECK_EQ_INT(mount_parse_mount("type=bind,source=/,target=/host,readonly", &m, &tmpfs, why,
				       sizeof(why)),
		     0);
	CHECK(m.type == MOUNT_BIND && m.readonly && !tmpfs);
	CHECK_EQ_INT(mount_parse_mount("type=volume,src=\"a,b\",dst=/v", &m, &tmpfs, why,
				       sizeof(why)) < 0,
		     1); /* a quoted value is one value: "a,b" is no volume name */
	CHECK_EQ_INT(mount_parse_mount("type=bind,src=\"/\",dst=\"/a,b\"", &m, &tmpfs, why,
				       sizeof(why)),
		     0);
	CHECK_EQ_STR(m.target, "/a,b");
	CHECK_EQ_INT(mount_parse_mount("type=tmpfs,dst=/run,tmpfs-size=64m,tmpfs-mode=1777", &m,
				       &tmpfs, why, sizeof(why)),
		     0);
	CHECK_EQ_STR(tmpfs, "/run:size=64m,mode=1777");
	free(tmpfs);
	for (size_t i = 0; i < ARRAY_SIZE(bad_mount); i++) {
		why[0] = '\0';
		tmpfs = NULL;
		CHECK_EQ_INT(mount_parse_mount(bad_mount[i], &m, &tmpfs, why, sizeof(why)) < 0, 1);
		CHECK(why[0] != '\0' && !tmpfs);
	}
	/* saved and read back as a spec keeps it; a damaged one is refused */
	CHECK_EQ_INT(mount_parse_v("/h:/in/ctr:ro", &m, why, sizeof(why)), 0);
	saved = mount_format(&m);
	CHECK(saved != NULL);
	CHECK_EQ_INT(mount_parse_saved(saved, &back), 0);
	CHECK(back.type == MOUNT_BIND && back.readonly);
	CHECK_EQ_STR(back.target, "/in/ctr");
	free(saved);
	CHECK_EQ_INT(mount_parse_saved("{\"type\":\"bind\",\"source\":\"rel\",\"target\":\"/x\"}",
				       &back),
		     -EINVAL);
	CHECK_EQ_INT(mount_parse_saved("{\"type\":\"volume\",\"source\":\"v\",\"target\":\"/../x\"}",
				       &back),
		     -EINVAL);
}

TEST(network_flags)
{
	struct container_spec s = { 0 };
	char *dns[] = { (char *)"192.0.2.53", NULL }, *search[] = { (char *)"corp.example", NULL };
	char *hosts[] = { (char *)"db:192.0.2.7", (char *)"gw:host-gateway", NULL };
	char *aliases[] = { (char *)"www", NULL }, *bad_one[] = { NULL, NULL };
	static const char *const bad_hosts[] = { "nocolon", ":1.2.3.4", "db:", "db:1.2.3",
						 "a b:1.2.3.4", "db:host" };
	static const char *const bad_macs[] = { "03:00:00:00:00:01", "00:00:00:00:00:00",
						"02:42:ac:11:00", "02:42:ac:11:00:02:03",
						"zz:42:ac:11:00:02", "02-42-ac-11-00-02" };
	uint8_t mac[6];
	char why[256];

	s.network = (char *)"app";
	s.ip = (char *)"10.0.0.5";
	s.mac = (char *)"02:42:ac:11:00:09";
	s.dns = dns, s.ndns = 1;
	s.dns_search = search, s.ndns_search = 1;
	s.add_hosts = hosts, s.nadd_hosts = 2;
	s.aliases = aliases, s.naliases = 1;
	CHECK_EQ_INT(net_check_fields(&s, why, sizeof(why)), 0);
	CHECK_EQ_INT(net_parse_mac(s.mac, mac, why, sizeof(why)), 0);
	CHECK(mac[0] == 0x02 && mac[5] == 0x09);
	for (size_t i = 0; i < ARRAY_SIZE(bad_macs); i++) {
		why[0] = '\0';
		CHECK_EQ_INT(net_parse_mac(bad_macs[i], mac, why, sizeof(why)), -EINVAL);
		CHECK(why[0] != '\0');
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad_hosts); i++) {
		why[0] = '\0';
		CHECK_EQ_INT(net_check_add_host(bad_hosts[i], why, sizeof(why)), -EINVAL);
		CHECK(why[0] != '\0');
	}
	/* each list with one bad entry: a newline would write a line of its own into a file */
	s.ip = (char *)"10.0.0.256";
	CHECK_EQ_INT(net_check_fields(&s, why, sizeof(why)), -EINVAL);
	s.ip = NULL;
	bad_one[0] = (char *)"a\nnameserver 6.6.6.6";
	s.dns_search = bad_one;
	CHECK_EQ_INT(net_check_fields(&s, why, sizeof(why)), -EINVAL);
	s.dns_search = search;
	s.aliases = bad_one;
	CHECK_EQ_INT(net_check_fields(&s, why, sizeof(why)), -EINVAL);
	s.aliases = aliases;
	s.dns_options = bad_one, s.ndns_options = 1;
	CHECK_EQ_INT(net_check_fields(&s, why, sizeof(why)), -EINVAL);
	s.dns_options = NULL, s.ndns_options = 0;
	bad_one[0] = (char *)"::1";
	s.dns = bad_one;
	CHECK_EQ_INT(net_check_fields(&s, why, sizeof(why)), -EINVAL);
	s.dns = dns;
	s.network = (char *)"../etc";
	CHECK_EQ_INT(net_check_fields(&s, why, sizeof(why)), -EINVAL);
}

int main(void)
{
	struct cove_error err = { 0 };
	char cmd[300];

	if (!mkdtemp(dir))
		return 1;
	setenv("COVE_ROOT", dir, 1);
	if (paths_init(&paths, &err) < 0) {
		printf("not ok - paths_init: %s\n", err.msg);
		return 1;
	}
	RUN(container_lifecycle_on_disk);
	RUN(log_round_trip);
	RUN(env_lists);
	RUN(signal_names);
	RUN(spec_from_flags_and_image);
	RUN(spec_round_trip);
	RUN(spec_to_start);
	RUN(spec_from_runc_style);
	RUN(spec_from_previous_layout);
	RUN(spec_out_of_range);
	RUN(port_forms);
	RUN(network_flags);
	RUN(mount_flags);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		perror("rm");
	return test_done();
}
