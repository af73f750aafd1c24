/* seeds.c — writes the seed corpora of the fuzz targets (fuzz/corpus/):
 * one valid frame of every record type (flags byte first: see
 * fuzz_frame.c), the control requests ctsyncctl sends, and configurations.
 * Run by `make fuzz-seeds`; its output is committed. */
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon/control_proto.h"
#include "kernel/ctnl_msg.h"
#include "sync/codec.h"

static void put(const char *dir, const char *name, uint8_t flags, const void *p, size_t n)
{
	char path[256];
	snprintf(path, sizeof(path), "fuzz/corpus/%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || (flags != 0xff && fputc(flags, f) == EOF) || fwrite(p, 1, n, f) != n) {
		perror(path);
		exit(1);
	}
	fclose(f);
}

static struct ct flow(int v6, int nat)
{
	struct ct c = { .l3 = v6 ? AF_INET6 : AF_INET, .l4 = 6 };
	if (v6) {
		c.orig.src.ip6[0] = 0x20; c.orig.src.ip6[1] = 0x01; c.orig.src.ip6[15] = 10;
		c.orig.dst.ip6[0] = 0x20; c.orig.dst.ip6[1] = 0x01; c.orig.dst.ip6[15] = 20;
	} else {
		c.orig.src.ip4 = 0x0a6433c6;
		c.orig.dst.ip4 = 0x0a7100cb;
	}
	c.orig.sport = 0x3412;
	c.orig.dport = 0x5000;
	c.reply.src = c.orig.dst;
	c.reply.dst = c.orig.src;
	if (nat)
		c.reply.dst.ip4 = 0x017100cb;
	c.reply.sport = c.orig.dport;
	c.reply.dport = c.orig.sport;
	c.status = 0x19e;
	c.timeout = 431999;
	c.mark = 7;
	c.tcp.state = 3;
	snprintf(c.helper, sizeof(c.helper), "ftp");
	c.has = CT_HAS_REPLY | CT_HAS_STATUS | CT_HAS_TIMEOUT | CT_HAS_TCP | CT_HAS_MARK |
		CT_HAS_HELPER;
	return c;
}

int main(void)
{
	uint8_t buf[1500];
	struct wbuf w;
	struct frame_hdr h = { .node = 2, .epoch = 1, .seq = 1, .pn = 1 };
	size_t len;

	mkdir("fuzz/corpus", 0755);
	mkdir("fuzz/corpus/fuzz_frame", 0755);
	mkdir("fuzz/corpus/fuzz_control", 0755);

	/* frames: flows (v4, v6, NAT), deletes, refresh, expectation,
	 * heartbeat, bulk, NACK, challenge, response */
	struct ct a = flow(0, 1), b = flow(1, 0);
	codec_frame_start(&w, buf, sizeof(buf));
	codec_put_flow(&w, REC_FLOW_UPSERT, &a);
	codec_put_flow(&w, REC_FLOW_UPSERT, &b);
	len = codec_frame_finish(&w, &h);
	put("fuzz_frame", "upserts", 1, buf, len);
	put("fuzz_control", "frame-upserts", 0x40, buf, len);
	h.seq = 2; h.pn = 2;
	codec_frame_start(&w, buf, sizeof(buf));
	codec_put_flow(&w, REC_FLOW_DELETE, &a);
	codec_put_flow(&w, REC_FLOW_REFRESH, &b);
	len = codec_frame_finish(&w, &h);
	put("fuzz_frame", "delete-refresh", 1, buf, len);
	/* packed IPv4 records (wire.h): plain flows, with and without NAT */
	struct ct pa = a, pb = flow(2, 0);
	pa.helper[0] = pb.helper[0] = 0;
	h.seq = 3; h.pn = 3;
	codec_frame_start(&w, buf, sizeof(buf));
	codec_put_flow(&w, REC_FLOW_UPSERT, &pa);
	codec_put_flow(&w, REC_FLOW_UPSERT, &pb);
	codec_put_flow(&w, REC_FLOW_DELETE, &pa);
	codec_put_flow(&w, REC_FLOW_DELETE, &pb);
	len = codec_frame_finish(&w, &h);
	put("fuzz_frame", "packed", 1, buf, len);
	struct exp e = { .l3 = AF_INET, .l4 = 6, .master_l4 = 6, .timeout = 300, .klass = 0 };
	e.master = a.orig;
	e.tuple.src = a.reply.src;
	e.tuple.dst = a.reply.dst;
	e.tuple.dport = 0x3930;
	memset(&e.mask, 0xff, sizeof(e.mask));
	e.mask.sport = 0;
	snprintf(e.helper, sizeof(e.helper), "ftp");
	h.seq = 3; h.pn = 3;
	codec_frame_start(&w, buf, sizeof(buf));
	codec_put_exp(&w, REC_EXP_UPSERT, &e);
	codec_put_exp(&w, REC_EXP_DELETE, &e);
	len = codec_frame_finish(&w, &h);
	put("fuzz_frame", "expectations", 1, buf, len);
	put("fuzz_control", "frame-expectations", 0x40, buf, len);
	struct bulk_info bi = { .id = 1, .count = 2, .target = 1 };
	h.seq = 4; h.pn = 4;
	codec_frame_start(&w, buf, sizeof(buf));
	codec_put_bulk(&w, REC_BULK_BEGIN, &bi);
	codec_put_flow(&w, REC_FLOW_UPSERT, &a);
	codec_put_bulk(&w, REC_BULK_END, &bi);
	codec_put_bulk(&w, REC_RESYNC_REQ, &bi);
	len = codec_frame_finish(&w, &h);
	put("fuzz_frame", "bulk", 1, buf, len);
	/* claims (packed and attribute upserts after a REC_CLAIM), and a frame
	 * of a bulk for another node (REC_FOR) */
	h.seq = 5; h.pn = 5;
	codec_frame_start(&w, buf, sizeof(buf));
	codec_put_claimed(&w, &pa, 3);
	codec_put_claimed(&w, &b, 3);
	codec_put_claimed(&w, &pb, 7);
	len = codec_frame_finish(&w, &h);
	put("fuzz_frame", "claims", 1, buf, len);
	codec_frame_start(&w, buf, sizeof(buf));
	codec_put_for(&w, 3);
	codec_put_bulk(&w, REC_BULK_BEGIN, &bi);
	codec_put_flow(&w, REC_FLOW_UPSERT, &a);
	len = codec_frame_finish(&w, &h);
	put("fuzz_frame", "bulk-for-another", 1, buf, len);
	/* out of order: seq 9 (a gap to NACK) */
	h.seq = 9; h.pn = 5;
	codec_frame_start(&w, buf, sizeof(buf));
	codec_put_flow(&w, REC_FLOW_UPSERT, &b);
	len = codec_frame_finish(&w, &h);
	put("fuzz_frame", "gap", 1, buf, len);
	/* unsequenced: heartbeat, NACK, challenge, response */
	struct frame_hdr u = { .flags = WIRE_F_UNSEQ, .node = 2, .epoch = 1, .seq = 4, .pn = 6 };
	struct hb_info hb = { .role = 1, .flows = 2, .lastseq = 9, .digest = 12345 };
	struct nack_info n = { .target = 1, .epoch = 1, .nranges = 2,
			       .range = { { 1, 3 }, { 5, 5 } } };
	struct challenge_info ch = { .target = 1, .epoch = 1 };
	memset(ch.cookie, 0xab, sizeof(ch.cookie));
	codec_frame_start(&w, buf, sizeof(buf));
	hb.term = 4;
	codec_put_heartbeat(&w, &hb);
	codec_put_nack(&w, &n);
	n.target = 3;
	codec_put_ranges(&w, REC_SKIP, &n);
	n.target = 1;
	codec_put_challenge(&w, REC_CHALLENGE, &ch);
	codec_put_challenge(&w, REC_RESPONSE, &ch);
	len = codec_frame_finish(&w, &u);
	put("fuzz_frame", "control", 1, buf, len);
	put("fuzz_frame", "control-sealed", 3, buf, len);
	put("fuzz_frame", "raw-header", 0, buf, len);
	/* defer: a hint asking to be acknowledged, and acknowledgements */
	struct ack_info ak = { .has_seq = true, .seq = 3, .has_pn = true, .pn = 5 };
	struct ct hint = flow(0, 0);
	codec_frame_start(&w, buf, sizeof(buf));
	codec_put_flow(&w, REC_HINT, &hint);
	codec_put_ackreq(&w);
	codec_put_ack(&w, &ak);
	len = codec_frame_finish(&w, &u);
	put("fuzz_frame", "defer", 1, buf, len);

	/* ctnetlink messages as ctnl_build makes them (the kernel's events
	 * carry more attributes; the fuzzer finds those): plain, NAT, IPv6,
	 * with sequence adjustment and labels, an expectation */
	static uint8_t nlb[CTNL_MSG_MAX];
	struct ct m[4] = { flow(0, 0), flow(0, 1), flow(1, 0), flow(0, 1) };
	m[3].seqadj[0].pos = 1000;
	m[3].seqadj[0].before = 1;
	m[3].seqadj[0].after = 4;
	m[3].labels[0] = 0x80;
	m[3].zone = 7;
	m[3].has |= CT_HAS_SEQADJ_O | CT_HAS_LABELS | CT_HAS_ZONE;
	static const char *const mname[4] = { "ct-plain", "ct-nat", "ct-v6", "ct-seqadj" };
	for (int i = 0; i < 4; i++) {
		memset(nlb, 0, sizeof(nlb));
		size_t n = ctnl_build(nlb, i == 3 ? CTNL_OP_UPDATE : CTNL_OP_CREATE, &m[i], i == 1, 1);
		put("fuzz_ctnl", mname[i], (uint8_t)(i == 3 ? 2 : 0), nlb, n);
	}
	struct exp x = { .l3 = AF_INET, .l4 = 6, .master_l4 = 6, .timeout = 300 };
	x.master = m[1].orig;
	x.tuple.src = m[1].reply.src;
	x.tuple.dst = m[1].orig.src;
	x.tuple.dport = 0x1500;
	x.mask.src.ip4 = 0xffffffff;
	x.mask.dst.ip4 = 0xffffffff;
	x.mask.dport = 0xffff;
	snprintf(x.helper, sizeof(x.helper), "ftp");
	memset(nlb, 0, sizeof(nlb));
	put("fuzz_ctnl", "exp-ftp", 1, nlb, ctnl_exp_build(nlb, CTNL_OP_CREATE, &x, 1));

	/* control requests, as ctsyncctl sends them, behind fuzz_control's
	 * flags byte: 0 the full socket, 0x80 the read-only one */
	static const struct { const char *name; uint16_t cmd; uint32_t flags; const char *arg; } r[] = {
		{ "status", CTL_STATUS, 0, "" }, { "status-json", CTL_STATUS, 1, "" },
		{ "stats", CTL_STATS, 1, "" }, { "dump", CTL_DUMP, 0, "" },
		{ "dump-local", CTL_DUMP, 0, "local" }, { "dump-peer", CTL_DUMP, 1, "peer 2" },
		{ "promote", CTL_PROMOTE, 0, "" }, { "demote", CTL_DEMOTE, 0, "" },
		{ "commit", CTL_COMMIT, 0, "" }, { "resync", CTL_RESYNC, 0, "" },
		{ "in-sync", CTL_IN_SYNC, 0, "" }, { "reload", CTL_RELOAD, 1, "" },
	};
	for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
		struct ctl_hdr ch2 = { CTL_MAGIC, CTL_VERSION, r[i].cmd, r[i].flags,
				       (uint32_t)strlen(r[i].arg) };
		memcpy(buf, &ch2, sizeof(ch2));
		memcpy(buf + sizeof(ch2), r[i].arg, strlen(r[i].arg));
		put("fuzz_control", r[i].name, 0, buf, sizeof(ch2) + strlen(r[i].arg));
		char ro[64];
		snprintf(ro, sizeof(ro), "ro-%s", r[i].name);
		put("fuzz_control", ro, 0x80, buf, sizeof(ch2) + strlen(r[i].arg));
	}
	return 0;
}
