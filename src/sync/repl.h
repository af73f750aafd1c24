/*
 * repl.h — replication: kernel events in, frames out; frames in, kernel
 * injections out.  The ownership rule of DESIGN.md lives here.
 *
 *  - A flow the local kernel reports (not caused by our own injection) and
 *    that nobody else owns is owned by this node and advertised.
 *  - A flow received from peer P is owned by P, held in the table, and (with
 *    inject = immediate) written into the local kernel table.  It is never
 *    re-advertised; its local expiry is not a delete.
 *  - Packets on this node touching a peer's flow make this node adopt it when
 *    the owner is dead, or when this node is the rightful primary (policy.h:
 *    of two primaries, the newer promotion).
 *  - Every upsert is a claim (generation, sender); of two claims for one
 *    flow the newer wins on every node (policy.h), an older one is refused
 *    and counted.
 *  - promote: take ownership of every flow held at a term newer than any
 *    seen, commit what is not in the kernel yet, advertise.  demote: stop
 *    claiming; a peer that advertises a flow takes it over.
 *
 * Local changes are coalesced: a flow is queued once on a dirty list however
 * often it changes, and repl_flush() encodes its latest state into frames
 * filled to the MTU.
 *
 * The kernel and the network are reached only through struct repl_ops, so
 * unit tests drive this file with a simulated kernel and link.
 */
#ifndef CTSYNC_SYNC_REPL_H
#define CTSYNC_SYNC_REPL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "kernel/ct.h"
#include "kernel/ctnl_msg.h"    /* enum ctnl_op, enum ctnl_event */
#include "kernel/exp.h"
#include "sync/natuse.h"
#include "sync/table.h"

#define REPL_MAX_PEERS 32
#define REPL_MAX_IGNORE 64
#define REPL_MAX_ZONES 32

struct repl_net {
	int family;
	union ct_addr addr;
	unsigned plen;
};

#define REPL_ALL 0u             /* ops.send: to every peer */

struct repl_config {
	uint32_t node_id;
	struct natuse_cfg nat;          /* nat.snat: the blocks to count (natuse.h) */
	bool primary;
	bool inject_immediate;
	unsigned npeers;
	uint32_t peer_id[REPL_MAX_PEERS];
	struct sockaddr_storage peer_addr[REPL_MAX_PEERS];      /* for status only */
	size_t frame_size;              /* bytes per datagram */
	uint32_t heartbeat_ms;
	uint32_t dead_after;            /* missed heartbeats */
	/* The transport reports the membership (CPG): a peer is dead when it
	 * leaves it, not when its heartbeats stop — corosync holds every
	 * message back while it forms a new membership (a token time-out and
	 * more), which heartbeat silence would take for every node dying. */
	bool membership;
	size_t resend_bytes;            /* ring of sent frames kept for NACKs */
	uint32_t nack_ms;               /* NACK a gap again after this long */
	uint32_t gap_timeout_ms;        /* give a gap up (and resync) after this */
	uint32_t refresh_ms;            /* re-read the kernel table this often (0: never) */
	uint32_t commit_quiet_min;      /* commits of this many pause NEW events and
					 * send from a second thread (0: 10,000) */
	bool exp_sync;                  /* replicate expectations */
	unsigned nexp_helpers;          /* 0: every helper's */
	char exp_helpers[8][CT_HELPER_LEN];
	bool proto[256];                /* protocols to sync */
	/* Filters (repl_filter.c): a TCP flow is synced once it is seen in
	 * one of tcp_states (a bit per TCP_CONNTRACK_*; 0: in any), any flow
	 * once it has lived min_age_ms (0: at once) — until then it waits,
	 * unsent; only the zones listed (or, zones_exclude, all but those);
	 * strip: CT_HAS_MARK, _LABELS, _SECMARK neither sent nor restored. */
	uint16_t tcp_states;
	uint32_t min_age_ms;
	bool zones_exclude;
	unsigned nzones;
	uint16_t zones[REPL_MAX_ZONES];
	uint32_t strip;
	/* Active-active (policy.h): every node forwards the flows of the hash
	 * buckets (bucket.h) it holds; inject must be immediate. */
	bool active_active;
	unsigned nbuckets;
	uint32_t bucket_seed;
	/* Active-active where the network, not the buckets, decides which node
	 * forwards a packet (buckets.filter = false: nothing is dropped): a flow
	 * is owned by the node that saw its first packet while that node lives;
	 * its bucket's holder is its heir. */
	bool routed;
	/* Leases (policy.h): the held set's elements expire this long after
	 * the daemon last renewed them (every heartbeat); a bucket a dead peer
	 * may have held is taken once its lease has certainly run out.  0: no
	 * lease (the set stays while the daemon is gone). */
	uint32_t lease_ms;
	/* Quorum over UDP/multicast (policy.h, "Quorum"): hold buckets only
	 * while in contact, both ways, with a majority of the configured nodes
	 * (ourselves included).  Over CPG corosync says (repl_quorum). */
	bool quorum_majority;
	/* Defer (below): hold a new flow's first packet at most this long
	 * (0: no defer); at most defer_max packets held at once. */
	uint32_t defer_ms;
	unsigned defer_max;
	unsigned nignore;
	struct repl_net ignore[REPL_MAX_IGNORE];
};

struct repl_ops {
	void *arg;
	int (*inject)(void *arg, enum ctnl_op op, const struct ct *ct);
	int (*inject_flush)(void *arg);
	int (*dump)(void *arg);         /* delivers entries back via repl_kernel_event */
	int (*dump_start)(void *arg);   /* the same in the background; repl_dump_done() at the end */
	int (*dump_finish)(void *arg);  /* read a background dump to its end now (optional) */
	int (*inject_exp)(void *arg, enum ctnl_op op, const struct exp *e);
	int (*exp_dump)(void *arg);     /* expectations back via repl_kernel_exp_event */
	/* Stop (false) or restart kernel NEW events (optional; ctnl_events_new) */
	int (*events_new)(void *arg, bool on);
	/* Send injections from a second thread meanwhile (optional; 0 if it
	 * does; ctnl_inject_thread) */
	int (*inject_thread)(void *arg, bool on);
	int (*get)(void *arg, const struct ct *key, struct ct *out);    /* one entry, now */
	/* A frame to one node, or to every peer (REPL_ALL); the seal layer
	 * and the transport lie behind it (link.h). */
	int (*send)(void *arg, uint32_t node, const void *buf, size_t len);
	uint64_t (*now_ms)(void *arg);
	/* Is this one of the host's own addresses?  (Optional.) */
	bool (*is_local)(void *arg, int family, const union ct_addr *a);
	/* Active-active: the buckets this node holds now, n of them (none:
	 * it forwards no tracked flow).  Called whenever they change, and
	 * again a second later if it failed.  (Optional.) */
	int (*buckets)(void *arg, const uint32_t *held, unsigned n);
	/* Defer: let the held packet `cookie` go (repl_defer_*). */
	void (*release)(void *arg, uint64_t cookie);
	uint64_t (*now_us)(void *arg);  /* for hold times (optional) */
};

/* Counters of the engine: every one reaches `ctsyncctl stats`, `--json` and
 * metrics under its own name (daemon/counters.c reads this list). */
#define REPL_STATS(X) \
	X(rx_frames) \
	X(rx_malformed) \
	X(rx_bad_records) \
	X(rx_unknown_node) \
	X(rx_bad_source) \
	X(rx_self) \
	X(rx_stale) \
	X(rx_lost) \
	X(rx_upserts) \
	X(rx_upserts_same) /* repl_rx.c, apply_upsert */ \
	X(nat_block_full) /* our NAT block filled towards a destination (natuse.h) */ \
	X(rx_deletes) \
	X(rx_refreshes) \
	X(rx_heartbeats) \
	X(rx_bulks) \
	X(tx_frames) \
	X(tx_records) \
	X(tx_bytes) \
	X(tx_errors) \
	X(tx_bulks) \
	X(ev_new) \
	X(ev_update) \
	X(ev_destroy) \
	X(ev_own) \
	X(ev_filtered) /* protocol, address or zone not synced */ \
	X(filter_synced) /* synced once the state or age filter let them */ \
	X(filter_unsent) /* ended while the state or age filter held them */ \
	X(ev_foreign) \
	X(adopted) \
	X(ownership_conflicts) \
	X(claims_refused) \
	X(swept) \
	X(nat_clashes) \
	X(inject_retries) \
	X(inject_failed) \
	X(committed) \
	X(overruns) \
	X(resyncs) \
	X(rx_dup) \
	X(tx_retransmits) \
	X(tx_nacks) \
	X(rx_nacks) \
	X(resync_escalations) \
	X(resyncs_asked) \
	X(digest_mismatches) \
	X(orphans_claimed) \
	X(refreshes) \
	X(refreshed) \
	X(stale_purged) \
	X(dump_found) \
	X(dump_stale) /* see repl.c "dumps" */ \
	X(refreshes_skipped) \
	X(commits_quiet) \
	X(exp_events) \
	X(exp_rx_upserts) \
	X(exp_rx_deletes) \
	X(exp_injected) \
	X(exp_waiting_dropped) \
	X(exp_inject_failed) \
	X(rx_replay) \
	X(rx_incompatible) /* frames of a protocol major we do not speak */ \
	X(rx_stale_heartbeats) /* overtaken by a newer one of the same peer: ignored */ \
	X(resync_backoffs) /* digest resyncs spaced out (RESYNC_FRUITLESS) */ \
	X(rx_old_epoch) \
	X(rx_unconfirmed) \
	X(epochs_confirmed) \
	X(tx_challenges) \
	X(tx_responses) \
	X(rx_skipped_ranges) /* SKIPs taken: a peer's bulk to another node */ \
	X(rx_skipped_frames) /* frames of those counted as received */ \
	X(tx_control_too_big) /* a control frame larger than frame_size */ \
	/* active-active */ \
	X(bucket_changes) /* the buckets this node holds changed */ \
	X(buckets_gained) \
	X(buckets_lost) \
	X(bucket_takeovers) /* flows taken with a bucket that became ours */ \
	X(bucket_set_errors) /* ops.buckets failed (retried) */ \
	X(bucket_config_mismatches) /* a peer's heartbeat: other count or seed */ \
	X(lease_renewals) /* the held set written again, its lease renewed */ \
	X(lease_lapses) /* it was not renewed in time: the kernel emptied it */ \
	X(bucket_conflicts) /* a held bucket a peer of lower id also held: let go */ \
	X(quorum_losses) /* our partition lost quorum (corosync said, or no majority) */ \
	/* defer */ \
	X(defer_held) /* packets held (repl_defer_*) */ \
	X(defer_passed) /* let go at once: nothing to wait for */ \
	X(defer_acked) /* let go once acknowledged */ \
	X(defer_timeouts) /* let go at defer_ms without every ack */ \
	X(defer_overflow) /* let go at once: defer_max held already */ \
	X(defer_hold_us) \
	X(defer_hold_max_us) /* time held, total and most */ \
	X(hints_sent) \
	X(hints_applied) \
	X(hints_ignored) \
	X(acks_sent) \
	X(acks_received)

struct repl_stats {
#define REPL_STAT_FIELD(f) uint64_t f;
	REPL_STATS(REPL_STAT_FIELD)
#undef REPL_STAT_FIELD
};

/* Per-peer counters (`ctsyncctl stats`: peer.ID.NAME; metrics
 * ctsync_peer_NAME_total{peer="ID"}), every one listed. */
#define REPL_PEER_COUNTERS(X) \
	X(tx_frames) X(rx_frames) X(rx_bytes) X(rx_dup) X(rx_malformed) \
	X(gaps) X(lost) X(nacks_sent) X(nacks_received) X(retransmitted) \
	X(resyncs_asked) X(bulks_received) X(bulks_clean) \
	X(rx_replay) X(rx_old_epoch) X(rx_unconfirmed) X(rx_incompatible) \
	X(resync_backoffs)

struct repl_peer_counters {
#define REPL_STAT_FIELD(f) uint64_t f;
	REPL_PEER_COUNTERS(REPL_STAT_FIELD)
#undef REPL_STAT_FIELD
};

struct repl_peer_status {
	uint32_t id;
	struct sockaddr_storage addr;
	bool alive, known, in_sync;
	int64_t last_heard_ms;          /* -1: never */
	uint32_t epoch;
	uint8_t role;
	uint32_t term;                  /* what its last heartbeat said */
	uint32_t flows_held;            /* flows we hold owned by the peer */
	uint32_t flows_advertised;      /* what its last heartbeat said */
	uint32_t lag_frames;            /* frames it sent that we lack */
	bool holds;                     /* active-active: it says it holds buckets */
	unsigned buckets;               /* active-active: buckets it owns in our map */
	uint64_t lost_frames;           /* given up on (repaired by resync) */
	unsigned held_frames;           /* received after a gap, waiting */
	/* versions (wire.h "Versions"): what its heartbeats say (0: none yet),
	 * and the major of its frames when we do not speak it (0: we do) */
	uint16_t proto_major, proto_minor;
	uint32_t features;
	char release[33];
	uint8_t incompatible;
	/* digest resyncs since its digest last matched; >= RESYNC_FRUITLESS:
	 * the next is not asked before resync_wait_ms from now */
	unsigned fruitless_resyncs;
	uint32_t resync_wait_ms;
	struct repl_peer_counters c;
};

struct repl_status {
	uint32_t node_id, epoch;
	/* nat.snat: each node's block (ours first), how full (natuse.h) */
	unsigned nnat;
	struct { uint32_t id; struct natuse_block b; } nat[REPL_MAX_PEERS + 1];
	bool primary, immediate, in_sync;
	uint32_t term;                  /* promotion term (policy.h) */
	uint32_t superseded_by;         /* primary, but another's claims are newer */
	uint32_t flows_local, flows_total, pending_commit;
	uint32_t orphans;               /* from the kernel at start, no owner yet */
	uint32_t exp_local, exp_total, exp_waiting;
	bool starting;                  /* still collecting peers' bulks */
	/* active-active */
	bool active_active, ready, holds;
	bool routed;                    /* the network picks the node (policy.h) */
	uint32_t defer_ms;              /* 0: no defer */
	unsigned defer_waiting;         /* packets held now */
	unsigned filter_waiting;        /* flows the state or age filter holds back */
	unsigned nbuckets;
	unsigned buckets_held;          /* in the kernel's set now */
	unsigned buckets_waiting;       /* ours by the map, their holders not gone yet */
	uint32_t lease_ms;              /* 0: none */
	int64_t lease_left_ms;          /* of the set in the kernel; -1: none held */
	int quorum;                     /* -1: no source (UDP), 0 not quorate, 1 quorate */
	bool quorum_majority;           /* the source: ours (a majority), else corosync's */
	unsigned quorum_votes, quorum_needed;   /* majority: nodes in contact, needed */
	uint32_t bucket_seed;
	uint32_t bucket_owner[1024];    /* node id per bucket, 0: nobody */
	unsigned npeers;
	struct repl_peer_status peer[REPL_MAX_PEERS];
};

struct repl;

struct repl *repl_new(const struct repl_config *cfg, const struct repl_ops *ops);
void repl_free(struct repl *r);

/* From the kernel (ctnl callbacks). */
/* Kernel events for these n entries follow: their buckets and chains are
 * fetched into the cache meanwhile (a hint; see table_prefetch). */
void repl_prefetch(struct repl *r, const struct ct *const *cts, unsigned n);
void repl_kernel_event(struct repl *r, enum ctnl_event ev, const struct ct *ct, bool own);
void repl_inject_error(struct repl *r, enum ctnl_op op, const struct ct *ct, int err);
void repl_kernel_exp_event(struct repl *r, enum ctnl_event ev, const struct exp *e, bool own);
void repl_exp_error(struct repl *r, enum ctnl_op op, const struct exp *e, int err);
/* The event socket overran: dump the kernel table and diff. */
void repl_kernel_overrun(struct repl *r);
/* Initial load of the local kernel table (call once, after subscribing). */
int repl_load_kernel(struct repl *r);
/* A background dump (ops.dump_start) was read to its end. */
void repl_dump_done(struct repl *r);
/* It broke off (a read error): a full one is tried again. */
void repl_dump_failed(struct repl *r);

/* From the network: an authenticated frame, and the node the transport
 * says it came from (0: none it knows), which must be the one the frame
 * names. */
void repl_receive(struct repl *r, const uint8_t *buf, size_t len, uint32_t from);
/* From a transport that knows the membership (corosync CPG): a node joined
 * or left.  One that left is dead at once, its flows adoptable; one that
 * joined is sent a heartbeat now, and asked for all its flows if it is back
 * after a partition.  UDP transports never call it: liveness
 * is the heartbeats'. */
void repl_member(struct repl *r, uint32_t node, bool up);

/*
 * Defer (pfsync's idea, for active-active on asymmetric paths: wire.h,
 * "Defer").  The kernel holds a packet (NFQUEUE, kernel/nfq.h) and hands it
 * here with its conntrack entry; `cookie` names it for ops.release, which
 * is called exactly once per packet: at once when there is nothing to wait
 * for, else when the acknowledgements came or after cfg.defer_ms.
 *  - repl_defer_new: the first packet of a flow this node creates.  The
 *    flow is taken as ours and sent with the next repl_flush (or
 *    repl_flush_lazy, which then waits no more: the first packets read
 *    together share frames) in frames every live peer acknowledges once
 *    its kernel has the flow: the packet goes when they all did, so that a
 *    reply through another node finds the flow there.
 *  - repl_defer_reply: the first reply (a TCP SYN-ACK) of a flow a live
 *    peer owns.  It is sent to the owner as a hint; the packet goes when
 *    the owner acknowledged it, so that the owner's kernel is past the
 *    handshake when the next packet of the connection reaches it.
 * repl_defer_poll lets go what waited long enough; it returns the
 * milliseconds until the next wait ends (0: none waits).
 */
void repl_defer_new(struct repl *r, const struct ct *ct, uint64_t cookie);
void repl_defer_reply(struct repl *r, const struct ct *ct, uint64_t cookie);
unsigned repl_defer_poll(struct repl *r);
unsigned repl_defer_count(const struct repl *r);
/* Let every held packet go now (shutting down). */
void repl_defer_release_all(struct repl *r);

/* Send what is dirty and flush queued injections. */
void repl_flush(struct repl *r);
/* The same, except that a few dirty flows wait up to REPL_HOLD_MS for more
 * to fill their frame (events arriving one by one at a high rate would
 * otherwise leave in frames of a few records each).  Returns 0 when nothing
 * waits, else the milliseconds until repl_flush() is due. */
#define REPL_HOLD_MS 2
#define REPL_HOLD_RECORDS 256
unsigned repl_flush_lazy(struct repl *r);
/* Heartbeat and liveness; call every heartbeat interval. */
void repl_tick(struct repl *r);
/* NACK retries, gap time-outs, start-up completion; call every ~10 ms. */
void repl_poll(struct repl *r);

/* Operator actions; return the number of flows affected or -errno. */
int repl_promote(struct repl *r);
int repl_demote(struct repl *r);
int repl_commit(struct repl *r);
int repl_resync(struct repl *r);
/* The transport's word on quorum (CPG: corosync's): without it this node
 * holds no bucket (active-active), and says so in its heartbeats. */
void repl_quorum(struct repl *r, bool quorate);

void repl_status(const struct repl *r, struct repl_status *st);
bool repl_active_active(const struct repl *r);
const struct repl_stats *repl_stats(const struct repl *r);
const struct repl_config *repl_cfg(const struct repl *r);
void repl_foreach(struct repl *r, void (*fn)(void *arg, const struct flow *f), void *arg);
void repl_foreach_exp(struct repl *r, void (*fn)(void *arg, const struct exp *e, uint32_t owner,
						 bool in_kernel), void *arg);

#endif
