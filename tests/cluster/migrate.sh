#!/usr/bin/env bash
# From a running conntrackd pair to ctsyncd, one node at a time, under a
# TCP stream (docs/MIGRATING.md): the configurations are the pair's own
# (tests/data/conntrackd/keepalived-udp*.conf) converted by `ctsyncctl
# import-conntrackd`; conntrackd keeps syncing (on port 3781) until both
# ctsyncd are in sync (3780), then stops; the converted pair then takes a
# failover and a failback.  Negative control first: without a daemon the
# stream breaks at the failover.
. "$(dirname "$0")/lib.sh"
NAME="migration from a conntrackd pair to ctsyncd under a TCP stream"
say "== $NAME"
preflight
command -v conntrackd >/dev/null || { fail "conntrackd is not installed (make deps)"; finish "$NAME"; }
topology
SERVER=203.0.113.10
D=$(dirname "$0")/../data/conntrackd
bg "$NS_SV" echo "$B/ctsync-testtool" tcp-echo 8080
sleep 0.3

# -- negative control: no daemons
stream_control "$SERVER"

# -- the pair's conntrackd.conf: node 1's and node 2's, their paths in $T
# and their port 3781, so that ctsyncd can take 3780 beside them
"$B/ctsyncctl" keygen > "$T/sync.key"
src=([1]="$D/keepalived-udp.conf" [2]="$D/keepalived-udp-2.conf")
CTD_PID=()
for i in 1 2; do
	# the firewalls' input chain takes ctsyncd's port: conntrackd's too
	nsx "$P-fw$i" nft add rule inet filter input iifname "sync0" udp dport 3781 accept
	sed -e "s|Port 3780|Port 3781|" -e "s|/var/lock/conntrack.lock|$T/ctd-$i.lock|" \
	    -e "s|/var/run/conntrackd.ctl|$T/ctd-$i.ctl|" -e "s|LogFile on|LogFile $T/ctd-$i.log|" \
	    "${src[$i]}" > "$T/conntrackd-$i.conf"
	"$B/ctsyncctl" import-conntrackd --key "$T/sync.key" "${src[$i]}" > "$T/conv-$i.conf" \
		2>"$T/import-$i.err" || { fail "import of node $i"; cat "$T/import-$i.err"; }
	nsx "$P-fw$i" "$B/ctsyncd" --check --config "$T/conv-$i.conf" >/dev/null ||
		fail "converted config of node $i fails --check"
done
for i in 1 2; do
	ip netns exec "$P-fw$i" conntrackd -C "$T/conntrackd-$i.conf" >"$T/ctd-$i.out" 2>&1 &
	CTD_PID[$i]=$!
	PIDS+=($!)
done
sleep 1.5
for i in 1 2; do
	kill -0 "${CTD_PID[$i]}" 2>/dev/null || fail "conntrackd on fw$i did not start: $(tail -3 "$T/ctd-$i.log" 2>/dev/null)"
done

bg "$NS_CL" pos "$B/ctsync-testtool" tcp-stream "$SERVER" 8080 16 20
client=$BG_PID
sleep 2
# conntrackd on fw2 holds the stream in its external cache
nsx "$NS_FW2" conntrackd -C "$T/conntrackd-2.conf" -e ct > "$T/ctd-2.cache" 2>&1
grep -q "dport=8080" "$T/ctd-2.cache" && ok "conntrackd pair: fw2's conntrackd holds the stream" ||
	fail "conntrackd pair: fw2's conntrackd does not hold the stream: $(head -c 300 "$T/ctd-2.cache")"

# -- one node at a time: the backup first, then the active one (promoted,
# as keepalived's notify script will from now on)
start_converted() {
	ip netns exec "$P-fw$1" "$B/ctsyncd" --foreground --config "$T/conv-$1.conf" \
		--socket "$T/fw$1.sock" >>"$T/ctsyncd-fw$1.log" 2>&1 &
	DAEMON_PID[$(($1 - 1))]=$!
}
start_converted 2
sleep 0.5
start_converted 1
for n in $(seq 50); do ctl "$NS_FW1" status >/dev/null 2>&1 && break; sleep 0.1; done
ctl "$NS_FW1" promote >/dev/null || fail "promote on fw1"
ctl "$NS_FW2" wait-sync --timeout 10 >/dev/null && ok "fw2's ctsyncd in sync with fw1's" ||
	fail "fw2's ctsyncd not in sync"
ctl "$NS_FW2" dump | grep -q ":8080 " && ok "fw2's ctsyncd holds the stream" ||
	fail "fw2's ctsyncd does not hold the stream"
# conntrackd goes, the backup's first
for i in 2 1; do
	kill "${CTD_PID[$i]}" 2>/dev/null
	wait "${CTD_PID[$i]}" 2>/dev/null
done
info "conntrackd stopped on both; the stream runs on"
sleep 2
failover "$NS_FW1" "$NS_FW2"
info "failover to fw2 (ctsyncd's converted pair)"
sleep 3
revive "$NS_FW1"
wait_in_sync "$NS_FW1" 5 || fail "fw1 not in sync before failback"
failover "$NS_FW2" "$NS_FW1"
revive "$NS_FW2"
info "failback to fw1"
wait "$client"
line=$(tail -n 1 "$T/pos.log")
info "stream: $line"
stream_survived "$line" 600 "migration, failover and failback"
finish "$NAME"
