/* Active-active leases, handovers and quorum (policy.h, "Leases"), on the
 * simulated cluster (tests/sim.h): at no 10 ms step is a bucket in two
 * nodes' kernel sets — when a daemon crashes (its set stays in the kernel
 * until its lease runs out), freezes and thaws, comes back, is demoted and
 * promoted, or is cut off by a partition of a CPG cluster — and every
 * bucket is held again afterwards.  The crash and the freeze are run
 * without a lease too (buckets.lease_ms = 0, the set stays while the
 * daemon is gone), the partition without quorum: there the check must see
 * buckets held twice, or it proves nothing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "sync/repl.h"

#include "sim.h"

enum { LEASE = 200 };           /* the sim: heartbeat 100 ms, dead after 300 */

/* Buckets in no live node's set now (of nodes not stopped). */
static unsigned uncovered(void)
{
	unsigned n = 0;
	for (unsigned b = 0; b < 64; b++) {
		bool any = false;
		for (int i = 0; i < NODES; i++)
			any |= sim.n[i].r && !sim.n[i].frozen && sim_forwards(i, b);
		n += !any;
	}
	return n;
}

/* Three active-active nodes, every bucket held once. */
static void start3(uint32_t lease)
{
	sim.active_active = true;
	sim.lease_ms = lease;
	sim.delay_max = 20;             /* a frame takes 0-20 ms */
	sim.nnodes = 3;
	for (int i = 0; i < 3; i++)
		sim_start(i, true, true);
	sim_run(1500);
	assert_int_equal(uncovered(), 0);
	assert_int_equal(sim.overlaps, 0);
}

/* Run ms; the longest stretch (ms) in which some bucket was in no set. */
static unsigned run_gap(unsigned ms)
{
	unsigned gap = 0, cur = 0;
	for (unsigned t = 0; t < ms; t += 10) {
		sim_run(10);
		cur = uncovered() ? cur + 10 : 0;
		gap = cur > gap ? cur : gap;
	}
	return gap;
}

/* A daemon SIGKILLed: its set stays in its kernel until the lease runs
 * out; the survivors take its buckets only then — at the dead time, which
 * the default lease is made to fit in. */
static void test_crash(void **state)
{
	start3(LEASE);
	sim_stop(0);
	unsigned gap = run_gap(1500);
	assert_int_equal(sim.overlaps, 0);
	assert_int_equal(uncovered(), 0);
	print_message("crash: takeover gap %u ms (dead after 300 ms, lease %u ms)\n", gap, LEASE);
	assert_true(gap <= 300 + LEASE);
	sim.active_active = false;
}

/* A lease longer than the dead time: the survivors wait for it. */
static void test_crash_long_lease(void **state)
{
	start3(600);
	sim_stop(0);
	unsigned gap = run_gap(2000);
	assert_int_equal(sim.overlaps, 0);
	assert_int_equal(uncovered(), 0);
	print_message("crash, lease 600 ms: takeover gap %u ms\n", gap);
	assert_true(gap >= 600 && gap <= 600 + 100 + 200);
	sim.active_active = false;
}

static void test_crash_no_lease(void **state)
{
	start3(0);
	sim_stop(0);
	run_gap(1500);
	assert_true(sim.overlaps > 0);          /* its set stayed: held twice */
	sim.active_active = false;
}

/* A daemon SIGSTOPped past the dead time, then SIGCONTed: its set ran out
 * while it slept; the others took its buckets; it takes them back only
 * after they have said they let go.  And a stop shorter than the dead time
 * but longer than the lease: nobody took them, it takes them again. */
static void freeze(uint32_t lease, unsigned ms)
{
	start3(lease);
	sim.n[0].frozen = true;
	run_gap(ms);
	sim.n[0].frozen = false;
	/* thawed, it runs its timers first (its lease ran out), then reads
	 * the frames queued while it slept, oldest first, a moment later:
	 * reports made before the peers took its buckets, arriving after it
	 * wants them back */
	repl_poll(sim.n[0].r);
	sim.now += 1;
	sim_deliver();
	run_gap(1500);
	assert_int_equal(uncovered(), 0);
	if (lease) {
		struct repl_status st;
		repl_status(sim.n[0].r, &st);
		assert_true(st.buckets_held > 0);
		assert_int_equal(st.buckets_waiting, 0);
		assert_true(repl_stats(sim.n[0].r)->lease_lapses >= 1);
	}
}

static void test_freeze(void **state)
{
	freeze(LEASE, 1000);
	assert_int_equal(sim.overlaps, 0);
	sim.active_active = false;
}

static void test_freeze_short(void **state)
{
	freeze(LEASE, 250);
	assert_int_equal(sim.overlaps, 0);
	sim.active_active = false;
}

static void test_freeze_no_lease(void **state)
{
	freeze(0, 1000);
	assert_true(sim.overlaps > 0);
	sim.active_active = false;
}

/* A node that comes back (restarted after a crash), 20 times in a row:
 * it takes its buckets only after their holders let go of them. */
static void test_returns(void **state)
{
	start3(LEASE);
	for (int k = 0; k < 20; k++) {
		int i = k % 3;
		sim_stop(i);
		sim_run(700);
		sim_start(i, true, true);
		sim_run(1500);
		assert_int_equal(uncovered(), 0);
	}
	assert_int_equal(sim.overlaps, 0);
	sim.active_active = false;
}

/* Demote and promote, 10 times: out before the others take, in after they
 * let go.  The demoted node forwards nothing. */
static void test_demote_promote(void **state)
{
	start3(LEASE);
	for (int k = 0; k < 10; k++) {
		struct repl *r = sim.n[1].r;
		repl_demote(r);
		for (unsigned b = 0; b < 64; b++)
			assert_false(sim_forwards(1, b));
		sim_run(500);
		assert_int_equal(uncovered(), 0);
		repl_promote(r);
		sim_run(500);
		assert_int_equal(uncovered(), 0);
		assert_true(repl_stats(r)->buckets_gained > 0);
	}
	assert_int_equal(sim.overlaps, 0);
	sim.active_active = false;
}

/* Over CPG: node 1 cut off by a partition of the sync link.  corosync
 * tells both sides the membership changed and node 1 that it lost quorum
 * (`late` ms after the others hear it left); node 1 lets go of its
 * buckets, the others take them only after its lease — counted from when
 * it left — has run out.  Healed, node 1 takes its own back.  Without a
 * quorum provider node 1 stays quorate: then the buckets are held twice. */
static void partition(bool quorum, unsigned late)
{
	sim.membership = true;
	start3(LEASE);
	for (int i = 1; i < 3; i++) {
		sim.cut[0][i] = sim.cut[i][0] = true;
		sim_drop_in_flight(0, i);
		sim_drop_in_flight(i, 0);
		repl_member(sim.n[i].r, 1, false);
	}
	repl_member(sim.n[0].r, 2, false);
	repl_member(sim.n[0].r, 3, false);
	sim_run(late);
	if (quorum)
		repl_quorum(sim.n[0].r, false);
	unsigned gap = run_gap(1500);
	print_message("partition (quorum %s, told %u ms late): longest gap %u ms, overlaps %u\n",
		      quorum ? "on" : "off", late, gap, sim.overlaps);
	struct repl_status st;
	repl_status(sim.n[0].r, &st);
	if (quorum)
		assert_int_equal(st.buckets_held, 0);
	for (int i = 1; i < 3; i++) {
		sim.cut[0][i] = sim.cut[i][0] = false;
		repl_member(sim.n[i].r, 1, true);
	}
	repl_member(sim.n[0].r, 2, true);
	repl_member(sim.n[0].r, 3, true);
	if (quorum)
		repl_quorum(sim.n[0].r, true);
	sim_run(2000);
	assert_int_equal(uncovered(), 0);
	repl_status(sim.n[0].r, &st);
	assert_true(st.buckets_held > 0);
	sim.membership = false;
	sim.active_active = false;
}

static void test_partition_cpg(void **state)
{
	partition(true, 0);
	assert_int_equal(sim.overlaps, 0);
}

static void test_partition_cpg_late(void **state)
{
	partition(true, 150);
	assert_int_equal(sim.overlaps, 0);
}

static void test_partition_no_quorum(void **state)
{
	partition(false, 0);
	assert_true(sim.overlaps > 0);
}

/* Over UDP, quorum by majority: node 1 cut off — both ways, or only what
 * it sends (it hears everyone, nobody hears it).  It loses contact with a
 * majority and lets go; its set runs out at the latest a fresh window and
 * a lease after its last contact, and the others take its buckets only
 * after that.  Healed, it takes its own back.  Without the quorum the cut
 * node forwards on beside those that took its buckets. */
static void partition_udp(bool quorum, bool oneway)
{
	sim.quorum_majority = quorum;
	start3(LEASE);
	for (int i = 1; i < 3; i++) {
		sim.cut[0][i] = true;
		if (!oneway)
			sim.cut[i][0] = true;
	}
	unsigned gap = run_gap(2500);
	print_message("UDP partition (%s%s): longest gap %u ms, overlaps %u\n",
		      quorum ? "majority" : "no quorum", oneway ? ", one way" : "", gap, sim.overlaps);
	struct repl_status st;
	repl_status(sim.n[0].r, &st);
	if (quorum) {
		assert_int_equal(st.quorum, 0);
		assert_int_equal(st.buckets_held, 0);
		assert_int_equal(uncovered(), 0);
	}
	for (int i = 1; i < 3; i++)
		sim.cut[0][i] = sim.cut[i][0] = false;
	sim_run(2500);
	assert_int_equal(uncovered(), 0);
	repl_status(sim.n[0].r, &st);
	assert_true(st.buckets_held > 0);
	if (quorum)
		assert_int_equal(st.quorum, 1);
	sim.quorum_majority = false;
	sim.active_active = false;
}

static void test_partition_udp(void **state)
{
	partition_udp(true, false);
	assert_int_equal(sim.overlaps, 0);
}

static void test_partition_udp_oneway(void **state)
{
	partition_udp(true, true);
	assert_int_equal(sim.overlaps, 0);
}

static void test_partition_udp_no_quorum(void **state)
{
	partition_udp(false, false);
	assert_true(sim.overlaps > 0);
}

/* The same with a dead time much longer than the lease (10 heartbeats,
 * lease 2): the others find the cut node dead only after 1 s, and it
 * loses quorum before that (its contact is dated earlier than their last
 * frame of it).  That quorum loss is what this test sees: with the
 * renewal gate (quorum_fresh) switched off it passes too, since contact
 * lost always costs the quorum before the others may take — the gate is
 * a second line, proven by no test. */
static void test_partition_udp_long_dead(void **state)
{
	sim.dead_after = 10;
	partition_udp(true, false);
	assert_int_equal(sim.overlaps, 0);
	sim.dead_after = 0;
}

/* Nodes 1 and 3 cannot hear each other; node 2 hears both.  Each of 1 and
 * 3 is quorate with node 2 and finds the other dead, but node 2 still
 * hears it: neither takes the other's buckets (each would, by its own
 * count of the votes, and both would forward them). */
static void test_partition_udp_not_transitive(void **state)
{
	sim.quorum_majority = true;
	start3(LEASE);
	sim.cut[0][2] = sim.cut[2][0] = true;
	unsigned gap = run_gap(3000);
	print_message("UDP, 1 and 3 apart, 2 hears both: longest gap %u ms, overlaps %u\n",
		      gap, sim.overlaps);
	assert_int_equal(sim.overlaps, 0);
	assert_int_equal(uncovered(), 0);
	sim.cut[0][2] = sim.cut[2][0] = false;
	sim_run(2000);
	assert_int_equal(uncovered(), 0);
	assert_int_equal(sim.overlaps, 0);
	sim.quorum_majority = false;
	sim.active_active = false;
}

/* By majority a crashed node's buckets are taken a fresh window later than
 * without (it might have been cut off, renewing on). */
static void test_crash_udp(void **state)
{
	sim.quorum_majority = true;
	start3(LEASE);
	sim_stop(0);
	unsigned gap = run_gap(2000);
	print_message("crash, quorum by majority: takeover gap %u ms\n", gap);
	assert_int_equal(sim.overlaps, 0);
	assert_int_equal(uncovered(), 0);
	assert_true(gap <= 300 + 300 + LEASE + 100);
	sim.quorum_majority = false;
	sim.active_active = false;
}

int main(void)
{
	log_init(LOG_LVL_ERROR, false, "test");
	const struct CMUnitTest tests[] = {
		SIM_TEST(test_crash),
		SIM_TEST(test_crash_long_lease),
		SIM_TEST(test_crash_no_lease),
		SIM_TEST(test_freeze),
		SIM_TEST(test_freeze_short),
		SIM_TEST(test_freeze_no_lease),
		SIM_TEST(test_returns),
		SIM_TEST(test_demote_promote),
		SIM_TEST(test_partition_cpg),
		SIM_TEST(test_partition_cpg_late),
		SIM_TEST(test_partition_no_quorum),
		SIM_TEST(test_partition_udp),
		SIM_TEST(test_partition_udp_oneway),
		SIM_TEST(test_partition_udp_no_quorum),
		SIM_TEST(test_partition_udp_long_dead),
		SIM_TEST(test_partition_udp_not_transitive),
		SIM_TEST(test_crash_udp),
	};
	if (getenv("TEST"))             /* one test: TEST=test_freeze */
		cmocka_set_test_filter(getenv("TEST"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
