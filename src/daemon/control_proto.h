/*
 * control_proto.h — the ctsyncctl <-> ctsyncd protocol, version 1, over a
 * unix stream socket.  One request per connection:
 *
 *   request:  u32 magic 0x43545343 ("CTSC"), u16 version (1), u16 command,
 *             u32 flags (bit 0: JSON output), u32 argument length (<= 4096),
 *             then the argument bytes (command specific, text)
 *   response: u32 magic, u16 version, u16 status (0 ok, 1 failed, 2 bad
 *             request), u32 reserved, u32 body length, then the body: the
 *             text to print (a table, a message, or JSON)
 *
 * Integers are in host byte order: both ends are on the same machine.  The
 * daemon checks every length before reading and closes a connection whose
 * request is malformed or does not arrive within a few seconds.
 */
#ifndef CTSYNC_CONTROL_PROTO_H
#define CTSYNC_CONTROL_PROTO_H

#include <stdint.h>

#define CTL_MAGIC       0x43545343u
#define CTL_VERSION     1
#define CTL_F_JSON      0x1
#define CTL_MAX_ARG     4096
#define CTL_HDR_LEN     16

enum ctl_cmd {
	CTL_STATUS = 1,
	CTL_STATS,
	CTL_DUMP,       /* arg: "", "local" or "peer <id>" */
	CTL_PROMOTE,
	CTL_DEMOTE,
	CTL_COMMIT,
	CTL_RESYNC,
	CTL_IN_SYNC,    /* status CTL_OK when in sync, CTL_FAILED when not */
	CTL_RELOAD,     /* re-read the configuration (keys, log level) */
	CTL_METRICS,    /* Prometheus text exposition */
};

enum ctl_status { CTL_OK = 0, CTL_FAILED = 1, CTL_BADREQ = 2 };

struct ctl_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t code;          /* command in a request, status in a response */
	uint32_t flags;
	uint32_t len;
};

#endif
