#!/usr/bin/env bash
# Active-active under a real pacemaker cluster: corosync and pacemaker on
# three firewalls (pcmk-lib.sh), ctsyncd in sync.mode "active-active" run
# by our OCF agent as a promotable clone with promoted-max = 3 — promoted
# means "holds buckets", each instance starts drained (role backup) and is
# promoted by pacemaker.  NCL TCP streams through the shared gateway
# (topology_shared: every firewall forwards the flows of its buckets); one
# node is killed mid-stream (every process SIGKILLed, links down), the
# others take its buckets and its streams; it is started again, pacemaker
# starts and promotes its ctsyncd, and it takes its buckets back — still
# mid-stream.  Negative control first: the same rule and takeover by hand,
# without ctsyncd (aa-lib.sh).
NFW=3
TRANSPORT=cpg
: "${NCL:=12}"
. "$(dirname "$0")/lib.sh"
NAME="pacemaker, active-active: 3 promoted instances, one node killed mid-stream and back"
say "== $NAME"
preflight
topology_shared
. "$(dirname "$0")/aa-lib.sh"
. "$(dirname "$0")/pcmk-lib.sh"

aa_negative_control 1

export SYNC_EXTRA='mode = "active-active";'
AA_DAEMONS=1
pcmk_cluster
cib cibadmin --create -o resources --xml-text "$(PROMOTED_MAX=$NFW clone_xml)" || fail "cibadmin: clone"
npromoted() { cib_on "$1" crm_resource --locate -r ctsync-clone 2>/dev/null | grep -c ' Promoted'; }
all_promoted() { [ "$(npromoted "$1")" = "$2" ] && echo yes; }
wait_for 60 all_promoted 1 "$NFW" >/dev/null && ok "pacemaker promoted all $NFW instances" ||
	fail "pacemaker promoted $(npromoted 1) of $NFW instances"
report_all_hold 30 || { cib crm_mon -1; finish "$NAME"; }
streams pos 20
sleep 3
all_forward
n1=${ON[1]}
kill_node 1 keep
info "fw1 killed (every process SIGKILLed, links down) with $n1 streams"
sleep 4
survivors_hold 1
# it comes back: sync link, then its cluster stack (pacemaker starts its
# ctsyncd, whose table starts empty), then its traffic links
nsx "$NS_FW1" ip link set sync0 up
start_node 1
alive_sock() { [ -S "$T/node1/run/ctsync/ctsyncd.sock" ] && ctl "$NS_FW1" status >/dev/null 2>&1 && echo up; }
wait_for 30 alive_sock >/dev/null || fail "pacemaker did not start ctsyncd on fw1 again"
nsx "$NS_FW1" ip link set lan0 up
nsx "$NS_FW1" ip link set wan0 up
info "fw1 back: cluster stack started, ctsyncd up, links up"
wait_streams
streams_survived pos 5000 "fw1 killed and back mid-stream under pacemaker ($n1 of the streams fw1's)"
wait_for 40 all_promoted 2 "$NFW" >/dev/null && ok "pacemaker promoted fw1's instance again" ||
	fail "pacemaker promoted $(npromoted 2) of $NFW instances after fw1's return"
if all_hold 30; then
	ok "fw1 complete again: in sync, holding $(held_by 1) buckets"
else
	fail "fw1 did not come back to holding its buckets"
fi
finish "$NAME"
