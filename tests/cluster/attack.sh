#!/usr/bin/env bash
# An attacker on the sync segment (a third namespace on the sync bridge)
# while a failover test runs: it sends forged frames (random bytes, valid
# headers from unknown nodes, malformed records, frames "sealed" with the
# key id in use but a made-up tag), and resends frames captured with
# tcpdump — as captured (source address spoofed: replays, and frames of a
# daemon's previous life), with a bit flipped, and from its own address.
# The TCP stream must survive failover and failback as in tcp-stream.sh,
# both kernels' tables must end up equal, both daemons keep running, and
# the counters must show each kind of rejection.
# Negative control: the same stream without ctsyncd breaks at failover.
. "$(dirname "$0")/lib.sh"
NAME="attacker on the sync link during failover and failback"
say "== $NAME"
preflight
command -v tcpdump >/dev/null || { say "missing tcpdump: make deps"; exit 1; }
SYNC_BRIDGE=1
topology
bg "$NS_SV" echo "$B/ctsync-testtool" tcp-echo 8080
sleep 0.3

# -- negative control: no daemons, the stream breaks at failover
bg "$NS_CL" neg "$B/ctsync-testtool" tcp-stream 203.0.113.10 8080 5 20
client=$BG_PID
sleep 2
failover "$NS_FW1" "$NS_FW2"
wait "$client"
line=$(tail -n 1 "$T/neg.log")
if [ "$(kv connected "$line")" = 1 ] && [ "$(kv echoed "$line")" -lt "$(kv sent "$line")" ]; then
	ok "negative control: without ctsyncd the stream broke at failover"
else
	fail "negative control: $line"
fi
reset_cluster

start_daemons || finish "$NAME"
KEY=$(awk '$1 == "ctsync-key-v1" { print $2 }' "$T/sync.key")

# capture FILE SEED: what fw2's sync0 sees while fw1 makes 300 flows
capture() {
	ip netns exec "$NS_FW2" timeout 4 tcpdump -i sync0 -U -w "$1" udp port 3780 \
		>/dev/null 2>&1 &
	local pid=$!
	PIDS+=($pid)
	sleep 1                 # tcpdump is listening
	nsx "$NS_FW1" "$B/ctsync-ctgen" create 300 "$2" >/dev/null
	wait "$pid" 2>/dev/null
	info "captured $(stat -c %s "$1") bytes of sync traffic ($(basename "$1"))"
}

# -- a capture, then fw1's daemon restarts: those frames of fw1 are of a
# past epoch now; then a capture of the current lives
capture "$T/past.pcap" 1000
kill_daemon 1
start_daemon 1
wait_in_sync "$NS_FW1" 10 && wait_in_sync "$NS_FW2" 10 || fail "not in sync after fw1's restart"
capture "$T/now.pcap" 2000

# -- the attacker, for as long as the failover test runs (bounded)
attack() {
	local end=$((SECONDS + 11)) round=0
	while [ $SECONDS -lt $end ]; do
		round=$((round + 1))
		# at each firewall, claiming to be the other one
		"$B/ctsync-testtool" udp-garbage 198.18.0.1 3780 200 2 "$KEY"
		"$B/ctsync-testtool" udp-garbage 198.18.0.2 3780 200 1 "$KEY"
		"$B/ctsync-testtool" replay-pcap "$T/past.pcap" 3780 spoof
		"$B/ctsync-testtool" replay-pcap "$T/past.pcap" 3780 tamper
		"$B/ctsync-testtool" replay-pcap "$T/now.pcap" 3780 own
		"$B/ctsync-testtool" replay-pcap "$T/now.pcap" 3780 spoof
		sleep 0.2
	done
	echo "rounds=$round"
}
ip netns exec "$NS_EVIL" env B="$B" T="$T" KEY="$KEY" bash -c "$(declare -f attack); attack" \
	>"$T/attack.log" 2>&1 &
ATTACKER=$!
PIDS+=($ATTACKER)

# -- the failover test, under attack
bg "$NS_CL" pos "$B/ctsync-testtool" tcp-stream 203.0.113.10 8080 9 20
client=$BG_PID
sleep 2.5
wait_in_sync "$NS_FW2" 5 || fail "fw2 not in sync before failover"
failover "$NS_FW1" "$NS_FW2"
info "failover to fw2 done"
nsx "$NS_FW2" "$B/ctsync-ctgen" delete 100 1000 >/dev/null
sleep 3
revive "$NS_FW1"
wait_in_sync "$NS_FW1" 5 || fail "fw1 not in sync before failback"
failover "$NS_FW2" "$NS_FW1"
revive "$NS_FW2"
info "failback to fw1 done"
wait "$client"
wait "$ATTACKER"
info "attacker: $(grep -c '^sent=' "$T/attack.log") forged bursts, $(grep -c '^seen=' "$T/attack.log") replays, $(grep '^rounds=' "$T/attack.log")"
line=$(tail -n 1 "$T/pos.log")
stream_survived "$line" 300 "under attack"
for i in 1 2; do
	kill -0 "${DAEMON_PID[$((i - 1))]}" 2>/dev/null && ok "ctsyncd on fw$i still running" ||
		fail "ctsyncd on fw$i died"
done

# -- the tables: equal (the sync link's own flows and the attacker's aside)
wait_in_sync "$NS_FW1" 10 && ok "fw1 in sync after the attack" || fail "fw1 not in sync after the attack"
wait_in_sync "$NS_FW2" 10 && ok "fw2 in sync after the attack" || fail "fw2 not in sync after the attack"
sleep 0.5
tables_equal 501

# -- every kind of rejection, counted
for ns in "$NS_FW1" "$NS_FW2"; do
	n=${ns##*-}
	s=$(ctl "$ns" stats)
	g() { printf '%s\n' "$s" | awk -v k="$1" '$1 == k { print $2 }'; }
	info "$n: bad_tag=$(g rx_bad_tag) unknown_key=$(g rx_unknown_key) unsealed=$(g rx_unsealed) short=$(g rx_short) no_key_for_node=$(g rx_no_key_for_node) bad_source=$(g rx_bad_source) replay=$(g rx_replay) old_epoch=$(g rx_old_epoch) unconfirmed=$(g rx_unconfirmed) lost=$(g rx_lost)"
	for k in rx_bad_tag rx_unknown_key rx_unsealed rx_bad_source rx_replay; do
		[ "$(g $k)" -gt 0 ] || fail "$n: no $k counted"
	done
done
s=$(ctl "$NS_FW2" stats)
[ "$(printf '%s\n' "$s" | awk '$1 == "rx_old_epoch" { print $2 }')" -gt 0 ] &&
	ok "fw2 refused frames of fw1's previous life (old epoch)" ||
	fail "fw2 counted no old-epoch frame"
[ "$FAILED" = 0 ] && ok "forged, tampered, replayed and misaddressed frames: each refused and counted on both"
finish "$NAME"
