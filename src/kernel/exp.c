/* exp.c — helpers on struct exp (exp.h) that know nothing of netlink or the
 * wire. */
#include "kernel/exp.h"

#include <stdio.h>
#include <string.h>

bool exp_key_equal(const struct exp *a, const struct exp *b)
{
	return a->l3 == b->l3 && a->l4 == b->l4 && a->zone == b->zone &&
	       memcmp(&a->tuple.src, &b->tuple.src, sizeof(a->tuple.src)) == 0 &&
	       memcmp(&a->tuple.dst, &b->tuple.dst, sizeof(a->tuple.dst)) == 0 &&
	       a->tuple.sport == b->tuple.sport && a->tuple.dport == b->tuple.dport &&
	       a->tuple.icmp_type == b->tuple.icmp_type;
}

void exp_master_key(const struct exp *e, struct ct *key)
{
	memset(key, 0, sizeof(*key));
	key->l3 = e->l3;
	key->l4 = e->master_l4;
	key->zone = e->zone;
	key->orig = e->master;
}

int exp_format(const struct exp *e, char *buf, size_t len)
{
	struct ct m, x;

	exp_master_key(e, &m);
	m.reply = m.orig;
	memset(&x, 0, sizeof(x));
	x.l3 = e->l3;
	x.l4 = e->l4;
	x.orig = e->tuple;
	x.reply = e->tuple;
	char ms[200], xs[200];
	ct_format(&m, ms, sizeof(ms));
	ct_format(&x, xs, sizeof(xs));
	/* "tcp A -> B reply ... zone Z": keep the tuple part of each */
	char *cut = strstr(ms, " reply");
	if (cut)
		*cut = 0;
	cut = strstr(xs, " reply");
	if (cut)
		*cut = 0;
	return snprintf(buf, len, "expect %s (helper %s, timeout %u) master %s zone %u", xs,
			e->helper[0] ? e->helper : "-", e->timeout, ms, e->zone);
}
