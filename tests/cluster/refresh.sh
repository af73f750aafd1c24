#!/usr/bin/env bash
# Timeouts: a UDP flow kept alive on fw1 by traffic (the kernel extends its
# timeout there without an event) must not expire on fw2, where no packet
# passes; and once it ends on fw1 it must disappear from fw2.  UDP timeouts
# are 15 s on both firewalls; traffic lasts 35 s.  Negative control first:
# with the refresh turned off (refresh_ms = 0) fw2's copy expires.
. "$(dirname "$0")/lib.sh"
NAME="UDP flow refreshed on the backup while it lives, removed when it ends"
say "== $NAME"
preflight
topology
for ns in "$NS_FW1" "$NS_FW2"; do
	nsx "$ns" sysctl -qw net.netfilter.nf_conntrack_udp_timeout=15 \
		net.netfilter.nf_conntrack_udp_timeout_stream=15 >/dev/null
done
bg "$NS_SV" echo "$B/ctsync-testtool" udp-echo 5300
sleep 0.2
on() { nsx "$1" conntrack -L -p udp --sport "$2" 2>/dev/null | grep -c 'dport=5300'; }

run() {           # run LABEL SPORT -> "present on fw2 after 35 s" in $present
	bg "$NS_CL" "$1" "$B/ctsync-testtool" udp-ping 203.0.113.10 5300 "$2" 35 500
	local client=$BG_PID
	sleep 2
	local at2
	at2=$(on "$NS_FW2" "$2")
	wait "$client"
	present=$(on "$NS_FW2" "$2")
	info "$1: $(cat "$T/$1.log"); on fw2 after 2 s: $at2, after 35 s: $present (on fw1: $(on "$NS_FW1" "$2"))"
	[ "$at2" = 1 ] || fail "$1: the flow never reached fw2"
}

SYNC_EXTRA='refresh_ms = 0;'
start_daemons || finish "$NAME"
run without-refresh 40001
[ "$present" = 0 ] && ok "negative control: without refresh fw2's copy expired while the flow lived" ||
	fail "negative control: fw2's copy lived without refresh"
reset_cluster

SYNC_EXTRA=
start_daemons || finish "$NAME"
run with-refresh 40002
[ "$present" = 1 ] && ok "with refresh fw2 still holds the flow after 35 s ($(ctstat "$NS_FW1" refreshed) refreshes sent)" ||
	fail "fw2's copy expired although the flow lived on fw1"
# now the flow ends: it expires on fw1 15 s after its last packet, and the
# delete must reach fw2 (whose copy would otherwise live a while longer)
deadline=$((SECONDS + 30)); gone1=; gone2=
while [ $SECONDS -lt $deadline ]; do
	[ -z "$gone1" ] && [ "$(on "$NS_FW1" 40002)" = 0 ] && gone1=$SECONDS
	if [ -n "$gone1" ] && [ "$(on "$NS_FW2" 40002)" = 0 ]; then gone2=$SECONDS; break; fi
	sleep 0.2
done
# fw2's copy would expire by itself up to 15 s after fw1's: gone within 2 s
# means the delete reached it
if [ -z "$gone2" ]; then
	fail "the ended flow is still on fw2"
elif [ $((gone2 - gone1)) -le 2 ]; then
	ok "ended on fw1, gone from fw2 $((gone2 - gone1)) s later (the delete, not its own timeout)"
else
	fail "ended on fw1, gone from fw2 only $((gone2 - gone1)) s later: its own timeout, not the delete"
fi
finish "$NAME"
