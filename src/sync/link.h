/*
 * link.h — the sync link: one object for the transport and the seal, so
 * that the engine sends plain frames to node ids and receives only frames
 * that authenticated (seal.h), and nothing above it handles a sealed byte.
 *
 * Every frame leaves sealed in a copy (the engine's ring keeps the plain
 * frame: a retransmission is sealed again under a new packet number).  A
 * datagram that does not open is dropped here, counted by the seal layer by
 * reason and logged (rate-limited) with its source; one that opens goes to
 * the engine with the node the transport attributes it to.
 */
#ifndef CTSYNC_SYNC_LINK_H
#define CTSYNC_SYNC_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "cluster/transport.h"
#include "sync/seal.h"

struct link;

/* Takes the transport (closed by link_free) and makes its own seal, keyed
 * later through link_seal().  NULL when out of memory. */
struct link *link_new(struct transport *t);
void link_free(struct link *l);
struct seal *link_seal(struct link *l);
struct transport *link_transport(struct link *l);
int link_fd(const struct link *l);
/* The largest plain frame that still fits the path once sealed. */
size_t link_frame_max(const struct link *l);

/* Seal a copy of the frame and send it to `node` (TRANSPORT_ALL: every
 * peer).  0 or -errno. */
int link_send(struct link *l, uint32_t node, const void *frame, size_t len);

/* What link_read hands over: a frame that opened (len 0: a datagram too
 * large to be one of ours, for the engine to count as malformed), and the
 * node the transport says sent it (0: none it knows). */
typedef void (*link_frame_fn)(void *arg, const uint8_t *frame, size_t len, uint32_t from);
/* Read up to `budget` datagrams; returns how many were read (0: none was
 * queued). */
int link_read(struct link *l, int budget, link_frame_fn fn, void *arg);

#endif
