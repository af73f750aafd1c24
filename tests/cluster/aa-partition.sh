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

stop_all() { aa_stop_all; }

# the negative control: fw1's sync link cut for 4 s under streams, the
# capture and the sampler must see packets and buckets twice
neg_cut() {           # neg_cut LABEL WHAT
	for i in $FWS; do start_daemon "$i" primary || finish "$NAME"; done
	report_all_hold 20 || finish "$NAME"
	info "fw1: quorum: $(quorum_of 1)"
	streams "$1" 9
	sleep 2
	sets_sampler "$1" 5
	dup_capture "$1" 5
	sync_drop 1 on
	sleep 4
	sync_drop 1 off
	wait_streams
	wait "$CAPTURE_PID" "$SAMPLER_PID" 2>/dev/null
	twice_seen "$1" "$2"
	stop_all
}

# fw1's sync link cut twice for 10 s (nftables drop, then link down), under
# TCP streams and a UDP flow, healed each time; HOOK runs before the cuts
# ("HOOK before") and during the first ("HOOK during").  Nothing forwarded twice, every connection survives, the three
# kernels hold the same flows afterwards.
two_cuts() {          # two_cuts LABEL WHAT SECONDS HOOK
	local label=$1 what=$2 secs=$3 hook=$4 how q1
	for i in $FWS; do start_daemon "$i" primary || finish "$NAME"; done
	report_all_hold 20 || finish "$NAME"
	info "fw1 ($what): quorum: $(quorum_of 1)"
	streams "$label" "$secs"
	udp_flow "$label" "$((secs - 1))"
	sets_sampler "$label" "$((secs - 3))"
	dup_capture "$label" "$((secs - 2))"
	sleep 2
	all_forward
	$hook before
	for how in drop down; do
		if [ $how = drop ]; then sync_drop 1 on; else nsx "$NS_FW1" ip link set sync0 down; fi
		sleep 3
		q1=$(quorum_of 1)
		info "$what, fw1's sync link cut ($how): fw1 quorum: $q1; holding $(held_by 1), fw2 $(held_by 2), fw3 $(held_by 3)"
		case $q1 in *NOT*) ;; *) fail "$what: fw1 still says it is quorate while cut off" ;; esac
		case $(quorum_of 2) in *NOT*) fail "$what: fw2 lost quorum beside fw3" ;; esac
		[ $how = drop ] && $hook during
		sleep 7
		if [ $how = drop ]; then sync_drop 1 off; else nsx "$NS_FW1" ip link set sync0 up; fi
		if all_hold 20; then
			info "healed: every bucket held again, fw1 $(held_by 1)"
		else
			fail "$what: not every bucket held after the heal ($how)"
		fi
		sleep 1
	done
	wait_streams
	wait "$CAPTURE_PID" "$SAMPLER_PID" 2>/dev/null
	streams_survived "$label" 5000 "$what: two cuts of fw1's sync link"
	udp_survived "$label" 5000 "$what: two cuts of fw1's sync link"
	never_twice "$label"
	sleep 1
	ct_table "$NS_FW1" > "$T/t1"; ct_table "$P-fw2" > "$T/t2"; ct_table "$P-fw3" > "$T/t3"
	if cmp -s "$T/t1" "$T/t2" && cmp -s "$T/t2" "$T/t3"; then
		ok "$what: after the heals the three kernels hold the same $(wc -l < "$T/t1") flows"
	else
		fail "$what: tables differ after the heal: $(wc -l < "$T/t1") / $(wc -l < "$T/t2") / $(wc -l < "$T/t3")"
	fi
	for i in $FWS; do
		info "fw$i: quorum_losses $(ctstat "$P-fw$i" quorum_losses), lease_lapses $(ctstat "$P-fw$i" lease_lapses), bucket_conflicts $(ctstat "$P-fw$i" bucket_conflicts)"
	done
	stop_all
}

# pacemaker is told too: the OCF agent's monitor gives fw1 -INFINITY while
# its partition is not quorate (100 before)
ocf_hook() {
	case $1 in
	before) SCORE_BEFORE=$(ocf_score 1) ;;
	during) local score; score=$(ocf_score 1)
		[ "$SCORE_BEFORE" = 100 ] && [ "$score" = -INFINITY ] &&
			ok "the OCF agent's monitor: fw1's promotion score $SCORE_BEFORE, $score while not quorate (pacemaker demotes it)" ||
			fail "the OCF agent's promotion score for fw1: '$SCORE_BEFORE' before the cut, '$score' during it" ;;
	esac
}

# -- over CPG: without a quorum provider, then with corosync's votequorum
COROSYNC_QUORUM=0 neg_cut neg "no quorum provider, fw1's sync link cut (it forwards on)"
two_cuts pos CPG 40 ocf_hook

# -- over UDP: with buckets.quorum = "off", then the majority (the default
# with 3 nodes)
TRANSPORT=udp
for i in $FWS; do printf -v "EXTRA_CONF$i" '%s' 'buckets = { quorum = "off"; };'; done
neg_cut uneg "UDP without quorum, fw1's sync link cut (it forwards on)"
for i in $FWS; do unset "EXTRA_CONF$i"; done
two_cuts upos UDP 34 true
finish "$NAME"
