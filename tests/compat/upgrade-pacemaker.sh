#!/usr/bin/env bash
# The upgrade of an active-backup cluster under pacemaker, step by step as
# docs/UPGRADING.md writes it ("Active-backup with pacemaker"), while a TCP
# stream runs through it: three firewalls, ctsyncd over corosync CPG as a
# promotable clone of our OCF agent, the VIPs with the promoted instance
# (pcmk-lib.sh).  Each node runs the ctsyncd its own /run/ctsync/ctsyncd
# points to — the previous release (tests/compat/releases) at first; to
# "upgrade the package" on a node the test points it at the current build.
#   1-3. each unpromoted node: standby (pacemaker stops its instance),
#        upgraded, online (pacemaker starts it, unpromoted), wait-sync;
#   4.   the promoted node: standby: pacemaker promotes an upgraded, in-sync
#        node and moves the VIPs; it is upgraded and put online.
# The stream must survive: every line echoed, in order, no reset.  Every
# node ends on the current release, in sync.
# Negative control first: the VIPs alone, no ctsyncd, the VIP node put in
# standby: the stream breaks when the VIPs move.
NFW=3
TRANSPORT=cpg
. "$(dirname "$0")/../cluster/lib.sh"
NAME="pacemaker cluster upgraded node by node under a TCP stream (docs/UPGRADING.md)"
say "== $NAME"
preflight
. "$(dirname "$0")/compat-lib.sh"
compat_bin previous
topology
vip_del "$NS_FW1"               # pacemaker places the VIPs
bg "$NS_SV" echo "$B/ctsync-testtool" tcp-echo 8080
. "$(dirname "$0")/../cluster/pcmk-lib.sh"
standby() { cib crm_standby --node "fw$1" --update "$2"; }   # standby ID on|off
runs_on() { cib_on 1 crm_resource --locate -r ctsync-clone 2>/dev/null | grep -q "running on: fw$1\\b" && echo yes; }
stopped_on() { runs_on "$1" >/dev/null || echo yes; }
release_of() { ctl "$P-fw$1" status 2>/dev/null | awk '/^version:/ { print $3; exit }' | tr -d ,; }

pcmk_cluster
cib cibadmin --create -o resources --xml-text "$VIPS" || fail "cibadmin: vips"
vipnode=$(wait_for 30 where 1 vip-wan) || { fail "the VIPs did not start"; cib crm_mon -1; finish "$NAME"; }

# -- negative control: the VIPs alone, their node put in standby
bg "$NS_CL" neg "$B/ctsync-testtool" tcp-stream 203.0.113.10 8080 7 20
client=$BG_PID
sleep 2
standby "${vipnode#fw}" on
moved=$(wait_for 30 elsewhere 1 vip-wan "$vipnode") || fail "negative control: the VIPs did not move"
info "negative control: $vipnode in standby, VIPs moved to $moved"
wait "$client"
stream_broke "$T/neg.log"
standby "${vipnode#fw}" off
for i in $FWS; do nsx "$P-fw$i" conntrack -F >/dev/null 2>&1; done

# -- every node on the previous release
for i in $FWS; do ln -sfn "$OLDBIN" "$T/node$i/run/ctsync/ctsyncd"; done
export PCMK_BINARY=/run/ctsync/ctsyncd
cib cibadmin --create -o resources --xml-text "$(clone_xml)" || fail "cibadmin: clone"
cib cibadmin --create -o constraints --xml-text "$COLOCATE" || fail "cibadmin: colocation"
cib cibadmin --create -o constraints --xml-text "$ORDER" || fail "cibadmin: order"
prom=$(wait_for 60 promoted_on 1) || { fail "no instance was promoted"; cib crm_mon -1; finish "$NAME"; }
wait_for 30 on_node 1 vip-wan "$prom" >/dev/null || fail "the VIPs are not with the promoted instance"
for i in $FWS; do wait_in_sync "$P-fw$i" 20 || fail "fw$i not in sync"; done
info "$prom promoted, VIPs there; releases: $(for i in $FWS; do printf 'fw%s %s  ' "$i" "$(release_of "$i")"; done)"
P0=${prom#fw}

bg "$NS_CL" pos "$B/ctsync-testtool" tcp-stream 203.0.113.10 8080 40 20
client=$BG_PID
sleep 2

upgrade() {           # upgrade ID: standby, the new build, online, wait-sync
	local id=$1
	standby "$id" on
	wait_for 30 stopped_on "$id" >/dev/null || { fail "fw$id: pacemaker did not stop its instance"; return 1; }
	ln -sfn "$B/ctsyncd" "$T/node$id/run/ctsync/ctsyncd"
	standby "$id" off
	wait_for 30 runs_on "$id" >/dev/null || { fail "fw$id: pacemaker did not start it again"; return 1; }
	if ctl "$P-fw$id" wait-sync --timeout 30 >/dev/null; then
		info "fw$id: standby, upgraded to $(release_of "$id"), online, in sync"
	else
		fail "fw$id: not in sync after its upgrade"; ctl "$P-fw$id" status | sed 's/^/      /'
		return 1
	fi
}

for i in $FWS; do [ "$i" = "$P0" ] || upgrade "$i"; done          # 1-3.
[ "$(promoted_on 1)" = "$prom" ] && ok "steps 1-3: the unpromoted nodes upgraded, $prom still promoted" ||
	fail "steps 1-3: promoted now on '$(promoted_on 1)'"
other=1; [ "$P0" = 1 ] && other=2
standby "$P0" on                                                      # 4.
prom2=$(wait_for 40 promoted_elsewhere "$other" "$prom") || fail "step 4: nobody promoted after $prom's standby"
wait_for 30 on_node "$other" vip-wan "$prom2" >/dev/null || fail "step 4: the VIPs did not follow to $prom2"
info "step 4: $prom in standby, $prom2 ($(release_of "${prom2#fw}")) promoted, VIPs there"
wait_for 30 stopped_on "$P0" >/dev/null || fail "fw$P0: pacemaker did not stop its instance"
ln -sfn "$B/ctsyncd" "$T/node$P0/run/ctsync/ctsyncd"
standby "$P0" off
wait_for 30 runs_on "$P0" >/dev/null && ctl "$P-fw$P0" wait-sync --timeout 30 >/dev/null &&
	info "fw$P0: upgraded to $(release_of "$P0"), online, in sync" || fail "fw$P0 after its upgrade"
wait "$client"
# (pacemaker moves the VIPs only after the promotion: the pause in step 4
# is its own, up to ~2 s here, so no bound on it, as in pacemaker.sh)
line=$(tail -n 1 "$T/pos.log")
if [ "$(kv echoed "$line")" = "$(kv sent "$line")" ] && [ "$(kv sent "$line")" -gt 1500 ] &&
   [ "$(kv inorder "$line")" = 1 ] && [ "$(kv reset "$line")" = 0 ]; then
	ok "the whole procedure: every line echoed ($(kv sent "$line")) in order, no reset, longest pause $(kv maxgap_ms "$line") ms"
else
	fail "the stream did not survive the procedure ($line)"
fi
cur=$(cat "$TOP/VERSION") bad=0
for i in $FWS; do
	st=$(ctl "$P-fw$i" status)
	printf '%s\n' "$st" | grep '^versions:' | sed "s/^/      fw$i /"
	printf '%s\n' "$st" | grep -q 'speaks protocol' && bad=1
	[ "$(release_of "$i")" = "$cur" ] || bad=1
	wait_in_sync "$P-fw$i" 10 || bad=1
done
[ "$bad" = 0 ] && ok "every node on $cur, in sync, none incompatible" || fail "releases or sync after the upgrade"
finish "$NAME"
