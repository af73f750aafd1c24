# tests/cluster/pcmk-lib.sh — a real pacemaker cluster in the firewall
# namespaces (sourced after lib.sh, with TRANSPORT=cpg).  Each node's
# corosync and pacemaker run in a mount namespace of their own (/run,
# /var/lib/{corosync,pacemaker}, /var/log/{corosync,pacemaker} and
# /usr/lib/ocf/resource.d bound to the test's directories), so that three
# of them can run on one host; the CLI tools reach a node's daemons from
# its network namespace (libqb's sockets are per network namespace).
# ctsyncd's configuration for node N is /run/ctsync/ctsyncd.conf inside
# it (write_config with SYNC_EXTRA as usual), its socket reachable as
# $T/fwN.sock.
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
	QB_PIDS+=("$(cat "$d/corosync.pid")")
	# the daemon's socket where lib.sh's ctl() looks for it
	ln -sf "$d/run/ctsync/ctsyncd.sock" "$T/fw$id.sock"
	write_config "$id" backup >/dev/null
	sed -i "s|socket = \"$T/fw$id.sock\"|socket = \"/run/ctsync/ctsyncd.sock\"|" "$T/fw$id.conf"
	cp "$T/fw$id.conf" "$d/run/ctsync/ctsyncd.conf"
}

# Every process in fw$ID's namespace is ours (pacemaker's daemons among
# them): their libqb files in /dev/shm go at cleanup (lib.sh).
note_qb_pids() { QB_PIDS+=($(ip netns pids "$P-fw$1")); }

# Stop a node the way its operator would: pacemaker first (it stops the
# resources), then corosync; by recorded PID, bounded.
stop_node() {
	local id=$1 pid deadline
	pid=${PCMK_PID[$id]:-}
	[ -n "$pid" ] || return 0
	note_qb_pids "$id"
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
kill_node() {         # kill_node ID [keep]: keep its addresses (no VIPs)
	local id=$1 pids l
	note_qb_pids "$id"
	for l in lan0 wan0 sync0; do nsx "$P-fw$id" ip link set $l down; done
	pids=$(ip netns pids "$P-fw$id")
	[ -n "$pids" ] && kill -9 $pids 2>/dev/null
	wait "${PCMK_PID[$id]}" 2>/dev/null
	PCMK_PID[$id]=
	# the VIPs a dead machine held are gone with it
	[ "${2:-}" = keep ] || vip_del "$P-fw$id"
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

# The LAN and WAN VIPs as a group of IPaddr2 resources (VIPS), and the
# constraints that keep them with the promoted instance (COLOCATE, ORDER).
vip_xml() {           # vip_xml NAME ADDR NIC: IPaddr2 for ADDR/24 on NIC
	printf '<primitive id="%s" class="ocf" provider="heartbeat" type="IPaddr2">' "$1"
	printf '<instance_attributes id="%s-ia"><nvpair id="%s-ip" name="ip" value="%s"/>' "$1" "$1" "$2"
	printf '<nvpair id="%s-mask" name="cidr_netmask" value="24"/>' "$1"
	printf '<nvpair id="%s-nic" name="nic" value="%s"/></instance_attributes>' "$1" "$3"
	printf '<operations><op id="%s-mon" name="monitor" interval="2s" timeout="10s"/></operations>' "$1"
	printf '</primitive>\n'
}
VIPS="<group id=\"vips\">$(vip_xml vip-lan 198.51.100.1 lan0)$(vip_xml vip-wan 203.0.113.1 wan0)</group>"
COLOCATE='<rsc_colocation id="vips-with-promoted" rsc="vips" with-rsc="ctsync-clone" with-rsc-role="Promoted" score="INFINITY"/>'
ORDER='<rsc_order id="promote-then-vips" first="ctsync-clone" first-action="promote" then="vips" then-action="start"/>'

# the promotable clone of our agent; PROMOTED_MAX instances promoted;
# PCMK_BINARY: the ctsyncd it runs (a path inside the node: /run is its own)
clone_xml() {
	cat <<EOF
<clone id="ctsync-clone">
  <meta_attributes id="ctsync-clone-meta">
    <nvpair id="ctsync-promotable" name="promotable" value="true"/>
    <nvpair id="ctsync-promoted-max" name="promoted-max" value="${PROMOTED_MAX:-1}"/>
    <nvpair id="ctsync-clone-max" name="clone-max" value="$NFW"/>
    <nvpair id="ctsync-notify" name="notify" value="true"/>
  </meta_attributes>
  <primitive id="ctsync" class="ocf" provider="ctsync" type="ctsyncd">
    <instance_attributes id="ctsync-ia">
      <nvpair id="ctsync-config" name="config" value="/run/ctsync/ctsyncd.conf"/>
      <nvpair id="ctsync-socket" name="socket" value="/run/ctsync/ctsyncd.sock"/>
      <nvpair id="ctsync-pidfile" name="pidfile" value="/run/ctsync/ctsyncd.pid"/>
      <nvpair id="ctsync-binary" name="binary" value="${PCMK_BINARY:-$B/ctsyncd}"/>
      <nvpair id="ctsync-ctl" name="ctl" value="$B/ctsyncctl"/>
      <nvpair id="ctsync-wait" name="sync_wait" value="3"/>
    </instance_attributes>
    <operations>
      <op id="ctsync-mon-p" name="monitor" interval="1s" role="Promoted" timeout="10s"/>
      <op id="ctsync-mon-u" name="monitor" interval="2s" role="Unpromoted" timeout="10s"/>
    </operations>
  </primitive>
</clone>
EOF
}

# The cluster up, every node online, no fencing (namespaces cannot be
# fenced; a lost node is taken as down), the resources sticky.
pcmk_cluster() {
	local i t
	for t in pacemakerd cibadmin crm_attribute crm_mon crm_resource; do
		command -v "$t" >/dev/null || { say "missing $t (pacemaker): make deps"; exit 1; }
	done
	for i in $FWS; do start_node "$i"; done
	if wait_online 1 "$NFW"; then
		ok "pacemaker $(pacemakerd --version | head -1 | awk '{print $2}'): $NFW nodes online"
	else
		fail "the pacemaker cluster did not form"; cib crm_mon -1; finish "$NAME"
	fi
	cib crm_attribute --type crm_config --name stonith-enabled --update false
	cib crm_attribute --type crm_config --name cluster-recheck-interval --update 5s
	cib crm_attribute --type rsc_defaults --name resource-stickiness --update 100 >/dev/null
}
