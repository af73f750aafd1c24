/* repl_own.c — ownership as the operator and start-up change it (repl.h,
 * policy.h): adoption, settling the flows found at start-up, promote,
 * demote, commit. */
#include "sync/repl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
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
	bool purge;                     /* a backup that knows all its peers' flows */
	unsigned owned, purged;
};

static void settle_one(void *arg, struct flow *f)
{
	struct settle_ctx *s = arg;
	struct repl *r = s->r;

	if (f->owner != OWNER_NONE)
		return;
	struct ct c;
	flow_get(f, &c);
	if (s->purge && !(r->ops.is_local && touches_host(r, &c))) {
		if (f->in_kernel)
			repl_inject(r, CTNL_OP_DELETE, f);
		repl_drop(r, f);
		s->purged++;
		return;
	}
	if (!policy_takes_orphans(&r->pol) && !s->purge)
		return;
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
	struct settle_ctx s = { r, !takes && all_done, 0, 0 };
	unsigned n = table_owner(r->t, OWNER_NONE).flows;
	if (n)
		table_foreach(r->t, settle_one, &s);
	r->st.stale_purged += s.purged;
	exp_settle(r, takes);
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

int repl_promote(struct repl *r)
{
	struct own_ctx o = { r, 0 };
	bool threaded = thread_start(r, count_others(r));

	uint32_t term = policy_promote(&r->pol);
	tx_heartbeat(r);              /* the new term before the claims made at it */
	table_foreach(r->t, take_one, &o);
	exp_take_all(r);
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
	exp_commit(r);
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
