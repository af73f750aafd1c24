/* fuzz_ctnl — libFuzzer target: one ctnetlink message as the kernel would
 * send it (an event or a dump entry), through our own attribute walk
 * (ctnl_msg.c).  The first byte picks what it is read as: bit 0 an
 * expectation, else a conntrack entry; bits 1-2 the message built again
 * from what was parsed (create or update, liberal TCP).  Whatever parses
 * must build into a message that parses back to the same key: a parser
 * that accepted what the builder cannot express would inject something
 * else than what the kernel reported. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/ctnl_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[CTNL_MSG_MAX];

	if (size < 1)
		return 0;
	uint8_t mode = data[0];
	/* a block of exactly the message's size: ASan sees any overread */
	uint8_t *msg = malloc(size - 1 ? size - 1 : 1);
	if (!msg)
		return 0;
	memcpy(msg, data + 1, size - 1);
	enum ctnl_op op = mode & 2 ? CTNL_OP_UPDATE : CTNL_OP_CREATE;
	if (mode & 1) {
		struct exp e, e2;
		if (ctnl_exp_parse(msg, size - 1, &e) == 0) {
			memset(out, 0, sizeof(out));
			size_t n = ctnl_exp_build(out, CTNL_OP_CREATE, &e, 1);
			if (n > sizeof(out) || ctnl_exp_parse(out, n, &e2) != 0 ||
			    !exp_key_equal(&e, &e2))
				abort();
		}
	} else {
		struct ct ct, ct2;
		if (ctnl_parse(msg, size - 1, &ct) == 0) {
			memset(out, 0, sizeof(out));
			size_t n = ctnl_build(out, op, &ct, mode & 4, 1);
			if (n > sizeof(out) || ctnl_parse(out, n, &ct2) != 0 ||
			    !ct_key_equal(&ct, &ct2))
				abort();
		}
	}
	free(msg);
	return 0;
}
