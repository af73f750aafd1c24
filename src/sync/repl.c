/* repl.c — replication engine (repl.h). */
#include "sync/repl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "daemon/log.h"
#include "sync/codec.h"

struct peer {
	uint32_t id;
	struct sockaddr_storage addr;
	bool known, alive, hb_valid;
	uint32_t epoch, next_seq;
	uint64_t last_heard;
	struct hb_info hb;
	uint64_t lost;
	bool bulk_active, bulk_clean;
	uint32_t bulk_gen;
};

struct repl {
	struct repl_config cfg;
	struct repl_ops ops;
	struct table *t;
	struct repl_stats st;
	uint32_t epoch, seq;            /* seq: last data frame sent */
	uint32_t bulk_id, gen;
	bool primary;
	struct peer peer[REPL_MAX_PEERS];
	/* dirty list: flows whose latest state is to be advertised */
	struct flow *dhead, **dtail;
	/* the frame being filled */
	struct wbuf w;
	uint8_t *buf;
	bool want_bulk;                 /* a peer needs all our flows */
	bool loading;                   /* the initial dump is being read */
	uint32_t dump_gen;
};

struct repl *repl_new(const struct repl_config *cfg, const struct repl_ops *ops)
{
	struct repl *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->cfg = *cfg;
	r->ops = *ops;
	r->primary = cfg->primary;
	r->t = table_new();
	size_t fs = cfg->frame_size < 512 ? 512 : cfg->frame_size;
	if (fs > WIRE_MAX_FRAME)
		fs = WIRE_MAX_FRAME;
	r->cfg.frame_size = fs;
	r->buf = malloc(fs);
	if (!r->t || !r->buf) {
		repl_free(r);
		return NULL;
	}
	if (getrandom(&r->epoch, sizeof(r->epoch), 0) != sizeof(r->epoch))
		r->epoch = (uint32_t)ops->now_ms(ops->arg);
	if (r->epoch == 0)
		r->epoch = 1;
	r->seq = 0;
	for (unsigned i = 0; i < cfg->npeers; i++) {
		r->peer[i].id = cfg->peer_id[i];
		r->peer[i].addr = cfg->peer_addr[i];
	}
	r->dtail = &r->dhead;
	codec_frame_start(&r->w, r->buf, fs);
	return r;
}

void repl_free(struct repl *r)
{
	if (!r)
		return;
	struct flow *f = r->dhead, *n;
	for (; f; f = n) {
		n = f->dnext;
		f->dirty = 0;
		if (f->dead)
			table_flow_free(f);
	}
	table_free(r->t);
	free(r->buf);
	free(r);
}

static uint64_t now(struct repl *r)
{
	return r->ops.now_ms(r->ops.arg);
}

static struct peer *peer_by_id(struct repl *r, uint32_t id)
{
	for (unsigned i = 0; i < r->cfg.npeers; i++)
		if (r->peer[i].id == id)
			return &r->peer[i];
	return NULL;
}

static bool peer_dead(struct repl *r, uint32_t id)
{
	struct peer *p = peer_by_id(r, id);
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
	};
	size_t len = codec_frame_finish(&r->w, &h);
	if (!unseq)
		r->seq++;
	if (r->ops.send(r->ops.arg, r->buf, len) < 0)
		r->st.tx_errors++;
	r->st.tx_frames++;
	r->st.tx_records += r->w.nrec;
	r->st.tx_bytes += len;
	codec_frame_start(&r->w, r->buf, r->cfg.frame_size);
}

static void emit_flow(struct repl *r, enum wire_rec type, const struct ct *ct)
{
	if (codec_put_flow(&r->w, type, ct) == -ENOSPC) {
		frame_send(r, false);
		codec_put_flow(&r->w, type, ct);
	}
}

static void emit_bulk(struct repl *r, enum wire_rec type, const struct bulk_info *b)
{
	if (codec_put_bulk(&r->w, type, b) == -ENOSPC) {
		frame_send(r, false);
		codec_put_bulk(&r->w, type, b);
	}
}

static void mark_dirty(struct repl *r, struct flow *f, enum wire_rec op)
{
	if (!f->dirty) {
		f->dnext = NULL;
		*r->dtail = f;
		r->dtail = &f->dnext;
	}
	f->dirty = (uint8_t)op;
}

static void flush_dirty(struct repl *r)
{
	struct flow *f = r->dhead, *n;

	r->dhead = NULL;
	r->dtail = &r->dhead;
	for (; f; f = n) {
		n = f->dnext;
		uint8_t op = f->dirty;
		f->dirty = 0;
		if (f->owner == r->cfg.node_id) {
			if (f->dead)
				op = REC_FLOW_DELETE;
			emit_flow(r, (enum wire_rec)op, &f->ct);
		}
		if (f->dead)
			table_flow_free(f);
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
		emit_flow(b->r, REC_FLOW_UPSERT, &f->ct);
		b->count++;
	}
}

/* Every flow we own, between BULK_BEGIN and BULK_END, so that receivers can
 * drop what we no longer have (mark and sweep). */
static void send_bulk(struct repl *r)
{
	struct bulk_ctx b = { r, 0 };
	struct bulk_info bi = { .id = ++r->bulk_id };

	flush_dirty(r);
	emit_bulk(r, REC_BULK_BEGIN, &bi);
	table_foreach(r->t, bulk_one, &b);
	bi.count = b.count;
	emit_bulk(r, REC_BULK_END, &bi);
	frame_send(r, false);
	r->st.tx_bulks++;
	log_info("sent bulk %u: %u flows", bi.id, b.count);
}

void repl_flush(struct repl *r)
{
	if (r->want_bulk) {
		r->want_bulk = false;
		send_bulk(r);
	}
	if (r->dhead)
		flush_dirty(r);
	r->ops.inject_flush(r->ops.arg);
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

static void flow_drop(struct repl *r, struct flow *f)
{
	table_remove(r->t, f);
	if (f->dirty)
		f->dead = 1;            /* flush_dirty frees it */
	else
		table_flow_free(f);
}

/* Retries after a kernel error, at most one of each kind per injection. */
#define RETRY_UPDATE 1          /* a create said EEXIST: we sent an update */
#define RETRY_CREATE 2          /* an update said ENOENT: we sent a create */

static void inject(struct repl *r, enum ctnl_op op, struct flow *f)
{
	r->ops.inject(r->ops.arg, op, &f->ct);
	f->in_kernel = op != CTNL_OP_DELETE;
	f->pending = 0;
	f->retry = 0;
}

static void adopt(struct repl *r, struct flow *f)
{
	table_set_owner(r->t, f, r->cfg.node_id);
	r->st.adopted++;
}

void repl_kernel_event(struct repl *r, enum ctnl_event ev, const struct ct *ct, bool own)
{
	uint32_t self = r->cfg.node_id;

	if (own) {              /* the echo of our own injection */
		r->st.ev_own++;
		return;
	}
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
	struct flow *f = table_find(r->t, ct);

	if (ev == CTNL_EV_DESTROY) {
		if (!f)
			return;
		if (f->owner == self) {
			mark_dirty(r, f, REC_FLOW_DELETE);
			flow_drop(r, f);
		} else {
			f->in_kernel = 0;       /* expired here: not a delete */
		}
		return;
	}
	if (!f) {
		struct ct full = *ct;
		if (ev == CTNL_EV_NEW || ev == CTNL_EV_DUMP)
			full.has |= CT_HAS_MARK | CT_HAS_LABELS | CT_HAS_HELPER | CT_HAS_ZONE;
		f = table_add(r->t, &full, self);
		if (!f)
			return;
		f->in_kernel = 1;
		f->bulk_mark = r->dump_gen;
		/* At start-up, peers get our flows in the bulk they are sent
		 * when we first hear from them: no need to send them twice. */
		if (!r->loading)
			mark_dirty(r, f, REC_FLOW_UPSERT);
		return;
	}
	f->in_kernel = 1;
	f->bulk_mark = r->dump_gen;
	if (f->owner != self) {
		if (ev == CTNL_EV_DUMP) {
			return;         /* our injected copy, seen in a dump */
		}
		if (!r->primary && !peer_dead(r, f->owner)) {
			r->st.ev_foreign++;     /* the owner will tell us */
			return;
		}
		adopt(r, f);
	}
	ct_merge(&f->ct, ct);
	mark_dirty(r, f, REC_FLOW_UPSERT);
}

void repl_inject_error(struct repl *r, enum ctnl_op op, const struct ct *ct, int err)
{
	struct flow *f = table_find(r->t, ct);
	char desc[256];

	if (op == CTNL_OP_DELETE && err == -ENOENT)
		return;                 /* already gone: fine */
	if (f && op == CTNL_OP_CREATE && err == -EEXIST && !(f->retry & RETRY_UPDATE)) {
		/* Either the flow is already there (update it), or its NAT
		 * mapping is taken by another flow (the update will say ENOENT). */
		f->retry |= RETRY_UPDATE;
		f->in_kernel = 1;
		r->st.inject_retries++;
		r->ops.inject(r->ops.arg, CTNL_OP_UPDATE, &f->ct);
		return;
	}
	if (f && op == CTNL_OP_UPDATE && err == -ENOENT) {
		f->in_kernel = 0;
		if (f->retry & RETRY_UPDATE) {
			/* the create found a clash, yet no flow has this original
			 * tuple: the reply tuple, i.e. the NAT mapping, is taken */
			f->retry = 0;
			r->st.nat_clashes++;
			ct_format(&f->ct, desc, sizeof(desc));
			log_limited(LOG_LVL_WARN, "NAT mapping clash, not injected: %s", desc);
			return;
		}
		if (!(f->retry & RETRY_CREATE)) {
			/* the entry we meant to update expired meanwhile */
			f->retry |= RETRY_CREATE;
			f->in_kernel = 1;
			r->st.inject_retries++;
			r->ops.inject(r->ops.arg, CTNL_OP_CREATE, &f->ct);
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
	if (s->owner == s->r->cfg.node_id) {
		mark_dirty(s->r, f, REC_FLOW_DELETE);   /* gone from our kernel */
	} else if (f->in_kernel) {
		inject(s->r, CTNL_OP_DELETE, f);
	}
	flow_drop(s->r, f);
	s->n++;
}

/* Drop the flows of `owner` not marked with `gen`: ours are advertised as
 * deleted, a peer's are deleted from our kernel too. */
static unsigned sweep(struct repl *r, uint32_t owner, uint32_t gen)
{
	struct sweep_ctx s = { r, owner, gen, 0 };
	table_foreach(r->t, sweep_one, &s);
	r->st.swept += s.n;
	return s.n;
}

/* Dump the kernel table; local flows it no longer has are deleted. */
static int dump_and_diff(struct repl *r, bool sweep_local)
{
	r->dump_gen = ++r->gen;
	int err = r->ops.dump(r->ops.arg);
	if (err < 0) {
		log_err("kernel table dump failed: %s", strerror(-err));
		r->dump_gen = 0;
		return err;
	}
	unsigned n = sweep_local ? sweep(r, r->cfg.node_id, r->dump_gen) : 0;
	if (n)
		log_info("kernel dump: %u local flows were gone", n);
	r->dump_gen = 0;
	return 0;
}

int repl_load_kernel(struct repl *r)
{
	r->loading = true;
	int err = dump_and_diff(r, false);
	r->loading = false;
	if (err == 0)
		log_info("loaded %u flows from the kernel table",
			 table_owner(r->t, r->cfg.node_id).flows);
	return err;
}

void repl_kernel_overrun(struct repl *r)
{
	r->st.overruns++;
	log_limited(LOG_LVL_WARN, "kernel event overrun: resynchronising from a dump");
	dump_and_diff(r, true);
}

/* ---- network side ------------------------------------------------------- */

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->ss_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			      &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
	return false;
}

static void apply_upsert(struct repl *r, struct peer *p, const struct ct *ct)
{
	struct flow *f = table_find(r->t, ct);

	r->st.rx_upserts++;
	if (!f) {
		f = table_add(r->t, ct, p->id);
		if (!f)
			return;
	} else {
		if (f->owner == r->cfg.node_id && r->primary)
			r->st.ownership_conflicts++;
		table_set_owner(r->t, f, p->id);
		uint32_t id = f->ct.id;
		f->ct = *ct;
		f->ct.id = id;
	}
	if (p->bulk_active)
		f->bulk_mark = p->bulk_gen;
	if (r->cfg.inject_immediate)
		inject(r, f->in_kernel ? CTNL_OP_UPDATE : CTNL_OP_CREATE, f);
	else
		f->pending = 1;
}

static void apply_delete(struct repl *r, struct peer *p, const struct ct *ct)
{
	struct flow *f = table_find(r->t, ct);

	r->st.rx_deletes++;
	if (!f || f->owner != p->id)
		return;
	if (f->in_kernel)
		inject(r, CTNL_OP_DELETE, f);
	flow_drop(r, f);
}

static void apply_heartbeat(struct repl *r, struct peer *p, const struct rec *rec)
{
	struct hb_info hb;

	if (codec_get_heartbeat(rec, &hb) < 0) {
		r->st.rx_bad_records++;
		return;
	}
	r->st.rx_heartbeats++;
	p->hb = hb;
	p->hb_valid = true;
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
			r->want_bulk = true;
		return;
	}
	/* BULK_END */
	if (!p->bulk_active)
		return;
	p->bulk_active = false;
	r->st.rx_bulks++;
	if (!p->bulk_clean) {
		log_warnx("peer %u: bulk %u had gaps, not sweeping", p->id, b.id);
		return;
	}
	unsigned n = sweep(r, p->id, p->bulk_gen);
	log_info("peer %u: bulk %u complete, %u flows, %u stale removed",
		 p->id, b.id, b.count, n);
}

void repl_receive(struct repl *r, const uint8_t *buf, size_t len,
		  const struct sockaddr_storage *from)
{
	struct frame_hdr h;
	struct cursor c;
	struct rec rec;
	struct ct ct;

	r->st.rx_frames++;
	if (codec_frame_open(buf, len, &h, &c) < 0) {
		r->st.rx_malformed++;
		log_limited(LOG_LVL_WARN, "dropped a malformed frame (%zu bytes)", len);
		return;
	}
	if (h.node == r->cfg.node_id) {
		r->st.rx_self++;
		return;
	}
	struct peer *p = peer_by_id(r, h.node);
	if (!p) {
		r->st.rx_unknown_node++;
		log_limited(LOG_LVL_WARN, "dropped a frame from unknown node %u", h.node);
		return;
	}
	if (from && !same_addr(from, &p->addr)) {
		char ab[INET6_ADDRSTRLEN] = "?";
		const void *a = from->ss_family == AF_INET6 ?
				(const void *)&((const struct sockaddr_in6 *)from)->sin6_addr :
				(const void *)&((const struct sockaddr_in *)from)->sin_addr;
		inet_ntop(from->ss_family, a, ab, sizeof(ab));
		r->st.rx_bad_source++;
		log_limited(LOG_LVL_WARN, "dropped a frame claiming node %u from %s, "
			    "not its configured address", h.node, ab);
		return;
	}
	/* Validate every record before acting on any: a frame is applied whole
	 * or not at all. */
	struct cursor scan = c;
	int ret;
	while ((ret = codec_next(&scan, &rec)) > 0)
		if ((rec.flags & REC_F_MANDATORY) &&
		    (rec.type < REC_FLOW_UPSERT || rec.type > REC_RESYNC_REQ))
			ret = -EINVAL;
	if (ret < 0) {
		r->st.rx_malformed++;
		log_limited(LOG_LVL_WARN, "dropped a malformed frame from node %u", h.node);
		return;
	}

	uint64_t t = now(r);
	if (!p->known || p->epoch != h.epoch) {
		log_info("peer %u: %s (epoch %08x)", p->id,
			 p->known ? "restarted" : "first contact", h.epoch);
		p->known = true;
		p->epoch = h.epoch;
		p->next_seq = (h.flags & WIRE_F_UNSEQ) ? h.seq + 1 : h.seq;
		p->hb_valid = false;
		p->bulk_active = false;
		r->want_bulk = true;    /* it has none of our flows yet */
	}
	if (!p->alive)
		log_info("peer %u is alive", p->id);
	p->alive = true;
	p->last_heard = t;

	if (!(h.flags & WIRE_F_UNSEQ)) {
		if (h.seq != p->next_seq) {
			if ((int32_t)(h.seq - p->next_seq) < 0) {
				r->st.rx_stale++;
				return;
			}
			uint32_t lost = h.seq - p->next_seq;
			p->lost += lost;
			r->st.rx_lost += lost;
			p->bulk_clean = false;
			log_limited(LOG_LVL_WARN, "peer %u: %u frames lost", p->id, lost);
		}
		p->next_seq = h.seq + 1;
	}

	while (codec_next(&c, &rec) > 0) {
		switch (rec.type) {
		case REC_FLOW_UPSERT:
		case REC_FLOW_DELETE:
			if (codec_get_flow(&rec, &ct) < 0) {
				r->st.rx_bad_records++;
				log_limited(LOG_LVL_WARN, "peer %u: bad flow record", p->id);
				break;
			}
			if (rec.type == REC_FLOW_UPSERT)
				apply_upsert(r, p, &ct);
			else
				apply_delete(r, p, &ct);
			break;
		case REC_HEARTBEAT:
			apply_heartbeat(r, p, &rec);
			break;
		case REC_BULK_BEGIN:
		case REC_BULK_END:
		case REC_RESYNC_REQ:
			apply_bulk(r, p, &rec);
			break;
		default:
			break;          /* unknown, not mandatory: skip */
		}
	}
}

/* ---- timers and operator actions ---------------------------------------- */

void repl_tick(struct repl *r)
{
	uint64_t t = now(r);
	uint64_t dead_ms = (uint64_t)r->cfg.heartbeat_ms * r->cfg.dead_after;

	for (unsigned i = 0; i < r->cfg.npeers; i++) {
		struct peer *p = &r->peer[i];
		if (p->alive && t - p->last_heard > dead_ms) {
			p->alive = false;
			log_warnx("peer %u is dead (silent for %llu ms)", p->id,
				  (unsigned long long)(t - p->last_heard));
		}
	}
	/* Data first, so the heartbeat's lastseq covers it. */
	repl_flush(r);
	struct owner_stats o = table_owner(r->t, r->cfg.node_id);
	struct hb_info hb = {
		.role = r->primary,
		.flows = o.flows,
		.digest = o.digest,
		.lastseq = r->seq,
	};
	codec_put_heartbeat(&r->w, &hb);
	frame_send(r, true);
}

struct own_ctx {
	struct repl *r;
	int n;
};

static void take_one(void *arg, struct flow *f)
{
	struct own_ctx *o = arg;
	struct repl *r = o->r;

	if (f->owner == r->cfg.node_id)
		return;
	table_set_owner(r->t, f, r->cfg.node_id);
	/* With inject = on-promote the kernel may hold an older state of the
	 * flow (from when it was ours): the owner's latest one replaces it. */
	if (!f->in_kernel || f->pending)
		inject(r, f->in_kernel ? CTNL_OP_UPDATE : CTNL_OP_CREATE, f);
	mark_dirty(r, f, REC_FLOW_UPSERT);
	o->n++;
}

int repl_promote(struct repl *r)
{
	struct own_ctx o = { r, 0 };

	r->primary = true;
	table_foreach(r->t, take_one, &o);
	log_info("promoted: took ownership of %d flows", o.n);
	r->st.committed += (uint64_t)o.n;
	repl_flush(r);
	return o.n;
}

int repl_demote(struct repl *r)
{
	r->primary = false;
	log_info("demoted: flows go to whichever peer advertises them");
	return 0;
}

static void commit_one(void *arg, struct flow *f)
{
	struct own_ctx *o = arg;

	if (f->owner == o->r->cfg.node_id || (f->in_kernel && !f->pending))
		return;
	inject(o->r, f->in_kernel ? CTNL_OP_UPDATE : CTNL_OP_CREATE, f);
	o->n++;
}

int repl_commit(struct repl *r)
{
	struct own_ctx o = { r, 0 };

	table_foreach(r->t, commit_one, &o);
	r->ops.inject_flush(r->ops.arg);
	r->st.committed += (uint64_t)o.n;
	log_info("committed %d flows to the kernel", o.n);
	return o.n;
}

int repl_resync(struct repl *r)
{
	r->st.resyncs++;
	int err = dump_and_diff(r, true);
	if (err < 0)
		return err;
	struct bulk_info b = { .id = ++r->bulk_id, .target = 0 };
	emit_bulk(r, REC_RESYNC_REQ, &b);
	r->want_bulk = true;
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
	uint64_t t = now(r);

	memset(st, 0, sizeof(*st));
	st->node_id = r->cfg.node_id;
	st->epoch = r->epoch;
	st->primary = r->primary;
	st->immediate = r->cfg.inject_immediate;
	st->flows_local = table_owner(r->t, r->cfg.node_id).flows;
	st->flows_total = (uint32_t)table_count(r->t);
	if (!r->cfg.inject_immediate)
		table_foreach(r->t, count_pending, &st->pending_commit);
	st->npeers = r->cfg.npeers;
	st->in_sync = true;
	for (unsigned i = 0; i < r->cfg.npeers; i++) {
		const struct peer *p = &r->peer[i];
		struct repl_peer_status *ps = &st->peer[i];
		struct owner_stats o = table_owner(r->t, p->id);
		ps->id = p->id;
		ps->addr = p->addr;
		ps->alive = p->alive;
		ps->known = p->known;
		ps->last_heard_ms = p->known ? (int64_t)(t - p->last_heard) : -1;
		ps->epoch = p->epoch;
		ps->role = p->hb.role;
		ps->flows_held = o.flows;
		ps->flows_advertised = p->hb.flows;
		ps->lost_frames = p->lost;
		ps->lag_frames = p->hb_valid && p->next_seq ?
				 (uint32_t)(p->hb.lastseq - (p->next_seq - 1)) : 0;
		ps->in_sync = p->alive && p->hb_valid && !p->bulk_active &&
			      o.flows == p->hb.flows && o.digest == p->hb.digest &&
			      ps->lag_frames == 0;
		if (!ps->in_sync)
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
