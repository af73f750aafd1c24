#!/usr/bin/env bash
# Three or four firewalls (NFW=3|4), over UDP multicast or corosync CPG
# (TRANSPORT=multicast4|cpg).  Flows made on every node are held by every
# other; a TCP stream SNATed through fw1 survives fw1 dying (its daemon
# SIGKILLed, its links down) and then fw2, the new master, losing every
# link, sync link included, while its daemon runs on alone; both come
# back — fw1's daemon restarted as a backup, fw2's links up again — and are
# complete again with no operator command: in sync, every flow held, the
# same kernel table as the survivors.  Negative control first: without
# ctsyncd the stream stops at the first failover.
#
#   client --[br-lan]-- fw1 .2 / fw2 .3 / fw3 .4 (/ fw4 .5) --[br-wan]-- server
#                        sync0 198.18.0.N on br-sync (corosync's ring too)
: "${NFW:=3}"                    # before lib.sh, whose default is 2
. "$(dirname "$0")/lib.sh"
NAME="$NFW nodes over $TRANSPORT: flows from every node on every other, two nodes lost mid-stream and back complete"
say "== $NAME"
preflight
topology
SERVER=203.0.113.10
PER=300                                 # synthetic flows made on each node
bg "$NS_SV" echo "$B/ctsync-testtool" tcp-echo 8080
sleep 0.3

# the node's daemon is gone and its LAN and WAN links are down; NEXT takes
# the addresses and is promoted (what keepalived or pacemaker would do)
die() {               # die ID NEXT
	vip_del "$P-fw$1"
	nsx "$P-fw$1" ip link set lan0 down
	nsx "$P-fw$1" ip link set wan0 down
	vip_add "$P-fw$2"
	[ "${#DAEMON_PID[@]}" -gt 0 ] && { ctl "$P-fw$2" promote >/dev/null || fail "promote on fw$2"; }
}

# -- negative control: no daemons
bg "$NS_CL" neg "$B/ctsync-testtool" tcp-stream "$SERVER" 8080 5 20
client=$BG_PID
sleep 2
die 1 2
wait "$client"
stream_broke "$T/neg.log"
reset_cluster

# -- with ctsyncd on every node
start_daemons || finish "$NAME"
for i in $FWS; do
	info "fw$i: $(nsx "$P-fw$i" "$B/ctsync-ctgen" create $PER $(( (i - 1) * 1000 )))"
done
want=$((NFW * PER))
all_complete() {      # every node in sync, each holding MIN flows or more
	local i n
	for i in $FWS; do
		wait_in_sync "$P-fw$i" 10 || return 1
		n=$(ctl "$P-fw$i" --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["flows_total"])')
		[ "$n" -ge "$1" ] || return 1
	done
}
if all_complete $want; then
	ok "flows from every node on every other: each of the $NFW nodes holds all $want"
else
	fail "not every node holds the $want flows made on all of them"
fi

bg "$NS_CL" pos "$B/ctsync-testtool" tcp-stream "$SERVER" 8080 16 20
client=$BG_PID
sleep 2.5
all_complete $((want + 1)) || fail "the stream's flow is not on every node before the first failure"
# fw1 dies: daemon SIGKILLed, links down; fw2 takes over
kill_daemon 1 KILL
die 1 2
info "fw1 died (SIGKILL, links down); fw2 promoted"
sleep 3
# fw2 loses every link, the sync link too; its daemon runs on, cut off
vip_del "$NS_FW2"
for l in lan0 wan0 sync0; do nsx "$NS_FW2" ip link set $l down; done
vip_add "$P-fw3"
ctl "$P-fw3" promote >/dev/null || fail "promote on fw3"
info "fw2 cut off (all links down, daemon running); fw3 promoted"
sleep 3
# both come back by themselves: fw1 restarted as a backup, fw2's links up
revive "$NS_FW1"
start_daemon 1 backup
for l in lan0 wan0 sync0; do nsx "$NS_FW2" ip link set $l up; done
info "fw1 restarted as backup, fw2's links up"
wait "$client"
line=$(tail -n 1 "$T/pos.log")
info "with ctsyncd:    $line"
stream_survived "$line" 600 "two failures in a row"
if all_complete $want; then
	ok "every node complete again: in sync, at least $want flows on each"
else
	for i in $FWS; do info "fw$i: $(ctl "$P-fw$i" status | grep -E '^(role|flows held|in sync)' | tr '\n' ' ')"; done
	fail "a node that came back is not complete"
fi
ct_table "$P-fw3" > "$T/t3"
for i in $FWS; do
	[ "$i" = 3 ] && continue
	ct_table "$P-fw$i" > "$T/t$i"
	if cmp -s "$T/t3" "$T/t$i"; then
		ok "fw$i's kernel table equals fw3's ($(wc -l < "$T/t$i") flows)"
	else
		fail "fw$i's kernel table differs from fw3's ($(wc -l < "$T/t$i") vs $(wc -l < "$T/t3"))"
		diff "$T/t3" "$T/t$i" | head -4
	fi
done
for i in $FWS; do say "  fw$i: $(ctl "$P-fw$i" status | grep -E '^(role|flows owned)' | tr '\n' ' ')"; done
finish "$NAME"
