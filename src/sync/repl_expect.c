/*
 * repl_exp.c — expectations follow the ownership rule of their master:
 * the node whose helper created one advertises it; peers hold it and write
 * it into their kernel once its master is there (masters go first, in the
 * same batch, since flows are flushed before expectations), waiting a
 * bounded time for a master that has not arrived yet.  Deletes propagate;
 * an expectation used or expired locally is not a delete to advertise.
 */
#include <errno.h>
#include <string.h>

#include "util/log.h"
#include "sync/repl_int.h"

#define EXP_WAIT_MS 10000       /* for a missing master, at most */

static bool wanted(struct repl *r, const struct exp *e)
{
	if (!r->cfg.exp_sync)
		return false;
	if (r->cfg.nexp_helpers == 0)
		return true;
	for (unsigned i = 0; i < r->cfg.nexp_helpers; i++)
		if (strcmp(r->cfg.exp_helpers[i], e->helper) == 0)
			return true;
	return false;
}

static void mark(struct repl *r, struct exp_entry *en, enum wire_rec op)
{
	r->exp_dirty = true;
	if (en->dirty == REC_EXP_DELETE)
		return;
	en->dirty = (uint8_t)op;
}

/* Into the kernel if its master is there; else wait (bounded). */
static void try_inject(struct repl *r, struct exp_entry *en)
{
	struct ct key;

	exp_master_key(&en->e, &key);
	struct flow *m = table_find(r->t, &key);
	if (m && m->in_kernel) {
		r->ops.inject_exp(r->ops.arg, CTNL_OP_CREATE, &en->e);
		r->st.exp_injected++;
		en->in_kernel = 1;
		en->pending_since = 0;
		return;
	}
	if (!en->pending_since)
		en->pending_since = repl_now(r);
	r->exp_waiting = true;
}

void repl_kernel_exp_event(struct repl *r, enum ctnl_event ev, const struct exp *e, bool own)
{
	uint32_t self = r->cfg.node_id;

	if (own)
		return;
	if (ev == CTNL_EV_NEW) {
		/* whether or not expectations are synced, the helper may just
		 * have changed its master's sequence adjustment */
		struct ct key;
		exp_master_key(e, &key);
		struct flow *m = table_find(r->t, &key);
		if (!m && r->wait) {
			/* a master the state or age filter holds back: the
			 * helper says it is in use, so it goes now */
			filter_wanted(r, &key);
			m = table_find(r->t, &key);
		}
		if (m && m->owner == self)
			repl_reread(r, m);
	}
	if (!wanted(r, e))
		return;
	r->st.exp_events++;
	struct exp_entry *en = exps_find(r->x, e);
	if (ev == CTNL_EV_DESTROY) {
		if (!en)
			return;
		if (en->owner == self)
			mark(r, en, REC_EXP_DELETE);
		else if (en->owner == OWNER_NONE)
			exps_remove(r->x, en);
		else
			en->in_kernel = 0;      /* used or expired here: not a delete */
		return;
	}
	if (!en) {
		en = exps_add(r->x, e, r->loading ? OWNER_NONE : self);
		if (!en)
			return;
		en->in_kernel = 1;
		en->bulk_mark = r->dump_gen;
		if (!r->loading)
			mark(r, en, REC_EXP_UPSERT);
		return;
	}
	en->in_kernel = 1;
	en->bulk_mark = r->dump_gen;
	if (en->owner != self)
		return;                 /* a copy we hold, or the echo of one */
	en->e = *e;
	mark(r, en, REC_EXP_UPSERT);
}

void repl_exp_error(struct repl *r, enum ctnl_op op, const struct exp *e, int err)
{
	struct exp_entry *en = exps_find(r->x, e);
	char desc[300];

	if (op == CTNL_OP_DELETE && err == -ENOENT)
		return;                 /* used or expired meanwhile */
	if (en && op == CTNL_OP_CREATE && err == -EEXIST) {
		en->in_kernel = 1;      /* the local helper made it already */
		return;
	}
	if (en && op == CTNL_OP_CREATE && err == -ENOENT) {
		en->in_kernel = 0;      /* its master is not (yet) in the kernel */
		if (!en->pending_since)
			en->pending_since = repl_now(r);
		r->exp_waiting = true;
		return;
	}
	r->st.exp_inject_failed++;
	if (en)
		en->in_kernel = 0;
	exp_format(e, desc, sizeof(desc));
	log_limited(LOG_LVL_WARN, "kernel refused %s of %s: %s",
		    op == CTNL_OP_DELETE ? "delete" : "create", desc, strerror(-err));
}

static void flush_one(void *arg, struct exp_entry *en)
{
	struct repl *r = arg;
	uint8_t op = en->dirty;

	if (!op)
		return;
	en->dirty = 0;
	if (en->owner == r->cfg.node_id)
		tx_emit_exp(r, (enum wire_rec)op, &en->e);
	if (op == REC_EXP_DELETE)
		exps_remove(r->x, en);
}

/* Called on every flush (every loop iteration): nothing to do is free. */
void expect_flush(struct repl *r)
{
	if (!r->exp_dirty)
		return;
	r->exp_dirty = false;
	exps_foreach(r->x, flush_one, r);
}

static void bulk_one(void *arg, struct exp_entry *en)
{
	struct repl *r = arg;
	if (en->owner == r->cfg.node_id && en->dirty != REC_EXP_DELETE)
		tx_emit_exp(r, REC_EXP_UPSERT, &en->e);
}

void expect_bulk(struct repl *r)
{
	expect_flush(r);
	exps_foreach(r->x, bulk_one, r);
}

void expect_apply(struct repl *r, struct peer *p, const struct rec *rec)
{
	struct exp e;

	if (codec_get_exp(rec, &e) < 0) {
		r->st.rx_bad_records++;
		log_limited(LOG_LVL_WARN, "peer %u: bad expectation record", p->id);
		return;
	}
	struct exp_entry *en = exps_find(r->x, &e);
	if (rec->type == REC_EXP_DELETE) {
		r->st.exp_rx_deletes++;
		if (!en || en->owner != p->id)
			return;
		if (en->in_kernel)
			r->ops.inject_exp(r->ops.arg, CTNL_OP_DELETE, &en->e);
		exps_remove(r->x, en);
		return;
	}
	r->st.exp_rx_upserts++;
	if (!r->cfg.exp_sync)
		return;
	if (!en) {
		en = exps_add(r->x, &e, p->id);
		if (!en)
			return;
	} else {
		en->e = e;
		en->owner = p->id;
		en->dirty = 0;
	}
	if (p->bulk_active)
		en->bulk_mark = p->bulk_gen;
	if (r->cfg.inject_immediate && !en->in_kernel)
		try_inject(r, en);
	else if (!en->in_kernel)
		en->pending_since = 0;  /* waits for commit */
}

static void poll_one(void *arg, struct exp_entry *en)
{
	struct repl *r = arg;

	if (!en->pending_since || en->in_kernel)
		return;
	r->exp_waiting = true;          /* still (or again) waiting */
	if (repl_now(r) - en->pending_since > EXP_WAIT_MS) {
		char desc[300];
		exp_format(&en->e, desc, sizeof(desc));
		log_limited(LOG_LVL_WARN, "gave up waiting for the master of %s", desc);
		r->st.exp_waiting_dropped++;
		en->pending_since = 0;
		return;
	}
	try_inject(r, en);
}

/* Called every 10 ms: only walks the list while something waits. */
void expect_poll(struct repl *r)
{
	if (!r->cfg.inject_immediate || !r->exp_waiting)
		return;
	r->exp_waiting = false;
	exps_foreach(r->x, poll_one, r);
}

struct sweep_ctx {
	struct repl *r;
	uint32_t owner, gen;
};

static void sweep_one(void *arg, struct exp_entry *en)
{
	struct sweep_ctx *s = arg;
	if (en->owner != s->owner || en->bulk_mark == s->gen)
		return;
	if (en->in_kernel)
		s->r->ops.inject_exp(s->r->ops.arg, CTNL_OP_DELETE, &en->e);
	exps_remove(s->r->x, en);
}

void expect_sweep(struct repl *r, uint32_t owner, uint32_t gen)
{
	struct sweep_ctx s = { r, owner, gen };
	if (owner != r->cfg.node_id)
		exps_foreach(r->x, sweep_one, &s);
}

static void take_one(void *arg, struct exp_entry *en)
{
	struct repl *r = arg;
	if (en->owner == r->cfg.node_id)
		return;
	en->owner = r->cfg.node_id;
	if (!en->in_kernel)
		try_inject(r, en);
	mark(r, en, REC_EXP_UPSERT);
}

void expect_take_all(struct repl *r)
{
	exps_foreach(r->x, take_one, r);
}

static void commit_one(void *arg, struct exp_entry *en)
{
	struct repl *r = arg;
	if (en->owner != r->cfg.node_id && !en->in_kernel)
		try_inject(r, en);
}

void expect_commit(struct repl *r)
{
	exps_foreach(r->x, commit_one, r);
}

static void settle_one(void *arg, struct exp_entry *en)
{
	struct repl *r = arg;
	if (en->owner != OWNER_NONE)
		return;
	en->owner = r->cfg.node_id;
	mark(r, en, REC_EXP_UPSERT);
}

void expect_settle(struct repl *r, bool take)
{
	if (take)
		exps_foreach(r->x, settle_one, r);
}

struct visit_ctx {
	void (*fn)(void *arg, const struct exp *e, uint32_t owner, bool in_kernel);
	void *arg;
};

static void visit(void *arg, struct exp_entry *en)
{
	struct visit_ctx *v = arg;
	v->fn(v->arg, &en->e, en->owner, en->in_kernel);
}

void repl_foreach_exp(struct repl *r, void (*fn)(void *arg, const struct exp *e, uint32_t owner,
						 bool in_kernel), void *arg)
{
	struct visit_ctx v = { fn, arg };
	exps_foreach(r->x, visit, &v);
}
