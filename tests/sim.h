/*
 * sim.h — a simulated cluster for the replication engine (repl.h): N nodes,
 * each a struct repl driven through repl_ops by a simulated kernel table,
 * joined by a simulated sync link with seeded loss, duplication, delay,
 * reordering, cuts and multicast-like groups.  Time is simulated too, so a
 * run is deterministic.  The unit tests (tests/unit/test_repl.c,
 * test_control.c) and the fuzz harness (fuzz/harness.c) build on it.
 */
#ifndef CTSYNC_TESTS_SIM_H
#define CTSYNC_TESTS_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "sync/repl.h"

/* The simulator's own invariants (not a test's assertions). */
#define SIM_CHECK(x) do { if (!(x)) abort(); } while (0)

#define KMAX 2048
#define QMAX 65536              /* frames in flight, by default */
#define NODES_MAX 3
#define NODES (sim.nnodes)       /* 2, unless a test starts with more */

struct node;

struct simkernel {
	struct ct ct[KMAX];
	bool used[KMAX];
	unsigned n;
	unsigned creates, updates, deletes;
	unsigned exp_ops;               /* expectations injected (any op) */
	/* a key whose create clashes (EEXIST) while no entry has it (ENOENT) */
	bool clash_set;
	struct ct clash;
	struct { enum ctnl_op op; struct ct ct; int err; } errs[256];
	unsigned nerr;
};

struct node {
	int idx;
	uint32_t id;
	struct repl *r;
	struct simkernel k;
	struct sockaddr_storage addr;
	/* a background dump read later from a copy taken when it started, as
	 * the kernel fills a dump's buffers before they are read */
	bool slow_dump;
	struct ct snap[KMAX];
	unsigned snap_n, snap_pos;
	bool snapping;
	bool new_events_off;            /* ops.events_new(false) in force */
	unsigned resume_fails;          /* this many events_new(true) fail */
	unsigned creates_quiet;         /* creates injected while it was */
	bool threaded;                  /* ops.inject_thread(true) in force */
	unsigned creates_threaded;      /* creates injected while it was */
	bool held[64];                  /* active-active: ops.buckets, last said */
	unsigned buckets_calls;
	uint64_t held_at;               /* when: with a lease, held until held_at + lease */
	bool frozen;                    /* SIGSTOPped: no timers, frames wait for it */
};

struct pkt {
	int from, to;
	uint64_t at;                    /* delivery time */
	uint64_t order;                 /* sent before those of higher order */
	size_t len;
	uint8_t data[1500];
};

struct sim {
	struct node n[NODES_MAX];
	int nnodes;
	struct pkt *q;
	unsigned qn, qmax;
	uint64_t now;
	unsigned drop_next;             /* drop this many of the next frames */
	uint64_t sent;                  /* frames queued so far (their order) */
	unsigned dropped, duplicated;
	unsigned overflowed;            /* dropped: qmax frames in flight already */
	unsigned oversize;              /* frames sent larger than frame_size */
	uint64_t last_pn[NODES_MAX];    /* the packet number each node sent last */
	/* what a node's frames say, changed on their way out: the protocol
	 * major in the header (0: as sent), the digest of its heartbeats (XORed) */
	uint8_t major[NODES_MAX];
	uint64_t bend_digest[NODES_MAX];
	/* link model, per frame: loss and duplication in percent, delay 0..max */
	unsigned loss, dup, delay_max;
	bool down;                      /* cut: nothing passes */
	bool cut[NODES_MAX][NODES_MAX]; /* [from][to]: nothing passes that way */
	bool group;                     /* as a multicast group: a frame to one reaches all */
	uint64_t rng;
	/* how sim_start configures a node */
	size_t ring_bytes;              /* 0: 4 MiB */
	uint32_t quiet_min;             /* cfg.commit_quiet_min */
	bool membership;                /* cfg.membership: a transport like CPG */
	bool active_active;             /* cfg.active_active, 64 buckets */
	bool routed;                    /* cfg.routed */
	uint32_t defer_ms;              /* cfg.defer_ms */
	uint32_t lease_ms;              /* cfg.lease_ms (active-active) */
	bool quorum_majority;           /* cfg.quorum_majority (active-active) */
	uint32_t dead_after;            /* cfg.dead_after (0: 3 heartbeats) */
	/* active-active: at every 10 ms step and whenever a node writes its
	 * set, how many buckets sat in two nodes' kernel sets at once (a
	 * stopped node's set stays until its lease runs out, or for ever
	 * without one) */
	unsigned overlaps;              /* buckets seen twice, summed over the looks */
	uint64_t overlap_first;         /* when the first was seen (0: never) */
	bool exp_sync;                  /* cfg.exp_sync */
	size_t frame_size;              /* cfg.frame_size (0: 1472) */
	/* cfg's filters (repl.h "Filters"): tcp_states, min_age_ms, zones, strip */
	struct repl_config filt;
	/* defer: packets let go, and what the peers' kernels held at that moment */
	struct {
		uint64_t cookie[64];
		int peer_state[64];     /* the flow's TCP state on the other node, -1 none */
		unsigned n;
		struct ct watch;        /* the flow looked at */
		int other;              /* the node looked at */
	} rel;
};

extern struct sim sim;

#define AA_SEED 0x63747379u     /* the bucket seed of active-active nodes */

/* A fresh simulation of 2 nodes (set sim.nnodes for more) with room for
 * qmax frames in flight (0: QMAX); 0 or -1. */
int sim_setup(unsigned qmax);
void sim_teardown(void);
/* The same as cmocka fixtures: a fresh simulation; its end, which fails
 * the test when the link ran out of room or a frame was larger than the
 * frame size (control frames included). */
int sim_fixture_setup(void **state);
int sim_fixture_teardown(void **state);
/* A cmocka test on a fresh simulation (in a file that includes cmocka.h). */
#define SIM_TEST(f) cmocka_unit_test_setup_teardown(f, sim_fixture_setup, sim_fixture_teardown)
/* Node idx (id idx + 1) starts, configured from the knobs above. */
void sim_start(int idx, bool primary, bool immediate);
void sim_stop(int idx);
/* Frames in flight from a to b dropped (CPG delivers nothing of a member
 * after the configuration change that removed it). */
void sim_drop_in_flight(int a, int b);
/* Deliver what is due, and flush what that caused. */
void sim_deliver(void);
/* Let time pass in 10 ms steps: polls, heartbeats every 100 ms, deliveries
 * (none to a frozen node: they wait), then the overlap check. */
void sim_run(unsigned ms);
/* Flow i: TCP 198.51.100.10:20000+i -> 203.0.113.10:80, SNAT to 203.0.113.1. */
struct ct sim_flow(uint32_t i);
/* A flow the kernel of node idx creates by itself (and its NEW event). */
void sim_kernel_new(int idx, const struct ct *c);
int sim_kfind(struct simkernel *k, const struct ct *ct);
/* Read up to n entries of a slow background dump; true once it ended. */
bool sim_dump_step(struct node *nd, unsigned n);
void sim_set_addr(struct sockaddr_storage *ss, uint32_t id);
struct repl_peer_status sim_peer_of(int idx, uint32_t id);
bool sim_in_sync(int idx);
/* Active-active: whether bucket b is in node idx's kernel set now (its
 * lease not run out). */
bool sim_forwards(int idx, unsigned b);
uint32_t sim_rnd(void);

#endif
