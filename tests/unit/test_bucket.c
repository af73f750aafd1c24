/* Flow buckets (bucket.h) against the kernel: in a network namespace of the
 * test's own, an nftables rule sets each new connection's mark to its
 * bucket (jhash of the original addresses, as the active-active rule will
 * compute it); UDP datagrams between loopback addresses make the
 * connections; every mark must be what bucket_of() says.  Then the table
 * the daemon keeps (kernel/nftb.h), made, changed and made again; the
 * defer's queueing table and queue (kernel/nfq.h), and how it reads a
 * held packet's headers.  Skipped without root, nft or conntrack(8). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kernel/nfq.h"
#include "kernel/nftb.h"
#include "sync/bucket.h"

#define SEED 0x5eed1234u
#define NB 64

static void test_lookup3_shape(void **state)
{
	/* empty key: the initial value itself; one more byte changes it */
	assert_int_equal(bucket_jhash((const uint8_t *)"", 0, 0), 0xdeadbeefu);
	assert_true(bucket_jhash((const uint8_t *)"a", 1, 0) != 0xdeadbeefu + 1);
	/* every length reads only its own bytes */
	uint8_t k[40] = { 0 };
	for (size_t n = 1; n < sizeof(k); n++) {
		uint32_t h = bucket_jhash(k, n, SEED);
		k[n] = 0xff;
		assert_int_equal(bucket_jhash(k, n, SEED), h);
		k[n] = 0;
	}
}

static int sh(const char *cmd)
{
	int rc = system(cmd);
	return rc == 0 ? 0 : -1;
}

/* The kernel's marks for the connections to port 9, compared with ours. */
static unsigned compare(int family)
{
	FILE *f = popen(family == AF_INET ? "conntrack -L -f ipv4 -p udp --dport 9 2>/dev/null"
					  : "conntrack -L -f ipv6 -p udp --dport 9 2>/dev/null", "r");
	char line[512];
	unsigned n = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		char src[64], dst[64];
		unsigned mark;
		const char *s = strstr(line, "src="), *d = strstr(line, "dst="), *m = strstr(line, "mark=");
		if (!s || !d || !m || sscanf(s, "src=%63s", src) != 1 ||
		    sscanf(d, "dst=%63s", dst) != 1 || sscanf(m, "mark=%u", &mark) != 1)
			continue;
		struct ct c = { .l3 = (uint8_t)family };
		assert_int_equal(inet_pton(family, src, family == AF_INET ? (void *)&c.orig.src.ip4
									  : (void *)c.orig.src.ip6), 1);
		assert_int_equal(inet_pton(family, dst, family == AF_INET ? (void *)&c.orig.dst.ip4
									  : (void *)c.orig.dst.ip6), 1);
		if (bucket_of(&c, NB, SEED) != mark)
			fail_msg("%s -> %s: kernel bucket %u, ours %u", src, dst, mark,
				 bucket_of(&c, NB, SEED));
		n++;
	}
	pclose(f);
	return n;
}

static void send_one(int family, const char *from, const char *to)
{
	struct sockaddr_storage a = { 0 }, b = { 0 };
	socklen_t len;
	int fd = socket(family, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	if (family == AF_INET) {
		struct sockaddr_in *x = (struct sockaddr_in *)&a, *y = (struct sockaddr_in *)&b;
		x->sin_family = y->sin_family = AF_INET;
		inet_pton(AF_INET, from, &x->sin_addr);
		inet_pton(AF_INET, to, &y->sin_addr);
		y->sin_port = htons(9);
		len = sizeof(*x);
	} else {
		struct sockaddr_in6 *x = (struct sockaddr_in6 *)&a, *y = (struct sockaddr_in6 *)&b;
		x->sin6_family = y->sin6_family = AF_INET6;
		inet_pton(AF_INET6, from, &x->sin6_addr);
		inet_pton(AF_INET6, to, &y->sin6_addr);
		y->sin6_port = htons(9);
		len = sizeof(*x);
	}
	assert_int_equal(bind(fd, (struct sockaddr *)&a, len), 0);
	assert_int_equal(sendto(fd, "x", 1, 0, (struct sockaddr *)&b, len), 1);
	close(fd);
}

static void test_against_nft(void **state)
{
	char cmd[1024];

	if (geteuid() != 0 || sh("command -v nft >/dev/null && command -v conntrack >/dev/null") < 0 ||
	    unshare(CLONE_NEWNET) < 0)
		skip();
	assert_int_equal(sh("ip link set lo up"), 0);
	snprintf(cmd, sizeof(cmd),
		 "nft -f - <<'EOF'\n"
		 "table inet b {\n"
		 "  chain o {\n"
		 "    type filter hook output priority 0;\n"
		 "    meta nfproto ipv4 ct mark set jhash ct original ip saddr . ct original ip daddr mod %u seed 0x%x\n"
		 "    meta nfproto ipv6 ct mark set jhash ct original ip6 saddr . ct original ip6 daddr mod %u seed 0x%x\n"
		 "  }\n"
		 "}\nEOF", NB, SEED, NB, SEED);
	assert_int_equal(sh(cmd), 0);
	for (int i = 1; i <= 100; i++) {
		char from[32], to[32];
		snprintf(from, sizeof(from), "127.0.%d.%d", i % 7, 1 + (i * 37) % 250);
		snprintf(to, sizeof(to), "127.%d.0.%d", 1 + i % 200, 1 + (i * 11) % 250);
		send_one(AF_INET, from, to);
	}
	assert_int_equal(compare(AF_INET), 100);
	for (int i = 1; i <= 20; i++) {
		snprintf(cmd, sizeof(cmd), "ip -6 addr add 2001:db8:%x::%x/128 dev lo nodad", i, i * 3);
		assert_int_equal(sh(cmd), 0);
	}
	for (int i = 1; i <= 20; i++) {
		char from[64], to[64];
		snprintf(from, sizeof(from), "2001:db8:%x::%x", i, i * 3);
		snprintf(to, sizeof(to), "2001:db8:%x::%x", 1 + (i * 7) % 20, (1 + (i * 7) % 20) * 3);
		send_one(AF_INET6, from, to);
	}
	assert_true(compare(AF_INET6) >= 19);   /* (one pair may be the same address) */
}

/* The output of a shell command, whole. */
static char *out_of(const char *cmd)
{
	static char buf[8192];
	FILE *f = popen(cmd, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	pclose(f);
	return buf;
}

static unsigned count(const char *hay, const char *needle)
{
	unsigned n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static void test_nftb_table(void **state)
{
	struct nftb *n;
	char err[256], *s;
	uint32_t some[] = { 1, 5, 9 };

	if (geteuid() != 0 || sh("command -v nft >/dev/null") < 0 || unshare(CLONE_NEWNET) < 0)
		skip();
	assert_int_equal(nftb_open(&n, "ctsync_t", NB, SEED, true, 0, NULL, err, sizeof(err)), 0);
	s = out_of("nft list table inet ctsync_t");
	assert_non_null(strstr(s, "hook forward priority filter - 5; policy accept;"));
	assert_non_null(strstr(s, "jhash ct original ip saddr . ct original ip daddr mod 64 seed 0x5eed1234 != @held counter packets 0 bytes 0 drop"));
	assert_non_null(strstr(s, "jhash ct original ip6 saddr . ct original ip6 daddr mod 64 seed 0x5eed1234 != @held"));
	assert_int_equal(nftb_set(n, some, 3, err, sizeof(err)), 0);
	s = out_of("nft list set inet ctsync_t held");
	assert_non_null(strstr(s, "elements = { 1, 5, 9 }"));
	assert_int_equal(nftb_set(n, some + 1, 1, err, sizeof(err)), 0);
	s = out_of("nft list set inet ctsync_t held");
	assert_non_null(strstr(s, "elements = { 5 }"));
	nftb_close(n);
	/* a restarted daemon takes the table over: set emptied, the rules
	 * replaced (not doubled), another bucket count taken */
	assert_int_equal(nftb_open(&n, "ctsync_t", 128, SEED, true, 0, NULL, err, sizeof(err)), 0);
	s = out_of("nft list table inet ctsync_t");
	assert_null(strstr(s, "elements"));
	assert_int_equal(count(s, "!= @held"), 2);
	assert_int_equal(count(s, "mod 128"), 2);
	assert_int_equal(nftb_set(n, NULL, 0, err, sizeof(err)), 0);
	nftb_close(n);
	/* a table of another shape (an earlier release's) is replaced */
	assert_int_equal(sh("nft add table inet ctsync_u && nft add set inet ctsync_u held "
			    "'{ type ipv4_addr; }'"), 0);
	assert_int_equal(nftb_open(&n, "ctsync_u", NB, SEED, true, 0, NULL, err, sizeof(err)), 0);
	s = out_of("nft list set inet ctsync_u held");
	assert_non_null(strstr(s, "typeof meta cpu"));
	nftb_close(n);
	/* what nftables refuses comes back as its message (mod 0) */
	assert_true(nftb_open(&n, "ctsync_v", 0, SEED, true, 0, NULL, err, sizeof(err)) < 0);
	assert_null(n);
	assert_true(strlen(err) > 0);
}

/* Ports split into blocks: node k's is the k-th, the same on every node,
 * disjoint from every other; what does not divide evenly is left over. */
static void test_nat_blocks(void **state)
{
	uint16_t lo, hi, plo = 0, phi = 0;

	for (uint32_t id = 1; id <= 16; id++) {
		assert_int_equal(nftb_nat_block(1024, 65535, 16, id, &lo, &hi), 0);
		assert_int_equal(hi - lo + 1, 4032);
		if (id > 1)
			assert_int_equal(lo, phi + 1);
		else
			assert_int_equal(lo, 1024);
		plo = lo;
		phi = hi;
	}
	assert_int_equal(plo, 1024 + 15 * 4032);
	assert_int_equal(phi, 1024 + 16 * 4032 - 1);      /* 65535 - 15 left over */
	assert_int_equal(nftb_nat_block(1024, 65535, 16, 17, &lo, &hi), -ERANGE);
	assert_int_equal(nftb_nat_block(1024, 65535, 16, 0, &lo, &hi), -ERANGE);
	assert_int_equal(nftb_nat_block(2000, 2002, 4, 1, &lo, &hi), -ERANGE);  /* 0 ports */
	assert_int_equal(nftb_nat_block(2000, 2003, 4, 4, &lo, &hi), 0);
	assert_int_equal(lo, 2003);
	assert_int_equal(hi, 2003);
}

/* The NAT chains: our block for TCP, UDP and echo ids, the guard over the
 * whole range, before the ruleset's own NAT (nftables takes them). */
static void test_nftb_nat(void **state)
{
	struct nftb *n;
	char err[256], *s;
	struct nftb_nat nat = { .nsnat = 2, .range_lo = 1024, .range_hi = 65535, .blocks = 16 };

	nat.snat[0] = (struct nftb_snat){ .family = AF_INET, .address = "203.0.113.1",
					  .ifname = "wan0", .nfrom = 2,
					  .from = { "198.51.100.0/24", "198.18.5.0/24" } };
	nat.snat[1] = (struct nftb_snat){ .family = AF_INET6, .address = "2001:db8:2::1",
					  .ifname = "wan0" };
	assert_int_equal(nftb_nat_block(1024, 65535, 16, 2, &nat.lo, &nat.hi), 0);
	if (geteuid() != 0 || sh("command -v nft >/dev/null") < 0 || unshare(CLONE_NEWNET) < 0)
		skip();
	assert_int_equal(nftb_open(&n, "ctsync_n", NB, SEED, true, 0, &nat, err, sizeof(err)), 0);
	s = out_of("nft list table inet ctsync_n");
	assert_non_null(strstr(s, "type nat hook postrouting priority srcnat - 1; policy accept;"));
	assert_non_null(strstr(s, "oifname \"wan0\" ip saddr != 203.0.113.1 ip saddr { 198.18.5.0/24, 198.51.100.0/24 } meta l4proto { tcp, udp } snat ip to 203.0.113.1:5056-9087"));
	assert_non_null(strstr(s, "meta l4proto icmp snat ip to 203.0.113.1:5056-9087"));
	assert_non_null(strstr(s, "ip6 saddr != 2001:db8:2::1 meta l4proto { tcp, udp } snat ip6 to [2001:db8:2::1]:5056-9087"));
	assert_non_null(strstr(s, "meta l4proto ipv6-icmp snat ip6 to [2001:db8:2::1]:5056-9087"));
	assert_non_null(strstr(s, "ip daddr 203.0.113.1 meta l4proto { tcp, udp } th dport 1024-65535 ct state invalid,new,untracked counter packets 0 bytes 0 drop"));
	assert_non_null(strstr(s, "ip6 daddr 2001:db8:2::1 meta l4proto { tcp, udp } th dport 1024-65535"));
	nftb_close(n);
	/* without NAT a restart leaves no NAT chain behind */
	assert_int_equal(nftb_open(&n, "ctsync_n", NB, SEED, true, 0, NULL, err, sizeof(err)), 0);
	s = out_of("nft list table inet ctsync_n");
	assert_null(strstr(s, "nat_out"));
	nftb_close(n);
}

/* The lease: elements live lease_ms after they were (re)added, so a set
 * renewed in time stays and one left alone empties by itself. */
static void test_nftb_lease(void **state)
{
	struct nftb *n;
	char err[256], *s;
	uint32_t some[] = { 2, 7 };

	if (geteuid() != 0 || sh("command -v nft >/dev/null") < 0 || unshare(CLONE_NEWNET) < 0)
		skip();
	assert_int_equal(nftb_open(&n, "ctsync_l", NB, SEED, true, 400, NULL, err, sizeof(err)), 0);
	s = out_of("nft list set inet ctsync_l held");
	assert_non_null(strstr(s, "timeout 400ms"));
	for (int i = 0; i < 8; i++) {           /* renewed every 100 ms for 800 ms */
		assert_int_equal(nftb_set(n, some, 2, err, sizeof(err)), 0);
		usleep(100 * 1000);
	}
	s = out_of("nft list set inet ctsync_l held");
	assert_non_null(strstr(s, "2 expires"));
	assert_non_null(strstr(s, "7 expires"));
	usleep(600 * 1000);                     /* not renewed: gone */
	s = out_of("nft list set inet ctsync_l held");
	assert_null(strstr(s, "expires"));
	nftb_close(n);
}

/* The headers of held packets (nfq_pkt_*), without a kernel. */
static void test_nfq_parse(void **state)
{
	/* IPv4 TCP SYN 198.51.100.10:40000 -> 203.0.113.10:80 */
	uint8_t v4[40] = { 0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, IPPROTO_TCP, 0, 0,
			   198, 51, 100, 10, 203, 0, 113, 10,
			   0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02 };
	struct nfq_pkt p;
	struct ct ct, key;

	assert_int_equal(nfq_pkt_parse(v4, sizeof(v4), &p), 0);
	assert_int_equal(p.l3, AF_INET);
	assert_int_equal(p.l4, IPPROTO_TCP);
	assert_int_equal(p.t.src.ip4, htonl(0xc633640a));
	assert_int_equal(p.t.dst.ip4, htonl(0xcb00710a));
	assert_int_equal(p.t.sport, htons(40000));
	assert_int_equal(p.t.dport, htons(80));
	assert_false(nfq_pkt_synack(&p));
	assert_int_equal(nfq_pkt_new_ct(&p, &ct), 0);
	assert_int_equal(ct.tcp.state, 1);              /* SYN_SENT */
	assert_int_equal(ct.timeout, 120);
	assert_int_equal(ct.reply.src.ip4, p.t.dst.ip4);
	assert_int_equal(ct.reply.dport, p.t.sport);
	nfq_pkt_key(&p, &key);                          /* reversed */
	assert_int_equal(key.orig.src.ip4, p.t.dst.ip4);
	assert_int_equal(key.orig.sport, p.t.dport);
	v4[33] = 0x12;                                  /* SYN-ACK */
	assert_int_equal(nfq_pkt_parse(v4, sizeof(v4), &p), 0);
	assert_true(nfq_pkt_synack(&p));
	assert_int_equal(nfq_pkt_synack_ct(&p, &ct), 0);        /* the hint it makes */
	assert_int_equal(ct.orig.src.ip4, p.t.dst.ip4);
	assert_int_equal(ct.orig.dport, p.t.sport);
	assert_int_equal(ct.tcp.state, 2);              /* SYN_RECV */
	assert_false(ct.has & CT_HAS_REPLY);
	v4[33] = 0x10;                                  /* an ACK: a loose pick-up, not held */
	assert_int_equal(nfq_pkt_parse(v4, sizeof(v4), &p), 0);
	assert_int_equal(nfq_pkt_new_ct(&p, &ct), -EINVAL);
	assert_int_equal(nfq_pkt_synack_ct(&p, &ct), -EINVAL);
	assert_int_equal(nfq_pkt_parse(v4, 33, &p), -EINVAL);          /* no TCP flags */
	v4[6] = 0x20;                                   /* more fragments, offset 0: the first */
	assert_int_equal(nfq_pkt_parse(v4, sizeof(v4), &p), 0);
	v4[7] = 8;                                      /* a later fragment */
	assert_int_equal(nfq_pkt_parse(v4, sizeof(v4), &p), -EINVAL);
	v4[6] = v4[7] = 0;
	v4[9] = IPPROTO_ICMP;                           /* no ports */
	assert_int_equal(nfq_pkt_parse(v4, sizeof(v4), &p), -EINVAL);
	v4[0] = 0x44;                                   /* header length 16 */
	assert_int_equal(nfq_pkt_parse(v4, sizeof(v4), &p), -EINVAL);
	/* IPv6 UDP 2001:db8:1::10:5353 -> 2001:db8:2::10:53 */
	uint8_t v6[48] = { 0x60, 0, 0, 0, 0, 8, IPPROTO_UDP, 64 };
	v6[8] = 0x20; v6[9] = 0x01; v6[10] = 0x0d; v6[11] = 0xb8; v6[13] = 1; v6[23] = 0x10;
	v6[24] = 0x20; v6[25] = 0x01; v6[26] = 0x0d; v6[27] = 0xb8; v6[29] = 2; v6[39] = 0x10;
	v6[40] = 0x14; v6[41] = 0xe9; v6[42] = 0; v6[43] = 53;
	assert_int_equal(nfq_pkt_parse(v6, sizeof(v6), &p), 0);
	assert_int_equal(p.l3, AF_INET6);
	assert_int_equal(p.l4, IPPROTO_UDP);
	assert_int_equal(p.t.sport, htons(5353));
	assert_int_equal(p.t.dst.ip6[15], 0x10);
	assert_int_equal(nfq_pkt_new_ct(&p, &ct), 0);
	assert_int_equal(ct.timeout, 30);
	assert_false(ct.has & CT_HAS_TCP);
	v6[6] = 0;                                      /* a hop-by-hop header: not walked */
	assert_int_equal(nfq_pkt_parse(v6, sizeof(v6), &p), -EINVAL);
	assert_int_equal(nfq_pkt_parse(v6, 39, &p), -EINVAL);
	v6[0] = 0x50;
	assert_int_equal(nfq_pkt_parse(v6, sizeof(v6), &p), -EINVAL);
}

/* The queueing table (made, made again, removed) and the queue, in a
 * namespace of the test's own. */
static void test_nfq_rules(void **state)
{
	struct nfq *q, *q2;
	char err[256], *s;

	if (geteuid() != 0 || sh("command -v nft >/dev/null") < 0 || unshare(CLONE_NEWNET) < 0)
		skip();
	for (int i = 0; i < 2; i++) {           /* the second replaces the first */
		assert_int_equal(nfq_rules_install("ctsync_t", 5, err, sizeof(err)), 0);
		s = out_of("nft list table inet ctsync_t_defer 2>/dev/null");
		assert_non_null(strstr(s, "hook postrouting priority srcnat + 10; policy accept;"));
		assert_int_equal(count(s, "meta iiftype != 65535"), 3);
		/* (nft 1.0.6 prints the tests its own way) */
		assert_non_null(strstr(s, "ct helper != \"\" counter packets 0 bytes 0 accept"));
		assert_non_null(strstr(s, "ct state new ct status ! snat,dnat ct zone 0 counter"));
		assert_non_null(strstr(s, "ct direction reply tcp flags syn,ack / syn,ack counter"));
	}
	assert_int_equal(nfq_open(&q, 5, 64, NULL, NULL), 0);
	assert_true(nfq_fd(q) >= 0);
	assert_int_equal(nfq_read(q, 16), 0);           /* nothing held */
	assert_true(nfq_open(&q2, 5, 64, NULL, NULL) < 0);      /* one listener per queue */
	nfq_close(q);
	assert_int_equal(nfq_rules_remove("ctsync_t", err, sizeof(err)), 0);
	assert_int_not_equal(sh("nft list table inet ctsync_t_defer >/dev/null 2>&1"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookup3_shape),
		cmocka_unit_test(test_against_nft),
		cmocka_unit_test(test_nftb_table),
		cmocka_unit_test(test_nftb_lease),
		cmocka_unit_test(test_nat_blocks),
		cmocka_unit_test(test_nftb_nat),
		cmocka_unit_test(test_nfq_parse),
		cmocka_unit_test(test_nfq_rules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
