#!/usr/bin/env bash
# Active-active over corosync CPG: nodes that fail one at a time do not
# take the cluster down.  Three firewalls on shared segments, NCL TCP
# streams through them; corosync's votequorum with last_man_standing
# (window LMS_MS), auto_tie_breaker and wait_for_all (which corosync
# requires with both on an odd number of nodes).  fw3 dies (daemon and corosync
# SIGKILLed, its links down), then fw2 GAP seconds later: the expected
# votes follow the deaths, and fw1, the last one (and the lowest node id:
# the tie-breaker of a 1-of-2 split), holds every bucket; every stream
# survives both deaths, 0 packets forwarded twice, no bucket in two sets.
#
# Negative control first: the same two deaths, a few seconds apart, with
# votequorum's defaults: fw1 alone has 1 of 3 votes, is not quorate, and
# lets go of every bucket — the streams stop.
: "${NFW:=3}"
: "${NCL:=12}"
: "${GAP:=30}"
: "${LMS_MS:=5000}"
TRANSPORT=cpg
. "$(dirname "$0")/lib.sh"
NAME="active-active over CPG: two nodes die $GAP s apart, the last one forwards every bucket"
say "== $NAME"
preflight
topology_shared
. "$(dirname "$0")/aa-lib.sh"
export SYNC_EXTRA='mode = "active-active";'
AA_DAEMONS=1

node_dies() {         # node_dies ID: its daemon and corosync SIGKILLed, links down
	kill_daemon "$1" KILL
	kill_corosync "$1" KILL
	links_down "$1"
}
restore_all() {
	local i
	aa_stop_all
	for i in $FWS; do links_up "$i"; done
}

# -- negative control: votequorum's defaults
for i in $FWS; do start_daemon "$i" primary || finish "$NAME"; done
report_all_hold 20 || finish "$NAME"
streams neg 14
sleep 2
node_dies 3
sleep 4
node_dies 2
sleep 5
q1=$(quorum_of 1); h1=$(held_by 1)
wait_streams
broke=0
for k in $(seq 0 $((NCL - 1))); do
	line=$(tail -n 1 "$T/neg-$k.log")
	[ "$(kv echoed "$line")" -lt "$(kv sent "$line")" ] && broke=$((broke + 1))
done
info "without last_man_standing, after both deaths: fw1 quorum: $q1; holding $h1; $broke of $NCL streams broke"
case $q1 in
*NOT*) [ "$h1" = 0 ] && [ "$broke" = "$NCL" ] &&
	ok "negative control: the last node is not quorate, holds nothing, every stream stops" ||
	fail "negative control: fw1 not quorate but holds $h1 buckets, $broke streams broke" ;;
*) fail "negative control: fw1 alone is quorate without last_man_standing ($q1)" ;;
esac
restore_all

# -- last_man_standing and auto_tie_breaker
export COROSYNC_VOTEQUORUM="last_man_standing: 1
last_man_standing_window: $LMS_MS
auto_tie_breaker: 1
wait_for_all: 1"
for i in $FWS; do start_daemon "$i" primary || finish "$NAME"; done
report_all_hold 20 || finish "$NAME"
secs=$((GAP + 16))
streams pos "$secs"
udp_flow pos "$((secs - 1))"
sets_sampler pos "$((secs - 3))"
dup_capture pos "$((secs - 2))"
sleep 2
all_forward
node_dies 3
sleep "$GAP"
info "fw3 dead for $GAP s: fw1 holds $(held_by 1), fw2 $(held_by 2); fw1 quorum: $(quorum_of 1)"
info "votequorum on fw1: $(nsx "$NS_FW1" corosync-quorumtool -s 2>/dev/null |
	sed -n 's/^Expected votes: *\([0-9]*\).*/expected \1/p; s/^Total votes: *\([0-9]*\).*/total \1/p' | tr '\n' ' ')"
node_dies 2
deadline=$((SECONDS + 10))
while [ $SECONDS -lt $deadline ] && [ "$(held_by 1)" != "$NB" ]; do sleep 0.2; done
q1=$(quorum_of 1)
info "fw2 dead too: fw1 quorum: $q1; holding $(held_by 1) of $NB"
case $q1 in *NOT*) fail "fw1, the last node, lost quorum" ;; esac
[ "$(held_by 1)" = "$NB" ] && ok "the last node holds every bucket" ||
	fail "the last node holds $(held_by 1) of $NB buckets"
wait_streams
wait "$CAPTURE_PID" "$SAMPLER_PID" 2>/dev/null
streams_survived pos 5000 "two deaths $GAP s apart"
udp_survived pos 5000 "two deaths $GAP s apart"
never_twice pos
info "fw1: quorum_losses $(ctstat "$NS_FW1" quorum_losses), lease_lapses $(ctstat "$NS_FW1" lease_lapses)"
unset COROSYNC_VOTEQUORUM
finish "$NAME"
