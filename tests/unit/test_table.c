/* Flow table: lookup by key, owner accounting and digests, growth. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "sync/table.h"

static struct ct mk(uint32_t i)
{
	struct ct c = { .l3 = AF_INET, .l4 = IPPROTO_UDP };
	c.orig.src.ip4 = htonl(0xc6120000u | (i >> 16));        /* 198.18.x.x */
	c.orig.dst.ip4 = htonl(0xcb007100u | (i & 0xff));
	c.orig.sport = htons((uint16_t)i);
	c.orig.dport = htons(53);
	return c;
}

static void test_add_find_remove(void **state)
{
	struct table *t = table_new();
	struct ct a = mk(1), b = mk(2);

	assert_null(table_find(t, &a));
	struct flow *fa = table_add(t, &a, 1);
	assert_non_null(fa);
	assert_ptr_equal(table_find(t, &a), fa);
	assert_null(table_find(t, &b));
	b.zone = 0;
	struct ct a_zone = a;
	a_zone.zone = 5;                        /* another zone is another flow */
	assert_null(table_find(t, &a_zone));
	table_remove(t, fa);
	table_flow_free(fa);
	assert_null(table_find(t, &a));
	assert_int_equal(table_count(t), 0);
	table_free(t);
}

static void test_owner_digest(void **state)
{
	struct table *t = table_new();
	struct ct c[3] = { mk(10), mk(11), mk(12) };
	struct flow *f[3];

	for (int i = 0; i < 3; i++)
		f[i] = table_add(t, &c[i], 1);
	struct owner_stats o1 = table_owner(t, 1);
	assert_int_equal(o1.flows, 3);
	/* The same flows inserted in another order on another node digest alike. */
	struct table *u = table_new();
	for (int i = 2; i >= 0; i--)
		table_add(u, &c[i], 1);
	assert_true(table_owner(u, 1).digest == o1.digest);
	table_set_owner(t, f[1], 2);
	assert_int_equal(table_owner(t, 1).flows, 2);
	assert_int_equal(table_owner(t, 2).flows, 1);
	assert_true(table_owner(t, 2).digest == f[1]->khash);
	assert_true(table_owner(t, 1).digest + table_owner(t, 2).digest == o1.digest);
	table_remove(t, f[1]);
	table_flow_free(f[1]);
	assert_int_equal(table_owner(t, 2).flows, 0);
	assert_true(table_owner(t, 2).digest == 0);
	assert_int_equal(table_owner(t, 99).flows, 0);
	table_free(t);
	table_free(u);
}

static void count(void *arg, struct flow *f)
{
	(*(size_t *)arg)++;
}

static void test_growth(void **state)
{
	struct table *t = table_new();
	const uint32_t n = 100000;

	for (uint32_t i = 0; i < n; i++) {
		struct ct c = mk(i);
		assert_non_null(table_add(t, &c, 1));
	}
	assert_int_equal(table_count(t), n);
	for (uint32_t i = 0; i < n; i += 997) {
		struct ct c = mk(i);
		struct flow *f = table_find(t, &c);
		assert_non_null(f);
		assert_true(ct_key_equal(&f->ct, &c));
	}
	size_t seen = 0;
	table_foreach(t, count, &seen);
	assert_int_equal(seen, n);
	assert_int_equal(table_owner(t, 1).flows, n);
	table_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_find_remove),
		cmocka_unit_test(test_owner_digest),
		cmocka_unit_test(test_growth),
	};
	return cmocka_run_group_tests_name("table", tests, NULL, NULL);
}
