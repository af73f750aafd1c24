/* exps.c — expectations held (exps.h). */
#include "sync/exps.h"

#include <stdlib.h>

struct exps {
	struct exp_entry *head;
	unsigned n;
};

struct exps *exps_new(void)
{
	return calloc(1, sizeof(struct exps));
}

void exps_free(struct exps *x)
{
	if (!x)
		return;
	struct exp_entry *en = x->head, *next;
	for (; en; en = next) {
		next = en->next;
		free(en);
	}
	free(x);
}

struct exp_entry *exps_find(struct exps *x, const struct exp *key)
{
	for (struct exp_entry *en = x->head; en; en = en->next)
		if (exp_key_equal(&en->e, key))
			return en;
	return NULL;
}

struct exp_entry *exps_add(struct exps *x, const struct exp *e, uint32_t owner)
{
	struct exp_entry *en = calloc(1, sizeof(*en));

	if (!en)
		return NULL;
	en->e = *e;
	en->owner = owner;
	en->next = x->head;
	x->head = en;
	x->n++;
	return en;
}

void exps_remove(struct exps *x, struct exp_entry *en)
{
	for (struct exp_entry **pp = &x->head; *pp; pp = &(*pp)->next) {
		if (*pp == en) {
			*pp = en->next;
			x->n--;
			free(en);
			return;
		}
	}
}

void exps_foreach(struct exps *x, void (*fn)(void *arg, struct exp_entry *en), void *arg)
{
	struct exp_entry *en = x->head, *next;
	for (; en; en = next) {
		next = en->next;
		fn(arg, en);
	}
}

unsigned exps_count(const struct exps *x, uint32_t owner)
{
	unsigned n = 0;
	for (const struct exp_entry *en = x->head; en; en = en->next)
		if (en->owner == owner)
			n++;
	return n;
}

unsigned exps_total(const struct exps *x)
{
	return x->n;
}
