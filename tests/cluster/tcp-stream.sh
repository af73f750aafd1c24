#!/usr/bin/env bash
# A TCP stream (a line every 20 ms, each echoed by the server) through SNAT
# survives failover fw1 -> fw2 and failback fw2 -> fw1: no RST, every line
# echoed, in order.  Negative control first: without ctsyncd the stream
# stops at the failover.
#   FAMILY=4|6 (default 4), INJECT=immediate|on-promote
. "$(dirname "$0")/lib.sh"
FAMILY=${FAMILY:-4}
if [ "$FAMILY" = 6 ]; then SERVER=2001:db8:2::10; else SERVER=203.0.113.10; fi
NAME="tcp stream IPv$FAMILY, failover and failback (inject $INJECT, transport $TRANSPORT)"
say "== $NAME"
preflight
topology
bg "$NS_SV" echo "$B/ctsync-testtool" tcp-echo 8080
sleep 0.3

# -- negative control: no daemons
stream_control "$SERVER"

# -- with ctsyncd
start_daemons || finish "$NAME"
bg "$NS_CL" pos "$B/ctsync-testtool" tcp-stream "$SERVER" 8080 9 20
client=$BG_PID
sleep 2.5
wait_in_sync "$NS_FW2" 5 || fail "fw2 not in sync before failover"
failover "$NS_FW1" "$NS_FW2"
info "failover to fw2 done"
sleep 3
revive "$NS_FW1"
wait_in_sync "$NS_FW1" 5 || fail "fw1 not in sync before failback"
failover "$NS_FW2" "$NS_FW1"
revive "$NS_FW2"
info "failback to fw1 done"
wait "$client"
line=$(tail -n 1 "$T/pos.log")
info "with ctsyncd:    $line"
stream_survived "$line" 300 "failover and failback"
wait_in_sync "$NS_FW2" 3 && wait_in_sync "$NS_FW1" 3 && ok "both in sync after failback" ||
	fail "not in sync after failback"
say "  fw1: $(ctl "$NS_FW1" status | grep -E '^(role|flows owned|in sync)' | tr '\n' ' ')"
say "  fw2: $(ctl "$NS_FW2" status | grep -E '^(role|flows owned|in sync)' | tr '\n' ' ')"
finish "$NAME"
