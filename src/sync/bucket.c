/* bucket.c — flow hash buckets as nftables computes them (bucket.h). */
#include "sync/bucket.h"

#include <netinet/in.h>
#include <string.h>

#define JHASH_INITVAL 0xdeadbeefu

static uint32_t rol(uint32_t x, unsigned k)
{
	return x << k | x >> (32 - k);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#define MIX(a, b, c) do { \
	a -= c; a ^= rol(c, 4);  c += b; \
	b -= a; b ^= rol(a, 6);  a += c; \
	c -= b; c ^= rol(b, 8);  b += a; \
	a -= c; a ^= rol(c, 16); c += b; \
	b -= a; b ^= rol(a, 19); a += c; \
	c -= b; c ^= rol(b, 4);  b += a; \
} while (0)

#define FINAL(a, b, c) do { \
	c ^= b; c -= rol(b, 14); \
	a ^= c; a -= rol(c, 11); \
	b ^= a; b -= rol(a, 25); \
	c ^= b; c -= rol(b, 16); \
	a ^= c; a -= rol(c, 4);  \
	b ^= a; b -= rol(a, 14); \
	c ^= b; c -= rol(b, 24); \
} while (0)

uint32_t bucket_jhash(const uint8_t *k, size_t len, uint32_t seed)
{
	uint32_t a, b, c;

	a = b = c = JHASH_INITVAL + (uint32_t)len + seed;
	while (len > 12) {
		a += le32(k);
		b += le32(k + 4);
		c += le32(k + 8);
		MIX(a, b, c);
		len -= 12;
		k += 12;
	}
	/* the last 1..12 bytes, each into its place; none: c as it is */
	uint8_t tail[12] = { 0 };
	if (!len)
		return c;
	memcpy(tail, k, len);
	a += le32(tail);
	b += le32(tail + 4);
	c += le32(tail + 8);
	FINAL(a, b, c);
	return c;
}

unsigned bucket_of(const struct ct *ct, unsigned nbuckets, uint32_t seed)
{
	uint8_t key[32];
	size_t n;

	if (ct->l3 == AF_INET6) {
		memcpy(key, ct->orig.src.ip6, 16);
		memcpy(key + 16, ct->orig.dst.ip6, 16);
		n = 32;
	} else {
		memcpy(key, &ct->orig.src.ip4, 4);
		memcpy(key + 4, &ct->orig.dst.ip4, 4);
		n = 8;
	}
	return (unsigned)(((uint64_t)bucket_jhash(key, n, seed) * nbuckets) >> 32);
}
