#!/usr/bin/env bash
# Active-active: three firewalls forward at once, each the flows of the
# hash buckets it holds (sync.mode = "active-active"); one of them dies in
# the middle of NCL TCP streams (daemon SIGKILLed, every link down), the
# others take its buckets and every one of its connections goes on through
# them; it comes back by itself (daemon restarted, links up), catches up,
# takes its own buckets back — again mid-stream — and is complete.
#
#   client .10-.21 --[br-lan]--+-- lan0 fw1 wan0 --+--[br-wan]-- server .10
#                              +-- lan0 fw2 wan0 --+
#                              +-- lan0 fw3 wan0 --+
#       every lan0 is 198.51.100.1 and every wan0 203.0.113.1, with one MAC
#       each side; the bridges flood every frame to all three firewalls
#       sync0 198.18.0.N on br-sync (UDP multicast, or corosync CPG)
#
# Negative control first: the same bucket rule installed by hand, the same
# takeover of the dead node's buckets by hand, no ctsyncd — its
# connections break (the survivors have no conntrack entry for them, and
# the ruleset is strict), the others' do not.
#   DEAD=N: the node that dies (default 1)
#   PREV=N: node N runs the previous release (tests/compat/releases, built
#           from this repository's history), the others the current build
: "${NFW:=3}"
: "${TRANSPORT:=multicast4}"
: "${NCL:=12}"
: "${DEAD:=1}"
. "$(dirname "$0")/lib.sh"
NAME="active-active on $NFW nodes over $TRANSPORT, IPv${FAMILY:-4}: all forward, one dies mid-stream and comes back"
[ -n "${PREV:-}" ] && NAME="active-active, the previous release on fw$PREV: fw$DEAD dies mid-stream and comes back"
say "== $NAME"
preflight
if [ -n "${PREV:-}" ]; then
	. "$(dirname "$0")/../compat/compat-lib.sh"
	compat_bin previous
	export "CTSYNCD$PREV=$OLDBIN"
fi
topology_shared
. "$(dirname "$0")/aa-lib.sh"
D=$DEAD ND=$P-fw$DEAD

# -- negative control: the bucket rule and the takeover, no ctsyncd
aa_negative_control "$D"

# -- with ctsyncd, active-active on every node
export SYNC_EXTRA='mode = "active-active";'
AA_DAEMONS=1
for i in $FWS; do start_daemon "$i" primary || finish "$NAME"; done
report_all_hold 15 || finish "$NAME"
streams pos 16
sleep 2.5
all_forward
n1=${ON[$D]}
kill_daemon "$D" KILL
links_down "$D"
info "fw$D died (daemon SIGKILLed, every link down) with $n1 streams"
sleep 4
survivors_hold "$D"
# fw$D comes back: its daemon first (its table is made empty: it forwards
# nothing until it is in sync), then its links
nsx "$ND" ip link set sync0 up
start_daemon "$D" primary
sleep 0.5
nsx "$ND" ip link set lan0 up
nsx "$ND" ip link set wan0 up
info "fw$D back: daemon restarted, links up"
wait_streams
streams_survived pos 2000 "fw$D's death and return mid-stream ($n1 of the streams fw$D's)"
if all_hold 15; then
	ok "fw$D complete again with no operator command: in sync, holding $(held_by "$D") buckets"
else
	fail "fw$D did not come back to holding its buckets"
fi
took=0
for i in $FWS; do [ "$i" = "$D" ] || took=$((took + $(ctstat "$P-fw$i" bucket_takeovers))); done
info "flows taken over with buckets: by the survivors $took; back by fw$D $(ctstat "$ND" bucket_takeovers)"
[ "$took" -ge "$n1" ] || fail "the survivors took over $took flows, fw$D had $n1 streams"
for i in $FWS; do
	info "fw$i: $(ctl "$P-fw$i" status | grep -E '^(mode|flows owned|in sync)' | tr -s ' ' | tr '\n' ' ')"
	if [ -n "${PREV:-}" ]; then
		ctl "$P-fw$i" status | grep -q 'speaks protocol' && fail "fw$i finds a peer incompatible"
		ctl "$P-fw$i" status | grep '^versions:' | sed "s/^/      fw$i /"
	fi
done
finish "$NAME"
