/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <jansson.h>

#include "engine.h"

/* Fill m from a container's config.json: strings point into config, the arrays are allocated
 * (free them with spec_start_done). */
int spec_start(json_t *config, struct proto_start *m, struct cove_error *err);
void spec_start_done(struct proto_start *m);
