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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"
#include "sync/bucket.h"
#include "sync/repl.h"
#include "sync/codec.h"
#include "sync/wire.h"

#include "sim.h"

static void test_replicate_and_delete(void **state)
{
	sim_start(0, true, true);
	sim_start(1, false, true);
	sim_run(300);
	struct ct c = sim_flow(1);
	sim_kernel_new(0, &c);
	sim_run(200);
	assert_int_equal(sim.n[1].k.n, 1);                       /* injected on B */
	assert_int_equal(sim_peer_of(1, 1).flows_held, 1);
	assert_true(sim_in_sync(1));
	/* the injected copy's events on B are not echoed back */
	unsigned long tx = repl_stats(sim.n[1].r)->tx_records;
	repl_kernel_event(sim.n[1].r, CTNL_EV_NEW, &c, true);
	sim_deliver();
	assert_int_equal(repl_stats(sim.n[1].r)->tx_records, tx);
	/* a destroy on the owner removes it everywhere */
	repl_kernel_event(sim.n[0].r, CTNL_EV_DESTROY, &c, false);
	sim_run(200);
	assert_int_equal(sim.n[1].k.n, 0);
	assert_int_equal(sim_peer_of(1, 1).flows_held, 0);
}

static void test_coalescing(void **state)
{
	sim_start(0, true, true);
	sim_start(1, false, true);
	sim_run(300);
	struct ct c = sim_flow(2);
	sim_kernel_new(0, &c);
	for (int i = 0; i < 10; i++) {
		c.timeout = 1000 + (uint32_t)i;
		repl_kernel_event(sim.n[0].r, CTNL_EV_UPDATE, &c, false);
	}
	unsigned long before = repl_stats(sim.n[1].r)->rx_upserts;
	sim_deliver();
	assert_int_equal(repl_stats(sim.n[1].r)->rx_upserts - before, 1);
	assert_int_equal(sim.n[1].k.ct[sim_kfind(&sim.n[1].k, &c)].timeout, 1009);
}

static void test_peer_expiry_is_not_a_delete(void **state)
{
	sim_start(0, true, true);
	sim_start(1, false, true);
	sim_run(300);
	struct ct c = sim_flow(3);
	sim_kernel_new(0, &c);
	sim_run(200);
	/* B's kernel times the copy out: B must not tell A to delete it */
	sim.n[1].k.used[sim_kfind(&sim.n[1].k, &c)] = false;
	sim.n[1].k.n--;
	repl_kernel_event(sim.n[1].r, CTNL_EV_DESTROY, &c, false);
	sim_run(200);
	assert_int_equal(sim.n[0].k.n, 1);
	assert_int_equal(sim_peer_of(0, 2).flows_held, 0);
	assert_int_equal(sim_peer_of(1, 1).flows_held, 1);  /* still held, for failover */
	/* and a backup does not adopt a live peer's flow on its own traffic */
	repl_kernel_event(sim.n[1].r, CTNL_EV_UPDATE, &c, false);
	assert_int_equal(repl_stats(sim.n[1].r)->ev_foreign, 1);
}

static void test_promote_takes_ownership(void **state)
{
	sim_start(0, true, true);
	sim_start(1, false, true);
	sim_run(300);
	for (uint32_t i = 0; i < 50; i++) {
		struct ct c = sim_flow(100 + i);
		sim_kernel_new(0, &c);
	}
	sim_run(200);
	assert_int_equal(sim.n[1].k.n, 50);
	repl_demote(sim.n[0].r);
	assert_int_equal(repl_promote(sim.n[1].r), 50);
	sim_run(300);
	assert_int_equal(sim_peer_of(0, 2).flows_held, 50);         /* A sees B as owner */
	struct repl_status st;
	repl_status(sim.n[1].r, &st);
	assert_int_equal(st.flows_local, 50);
	assert_true(st.primary);
	assert_true(sim_in_sync(0) && sim_in_sync(1));
	/* with inject = immediate, promotion commits nothing: it was all there */
	assert_int_equal(sim.n[1].k.creates, 50);
	/* A's kernel entries were its own traffic's: each is written as B's
	 * (its state, TCP windows liberal), though no state changed — without
	 * it a failback finds stale windows (tcp-stream.sh) */
	assert_int_equal(sim.n[0].k.updates, 50);
	assert_int_equal(repl_stats(sim.n[0].r)->rx_upserts_same, 0);
}

static void test_on_promote_waits_for_commit(void **state)
{
	sim_start(0, true, true);
	sim_start(1, false, false);
	sim_run(300);
	for (uint32_t i = 0; i < 20; i++) {
		struct ct c = sim_flow(200 + i);
		sim_kernel_new(0, &c);
	}
	sim_run(200);
	assert_int_equal(sim.n[1].k.n, 0);
	struct repl_status st;
	repl_status(sim.n[1].r, &st);
	assert_int_equal(st.pending_commit, 20);
	assert_int_equal(repl_commit(sim.n[1].r), 20);
	assert_int_equal(sim.n[1].k.n, 20);
	assert_int_equal(repl_commit(sim.n[1].r), 0);           /* nothing left */
}

/* A large commit pauses the kernel's NEW events (their echoes would halve
 * its rate) and reads the table after it, which finds a local flow whose NEW
 * event was missed meanwhile. */
static void test_commit_pauses_new_events(void **state)
{
	sim.quiet_min = 10;
	sim_start(0, true, true);
	sim_start(1, false, false);
	sim.quiet_min = 0;
	sim_run(300);
	for (uint32_t i = 0; i < 20; i++) {
		struct ct c = sim_flow(230 + i);
		sim_kernel_new(0, &c);
	}
	sim_run(200);
	struct node *b = &sim.n[1];
	struct ct mine = sim_flow(290);     /* born on B during the commit, event missed */
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
	sim_run(300);
	assert_true(sim_kfind(&sim.n[0].k, &mine) >= 0);    /* advertised to A */
	/* a failed resubscription is retried, and its dump follows */
	for (uint32_t i = 0; i < 20; i++) {
		struct ct c = sim_flow(260 + i);
		sim_kernel_new(0, &c);
	}
	sim_run(200);
	struct ct mine2 = sim_flow(291);
	b->k.ct[b->k.n] = mine2;
	b->k.used[b->k.n++] = true;
	b->resume_fails = 1;
	assert_int_equal(repl_commit(b->r), 20);
	assert_true(b->new_events_off);                 /* still off */
	assert_int_equal(st->dump_found, 1);
	sim_run(50);
	assert_false(b->new_events_off);
	assert_int_equal(st->dump_found, 2);
	sim_run(300);
	assert_true(sim_kfind(&sim.n[0].k, &mine2) >= 0);
	/* a promotion that writes the flows held sends from the thread too */
	for (uint32_t i = 0; i < 10; i++) {
		struct ct c = sim_flow(300 + i);
		sim_kernel_new(0, &c);
	}
	sim_run(200);
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
	sim_start(0, true, true);
	for (uint32_t i = 0; i < 100; i++) {
		struct ct c = sim_flow(300 + i);
		sim_kernel_new(0, &c);
	}
	sim_run(200);
	/* B starts late: it gets A's flows without asking */
	sim_start(1, false, true);
	sim_run(500);
	assert_int_equal(sim_peer_of(1, 1).flows_held, 100);
	assert_int_equal(sim.n[1].k.n, 100);
	assert_true(sim_in_sync(1));
	/* A restarts with 10 flows gone from its kernel: B sweeps them */
	sim_stop(0);
	for (uint32_t i = 0; i < 10; i++) {
		struct ct c = sim_flow(300 + i);
		sim.n[0].k.used[sim_kfind(&sim.n[0].k, &c)] = false;
		sim.n[0].k.n--;
	}
	sim_start(0, true, true);
	sim_run(500);
	assert_int_equal(sim_peer_of(1, 1).flows_held, 90);
	assert_int_equal(sim.n[1].k.n, 90);
	assert_int_equal(repl_stats(sim.n[1].r)->swept, 10);
	assert_true(sim_in_sync(1));
}

static void test_loss_is_repaired(void **state)
{
	sim_start(0, true, true);
	sim_start(1, false, true);
	sim_run(300);
	sim.drop_next = 1;
	struct ct c = sim_flow(500);
	sim_kernel_new(0, &c);
	sim_run(50);
	/* the next frame reveals the gap: NACK, retransmission, applied */
	struct ct d = sim_flow(501);
	sim_kernel_new(0, &d);
	sim_run(300);
	assert_int_equal(sim.dropped, 1);
	const struct repl_stats *s1 = repl_stats(sim.n[1].r);
	assert_true(s1->tx_nacks >= 1);
	assert_int_equal(s1->rx_lost, 0);
	assert_true(repl_stats(sim.n[0].r)->tx_retransmits >= 1);
	assert_true(sim_in_sync(1));
	assert_int_equal(sim_peer_of(1, 1).flows_held, 2);
	assert_int_equal(sim.n[1].k.n, 2);
}

/* Frames of 512 bytes, half of a burst lost: more holes than one NACK of
 * that size can name.  Each NACK names what fits (none is larger than a
 * frame: teardown checks every frame sent) and the rest follows in later
 * ones; everything is repaired by retransmission, nothing by resync. */
static void test_many_holes_small_frames(void **state)
{
	sim.frame_size = 512;
	sim_start(0, true, true);
	sim_start(1, false, true);
	sim_run(300);
	/* 120 frames of 8 flows, every other one lost: 60 holes */
	for (uint32_t i = 0; i < 960; i++) {
		struct ct c = sim_flow(i);
		sim_kernel_new(0, &c);
		if (i % 8 == 7) {
			sim.drop_next = (i / 8) % 2;
			repl_flush(sim.n[0].r);
		}
	}
	assert_int_equal(sim.dropped, 60);
	sim_run(1500);
	const struct repl_stats *s1 = repl_stats(sim.n[1].r);
	print_message("%u frames lost of the burst; %llu NACKs, %llu retransmissions\n",
		      sim.dropped, (unsigned long long)s1->tx_nacks,
		      (unsigned long long)repl_stats(sim.n[0].r)->tx_retransmits);
	assert_true(s1->tx_nacks >= 2);         /* more than one was needed */
	assert_int_equal(s1->tx_control_too_big, 0);
	assert_int_equal(s1->rx_lost, 0);
	assert_int_equal(s1->resyncs_asked, 1); /* the first contact's only */
	assert_int_equal(sim_peer_of(1, 1).flows_held, 960);
	assert_true(sim_in_sync(1));
}

/* A SKIP (wire.h) naming the whole reorder window 128 times over: the work
 * it causes is bounded (REORDER_CAP slots for the record, not 128 times
 * that), and the peer's frames go on being taken. */
static void test_skip_work_is_bounded(void **state)
{
	sim_start(0, true, true);
	sim_start(1, false, true);
	sim_run(300);
	struct repl_status st;
	repl_status(sim.n[0].r, &st);
	uint32_t epoch2 = st.peer[0].epoch;
	struct nack_info n = { .target = 3, .epoch = epoch2, .nranges = NACK_MAX_RANGES };
	for (unsigned i = 0; i < NACK_MAX_RANGES; i++) {
		n.range[i].first = 1;
		n.range[i].last = 0x7fffffff;
	}
	uint8_t buf[WIRE_MAX_FRAME];
	struct wbuf w;
	codec_frame_start(&w, buf, sizeof(buf));
	assert_int_equal(codec_put_ranges(&w, REC_SKIP, &n), 0);
	struct frame_hdr h = { .flags = WIRE_F_UNSEQ, .node = 2, .epoch = epoch2, .seq = 0,
			       .pn = sim.last_pn[1] + 1 };
	size_t len = codec_frame_finish(&w, &h);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	repl_receive(sim.n[0].r, buf, len, 2);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	print_message("a SKIP of 128 whole windows took %.1f ms\n",
		      (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	const struct repl_stats *s0 = repl_stats(sim.n[0].r);
	assert_int_equal(s0->rx_skipped_ranges, 1);
	assert_true(s0->rx_skipped_frames <= 65536);
	uint64_t before = sim_peer_of(0, 2).c.rx_frames;
	sim_run(3000);
	assert_true(sim_peer_of(0, 2).alive);
	assert_true(sim_peer_of(0, 2).c.rx_frames >= before + 25);     /* its heartbeats */
}

static void test_lost_tail_is_repaired(void **state)
{
	sim_start(0, true, true);
	sim_start(1, false, true);
	sim_run(300);
	sim.drop_next = 1;              /* the only frame: only a heartbeat tells */
	struct ct c = sim_flow(510);
	sim_kernel_new(0, &c);
	sim_run(400);
	assert_true(repl_stats(sim.n[1].r)->tx_nacks >= 1);
	assert_true(sim_in_sync(1));
	assert_int_equal(sim.n[1].k.n, 1);
}

static void test_ring_overrun_escalates(void **state)
{
	sim.ring_bytes = 8192;              /* a handful of frames */
	sim_start(0, true, true);
	sim.ring_bytes = 0;
	sim_start(1, false, true);
	sim_run(300);
	/* the link is cut while more is sent than the ring holds */
	sim.down = true;
	for (uint32_t i = 0; i < 1000; i++) {
		struct ct c = sim_flow(2000 + i);
		sim_kernel_new(0, &c);
		repl_flush(sim.n[0].r);
	}
	/* a frame's worth of flows is deleted meanwhile */
	for (uint32_t i = 0; i < 10; i++) {
		struct ct c = sim_flow(2000 + i);
		struct simkernel *a = &sim.n[0].k;
		a->used[sim_kfind(a, &c)] = false;
		a->n--;
		repl_kernel_event(sim.n[0].r, CTNL_EV_DESTROY, &c, false);
	}
	sim.down = false;
	sim_run(3000);
	assert_true(repl_stats(sim.n[0].r)->resync_escalations >= 1);
	assert_true(sim_in_sync(1));
	assert_int_equal(sim_peer_of(1, 1).flows_held, 990);
	assert_int_equal(sim.n[1].k.n, 990);
}

static void test_nat_clash_is_counted(void **state)
{
	sim_start(0, true, true);
	sim_start(1, false, true);
	sim_run(300);
	struct ct c = sim_flow(600);
	sim.n[1].k.clash_set = true;
	sim.n[1].k.clash = c;
	sim_kernel_new(0, &c);
	sim_run(200);
	assert_int_equal(repl_stats(sim.n[1].r)->nat_clashes, 1);
	assert_int_equal(sim.n[1].k.n, 0);
}

static void test_dead_peer_and_adoption(void **state)
{
	sim_start(0, true, true);
	sim_start(1, false, true);
	sim_run(300);
	struct ct c = sim_flow(700);
	sim_kernel_new(0, &c);
	sim_run(200);
	sim_stop(0);
	sim_run(500);
	assert_false(sim_peer_of(1, 1).alive);
	assert_false(sim_peer_of(1, 1).in_sync);
	/* a dead peer does not keep the node from being in sync: scripts wait
	 * for in-sync before promoting, precisely when the peer is dead */
	assert_true(sim_in_sync(1));
	/* traffic on B touches the dead owner's flow: B adopts it */
	repl_kernel_event(sim.n[1].r, CTNL_EV_UPDATE, &c, false);
	struct repl_status st;
	repl_status(sim.n[1].r, &st);
	assert_int_equal(st.flows_local, 1);
	assert_int_equal(repl_stats(sim.n[1].r)->adopted, 1);
}

static void kernel_update(int idx, const struct ct *c);
static void kernel_destroy(int idx, const struct ct *c);

static struct repl_status status_of(int idx)
{
	struct repl_status st;
	repl_status(sim.n[idx].r, &st);
	return st;
}

/* filter.tcp_states: a TCP flow goes once it is in a listed state, with
 * what its NEW event said (the helper); from then on every change goes. */
static void test_filter_tcp_states(void **state)
{
	sim.filt.tcp_states = 1u << 3;          /* ESTABLISHED */
	sim_start(0, true, true);
	sim_start(1, false, true);
	sim_run(300);
	struct ct c = sim_flow(1), d = sim_flow(2);
	c.tcp.state = d.tcp.state = 1;          /* SYN_SENT */
	snprintf(c.helper, sizeof(c.helper), "ftp");
	c.has |= CT_HAS_HELPER;
	sim_kernel_new(0, &c);
	sim_kernel_new(0, &d);
	sim_run(300);
	assert_int_equal(sim.n[1].k.n, 0);      /* held back */
	assert_int_equal(status_of(0).filter_waiting, 2);
	kernel_destroy(0, &d);                  /* a SYN that was never answered */
	sim_run(300);
	assert_int_equal(repl_stats(sim.n[0].r)->filter_unsent, 1);
	/* nothing of either was sent */
	assert_int_equal(repl_stats(sim.n[1].r)->rx_upserts + repl_stats(sim.n[1].r)->rx_deletes, 0);
	struct ct u = c;
	u.tcp.state = 3;
	u.has &= ~CT_HAS_HELPER;                /* an update event names no helper */
	u.helper[0] = 0;
	kernel_update(0, &u);
	sim_run(300);
	assert_int_equal(sim.n[1].k.n, 1);
	assert_int_equal(sim.n[1].k.ct[sim_kfind(&sim.n[1].k, &c)].tcp.state, 3);
	assert_string_equal(sim.n[1].k.ct[sim_kfind(&sim.n[1].k, &c)].helper, "ftp");
	assert_int_equal(repl_stats(sim.n[0].r)->filter_synced, 1);
	assert_int_equal(status_of(0).filter_waiting, 0);
	u.tcp.state = 7;                        /* TIME_WAIT: not listed, still carried */
	kernel_update(0, &u);
	sim_run(300);
	assert_int_equal(sim.n[1].k.ct[sim_kfind(&sim.n[1].k, &c)].tcp.state, 7);
	kernel_destroy(0, &u);
	sim_run(300);
	assert_int_equal(sim.n[1].k.n, 0);
	/* UDP is not TCP: not held */
	struct ct v = sim_flow(3);
	v.l4 = IPPROTO_UDP;
	v.has &= ~CT_HAS_TCP;
	sim_kernel_new(0, &v);
	sim_run(300);
	assert_int_equal(sim.n[1].k.n, 1);
}

/* filter.min_age: a flow goes once it has lived that long, in its latest
 * state; one that ends first never goes; one that ends unseen is swept. */
static void test_filter_min_age(void **state)
{
	sim.filt.min_age_ms = 3000;
	sim_start(0, true, true);
	sim_start(1, false, true);
	sim_run(300);
	struct ct c = sim_flow(1), d = sim_flow(2), e = sim_flow(3), g = sim_flow(4);
	sim_kernel_new(0, &c);
	sim_kernel_new(0, &d);
	sim_kernel_new(0, &e);
	sim_kernel_new(0, &g);
	sim_run(1000);
	kernel_destroy(0, &d);                  /* a short one */
	/* g times out, its end unreported (the kernel's garbage collection
	 * has not passed): the look at 3 s finds it gone */
	struct simkernel *ka = &sim.n[0].k;
	ka->used[sim_kfind(ka, &g)] = false;
	ka->n--;
	struct ct u = c;
	u.timeout = 1234;
	kernel_update(0, &u);
	sim_run(1500);                          /* 2.5 s: refresh dumps ran meanwhile */
	assert_int_equal(sim.n[1].k.n, 0);
	assert_int_equal(repl_stats(sim.n[1].r)->rx_upserts + repl_stats(sim.n[1].r)->rx_deletes, 0);
	assert_int_equal(repl_stats(sim.n[0].r)->filter_unsent, 1);
	sim_run(1000);                          /* 3.5 s: old enough */
	assert_int_equal(sim.n[1].k.n, 2);
	int j = sim_kfind(&sim.n[1].k, &c);
	assert_true(j >= 0);
	assert_int_equal(sim.n[1].k.ct[j].timeout, 1234);      /* its latest state */
	assert_int_equal(repl_stats(sim.n[0].r)->filter_synced, 2);
	assert_int_equal(repl_stats(sim.n[0].r)->filter_unsent, 2);    /* d, g */
	assert_int_equal(status_of(0).filter_waiting, 0);
	assert_int_equal(sim_peer_of(1, 1).flows_held, 2);
	assert_true(sim_in_sync(1));            /* digests agree: nothing half-sent */

	/* with the state filter too, a flow old enough waits for its state;
	 * one that ends then unseen (events lost) is swept by the dump that
	 * follows the overrun */
	sim_stop(0);
	sim_stop(1);
	memset(&sim.n, 0, sizeof(sim.n));
	sim.filt.tcp_states = 1u << 3;
	sim_start(0, true, true);
	sim_start(1, false, true);
	sim_run(300);
	e.tcp.state = 1;
	sim_kernel_new(0, &e);
	sim_run(3500);
	assert_int_equal(status_of(0).filter_waiting, 1);
	struct simkernel *k = &sim.n[0].k;
	int slot = sim_kfind(k, &e);
	k->used[slot] = false;
	k->n--;
	repl_kernel_overrun(sim.n[0].r);
	sim_run(500);
	assert_int_equal(status_of(0).filter_waiting, 0);
	assert_int_equal(repl_stats(sim.n[0].r)->filter_unsent, 1);
	assert_int_equal(sim.n[1].k.n, 0);
}

/* A burst coming of age at once is looked up 1024 at a time a poll (each
 * lookup is a kernel round trip: the loop is never held for long). */
static void test_filter_age_burst(void **state)
{
	sim.filt.min_age_ms = 1000;
	sim_start(0, true, true);
	sim_start(1, false, true);
	sim_run(300);
	for (uint32_t i = 0; i < 2000; i++) {
		struct ct c = sim_flow(3000 + i);
		sim_kernel_new(0, &c);
	}
	sim_run(990);
	assert_int_equal(repl_stats(sim.n[0].r)->filter_synced, 0);
	sim_run(10);                            /* the poll at 1 s */
	assert_int_equal(repl_stats(sim.n[0].r)->filter_synced, 1024);
	sim_run(10);
	assert_int_equal(repl_stats(sim.n[0].r)->filter_synced, 2000);
	sim_run(500);
	assert_int_equal(sim.n[1].k.n, 2000);
}

static void test_filter_zones(void **state)
{
	sim.filt.nzones = 1;
	sim.filt.zones[0] = 5;
	sim_start(0, true, true);
	sim_start(1, false, true);
	sim_run(300);
	struct ct c = sim_flow(1), d = sim_flow(2);
	c.zone = 5;
	c.has |= CT_HAS_ZONE;
	sim_kernel_new(0, &c);
	sim_kernel_new(0, &d);                  /* zone 0 */
	sim_run(300);
	assert_int_equal(sim.n[1].k.n, 1);
	assert_true(sim_kfind(&sim.n[1].k, &c) >= 0);
	assert_int_equal(repl_stats(sim.n[0].r)->ev_filtered, 1);
	sim_stop(0);
	sim_stop(1);
	memset(&sim.n, 0, sizeof(sim.n));
	sim.filt.zones_exclude = true;          /* every zone but 5 */
	sim_start(0, true, true);
	sim_start(1, false, true);
	sim_run(300);
	struct ct e = sim_flow(3), f = sim_flow(4);
	e.zone = 5;
	e.has |= CT_HAS_ZONE;
	sim_kernel_new(0, &e);
	sim_kernel_new(0, &f);
	sim_run(300);
	assert_int_equal(sim.n[1].k.n, 1);
	assert_true(sim_kfind(&sim.n[1].k, &f) >= 0);
}

/* filter.strip: neither sent by a node that strips, nor restored by one. */
static void test_filter_strip(void **state)
{
	sim.filt.strip = CT_HAS_LABELS | CT_HAS_MARK;
	sim_start(0, true, true);
	sim.filt.strip = CT_HAS_LABELS;
	sim_start(1, false, true);
	sim_run(300);
	struct ct c = sim_flow(1);
	c.mark = 7;
	c.labels[0] = 0x81;
	c.has |= CT_HAS_MARK | CT_HAS_LABELS;
	sim_kernel_new(0, &c);
	sim_run(300);
	int j = sim_kfind(&sim.n[1].k, &c);
	assert_true(j >= 0);
	assert_int_equal(sim.n[1].k.ct[j].mark, 0);
	assert_int_equal(sim.n[1].k.ct[j].labels[0], 0);
	/* B strips labels only (it sends the mark); A restores neither */
	struct ct d = sim_flow(2);
	d.mark = 9;
	d.labels[1] = 0x42;
	d.has |= CT_HAS_MARK | CT_HAS_LABELS;
	repl_promote(sim.n[1].r);
	sim_kernel_new(1, &d);
	sim_run(300);
	j = sim_kfind(&sim.n[0].k, &d);
	assert_true(j >= 0);
	assert_int_equal(sim.n[0].k.ct[j].mark, 0);     /* A does not restore marks */
	assert_int_equal(sim.n[0].k.ct[j].labels[1], 0);
}

static void test_filter(void **state)
{
	sim_start(0, true, true);
	sim_start(1, false, true);
	sim_run(300);
	struct ct c = sim_flow(800);
	c.orig.src.ip4 = htonl(0x7f000001);
	sim_kernel_new(0, &c);
	sim_run(200);
	assert_int_equal(sim.n[1].k.n, 0);
	assert_int_equal(repl_stats(sim.n[0].r)->ev_filtered, 1);
}

static void kernel_update(int idx, const struct ct *c)
{
	struct node *nd = &sim.n[idx];
	int slot = sim_kfind(&nd->k, c);
	assert_true(slot >= 0);
	nd->k.ct[slot] = *c;
	repl_kernel_event(nd->r, CTNL_EV_UPDATE, c, false);
}

static void kernel_destroy(int idx, const struct ct *c)
{
	struct node *nd = &sim.n[idx];
	int slot = sim_kfind(&nd->k, c);
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

	sim.rng = seed * 0x9e3779b97f4a7c15ULL + 1;
	sim.loss = loss[seed % 4];
	sim.dup = 5;
	sim.delay_max = 40;
	sim_start(0, true, true);
	sim_start(1, false, true);
	for (int step = 0; step < 300; step++) {
		unsigned op = sim_rnd() % 100;
		if (op < 55 || nlive == 0) {
			struct ct c = sim_flow(next);
			live[nlive++] = next++;
			sim_kernel_new(0, &c);
		} else if (op < 85) {
			struct ct c = sim_flow(live[sim_rnd() % nlive]);
			c.timeout = sim_rnd() % 100000;
			c.tcp.state = (uint8_t)(1 + sim_rnd() % 9);
			kernel_update(0, &c);
		} else {
			unsigned k = sim_rnd() % nlive;
			struct ct c = sim_flow(live[k]);
			live[k] = live[--nlive];
			kernel_destroy(0, &c);
		}
		sim_run(10);
	}
	sim.loss = sim.dup = sim.delay_max = 0;
	sim_run(6000);
	if (!sim_in_sync(1) || !sim_in_sync(0))
		fail_msg("seed %llu: not in sync", (unsigned long long)seed);
	struct simkernel *a = &sim.n[0].k, *b = &sim.n[1].k;
	if (a->n != b->n || a->n != nlive)
		fail_msg("seed %llu: primary %u flows, backup %u, expected %u",
			 (unsigned long long)seed, a->n, b->n, nlive);
	for (unsigned i = 0; i < KMAX; i++) {
		if (!a->used[i])
			continue;
		int j = sim_kfind(b, &a->ct[i]);
		if (j < 0 || b->ct[j].timeout != a->ct[i].timeout ||
		    b->ct[j].tcp.state != a->ct[i].tcp.state)
			fail_msg("seed %llu: flow %u differs on the backup",
				 (unsigned long long)seed, ntohs(a->ct[i].orig.sport));
	}
	sim_stop(0);
	sim_stop(1);
	memset(&sim.n, 0, sizeof(sim.n));
	sim.qn = 0;
}

static void test_random_links(void **state)
{
	uint64_t dropped = 0, dups = 0;
	for (uint64_t seed = 1; seed <= 200; seed++) {
		one_random_run(seed);
		dropped += sim.dropped;
		dups += sim.duplicated;
		sim.dropped = sim.duplicated = 0;
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
	sim_start(0, true, true);
	sim_start(1, false, true);
	sim_run(300);
	struct ct c = sim_flow(1200), gone = sim_flow(1201);
	c.l4 = gone.l4 = IPPROTO_UDP;
	c.has &= ~(uint32_t)CT_HAS_TCP;
	gone.has &= ~(uint32_t)CT_HAS_TCP;
	c.timeout = gone.timeout = 30;
	sim_kernel_new(0, &c);
	sim_kernel_new(0, &gone);
	sim_run(200);
	struct simkernel *a = &sim.n[0].k, *b = &sim.n[1].k;
	/* 65 s of traffic: the owner's kernel keeps the timeout at 30 */
	int slot = sim_kfind(a, &gone);
	a->used[slot] = false;          /* ends silently (a missed event) */
	a->n--;
	uint64_t up0 = repl_stats(sim.n[1].r)->rx_refreshes;
	for (int s = 0; s < 65; s++) {
		a->ct[sim_kfind(a, &c)].timeout = 30;
		sim_run(1000);
	}
	/* refreshed at least twice, each time before the copy expired */
	assert_true(repl_stats(sim.n[0].r)->refreshed >= 2);
	assert_true(repl_stats(sim.n[1].r)->rx_refreshes - up0 >= 2);
	/* a dump every second would be 65; only those near an expiry ran */
	const struct repl_stats *st = repl_stats(sim.n[0].r);
	assert_true(st->refreshes + st->refreshes_skipped >= 60);
	assert_true(st->refreshes >= 2 && st->refreshes < 30);
	/* the peer's copy was re-sent with a fresh timeout */
	int j = sim_kfind(b, &c);
	assert_true(j >= 0);
	assert_int_equal(b->ct[j].timeout, 30);
	assert_true(sim_peer_of(1, 1).flows_held == 1);
	assert_true(sim_kfind(b, &gone) < 0);
}


/* Flows whose peers' copies live for days need no refresh dump at all. */
static void test_refresh_skipped_for_long_timeouts(void **state)
{
	sim_start(0, true, true);
	sim_start(1, false, true);
	sim_run(300);
	for (uint32_t i = 0; i < 10; i++) {
		struct ct c = sim_flow(1500 + i);       /* TCP, timeout 5 days */
		sim_kernel_new(0, &c);
	}
	sim_run(10000);
	const struct repl_stats *st = repl_stats(sim.n[0].r);
	assert_true(st->refreshes_skipped >= 8);
	assert_true(st->refreshes <= 1);        /* the first, before any flow was sent */
	/* a UDP flow with 30 s makes them run again, near its expiry */
	struct ct u = sim_flow(1600);
	u.l4 = IPPROTO_UDP;
	u.has &= ~(uint32_t)CT_HAS_TCP;
	u.timeout = 30;
	sim_kernel_new(0, &u);
	uint64_t r0 = st->refreshes;
	for (int s = 0; s < 40; s++) {
		sim.n[0].k.ct[sim_kfind(&sim.n[0].k, &u)].timeout = 30;
		sim_run(1000);
	}
	assert_true(st->refreshes > r0);
	assert_true(st->refreshed >= 1);
	assert_true(repl_stats(sim.n[1].r)->rx_refreshes >= 1);     /* and B took it */
}

/* An event overrun: the engine reads the kernel table in the background
 * (slices; the loop keeps serving the link) and takes from it what the lost
 * events would have said.  The dump's entries are older than what happens
 * while it is read: a flow destroyed meanwhile must not come back. */
static void test_overrun_background_dump(void **state)
{
	sim_start(0, true, true);
	sim_start(1, false, true);
	sim_run(300);
	struct node *a = &sim.n[0];
	struct simkernel *ka = &a->k, *kb = &sim.n[1].k;
	for (uint32_t i = 0; i < 40; i++) {
		struct ct c = sim_flow(1300 + i);
		sim_kernel_new(0, &c);
	}
	sim_run(200);
	assert_int_equal(kb->n, 40);
	/* then events are lost: a flow is born, one changes, one ends */
	struct ct born = sim_flow(1390), changed = sim_flow(1301), ended = sim_flow(1302);
	ka->ct[ka->n] = born;           /* slots 0..39 are taken, in order */
	ka->used[ka->n++] = true;
	changed.tcp.state = 5;          /* FIN_WAIT, unseen */
	ka->ct[sim_kfind(ka, &changed)] = changed;
	ka->used[sim_kfind(ka, &ended)] = false;
	ka->n--;
	a->slow_dump = true;
	repl_kernel_overrun(a->r);
	assert_true(a->snapping);
	/* while the dump is read: a flow ends, with its event */
	struct ct late = sim_flow(1310);
	ka->used[sim_kfind(ka, &late)] = false;
	ka->n--;
	repl_kernel_event(a->r, CTNL_EV_DESTROY, &late, false);
	/* the dump read in slices, the link served in between */
	for (int i = 0; i < 100 && !sim_dump_step(a, 8); i++)
		sim_run(10);
	assert_false(a->snapping);
	sim_run(300);
	const struct repl_stats *st = repl_stats(a->r);
	assert_int_equal(st->overruns, 1);
	assert_int_equal(st->dump_found, 1);            /* born */
	assert_int_equal(st->dump_stale, 1);            /* late: not taken back */
	/* the peer's kernel equals ours: born there, changed, ended and late gone */
	assert_int_equal(kb->n, ka->n);
	assert_int_equal(kb->n, 39);
	assert_true(sim_kfind(kb, &born) >= 0);
	assert_int_equal(kb->ct[sim_kfind(kb, &changed)].tcp.state, 5);
	assert_true(sim_kfind(kb, &ended) < 0);
	assert_true(sim_kfind(kb, &late) < 0);
	assert_true(sim_in_sync(1));
	/* an unchanged flow was not sent again: 2 upserts and 2 deletes */
	assert_int_equal(repl_stats(sim.n[1].r)->rx_upserts, 40 + 2);
	assert_int_equal(repl_stats(sim.n[1].r)->rx_deletes, 2);
}

/* A second overrun while the background dump is read asks for one more. */
static void test_overrun_during_dump(void **state)
{
	sim_start(0, true, true);
	sim_start(1, false, true);
	sim_run(300);
	struct node *a = &sim.n[0];
	for (uint32_t i = 0; i < 20; i++) {
		struct ct c = sim_flow(1400 + i);
		sim_kernel_new(0, &c);
	}
	sim_run(200);
	a->slow_dump = true;
	repl_kernel_overrun(a->r);
	sim_dump_step(a, 5);
	/* a flow born silently in a part the dump has read already */
	struct ct born = sim_flow(1450);
	a->k.ct[a->k.n] = born;
	a->k.used[a->k.n++] = true;
	repl_kernel_overrun(a->r);
	while (!sim_dump_step(a, 5))
		sim_run(10);
	assert_true(a->snapping);       /* the second dump began */
	while (!sim_dump_step(a, 5))
		sim_run(10);
	sim_run(300);
	assert_int_equal(repl_stats(a->r)->overruns, 2);
	assert_true(sim_kfind(&sim.n[1].k, &born) >= 0);
	assert_int_equal(sim.n[1].k.n, 21);
}

int main(void)
{
	log_init(LOG_LVL_ERROR, false, "test");
	const struct CMUnitTest tests[] = {
		SIM_TEST(test_replicate_and_delete),
		SIM_TEST(test_coalescing),
		SIM_TEST(test_peer_expiry_is_not_a_delete),
		SIM_TEST(test_promote_takes_ownership),
		SIM_TEST(test_on_promote_waits_for_commit),
		SIM_TEST(test_commit_pauses_new_events),
		SIM_TEST(test_restart_bulk_and_sweep),
		SIM_TEST(test_loss_is_repaired),
		SIM_TEST(test_many_holes_small_frames),
		SIM_TEST(test_skip_work_is_bounded),
		SIM_TEST(test_lost_tail_is_repaired),
		SIM_TEST(test_ring_overrun_escalates),
		SIM_TEST(test_nat_clash_is_counted),
		SIM_TEST(test_dead_peer_and_adoption),
		SIM_TEST(test_filter),
		SIM_TEST(test_filter_tcp_states),
		SIM_TEST(test_filter_min_age),
		SIM_TEST(test_filter_age_burst),
		SIM_TEST(test_filter_zones),
		SIM_TEST(test_filter_strip),
		SIM_TEST(test_random_links),
		SIM_TEST(test_timeout_refresh),
		SIM_TEST(test_refresh_skipped_for_long_timeouts),
		SIM_TEST(test_overrun_background_dump),
		SIM_TEST(test_overrun_during_dump),
	};
	return cmocka_run_group_tests_name("repl", tests, NULL, NULL);
}
