/* The UDP transport under back-pressure: a sync interface slower than the
 * sender (a token bucket of 8 Mbit/s on a veth, in a network namespace of
 * the test's own) fills the socket buffer.  transport_send
 * must never wait for it: what has no room is queued, in order, counted,
 * and goes out as the socket drains (transport_flush on writable). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cluster/transport.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void addr4(struct sockaddr_storage *ss, const char *a, uint16_t port)
{
	struct sockaddr_in *s = (struct sockaddr_in *)ss;
	memset(ss, 0, sizeof(*ss));
	s->sin_family = AF_INET;
	s->sin_port = htons(port);
	inet_pton(AF_INET, a, &s->sin_addr);
}

static void test_udp_back_pressure(void **state)
{
	/* a network namespace of our own: needs root (as `make check` runs) */
	if (geteuid() != 0 || unshare(CLONE_NEWNET) < 0)
		skip();
	if (system("ip link add syncd0 type veth peer name syncd1 && ip link set syncd0 up && "
		   "ip link set syncd1 up && ip addr add 198.18.0.1/24 dev syncd0 && "
		   "ip neigh add 198.18.0.2 lladdr 02:00:00:00:00:02 dev syncd0 && "
		   "tc qdisc add dev syncd0 root tbf rate 8mbit burst 16kb latency 400ms") != 0)
		skip();         /* no veth or tbf in this kernel */
	struct transport_config cfg = { .type = TRANSPORT_UDP, .npeers = 1, .sndbuf = 65536 };
	snprintf(cfg.ifname, sizeof(cfg.ifname), "syncd0");
	addr4(&cfg.local, "198.18.0.1", 3780);
	addr4(&cfg.peers[0].addr, "198.18.0.2", 3780);
	cfg.peers[0].id = 2;
	struct transport *t;
	assert_int_equal(transport_open(&t, &cfg), 0);

	/* 3 MB at once: ~3 s at 8 Mbit/s */
	enum { N = 2000, LEN = 1400 };
	static uint8_t buf[LEN];
	double longest = 0, t0 = now_s();
	unsigned dropped = 0;
	for (unsigned i = 0; i < N; i++) {
		double s = now_s();
		int err = transport_send(t, 2, buf, sizeof(buf));
		if (err == -ENOBUFS)
			dropped++;
		else
			assert_int_equal(err, 0);
		if (now_s() - s > longest)
			longest = now_s() - s;
	}
	double sending = now_s() - t0;
	const struct transport_stats *st = transport_stats(t);
	print_message("%u datagrams handed over in %.1f ms (longest call %.2f ms): %llu sent "
		      "at once, %llu queued after %llu full buffers, %u dropped (queue full)\n",
		      N, sending * 1000, longest * 1000, (unsigned long long)st->tx_frames,
		      (unsigned long long)st->tx_queued, (unsigned long long)st->tx_waits, dropped);
	/* the buffer filled, and the sender did not wait for it to drain:
	 * what the link had no room for waits in the queue */
	assert_true(st->tx_waits >= 1);
	assert_true(st->tx_queued > 0);
	assert_true(transport_tx_pending(t));
	assert_int_equal(st->tx_dropped, dropped);

	/* drained as the socket becomes writable, in order, nothing lost */
	double end = now_s() + 30;
	while (transport_tx_pending(t) && now_s() < end) {
		struct pollfd p = { .fd = transport_tx_fd(t), .events = POLLOUT };
		poll(&p, 1, 100);
		transport_flush(t);
	}
	assert_false(transport_tx_pending(t));
	assert_int_equal(st->tx_frames + st->tx_dropped, N);
	assert_int_equal(st->tx_errors, 0);
	print_message("drained in %.1f s\n", now_s() - t0);
	transport_close(t);
}

/* n datagrams from a to b, each carrying its number, 50 at a time (the
 * receive buffer holds both copies of those): how many b read, every one
 * from node 1, none twice. */
static unsigned pass(struct transport *a, struct transport *b, unsigned n, unsigned base)
{
	static bool got[4096];
	uint8_t buf[256];
	unsigned seen = 0;

	memset(got, 0, sizeof(got));
	for (unsigned sent = 0; sent < n; ) {
		unsigned chunk = n - sent < 50 ? n - sent : 50;
		for (unsigned i = 0; i < chunk; i++, sent++) {
			memset(buf, 0, sizeof(buf));
			snprintf((char *)buf, sizeof(buf), "frame %u", base + sent);
			transport_send(a, 2, buf, 100 + sent % 50);
		}
		double end = now_s() + 1;
		while (seen < sent && now_s() < end) {
			struct pollfd p = { .fd = transport_fd(b), .events = POLLIN };
			if (poll(&p, 1, 20) <= 0)
				continue;
			uint32_t from;
			struct sockaddr_storage src;
			while (transport_recv(b, buf, sizeof(buf), &from, &src) > 0) {
				unsigned k;
				assert_int_equal(from, 1);
				assert_int_equal(sscanf((char *)buf, "frame %u", &k), 1);
				assert_true(k >= base && k < base + n);
				assert_false(got[k - base]);    /* never twice */
				got[k - base] = true;
				seen++;
			}
		}
	}
	/* the copies still on their way are dropped too */
	struct pollfd p = { .fd = transport_fd(b), .events = POLLIN };
	uint32_t from;
	struct sockaddr_storage src;
	while (poll(&p, 1, 50) > 0 && transport_recv(b, buf, sizeof(buf), &from, &src) > 0)
		seen++;
	return seen;
}

/* Two paths (loopback addresses in a namespace of our own): every datagram
 * goes both ways and is read once; with the first path gone, the second
 * carries everything. */
static void test_udp_two_paths(void **state)
{
	if (geteuid() != 0 || unshare(CLONE_NEWNET) < 0)
		skip();
	if (system("ip link set lo up && ip addr add 198.18.0.1/32 dev lo && "
		   "ip addr add 198.18.0.2/32 dev lo && ip addr add 198.18.2.1/32 dev lo && "
		   "ip addr add 198.18.2.2/32 dev lo") != 0)
		skip();
	struct transport_config ca = { .type = TRANSPORT_UDP, .npeers = 1 }, cb = ca;
	addr4(&ca.local, "198.18.0.1", 3780);
	addr4(&ca.local2, "198.18.2.1", 3780);
	ca.peers[0].id = 2;
	addr4(&ca.peers[0].addr, "198.18.0.2", 3780);
	addr4(&ca.peers[0].addr2, "198.18.2.2", 3780);
	addr4(&cb.local, "198.18.0.2", 3780);
	addr4(&cb.local2, "198.18.2.2", 3780);
	cb.peers[0].id = 1;
	addr4(&cb.peers[0].addr, "198.18.0.1", 3780);
	addr4(&cb.peers[0].addr2, "198.18.2.1", 3780);
	struct transport *a, *b;
	assert_int_equal(transport_open(&a, &ca), 0);
	assert_int_equal(transport_open(&b, &cb), 0);
	assert_int_equal(transport_paths(a), 2);

	assert_int_equal(pass(a, b, 1000, 0), 1000);
	const struct transport_stats *st = transport_stats(b);
	print_message("both paths: 1000 read, %llu copies dropped, %llu read on the second path\n",
		      (unsigned long long)st->rx_dup_path, (unsigned long long)st->rx_path2);
	assert_int_equal(st->rx_frames, 1000);
	assert_int_equal(st->rx_dup_path, 1000);

	/* the first path gone: b's first address removed */
	assert_int_equal(system("ip addr del 198.18.0.2/32 dev lo"), 0);
	uint64_t p2 = st->rx_path2;
	assert_int_equal(pass(a, b, 500, 2000), 500);
	assert_int_equal(st->rx_path2 - p2, 500);
	transport_close(a);
	transport_close(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_udp_back_pressure),
		cmocka_unit_test(test_udp_two_paths),
	};
	return cmocka_run_group_tests_name("transport", tests, NULL, NULL);
}
