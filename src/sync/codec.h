/* codec.h — encode and decode frames and records (format in wire.h). */
#ifndef CTSYNC_SYNC_CODEC_H
#define CTSYNC_SYNC_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernel/ct.h"
#include "kernel/exp.h"
#include "sync/wire.h"

struct frame_hdr {
	uint8_t flags, key_id;
	uint16_t len;
	uint32_t node, epoch, seq;
	uint64_t pn;                    /* packet number */
};

/* A frame being built in a caller-owned buffer. */
struct wbuf {
	uint8_t *p;
	size_t len, cap;
	unsigned nrec;                  /* records, counting each packed entry */
	size_t batch_at;                /* the last packed record, if batch_type */
	uint8_t batch_type;
	uint32_t claim;                 /* generation the next upsert claims at */
};

struct rec {
	uint8_t type, flags;
	const uint8_t *body;
	size_t len;
};

struct cursor {
	const uint8_t *p;
	size_t left;
};

struct hb_info {
	uint8_t role;
	uint32_t flows, lastseq;
	uint64_t digest;
	uint32_t term;
	/* active-active (absent: 0) */
	bool holds;
	uint32_t nbuckets, bucket_seed;
	/* versions (wire.h "Versions"; absent: 0, "") */
	uint16_t proto_major, proto_minor;
	uint32_t features;
	char release[WIRE_RELEASE_MAX + 1];
	/* 3.1 leases (absent: has_held false, lease_ms 0) */
	bool has_held;
	uint8_t held[WIRE_HELD_MAX];    /* bit per bucket; absent bytes 0 */
	uint16_t held_len;              /* bytes sent: (nbuckets + 7) / 8 */
	uint32_t lease_ms;
	uint32_t beat;                  /* HA_BEAT (absent: 0) */
	bool ask;
	unsigned nechoes;
	struct hb_echo { uint32_t node, epoch, beat; } echo[WIRE_ECHO_MAX];
};

struct bulk_info {
	uint32_t id, count, target;
};

struct nack_info {
	uint32_t target, epoch;
	unsigned nranges;
	struct { uint32_t first, last; } range[NACK_MAX_RANGES];
};

struct challenge_info {
	uint32_t target, epoch;         /* epoch: CHALLENGE only */
	uint8_t cookie[CHALLENGE_COOKIE_LEN];
	bool has_cookie;
};

struct ack_info {
	bool has_seq, has_pn;
	uint32_t seq;
	uint64_t pn;
};

void codec_frame_start(struct wbuf *w, uint8_t *buf, size_t cap);
/* Rewrite the packet number of a finished frame (a retransmission). */
void codec_frame_set_pn(uint8_t *frame, uint64_t pn);
/* Fill the header in front of the records; returns the frame length. */
size_t codec_frame_finish(struct wbuf *w, const struct frame_hdr *h);
/* Decode and check the header; on success the cursor covers the records. */
int codec_frame_open(const uint8_t *buf, size_t len, struct frame_hdr *h,
		     struct cursor *records);

/* Append a record; -ENOSPC (buffer untouched) when it does not fit. */
int codec_put_flow(struct wbuf *w, enum wire_rec type, const struct ct *ct);
/* An upsert claiming the flow at generation `claim` (wire.h, "Claims"):
 * a REC_CLAIM goes first when the frame's generation differs.  -ENOSPC
 * leaves the buffer untouched. */
int codec_put_claimed(struct wbuf *w, const struct ct *ct, uint32_t claim);
int codec_put_heartbeat(struct wbuf *w, const struct hb_info *hb);
int codec_put_bulk(struct wbuf *w, enum wire_rec type, const struct bulk_info *b);
int codec_put_nack(struct wbuf *w, const struct nack_info *n);
/* A NACK or a SKIP (same attributes, wire.h). */
int codec_put_ranges(struct wbuf *w, enum wire_rec type, const struct nack_info *n);
int codec_put_exp(struct wbuf *w, enum wire_rec type, const struct exp *e);
int codec_put_challenge(struct wbuf *w, enum wire_rec type, const struct challenge_info *c);

/* Next record: 1 and *r filled, 0 at the end, -EINVAL if malformed. */
int codec_next(struct cursor *c, struct rec *r);
int codec_get_flow(const struct rec *r, struct ct *ct);
/* Entries of a REC_UPSERTS4/REC_DELETES4 record, from *off (start at 0):
 * 1 and *ct filled, 0 at the end, -EINVAL if malformed. */
int codec_next_packed(const struct rec *r, size_t *off, struct ct *ct);
int codec_get_heartbeat(const struct rec *r, struct hb_info *hb);
int codec_get_claim(const struct rec *r, uint32_t *gen);
/* REC_FOR (wire.h): not counted in w->nrec, so a frame of nothing else is
 * still empty. */
int codec_put_for(struct wbuf *w, uint32_t node);
int codec_get_for(const struct rec *r, uint32_t *node);
int codec_get_bulk(const struct rec *r, struct bulk_info *b);
/* REC_ACKREQ (counted in w->nrec: a frame of it alone is sent) and REC_ACK
 * (wire.h, "Defer"); a REC_HINT is codec_put_flow(w, REC_HINT, ct). */
int codec_put_ackreq(struct wbuf *w);
int codec_put_ack(struct wbuf *w, const struct ack_info *a);
int codec_get_ack(const struct rec *r, struct ack_info *a);
int codec_get_nack(const struct rec *r, struct nack_info *n);
int codec_get_exp(const struct rec *r, struct exp *e);
int codec_get_challenge(const struct rec *r, struct challenge_info *c);
/* Decode a record of a known type in full, into scratch space: 0 if every
 * byte of it is valid (an unknown type is 0: skipping it is the caller's
 * choice), -EINVAL if not.  A receiver checks every record of a frame so
 * before it applies any. */
int codec_check_rec(const struct rec *r);

#endif
