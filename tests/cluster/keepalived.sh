#!/usr/bin/env bash
# A real keepalived VRRP pair (VRRPv3, advert_int 0.1, one instance holding
# the LAN and WAN virtual addresses, track_interface on both links) drives
# failover through the project's scripts while a TCP stream runs through the
# cluster: fw1 tells ctsyncd through the notify FIFO
# (scripts/keepalived/ctsync-notify-fifo), fw2 through the notify script
# (scripts/keepalived/ctsync-notify), so both paths are exercised.
#   1. keepalived on the master is SIGKILLed (no clean-up: its addresses
#      stay, it simply stops advertising): fw2 takes over;
#   2. keepalived on fw1 comes back and preempts: fw1 takes over again;
#   3. fw1's WAN link goes down: FAULT, fw2 takes over.
# The stream must survive all three: every line echoed, in order, no reset.
# Negative control: the same first failover without ctsyncd breaks it.
. "$(dirname "$0")/lib.sh"
NAME="keepalived VRRP pair drives failover (SIGKILL, preemption, link down)"
say "== $NAME"
preflight
topology
. "$(dirname "$0")/ka-lib.sh"
bg "$NS_SV" echo "$B/ctsync-testtool" tcp-echo 8080

ka_conf 1; ka_conf 2

# -- negative control: keepalived alone, no ctsyncd
ka_start 1 && ka_start 2 || finish "$NAME"
wait_for 10 has_vip "$NS_FW1" || fail "fw1 never became VRRP master"
bg "$NS_CL" neg "$B/ctsync-testtool" tcp-stream 203.0.113.10 8080 6 20
client=$BG_PID
sleep 2
ka_stop 1 KILL
wait_for 5 has_vip "$NS_FW2" && info "without ctsyncd: fw2 is VRRP master" || fail "fw2 did not take over"
wait "$client"
line=$(tail -n 1 "$T/neg.log")
info "without ctsyncd: $line"
if [ "$(kv connected "$line")" = 1 ] && [ "$(kv echoed "$line")" -lt "$(kv sent "$line")" ]; then
	ok "negative control: keepalived's failover alone broke the stream"
else
	fail "negative control: the stream survived without ctsyncd"
fi
ka_stop 2
vip_del "$NS_FW1"; vip_del "$NS_FW2"      # what the killed keepalived left
for i in 1 2; do nsx "$P-fw$i" conntrack -F >/dev/null 2>&1; done
nsx "$NS_CL" ip neigh flush dev eth0; nsx "$NS_SV" ip neigh flush dev eth0
rm -f "$T"/ka-*.pid

# -- with ctsyncd, driven by keepalived
start_daemons || finish "$NAME"
# fw2's keepalived starts once fw1 is master: two started within a few ms
# both time out as backup at once and both become master (then fw2 stays
# primary — seen in 1 of about 10 runs); what follows tests failovers, not
# a simultaneous VRRP start
ka_start 1 && wait_for 10 has_vip "$NS_FW1" && ka_start 2 || finish "$NAME"
wait_for 10 has_vip "$NS_FW1" && wait_for 5 primary "$NS_FW1" ||
	fail "fw1 not VRRP master and primary at start (role $(role "$NS_FW1"))"
wait_for 5 primary "$NS_FW1" && [ "$(role "$NS_FW2")" = backup ] &&
	ok "start: fw1 is VRRP master and ctsyncd primary, fw2 backup" ||
	fail "start: fw1 $(role "$NS_FW1"), fw2 $(role "$NS_FW2")"
bg "$NS_CL" pos "$B/ctsync-testtool" tcp-stream 203.0.113.10 8080 20 20
client=$BG_PID
sleep 3

ka_stop 1 KILL                                        # 1. SIGKILL on the master
if wait_for 5 primary "$NS_FW2"; then
	ok "keepalived SIGKILLed on fw1: fw2 became master and ctsyncd there primary"
else
	fail "fw2 not promoted after keepalived died on fw1 (role $(role "$NS_FW2"))"
fi
sleep 3
rm -f "$T"/ka-fw1.pid "$T"/ka-vrrp-fw1.pid
ka_start 1                                            # 2. back, preempting
if wait_for 5 primary "$NS_FW1" && wait_for 5 eval '[ "$(role "$NS_FW2")" = backup ]'; then
	ok "keepalived back on fw1: it preempted, fw1 primary, fw2 demoted"
else
	fail "after preemption: fw1 $(role "$NS_FW1"), fw2 $(role "$NS_FW2")"
fi
sleep 3
nsx "$NS_FW1" ip link set wan0 down                   # 3. link down on the master
if wait_for 5 primary "$NS_FW2" && wait_for 5 eval '[ "$(role "$NS_FW1")" = backup ]'; then
	ok "fw1's WAN link down: FAULT on fw1 (demoted), fw2 master and primary"
else
	fail "after link down: fw1 $(role "$NS_FW1"), fw2 $(role "$NS_FW2")"
fi
wait "$client"
line=$(tail -n 1 "$T/pos.log")
stream_survived "$line" 800 "through all three failovers"
info "fw1 (FIFO): $(grep -c 'ctsync-notify' "$T/notify-fw1.log" 2>/dev/null) transitions: $(grep -o '^ctsync-notify: [A-Z]*' "$T/notify-fw1.log" | cut -d' ' -f2 | tr '\n' ' ')"
info "fw2 (notify script): $(grep -o '^ctsync-notify: [A-Z]*' "$T/notify-fw2.log" | cut -d' ' -f2 | tr '\n' ' ')"
ka_stop 1
ka_stop 2
finish "$NAME"
