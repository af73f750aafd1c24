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
command -v vsftpd >/dev/null || [ -x /usr/sbin/vsftpd ] || { say "missing vsftpd: make deps"; exit 1; }
topology
helper_ruleset "$NS_FW1" ftp tcp 21; helper_ruleset "$NS_FW2" ftp tcp 21

# the server: vsftpd, anonymous, read-only, passive ports 50000-50100
mkdir -p "$T/ftproot" "$T/empty"
chmod 755 "$T/ftproot" "$T/empty"
head -c 3000000 /dev/urandom > "$T/ftproot/data.bin"
chmod 644 "$T/ftproot/data.bin"
cat > "$T/vsftpd.conf" <<EOF
listen=YES
listen_ipv6=NO
listen_address=203.0.113.10
background=NO
anonymous_enable=YES
no_anon_password=YES
anon_root=$T/ftproot
local_enable=NO
write_enable=NO
pasv_enable=YES
pasv_min_port=50000
pasv_max_port=50100
secure_chroot_dir=$T/empty
seccomp_sandbox=NO
xferlog_enable=NO
EOF
bg "$NS_SV" vsftpd /usr/sbin/vsftpd "$T/vsftpd.conf"
VSFTPD=$BG_PID
sleep 0.5
want=$(python3 -c 'import sys
h=14695981039346656037
for b in open(sys.argv[1],"rb").read():
    h=((h^b)*1099511628211) & 0xffffffffffffffff
print("%016x" % h)' "$T/ftproot/data.bin")

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
kill "$VSFTPD" 2>/dev/null
wait "$VSFTPD" 2>/dev/null
stop_ns_children "$NS_SV"
finish "$NAME"
