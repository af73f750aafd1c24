/*
 * transport_int.h — what transport.c (the calls, UDP unicast and
 * multicast) and transport_cpg.c (corosync CPG) share.  Not for use outside
 * src/cluster/.
 */
#ifndef CTSYNC_CLUSTER_TRANSPORT_INT_H
#define CTSYNC_CLUSTER_TRANSPORT_INT_H

#include "cluster/transport.h"

struct cpgt;

struct transport {
	int fd;         /* receives; in unicast mode also sends */
	int tx;         /* multicast: sends, bound to our own address so that
			 * peers see the source they expect (for an IPv6
			 * link-scope group the kernel would pick fe80::) */
	struct transport_config cfg;
	size_t mtu;
	struct transport_stats st;
	transport_member_cb on_member;
	void *member_arg;
	struct cpgt *cpg;               /* TRANSPORT_CPG */
};

uint64_t transport_now_ms(void);

/* transport_cpg.c */
int cpgt_open(struct transport *t);
void cpgt_close(struct transport *t);
int cpgt_fd(const struct transport *t);
int cpgt_send(struct transport *t, const void *buf, size_t len);
ssize_t cpgt_recv(struct transport *t, void *buf, size_t cap, uint32_t *from);
void cpgt_poll(struct transport *t);
/* corosync's nodelist (every node, this one too) with their ring 0
 * addresses where they are IP addresses; how many, or -errno */
int cpgt_nodes(uint32_t *ids, struct sockaddr_storage *rings, unsigned max);

#endif
