/* repl_own.c — ownership as the operator and start-up change it (repl.h,
 * policy.h): adoption, settling the flows found at start-up, promote,
 * demote, commit. */
#include "sync/repl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "sync/bucket.h"
#include "sync/repl_int.h"

/* A flow becomes ours: a new one at our term, one taken over at a claim
 * newer than its owner's (policy_take). */
void own_claim_new(struct repl *r, struct flow *f)
{
	f->claim = policy_term(&r->pol);
}

static void take(struct repl *r, struct flow *f)
{
	f->claim = policy_take(&r->pol, f->claim);
	table_set_owner(r->t, f, r->cfg.node_id);
}

void own_adopt(struct repl *r, struct flow *f)
{
	take(r, f);
	r->st.adopted++;
}

/* ---- start-up ----------------------------------------------------------------
 *
 * A (re)started daemon finds flows in its kernel without knowing whose they
 * are: its own, or copies it injected for a peer in its previous life.  They
 * are held without owner; each live peer's bulk claims the peer's flows.
 * Once every peer has sent a complete bulk (or after a grace period):
 *  - a primary takes the rest as its own and advertises them;
 *  - a backup whose peers are all alive and complete knows the rest are not
 *    theirs: copies of flows that ended while it was down are deleted, and
 *    its host's own connections (an address of this host in the tuples) are
 *    its own;
 *  - a backup missing a peer keeps them without owner: they may be the
 *    silent peer's, needed at failover; like a dead peer's flows, they are
 *    adopted by the first packet that touches them here, or by promote.
 * A primary's own bulk waits until then, so that peers never sweep flows it
 * is about to claim.
 */
static uint64_t grace_ms(const struct repl *r)
{
	uint64_t g = 2ull * r->cfg.heartbeat_ms * r->cfg.dead_after;
	return g < 2000 ? 2000 : g;
}

static bool touches_host(struct repl *r, const struct ct *ct)
{
	const union ct_addr *a[4] = { &ct->orig.src, &ct->orig.dst, &ct->reply.src,
				      &ct->reply.dst };
	for (int i = 0; i < 4; i++)
		if (r->ops.is_local(r->ops.arg, ct->l3, a[i]))
			return true;
	return false;
}

struct settle_ctx {
	struct repl *r;
	bool purge;                     /* every peer's flows are known */
	unsigned owned, purged;
};

/* Ours (a primary's, or in active-active one of our home buckets'), else
 * a stale copy when every peer's flows are known (our host's own
 * connections aside), else kept without owner. */
static void settle_one(void *arg, struct flow *f)
{
	struct settle_ctx *s = arg;
	struct repl *r = s->r;

	if (f->owner != OWNER_NONE)
		return;
	struct ct c;
	flow_get(f, &c);
	if (!policy_takes_orphan(&r->pol, own_bucket(r, &c))) {
		if (!s->purge)
			return;
		if (!(r->ops.is_local && touches_host(r, &c))) {
			if (f->in_kernel)
				repl_inject(r, CTNL_OP_DELETE, f);
			repl_drop(r, f);
			s->purged++;
			return;
		}
	}
	table_set_owner(r->t, f, r->cfg.node_id);
	own_claim_new(r, f);
	if (r->bulk_to != BULK_ALL)     /* else the bulk carries it to everyone */
		tx_mark_dirty(r, f, REC_FLOW_UPSERT);
	s->owned++;
}

void own_startup_poll(struct repl *r)
{
	bool all_done = true;

	if (!r->starting)
		return;
	for (unsigned i = 0; i < r->cfg.npeers; i++)
		if (!r->peer[i].bulk_done || !r->peer[i].alive)
			all_done = false;
	if (!all_done && repl_now(r) - r->started < grace_ms(r))
		return;
	r->starting = false;
	bool takes = policy_takes_orphans(&r->pol);
	struct settle_ctx s = { r, all_done, 0, 0 };
	unsigned n = table_owner(r->t, OWNER_NONE).flows;
	if (n)
		table_foreach(r->t, settle_one, &s);
	r->st.stale_purged += s.purged;
	/* (active-active: an expectation without owner is left to expire) */
	expect_settle(r, takes && !policy_is_active_active(&r->pol));
	log_info("start-up complete: of %u flows found in the kernel and claimed by no "
		 "peer, %u are ours, %u were stale copies (deleted), %u left without owner",
		 n, s.owned, s.purged, n - s.owned - s.purged);
}

struct own_ctx {
	struct repl *r;
	int n;
};

/* Promotion claims every flow held at the new term: ours claimed before it
 * are advertised again under it (a primary promoted at the same time with
 * a higher id then loses them everywhere, not only where it arrived
 * second). */
static void take_one(void *arg, struct flow *f)
{
	struct own_ctx *o = arg;
	struct repl *r = o->r;

	if (f->owner == r->cfg.node_id) {
		if (f->claim != policy_term(&r->pol)) {
			own_claim_new(r, f);
			tx_mark_dirty(r, f, REC_FLOW_UPSERT);
		}
		return;
	}
	take(r, f);
	f->bulk_mark = r->dump_gen;     /* a dump under way must not sweep it */
	/* With inject = on-promote the kernel may hold an older state of the
	 * flow (from when it was ours): the owner's latest one replaces it. */
	if (!f->in_kernel || f->pending)
		repl_inject(r, f->in_kernel ? CTNL_OP_UPDATE : CTNL_OP_CREATE, f);
	tx_mark_dirty(r, f, REC_FLOW_UPSERT);
	o->n++;
}

/* A commit or promotion that may inject `others` flows: from
 * commit_quiet_min of them on, a second thread sends each batch while the
 * next is built (the kernel's work no longer waits for ours). */
static bool big_commit(const struct repl *r, size_t others)
{
	return others >= (r->cfg.commit_quiet_min ? r->cfg.commit_quiet_min : 10000);
}

static bool thread_start(struct repl *r, size_t others)
{
	return big_commit(r, others) && r->ops.inject_thread &&
	       r->ops.inject_thread(r->ops.arg, true) == 0;
}

static size_t count_others(struct repl *r)
{
	return table_count(r->t) - table_owner(r->t, r->cfg.node_id).flows;
}

/* ---- active-active: buckets ----------------------------------------------------
 *
 * The policy keeps the map (policy.h); this side makes it true: once the
 * node is ready it says so in a heartbeat, and whenever the map changes,
 * every flow held in a bucket we gained becomes ours at once (a dead
 * node's flows get a live owner that keeps their copies fresh, and a
 * bucket that came home brings back its flows with the state their last
 * owner advertised), and so does every flow of a bucket we already held
 * whose owner is dead (it made the flow while it held the bucket, or
 * outside the buckets' rule); then the kernel is told which buckets to
 * forward (ops.buckets: the nftables set).
 */
unsigned own_bucket(const struct repl *r, const struct ct *ct)
{
	if (!r->cfg.active_active)
		return 0;
	return bucket_of(ct, r->cfg.nbuckets, r->cfg.bucket_seed);
}

struct gain_ctx {
	struct repl *r;
	const uint8_t *gained;          /* entering the kernel's set now */
	const uint8_t *target;          /* the set from now on */
	unsigned n;
};

static void gain_one(void *arg, struct flow *f)
{
	struct gain_ctx *g = arg;
	struct repl *r = g->r;
	struct ct c;

	if (f->owner == r->cfg.node_id)
		return;
	flow_get(f, &c);
	unsigned b = own_bucket(r, &c);
	bool dead = f->owner == OWNER_NONE || repl_peer_dead(r, f->owner);
	/* a gained bucket brings its flows; routed, only those of a dead
	 * owner (policy.h: a live owner is never displaced) */
	if (!(g->gained[b] && !policy_is_routed(&r->pol)) && !(g->target[b] && dead))
		return;
	take(r, f);
	f->bulk_mark = r->dump_gen;     /* a dump under way must not sweep it */
	if (!f->in_kernel)
		repl_inject(r, CTNL_OP_CREATE, f);
	tx_mark_dirty(r, f, REC_FLOW_UPSERT);
	g->n++;
}

/* ---- leases and handovers (policy.h, "Leases") -------------------------- */

static bool held_bit(const struct hb_info *hb, unsigned b)
{
	return b / 8 < hb->held_len && (hb->held[b / 8] >> (b % 8) & 1);
}

/* Was the peer's report made after it received our heartbeat `beat`? */
static bool echoes(const struct repl *r, const struct hb_info *hb, uint32_t beat)
{
	for (unsigned i = 0; i < hb->nechoes; i++) {
		const struct hb_echo *e = &hb->echo[i];
		if (e->node == r->cfg.node_id && e->epoch == r->epoch)
			return (int32_t)(e->beat - beat) >= 0;
	}
	return false;
}

/* Does a live peer's latest report say it hears node `id`? */
static bool heard_by_a_peer(const struct repl *r, uint32_t id)
{
	for (unsigned i = 0; i < r->cfg.npeers; i++) {
		const struct peer *p = &r->peer[i];
		if (!p->alive || !p->hb_valid)
			continue;
		for (unsigned k = 0; k < p->hb.nechoes; k++)
			if (p->hb.echo[k].node == id)
				return true;
	}
	return false;
}

/* May bucket b, ours by the map since want_since[b], enter our kernel set
 * now?  Only once no other node can be forwarding it:
 *  - every live peer that reports its held set (FEAT_LEASES) has said that
 *    it does not hold b, in a report made after it received our first
 *    heartbeat since b became ours (announce[b]; its HA_ECHO of us proves
 *    the order — when a report arrived proves nothing, a node thawed after
 *    a stop reads reports queued long before).  While buckets wait, our
 *    heartbeats ask (HA_ASK) and every peer answers at once: a round trip;
 *  - a live peer that does not report it and had it before us has had two
 *    heartbeats to let go;
 *  - a peer in the membership (CPG) but not heard yet holds what it may;
 *  - every dead peer's set has run out: it was renewed at the latest with
 *    the last frame we heard from it (by majority: up to a fresh window
 *    later; over CPG: until it was told it left), plus its lease, plus a
 *    heartbeat (one last heartbeat of its may have been lost) — and, by
 *    majority, no live peer still hears it. */
static bool can_take(struct repl *r, unsigned b, uint64_t now)
{
	uint64_t since = r->want_since[b];

	if (policy_is_routed(&r->pol))
		return true;    /* the set names heirs only: nothing to wait for */
	for (unsigned i = 0; i < r->cfg.npeers; i++) {
		const struct peer *p = &r->peer[i];
		if (!p->known)
			continue;       /* not heard since we started (2 dead times ago) */
		if (p->alive && p->hb_valid && p->hb.has_held) {
			/* it holds it, or has not reported since the bucket
			 * became ours: what we last heard of it may be older
			 * than what it did since (our view of who had what is
			 * no proof: it may be stale after a partition or a
			 * stall) */
			if (held_bit(&p->hb, b))
				return false;
			if (!echoes(r, &p->hb, r->announce[b]))
				return false;
		} else if (p->alive) {
			if (r->prev_owner[b] == p->id &&
			    now < since + 2ull * r->cfg.heartbeat_ms)
				return false;
		} else if (r->cfg.membership && p->member) {
			/* in the membership but not heard yet (it joined, or a
			 * partition healed): its report comes within a round trip */
			return false;
		} else {
			/* Over CPG a peer is dead when it leaves the membership,
			 * which it may have survived on the other side of a
			 * partition: it lets go when corosync tells it that side
			 * lost quorum, about when we were told it left, and its
			 * lease covers the rest — counted from then (or from when
			 * we regained quorum: repl_quorum.c). */
			uint64_t from = p->last_heard > p->dead_at ? p->last_heard : p->dead_at;
			if (now < from + quorum_dead_hold(r, p) + r->cfg.heartbeat_ms)
				return false;
			/* by majority, every live peer must have found it dead too:
			 * one that still hears it (a partition that is not clean)
			 * may be what keeps it quorate and forwarding */
			if (r->cfg.quorum_majority && heard_by_a_peer(r, p->id))
				return false;
		}
	}
	return true;
}

/* A live peer says it holds a bucket we hold (two maps disagreed for a
 * moment and both took it): the higher node id lets go, and takes it again
 * once the other has let go of it. */
static bool conflict(struct repl *r, unsigned b)
{
	for (unsigned i = 0; i < r->cfg.npeers; i++) {
		const struct peer *p = &r->peer[i];
		if (p->alive && p->hb_valid && p->hb.has_held && held_bit(&p->hb, b) &&
		    p->id < r->cfg.node_id)
			return true;
	}
	return false;
}

/* The kernel's set: what the map gives us, each bucket once it is free
 * (can_take); renewed every heartbeat under a lease.  A set not renewed in
 * time (the daemon stalled or was stopped longer than the lease) is empty
 * in the kernel: every bucket is taken again as if new, after the peers
 * have said they let go of it (they may have taken it meanwhile). */
void own_buckets_poll(struct repl *r)
{
	if (!r->cfg.active_active)
		return;
	if (!r->pol.ready && repl_in_sync(r)) {
		policy_ready(&r->pol);
		log_info("in sync with every live peer: ready to hold buckets%s",
			 policy_primary(&r->pol) ? "" : " (not before promote: demoted)");
		tx_heartbeat(r);
	}
	uint64_t now = repl_now(r);
	uint32_t gen = policy_map_gen(&r->pol);
	bool lapsed = r->cfg.lease_ms && r->nheld && now >= r->lease_at + r->cfg.lease_ms;
	/* by majority, the set is renewed (or written at all: writing it
	 * renews what stays) only while a majority was in contact lately */
	bool fresh = quorum_fresh(r);
	bool renew = fresh && r->cfg.lease_ms && r->nheld &&
		     now >= r->lease_at + (r->cfg.lease_ms / 3 < r->cfg.heartbeat_ms ?
					   r->cfg.lease_ms / 3 : r->cfg.heartbeat_ms);

	if (lapsed) {
		r->st.lease_lapses++;
		log_warnx("buckets: our lease ran out (not renewed for %llu ms, the lease is %u "
			  "ms): the kernel forwards none of our %u buckets; taking them again "
			  "once the peers let go", (unsigned long long)(now - r->lease_at),
			  r->cfg.lease_ms, r->nheld);
		memset(r->held, 0, sizeof(r->held));
		r->nheld = 0;
		for (unsigned b = 0; b < r->pol.nbuckets; b++)
			if (r->want_since[b]) {
				r->want_since[b] = now;
				r->announce[b] = r->beat + 1;
			}
		r->map_applied = false;
	}
	if (r->map_applied && gen == r->map_gen && !r->nwaiting && !renew && !r->conflicts)
		return;
	if (!r->map_applied && r->map_retry_at && now < r->map_retry_at && !lapsed)
		return;
	uint8_t gained[POLICY_MAX_BUCKETS] = { 0 }, target[POLICY_MAX_BUCKETS] = { 0 };
	uint32_t list[POLICY_MAX_BUCKETS];
	unsigned n = 0, ngained = 0, nlost = 0, waiting = 0, nconflict = 0;
	for (unsigned b = 0; b < r->pol.nbuckets; b++) {
		uint32_t owner = policy_bucket_owner(&r->pol, b);
		bool mine = owner == r->cfg.node_id;
		if (mine && !r->want_since[b]) {
			r->want_since[b] = now;
			r->announce[b] = r->beat + 1;
			r->prev_owner[b] = r->owner_was[b];
		} else if (!mine) {
			r->want_since[b] = 0;
		}
		r->owner_was[b] = owner;
		bool keep = mine && r->held[b];
		if (keep && conflict(r, b)) {
			keep = false;
			nconflict++;
			r->want_since[b] = now;
			r->announce[b] = r->beat + 1;
		}
		bool add = fresh && mine && !r->held[b] && can_take(r, b, now);
		if (mine && !keep && !add)
			waiting++;
		if (keep || add) {
			list[n++] = b;
			target[b] = 1;
		}
		if (add) {
			gained[b] = 1;
			ngained++;
		}
		nlost += r->held[b] && !keep;
	}
	if (!fresh && !nlost && r->map_applied) {
		r->nwaiting = waiting;
		return;         /* a write would renew: later, once in contact */
	}
	if (!fresh && n) {
		/* a write would renew the buckets we keep: let go of all of
		 * them instead, and take them again once in contact */
		for (unsigned b = 0; b < r->pol.nbuckets; b++) {
			if (!target[b])
				continue;
			target[b] = 0;
			nlost += r->held[b];
			r->want_since[b] = now;
			r->announce[b] = r->beat + 1;
			waiting++;
		}
		n = 0;
	}
	r->nwaiting = waiting;
	r->conflicts = nconflict;
	r->st.bucket_conflicts += nconflict;
	bool ask = waiting && (gen != r->map_gen || lapsed);
	if (!ngained && !nlost && r->map_applied && !renew && gen == r->map_gen)
		return;                 /* waiting, nothing to tell the kernel */
	/* the kernel holds every flow of a bucket before it forwards it: the
	 * flows of the gained buckets (and of held ones whose owner died) are
	 * taken, their injections queued so far sent first */
	struct gain_ctx g = { r, gained, target, 0 };
	if (ngained || gen != r->map_gen)
		table_foreach(r->t, gain_one, &g);
	if (ngained || g.n)
		r->ops.inject_flush(r->ops.arg);
	/* the kernel's lease runs from the write, not before this (the
	 * walk and the injections above may have taken a while) */
	uint64_t set_at = repl_now(r);
	if (r->ops.buckets && r->ops.buckets(r->ops.arg, list, n) < 0) {
		r->st.bucket_set_errors++;
		r->map_applied = false;
		r->map_retry_at = now + 1000;
		return;
	}
	r->map_applied = true;
	r->map_retry_at = 0;
	r->map_gen = gen;
	r->lease_at = set_at;
	memcpy(r->held, target, sizeof(r->held));
	r->nheld = n;
	r->st.buckets_gained += ngained;
	r->st.buckets_lost += nlost;
	r->st.bucket_takeovers += g.n;
	if (ngained || nlost) {
		r->st.bucket_changes++;
		log_info("buckets: holding %u of %u (%u gained, %u given up%s); %u flows taken "
			 "over", n, r->pol.nbuckets, ngained, nlost,
			 waiting ? ", more once their holders let go" : "", g.n);
		/* the peers learn at once what we let go of (they may be
		 * waiting for it) and what we took */
		tx_heartbeat(r);
	} else if (ask) {
		/* buckets wait for the peers' next reports: ask for them now
		 * (a heartbeat of ours; each peer answers with its own when
		 * the same change reaches it) */
		tx_heartbeat(r);
	} else if (renew) {
		r->st.lease_renewals++;
	}
}

int repl_promote(struct repl *r)
{
	struct own_ctx o = { r, 0 };

	if (policy_is_active_active(&r->pol)) {
		/* every node forwards: promote only (re)joins the bucket split */
		uint32_t term = policy_promote(&r->pol);
		tx_heartbeat(r);
		own_buckets_poll(r);
		log_info("promoted at term %u: %s", term, policy_holds(&r->pol) ?
			 "holding buckets" : "holding buckets once in sync");
		return 0;
	}
	bool threaded = thread_start(r, count_others(r));

	uint32_t term = policy_promote(&r->pol);
	tx_heartbeat(r);              /* the new term before the claims made at it */
	table_foreach(r->t, take_one, &o);
	expect_take_all(r);
	if (threaded)
		r->ops.inject_thread(r->ops.arg, false);        /* flushes */
	log_info("promoted at term %u: took ownership of %d flows", term, o.n);
	r->st.committed += (uint64_t)o.n;
	repl_flush(r);
	return o.n;
}

int repl_demote(struct repl *r)
{
	policy_demote(&r->pol);
	if (policy_is_active_active(&r->pol)) {
		/* break before make: out of our kernel's set first, then the
		 * heartbeat that lets the peers take them */
		own_buckets_poll(r);
		tx_heartbeat(r);
		log_info("demoted: drained, the peers hold every bucket");
		return 0;
	}
	tx_heartbeat(r);
	log_info("demoted: flows go to whichever peer advertises them");
	return 0;
}

static void commit_one(void *arg, struct flow *f)
{
	struct own_ctx *o = arg;

	if (f->owner == o->r->cfg.node_id || (f->in_kernel && !f->pending))
		return;
	repl_inject(o->r, f->in_kernel ? CTNL_OP_UPDATE : CTNL_OP_CREATE, f);
	o->n++;
}

/* A commit of many flows stops the kernel's NEW events meanwhile (the echo
 * of every create would be built only to be dropped: half the time of a
 * large commit) and then reads the table in the background, which finds the
 * local flows whose NEW event it missed (as after an overrun). */

int repl_commit(struct repl *r)
{
	struct own_ctx o = { r, 0 };
	size_t others = count_others(r);
	bool quiet = big_commit(r, others) && r->ops.events_new && r->ops.dump_start &&
		     r->ops.events_new(r->ops.arg, false) == 0;
	bool threaded = thread_start(r, others);

	table_foreach(r->t, commit_one, &o);
	expect_commit(r);
	r->ops.inject_flush(r->ops.arg);
	if (threaded)
		r->ops.inject_thread(r->ops.arg, false);
	if (quiet) {
		r->st.commits_quiet++;
		r->new_events_off = true;
		dump_resume_new_events(r);   /* retried by repl_poll if it fails */
	}
	r->st.committed += (uint64_t)o.n;
	log_info("committed %d flows to the kernel%s", o.n,
		 quiet ? " (NEW events paused meanwhile; the table is read again)" : "");
	return o.n;
}
