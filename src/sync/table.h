/*
 * table.h — every flow this node knows, keyed by (family, protocol, zone,
 * original tuple), each with its owner node id (DESIGN.md, "Ownership").
 *
 * One table holds the local flows and the peers' flows alike; the owner field
 * says which is which, and per-owner counts and digests are kept up to date
 * on every change so that heartbeats and `status` cost nothing to produce.
 * The digest of an owner is the sum of the key hashes of its flows (their
 * low 32 bits, as the flows keep them): order independent and updated in
 * O(1) on insert, delete and owner change.
 */
#ifndef CTSYNC_SYNC_TABLE_H
#define CTSYNC_SYNC_TABLE_H

#include <stdbool.h>
#include <stdint.h>

#include "kernel/ct.h"

/*
 * A flow is stored packed (88 bytes for IPv4, 136 for IPv6, where
 * a struct ct is 200): addresses at their family's size, the common state in
 * the flow itself, the rarely set parts (helper, labels, NAT sequence
 * adjustment, SCTP/DCCP state, secmark) in a separate `ext` only when one is
 * non-zero.  flow_get() unpacks it into a struct ct, flow_set() packs one
 * back; status, timeout and mark may be read and written in place.
 */
struct flow_ext;

struct flow {
	struct flow *hnext;             /* hash chain */
	struct flow_ext *ext;           /* NULL: those parts are all zero */
	uint32_t khash;                 /* the low 32 bits of ct_key_hash() */
	uint32_t claim;                 /* the owner's claim generation (policy.h) */
	uint32_t peer_expiry;           /* ours: when peers' copies time out (s) */
	uint32_t owner;
	uint32_t bulk_mark;             /* mark-and-sweep generation */
	uint32_t status, timeout, mark; /* as in struct ct */
	uint16_t zone, has;
	uint8_t l4;
	uint8_t dirty;                  /* 0, or the REC_* to advertise */
	uint8_t v6 : 1;                 /* AF_INET6, else AF_INET */
	uint8_t in_kernel : 1;          /* peer flow present in our kernel table */
	uint8_t pending : 1;            /* peer flow waiting for commit (on-promote) */
	uint8_t dead : 1;               /* removed; freed once off the dirty list */
	uint8_t retry : 2;              /* RETRY_* already tried after an error */
	uint8_t nat : 1;                /* counted in the table's natuse */
	uint8_t tcp[5];                 /* state, wscale[2], flags[2] */
	uint8_t tuples[];               /* orig then reply: src, dst, ports, icmp */
};

/* The flow as a struct ct (id 0: the kernel's id is not kept). */
void flow_get(const struct flow *f, struct ct *out);
/* Store ct (same key) as the flow's state; -ENOMEM leaves the optional
 * parts (ext) as they were. */
int flow_set(struct flow *f, const struct ct *ct);
bool flow_key_equal(const struct flow *f, const struct ct *key);

struct table;

struct owner_stats {
	uint32_t id;
	uint32_t flows;
	uint64_t digest;
};

struct table *table_new(void);
void table_free(struct table *t);
struct flow *table_find(struct table *t, const struct ct *key);
/* Insert a copy of ct owned by `owner`; NULL on allocation failure. */
struct flow *table_add(struct table *t, const struct ct *ct, uint32_t owner);
/* The same with the key's hash (ct_key_hash) computed by the caller. */
struct flow *table_find_h(struct table *t, const struct ct *key, uint64_t h);
struct flow *table_add_h(struct table *t, const struct ct *ct, uint32_t owner, uint64_t h);
/* A hint before a batch of lookups of the keys with hashes h[0..n) (no
 * effect on any result): their buckets are fetched into the cache, then
 * the first flow of each chain.  On a table of a million flows each lookup
 * otherwise waits for two cache misses in turn (a fifth of the sender's
 * profile). */
void table_prefetch(const struct table *t, const uint64_t *h, size_t n);
/* flow_set() on a flow in the table, for what the table counts by state
 * (natuse). */
int table_flow_set(struct table *t, struct flow *f, const struct ct *ct);
/* Unlink from the table; the caller frees it (table_flow_free) when done. */
void table_remove(struct table *t, struct flow *f);
void table_flow_free(struct flow *f);
void table_set_owner(struct table *t, struct flow *f, uint32_t owner);
size_t table_count(const struct table *t);
/* Counters of one owner; zeroes if it holds nothing. */
struct owner_stats table_owner(const struct table *t, uint32_t owner);
/* Count the flows mapped into a NAT block as they enter and leave
 * (sync/natuse.h); the table owns n from now on. */
struct natuse;
void table_set_natuse(struct table *t, struct natuse *n);
struct natuse *table_natuse(const struct table *t);
/* Visit every flow; fn may remove (and free) the flow it is given. */
void table_foreach(struct table *t, void (*fn)(void *arg, struct flow *f), void *arg);

#endif
