/* ctnl.c — ctnetlink events, dumps and batched injection (see ctnl.h). */
#include "kernel/ctnl.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <libmnl/libmnl.h>
#include <linux/filter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_conntrack_tcp.h>

#define BATCH_MAX    64         /* messages per sendmsg: the kernel's sweet spot */
#define RECV_BUF     (64 * 1024)
#define EV_SLOTS     32         /* events per recvmmsg() */
#define EV_SLOT      8192       /* an event is a few hundred bytes */
#define NBATCH       4          /* batches in the ring while a thread sends */

/* A message of a batch, kept for the error report. */
struct pend {
	enum ctnl_op op;
	bool is_exp;
	struct ct ct;
	struct exp exp;
};

struct inj_err {
	struct pend p;
	int err;
};

struct batch {
	char *buf;
	size_t len;
	unsigned n;
	uint32_t seq0;
	/* written by whoever sent it */
	int send_err;
	unsigned nerr;
	uint8_t err_idx[BATCH_MAX];
	int err_val[BATCH_MAX];
	struct pend pending[BATCH_MAX];
};

struct ctnl {
	struct mnl_socket *ev, *dump, *inj;
	uint32_t inj_portid;
	uint32_t dump_seq;              /* a dump under way */
	bool own_filtered;              /* the kernel drops our own events */
	struct ctnl_config cfg;
	struct ctnl_stats st;
	uint32_t seq;
	/* Batches go round a ring: bt[filled % n] is being filled; those from
	 * reclaimed to filled were handed to the sender (the sending thread,
	 * or ctnl_inject_flush itself), those below sent are back from the
	 * kernel.  Only the main thread touches filled, reclaimed and the
	 * batch being filled; sent and the batches in flight are shared with
	 * the sending thread under mu. */
	struct batch bt[NBATCH];
	unsigned nbatch;                /* 1, or NBATCH while a thread sends */
	uint64_t filled, sent, reclaimed;
	int send_err;                   /* first sendmsg error since the last flush */
	/* errors of reclaimed batches, handed to the callbacks in order */
	struct inj_err *errq;
	size_t errq_n, errq_head, errq_cap;
	bool reporting;
	bool threaded;
	bool stop;
	pthread_t thr;
	pthread_mutex_t mu;
	pthread_cond_t cv_work, cv_done;
	char rbuf[RECV_BUF];
	char inj_rbuf[RECV_BUF];        /* the sender's: errors of a batch */
	char evbuf[EV_SLOTS][EV_SLOT];
	struct ct evct[EV_SLOTS];       /* the entries of evbuf, parsed */
};

static void stop_sender(struct ctnl *nl);

/* ---- parsing ----------------------------------------------------------- */

/* The attributes in [p, p + len) into tb[] by type; types above max are
 * skipped.  Bounds are checked as libmnl's walkers check them, but with no
 * callback per attribute: this runs for every event (docs/BENCHMARKS.md).
 * A malformed attribute fails the whole message. */
static int attrs(const void *p, size_t len, const struct nlattr **tb, unsigned max)
{
	while (len >= sizeof(struct nlattr)) {
		const struct nlattr *a = p;
		if (a->nla_len < sizeof(*a) || a->nla_len > len)
			return -EINVAL;
		unsigned type = a->nla_type & NLA_TYPE_MASK;
		if (type <= max)
			tb[type] = a;
		size_t step = NLA_ALIGN(a->nla_len);
		if (step >= len)
			break;
		p = (const char *)p + step;
		len -= step;
	}
	return 0;
}

static int nested(const struct nlattr *nest, const struct nlattr **tb, unsigned max)
{
	return attrs((const char *)nest + NLA_HDRLEN, nest->nla_len - NLA_HDRLEN, tb, max);
}

/* The attributes of a ctnetlink message, after its nfgenmsg header (the
 * caller checked nlmsg_len against what it read). */
static int msg_attrs(const struct nlmsghdr *nlh, const struct nlattr **tb, unsigned max)
{
	size_t off = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg));

	if (nlh->nlmsg_len < off)
		return -EINVAL;
	return attrs((const char *)nlh + off, nlh->nlmsg_len - off, tb, max);
}

static const void *pl(const struct nlattr *a)
{
	return (const char *)a + NLA_HDRLEN;
}

static size_t plen(const struct nlattr *a)
{
	return a->nla_len - NLA_HDRLEN;
}

static int get_u8(const struct nlattr *a, uint8_t *v)
{
	if (plen(a) != sizeof(*v))
		return -EINVAL;
	*v = *(const uint8_t *)pl(a);
	return 0;
}

static int get_u16(const struct nlattr *a, uint16_t *v)        /* raw (network order) */
{
	if (plen(a) != sizeof(*v))
		return -EINVAL;
	memcpy(v, pl(a), sizeof(*v));
	return 0;
}

static int get_be32(const struct nlattr *a, uint32_t *v)
{
	if (plen(a) != sizeof(*v))
		return -EINVAL;
	memcpy(v, pl(a), sizeof(*v));
	*v = ntohl(*v);
	return 0;
}

static int get_bin(const struct nlattr *a, void *v, size_t len)
{
	if (plen(a) != len)
		return -EINVAL;
	memcpy(v, pl(a), len);
	return 0;
}

static int parse_tuple(const struct nlattr *nest, int l3, struct ct_tuple *t,
		       uint8_t *l4)
{
	const struct nlattr *tb[CTA_TUPLE_MAX + 1] = { 0 };
	const struct nlattr *ip[CTA_IP_MAX + 1] = { 0 };
	const struct nlattr *pr[CTA_PROTO_MAX + 1] = { 0 };

	memset(t, 0, sizeof(*t));
	if (nested(nest, tb, CTA_TUPLE_MAX) < 0 || !tb[CTA_TUPLE_IP] ||
	    !tb[CTA_TUPLE_PROTO])
		return -EINVAL;
	if (nested(tb[CTA_TUPLE_IP], ip, CTA_IP_MAX) < 0 ||
	    nested(tb[CTA_TUPLE_PROTO], pr, CTA_PROTO_MAX) < 0)
		return -EINVAL;
	if (l3 == AF_INET) {
		if (!ip[CTA_IP_V4_SRC] || !ip[CTA_IP_V4_DST] ||
		    get_bin(ip[CTA_IP_V4_SRC], &t->src.ip4, 4) ||
		    get_bin(ip[CTA_IP_V4_DST], &t->dst.ip4, 4))
			return -EINVAL;
	} else if (l3 == AF_INET6) {
		if (!ip[CTA_IP_V6_SRC] || !ip[CTA_IP_V6_DST] ||
		    get_bin(ip[CTA_IP_V6_SRC], t->src.ip6, 16) ||
		    get_bin(ip[CTA_IP_V6_DST], t->dst.ip6, 16))
			return -EINVAL;
	} else {
		return -EINVAL;
	}
	if (!pr[CTA_PROTO_NUM] || get_u8(pr[CTA_PROTO_NUM], l4))
		return -EINVAL;
	if (pr[CTA_PROTO_SRC_PORT] && get_u16(pr[CTA_PROTO_SRC_PORT], &t->sport))
		return -EINVAL;
	if (pr[CTA_PROTO_DST_PORT] && get_u16(pr[CTA_PROTO_DST_PORT], &t->dport))
		return -EINVAL;
	int id = l3 == AF_INET ? CTA_PROTO_ICMP_ID : CTA_PROTO_ICMPV6_ID;
	int ty = l3 == AF_INET ? CTA_PROTO_ICMP_TYPE : CTA_PROTO_ICMPV6_TYPE;
	int co = l3 == AF_INET ? CTA_PROTO_ICMP_CODE : CTA_PROTO_ICMPV6_CODE;
	if (pr[id] && get_u16(pr[id], &t->sport))
		return -EINVAL;
	if (pr[ty] && get_u8(pr[ty], &t->icmp_type))
		return -EINVAL;
	if (pr[co] && get_u8(pr[co], &t->icmp_code))
		return -EINVAL;
	return 0;
}

static int parse_seqadj(const struct nlattr *nest, struct ct_seqadj *s)
{
	const struct nlattr *tb[CTA_SEQADJ_MAX + 1] = { 0 };

	if (nested(nest, tb, CTA_SEQADJ_MAX) < 0)
		return -EINVAL;
	if (tb[CTA_SEQADJ_CORRECTION_POS] && get_be32(tb[CTA_SEQADJ_CORRECTION_POS], &s->pos))
		return -EINVAL;
	if (tb[CTA_SEQADJ_OFFSET_BEFORE] && get_be32(tb[CTA_SEQADJ_OFFSET_BEFORE], &s->before))
		return -EINVAL;
	if (tb[CTA_SEQADJ_OFFSET_AFTER] && get_be32(tb[CTA_SEQADJ_OFFSET_AFTER], &s->after))
		return -EINVAL;
	return 0;
}

static int parse_protoinfo(const struct nlattr *nest, struct ct *ct)
{
	const struct nlattr *tb[CTA_PROTOINFO_MAX + 1] = { 0 };

	if (nested(nest, tb, CTA_PROTOINFO_MAX) < 0)
		return -EINVAL;
	if (tb[CTA_PROTOINFO_TCP]) {
		const struct nlattr *t[CTA_PROTOINFO_TCP_MAX + 1] = { 0 };
		if (nested(tb[CTA_PROTOINFO_TCP], t, CTA_PROTOINFO_TCP_MAX) < 0)
			return -EINVAL;
		if (t[CTA_PROTOINFO_TCP_STATE] && get_u8(t[CTA_PROTOINFO_TCP_STATE], &ct->tcp.state))
			return -EINVAL;
		if (t[CTA_PROTOINFO_TCP_WSCALE_ORIGINAL] &&
		    get_u8(t[CTA_PROTOINFO_TCP_WSCALE_ORIGINAL], &ct->tcp.wscale[0]))
			return -EINVAL;
		if (t[CTA_PROTOINFO_TCP_WSCALE_REPLY] &&
		    get_u8(t[CTA_PROTOINFO_TCP_WSCALE_REPLY], &ct->tcp.wscale[1]))
			return -EINVAL;
		const int fl[2] = { CTA_PROTOINFO_TCP_FLAGS_ORIGINAL, CTA_PROTOINFO_TCP_FLAGS_REPLY };
		for (int i = 0; i < 2; i++) {
			if (!t[fl[i]])
				continue;
			if (plen(t[fl[i]]) < 1)
				return -EINVAL;
			ct->tcp.flags[i] = *(const uint8_t *)pl(t[fl[i]]);
		}
		ct->has |= CT_HAS_TCP;
	}
	if (tb[CTA_PROTOINFO_SCTP]) {
		const struct nlattr *t[CTA_PROTOINFO_SCTP_MAX + 1] = { 0 };
		if (nested(tb[CTA_PROTOINFO_SCTP], t, CTA_PROTOINFO_SCTP_MAX) < 0)
			return -EINVAL;
		if (t[CTA_PROTOINFO_SCTP_STATE] && get_u8(t[CTA_PROTOINFO_SCTP_STATE], &ct->sctp.state))
			return -EINVAL;
		if (t[CTA_PROTOINFO_SCTP_VTAG_ORIGINAL] &&
		    get_be32(t[CTA_PROTOINFO_SCTP_VTAG_ORIGINAL], &ct->sctp.vtag[0]))
			return -EINVAL;
		if (t[CTA_PROTOINFO_SCTP_VTAG_REPLY] &&
		    get_be32(t[CTA_PROTOINFO_SCTP_VTAG_REPLY], &ct->sctp.vtag[1]))
			return -EINVAL;
		ct->has |= CT_HAS_SCTP;
	}
	if (tb[CTA_PROTOINFO_DCCP]) {
		const struct nlattr *t[CTA_PROTOINFO_DCCP_MAX + 1] = { 0 };
		if (nested(tb[CTA_PROTOINFO_DCCP], t, CTA_PROTOINFO_DCCP_MAX) < 0)
			return -EINVAL;
		if (t[CTA_PROTOINFO_DCCP_STATE] && get_u8(t[CTA_PROTOINFO_DCCP_STATE], &ct->dccp.state))
			return -EINVAL;
		if (t[CTA_PROTOINFO_DCCP_ROLE] && get_u8(t[CTA_PROTOINFO_DCCP_ROLE], &ct->dccp.role))
			return -EINVAL;
		if (t[CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ]) {
			uint64_t v;
			if (plen(t[CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ]) != sizeof(v))
				return -EINVAL;
			memcpy(&v, pl(t[CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ]), sizeof(v));
			ct->dccp.hs_seq = be64toh(v);
		}
		ct->has |= CT_HAS_DCCP;
	}
	return 0;
}

int ctnl_parse(const void *buf, size_t len, struct ct *ct)
{
	const struct nlmsghdr *nlh = buf;
	const struct nlattr *tb[CTA_MAX + 1] = { 0 };

	memset(ct, 0, sizeof(*ct));
	if (len < sizeof(*nlh) || nlh->nlmsg_len > len ||
	    nlh->nlmsg_len < MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(struct nfgenmsg)))
		return -EINVAL;
	const struct nfgenmsg *nfg = mnl_nlmsg_get_payload(nlh);
	ct->l3 = nfg->nfgen_family;
	if (msg_attrs(nlh, tb, CTA_MAX) < 0 || !tb[CTA_TUPLE_ORIG])
		return -EINVAL;
	if (parse_tuple(tb[CTA_TUPLE_ORIG], ct->l3, &ct->orig, &ct->l4))
		return -EINVAL;
	if (tb[CTA_TUPLE_REPLY]) {
		uint8_t l4r;
		if (parse_tuple(tb[CTA_TUPLE_REPLY], ct->l3, &ct->reply, &l4r) || l4r != ct->l4)
			return -EINVAL;
		ct->has |= CT_HAS_REPLY;
	}
	if (tb[CTA_STATUS]) {
		if (get_be32(tb[CTA_STATUS], &ct->status))
			return -EINVAL;
		ct->has |= CT_HAS_STATUS;
	}
	if (tb[CTA_TIMEOUT]) {
		if (get_be32(tb[CTA_TIMEOUT], &ct->timeout))
			return -EINVAL;
		ct->has |= CT_HAS_TIMEOUT;
	}
	if (tb[CTA_MARK]) {
		if (get_be32(tb[CTA_MARK], &ct->mark))
			return -EINVAL;
		ct->has |= CT_HAS_MARK;
	}
	if (tb[CTA_SECMARK]) {
		if (get_be32(tb[CTA_SECMARK], &ct->secmark))
			return -EINVAL;
		ct->has |= CT_HAS_SECMARK;
	}
	if (tb[CTA_ID] && get_be32(tb[CTA_ID], &ct->id))
		return -EINVAL;
	if (tb[CTA_ZONE]) {
		uint16_t z;
		if (get_u16(tb[CTA_ZONE], &z))
			return -EINVAL;
		ct->zone = ntohs(z);
		ct->has |= CT_HAS_ZONE;
	}
	if (tb[CTA_PROTOINFO] && parse_protoinfo(tb[CTA_PROTOINFO], ct))
		return -EINVAL;
	if (tb[CTA_SEQ_ADJ_ORIG]) {
		if (parse_seqadj(tb[CTA_SEQ_ADJ_ORIG], &ct->seqadj[0]))
			return -EINVAL;
		ct->has |= CT_HAS_SEQADJ_O;
	}
	if (tb[CTA_SEQ_ADJ_REPLY]) {
		if (parse_seqadj(tb[CTA_SEQ_ADJ_REPLY], &ct->seqadj[1]))
			return -EINVAL;
		ct->has |= CT_HAS_SEQADJ_R;
	}
	if (tb[CTA_HELP]) {
		const struct nlattr *h[CTA_HELP_MAX + 1] = { 0 };
		if (nested(tb[CTA_HELP], h, CTA_HELP_MAX) < 0)
			return -EINVAL;
		if (h[CTA_HELP_NAME]) {
			size_t n = plen(h[CTA_HELP_NAME]);
			const char *s = pl(h[CTA_HELP_NAME]);
			n = strnlen(s, n);
			if (n >= CT_HELPER_LEN)
				return -EINVAL;
			memcpy(ct->helper, s, n);
			ct->helper[n] = 0;
		}
		ct->has |= CT_HAS_HELPER;
	}
	if (tb[CTA_LABELS]) {
		size_t n = plen(tb[CTA_LABELS]);
		if (n > CT_LABELS_LEN)
			return -EINVAL;
		memcpy(ct->labels, pl(tb[CTA_LABELS]), n);
		ct->has |= CT_HAS_LABELS;
	}
	return 0;
}

/* ---- building ---------------------------------------------------------- */

static void put_tuple(struct nlmsghdr *nlh, int type, const struct ct *ct,
		      const struct ct_tuple *t)
{
	struct nlattr *nt = mnl_attr_nest_start(nlh, type);
	struct nlattr *ip = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
	if (ct->l3 == AF_INET) {
		mnl_attr_put_u32(nlh, CTA_IP_V4_SRC, t->src.ip4);
		mnl_attr_put_u32(nlh, CTA_IP_V4_DST, t->dst.ip4);
	} else {
		mnl_attr_put(nlh, CTA_IP_V6_SRC, 16, t->src.ip6);
		mnl_attr_put(nlh, CTA_IP_V6_DST, 16, t->dst.ip6);
	}
	mnl_attr_nest_end(nlh, ip);
	struct nlattr *pr = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
	mnl_attr_put_u8(nlh, CTA_PROTO_NUM, ct->l4);
	if (ct->l4 == IPPROTO_ICMP) {
		mnl_attr_put_u16(nlh, CTA_PROTO_ICMP_ID, t->sport);
		mnl_attr_put_u8(nlh, CTA_PROTO_ICMP_TYPE, t->icmp_type);
		mnl_attr_put_u8(nlh, CTA_PROTO_ICMP_CODE, t->icmp_code);
	} else if (ct->l4 == IPPROTO_ICMPV6) {
		mnl_attr_put_u16(nlh, CTA_PROTO_ICMPV6_ID, t->sport);
		mnl_attr_put_u8(nlh, CTA_PROTO_ICMPV6_TYPE, t->icmp_type);
		mnl_attr_put_u8(nlh, CTA_PROTO_ICMPV6_CODE, t->icmp_code);
	} else {
		mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, t->sport);
		mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, t->dport);
	}
	mnl_attr_nest_end(nlh, pr);
	mnl_attr_nest_end(nlh, nt);
}

static bool nat_has_port(uint8_t l4)
{
	return l4 == IPPROTO_TCP || l4 == IPPROTO_UDP || l4 == IPPROTO_UDPLITE ||
	       l4 == IPPROTO_SCTP || l4 == IPPROTO_DCCP || l4 == IPPROTO_ICMP ||
	       l4 == IPPROTO_ICMPV6;
}

/* A NAT range of exactly one address and one port: the mapping the owner
 * chose.  If it is taken here the kernel refuses the entry (EEXIST) instead
 * of picking another, because the range leaves it no other choice. */
static void put_nat(struct nlmsghdr *nlh, int type, const struct ct *ct,
		    const union ct_addr *a, uint16_t port)
{
	struct nlattr *n = mnl_attr_nest_start(nlh, type);
	if (ct->l3 == AF_INET) {
		mnl_attr_put_u32(nlh, CTA_NAT_V4_MINIP, a->ip4);
		mnl_attr_put_u32(nlh, CTA_NAT_V4_MAXIP, a->ip4);
	} else {
		mnl_attr_put(nlh, CTA_NAT_V6_MINIP, 16, a->ip6);
		mnl_attr_put(nlh, CTA_NAT_V6_MAXIP, 16, a->ip6);
	}
	if (nat_has_port(ct->l4)) {
		struct nlattr *p = mnl_attr_nest_start(nlh, CTA_NAT_PROTO);
		mnl_attr_put_u16(nlh, CTA_PROTONAT_PORT_MIN, port);
		mnl_attr_put_u16(nlh, CTA_PROTONAT_PORT_MAX, port);
		mnl_attr_nest_end(nlh, p);
	}
	mnl_attr_nest_end(nlh, n);
}

static void put_seqadj(struct nlmsghdr *nlh, int type, const struct ct_seqadj *s)
{
	struct nlattr *n = mnl_attr_nest_start(nlh, type);
	mnl_attr_put_u32(nlh, CTA_SEQADJ_CORRECTION_POS, htonl(s->pos));
	mnl_attr_put_u32(nlh, CTA_SEQADJ_OFFSET_BEFORE, htonl(s->before));
	mnl_attr_put_u32(nlh, CTA_SEQADJ_OFFSET_AFTER, htonl(s->after));
	mnl_attr_nest_end(nlh, n);
}

/* Status bits userspace may set; the kernel owns the others (NAT_DONE,
 * SEQ_ADJUST, DYING, ...) and an update that flips CONFIRMED, EXPECTED or
 * DYING is refused with EBUSY. */
#define STATUS_SETTABLE (IPS_SEEN_REPLY | IPS_ASSURED | IPS_CONFIRMED | \
			 IPS_SRC_NAT | IPS_DST_NAT | IPS_FIXED_TIMEOUT)

size_t ctnl_build(void *buf, enum ctnl_op op, const struct ct *ct, bool liberal,
		  uint32_t seq)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) |
			  (op == CTNL_OP_DELETE ? IPCTNL_MSG_CT_DELETE : IPCTNL_MSG_CT_NEW);
	nlh->nlmsg_flags = NLM_F_REQUEST;
	if (op == CTNL_OP_CREATE)
		nlh->nlmsg_flags |= NLM_F_CREATE | NLM_F_EXCL;
	nlh->nlmsg_seq = seq;
	struct nfgenmsg *nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = ct->l3;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = 0;

	put_tuple(nlh, CTA_TUPLE_ORIG, ct, &ct->orig);
	if (ct->zone)            /* absent: the default zone, 0 */
		mnl_attr_put_u16(nlh, CTA_ZONE, htons(ct->zone));
	if (op == CTNL_OP_DELETE)
		return nlh->nlmsg_len;

	struct ct_tuple rep;
	const struct ct_tuple *r = &ct->reply;
	if (!(ct->has & CT_HAS_REPLY)) {
		if (!ct_mirror(ct, &rep))
			rep = ct->orig;         /* the kernel recomputes it anyway */
		r = &rep;
	}
	if (op == CTNL_OP_CREATE && (ct->status & (IPS_SRC_NAT | IPS_DST_NAT))) {
		/* The kernel sets up NAT by comparing the tuple the range asks
		 * for with the inverse of the reply tuple we give: hand it the
		 * reply as it was before NAT, or it sees nothing to translate
		 * and the entry would carry no NAT at all. */
		struct ct_tuple plain = *r;
		bool icmp = ct->l4 == IPPROTO_ICMP || ct->l4 == IPPROTO_ICMPV6;
		if (ct->status & IPS_SRC_NAT) {
			plain.dst = ct->orig.src;
			if (icmp)
				plain.sport = ct->orig.sport;
			else
				plain.dport = ct->orig.sport;
		}
		if (ct->status & IPS_DST_NAT) {
			plain.src = ct->orig.dst;
			if (!icmp)
				plain.sport = ct->orig.dport;
		}
		put_tuple(nlh, CTA_TUPLE_REPLY, ct, &plain);
	} else {
		put_tuple(nlh, CTA_TUPLE_REPLY, ct, r);
	}

	uint32_t status = (ct->status & STATUS_SETTABLE) | IPS_CONFIRMED;
	if (op == CTNL_OP_UPDATE)
		status &= ~(uint32_t)(IPS_SRC_NAT | IPS_DST_NAT);
	mnl_attr_put_u32(nlh, CTA_STATUS, htonl(status));
	mnl_attr_put_u32(nlh, CTA_TIMEOUT,
			 htonl((ct->has & CT_HAS_TIMEOUT) && ct->timeout ? ct->timeout : 1));
	if (ct->mark)
		mnl_attr_put_u32(nlh, CTA_MARK, htonl(ct->mark));

	if (op == CTNL_OP_CREATE) {
		/* The kernel applies DST first, then SRC; each maps the tuple as
		 * the owner's kernel did, read back from the reply tuple. */
		if (ct->status & IPS_DST_NAT)
			put_nat(nlh, CTA_NAT_DST, ct, &r->src, r->sport);
		if (ct->status & IPS_SRC_NAT)
			put_nat(nlh, CTA_NAT_SRC, ct, &r->dst,
				ct->l4 == IPPROTO_ICMP || ct->l4 == IPPROTO_ICMPV6 ?
				r->sport : r->dport);
	}

	if (ct->l4 == IPPROTO_TCP && (ct->has & CT_HAS_TCP)) {
		struct nlattr *pi = mnl_attr_nest_start(nlh, CTA_PROTOINFO);
		struct nlattr *t = mnl_attr_nest_start(nlh, CTA_PROTOINFO_TCP);
		mnl_attr_put_u8(nlh, CTA_PROTOINFO_TCP_STATE, ct->tcp.state);
		mnl_attr_put_u8(nlh, CTA_PROTOINFO_TCP_WSCALE_ORIGINAL, ct->tcp.wscale[0]);
		mnl_attr_put_u8(nlh, CTA_PROTOINFO_TCP_WSCALE_REPLY, ct->tcp.wscale[1]);
		for (int i = 0; i < 2; i++) {
			struct nf_ct_tcp_flags f = {
				.flags = (uint8_t)(ct->tcp.flags[i] |
					 (liberal ? IP_CT_TCP_FLAG_BE_LIBERAL : 0)),
				.mask = 0xff,
			};
			mnl_attr_put(nlh, i ? CTA_PROTOINFO_TCP_FLAGS_REPLY :
				     CTA_PROTOINFO_TCP_FLAGS_ORIGINAL, sizeof(f), &f);
		}
		mnl_attr_nest_end(nlh, t);
		mnl_attr_nest_end(nlh, pi);
	} else if (ct->l4 == IPPROTO_SCTP && (ct->has & CT_HAS_SCTP)) {
		struct nlattr *pi = mnl_attr_nest_start(nlh, CTA_PROTOINFO);
		struct nlattr *t = mnl_attr_nest_start(nlh, CTA_PROTOINFO_SCTP);
		mnl_attr_put_u8(nlh, CTA_PROTOINFO_SCTP_STATE, ct->sctp.state);
		mnl_attr_put_u32(nlh, CTA_PROTOINFO_SCTP_VTAG_ORIGINAL, htonl(ct->sctp.vtag[0]));
		mnl_attr_put_u32(nlh, CTA_PROTOINFO_SCTP_VTAG_REPLY, htonl(ct->sctp.vtag[1]));
		mnl_attr_nest_end(nlh, t);
		mnl_attr_nest_end(nlh, pi);
	} else if (ct->l4 == IPPROTO_DCCP && (ct->has & CT_HAS_DCCP)) {
		struct nlattr *pi = mnl_attr_nest_start(nlh, CTA_PROTOINFO);
		struct nlattr *t = mnl_attr_nest_start(nlh, CTA_PROTOINFO_DCCP);
		mnl_attr_put_u8(nlh, CTA_PROTOINFO_DCCP_STATE, ct->dccp.state);
		mnl_attr_put_u8(nlh, CTA_PROTOINFO_DCCP_ROLE, ct->dccp.role);
		mnl_attr_put_u64(nlh, CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ, htobe64(ct->dccp.hs_seq));
		mnl_attr_nest_end(nlh, t);
		mnl_attr_nest_end(nlh, pi);
	}
	if ((ct->has & CT_HAS_SEQADJ_O) && (ct->seqadj[0].before || ct->seqadj[0].after))
		put_seqadj(nlh, CTA_SEQ_ADJ_ORIG, &ct->seqadj[0]);
	if ((ct->has & CT_HAS_SEQADJ_R) && (ct->seqadj[1].before || ct->seqadj[1].after))
		put_seqadj(nlh, CTA_SEQ_ADJ_REPLY, &ct->seqadj[1]);
	if (op == CTNL_OP_CREATE && ct->helper[0]) {
		/* CTA_HELP_INFO, even empty, makes the kernel call the helper's
		 * from_nlattr(): the FTP helper then picks up sequence tracking on
		 * the next packet, where it would otherwise skip the first command
		 * after the failover (it has not seen where the lines start). */
		struct nlattr *h = mnl_attr_nest_start(nlh, CTA_HELP);
		mnl_attr_put_strz(nlh, CTA_HELP_NAME, ct->helper);
		struct nlattr *info = mnl_attr_nest_start(nlh, CTA_HELP_INFO);
		mnl_attr_nest_end(nlh, info);
		mnl_attr_nest_end(nlh, h);
	}
	static const uint8_t zero[CT_LABELS_LEN];
	if (memcmp(ct->labels, zero, sizeof(zero)) != 0) {
		static const uint8_t ones[CT_LABELS_LEN] = {
			0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
			0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
		mnl_attr_put(nlh, CTA_LABELS, CT_LABELS_LEN, ct->labels);
		mnl_attr_put(nlh, CTA_LABELS_MASK, CT_LABELS_LEN, ones);
	}
	return nlh->nlmsg_len;
}

/* ---- expectations ------------------------------------------------------ */

static int get_str(const struct nlattr *a, char *out, size_t len)
{
	size_t n = plen(a);
	const char *v = pl(a);

	n = strnlen(v, n);
	if (n >= len)
		return -EINVAL;
	memcpy(out, v, n);
	out[n] = 0;
	return 0;
}

int ctnl_exp_parse(const void *buf, size_t len, struct exp *e)
{
	const struct nlmsghdr *nlh = buf;
	const struct nlattr *tb[CTA_EXPECT_MAX + 1] = { 0 };
	uint8_t l4;

	memset(e, 0, sizeof(*e));
	if (len < sizeof(*nlh) || nlh->nlmsg_len > len ||
	    nlh->nlmsg_len < MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(struct nfgenmsg)))
		return -EINVAL;
	const struct nfgenmsg *nfg = mnl_nlmsg_get_payload(nlh);
	e->l3 = nfg->nfgen_family;
	if (msg_attrs(nlh, tb, CTA_EXPECT_MAX) < 0 ||
	    !tb[CTA_EXPECT_MASTER] || !tb[CTA_EXPECT_TUPLE])
		return -EINVAL;
	if (parse_tuple(tb[CTA_EXPECT_MASTER], e->l3, &e->master, &e->master_l4) ||
	    parse_tuple(tb[CTA_EXPECT_TUPLE], e->l3, &e->tuple, &e->l4))
		return -EINVAL;
	if (tb[CTA_EXPECT_MASK]) {
		if (parse_tuple(tb[CTA_EXPECT_MASK], e->l3, &e->mask, &l4))
			return -EINVAL;
		e->has |= EXP_HAS_MASK;
	}
	if (tb[CTA_EXPECT_TIMEOUT] && get_be32(tb[CTA_EXPECT_TIMEOUT], &e->timeout))
		return -EINVAL;
	if (tb[CTA_EXPECT_ID] && get_be32(tb[CTA_EXPECT_ID], &e->id))
		return -EINVAL;
	if (tb[CTA_EXPECT_FLAGS] && get_be32(tb[CTA_EXPECT_FLAGS], &e->flags))
		return -EINVAL;
	if (tb[CTA_EXPECT_CLASS] && get_be32(tb[CTA_EXPECT_CLASS], &e->klass))
		return -EINVAL;
	if (tb[CTA_EXPECT_ZONE]) {
		uint16_t z;
		if (get_u16(tb[CTA_EXPECT_ZONE], &z))
			return -EINVAL;
		e->zone = ntohs(z);
	}
	if (tb[CTA_EXPECT_HELP_NAME]) {
		if (get_str(tb[CTA_EXPECT_HELP_NAME], e->helper, sizeof(e->helper)))
			return -EINVAL;
		e->has |= EXP_HAS_HELPER;
	}
	if (tb[CTA_EXPECT_FN]) {
		if (get_str(tb[CTA_EXPECT_FN], e->fn, sizeof(e->fn)))
			return -EINVAL;
		e->has |= EXP_HAS_FN;
	}
	if (tb[CTA_EXPECT_NAT]) {
		const struct nlattr *n[CTA_EXPECT_NAT_MAX + 1] = { 0 };
		if (nested(tb[CTA_EXPECT_NAT], n, CTA_EXPECT_NAT_MAX) < 0 ||
		    !n[CTA_EXPECT_NAT_DIR] || !n[CTA_EXPECT_NAT_TUPLE] ||
		    get_be32(n[CTA_EXPECT_NAT_DIR], &e->nat_dir) ||
		    parse_tuple(n[CTA_EXPECT_NAT_TUPLE], e->l3, &e->nat, &e->nat_l4))
			return -EINVAL;
		e->has |= EXP_HAS_NAT;
	}
	return 0;
}

static void put_tuple_l4(struct nlmsghdr *nlh, int type, uint8_t l3, uint8_t l4,
			 const struct ct_tuple *t)
{
	struct ct c = { .l3 = l3, .l4 = l4 };
	put_tuple(nlh, type, &c, t);
}

size_t ctnl_exp_build(void *buf, enum ctnl_op op, const struct exp *e, uint32_t seq)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK_EXP << 8) |
			  (op == CTNL_OP_DELETE ? IPCTNL_MSG_EXP_DELETE : IPCTNL_MSG_EXP_NEW);
	nlh->nlmsg_flags = NLM_F_REQUEST | (op == CTNL_OP_DELETE ? 0 : NLM_F_CREATE | NLM_F_EXCL);
	nlh->nlmsg_seq = seq;
	struct nfgenmsg *nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = e->l3;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = 0;

	put_tuple_l4(nlh, CTA_EXPECT_TUPLE, e->l3, e->l4, &e->tuple);
	mnl_attr_put_u16(nlh, CTA_EXPECT_ZONE, htons(e->zone));
	if (op == CTNL_OP_DELETE)
		return nlh->nlmsg_len;
	put_tuple_l4(nlh, CTA_EXPECT_MASTER, e->l3, e->master_l4, &e->master);
	put_tuple_l4(nlh, CTA_EXPECT_MASK, e->l3, e->l4, &e->mask);
	mnl_attr_put_u32(nlh, CTA_EXPECT_TIMEOUT, htonl(e->timeout ? e->timeout : 1));
	/* USERSPACE is the kernel's to set */
	mnl_attr_put_u32(nlh, CTA_EXPECT_FLAGS, htonl(e->flags & ~(uint32_t)NF_CT_EXPECT_USERSPACE));
	mnl_attr_put_u32(nlh, CTA_EXPECT_CLASS, htonl(e->klass));
	if (e->helper[0])
		mnl_attr_put_strz(nlh, CTA_EXPECT_HELP_NAME, e->helper);
	if (e->fn[0])
		mnl_attr_put_strz(nlh, CTA_EXPECT_FN, e->fn);
	if (e->has & EXP_HAS_NAT) {
		struct nlattr *n = mnl_attr_nest_start(nlh, CTA_EXPECT_NAT);
		mnl_attr_put_u32(nlh, CTA_EXPECT_NAT_DIR, htonl(e->nat_dir));
		put_tuple_l4(nlh, CTA_EXPECT_NAT_TUPLE, e->l3, e->nat_l4, &e->nat);
		mnl_attr_nest_end(nlh, n);
	}
	return nlh->nlmsg_len;
}

/* ---- sockets ----------------------------------------------------------- */

static struct mnl_socket *open_sock(unsigned groups)
{
	struct mnl_socket *s = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	if (!s)
		return NULL;
	if (mnl_socket_bind(s, groups, MNL_SOCKET_AUTOPID) < 0) {
		mnl_socket_close(s);
		return NULL;
	}
	return s;
}

int ctnl_open(struct ctnl **out, const struct ctnl_config *cfg)
{
	struct ctnl *nl = calloc(1, sizeof(*nl));
	int err = -ENOMEM;

	if (!nl)
		return -ENOMEM;
	nl->cfg = *cfg;
	nl->nbatch = 1;
	pthread_mutex_init(&nl->mu, NULL);
	pthread_cond_init(&nl->cv_work, NULL);
	pthread_cond_init(&nl->cv_done, NULL);
	for (unsigned i = 0; i < NBATCH; i++)
		/* zeroed: libmnl leaves attribute padding as it finds it */
		if (!(nl->bt[i].buf = calloc(BATCH_MAX, CTNL_MSG_MAX)))
			goto fail;
	nl->ev = open_sock((1u << (NFNLGRP_CONNTRACK_NEW - 1)) |
			   (1u << (NFNLGRP_CONNTRACK_UPDATE - 1)) |
			   (1u << (NFNLGRP_CONNTRACK_DESTROY - 1)) |
			   (cfg->on_exp ? (1u << (NFNLGRP_CONNTRACK_EXP_NEW - 1)) |
					  (1u << (NFNLGRP_CONNTRACK_EXP_DESTROY - 1)) : 0));
	nl->dump = open_sock(0);
	nl->inj = open_sock(0);
	if (!nl->ev || !nl->dump || !nl->inj) {
		err = errno ? -errno : -EIO;
		goto fail;
	}
	int fd = mnl_socket_get_fd(nl->ev);
	int sz = (int)(cfg->event_rcvbuf > (size_t)1 << 30 ? (size_t)1 << 30 : cfg->event_rcvbuf);
	if (sz > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	int one = 1;
	setsockopt(mnl_socket_get_fd(nl->inj), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	int isz = 4 << 20;
	setsockopt(mnl_socket_get_fd(nl->inj), SOL_SOCKET, SO_RCVBUFFORCE, &isz, sizeof(isz));
	nl->inj_portid = mnl_socket_get_portid(nl->inj);
	/* Drop the events our own injections cause in the kernel, before they
	 * take room in the event socket's buffer: committing a million flows
	 * must not overrun our own listener.  (deliver() filters them too, in
	 * case the filter cannot be attached.)  BPF loads words big-endian,
	 * hence htonl() of the host-order nlmsg_pid. */
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct nlmsghdr, nlmsg_pid)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, htonl(nl->inj_portid), 0, 1),
		BPF_STMT(BPF_RET | BPF_K, 0),
		BPF_STMT(BPF_RET | BPF_K, 0xffffffff),
	};
	struct sock_fprog prog = { .len = sizeof(code) / sizeof(code[0]), .filter = code };
	nl->own_filtered = setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) == 0;
	nl->seq = (uint32_t)time(NULL);
	*out = nl;
	return 0;
fail:
	ctnl_close(nl);
	return err;
}

void ctnl_close(struct ctnl *nl)
{
	if (!nl)
		return;
	if (nl->threaded)
		stop_sender(nl);        /* no callbacks: the caller is closing */
	if (nl->ev)
		mnl_socket_close(nl->ev);
	if (nl->dump)
		mnl_socket_close(nl->dump);
	if (nl->inj)
		mnl_socket_close(nl->inj);
	for (unsigned i = 0; i < NBATCH; i++)
		free(nl->bt[i].buf);
	free(nl->errq);
	pthread_cond_destroy(&nl->cv_done);
	pthread_cond_destroy(&nl->cv_work);
	pthread_mutex_destroy(&nl->mu);
	free(nl);
}

int ctnl_event_fd(const struct ctnl *nl)
{
	return mnl_socket_get_fd(nl->ev);
}

const struct ctnl_stats *ctnl_stats(const struct ctnl *nl)
{
	return &nl->st;
}

static bool ct_event(const struct nlmsghdr *nlh, bool dump, enum ctnl_event *ev);
static void deliver_ct(struct ctnl *nl, const struct nlmsghdr *nlh, enum ctnl_event ev,
		       const struct ct *ct, bool dump);

static void deliver(struct ctnl *nl, const struct nlmsghdr *nlh, bool dump)
{
	struct ct ct;
	int type = nlh->nlmsg_type & 0xff;
	enum ctnl_event ev;

	if ((nlh->nlmsg_type >> 8) == NFNL_SUBSYS_CTNETLINK_EXP) {
		struct exp e;
		if (!nl->cfg.on_exp || (type != IPCTNL_MSG_EXP_NEW && type != IPCTNL_MSG_EXP_DELETE))
			return;
		if (ctnl_exp_parse(nlh, nlh->nlmsg_len, &e) < 0) {
			nl->st.events_bad++;
			return;
		}
		nl->st.exp_events++;
		ev = dump ? CTNL_EV_DUMP : type == IPCTNL_MSG_EXP_DELETE ? CTNL_EV_DESTROY : CTNL_EV_NEW;
		nl->cfg.on_exp(nl->cfg.arg, ev, &e,
			       !dump && nl->inj_portid && nlh->nlmsg_pid == nl->inj_portid);
		return;
	}
	if (!ct_event(nlh, dump, &ev))
		return;
	if (ctnl_parse(nlh, nlh->nlmsg_len, &ct) < 0) {
		nl->st.events_bad++;
		return;
	}
	deliver_ct(nl, nlh, ev, &ct, dump);
}

/* A conntrack entry message (not an expectation): which event it is. */
static bool ct_event(const struct nlmsghdr *nlh, bool dump, enum ctnl_event *ev)
{
	int type = nlh->nlmsg_type & 0xff;

	if ((nlh->nlmsg_type >> 8) != NFNL_SUBSYS_CTNETLINK)
		return false;
	if (type == IPCTNL_MSG_CT_DELETE)
		*ev = CTNL_EV_DESTROY;
	else if (type != IPCTNL_MSG_CT_NEW)
		return false;
	else if (dump)
		*ev = CTNL_EV_DUMP;
	else if (nlh->nlmsg_flags & (NLM_F_CREATE | NLM_F_EXCL))
		*ev = CTNL_EV_NEW;
	else
		*ev = CTNL_EV_UPDATE;
	return true;
}

static void deliver_ct(struct ctnl *nl, const struct nlmsghdr *nlh, enum ctnl_event ev,
		       const struct ct *ct, bool dump)
{
	bool own = !dump && nl->inj_portid && nlh->nlmsg_pid == nl->inj_portid;

	if (dump)
		nl->st.dumped++;
	else
		nl->st.events++;
	if (own)
		nl->st.events_own++;
	nl->cfg.on_event(nl->cfg.arg, ev, ct, own);
}

int ctnl_events_new(struct ctnl *nl, bool on)
{
	int grp = NFNLGRP_CONNTRACK_NEW;

	if (setsockopt(mnl_socket_get_fd(nl->ev), SOL_NETLINK,
		       on ? NETLINK_ADD_MEMBERSHIP : NETLINK_DROP_MEMBERSHIP, &grp, sizeof(grp)) < 0)
		return -errno;
	return 0;
}

/* Events are read EV_SLOTS at a time with recvmmsg(): one system call for
 * many (each event is a datagram of its own, a few hundred bytes). */
int ctnl_event_read(struct ctnl *nl, int budget)
{
	int fd = mnl_socket_get_fd(nl->ev), n = 0;
	struct mmsghdr mm[EV_SLOTS];
	struct iovec iov[EV_SLOTS];
	enum ctnl_event evs[EV_SLOTS];
	int parsed[EV_SLOTS];
	const struct ct *batch[EV_SLOTS];

	for (unsigned i = 0; i < EV_SLOTS; i++) {
		iov[i].iov_base = nl->evbuf[i];
		iov[i].iov_len = sizeof(nl->evbuf[i]);
		memset(&mm[i].msg_hdr, 0, sizeof(mm[i].msg_hdr));
		mm[i].msg_hdr.msg_iov = &iov[i];
		mm[i].msg_hdr.msg_iovlen = 1;
	}
	while (n < budget) {
		unsigned want = budget - n < EV_SLOTS ? (unsigned)(budget - n) : EV_SLOTS;
		int r = recvmmsg(fd, mm, want, MSG_DONTWAIT, NULL);
		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				break;
			if (errno == ENOBUFS) {
				/* Empty the queue before the caller dumps: the kernel
				 * reports one overrun per congestion, and clears the
				 * congestion only once our queue is empty, so events
				 * dropped while the dump runs on a still-full queue would
				 * be lost with no second ENOBUFS.  What we discard here
				 * happened before the dump, which shows its result. */
				nl->st.overruns++;
				while (recv(fd, nl->rbuf, sizeof(nl->rbuf), MSG_DONTWAIT) > 0 ||
				       errno == ENOBUFS || errno == EINTR)
					nl->st.discarded++;
				return -ENOBUFS;
			}
			return -errno;
		}
		/* An error after the first datagram is kept by the kernel for the
		 * next call: an overrun is never lost by reading many at once.
		 * The entries are parsed first and the caller told which it will
		 * look up (on_prefetch), then delivered in order. */
		unsigned nb = 0;
		for (int i = 0; i < r; i++) {
			const struct nlmsghdr *nlh = (const struct nlmsghdr *)nl->evbuf[i];
			int len = (int)mm[i].msg_len;
			parsed[i] = 0;
			if ((mm[i].msg_hdr.msg_flags & MSG_TRUNC) || !mnl_nlmsg_ok(nlh, len) ||
			    !ct_event(nlh, false, &evs[i]))
				continue;
			if (ctnl_parse(nlh, nlh->nlmsg_len, &nl->evct[i]) < 0) {
				parsed[i] = -1;
				continue;
			}
			parsed[i] = 1;
			batch[nb++] = &nl->evct[i];
		}
		if (nb && nl->cfg.on_prefetch)
			nl->cfg.on_prefetch(nl->cfg.arg, batch, nb);
		for (int i = 0; i < r; i++) {
			if (mm[i].msg_hdr.msg_flags & MSG_TRUNC) {
				nl->st.events_bad++;        /* larger than a slot */
				continue;
			}
			const struct nlmsghdr *nlh = (const struct nlmsghdr *)nl->evbuf[i];
			int len = (int)mm[i].msg_len;
			for (bool first = true; mnl_nlmsg_ok(nlh, len); first = false) {
				if (first && parsed[i] > 0)
					deliver_ct(nl, nlh, evs[i], &nl->evct[i], false);
				else if (first && parsed[i] < 0)
					nl->st.events_bad++;
				else
					deliver(nl, nlh, false);
				nlh = mnl_nlmsg_next(nlh, &len);
			}
		}
		n += r;
		if ((unsigned)r < want)
			break;          /* the queue is empty */
	}
	return n;
}

static int dump_cb(const struct nlmsghdr *nlh, void *arg)
{
	deliver(arg, nlh, true);
	return MNL_CB_OK;
}

/* Ask for a dump of the conntrack (IPCTNL_MSG_CT_GET) or expectation
 * (IPCTNL_MSG_EXP_GET) table on the dump socket; read with ctnl_dump_read(). */
static int dump_start(struct ctnl *nl, uint16_t type)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);

	if (nl->dump_seq)
		return -EBUSY;
	nl->dump_seq = ++nl->seq;
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = nl->dump_seq;
	struct nfgenmsg *nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = AF_UNSPEC;
	nfg->version = NFNETLINK_V0;
	if (mnl_socket_sendto(nl->dump, nlh, nlh->nlmsg_len) < 0) {
		nl->dump_seq = 0;
		return -errno;
	}
	return 0;
}

int ctnl_dump_start(struct ctnl *nl)
{
	return dump_start(nl, (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET);
}

int ctnl_dump_read(struct ctnl *nl, int budget, bool wait)
{
	uint32_t portid = mnl_socket_get_portid(nl->dump);
	int fd = mnl_socket_get_fd(nl->dump);

	if (!nl->dump_seq)
		return 1;
	for (int i = 0; i < budget; i++) {
		ssize_t r = recv(fd, nl->rbuf, sizeof(nl->rbuf), wait ? 0 : MSG_DONTWAIT);
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return 0;
		int ret = r < 0 ? -1 : mnl_cb_run(nl->rbuf, (size_t)r, nl->dump_seq, portid,
						  dump_cb, nl);
		if (ret < 0) {
			int err = errno ? -errno : -EIO;
			nl->dump_seq = 0;
			return err;
		}
		if (ret == MNL_CB_STOP) {
			nl->dump_seq = 0;
			if (nl->cfg.on_dump_done)
				nl->cfg.on_dump_done(nl->cfg.arg);
			return 1;
		}
	}
	return 0;
}

int ctnl_dump_fd(const struct ctnl *nl)
{
	return mnl_socket_get_fd(nl->dump);
}

int ctnl_dump_finish(struct ctnl *nl)
{
	int ret = 0;
	while (nl->dump_seq && (ret = ctnl_dump_read(nl, 1 << 30, true)) == 0)
		;
	return ret < 0 ? ret : 0;
}

/* A whole dump of one type, synchronously (finishing one under way first:
 * one dump at a time on the socket). */
static int dump_sync(struct ctnl *nl, uint16_t type)
{
	ctnl_dump_finish(nl);
	int ret = dump_start(nl, type);
	while (ret == 0)
		ret = ctnl_dump_read(nl, 1 << 30, true);
	return ret < 0 ? ret : 0;
}

int ctnl_dump(struct ctnl *nl)
{
	return dump_sync(nl, (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET);
}

/* ---- injection ----------------------------------------------------------- */

/* Send one batch and read back the kernel's verdicts: ctnetlink handles the
 * whole batch inside sendmsg, so every error is queued when it returns.  Runs
 * in the sending thread while there is one: it touches only the batch, the
 * inject socket and inj_rbuf. */
static void send_batch(struct ctnl *nl, struct batch *b)
{
	int fd = mnl_socket_get_fd(nl->inj);

	b->nerr = 0;
	b->send_err = 0;
	if (mnl_socket_sendto(nl->inj, b->buf, b->len) < 0)
		b->send_err = -errno;
	for (;;) {
		ssize_t r = recv(fd, nl->inj_rbuf, sizeof(nl->inj_rbuf), MSG_DONTWAIT);
		if (r <= 0)
			return;
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)nl->inj_rbuf;
		int len = (int)r;
		while (mnl_nlmsg_ok(nlh, len)) {
			if (nlh->nlmsg_type == NLMSG_ERROR &&
			    nlh->nlmsg_len >= mnl_nlmsg_size(sizeof(struct nlmsgerr))) {
				const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
				uint32_t idx = e->msg.nlmsg_seq - b->seq0;
				if (e->error && idx < b->n && b->nerr < BATCH_MAX) {
					b->err_idx[b->nerr] = (uint8_t)idx;
					b->err_val[b->nerr++] = e->error;
				}
			}
			nlh = mnl_nlmsg_next(nlh, &len);
		}
	}
}

static void *sender(void *arg)
{
	struct ctnl *nl = arg;

	pthread_mutex_lock(&nl->mu);
	for (;;) {
		while (nl->sent == nl->filled && !nl->stop)
			pthread_cond_wait(&nl->cv_work, &nl->mu);
		if (nl->sent == nl->filled)
			break;
		struct batch *b = &nl->bt[nl->sent % NBATCH];
		pthread_mutex_unlock(&nl->mu);
		send_batch(nl, b);
		pthread_mutex_lock(&nl->mu);
		nl->sent++;
		pthread_cond_signal(&nl->cv_done);
	}
	pthread_mutex_unlock(&nl->mu);
	return NULL;
}

static struct batch *cur_batch(struct ctnl *nl)
{
	return &nl->bt[nl->filled % NBATCH];
}

/* Hand the batch being filled to the sender (or send it now). */
static void submit(struct ctnl *nl)
{
	if (cur_batch(nl)->n == 0)
		return;
	if (!nl->threaded) {
		send_batch(nl, cur_batch(nl));
		nl->filled++;
		nl->sent++;
		return;
	}
	pthread_mutex_lock(&nl->mu);
	nl->filled++;
	pthread_cond_signal(&nl->cv_work);
	pthread_mutex_unlock(&nl->mu);
}

static void errq_push(struct ctnl *nl, const struct pend *p, int err)
{
	if (nl->errq_n == nl->errq_cap) {
		size_t cap = nl->errq_cap ? 2 * nl->errq_cap : BATCH_MAX;
		struct inj_err *q = realloc(nl->errq, cap * sizeof(*q));
		if (!q)
			return;         /* counted in the stats, not reported */
		nl->errq = q;
		nl->errq_cap = cap;
	}
	nl->errq[nl->errq_n].p = *p;
	nl->errq[nl->errq_n++].err = err;
}

/* Take back the oldest batch handed to the sender (waiting for it if it is
 * still in flight): count it, queue its errors for report_errors(). */
static void reclaim_one(struct ctnl *nl)
{
	if (nl->threaded) {
		pthread_mutex_lock(&nl->mu);
		while (nl->sent == nl->reclaimed)
			pthread_cond_wait(&nl->cv_done, &nl->mu);
		pthread_mutex_unlock(&nl->mu);
	}
	struct batch *b = &nl->bt[nl->reclaimed % NBATCH];
	nl->st.batches++;
	if (b->send_err) {
		if (!nl->send_err)
			nl->send_err = b->send_err;
		for (unsigned i = 0; i < b->n; i++)
			nl->st.inject_errors[b->pending[i].op]++;
	}
	for (unsigned i = 0; i < b->nerr; i++) {
		const struct pend *p = &b->pending[b->err_idx[i]];
		if (p->is_exp)
			nl->st.exp_errors++;
		else
			nl->st.inject_errors[p->op]++;
		errq_push(nl, p, b->err_val[i]);
	}
	b->n = 0;
	b->len = 0;
	nl->reclaimed++;
}

/* Hand the queued errors to the callbacks, which may queue retries (and so
 * reclaim more batches, whose errors join the queue and are handed on by
 * this same loop). */
static void report_errors(struct ctnl *nl)
{
	if (nl->reporting)
		return;
	nl->reporting = true;
	while (nl->errq_head < nl->errq_n) {
		struct inj_err e = nl->errq[nl->errq_head++];
		if (e.p.is_exp && nl->cfg.on_exp_error)
			nl->cfg.on_exp_error(nl->cfg.arg, e.p.op, &e.p.exp, e.err);
		else if (!e.p.is_exp && nl->cfg.on_error)
			nl->cfg.on_error(nl->cfg.arg, e.p.op, &e.p.ct, e.err);
	}
	nl->errq_head = nl->errq_n = 0;
	nl->reporting = false;
}

int ctnl_inject_flush(struct ctnl *nl)
{
	submit(nl);
	while (nl->reclaimed < nl->filled)
		reclaim_one(nl);
	/* retries the callbacks queue wait for the next flush */
	report_errors(nl);
	int err = nl->send_err;
	nl->send_err = 0;
	return err;
}

/* The next slot of the batch being filled (handing it to the sender first
 * when it is full); *seq gets the message's sequence number. */
static void *batch_slot(struct ctnl *nl, enum ctnl_op op, bool is_exp, uint32_t *seq)
{
	for (;;) {
		if (cur_batch(nl)->n == BATCH_MAX)
			submit(nl);
		while (nl->filled - nl->reclaimed >= nl->nbatch)
			reclaim_one(nl);
		if (nl->reporting || nl->errq_head == nl->errq_n)
			break;
		report_errors(nl);            /* which may fill the batch: look again */
	}
	struct batch *b = cur_batch(nl);
	if (b->n == 0)
		b->seq0 = nl->seq + 1;
	*seq = ++nl->seq;
	b->pending[b->n].op = op;
	b->pending[b->n].is_exp = is_exp;
	return b->buf + b->len;
}

int ctnl_inject(struct ctnl *nl, enum ctnl_op op, const struct ct *ct)
{
	uint32_t seq;
	void *at = batch_slot(nl, op, false, &seq);
	struct batch *b = cur_batch(nl);

	b->pending[b->n].ct = *ct;
	b->len += ctnl_build(at, op, ct, nl->cfg.tcp_liberal && op != CTNL_OP_DELETE, seq);
	b->n++;
	nl->st.injected[op]++;
	return 0;
}

int ctnl_inject_exp(struct ctnl *nl, enum ctnl_op op, const struct exp *e)
{
	uint32_t seq;
	void *at = batch_slot(nl, op, true, &seq);
	struct batch *b = cur_batch(nl);

	b->pending[b->n].exp = *e;
	b->len += ctnl_exp_build(at, op, e, seq);
	b->n++;
	nl->st.exp_injected++;
	return 0;
}

static void stop_sender(struct ctnl *nl)
{
	pthread_mutex_lock(&nl->mu);
	nl->stop = true;
	pthread_cond_signal(&nl->cv_work);
	pthread_mutex_unlock(&nl->mu);
	pthread_join(nl->thr, NULL);        /* it sends what it was handed first */
	nl->threaded = false;
	nl->nbatch = 1;
}

int ctnl_inject_thread(struct ctnl *nl, bool on)
{
	if (on == nl->threaded)
		return 0;
	if (!on) {
		int err = ctnl_inject_flush(nl);
		stop_sender(nl);
		return err;
	}
	/* signals stay with the main thread (the event loop's handlers) */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	nl->stop = false;
	int err = pthread_create(&nl->thr, NULL, sender, nl);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		return -err;
	nl->threaded = true;
	nl->nbatch = NBATCH;
	return 0;
}

int ctnl_exp_dump(struct ctnl *nl)
{
	if (!nl->cfg.on_exp)
		return 0;
	return dump_sync(nl, (NFNL_SUBSYS_CTNETLINK_EXP << 8) | IPCTNL_MSG_EXP_GET);
}

struct get_ctx {
	struct ct *out;
	int found;
};

static int get_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct get_ctx *g = arg;
	if ((nlh->nlmsg_type & 0xff) == IPCTNL_MSG_CT_NEW &&
	    ctnl_parse(nlh, nlh->nlmsg_len, g->out) == 0)
		g->found = 1;
	return MNL_CB_OK;
}

int ctnl_get(struct ctnl *nl, const struct ct *key, struct ct *out)
{
	char buf[CTNL_MSG_MAX] = { 0 };     /* attribute padding is sent as found */
	struct get_ctx g = { out, 0 };

	/* the dump socket: one request at a time, so finish a dump under way */
	ctnl_dump_finish(nl);
	uint32_t seq = ++nl->seq;
	size_t len = ctnl_build(buf, CTNL_OP_DELETE, key, false, seq);     /* key only */
	struct nlmsghdr *nlh = (struct nlmsghdr *)buf;
	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	if (mnl_socket_sendto(nl->dump, buf, len) < 0)
		return -errno;
	uint32_t portid = mnl_socket_get_portid(nl->dump);
	for (;;) {
		ssize_t r = recv(mnl_socket_get_fd(nl->dump), nl->rbuf, sizeof(nl->rbuf), 0);
		if (r < 0)
			return -errno;
		int ret = mnl_cb_run(nl->rbuf, (size_t)r, seq, portid, get_cb, &g);
		if (ret < 0)
			return g.found ? 0 : -errno;
		if (ret == MNL_CB_STOP)
			return g.found ? 0 : -ENOENT;
	}
}
