/* main.c — ctsyncd: wires kernel, replication, transport and control
 * together on one libev loop. */
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cluster/transport.h"
#include "daemon/daemon.h"
#include "daemon/service.h"
#include "sync/wire.h"
#include "util/log.h"
#include "util/version.h"

#define EVENT_BUDGET 4096       /* kernel events per loop iteration */
/* With defer, fewer: held packets wait for acknowledgements that are read
 * between two slices (bench/defer.sh, the burst). */
#define DEFER_EVENT_BUDGET 256
/* A read that found less than this waiting pauses its watcher for
 * COALESCE_S: under a stream of events or frames the next read takes a
 * millisecond's worth at once (docs/ARCHITECTURE.md, the event loop). */
#define EVENT_COALESCE 256
#define FRAME_COALESCE 8
/* The sync link is read a slice at a time, FRAME_SLICE frames, for at most
 * FRAME_BUDGET frames or READ_SLICE_MS: a peer's burst (a takeover sends
 * every flow it took, each injected here) must not keep the timers from
 * renewing the lease of our buckets (bench/takeover.sh: 1,024 frames of
 * upserts took 210 ms, the lease is 300 ms there). */
#define FRAME_SLICE    64
#define FRAME_BUDGET   1024
#define READ_SLICE_MS  10
#define COALESCE_S     0.001



/* CPG: the peers are corosync's nodelist unless configured, and corosync's
 * own traffic between the ring addresses is never a flow to sync. */
static void cpg_peers(struct config *cfg, struct transport *tr)
{
	struct transport_peer p[REPL_MAX_PEERS];
	unsigned n = transport_peers(tr, p, REPL_MAX_PEERS);

	if (!cfg->repl.npeers)
		log_info("cpg: %u peers from corosync's nodelist", n);
	config_set_peers(cfg, p, n);
	config_ignore_host(cfg, transport_local(tr));
}

/* ---- glue: callbacks between the layers ------------------------------------ */

static uint64_t now_ms(void *arg)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int op_inject(void *arg, enum ctnl_op op, const struct ct *ct)
{
	struct daemon *d = arg;
	return ctnl_inject(d->nl, op, ct);
}

static int op_inject_flush(void *arg)
{
	struct daemon *d = arg;
	return ctnl_inject_flush(d->nl);
}

static int op_dump(void *arg)
{
	struct daemon *d = arg;
	return ctnl_dump(d->nl);
}

static int op_inject_exp(void *arg, enum ctnl_op op, const struct exp *e)
{
	struct daemon *d = arg;
	return ctnl_inject_exp(d->nl, op, e);
}

static int op_get(void *arg, const struct ct *key, struct ct *out)
{
	struct daemon *d = arg;
	return ctnl_get(d->nl, key, out);
}

static int op_exp_dump(void *arg)
{
	struct daemon *d = arg;
	return ctnl_exp_dump(d->nl);
}

static void on_exp_event(void *arg, enum ctnl_event ev, const struct exp *e, bool own)
{
	struct daemon *d = arg;
	repl_kernel_exp_event(d->repl, ev, e, own);
}

static void on_exp_error(void *arg, enum ctnl_op op, const struct exp *e, int err)
{
	struct daemon *d = arg;
	repl_exp_error(d->repl, op, e, err);
}

static int op_dump_start(void *arg)
{
	struct daemon *d = arg;
	return ctnl_dump_start(d->nl);
}

static int op_events_new(void *arg, bool on)
{
	struct daemon *d = arg;
	return ctnl_events_new(d->nl, on);
}

static int op_inject_thread(void *arg, bool on)
{
	struct daemon *d = arg;
	return ctnl_inject_thread(d->nl, on);
}

static int op_dump_finish(void *arg)
{
	struct daemon *d = arg;
	return ctnl_dump_finish(d->nl);
}

static void on_dump_done(void *arg)
{
	struct daemon *d = arg;
	repl_dump_done(d->repl);
}

/* The host's addresses, read at most once a second: asked per address of
 * every flow left over at the end of start-up, which may be many. */
static bool op_is_local(void *arg, int family, const union ct_addr *a)
{
	struct daemon *d = arg;
	uint64_t t = now_ms(NULL);

	if (!d->ifa_valid || t - d->ifa_read_at >= 1000) {
		struct ifaddrs *ifa;
		if (getifaddrs(&ifa) < 0)
			return true;            /* when unsure, keep the flow */
		if (d->ifa_valid)
			freeifaddrs(d->ifa);
		d->ifa = ifa;
		d->ifa_valid = true;
		d->ifa_read_at = t;
	}
	for (struct ifaddrs *i = d->ifa; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != family)
			continue;
		if (family == AF_INET ?
		    ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr == a->ip4 :
		    memcmp(&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, a->ip6, 16) == 0)
			return true;
	}
	return false;
}

/* Active-active: the nftables set of the buckets we forward. */
static int op_buckets(void *arg, const uint32_t *held, unsigned n)
{
	struct daemon *d = arg;
	char err[256];
	int rc = nftb_set(d->nftb, held, n, err, sizeof(err));

	if (rc < 0)
		log_limited(LOG_LVL_ERROR, "nftables: could not set the buckets held (%u): %s; "
			    "trying again", n, err);
	return rc;
}

static int op_send(void *arg, uint32_t node, const void *buf, size_t len)
{
	struct daemon *d = arg;
	return link_send(d->link, node, buf, len);
}

/* Membership from a transport that knows it (CPG); d->repl exists before
 * the loop reads the transport. */
static void on_member(void *arg, uint32_t node, bool up)
{
	struct daemon *d = arg;
	if (d->repl)
		repl_member(d->repl, node, up);
}

/* Quorum from a transport that knows it (CPG: corosync's). */
static void on_quorum(void *arg, bool quorate)
{
	struct daemon *d = arg;
	if (d->repl)
		repl_quorum(d->repl, quorate);
}

static void on_kernel_event(void *arg, enum ctnl_event ev, const struct ct *ct, bool own)
{
	struct daemon *d = arg;
	repl_kernel_event(d->repl, ev, ct, own);
}

static void on_prefetch(void *arg, const struct ct *const *cts, unsigned n)
{
	struct daemon *d = arg;
	repl_prefetch(d->repl, cts, n);
}

static void on_inject_error(void *arg, enum ctnl_op op, const struct ct *ct, int err)
{
	struct daemon *d = arg;
	repl_inject_error(d->repl, op, ct, err);
}

/* ---- watchers ----------------------------------------------------------------- */

static void pause_watcher(struct ev_loop *loop, ev_io *w, ev_timer *t)
{
	ev_io_stop(loop, w);
	ev_timer_set(t, COALESCE_S, 0);
	ev_timer_start(loop, t);
}

static void nl_resume(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct daemon *d = t->data;
	ev_io_start(loop, &d->nl_w);
}

static void tr_resume(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct daemon *d = t->data;
	if (d->tr_w.fd >= 0)
		ev_io_start(loop, &d->tr_w);
}

static void nl_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct daemon *d = w->data;
	int n = ctnl_event_read(d->nl, d->nfq ? DEFER_EVENT_BUDGET : EVENT_BUDGET);

	if (n >= 0 && n < EVENT_COALESCE)
		pause_watcher(loop, w, &d->nl_pause_w);
	if (n == -ENOBUFS)
		repl_kernel_overrun(d->repl);
	else if (n < 0)
		log_limited(LOG_LVL_WARN, "reading kernel events: %s", strerror(-n));
}

/* A background dump (timeout refresh): a slice at a time, so that the
 * loop keeps serving the sync link while a large table is read. */
static void dump_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct daemon *d = w->data;
	int n = ctnl_dump_read(d->nl, 64, false);

	if (n < 0) {
		log_limited(LOG_LVL_WARN, "reading a kernel dump: %s", strerror(-n));
		repl_dump_failed(d->repl);
	}
}

static void on_frame(void *arg, const uint8_t *frame, size_t len, uint32_t from)
{
	struct daemon *d = arg;
	repl_receive(d->repl, frame, len, from);
}

static int read_link(struct daemon *d)
{
	uint64_t until = now_ms(NULL) + READ_SLICE_MS;
	int n = 0, k;

	do {
		k = link_read(d->link, FRAME_SLICE, on_frame, d);
		n += k;
	} while (k == FRAME_SLICE && n < FRAME_BUDGET && now_ms(NULL) < until);
	return n;
}

static void tr_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct daemon *d = w->data;

	/* with defer, a held packet waits for what comes next: no pause */
	if (read_link(d) < FRAME_COALESCE && !d->nfq)
		pause_watcher(loop, w, &d->tr_pause_w);
}

static void heartbeat(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct daemon *d = w->data;
	repl_tick(d->repl);
}

/* NACK retries, gap time-outs, start-up: fine-grained, cheap when idle. */
/* The link's descriptor may change (a CPG transport that reconnected to
 * corosync) or vanish (lost it): the watcher follows. */
static void follow_link_fd(struct daemon *d)
{
	int fd = link_fd(d->link);

	if (fd == d->tr_w.fd)
		return;
	ev_io_stop(d->loop, &d->tr_w);
	ev_timer_stop(d->loop, &d->tr_pause_w);
	ev_io_set(&d->tr_w, fd, EV_READ);
	if (fd >= 0)
		ev_io_start(d->loop, &d->tr_w);
}

static void poll_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct daemon *d = w->data;
	transport_poll(link_transport(d->link));
	follow_link_fd(d);
	/* a transport that dispatches from a queue (CPG) may hold more than its
	 * descriptor says: read it now and then whatever the descriptor says */
	if (ev_is_active(&d->tr_w))
		read_link(d);
	repl_poll(d->repl);
}

static void hold_expired(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct daemon *d = w->data;
	repl_flush(d->repl);
}

/* Datagrams wait for room in the socket (transport_send never waits):
 * sent as it drains. */
static void tx_writable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct daemon *d = w->data;

	if (transport_flush(link_transport(d->link)) == 0)
		ev_io_stop(loop, w);
}

/* Before the loop sleeps: everything queued goes out, coalesced; a few
 * dirty flows may wait a moment to fill a frame (repl_flush_lazy). */
static void before_sleep(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct daemon *d = w->data;
	unsigned ms = repl_flush_lazy(d->repl);
	struct transport *tr = link_transport(d->link);

	if (transport_tx_pending(tr) && !ev_is_active(&d->tx_w) && transport_tx_fd(tr) >= 0) {
		ev_io_set(&d->tx_w, transport_tx_fd(tr), EV_WRITE);
		ev_io_start(loop, &d->tx_w);
	}

	if (ms && !ev_is_active(&d->hold_w)) {
		ev_timer_set(&d->hold_w, ms / 1000.0, 0);
		ev_timer_start(loop, &d->hold_w);
	}
}

/* SIGTERM/SIGINT before the loop's own watchers are up (a daemon stopped
 * while it reads a large table): remembered, and honoured once they are. */
static volatile sig_atomic_t early_stop;

static void on_early_signal(int sig)
{
	early_stop = sig;
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	log_info("signal %d: shutting down", w->signum);
	ev_break(loop, EVBREAK_ALL);
}

static void on_sighup(struct ev_loop *loop, ev_signal *w, int revents)
{
	char msg[1024];
	keys_reload(w->data, msg, sizeof(msg));
}

/* ---- start-up ------------------------------------------------------------------- */

static void watchdog_ping(struct ev_loop *loop, ev_timer *w, int revents)
{
	service_notify("WATCHDOG=1");
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ctsyncd --config FILE [--socket PATH] [--foreground] [--pidfile FILE] [--check]\n"
		"  -c, --config FILE   configuration file (libconfig syntax)\n"
		"  -s, --socket PATH   control socket (overrides control.socket)\n"
		"  -f, --foreground    do not detach; log to stderr\n"
		"  -p, --pidfile FILE  write the daemon's PID there once it is ready (removed at exit)\n"
		"  -n, --check         validate the configuration and exit (0 valid, 1 not)\n"
		"  -V, --version       the release and the protocol it speaks\n"
		"  -h, --help          this text\n");
}

/* ---- start-up, in steps: each logs what failed and returns -1 --------------- */

/* The kernel side: events subscribed before the initial dump, so that
 * nothing falls in between. */
static int open_kernel(struct daemon *d)
{
	struct ctnl_config nc = {
		.event_rcvbuf = d->cfg.event_buffer,
		.tcp_liberal = d->cfg.tcp_liberal,
		.on_event = on_kernel_event,
		.on_prefetch = on_prefetch,
		.on_error = on_inject_error,
		.on_dump_done = on_dump_done,
		.on_exp = on_exp_event,         /* also the cue to re-read seqadj */
		.on_exp_error = on_exp_error,
		.arg = d,
	};
	int err;

	service_enable_events();
	if ((err = ctnl_open(&d->nl, &nc)) < 0) {
		log_err("ctnetlink: %s (need CAP_NET_ADMIN and nf_conntrack_netlink)", strerror(-err));
		return -1;
	}
	return 0;
}

/* The sync link: transport and seal; over CPG the peers come from it. */
static int open_link(struct daemon *d)
{
	struct config *cfg = &d->cfg;
	struct transport *tr;
	char msg[1024];
	int err;

	if ((err = transport_open(&tr, &cfg->transport)) < 0) {
		log_err("transport on %s: %s", cfg->transport.ifname, strerror(-err));
		return -1;
	}
	if (!(d->link = link_new(tr))) {
		transport_close(tr);
		log_err("out of memory");
		return -1;
	}
	transport_on_member(tr, on_member, d);
	transport_on_quorum(tr, on_quorum, d);
	cfg->repl.membership = cfg->transport.type == TRANSPORT_CPG;
	if (cfg->transport.type == TRANSPORT_CPG)
		cpg_peers(cfg, tr);
	/* room for the tag: a sealed frame still fits the MTU */
	cfg->repl.frame_size = link_frame_max(d->link);
	d->seal = link_seal(d->link);
	if (keys_apply(d, cfg, msg, sizeof(msg)) < 0) {
		log_err("security: %s", msg);
		return -1;
	}
	if (seal_insecure(d->seal))
		log_warnx("%s", msg);
	else
		log_info("security: %s", msg);
	return 0;
}

/* Active-active: the table of held buckets (empty: nothing tracked is
 * forwarded here until this node holds buckets); defer: the queue and its
 * rules. */
static int open_forwarding(struct daemon *d, struct repl_ops *ops)
{
	struct config *cfg = &d->cfg;
	char msg[1024];

	if (cfg->repl.active_active) {
		if (nftb_open(&d->nftb, cfg->nft_table, cfg->repl.nbuckets, cfg->repl.bucket_seed,
			      !cfg->repl.routed, cfg->repl.lease_ms, &cfg->nat, msg, sizeof(msg)) < 0) {
			log_err("nftables: table inet %s: %s", cfg->nft_table, msg);
			return -1;
		}
		ops->buckets = op_buckets;
		log_info("active-active%s: %u buckets, seed %#x, table inet %s, lease %s%u ms",
			 cfg->repl.routed ? " (routed: the network picks the node)" : "",
			 cfg->repl.nbuckets, cfg->repl.bucket_seed, cfg->nft_table,
			 cfg->repl.lease_ms ? "" : "none: ", cfg->repl.lease_ms);
		if (cfg->repl.quorum_majority)
			log_info("quorum: a majority of the %u nodes (%u), in contact both ways",
				 cfg->repl.npeers + 1, (cfg->repl.npeers + 1) / 2 + 1);
		else if (cfg->transport.type != TRANSPORT_CPG && !cfg->repl.routed &&
			 cfg->transport.local2.ss_family)
			log_info("quorum: none (buckets.quorum = \"off\"), a second path "
				 "(transport.address2): only a cut of both paths makes both sides "
				 "forward the same buckets");
		else if (cfg->transport.type != TRANSPORT_CPG && !cfg->repl.routed)
			log_warnx("quorum: none (buckets.quorum = \"off\"%s): a cut of the sync "
				  "link alone makes both sides forward the same buckets; use 3 "
				  "nodes or more, a second path (transport.address2), or corosync "
				  "CPG with a witness (qdevice) "
				  "(docs/OPERATIONS.md, \"Partitions\")",
				  cfg->repl.npeers < 2 ? ", as with 2 nodes" : "");
	}
	if (cfg->repl.defer_ms && hold_open(d, ops) < 0)
		return -1;
	return 0;
}

/* The engine, and the local kernel table read into it. */
static int open_engine(struct daemon *d)
{
	struct repl_ops ops = {
		.arg = d,
		.inject = op_inject,
		.inject_flush = op_inject_flush,
		.dump = op_dump,
		.dump_start = op_dump_start,
		.dump_finish = op_dump_finish,
		.events_new = op_events_new,
		.inject_thread = op_inject_thread,
		.inject_exp = op_inject_exp,
		.exp_dump = op_exp_dump,
		.get = op_get,
		.send = op_send,
		.is_local = op_is_local,
		.now_ms = now_ms,
	};

	if (open_forwarding(d, &ops) < 0)
		return -1;
	if (!(d->repl = repl_new(&d->cfg.repl, &ops))) {
		log_err("out of memory");
		return -1;
	}
	return repl_load_kernel(d->repl) < 0 ? -1 : 0;
}

static int open_control(struct daemon *d)
{
	struct config *cfg = &d->cfg;
	struct control_ctx cc = {
		.repl = d->repl, .nl = d->nl, .tr = link_transport(d->link), .seal = d->seal,
		.nfq = d->nfq, .nat = &cfg->nat, .reload = keys_reload, .arg = d,
	};
	int err;

	if ((err = control_open(&d->ctl, d->loop, cfg->socket_path, cfg->control_gid, false,
				&cc)) < 0) {
		log_err("control socket %s: %s", cfg->socket_path, strerror(-err));
		return -1;
	}
	if (cfg->ro_socket_path[0] &&
	    (err = control_open(&d->ro_ctl, d->loop, cfg->ro_socket_path, cfg->control_gid, true,
				&cc)) < 0) {
		log_err("read-only control socket %s: %s", cfg->ro_socket_path, strerror(-err));
		return -1;
	}
	if (cfg->metrics_listen.ss_family &&
	    (err = control_open_http(&d->http, d->loop, &cfg->metrics_listen, &cc)) < 0) {
		log_err("metrics listener: %s", strerror(-err));
		return -1;
	}
	return 0;
}

static void start_watchers(struct daemon *d)
{
	struct ev_loop *loop = d->loop;

	ev_io_init(&d->nl_w, nl_readable, ctnl_event_fd(d->nl), EV_READ);
	ev_io_init(&d->tr_w, tr_readable, link_fd(d->link), EV_READ);
	ev_io_init(&d->dump_w, dump_readable, ctnl_dump_fd(d->nl), EV_READ);
	ev_timer_init(&d->hb_w, heartbeat, 0, d->cfg.repl.heartbeat_ms / 1000.0);
	ev_timer_init(&d->poll_w, poll_timer, 0.01, 0.01);
	ev_prepare_init(&d->flush_w, before_sleep);
	ev_init(&d->tx_w, tx_writable);
	ev_init(&d->hold_w, hold_expired);
	ev_init(&d->nl_pause_w, nl_resume);
	ev_init(&d->tr_pause_w, tr_resume);
	ev_signal_init(&d->sigint_w, on_signal, SIGINT);
	ev_signal_init(&d->sigterm_w, on_signal, SIGTERM);
	ev_signal_init(&d->sighup_w, on_sighup, SIGHUP);
	d->nl_w.data = d->tr_w.data = d->dump_w.data = d->hb_w.data = d->poll_w.data = d;
	d->flush_w.data = d->hold_w.data = d->tx_w.data = d;
	d->nl_pause_w.data = d->tr_pause_w.data = d->sighup_w.data = d;
	if (d->nfq) {
		hold_start(d);
		/* acknowledgements first: held packets wait for them */
		ev_set_priority(&d->tr_w, EV_MAXPRI);
	}
	ev_io_start(loop, &d->nl_w);
	if (d->tr_w.fd >= 0)
		ev_io_start(loop, &d->tr_w);
	ev_io_start(loop, &d->dump_w);
	ev_timer_start(loop, &d->hb_w);
	ev_timer_start(loop, &d->poll_w);
	ev_prepare_start(loop, &d->flush_w);
	ev_signal_start(loop, &d->sigint_w);
	ev_signal_start(loop, &d->sigterm_w);
	ev_signal_start(loop, &d->sighup_w);
	signal(SIGPIPE, SIG_IGN);
	double wd = service_watchdog_interval();
	if (wd > 0) {
		ev_timer_init(&d->wd_w, watchdog_ping, 0, wd);
		ev_timer_start(loop, &d->wd_w);
	}
}

static int run(struct daemon *d, bool foreground)
{
	struct config *cfg = &d->cfg;
	struct sigaction sa = { .sa_handler = on_early_signal };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	d->loop = ev_default_loop(EVFLAG_AUTO);
	if (open_kernel(d) < 0 || open_link(d) < 0 || open_engine(d) < 0 || open_control(d) < 0)
		return 1;
	if (!foreground) {
		if (daemon(0, 0) < 0) {
			log_err("daemon: %s", strerror(errno));
			return 1;
		}
		/* the loop's epoll set was made before the fork: a new one */
		ev_loop_fork(d->loop);
	}
	start_watchers(d);
	service_set_nice(cfg->nice);    /* before the capabilities go */
	int err = service_drop_privileges();
	if (err < 0) {
		log_err("dropping privileges: %s", strerror(-err));
		return 1;
	}
	if (early_stop) {
		log_info("signal %d: shutting down", (int)early_stop);
		return 0;
	}
	log_info("node %u running: %s, inject %s, %u peer(s), control %s", cfg->repl.node_id,
		 cfg->repl.active_active ? (cfg->repl.primary ? "active-active" :
					    "active-active, drained") :
		 cfg->repl.primary ? "primary" : "backup",
		 cfg->repl.inject_immediate ? "immediate" : "on-promote", cfg->repl.npeers,
		 cfg->socket_path);
	/* the kernel table is read and the control socket answers: ready */
	if (d->pidfile && service_pidfile_write(d->pidfile) < 0)
		return 1;
	service_notify("READY=1\nSTATUS=syncing");
	ev_run(d->loop, 0);
	service_notify("STOPPING=1");
	hold_stop(d);
	/* Active-active: leave the split before exiting, so that the peers
	 * take our buckets now rather than after the dead time, and forward
	 * nothing tracked from here on (a node without its daemon would
	 * forward flows whose changes nobody syncs). */
	if (d->nftb)
		repl_demote(d->repl);
	if (d->pidfile)
		unlink(d->pidfile);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "socket", required_argument, NULL, 's' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "check", no_argument, NULL, 'n' },
		{ "pidfile", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	const char *path = NULL, *sock = NULL, *pidfile = NULL;
	bool foreground = false, check = false;
	int c;

	while ((c = getopt_long(argc, argv, "c:s:fnp:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'p': pidfile = optarg; break;
		case 'c': path = optarg; break;
		case 's': sock = optarg; break;
		case 'f': foreground = true; break;
		case 'n': check = true; break;
		case 'h': usage(stdout); return 0;
		case 'V':
			printf("ctsyncd %s (protocol %u.%u, features %#x; takes protocol %u to %u)\n",
			       CTSYNC_VERSION, WIRE_VERSION, WIRE_MINOR, WIRE_FEATURES,
			       WIRE_VERSION_MIN, WIRE_VERSION);
			return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!path || optind != argc) {
		usage(stderr);
		return 2;
	}
	struct daemon *d = calloc(1, sizeof(*d));
	if (!d)
		return 1;
	int nerr = config_load(path, &d->cfg, stderr);
	if (nerr != 0) {
		if (nerr > 0)
			fprintf(stderr, "%s: %d error%s\n", path, nerr, nerr == 1 ? "" : "s");
		free(d);
		return 1;
	}
	if (sock) {
		if (sock[0] != '/' || strlen(sock) >= sizeof(d->cfg.socket_path)) {
			fprintf(stderr, "--socket must be an absolute path shorter than %zu bytes\n",
				sizeof(d->cfg.socket_path));
			free(d);
			return 2;
		}
		snprintf(d->cfg.socket_path, sizeof(d->cfg.socket_path), "%s", sock);
	}
	if (check) {
		printf("%s: ok%s\n", path, d->cfg.insecure ?
		       " (WARNING: insecure: the sync link is not authenticated)" : "");
		config_wipe(&d->cfg);
		free(d);
		return 0;
	}
	d->config_path = path;
	d->pidfile = pidfile;
	log_init((enum log_level)d->cfg.log_level, d->cfg.log_syslog, "ctsyncd");
	int rc = run(d, foreground);
	control_close(d->ctl);
	control_close(d->ro_ctl);
	control_close(d->http);
	repl_free(d->repl);
	link_free(d->link);
	nftb_close(d->nftb);
	nfq_close(d->nfq);
	ctnl_close(d->nl);
	if (d->ifa_valid)
		freeifaddrs(d->ifa);
	free(d);
	return rc;
}
