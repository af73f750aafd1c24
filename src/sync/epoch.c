/* epoch.c — a peer's epochs: challenge cookies, replaced epochs, the replay
 * window (epoch.h). */
#include "sync/epoch.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

static void be32put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

void epoch_retire(struct epoch *e, uint32_t old)
{
	e->old[e->nold % OLD_EPOCHS] = old;
	e->nold++;
	epoch_replay_reset(e);
}

bool epoch_replaced(const struct epoch *e, uint32_t epoch)
{
	for (unsigned i = 0; i < e->nold && i < OLD_EPOCHS; i++)
		if (e->old[i] == epoch)
			return true;
	return false;
}

void epoch_replay_reset(struct epoch *e)
{
	e->rp_init = false;
	e->rp_top = 0;
	memset(e->rp_bits, 0, sizeof(e->rp_bits));
}

bool epoch_replayed(struct epoch *e, uint64_t pn)
{
	const unsigned words = REPLAY_WINDOW / 64;

	if (!e->rp_init || pn > e->rp_top) {
		uint64_t top = e->rp_init ? e->rp_top : pn;
		uint64_t shift = pn - top;       /* whole words to clear, at most all */
		uint64_t from = top / 64 + 1, to = pn / 64;
		if (!e->rp_init || shift >= REPLAY_WINDOW)
			memset(e->rp_bits, 0, sizeof(e->rp_bits));
		else
			for (uint64_t w = from; w <= to; w++)
				e->rp_bits[w % words] = 0;
		e->rp_init = true;
		e->rp_top = pn;
	} else if (e->rp_top - pn >= REPLAY_WINDOW - 64) {
		return true;                     /* too old to tell: refused */
	}
	uint64_t *word = &e->rp_bits[(pn / 64) % words], bit = 1ull << (pn % 64);
	if (*word & bit)
		return true;
	*word |= bit;
	return false;
}

bool epoch_challenge_due(struct epoch *e, uint32_t epoch, uint64_t now)
{
	unsigned slot = 0;

	for (unsigned i = 0; i < CHALLENGE_SLOTS; i++) {
		if (e->chal[i].epoch == epoch && e->chal[i].at &&
		    now - e->chal[i].at < CHALLENGE_AGAIN_MS)
			return false;
		if (e->chal[i].at < e->chal[slot].at)
			slot = i;
	}
	e->chal[slot].epoch = epoch;
	e->chal[slot].at = now ? now : 1;
	return true;
}

bool epoch_may_respond(struct epoch *e, uint64_t now)
{
	if (e->responded_at && now - e->responded_at < RESPOND_AGAIN_MS)
		return false;
	e->responded_at = now ? now : 1;
	return true;
}

static void cookie_at(const uint8_t secret[EPOCH_SECRET_LEN], uint32_t self, uint32_t node,
		      uint32_t epoch, uint64_t bucket, uint8_t out[CHALLENGE_COOKIE_LEN])
{
	uint8_t msg[4 + 4 + 4 + 8], md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;

	be32put(msg, self);
	be32put(msg + 4, node);
	be32put(msg + 8, epoch);
	be32put(msg + 12, (uint32_t)(bucket >> 32));
	be32put(msg + 16, (uint32_t)bucket);
	HMAC(EVP_sha256(), secret, EPOCH_SECRET_LEN, msg, sizeof(msg), md, &mdlen);
	memcpy(out, md, CHALLENGE_COOKIE_LEN);
}

void epoch_cookie(const uint8_t secret[EPOCH_SECRET_LEN], uint32_t self, uint32_t node,
		  uint32_t epoch, uint64_t now, uint8_t out[CHALLENGE_COOKIE_LEN])
{
	cookie_at(secret, self, node, epoch, now / COOKIE_BUCKET_MS, out);
}

bool epoch_cookie_ok(const uint8_t secret[EPOCH_SECRET_LEN], uint32_t self, uint32_t node,
		     uint32_t epoch, uint64_t now, const uint8_t cookie[CHALLENGE_COOKIE_LEN])
{
	uint64_t bucket = now / COOKIE_BUCKET_MS;
	uint8_t want[CHALLENGE_COOKIE_LEN];

	for (unsigned back = 0; back < 2 && back <= bucket; back++) {
		cookie_at(secret, self, node, epoch, bucket - back, want);
		if (CRYPTO_memcmp(want, cookie, sizeof(want)) == 0)
			return true;
	}
	return false;
}
