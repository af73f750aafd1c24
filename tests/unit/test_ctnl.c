/* ctnetlink codec: what ctnl_build() writes, ctnl_parse() reads back; NAT
 * entries are built with the pre-NAT reply tuple; malformed messages fail.
 * And batched injection into a real kernel table (a network namespace of
 * the test's own), with and without the sending thread. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_conntrack_tcp.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>

#include "kernel/ctnl.h"

static struct ct tcp4(void)
{
	struct ct c = { .l3 = AF_INET, .l4 = IPPROTO_TCP };
	inet_pton(AF_INET, "198.51.100.10", &c.orig.src);
	inet_pton(AF_INET, "203.0.113.10", &c.orig.dst);
	c.orig.sport = htons(40000);
	c.orig.dport = htons(80);
	ct_mirror(&c, &c.reply);
	c.status = IPS_CONFIRMED | IPS_SEEN_REPLY | IPS_ASSURED;
	c.timeout = 300;
	c.mark = 42;
	c.zone = 3;
	c.tcp.state = 3;
	c.tcp.wscale[0] = 7;
	c.tcp.wscale[1] = 8;
	c.tcp.flags[0] = 0x03;
	c.seqadj[0] = (struct ct_seqadj){ 100, 4, 8 };
	c.labels[1] = 0x40;
	c.has = CT_HAS_REPLY | CT_HAS_STATUS | CT_HAS_TIMEOUT | CT_HAS_MARK | CT_HAS_TCP |
		CT_HAS_SEQADJ_O | CT_HAS_LABELS;
	return c;
}

static void test_build_parse(void **state)
{
	char buf[CTNL_MSG_MAX];
	struct ct c = tcp4(), out;

	size_t len = ctnl_build(buf, CTNL_OP_UPDATE, &c, true, 7);
	assert_true(len > 0 && len <= CTNL_MSG_MAX);
	assert_int_equal(ctnl_parse(buf, len, &out), 0);
	assert_true(ct_key_equal(&c, &out));
	assert_memory_equal(&c.reply, &out.reply, sizeof(c.reply));
	assert_int_equal(out.timeout, 300);
	assert_int_equal(out.mark, 42);
	assert_int_equal(out.zone, 3);
	assert_int_equal(out.tcp.state, 3);
	assert_int_equal(out.tcp.wscale[0], 7);
	assert_int_equal(out.tcp.wscale[1], 8);
	/* injected with BE_LIBERAL so that window tracking re-learns */
	assert_int_equal(out.tcp.flags[0], 0x03 | IP_CT_TCP_FLAG_BE_LIBERAL);
	assert_int_equal(out.seqadj[0].pos, 100);
	assert_int_equal(out.seqadj[0].after, 8);
	assert_int_equal(out.labels[1], 0x40);
	assert_true(out.status & IPS_CONFIRMED);

	/* strict mode leaves the flags as they were */
	len = ctnl_build(buf, CTNL_OP_UPDATE, &c, false, 8);
	assert_int_equal(ctnl_parse(buf, len, &out), 0);
	assert_int_equal(out.tcp.flags[0], 0x03);

	/* a delete carries the key only */
	len = ctnl_build(buf, CTNL_OP_DELETE, &c, false, 9);
	assert_int_equal(ctnl_parse(buf, len, &out), 0);
	assert_true(ct_key_equal(&c, &out));
	assert_false(out.has & CT_HAS_TIMEOUT);
}

static void test_nat_create_uses_plain_reply(void **state)
{
	char buf[CTNL_MSG_MAX];
	struct ct c = tcp4(), out;

	inet_pton(AF_INET, "203.0.113.1", &c.reply.dst);
	c.reply.dport = htons(61000);
	c.status |= IPS_SRC_NAT;
	size_t len = ctnl_build(buf, CTNL_OP_CREATE, &c, true, 1);
	assert_int_equal(ctnl_parse(buf, len, &out), 0);
	/* the kernel must see a translation to set up: the reply we hand it
	 * is the mirror of the original tuple */
	struct ct_tuple m;
	ct_mirror(&c, &m);
	assert_memory_equal(&out.reply, &m, sizeof(m));
	/* an update never carries NAT (the kernel refuses to change it) */
	len = ctnl_build(buf, CTNL_OP_UPDATE, &c, true, 2);
	assert_int_equal(ctnl_parse(buf, len, &out), 0);
	assert_memory_equal(&out.reply, &c.reply, sizeof(c.reply));
	assert_false(out.status & IPS_SRC_NAT);
}

static void test_v6_icmp(void **state)
{
	char buf[CTNL_MSG_MAX];
	struct ct c = { .l3 = AF_INET6, .l4 = IPPROTO_ICMPV6 }, out;

	inet_pton(AF_INET6, "2001:db8:1::10", &c.orig.src);
	inet_pton(AF_INET6, "2001:db8:2::10", &c.orig.dst);
	c.orig.sport = htons(99);
	c.orig.icmp_type = 128;
	c.reply.src = c.orig.dst;
	c.reply.dst = c.orig.src;
	c.reply.sport = c.orig.sport;
	c.reply.icmp_type = 129;
	c.has = CT_HAS_REPLY | CT_HAS_TIMEOUT;
	c.timeout = 30;
	size_t len = ctnl_build(buf, CTNL_OP_CREATE, &c, true, 1);
	assert_int_equal(ctnl_parse(buf, len, &out), 0);
	assert_true(ct_key_equal(&c, &out));
	assert_int_equal(out.reply.icmp_type, 129);
}

static void test_expectation_build_parse(void **state)
{
	char buf[CTNL_MSG_MAX];
	struct exp e = { .l3 = AF_INET, .l4 = IPPROTO_TCP, .master_l4 = IPPROTO_TCP }, out;

	inet_pton(AF_INET, "198.51.100.10", &e.master.src);
	inet_pton(AF_INET, "203.0.113.10", &e.master.dst);
	e.master.sport = htons(40000);
	e.master.dport = htons(21);
	e.tuple = e.master;
	e.tuple.sport = 0;
	e.tuple.dport = htons(50000);
	memset(&e.mask.src, 0xff, 4);
	memset(&e.mask.dst, 0xff, 4);
	e.mask.dport = 0xffff;
	e.timeout = 300;
	e.flags = NF_CT_EXPECT_USERSPACE | NF_CT_EXPECT_PERMANENT;
	strcpy(e.helper, "ftp");
	strcpy(e.fn, "nat-follow-master");
	inet_pton(AF_INET, "203.0.113.1", &e.nat.src);
	e.nat_l4 = IPPROTO_TCP;
	e.has = EXP_HAS_NAT;
	size_t len = ctnl_exp_build(buf, CTNL_OP_CREATE, &e, 3);
	assert_int_equal(ctnl_exp_parse(buf, len, &out), 0);
	assert_true(exp_key_equal(&e, &out));
	assert_memory_equal(&out.master, &e.master, sizeof(e.master));
	assert_memory_equal(&out.mask, &e.mask, sizeof(e.mask));
	assert_int_equal(out.timeout, 300);
	/* the kernel sets USERSPACE itself and refuses it from us */
	assert_int_equal(out.flags, NF_CT_EXPECT_PERMANENT);
	assert_string_equal(out.helper, "ftp");
	assert_string_equal(out.fn, "nat-follow-master");
	assert_true(out.has & EXP_HAS_NAT);
	assert_memory_equal(&out.nat.src, &e.nat.src, 4);
	len = ctnl_exp_build(buf, CTNL_OP_DELETE, &e, 4);
	/* a delete names the expected tuple only: no master, which parse wants */
	assert_int_equal(ctnl_exp_parse(buf, len, &out), -EINVAL);
}

static void test_malformed(void **state)
{
	char buf[CTNL_MSG_MAX];
	struct ct c = tcp4(), out;
	size_t len = ctnl_build(buf, CTNL_OP_UPDATE, &c, true, 7);

	for (size_t n = 0; n < len; n += 4) {
		char *t = malloc(n ? n : 1);
		memcpy(t, buf, n);
		/* a message shorter than it says is refused */
		assert_int_equal(ctnl_parse(t, n, &out), -EINVAL);
		free(t);
	}
}

/* Our attribute walk: an attribute that claims more than its parent holds,
 * or less than its own header, fails the message; a fixed-size attribute
 * of another size fails it; an unknown type is skipped. */
static void test_malformed_attributes(void **state)
{
	char buf[CTNL_MSG_MAX + 64];
	struct ct c = tcp4(), out;
	const size_t hdr = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg));

	size_t len = ctnl_build(buf, CTNL_OP_UPDATE, &c, true, 7);
	struct nlmsghdr *nlh = (struct nlmsghdr *)buf;
	uint32_t v = 0;
	mnl_attr_put(nlh, CTA_MAX + 5, sizeof(v), &v);         /* unknown: skipped */
	assert_int_equal(ctnl_parse(buf, nlh->nlmsg_len, &out), 0);
	assert_memory_equal(&out.orig, &c.orig, sizeof(c.orig));
	assert_int_equal(out.mark, c.mark);

	struct nlattr *first = (struct nlattr *)(buf + hdr);     /* CTA_TUPLE_ORIG */
	len = ctnl_build(buf, CTNL_OP_UPDATE, &c, true, 7);
	first->nla_len = (uint16_t)(len - hdr + 4);              /* past the message */
	/* in a block of exactly the message's size: a read past it is an error
	 * valgrind (make check) and ASan (SANITIZE=1) report */
	char *exact = malloc(len);
	memcpy(exact, buf, len);
	assert_int_equal(ctnl_parse(exact, len, &out), -EINVAL);
	free(exact);
	len = ctnl_build(buf, CTNL_OP_UPDATE, &c, true, 7);
	first->nla_len = 2;                                      /* shorter than a header */
	assert_int_equal(ctnl_parse(buf, len, &out), -EINVAL);

	/* CTA_TUPLE_ORIG > CTA_TUPLE_IP > CTA_IP_V4_SRC: four bytes, claimed as three */
	len = ctnl_build(buf, CTNL_OP_UPDATE, &c, true, 7);
	struct nlattr *ip = (struct nlattr *)((char *)first + NLA_HDRLEN);
	struct nlattr *src = (struct nlattr *)((char *)ip + NLA_HDRLEN);
	assert_int_equal(src->nla_type & NLA_TYPE_MASK, CTA_IP_V4_SRC);
	src->nla_len = NLA_HDRLEN + 3;
	assert_int_equal(ctnl_parse(buf, len, &out), -EINVAL);
}


/* ---- injection into the kernel ----------------------------------------- */

#define INJ_N      1000         /* flows: 16 batches, round the ring 4 times */
#define INJ_EVERY  5            /* of the first INJ_PRE, every 5th exists already */
#define INJ_PRE    300

struct inj_rec {
	struct ctnl *nl;
	pthread_t main;
	unsigned errors[INJ_N][3];      /* per flow and op */
	unsigned off_thread, other_err;
	bool retry;                     /* answer EEXIST with an update, as repl does */
	unsigned dumped;
};

static struct ct inj_flow(unsigned i)
{
	struct ct c = { .l3 = AF_INET, .l4 = IPPROTO_UDP };
	inet_pton(AF_INET, "198.51.100.10", &c.orig.src);
	inet_pton(AF_INET, "203.0.113.10", &c.orig.dst);
	c.orig.sport = htons((uint16_t)(10000 + i));
	c.orig.dport = htons(53);
	ct_mirror(&c, &c.reply);
	c.status = IPS_CONFIRMED | IPS_SEEN_REPLY;
	c.timeout = 600;
	c.has = CT_HAS_REPLY | CT_HAS_STATUS | CT_HAS_TIMEOUT;
	return c;
}

static void inj_error(void *arg, enum ctnl_op op, const struct ct *ct, int err)
{
	struct inj_rec *r = arg;
	unsigned i = ntohs(ct->orig.sport) - 10000u;

	if (!pthread_equal(pthread_self(), r->main))
		r->off_thread++;
	if (i >= INJ_N || err != -EEXIST) {
		r->other_err++;
		return;
	}
	r->errors[i][op]++;
	if (r->retry && op == CTNL_OP_CREATE) {
		struct ct c = inj_flow(i);
		c.mark = 7;
		ctnl_inject(r->nl, CTNL_OP_UPDATE, &c);
	}
}

static void inj_event(void *arg, enum ctnl_event ev, const struct ct *ct, bool own)
{
	struct inj_rec *r = arg;
	if (ev == CTNL_EV_DUMP && ct->l4 == IPPROTO_UDP && ntohs(ct->orig.dport) == 53 &&
	    (ct->mark == 7) == ((ntohs(ct->orig.sport) - 10000u) % INJ_EVERY == 0 &&
				ntohs(ct->orig.sport) - 10000u < INJ_PRE))
		r->dumped++;
}

static void inject_run(bool threaded)
{
	static struct inj_rec r;
	struct ctnl_config cfg = { .on_error = inj_error, .on_event = inj_event, .arg = &r };

	memset(&r, 0, sizeof(r));
	r.main = pthread_self();
	assert_int_equal(ctnl_open(&r.nl, &cfg), 0);
	/* start from an empty table (ENOENT for what is not there) */
	for (unsigned i = 0; i < INJ_N; i++) {
		struct ct c = inj_flow(i);
		ctnl_inject(r.nl, CTNL_OP_DELETE, &c);
	}
	ctnl_inject_flush(r.nl);
	r.other_err = 0;
	for (unsigned i = 0; i < INJ_PRE; i += INJ_EVERY) {
		struct ct c = inj_flow(i);
		ctnl_inject(r.nl, CTNL_OP_CREATE, &c);
	}
	assert_int_equal(ctnl_inject_flush(r.nl), 0);
	assert_int_equal(r.other_err, 0);

	if (threaded)
		assert_int_equal(ctnl_inject_thread(r.nl, true), 0);
	r.retry = true;
	for (unsigned i = 0; i < INJ_N; i++) {
		struct ct c = inj_flow(i);
		ctnl_inject(r.nl, CTNL_OP_CREATE, &c);
	}
	assert_int_equal(ctnl_inject_flush(r.nl), 0);
	/* every refused create was reported once, for the right flow, on the
	 * caller's thread; the updates it queued go with the next flush */
	for (unsigned i = 0; i < INJ_N; i++)
		assert_int_equal(r.errors[i][CTNL_OP_CREATE],
				 i < INJ_PRE && i % INJ_EVERY == 0 ? 1 : 0);
	assert_int_equal(ctnl_inject_thread(r.nl, false), 0);
	assert_int_equal(ctnl_inject_flush(r.nl), 0);
	assert_int_equal(r.off_thread, 0);
	assert_int_equal(r.other_err, 0);
	for (unsigned i = 0; i < INJ_N; i++)
		assert_int_equal(r.errors[i][CTNL_OP_UPDATE], 0);
	const struct ctnl_stats *st = ctnl_stats(r.nl);
	assert_int_equal(st->injected[CTNL_OP_UPDATE], INJ_PRE / INJ_EVERY);
	assert_int_equal(st->inject_errors[CTNL_OP_CREATE], INJ_PRE / INJ_EVERY);
	/* the kernel holds every flow, the updated ones with the new mark */
	assert_int_equal(ctnl_dump(r.nl), 0);
	assert_int_equal(r.dumped, INJ_N);
	ctnl_close(r.nl);
}

static void test_inject(void **state)
{
	/* a network namespace of our own: needs root (as `make check` runs) */
	if (geteuid() != 0 || unshare(CLONE_NEWNET) < 0)
		skip();
	inject_run(false);
	inject_run(true);
}

/* A GET asked from inside a dump's callback (as the engine does when an
 * expectation event makes it re-read its master) answers at once and
 * leaves the dump where it was: no entry lost, its end reported once, after
 * the GET, by the dump's own reader.  (It used to read the rest of the dump
 * first, inside the callback.) */
struct get_rec {
	struct ctnl *nl;
	unsigned dumped, done, done_in_get, gets;
	bool in_get;
	int get_ret;
	uint32_t got_mark;
};

static void get_event(void *arg, enum ctnl_event ev, const struct ct *ct, bool own)
{
	struct get_rec *g = arg;

	if (ev != CTNL_EV_DUMP || ct->l4 != IPPROTO_UDP || ntohs(ct->orig.dport) != 53)
		return;
	g->dumped++;
	if (g->gets == 0) {
		struct ct key = inj_flow(7), out;
		g->gets++;
		g->in_get = true;
		g->get_ret = ctnl_get(g->nl, &key, &out);
		g->in_get = false;
		g->got_mark = out.mark;
	}
}

static void get_dump_done(void *arg)
{
	struct get_rec *g = arg;
	g->done++;
	if (g->in_get)
		g->done_in_get++;
}

static void test_get_during_dump(void **state)
{
	static struct get_rec g;
	struct ctnl_config cfg = { .on_event = get_event, .on_dump_done = get_dump_done, .arg = &g };

	if (geteuid() != 0 || unshare(CLONE_NEWNET) < 0)
		skip();
	memset(&g, 0, sizeof(g));
	assert_int_equal(ctnl_open(&g.nl, &cfg), 0);
	for (unsigned i = 0; i < INJ_N; i++) {
		struct ct c = inj_flow(i);
		c.mark = i;
		ctnl_inject(g.nl, CTNL_OP_CREATE, &c);
	}
	assert_int_equal(ctnl_inject_flush(g.nl), 0);
	assert_int_equal(ctnl_dump_start(g.nl), 0);
	/* one slice: the first entries, and the GET inside the first one */
	assert_true(ctnl_dump_read(g.nl, 1, true) >= 0);
	assert_int_equal(g.gets, 1);
	assert_int_equal(g.get_ret, 0);
	assert_int_equal(g.got_mark, 7);
	assert_int_equal(g.done, 0);            /* the dump goes on: not read to its end */
	assert_true(g.dumped < INJ_N);
	assert_int_equal(ctnl_dump_finish(g.nl), 0);
	assert_int_equal(g.dumped, INJ_N);
	assert_int_equal(g.done, 1);
	assert_int_equal(g.done_in_get, 0);
	ctnl_close(g.nl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_build_parse),
		cmocka_unit_test(test_nat_create_uses_plain_reply),
		cmocka_unit_test(test_v6_icmp),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_malformed_attributes),
		cmocka_unit_test(test_expectation_build_parse),
		cmocka_unit_test(test_inject),
		cmocka_unit_test(test_get_during_dump),
	};
	return cmocka_run_group_tests_name("ctnl", tests, NULL, NULL);
}
