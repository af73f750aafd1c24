/*
 * counters.h — the one list of counters that `ctsyncctl stats`, `stats
 * --json` and the metrics all read.  Each layer lists its own in an X-macro
 * beside its stats struct (REPL_STATS, REPL_PEER_COUNTERS, CTNL_STATS,
 * TRANSPORT_STATS, SEAL_STATS, NFQ_STATS); counters.c turns them into
 * tables and refuses to build when a struct holds a field its list lacks,
 * so a new counter cannot be forgotten by any output.
 */
#ifndef CTSYNC_DAEMON_COUNTERS_H
#define CTSYNC_DAEMON_COUNTERS_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/control.h"

#define COUNTERS_MAX 256
#define PEER_COUNTERS_MAX 32

struct counter {
	const char *name;
	uint64_t v;
};

/* Every global counter with its value now, in the order `stats` prints
 * them (a part whose object is absent reads 0). */
size_t counters_global(const struct control_ctx *ctx, struct counter *out);
/* One peer's counters, then its gauges (the last *ngauges). */
size_t counters_peer(const struct repl_peer_status *p, struct counter *out, size_t *ngauges);

#endif
