/* nftb.c — active-active's nftables table (nftb.h), through libnftables. */
#include "kernel/nftb.h"

#include <errno.h>
#include <nftables/libnftables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct nftb {
	struct nft_ctx *ctx;
	char table[32];
	char *cmd;                      /* room for the largest set change */
	size_t cap;
};

/* Run one buffer of commands: one transaction, all or nothing. */
static int run(struct nftb *n, const char *cmd, char *err, size_t errlen)
{
	if (nft_run_cmd_from_buffer(n->ctx, cmd) == 0)
		return 0;
	const char *e = nft_ctx_get_error_buffer(n->ctx);
	snprintf(err, errlen, "%s", e && *e ? e : "nftables refused the commands");
	/* one line is enough in a log */
	char *nl = strchr(err, '\n');
	if (nl)
		*nl = 0;
	return -EINVAL;
}

int nftb_nat_block(uint16_t range_lo, uint16_t range_hi, unsigned blocks, uint32_t id,
		   uint16_t *lo, uint16_t *hi)
{
	if (range_hi < range_lo || !blocks || id < 1 || id > blocks)
		return -ERANGE;
	unsigned size = ((unsigned)range_hi - range_lo + 1) / blocks;
	if (!size)
		return -ERANGE;
	*lo = (uint16_t)(range_lo + (id - 1) * size);
	*hi = (uint16_t)(*lo + size - 1);
	return 0;
}

/* The NAT chains (nftb.h), appended at buf + k. */
static int format_nat(char *buf, size_t len, int k, const char *table, const struct nftb_nat *nat)
{
	k += snprintf(buf + k, len - (size_t)k,
		      "add chain inet %s nat_out { type nat hook postrouting priority srcnat - 1; "
		      "policy accept; }\n"
		      "add chain inet %s nat_guard { type filter hook input priority filter - 5; "
		      "policy accept; }\n", table, table);
	for (unsigned i = 0; i < nat->nsnat && k >= 0 && (size_t)k < len; i++) {
		const struct nftb_snat *s = &nat->snat[i];
		bool v6 = s->family == AF_INET6;
		const char *ip = v6 ? "ip6" : "ip", *icmp = v6 ? "ipv6-icmp" : "icmp";
		char match[600], to[64];
		int m = snprintf(match, sizeof(match), "oifname \"%s\" %s saddr != %s", s->ifname,
				 ip, s->address);
		for (unsigned f = 0; f < s->nfrom && m > 0 && (size_t)m < sizeof(match); f++)
			m += snprintf(match + m, sizeof(match) - (size_t)m, "%s%s", f ? ", " :
				      v6 ? " ip6 saddr { " : " ip saddr { ", s->from[f]);
		if (s->nfrom && m > 0 && (size_t)m < sizeof(match))
			m += snprintf(match + m, sizeof(match) - (size_t)m, " }");
		if (m < 0 || (size_t)m >= sizeof(match))
			return -ENOSPC;
		snprintf(to, sizeof(to), v6 ? "[%s]" : "%s", s->address);
		k += snprintf(buf + k, len - (size_t)k,
			      "add rule inet %s nat_out %s meta l4proto { tcp, udp } snat %s to "
			      "%s:%u-%u comment \"ctsyncd: this node's block of ports\"\n"
			      "add rule inet %s nat_out %s meta l4proto %s snat %s to %s:%u-%u "
			      "comment \"ctsyncd: this node's block of echo ids\"\n"
			      "add rule inet %s nat_out %s snat %s to %s\n"
			      "add rule inet %s nat_guard %s daddr %s meta l4proto { tcp, udp } th "
			      "dport %u-%u ct state new,invalid,untracked counter drop comment "
			      "\"ctsyncd: a reply this kernel has no flow for (yet)\"\n",
			      table, match, ip, to, nat->lo, nat->hi,
			      table, match, icmp, ip, to, nat->lo, nat->hi,
			      table, match, ip, to,
			      table, ip, s->address, nat->range_lo, nat->range_hi);
	}
	return k;
}

int nftb_format_table(char *buf, size_t len, const char *table, unsigned nbuckets, uint32_t seed,
		      bool filter, uint32_t lease_ms, const struct nftb_nat *nat)
{
	static const char *const fam[2][2] = { { "ipv4", "ip" }, { "ipv6", "ip6" } };
	char lease[64] = "";

	if (lease_ms)
		snprintf(lease, sizeof(lease), " flags timeout; timeout %ums;", lease_ms);
	/* made anew (a table of an earlier run may have another set) in the
	 * same transaction: no packet sees the table missing */
	int k = snprintf(buf, len,
			 "add table inet %s\n"
			 "delete table inet %s\n"
			 "table inet %s {\n"
			 "\tset held { typeof meta cpu;%s comment \"ctsyncd: buckets this node "
			 "holds\"; }\n"
			 "\tchain buckets { type filter hook forward priority filter - 5; "
			 "policy accept; }\n"
			 "}\n", table, table, table, lease);
	for (int i = 0; filter && i < 2 && k >= 0 && (size_t)k < len; i++)
		k += snprintf(buf + k, len - (size_t)k,
			      "add rule inet %s buckets meta nfproto %s jhash ct original %s "
			      "saddr . ct original %s daddr mod %u seed 0x%08x != @held counter "
			      "drop comment \"ctsyncd: not a bucket of this node\"\n",
			      table, fam[i][0], fam[i][1], fam[i][1], nbuckets, seed);
	if (nat && nat->nsnat && k >= 0 && (size_t)k < len)
		k = format_nat(buf, len, k, table, nat);
	return k < 0 || (size_t)k >= len ? -ENOSPC : 0;
}

int nftb_open(struct nftb **out, const char *table, unsigned nbuckets, uint32_t seed,
	      bool filter, uint32_t lease_ms, const struct nftb_nat *nat, char *err,
	      size_t errlen)
{
	struct nftb *n = calloc(1, sizeof(*n));
	char cmd[16384];
	int rc = -ENOMEM;

	*out = NULL;
	snprintf(err, errlen, "out of memory");
	if (!n)
		return -ENOMEM;
	snprintf(n->table, sizeof(n->table), "%s", table);
	/* "flush set inet T held\nadd element inet T held { " + 11 a bucket */
	n->cap = 128 + 2 * strlen(table) + (size_t)nbuckets * 12;
	n->cmd = malloc(n->cap);
	n->ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	if (!n->cmd || !n->ctx)
		goto fail;
	nft_ctx_buffer_output(n->ctx);
	nft_ctx_buffer_error(n->ctx);
	if ((rc = nftb_format_table(cmd, sizeof(cmd), table, nbuckets, seed, filter,
				    lease_ms, nat)) < 0 ||
	    (rc = run(n, cmd, err, errlen)) < 0)
		goto fail;
	*out = n;
	return 0;
fail:
	nftb_close(n);
	return rc;
}

int nftb_set(struct nftb *n, const uint32_t *buckets, unsigned count, char *err, size_t errlen)
{
	size_t k = (size_t)snprintf(n->cmd, n->cap, "flush set inet %s held\n", n->table);

	if (count) {
		k += (size_t)snprintf(n->cmd + k, n->cap - k, "add element inet %s held { ",
				      n->table);
		for (unsigned i = 0; i < count && k < n->cap; i++)
			k += (size_t)snprintf(n->cmd + k, n->cap - k, "%s%u", i ? ", " : "",
					      buckets[i]);
		if (k < n->cap)
			k += (size_t)snprintf(n->cmd + k, n->cap - k, " }\n");
	}
	if (k >= n->cap) {
		snprintf(err, errlen, "too many buckets for the command buffer");
		return -ENOSPC;
	}
	return run(n, n->cmd, err, errlen);
}

void nftb_close(struct nftb *n)
{
	if (!n)
		return;
	if (n->ctx)
		nft_ctx_free(n->ctx);
	free(n->cmd);
	free(n);
}
