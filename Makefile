# ctsync — see README.md.  `make`, `make check`, `make demo`, `make deps`.
SHELL   := /bin/bash
CC      ?= cc
ifeq ($(SANITIZE),1)
BUILD   ?= build/asan
else
BUILD   ?= build
endif
CFLAGS  ?= -O2 -g
WARN     = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wno-unused-parameter
# the release: one place (VERSION); NEWS and debian/changelog say the same
VERSION := $(shell cat VERSION 2>/dev/null || echo unknown)
CPPFLAGS += -D_GNU_SOURCE -Isrc -pthread -DCTSYNC_VERSION='"$(VERSION)"'
LDFLAGS  += -pthread
ifeq ($(SANITIZE),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif

# libev ships no pkg-config file on Debian 12: fall back to plain -lev.
PKGS     = libmnl libconfig libcrypto libcpg libcmap libquorum libnftables libnftnl
LIBS_D   = $(shell pkg-config --libs $(PKGS) 2>/dev/null) \
           $(shell pkg-config --libs libev 2>/dev/null || echo -lev)
CFLAGS_D = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)

KERNEL_SRC  = src/kernel/ctnl.c src/kernel/ctnl_inject.c src/kernel/ctnl_msg.c src/kernel/ct.c src/kernel/exp.c \
              src/kernel/nftb.c src/kernel/nfq.c src/kernel/nfq_rules.c
SYNC_SRC    = src/sync/link.c src/sync/policy.c src/sync/bucket.c src/sync/codec.c src/sync/seal.c src/sync/keyfile.c src/sync/table.c src/sync/natuse.c src/sync/keyset.c src/sync/exps.c src/sync/ring.c src/sync/reorder.c src/sync/repl.c src/sync/repl_tx.c src/sync/repl_dump.c src/sync/repl_own.c src/sync/repl_quorum.c src/sync/repl_defer.c src/sync/repl_rx.c src/sync/repl_expect.c src/sync/repl_filter.c src/sync/epoch.c
CLUSTER_SRC = src/cluster/transport.c src/cluster/transport_cpg.c
DAEMON_SRC  = src/daemon/config.c src/daemon/control.c src/daemon/render.c src/daemon/metrics.c \
              src/daemon/counters.c src/daemon/service.c src/util/log.c src/util/strbuf.c \
              src/daemon/hold.c src/daemon/keys.c src/daemon/main.c
CORE_SRC    = $(KERNEL_SRC) $(SYNC_SRC) $(CLUSTER_SRC) src/daemon/config.c src/daemon/control.c \
              src/daemon/render.c src/daemon/metrics.c src/daemon/counters.c src/util/log.c \
              src/util/strbuf.c

obj = $(patsubst src/%.c,$(BUILD)/obj/%.o,$(1))

all: $(BUILD)/ctsyncd $(BUILD)/ctsyncctl $(BUILD)/ctsync-testtool $(BUILD)/ctsync-ctgen \
     $(BUILD)/ctsync-ctload

# the files that print the release are rebuilt when it changes
$(call obj,src/daemon/metrics.c src/daemon/render.c src/daemon/main.c src/ctl/ctsyncctl.c \
	src/sync/repl_tx.c): VERSION

$(BUILD)/obj/%.o: src/%.c $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(CFLAGS_D) $(WARN) -c -o $@ $<

$(BUILD)/ctsyncd: $(call obj,$(KERNEL_SRC) $(SYNC_SRC) $(CLUSTER_SRC) $(DAEMON_SRC))
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_D)

$(BUILD)/ctsyncctl: $(call obj,src/ctl/ctsyncctl.c src/ctl/import.c src/sync/keyfile.c)
	$(CC) $(LDFLAGS) -o $@ $^

$(BUILD)/ctsync-testtool: tests/tools/testtool.c
	@mkdir -p $(BUILD)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -o $@ $< $(LDFLAGS) $(shell pkg-config --libs libnftables)

# Synthetic flow generator for the cluster tests: written against
# libnetfilter_conntrack on purpose, so that the flows it creates do not
# pass through our own ctnetlink encoder.
$(BUILD)/ctsync-ctgen: tests/tools/ctgen.c
	@mkdir -p $(BUILD)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) $(shell pkg-config --cflags libnetfilter_conntrack) \
	    -o $@ $< $(LDFLAGS) $(shell pkg-config --libs libnetfilter_conntrack libmnl)

# Benchmark load generator (bench/): batched ctnetlink, no event socket.
$(BUILD)/ctsync-ctload: bench/ctload.c
	@mkdir -p $(BUILD)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -o $@ $< $(LDFLAGS) $(shell pkg-config --libs libmnl)

UNIT_TESTS = test_policy test_epoch test_control test_transport test_bucket test_codec test_table test_buffers test_ctnl test_config test_repl test_repl_nodes test_leases test_seal
UNIT_BINS  = $(addprefix $(BUILD)/tests/,$(UNIT_TESTS))

# tests/sim.c: the simulated cluster of the engine's tests and the fuzzers
$(BUILD)/obj/tests/sim.o: tests/sim.c tests/sim.h $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(CFLAGS_D) $(WARN) -c -o $@ $<

$(BUILD)/obj/tests/json_check.o: tests/json_check.c tests/json_check.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(call obj,$(CORE_SRC)) $(BUILD)/obj/tests/sim.o \
		$(BUILD)/obj/tests/json_check.o
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests $(CFLAGS) $(CFLAGS_D) $(WARN) -Wno-missing-prototypes \
	    -o $@ $^ $(LDFLAGS) $(LIBS_D) $(shell pkg-config --libs cmocka)

deps:
	@bash scripts/deps.sh

# The unit tests under valgrind memcheck: any error or leak fails.
valgrind: deps $(UNIT_BINS)
	@for t in $(UNIT_BINS); do \
	    valgrind -q --suppressions=tests/valgrind.supp --leak-check=full --show-leak-kinds=definite,indirect,possible \
	        --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=9 \
	        $$t >/dev/null 2>$(BUILD)/tests/valgrind.log || \
	        { echo "valgrind: $$t failed"; cat $(BUILD)/tests/valgrind.log; exit 1; }; \
	    echo "valgrind: $$(basename $$t): no error, no leak"; \
	done

unit: deps all $(UNIT_BINS)
	@bash tests/run-unit.sh $(UNIT_BINS)

check: deps
	@$(MAKE) --no-print-directory all $(UNIT_BINS)
ifneq ($(SANITIZE),1)
	@# independent: the clang build beside the unit tests under valgrind
	@$(MAKE) --no-print-directory -j2 clang-build valgrind
else
	@$(MAKE) --no-print-directory clang-build
	@echo "valgrind: skipped under SANITIZE=1 (ASan binaries cannot run under valgrind)"
endif
	@BUILD=$(abspath $(BUILD)) bash tests/run-all.sh $(UNIT_BINS)

# The same sources must build warning-free under clang too.
clang-build:
	@if command -v clang >/dev/null; then \
	    $(MAKE) --no-print-directory -s CC=clang BUILD=$(BUILD)/clang SANITIZE= \
	        $(BUILD)/clang/ctsyncd $(BUILD)/clang/ctsyncctl && echo "clang build: ok"; fi

# libFuzzer targets (clang): every decoder of untrusted input.  Each runs
# FUZZ_SECONDS (default 60) from its seed corpus in fuzz/corpus/TARGET; the
# corpus grown in the run is kept in $(BUILD)/fuzz/corpus-TARGET.
FUZZ_TARGETS = fuzz_frame fuzz_control fuzz_config fuzz_ctnl
FUZZ_SECONDS ?= 60
FUZZ_CORE    = $(filter-out src/daemon/main.c,$(KERNEL_SRC) $(SYNC_SRC) $(CLUSTER_SRC) $(DAEMON_SRC))
FUZZ_FLAGS   = -O1 -g -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer

$(BUILD)/fuzz/%: fuzz/%.c fuzz/harness.c tests/sim.c tests/json_check.c $(FUZZ_CORE) $(wildcard src/*/*.h) fuzz/harness.h \
		tests/sim.h
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) $(FUZZ_FLAGS) $(CFLAGS_D) -Ifuzz -Itests -o $@ $< fuzz/harness.c tests/sim.c \
	    tests/json_check.c \
	    $(FUZZ_CORE) \
	    $(LIBS_D)

# (Re)write the seed corpora of frames and control requests; configs are
# copied from conf/ and tests/.
fuzz-seeds: $(call obj,src/sync/codec.c src/kernel/ct.c src/kernel/ctnl_msg.c)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(CFLAGS_D) -o $(BUILD)/fuzz-seeds fuzz/seeds.c $^ $(LIBS_D)
	$(BUILD)/fuzz-seeds
	mkdir -p fuzz/corpus/fuzz_config
	cp conf/ctsyncd.conf fuzz/corpus/fuzz_config/example.conf
	cp tests/cluster/data/three-mistakes.conf fuzz/corpus/fuzz_config/

fuzz: deps $(addprefix $(BUILD)/fuzz/,$(FUZZ_TARGETS))
	@for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(BUILD)/fuzz/corpus-$$t; \
	    echo "== $$t ($(FUZZ_SECONDS) s)"; \
	    LSAN_OPTIONS=suppressions=$(abspath fuzz/lsan.supp) \
	    $(BUILD)/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	        -max_len=4096 -artifact_prefix=$(BUILD)/fuzz/$$t- \
	        $(BUILD)/fuzz/corpus-$$t fuzz/corpus/$$t 2>&1 | \
	        grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+[[:space:]]+DONE)|ERROR|SUMMARY' ; \
	    test $${PIPESTATUS[0]} -eq 0 || exit 1; \
	done

# make install [PREFIX=/usr] [DESTDIR=...]: binaries, man pages, the example
# configuration, the systemd unit, the keepalived scripts and the OCF agent.
PREFIX      ?= /usr
SBINDIR     ?= $(PREFIX)/sbin
MANDIR      ?= $(PREFIX)/share/man
SYSCONFDIR  ?= /etc
UNITDIR     ?= $(PREFIX)/lib/systemd/system
LIBDIR_CT   ?= $(PREFIX)/lib/ctsync
OCFDIR      ?= $(PREFIX)/lib/ocf/resource.d/ctsync
DOCDIR      ?= $(PREFIX)/share/doc/ctsync

install: $(BUILD)/ctsyncd $(BUILD)/ctsyncctl
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(UNITDIR) $(DESTDIR)$(LIBDIR_CT)/keepalived $(DESTDIR)$(OCFDIR) \
	    $(DESTDIR)$(DOCDIR)
	install -d -m 750 $(DESTDIR)$(SYSCONFDIR)/ctsyncd
	install -m 755 $(BUILD)/ctsyncd $(BUILD)/ctsyncctl $(DESTDIR)$(SBINDIR)/
	install -m 644 man/ctsyncd.8 man/ctsyncctl.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 644 man/ctsyncd.conf.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 640 conf/ctsyncd.conf $(DESTDIR)$(SYSCONFDIR)/ctsyncd/ctsyncd.conf.example
	sed -e 's|/usr/sbin/|$(SBINDIR)/|g' -e 's|/etc/ctsyncd/|$(SYSCONFDIR)/ctsyncd/|g' \
	    scripts/systemd/ctsyncd.service > $(DESTDIR)$(UNITDIR)/ctsyncd.service
	chmod 644 $(DESTDIR)$(UNITDIR)/ctsyncd.service
	install -m 755 scripts/keepalived/ctsync-notify scripts/keepalived/ctsync-notify-fifo \
	    $(DESTDIR)$(LIBDIR_CT)/keepalived/
	install -m 644 scripts/keepalived/keepalived.conf.example $(DESTDIR)$(LIBDIR_CT)/keepalived/
	install -m 755 scripts/ocf/ctsyncd $(DESTDIR)$(OCFDIR)/ctsyncd
	install -m 644 README.md NEWS docs/*.md $(DESTDIR)$(DOCDIR)/

# The Debian package (debian/): build/deb/ctsync_VERSION_ARCH.deb, from a
# copy of the tree as from a clean checkout (scripts/deb.sh).
deb: deps
	@bash scripts/deb.sh $(abspath $(BUILD))/deb

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/ctsyncd $(DESTDIR)$(SBINDIR)/ctsyncctl \
	    $(DESTDIR)$(MANDIR)/man8/ctsyncd.8 $(DESTDIR)$(MANDIR)/man8/ctsyncctl.8 \
	    $(DESTDIR)$(MANDIR)/man5/ctsyncd.conf.5 $(DESTDIR)$(UNITDIR)/ctsyncd.service \
	    $(DESTDIR)$(SYSCONFDIR)/ctsyncd/ctsyncd.conf.example $(DESTDIR)$(OCFDIR)/ctsyncd
	rm -rf $(DESTDIR)$(LIBDIR_CT) $(DESTDIR)$(DOCDIR)

# ctsyncd and conntrackd side by side (docs/BENCHMARKS.md): BENCH_FLOWS flows,
# BENCH_REPS repetitions; BENCH_PARTS and BENCH_DAEMONS (bench/bench.sh) run a
# part of it.
BENCH_FLOWS ?= 1000000
BENCH_REPS  ?= 3
bench: deps all
	@BUILD=$(abspath $(BUILD)) bash bench/bench.sh $(BENCH_FLOWS) $(BENCH_REPS)

# ctsyncd's transports side by side on three nodes (udp, multicast, cpg)
bench-transports: deps all
	@BUILD=$(abspath $(BUILD)) bash bench/transports.sh $(BENCH_FLOWS) $(BENCH_REPS)

# active-active: how long the survivors take to own a dead node's flows
bench-takeover: deps all
	@BUILD=$(abspath $(BUILD)) bash bench/takeover.sh $(or $(TAKEOVER_FLOWS),200000) $(BENCH_REPS)

# active-active with SNAT to the shared address: new connections/s
bench-snat: deps all
	@BUILD=$(abspath $(BUILD)) bash bench/snat.sh $(or $(SNAT_CONNECTIONS),3000) $(BENCH_REPS)

# a DNS-like load with and without filter.min_age, beside conntrackd
bench-age: deps all
	@BENCH_PARTS=age BUILD=$(abspath $(BUILD)) bash bench/bench.sh $(or $(AGE_FLOWS),100000) $(BENCH_REPS)

bench-defer: deps all
	@BUILD=$(abspath $(BUILD)) bash bench/defer.sh $(or $(DEFER_CONNECTIONS),2000) $(BENCH_REPS)

# active-active: what renewing the lease (the held set, every heartbeat) costs
$(BUILD)/ctsync-lease-bench: bench/lease.c $(call obj,src/kernel/nftb.c)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(CFLAGS_D) $(WARN) -o $@ $^ $(LIBS_D)
bench-lease: deps $(BUILD)/ctsync-lease-bench
	@$(BUILD)/ctsync-lease-bench

demo: deps all
	@bash scripts/demo.sh

# three firewalls forwarding at once (active-active)
demo-aa: deps all
	@bash scripts/demo-aa.sh

clean:
	rm -rf $(BUILD)

.PHONY: deb all deps unit check demo clean clang-build fuzz fuzz-seeds valgrind install uninstall bench \
	bench-transports bench-takeover bench-snat bench-defer bench-lease bench-age demo-aa
