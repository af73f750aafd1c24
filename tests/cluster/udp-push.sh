#!/usr/bin/env bash
# A server-push UDP flow keeps its SNAT mapping across failover: the client
# sends one datagram (creating the mapping on fw1), then only receives; after
# fw1 -> fw2 the server's datagrams to the WAN VIP must still reach it, which
# needs fw2 to hold the mapping.  Negative control first.
#   INJECT=immediate|on-promote
. "$(dirname "$0")/lib.sh"
NAME="server-push UDP keeps its SNAT mapping across failover (inject $INJECT)"
say "== $NAME"
preflight
topology
bg "$NS_SV" push "$B/ctsync-testtool" udp-push 5353 30 20
sleep 0.3

check() {         # check LABEL EXPECT(survive|break) LOGLINE
	local label=$1 expect=$2 line=$3
	info "$label: $line"
	local ago maxseq got
	ago=$(kv last_ago_ms "$line"); got=$(kv received "$line"); maxseq=$(kv maxseq "$line")
	if [ "$expect" = break ]; then
		if [ "$got" -gt 20 ] && [ "$ago" -gt 2000 ]; then
			ok "negative control: datagrams stopped at failover"
		else
			fail "negative control: datagrams kept coming without ctsyncd (or never came)"
		fi
	else
		if [ "$got" -gt 200 ] && [ "$ago" -lt 500 ] && [ "$(kv maxgap_ms "$line")" -lt 2000 ]; then
			ok "datagrams kept coming through fw2 ($got received, longest pause $(kv maxgap_ms "$line") ms)"
		else
			fail "the UDP flow did not survive failover"
		fi
	fi
}

# -- negative control
bg "$NS_CL" neg "$B/ctsync-testtool" udp-recv 203.0.113.10 5353 5
client=$BG_PID
sleep 2
failover "$NS_FW1" "$NS_FW2"
wait "$client"
check "without ctsyncd" break "$(tail -n 1 "$T/neg.log")"
reset_cluster

# -- with ctsyncd
start_daemons || finish "$NAME"
bg "$NS_CL" pos "$B/ctsync-testtool" udp-recv 203.0.113.10 5353 6
client=$BG_PID
sleep 2
wait_in_sync "$NS_FW2" 5 || fail "fw2 not in sync before failover"
failover "$NS_FW1" "$NS_FW2"
wait "$client"
check "with ctsyncd" survive "$(tail -n 1 "$T/pos.log")"
finish "$NAME"
