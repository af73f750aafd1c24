/* seal.c — AEAD sealing of frames (seal.h). */
#include "sync/seal.h"

#include <errno.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "sync/wire.h"

struct node_ctx {
	uint32_t node;
	EVP_CIPHER_CTX *ctx;            /* encrypting for ourselves, decrypting for peers */
};

struct key_slot {
	uint8_t id;
	unsigned nnodes;
	struct node_ctx n[SEAL_MAX_NODES];
};

struct seal {
	enum seal_cipher cipher;
	uint32_t self;
	unsigned nkeys;
	struct key_slot k[SEAL_MAX_KEYS];
	struct seal_stats st;
};

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static const EVP_CIPHER *evp_cipher(enum seal_cipher c)
{
	return c == SEAL_CHACHA20_POLY1305 ? EVP_chacha20_poly1305() : EVP_aes_256_gcm();
}

const char *seal_cipher_name(enum seal_cipher c)
{
	return c == SEAL_CHACHA20_POLY1305 ? "chacha20-poly1305" : "aes-256-gcm";
}

int seal_cipher_parse(const char *name, enum seal_cipher *c)
{
	if (strcmp(name, "aes-256-gcm") == 0)
		*c = SEAL_AES_256_GCM;
	else if (strcmp(name, "chacha20-poly1305") == 0)
		*c = SEAL_CHACHA20_POLY1305;
	else
		return -EINVAL;
	return 0;
}

struct seal *seal_new(void)
{
	return calloc(1, sizeof(struct seal));
}

static void slots_clear(struct key_slot *k, unsigned nkeys)
{
	for (unsigned i = 0; i < nkeys; i++) {
		for (unsigned j = 0; j < k[i].nnodes; j++)
			EVP_CIPHER_CTX_free(k[i].n[j].ctx);         /* wipes the key schedule */
		k[i].nnodes = 0;
	}
}

void seal_free(struct seal *s)
{
	if (!s)
		return;
	slots_clear(s->k, s->nkeys);
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
}

/* The sending node's own key: HKDF-SHA256(key, salt, info = label, cipher,
 * node id).  Distinct per node, so a nonce is never shared across nodes. */
static int derive(const struct seal_key *k, enum seal_cipher c, uint32_t node,
		  uint8_t out[SEAL_KEY_LEN])
{
	static const char salt[] = "ctsync frame key v2";
	uint8_t info[64];
	const char *name = seal_cipher_name(c);
	size_t nl = strlen(name);
	int ok = 0;

	memcpy(info, name, nl);
	info[nl] = (uint8_t)(node >> 24);
	info[nl + 1] = (uint8_t)(node >> 16);
	info[nl + 2] = (uint8_t)(node >> 8);
	info[nl + 3] = (uint8_t)node;
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *kc = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	if (kc) {
		OSSL_PARAM p[] = {
			OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
			OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)k->bytes,
							  SEAL_KEY_LEN),
			OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt,
							  sizeof(salt) - 1),
			OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, nl + 4),
			OSSL_PARAM_construct_end(),
		};
		ok = EVP_KDF_derive(kc, out, SEAL_KEY_LEN, p) == 1;
	}
	EVP_KDF_CTX_free(kc);
	EVP_KDF_free(kdf);
	return ok ? 0 : -EIO;
}

static EVP_CIPHER_CTX *keyed_ctx(enum seal_cipher c, const uint8_t key[SEAL_KEY_LEN], bool enc)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();

	if (!ctx)
		return NULL;
	if (EVP_CipherInit_ex(ctx, evp_cipher(c), NULL, NULL, NULL, enc) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL) != 1 ||
	    EVP_CipherInit_ex(ctx, NULL, NULL, key, NULL, enc) != 1) {
		EVP_CIPHER_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

int seal_configure(struct seal *s, enum seal_cipher c, uint32_t self,
		   const uint32_t *nodes, unsigned nnodes,
		   const struct seal_key *keys, unsigned nkeys)
{
	struct key_slot k[SEAL_MAX_KEYS];
	uint8_t sub[SEAL_KEY_LEN];
	int err = 0;

	if (nkeys > SEAL_MAX_KEYS || nnodes + 1 > SEAL_MAX_NODES)
		return -EINVAL;
	for (unsigned i = 0; i < nkeys; i++) {
		if (keys[i].id == 0)
			return -EINVAL;
		for (unsigned j = 0; j < i; j++)
			if (keys[j].id == keys[i].id)
				return -EEXIST;
	}
	memset(k, 0, sizeof(k));
	for (unsigned i = 0; i < nkeys && !err; i++) {
		k[i].id = keys[i].id;
		for (unsigned j = 0; j <= nnodes && !err; j++) {
			uint32_t node = j == 0 ? self : nodes[j - 1];
			/* only the first key seals; every key opens */
			if (j == 0 && i != 0)
				continue;
			err = derive(&keys[i], c, node, sub);
			struct node_ctx *n = &k[i].n[k[i].nnodes];
			n->node = node;
			n->ctx = err ? NULL : keyed_ctx(c, sub, j == 0);
			if (!n->ctx)
				err = -EIO;
			else
				k[i].nnodes++;
		}
	}
	OPENSSL_cleanse(sub, sizeof(sub));
	if (err) {
		slots_clear(k, nkeys);
		return err;
	}
	slots_clear(s->k, s->nkeys);
	memcpy(s->k, k, sizeof(k));
	OPENSSL_cleanse(k, sizeof(k));
	s->nkeys = nkeys;
	s->cipher = c;
	s->self = self;
	return 0;
}

bool seal_insecure(const struct seal *s)
{
	return s->nkeys == 0;
}

enum seal_cipher seal_cipher(const struct seal *s)
{
	return s->cipher;
}

uint8_t seal_tx_key(const struct seal *s)
{
	return s->nkeys ? s->k[0].id : 0;
}

unsigned seal_key_ids(const struct seal *s, uint8_t *ids, unsigned cap)
{
	unsigned n = 0;
	for (; n < s->nkeys && n < cap; n++)
		ids[n] = s->k[n].id;
	return n;
}

const struct seal_stats *seal_stats(const struct seal *s)
{
	return &s->st;
}

/* Nonce: the sender's epoch (4 bytes) and packet number (8), both from the
 * header — exactly the 12 bytes at offset 12 and 24. */
static void nonce_of(const uint8_t *hdr, uint8_t iv[12])
{
	memcpy(iv, hdr + WIRE_OFF_EPOCH, 4);
	memcpy(iv + 4, hdr + WIRE_OFF_PN, 8);
}

ssize_t seal_frame(struct seal *s, uint8_t *buf, size_t len, size_t cap)
{
	if (len < WIRE_HDR_LEN)
		return -EINVAL;
	if (s->nkeys == 0) {
		buf[WIRE_OFF_KEY] = 0;
		s->st.sealed++;
		return (ssize_t)len;
	}
	if (cap < len + SEAL_TAG_LEN)
		return -ENOSPC;
	EVP_CIPHER_CTX *ctx = s->k[0].n[0].ctx;
	uint8_t iv[12];
	int out, fin;

	buf[WIRE_OFF_KEY] = s->k[0].id;
	nonce_of(buf, iv);
	if (EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, iv) != 1 ||
	    EVP_EncryptUpdate(ctx, NULL, &out, buf, WIRE_HDR_LEN) != 1 ||
	    EVP_EncryptUpdate(ctx, buf + WIRE_HDR_LEN, &out, buf + WIRE_HDR_LEN,
			      (int)(len - WIRE_HDR_LEN)) != 1 ||
	    EVP_EncryptFinal_ex(ctx, buf + WIRE_HDR_LEN + out, &fin) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, SEAL_TAG_LEN, buf + len) != 1)
		return -EIO;
	s->st.sealed++;
	return (ssize_t)(len + SEAL_TAG_LEN);
}

static ssize_t reject(struct seal *s, enum seal_err e)
{
	switch (e) {
	case SEAL_E_SHORT:        s->st.short_frames++; break;
	case SEAL_E_UNSEALED:     s->st.unsealed++; break;
	case SEAL_E_UNKNOWN_KEY:  s->st.unknown_key++; break;
	case SEAL_E_UNKNOWN_NODE: s->st.unknown_node++; break;
	case SEAL_E_BAD_TAG:      s->st.bad_tag++; break;
	}
	return -(ssize_t)e;
}

ssize_t seal_open(struct seal *s, uint8_t *buf, size_t len)
{
	if (len < WIRE_HDR_LEN)
		return reject(s, SEAL_E_SHORT);
	uint8_t id = buf[WIRE_OFF_KEY];
	if (s->nkeys == 0) {
		if (id != 0)
			return reject(s, SEAL_E_UNKNOWN_KEY);
		s->st.opened++;
		return (ssize_t)len;
	}
	if (id == 0)
		return reject(s, SEAL_E_UNSEALED);
	struct key_slot *k = NULL;
	for (unsigned i = 0; i < s->nkeys && !k; i++)
		if (s->k[i].id == id)
			k = &s->k[i];
	if (!k)
		return reject(s, SEAL_E_UNKNOWN_KEY);
	uint32_t node = rd32(buf + WIRE_OFF_NODE);
	EVP_CIPHER_CTX *ctx = NULL;
	for (unsigned j = 0; j < k->nnodes && !ctx; j++)
		if (k->n[j].node == node && node != s->self)
			ctx = k->n[j].ctx;
	if (!ctx)
		return reject(s, SEAL_E_UNKNOWN_NODE);
	if (len < WIRE_HDR_LEN + SEAL_TAG_LEN ||
	    (size_t)(buf[WIRE_OFF_LEN] << 8 | buf[WIRE_OFF_LEN + 1]) !=
	    len - WIRE_HDR_LEN - SEAL_TAG_LEN)
		return reject(s, SEAL_E_SHORT);
	size_t plen = len - SEAL_TAG_LEN;
	uint8_t iv[12], tag[SEAL_TAG_LEN];
	int out, fin;

	memcpy(tag, buf + plen, SEAL_TAG_LEN);
	nonce_of(buf, iv);
	if (EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, iv) != 1 ||
	    EVP_DecryptUpdate(ctx, NULL, &out, buf, WIRE_HDR_LEN) != 1 ||
	    EVP_DecryptUpdate(ctx, buf + WIRE_HDR_LEN, &out, buf + WIRE_HDR_LEN,
			      (int)(plen - WIRE_HDR_LEN)) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, SEAL_TAG_LEN, tag) != 1 ||
	    EVP_DecryptFinal_ex(ctx, buf + WIRE_HDR_LEN + out, &fin) != 1) {
		/* do not leave unauthenticated plaintext behind */
		OPENSSL_cleanse(buf + WIRE_HDR_LEN, plen - WIRE_HDR_LEN);
		return reject(s, SEAL_E_BAD_TAG);
	}
	s->st.opened++;
	return (ssize_t)plen;
}

/* ---- key files ------------------------------------------------------------- */
