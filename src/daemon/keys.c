/* keys.c — the sync link's keys from the configuration, at start and on
 * reload (SIGHUP, `ctsyncctl reload`). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "daemon/daemon.h"
#include "daemon/service.h"
#include "util/log.h"

/* Key the seal layer from a loaded configuration, then wipe its keys. */
int keys_apply(struct daemon *d, struct config *cfg, char *msg, size_t cap)
{
	uint32_t nodes[REPL_MAX_PEERS];

	for (unsigned i = 0; i < d->cfg.repl.npeers; i++)
		nodes[i] = d->cfg.repl.peer_id[i];
	int err = seal_configure(d->seal, cfg->cipher, d->cfg.repl.node_id, nodes,
				 d->cfg.repl.npeers, cfg->keys, cfg->insecure ? 0 : cfg->nkeys);
	config_wipe(cfg);
	if (err < 0) {
		snprintf(msg, cap, "keying %s failed: %s", seal_cipher_name(cfg->cipher),
			 strerror(-err));
		return err;
	}
	if (seal_insecure(d->seal)) {
		snprintf(msg, cap, "INSECURE: sync traffic is neither authenticated nor encrypted "
			 "(security.insecure = true)");
		return 0;
	}
	uint8_t ids[SEAL_MAX_KEYS];
	unsigned n = seal_key_ids(d->seal, ids, SEAL_MAX_KEYS);
	if (n > 1)
		snprintf(msg, cap, "%s: sealing with key %u (%s), accepting key %u too",
			 seal_cipher_name(cfg->cipher), ids[0], cfg->key_file[0], ids[1]);
	else
		snprintf(msg, cap, "%s: sealing with key %u (%s)", seal_cipher_name(cfg->cipher),
			 ids[0], cfg->key_file[0]);
	return 0;
}

/* ctsyncctl reload / SIGHUP: the security section (keys, cipher) and the log
 * level are re-read; the rest of the file needs a restart. */
int keys_reload(void *arg, char *msg, size_t cap)
{
	struct daemon *d = arg;
	struct config *nc = calloc(1, sizeof(*nc));
	char *errs = NULL;
	size_t errlen = 0;
	int ret;

	if (!nc) {
		snprintf(msg, cap, "out of memory");
		return -ENOMEM;
	}
	service_notify_reload(true);
	FILE *ef = open_memstream(&errs, &errlen);
	int nerr = ef ? config_load(d->config_path, nc, ef) : -1;
	if (ef)
		fclose(ef);
	if (nerr != 0) {
		snprintf(msg, cap, "%s: keeping the keys in use: %s", d->config_path,
			 errs && *errs ? errs : "cannot read it");
		size_t l = strlen(msg);
		if (l && msg[l - 1] == '\n')
			msg[l - 1] = 0;
		ret = -EINVAL;
	} else if (nc->insecure != seal_insecure(d->seal)) {
		config_wipe(nc);
		snprintf(msg, cap, "switching between insecure and sealed mode needs a restart");
		ret = -EINVAL;
	} else {
		ret = keys_apply(d, nc, msg, cap);
		log_set_level((enum log_level)nc->log_level);
	}
	if (ret < 0)
		log_warnx("reload: %s", msg);
	else
		log_info("reloaded: %s", msg);
	free(errs);
	OPENSSL_cleanse(nc, sizeof(*nc));
	free(nc);
	service_notify_reload(false);
	return ret;
}

