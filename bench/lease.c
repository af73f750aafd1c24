/* bench/lease.c — what renewing the active-active lease costs (docs/
 * BENCHMARKS.md): kernel/nftb.c's set written again, as ctsyncd does every
 * heartbeat, in a network namespace of its own; the time per renewal for
 * 64 and 1024 buckets with a third of them held.  Needs root. */
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "kernel/nftb.h"

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(void)
{
	enum { RENEWALS = 1000 };
	if (unshare(CLONE_NEWNET) < 0) {
		perror("unshare (root?)");
		return 1;
	}
	for (unsigned nb = 64; nb <= 1024; nb *= 16) {
		struct nftb *n;
		char err[256];
		uint32_t held[1024];
		if (nftb_open(&n, "ctsync_bench", nb, 7, true, 600, NULL, err, sizeof(err)) < 0) {
			fprintf(stderr, "nftables: %s\n", err);
			return 1;
		}
		for (unsigned i = 0; i < nb; i++)
			held[i] = i;
		double t0 = now();
		for (int i = 0; i < RENEWALS; i++)
			if (nftb_set(n, held, nb / 3, err, sizeof(err)) < 0) {
				fprintf(stderr, "nftables: %s\n", err);
				return 1;
			}
		double us = (now() - t0) / RENEWALS * 1e6;
		printf("buckets=%u held=%u us_per_renewal=%.0f cpu_share_at_200ms=%.3f%%\n", nb,
		       nb / 3, us, us / 2000.0);
		nftb_close(n);
	}
	return 0;
}
