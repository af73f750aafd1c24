/* control.c — control socket: one request per connection (control_proto.h). */
#include "daemon/control.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/control_proto.h"
#include "util/log.h"

#define CLIENT_TIMEOUT 5.0

struct control {
	struct ev_loop *loop;
	int fd;
	ev_io accept_w;
	struct control_ctx ctx;
	bool readonly;
	bool http;                      /* the metrics listener, not a control socket */
	char path[108];
};

struct out {
	char *p;
	size_t len, cap;
	bool oom;
};

struct client {
	struct control *c;
	int fd;
	ev_io io;
	ev_timer timer;
	uint8_t in[CTL_HDR_LEN + CTL_MAX_ARG];
	size_t in_len;
	struct out out;
	size_t sent;
};

__attribute__((format(printf, 2, 3)))
static void outf(struct out *o, const char *fmt, ...)
{
	va_list ap;

	for (;;) {
		size_t room = o->cap - o->len;
		va_start(ap, fmt);
		int n = vsnprintf(o->p ? o->p + o->len : NULL, o->p ? room : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < room) {
			o->len += (size_t)n;
			return;
		}
		size_t ncap = o->cap ? o->cap * 2 : 4096;
		while (ncap < o->len + (size_t)n + 1)
			ncap *= 2;
		char *np = realloc(o->p, ncap);
		if (!np) {
			o->oom = true;
			return;
		}
		o->p = np;
		o->cap = ncap;
	}
}

static const char *addr_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	const void *a = ss->ss_family == AF_INET6 ?
			(const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr :
			(const void *)&((const struct sockaddr_in *)ss)->sin_addr;
	if (ss->ss_family != AF_INET && ss->ss_family != AF_INET6)
		snprintf(buf, len, "-");         /* a CPG peer: corosync knows where */
	else if (!inet_ntop(ss->ss_family, a, buf, (socklen_t)len))
		snprintf(buf, len, "?");
	return buf;
}

/* ---- renderers ---------------------------------------------------------- */

static void render_security(struct control *c, struct out *o, bool json)
{
	struct seal *s = c->ctx.seal;
	uint8_t ids[SEAL_MAX_KEYS];
	unsigned n = s ? seal_key_ids(s, ids, SEAL_MAX_KEYS) : 0;

	if (json) {
		if (!s || seal_insecure(s)) {
			outf(o, "{\"mode\":\"insecure\",\"warning\":\"sync traffic is neither "
			     "authenticated nor encrypted\"}");
			return;
		}
		outf(o, "{\"mode\":\"sealed\",\"cipher\":\"%s\",\"tx_key\":%u,\"keys\":[",
		     seal_cipher_name(seal_cipher(s)), seal_tx_key(s));
		for (unsigned i = 0; i < n; i++)
			outf(o, "%s%u", i ? "," : "", ids[i]);
		outf(o, "]}");
		return;
	}
	if (!s || seal_insecure(s)) {
		outf(o, "security:       NONE — WARNING: sync traffic is neither authenticated nor "
		     "encrypted (security.insecure = true)\n");
		return;
	}
	outf(o, "security:       %s, sealing with key %u, accepting key%s", 
	     seal_cipher_name(seal_cipher(s)), seal_tx_key(s), n > 1 ? "s" : "");
	for (unsigned i = 0; i < n; i++)
		outf(o, "%s%u", i ? ", " : " ", ids[i]);
	outf(o, "\n");
}

/* "buckets:        node 1: 0 3 6 ..." — who forwards which bucket */
static void render_bucket_map(struct out *o, const struct repl_status *st)
{
	uint32_t seen[REPL_MAX_PEERS + 2];
	unsigned nseen = 0;

	for (unsigned b = 0; b < st->nbuckets; b++) {
		uint32_t id = st->bucket_owner[b];
		bool dup = false;
		for (unsigned i = 0; i < nseen; i++)
			dup |= seen[i] == id;
		if (dup || nseen == sizeof(seen) / sizeof(seen[0]))
			continue;
		seen[nseen++] = id;
		outf(o, "%s", nseen == 1 ? "buckets:        " : "                ");
		if (id)
			outf(o, "node %u:", id);
		else
			outf(o, "nobody (not forwarded):");
		for (unsigned c = b; c < st->nbuckets; c++)
			if (st->bucket_owner[c] == id)
				outf(o, " %u", c);
		outf(o, "\n");
	}
}

static void render_status(struct control *c, struct out *o, bool json)
{
	struct repl_status st;
	char ab[INET6_ADDRSTRLEN];

	repl_status(c->ctx.repl, &st);
	if (json) {
		outf(o, "{\"node_id\":%u,\"role\":\"%s\",\"inject\":\"%s\",\"epoch\":\"%08x\","
		     "\"flows_local\":%u,\"flows_total\":%u,\"pending_commit\":%u,"
		     "\"expectations_local\":%u,\"expectations_total\":%u,"
		     "\"flows_without_owner\":%u,\"term\":%u,\"superseded_by\":%u,"
		     "\"ownership_conflicts\":%llu,\"claims_refused\":%llu,\"starting\":%s,"
		     "\"in_sync\":%s,\"security\":",
		     st.node_id, st.primary ? "primary" : "backup",
		     st.immediate ? "immediate" : "on-promote", st.epoch, st.flows_local,
		     st.flows_total, st.pending_commit, st.exp_local, st.exp_total, st.orphans,
		     st.term, st.superseded_by,
		     (unsigned long long)repl_stats(c->ctx.repl)->ownership_conflicts,
		     (unsigned long long)repl_stats(c->ctx.repl)->claims_refused,
		     st.starting ? "true" : "false",
		     st.in_sync ? "true" : "false");
		render_security(c, o, true);
		outf(o, ",\"mode\":\"%s\"", st.active_active ? "active-active" : "active-backup");
		if (st.active_active) {
			outf(o, ",\"ready\":%s,\"holds_buckets\":%s,\"buckets\":{\"count\":%u,"
			     "\"seed\":%u,\"held\":%u,\"owner\":[", st.ready ? "true" : "false",
			     st.holds ? "true" : "false", st.nbuckets, st.bucket_seed,
			     st.buckets_held);
			for (unsigned b = 0; b < st.nbuckets; b++)
				outf(o, "%s%u", b ? "," : "", st.bucket_owner[b]);
			outf(o, "]},\"routed\":%s", st.routed ? "true" : "false");
			const struct repl_stats *rs = repl_stats(c->ctx.repl);
			if (st.defer_ms)
				outf(o, ",\"defer\":{\"timeout_ms\":%u,\"waiting\":%u,\"held\":%llu,"
				     "\"acked\":%llu,\"timeouts\":%llu,\"passed\":%llu,"
				     "\"overflow\":%llu,\"hold_us\":%llu,\"hold_max_us\":%llu,"
				     "\"hints_sent\":%llu,\"hints_applied\":%llu}",
				     st.defer_ms, st.defer_waiting,
				     (unsigned long long)rs->defer_held,
				     (unsigned long long)rs->defer_acked,
				     (unsigned long long)rs->defer_timeouts,
				     (unsigned long long)rs->defer_passed,
				     (unsigned long long)rs->defer_overflow,
				     (unsigned long long)rs->defer_hold_us,
				     (unsigned long long)rs->defer_hold_max_us,
				     (unsigned long long)rs->hints_sent,
				     (unsigned long long)rs->hints_applied);
		}
		outf(o, ",\"peers\":[");
		for (unsigned i = 0; i < st.npeers; i++) {
			const struct repl_peer_status *p = &st.peer[i];
			outf(o, "%s{\"id\":%u,\"address\":\"%s\",\"alive\":%s,\"last_heard_ms\":%lld,"
			     "\"role\":\"%s\",\"term\":%u,\"flows_held\":%u,\"flows_advertised\":%u,"
			     "\"lag_frames\":%u,\"lost_frames\":%llu,\"in_sync\":%s",
			     i ? "," : "", p->id, addr_str(&p->addr, ab, sizeof(ab)),
			     p->alive ? "true" : "false", (long long)p->last_heard_ms,
			     !p->known ? "unknown" : p->role ? "primary" : "backup", p->term,
			     p->flows_held, p->flows_advertised, p->lag_frames,
			     (unsigned long long)p->lost_frames, p->in_sync ? "true" : "false");
			if (st.active_active)
				outf(o, ",\"holds_buckets\":%s,\"buckets\":%u",
				     p->holds ? "true" : "false", p->buckets);
			outf(o, "}");
		}
		outf(o, "]}\n");
		return;
	}
	outf(o, "node:           %u (epoch %08x)\n", st.node_id, st.epoch);
	outf(o, "role:           %s (term %u)", st.primary ? "primary" : "backup", st.term);
	if (st.superseded_by)
		outf(o, " — superseded: node %u is primary at a newer term, its claims win", st.superseded_by);
	outf(o, "\n");
	if (st.active_active) {
		outf(o, "mode:           active-active%s, %u buckets (seed %#x): ",
		     st.routed ? " (routed: buckets name heirs only)" : "", st.nbuckets,
		     st.bucket_seed);
		if (st.holds)
			outf(o, "holding %u\n", st.buckets_held);
		else if (!st.primary)
			outf(o, "holding none (demoted: drained)\n");
		else
			outf(o, "holding none yet (until in sync with every live peer)\n");
		render_bucket_map(o, &st);
		const struct repl_stats *ds = repl_stats(c->ctx.repl);
		if (st.defer_ms)
			outf(o, "defer:          up to %u ms; %u held now; %llu held in all: %llu "
			     "acknowledged, %llu timed out, average %llu us, longest %llu us; "
			     "hints %llu sent, %llu applied\n", st.defer_ms, st.defer_waiting,
			     (unsigned long long)ds->defer_held, (unsigned long long)ds->defer_acked,
			     (unsigned long long)ds->defer_timeouts,
			     (unsigned long long)(ds->defer_held ? ds->defer_hold_us / ds->defer_held
								 : 0),
			     (unsigned long long)ds->defer_hold_max_us,
			     (unsigned long long)ds->hints_sent, (unsigned long long)ds->hints_applied);
	}
	outf(o, "inject mode:    %s\n", st.immediate ? "immediate" : "on-promote");
	render_security(c, o, false);
	outf(o, "flows owned locally: %u\n", st.flows_local);
	outf(o, "flows held in total: %u", st.flows_total);
	if (!st.immediate)
		outf(o, " (%u waiting for commit)", st.pending_commit);
	outf(o, "\nexpectations:   %u owned locally, %u held in total", st.exp_local, st.exp_total);
	if (st.orphans)
		outf(o, "\nflows without owner: %u (found in the kernel at start)", st.orphans);
	const struct repl_stats *rs = repl_stats(c->ctx.repl);
	if (rs->ownership_conflicts || rs->claims_refused)
		outf(o, "\nownership conflicts: %llu flows of ours taken by a newer primary, "
		     "%llu older claims refused (two primaries?)",
		     (unsigned long long)rs->ownership_conflicts,
		     (unsigned long long)rs->claims_refused);
	outf(o, "\nin sync:        %s%s\n", st.in_sync ? "yes" : "no",
	     st.starting ? " (starting: collecting the peers' flows)" : "");
	outf(o, "\n%-6s %-22s %-6s %-10s %-8s %-5s %-11s %-11s %-6s %-6s %-8s%s\n", "PEER",
	     "ADDRESS", "ALIVE", "HEARD", "ROLE", "TERM", "FLOWS HELD", "ADVERTISED", "LAG", "LOST",
	     "IN SYNC", st.active_active ? "BUCKETS" : "");
	for (unsigned i = 0; i < st.npeers; i++) {
		const struct repl_peer_status *p = &st.peer[i];
		char heard[32];
		if (p->last_heard_ms < 0)
			snprintf(heard, sizeof(heard), "never");
		else
			snprintf(heard, sizeof(heard), "%lld ms", (long long)p->last_heard_ms);
		outf(o, "%-6u %-22s %-6s %-10s %-8s %-5u %-11u %-11u %-6u %-6llu %-8s", p->id,
		     addr_str(&p->addr, ab, sizeof(ab)), p->alive ? "yes" : "no", heard,
		     !p->known ? "-" : p->role ? "primary" : "backup", p->term, p->flows_held,
		     p->flows_advertised, p->lag_frames, (unsigned long long)p->lost_frames,
		     p->in_sync ? "yes" : "no");
		if (st.active_active)
			outf(o, "%u%s", p->buckets, p->alive && !p->holds ? " (holds none)" : "");
		outf(o, "\n");
	}
}

struct counter {
	const char *name;
	uint64_t v;
};

#define MAX_COUNTERS 128
#define MAX_PEER_COUNTERS 32

/* Every global counter, in the order `stats` prints them. */
static size_t counters(struct control *c, struct counter *out)
{
	const struct repl_stats *r = repl_stats(c->ctx.repl);
	static const struct ctnl_stats no_k;
	static const struct transport_stats no_t;
	const struct ctnl_stats *k = c->ctx.nl ? ctnl_stats(c->ctx.nl) : &no_k;
	const struct transport_stats *t = c->ctx.tr ? transport_stats(c->ctx.tr) : &no_t;
	static const struct seal_stats none;
	const struct seal_stats *z = c->ctx.seal ? seal_stats(c->ctx.seal) : &none;
	const struct counter all[] = {
#define S(x) { #x, r->x }
		S(rx_frames), S(rx_malformed), S(rx_bad_records), S(rx_unknown_node),
		S(rx_bad_source), S(rx_self), S(rx_stale), S(rx_lost), S(rx_upserts),
		S(rx_deletes), S(rx_refreshes), S(rx_heartbeats), S(rx_bulks), S(tx_frames), S(tx_records),
		S(tx_bytes), S(tx_errors), S(tx_bulks), S(ev_new), S(ev_update), S(ev_destroy),
		S(ev_own), S(ev_filtered), S(ev_foreign), S(adopted), S(ownership_conflicts),
		S(claims_refused), S(rx_skipped_ranges), S(swept), S(nat_clashes), S(inject_retries), S(inject_failed), S(committed),
		S(overruns), S(resyncs), S(rx_dup), S(tx_retransmits), S(tx_nacks), S(rx_nacks),
		S(resync_escalations), S(resyncs_asked), S(digest_mismatches), S(orphans_claimed),
		S(refreshes), S(refreshed), S(stale_purged), S(dump_found), S(dump_stale),
		S(refreshes_skipped), S(commits_quiet),
		S(exp_events), S(exp_rx_upserts),
		S(exp_rx_deletes), S(exp_injected), S(exp_waiting_dropped), S(exp_inject_failed),
		S(rx_replay), S(rx_old_epoch), S(rx_unconfirmed), S(epochs_confirmed),
		S(tx_challenges), S(tx_responses),
		S(bucket_changes), S(buckets_gained), S(buckets_lost), S(bucket_takeovers),
		S(bucket_set_errors), S(bucket_config_mismatches),
		S(defer_held), S(defer_passed), S(defer_acked), S(defer_timeouts),
		S(defer_overflow), S(defer_hold_us), S(defer_hold_max_us), S(hints_sent),
		S(hints_applied), S(hints_ignored), S(acks_sent), S(acks_received),
#undef S
		{ "rx_bad_tag", z->bad_tag }, { "rx_unknown_key", z->unknown_key },
		{ "rx_unsealed", z->unsealed }, { "rx_short", z->short_frames },
		{ "rx_no_key_for_node", z->unknown_node },
		{ "frames_sealed", z->sealed }, { "frames_opened", z->opened },
		{ "kernel_events", k->events }, { "kernel_events_bad", k->events_bad },
		{ "kernel_overruns", k->overruns }, { "kernel_dumped", k->dumped },
		{ "kernel_events_discarded", k->discarded },
		{ "kernel_creates", k->injected[CTNL_OP_CREATE] },
		{ "kernel_updates", k->injected[CTNL_OP_UPDATE] },
		{ "kernel_deletes", k->injected[CTNL_OP_DELETE] },
		{ "kernel_create_errors", k->inject_errors[CTNL_OP_CREATE] },
		{ "kernel_update_errors", k->inject_errors[CTNL_OP_UPDATE] },
		{ "kernel_delete_errors", k->inject_errors[CTNL_OP_DELETE] },
		{ "kernel_batches", k->batches },
		{ "link_tx_frames", t->tx_frames }, { "link_tx_bytes", t->tx_bytes },
		{ "link_tx_errors", t->tx_errors }, { "link_rx_frames", t->rx_frames },
		{ "link_rx_bytes", t->rx_bytes }, { "link_rx_errors", t->rx_errors },
	};
	size_t n = sizeof(all) / sizeof(all[0]);
	_Static_assert(sizeof(all) / sizeof(all[0]) <= MAX_COUNTERS, "MAX_COUNTERS");
	memcpy(out, all, sizeof(all));
	return n;
}

/* One peer's counters; the last `*ngauges` are gauges, not counters. */
static size_t peer_counters(const struct repl_peer_status *p, struct counter *out,
			    size_t *ngauges)
{
	const struct counter pc[] = {
#define P(x) { #x, p->c.x }
		P(tx_frames), P(rx_frames), P(rx_bytes), P(rx_dup), P(rx_malformed), P(gaps),
		P(lost),
		P(nacks_sent), P(nacks_received), P(retransmitted), P(resyncs_asked),
		P(bulks_received), P(bulks_clean), P(rx_replay), P(rx_old_epoch),
		P(rx_unconfirmed),
#undef P
		{ "lag_frames", p->lag_frames }, { "held_frames", p->held_frames },
		{ "flows_held", p->flows_held },
	};
	_Static_assert(sizeof(pc) / sizeof(pc[0]) <= MAX_PEER_COUNTERS, "MAX_PEER_COUNTERS");
	memcpy(out, pc, sizeof(pc));
	*ngauges = 3;
	return sizeof(pc) / sizeof(pc[0]);
}

static void render_stats(struct control *c, struct out *o, bool json)
{
	struct counter all[MAX_COUNTERS], pc[MAX_PEER_COUNTERS];
	size_t n = counters(c, all), ng;
	struct repl_status st;

	repl_status(c->ctx.repl, &st);
	if (json)
		outf(o, "{");
	for (size_t i = 0; i < n; i++) {
		if (json)
			outf(o, "%s\"%s\":%llu", i ? "," : "", all[i].name,
			     (unsigned long long)all[i].v);
		else
			outf(o, "%-24s %llu\n", all[i].name, (unsigned long long)all[i].v);
	}
	/* per peer: "peer.ID.name value", or "peers": { "ID": { ... } } */
	if (json)
		outf(o, ",\"peers\":{");
	for (unsigned i = 0; i < st.npeers; i++) {
		const struct repl_peer_status *p = &st.peer[i];
		size_t np = peer_counters(p, pc, &ng);
		if (json)
			outf(o, "%s\"%u\":{", i ? "," : "", p->id);
		for (size_t j = 0; j < np; j++) {
			if (json)
				outf(o, "%s\"%s\":%llu", j ? "," : "", pc[j].name,
				     (unsigned long long)pc[j].v);
			else
				outf(o, "peer.%u.%-16s %llu\n", p->id, pc[j].name,
				     (unsigned long long)pc[j].v);
		}
		if (json)
			outf(o, "}");
	}
	if (json)
		outf(o, "}}\n");
}

/* Prometheus text exposition (version 0.0.4): every counter as
 * ctsync_NAME_total, per-peer ones with a peer label, and the gauges of
 * `status`. */
static void metric(struct out *o, const char *name, const char *type, const char *help)
{
	outf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void render_metrics(struct control *c, struct out *o)
{
	struct counter all[MAX_COUNTERS], pc[MAX_PEER_COUNTERS];
	size_t n = counters(c, all), np = 0, ng = 0;
	struct repl_status st;
	char name[96];

	repl_status(c->ctx.repl, &st);
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
		  !c->ctx.seal || seal_insecure(c->ctx.seal) },
		{ "ctsync_buckets_held", "active-active: hash buckets this node forwards",
		  st.buckets_held },
		{ "ctsync_buckets", "active-active: hash buckets in all (0: active-backup)",
		  st.nbuckets },
		{ "ctsync_defer_waiting", "defer: packets held now, waiting for acknowledgements",
		  st.defer_waiting },
	};
	for (size_t i = 0; i < sizeof(gauges) / sizeof(gauges[0]); i++) {
		metric(o, gauges[i].name, "gauge", gauges[i].help);
		outf(o, "%s %llu\n", gauges[i].name, (unsigned long long)gauges[i].v);
	}
	metric(o, "ctsync_info", "gauge", "this node: id and epoch");
	outf(o, "ctsync_info{node=\"%u\",epoch=\"%08x\"} 1\n", st.node_id, st.epoch);
	for (size_t i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "ctsync_%s_total", all[i].name);
		metric(o, name, "counter", "see ctsyncctl stats");
		outf(o, "%s %llu\n", name, (unsigned long long)all[i].v);
	}
	/* per peer: one family per name, a sample per peer */
	const struct { const char *name, *help; } pg[] = {
		{ "ctsync_peer_alive", "1 if the peer was heard within its dead time" },
		{ "ctsync_peer_in_sync", "1 if this node holds exactly what the peer advertises" },
		{ "ctsync_peer_flows_advertised", "flows the peer's last heartbeat said it owns" },
		{ "ctsync_peer_last_heard_seconds", "seconds since the peer was last heard (-1: never)" },
	};
	for (size_t g = 0; g < sizeof(pg) / sizeof(pg[0]); g++) {
		metric(o, pg[g].name, "gauge", pg[g].help);
		for (unsigned i = 0; i < st.npeers; i++) {
			const struct repl_peer_status *p = &st.peer[i];
			outf(o, "%s{peer=\"%u\"} ", pg[g].name, p->id);
			if (g == 0)
				outf(o, "%d\n", p->alive);
			else if (g == 1)
				outf(o, "%d\n", p->in_sync);
			else if (g == 2)
				outf(o, "%u\n", p->flows_advertised);
			else
				outf(o, "%.3f\n", p->last_heard_ms < 0 ? -1.0 : p->last_heard_ms / 1000.0);
		}
	}
	if (st.npeers)
		np = peer_counters(&st.peer[0], pc, &ng);
	for (size_t j = 0; j < np; j++) {
		bool gauge = j >= np - ng;
		snprintf(name, sizeof(name), "ctsync_peer_%s%s", pc[j].name, gauge ? "" : "_total");
		metric(o, name, gauge ? "gauge" : "counter", "per peer; see ctsyncctl stats");
		for (unsigned i = 0; i < st.npeers; i++) {
			struct counter v[MAX_PEER_COUNTERS];
			size_t dummy;
			peer_counters(&st.peer[i], v, &dummy);
			outf(o, "%s{peer=\"%u\"} %llu\n", name, st.peer[i].id,
			     (unsigned long long)v[j].v);
		}
	}
}

struct dump_ctx {
	struct out *o;
	bool json, first;
	int mode;               /* 0 all, 1 local, 2 one peer */
	uint32_t self, peer;
};

static void dump_one(void *arg, const struct flow *f)
{
	struct dump_ctx *d = arg;
	char desc[256];

	if (d->mode == 1 && f->owner != d->self)
		return;
	if (d->mode == 2 && f->owner != d->peer)
		return;
	struct ct c;
	flow_get(f, &c);
	ct_format(&c, desc, sizeof(desc));
	const char *state = c.l4 == 6 ? ct_tcp_state_name(c.tcp.state) : "-";
	if (d->json) {
		outf(d->o, "%s{\"owner\":%u,\"flow\":\"%s\",\"state\":\"%s\",\"status\":%u,"
		     "\"timeout\":%u,\"mark\":%u,\"in_kernel\":%s}",
		     d->first ? "" : ",", f->owner, desc, state, c.status, c.timeout, c.mark, f->owner == d->self || f->in_kernel ? "true" : "false");
		d->first = false;
	} else {
		char extra[96] = "";
		if (c.helper[0] || c.seqadj[0].after != c.seqadj[0].before ||
		    c.seqadj[1].after != c.seqadj[1].before)
			snprintf(extra, sizeof(extra), " helper %s seqadj %d/%d",
				 c.helper[0] ? c.helper : "-",
				 (int)c.seqadj[0].after, (int)c.seqadj[1].after);
		outf(d->o, "owner %-4u %-12s %s mark %u%s%s\n", f->owner, state, desc, c.mark,
		     extra, f->owner != d->self && !f->in_kernel ? " [not in kernel]" : "");
	}
}

static void dump_exp(void *arg, const struct exp *e, uint32_t owner, bool in_kernel)
{
	struct dump_ctx *d = arg;
	char desc[300];

	if ((d->mode == 1 && owner != d->self) || (d->mode == 2 && owner != d->peer))
		return;
	exp_format(e, desc, sizeof(desc));
	if (d->json) {
		outf(d->o, "%s{\"owner\":%u,\"expectation\":\"%s\",\"in_kernel\":%s}",
		     d->first ? "" : ",", owner, desc,
		     owner == d->self || in_kernel ? "true" : "false");
		d->first = false;
	} else {
		outf(d->o, "owner %-4u %s%s\n", owner, desc,
		     owner != d->self && !in_kernel ? " [not in kernel]" : "");
	}
}

static int render_dump(struct control *c, struct out *o, bool json, const char *arg)
{
	struct repl_status st;
	struct dump_ctx d = { o, json, true, 0, 0, 0 };

	repl_status(c->ctx.repl, &st);
	d.self = st.node_id;
	if (strcmp(arg, "local") == 0) {
		d.mode = 1;
	} else if (strncmp(arg, "peer ", 5) == 0) {
		char *end;
		unsigned long id = strtoul(arg + 5, &end, 10);
		bool known = false;
		for (unsigned i = 0; i < st.npeers; i++)
			if (st.peer[i].id == id)
				known = true;
		if (*end || !known) {
			outf(o, "no such peer: %s\n", arg + 5);
			return CTL_FAILED;
		}
		d.mode = 2;
		d.peer = (uint32_t)id;
	} else if (arg[0]) {
		outf(o, "bad dump argument\n");
		return CTL_BADREQ;
	}
	if (json)
		outf(o, "[");
	repl_foreach(c->ctx.repl, dump_one, &d);
	repl_foreach_exp(c->ctx.repl, dump_exp, &d);
	if (json)
		outf(o, "]\n");
	return CTL_OK;
}

static int handle(struct control *c, const struct ctl_hdr *h, const char *arg, struct out *o)
{
	bool json = h->flags & CTL_F_JSON;
	int n;

	if (c->readonly && h->code != CTL_STATUS && h->code != CTL_STATS &&
	    h->code != CTL_DUMP && h->code != CTL_IN_SYNC && h->code != CTL_METRICS) {
		outf(o, "permission denied: this control socket is read-only\n");
		return CTL_FAILED;
	}
	switch (h->code) {
	case CTL_STATUS:
		render_status(c, o, json);
		return CTL_OK;
	case CTL_STATS:
		render_stats(c, o, json);
		return CTL_OK;
	case CTL_METRICS:
		render_metrics(c, o);
		return CTL_OK;
	case CTL_DUMP:
		return render_dump(c, o, json, arg);
	case CTL_PROMOTE:
		n = repl_promote(c->ctx.repl);
		if (repl_active_active(c->ctx.repl))
			outf(o, json ? "{\"result\":\"promoted\",\"flows\":%d}\n" :
			     "promoted: holds buckets once in sync (active-active)\n", n);
		else
			outf(o, json ? "{\"result\":\"promoted\",\"flows\":%d}\n" :
			     "promoted: now primary, took ownership of %d flows\n", n);
		return CTL_OK;
	case CTL_DEMOTE:
		repl_demote(c->ctx.repl);
		outf(o, json ? "{\"result\":\"demoted\"}\n" : repl_active_active(c->ctx.repl) ?
		     "demoted: drained, holds no bucket (active-active)\n" : "demoted: now backup\n");
		return CTL_OK;
	case CTL_COMMIT:
		n = repl_commit(c->ctx.repl);
		outf(o, json ? "{\"result\":\"committed\",\"flows\":%d}\n" :
		     "committed %d flows to the kernel\n", n);
		return CTL_OK;
	case CTL_IN_SYNC: {
		struct repl_status st;
		repl_status(c->ctx.repl, &st);
		outf(o, json ? "{\"in_sync\":%s}\n" : "in sync: %s\n", st.in_sync ?
		     (json ? "true" : "yes") : (json ? "false" : "no"));
		return st.in_sync ? CTL_OK : CTL_FAILED;
	}
	case CTL_RESYNC:
		n = repl_resync(c->ctx.repl);
		if (n < 0) {
			outf(o, "resync failed: %s\n", strerror(-n));
			return CTL_FAILED;
		}
		outf(o, json ? "{\"result\":\"resync\",\"flows\":%d}\n" :
		     "resync started: kernel table re-read (%d flows held), peers asked for theirs\n", n);
		return CTL_OK;
	case CTL_RELOAD: {
		char msg[1024] = "";
		n = c->ctx.reload ? c->ctx.reload(c->ctx.arg, msg, sizeof(msg)) : -ENOTSUP;
		if (json) {
			outf(o, "{\"result\":\"%s\",\"message\":\"", n < 0 ? "failed" : "reloaded");
			for (const char *p = msg; *p; p++)
				outf(o, *p == '"' || *p == '\\' ? "\\%c" : *p == '\n' ? " " : "%c", *p);
			outf(o, "\"}\n");
		} else {
			outf(o, "%s%s\n", n < 0 ? "reload failed: " : "", msg);
		}
		return n < 0 ? CTL_FAILED : CTL_OK;
	}
	}
	outf(o, "unknown command %u\n", h->code);
	return CTL_BADREQ;
}

static int process(struct control *c, const uint8_t *in, size_t len, struct out *body)
{
	struct ctl_hdr h;
	char arg[CTL_MAX_ARG + 1];

	if (len < CTL_HDR_LEN)
		return -EAGAIN;
	memcpy(&h, in, sizeof(h));
	if (h.magic != CTL_MAGIC || h.version != CTL_VERSION || h.len > CTL_MAX_ARG) {
		outf(body, "bad request (ctsyncctl and ctsyncd versions differ?)\n");
		return CTL_BADREQ;
	}
	if (len < CTL_HDR_LEN + h.len)
		return -EAGAIN;
	memcpy(arg, in + CTL_HDR_LEN, h.len);
	arg[h.len] = 0;
	if (memchr(arg, 0, h.len)) {
		outf(body, "bad request: NUL in the argument\n");
		return CTL_BADREQ;
	}
	return handle(c, &h, arg, body);
}

int control_process(struct control *c, const uint8_t *in, size_t len, char **body,
		    size_t *body_len)
{
	struct out o = { 0 };
	int status = process(c, in, len, &o);

	*body = o.p;
	*body_len = o.oom ? 0 : o.len;
	return status;
}

struct control *control_new_detached(const struct control_ctx *ctx, bool readonly)
{
	struct control *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->fd = -1;
	c->ctx = *ctx;
	c->readonly = readonly;
	return c;
}

/* ---- connections ---------------------------------------------------------- */

static void client_free(struct client *cl)
{
	ev_io_stop(cl->c->loop, &cl->io);
	ev_timer_stop(cl->c->loop, &cl->timer);
	close(cl->fd);
	free(cl->out.p);
	free(cl);
}

static void client_write(struct ev_loop *loop, ev_io *w, int revents)
{
	struct client *cl = w->data;

	while (cl->sent < cl->out.len) {
		ssize_t n = send(cl->fd, cl->out.p + cl->sent, cl->out.len - cl->sent,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			break;
		}
		cl->sent += (size_t)n;
	}
	client_free(cl);
}

/* Send head, then body, then close. */
static void send_out(struct client *cl, const void *head, size_t hlen, struct out *body)
{
	size_t blen = body->oom ? 0 : body->len;
	struct out o = { 0 };

	o.p = malloc(hlen + blen);
	if (!o.p) {
		client_free(cl);
		return;
	}
	memcpy(o.p, head, hlen);
	if (blen)
		memcpy(o.p + hlen, body->p, blen);
	o.len = o.cap = hlen + blen;
	cl->out = o;
	ev_io_stop(cl->c->loop, &cl->io);
	ev_io_init(&cl->io, client_write, cl->fd, EV_WRITE);
	cl->io.data = cl;
	ev_io_start(cl->c->loop, &cl->io);
}

static void respond(struct client *cl, int status, struct out *body)
{
	struct ctl_hdr h = { CTL_MAGIC, CTL_VERSION, (uint16_t)status, 0,
			     (uint32_t)(body->oom ? 0 : body->len) };
	send_out(cl, &h, sizeof(h), body);
}

/* The metrics listener: GET /metrics (or /) answered, anything else 404;
 * -EAGAIN until the request head is complete. */
static int http_process(struct control *c, const uint8_t *in, size_t len, struct out *body,
			char *head, size_t hcap)
{
	const char *code = "200 OK";

	if (!memmem(in, len, "\r\n\r\n", 4) && !memmem(in, len, "\n\n", 2)) {
		if (len < CTL_HDR_LEN + CTL_MAX_ARG)
			return -EAGAIN;
		code = "431 Request Header Fields Too Large";
	} else if ((len >= 13 && memcmp(in, "GET /metrics ", 13) == 0) ||
		   (len >= 6 && memcmp(in, "GET / ", 6) == 0)) {
		render_metrics(c, body);
	} else if (len >= 4 && memcmp(in, "GET ", 4) == 0) {
		code = "404 Not Found";
		outf(body, "ctsyncd: metrics are at /metrics\n");
	} else {
		code = "405 Method Not Allowed";
	}
	snprintf(head, hcap, "HTTP/1.0 %s\r\nContent-Type: text/plain; version=0.0.4; "
		 "charset=utf-8\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
		 code, body->oom ? 0 : body->len);
	return 0;
}

static void client_read(struct ev_loop *loop, ev_io *w, int revents)
{
	struct client *cl = w->data;
	ssize_t n = recv(cl->fd, cl->in + cl->in_len, sizeof(cl->in) - cl->in_len, MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		client_free(cl);
		return;
	}
	cl->in_len += (size_t)n;
	struct out body = { 0 };
	if (cl->c->http) {
		char head[256];
		if (http_process(cl->c, cl->in, cl->in_len, &body, head, sizeof(head)) == -EAGAIN)
			return;
		ev_timer_stop(loop, &cl->timer);
		send_out(cl, head, strlen(head), &body);
		free(body.p);
		return;
	}
	int status = process(cl->c, cl->in, cl->in_len, &body);
	if (status == -EAGAIN)
		return;
	ev_timer_stop(loop, &cl->timer);
	respond(cl, status, &body);
	free(body.p);
}

static void client_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	client_free(w->data);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct control *c = w->data;
	int fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	struct client *cl = calloc(1, sizeof(*cl));
	if (!cl) {
		close(fd);
		return;
	}
	cl->c = c;
	cl->fd = fd;
	ev_io_init(&cl->io, client_read, fd, EV_READ);
	cl->io.data = cl;
	ev_io_start(loop, &cl->io);
	ev_timer_init(&cl->timer, client_timeout, CLIENT_TIMEOUT, 0);
	cl->timer.data = cl;
	ev_timer_start(loop, &cl->timer);
}

/* The listening socket is ready: accept connections on the loop. */
static void accept_start(struct control *c, struct control **out)
{
	ev_io_init(&c->accept_w, on_accept, c->fd, EV_READ);
	c->accept_w.data = c;
	ev_io_start(c->loop, &c->accept_w);
	*out = c;
}

int control_open(struct control **out, struct ev_loop *loop, const char *path, long gid,
		 bool readonly, const struct control_ctx *ctx)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct control *c;
	int err;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->loop = loop;
	c->ctx = *ctx;
	c->readonly = readonly;
	snprintf(c->path, sizeof(c->path), "%s", path);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);

	/* Create the directory of the socket if it is missing (one level). */
	char dir[108];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		mkdir(dir, 0750);
	}
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		err = -errno;
		free(c);
		return err;
	}
	/* A stale socket from a previous run: only remove it if nobody answers. */
	if (connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		close(c->fd);
		free(c);
		return -EADDRINUSE;
	}
	close(c->fd);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	unlink(path);
	mode_t old = umask(0117);
	if (c->fd < 0 || bind(c->fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(c->fd, 16) < 0) {
		err = -errno;
		umask(old);
		if (c->fd >= 0)
			close(c->fd);
		free(c);
		return err;
	}
	umask(old);
	if (gid >= 0 && chown(path, (uid_t)-1, (gid_t)gid) < 0) {
		err = -errno;
		close(c->fd);
		unlink(path);
		free(c);
		return err;
	}
	accept_start(c, out);
	return 0;
}

int control_open_http(struct control **out, struct ev_loop *loop,
		      const struct sockaddr_storage *addr, const struct control_ctx *ctx)
{
	struct control *c = calloc(1, sizeof(*c));
	int one = 1, err;

	if (!c)
		return -ENOMEM;
	c->loop = loop;
	c->ctx = *ctx;
	c->http = true;
	c->readonly = true;
	c->fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || setsockopt(c->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(c->fd, (const struct sockaddr *)addr, addr->ss_family == AF_INET6 ?
		 sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in)) < 0 ||
	    listen(c->fd, 16) < 0) {
		err = -errno;
		if (c->fd >= 0)
			close(c->fd);
		free(c);
		return err;
	}
	accept_start(c, out);
	return 0;
}

void control_close(struct control *c)
{
	if (!c)
		return;
	if (c->fd >= 0) {
		ev_io_stop(c->loop, &c->accept_w);
		close(c->fd);
		if (!c->http)
			unlink(c->path);
	}
	free(c);
}
