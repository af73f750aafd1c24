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
#include "kernel/nftb.h"
#include "sync/repl.h"
#include "sync/seal.h"

#define CONFIG_DEFAULT_SOCKET "/run/ctsyncd/ctsyncd.sock"

struct config {
	struct repl_config repl;
	struct transport_config transport;
	char socket_path[108];
	int log_level;
	bool log_syslog;
	size_t event_buffer;            /* netlink event socket, bytes */
	int nice;                       /* scheduling priority (setpriority) */
	bool tcp_liberal;
	char ro_socket_path[108];       /* "": no read-only socket */
	long control_gid;               /* group of the control sockets; -1: ours */
	struct sockaddr_storage metrics_listen; /* family 0: no HTTP listener */
	char nft_table[32];             /* active-active: the inet table we own */
	struct nftb_nat nat;            /* active-active: nat (kernel/nftb.h) */
	/* active-active: buckets.quorum (policy.h, "Quorum"); resolved once
	 * the transport is known: majority over UDP/multicast with 3 nodes or
	 * more, off with 2 (no way to tell a dead peer from a cut link: both
	 * forward, and ctsyncd says so), corosync's over CPG */
	enum { QUORUM_AUTO, QUORUM_MAJORITY, QUORUM_OFF } quorum;
	uint16_t defer_queue;           /* defer: the NFQUEUE number */
	/* security: keys[0] seals, all open; none only with insecure */
	bool insecure;
	enum seal_cipher cipher;
	unsigned nkeys;
	struct seal_key keys[SEAL_MAX_KEYS];
	char key_file[SEAL_MAX_KEYS][256];
};

/* Fill *cfg from the file; print errors to `errs`.  Returns the number of
 * errors (0: valid), or -1 if the file could not be read at all. */
int config_load(const char *path, struct config *cfg, FILE *errs);
/* The same from text in memory (`name` stands for the file in messages). */
int config_parse(const char *text, const char *name, struct config *cfg, FILE *errs);
/* Wipe the key material a loaded config holds. */
void config_wipe(struct config *cfg);

/* Flows to or from this host address are not synced (the cluster's own
 * traffic between sync addresses). */
void config_ignore_host(struct config *cfg, const struct sockaddr_storage *ss);
/* The peers, everywhere they are needed (the engine's list, the
 * transport's, the hosts whose flows are not synced): the one writer of
 * the list, for the file's peers and for corosync's nodelist. */
void config_set_peers(struct config *cfg, const struct transport_peer *p, unsigned n);

#endif
