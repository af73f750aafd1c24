#!/usr/bin/env bash
# bench/defer.sh — what defer costs a new flow (docs/BENCHMARKS.md), side by
# side with conntrackd.  Two firewall namespaces (tests/cluster/lib.sh), no
# NAT, a strict ruleset; the client makes N TCP connections one after the
# other (connect, one line echoed, close: ctsync-testtool tcp-connects) to
# the server, over
#   sym   both directions through fw1 (the server's route back is fw1), and
#   asym  SYN through fw1, SYN-ACK and the rest back through fw2,
# with, on both firewalls: nothing; conntrackd 1.4.7 (FTFW, UDP); ctsyncd
# in routed active-active without defer; ctsyncd with defer (20 ms).
#
#   bench/defer.sh [N [REPS]]                (2000 3)
#   DEFER_MS: defer.timeout (20); BENCH_ONLY: the daemons of the first
#   part, of "none conntrackd ctsyncd ctsyncd-defer" (all); BURST (100000)
#
# Per run: connections made and through (echoed), slow ones (set-up over 500 ms: a
# SYN sent again), the set-up time (connect) average and longest, the
# wall time per connection, fw1's daemon CPU per connection, and with
# defer the daemons' own count of the holds and their average.
# Then a burst (not with BENCH_CHECK): BURST new UDP flows (default
# 100,000) sent through fw1 at full speed (ctsync-ctload udp, one datagram
# per flow), with ctsyncd without and with defer: the generator's rate,
# how many first packets fw1's daemon held (the rest passed the full
# queue unheld: FAIL_OPEN), let go acknowledged or at the time-out, and
# the time until fw2 held them all.
# Results: bench/results/defer-latest.txt (raw) and a table on stdout.
# BENCH_CHECK=1 (the smoke run in `make check`): fail unless every
# connection got through where it must (sym, and asym with defer) and none
# where it must not (asym otherwise: the negative controls).
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
export BUILD=${BUILD:-$TOP/build}
N=${1:-2000}
REPS=${2:-3}
. "$TOP/tests/cluster/lib.sh"
. "$TOP/bench/conntrackd.sh"
B=$BUILD
OUT=${BENCH_OUT:-$TOP/bench/results/defer-latest.txt}
mkdir -p "$(dirname "$OUT")"
: > "$OUT"
BURST=${BURST:-100000}
preflight
command -v conntrackd >/dev/null || { say "missing conntrackd: make deps"; exit 1; }
LOAD=$B/ctsync-ctload
[ -x "$LOAD" ] || { say "missing $LOAD: make all"; exit 1; }
. "$TOP/bench/limits.sh"
raise_limits $(( 3 * BURST + 100000 ))
topology
for i in $FWS; do
	nsx "$P-fw$i" nft delete table ip nat
	nsx "$P-fw$i" nft delete table ip6 nat
	nsx "$P-fw$i" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 >/dev/null
done
CPID=()
PORT=8100
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

start_conntrackd() {
	local i
	for i in 1 2; do
		conntrackd_conf "$i" off
		ip netns exec "$P-fw$i" conntrackd -C "$T/conntrackd-$i.conf" >>"$T/conntrackd-$i.out" 2>&1 &
		CPID[$i]=$!
		PIDS+=($!)
	done
	sleep 1.5               # it has no "ready" signal
}
stop_conntrackd() {
	local i
	for i in 1 2; do kill "${CPID[$i]}" 2>/dev/null; wait "${CPID[$i]}" 2>/dev/null; done
	CPID=()
}
start_ctsyncd() {     # start_ctsyncd DEFER(0|1)
	local extra='buckets = { filter = false; };' i
	[ "$1" = 1 ] && extra="$extra defer = { timeout = ${DEFER_MS:-20}; };"
	export SYNC_EXTRA='mode = "active-active";' EXTRA_CONF1=$extra EXTRA_CONF2=$extra
	for i in $FWS; do start_daemon "$i" primary || return 1; done
	wait_in_sync "$NS_FW1" 15
}
paths() {             # paths sym|asym: the server's route back to the client
	nsx "$NS_SV" ip -4 route replace 198.51.100.0/24 via "$([ "$1" = sym ] && echo 203.0.113.1 || echo 203.0.113.3)"
}
daemon_pid() {        # fw1's daemon for DAEMON
	case $1 in conntrackd) echo "${CPID[1]}" ;; ctsyncd*) echo "${DAEMON_PID[0]}" ;; *) echo ;; esac
}

run_one() {           # run_one PATH DAEMON REP
	local path=$1 d=$2 r=$3 pid t0 c0 line wall cpu hold=- held=- hz
	paths "$path"
	case $d in
	none) ;;
	conntrackd) start_conntrackd ;;
	ctsyncd) start_ctsyncd 0 || return 1 ;;
	ctsyncd-defer) start_ctsyncd 1 || return 1 ;;
	esac
	pid=$(daemon_pid "$d")
	# a server port of its own: a failed run's connections are still
	# answered for half a minute, and a client port used again for the
	# same server port would meet that old state
	PORT=$((PORT + 1))
	bg "$NS_SV" "echo-$PORT" "$B/ctsync-testtool" tcp-echo "$PORT"
	local echo_pid=$BG_PID
	sleep 0.2
	c0=0; [ -n "$pid" ] && c0=$(cpu_ticks "$pid")
	t0=$(date +%s%N)
	line=$(nsx "$NS_CL" "$B/ctsync-testtool" tcp-connects 203.0.113.10 "$PORT" "$N" 1500 | tail -n 1)
	wall=$(( ($(date +%s%N) - t0) / 1000 / N ))
	hz=$(getconf CLK_TCK)
	cpu=-; [ -n "$pid" ] && cpu=$(( ($(cpu_ticks "$pid") - c0) * 1000000 / hz / N ))
	local timeouts=- hints=-
	if [ "$d" = ctsyncd-defer ]; then
		held=$(ctstat "$NS_FW1" defer_held)
		[ "${held:-0}" -gt 0 ] && hold=$(( $(ctstat "$NS_FW1" defer_hold_us) / held ))
		timeouts=$(( $(ctstat "$NS_FW1" defer_timeouts) + $(ctstat "$NS_FW2" defer_timeouts) ))
		hints=$(ctstat "$NS_FW1" hints_applied)
	fi
	printf 'path %s daemon %s rep %s n %s connected %s echoed %s slow %s connect_avg_us %s connect_max_us %s wall_us %s cpu_us %s held %s hold_avg_us %s timeouts %s hints %s\n' \
		"$path" "$d" "$r" "$N" "$(kv connected "$line")" "$(kv echoed "$line")" "$(kv slow "$line")" \
		"$(kv connect_avg_us "$line")" "$(kv connect_max_us "$line")" "$wall" "$cpu" \
		"$held" "$hold" "$timeouts" "$hints" | tee -a "$OUT"
	kill "$echo_pid" 2>/dev/null; wait "$echo_pid" 2>/dev/null
	case $d in
	conntrackd) stop_conntrackd ;;
	ctsyncd*) stop_daemons ;;
	esac
	for i in $FWS; do nsx "$P-fw$i" conntrack -F >/dev/null 2>&1; done
}

bad=0
for r in $(seq 1 "$REPS"); do
	for path in sym asym; do
		for d in ${BENCH_ONLY:-none conntrackd ctsyncd ctsyncd-defer}; do
			# nothing and no defer on the asymmetric path: a few tries show it
			n_save=$N
			[ "$path" = asym ] && [ "$d" != ctsyncd-defer ] && N=$(( ${BENCH_CHECK:-0} == 1 ? 2 : 5 ))
			run_one "$path" "$d" "$r" || bad=1
			# BENCH_CHECK: everything through where it should be, nothing where not
			echoed=$(tail -n 1 "$OUT" | tr ' ' '\n' | sed -n '/^echoed$/{n;p}')
			if [ "$path" = sym ] || [ "$d" = ctsyncd-defer ]; then
				[ "$echoed" = "$N" ] || bad=1
			else
				[ "$echoed" = 0 ] || bad=1
			fi
			N=$n_save
		done
	done
done
# the burst: one UDP datagram per flow, to 198.19.0.0/16 (a blackhole on
# the server), at full speed
burst() {             # burst DAEMON REP
	local d=$1 r=$2 out c0 t0 t1 base2 held=- passed=- acked=- tmo=- over=-
	paths sym
	case $d in
	ctsyncd) start_ctsyncd 0 || return 1 ;;
	ctsyncd-defer) start_ctsyncd 1 || return 1 ;;
	esac
	base2=$(nsx "$NS_FW2" "$LOAD" count)
	c0=$(cpu_ticks "${DAEMON_PID[0]}")
	out=$(nsx "$NS_CL" "$LOAD" udp "$BURST" 198.19.0.0)
	t0=$(date +%s%N)
	nsx "$NS_FW2" "$LOAD" wait $((base2 + BURST)) 120 >/dev/null
	t1=$(date +%s%N)
	if [ "$d" = ctsyncd-defer ]; then
		held=$(ctstat "$NS_FW1" defer_held); passed=$(ctstat "$NS_FW1" defer_passed)
		acked=$(ctstat "$NS_FW1" defer_acked); tmo=$(ctstat "$NS_FW1" defer_timeouts)
		over=$(ctstat "$NS_FW1" defer_overflow)
	fi
	printf 'burst %s rep %s n %s rate %s held %s passed %s acked %s timeouts %s overflow %s fw2_after_s %s cpu_ms %s\n' \
		"$d" "$r" "$BURST" "$(kv rate "$out")" "$held" "$passed" "$acked" "$tmo" "$over" \
		"$(python3 -c "print('%.2f' % (($t1 - $t0) / 1e9))")" \
		$(( ($(cpu_ticks "${DAEMON_PID[0]}") - c0) * 1000 / $(getconf CLK_TCK) )) | tee -a "$OUT"
	stop_daemons
	for i in $FWS; do nsx "$P-fw$i" conntrack -F >/dev/null 2>&1; done
}
if [ "${BENCH_CHECK:-0}" != 1 ]; then
	for i in $FWS; do nsx "$P-fw$i" ip route add 198.19.0.0/16 via 203.0.113.10; done
	nsx "$NS_SV" ip route add blackhole 198.19.0.0/16
	for r in $(seq 1 "$REPS"); do
		burst ctsyncd "$r"
		burst ctsyncd-defer "$r"
	done
fi

python3 - "$OUT" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.startswith('path ')]
def g(r, k): return r[r.index(k) + 1]
keys = []
for r in rows:
    k = (g(r, 'path'), g(r, 'daemon'))
    if k not in keys: keys.append(k)
print('%-5s %-14s %9s %5s %11s %11s %8s %7s %9s' % ('path', 'daemon', 'through', 'slow',
      'connect_us', 'longest_us', 'wall_us', 'cpu_us', 'hold_us'))
for k in keys:
    rs = [r for r in rows if (g(r, 'path'), g(r, 'daemon')) == k]
    def med(name):
        v = [float(g(r, name)) for r in rs if g(r, name) not in ('-', '')]
        return '%.0f' % statistics.median(v) if v else '-'
    through = '%s/%s' % (sum(int(g(r, 'echoed') or 0) for r in rs), sum(int(g(r, 'n')) for r in rs))
    slow = sum(int(g(r, 'slow') or 0) for r in rs)
    print('%-5s %-14s %9s %5d %11s %11s %8s %7s %9s' % (k[0], k[1], through, slow,
          med('connect_avg_us'), med('connect_max_us'), med('wall_us'), med('cpu_us'),
          med('hold_avg_us')))
bursts = [l.split() for l in open(sys.argv[1]) if l.startswith('burst ')]
if bursts:
    print()
    print('%-14s %8s %10s %8s %8s %8s %9s %8s %11s %7s' % ('burst', 'flows', 'rate/s', 'held',
          'passed', 'acked', 'timeouts', 'overflow', 'fw2_all_s', 'cpu_ms'))
    for d in ('ctsyncd', 'ctsyncd-defer'):
        rs = [r for r in bursts if r[1] == d]
        if not rs:
            continue
        def med(name):
            v = [float(g(r, name)) for r in rs if g(r, name) not in ('-', '')]
            return '%.0f' % statistics.median(v) if v else '-'
        def medf(name):
            v = [float(g(r, name)) for r in rs if g(r, name) not in ('-', '')]
            return '%.2f' % statistics.median(v) if v else '-'
        print('%-14s %8s %10s %8s %8s %8s %9s %8s %11s %7s' % (d, g(rs[0], 'n'), med('rate'),
              med('held'), med('passed'), med('acked'), med('timeouts'), med('overflow'),
              medf('fw2_after_s'), med('cpu_ms')))
EOF
[ "${BENCH_CHECK:-0}" = 1 ] && [ "$bad" = 1 ] && fail "a run did not give what it must"
finish "defer benchmark"
