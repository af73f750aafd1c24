#!/usr/bin/env bash
# PPTP through SNAT: pptp-linux (client, LAN) calls pptpd (server, WAN) via
# fw1, whose PPTP helper expects the GRE tunnel in both directions.  Checked:
# fw2's kernel holds the same two expectations as fw1's (conntrack -L
# expect), and none without expectation sync.  Then fw1 fails before any
# tunnel packet has passed it and PPP frames go into the tunnel via fw2.
#
# That the tunnel then carries nothing is a KERNEL LIMIT, shown here and not
# asserted away (docs/ARCHITECTURE.md, "PPTP"): the kernel's GRE tracker finds
# the source call ID of a PPTP packet in a key map that only the PPTP
# helper's own parsing of the call set-up fills, and that ctnetlink can
# neither read nor write; on fw2 the client's GRE packets therefore carry
# source key 0 and match neither the synced expectation nor a synced GRE
# flow.  The test fails if the expectations are not synced, and says so if a
# kernel lets the tunnel through.
#
# There is no PPP in this kernel: the PPP ends are tests/tools/pptp_peer.py
# (an echo in place of pppd under pptpd, a frame counter on pptp's stdin).
. "$(dirname "$0")/lib.sh"
NAME="PPTP: GRE tunnel after failover (inject $INJECT)"
say "== $NAME"
preflight
[ -x /usr/sbin/pptpd ] && [ -x /usr/sbin/pptp ] || { say "missing pptpd/pptp-linux: make deps"; exit 1; }
topology
helper_ruleset "$NS_FW1" pptp tcp 1723; helper_ruleset "$NS_FW2" pptp tcp 1723
PEER=$TOP/tests/tools/pptp_peer.py
printf 'localip 198.18.1.1\nremoteip 198.18.1.2\n' > "$T/pptpd.conf"
mkdir -p /var/run/pptp      # pptp's call manager socket lives there

# The server's pppd stand-in says hello at once; that first tunnel packet
# must not pass fw1 (it would use up the expectation there), so GRE from the
# WAN is dropped before conntrack on fw1 until it fails.
hold() { nsx "$NS_FW1" nft -f - <<'EOF2'
table inet hold {
	chain pre {
		type filter hook prerouting priority -300;
		iifname "wan0" ip protocol gre drop
	}
}
EOF2
}
release() { nsx "$NS_FW1" nft delete table inet hold 2>/dev/null; }

run() {           # run LABEL -> $echoed
	hold
	bg "$NS_SV" "$1-pptpd" /usr/sbin/pptpd --fg --conf "$T/pptpd.conf" --ppp "$PEER" \
		--listen 203.0.113.10 --pidfile "$T/pptpd.pid" --noipparam
	local pptpd=$BG_PID trig=$T/trigger-$1
	sleep 0.5
	bg "$NS_CL" "$1" /usr/bin/python3 "$PEER" client 203.0.113.10 "$trig" 20 20
	local client=$BG_PID
	# the call is up when fw1 expects the tunnel both ways
	local deadline=$((SECONDS + 10))
	while [ "$(nsx "$NS_FW1" conntrack -L expect 2>/dev/null | grep -c 'proto=47')" -lt 2 ] &&
	      [ $SECONDS -lt $deadline ]; do sleep 0.1; done
	sleep 0.5         # the server has said hello (into the hold)
	snap_expectations "$1"
	info "$1: fw1 expects $(wc -l < "$T/$1.exp1"), fw2 $(wc -l < "$T/$1.exp2"): $(head -1 "$T/$1.exp1")"
	failover "$NS_FW1" "$NS_FW2"
	release
	touch "$trig"
	wait "$client"
	echoed=$(kv echoed "$(grep '^sent=' "$T/$1.log")")
	info "$1: PPP frames through the tunnel: $(grep '^sent=' "$T/$1.log")"
	kill "$pptpd" 2>/dev/null
	wait "$pptpd" 2>/dev/null
	stop_ns_children "$NS_SV"
	stop_ns_children "$NS_CL"
}

EXTRA_CONF1='expectations = { sync = false; };'
EXTRA_CONF2=$EXTRA_CONF1
start_daemons || finish "$NAME"
run no-exp-sync
[ ! -s "$T/no-exp-sync.exp2" ] && [ "${echoed:-0}" = 0 ] &&
	ok "negative control: without expectation sync fw2 expects nothing and drops the tunnel" ||
	fail "negative control: fw2 expects $(wc -l < "$T/no-exp-sync.exp2"), $echoed frames came through"
reset_cluster
nsx "$NS_CL" ip neigh flush dev eth0 2>/dev/null
nsx "$NS_SV" ip neigh flush dev eth0 2>/dev/null

EXTRA_CONF1='expectations = { sync = true; helpers = [ "pptp" ]; };'
EXTRA_CONF2=$EXTRA_CONF1
start_daemons || finish "$NAME"
run exp-sync
if [ "${echoed:-0}" -ge 18 ]; then
	ok "GRE tunnel through fw2 after failover: $echoed of 20 frames came back (this kernel keys GRE without the helper's map: update the docs)"
else
	info "known kernel limit: the tunnel through fw2 carried ${echoed:-0} of 20 frames (GRE key map private to the PPTP helper)"
fi
expectations_synced exp-sync 2
finish "$NAME"
