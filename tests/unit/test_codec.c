/* Wire codec: table-driven round trips, and every truncation and corruption
 * of a valid frame is rejected without reading out of bounds. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/ct.h"
#include "sync/codec.h"

static struct ct v4_tcp_nat(void)
{
	struct ct c = { .l3 = AF_INET, .l4 = IPPROTO_TCP };
	inet_pton(AF_INET, "198.51.100.10", &c.orig.src);
	inet_pton(AF_INET, "203.0.113.10", &c.orig.dst);
	c.orig.sport = htons(40000);
	c.orig.dport = htons(80);
	inet_pton(AF_INET, "203.0.113.10", &c.reply.src);
	inet_pton(AF_INET, "203.0.113.1", &c.reply.dst);
	c.reply.sport = htons(80);
	c.reply.dport = htons(61000);
	c.status = 0x1be;
	c.timeout = 431999;
	c.mark = 0xdeadbeef;
	c.zone = 7;
	c.tcp.state = 3;
	c.tcp.wscale[0] = 7;
	c.tcp.wscale[1] = 9;
	c.tcp.flags[0] = 0x23;
	c.tcp.flags[1] = 0x22;
	c.seqadj[0] = (struct ct_seqadj){ 1000, 5, 7 };
	c.seqadj[1] = (struct ct_seqadj){ 2000, 0, 0 };
	strcpy(c.helper, "ftp");
	c.labels[0] = 0x81;
	c.labels[5] = 0x01;
	c.has = CT_HAS_REPLY | CT_HAS_STATUS | CT_HAS_TIMEOUT | CT_HAS_MARK | CT_HAS_TCP |
		CT_HAS_SEQADJ_O | CT_HAS_SEQADJ_R | CT_HAS_HELPER | CT_HAS_LABELS | CT_HAS_ZONE;
	return c;
}

static struct ct v6_udp(void)
{
	struct ct c = { .l3 = AF_INET6, .l4 = IPPROTO_UDP };
	inet_pton(AF_INET6, "2001:db8:1::10", &c.orig.src);
	inet_pton(AF_INET6, "2001:db8:2::10", &c.orig.dst);
	c.orig.sport = htons(5353);
	c.orig.dport = htons(53);
	ct_mirror(&c, &c.reply);
	c.status = 0x0e;
	c.timeout = 120;
	c.has = CT_HAS_REPLY | CT_HAS_STATUS | CT_HAS_TIMEOUT | CT_HAS_MARK | CT_HAS_LABELS |
		CT_HAS_HELPER | CT_HAS_ZONE;
	return c;
}

static struct ct v4_icmp(void)
{
	struct ct c = { .l3 = AF_INET, .l4 = IPPROTO_ICMP };
	inet_pton(AF_INET, "198.51.100.10", &c.orig.src);
	inet_pton(AF_INET, "203.0.113.10", &c.orig.dst);
	c.orig.sport = htons(77);
	c.orig.icmp_type = 8;
	c.reply = c.orig;
	c.reply.src = c.orig.dst;
	c.reply.dst = c.orig.src;
	c.reply.icmp_type = 0;
	c.status = 0x08;
	c.timeout = 30;
	c.has = CT_HAS_REPLY | CT_HAS_STATUS | CT_HAS_TIMEOUT | CT_HAS_MARK | CT_HAS_LABELS |
		CT_HAS_HELPER | CT_HAS_ZONE;
	return c;
}

static struct ct sctp_dccp(uint8_t l4)
{
	struct ct c = v4_tcp_nat();
	c.l4 = l4;
	c.has &= ~(uint32_t)CT_HAS_TCP;
	memset(&c.tcp, 0, sizeof(c.tcp));
	if (l4 == IPPROTO_SCTP) {
		c.sctp.state = 3;
		c.sctp.vtag[0] = 0x01020304;
		c.sctp.vtag[1] = 0xa0b0c0d0;
		c.has |= CT_HAS_SCTP;
	} else {
		c.dccp.state = 4;
		c.dccp.role = 1;
		c.dccp.hs_seq = 0x0102030405060708ULL;
		c.has |= CT_HAS_DCCP;
	}
	return c;
}

/* Fields a receiver gets back must equal what was sent. */
static void assert_ct_equal(const struct ct *a, const struct ct *b)
{
	assert_true(ct_key_equal(a, b));
	assert_memory_equal(&a->reply, &b->reply, sizeof(a->reply));
	assert_int_equal(a->status, b->status);
	assert_int_equal(a->timeout, b->timeout);
	assert_int_equal(a->mark, b->mark);
	assert_memory_equal(&a->tcp, &b->tcp, sizeof(a->tcp));
	assert_memory_equal(&a->sctp, &b->sctp, sizeof(a->sctp));
	assert_memory_equal(&a->dccp, &b->dccp, sizeof(a->dccp));
	assert_memory_equal(a->seqadj, b->seqadj, sizeof(a->seqadj));
	assert_string_equal(a->helper, b->helper);
	assert_memory_equal(a->labels, b->labels, sizeof(a->labels));
}

static size_t one_record_frame(uint8_t *buf, size_t cap, enum wire_rec type, const struct ct *c)
{
	struct wbuf w;
	struct frame_hdr h = { .node = 3, .epoch = 0xabcdef01, .seq = 42 };

	codec_frame_start(&w, buf, cap);
	assert_int_equal(codec_put_flow(&w, type, c), 0);
	return codec_frame_finish(&w, &h);
}

static void roundtrip(const struct ct *c)
{
	uint8_t buf[1500];
	size_t len = one_record_frame(buf, sizeof(buf), REC_FLOW_UPSERT, c);
	struct frame_hdr h;
	struct cursor cur;
	struct rec r;
	struct ct out;

	assert_int_equal(codec_frame_open(buf, len, &h, &cur), 0);
	assert_int_equal(h.node, 3);
	assert_int_equal(h.epoch, 0xabcdef01);
	assert_int_equal(h.seq, 42);
	assert_int_equal(codec_next(&cur, &r), 1);
	assert_int_equal(r.type, REC_FLOW_UPSERT);
	assert_int_equal(codec_get_flow(&r, &out), 0);
	assert_ct_equal(c, &out);
	assert_int_equal(codec_next(&cur, &r), 0);
}

static void test_roundtrips(void **state)
{
	struct ct cases[] = { v4_tcp_nat(), v6_udp(), v4_icmp(), sctp_dccp(IPPROTO_SCTP),
			      sctp_dccp(IPPROTO_DCCP) };
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		roundtrip(&cases[i]);
}

/* A flow without NAT does not spend bytes on its mirrored reply tuple. */
static void test_mirror_omitted(void **state)
{
	uint8_t a[1500], b[1500];
	struct ct c = v6_udp();
	size_t with = one_record_frame(a, sizeof(a), REC_FLOW_UPSERT, &c);
	c.has &= ~(uint32_t)CT_HAS_REPLY;
	size_t without = one_record_frame(b, sizeof(b), REC_FLOW_UPSERT, &c);
	assert_int_equal(with, without);
	struct ct n = v4_tcp_nat();
	size_t nat = one_record_frame(a, sizeof(a), REC_FLOW_UPSERT, &n);
	assert_true(nat > 24 + 40);
	/* A TCP/IPv4 upsert with NAT, state and timeout stays small. */
	struct ct small = v4_tcp_nat();
	small.has &= ~(uint32_t)(CT_HAS_SEQADJ_O | CT_HAS_SEQADJ_R);
	small.helper[0] = 0;
	memset(small.labels, 0, sizeof(small.labels));
	small.mark = 0;
	small.zone = 0;
	size_t sl = one_record_frame(a, sizeof(a), REC_FLOW_UPSERT, &small) - WIRE_HDR_LEN;
	assert_true(sl <= 60);
}

static void test_refresh_is_key_and_timeout(void **state)
{
	uint8_t buf[1500];
	struct ct c = v4_tcp_nat();
	size_t len = one_record_frame(buf, sizeof(buf), REC_FLOW_REFRESH, &c);
	struct frame_hdr h;
	struct cursor cur;
	struct rec r;
	struct ct out;

	/* a refresh is far smaller than an upsert: key, zone, timeout */
	assert_true(len - WIRE_HDR_LEN <= 4 + 4 + 16 + 4 + 6);
	assert_int_equal(codec_frame_open(buf, len, &h, &cur), 0);
	assert_int_equal(codec_next(&cur, &r), 1);
	assert_int_equal(r.type, REC_FLOW_REFRESH);
	assert_int_equal(codec_get_flow(&r, &out), 0);
	assert_true(ct_key_equal(&c, &out));
	assert_int_equal(out.timeout, c.timeout);
	assert_true(out.has & CT_HAS_TIMEOUT);
}

static void test_delete_is_key_only(void **state)
{
	uint8_t buf[1500];
	struct ct c = v4_tcp_nat();
	size_t len = one_record_frame(buf, sizeof(buf), REC_FLOW_DELETE, &c);
	struct frame_hdr h;
	struct cursor cur;
	struct rec r;
	struct ct out;

	assert_int_equal(codec_frame_open(buf, len, &h, &cur), 0);
	assert_int_equal(codec_next(&cur, &r), 1);
	assert_int_equal(r.type, REC_FLOW_DELETE);
	assert_int_equal(codec_get_flow(&r, &out), 0);
	assert_true(ct_key_equal(&c, &out));
	assert_int_equal(out.timeout, 0);
}

/* Every prefix of a valid frame is rejected by the header check; every
 * corruption of one byte either decodes or fails cleanly. */
/* The digest every heartbeat carries is part of the protocol (wire.h,
 * "Versions"): the sum of the low 32 bits of ct_key_hash over a node's
 * flows.  These values pin the hash; a change to it, or to what it covers,
 * is an incompatible change (a new protocol major), and fails here first. */
#define KEY_HASH_V4_TCP_NAT 0x6daa1a94b29b6fcbull
#define KEY_HASH_V6_UDP     0xc6c768a1bdf52702ull
static void test_key_hash_pinned(void **state)
{
	struct ct a = v4_tcp_nat(), b = v6_udp();
	uint64_t ha = ct_key_hash(&a), hb = ct_key_hash(&b);

	print_message("key hashes: %#llx %#llx\n", (unsigned long long)ha, (unsigned long long)hb);
	assert_true(ha == KEY_HASH_V4_TCP_NAT);
	assert_true(hb == KEY_HASH_V6_UDP);
	/* only the key counts: state, timeout, mark, NAT do not */
	a.timeout = 1;
	a.mark = 99;
	a.tcp.state = 7;
	a.reply.dst.ip4 ^= 1;
	assert_true(ct_key_hash(&a) == ha);
}

static void test_truncation_and_corruption(void **state)
{
	uint8_t buf[1500], copy[1500];
	struct ct c = v4_tcp_nat();
	size_t len = one_record_frame(buf, sizeof(buf), REC_FLOW_UPSERT, &c);
	struct frame_hdr h;
	struct cursor cur;
	struct rec r;
	struct ct out;

	for (size_t n = 0; n < len; n++) {
		uint8_t *t = malloc(n ? n : 1);
		memcpy(t, buf, n);
		assert_int_equal(codec_frame_open(t, n, &h, &cur), -EINVAL);
		free(t);
	}
	unsigned bad_header = 0, bad_record = 0, decoded = 0;
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			memcpy(copy, buf, len);
			copy[i] ^= (uint8_t)(1 << bit);
			uint8_t *t = malloc(len);
			memcpy(t, copy, len);
			bool must_fail = i < 5 || i == WIRE_OFF_LEN || i == WIRE_OFF_LEN + 1;
			if (codec_frame_open(t, len, &h, &cur) < 0) {
				bad_header++;
				free(t);
				continue;
			}
			/* magic, version and length are checked by the header alone */
			if (must_fail)
				fail_msg("byte %zu bit %d: a frame with a corrupt header opened", i, bit);
			int ret = codec_next(&cur, &r);
			if (ret <= 0 || codec_check_rec(&r) < 0 ||
			    (r.type == REC_FLOW_UPSERT && codec_get_flow(&r, &out) < 0)) {
				bad_record++;
				free(t);
				continue;
			}
			if (r.type == REC_FLOW_UPSERT) {
				/* what decodes is a flow: it encodes and decodes to itself */
				struct ct again;
				uint8_t b2[1500];
				size_t l2 = one_record_frame(b2, sizeof(b2), REC_FLOW_UPSERT, &out);
				assert_int_equal(codec_frame_open(b2, l2, &h, &cur), 0);
				assert_int_equal(codec_next(&cur, &r), 1);
				assert_int_equal(codec_get_flow(&r, &again), 0);
				assert_true(ct_key_equal(&out, &again));
				assert_int_equal(out.status, again.status);
				assert_int_equal(out.timeout, again.timeout);
			}
			decoded++;
			free(t);
		}
	}
	/* every outcome happened: the checks above were reached */
	print_message("%zu corruptions: %u refused by the header, %u by the record decoders, "
		      "%u decoded\n", len * 8, bad_header, bad_record, decoded);
	assert_true(bad_header >= 6 * 8);
	assert_true(bad_record > 0);
	assert_true(decoded > 0);
	assert_int_equal(bad_header + bad_record + decoded, len * 8);
}

static void test_unknown_attributes(void **state)
{
	uint8_t buf[1500];
	struct ct c = v6_udp();
	size_t len = one_record_frame(buf, sizeof(buf), REC_FLOW_UPSERT, &c);
	struct frame_hdr h;
	struct cursor cur;
	struct rec r;
	struct ct out;

	/* append an unknown, optional attribute to the record */
	uint8_t ext[1500];
	memcpy(ext, buf, len);
	ext[len] = 99;
	ext[len + 1] = 3;
	ext[len + 2] = ext[len + 3] = ext[len + 4] = 0xee;
	size_t rl = (size_t)(ext[WIRE_HDR_LEN + 2] << 8 | ext[WIRE_HDR_LEN + 3]) + 5;
	ext[WIRE_HDR_LEN + 2] = (uint8_t)(rl >> 8);
	ext[WIRE_HDR_LEN + 3] = (uint8_t)rl;
	size_t pl = len + 5 - WIRE_HDR_LEN;
	ext[20] = (uint8_t)(pl >> 8);
	ext[21] = (uint8_t)pl;
	assert_int_equal(codec_frame_open(ext, len + 5, &h, &cur), 0);
	assert_int_equal(codec_next(&cur, &r), 1);
	assert_int_equal(codec_get_flow(&r, &out), 0);
	assert_ct_equal(&c, &out);

	/* the same attribute marked mandatory makes the record invalid */
	ext[len] = 99 | ATTR_MANDATORY;
	assert_int_equal(codec_frame_open(ext, len + 5, &h, &cur), 0);
	assert_int_equal(codec_next(&cur, &r), 1);
	assert_int_equal(codec_get_flow(&r, &out), -EINVAL);

	/* a known attribute with the wrong length is malformed */
	memcpy(ext, buf, len);
	for (size_t i = WIRE_HDR_LEN + 4; i + 1 < len; ) {
		if ((ext[i] & 0x7f) == FA_TIMEOUT) {
			ext[i + 1] = 3;
			break;
		}
		i += 2 + ext[i + 1];
	}
	assert_int_equal(codec_frame_open(ext, len, &h, &cur), 0);
	assert_int_equal(codec_next(&cur, &r), 1);
	assert_int_equal(codec_get_flow(&r, &out), -EINVAL);
}

static void test_frame_fill_and_control_records(void **state)
{
	uint8_t buf[512];
	struct wbuf w;
	struct ct c = v4_tcp_nat();
	int n = 0;

	codec_frame_start(&w, buf, sizeof(buf));
	while (codec_put_flow(&w, REC_FLOW_UPSERT, &c) == 0)
		n++;
	assert_true(n >= 4);
	size_t before = w.len;
	assert_int_equal(codec_put_flow(&w, REC_FLOW_UPSERT, &c), -ENOSPC);
	assert_int_equal(w.len, before);        /* untouched on ENOSPC */
	assert_true(w.len <= sizeof(buf));

	struct hb_info hb = { .role = 1, .flows = 12345, .lastseq = 99,
			      .digest = 0xfedcba9876543210ULL, .term = 7, .holds = true,
			      .nbuckets = 64, .bucket_seed = 0xc0ffee, .proto_major = 3,
			      .proto_minor = 1, .features = 0x1f, .release = "1.2.3~rc1",
			      .has_held = true, .held_len = 8, .held = { 0x81, 0, 0, 0, 0, 0, 0, 0x40 },
			      .lease_ms = 600, .beat = 0x80000001u, .ask = true, .nechoes = 2,
			      .echo = { { 2, 0xabcdef01u, 17 }, { 33, 5, 0xffffffffu } } }, hb2;
	struct bulk_info b = { 7, 1000, 3 }, b2;
	codec_frame_start(&w, buf, sizeof(buf));
	assert_int_equal(codec_put_heartbeat(&w, &hb), 0);
	assert_int_equal(codec_put_bulk(&w, REC_BULK_END, &b), 0);
	assert_int_equal(codec_put_bulk(&w, REC_RESYNC_REQ, &b), 0);
	struct frame_hdr h = { .flags = WIRE_F_UNSEQ, .node = 9, .epoch = 1, .seq = 5 };
	size_t len = codec_frame_finish(&w, &h);
	struct cursor cur;
	struct rec r;
	assert_int_equal(codec_frame_open(buf, len, &h, &cur), 0);
	assert_int_equal(h.flags, WIRE_F_UNSEQ);
	assert_int_equal(codec_next(&cur, &r), 1);
	assert_int_equal(codec_get_heartbeat(&r, &hb2), 0);
	assert_int_equal(hb2.role, 1);
	assert_int_equal(hb2.flows, 12345);
	assert_int_equal(hb2.lastseq, 99);
	assert_true(hb2.digest == 0xfedcba9876543210ULL);
	assert_int_equal(hb2.term, 7);
	assert_true(hb2.holds);
	assert_int_equal(hb2.nbuckets, 64);
	assert_int_equal(hb2.bucket_seed, 0xc0ffee);
	assert_int_equal(hb2.proto_major, 3);
	assert_int_equal(hb2.proto_minor, 1);
	assert_int_equal(hb2.features, 0x1f);
	assert_string_equal(hb2.release, "1.2.3~rc1");
	assert_true(hb2.has_held);              /* buckets 0, 7 and 62 */
	assert_int_equal(hb2.held_len, 8);
	assert_int_equal(hb2.held[0], 0x81);
	assert_int_equal(hb2.held[7], 0x40);
	assert_int_equal(hb2.lease_ms, 600);
	assert_int_equal(hb2.beat, 0x80000001u);
	assert_true(hb2.ask);
	assert_int_equal(hb2.nechoes, 2);
	assert_int_equal(hb2.echo[0].node, 2);
	assert_int_equal(hb2.echo[0].epoch, 0xabcdef01u);
	assert_int_equal(hb2.echo[0].beat, 17);
	assert_int_equal(hb2.echo[1].node, 33);
	assert_int_equal(hb2.echo[1].beat, 0xffffffffu);
	{       /* the largest: 1024 buckets, 32 peers echoed, in a default frame */
		static uint8_t big[1472];
		struct wbuf wb;
		struct hb_info h3 = hb;
		h3.held_len = WIRE_HELD_MAX;
		h3.nechoes = WIRE_ECHO_MAX;
		codec_frame_start(&wb, big, sizeof(big));
		assert_int_equal(codec_put_heartbeat(&wb, &h3), 0);
		assert_true(wb.len < 1000);
	}
	assert_int_equal(codec_next(&cur, &r), 1);
	assert_int_equal(codec_get_bulk(&r, &b2), 0);
	assert_int_equal(b2.id, 7);
	assert_int_equal(b2.count, 1000);
	assert_int_equal(codec_next(&cur, &r), 1);
	assert_int_equal(codec_get_bulk(&r, &b2), 0);
	assert_int_equal(b2.target, 3);
	assert_int_equal(codec_next(&cur, &r), 0);
}


static struct ct v4_plain(uint16_t sport, bool nat)
{
	struct ct c = v4_tcp_nat();
	c.orig.sport = htons(sport);
	c.reply.dport = htons(sport);
	c.zone = 0;
	c.mark = 0;
	c.helper[0] = 0;
	memset(c.labels, 0, sizeof(c.labels));
	memset(c.seqadj, 0, sizeof(c.seqadj));
	c.has &= ~(uint32_t)(CT_HAS_SEQADJ_O | CT_HAS_SEQADJ_R);
	if (!nat)
		ct_mirror(&c, &c.reply);
	return c;
}

/* Claimed upserts: a REC_CLAIM only where the generation changes, packed
 * and attribute upserts alike after it; a record that does not fit leaves
 * the frame as it was, claim included. */
static void test_claims(void **state)
{
	uint8_t buf[1472];
	struct wbuf w;
	struct ct a = v4_plain(1000, false), b = v4_plain(1001, true), z = v4_plain(1002, false);
	z.zone = 3;
	z.has |= CT_HAS_ZONE;

	codec_frame_start(&w, buf, sizeof(buf));
	assert_int_equal(codec_put_claimed(&w, &a, 0), 0);      /* generation 0: no record */
	assert_int_equal(codec_put_claimed(&w, &b, 5), 0);
	assert_int_equal(codec_put_claimed(&w, &a, 5), 0);      /* same: no record */
	assert_int_equal(codec_put_claimed(&w, &z, 5), 0);
	assert_int_equal(codec_put_claimed(&w, &b, 2), 0);
	assert_int_equal(w.nrec, 5);
	struct frame_hdr h = { .node = 9, .epoch = 1, .seq = 1 };
	size_t len = codec_frame_finish(&w, &h);
	struct cursor cur;
	struct rec r;
	struct ct got;
	size_t off;
	uint32_t gen;
	assert_int_equal(codec_frame_open(buf, len, &h, &cur), 0);
	static const struct { uint8_t type; uint32_t gen; unsigned n; } want[] = {
		{ REC_UPSERTS4, 0, 1 }, { REC_CLAIM, 5, 0 }, { REC_UPSERTS4, 0, 2 },
		{ REC_FLOW_UPSERT, 0, 1 }, { REC_CLAIM, 2, 0 }, { REC_UPSERTS4, 0, 1 },
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		assert_int_equal(codec_next(&cur, &r), 1);
		assert_int_equal(r.type, want[i].type);
		assert_int_equal(codec_check_rec(&r), 0);
		if (r.type == REC_CLAIM) {
			assert_int_equal(codec_get_claim(&r, &gen), 0);
			assert_int_equal(gen, want[i].gen);
		} else if (r.type == REC_UPSERTS4) {
			unsigned n = 0;
			for (off = 0; codec_next_packed(&r, &off, &got) > 0; n++)
				;
			assert_int_equal(n, want[i].n);
		}
	}
	assert_int_equal(codec_next(&cur, &r), 0);

	/* full: the claim record is not left behind without its upsert */
	codec_frame_start(&w, buf, 200);
	while (codec_put_claimed(&w, &z, 1) == 0)
		;
	struct wbuf before = w;
	assert_int_equal(codec_put_claimed(&w, &z, 9), -ENOSPC);
	assert_int_equal(w.len, before.len);
	assert_int_equal(w.nrec, before.nrec);
	assert_int_equal(w.claim, before.claim);
	assert_int_equal(w.batch_type, before.batch_type);
	assert_int_equal(w.batch_at, before.batch_at);
	/* a claim of the wrong length is malformed */
	uint8_t bad[] = { CLA_GEN, 3, 0, 0, 1 };
	struct rec br = { .type = REC_CLAIM, .body = bad, .len = sizeof(bad) };
	assert_int_equal(codec_check_rec(&br), -EINVAL);
}

/* What the generic record of the same flow decodes to (zone 1 forces it). */
static struct ct generic_decode(const struct ct *c, enum wire_rec type)
{
	uint8_t buf[1500];
	struct ct z = *c, out;
	struct frame_hdr h;
	struct cursor cur;
	struct rec r;
	z.zone = 1;
	size_t len = one_record_frame(buf, sizeof(buf), type, &z);
	assert_int_equal(codec_frame_open(buf, len, &h, &cur), 0);
	assert_int_equal(codec_next(&cur, &r), 1);
	assert_int_equal(r.type, type);
	assert_int_equal(codec_get_flow(&r, &out), 0);
	out.zone = 0;
	if (type != REC_FLOW_UPSERT)
		out.has &= ~(uint32_t)CT_HAS_ZONE;      /* FA_ZONE's own bit */
	return out;
}

/* Plain IPv4 TCP/UDP flows go packed: 27 bytes per TCP upsert without NAT,
 * 39 with, 13 per delete, one record header per run; each entry decodes to
 * exactly what the generic record would; anything else stays generic. */
static void test_packed_ipv4(void **state)
{
	uint8_t buf[1472];
	struct wbuf w;
	struct ct cases[5];
	cases[0] = v4_plain(1000, false);
	cases[1] = v4_plain(1001, true);
	cases[2] = v4_plain(1002, false);
	cases[2].l4 = IPPROTO_UDP;
	cases[2].has &= ~(uint32_t)CT_HAS_TCP;
	memset(&cases[2].tcp, 0, sizeof(cases[2].tcp));
	ct_mirror(&cases[2], &cases[2].reply);
	cases[2].mark = 77;
	cases[3] = v4_plain(1003, false);
	cases[3].has = CT_HAS_TCP;      /* a partial state: only what it has */
	cases[4] = v4_plain(1004, true);
	cases[4].status = 0;

	for (int del = 0; del < 2; del++) {
		enum wire_rec type = del ? REC_FLOW_DELETE : REC_FLOW_UPSERT;
		codec_frame_start(&w, buf, sizeof(buf));
		for (int i = 0; i < 5; i++)
			assert_int_equal(codec_put_flow(&w, type, &cases[i]), 0);
		assert_int_equal(w.nrec, 5);
		struct frame_hdr h = { .node = 1, .epoch = 1, .seq = 1 };
		size_t len = codec_frame_finish(&w, &h);
		if (del)
			assert_int_equal(len, WIRE_HDR_LEN + 4 + 5 * 13);
		else            /* 27, 39, 1+1+12+4+4+4 (UDP, mark), 1+1+12+5, 39 */
			assert_int_equal(len, WIRE_HDR_LEN + 4 + 27 + 39 + 26 + 19 + 39);
		struct cursor cur;
		struct rec r;
		assert_int_equal(codec_frame_open(buf, len, &h, &cur), 0);
		assert_int_equal(codec_next(&cur, &r), 1);
		assert_int_equal(r.type, del ? REC_DELETES4 : REC_UPSERTS4);
		assert_true(r.flags & REC_F_MANDATORY);
		size_t off = 0;
		struct ct out;
		for (int i = 0; i < 5; i++) {
			assert_int_equal(codec_next_packed(&r, &off, &out), 1);
			struct ct want = generic_decode(&cases[i], type);
			assert_ct_equal(&want, &out);
			assert_int_equal(out.has, want.has);
		}
		assert_int_equal(codec_next_packed(&r, &off, &out), 0);
		assert_int_equal(codec_next(&cur, &r), 0);
	}

	/* a generic record in between starts a new packed record after it */
	struct ct v6 = v6_udp(), zoned = v4_plain(2000, false);
	zoned.zone = 3;
	codec_frame_start(&w, buf, sizeof(buf));
	assert_int_equal(codec_put_flow(&w, REC_FLOW_UPSERT, &cases[0]), 0);
	assert_int_equal(codec_put_flow(&w, REC_FLOW_UPSERT, &v6), 0);
	assert_int_equal(codec_put_flow(&w, REC_FLOW_UPSERT, &zoned), 0);
	assert_int_equal(codec_put_flow(&w, REC_FLOW_UPSERT, &cases[1]), 0);
	assert_int_equal(codec_put_flow(&w, REC_FLOW_DELETE, &cases[1]), 0);
	struct frame_hdr h = { .node = 1, .epoch = 1, .seq = 1 };
	size_t len = codec_frame_finish(&w, &h);
	struct cursor cur;
	struct rec r;
	const uint8_t want[] = { REC_UPSERTS4, REC_FLOW_UPSERT, REC_FLOW_UPSERT, REC_UPSERTS4,
				 REC_DELETES4 };
	assert_int_equal(codec_frame_open(buf, len, &h, &cur), 0);
	for (size_t i = 0; i < sizeof(want); i++) {
		assert_int_equal(codec_next(&cur, &r), 1);
		assert_int_equal(r.type, want[i]);
	}
	assert_int_equal(codec_next(&cur, &r), 0);

	/* a full frame: ENOSPC leaves it as it was */
	codec_frame_start(&w, buf, sizeof(buf));
	int n = 0;
	while (codec_put_flow(&w, REC_FLOW_UPSERT, &cases[0]) == 0)
		n++;
	assert_int_equal(n, (sizeof(buf) - WIRE_HDR_LEN - 4) / 27);
	size_t before = w.len;
	assert_int_equal(codec_put_flow(&w, REC_FLOW_UPSERT, &cases[0]), -ENOSPC);
	assert_int_equal(w.len, before);
}

/* Malformed packed records are refused whole, never read past their end. */
static void test_packed_malformed(void **state)
{
	uint8_t body[64];
	struct rec r = { .type = REC_UPSERTS4, .flags = REC_F_MANDATORY, .body = body };
	struct ct c = v4_plain(3000, true), out;
	size_t off;

	/* a valid entry first: bits, proto, tuple, status, timeout, tcp, reply */
	uint8_t frame[256];
	size_t len = one_record_frame(frame, sizeof(frame), REC_FLOW_UPSERT, &c);
	size_t elen = len - WIRE_HDR_LEN - 4;
	assert_int_equal(elen, 39);
	memcpy(body, frame + WIRE_HDR_LEN + 4, elen);
	r.len = elen;
	off = 0;
	assert_int_equal(codec_next_packed(&r, &off, &out), 1);
	/* every truncation */
	for (size_t n = 1; n < elen; n++) {
		r.len = n;
		off = 0;
		assert_int_equal(codec_next_packed(&r, &off, &out), -EINVAL);
	}
	r.len = elen;
	body[0] |= 0x80;                /* an unknown present-bit */
	off = 0;
	assert_int_equal(codec_next_packed(&r, &off, &out), -EINVAL);
	body[0] &= 0x7f;
	body[1] = IPPROTO_ICMP;         /* not a packed protocol */
	off = 0;
	assert_int_equal(codec_next_packed(&r, &off, &out), -EINVAL);
	body[1] = IPPROTO_TCP;
	memset(body + 2, 0, 12);        /* no tuple */
	off = 0;
	assert_int_equal(codec_next_packed(&r, &off, &out), -EINVAL);
	/* a delete record: 13 bytes per entry, a 14th byte is a truncation */
	r.type = REC_DELETES4;
	body[0] = IPPROTO_UDP;
	memset(body + 1, 1, 12);
	r.len = 14;
	off = 0;
	assert_int_equal(codec_next_packed(&r, &off, &out), 1);
	assert_int_equal(codec_next_packed(&r, &off, &out), -EINVAL);
	/* not a packed record at all */
	r.type = REC_FLOW_UPSERT;
	off = 0;
	assert_int_equal(codec_next_packed(&r, &off, &out), -EINVAL);
}

static struct exp ftp_exp(void)
{
	struct exp e = { .l3 = AF_INET, .l4 = IPPROTO_TCP, .master_l4 = IPPROTO_TCP };
	inet_pton(AF_INET, "198.51.100.10", &e.master.src);
	inet_pton(AF_INET, "203.0.113.10", &e.master.dst);
	e.master.sport = htons(40000);
	e.master.dport = htons(21);
	inet_pton(AF_INET, "198.51.100.10", &e.tuple.src);
	inet_pton(AF_INET, "203.0.113.10", &e.tuple.dst);
	e.tuple.dport = htons(50123);
	inet_pton(AF_INET, "255.255.255.255", &e.mask.src);
	inet_pton(AF_INET, "255.255.255.255", &e.mask.dst);
	e.mask.dport = 0xffff;
	e.timeout = 297;
	e.flags = 0;
	e.klass = 0;
	e.zone = 2;
	strcpy(e.helper, "ftp");
	strcpy(e.fn, "nat-follow-master");
	inet_pton(AF_INET, "203.0.113.1", &e.nat.src);
	e.nat.sport = htons(40000);
	e.nat_dir = 1;
	e.nat_l4 = IPPROTO_TCP;
	e.has = EXP_HAS_MASK | EXP_HAS_NAT | EXP_HAS_HELPER | EXP_HAS_FN;
	return e;
}

static void test_expectation_roundtrip(void **state)
{
	uint8_t buf[1500];
	struct wbuf w;
	struct exp e = ftp_exp(), out;
	struct frame_hdr h = { .node = 1, .epoch = 1, .seq = 1 };
	struct cursor cur;
	struct rec r;

	codec_frame_start(&w, buf, sizeof(buf));
	assert_int_equal(codec_put_exp(&w, REC_EXP_UPSERT, &e), 0);
	assert_int_equal(codec_put_exp(&w, REC_EXP_DELETE, &e), 0);
	size_t len = codec_frame_finish(&w, &h);
	assert_int_equal(codec_frame_open(buf, len, &h, &cur), 0);
	assert_int_equal(codec_next(&cur, &r), 1);
	assert_int_equal(r.type, REC_EXP_UPSERT);
	assert_int_equal(codec_get_exp(&r, &out), 0);
	assert_true(exp_key_equal(&e, &out));
	assert_memory_equal(&out.master, &e.master, sizeof(e.master));
	assert_memory_equal(&out.mask, &e.mask, sizeof(e.mask));
	assert_memory_equal(&out.nat, &e.nat, sizeof(e.nat));
	assert_int_equal(out.nat_dir, 1);
	assert_int_equal(out.timeout, 297);
	assert_int_equal(out.zone, 2);
	assert_string_equal(out.helper, "ftp");
	assert_string_equal(out.fn, "nat-follow-master");
	assert_int_equal(codec_next(&cur, &r), 1);
	assert_int_equal(r.type, REC_EXP_DELETE);
	assert_int_equal(codec_get_exp(&r, &out), 0);
	assert_true(exp_key_equal(&e, &out));
	/* truncations never decode */
	for (size_t n = WIRE_HDR_LEN; n < len; n++) {
		uint8_t *t = malloc(n);
		memcpy(t, buf, n);
		assert_int_equal(codec_frame_open(t, n, &h, &cur), -EINVAL);
		free(t);
	}
}

/* H.323 and PPTP expectations at the record level: helper names as the
 * kernel gives them, GRE keys carried in the port fields, an IPv6 one. */
static void test_expectation_vectors(void **state)
{
	struct exp cases[3];
	cases[0] = ftp_exp();
	strcpy(cases[0].helper, "Q.931");
	cases[0].tuple.dport = htons(1720);
	cases[1] = ftp_exp();
	cases[1].l4 = IPPROTO_GRE;
	strcpy(cases[1].helper, "pptp");
	cases[1].tuple.sport = htons(0x1234);   /* GRE call ids */
	cases[1].tuple.dport = htons(0x5678);
	cases[1].fn[0] = 0;
	cases[1].has &= ~(uint32_t)EXP_HAS_FN;
	cases[2] = ftp_exp();
	cases[2].l3 = AF_INET6;
	cases[2].l4 = IPPROTO_UDP;
	cases[2].master_l4 = IPPROTO_UDP;
	strcpy(cases[2].helper, "RAS");
	inet_pton(AF_INET6, "2001:db8:1::10", &cases[2].master.src);
	inet_pton(AF_INET6, "2001:db8:2::10", &cases[2].master.dst);
	cases[2].tuple.src = cases[2].master.src;
	cases[2].tuple.dst = cases[2].master.dst;
	memset(&cases[2].mask.src, 0xff, 16);
	memset(&cases[2].mask.dst, 0xff, 16);
	inet_pton(AF_INET6, "2001:db8:2::1", &cases[2].nat.src);
	for (size_t i = 0; i < 3; i++) {
		uint8_t buf[1500];
		struct wbuf w;
		struct frame_hdr h = { .node = 1, .epoch = 1, .seq = 1 };
		struct cursor cur;
		struct rec r;
		struct exp out;
		codec_frame_start(&w, buf, sizeof(buf));
		assert_int_equal(codec_put_exp(&w, REC_EXP_UPSERT, &cases[i]), 0);
		size_t len = codec_frame_finish(&w, &h);
		assert_int_equal(codec_frame_open(buf, len, &h, &cur), 0);
		assert_int_equal(codec_next(&cur, &r), 1);
		assert_int_equal(codec_get_exp(&r, &out), 0);
		assert_true(exp_key_equal(&cases[i], &out));
		assert_int_equal(out.l4, cases[i].l4);
		assert_memory_equal(&out.master, &cases[i].master, sizeof(out.master));
		assert_memory_equal(&out.mask, &cases[i].mask, sizeof(out.mask));
		assert_memory_equal(&out.nat, &cases[i].nat, sizeof(out.nat));
		assert_string_equal(out.helper, cases[i].helper);
		assert_string_equal(out.fn, cases[i].fn);
	}
}

static void test_header_rules(void **state)
{
	uint8_t buf[64];
	struct wbuf w;
	struct frame_hdr h = { .node = 1, .epoch = 2, .seq = 3, .pn = 0x0123456789abcdefull };
	struct frame_hdr back;
	struct cursor cur;

	codec_frame_start(&w, buf, sizeof(buf));
	size_t len = codec_frame_finish(&w, &h);
	assert_int_equal(len, WIRE_HDR_LEN);
	assert_int_equal(codec_frame_open(buf, len, &back, &cur), 0);
	assert_int_equal(back.node, 1);
	assert_int_equal(back.epoch, 2);
	assert_int_equal(back.seq, 3);
	assert_int_equal(back.pn, 0x0123456789abcdefull);
	codec_frame_set_pn(buf, 42);            /* a retransmission's new number */
	assert_int_equal(codec_frame_open(buf, len, &back, &cur), 0);
	assert_int_equal(back.pn, 42);
	buf[4] = 1;                             /* version 1: not ours any more */
	assert_int_equal(codec_frame_open(buf, len, &h, &cur), -EINVAL);
	buf[4] = WIRE_VERSION;
	buf[8] = buf[9] = buf[10] = buf[11] = 0;        /* node 0 */
	assert_int_equal(codec_frame_open(buf, len, &h, &cur), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrips),
		cmocka_unit_test(test_mirror_omitted),
		cmocka_unit_test(test_delete_is_key_only),
		cmocka_unit_test(test_refresh_is_key_and_timeout),
		cmocka_unit_test(test_key_hash_pinned),
		cmocka_unit_test(test_truncation_and_corruption),
		cmocka_unit_test(test_unknown_attributes),
		cmocka_unit_test(test_frame_fill_and_control_records),
		cmocka_unit_test(test_claims),
		cmocka_unit_test(test_header_rules),
		cmocka_unit_test(test_packed_ipv4),
		cmocka_unit_test(test_packed_malformed),
		cmocka_unit_test(test_expectation_roundtrip),
		cmocka_unit_test(test_expectation_vectors),
	};
	return cmocka_run_group_tests_name("codec", tests, NULL, NULL);
}
