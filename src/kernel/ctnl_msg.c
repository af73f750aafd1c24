/* ctnl_msg.c — ctnetlink messages to and from struct ct / struct exp
 * (ctnl_msg.h): our own bounds-checked attribute walk for parsing, libmnl
 * for building.  No socket here: the fuzzer drives it directly. */
#include "kernel/ctnl_msg.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_conntrack_tcp.h>

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
	/* What the tuple holds is the protocol's, as the kernel's tracker of
	 * that protocol fills it and as put_tuple() writes it: ICMP id, type
	 * and code for ICMP and ICMPv6, ports for the rest.  (Reading by the
	 * family, as once done, took ports and ICMPv6 fields on an ICMP entry
	 * into a key that no message we build can name: found by fuzz_ctnl.) */
	if (*l4 == IPPROTO_ICMP || *l4 == IPPROTO_ICMPV6) {
		bool v4 = *l4 == IPPROTO_ICMP;
		const struct nlattr *id = pr[v4 ? CTA_PROTO_ICMP_ID : CTA_PROTO_ICMPV6_ID];
		const struct nlattr *ty = pr[v4 ? CTA_PROTO_ICMP_TYPE : CTA_PROTO_ICMPV6_TYPE];
		const struct nlattr *co = pr[v4 ? CTA_PROTO_ICMP_CODE : CTA_PROTO_ICMPV6_CODE];
		if ((id && get_u16(id, &t->sport)) || (ty && get_u8(ty, &t->icmp_type)) ||
		    (co && get_u8(co, &t->icmp_code)))
			return -EINVAL;
		return 0;
	}
	if (pr[CTA_PROTO_SRC_PORT] && get_u16(pr[CTA_PROTO_SRC_PORT], &t->sport))
		return -EINVAL;
	if (pr[CTA_PROTO_DST_PORT] && get_u16(pr[CTA_PROTO_DST_PORT], &t->dport))
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

