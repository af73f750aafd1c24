/* table.c — chained hash table of flows (table.h). */
#include "sync/table.h"
#include "sync/natuse.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <string.h>

#define MAX_OWNERS 64

struct table {
	struct flow **bucket;
	size_t nbuckets, count;
	struct owner_stats owners[MAX_OWNERS];
	unsigned nowners;
	struct natuse *nat;             /* NULL: no NAT blocks to count */
};

struct table *table_new(void)
{
	struct table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->nbuckets = 1024;
	t->bucket = calloc(t->nbuckets, sizeof(*t->bucket));
	if (!t->bucket) {
		free(t);
		return NULL;
	}
	return t;
}

/* ---- packed flows (table.h) ---------------------------------------------- */

struct flow_ext {
	uint32_t secmark;
	struct ct_seqadj seqadj[2];
	uint32_t sctp_vtag[2];
	uint64_t dccp_hs_seq;
	uint8_t sctp_state, dccp_state, dccp_role;
	char helper[CT_HELPER_LEN];
	uint8_t labels[CT_LABELS_LEN];
};

static uint8_t flow_l3(const struct flow *f)
{
	return f->v6 ? AF_INET6 : AF_INET;
}

static size_t addr_len(uint8_t l3)
{
	return l3 == AF_INET ? 4 : 16;
}

static size_t tuples_len(uint8_t l3)
{
	return 2 * (2 * addr_len(l3) + 6);
}

static uint8_t *put_tuple(uint8_t *p, size_t alen, const struct ct_tuple *t)
{
	memcpy(p, &t->src, alen);
	memcpy(p + alen, &t->dst, alen);
	p += 2 * alen;
	memcpy(p, &t->sport, 2);
	memcpy(p + 2, &t->dport, 2);
	p[4] = t->icmp_type;
	p[5] = t->icmp_code;
	return p + 6;
}

static const uint8_t *get_tuple(const uint8_t *p, size_t alen, struct ct_tuple *t)
{
	memcpy(&t->src, p, alen);
	memcpy(&t->dst, p + alen, alen);
	p += 2 * alen;
	memcpy(&t->sport, p, 2);
	memcpy(&t->dport, p + 2, 2);
	t->icmp_type = p[4];
	t->icmp_code = p[5];
	return p + 6;
}

static bool all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

static bool needs_ext(const struct ct *ct)
{
	return ct->secmark || ct->sctp.state || ct->sctp.vtag[0] || ct->sctp.vtag[1] ||
	       ct->dccp.state || ct->dccp.role || ct->dccp.hs_seq || ct->helper[0] ||
	       !all_zero(ct->seqadj, sizeof(ct->seqadj)) ||
	       !all_zero(ct->labels, sizeof(ct->labels));
}

void flow_get(const struct flow *f, struct ct *out)
{
	size_t alen = addr_len(flow_l3(f));
	const uint8_t *p = f->tuples;

	memset(out, 0, sizeof(*out));
	out->l3 = flow_l3(f);
	out->l4 = f->l4;
	out->zone = f->zone;
	out->has = f->has;
	p = get_tuple(p, alen, &out->orig);
	get_tuple(p, alen, &out->reply);
	out->status = f->status;
	out->timeout = f->timeout;
	out->mark = f->mark;
	out->tcp.state = f->tcp[0];
	out->tcp.wscale[0] = f->tcp[1];
	out->tcp.wscale[1] = f->tcp[2];
	out->tcp.flags[0] = f->tcp[3];
	out->tcp.flags[1] = f->tcp[4];
	const struct flow_ext *e = f->ext;
	if (!e)
		return;
	out->secmark = e->secmark;
	memcpy(out->seqadj, e->seqadj, sizeof(out->seqadj));
	out->sctp.state = e->sctp_state;
	out->sctp.vtag[0] = e->sctp_vtag[0];
	out->sctp.vtag[1] = e->sctp_vtag[1];
	out->dccp.state = e->dccp_state;
	out->dccp.role = e->dccp_role;
	out->dccp.hs_seq = e->dccp_hs_seq;
	memcpy(out->helper, e->helper, sizeof(out->helper));
	memcpy(out->labels, e->labels, sizeof(out->labels));
}

int flow_set(struct flow *f, const struct ct *ct)
{
	size_t alen = addr_len(flow_l3(f));

	f->has = (uint16_t)ct->has;
	/* the original tuple is the key, unchanged; the reply may change */
	put_tuple(f->tuples + 2 * alen + 6, alen, &ct->reply);
	f->status = ct->status;
	f->timeout = ct->timeout;
	f->mark = ct->mark;
	f->tcp[0] = ct->tcp.state;
	f->tcp[1] = ct->tcp.wscale[0];
	f->tcp[2] = ct->tcp.wscale[1];
	f->tcp[3] = ct->tcp.flags[0];
	f->tcp[4] = ct->tcp.flags[1];
	if (!needs_ext(ct)) {
		free(f->ext);
		f->ext = NULL;
		return 0;
	}
	struct flow_ext *e = f->ext;
	if (!e && !(e = f->ext = calloc(1, sizeof(*e))))
		return -ENOMEM;
	e->secmark = ct->secmark;
	memcpy(e->seqadj, ct->seqadj, sizeof(e->seqadj));
	e->sctp_state = ct->sctp.state;
	e->sctp_vtag[0] = ct->sctp.vtag[0];
	e->sctp_vtag[1] = ct->sctp.vtag[1];
	e->dccp_state = ct->dccp.state;
	e->dccp_role = ct->dccp.role;
	e->dccp_hs_seq = ct->dccp.hs_seq;
	memcpy(e->helper, ct->helper, sizeof(e->helper));
	e->helper[sizeof(e->helper) - 1] = 0;
	memcpy(e->labels, ct->labels, sizeof(e->labels));
	return 0;
}

bool flow_key_equal(const struct flow *f, const struct ct *key)
{
	struct ct_tuple t;

	if (flow_l3(f) != key->l3 || f->l4 != key->l4 || f->zone != key->zone)
		return false;
	memset(&t, 0, sizeof(t));
	get_tuple(f->tuples, addr_len(flow_l3(f)), &t);
	return ct_tuple_equal(&t, &key->orig);
}

void table_flow_free(struct flow *f)
{
	if (f)
		free(f->ext);
	free(f);
}

void table_free(struct table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct flow *f = t->bucket[i], *n;
		for (; f; f = n) {
			n = f->hnext;
			/* flows still on a dirty list are freed by their owner */
			if (!f->dirty)
				table_flow_free(f);
			else
				f->dead = 1;
		}
	}
	natuse_free(t->nat);
	free(t->bucket);
	free(t);
}

static struct owner_stats *owner_slot(struct table *t, uint32_t id, bool add)
{
	for (unsigned i = 0; i < t->nowners; i++)
		if (t->owners[i].id == id)
			return &t->owners[i];
	if (!add || t->nowners == MAX_OWNERS)
		return NULL;
	struct owner_stats *o = &t->owners[t->nowners++];
	memset(o, 0, sizeof(*o));
	o->id = id;
	return o;
}

static void account(struct table *t, const struct flow *f, int sign)
{
	struct owner_stats *o = owner_slot(t, f->owner, sign > 0);
	if (!o)
		return;
	if (sign > 0) {
		o->flows++;
		o->digest += f->khash;
	} else {
		o->flows--;
		o->digest -= f->khash;
	}
}

struct owner_stats table_owner(const struct table *t, uint32_t owner)
{
	struct owner_stats z = { .id = owner };
	for (unsigned i = 0; i < t->nowners; i++)
		if (t->owners[i].id == owner)
			return t->owners[i];
	return z;
}

static void grow(struct table *t)
{
	size_t n = t->nbuckets * 2;
	struct flow **b = calloc(n, sizeof(*b));

	if (!b)
		return;                 /* keep going with longer chains */
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct flow *f = t->bucket[i], *next;
		for (; f; f = next) {
			next = f->hnext;
			size_t j = f->khash & (n - 1);
			f->hnext = b[j];
			b[j] = f;
		}
	}
	free(t->bucket);
	t->bucket = b;
	t->nbuckets = n;
}

void table_prefetch(const struct table *t, const uint64_t *h, size_t n)
{
	size_t mask = t->nbuckets - 1;

	for (size_t i = 0; i < n; i++)
		__builtin_prefetch(&t->bucket[h[i] & mask]);
	for (size_t i = 0; i < n; i++) {     /* by now the buckets have arrived */
		const struct flow *f = t->bucket[h[i] & mask];
		if (f)
			__builtin_prefetch(f);
	}
}

struct flow *table_find_h(struct table *t, const struct ct *key, uint64_t h)
{
	struct flow *f = t->bucket[h & (t->nbuckets - 1)];

	for (; f; f = f->hnext)
		if (f->khash == (uint32_t)h && flow_key_equal(f, key))
			return f;
	return NULL;
}

struct flow *table_find(struct table *t, const struct ct *key)
{
	return table_find_h(t, key, ct_key_hash(key));
}

struct flow *table_add(struct table *t, const struct ct *ct, uint32_t owner)
{
	return table_add_h(t, ct, owner, ct_key_hash(ct));
}

struct flow *table_add_h(struct table *t, const struct ct *ct, uint32_t owner, uint64_t h)
{
	if (ct->l3 != AF_INET && ct->l3 != AF_INET6)
		return NULL;
	struct flow *f = calloc(1, sizeof(*f) + tuples_len(ct->l3));

	if (!f)
		return NULL;
	f->v6 = ct->l3 == AF_INET6;
	f->l4 = ct->l4;
	f->zone = ct->zone;
	put_tuple(f->tuples, addr_len(ct->l3), &ct->orig);
	if (flow_set(f, ct) < 0) {
		free(f);
		return NULL;
	}
	f->khash = (uint32_t)h;
	f->owner = owner;
	if (t->count >= t->nbuckets)
		grow(t);
	size_t i = f->khash & (t->nbuckets - 1);
	f->hnext = t->bucket[i];
	t->bucket[i] = f;
	t->count++;
	account(t, f, +1);
	if (t->nat && natuse_counts(t->nat, ct)) {
		natuse_count(t->nat, ct, +1);
		f->nat = 1;
	}
	return f;
}

int table_flow_set(struct table *t, struct flow *f, const struct ct *ct)
{
	int rc = flow_set(f, ct);

	if (t->nat && f->nat != natuse_counts(t->nat, ct)) {
		/* (the mapping is fixed: counted out under the same key) */
		natuse_count(t->nat, ct, f->nat ? -1 : +1);
		f->nat = !f->nat;
	}
	return rc;
}

void table_remove(struct table *t, struct flow *f)
{
	struct flow **pp = &t->bucket[f->khash & (t->nbuckets - 1)];

	for (; *pp; pp = &(*pp)->hnext) {
		if (*pp == f) {
			*pp = f->hnext;
			f->hnext = NULL;
			t->count--;
			account(t, f, -1);
			if (f->nat && t->nat) {
				struct ct c;
				flow_get(f, &c);
				natuse_count(t->nat, &c, -1);
				f->nat = 0;
			}
			return;
		}
	}
}

void table_set_natuse(struct table *t, struct natuse *n)
{
	natuse_free(t->nat);
	t->nat = n;
}

struct natuse *table_natuse(const struct table *t)
{
	return t->nat;
}

void table_set_owner(struct table *t, struct flow *f, uint32_t owner)
{
	if (f->owner == owner)
		return;
	account(t, f, -1);
	f->owner = owner;
	account(t, f, +1);
}

size_t table_count(const struct table *t)
{
	return t->count;
}

/* The flows lie anywhere in memory: the first of a bucket a few ahead is
 * fetched while this one is visited (a commit walks a million). */
#define FOREACH_AHEAD 8
void table_foreach(struct table *t, void (*fn)(void *arg, struct flow *f), void *arg)
{
	for (size_t i = 0; i < t->nbuckets; i++) {
		if (i + FOREACH_AHEAD < t->nbuckets && t->bucket[i + FOREACH_AHEAD])
			__builtin_prefetch(t->bucket[i + FOREACH_AHEAD]);
		struct flow *f = t->bucket[i], *next;
		for (; f; f = next) {
			next = f->hnext;
			fn(arg, f);
		}
	}
}
