/*
 * policy.h — who should own a flow while several nodes are alive
 * (DESIGN.md, "Ownership").  The engine asks; this file decides.
 *
 * Claims.  Every flow carries the claim that made its owner the owner: a
 * generation and the owner's node id.  Two claims for one flow are ordered
 * the same way on every node: the newer generation wins, and of two of the
 * same generation the lower node id.  A node's *term* is its promotion
 * generation:
 *  - a node starts at term 1 as primary, 0 as backup;
 *  - promote raises the term above every term and claim it has seen, and
 *    claims every flow held at it: the newest promotion's claims beat every
 *    claim made before it;
 *  - a new flow of this node is claimed at the term;
 *  - taking over a flow (adoption) claims it at the term, or at one above
 *    the flow's claim if that is not older: a takeover always beats the
 *    claim it replaces.  The term itself does not move then — only a
 *    promotion may change which primary is rightful (below).
 * Terms and roles travel in heartbeats, claims with every upsert.
 *
 * Active-backup.  Of the live nodes that say they are primary, the one with
 * the newest (term, id) claim is the *rightful* primary; the others are
 * superseded (two primaries at once: a split brain healing, or a cluster
 * manager that promoted one node without demoting the other).  Local
 * traffic on a flow owned by a live peer makes this node take the flow only
 * when it is the rightful primary; on a flow whose owner is dead (or
 * unknown), any node takes it.  Because only one node is rightful at a
 * time, two primaries no longer take a flow from each other on every
 * packet: ownership settles on the newest promotion.
 *
 * Active-active.  Every node forwards: B hash buckets (bucket.h) are split
 * among the members that hold buckets, and a flow is owned by whoever owns
 * its bucket.  A member holds buckets while it is alive, primary (the
 * default in this mode; `demote` drains a node) and *ready*: its start-up
 * is over and it has been in sync with every live peer once, so that it
 * never forwards a flow it does not hold.  Heartbeats say whether the
 * sender holds buckets.  The split is a function of who holds buckets and
 * the configured members alone, so every node that knows the same computes
 * the same map:
 *  - every bucket has a home: the sorted members (this node and every
 *    configured peer), bucket b at home members[b mod N];
 *  - a home that holds buckets owns it; otherwise the bucket goes to the
 *    holders, sorted, number (b / N) mod H.
 * A node that dies moves only its own buckets, spread evenly over the
 * others; a node that comes back takes back exactly its home buckets.
 * Local traffic on a flow makes this node take it when its bucket is ours
 * (whoever owned it, dead or alive: a bucket that came back home brings
 * its flows with it); a bucket that becomes ours brings every flow held in
 * it (policy_map_gen tells the engine to look).  Claims order two owners
 * of one flow exactly as in active-backup.
 *
 * Leases (repl_own.c, "leases and handovers").  The map says who should
 * hold a bucket; the kernel's set (ops.buckets) says who does, and a
 * bucket is never in two nodes' sets at once:
 *  - every element of the set expires lease_ms after the daemon last
 *    wrote the set, which it does every heartbeat: a node whose daemon
 *    died or froze stops forwarding by itself;
 *  - heartbeats say which buckets the sender's set holds (HA_HELD), and a
 *    node lets go of a bucket before the heartbeat that says so;
 *  - a bucket the map gives us enters our set only when no other node
 *    can be forwarding it: every live peer's last report lacks it and was
 *    made after that peer received our first heartbeat since the bucket
 *    became ours (heartbeats are numbered, HA_BEAT, and each echoes the
 *    last number heard from every peer, HA_ECHO: a handshake, because when
 *    a report arrives says nothing of when it was made — a daemon thawed
 *    after a stop reads reports queued before its peers took its
 *    buckets); while buckets wait our heartbeats ask (HA_ASK) and every
 *    peer answers at once, so a handover takes a round trip; a peer in
 *    the membership but not heard yet holds whatever it may; every dead
 *    peer's lease has run out (its last frame — over CPG the moment it
 *    left, or we regained quorum — + its lease + a heartbeat).
 *  - a set not renewed in time (the daemon stalled past its lease) is
 *    taken as empty: its buckets are taken again like new ones.
 * The default lease (the dead time less two heartbeats) makes a dead
 * peer's lease run out before it is found dead, so takeover costs nothing
 * more.  Two nodes whose maps differ for a moment may both take a bucket
 * within one round trip; the higher id lets go as soon as it hears the
 * other holds it.  A node cut off by the sync link alone keeps its lease
 * (quorum is the answer to that, not leases).
 *
 * Quorum (repl_quorum.c): without it a node holds no bucket.  Over CPG
 * corosync says; over UDP and multicast (buckets.quorum = majority) a
 * node counts the peers in contact with it both ways (their reports echo
 * a recent heartbeat of ours) and needs a strict majority of all the
 * configured nodes; its set is renewed only while a majority was in
 * contact within three heartbeats, and a dead peer's buckets are taken
 * only once no live peer's report still echoes it.
 *
 * Routed active-active (policy_routed): the network, not the buckets,
 * picks the node each packet crosses (ECMP routers on each side; the two
 * directions of a flow may cross different nodes).  Nothing is dropped by
 * bucket, so a flow is owned by the node its first packet crossed, for as
 * long as that node lives; the bucket map only names the heir: the flows
 * of a dead (or unknown) owner go to the holder of their bucket, at the
 * map change that follows the death and on traffic.  A live owner is
 * never displaced, so two nodes that both see packets of one flow do not
 * take it from each other.
 */
#ifndef CTSYNC_SYNC_POLICY_H
#define CTSYNC_SYNC_POLICY_H

#include <stdbool.h>
#include <stdint.h>

struct claim {
	uint32_t gen, node;
};

/* >0 when a beats b, <0 when b beats a, 0 for the same claim. */
int policy_compare(struct claim a, struct claim b);

#define POLICY_MAX_MEMBERS 33
#define POLICY_MAX_BUCKETS 1024

enum policy_mode {
	POLICY_ACTIVE_BACKUP,
	POLICY_ACTIVE_ACTIVE,
};

struct policy {
	uint32_t self, term;
	bool primary;
	uint32_t max_seen;              /* newest term or claim seen */
	unsigned nmembers;
	struct member {
		uint32_t id, term;
		bool alive, primary;
		bool holds;             /* active-active: says it holds buckets */
	} m[POLICY_MAX_MEMBERS];
	/* active-active */
	enum policy_mode mode;
	bool ready;                     /* in sync once since start */
	bool no_quorum;                 /* its partition is not quorate (policy_quorum) */
	unsigned nbuckets;
	unsigned nhome;
	uint32_t home[POLICY_MAX_MEMBERS];      /* every member, sorted */
	uint32_t owner[POLICY_MAX_BUCKETS];     /* 0: nobody holds buckets */
	uint32_t if_held[POLICY_MAX_BUCKETS];   /* the same, were we holding */
	uint32_t map_gen;               /* bumped whenever owner[] changes */
	bool routed;                    /* the buckets name heirs only */
};

void policy_init(struct policy *p, uint32_t self, bool primary);
/* Active-active with `nbuckets` buckets among this node and its configured
 * peers (call once, after policy_init). */
void policy_active_active(struct policy *p, unsigned nbuckets, const uint32_t *peers,
			  unsigned npeers);
bool policy_is_active_active(const struct policy *p);
/* Active-active on routed paths (above; call after policy_active_active). */
void policy_routed(struct policy *p);
bool policy_is_routed(const struct policy *p);

/* What a peer says of itself (its heartbeat), or that it died.  `holds`:
 * it holds buckets (active-active). */
void policy_member(struct policy *p, uint32_t id, bool alive, bool primary, uint32_t term,
		   bool holds);
void policy_member_down(struct policy *p, uint32_t id);
/* A claim generation seen on the wire. */
void policy_seen(struct policy *p, uint32_t gen);

/* Become primary at a term newer than anything seen (returns it). */
uint32_t policy_promote(struct policy *p);
void policy_demote(struct policy *p);

bool policy_primary(const struct policy *p);
uint32_t policy_term(const struct policy *p);
/* The live primary whose claims are newest: this node's id when it is that
 * one, another's when this node is superseded, 0 when nobody is primary. */
uint32_t policy_rightful(const struct policy *p);

/* Local traffic touches a flow claimed by `cur`, not ours, in `bucket`
 * (active-active; any value otherwise): take it? */
bool policy_adopt(const struct policy *p, struct claim cur, bool owner_alive, unsigned bucket);
/* Should this node be the owner of the flows of `bucket` now (active-backup:
 * is it primary)?  A peer taking one of them is then a conflict. */
bool policy_should_own(const struct policy *p, unsigned bucket);
/* The generation to take a flow claimed at `cur_gen` with: the term, or
 * cur_gen + 1 if that is newer.  A new flow of ours takes policy_term(). */
uint32_t policy_take(struct policy *p, uint32_t cur_gen);
/* At the end of start-up, flows nobody claimed: may this node own any of
 * them (it then waits to settle them before its bulk), and does it own
 * those of `bucket` (active-backup: every one, if primary; active-active:
 * those of its home buckets)? */
bool policy_takes_orphans(const struct policy *p);
bool policy_takes_orphan(const struct policy *p, unsigned bucket);

/* Active-active: this node's start-up is over and it was in sync with every
 * live peer; from now on it holds buckets whenever it is primary. */
void policy_ready(struct policy *p);
/* Whether this node's partition of the cluster is quorate (the transport
 * says; quorate unless told otherwise): without quorum it holds none. */
void policy_quorum(struct policy *p, bool quorate);
/* Does this node hold buckets now (active-active, ready, primary, quorate)? */
bool policy_holds(const struct policy *p);
/* Who owns `bucket` (0: nobody), and the map's generation. */
uint32_t policy_bucket_owner(const struct policy *p, unsigned bucket);
uint32_t policy_map_gen(const struct policy *p);

#endif
