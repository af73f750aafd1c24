/*
 * wire.h — the ctsync replication protocol, version 3.0.
 *
 * One frame per UDP datagram.  Every integer is big-endian; addresses and
 * ports are carried as the kernel holds them (network order).
 *
 * Frame header, 32 bytes, always exactly this size:
 *    0  u32  magic 0x43545359 ("CTSY")
 *    4  u8   version: the protocol's major number (3; "Versions" below)
 *    5  u8   flags: bit 0 UNSEQ — heartbeat/control frame outside the data
 *            sequence; its seq field repeats the last data seq sent
 *    6  u8   key id: which key sealed the frame; 0 = not sealed (insecure)
 *    7  u8   reserved, 0
 *    8  u32  sender node id (non-zero)
 *   12  u32  sender epoch: random, new at every daemon start, so a
 *            restarted peer is recognised by its first frame
 *   16  u32  frame sequence, per (node, epoch), +1 per data frame
 *   20  u16  length of the records that follow (without the tag)
 *   22  u16  reserved, 0
 *   24  u64  packet number, per (node, epoch): +1 for every datagram sent —
 *            data, heartbeat, control and every retransmission alike
 *
 * Sealing (seal.h).  With a key, the records are encrypted with an AEAD
 * whose associated data is the whole header (so flags, node, epoch, seq and
 * packet number cannot be altered, and the key id cannot be swapped), and a
 * 16-byte tag follows them.  The nonce is epoch || packet number (12
 * bytes) under a key derived for the sending node alone.  It never repeats
 * under one key: within a daemon's life the packet number only grows (64
 * bits do not wrap), and a daemon starts its packet numbers at a random
 * value below 2^62 under a random epoch, so two lives of one node would
 * need the same 32-bit epoch *and* overlapping 2^62-wide ranges to meet
 * (about 2^-32 times the fraction of the range used); a restart with a new
 * key starts afresh anyway.  Retransmissions are sealed again under a new
 * packet number, never resent as they were.
 *
 * Replay and restarts (repl_rx.c, epoch.h).  A receiver takes a frame only once per
 * (node, epoch, packet number), with a sliding window of 4096 packet
 * numbers.  It takes a new epoch from a node only after the node has proved
 * it is alive in it: a CHALLENGE (a cookie bound to node, epoch and the
 * time) answered by a RESPONSE sealed in that epoch.  A replayed frame of an
 * old life cannot answer, so it is dropped; an epoch the receiver has seen
 * replaced is dropped at once.
 *
 * Records follow back to back, each:
 *    0  u8   type (REC_*)
 *    1  u8   flags: bit 0 MANDATORY — a receiver that does not know the type
 *            must drop the frame instead of skipping the record
 *    2  u16  record length, header included (>= 4)
 *    4  ...  attributes: u8 type (bit 7 = mandatory), u8 length, value
 *
 * Unknown record types and unknown attributes without the mandatory bit are
 * skipped, so a newer node can talk to an older one during a rolling
 * upgrade.  Every known attribute has exactly one valid length; a record
 * whose attributes do not fit its length, or whose known attribute has the
 * wrong length, is malformed and dropped (and counted).
 *
 * Reliability is per sender (node, epoch): receivers apply data frames in
 * sequence order, hold frames that arrive after a gap, and ask for the
 * missing ones with NACK records (in UNSEQ frames) naming ranges of
 * sequence numbers.  The sender retransmits them from a ring of recently
 * sent frames; a NACK for frames no longer there makes it send a bulk of
 * all its flows (BULK_BEGIN ... BULK_END) instead, after which receivers
 * drop that sender's flows the bulk did not mention (mark and sweep).
 * Heartbeats carry the last data sequence sent (so a lost tail is seen) and
 * a digest of the sender's flows (so silent divergence is seen).
 *
 * A bulk for one node (it restarted, asked for a resync, or NACKed frames
 * no longer held) is sent to that node alone, in sequenced frames like any
 * other.  Every other node is told with a REC_SKIP (in an UNSEQ frame; the
 * attributes of a NACK: NA_TARGET the node the frames were for, NA_EPOCH
 * the sender's, NA_RANGE the frames) that those sequence numbers carry
 * nothing for it: it counts them as received.  A NACK for such frames from
 * another node is answered with a REC_SKIP, not with the frames; the node
 * they were for ignores a SKIP naming it.  Each such frame begins with a
 * REC_FOR (FOR_NODE: that node): where the transport delivers it to every
 * node anyway (a multicast group), the others take its sequence number and
 * skip its records.  Not mandatory: a node that does not know it applies
 * the bulk, as before targeted bulks existed.
 *
 * The owner of a flow record is the sender of its frame (DESIGN.md,
 * "Ownership"): an upsert from node P says "P owns this flow, here is its
 * latest state".
 *
 * Versions and compatibility.  A protocol version is major.minor.  The
 * header carries the major; heartbeats carry both and a feature set
 * (HA_PROTO, HA_FEATURES), and the release that sent them (HA_RELEASE).
 *  - A node takes frames of the majors it speaks (WIRE_VERSION_MIN ..
 *    WIRE_VERSION) and no other: a frame of another major is not decoded,
 *    its sender (named by the header, which every major keeps at the same
 *    place) is marked incompatible — logged once, shown in status, counted,
 *    never asked for anything, and never "in sync" — and nothing is sent in
 *    answer to it, so two majors side by side cannot storm each other.
 *  - Within a major, every change is one an older node can ignore: a new
 *    record type or attribute without the mandatory bit, a new heartbeat
 *    attribute, a new feature bit.  A minor number counts them.  Whatever
 *    a peer must understand to stay correct (not merely to be faster) is
 *    sent to it only when its heartbeats announce the feature; until its
 *    first heartbeat a peer is taken to speak the features of the minor
 *    WIRE_MINOR_BASE.
 *  - Incompatible, and so a new major: a change of the header, of the
 *    meaning or exact length of an attribute an older node reads, of the
 *    claim order, or of the digest.  The digest (HA_DIGEST) is the sum,
 *    mod 2^64, over the flows the sender owns, of the low 32 bits of each
 *    flow's key hash (ct_key_hash, kernel/ct.c: a pinned vector in
 *    test_codec guards it); two nodes that computed it differently would
 *    each find the other wrong forever.  Major 2 summed the whole 64 bits:
 *    that is why 3 exists.
 * tests/compat/ runs the previous release beside the current build.
 * 3.1 added HA_HELD, HA_LEASE, HA_BEAT, HA_ECHO and HA_ASK (FEAT_LEASES): a
 * 3.0 node skips them, and a 3.1 node takes a bucket a 3.0 peer held two
 * heartbeats after it moved.
 */
#ifndef CTSYNC_SYNC_WIRE_H
#define CTSYNC_SYNC_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define WIRE_MAGIC      0x43545359u
/* The major spoken and sent (a test build may say another: tests/compat). */
#ifndef WIRE_VERSION
#define WIRE_VERSION    3
#endif
#ifndef WIRE_VERSION_MIN
#define WIRE_VERSION_MIN 3              /* the oldest major still taken */
#endif
#define WIRE_MINOR      1               /* 3.1: FEAT_LEASES */
#define WIRE_MINOR_BASE 0               /* features assumed before a heartbeat */
/* Features (HA_FEATURES): what a node understands, by bit. */
enum {
	FEAT_CLAIMS   = 1u << 0,        /* REC_CLAIM */
	FEAT_TARGETED = 1u << 1,        /* REC_SKIP, REC_FOR: bulks to one node */
	FEAT_DEFER    = 1u << 2,        /* REC_ACKREQ, REC_ACK, REC_HINT */
	FEAT_BUCKETS  = 1u << 3,        /* HA_HOLDS, HA_BUCKETS: active-active */
	FEAT_LEASES   = 1u << 4,        /* HA_HELD, HA_LEASE (3.1): active-active */
};
#define WIRE_FEATURES (FEAT_CLAIMS | FEAT_TARGETED | FEAT_DEFER | FEAT_BUCKETS | FEAT_LEASES)
#define WIRE_HELD_MAX   128             /* HA_HELD: bytes, a bit per bucket (1024) */
#define WIRE_RELEASE_MAX 32             /* HA_RELEASE: bytes of text */
#define WIRE_HDR_LEN    32
#define WIRE_OFF_KEY    6
#define WIRE_OFF_NODE   8
#define WIRE_OFF_EPOCH  12
#define WIRE_OFF_SEQ    16
#define WIRE_OFF_LEN    20
#define WIRE_OFF_PN     24

/* A header field, big-endian, at one of the offsets above (for code that
 * looks at a header without opening the frame: the seal layer's log, the
 * fuzzers). */
static inline uint32_t wire_get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void wire_put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}
#define WIRE_F_UNSEQ    0x01
#define WIRE_MAX_FRAME  65507           /* largest UDP payload */

enum wire_rec {
	REC_FLOW_UPSERT = 1,
	REC_FLOW_DELETE = 2,
	REC_FLOW_REFRESH = 3,           /* key and timeout only: still alive */
	REC_EXP_UPSERT  = 4,
	REC_EXP_DELETE  = 5,
	REC_BULK_BEGIN  = 6,
	REC_BULK_END    = 7,
	REC_HEARTBEAT   = 8,
	REC_RESYNC_REQ  = 9,
	REC_NACK        = 10,
	REC_CHALLENGE   = 11,           /* prove you are alive in this epoch */
	REC_RESPONSE    = 12,           /* the proof: the challenge's cookie */
	REC_UPSERTS4    = 13,           /* packed upserts of plain IPv4 flows (below) */
	REC_DELETES4    = 14,           /* packed deletes of plain IPv4 flows */
	REC_CLAIM       = 15,           /* the claim generation of the upserts after it */
	REC_SKIP        = 16,           /* frames of mine that were for another node */
	REC_FOR         = 17,           /* the rest of this frame is for one node alone */
	REC_ACKREQ      = 18,           /* acknowledge this frame once applied (below) */
	REC_ACK         = 19,           /* a frame of yours is applied */
	REC_HINT        = 20,           /* your flow as I see it (below) */
};
#define REC_LAST REC_HINT
#define REC_F_MANDATORY 0x01
#define ATTR_MANDATORY  0x80

/* Flow attributes */
enum {
	FA_PROTO = 1,           /* u8 family (4|6), u8 IP protocol — mandatory */
	FA_ORIG,                /* tuple — mandatory */
	FA_REPLY,               /* tuple; absent = mirror of FA_ORIG */
	FA_ZONE,                /* u16 */
	FA_STATUS,              /* u32 */
	FA_TIMEOUT,             /* u32 seconds */
	FA_MARK,                /* u32 */
	FA_TCP,                 /* u8 state, wscale[2], flags[2] */
	FA_SCTP,                /* u8 state, u32 vtag[2] */
	FA_DCCP,                /* u8 state, role, u64 handshake seq */
	FA_SEQADJ_ORIG,         /* u32 pos, before, after */
	FA_SEQADJ_REPLY,
	FA_HELPER,              /* 1..15 bytes, no NUL */
	FA_LABELS,              /* 1..16 bytes, trailing zero bytes trimmed */
	FA_SECMARK,             /* u32 */
};
/* A tuple: src, dst (4 or 16 bytes each), sport, dport, icmp type, code:
 * 14 bytes for IPv4, 38 for IPv6. */

/*
 * Packed IPv4 records.  Most flows are TCP or UDP over IPv4 in zone 0 with
 * nothing but tuples, status, timeout, mark and TCP state; attributes cost
 * them 2 bytes each and a record header 4.  Such flows go in REC_UPSERTS4
 * and REC_DELETES4 records instead (always marked mandatory), entries back
 * to back until the record ends, each meaning exactly what the REC_FLOW_*
 * record of the same flow would mean:
 *   delete entry: u8 IP protocol, orig tuple (12 bytes: src, dst, sport,
 *                 dport) — 13 bytes;
 *   upsert entry: u8 present-bits (UP4_*), u8 IP protocol, orig tuple,
 *                 then in this order those present: status u32, timeout
 *                 u32, mark u32, TCP (5 bytes as FA_TCP), reply tuple (12
 *                 bytes; absent = the mirror of orig) — 27 bytes for TCP
 *                 without NAT, 39 with.
 * Only protocols with ports (TCP, UDP, UDP-Lite) are packed; an unknown
 * present-bit makes the record malformed.
 */
enum {
	UP4_STATUS  = 1 << 0,
	UP4_TIMEOUT = 1 << 1,
	UP4_MARK    = 1 << 2,
	UP4_TCP     = 1 << 3,
	UP4_REPLY   = 1 << 4,
};
#define UP4_ALL 0x1f

/* Expectation attributes */
enum {
	EA_PROTO = 1,           /* u8 family (4|6), u8 expected protocol, u8 master's — mandatory */
	EA_MASTER,              /* tuple: the master's original — mandatory */
	EA_TUPLE,               /* tuple expected — mandatory */
	EA_MASK,                /* tuple */
	EA_ZONE,                /* u16 */
	EA_TIMEOUT,             /* u32 seconds */
	EA_FLAGS,               /* u32 */
	EA_CLASS,               /* u32 */
	EA_HELPER,              /* 1..15 bytes */
	EA_FN,                  /* 1..31 bytes */
	EA_NAT,                 /* u32 direction, u8 protocol, tuple */
};

/* Heartbeat attributes */
enum {
	HA_ROLE = 1,            /* u8: 0 backup, 1 primary */
	HA_FLOWS,               /* u32 flows the sender owns */
	HA_DIGEST,              /* u64 order-independent digest of their keys */
	HA_LASTSEQ,             /* u32 last data seq sent */
	HA_TERM,                /* u32 the sender's promotion term (policy.h); absent = 0 */
	HA_HOLDS,               /* u8 active-active: 1 if the sender holds buckets now */
	HA_BUCKETS,             /* u32 bucket count, u32 seed: active-active only; every
				 * node must say the same (a differing one is logged) */
	HA_PROTO,               /* u16 major, u16 minor ("Versions" above) */
	HA_FEATURES,            /* u32 FEAT_* bits */
	HA_RELEASE,             /* 1..32 bytes: the sender's release, for people */
	/* 3.1, FEAT_LEASES (active-active): what the sender's kernel forwards
	 * at the moment it sent the heartbeat, and for how long it may go on
	 * doing so without the daemon (policy.h, "Leases") */
	HA_HELD,                /* 1..128 bytes: bit b (byte b / 8, bit b % 8) set
				 * when bucket b is in the sender's held set */
	HA_LEASE,               /* u32 ms: the lifetime of its held set's elements */
	/* The handshake of a handover (policy.h, "Leases"): which of our
	 * heartbeats a report was made after.  Receipt time proves nothing —
	 * a node thawed after a stop reads reports queued long before. */
	HA_BEAT,                /* u32: the sender's heartbeat number, +1 per
				 * heartbeat, per (node, epoch) */
	HA_ECHO,                /* u32 node, u32 epoch, u32 beat: the last
				 * heartbeat the sender received from that node;
				 * one attribute per peer it counts alive (up to
				 * WIRE_ECHO_MAX): also its word that it hears it */
	HA_ASK,                 /* u8 1: the sender waits for fresh reports (a
				 * bucket to take): every node answers with a
				 * heartbeat at once; an answer never asks */
};
#define WIRE_ECHO_MAX   32

/*
 * Claims (policy.h).  An upsert says "the sender owns this flow" under a
 * claim generation; two claims for one flow are ordered by generation, then
 * by lower node id, the same way on every node.  A REC_CLAIM record sets
 * the generation of every flow upsert (attribute or packed) after it in the
 * same frame, until the next REC_CLAIM; a frame starts at generation 0.
 * It is not mandatory: a node that does not know it applies the upserts as
 * unconditional claims, as before claims existed.
 */
enum {
	CLA_GEN = 1,            /* u32 */
};
enum {
	FOR_NODE = 1,           /* u32 */
};

/*
 * Defer (repl.h, "Defer").  A frame with a REC_ACKREQ (no attributes) asks
 * every node that applies it to answer, once it has applied the whole
 * frame and handed the kernel what it injects, with a REC_ACK in an UNSEQ
 * frame to the sender alone: AK_SEQ the frame's sequence number (a data
 * frame: frames apply in order, so it acknowledges every earlier one too),
 * or AK_PN its packet number (an UNSEQ frame).  A node holding the first
 * packet of a new flow lets it go when every live peer has acknowledged
 * the frame that carried the flow.
 *
 * A REC_HINT (flow attributes, as an upsert) is sent, with a REC_ACKREQ, in
 * an UNSEQ frame to a flow's owner by a node that does not own the flow
 * but forwards its packets (asymmetric paths): "this is the flow as my
 * kernel has it now".  The owner takes from it only what moves the flow
 * forward (a TCP handshake state further on, SEEN_REPLY, ASSURED), writes
 * that into its kernel and advertises the flow.  Neither record is
 * mandatory: a node that does not know them skips them, and the sender's
 * wait ends at its time-out.
 */
enum {
	AK_SEQ = 1,             /* u32 */
	AK_PN,                  /* u64 */
};
/* NACK attributes: which sender, which epoch, and the missing frames */
enum {
	NA_TARGET = 1,          /* u32 node whose frames are missing */
	NA_EPOCH,               /* u32 its epoch */
	NA_RANGE,               /* u32 first, u32 last (inclusive); repeated */
};
#define NACK_MAX_RANGES 128     /* a NACK record fits a 1500-byte MTU */

/* Bulk and resync attributes */
enum {
	BA_ID = 1,              /* u32 bulk id */
	BA_COUNT,               /* u32 flows sent in the bulk (END only) */
	BA_TARGET,              /* u32 node asked (RESYNC_REQ; 0 = everyone) */
};

/* Challenge and response attributes */
enum {
	CA_TARGET = 1,          /* u32 node challenged (CHALLENGE) or challenger (RESPONSE) */
	CA_EPOCH,               /* u32 the epoch challenged (CHALLENGE only) */
	CA_COOKIE,              /* 16 bytes */
};
#define CHALLENGE_COOKIE_LEN 16

#endif
