/* repl.c — replication engine (repl.h): set-up, kernel events and inject
 * errors, timers, reporting.  Sending is in repl_tx.c, dumps in
 * repl_dump.c, ownership changes in repl_own.c, receiving in recv.c. */
#include "sync/repl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "util/log.h"
#include "sync/repl_int.h"

struct repl *repl_new(const struct repl_config *cfg, const struct repl_ops *ops)
{
	struct repl *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->cfg = *cfg;
	r->ops = *ops;
	policy_init(&r->pol, cfg->node_id, cfg->primary);
	if (cfg->active_active)
		policy_active_active(&r->pol, cfg->nbuckets, cfg->peer_id, cfg->npeers);
	if (cfg->active_active && cfg->routed)
		policy_routed(&r->pol);
	/* a transport with a membership (CPG) also says whether we are in a
	 * quorate partition, or we count a majority: not quorate until then */
	bool judged = cfg->membership || (cfg->active_active && cfg->quorum_majority);
	if (!judged)
		r->cfg.quorum_majority = false;
	r->quorum = judged ? 0 : -1;
	policy_quorum(&r->pol, !judged);
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
	r->ctl = malloc(fs);
	r->sent = ring_new(r->cfg.resend_bytes);
	if (!r->t || !r->x || !r->buf || !r->rtx || !r->ctl || !r->sent)
		goto fail;
	for (unsigned i = 0; i < cfg->npeers; i++) {
		r->peer[i].id = cfg->peer_id[i];
		r->peer[i].addr = cfg->peer_addr[i];
		r->peer[i].held = reorder_new(REORDER_CAP, REORDER_BYTES);
		if (!r->peer[i].held)
			goto fail;
	}
	if (filter_init(r) < 0)
		goto fail;
	if (cfg->nat.naddr) {
		struct natuse *n = natuse_new(&cfg->nat);
		if (!n)
			goto fail;
		table_set_natuse(r->t, n);
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
	free(r->dw);
	for (unsigned i = 0; i < r->cfg.npeers; i++)
		reorder_free(r->peer[i].held);
	filter_free(r);
	table_free(r->t);
	exps_free(r->x);
	ring_free(r->sent);
	free(r->buf);
	free(r->rtx);
	free(r->ctl);
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

bool repl_peer_dead(struct repl *r, uint32_t id)
{
	struct peer *p = repl_peer(r, id);
	return !p || !p->alive;
}

/* ---- kernel side -------------------------------------------------------- */

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
	table_flow_set(r->t, f, &c);
	tx_mark_dirty(r, f, REC_FLOW_UPSERT);
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
	if (own) {              /* the echo of our own injection */
		r->st.ev_own++;
		return;
	}
	/* A synchronous full dump (start-up, resync) of a large table takes
	 * seconds: keep heartbeating through it, or peers would take us for
	 * dead. */
	if (ev == CTNL_EV_DUMP && r->dump_mode == DUMP_SYNC && (++r->dump_seen & 1023) == 0 &&
	    repl_now(r) - r->last_hb >= r->cfg.heartbeat_ms)
		tx_heartbeat(r);
	if (ev == CTNL_EV_NEW)
		r->st.ev_new++;
	else if (ev == CTNL_EV_UPDATE)
		r->st.ev_update++;
	else if (ev == CTNL_EV_DESTROY)
		r->st.ev_destroy++;
	repl_local_change(r, ev, ct);
}

/* What the local kernel says of a flow, counted already. */
void repl_local_change(struct repl *r, enum ctnl_event ev, const struct ct *ct)
{
	uint32_t self = r->cfg.node_id;
	struct ct stripped;

	ct = filter_strip(r, ct, &stripped);
	if (filter_out(r, ct)) {
		r->st.ev_filtered++;
		return;
	}
	if (ev == CTNL_EV_DUMP) {
		dump_entry(r, ct);
		return;
	}
	struct flow *f = table_find(r->t, ct);
	if (r->wait && filter_hold(r, ev, ct, f != NULL))
		return;

	if (ev == CTNL_EV_DESTROY) {
		if (!f)
			return;
		if (f->owner == self) {
			tx_mark_dirty(r, f, REC_FLOW_DELETE);
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
			full.has |= (CT_HAS_MARK | CT_HAS_LABELS | CT_HAS_HELPER | CT_HAS_ZONE) &
				    ~r->cfg.strip;
		repl_add_ours(r, &full);
		return;
	}
	f->in_kernel = 1;
	if (f->owner != self) {
		struct claim cur = { f->claim, f->owner };
		bool alive = f->owner != OWNER_NONE && !repl_peer_dead(r, f->owner);
		if (!policy_adopt(&r->pol, cur, alive, own_bucket(r, ct))) {
			r->st.ev_foreign++;     /* the owner will tell us */
			return;
		}
		own_adopt(r, f);
	}
	/* ours: a dump under way need not tell us about it (and a peer's
	 * bulk mark is left alone above) */
	f->bulk_mark = r->dump_gen;
	struct ct c;
	flow_get(f, &c);
	ct_merge(&c, ct);
	table_flow_set(r->t, f, &c);
	tx_mark_dirty(r, f, REC_FLOW_UPSERT);
}

void repl_add_ours(struct repl *r, const struct ct *ct)
{
	struct flow *f = table_add(r->t, ct, r->cfg.node_id);

	if (!f)
		return;
	own_claim_new(r, f);
	f->in_kernel = 1;
	f->bulk_mark = r->dump_gen;
	tx_mark_dirty(r, f, REC_FLOW_UPSERT);
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
		tx_mark_dirty(s->r, f, REC_FLOW_DELETE);   /* gone from our kernel */
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
	if (owner == r->cfg.node_id)
		filter_sweep(r, gen);
	expect_sweep(r, owner, gen);
	r->st.swept += s.n;
	return s.n;
}

/* ---- timers and operator actions ---------------------------------------- */

/* Our NAT block filled towards a destination: the kernel drops the next
 * connection there until one ends (natuse.h) — said, never silent. */
static void nat_poll(struct repl *r)
{
	const char *dst = "";
	uint64_t n = natuse_fulls(table_natuse(r->t), r->cfg.node_id, &dst);

	if (n <= r->nat_fulls)
		return;
	r->st.nat_block_full += n - r->nat_fulls;
	r->nat_fulls = n;
	log_limited(LOG_LVL_WARN, "nat: our block of %u ports is full towards %s: the kernel "
		    "drops new connections there until one ends (nat_block_full; raise "
		    "nat.ports or lower nat.blocks on every node)", r->cfg.nat.size, dst);
}

void repl_poll(struct repl *r)
{
	for (unsigned i = 0; i < r->cfg.npeers; i++)
		rx_poll(r, &r->peer[i]);
	own_startup_poll(r);
	own_buckets_poll(r);
	dump_poll(r);
	expect_poll(r);
	nat_poll(r);
	if (r->young_head < r->nyoung)
		filter_poll(r);
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
	for (unsigned i = 0; i < r->cfg.npeers && !stalled && !r->cfg.membership; i++) {
		struct peer *p = &r->peer[i];
		if (p->alive && t - p->last_heard > dead_ms) {
			p->alive = false;
			policy_member_down(&r->pol, p->id);
			log_warnx("peer %u is dead (silent for %llu ms)", p->id,
				  (unsigned long long)(t - p->last_heard));
		}
	}
	if (!stalled)
		quorum_poll(r);
	repl_poll(r);
	tx_heartbeat(r);
}

void repl_quorum(struct repl *r, bool quorate)
{
	quorum_set(r, quorate);
}

void repl_member(struct repl *r, uint32_t node, bool up)
{
	struct peer *p = repl_peer(r, node);

	if (!p)
		return;
	p->member = up;
	if (up) {
		log_info("peer %u joined the membership", node);
		tx_heartbeat(r);        /* it learns our epoch, role and term now */
		/* back after a partition (same epoch, frames missed beyond
		 * what its ring holds, flows changed on both sides): a resync */
		if (p->known) {
			p->resync_asked_at = 0;
			rx_ask_resync(r, p, "rejoined the membership");
		}
		return;
	}
	if (p->alive) {
		log_warnx("peer %u left the membership: dead", node);
		p->dead_at = repl_now(r);
	}
	p->alive = false;
	policy_member_down(&r->pol, node);
}

int repl_resync(struct repl *r)
{
	r->st.resyncs++;
	int err = dump_and_diff(r, true);
	if (err < 0)
		return err;
	struct bulk_info b = { .id = ++r->bulk_id, .target = 0 };
	tx_emit_bulk(r, REC_RESYNC_REQ, &b);
	tx_want_bulk(r, BULK_ALL);
	for (unsigned i = 0; i < r->cfg.npeers; i++)
		r->peer[i].bulk_sent_at = 0;
	repl_flush(r);
	return (int)table_count(r->t);
}

/* ---- reporting ------------------------------------------------------------ */

_Static_assert(sizeof(((struct repl_status *)0)->bucket_owner) ==
	       POLICY_MAX_BUCKETS * sizeof(uint32_t), "a status holds every bucket");

bool repl_in_sync(struct repl *r)
{
	if (r->starting)
		return false;
	/* a dead peer has nothing we could be missing: it does not keep this
	 * node from being in sync (scripts wait for this before promoting,
	 * exactly when the peer is dead) */
	for (unsigned i = 0; i < r->cfg.npeers; i++)
		if ((r->peer[i].alive && !rx_in_sync(r, &r->peer[i])) ||
		    repl_peer_incompatible(r, &r->peer[i]))
			return false;
	return true;
}

/* It spoke a protocol we do not within the dead time: it is there, and
 * nothing of it is held (so never in sync). */
bool repl_peer_incompatible(struct repl *r, const struct peer *p)
{
	return p->incompatible &&
	       repl_now(r) - p->incompatible_at <= (uint64_t)r->cfg.heartbeat_ms * r->cfg.dead_after;
}

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
	struct natuse *nu = table_natuse(r->t);
	for (unsigned i = 0; nu && i <= r->cfg.npeers; i++) {
		uint32_t id = i ? r->peer[i - 1].id : r->cfg.node_id;
		st->nat[st->nnat].id = id;
		natuse_block(nu, id, &st->nat[st->nnat++].b);
	}
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
	st->filter_waiting = filter_waiting(r);
	if (!r->cfg.inject_immediate)
		table_foreach(r->t, count_pending, &st->pending_commit);
	st->npeers = r->cfg.npeers;
	st->in_sync = repl_in_sync(r);
	if (policy_is_active_active(&r->pol)) {
		st->active_active = true;
		st->routed = policy_is_routed(&r->pol);
		st->defer_ms = r->cfg.defer_ms;
		st->defer_waiting = r->ndw;
		st->ready = r->pol.ready;
		st->holds = policy_holds(&r->pol);
		st->nbuckets = r->pol.nbuckets;
		st->bucket_seed = r->cfg.bucket_seed;
		for (unsigned b = 0; b < st->nbuckets; b++)
			st->bucket_owner[b] = policy_bucket_owner(&r->pol, b);
		st->buckets_held = r->nheld;
		st->buckets_waiting = r->nwaiting;
		st->lease_ms = r->cfg.lease_ms;
		st->quorum = r->quorum;
		quorum_status(r, st);
		st->lease_left_ms = !r->cfg.lease_ms || !r->nheld ? -1 :
			r->lease_at + r->cfg.lease_ms > t ? (int64_t)(r->lease_at + r->cfg.lease_ms - t) : 0;
	}
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
		ps->lag_frames = rx_lag(p);
		ps->held_frames = reorder_count(p->held);
		ps->c = p->c;
		ps->in_sync = rx_in_sync(r, p);
		ps->proto_major = p->hb_valid ? p->hb.proto_major : 0;
		ps->proto_minor = p->hb_valid ? p->hb.proto_minor : 0;
		ps->features = p->hb_valid ? p->hb.features : 0;
		snprintf(ps->release, sizeof(ps->release), "%s", p->hb_valid ? p->hb.release : "");
		ps->incompatible = repl_peer_incompatible(r, p) ? p->incompatible : 0;
		ps->fruitless_resyncs = p->fruitless;
		ps->resync_wait_ms = p->resync_not_before > t ?
				     (uint32_t)(p->resync_not_before - t) : 0;
		ps->holds = p->alive && p->hb.holds;
		for (unsigned b = 0; b < st->nbuckets; b++)
			ps->buckets += st->bucket_owner[b] == p->id;
	}
}

bool repl_active_active(const struct repl *r)
{
	return r->cfg.active_active;
}

const struct repl_config *repl_cfg(const struct repl *r)
{
	return &r->cfg;
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
