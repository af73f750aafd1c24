/* Flow buckets (bucket.h) against the kernel: in a network namespace of the
 * test's own, an nftables rule sets each new connection's mark to its
 * bucket (jhash of the original addresses, as the active-active rule will
 * compute it); UDP datagrams between loopback addresses make the
 * connections; every mark must be what bucket_of() says.  Then the table
 * the daemon keeps (kernel/nftb.h), made, changed and made again.  Skipped
 * without root, nft or conntrack(8). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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
	assert_int_equal(nftb_open(&n, "ctsync_t", NB, SEED, err, sizeof(err)), 0);
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
	assert_int_equal(nftb_open(&n, "ctsync_t", 128, SEED, err, sizeof(err)), 0);
	s = out_of("nft list table inet ctsync_t");
	assert_null(strstr(s, "elements"));
	assert_int_equal(count(s, "!= @held"), 2);
	assert_int_equal(count(s, "mod 128"), 2);
	assert_int_equal(nftb_set(n, NULL, 0, err, sizeof(err)), 0);
	nftb_close(n);
	/* what nftables refuses comes back as its message */
	assert_int_equal(sh("nft add table inet ctsync_u && nft add set inet ctsync_u held "
			    "'{ type ipv4_addr; }'"), 0);
	assert_true(nftb_open(&n, "ctsync_u", NB, SEED, err, sizeof(err)) < 0);
	assert_null(n);
	assert_true(strlen(err) > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookup3_shape),
		cmocka_unit_test(test_against_nft),
		cmocka_unit_test(test_nftb_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
