/* metrics.c — Prometheus text exposition (metrics.h). */
#include "daemon/metrics.h"

#include <stdio.h>

#include "daemon/counters.h"
#include "sync/wire.h"
#include "util/version.h"

/* Prometheus text exposition (version 0.0.4): every counter as
 * ctsync_NAME_total, per-peer ones with a peer label, and the gauges of
 * `status`. */
static void metric(struct strbuf *o, const char *name, const char *type, const char *help)
{
	strbuf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void metrics_render(const struct control_ctx *ctx, struct strbuf *o)
{
	struct counter all[COUNTERS_MAX], pc[PEER_COUNTERS_MAX];
	size_t n = counters_global(ctx, all), np = 0, ng = 0;
	struct repl_status st;
	char name[96];

	repl_status(ctx->repl, &st);
	const struct { const char *name, *help; uint64_t v; } gauges[] = {
		{ "ctsync_primary", "1 if this node is primary, 0 if backup", st.primary },
		{ "ctsync_term", "this node's promotion term (newest primary wins)", st.term },
		{ "ctsync_superseded_by", "primary, but this node's claims lose to the node "
		  "given (0: not superseded)", st.superseded_by },
		{ "ctsync_in_sync", "1 if in sync with every live peer (ctsyncctl status)", st.in_sync },
		{ "ctsync_starting", "1 while the peers' flows are still being collected", st.starting },
		{ "ctsync_flows_local", "flows owned by this node", st.flows_local },
		{ "ctsync_flows", "flows held in total", st.flows_total },
		{ "ctsync_flows_pending_commit", "peers' flows held in memory, not yet in the kernel",
		  st.pending_commit },
		{ "ctsync_flows_without_owner", "flows found in the kernel at start, owner unknown",
		  st.orphans },
		{ "ctsync_expectations_local", "expectations owned by this node", st.exp_local },
		{ "ctsync_expectations", "expectations held in total", st.exp_total },
		{ "ctsync_insecure", "1 if the sync link is neither authenticated nor encrypted",
		  !ctx->seal || seal_insecure(ctx->seal) },
		{ "ctsync_buckets_held", "active-active: hash buckets this node forwards",
		  st.buckets_held },
		{ "ctsync_buckets", "active-active: hash buckets in all (0: active-backup)",
		  st.nbuckets },
		{ "ctsync_buckets_waiting", "active-active: buckets this node is to take once "
		  "their holders let go", st.buckets_waiting },
		{ "ctsync_quorate", "active-active: 1 if this node's partition is quorate (or "
		  "nothing judges it: buckets.quorum = off)", st.quorum != 0 },
		{ "ctsync_lease_left_ms", "active-active: time before the kernel drops the held "
		  "set unless renewed (0: none held)", st.lease_left_ms > 0 ? (uint64_t)st.lease_left_ms : 0 },
		{ "ctsync_defer_waiting", "defer: packets held now, waiting for acknowledgements",
		  st.defer_waiting },
		{ "ctsync_filter_waiting", "filter: flows the state or age filter holds back, "
		  "unsent", st.filter_waiting },
	};
	for (size_t i = 0; i < sizeof(gauges) / sizeof(gauges[0]); i++) {
		metric(o, gauges[i].name, "gauge", gauges[i].help);
		strbuf_printf(o, "%s %llu\n", gauges[i].name, (unsigned long long)gauges[i].v);
	}
	if (st.nnat) {
		metric(o, "ctsync_nat_block_flows", "gauge", "nat.snat: flows mapped into the "
		       "node's block of ports");
		for (unsigned i = 0; i < st.nnat; i++)
			strbuf_printf(o, "ctsync_nat_block_flows{node=\"%u\"} %u\n", st.nat[i].id,
				      st.nat[i].b.flows);
		metric(o, "ctsync_nat_block_busiest", "gauge", "nat.snat: the most of them "
		       "towards one destination (at the block's size it is full there)");
		for (unsigned i = 0; i < st.nnat; i++)
			strbuf_printf(o, "ctsync_nat_block_busiest{node=\"%u\"} %u\n", st.nat[i].id,
				      st.nat[i].b.busiest);
	}
	metric(o, "ctsync_info", "gauge", "this node: id, epoch, release and protocol");
	strbuf_printf(o, "ctsync_info{node=\"%u\",epoch=\"%08x\",version=\"%s\",protocol=\"%u.%u\"} 1\n",
		      st.node_id, st.epoch, CTSYNC_VERSION, WIRE_VERSION, WIRE_MINOR);
	for (size_t i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "ctsync_%s_total", all[i].name);
		metric(o, name, "counter", "see ctsyncctl stats");
		strbuf_printf(o, "%s %llu\n", name, (unsigned long long)all[i].v);
	}
	/* per peer: one family per name, a sample per peer */
	const struct { const char *name, *help; } pg[] = {
		{ "ctsync_peer_alive", "1 if the peer was heard within its dead time" },
		{ "ctsync_peer_in_sync", "1 if this node holds exactly what the peer advertises" },
		{ "ctsync_peer_flows_advertised", "flows the peer's last heartbeat said it owns" },
		{ "ctsync_peer_last_heard_seconds", "seconds since the peer was last heard (-1: never)" },
		{ "ctsync_peer_incompatible", "the protocol major the peer speaks when this node "
		  "does not speak it (0: compatible); nothing is synced with it" },
		{ "ctsync_peer_protocol_major", "the protocol major of the peer's heartbeats (0: none yet)" },
	};
	for (size_t g = 0; g < sizeof(pg) / sizeof(pg[0]); g++) {
		metric(o, pg[g].name, "gauge", pg[g].help);
		for (unsigned i = 0; i < st.npeers; i++) {
			const struct repl_peer_status *p = &st.peer[i];
			strbuf_printf(o, "%s{peer=\"%u\"} ", pg[g].name, p->id);
			if (g == 0)
				strbuf_printf(o, "%d\n", p->alive);
			else if (g == 1)
				strbuf_printf(o, "%d\n", p->in_sync);
			else if (g == 2)
				strbuf_printf(o, "%u\n", p->flows_advertised);
			else if (g == 3)
				strbuf_printf(o, "%.3f\n", p->last_heard_ms < 0 ? -1.0 : p->last_heard_ms / 1000.0);
			else if (g == 4)
				strbuf_printf(o, "%u\n", p->incompatible);
			else
				strbuf_printf(o, "%u\n", p->proto_major);
		}
	}
	if (st.npeers)
		np = counters_peer(&st.peer[0], pc, &ng);
	for (size_t j = 0; j < np; j++) {
		bool gauge = j >= np - ng;
		snprintf(name, sizeof(name), "ctsync_peer_%s%s", pc[j].name, gauge ? "" : "_total");
		metric(o, name, gauge ? "gauge" : "counter", "per peer; see ctsyncctl stats");
		for (unsigned i = 0; i < st.npeers; i++) {
			struct counter v[PEER_COUNTERS_MAX];
			size_t dummy;
			counters_peer(&st.peer[i], v, &dummy);
			strbuf_printf(o, "%s{peer=\"%u\"} %llu\n", name, st.peer[i].id,
			     (unsigned long long)v[j].v);
		}
	}
}

