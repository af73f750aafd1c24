/*
 * exps.h — the expectations this node knows, each with its owner (the owner
 * of its master flow, who advertised it).  A node holds few of them (they
 * live seconds to minutes, one or two per helped session), so a list does.
 */
#ifndef CTSYNC_SYNC_EXPS_H
#define CTSYNC_SYNC_EXPS_H

#include <stdint.h>

#include "kernel/exp.h"

struct exp_entry {
	struct exp_entry *next;
	struct exp e;
	uint32_t owner;
	uint32_t bulk_mark;
	uint64_t pending_since;         /* waiting for its master (ms), 0: not */
	uint8_t in_kernel;
	uint8_t dirty;                  /* 0, or the REC_EXP_* to advertise */
};

struct exps;

struct exps *exps_new(void);
void exps_free(struct exps *x);
struct exp_entry *exps_find(struct exps *x, const struct exp *key);
struct exp_entry *exps_add(struct exps *x, const struct exp *e, uint32_t owner);
void exps_remove(struct exps *x, struct exp_entry *en);      /* and frees it */
/* Visit every entry; fn may remove the entry it is given. */
void exps_foreach(struct exps *x, void (*fn)(void *arg, struct exp_entry *en), void *arg);
unsigned exps_count(const struct exps *x, uint32_t owner);
unsigned exps_total(const struct exps *x);

#endif
