/*
 * harness.h — what the fuzz targets share: two replication engines (nodes
 * 1 and 2) of the simulated cluster (tests/sim.h): simulated kernels, a
 * link that loses nothing, time that only moves when told, and the
 * handshake that makes node 2's epoch one node 1 trusts — so that a fuzzed
 * frame "from node 2" reaches the record decoders instead of stopping at
 * the epoch check.
 */
#ifndef CTSYNC_FUZZ_HARNESS_H
#define CTSYNC_FUZZ_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "sync/repl.h"

struct harness {
	struct repl *a, *b;
	struct sockaddr_storage addr_a, addr_b;
	uint32_t epoch_b;
};

/* Both engines up and trusting each other; 0 or -1. */
int harness_start(struct harness *h);
void harness_stop(struct harness *h);
/* Let ms of simulated time pass: ticks, polls, deliveries both ways. */
void harness_run(struct harness *h, unsigned ms);
/* Make buf's header one node 1 would take from node 2 (magic, version,
 * node, its epoch, the length field), whatever the records are. */
void harness_header_from_b(const struct harness *h, uint8_t *buf, size_t len);

#endif
