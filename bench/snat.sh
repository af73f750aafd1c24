#!/usr/bin/env bash
# bench/snat.sh — active-active with source NAT to the cluster's shared
# address: new connections per second through three firewalls, with the
# translation as written for one firewall (the ruleset's `snat to
# 203.0.113.1` on every node) and with ctsyncd's blocks of ports
# (nat.snat; docs/BENCHMARKS.md, "SNAT in active-active").
#
#   bench/snat.sh [CONNS [REPS]]        (3000 3)
#
# Modes: plain (the ruleset's snat alone), blocks (nat.snat, the default 16
# blocks: 4,032 ports a node), blocks4 (blocks = 4: 16,128 ports a node).
# Per mode and repetition: NCL (8) clients, each from its own address, open
# CONNS connections one after the other (connect, one line echoed, close;
# a connection not up within 1 s counts as failed) to one server port (a
# new one for every run), the eight at once.  The buckets spread the clients over the three nodes.
#   rate      connections echoed per second, all clients together
#   failed    connections that did not echo (two nodes gave two clients one
#             public port: the server answered one of them)
#   clashes   the daemons' nat_clashes (a peer's record whose mapping this
#             kernel had given to another flow)
#   full      the daemons' nat_block_full (a block full towards the server)
# Results: bench/results/snat-latest.txt (raw), a table on stdout.
# BENCH_CHECK=1: exit 1 if a figure is missing, or with blocks a clash or a
# full block was counted.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
export BUILD=${BUILD:-$TOP/build}
CONNS=${1:-3000}
REPS=${2:-3}
NFW=3
NCL=8
: "${TRANSPORT:=multicast4}"
. "$TOP/tests/cluster/lib.sh"
B=$BUILD
OUT=${BENCH_OUT:-$TOP/bench/results/snat-latest.txt}
mkdir -p "$(dirname "$OUT")"
: > "$OUT"
preflight
topology_shared
. "$TOP/tests/cluster/aa-lib.sh"
export SYNC_EXTRA='mode = "active-active";'
AA_DAEMONS=1
# the clients close first: their TIME_WAIT sockets (60 s) pile up over the
# runs, and without reuse each connect() searched longer for a free port
# (10 ms a connection by the fifth run, whatever the firewalls did)
nsx "$NS_CL" sysctl -qw net.ipv4.tcp_tw_reuse=1

# every run its own server port: the server's TIME_WAIT sockets of one run
# (60 s) must not meet the next run's connections on the same public ports
RUN=0
run() {               # run MODE REP
	local mode=$1 rep=$2 k i t0 t1 e=0 c=0 full=0 line port=$((8100 + RUN))
	RUN=$((RUN + 1))
	bg "$NS_SV" "echo-$port" "$B/ctsync-testtool" tcp-echo "$port"
	sleep 0.2
	if [ "$mode" != plain ]; then
		local nb=16
		[ "$mode" = blocks4 ] && nb=4
		for i in $FWS; do
			export "EXTRA_CONF$i=nat = { snat = ( { address = \"203.0.113.1\"; interface = \"wan0\"; } );
	blocks = $nb; };"
		done
	else
		for i in $FWS; do unset "EXTRA_CONF$i"; done
	fi
	for i in $FWS; do start_daemon "$i" primary || return 1; done
	all_hold 15 || { say "the nodes do not hold every bucket"; return 1; }
	local pids=()
	t0=$(date +%s.%N)
	for k in $(seq 0 $((NCL - 1))); do
		bg "$NS_CL" "conn-$mode-$rep-$k" "$B/ctsync-testtool" tcp-connects 203.0.113.10 "$port" \
			"$CONNS" 1000 "198.51.100.$((10 + k))"
		pids+=("$BG_PID")
	done
	for k in "${pids[@]}"; do wait "$k"; done
	t1=$(date +%s.%N)
	for k in $(seq 0 $((NCL - 1))); do
		line=$(tail -n 1 "$T/conn-$mode-$rep-$k.log")
		e=$((e + $(kv echoed "$line")))
	done
	for i in $FWS; do
		c=$((c + $(ctstat "$P-fw$i" nat_clashes)))
		full=$((full + $(ctstat "$P-fw$i" nat_block_full)))
	done
	python3 -c "
import sys
n, e, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[4]) - float(sys.argv[3])
print('rep %s mode %s conns %d echoed %d failed %d secs %.2f rate %.0f clashes %s full %s' %
      (sys.argv[5], sys.argv[6], n, e, n - e, secs, e / secs, sys.argv[7], sys.argv[8]))" \
		$((NCL * CONNS)) "$e" "$t0" "$t1" "$rep" "$mode" "$c" "$full" | tee -a "$OUT"
	aa_stop_all
	sleep 0.5
}

for r in $(seq 1 "$REPS"); do
	run plain "$r" || exit 1
	run blocks "$r" || exit 1
	run blocks4 "$r" || exit 1
done
python3 - "$OUT" "${BENCH_CHECK:-0}" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.startswith('rep ')]
bad = False
for mode in ('plain', 'blocks', 'blocks4'):
    rs = [r for r in rows if r[r.index('mode') + 1] == mode]
    if not rs:
        bad = True
        continue
    for name in ('rate', 'failed', 'clashes', 'full'):
        v = [float(r[r.index(name) + 1]) for r in rs]
        print('%-7s %-8s median %.0f  (%.0f-%.0f)  n=%d' % (mode, name, statistics.median(v),
                                                             min(v), max(v), len(v)))
        if mode != 'plain' and name in ('clashes', 'full') and max(v) > 0:
            bad = True
sys.exit(1 if bad and sys.argv[2] == '1' else 0)
EOF
exit $?
