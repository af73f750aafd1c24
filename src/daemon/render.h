/* render.h — the control socket's answers as text or JSON: status, stats
 * and dump (metrics.h has the Prometheus exposition). */
#ifndef CTSYNC_DAEMON_RENDER_H
#define CTSYNC_DAEMON_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "daemon/control.h"
#include "util/strbuf.h"

void render_status(const struct control_ctx *ctx, struct strbuf *o, bool json);
/* Every counter (counters.h), global then per peer. */
void render_stats(const struct control_ctx *ctx, struct strbuf *o, bool json);
/* arg: "" (all), "local" or "peer ID"; a CTL_* status. */
int render_dump(const struct control_ctx *ctx, struct strbuf *o, bool json, const char *arg);
/* A sync address for people ("-" for a CPG peer: corosync knows where). */
const char *render_addr(const struct sockaddr_storage *ss, char *buf, size_t len);

#endif
