/* Flow table: lookup by key, owner accounting and digests, growth. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include <linux/netfilter/nf_conntrack_common.h>

#include "sync/natuse.h"
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

/* A flow from client i through SNAT to 203.0.113.1:pub, to dst:dport. */
static struct ct snat(uint32_t i, uint8_t l4, uint32_t dst, uint16_t dport, uint16_t pub)
{
	struct ct c = { .l3 = AF_INET, .l4 = l4, .has = CT_HAS_STATUS | CT_HAS_REPLY,
			.status = IPS_SRC_NAT | IPS_CONFIRMED };
	c.orig.src.ip4 = htonl(0xc6336400u | i);                /* 198.51.100.i */
	c.orig.dst.ip4 = htonl(dst);
	c.orig.sport = htons(40000);
	c.orig.dport = htons(dport);
	c.reply.src = c.orig.dst;
	c.reply.dst.ip4 = htonl(0xcb007101u);                   /* 203.0.113.1 */
	c.reply.sport = c.orig.dport;
	c.reply.dport = htons(pub);
	if (l4 == IPPROTO_ICMP) {                               /* the id: sport */
		c.orig.sport = htons(7);
		c.reply.sport = htons(pub);
		c.orig.dport = c.reply.dport = 0;
	}
	return c;
}

/* Flows mapped into a NAT block are counted by block and destination as
 * they enter and leave; a block full towards one destination is said. */
static void test_natuse(void **state)
{
	struct natuse_cfg cfg = { .naddr = 1, .lo = 20000, .size = 3, .blocks = 4 };
	cfg.addr[0].l3 = AF_INET;
	cfg.addr[0].a.ip4 = htonl(0xcb007101u);
	struct table *t = table_new();
	struct natuse *n = natuse_new(&cfg);
	struct natuse_block b;
	const char *dst = NULL;
	struct flow *f[4];
	const uint32_t srv = 0xcb00710au, other = 0xcb00710bu;  /* .10, .11 */

	table_set_natuse(t, n);
	/* block 1 (20000-20002) towards 203.0.113.10:8090, until full */
	for (uint32_t i = 0; i < 3; i++) {
		struct ct c = snat(10 + i, IPPROTO_TCP, srv, 8090, (uint16_t)(20000 + i));
		f[i] = table_add(t, &c, 1);
		assert_true(f[i]->nat);
	}
	assert_int_equal(natuse_fulls(n, 1, &dst), 1);
	assert_string_equal(dst, "tcp 203.0.113.10:8090");
	natuse_block(n, 1, &b);
	assert_int_equal(b.flows, 3);
	assert_int_equal(b.busiest, 3);
	/* another destination, another protocol: not that one's count */
	struct ct u = snat(20, IPPROTO_UDP, srv, 8090, 20001);
	struct ct o = snat(21, IPPROTO_TCP, other, 8090, 20001);
	struct flow *fu = table_add(t, &u, 1), *fo = table_add(t, &o, 1);
	natuse_block(n, 1, &b);
	assert_int_equal(b.flows, 5);
	assert_int_equal(b.busiest, 3);
	assert_int_equal(natuse_fulls(n, 1, &dst), 1);
	/* an echo id in block 2 (20003-20005) */
	struct ct e = snat(22, IPPROTO_ICMP, srv, 0, 20004);
	f[3] = table_add(t, &e, 2);
	natuse_block(n, 2, &b);
	assert_int_equal(b.flows, 1);
	/* not counted: no NAT, another address, a port outside every block */
	struct ct plain = snat(23, IPPROTO_TCP, srv, 8090, 20002);
	plain.status = IPS_CONFIRMED;
	struct ct elsewhere = snat(24, IPPROTO_TCP, srv, 8090, 20002);
	elsewhere.reply.dst.ip4 = htonl(0xcb007102u);
	struct ct outside = snat(25, IPPROTO_TCP, srv, 8090, 20012);  /* 4 * 3 from 20000 */
	assert_false(table_add(t, &plain, 1)->nat);
	assert_false(table_add(t, &elsewhere, 1)->nat);
	assert_false(table_add(t, &outside, 1)->nat);
	/* leaving: the counts go down, the busiest with them */
	table_remove(t, f[0]);
	table_flow_free(f[0]);
	table_remove(t, fu);
	table_flow_free(fu);
	natuse_block(n, 1, &b);
	assert_int_equal(b.flows, 3);
	assert_int_equal(b.busiest, 2);
	table_remove(t, fo);
	table_flow_free(fo);
	table_remove(t, f[3]);
	table_flow_free(f[3]);
	natuse_block(n, 1, &b);
	assert_int_equal(b.flows, 2);
	natuse_block(n, 2, &b);
	assert_int_equal(b.flows, 0);
	/* a TCP flow closing (TIME_WAIT) no longer holds its port: the kernel
	 * hands it to a new connection that needs it */
	struct ct tw = snat(11, IPPROTO_TCP, srv, 8090, 20001);
	tw.has |= CT_HAS_TCP;
	tw.tcp.state = 7;                                       /* TIME_WAIT */
	table_flow_set(t, f[1], &tw);
	assert_false(f[1]->nat);
	natuse_block(n, 1, &b);
	assert_int_equal(b.flows, 1);
	table_remove(t, f[1]);                                  /* not counted out twice */
	table_flow_free(f[1]);
	natuse_block(n, 1, &b);
	assert_int_equal(b.flows, 1);
	tw.tcp.state = 3;                                       /* (and back: counted) */
	struct flow *fe = table_add(t, &tw, 1);
	natuse_block(n, 1, &b);
	assert_int_equal(b.flows, 2);
	table_remove(t, fe);
	table_flow_free(fe);
	/* full again: counted again */
	struct ct again = snat(30, IPPROTO_TCP, srv, 8090, 20000);
	table_add(t, &again, 1);
	assert_int_equal(natuse_fulls(n, 1, &dst), 1);         /* 2 of 3 */
	again = snat(31, IPPROTO_TCP, srv, 8090, 20001);
	table_add(t, &again, 1);
	assert_int_equal(natuse_fulls(n, 1, &dst), 2);
	natuse_block(n, 9, &b);                                 /* no such block */
	assert_int_equal(b.flows, 0);
	table_free(t);                                          /* frees n too */
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
		struct ct got;
		flow_get(f, &got);
		assert_true(ct_key_equal(&got, &c));
	}
	size_t seen = 0;
	table_foreach(t, count, &seen);
	assert_int_equal(seen, n);
	assert_int_equal(table_owner(t, 1).flows, n);
	table_free(t);
}

/* The packed form gives back exactly what was stored, for both families,
 * with and without the optional parts; dropping them frees them. */
static void test_packing(void **state)
{
	struct table *t = table_new();
	struct ct v4 = mk(7), v6 = { .l3 = AF_INET6, .l4 = IPPROTO_TCP, .zone = 3 }, got;

	v4.has = CT_HAS_REPLY | CT_HAS_STATUS | CT_HAS_TIMEOUT | CT_HAS_MARK;
	v4.reply.src = v4.orig.dst;
	v4.reply.dst.ip4 = htonl(0xcb007101u);
	v4.reply.sport = v4.orig.dport;
	v4.reply.dport = htons(40000);
	v4.status = 0x19e;
	v4.timeout = 120;
	v4.mark = 0xdeadbeef;
	inet_pton(AF_INET6, "2001:db8::1", v6.orig.src.ip6);
	inet_pton(AF_INET6, "2001:db8:1::2", v6.orig.dst.ip6);
	v6.orig.sport = htons(40001);
	v6.orig.dport = htons(21);
	v6.reply.src = v6.orig.dst;
	v6.reply.dst = v6.orig.src;
	v6.reply.sport = v6.orig.dport;
	v6.reply.dport = v6.orig.sport;
	v6.has = CT_HAS_REPLY | CT_HAS_STATUS | CT_HAS_TCP | CT_HAS_HELPER | CT_HAS_SEQADJ_O |
		 CT_HAS_LABELS | CT_HAS_SECMARK;
	v6.tcp.state = 3;
	v6.tcp.wscale[0] = 7;
	v6.tcp.wscale[1] = 9;
	v6.tcp.flags[0] = 0x23;
	v6.tcp.flags[1] = 0x22;
	strcpy(v6.helper, "ftp");
	v6.seqadj[0].pos = 1000;
	v6.seqadj[0].before = 1;
	v6.seqadj[0].after = 4;
	v6.labels[15] = 0x80;
	v6.secmark = 9;

	/* 88 bytes for IPv4: a 96-byte malloc chunk (RSS target of issue 7) */
	assert_true(offsetof(struct flow, tuples) + 2 * 14 <= 88);
	struct flow *f4 = table_add(t, &v4, 1), *f6 = table_add(t, &v6, 2);
	assert_non_null(f4);
	assert_non_null(f6);
	assert_null(f4->ext);
	assert_non_null(f6->ext);
	flow_get(f4, &got);
	assert_memory_equal(&got, &v4, sizeof(got));
	flow_get(f6, &got);
	assert_memory_equal(&got, &v6, sizeof(got));
	assert_true(flow_key_equal(f6, &v6));
	assert_false(flow_key_equal(f6, &v4));
	/* a new state: another reply tuple, no helper any more */
	struct ct v6b = v6;
	v6b.reply.dport = htons(50000);
	memset(v6b.helper, 0, sizeof(v6b.helper));
	memset(v6b.seqadj, 0, sizeof(v6b.seqadj));
	memset(v6b.labels, 0, sizeof(v6b.labels));
	v6b.secmark = 0;
	assert_int_equal(flow_set(f6, &v6b), 0);
	assert_null(f6->ext);
	flow_get(f6, &got);
	assert_memory_equal(&got, &v6b, sizeof(got));
	assert_ptr_equal(table_find(t, &v6b), f6);
	table_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_find_remove),
		cmocka_unit_test(test_owner_digest),
		cmocka_unit_test(test_growth),
		cmocka_unit_test(test_packing),
		cmocka_unit_test(test_natuse),
	};
	return cmocka_run_group_tests_name("table", tests, NULL, NULL);
}
