#!/usr/bin/env bash
# Active-active: a partition of the sync link alone, over corosync CPG
# (corosync's votequorum) and over UDP (ctsyncd's quorum by majority).
# Three firewalls on shared segments, NCL TCP streams through them, a
# capture at the client counting packets forwarded twice and every node's
# held set sampled every 50 ms.  fw1's sync link is cut for 10 s while its
# LAN and WAN stay up — first by dropping everything on sync0 (nftables),
# then by taking the link down — and healed each time: corosync splits the
# cluster into {fw1} and {fw2, fw3}; votequorum tells fw1 its side is not
# quorate and it lets go of its buckets; fw2 and fw3 take them once fw1's
# lease has run out.  After the heal fw1 takes its own back.  Every stream
# must survive, 0 packets forwarded twice, no bucket in two sets, and the
# three kernels hold the same flows.
#
# Negative control first: the same cut with a corosync that has no quorum
# provider (every partition quorate): fw1 goes on forwarding its buckets
# beside the two that took them.
#
# Then the same topology over UDP: fw1 loses contact with a majority and
# lets go; the others take its buckets once its set has certainly run out.
# Negative control: buckets.quorum = "off".
: "${NFW:=3}"
: "${NCL:=12}"
TRANSPORT=cpg
. "$(dirname "$0")/lib.sh"
NAME="active-active over CPG and UDP: the sync link of one node cut, nothing forwarded twice (quorum)"
say "== $NAME"
preflight
topology_shared
. "$(dirname "$0")/aa-lib.sh"
. "$(dirname "$0")/ocf-lib.sh"
export SYNC_EXTRA='mode = "active-active";'
AA_DAEMONS=1

stop_all() {
	local i
	stop_daemons
	for i in $FWS; do kill_corosync "$i"; done
	for i in $FWS; do
		nsx "$P-fw$i" nft delete table inet ctsync 2>/dev/null
		nsx "$P-fw$i" conntrack -F >/dev/null 2>&1
	done
}

# -- negative control: corosync without a quorum provider
export COROSYNC_QUORUM=0
for i in $FWS; do start_daemon "$i" primary || finish "$NAME"; done
report_all_hold 20 || finish "$NAME"
info "fw1: quorum: $(quorum_of 1)"
streams neg 9
sleep 2
sets_sampler neg 5
dup_capture neg 5
sync_drop 1 on
sleep 4
sync_drop 1 off
wait_streams
wait "$CAPTURE_PID" "$SAMPLER_PID" 2>/dev/null
twice_seen neg "no quorum provider, fw1's sync link cut (it forwards on)"
stop_all
unset COROSYNC_QUORUM

# -- with corosync's votequorum
for i in $FWS; do start_daemon "$i" primary || finish "$NAME"; done
report_all_hold 20 || finish "$NAME"
info "fw1: quorum: $(quorum_of 1)"
streams pos 40
udp_flow pos 39
sets_sampler pos 37
dup_capture pos 38
sleep 2
all_forward
score_before=$(ocf_score 1)
for how in drop down; do
	if [ $how = drop ]; then sync_drop 1 on; else nsx "$NS_FW1" ip link set sync0 down; fi
	sleep 3
	q1=$(quorum_of 1)
	info "fw1's sync link cut ($how): fw1 quorum: $q1; holding $(held_by 1), fw2 $(held_by 2), fw3 $(held_by 3)"
	case $q1 in *NOT*) ;; *) fail "fw1 still says it is quorate while cut off" ;; esac
	if [ $how = drop ]; then
		score=$(ocf_score 1)
		[ "$score_before" = 100 ] && [ "$score" = -INFINITY ] &&
			ok "the OCF agent's monitor: fw1's promotion score $score_before, $score while not quorate (pacemaker demotes it)" ||
			fail "the OCF agent's promotion score for fw1: '$score_before' before the cut, '$score' during it"
	fi
	sleep 7
	if [ $how = drop ]; then sync_drop 1 off; else nsx "$NS_FW1" ip link set sync0 up; fi
	if all_hold 20; then
		info "healed: every bucket held again, fw1 $(held_by 1)"
	else
		fail "not every bucket held after the heal ($how)"
	fi
	sleep 1
done
wait_streams
wait "$CAPTURE_PID" "$SAMPLER_PID" 2>/dev/null
streams_survived pos 5000 "two cuts of fw1's sync link"
udp_survived pos 5000 "two cuts of fw1's sync link"
never_twice pos
sleep 1
ct_table "$NS_FW1" > "$T/t1"; ct_table "$P-fw2" > "$T/t2"; ct_table "$P-fw3" > "$T/t3"
if cmp -s "$T/t1" "$T/t2" && cmp -s "$T/t2" "$T/t3"; then
	ok "after the heals the three kernels hold the same $(wc -l < "$T/t1") flows"
else
	fail "tables differ after the heal: $(wc -l < "$T/t1") / $(wc -l < "$T/t2") / $(wc -l < "$T/t3")"
fi
for i in $FWS; do
	info "fw$i: quorum_losses $(ctstat "$P-fw$i" quorum_losses), lease_lapses $(ctstat "$P-fw$i" lease_lapses), bucket_conflicts $(ctstat "$P-fw$i" bucket_conflicts)"
done
stop_all

# -- over UDP, negative control: no quorum
TRANSPORT=udp
for i in $FWS; do printf -v "EXTRA_CONF$i" '%s' 'buckets = { quorum = "off"; };'; done
for i in $FWS; do start_daemon "$i" primary || finish "$NAME"; done
report_all_hold 20 || finish "$NAME"
info "fw1 (UDP, quorum off): $(quorum_of 1)"
streams uneg 9
sleep 2
sets_sampler uneg 5
dup_capture uneg 5
sync_drop 1 on
sleep 4
sync_drop 1 off
wait_streams
wait "$CAPTURE_PID" "$SAMPLER_PID" 2>/dev/null
twice_seen uneg "UDP without quorum, fw1's sync link cut (it forwards on)"
stop_all
for i in $FWS; do unset "EXTRA_CONF$i"; done

# -- over UDP, quorum by majority (the default with 3 nodes)
for i in $FWS; do start_daemon "$i" primary || finish "$NAME"; done
report_all_hold 20 || finish "$NAME"
info "fw1 (UDP): $(quorum_of 1)"
streams upos 34
udp_flow upos 33
sets_sampler upos 31
dup_capture upos 32
sleep 2
all_forward
for how in drop down; do
	if [ $how = drop ]; then sync_drop 1 on; else nsx "$NS_FW1" ip link set sync0 down; fi
	sleep 3
	q1=$(quorum_of 1)
	info "UDP, fw1's sync link cut ($how): fw1 quorum: $q1; holding $(held_by 1), fw2 $(held_by 2), fw3 $(held_by 3)"
	case $q1 in *NOT*) ;; *) fail "fw1 still says it is quorate while cut off (UDP)" ;; esac
	case $(quorum_of 2) in *NOT*) fail "fw2 lost quorum beside fw3 (UDP)" ;; esac
	sleep 7
	if [ $how = drop ]; then sync_drop 1 off; else nsx "$NS_FW1" ip link set sync0 up; fi
	if all_hold 20; then
		info "healed: every bucket held again, fw1 $(held_by 1)"
	else
		fail "not every bucket held after the heal (UDP, $how)"
	fi
	sleep 1
done
wait_streams
wait "$CAPTURE_PID" "$SAMPLER_PID" 2>/dev/null
streams_survived upos 5000 "two cuts of fw1's sync link (UDP)"
udp_survived upos 5000 "two cuts of fw1's sync link (UDP)"
never_twice upos
sleep 1
ct_table "$NS_FW1" > "$T/t1"; ct_table "$P-fw2" > "$T/t2"; ct_table "$P-fw3" > "$T/t3"
if cmp -s "$T/t1" "$T/t2" && cmp -s "$T/t2" "$T/t3"; then
	ok "UDP: after the heals the three kernels hold the same $(wc -l < "$T/t1") flows"
else
	fail "UDP: tables differ after the heal: $(wc -l < "$T/t1") / $(wc -l < "$T/t2") / $(wc -l < "$T/t3")"
fi
for i in $FWS; do
	info "fw$i (UDP): quorum_losses $(ctstat "$P-fw$i" quorum_losses), lease_lapses $(ctstat "$P-fw$i" lease_lapses), bucket_conflicts $(ctstat "$P-fw$i" bucket_conflicts)"
done
finish "$NAME"
