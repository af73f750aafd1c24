/* control.h — the daemon's control socket (protocol in control_proto.h). */
#ifndef CTSYNC_DAEMON_CONTROL_H
#define CTSYNC_DAEMON_CONTROL_H

#include <ev.h>

#include "cluster/transport.h"
#include "kernel/ctnl.h"
#include "kernel/nfq.h"
#include "kernel/nftb.h"
#include "sync/repl.h"
#include "sync/seal.h"

struct control;

struct control_ctx {
	struct repl *repl;
	struct ctnl *nl;
	struct transport *tr;
	struct seal *seal;
	struct nfq *nfq;                /* defer (NULL without) */
	const struct nftb_nat *nat;     /* nat.snat (NULL or none: no NAT of ours) */
	/* reload the configuration's keys; a message for the operator in msg */
	int (*reload)(void *arg, char *msg, size_t cap);
	void *arg;
	/* a client that sends no whole request, or reads nothing of its
	 * response, for this long is dropped (0: CONTROL_CLIENT_TIMEOUT) */
	double client_timeout;
};

#define CONTROL_CLIENT_TIMEOUT 5.0      /* seconds */
#define CONTROL_MAX_CLIENTS 16          /* per socket; more are closed at once */

/* A control socket at path, mode 0660 (group gid, unless -1); a read-only
 * one answers status, stats, metrics and wait-sync only (no dump: a
 * response of ~100 bytes per flow is for the operator's socket). */
int control_open(struct control **out, struct ev_loop *loop, const char *path, long gid,
		 bool readonly, const struct control_ctx *ctx);
/* The metrics listener: HTTP, GET /metrics, on addr (loopback: config.c). */
int control_open_http(struct control **out, struct ev_loop *loop,
		      const struct sockaddr_storage *addr, const struct control_ctx *ctx);
void control_close(struct control *c);

/* One whole request (header and argument) to a response status and body
 * (malloc'd, *body_len bytes); -EAGAIN while the request is incomplete.
 * The socket's connections go through this, and so does the fuzzer. */
int control_process(struct control *c, const uint8_t *in, size_t len, char **body,
		    size_t *body_len);
/* A control without a socket, for control_process alone. */
struct control *control_new_detached(const struct control_ctx *ctx, bool readonly);
/* Connections open now (responses being written included). */
unsigned control_clients(const struct control *c);

#endif
