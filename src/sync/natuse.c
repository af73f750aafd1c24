/* natuse.c — flows by NAT block and destination (natuse.h). */
#include "sync/natuse.h"

#include <arpa/inet.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_conntrack_tcp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dest {
	struct dest *next;
	uint16_t block, port;           /* port: 0 for ICMP */
	uint8_t l3, l4;
	union ct_addr addr;
	unsigned count;
};

struct natuse {
	struct natuse_cfg cfg;
	struct dest **hash;
	size_t nhash, ndest;
	struct natuse_block *blk;       /* [1..blocks]; busiest: natuse_block() */
};

struct natuse *natuse_new(const struct natuse_cfg *cfg)
{
	struct natuse *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->cfg = *cfg;
	n->nhash = 256;
	n->hash = calloc(n->nhash, sizeof(*n->hash));
	n->blk = calloc(cfg->blocks + 1, sizeof(*n->blk));
	if (!n->hash || !n->blk || !cfg->size) {
		natuse_free(n);
		return NULL;
	}
	return n;
}

void natuse_free(struct natuse *n)
{
	if (!n)
		return;
	for (size_t i = 0; n->hash && i < n->nhash; i++)
		for (struct dest *d = n->hash[i], *next; d; d = next) {
			next = d->next;
			free(d);
		}
	free(n->hash);
	free(n->blk);
	free(n);
}

/* The block ct is mapped into and its destination; false for none. */
static bool classify(const struct natuse *n, const struct ct *ct, struct dest *k)
{
	bool icmp = ct->l4 == IPPROTO_ICMP || ct->l4 == IPPROTO_ICMPV6;
	size_t alen = ct->l3 == AF_INET ? 4 : 16;

	if ((ct->has & (CT_HAS_STATUS | CT_HAS_REPLY)) != (CT_HAS_STATUS | CT_HAS_REPLY) ||
	    !(ct->status & IPS_SRC_NAT) || (!icmp && !ct_has_ports(ct->l4)))
		return false;
	bool ours = false;
	for (unsigned i = 0; i < n->cfg.naddr && !ours; i++)
		ours = n->cfg.addr[i].l3 == ct->l3 &&
		       memcmp(&n->cfg.addr[i].a, &ct->reply.dst, alen) == 0;
	if (!ours)
		return false;
	/* the public side: the reply's destination port, or an echo's id */
	unsigned pub = ntohs(icmp ? ct->reply.sport : ct->reply.dport);
	if (pub < n->cfg.lo || pub >= n->cfg.lo + n->cfg.size * n->cfg.blocks)
		return false;
	memset(k, 0, sizeof(*k));
	k->block = (uint16_t)((pub - n->cfg.lo) / n->cfg.size + 1);
	k->l3 = ct->l3;
	k->l4 = ct->l4;
	memcpy(&k->addr, &ct->reply.src, alen);
	k->port = icmp ? 0 : ct->reply.sport;
	return true;
}

static size_t slot(const struct natuse *n, const struct dest *k)
{
	uint32_t h = k->block * 2654435761u ^ k->l4 * 40503u ^ k->port;
	for (unsigned i = 0; i < 4; i++)
		h = (h ^ k->addr.w[i]) * 16777619u;
	return h & (n->nhash - 1);
}

static bool same(const struct dest *a, const struct dest *b)
{
	return a->block == b->block && a->port == b->port && a->l3 == b->l3 && a->l4 == b->l4 &&
	       memcmp(&a->addr, &b->addr, sizeof(a->addr)) == 0;
}

static void grow(struct natuse *n)
{
	size_t old = n->nhash;
	struct dest **h = calloc(old * 2, sizeof(*h));

	if (!h)
		return;                 /* longer chains, still right */
	struct dest **oh = n->hash;
	n->hash = h;
	n->nhash = old * 2;
	for (size_t i = 0; i < old; i++)
		for (struct dest *d = oh[i], *next; d; d = next) {
			next = d->next;
			size_t s = slot(n, d);
			d->next = h[s];
			h[s] = d;
		}
	free(oh);
}

static void describe(const struct dest *d, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	inet_ntop(d->l3, &d->addr, a, sizeof(a));
	if (d->port)
		snprintf(buf, len, "%s %s%s%s:%u", ct_proto_name(d->l4), d->l3 == AF_INET6 ? "[" : "",
			 a, d->l3 == AF_INET6 ? "]" : "", ntohs(d->port));
	else
		snprintf(buf, len, "%s %s", ct_proto_name(d->l4), a);
}

bool natuse_counts(const struct natuse *n, const struct ct *ct)
{
	struct dest k;

	if (ct->l4 == IPPROTO_TCP && (ct->has & CT_HAS_TCP) &&
	    (ct->tcp.state == TCP_CONNTRACK_TIME_WAIT || ct->tcp.state == TCP_CONNTRACK_CLOSE))
		return false;
	return classify(n, ct, &k);
}

void natuse_count(struct natuse *n, const struct ct *ct, int delta)
{
	struct dest k, **pp, *d;

	if (!classify(n, ct, &k))
		return;
	struct natuse_block *b = &n->blk[k.block];
	for (pp = &n->hash[slot(n, &k)]; (d = *pp) && !same(d, &k); pp = &d->next)
		;
	if (delta < 0) {
		if (!d)
			return;
		b->flows -= b->flows > 0;
		if (--d->count == 0) {
			*pp = d->next;
			free(d);
			n->ndest--;
		}
		return;
	}
	if (!d) {
		if (n->ndest >= n->nhash)
			grow(n);
		d = malloc(sizeof(*d));
		if (!d)
			return;         /* not counted; taking it out finds nothing */
		*d = k;
		d->count = 0;
		pp = &n->hash[slot(n, d)];
		d->next = *pp;
		*pp = d;
		n->ndest++;
	}
	b->flows++;
	if (++d->count == n->cfg.size) {
		b->fulls++;
		describe(d, b->full_dst, sizeof(b->full_dst));
	}
}

uint64_t natuse_fulls(const struct natuse *n, unsigned block, const char **dst)
{
	if (!n || block < 1 || block > n->cfg.blocks)
		return 0;
	*dst = n->blk[block].full_dst;
	return n->blk[block].fulls;
}

void natuse_block(struct natuse *n, unsigned block, struct natuse_block *out)
{
	memset(out, 0, sizeof(*out));
	if (!n || block < 1 || block > n->cfg.blocks)
		return;
	*out = n->blk[block];
	/* the busiest destination, counted when asked (it shrinks as
	 * flows end: not worth keeping on every change) */
	for (size_t i = 0; i < n->nhash; i++)
		for (const struct dest *d = n->hash[i]; d; d = d->next)
			if (d->block == block && d->count > out->busiest)
				out->busiest = d->count;
}
