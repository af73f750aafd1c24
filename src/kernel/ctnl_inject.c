/* ctnl_inject.c — batched ctnetlink injection (ctnl.h): many messages per
 * sendmsg, the kernel's errors collected after each batch, and a second
 * thread that sends while the next batch is built. */
#include "kernel/ctnl.h"
#include "kernel/ctnl_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>

/* ---- injection ----------------------------------------------------------- */

/* Send one batch and read back the kernel's verdicts: ctnetlink handles the
 * whole batch inside sendmsg, so every error is queued when it returns.  Runs
 * in the sending thread while there is one: it touches only the batch, the
 * inject socket and inj_rbuf. */
static void send_batch(struct ctnl *nl, struct batch *b)
{
	int fd = mnl_socket_get_fd(nl->inj);

	b->nerr = 0;
	b->send_err = 0;
	if (mnl_socket_sendto(nl->inj, b->buf, b->len) < 0)
		b->send_err = -errno;
	for (;;) {
		ssize_t r = recv(fd, nl->inj_rbuf, sizeof(nl->inj_rbuf), MSG_DONTWAIT);
		if (r <= 0)
			return;
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)nl->inj_rbuf;
		int len = (int)r;
		while (mnl_nlmsg_ok(nlh, len)) {
			if (nlh->nlmsg_type == NLMSG_ERROR &&
			    nlh->nlmsg_len >= mnl_nlmsg_size(sizeof(struct nlmsgerr))) {
				const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
				uint32_t idx = e->msg.nlmsg_seq - b->seq0;
				if (e->error && idx < b->n && b->nerr < BATCH_MAX) {
					b->err_idx[b->nerr] = (uint8_t)idx;
					b->err_val[b->nerr++] = e->error;
				}
			}
			nlh = mnl_nlmsg_next(nlh, &len);
		}
	}
}

static void *sender(void *arg)
{
	struct ctnl *nl = arg;

	pthread_mutex_lock(&nl->mu);
	for (;;) {
		while (nl->sent == nl->filled && !nl->stop)
			pthread_cond_wait(&nl->cv_work, &nl->mu);
		if (nl->sent == nl->filled)
			break;
		struct batch *b = &nl->bt[nl->sent % NBATCH];
		pthread_mutex_unlock(&nl->mu);
		send_batch(nl, b);
		pthread_mutex_lock(&nl->mu);
		nl->sent++;
		pthread_cond_signal(&nl->cv_done);
	}
	pthread_mutex_unlock(&nl->mu);
	return NULL;
}

static struct batch *cur_batch(struct ctnl *nl)
{
	return &nl->bt[nl->filled % NBATCH];
}

/* Hand the batch being filled to the sender (or send it now). */
static void submit(struct ctnl *nl)
{
	if (cur_batch(nl)->n == 0)
		return;
	if (!nl->threaded) {
		send_batch(nl, cur_batch(nl));
		nl->filled++;
		nl->sent++;
		return;
	}
	pthread_mutex_lock(&nl->mu);
	nl->filled++;
	pthread_cond_signal(&nl->cv_work);
	pthread_mutex_unlock(&nl->mu);
}

static void errq_push(struct ctnl *nl, const struct pend *p, int err)
{
	if (nl->errq_n == nl->errq_cap) {
		size_t cap = nl->errq_cap ? 2 * nl->errq_cap : BATCH_MAX;
		struct inj_err *q = realloc(nl->errq, cap * sizeof(*q));
		if (!q)
			return;         /* counted in the stats, not reported */
		nl->errq = q;
		nl->errq_cap = cap;
	}
	nl->errq[nl->errq_n].p = *p;
	nl->errq[nl->errq_n++].err = err;
}

/* Take back the oldest batch handed to the sender (waiting for it if it is
 * still in flight): count it, queue its errors for report_errors(). */
static void reclaim_one(struct ctnl *nl)
{
	if (nl->threaded) {
		pthread_mutex_lock(&nl->mu);
		while (nl->sent == nl->reclaimed)
			pthread_cond_wait(&nl->cv_done, &nl->mu);
		pthread_mutex_unlock(&nl->mu);
	}
	struct batch *b = &nl->bt[nl->reclaimed % NBATCH];
	nl->st.batches++;
	if (b->send_err) {
		if (!nl->send_err)
			nl->send_err = b->send_err;
		for (unsigned i = 0; i < b->n; i++)
			nl->st.inject_errors[b->pending[i].op]++;
	}
	for (unsigned i = 0; i < b->nerr; i++) {
		const struct pend *p = &b->pending[b->err_idx[i]];
		if (p->is_exp)
			nl->st.exp_errors++;
		else
			nl->st.inject_errors[p->op]++;
		errq_push(nl, p, b->err_val[i]);
	}
	b->n = 0;
	b->len = 0;
	nl->reclaimed++;
}

/* Hand the queued errors to the callbacks, which may queue retries (and so
 * reclaim more batches, whose errors join the queue and are handed on by
 * this same loop). */
static void report_errors(struct ctnl *nl)
{
	if (nl->reporting)
		return;
	nl->reporting = true;
	while (nl->errq_head < nl->errq_n) {
		struct inj_err e = nl->errq[nl->errq_head++];
		if (e.p.is_exp && nl->cfg.on_exp_error)
			nl->cfg.on_exp_error(nl->cfg.arg, e.p.op, &e.p.exp, e.err);
		else if (!e.p.is_exp && nl->cfg.on_error)
			nl->cfg.on_error(nl->cfg.arg, e.p.op, &e.p.ct, e.err);
	}
	nl->errq_head = nl->errq_n = 0;
	nl->reporting = false;
}

int ctnl_inject_flush(struct ctnl *nl)
{
	submit(nl);
	while (nl->reclaimed < nl->filled)
		reclaim_one(nl);
	/* retries the callbacks queue wait for the next flush */
	report_errors(nl);
	int err = nl->send_err;
	nl->send_err = 0;
	return err;
}

/* The next slot of the batch being filled (handing it to the sender first
 * when it is full); *seq gets the message's sequence number. */
static void *batch_slot(struct ctnl *nl, enum ctnl_op op, bool is_exp, uint32_t *seq)
{
	for (;;) {
		if (cur_batch(nl)->n == BATCH_MAX)
			submit(nl);
		while (nl->filled - nl->reclaimed >= nl->nbatch)
			reclaim_one(nl);
		if (nl->reporting || nl->errq_head == nl->errq_n)
			break;
		report_errors(nl);            /* which may fill the batch: look again */
	}
	struct batch *b = cur_batch(nl);
	if (b->n == 0)
		b->seq0 = nl->seq + 1;
	*seq = ++nl->seq;
	b->pending[b->n].op = op;
	b->pending[b->n].is_exp = is_exp;
	return b->buf + b->len;
}

int ctnl_inject(struct ctnl *nl, enum ctnl_op op, const struct ct *ct)
{
	uint32_t seq;
	void *at = batch_slot(nl, op, false, &seq);
	struct batch *b = cur_batch(nl);

	b->pending[b->n].ct = *ct;
	b->len += ctnl_build(at, op, ct, nl->cfg.tcp_liberal && op != CTNL_OP_DELETE, seq);
	b->n++;
	nl->st.injected[op]++;
	return 0;
}

int ctnl_inject_exp(struct ctnl *nl, enum ctnl_op op, const struct exp *e)
{
	uint32_t seq;
	void *at = batch_slot(nl, op, true, &seq);
	struct batch *b = cur_batch(nl);

	b->pending[b->n].exp = *e;
	b->len += ctnl_exp_build(at, op, e, seq);
	b->n++;
	nl->st.exp_injected++;
	return 0;
}

void ctnl_inject_stop(struct ctnl *nl)
{
	pthread_mutex_lock(&nl->mu);
	nl->stop = true;
	pthread_cond_signal(&nl->cv_work);
	pthread_mutex_unlock(&nl->mu);
	pthread_join(nl->thr, NULL);        /* it sends what it was handed first */
	nl->threaded = false;
	nl->nbatch = 1;
}

int ctnl_inject_thread(struct ctnl *nl, bool on)
{
	if (on == nl->threaded)
		return 0;
	if (!on) {
		int err = ctnl_inject_flush(nl);
		ctnl_inject_stop(nl);
		return err;
	}
	/* signals stay with the main thread (the event loop's handlers) */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	nl->stop = false;
	int err = pthread_create(&nl->thr, NULL, sender, nl);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		return -err;
	nl->threaded = true;
	nl->nbatch = NBATCH;
	return 0;
}

