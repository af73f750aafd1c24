#!/usr/bin/env bash
# FTP passive through an active-active cluster: the client's control
# connection is forwarded by whichever of the three firewalls holds its
# bucket, whose FTP helper answers PASV with an expectation; that firewall
# then dies (daemon SIGKILLed, every link down) between PASV and the data
# connection.  The data connection (RETR, checksum verified) must pass the
# node that took the bucket over — where new TCP from the LAN is allowed
# only to port 21, so only as RELATED, i.e. by the synced expectation —
# and PASV + LIST again on the old control connection must work there too
# (its helper on the injected master).  Negative control: the same with
# expectation sync off on every node.
#
#   client .10 --[br-lan]-- fw1 / fw2 / fw3 (shared .1, one MAC) --[br-wan]-- server .10 (vsftpd)
: "${NFW:=3}"
: "${TRANSPORT:=multicast4}"
NCL=1
. "$(dirname "$0")/lib.sh"
NAME="FTP passive through active-active, the control connection's node dies before the data connection"
say "== $NAME"
preflight
topology_shared
. "$(dirname "$0")/aa-lib.sh"
AA_DAEMONS=1
for i in $FWS; do helper_ruleset "$P-fw$i" ftp tcp 21; done
start_vsftpd
export SYNC_EXTRA='mode = "active-active";'

# the node whose kernel forwards the client's control connection
control_node() {
	local i
	for i in $FWS; do
		ctl "$P-fw$i" dump --local 2>/dev/null |
			grep -q " 198\.51\.100\.10:[0-9]* -> 203\.0\.113\.10:21 " && { echo "$i"; return; }
	done
	echo 0
}

run() {               # run LABEL -> phase-2 line in $line, the dead node in $dead
	local trig=$T/trigger-$1 i
	for i in $FWS; do start_daemon "$i" primary || finish "$NAME"; done
	report_all_hold 15 || finish "$NAME"
	bg "$NS_CL" "$1" "$B/ctsync-testtool" ftp-pasv 203.0.113.10 data.bin "$trig" 30
	local client=$BG_PID deadline=$((SECONDS + 15))
	while ! grep -q '^phase=1' "$T/$1.log" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
	info "$1: $(grep '^phase=1' "$T/$1.log")"
	sleep 0.3
	dead=$(control_node)
	info "$1: the control connection goes through fw$dead; its expectations: $(nsx "$P-fw$dead" conntrack -L expect 2>/dev/null | head -1)"
	for i in $FWS; do
		[ "$i" = "$dead" ] && continue
		info "$1: fw$i holds $(nsx "$P-fw$i" conntrack -L expect 2>/dev/null | grep -c .) expectation(s)"
	done
	kill_daemon "$dead" KILL
	links_down "$dead"
	sleep 1                         # the others notice and take its buckets
	touch "$trig"
	wait "$client"
	line=$(grep '^phase=2' "$T/$1.log")
	info "$1: $line"
}

# put the cluster back: daemons stopped, the dead node's links up, no state
reset_aa() {
	local i
	stop_daemons
	for i in $FWS; do
		links_up "$i"
		nsx "$P-fw$i" conntrack -F >/dev/null 2>&1
		nsx "$P-fw$i" conntrack -F expect >/dev/null 2>&1
	done
}

export EXTRA_CONF1='expectations = { sync = false; };' EXTRA_CONF2='expectations = { sync = false; };' \
	EXTRA_CONF3='expectations = { sync = false; };'
run no-exp-sync
if [ "$dead" != 0 ] && [ "$(kv data "$line")" = failed ]; then
	ok "negative control: without expectation sync the data connection is refused after fw$dead died ($line)"
else
	fail "negative control: the data connection passed without a synced expectation (or no node forwarded the control connection)"
fi
reset_aa

unset EXTRA_CONF1 EXTRA_CONF2 EXTRA_CONF3
run exp-sync
if [ "$dead" != 0 ] && [ "$(kv data "$line")" = ok ] && [ "$(kv hash "$line")" = "$want" ] &&
   [ "$(kv bytes "$line")" = 3000000 ]; then
	ok "data connection through the survivors after fw$dead died: 3000000 bytes, checksum $want"
else
	fail "data connection after fw$dead died: $line (want hash $want)"
fi
[ "$(kv list "$line")" = ok ] && ok "PASV + LIST again on the old control connection through the survivors" ||
	fail "PASV + LIST on the old control connection failed"
stop_vsftpd
finish "$NAME"
