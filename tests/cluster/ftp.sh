#!/usr/bin/env bash
# MODE=pasv (default):
# FTP passive through SNAT survives failover between PASV and the data
# connection: the control connection is made via fw1, PASV is answered
# (fw1's FTP helper creates the expectation), fw1 fails, then the data
# connection (RETR of a file, checksum verified) goes through fw2 — where new
# TCP from the LAN is allowed only to port 21, so it passes only as RELATED,
# i.e. only because the expectation was synced.  Then PASV + LIST again on
# the old control connection through fw2 (fw2's own helper at work on the
# injected master).  Negative control: the same with expectation sync off.
#
# MODE=port: active mode through SNAT.  The client's PORT command is
# rewritten by fw1's NAT helper to the WAN VIP, which changes its length, so
# fw1 records a sequence adjustment on the control connection.  After the
# failover the server's data connection (to the VIP) must be DNATed back to
# the client by fw2 (the synced expectation), and the control connection
# must keep working through fw2 (the synced sequence adjustment): a second
# PORT, rewritten by fw2 on top of the first adjustment, and a LIST.
. "$(dirname "$0")/lib.sh"
MODE=${MODE:-pasv}
NAME="FTP $MODE mode: data connection after failover (inject $INJECT)"
say "== $NAME"
preflight
topology
helper_ruleset "$NS_FW1" ftp tcp 21; helper_ruleset "$NS_FW2" ftp tcp 21

start_vsftpd

run() {           # run LABEL -> phase-2 line in $line
	local trig=$T/trigger-$1
	bg "$NS_CL" "$1" "$B/ctsync-testtool" "ftp-$MODE" 203.0.113.10 data.bin "$trig" 30
	local client=$BG_PID deadline=$((SECONDS + 15))
	while ! grep -q '^phase=1' "$T/$1.log" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
	info "$1: $(grep '^phase=1' "$T/$1.log")"
	sleep 0.3
	snap_expectations "$1"
	info "$1: fw1 expects: $(head -1 "$T/$1.exp1")"
	info "$1: fw2 expects: $(head -1 "$T/$1.exp2")"
	failover "$NS_FW1" "$NS_FW2"
	touch "$trig"
	wait "$client"
	line=$(grep '^phase=2' "$T/$1.log")
	info "$1: $line"
}

SYNC_EXTRA=
EXTRA_CONF1='expectations = { sync = false; };'
EXTRA_CONF2='expectations = { sync = false; };'
start_daemons || finish "$NAME"
run no-exp-sync
if [ "$(kv data "$line")" = failed ]; then
	ok "negative control: without expectation sync the data connection is refused by fw2 ($line)"
else
	fail "negative control: the data connection passed fw2 without a synced expectation"
fi
reset_cluster
nsx "$NS_CL" ip neigh flush dev eth0 2>/dev/null

EXTRA_CONF1='expectations = { sync = true; helpers = [ "ftp" ]; };'
EXTRA_CONF2=$EXTRA_CONF1
start_daemons || finish "$NAME"
run exp-sync
if [ "$(kv data "$line")" = ok ] && [ "$(kv hash "$line")" = "$want" ] &&
   [ "$(kv bytes "$line")" = 3000000 ]; then
	ok "data connection through fw2 after failover: 3000000 bytes, checksum $want"
else
	fail "data connection after failover: $line (want hash $want)"
fi
[ "$(kv list "$line")" = ok ] && ok "${MODE^^} + LIST again on the old control connection through fw2" ||
	fail "${MODE^^} + LIST on the old control connection failed"
expectations_synced exp-sync 1
stop_vsftpd
finish "$NAME"
