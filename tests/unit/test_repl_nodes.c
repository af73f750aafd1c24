/* Replication engine among several nodes and roles, on the simulated
 * cluster (tests/sim.h): two primaries and their claims, restarts among
 * three, membership, active-active and defer; and what a peer may not do —
 * hostile frames, frames validated whole, replays, past and unconfirmed
 * epochs, a source that is not the node named.  Deterministic: seeded
 * link, simulated time. */
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
#include <time.h>

#include "util/log.h"
#include "sync/bucket.h"
#include "sync/repl.h"
#include "sync/codec.h"
#include "sync/wire.h"

#include "sim.h"

/* Random and mutated frames: never a crash, every one counted as dropped
 * or applied, and the link keeps working afterwards. */
static void test_hostile_frames(void **state)
{
	sim_start(0, true, true);
	sim_start(1, false, true);
	sim_run(300);
	struct ct c = sim_flow(900);
	sim_kernel_new(0, &c);
	repl_flush(sim.n[0].r);
	assert_true(sim.qn > 0);
	uint8_t valid[1500];
	size_t vlen = sim.q[0].len;
	memcpy(valid, sim.q[0].data, vlen);
	sim_deliver();
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
		repl_receive(sim.n[1].r, buf, len, i % 3 ? sim.n[0].id : (uint32_t)(i % 2 ? 0 : 99));
		repl_flush(sim.n[1].r);
	}
	const struct repl_stats *s = repl_stats(sim.n[1].r);
	assert_true(s->rx_malformed > 0);
	/* a record of a type we do not know, marked mandatory, at the end of
	 * an otherwise good frame: the whole frame is refused */
	struct ct m = sim_flow(902);
	sim_kernel_new(0, &m);
	repl_flush(sim.n[0].r);
	assert_int_equal(sim.qn, 1);
	uint8_t ext[1500];
	size_t elen = sim.q[0].len;
	memcpy(ext, sim.q[0].data, elen);
	sim.qn = 0;
	ext[elen] = 200;
	ext[elen + 1] = REC_F_MANDATORY;
	ext[elen + 2] = 0;
	ext[elen + 3] = 4;
	elen += 4;
	ext[WIRE_OFF_LEN] = (uint8_t)((elen - WIRE_HDR_LEN) >> 8);
	ext[WIRE_OFF_LEN + 1] = (uint8_t)(elen - WIRE_HDR_LEN);
	uint64_t malformed = s->rx_malformed;
	repl_receive(sim.n[1].r, ext, elen, sim.n[0].id);
	assert_int_equal(s->rx_malformed, malformed + 1);
	assert_true(sim_kfind(&sim.n[1].k, &m) < 0);
	/* honest traffic still flows */
	struct ct d = sim_flow(901);
	sim_kernel_new(0, &d);
	repl_resync(sim.n[1].r);
	sim_run(500);
	assert_true(sim_kfind(&sim.n[1].k, &d) >= 0);
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
	repl_foreach(sim.n[idx].r, owner_visit, &o);
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

	sim_start(0, true, true);
	sim_start(1, false, true);
	sim_run(300);
	for (uint32_t i = 0; i < N; i++) {
		c[i] = sim_flow(960 + i);
		sim_kernel_new(0, &c[i]);
	}
	sim_run(200);
	assert_int_equal(sim_peer_of(1, 1).flows_held, N);
	assert_int_equal(repl_promote(sim.n[1].r), N);          /* node 1 not demoted */
	uint64_t adopted[2] = { 0, 0 };
	for (int round = 0; round < 20; round++) {
		if (round == 10)
			for (int k = 0; k < 2; k++)
				adopted[k] = repl_stats(sim.n[k].r)->adopted;
		for (uint32_t i = 0; i < N; i++) {
			c[i].timeout = 1000 + (uint32_t)round;
			repl_kernel_event(sim.n[0].r, CTNL_EV_UPDATE, &c[i], false);
			repl_kernel_event(sim.n[1].r, CTNL_EV_UPDATE, &c[i], false);
		}
		sim_run(50);
	}
	sim_run(500);
	for (int k = 0; k < 2; k++)                     /* settled: nobody adopts any more */
		assert_int_equal(repl_stats(sim.n[k].r)->adopted, adopted[k]);
	for (uint32_t i = 0; i < N; i++) {
		assert_int_equal(owner_of(0, &c[i]), 2);
		assert_int_equal(owner_of(1, &c[i]), 2);
	}
	struct repl_status st;
	repl_status(sim.n[0].r, &st);
	assert_true(st.primary && st.superseded_by == 2);
	assert_true(repl_stats(sim.n[0].r)->ownership_conflicts >= N);
	assert_true(sim_in_sync(0) && sim_in_sync(1));
	/* node 1 is promoted again: it is the newest now, and takes them all */
	assert_int_equal(repl_promote(sim.n[0].r), N);
	sim_run(300);
	for (uint32_t i = 0; i < N; i++) {
		repl_kernel_event(sim.n[1].r, CTNL_EV_UPDATE, &c[i], false);
		assert_int_equal(owner_of(0, &c[i]), 1);
		assert_int_equal(owner_of(1, &c[i]), 1);
	}
	repl_status(sim.n[1].r, &st);
	assert_true(st.primary && st.superseded_by == 1);
}

/* Three nodes; 1 and 2 cannot hear each other while both promote, 3 hears
 * both: it refuses 2's claim (1's of the same term wins, lower id).  Once
 * 1 is dead, 2 still speaking for the flow is taken: a dead owner's claim
 * does not silence a live node (else 3 would never again follow the flow
 * that 2 forwards, and ask 2 for a resync every few heartbeats). */
static void test_dead_owner_claim_yields(void **state)
{
	sim.nnodes = 3;
	sim_start(0, true, true);
	sim_start(1, false, true);
	sim_start(2, false, true);
	sim_run(300);
	struct ct c = sim_flow(980);
	sim_kernel_new(0, &c);
	sim_run(200);
	assert_int_equal(owner_of(2, &c), 1);
	sim.cut[0][1] = sim.cut[1][0] = true;
	repl_promote(sim.n[0].r);
	sim_run(100);
	repl_promote(sim.n[1].r);
	sim_run(300);
	assert_int_equal(owner_of(0, &c), 1);
	assert_int_equal(owner_of(1, &c), 2);
	assert_int_equal(owner_of(2, &c), 1);                    /* (2, node 1) beats (2, node 2) */
	uint64_t refused = repl_stats(sim.n[2].r)->claims_refused;
	assert_true(refused >= 1);
	sim_stop(0);
	sim_run(500);
	assert_false(sim_peer_of(2, 1).alive);
	c.timeout = 4242;
	repl_kernel_event(sim.n[1].r, CTNL_EV_UPDATE, &c, false);
	sim_run(300);
	assert_int_equal(owner_of(2, &c), 2);
	assert_int_equal(sim.n[2].k.ct[sim_kfind(&sim.n[2].k, &c)].timeout, 4242);
	assert_true(sim_in_sync(2));
}

/* Three nodes; node 3 restarts.  The bulks that bring it up to date go to
 * it alone: node 2 receives no bulk and injects nothing, and counts the
 * bulk's sequence numbers as received (a SKIP), also when that SKIP is
 * lost and it NACKs them. */
static void restart_third(bool lose_skip, bool group)
{
	sim.nnodes = 3;
	sim.group = group;
	sim_start(0, true, true);
	sim_start(1, false, true);
	sim_start(2, false, true);
	sim_run(300);
	for (uint32_t i = 0; i < 200; i++) {
		struct ct c = sim_flow(1000 + i);
		sim_kernel_new(0, &c);
	}
	sim_run(1500);
	assert_int_equal(sim.n[2].k.n, 200);
	assert_true(sim_in_sync(1) && sim_in_sync(2));
	sim_stop(2);
	sim_run(100);
	uint64_t bulks = sim_peer_of(1, 1).c.bulks_received;
	uint64_t upserts = repl_stats(sim.n[1].r)->rx_upserts;
	unsigned updates = sim.n[1].k.updates, creates = sim.n[1].k.creates;
	sim_start(2, false, true);
	if (lose_skip)
		sim.cut[0][1] = true;
	sim_run(100);
	sim.cut[0][1] = false;
	sim_run(1000);
	assert_int_equal(sim_peer_of(2, 1).flows_held, 200);
	assert_true(sim_in_sync(2));
	assert_true(sim_in_sync(1));
	assert_int_equal(sim_peer_of(1, 1).c.bulks_received, bulks);        /* none of node 1's */
	assert_int_equal(repl_stats(sim.n[1].r)->rx_upserts, upserts);
	assert_int_equal(sim.n[1].k.updates, updates);
	assert_int_equal(sim.n[1].k.creates, creates);
	assert_int_equal(sim_peer_of(1, 1).lost_frames, 0);
	assert_true(repl_stats(sim.n[1].r)->rx_skipped_ranges >= 1);
	if (lose_skip)
		assert_true(sim_peer_of(1, 1).c.nacks_sent >= 1);
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

/* A transport that knows the sim.membership (CPG) says node 1 left: it is dead
 * at once, without waiting for its heartbeats to stop, and its flow is
 * adopted by traffic here.  A frame the transport attributes to another
 * node than the one it names is refused. */
/* Over a transport that reports the sim.membership (CPG), silence is no death:
 * corosync holds every message back while it forms a new sim.membership, and
 * that must not make every peer dead; leaving the sim.membership does. */
static void test_membership_liveness(void **state)
{
	sim.membership = true;
	sim_start(0, true, true);
	sim_start(1, false, true);
	sim_run(300);
	assert_true(sim_peer_of(1, 1).alive);
	sim.down = true;
	sim_run(2000);                      /* 20 heartbeats missed */
	bool alive = sim_peer_of(1, 1).alive;
	repl_member(sim.n[1].r, 1, false);
	bool after_leave = sim_peer_of(1, 1).alive;
	sim.membership = false;
	assert_true(alive);
	assert_false(after_leave);
	sim.down = false;
	sim_run(300);
	assert_true(sim_peer_of(1, 1).alive);       /* heard again */
}

/* ---- active-active ------------------------------------------------------------ */

/* A flow from client 198.51.100.(10 + c): its bucket is its addresses'. */
static struct ct aa_flow(uint32_t c, uint32_t i)
{
	struct ct f = sim_flow(i);
	f.orig.src.ip4 = htonl(0xc6336400u | (10 + c));
	f.reply.dst.ip4 = htonl(0xcb007101u);
	return f;
}

static uint32_t bucket_owner(int idx, const struct ct *c)
{
	struct repl_status st;
	repl_status(sim.n[idx].r, &st);
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

	sim.active_active = true;
	sim.nnodes = 3;
	for (int i = 0; i < 3; i++)
		sim_start(i, true, true);
	sim_run(1000);
	sim.active_active = false;
	struct repl_status st;
	repl_status(sim.n[0].r, &st);
	for (int b = 0; b < 64; b++) {
		int holders = 0;
		for (int i = 0; i < 3; i++) {
			holders += sim.n[i].held[b];
			assert_int_equal(sim.n[i].held[b], st.bucket_owner[b] == (uint32_t)i + 1);
		}
		assert_int_equal(holders, 1);
	}
	unsigned of1 = 0;
	for (uint32_t k = 0; k < NC; k++) {
		c[k] = aa_flow(k, k);
		uint32_t o = bucket_owner(0, &c[k]);
		assert_true(o >= 1 && o <= 3);
		assert_true(sim.n[o - 1].held[bucket_of(&c[k], 64, AA_SEED)]);
		sim_kernel_new((int)o - 1, &c[k]);
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
	sim_kernel_new(0, &stray);
	sim_run(500);
	for (int i = 0; i < 3; i++)
		assert_int_equal(sim.n[i].k.n, NC + 1);
	assert_int_equal(owner_of(1, &stray), 1);
	unsigned updates[2] = { sim.n[1].k.updates, sim.n[2].k.updates };
	sim_stop(0);
	sim_run(600);
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
		assert_true(sim.n[o - 1].held[bucket_of(&c[k], 64, AA_SEED)]);
	}
	taken = (unsigned)(repl_stats(sim.n[1].r)->bucket_takeovers +
			   repl_stats(sim.n[2].r)->bucket_takeovers);
	assert_int_equal(taken, of1 + 1);
	/* each survivor told the other of every flow it took: an owner, not
	 * a state, changed, and neither kernel was written for it (a takeover
	 * of 100,000 flows would keep both busy for half a second) */
	assert_int_equal(repl_stats(sim.n[1].r)->rx_upserts_same +
			 repl_stats(sim.n[2].r)->rx_upserts_same, taken);
	assert_int_equal(sim.n[1].k.updates, updates[0]);
	assert_int_equal(sim.n[2].k.updates, updates[1]);
	/* a packet on node 2 of a flow in node 3's bucket: not adopted */
	for (uint32_t k = 0; k < NC; k++) {
		if (bucket_owner(1, &c[k]) != 3)
			continue;
		uint64_t foreign = repl_stats(sim.n[1].r)->ev_foreign;
		repl_kernel_event(sim.n[1].r, CTNL_EV_UPDATE, &c[k], false);
		assert_int_equal(repl_stats(sim.n[1].r)->ev_foreign, foreign + 1);
		assert_int_equal(owner_of(1, &c[k]), 3);
		break;
	}
	/* node 1 comes back: its own buckets, and their flows, return */
	sim.active_active = true;
	sim_start(0, true, true);
	sim.active_active = false;
	sim_run(1500);
	assert_int_equal(owner_of(0, &stray), 2);
	for (uint32_t k = 0; k < NC; k++) {
		uint32_t o = bucket_owner(0, &c[k]);
		for (int i = 0; i < 3; i++) {
			assert_int_equal(bucket_owner(i, &c[k]), o);
			assert_int_equal(owner_of(i, &c[k]), o);
		}
		unsigned b = bucket_of(&c[k], 64, AA_SEED);
		assert_true(sim.n[o - 1].held[b]);
		assert_int_equal(sim.n[0].held[b] + sim.n[1].held[b] + sim.n[2].held[b], 1);
	}
	assert_int_equal(repl_stats(sim.n[0].r)->bucket_takeovers, of1);
	for (int i = 0; i < 3; i++)
		assert_true(sim_in_sync(i));
}

/* A new TCP flow's first packet, as conntrack makes it (no NAT). */
static struct ct syn_flow(uint32_t i)
{
	struct ct c = sim_flow(i);
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
 * while node 1 lives (sim.routed: the first node owns); when node 1 dies, its
 * flows go to their buckets' holder. */
static void test_defer(void **state)
{
	sim.active_active = sim.routed = true;
	sim.defer_ms = 20;
	sim_start(0, true, true);
	sim_start(1, true, true);
	sim.active_active = sim.routed = false;
	sim.defer_ms = 0;
	sim_run(1000);
	assert_true(sim_in_sync(0) && sim_in_sync(1));
	memset(&sim.rel, 0, sizeof(sim.rel));

	/* the SYN on node 1 */
	struct ct c = syn_flow(1);
	sim.rel.watch = c;
	sim.rel.other = 1;
	repl_defer_new(sim.n[0].r, &c, 101);
	assert_int_equal(sim.rel.n, 0);                     /* held */
	assert_int_equal(repl_defer_count(sim.n[0].r), 1);
	sim_deliver();
	assert_int_equal(sim.rel.n, 1);
	assert_int_equal(sim.rel.cookie[0], 101);
	assert_int_equal(sim.rel.peer_state[0], 1);         /* node 2's kernel had it */
	assert_int_equal(owner_of(0, &c), 1);
	assert_int_equal(owner_of(1, &c), 1);
	assert_int_equal(repl_stats(sim.n[0].r)->defer_acked, 1);
	sim_kernel_new(0, &c);                              /* its NEW event, once let go */

	/* the SYN-ACK on node 2: its kernel is at SYN_RECV, node 1's not yet */
	struct ct sa = c;
	sa.tcp.state = 2;                               /* SYN_RECV */
	sa.status = IPS_SEEN_REPLY | IPS_CONFIRMED;
	sim.rel.other = 0;
	repl_defer_reply(sim.n[1].r, &sa, 102);
	assert_int_equal(sim.rel.n, 1);
	sim_deliver();
	assert_int_equal(sim.rel.n, 2);
	assert_int_equal(sim.rel.cookie[1], 102);
	assert_int_equal(sim.rel.peer_state[1], 2);         /* node 1's kernel: SYN_RECV */
	assert_int_equal(repl_stats(sim.n[0].r)->hints_applied, 1);
	assert_int_equal(repl_stats(sim.n[1].r)->hints_sent, 1);
	assert_int_equal(owner_of(0, &c), 1);           /* a hint moves no owner */
	sim_run(100);
	assert_int_equal(sim.n[1].k.ct[sim_kfind(&sim.n[1].k, &c)].tcp.state, 2);
	/* a hint that moves nothing back: ignored */
	repl_defer_reply(sim.n[1].r, &sa, 103);
	sim_deliver();
	assert_int_equal(sim.rel.cookie[2], 103);
	assert_int_equal(repl_stats(sim.n[0].r)->hints_ignored, 1);

	/* node 2's traffic on node 1's flow: not taken while node 1 lives */
	uint64_t foreign = repl_stats(sim.n[1].r)->ev_foreign;
	repl_kernel_event(sim.n[1].r, CTNL_EV_UPDATE, &sa, false);
	assert_int_equal(repl_stats(sim.n[1].r)->ev_foreign, foreign + 1);
	assert_int_equal(owner_of(1, &c), 1);

	/* first packets read together share a frame, and one ACK lets them go */
	uint64_t acks = repl_stats(sim.n[0].r)->acks_received;
	struct ct b1 = syn_flow(10), b2 = syn_flow(11);
	sim.rel.watch = b2;
	sim.rel.other = 1;
	repl_defer_new(sim.n[0].r, &b1, 201);
	repl_defer_new(sim.n[0].r, &b2, 202);
	assert_int_equal(repl_defer_count(sim.n[0].r), 2);
	unsigned before = sim.rel.n;
	sim_deliver();
	assert_int_equal(sim.rel.n, before + 2);
	assert_int_equal(sim.rel.peer_state[sim.rel.n - 1], 1);
	assert_int_equal(repl_stats(sim.n[0].r)->acks_received, acks + 1);
	sim.rel.n = before;                                 /* (the indices below) */

	/* no answer: let go at the time-out, not before */
	sim.cut[0][1] = true;
	struct ct c2 = syn_flow(2);
	sim.rel.watch = c2;
	sim.rel.other = 1;
	repl_defer_new(sim.n[0].r, &c2, 104);
	sim_run(10);
	assert_int_equal(sim.rel.n, 3);
	sim.now += 10;
	assert_int_equal(repl_defer_poll(sim.n[0].r), 0);
	assert_int_equal(sim.rel.n, 4);
	assert_int_equal(sim.rel.cookie[3], 104);
	assert_int_equal(sim.rel.peer_state[3], -1);
	assert_int_equal(repl_stats(sim.n[0].r)->defer_timeouts, 1);
	sim.cut[0][1] = false;
	sim_run(300);                                       /* repaired: node 2 has it */
	assert_true(sim_kfind(&sim.n[1].k, &c2) >= 0);

	/* node 1 dies: its flows go to node 2, the holder of every bucket now */
	sim_stop(0);
	sim_run(600);
	assert_int_equal(owner_of(1, &c), 2);
	assert_int_equal(owner_of(1, &c2), 2);
	/* no live peer: a first packet goes at once */
	struct ct c3 = syn_flow(3);
	sim.rel.watch = c3;
	repl_defer_new(sim.n[1].r, &c3, 105);
	assert_int_equal(sim.rel.n, 5);
	assert_int_equal(sim.rel.cookie[4], 105);
	assert_int_equal(repl_stats(sim.n[1].r)->defer_passed, 1);
}

static void test_membership_and_source(void **state)
{
	sim_start(0, true, true);
	sim_start(1, false, true);
	sim_run(300);
	struct ct c = sim_flow(990);
	sim_kernel_new(0, &c);
	sim_run(200);
	assert_true(sim_peer_of(1, 1).alive);
	/* node 1's next frame, but handed over as if node 3 had sent it */
	struct ct d = sim_flow(991);
	sim_kernel_new(0, &d);
	repl_flush(sim.n[0].r);
	assert_int_equal(sim.qn, 1);
	uint64_t bad = repl_stats(sim.n[1].r)->rx_bad_source;
	repl_receive(sim.n[1].r, sim.q[0].data, sim.q[0].len, 3);
	repl_receive(sim.n[1].r, sim.q[0].data, sim.q[0].len, 0);
	assert_int_equal(repl_stats(sim.n[1].r)->rx_bad_source, bad + 2);
	assert_true(sim_kfind(&sim.n[1].k, &d) < 0);
	sim_deliver();
	assert_true(sim_kfind(&sim.n[1].k, &d) >= 0);
	/* node 1 leaves the sim.membership: dead now, 20 ms later */
	repl_member(sim.n[1].r, 1, false);
	assert_false(sim_peer_of(1, 1).alive);
	repl_kernel_event(sim.n[1].r, CTNL_EV_UPDATE, &c, false);
	assert_int_equal(owner_of(1, &c), 2);
	assert_int_equal(repl_stats(sim.n[1].r)->adopted, 1);
	/* it is heard again: alive */
	sim_run(200);
	assert_true(sim_peer_of(1, 1).alive);
}

/* A frame is taken whole or not at all: a bad attribute in its second
 * record keeps its first from being applied, and does not move the
 * sender's sequence (the honest frame of that number is taken after it). */
static void test_frame_validated_whole(void **state)
{
	sim_start(0, true, true);
	sim_start(1, false, true);
	sim_run(300);
	/* zone 1: not packable, so each flow is an attribute record */
	struct ct a = sim_flow(950), b = sim_flow(951);
	a.zone = b.zone = 1;
	a.has |= CT_HAS_ZONE;
	b.has |= CT_HAS_ZONE;
	sim_kernel_new(0, &a);
	sim_kernel_new(0, &b);
	repl_flush(sim.n[0].r);
	assert_int_equal(sim.qn, 1);
	uint8_t bad[1500];
	size_t len = sim.q[0].len;
	memcpy(bad, sim.q[0].data, len);
	size_t rec2 = WIRE_HDR_LEN + ((size_t)bad[WIRE_HDR_LEN + 2] << 8 | bad[WIRE_HDR_LEN + 3]);
	assert_true(rec2 + 6 < len);
	assert_int_equal(bad[rec2], REC_FLOW_UPSERT);
	assert_int_equal(bad[rec2 + 4] & 0x7f, 1);              /* FA_PROTO ... */
	assert_int_equal(bad[rec2 + 5], 2);
	bad[rec2 + 6] = 5;                                      /* ... of family 5 */
	uint64_t malformed = repl_stats(sim.n[1].r)->rx_malformed;
	uint64_t upserts = repl_stats(sim.n[1].r)->rx_upserts;
	repl_receive(sim.n[1].r, bad, len, sim.n[0].id);
	repl_flush(sim.n[1].r);
	assert_int_equal(repl_stats(sim.n[1].r)->rx_malformed, malformed + 1);
	assert_int_equal(repl_stats(sim.n[1].r)->rx_upserts, upserts);
	assert_true(sim_kfind(&sim.n[1].k, &a) < 0);
	assert_int_equal(sim_peer_of(1, 1).flows_held, 0);
	/* the honest frame of the same sequence number is still taken */
	sim_deliver();
	assert_true(sim_kfind(&sim.n[1].k, &a) >= 0 && sim_kfind(&sim.n[1].k, &b) >= 0);
	assert_int_equal(sim_peer_of(1, 1).flows_held, 2);
	assert_int_equal(sim_peer_of(1, 1).c.gaps, 0);
}

/* Replay protection and epochs: a frame taken twice, a frame of a past life
 * of its sender, a frame of an epoch that never answers our challenge —
 * each dropped and counted apart, none disturbing the honest peer. */
static void test_replay_and_epochs(void **state)
{
	sim_start(0, true, true);
	sim_start(1, false, true);
	sim_run(300);
	struct repl_peer_status pa = sim_peer_of(1, 1);
	uint32_t epoch1 = pa.epoch;
	assert_true(pa.known);
	struct ct c = sim_flow(950);
	sim_kernel_new(0, &c);
	repl_flush(sim.n[0].r);
	assert_true(sim.qn > 0);
	uint8_t old[1500];
	size_t olen = sim.q[0].len;
	memcpy(old, sim.q[0].data, olen);
	sim_deliver();
	assert_true(sim_kfind(&sim.n[1].k, &c) >= 0);
	const struct repl_stats *s = repl_stats(sim.n[1].r);

	/* 1. the same datagram again: a replay */
	repl_receive(sim.n[1].r, old, olen, sim.n[0].id);
	assert_int_equal(s->rx_replay, 1);
	assert_int_equal(sim_peer_of(1, 1).c.rx_replay, 1);

	/* 2. A restarts; B takes its new epoch only after the challenge */
	uint64_t confirmed = s->epochs_confirmed;
	sim_stop(0);
	sim_start(0, true, true);
	sim_run(500);
	assert_int_equal(s->epochs_confirmed, confirmed + 1);
	assert_true(sim_peer_of(1, 1).epoch != epoch1);
	assert_true(sim_in_sync(1));
	/* ... and the frame of A's first life is now of a past epoch */
	repl_receive(sim.n[1].r, old, olen, sim.n[0].id);
	assert_int_equal(s->rx_old_epoch, 1);
	assert_int_equal(s->rx_replay, 1);

	/* 3. an epoch nobody lives in: challenged, never taken */
	uint64_t challenges = s->tx_challenges, unconfirmed = s->rx_unconfirmed;
	uint32_t epoch2 = sim_peer_of(1, 1).epoch;
	old[WIRE_OFF_EPOCH] ^= 0x5a;
	repl_receive(sim.n[1].r, old, olen, sim.n[0].id);
	assert_int_equal(s->rx_unconfirmed, unconfirmed + 1);
	assert_int_equal(s->tx_challenges, challenges + 1);
	sim_run(300);
	assert_int_equal(sim_peer_of(1, 1).epoch, epoch2);
	assert_int_equal(s->epochs_confirmed, confirmed + 1);
	assert_true(sim_in_sync(1));

	/* 4. B restarts: it no longer knows A's past epochs, yet a frame of
	 * one cannot answer the challenge and is never taken */
	sim_stop(1);
	sim_start(1, false, true);
	sim_run(500);
	s = repl_stats(sim.n[1].r);
	assert_int_equal(sim_peer_of(1, 1).epoch, epoch2);
	old[WIRE_OFF_EPOCH] ^= 0x5a;            /* back to A's first life */
	repl_receive(sim.n[1].r, old, olen, sim.n[0].id);
	sim_run(300);
	assert_int_equal(sim_peer_of(1, 1).epoch, epoch2);
	assert_true(s->rx_unconfirmed >= 1);
	assert_true(sim_in_sync(1));
	assert_true(sim_kfind(&sim.n[1].k, &c) >= 0);
}

/* A peer of another protocol major (wire.h "Versions"): its frames are
 * refused without being decoded, counted, said once, shown in status; it
 * is never alive nor in sync, and nothing is sent in answer to it — in
 * both directions, so that two majors side by side cannot storm. */
static void test_incompatible_major(void **state)
{
	sim.major[1] = 2;               /* node 2 speaks protocol 2 */
	sim_start(0, true, true);
	sim_start(1, false, true);
	for (uint32_t i = 0; i < 20; i++) {
		struct ct c = sim_flow(i);
		sim_kernel_new(0, &c);
	}
	sim_run(3000);
	const struct repl_stats *s0 = repl_stats(sim.n[0].r);
	struct repl_peer_status p2 = sim_peer_of(0, 2);
	assert_true(s0->rx_incompatible >= 25);         /* its heartbeats, at least */
	assert_int_equal(p2.incompatible, 2);
	assert_false(p2.alive);
	assert_false(p2.in_sync);
	assert_false(sim_in_sync(0));           /* it is there, and nothing of it is held */
	assert_int_equal(s0->tx_challenges, 0); /* never answered */
	assert_int_equal(s0->tx_responses, 0);
	assert_int_equal(s0->resyncs_asked, 0);
	assert_int_equal(s0->tx_bulks, 0);
	/* node 2 takes node 1's frames (it really speaks 3 here): it asks, and
	 * node 1 answers nothing — no challenge, no bulk */
	assert_int_equal(sim_peer_of(1, 1).flows_held, 0);
	/* it upgrades (speaks 3 again): refused no more, in sync */
	sim.major[1] = 0;
	sim_run(5000);
	p2 = sim_peer_of(0, 2);
	assert_true(p2.alive);
	assert_int_equal(p2.incompatible, 0);
	assert_int_equal(p2.proto_major, WIRE_VERSION);
	assert_int_equal(p2.features, WIRE_FEATURES);
	assert_true(sim_in_sync(0));
	assert_true(sim_in_sync(1));
	assert_int_equal(sim_peer_of(1, 1).flows_held, 20);
}

/* A peer whose digest never matches what we hold of it (two nodes that
 * compute it differently): resyncs are spaced out, not asked every few
 * seconds forever; counted, shown; when it matches again, all is reset. */
static void test_resync_backoff(void **state)
{
	sim_start(0, true, true);
	sim_start(1, false, true);
	for (uint32_t i = 0; i < 20; i++) {
		struct ct c = sim_flow(i);
		sim_kernel_new(0, &c);
	}
	sim_run(1000);
	assert_true(sim_in_sync(1));
	const struct repl_stats *s1 = repl_stats(sim.n[1].r);
	uint64_t asked = s1->resyncs_asked, bulks = repl_stats(sim.n[0].r)->tx_bulks;
	sim.bend_digest[0] = 0x5a5a;
	sim_run(120000);
	uint64_t storm = s1->resyncs_asked - asked;
	print_message("120 s of a digest that never matches: %llu resyncs asked, %llu bulks "
		      "sent, %llu back-offs\n", (unsigned long long)storm,
		      (unsigned long long)(repl_stats(sim.n[0].r)->tx_bulks - bulks),
		      (unsigned long long)s1->resync_backoffs);
	/* 2 at once, then after 10, 20, 40 and 80 s: 6 (every ~3.3 s: 36) */
	assert_true(storm >= 3 && storm <= 7);
	assert_true(s1->resync_backoffs >= 3);
	struct repl_peer_status p = sim_peer_of(1, 1);
	assert_true(p.fruitless_resyncs >= 3);
	assert_true(p.resync_wait_ms > 0);
	assert_false(p.in_sync);
	/* its digest matches again: in sync, the back-off forgotten */
	sim.bend_digest[0] = 0;
	sim_run(2000);
	p = sim_peer_of(1, 1);
	assert_int_equal(p.fruitless_resyncs, 0);
	assert_int_equal(p.resync_wait_ms, 0);
	assert_true(sim_in_sync(1));
}

int main(void)
{
	log_init(LOG_LVL_ERROR, false, "test");
	const struct CMUnitTest tests[] = {
		SIM_TEST(test_hostile_frames),
		SIM_TEST(test_two_primaries_settle),
		SIM_TEST(test_dead_owner_claim_yields),
		SIM_TEST(test_restart_bulks_to_it_alone),
		SIM_TEST(test_restart_bulk_skip_lost),
		SIM_TEST(test_restart_bulk_group),
		SIM_TEST(test_membership_liveness),
		SIM_TEST(test_membership_and_source),
		SIM_TEST(test_active_active),
		SIM_TEST(test_frame_validated_whole),
		SIM_TEST(test_replay_and_epochs),
		SIM_TEST(test_defer),
		SIM_TEST(test_incompatible_major),
		SIM_TEST(test_resync_backoff),
	};
	return cmocka_run_group_tests_name("repl_nodes", tests, NULL, NULL);
}
