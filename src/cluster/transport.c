/* transport.c — UDP unicast and multicast datagrams (transport.h). */
#include "cluster/transport.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

struct transport {
	int fd;         /* receives; in unicast mode also sends */
	int tx;         /* multicast: sends, bound to our own address so that
			 * peers see the source they expect (for an IPv6
			 * link-scope group the kernel would pick fe80::) */
	struct transport_config cfg;
	size_t mtu;
	struct transport_stats st;
	transport_member_cb on_member;  /* (UDP has no membership to report) */
	void *member_arg;
};

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

/* A UDP socket of the family, bound to the device, with the buffers. */
static int udp_socket(const struct transport_config *cfg, int family)
{
	int one = 1;
	int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (cfg->ifname[0] &&
	    setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, cfg->ifname,
		       (socklen_t)strlen(cfg->ifname)) < 0) {
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

int transport_open(struct transport **out, const struct transport_config *cfg)
{
	struct transport *t = calloc(1, sizeof(*t));
	int err;

	if (!t)
		return -ENOMEM;
	t->cfg = *cfg;
	t->fd = t->tx = -1;
	int family = cfg->local.ss_family;
	unsigned ifindex = cfg->ifname[0] ? if_nametoindex(cfg->ifname) : 0;
	if (cfg->ifname[0] && !ifindex) {
		err = -ENODEV;
		goto fail;
	}
	if ((t->fd = udp_socket(cfg, family)) < 0) {
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
		if ((t->tx = udp_socket(cfg, family)) < 0) {
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

	int mtu = 1500;
	if (cfg->ifname[0]) {
		struct ifreq ifr = { 0 };
		memcpy(ifr.ifr_name, cfg->ifname, sizeof(ifr.ifr_name));
		if (ioctl(t->fd, SIOCGIFMTU, &ifr) == 0 && ifr.ifr_mtu >= 576)
			mtu = ifr.ifr_mtu;
	}
	t->mtu = (size_t)mtu - (family == AF_INET6 ? 40 : 20) - 8;
	*out = t;
	return 0;
fail:
	transport_close(t);
	return err;
}

void transport_close(struct transport *t)
{
	if (!t)
		return;
	if (t->tx >= 0 && t->tx != t->fd)
		close(t->tx);
	if (t->fd >= 0)
		close(t->fd);
	free(t);
}

int transport_fd(const struct transport *t)
{
	return t->fd;
}

size_t transport_mtu(const struct transport *t)
{
	return t->mtu;
}

const struct transport_stats *transport_stats(const struct transport *t)
{
	return &t->st;
}

static int send_one(struct transport *t, const void *buf, size_t len,
		    const struct sockaddr_storage *to)
{
	for (int tries = 0; tries < 1000; tries++) {
		ssize_t r = sendto(t->tx, buf, len, 0, (const struct sockaddr *)to, sa_len(to));
		if (r >= 0) {
			t->st.tx_frames++;
			t->st.tx_bytes += len;
			return 0;
		}
		if (errno != EAGAIN && errno != ENOBUFS && errno != EINTR)
			break;
		/* Send buffer full: give the NIC a moment (bounded). */
		usleep(50);
	}
	t->st.tx_errors++;
	return -errno;
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

	if (t->cfg.type == TRANSPORT_MULTICAST)
		return send_one(t, buf, len, &t->cfg.group);
	for (unsigned i = 0; i < t->cfg.npeers; i++) {
		if (node != TRANSPORT_ALL && t->cfg.peers[i].id != node)
			continue;
		struct sockaddr_storage dst = peer_dst(t, &t->cfg.peers[i].addr);
		int e = send_one(t, buf, len, &dst);
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

ssize_t transport_recv(struct transport *t, void *buf, size_t cap, uint32_t *from,
		       struct sockaddr_storage *src)
{
	socklen_t fl = sizeof(*src);

	*from = 0;
	memset(src, 0, sizeof(*src));
	ssize_t r = recvfrom(t->fd, buf, cap, MSG_DONTWAIT | MSG_TRUNC,
			     (struct sockaddr *)src, &fl);
	if (r < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			t->st.rx_errors++;
		return -errno;
	}
	for (unsigned i = 0; i < t->cfg.npeers; i++)
		if (same_host(src, &t->cfg.peers[i].addr))
			*from = t->cfg.peers[i].id;
	if ((size_t)r > cap) {          /* truncated: not one of ours */
		t->st.rx_errors++;
		return -EMSGSIZE;
	}
	t->st.rx_frames++;
	t->st.rx_bytes += (size_t)r;
	return r;
}

void transport_on_member(struct transport *t, transport_member_cb fn, void *arg)
{
	t->on_member = fn;
	t->member_arg = arg;
}
