/*
 * config.h — ctsyncd.conf (libconfig syntax; conf/ctsyncd.conf documents
 * every key).  config_load() reports every error it finds in one pass, each
 * as "FILE:LINE: message", and returns how many there were.
 */
#ifndef CTSYNC_DAEMON_CONFIG_H
#define CTSYNC_DAEMON_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

#include "cluster/transport.h"
#include "sync/repl.h"

#define CONFIG_DEFAULT_SOCKET "/run/ctsyncd/ctsyncd.sock"

struct config {
	struct repl_config repl;
	struct transport_config transport;
	char socket_path[108];
	int log_level;
	bool log_syslog;
	size_t event_buffer;            /* netlink event socket, bytes */
	bool tcp_liberal;
};

/* Fill *cfg from the file; print errors to `errs`.  Returns the number of
 * errors (0: valid), or -1 if the file could not be read at all. */
int config_load(const char *path, struct config *cfg, FILE *errs);

#endif
