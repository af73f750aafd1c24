#!/usr/bin/env bash
# bench/transports.sh — ctsyncd's transports side by side on three nodes:
# UDP unicast, UDP multicast and corosync CPG (docs/BENCHMARKS.md).  Three
# firewall namespaces on a sync bridge (tests/cluster/lib.sh, NFW=3; with
# cpg a corosync in each); bench/ctload.c makes FLOWS flows on fw1 through
# batched ctnetlink, and fw2 and fw3 inject them (inject immediate).
#
#   bench/transports.sh [FLOWS [REPS [TRANSPORTS]]]   (1000000 3 "udp multicast4 cpg")
#
# Per transport and repetition:
#   gen_rate   flows/s creating FLOWS on fw1 with the daemons running
#   lag_s      last creation on fw1 -> fw2 and fw3 both hold all FLOWS
#   rate       FLOWS / (first creation -> both hold all): end-to-end flows/s
#   missing    flows fw2 and fw3 lacked together when the wait gave up
#   cpu_tx     fw1's daemon, CPU-seconds per 100,000 flows
#   cpu_rx     fw2's daemon, the same
#   cpu_coro   fw1's corosync (cpg only), the same: CPG's own share
# Results: bench/results/transports-latest.txt (raw), a table on stdout.
# BENCH_CHECK=1: exit 1 if a figure is missing or a flow was lost.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
export BUILD=${BUILD:-$TOP/build}
FLOWS=${1:-1000000}
REPS=${2:-3}
TRANSPORTS=${3:-udp multicast4 cpg}
NFW=3
. "$TOP/tests/cluster/lib.sh"
B=$BUILD
LOAD=$B/ctsync-ctload
OUT=${BENCH_OUT:-$TOP/bench/results/transports-latest.txt}
for tr in $TRANSPORTS; do
	case $tr in udp|multicast4|multicast6|cpg) ;; *) say "no transport '$tr'"; exit 2;; esac
done
mkdir -p "$(dirname "$OUT")"
: > "$OUT"
preflight
[ -x "$LOAD" ] || { say "missing $LOAD: make all"; exit 1; }

# the conntrack table is global to every namespace: three copies of FLOWS
. "$TOP/bench/limits.sh"
raise_limits $(( 3 * FLOWS + 100000 ))

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
count() { nsx "$1" "$LOAD" count; }
rec() { printf '%s %s %s %s\n' "$1" "$2" "$3" "$4" >> "$OUT"; }
per_100k() { awk -v t="$1" -v hz="$(getconf CLK_TCK)" -v n="$FLOWS" \
	'BEGIN { printf "%.3f", t / hz / n * 100000 }'; }

topology
for tr in $TRANSPORTS; do
	TRANSPORT=$tr
	for r in $(seq 1 "$REPS"); do
		for i in $FWS; do nsx "$P-fw$i" conntrack -F >/dev/null 2>&1; done
		start_daemons || { say "daemons did not start over $tr"; exit 1; }
		b2=$(count "$NS_FW2"); b3=$(count "$P-fw3")
		c1=$(cpu_ticks "${DAEMON_PID[0]}"); c2=$(cpu_ticks "${DAEMON_PID[1]}")
		[ "$tr" = cpg ] && k1=$(cpu_ticks "${COROSYNC_PID[0]}")
		ip netns exec "$NS_FW2" "$LOAD" wait $((b2 + FLOWS)) 300 >"$T/w2" &
		w2=$!
		ip netns exec "$P-fw3" "$LOAD" wait $((b3 + FLOWS)) 300 >"$T/w3" &
		w3=$!
		start_ns=$(date +%s%N)
		out=$(nsx "$NS_FW1" "$LOAD" create "$FLOWS" 0)
		end=$(kv end_ns "$out")
		rec "$tr" "$r" gen_rate "$(kv rate "$out")"
		wait "$w2"; wait "$w3"
		a2=$(kv at_ns "$(cat "$T/w2")"); a3=$(kv at_ns "$(cat "$T/w3")")
		if [ -n "$a2" ] && [ -n "$a3" ]; then
			last=$(( a2 > a3 ? a2 : a3 ))
			rec "$tr" "$r" lag_s "$(awk -v a="$last" -v b="$end" 'BEGIN { printf "%.3f", (a - b) / 1e9 }')"
			rec "$tr" "$r" rate "$(awk -v a="$last" -v b="$start_ns" -v n="$FLOWS" 'BEGIN { printf "%.0f", n / ((a - b) / 1e9) }')"
			rec "$tr" "$r" missing 0
		else
			rec "$tr" "$r" missing $(( 2 * FLOWS + b2 + b3 - $(count "$NS_FW2") - $(count "$P-fw3") ))
		fi
		rec "$tr" "$r" cpu_tx "$(per_100k $(( $(cpu_ticks "${DAEMON_PID[0]}") - c1 )))"
		rec "$tr" "$r" cpu_rx "$(per_100k $(( $(cpu_ticks "${DAEMON_PID[1]}") - c2 )))"
		[ "$tr" = cpg ] && rec "$tr" "$r" cpu_coro "$(per_100k $(( $(cpu_ticks "${COROSYNC_PID[0]}") - k1 )))"
		stop_daemons
		for i in $FWS; do
			[ -n "${COROSYNC_PID[$((i - 1))]:-}" ] && kill_corosync "$i"
		done
		say "  $tr #$r: $(grep "^$tr $r " "$OUT" | cut -d' ' -f3- | tr '\n' ' ')"
	done
done

python3 - "$OUT" "${BENCH_CHECK:-0}" "$TRANSPORTS" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
check, trs = sys.argv[2] == "1", sys.argv[3].split()
keys = ["gen_rate", "lag_s", "rate", "missing", "cpu_tx", "cpu_rx", "cpu_coro"]
bad = False
print("%-10s" % "" + "".join("%-24s" % t for t in trs))
for k in keys:
    line = "%-10s" % k
    for t in trs:
        v = [float(r[3]) for r in rows if r[0] == t and r[2] == k]
        if not v:
            line += "%-24s" % "-"
            if check and not (k == "cpu_coro" and t != "cpg"):
                bad = True
            continue
        cell = "%g (%g-%g)" % (statistics.median(v), min(v), max(v)) if len(v) > 1 else "%g" % v[0]
        line += "%-24s" % cell
        if check and k == "missing" and max(v) > 0:
            bad = True
    print(line)
sys.exit(1 if bad else 0)
EOF
rc=$?
[ "$rc" = 0 ] || FAILED=1
exit $rc
