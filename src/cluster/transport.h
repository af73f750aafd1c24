/*
 * transport.h — datagrams between cluster nodes over UDP: unicast to every
 * configured peer, or one IPv4/IPv6 multicast group, on a named interface.
 * Knows nothing of conntrack or of the frame format: it moves opaque
 * datagrams and counts them.
 */
#ifndef CTSYNC_CLUSTER_TRANSPORT_H
#define CTSYNC_CLUSTER_TRANSPORT_H

#include <net/if.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define TRANSPORT_MAX_PEERS 32

enum transport_type { TRANSPORT_UDP, TRANSPORT_MULTICAST };

struct transport_config {
	enum transport_type type;
	char ifname[IF_NAMESIZE];
	struct sockaddr_storage local;          /* our address and port */
	struct sockaddr_storage group;          /* multicast group and port */
	struct sockaddr_storage peers[TRANSPORT_MAX_PEERS];     /* unicast */
	unsigned npeers;
	int rcvbuf, sndbuf;
};

struct transport_stats {
	uint64_t tx_frames, tx_bytes, tx_errors;
	uint64_t rx_frames, rx_bytes, rx_errors;
};

struct transport;

int transport_open(struct transport **out, const struct transport_config *cfg);
void transport_close(struct transport *t);
int transport_fd(const struct transport *t);
/* Send one datagram to every peer (or the group). 0 or -errno. */
int transport_send(struct transport *t, const void *buf, size_t len);
/* Send one datagram to one peer (with multicast: to the group, where the
 * peer listens).  0 or -errno. */
int transport_send_to(struct transport *t, const struct sockaddr_storage *to,
		      const void *buf, size_t len);
/* Receive one datagram; -EAGAIN when none is queued. */
ssize_t transport_recv(struct transport *t, void *buf, size_t cap,
		       struct sockaddr_storage *from);
/* Largest datagram that fits the interface MTU without fragmenting. */
size_t transport_mtu(const struct transport *t);
const struct transport_stats *transport_stats(const struct transport *t);

#endif
