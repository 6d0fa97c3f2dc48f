/* SPDX-License-Identifier: Apache-2.0 */
/* cove registry login|logout: credentials in ~/.docker/config.json, as docker keeps them. */
#define _GNU_SOURCE
#include "cli.h"
#include "engine/images.h"

#include "image/reference.h"
#include "image/registry.h"

#include <getopt.h>
#include <string.h>
#include <termios.h>

#define PASSWORD_MAX 4096

static void usage(FILE *f)
{
	fprintf(f, "Usage: cove registry login [-u USER] [-p PASSWORD | --password-stdin] REGISTRY\n"
		   "       cove registry logout REGISTRY\n\n"
		   "Check credentials with the registry and keep them in ~/.docker/config.json\n"
		   "(or $DOCKER_CONFIG/config.json), where docker, podman and skopeo find them too.\n");
}

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

static int login(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "username", required_argument, NULL, 'u' },
		{ "password", required_argument, NULL, 'p' },
		{ "password-stdin", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct cove_error err = { 0 };
	struct registry_opts ro = { 0 };
	struct registry_client *c = NULL;
	char user[256] = "", password[PASSWORD_MAX] = "";
	const char *host;
	bool from_stdin = false;
	int ch, r;

	opterr = 0;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "+u:p:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'u':
			str_copy(user, sizeof(user), optarg);
			break;
		case 'p':
			str_copy(password, sizeof(password), optarg);
			break;
		case 's':
			from_stdin = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			cli_error("unknown option '%s'; see 'cove registry --help'", argv[optind - 1]);
			return EXIT_COVE;
		}
	}
	if (optind != argc - 1) {
		cli_error("login takes one REGISTRY (host[:port]); see 'cove registry --help'");
		return EXIT_COVE;
	}
	host = argv[optind];
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
	struct cove_error err = { 0 };
	int r;

	if (argc != 2 || strcmp(argv[1], "--help") == 0) {
		usage(argc == 2 ? stdout : stderr);
		return argc == 2 ? 0 : EXIT_COVE;
	}
	r = registry_credentials_remove(argv[1], &err);
	if (r < 0) {
		cli_error("%s", err.msg);
		return EXIT_COVE;
	}
	if (r == 0)
		printf("Not logged in to %s\n", argv[1]);
	else
		printf("Removed login credentials for %s\n", argv[1]);
	return 0;
}

int cmd_registry(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_COVE : 0;
	}
	if (strcmp(argv[1], "login") == 0)
		return login(argc - 1, argv + 1);
	if (strcmp(argv[1], "logout") == 0)
		return logout(argc - 1, argv + 1);
	cli_error("unknown command 'registry %s'; see 'cove registry --help'", argv[1]);
	return EXIT_COVE;
}
