/* nfq.c — held packets (nfq.h): nfnetlink_queue over libmnl, and the
 * queueing rules through libnftnl. */
#include "kernel/nfq.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_conntrack_tcp.h>
#include <linux/netfilter/nf_conntrack_tuple_common.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netfilter/nfnetlink_queue.h>


#define NFQ_COPY 128            /* bytes of each packet: IP and transport headers */

struct nfq {
	struct mnl_socket *nl;
	uint16_t queue;
	nfq_packet_cb cb;
	void *arg;
	struct nfq_stats st;
	uint8_t buf[65536];
};

static struct nlmsghdr *put_hdr(void *buf, uint16_t type, uint16_t flags, uint8_t family,
				uint16_t queue)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = (uint16_t)(NFNL_SUBSYS_QUEUE << 8 | type);
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	struct nfgenmsg *g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->nfgen_family = family;
	g->version = NFNETLINK_V0;
	g->res_id = htons(queue);
	return nlh;
}

/* Send one request and read its ACK. */
static int request(struct nfq *q, struct nlmsghdr *nlh)
{
	uint8_t rb[MNL_SOCKET_BUFFER_SIZE];
	uint32_t portid = mnl_socket_get_portid(q->nl);

	nlh->nlmsg_seq = (uint32_t)time(NULL);
	if (mnl_socket_sendto(q->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	ssize_t n = mnl_socket_recvfrom(q->nl, rb, sizeof(rb));
	if (n < 0)
		return -errno;
	if (mnl_cb_run(rb, (size_t)n, nlh->nlmsg_seq, portid, NULL, NULL) < 0)
		return -errno;
	return 0;
}

int nfq_open(struct nfq **out, uint16_t queue, uint32_t maxlen, nfq_packet_cb cb, void *arg)
{
	struct nfq *q = calloc(1, sizeof(*q));
	uint8_t buf[512] = { 0 };       /* attribute padding is sent as found */
	int rc;

	*out = NULL;
	if (!q)
		return -ENOMEM;
	q->queue = queue;
	q->cb = cb;
	q->arg = arg;
	q->nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!q->nl || mnl_socket_bind(q->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		rc = -errno;
		goto fail;
	}
	/* a burst of new flows must not overrun the socket: the kernel holds
	 * the packets (up to maxlen, then lets them through) */
	int rcv = 4 << 20, one = 1;
	setsockopt(mnl_socket_get_fd(q->nl), SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv));
	setsockopt(mnl_socket_get_fd(q->nl), SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof(one));

	struct nlmsghdr *nlh = put_hdr(buf, NFQNL_MSG_CONFIG, NLM_F_ACK, AF_UNSPEC, queue);
	struct nfqnl_msg_config_cmd cmd = { .command = NFQNL_CFG_CMD_BIND };
	mnl_attr_put(nlh, NFQA_CFG_CMD, sizeof(cmd), &cmd);
	struct nfqnl_msg_config_params params = { .copy_range = htonl(NFQ_COPY),
						  .copy_mode = NFQNL_COPY_PACKET };
	mnl_attr_put(nlh, NFQA_CFG_PARAMS, sizeof(params), &params);
	uint32_t flags = NFQA_CFG_F_FAIL_OPEN;
	mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(flags));
	mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(flags));
	mnl_attr_put_u32(nlh, NFQA_CFG_QUEUE_MAXLEN, htonl(maxlen));
	if ((rc = request(q, nlh)) < 0)
		goto fail;
	*out = q;
	return 0;
fail:
	nfq_close(q);
	return rc;
}

void nfq_close(struct nfq *q)
{
	if (!q)
		return;
	if (q->nl)
		mnl_socket_close(q->nl);        /* the kernel unbinds the queue */
	free(q);
}

int nfq_fd(const struct nfq *q)
{
	return mnl_socket_get_fd(q->nl);
}

const struct nfq_stats *nfq_stats(const struct nfq *q)
{
	return &q->st;
}

struct pkt_attrs {
	const struct nlattr *tb[NFQA_MAX + 1];
};

static int attr_cb(const struct nlattr *a, void *data)
{
	struct pkt_attrs *p = data;
	uint16_t type = mnl_attr_get_type(a);

	if (type <= NFQA_MAX)
		p->tb[type] = a;
	return MNL_CB_OK;
}

/* The headers of a held packet: addresses, protocol, ports, TCP flags.
 * IPv6 extension headers are not walked: such a packet is not parsed. */
int nfq_pkt_parse(const uint8_t *b, size_t len, struct nfq_pkt *p)
{
	size_t off;

	memset(p, 0, sizeof(*p));
	if (len < 1)
		return -EINVAL;
	if (b[0] >> 4 == 4) {
		if (len < 20 || (b[0] & 0xf) < 5 || (size_t)(b[0] & 0xf) * 4 > len)
			return -EINVAL;
		if (((b[6] & 0x1f) | b[7]) != 0)
			return -EINVAL;         /* a fragment after the first */
		p->l3 = AF_INET;
		p->l4 = b[9];
		memcpy(&p->t.src.ip4, b + 12, 4);
		memcpy(&p->t.dst.ip4, b + 16, 4);
		off = (size_t)(b[0] & 0xf) * 4;
	} else if (b[0] >> 4 == 6) {
		if (len < 40)
			return -EINVAL;
		p->l3 = AF_INET6;
		p->l4 = b[6];
		memcpy(p->t.src.ip6, b + 8, 16);
		memcpy(p->t.dst.ip6, b + 24, 16);
		off = 40;
	} else {
		return -EINVAL;
	}
	switch (p->l4) {
	case IPPROTO_TCP:
		if (len < off + 14)
			return -EINVAL;
		p->tcp_flags = b[off + 13];
		/* fall through */
	case IPPROTO_UDP:
	case IPPROTO_UDPLITE:
	case IPPROTO_SCTP:
	case IPPROTO_DCCP:
		if (len < off + 4)
			return -EINVAL;
		memcpy(&p->t.sport, b + off, 2);
		memcpy(&p->t.dport, b + off + 2, 2);
		return 0;
	default:
		return -EINVAL;         /* no ports: not held */
	}
}

static void packet(struct nfq *q, const struct nlmsghdr *nlh)
{
	struct pkt_attrs a = { 0 };

	if (mnl_attr_parse(nlh, sizeof(struct nfgenmsg), attr_cb, &a) < 0 || !a.tb[NFQA_PACKET_HDR] ||
	    mnl_attr_get_payload_len(a.tb[NFQA_PACKET_HDR]) < sizeof(struct nfqnl_msg_packet_hdr))
		return;                 /* no id: nothing we could let go */
	const struct nfqnl_msg_packet_hdr *ph = mnl_attr_get_payload(a.tb[NFQA_PACKET_HDR]);
	uint32_t id = ntohl(ph->packet_id);
	struct nfq_pkt p;

	q->st.packets++;
	if (!a.tb[NFQA_PAYLOAD] || nfq_pkt_parse(mnl_attr_get_payload(a.tb[NFQA_PAYLOAD]),
					 mnl_attr_get_payload_len(a.tb[NFQA_PAYLOAD]), &p) < 0) {
		q->st.unparsed++;
		q->cb(q->arg, id, NULL);
		return;
	}
	q->cb(q->arg, id, &p);
}

bool nfq_pkt_synack(const struct nfq_pkt *p)
{
	return p->l4 == IPPROTO_TCP && (p->tcp_flags & 0x12) == 0x12;
}

void nfq_pkt_key(const struct nfq_pkt *p, struct ct *key)
{
	memset(key, 0, sizeof(*key));
	key->l3 = p->l3;
	key->l4 = p->l4;
	key->orig.src = p->t.dst;
	key->orig.dst = p->t.src;
	key->orig.sport = p->t.dport;
	key->orig.dport = p->t.sport;
}

int nfq_pkt_synack_ct(const struct nfq_pkt *p, struct ct *ct)
{
	if (!nfq_pkt_synack(p))
		return -EINVAL;
	nfq_pkt_key(p, ct);
	ct->has = CT_HAS_STATUS | CT_HAS_TCP;
	ct->status = IPS_SEEN_REPLY;
	ct->tcp.state = TCP_CONNTRACK_SYN_RECV;
	return 0;
}

int nfq_pkt_new_ct(const struct nfq_pkt *p, struct ct *ct)
{
	nfq_pkt_key(p, ct);             /* no NAT: the reply is the reversed tuple */
	ct->reply = ct->orig;
	ct->orig = p->t;
	ct->has = CT_HAS_REPLY | CT_HAS_STATUS | CT_HAS_TIMEOUT;
	ct->status = 0;
	if (p->l4 == IPPROTO_TCP) {
		if ((p->tcp_flags & 0x17) != 0x02)      /* SYN alone (not FIN, RST, ACK) */
			return -EINVAL;
		ct->has |= CT_HAS_TCP;
		ct->tcp.state = TCP_CONNTRACK_SYN_SENT;
		ct->timeout = 120;              /* the kernel's SYN_SENT default */
	} else {
		ct->timeout = 30;               /* UDP and the others: unreplied */
	}
	return 0;
}

int nfq_read(struct nfq *q, int budget)
{
	int done = 0;

	while (done < budget) {
		ssize_t n = recv(mnl_socket_get_fd(q->nl), q->buf, sizeof(q->buf), MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == ENOBUFS || errno == EINTR)
				continue;
			return done ? done : -errno;
		}
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)q->buf;
		int left = (int)n;      /* (libmnl counts what is left in an int) */
		for (; mnl_nlmsg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left)) {
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
				if (nlh->nlmsg_len >= mnl_nlmsg_size(sizeof(*e)) && e->error)
					q->st.verdict_errors++;
				continue;
			}
			if (nlh->nlmsg_type == (NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_PACKET) &&
			    nlh->nlmsg_len >= MNL_NLMSG_HDRLEN + sizeof(struct nfgenmsg)) {
				packet(q, nlh);
				done++;
			}
		}
	}
	return done;
}

int nfq_accept(struct nfq *q, uint32_t id)
{
	uint8_t buf[128] = { 0 };
	struct nlmsghdr *nlh = put_hdr(buf, NFQNL_MSG_VERDICT, 0, AF_UNSPEC, q->queue);
	struct nfqnl_msg_verdict_hdr v = { .verdict = htonl(NF_ACCEPT), .id = htonl(id) };

	mnl_attr_put(nlh, NFQA_VERDICT_HDR, sizeof(v), &v);
	q->st.verdicts++;
	if (mnl_socket_sendto(q->nl, nlh, nlh->nlmsg_len) < 0) {
		q->st.verdict_errors++;
		return -errno;
	}
	return 0;
}
