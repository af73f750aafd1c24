/* control.h — the daemon's control socket (protocol in control_proto.h). */
#ifndef CTSYNC_DAEMON_CONTROL_H
#define CTSYNC_DAEMON_CONTROL_H

#include <ev.h>

#include "cluster/transport.h"
#include "kernel/ctnl.h"
#include "sync/repl.h"

struct control;

struct control_ctx {
	struct repl *repl;
	struct ctnl *nl;
	struct transport *tr;
};

int control_open(struct control **out, struct ev_loop *loop, const char *path,
		 const struct control_ctx *ctx);
void control_close(struct control *c);

#endif
