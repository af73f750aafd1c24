/*
 * repl_int.h — what the files of the replication engine share.  Not for use
 * outside src/sync/.  The engine is one object (struct repl) cut by role:
 *
 *   repl.c         set-up, kernel events (the ownership rule), timers, status
 *   repl_tx.c      tx_*: sending — the dirty list, data frames, retransmissions,
 *                  bulks, heartbeats, control frames and ACKs
 *   repl_rx.c      rx_*: receiving — frames checked whole, epochs trusted,
 *                  applied in order; gaps NACKed, resyncs asked
 *   repl_dump.c    dump_*: kernel dumps (start-up, refresh, overrun)
 *   repl_own.c     own_*: adoption, start-up settling, buckets, promote/demote
 *   repl_quorum.c  quorum_*: quorum by majority (UDP), the transport's word (CPG)
 *   repl_expect.c  expect_*: expectations
 *   repl_defer.c   defer_*: packets held until peers acknowledge
 *
 * The functions of repl.h are repl_* wherever they live; the ones below
 * carry their file's prefix.  Small objects of their own: epoch.h (a peer's
 * lives), reorder.h, ring.h, table.h, exps.h, policy.h.
 */
#ifndef CTSYNC_SYNC_REPL_INT_H
#define CTSYNC_SYNC_REPL_INT_H

#include "sync/codec.h"
#include "sync/epoch.h"
#include "sync/exps.h"
#include "sync/keyset.h"
#include "sync/policy.h"
#include "sync/reorder.h"
#include "sync/repl.h"
#include "sync/ring.h"

#define OWNER_NONE 0u           /* a flow found in the kernel at start-up */
/* Frames held per peer while a gap is repaired.  A retransmission queues
 * behind everything the peer sent since (a whole bulk, when a bulk lost a
 * frame early), so the window must hold a large bulk: 65536 frames, at most
 * REORDER_BYTES of them. */
#define REORDER_CAP 65536u
#define REORDER_BYTES (64u << 20)
#define RESYNC_RETRY_MS 3000u   /* ask a peer for a bulk again after this */
#define RESYNC_FRUITLESS 2u     /* digest resyncs in a row before backing off */
#define RESYNC_BACKOFF_MS 10000u        /* the first back-off, doubled each time */
#define RESYNC_BACKOFF_MAX_MS 300000u
#define BULK_ALL UINT32_MAX
#define BEATS_KEPT 64           /* our heartbeats' send times kept (contact) */
#define TARGETED_BULKS 8        /* bulks to one node remembered for NACKs */

struct peer {
	uint32_t id;
	struct sockaddr_storage addr;
	bool known, alive, hb_valid;
	uint32_t epoch;
	uint32_t next_seq;              /* next data frame to apply */
	uint64_t last_heard;
	struct hb_info hb;
	uint64_t dead_at;               /* when it left the membership (CPG) */
	bool member;                    /* in the membership now (CPG), heard or not */
	/* quorum by majority: when we sent the heartbeat of ours its latest
	 * report echoes (it heard us then, and we hear it): 0 never */
	uint64_t contact;
	uint64_t hb_pn;                 /* the packet number of its frame */
	/* ordering and repair */
	struct reorder *held;
	uint64_t gap_since, nack_at;
	unsigned mismatch;              /* heartbeats in a row whose digest differs */
	uint64_t resync_asked_at;
	/* resyncs asked because its digest differed, since it last matched:
	 * past RESYNC_FRUITLESS of them they are spaced out (a storm of bulks
	 * is a fault: two nodes that compute the digest differently) */
	unsigned fruitless;
	uint64_t resync_not_before;
	/* it speaks a protocol major we do not (wire.h "Versions"): the last
	 * one seen and when; never alive, never in sync, never answered */
	uint8_t incompatible;
	uint64_t incompatible_at;
	uint64_t bulk_sent_at;          /* our last bulk to it (0: none yet) */
	/* its bulk being received */
	bool bulk_active, bulk_clean;
	uint32_t bulk_gen;
	bool bulk_done;                 /* a complete bulk since we started */
	struct epoch ep;                /* its lives: challenges, replays */
	struct challenge_info pending_response;
	struct repl_peer_counters c;
	/* defer: the last of our data frames it acknowledged */
	bool acked_any;
	uint32_t acked_seq;
};

/* A packet held until peers acknowledge (repl.h, "Defer"). */
struct defer_wait {
	uint64_t cookie;
	uint64_t deadline;              /* ms */
	uint64_t t0_us;
	uint32_t seq;                   /* new flow: our data frame that carried it */
	uint64_t pn;                    /* hint: the frame that carried it */
	uint32_t owner;                 /* hint: sent to */
	uint32_t need;                  /* new flow: peers (bits by index) yet to ack */
	bool hint;
	bool unsent;                    /* new flow: its frame not sent yet */
};

enum dump_mode {
	DUMP_NONE,
	DUMP_SYNC,                      /* start-up, resync: read at once */
	DUMP_REFRESH,                   /* background: timeouts of our flows */
	DUMP_FULL,                      /* background, after an overrun: everything */
};

struct repl {
	struct repl_config cfg;
	struct repl_ops ops;
	struct table *t;
	struct exps *x;
	bool exp_dirty;                 /* an expectation waits to be advertised */
	bool exp_waiting;               /* one waits for its master */
	struct repl_stats st;
	uint64_t nat_fulls;             /* natuse_fulls() of our block, counted so far */
	uint32_t epoch, seq;            /* seq: last data frame sent */
	uint64_t pn;                    /* next packet number */
	uint64_t last_hb, last_tick;    /* heartbeat sent, repl_tick run */
	uint32_t beat;                  /* our last heartbeat's number (HA_BEAT) */
	uint64_t beat_at[BEATS_KEPT];   /* when beat n was sent: [n % BEATS_KEPT] */
	uint64_t rx_pn;                 /* the unsequenced frame being applied */
	int quorum;                     /* repl_quorum: -1 never said, 0, 1 */
	unsigned dump_seen;             /* entries of a synchronous dump, for keepalive */
	uint8_t secret[EPOCH_SECRET_LEN];       /* keys the cookies of our challenges */
	uint32_t bulk_id, gen;
	struct policy pol;              /* role, term, who should own what */
	struct peer peer[REPL_MAX_PEERS];
	struct ring *sent;
	/* dirty list: flows whose latest state is to be advertised */
	struct flow **dirty;            /* a vector, in the order they became dirty */
	size_t ndirty, dcap;
	uint64_t dirty_since;           /* when the first of them became dirty */
	/* the data frame being filled */
	struct wbuf w;
	uint8_t *buf;
	uint8_t *rtx;                   /* a retransmission, under a new packet number */
	uint8_t *ctl;                   /* a control frame or ACK (frame_size bytes) */
	uint32_t bulk_to;               /* who needs all our flows: 0 nobody,
					 * BULK_ALL every peer, else one node */
	const struct peer *tx_only;     /* sequenced frames go to this peer alone */
	/* recent bulks sent to one node: a NACK of theirs from another node
	 * is answered with a SKIP (wire.h) */
	struct targeted { uint32_t first, last, node; } targeted[TARGETED_BULKS];
	unsigned ntargeted;

	bool loading;                   /* the initial dump is being read */
	bool starting;                  /* orphans not yet settled (see repl.c) */
	uint64_t started;
	/* Kernel dumps (repl.c "dumps"): one at a time. */
	enum dump_mode dump_mode;
	uint32_t dump_gen;              /* marks the flows a dump (or an event) saw */
	bool dump_again;                /* an overrun during a dump: another one */
	bool new_events_off;            /* paused by a commit, not yet resumed */
	struct keyset gone;             /* keys dropped while a background dump runs */
	uint64_t last_refresh;
	/* The earliest moment a peer's copy of one of our flows expires (a
	 * lower bound): no refresh dump is needed before it nears.  scan_min
	 * collects the next value while a dump runs. */
	uint64_t next_expiry, scan_min;
	/* active-active: the buckets the kernel was last told we hold */
	uint32_t map_gen;               /* the policy's map they came from */
	bool map_applied;               /* ops.buckets succeeded for map_gen */
	uint64_t map_retry_at;
	uint8_t held[POLICY_MAX_BUCKETS];       /* in the kernel's set (heartbeats say so) */
	unsigned nheld;
	uint64_t lease_at;              /* the set last written: it expires lease_ms later */
	/* per bucket: since when the map gives it to us (0: it does not), its
	 * owner before that, and the map's owner at the last look (repl_own.c,
	 * "leases and handovers") */
	uint64_t want_since[POLICY_MAX_BUCKETS];
	uint32_t prev_owner[POLICY_MAX_BUCKETS];
	uint32_t owner_was[POLICY_MAX_BUCKETS];
	/* the first heartbeat of ours sent since the bucket became ours: a
	 * peer's report counts only once it echoes that one (HA_ECHO) */
	uint32_t announce[POLICY_MAX_BUCKETS];
	unsigned nwaiting;              /* ours by the map, not yet free to take */
	unsigned conflicts;             /* let go at the last look: a peer holds them */
	/* filters (repl_filter.c): flows the state or age filter holds back,
	 * unsent (NULL: neither is configured), and of those still too
	 * young, the order they came in */
	struct table *wait;
	struct flow **young;
	size_t young_head, nyoung, young_cap;
	/* defer: packets held, in the order they came */
	struct defer_wait *dw;
	unsigned ndw;
	bool defer_unsent;              /* a wait's flow is not sent yet */
	bool ackreq;                    /* data frames sent now ask for an ACK */
	bool ackreq_sent;               /* one did since ackreq was set */
};

/* repl.c */
uint64_t repl_now(struct repl *r);
struct peer *repl_peer(struct repl *r, uint32_t id);
void repl_inject(struct repl *r, enum ctnl_op op, struct flow *f);
/* A kernel event or dump entry, counted already: the ownership rule. */
void repl_local_change(struct repl *r, enum ctnl_event ev, const struct ct *ct);
void repl_drop(struct repl *r, struct flow *f);
unsigned repl_sweep(struct repl *r, uint32_t owner, uint32_t gen);
bool repl_peer_dead(struct repl *r, uint32_t id);
bool repl_peer_incompatible(struct repl *r, const struct peer *p);
/* Start-up over, and every live peer's flows held in full. */
bool repl_in_sync(struct repl *r);
void repl_reread(struct repl *r, struct flow *f);

/* Take ct (in full) as a new flow of ours, and advertise it. */
void repl_add_ours(struct repl *r, const struct ct *ct);

/* repl_filter.c: what is synced (repl_config "Filters") */
int filter_init(struct repl *r);
void filter_free(struct repl *r);
/* ct without the parts the operator does not carry (buf holds the copy). */
const struct ct *filter_strip(const struct repl *r, const struct ct *ct, struct ct *buf);
/* Never synced: its protocol, an address or its zone. */
bool filter_out(const struct repl *r, const struct ct *ct);
/* A local event or dump entry (ev) of a flow our table holds (`held`) or
 * not: true when the state or age filter holds it back (or it ended
 * there), false when the caller goes on as without filters. */
bool filter_hold(struct repl *r, enum ctnl_event ev, const struct ct *ct, bool held);
/* A peer told us of ct, new to our table: a copy waiting here is stale
 * (the peer speaks for it; our events update its copy). */
void filter_peer_has(struct repl *r, const struct ct *ct);
/* A flow held back is needed now (an expectation of it): synced at once,
 * state filter permitting. */
void filter_wanted(struct repl *r, const struct ct *key);
/* Flows old enough now are synced (every poll). */
void filter_poll(struct repl *r);
/* After a dump of generation gen: what it did not show has ended. */
void filter_sweep(struct repl *r, uint32_t gen);
unsigned filter_waiting(const struct repl *r);

/* repl_quorum.c: quorum by majority (UDP, multicast; policy.h "Quorum") */
/* A heartbeat of p arrived: its echo of us dates our contact. */
void quorum_heard(struct repl *r, struct peer *p);
/* Quorum judged again (every tick, every heartbeat). */
void quorum_poll(struct repl *r);
/* May our set be written (renewed) now: a majority in contact lately? */
bool quorum_fresh(struct repl *r);
/* How long a dead peer may have gone on renewing its set, from the last
 * frame we heard of it, before it ran out. */
uint64_t quorum_dead_hold(const struct repl *r, const struct peer *p);
/* The quorum changed (ours, or the transport's word): break before make. */
void quorum_set(struct repl *r, bool quorate);
void quorum_status(struct repl *r, struct repl_status *st);

/* repl_tx.c: sending */
/* Queue our flow f to be advertised (once, however often it changes). */
void tx_mark_dirty(struct repl *r, struct flow *f, enum wire_rec op);
/* Flush what is dirty, then a heartbeat (role, term, flows, digest). */
void tx_heartbeat(struct repl *r);
/* The same, in answer to a peer's HA_ASK: it does not ask in turn. */
void tx_heartbeat_answer(struct repl *r);
/* A record into the data frame being filled (sent when full). */
void tx_emit_bulk(struct repl *r, enum wire_rec type, const struct bulk_info *b);
void tx_emit_exp(struct repl *r, enum wire_rec type, const struct exp *e);
/* Node `to` (or BULK_ALL) needs all our flows: a bulk goes out soon. */
void tx_want_bulk(struct repl *r, uint32_t to);
/* The node a sent frame was for alone (0: every peer). */
uint32_t tx_frame_for(const struct repl *r, uint32_t seq);
/* The records in w as one frame outside the data sequence, to p (NULL: to
 * all); its packet number. */
uint64_t tx_unseq(struct repl *r, const struct peer *p, struct wbuf *w);
/* Control records (any of a NACK, a SKIP, a response, a challenge) in one
 * frame outside the data sequence, to one peer (NULL: to all).  Ranges
 * beyond the frame size are left for the next time. */
void tx_control(struct repl *r, const struct peer *p, const struct nack_info *n,
		const struct nack_info *skip, const struct challenge_info *response,
		const struct challenge_info *challenge);
/* Answer p's NACK: resend what the ring holds, SKIP what was another
 * node's, escalate to a bulk what is gone. */
void tx_retransmit(struct repl *r, struct peer *p, const struct nack_info *n);
/* Acknowledge p's frame (sequenced: seq; else its packet number), once
 * what it made us inject is in the kernel. */
void tx_ack(struct repl *r, struct peer *p, bool unseq, uint32_t seq, uint64_t pn);

/* repl_rx.c: receiving */
void rx_poll(struct repl *r, struct peer *p);
void rx_reset(struct peer *p);
/* Ask p for all its flows (a RESYNC_REQ; at most every few seconds). */
void rx_ask_resync(struct repl *r, struct peer *p, const char *why);
bool rx_in_sync(struct repl *r, const struct peer *p);
uint32_t rx_lag(const struct peer *p);

/* repl_dump.c: kernel dumps */
void dump_entry(struct repl *r, const struct ct *ct);
/* Synchronous: `sweep_local` drops our flows the kernel no longer has. */
int dump_and_diff(struct repl *r, bool sweep_local);
void dump_poll(struct repl *r);
/* NEW events back on after a quiet commit (retried by dump_poll). */
void dump_resume_new_events(struct repl *r);

/* repl_own.c: ownership changes */
/* A new flow of ours, claimed at our term. */
void own_claim_new(struct repl *r, struct flow *f);
/* Local traffic made us take a peer's (or nobody's) flow. */
void own_adopt(struct repl *r, struct flow *f);
void own_startup_poll(struct repl *r);
/* The flow's hash bucket (active-active; 0 otherwise). */
unsigned own_bucket(const struct repl *r, const struct ct *ct);
/* Active-active: become ready once in sync; when the bucket map moved,
 * take the flows of the buckets gained and tell the kernel (ops.buckets). */
void own_buckets_poll(struct repl *r);

/* repl_expect.c: expectations */
void expect_flush(struct repl *r);
void expect_bulk(struct repl *r);
void expect_apply(struct repl *r, struct peer *p, const struct rec *rec);
void expect_poll(struct repl *r);
void expect_sweep(struct repl *r, uint32_t owner, uint32_t gen);
void expect_take_all(struct repl *r);
void expect_commit(struct repl *r);
void expect_settle(struct repl *r, bool take);

/* repl_defer.c */
/* repl_flush sent the flows the waits marked unsent wait for. */
void defer_sent(struct repl *r);
/* p acknowledged a frame of ours. */
void defer_ack(struct repl *r, struct peer *p, const struct ack_info *a);
/* p, which does not own the flow, says how its kernel has it. */
void defer_hint(struct repl *r, struct peer *p, const struct ct *ct);

#endif
