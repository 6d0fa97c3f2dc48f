/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for src/proto/caps: the name table, parsing, formatting, docker's default set. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "proto/caps.h"
#include "test.h"

TEST(table_ends_and_numbers)
{
	CHECK_EQ_STR(caps_name(0), "CAP_CHOWN");
	CHECK_EQ_STR(caps_name(2), "CAP_DAC_READ_SEARCH");
	CHECK_EQ_STR(caps_name(12), "CAP_NET_ADMIN");
	CHECK_EQ_STR(caps_name(21), "CAP_SYS_ADMIN");
	CHECK_EQ_STR(caps_name(24), "CAP_SYS_RESOURCE");
	CHECK_EQ_STR(caps_name(31), "CAP_SETFCAP");
	CHECK_EQ_STR(caps_name(37), "CAP_AUDIT_READ");
	CHECK_EQ_STR(caps_name(38), "CAP_PERFMON");
	CHECK_EQ_STR(caps_name(39), "CAP_BPF");
	CHECK_EQ_STR(caps_name(CAPS_LAST), "CAP_CHECKPOINT_RESTORE");
	CHECK(caps_name(CAPS_LAST + 1) == NULL);
	CHECK(caps_name(64) == NULL);
	CHECK(caps_name(~0u) == NULL);
}

TEST(every_name_parses_back_to_its_bit)
{
	for (unsigned i = 0; i <= CAPS_LAST; i++) {
		const char *name = caps_name(i);
		uint64_t v = 0;

		CHECK(name != NULL && strncmp(name, "CAP_", 4) == 0);
		if (!name)
			return;
		CHECK_EQ_INT(caps_parse(name, &v), 0);
		CHECK(v == UINT64_C(1) << i);
		v = 0;
		CHECK_EQ_INT(caps_parse(name + 4, &v), 0);
		CHECK(v == UINT64_C(1) << i);
	}
}

TEST(parse_is_case_insensitive)
{
	uint64_t v = 0;

	CHECK_EQ_INT(caps_parse("chown", &v), 0);
	CHECK(v == 1);
	CHECK_EQ_INT(caps_parse("cap_net_admin", &v), 0);
	CHECK(v == UINT64_C(1) << 12);
	CHECK_EQ_INT(caps_parse("Cap_Sys_Admin", &v), 0);
	CHECK(v == UINT64_C(1) << 21);
	CHECK_EQ_INT(caps_parse("CHECKPOINT_RESTORE", &v), 0);
	CHECK(v == UINT64_C(1) << 40);
}

TEST(parse_all)
{
	uint64_t v = 0;

	CHECK_EQ_INT(caps_parse("ALL", &v), 0);
	CHECK(v == CAPS_ALL);
	v = 0;
	CHECK_EQ_INT(caps_parse("all", &v), 0);
	CHECK(v == CAPS_ALL);
	CHECK(CAPS_ALL == UINT64_C(0x1ffffffffff));
}

TEST(parse_rejects_unknown_and_leaves_ret_alone)
{
	uint64_t v = 42;

	CHECK_EQ_INT(caps_parse("", &v), -EINVAL);
	CHECK_EQ_INT(caps_parse("CAP_", &v), -EINVAL);
	CHECK_EQ_INT(caps_parse("CAP_ALL", &v), -EINVAL); /* docker: "ALL" only */
	CHECK_EQ_INT(caps_parse("NOPE", &v), -EINVAL);
	CHECK_EQ_INT(caps_parse("CAP_CHOWNX", &v), -EINVAL);
	CHECK_EQ_INT(caps_parse("CHOW", &v), -EINVAL);
	CHECK_EQ_INT(caps_parse(" CHOWN", &v), -EINVAL);
	CHECK_EQ_INT(caps_parse("CAP_CAP_CHOWN", &v), -EINVAL);
	CHECK_EQ_INT(caps_parse("21", &v), -EINVAL);
	CHECK_EQ_INT(caps_parse(NULL, &v), -EINVAL);
	CHECK(v == 42);
}

TEST(default_is_dockers_set)
{
	static const char *const names[] = {
		"CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID",
		"SETUID", "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL",
		"AUDIT_WRITE",
	};
	uint64_t set = 0;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		uint64_t v = 0;

		CHECK_EQ_INT(caps_parse(names[i], &v), 0);
		set |= v;
	}
	CHECK(set == caps_default);
	CHECK(caps_default == UINT64_C(0xa80425fb));
}

TEST(format_default)
{
	char buf[512];

	CHECK_EQ_INT(caps_format(caps_default, buf, sizeof(buf)), 0);
	CHECK_EQ_STR(buf, "CAP_CHOWN,CAP_DAC_OVERRIDE,CAP_FOWNER,CAP_FSETID,CAP_KILL,CAP_SETGID,"
			  "CAP_SETUID,CAP_SETPCAP,CAP_NET_BIND_SERVICE,CAP_NET_RAW,CAP_SYS_CHROOT,"
			  "CAP_MKNOD,CAP_AUDIT_WRITE,CAP_SETFCAP");
}

TEST(format_empty_single_and_out_of_range_bits)
{
	char buf[64];

	memset(buf, 'x', sizeof(buf));
	CHECK_EQ_INT(caps_format(0, buf, sizeof(buf)), 0);
	CHECK_EQ_STR(buf, "");
	CHECK_EQ_INT(caps_format(UINT64_C(1) << 40, buf, sizeof(buf)), 0);
	CHECK_EQ_STR(buf, "CAP_CHECKPOINT_RESTORE");
	/* bits above CAPS_LAST have no name and are left out */
	CHECK_EQ_INT(caps_format((UINT64_C(1) << 41) | (UINT64_C(1) << 63) | 1, buf, sizeof(buf)),
		     0);
	CHECK_EQ_STR(buf, "CAP_CHOWN");
}

TEST(format_all_round_trips)
{
	char buf[1024];
	uint64_t set = 0;
	char *p, *end;

	CHECK_EQ_INT(caps_format(CAPS_ALL, buf, sizeof(buf)), 0);
	for (p = buf; *p; p = end) {
		uint64_t v = 0;

		end = strchr(p, ',');
		if (end)
			*end++ = '\0';
		else
			end = p + strlen(p);
		CHECK_EQ_INT(caps_parse(p, &v), 0);
		CHECK((set & v) == 0); /* each once, ascending */
		CHECK(v > set);
		set |= v;
	}
	CHECK(set == CAPS_ALL);
}

TEST(format_exact_fit_and_enospc)
{
	char buf[64];
	const char *want = "CAP_CHOWN,CAP_KILL";
	size_t n = strlen(want) + 1;
	uint64_t set = 1 | (UINT64_C(1) << 5);

	CHECK_EQ_INT(caps_format(set, buf, n), 0);
	CHECK_EQ_STR(buf, want);
	for (size_t size = 1; size < n; size++) {
		memset(buf, 'x', sizeof(buf));
		CHECK_EQ_INT(caps_format(set, buf, size), -ENOSPC);
		CHECK_EQ_STR(buf, "");
	}
	CHECK_EQ_INT(caps_format(0, buf, 0), -ENOSPC);
	CHECK_EQ_INT(caps_format(0, buf, 1), 0);
	CHECK_EQ_STR(buf, "");
}

int main(void)
{
	RUN(table_ends_and_numbers);
	RUN(every_name_parses_back_to_its_bit);
	RUN(parse_is_case_insensitive);
	RUN(parse_all);
	RUN(parse_rejects_unknown_and_leaves_ret_alone);
	RUN(default_is_dockers_set);
	RUN(format_default);
	RUN(format_empty_single_and_out_of_range_bits);
	RUN(format_all_round_trips);
	RUN(format_exact_fit_and_enospc);
	return test_done();
}
