# Sourced by the tests that run a real keepalived VRRP pair on fw1 and fw2
# (tests/cluster/keepalived.sh, tests/compat/upgrade-keepalived.sh), after
# lib.sh and topology: VRRPv3, advert_int 0.1, one instance holding the LAN
# and WAN virtual addresses, fw1 priority 150 (preempting), fw2 100; fw1
# tells ctsyncd through the notify FIFO, fw2 through the notify script.
command -v keepalived >/dev/null || { say "missing keepalived: make deps"; exit 1; }
vip_del "$NS_FW1"             # keepalived owns the virtual addresses here
for ns in "$NS_FW1" "$NS_FW2"; do   # the firewalls must let VRRP in
	nsx "$ns" nft add rule inet filter input iifname "lan0" ip protocol vrrp accept
done
KA=$TOP/scripts/keepalived
KA_PID=()

ka_conf() {           # ka_conf ID: keepalived.conf and the wrapper it calls
	local id=$1 prio=$(( $1 == 1 ? 150 : 100 ))
	# keepalived runs scripts with its own environment: a wrapper names the
	# daemon's socket and our ctsyncctl
	cat > "$T/ka-env-fw$id.sh" <<EOF
#!/bin/sh
export CTSYNCCTL=$B/ctsyncctl CTSYNC_SOCKET=$T/fw$id.sock CTSYNC_WAIT=1
export CTSYNC_NOTIFY=$KA/ctsync-notify
exec "\$@" >>$T/notify-fw$id.log 2>&1
EOF
	printf '#!/bin/sh\nexec %s %s "$@"\n' "$T/ka-env-fw$id.sh" "$KA/ctsync-notify-fifo" > "$T/ka-fifo-fw$id.sh"
	printf '#!/bin/sh\nexec %s %s "$@"\n' "$T/ka-env-fw$id.sh" "$KA/ctsync-notify" > "$T/ka-notify-fw$id.sh"
	chmod 700 "$T"/ka-*-fw$id.sh
	local how="notify $T/ka-notify-fw$id.sh"
	local fifo=""
	if [ "$id" = 1 ]; then
		how=""
		fifo="vrrp_notify_fifo $T/ka-fw$id.fifo
	vrrp_notify_fifo_script $T/ka-fifo-fw$id.sh"
	fi
	cat > "$T/keepalived-fw$id.conf" <<EOF
global_defs {
	router_id fw$id
	script_user root
	enable_script_security
	$fifo
}
vrrp_instance FW {
	state BACKUP
	interface lan0
	virtual_router_id 51
	priority $prio
	version 3
	advert_int 0.1
	track_interface {
		wan0                 # lan0, the instance's own, is tracked anyway
	}
	virtual_ipaddress {
		198.51.100.1/24 dev lan0
		203.0.113.1/24 dev wan0
	}
	$how
}
EOF
}

ka_start() {          # ka_start ID
	local id=$1 ns=$P-fw$1
	nsx "$ns" keepalived -t -f "$T/keepalived-fw$id.conf" >"$T/ka-test-fw$id.log" 2>&1 ||
		{ fail "keepalived -t fw$id: $(tail -3 "$T/ka-test-fw$id.log")"; return 1; }
	ip netns exec "$ns" keepalived -n -l -D -P -f "$T/keepalived-fw$id.conf" \
		-p "$T/ka-fw$id.pid" -r "$T/ka-vrrp-fw$id.pid" -c "$T/ka-chk-fw$id.pid" \
		-b "$T/ka-bfd-fw$id.pid" >>"$T/keepalived-fw$id.log" 2>&1 &
	KA_PID[$id]=$!
	PIDS+=($!)
}

# keepalived and what it started (the FIFO reader, notify scripts), by
# recorded PIDs: the parent, its VRRP child; then what is left in the
# namespace besides ctsyncd
ka_stop() {           # ka_stop ID [SIGNAL]
	local id=$1 sig=${2:-TERM} ns=$P-fw$1 vrrp pid
	vrrp=$(cat "$T/ka-vrrp-fw$id.pid" 2>/dev/null)
	kill -"$sig" "${KA_PID[$id]}" $vrrp 2>/dev/null
	wait "${KA_PID[$id]}" 2>/dev/null
	sleep 0.2
	for pid in $(ip netns pids "$ns" 2>/dev/null); do
		[ "$pid" = "${DAEMON_PID[$((id - 1))]:-}" ] || kill "$pid" 2>/dev/null
	done
}

has_vip() { nsx "$1" ip -4 addr show dev lan0 | grep -q '198\.51\.100\.1/'; }
role() { ctl "$1" status 2>/dev/null | awk '/^role:/ { print $2 }'; }
wait_for() {          # wait_for SECONDS CMD...: until CMD succeeds
	local deadline=$((SECONDS + $1)); shift
	while [ $SECONDS -lt $deadline ]; do "$@" && return 0; sleep 0.05; done
	return 1
}
primary() { [ "$(role "$1")" = primary ]; }

