/* fuzz_frame — libFuzzer target: a datagram from the network, as node 1
 * receives it from node 2 (whose epoch it trusts).  Reaches the frame
 * header check, every record decoder (flows, expectations, heartbeats,
 * bulks, NACKs, challenges, defer acknowledgements and hints), ordering
 * and repair, and, with the first input byte's bit 1, the opener of the
 * sealing layer.
 *
 * Input: one flags byte, then the datagram.  Flags bit 0: make the header
 * plausible (magic, version, node 2, its epoch, the length field) so the
 * records are reached; bit 1: open it with a keyed seal first. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "sync/seal.h"
#include "sync/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct harness h;
	static struct seal *s;
	static unsigned runs;
	uint8_t buf[WIRE_MAX_FRAME + 1];

	if (size < 1 || size - 1 > WIRE_MAX_FRAME)
		return 0;
	/* a fresh pair now and then: state builds up, but not forever */
	if (runs++ % 256 == 0) {
		harness_stop(&h);
		if (harness_start(&h) < 0)
			abort();
	}
	if (!s) {
		struct seal_key k = { .id = 7 };
		uint32_t peer = 2;
		s = seal_new();
		if (!s || seal_configure(s, SEAL_AES_256_GCM, 1, &peer, 1, &k, 1) < 0)
			abort();
	}
	size_t len = size - 1;
	memcpy(buf, data + 1, len);
	if (data[0] & 1)
		harness_header_from_b(&h, buf, len);
	if (data[0] & 2) {
		ssize_t n = seal_open(s, buf, len);
		if (n < 0)
			return 0;
		len = (size_t)n;
	}
	repl_receive(h.a, buf, len, 2);
	harness_run(&h, 30);
	return 0;
}
