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

/*
 * Source NAT to the cluster's shared address(es) (nat.snat; docs/
 * OPERATIONS.md, "NAT in active-active").  Every node would pick the same
 * public port for two clients that two nodes translate at once (the kernel
 * keeps a free source port): the port range is split into blocks, node id
 * k translating only into block k, whether the others are alive or not, so
 * no two nodes can make the same mapping and a flow keeps its port when it
 * moves.  The table gets two more chains:
 *
 *   chain nat_out {
 *       type nat hook postrouting priority srcnat - 1; policy accept;
 *       oifname IF ip saddr != A [ip saddr { FROM }] meta l4proto { tcp, udp }
 *           snat ip to A:LO-HI                       # this node's block
 *       ... meta l4proto icmp snat ip to A:LO-HI     # echo ids alike
 *       ... snat ip to A                             # other protocols
 *   }
 *   chain nat_guard {
 *       type filter hook input priority filter - 5; policy accept;
 *       ip daddr A meta l4proto { tcp, udp } th dport RLO-RHI
 *           ct state new,invalid,untracked counter drop
 *   }
 *
 * Priority srcnat - 1: before the ruleset's own NAT chains (the first
 * chain that maps a flow decides).  The guard: a reply to the shared
 * address reaches every node; one whose kernel lacks the flow (the record
 * is still on its way) would hand it to its own stack, which answers a TCP
 * segment with a reset — dropped instead, the peer retransmits.  RLO-RHI
 * is the whole range: every block, ours included.
 */
#define NFTB_MAX_SNAT 8
#define NFTB_MAX_FROM 8

struct nftb_snat {
	int family;                     /* AF_INET or AF_INET6 */
	char address[46];               /* the shared address, as text */
	char ifname[16];                /* where it applies (oifname) */
	unsigned nfrom;                 /* 0: any source */
	char from[NFTB_MAX_FROM][50];   /* source prefixes, as text */
};

struct nftb_nat {
	unsigned nsnat;                 /* 0: no NAT of ours */
	struct nftb_snat snat[NFTB_MAX_SNAT];
	uint16_t range_lo, range_hi;    /* the whole shared range */
	unsigned blocks;                /* it is split into this many */
	uint16_t lo, hi;                /* our block */
};

/* Block `id` (1..blocks) of [range_lo, range_hi], split into `blocks`
 * equal blocks (the remainder unused): 0, or -ERANGE (no such block, or
 * a block of no port). */
int nftb_nat_block(uint16_t range_lo, uint16_t range_hi, unsigned blocks, uint32_t id,
		   uint16_t *lo, uint16_t *hi);

/* Make (or take over) the table with an empty set and the two rules for
 * nbuckets and seed.  0 or -errno, with nftables' message in err. */
int nftb_open(struct nftb **out, const char *table, unsigned nbuckets, uint32_t seed,
	      bool filter, uint32_t lease_ms, const struct nftb_nat *nat, char *err,
	      size_t errlen);
/* The set holds exactly these buckets now, each for the lease from now
 * (one transaction). */
int nftb_set(struct nftb *n, const uint32_t *buckets, unsigned count, char *err, size_t errlen);
/* The commands nftb_open runs, for documentation and tests. */
int nftb_format_table(char *buf, size_t len, const char *table, unsigned nbuckets, uint32_t seed,
		      bool filter, uint32_t lease_ms, const struct nftb_nat *nat);
void nftb_close(struct nftb *n);

#endif
