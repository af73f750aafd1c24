/*
 * transport.h — datagrams between cluster nodes, addressed by node id.
 * Three types behind the same calls: UDP unicast to each configured peer,
 * one IPv4/IPv6 multicast group on a named interface (transport.c), and a
 * corosync CPG group (transport_cpg.c).  Knows nothing of conntrack or of the frame
 * format: it moves opaque datagrams, says which node each came from (by
 * its source, as configured), and counts them.  A type that knows the
 * membership (CPG) reports nodes joining and leaving through the member
 * callback; UDP has no membership of its own and never calls it.
 */
#ifndef CTSYNC_CLUSTER_TRANSPORT_H
#define CTSYNC_CLUSTER_TRANSPORT_H

#include <net/if.h>
#include <sys/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define TRANSPORT_MAX_PEERS 32
#define TRANSPORT_ALL 0u        /* transport_send: every peer */

#define TRANSPORT_GROUP_MAX 128 /* a CPG group name, NUL included */
#define TRANSPORT_MAX_DATAGRAM 65507

enum transport_type { TRANSPORT_UDP, TRANSPORT_MULTICAST, TRANSPORT_CPG };

struct transport_peer {
	uint32_t id;
	struct sockaddr_storage addr;   /* its address on the sync interface */
	struct sockaddr_storage addr2;  /* UDP: on the second path (family 0: none) */
};

struct transport_config {
	enum transport_type type;
	char ifname[IF_NAMESIZE];
	struct sockaddr_storage local;          /* our address and port */
	/* UDP: a second path (family 0: none) — every datagram is sent on
	 * both, the copy that arrives second is dropped (transport.c) */
	char ifname2[IF_NAMESIZE];
	struct sockaddr_storage local2;
	struct sockaddr_storage group;          /* multicast group and port */
	struct transport_peer peers[TRANSPORT_MAX_PEERS];
	unsigned npeers;                /* CPG: 0 takes corosync's nodelist */
	int rcvbuf, sndbuf;             /* CPG: sndbuf bounds the back-pressure queue */
	char cpg_group[TRANSPORT_GROUP_MAX];
	uint32_t local_node;            /* CPG: must be corosync's node id here */
};

/* Counters: (field, name in `ctsyncctl stats` and metrics), every field. */
#define TRANSPORT_STATS(X) \
	X(tx_frames, "link_tx_frames") \
	X(tx_bytes, "link_tx_bytes") \
	X(tx_errors, "link_tx_errors") \
	X(rx_frames, "link_rx_frames") \
	X(rx_bytes, "link_rx_bytes") \
	X(rx_errors, "link_rx_errors") \
	X(tx_retries, "link_tx_retries")        /* CPG: corosync said try again */ \
	X(tx_queued, "link_tx_queued")          /* frames queued by back-pressure */ \
	X(tx_dropped, "link_tx_dropped")        /* the queue was full: lost */ \
	X(tx_waits, "link_tx_waits")            /* UDP: socket buffer full, waited */ \
	X(rx_path2, "link_rx_path2_frames")     /* UDP: received on the second path */ \
	X(rx_dup_path, "link_rx_dup_path")      /* the same datagram by the other path */ \
	X(tx_path2_errors, "link_tx_path2_errors") /* the second path: not sent */

struct transport_stats {
	uint64_t tx_frames, tx_bytes, tx_errors;
	uint64_t rx_frames, rx_bytes, rx_errors;
	uint64_t tx_retries, tx_queued, tx_dropped;     /* back-pressure */
	uint64_t tx_waits;
	uint64_t rx_path2, rx_dup_path, tx_path2_errors;
};

struct transport;

int transport_open(struct transport **out, const struct transport_config *cfg);
void transport_close(struct transport *t);
/* The descriptor to wait on; -1 while a CPG transport has lost corosync
 * (it changes when it reconnects: ask again after transport_poll). */
int transport_fd(const struct transport *t);
/* Every ~10 ms: sends what back-pressure queued, reconnects (CPG). */
void transport_poll(struct transport *t);
/* The peers (all but this node), as configured or, for CPG without
 * configured peers, from corosync's nodelist with their ring 0 addresses
 * (family 0 where unknown); how many. */
unsigned transport_peers(const struct transport *t, struct transport_peer *out, unsigned max);
/* How many paths carry the frames: 2 with a second UDP path, else 1. */
unsigned transport_paths(const struct transport *t);
/* A set-up of the cluster a partition defeats (CPG: 2 nodes with one link
 * and no quorum device), for status; NULL when none is known. */
const char *transport_quorum_note(const struct transport *t);
/* This node's address on the sync network (CPG: its corosync ring 0
 * address, if the nodelist gives one); family 0 if unknown. */
const struct sockaddr_storage *transport_local(const struct transport *t);
/* Send one datagram to node `node`, or to every peer (TRANSPORT_ALL).  With
 * multicast both go to the group, where every peer listens.  0 or -errno
 * (-ENOENT: no such peer; -ENOBUFS: dropped, the back-pressure queue being
 * full).  It never waits: a datagram the socket has no room for is queued
 * (tx_waits, tx_queued) and goes out, in order, as the socket drains. */
int transport_send(struct transport *t, uint32_t node, const void *buf, size_t len);
/* UDP: datagrams wait in the queue; wait for transport_tx_fd to be
 * writable, then transport_flush (0: all sent, -EAGAIN: some still wait). */
bool transport_tx_pending(const struct transport *t);
int transport_tx_fd(const struct transport *t);
int transport_flush(struct transport *t);
/* Receive one datagram; -EAGAIN when none is queued.  *from is the node
 * whose configured address sent it (0: none of them), *src the address
 * itself (for logs). */
ssize_t transport_recv(struct transport *t, void *buf, size_t cap, uint32_t *from,
		       struct sockaddr_storage *src);
/* Nodes joining (up) and leaving, where the type knows its membership. */
typedef void (*transport_member_cb)(void *arg, uint32_t node, bool up);
void transport_on_member(struct transport *t, transport_member_cb fn, void *arg);
/* Whether this node's partition is quorate, where the type knows (CPG:
 * corosync's votequorum; a corosync without a quorum provider is always
 * quorate).  UDP never calls it. */
typedef void (*transport_quorum_cb)(void *arg, bool quorate);
void transport_on_quorum(struct transport *t, transport_quorum_cb fn, void *arg);
/* Largest datagram that fits the interface MTU without fragmenting. */
size_t transport_mtu(const struct transport *t);
const struct transport_stats *transport_stats(const struct transport *t);

#endif
