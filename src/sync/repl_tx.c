/* repl_tx.c — the engine's sending side (repl.h): the dirty list and
 * coalescing, frames filled to the MTU and kept for NACKs, retransmissions,
 * bulks (to one node or all), heartbeats, control frames and ACKs.  Every
 * datagram the engine sends leaves through tx_out, counted alike. */
#include "sync/repl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/version.h"
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

/* Every datagram of ours goes out here, counted alike: to one peer (p) or
 * to all (NULL). */
static void tx_out(struct repl *r, const struct peer *p, const uint8_t *buf, size_t len)
{
	if (r->ops.send(r->ops.arg, p ? p->id : REPL_ALL, buf, len) < 0)
		r->st.tx_errors++;
	for (unsigned i = 0; i < r->cfg.npeers; i++)
		if (!p || &r->peer[i] == p)
			r->peer[i].c.tx_frames++;
	r->st.tx_frames++;
	r->st.tx_bytes += len;
}

uint64_t tx_unseq(struct repl *r, const struct peer *p, struct wbuf *w)
{
	struct frame_hdr h = {
		.flags = WIRE_F_UNSEQ, .node = r->cfg.node_id, .epoch = r->epoch, .seq = r->seq,
		.pn = r->pn++,
	};
	size_t len = codec_frame_finish(w, &h);

	r->st.tx_records += w->nrec;
	tx_out(r, p, w->p, len);
	return h.pn;
}

/* The data frame in r->w goes out under the next sequence number. */
static void frame_send(struct repl *r)
{
	if (r->w.nrec == 0)
		return;
	/* a held packet waits for this frame to be acknowledged (repl_defer.c);
	 * a full frame goes without the request, and one of it alone follows */
	bool ack_alone = false;
	if (r->ackreq) {
		if (codec_put_ackreq(&r->w) < 0)
			ack_alone = true;
		else
			r->ackreq_sent = true;
	}
	struct frame_hdr h = {
		.node = r->cfg.node_id, .epoch = r->epoch, .seq = r->seq + 1, .pn = r->pn++,
	};
	size_t len = codec_frame_finish(&r->w, &h);
	r->seq++;
	/* kept for NACKs; if it cannot be, a NACK escalates to a bulk */
	ring_put(r->sent, r->seq, r->buf, len);
	r->st.tx_records += r->w.nrec;
	tx_out(r, r->tx_only, r->buf, len);
	frame_begin(r);
	if (ack_alone && codec_put_ackreq(&r->w) == 0) {
		r->ackreq_sent = true;
		frame_send(r);
	}
}

/* As many of n's ranges as fit (the first ones: the rest wait for the
 * next NACK, or are asked for again by the peer). */
static int put_ranges(struct wbuf *w, enum wire_rec type, const struct nack_info *n)
{
	struct nack_info t = *n;
	int ret;

	while ((ret = codec_put_ranges(w, type, &t)) == -ENOSPC && t.nranges > 1)
		t.nranges /= 2;
	return ret;
}

void tx_control(struct repl *r, const struct peer *p, const struct nack_info *n,
		const struct nack_info *skip, const struct challenge_info *response,
		const struct challenge_info *challenge)
{
	struct wbuf w;

	codec_frame_start(&w, r->ctl, r->cfg.frame_size);
	if ((n && put_ranges(&w, REC_NACK, n) < 0) || (skip && put_ranges(&w, REC_SKIP, skip) < 0) ||
	    (response && codec_put_challenge(&w, REC_RESPONSE, response) < 0) ||
	    (challenge && codec_put_challenge(&w, REC_CHALLENGE, challenge) < 0)) {
		r->st.tx_control_too_big++;
		log_limited(LOG_LVL_WARN, "a control frame does not fit frame_size %zu: not sent",
			    r->cfg.frame_size);
		return;
	}
	tx_unseq(r, p, &w);
}

void tx_ack(struct repl *r, struct peer *p, bool unseq, uint32_t seq, uint64_t pn)
{
	struct wbuf w;
	struct ack_info a = { .has_seq = !unseq, .seq = seq, .has_pn = unseq, .pn = pn };

	/* what this frame made us inject is in the kernel before we say so
	 * (a netlink request is handled within the sendmsg that carries it) */
	r->ops.inject_flush(r->ops.arg);
	codec_frame_start(&w, r->ctl, r->cfg.frame_size);
	if (codec_put_ack(&w, &a) < 0)
		return;
	tx_unseq(r, p, &w);
	r->st.acks_sent++;
}

/* Add seq to the ranges of n (in order: it extends the last or starts one). */
static void range_add(struct nack_info *n, uint32_t seq)
{
	if (n->nranges && n->range[n->nranges - 1].last + 1 == seq) {
		n->range[n->nranges - 1].last = seq;
	} else if (n->nranges < NACK_MAX_RANGES) {
		n->range[n->nranges].first = n->range[n->nranges].last = seq;
		n->nranges++;
	}
}

void tx_retransmit(struct repl *r, struct peer *p, const struct nack_info *n)
{
	struct nack_info skip = { .target = 0, .epoch = r->epoch };
	unsigned budget = 4096;         /* frames resent per NACK, at most */
	unsigned skips = 65536;         /* and frames answered with a SKIP */
	bool escalated = false;

	for (unsigned i = 0; i < n->nranges && budget && skips; i++) {
		for (uint32_t s = n->range[i].first;
		     (int32_t)(n->range[i].last - s) >= 0 && budget && skips; s++) {
			uint32_t only = tx_frame_for(r, s);
			if (only && only != p->id) {
				skip.target = only;     /* (the last one named: any but p will do) */
				range_add(&skip, s);
				skips--;
				continue;
			}
			budget--;
			size_t len;
			const uint8_t *f = ring_get(r->sent, s, &len);
			if (!f || len > r->cfg.frame_size) {
				escalated = true;
				break;
			}
			/* the same frame, sealed afresh: a packet number is never reused */
			memcpy(r->rtx, f, len);
			codec_frame_set_pn(r->rtx, r->pn++);
			tx_out(r, p, r->rtx, len);
			p->c.retransmitted++;
			r->st.tx_retransmits++;
		}
	}
	if (skip.nranges)
		tx_control(r, p, NULL, &skip, NULL, NULL);
	if (escalated && r->bulk_to != BULK_ALL && r->bulk_to != p->id) {
		tx_want_bulk(r, p->id);
		r->st.resync_escalations++;
		log_warnx("peer %u asked for frames no longer held: sending a bulk resync", p->id);
	}
}

/* An upsert carries the flow's claim (codec_put_claimed). */
static int put_flow(struct wbuf *w, enum wire_rec type, const struct ct *ct, uint32_t claim)
{
	return type == REC_FLOW_UPSERT ? codec_put_claimed(w, ct, claim) : codec_put_flow(w, type, ct);
}

static void emit_flow(struct repl *r, enum wire_rec type, const struct ct *ct, uint32_t claim)
{
	if (put_flow(&r->w, type, ct, claim) == -ENOSPC) {
		frame_send(r);
		put_flow(&r->w, type, ct, claim);
	}
}

void tx_emit_exp(struct repl *r, enum wire_rec type, const struct exp *e)
{
	if (codec_put_exp(&r->w, type, e) == -ENOSPC) {
		frame_send(r);
		codec_put_exp(&r->w, type, e);
	}
}

void tx_emit_bulk(struct repl *r, enum wire_rec type, const struct bulk_info *b)
{
	if (codec_put_bulk(&r->w, type, b) == -ENOSPC) {
		frame_send(r);
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
	frame_send(r);
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

void tx_want_bulk(struct repl *r, uint32_t to)
{
	r->bulk_to = !r->bulk_to || r->bulk_to == to ? to : BULK_ALL;
}

uint32_t tx_frame_for(const struct repl *r, uint32_t seq)
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
	tx_control(r, NULL, NULL, &n, NULL, NULL);
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
	tx_emit_bulk(r, REC_BULK_BEGIN, &bi);
	table_foreach(r->t, bulk_one, &b);
	expect_bulk(r);                    /* after every master */
	bi.count = b.count;
	tx_emit_bulk(r, REC_BULK_END, &bi);
	frame_send(r);
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
	expect_flush(r);                   /* after the flows: masters first */
	frame_send(r);           /* records emitted outside the dirty list */
	if (defer) {
		r->ackreq = false;
		/* (the flows went in a frame sent full before: this one asks
		 * for them, and every frame before it) */
		if (!r->ackreq_sent && codec_put_ackreq(&r->w) == 0)
			frame_send(r);
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
	frame_send(r);
	r->ops.inject_flush(r->ops.arg);
	return (unsigned)(REPL_HOLD_MS - age);
}

/* Data first, so the heartbeat's lastseq covers it. */
_Static_assert(POLICY_MAX_BUCKETS <= WIRE_HELD_MAX * 8, "HA_HELD has a bit per bucket");

static void heartbeat(struct repl *r, bool answer)
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
		/* what our kernel forwards, and for how long without us */
		hb.has_held = true;
		hb.held_len = (uint16_t)((r->cfg.nbuckets + 7) / 8);
		for (unsigned b = 0; b < r->cfg.nbuckets; b++)
			if (r->held[b])
				hb.held[b / 8] |= (uint8_t)(1u << (b % 8));
		hb.lease_ms = r->cfg.lease_ms;
		/* which heartbeat of each peer this report was made after,
		 * and whether we wait for theirs (repl_own.c, can_take) */
		for (unsigned i = 0; i < r->cfg.npeers; i++) {
			const struct peer *p = &r->peer[i];
			if (!p->alive || !p->hb_valid || !p->hb.beat)
				continue;       /* the live peers we hear: can_take */
			hb.echo[hb.nechoes++] = (struct hb_echo){ p->id, p->epoch, p->hb.beat };
		}
		hb.ask = r->nwaiting && !answer;
	}
	hb.beat = ++r->beat;
	if (!hb.beat)
		hb.beat = ++r->beat;    /* 0 is "absent" */
	r->beat_at[hb.beat % BEATS_KEPT] = repl_now(r);
	hb.proto_major = WIRE_VERSION;
	hb.proto_minor = WIRE_MINOR;
	hb.features = WIRE_FEATURES;
	snprintf(hb.release, sizeof(hb.release), "%s", CTSYNC_VERSION);
	/* (r->w is empty: repl_flush sent what it held) */
	codec_put_heartbeat(&r->w, &hb);
	tx_unseq(r, NULL, &r->w);
	frame_begin(r);
	r->last_hb = repl_now(r);
}

void tx_heartbeat(struct repl *r)
{
	heartbeat(r, false);
}

void tx_heartbeat_answer(struct repl *r)
{
	heartbeat(r, true);
}
