/*
 * transport_int.h — what transport.c (the calls, UDP unicast and
 * multicast) and transport_cpg.c (corosync CPG) share.  Not for use outside
 * src/cluster/.
 */
#ifndef CTSYNC_CLUSTER_TRANSPORT_INT_H
#define CTSYNC_CLUSTER_TRANSPORT_INT_H

#include "cluster/transport.h"

struct cpgt;

/* UDP back-pressure: datagrams the socket had no room for, in order,
 * sent as it drains (transport_flush); at most TXQ_MAX of them and
 * max_bytes in all (TXQ_BYTES, or the configured sndbuf if larger).  Past
 * that a datagram is dropped and counted: the peers' NACKs ask for it. */
#define TXQ_MAX 16384u
#define TXQ_BYTES (8u << 20)

#define DEDUP_SLOTS 8192u      /* direct-mapped: a copy evicted is left to the
				 * engine's replay window (and counted there) */

struct txq_item {
	struct sockaddr_storage to;
	size_t len;
	uint8_t data[];
};

struct txq {
	struct txq_item *v[TXQ_MAX];
	unsigned head, n;
	size_t bytes, max_bytes;
};

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
	transport_quorum_cb on_quorum;
	void *quorum_arg;
	struct cpgt *cpg;               /* TRANSPORT_CPG */
	/* UDP, a second path: its socket, both watched through epfd (what
	 * transport_fd gives then); the datagrams seen lately, by fingerprint,
	 * so that the copy arriving second is dropped here; which socket to
	 * read first next time (both make progress) */
	int fd2, epfd;
	uint64_t seen[DEDUP_SLOTS];
	bool read2_first;
	struct txq *q;                  /* UDP: allocated at the first full buffer */
};

uint64_t transport_now_ms(void);

/* transport_cpg.c */
int cpgt_open(struct transport *t);
void cpgt_close(struct transport *t);
int cpgt_fd(const struct transport *t);
int cpgt_send(struct transport *t, const void *buf, size_t len);
ssize_t cpgt_recv(struct transport *t, void *buf, size_t cap, uint32_t *from);
void cpgt_poll(struct transport *t);
const char *cpgt_quorum_note(const struct transport *t);
/* corosync's nodelist (every node, this one too) with their ring 0
 * addresses where they are IP addresses; how many, or -errno */
int cpgt_nodes(uint32_t *ids, struct sockaddr_storage *rings, unsigned max);

#endif
