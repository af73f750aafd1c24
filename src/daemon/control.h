/* control.h — the daemon's control socket (protocol in control_proto.h). */
#ifndef CTSYNC_DAEMON_CONTROL_H
#define CTSYNC_DAEMON_CONTROL_H

#include <ev.h>

#include "cluster/transport.h"
#include "kernel/ctnl.h"
#include "sync/repl.h"
#include "sync/seal.h"

struct control;

struct control_ctx {
	struct repl *repl;
	struct ctnl *nl;
	struct transport *tr;
	struct seal *seal;
	/* reload the configuration's keys; a message for the operator in msg */
	int (*reload)(void *arg, char *msg, size_t cap);
	void *arg;
};

/* A control socket at path, mode 0660 (group gid, unless -1); a read-only
 * one answers status, stats, dump and wait-sync only. */
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

#endif
