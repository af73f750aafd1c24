/*
 * transport_cpg.c — the corosync CPG transport (transport.h).
 *
 * Every node's daemon joins one CPG group; a datagram is one CPG message,
 * multicast to the group in agreed order (CPG_TYPE_AGREED) — also one
 * meant for a single node: the frame says whom it is for, and the others
 * skip it (wire.h).  Node ids are corosync's: the daemon's node.id must be
 * the local corosync node id, and without configured peers the peers are
 * corosync's nodelist.  The group's configuration changes are the
 * membership: a daemon joining or leaving the group is reported to the
 * member callback (a corosync that dies takes its daemon out of the group
 * on every other node).
 *
 * Back-pressure: when corosync answers CS_ERR_TRY_AGAIN the message waits in
 * a bounded queue (sndbuf bytes) and is sent again, in order, before any
 * newer one, from the next send or transport_poll().  A full queue drops
 * the datagram and counts it, as a full socket buffer would: the engine's
 * sequence numbers and NACKs repair it.
 *
 * Quorum: corosync's (libquorum: votequorum, or whichever provider is
 * configured), tracked from the same connection's life: every change is
 * reported to the quorum callback, read from transport_poll(); a corosync
 * without a quorum provider counts as quorate, and losing corosync as not.
 *
 * Losing corosync (it stopped, or restarted) reports every peer down and
 * reconnects once a second from transport_poll(); the file descriptor then
 * changes (transport_fd()).  Nothing here waits: a join that corosync
 * answers with CS_ERR_TRY_AGAIN (it is forming a membership) is tried
 * again at the next transport_poll(), for up to JOIN_RETRY_MS, then the
 * connection starts over.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <corosync/cmap.h>
#include <corosync/cpg.h>
#include <corosync/quorum.h>

#include "cluster/transport_int.h"
#include "util/log.h"

#define RECONNECT_MS 1000
#define JOIN_RETRY_MS 1000

struct qmsg {
	struct qmsg *next;
	size_t len;
	uint8_t data[];
};

struct cpgt {
	cpg_handle_t h;
	bool up;                        /* joined, fd valid */
	bool joining;                   /* initialized, cpg_join said try again */
	uint64_t join_since;
	int fd;
	uint32_t local;                 /* our corosync node id */
	uint32_t pid;
	uint64_t down_at;               /* when the link was lost (for reconnects) */
	/* where cpg_dispatch delivers the message transport_recv asked for:
	 * the caller's buffer, copied into once */
	uint8_t *rx;
	size_t rx_len, rx_cap;
	uint32_t rx_from;
	bool rx_full, rx_trunc;
	/* send queue under back-pressure */
	struct qmsg *qhead, *qtail;
	size_t qbytes;
	/* group members (node ids) as last reported */
	uint32_t members[TRANSPORT_MAX_PEERS + 1];
	unsigned nmembers;
	/* quorum */
	quorum_handle_t qh;
	bool q_up;
	bool q_none;                    /* no quorum service: not asked again */
	int quorate;                    /* as last reported: -1 not yet */
	char qnote[200];                /* a set-up a partition defeats ("": none) */
};

static struct transport *of_handle(cpg_handle_t h)
{
	void *ctx = NULL;
	cpg_context_get(h, &ctx);
	return ctx;
}

static bool is_peer(const struct transport *t, uint32_t node)
{
	for (unsigned i = 0; i < t->cfg.npeers; i++)
		if (t->cfg.peers[i].id == node)
			return true;
	return false;
}

static void deliver(cpg_handle_t h, const struct cpg_name *group, uint32_t nodeid, uint32_t pid,
		    void *msg, size_t len)
{
	struct transport *t = of_handle(h);
	struct cpgt *c = t->cpg;

	if (nodeid == c->local && pid == c->pid)
		return;                 /* our own, looped back */
	c->rx_full = true;
	c->rx_from = is_peer(t, nodeid) ? nodeid : 0;
	c->rx_trunc = len > c->rx_cap;
	c->rx_len = c->rx_trunc ? 0 : len;
	if (!c->rx_trunc)
		memcpy(c->rx, msg, len);
}

static bool listed(const uint32_t *v, unsigned n, uint32_t x)
{
	for (unsigned i = 0; i < n; i++)
		if (v[i] == x)
			return true;
	return false;
}

/* The group's members now: report who came and who went. */
static void set_members(struct transport *t, const uint32_t *now, unsigned n)
{
	struct cpgt *c = t->cpg;

	for (unsigned i = 0; i < c->nmembers; i++)
		if (!listed(now, n, c->members[i]) && t->on_member)
			t->on_member(t->member_arg, c->members[i], false);
	for (unsigned i = 0; i < n; i++)
		if (!listed(c->members, c->nmembers, now[i]) && t->on_member)
			t->on_member(t->member_arg, now[i], true);
	if (n)
		memcpy(c->members, now, n * sizeof(now[0]));
	c->nmembers = n;
}

static void confchg(cpg_handle_t h, const struct cpg_name *group,
		    const struct cpg_address *members, size_t nmembers,
		    const struct cpg_address *left, size_t nleft,
		    const struct cpg_address *joined, size_t njoined)
{
	struct transport *t = of_handle(h);
	uint32_t now[TRANSPORT_MAX_PEERS + 1];
	unsigned n = 0;

	for (size_t i = 0; i < nmembers && n < TRANSPORT_MAX_PEERS + 1; i++)
		if (members[i].nodeid != t->cpg->local && is_peer(t, members[i].nodeid) &&
		    !listed(now, n, members[i].nodeid))
			now[n++] = members[i].nodeid;
	log_info("cpg: group %.*s has %zu members (%zu joined, %zu left)",
		 (int)(group->length < CPG_MAX_NAME_LENGTH ? group->length : CPG_MAX_NAME_LENGTH),
		 group->value, nmembers, njoined, nleft);
	set_members(t, now, n);
}

static void totem_confchg(cpg_handle_t h, struct cpg_ring_id ring, uint32_t n,
			  const uint32_t *members)
{
	log_debug("cpg: totem ring %u.%llu, %u nodes", ring.nodeid, (unsigned long long)ring.seq, n);
}

static void set_quorate(struct transport *t, bool quorate)
{
	struct cpgt *c = t->cpg;

	if (c->quorate == (int)quorate)
		return;
	c->quorate = quorate;
	if (t->on_quorum)
		t->on_quorum(t->quorum_arg, quorate);
}

static void quorum_notify(quorum_handle_t h, uint32_t quorate, struct quorum_ring_id ring,
			  uint32_t n, const uint32_t *members)
{
	void *ctx = NULL;
	quorum_context_get(h, (const void **)&ctx);
	struct transport *t = ctx;
	log_info("cpg: corosync says the partition (ring %u.%llu, %u nodes) is %squorate",
		 ring.nodeid, (unsigned long long)ring.seq, n, quorate ? "" : "not ");
	set_quorate(t, quorate != 0);
}

static void quorum_close(struct cpgt *c)
{
	if (c->q_up)
		quorum_finalize(c->qh);
	c->q_up = false;
}

static bool cmap_has(cmap_handle_t h, const char *key)
{
	char *s = NULL;
	if (cmap_get_string(h, key, &s) != CS_OK)
		return false;
	free(s);
	return true;
}

/* Two nodes cannot tell a dead peer from a cut link with one path:
 * votequorum's two_node lets each go on alone, so a cut of the only link
 * makes both forward.  Safe: a second link (ring1_addr) or a quorum device
 * (corosync-qdevice with a corosync-qnetd witness).  Said once per
 * connection, kept for status. */
static void partition_note(struct transport *t)
{
	struct cpgt *c = t->cpg;
	cmap_handle_t h;
	uint8_t two_node = 0;
	unsigned nodes = 0;
	bool second_link = false;
	char key[CMAP_KEYNAME_MAXLEN + 1];

	c->qnote[0] = 0;
	if (cmap_initialize(&h) != CS_OK)
		return;
	for (unsigned i = 0; i < 64; i++) {
		snprintf(key, sizeof(key), "nodelist.node.%u.nodeid", i);
		uint32_t id;
		if (cmap_get_uint32(h, key, &id) != CS_OK)
			break;
		nodes++;
		snprintf(key, sizeof(key), "nodelist.node.%u.ring1_addr", i);
		second_link |= cmap_has(h, key);
	}
	bool device = cmap_has(h, "quorum.device.model");
	cmap_get_uint8(h, "quorum.two_node", &two_node);
	cmap_finalize(h);
	if (nodes != 2 || device || second_link)
		return;
	if (two_node)
		snprintf(c->qnote, sizeof(c->qnote), "2 nodes, one link, no quorum device "
			 "(two_node): a cut of the sync link alone makes both forward");
	else
		snprintf(c->qnote, sizeof(c->qnote), "2 nodes, no quorum device: either "
			 "node's death leaves the other without quorum (no failover)");
	log_warnx("cpg: %s; add a second knet link (ring1_addr) or corosync-qdevice with a "
		  "corosync-qnetd witness (docs/OPERATIONS.md, \"Partitions\")", c->qnote);
}

const char *cpgt_quorum_note(const struct transport *t)
{
	return t->cpg && t->cpg->qnote[0] ? t->cpg->qnote : NULL;
}

/* corosync's quorum, tracked; a corosync without a provider is quorate. */
static void quorum_open(struct transport *t)
{
	struct cpgt *c = t->cpg;
	quorum_model_v1_data_t model = { .model = QUORUM_MODEL_V1, .quorum_notify_fn = quorum_notify };
	uint32_t type = 0;

	if (quorum_model_initialize(&c->qh, QUORUM_MODEL_V1, (quorum_model_data_t *)&model, &type,
				    t) != CS_OK) {
		log_warnx("cpg: corosync's quorum service does not answer: taken as quorate");
		c->q_none = true;
		set_quorate(t, true);
		return;
	}
	c->q_up = true;
	if (type == QUORUM_FREE) {
		log_warnx("cpg: corosync has no quorum provider (quorum { provider: "
			  "corosync_votequorum }): a partition of the sync link makes both sides "
			  "forward");
		quorum_close(c);
		c->q_none = true;
		set_quorate(t, true);
		return;
	}
	partition_note(t);
	if (quorum_trackstart(c->qh, CS_TRACK_CHANGES | CS_TRACK_CURRENT) != CS_OK) {
		log_warnx("cpg: could not track corosync's quorum: taken as not quorate");
		quorum_close(c);
		set_quorate(t, false);
	}
}

static void link_down(struct transport *t, const char *why, cs_error_t e)
{
	struct cpgt *c = t->cpg;

	if (c->up) {
		log_warnx("cpg: lost corosync (%s: error %d); reconnecting every %d ms", why, e,
			  RECONNECT_MS);
		cpg_finalize(c->h);
	}
	c->up = false;
	c->fd = -1;
	c->down_at = transport_now_ms();
	set_members(t, NULL, 0);
	quorum_close(c);
	c->q_none = false;              /* asked again once reconnected */
	set_quorate(t, false);
}

/* One cpg_join: 0 joined, -EAGAIN not yet (again from cpgt_poll), or
 * -EIO (the handle is gone: a reconnect follows RECONNECT_MS later). */
static int try_join(struct transport *t)
{
	struct cpgt *c = t->cpg;
	struct cpg_name name;

	name.length = (uint32_t)strlen(t->cfg.cpg_group);
	memcpy(name.value, t->cfg.cpg_group, name.length);
	cs_error_t e = cpg_join(c->h, &name);
	if (e == CS_OK) {
		c->joining = false;
		c->up = true;
		return 0;
	}
	if (e == CS_ERR_TRY_AGAIN && transport_now_ms() - c->join_since < JOIN_RETRY_MS) {
		t->st.tx_retries++;
		return -EAGAIN;
	}
	log_warnx("cpg: could not join group %s (error %d)", t->cfg.cpg_group, e);
	cpg_finalize(c->h);
	c->joining = false;
	c->down_at = transport_now_ms();
	return -EIO;
}

static int connect_cpg(struct transport *t)
{
	struct cpgt *c = t->cpg;
	cpg_model_v1_data_t model = {
		.model = CPG_MODEL_V1,
		.cpg_deliver_fn = deliver,
		.cpg_confchg_fn = confchg,
		.cpg_totem_confchg_fn = totem_confchg,
		.flags = 0,
	};
	cs_error_t e;
	unsigned local;
	uint32_t atomic = 0;

	if ((e = cpg_model_initialize(&c->h, CPG_MODEL_V1, (cpg_model_data_t *)&model, t)) != CS_OK)
		return -ECONNREFUSED;
	if ((e = cpg_local_get(c->h, &local)) != CS_OK || (e = cpg_fd_get(c->h, &c->fd)) != CS_OK ||
	    (e = cpg_max_atomic_msgsize_get(c->h, &atomic)) != CS_OK) {
		cpg_finalize(c->h);
		return -EIO;
	}
	c->local = local;
	/* frames within one atomic message (and within a UDP datagram's size,
	 * the largest frame the engine makes) */
	size_t mtu = atomic ? atomic : 1400;
	if (mtu > TRANSPORT_MAX_DATAGRAM)
		mtu = TRANSPORT_MAX_DATAGRAM;
	t->mtu = mtu;
	c->joining = true;
	c->join_since = transport_now_ms();
	return try_join(t);
}

int cpgt_open(struct transport *t)
{
	struct cpgt *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	t->cpg = c;
	c->fd = -1;
	c->quorate = -1;
	c->pid = (uint32_t)getpid();
	int err = connect_cpg(t);
	if (err < 0 && err != -EAGAIN)
		return err;             /* (joining: cpgt_poll goes on with it) */
	if (t->cfg.local_node && c->local != t->cfg.local_node) {
		log_err("cpg: this node's id is %u, but corosync's node id here is %u: they must "
			"be the same", t->cfg.local_node, c->local);
		return -EINVAL;
	}
	return 0;
}

static void queue_free(struct cpgt *c)
{
	while (c->qhead) {
		struct qmsg *m = c->qhead;
		c->qhead = m->next;
		free(m);
	}
	c->qtail = NULL;
	c->qbytes = 0;
}

void cpgt_close(struct transport *t)
{
	struct cpgt *c = t->cpg;

	if (!c)
		return;
	if (c->up) {
		struct cpg_name name;
		name.length = (uint32_t)strlen(t->cfg.cpg_group);
		memcpy(name.value, t->cfg.cpg_group, name.length);
		cpg_leave(c->h, &name);
	}
	if (c->up || c->joining)
		cpg_finalize(c->h);
	quorum_close(c);
	queue_free(c);
	free(c);
	t->cpg = NULL;
}

int cpgt_fd(const struct transport *t)
{
	return t->cpg->up ? t->cpg->fd : -1;
}

static cs_error_t mcast(struct cpgt *c, const void *buf, size_t len)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	return cpg_mcast_joined(c->h, CPG_TYPE_AGREED, &iov, 1);
}

/* Send what waits, oldest first; stop at the first TRY_AGAIN. */
static int drain_queue(struct transport *t)
{
	struct cpgt *c = t->cpg;

	while (c->qhead && c->up) {
		struct qmsg *m = c->qhead;
		cs_error_t e = mcast(c, m->data, m->len);
		if (e == CS_ERR_TRY_AGAIN) {
			t->st.tx_retries++;
			return -EAGAIN;
		}
		c->qhead = m->next;
		if (!c->qhead)
			c->qtail = NULL;
		c->qbytes -= m->len;
		if (e == CS_OK) {
			t->st.tx_frames++;
			t->st.tx_bytes += m->len;
		} else {
			t->st.tx_errors++;
			if (e == CS_ERR_LIBRARY || e == CS_ERR_BAD_HANDLE)
				link_down(t, "send", e);
		}
		free(m);
	}
	return 0;
}

int cpgt_send(struct transport *t, const void *buf, size_t len)
{
	struct cpgt *c = t->cpg;

	if (!c->up) {
		t->st.tx_errors++;
		return -ENOTCONN;
	}
	if (drain_queue(t) == 0) {
		cs_error_t e = mcast(c, buf, len);
		if (e == CS_OK) {
			t->st.tx_frames++;
			t->st.tx_bytes += len;
			return 0;
		}
		if (e != CS_ERR_TRY_AGAIN) {
			t->st.tx_errors++;
			if (e == CS_ERR_LIBRARY || e == CS_ERR_BAD_HANDLE)
				link_down(t, "send", e);
			return -EIO;
		}
		t->st.tx_retries++;
	}
	/* corosync is busy: wait in order behind what already waits */
	size_t cap = t->cfg.sndbuf > 0 ? (size_t)t->cfg.sndbuf : 8u << 20;
	struct qmsg *m = c->qbytes + len <= cap ? malloc(sizeof(*m) + len) : NULL;
	if (!m) {
		t->st.tx_errors++;
		t->st.tx_dropped++;
		return -ENOBUFS;
	}
	m->next = NULL;
	m->len = len;
	memcpy(m->data, buf, len);
	if (c->qtail)
		c->qtail->next = m;
	else
		c->qhead = m;
	c->qtail = m;
	c->qbytes += len;
	t->st.tx_queued++;
	return 0;
}

ssize_t cpgt_recv(struct transport *t, void *buf, size_t cap, uint32_t *from)
{
	struct cpgt *c = t->cpg;

	if (!c->up)
		return -EAGAIN;
	c->rx = buf;
	c->rx_cap = cap;
	/* one callback at a time until a message came, or nothing is left */
	for (int i = 0; i < 64 && !c->rx_full; i++) {
		cs_error_t e = cpg_dispatch(c->h, CS_DISPATCH_ONE_NONBLOCKING);
		if (e == CS_ERR_TRY_AGAIN)
			return -EAGAIN;
		if (e != CS_OK) {
			link_down(t, "dispatch", e);
			return -EAGAIN;
		}
	}
	if (!c->rx_full)
		return -EAGAIN;
	c->rx_full = false;
	*from = c->rx_from;
	if (c->rx_trunc) {
		t->st.rx_errors++;
		return -EMSGSIZE;
	}
	t->st.rx_frames++;
	t->st.rx_bytes += c->rx_len;
	return (ssize_t)c->rx_len;
}

void cpgt_poll(struct transport *t)
{
	struct cpgt *c = t->cpg;

	if (c->up) {
		drain_queue(t);
		if (!c->q_up && !c->q_none)
			quorum_open(t);
		if (c->q_up && quorum_dispatch(c->qh, CS_DISPATCH_ALL) != CS_OK) {
			log_warnx("cpg: lost corosync's quorum service: taken as not quorate");
			quorum_close(c);
			set_quorate(t, false);
		}
		return;
	}
	if (c->joining) {
		if (try_join(t) == 0)
			log_info("cpg: joined group %s (node %u)", t->cfg.cpg_group, c->local);
		return;
	}
	if (transport_now_ms() - c->down_at < RECONNECT_MS)
		return;
	c->down_at = transport_now_ms();
	if (connect_cpg(t) == 0)
		log_info("cpg: connected to corosync again (node %u)", c->local);
}

/* A ring address as an IP (a host name stays unset: family 0). */
static void ring_addr(cmap_handle_t h, const char *key, struct sockaddr_storage *ss)
{
	char *s = NULL;

	memset(ss, 0, sizeof(*ss));
	if (cmap_get_string(h, key, &s) != CS_OK || !s)
		return;
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, s, &a4->sin_addr) == 1)
		a4->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, s, &a6->sin6_addr) == 1)
		a6->sin6_family = AF_INET6;
	free(s);
}

/* corosync's nodelist: nodelist.node.N.nodeid and .ring0_addr */
int cpgt_nodes(uint32_t *ids, struct sockaddr_storage *rings, unsigned max)
{
	cmap_handle_t h;
	cmap_iter_handle_t it;
	char key[CMAP_KEYNAME_MAXLEN + 1];
	size_t vlen;
	cmap_value_types_t type;
	unsigned n = 0;

	if (cmap_initialize(&h) != CS_OK)
		return -ECONNREFUSED;
	if (cmap_iter_init(h, "nodelist.node.", &it) != CS_OK) {
		cmap_finalize(h);
		return -EIO;
	}
	while (cmap_iter_next(h, it, key, &vlen, &type) == CS_OK) {
		size_t kl = strlen(key);
		uint32_t id;
		if (kl < 7 || strcmp(key + kl - 7, ".nodeid") != 0)
			continue;
		if (cmap_get_uint32(h, key, &id) != CS_OK || n >= max)
			continue;
		memcpy(key + kl - 7, ".ring0_addr", 12);
		ring_addr(h, key, &rings[n]);
		ids[n++] = id;
	}
	cmap_iter_finalize(h, it);
	cmap_finalize(h);
	return (int)n;
}
