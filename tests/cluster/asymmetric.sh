#!/usr/bin/env bash
# Active-active on asymmetric paths: the two directions of a connection
# cross different firewalls, and the first packet of each direction is held
# until the other firewall has the flow (defer = { ... }).
#
#   client .10 --[br-lan]-- lan0 fw1 (.1, .2) wan0 --[br-wan]-- server .10
#                      |                                  |
#                      +--- lan0 fw2 (.3)     wan0 (.3) --+
#
#   the client's route to the server is fw1 (.1), the server's route back
#   to the client fw2 (203.0.113.3): every SYN crosses fw1, every SYN-ACK
#   and every later server packet fw2.  No NAT; the ruleset is strict (new
#   TCP only with a SYN from the LAN, invalid dropped, no loose pick-up).
#   ctsyncd in routed active-active (buckets.filter = false: the network
#   picks the firewall), over the veth sync link.
#
# Negative controls first: without ctsyncd no connection gets through (fw2
# has no entry for the SYN-ACK); with ctsyncd but no defer they still fail
# (the SYN-ACK beats the replication to fw2, and fw1 never learns that the
# handshake went on at fw2, so the client's ACK is invalid there).  With
# defer every connection completes at once (no SYN sent again), a stream
# runs across both firewalls, and when fw1 dies and the client's route
# moves to fw2, the stream goes on through fw2.
: "${FAMILY:=4}"
. "$(dirname "$0")/lib.sh"
NAME="asymmetric paths (IPv$FAMILY): SYN via fw1, SYN-ACK via fw2, defer holds the first packets"
say "== $NAME"
preflight
topology
if [ "$FAMILY" = 6 ]; then
	SERVER=2001:db8:2::10; CLNET=2001:db8:1::/64; FW2_WAN=2001:db8:2::3; FW2_LAN=2001:db8:1::3
	IPF=-6
else
	SERVER=203.0.113.10; CLNET=198.51.100.0/24; FW2_WAN=203.0.113.3; FW2_LAN=198.51.100.3
	IPF=-4
fi
for i in $FWS; do
	nsx "$P-fw$i" nft delete table ip nat
	nsx "$P-fw$i" nft delete table ip6 nat
	nsx "$P-fw$i" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
		net.ipv4.conf.all.send_redirects=0 >/dev/null
done
nsx "$NS_SV" ip $IPF route add "$CLNET" via "$FW2_WAN"
# one server port per phase: the server still answers a failed phase's
# connections (SYN-ACKs sent again for half a minute), and a client port
# used again for the same server port would meet that old state
for port in 8081 8082 8083 8084; do bg "$NS_SV" "echo-$port" "$B/ctsync-testtool" tcp-echo $port; done
sleep 0.3

connects() {          # connects PORT N TIMEOUT_MS: N connections, one after the other
	nsx "$NS_CL" "$B/ctsync-testtool" tcp-connects "$SERVER" "$1" "$2" "$3" > "$T/c$1.log" 2>&1
	tail -n 1 "$T/c$1.log"
}

# -- negative control 1: no ctsyncd
line=$(connects 8081 3 2000)
if [ "$(kv echoed "$line")" = 0 ]; then
	ok "negative control without ctsyncd: no connection through the asymmetric path ($line)"
else
	fail "negative control without ctsyncd: $line"
fi

# -- negative control 2: ctsyncd, routed active-active, no defer
export SYNC_EXTRA='mode = "active-active";'
export EXTRA_CONF1='buckets = { filter = false; };' EXTRA_CONF2='buckets = { filter = false; };'
for i in $FWS; do start_daemon "$i" primary || finish "$NAME"; done
wait_in_sync "$NS_FW1" 15 || { fail "no sync"; finish "$NAME"; }
line=$(connects 8082 4 2500)
if [ "$(kv echoed "$line")" = 0 ]; then
	ok "negative control with ctsyncd but no defer: no connection works ($line)"
else
	fail "negative control without defer: $line"
fi
for i in $FWS; do kill_daemon "$i"; nsx "$P-fw$i" conntrack -F >/dev/null 2>&1; done

# -- with defer
DEFER='defer = { timeout = 20; };'
export EXTRA_CONF1="buckets = { filter = false; }; $DEFER" EXTRA_CONF2="buckets = { filter = false; }; $DEFER"
for i in $FWS; do start_daemon "$i" primary || finish "$NAME"; done
wait_in_sync "$NS_FW1" 15 || { fail "no sync"; finish "$NAME"; }
for i in $FWS; do
	nsx "$P-fw$i" nft list table inet ctsync_defer >/dev/null 2>&1 ||
		fail "fw$i: no table inet ctsync_defer"
done
N=50
line=$(connects 8083 "$N" 2000)
if [ "$(kv echoed "$line")" = "$N" ] && [ "$(kv slow "$line")" = 0 ]; then
	ok "with defer: all $N connections through the asymmetric path, none slow ($line)"
else
	fail "with defer: $line"
fi
acked=$(ctstat "$NS_FW1" defer_acked); tmo=$(ctstat "$NS_FW1" defer_timeouts)
hs=$(ctstat "$NS_FW2" hints_sent); ha=$(ctstat "$NS_FW1" hints_applied)
hold=$(ctstat "$NS_FW1" defer_hold_us); held=$(ctstat "$NS_FW1" defer_held)
hold2=$(ctstat "$NS_FW2" defer_hold_us); held2=$(ctstat "$NS_FW2" defer_held)
info "fw1: $held first packets held, $acked let go when fw2 had the flow, $tmo timed out, average hold $((hold / (held > 0 ? held : 1))) us, longest $(ctstat "$NS_FW1" defer_hold_max_us) us"
info "fw2: $held2 SYN-ACKs held, $hs hints sent; fw1 applied $ha; average hold $((hold2 / (held2 > 0 ? held2 : 1))) us"
[ "$acked" -ge "$N" ] && [ "$ha" -ge "$N" ] && [ "$hs" -ge "$N" ] ||
	fail "expected at least $N acknowledged holds and hints (acked $acked, hints $hs/$ha)"
ctl "$NS_FW1" status | grep -E '^defer' | sed 's/^/  fw1 /'

# a stream across both firewalls, then fw1 dies and the route moves to fw2
bg "$NS_CL" pos-stream "$B/ctsync-testtool" tcp-stream "$SERVER" 8084 8 20
STREAM=$BG_PID
sleep 3
kill_daemon 1 KILL
for l in lan0 wan0 sync0; do nsx "$NS_FW1" ip link set $l down; done
nsx "$NS_CL" ip $IPF route replace default via "$FW2_LAN"
info "fw1 died (SIGKILL, links down); the client's route moved to fw2"
wait "$STREAM"
stream_survived "$(tail -n 1 "$T/pos-stream.log")" 300 \
	"a stream across both firewalls, then through fw2 alone after fw1 died"
finish "$NAME"
