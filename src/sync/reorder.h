/*
 * reorder.h — data frames of one sender that arrived after a gap, held until
 * the gap is filled so that frames are always applied in sequence order (an
 * older state never overwrites a newer one, a delete never precedes its
 * upsert).  At most `cap` sequence numbers ahead of the next expected one,
 * and at most `max_bytes` held; the slots are allocated at the first gap.
 */
#ifndef CTSYNC_SYNC_REORDER_H
#define CTSYNC_SYNC_REORDER_H

#include <stddef.h>
#include <stdint.h>

#include "sync/codec.h"

struct reorder;

struct reorder *reorder_new(unsigned cap, size_t max_bytes);
void reorder_free(struct reorder *o);
/* Hold frame `seq` (next expected is `base`).  0 held, 1 already held,
 * -ERANGE too far ahead or too many bytes held, -ENOMEM. */
int reorder_put(struct reorder *o, uint32_t base, uint32_t seq, const void *buf, size_t len);
/* Take frame `seq` out if held: a malloc'd copy the caller frees, or NULL. */
uint8_t *reorder_take(struct reorder *o, uint32_t seq, size_t *len);
unsigned reorder_count(const struct reorder *o);
/* Lowest and highest sequence held (only meaningful when count > 0). */
uint32_t reorder_lowest(const struct reorder *o, uint32_t base);
uint32_t reorder_highest(const struct reorder *o);
/* The missing ranges between base and `upto` (inclusive), into n. */
void reorder_holes(const struct reorder *o, uint32_t base, uint32_t upto, struct nack_info *n);
void reorder_clear(struct reorder *o);

#endif
