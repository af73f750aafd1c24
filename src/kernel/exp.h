/*
 * exp.h — one conntrack expectation as ctsync carries it: the connection a
 * helper (FTP, SIP, TFTP, H.323, PPTP) told the kernel to expect, so that
 * after failover the data connection of a session set up on another node is
 * still recognised as RELATED and NATed like its master.
 *
 * Tuples are kept as in struct ct (network order); the NAT part is the
 * saved address/port and direction the NAT helper recorded, and `fn` names
 * the function the kernel applies to the expected connection (for example
 * "nat-follow-master").
 */
#ifndef CTSYNC_KERNEL_EXP_H
#define CTSYNC_KERNEL_EXP_H

#include <stdbool.h>
#include <stdint.h>

#include "kernel/ct.h"

#define EXP_FN_LEN 32

enum {
	EXP_HAS_MASK   = 1u << 0,
	EXP_HAS_NAT    = 1u << 1,
	EXP_HAS_HELPER = 1u << 2,
	EXP_HAS_FN     = 1u << 3,
};

struct exp {
	uint8_t l3;                     /* family of all three tuples */
	uint8_t l4;                     /* protocol of the expected connection */
	uint8_t master_l4;              /* protocol of the master */
	uint8_t nat_l4;
	uint16_t zone;
	uint32_t has;                   /* EXP_HAS_* */
	struct ct_tuple master;         /* the master's original tuple */
	struct ct_tuple tuple, mask;    /* what is expected, which parts matter */
	struct ct_tuple nat;            /* saved source address and port */
	uint32_t nat_dir;
	uint32_t timeout, flags, klass, id;
	char helper[CT_HELPER_LEN];
	char fn[EXP_FN_LEN];
};

/* Same expectation: family, protocol, zone and expected tuple. */
bool exp_key_equal(const struct exp *a, const struct exp *b);
/* The master's key as a struct ct (family, protocol, zone, original tuple). */
void exp_master_key(const struct exp *e, struct ct *key);
int exp_format(const struct exp *e, char *buf, size_t len);

#endif
