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
	const uint8_t *gained;
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
	if (!(g->gained[b] && !policy_is_routed(&r->pol)) && !(r->held[b] && dead))
		return;
	take(r, f);
	f->bulk_mark = r->dump_gen;     /* a dump under way must not sweep it */
	if (!f->in_kernel)
		repl_inject(r, CTNL_OP_CREATE, f);
	tx_mark_dirty(r, f, REC_FLOW_UPSERT);
	g->n++;
}

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
	uint32_t gen = policy_map_gen(&r->pol);
	if (r->map_applied && gen == r->map_gen)
		return;
	if (!r->map_applied && r->map_retry_at && repl_now(r) < r->map_retry_at)
		return;
	uint8_t gained[POLICY_MAX_BUCKETS] = { 0 };
	uint32_t list[POLICY_MAX_BUCKETS];
	unsigned n = 0, ngained = 0, nlost = 0;
	for (unsigned b = 0; b < r->pol.nbuckets; b++) {
		bool mine = policy_bucket_owner(&r->pol, b) == r->cfg.node_id;
		if (mine)
			list[n++] = b;
		if (mine && !r->held[b]) {
			gained[b] = 1;
			ngained++;
		}
		nlost += !mine && r->held[b];
		r->held[b] = mine;
	}
	struct gain_ctx g = { r, gained, 0 };
	if (n)
		table_foreach(r->t, gain_one, &g);
	r->st.buckets_gained += ngained;
	r->st.buckets_lost += nlost;
	r->st.bucket_takeovers += g.n;
	if (ngained || nlost || !r->map_applied)
		r->st.bucket_changes++;
	r->map_gen = gen;
	/* the kernel holds every flow of a bucket before it forwards it: the
	 * injections queued so far (a peer's bulk, the creates above) first */
	if (ngained || g.n)
		r->ops.inject_flush(r->ops.arg);
	if (r->ops.buckets && r->ops.buckets(r->ops.arg, list, n) < 0) {
		r->st.bucket_set_errors++;
		r->map_applied = false;
		r->map_retry_at = repl_now(r) + 1000;
	} else {
		r->map_applied = true;
		r->map_retry_at = 0;
	}
	if (ngained || nlost || g.n)
		log_info("buckets: holding %u of %u (%u gained, %u given up); %u flows taken "
			 "over", n, r->pol.nbuckets, ngained, nlost, g.n);
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
	tx_heartbeat(r);
	if (policy_is_active_active(&r->pol)) {
		own_buckets_poll(r);    /* the peers take our buckets */
		log_info("demoted: drained, the peers hold every bucket");
		return 0;
	}
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
