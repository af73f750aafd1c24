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
 * Active-active (hash buckets split among the live members) is the second
 * mode this object is shaped for; it is not built yet.
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

struct policy {
	uint32_t self, term;
	bool primary;
	uint32_t max_seen;              /* newest term or claim seen */
	unsigned nmembers;
	struct member {
		uint32_t id, term;
		bool alive, primary;
	} m[POLICY_MAX_MEMBERS];
};

void policy_init(struct policy *p, uint32_t self, bool primary);

/* What a peer says of itself (its heartbeat), or that it died. */
void policy_member(struct policy *p, uint32_t id, bool alive, bool primary, uint32_t term);
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

/* Local traffic touches a flow claimed by `cur`, not ours: take it? */
bool policy_adopt(const struct policy *p, struct claim cur, bool owner_alive);
/* The generation to take a flow claimed at `cur_gen` with: the term, or
 * cur_gen + 1 if that is newer.  A new flow of ours takes policy_term(). */
uint32_t policy_take(struct policy *p, uint32_t cur_gen);
/* At the end of start-up, flows nobody claimed: does this node own them? */
bool policy_takes_orphans(const struct policy *p);

#endif
