/* metrics.h — Prometheus text exposition (version 0.0.4) of every counter
 * (counters.h) and of the gauges of `status`: `ctsyncctl metrics` and the
 * HTTP listener. */
#ifndef CTSYNC_DAEMON_METRICS_H
#define CTSYNC_DAEMON_METRICS_H

#include "daemon/control.h"
#include "util/strbuf.h"

void metrics_render(const struct control_ctx *ctx, struct strbuf *o);

#endif
