#!/usr/bin/env bash
# Two nodes in active-active over corosync CPG: a cut of the sync link.
# Two nodes cannot tell a dead peer from a cut link with one path; the safe
# set-ups give them a second path or a witness.  Two firewalls on shared
# segments, NCL TCP streams through them, a capture at the client counting
# packets forwarded twice and both held sets sampled every 50 ms; fw1's
# sync link is cut (everything on sync0 dropped) for 10 s, then healed:
#   1. (negative control) votequorum two_node, one knet link, no witness:
#      ctsyncd warns at start-up and in status; in the cut both nodes stay
#      quorate and forward every bucket — packets forwarded twice;
#   2. a second knet link on a management segment: corosync moves to it,
#      the membership never splits, each node keeps its own buckets;
#   3. over UDP, a second path (transport.address2 on the management
#      segment): every frame goes both ways, the cut changes nothing;
#   4. corosync-qdevice on both nodes with a corosync-qnetd witness in a
#      third namespace (on the management segment, not the sync link):
#      qnetd gives its vote to the partition with the lowest node id, fw2
#      loses quorum and lets go, fw1 takes every bucket after fw2's lease;
#      healed, fw2 takes its own back.
# In 2, 3 and 4: every stream survives, 0 packets forwarded twice, no bucket
# in two sets, exactly one node forwards each bucket throughout.
: "${NCL:=12}"
NFW=2
TRANSPORT=cpg
. "$(dirname "$0")/lib.sh"
NAME="active-active, 2 nodes: sync link cut with a second link (CPG, UDP) or a qnetd witness"
say "== $NAME"
preflight
command -v corosync-qnetd >/dev/null && command -v corosync-qdevice >/dev/null ||
	{ say "SKIP: corosync-qnetd and corosync-qdevice not installed (make deps)"; exit 77; }
topology_shared
. "$(dirname "$0")/aa-lib.sh"
export SYNC_EXTRA='mode = "active-active";'
AA_DAEMONS=1
NS_QN=$P-qnetd

# the management segment: fwN at 198.18.2.N, the witness at .100
nsx "$NS_SW" ip link add br-mgmt type bridge
nsx "$NS_SW" ip link set br-mgmt up
for i in $FWS; do
	plug "$P-fw$i" mgmt0 br-mgmt
	nsx "$P-fw$i" ip addr add 198.18.2.$i/24 dev mgmt0
done
mkns "$NS_QN"
plug "$NS_QN" mgmt0 br-mgmt
nsx "$NS_QN" ip addr add 198.18.2.100/24 dev mgmt0

QD_PIDS=()
start_qnetd() {       # in its namespace, its /run its own, TLS off
	mkdir -p "$T/qnetd"
	ip netns exec "$NS_QN" unshare -m --propagation private sh -c \
		"mount -t tmpfs none /run && exec corosync-qnetd -f -s off -l 198.18.2.100" \
		>>"$T/qnetd.log" 2>&1 &
	QNETD_PID=$!
	PIDS+=("$QNETD_PID")
}
start_qdevice() {     # start_qdevice ID: beside fw$ID's corosync
	ip netns exec "$P-fw$1" unshare -m --propagation private sh -c \
		"mount -t tmpfs none /run && exec corosync-qdevice -f" >>"$T/qdevice-fw$1.log" 2>&1 &
	QD_PIDS[$1]=$!
	PIDS+=("$!")
}
stop_all() {
	local pid
	for pid in "${QD_PIDS[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
	QD_PIDS=()
	aa_stop_all
}
# who holds how many buckets now
held_now() { echo "fw1 $(held_by 1), fw2 $(held_by 2)"; }

# cut_heal LABEL: streams under a 10 s cut of fw1's sync link, healed
cut_heal() {
	local label=$1
	streams "$label" 22
	udp_flow "$label" 21
	sets_sampler "$label" 19
	dup_capture "$label" 20
	sleep 2
	all_forward
	sync_drop 1 on
	sleep 4
	info "$label: fw1's sync link cut: holding $(held_now); fw1 quorum: $(quorum_of 1); fw2: $(quorum_of 2)"
	CUT_HELD="$(held_by 1) $(held_by 2)"
	sleep 6
	sync_drop 1 off
	all_hold 20 && info "$label: healed, every bucket held again: $(held_now)" ||
		fail "$label: not every bucket held after the heal"
	wait_streams
	wait "$UDP_PID" 2>/dev/null
	wait "$CAPTURE_PID" "$SAMPLER_PID" 2>/dev/null
}

# safe_cut LABEL WHAT HELD SAID: a cut under streams in a safe set-up: the
# buckets held during it ("fw1 fw2") as HELD, every connection survived,
# nothing forwarded twice
safe_cut() {
	cut_heal "$1"
	[ "$CUT_HELD" = "$3" ] && ok "$2: through the cut $4 ($CUT_HELD)" ||
		fail "$2: held during the cut (fw1 fw2): $CUT_HELD, not $3"
	streams_survived "$1" 5000 "$2, the sync link cut"
	udp_survived "$1" 5000 "$2, the sync link cut"
	never_twice "$1"
}
half="$(( NB / 2 )) $(( NB / 2 ))"

# -- 1. negative control: two_node, one link, no witness
export COROSYNC_VOTEQUORUM="two_node: 1"
for i in $FWS; do start_daemon "$i" primary || finish "$NAME"; done
report_all_hold 20 || finish "$NAME"
q=$(quorum_of 1)
info "fw1: quorum: $q"
case $q in *"WARNING: 2 nodes, one link, no quorum device (two_node): a cut of the sync link alone makes both forward"*)
	grep -q "cpg: 2 nodes, one link, no quorum device" "$T/ctsyncd-fw1.log" &&
		ok "one link, no witness: the warning in status and in the log" ||
		fail "one link, no witness: no warning in the log" ;;
*) fail "one link, no witness: no warning in status" ;;
esac
cut_heal neg
twice_seen neg "two_node, one link, fw1's sync link cut (both forward)"
stop_all

# -- 2. a second knet link
export COROSYNC_RING1=198.18.2.
for i in $FWS; do start_daemon "$i" primary || finish "$NAME"; done
report_all_hold 20 || finish "$NAME"
case $(quorum_of 1) in *WARNING*) fail "second link: still warned: $(quorum_of 1)" ;; esac
safe_cut link "a second knet link" "$half" "each node kept its own buckets"
stop_all
unset COROSYNC_RING1

# -- 3. UDP with a second path
TRANSPORT=udp
export SYNC_PATH2=198.18.2.
for i in $FWS; do start_daemon "$i" primary || finish "$NAME"; done
report_all_hold 20 || finish "$NAME"
info "fw1 (UDP, two paths): quorum: $(quorum_of 1)"
safe_cut path "UDP over a second path" "$half" "each node kept its own buckets"
info "fw2: link_rx_path2_frames $(ctstat "$NS_FW2" link_rx_path2_frames), link_rx_dup_path $(ctstat "$NS_FW2" link_rx_dup_path), rx_replay $(ctstat "$NS_FW2" rx_replay)"
stop_all
unset SYNC_PATH2
TRANSPORT=cpg

# -- 4. a witness: corosync-qdevice and corosync-qnetd
start_qnetd
export COROSYNC_VOTEQUORUM="device {
	model: net
	votes: 1
	net {
		host: 198.18.2.100
		tls: off
		algorithm: ffsplit
	}
}"
for i in $FWS; do start_corosync "$i" || finish "$NAME"; done
for i in $FWS; do start_qdevice "$i"; done
deadline=$((SECONDS + 20))
until nsx "$NS_FW1" corosync-quorumtool -s 2>/dev/null | grep -q 'Qdevice' &&
      nsx "$NS_FW1" corosync-quorumtool -s 2>/dev/null | grep -q '^Total votes: *3'; do
	[ $SECONDS -ge $deadline ] && { fail "qdevice did not register with qnetd";
		nsx "$NS_FW1" corosync-quorumtool -s; finish "$NAME"; }
	sleep 0.2
done
info "votequorum on fw1: $(nsx "$NS_FW1" corosync-quorumtool -s | grep -E '^(Expected|Total) votes' | tr -s ' ' | tr '\n' ' ')"
for i in $FWS; do start_daemon "$i" primary || finish "$NAME"; done
report_all_hold 20 || finish "$NAME"
case $(quorum_of 1) in *WARNING*) fail "witness: still warned: $(quorum_of 1)" ;; esac
safe_cut wit "a qnetd witness" "$NB 0" "fw1 (qnetd's choice) held every bucket, fw2 none"
info "fw2: quorum_losses $(ctstat "$NS_FW2" quorum_losses)"
unset COROSYNC_VOTEQUORUM
finish "$NAME"
