/* repl_tx.c — the engine's sending side (repl.h): the dirty list and
 * coalescing, frames filled to the MTU and kept for NACKs, bulks (to one
 * node or all), heartbeats, control frames. */
#include "sync/repl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "sync/repl_int.h"

#define BULK_MIN_INTERVAL_MS 500        /* between two bulks of ours to one node */

/* ---- sending ------------------------------------------------------------ */

/* A new frame in r->w; one of a bulk to one node says so first. */
static void frame_begin(struct repl *r)
{
	codec_frame_start(&r->w, r->buf, r->cfg.frame_size);
	if (r->tx_only)
		codec_put_for(&r->w, r->tx_only->id);
}

static void frame_send(struct repl *r, bool unseq)
{
	if (!unseq && r->w.nrec == 0)
		return;
	/* a held packet waits for this frame to be acknowledged (repl_defer.c);
	 * a full frame goes without the request, and one of it alone follows */
	bool ack_alone = false;
	if (!unseq && r->ackreq) {
		if (codec_put_ackreq(&r->w) < 0)
			ack_alone = true;
		else
			r->ackreq_sent = true;
	}
	struct frame_hdr h = {
		.flags = unseq ? WIRE_F_UNSEQ : 0,
		.node = r->cfg.node_id,
		.epoch = r->epoch,
		.seq = unseq ? r->seq : r->seq + 1,
		.pn = r->pn++,
	};
	size_t len = codec_frame_finish(&r->w, &h);
	if (!unseq) {
		r->seq++;
		/* kept for NACKs; if it cannot be, a NACK escalates to a bulk */
		ring_put(r->sent, r->seq, r->buf, len);
	}
	const struct peer *only = unseq ? NULL : r->tx_only;
	if (r->ops.send(r->ops.arg, only ? only->id : REPL_ALL, r->buf, len) < 0)
		r->st.tx_errors++;
	for (unsigned i = 0; i < r->cfg.npeers; i++)
		if (!only || &r->peer[i] == only)
			r->peer[i].c.tx_frames++;
	r->st.tx_frames++;
	r->st.tx_records += r->w.nrec;
	r->st.tx_bytes += len;
	frame_begin(r);
	if (ack_alone && codec_put_ackreq(&r->w) == 0) {
		r->ackreq_sent = true;
		frame_send(r, false);
	}
}

void repl_send_control(struct repl *r, const struct peer *p, const struct nack_info *n,
		       const struct nack_info *skip, const struct challenge_info *response,
		       const struct challenge_info *challenge)
{
	uint8_t buf[1500];
	struct wbuf w;
	struct frame_hdr h = {
		.flags = WIRE_F_UNSEQ, .node = r->cfg.node_id, .epoch = r->epoch, .seq = r->seq,
	};

	codec_frame_start(&w, buf, sizeof(buf));
	if ((n && codec_put_nack(&w, n) < 0) || (skip && codec_put_ranges(&w, REC_SKIP, skip) < 0) ||
	    (response && codec_put_challenge(&w, REC_RESPONSE, response) < 0) ||
	    (challenge && codec_put_challenge(&w, REC_CHALLENGE, challenge) < 0))
		return;
	h.pn = r->pn++;
	size_t len = codec_frame_finish(&w, &h);
	r->ops.send(r->ops.arg, p ? p->id : REPL_ALL, buf, len);
	for (unsigned i = 0; i < r->cfg.npeers; i++)
		if (!p || &r->peer[i] == p)
			r->peer[i].c.tx_frames++;
	r->st.tx_frames++;
	r->st.tx_bytes += len;
}

/* An upsert carries the flow's claim (codec_put_claimed). */
static int put_flow(struct wbuf *w, enum wire_rec type, const struct ct *ct, uint32_t claim)
{
	return type == REC_FLOW_UPSERT ? codec_put_claimed(w, ct, claim) : codec_put_flow(w, type, ct);
}

static void emit_flow(struct repl *r, enum wire_rec type, const struct ct *ct, uint32_t claim)
{
	if (put_flow(&r->w, type, ct, claim) == -ENOSPC) {
		frame_send(r, false);
		put_flow(&r->w, type, ct, claim);
	}
}

void repl_emit_exp(struct repl *r, enum wire_rec type, const struct exp *e)
{
	if (codec_put_exp(&r->w, type, e) == -ENOSPC) {
		frame_send(r, false);
		codec_put_exp(&r->w, type, e);
	}
}

void repl_emit_bulk(struct repl *r, enum wire_rec type, const struct bulk_info *b)
{
	if (codec_put_bulk(&r->w, type, b) == -ENOSPC) {
		frame_send(r, false);
		codec_put_bulk(&r->w, type, b);
	}
}

static void flush_dirty(struct repl *r);

void tx_mark_dirty(struct repl *r, struct flow *f, enum wire_rec op)
{
	if (!f->dirty) {
		if (r->ndirty == r->dcap) {
			size_t cap = r->dcap ? 2 * r->dcap : 1024;
			struct flow **v = realloc(r->dirty, cap * sizeof(*v));
			if (!v) {
				flush_dirty(r);         /* no memory to wait: send now */
				if (r->ndirty == r->dcap) {
					/* its state goes with the next change or digest resync */
					log_limited(LOG_LVL_WARN, "out of memory: a flow change not sent");
					return;
				}
			} else {
				r->dirty = v;
				r->dcap = cap;
			}
		}
		r->dirty[r->ndirty] = f;
		if (!r->ndirty++)
			r->dirty_since = repl_now(r);
	} else if (op == REC_FLOW_REFRESH) {
		return;                 /* an upsert or delete already says more */
	}
	f->dirty = (uint8_t)op;
}

/* Our flow f was sent: peers' copies now live until `until`. */
static void sent_until(struct repl *r, struct flow *f, uint64_t until)
{
	f->peer_expiry = (uint32_t)((until + 999) / 1000);
	until = (uint64_t)f->peer_expiry * 1000;
	if (until < r->next_expiry)
		r->next_expiry = until;
	if (until < r->scan_min)
		r->scan_min = until;
}

static void flush_dirty(struct repl *r)
{
	struct flow **v = r->dirty;
	size_t n = r->ndirty, cap = r->dcap;

	/* detached while it is sent: anything marked meanwhile waits anew */
	r->dirty = NULL;
	r->ndirty = r->dcap = 0;
	for (size_t i = 0; i < n; i++) {
		struct flow *f = v[i];
		uint8_t op = f->dirty;
		f->dirty = 0;
		if (f->owner == r->cfg.node_id) {
			if (f->dead)
				op = REC_FLOW_DELETE;
			struct ct c;
			flow_get(f, &c);
			emit_flow(r, (enum wire_rec)op, &c, f->claim);
			sent_until(r, f, repl_now(r) + (uint64_t)f->timeout * 1000);
		}
		if (f->dead)
			table_flow_free(f);
	}
	/* kept for the next time, unless a burst made it large */
	if (!r->dirty && cap <= 65536) {
		r->dirty = v;
		r->dcap = cap;
	} else {
		free(v);
	}
	frame_send(r, false);
}

struct bulk_ctx {
	struct repl *r;
	uint32_t count;
};

static void bulk_one(void *arg, struct flow *f)
{
	struct bulk_ctx *b = arg;
	if (f->owner == b->r->cfg.node_id) {
		struct ct c;
		flow_get(f, &c);
		emit_flow(b->r, REC_FLOW_UPSERT, &c, f->claim);
		sent_until(b->r, f, repl_now(b->r) + (uint64_t)f->timeout * 1000);
		b->count++;
	}
}

void repl_want_bulk(struct repl *r, uint32_t to)
{
	r->bulk_to = !r->bulk_to || r->bulk_to == to ? to : BULK_ALL;
}

uint32_t repl_frame_for(const struct repl *r, uint32_t seq)
{
	for (unsigned i = 0; i < r->ntargeted && i < TARGETED_BULKS; i++)
		if ((int32_t)(seq - r->targeted[i].first) >= 0 &&
		    (int32_t)(r->targeted[i].last - seq) >= 0)
			return r->targeted[i].node;
	return 0;
}

/* The frames [first, last] were for `only` alone: the others count them
 * as received (wire.h, REC_SKIP). */
static void skip_others(struct repl *r, const struct peer *only, uint32_t first, uint32_t last)
{
	struct nack_info n = { .target = only->id, .epoch = r->epoch, .nranges = 1 };

	n.range[0].first = first;
	n.range[0].last = last;
	r->targeted[r->ntargeted++ % TARGETED_BULKS] = (struct targeted){ first, last, only->id };
	/* one frame for all: the node it names ignores it (over multicast or
	 * CPG one per peer would reach every node once per peer) */
	repl_send_control(r, NULL, NULL, &n, NULL, NULL);
}

/* Every flow we own, between BULK_BEGIN and BULK_END, so that receivers can
 * drop what we no longer have (mark and sweep): to the one node that needs
 * it, or to all. */
static void send_bulk(struct repl *r)
{
	struct bulk_ctx b = { r, 0 };
	struct bulk_info bi = { .id = ++r->bulk_id };
	const struct peer *only = r->bulk_to != BULK_ALL ? repl_peer(r, r->bulk_to) : NULL;

	r->bulk_to = 0;
	flush_dirty(r);                 /* what is dirty goes to everyone first */
	uint32_t first = r->seq + 1;
	r->tx_only = only;
	frame_begin(r);                 /* (empty: flush_dirty sent what it held) */
	repl_emit_bulk(r, REC_BULK_BEGIN, &bi);
	table_foreach(r->t, bulk_one, &b);
	exp_bulk(r);                    /* after every master */
	bi.count = b.count;
	repl_emit_bulk(r, REC_BULK_END, &bi);
	frame_send(r, false);
	r->tx_only = NULL;
	frame_begin(r);
	if (only)
		skip_others(r, only, first, r->seq);
	r->st.tx_bulks++;
	for (unsigned i = 0; i < r->cfg.npeers; i++)
		if (!only || &r->peer[i] == only)
			r->peer[i].bulk_sent_at = repl_now(r);
	if (only)
		log_info("sent bulk %u to node %u: %u flows", bi.id, only->id, b.count);
	else
		log_info("sent bulk %u: %u flows", bi.id, b.count);
}

/* At most one bulk to a node every BULK_MIN_INTERVAL_MS (a bulk to one
 * does not hold up a bulk to another). */
static bool bulk_due(struct repl *r)
{
	uint64_t t = repl_now(r);

	for (unsigned i = 0; i < r->cfg.npeers; i++) {
		const struct peer *p = &r->peer[i];
		if ((r->bulk_to == BULK_ALL || r->bulk_to == p->id) && p->bulk_sent_at &&
		    t - p->bulk_sent_at < BULK_MIN_INTERVAL_MS)
			return false;
	}
	return true;
}

void repl_flush(struct repl *r)
{
	/* held packets wait for these frames: each asks for an ACK */
	bool defer = r->defer_unsent;
	if (defer) {
		r->ackreq = true;
		r->ackreq_sent = false;
	}
	/* A primary still holding flows without owner sends its bulk once it
	 * has settled them (see start-up below); anyone else sends at once. */
	bool settling = r->starting && policy_takes_orphans(&r->pol) &&
			table_owner(r->t, OWNER_NONE).flows;
	if (r->bulk_to && !settling && bulk_due(r))
		send_bulk(r);
	if (r->ndirty)
		flush_dirty(r);
	exp_flush(r);                   /* after the flows: masters first */
	frame_send(r, false);           /* records emitted outside the dirty list */
	if (defer) {
		r->ackreq = false;
		/* (the flows went in a frame sent full before: this one asks
		 * for them, and every frame before it) */
		if (!r->ackreq_sent && codec_put_ackreq(&r->w) == 0)
			frame_send(r, false);
		defer_sent(r);
	}
	r->ops.inject_flush(r->ops.arg);
}

unsigned repl_flush_lazy(struct repl *r)
{
	uint64_t age = r->ndirty ? repl_now(r) - r->dirty_since : 0;

	if (!r->ndirty || r->ndirty >= REPL_HOLD_RECORDS || age >= REPL_HOLD_MS || r->bulk_to ||
	    r->exp_dirty || r->defer_unsent) {
		repl_flush(r);
		return 0;
	}
	/* the rest may go now: only the few dirty flows wait */
	frame_send(r, false);
	r->ops.inject_flush(r->ops.arg);
	return (unsigned)(REPL_HOLD_MS - age);
}

/* Data first, so the heartbeat's lastseq covers it. */
void tx_heartbeat(struct repl *r)
{
	repl_flush(r);
	struct owner_stats o = table_owner(r->t, r->cfg.node_id);
	struct hb_info hb = {
		.role = policy_primary(&r->pol),
		.term = policy_term(&r->pol),
		.flows = o.flows,
		.digest = o.digest,
		.lastseq = r->seq,
	};
	if (r->cfg.active_active) {
		hb.holds = policy_holds(&r->pol);
		hb.nbuckets = r->cfg.nbuckets;
		hb.bucket_seed = r->cfg.bucket_seed;
	}
	codec_put_heartbeat(&r->w, &hb);
	frame_send(r, true);
	r->last_hb = repl_now(r);
}
