/* nfq_rules.c — ctsyncd's own table of queueing rules for defer (nfq.h,
 * "The rules"), made and removed through libnftnl in one transaction. */
#include "kernel/nfq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_conntrack_tuple_common.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/xt_NFQUEUE.h>

static struct nftnl_expr *e_load(const char *name, uint32_t key_attr, uint32_t key,
				 uint32_t dreg_attr)
{
	struct nftnl_expr *e = nftnl_expr_alloc(name);
	if (e) {
		nftnl_expr_set_u32(e, key_attr, key);
		nftnl_expr_set_u32(e, dreg_attr, NFT_REG_1);
	}
	return e;
}

static struct nftnl_expr *e_cmp(uint32_t op, const void *v, uint32_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("cmp");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
		nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, v, len);
	}
	return e;
}

static struct nftnl_expr *e_and(const void *mask, uint32_t len)
{
	static const uint8_t zero[4];
	struct nftnl_expr *e = nftnl_expr_alloc("bitwise");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, len);
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, len);
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, zero, len);
	}
	return e;
}

static struct nftnl_expr *e_payload(uint32_t base, uint32_t off, uint32_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("payload");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, off);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
	}
	return e;
}

static struct nftnl_expr *e_queue(uint16_t queue)
{
	struct xt_NFQ_info_v3 info = { .queuenum = queue, .queues_total = 1,
				       .flags = NFQ_FLAG_BYPASS };
	struct nftnl_expr *e = nftnl_expr_alloc("target");
	void *copy = malloc(sizeof(info));         /* the expression takes it */

	if (!e || !copy) {
		free(copy);
		if (e)
			nftnl_expr_free(e);
		return NULL;
	}
	memcpy(copy, &info, sizeof(info));
	nftnl_expr_set_str(e, NFTNL_EXPR_TG_NAME, "NFQUEUE");
	nftnl_expr_set_u32(e, NFTNL_EXPR_TG_REV, 3);
	nftnl_expr_set(e, NFTNL_EXPR_TG_INFO, copy, sizeof(info));
	return e;
}

enum rule_kind {
	RULE_HELPER,            /* a flow with a helper: not held (accept) */
	RULE_NEW,               /* a new flow's first packet: held */
	RULE_SYNACK,            /* a SYN-ACK: held */
};

/* The rule's expressions; false if one could not be made. */
static bool rule_exprs(struct nftnl_rule *r, enum rule_kind kind, uint16_t queue)
{
	static const uint16_t void_type = 0xffff;       /* ARPHRD_VOID */
	static const uint8_t reply = IP_CT_DIR_REPLY, tcp = IPPROTO_TCP, synack_bits = 0x12;
	static const uint8_t no_helper[16];
	static const uint16_t zone0 = 0;
	static const uint32_t new_bit = NF_CT_STATE_BIT(IP_CT_NEW), zero = 0,
			      nat_bits = IPS_SRC_NAT | IPS_DST_NAT;
	struct nftnl_expr *e[12];
	unsigned n = 0;

	/* forwarded: it came in on an interface (fails for our own packets) */
	e[n++] = e_load("meta", NFTNL_EXPR_META_KEY, NFT_META_IIFTYPE, NFTNL_EXPR_META_DREG);
	e[n++] = e_cmp(NFT_CMP_NEQ, &void_type, sizeof(void_type));
	switch (kind) {
	case RULE_HELPER:       /* (no helper: the load fails, the rule does not match) */
		e[n++] = e_load("ct", NFTNL_EXPR_CT_KEY, NFT_CT_HELPER, NFTNL_EXPR_CT_DREG);
		e[n++] = e_cmp(NFT_CMP_NEQ, no_helper, sizeof(no_helper));
		break;
	case RULE_NEW:
		e[n++] = e_load("ct", NFTNL_EXPR_CT_KEY, NFT_CT_STATE, NFTNL_EXPR_CT_DREG);
		e[n++] = e_and(&new_bit, sizeof(new_bit));
		e[n++] = e_cmp(NFT_CMP_NEQ, &zero, sizeof(zero));
		e[n++] = e_load("ct", NFTNL_EXPR_CT_KEY, NFT_CT_STATUS, NFTNL_EXPR_CT_DREG);
		e[n++] = e_and(&nat_bits, sizeof(nat_bits));
		e[n++] = e_cmp(NFT_CMP_EQ, &zero, sizeof(zero));
		e[n++] = e_load("ct", NFTNL_EXPR_CT_KEY, NFT_CT_ZONE, NFTNL_EXPR_CT_DREG);
		e[n++] = e_cmp(NFT_CMP_EQ, &zone0, sizeof(zone0));
		break;
	case RULE_SYNACK:
		e[n++] = e_load("ct", NFTNL_EXPR_CT_KEY, NFT_CT_DIRECTION, NFTNL_EXPR_CT_DREG);
		e[n++] = e_cmp(NFT_CMP_EQ, &reply, 1);
		e[n++] = e_load("meta", NFTNL_EXPR_META_KEY, NFT_META_L4PROTO,
				NFTNL_EXPR_META_DREG);
		e[n++] = e_cmp(NFT_CMP_EQ, &tcp, 1);
		e[n++] = e_payload(NFT_PAYLOAD_TRANSPORT_HEADER, 13, 1);      /* TCP flags */
		e[n++] = e_and(&synack_bits, 1);
		e[n++] = e_cmp(NFT_CMP_EQ, &synack_bits, 1);
		break;
	}
	bool ok = true;
	for (unsigned i = 0; i < n; i++) {
		if (!e[i])
			ok = false;
		else
			nftnl_rule_add_expr(r, e[i]);
	}
	struct nftnl_expr *cnt = nftnl_expr_alloc("counter");
	struct nftnl_expr *v = kind == RULE_HELPER ? nftnl_expr_alloc("immediate") : e_queue(queue);
	if (v && kind == RULE_HELPER) {
		nftnl_expr_set_u32(v, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
		nftnl_expr_set_u32(v, NFTNL_EXPR_IMM_VERDICT, NF_ACCEPT);
	}
	if (!cnt || !v) {
		if (cnt)
			nftnl_expr_free(cnt);
		if (v)
			nftnl_expr_free(v);
		return false;
	}
	nftnl_rule_add_expr(r, cnt);
	nftnl_rule_add_expr(r, v);
	return ok;
}

/* Run one nf_tables batch; 0 or the first error. */
static int run_batch(struct mnl_nlmsg_batch *b, char *err, size_t errlen)
{
	struct mnl_socket *nl = mnl_socket_open(NETLINK_NETFILTER);
	uint8_t rb[MNL_SOCKET_BUFFER_SIZE];
	int rc = 0;

	if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		rc = -errno;
		snprintf(err, errlen, "netlink: %s", strerror(errno));
		goto out;
	}
	if (mnl_socket_sendto(nl, mnl_nlmsg_batch_head(b), mnl_nlmsg_batch_size(b)) < 0) {
		rc = -errno;
		snprintf(err, errlen, "nf_tables: %s", strerror(errno));
		goto out;
	}
	/* every message asked for an ACK; read until none is left */
	int fd = mnl_socket_get_fd(nl);
	for (int i = 0; i < 16; i++) {
		ssize_t n = recv(fd, rb, sizeof(rb), i ? MSG_DONTWAIT : 0);
		if (n <= 0)
			break;
		if (mnl_cb_run(rb, (size_t)n, 0, mnl_socket_get_portid(nl), NULL, NULL) < 0 &&
		    rc == 0) {
			rc = -errno;
			snprintf(err, errlen, "nf_tables refused the defer rules: %s",
				 strerror(errno));
		}
	}
out:
	if (nl)
		mnl_socket_close(nl);
	return rc;
}

static void put_table(struct mnl_nlmsg_batch *b, uint16_t type, const char *name, uint32_t *seq)
{
	struct nftnl_table *t = nftnl_table_alloc();
	if (!t)
		return;
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, name);
	struct nlmsghdr *nlh = nftnl_table_nlmsg_build_hdr(mnl_nlmsg_batch_current(b), type,
							   NFPROTO_INET,
							   NLM_F_CREATE | NLM_F_ACK, (*seq)++);
	nftnl_table_nlmsg_build_payload(nlh, t);
	mnl_nlmsg_batch_next(b);
	nftnl_table_free(t);
}

static int rules(const char *table, bool install, uint16_t queue, char *err, size_t errlen)
{
	char name[64], buf[8192] = { 0 };
	uint32_t seq = (uint32_t)time(NULL);
	struct mnl_nlmsg_batch *b = mnl_nlmsg_batch_start(buf, sizeof(buf));
	struct nftnl_chain *c = NULL;
	struct nftnl_rule *r[3] = { NULL, NULL, NULL };
	int rc = -ENOMEM;

	snprintf(name, sizeof(name), "%s_defer", table);
	snprintf(err, errlen, "out of memory");
	if (!b)
		return -ENOMEM;
	nftnl_batch_begin(mnl_nlmsg_batch_current(b), seq++);
	mnl_nlmsg_batch_next(b);
	/* make it (so that the delete finds it), delete it: whatever was there goes */
	put_table(b, NFT_MSG_NEWTABLE, name, &seq);
	put_table(b, NFT_MSG_DELTABLE, name, &seq);
	if (install) {
		put_table(b, NFT_MSG_NEWTABLE, name, &seq);
		if (!(c = nftnl_chain_alloc()))
			goto out;
		nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, name);
		nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, "defer");
		nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, NF_INET_POST_ROUTING);
		nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, 110);  /* srcnat + 10: after NAT */
		nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "filter");
		nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
		struct nlmsghdr *nlh = nftnl_chain_nlmsg_build_hdr(
			mnl_nlmsg_batch_current(b), NFT_MSG_NEWCHAIN, NFPROTO_INET,
			NLM_F_CREATE | NLM_F_ACK, seq++);
		nftnl_chain_nlmsg_build_payload(nlh, c);
		mnl_nlmsg_batch_next(b);
		for (int i = 0; i < 3; i++) {
			if (!(r[i] = nftnl_rule_alloc()))
				goto out;
			nftnl_rule_set_str(r[i], NFTNL_RULE_TABLE, name);
			nftnl_rule_set_str(r[i], NFTNL_RULE_CHAIN, "defer");
			nftnl_rule_set_u32(r[i], NFTNL_RULE_FAMILY, NFPROTO_INET);
			if (!rule_exprs(r[i], (enum rule_kind)i, queue))
				goto out;
			nlh = nftnl_rule_nlmsg_build_hdr(mnl_nlmsg_batch_current(b),
							 NFT_MSG_NEWRULE, NFPROTO_INET,
							 NLM_F_APPEND | NLM_F_CREATE | NLM_F_ACK,
							 seq++);
			nftnl_rule_nlmsg_build_payload(nlh, r[i]);
			mnl_nlmsg_batch_next(b);
		}
	}
	nftnl_batch_end(mnl_nlmsg_batch_current(b), seq++);
	mnl_nlmsg_batch_next(b);
	err[0] = 0;
	rc = run_batch(b, err, errlen);
out:
	for (int i = 0; i < 3; i++)
		if (r[i])
			nftnl_rule_free(r[i]);
	if (c)
		nftnl_chain_free(c);
	mnl_nlmsg_batch_stop(b);
	return rc;
}

int nfq_rules_install(const char *table, uint16_t queue, char *err, size_t errlen)
{
	return rules(table, true, queue, err, errlen);
}

int nfq_rules_remove(const char *table, char *err, size_t errlen)
{
	return rules(table, false, 0, err, errlen);
}
