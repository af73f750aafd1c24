#!/usr/bin/env bash
# The upgrade of an active-backup pair under keepalived, step by step as
# docs/UPGRADING.md writes it ("Active-backup with keepalived"), while a TCP
# stream runs through the pair.  Both nodes start on the previous release
# (tests/compat/releases); fw1 is VRRP master (priority 150, preempting).
#   1-4. fw2 (backup): keepalived stopped, ctsyncd restarted on the current
#        build, `ctsyncctl wait-sync`, keepalived started again;
#   5.   fw1 (master): keepalived stopped: fw2 becomes master and primary
#        (the current build forwards, the previous one is its backup);
#   6.   fw1: ctsyncd restarted on the current build, wait-sync, keepalived
#        started: it preempts, fw1 master and primary again.
# The stream must survive: every line echoed, in order, no reset.  Both
# nodes end on the current release, in sync, naming each other's release.
# Negative control first: the same switch of masters (step 5) without
# ctsyncd breaks the stream.
. "$(dirname "$0")/../cluster/lib.sh"
NAME="keepalived pair upgraded node by node under a TCP stream (docs/UPGRADING.md)"
say "== $NAME"
preflight
. "$(dirname "$0")/compat-lib.sh"
compat_bin previous
topology
. "$(dirname "$0")/../cluster/ka-lib.sh"
bg "$NS_SV" echo "$B/ctsync-testtool" tcp-echo 8080
ka_conf 1; ka_conf 2
backup_role() { [ "$(role "$1")" = backup ]; }

# -- negative control: keepalived alone; fw1's keepalived stopped (step 5)
ka_start 1 && wait_for 10 has_vip "$NS_FW1" && ka_start 2 || finish "$NAME"
bg "$NS_CL" neg "$B/ctsync-testtool" tcp-stream 203.0.113.10 8080 5 20
client=$BG_PID
sleep 2
ka_stop 1
wait_for 5 has_vip "$NS_FW2" || fail "negative control: fw2 did not become master"
wait "$client"
stream_broke "$T/neg.log"
ka_stop 2
vip_del "$NS_FW1"; vip_del "$NS_FW2"
for i in 1 2; do nsx "$P-fw$i" conntrack -F >/dev/null 2>&1; done
nsx "$NS_CL" ip neigh flush dev eth0; nsx "$NS_SV" ip neigh flush dev eth0
rm -f "$T"/ka-*.pid

# -- both nodes on the previous release, fw1 master and primary
export CTSYNCD1=$OLDBIN CTSYNCD2=$OLDBIN
start_daemons || finish "$NAME"
ka_start 1 && wait_for 10 has_vip "$NS_FW1" && ka_start 2 || finish "$NAME"
wait_for 5 primary "$NS_FW1" && wait_in_sync "$NS_FW2" 10 ||
	fail "start: fw1 $(role "$NS_FW1"), fw2 in sync: $(ctl "$NS_FW2" status | grep '^in sync')"
bg "$NS_CL" pos "$B/ctsync-testtool" tcp-stream 203.0.113.10 8080 16 20
client=$BG_PID
sleep 2

upgrade() {           # upgrade ID: steps 2-4 on fw$ID (keepalived stopped)
	local id=$1 ns=$P-fw$1
	kill_daemon "$id" TERM
	unset "CTSYNCD$id"
	start_daemon "$id" backup || { fail "fw$id: the new ctsyncd did not start"; return 1; }
	if ctl "$ns" wait-sync --timeout 20 >/dev/null; then
		info "fw$id: ctsyncd restarted on the current build, wait-sync: in sync"
	else
		fail "fw$id: not in sync after its upgrade"; ctl "$ns" status | sed 's/^/      /'
		return 1
	fi
	rm -f "$T/ka-fw$id.pid" "$T/ka-vrrp-fw$id.pid"
	ka_start "$id"
}

ka_stop 2                                             # 1. backup: keepalived stopped
upgrade 2                                             # 2-4.
wait_for 5 backup_role "$NS_FW2" && has_vip "$NS_FW1" && primary "$NS_FW1" &&
	ok "steps 1-4: fw2 upgraded, VRRP backup again, fw1 still master and primary" ||
	fail "after steps 1-4: fw1 $(role "$NS_FW1"), fw2 $(role "$NS_FW2")"
sleep 1.5
ka_stop 1                                             # 5. master: keepalived stopped
if wait_for 5 has_vip "$NS_FW2" && wait_for 5 primary "$NS_FW2"; then
	ok "step 5: fw1's keepalived stopped, fw2 (current) master and primary"
else
	fail "step 5: fw2 $(role "$NS_FW2"), VIP on fw2: $(has_vip "$NS_FW2" && echo yes || echo no)"
fi
sleep 1.5
upgrade 1                                             # 6.
if wait_for 5 has_vip "$NS_FW1" && wait_for 5 primary "$NS_FW1" && wait_for 5 backup_role "$NS_FW2"; then
	ok "step 6: fw1 upgraded, its keepalived preempted: fw1 master and primary, fw2 backup"
else
	fail "step 6: fw1 $(role "$NS_FW1"), fw2 $(role "$NS_FW2")"
fi
wait "$client"
stream_survived "$(tail -n 1 "$T/pos.log")" 600 "the whole procedure"
bad=0
for i in 1 2; do
	st=$(ctl "$P-fw$i" status)
	printf '%s\n' "$st" | grep '^versions:' | sed "s/^/      fw$i /"
	printf '%s\n' "$st" | grep -q 'speaks protocol' && bad=1
	printf '%s\n' "$st" | grep -Eq "^version: +ctsync $(cat "$TOP/VERSION")," || bad=1
done
wait_in_sync "$NS_FW2" 5 && [ "$bad" = 0 ] &&
	ok "both on the current release, in sync, each naming the other's release" ||
	fail "versions or sync after the upgrade"
ka_stop 1
ka_stop 2
finish "$NAME"
