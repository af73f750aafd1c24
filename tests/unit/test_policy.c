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
	policy_member(&p, 1, true, true, 1);
	assert_int_equal(policy_rightful(&p), 1);
	/* a claim seen at 7 (a takeover elsewhere): promotion goes above it */
	policy_seen(&p, 7);
	assert_int_equal(policy_promote(&p), 8);
	assert_true(policy_primary(&p));
	assert_int_equal(policy_rightful(&p), 2);
	/* the other is promoted later, at a newer term: we are superseded */
	policy_member(&p, 1, true, true, 9);
	assert_int_equal(policy_rightful(&p), 1);
	/* it dies: we are the rightful one again */
	policy_member_down(&p, 1);
	assert_int_equal(policy_rightful(&p), 2);
	/* same term, lower id wins */
	policy_member(&p, 1, true, true, 8);
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
	assert_true(policy_adopt(&p, cur, false));
	/* a live owner's: only the rightful primary */
	policy_member(&p, 1, true, true, 5);
	assert_false(policy_adopt(&p, cur, true));              /* 1 is newer */
	policy_member(&p, 1, true, false, 5);
	assert_true(policy_adopt(&p, cur, true));               /* 1 is a backup now */
	policy_demote(&p);
	assert_false(policy_adopt(&p, cur, true));              /* a backup never */
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compare),
		cmocka_unit_test(test_terms_and_rightful),
		cmocka_unit_test(test_adopt_and_take),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
