/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the configuration loader (libyaml, the key table, every
 * cross-check) on arbitrary bytes. A file is either accepted or refused
 * with at least one FILE:LINE:COL error; nothing else may happen.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *cfg = NULL;
	char *errors = NULL;

	if (config_parse("fuzz.yaml", (const char *)data, size, &cfg, &errors) == 0) {
		config_free(cfg);
	} else if (errors == NULL || strncmp(errors, "fuzz.yaml", 9) != 0) {
		fprintf(stderr, "refused without a FILE:LINE:COL error: %s\n",
			errors ? errors : "(none)");
		abort();
	}
	free(errors);
	return 0;
}
