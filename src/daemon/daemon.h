/*
 * daemon.h — ctsyncd's one object, shared by the files of src/daemon/ that
 * wire the layers together: main.c (start-up, the loop's watchers, the
 * callbacks between the layers), hold.c (defer's queue), keys.c (keys at
 * start and on reload).  Not for use outside src/daemon/.
 */
#ifndef CTSYNC_DAEMON_DAEMON_H
#define CTSYNC_DAEMON_DAEMON_H

#include <ev.h>
#include <ifaddrs.h>
#include <stdbool.h>
#include <stdint.h>

#include "daemon/config.h"
#include "daemon/control.h"
#include "kernel/ctnl.h"
#include "kernel/nfq.h"
#include "kernel/nftb.h"
#include "sync/link.h"
#include "sync/repl.h"
#include "sync/seal.h"

struct daemon {
	struct ev_loop *loop;
	struct config cfg;
	struct ctnl *nl;
	struct link *link;              /* the transport and the seal */
	struct nftb *nftb;              /* active-active: the buckets we forward */
	struct nfq *nfq;                /* defer: packets held (kernel/nfq.h) */
	bool stopping;                  /* held packets go at once */
	struct ifaddrs *ifa;            /* the host's addresses (op_is_local) */
	bool ifa_valid;
	uint64_t ifa_read_at;
	ev_io nfq_w;
	ev_timer defer_w;
	struct repl *repl;
	struct seal *seal;              /* the link's */
	struct control *ctl, *ro_ctl, *http;
	const char *config_path;
	const char *pidfile;
	ev_io nl_w, tr_w, dump_w;
	ev_io tx_w;                     /* UDP back-pressure: the socket drains */
	ev_timer hb_w, poll_w, wd_w;
	ev_prepare flush_w;
	ev_timer hold_w;
	ev_timer nl_pause_w, tr_pause_w;        /* coalescing: see COALESCE_S */
	ev_signal sigint_w, sigterm_w, sighup_w;
};

/* hold.c: defer (config: repl.defer_ms) */
int hold_open(struct daemon *d, struct repl_ops *ops);
void hold_start(struct daemon *d);
/* Shutting down: nothing is queued any more, every held packet goes. */
void hold_stop(struct daemon *d);

/* keys.c */
/* Key the seal layer from a loaded configuration, then wipe its keys; a
 * message for the operator in msg.  0 or -errno. */
int keys_apply(struct daemon *d, struct config *cfg, char *msg, size_t cap);
/* ctsyncctl reload / SIGHUP (control_ctx.reload). */
int keys_reload(void *arg, char *msg, size_t cap);

#endif
