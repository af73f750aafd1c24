# ctsync — see README.md.  `make`, `make check`, `make demo`, `make deps`.
CC      ?= cc
ifeq ($(SANITIZE),1)
BUILD   ?= build/asan
else
BUILD   ?= build
endif
CFLAGS  ?= -O2 -g
WARN     = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wno-unused-parameter
CPPFLAGS += -D_GNU_SOURCE -Isrc
ifeq ($(SANITIZE),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif

# libev ships no pkg-config file on Debian 12: fall back to plain -lev.
PKGS     = libmnl libconfig
LIBS_D   = $(shell pkg-config --libs $(PKGS) 2>/dev/null) \
           $(shell pkg-config --libs libev 2>/dev/null || echo -lev)
CFLAGS_D = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)

KERNEL_SRC  = src/kernel/ctnl.c src/kernel/ct.c
SYNC_SRC    = src/sync/codec.c src/sync/table.c src/sync/exps.c src/sync/ring.c src/sync/reorder.c src/sync/repl.c src/sync/recv.c src/sync/repl_exp.c
CLUSTER_SRC = src/cluster/transport.c
DAEMON_SRC  = src/daemon/config.c src/daemon/control.c src/daemon/log.c src/daemon/main.c
CORE_SRC    = $(KERNEL_SRC) $(SYNC_SRC) $(CLUSTER_SRC) src/daemon/config.c src/daemon/log.c

obj = $(patsubst src/%.c,$(BUILD)/obj/%.o,$(1))

all: $(BUILD)/ctsyncd $(BUILD)/ctsyncctl $(BUILD)/ctsync-testtool $(BUILD)/ctsync-ctgen

$(BUILD)/obj/%.o: src/%.c $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(CFLAGS_D) $(WARN) -c -o $@ $<

$(BUILD)/ctsyncd: $(call obj,$(KERNEL_SRC) $(SYNC_SRC) $(CLUSTER_SRC) $(DAEMON_SRC))
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_D)

$(BUILD)/ctsyncctl: $(call obj,src/ctl/ctsyncctl.c)
	$(CC) $(LDFLAGS) -o $@ $^

$(BUILD)/ctsync-testtool: tests/tools/testtool.c
	@mkdir -p $(BUILD)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -o $@ $< $(LDFLAGS)

# Synthetic flow generator for the cluster tests: written against
# libnetfilter_conntrack on purpose, so that the flows it creates do not
# pass through our own ctnetlink encoder.
$(BUILD)/ctsync-ctgen: tests/tools/ctgen.c
	@mkdir -p $(BUILD)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) $(shell pkg-config --cflags libnetfilter_conntrack) \
	    -o $@ $< $(LDFLAGS) $(shell pkg-config --libs libnetfilter_conntrack libmnl)

UNIT_TESTS = test_codec test_table test_buffers test_ctnl test_config test_repl
UNIT_BINS  = $(addprefix $(BUILD)/tests/,$(UNIT_TESTS))

$(BUILD)/tests/%: tests/unit/%.c $(call obj,$(CORE_SRC))
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(CFLAGS_D) $(WARN) -Wno-missing-prototypes \
	    -o $@ $^ $(LDFLAGS) $(LIBS_D) $(shell pkg-config --libs cmocka)

deps:
	@bash scripts/deps.sh

unit: deps all $(UNIT_BINS)
	@bash tests/run-unit.sh $(UNIT_BINS)

check: deps
	@$(MAKE) --no-print-directory all $(UNIT_BINS)
	@$(MAKE) --no-print-directory clang-build
	@BUILD=$(abspath $(BUILD)) bash tests/run-all.sh $(UNIT_BINS)

# The same sources must build warning-free under clang too.
clang-build:
	@if command -v clang >/dev/null; then \
	    $(MAKE) --no-print-directory -s CC=clang BUILD=$(BUILD)/clang SANITIZE= \
	        $(BUILD)/clang/ctsyncd $(BUILD)/clang/ctsyncctl && echo "clang build: ok"; fi

demo: deps all
	@bash scripts/demo.sh

clean:
	rm -rf $(BUILD)

.PHONY: all deps unit check demo clean clang-build
