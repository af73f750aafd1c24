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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_udp_back_pressure),
	};
	return cmocka_run_group_tests_name("transport", tests, NULL, NULL);
}
