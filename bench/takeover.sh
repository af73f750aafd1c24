#!/usr/bin/env bash
# bench/takeover.sh — active-active: how long the survivors take to own a
# dead node's flows (docs/BENCHMARKS.md).  Three firewall namespaces
# (tests/cluster/lib.sh, NFW=3) run ctsyncd in sync.mode "active-active";
# bench/ctload.c makes FLOWS flows on fw1 (batched ctnetlink, client
# addresses spread over every bucket); once fw2 and fw3 hold them all,
# fw1's daemon is SIGKILLed and its sync link cut.
#
#   bench/takeover.sh [FLOWS [REPS]]        (50000 3; TRANSPORT=multicast4)
#
# Per repetition:
#   detect_s     the kill -> fw2 logs fw1 dead (heartbeats: 5 x 100 ms here)
#   takeover_s   fw2 logs fw1 dead -> fw2 logs the flows taken over (the walk
#                of its table, the claims, the nftables transaction)
#   owned_s      the kill -> fw2 and fw3 own every flow fw1 had, both
#                agreeing (status polled every 50 ms)
#   taken        flows fw2 and fw3 took over between them (= FLOWS)
#   lapses       leases of fw2 and fw3 that ran out, and quorums they lost,
#                meanwhile (= 0: a takeover must not starve the survivors'
#                own renewals; each would stop forwarding all its buckets)
# Results: bench/results/takeover-latest.txt (raw), a table on stdout.
# BENCH_CHECK=1: exit 1 if a figure is missing or a flow was not taken.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
export BUILD=${BUILD:-$TOP/build}
FLOWS=${1:-50000}
REPS=${2:-3}
NFW=3
: "${TRANSPORT:=multicast4}"
. "$TOP/tests/cluster/lib.sh"
B=$BUILD
LOAD=$B/ctsync-ctload
OUT=${BENCH_OUT:-$TOP/bench/results/takeover-latest.txt}
mkdir -p "$(dirname "$OUT")"
: > "$OUT"
preflight
[ -x "$LOAD" ] || { say "missing $LOAD: make all"; exit 1; }
. "$TOP/bench/limits.sh"
raise_limits $(( 3 * FLOWS + 100000 ))
export SYNC_EXTRA='mode = "active-active";'

in_sync_now() { ctl "$1" status 2>/dev/null | grep -q '^in sync: *yes'; }
js() { ctl "$1" --json status | python3 -c "import json,sys; s=json.load(sys.stdin); print($2)"; }
# HH:MM:SS.mmm of the first log line of fw$1 (after line $2) matching $3
log_at() { tail -n +"$(($2 + 1))" "$T/ctsyncd-fw$1.log" | grep -m1 -- "$3" | cut -d' ' -f1; }
secs() { python3 -c "
import sys
def s(t): h, m, x = t.split(':'); return int(h) * 3600 + int(m) * 60 + float(x)
print('%.3f' % (s(sys.argv[2]) - s(sys.argv[1])))" "$1" "$2"; }

topology
fail_bench=0
for r in $(seq 1 "$REPS"); do
	for i in $FWS; do nsx "$P-fw$i" conntrack -F >/dev/null 2>&1; done
	for i in $FWS; do start_daemon "$i" primary || exit 1; done
	for i in $FWS; do wait_in_sync "$P-fw$i" 20 || { say "fw$i not in sync"; exit 1; }; done
	nsx "$NS_FW1" "$LOAD" create "$FLOWS" $((r * 4000000)) >/dev/null
	for i in 2 3; do
		nsx "$P-fw$i" "$LOAD" wait "$FLOWS" 120 >/dev/null || { say "fw$i lacks flows"; exit 1; }
	done
	wait_in_sync "$NS_FW2" 30 && wait_in_sync "$P-fw3" 30 || { say "not in sync"; exit 1; }
	l2=$(wc -l < "$T/ctsyncd-fw2.log")
	before=$(( $(js "$NS_FW2" 's["flows_local"]') + $(js "$P-fw3" 's["flows_local"]') ))
	t0=$(date +%H:%M:%S.%N | cut -c1-12)
	kill -KILL "${DAEMON_PID[0]}"
	nsx "$NS_FW1" ip link set sync0 down
	owned=
	deadline=$((SECONDS + 60))
	while [ $SECONDS -lt $deadline ]; do
		n=$(( $(js "$NS_FW2" 's["flows_local"]') + $(js "$P-fw3" 's["flows_local"]') ))
		if [ $((n - before)) -ge "$FLOWS" ] && in_sync_now "$NS_FW2" && in_sync_now "$P-fw3"; then
			owned=$(secs "$t0" "$(date +%H:%M:%S.%N | cut -c1-12)")
			break
		fi
		sleep 0.05
	done
	dead=$(log_at 2 "$l2" "peer 1 is dead")
	took=$(log_at 2 "$l2" "flows taken over")
	taken=$(( $(ctstat "$NS_FW2" bucket_takeovers) + $(ctstat "$P-fw3" bucket_takeovers) ))
	lapses=0
	for i in 2 3; do
		lapses=$(( lapses + $(ctstat "$P-fw$i" lease_lapses) + $(ctstat "$P-fw$i" quorum_losses) ))
	done
	det=-; tk=-
	[ -n "$dead" ] && det=$(secs "$t0" "$dead")
	[ -n "$dead" ] && [ -n "$took" ] && tk=$(secs "$dead" "$took")
	printf 'rep %s flows %s detect_s %s takeover_s %s owned_s %s taken %s lapses %s\n' \
		"$r" "$FLOWS" "$det" "$tk" "${owned:--}" "$taken" "$lapses" | tee -a "$OUT"
	{ [ -z "$owned" ] || [ "$taken" -lt "$FLOWS" ] || [ "$det" = - ] || [ "$tk" = - ] ||
	  [ "$lapses" -gt 0 ]; } && fail_bench=1
	kill_daemon 2; kill_daemon 3; wait "${DAEMON_PID[0]}" 2>/dev/null
	DAEMON_PID=()
	nsx "$NS_FW1" ip link set sync0 up
	for i in $FWS; do nsx "$P-fw$i" conntrack -F >/dev/null 2>&1; done
	sleep 0.5
done
python3 - "$OUT" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.startswith('rep ')]
def col(name):
    v = []
    for r in rows:
        if name not in r:
            continue
        x = r[r.index(name) + 1]
        if x != '-':
            v.append(float(x))
    return v
for name in ('detect_s', 'takeover_s', 'owned_s', 'taken', 'lapses'):
    v = col(name)
    if v:
        print('%-11s median %.3f  (%.3f-%.3f)  n=%d' % (name, statistics.median(v), min(v), max(v), len(v)))
EOF
[ "${BENCH_CHECK:-0}" = 1 ] && [ "$fail_bench" = 1 ] && exit 1
exit 0
