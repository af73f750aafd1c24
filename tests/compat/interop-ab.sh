#!/usr/bin/env bash
# The previous release (tests/compat/releases, built from this repository's
# history) beside the current build, active-backup, in both roles:
#   round 1: previous on fw1 (primary), current on fw2 (backup);
#   round 2: current on fw1 (primary), previous on fw2 (backup).
# In each round:
#  - 10,000 synthetic flows on fw1 (TCP/UDP, IPv4/IPv6, SNAT, DNAT, marks,
#    zones 1-2, labels), half before the daemons start (initial bulk), half
#    while they run: fw2's kernel table equals fw1's;
#  - a TCP stream and a server-push UDP flow through SNAT survive failover
#    fw1 -> fw2 and failback fw2 -> fw1 (every line echoed in order, no
#    reset; datagrams keep coming, no pause of 2 s);
#  - after the initial sync, neither node asks a resync or sends a bulk;
#  - each node names the other's release in `status`, neither finds the
#    other incompatible.
# Negative control first: without ctsyncd, the failover breaks both flows.
. "$(dirname "$0")/../cluster/lib.sh"
NAME="previous release beside the current one, active-backup, both roles"
say "== $NAME"
preflight
. "$(dirname "$0")/compat-lib.sh"
compat_bin previous
PREVREL=$("$OLDBIN" --version | awk '{ print $2 }')
CURREL=$("$B/ctsyncd" --version | awk '{ print $2 }')
topology
for ns in "$NS_FW1" "$NS_FW2"; do
	# a rule that sets a label makes the kernel give new entries label space
	nsx "$ns" nft add chain inet filter labels '{ type filter hook prerouting priority -300; }'
	nsx "$ns" nft add rule inet filter labels meta mark 0x7fffffff ct label set 127
done
bg "$NS_SV" echo "$B/ctsync-testtool" tcp-echo 8080
bg "$NS_SV" push "$B/ctsync-testtool" udp-push 5353 12 20
sleep 0.3

udp_check() {         # udp_check LOGNAME WHAT: the udp-recv summary
	local line; line=$(tail -n 1 "$T/$1.log")
	local got ago gap
	got=$(kv received "$line"); ago=$(kv last_ago_ms "$line"); gap=$(kv maxgap_ms "$line")
	if [ "${got:-0}" -gt 200 ] && [ "${ago:-9999}" -lt 500 ] && [ "${gap:-9999}" -lt 2000 ]; then
		ok "$2: the UDP flow kept coming ($got datagrams, longest pause $gap ms)"
	else
		fail "$2: the UDP flow did not survive ($line)"
	fi
}

# -- negative control: no daemons
bg "$NS_CL" neg "$B/ctsync-testtool" tcp-stream 203.0.113.10 8080 5 20
tcp=$BG_PID
bg "$NS_CL" negu "$B/ctsync-testtool" udp-recv 203.0.113.10 5353 5
udp=$BG_PID
sleep 2
failover "$NS_FW1" "$NS_FW2"
wait "$tcp" "$udp"
stream_broke "$T/neg.log"
line=$(tail -n 1 "$T/negu.log")
if [ "$(kv received "$line")" -gt 20 ] && [ "$(kv last_ago_ms "$line")" -gt 2000 ]; then
	ok "negative control: the UDP flow stopped at failover"
else
	fail "negative control: the UDP flow survived without ctsyncd ($line)"
fi
reset_cluster

round() {             # round FW_OF_THE_PREVIOUS_RELEASE
	local pid=$1 cid=$((3 - $1)) label r0 r1 i
	label="previous on fw$pid ($( [ "$pid" = 1 ] && echo primary || echo backup))"
	unset CTSYNCD1 CTSYNCD2
	export "CTSYNCD$pid=$OLDBIN"
	info "-- $label, current on fw$cid"
	nsx "$NS_FW1" "$B/ctsync-ctgen" create 5000 0 >/dev/null
	start_daemons || { fail "$label: daemons did not start"; return; }
	nsx "$NS_FW1" "$B/ctsync-ctgen" create 5000 5000 >/dev/null
	wait_in_sync "$NS_FW2" 20 || fail "$label: fw2 not in sync"
	wait_in_sync "$NS_FW1" 5 || fail "$label: fw1 not in sync"
	sleep 0.5
	ct_table "$NS_FW1" > "$T/t1"; ct_table "$NS_FW2" > "$T/t2"
	if [ "$(wc -l < "$T/t1")" = 10000 ] && cmp -s "$T/t1" "$T/t2"; then
		ok "$label: fw2's table equals fw1's: 10000 flows, $(grep -c 'labels=[0-9]' "$T/t2") with labels, $(grep -c 'zone=[12]' "$T/t2") in zones 1-2, $(grep -c 'mark=[1-9]' "$T/t2") marked, $(grep -c '>203\.0\.113\.[1-8]:\|>2001:db8:2::[1-8]:' "$T/t2") SNATed"
	else
		fail "$label: tables differ: fw1 $(wc -l < "$T/t1"), fw2 $(wc -l < "$T/t2") flows"
		diff "$T/t1" "$T/t2" | head -5
	fi
	r0=$(( $(sum_stat "$NS_FW1" resyncs_asked tx_bulks) + $(sum_stat "$NS_FW2" resyncs_asked tx_bulks) ))

	bg "$NS_CL" "tcp$pid" "$B/ctsync-testtool" tcp-stream 203.0.113.10 8080 9 20
	local tcp=$BG_PID
	bg "$NS_CL" "udp$pid" "$B/ctsync-testtool" udp-recv 203.0.113.10 5353 9
	local udp=$BG_PID
	sleep 2.5
	failover "$NS_FW1" "$NS_FW2"
	info "failover to fw2 ($( [ "$pid" = 2 ] && echo previous || echo current))"
	sleep 3
	revive "$NS_FW1"
	wait_in_sync "$NS_FW1" 5 || fail "$label: fw1 not in sync before failback"
	failover "$NS_FW2" "$NS_FW1"
	revive "$NS_FW2"
	info "failback to fw1 ($( [ "$pid" = 1 ] && echo previous || echo current))"
	wait "$tcp" "$udp"
	stream_survived "$(tail -n 1 "$T/tcp$pid.log")" 300 "$label: TCP, failover and failback"
	udp_check "udp$pid" "$label: failover and failback"
	wait_in_sync "$NS_FW2" 5 && wait_in_sync "$NS_FW1" 5 ||
		fail "$label: not both in sync after failback"
	r1=$(( $(sum_stat "$NS_FW1" resyncs_asked tx_bulks) + $(sum_stat "$NS_FW2" resyncs_asked tx_bulks) ))
	if [ "$r1" = "$r0" ]; then
		ok "$label: no resync asked, no bulk sent after the initial sync"
	else
		fail "$label: $((r1 - r0)) resyncs and bulks after the initial sync"
	fi
	local bad=0 st rel
	for i in 1 2; do
		st=$(ctl "$P-fw$i" status)
		printf '%s\n' "$st" | grep '^versions:' | sed "s/^/      fw$i /"
		printf '%s\n' "$st" | grep -q 'speaks protocol' && bad=1
		# the peer's release, as its own --version says
		if [ "$i" = "$pid" ]; then rel=$CURREL; else rel=$PREVREL; fi
		printf '%s\n' "$st" | grep -qF "peer $((3 - i)): $rel (protocol" || bad=1
	done
	[ "$bad" = 0 ] && ok "$label: each names the other's release, neither finds the other incompatible" ||
		fail "$label: versions in status"
	reset_cluster
}

round 1
round 2
finish "$NAME"
