/* sim.c — the simulated cluster (sim.h). */
#include "sim.h"
#include "sync/codec.h"
#include "sync/wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <netinet/in.h>
#include <string.h>

struct sim sim;

/* xorshift64*: the same seed gives the same run, on every machine */
uint32_t sim_rnd(void)
{
	sim.rng ^= sim.rng >> 12;
	sim.rng ^= sim.rng << 25;
	sim.rng ^= sim.rng >> 27;
	return (uint32_t)((sim.rng * 2685821657736338717ULL) >> 32);
}

int sim_kfind(struct simkernel *k, const struct ct *ct)
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
	int i = sim_kfind(k, ct);

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

/* the background dump, read at once, or (slow_dump) by sim_dump_step() */
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
bool sim_dump_step(struct node *nd, unsigned n)
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

static void sim_enqueue(int from, int to, const void *buf, size_t len)
{
	if (sim.drop_next) {
		sim.drop_next--;
		sim.dropped++;
		return;
	}
	if (sim.down || sim.cut[from][to] || (sim.loss && sim_rnd() % 100 < sim.loss)) {
		sim.dropped++;
		return;
	}
	int copies = sim.dup && sim_rnd() % 100 < sim.dup ? 2 : 1;
	sim.duplicated += (unsigned)copies - 1;
	for (int c = 0; c < copies; c++) {
		if (sim.qn == sim.qmax || len > sizeof(sim.q[0].data)) {
			sim.overflowed++;       /* a full link drops, like a real one */
			continue;
		}
		struct pkt *k = &sim.q[sim.qn++];
		k->from = from;
		k->to = to;
		k->at = sim.now + (sim.delay_max ? sim_rnd() % (sim.delay_max + 1) : 0);
		k->order = sim.sent++;
		k->len = len;
		memcpy(k->data, buf, len);
	}
}

/* A heartbeat frame of idx's with its digest bent (sim.bend_digest). */
static size_t bend(int idx, const void *buf, size_t len, uint8_t *out, size_t cap)
{
	struct frame_hdr h;
	struct cursor c;
	struct rec r;
	struct hb_info hb;
	struct wbuf w;

	if (codec_frame_open(buf, len, &h, &c) < 0 || codec_next(&c, &r) <= 0 ||
	    r.type != REC_HEARTBEAT || codec_get_heartbeat(&r, &hb) < 0)
		return 0;
	hb.digest ^= sim.bend_digest[idx];
	codec_frame_start(&w, out, cap);
	SIM_CHECK(codec_put_heartbeat(&w, &hb) == 0);
	return codec_frame_finish(&w, &h);
}

static int op_send(void *arg, uint32_t node, const void *buf, size_t len)
{
	struct node *nd = arg;
	uint8_t copy[1500];

	if ((sim.major[nd->idx] || sim.bend_digest[nd->idx]) && len <= sizeof(copy)) {
		memcpy(copy, buf, len);
		size_t n = sim.bend_digest[nd->idx] ? bend(nd->idx, buf, len, copy, sizeof(copy)) : 0;
		if (n)
			len = n;
		if (sim.major[nd->idx])
			copy[4] = sim.major[nd->idx];
		buf = copy;
	}
	size_t max = sim.frame_size ? sim.frame_size : 1472;
	if (len >= WIRE_HDR_LEN)
		sim.last_pn[nd->idx] = (uint64_t)wire_get_u32((const uint8_t *)buf + WIRE_OFF_PN) << 32 |
				       wire_get_u32((const uint8_t *)buf + WIRE_OFF_PN + 4);
	if (len > max)
		sim.oversize++;         /* larger than the link's frames: a real one drops it */
	for (int to = 0; to < NODES; to++)
		if (to != nd->idx && sim.n[to].r &&
		    (node == REPL_ALL || sim.group || sim.n[to].id == node))
			sim_enqueue(nd->idx, to, buf, len);
	return 0;
}

static uint64_t op_now(void *arg)
{
	return sim.now;
}

static void check_overlaps(void)
{
	for (unsigned b = 0; b < 64; b++) {
		int n = 0;
		for (int i = 0; i < NODES; i++)
			n += sim_forwards(i, b);
		if (n > 1) {
			sim.overlaps++;
			if (!sim.overlap_first)
				sim.overlap_first = sim.now;
		}
	}
}

/* active-active: the set of buckets the kernel forwards */
static int op_buckets(void *arg, const uint32_t *held, unsigned n)
{
	struct node *nd = arg;
	memset(nd->held, 0, sizeof(nd->held));
	for (unsigned i = 0; i < n; i++) {
		SIM_CHECK(held[i] < 64);
		nd->held[held[i]] = true;
	}
	nd->buckets_calls++;
	nd->held_at = sim.now;
	/* a set only grows here: a bucket taken before its holder let go is
	 * seen now, even if a conflict undoes it before the step ends */
	check_overlaps();
	return 0;
}

bool sim_forwards(int idx, unsigned b)
{
	const struct node *nd = &sim.n[idx];
	return nd->held[b] && (!sim.lease_ms || sim.now < nd->held_at + sim.lease_ms);
}

static void op_release(void *arg, uint64_t cookie)
{
	SIM_CHECK(sim.rel.n < 64);
	struct simkernel *k = &sim.n[sim.rel.other].k;
	int i = sim_kfind(k, &sim.rel.watch);
	sim.rel.peer_state[sim.rel.n] = i < 0 ? -1 : k->ct[i].tcp.state;
	sim.rel.cookie[sim.rel.n++] = cookie;
}

static int op_inject_exp(void *arg, enum ctnl_op op, const struct exp *e)
{
	struct node *nd = arg;
	nd->k.exp_ops++;
	return 0;
}

static int op_exp_dump(void *arg)
{
	return 0;
}

static int op_get(void *arg, const struct ct *key, struct ct *out)
{
	struct node *nd = arg;
	int i = sim_kfind(&nd->k, key);

	if (i < 0)
		return -ENOENT;
	*out = nd->k.ct[i];
	return 0;
}

static const struct repl_ops ops_tpl = {
	.inject = op_inject, .inject_flush = op_inject_flush, .dump = op_dump,
	.dump_start = op_dump_start, .events_new = op_events_new,
	.inject_thread = op_inject_thread, .send = op_send, .now_ms = op_now,
	.buckets = op_buckets, .release = op_release, .inject_exp = op_inject_exp,
	.exp_dump = op_exp_dump, .get = op_get,
};


void sim_set_addr(struct sockaddr_storage *ss, uint32_t id)
{
	struct sockaddr_in *a = (struct sockaddr_in *)ss;
	memset(ss, 0, sizeof(*ss));
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(0xc6120000u | id);   /* 198.18.0.id */
	a->sin_port = htons(3780);
}

void sim_start(int idx, bool primary, bool immediate)
{
	struct node *nd = &sim.n[idx];
	struct repl_config cfg = { 0 };

	nd->idx = idx;
	nd->id = (uint32_t)idx + 1;
	sim_set_addr(&nd->addr, nd->id);
	cfg.node_id = nd->id;
	cfg.primary = primary;
	cfg.inject_immediate = immediate;
	cfg.frame_size = sim.frame_size ? sim.frame_size : 1472;
	cfg.heartbeat_ms = 100;
	cfg.dead_after = sim.dead_after ? sim.dead_after : 3;
	cfg.resend_bytes = sim.ring_bytes ? sim.ring_bytes : 4u << 20;
	cfg.nack_ms = 20;
	cfg.gap_timeout_ms = 2000;
	cfg.refresh_ms = 1000;
	cfg.commit_quiet_min = sim.quiet_min;
	cfg.membership = sim.membership;
	cfg.active_active = sim.active_active;
	cfg.nbuckets = 64;
	cfg.bucket_seed = AA_SEED;
	cfg.routed = sim.routed;
	cfg.defer_ms = sim.defer_ms;
	cfg.lease_ms = sim.active_active ? sim.lease_ms : 0;
	cfg.quorum_majority = sim.quorum_majority;
	cfg.exp_sync = sim.exp_sync;
	for (int i = 0; i < 256; i++)
		cfg.proto[i] = true;
	cfg.tcp_states = sim.filt.tcp_states;
	cfg.min_age_ms = sim.filt.min_age_ms;
	cfg.zones_exclude = sim.filt.zones_exclude;
	cfg.nzones = sim.filt.nzones;
	memcpy(cfg.zones, sim.filt.zones, sizeof(cfg.zones));
	cfg.strip = sim.filt.strip;
	cfg.nignore = 1;
	cfg.ignore[0].family = AF_INET;
	cfg.ignore[0].addr.ip4 = htonl(0x7f000000);
	cfg.ignore[0].plen = 8;
	for (int i = 0; i < NODES; i++) {
		if (i == idx)
			continue;
		cfg.peer_id[cfg.npeers] = (uint32_t)i + 1;
		sim_set_addr(&cfg.peer_addr[cfg.npeers], (uint32_t)i + 1);
		cfg.npeers++;
	}
	struct repl_ops ops = ops_tpl;
	ops.arg = nd;
	memset(nd->held, 0, sizeof(nd->held));  /* nftb_open: a new, empty set */
	nd->frozen = false;
	nd->r = repl_new(&cfg, &ops);
	SIM_CHECK(nd->r);
	SIM_CHECK(repl_load_kernel(nd->r) == 0);
	if (sim.membership)
		repl_quorum(nd->r, true);       /* corosync says quorate */
}

void sim_drop_in_flight(int a, int b)
{
	for (unsigned i = 0; i < sim.qn;)
		if (sim.q[i].from == a && sim.q[i].to == b)
			sim.q[i] = sim.q[--sim.qn];
		else
			i++;
}

void sim_stop(int idx)
{
	repl_free(sim.n[idx].r);
	sim.n[idx].r = NULL;
}

/* Deliver what is due, in delivery-time order (frames due at the same time
 * in the order they were sent, as a link without reordering would); flush
 * what that caused. */
void sim_deliver(void)
{
	for (int round = 0; round < 100; round++) {
		for (int i = 0; i < NODES; i++)
			if (sim.n[i].r && !sim.n[i].frozen)
				repl_flush(sim.n[i].r);
		unsigned best = sim.qn;
		for (unsigned i = 0; i < sim.qn; i++)
			if (sim.q[i].at <= sim.now && !sim.n[sim.q[i].to].frozen &&
			    (best == sim.qn || sim.q[i].at < sim.q[best].at ||
			     (sim.q[i].at == sim.q[best].at && sim.q[i].order < sim.q[best].order)))
				best = i;
		if (best == sim.qn)
			return;
		struct pkt k = sim.q[best];
		sim.q[best] = sim.q[--sim.qn];
		if (sim.n[k.to].r)
			repl_receive(sim.n[k.to].r, k.data, k.len, sim.n[k.from].id);
		round = 0;
	}
}

/* Let time pass in 10 ms steps: polls, heartbeats every 100 ms, deliveries. */
void sim_run(unsigned ms)
{
	for (unsigned t = 0; t < ms; t += 10) {
		sim.now += 10;
		for (int i = 0; i < NODES; i++) {
			if (!sim.n[i].r || sim.n[i].frozen)
				continue;
			if (sim.now % 100 == 0)
				repl_tick(sim.n[i].r);
			else
				repl_poll(sim.n[i].r);
		}
		sim_deliver();
		if (sim.active_active)
			check_overlaps();
	}
}

struct ct sim_flow(uint32_t i)
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
void sim_kernel_new(int idx, const struct ct *c)
{
	struct node *nd = &sim.n[idx];
	int slot = sim_kfind(&nd->k, c);
	if (slot < 0) {
		for (slot = 0; nd->k.used[slot]; slot++)
			;
		nd->k.used[slot] = true;
		nd->k.n++;
	}
	nd->k.ct[slot] = *c;
	repl_kernel_event(nd->r, CTNL_EV_NEW, c, false);
}

int sim_setup(unsigned qmax)
{
	struct pkt *q = calloc(qmax ? qmax : QMAX, sizeof(*sim.q));
	memset(&sim, 0, sizeof(sim));
	sim.q = q;
	sim.qmax = qmax ? qmax : QMAX;
	sim.nnodes = 2;
	sim.now = 1000000;
	sim.rng = 88172645463325252ULL;
	return sim.q ? 0 : -1;
}

void sim_teardown(void)
{
	for (int i = 0; i < NODES_MAX; i++)
		if (sim.n[i].r)
			sim_stop(i);
	free(sim.q);
	sim.q = NULL;
}

int sim_fixture_setup(void **state)
{
	return sim_setup(0);
}

int sim_fixture_teardown(void **state)
{
	unsigned overflowed = sim.overflowed, oversize = sim.oversize;

	sim_teardown();
	if (overflowed || oversize) {
		fprintf(stderr, "sim: %u frames dropped for want of room, %u larger than the frame "
			"size\n", overflowed, oversize);
		return -1;
	}
	return 0;
}

struct repl_peer_status sim_peer_of(int idx, uint32_t id)
{
	struct repl_status st;
	repl_status(sim.n[idx].r, &st);
	for (unsigned i = 0; i < st.npeers; i++)
		if (st.peer[i].id == id)
			return st.peer[i];
	abort();                /* no such peer */
	return st.peer[0];
}

bool sim_in_sync(int idx)
{
	struct repl_status st;
	repl_status(sim.n[idx].r, &st);
	return st.in_sync;
}

