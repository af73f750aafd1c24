/* The sender's ring of sent frames and the receiver's reorder buffer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sync/reorder.h"
#include "sync/ring.h"

static void test_ring_bytes_bound(void **state)
{
	struct ring *r = ring_new(1000);
	uint8_t f[300];
	size_t len;

	for (uint32_t s = 1; s <= 10; s++) {
		memset(f, (int)s, sizeof(f));
		assert_int_equal(ring_put(r, s, f, sizeof(f)), 0);
	}
	/* 1000 bytes hold three frames of 300: the newest */
	assert_int_equal(ring_frames(r), 3);
	assert_true(ring_bytes(r) <= 1000);
	assert_null(ring_get(r, 7, &len));
	for (uint32_t s = 8; s <= 10; s++) {
		const uint8_t *g = ring_get(r, s, &len);
		assert_non_null(g);
		assert_int_equal(len, 300);
		assert_int_equal(g[0], s);
	}
	assert_null(ring_get(r, 11, &len));
	/* a jump in sequence (a new epoch) starts over */
	assert_int_equal(ring_put(r, 100, f, 10), 0);
	assert_int_equal(ring_frames(r), 1);
	assert_null(ring_get(r, 10, &len));
	/* a frame larger than the ring is refused, not half kept */
	uint8_t big[2000] = { 0 };
	assert_int_equal(ring_put(r, 101, big, sizeof(big)), -ENOSPC);
	ring_free(r);
}

static void test_ring_wraps_sequence(void **state)
{
	struct ring *r = ring_new(1 << 20);
	uint8_t f[8] = { 0 };
	size_t len;

	for (uint32_t s = UINT32_MAX - 5; s != 5; s++)
		assert_int_equal(ring_put(r, s, f, sizeof(f)), 0);
	assert_non_null(ring_get(r, UINT32_MAX, &len));
	assert_non_null(ring_get(r, 0, &len));
	assert_non_null(ring_get(r, 4, &len));
	assert_null(ring_get(r, 5, &len));
	ring_free(r);
}

static void test_reorder_holes(void **state)
{
	struct reorder *o = reorder_new(64, 1 << 20);
	uint8_t f[4] = { 1, 2, 3, 4 };
	struct nack_info n;

	/* expecting 10; 12, 13 and 17 arrived */
	assert_int_equal(reorder_put(o, 10, 12, f, 4), 0);
	assert_int_equal(reorder_put(o, 10, 13, f, 4), 0);
	assert_int_equal(reorder_put(o, 10, 17, f, 4), 0);
	assert_int_equal(reorder_put(o, 10, 13, f, 4), 1);     /* duplicate */
	assert_int_equal(reorder_count(o), 3);
	assert_int_equal(reorder_lowest(o, 10), 12);
	assert_int_equal(reorder_highest(o), 17);
	reorder_holes(o, 10, 20, &n);
	assert_int_equal(n.nranges, 3);
	assert_int_equal(n.range[0].first, 10);
	assert_int_equal(n.range[0].last, 11);
	assert_int_equal(n.range[1].first, 14);
	assert_int_equal(n.range[1].last, 16);
	assert_int_equal(n.range[2].first, 18);
	assert_int_equal(n.range[2].last, 20);
	/* beyond the window: one range, no walk over it */
	reorder_holes(o, 10, 1000000, &n);
	assert_int_equal(n.range[n.nranges - 1].last, 1000000);
	/* too far ahead to hold */
	assert_int_equal(reorder_put(o, 10, 10 + 64, f, 4), -ERANGE);
	size_t len;
	uint8_t *t = reorder_take(o, 12, &len);
	assert_non_null(t);
	assert_int_equal(len, 4);
	assert_memory_equal(t, f, 4);
	free(t);
	assert_null(reorder_take(o, 12, &len));
	assert_int_equal(reorder_count(o), 2);
	reorder_free(o);
}

static void test_reorder_byte_bound(void **state)
{
	struct reorder *o = reorder_new(1024, 100);
	uint8_t f[40] = { 0 };

	assert_int_equal(reorder_put(o, 1, 2, f, 40), 0);
	assert_int_equal(reorder_put(o, 1, 3, f, 40), 0);
	assert_int_equal(reorder_put(o, 1, 4, f, 40), -ERANGE);
	reorder_clear(o);
	assert_int_equal(reorder_count(o), 0);
	assert_int_equal(reorder_put(o, 1, 4, f, 40), 0);
	reorder_free(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ring_bytes_bound),
		cmocka_unit_test(test_ring_wraps_sequence),
		cmocka_unit_test(test_reorder_holes),
		cmocka_unit_test(test_reorder_byte_bound),
	};
	return cmocka_run_group_tests_name("buffers", tests, NULL, NULL);
}
