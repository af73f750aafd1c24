/* repl.c — replication engine (repl.h): the kernel side, sending, timers and
 * operator actions.  Receiving is in recv.c. */
#include "sync/repl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "daemon/log.h"
#include "sync/repl_int.h"

#define BULK_MIN_INTERVAL_MS 500        /* between two bulks of ours */

struct repl *repl_new(const struct repl_config *cfg, const struct repl_ops *ops)
{
	struct repl *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->cfg = *cfg;
	r->ops = *ops;
	policy_init(&r->pol, cfg->node_id, cfg->primary);
	if (!r->cfg.resend_bytes)
		r->cfg.resend_bytes = 16u << 20;
	if (!r->cfg.nack_ms)
		r->cfg.nack_ms = 20;
	if (!r->cfg.gap_timeout_ms)
		r->cfg.gap_timeout_ms = 3000;
	size_t fs = cfg->frame_size < 512 ? 512 : cfg->frame_size;
	if (fs > WIRE_MAX_FRAME)
		fs = WIRE_MAX_FRAME;
	r->cfg.frame_size = fs;
	r->t = table_new();
	r->x = exps_new();
	r->buf = malloc(fs);
	r->rtx = malloc(fs);
	r->sent = ring_new(r->cfg.resend_bytes);
	if (!r->t || !r->x || !r->buf || !r->rtx || !r->sent)
		goto fail;
	for (unsigned i = 0; i < cfg->npeers; i++) {
		r->peer[i].id = cfg->peer_id[i];
		r->peer[i].addr = cfg->peer_addr[i];
		r->peer[i].held = reorder_new(REORDER_CAP, REORDER_BYTES);
		if (!r->peer[i].held)
			goto fail;
	}
	if (getrandom(&r->epoch, sizeof(r->epoch), 0) != sizeof(r->epoch))
		r->epoch = (uint32_t)ops->now_ms(ops->arg);
	if (r->epoch == 0)
		r->epoch = 1;
	/* packet numbers start at random below 2^62 (nonce uniqueness: wire.h) */
	if (getrandom(&r->pn, sizeof(r->pn), 0) != sizeof(r->pn))
		r->pn = repl_now(r) << 20;
	r->pn = (r->pn & ((1ull << 62) - 1)) | 1;
	if (getrandom(r->secret, sizeof(r->secret), 0) != sizeof(r->secret))
		goto fail;
	codec_frame_start(&r->w, r->buf, fs);
	return r;
fail:
	repl_free(r);
	return NULL;
}

void repl_free(struct repl *r)
{
	if (!r)
		return;
	keyset_clear(&r->gone);
	for (size_t i = 0; i < r->ndirty; i++) {
		struct flow *f = r->dirty[i];
		f->dirty = 0;
		if (f->dead)
			table_flow_free(f);
	}
	free(r->dirty);
	for (unsigned i = 0; i < r->cfg.npeers; i++)
		reorder_free(r->peer[i].held);
	table_free(r->t);
	exps_free(r->x);
	ring_free(r->sent);
	free(r->buf);
	free(r->rtx);
	free(r);
}

uint64_t repl_now(struct repl *r)
{
	return r->ops.now_ms(r->ops.arg);
}

struct peer *repl_peer(struct repl *r, uint32_t id)
{
	for (unsigned i = 0; i < r->cfg.npeers; i++)
		if (r->peer[i].id == id)
			return &r->peer[i];
	return NULL;
}

static bool peer_dead(struct repl *r, uint32_t id)
{
	struct peer *p = repl_peer(r, id);
	return !p || !p->alive;
}

/* ---- sending ------------------------------------------------------------ */

static void frame_send(struct repl *r, bool unseq)
{
	if (!unseq && r->w.nrec == 0)
		return;
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
	if ((only ? r->ops.send_to(r->ops.arg, &only->addr, r->buf, len)
		  : r->ops.send(r->ops.arg, r->buf, len)) < 0)
		r->st.tx_errors++;
	for (unsigned i = 0; i < r->cfg.npeers; i++)
		if (!only || &r->peer[i] == only)
			r->peer[i].c.tx_frames++;
	r->st.tx_frames++;
	r->st.tx_records += r->w.nrec;
	r->st.tx_bytes += len;
	codec_frame_start(&r->w, r->buf, r->cfg.frame_size);
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
	r->ops.send_to(r->ops.arg, &p->addr, buf, len);
	((struct peer *)p)->c.tx_frames++;
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

static void mark_dirty(struct repl *r, struct flow *f, enum wire_rec op)
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
	r->targeted[r->ntargeted++ % TARGETED_BULKS] = (typeof(r->targeted[0])){ first, last, only->id };
	for (unsigned i = 0; i < r->cfg.npeers; i++)
		if (&r->peer[i] != only)
			repl_send_control(r, &r->peer[i], NULL, &n, NULL, NULL);
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
	repl_emit_bulk(r, REC_BULK_BEGIN, &bi);
	table_foreach(r->t, bulk_one, &b);
	exp_bulk(r);                    /* after every master */
	bi.count = b.count;
	repl_emit_bulk(r, REC_BULK_END, &bi);
	frame_send(r, false);
	r->tx_only = NULL;
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
	r->ops.inject_flush(r->ops.arg);
}

unsigned repl_flush_lazy(struct repl *r)
{
	uint64_t age = r->ndirty ? repl_now(r) - r->dirty_since : 0;

	if (!r->ndirty || r->ndirty >= REPL_HOLD_RECORDS || age >= REPL_HOLD_MS || r->bulk_to ||
	    r->exp_dirty) {
		repl_flush(r);
		return 0;
	}
	/* the rest may go now: only the few dirty flows wait */
	frame_send(r, false);
	r->ops.inject_flush(r->ops.arg);
	return (unsigned)(REPL_HOLD_MS - age);
}

/* ---- kernel side -------------------------------------------------------- */

static bool filtered(struct repl *r, const struct ct *ct)
{
	if (!r->cfg.proto[ct->l4])
		return true;
	for (unsigned i = 0; i < r->cfg.nignore; i++) {
		const struct repl_net *n = &r->cfg.ignore[i];
		if (ct_has_addr(ct, n->family, &n->addr, n->plen))
			return true;
	}
	return false;
}

void repl_drop(struct repl *r, struct flow *f)
{
	if (r->dump_mode == DUMP_REFRESH || r->dump_mode == DUMP_FULL)
		keyset_add(&r->gone, f->khash);
	table_remove(r->t, f);
	if (f->dirty)
		f->dead = 1;            /* flush_dirty frees it */
	else
		table_flow_free(f);
}

/* Retries after a kernel error, at most one of each kind per injection. */
#define RETRY_UPDATE 1          /* a create said EEXIST: we sent an update */
#define RETRY_CREATE 2          /* an update said ENOENT: we sent a create */

void repl_inject(struct repl *r, enum ctnl_op op, struct flow *f)
{
	struct ct c;
	flow_get(f, &c);
	r->ops.inject(r->ops.arg, op, &c);
	f->in_kernel = op != CTNL_OP_DELETE;
	f->pending = 0;
	f->retry = 0;
}

/* Read a local flow again and advertise it if the kernel changed it without
 * an event.  A NAT helper that rewrites a command (FTP PORT through SNAT)
 * changes the master's sequence adjustment, and the kernel reports no event
 * for that; the expectation it creates at the same time is our cue. */
void repl_reread(struct repl *r, struct flow *f)
{
	struct ct now, c;

	flow_get(f, &c);
	if (!r->ops.get || r->ops.get(r->ops.arg, &c, &now) < 0)
		return;
	if (memcmp(now.seqadj, c.seqadj, sizeof(now.seqadj)) == 0 && now.status == c.status)
		return;
	ct_merge(&c, &now);
	flow_set(f, &c);
	mark_dirty(r, f, REC_FLOW_UPSERT);
}

/* A flow becomes ours: a new one at our term, one taken over at a claim
 * newer than its owner's (policy_take). */
static void claim_new(struct repl *r, struct flow *f)
{
	f->claim = policy_term(&r->pol);
}

static void take(struct repl *r, struct flow *f)
{
	f->claim = policy_take(&r->pol, f->claim);
	table_set_owner(r->t, f, r->cfg.node_id);
}

void repl_readvertise(struct repl *r, struct flow *f)
{
	mark_dirty(r, f, REC_FLOW_UPSERT);
}

static void adopt(struct repl *r, struct flow *f)
{
	take(r, f);
	r->st.adopted++;
}

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
		mark_dirty(r, f, REC_FLOW_REFRESH);
		r->st.refreshed++;
	}
}

static void heartbeat_send(struct repl *r);

/* An entry of a kernel dump. */
static void dump_entry(struct repl *r, const struct ct *ct)
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
		struct ct full = *ct;
		full.has |= CT_HAS_MARK | CT_HAS_LABELS | CT_HAS_HELPER | CT_HAS_ZONE;
		/* What the kernel holds when we start may be ours or a copy of a
		 * peer's: it stays without owner until the peers' bulks tell. */
		f = table_add(r->t, &full, r->loading ? OWNER_NONE : self);
		if (!f)
			return;
		f->in_kernel = 1;
		f->bulk_mark = r->dump_gen;
		if (!r->loading) {
			claim_new(r, f);
			r->st.dump_found++;     /* its NEW event was lost */
			mark_dirty(r, f, REC_FLOW_UPSERT);
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
		flow_set(f, &c);
		mark_dirty(r, f, REC_FLOW_UPSERT);
		return;
	}
	refresh_one(r, f, ct);
}

void repl_prefetch(struct repl *r, const struct ct *const *cts, unsigned n)
{
	uint64_t h[64];

	if (n > 64)
		n = 64;
	for (unsigned i = 0; i < n; i++)
		h[i] = ct_key_hash(cts[i]);
	table_prefetch(r->t, h, n);
}

void repl_kernel_event(struct repl *r, enum ctnl_event ev, const struct ct *ct, bool own)
{
	uint32_t self = r->cfg.node_id;

	if (own) {              /* the echo of our own injection */
		r->st.ev_own++;
		return;
	}
	/* A synchronous full dump (start-up, resync) of a large table takes
	 * seconds: keep heartbeating through it, or peers would take us for
	 * dead. */
	if (ev == CTNL_EV_DUMP && r->dump_mode == DUMP_SYNC && (++r->dump_seen & 1023) == 0 &&
	    repl_now(r) - r->last_hb >= r->cfg.heartbeat_ms)
		heartbeat_send(r);
	if (ev == CTNL_EV_NEW)
		r->st.ev_new++;
	else if (ev == CTNL_EV_UPDATE)
		r->st.ev_update++;
	else if (ev == CTNL_EV_DESTROY)
		r->st.ev_destroy++;
	if (filtered(r, ct)) {
		r->st.ev_filtered++;
		return;
	}
	if (ev == CTNL_EV_DUMP) {
		dump_entry(r, ct);
		return;
	}
	struct flow *f = table_find(r->t, ct);

	if (ev == CTNL_EV_DESTROY) {
		if (!f)
			return;
		if (f->owner == self) {
			mark_dirty(r, f, REC_FLOW_DELETE);
			repl_drop(r, f);
		} else if (f->owner == OWNER_NONE) {
			repl_drop(r, f);        /* nobody will speak for it again */
		} else {
			f->in_kernel = 0;       /* a peer's, expired here: not a delete */
		}
		return;
	}
	if (!f) {
		struct ct full = *ct;
		if (ev == CTNL_EV_NEW)
			full.has |= CT_HAS_MARK | CT_HAS_LABELS | CT_HAS_HELPER | CT_HAS_ZONE;
		f = table_add(r->t, &full, self);
		if (!f)
			return;
		claim_new(r, f);
		f->in_kernel = 1;
		f->bulk_mark = r->dump_gen;
		mark_dirty(r, f, REC_FLOW_UPSERT);
		return;
	}
	f->in_kernel = 1;
	if (f->owner != self) {
		struct claim cur = { f->claim, f->owner };
		bool alive = f->owner != OWNER_NONE && !peer_dead(r, f->owner);
		if (!policy_adopt(&r->pol, cur, alive)) {
			r->st.ev_foreign++;     /* the owner will tell us */
			return;
		}
		adopt(r, f);
	}
	/* ours: a dump under way need not tell us about it (and a peer's
	 * bulk mark is left alone above) */
	f->bulk_mark = r->dump_gen;
	struct ct c;
	flow_get(f, &c);
	ct_merge(&c, ct);
	flow_set(f, &c);
	mark_dirty(r, f, REC_FLOW_UPSERT);
}

void repl_inject_error(struct repl *r, enum ctnl_op op, const struct ct *ct, int err)
{
	struct flow *f = table_find(r->t, ct);
	char desc[256];
	struct ct c;

	if (op == CTNL_OP_DELETE && err == -ENOENT)
		return;                 /* already gone: fine */
	if (f && op == CTNL_OP_CREATE && err == -EEXIST && !(f->retry & RETRY_UPDATE)) {
		/* Either the flow is already there (update it), or its NAT
		 * mapping is taken by another flow (the update will say ENOENT). */
		f->retry |= RETRY_UPDATE;
		f->in_kernel = 1;
		r->st.inject_retries++;
		flow_get(f, &c);
		r->ops.inject(r->ops.arg, CTNL_OP_UPDATE, &c);
		return;
	}
	if (f && op == CTNL_OP_UPDATE && err == -ENOENT) {
		f->in_kernel = 0;
		if (f->retry & RETRY_UPDATE) {
			/* the create found a clash, yet no flow has this original
			 * tuple: the reply tuple, i.e. the NAT mapping, is taken */
			f->retry = 0;
			r->st.nat_clashes++;
			flow_get(f, &c);
			ct_format(&c, desc, sizeof(desc));
			log_limited(LOG_LVL_WARN, "NAT mapping clash, not injected: %s", desc);
			return;
		}
		if (!(f->retry & RETRY_CREATE)) {
			/* the entry we meant to update expired meanwhile */
			f->retry |= RETRY_CREATE;
			f->in_kernel = 1;
			r->st.inject_retries++;
			flow_get(f, &c);
			r->ops.inject(r->ops.arg, CTNL_OP_CREATE, &c);
			return;
		}
	}
	r->st.inject_failed++;
	if (f) {
		f->in_kernel = 0;
		f->retry = 0;
	}
	ct_format(ct, desc, sizeof(desc));
	log_limited(LOG_LVL_WARN, "kernel refused %s of %s: %s",
		    op == CTNL_OP_CREATE ? "create" : op == CTNL_OP_UPDATE ? "update" : "delete",
		    desc, strerror(-err));
}

struct sweep_ctx {
	struct repl *r;
	uint32_t owner, gen;
	unsigned n;
};

static void sweep_one(void *arg, struct flow *f)
{
	struct sweep_ctx *s = arg;
	if (f->owner != s->owner || f->bulk_mark == s->gen)
		return;
	if (s->owner == s->r->cfg.node_id)
		mark_dirty(s->r, f, REC_FLOW_DELETE);   /* gone from our kernel */
	else if (f->in_kernel)
		repl_inject(s->r, CTNL_OP_DELETE, f);
	repl_drop(s->r, f);
	s->n++;
}

/* Drop the flows of `owner` not marked with `gen`: ours are advertised as
 * deleted, a peer's are deleted from our kernel too. */
unsigned repl_sweep(struct repl *r, uint32_t owner, uint32_t gen)
{
	struct sweep_ctx s = { r, owner, gen, 0 };
	table_foreach(r->t, sweep_one, &s);
	exp_sweep(r, owner, gen);
	r->st.swept += s.n;
	return s.n;
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
static int dump_and_diff(struct repl *r, bool sweep_local)
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
static void resume_new_events(struct repl *r)
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

static void dump_poll(struct repl *r)
{
	uint64_t t = repl_now(r);

	resume_new_events(r);
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
	claim_new(r, f);
	if (r->bulk_to != BULK_ALL)     /* else the bulk carries it to everyone */
		mark_dirty(r, f, REC_FLOW_UPSERT);
	s->owned++;
}

static void startup_poll(struct repl *r)
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

/* ---- timers and operator actions ---------------------------------------- */

void repl_poll(struct repl *r)
{
	for (unsigned i = 0; i < r->cfg.npeers; i++)
		recv_poll(r, &r->peer[i]);
	startup_poll(r);
	dump_poll(r);
	exp_poll(r);
}

/* Data first, so the heartbeat's lastseq covers it. */
static void heartbeat_send(struct repl *r)
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
	codec_put_heartbeat(&r->w, &hb);
	frame_send(r, true);
	r->last_hb = repl_now(r);
}

void repl_tick(struct repl *r)
{
	uint64_t t = repl_now(r);
	uint64_t dead_ms = (uint64_t)r->cfg.heartbeat_ms * r->cfg.dead_after;
	/* If we ourselves were not listening for a while (a long synchronous
	 * dump), the silence we measure is ours: judge the peers next time,
	 * once their frames have been read. */
	bool stalled = r->last_tick && t - r->last_tick > dead_ms / 2;

	r->last_tick = t;
	for (unsigned i = 0; i < r->cfg.npeers && !stalled; i++) {
		struct peer *p = &r->peer[i];
		if (p->alive && t - p->last_heard > dead_ms) {
			p->alive = false;
			policy_member_down(&r->pol, p->id);
			log_warnx("peer %u is dead (silent for %llu ms)", p->id,
				  (unsigned long long)(t - p->last_heard));
		}
	}
	repl_poll(r);
	heartbeat_send(r);
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
			claim_new(r, f);
			mark_dirty(r, f, REC_FLOW_UPSERT);
		}
		return;
	}
	take(r, f);
	f->bulk_mark = r->dump_gen;     /* a dump under way must not sweep it */
	/* With inject = on-promote the kernel may hold an older state of the
	 * flow (from when it was ours): the owner's latest one replaces it. */
	if (!f->in_kernel || f->pending)
		repl_inject(r, f->in_kernel ? CTNL_OP_UPDATE : CTNL_OP_CREATE, f);
	mark_dirty(r, f, REC_FLOW_UPSERT);
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
	heartbeat_send(r);              /* the new term before the claims made at it */
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
	heartbeat_send(r);
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
		resume_new_events(r);   /* retried by repl_poll if it fails */
	}
	r->st.committed += (uint64_t)o.n;
	log_info("committed %d flows to the kernel%s", o.n,
		 quiet ? " (NEW events paused meanwhile; the table is read again)" : "");
	return o.n;
}

int repl_resync(struct repl *r)
{
	r->st.resyncs++;
	int err = dump_and_diff(r, true);
	if (err < 0)
		return err;
	struct bulk_info b = { .id = ++r->bulk_id, .target = 0 };
	repl_emit_bulk(r, REC_RESYNC_REQ, &b);
	repl_want_bulk(r, BULK_ALL);
	for (unsigned i = 0; i < r->cfg.npeers; i++)
		r->peer[i].bulk_sent_at = 0;
	repl_flush(r);
	return (int)table_count(r->t);
}

/* ---- reporting ------------------------------------------------------------ */

static void count_pending(void *arg, struct flow *f)
{
	uint32_t *n = arg;
	if (f->pending)
		(*n)++;
}

void repl_status(const struct repl *rc, struct repl_status *st)
{
	struct repl *r = (struct repl *)rc;
	uint64_t t = repl_now(r);

	memset(st, 0, sizeof(*st));
	st->node_id = r->cfg.node_id;
	st->epoch = r->epoch;
	st->primary = policy_primary(&r->pol);
	st->term = policy_term(&r->pol);
	uint32_t rightful = policy_rightful(&r->pol);
	if (st->primary && rightful != r->cfg.node_id)
		st->superseded_by = rightful;
	st->immediate = r->cfg.inject_immediate;
	st->flows_local = table_owner(r->t, r->cfg.node_id).flows;
	st->flows_total = (uint32_t)table_count(r->t);
	st->orphans = table_owner(r->t, OWNER_NONE).flows;
	st->exp_local = exps_count(r->x, r->cfg.node_id);
	st->exp_total = exps_total(r->x);
	st->starting = r->starting;
	if (!r->cfg.inject_immediate)
		table_foreach(r->t, count_pending, &st->pending_commit);
	st->npeers = r->cfg.npeers;
	st->in_sync = !r->starting;
	for (unsigned i = 0; i < r->cfg.npeers; i++) {
		const struct peer *p = &r->peer[i];
		struct repl_peer_status *ps = &st->peer[i];
		ps->id = p->id;
		ps->addr = p->addr;
		ps->alive = p->alive;
		ps->known = p->known;
		ps->last_heard_ms = p->known ? (int64_t)(t - p->last_heard) : -1;
		ps->epoch = p->epoch;
		ps->role = p->hb.role;
		ps->term = p->hb.term;
		ps->flows_held = table_owner(r->t, p->id).flows;
		ps->flows_advertised = p->hb.flows;
		ps->lost_frames = p->c.lost;
		ps->lag_frames = recv_lag(p);
		ps->held_frames = reorder_count(p->held);
		ps->c = p->c;
		ps->in_sync = recv_in_sync(r, p);
		/* a dead peer has nothing we could be missing: it does not keep
		 * this node from being in sync (scripts wait for this before
		 * promoting, exactly when the peer is dead) */
		if (!ps->in_sync && p->alive)
			st->in_sync = false;
	}
}

const struct repl_stats *repl_stats(const struct repl *r)
{
	return &r->st;
}

struct visit_ctx {
	void (*fn)(void *arg, const struct flow *f);
	void *arg;
};

static void visit(void *arg, struct flow *f)
{
	struct visit_ctx *v = arg;
	v->fn(v->arg, f);
}

void repl_foreach(struct repl *r, void (*fn)(void *arg, const struct flow *f), void *arg)
{
	struct visit_ctx v = { fn, arg };
	table_foreach(r->t, visit, &v);
}
