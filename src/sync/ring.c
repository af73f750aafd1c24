/* ring.c — recently sent frames (ring.h). */
#include "sync/ring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 65536u            /* power of two; at most this many frames */

struct slot {
	uint32_t seq;
	uint32_t len;
	uint8_t *data;
};

struct ring {
	struct slot *s;
	uint32_t first, next;   /* held: [first, next) */
	size_t bytes, max;
};

struct ring *ring_new(size_t max_bytes)
{
	struct ring *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->s = calloc(SLOTS, sizeof(*r->s));
	if (!r->s) {
		free(r);
		return NULL;
	}
	r->max = max_bytes;
	return r;
}

static void drop_first(struct ring *r)
{
	struct slot *s = &r->s[r->first & (SLOTS - 1)];
	r->bytes -= s->len;
	free(s->data);
	s->data = NULL;
	s->len = 0;
	r->first++;
}

void ring_free(struct ring *r)
{
	if (!r)
		return;
	while (r->first != r->next)
		drop_first(r);
	free(r->s);
	free(r);
}

int ring_put(struct ring *r, uint32_t seq, const void *buf, size_t len)
{
	if (r->first == r->next || seq != r->next) {
		while (r->first != r->next)
			drop_first(r);
		r->first = r->next = seq;
	}
	while (r->first != r->next &&
	       (r->next - r->first >= SLOTS || r->bytes + len > r->max))
		drop_first(r);
	if (len > r->max)
		return -ENOSPC;
	uint8_t *copy = malloc(len);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, buf, len);
	struct slot *s = &r->s[seq & (SLOTS - 1)];
	s->seq = seq;
	s->len = (uint32_t)len;
	s->data = copy;
	r->bytes += len;
	r->next = seq + 1;
	return 0;
}

const uint8_t *ring_get(const struct ring *r, uint32_t seq, size_t *len)
{
	if (seq - r->first >= r->next - r->first)
		return NULL;
	const struct slot *s = &r->s[seq & (SLOTS - 1)];
	if (!s->data || s->seq != seq)
		return NULL;
	*len = s->len;
	return s->data;
}

size_t ring_bytes(const struct ring *r)
{
	return r->bytes;
}

unsigned ring_frames(const struct ring *r)
{
	return r->next - r->first;
}
