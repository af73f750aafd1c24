/* repl_filter.c — what is synced (repl.h, repl_config "Filters").
 *
 * Three kinds of filter, applied to what the local kernel says:
 *  - never: a protocol not listed, an ignored address, a zone not synced —
 *    such a flow is not looked at again (ev_filtered);
 *  - not yet: a TCP flow not in one of tcp_states, any flow younger than
 *    min_age_ms.  It waits here, unsent, in a table of its own (`wait`),
 *    kept up to date by its events; the first moment it is both old
 *    enough (and the kernel, asked then, still has it: still_there) and
 *    in a listed state it joins the engine's table as a new flow of ours
 *    and is advertised (filter_synced); so does one whose helper makes an
 *    expectation, at once.  One that ends first costs the sync link
 *    nothing (filter_unsent).  From then on it
 *    is an ordinary flow: every later change and its end are synced,
 *    whatever its state (FIN_WAIT, TIME_WAIT …);
 *  - parts: the mark, labels or secmark (strip) are cut from every flow
 *    we read from the kernel, so they never reach a peer, and from every
 *    flow a peer sends us, so they are never restored here.
 *
 * A flow's age counts from the first event we read of it.  Flows found in
 * the kernel's table at start-up have an unknown age: they count as old.
 * A dump that finds a flow with no event read (an overrun lost it) starts
 * its age then.  A flow waiting here is in no peer's table: if this node
 * dies, it breaks — the trade the operator chose (it keeps short flows,
 * DNS, off the link).  Flows waiting are not counted in NAT block use
 * (natuse.h) nor deferred (a packet of theirs goes at once).
 */
#include "sync/repl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>

#include "sync/repl_int.h"

int filter_init(struct repl *r)
{
	if (!r->cfg.tcp_states && !r->cfg.min_age_ms)
		return 0;
	r->wait = table_new();
	return r->wait ? 0 : -1;
}

void filter_free(struct repl *r)
{
	for (size_t i = r->young_head; i < r->nyoung; i++) {
		struct flow *f = r->young[i];
		if (f->dead)
			table_flow_free(f);     /* (the others go with the table) */
	}
	free(r->young);
	table_free(r->wait);
}

const struct ct *filter_strip(const struct repl *r, const struct ct *ct, struct ct *buf)
{
	uint32_t s = r->cfg.strip;

	if (!(ct->has & s) && !((s & CT_HAS_SECMARK) && ct->secmark))
		return ct;
	*buf = *ct;
	buf->has &= ~s;
	if (s & CT_HAS_MARK)
		buf->mark = 0;
	if (s & CT_HAS_SECMARK)
		buf->secmark = 0;
	if (s & CT_HAS_LABELS)
		memset(buf->labels, 0, sizeof(buf->labels));
	return buf;
}

bool filter_out(const struct repl *r, const struct ct *ct)
{
	if (!r->cfg.proto[ct->l4])
		return true;
	for (unsigned i = 0; i < r->cfg.nignore; i++) {
		const struct repl_net *n = &r->cfg.ignore[i];
		if (ct_has_addr(ct, n->family, &n->addr, n->plen))
			return true;
	}
	if (r->cfg.nzones) {
		bool listed = false;
		for (unsigned i = 0; i < r->cfg.nzones && !listed; i++)
			listed = r->cfg.zones[i] == ct->zone;
		return listed == r->cfg.zones_exclude;
	}
	return false;
}

static bool state_ok(const struct repl *r, const struct ct *ct)
{
	return !r->cfg.tcp_states || ct->l4 != IPPROTO_TCP || !(ct->has & CT_HAS_TCP) ||
	       ct->tcp.state >= 16 || (r->cfg.tcp_states >> ct->tcp.state & 1);
}

/* A waiting flow's birth (ms, modulo 2^32) is kept in peer_expiry, which
 * only our advertised flows use; `pending` says it is old enough. */
static bool old_enough(const struct flow *w)
{
	return w->pending;
}

/* Out of the wait table; freed unless the young queue still points at it. */
static void wait_remove(struct repl *r, struct flow *w)
{
	if (r->dump_mode == DUMP_REFRESH || r->dump_mode == DUMP_FULL)
		keyset_add(&r->gone, w->khash);
	table_remove(r->wait, w);
	if (old_enough(w))
		table_flow_free(w);
	else
		w->dead = 1;            /* filter_poll frees it */
}

/* w may go: old enough, in a listed state.  Into the engine's table. */
static void admit(struct repl *r, struct flow *w)
{
	struct ct c;

	flow_get(w, &c);
	wait_remove(r, w);
	if (table_find(r->t, &c))
		return;                 /* a peer told us of it meanwhile */
	r->st.filter_synced++;
	repl_add_ours(r, &c);
}

static void young_push(struct repl *r, struct flow *w)
{
	if (r->young_head && r->young_head * 2 >= r->nyoung) {
		memmove(r->young, r->young + r->young_head,
			(r->nyoung - r->young_head) * sizeof(*r->young));
		r->nyoung -= r->young_head;
		r->young_head = 0;
	}
	if (r->nyoung == r->young_cap) {
		size_t cap = r->young_cap ? 2 * r->young_cap : 1024;
		struct flow **v = realloc(r->young, cap * sizeof(*v));
		if (!v) {
			w->pending = 1; /* no room to wait: its age is not kept */
			return;
		}
		r->young = v;
		r->young_cap = cap;
	}
	r->young[r->nyoung++] = w;
}

bool filter_hold(struct repl *r, enum ctnl_event ev, const struct ct *ct, bool held)
{
	if (held)
		return false;   /* past the filters already, or a peer's */

	struct flow *w = table_find(r->wait, ct);
	struct ct c;

	if (ev == CTNL_EV_DESTROY) {
		if (w) {
			r->st.filter_unsent++;
			wait_remove(r, w);
		}
		return true;
	}
	if (w) {
		flow_get(w, &c);
		ct_merge(&c, ct);
		table_flow_set(r->wait, w, &c);
		w->bulk_mark = r->dump_gen;
		if (old_enough(w) && state_ok(r, &c))
			admit(r, w);
		return true;
	}
	bool aged = !r->cfg.min_age_ms || (ev == CTNL_EV_DUMP && r->loading);
	if (aged && state_ok(r, ct))
		return false;           /* nothing to wait for */
	c = *ct;
	if (ev == CTNL_EV_NEW || ev == CTNL_EV_DUMP)
		c.has |= (CT_HAS_MARK | CT_HAS_LABELS | CT_HAS_HELPER | CT_HAS_ZONE) &
			 ~r->cfg.strip;
	w = table_add(r->wait, &c, r->cfg.node_id);
	if (!w)
		return false;           /* no memory to wait: synced at once */
	w->bulk_mark = r->dump_gen;
	w->peer_expiry = (uint32_t)repl_now(r);
	w->pending = aged;
	if (!aged)
		young_push(r, w);
	return true;
}

void filter_peer_has(struct repl *r, const struct ct *ct)
{
	struct flow *w = table_find(r->wait, ct);

	if (w)
		wait_remove(r, w);
}

void filter_wanted(struct repl *r, const struct ct *key)
{
	struct flow *w = r->wait ? table_find(r->wait, key) : NULL;
	struct ct c;

	if (w && (flow_get(w, &c), state_ok(r, &c)))
		admit(r, w);
}

/* Old enough, but does the kernel still hold it?  An entry whose timeout
 * ran out stays in the kernel's table, its end unreported, until the
 * kernel's garbage collection passes — measured: 20,000 UDP flows with a
 * 2 s timeout were all still there 20 s later — or a lookup finds it.
 * Our look is such a lookup: an expired entry is reaped and not synced.
 * The one read refreshes our copy of a live one. */
static bool still_there(struct repl *r, struct flow *w, struct ct *c)
{
	struct ct now;

	if (!r->ops.get)
		return true;
	int err = r->ops.get(r->ops.arg, c, &now);
	if (err == -ENOENT) {
		r->st.filter_unsent++;
		wait_remove(r, w);
		return false;
	}
	if (err == 0) {
		ct_merge(c, &now);
		table_flow_set(r->wait, w, c);
	}
	return true;
}

/* Kernel lookups per poll (every 10 ms): each is a synchronous netlink
 * round trip, so a burst of flows coming of age is looked up a slice at a
 * time, heartbeats and leases served in between; beyond 1024 per poll
 * (about 100,000 a second), flows wait a little longer than min_age. */
#define POLL_LOOKUPS 1024

void filter_poll(struct repl *r)
{
	uint32_t now = (uint32_t)repl_now(r);
	unsigned lookups = 0;

	while (r->young_head < r->nyoung && lookups < POLL_LOOKUPS) {
		struct flow *w = r->young[r->young_head];
		if (w->dead) {
			table_flow_free(w);
		} else if (now - w->peer_expiry >= r->cfg.min_age_ms) {
			w->pending = 1;
			struct ct c;
			flow_get(w, &c);
			if (state_ok(r, &c)) {  /* (else it waits for its state) */
				lookups++;
				if (still_there(r, w, &c))
					admit(r, w);
			}
		} else {
			break;
		}
		r->young_head++;
	}
	if (r->young_head == r->nyoung)
		r->young_head = r->nyoung = 0;
}

struct sweep_ctx {
	struct repl *r;
	uint32_t gen;
};

static void sweep_one(void *arg, struct flow *w)
{
	struct sweep_ctx *s = arg;

	if (w->bulk_mark == s->gen)
		return;
	s->r->st.filter_unsent++;
	wait_remove(s->r, w);
}

void filter_sweep(struct repl *r, uint32_t gen)
{
	struct sweep_ctx s = { r, gen };

	if (r->wait)
		table_foreach(r->wait, sweep_one, &s);
}

unsigned filter_waiting(const struct repl *r)
{
	return r->wait ? (unsigned)table_count(r->wait) : 0;
}
