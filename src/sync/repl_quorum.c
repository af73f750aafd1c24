/* repl_quorum.c — quorum by majority over UDP and multicast (policy.h,
 * "Quorum"); over CPG corosync's word comes through repl_quorum().
 *
 * Contact, not silence: a peer counts for us only while its reports echo
 * a recent heartbeat of ours (HA_ECHO) — it hears us and we hear it.  A
 * node whose sending alone broke hears everyone but is echoed by nobody: it
 * loses quorum and lets go, where counting the peers it hears would keep it
 * forwarding beside those that took its buckets. */
#include "sync/repl.h"

#include "util/log.h"
#include "sync/repl_int.h"

/* The window in which a majority must have been in contact for our set to
 * be renewed.  Contact is dated by the heartbeat of ours a peer echoes: in
 * steady state that one is up to two heartbeats and two transit times old
 * when the echo arrives, so three heartbeats.  A node cut off renews for
 * at most this long after its last contact; takers wait for it on top of
 * the lease (quorum_dead_hold). */
static uint64_t fresh_ms(const struct repl *r)
{
	return 3ull * r->cfg.heartbeat_ms;
}

/* A peer counts for the quorum while in contact within the dead time (at
 * least a heartbeat beyond the fresh window, as contact is dated late). */
static uint64_t judge_ms(const struct repl *r)
{
	uint64_t d = (uint64_t)r->cfg.heartbeat_ms * r->cfg.dead_after;
	uint64_t min = fresh_ms(r) + r->cfg.heartbeat_ms;
	return d > min ? d : min;
}

static unsigned needed(const struct repl *r)
{
	return (r->cfg.npeers + 1) / 2 + 1;     /* a strict majority of all nodes */
}

static unsigned votes(struct repl *r, uint64_t within)
{
	uint64_t now = repl_now(r);
	unsigned n = 1;                         /* ourselves */

	for (unsigned i = 0; i < r->cfg.npeers; i++) {
		const struct peer *p = &r->peer[i];
		if (!p->alive)
			continue;
		if (p->hb_valid && !p->hb.beat)
			/* a release before 3.1 echoes nothing: heard is all we
			 * can know of it (during a rolling upgrade) */
			n += now - p->last_heard <= within;
		else
			n += p->contact && now - p->contact <= within;
	}
	return n;
}

void quorum_heard(struct repl *r, struct peer *p)
{
	for (unsigned i = 0; i < p->hb.nechoes; i++) {
		const struct hb_echo *e = &p->hb.echo[i];
		if (e->node != r->cfg.node_id || e->epoch != r->epoch)
			continue;
		if (r->beat - e->beat < BEATS_KEPT) {
			uint64_t at = r->beat_at[e->beat % BEATS_KEPT];
			if (at > p->contact)
				p->contact = at;
		}
		return;
	}
}

bool quorum_fresh(struct repl *r)
{
	return !r->cfg.quorum_majority || votes(r, fresh_ms(r)) >= needed(r);
}

uint64_t quorum_dead_hold(const struct repl *r, const struct peer *p)
{
	uint32_t lease = p->hb_valid && p->hb.lease_ms ? p->hb.lease_ms : r->cfg.lease_ms;
	/* by majority it renewed while in contact with some node within the
	 * fresh window: with us, at the latest when we last heard it; with a
	 * peer, which would then not report it dead (can_take) */
	return (r->cfg.quorum_majority ? fresh_ms(r) : 0) + lease;
}

void quorum_set(struct repl *r, bool quorate)
{
	int was = r->quorum;

	r->quorum = quorate;
	if (was == (int)quorate)
		return;
	if (!quorate) {
		r->st.quorum_losses++;
		log_warnx("quorum: lost%s", r->cfg.active_active ? ": letting go of every bucket" : "");
	} else {
		log_info("quorum: this node's partition is quorate");
		/* what we saw of the peers while not quorate proves nothing
		 * about what they held: the quorate side had every right to
		 * hold our buckets; one we do not hear lets go, at the latest,
		 * a lease after now (repl_own.c, can_take) */
		for (unsigned i = 0; i < r->cfg.npeers; i++)
			if (!r->peer[i].alive)
				r->peer[i].dead_at = repl_now(r);
	}
	policy_quorum(&r->pol, quorate);
	/* break before make: our set first, then the heartbeat */
	own_buckets_poll(r);
	tx_heartbeat(r);
}

void quorum_poll(struct repl *r)
{
	if (!r->cfg.quorum_majority)
		return;
	bool q = votes(r, judge_ms(r)) >= needed(r);
	if ((int)q != r->quorum) {
		if (!q)
			log_warnx("quorum: in contact with %u of %u nodes (ourselves included), "
				  "%u needed", votes(r, judge_ms(r)), r->cfg.npeers + 1, needed(r));
		quorum_set(r, q);
	}
}

void quorum_status(struct repl *r, struct repl_status *st)
{
	st->quorum_majority = r->cfg.quorum_majority;
	if (r->cfg.quorum_majority) {
		st->quorum_votes = votes(r, judge_ms(r));
		st->quorum_needed = needed(r);
	}
}
