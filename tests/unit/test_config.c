/* Config parsing: a full valid file, and errors reported as FILE:LINE, all
 * of them in one pass. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/config.h"
#include "util/log.h"

static char path[64];
static char keypath[64], keypath2[64];

/* A key file as ctsyncctl keygen writes it, mode `mode`. */
static void make_key(char *out, unsigned id, int mode)
{
	char text[256];
	strcpy(out, "/tmp/ctsync-test-key.XXXXXX");
	int fd = mkstemp(out);
	assert_true(fd >= 0);
	assert_int_equal(keyfile_generate((uint8_t)id, text, sizeof(text)), 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	fchmod(fd, (mode_t)mode);
	close(fd);
}

static int setup(void **state)
{
	make_key(keypath, 17, 0600);
	make_key(keypath2, 18, 0600);
	return 0;
}

static int teardown(void **state)
{
	unlink(keypath);
	unlink(keypath2);
	return 0;
}

static int load(const char *text, struct config *cfg, char *errs, size_t errlen)
{
	strcpy(path, "/tmp/ctsync-test-conf.XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	FILE *e = fmemopen(errs, errlen, "w");
	int n = config_load(path, cfg, e);
	fclose(e);
	unlink(path);
	return n;
}

static const char *good =
	"node = { id = 1; };\n"
	"sync = { role = \"primary\"; inject = \"on-promote\"; tcp_window = \"strict\";\n"
	"         heartbeat_ms = 100; dead_after = 4; };\n"
	"transport = {\n"
	"  type = \"multicast\"; interface = \"sync0\"; address = \"2001:db8:ff::1\";\n"
	"  port = 4000; group = \"ff02::1:3\"; rcvbuf = 1048576;\n"
	"  peers = ( { id = 2; address = \"2001:db8:ff::2\"; }, { id = 3; address = \"2001:db8:ff::3\"; } );\n"
	"};\n"
	"filter = { ignore_addresses = [ \"198.51.100.0/24\", \"2001:db8::1\" ];\n"
	"           protocols = [ \"tcp\", \"udp\" ];\n"
	"           tcp_states = [ \"ESTABLISHED\", \"closed\", \"TIME_WAIT\" ]; min_age = 10;\n"
	"           zones = { exclude = [ 0, 7 ]; }; strip = [ \"labels\", \"secmark\" ]; };\n"
	"control = { socket = \"/run/x.sock\"; };\n"
	"log = { level = \"debug\"; target = \"syslog\"; };\n"
	"kernel = { event_buffer = 8388608; };\n"
	"daemon = { nice = 5; };\n"
	"expectations = { sync = true; helpers = [ \"ftp\", \"h323\" ]; };\n"
	"security = { key_file = \"%s\"; next_key_file = \"%s\"; cipher = \"chacha20-poly1305\"; };\n";

static void test_good(void **state)
{
	struct config c;
	char errs[4096] = "", text[4096];

	snprintf(text, sizeof(text), good, keypath, keypath2);
	assert_int_equal(load(text, &c, errs, sizeof(errs)), 0);
	assert_int_equal(c.nkeys, 2);
	assert_int_equal(c.keys[0].id, 17);
	assert_int_equal(c.keys[1].id, 18);
	assert_int_equal(c.cipher, SEAL_CHACHA20_POLY1305);
	assert_false(c.insecure);
	assert_int_equal(c.repl.node_id, 1);
	assert_true(c.repl.primary);
	assert_false(c.repl.inject_immediate);
	assert_false(c.tcp_liberal);
	assert_int_equal(c.repl.heartbeat_ms, 100);
	assert_int_equal(c.repl.dead_after, 4);
	assert_int_equal(c.transport.type, TRANSPORT_MULTICAST);
	assert_string_equal(c.transport.ifname, "sync0");
	assert_int_equal(c.repl.npeers, 2);
	assert_int_equal(c.repl.peer_id[1], 3);
	assert_int_equal(c.transport.group.ss_family, AF_INET6);
	assert_true(c.repl.proto[6] && c.repl.proto[17] && !c.repl.proto[1]);
	/* two configured, plus our own sync address and the two peers' */
	assert_int_equal(c.repl.nignore, 5);
	unsigned p24 = 0, p128 = 0;
	for (unsigned i = 0; i < c.repl.nignore; i++) {
		p24 += c.repl.ignore[i].plen == 24;
		p128 += c.repl.ignore[i].plen == 128;
	}
	assert_int_equal(p24, 1);
	assert_int_equal(p128, 4);      /* one configured, the three sync addresses */
	assert_string_equal(c.socket_path, "/run/x.sock");
	assert_int_equal(c.log_level, LOG_LVL_DEBUG);
	assert_true(c.log_syslog);
	assert_int_equal(c.event_buffer, 8388608);
	assert_int_equal(c.nice, 5);
	assert_true(c.repl.exp_sync);
	assert_int_equal(c.repl.nexp_helpers, 3);       /* h323 is RAS and Q.931 */
	assert_string_equal(c.repl.exp_helpers[0], "ftp");
	assert_string_equal(c.repl.exp_helpers[2], "Q.931");
	assert_int_equal(c.repl.tcp_states, (1u << 3) | (1u << 8) | (1u << 7));
	assert_int_equal(c.repl.min_age_ms, 10000);
	assert_true(c.repl.zones_exclude);
	assert_int_equal(c.repl.nzones, 2);
	assert_int_equal(c.repl.zones[1], 7);
	assert_int_equal(c.repl.strip, CT_HAS_LABELS | CT_HAS_SECMARK);
}

static void test_defaults(void **state)
{
	struct config c;
	char errs[4096] = "";
	const char *min =
		"node = { id = 7; };\n"
		"transport = { type = \"udp\"; interface = \"eth1\"; address = \"198.18.0.7\";\n"
		"  peers = ( { id = 8; address = \"198.18.0.8\"; } ); };\n"
		"security = { insecure = true; };\n";

	assert_int_equal(load(min, &c, errs, sizeof(errs)), 0);
	assert_true(c.insecure);
	assert_int_equal(c.nkeys, 0);
	assert_int_equal(c.cipher, SEAL_AES_256_GCM);
	assert_false(c.repl.primary);
	assert_true(c.repl.inject_immediate);
	assert_true(c.tcp_liberal);
	assert_int_equal(c.repl.heartbeat_ms, 200);
	assert_int_equal(ntohs(((struct sockaddr_in *)&c.transport.local)->sin_port), 3780);
	assert_true(c.repl.proto[6] && c.repl.proto[1] && c.repl.proto[47] && c.repl.proto[132]);
	assert_string_equal(c.socket_path, CONFIG_DEFAULT_SOCKET);
	assert_int_equal(c.nice, -10);
}

/* corosync CPG: a group name (default "ctsync"), peers by id only or none
 * at all (corosync's nodelist then), no interface or address of ours. */
static void test_cpg(void **state)
{
	struct config c;
	char errs[4096] = "";

	assert_int_equal(load("node = { id = 3; };\n"
			      "transport = { type = \"cpg\"; };\n"
			      "security = { insecure = true; };\n", &c, errs, sizeof(errs)), 0);
	assert_int_equal(c.transport.type, TRANSPORT_CPG);
	assert_string_equal(c.transport.cpg_group, "ctsync");
	assert_int_equal(c.transport.local_node, 3);
	assert_int_equal(c.repl.npeers, 0);
	assert_int_equal(load("node = { id = 3; };\n"
			      "transport = { type = \"cpg\"; group = \"fw-west\"; sndbuf = 1048576;\n"
			      "  peers = ( { id = 1; }, { id = 2; } ); };\n"
			      "security = { insecure = true; };\n", &c, errs, sizeof(errs)), 0);
	assert_string_equal(c.transport.cpg_group, "fw-west");
	assert_int_equal(c.repl.npeers, 2);
	assert_int_equal(c.transport.peers[1].id, 2);
	assert_int_equal(c.transport.sndbuf, 1048576);
	errs[0] = 0;
	assert_int_equal(load("node = { id = 3; };\n"
			      "transport = { type = \"cpg\"; group = \"\";\n"
			      "  interface = \"sync0\"; };\n"
			      "security = { insecure = true; };\n", &c, errs, sizeof(errs)), 2);
	assert_non_null(strstr(errs, ":3: 'interface' is not for type = \"cpg\""));
	assert_non_null(strstr(errs, ":2: bad CPG group name"));
}

/* Active-active: the mode makes a node primary (holding buckets) unless
 * it says otherwise, buckets default to 64 with ctsyncd's seed in table
 * inet ctsync; inject on-promote, buckets without the mode, and a bad
 * count or table name are errors with their lines. */
static void test_active_active(void **state)
{
	struct config c;
	char errs[4096] = "";
	const char *head =
		"node = { id = 3; };\n"
		"transport = { type = \"cpg\"; };\n"
		"security = { insecure = true; };\n";
	char text[1024];

	snprintf(text, sizeof(text), "%ssync = { mode = \"active-active\"; };\n", head);
	assert_int_equal(load(text, &c, errs, sizeof(errs)), 0);
	assert_true(c.repl.active_active);
	assert_true(c.repl.primary);
	assert_int_equal(c.repl.nbuckets, 64);
	assert_int_equal(c.repl.bucket_seed, 0x63747379);
	assert_string_equal(c.nft_table, "ctsync");
	assert_int_equal(c.repl.lease_ms, 600);         /* dead time (1000) - 2 heartbeats */
	snprintf(text, sizeof(text), "%ssync = { mode = \"active-active\"; heartbeat_ms = 100;\n"
		 "  dead_after = 3; };\nbuckets = { lease_ms = 0; };\n", head);
	assert_int_equal(load(text, &c, errs, sizeof(errs)), 0);
	assert_int_equal(c.repl.lease_ms, 0);           /* off */
	snprintf(text, sizeof(text), "%ssync = { mode = \"active-active\"; heartbeat_ms = 100;\n"
		 "  dead_after = 3; };\n", head);
	assert_int_equal(load(text, &c, errs, sizeof(errs)), 0);
	assert_int_equal(c.repl.lease_ms, 200);         /* at least two heartbeats */
	snprintf(text, sizeof(text), "%ssync = { mode = \"active-active\"; };\n"
		 "buckets = {\n  lease_ms = 300; };\n", head);
	errs[0] = 0;
	assert_int_equal(load(text, &c, errs, sizeof(errs)), 1);
	assert_non_null(strstr(errs, ":6: 'lease_ms' must be 0 (off) or at least two heartbeats"));
	/* quorum: corosync's over CPG (naming another is an error) */
	assert_false(c.repl.quorum_majority);
	snprintf(text, sizeof(text), "%ssync = { mode = \"active-active\"; };\n"
		 "buckets = {\n  quorum = \"majority\"; };\n", head);
	errs[0] = 0;
	assert_int_equal(load(text, &c, errs, sizeof(errs)), 1);
	assert_non_null(strstr(errs, ":6: over CPG the quorum is corosync's"));
	/* over UDP: a majority with 3 nodes, none with 2 (or when off) */
	const char *udp3 = "node = { id = 1; };\nsecurity = { insecure = true; };\n"
		"transport = { type = \"udp\"; interface = \"s\"; address = \"198.18.0.1\";\n"
		"  peers = ( { id = 2; address = \"198.18.0.2\"; }, { id = 3; address = "
		"\"198.18.0.3\"; } ); };\nsync = { mode = \"active-active\"; };\n";
	const char *udp2 = "node = { id = 1; };\nsecurity = { insecure = true; };\n"
		"transport = { type = \"udp\"; interface = \"s\"; address = \"198.18.0.1\";\n"
		"  peers = ( { id = 2; address = \"198.18.0.2\"; } ); };\n"
		"sync = { mode = \"active-active\"; };\n";
	assert_int_equal(load(udp3, &c, errs, sizeof(errs)), 0);
	assert_true(c.repl.quorum_majority);
	assert_int_equal(load(udp2, &c, errs, sizeof(errs)), 0);
	assert_false(c.repl.quorum_majority);
	snprintf(text, sizeof(text), "%sbuckets = { quorum = \"off\"; };\n", udp3);
	assert_int_equal(load(text, &c, errs, sizeof(errs)), 0);
	assert_false(c.repl.quorum_majority);
	snprintf(text, sizeof(text), "%sbuckets = { quorum = \"majority\"; };\n", udp2);
	assert_int_equal(load(text, &c, errs, sizeof(errs)), 0);
	assert_true(c.repl.quorum_majority);    /* both needed: the operator's choice */
	/* a second path: transport.address2, interface2 and each peer's address2 */
	const char *path2 = "node = { id = 1; };\nsecurity = { insecure = true; };\n"
		"transport = { type = \"udp\"; interface = \"s\"; address = \"198.18.0.1\";\n"
		"  interface2 = \"m\"; address2 = \"198.18.2.1\";\n"
		"  peers = ( { id = 2; address = \"198.18.0.2\"; address2 = \"198.18.2.2\"; } ); };\n"
		"sync = { mode = \"active-active\"; };\n";
	assert_int_equal(load(path2, &c, errs, sizeof(errs)), 0);
	assert_string_equal(c.transport.ifname2, "m");
	assert_int_equal(c.transport.local2.ss_family, AF_INET);
	assert_int_equal(c.transport.peers[0].addr2.ss_family, AF_INET);
	assert_int_equal(ntohs(((struct sockaddr_in *)&c.transport.peers[0].addr2)->sin_port), 3780);
	assert_false(c.repl.quorum_majority);   /* 2 nodes: off, two paths */
	const char *nolocal2 = "node = { id = 1; };\nsecurity = { insecure = true; };\n"
		"transport = { type = \"udp\"; interface = \"s\"; address = \"198.18.0.1\";\n"
		"  peers = ( { id = 2; address = \"198.18.0.2\";\n    address2 = \"198.18.2.2\"; } ); };\n";
	errs[0] = 0;
	assert_int_equal(load(nolocal2, &c, errs, sizeof(errs)), 1);
	assert_non_null(strstr(errs, ":5: 'address2' (a second path) needs transport.address2 too"));
	const char *mc2 = "node = { id = 1; };\nsecurity = { insecure = true; };\n"
		"transport = { type = \"multicast\"; interface = \"s\"; address = \"198.18.0.1\";\n"
		"  group = \"239.255.67.83\";\n  address2 = \"198.18.2.1\";\n"
		"  peers = ( { id = 2; address = \"198.18.0.2\"; } ); };\n";
	errs[0] = 0;
	assert_int_equal(load(mc2, &c, errs, sizeof(errs)), 1);
	assert_non_null(strstr(errs, ":5: 'address2' (a second path) is for type = \"udp\" only"));
	snprintf(text, sizeof(text), "%sbuckets = { quorum = \"most\"; };\n", udp3);
	errs[0] = 0;
	assert_int_equal(load(text, &c, errs, sizeof(errs)), 1);
	assert_non_null(strstr(errs, "quorum"));
	snprintf(text, sizeof(text), "%ssync = { mode = \"active-active\"; role = \"backup\"; };\n"
		 "buckets = { count = 1024; seed = 7; table = \"fw_west\"; };\n", head);
	assert_int_equal(load(text, &c, errs, sizeof(errs)), 0);
	assert_false(c.repl.primary);                   /* drained */
	assert_int_equal(c.repl.nbuckets, 1024);
	assert_int_equal(c.repl.bucket_seed, 7);
	assert_string_equal(c.nft_table, "fw_west");
	snprintf(text, sizeof(text), "%ssync = { mode = \"active-backup\"; };\n", head);
	assert_int_equal(load(text, &c, errs, sizeof(errs)), 0);
	assert_false(c.repl.active_active);
	assert_false(c.repl.primary);
	/* errors */
	snprintf(text, sizeof(text), "%ssync = { mode = \"active-active\";\n"
		 "  inject = \"on-promote\"; };\n"
		 "buckets = { count = 0;\n  table = \"1x;drop\"; };\n", head);
	errs[0] = 0;
	assert_int_equal(load(text, &c, errs, sizeof(errs)), 3);
	assert_non_null(strstr(errs, ":5: mode \"active-active\" needs inject = \"immediate\""));
	assert_non_null(strstr(errs, ":6: 'count' must be between 1 and 1024"));
	assert_non_null(strstr(errs, ":7: 'table' must be a name"));
	snprintf(text, sizeof(text), "%sbuckets = { count = 8; };\n", head);
	errs[0] = 0;
	assert_int_equal(load(text, &c, errs, sizeof(errs)), 1);
	assert_non_null(strstr(errs, ":4: 'buckets' is for sync.mode = \"active-active\" only"));
	snprintf(text, sizeof(text), "%ssync = { mode = \"active-passive\"; };\n", head);
	errs[0] = 0;
	assert_int_equal(load(text, &c, errs, sizeof(errs)), 1);
	assert_non_null(strstr(errs, ":4: 'mode' must be one of: active-backup, active-active"));
	/* routed, with defer */
	snprintf(text, sizeof(text), "%ssync = { mode = \"active-active\"; };\n"
		 "buckets = { filter = false; };\ndefer = { queue = 7; };\n", head);
	assert_int_equal(load(text, &c, errs, sizeof(errs)), 0);
	assert_true(c.repl.routed);
	assert_int_equal(c.repl.defer_ms, 20);
	assert_int_equal(c.repl.defer_max, 4096);
	assert_int_equal(c.defer_queue, 7);
	snprintf(text, sizeof(text), "%ssync = { mode = \"active-active\"; };\n", head);
	assert_int_equal(load(text, &c, errs, sizeof(errs)), 0);
	assert_false(c.repl.routed);
	assert_int_equal(c.repl.defer_ms, 0);
	snprintf(text, sizeof(text), "%ssync = { mode = \"active-active\"; };\n"
		 "buckets = { filter = \"no\"; };\ndefer = { timeout = 5000;\n queue = -1; };\n",
		 head);
	errs[0] = 0;
	assert_int_equal(load(text, &c, errs, sizeof(errs)), 3);
	assert_non_null(strstr(errs, ":5: 'filter' must be true or false"));
	assert_non_null(strstr(errs, ":6: 'timeout' must be between 1 and 1000"));
	assert_non_null(strstr(errs, ":7: 'queue' must be between 0 and 65535"));
	snprintf(text, sizeof(text), "%sdefer = { timeout = 20; };\n", head);
	errs[0] = 0;
	assert_int_equal(load(text, &c, errs, sizeof(errs)), 1);
	assert_non_null(strstr(errs, ":4: 'defer' is for sync.mode = \"active-active\" only"));
}

/* Each case: the text, and the "LINE: " prefixes expected, in order. */
/* nat: the shared addresses, this node's block of ports, and what is
 * refused with the file's line. */
static void test_nat(void **state)
{
	struct config c;
	char errs[4096] = "", text[2048];
	const char *udp3 = "node = { id = 2; };\nsecurity = { insecure = true; };\n"
		"transport = { type = \"udp\"; interface = \"s\"; address = \"198.18.0.2\";\n"
		"  peers = ( { id = 1; address = \"198.18.0.1\"; }, { id = 3; address = "
		"\"198.18.0.3\"; } ); };\nsync = { mode = \"active-active\"; };\n";

	snprintf(text, sizeof(text), "%snat = { snat = ( { address = \"203.0.113.1\"; "
		 "interface = \"wan0\"; from = [ \"198.51.100.0/24\" ]; },\n"
		 "  { address = \"2001:db8:2:0::1\"; interface = \"wan0\"; } ); };\n", udp3);
	assert_int_equal(load(text, &c, errs, sizeof(errs)), 0);
	assert_int_equal(c.nat.nsnat, 2);
	assert_int_equal(c.nat.snat[0].family, AF_INET);
	assert_string_equal(c.nat.snat[0].address, "203.0.113.1");
	assert_string_equal(c.nat.snat[0].ifname, "wan0");
	assert_int_equal(c.nat.snat[0].nfrom, 1);
	assert_string_equal(c.nat.snat[1].address, "2001:db8:2::1");    /* as nft writes it */
	assert_int_equal(c.nat.blocks, 8);
	assert_int_equal(c.nat.lo, 1024 + 8064);                        /* node 2's block */
	assert_int_equal(c.nat.hi, 1024 + 2 * 8064 - 1);
	snprintf(text, sizeof(text), "%snat = { snat = ( { address = \"203.0.113.1\"; "
		 "interface = \"wan0\"; } );\n  ports = \"20000-29999\"; blocks = 4; };\n", udp3);
	assert_int_equal(load(text, &c, errs, sizeof(errs)), 0);
	assert_int_equal(c.nat.lo, 22500);
	assert_int_equal(c.nat.hi, 24999);
	/* a peer without a block, and this node without one */
	snprintf(text, sizeof(text), "%snat = { snat = ( { address = \"203.0.113.1\"; "
		 "interface = \"wan0\"; } );\n  blocks = 2; };\n", udp3);
	errs[0] = 0;
	assert_int_equal(load(text, &c, errs, sizeof(errs)), 1);
	assert_non_null(strstr(errs, ":7: peer 3 has no block of ports (2 blocks: ids 1 to 2)"));
	snprintf(text, sizeof(text), "%snat = { snat = ( { address = \"203.0.113.1\"; "
		 "interface = \"wan0\"; } );\n  blocks = 1; };\n", udp3);
	errs[0] = 0;
	assert_true(load(text, &c, errs, sizeof(errs)) >= 1);
	assert_non_null(strstr(errs, ":7: node.id 2 has no block of ports: 1024-65535 split "
			       "into 1 blocks"));
	/* bad parts, each named by its line */
	snprintf(text, sizeof(text), "%snat = {\n snat = ( { address = \"203.0.113.300\"; "
		 "interface = \"wan0\"; },\n { address = \"203.0.113.1\"; interface = \"a b\"; "
		 "},\n { address = \"2001:db8::1\"; interface = \"w\"; from = [ \"198.51.100.0/24\" ]; "
		 "} );\n ports = \"70-60\"; };\n", udp3);
	errs[0] = 0;
	assert_int_equal(load(text, &c, errs, sizeof(errs)), 4);
	assert_non_null(strstr(errs, ":7: bad address \"203.0.113.300\""));
	assert_non_null(strstr(errs, ":8: bad interface name \"a b\""));
	assert_non_null(strstr(errs, ":9: prefix \"198.51.100.0/24\" is not of the address's family"));
	assert_non_null(strstr(errs, ":10: 'ports' must be a range \"LO-HI\""));
	snprintf(text, sizeof(text), "%snat = { snat = ( ); };\n", udp3);
	errs[0] = 0;
	assert_int_equal(load(text, &c, errs, sizeof(errs)), 1);
	assert_non_null(strstr(errs, "'snat' must be a list of one or more groups"));
	/* active-backup: one node forwards, no NAT of ours */
	snprintf(text, sizeof(text), "node = { id = 1; };\nsecurity = { insecure = true; };\n"
		 "transport = { type = \"cpg\"; };\nnat = { snat = ( { address = \"203.0.113.1\";"
		 " interface = \"wan0\"; } ); };\n");
	errs[0] = 0;
	assert_int_equal(load(text, &c, errs, sizeof(errs)), 1);
	assert_non_null(strstr(errs, ":4: 'nat' is for sync.mode = \"active-active\" only"));
}

static void test_errors(void **state)
{
	static const struct {
		const char *text;
		const char *expect[4];
		bool own_security;
	} cases[] = {
		{ "node = { id = 0; };\n"
		  "transport = { type = \"udp\"; interface = \"s\"; address = \"198.18.0.1\";\n"
		  "  peers = ( { id = 2; address = \"198.18.0.2\"; } ); };\n",
		  { ":1: 'id' must be between" }, false },
		{ "node = { id = 1; colour = \"blue\"; };\n"
		  "transport = { type = \"udp\"; interface = \"s\"; address = \"198.18.0.300\";\n"
		  "  peers = ( { id = 2; address = \"198.18.0.2\"; },\n"
		  "            { id = 2; address = \"198.18.0.3\"; } ); };\n",
		  { ":1: unknown key 'colour'", ":2: bad address", ":4: duplicate node id 2" }, false },
		{ "node = { id = 1; };\n"
		  "sync = { inject = \"later\"; heartbeat_ms = \"fast\"; };\n"
		  "transport = { type = \"multicast\"; interface = \"s\"; address = \"198.18.0.1\";\n"
		  "  group = \"198.18.0.9\"; peers = ( { id = 2; address = \"2001:db8::2\"; } ); };\n",
		  { ":2: 'inject' must be one of", ":2: 'heartbeat_ms' must be an integer",
		    ":4: peer address", ":4: \"198.18.0.9\" is not a multicast" }, false },
		{ "node = { id = 1; };\n"
		  "transport = { type = \"udp\"; interface = \"s\"; address = \"198.18.0.1\";\n"
		  "  peers = ( { id = 2; address = \"198.18.0.2\"; } ); };\n"
		  "filter = { ignore_addresses = [ \"10.0.0.0/33\" ]; protocols = [ \"tcp\", \"xtp\" ]; };\n"
		  "daemon = { nice = -21; };\n",
		  { ":4: bad address or prefix", ":4: unknown protocol \"xtp\"", ":5: 'nice' must be between" },
		  false },
		{ "node = { id = 1; };\n"
		  "transport = { type = \"udp\"; interface = \"s\"; address = \"198.18.0.1\";\n"
		  "  peers = ( { id = 2; address = \"198.18.0.2\"; } ); };\n"
		  "filter = { tcp_states = [ \"ESTABLISHED\",\n \"OPENED\" ]; min_age = -1;\n"
		  "  zones = { include = [ 7 ]; exclude = [ 1 ]; };\n"
		  "  strip = [ \"helper\" ]; };\n",
		  { ":5: unknown TCP state \"OPENED\"", ":5: 'min_age' must be between",
		    ":6: 'zones' has 'include' or 'exclude', not both", ":7: unknown attribute" },
		  false },
		{ "node = { id = 1; };\n"
		  "transport = { type = \"udp\"; interface = \"s\"; address = \"198.18.0.1\";\n"
		  "  peers = ( { id = 2; address = \"198.18.0.2\"; } ); };\n"
		  "expectations = { sync = 1; helpers = [ \"gopher\" ]; };\n",
		  { ":4: 'sync' must be true or false", ":4: unknown helper \"gopher\"" }, false },
		{ "node = { id = 1; };\n"            /* syntax error: no value */
		  "transport = { type = ; };\n",
		  { ":2: syntax error" }, false },
		{ "node = { id = 1; };\n"            /* no security section at all */
		  "transport = { type = \"udp\"; interface = \"s\"; address = \"198.18.0.1\";\n"
		  "  peers = ( { id = 2; address = \"198.18.0.2\"; } ); };\n",
		  { ": missing section 'security'" }, true },
		{ "node = { id = 1; };\n"
		  "transport = { type = \"udp\"; interface = \"s\"; address = \"198.18.0.1\";\n"
		  "  peers = ( { id = 2; address = \"198.18.0.2\"; } ); };\n"
		  "security = { cipher = \"rot13\"; insecure = \"yes\"; };\n",
		  { ":4: 'cipher' must be one of", ":4: 'insecure' must be true or false",
		    ":4: no key" }, true },
		{ "node = { id = 1; };\n"
		  "transport = { type = \"udp\"; interface = \"s\"; address = \"198.18.0.1\";\n"
		  "  peers = ( { id = 2; address = \"198.18.0.2\"; } ); };\n"
		  "security = { key_file = \"KEY\";\n  insecure = true; };\n",
		  { ":4: 'key_file' and insecure = true exclude each other" }, true },
		{ "node = { id = 1; };\n"
		  "transport = { type = \"udp\"; interface = \"s\"; address = \"198.18.0.1\";\n"
		  "  peers = ( { id = 2; address = \"198.18.0.2\"; } ); };\n"
		  "security = { key_file = \"OPEN\"; };\n",
		  { ":4: /tmp/ctsync-test-key" }, true },
		{ "node = { id = 1; };\n"
		  "transport = { type = \"udp\"; interface = \"s\"; address = \"198.18.0.1\";\n"
		  "  peers = ( { id = 2; address = \"198.18.0.2\"; } ); };\n"
		  "security = { key_file = \"KEY\"; next_key_file = \"KEY\"; };\n",
		  { ":4: both keys have id 17" }, true },
	};
	char open_key[64];
	make_key(open_key, 5, 0644);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config c;
		char errs[4096] = "", text[2048];
		int want = 0;
		while (want < 4 && cases[i].expect[want])
			want++;
		/* every case but the security ones is valid there */
		snprintf(text, sizeof(text), "%s%s", cases[i].text,
			 cases[i].own_security ? "" : "security = { insecure = true; };\n");
		char *at, *from = text;
		while ((at = strstr(from, "\"KEY\"")) || (at = strstr(from, "\"OPEN\""))) {
			char rest[2048];
			bool key = at[1] == 'K';
			const char *with = key ? keypath : open_key;
			snprintf(rest, sizeof(rest), "%s", at + (key ? 5 : 6));
			snprintf(at + 1, sizeof(text) - (size_t)(at + 1 - text), "%s\"%s", with, rest);
			from = at + 2 + strlen(with);
		}
		int n = load(text, &c, errs, sizeof(errs));
		if (n != want)
			fail_msg("case %zu: %d errors, want %d:\n%s", i, n, want, errs);
		char *line = errs;
		for (int k = 0; k < want; k++) {
			char *nl = strchr(line, '\n');
			assert_non_null(nl);
			*nl = 0;
			assert_true(strncmp(line, path, strlen(path)) == 0);
			if (!strstr(line, cases[i].expect[k]))
				fail_msg("case %zu: '%s' lacks '%s'", i, line, cases[i].expect[k]);
			line = nl + 1;
		}
	}
	/* the key file's own complaint names it, and says what to do */
	assert_non_null(strstr(open_key, "/tmp/"));
	unlink(open_key);
}

/* The shipped example documents every key: it must stay valid. */
static void test_example_conf(void **state)
{
	struct config c;
	char *text = NULL, *k;
	size_t len = 0;
	FILE *f = fopen("conf/ctsyncd.conf", "r");

	assert_non_null(f);
	assert_true(getdelim(&text, &len, 0, f) > 0);
	fclose(f);
	/* its key file, /etc/ctsyncd/key, stands for one made here */
	k = strstr(text, "\"/etc/ctsyncd/key\"");
	assert_non_null(k);
	char *copy = malloc(strlen(text) + 64);
	snprintf(copy, strlen(text) + 64, "%.*s\"%s\"%s", (int)(k - text), text, keypath,
		 k + strlen("\"/etc/ctsyncd/key\""));
	FILE *e = fmemopen((char[4096]){ 0 }, 4096, "w");
	int n = config_parse(copy, "conf/ctsyncd.conf", &c, stderr);
	fclose(e);
	free(copy);
	free(text);
	assert_int_equal(n, 0);
	assert_int_equal(c.repl.node_id, 1);
	assert_int_equal(c.nkeys, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_cpg),
		cmocka_unit_test(test_active_active),
		cmocka_unit_test(test_nat),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_example_conf),
	};
	return cmocka_run_group_tests_name("config", tests, setup, teardown);
}
