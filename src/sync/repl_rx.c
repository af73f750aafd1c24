/*
 * repl_rx.c — frames from peers: checked whole, then applied in sequence order
 * per (node, epoch).  A gap holds later frames back and is NACKed (again
 * every nack_ms) until filled; one whose repair makes no progress for
 * gap_timeout_ms, or that is too wide to hold, is given up: the frames are
 * counted as lost and the sender is asked for a bulk resync, whose mark and
 * sweep repairs whatever they carried.  Heartbeats reveal a lost tail (their
 * last sequence) and silent divergence (their digest).
 */
#include <errno.h>
#include <stdlib.h>

#include "util/log.h"
#include "sync/repl_int.h"

/* ---- epochs (epoch.h): challenge and response ------------------------------- */

/* Ask the peer to prove it lives in `epoch` (again after a while only);
 * `response`, an answer to its own challenge, goes along in any case. */
static void challenge(struct repl *r, struct peer *p, uint32_t epoch,
		      const struct challenge_info *response)
{
	uint64_t t = repl_now(r);

	if (!epoch_challenge_due(&p->ep, epoch, t)) {
		if (response)
			tx_control(r, p, NULL, NULL, response, NULL);
		return;
	}
	struct challenge_info c = { .target = p->id, .epoch = epoch };
	epoch_cookie(r->secret, r->cfg.node_id, p->id, epoch, t, c.cookie);
	tx_control(r, p, NULL, NULL, response, &c);
	r->st.tx_challenges++;
}

/* A challenge from p: answer it if it is about us as we are now.  With
 * `defer` the answer is left in p->pending_response for the caller. */
static bool answer_challenge(struct repl *r, struct peer *p, const struct rec *rec, bool defer)
{
	struct challenge_info c;

	if (codec_get_challenge(rec, &c) < 0 || c.target != r->cfg.node_id ||
	    c.epoch != r->epoch)
		return false;
	/* a replayed challenge costs little */
	if (!epoch_may_respond(&p->ep, repl_now(r)))
		return false;
	r->st.tx_responses++;
	c.target = p->id;
	if (defer) {
		p->pending_response = c;
		return true;
	}
	tx_control(r, p, NULL, NULL, &c, NULL);
	return true;
}

/* Does this frame carry a valid answer to our challenge of its epoch? */
static bool confirms(struct repl *r, struct peer *p, const struct frame_hdr *h,
		     const uint8_t *buf, size_t len)
{
	struct frame_hdr hh;
	struct cursor c;
	struct rec rec;
	struct challenge_info ci;

	if (codec_frame_open(buf, len, &hh, &c) < 0)
		return false;
	while (codec_next(&c, &rec) > 0)
		if (rec.type == REC_RESPONSE && codec_get_challenge(&rec, &ci) == 0 &&
		    ci.target == r->cfg.node_id &&
		    epoch_cookie_ok(r->secret, r->cfg.node_id, p->id, h->epoch, repl_now(r),
				    ci.cookie))
			return true;
	return false;
}

/* Its challenges, in a frame of an epoch we do not trust yet: answered all
 * the same (our answer only proves what we are), together with ours. */
static void answer_unconfirmed(struct repl *r, struct peer *p, const struct frame_hdr *h,
			       const uint8_t *buf, size_t len)
{
	struct frame_hdr hh;
	struct cursor c;
	struct rec rec;
	bool answered = false;

	if (codec_frame_open(buf, len, &hh, &c) < 0)
		return;
	while (codec_next(&c, &rec) > 0)
		if (rec.type == REC_CHALLENGE && !answered)
			answered = answer_challenge(r, p, &rec, true);
	challenge(r, p, h->epoch, answered ? &p->pending_response : NULL);
}

/* ---- applying records ------------------------------------------------------- */

/* An upsert is p's claim on the flow at generation `claim`.  Against
 * another node's claim it must be the newer one (policy_compare): an older
 * claim is refused, and when the flow is ours we say so again, so the
 * sender learns it lost. */
static void apply_upsert(struct repl *r, struct peer *p, const struct ct *ct, uint64_t h,
			 uint32_t claim)
{
	struct flow *f = table_find_h(r->t, ct, h);
	uint32_t self = r->cfg.node_id;
	bool same = false;
	struct ct stripped;

	r->st.rx_upserts++;
	policy_seen(&r->pol, claim);
	ct = filter_strip(r, ct, &stripped);    /* parts we do not restore */
	if (!f) {
		if (r->wait)
			filter_peer_has(r, ct);
		f = table_add_h(r->t, ct, p->id, h);
		if (!f)
			return;
	} else {
		if (f->owner != p->id && f->owner != OWNER_NONE) {
			struct claim mine = { f->claim, f->owner }, theirs = { claim, p->id };
			/* A dead owner's claim, however new, does not keep a live
			 * node from speaking for the flow (it may have adopted it
			 * before the dead one's claim reached it); once the owner
			 * lives again, claims compare as usual. */
			const struct peer *q = repl_peer(r, f->owner);
			bool held_live = f->owner == self || (q && q->alive);
			if (held_live && policy_compare(theirs, mine) < 0) {
				r->st.claims_refused++;
				if (f->owner == self)
					tx_mark_dirty(r, f, REC_FLOW_UPSERT);
				return;
			}
			/* a primary's flow taken by another primary (two at
			 * once), or in active-active a flow of a bucket we hold
			 * (two nodes that see the membership differently) */
			if (f->owner == self && policy_should_own(&r->pol, own_bucket(r, ct)))
				r->st.ownership_conflicts++;
		}
		if (f->owner == OWNER_NONE)
			r->st.orphans_claimed++;
		/* another peer's flow taken by this one, and our kernel has
		 * this very state already (a takeover tells every node of
		 * every flow taken, unchanged): not written again — 100,000
		 * such updates kept the loop from our heartbeats and leases
		 * for half a second (bench/takeover.sh).  A flow that was
		 * ours is written: our kernel's entry is what our own packets
		 * made of it (its TCP windows stale once another node
		 * forwards), and the write makes it a peer's (tcp_window
		 * "liberal"); tcp-stream.sh's failback breaks without.  (Only
		 * on an owner change: an owner's own update costs no unpacking
		 * here.) */
		if (f->owner != p->id && f->owner != self && f->owner != OWNER_NONE &&
		    f->in_kernel) {
			struct ct had;
			flow_get(f, &had);
			same = had.has == ct->has && had.timeout == ct->timeout &&
			       !ct_differs(&had, ct);
		}
		table_set_owner(r->t, f, p->id);
		table_flow_set(r->t, f, ct);
	}
	f->claim = claim;
	if (p->bulk_active)
		f->bulk_mark = p->bulk_gen;
	if (same)
		r->st.rx_upserts_same++;
	else if (r->cfg.inject_immediate)
		repl_inject(r, f->in_kernel ? CTNL_OP_UPDATE : CTNL_OP_CREATE, f);
	else
		f->pending = 1;
}

static void apply_delete(struct repl *r, struct peer *p, const struct ct *ct, uint64_t h)
{
	struct flow *f = table_find_h(r->t, ct, h);

	r->st.rx_deletes++;
	if (!f || f->owner != p->id)
		return;
	if (f->in_kernel)
		repl_inject(r, CTNL_OP_DELETE, f);
	repl_drop(r, f);
}

static void apply_refresh(struct repl *r, struct peer *p, const struct ct *ct)
{
	struct flow *f = table_find(r->t, ct);

	r->st.rx_refreshes++;
	if (!f || f->owner != p->id)
		return;                 /* a digest mismatch will tell if it matters */
	f->timeout = ct->timeout;
	if (r->cfg.inject_immediate)
		repl_inject(r, f->in_kernel ? CTNL_OP_UPDATE : CTNL_OP_CREATE, f);
	else
		f->pending = 1;
}

void rx_ask_resync(struct repl *r, struct peer *p, const char *why)
{
	uint64_t t = repl_now(r);

	if (p->resync_asked_at && t - p->resync_asked_at < RESYNC_RETRY_MS)
		return;
	if (p->incompatible)
		return;                 /* it could not read the request */
	p->resync_asked_at = t;
	p->c.resyncs_asked++;
	r->st.resyncs_asked++;
	struct bulk_info b = { .id = ++r->bulk_id, .target = p->id };
	tx_emit_bulk(r, REC_RESYNC_REQ, &b);
	log_info("peer %u: asking for a resync (%s)", p->id, why);
}

/* Its digest differs from what we hold, after everything it sent: ask for
 * its flows — but a resync that does not cure it is a fault of its own
 * (two nodes that compute the digest differently would bulk forever), so
 * past RESYNC_FRUITLESS in a row they are spaced out, 10 s doubling to
 * 5 min, counted and said once. */
static void ask_resync_digest(struct repl *r, struct peer *p)
{
	uint64_t t = repl_now(r);

	if (p->resync_not_before && t < p->resync_not_before)
		return;
	uint64_t before = p->c.resyncs_asked;
	rx_ask_resync(r, p, "its digest differs from what we hold");
	if (p->c.resyncs_asked == before)
		return;                 /* not asked now (RESYNC_RETRY_MS) */
	if (++p->fruitless < RESYNC_FRUITLESS)
		return;
	unsigned shift = p->fruitless - RESYNC_FRUITLESS;
	uint64_t wait = shift >= 5 ? RESYNC_BACKOFF_MAX_MS : (uint64_t)RESYNC_BACKOFF_MS << shift;
	if (wait > RESYNC_BACKOFF_MAX_MS)
		wait = RESYNC_BACKOFF_MAX_MS;
	p->resync_not_before = t + wait;
	p->c.resync_backoffs++;
	r->st.resync_backoffs++;
	if (p->fruitless == RESYNC_FRUITLESS)
		log_warnx("peer %u: its flows still differ from its digest after %u resyncs: "
			  "asking again at most every %llu s from now on (does it compute the "
			  "digest as we do? see the versions in `ctsyncctl status`)", p->id,
			  p->fruitless, (unsigned long long)wait / 1000);
}

static void apply_heartbeat(struct repl *r, struct peer *p, const struct rec *rec)
{
	struct hb_info hb;

	if (codec_get_heartbeat(rec, &hb) < 0) {
		r->st.rx_bad_records++;
		return;
	}
	/* unsequenced: one overtaken on the way (a reordering link) says what
	 * the peer no longer is, or holds */
	if (p->hb_valid && r->rx_pn && r->rx_pn < p->hb_pn) {
		r->st.rx_stale_heartbeats++;
		return;
	}
	r->st.rx_heartbeats++;
	if (r->cfg.active_active &&
	    (hb.nbuckets != r->cfg.nbuckets || hb.bucket_seed != r->cfg.bucket_seed)) {
		/* its map is not ours: some flows would be forwarded by two
		 * nodes, some by none.  It is not counted as holding any. */
		r->st.bucket_config_mismatches++;
		log_limited(LOG_LVL_ERROR, "peer %u: buckets %u seed %#x, ours %u seed %#x: "
			    "set buckets.count and buckets.seed alike on every node", p->id,
			    hb.nbuckets, hb.bucket_seed, r->cfg.nbuckets, r->cfg.bucket_seed);
		hb.holds = false;
	}
	p->hb = hb;
	p->hb_valid = true;
	p->hb_pn = r->rx_pn;
	quorum_heard(r, p);
	policy_member(&r->pol, p->id, true, hb.role, hb.term, hb.holds);
	quorum_poll(r);
	/* what it let go of may be ours to take now, what it took ours to
	 * let go of: at once, not at the next poll */
	uint32_t beat = r->beat;
	own_buckets_poll(r);
	/* it waits for our report made after this heartbeat of its (a
	 * handover): at once, unless the poll just sent one */
	if (hb.ask && r->cfg.active_active && r->beat == beat)
		tx_heartbeat_answer(r);
	/* a lost tail: the sender sent more than we have */
	if ((int32_t)(hb.lastseq - p->next_seq) >= 0) {
		if (!p->gap_since) {
			p->gap_since = repl_now(r);
			p->c.gaps++;
		}
		rx_poll(r, p);
		return;
	}
	/* everything it sent is applied: its flows must be what we hold */
	struct owner_stats o = table_owner(r->t, p->id);
	if (o.flows == hb.flows && o.digest == hb.digest) {
		p->mismatch = 0;
		if (p->fruitless >= RESYNC_FRUITLESS)
			log_info("peer %u: its digest matches again", p->id);
		p->fruitless = 0;
		p->resync_not_before = 0;
		return;
	}
	if (p->bulk_active || reorder_count(p->held)) {
		p->mismatch = 0;
		return;
	}
	/* Three in a row, not one: a flow can change hands between the
	 * sender's count and ours (a promotion in flight). */
	if (++p->mismatch >= 3) {
		r->st.digest_mismatches++;
		p->mismatch = 0;
		ask_resync_digest(r, p);
	}
}

static void apply_bulk(struct repl *r, struct peer *p, const struct rec *rec)
{
	struct bulk_info b;

	if (codec_get_bulk(rec, &b) < 0) {
		r->st.rx_bad_records++;
		return;
	}
	if (rec->type == REC_BULK_BEGIN) {
		p->bulk_active = true;
		p->bulk_clean = true;
		p->bulk_gen = ++r->gen;
		return;
	}
	if (rec->type == REC_RESYNC_REQ) {
		if (b.target == 0 || b.target == r->cfg.node_id)
			tx_want_bulk(r, p->id);       /* it asked: to it alone */
		return;
	}
	/* BULK_END */
	if (!p->bulk_active)
		return;
	p->bulk_active = false;
	p->c.bulks_received++;
	r->st.rx_bulks++;
	if (!p->bulk_clean) {
		log_warnx("peer %u: bulk %u lost frames, not sweeping", p->id, b.id);
		p->resync_asked_at = 0;
		rx_ask_resync(r, p, "its last bulk lost frames");
		return;
	}
	p->c.bulks_clean++;
	p->bulk_done = true;
	p->resync_asked_at = 0;
	unsigned n = repl_sweep(r, p->id, p->bulk_gen);
	log_info("peer %u: bulk %u complete, %u flows, %u stale removed",
		 p->id, b.id, b.count, n);
}

/* A NACK of p's: if it is about our current life, the sender's side
 * answers it (tx_retransmit). */
static void apply_nack(struct repl *r, struct peer *p, const struct rec *rec)
{
	struct nack_info n;

	if (codec_get_nack(rec, &n) < 0) {
		r->st.rx_bad_records++;
		return;
	}
	if (n.target != r->cfg.node_id || n.epoch != r->epoch)
		return;                 /* about someone else, or our past life */
	p->c.nacks_received++;
	r->st.rx_nacks++;
	tx_retransmit(r, p, &n);
}

static void drain(struct repl *r, struct peer *p);

/* Frames of p's that were for another node (a bulk to it alone): count them
 * as received, as if they had come and carried nothing for us. */
static void apply_skip(struct repl *r, struct peer *p, const struct rec *rec)
{
	static const uint8_t nothing[1];        /* held in their place: applies as nothing */
	struct nack_info n;

	unsigned budget = REORDER_CAP;  /* slots looked at, for all ranges together */

	if (codec_get_nack(rec, &n) < 0 || n.target == r->cfg.node_id || n.epoch != p->epoch)
		return;
	r->st.rx_skipped_ranges++;
	for (unsigned i = 0; i < n.nranges && budget; i++) {
		/* from next_seq at the earliest, within the reorder window */
		uint32_t s = (int32_t)(n.range[i].first - p->next_seq) < 0 ? p->next_seq
									 : n.range[i].first;
		for (; (int32_t)(n.range[i].last - s) >= 0 && s - p->next_seq < REORDER_CAP &&
		       budget; s++, budget--)
			if (reorder_put(p->held, p->next_seq, s, nothing, sizeof(nothing)) == 0)
				r->st.rx_skipped_frames++;
	}
	drain(r, p);
}

/* Packed IPv4 flows: the record is checked whole before any entry is
 * applied.  That first pass also hashes each key, and the lookups are
 * announced before the second (table_prefetch). */
#define PREFETCH_MAX 256
static void apply_packed(struct repl *r, struct peer *p, const struct rec *rec, uint32_t claim)
{
	uint64_t hs[PREFETCH_MAX];
	struct ct ct;
	size_t off = 0;
	unsigned n = 0;
	int ret;

	while ((ret = codec_next_packed(rec, &off, &ct)) > 0) {
		if (n < PREFETCH_MAX)
			hs[n] = ct_key_hash(&ct);
		n++;
	}
	if (ret < 0) {
		r->st.rx_bad_records++;
		log_limited(LOG_LVL_WARN, "peer %u: bad packed flow record", p->id);
		return;
	}
	table_prefetch(r->t, hs, n < PREFETCH_MAX ? n : PREFETCH_MAX);
	off = 0;
	for (unsigned i = 0; codec_next_packed(rec, &off, &ct) > 0; i++) {
		uint64_t h = i < PREFETCH_MAX ? hs[i] : ct_key_hash(&ct);
		if (rec->type == REC_UPSERTS4)
			apply_upsert(r, p, &ct, h, claim);
		else
			apply_delete(r, p, &ct, h);
	}
}

/* Every record of a frame already checked whole. */
static void apply_frame(struct repl *r, struct peer *p, const uint8_t *buf, size_t len)
{
	struct frame_hdr h;
	struct cursor c;
	struct rec rec;
	struct ct ct;
	uint32_t claim = 0;             /* wire.h, "Claims" */
	uint32_t for_node;
	struct ack_info ack;
	bool ackreq = false;

	if (codec_frame_open(buf, len, &h, &c) < 0)
		return;
	while (codec_next(&c, &rec) > 0) {
		switch (rec.type) {
		case REC_FLOW_UPSERT:
		case REC_FLOW_DELETE:
		case REC_FLOW_REFRESH:
			if (codec_get_flow(&rec, &ct) < 0) {
				r->st.rx_bad_records++;
				log_limited(LOG_LVL_WARN, "peer %u: bad flow record", p->id);
				break;
			}
			if (rec.type == REC_FLOW_UPSERT)
				apply_upsert(r, p, &ct, ct_key_hash(&ct), claim);
			else if (rec.type == REC_FLOW_DELETE)
				apply_delete(r, p, &ct, ct_key_hash(&ct));
			else if (ct.has & CT_HAS_TIMEOUT)
				apply_refresh(r, p, &ct);
			break;
		case REC_UPSERTS4:
		case REC_DELETES4:
			apply_packed(r, p, &rec, claim);
			break;
		case REC_CLAIM:
			codec_get_claim(&rec, &claim);
			break;
		case REC_FOR:                   /* a bulk to one node (wire.h) */
			if (codec_get_for(&rec, &for_node) == 0 && for_node != r->cfg.node_id)
				return;
			break;
		case REC_HEARTBEAT:
			apply_heartbeat(r, p, &rec);
			break;
		case REC_BULK_BEGIN:
		case REC_BULK_END:
		case REC_RESYNC_REQ:
			apply_bulk(r, p, &rec);
			break;
		case REC_NACK:
			apply_nack(r, p, &rec);
			break;
		case REC_SKIP:
			apply_skip(r, p, &rec);
			break;
		case REC_EXP_UPSERT:
		case REC_EXP_DELETE:
			expect_apply(r, p, &rec);
			break;
		case REC_CHALLENGE:
			answer_challenge(r, p, &rec, false);
			break;
		case REC_ACKREQ:                /* wire.h, "Defer" */
			ackreq = true;
			break;
		case REC_ACK:
			if (codec_get_ack(&rec, &ack) == 0)
				defer_ack(r, p, &ack);
			break;
		case REC_HINT:
			if (codec_get_flow(&rec, &ct) == 0)
				defer_hint(r, p, &ct);
			break;
		default:                /* a RESPONSE to a confirmed epoch: nothing to do */
			break;          /* unknown, not mandatory: skip */
		}
	}
	if (ackreq)                     /* the whole frame is applied */
		tx_ack(r, p, h.flags & WIRE_F_UNSEQ, h.seq, h.pn);
}

/* ---- ordering ------------------------------------------------------------------ */

/* Apply what is held from next_seq on; close the gap if nothing is left. */
static void drain(struct repl *r, struct peer *p)
{
	uint32_t from = p->next_seq;
	size_t len;
	uint8_t *f;

	while ((f = reorder_take(p->held, p->next_seq, &len))) {
		p->next_seq++;
		apply_frame(r, p, f, len);
		free(f);
	}
	if (reorder_count(p->held) == 0 &&
	    !(p->hb_valid && (int32_t)(p->hb.lastseq - p->next_seq) >= 0)) {
		p->gap_since = 0;
		p->nack_at = 0;
	} else if (p->gap_since && p->next_seq != from) {
		/* repair is progressing: the time-out counts from here */
		p->gap_since = repl_now(r);
	}
}

/* Stop waiting for the frames before `upto`: count them lost, ask for a
 * bulk (its mark and sweep repairs what they carried), go on. */
static void give_up(struct repl *r, struct peer *p, uint32_t upto, const char *why)
{
	uint32_t lost = upto - p->next_seq;

	p->c.lost += lost;
	r->st.rx_lost += lost;
	p->next_seq = upto;
	if (p->bulk_active)
		p->bulk_clean = false;
	log_warnx("peer %u: %u frames lost (%s)", p->id, lost, why);
	p->gap_since = 0;
	rx_ask_resync(r, p, "frames lost");
	drain(r, p);
}

static void deliver(struct repl *r, struct peer *p, const uint8_t *buf, size_t len, uint32_t seq)
{
	if ((int32_t)(seq - p->next_seq) < 0) {
		p->c.rx_dup++;
		r->st.rx_dup++;
		return;
	}
	/* Too far ahead to hold: give up on the frames before it (each round
	 * applies at least the frame it stops at, so this ends). */
	int ret = 0;
	while (seq != p->next_seq &&
	       (ret = reorder_put(p->held, p->next_seq, seq, buf, len)) == -ERANGE) {
		uint32_t upto = reorder_count(p->held) ? reorder_lowest(p->held, p->next_seq) : seq;
		give_up(r, p, upto, "gap too wide to hold");
	}
	if (seq != p->next_seq) {
		if (ret == 1) {
			p->c.rx_dup++;
			r->st.rx_dup++;
		}
		if (!p->gap_since) {
			p->gap_since = repl_now(r);
			p->c.gaps++;
		}
		rx_poll(r, p);
		return;
	}
	p->next_seq++;
	apply_frame(r, p, buf, len);
	drain(r, p);
}

/* Ask again for what is missing, or give up on it. */
void rx_poll(struct repl *r, struct peer *p)
{
	uint64_t t = repl_now(r);

	if (!p->gap_since || !p->known)
		return;
	if (t - p->gap_since > r->cfg.gap_timeout_ms) {
		uint32_t upto = reorder_count(p->held) ? reorder_lowest(p->held, p->next_seq)
						      : p->hb.lastseq + 1;
		give_up(r, p, upto, "not repaired in time");
		return;
	}
	if (p->nack_at && t < p->nack_at)
		return;
	uint32_t upto = reorder_count(p->held) ? reorder_highest(p->held) : p->next_seq;
	if (p->hb_valid && (int32_t)(p->hb.lastseq - upto) > 0)
		upto = p->hb.lastseq;
	struct nack_info n = { .target = p->id, .epoch = p->epoch };
	reorder_holes(p->held, p->next_seq, upto, &n);
	if (n.nranges == 0)
		return;
	tx_control(r, p, &n, NULL, NULL, NULL);
	p->nack_at = t + r->cfg.nack_ms;
	p->c.nacks_sent++;
	r->st.tx_nacks++;
}

void rx_reset(struct peer *p)
{
	reorder_clear(p->held);
	p->gap_since = p->nack_at = 0;
	p->hb_valid = false;
	p->bulk_active = false;
	p->mismatch = 0;
	p->resync_asked_at = 0;
}

uint32_t rx_lag(const struct peer *p)
{
	if (!p->hb_valid)
		return 0;
	int32_t lag = (int32_t)(p->hb.lastseq - (p->next_seq - 1));
	return lag > 0 ? (uint32_t)lag : 0;
}

bool rx_in_sync(struct repl *r, const struct peer *p)
{
	struct owner_stats o = table_owner(r->t, p->id);
	return p->alive && p->hb_valid && !p->bulk_active && !p->gap_since &&
	       reorder_count(p->held) == 0 && rx_lag(p) == 0 &&
	       o.flows == p->hb.flows && o.digest == p->hb.digest;
}

/* ---- the entry point -------------------------------------------------------------- */

/* A frame of a protocol major we do not speak (wire.h "Versions"): not
 * decoded, not answered; its sender, if it is the peer the transport says
 * sent it, is marked incompatible (said once per major, shown in status). */
static bool refuse_major(struct repl *r, const uint8_t *buf, size_t len, uint32_t from)
{
	if (len < WIRE_HDR_LEN || wire_get_u32(buf) != WIRE_MAGIC ||
	    (buf[4] >= WIRE_VERSION_MIN && buf[4] <= WIRE_VERSION))
		return false;
	uint32_t node = wire_get_u32(buf + WIRE_OFF_NODE);
	struct peer *p = node == from ? repl_peer(r, node) : NULL;

	r->st.rx_incompatible++;
	if (!p) {
		log_limited(LOG_LVL_WARN, "dropped a frame of protocol %u claiming node %u", buf[4],
			    node);
		return true;
	}
	p->c.rx_incompatible++;
	p->incompatible_at = repl_now(r);
	if (p->incompatible != buf[4]) {
		p->incompatible = buf[4];
		log_err("peer %u speaks protocol %u, we speak %u to %u: refused, nothing is "
			"synced with it (docs/UPGRADING.md)", p->id, buf[4], WIRE_VERSION_MIN,
			WIRE_VERSION);
	}
	return true;
}

void repl_receive(struct repl *r, const uint8_t *buf, size_t len, uint32_t from)
{
	struct frame_hdr h;
	struct cursor c;
	struct rec rec;

	r->st.rx_frames++;
	if (refuse_major(r, buf, len, from))
		return;
	if (codec_frame_open(buf, len, &h, &c) < 0) {
		r->st.rx_malformed++;
		log_limited(LOG_LVL_WARN, "dropped a malformed frame (%zu bytes)", len);
		return;
	}
	if (h.node == r->cfg.node_id) {
		r->st.rx_self++;
		return;
	}
	struct peer *p = repl_peer(r, h.node);
	if (!p) {
		r->st.rx_unknown_node++;
		log_limited(LOG_LVL_WARN, "dropped a frame from unknown node %u", h.node);
		return;
	}
	if (from != h.node) {
		r->st.rx_bad_source++;
		if (from)
			log_limited(LOG_LVL_WARN, "dropped a frame claiming node %u that came "
				    "from node %u", h.node, from);
		else
			log_limited(LOG_LVL_WARN, "dropped a frame claiming node %u that came "
				    "from no configured node", h.node);
		return;
	}
	/* Decode every record before acting on any, and before the frame may
	 * move this peer's epoch or sequence: a frame is taken whole or not
	 * (applying it later decodes again; a check costs less than a record
	 * half applied). */
	int ret;
	while ((ret = codec_next(&c, &rec)) > 0) {
		if ((rec.flags & REC_F_MANDATORY) &&
		    (rec.type < REC_FLOW_UPSERT || rec.type > REC_LAST)) {
			ret = -EINVAL;          /* a record we must understand, and do not */
			break;
		}
		if ((ret = codec_check_rec(&rec)) < 0)
			break;
	}
	if (ret < 0) {
		r->st.rx_malformed++;
		p->c.rx_malformed++;
		log_limited(LOG_LVL_WARN, "dropped a malformed frame from node %u", h.node);
		return;
	}

	bool unseq = h.flags & WIRE_F_UNSEQ;
	if (!p->known || p->epoch != h.epoch) {
		/* A life of its we saw end: a replay. */
		if (p->known && epoch_replaced(&p->ep, h.epoch)) {
			r->st.rx_old_epoch++;
			p->c.rx_old_epoch++;
			log_limited(LOG_LVL_WARN, "peer %u: dropped a frame of its past epoch %08x "
				    "(a replay)", p->id, h.epoch);
			return;
		}
		/* A new one: taken only once it has answered our challenge. */
		if (!confirms(r, p, &h, buf, len)) {
			r->st.rx_unconfirmed++;
			p->c.rx_unconfirmed++;
			answer_unconfirmed(r, p, &h, buf, len);
			return;
		}
		r->st.epochs_confirmed++;
		log_info("peer %u: %s (epoch %08x)", p->id,
			 p->known ? "restarted" : "first contact", h.epoch);
		if (p->known)
			epoch_retire(&p->ep, p->epoch);
		else
			epoch_replay_reset(&p->ep);
		rx_reset(p);
		/* A peer we knew restarted: its sequence began again at 1, and
		 * any frame we missed of the new epoch is in its ring.  One we
		 * never knew sends us all its flows when we ask (below): start
		 * here. */
		if (p->known)
			p->next_seq = 1;
		else
			p->next_seq = unseq ? h.seq + 1 : h.seq;
		p->known = true;
		p->epoch = h.epoch;
		p->bulk_done = false;
		/* Its flows, please: asked in our data sequence, which it takes
		 * once it trusts our epoch, and it asks us the same way.  (A bulk
		 * sent the moment we trusted its epoch could reach it before it
		 * trusted ours, be dropped, and lie before the sequence number it
		 * then starts from: it was never repaired.) */
		rx_ask_resync(r, p, "new epoch");
	}
	if (epoch_replayed(&p->ep, h.pn)) {
		r->st.rx_replay++;
		p->c.rx_replay++;
		log_limited(LOG_LVL_WARN, "peer %u: dropped a replayed frame (packet %llu)",
			    p->id, (unsigned long long)h.pn);
		return;
	}
	if (!p->alive)
		log_info("peer %u is alive", p->id);
	p->alive = true;
	p->last_heard = repl_now(r);
	p->c.rx_frames++;
	p->c.rx_bytes += len;

	if (unseq) {
		r->rx_pn = h.pn;        /* heartbeats: a late one must not undo a newer */
		apply_frame(r, p, buf, len);
		r->rx_pn = 0;
	} else {
		deliver(r, p, buf, len, h.seq);
	}
}
