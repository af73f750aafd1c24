#!/usr/bin/env bash
# bench/bench.sh — ctsyncd and conntrackd side by side, on the same load, in
# the same run (docs/BENCHMARKS.md).  Two firewall namespaces joined by a
# sync link; bench/ctload.c makes the load on fw1 through batched ctnetlink.
#
#   bench/bench.sh [FLOWS [REPS [LOSS_FLOWS]]]      (defaults 1000000 3 100000)
#
# Per daemon and repetition:
#   gen_rate_off    flows/s creating FLOWS on fw1 with no daemon running
#   gen_rate_floor  the same while a listener on fw1 only reads and drops
#                   the events (ctsync-ctload listen): the least any daemon
#                   fed by ctnetlink events can cost the generator
#   gen_rate_on     the same with the daemons running (slowdown = on/off)
#   lag_s           last creation on fw1 -> fw2's kernel holds all FLOWS
#                   (ctsyncd inject immediate; conntrackd DisableExternalCache)
#   missing         flows fw2 lacked when the wait gave up (must be 0)
#   wire_new/upd/del bytes on fw1's sync interface (frames, headers and all,
#                   encryption included) per created, updated, deleted flow
#   rss_tx/rss_rx   daemon RSS growth per flow held, sender and receiver
#   cpu_tx/cpu_rx   daemon CPU-seconds per 100,000 flows replicated
#   commit_rate     flows/s written into fw2's kernel by one commit of FLOWS
#                   held in memory (ctsyncd inject on-promote + ctsyncctl
#                   commit; conntrackd external cache + conntrackd -c)
#   create_rate_loaded  flows/s of batched ctnetlink creates of FLOWS into
#                   fw2 right after, daemons stopped, fw1's FLOWS still in
#                   the shared table: the kernel's rate the commit is held to
#   tgen_rate_off/floor/on, tlag_s, tmissing, tcpu_tx/rx  the same for FLOWS made
#                   by traffic: one UDP datagram per flow from a client
#                   namespace through fw1's forwarding path to a server
#                   namespace (entries made in the packet path; generator
#                   rate with no daemon / with the daemons running, last
#                   datagram -> fw2's kernel holds all, CPU per 100k)
#   loss_conv_s     LOSS_FLOWS at 10 % loss on the sync link: last creation
#                   -> all in fw2's kernel
#   e_/te_rate_off, e_/te_rate_own  generator rate (ctnetlink-made e_, traffic-
#                   made te_) with no daemon / with fw1's daemon alone (none
#                   on fw2, whose injections would run on another machine)
#   e_/te_share_floor, e_/te_share_own  % of the generator's time (perf
#                   samples) in the kernel's event building, with the
#                   read-only listener / with fw1's daemon alone: the part of
#                   the slowdown no event-fed daemon can take away
# Results: bench/results/latest.txt (raw) and the table on stdout.
#   dns_rate, dns_wire, dns_cpu_tx/rx  a DNS-like load: FLOWS short UDP
#                   flows made by traffic at 20,000/s, each ended by the
#                   kernel 2 s after its datagram (nf_conntrack_udp_timeout
#                   2 on both firewalls, as on a resolver-facing firewall):
#                   generator rate, sync bytes per flow (creation and end,
#                   on fw1's sync interface), daemon CPU-s per 100k flows;
#   dns_age_*       the same with ctsyncd's filter.min_age = 5: nothing of
#                   a flow that ended younger should cross the link;
#                   dns_age_synced: flows synced anyway (lived 5 s: the
#                   kernel's garbage collection ended them late)
# BENCH_LOSS_WAIT: seconds the loss figure waits for convergence (120).
# BENCH_PARTS: which parts run, of "ctnetlink commit traffic loss events" (all);
# BENCH_DAEMONS: which daemons, of "ctsyncd conntrackd" (both).  A subset
# is for looking into one figure; the table then lacks the others.
# BENCH_CHECK=1 (the smoke run in `make check`): exit 1 if a figure is
# missing or ctsyncd lost a flow (bench/table.py --check).
#
# The conntrack table is global to all namespaces: for the run the root
# namespace's nf_conntrack_max and hash size are raised (and restored at
# exit, also on failure).
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
export BUILD=${BUILD:-$TOP/build}
FLOWS=${1:-1000000}
REPS=${2:-3}
LOSS_FLOWS=${3:-100000}
. "$TOP/tests/cluster/lib.sh"
B=$BUILD
LOAD=$B/ctsync-ctload
OUT=${BENCH_OUT:-$TOP/bench/results/latest.txt}
# a misspelt part or daemon stops the run before the last results are cleared
PARTS=${BENCH_PARTS:-ctnetlink commit traffic loss events age}
DAEMONS=${BENCH_DAEMONS:-ctsyncd conntrackd}
for p in $PARTS; do
	case $p in ctnetlink|commit|traffic|loss|events|age) ;; *) say "BENCH_PARTS: no part '$p'"; exit 2;; esac
done
for d in $DAEMONS; do
	case $d in ctsyncd|conntrackd) ;; *) say "BENCH_DAEMONS: no daemon '$d'"; exit 2;; esac
done
mkdir -p "$(dirname "$OUT")"
: > "$OUT"
preflight
[ -x "$LOAD" ] || { say "missing $LOAD: make bench"; exit 1; }
command -v conntrackd >/dev/null || { say "missing conntrackd: make deps"; exit 1; }

# -- the global conntrack limits, raised for the run, restored at exit
# one hash table for every namespace: sized for both firewalls' tables, as a
# host holding that many flows would be (chains of 1-2, not 4)
. "$TOP/bench/limits.sh"
. "$TOP/bench/conntrackd.sh"
raise_limits $(( 2 * FLOWS + 2 * LOSS_FLOWS + 100000 ))

# -- two firewalls and a sync link, nothing else
bench_topology() {
	mkns "$NS_FW1"; mkns "$NS_FW2"
	ip link add sync0 netns "$NS_FW1" type veth peer name sync0 netns "$NS_FW2"
	local i
	for i in 1 2; do
		nsx "$P-fw$i" ip addr add 198.18.0.$i/24 dev sync0
		nsx "$P-fw$i" ip link set sync0 up
		nsx "$P-fw$i" sysctl -qw net.netfilter.nf_conntrack_events=1 >/dev/null
		# conntrack must be on in the namespace: a rule that uses it
		nsx "$P-fw$i" nft -f - <<'EOF'
table inet bench { chain in { type filter hook input priority 0; ct state invalid counter; }; }
EOF
	done
}
# a client and a server namespace on either side of fw1, which forwards
# 198.19.0.0/16 to the server (a blackhole there: nothing comes back)
traffic_topology() {
	mkns "$NS_CL"; mkns "$NS_SV"
	ip link add cl0 netns "$NS_CL" type veth peer name in0 netns "$NS_FW1"
	ip link add out0 netns "$NS_FW1" type veth peer name sv0 netns "$NS_SV"
	nsx "$NS_CL" ip addr add 198.51.100.2/24 dev cl0
	nsx "$NS_CL" ip link set cl0 up
	nsx "$NS_CL" ip route add default via 198.51.100.1
	nsx "$NS_FW1" ip addr add 198.51.100.1/24 dev in0
	nsx "$NS_FW1" ip addr add 203.0.113.1/24 dev out0
	nsx "$NS_FW1" ip link set in0 up
	nsx "$NS_FW1" ip link set out0 up
	nsx "$NS_FW1" ip route add 198.19.0.0/16 via 203.0.113.2
	nsx "$NS_FW1" sysctl -qw net.ipv4.ip_forward=1
	nsx "$NS_SV" ip addr add 203.0.113.2/24 dev sv0
	nsx "$NS_SV" ip link set sv0 up
	nsx "$NS_SV" ip route add blackhole 198.19.0.0/16
}
bench_teardown() {
	stop_daemons_any
	local ns
	for ns in "$NS_FW1" "$NS_FW2" "$NS_CL" "$NS_SV"; do ip netns del "$ns" 2>/dev/null; done
	NS_LIST=()
	sleep 0.5
}

DPID=()
stop_daemons_any() {
	local p
	for p in "${DPID[@]}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
	for p in "${DPID[@]}"; do [ -n "$p" ] && wait "$p" 2>/dev/null; done
	DPID=()
}

rss_kb()  { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
tx_bytes() { nsx "$1" cat /sys/class/net/sync0/statistics/tx_bytes; }
count() { nsx "$1" "$LOAD" count; }
rec() { printf '%s %s %s %s\n' "$1" "$2" "$3" "$4" >> "$OUT"; }   # daemon rep key value
cpu_per_100k() {      # cpu_per_100k PID TICKS_BEFORE: CPU-seconds per 100,000 flows
	awk -v t="$(( $(cpu_ticks "$1") - $2 ))" -v hz="$(getconf CLK_TCK)" -v n="$FLOWS" \
		'BEGIN { printf "%.3f", t / hz / n * 100000 }'
}
# rec_lag DAEMON REP LAG_KEY MISSING_KEY END_NS BASE2 N: from fw2's wait in
# $T/wait.out, seconds from END_NS until fw2 held BASE2 + N (and 0
# missing), or how many it still lacks
rec_lag() {
	local at; at=$(kv at_ns "$(cat "$T/wait.out")")
	if [ -n "$at" ]; then
		rec "$1" "$2" "$3" "$(awk -v a="$at" -v b="$5" 'BEGIN { printf "%.3f", (a - b) / 1e9 }')"
		rec "$1" "$2" "$4" 0
	else
		rec "$1" "$2" "$4" $(( $6 + $7 - $(count "$NS_FW2") ))
	fi
}
quiet_link() {        # until fw1's sync tx is down to heartbeats for 0.5 s (bounded)
	local end=$((SECONDS + ${1:-60})) a b
	a=$(tx_bytes "$NS_FW1")
	while [ $SECONDS -lt $end ]; do
		sleep 0.5
		b=$(tx_bytes "$NS_FW1")
		[ $((b - a)) -lt 4096 ] && return 0     # heartbeats: a few hundred bytes
		a=$b
	done
	return 1
}

# -- the daemons
ctsync_conf() {       # ctsync_conf ID INJECT
	local id=$1 other=$((3 - $1))
	[ -s "$T/sync.key" ] || "$B/ctsyncctl" keygen > "$T/sync.key"
	cat > "$T/ctsyncd-$id.conf" <<EOF
node = { id = $id; };
sync = { role = "$( [ "$id" = 1 ] && echo primary || echo backup )"; inject = "$2"; };
transport = { type = "udp"; interface = "sync0"; address = "198.18.0.$id";
	peers = ( { id = $other; address = "198.18.0.$other"; } ); };
control = { socket = "$T/ctsyncd-$id.sock"; };
security = { key_file = "$T/sync.key"; };
${CTSYNC_EXTRA:-}
EOF
}
start_ctsyncd() {     # start_ctsyncd INJECT_ON_FW2 [NODES]
	# NODES: "1 2" (both, up once fw2 is in sync) or "1" (fw1's alone, up
	# once it answers)
	local nodes=${2:-1 2} i
	ctsync_conf 1 immediate; ctsync_conf 2 "$1"
	for i in $nodes; do
		ip netns exec "$P-fw$i" "$B/ctsyncd" --foreground --config "$T/ctsyncd-$i.conf" \
			>>"$T/ctsyncd-$i.log" 2>&1 &
		DPID[$i]=$!
	done
	local end=$((SECONDS + 20))
	while [ $SECONDS -lt $end ]; do
		if [ "$nodes" = 1 ]; then
			nsx "$NS_FW1" "$B/ctsyncctl" --socket "$T/ctsyncd-1.sock" status >/dev/null 2>&1 &&
				return 0
		else
			nsx "$NS_FW2" "$B/ctsyncctl" --socket "$T/ctsyncd-2.sock" status 2>/dev/null |
				grep -q '^in sync: *yes' && return 0
		fi
		sleep 0.1
	done
	say "ctsyncd did not come up"; return 1
}
start_conntrackd() {  # start_conntrackd EXTERNAL_CACHE_ON_FW2 [NODES] (as start_ctsyncd)
	local nodes=${2:-1 2} i
	conntrackd_conf 1 off; conntrackd_conf 2 "$1"
	for i in $nodes; do
		ip netns exec "$P-fw$i" conntrackd -C "$T/conntrackd-$i.conf" >>"$T/conntrackd-$i.out" 2>&1 &
		DPID[$i]=$!
	done
	sleep 1.5               # it has no "ready" signal: give it its start
	for i in $nodes; do
		kill -0 "${DPID[$i]}" 2>/dev/null || { say "conntrackd on fw$i died"; tail -5 "$T/conntrackd-$i.log"; return 1; }
	done
}

# The read-only listener on fw1 (ctsync-ctload listen), in LP; 1 if it did
# not start.
LP=
start_listener() {
	local i
	ip netns exec "$NS_FW1" "$LOAD" listen 120 1 >"$T/listen.out" 2>&1 &
	LP=$!
	PIDS+=("$LP")
	for i in $(seq 100); do grep -q listening "$T/listen.out" && return 0; sleep 0.05; done
	say "  the floor's listener did not start: $(head -c 200 "$T/listen.out")"
	return 1
}
stop_listener() {
	[ -n "$LP" ] || return 0
	kill "$LP" 2>/dev/null; wait "$LP" 2>/dev/null
	# forget its PID (the trap must not signal whoever gets it next)
	local keep=() p
	for p in "${PIDS[@]}"; do [ "$p" = "$LP" ] || keep+=("$p"); done
	PIDS=("${keep[@]}")
	LP=
}

# gen_off_then_start DAEMON REP KEY NS LOAD_ARGS...: the generator alone
# in NS (its rate recorded as KEY), fw1's table emptied, then the daemons
# started (injecting immediately)
gen_off_then_start() {
	local d=$1 r=$2 key=$3 ns=$4 out
	shift 4
	out=$(nsx "$ns" "$LOAD" "$@")
	rec "$d" "$r" "$key" "$(kv rate "$out")"
	nsx "$NS_FW1" conntrack -F >/dev/null 2>&1
	nsx "$NS_FW1" "$LOAD" wait 0 60 le >/dev/null
	# the floor: the same load while a listener on fw1 only reads the
	# events as ctsyncd reads them (32 per call, 1 ms pause when fewer)
	# and drops them: what any daemon fed by events costs at least
	if start_listener; then
		out=$(nsx "$ns" "$LOAD" "$@")
		rec "$d" "$r" "${key%_off}_floor" "$(kv rate "$out")"
	fi
	stop_listener
	nsx "$NS_FW1" conntrack -F >/dev/null 2>&1
	nsx "$NS_FW1" "$LOAD" wait 0 60 le >/dev/null
	if [ "$d" = ctsyncd ]; then start_ctsyncd immediate
	else start_conntrackd off; fi
}

# -- one repetition for one daemon, in parts (BENCH_PARTS picks them)
part_ctnetlink() {    # part_ctnetlink DAEMON REP
	local d=$1 r=$2 out end
	bench_topology
	gen_off_then_start "$d" "$r" gen_rate_off "$NS_FW1" create "$FLOWS" 0 || return 1
	local r1 r2 c1 c2 t0
	r1=$(rss_kb "${DPID[1]}"); r2=$(rss_kb "${DPID[2]}")
	c1=$(cpu_ticks "${DPID[1]}"); c2=$(cpu_ticks "${DPID[2]}")
	t0=$(tx_bytes "$NS_FW1")
	# fw2's table holds the sync link's own flow(s) too: count from there
	local base2; base2=$(count "$NS_FW2")
	ip netns exec "$NS_FW2" "$LOAD" wait $((base2 + FLOWS)) 180 >"$T/wait.out" &
	local w=$!
	out=$(nsx "$NS_FW1" "$LOAD" create "$FLOWS" 0)
	end=$(kv end_ns "$out")
	rec "$d" "$r" gen_rate_on "$(kv rate "$out")"
	wait "$w"
	rec_lag "$d" "$r" lag_s missing "$end" "$base2" "$FLOWS"
	quiet_link 60
	rec "$d" "$r" wire_new "$(( ($(tx_bytes "$NS_FW1") - t0) / FLOWS ))"
	rec "$d" "$r" rss_tx "$(( ($(rss_kb "${DPID[1]}") - r1) * 1024 / FLOWS ))"
	rec "$d" "$r" rss_rx "$(( ($(rss_kb "${DPID[2]}") - r2) * 1024 / FLOWS ))"
	rec "$d" "$r" cpu_tx "$(cpu_per_100k "${DPID[1]}" "$c1")"
	rec "$d" "$r" cpu_rx "$(cpu_per_100k "${DPID[2]}" "$c2")"
	# updates and deletes: bytes per change
	t0=$(tx_bytes "$NS_FW1")
	nsx "$NS_FW1" "$LOAD" update "$FLOWS" 0 >/dev/null
	quiet_link 60
	rec "$d" "$r" wire_upd "$(( ($(tx_bytes "$NS_FW1") - t0) / FLOWS ))"
	t0=$(tx_bytes "$NS_FW1")
	nsx "$NS_FW1" "$LOAD" delete "$FLOWS" 0 >/dev/null
	nsx "$NS_FW2" "$LOAD" wait "$base2" 120 le >/dev/null ||
		rec "$d" "$r" deletes_missing "$(( $(count "$NS_FW2") - base2 ))"
	quiet_link 60
	rec "$d" "$r" wire_del "$(( ($(tx_bytes "$NS_FW1") - t0) / FLOWS ))"
	bench_teardown
}

part_commit() {       # commit of FLOWS held in memory
	local d=$1 r=$2 out base2
	bench_topology
	if [ "$d" = ctsyncd ]; then start_ctsyncd on-promote || return 1
	else start_conntrackd on || return 1; fi
	base2=$(count "$NS_FW2")
	nsx "$NS_FW1" "$LOAD" create "$FLOWS" 0 >/dev/null
	quiet_link 120
	# the commit starts once fw2's daemon holds every flow
	local s e held=0 end2=$((SECONDS + 180))
	while [ $SECONDS -lt $end2 ]; do
		if [ "$d" = ctsyncd ]; then
			nsx "$NS_FW2" "$B/ctsyncctl" --socket "$T/ctsyncd-2.sock" wait-sync --timeout 5 \
				>/dev/null 2>&1 && held=$FLOWS
		else
			held=$(nsx "$NS_FW2" conntrackd -C "$T/conntrackd-2.conf" -e ct 2>/dev/null |
				grep -c 'src=198\.18\.' )
		fi
		[ "$held" -ge "$FLOWS" ] && break
		sleep 2
	done
	[ "$held" -ge "$FLOWS" ] || rec "$d" "$r" commit_not_held "$(( FLOWS - held ))"
	# fw1 fails (a commit is the failover path): its daemon stops first.
	# The kernel keeps one bitmap of event listeners per netlink protocol
	# for all namespaces, so a live listener on fw1 would make fw2's kernel
	# build an event message for every create of the commit, as it would
	# not on a machine of its own (docs/BENCHMARKS.md).
	kill "${DPID[1]}" 2>/dev/null; wait "${DPID[1]}" 2>/dev/null; unset 'DPID[1]'
	s=$(date +%s.%N)
	if [ "$d" = ctsyncd ]; then
		nsx "$NS_FW2" "$B/ctsyncctl" --socket "$T/ctsyncd-2.sock" commit >/dev/null
	else
		nsx "$NS_FW2" conntrackd -C "$T/conntrackd-2.conf" -c >/dev/null 2>&1
	fi
	if nsx "$NS_FW2" "$LOAD" wait $((base2 + FLOWS)) 120 >/dev/null; then
		e=$(date +%s.%N)
		rec "$d" "$r" commit_rate "$(awk -v s="$s" -v e="$e" -v n="$FLOWS" 'BEGIN { printf "%.0f", n / (e - s) }')"
	else
		rec "$d" "$r" commit_missing $(( base2 + FLOWS - $(count "$NS_FW2") ))
	fi
	# the kernel's own rate at the same occupancy (fw1's FLOWS in the
	# shared table): batched creates of FLOWS into fw2, no daemon running
	stop_daemons_any
	nsx "$NS_FW2" conntrack -F >/dev/null 2>&1
	nsx "$NS_FW2" "$LOAD" wait "$base2" 60 le >/dev/null
	out=$(nsx "$NS_FW2" "$LOAD" create "$FLOWS" 0)
	rec "$d" "$r" create_rate_loaded "$(kv rate "$out")"
	bench_teardown
}

part_traffic() {      # flows made by traffic through fw1's forwarding path
	local d=$1 r=$2 out end w c1 c2 base1 base2
	bench_topology
	traffic_topology
	gen_off_then_start "$d" "$r" tgen_rate_off "$NS_CL" udp "$FLOWS" 198.19.0.0 || return 1
	c1=$(cpu_ticks "${DPID[1]}"); c2=$(cpu_ticks "${DPID[2]}")
	base1=$(count "$NS_FW1"); base2=$(count "$NS_FW2")
	ip netns exec "$NS_FW2" "$LOAD" wait $((base2 + FLOWS)) 180 >"$T/wait.out" &
	w=$!
	out=$(nsx "$NS_CL" "$LOAD" udp "$FLOWS" 198.19.0.0)
	end=$(kv end_ns "$out")
	rec "$d" "$r" tgen_rate_on "$(kv rate "$out")"
	# every datagram made its entry on fw1 (else the lag would wait for nothing)
	[ "$(count "$NS_FW1")" -ge $((base1 + FLOWS)) ] ||
		rec "$d" "$r" tgen_short $(( base1 + FLOWS - $(count "$NS_FW1") ))
	wait "$w"
	rec_lag "$d" "$r" tlag_s tmissing "$end" "$base2" "$FLOWS"
	quiet_link 20
	rec "$d" "$r" tcpu_tx "$(cpu_per_100k "${DPID[1]}" "$c1")"
	rec "$d" "$r" tcpu_rx "$(cpu_per_100k "${DPID[2]}" "$c2")"
	bench_teardown
}

# The kernel's own cost of an event, in the generator's time: the share of
# its samples (perf, cpu-clock, kernel call chains) under
# __nf_conntrack_eventmask_report, where the kernel builds the event
# message and queues it on every listening socket.  Prints the percentage;
# fails when no sample names it (symbols not readable, or a kernel that
# calls it otherwise): no figure rather than a wrong 0.
event_share() {       # event_share NS GENERATOR-ARGS...
	local ns=$1 data=$T/perf.data v
	shift
	perf record -q -e cpu-clock -g -o "$data" -- ip netns exec "$ns" "$LOAD" "$@" \
		>"$T/perf.out" 2>&1 || { say "  perf record failed: $(tail -c 300 "$T/perf.out")" >&2; return 1; }
	v=$(perf report -i "$data" --children --sort sym --stdio -g none 2>/dev/null |
		awk '$NF == "__nf_conntrack_eventmask_report" { v = $1; sub("%", "", v); print v; exit }')
	rm -f "$data"
	[ -n "$v" ] || { say "  no perf sample under __nf_conntrack_eventmask_report" >&2; return 1; }
	printf '%s\n' "$v"
}
flush_fw1() {
	local left=0
	nsx "$NS_FW1" conntrack -F >/dev/null 2>&1
	# a daemon on fw1 makes an entry of its own at once: its sync datagrams
	# (waiting for 0 waited the whole 60 s, four times a run)
	[ -n "${DPID[1]:-}" ] && left=1
	nsx "$NS_FW1" "$LOAD" wait "$left" 60 le >/dev/null
	[ -n "${DPID[1]:-}" ] && quiet_link 30
	return 0
}

# What the events cost the generator on fw1 itself, for entries made through
# ctnetlink (keys e_*) and by traffic (te_*): the rate with no daemon, with
# fw1's daemon alone (fw2's not running: on two machines its injections would
# not share fw1's cores, here they do), and the share of the generator's time
# in building events, with the read-only listener and with fw1's daemon.
part_events() {
	local d=$1 r=$2 out k ns
	command -v perf >/dev/null || { say "  the events part needs perf (make deps)"; return 1; }
	bench_topology
	traffic_topology
	for k in e te; do
		local gen=(create "$FLOWS" 0)
		ns=$NS_FW1
		[ "$k" = te ] && { gen=(udp "$FLOWS" 198.19.0.0); ns=$NS_CL; }
		out=$(nsx "$ns" "$LOAD" "${gen[@]}")
		rec "$d" "$r" "${k}_rate_off" "$(kv rate "$out")"
		flush_fw1
		if start_listener; then
			out=$(event_share "$ns" "${gen[@]}") && rec "$d" "$r" "${k}_share_floor" "$out"
		fi
		stop_listener
		flush_fw1
		# fw1's daemon alone: none on fw2
		if [ "$d" = ctsyncd ]; then start_ctsyncd immediate 1
		else start_conntrackd off 1; fi || { bench_teardown; return 1; }
		out=$(nsx "$ns" "$LOAD" "${gen[@]}")
		rec "$d" "$r" "${k}_rate_own" "$(kv rate "$out")"
		flush_fw1
		out=$(event_share "$ns" "${gen[@]}") && rec "$d" "$r" "${k}_share_own" "$out"
		stop_daemons_any
		flush_fw1
	done
	bench_teardown
}

part_loss() {         # convergence at 10 % loss
	local d=$1 r=$2 out end w base2
	bench_topology
	nsx "$NS_FW2" nft -f - <<'EOF'
table inet loss { chain in { type filter hook prerouting priority -300; iifname "sync0" udp dport { 3780, 3781 } numgen random mod 100 < 10 drop; }; }
EOF
	if [ "$d" = ctsyncd ]; then start_ctsyncd immediate || return 1
	else start_conntrackd off || return 1; fi
	base2=$(count "$NS_FW2")
	ip netns exec "$NS_FW2" "$LOAD" wait $((base2 + LOSS_FLOWS)) "${BENCH_LOSS_WAIT:-120}" >"$T/wait.out" &
	w=$!
	out=$(nsx "$NS_FW1" "$LOAD" create "$LOSS_FLOWS" 0)
	end=$(kv end_ns "$out")
	wait "$w"
	rec_lag "$d" "$r" loss_conv_s loss_missing "$end" "$base2" "$LOSS_FLOWS"
	bench_teardown
}

# A DNS-like load (keys dns_*, and dns_age_* for ctsyncd with min_age):
# short UDP flows that the kernel ends 2 s after their datagram.
part_age() {          # part_age DAEMON REP
	local d=$1 r=$2 v k out ns c1 c2 t0 base1
	for v in plain age; do
		[ "$d" = conntrackd ] && [ "$v" = age ] && continue
		k=dns_
		[ "$v" = age ] && k=dns_age_
		bench_topology
		traffic_topology
		for ns in "$NS_FW1" "$NS_FW2"; do
			nsx "$ns" sysctl -qw net.netfilter.nf_conntrack_udp_timeout=2 >/dev/null
		done
		if [ "$d" = ctsyncd ]; then
			local extra=
			[ "$v" = age ] && extra='filter = { min_age = 5; };'
			CTSYNC_EXTRA=$extra start_ctsyncd immediate || return 1
		else
			start_conntrackd off || return 1
		fi
		base1=$(count "$NS_FW1")
		c1=$(cpu_ticks "${DPID[1]}"); c2=$(cpu_ticks "${DPID[2]}")
		t0=$(tx_bytes "$NS_FW1")
		out=$(nsx "$NS_CL" "$LOAD" udp "$FLOWS" 198.19.0.0 20000)
		rec "$d" "$r" "${k}rate" "$(kv rate "$out")"
		# every flow ended by the kernel (its garbage collection), then
		# past the age filter's 5 s, then the link quiet
		nsx "$NS_FW1" "$LOAD" wait "$base1" 120 le >/dev/null ||
			rec "$d" "$r" "${k}unended" "$(( $(count "$NS_FW1") - base1 ))"
		sleep 5
		quiet_link 30
		rec "$d" "$r" "${k}wire" "$(awk -v b="$(( $(tx_bytes "$NS_FW1") - t0 ))" -v n="$FLOWS" \
			'BEGIN { printf "%.2f", b / n }')"
		rec "$d" "$r" "${k}cpu_tx" "$(cpu_per_100k "${DPID[1]}" "$c1")"
		rec "$d" "$r" "${k}cpu_rx" "$(cpu_per_100k "${DPID[2]}" "$c2")"
		if [ "$v" = age ]; then
			rec "$d" "$r" dns_age_synced "$(nsx "$NS_FW1" "$B/ctsyncctl" --socket \
				"$T/ctsyncd-1.sock" stats | awk '$1 == "filter_synced" { print $2 }')"
		fi
		bench_teardown
	done
}

say "== bench: $FLOWS flows, $REPS repetitions, loss test $LOSS_FLOWS flows, parts: $PARTS; daemons: $DAEMONS ($(date -u +%FT%TZ))"
for r in $(seq 1 "$REPS"); do
	for d in $DAEMONS; do
		for p in $PARTS; do
			say "  rep $r: $d $p"
			"part_$p" "$d" "$r" || { say "  rep $r $d $p failed"; bench_teardown; }
		done
	done
done
/usr/bin/python3 "$TOP/bench/table.py" "$OUT" ${BENCH_CHECK:+--check}
