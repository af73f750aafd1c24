/* ctsync-ctload — conntrack load for the benchmarks: creates, updates and
 * deletes flows through batched ctnetlink as fast as the kernel takes them
 * (or at a given rate), and waits for a table to reach a size.  Written
 * directly against libmnl, with no event socket of its own, so that it
 * measures the kernel and whatever listens to it, not itself.
 *
 *   create N [SEED [KIND [RATE]]]  N flows SEED..SEED+N-1; KIND tcp4 (default),
 *                                  tcp4nat (SNAT in the tuples) or tcp6;
 *                                  RATE flows/s (0: full speed)
 *   update N [SEED [KIND]]         a new mark on each (an UPDATE event)
 *   delete N [SEED [KIND]]
 *   wait COUNT TIMEOUT_S [le]      poll nf_conntrack_count (this namespace)
 *                                  every ms until >= COUNT (or <= with le)
 *   count                          nf_conntrack_count
 *   udp N DST [RATE]               N new UDP flows through the forwarding
 *                                  path: one datagram each, from this
 *                                  namespace to DST/16 (addresses DST+i/64000,
 *                                  ports 1024 + i%64000), sendmmsg()
 *                                  256 at a time; RATE flows/s (0: full speed)
 *   listen SECONDS [PAUSE_MS]      the least an event listener can do: join
 *                                  the NEW, UPDATE and DESTROY groups (64 MiB
 *                                  buffer), read 32 events per non-blocking
 *                                  recvmmsg (waiting in poll when there are
 *                                  none, as ctsyncd waits in epoll) and
 *                                  drop them, until SECONDS pass or SIGTERM;
 *                                  after a read that found fewer than 32,
 *                                  sleep PAUSE_MS (0: none; as ctsyncd
 *                                  coalesces, fewer wake-ups); PAUSE_MS -1:
 *                                  never read (events are still built, then
 *                                  dropped on the full buffer);
 *                                  prints "events=N overruns=O"
 *
 * create/update/delete print "done=N errors=E secs=S rate=R end_ns=T"
 * (T: CLOCK_REALTIME at the last batch's return); wait prints
 * "reached=COUNT at_ns=T" or "timeout=COUNT". */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_conntrack_tcp.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <libmnl/libmnl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BATCH 256
#define MSG_MAX 512

enum kind { TCP4, TCP4NAT, TCP6 };

static uint64_t now_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void put_tuple(struct nlmsghdr *nlh, int type, enum kind k, unsigned i, bool reply)
{
	struct nlattr *t = mnl_attr_nest_start(nlh, type);
	struct nlattr *ip = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
	/* client 198.18.(128 + i>>16).(i>>8)... : distinct for 2^22 flows */
	uint16_t sport = (uint16_t)(10000 + (i % 50000));
	uint32_t host = i / 50000;
	if (k == TCP6) {
		struct in6_addr a = { 0 }, b = { 0 };
		a.s6_addr[0] = 0x20; a.s6_addr[1] = 0x01; a.s6_addr[2] = 0x0d; a.s6_addr[3] = 0xb8;
		a.s6_addr[5] = 0x51;
		a.s6_addr[14] = (uint8_t)(host >> 8);
		a.s6_addr[15] = (uint8_t)host;
		b = a;
		b.s6_addr[5] = 0x52;
		b.s6_addr[14] = 0;
		b.s6_addr[15] = 1;
		mnl_attr_put(nlh, CTA_IP_V6_SRC, 16, reply ? &b : &a);
		mnl_attr_put(nlh, CTA_IP_V6_DST, 16, reply ? &a : &b);
	} else {
		uint32_t cl = htonl(0xc6128000u | host);            /* 198.18.128.0/17 */
		uint32_t sv = htonl(0xc6130001u);                   /* 198.19.0.1 */
		uint32_t nat = htonl(0xc6130101u);                  /* 198.19.1.1 */
		mnl_attr_put_u32(nlh, CTA_IP_V4_SRC, reply ? sv : cl);
		mnl_attr_put_u32(nlh, CTA_IP_V4_DST, reply ? (k == TCP4NAT ? nat : cl) : sv);
	}
	mnl_attr_nest_end(nlh, ip);
	struct nlattr *pr = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
	mnl_attr_put_u8(nlh, CTA_PROTO_NUM, IPPROTO_TCP);
	mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(reply ? 80 : sport));
	mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(reply ? sport : 80));
	mnl_attr_nest_end(nlh, pr);
	mnl_attr_nest_end(nlh, t);
}

static void build(char *buf, int op, enum kind k, unsigned i, uint32_t seq)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) |
			  (op == 2 ? IPCTNL_MSG_CT_DELETE : IPCTNL_MSG_CT_NEW);
	nlh->nlmsg_flags = NLM_F_REQUEST | (op == 0 ? NLM_F_CREATE | NLM_F_EXCL : 0);
	nlh->nlmsg_seq = seq;
	struct nfgenmsg *g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->nfgen_family = k == TCP6 ? AF_INET6 : AF_INET;
	g->version = NFNETLINK_V0;
	g->res_id = 0;
	put_tuple(nlh, CTA_TUPLE_ORIG, k, i, false);
	if (op == 2)
		return;
	put_tuple(nlh, CTA_TUPLE_REPLY, k, i, true);
	mnl_attr_put_u32(nlh, CTA_MARK, htonl(op == 1 ? 2 : 1));
	if (op == 1)
		return;
	mnl_attr_put_u32(nlh, CTA_TIMEOUT, htonl(432000));
	mnl_attr_put_u32(nlh, CTA_STATUS, htonl(IPS_CONFIRMED | IPS_SEEN_REPLY | IPS_ASSURED));
	struct nlattr *pi = mnl_attr_nest_start(nlh, CTA_PROTOINFO);
	struct nlattr *t = mnl_attr_nest_start(nlh, CTA_PROTOINFO_TCP);
	mnl_attr_put_u8(nlh, CTA_PROTOINFO_TCP_STATE, TCP_CONNTRACK_ESTABLISHED);
	mnl_attr_nest_end(nlh, t);
	mnl_attr_nest_end(nlh, pi);
}

/* With a rate, never ahead of done/rate seconds since t0. */
static void pace(uint64_t t0, unsigned done, double rate)
{
	if (rate <= 0)
		return;
	uint64_t due = t0 + (uint64_t)(done / rate * 1e9);
	uint64_t t = now_ns(CLOCK_MONOTONIC);
	if (due > t)
		usleep((useconds_t)((due - t) / 1000));
}

static void report(unsigned done, unsigned errors, uint64_t t0)
{
	uint64_t end_rt = now_ns(CLOCK_REALTIME);
	double secs = (double)(now_ns(CLOCK_MONOTONIC) - t0) / 1e9;
	printf("done=%u errors=%u secs=%.3f rate=%.0f end_ns=%llu\n", done, errors, secs,
	       done / secs, (unsigned long long)end_rt);
}

/* Errors come back as NLMSG_ERROR without ACK requested: count them. */
static unsigned drain(struct mnl_socket *nl)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	unsigned errors = 0;
	ssize_t n;

	while ((n = recv(mnl_socket_get_fd(nl), buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
		struct nlmsghdr *h = (struct nlmsghdr *)buf;
		int len = (int)n;
		for (; mnl_nlmsg_ok(h, len); h = mnl_nlmsg_next(h, &len))
			if (h->nlmsg_type == NLMSG_ERROR &&
			    ((struct nlmsgerr *)mnl_nlmsg_get_payload(h))->error)
				errors++;
	}
	return errors;
}

static int run(int op, unsigned n, unsigned seed, enum kind k, double rate)
{
	struct mnl_socket *nl = mnl_socket_open(NETLINK_NETFILTER);
	static char batch[BATCH * MSG_MAX];
	unsigned errors = 0, done = 0;
	int rcv = 8 << 20;

	if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		perror("netlink");
		return 1;
	}
	setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv));
	uint64_t t0 = now_ns(CLOCK_MONOTONIC);
	while (done < n) {
		size_t len = 0;
		unsigned b = 0;
		for (; b < BATCH && done + b < n; b++) {
			build(batch + len, op, k, seed + done + b, done + b + 1);
			len += ((struct nlmsghdr *)(batch + len))->nlmsg_len;
		}
		if (mnl_socket_sendto(nl, batch, len) < 0) {
			perror("sendto");
			return 1;
		}
		done += b;
		errors += drain(nl);
		pace(t0, done, rate);
	}
	errors += drain(nl);
	report(done, errors, t0);
	mnl_socket_close(nl);
	return 0;
}

/* Real flows: a datagram per new 5-tuple, routed through a firewall
 * namespace that tracks it (its conntrack entry is made in the packet path,
 * as for traffic, not through ctnetlink). */
static int udp(unsigned n, const char *dst, double rate)
{
	struct in_addr base;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	static struct sockaddr_in to[BATCH];
	static struct mmsghdr mm[BATCH];
	static char payload[16] = "ctsync-bench";
	struct iovec iov = { payload, sizeof(payload) };
	unsigned done = 0, errors = 0;
	int sz = 8 << 20;

	if (inet_pton(AF_INET, dst, &base) != 1 || fd < 0) {
		fprintf(stderr, "ctload: udp: bad address %s or no socket\n", dst);
		return 2;
	}
	setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz));
	for (unsigned b = 0; b < BATCH; b++) {
		to[b].sin_family = AF_INET;
		mm[b].msg_hdr.msg_name = &to[b];
		mm[b].msg_hdr.msg_namelen = sizeof(to[b]);
		mm[b].msg_hdr.msg_iov = &iov;
		mm[b].msg_hdr.msg_iovlen = 1;
	}
	uint64_t t0 = now_ns(CLOCK_MONOTONIC);
	while (done < n) {
		unsigned b = 0;
		for (; b < BATCH && done + b < n; b++) {
			unsigned i = done + b;
			to[b].sin_addr.s_addr = htonl(ntohl(base.s_addr) + i / 64000);
			to[b].sin_port = htons((uint16_t)(1024 + i % 64000));
		}
		unsigned sent = 0;
		uint64_t stuck = 0;     /* when the last retry began without progress */
		while (sent < b) {
			int r = sendmmsg(fd, mm + sent, b - sent, 0);
			if (r < 0) {
				if (errno != EINTR && errno != ENOBUFS && errno != EAGAIN) {
					perror("sendmmsg");
					return 1;
				}
				uint64_t t = now_ns(CLOCK_MONOTONIC);
				if (!stuck)
					stuck = t;
				else if (t - stuck > 10000000000ull) {
					fprintf(stderr, "ctload: udp: no datagram sent for 10 s\n");
					return 1;
				}
				errors++;
				usleep(100);
				continue;
			}
			stuck = 0;
			sent += (unsigned)r;
		}
		done += b;
		pace(t0, done, rate);
	}
	report(done, errors, t0);
	close(fd);
	return 0;
}


static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

/* The floor of what a daemon that listens to events costs the kernel: the
 * events are built (in the creating task's time) and queued, then read and
 * dropped here. */
static int listen_events(double secs, int pause_ms)
{
	enum { SLOTS = 32, SLOT = 8192 };
	static char buf[SLOTS][SLOT];
	static struct iovec iov[SLOTS];
	static struct mmsghdr mm[SLOTS];
	unsigned groups = (1u << (NFNLGRP_CONNTRACK_NEW - 1)) |
			  (1u << (NFNLGRP_CONNTRACK_UPDATE - 1)) |
			  (1u << (NFNLGRP_CONNTRACK_DESTROY - 1));
	struct mnl_socket *nl = mnl_socket_open(NETLINK_NETFILTER);
	unsigned long long events = 0, overruns = 0;
	int sz = 64 << 20;
	struct sigaction sa = { .sa_handler = on_term };

	if (!nl || mnl_socket_bind(nl, groups, MNL_SOCKET_AUTOPID) < 0) {
		perror("netlink");
		return 1;
	}
	int fd = mnl_socket_get_fd(nl);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz));
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	for (unsigned i = 0; i < SLOTS; i++) {
		iov[i].iov_base = buf[i];
		iov[i].iov_len = SLOT;
		mm[i].msg_hdr.msg_iov = &iov[i];
		mm[i].msg_hdr.msg_iovlen = 1;
	}
	uint64_t end = now_ns(CLOCK_MONOTONIC) + (uint64_t)(secs * 1e9);
	printf("listening\n");
	fflush(stdout);
	while (!stop && now_ns(CLOCK_MONOTONIC) < end) {
		if (pause_ms < 0) {
			usleep(100000);
			continue;
		}
		/* Never block inside recvmmsg: a blocking call sleeps on the
		 * socket and every event then wakes it, a wake-up the creating
		 * task pays for.  ctsyncd waits in epoll and reads without
		 * blocking; so does this. */
		int r = recvmmsg(fd, mm, SLOTS, MSG_DONTWAIT, NULL);
		if (r > 0)
			events += (unsigned)r;
		else if (r < 0 && errno == ENOBUFS)
			overruns++;
		else if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
			struct pollfd pf = { .fd = fd, .events = POLLIN };
			poll(&pf, 1, 100);      /* look at the clock every 0.1 s */
			continue;
		}
		if (pause_ms > 0 && r < SLOTS)
			usleep((useconds_t)pause_ms * 1000);
	}
	printf("events=%llu overruns=%llu\n", events, overruns);
	mnl_socket_close(nl);
	return 0;
}

static long count(void)
{
	char buf[32];
	FILE *f = fopen("/proc/sys/net/netfilter/nf_conntrack_count", "r");
	long v = -1;
	if (f && fgets(buf, sizeof(buf), f))
		v = strtol(buf, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

static enum kind kind_of(const char *s)
{
	if (!s || strcmp(s, "tcp4") == 0)
		return TCP4;
	if (strcmp(s, "tcp4nat") == 0)
		return TCP4NAT;
	if (strcmp(s, "tcp6") == 0)
		return TCP6;
	fprintf(stderr, "ctload: unknown kind %s\n", s);
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc >= 3 && (strcmp(argv[1], "create") == 0 || strcmp(argv[1], "update") == 0 ||
			  strcmp(argv[1], "delete") == 0)) {
		int op = argv[1][0] == 'c' ? 0 : argv[1][0] == 'u' ? 1 : 2;
		return run(op, (unsigned)strtoul(argv[2], NULL, 10),
			   argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 0,
			   kind_of(argc > 4 ? argv[4] : NULL), argc > 5 ? atof(argv[5]) : 0);
	}
	if (argc >= 4 && strcmp(argv[1], "wait") == 0) {
		long want = strtol(argv[2], NULL, 10);
		bool le = argc > 4 && strcmp(argv[4], "le") == 0;
		uint64_t end = now_ns(CLOCK_MONOTONIC) + (uint64_t)(atof(argv[3]) * 1e9);
		while (now_ns(CLOCK_MONOTONIC) < end) {
			long c = count();
			if (le ? c <= want : c >= want) {
				printf("reached=%ld at_ns=%llu\n", c,
				       (unsigned long long)now_ns(CLOCK_REALTIME));
				return 0;
			}
			usleep(1000);
		}
		printf("timeout=%ld\n", count());
		return 1;
	}
	if (argc >= 4 && strcmp(argv[1], "udp") == 0)
		return udp((unsigned)strtoul(argv[2], NULL, 10), argv[3],
			   argc > 4 ? atof(argv[4]) : 0);
	if ((argc == 3 || argc == 4) && strcmp(argv[1], "listen") == 0)
		return listen_events(atof(argv[2]), argc == 4 ? atoi(argv[3]) : 0);
	if (argc == 2 && strcmp(argv[1], "count") == 0) {
		printf("%ld\n", count());
		return 0;
	}
	fprintf(stderr, "usage: ctsync-ctload create|update|delete N [SEED [KIND [RATE]]] | "
		"wait COUNT TIMEOUT_S [le] | count | udp N DST [RATE] | listen SECONDS [PAUSE_MS]\n");
	return 2;
}
