/* render.c — what `ctsyncctl status`, `stats` and `dump` print, as text and
 * as JSON (render.h).  Every string that comes from outside (a peer, the
 * kernel) goes through strbuf_json or strbuf_text. */
#include "daemon/render.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/control_proto.h"
#include "daemon/counters.h"
#include "sync/wire.h"
#include "util/version.h"

const char *render_addr(const struct sockaddr_storage *ss, char *buf, size_t len)
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

static void render_security(const struct control_ctx *ctx, struct strbuf *o, bool json)
{
	struct seal *s = ctx->seal;
	uint8_t ids[SEAL_MAX_KEYS];
	unsigned n = s ? seal_key_ids(s, ids, SEAL_MAX_KEYS) : 0;

	if (json) {
		if (!s || seal_insecure(s)) {
			strbuf_printf(o, "{\"mode\":\"insecure\",\"warning\":\"sync traffic is neither "
			     "authenticated nor encrypted\"}");
			return;
		}
		strbuf_printf(o, "{\"mode\":\"sealed\",\"cipher\":\"%s\",\"tx_key\":%u,\"keys\":[",
		     seal_cipher_name(seal_cipher(s)), seal_tx_key(s));
		for (unsigned i = 0; i < n; i++)
			strbuf_printf(o, "%s%u", i ? "," : "", ids[i]);
		strbuf_printf(o, "]}");
		return;
	}
	if (!s || seal_insecure(s)) {
		strbuf_printf(o, "security:       NONE — WARNING: sync traffic is neither authenticated nor "
		     "encrypted (security.insecure = true)\n");
		return;
	}
	strbuf_printf(o, "security:       %s, sealing with key %u, accepting key%s", 
	     seal_cipher_name(seal_cipher(s)), seal_tx_key(s), n > 1 ? "s" : "");
	for (unsigned i = 0; i < n; i++)
		strbuf_printf(o, "%s%u", i ? ", " : " ", ids[i]);
	strbuf_printf(o, "\n");
}

/* "buckets:        node 1: 0 3 6 ..." — who forwards which bucket */
static void render_bucket_map(struct strbuf *o, const struct repl_status *st)
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
		strbuf_printf(o, "%s", nseen == 1 ? "buckets:        " : "                ");
		if (id)
			strbuf_printf(o, "node %u:", id);
		else
			strbuf_printf(o, "nobody (not forwarded):");
		for (unsigned c = b; c < st->nbuckets; c++)
			if (st->bucket_owner[c] == id)
				strbuf_printf(o, " %u", c);
		strbuf_printf(o, "\n");
	}
}

/* nat.snat: the shared addresses, this node's block, and how full every
 * node's block is (kernel/nftb.h, sync/natuse.h). */
static void render_nat(const struct control_ctx *ctx, const struct repl_status *st,
		       struct strbuf *o, bool json)
{
	const struct nftb_nat *n = ctx->nat;

	if (!n || !n->nsnat)
		return;
	unsigned size = (unsigned)n->hi - n->lo + 1, block = st->node_id;  /* id k: block k */
	if (json) {
		strbuf_printf(o, ",\"nat\":{\"snat\":[");
		for (unsigned i = 0; i < n->nsnat; i++)
			strbuf_printf(o, "%s{\"address\":\"%s\",\"interface\":\"%s\"}", i ? "," : "",
				      n->snat[i].address, n->snat[i].ifname);
		strbuf_printf(o, "],\"ports\":[%u,%u],\"block\":%u,\"blocks\":%u,"
			      "\"range\":[%u,%u],\"block_size\":%u,\"use\":[", n->lo, n->hi, block,
			      n->blocks, n->range_lo, n->range_hi, size);
		for (unsigned i = 0; i < st->nnat; i++) {
			const struct natuse_block *b = &st->nat[i].b;
			strbuf_printf(o, "%s{\"node\":%u,\"flows\":%u,\"busiest\":%u,"
				      "\"fulls\":%llu}", i ? "," : "", st->nat[i].id, b->flows,
				      b->busiest, (unsigned long long)b->fulls);
		}
		strbuf_printf(o, "]}");
		return;
	}
	strbuf_printf(o, "nat:            snat to ");
	for (unsigned i = 0; i < n->nsnat; i++)
		strbuf_printf(o, "%s%s via %s", i ? ", " : "", n->snat[i].address,
			      n->snat[i].ifname);
	strbuf_printf(o, "; ports and echo ids %u-%u (block %u of %u in %u-%u)\n", n->lo, n->hi,
		      block, n->blocks, n->range_lo, n->range_hi);
	for (unsigned i = 0; i < st->nnat; i++) {
		const struct natuse_block *b = &st->nat[i].b;
		uint16_t lo = 0, hi = 0;
		nftb_nat_block(n->range_lo, n->range_hi, n->blocks, st->nat[i].id, &lo, &hi);
		strbuf_printf(o, "  node %-3u      block %u-%u: %u flows, busiest destination %u "
			      "of %u%s\n", st->nat[i].id, lo, hi, b->flows, b->busiest, size,
			      b->busiest >= size ? " (FULL: new connections there are dropped)" : "");
	}
}

static const char *tcp_state(unsigned k)
{
	return ct_tcp_state_name((uint8_t)k);
}

/* filter.strip: a CT_HAS_* bit's name */
static const char *part_name(unsigned k)
{
	uint32_t bit = 1u << k;
	return bit == CT_HAS_MARK ? "mark" : bit == CT_HAS_LABELS ? "labels" :
	       bit == CT_HAS_SECMARK ? "secmark" : "?";
}

/* The names of the bits set in `bits`, quoted for JSON or not, `sep`
 * between them. */
static void render_names(struct strbuf *o, uint32_t bits, const char *(*name)(unsigned),
			 bool json, const char *sep)
{
	const char *s = "";

	for (unsigned k = 0; k < 32; k++)
		if (bits >> k & 1) {
			strbuf_printf(o, json ? "%s\"%s\"" : "%s%s", s, name(k));
			s = sep;
		}
}

/* What the filters hold back or cut (repl.h, "Filters"); nothing when
 * none of them is set. */
static void render_filter(const struct control_ctx *ctx, const struct repl_status *st,
			  struct strbuf *o, bool json)
{
	const struct repl_config *c = repl_cfg(ctx->repl);
	const struct repl_stats *rs = repl_stats(ctx->repl);

	if (!c->tcp_states && !c->min_age_ms && !c->nzones && !c->strip)
		return;
	if (json) {
		strbuf_printf(o, ",\"filter\":{\"tcp_states\":[");
		render_names(o, c->tcp_states, tcp_state, true, ",");
		strbuf_printf(o, "],\"min_age_s\":%u,\"zones\":", c->min_age_ms / 1000);
		if (c->nzones) {
			strbuf_printf(o, "{\"%s\":[", c->zones_exclude ? "exclude" : "include");
			for (unsigned i = 0; i < c->nzones; i++)
				strbuf_printf(o, "%s%u", i ? "," : "", c->zones[i]);
			strbuf_printf(o, "]}");
		} else {
			strbuf_printf(o, "null");
		}
		strbuf_printf(o, ",\"strip\":[");
		render_names(o, c->strip, part_name, true, ",");
		strbuf_printf(o, "],\"waiting\":%u,\"synced_after_wait\":%llu,"
			      "\"ended_unsent\":%llu,\"filtered_out\":%llu}", st->filter_waiting,
			      (unsigned long long)rs->filter_synced,
			      (unsigned long long)rs->filter_unsent,
			      (unsigned long long)rs->ev_filtered);
		return;
	}
	strbuf_printf(o, "filter:        ");
	if (c->tcp_states) {
		strbuf_printf(o, " TCP once ");
		render_names(o, c->tcp_states, tcp_state, false, "/");
		strbuf_printf(o, ";");
	}
	if (c->min_age_ms)
		strbuf_printf(o, " flows once %u s old;", c->min_age_ms / 1000);
	if (c->nzones) {
		strbuf_printf(o, " zone%s", c->zones_exclude ? "s all but" : c->nzones > 1 ? "s" : "");
		for (unsigned i = 0; i < c->nzones; i++)
			strbuf_printf(o, "%s%u", i ? "," : " ", c->zones[i]);
		strbuf_printf(o, ";");
	}
	if (c->strip) {
		strbuf_printf(o, " not carried: ");
		render_names(o, c->strip, part_name, false, ", ");
		strbuf_printf(o, ";");
	}
	if (c->tcp_states || c->min_age_ms)
		strbuf_printf(o, " %u waiting, %llu synced after waiting, %llu ended unsent;",
			      st->filter_waiting, (unsigned long long)rs->filter_synced,
			      (unsigned long long)rs->filter_unsent);
	strbuf_printf(o, " %llu filtered out\n", (unsigned long long)rs->ev_filtered);
}

void render_status(const struct control_ctx *ctx, struct strbuf *o, bool json)
{
	struct repl_status st;
	char ab[INET6_ADDRSTRLEN];

	repl_status(ctx->repl, &st);
	if (json) {
		strbuf_printf(o, "{\"node_id\":%u,\"role\":\"%s\",\"inject\":\"%s\",\"epoch\":\"%08x\","
		     "\"flows_local\":%u,\"flows_total\":%u,\"pending_commit\":%u,"
		     "\"expectations_local\":%u,\"expectations_total\":%u,"
		     "\"flows_without_owner\":%u,\"term\":%u,\"superseded_by\":%u,"
		     "\"ownership_conflicts\":%llu,\"claims_refused\":%llu,\"starting\":%s,"
		     "\"in_sync\":%s,\"security\":",
		     st.node_id, st.primary ? "primary" : "backup",
		     st.immediate ? "immediate" : "on-promote", st.epoch, st.flows_local,
		     st.flows_total, st.pending_commit, st.exp_local, st.exp_total, st.orphans,
		     st.term, st.superseded_by,
		     (unsigned long long)repl_stats(ctx->repl)->ownership_conflicts,
		     (unsigned long long)repl_stats(ctx->repl)->claims_refused,
		     st.starting ? "true" : "false",
		     st.in_sync ? "true" : "false");
		render_security(ctx, o, true);
		render_filter(ctx, &st, o, true);
		strbuf_printf(o, ",\"mode\":\"%s\"", st.active_active ? "active-active" : "active-backup");
		if (st.active_active) {
			strbuf_printf(o, ",\"ready\":%s,\"holds_buckets\":%s,\"buckets\":{\"count\":%u,"
			     "\"seed\":%u,\"held\":%u,\"waiting\":%u,\"lease_ms\":%u,"
			     "\"lease_left_ms\":%lld,\"owner\":[", st.ready ? "true" : "false",
			     st.holds ? "true" : "false", st.nbuckets, st.bucket_seed,
			     st.buckets_held, st.buckets_waiting, st.lease_ms,
			     (long long)st.lease_left_ms);
			for (unsigned b = 0; b < st.nbuckets; b++)
				strbuf_printf(o, "%s%u", b ? "," : "", st.bucket_owner[b]);
			strbuf_printf(o, "]},\"routed\":%s", st.routed ? "true" : "false");
			strbuf_printf(o, ",\"quorum\":{\"source\":\"%s\",\"quorate\":%s",
				      st.quorum < 0 ? "none" : st.quorum_majority ? "majority" :
				      "corosync", st.quorum ? "true" : "false");
			if (st.quorum_majority)
				strbuf_printf(o, ",\"votes\":%u,\"needed\":%u", st.quorum_votes,
					      st.quorum_needed);
			/* (fixed text of transport_cpg.c: nothing to escape) */
			const char *qn = ctx->tr ? transport_quorum_note(ctx->tr) : NULL;
			if (qn)
				strbuf_printf(o, ",\"warning\":\"%s\"", qn);
			else if (st.quorum < 0 && !(ctx->tr && transport_paths(ctx->tr) > 1))
				strbuf_printf(o, ",\"warning\":\"a cut of the sync link alone makes "
					      "both sides forward the same buckets\"");
			strbuf_printf(o, "}");
			render_nat(ctx, &st, o, true);
			const struct repl_stats *rs = repl_stats(ctx->repl);
			if (st.defer_ms)
				strbuf_printf(o, ",\"defer\":{\"timeout_ms\":%u,\"waiting\":%u,\"held\":%llu,"
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
		strbuf_printf(o, ",\"peers\":[");
		for (unsigned i = 0; i < st.npeers; i++) {
			const struct repl_peer_status *p = &st.peer[i];
			strbuf_printf(o, "%s{\"id\":%u,\"address\":\"%s\",\"alive\":%s,\"last_heard_ms\":%lld,"
			     "\"role\":\"%s\",\"term\":%u,\"flows_held\":%u,\"flows_advertised\":%u,"
			     "\"lag_frames\":%u,\"lost_frames\":%llu,\"in_sync\":%s",
			     i ? "," : "", p->id, render_addr(&p->addr, ab, sizeof(ab)),
			     p->alive ? "true" : "false", (long long)p->last_heard_ms,
			     !p->known ? "unknown" : p->role ? "primary" : "backup", p->term,
			     p->flows_held, p->flows_advertised, p->lag_frames,
			     (unsigned long long)p->lost_frames, p->in_sync ? "true" : "false");
			if (st.active_active)
				strbuf_printf(o, ",\"holds_buckets\":%s,\"buckets\":%u",
				     p->holds ? "true" : "false", p->buckets);
			strbuf_printf(o, ",\"protocol\":\"%u.%u\",\"features\":%u,\"release\":",
				      p->proto_major, p->proto_minor, p->features);
			strbuf_json(o, p->release);
			if (p->incompatible)
				strbuf_printf(o, ",\"incompatible\":{\"speaks\":%u,\"we_speak\":"
					      "[%u,%u]}", p->incompatible, WIRE_VERSION_MIN,
					      WIRE_VERSION);
			strbuf_printf(o, ",\"fruitless_resyncs\":%u,\"resync_wait_ms\":%u}",
				      p->fruitless_resyncs, p->resync_wait_ms);
		}
		strbuf_printf(o, "],\"version\":\"%s\",\"protocol\":\"%u.%u\",\"features\":%u}\n",
			      CTSYNC_VERSION, WIRE_VERSION, WIRE_MINOR, WIRE_FEATURES);
		return;
	}
	strbuf_printf(o, "node:           %u (epoch %08x)\n", st.node_id, st.epoch);
	strbuf_printf(o, "version:        ctsync %s, protocol %u.%u\n", CTSYNC_VERSION, WIRE_VERSION,
		      WIRE_MINOR);
	strbuf_printf(o, "role:           %s (term %u)", st.primary ? "primary" : "backup", st.term);
	if (st.superseded_by)
		strbuf_printf(o, " — superseded: node %u is primary at a newer term, its claims win", st.superseded_by);
	strbuf_printf(o, "\n");
	if (st.active_active) {
		strbuf_printf(o, "mode:           active-active%s, %u buckets (seed %#x): ",
		     st.routed ? " (routed: buckets name heirs only)" : "", st.nbuckets,
		     st.bucket_seed);
		if (st.holds && st.buckets_waiting)
			strbuf_printf(o, "holding %u, %u more once their holders let go\n",
				      st.buckets_held, st.buckets_waiting);
		else if (st.holds)
			strbuf_printf(o, "holding %u\n", st.buckets_held);
		else if (!st.primary)
			strbuf_printf(o, "holding none (demoted: drained)\n");
		else if (st.quorum == 0)
			strbuf_printf(o, "holding none (this partition is not quorate)\n");
		else
			strbuf_printf(o, "holding none yet (until in sync with every live peer)\n");
		if (st.lease_ms && st.lease_left_ms >= 0)
			strbuf_printf(o, "lease:          %u ms, %lld ms left (renewed every heartbeat; "
				      "the kernel drops the set if the daemon stops)\n", st.lease_ms,
				      (long long)st.lease_left_ms);
		else if (st.lease_ms)
			strbuf_printf(o, "lease:          %u ms (nothing held)\n", st.lease_ms);
		else
			strbuf_printf(o, "lease:          none: if ctsyncd stops, this node goes on "
				      "forwarding its buckets (buckets.lease_ms)\n");
		const char *note = ctx->tr ? transport_quorum_note(ctx->tr) : NULL;
		if (st.quorum < 0 && ctx->tr && transport_paths(ctx->tr) > 1)
			strbuf_printf(o, "quorum:         none, two paths: only a cut of both makes "
				      "both sides forward the same buckets\n");
		else if (st.quorum < 0)
			strbuf_printf(o, "quorum:         none: a cut of the sync link alone makes both "
				      "sides forward the same buckets (docs/OPERATIONS.md, "
				      "\"Partitions\")\n");
		else if (st.quorum_majority)
			strbuf_printf(o, "quorum:         majority: in contact with %u of %u nodes, %u "
				      "needed: %s\n", st.quorum_votes, st.npeers + 1, st.quorum_needed,
				      st.quorum ? "quorate" : "NOT quorate: holding no bucket");
		else
			strbuf_printf(o, "quorum:         corosync's: %s%s%s\n", st.quorum ?
				      "quorate" : "NOT quorate: holding no bucket",
				      note ? "; WARNING: " : "", note ? note : "");
		render_nat(ctx, &st, o, false);
		render_bucket_map(o, &st);
		const struct repl_stats *ds = repl_stats(ctx->repl);
		if (st.defer_ms)
			strbuf_printf(o, "defer:          up to %u ms; %u held now; %llu held in all: %llu "
			     "acknowledged, %llu timed out, average %llu us, longest %llu us; "
			     "hints %llu sent, %llu applied\n", st.defer_ms, st.defer_waiting,
			     (unsigned long long)ds->defer_held, (unsigned long long)ds->defer_acked,
			     (unsigned long long)ds->defer_timeouts,
			     (unsigned long long)(ds->defer_held ? ds->defer_hold_us / ds->defer_held
								 : 0),
			     (unsigned long long)ds->defer_hold_max_us,
			     (unsigned long long)ds->hints_sent, (unsigned long long)ds->hints_applied);
	}
	strbuf_printf(o, "inject mode:    %s\n", st.immediate ? "immediate" : "on-promote");
	render_security(ctx, o, false);
	render_filter(ctx, &st, o, false);
	strbuf_printf(o, "flows owned locally: %u\n", st.flows_local);
	strbuf_printf(o, "flows held in total: %u", st.flows_total);
	if (!st.immediate)
		strbuf_printf(o, " (%u waiting for commit)", st.pending_commit);
	strbuf_printf(o, "\nexpectations:   %u owned locally, %u held in total", st.exp_local, st.exp_total);
	if (st.orphans)
		strbuf_printf(o, "\nflows without owner: %u (found in the kernel at start)", st.orphans);
	const struct repl_stats *rs = repl_stats(ctx->repl);
	if (rs->ownership_conflicts || rs->claims_refused)
		strbuf_printf(o, "\nownership conflicts: %llu flows of ours taken by a newer primary, "
		     "%llu older claims refused (two primaries?)",
		     (unsigned long long)rs->ownership_conflicts,
		     (unsigned long long)rs->claims_refused);
	strbuf_printf(o, "\nin sync:        %s%s\n", st.in_sync ? "yes" : "no",
	     st.starting ? " (starting: collecting the peers' flows)" : "");
	strbuf_printf(o, "\n%-6s %-22s %-6s %-10s %-8s %-5s %-11s %-11s %-6s %-6s %-8s%s\n", "PEER",
	     "ADDRESS", "ALIVE", "HEARD", "ROLE", "TERM", "FLOWS HELD", "ADVERTISED", "LAG", "LOST",
	     "IN SYNC", st.active_active ? "BUCKETS" : "");
	for (unsigned i = 0; i < st.npeers; i++) {
		const struct repl_peer_status *p = &st.peer[i];
		char heard[32];
		if (p->last_heard_ms < 0)
			snprintf(heard, sizeof(heard), "never");
		else
			snprintf(heard, sizeof(heard), "%lld ms", (long long)p->last_heard_ms);
		strbuf_printf(o, "%-6u %-22s %-6s %-10s %-8s %-5u %-11u %-11u %-6u %-6llu %-8s", p->id,
		     render_addr(&p->addr, ab, sizeof(ab)), p->alive ? "yes" : "no", heard,
		     !p->known ? "-" : p->role ? "primary" : "backup", p->term, p->flows_held,
		     p->flows_advertised, p->lag_frames, (unsigned long long)p->lost_frames,
		     p->in_sync ? "yes" : "no");
		if (st.active_active)
			strbuf_printf(o, "%u%s", p->buckets, p->alive && !p->holds ? " (holds none)" : "");
		strbuf_printf(o, "\n");
	}
	/* what is wrong with a peer, in words */
	for (unsigned i = 0; i < st.npeers; i++) {
		const struct repl_peer_status *p = &st.peer[i];
		if (p->incompatible)
			strbuf_printf(o, "peer %u speaks protocol %u, we speak %u to %u: refused, "
				      "nothing synced with it (docs/UPGRADING.md)\n", p->id,
				      p->incompatible, WIRE_VERSION_MIN, WIRE_VERSION);
		if (p->resync_wait_ms)
			strbuf_printf(o, "peer %u: its digest still differs after %u resyncs: the "
				      "next one not before %u s from now\n", p->id,
				      p->fruitless_resyncs, (p->resync_wait_ms + 999) / 1000);
	}
	if (st.npeers) {
		strbuf_printf(o, "versions:      ");
		for (unsigned i = 0; i < st.npeers; i++) {
			const struct repl_peer_status *p = &st.peer[i];
			strbuf_printf(o, " peer %u: ", p->id);
			if (p->proto_major) {
				strbuf_text(o, p->release[0] ? p->release : "?");
				strbuf_printf(o, " (protocol %u.%u)", p->proto_major, p->proto_minor);
			} else {
				strbuf_printf(o, "%s", p->incompatible ? "incompatible" : "not heard");
			}
			strbuf_printf(o, "%s", i + 1 < st.npeers ? ";" : "\n");
		}
	}
}

void render_stats(const struct control_ctx *ctx, struct strbuf *o, bool json)
{
	struct counter all[COUNTERS_MAX], pc[PEER_COUNTERS_MAX];
	size_t n = counters_global(ctx, all), ng;
	struct repl_status st;

	repl_status(ctx->repl, &st);
	if (json)
		strbuf_printf(o, "{");
	for (size_t i = 0; i < n; i++) {
		if (json)
			strbuf_printf(o, "%s\"%s\":%llu", i ? "," : "", all[i].name,
			     (unsigned long long)all[i].v);
		else
			strbuf_printf(o, "%-24s %llu\n", all[i].name, (unsigned long long)all[i].v);
	}
	/* per peer: "peer.ID.name value", or "peers": { "ID": { ... } } */
	if (json)
		strbuf_printf(o, ",\"peers\":{");
	for (unsigned i = 0; i < st.npeers; i++) {
		const struct repl_peer_status *p = &st.peer[i];
		size_t np = counters_peer(p, pc, &ng);
		if (json)
			strbuf_printf(o, "%s\"%u\":{", i ? "," : "", p->id);
		for (size_t j = 0; j < np; j++) {
			if (json)
				strbuf_printf(o, "%s\"%s\":%llu", j ? "," : "", pc[j].name,
				     (unsigned long long)pc[j].v);
			else
				strbuf_printf(o, "peer.%u.%-16s %llu\n", p->id, pc[j].name,
				     (unsigned long long)pc[j].v);
		}
		if (json)
			strbuf_printf(o, "}");
	}
	if (json)
		strbuf_printf(o, "}}\n");
}

struct dump_ctx {
	struct strbuf *o;
	bool json, first;
	int mode;               /* 0 all, 1 local, 2 one peer */
	uint32_t self, peer;
};

/* In kernel here: ours, or a peer's the kernel holds. */
static const char *in_kernel(const struct dump_ctx *d, uint32_t owner, bool in_kernel)
{
	return owner == d->self || in_kernel ? "true" : "false";
}

static void dump_one(void *arg, const struct flow *f)
{
	struct dump_ctx *d = arg;
	char desc[256];

	if ((d->mode == 1 && f->owner != d->self) || (d->mode == 2 && f->owner != d->peer))
		return;
	struct ct c;
	flow_get(f, &c);
	ct_format(&c, desc, sizeof(desc));
	const char *state = c.l4 == 6 ? ct_tcp_state_name(c.tcp.state) : "-";
	if (d->json) {
		strbuf_printf(d->o, "%s{\"owner\":%u,\"flow\":", d->first ? "" : ",", f->owner);
		strbuf_json(d->o, desc);
		strbuf_printf(d->o, ",\"state\":\"%s\",\"status\":%u,\"timeout\":%u,\"mark\":%u,"
			      "\"helper\":", state, c.status, c.timeout, c.mark);
		strbuf_json(d->o, c.helper);
		strbuf_printf(d->o, ",\"in_kernel\":%s}", in_kernel(d, f->owner, f->in_kernel));
		d->first = false;
		return;
	}
	strbuf_printf(d->o, "owner %-4u %-12s ", f->owner, state);
	strbuf_text(d->o, desc);
	strbuf_printf(d->o, " mark %u", c.mark);
	if (c.helper[0] || c.seqadj[0].after != c.seqadj[0].before ||
	    c.seqadj[1].after != c.seqadj[1].before) {
		strbuf_printf(d->o, " helper ");
		strbuf_text(d->o, c.helper[0] ? c.helper : "-");
		strbuf_printf(d->o, " seqadj %d/%d", (int)c.seqadj[0].after, (int)c.seqadj[1].after);
	}
	strbuf_printf(d->o, "%s\n", f->owner != d->self && !f->in_kernel ? " [not in kernel]" : "");
}

static void dump_exp(void *arg, const struct exp *e, uint32_t owner, bool in_kernel_)
{
	struct dump_ctx *d = arg;
	char desc[300];

	if ((d->mode == 1 && owner != d->self) || (d->mode == 2 && owner != d->peer))
		return;
	exp_format(e, desc, sizeof(desc));
	if (d->json) {
		strbuf_printf(d->o, "%s{\"owner\":%u,\"expectation\":", d->first ? "" : ",", owner);
		strbuf_json(d->o, desc);
		strbuf_printf(d->o, ",\"helper\":");
		strbuf_json(d->o, e->helper);
		strbuf_printf(d->o, ",\"in_kernel\":%s}", in_kernel(d, owner, in_kernel_));
		d->first = false;
		return;
	}
	strbuf_printf(d->o, "owner %-4u ", owner);
	strbuf_text(d->o, desc);
	strbuf_printf(d->o, "%s\n", owner != d->self && !in_kernel_ ? " [not in kernel]" : "");
}

int render_dump(const struct control_ctx *ctx, struct strbuf *o, bool json, const char *arg)
{
	struct repl_status st;
	struct dump_ctx d = { o, json, true, 0, 0, 0 };

	repl_status(ctx->repl, &st);
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
			strbuf_printf(o, "no such peer: ");
			strbuf_text(o, arg + 5);
			strbuf_printf(o, "\n");
			return CTL_FAILED;
		}
		d.mode = 2;
		d.peer = (uint32_t)id;
	} else if (arg[0]) {
		strbuf_printf(o, "bad dump argument\n");
		return CTL_BADREQ;
	}
	if (json)
		strbuf_printf(o, "[");
	repl_foreach(ctx->repl, dump_one, &d);
	repl_foreach_exp(ctx->repl, dump_exp, &d);
	if (json)
		strbuf_printf(o, "]\n");
	return CTL_OK;
}

