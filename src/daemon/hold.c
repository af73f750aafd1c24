/* hold.c — defer, the daemon's side (repl.h "Defer"): the NFQUEUE of held
 * packets and its rules, packets handed to the engine, verdicts when it
 * lets them go, the timer of the next wait's end. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "daemon/daemon.h"
#include "util/log.h"

static uint64_t now_us(void *arg)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void op_release(void *arg, uint64_t cookie)
{
	struct daemon *d = arg;
	if (nfq_accept(d->nfq, (uint32_t)cookie) < 0)
		log_limited(LOG_LVL_WARN, "could not let a held packet go: %s", strerror(errno));
}

static void on_held(void *arg, uint32_t id, const struct nfq_pkt *p)
{
	struct daemon *d = arg;
	struct ct ct;

	if (d->stopping || !p) {
		nfq_accept(d->nfq, id);
	} else if (nfq_pkt_synack_ct(p, &ct) == 0) {
		repl_defer_reply(d->repl, &ct, id);
	} else if (nfq_pkt_new_ct(p, &ct) < 0) {
		nfq_accept(d->nfq, id);
	} else {
		repl_defer_new(d->repl, &ct, id);
	}
}

/* The next wait's end (repl_defer_poll) is when the timer fires next. */
static void defer_arm(struct daemon *d)
{
	unsigned ms = repl_defer_poll(d->repl);

	ev_timer_stop(d->loop, &d->defer_w);
	if (ms) {
		ev_timer_set(&d->defer_w, ms / 1000.0, 0);
		ev_timer_start(d->loop, &d->defer_w);
	}
}

static void defer_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	defer_arm(w->data);
}

static void nfq_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct daemon *d = w->data;

	if (nfq_read(d->nfq, 256) < 0)
		log_limited(LOG_LVL_WARN, "reading held packets: %s", strerror(errno));
	defer_arm(d);
}

/* Shutting down: no more packets are queued, and every held one goes. */
void hold_stop(struct daemon *d)
{
	char err[256];

	if (!d->nfq)
		return;
	d->stopping = true;
	if (nfq_rules_remove(d->cfg.nft_table, err, sizeof(err)) < 0)
		log_warnx("nftables: removing table inet %s_defer: %s", d->cfg.nft_table, err);
	nfq_read(d->nfq, 1 << 20);              /* (accepted at once) */
	repl_defer_release_all(d->repl);
}

int hold_open(struct daemon *d, struct repl_ops *ops)
{
	struct config *cfg = &d->cfg;
	char msg[1024];
	int err;

	if ((err = nfq_open(&d->nfq, cfg->defer_queue, cfg->repl.defer_max, on_held,
			    d)) < 0) {
		log_err("defer: binding queue %u: %s (another listener on it?)",
			cfg->defer_queue, strerror(-err));
		return -1;
	}
	if (nfq_rules_install(cfg->nft_table, cfg->defer_queue, msg, sizeof(msg)) < 0) {
		log_err("defer: table inet %s_defer: %s", cfg->nft_table, msg);
		return -1;
	}
	ops->release = op_release;
	ops->now_us = now_us;
	log_info("defer: new flows' first packets and SYN-ACKs held up to %u ms "
		 "(queue %u, table inet %s_defer)", cfg->repl.defer_ms, cfg->defer_queue,
		 cfg->nft_table);
	return 0;
}

void hold_start(struct daemon *d)
{
	ev_init(&d->defer_w, defer_timer);
	d->defer_w.data = d;
	ev_io_init(&d->nfq_w, nfq_readable, nfq_fd(d->nfq), EV_READ);
	d->nfq_w.data = d;
	ev_io_start(d->loop, &d->nfq_w);
}
