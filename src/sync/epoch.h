/*
 * epoch.h — what a node remembers of one peer's lives.
 *
 * Every start of a node is a new epoch (a random 32-bit number in every
 * frame header).  A receiver takes frames of one epoch of a peer at a time:
 *
 *  - A new epoch is trusted only once the peer has answered a challenge
 *    about it: we send CHALLENGE{target, epoch, cookie} and take the epoch
 *    when a frame of it carries RESPONSE{cookie}.  The cookie is
 *    HMAC-SHA256(secret, self | node | epoch | time bucket) under a secret
 *    of ours drawn at start, so we keep no state per challenge and a
 *    recorded answer goes stale after one to two COOKIE_BUCKET_MS.  A
 *    challenge of the same epoch is repeated at most every
 *    CHALLENGE_AGAIN_MS; we answer one peer at most every 10 ms.
 *  - The epochs it left (replaced by a newer one) are remembered, the last
 *    OLD_EPOCHS of them: a frame of one of those is a replay.
 *  - Within the current epoch every frame's packet number is taken once: a
 *    sliding window of REPLAY_WINDOW numbers ending at the highest seen;
 *    a number below the window is refused (too old to tell).
 *
 * The object has no socket and sends nothing: the receiver (repl_rx.c)
 * decides, from what these functions say, what to send.
 */
#ifndef CTSYNC_SYNC_EPOCH_H
#define CTSYNC_SYNC_EPOCH_H

#include <stdbool.h>
#include <stdint.h>

#include "sync/wire.h"

#define EPOCH_SECRET_LEN 32
#define REPLAY_WINDOW 4096u     /* packet numbers remembered per peer */
#define OLD_EPOCHS 8            /* replaced epochs remembered per peer */
#define CHALLENGE_SLOTS 4       /* epochs challenged recently, per peer */
#define CHALLENGE_AGAIN_MS 100u /* challenge the same epoch again after this */
#define COOKIE_BUCKET_MS 1000u  /* a cookie is good for 1-2 of these */
#define RESPOND_AGAIN_MS 10u    /* answer one peer's challenges at most this often */

struct epoch {
	/* replay: packet numbers seen in the current epoch */
	bool rp_init;
	uint64_t rp_top;
	uint64_t rp_bits[REPLAY_WINDOW / 64];
	uint32_t old[OLD_EPOCHS];       /* epochs of its that were replaced */
	unsigned nold;
	struct { uint32_t epoch; uint64_t at; } chal[CHALLENGE_SLOTS];
	uint64_t responded_at;
};

/* The peer left epoch `old` for a new one: frames of `old` are replays from
 * now on, and the packet-number window starts afresh. */
void epoch_retire(struct epoch *e, uint32_t old);
bool epoch_replaced(const struct epoch *e, uint32_t epoch);
void epoch_replay_reset(struct epoch *e);
/* Has packet number pn of the current epoch been taken before (or is it
 * older than the window)?  If not, it is taken now. */
bool epoch_replayed(struct epoch *e, uint64_t pn);
/* Is a challenge of `epoch` due now (none in the last CHALLENGE_AGAIN_MS)?
 * If so it is recorded as sent at `now`. */
bool epoch_challenge_due(struct epoch *e, uint32_t epoch, uint64_t now);
/* May we answer this peer now (RESPOND_AGAIN_MS)?  If so, recorded. */
bool epoch_may_respond(struct epoch *e, uint64_t now);
/* The cookie of our challenge of `node`'s `epoch` issued at `now`. */
void epoch_cookie(const uint8_t secret[EPOCH_SECRET_LEN], uint32_t self, uint32_t node,
		  uint32_t epoch, uint64_t now, uint8_t out[CHALLENGE_COOKIE_LEN]);
/* Is `cookie` ours for (node, epoch), issued in this time bucket or the one
 * before? */
bool epoch_cookie_ok(const uint8_t secret[EPOCH_SECRET_LEN], uint32_t self, uint32_t node,
		     uint32_t epoch, uint64_t now, const uint8_t cookie[CHALLENGE_COOKIE_LEN]);

#endif
