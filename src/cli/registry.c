/* SPDX-License-Identifier: Apache-2.0 */
/* cove registry login|logout: credentials in ~/.docker/config.json, as docker keeps them. */
#define _GNU_SOURCE
#include "cli.h"
#include "options.h"
#include "engine/images.h"

#include "image/reference.h"
#include "image/registry.h"

#include <string.h>
#include <termios.h>

#define PASSWORD_MAX 4096

/* One line from fd (the trailing newline dropped); with echo off when it is a terminal. */
static int read_secret(int fd, const char *prompt, char *buf, size_t size)
{
	struct termios old, t;
	bool tty = isatty(fd);
	size_t n = 0;

	if (tty && prompt) {
		fputs(prompt, stderr);
		fflush(stderr);
	}
	if (tty && tcgetattr(fd, &old) == 0) {
		t = old;
		t.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(fd, TCSANOW, &t);
	}
	while (n + 1 < size) {
		char ch;
		ssize_t r = read(fd, &ch, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || ch == '\n')
			break;
		buf[n++] = ch;
	}
	buf[n] = '\0';
	if (tty) {
		tcsetattr(fd, TCSANOW, &old);
		fputc('\n', stderr);
	}
	if (n > 0 && buf[n - 1] == '\r')
		buf[--n] = '\0';
	return n + 1 >= size ? -E2BIG : 0;
}

struct login_opts {
	const char *user, *password;
	bool from_stdin;
};

static int login_opt(int c, const char *value, void *ud)
{
	struct login_opts *o = ud;

	if (c == 'u')
		o->user = value;
	else if (c == 'p')
		o->password = value;
	else if (c == 's')
		o->from_stdin = true;
	return 0;
}

static int login(int argc, char **argv)
{
	static const struct cli_option opts[] = {
		{ 'u', 'u', "username", "USER", "the user name (asked for on a terminal)" },
		{ 'p', 'p', "password", "PASSWORD", "the password (visible to other users: prefer\n--password-stdin)" },
		{ 's', 0, "password-stdin", NULL, "read the password from stdin" },
		{ 0 },
	};
	static const struct cli_verb v = {
		"registry login", "[OPTIONS] REGISTRY",
		"Check credentials with the registry and keep them in ~/.docker/config.json\n"
		"(or $DOCKER_CONFIG/config.json), where docker, podman and skopeo find them too.",
		opts, .min_operands = 1, .max_operands = 1, .missing = "REGISTRY (host[:port])",
	};
	struct login_opts lo = { 0 };
	struct cove_error err = { 0 };
	struct registry_opts ro = { 0 };
	struct registry_client *c = NULL;
	char user[256] = "", password[PASSWORD_MAX] = "";
	const char *host;
	bool from_stdin = false;
	int first, r;

	r = cli_parse(&v, argc, argv, login_opt, &lo, &first);
	if (r)
		return r > 0 ? 0 : EXIT_COVE;
	str_copy(user, sizeof(user), lo.user ? lo.user : "");
	str_copy(password, sizeof(password), lo.password ? lo.password : "");
	from_stdin = lo.from_stdin;
	host = argv[first];
	if (!reference_host_is_valid(host)) {
		cli_error("invalid registry '%s': expected host[:port]", host);
		return EXIT_COVE;
	}
	if (!user[0]) {
		if (from_stdin || !isatty(0)) {
			cli_error("login needs -u USER when the password comes from stdin");
			return EXIT_COVE;
		}
		fputs("Username: ", stderr);
		fflush(stderr);
		if (!fgets(user, sizeof(user), stdin)) {
			cli_error("no username given");
			return EXIT_COVE;
		}
		user[strcspn(user, "\r\n")] = '\0';
	}
	if (from_stdin || !password[0]) {
		if (!from_stdin && !isatty(0)) {
			cli_error("no password: use --password-stdin, or -p");
			return EXIT_COVE;
		}
		if (read_secret(0, from_stdin ? NULL : "Password: ", password, sizeof(password)) < 0) {
			cli_error("the password is too long");
			return EXIT_COVE;
		}
	}
	if (!user[0] || !password[0]) {
		cli_error("empty username or password");
		return EXIT_COVE;
	}
	images_registry_opts(&ro);
	ro.username = user;
	ro.password = password;
	r = registry_client_new(host, &ro, &c, &err);
	if (r == 0)
		r = registry_check_login(c, &err);
	if (r == 0)
		r = registry_credentials_store(host, user, password, &err);
	registry_client_free(c);
	explicit_bzero(password, sizeof(password));
	if (r < 0) {
		cli_error("%s", err.msg);
		return EXIT_COVE;
	}
	printf("Login Succeeded\n");
	return 0;
}

static int logout(int argc, char **argv)
{
	static const struct cli_verb v = {
		"registry logout", "REGISTRY", "Forget the credentials kept for REGISTRY.", NULL,
		.min_operands = 1, .max_operands = 1, .missing = "REGISTRY (host[:port])",
	};
	struct cove_error err = { 0 };
	int first, r;

	r = cli_parse(&v, argc, argv, NULL, NULL, &first);
	if (r)
		return r > 0 ? 0 : EXIT_COVE;
	r = registry_credentials_remove(argv[first], &err);
	if (r < 0) {
		cli_error("%s", err.msg);
		return EXIT_COVE;
	}
	if (r == 0)
		printf("Not logged in to %s\n", argv[first]);
	else
		printf("Removed login credentials for %s\n", argv[first]);
	return 0;
}

int cmd_registry(int argc, char **argv)
{
	static const struct cli_command sub[] = {
		{ "login", login, "Check and keep credentials for a registry" },
		{ "logout", logout, "Forget a registry's credentials" },
	};

	return cli_dispatch("registry", "Log in to and out of registries.", sub, ARRAY_SIZE(sub),
			    argc, argv);
}
