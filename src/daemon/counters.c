/* counters.c — every counter of every layer, from their X-macro lists
 * (counters.h). */
#include "daemon/counters.h"

#include <stddef.h>

struct desc {
	const char *name;
	size_t off;
};

#define ONE(f) { #f, offsetof(struct repl_stats, f) },
static const struct desc repl_d[] = { REPL_STATS(ONE) };
#undef ONE
#define ONE(f) { #f, offsetof(struct repl_peer_counters, f) },
static const struct desc peer_d[] = { REPL_PEER_COUNTERS(ONE) };
#undef ONE
#define ONE(f, name) { name, offsetof(struct ctnl_stats, f) },
static const struct desc ctnl_d[] = { CTNL_STATS(ONE) };
#undef ONE
#define ONE(f, name) { name, offsetof(struct transport_stats, f) },
static const struct desc link_d[] = { TRANSPORT_STATS(ONE) };
#undef ONE
#define ONE(f, name) { name, offsetof(struct seal_stats, f) },
static const struct desc seal_d[] = { SEAL_STATS(ONE) };
#undef ONE
#define ONE(f, name) { name, offsetof(struct nfq_stats, f) },
static const struct desc nfq_d[] = { NFQ_STATS(ONE) };
#undef ONE

#define N(a) (sizeof(a) / sizeof((a)[0]))
/* Every field of each struct is in its list (all are uint64_t). */
_Static_assert(sizeof(struct repl_stats) == N(repl_d) * 8, "REPL_STATS lacks a field");
_Static_assert(sizeof(struct repl_peer_counters) == N(peer_d) * 8,
	       "REPL_PEER_COUNTERS lacks a field");
_Static_assert(sizeof(struct ctnl_stats) == N(ctnl_d) * 8, "CTNL_STATS lacks a field");
_Static_assert(sizeof(struct transport_stats) == N(link_d) * 8, "TRANSPORT_STATS lacks a field");
_Static_assert(sizeof(struct seal_stats) == N(seal_d) * 8, "SEAL_STATS lacks a field");
_Static_assert(sizeof(struct nfq_stats) == N(nfq_d) * 8, "NFQ_STATS lacks a field");
_Static_assert(N(repl_d) + N(ctnl_d) + N(link_d) + N(seal_d) + N(nfq_d) <= COUNTERS_MAX,
	       "COUNTERS_MAX");
_Static_assert(N(peer_d) + 3 <= PEER_COUNTERS_MAX, "PEER_COUNTERS_MAX");

static size_t take(struct counter *out, const struct desc *d, size_t n, const void *st)
{
	for (size_t i = 0; i < n; i++) {
		out[i].name = d[i].name;
		out[i].v = st ? *(const uint64_t *)((const char *)st + d[i].off) : 0;
	}
	return n;
}

size_t counters_global(const struct control_ctx *ctx, struct counter *out)
{
	size_t n = 0;

	n += take(out + n, repl_d, N(repl_d), ctx->repl ? repl_stats(ctx->repl) : NULL);
	n += take(out + n, seal_d, N(seal_d), ctx->seal ? seal_stats(ctx->seal) : NULL);
	n += take(out + n, ctnl_d, N(ctnl_d), ctx->nl ? ctnl_stats(ctx->nl) : NULL);
	n += take(out + n, link_d, N(link_d), ctx->tr ? transport_stats(ctx->tr) : NULL);
	n += take(out + n, nfq_d, N(nfq_d), ctx->nfq ? nfq_stats(ctx->nfq) : NULL);
	return n;
}

size_t counters_peer(const struct repl_peer_status *p, struct counter *out, size_t *ngauges)
{
	size_t n = take(out, peer_d, N(peer_d), &p->c);

	out[n++] = (struct counter){ "lag_frames", p->lag_frames };
	out[n++] = (struct counter){ "held_frames", p->held_frames };
	out[n++] = (struct counter){ "flows_held", p->flows_held };
	*ngauges = 3;
	return n;
}
