/*
 * natuse.h — how full each node's block of NAT ports is (nat.snat;
 * kernel/nftb.h).  The table's flows translated to a shared address are
 * counted by block and by destination as they enter and leave the table;
 * every node has every flow, so each sees every node's block.  A block is
 * full towards a destination (protocol, address and port; an address for
 * ICMP echo) once `size` of its ports are used there: the kernel then
 * drops the next connection there (no free mapping: its insert fails).
 * A flow's mapping (its reply tuple) is fixed when it starts.
 */
#ifndef CTSYNC_SYNC_NATUSE_H
#define CTSYNC_SYNC_NATUSE_H

#include <stdbool.h>
#include <stdint.h>

#include "kernel/ct.h"

#define NATUSE_ADDRS 8

struct natuse_cfg {
	unsigned naddr;                 /* 0: no NAT of ours */
	struct { uint8_t l3; union ct_addr a; } addr[NATUSE_ADDRS];
	uint16_t lo;                    /* the shared range's first port */
	unsigned size, blocks;          /* ports per block; blocks (node ids 1..) */
};

struct natuse_block {
	unsigned flows;                 /* flows mapped into the block */
	unsigned busiest;               /* the most towards one destination */
	uint64_t fulls;                 /* times a destination filled it */
	char full_dst[64];              /* the last one, as text */
};

struct natuse;

struct natuse *natuse_new(const struct natuse_cfg *cfg);
void natuse_free(struct natuse *n);
/* Is ct to be counted now: mapped into a block, and not a TCP flow that
 * is closing (TIME_WAIT or CLOSE: the kernel gives its mapping to a new
 * connection that needs it, ending the old one)? */
bool natuse_counts(const struct natuse *n, const struct ct *ct);
/* Count ct in (delta +1; only if natuse_counts) or out (-1). */
void natuse_count(struct natuse *n, const struct ct *ct, int delta);
/* How many times a destination filled block `block`, and the last (cheap:
 * for a poll). */
uint64_t natuse_fulls(const struct natuse *n, unsigned block, const char **dst);
/* Block `block` (1..blocks); zeroes for another. */
void natuse_block(struct natuse *n, unsigned block, struct natuse_block *out);

#endif
