/* fuzz_config — libFuzzer target: a configuration file's text through the
 * whole parser and validator (every section, key files included: a path in
 * the input is opened, but only files that exist are read). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *null;
	struct config *cfg = malloc(sizeof(*cfg));
	char *text = malloc(size + 1);

	if (!null)
		null = fopen("/dev/null", "w");
	if (!cfg || !text || !null)
		abort();
	memcpy(text, data, size);
	text[size] = 0;
	config_parse(text, "fuzz.conf", cfg, null);
	config_wipe(cfg);
	free(text);
	free(cfg);
	return 0;
}
