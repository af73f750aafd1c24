/* repl_dump.c — kernel dumps (repl.h): the initial load, `resync`, the
 * background timeout refresh and the full dump after an event overrun. */
#include "sync/repl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "sync/repl_int.h"

/* Timeout refresh.  Traffic extends a flow's timeout in the kernel without
 * an event, so peers' copies of short-lived flows (UDP, ICMP, TCP being set
 * up or closed) would expire while the flow lives here.  A background dump
 * every refresh_ms re-reads the timeouts; a flow whose peers' copy expires
 * within two refresh periods, and that lives longer here, is sent again as
 * a compact refresh record (key and timeout).  Only the timeout is taken
 * from the dump: the state comes from events, which may be newer than a
 * dump read at the same time. */
static void refresh_one(struct repl *r, struct flow *f, const struct ct *ct)
{
	uint64_t t = repl_now(r);

	if (!(ct->has & CT_HAS_TIMEOUT))
		return;
	f->timeout = ct->timeout;
	uint64_t here = t + (uint64_t)ct->timeout * 1000;
	uint64_t peer = (uint64_t)f->peer_expiry * 1000;
	if (peer < t + 2ull * r->cfg.refresh_ms && here > peer + 1000) {
		tx_mark_dirty(r, f, REC_FLOW_REFRESH);
		r->st.refreshed++;
	}
}

/* An entry of a kernel dump. */
void dump_entry(struct repl *r, const struct ct *ct)
{
	uint32_t self = r->cfg.node_id;
	struct flow *f = table_find(r->t, ct);

	if (!f) {
		/* A background dump hands over what the kernel buffered a while
		 * ago: a flow we dropped since then is not a new one of ours. */
		if (r->dump_mode != DUMP_SYNC && keyset_has(&r->gone, (uint32_t)ct_key_hash(ct))) {
			r->st.dump_stale++;
			return;
		}
		if (r->wait && filter_hold(r, CTNL_EV_DUMP, ct, false))
			return;
		struct ct full = *ct;
		full.has |= (CT_HAS_MARK | CT_HAS_LABELS | CT_HAS_HELPER | CT_HAS_ZONE) &
			    ~r->cfg.strip;
		/* What the kernel holds when we start may be ours or a copy of a
		 * peer's: it stays without owner until the peers' bulks tell. */
		f = table_add(r->t, &full, r->loading ? OWNER_NONE : self);
		if (!f)
			return;
		f->in_kernel = 1;
		f->bulk_mark = r->dump_gen;
		if (!r->loading) {
			own_claim_new(r, f);
			r->st.dump_found++;     /* its NEW event was lost */
			tx_mark_dirty(r, f, REC_FLOW_UPSERT);
		}
		return;
	}
	f->in_kernel = 1;
	if (f->owner != self) {
		/* a copy we hold for its owner (whose bulks mark it), or one
		 * found at start-up */
		if (f->owner == OWNER_NONE)
			f->bulk_mark = r->dump_gen;
		return;
	}
	if (!f->dirty && (uint64_t)f->peer_expiry * 1000 < r->scan_min)
		r->scan_min = (uint64_t)f->peer_expiry * 1000;  /* (one sent again updates it) */
	/* An event since the dump began is at least as new as this entry. */
	bool newer = f->bulk_mark == r->dump_gen;
	f->bulk_mark = r->dump_gen;
	struct ct c;
	if (r->dump_mode != DUMP_REFRESH && !newer && (flow_get(f, &c), ct_differs(&c, ct))) {
		/* events were lost (an overrun): the kernel's state wins */
		ct_merge(&c, ct);
		table_flow_set(r->t, f, &c);
		tx_mark_dirty(r, f, REC_FLOW_UPSERT);
		return;
	}
	refresh_one(r, f, ct);
}

/* ---- dumps -------------------------------------------------------------------
 *
 * One at a time on the dump socket, each with a new generation in dump_gen:
 * every entry it shows and every event meanwhile marks its flow, so that at
 * the end our flows left unmarked are known to be gone from the kernel.
 *  - sync: start-up and `resync`, read at once (heartbeating inside);
 *  - refresh: every refresh_ms in the background, timeouts only;
 *  - full: after an event overrun, in the background: flows whose NEW event
 *    was lost are found, states the kernel changed without a (delivered)
 *    event are taken, ours that vanished are swept.  An overrun during a
 *    background dump turns it into a full one and asks for another after it
 *    (the part already read may have missed events).
 * The inject batch is flushed before a dump starts, and keys dropped during
 * a background dump are remembered (keyset.h), so a dump never shows us as
 * new a flow that we deleted or saw destroyed a moment before.
 */
static void dump_begin(struct repl *r, enum dump_mode mode)
{
	r->ops.inject_flush(r->ops.arg);
	keyset_clear(&r->gone);
	r->dump_mode = mode;
	r->dump_gen = ++r->gen;
	r->dump_seen = 0;
	r->scan_min = UINT64_MAX;
}

static void dump_end(struct repl *r, bool complete)
{
	/* every flow of ours was seen (or sent, or swept) */
	if (complete)
		r->next_expiry = r->scan_min;
	r->dump_mode = DUMP_NONE;
	r->dump_gen = 0;
	keyset_clear(&r->gone);
}

/* Synchronous: `sweep_local` drops our flows the kernel no longer has. */
int dump_and_diff(struct repl *r, bool sweep_local)
{
	if (r->dump_mode != DUMP_NONE) {
		r->dump_again = false;  /* this one replaces it */
		if (r->ops.dump_finish)
			r->ops.dump_finish(r->ops.arg);
	}
	dump_begin(r, DUMP_SYNC);
	uint32_t gen = r->dump_gen;
	int err = r->ops.dump(r->ops.arg);
	if (err < 0) {
		log_err("kernel table dump failed: %s", strerror(-err));
		dump_end(r, false);
		return err;
	}
	if (r->cfg.exp_sync && r->ops.exp_dump && (err = r->ops.exp_dump(r->ops.arg)) < 0)
		log_warnx("kernel expectation dump failed: %s", strerror(-err));
	unsigned n = sweep_local ? repl_sweep(r, r->cfg.node_id, gen) : 0;
	if (n)
		log_info("kernel dump: %u local flows were gone", n);
	dump_end(r, true);
	return 0;
}

static void dump_background(struct repl *r, enum dump_mode mode)
{
	dump_begin(r, mode);
	if (r->ops.dump_start(r->ops.arg) < 0) {
		log_limited(LOG_LVL_WARN, "could not start a kernel dump");
		dump_end(r, false);
		r->dump_again = mode == DUMP_FULL;      /* retried by repl_poll */
	}
}

int repl_load_kernel(struct repl *r)
{
	r->loading = true;
	int err = dump_and_diff(r, false);
	r->loading = false;
	r->starting = true;
	r->started = repl_now(r);
	if (err == 0)
		log_info("found %u flows in the kernel table; owners settle once "
			 "the peers' bulks are in", table_owner(r->t, OWNER_NONE).flows);
	return err;
}

/* Events were lost (an overrun, or NEW events paused): a full background
 * dump now, or — one is under way — the rest of it taken in full and
 * another after it (what it read already may have missed events). */
static void full_dump(struct repl *r)
{
	if (r->dump_mode == DUMP_NONE) {
		dump_background(r, DUMP_FULL);
		return;
	}
	r->dump_mode = DUMP_FULL;
	r->dump_again = true;
}

/* NEW events back on after a quiet commit, then a full dump finds the
 * local flows whose NEW event was missed while they were off. */
void dump_resume_new_events(struct repl *r)
{
	if (!r->new_events_off)
		return;
	if (r->ops.events_new(r->ops.arg, true) < 0) {
		log_limited(LOG_LVL_ERROR, "could not resubscribe to kernel NEW events; retrying");
		return;
	}
	r->new_events_off = false;
	full_dump(r);
}

void dump_poll(struct repl *r)
{
	uint64_t t = repl_now(r);

	dump_resume_new_events(r);
	if (r->dump_mode != DUMP_NONE || !r->ops.dump_start)
		return;
	if (r->dump_again) {
		r->dump_again = false;
		dump_background(r, DUMP_FULL);
		return;
	}
	if (!r->cfg.refresh_ms || r->starting || t - r->last_refresh < r->cfg.refresh_ms)
		return;
	r->last_refresh = t;
	/* Peers' copies that will not expire within two periods need no
	 * refresh yet (long-lived TCP flows: days): the dump, which costs
	 * about a microsecond per flow in the kernel alone, is skipped. */
	if (r->next_expiry > t + 2ull * r->cfg.refresh_ms) {
		r->st.refreshes_skipped++;
		return;
	}
	r->st.refreshes++;
	dump_background(r, DUMP_REFRESH);
}

void repl_dump_done(struct repl *r)
{
	enum dump_mode mode = r->dump_mode;
	uint32_t gen = r->dump_gen;

	if (mode != DUMP_REFRESH && mode != DUMP_FULL)
		return;                 /* a synchronous one: its caller finishes it */
	if (mode == DUMP_FULL && r->cfg.exp_sync && r->ops.exp_dump) {
		/* read at once (a small table), under the same generation; its
		 * end comes back here, as a synchronous dump's */
		r->dump_mode = DUMP_SYNC;
		int err = r->ops.exp_dump(r->ops.arg);
		if (err < 0)
			log_warnx("kernel expectation dump failed: %s", strerror(-err));
	}
	/* ours that the dump did not show ended without an event reaching us */
	unsigned n = repl_sweep(r, r->cfg.node_id, gen);
	dump_end(r, true);
	if (n)
		log_info("%s: %u local flows had ended unseen",
			 mode == DUMP_FULL ? "kernel dump after an overrun" : "refresh", n);
	if (mode == DUMP_FULL)
		log_info("kernel dump after an overrun complete: %u flows held",
			 table_owner(r->t, r->cfg.node_id).flows);
	if (r->dump_again) {
		r->dump_again = false;
		dump_background(r, DUMP_FULL);
	}
}

void repl_dump_failed(struct repl *r)
{
	enum dump_mode mode = r->dump_mode;

	if (mode != DUMP_REFRESH && mode != DUMP_FULL)
		return;
	dump_end(r, false);
	if (mode == DUMP_FULL)
		r->dump_again = true;   /* repl_poll starts it again */
}

void repl_kernel_overrun(struct repl *r)
{
	r->st.overruns++;
	log_limited(LOG_LVL_WARN, "kernel event overrun: resynchronising from a dump");
	if (!r->ops.dump_start) {
		dump_and_diff(r, true);
		return;
	}
	full_dump(r);
}
