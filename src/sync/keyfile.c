/* keyfile.c — sync-link key files (keyfile.h). */
#include "sync/keyfile.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int keyfile_load(const char *path, struct seal_key *k, char *err, size_t errlen)
{
	struct stat st;
	char line[256];
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	int found = 0, lineno = 0, ret = -EINVAL;

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		close(fd);
		return -EINVAL;
	}
	if (st.st_mode & 077) {
		snprintf(err, errlen, "%s: readable or writable by group or others (mode %04o): "
			 "chmod 600 it", path, (unsigned)(st.st_mode & 07777));
		close(fd);
		return -EPERM;
	}
	FILE *f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -ENOMEM;
	}
	/* no stdio buffer: it would keep a copy of the key that is never wiped */
	setvbuf(f, NULL, _IONBF, 0);
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		char *p = line;
		while (isspace((unsigned char)*p))
			p++;
		if (*p == '#' || *p == 0)
			continue;
		char magic[32], hex[80];
		unsigned id;
		int n = 0;
		if (found) {
			snprintf(err, errlen, "%s:%d: more than one key in the file", path, lineno);
			goto out;
		}
		if (sscanf(p, "%31s %u %79s %n", magic, &id, hex, &n) != 3 || p[n] != 0 ||
		    strcmp(magic, "ctsync-key-v1") != 0) {
			snprintf(err, errlen, "%s:%d: expected \"ctsync-key-v1 ID KEY\" "
				 "(as written by ctsyncctl keygen)", path, lineno);
			goto out;
		}
		if (id < 1 || id > 255) {
			snprintf(err, errlen, "%s:%d: key id %u out of range 1..255", path, lineno, id);
			goto out;
		}
		if (strlen(hex) != 2 * SEAL_KEY_LEN) {
			snprintf(err, errlen, "%s:%d: the key must be %d hex digits", path, lineno,
				 2 * SEAL_KEY_LEN);
			goto out;
		}
		for (size_t i = 0; i < SEAL_KEY_LEN; i++) {
			int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
			if (hi < 0 || lo < 0) {
				snprintf(err, errlen, "%s:%d: the key is not hexadecimal", path, lineno);
				goto out;
			}
			k->bytes[i] = (uint8_t)(hi << 4 | lo);
		}
		k->id = (uint8_t)id;
		found = 1;
		explicit_bzero(hex, sizeof(hex));
	}
	if (!found)
		snprintf(err, errlen, "%s: no key in the file", path);
	else
		ret = 0;
out:
	explicit_bzero(line, sizeof(line));
	fclose(f);
	if (ret < 0)
		explicit_bzero(k, sizeof(*k));
	return ret;
}

int keyfile_generate(uint8_t id, char *out, size_t cap)
{
	uint8_t b[SEAL_KEY_LEN];
	char hex[2 * SEAL_KEY_LEN + 1];

	if (getrandom(b, sizeof(b), 0) != sizeof(b))
		return -EIO;
	while (id == 0)
		if (getrandom(&id, 1, 0) != 1)
			return -EIO;
	for (size_t i = 0; i < SEAL_KEY_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", b[i]);
	int n = snprintf(out, cap, "# ctsync sync-link key: secret, mode 0600, the same on every node\n"
			 "ctsync-key-v1 %u %s\n", id, hex);
	explicit_bzero(b, sizeof(b));
	explicit_bzero(hex, sizeof(hex));
	return n > 0 && (size_t)n < cap ? 0 : -ENOSPC;
}
