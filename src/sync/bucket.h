/*
 * bucket.h — the hash bucket of a flow, exactly as an nftables rule
 * computes it (for active-active: each live node owns a share of the
 * buckets; the rule drops what another node owns):
 *
 *   jhash ct original ip saddr . ct original ip daddr mod B seed S
 *   jhash ct original ip6 saddr . ct original ip6 daddr mod B seed S
 *
 * nft_hash runs the kernel's jhash (Bob Jenkins' lookup3, as in
 * <linux/jhash.h>) over the concatenation as it sits in the registers —
 * the two addresses back to back in network order, 8 or 32 bytes — with
 * seed S, and scales the 32-bit result into [0, B) by multiplying and
 * keeping the high half (reciprocal_scale).  The original tuple makes the
 * bucket the same for both directions on every node that tracks the flow.
 * The unit test checks it against the kernel's own rule.
 */
#ifndef CTSYNC_SYNC_BUCKET_H
#define CTSYNC_SYNC_BUCKET_H

#include <stddef.h>
#include <stdint.h>

#include "kernel/ct.h"

/* lookup3's hash of len bytes, words read little-endian as x86 reads them */
uint32_t bucket_jhash(const uint8_t *key, size_t len, uint32_t seed);
/* The flow's bucket in [0, nbuckets). */
unsigned bucket_of(const struct ct *ct, unsigned nbuckets, uint32_t seed);

#endif
