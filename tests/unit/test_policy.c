/* Ownership policy (policy.h): claim order, terms, the rightful primary,
 * adoption and takeover generations. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "sync/policy.h"

static void test_compare(void **state)
{
	static const struct { struct claim a, b; int want; } v[] = {
		{ { 2, 5 }, { 1, 1 }, 1 },      /* newer generation wins */
		{ { 1, 1 }, { 2, 5 }, -1 },
		{ { 3, 1 }, { 3, 2 }, 1 },      /* same generation: lower id */
		{ { 3, 2 }, { 3, 1 }, -1 },
		{ { 3, 2 }, { 3, 2 }, 0 },
		{ { 0, 7 }, { 0, 9 }, 1 },
		{ { UINT32_MAX, 9 }, { 0, 1 }, 1 },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		assert_int_equal(policy_compare(v[i].a, v[i].b), v[i].want);
}

static void test_terms_and_rightful(void **state)
{
	struct policy p;

	policy_init(&p, 2, false);
	assert_int_equal(policy_term(&p), 0);
	assert_int_equal(policy_rightful(&p), 0);               /* nobody primary */
	policy_member(&p, 1, true, true, 1, false);
	assert_int_equal(policy_rightful(&p), 1);
	/* a claim seen at 7 (a takeover elsewhere): promotion goes above it */
	policy_seen(&p, 7);
	assert_int_equal(policy_promote(&p), 8);
	assert_true(policy_primary(&p));
	assert_int_equal(policy_rightful(&p), 2);
	/* the other is promoted later, at a newer term: we are superseded */
	policy_member(&p, 1, true, true, 9, false);
	assert_int_equal(policy_rightful(&p), 1);
	/* it dies: we are the rightful one again */
	policy_member_down(&p, 1);
	assert_int_equal(policy_rightful(&p), 2);
	/* same term, lower id wins */
	policy_member(&p, 1, true, true, 8, false);
	assert_int_equal(policy_rightful(&p), 1);
	policy_demote(&p);
	assert_false(policy_primary(&p));
	assert_int_equal(policy_term(&p), 8);                   /* a term is kept */
}

static void test_adopt_and_take(void **state)
{
	struct policy p;
	struct claim cur = { 4, 1 };

	policy_init(&p, 3, true);
	/* a dead (or unknown) owner's flow: anyone takes it */
	assert_true(policy_adopt(&p, cur, false, 0));
	/* a live owner's: only the rightful primary */
	policy_member(&p, 1, true, true, 5, false);
	assert_false(policy_adopt(&p, cur, true, 0));              /* 1 is newer */
	policy_member(&p, 1, true, false, 5, false);
	assert_true(policy_adopt(&p, cur, true, 0));               /* 1 is a backup now */
	policy_demote(&p);
	assert_false(policy_adopt(&p, cur, true, 0));              /* a backup never */
	/* a takeover beats the claim it replaces, the term stays */
	uint32_t term = policy_term(&p);
	uint32_t g = policy_take(&p, 4);
	assert_true(policy_compare((struct claim){ g, 3 }, cur) > 0);
	assert_int_equal(policy_term(&p), term);
	assert_int_equal(policy_take(&p, 0), term);             /* older: at the term */
	/* orphans at the end of start-up: the primary's */
	assert_false(policy_takes_orphans(&p));
	policy_promote(&p);
	assert_true(policy_takes_orphans(&p));
	assert_true(policy_term(&p) > g);                       /* above every claim seen */
}

/* ---- active-active ----------------------------------------------------------- */

static unsigned count_owned(const struct policy *p, uint32_t id)
{
	unsigned n = 0;
	for (unsigned b = 0; b < p->nbuckets; b++)
		n += policy_bucket_owner(p, b) == id;
	return n;
}

/* Three nodes (1, 2, 3) as node `self` sees them, every one holding. */
static void aa_three(struct policy *p, uint32_t self)
{
	uint32_t peers[2], n = 0;

	for (uint32_t id = 1; id <= 3; id++)
		if (id != self)
			peers[n++] = id;
	policy_init(p, self, true);
	policy_active_active(p, 64, peers, 2);
	for (unsigned i = 0; i < 2; i++)
		policy_member(p, peers[i], true, true, 1, true);
	policy_ready(p);
}

static void test_aa_split(void **state)
{
	struct policy p[3];

	for (uint32_t i = 0; i < 3; i++)
		aa_three(&p[i], i + 1);
	/* every node computes the same map, every bucket owned, 22/21/21 */
	for (unsigned b = 0; b < 64; b++) {
		assert_int_not_equal(policy_bucket_owner(&p[0], b), 0);
		assert_int_equal(policy_bucket_owner(&p[0], b), policy_bucket_owner(&p[1], b));
		assert_int_equal(policy_bucket_owner(&p[0], b), policy_bucket_owner(&p[2], b));
	}
	assert_int_equal(count_owned(&p[0], 1), 22);
	assert_int_equal(count_owned(&p[0], 2), 21);
	assert_int_equal(count_owned(&p[0], 3), 21);
	assert_true(policy_holds(&p[0]));
	assert_int_equal(policy_rightful(&p[0]), 0);            /* no single primary */
}

static void test_aa_death_and_return(void **state)
{
	struct policy p;
	uint32_t before[64];

	aa_three(&p, 2);
	for (unsigned b = 0; b < 64; b++)
		before[b] = policy_bucket_owner(&p, b);
	uint32_t gen = policy_map_gen(&p);
	/* node 1 dies: only its buckets move, half to each survivor */
	policy_member_down(&p, 1);
	assert_int_not_equal(policy_map_gen(&p), gen);
	unsigned to2 = 0, to3 = 0;
	for (unsigned b = 0; b < 64; b++) {
		uint32_t o = policy_bucket_owner(&p, b);
		if (before[b] != 1) {
			assert_int_equal(o, before[b]);
			continue;
		}
		to2 += o == 2;
		to3 += o == 3;
	}
	assert_int_equal(to2, 11);
	assert_int_equal(to3, 11);
	/* it comes back but is not ready yet: it holds nothing */
	gen = policy_map_gen(&p);
	policy_member(&p, 1, true, true, 1, false);
	assert_int_equal(policy_map_gen(&p), gen);
	assert_int_equal(count_owned(&p, 1), 0);
	/* once it says it holds buckets, exactly its own come back */
	policy_member(&p, 1, true, true, 1, true);
	for (unsigned b = 0; b < 64; b++)
		assert_int_equal(policy_bucket_owner(&p, b), before[b]);
	/* a heartbeat that changes nothing does not move the map */
	gen = policy_map_gen(&p);
	policy_member(&p, 1, true, true, 1, true);
	assert_int_equal(policy_map_gen(&p), gen);
}

static void test_aa_drain_and_adopt(void **state)
{
	struct policy p;
	struct claim cur = { 1, 3 };

	aa_three(&p, 2);
	unsigned mine = 0, theirs = 0;
	while (policy_bucket_owner(&p, mine) != 2)
		mine++;
	while (policy_bucket_owner(&p, theirs) != 3)
		theirs++;
	/* traffic here on a flow of our bucket: ours, whoever owned it, even a
	 * live owner (its bucket came back home); on another bucket: never,
	 * even when its owner is dead (the bucket's owner takes it) */
	assert_true(policy_adopt(&p, cur, true, mine));
	assert_false(policy_adopt(&p, cur, true, theirs));
	assert_false(policy_adopt(&p, cur, false, theirs));
	assert_true(policy_should_own(&p, mine));
	assert_false(policy_should_own(&p, theirs));
	/* demote drains this node: the others hold every bucket */
	policy_demote(&p);
	assert_false(policy_holds(&p));
	assert_int_equal(count_owned(&p, 2), 0);
	assert_int_equal(count_owned(&p, 1) + count_owned(&p, 3), 64);
	assert_false(policy_adopt(&p, cur, true, mine));
	/* promote brings it back */
	policy_promote(&p);
	assert_int_equal(policy_bucket_owner(&p, mine), 2);
}

static void test_aa_start(void **state)
{
	struct policy p;
	uint32_t peers[] = { 3, 1 };

	policy_init(&p, 2, true);
	policy_active_active(&p, 64, peers, 2);
	/* nobody holds anything yet: nobody forwards */
	assert_int_equal(count_owned(&p, 0), 64);
	assert_false(policy_holds(&p));
	/* the peers are up; we are not ready: they split everything */
	policy_member(&p, 1, true, true, 1, true);
	policy_member(&p, 3, true, true, 1, true);
	assert_int_equal(count_owned(&p, 2), 0);
	/* orphans found in our kernel at start: those of our home buckets are
	 * ours (our kernel kept forwarding them while the daemon restarted) */
	unsigned home = 0;
	for (unsigned b = 0; b < 64; b++)
		home += policy_takes_orphan(&p, b);
	assert_int_equal(home, 21);
	assert_true(policy_takes_orphans(&p));
	policy_ready(&p);
	assert_int_equal(count_owned(&p, 2), 21);
	for (unsigned b = 0; b < 64; b++)
		assert_int_equal(policy_takes_orphan(&p, b), policy_bucket_owner(&p, b) == 2);
	/* alone (both peers dead): every bucket */
	policy_member_down(&p, 1);
	policy_member_down(&p, 3);
	assert_int_equal(count_owned(&p, 2), 64);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compare),
		cmocka_unit_test(test_terms_and_rightful),
		cmocka_unit_test(test_adopt_and_take),
		cmocka_unit_test(test_aa_split),
		cmocka_unit_test(test_aa_death_and_return),
		cmocka_unit_test(test_aa_drain_and_adopt),
		cmocka_unit_test(test_aa_start),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
