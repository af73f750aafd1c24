/* repl_defer.c — packets held until peers acknowledge their flow (repl.h,
 * "Defer"; wire.h, "Defer"): the waits, the acknowledgements, the hints. */
#include "sync/repl.h"

#include <stdlib.h>
#include <string.h>

#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_conntrack_tcp.h>

#include "sync/repl_int.h"

static uint64_t now_us(struct repl *r)
{
	return r->ops.now_us ? r->ops.now_us(r->ops.arg) : repl_now(r) * 1000;
}

static void release(struct repl *r, uint64_t cookie, uint64_t t0_us)
{
	uint64_t held = now_us(r) - t0_us;

	r->st.defer_hold_us += held;
	if (held > r->st.defer_hold_max_us)
		r->st.defer_hold_max_us = held;
	r->ops.release(r->ops.arg, cookie);
}

/* Let the packet go now: nothing to wait for. */
static void pass(struct repl *r, uint64_t cookie)
{
	r->st.defer_passed++;
	r->ops.release(r->ops.arg, cookie);
}

static struct defer_wait *wait_add(struct repl *r, uint64_t cookie, uint64_t t0)
{
	unsigned max = r->cfg.defer_max ? r->cfg.defer_max : 4096;

	if (!r->dw) {
		r->dw = calloc(max, sizeof(*r->dw));
		if (!r->dw)
			return NULL;
	}
	if (r->ndw >= max)
		return NULL;
	struct defer_wait *w = &r->dw[r->ndw++];
	memset(w, 0, sizeof(*w));
	w->cookie = cookie;
	w->t0_us = t0;
	w->deadline = repl_now(r) + r->cfg.defer_ms;
	r->st.defer_held++;
	return w;
}

static void wait_done(struct repl *r, unsigned i)
{
	r->dw[i] = r->dw[--r->ndw];     /* order does not matter */
}

/* The live peers whose acknowledgement a new flow waits for. */
static uint32_t live_peers(struct repl *r)
{
	uint32_t need = 0;

	for (unsigned i = 0; i < r->cfg.npeers; i++)
		if (r->peer[i].alive && r->peer[i].known)
			need |= 1u << i;
	return need;
}

void repl_defer_new(struct repl *r, const struct ct *ct, uint64_t cookie)
{
	uint64_t t0 = now_us(r);
	uint32_t self = r->cfg.node_id;

	if (!r->cfg.defer_ms || !ct) {
		pass(r, cookie);
		return;
	}
	struct flow *f = table_find(r->t, ct);
	if (f && f->owner != self) {
		/* a peer's flow the kernel no longer had: its owner speaks for
		 * it (and the NEW event may make it ours) */
		pass(r, cookie);
		return;
	}
	/* what the kernel's NEW event will say once the packet is let go:
	 * taken as ours now, as that event would */
	repl_local_change(r, CTNL_EV_NEW, ct);
	f = table_find(r->t, ct);
	uint32_t need = live_peers(r);
	if (!f || f->owner != self || !need) {
		pass(r, cookie);        /* filtered, or nobody to tell */
		return;
	}
	struct defer_wait *w = wait_add(r, cookie, t0);
	if (!w) {
		r->st.defer_overflow++;
		pass(r, cookie);
		return;
	}
	/* its frame goes with the next flush (repl_flush: the packets read
	 * together share frames), which asks every peer to acknowledge */
	w->need = need;
	w->unsent = true;
	r->defer_unsent = true;
}

/* Wait i is over: its packet goes. */
static void let_go(struct repl *r, unsigned i, bool acked)
{
	if (acked)
		r->st.defer_acked++;
	else
		r->st.defer_timeouts++;
	release(r, r->dw[i].cookie, r->dw[i].t0_us);
	wait_done(r, i);
}

/* Has p applied our data frame seq? */
static bool acked_by(const struct peer *p, uint32_t seq)
{
	return p->acked_any && (int32_t)(p->acked_seq - seq) >= 0;
}

/* repl_flush sent what the waits marked unsent wait for, up to r->seq. */
void defer_sent(struct repl *r)
{
	for (unsigned i = 0; i < r->ndw;) {
		struct defer_wait *w = &r->dw[i];
		if (!w->unsent) {
			i++;
			continue;
		}
		w->unsent = false;
		w->seq = r->seq;
		/* acknowledged meanwhile (a transport that delivers at once)? */
		for (unsigned k = 0; k < r->cfg.npeers; k++)
			if (acked_by(&r->peer[k], w->seq))
				w->need &= ~(1u << k);
		if (!w->need) {
			let_go(r, i, true);
			continue;
		}
		i++;
	}
	r->defer_unsent = false;
}

void repl_defer_reply(struct repl *r, const struct ct *ct, uint64_t cookie)
{
	uint64_t t0 = now_us(r);
	struct flow *f = ct && r->cfg.defer_ms ? table_find(r->t, ct) : NULL;

	if (!f || f->owner == r->cfg.node_id || f->owner == OWNER_NONE ||
	    repl_peer_dead(r, f->owner)) {
		pass(r, cookie);        /* ours, or nobody's to tell */
		return;
	}
	struct peer *p = repl_peer(r, f->owner);
	struct defer_wait *w = wait_add(r, cookie, t0);
	if (!w) {
		r->st.defer_overflow++;
		pass(r, cookie);
		return;
	}
	struct wbuf wb;
	codec_frame_start(&wb, r->ctl, r->cfg.frame_size);
	if (codec_put_flow(&wb, REC_HINT, ct) < 0 || codec_put_ackreq(&wb) < 0) {
		wait_done(r, r->ndw - 1);
		pass(r, cookie);
		return;
	}
	r->st.hints_sent++;
	w->hint = true;
	w->owner = p->id;
	w->pn = tx_unseq(r, p, &wb);
}

void defer_ack(struct repl *r, struct peer *p, const struct ack_info *a)
{
	unsigned idx = (unsigned)(p - r->peer);

	r->st.acks_received++;
	if (a->has_seq && (!p->acked_any || (int32_t)(a->seq - p->acked_seq) > 0)) {
		p->acked_any = true;
		p->acked_seq = a->seq;
	}
	for (unsigned i = 0; i < r->ndw;) {
		struct defer_wait *w = &r->dw[i];
		if (w->hint) {
			if (a->has_pn && w->owner == p->id && w->pn == a->pn) {
				let_go(r, i, true);
				continue;
			}
		} else if (!w->unsent && (w->need & (1u << idx)) && acked_by(p, w->seq)) {
			w->need &= ~(1u << idx);
			if (!w->need) {
				let_go(r, i, true);
				continue;
			}
		}
		i++;
	}
}

/* TCP handshake states in the order a connection goes through them. */
static int tcp_rank(uint8_t state)
{
	switch (state) {
	case TCP_CONNTRACK_SYN_SENT:
	case TCP_CONNTRACK_SYN_SENT2:
		return 1;
	case TCP_CONNTRACK_SYN_RECV:
		return 2;
	case TCP_CONNTRACK_ESTABLISHED:
		return 3;
	default:
		return 0;       /* closing and the rest: not a hint's business */
	}
}

#define HINT_STATUS (IPS_SEEN_REPLY | IPS_ASSURED)

void defer_hint(struct repl *r, struct peer *p, const struct ct *ct)
{
	struct flow *f = table_find(r->t, ct);
	struct ct c;
	bool moved = false;

	if (!f || f->owner != r->cfg.node_id) {
		r->st.hints_ignored++;  /* not ours (any more): its owner decides */
		return;
	}
	flow_get(f, &c);
	if ((ct->has & CT_HAS_TCP) && (c.has & CT_HAS_TCP) && tcp_rank(c.tcp.state) &&
	    tcp_rank(ct->tcp.state) > tcp_rank(c.tcp.state)) {
		c.tcp.state = ct->tcp.state;
		moved = true;
	}
	if ((ct->has & CT_HAS_STATUS) && (ct->status & HINT_STATUS & ~c.status)) {
		c.status |= ct->status & HINT_STATUS;
		c.has |= CT_HAS_STATUS;
		moved = true;
	}
	if (!moved) {
		r->st.hints_ignored++;
		return;
	}
	r->st.hints_applied++;
	table_flow_set(r->t, f, &c);
	if (f->in_kernel)
		repl_inject(r, CTNL_OP_UPDATE, f);
	tx_mark_dirty(r, f, REC_FLOW_UPSERT);
	(void)p;
}

unsigned repl_defer_poll(struct repl *r)
{
	uint64_t t = repl_now(r), next = 0;
	uint32_t alive = live_peers(r);

	for (unsigned i = 0; i < r->ndw;) {
		struct defer_wait *w = &r->dw[i];
		/* a peer that died owes nothing */
		bool gone = w->hint ? repl_peer_dead(r, w->owner) : !(w->need &= alive);
		if (gone || t >= w->deadline) {
			let_go(r, i, gone);
			continue;
		}
		if (!next || w->deadline - t < next)
			next = w->deadline - t;
		i++;
	}
	return (unsigned)next;
}

unsigned repl_defer_count(const struct repl *r)
{
	return r->ndw;
}

void repl_defer_release_all(struct repl *r)
{
	while (r->ndw)
		let_go(r, r->ndw - 1, false);
}
