/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz the container spec loader (src/engine/spec.c): config.json is cove's own, another
 * runtime's (runc, podman) or cove 0.1's, and a user or another tool may have edited it. What
 * loads must save, load again to the same spec (the saved form is a fixed point) and make a
 * START that encodes; what fails must say why on one line.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "engine/spec.h"
#include "proto/proto.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(int ok)
{
	if (!ok)
		abort();
}

static void check_error(int r, const struct cove_error *err)
{
	must(r < 0);
	must(err->msg[0] != '\0' && strchr(err->msg, '\n') == NULL);
}

static char *dump(const struct container_spec *s)
{
	struct cove_error err = { 0 };
	json_t *j = NULL;
	char *text;

	must(spec_to_json(s, &j, &err) == 0);
	text = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
	must(text != NULL);
	json_decref(j);
	return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct container_spec s, again;
	struct cove_error err = { 0 };
	struct proto_start m;
	json_t *j, *j2;
	char *first, *second;
	int r;

	j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (!j)
		return 0;
	r = spec_from_json(j, &s, &err); /* s is set only when it loads */
	json_decref(j);
	if (r < 0) {
		check_error(r, &err);
		return 0;
	}

	first = dump(&s);
	j2 = json_loads(first, 0, NULL);
	must(j2 != NULL);
	memset(&err, 0, sizeof(err));
	must(spec_from_json(j2, &again, &err) == 0);
	json_decref(j2);
	second = dump(&again);
	must(strcmp(first, second) == 0);

	memset(&err, 0, sizeof(err));
	memset(&m, 0, sizeof(m));
	r = spec_start(&s, &m, &err);
	if (r == 0) {
		struct buf b = BUF_INIT(PROTO_HDR_SIZE + PROTO_MAX_PAYLOAD);
		struct proto_start back = { 0 };

		/* a START cove makes either encodes and decodes, or is refused as too big */
		if (proto_put_start(&b, 1, &m) == 0)
			must(proto_get_start(b.data + PROTO_HDR_SIZE, b.len - PROTO_HDR_SIZE, &back) == 0);
		proto_start_done(&back);
		buf_done(&b);
		spec_start_done(&m);
	} else {
		check_error(r, &err);
	}
	free(first);
	free(second);
	spec_done(&again);
	spec_done(&s);
	return 0;
}
