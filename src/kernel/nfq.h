/*
 * nfq.h — packets held in the kernel (nfnetlink_queue, over libmnl) while
 * their flow is replicated: the "defer" of active-active on asymmetric
 * paths (sync/repl.h, repl_defer_*).
 *
 * One queue.  The kernel here has no conntrack glue for nfnetlink_queue
 * (CONFIG_NETFILTER_NETLINK_GLUE_CT unset: no NFQA_CT), so a held packet
 * comes with its first NFQ_COPY bytes, and its flow is read from its
 * headers: addresses, protocol, ports, TCP flags.  FAIL_OPEN: a full queue
 * lets packets through rather than dropping them.  Every packet gets
 * exactly one verdict, NF_ACCEPT: the defer only ever delays.
 *
 * The rules that queue packets are in a table of ctsyncd's own,
 * `table inet <name>_defer` (nfq_rules_install):
 *
 *   chain defer {
 *       type filter hook postrouting priority srcnat + 10; policy accept;
 *       meta iiftype != 65535 ct helper != "" counter accept
 *       meta iiftype != 65535 ct state new ct status & (snat|dnat) == 0
 *           ct zone 0 counter NFQUEUE num Q bypass
 *       meta iiftype != 65535 ct direction reply meta l4proto tcp
 *           tcp flags & (syn|ack) == syn|ack counter NFQUEUE num Q bypass
 *   }
 *
 * The second holds the first packet of every forwarded flow (a packet the
 * host sends itself has no input interface, so the meta test fails for
 * it).  Its entry is not confirmed yet at this point — nobody can read it —
 * so the flow is what the headers say (nfq_pkt_new_ct).  What the headers
 * cannot tell is not held (such flows are replicated as usual, from their
 * NEW event): NAT (the original tuple), a zone, and a helper — a peer that
 * made the entry without its helper could not add it later, so the first
 * rule lets every flow with a helper pass before the others.  The third holds
 * the SYN-ACK of every forwarded TCP connection (nfq_pkt_synack_ct).  The kernel this
 * was written on has no nft `queue` expression (CONFIG_NFT_QUEUE unset)
 * but has xtables' NFQUEUE target, which nftables runs through
 * nft_compat: the rules are built with libnftnl (`nft list` shows them as
 * an xt target it cannot print).  `bypass`: with no ctsyncd listening,
 * packets pass unheld.
 */
#ifndef CTSYNC_KERNEL_NFQ_H
#define CTSYNC_KERNEL_NFQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernel/ct.h"

struct nfq;

/* Counters: (field, name in `ctsyncctl stats` and metrics), every field. */
#define NFQ_STATS(X) \
	X(packets, "nfq_packets") \
	X(unparsed, "nfq_unparsed") \
	X(verdicts, "nfq_verdicts") \
	X(verdict_errors, "nfq_verdict_errors")

struct nfq_stats {
	uint64_t packets;               /* held packets received */
	uint64_t unparsed;              /* headers not understood: let go at once */
	uint64_t verdicts, verdict_errors;
};

/* What the headers of a held packet say. */
struct nfq_pkt {
	uint8_t l3, l4;                 /* AF_INET or AF_INET6, IPPROTO_* */
	uint8_t tcp_flags;
	struct ct_tuple t;              /* as the packet goes */
};

/* A held packet: its id (for nfq_accept) and its headers; NULL when they
 * could not be read (or carry no ports): it must be let go all the same. */
typedef void (*nfq_packet_cb)(void *arg, uint32_t id, const struct nfq_pkt *p);

/* The headers of a packet's first `len` bytes.  0, or -EINVAL: not IPv4
 * or IPv6, cut short, a later fragment, an IPv6 extension header, or a
 * protocol without ports. */
int nfq_pkt_parse(const uint8_t *buf, size_t len, struct nfq_pkt *p);
/* A TCP SYN-ACK (the third rule's)? */
bool nfq_pkt_synack(const struct nfq_pkt *p);
/* Its flow's key: the reversed tuple.  In postrouting every NAT of a
 * reply has been undone, so a reply's reversed tuple is the original one
 * (zone 0 assumed). */
void nfq_pkt_key(const struct nfq_pkt *p, struct ct *key);
/* What a SYN-ACK that got this far did to its entry: SYN_RECV, a reply
 * seen (the key and those alone: the hint, repl_defer_reply).  The entry
 * is not read from the kernel: a read would wait for a background dump
 * under way on the same socket (milliseconds). */
int nfq_pkt_synack_ct(const struct nfq_pkt *p, struct ct *ct);
/* The entry conntrack made for a flow's first packet, as far as its
 * headers tell (no NAT: the rule holds no NATed flow): tuples, a TCP SYN's
 * SYN_SENT, the kernel's default first timeout.  -EINVAL for a first packet
 * not to hold (TCP other than a lone SYN: a loose pick-up). */
int nfq_pkt_new_ct(const struct nfq_pkt *p, struct ct *ct);

int nfq_open(struct nfq **out, uint16_t queue, uint32_t maxlen, nfq_packet_cb cb, void *arg);
void nfq_close(struct nfq *q);
int nfq_fd(const struct nfq *q);
/* Read and deliver up to `budget` held packets; returns how many, or -errno. */
int nfq_read(struct nfq *q, int budget);
/* Let packet `id` go on (NF_ACCEPT).  0 or -errno. */
int nfq_accept(struct nfq *q, uint32_t id);
const struct nfq_stats *nfq_stats(const struct nfq *q);

/* Make `table inet <table>_defer` with the two queueing rules above for
 * queue `queue`, replacing any earlier one, in one transaction; remove it.
 * 0 or -errno, with a message in err. */
int nfq_rules_install(const char *table, uint16_t queue, char *err, size_t errlen);
int nfq_rules_remove(const char *table, char *err, size_t errlen);

#endif
