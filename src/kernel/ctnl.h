/*
 * ctnl.h — the daemon's conversation with the kernel's conntrack table over
 * ctnetlink (libmnl, no other netlink library).  Sockets, events and dumps
 * are in ctnl.c, batched injection in ctnl_inject.c, the message codec in
 * ctnl_msg.c (ctnl_msg.h).
 *
 * Four sockets, one role each:
 *  - events: subscribed to NEW/UPDATE/DESTROY before the initial dump, so no
 *    change falls between the dump and the first event; large receive buffer;
 *  - dump: full-table reads, synchronous (start-up, overrun recovery) or in
 *    slices from the loop (refresh);
 *  - get: one entry at a time (ctnl_get), apart from any dump under way;
 *  - inject: batched create/update/delete, many messages per sendmsg, no
 *    per-message ACK.  Errors come back as nlmsgerr on the same socket and are
 *    collected after each batch.  A large commit sends from a second thread
 *    (ctnl_inject_thread) while the next batches are built.  Its netlink port id is what lets us tell
 *    our own injections apart from the kernel's own changes: ctnetlink sends
 *    events for a change with nlmsg_pid set to the port that asked for it.
 */
#ifndef CTSYNC_KERNEL_CTNL_H
#define CTSYNC_KERNEL_CTNL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernel/ct.h"
#include "kernel/ctnl_msg.h"
#include "kernel/exp.h"

struct ctnl;

/* Counters: (field, name in `ctsyncctl stats` and metrics).  Every field of
 * struct ctnl_stats is listed: daemon/counters.c refuses to build otherwise. */
#define CTNL_STATS(X) \
	X(events, "kernel_events") \
	X(events_own, "kernel_events_own")      /* caused by our injections */ \
	X(events_bad, "kernel_events_bad") \
	X(overruns, "kernel_overruns") \
	X(discarded, "kernel_events_discarded") \
	X(dumped, "kernel_dumped") \
	X(injected[CTNL_OP_CREATE], "kernel_creates") \
	X(injected[CTNL_OP_UPDATE], "kernel_updates") \
	X(injected[CTNL_OP_DELETE], "kernel_deletes") \
	X(inject_errors[CTNL_OP_CREATE], "kernel_create_errors") \
	X(inject_errors[CTNL_OP_UPDATE], "kernel_update_errors") \
	X(inject_errors[CTNL_OP_DELETE], "kernel_delete_errors") \
	X(batches, "kernel_batches") \
	X(exp_events, "kernel_exp_events") \
	X(exp_injected, "kernel_exp_injected") \
	X(exp_errors, "kernel_exp_errors")

struct ctnl_stats {
	uint64_t events, events_own, events_bad, overruns, discarded;
	uint64_t dumped;
	uint64_t injected[3];           /* per ctnl_op, messages sent */
	uint64_t inject_errors[3];      /* per ctnl_op, errors the kernel returned */
	uint64_t batches;
	uint64_t exp_events, exp_injected, exp_errors;
};

/* `own` is true for events our own inject socket caused. */
typedef void (*ctnl_event_cb)(void *arg, enum ctnl_event ev, const struct ct *ct,
			      bool own);
/* An injected message failed: op, the entry as sent, and -errno. */
typedef void (*ctnl_error_cb)(void *arg, enum ctnl_op op, const struct ct *ct,
			      int err);

typedef void (*ctnl_exp_cb)(void *arg, enum ctnl_event ev, const struct exp *e, bool own);
typedef void (*ctnl_exp_error_cb)(void *arg, enum ctnl_op op, const struct exp *e, int err);

struct ctnl_config {
	size_t event_rcvbuf;            /* bytes; SO_RCVBUFFORCE */
	bool tcp_liberal;               /* inject TCP with BE_LIBERAL set */
	ctnl_event_cb on_event;
	ctnl_error_cb on_error;
	void (*on_dump_done)(void *arg);        /* a dump was read to its end */
	ctnl_exp_cb on_exp;                     /* expectation events (optional) */
	ctnl_exp_error_cb on_exp_error;
	/* Events are read in batches: before a batch is delivered, the entries
	 * the caller will then look up are shown here (optional). */
	void (*on_prefetch)(void *arg, const struct ct *const *cts, unsigned n);
	void *arg;
};

int ctnl_open(struct ctnl **out, const struct ctnl_config *cfg);
void ctnl_close(struct ctnl *nl);
int ctnl_event_fd(const struct ctnl *nl);
/* Read and deliver up to `budget` queued events.  Returns the number read,
 * 0 when none were queued, -ENOBUFS when the kernel dropped events (the queue
 * is then emptied, and the caller must resynchronise with ctnl_dump()), or
 * another -errno. */
int ctnl_event_read(struct ctnl *nl, int budget);
/* Join or leave the NEW event group.  While no socket listens to it the
 * kernel builds no NEW event at all: batched creates ran 1.6-2.6 times as
 * fast without a listener as with one that does not even read
 * (docs/BENCHMARKS.md); the echo of each of our creates would be built only
 * to be dropped by our filter.  NEW events of others are lost meanwhile.
 * (The kernel keeps one listener bitmap per netlink protocol for all
 * namespaces: a listener in another namespace on the same kernel keeps the
 * events being built here.) */
int ctnl_events_new(struct ctnl *nl, bool on);
/* Read the whole table; every entry is delivered as CTNL_EV_DUMP. */
int ctnl_dump(struct ctnl *nl);
/* The same without blocking the loop: start it, then read it in slices of
 * `budget` datagrams when ctnl_dump_fd() is readable.  ctnl_dump_read()
 * returns 1 when the dump is complete, 0 when more is to come, or -errno.
 * -EBUSY from start: a dump is already under way. */
int ctnl_dump_start(struct ctnl *nl);
int ctnl_dump_read(struct ctnl *nl, int budget, bool wait);
int ctnl_dump_fd(const struct ctnl *nl);
/* Read a dump under way to its end, now (0 also when none is). */
int ctnl_dump_finish(struct ctnl *nl);
/* Read one entry now (by its key), into *out.  0, or -ENOENT / -errno.
 * Safe inside an event or dump callback: a socket and a buffer of its own,
 * and a dump under way is left as it is. */
int ctnl_get(struct ctnl *nl, const struct ct *key, struct ct *out);
/* Queue one message; sends the batch when it is full. */
int ctnl_inject(struct ctnl *nl, enum ctnl_op op, const struct ct *ct);
/* Send what is queued and collect the kernel's errors (waiting for the
 * batches a sending thread has in flight); returns a sendmsg error. */
int ctnl_inject_flush(struct ctnl *nl);
/* Start (true) or stop a thread that sends the batches while the caller
 * builds the next ones (a ring of four: up to three in flight while the
 * fourth is filled), for a commit of many flows: the
 * kernel's work then no longer waits for ours.  Errors are still handed to
 * the callbacks on the caller's thread, from ctnl_inject*() and
 * ctnl_inject_flush().  Stopping flushes first.  0, or -errno if no thread
 * could be started (injection then goes on without one). */
int ctnl_inject_thread(struct ctnl *nl, bool on);
const struct ctnl_stats *ctnl_stats(const struct ctnl *nl);

/* Expectations: queue a create (CTNL_OP_CREATE) or delete in the same batch
 * as the flows, so that a master is created before its expectation. */
int ctnl_inject_exp(struct ctnl *nl, enum ctnl_op op, const struct exp *e);
/* Read every expectation; each is delivered as CTNL_EV_DUMP to on_exp. */
int ctnl_exp_dump(struct ctnl *nl);

#endif
