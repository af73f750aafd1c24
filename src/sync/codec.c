/* codec.c — frames and records (wire.h).  Everything read from the network
 * goes through a bounds-checked cursor; nothing is cast onto the buffer. */
#include "sync/codec.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

/* ---- primitive writers/readers ---------------------------------------- */

static void be16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = (uint8_t)v; }
static void be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24; p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static void be64(uint8_t *p, uint64_t v) { be32(p, v >> 32); be32(p + 4, (uint32_t)v); }
static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) << 32 | rd32(p + 4); }

static int get_bytes(struct cursor *c, const uint8_t **out, size_t n)
{
	if (c->left < n)
		return -EINVAL;
	*out = c->p;
	c->p += n;
	c->left -= n;
	return 0;
}

/* ---- frames ------------------------------------------------------------ */

void codec_frame_start(struct wbuf *w, uint8_t *buf, size_t cap)
{
	w->p = buf;
	w->cap = cap > WIRE_MAX_FRAME ? WIRE_MAX_FRAME : cap;
	w->len = WIRE_HDR_LEN;
	w->nrec = 0;
	w->batch_type = 0;
	w->claim = 0;
}

size_t codec_frame_finish(struct wbuf *w, const struct frame_hdr *h)
{
	uint8_t *p = w->p;

	be32(p, WIRE_MAGIC);
	p[4] = WIRE_VERSION;
	p[5] = h->flags;
	p[6] = h->key_id;
	p[7] = 0;
	be32(p + 8, h->node);
	be32(p + 12, h->epoch);
	be32(p + 16, h->seq);
	be16(p + 20, (uint16_t)(w->len - WIRE_HDR_LEN));
	be16(p + 22, 0);
	codec_frame_set_pn(p, h->pn);
	return w->len;
}

void codec_frame_set_pn(uint8_t *frame, uint64_t pn)
{
	be32(frame + WIRE_OFF_PN, (uint32_t)(pn >> 32));
	be32(frame + WIRE_OFF_PN + 4, (uint32_t)pn);
}

int codec_frame_open(const uint8_t *buf, size_t len, struct frame_hdr *h,
		     struct cursor *records)
{
	if (len < WIRE_HDR_LEN || rd32(buf) != WIRE_MAGIC || buf[4] < WIRE_VERSION_MIN ||
	    buf[4] > WIRE_VERSION)
		return -EINVAL;
	h->flags = buf[5];
	h->key_id = buf[6];
	h->node = rd32(buf + 8);
	h->epoch = rd32(buf + 12);
	h->seq = rd32(buf + 16);
	h->len = rd16(buf + 20);
	h->pn = rd64(buf + WIRE_OFF_PN);
	if (h->node == 0 || (size_t)h->len != len - WIRE_HDR_LEN)
		return -EINVAL;
	records->p = buf + WIRE_HDR_LEN;
	records->left = h->len;
	return 0;
}

/* ---- record writing ----------------------------------------------------- */

struct rbuild {
	struct wbuf *w;
	size_t start, len;      /* record start in w, bytes written so far */
	bool overflow;
};

static void rb_begin(struct rbuild *b, struct wbuf *w, uint8_t type, uint8_t flags)
{
	b->w = w;
	b->start = w->len;
	b->len = 4;
	b->overflow = w->len + 4 > w->cap;
	if (!b->overflow) {
		w->p[w->len] = type;
		w->p[w->len + 1] = flags;
	}
}

static uint8_t *rb_attr(struct rbuild *b, uint8_t type, uint8_t len)
{
	size_t at = b->start + b->len;

	if (b->overflow || at + 2 + len > b->w->cap || b->len + 2 + len > 0xffff) {
		b->overflow = true;
		return NULL;
	}
	b->w->p[at] = type;
	b->w->p[at + 1] = len;
	b->len += 2 + (size_t)len;
	return b->w->p + at + 2;
}

static void rb_u8(struct rbuild *b, uint8_t t, uint8_t v)
{
	uint8_t *p = rb_attr(b, t, 1);
	if (p)
		*p = v;
}
static void rb_u16(struct rbuild *b, uint8_t t, uint16_t v)
{
	uint8_t *p = rb_attr(b, t, 2);
	if (p)
		be16(p, v);
}
static void rb_u32(struct rbuild *b, uint8_t t, uint32_t v)
{
	uint8_t *p = rb_attr(b, t, 4);
	if (p)
		be32(p, v);
}
static void rb_u64(struct rbuild *b, uint8_t t, uint64_t v)
{
	uint8_t *p = rb_attr(b, t, 8);
	if (p)
		be64(p, v);
}

static int rb_end(struct rbuild *b)
{
	if (b->overflow)
		return -ENOSPC;
	be16(b->w->p + b->start + 2, (uint16_t)b->len);
	b->w->len += b->len;
	b->w->nrec++;
	return 0;
}

static size_t addr_len(uint8_t l3) { return l3 == AF_INET6 ? 16 : 4; }

/* TCP state, as FA_TCP and the packed upsert carry it: 5 bytes. */
static void put_tcp(uint8_t *p, const struct ct *ct)
{
	p[0] = ct->tcp.state;
	p[1] = ct->tcp.wscale[0];
	p[2] = ct->tcp.wscale[1];
	p[3] = ct->tcp.flags[0];
	p[4] = ct->tcp.flags[1];
}

static void get_tcp(struct ct *ct, const uint8_t *v)
{
	ct->tcp.state = v[0];
	ct->tcp.wscale[0] = v[1];
	ct->tcp.wscale[1] = v[2];
	ct->tcp.flags[0] = v[3];
	ct->tcp.flags[1] = v[4];
	ct->has |= CT_HAS_TCP;
}

static void rb_tuple(struct rbuild *b, uint8_t t, const struct ct *ct,
		     const struct ct_tuple *tu)
{
	size_t al = addr_len(ct->l3);
	uint8_t *p = rb_attr(b, t, (uint8_t)(2 * al + 6));
	if (!p)
		return;
	memcpy(p, &tu->src, al);
	memcpy(p + al, &tu->dst, al);
	memcpy(p + 2 * al, &tu->sport, 2);
	memcpy(p + 2 * al + 2, &tu->dport, 2);
	p[2 * al + 4] = tu->icmp_type;
	p[2 * al + 5] = tu->icmp_code;
}

static void rb_seqadj(struct rbuild *b, uint8_t t, const struct ct_seqadj *s)
{
	uint8_t *p = rb_attr(b, t, 12);
	if (p) {
		be32(p, s->pos);
		be32(p + 4, s->before);
		be32(p + 8, s->after);
	}
}

/* ---- packed IPv4 records (wire.h) ---- */

static bool packable(enum wire_rec type, const struct ct *ct)
{
	if (ct->l3 != AF_INET || ct->zone ||
	    (ct->l4 != IPPROTO_TCP && ct->l4 != IPPROTO_UDP && ct->l4 != IPPROTO_UDPLITE))
		return false;
	if (type == REC_FLOW_DELETE)
		return true;
	if (type != REC_FLOW_UPSERT || ct->secmark || ct->helper[0] ||
	    (ct->has & (CT_HAS_SEQADJ_O | CT_HAS_SEQADJ_R | CT_HAS_SCTP | CT_HAS_DCCP)))
		return false;
	for (size_t i = 0; i < CT_LABELS_LEN; i++)
		if (ct->labels[i])
			return false;
	return true;
}

/* The u32 fields of a packed upsert, in their order: status, timeout, mark. */
static const struct {
	uint8_t bit;
	uint32_t has;
} up4_u32[3] = {
	{ UP4_STATUS, CT_HAS_STATUS }, { UP4_TIMEOUT, CT_HAS_TIMEOUT }, { UP4_MARK, CT_HAS_MARK },
};

static uint8_t *put4_tuple(uint8_t *p, const struct ct_tuple *t)
{
	memcpy(p, &t->src.ip4, 4);
	memcpy(p + 4, &t->dst.ip4, 4);
	memcpy(p + 8, &t->sport, 2);
	memcpy(p + 10, &t->dport, 2);
	return p + 12;
}

static int put_packed(struct wbuf *w, enum wire_rec type, const struct ct *ct)
{
	uint8_t rtype = type == REC_FLOW_DELETE ? REC_DELETES4 : REC_UPSERTS4;
	uint8_t e[64], *p = e, bits = 0;
	struct ct_tuple m;

	if (rtype == REC_UPSERTS4) {
		bits = (ct->has & CT_HAS_STATUS ? UP4_STATUS : 0) |
		       (ct->has & CT_HAS_TIMEOUT ? UP4_TIMEOUT : 0) |
		       (ct->mark ? UP4_MARK : 0) | (ct->has & CT_HAS_TCP ? UP4_TCP : 0);
		if ((ct->has & CT_HAS_REPLY) &&
		    !(ct_mirror(ct, &m) && ct_tuple_equal(&m, &ct->reply)))
			bits |= UP4_REPLY;
		*p++ = bits;
	}
	*p++ = ct->l4;
	p = put4_tuple(p, &ct->orig);
	const uint32_t u32[3] = { ct->status, ct->timeout, ct->mark };
	for (int i = 0; i < 3; i++) {
		if (bits & up4_u32[i].bit) {
			be32(p, u32[i]);
			p += 4;
		}
	}
	if (bits & UP4_TCP) {
		put_tcp(p, ct);
		p += 5;
	}
	if (bits & UP4_REPLY)
		p = put4_tuple(p, &ct->reply);
	size_t n = (size_t)(p - e);
	/* appended to the frame's last record when that is a packed one of
	 * the same type, else in a new one */
	bool append = w->batch_type == rtype && w->batch_at + rd16(w->p + w->batch_at + 2) == w->len &&
		      rd16(w->p + w->batch_at + 2) + n <= 0xffff;
	if (w->len + n + (append ? 0 : 4) > w->cap)
		return -ENOSPC;
	if (!append) {
		w->batch_at = w->len;
		w->batch_type = rtype;
		w->p[w->len] = rtype;
		w->p[w->len + 1] = REC_F_MANDATORY;
		be16(w->p + w->len + 2, 4);
		w->len += 4;
	}
	memcpy(w->p + w->len, e, n);
	w->len += n;
	be16(w->p + w->batch_at + 2, (uint16_t)(rd16(w->p + w->batch_at + 2) + n));
	w->nrec++;
	return 0;
}

int codec_put_flow(struct wbuf *w, enum wire_rec type, const struct ct *ct)
{
	struct rbuild b;
	uint8_t *p;

	if (packable(type, ct))
		return put_packed(w, type, ct);

	rb_begin(&b, w, (uint8_t)type, 0);
	p = rb_attr(&b, FA_PROTO | ATTR_MANDATORY, 2);
	if (p) {
		p[0] = ct->l3 == AF_INET6 ? 6 : 4;
		p[1] = ct->l4;
	}
	rb_tuple(&b, FA_ORIG | ATTR_MANDATORY, ct, &ct->orig);
	if (ct->zone)
		rb_u16(&b, FA_ZONE, ct->zone);
	if (type == REC_FLOW_DELETE)
		return rb_end(&b);
	if (type == REC_FLOW_REFRESH) {
		rb_u32(&b, FA_TIMEOUT, ct->timeout);
		return rb_end(&b);
	}

	struct ct_tuple m;
	if ((ct->has & CT_HAS_REPLY) &&
	    !(ct_mirror(ct, &m) && ct_tuple_equal(&m, &ct->reply)))
		rb_tuple(&b, FA_REPLY, ct, &ct->reply);
	if (ct->has & CT_HAS_STATUS)
		rb_u32(&b, FA_STATUS, ct->status);
	if (ct->has & CT_HAS_TIMEOUT)
		rb_u32(&b, FA_TIMEOUT, ct->timeout);
	if (ct->mark)
		rb_u32(&b, FA_MARK, ct->mark);
	if (ct->secmark)
		rb_u32(&b, FA_SECMARK, ct->secmark);
	if (ct->has & CT_HAS_TCP) {
		p = rb_attr(&b, FA_TCP, 5);
		if (p)
			put_tcp(p, ct);
	}
	if (ct->has & CT_HAS_SCTP) {
		p = rb_attr(&b, FA_SCTP, 9);
		if (p) {
			p[0] = ct->sctp.state;
			be32(p + 1, ct->sctp.vtag[0]);
			be32(p + 5, ct->sctp.vtag[1]);
		}
	}
	if (ct->has & CT_HAS_DCCP) {
		p = rb_attr(&b, FA_DCCP, 10);
		if (p) {
			p[0] = ct->dccp.state;
			p[1] = ct->dccp.role;
			be64(p + 2, ct->dccp.hs_seq);
		}
	}
	if (ct->has & CT_HAS_SEQADJ_O)
		rb_seqadj(&b, FA_SEQADJ_ORIG, &ct->seqadj[0]);
	if (ct->has & CT_HAS_SEQADJ_R)
		rb_seqadj(&b, FA_SEQADJ_REPLY, &ct->seqadj[1]);
	size_t hl = strnlen(ct->helper, CT_HELPER_LEN - 1);
	if (hl) {
		p = rb_attr(&b, FA_HELPER, (uint8_t)hl);
		if (p)
			memcpy(p, ct->helper, hl);
	}
	size_t ll = CT_LABELS_LEN;
	while (ll && ct->labels[ll - 1] == 0)
		ll--;
	if (ll) {
		p = rb_attr(&b, FA_LABELS, (uint8_t)ll);
		if (p)
			memcpy(p, ct->labels, ll);
	}
	return rb_end(&b);
}

static int put_u32_rec(struct wbuf *w, uint8_t type, uint32_t v);

int codec_put_claimed(struct wbuf *w, const struct ct *ct, uint32_t claim)
{
	struct wbuf saved = *w;

	if (claim != w->claim) {
		if (put_u32_rec(w, REC_CLAIM, claim) < 0)
			return -ENOSPC;
		w->claim = claim;
		w->batch_type = 0;      /* a packed record after it starts anew */
	}
	int ret = codec_put_flow(w, REC_FLOW_UPSERT, ct);
	if (ret < 0)
		*w = saved;
	return ret;
}

static void rb_str(struct rbuild *b, uint8_t t, const char *s, size_t max)
{
	size_t n = strnlen(s, max - 1);
	uint8_t *p;

	if (n && (p = rb_attr(b, t, (uint8_t)n)))
		memcpy(p, s, n);
}

int codec_put_heartbeat(struct wbuf *w, const struct hb_info *hb)
{
	struct rbuild b;

	rb_begin(&b, w, REC_HEARTBEAT, 0);
	rb_u8(&b, HA_ROLE, hb->role);
	rb_u32(&b, HA_FLOWS, hb->flows);
	rb_u64(&b, HA_DIGEST, hb->digest);
	rb_u32(&b, HA_LASTSEQ, hb->lastseq);
	if (hb->term)
		rb_u32(&b, HA_TERM, hb->term);
	if (hb->nbuckets) {
		rb_u8(&b, HA_HOLDS, hb->holds);
		rb_u64(&b, HA_BUCKETS, (uint64_t)hb->nbuckets << 32 | hb->bucket_seed);
	}
	if (hb->proto_major) {
		rb_u32(&b, HA_PROTO, (uint32_t)hb->proto_major << 16 | hb->proto_minor);
		rb_u32(&b, HA_FEATURES, hb->features);
	}
	rb_str(&b, HA_RELEASE, hb->release, sizeof(hb->release));
	if (hb->has_held) {
		size_t n = hb->held_len ? hb->held_len : 1;
		uint8_t *p = rb_attr(&b, HA_HELD, (uint8_t)(n > WIRE_HELD_MAX ? WIRE_HELD_MAX : n));
		if (p)
			memcpy(p, hb->held, n > WIRE_HELD_MAX ? WIRE_HELD_MAX : n);
		rb_u32(&b, HA_LEASE, hb->lease_ms);
	}
	if (hb->beat)
		rb_u32(&b, HA_BEAT, hb->beat);
	for (unsigned i = 0; i < hb->nechoes && i < WIRE_ECHO_MAX; i++) {
		uint8_t *p = rb_attr(&b, HA_ECHO, 12);
		if (p) {
			be32(p, hb->echo[i].node);
			be32(p + 4, hb->echo[i].epoch);
			be32(p + 8, hb->echo[i].beat);
		}
	}
	if (hb->ask)
		rb_u8(&b, HA_ASK, 1);
	return rb_end(&b);
}

int codec_put_bulk(struct wbuf *w, enum wire_rec type, const struct bulk_info *bi)
{
	struct rbuild b;

	rb_begin(&b, w, (uint8_t)type, 0);
	rb_u32(&b, BA_ID, bi->id);
	if (type == REC_BULK_END)
		rb_u32(&b, BA_COUNT, bi->count);
	if (type == REC_RESYNC_REQ)
		rb_u32(&b, BA_TARGET, bi->target);
	return rb_end(&b);
}

int codec_put_nack(struct wbuf *w, const struct nack_info *n)
{
	return codec_put_ranges(w, REC_NACK, n);
}

int codec_put_ranges(struct wbuf *w, enum wire_rec type, const struct nack_info *n)
{
	struct rbuild b;

	rb_begin(&b, w, (uint8_t)type, 0);
	rb_u32(&b, NA_TARGET, n->target);
	rb_u32(&b, NA_EPOCH, n->epoch);
	for (unsigned i = 0; i < n->nranges && i < NACK_MAX_RANGES; i++) {
		uint8_t *p = rb_attr(&b, NA_RANGE, 8);
		if (p) {
			be32(p, n->range[i].first);
			be32(p + 4, n->range[i].last);
		}
	}
	return rb_end(&b);
}

int codec_put_challenge(struct wbuf *w, enum wire_rec type, const struct challenge_info *c)
{
	struct rbuild b;
	uint8_t *p;

	rb_begin(&b, w, (uint8_t)type, 0);
	rb_u32(&b, CA_TARGET, c->target);
	if (type == REC_CHALLENGE)
		rb_u32(&b, CA_EPOCH, c->epoch);
	p = rb_attr(&b, CA_COOKIE, CHALLENGE_COOKIE_LEN);
	if (p)
		memcpy(p, c->cookie, CHALLENGE_COOKIE_LEN);
	return rb_end(&b);
}


int codec_put_exp(struct wbuf *w, enum wire_rec type, const struct exp *e)
{
	struct rbuild b;
	uint8_t *p;
	struct ct c = { .l3 = e->l3 };

	rb_begin(&b, w, (uint8_t)type, 0);
	p = rb_attr(&b, EA_PROTO | ATTR_MANDATORY, 3);
	if (p) {
		p[0] = e->l3 == AF_INET6 ? 6 : 4;
		p[1] = e->l4;
		p[2] = e->master_l4;
	}
	rb_tuple(&b, EA_MASTER | ATTR_MANDATORY, &c, &e->master);
	rb_tuple(&b, EA_TUPLE | ATTR_MANDATORY, &c, &e->tuple);
	if (e->zone)
		rb_u16(&b, EA_ZONE, e->zone);
	if (type == REC_EXP_DELETE)
		return rb_end(&b);
	rb_tuple(&b, EA_MASK, &c, &e->mask);
	rb_u32(&b, EA_TIMEOUT, e->timeout);
	if (e->flags)
		rb_u32(&b, EA_FLAGS, e->flags);
	if (e->klass)
		rb_u32(&b, EA_CLASS, e->klass);
	rb_str(&b, EA_HELPER, e->helper, sizeof(e->helper));
	rb_str(&b, EA_FN, e->fn, sizeof(e->fn));
	if (e->has & EXP_HAS_NAT) {
		size_t al = addr_len(e->l3);
		p = rb_attr(&b, EA_NAT, (uint8_t)(5 + 2 * al + 6));
		if (p) {
			be32(p, e->nat_dir);
			p[4] = e->nat_l4;
			memcpy(p + 5, &e->nat.src, al);
			memcpy(p + 5 + al, &e->nat.dst, al);
			memcpy(p + 5 + 2 * al, &e->nat.sport, 2);
			memcpy(p + 5 + 2 * al + 2, &e->nat.dport, 2);
			p[5 + 2 * al + 4] = e->nat.icmp_type;
			p[5 + 2 * al + 5] = e->nat.icmp_code;
		}
	}
	return rb_end(&b);
}

/* ---- record reading ----------------------------------------------------- */

int codec_next(struct cursor *c, struct rec *r)
{
	const uint8_t *h;

	if (c->left == 0)
		return 0;
	if (get_bytes(c, &h, 4))
		return -EINVAL;
	size_t len = rd16(h + 2);
	if (len < 4 || len - 4 > c->left)
		return -EINVAL;
	r->type = h[0];
	r->flags = h[1];
	get_bytes(c, &r->body, len - 4);
	r->len = len - 4;
	return 1;
}

/* Walk attributes: calls fn for each; an unknown mandatory one fails. */
typedef int (*attr_fn)(void *arg, uint8_t type, const uint8_t *v, uint8_t len);

static int walk(const struct rec *r, attr_fn fn, void *arg)
{
	struct cursor c = { r->body, r->len };
	const uint8_t *h, *v;

	while (c.left) {
		if (get_bytes(&c, &h, 2) || get_bytes(&c, &v, h[1]))
			return -EINVAL;
		int ret = fn(arg, h[0] & 0x7f, v, h[1]);
		if (ret < 0)
			return ret;
		if (ret == 0 && (h[0] & ATTR_MANDATORY))
			return -EINVAL;         /* mandatory but unknown */
	}
	return 0;
}

static int get_tuple(const struct ct *ct, const uint8_t *v, uint8_t len,
		     struct ct_tuple *t)
{
	size_t al = addr_len(ct->l3);

	if (ct->l3 == 0 || len != 2 * al + 6)
		return -EINVAL;
	memset(t, 0, sizeof(*t));
	memcpy(&t->src, v, al);
	memcpy(&t->dst, v + al, al);
	memcpy(&t->sport, v + 2 * al, 2);
	memcpy(&t->dport, v + 2 * al + 2, 2);
	t->icmp_type = v[2 * al + 4];
	t->icmp_code = v[2 * al + 5];
	return 0;
}

static int get_seqadj(const uint8_t *v, uint8_t len, struct ct_seqadj *s)
{
	if (len != 12)
		return -EINVAL;
	s->pos = rd32(v);
	s->before = rd32(v + 4);
	s->after = rd32(v + 8);
	return 0;
}

#define NEED(n) do { if (len != (n)) return -EINVAL; } while (0)

/* returns 1 known, 0 unknown, <0 malformed */
static int flow_attr(void *arg, uint8_t type, const uint8_t *v, uint8_t len)
{
	struct ct *ct = arg;

	switch (type) {
	case FA_PROTO:
		NEED(2);
		if (v[0] != 4 && v[0] != 6)
			return -EINVAL;
		ct->l3 = v[0] == 6 ? AF_INET6 : AF_INET;
		ct->l4 = v[1];
		return 1;
	case FA_ORIG:
		return get_tuple(ct, v, len, &ct->orig) ? -EINVAL : 1;
	case FA_REPLY:
		ct->has |= CT_HAS_REPLY;
		return get_tuple(ct, v, len, &ct->reply) ? -EINVAL : 1;
	case FA_ZONE:
		NEED(2);
		ct->zone = rd16(v);
		ct->has |= CT_HAS_ZONE;
		return 1;
	case FA_STATUS:
		NEED(4);
		ct->status = rd32(v);
		ct->has |= CT_HAS_STATUS;
		return 1;
	case FA_TIMEOUT:
		NEED(4);
		ct->timeout = rd32(v);
		ct->has |= CT_HAS_TIMEOUT;
		return 1;
	case FA_MARK:
		NEED(4);
		ct->mark = rd32(v);
		ct->has |= CT_HAS_MARK;
		return 1;
	case FA_SECMARK:
		NEED(4);
		ct->secmark = rd32(v);
		ct->has |= CT_HAS_SECMARK;
		return 1;
	case FA_TCP:
		NEED(5);
		get_tcp(ct, v);
		return 1;
	case FA_SCTP:
		NEED(9);
		ct->sctp.state = v[0];
		ct->sctp.vtag[0] = rd32(v + 1);
		ct->sctp.vtag[1] = rd32(v + 5);
		ct->has |= CT_HAS_SCTP;
		return 1;
	case FA_DCCP:
		NEED(10);
		ct->dccp.state = v[0];
		ct->dccp.role = v[1];
		ct->dccp.hs_seq = rd64(v + 2);
		ct->has |= CT_HAS_DCCP;
		return 1;
	case FA_SEQADJ_ORIG:
		ct->has |= CT_HAS_SEQADJ_O;
		return get_seqadj(v, len, &ct->seqadj[0]) ? -EINVAL : 1;
	case FA_SEQADJ_REPLY:
		ct->has |= CT_HAS_SEQADJ_R;
		return get_seqadj(v, len, &ct->seqadj[1]) ? -EINVAL : 1;
	case FA_HELPER:
		if (len == 0 || len >= CT_HELPER_LEN || memchr(v, 0, len))
			return -EINVAL;
		memcpy(ct->helper, v, len);
		ct->helper[len] = 0;
		ct->has |= CT_HAS_HELPER;
		return 1;
	case FA_LABELS:
		if (len == 0 || len > CT_LABELS_LEN)
			return -EINVAL;
		memcpy(ct->labels, v, len);
		ct->has |= CT_HAS_LABELS;
		return 1;
	}
	return 0;
}

int codec_get_flow(const struct rec *r, struct ct *ct)
{
	memset(ct, 0, sizeof(*ct));
	/* FA_PROTO must come first: the tuple lengths depend on it. */
	if (r->len < 4 || (r->body[0] & 0x7f) != FA_PROTO)
		return -EINVAL;
	if (walk(r, flow_attr, ct) < 0 || ct->l3 == 0)
		return -EINVAL;
	if (ct_tuple_is_zero(&ct->orig))
		return -EINVAL;         /* FA_ORIG is mandatory */
	if (!(ct->has & CT_HAS_REPLY) && ct_mirror(ct, &ct->reply))
		ct->has |= CT_HAS_REPLY;
	/* The wire omits what is zero: an upsert is a complete state. */
	if (r->type == REC_FLOW_UPSERT)
		ct->has |= CT_HAS_MARK | CT_HAS_LABELS | CT_HAS_HELPER | CT_HAS_ZONE;
	return 0;
}

static void get4_tuple(const uint8_t *v, struct ct_tuple *t)
{
	memcpy(&t->src.ip4, v, 4);
	memcpy(&t->dst.ip4, v + 4, 4);
	memcpy(&t->sport, v + 8, 2);
	memcpy(&t->dport, v + 10, 2);
}

int codec_next_packed(const struct rec *r, size_t *off, struct ct *ct)
{
	struct cursor c = { r->body + *off, r->len - *off };
	const uint8_t *v;
	uint8_t bits = 0;

	if (*off > r->len || (r->type != REC_UPSERTS4 && r->type != REC_DELETES4))
		return -EINVAL;
	if (c.left == 0)
		return 0;
	memset(ct, 0, sizeof(*ct));
	if (r->type == REC_UPSERTS4) {
		if (get_bytes(&c, &v, 1) || (v[0] & ~UP4_ALL))
			return -EINVAL;
		bits = v[0];
	}
	if (get_bytes(&c, &v, 13))
		return -EINVAL;
	ct->l3 = AF_INET;
	ct->l4 = v[0];
	if (ct->l4 != IPPROTO_TCP && ct->l4 != IPPROTO_UDP && ct->l4 != IPPROTO_UDPLITE)
		return -EINVAL;
	get4_tuple(v + 1, &ct->orig);
	if (ct_tuple_is_zero(&ct->orig))
		return -EINVAL;
	uint32_t *u32[3] = { &ct->status, &ct->timeout, &ct->mark };
	for (int i = 0; i < 3; i++) {
		if (!(bits & up4_u32[i].bit))
			continue;
		if (get_bytes(&c, &v, 4))
			return -EINVAL;
		*u32[i] = rd32(v);
		ct->has |= up4_u32[i].has;
	}
	if (bits & UP4_TCP) {
		if (get_bytes(&c, &v, 5))
			return -EINVAL;
		get_tcp(ct, v);
	}
	if (bits & UP4_REPLY) {
		if (get_bytes(&c, &v, 12))
			return -EINVAL;
		get4_tuple(v, &ct->reply);
		ct->has |= CT_HAS_REPLY;
	}
	/* as codec_get_flow() would have it */
	if (!(ct->has & CT_HAS_REPLY) && ct_mirror(ct, &ct->reply))
		ct->has |= CT_HAS_REPLY;
	if (r->type == REC_UPSERTS4)
		ct->has |= CT_HAS_MARK | CT_HAS_LABELS | CT_HAS_HELPER | CT_HAS_ZONE;
	*off = r->len - c.left;
	return 1;
}

static int get_cstr(const uint8_t *v, uint8_t len, char *out, size_t max)
{
	if (len == 0 || len >= max || memchr(v, 0, len))
		return -EINVAL;
	memcpy(out, v, len);
	out[len] = 0;
	return 0;
}

static int hb_attr(void *arg, uint8_t type, const uint8_t *v, uint8_t len)
{
	struct hb_info *hb = arg;

	switch (type) {
	case HA_ROLE:
		NEED(1);
		hb->role = v[0];
		return 1;
	case HA_FLOWS:
		NEED(4);
		hb->flows = rd32(v);
		return 1;
	case HA_DIGEST:
		NEED(8);
		hb->digest = rd64(v);
		return 1;
	case HA_LASTSEQ:
		NEED(4);
		hb->lastseq = rd32(v);
		return 1;
	case HA_TERM:
		NEED(4);
		hb->term = rd32(v);
		return 1;
	case HA_HOLDS:
		NEED(1);
		hb->holds = v[0] != 0;
		return 1;
	case HA_BUCKETS: {
		NEED(8);
		uint64_t x = rd64(v);
		hb->nbuckets = (uint32_t)(x >> 32);
		hb->bucket_seed = (uint32_t)x;
		return 1;
	}
	case HA_PROTO:
		NEED(4);
		hb->proto_major = (uint16_t)(rd32(v) >> 16);
		hb->proto_minor = (uint16_t)rd32(v);
		return 1;
	case HA_FEATURES:
		NEED(4);
		hb->features = rd32(v);
		return 1;
	case HA_RELEASE:
		return get_cstr(v, len, hb->release, sizeof(hb->release)) ? -EINVAL : 1;
	case HA_HELD:
		if (len < 1 || len > WIRE_HELD_MAX)
			return -EINVAL;
		memcpy(hb->held, v, len);
		hb->held_len = (uint16_t)len;
		hb->has_held = true;
		return 1;
	case HA_LEASE:
		NEED(4);
		hb->lease_ms = rd32(v);
		return 1;
	case HA_BEAT:
		NEED(4);
		hb->beat = rd32(v);
		return 1;
	case HA_ECHO:
		NEED(12);
		if (hb->nechoes < WIRE_ECHO_MAX) {
			struct hb_echo *e = &hb->echo[hb->nechoes++];
			e->node = rd32(v);
			e->epoch = rd32(v + 4);
			e->beat = rd32(v + 8);
		}
		return 1;
	case HA_ASK:
		NEED(1);
		hb->ask = v[0] != 0;
		return 1;
	}
	return 0;
}

int codec_get_heartbeat(const struct rec *r, struct hb_info *hb)
{
	memset(hb, 0, sizeof(*hb));
	return walk(r, hb_attr, hb);
}

/* REC_CLAIM and REC_FOR: one u32, attribute 1, and no record of their own
 * in the counts (w->nrec). */
_Static_assert(CLA_GEN == 1 && FOR_NODE == 1, "one-u32 records");

static int put_u32_rec(struct wbuf *w, uint8_t type, uint32_t v)
{
	struct rbuild b;

	rb_begin(&b, w, type, 0);
	rb_u32(&b, 1, v);
	if (rb_end(&b) < 0)
		return -ENOSPC;
	w->nrec--;
	return 0;
}

static int u32_attr(void *arg, uint8_t type, const uint8_t *v, uint8_t len)
{
	if (type != 1)
		return 0;
	NEED(4);
	*(uint32_t *)arg = rd32(v);
	return 1;
}

int codec_get_claim(const struct rec *r, uint32_t *gen)
{
	*gen = 0;
	return walk(r, u32_attr, gen);
}

int codec_put_for(struct wbuf *w, uint32_t node)
{
	return put_u32_rec(w, REC_FOR, node);
}

int codec_put_ackreq(struct wbuf *w)
{
	struct rbuild b;

	rb_begin(&b, w, REC_ACKREQ, 0);
	return rb_end(&b) < 0 ? -ENOSPC : 0;
}

int codec_put_ack(struct wbuf *w, const struct ack_info *a)
{
	struct rbuild b;

	rb_begin(&b, w, REC_ACK, 0);
	if (a->has_seq)
		rb_u32(&b, AK_SEQ, a->seq);
	if (a->has_pn)
		rb_u64(&b, AK_PN, a->pn);
	return rb_end(&b) < 0 ? -ENOSPC : 0;
}

static int ack_attr(void *arg, uint8_t type, const uint8_t *v, uint8_t len)
{
	struct ack_info *a = arg;

	switch (type) {
	case AK_SEQ:
		NEED(4);
		a->seq = rd32(v);
		a->has_seq = true;
		return 1;
	case AK_PN:
		NEED(8);
		a->pn = rd64(v);
		a->has_pn = true;
		return 1;
	}
	return 0;
}

int codec_get_ack(const struct rec *r, struct ack_info *a)
{
	memset(a, 0, sizeof(*a));
	if (walk(r, ack_attr, a) < 0 || (!a->has_seq && !a->has_pn))
		return -EINVAL;
	return 0;
}

int codec_get_for(const struct rec *r, uint32_t *node)
{
	*node = 0;
	if (walk(r, u32_attr, node) < 0 || *node == 0)
		return -EINVAL;
	return 0;
}

static int bulk_attr(void *arg, uint8_t type, const uint8_t *v, uint8_t len)
{
	struct bulk_info *b = arg;

	switch (type) {
	case BA_ID:
		NEED(4);
		b->id = rd32(v);
		return 1;
	case BA_COUNT:
		NEED(4);
		b->count = rd32(v);
		return 1;
	case BA_TARGET:
		NEED(4);
		b->target = rd32(v);
		return 1;
	}
	return 0;
}

int codec_get_bulk(const struct rec *r, struct bulk_info *b)
{
	memset(b, 0, sizeof(*b));
	return walk(r, bulk_attr, b);
}

static int nack_attr(void *arg, uint8_t type, const uint8_t *v, uint8_t len)
{
	struct nack_info *n = arg;

	switch (type) {
	case NA_TARGET:
		NEED(4);
		n->target = rd32(v);
		return 1;
	case NA_EPOCH:
		NEED(4);
		n->epoch = rd32(v);
		return 1;
	case NA_RANGE:
		NEED(8);
		if (n->nranges == NACK_MAX_RANGES)
			return -EINVAL;
		n->range[n->nranges].first = rd32(v);
		n->range[n->nranges].last = rd32(v + 4);
		if ((int32_t)(n->range[n->nranges].last - n->range[n->nranges].first) < 0)
			return -EINVAL;
		n->nranges++;
		return 1;
	}
	return 0;
}

int codec_get_nack(const struct rec *r, struct nack_info *n)
{
	memset(n, 0, sizeof(*n));
	return walk(r, nack_attr, n);
}

static int challenge_attr(void *arg, uint8_t type, const uint8_t *v, uint8_t len)
{
	struct challenge_info *c = arg;

	switch (type) {
	case CA_TARGET:
		NEED(4);
		c->target = rd32(v);
		return 1;
	case CA_EPOCH:
		NEED(4);
		c->epoch = rd32(v);
		return 1;
	case CA_COOKIE:
		NEED(CHALLENGE_COOKIE_LEN);
		memcpy(c->cookie, v, CHALLENGE_COOKIE_LEN);
		c->has_cookie = true;
		return 1;
	}
	return 0;
}

int codec_get_challenge(const struct rec *r, struct challenge_info *c)
{
	memset(c, 0, sizeof(*c));
	int ret = walk(r, challenge_attr, c);
	return ret < 0 || !c->has_cookie || !c->target ? -EINVAL : 0;
}


static int exp_attr(void *arg, uint8_t type, const uint8_t *v, uint8_t len)
{
	struct exp *e = arg;
	struct ct c = { .l3 = e->l3 };

	switch (type) {
	case EA_PROTO:
		NEED(3);
		if (v[0] != 4 && v[0] != 6)
			return -EINVAL;
		e->l3 = v[0] == 6 ? AF_INET6 : AF_INET;
		e->l4 = v[1];
		e->master_l4 = v[2];
		return 1;
	case EA_MASTER:
		return get_tuple(&c, v, len, &e->master) ? -EINVAL : 1;
	case EA_TUPLE:
		return get_tuple(&c, v, len, &e->tuple) ? -EINVAL : 1;
	case EA_MASK:
		e->has |= EXP_HAS_MASK;
		return get_tuple(&c, v, len, &e->mask) ? -EINVAL : 1;
	case EA_ZONE:
		NEED(2);
		e->zone = rd16(v);
		return 1;
	case EA_TIMEOUT:
		NEED(4);
		e->timeout = rd32(v);
		return 1;
	case EA_FLAGS:
		NEED(4);
		e->flags = rd32(v);
		return 1;
	case EA_CLASS:
		NEED(4);
		e->klass = rd32(v);
		return 1;
	case EA_HELPER:
		e->has |= EXP_HAS_HELPER;
		return get_cstr(v, len, e->helper, sizeof(e->helper)) ? -EINVAL : 1;
	case EA_FN:
		e->has |= EXP_HAS_FN;
		return get_cstr(v, len, e->fn, sizeof(e->fn)) ? -EINVAL : 1;
	case EA_NAT: {
		size_t al = addr_len(e->l3);
		if (e->l3 == 0 || len != 5 + 2 * al + 6)
			return -EINVAL;
		e->nat_dir = rd32(v);
		e->nat_l4 = v[4];
		if (get_tuple(&c, v + 5, (uint8_t)(len - 5), &e->nat))
			return -EINVAL;
		e->has |= EXP_HAS_NAT;
		return 1;
	}
	}
	return 0;
}

int codec_get_exp(const struct rec *r, struct exp *e)
{
	memset(e, 0, sizeof(*e));
	/* EA_PROTO first: the tuple lengths depend on it */
	if (r->len < 5 || (r->body[0] & 0x7f) != EA_PROTO)
		return -EINVAL;
	if (walk(r, exp_attr, e) < 0 || e->l3 == 0)
		return -EINVAL;
	if (ct_tuple_is_zero(&e->tuple) || ct_tuple_is_zero(&e->master))
		return -EINVAL;
	return 0;
}

int codec_check_rec(const struct rec *r)
{
	union {
		struct ct ct;
		struct hb_info hb;
		struct bulk_info b;
		struct nack_info n;
		struct exp e;
		struct challenge_info c;
		struct ack_info ack;
		uint32_t gen;
	} u;
	size_t off = 0;
	int ret;

	switch (r->type) {
	case REC_FLOW_UPSERT:
	case REC_FLOW_DELETE:
	case REC_FLOW_REFRESH:
	case REC_HINT:
		return codec_get_flow(r, &u.ct);
	case REC_ACK:
		return codec_get_ack(r, &u.ack);
	case REC_UPSERTS4:
	case REC_DELETES4:
		while ((ret = codec_next_packed(r, &off, &u.ct)) > 0)
			;
		return ret;
	case REC_EXP_UPSERT:
	case REC_EXP_DELETE:
		return codec_get_exp(r, &u.e);
	case REC_BULK_BEGIN:
	case REC_BULK_END:
	case REC_RESYNC_REQ:
		return codec_get_bulk(r, &u.b);
	case REC_HEARTBEAT:
		return codec_get_heartbeat(r, &u.hb);
	case REC_CLAIM:
		return codec_get_claim(r, &u.gen);
	case REC_FOR:
		return codec_get_for(r, &u.gen);
	case REC_NACK:
	case REC_SKIP:
		return codec_get_nack(r, &u.n);
	case REC_CHALLENGE:
	case REC_RESPONSE:
		return codec_get_challenge(r, &u.c);
	default:
		return 0;
	}
}
