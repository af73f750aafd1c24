/* harness.c — see harness.h. */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

#define QCAP 4096

struct pkt {
	int to;                 /* 0: a, 1: b */
	size_t len;
	uint8_t *data;
};

static struct pkt q[QCAP];
static unsigned qn;
static uint64_t now = 1000000;
static int idx_of[2] = { 0, 1 };         /* ops.arg: which engine sends */

static void enqueue(int to, const void *buf, size_t len)
{
	if (qn == QCAP)
		return;                 /* a full link drops, like a real one */
	q[qn].data = malloc(len);
	if (!q[qn].data)
		return;
	memcpy(q[qn].data, buf, len);
	q[qn].len = len;
	q[qn].to = to;
	qn++;
}

static int op_inject(void *arg, enum ctnl_op op, const struct ct *ct) { return 0; }
static int op_flush(void *arg) { return 0; }
static int op_dump(void *arg) { return 0; }
static int op_inject_exp(void *arg, enum ctnl_op op, const struct exp *e) { return 0; }
static int op_get(void *arg, const struct ct *key, struct ct *out) { return -ENOENT; }
static uint64_t op_now(void *arg) { return now; }

static int op_send(void *arg, uint32_t node, const void *buf, size_t len)
{
	enqueue(1 - *(int *)arg, buf, len);     /* the only peer, whatever node says */
	return 0;
}

static void set_addr(struct sockaddr_storage *ss, uint32_t id)
{
	struct sockaddr_in *a = (struct sockaddr_in *)ss;
	memset(ss, 0, sizeof(*ss));
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(0xc6120000u | id);   /* 198.18.0.id */
	a->sin_port = htons(3780);
}

static struct repl *engine(uint32_t id, uint32_t peer, const struct sockaddr_storage *peer_addr)
{
	struct repl_config cfg = {
		.node_id = id, .primary = id == 1, .inject_immediate = true, .npeers = 1,
		.frame_size = 1456, .heartbeat_ms = 100, .dead_after = 3,
		.resend_bytes = 1u << 20, .nack_ms = 20, .gap_timeout_ms = 500,
		.refresh_ms = 0, .exp_sync = true,
	};
	cfg.peer_id[0] = peer;
	cfg.peer_addr[0] = *peer_addr;
	for (int i = 0; i < 256; i++)
		cfg.proto[i] = true;
	struct repl_ops ops = {
		.arg = &idx_of[id - 1],
		.inject = op_inject, .inject_flush = op_flush, .dump = op_dump,
		.dump_start = op_dump, .inject_exp = op_inject_exp, .exp_dump = op_dump,
		.get = op_get, .send = op_send, .now_ms = op_now,
	};
	return repl_new(&cfg, &ops);
}

static void deliver(struct harness *h)
{
	for (unsigned guard = 0; qn && guard < 100000; guard++) {
		struct pkt p = q[0];
		memmove(q, q + 1, --qn * sizeof(q[0]));
		struct repl *to = p.to ? h->b : h->a;
		repl_receive(to, p.data, p.len, p.to ? 1 : 2);
		free(p.data);
		repl_flush(h->a);
		repl_flush(h->b);
	}
}

void harness_run(struct harness *h, unsigned ms)
{
	for (unsigned t = 0; t < ms; t += 10) {
		now += 10;
		if (now % 100 == 0) {
			repl_tick(h->a);
			repl_tick(h->b);
		} else {
			repl_poll(h->a);
			repl_poll(h->b);
		}
		repl_flush(h->a);
		repl_flush(h->b);
		deliver(h);
	}
}

int harness_start(struct harness *h)
{
	static bool quiet;
	if (!quiet) {
		log_init(LOG_LVL_ERROR, false, "fuzz");
		quiet = true;
	}
	memset(h, 0, sizeof(*h));
	set_addr(&h->addr_a, 1);
	set_addr(&h->addr_b, 2);
	h->a = engine(1, 2, &h->addr_b);
	h->b = engine(2, 1, &h->addr_a);
	if (!h->a || !h->b || repl_load_kernel(h->a) < 0 || repl_load_kernel(h->b) < 0)
		return -1;
	harness_run(h, 300);
	struct repl_status st;
	repl_status(h->a, &st);
	if (!st.peer[0].known)
		return -1;
	h->epoch_b = st.peer[0].epoch;
	return 0;
}

void harness_stop(struct harness *h)
{
	while (qn)
		free(q[--qn].data);
	repl_free(h->a);
	repl_free(h->b);
	memset(h, 0, sizeof(*h));
}
