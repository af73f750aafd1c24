#!/usr/bin/env bash
# 1000 established TCP connections through SNAT all survive failover: each
# echoes once before and once after fw1 -> fw2.  Negative control first.
#   INJECT=immediate|on-promote, CONNS (default 1000)
. "$(dirname "$0")/lib.sh"
N=${CONNS:-1000}
NAME="$N established TCP connections survive failover (inject $INJECT)"
say "== $NAME"
preflight
ulimit -n 8192
topology
bg "$NS_SV" echo "$B/ctsync-testtool" tcp-echo 8080
sleep 0.3

run() {           # run LABEL -> sets phase-2 line in $line
	local label=$1 trig=$T/trigger-$1
	bg "$NS_CL" "$label" "$B/ctsync-testtool" tcp-many 203.0.113.10 8080 "$N" "$trig" 60
	local client=$BG_PID deadline=$((SECONDS + 60))
	while ! grep -q '^phase=1' "$T/$label.log" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
		sleep 0.1
	done
	info "$label: $(grep '^phase=1' "$T/$label.log")"
	[ "$(kv echoed "$(grep '^phase=1' "$T/$label.log")")" = "$N" ] ||
		fail "$label: not all $N connections were up before failover"
	if [ "${#DAEMON_PID[@]}" -gt 0 ]; then
		wait_in_sync "$NS_FW2" 10 || fail "fw2 not in sync before failover"
		info "fw2 holds $(ctl "$NS_FW2" status | sed -n 's/^flows held in total: *//p') flows"
	fi
	failover "$NS_FW1" "$NS_FW2"
	touch "$trig"
	wait "$client"
	line=$(grep '^phase=2' "$T/$label.log")
	info "$label: $line"
}

run without
if [ "$(kv echoed "$line")" -lt "$((N / 10))" ]; then
	ok "negative control: connections broke at failover"
else
	fail "negative control: $(kv echoed "$line") connections survived without ctsyncd"
fi
reset_cluster

start_daemons || finish "$NAME"
run with
if [ "$(kv echoed "$line")" = "$N" ]; then
	ok "all $N connections echoed after failover"
else
	fail "only $(kv echoed "$line") of $N connections survived"
fi
finish "$NAME"
