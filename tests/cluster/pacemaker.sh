#!/usr/bin/env bash
# A real pacemaker cluster of three firewalls: corosync and pacemaker in
# every firewall namespace, ctsyncd (over corosync CPG) run by our OCF
# agent as a promotable clone, the LAN and WAN VIPs (ocf:heartbeat:IPaddr2)
# placed with the promoted instance.  The promoted node is killed (every
# process of its namespace SIGKILLed, its links down): pacemaker promotes
# another and moves the VIPs, and a TCP stream SNATed through the cluster
# goes on.  Negative control first: the same cluster with the VIPs alone,
# no ctsyncd — the stream breaks when the VIPs move.
#
#   client --[br-lan]-- fw1 .2 / fw2 .3 / fw3 .4 --[br-wan]-- server
#                        VIPs .1 where pacemaker puts them
#                        sync0 198.18.0.N on br-sync: corosync (knet)
#
# Each node's corosync and pacemaker run in a mount namespace of their own
# (/run, /var/lib/{corosync,pacemaker}, /var/log/{corosync,pacemaker} and
# /usr/lib/ocf/resource.d bound to the test's directories), so that three
# of them can run on one host; the CLI tools reach a node's daemons from
# its network namespace (libqb's sockets are per network namespace).
NFW=3
TRANSPORT=cpg
. "$(dirname "$0")/lib.sh"
NAME="pacemaker: 3 nodes, promotable clone over CPG, the promoted node killed mid-stream"
say "== $NAME"
preflight
for t in pacemakerd cibadmin crm_attribute crm_mon crm_resource; do
	command -v "$t" >/dev/null || { say "missing $t (pacemaker): make deps"; exit 1; }
done
topology
vip_del "$NS_FW1"               # pacemaker places the VIPs
SERVER=203.0.113.10
bg "$NS_SV" echo "$B/ctsync-testtool" tcp-echo 8080
chmod 711 "$T"                  # pacemaker's daemons run as hacluster
PCMK_PID=()

# start_node ID: corosync and pacemakerd in fw$ID's namespaces
start_node() {
	local id=$1 d=$T/node$1
	mkdir -p "$d/run/ctsync" "$d/corolib" "$d/corolog" "$d/log" "$d/rd/ctsync" "$d/rdo" \
		"$d/lib/cib" "$d/lib/pengine" "$d/lib/blackbox" "$d/lib/cores"
	chown -R hacluster:haclient "$d/lib" "$d/log"
	chmod 755 "$d" "$d/run"
	corosync_conf > "$d/corosync.conf"
	install -m 755 "$TOP/scripts/ocf/ctsyncd" "$d/rd/ctsync/ctsyncd"
	ip netns exec "$P-fw$id" unshare -m --propagation private sh -c "
		mount --bind $d/run /run &&
		mount --bind $d/corolib /var/lib/corosync &&
		mount --bind $d/corolog /var/log/corosync &&
		mount --bind $d/lib /var/lib/pacemaker &&
		mount --bind $d/log /var/log/pacemaker &&
		mount --bind /usr/lib/ocf/resource.d $d/rdo &&
		mount --bind $d/rd /usr/lib/ocf/resource.d &&
		mkdir -p /usr/lib/ocf/resource.d/heartbeat &&
		mount --bind $d/rdo/heartbeat /usr/lib/ocf/resource.d/heartbeat &&
		{ corosync -f -c $d/corosync.conf >>$T/corosync-fw$id.log 2>&1 &
		  echo \$! > $d/corosync.pid; } &&
		for i in \$(seq 100); do corosync-cfgtool -s >/dev/null 2>&1 && break; sleep 0.1; done;
		exec env PCMK_logfile=/var/log/pacemaker/pacemaker.log PCMK_logfacility=none \
			pacemakerd -f" >>"$T/pacemakerd-fw$id.log" 2>&1 &
	PCMK_PID[$id]=$!
	local deadline=$((SECONDS + 10))
	while [ ! -s "$d/corosync.pid" ] && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
	COROSYNC_PID_ALL+=("$(cat "$d/corosync.pid")")
	# the daemon's socket where lib.sh's ctl() looks for it
	ln -sf "$d/run/ctsync/ctsyncd.sock" "$T/fw$id.sock"
	write_config "$id" backup >/dev/null
	sed -i "s|socket = \"$T/fw$id.sock\"|socket = \"/run/ctsync/ctsyncd.sock\"|" "$T/fw$id.conf"
	cp "$T/fw$id.conf" "$d/run/ctsync/ctsyncd.conf"
}

# Stop a node the way its operator would: pacemaker first (it stops the
# resources), then corosync; by recorded PID, bounded.
stop_node() {
	local id=$1 pid deadline
	pid=${PCMK_PID[$id]:-}
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null
	deadline=$((SECONDS + 40))
	while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	pid=$(cat "$T/node$id/corosync.pid" 2>/dev/null)
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	sleep 0.5
	stop_ns_children "$P-fw$id"     # whatever of ours is left there
	PCMK_PID[$id]=
}

# The node dies: every process in its namespace (all of them ours)
# SIGKILLed, every link down.
kill_node() {
	local id=$1 pids
	for l in lan0 wan0 sync0; do nsx "$P-fw$id" ip link set $l down; done
	pids=$(ip netns pids "$P-fw$id")
	[ -n "$pids" ] && kill -9 $pids 2>/dev/null
	wait "${PCMK_PID[$id]}" 2>/dev/null
	PCMK_PID[$id]=
	vip_del "$P-fw$id"              # what a dead machine's kernel held is gone
}

pcmk_cleanup() {
	local i
	for i in $FWS; do stop_node "$i"; done
	cleanup
}
trap pcmk_cleanup EXIT

cib() { nsx "$NS_FW1" "$@"; }   # the CLI tools, from a node that stays up
cib_on() { local id=$1; shift; nsx "$P-fw$id" "$@"; }

online_nodes() { cib_on "$1" crm_mon -1 2>/dev/null | sed -n 's/^ *\* Online: \[ \(.*\) \]/\1/p'; }

wait_online() {       # wait_online FROM_ID N: N nodes online, a DC elected
	local deadline=$((SECONDS + 60))
	while [ $SECONDS -lt $deadline ]; do
		[ "$(online_nodes "$1" | wc -w)" = "$2" ] &&
			cib_on "$1" crm_mon -1 2>/dev/null | grep -q 'Current DC: fw' && return 0
		sleep 0.5
	done
	return 1
}

# where a resource runs (crm_resource --locate), e.g. "fw2"
where() { cib_on "$1" crm_resource --locate -r "$2" 2>/dev/null |
	sed -n 's/.* is running on: \(fw[0-9]*\).*/\1/p' | head -1; }
promoted_on() { cib_on "$1" crm_resource --locate -r ctsync-clone 2>/dev/null |
	sed -n 's/.* is running on: \(fw[0-9]*\) Promoted.*/\1/p' | head -1; }

elsewhere() { local w; w=$(where "$1" "$2"); [ -n "$w" ] && [ "$w" != "$3" ] && echo "$w"; }
on_node() { [ "$(where "$1" "$2")" = "$3" ] && echo "$3"; }
promoted_elsewhere() { local w; w=$(promoted_on "$1"); [ -n "$w" ] && [ "$w" != "$2" ] && echo "$w"; }

wait_for() {          # wait_for SECONDS CMD...: until CMD prints something
	local deadline=$((SECONDS + $1)) out; shift
	while [ $SECONDS -lt $deadline ]; do
		out=$("$@")
		[ -n "$out" ] && { printf '%s' "$out"; return 0; }
		sleep 0.3
	done
	return 1
}

VIPS='<group id="vips">
  <primitive id="vip-lan" class="ocf" provider="heartbeat" type="IPaddr2">
    <instance_attributes id="vip-lan-ia">
      <nvpair id="vip-lan-ip" name="ip" value="198.51.100.1"/>
      <nvpair id="vip-lan-mask" name="cidr_netmask" value="24"/>
      <nvpair id="vip-lan-nic" name="nic" value="lan0"/>
    </instance_attributes>
    <operations><op id="vip-lan-mon" name="monitor" interval="2s" timeout="10s"/></operations>
  </primitive>
  <primitive id="vip-wan" class="ocf" provider="heartbeat" type="IPaddr2">
    <instance_attributes id="vip-wan-ia">
      <nvpair id="vip-wan-ip" name="ip" value="203.0.113.1"/>
      <nvpair id="vip-wan-mask" name="cidr_netmask" value="24"/>
      <nvpair id="vip-wan-nic" name="nic" value="wan0"/>
    </instance_attributes>
    <operations><op id="vip-wan-mon" name="monitor" interval="2s" timeout="10s"/></operations>
  </primitive>
</group>'

CLONE="<clone id=\"ctsync-clone\">
  <meta_attributes id=\"ctsync-clone-meta\">
    <nvpair id=\"ctsync-promotable\" name=\"promotable\" value=\"true\"/>
    <nvpair id=\"ctsync-promoted-max\" name=\"promoted-max\" value=\"1\"/>
    <nvpair id=\"ctsync-clone-max\" name=\"clone-max\" value=\"3\"/>
    <nvpair id=\"ctsync-notify\" name=\"notify\" value=\"true\"/>
  </meta_attributes>
  <primitive id=\"ctsync\" class=\"ocf\" provider=\"ctsync\" type=\"ctsyncd\">
    <instance_attributes id=\"ctsync-ia\">
      <nvpair id=\"ctsync-config\" name=\"config\" value=\"/run/ctsync/ctsyncd.conf\"/>
      <nvpair id=\"ctsync-socket\" name=\"socket\" value=\"/run/ctsync/ctsyncd.sock\"/>
      <nvpair id=\"ctsync-pidfile\" name=\"pidfile\" value=\"/run/ctsync/ctsyncd.pid\"/>
      <nvpair id=\"ctsync-binary\" name=\"binary\" value=\"$B/ctsyncd\"/>
      <nvpair id=\"ctsync-ctl\" name=\"ctl\" value=\"$B/ctsyncctl\"/>
      <nvpair id=\"ctsync-wait\" name=\"sync_wait\" value=\"3\"/>
    </instance_attributes>
    <operations>
      <op id=\"ctsync-mon-p\" name=\"monitor\" interval=\"1s\" role=\"Promoted\" timeout=\"10s\"/>
      <op id=\"ctsync-mon-u\" name=\"monitor\" interval=\"2s\" role=\"Unpromoted\" timeout=\"10s\"/>
    </operations>
  </primitive>
</clone>"

COLOCATE='<rsc_colocation id="vips-with-promoted" rsc="vips" with-rsc="ctsync-clone" with-rsc-role="Promoted" score="INFINITY"/>'
ORDER='<rsc_order id="promote-then-vips" first="ctsync-clone" first-action="promote" then="vips" then-action="start"/>'

# -- the cluster
for i in $FWS; do start_node "$i"; done
if wait_online 1 3; then
	ok "pacemaker $(pacemakerd --version | head -1 | awk '{print $2}'): fw1, fw2 and fw3 online"
else
	fail "the pacemaker cluster did not form"; cib crm_mon -1; finish "$NAME"
fi
cib crm_attribute --type crm_config --name stonith-enabled --update false
cib crm_attribute --type crm_config --name cluster-recheck-interval --update 5s
cib crm_attribute --type rsc_defaults --name resource-stickiness --update 100 >/dev/null
cib cibadmin --create -o resources --xml-text "$VIPS" || fail "cibadmin: vips"
vipnode=$(wait_for 30 where 1 vip-wan) || { fail "the VIPs did not start"; cib crm_mon -1; finish "$NAME"; }
info "VIPs on $vipnode"

# -- negative control: VIPs alone, no ctsyncd
bg "$NS_CL" neg "$B/ctsync-testtool" tcp-stream "$SERVER" 8080 12 20
client=$BG_PID
sleep 2
dead=${vipnode#fw}
kill_node "$dead"
info "negative control: $vipnode killed"
alive=1; [ "$dead" = 1 ] && alive=2
moved=$(wait_for 30 elsewhere "$alive" vip-wan "$vipnode") ||
	fail "the VIPs did not move"
info "VIPs moved to $moved"
wait "$client"
stream_broke "$T/neg.log"

# the dead node comes back, its links and its stack
for l in lan0 wan0 sync0; do nsx "$P-fw$dead" ip link set $l up; done
for i in $FWS; do nsx "$P-fw$i" conntrack -F >/dev/null 2>&1; done
start_node "$dead"
wait_online "$alive" 3 || fail "$vipnode did not rejoin"

# -- with ctsyncd: the promotable clone, the VIPs with its promoted instance
cib_on "$alive" cibadmin --create -o resources --xml-text "$CLONE" || fail "cibadmin: clone"
cib_on "$alive" cibadmin --create -o constraints --xml-text "$COLOCATE" || fail "cibadmin: colocation"
cib_on "$alive" cibadmin --create -o constraints --xml-text "$ORDER" || fail "cibadmin: order"
prom=$(wait_for 60 promoted_on "$alive") || { fail "no instance was promoted"; cib_on "$alive" crm_mon -1; finish "$NAME"; }
vipnode=$(wait_for 30 on_node "$alive" vip-wan "$prom") ||
	fail "the VIPs are not with the promoted instance ($prom)"
info "ctsyncd promoted on $prom, VIPs there; $(cib_on "$alive" crm_mon -1 | grep -c 'ctsync.*Unpromoted\|Unpromoted:') line(s) of unpromoted instances"
for i in $FWS; do wait_in_sync "$P-fw$i" 20 || fail "fw$i not in sync"; done
ctl "$P-fw${prom#fw}" status | grep -q '^role: *primary' && ok "$prom's ctsyncd is primary (pacemaker promoted it)" ||
	fail "$prom's ctsyncd is not primary"

bg "$NS_CL" pos "$B/ctsync-testtool" tcp-stream "$SERVER" 8080 16 20
client=$BG_PID
sleep 3
dead=${prom#fw}
alive=1; [ "$dead" = 1 ] && alive=2
kill_node "$dead"
info "$prom killed (every process SIGKILLed, links down)"
prom2=$(wait_for 40 promoted_elsewhere "$alive" "$prom") ||
	fail "pacemaker promoted nobody after $prom died"
info "pacemaker promoted $prom2"
wait "$client"
line=$(tail -n 1 "$T/pos.log")
info "with ctsyncd: $line"
if [ "$(kv echoed "$line")" = "$(kv sent "$line")" ] && [ "$(kv sent "$line")" -gt 600 ] &&
   [ "$(kv inorder "$line")" = 1 ] && [ "$(kv reset "$line")" = 0 ]; then
	ok "the stream survived the promoted node's death: every line echoed ($(kv sent "$line")) in order, no reset, longest pause $(kv maxgap_ms "$line") ms (pacemaker's own failover)"
else
	fail "the stream did not survive ($line)"
fi
ctl "$P-fw${prom2#fw}" status | grep -q '^role: *primary' && ok "$prom2's ctsyncd is primary" ||
	fail "$prom2's ctsyncd is not primary"
[ "$(where "$alive" vip-wan)" = "$prom2" ] && ok "the VIPs followed to $prom2" || fail "the VIPs are not on $prom2"
finish "$NAME"
