/* SPDX-License-Identifier: Apache-2.0 */
#include "engine.h"

#include <stdlib.h>
#include <sys/ioctl.h>
#include <termios.h>

static struct termios saved;
static int saved_fd = -1;

void terminal_restore(void)
{
	if (saved_fd >= 0) {
		tcsetattr(saved_fd, TCSADRAIN, &saved);
		saved_fd = -1;
	}
}

int terminal_make_raw(int fd)
{
	static bool registered;
	struct termios t;

	if (tcgetattr(fd, &saved) < 0)
		return -errno;
	t = saved;
	cfmakeraw(&t);
	/* keep output post-processing off too: the guest's pty already did it */
	if (tcsetattr(fd, TCSADRAIN, &t) < 0)
		return -errno;
	saved_fd = fd;
	if (!registered) {
		atexit(terminal_restore);
		registered = true;
	}
	return 0;
}

int terminal_size(int fd, uint16_t *ret_rows, uint16_t *ret_cols)
{
	struct winsize ws;

	/* fd < 0: whichever of stdin, stdout, stderr is a terminal */
	if (fd < 0) {
		for (fd = 0; fd < 3; fd++)
			if (ioctl(fd, TIOCGWINSZ, &ws) == 0)
				break;
		if (fd == 3)
			return -ENOTTY;
	} else if (ioctl(fd, TIOCGWINSZ, &ws) < 0) {
		return -errno;
	}
	*ret_rows = ws.ws_row;
	*ret_cols = ws.ws_col;
	return 0;
}
