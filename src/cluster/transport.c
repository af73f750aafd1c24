/* transport.c — the transport calls (transport.h), and UDP unicast and
 * multicast behind them; corosync CPG is in transport_cpg.c. */
#include "cluster/transport.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cluster/transport_int.h"

uint64_t transport_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* CPG: corosync's nodelist gives the ring addresses (ours and the peers')
 * and, where none are configured, the peers themselves. */
static int peers_from_corosync(struct transport *t)
{
	bool configured = t->cfg.npeers > 0;
	uint32_t ids[TRANSPORT_MAX_PEERS + 1];
	struct sockaddr_storage rings[TRANSPORT_MAX_PEERS + 1];
	int n = cpgt_nodes(ids, rings, TRANSPORT_MAX_PEERS + 1);

	if (n < 0)
		return configured ? 0 : n;
	for (int i = 0; i < n; i++) {
		if (ids[i] == t->cfg.local_node) {
			t->cfg.local = rings[i];
		} else if (configured) {
			for (unsigned k = 0; k < t->cfg.npeers; k++)
				if (t->cfg.peers[k].id == ids[i])
					t->cfg.peers[k].addr = rings[i];
		} else if (t->cfg.npeers < TRANSPORT_MAX_PEERS) {
			t->cfg.peers[t->cfg.npeers].id = ids[i];
			t->cfg.peers[t->cfg.npeers++].addr = rings[i];
		}
	}
	return 0;
}

static socklen_t sa_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					 : sizeof(struct sockaddr_in);
}

static int join_group(struct transport *t, unsigned ifindex)
{
	const struct sockaddr_storage *g = &t->cfg.group;
	int zero = 0, one = 1;

	if (g->ss_family == AF_INET) {
		struct ip_mreqn mr = {
			.imr_multiaddr = ((const struct sockaddr_in *)g)->sin_addr,
			.imr_ifindex = (int)ifindex,
		};
		if (setsockopt(t->fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0 ||
		    setsockopt(t->tx, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof(mr)) < 0 ||
		    setsockopt(t->tx, IPPROTO_IP, IP_MULTICAST_LOOP, &zero, sizeof(zero)) < 0 ||
		    setsockopt(t->tx, IPPROTO_IP, IP_MULTICAST_TTL, &one, sizeof(one)) < 0)
			return -errno;
	} else {
		struct ipv6_mreq mr = {
			.ipv6mr_multiaddr = ((const struct sockaddr_in6 *)g)->sin6_addr,
			.ipv6mr_interface = ifindex,
		};
		int idx = (int)ifindex;
		if (setsockopt(t->fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &mr, sizeof(mr)) < 0 ||
		    setsockopt(t->tx, IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof(idx)) < 0 ||
		    setsockopt(t->tx, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &zero, sizeof(zero)) < 0 ||
		    setsockopt(t->tx, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &one, sizeof(one)) < 0)
			return -errno;
		((struct sockaddr_in6 *)&t->cfg.group)->sin6_scope_id = ifindex;
	}
	return 0;
}

/* A UDP socket of the family, bound to the device ifname (if any), with
 * the buffers. */
static int udp_socket(const struct transport_config *cfg, int family, const char *ifname)
{
	int one = 1;
	int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (ifname[0] &&
	    setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)strlen(ifname)) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	if (cfg->rcvbuf > 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &cfg->rcvbuf, sizeof(int)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &cfg->rcvbuf, sizeof(int));
	if (cfg->sndbuf > 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &cfg->sndbuf, sizeof(int)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &cfg->sndbuf, sizeof(int));
	return fd;
}

static int if_mtu(int fd, const char *ifname)
{
	int mtu = 1500;
	if (ifname[0]) {
		struct ifreq ifr = { 0 };
		memcpy(ifr.ifr_name, ifname, sizeof(ifr.ifr_name));
		if (ioctl(fd, SIOCGIFMTU, &ifr) == 0 && ifr.ifr_mtu >= 576)
			mtu = ifr.ifr_mtu;
	}
	return mtu;
}

/* UDP unicast over a second path: its own socket on its own address (and
 * device), both sockets watched through one epoll descriptor. */
static int open_path2(struct transport *t)
{
	const struct transport_config *cfg = &t->cfg;
	struct epoll_event ev = { .events = EPOLLIN };

	if (cfg->type != TRANSPORT_UDP || cfg->local2.ss_family != cfg->local.ss_family)
		return -EINVAL;
	if (cfg->ifname2[0] && !if_nametoindex(cfg->ifname2))
		return -ENODEV;
	if ((t->fd2 = udp_socket(cfg, cfg->local2.ss_family, cfg->ifname2)) < 0)
		return t->fd2;
	if (bind(t->fd2, (const struct sockaddr *)&cfg->local2, sa_len(&cfg->local2)) < 0)
		return -errno;
	if ((t->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		return -errno;
	ev.data.fd = t->fd;
	if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->fd, &ev) < 0)
		return -errno;
	ev.data.fd = t->fd2;
	if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->fd2, &ev) < 0)
		return -errno;
	return 0;
}

int transport_open(struct transport **out, const struct transport_config *cfg)
{
	struct transport *t = calloc(1, sizeof(*t));
	int err;

	if (!t)
		return -ENOMEM;
	t->cfg = *cfg;
	t->fd = t->tx = t->fd2 = t->epfd = -1;
	if (cfg->type == TRANSPORT_CPG) {
		if ((err = cpgt_open(t)) < 0 || (err = peers_from_corosync(t)) < 0)
			goto fail;
		*out = t;
		return 0;
	}
	int family = cfg->local.ss_family;
	unsigned ifindex = cfg->ifname[0] ? if_nametoindex(cfg->ifname) : 0;
	if (cfg->ifname[0] && !ifindex) {
		err = -ENODEV;
		goto fail;
	}
	if ((t->fd = udp_socket(cfg, family, cfg->ifname)) < 0) {
		err = t->fd;
		goto fail;
	}
	if (cfg->type == TRANSPORT_MULTICAST) {
		if (cfg->group.ss_family != family) {
			err = -EAFNOSUPPORT;
			goto fail;
		}
		/* receive the group's datagrams: bind to the group and port */
		if (bind(t->fd, (const struct sockaddr *)&cfg->group, sa_len(&cfg->group)) < 0) {
			err = -errno;
			goto fail;
		}
		if ((t->tx = udp_socket(cfg, family, cfg->ifname)) < 0) {
			err = t->tx;
			goto fail;
		}
		struct sockaddr_storage src = cfg->local;
		if (family == AF_INET6) {
			((struct sockaddr_in6 *)&src)->sin6_port = 0;
			((struct sockaddr_in6 *)&src)->sin6_scope_id = ifindex;
		} else {
			((struct sockaddr_in *)&src)->sin_port = 0;
		}
		if (bind(t->tx, (struct sockaddr *)&src, sa_len(&src)) < 0) {
			err = -errno;
			goto fail;
		}
		if ((err = join_group(t, ifindex)) < 0)
			goto fail;
	} else {
		if (bind(t->fd, (const struct sockaddr *)&cfg->local, sa_len(&cfg->local)) < 0) {
			err = -errno;
			goto fail;
		}
		t->tx = t->fd;
	}

	if (cfg->local2.ss_family && (err = open_path2(t)) < 0)
		goto fail;
	int mtu = if_mtu(t->fd, cfg->ifname);
	if (t->fd2 >= 0 && if_mtu(t->fd2, cfg->ifname2) < mtu)
		mtu = if_mtu(t->fd2, cfg->ifname2);
	t->mtu = (size_t)mtu - (family == AF_INET6 ? 40 : 20) - 8;
	*out = t;
	return 0;
fail:
	transport_close(t);
	return err;
}

static void txq_free(struct txq *q)
{
	if (!q)
		return;
	for (unsigned i = 0; i < q->n; i++)
		free(q->v[(q->head + i) % TXQ_MAX]);
	free(q);
}

void transport_close(struct transport *t)
{
	if (!t)
		return;
	cpgt_close(t);
	txq_free(t->q);
	if (t->tx >= 0 && t->tx != t->fd)
		close(t->tx);
	if (t->fd >= 0)
		close(t->fd);
	if (t->fd2 >= 0)
		close(t->fd2);
	if (t->epfd >= 0)
		close(t->epfd);
	free(t);
}

int transport_fd(const struct transport *t)
{
	if (t->cfg.type == TRANSPORT_CPG)
		return cpgt_fd(t);
	return t->epfd >= 0 ? t->epfd : t->fd;
}

unsigned transport_paths(const struct transport *t)
{
	return t->fd2 >= 0 ? 2 : 1;
}

void transport_poll(struct transport *t)
{
	if (t->cfg.type == TRANSPORT_CPG)
		cpgt_poll(t);
	else
		transport_flush(t);     /* (ENOBUFS leaves the socket writable) */
}

const char *transport_quorum_note(const struct transport *t)
{
	return t->cfg.type == TRANSPORT_CPG ? cpgt_quorum_note(t) : NULL;
}

unsigned transport_peers(const struct transport *t, struct transport_peer *out, unsigned max)
{
	unsigned n = 0;
	for (unsigned i = 0; i < t->cfg.npeers && n < max; i++)
		out[n++] = t->cfg.peers[i];
	return n;
}

const struct sockaddr_storage *transport_local(const struct transport *t)
{
	return &t->cfg.local;
}

size_t transport_mtu(const struct transport *t)
{
	return t->mtu;
}

const struct transport_stats *transport_stats(const struct transport *t)
{
	return &t->st;
}

/* ---- UDP back-pressure: queue, never wait ------------------------------------- */

static bool full(int err)
{
	return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS || err == EINTR;
}

/* 0 sent, -EAGAIN no room now, or another -errno (counted). */
static int try_send(struct transport *t, const void *buf, size_t len,
		    const struct sockaddr_storage *to)
{
	if (sendto(t->tx, buf, len, MSG_DONTWAIT, (const struct sockaddr *)to, sa_len(to)) >= 0) {
		t->st.tx_frames++;
		t->st.tx_bytes += len;
		return 0;
	}
	int err = errno;
	if (full(err))
		return -EAGAIN;
	t->st.tx_errors++;
	return -err;
}

static int enqueue(struct transport *t, const void *buf, size_t len,
		   const struct sockaddr_storage *to)
{
	struct txq *q = t->q;

	if (!q && (q = t->q = calloc(1, sizeof(*q))))
		q->max_bytes = t->cfg.sndbuf > (int)TXQ_BYTES ? (size_t)t->cfg.sndbuf : TXQ_BYTES;
	struct txq_item *it = NULL;
	if (!q || q->n == TXQ_MAX || q->bytes + len > q->max_bytes ||
	    !(it = malloc(sizeof(*it) + len))) {
		t->st.tx_dropped++;     /* the peers' NACKs ask for it again */
		return -ENOBUFS;
	}
	it->to = *to;
	it->len = len;
	memcpy(it->data, buf, len);
	q->v[(q->head + q->n++) % TXQ_MAX] = it;
	q->bytes += len;
	t->st.tx_queued++;
	return 0;
}

static int send_one(struct transport *t, const void *buf, size_t len,
		    const struct sockaddr_storage *to)
{
	/* behind a queue, a datagram waits its turn: order is kept */
	if (!t->q || !t->q->n) {
		int err = try_send(t, buf, len, to);
		if (err != -EAGAIN)
			return err;
		t->st.tx_waits++;
	}
	return enqueue(t, buf, len, to);
}

bool transport_tx_pending(const struct transport *t)
{
	return t->q && t->q->n;
}

int transport_tx_fd(const struct transport *t)
{
	return t->cfg.type == TRANSPORT_CPG ? -1 : t->tx;
}

int transport_flush(struct transport *t)
{
	struct txq *q = t->q;

	while (q && q->n) {
		struct txq_item *it = q->v[q->head];
		int err = try_send(t, it->data, it->len, &it->to);
		if (err == -EAGAIN)
			return -EAGAIN;
		q->v[q->head] = NULL;   /* sent, or failed for good (counted) */
		q->head = (q->head + 1) % TXQ_MAX;
		q->n--;
		q->bytes -= it->len;
		free(it);
	}
	return 0;
}


/* The peer's address with the port we all listen on. */
static struct sockaddr_storage peer_dst(const struct transport *t, const struct sockaddr_storage *a)
{
	struct sockaddr_storage dst = *a;

	if (dst.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&dst)->sin6_port = ((const struct sockaddr_in6 *)&t->cfg.local)->sin6_port;
	else
		((struct sockaddr_in *)&dst)->sin_port = ((const struct sockaddr_in *)&t->cfg.local)->sin_port;
	return dst;
}

int transport_send(struct transport *t, uint32_t node, const void *buf, size_t len)
{
	int err = node == TRANSPORT_ALL ? 0 : -ENOENT;

	if (t->cfg.type == TRANSPORT_CPG)
		return cpgt_send(t, buf, len);  /* the group; the frame says for whom */
	if (t->cfg.type == TRANSPORT_MULTICAST)
		return send_one(t, buf, len, &t->cfg.group);
	for (unsigned i = 0; i < t->cfg.npeers; i++) {
		if (node != TRANSPORT_ALL && t->cfg.peers[i].id != node)
			continue;
		struct sockaddr_storage dst = peer_dst(t, &t->cfg.peers[i].addr);
		int e = send_one(t, buf, len, &dst);
		/* the second path: a copy, never queued (the first path's
		 * queue and the peers' NACKs repair what both lose) */
		if (t->fd2 >= 0 && t->cfg.peers[i].addr2.ss_family) {
			struct sockaddr_storage d2 = peer_dst(t, &t->cfg.peers[i].addr2);
			if (sendto(t->fd2, buf, len, MSG_DONTWAIT, (const struct sockaddr *)&d2,
				   sa_len(&d2)) < 0)
				t->st.tx_path2_errors++;
			else
				e = 0;  /* sent on one path at least */
		}
		if (node != TRANSPORT_ALL)
			return e;
		if (e)
			err = e;
	}
	return err;
}

static bool same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		      &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
}

/* A datagram's fingerprint: its length, its first 32 bytes (a frame's
 * header: node, epoch, packet number) and its last 16 (a sealed frame's
 * tag), FNV-1a. */
static uint64_t fingerprint(const uint8_t *p, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull ^ len;
	size_t head = len < 32 ? len : 32, tail = len > 48 ? 16 : 0;

	for (size_t i = 0; i < head; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	for (size_t i = len - tail; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h | 1;                   /* 0: an empty slot */
}

/* Over two paths: seen already by the other one? */
static bool seen_twice(struct transport *t, const void *buf, size_t len)
{
	uint64_t f = fingerprint(buf, len);
	uint64_t *slot = &t->seen[f % DEDUP_SLOTS];

	if (*slot == f) {
		*slot = 0;              /* a third copy is a replay: the engine's */
		return true;
	}
	*slot = f;
	return false;
}

static ssize_t recv_from(struct transport *t, int fd, void *buf, size_t cap,
			 struct sockaddr_storage *src)
{
	socklen_t fl = sizeof(*src);
	ssize_t r = recvfrom(fd, buf, cap, MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr *)src, &fl);

	if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
		t->st.rx_errors++;
	return r < 0 ? -errno : r;
}

ssize_t transport_recv(struct transport *t, void *buf, size_t cap, uint32_t *from,
		       struct sockaddr_storage *src)
{
	*from = 0;
	memset(src, 0, sizeof(*src));
	if (t->cfg.type == TRANSPORT_CPG)
		return cpgt_recv(t, buf, cap, from);
	ssize_t r;
	bool path2 = false;
	for (;;) {
		if (t->fd2 < 0) {
			r = recv_from(t, t->fd, buf, cap, src);
		} else {
			/* both sockets in turn, so that neither starves */
			int first = t->read2_first ? t->fd2 : t->fd;
			int second = t->read2_first ? t->fd : t->fd2;
			t->read2_first = !t->read2_first;
			r = recv_from(t, first, buf, cap, src);
			path2 = first == t->fd2;
			if (r == -EAGAIN || r == -EWOULDBLOCK) {
				r = recv_from(t, second, buf, cap, src);
				path2 = second == t->fd2;
			}
		}
		if (r < 0)
			return r;
		if ((size_t)r > cap) {          /* truncated: not one of ours */
			t->st.rx_errors++;
			return -EMSGSIZE;
		}
		if (t->fd2 < 0 || !seen_twice(t, buf, (size_t)r))
			break;
		t->st.rx_dup_path++;
	}
	for (unsigned i = 0; i < t->cfg.npeers; i++)
		if (same_host(src, &t->cfg.peers[i].addr) ||
		    (t->cfg.peers[i].addr2.ss_family && same_host(src, &t->cfg.peers[i].addr2)))
			*from = t->cfg.peers[i].id;
	t->st.rx_frames++;
	t->st.rx_bytes += (size_t)r;
	t->st.rx_path2 += path2;
	return r;
}

void transport_on_member(struct transport *t, transport_member_cb fn, void *arg)
{
	t->on_member = fn;
	t->member_arg = arg;
}

void transport_on_quorum(struct transport *t, transport_quorum_cb fn, void *arg)
{
	t->on_quorum = fn;
	t->quorum_arg = arg;
}
