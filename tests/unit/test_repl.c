/* Replication engine, driven through repl_ops by simulated kernels and a
 * simulated sync link that can drop frames. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "sync/repl.h"
#include "sync/wire.h"

#define KMAX 2048
#define QMAX 4096
#define NODES 2

struct node;

struct simkernel {
	struct ct ct[KMAX];
	bool used[KMAX];
	unsigned n;
	unsigned creates, updates, deletes;
	/* a key whose create clashes (EEXIST) while no entry has it (ENOENT) */
	bool clash_set;
	struct ct clash;
	struct { enum ctnl_op op; struct ct ct; int err; } errs[256];
	unsigned nerr;
};

struct node {
	int idx;
	uint32_t id;
	struct repl *r;
	struct simkernel k;
	struct sockaddr_storage addr;
};

static struct {
	struct node n[NODES];
	struct { int from, to; size_t len; uint8_t data[WIRE_MAX_FRAME]; } *q;
	unsigned qn;
	uint64_t now;
	unsigned drop_next;             /* drop this many of the next frames */
	unsigned dropped;
} net;

static int kfind(struct simkernel *k, const struct ct *ct)
{
	for (unsigned i = 0; i < KMAX; i++)
		if (k->used[i] && ct_key_equal(&k->ct[i], ct))
			return (int)i;
	return -1;
}

static void kerr(struct simkernel *k, enum ctnl_op op, const struct ct *ct, int err)
{
	if (k->nerr < 256) {
		k->errs[k->nerr].op = op;
		k->errs[k->nerr].ct = *ct;
		k->errs[k->nerr].err = err;
		k->nerr++;
	}
}

static int op_inject(void *arg, enum ctnl_op op, const struct ct *ct)
{
	struct node *nd = arg;
	struct simkernel *k = &nd->k;
	int i = kfind(k, ct);

	if (k->clash_set && ct_key_equal(ct, &k->clash)) {
		kerr(k, op, ct, op == CTNL_OP_CREATE ? -EEXIST : -ENOENT);
		return 0;
	}
	switch (op) {
	case CTNL_OP_CREATE:
		k->creates++;
		if (i >= 0) {
			kerr(k, op, ct, -EEXIST);
			return 0;
		}
		for (unsigned j = 0; j < KMAX; j++) {
			if (!k->used[j]) {
				k->used[j] = true;
				k->ct[j] = *ct;
				k->n++;
				return 0;
			}
		}
		kerr(k, op, ct, -ENOMEM);
		return 0;
	case CTNL_OP_UPDATE:
		k->updates++;
		if (i < 0)
			kerr(k, op, ct, -ENOENT);
		else
			k->ct[i] = *ct;
		return 0;
	case CTNL_OP_DELETE:
		k->deletes++;
		if (i < 0) {
			kerr(k, op, ct, -ENOENT);
		} else {
			k->used[i] = false;
			k->n--;
		}
		return 0;
	}
	return -EINVAL;
}

static int op_inject_flush(void *arg)
{
	struct node *nd = arg;
	/* errors are reported after the batch, like ctnl does; reports may
	 * queue retries, which report their own errors in a later flush */
	unsigned n = nd->k.nerr;
	static struct { enum ctnl_op op; struct ct ct; int err; } e[256];
	memcpy(e, nd->k.errs, sizeof(e[0]) * n);
	nd->k.nerr = 0;
	for (unsigned i = 0; i < n; i++)
		repl_inject_error(nd->r, e[i].op, &e[i].ct, e[i].err);
	return 0;
}

static int op_dump(void *arg)
{
	struct node *nd = arg;
	for (unsigned i = 0; i < KMAX; i++)
		if (nd->k.used[i])
			repl_kernel_event(nd->r, CTNL_EV_DUMP, &nd->k.ct[i], false);
	return 0;
}

static int op_send(void *arg, const void *buf, size_t len)
{
	struct node *nd = arg;
	for (int to = 0; to < NODES; to++) {
		if (to == nd->idx || !net.n[to].r)
			continue;
		if (net.drop_next) {
			net.drop_next--;
			net.dropped++;
			continue;
		}
		assert_true(net.qn < QMAX);
		net.q[net.qn].from = nd->idx;
		net.q[net.qn].to = to;
		net.q[net.qn].len = len;
		memcpy(net.q[net.qn].data, buf, len);
		net.qn++;
	}
	return 0;
}

static uint64_t op_now(void *arg)
{
	return net.now;
}

static const struct repl_ops ops_tpl = {
	.inject = op_inject, .inject_flush = op_inject_flush, .dump = op_dump,
	.send = op_send, .now_ms = op_now,
};

static void set_addr(struct sockaddr_storage *ss, uint32_t id)
{
	struct sockaddr_in *a = (struct sockaddr_in *)ss;
	memset(ss, 0, sizeof(*ss));
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(0xc6120000u | id);   /* 198.18.0.id */
	a->sin_port = htons(3780);
}

static void start(int idx, bool primary, bool immediate)
{
	struct node *nd = &net.n[idx];
	struct repl_config cfg = { 0 };

	nd->idx = idx;
	nd->id = (uint32_t)idx + 1;
	set_addr(&nd->addr, nd->id);
	cfg.node_id = nd->id;
	cfg.primary = primary;
	cfg.inject_immediate = immediate;
	cfg.frame_size = 1472;
	cfg.heartbeat_ms = 100;
	cfg.dead_after = 3;
	for (int i = 0; i < 256; i++)
		cfg.proto[i] = true;
	cfg.nignore = 1;
	cfg.ignore[0].family = AF_INET;
	cfg.ignore[0].addr.ip4 = htonl(0x7f000000);
	cfg.ignore[0].plen = 8;
	for (int i = 0; i < NODES; i++) {
		if (i == idx)
			continue;
		cfg.peer_id[cfg.npeers] = (uint32_t)i + 1;
		set_addr(&cfg.peer_addr[cfg.npeers], (uint32_t)i + 1);
		cfg.npeers++;
	}
	struct repl_ops ops = ops_tpl;
	ops.arg = nd;
	nd->r = repl_new(&cfg, &ops);
	assert_non_null(nd->r);
	assert_int_equal(repl_load_kernel(nd->r), 0);
}

static void stop(int idx)
{
	repl_free(net.n[idx].r);
	net.n[idx].r = NULL;
}

static void deliver(void)
{
	/* flush, deliver, and again for what the deliveries caused (bounded) */
	for (int round = 0; round < 10; round++) {
		for (int i = 0; i < NODES; i++)
			if (net.n[i].r)
				repl_flush(net.n[i].r);
		if (net.qn == 0)
			return;
		unsigned n = net.qn;
		for (unsigned i = 0; i < n; i++) {
			struct node *to = &net.n[net.q[i].to];
			if (to->r)
				repl_receive(to->r, net.q[i].data, net.q[i].len,
					     &net.n[net.q[i].from].addr);
		}
		memmove(net.q, net.q + n, (net.qn - n) * sizeof(*net.q));
		net.qn -= n;
	}
}

/* Let time pass: heartbeats, flushes, deliveries. */
static void run(unsigned ms)
{
	for (unsigned t = 0; t < ms; t += 100) {
		net.now += 100;
		for (int i = 0; i < NODES; i++)
			if (net.n[i].r)
				repl_tick(net.n[i].r);
		deliver();
		deliver();
	}
}

static struct ct flow(uint32_t i)
{
	struct ct c = { .l3 = AF_INET, .l4 = IPPROTO_TCP };
	c.orig.src.ip4 = htonl(0xc6336400u | 10);                /* 198.51.100.10 */
	c.orig.dst.ip4 = htonl(0xcb00710au);                     /* 203.0.113.10 */
	c.orig.sport = htons((uint16_t)(20000 + i));
	c.orig.dport = htons(80);
	c.reply.src = c.orig.dst;
	c.reply.dst.ip4 = htonl(0xcb007101u);                    /* 203.0.113.1 */
	c.reply.sport = c.orig.dport;
	c.reply.dport = c.orig.sport;
	c.status = 0x19e;                                        /* with SRC_NAT */
	c.timeout = 431999;
	c.tcp.state = 3;
	c.has = CT_HAS_REPLY | CT_HAS_STATUS | CT_HAS_TIMEOUT | CT_HAS_TCP;
	return c;
}

/* A flow the kernel of node idx creates by itself. */
static void kernel_new(int idx, const struct ct *c)
{
	struct node *nd = &net.n[idx];
	int slot = kfind(&nd->k, c);
	if (slot < 0) {
		for (slot = 0; nd->k.used[slot]; slot++)
			;
		nd->k.used[slot] = true;
		nd->k.n++;
	}
	nd->k.ct[slot] = *c;
	repl_kernel_event(nd->r, CTNL_EV_NEW, c, false);
}

static int setup(void **state)
{
	memset(&net.n, 0, sizeof(net.n));
	net.q = calloc(QMAX, sizeof(*net.q));
	net.qn = 0;
	net.now = 1000000;
	net.drop_next = 0;
	net.dropped = 0;
	return net.q ? 0 : -1;
}

static int teardown(void **state)
{
	for (int i = 0; i < NODES; i++)
		if (net.n[i].r)
			stop(i);
	free(net.q);
	return 0;
}

static struct repl_peer_status peer_of(int idx, uint32_t id)
{
	struct repl_status st;
	repl_status(net.n[idx].r, &st);
	for (unsigned i = 0; i < st.npeers; i++)
		if (st.peer[i].id == id)
			return st.peer[i];
	fail_msg("no peer %u", id);
	return st.peer[0];
}

static bool in_sync(int idx)
{
	struct repl_status st;
	repl_status(net.n[idx].r, &st);
	return st.in_sync;
}

static void test_replicate_and_delete(void **state)
{
	start(0, true, true);
	start(1, false, true);
	run(300);
	struct ct c = flow(1);
	kernel_new(0, &c);
	run(200);
	assert_int_equal(net.n[1].k.n, 1);                       /* injected on B */
	assert_int_equal(peer_of(1, 1).flows_held, 1);
	assert_true(in_sync(1));
	/* the injected copy's events on B are not echoed back */
	unsigned long tx = repl_stats(net.n[1].r)->tx_records;
	repl_kernel_event(net.n[1].r, CTNL_EV_NEW, &c, true);
	deliver();
	assert_int_equal(repl_stats(net.n[1].r)->tx_records, tx);
	/* a destroy on the owner removes it everywhere */
	repl_kernel_event(net.n[0].r, CTNL_EV_DESTROY, &c, false);
	run(200);
	assert_int_equal(net.n[1].k.n, 0);
	assert_int_equal(peer_of(1, 1).flows_held, 0);
}

static void test_coalescing(void **state)
{
	start(0, true, true);
	start(1, false, true);
	run(300);
	struct ct c = flow(2);
	kernel_new(0, &c);
	for (int i = 0; i < 10; i++) {
		c.timeout = 1000 + (uint32_t)i;
		repl_kernel_event(net.n[0].r, CTNL_EV_UPDATE, &c, false);
	}
	unsigned long before = repl_stats(net.n[1].r)->rx_upserts;
	deliver();
	assert_int_equal(repl_stats(net.n[1].r)->rx_upserts - before, 1);
	assert_int_equal(net.n[1].k.ct[kfind(&net.n[1].k, &c)].timeout, 1009);
}

static void test_peer_expiry_is_not_a_delete(void **state)
{
	start(0, true, true);
	start(1, false, true);
	run(300);
	struct ct c = flow(3);
	kernel_new(0, &c);
	run(200);
	/* B's kernel times the copy out: B must not tell A to delete it */
	net.n[1].k.used[kfind(&net.n[1].k, &c)] = false;
	net.n[1].k.n--;
	repl_kernel_event(net.n[1].r, CTNL_EV_DESTROY, &c, false);
	run(200);
	assert_int_equal(net.n[0].k.n, 1);
	assert_int_equal(peer_of(0, 2).flows_held, 0);
	assert_int_equal(peer_of(1, 1).flows_held, 1);  /* still held, for failover */
	/* and a backup does not adopt a live peer's flow on its own traffic */
	repl_kernel_event(net.n[1].r, CTNL_EV_UPDATE, &c, false);
	assert_int_equal(repl_stats(net.n[1].r)->ev_foreign, 1);
}

static void test_promote_takes_ownership(void **state)
{
	start(0, true, true);
	start(1, false, true);
	run(300);
	for (uint32_t i = 0; i < 50; i++) {
		struct ct c = flow(100 + i);
		kernel_new(0, &c);
	}
	run(200);
	assert_int_equal(net.n[1].k.n, 50);
	repl_demote(net.n[0].r);
	assert_int_equal(repl_promote(net.n[1].r), 50);
	run(300);
	assert_int_equal(peer_of(0, 2).flows_held, 50);         /* A sees B as owner */
	struct repl_status st;
	repl_status(net.n[1].r, &st);
	assert_int_equal(st.flows_local, 50);
	assert_true(st.primary);
	assert_true(in_sync(0) && in_sync(1));
	/* with inject = immediate, promotion commits nothing: it was all there */
	assert_int_equal(net.n[1].k.creates, 50);
}

static void test_on_promote_waits_for_commit(void **state)
{
	start(0, true, true);
	start(1, false, false);
	run(300);
	for (uint32_t i = 0; i < 20; i++) {
		struct ct c = flow(200 + i);
		kernel_new(0, &c);
	}
	run(200);
	assert_int_equal(net.n[1].k.n, 0);
	struct repl_status st;
	repl_status(net.n[1].r, &st);
	assert_int_equal(st.pending_commit, 20);
	assert_int_equal(repl_commit(net.n[1].r), 20);
	assert_int_equal(net.n[1].k.n, 20);
	assert_int_equal(repl_commit(net.n[1].r), 0);           /* nothing left */
}

static void test_restart_bulk_and_sweep(void **state)
{
	start(0, true, true);
	for (uint32_t i = 0; i < 100; i++) {
		struct ct c = flow(300 + i);
		kernel_new(0, &c);
	}
	run(200);
	/* B starts late: it gets A's flows without asking */
	start(1, false, true);
	run(500);
	assert_int_equal(peer_of(1, 1).flows_held, 100);
	assert_int_equal(net.n[1].k.n, 100);
	assert_true(in_sync(1));
	/* A restarts with 10 flows gone from its kernel: B sweeps them */
	stop(0);
	for (uint32_t i = 0; i < 10; i++) {
		struct ct c = flow(300 + i);
		net.n[0].k.used[kfind(&net.n[0].k, &c)] = false;
		net.n[0].k.n--;
	}
	start(0, true, true);
	run(500);
	assert_int_equal(peer_of(1, 1).flows_held, 90);
	assert_int_equal(net.n[1].k.n, 90);
	assert_int_equal(repl_stats(net.n[1].r)->swept, 10);
	assert_true(in_sync(1));
}

static void test_loss_is_seen(void **state)
{
	start(0, true, true);
	start(1, false, true);
	run(300);
	net.drop_next = 1;
	struct ct c = flow(500);
	kernel_new(0, &c);
	deliver();
	run(200);
	assert_int_equal(net.dropped, 1);
	/* the heartbeat says a frame is missing and the flow count differs */
	assert_false(in_sync(1));
	assert_int_equal(peer_of(1, 1).lag_frames, 1);
	/* the next frame reveals the gap */
	struct ct d = flow(501);
	kernel_new(0, &d);
	run(200);
	assert_int_equal(repl_stats(net.n[1].r)->rx_lost, 1);
	assert_false(in_sync(1));
	/* an operator resync repairs it */
	repl_resync(net.n[1].r);
	run(300);
	assert_true(in_sync(1));
	assert_int_equal(peer_of(1, 1).flows_held, 2);
}

static void test_nat_clash_is_counted(void **state)
{
	start(0, true, true);
	start(1, false, true);
	run(300);
	struct ct c = flow(600);
	net.n[1].k.clash_set = true;
	net.n[1].k.clash = c;
	kernel_new(0, &c);
	run(200);
	assert_int_equal(repl_stats(net.n[1].r)->nat_clashes, 1);
	assert_int_equal(net.n[1].k.n, 0);
}

static void test_dead_peer_and_adoption(void **state)
{
	start(0, true, true);
	start(1, false, true);
	run(300);
	struct ct c = flow(700);
	kernel_new(0, &c);
	run(200);
	stop(0);
	run(500);
	assert_false(peer_of(1, 1).alive);
	assert_false(in_sync(1));
	/* traffic on B touches the dead owner's flow: B adopts it */
	repl_kernel_event(net.n[1].r, CTNL_EV_UPDATE, &c, false);
	struct repl_status st;
	repl_status(net.n[1].r, &st);
	assert_int_equal(st.flows_local, 1);
	assert_int_equal(repl_stats(net.n[1].r)->adopted, 1);
}

static void test_filter(void **state)
{
	start(0, true, true);
	start(1, false, true);
	run(300);
	struct ct c = flow(800);
	c.orig.src.ip4 = htonl(0x7f000001);
	kernel_new(0, &c);
	run(200);
	assert_int_equal(net.n[1].k.n, 0);
	assert_int_equal(repl_stats(net.n[0].r)->ev_filtered, 1);
}

/* Random and mutated frames: never a crash, every one counted as dropped
 * or applied, and the link keeps working afterwards. */
static void test_hostile_frames(void **state)
{
	start(0, true, true);
	start(1, false, true);
	run(300);
	struct ct c = flow(900);
	kernel_new(0, &c);
	repl_flush(net.n[0].r);
	assert_true(net.qn > 0);
	uint8_t valid[1500];
	size_t vlen = net.q[0].len;
	memcpy(valid, net.q[0].data, vlen);
	deliver();
	srandom(7);
	struct sockaddr_storage stranger;
	set_addr(&stranger, 99);
	for (int i = 0; i < 20000; i++) {
		uint8_t buf[1500];
		size_t len;
		if (i % 2) {
			len = (size_t)random() % sizeof(buf);
			for (size_t j = 0; j < len; j++)
				buf[j] = (uint8_t)random();
		} else {
			len = vlen;
			memcpy(buf, valid, vlen);
			for (int k = 0; k < 3; k++)
				buf[WIRE_HDR_LEN + (size_t)random() % (vlen - WIRE_HDR_LEN)] = (uint8_t)random();
		}
		repl_receive(net.n[1].r, buf, len, i % 3 ? &net.n[0].addr : &stranger);
		repl_flush(net.n[1].r);
	}
	const struct repl_stats *s = repl_stats(net.n[1].r);
	assert_true(s->rx_malformed > 0);
	/* honest traffic still flows */
	struct ct d = flow(901);
	kernel_new(0, &d);
	repl_resync(net.n[1].r);
	run(500);
	assert_true(kfind(&net.n[1].k, &d) >= 0);
}

int main(void)
{
	log_init(LOG_LVL_ERROR, false, "test");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_replicate_and_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_coalescing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_peer_expiry_is_not_a_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_promote_takes_ownership, setup, teardown),
		cmocka_unit_test_setup_teardown(test_on_promote_waits_for_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_bulk_and_sweep, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loss_is_seen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nat_clash_is_counted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dead_peer_and_adoption, setup, teardown),
		cmocka_unit_test_setup_teardown(test_filter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_frames, setup, teardown),
	};
	return cmocka_run_group_tests_name("repl", tests, NULL, NULL);
}
