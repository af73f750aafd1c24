/*
 * seal.h — authenticated encryption of frames (wire.h, "Sealing").
 *
 * Every frame leaves sealed with an AEAD from OpenSSL's EVP interface
 * (AES-256-GCM by default, ChaCha20-Poly1305 as an option): the 32-byte
 * header is authenticated data, the records are encrypted in place and a
 * 16-byte tag follows them.  Each sending node has its own key, derived
 * with HKDF-SHA256 from the configured key and its node id, so that two
 * nodes sharing a key never share a nonce; the nonce is the sender's epoch
 * and its 64-bit packet number from the header (why that never repeats: see
 * wire.h).
 *
 * Up to SEAL_MAX_KEYS keys at once, told apart by the key id in the header:
 * the first is the one frames are sealed with, the others are accepted too
 * (a key rotation).  No key at all is the explicit insecure mode: frames go
 * out with key id 0 and no tag, and sealed ones are refused.
 *
 * Raw key bytes are wiped once the contexts are keyed; seal_free() and a
 * reconfiguration wipe the contexts.
 */
#ifndef CTSYNC_SYNC_SEAL_H
#define CTSYNC_SYNC_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sync/keyfile.h"

#define SEAL_TAG_LEN  16
#define SEAL_MAX_KEYS 2
#define SEAL_MAX_NODES 33               /* ourselves and REPL_MAX_PEERS */

enum seal_cipher { SEAL_AES_256_GCM, SEAL_CHACHA20_POLY1305 };


/* Why seal_open refused a datagram (negated). */
enum seal_err {
	SEAL_E_SHORT = 1,               /* shorter than a header (and tag), or length field wrong */
	SEAL_E_UNSEALED,                /* key id 0 while we require keys */
	SEAL_E_UNKNOWN_KEY,             /* a key id we do not hold (or any, when insecure) */
	SEAL_E_UNKNOWN_NODE,            /* a sender we have no key for */
	SEAL_E_BAD_TAG,                 /* authentication failed: forged, altered or wrong key */
};

/* Counters: (field, name in `ctsyncctl stats` and metrics), every field. */
#define SEAL_STATS(X) \
	X(sealed, "frames_sealed") \
	X(opened, "frames_opened") \
	X(short_frames, "rx_short") \
	X(unsealed, "rx_unsealed") \
	X(unknown_key, "rx_unknown_key") \
	X(unknown_node, "rx_no_key_for_node") \
	X(bad_tag, "rx_bad_tag")

struct seal_stats {
	uint64_t sealed, opened;
	uint64_t short_frames, unsealed, unknown_key, unknown_node, bad_tag;
};

struct seal;

struct seal *seal_new(void);
void seal_free(struct seal *s);

/* Key the layer: our node id, the nodes we accept frames from, and keys[0]
 * to seal with (keys[1..] accepted as well); nkeys 0 is insecure mode.  The
 * caller wipes its copy of the keys.  On error nothing changes.  0 or
 * -errno. */
int seal_configure(struct seal *s, enum seal_cipher c, uint32_t self,
		   const uint32_t *nodes, unsigned nnodes,
		   const struct seal_key *keys, unsigned nkeys);

bool seal_insecure(const struct seal *s);
enum seal_cipher seal_cipher(const struct seal *s);
/* Key ids: the sending one (0 if insecure) and how many are accepted. */
uint8_t seal_tx_key(const struct seal *s);
unsigned seal_key_ids(const struct seal *s, uint8_t *ids, unsigned cap);

/* Seal the frame of len bytes in buf (cap >= len + SEAL_TAG_LEN) in place;
 * returns the datagram length or -errno. */
ssize_t seal_frame(struct seal *s, uint8_t *buf, size_t len, size_t cap);
/* Check and decrypt a datagram in place; returns the plain frame's length
 * (the tag dropped) or -enum seal_err.  The header is never modified (a
 * refused frame's records are wiped, its header stays readable). */
ssize_t seal_open(struct seal *s, uint8_t *buf, size_t len);

const struct seal_stats *seal_stats(const struct seal *s);

const char *seal_cipher_name(enum seal_cipher c);
int seal_cipher_parse(const char *name, enum seal_cipher *c);

#endif
