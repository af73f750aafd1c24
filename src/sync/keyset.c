/* keyset.c — a set of flow key hashes (keyset.h). */
#include "sync/keyset.h"

#include <stdlib.h>

static uint64_t norm(uint64_t key)
{
	return key ? key : 1;           /* 0 marks an empty slot */
}

static void put(uint64_t *slot, size_t cap, uint64_t key)
{
	size_t i = (size_t)(key ^ key >> 29) & (cap - 1);
	while (slot[i] && slot[i] != key)
		i = (i + 1) & (cap - 1);
	slot[i] = key;
}

bool keyset_add(struct keyset *s, uint64_t key)
{
	key = norm(key);
	if ((s->n + 1) * 2 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		uint64_t *slot = calloc(cap, sizeof(*slot));
		if (!slot)
			return false;
		for (size_t i = 0; i < s->cap; i++)
			if (s->slot[i])
				put(slot, cap, s->slot[i]);
		free(s->slot);
		s->slot = slot;
		s->cap = cap;
	}
	if (!keyset_has(s, key))
		s->n++;
	put(s->slot, s->cap, key);
	return true;
}

bool keyset_has(const struct keyset *s, uint64_t key)
{
	if (!s->cap)
		return false;
	key = norm(key);
	size_t i = (size_t)(key ^ key >> 29) & (s->cap - 1);
	for (; s->slot[i]; i = (i + 1) & (s->cap - 1))
		if (s->slot[i] == key)
			return true;
	return false;
}

void keyset_clear(struct keyset *s)
{
	free(s->slot);
	s->slot = NULL;
	s->cap = s->n = 0;
}
