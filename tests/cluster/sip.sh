#!/usr/bin/env bash
# SIP through SNAT: a call is set up via fw1 by two real user agents (sipp
# as caller on the LAN, sipp as callee on the WAN).  fw1's SIP helper reads
# both SDP bodies and expects the media: the callee's RTP/RTCP to the caller
# (NATed: to the WAN VIP, forwarded to the client) and the caller's to the
# callee.  fw1 fails before any media flows; then media in both directions
# goes through fw2 — which lets new UDP from the LAN through only to port
# 5060 and nothing new from the WAN: it passes only as RELATED, by the synced
# expectations.  The call then ends with a BYE through fw2 (the signalling
# connection, with its helper, was synced too).  Negative control:
# expectation sync off.
. "$(dirname "$0")/lib.sh"
NAME="SIP call: media after failover (inject $INJECT)"
say "== $NAME"
preflight
command -v sipp >/dev/null || { say "missing sipp (sip-tester): make deps"; exit 1; }
topology
helper_ruleset "$NS_FW1" sip udp 5060; helper_ruleset "$NS_FW2" sip udp 5060
DATA=$TOP/tests/cluster/data
HOLD_MS=9000          # the call lasts this long after the ACK

# media endpoints: the callee echoes the caller's RTP (to its SDP port 6100),
# the caller echoes the callee's RTCP (to its SDP port 6001, via the VIP)
bg "$NS_SV" echo-sv "$B/ctsync-testtool" udp-echo 6100
bg "$NS_CL" echo-cl "$B/ctsync-testtool" udp-echo 6001

expects() { nsx "$1" conntrack -L expect 2>/dev/null | grep -c 'proto=17'; }

run() {           # run LABEL -> $rtp_a (caller->callee echoes), $rtp_b, $call
	# sipp writes its error traces into the working directory
	(cd "$T" && exec ip netns exec "$NS_SV" sipp -sf "$DATA/sip-uas.xml" -i 203.0.113.10 \
		-p 5060 -mp 16000 -m 1 -nostdin -timeout 40s -timeout_error \
		>"$T/$1-uas.log" 2>&1) &
	local uas=$!
	PIDS+=($uas)
	sleep 0.5
	(cd "$T" && exec ip netns exec "$NS_CL" sipp -sf "$DATA/sip-uac.xml" -i 198.51.100.10 \
		-p 5060 -mp 16000 -m 1 -d $HOLD_MS -s callee -nostdin -timeout 40s -timeout_error \
		203.0.113.10:5060 >"$T/$1-uac.log" 2>&1) &
	local uac=$!
	PIDS+=($uac)
	# the call is up when fw1's helper expects the media of both offers
	local deadline=$((SECONDS + 10))
	while [ "$(expects "$NS_FW1")" -lt 4 ] && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
	sleep 0.3
	snap_expectations "$1"
	info "$1: fw1 expects $(wc -l < "$T/$1.exp1"), fw2 $(wc -l < "$T/$1.exp2"): $(head -1 "$T/$1.exp1")"
	failover "$NS_FW1" "$NS_FW2"
	# RTP caller -> callee (from the caller's SDP port) and RTCP callee ->
	# caller (to the address and port fw1's NAT put into the offer)
	ip netns exec "$NS_CL" "$B/ctsync-testtool" udp-ping 203.0.113.10 6100 6000 3 100 \
		>"$T/$1-rtp-a.log" 2>&1 &
	local a=$!
	ip netns exec "$NS_SV" "$B/ctsync-testtool" udp-ping 203.0.113.1 6001 6201 3 100 \
		>"$T/$1-rtp-b.log" 2>&1 &
	local b=$!
	PIDS+=($a $b)
	wait $a $b
	rtp_a=$(kv echoed "$(cat "$T/$1-rtp-a.log")")
	rtp_b=$(kv echoed "$(cat "$T/$1-rtp-b.log")")
	info "$1: caller->callee media: $(cat "$T/$1-rtp-a.log"); callee->caller: $(cat "$T/$1-rtp-b.log")"
	call=failed
	wait "$uac" && wait "$uas" && call=ok
	info "$1: call (INVITE via fw1, BYE via fw2): $call"
}

EXTRA_CONF1='expectations = { sync = false; };'
EXTRA_CONF2=$EXTRA_CONF1
start_daemons || finish "$NAME"
run no-exp-sync
[ "${rtp_a:-0}" = 0 ] && [ "${rtp_b:-0}" = 0 ] &&
	ok "negative control: without expectation sync fw2 drops the media in both directions" ||
	fail "negative control: media passed fw2 without synced expectations ($rtp_a, $rtp_b echoed)"
reset_cluster
nsx "$NS_CL" ip neigh flush dev eth0 2>/dev/null
nsx "$NS_SV" ip neigh flush dev eth0 2>/dev/null

EXTRA_CONF1='expectations = { sync = true; helpers = [ "sip" ]; };'
EXTRA_CONF2=$EXTRA_CONF1
start_daemons || finish "$NAME"
run exp-sync
# 30 datagrams each way in 3 s; the first may be lost to ARP after failover
[ "${rtp_a:-0}" -ge 25 ] && ok "caller->callee media through fw2: $rtp_a of 30 echoed" ||
	fail "caller->callee media through fw2: ${rtp_a:-0} of 30 echoed"
[ "${rtp_b:-0}" -ge 25 ] && ok "callee->caller media (NATed, to the VIP) through fw2: $rtp_b of 30 echoed" ||
	fail "callee->caller media through fw2: ${rtp_b:-0} of 30 echoed"
[ "$call" = ok ] && ok "the call ended cleanly with a BYE through fw2" || fail "the call did not end cleanly"
expectations_synced exp-sync 4
finish "$NAME"
