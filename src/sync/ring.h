/*
 * ring.h — the frames this node sent most recently, by sequence number, so
 * that a peer's NACK can be answered with the very same bytes.  Bounded in
 * bytes: the oldest frames go first.  A NACK for a frame no longer held is
 * answered with a bulk resync instead (repl.c), never silently ignored.
 */
#ifndef CTSYNC_SYNC_RING_H
#define CTSYNC_SYNC_RING_H

#include <stddef.h>
#include <stdint.h>

struct ring;

struct ring *ring_new(size_t max_bytes);
void ring_free(struct ring *r);
/* Keep a copy of frame `seq`; sequences must come in order (a jump empties
 * the ring).  -ENOMEM if the copy cannot be made (the frame is then not
 * held, and a NACK for it escalates). */
int ring_put(struct ring *r, uint32_t seq, const void *buf, size_t len);
/* The frame, or NULL when it is not (or no longer) held. */
const uint8_t *ring_get(const struct ring *r, uint32_t seq, size_t *len);
size_t ring_bytes(const struct ring *r);
unsigned ring_frames(const struct ring *r);

#endif
