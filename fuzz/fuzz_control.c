/* fuzz_control — libFuzzer target: the control socket and what it renders.
 *
 * Input: one flags byte, then either a control request (header, lengths,
 * command, argument) as the daemon parses and answers it, on the full
 * socket or (bit 7) a read-only one; or (bit 6) a datagram that node 1
 * takes from node 2 (its header made plausible, as fuzz_frame's bit 0
 * does), after which node 1's status, stats and dump are rendered.  Every
 * JSON answer must be well-formed JSON, whatever a peer sent: a name in a
 * record is the peer's to choose. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/control.h"
#include "daemon/control_proto.h"
#include "harness.h"
#include "json_check.h"
#include "sync/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int no_reload(void *arg, char *msg, size_t cap)
{
	return -1;
}


/* A request's answer; a JSON one must parse. */
static void answer(struct control *c, const uint8_t *req, size_t len)
{
	char *body = NULL;
	size_t blen;
	struct ctl_hdr h;
	int st = control_process(c, req, len, &body, &blen);

	if (len >= sizeof(h)) {
		memcpy(&h, req, sizeof(h));
		if (st == CTL_OK && (h.flags & CTL_F_JSON) && h.code != CTL_METRICS &&
		    !json_check(body, blen))
			abort();
	}
	free(body);
}

static void render_all(struct control *c)
{
	static const uint16_t codes[] = { CTL_STATUS, CTL_STATS, CTL_DUMP };

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		struct ctl_hdr h = { CTL_MAGIC, CTL_VERSION, codes[i], CTL_F_JSON, 0 };
		answer(c, (const uint8_t *)&h, sizeof(h));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct harness h;
	static struct control *rw, *ro;
	static unsigned runs;
	uint8_t buf[WIRE_MAX_FRAME + 1];

	if (size < 1 || size - 1 > WIRE_MAX_FRAME)
		return 0;
	/* a fresh pair now and then: state builds up, but not forever */
	if (runs++ % 256 == 0) {
		control_close(rw);
		control_close(ro);
		harness_stop(&h);
		if (harness_start(&h) < 0)
			abort();
		struct control_ctx cc = { .repl = h.a, .reload = no_reload };
		rw = control_new_detached(&cc, false);
		ro = control_new_detached(&cc, true);
		if (!rw || !ro)
			abort();
	}
	size_t len = size - 1;
	if (!(data[0] & 0x40)) {
		answer(data[0] & 0x80 ? ro : rw, data + 1, len);
		return 0;
	}
	memcpy(buf, data + 1, len);
	harness_header_from_b(&h, buf, len);
	repl_receive(h.a, buf, len, 2);
	harness_run(&h, 30);
	render_all(rw);
	return 0;
}
