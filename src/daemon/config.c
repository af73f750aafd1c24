/* config.c — read and validate ctsyncd.conf (config.h). */
#include "daemon/config.h"

#include <arpa/inet.h>
#include <grp.h>
#include <libconfig.h>
#include <openssl/crypto.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/log.h"

struct ctx {
	const char *path;
	FILE *errs;
	int nerr;
};

__attribute__((format(printf, 3, 4)))
static void err_at(struct ctx *c, const config_setting_t *s, const char *fmt, ...)
{
	va_list ap;
	unsigned line = s ? config_setting_source_line(s) : 0;

	if (line)
		fprintf(c->errs, "%s:%u: ", c->path, line);
	else
		fprintf(c->errs, "%s: ", c->path);
	va_start(ap, fmt);
	vfprintf(c->errs, fmt, ap);
	va_end(ap);
	fputc('\n', c->errs);
	c->nerr++;
}

/* Every member of a group must be one of `known`. */
static void check_keys(struct ctx *c, const config_setting_t *g, const char *gname,
		       const char *const *known)
{
	int n = config_setting_length(g);

	for (int i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
		const char *name = config_setting_name(s);
		bool ok = false;
		for (const char *const *k = known; *k; k++)
			if (name && strcmp(name, *k) == 0)
				ok = true;
		if (!ok)
			err_at(c, s, "unknown key '%s'%s%s", name ? name : "?",
			       gname ? " in " : "", gname ? gname : "");
	}
}

static const config_setting_t *group(struct ctx *c, const config_t *cf, const char *name,
				     bool required)
{
	const config_setting_t *g = config_lookup(cf, name);

	if (!g) {
		if (required)
			err_at(c, config_root_setting(cf), "missing section '%s'", name);
		return NULL;
	}
	if (!config_setting_is_group(g)) {
		err_at(c, g, "'%s' must be a group: %s = { ... };", name, name);
		return NULL;
	}
	return g;
}

static const char *get_str(struct ctx *c, const config_setting_t *g, const char *name,
			   const char *def, bool required)
{
	const config_setting_t *s = g ? config_setting_get_member(g, name) : NULL;

	if (!s) {
		if (required)
			err_at(c, g, "missing key '%s'", name);
		return def;
	}
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		err_at(c, s, "'%s' must be a string", name);
		return def;
	}
	return config_setting_get_string(s);
}

static long long get_int(struct ctx *c, const config_setting_t *g, const char *name,
			 long long def, long long min, long long max, bool required)
{
	const config_setting_t *s = g ? config_setting_get_member(g, name) : NULL;

	if (!s) {
		if (required)
			err_at(c, g, "missing key '%s'", name);
		return def;
	}
	int t = config_setting_type(s);
	if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) {
		err_at(c, s, "'%s' must be an integer", name);
		return def;
	}
	long long v = config_setting_get_int64(s);
	if (v < min || v > max) {
		err_at(c, s, "'%s' must be between %lld and %lld (got %lld)", name, min, max, v);
		return def;
	}
	return v;
}

static int choose(struct ctx *c, const config_setting_t *g, const char *name,
		  const char *const *choices, int def)
{
	const char *v = get_str(c, g, name, NULL, false);

	if (!v)
		return def;
	for (int i = 0; choices[i]; i++)
		if (strcmp(v, choices[i]) == 0)
			return i;
	char list[256] = "";
	for (int i = 0; choices[i]; i++) {
		strncat(list, i ? ", " : "", sizeof(list) - strlen(list) - 1);
		strncat(list, choices[i], sizeof(list) - strlen(list) - 1);
	}
	err_at(c, config_setting_get_member(g, name), "'%s' must be one of: %s (got \"%s\")",
	       name, list, v);
	return def;
}

static bool parse_ip(const char *s, struct sockaddr_storage *ss, uint16_t port)
{
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, s, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
		return true;
	}
	if (inet_pton(AF_INET6, s, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		return true;
	}
	return false;
}

static bool parse_net(const char *s, struct repl_net *n)
{
	char buf[INET6_ADDRSTRLEN + 8];
	unsigned long plen;
	char *slash, *end;

	if (strlen(s) >= sizeof(buf))
		return false;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash)
		*slash = 0;
	memset(n, 0, sizeof(*n));
	if (inet_pton(AF_INET, buf, &n->addr) == 1)
		n->family = AF_INET;
	else if (inet_pton(AF_INET6, buf, &n->addr) == 1)
		n->family = AF_INET6;
	else
		return false;
	unsigned max = n->family == AF_INET ? 32 : 128;
	if (!slash) {
		n->plen = max;
		return true;
	}
	plen = strtoul(slash + 1, &end, 10);
	if (*end || end == slash + 1 || plen > max)
		return false;
	n->plen = (unsigned)plen;
	return true;
}

static void add_ignore(struct config *cfg, const struct repl_net *n)
{
	if (cfg->repl.nignore < REPL_MAX_IGNORE)
		cfg->repl.ignore[cfg->repl.nignore++] = *n;
}

static void defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->repl.inject_immediate = true;
	cfg->repl.heartbeat_ms = 200;
	cfg->repl.dead_after = 5;
	cfg->repl.resend_bytes = 16u << 20;
	cfg->repl.nack_ms = 20;
	cfg->repl.gap_timeout_ms = 3000;
	cfg->repl.refresh_ms = 5000;
	cfg->tcp_liberal = true;
	cfg->event_buffer = 64u << 20;
	cfg->nice = -10;
	cfg->transport.rcvbuf = 32 << 20;
	cfg->transport.sndbuf = 8 << 20;
	cfg->log_level = LOG_LVL_INFO;
	snprintf(cfg->socket_path, sizeof(cfg->socket_path), "%s", CONFIG_DEFAULT_SOCKET);
	cfg->control_gid = -1;
	cfg->repl.nbuckets = 64;
	cfg->repl.bucket_seed = 0x63747379;     /* "ctsy"; any value, the same everywhere */
	snprintf(cfg->nft_table, sizeof(cfg->nft_table), "%s", "ctsync");
}

static void load_node(struct ctx *c, const config_t *cf, struct config *cfg)
{
	static const char *const keys[] = { "id", NULL };
	const config_setting_t *g = group(c, cf, "node", true);

	if (!g)
		return;
	check_keys(c, g, "node", keys);
	cfg->repl.node_id = (uint32_t)get_int(c, g, "id", 0, 1, 4294967295LL, true);
}

static void load_sync(struct ctx *c, const config_t *cf, struct config *cfg)
{
	static const char *const keys[] = { "mode", "role", "inject", "tcp_window", "heartbeat_ms",
					    "dead_after", "resend_buffer", "refresh_ms", NULL };
	static const char *const modes[] = { "active-backup", "active-active", NULL };
	static const char *const roles[] = { "backup", "primary", NULL };
	static const char *const injects[] = { "on-promote", "immediate", NULL };
	static const char *const windows[] = { "strict", "liberal", NULL };
	const config_setting_t *g = group(c, cf, "sync", false);

	if (!g)
		return;
	check_keys(c, g, "sync", keys);
	cfg->repl.active_active = choose(c, g, "mode", modes, 0) == 1;
	/* active-active: every node forwards (role backup = drained) */
	cfg->repl.primary = choose(c, g, "role", roles, cfg->repl.active_active) == 1;
	cfg->repl.inject_immediate = choose(c, g, "inject", injects, 1) == 1;
	if (cfg->repl.active_active && !cfg->repl.inject_immediate)
		err_at(c, config_setting_get_member(g, "inject"),
		       "mode \"active-active\" needs inject = \"immediate\" (every node "
		       "forwards, so every node's kernel must hold every flow)");
	cfg->tcp_liberal = choose(c, g, "tcp_window", windows, 1) == 1;
	cfg->repl.heartbeat_ms = (uint32_t)get_int(c, g, "heartbeat_ms", 200, 10, 60000, false);
	cfg->repl.dead_after = (uint32_t)get_int(c, g, "dead_after", 5, 2, 1000, false);
	cfg->repl.resend_bytes = (size_t)get_int(c, g, "resend_buffer", (long long)cfg->repl.resend_bytes,
						 1 << 16, 1LL << 32, false);
	cfg->repl.refresh_ms = (uint32_t)get_int(c, g, "refresh_ms", cfg->repl.refresh_ms, 0, 3600000,
						 false);
	if (cfg->repl.refresh_ms && cfg->repl.refresh_ms < 500)
		err_at(c, config_setting_get_member(g, "refresh_ms"),
		       "'refresh_ms' must be 0 (off) or at least 500");
}

static bool get_bool(struct ctx *c, const config_setting_t *g, const char *name, bool def);

/* Active-active: the nftables rule's parameters (bucket.h) and our table. */
static void load_buckets(struct ctx *c, const config_t *cf, struct config *cfg)
{
	static const char *const keys[] = { "count", "seed", "table", "filter", "lease_ms",
					    "quorum", NULL };
	static const char *const quorums[] = { "auto", "majority", "off", NULL };
	const config_setting_t *g = group(c, cf, "buckets", false);
	uint32_t hb = cfg->repl.heartbeat_ms, dead = hb * cfg->repl.dead_after;

	/* the lease (policy.h, "Leases"): by default as long as it can be
	 * while a dead node's buckets are still taken at the dead time */
	if (cfg->repl.active_active)
		cfg->repl.lease_ms = dead >= 4 * hb ? dead - 2 * hb : 2 * hb;
	if (!g)
		return;
	check_keys(c, g, "buckets", keys);
	if (!cfg->repl.active_active) {
		err_at(c, g, "'buckets' is for sync.mode = \"active-active\" only");
		return;
	}
	cfg->repl.nbuckets = (unsigned)get_int(c, g, "count", cfg->repl.nbuckets, 1, 1024, false);
	cfg->repl.bucket_seed = (uint32_t)get_int(c, g, "seed", cfg->repl.bucket_seed, 0,
						  4294967295LL, false);
	/* false: the network picks the node that forwards (routed paths) */
	cfg->repl.routed = !get_bool(c, g, "filter", true);
	cfg->quorum = choose(c, g, "quorum", quorums, QUORUM_AUTO);
	cfg->repl.lease_ms = (uint32_t)get_int(c, g, "lease_ms", cfg->repl.lease_ms, 0, 3600000,
					       false);
	if (cfg->repl.lease_ms && cfg->repl.lease_ms < 2 * hb)
		err_at(c, config_setting_get_member(g, "lease_ms"),
		       "'lease_ms' must be 0 (off) or at least two heartbeats (%u ms): it is "
		       "renewed every heartbeat", 2 * hb);
	const char *t = get_str(c, g, "table", NULL, false);
	if (!t)
		return;
	size_t n = strlen(t);
	bool ok = n > 0 && n < sizeof(cfg->nft_table);
	for (size_t i = 0; ok && i < n; i++)
		ok = (t[i] >= 'a' && t[i] <= 'z') || (t[i] >= 'A' && t[i] <= 'Z') ||
		     (t[i] >= '0' && t[i] <= '9' && i) || t[i] == '_';
	if (!ok)
		err_at(c, config_setting_get_member(g, "table"),
		       "'table' must be a name of letters, digits and '_', at most %zu "
		       "characters, not starting with a digit (got \"%s\")",
		       sizeof(cfg->nft_table) - 1, t);
	else
		snprintf(cfg->nft_table, sizeof(cfg->nft_table), "%s", t);
}

/* "LO-HI" (ports): true with both set. */
static bool parse_range(const char *s, uint16_t *lo, uint16_t *hi)
{
	char *end;
	unsigned long a = strtoul(s, &end, 10), b;

	if (end == s || *end != '-')
		return false;
	const char *t = end + 1;
	b = strtoul(t, &end, 10);
	if (end == t || *end || a < 1 || b > 65535 || a > b)
		return false;
	*lo = (uint16_t)a;
	*hi = (uint16_t)b;
	return true;
}

static bool ifname_ok(const char *s)
{
	size_t n = strlen(s);
	bool ok = n > 0 && n < 16;

	for (size_t i = 0; ok && i < n; i++)
		ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		     (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-' || s[i] == '.';
	return ok;
}

/* One nat.snat entry: the shared address, its interface, its sources. */
static void load_snat(struct ctx *c, const config_setting_t *e, struct nftb_snat *out)
{
	static const char *const keys[] = { "address", "interface", "from", NULL };
	struct sockaddr_storage ss;
	struct repl_net n;

	if (!config_setting_is_group(e)) {
		err_at(c, e, "each of 'snat' must be a group: { address = \"...\"; "
		       "interface = \"...\"; }");
		return;
	}
	check_keys(c, e, "snat", keys);
	const char *a = get_str(c, e, "address", NULL, true);
	const char *i = get_str(c, e, "interface", NULL, true);
	if (a && !parse_ip(a, &ss, 0))
		err_at(c, config_setting_get_member(e, "address"), "bad address \"%s\"", a);
	else if (a) {
		out->family = ss.ss_family;
		inet_ntop(ss.ss_family, ss.ss_family == AF_INET ?
			  (const void *)&((struct sockaddr_in *)&ss)->sin_addr :
			  (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr,
			  out->address, sizeof(out->address));
	}
	if (i && !ifname_ok(i))
		err_at(c, config_setting_get_member(e, "interface"),
		       "bad interface name \"%s\"", i);
	else if (i)
		snprintf(out->ifname, sizeof(out->ifname), "%s", i);
	const config_setting_t *f = config_setting_get_member(e, "from");
	if (!f)
		return;
	if (!config_setting_is_array(f) && !config_setting_is_list(f)) {
		err_at(c, f, "'from' must be an array of prefixes");
		return;
	}
	for (int k = 0; k < config_setting_length(f); k++) {
		const config_setting_t *p = config_setting_get_elem(f, (unsigned)k);
		const char *v = config_setting_get_string(p);
		if (!v || !parse_net(v, &n)) {
			err_at(c, p, "bad prefix \"%s\"", v ? v : "(not a string)");
		} else if (out->family && n.family != out->family) {
			err_at(c, p, "prefix \"%s\" is not of the address's family", v);
		} else if (out->nfrom == NFTB_MAX_FROM) {
			err_at(c, p, "at most %u prefixes in 'from'", NFTB_MAX_FROM);
			return;
		} else {
			snprintf(out->from[out->nfrom++], sizeof(out->from[0]), "%s", v);
		}
	}
}

/* Active-active: source NAT to the cluster's shared addresses, each node
 * in its own block of ports (kernel/nftb.h). */
static void load_nat(struct ctx *c, const config_t *cf, struct config *cfg)
{
	static const char *const keys[] = { "snat", "ports", "blocks", NULL };
	const config_setting_t *g = group(c, cf, "nat", false);
	struct nftb_nat *nat = &cfg->nat;

	if (!g)
		return;
	check_keys(c, g, "nat", keys);
	if (!cfg->repl.active_active) {
		err_at(c, g, "'nat' is for sync.mode = \"active-active\" only (one node "
		       "forwards in active-backup: its own NAT rule cannot collide)");
		return;
	}
	const config_setting_t *l = config_setting_get_member(g, "snat");
	if (!l || !config_setting_is_list(l) || config_setting_length(l) < 1) {
		err_at(c, l ? l : g, "'snat' must be a list of one or more groups: snat = "
		       "( { address = \"...\"; interface = \"...\"; } );");
		return;
	}
	if (config_setting_length(l) > NFTB_MAX_SNAT) {
		err_at(c, l, "at most %u addresses in 'snat'", NFTB_MAX_SNAT);
		return;
	}
	for (int i = 0; i < config_setting_length(l); i++)
		load_snat(c, config_setting_get_elem(l, (unsigned)i), &nat->snat[nat->nsnat++]);
	nat->range_lo = 1024;
	nat->range_hi = 65535;
	const char *r = get_str(c, g, "ports", NULL, false);
	if (r && !parse_range(r, &nat->range_lo, &nat->range_hi))
		err_at(c, config_setting_get_member(g, "ports"),
		       "'ports' must be a range \"LO-HI\" within 1-65535 (got \"%s\")", r);
	nat->blocks = (unsigned)get_int(c, g, "blocks", 8, 1, 1024, false);
	const config_setting_t *at = config_setting_get_member(g, "blocks");
	if (nftb_nat_block(nat->range_lo, nat->range_hi, nat->blocks, cfg->repl.node_id,
			   &nat->lo, &nat->hi) < 0) {
		err_at(c, at ? at : g, "node.id %u has no block of ports: %u-%u split into %u "
		       "blocks gives ids 1 to %u a block of %u ports each (raise 'blocks', the "
		       "same on every node)", cfg->repl.node_id, nat->range_lo, nat->range_hi,
		       nat->blocks, nat->blocks,
		       ((unsigned)nat->range_hi - nat->range_lo + 1) / nat->blocks);
		return;
	}
	/* the engine counts what is mapped into each block (sync/natuse.h) */
	struct natuse_cfg *u = &cfg->repl.nat;
	for (unsigned i = 0; i < nat->nsnat; i++)
		if (nat->snat[i].family && inet_pton(nat->snat[i].family, nat->snat[i].address,
						     &u->addr[u->naddr].a) == 1)
			u->addr[u->naddr++].l3 = (uint8_t)nat->snat[i].family;
	u->lo = nat->range_lo;
	u->blocks = nat->blocks;
	u->size = ((unsigned)nat->range_hi - nat->range_lo + 1) / nat->blocks;
	uint16_t lo, hi;
	for (unsigned i = 0; i < cfg->repl.npeers; i++)
		if (nftb_nat_block(nat->range_lo, nat->range_hi, nat->blocks,
				   cfg->repl.peer_id[i], &lo, &hi) < 0)
			err_at(c, at ? at : g, "peer %u has no block of ports (%u blocks: ids 1 "
			       "to %u); raise 'blocks', the same on every node",
			       cfg->repl.peer_id[i], nat->blocks, nat->blocks);
}

/* buckets.quorum, once the transport is known (config.h). */
static void resolve_quorum(struct ctx *c, const config_t *cf, struct config *cfg)
{
	const config_setting_t *g = config_lookup(cf, "buckets");
	const config_setting_t *q = g ? config_setting_get_member(g, "quorum") : NULL;

	if (!cfg->repl.active_active)
		return;
	if (cfg->transport.type == TRANSPORT_CPG) {
		if (cfg->quorum != QUORUM_AUTO)
			err_at(c, q, "over CPG the quorum is corosync's (votequorum in "
			       "corosync.conf): leave 'quorum' out or \"auto\"");
		return;
	}
	if (cfg->quorum == QUORUM_AUTO)
		cfg->quorum = cfg->repl.npeers >= 2 ? QUORUM_MAJORITY : QUORUM_OFF;
	cfg->repl.quorum_majority = cfg->quorum == QUORUM_MAJORITY && !cfg->repl.routed;
}

/* Active-active: hold new flows' first packets until the peers have them
 * (repl.h, "Defer"). */
static void load_defer(struct ctx *c, const config_t *cf, struct config *cfg)
{
	static const char *const keys[] = { "timeout", "queue", "max", NULL };
	const config_setting_t *g = group(c, cf, "defer", false);

	if (!g)
		return;
	check_keys(c, g, "defer", keys);
	if (!cfg->repl.active_active) {
		err_at(c, g, "'defer' is for sync.mode = \"active-active\" only");
		return;
	}
	cfg->repl.defer_ms = (uint32_t)get_int(c, g, "timeout", 20, 1, 1000, false);
	cfg->defer_queue = (uint16_t)get_int(c, g, "queue", 0, 0, 65535, false);
	cfg->repl.defer_max = (unsigned)get_int(c, g, "max", 4096, 16, 1 << 20, false);
}

void config_ignore_host(struct config *cfg, const struct sockaddr_storage *ss)
{
	struct repl_net n = { .family = ss->ss_family };

	if (ss->ss_family == AF_INET) {
		n.addr.ip4 = ((const struct sockaddr_in *)ss)->sin_addr.s_addr;
		n.plen = 32;
	} else if (ss->ss_family == AF_INET6) {
		memcpy(n.addr.ip6, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
		n.plen = 128;
	} else {
		return;
	}
	add_ignore(cfg, &n);
}

void config_set_peers(struct config *cfg, const struct transport_peer *p, unsigned n)
{
	if (n > REPL_MAX_PEERS)
		n = REPL_MAX_PEERS;
	for (unsigned i = 0; i < n; i++) {
		cfg->repl.peer_id[i] = p[i].id;
		cfg->repl.peer_addr[i] = p[i].addr;
		cfg->transport.peers[i] = p[i];
		/* a peer's frames make entries in our kernel too: no flow to sync */
		config_ignore_host(cfg, &p[i].addr);
		if (p[i].addr2.ss_family)
			config_ignore_host(cfg, &p[i].addr2);
	}
	cfg->repl.npeers = cfg->transport.npeers = n;
}

/* need_addr: UDP peers need their address; CPG ones are named by id only. */
static void load_peers(struct ctx *c, const config_setting_t *list, struct config *cfg,
		       int family, uint16_t port, bool need_addr)
{
	static const char *const keys[] = { "id", "address", "address2", NULL };
	struct transport_peer found[REPL_MAX_PEERS];
	unsigned nfound = 0;

	if (!config_setting_is_list(list) && !config_setting_is_array(list)) {
		err_at(c, list, "'peers' must be a list: peers = ( { id = 2; address = \"...\"; } );");
		return;
	}
	int n = config_setting_length(list);
	for (int i = 0; i < n; i++) {
		const config_setting_t *p = config_setting_get_elem(list, (unsigned)i);
		if (!config_setting_is_group(p)) {
			err_at(c, p, "each peer must be a group { id = N; address = \"...\"; }");
			continue;
		}
		check_keys(c, p, "peer", keys);
		uint32_t id = (uint32_t)get_int(c, p, "id", 0, 1, 4294967295LL, true);
		const char *a = get_str(c, p, "address", NULL, need_addr);
		struct sockaddr_storage ss;
		memset(&ss, 0, sizeof(ss));
		if (a && !parse_ip(a, &ss, port)) {
			err_at(c, config_setting_get_member(p, "address"),
			       "bad address \"%s\"", a);
			continue;
		}
		if (a && family && ss.ss_family != family) {
			err_at(c, config_setting_get_member(p, "address"),
			       "peer address \"%s\" is not of the local address's family", a);
			continue;
		}
		if (!id || (need_addr && !a))
			continue;
		if (id == cfg->repl.node_id) {
			err_at(c, config_setting_get_member(p, "id"),
			       "duplicate node id %u (this node's own id)", id);
			continue;
		}
		bool dup = false;
		for (unsigned j = 0; j < nfound; j++)
			if (found[j].id == id)
				dup = true;
		if (dup) {
			err_at(c, config_setting_get_member(p, "id"), "duplicate node id %u", id);
			continue;
		}
		if (nfound == REPL_MAX_PEERS) {
			err_at(c, p, "too many peers (at most %d)", REPL_MAX_PEERS);
			break;
		}
		struct sockaddr_storage ss2;
		memset(&ss2, 0, sizeof(ss2));
		const char *a2 = get_str(c, p, "address2", NULL, false);
		if (a2 && !cfg->transport.local2.ss_family) {
			err_at(c, config_setting_get_member(p, "address2"),
			       "'address2' (a second path) needs transport.address2 too");
			continue;
		}
		if (a2 && (!parse_ip(a2, &ss2, port) || ss2.ss_family != family)) {
			err_at(c, config_setting_get_member(p, "address2"),
			       "bad address2 \"%s\" (an address of the local address's family)", a2);
			continue;
		}
		found[nfound].id = id;
		found[nfound].addr2 = ss2;
		found[nfound++].addr = ss;
	}
	config_set_peers(cfg, found, nfound);
}

static void load_transport(struct ctx *c, const config_t *cf, struct config *cfg)
{
	static const char *const keys[] = { "type", "interface", "address", "port", "peers",
					    "group", "rcvbuf", "sndbuf", "interface2", "address2",
					    NULL };
	static const char *const types[] = { "udp", "multicast", "cpg", NULL };
	const config_setting_t *g = group(c, cf, "transport", true);

	if (!g)
		return;
	check_keys(c, g, "transport", keys);
	struct transport_config *t = &cfg->transport;
	if (!config_setting_get_member(g, "type"))
		err_at(c, g, "missing key 'type'");
	int ty = choose(c, g, "type", types, 0);
	t->type = ty == 2 ? TRANSPORT_CPG : ty == 1 ? TRANSPORT_MULTICAST : TRANSPORT_UDP;
	bool cpg = t->type == TRANSPORT_CPG;
	t->local_node = cfg->repl.node_id;
	if (cpg) {
		/* corosync carries the frames: no interface, address or port of
		 * ours; the peers are corosync's nodelist unless listed */
		static const char *const udp_only[] = { "interface", "address", "port", "rcvbuf",
							"interface2", "address2", NULL };
		for (int i = 0; udp_only[i]; i++)
			if (config_setting_get_member(g, udp_only[i]))
				err_at(c, config_setting_get_member(g, udp_only[i]),
				       "'%s' is not for type = \"cpg\" (corosync's own "
				       "configuration says where it talks)", udp_only[i]);
		const char *name = get_str(c, g, "group", "ctsync", false);
		if (name && (strlen(name) == 0 || strlen(name) >= TRANSPORT_GROUP_MAX))
			err_at(c, config_setting_get_member(g, "group"),
			       "bad CPG group name \"%s\" (1 to %d characters)", name,
			       TRANSPORT_GROUP_MAX - 1);
		else if (name)
			snprintf(t->cpg_group, sizeof(t->cpg_group), "%s", name);
		t->sndbuf = (int)get_int(c, g, "sndbuf", t->sndbuf, 65536, 1 << 30, false);
		const config_setting_t *peers = config_setting_get_member(g, "peers");
		if (peers)
			load_peers(c, peers, cfg, 0, 0, false);
		return;
	}
	const char *ifn = get_str(c, g, "interface", NULL, true);
	if (ifn) {
		if (strlen(ifn) == 0 || strlen(ifn) >= IF_NAMESIZE)
			err_at(c, config_setting_get_member(g, "interface"),
			       "bad interface name \"%s\"", ifn);
		else
			snprintf(t->ifname, sizeof(t->ifname), "%s", ifn);
	}
	uint16_t port = (uint16_t)get_int(c, g, "port", 3780, 1, 65535, false);
	const char *addr = get_str(c, g, "address", NULL, true);
	int family = 0;
	if (addr) {
		if (!parse_ip(addr, &t->local, port))
			err_at(c, config_setting_get_member(g, "address"), "bad address \"%s\"", addr);
		else
			family = t->local.ss_family;
	}
	t->rcvbuf = (int)get_int(c, g, "rcvbuf", t->rcvbuf, 65536, 1 << 30, false);
	t->sndbuf = (int)get_int(c, g, "sndbuf", t->sndbuf, 65536, 1 << 30, false);
	/* a second path (UDP unicast): every frame goes both ways */
	const char *addr2 = get_str(c, g, "address2", NULL, false);
	const char *ifn2 = get_str(c, g, "interface2", NULL, false);
	if (addr2 && t->type != TRANSPORT_UDP)
		err_at(c, config_setting_get_member(g, "address2"),
		       "'address2' (a second path) is for type = \"udp\" only");
	else if (addr2 && (!parse_ip(addr2, &t->local2, port) || t->local2.ss_family != family)) {
		err_at(c, config_setting_get_member(g, "address2"),
		       "bad address2 \"%s\" (an address of the local address's family)", addr2);
		memset(&t->local2, 0, sizeof(t->local2));
	}
	if (ifn2 && !addr2)
		err_at(c, config_setting_get_member(g, "interface2"),
		       "'interface2' needs 'address2' (the second path's address)");
	else if (ifn2 && (strlen(ifn2) == 0 || strlen(ifn2) >= IF_NAMESIZE))
		err_at(c, config_setting_get_member(g, "interface2"),
		       "bad interface name \"%s\"", ifn2);
	else if (ifn2)
		snprintf(t->ifname2, sizeof(t->ifname2), "%s", ifn2);

	const config_setting_t *peers = config_setting_get_member(g, "peers");
	if (peers)
		load_peers(c, peers, cfg, family, port, true);
	else
		err_at(c, g, "missing key 'peers' (every other node: ( { id = N; address = \"...\"; } ))");

	const char *grp = get_str(c, g, "group", NULL, t->type == TRANSPORT_MULTICAST);
	if (grp && t->type == TRANSPORT_UDP)
		err_at(c, config_setting_get_member(g, "group"),
		       "'group' is only for type = \"multicast\"");
	if (grp && t->type == TRANSPORT_MULTICAST) {
		const config_setting_t *gs = config_setting_get_member(g, "group");
		if (!parse_ip(grp, &t->group, port)) {
			err_at(c, gs, "bad multicast group \"%s\"", grp);
		} else {
			bool mc = t->group.ss_family == AF_INET ?
				  IN_MULTICAST(ntohl(((struct sockaddr_in *)&t->group)->sin_addr.s_addr)) :
				  IN6_IS_ADDR_MULTICAST(&((struct sockaddr_in6 *)&t->group)->sin6_addr);
			if (!mc)
				err_at(c, gs, "\"%s\" is not a multicast address", grp);
			else if (family && t->group.ss_family != family)
				err_at(c, gs, "group \"%s\" is not of the local address's family", grp);
		}
	}
}

/* An array (or list) setting: its elements, or an error and -1. */
static int elems(struct ctx *c, const config_setting_t *s, const char *what)
{
	if (!config_setting_is_array(s) && !config_setting_is_list(s)) {
		err_at(c, s, "'%s' must be an array: %s = [ ... ];", config_setting_name(s), what);
		return -1;
	}
	return config_setting_length(s);
}

/* filter.tcp_states, min_age, zones, strip (repl.h, "Filters") */
static void load_filter_more(struct ctx *c, const config_setting_t *g, struct config *cfg)
{
	struct repl_config *rc = &cfg->repl;
	const config_setting_t *s = config_setting_get_member(g, "tcp_states");
	int n;

	if (s && (n = elems(c, s, "\"ESTABLISHED\", \"FIN_WAIT\", ...")) >= 0) {
		for (int i = 0; i < n; i++) {
			const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
			const char *v = config_setting_get_string(e);
			int st = -1;
			for (int k = 1; v && k < 10; k++)
				if (strcasecmp(v, ct_tcp_state_name((uint8_t)k)) == 0)
					st = k;
			if (v && strcasecmp(v, "CLOSED") == 0)
				st = 8;         /* conntrack(8)'s name for CLOSE */
			if (st < 0)
				err_at(c, e, "unknown TCP state \"%s\" (SYN_SENT, SYN_RECV, "
				       "ESTABLISHED, FIN_WAIT, CLOSE_WAIT, LAST_ACK, TIME_WAIT, "
				       "CLOSE, SYN_SENT2)", v ? v : "(not a string)");
			else
				rc->tcp_states |= (uint16_t)(1u << st);
		}
		if (!n)
			err_at(c, s, "'tcp_states' is empty: no TCP flow would ever be synced "
			       "(leave it out to sync TCP flows in any state)");
	}
	rc->min_age_ms = (uint32_t)get_int(c, g, "min_age", 0, 0, 86400, false) * 1000;

	s = config_setting_get_member(g, "zones");
	if (s && !config_setting_is_group(s)) {
		err_at(c, s, "'zones' must be a group: zones = { include = [ 1, 2 ]; } "
		       "or zones = { exclude = [ 3 ]; }");
	} else if (s) {
		static const char *const zk[] = { "include", "exclude", NULL };
		const config_setting_t *inc = config_setting_get_member(s, "include");
		const config_setting_t *exc = config_setting_get_member(s, "exclude");
		check_keys(c, s, "zones", zk);
		if (inc && exc)
			err_at(c, exc, "'zones' has 'include' or 'exclude', not both");
		else if (!inc && !exc)
			err_at(c, s, "'zones' needs 'include' or 'exclude'");
		const config_setting_t *l = inc ? inc : exc;
		rc->zones_exclude = !inc;
		n = l ? elems(c, l, "[ 1, 2 ]") : -1;
		for (int i = 0; i < n; i++) {
			const config_setting_t *e = config_setting_get_elem(l, (unsigned)i);
			int t = config_setting_type(e);
			long long z = config_setting_get_int64(e);
			if ((t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) || z < 0 || z > 65535)
				err_at(c, e, "a zone is a number from 0 to 65535");
			else if (rc->nzones == REPL_MAX_ZONES)
				err_at(c, e, "at most %d zones", REPL_MAX_ZONES);
			else
				rc->zones[rc->nzones++] = (uint16_t)z;
		}
		if (n == 0)
			err_at(c, l, inc ? "'include' is empty: nothing would be synced"
				     : "'exclude' is empty (leave 'zones' out to sync every zone)");
	}

	s = config_setting_get_member(g, "strip");
	if (s && (n = elems(c, s, "\"mark\", \"labels\", \"secmark\"")) >= 0) {
		for (int i = 0; i < n; i++) {
			const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
			const char *v = config_setting_get_string(e);
			if (v && strcmp(v, "mark") == 0)
				rc->strip |= CT_HAS_MARK;
			else if (v && strcmp(v, "labels") == 0)
				rc->strip |= CT_HAS_LABELS;
			else if (v && strcmp(v, "secmark") == 0)
				rc->strip |= CT_HAS_SECMARK;
			else
				err_at(c, e, "unknown attribute \"%s\" (mark, labels, secmark)",
				       v ? v : "(not a string)");
		}
	}
}

static void load_filter(struct ctx *c, const config_t *cf, struct config *cfg)
{
	static const char *const keys[] = { "ignore_addresses", "protocols", "tcp_states",
					    "min_age", "zones", "strip", NULL };
	static const char *const defproto[] = { "tcp", "udp", "icmp", "icmpv6", "sctp",
						"dccp", "gre", "udplite", NULL };
	const config_setting_t *g = group(c, cf, "filter", false);
	const config_setting_t *ign = NULL, *pro = NULL;
	struct repl_net n;

	if (g) {
		check_keys(c, g, "filter", keys);
		ign = config_setting_get_member(g, "ignore_addresses");
		pro = config_setting_get_member(g, "protocols");
	}
	if (ign) {
		if (!config_setting_is_array(ign) && !config_setting_is_list(ign)) {
			err_at(c, ign, "'ignore_addresses' must be an array of strings");
		} else {
			for (int i = 0; i < config_setting_length(ign); i++) {
				const config_setting_t *e = config_setting_get_elem(ign, (unsigned)i);
				const char *s = config_setting_get_string(e);
				if (!s || !parse_net(s, &n))
					err_at(c, e, "bad address or prefix \"%s\"", s ? s : "(not a string)");
				else
					add_ignore(cfg, &n);
			}
		}
	} else {
		parse_net("127.0.0.0/8", &n);
		add_ignore(cfg, &n);
		parse_net("::1/128", &n);
		add_ignore(cfg, &n);
	}
	if (pro) {
		if (!config_setting_is_array(pro) && !config_setting_is_list(pro)) {
			err_at(c, pro, "'protocols' must be an array of strings");
		} else {
			for (int i = 0; i < config_setting_length(pro); i++) {
				const config_setting_t *e = config_setting_get_elem(pro, (unsigned)i);
				const char *s = config_setting_get_string(e);
				int p = s ? ct_proto_by_name(s) : -1;
				if (p < 0)
					err_at(c, e, "unknown protocol \"%s\"", s ? s : "(not a string)");
				else
					cfg->repl.proto[p] = true;
			}
		}
	} else {
		for (int i = 0; defproto[i]; i++)
			cfg->repl.proto[ct_proto_by_name(defproto[i])] = true;
	}
	if (g)
		load_filter_more(c, g, cfg);
}

static void load_expectations(struct ctx *c, const config_t *cf, struct config *cfg)
{
	static const char *const keys[] = { "sync", "helpers", NULL };
	static const char *const known[] = { "ftp", "sip", "tftp", "h323", "pptp", "irc", "amanda",
					     "netbios-ns", "snmp", "sane", "RAS", "Q.931", NULL };
	const config_setting_t *g = group(c, cf, "expectations", false);

	cfg->repl.exp_sync = true;
	if (!g)
		return;
	check_keys(c, g, "expectations", keys);
	const config_setting_t *s = config_setting_get_member(g, "sync");
	if (s) {
		if (config_setting_type(s) != CONFIG_TYPE_BOOL)
			err_at(c, s, "'sync' must be true or false");
		else
			cfg->repl.exp_sync = config_setting_get_bool(s);
	}
	const config_setting_t *h = config_setting_get_member(g, "helpers");
	if (!h)
		return;
	if (!config_setting_is_array(h) && !config_setting_is_list(h)) {
		err_at(c, h, "'helpers' must be an array of helper names");
		return;
	}
	for (int i = 0; i < config_setting_length(h); i++) {
		const config_setting_t *e = config_setting_get_elem(h, (unsigned)i);
		const char *name = config_setting_get_string(e);
		bool ok = false;
		for (int k = 0; name && known[k]; k++)
			if (strcmp(name, known[k]) == 0)
				ok = true;
		if (!ok) {
			err_at(c, e, "unknown helper \"%s\" (ftp, sip, tftp, h323, pptp, ...)",
			       name ? name : "(not a string)");
			continue;
		}
		if (cfg->repl.nexp_helpers == 8) {
			err_at(c, e, "at most 8 helpers");
			break;
		}
		/* the kernel names the H.323 helpers RAS and Q.931 */
		if (strcmp(name, "h323") == 0) {
			snprintf(cfg->repl.exp_helpers[cfg->repl.nexp_helpers++], CT_HELPER_LEN, "RAS");
			if (cfg->repl.nexp_helpers < 8)
				snprintf(cfg->repl.exp_helpers[cfg->repl.nexp_helpers++], CT_HELPER_LEN,
					 "Q.931");
			continue;
		}
		snprintf(cfg->repl.exp_helpers[cfg->repl.nexp_helpers++], CT_HELPER_LEN, "%s", name);
	}
}

static bool get_bool(struct ctx *c, const config_setting_t *g, const char *name, bool def)
{
	const config_setting_t *s = g ? config_setting_get_member(g, name) : NULL;

	if (!s)
		return def;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
		err_at(c, s, "'%s' must be true or false", name);
		return def;
	}
	return config_setting_get_bool(s);
}

/* security = { key_file; next_key_file; cipher; insecure; } — keys are read
 * (and their files checked) here, so --check finds a bad key file too. */
static void load_security(struct ctx *c, const config_t *cf, struct config *cfg)
{
	static const char *const keys[] = { "key_file", "next_key_file", "cipher", "insecure",
					    NULL };
	static const char *const ciphers[] = { "aes-256-gcm", "chacha20-poly1305", NULL };
	const config_setting_t *g = group(c, cf, "security", false);

	if (!g) {
		err_at(c, config_root_setting(cf), "missing section 'security': set "
		       "security.key_file (make one with ctsyncctl keygen), or explicitly "
		       "security.insecure = true");
		return;
	}
	check_keys(c, g, "security", keys);
	cfg->cipher = choose(c, g, "cipher", ciphers, 0) == 1 ? SEAL_CHACHA20_POLY1305 :
							       SEAL_AES_256_GCM;
	cfg->insecure = get_bool(c, g, "insecure", false);
	const char *names[SEAL_MAX_KEYS] = { "key_file", "next_key_file" };
	for (unsigned i = 0; i < SEAL_MAX_KEYS; i++) {
		const char *path = get_str(c, g, names[i], NULL, false);
		const config_setting_t *s = config_setting_get_member(g, names[i]);
		char err[512];
		if (!path)
			continue;
		if (cfg->insecure) {
			err_at(c, s, "'%s' and insecure = true exclude each other", names[i]);
			continue;
		}
		if (i > 0 && cfg->nkeys == 0) {
			err_at(c, s, "'next_key_file' needs 'key_file'");
			continue;
		}
		if (path[0] != '/' || strlen(path) >= sizeof(cfg->key_file[0])) {
			err_at(c, s, "'%s' must be an absolute path shorter than %zu bytes", names[i],
			       sizeof(cfg->key_file[0]));
			continue;
		}
		if (keyfile_load(path, &cfg->keys[cfg->nkeys], err, sizeof(err)) < 0) {
			err_at(c, s, "%s", err);
			continue;
		}
		if (cfg->nkeys == 1 && cfg->keys[0].id == cfg->keys[1].id) {
			err_at(c, s, "both keys have id %u: make the next one with "
			       "ctsyncctl keygen --id N", cfg->keys[0].id);
			OPENSSL_cleanse(&cfg->keys[1], sizeof(cfg->keys[1]));
			continue;
		}
		snprintf(cfg->key_file[cfg->nkeys], sizeof(cfg->key_file[0]), "%s", path);
		cfg->nkeys++;
	}
	if (!cfg->insecure && cfg->nkeys == 0 && !config_setting_get_member(g, "key_file"))
		err_at(c, g, "no key: set key_file (make one with ctsyncctl keygen), or "
		       "explicitly insecure = true");
}

/* metrics = { listen = "127.0.0.1:9777"; } — loopback only: the numbers
 * say much about the firewall's traffic. */
static void load_metrics(struct ctx *c, const config_t *cf, struct config *cfg)
{
	static const char *const keys[] = { "listen", NULL };
	const config_setting_t *g = group(c, cf, "metrics", false);

	if (!g)
		return;
	check_keys(c, g, "metrics", keys);
	const char *v = get_str(c, g, "listen", NULL, false);
	const config_setting_t *s = config_setting_get_member(g, "listen");
	if (!v)
		return;
	char host[64];
	const char *colon = strrchr(v, ':');
	char *end;
	unsigned long port = colon ? strtoul(colon + 1, &end, 10) : 0;
	size_t hl = colon ? (size_t)(colon - v) : 0;
	if (hl >= 2 && v[0] == '[' && v[hl - 1] == ']') {       /* [::1]:9777 */
		v++;
		hl -= 2;
	}
	if (!colon || *end || port == 0 || port > 65535 || hl == 0 || hl >= sizeof(host)) {
		err_at(c, s, "'listen' must be ADDRESS:PORT (for example \"127.0.0.1:9777\")");
		return;
	}
	memcpy(host, v, hl);
	host[hl] = 0;
	struct sockaddr_storage ss;
	if (!parse_ip(host, &ss, (uint16_t)port)) {
		err_at(c, s, "bad address \"%s\"", host);
		return;
	}
	bool loopback = ss.ss_family == AF_INET ?
		(ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127 :
		IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&ss)->sin6_addr);
	if (!loopback) {
		err_at(c, s, "'listen' must be a loopback address (127.0.0.0/8 or ::1); "
		       "publish the numbers with a proxy or node_exporter's textfile collector");
		return;
	}
	cfg->metrics_listen = ss;
}

static void load_misc(struct ctx *c, const config_t *cf, struct config *cfg)
{
	static const char *const ckeys[] = { "socket", "group", "readonly_socket", NULL };
	static const char *const lkeys[] = { "level", "target", NULL };
	static const char *const kkeys[] = { "event_buffer", NULL };
	static const char *const dkeys[] = { "nice", NULL };
	static const char *const levels[] = { "error", "warn", "info", "debug", NULL };
	static const char *const targets[] = { "stderr", "syslog", NULL };
	const config_setting_t *g;

	if ((g = group(c, cf, "control", false))) {
		check_keys(c, g, "control", ckeys);
		const char *s = get_str(c, g, "socket", NULL, false);
		if (s && (s[0] != '/' || strlen(s) >= sizeof(cfg->socket_path)))
			err_at(c, config_setting_get_member(g, "socket"),
			       "'socket' must be an absolute path shorter than %zu bytes",
			       sizeof(cfg->socket_path));
		else if (s)
			snprintf(cfg->socket_path, sizeof(cfg->socket_path), "%s", s);
		s = get_str(c, g, "readonly_socket", NULL, false);
		if (s && (s[0] != '/' || strlen(s) >= sizeof(cfg->ro_socket_path)))
			err_at(c, config_setting_get_member(g, "readonly_socket"),
			       "'readonly_socket' must be an absolute path shorter than %zu bytes",
			       sizeof(cfg->ro_socket_path));
		else if (s)
			snprintf(cfg->ro_socket_path, sizeof(cfg->ro_socket_path), "%s", s);
		s = get_str(c, g, "group", NULL, false);
		if (s) {
			struct group *gr = getgrnam(s);
			if (!gr)
				err_at(c, config_setting_get_member(g, "group"), "no such group \"%s\"", s);
			else
				cfg->control_gid = (long)gr->gr_gid;
		}
	}
	if ((g = group(c, cf, "log", false))) {
		check_keys(c, g, "log", lkeys);
		cfg->log_level = choose(c, g, "level", levels, LOG_LVL_INFO);
		cfg->log_syslog = choose(c, g, "target", targets, 0) == 1;
	}
	if ((g = group(c, cf, "daemon", false))) {
		check_keys(c, g, "daemon", dkeys);
		cfg->nice = (int)get_int(c, g, "nice", cfg->nice, -20, 19, false);
	}
	if ((g = group(c, cf, "kernel", false))) {
		check_keys(c, g, "kernel", kkeys);
		cfg->event_buffer = (size_t)get_int(c, g, "event_buffer", (long long)cfg->event_buffer,
						    1 << 16, 1 << 30, false);
	}
}

static int load(const char *path, const config_t *cfp, struct config *cfg, FILE *errs)
{
	static const char *const top[] = { "node", "sync", "buckets", "defer", "transport", "filter",
					   "control", "log", "kernel", "daemon", "expectations",
					   "security", "metrics", "nat", NULL };
	struct ctx c = { path, errs, 0 };

	check_keys(&c, config_root_setting(cfp), NULL, top);
	load_node(&c, cfp, cfg);
	load_sync(&c, cfp, cfg);
	load_buckets(&c, cfp, cfg);
	load_defer(&c, cfp, cfg);
	load_transport(&c, cfp, cfg);
	load_filter(&c, cfp, cfg);
	load_expectations(&c, cfp, cfg);
	load_misc(&c, cfp, cfg);
	load_security(&c, cfp, cfg);
	load_metrics(&c, cfp, cfg);
	load_nat(&c, cfp, cfg);
	resolve_quorum(&c, cfp, cfg);

	/* Flows to or from our own sync address are the sync traffic itself. */
	/* the cluster's own traffic between the sync addresses is no flow to
	 * sync: ours, and every peer's (a peer's multicast or unicast frames
	 * make entries in our kernel too) */
	config_ignore_host(cfg, &cfg->transport.local);
	if (cfg->transport.local2.ss_family)
		config_ignore_host(cfg, &cfg->transport.local2);
	if (c.nerr)
		config_wipe(cfg);
	return c.nerr;
}

int config_load(const char *path, struct config *cfg, FILE *errs)
{
	config_t cf;

	defaults(cfg);
	FILE *fp = fopen(path, "r");
	if (!fp) {
		fprintf(errs, "%s: cannot open: %m\n", path);
		return -1;
	}
	config_init(&cf);
	if (config_read(&cf, fp) != CONFIG_TRUE) {
		fprintf(errs, "%s:%d: %s\n", path, config_error_line(&cf), config_error_text(&cf));
		fclose(fp);
		config_destroy(&cf);
		return 1;
	}
	fclose(fp);
	int n = load(path, &cf, cfg, errs);
	config_destroy(&cf);
	return n;
}

int config_parse(const char *text, const char *name, struct config *cfg, FILE *errs)
{
	config_t cf;

	defaults(cfg);
	config_init(&cf);
	if (config_read_string(&cf, text) != CONFIG_TRUE) {
		fprintf(errs, "%s:%d: %s\n", name, config_error_line(&cf), config_error_text(&cf));
		config_destroy(&cf);
		return 1;
	}
	int n = load(name, &cf, cfg, errs);
	config_destroy(&cf);
	return n;
}

void config_wipe(struct config *cfg)
{
	OPENSSL_cleanse(cfg->keys, sizeof(cfg->keys));
}
