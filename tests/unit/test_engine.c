/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libcove without a VM: containers on disk (create, name, find by name and prefix, list,
 * lock, state, remove), the container log, environment lists, signal names, config.json to
 * START. The supervisor and sessions are tested with real VMs in tests/integration.
 */
#define _GNU_SOURCE
#include "test.h"

#include "engine/container.h"
#include "engine/log.h"
#include "engine/spec.h"

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
	json_t *cfg = json_pack("{s:s}", "image", "busybox");
	char **ids = NULL;
	size_t n = 0;

	CHECK_EQ_INT(container_list(&paths, &ids, &n, &err), 0); /* none yet */
	CHECK_EQ_INT(n, 0);
	container_list_free(ids, n);
	CHECK_EQ_INT(container_create(&paths, "web", false, &a, &err), 0);
	CHECK_EQ_INT((int)strlen(a.id), 64);
	CHECK_EQ_STR(a.name, "web");
	CHECK_EQ_INT(container_find(&paths, "web", &f, &err), -ENOENT); /* no config.json yet */
	CHECK_EQ_INT(container_save_config(&a, cfg, &err), 0);
	err = (struct cove_error){ 0 };
	CHECK_EQ_INT(container_create(&paths, "web", false, &b, &err), -EEXIST);
	CHECK(strstr(err.msg, "'web' is already in use") != NULL);
	container_abandon(&b);
	container_unlock(&b);
	err = (struct cove_error){ 0 };
	b = (struct container){ .lock_fd = -1 };
	CHECK_EQ_INT(container_create(&paths, NULL, true, &b, &err), 0);
	CHECK_EQ_INT(container_save_config(&b, cfg, &err), 0);
	container_unlock(&b);
	json_decref(cfg);

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

TEST(config_to_start)
{
	struct cove_error err = { 0 };
	struct proto_start m;
	json_t *c = json_pack(
		"{s:{s:[s,s], s:[s], s:s, s:s, s:b, s:b}, s:s, s:b, s:b, s:I, s:[s],"
		" s:[{s:i, s:I, s:I}]}",
		"process", "args", "sh", "-c", "env", "A=1", "cwd", "/data", "user", "1000",
		"terminal", 1, "open_stdin", 0, "hostname", "box", "readonly", 1, "init", 1, "caps",
		(json_int_t)5, "tmpfs", "/run:size=1m", "rlimits", "resource", 7, "soft",
		(json_int_t)1024, "hard", (json_int_t)-1);

	CHECK_EQ_INT(spec_start(c, &m, &err), 0);
	CHECK_EQ_INT(m.argc, 2);
	CHECK_EQ_STR(m.argv[1], "-c");
	CHECK_EQ_STR(m.env[0], "A=1");
	CHECK_EQ_STR(m.cwd, "/data");
	CHECK_EQ_STR(m.user, "1000");
	CHECK_EQ_STR(m.hostname, "box");
	CHECK_EQ_STR(m.rootfs, "/dev/vda");
	CHECK(m.terminal && !m.open_stdin && m.readonly && m.init && m.caps == 5);
	CHECK_EQ_INT(m.ntmpfs, 1);
	CHECK_EQ_INT(m.nrlimits, 1);
	CHECK(m.rlimits[0].resource == 7 && m.rlimits[0].soft == 1024 &&
	      m.rlimits[0].hard == UINT64_MAX);
	spec_start_done(&m);
	json_object_del(c, "process");
	CHECK_EQ_INT(spec_start(c, &m, &err), -EINVAL);
	CHECK_EQ_STR(err.msg, "the container's config has no process");
	json_decref(c);
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
	RUN(config_to_start);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		perror("rm");
	return test_done();
}
