/* ct.c — helpers on struct ct that know nothing of netlink or the wire. */
#include "kernel/ct.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

bool ct_tuple_equal(const struct ct_tuple *a, const struct ct_tuple *b)
{
	return memcmp(&a->src, &b->src, sizeof(a->src)) == 0 &&
	       memcmp(&a->dst, &b->dst, sizeof(a->dst)) == 0 &&
	       a->sport == b->sport && a->dport == b->dport &&
	       a->icmp_type == b->icmp_type && a->icmp_code == b->icmp_code;
}

bool ct_tuple_is_zero(const struct ct_tuple *t)
{
	static const struct ct_tuple zero;
	return ct_tuple_equal(t, &zero);
}

bool ct_key_equal(const struct ct *a, const struct ct *b)
{
	return a->l3 == b->l3 && a->l4 == b->l4 && a->zone == b->zone &&
	       memcmp(&a->orig.src, &b->orig.src, sizeof(a->orig.src)) == 0 &&
	       memcmp(&a->orig.dst, &b->orig.dst, sizeof(a->orig.dst)) == 0 &&
	       a->orig.sport == b->orig.sport && a->orig.dport == b->orig.dport &&
	       a->orig.icmp_type == b->orig.icmp_type &&
	       a->orig.icmp_code == b->orig.icmp_code;
}

static inline uint64_t mix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

uint64_t ct_key_hash(const struct ct *ct)
{
	uint64_t h = (uint64_t)ct->l3 << 56 | (uint64_t)ct->l4 << 48 |
		     (uint64_t)ct->zone << 32 |
		     (uint64_t)ct->orig.sport << 16 | ct->orig.dport;
	h = mix64(h ^ ((uint64_t)ct->orig.icmp_type << 8 | ct->orig.icmp_code));
	for (int i = 0; i < 4; i++)
		h = mix64(h ^ ((uint64_t)ct->orig.src.w[i] << 32 | ct->orig.dst.w[i]));
	return h;
}

void ct_merge(struct ct *dst, const struct ct *src)
{
	uint32_t h = src->has;

	if (h & CT_HAS_REPLY)
		dst->reply = src->reply;
	if (h & CT_HAS_STATUS)
		dst->status = src->status;
	if (h & CT_HAS_TIMEOUT)
		dst->timeout = src->timeout;
	if (h & CT_HAS_MARK)
		dst->mark = src->mark;
	if (h & CT_HAS_SECMARK)
		dst->secmark = src->secmark;
	if (h & CT_HAS_TCP)
		dst->tcp = src->tcp;
	if (h & CT_HAS_SCTP)
		dst->sctp = src->sctp;
	if (h & CT_HAS_DCCP)
		dst->dccp = src->dccp;
	if (h & CT_HAS_SEQADJ_O)
		dst->seqadj[0] = src->seqadj[0];
	if (h & CT_HAS_SEQADJ_R)
		dst->seqadj[1] = src->seqadj[1];
	if (h & CT_HAS_HELPER)
		memcpy(dst->helper, src->helper, sizeof(dst->helper));
	if (h & CT_HAS_LABELS)
		memcpy(dst->labels, src->labels, sizeof(dst->labels));
	if (src->id)
		dst->id = src->id;
	dst->has |= h;
}

bool ct_differs(const struct ct *have, const struct ct *src)
{
	uint32_t h = src->has;

	if (h & ~have->has & ~CT_HAS_TIMEOUT)
		return true;            /* a part we did not know */
	return ((h & CT_HAS_REPLY) && !ct_tuple_equal(&have->reply, &src->reply)) ||
	       ((h & CT_HAS_STATUS) && have->status != src->status) ||
	       ((h & CT_HAS_MARK) && have->mark != src->mark) ||
	       ((h & CT_HAS_SECMARK) && have->secmark != src->secmark) ||
	       ((h & CT_HAS_TCP) &&
		(have->tcp.state != src->tcp.state ||
		 memcmp(have->tcp.wscale, src->tcp.wscale, sizeof(src->tcp.wscale)) != 0 ||
		 memcmp(have->tcp.flags, src->tcp.flags, sizeof(src->tcp.flags)) != 0)) ||
	       ((h & CT_HAS_SCTP) &&
		(have->sctp.state != src->sctp.state || have->sctp.vtag[0] != src->sctp.vtag[0] ||
		 have->sctp.vtag[1] != src->sctp.vtag[1])) ||
	       ((h & CT_HAS_DCCP) &&
		(have->dccp.state != src->dccp.state || have->dccp.role != src->dccp.role ||
		 have->dccp.hs_seq != src->dccp.hs_seq)) ||
	       ((h & CT_HAS_SEQADJ_O) &&
		memcmp(&have->seqadj[0], &src->seqadj[0], sizeof(src->seqadj[0])) != 0) ||
	       ((h & CT_HAS_SEQADJ_R) &&
		memcmp(&have->seqadj[1], &src->seqadj[1], sizeof(src->seqadj[1])) != 0) ||
	       ((h & CT_HAS_HELPER) && strncmp(have->helper, src->helper, sizeof(src->helper)) != 0) ||
	       ((h & CT_HAS_LABELS) && memcmp(have->labels, src->labels, sizeof(src->labels)) != 0);
}

bool ct_has_ports(uint8_t l4)
{
	return l4 == IPPROTO_TCP || l4 == IPPROTO_UDP || l4 == IPPROTO_UDPLITE ||
	       l4 == IPPROTO_SCTP || l4 == IPPROTO_DCCP;
}

bool ct_mirror(const struct ct *ct, struct ct_tuple *out)
{
	if (!ct_has_ports(ct->l4))
		return false;
	memset(out, 0, sizeof(*out));
	out->src = ct->orig.dst;
	out->dst = ct->orig.src;
	out->sport = ct->orig.dport;
	out->dport = ct->orig.sport;
	return true;
}

static bool prefix_match(const uint8_t *a, const uint8_t *p, unsigned plen)
{
	unsigned bytes = plen / 8, bits = plen % 8;

	if (memcmp(a, p, bytes) != 0)
		return false;
	if (bits == 0)
		return true;
	uint8_t m = (uint8_t)(0xff << (8 - bits));
	return (a[bytes] & m) == (p[bytes] & m);
}

bool ct_has_addr(const struct ct *ct, int family, const union ct_addr *a,
		 unsigned plen)
{
	if (ct->l3 != family)
		return false;
	const union ct_addr *all[4] = { &ct->orig.src, &ct->orig.dst,
					&ct->reply.src, &ct->reply.dst };
	for (int i = 0; i < 4; i++)
		if (prefix_match((const uint8_t *)all[i], (const uint8_t *)a, plen))
			return true;
	return false;
}

static const struct { uint8_t num; const char *name; } protos[] = {
	{ IPPROTO_TCP, "tcp" },     { IPPROTO_UDP, "udp" },
	{ IPPROTO_ICMP, "icmp" },   { IPPROTO_ICMPV6, "icmpv6" },
	{ IPPROTO_SCTP, "sctp" },   { IPPROTO_DCCP, "dccp" },
	{ IPPROTO_GRE, "gre" },     { IPPROTO_UDPLITE, "udplite" },
};

const char *ct_proto_name(uint8_t l4)
{
	static char buf[16];

	for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++)
		if (protos[i].num == l4)
			return protos[i].name;
	snprintf(buf, sizeof(buf), "proto-%u", l4);
	return buf;
}

int ct_proto_by_name(const char *name)
{
	for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++)
		if (strcasecmp(protos[i].name, name) == 0)
			return protos[i].num;
	return -1;
}

const char *ct_tcp_state_name(uint8_t state)
{
	static const char *names[] = {
		"NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT",
		"CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE", "SYN_SENT2",
	};
	return state < sizeof(names) / sizeof(names[0]) ? names[state] : "?";
}

static void fmt_ep(char *out, size_t len, int l3, const union ct_addr *a,
		   uint16_t port, bool ports)
{
	char ab[INET6_ADDRSTRLEN];

	inet_ntop(l3, a, ab, sizeof(ab));
	if (!ports)
		snprintf(out, len, "%s", ab);
	else if (l3 == AF_INET6)
		snprintf(out, len, "[%s]:%u", ab, ntohs(port));
	else
		snprintf(out, len, "%s:%u", ab, ntohs(port));
}

int ct_format(const struct ct *ct, char *buf, size_t len)
{
	char s[64], d[64], rs[64], rd[64];
	bool p = ct_has_ports(ct->l4);

	fmt_ep(s, sizeof(s), ct->l3, &ct->orig.src, ct->orig.sport, p);
	fmt_ep(d, sizeof(d), ct->l3, &ct->orig.dst, ct->orig.dport, p);
	fmt_ep(rs, sizeof(rs), ct->l3, &ct->reply.src, ct->reply.sport, p);
	fmt_ep(rd, sizeof(rd), ct->l3, &ct->reply.dst, ct->reply.dport, p);
	return snprintf(buf, len, "%s %s -> %s reply %s -> %s zone %u",
			ct_proto_name(ct->l4), s, d, rs, rd, ct->zone);
}
