/*
 * ct.h — one conntrack entry as ctsync carries it.
 *
 * Everything the kernel can tell about a flow that matters after failover:
 * both tuples, zone, status bits, timeout, mark, labels, protocol state (TCP,
 * SCTP, DCCP), NAT sequence adjustment and helper name.  NAT mappings are not
 * stored separately: the kernel derives them from the two tuples and the
 * IPS_SRC_NAT/IPS_DST_NAT status bits, and so does ctnl_build() when it
 * injects an entry.
 *
 * Addresses and ports are kept in network byte order (as the kernel has
 * them); everything else is host order.  `has` says which optional parts are
 * known: an UPDATE event from the kernel only carries what changed, so
 * ct_merge() folds a partial entry into a complete one.
 */
#ifndef CTSYNC_KERNEL_CT_H
#define CTSYNC_KERNEL_CT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

union ct_addr {
	uint32_t ip4;
	uint8_t ip6[16];
	uint32_t w[4];
};

struct ct_tuple {
	union ct_addr src, dst;
	uint16_t sport, dport;      /* network order; ICMP: sport is the id */
	uint8_t icmp_type, icmp_code;
};

struct ct_seqadj {
	uint32_t pos, before, after;
};

enum {
	CT_HAS_STATUS   = 1u << 0,
	CT_HAS_TIMEOUT  = 1u << 1,
	CT_HAS_MARK     = 1u << 2,
	CT_HAS_TCP      = 1u << 3,
	CT_HAS_SCTP     = 1u << 4,
	CT_HAS_DCCP     = 1u << 5,
	CT_HAS_SEQADJ_O = 1u << 6,
	CT_HAS_SEQADJ_R = 1u << 7,
	CT_HAS_HELPER   = 1u << 8,
	CT_HAS_LABELS   = 1u << 9,
	CT_HAS_REPLY    = 1u << 10,
	CT_HAS_ZONE     = 1u << 11,
	CT_HAS_SECMARK  = 1u << 12,
};

#define CT_HELPER_LEN 16        /* NF_CT_HELPER_NAME_LEN, with the NUL */
#define CT_LABELS_LEN 16        /* 128 label bits */

struct ct {
	uint8_t l3;                 /* AF_INET or AF_INET6 */
	uint8_t l4;                 /* IPPROTO_* */
	uint16_t zone;
	uint32_t has;               /* CT_HAS_* */
	struct ct_tuple orig, reply;
	uint32_t status;
	uint32_t timeout;           /* seconds left */
	uint32_t mark;
	uint32_t secmark;
	uint32_t id;                /* kernel's id, local meaning only */
	struct {
		uint8_t state, wscale[2], flags[2];
	} tcp;
	struct {
		uint8_t state;
		uint32_t vtag[2];
	} sctp;
	struct {
		uint8_t state, role;
		uint64_t hs_seq;
	} dccp;
	struct ct_seqadj seqadj[2];     /* [0] original, [1] reply direction */
	char helper[CT_HELPER_LEN];
	uint8_t labels[CT_LABELS_LEN];
};

/* Field by field (the struct has padding). */
bool ct_tuple_equal(const struct ct_tuple *a, const struct ct_tuple *b);
bool ct_tuple_is_zero(const struct ct_tuple *t);
/* True when the flow's key (family, protocol, zone, original tuple) is equal. */
bool ct_key_equal(const struct ct *a, const struct ct *b);
/* 64-bit hash of the key; stable across nodes and runs (used in digests). */
uint64_t ct_key_hash(const struct ct *ct);
/* Fold the parts `src` has into `dst` (same key). */
void ct_merge(struct ct *dst, const struct ct *src);
/* Would ct_merge(have, src) change anything but the timeout? */
bool ct_differs(const struct ct *have, const struct ct *src);
/* Does the protocol have ports in its tuple (TCP, UDP, UDP-Lite, SCTP, DCCP)? */
bool ct_has_ports(uint8_t l4);
/* Reply tuple for a protocol whose reply is the mirrored original, or false. */
bool ct_mirror(const struct ct *ct, struct ct_tuple *out);
/* Does the address (given as family + bytes) fall in ct's tuples? */
bool ct_has_addr(const struct ct *ct, int family, const union ct_addr *a,
		 unsigned plen);
/* Short human form: "tcp 198.51.100.10:40000 -> 203.0.113.10:80 zone 0". */
int ct_format(const struct ct *ct, char *buf, size_t len);
/* Human name of an IP protocol, "proto-N" if unknown. */
const char *ct_proto_name(uint8_t l4);
/* Inverse of ct_proto_name(); -1 when unknown. */
int ct_proto_by_name(const char *name);
const char *ct_tcp_state_name(uint8_t state);

#endif
