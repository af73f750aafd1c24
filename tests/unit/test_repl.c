/* Replication engine, driven through repl_ops by simulated kernels and a
 * simulated sync link with seeded loss, duplication, delay and reordering.
 * Time is simulated too: every test is deterministic. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <linux/netfilter/nf_conntrack_common.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "sync/bucket.h"
#include "sync/repl.h"
#include "sync/wire.h"

#define KMAX 2048
#define QMAX 65536
#define NODES_MAX 3
#define NODES (net.nnodes)       /* 2, unless a test starts with more */

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
	/* a background dump read later from a copy taken when it started, as
	 * the kernel fills a dump's buffers before they are read */
	bool slow_dump;
	struct ct snap[KMAX];
	unsigned snap_n, snap_pos;
	bool snapping;
	bool new_events_off;            /* ops.events_new(false) in force */
	unsigned resume_fails;          /* this many events_new(true) fail */
	unsigned creates_quiet;         /* creates injected while it was */
	bool threaded;                  /* ops.inject_thread(true) in force */
	unsigned creates_threaded;      /* creates injected while it was */
	bool held[64];                  /* active-active: ops.buckets, last said */
	unsigned buckets_calls;
};

struct pkt {
	int from, to;
	uint64_t at;                    /* delivery time */
	uint64_t order;                 /* sent before those of higher order */
	size_t len;
	uint8_t data[1500];
};

static struct {
	struct node n[NODES_MAX];
	int nnodes;
	struct pkt *q;
	unsigned qn;
	uint64_t now;
	unsigned drop_next;             /* drop this many of the next frames */
	uint64_t sent;                  /* frames queued so far (their order) */
	unsigned dropped, duplicated;
	/* link model, per frame: loss and duplication in percent, delay 0..max */
	unsigned loss, dup, delay_max;
	bool down;                      /* cut: nothing passes */
	bool cut[NODES_MAX][NODES_MAX]; /* [from][to]: nothing passes that way */
	bool group;                     /* as a multicast group: a frame to one reaches all */
	uint64_t rng;
} net;

/* xorshift64*: the same seed gives the same run, on every machine */
static uint32_t rnd(void)
{
	net.rng ^= net.rng >> 12;
	net.rng ^= net.rng << 25;
	net.rng ^= net.rng >> 27;
	return (uint32_t)((net.rng * 2685821657736338717ULL) >> 32);
}

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
		if (nd->new_events_off)
			nd->creates_quiet++;
		if (nd->threaded)
			nd->creates_threaded++;
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

/* the background dump, read at once, or (slow_dump) by dump_step() */
static int op_dump_start(void *arg)
{
	struct node *nd = arg;
	if (nd->slow_dump) {
		if (nd->snapping)
			return -EBUSY;
		nd->snap_n = nd->snap_pos = 0;
		for (unsigned i = 0; i < KMAX; i++)
			if (nd->k.used[i])
				nd->snap[nd->snap_n++] = nd->k.ct[i];
		nd->snapping = true;
		return 0;
	}
	op_dump(arg);
	repl_dump_done(nd->r);
	return 0;
}

/* Read up to n entries of a slow background dump; true once it ended. */
static bool dump_step(struct node *nd, unsigned n)
{
	if (!nd->snapping)
		return true;
	while (n-- && nd->snap_pos < nd->snap_n)
		repl_kernel_event(nd->r, CTNL_EV_DUMP, &nd->snap[nd->snap_pos++], false);
	if (nd->snap_pos < nd->snap_n)
		return false;
	nd->snapping = false;
	repl_dump_done(nd->r);
	return true;
}

static int op_inject_thread(void *arg, bool on)
{
	struct node *nd = arg;
	nd->threaded = on;
	return 0;
}

static int op_events_new(void *arg, bool on)
{
	struct node *nd = arg;
	if (on && nd->resume_fails) {
		nd->resume_fails--;
		return -ENOBUFS;
	}
	nd->new_events_off = !on;
	return 0;
}

static void enqueue(int from, int to, const void *buf, size_t len)
{
	if (net.drop_next) {
		net.drop_next--;
		net.dropped++;
		return;
	}
	if (net.down || net.cut[from][to] || (net.loss && rnd() % 100 < net.loss)) {
		net.dropped++;
		return;
	}
	int copies = net.dup && rnd() % 100 < net.dup ? 2 : 1;
	net.duplicated += (unsigned)copies - 1;
	for (int c = 0; c < copies; c++) {
		assert_true(net.qn < QMAX);
		assert_true(len <= sizeof(net.q[0].data));
		struct pkt *k = &net.q[net.qn++];
		k->from = from;
		k->to = to;
		k->at = net.now + (net.delay_max ? rnd() % (net.delay_max + 1) : 0);
		k->order = net.sent++;
		k->len = len;
		memcpy(k->data, buf, len);
	}
}

static int op_send(void *arg, uint32_t node, const void *buf, size_t len)
{
	struct node *nd = arg;
	for (int to = 0; to < NODES; to++)
		if (to != nd->idx && net.n[to].r &&
		    (node == REPL_ALL || net.group || net.n[to].id == node))
			enqueue(nd->idx, to, buf, len);
	return 0;
}

static uint64_t op_now(void *arg)
{
	return net.now;
}

/* active-active: the set of buckets the kernel forwards */
static int op_buckets(void *arg, const uint32_t *held, unsigned n)
{
	struct node *nd = arg;
	memset(nd->held, 0, sizeof(nd->held));
	for (unsigned i = 0; i < n; i++) {
		assert_true(held[i] < 64);
		nd->held[held[i]] = true;
	}
	nd->buckets_calls++;
	return 0;
}

/* defer: packets let go, and what the peers' kernels held at that moment */
static struct {
	uint64_t cookie[64];
	int peer_state[64];             /* the flow's TCP state on the other node, -1 none */
	unsigned n;
	struct ct watch;                /* the flow looked at */
	int other;                      /* the node looked at */
} rel;

static void op_release(void *arg, uint64_t cookie)
{
	assert_true(rel.n < 64);
	struct simkernel *k = &net.n[rel.other].k;
	int i = kfind(k, &rel.watch);
	rel.peer_state[rel.n] = i < 0 ? -1 : k->ct[i].tcp.state;
	rel.cookie[rel.n++] = cookie;
}

static const struct repl_ops ops_tpl = {
	.inject = op_inject, .inject_flush = op_inject_flush, .dump = op_dump,
	.dump_start = op_dump_start, .events_new = op_events_new,
	.inject_thread = op_inject_thread, .send = op_send, .now_ms = op_now,
	.buckets = op_buckets, .release = op_release,
};

static size_t ring_bytes;       /* 0: the default of these tests */
static uint32_t quiet_min;      /* cfg.commit_quiet_min */
static bool membership;         /* cfg.membership: a transport like CPG */
static bool active_active;      /* cfg.active_active, 64 buckets */
static bool routed;             /* cfg.routed */
static uint32_t defer_ms;       /* cfg.defer_ms */
#define AA_SEED 0x63747379u

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
	cfg.resend_bytes = ring_bytes ? ring_bytes : 4u << 20;
	cfg.nack_ms = 20;
	cfg.gap_timeout_ms = 2000;
	cfg.refresh_ms = 1000;
	cfg.commit_quiet_min = quiet_min;
	cfg.membership = membership;
	cfg.active_active = active_active;
	cfg.nbuckets = 64;
	cfg.bucket_seed = AA_SEED;
	cfg.routed = routed;
	cfg.defer_ms = defer_ms;
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

/* Deliver what is due, in delivery-time order (frames due at the same time
 * in the order they were sent, as a link without reordering would); flush
 * what that caused. */
static void deliver(void)
{
	for (int round = 0; round < 100; round++) {
		for (int i = 0; i < NODES; i++)
			if (net.n[i].r)
				repl_flush(net.n[i].r);
		unsigned best = net.qn;
		for (unsigned i = 0; i < net.qn; i++)
			if (net.q[i].at <= net.now &&
			    (best == net.qn || net.q[i].at < net.q[best].at ||
			     (net.q[i].at == net.q[best].at && net.q[i].order < net.q[best].order)))
				best = i;
		if (best == net.qn)
			return;
		struct pkt k = net.q[best];
		net.q[best] = net.q[--net.qn];
		if (net.n[k.to].r)
			repl_receive(net.n[k.to].r, k.data, k.len, net.n[k.from].id);
		round = 0;
	}
}

/* Let time pass in 10 ms steps: polls, heartbeats every 100 ms, deliveries. */
static void run(unsigned ms)
{
	for (unsigned t = 0; t < ms; t += 10) {
		net.now += 10;
		for (int i = 0; i < NODES; i++) {
			if (!net.n[i].r)
				continue;
			if (net.now % 100 == 0)
				repl_tick(net.n[i].r);
			else
				repl_poll(net.n[i].r);
		}
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
	struct pkt *q = calloc(QMAX, sizeof(*net.q));
	memset(&net, 0, sizeof(net));
	net.q = q;
	net.nnodes = 2;
	net.now = 1000000;
	net.rng = 88172645463325252ULL;
	return net.q ? 0 : -1;
}

static int teardown(void **state)
{
	for (int i = 0; i < NODES_MAX; i++)
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

/* A large commit pauses the kernel's NEW events (their echoes would halve
 * its rate) and reads the table after it, which finds a local flow whose NEW
 * event was missed meanwhile. */
static void test_commit_pauses_new_events(void **state)
{
	quiet_min = 10;
	start(0, true, true);
	start(1, false, false);
	quiet_min = 0;
	run(300);
	for (uint32_t i = 0; i < 20; i++) {
		struct ct c = flow(230 + i);
		kernel_new(0, &c);
	}
	run(200);
	struct node *b = &net.n[1];
	struct ct mine = flow(290);     /* born on B during the commit, event missed */
	b->k.ct[b->k.n] = mine;
	b->k.used[b->k.n++] = true;
	assert_int_equal(repl_commit(b->r), 20);
	assert_int_equal(b->creates_quiet, 20);
	assert_false(b->new_events_off);                /* on again */
	/* sent from the second thread, which is stopped again */
	assert_int_equal(b->creates_threaded, 20);
	assert_false(b->threaded);
	const struct repl_stats *st = repl_stats(b->r);
	assert_int_equal(st->commits_quiet, 1);
	assert_int_equal(st->dump_found, 1);
	run(300);
	assert_true(kfind(&net.n[0].k, &mine) >= 0);    /* advertised to A */
	/* a failed resubscription is retried, and its dump follows */
	for (uint32_t i = 0; i < 20; i++) {
		struct ct c = flow(260 + i);
		kernel_new(0, &c);
	}
	run(200);
	struct ct mine2 = flow(291);
	b->k.ct[b->k.n] = mine2;
	b->k.used[b->k.n++] = true;
	b->resume_fails = 1;
	assert_int_equal(repl_commit(b->r), 20);
	assert_true(b->new_events_off);                 /* still off */
	assert_int_equal(st->dump_found, 1);
	run(50);
	assert_false(b->new_events_off);
	assert_int_equal(st->dump_found, 2);
	run(300);
	assert_true(kfind(&net.n[0].k, &mine2) >= 0);
	/* a promotion that writes the flows held sends from the thread too */
	for (uint32_t i = 0; i < 10; i++) {
		struct ct c = flow(300 + i);
		kernel_new(0, &c);
	}
	run(200);
	unsigned before = b->creates_threaded;
	repl_promote(b->r);
	assert_int_equal(b->creates_threaded - before, 10);
	assert_false(b->threaded);
	repl_demote(b->r);
	/* a small commit leaves the events alone, and sends inline */
	before = b->creates_threaded;
	assert_int_equal(repl_commit(b->r), 0);
	assert_int_equal(st->commits_quiet, 2);
	assert_int_equal(b->creates_threaded, before);
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

static void test_loss_is_repaired(void **state)
{
	start(0, true, true);
	start(1, false, true);
	run(300);
	net.drop_next = 1;
	struct ct c = flow(500);
	kernel_new(0, &c);
	run(50);
	/* the next frame reveals the gap: NACK, retransmission, applied */
	struct ct d = flow(501);
	kernel_new(0, &d);
	run(300);
	assert_int_equal(net.dropped, 1);
	const struct repl_stats *s1 = repl_stats(net.n[1].r);
	assert_true(s1->tx_nacks >= 1);
	assert_int_equal(s1->rx_lost, 0);
	assert_true(repl_stats(net.n[0].r)->tx_retransmits >= 1);
	assert_true(in_sync(1));
	assert_int_equal(peer_of(1, 1).flows_held, 2);
	assert_int_equal(net.n[1].k.n, 2);
}

static void test_lost_tail_is_repaired(void **state)
{
	start(0, true, true);
	start(1, false, true);
	run(300);
	net.drop_next = 1;              /* the only frame: only a heartbeat tells */
	struct ct c = flow(510);
	kernel_new(0, &c);
	run(400);
	assert_true(repl_stats(net.n[1].r)->tx_nacks >= 1);
	assert_true(in_sync(1));
	assert_int_equal(net.n[1].k.n, 1);
}

static void test_ring_overrun_escalates(void **state)
{
	ring_bytes = 8192;              /* a handful of frames */
	start(0, true, true);
	ring_bytes = 0;
	start(1, false, true);
	run(300);
	/* the link is cut while more is sent than the ring holds */
	net.down = true;
	for (uint32_t i = 0; i < 1000; i++) {
		struct ct c = flow(2000 + i);
		kernel_new(0, &c);
		repl_flush(net.n[0].r);
	}
	/* a frame's worth of flows is deleted meanwhile */
	for (uint32_t i = 0; i < 10; i++) {
		struct ct c = flow(2000 + i);
		struct simkernel *a = &net.n[0].k;
		a->used[kfind(a, &c)] = false;
		a->n--;
		repl_kernel_event(net.n[0].r, CTNL_EV_DESTROY, &c, false);
	}
	net.down = false;
	run(3000);
	assert_true(repl_stats(net.n[0].r)->resync_escalations >= 1);
	assert_true(in_sync(1));
	assert_int_equal(peer_of(1, 1).flows_held, 990);
	assert_int_equal(net.n[1].k.n, 990);
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
	assert_false(peer_of(1, 1).in_sync);
	/* a dead peer does not keep the node from being in sync: scripts wait
	 * for in-sync before promoting, precisely when the peer is dead */
	assert_true(in_sync(1));
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
		repl_receive(net.n[1].r, buf, len, i % 3 ? net.n[0].id : (uint32_t)(i % 2 ? 0 : 99));
		repl_flush(net.n[1].r);
	}
	const struct repl_stats *s = repl_stats(net.n[1].r);
	assert_true(s->rx_malformed > 0);
	/* a record of a type we do not know, marked mandatory, at the end of
	 * an otherwise good frame: the whole frame is refused */
	struct ct m = flow(902);
	kernel_new(0, &m);
	repl_flush(net.n[0].r);
	assert_int_equal(net.qn, 1);
	uint8_t ext[1500];
	size_t elen = net.q[0].len;
	memcpy(ext, net.q[0].data, elen);
	net.qn = 0;
	ext[elen] = 200;
	ext[elen + 1] = REC_F_MANDATORY;
	ext[elen + 2] = 0;
	ext[elen + 3] = 4;
	elen += 4;
	ext[WIRE_OFF_LEN] = (uint8_t)((elen - WIRE_HDR_LEN) >> 8);
	ext[WIRE_OFF_LEN + 1] = (uint8_t)(elen - WIRE_HDR_LEN);
	uint64_t malformed = s->rx_malformed;
	repl_receive(net.n[1].r, ext, elen, net.n[0].id);
	assert_int_equal(s->rx_malformed, malformed + 1);
	assert_true(kfind(&net.n[1].k, &m) < 0);
	/* honest traffic still flows */
	struct ct d = flow(901);
	kernel_new(0, &d);
	repl_resync(net.n[1].r);
	run(500);
	assert_true(kfind(&net.n[1].k, &d) >= 0);
}

struct owner_ctx {
	const struct ct *key;
	uint32_t owner;
};

static void owner_visit(void *arg, const struct flow *f)
{
	struct owner_ctx *o = arg;
	if (flow_key_equal(f, o->key))
		o->owner = f->owner;
}

/* The owner node idx holds for a flow (0: none, or not held). */
static uint32_t owner_of(int idx, const struct ct *c)
{
	struct owner_ctx o = { c, 0 };
	repl_foreach(net.n[idx].r, owner_visit, &o);
	return o.owner;
}

/* Node 2 is promoted while node 1 stays primary, and traffic goes on
 * through both: ownership settles on the newer promotion (it used to flip
 * back and forth on every UPDATE, each primary adopting the flow from the
 * other), both tables agree, and the conflict is counted. */
static void test_two_primaries_settle(void **state)
{
	enum { N = 8 };
	struct ct c[N];

	start(0, true, true);
	start(1, false, true);
	run(300);
	for (uint32_t i = 0; i < N; i++) {
		c[i] = flow(960 + i);
		kernel_new(0, &c[i]);
	}
	run(200);
	assert_int_equal(peer_of(1, 1).flows_held, N);
	assert_int_equal(repl_promote(net.n[1].r), N);          /* node 1 not demoted */
	uint64_t adopted[2] = { 0, 0 };
	for (int round = 0; round < 20; round++) {
		if (round == 10)
			for (int k = 0; k < 2; k++)
				adopted[k] = repl_stats(net.n[k].r)->adopted;
		for (uint32_t i = 0; i < N; i++) {
			c[i].timeout = 1000 + (uint32_t)round;
			repl_kernel_event(net.n[0].r, CTNL_EV_UPDATE, &c[i], false);
			repl_kernel_event(net.n[1].r, CTNL_EV_UPDATE, &c[i], false);
		}
		run(50);
	}
	run(500);
	for (int k = 0; k < 2; k++)                     /* settled: nobody adopts any more */
		assert_int_equal(repl_stats(net.n[k].r)->adopted, adopted[k]);
	for (uint32_t i = 0; i < N; i++) {
		assert_int_equal(owner_of(0, &c[i]), 2);
		assert_int_equal(owner_of(1, &c[i]), 2);
	}
	struct repl_status st;
	repl_status(net.n[0].r, &st);
	assert_true(st.primary && st.superseded_by == 2);
	assert_true(repl_stats(net.n[0].r)->ownership_conflicts >= N);
	assert_true(in_sync(0) && in_sync(1));
	/* node 1 is promoted again: it is the newest now, and takes them all */
	assert_int_equal(repl_promote(net.n[0].r), N);
	run(300);
	for (uint32_t i = 0; i < N; i++) {
		repl_kernel_event(net.n[1].r, CTNL_EV_UPDATE, &c[i], false);
		assert_int_equal(owner_of(0, &c[i]), 1);
		assert_int_equal(owner_of(1, &c[i]), 1);
	}
	repl_status(net.n[1].r, &st);
	assert_true(st.primary && st.superseded_by == 1);
}

/* Three nodes; 1 and 2 cannot hear each other while both promote, 3 hears
 * both: it refuses 2's claim (1's of the same term wins, lower id).  Once
 * 1 is dead, 2 still speaking for the flow is taken: a dead owner's claim
 * does not silence a live node (else 3 would never again follow the flow
 * that 2 forwards, and ask 2 for a resync every few heartbeats). */
static void test_dead_owner_claim_yields(void **state)
{
	net.nnodes = 3;
	start(0, true, true);
	start(1, false, true);
	start(2, false, true);
	run(300);
	struct ct c = flow(980);
	kernel_new(0, &c);
	run(200);
	assert_int_equal(owner_of(2, &c), 1);
	net.cut[0][1] = net.cut[1][0] = true;
	repl_promote(net.n[0].r);
	run(100);
	repl_promote(net.n[1].r);
	run(300);
	assert_int_equal(owner_of(0, &c), 1);
	assert_int_equal(owner_of(1, &c), 2);
	assert_int_equal(owner_of(2, &c), 1);                    /* (2, node 1) beats (2, node 2) */
	uint64_t refused = repl_stats(net.n[2].r)->claims_refused;
	assert_true(refused >= 1);
	stop(0);
	run(500);
	assert_false(peer_of(2, 1).alive);
	c.timeout = 4242;
	repl_kernel_event(net.n[1].r, CTNL_EV_UPDATE, &c, false);
	run(300);
	assert_int_equal(owner_of(2, &c), 2);
	assert_int_equal(net.n[2].k.ct[kfind(&net.n[2].k, &c)].timeout, 4242);
	assert_true(in_sync(2));
}

/* Three nodes; node 3 restarts.  The bulks that bring it up to date go to
 * it alone: node 2 receives no bulk and injects nothing, and counts the
 * bulk's sequence numbers as received (a SKIP), also when that SKIP is
 * lost and it NACKs them. */
static void restart_third(bool lose_skip, bool group)
{
	net.nnodes = 3;
	net.group = group;
	start(0, true, true);
	start(1, false, true);
	start(2, false, true);
	run(300);
	for (uint32_t i = 0; i < 200; i++) {
		struct ct c = flow(1000 + i);
		kernel_new(0, &c);
	}
	run(1500);
	assert_int_equal(net.n[2].k.n, 200);
	assert_true(in_sync(1) && in_sync(2));
	stop(2);
	run(100);
	uint64_t bulks = peer_of(1, 1).c.bulks_received;
	uint64_t upserts = repl_stats(net.n[1].r)->rx_upserts;
	unsigned updates = net.n[1].k.updates, creates = net.n[1].k.creates;
	start(2, false, true);
	if (lose_skip)
		net.cut[0][1] = true;
	run(100);
	net.cut[0][1] = false;
	run(1000);
	assert_int_equal(peer_of(2, 1).flows_held, 200);
	assert_true(in_sync(2));
	assert_true(in_sync(1));
	assert_int_equal(peer_of(1, 1).c.bulks_received, bulks);        /* none of node 1's */
	assert_int_equal(repl_stats(net.n[1].r)->rx_upserts, upserts);
	assert_int_equal(net.n[1].k.updates, updates);
	assert_int_equal(net.n[1].k.creates, creates);
	assert_int_equal(peer_of(1, 1).lost_frames, 0);
	assert_true(repl_stats(net.n[1].r)->rx_skipped_ranges >= 1);
	if (lose_skip)
		assert_true(peer_of(1, 1).c.nacks_sent >= 1);
}

static void test_restart_bulks_to_it_alone(void **state)
{
	restart_third(false, false);
}

static void test_restart_bulk_skip_lost(void **state)
{
	restart_third(true, false);
}

/* With a multicast group every node receives the bulk's frames: the
 * others take their sequence numbers and skip their records (REC_FOR). */
static void test_restart_bulk_group(void **state)
{
	restart_third(false, true);
}

/* A transport that knows the membership (CPG) says node 1 left: it is dead
 * at once, without waiting for its heartbeats to stop, and its flow is
 * adopted by traffic here.  A frame the transport attributes to another
 * node than the one it names is refused. */
/* Over a transport that reports the membership (CPG), silence is no death:
 * corosync holds every message back while it forms a new membership, and
 * that must not make every peer dead; leaving the membership does. */
static void test_membership_liveness(void **state)
{
	membership = true;
	start(0, true, true);
	start(1, false, true);
	run(300);
	assert_true(peer_of(1, 1).alive);
	net.down = true;
	run(2000);                      /* 20 heartbeats missed */
	bool alive = peer_of(1, 1).alive;
	repl_member(net.n[1].r, 1, false);
	bool after_leave = peer_of(1, 1).alive;
	membership = false;
	assert_true(alive);
	assert_false(after_leave);
	net.down = false;
	run(300);
	assert_true(peer_of(1, 1).alive);       /* heard again */
}

/* ---- active-active ------------------------------------------------------------ */

/* A flow from client 198.51.100.(10 + c): its bucket is its addresses'. */
static struct ct aa_flow(uint32_t c, uint32_t i)
{
	struct ct f = flow(i);
	f.orig.src.ip4 = htonl(0xc6336400u | (10 + c));
	f.reply.dst.ip4 = htonl(0xcb007101u);
	return f;
}

static uint32_t bucket_owner(int idx, const struct ct *c)
{
	struct repl_status st;
	repl_status(net.n[idx].r, &st);
	return st.bucket_owner[bucket_of(c, 64, AA_SEED)];
}

/* Three nodes forwarding at once.  Each node's kernel set is exactly its
 * share of the map, the shares split every bucket; every flow, made where
 * its bucket is held, is held by all.  Node 1 dies: its buckets go to the
 * others and its flows with them (each now owned by its bucket's new owner
 * on both survivors, before any packet touches them); traffic on a flow of
 * another's bucket adopts nothing.  Node 1 restarts: it takes its own
 * buckets back, and their flows. */
static void test_active_active(void **state)
{
	enum { NC = 40 };
	struct ct c[NC];

	active_active = true;
	net.nnodes = 3;
	for (int i = 0; i < 3; i++)
		start(i, true, true);
	run(1000);
	active_active = false;
	struct repl_status st;
	repl_status(net.n[0].r, &st);
	for (int b = 0; b < 64; b++) {
		int holders = 0;
		for (int i = 0; i < 3; i++) {
			holders += net.n[i].held[b];
			assert_int_equal(net.n[i].held[b], st.bucket_owner[b] == (uint32_t)i + 1);
		}
		assert_int_equal(holders, 1);
	}
	unsigned of1 = 0;
	for (uint32_t k = 0; k < NC; k++) {
		c[k] = aa_flow(k, k);
		uint32_t o = bucket_owner(0, &c[k]);
		assert_true(o >= 1 && o <= 3);
		assert_true(net.n[o - 1].held[bucket_of(&c[k], 64, AA_SEED)]);
		kernel_new((int)o - 1, &c[k]);
		of1 += o == 1;
	}
	assert_true(of1 > 0);
	/* and one made on node 1 outside its buckets (traffic to or from the
	 * host itself, or while the map changed): in a bucket of node 2's */
	struct ct stray;
	for (uint32_t k = NC;; k++) {
		stray = aa_flow(k, k);
		if (bucket_owner(0, &stray) == 2)
			break;
	}
	kernel_new(0, &stray);
	run(500);
	for (int i = 0; i < 3; i++)
		assert_int_equal(net.n[i].k.n, NC + 1);
	assert_int_equal(owner_of(1, &stray), 1);
	stop(0);
	run(600);
	/* node 1 is dead: node 2 holds the bucket already, and takes the flow */
	assert_int_equal(owner_of(1, &stray), 2);
	assert_int_equal(owner_of(2, &stray), 2);
	unsigned taken = 0;
	for (uint32_t k = 0; k < NC; k++) {
		uint32_t o = bucket_owner(1, &c[k]);
		assert_true(o == 2 || o == 3);
		assert_int_equal(bucket_owner(2, &c[k]), o);
		assert_int_equal(owner_of(1, &c[k]), o);        /* no packet needed */
		assert_int_equal(owner_of(2, &c[k]), o);
		assert_true(net.n[o - 1].held[bucket_of(&c[k], 64, AA_SEED)]);
	}
	taken = (unsigned)(repl_stats(net.n[1].r)->bucket_takeovers +
			   repl_stats(net.n[2].r)->bucket_takeovers);
	assert_int_equal(taken, of1 + 1);
	/* a packet on node 2 of a flow in node 3's bucket: not adopted */
	for (uint32_t k = 0; k < NC; k++) {
		if (bucket_owner(1, &c[k]) != 3)
			continue;
		uint64_t foreign = repl_stats(net.n[1].r)->ev_foreign;
		repl_kernel_event(net.n[1].r, CTNL_EV_UPDATE, &c[k], false);
		assert_int_equal(repl_stats(net.n[1].r)->ev_foreign, foreign + 1);
		assert_int_equal(owner_of(1, &c[k]), 3);
		break;
	}
	/* node 1 comes back: its own buckets, and their flows, return */
	active_active = true;
	start(0, true, true);
	active_active = false;
	run(1500);
	assert_int_equal(owner_of(0, &stray), 2);
	for (uint32_t k = 0; k < NC; k++) {
		uint32_t o = bucket_owner(0, &c[k]);
		for (int i = 0; i < 3; i++) {
			assert_int_equal(bucket_owner(i, &c[k]), o);
			assert_int_equal(owner_of(i, &c[k]), o);
		}
		unsigned b = bucket_of(&c[k], 64, AA_SEED);
		assert_true(net.n[o - 1].held[b]);
		assert_int_equal(net.n[0].held[b] + net.n[1].held[b] + net.n[2].held[b], 1);
	}
	assert_int_equal(repl_stats(net.n[0].r)->bucket_takeovers, of1);
	for (int i = 0; i < 3; i++)
		assert_true(in_sync(i));
}

/* A new TCP flow's first packet, as conntrack makes it (no NAT). */
static struct ct syn_flow(uint32_t i)
{
	struct ct c = flow(i);
	c.reply.dst = c.orig.src;
	c.status = 0;
	c.timeout = 120;
	c.tcp.state = 1;                /* SYN_SENT */
	return c;
}

/* Routed active-active with defer (repl.h, "Defer"), node 1 forwarding the
 * SYNs and node 2 the SYN-ACKs.  A first packet held on node 1 goes only
 * once node 2's kernel has the flow; a SYN-ACK held on node 2 only once
 * node 1's kernel is at SYN_RECV; without an answer, at the time-out; with
 * no live peer, at once.  Node 2's traffic on node 1's flow takes nothing
 * while node 1 lives (routed: the first node owns); when node 1 dies, its
 * flows go to their buckets' holder. */
static void test_defer(void **state)
{
	active_active = routed = true;
	defer_ms = 20;
	start(0, true, true);
	start(1, true, true);
	active_active = routed = false;
	defer_ms = 0;
	run(1000);
	assert_true(in_sync(0) && in_sync(1));
	memset(&rel, 0, sizeof(rel));

	/* the SYN on node 1 */
	struct ct c = syn_flow(1);
	rel.watch = c;
	rel.other = 1;
	repl_defer_new(net.n[0].r, &c, 101);
	assert_int_equal(rel.n, 0);                     /* held */
	assert_int_equal(repl_defer_count(net.n[0].r), 1);
	deliver();
	assert_int_equal(rel.n, 1);
	assert_int_equal(rel.cookie[0], 101);
	assert_int_equal(rel.peer_state[0], 1);         /* node 2's kernel had it */
	assert_int_equal(owner_of(0, &c), 1);
	assert_int_equal(owner_of(1, &c), 1);
	assert_int_equal(repl_stats(net.n[0].r)->defer_acked, 1);
	kernel_new(0, &c);                              /* its NEW event, once let go */

	/* the SYN-ACK on node 2: its kernel is at SYN_RECV, node 1's not yet */
	struct ct sa = c;
	sa.tcp.state = 2;                               /* SYN_RECV */
	sa.status = IPS_SEEN_REPLY | IPS_CONFIRMED;
	rel.other = 0;
	repl_defer_reply(net.n[1].r, &sa, 102);
	assert_int_equal(rel.n, 1);
	deliver();
	assert_int_equal(rel.n, 2);
	assert_int_equal(rel.cookie[1], 102);
	assert_int_equal(rel.peer_state[1], 2);         /* node 1's kernel: SYN_RECV */
	assert_int_equal(repl_stats(net.n[0].r)->hints_applied, 1);
	assert_int_equal(repl_stats(net.n[1].r)->hints_sent, 1);
	assert_int_equal(owner_of(0, &c), 1);           /* a hint moves no owner */
	run(100);
	assert_int_equal(net.n[1].k.ct[kfind(&net.n[1].k, &c)].tcp.state, 2);
	/* a hint that moves nothing back: ignored */
	repl_defer_reply(net.n[1].r, &sa, 103);
	deliver();
	assert_int_equal(rel.cookie[2], 103);
	assert_int_equal(repl_stats(net.n[0].r)->hints_ignored, 1);

	/* node 2's traffic on node 1's flow: not taken while node 1 lives */
	uint64_t foreign = repl_stats(net.n[1].r)->ev_foreign;
	repl_kernel_event(net.n[1].r, CTNL_EV_UPDATE, &sa, false);
	assert_int_equal(repl_stats(net.n[1].r)->ev_foreign, foreign + 1);
	assert_int_equal(owner_of(1, &c), 1);

	/* first packets read together share a frame, and one ACK lets them go */
	uint64_t acks = repl_stats(net.n[0].r)->acks_received;
	struct ct b1 = syn_flow(10), b2 = syn_flow(11);
	rel.watch = b2;
	rel.other = 1;
	repl_defer_new(net.n[0].r, &b1, 201);
	repl_defer_new(net.n[0].r, &b2, 202);
	assert_int_equal(repl_defer_count(net.n[0].r), 2);
	unsigned before = rel.n;
	deliver();
	assert_int_equal(rel.n, before + 2);
	assert_int_equal(rel.peer_state[rel.n - 1], 1);
	assert_int_equal(repl_stats(net.n[0].r)->acks_received, acks + 1);
	rel.n = before;                                 /* (the indices below) */

	/* no answer: let go at the time-out, not before */
	net.cut[0][1] = true;
	struct ct c2 = syn_flow(2);
	rel.watch = c2;
	rel.other = 1;
	repl_defer_new(net.n[0].r, &c2, 104);
	run(10);
	assert_int_equal(rel.n, 3);
	net.now += 10;
	assert_int_equal(repl_defer_poll(net.n[0].r), 0);
	assert_int_equal(rel.n, 4);
	assert_int_equal(rel.cookie[3], 104);
	assert_int_equal(rel.peer_state[3], -1);
	assert_int_equal(repl_stats(net.n[0].r)->defer_timeouts, 1);
	net.cut[0][1] = false;
	run(300);                                       /* repaired: node 2 has it */
	assert_true(kfind(&net.n[1].k, &c2) >= 0);

	/* node 1 dies: its flows go to node 2, the holder of every bucket now */
	stop(0);
	run(600);
	assert_int_equal(owner_of(1, &c), 2);
	assert_int_equal(owner_of(1, &c2), 2);
	/* no live peer: a first packet goes at once */
	struct ct c3 = syn_flow(3);
	rel.watch = c3;
	repl_defer_new(net.n[1].r, &c3, 105);
	assert_int_equal(rel.n, 5);
	assert_int_equal(rel.cookie[4], 105);
	assert_int_equal(repl_stats(net.n[1].r)->defer_passed, 1);
}

static void test_membership_and_source(void **state)
{
	start(0, true, true);
	start(1, false, true);
	run(300);
	struct ct c = flow(990);
	kernel_new(0, &c);
	run(200);
	assert_true(peer_of(1, 1).alive);
	/* node 1's next frame, but handed over as if node 3 had sent it */
	struct ct d = flow(991);
	kernel_new(0, &d);
	repl_flush(net.n[0].r);
	assert_int_equal(net.qn, 1);
	uint64_t bad = repl_stats(net.n[1].r)->rx_bad_source;
	repl_receive(net.n[1].r, net.q[0].data, net.q[0].len, 3);
	repl_receive(net.n[1].r, net.q[0].data, net.q[0].len, 0);
	assert_int_equal(repl_stats(net.n[1].r)->rx_bad_source, bad + 2);
	assert_true(kfind(&net.n[1].k, &d) < 0);
	deliver();
	assert_true(kfind(&net.n[1].k, &d) >= 0);
	/* node 1 leaves the membership: dead now, 20 ms later */
	repl_member(net.n[1].r, 1, false);
	assert_false(peer_of(1, 1).alive);
	repl_kernel_event(net.n[1].r, CTNL_EV_UPDATE, &c, false);
	assert_int_equal(owner_of(1, &c), 2);
	assert_int_equal(repl_stats(net.n[1].r)->adopted, 1);
	/* it is heard again: alive */
	run(200);
	assert_true(peer_of(1, 1).alive);
}

/* A frame is taken whole or not at all: a bad attribute in its second
 * record keeps its first from being applied, and does not move the
 * sender's sequence (the honest frame of that number is taken after it). */
static void test_frame_validated_whole(void **state)
{
	start(0, true, true);
	start(1, false, true);
	run(300);
	/* zone 1: not packable, so each flow is an attribute record */
	struct ct a = flow(950), b = flow(951);
	a.zone = b.zone = 1;
	a.has |= CT_HAS_ZONE;
	b.has |= CT_HAS_ZONE;
	kernel_new(0, &a);
	kernel_new(0, &b);
	repl_flush(net.n[0].r);
	assert_int_equal(net.qn, 1);
	uint8_t bad[1500];
	size_t len = net.q[0].len;
	memcpy(bad, net.q[0].data, len);
	size_t rec2 = WIRE_HDR_LEN + ((size_t)bad[WIRE_HDR_LEN + 2] << 8 | bad[WIRE_HDR_LEN + 3]);
	assert_true(rec2 + 6 < len);
	assert_int_equal(bad[rec2], REC_FLOW_UPSERT);
	assert_int_equal(bad[rec2 + 4] & 0x7f, 1);              /* FA_PROTO ... */
	assert_int_equal(bad[rec2 + 5], 2);
	bad[rec2 + 6] = 5;                                      /* ... of family 5 */
	uint64_t malformed = repl_stats(net.n[1].r)->rx_malformed;
	uint64_t upserts = repl_stats(net.n[1].r)->rx_upserts;
	repl_receive(net.n[1].r, bad, len, net.n[0].id);
	repl_flush(net.n[1].r);
	assert_int_equal(repl_stats(net.n[1].r)->rx_malformed, malformed + 1);
	assert_int_equal(repl_stats(net.n[1].r)->rx_upserts, upserts);
	assert_true(kfind(&net.n[1].k, &a) < 0);
	assert_int_equal(peer_of(1, 1).flows_held, 0);
	/* the honest frame of the same sequence number is still taken */
	deliver();
	assert_true(kfind(&net.n[1].k, &a) >= 0 && kfind(&net.n[1].k, &b) >= 0);
	assert_int_equal(peer_of(1, 1).flows_held, 2);
	assert_int_equal(peer_of(1, 1).c.gaps, 0);
}

/* Replay protection and epochs: a frame taken twice, a frame of a past life
 * of its sender, a frame of an epoch that never answers our challenge —
 * each dropped and counted apart, none disturbing the honest peer. */
static void test_replay_and_epochs(void **state)
{
	start(0, true, true);
	start(1, false, true);
	run(300);
	struct repl_peer_status pa = peer_of(1, 1);
	uint32_t epoch1 = pa.epoch;
	assert_true(pa.known);
	struct ct c = flow(950);
	kernel_new(0, &c);
	repl_flush(net.n[0].r);
	assert_true(net.qn > 0);
	uint8_t old[1500];
	size_t olen = net.q[0].len;
	memcpy(old, net.q[0].data, olen);
	deliver();
	assert_true(kfind(&net.n[1].k, &c) >= 0);
	const struct repl_stats *s = repl_stats(net.n[1].r);

	/* 1. the same datagram again: a replay */
	repl_receive(net.n[1].r, old, olen, net.n[0].id);
	assert_int_equal(s->rx_replay, 1);
	assert_int_equal(peer_of(1, 1).c.rx_replay, 1);

	/* 2. A restarts; B takes its new epoch only after the challenge */
	uint64_t confirmed = s->epochs_confirmed;
	stop(0);
	start(0, true, true);
	run(500);
	assert_int_equal(s->epochs_confirmed, confirmed + 1);
	assert_true(peer_of(1, 1).epoch != epoch1);
	assert_true(in_sync(1));
	/* ... and the frame of A's first life is now of a past epoch */
	repl_receive(net.n[1].r, old, olen, net.n[0].id);
	assert_int_equal(s->rx_old_epoch, 1);
	assert_int_equal(s->rx_replay, 1);

	/* 3. an epoch nobody lives in: challenged, never taken */
	uint64_t challenges = s->tx_challenges, unconfirmed = s->rx_unconfirmed;
	uint32_t epoch2 = peer_of(1, 1).epoch;
	old[WIRE_OFF_EPOCH] ^= 0x5a;
	repl_receive(net.n[1].r, old, olen, net.n[0].id);
	assert_int_equal(s->rx_unconfirmed, unconfirmed + 1);
	assert_int_equal(s->tx_challenges, challenges + 1);
	run(300);
	assert_int_equal(peer_of(1, 1).epoch, epoch2);
	assert_int_equal(s->epochs_confirmed, confirmed + 1);
	assert_true(in_sync(1));

	/* 4. B restarts: it no longer knows A's past epochs, yet a frame of
	 * one cannot answer the challenge and is never taken */
	stop(1);
	start(1, false, true);
	run(500);
	s = repl_stats(net.n[1].r);
	assert_int_equal(peer_of(1, 1).epoch, epoch2);
	old[WIRE_OFF_EPOCH] ^= 0x5a;            /* back to A's first life */
	repl_receive(net.n[1].r, old, olen, net.n[0].id);
	run(300);
	assert_int_equal(peer_of(1, 1).epoch, epoch2);
	assert_true(s->rx_unconfirmed >= 1);
	assert_true(in_sync(1));
	assert_true(kfind(&net.n[1].k, &c) >= 0);
}

static void kernel_update(int idx, const struct ct *c)
{
	struct node *nd = &net.n[idx];
	int slot = kfind(&nd->k, c);
	assert_true(slot >= 0);
	nd->k.ct[slot] = *c;
	repl_kernel_event(nd->r, CTNL_EV_UPDATE, c, false);
}

static void kernel_destroy(int idx, const struct ct *c)
{
	struct node *nd = &net.n[idx];
	int slot = kfind(&nd->k, c);
	assert_true(slot >= 0);
	nd->k.used[slot] = false;
	nd->k.n--;
	repl_kernel_event(nd->r, CTNL_EV_DESTROY, c, false);
}

/* One seeded run: a busy primary over a bad link, then a good link; the
 * backup's kernel must end up equal to the primary's, state included. */
static void one_random_run(uint64_t seed)
{
	static const unsigned loss[] = { 1, 10, 30, 20 };
	uint32_t live[KMAX];
	unsigned nlive = 0, next = 0;

	net.rng = seed * 0x9e3779b97f4a7c15ULL + 1;
	net.loss = loss[seed % 4];
	net.dup = 5;
	net.delay_max = 40;
	start(0, true, true);
	start(1, false, true);
	for (int step = 0; step < 300; step++) {
		unsigned op = rnd() % 100;
		if (op < 55 || nlive == 0) {
			struct ct c = flow(next);
			live[nlive++] = next++;
			kernel_new(0, &c);
		} else if (op < 85) {
			struct ct c = flow(live[rnd() % nlive]);
			c.timeout = rnd() % 100000;
			c.tcp.state = (uint8_t)(1 + rnd() % 9);
			kernel_update(0, &c);
		} else {
			unsigned k = rnd() % nlive;
			struct ct c = flow(live[k]);
			live[k] = live[--nlive];
			kernel_destroy(0, &c);
		}
		run(10);
	}
	net.loss = net.dup = net.delay_max = 0;
	run(6000);
	if (!in_sync(1) || !in_sync(0))
		fail_msg("seed %llu: not in sync", (unsigned long long)seed);
	struct simkernel *a = &net.n[0].k, *b = &net.n[1].k;
	if (a->n != b->n || a->n != nlive)
		fail_msg("seed %llu: primary %u flows, backup %u, expected %u",
			 (unsigned long long)seed, a->n, b->n, nlive);
	for (unsigned i = 0; i < KMAX; i++) {
		if (!a->used[i])
			continue;
		int j = kfind(b, &a->ct[i]);
		if (j < 0 || b->ct[j].timeout != a->ct[i].timeout ||
		    b->ct[j].tcp.state != a->ct[i].tcp.state)
			fail_msg("seed %llu: flow %u differs on the backup",
				 (unsigned long long)seed, ntohs(a->ct[i].orig.sport));
	}
	stop(0);
	stop(1);
	memset(&net.n, 0, sizeof(net.n));
	net.qn = 0;
}

static void test_random_links(void **state)
{
	uint64_t dropped = 0, dups = 0;
	for (uint64_t seed = 1; seed <= 200; seed++) {
		one_random_run(seed);
		dropped += net.dropped;
		dups += net.duplicated;
		net.dropped = net.duplicated = 0;
	}
	/* the runs did meet trouble */
	print_message("200 seeded runs: %llu frames dropped, %llu duplicated\n", (unsigned long long)dropped, (unsigned long long)dups);
	assert_true(dropped > 1000);
	assert_true(dups > 100);
}

/* A flow kept alive by traffic on its owner (the kernel extends its timeout
 * without an event) is refreshed on the peer before its copy expires; one
 * that vanished from the owner's kernel without an event is deleted. */
static void test_timeout_refresh(void **state)
{
	start(0, true, true);
	start(1, false, true);
	run(300);
	struct ct c = flow(1200), gone = flow(1201);
	c.l4 = gone.l4 = IPPROTO_UDP;
	c.has &= ~(uint32_t)CT_HAS_TCP;
	gone.has &= ~(uint32_t)CT_HAS_TCP;
	c.timeout = gone.timeout = 30;
	kernel_new(0, &c);
	kernel_new(0, &gone);
	run(200);
	struct simkernel *a = &net.n[0].k, *b = &net.n[1].k;
	/* 65 s of traffic: the owner's kernel keeps the timeout at 30 */
	int slot = kfind(a, &gone);
	a->used[slot] = false;          /* ends silently (a missed event) */
	a->n--;
	uint64_t up0 = repl_stats(net.n[1].r)->rx_refreshes;
	for (int s = 0; s < 65; s++) {
		a->ct[kfind(a, &c)].timeout = 30;
		run(1000);
	}
	/* refreshed at least twice, each time before the copy expired */
	assert_true(repl_stats(net.n[0].r)->refreshed >= 2);
	assert_true(repl_stats(net.n[1].r)->rx_refreshes - up0 >= 2);
	/* a dump every second would be 65; only those near an expiry ran */
	const struct repl_stats *st = repl_stats(net.n[0].r);
	assert_true(st->refreshes + st->refreshes_skipped >= 60);
	assert_true(st->refreshes >= 2 && st->refreshes < 30);
	/* the peer's copy was re-sent with a fresh timeout */
	int j = kfind(b, &c);
	assert_true(j >= 0);
	assert_int_equal(b->ct[j].timeout, 30);
	assert_true(peer_of(1, 1).flows_held == 1);
	assert_true(kfind(b, &gone) < 0);
}


/* Flows whose peers' copies live for days need no refresh dump at all. */
static void test_refresh_skipped_for_long_timeouts(void **state)
{
	start(0, true, true);
	start(1, false, true);
	run(300);
	for (uint32_t i = 0; i < 10; i++) {
		struct ct c = flow(1500 + i);       /* TCP, timeout 5 days */
		kernel_new(0, &c);
	}
	run(10000);
	const struct repl_stats *st = repl_stats(net.n[0].r);
	assert_true(st->refreshes_skipped >= 8);
	assert_true(st->refreshes <= 1);        /* the first, before any flow was sent */
	/* a UDP flow with 30 s makes them run again, near its expiry */
	struct ct u = flow(1600);
	u.l4 = IPPROTO_UDP;
	u.has &= ~(uint32_t)CT_HAS_TCP;
	u.timeout = 30;
	kernel_new(0, &u);
	uint64_t r0 = st->refreshes;
	for (int s = 0; s < 40; s++) {
		net.n[0].k.ct[kfind(&net.n[0].k, &u)].timeout = 30;
		run(1000);
	}
	assert_true(st->refreshes > r0);
	assert_true(st->refreshed >= 1);
	assert_true(repl_stats(net.n[1].r)->rx_refreshes >= 1);     /* and B took it */
}

/* An event overrun: the engine reads the kernel table in the background
 * (slices; the loop keeps serving the link) and takes from it what the lost
 * events would have said.  The dump's entries are older than what happens
 * while it is read: a flow destroyed meanwhile must not come back. */
static void test_overrun_background_dump(void **state)
{
	start(0, true, true);
	start(1, false, true);
	run(300);
	struct node *a = &net.n[0];
	struct simkernel *ka = &a->k, *kb = &net.n[1].k;
	for (uint32_t i = 0; i < 40; i++) {
		struct ct c = flow(1300 + i);
		kernel_new(0, &c);
	}
	run(200);
	assert_int_equal(kb->n, 40);
	/* then events are lost: a flow is born, one changes, one ends */
	struct ct born = flow(1390), changed = flow(1301), ended = flow(1302);
	ka->ct[ka->n] = born;           /* slots 0..39 are taken, in order */
	ka->used[ka->n++] = true;
	changed.tcp.state = 5;          /* FIN_WAIT, unseen */
	ka->ct[kfind(ka, &changed)] = changed;
	ka->used[kfind(ka, &ended)] = false;
	ka->n--;
	a->slow_dump = true;
	repl_kernel_overrun(a->r);
	assert_true(a->snapping);
	/* while the dump is read: a flow ends, with its event */
	struct ct late = flow(1310);
	ka->used[kfind(ka, &late)] = false;
	ka->n--;
	repl_kernel_event(a->r, CTNL_EV_DESTROY, &late, false);
	/* the dump read in slices, the link served in between */
	for (int i = 0; i < 100 && !dump_step(a, 8); i++)
		run(10);
	assert_false(a->snapping);
	run(300);
	const struct repl_stats *st = repl_stats(a->r);
	assert_int_equal(st->overruns, 1);
	assert_int_equal(st->dump_found, 1);            /* born */
	assert_int_equal(st->dump_stale, 1);            /* late: not taken back */
	/* the peer's kernel equals ours: born there, changed, ended and late gone */
	assert_int_equal(kb->n, ka->n);
	assert_int_equal(kb->n, 39);
	assert_true(kfind(kb, &born) >= 0);
	assert_int_equal(kb->ct[kfind(kb, &changed)].tcp.state, 5);
	assert_true(kfind(kb, &ended) < 0);
	assert_true(kfind(kb, &late) < 0);
	assert_true(in_sync(1));
	/* an unchanged flow was not sent again: 2 upserts and 2 deletes */
	assert_int_equal(repl_stats(net.n[1].r)->rx_upserts, 40 + 2);
	assert_int_equal(repl_stats(net.n[1].r)->rx_deletes, 2);
}

/* A second overrun while the background dump is read asks for one more. */
static void test_overrun_during_dump(void **state)
{
	start(0, true, true);
	start(1, false, true);
	run(300);
	struct node *a = &net.n[0];
	for (uint32_t i = 0; i < 20; i++) {
		struct ct c = flow(1400 + i);
		kernel_new(0, &c);
	}
	run(200);
	a->slow_dump = true;
	repl_kernel_overrun(a->r);
	dump_step(a, 5);
	/* a flow born silently in a part the dump has read already */
	struct ct born = flow(1450);
	a->k.ct[a->k.n] = born;
	a->k.used[a->k.n++] = true;
	repl_kernel_overrun(a->r);
	while (!dump_step(a, 5))
		run(10);
	assert_true(a->snapping);       /* the second dump began */
	while (!dump_step(a, 5))
		run(10);
	run(300);
	assert_int_equal(repl_stats(a->r)->overruns, 2);
	assert_true(kfind(&net.n[1].k, &born) >= 0);
	assert_int_equal(net.n[1].k.n, 21);
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
		cmocka_unit_test_setup_teardown(test_commit_pauses_new_events, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_bulk_and_sweep, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loss_is_repaired, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lost_tail_is_repaired, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ring_overrun_escalates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nat_clash_is_counted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dead_peer_and_adoption, setup, teardown),
		cmocka_unit_test_setup_teardown(test_filter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_frames, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_primaries_settle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dead_owner_claim_yields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_bulks_to_it_alone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_bulk_skip_lost, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_bulk_group, setup, teardown),
		cmocka_unit_test_setup_teardown(test_membership_liveness, setup, teardown),
		cmocka_unit_test_setup_teardown(test_membership_and_source, setup, teardown),
		cmocka_unit_test_setup_teardown(test_active_active, setup, teardown),
		cmocka_unit_test_setup_teardown(test_frame_validated_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replay_and_epochs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_links, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_refresh, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refresh_skipped_for_long_timeouts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overrun_background_dump, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overrun_during_dump, setup, teardown),
		cmocka_unit_test_setup_teardown(test_defer, setup, teardown),
	};
	return cmocka_run_group_tests_name("repl", tests, NULL, NULL);
}
