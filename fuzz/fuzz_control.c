/* fuzz_control — libFuzzer target: one request on the control socket, as
 * the daemon parses and answers it (header, lengths, command, argument),
 * on the full socket and on a read-only one. */
#include <stdint.h>
#include <stdlib.h>

#include "daemon/control.h"
#include "harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int no_reload(void *arg, char *msg, size_t cap)
{
	return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct harness h;
	static struct control *rw, *ro;

	if (!rw) {
		if (harness_start(&h) < 0)
			abort();
		struct control_ctx cc = { .repl = h.a, .reload = no_reload };
		rw = control_new_detached(&cc, false);
		ro = control_new_detached(&cc, true);
		if (!rw || !ro)
			abort();
	}
	char *body = NULL;
	size_t blen;
	control_process(size && (data[0] & 0x80) ? ro : rw, data, size, &body, &blen);
	free(body);
	return 0;
}
