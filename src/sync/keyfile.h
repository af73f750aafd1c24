/*
 * keyfile.h — the sync link's key as a file holds it, and the file itself:
 * one line "ctsync-key-v1 ID HEX64"; lines starting with '#' and blank lines
 * are ignored.  Read by the daemon (config.c), written by `ctsyncctl
 * keygen`, which needs nothing else of the seal layer (seal.h).
 */
#ifndef CTSYNC_SYNC_KEYFILE_H
#define CTSYNC_SYNC_KEYFILE_H

#include <stddef.h>
#include <stdint.h>

#define SEAL_KEY_LEN 32

struct seal_key {
	uint8_t id;                     /* 1..255, as in the header */
	uint8_t bytes[SEAL_KEY_LEN];
};

/* keyfile_load refuses a file that group or others may read; errors are
 * "PATH:LINE: why" in err.  0 or -errno; the key is wiped on failure. */
int keyfile_load(const char *path, struct seal_key *k, char *err, size_t errlen);
/* A new random key file's text (with its comment line); 0 or -errno. */
int keyfile_generate(uint8_t id, char *out, size_t cap);

#endif
