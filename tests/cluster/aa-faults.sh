#!/usr/bin/env bash
# Active-active under daemon faults: no bucket is ever forwarded by two
# nodes.  Three firewalls on shared segments (topology_shared), NCL TCP
# streams through them; a capture at the client counts byte-identical
# copies of a packet (two firewalls forwarded it), and every node's nft set
# is sampled every 50 ms (a bucket in two sets fails).  The faults, one
# after the other, under the same streams:
#   1. fw1's daemon SIGKILLed, left dead for 10 s (its links up), restarted;
#   2. fw2's daemon SIGSTOPped for 5 s, then SIGCONTed;
#   3. fw3 demoted and promoted, 3 times;
#   4. fw1 returning after a failure (daemon SIGKILLed, restarted at once),
#      RETURNS times.
# Every stream must survive, 0 duplicated packets, 0 buckets held twice;
# the longest pause is reported.
#
# Negative controls first: the capture and the sampler see it when two
# nodes hold every bucket (by hand, no ctsyncd); and without a lease (buckets.lease_ms
# = 0) a SIGKILLed daemon's node goes on forwarding while the others take
# its buckets: the sampler and the capture both see it.
: "${NFW:=3}"
: "${TRANSPORT:=multicast4}"
: "${NCL:=12}"
: "${RETURNS:=20}"
. "$(dirname "$0")/lib.sh"
NAME="active-active under daemon faults (kill, freeze, demote/promote, returns): nothing forwarded twice"
say "== $NAME"
preflight
topology_shared
. "$(dirname "$0")/aa-lib.sh"

# -- the capture sees it when two nodes forward: fw1 and fw2 hold every bucket
static_table
all=$(seq -s, 0 $((NB - 1)))
for i in 1 2; do nsx "$P-fw$i" nft "flush set inet ctsync held; add element inet ctsync held { $all }"; done
nsx "$P-fw3" nft flush set inet ctsync held
dup_capture cap 4
sets_sampler cap 2
streams cap 3
wait_streams
wait "$CAPTURE_PID" "$SAMPLER_PID"
info "two nodes holding every bucket: $(tail -n 1 "$T/dup-cap.log"); sampler: $(cat "$T/sets-cap.err")"
[ "$(dups cap)" -gt 100 ] && [ "$(sets_twice cap)" = "$(sets_rounds cap)" ] &&
	[ "$(sets_rounds cap)" -gt 20 ] &&
	ok "control: the capture counts the packets two nodes forwarded, the sampler the buckets held twice" ||
	fail "control: capture or sampler blind while two nodes forwarded everything"
for i in $FWS; do nsx "$P-fw$i" nft delete table inet ctsync; nsx "$P-fw$i" conntrack -F >/dev/null 2>&1; done

export SYNC_EXTRA='mode = "active-active";'
AA_DAEMONS=1

# -- negative control: no lease, fw1's daemon SIGKILLed
for i in $FWS; do export "EXTRA_CONF$i=buckets = { lease_ms = 0; };"; done
for i in $FWS; do start_daemon "$i" primary || finish "$NAME"; done
report_all_hold 15 || finish "$NAME"
streams neg 8
sleep 2
sets_sampler neg 5
dup_capture neg 5
kill_daemon 1 KILL
wait_streams
wait "$CAPTURE_PID"
kill "$SAMPLER_PID" 2>/dev/null; wait "$SAMPLER_PID" 2>/dev/null
twice_seen neg "no lease, fw1's daemon killed (its node forwards on)"
aa_stop_all
for i in $FWS; do unset "EXTRA_CONF$i"; done

# -- with the lease (the default)
for i in $FWS; do start_daemon "$i" primary || finish "$NAME"; done
report_all_hold 15 || finish "$NAME"
info "fw1: $(ctl "$NS_FW1" status | grep '^lease:')"
secs=$((40 + 3 * RETURNS))
streams pos "$secs"
udp_flow pos "$((secs - 1))"
sets_sampler pos "$((secs - 2))"
dup_capture pos "$((secs - 1))"
sleep 2
all_forward

kill_daemon 1 KILL                                              # 1.
info "1. fw1's daemon SIGKILLed (links up)"
sleep 10
start_daemon 1 primary
all_hold 15 && info "   fw1 restarted, every bucket held again" || fail "1. fw1 did not come back"

kill -STOP "${DAEMON_PID[1]}"                                   # 2.
info "2. fw2's daemon SIGSTOPped"
sleep 5
kill -CONT "${DAEMON_PID[1]}"
all_hold 15 && info "   fw2 SIGCONTed, every bucket held again ($(ctstat "$P-fw2" lease_lapses) lease lapse)" ||
	fail "2. fw2 did not come back"

for k in 1 2 3; do                                              # 3.
	ctl "$P-fw3" demote >/dev/null; sleep 1
	ctl "$P-fw3" promote >/dev/null
	all_hold 10 || fail "3. after promote $k"
done
info "3. fw3 demoted and promoted 3 times"

for k in $(seq "$RETURNS"); do                                  # 4.
	kill_daemon 1 KILL
	sleep 0.7
	start_daemon 1 primary
	all_hold 15 || fail "4. return $k"
done
info "4. fw1 returned $RETURNS times"

wait_streams
wait "$CAPTURE_PID"
wait "$SAMPLER_PID" 2>/dev/null
streams_survived pos 5000 "every fault"
udp_survived pos 5000 "every fault"
never_twice pos
for i in $FWS; do
	info "fw$i: lease_renewals $(ctstat "$P-fw$i" lease_renewals), lease_lapses $(ctstat "$P-fw$i" lease_lapses), bucket_conflicts $(ctstat "$P-fw$i" bucket_conflicts), rx_stale_heartbeats $(ctstat "$P-fw$i" rx_stale_heartbeats)"
done
finish "$NAME"
