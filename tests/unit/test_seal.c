/* Sealing: known answers (computed independently, with Python's
 * `cryptography`: HKDF-SHA256 then AES-256-GCM / ChaCha20-Poly1305), and
 * every way a datagram is refused, each with its own counter. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sync/codec.h"
#include "sync/seal.h"
#include "sync/wire.h"

static const char *const kat_aes =
	"4354535902000700000000010102030400000009001400000000000500000007"
	"ecb50f2a6042f130a1248bd23d622794d53abbcca55b74325ff1c38f82f6ccbad043b17d";
static const char *const kat_chacha =
	"4354535902000700000000010102030400000009001400000000000500000007"
	"422c20651085154d129a02ed37af7b1d5b93a1ef28fcb670b09439d1a72d2c14b45ee9a0";

static size_t unhex(const char *h, uint8_t *out)
{
	size_t n = strlen(h) / 2;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		sscanf(h + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
	return n;
}

static struct seal_key key_of(uint8_t id, uint8_t base)
{
	struct seal_key k = { .id = id };
	for (int i = 0; i < SEAL_KEY_LEN; i++)
		k.bytes[i] = (uint8_t)(base + i);
	return k;
}

/* The plain frame of the known answers: node 1, epoch 01020304, seq 9,
 * packet number 0x0000000500000007, 20 bytes of "records". */
static size_t kat_frame(uint8_t *buf)
{
	struct wbuf w;
	struct frame_hdr h = { .node = 1, .epoch = 0x01020304, .seq = 9,
			       .pn = 0x0000000500000007ull };
	codec_frame_start(&w, buf, 256);
	memcpy(buf + WIRE_HDR_LEN, "ctsync known answer!", 20);
	w.len += 20;
	size_t len = codec_frame_finish(&w, &h);
	/* the answers were computed for a header of protocol 2: the seal takes
	 * the header as it is (associated data), whatever its version byte */
	buf[4] = 2;
	return len;
}

static struct seal *keyed(uint32_t self, uint32_t peer, const struct seal_key *k, unsigned n,
			  enum seal_cipher c)
{
	struct seal *s = seal_new();
	assert_non_null(s);
	assert_int_equal(seal_configure(s, c, self, &peer, 1, k, n), 0);
	return s;
}

static void test_known_answers(void **state)
{
	const struct { enum seal_cipher c; const char *want; } cases[] = {
		{ SEAL_AES_256_GCM, kat_aes }, { SEAL_CHACHA20_POLY1305, kat_chacha },
	};
	for (size_t i = 0; i < 2; i++) {
		struct seal_key k = key_of(7, 0);
		struct seal *tx = keyed(1, 2, &k, 1, cases[i].c);
		struct seal *rx = keyed(2, 1, &k, 1, cases[i].c);
		uint8_t buf[256], want[256], plain[256];
		size_t len = kat_frame(buf);
		memcpy(plain, buf, len);
		size_t wl = unhex(cases[i].want, want);

		ssize_t n = seal_frame(tx, buf, len, sizeof(buf));
		assert_int_equal(n, (ssize_t)(len + SEAL_TAG_LEN));
		assert_int_equal((size_t)n, wl);
		assert_memory_equal(buf, want, wl);
		/* and back: the plain frame, with the key id in its header */
		assert_int_equal(seal_open(rx, buf, (size_t)n), (ssize_t)len);
		plain[WIRE_OFF_KEY] = 7;
		assert_memory_equal(buf, plain, len);
		assert_int_equal(seal_stats(rx)->opened, 1);
		seal_free(tx);
		seal_free(rx);
	}
}

/* Every refusal, each counted under its own name, none counted twice. */
static void test_refusals(void **state)
{
	struct seal_key k = key_of(7, 0), other = key_of(7, 100), k9 = key_of(9, 50);
	struct seal *tx = keyed(1, 2, &k, 1, SEAL_AES_256_GCM);
	struct seal *rx = keyed(2, 1, &k, 1, SEAL_AES_256_GCM);
	struct seal *wrong = keyed(2, 1, &other, 1, SEAL_AES_256_GCM);
	struct seal *tx9 = keyed(1, 2, &k9, 1, SEAL_AES_256_GCM);
	struct seal *plain_tx = seal_new();
	uint8_t sealed[256], buf[256];
	size_t len = kat_frame(sealed);
	ssize_t n = seal_frame(tx, sealed, len, sizeof(sealed));
	const struct seal_stats *st = seal_stats(rx);

	assert_int_equal(seal_configure(plain_tx, SEAL_AES_256_GCM, 1, (uint32_t[]){ 2 }, 1, NULL, 0), 0);

	/* a header bit flipped: the header is authenticated */
	memcpy(buf, sealed, (size_t)n);
	buf[WIRE_OFF_SEQ + 3] ^= 1;
	assert_int_equal(seal_open(rx, buf, (size_t)n), -SEAL_E_BAD_TAG);
	assert_int_equal(st->bad_tag, 1);
	/* the epoch (part of the nonce, and authenticated) */
	memcpy(buf, sealed, (size_t)n);
	buf[WIRE_OFF_EPOCH] ^= 0x80;
	assert_int_equal(seal_open(rx, buf, (size_t)n), -SEAL_E_BAD_TAG);
	/* a body bit, and a tag bit */
	memcpy(buf, sealed, (size_t)n);
	buf[WIRE_HDR_LEN + 5] ^= 4;
	assert_int_equal(seal_open(rx, buf, (size_t)n), -SEAL_E_BAD_TAG);
	memcpy(buf, sealed, (size_t)n);
	buf[n - 1] ^= 1;
	assert_int_equal(seal_open(rx, buf, (size_t)n), -SEAL_E_BAD_TAG);
	assert_int_equal(st->bad_tag, 4);
	/* truncated: by a byte, to the header, below the header */
	memcpy(buf, sealed, (size_t)n);
	assert_int_equal(seal_open(rx, buf, (size_t)n - 1), -SEAL_E_SHORT);
	assert_int_equal(seal_open(rx, buf, WIRE_HDR_LEN), -SEAL_E_SHORT);
	assert_int_equal(seal_open(rx, buf, 10), -SEAL_E_SHORT);
	assert_int_equal(st->short_frames, 3);
	/* the right key id, the wrong key */
	memcpy(buf, sealed, (size_t)n);
	assert_int_equal(seal_open(wrong, buf, (size_t)n), -SEAL_E_BAD_TAG);
	assert_int_equal(seal_stats(wrong)->bad_tag, 1);
	/* a key id we do not hold */
	len = kat_frame(buf);
	ssize_t n9 = seal_frame(tx9, buf, len, sizeof(buf));
	assert_int_equal(seal_open(rx, buf, (size_t)n9), -SEAL_E_UNKNOWN_KEY);
	assert_int_equal(st->unknown_key, 1);
	/* not sealed at all, to a node that requires keys */
	len = kat_frame(buf);
	ssize_t np = seal_frame(plain_tx, buf, len, sizeof(buf));
	assert_int_equal(np, (ssize_t)len);
	assert_int_equal(buf[WIRE_OFF_KEY], 0);
	assert_int_equal(seal_open(rx, buf, (size_t)np), -SEAL_E_UNSEALED);
	assert_int_equal(st->unsealed, 1);
	/* and the insecure node refuses sealed frames */
	memcpy(buf, sealed, (size_t)n);
	assert_int_equal(seal_open(plain_tx, buf, (size_t)n), -SEAL_E_UNKNOWN_KEY);
	/* a node we have no key for (the header claims node 3) */
	memcpy(buf, sealed, (size_t)n);
	buf[WIRE_OFF_NODE + 3] = 3;
	assert_int_equal(seal_open(rx, buf, (size_t)n), -SEAL_E_UNKNOWN_NODE);
	assert_int_equal(st->unknown_node, 1);
	/* after all that, the honest frame still opens */
	memcpy(buf, sealed, (size_t)n);
	assert_int_equal(seal_open(rx, buf, (size_t)n), (ssize_t)len);
	assert_int_equal(st->opened, 1);
	assert_int_equal(st->bad_tag, 4);

	seal_free(tx);
	seal_free(rx);
	seal_free(wrong);
	seal_free(tx9);
	seal_free(plain_tx);
}

/* Two nodes under one key never share a frame key: node 2's frame with
 * its header's node changed to 1 does not open. */
static void test_per_node_keys(void **state)
{
	struct seal_key k = key_of(7, 0);
	struct seal *a = keyed(1, 2, &k, 1, SEAL_AES_256_GCM);
	struct seal *b = keyed(2, 1, &k, 1, SEAL_AES_256_GCM);
	uint32_t both[2] = { 1, 2 };
	struct seal *c = seal_new();
	assert_int_equal(seal_configure(c, SEAL_AES_256_GCM, 3, both, 2, &k, 1), 0);
	uint8_t fa[256], fb[256];
	size_t la = kat_frame(fa), lb = kat_frame(fb);
	fb[WIRE_OFF_NODE + 3] = 2;
	ssize_t na = seal_frame(a, fa, la, sizeof(fa));
	ssize_t nb = seal_frame(b, fb, lb, sizeof(fb));
	/* same plaintext, epoch and packet number: different ciphertext */
	assert_memory_not_equal(fa + WIRE_HDR_LEN, fb + WIRE_HDR_LEN, (size_t)na - WIRE_HDR_LEN);
	fb[WIRE_OFF_NODE + 3] = 1;
	assert_int_equal(seal_open(c, fb, (size_t)nb), -SEAL_E_BAD_TAG);
	assert_int_equal(seal_open(c, fa, (size_t)na), (ssize_t)la);
	seal_free(a);
	seal_free(b);
	seal_free(c);
}

/* A rotation: the receiver holds the new key and the old; frames under
 * either open; a reconfiguration that fails leaves the keys in use. */
static void test_rotation(void **state)
{
	struct seal_key k1 = key_of(1, 0), k2 = key_of(2, 60), both[2] = { k2, k1 };
	struct seal *old = keyed(1, 2, &k1, 1, SEAL_AES_256_GCM);
	struct seal *rx = keyed(2, 1, both, 2, SEAL_AES_256_GCM);
	uint8_t buf[256];
	size_t len = kat_frame(buf);
	ssize_t n = seal_frame(old, buf, len, sizeof(buf));

	assert_int_equal(seal_tx_key(rx), 2);
	assert_int_equal(seal_open(rx, buf, (size_t)n), (ssize_t)len);
	/* rx seals with key 2 */
	len = kat_frame(buf);
	buf[WIRE_OFF_NODE + 3] = 2;
	n = seal_frame(rx, buf, len, sizeof(buf));
	assert_int_equal(buf[WIRE_OFF_KEY], 2);
	/* two keys with one id: refused, and nothing changed */
	struct seal_key dup[2] = { k1, key_of(1, 9) };
	assert_int_equal(seal_configure(rx, SEAL_AES_256_GCM, 2, (uint32_t[]){ 1 }, 1, dup, 2),
			 -EEXIST);
	assert_int_equal(seal_tx_key(rx), 2);
	seal_free(old);
	seal_free(rx);
}

static void test_key_files(void **state)
{
	char path[] = "/tmp/ctsync-test-key.XXXXXX", err[512], text[256];
	struct seal_key k;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(keyfile_generate(42, text, sizeof(text)), 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	fchmod(fd, 0600);
	assert_int_equal(keyfile_load(path, &k, err, sizeof(err)), 0);
	assert_int_equal(k.id, 42);
	/* readable by the group: refused, with what to do */
	fchmod(fd, 0640);
	assert_int_equal(keyfile_load(path, &k, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "chmod 600"));
	/* garbage on line 2 */
	fchmod(fd, 0600);
	assert_int_equal(ftruncate(fd, 0), 0);
	const char *bad = "# comment\nctsync-key-v1 42 00112233\n";
	assert_int_equal(pwrite(fd, bad, strlen(bad), 0), (ssize_t)strlen(bad));
	assert_int_equal(keyfile_load(path, &k, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":2: the key must be 64 hex digits"));
	close(fd);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_answers),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_per_node_keys),
		cmocka_unit_test(test_rotation),
		cmocka_unit_test(test_key_files),
	};
	return cmocka_run_group_tests_name("seal", tests, NULL, NULL);
}
