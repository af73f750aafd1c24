/* harness.c — see harness.h: two nodes of the simulated cluster
 * (tests/sim.h) on a link that loses nothing. */
#include "harness.h"

#include <string.h>

#include "sim.h"
#include "sync/wire.h"
#include "util/log.h"

#define QCAP 4096               /* frames in flight: a full link drops, like a real one */

void harness_header_from_b(const struct harness *h, uint8_t *buf, size_t len)
{
	if (len < WIRE_HDR_LEN)
		return;
	wire_put_u32(buf, WIRE_MAGIC);
	buf[4] = WIRE_VERSION;
	wire_put_u32(buf + WIRE_OFF_NODE, 2);
	wire_put_u32(buf + WIRE_OFF_EPOCH, h->epoch_b);
	buf[WIRE_OFF_LEN] = (uint8_t)((len - WIRE_HDR_LEN) >> 8);
	buf[WIRE_OFF_LEN + 1] = (uint8_t)(len - WIRE_HDR_LEN);
}

void harness_run(struct harness *h, unsigned ms)
{
	sim_run(ms);
}

int harness_start(struct harness *h)
{
	static bool quiet;
	if (!quiet) {
		log_init(LOG_LVL_ERROR, false, "fuzz");
		quiet = true;
	}
	memset(h, 0, sizeof(*h));
	if (sim_setup(QCAP) < 0)
		return -1;
	sim.exp_sync = true;
	sim_start(0, true, true);
	sim_start(1, false, true);
	h->a = sim.n[0].r;
	h->b = sim.n[1].r;
	h->addr_a = sim.n[0].addr;
	h->addr_b = sim.n[1].addr;
	sim_run(300);
	struct repl_status st;
	repl_status(h->a, &st);
	if (!st.peer[0].known)
		return -1;
	h->epoch_b = st.peer[0].epoch;
	return 0;
}

void harness_stop(struct harness *h)
{
	if (sim.q)
		sim_teardown();
	memset(h, 0, sizeof(*h));
}
