#!/usr/bin/env bash
# TFTP through SNAT: the read request goes via fw1 (whose TFTP helper
# expects the server's answer from a new port); the server's answer is held
# back until fw1 has failed, so the whole data flow goes through fw2 — which
# lets new UDP from the LAN through only to port 69, and nothing new from the
# WAN: the answer passes only as RELATED, by the synced expectation.  The
# file must arrive whole.  Negative control: expectation sync off.
. "$(dirname "$0")/lib.sh"
NAME="TFTP read: the data flow after failover (inject $INJECT)"
say "== $NAME"
preflight
[ -x /usr/sbin/in.tftpd ] && command -v tftp >/dev/null || { say "missing tftpd-hpa/tftp-hpa: make deps"; exit 1; }
topology
helper_ruleset "$NS_FW1" tftp udp 69; helper_ruleset "$NS_FW2" tftp udp 69
mkdir -p "$T/tftproot"
chmod 755 "$T/tftproot"
head -c 200000 /dev/urandom > "$T/tftproot/data.bin"
chmod 644 "$T/tftproot/data.bin"
bg "$NS_SV" tftpd /usr/sbin/in.tftpd --foreground --listen --address 203.0.113.10:69 \
	--secure "$T/tftproot"
TFTPD=$BG_PID
sleep 0.3
want=$(sha256sum < "$T/tftproot/data.bin" | cut -c1-64)

# The server's answer (from a port other than 69) never gets through fw1: it
# is dropped on fw1's WAN side, silently (an error at the server would end
# the transfer), and the server sends it again, as TFTP does, after the
# failover — to fw2.
hold()    { nsx "$NS_FW1" nft -f - <<'EOF'
table inet hold {
	chain pre {
		type filter hook prerouting priority -300;
		iifname "wan0" udp sport != 69 drop
	}
}
EOF
}
release() { nsx "$NS_FW1" nft delete table inet hold 2>/dev/null; }

run() {           # run LABEL -> $got (sha256 of what arrived, or "none")
	rm -f "$T/$1.bin"
	hold
	# the client must not send its request again (via fw2, whose own
	# helper would then expect the answer): retransmit after 30 s only
	printf 'binary\nrexmt 30\ntimeout 10\nget data.bin %s\nquit\n' "$T/$1.bin" > "$T/$1.cmd"
	ip netns exec "$NS_CL" timeout 15 tftp 203.0.113.10 < "$T/$1.cmd" >"$T/$1.log" 2>&1 &
	local client=$!
	PIDS+=($client)
	sleep 1
	info "$1: fw1 expects: $(nsx "$NS_FW1" conntrack -L expect 2>/dev/null | head -1 | cut -d' ' -f2-)"
	info "$1: fw2 expects: $(nsx "$NS_FW2" conntrack -L expect 2>/dev/null | head -1 | cut -d' ' -f2-)"
	failover "$NS_FW1" "$NS_FW2"
	wait "$client"
	release
	got=none
	[ -s "$T/$1.bin" ] && got=$(sha256sum < "$T/$1.bin" | cut -c1-64)
	info "$1: received $(stat -c %s "$T/$1.bin" 2>/dev/null || echo 0) bytes"
}

EXTRA_CONF1='expectations = { sync = false; };'
EXTRA_CONF2=$EXTRA_CONF1
start_daemons || finish "$NAME"
run no-exp-sync
[ "$got" != "$want" ] && ok "negative control: without expectation sync the transfer fails at fw2" ||
	fail "negative control: the file arrived without a synced expectation"
reset_cluster

EXTRA_CONF1='expectations = { sync = true; helpers = [ "tftp" ]; };'
EXTRA_CONF2=$EXTRA_CONF1
start_daemons || finish "$NAME"
run exp-sync
[ "$got" = "$want" ] && ok "the whole file arrived through fw2 (sha256 ${want:0:16}...)" ||
	fail "the transfer through fw2 failed"
kill "$TFTPD" 2>/dev/null
wait "$TFTPD" 2>/dev/null
stop_ns_children "$NS_SV"
finish "$NAME"
