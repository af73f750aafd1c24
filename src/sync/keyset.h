/*
 * keyset.h — a set of flow key hashes (open addressing): the table's
 * 32-bit ones (struct flow's khash, the low half of ct_key_hash()), held in
 * 64-bit slots so that the set could take the whole hash if it ever must.
 *
 * While a background dump is read, the kernel hands over entries it put in
 * its buffer some time before we read them: a flow we dropped meanwhile (its
 * DESTROY event, a peer's delete) would otherwise come back from the dump as
 * an unknown flow of our own.  repl.c remembers the keys it dropped during
 * the dump here and ignores unknown dump entries that match one.  A hash
 * collision only makes us skip the dump entry of a flow whose event we lost;
 * its next event, or the next dump, brings it.
 */
#ifndef CTSYNC_SYNC_KEYSET_H
#define CTSYNC_SYNC_KEYSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct keyset {
	uint64_t *slot;                 /* 0: empty */
	size_t cap, n;                  /* cap: a power of two, or 0 */
};

/* false when memory ran out (the key is then not remembered) */
bool keyset_add(struct keyset *s, uint64_t key);
bool keyset_has(const struct keyset *s, uint64_t key);
void keyset_clear(struct keyset *s);    /* frees the memory too */

#endif
