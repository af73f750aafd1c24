/*
 * nftb.h — the nftables side of active-active: a table of ctsyncd's own
 * (`table inet NAME`, "ctsync" by default) whose one rule drops forwarded
 * packets of the flows whose hash bucket this node does not hold:
 *
 *   table inet ctsync {
 *       set held { typeof meta cpu; flags timeout; timeout L; }  # buckets
 *       chain buckets {
 *           type filter hook forward priority filter - 5; policy accept;
 *           meta nfproto ipv4 jhash ct original ip saddr . ct original ip daddr
 *               mod B seed S != @held counter drop
 *           meta nfproto ipv6 jhash ct original ip6 saddr . ct original ip6 daddr
 *               mod B seed S != @held counter drop
 *       }
 *   }
 *
 * The bucket is taken from the conntrack entry's original tuple, after
 * conntrack and NAT in prerouting, so it is the same for both directions
 * and on every node (sync/bucket.h computes the same number).  A packet
 * without a conntrack entry (untracked, or invalid) is left to the
 * ruleset's own chains; so is everything the host itself sends or
 * receives (input and output hooks).  Priority filter - 5: before the
 * ruleset's forward chains at priority filter, whose accept cannot undo
 * our drop.
 *
 * With `filter` false (buckets.filter = false: routed paths, where the
 * network picks the node) the chain has no rule: the set only shows which
 * buckets this node is heir to.
 *
 * The set changes in one transaction (flush and add), so no packet sees a
 * half-changed set.  The table is made at open (anew, replacing one an
 * earlier run left) with an empty set: a starting node forwards no tracked
 * flow until it holds buckets.
 *
 * The lease (L, buckets.lease_ms; policy.h "Leases"): every element expires
 * L after it was added, so a node whose daemon died or froze stops
 * forwarding by itself; the daemon renews the set (flush and add again,
 * the same transaction) every heartbeat.  0: no timeout.
 */
#ifndef CTSYNC_KERNEL_NFTB_H
#define CTSYNC_KERNEL_NFTB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nftb;

/* Make (or take over) the table with an empty set and the two rules for
 * nbuckets and seed.  0 or -errno, with nftables' message in err. */
int nftb_open(struct nftb **out, const char *table, unsigned nbuckets, uint32_t seed,
	      bool filter, uint32_t lease_ms, char *err, size_t errlen);
/* The set holds exactly these buckets now, each for the lease from now
 * (one transaction). */
int nftb_set(struct nftb *n, const uint32_t *buckets, unsigned count, char *err, size_t errlen);
/* The commands nftb_open runs, for documentation and tests. */
int nftb_format_table(char *buf, size_t len, const char *table, unsigned nbuckets, uint32_t seed,
		      bool filter, uint32_t lease_ms);
void nftb_close(struct nftb *n);

#endif
