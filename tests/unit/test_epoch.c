/* A peer's epochs (epoch.h): the replay window, replaced epochs, challenge
 * pacing and cookies. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "sync/epoch.h"

static void test_replay_window(void **state)
{
	struct epoch e;

	memset(&e, 0, sizeof(e));
	assert_false(epoch_replayed(&e, 1000));
	assert_true(epoch_replayed(&e, 1000));          /* the same number again */
	assert_false(epoch_replayed(&e, 999));          /* older, inside the window */
	assert_true(epoch_replayed(&e, 999));
	assert_false(epoch_replayed(&e, 1000 + REPLAY_WINDOW * 3));     /* a jump */
	assert_true(epoch_replayed(&e, 1000));          /* now below the window */
	assert_false(epoch_replayed(&e, 1000 + REPLAY_WINDOW * 3 - 100));
	/* every number of a long run is taken once, in any order */
	for (uint64_t pn = 20000; pn < 30000; pn += 2)
		assert_false(epoch_replayed(&e, pn));
	for (uint64_t pn = 29999; pn > 27000; pn -= 2)
		assert_false(epoch_replayed(&e, pn));
	for (uint64_t pn = 27001; pn < 30000; pn++)
		assert_true(epoch_replayed(&e, pn));
	epoch_replay_reset(&e);
	assert_false(epoch_replayed(&e, 5));
}

static void test_retire(void **state)
{
	struct epoch e;

	memset(&e, 0, sizeof(e));
	assert_false(epoch_replaced(&e, 0x11));
	epoch_retire(&e, 0x11);
	assert_true(epoch_replaced(&e, 0x11));
	assert_false(epoch_replaced(&e, 0x22));
	/* only the last OLD_EPOCHS are remembered */
	for (uint32_t i = 0; i < OLD_EPOCHS; i++)
		epoch_retire(&e, 0x100 + i);
	assert_false(epoch_replaced(&e, 0x11));
	assert_true(epoch_replaced(&e, 0x100));
	/* retiring starts the packet numbers afresh */
	assert_false(epoch_replayed(&e, 7));
	epoch_retire(&e, 0x200);
	assert_false(epoch_replayed(&e, 7));
}

static void test_challenge_pacing(void **state)
{
	struct epoch e;

	memset(&e, 0, sizeof(e));
	assert_true(epoch_challenge_due(&e, 0xabc, 5000));
	assert_false(epoch_challenge_due(&e, 0xabc, 5000 + CHALLENGE_AGAIN_MS - 1));
	assert_true(epoch_challenge_due(&e, 0xdef, 5001));      /* another epoch */
	assert_true(epoch_challenge_due(&e, 0xabc, 5000 + CHALLENGE_AGAIN_MS));
	assert_true(epoch_may_respond(&e, 100));
	assert_false(epoch_may_respond(&e, 100 + RESPOND_AGAIN_MS - 1));
	assert_true(epoch_may_respond(&e, 100 + RESPOND_AGAIN_MS));
}

static void test_cookie(void **state)
{
	uint8_t secret[EPOCH_SECRET_LEN], other[EPOCH_SECRET_LEN], c[CHALLENGE_COOKIE_LEN];
	uint64_t t = 10 * COOKIE_BUCKET_MS + 3;

	memset(secret, 7, sizeof(secret));
	memset(other, 8, sizeof(other));
	epoch_cookie(secret, 1, 2, 0x1234, t, c);
	assert_true(epoch_cookie_ok(secret, 1, 2, 0x1234, t, c));
	assert_true(epoch_cookie_ok(secret, 1, 2, 0x1234, t + COOKIE_BUCKET_MS, c));
	assert_false(epoch_cookie_ok(secret, 1, 2, 0x1234, t + 2 * COOKIE_BUCKET_MS, c));
	assert_false(epoch_cookie_ok(secret, 1, 2, 0x1235, t, c));     /* another epoch */
	assert_false(epoch_cookie_ok(secret, 1, 3, 0x1234, t, c));     /* another node */
	assert_false(epoch_cookie_ok(secret, 4, 2, 0x1234, t, c));     /* another asker */
	assert_false(epoch_cookie_ok(other, 1, 2, 0x1234, t, c));      /* another secret */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replay_window),
		cmocka_unit_test(test_retire),
		cmocka_unit_test(test_challenge_pacing),
		cmocka_unit_test(test_cookie),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
