/*
 * ctnl_msg.h — one ctnetlink message to or from a struct ct or struct exp.
 * Parsing reads every attribute through a bounds-checked walk (each within
 * its parent, fixed-size ones of exactly their size, unknown types
 * skipped); a malformed attribute fails the message.  Building works in the
 * caller's buffer.  No socket: this is what fuzz_ctnl drives.
 */
#ifndef CTSYNC_KERNEL_CTNL_MSG_H
#define CTSYNC_KERNEL_CTNL_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernel/ct.h"
#include "kernel/exp.h"

enum ctnl_op {
	CTNL_OP_CREATE,         /* NEW with CREATE|EXCL, NAT set up from the tuples */
	CTNL_OP_UPDATE,         /* NEW without CREATE; NAT can't change */
	CTNL_OP_DELETE,
};

/* What a message read from the kernel says of its entry. */
enum ctnl_event {
	CTNL_EV_NEW,
	CTNL_EV_UPDATE,
	CTNL_EV_DESTROY,
	CTNL_EV_DUMP,           /* an entry read by a dump */
};

/* The largest message built (buffers for ctnl_build hold this much). */
#define CTNL_MSG_MAX 1024

/* A conntrack message (event, dump entry) into *ct.  0 or -EINVAL. */
int ctnl_parse(const void *nlh, size_t len, struct ct *ct);
/* Build one message at buf (CTNL_MSG_MAX bytes).  Returns its length. */
size_t ctnl_build(void *buf, enum ctnl_op op, const struct ct *ct, bool liberal,
		  uint32_t seq);
/* The same for expectations. */
int ctnl_exp_parse(const void *nlh, size_t len, struct exp *e);
size_t ctnl_exp_build(void *buf, enum ctnl_op op, const struct exp *e, uint32_t seq);

#endif
