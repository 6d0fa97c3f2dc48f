/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A hostile cove-init, built only for tests/integration/t_hostile.sh: PID 1 of a guest that
 * says HELLO like the real one, takes START, and then, instead of running argv, attacks the
 * host with argv[0]:
 *
 *   console-flood KIB   write KIB KiB to the console (the host's boot log), then exit 0
 *   huge-frame          a frame header announcing 4 GiB
 *   garbage             4 KiB of noise instead of frames
 *   bad-type            a frame of an unknown type
 *   evil-error          an ERROR of 4 KiB of escape sequences and newlines
 *   exit-weird          STARTED, then an EXIT of an unknown kind and status 0xffffffff
 *   wrong-streams       output, EXIT and STATS for streams nobody opened, STARTED twice,
 *                       a second HELLO, then "still here" and exit 0 on stream 1
 *   stats-lie           STARTED, then answers STATS with the largest numbers there are
 *   silent              STARTED, then ignores everything (signals, SHUTDOWN)
 *   drip                STARTED, then half a frame header, then nothing
 *
 * It is as small as can be: no container, no disk, nothing but the channel and the console.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/proto/proto.h"
#include "../../src/util/util.h"

static int port = -1;

static void power_off(void)
{
	sync();
	reboot(RB_POWER_OFF);
	_exit(0);
}

static void send_buf(struct buf *b)
{
	fd_set_nonblock(port, false);
	(void)write_full(port, b->data, b->len);
	buf_reset(b);
}

static void send_raw(const void *p, size_t n)
{
	fd_set_nonblock(port, false);
	(void)write_full(port, p, n);
}

static void hdr(uint8_t out[PROTO_HDR_SIZE], uint32_t len, uint16_t type, uint32_t stream)
{
	struct proto_hdr h = { .len = len, .type = type, .stream = stream };

	proto_hdr_encode(&h, out);
}

static int open_port(void)
{
	for (int tries = 0; tries < 500; tries++) {
		DIR *d = opendir("/sys/class/virtio-ports");
		struct dirent *de;

		while (d && (de = readdir(d))) {
			char path[512], *name = NULL;

			if (de->d_name[0] == '.')
				continue;
			str_printf(path, sizeof(path), "/sys/class/virtio-ports/%s/name", de->d_name);
			if (read_file(path, 256, &name, NULL) < 0)
				continue;
			if (strncmp(name, "cove.0", 6) == 0) {
				free(name);
				str_printf(path, sizeof(path), "/dev/%s", de->d_name);
				closedir(d);
				return open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
			}
			free(name);
		}
		if (d)
			closedir(d);
		usleep(10000);
	}
	return -1;
}

/* the next frame from the host, of any type; false when the channel closed */
static bool next_frame(struct proto_reader *rd, struct proto_hdr *h, const uint8_t **p)
{
	for (;;) {
		int r = proto_reader_next(rd, h, p);
		ssize_t n;

		if (r > 0)
			return true;
		if (r < 0)
			return false;
		fd_set_nonblock(port, false);
		n = proto_reader_read(rd, port);
		if (n == 0 || (n < 0 && n != -EAGAIN && n != -EINTR))
			return false;
	}
}

/* serve STATS with a lie, ignore everything else, until the host goes */
static _noreturn_ void serve(struct proto_reader *rd, bool lie)
{
	struct buf b = BUF_INIT(PROTO_HDR_SIZE + PROTO_MAX_PAYLOAD);
	struct proto_hdr h;
	const uint8_t *p;

	while (next_frame(rd, &h, &p)) {
		if (h.type == PROTO_STATS && lie) {
			struct proto_stats st;

			memset(&st, 0xff, sizeof(st));
			if (proto_put_stats(&b, &st) == 0)
				send_buf(&b);
			buf_reset(&b);
		}
	}
	for (;;)
		pause();
}

static void started(struct buf *b)
{
	proto_put_u32(b, PROTO_STARTED, 1, 1);
	send_buf(b);
}

static void exit_ok(struct buf *b)
{
	struct proto_exit e = { .kind = 0, .status = 0 };

	proto_put_exit(b, 1, &e);
	send_buf(b);
}

int main(void)
{
	struct buf b = BUF_INIT(PROTO_HDR_SIZE + PROTO_MAX_PAYLOAD);
	struct proto_hello hello = { .version = PROTO_VERSION, .kernel = (char *)"hostile" };
	struct proto_start m = { 0 };
	struct proto_reader rd;
	struct proto_hdr h;
	const uint8_t *p;
	uint8_t raw[PROTO_HDR_SIZE];
	const char *attack;

	mount("proc", "/proc", "proc", 0, NULL);
	mount("sysfs", "/sys", "sysfs", 0, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	port = open_port();
	if (port < 0)
		power_off();
	proto_reader_init(&rd);
	proto_put_hello(&b, &hello);
	send_buf(&b);
	while (next_frame(&rd, &h, &p) && h.type != PROTO_START)
		;
	if (h.type != PROTO_START || proto_get_start(p, h.len, &m) < 0 || m.argc < 1)
		power_off();
	attack = m.argv[0];

	if (strcmp(attack, "console-flood") == 0) {
		long kib = m.argc > 1 ? strtol(m.argv[1], NULL, 10) : 1024;
		int con = open("/dev/console", O_WRONLY | O_NOCTTY);
		char line[1024];

		memset(line, 'x', sizeof(line) - 1);
		line[sizeof(line) - 1] = '\n';
		started(&b);
		for (long i = 0; con >= 0 && i < kib; i++)
			(void)write_full(con, line, sizeof(line));
		proto_put_data(&b, PROTO_STDOUT, 1, "flooded\n", 8);
		send_buf(&b);
		exit_ok(&b);
		serve(&rd, false);
	} else if (strcmp(attack, "huge-frame") == 0) {
		hdr(raw, 0xfffffff0u, PROTO_STDOUT, 1);
		send_raw(raw, sizeof(raw));
	} else if (strcmp(attack, "garbage") == 0) {
		char noise[4096];

		for (size_t i = 0; i < sizeof(noise); i++)
			noise[i] = (char)(i * 131 + 7);
		send_raw(noise, sizeof(noise));
	} else if (strcmp(attack, "bad-type") == 0) {
		hdr(raw, 0, 999, 1);
		send_raw(raw, sizeof(raw));
	} else if (strcmp(attack, "evil-error") == 0) {
		char msg[PROTO_MAX_MESSAGE + 1];
		static const char evil[] = "\033]0;pwned\007\033[2J\r\n\033[31m";

		for (size_t i = 0; i < PROTO_MAX_MESSAGE; i++)
			msg[i] = evil[i % (sizeof(evil) - 1)];
		msg[PROTO_MAX_MESSAGE] = '\0';
		proto_put_error(&b, 1, PROTO_ERR_INTERNAL, msg);
		send_buf(&b);
	} else if (strcmp(attack, "exit-weird") == 0) {
		/* by hand: proto_put_exit refuses to encode it */
		uint8_t f[PROTO_HDR_SIZE + 5] = { 0 };

		started(&b);
		hdr(f, 5, PROTO_EXIT, 1);
		f[PROTO_HDR_SIZE] = 77;
		memset(f + PROTO_HDR_SIZE + 1, 0xff, 4);
		send_raw(f, sizeof(f));
	} else if (strcmp(attack, "wrong-streams") == 0) {
		struct proto_exit e = { .kind = 0, .status = 3 };
		struct proto_stats st = { 0 };

		started(&b);
		started(&b);
		proto_put_data(&b, PROTO_STDOUT, 7, "to nobody\n", 10);
		proto_put_exit(&b, 9, &e);
		proto_put_u32(&b, PROTO_STARTED, 12, 5);
		proto_put_u32(&b, PROTO_STDIN_ACK, 1, 1u << 30);
		proto_put_stats(&b, &st);
		proto_put_hello(&b, &hello);
		proto_put_data(&b, PROTO_STDOUT, 1, "still here\n", 11);
		send_buf(&b);
		exit_ok(&b);
		serve(&rd, false);
	} else if (strcmp(attack, "stats-lie") == 0) {
		started(&b);
		serve(&rd, true);
	} else if (strcmp(attack, "silent") == 0) {
		started(&b);
		serve(&rd, false);
	} else if (strcmp(attack, "drip") == 0) {
		started(&b);
		hdr(raw, 4, PROTO_STDOUT, 1);
		send_raw(raw, 5);
		serve(&rd, false);
	} else {
		proto_put_error(&b, 1, PROTO_ERR_NOTFOUND, "hostile-init: no such attack");
		send_buf(&b);
	}
	/* after an attack that should have ended the VM from the host's side: wait for it */
	serve(&rd, false);
}
