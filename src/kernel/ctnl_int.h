/*
 * ctnl_int.h — what ctnl.c (sockets, events, dumps) and ctnl_inject.c
 * (batched injection, the sending thread) share.  Not for use outside
 * src/kernel/.
 */
#ifndef CTSYNC_KERNEL_CTNL_INT_H
#define CTSYNC_KERNEL_CTNL_INT_H

#include <pthread.h>

#include <libmnl/libmnl.h>

#include "kernel/ctnl.h"

#define BATCH_MAX    64         /* messages per sendmsg: the kernel's sweet spot */
#define RECV_BUF     (64 * 1024)
#define EV_SLOTS     32         /* events per recvmmsg() */
#define EV_SLOT      8192       /* an event is a few hundred bytes */
#define NBATCH       4          /* batches in the ring while a thread sends */

/* A message of a batch, kept for the error report. */
struct pend {
	enum ctnl_op op;
	bool is_exp;
	struct ct ct;
	struct exp exp;
};

struct inj_err {
	struct pend p;
	int err;
};

struct batch {
	char *buf;
	size_t len;
	unsigned n;
	uint32_t seq0;
	/* written by whoever sent it */
	int send_err;
	unsigned nerr;
	uint8_t err_idx[BATCH_MAX];
	int err_val[BATCH_MAX];
	struct pend pending[BATCH_MAX];
};

struct ctnl {
	/* events; dumps (one at a time, read in slices); injections; and
	 * single GETs, on a socket of their own so that a GET asked from an
	 * event callback never has to read a dump under way first */
	struct mnl_socket *ev, *dump, *inj, *get;
	uint32_t inj_portid;
	uint32_t dump_seq;              /* a dump under way */
	bool own_filtered;              /* the kernel drops our own events */
	struct ctnl_config cfg;
	struct ctnl_stats st;
	uint32_t seq;
	/* Batches go round a ring: bt[filled % n] is being filled; those from
	 * reclaimed to filled were handed to the sender (the sending thread,
	 * or ctnl_inject_flush itself), those below sent are back from the
	 * kernel.  Only the main thread touches filled, reclaimed and the
	 * batch being filled; sent and the batches in flight are shared with
	 * the sending thread under mu. */
	struct batch bt[NBATCH];
	unsigned nbatch;                /* 1, or NBATCH while a thread sends */
	uint64_t filled, sent, reclaimed;
	int send_err;                   /* first sendmsg error since the last flush */
	/* errors of reclaimed batches, handed to the callbacks in order */
	struct inj_err *errq;
	size_t errq_n, errq_head, errq_cap;
	bool reporting;
	bool threaded;
	bool stop;
	pthread_t thr;
	pthread_mutex_t mu;
	pthread_cond_t cv_work, cv_done;
	char rbuf[RECV_BUF];
	char inj_rbuf[RECV_BUF];        /* the sender's: errors of a batch */
	char get_rbuf[16384];           /* a GET's answer: one entry and an ACK */
	char evbuf[EV_SLOTS][EV_SLOT];
	struct ct evct[EV_SLOTS];       /* the entries of evbuf, parsed */
};


/* ctnl_inject.c: stop the sending thread without reporting (closing). */
void ctnl_inject_stop(struct ctnl *nl);

#endif
