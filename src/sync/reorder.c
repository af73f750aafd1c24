/* reorder.c — frames held after a gap (reorder.h). */
#include "sync/reorder.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct held {
	uint32_t seq;
	uint32_t len;
	uint8_t *data;
};

struct reorder {
	struct held *h;         /* cap slots, allocated at the first gap */
	unsigned cap, n;
	size_t bytes, max_bytes;
	uint32_t highest;
};

struct reorder *reorder_new(unsigned cap, size_t max_bytes)
{
	struct reorder *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
	o->cap = cap;
	o->max_bytes = max_bytes;
	return o;
}

void reorder_clear(struct reorder *o)
{
	for (unsigned i = 0; o->h && o->n && i < o->cap; i++) {
		if (o->h[i].data) {
			free(o->h[i].data);
			o->h[i].data = NULL;
			o->n--;
		}
	}
	o->n = 0;
	o->bytes = 0;
}

void reorder_free(struct reorder *o)
{
	if (!o)
		return;
	reorder_clear(o);
	free(o->h);
	free(o);
}

static bool held(const struct reorder *o, uint32_t seq)
{
	if (!o->h)
		return false;
	const struct held *h = &o->h[seq % o->cap];
	return h->data && h->seq == seq;
}

int reorder_put(struct reorder *o, uint32_t base, uint32_t seq, const void *buf, size_t len)
{
	if (seq - base >= o->cap || o->bytes + len > o->max_bytes)
		return -ERANGE;
	if (held(o, seq))
		return 1;
	if (!o->h && !(o->h = calloc(o->cap, sizeof(*o->h))))
		return -ENOMEM;
	uint8_t *copy = malloc(len);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, buf, len);
	struct held *h = &o->h[seq % o->cap];
	if (h->data) {          /* a stale entry of an older window */
		o->bytes -= h->len;
		free(h->data);
		o->n--;
	}
	o->bytes += len;
	h->seq = seq;
	h->len = (uint32_t)len;
	h->data = copy;
	if (o->n == 0 || (int32_t)(seq - o->highest) > 0)
		o->highest = seq;
	o->n++;
	return 0;
}

uint8_t *reorder_take(struct reorder *o, uint32_t seq, size_t *len)
{
	if (!o->n || !held(o, seq))
		return NULL;
	struct held *h = &o->h[seq % o->cap];
	uint8_t *d = h->data;
	*len = h->len;
	h->data = NULL;
	o->n--;
	o->bytes -= h->len;
	return d;
}

unsigned reorder_count(const struct reorder *o)
{
	return o->n;
}

uint32_t reorder_lowest(const struct reorder *o, uint32_t base)
{
	for (uint32_t s = base; s - base < o->cap; s++)
		if (held(o, s))
			return s;
	return base;
}

uint32_t reorder_highest(const struct reorder *o)
{
	return o->highest;
}

void reorder_holes(const struct reorder *o, uint32_t base, uint32_t upto, struct nack_info *n)
{
	uint32_t s = base;

	n->nranges = 0;
	while ((int32_t)(upto - s) >= 0 && n->nranges < NACK_MAX_RANGES) {
		if (s - base < o->cap && held(o, s)) {
			s++;
			continue;
		}
		uint32_t first = s;
		/* nothing is held beyond the window: the rest is one range */
		while ((int32_t)(upto - s) >= 0 && s - base < o->cap && !held(o, s))
			s++;
		if ((int32_t)(upto - s) >= 0 && s - base >= o->cap)
			s = upto + 1;
		n->range[n->nranges].first = first;
		n->range[n->nranges].last = s - 1;
		n->nranges++;
	}
}
