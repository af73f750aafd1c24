/* ctsync-ctgen — synthetic conntrack entries for the cluster tests, and a
 * normalised dump to compare two kernels' tables.  Written against
 * libnetfilter_conntrack on purpose: neither the flows it creates nor the
 * table it reads pass through ctsync's own ctnetlink code.
 *
 *   create N [SEED]   create N flows: TCP and UDP, IPv4 and IPv6, with SNAT,
 *                     DNAT, both or none, marks, zones 0-2 and labels; flows
 *                     SEED .. SEED+N-1, distinct for up to 480,000 in all
 *   delete N [SEED]   delete those flows
 *   update N [SEED]   give those flows a new mark
 *   dump              one line per entry, sorted by the caller: tuples,
 *                     zone, mark, status bits, protocol state, labels, helper,
 *                     sequence adjustment (no timeouts, counters or ids)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack_tcp.h>

static void v6(struct nf_conntrack *ct, int attr, const char *prefix, unsigned i)
{
	char buf[64];
	struct in6_addr a;
	snprintf(buf, sizeof(buf), "%s%x:%x", prefix, (i >> 16) & 0xffff, i & 0xffff);
	inet_pton(AF_INET6, buf, &a);
	nfct_set_attr(ct, attr, &a);
}

/* Flow number i, as created (the key is what delete and update need). */
static struct nf_conntrack *build(unsigned i)
{
	struct nf_conntrack *ct = nfct_new();
	bool ipv6 = i % 7 == 3;
	bool tcp = i % 2 == 0;
	int nat = i % 4;        /* 0 none, 1 SNAT, 2 DNAT, 3 both */
	uint16_t sport = (uint16_t)(1024 + i % 60000), dport = tcp ? 443 : 53;

	if (ipv6) {
		nfct_set_attr_u8(ct, ATTR_L3PROTO, AF_INET6);
		nfct_set_attr_u8(ct, ATTR_REPL_L3PROTO, AF_INET6);
		v6(ct, ATTR_IPV6_SRC, "2001:db8:100::", i);
		v6(ct, ATTR_IPV6_DST, "2001:db8:200::", i);
		v6(ct, ATTR_REPL_IPV6_SRC, "2001:db8:200::", i);
		v6(ct, ATTR_REPL_IPV6_DST, "2001:db8:100::", i);
		nat = nat & 1;  /* SNAT or none for IPv6 */
	} else {
		nfct_set_attr_u8(ct, ATTR_L3PROTO, AF_INET);
		nfct_set_attr_u8(ct, ATTR_REPL_L3PROTO, AF_INET);
		uint32_t src = htonl(0xc6130000u | (i & 0xffff));      /* 198.19.x.x */
		uint32_t dst = htonl(0xcb007100u | (10 + i % 200));     /* 203.0.113.x */
		nfct_set_attr_u32(ct, ATTR_IPV4_SRC, src);
		nfct_set_attr_u32(ct, ATTR_IPV4_DST, dst);
		nfct_set_attr_u32(ct, ATTR_REPL_IPV4_SRC, dst);
		nfct_set_attr_u32(ct, ATTR_REPL_IPV4_DST, src);
	}
	nfct_set_attr_u8(ct, ATTR_L4PROTO, tcp ? IPPROTO_TCP : IPPROTO_UDP);
	nfct_set_attr_u8(ct, ATTR_REPL_L4PROTO, tcp ? IPPROTO_TCP : IPPROTO_UDP);
	nfct_set_attr_u16(ct, ATTR_PORT_SRC, htons(sport));
	nfct_set_attr_u16(ct, ATTR_PORT_DST, htons(dport));
	nfct_set_attr_u16(ct, ATTR_REPL_PORT_SRC, htons(dport));
	nfct_set_attr_u16(ct, ATTR_REPL_PORT_DST, htons(sport));
	nfct_set_attr_u16(ct, ATTR_ZONE, (uint16_t)(i % 3));
	if (tcp) {
		nfct_set_attr_u8(ct, ATTR_TCP_STATE, i % 11 == 0 ? TCP_CONNTRACK_TIME_WAIT
						  : TCP_CONNTRACK_ESTABLISHED);
		nfct_set_attr_u8(ct, ATTR_TCP_WSCALE_ORIG, (uint8_t)(i % 14));
		nfct_set_attr_u8(ct, ATTR_TCP_WSCALE_REPL, (uint8_t)((i + 3) % 14));
	}
	nfct_set_attr_u32(ct, ATTR_STATUS, IPS_CONFIRMED | IPS_SEEN_REPLY |
			  (i % 3 ? IPS_ASSURED : 0));
	nfct_set_attr_u32(ct, ATTR_TIMEOUT, 3600 + i % 1000);
	nfct_set_attr_u32(ct, ATTR_MARK, i * 2654435761u);
	if (nat & 1) {
		/* mappings unique for 480,000 flows: 8 addresses x 60,000 ports */
		unsigned a8 = 1 + (i / 60000) % 8;
		if (ipv6) {
			char buf[64];
			struct in6_addr a;
			snprintf(buf, sizeof(buf), "2001:db8:2::%x", a8);
			inet_pton(AF_INET6, buf, &a);
			nfct_set_attr(ct, ATTR_SNAT_IPV6, &a);
		} else {
			nfct_set_attr_u32(ct, ATTR_SNAT_IPV4, htonl(0xcb007100u | a8)); /* 203.0.113.a8 */
		}
		nfct_set_attr_u16(ct, ATTR_SNAT_PORT, htons((uint16_t)(1024 + i % 60000)));
	}
	if (nat & 2) {
		nfct_set_attr_u32(ct, ATTR_DNAT_IPV4, htonl(0xc6336400u | (100 + i % 50)));
		nfct_set_attr_u16(ct, ATTR_DNAT_PORT, htons((uint16_t)(8000 + i % 100)));
	}
	if (i % 5 == 0) {
		struct nfct_bitmask *b = nfct_bitmask_new(127);
		nfct_bitmask_set_bit(b, i % 128);
		nfct_bitmask_set_bit(b, 127);
		nfct_set_attr(ct, ATTR_CONNLABELS, b);  /* ct takes ownership */
	}
	return ct;
}

/* create, delete or update (a new mark) flows SEED .. SEED+N-1 */
static int run(const char *what, unsigned n, unsigned seed)
{
	struct nfct_handle *h = nfct_open(CONNTRACK, 0);
	unsigned ok = 0, failed = 0;

	if (!h) {
		perror("nfct_open");
		return 2;
	}
	for (unsigned k = 0; k < n; k++) {
		unsigned i = k + seed;
		struct nf_conntrack *ct = build(i);
		enum nf_conntrack_query q = NFCT_Q_CREATE;
		if (strcmp(what, "delete") == 0) {
			q = NFCT_Q_DESTROY;
		} else if (strcmp(what, "update") == 0) {
			/* only what changes: the mark (NAT cannot be updated) */
			struct nf_conntrack *u = nfct_new();
			nfct_copy(u, ct, NFCT_CP_ORIG);
			nfct_set_attr_u16(u, ATTR_ZONE, (uint16_t)(i % 3));
			nfct_set_attr_u32(u, ATTR_MARK, 0x5a5a0000u | (i & 0xffff));
			nfct_destroy(ct);
			ct = u;
			q = NFCT_Q_UPDATE;
		}
		if (nfct_query(h, q, ct) == 0) {
			ok++;
		} else {
			if (failed++ < 3)
				fprintf(stderr, "ctgen: %s flow %u: %s\n", what, i, strerror(errno));
		}
		nfct_destroy(ct);
	}
	nfct_close(h);
	printf("%s=%u failed=%u\n", strcmp(what, "create") == 0 ? "created" :
	       strcmp(what, "delete") == 0 ? "deleted" : "updated", ok, failed);
	return failed ? 1 : 0;
}

static void addr(const struct nf_conntrack *ct, int a4, int a6, char *buf, size_t len)
{
	if (nfct_get_attr_u8(ct, ATTR_L3PROTO) == AF_INET6)
		inet_ntop(AF_INET6, nfct_get_attr(ct, a6), buf, (socklen_t)len);
	else
		inet_ntop(AF_INET, nfct_get_attr(ct, a4), buf, (socklen_t)len);
}

static int dump_cb(enum nf_conntrack_msg_type type, struct nf_conntrack *ct, void *data)
{
	char s[64], d[64], rs[64], rd[64], labels[64] = "-";
	/* status bits that describe the flow (not the kernel's bookkeeping) */
	const uint32_t keep = IPS_SEEN_REPLY | IPS_ASSURED | IPS_SRC_NAT | IPS_DST_NAT |
			      IPS_CONFIRMED;

	addr(ct, ATTR_IPV4_SRC, ATTR_IPV6_SRC, s, sizeof(s));
	addr(ct, ATTR_IPV4_DST, ATTR_IPV6_DST, d, sizeof(d));
	addr(ct, ATTR_REPL_IPV4_SRC, ATTR_REPL_IPV6_SRC, rs, sizeof(rs));
	addr(ct, ATTR_REPL_IPV4_DST, ATTR_REPL_IPV6_DST, rd, sizeof(rd));
	uint8_t l4 = nfct_get_attr_u8(ct, ATTR_L4PROTO);
	const struct nfct_bitmask *b = nfct_get_attr(ct, ATTR_CONNLABELS);
	if (b) {
		size_t off = 0;
		for (unsigned i = 0; i <= nfct_bitmask_maxbit(b) && off < sizeof(labels) - 8; i++)
			if (nfct_bitmask_test_bit(b, i))
				off += (size_t)snprintf(labels + off, sizeof(labels) - off, "%s%u",
							off ? "," : "", i);
		if (!off)
			strcpy(labels, "-");
	}
	printf("l3=%u l4=%u %s:%u>%s:%u reply %s:%u>%s:%u zone=%u mark=%u status=%#x "
	       "tcp=%u/%u/%u labels=%s helper=%s seqadj=%u/%u\n",
	       nfct_get_attr_u8(ct, ATTR_L3PROTO), l4,
	       s, ntohs(nfct_get_attr_u16(ct, ATTR_PORT_SRC)),
	       d, ntohs(nfct_get_attr_u16(ct, ATTR_PORT_DST)),
	       rs, ntohs(nfct_get_attr_u16(ct, ATTR_REPL_PORT_SRC)),
	       rd, ntohs(nfct_get_attr_u16(ct, ATTR_REPL_PORT_DST)),
	       nfct_get_attr_u16(ct, ATTR_ZONE), nfct_get_attr_u32(ct, ATTR_MARK),
	       nfct_get_attr_u32(ct, ATTR_STATUS) & keep,
	       l4 == IPPROTO_TCP ? nfct_get_attr_u8(ct, ATTR_TCP_STATE) : 0,
	       l4 == IPPROTO_TCP ? nfct_get_attr_u8(ct, ATTR_TCP_WSCALE_ORIG) : 0,
	       l4 == IPPROTO_TCP ? nfct_get_attr_u8(ct, ATTR_TCP_WSCALE_REPL) : 0,
	       labels,
	       nfct_attr_is_set(ct, ATTR_HELPER_NAME) ? (const char *)nfct_get_attr(ct, ATTR_HELPER_NAME) : "-",
	       nfct_get_attr_u32(ct, ATTR_ORIG_NAT_SEQ_OFFSET_AFTER),
	       nfct_get_attr_u32(ct, ATTR_REPL_NAT_SEQ_OFFSET_AFTER));
	return NFCT_CB_CONTINUE;
}

static int dump(void)
{
	struct nfct_handle *h = nfct_open(CONNTRACK, 0);
	if (!h) {
		perror("nfct_open");
		return 2;
	}
	nfct_callback_register(h, NFCT_T_ALL, dump_cb, NULL);
	uint32_t family = AF_UNSPEC;
	int ret = nfct_query(h, NFCT_Q_DUMP, &family);
	nfct_close(h);
	return ret == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && (strcmp(argv[1], "create") == 0 || strcmp(argv[1], "delete") == 0 ||
			  strcmp(argv[1], "update") == 0))
		return run(argv[1], (unsigned)atoi(argv[2]), argc > 3 ? (unsigned)atoi(argv[3]) : 0);
	if (argc == 2 && strcmp(argv[1], "dump") == 0)
		return dump();
	fprintf(stderr, "usage: ctsync-ctgen create|delete|update N [SEED] | dump\n");
	return 2;
}
