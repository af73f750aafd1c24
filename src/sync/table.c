/* table.c — chained hash table of flows (table.h). */
#include "sync/table.h"

#include <stdlib.h>
#include <string.h>

#define MAX_OWNERS 64

struct table {
	struct flow **bucket;
	size_t nbuckets, count;
	struct owner_stats owners[MAX_OWNERS];
	unsigned nowners;
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

void table_flow_free(struct flow *f)
{
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
				free(f);
			else
				f->dead = 1;
		}
	}
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

struct flow *table_find(struct table *t, const struct ct *key)
{
	uint64_t h = ct_key_hash(key);
	struct flow *f = t->bucket[h & (t->nbuckets - 1)];

	for (; f; f = f->hnext)
		if (f->khash == h && ct_key_equal(&f->ct, key))
			return f;
	return NULL;
}

struct flow *table_add(struct table *t, const struct ct *ct, uint32_t owner)
{
	struct flow *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->ct = *ct;
	f->khash = ct_key_hash(ct);
	f->owner = owner;
	if (t->count >= t->nbuckets)
		grow(t);
	size_t i = f->khash & (t->nbuckets - 1);
	f->hnext = t->bucket[i];
	t->bucket[i] = f;
	t->count++;
	account(t, f, +1);
	return f;
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
			return;
		}
	}
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

void table_foreach(struct table *t, void (*fn)(void *arg, struct flow *f), void *arg)
{
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct flow *f = t->bucket[i], *next;
		for (; f; f = next) {
			next = f->hnext;
			fn(arg, f);
		}
	}
}
