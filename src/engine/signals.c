/* SPDX-License-Identifier: Apache-2.0 */
/* Signal names as docker takes them: "SIGTERM", "TERM", "term", "15", "SIGRTMIN+3". */
#define _GNU_SOURCE
#include "engine.h"

#include <signal.h>
#include <string.h>
#include <strings.h>

static const struct {
	const char *name;
	int sig;
} signals[] = {
	{ "HUP", SIGHUP },     { "INT", SIGINT },	{ "QUIT", SIGQUIT },   { "ILL", SIGILL },
	{ "TRAP", SIGTRAP },   { "ABRT", SIGABRT },	{ "IOT", SIGIOT },     { "BUS", SIGBUS },
	{ "FPE", SIGFPE },     { "KILL", SIGKILL },	{ "USR1", SIGUSR1 },   { "SEGV", SIGSEGV },
	{ "USR2", SIGUSR2 },   { "PIPE", SIGPIPE },	{ "ALRM", SIGALRM },   { "TERM", SIGTERM },
	{ "STKFLT", SIGSTKFLT }, { "CHLD", SIGCHLD },	{ "CONT", SIGCONT },   { "STOP", SIGSTOP },
	{ "TSTP", SIGTSTP },   { "TTIN", SIGTTIN },	{ "TTOU", SIGTTOU },   { "URG", SIGURG },
	{ "XCPU", SIGXCPU },   { "XFSZ", SIGXFSZ },	{ "VTALRM", SIGVTALRM }, { "PROF", SIGPROF },
	{ "WINCH", SIGWINCH }, { "IO", SIGIO },		{ "POLL", SIGPOLL },   { "PWR", SIGPWR },
	{ "SYS", SIGSYS },
};

int signal_parse(const char *s, int *ret)
{
	uint64_t v;

	if (!s || !*s)
		return -EINVAL;
	if (parse_u64(s, 64, &v) == 0) {
		if (v < 1)
			return -EINVAL;
		*ret = (int)v;
		return 0;
	}
	if (strncasecmp(s, "SIG", 3) == 0)
		s += 3;
	for (size_t i = 0; i < ARRAY_SIZE(signals); i++)
		if (strcasecmp(s, signals[i].name) == 0) {
			*ret = signals[i].sig;
			return 0;
		}
	/* the real-time signals: docker's 34..64 */
	if (strncasecmp(s, "RTMIN", 5) == 0 || strncasecmp(s, "RTMAX", 5) == 0) {
		bool max = strncasecmp(s, "RTMAX", 5) == 0;
		uint64_t off = 0;
		const char *rest = s + 5;
		if (*rest && (*rest != (max ? '-' : '+') || parse_u64(rest + 1, 30, &off) < 0))
			return -EINVAL;
		*ret = max ? 64 - (int)off : 34 + (int)off;
		return 0;
	}
	return -EINVAL;
}

const char *signal_name(int sig, char *buf, size_t size)
{
	for (size_t i = 0; i < ARRAY_SIZE(signals); i++)
		if (signals[i].sig == sig) {
			str_printf(buf, size, "SIG%s", signals[i].name);
			return buf;
		}
	str_printf(buf, size, "%d", sig);
	return buf;
}
