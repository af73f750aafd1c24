#!/usr/bin/env bash
# A real pacemaker cluster of three firewalls: corosync and pacemaker in
# every firewall namespace, ctsyncd (over corosync CPG) run by our OCF
# agent as a promotable clone, the LAN and WAN VIPs (ocf:heartbeat:IPaddr2)
# placed with the promoted instance.  The promoted node is killed (every
# process of its namespace SIGKILLed, its links down): pacemaker promotes
# another and moves the VIPs, and a TCP stream SNATed through the cluster
# goes on.  Negative control first: the same cluster with the VIPs alone,
# no ctsyncd — the stream breaks when the VIPs move.
#
#   client --[br-lan]-- fw1 .2 / fw2 .3 / fw3 .4 --[br-wan]-- server
#                        VIPs .1 where pacemaker puts them
#                        sync0 198.18.0.N on br-sync: corosync (knet)
# (the cluster itself: pcmk-lib.sh)
NFW=3
TRANSPORT=cpg
. "$(dirname "$0")/lib.sh"
NAME="pacemaker: 3 nodes, promotable clone over CPG, the promoted node killed mid-stream"
say "== $NAME"
preflight
topology
vip_del "$NS_FW1"               # pacemaker places the VIPs
SERVER=203.0.113.10
bg "$NS_SV" echo "$B/ctsync-testtool" tcp-echo 8080
. "$(dirname "$0")/pcmk-lib.sh"

# -- the cluster
pcmk_cluster
cib cibadmin --create -o resources --xml-text "$VIPS" || fail "cibadmin: vips"
vipnode=$(wait_for 30 where 1 vip-wan) || { fail "the VIPs did not start"; cib crm_mon -1; finish "$NAME"; }
info "VIPs on $vipnode"

# -- negative control: VIPs alone, no ctsyncd
bg "$NS_CL" neg "$B/ctsync-testtool" tcp-stream "$SERVER" 8080 12 20
client=$BG_PID
sleep 2
dead=${vipnode#fw}
kill_node "$dead"
info "negative control: $vipnode killed"
alive=1; [ "$dead" = 1 ] && alive=2
moved=$(wait_for 30 elsewhere "$alive" vip-wan "$vipnode") ||
	fail "the VIPs did not move"
info "VIPs moved to $moved"
wait "$client"
stream_broke "$T/neg.log"

# the dead node comes back, its links and its stack
for l in lan0 wan0 sync0; do nsx "$P-fw$dead" ip link set $l up; done
for i in $FWS; do nsx "$P-fw$i" conntrack -F >/dev/null 2>&1; done
start_node "$dead"
wait_online "$alive" 3 || fail "$vipnode did not rejoin"

# -- with ctsyncd: the promotable clone, the VIPs with its promoted instance
cib_on "$alive" cibadmin --create -o resources --xml-text "$(clone_xml)" || fail "cibadmin: clone"
cib_on "$alive" cibadmin --create -o constraints --xml-text "$COLOCATE" || fail "cibadmin: colocation"
cib_on "$alive" cibadmin --create -o constraints --xml-text "$ORDER" || fail "cibadmin: order"
prom=$(wait_for 60 promoted_on "$alive") || { fail "no instance was promoted"; cib_on "$alive" crm_mon -1; finish "$NAME"; }
vipnode=$(wait_for 30 on_node "$alive" vip-wan "$prom") ||
	fail "the VIPs are not with the promoted instance ($prom)"
info "ctsyncd promoted on $prom, VIPs there; $(cib_on "$alive" crm_mon -1 | grep -c 'ctsync.*Unpromoted\|Unpromoted:') line(s) of unpromoted instances"
for i in $FWS; do wait_in_sync "$P-fw$i" 20 || fail "fw$i not in sync"; done
ctl "$P-fw${prom#fw}" status | grep -q '^role: *primary' && ok "$prom's ctsyncd is primary (pacemaker promoted it)" ||
	fail "$prom's ctsyncd is not primary"

bg "$NS_CL" pos "$B/ctsync-testtool" tcp-stream "$SERVER" 8080 16 20
client=$BG_PID
sleep 3
dead=${prom#fw}
alive=1; [ "$dead" = 1 ] && alive=2
kill_node "$dead"
info "$prom killed (every process SIGKILLed, links down)"
prom2=$(wait_for 40 promoted_elsewhere "$alive" "$prom") ||
	fail "pacemaker promoted nobody after $prom died"
info "pacemaker promoted $prom2"
wait "$client"
line=$(tail -n 1 "$T/pos.log")
info "with ctsyncd: $line"
if [ "$(kv echoed "$line")" = "$(kv sent "$line")" ] && [ "$(kv sent "$line")" -gt 600 ] &&
   [ "$(kv inorder "$line")" = 1 ] && [ "$(kv reset "$line")" = 0 ]; then
	ok "the stream survived the promoted node's death: every line echoed ($(kv sent "$line")) in order, no reset, longest pause $(kv maxgap_ms "$line") ms (pacemaker's own failover)"
else
	fail "the stream did not survive ($line)"
fi
ctl "$P-fw${prom2#fw}" status | grep -q '^role: *primary' && ok "$prom2's ctsyncd is primary" ||
	fail "$prom2's ctsyncd is not primary"
[ "$(where "$alive" vip-wan)" = "$prom2" ] && ok "the VIPs followed to $prom2" || fail "the VIPs are not on $prom2"
finish "$NAME"
