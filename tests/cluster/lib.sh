# tests/cluster/lib.sh — a two-firewall cluster in network namespaces.
#
#                 LAN 198.51.100.0/24                   WAN 203.0.113.0/24
#                 2001:db8:1::/64                       2001:db8:2::/64
#
#   client .10 ---[ br-lan ]--- lan0 fw1 .2 wan0 ---[ br-wan ]--- server .10
#                      |        (sync0 198.18.0.1)        |
#                      |              |  sync link        |
#                      |        (sync0 198.18.0.2)        |
#                      +------- lan0 fw2 .3 wan0 ---------+
#
#   VIPs .1 on the LAN and the WAN side live on the active firewall; it SNATs
#   client traffic to the WAN VIP.  The bridges live in a namespace of their
#   own ("sw"), so nothing but `ip netns add` touches the root namespace.
#
# NFW=3 or 4 adds fw3 (.4) and fw4 (.5) on the same bridges; with more than
# two firewalls the sync link is a bridge too, fw N at 198.18.0.N.
# TRANSPORT=cpg runs corosync in every firewall namespace (its own /run in a
# mount namespace of its own, knet between the sync addresses) and ctsyncd
# over CPG.
#
# Every namespace name starts with $P (unique per run); cleanup() removes them
# and stops every process by the PID recorded when it was started.

set -u
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
B=${BUILD:-$TOP/build}
P="cts$$x$RANDOM"
T=$(mktemp -d /tmp/ctsync-test.XXXXXX)
PIDS=()
DAEMON_PID=()
COROSYNC_PID=()
QB_PIDS=()                      # corosyncs and pacemaker daemons started: their
				# libqb files in /dev/shm are named by PID
NS_LIST=()
FAILED=0
: "${INJECT:=immediate}"
: "${TRANSPORT:=udp}"            # udp | multicast4 | multicast6
: "${VERBOSE:=0}"

NS_SW=$P-sw; NS_CL=$P-client; NS_SV=$P-server; NS_FW1=$P-fw1; NS_FW2=$P-fw2
: "${NFW:=2}"
FWS=$(seq 1 "$NFW")

say()  { printf '%s\n' "$*"; }
info() { printf '  %s\n' "$*"; }
fail() { printf '  FAIL: %s\n' "$*"; FAILED=1; }
ok()   { printf '  ok: %s\n' "$*"; }
nsx()  { local ns=$1; shift; ip netns exec "$ns" "$@"; }
# NB: never put nsx (a shell function) in the background: `nsx ... &` forks a
# subshell whose PID is not the process's, and killing it orphans the
# process.  Background processes are started as `ip netns exec NS CMD &`
# (ip execs CMD, so $! is CMD's own PID) through bg() and start_daemons.

cleanup() {
	local pid
	for pid in "${PIDS[@]}" "${DAEMON_PID[@]}" "${COROSYNC_PID[@]}"; do
		[ -n "$pid" ] && kill "$pid" 2>/dev/null
	done
	sleep 0.2
	for pid in "${PIDS[@]}" "${DAEMON_PID[@]}" "${COROSYNC_PID[@]}"; do
		[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
	done
	wait 2>/dev/null
	corosync_shm_cleanup
	local ns left
	for ns in "${NS_LIST[@]}"; do
		# anything still running in a namespace we made is ours: report it
		left=$(ip netns pids "$ns" 2>/dev/null)
		if [ -n "$left" ]; then
			say "  cleanup: processes left in $ns: $left (stopping them)"
			kill -9 $left 2>/dev/null
			FAILED=1
		fi
		ip netns del "$ns" 2>/dev/null
	done
	if [ "$FAILED" = 1 ] || [ "$VERBOSE" = 1 ]; then
		for f in "$T"/*.log; do
			[ -s "$f" ] || continue
			say "---- $(basename "$f") (last 30 lines)"
			tail -n 30 "$f"
		done
	fi
	[ -n "${KEEP_T:-}" ] && say "  kept $T" || rm -rf "$T"
	# a test that leaves processes behind has failed, whatever it said
	[ "$FAILED" = 1 ] && exit 1
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Refuse to run if a test range overlaps a route of the root namespace
# (the default route aside) or if we are not root.
preflight() {
	if [ "$(id -u)" -ne 0 ]; then
		say "SKIP: cluster tests need root"; exit 77
	fi
	local routes
	routes=$( { ip -4 route show table all; ip -6 route show table all; } 2>/dev/null |
		awk '{ r = ($1 ~ /^(local|broadcast|unicast|multicast|anycast|unreachable|blackhole|prohibit|throw)$/) ? $2 : $1;
		       if (r != "default") print r }')
	local bad
	bad=$(printf '%s\n' "$routes" | python3 -c '
import ipaddress, sys
ours = [ipaddress.ip_network(n) for n in
        ("198.51.100.0/24", "203.0.113.0/24", "198.18.0.0/15", "2001:db8::/32")]
for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    try:
        net = ipaddress.ip_network(line, strict=False)
    except ValueError:
        continue
    if net.is_link_local or net.is_multicast or net.prefixlen == 0:
        continue
    for o in ours:
        if net.version == o.version and net.overlaps(o):
            print(line, "overlaps", o)
')
	if [ -n "$bad" ]; then
		say "REFUSING to run: $bad (a route of the root namespace)"; exit 1
	fi
	for t in ctsyncd ctsyncctl ctsync-testtool; do
		[ -x "$B/$t" ] || { say "missing $B/$t: run make"; exit 1; }
	done
}

mkns() { ip netns add "$1" && NS_LIST+=("$1") && nsx "$1" ip link set lo up; }

# veth from namespace $1 (name $2) to the bridge $3 in the switch namespace
# (the bridge's end is named in PLUG_PEER)
plug() {
	local ns=$1 ifn=$2 br=$3 peer="${3:3:3}$RANDOM"
	ip link add "$ifn" netns "$ns" type veth peer name "$peer" netns "$NS_SW"
	nsx "$NS_SW" ip link set "$peer" master "$br" up
	nsx "$ns" ip link set "$ifn" up
	PLUG_PEER=$peer
}

fw_sysctls() {
	local ns=$1
	nsx "$ns" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
		net.netfilter.nf_conntrack_tcp_loose=0 net.netfilter.nf_conntrack_events=1 \
		net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
		net.ipv6.conf.all.keep_addr_on_down=1 net.ipv6.conf.default.keep_addr_on_down=1 >/dev/null
}

# ruleset NS EXTRA NEW: the strict stateful ruleset of every firewall here.
# Input: only the sync port, ICMP and what is established.  Forward:
# established and related, plus the new connections from the LAN that NEW
# allows.  SNAT of the LAN to the WAN VIPs.  EXTRA goes into the inet table.
ruleset() {
	nsx "$1" nft -f - <<EOF
flush ruleset
table inet filter {
	$2
	chain input {
		type filter hook input priority 0; policy drop;
		iif "lo" accept
		ct state established,related accept
		iifname "sync0" udp dport { 3780, 5405 } accept
		meta l4proto { icmp, ipv6-icmp } accept
	}
	chain forward {
		type filter hook forward priority 0; policy drop;
		ct state established,related accept
		$3
	}
}
table ip nat {
	chain post {
		type nat hook postrouting priority 100;
		oifname "wan0" snat to 203.0.113.1
	}
}
table ip6 nat {
	chain post {
		type nat hook postrouting priority 100;
		oifname "wan0" snat to 2001:db8:2::1
	}
}
EOF
}

# New TCP from the LAN only with a SYN, new UDP and ICMP from the LAN.
fw_ruleset() {
	ruleset "$1" "" 'iifname "lan0" oifname "wan0" ct state new tcp flags & (fin|syn|rst|ack) == syn accept
		iifname "lan0" oifname "wan0" ct state new meta l4proto { udp, icmp, ipv6-icmp } accept'
}

# The client on br-lan with N addresses (198.51.100.10 and 2001:db8:1::10
# up), the server .10 on br-wan, their routes via the .1 gateways.
endpoints() {
	local k ns
	for ns in "$NS_CL" "$NS_SV"; do
		nsx "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 >/dev/null
	done
	plug "$NS_CL" eth0 br-lan
	plug "$NS_SV" eth0 br-wan
	for k in $(seq 0 $(($1 - 1))); do
		nsx "$NS_CL" ip addr add 198.51.100.$((10 + k))/24 dev eth0
		nsx "$NS_CL" ip -6 addr add 2001:db8:1::$(printf %x $((0x10 + k)))/64 dev eth0 nodad
	done
	nsx "$NS_CL" ip route add default via 198.51.100.1
	nsx "$NS_CL" ip -6 route add default via 2001:db8:1::1
	nsx "$NS_SV" ip addr add 203.0.113.10/24 dev eth0
	nsx "$NS_SV" ip -6 addr add 2001:db8:2::10/64 dev eth0 nodad
}

topology() {
	mkns "$NS_SW"; mkns "$NS_CL"; mkns "$NS_SV"
	local i ns
	for i in $FWS; do mkns "$P-fw$i"; done
	nsx "$NS_SW" ip link add br-lan type bridge
	nsx "$NS_SW" ip link add br-wan type bridge
	nsx "$NS_SW" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 >/dev/null
	nsx "$NS_SW" ip link set br-lan up
	nsx "$NS_SW" ip link set br-wan up
	endpoints 1
	for i in $FWS; do
		ns=$P-fw$i
		fw_sysctls "$ns"
		plug "$ns" lan0 br-lan
		plug "$ns" wan0 br-wan
		nsx "$ns" ip addr add 198.51.100.$((i + 1))/24 dev lan0
		nsx "$ns" ip addr add 203.0.113.$((i + 1))/24 dev wan0
		nsx "$ns" ip -6 addr add 2001:db8:1::$((i + 1))/64 dev lan0 nodad
		nsx "$ns" ip -6 addr add 2001:db8:2::$((i + 1))/64 dev wan0 nodad
		fw_ruleset "$ns"
	done
	if [ "$NFW" -gt 2 ]; then
		nsx "$NS_SW" ip link add br-sync type bridge
		nsx "$NS_SW" ip link set br-sync up
		for i in $FWS; do plug "$P-fw$i" sync0 br-sync; done
	elif [ "${SYNC_BRIDGE:-0}" = 1 ]; then
		# the sync link as a segment others can reach: a bridge, and a
		# third namespace on it ($NS_EVIL, 198.18.0.66) for attacks
		NS_EVIL=$P-evil
		mkns "$NS_EVIL"
		nsx "$NS_SW" ip link add br-sync type bridge
		nsx "$NS_SW" ip link set br-sync up
		plug "$NS_FW1" sync0 br-sync
		plug "$NS_FW2" sync0 br-sync
		plug "$NS_EVIL" eth0 br-sync
		nsx "$NS_EVIL" ip addr add 198.18.0.66/24 dev eth0
	else
		ip link add sync0 netns "$NS_FW1" type veth peer name sync0 netns "$NS_FW2"
	fi
	for i in $FWS; do
		nsx "$P-fw$i" ip addr add 198.18.0.$i/24 dev sync0
		nsx "$P-fw$i" ip -6 addr add 2001:db8:ff::$i/64 dev sync0 nodad
		nsx "$P-fw$i" ip link set sync0 up
	done
	vip_add "$NS_FW1"
}

# Active-active: every firewall is the gateway at once.  Each one's lan0
# and wan0 carry the same address (.1) and the same MAC, and the bridges'
# ports to the firewalls do not learn: every frame for that MAC floods to
# all of them, and each forwards only the flows of the buckets it holds
# (ctsyncd's nftables rule).  The client has NCL addresses (.10 up, and
# 2001:db8:1::10 up), so that its connections fall into different buckets.
# No firewall has an address of its own there (a frame for it would reach
# the others too).
topology_shared() {
	mkns "$NS_SW"; mkns "$NS_CL"; mkns "$NS_SV"
	local i ns k
	for i in $FWS; do mkns "$P-fw$i"; done
	nsx "$NS_SW" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 >/dev/null
	for b in br-lan br-wan br-sync; do
		nsx "$NS_SW" ip link add $b type bridge
		nsx "$NS_SW" ip link set $b up
	done
	endpoints "${NCL:-1}"
	for i in $FWS; do
		ns=$P-fw$i
		fw_sysctls "$ns"
		plug "$ns" lan0 br-lan
		nsx "$NS_SW" ip link set "$PLUG_PEER" type bridge_slave learning off
		plug "$ns" wan0 br-wan
		nsx "$NS_SW" ip link set "$PLUG_PEER" type bridge_slave learning off
		plug "$ns" sync0 br-sync
		nsx "$ns" ip link set lan0 address 02:00:5e:63:00:01
		nsx "$ns" ip link set wan0 address 02:00:5e:63:00:02
		nsx "$ns" ip addr add 198.51.100.1/24 dev lan0
		nsx "$ns" ip addr add 203.0.113.1/24 dev wan0
		nsx "$ns" ip -6 addr add 2001:db8:1::1/64 dev lan0 nodad
		nsx "$ns" ip -6 addr add 2001:db8:2::1/64 dev wan0 nodad
		nsx "$ns" ip addr add 198.18.0.$i/24 dev sync0
		fw_ruleset "$ns"
	done
}

vip_add() {
	local ns=$1
	nsx "$ns" ip addr add 198.51.100.1/24 dev lan0
	nsx "$ns" ip addr add 203.0.113.1/24 dev wan0
	nsx "$ns" ip -6 addr add 2001:db8:1::1/64 dev lan0 nodad
	nsx "$ns" ip -6 addr add 2001:db8:2::1/64 dev wan0 nodad
	# Gratuitous ARP and unsolicited neighbour advertisements, so that
	# client and server learn the new owner's MAC at once.
	# (arping lingers a second after sending: let it do so in the background)
	ip netns exec "$ns" arping -q -U -c 1 -I lan0 198.51.100.1 >/dev/null 2>&1 &
	PIDS+=($!)
	ip netns exec "$ns" arping -q -U -c 1 -I wan0 203.0.113.1 >/dev/null 2>&1 &
	PIDS+=($!)
	nsx "$ns" "$B/ctsync-testtool" unsol-na lan0 2001:db8:1::1 || true
	nsx "$ns" "$B/ctsync-testtool" unsol-na wan0 2001:db8:2::1 || true
}

vip_del() {
	local ns=$1
	nsx "$ns" ip addr del 198.51.100.1/24 dev lan0 2>/dev/null
	nsx "$ns" ip addr del 203.0.113.1/24 dev wan0 2>/dev/null
	nsx "$ns" ip -6 addr del 2001:db8:1::1/64 dev lan0 2>/dev/null
	nsx "$ns" ip -6 addr del 2001:db8:2::1/64 dev wan0 2>/dev/null
}

# The active firewall "dies" (its LAN and WAN links go down; the sync link
# and the daemon stay) and the other takes the VIPs, as keepalived would.
# With daemons running, the new master is promoted and the old one demoted.
failover() {          # failover FROM_NS TO_NS
	local from=$1 to=$2
	vip_del "$from"
	nsx "$from" ip link set lan0 down
	nsx "$from" ip link set wan0 down
	vip_add "$to"
	if [ "${#DAEMON_PID[@]}" -gt 0 ]; then
		ctl "$to" promote >/dev/null || fail "promote on $to"
		ctl "$from" demote >/dev/null || fail "demote on $from"
	fi
}

# Bring a firewall's links back (after a failover away from it).
revive() {
	nsx "$1" ip link set lan0 up
	nsx "$1" ip link set wan0 up
}

# Every test's sync link is sealed, with one key per run (SECURITY_CONF
# replaces the whole security group).
write_config() {      # write_config ID ROLE -> path
	local id=$1 role=$2
	[ -s "$T/sync.key" ] || "$B/ctsyncctl" keygen > "$T/sync.key"
	local security="security = { key_file = \"$T/sync.key\"; };"
	# CONTROL_EXTRA: more keys for the control group, @ID@ standing for the id
	local control_extra=${CONTROL_EXTRA:-}
	control_extra=${control_extra//@ID@/$id}
	[ -n "${SECURITY_CONF:-}" ] && security=$SECURITY_CONF
	local f=$T/fw$id.conf type=udp me=198.18.0.$id net=198.18.0. group= peers= j
	case $TRANSPORT in
	multicast4) type=multicast; group='group = "239.255.67.83";' ;;
	multicast6) type=multicast; group='group = "ff02::6373";'
		    me=2001:db8:ff::$id; net=2001:db8:ff:: ;;
	esac
	# SYNC_PATH2=PREFIX: a second UDP path on interface mgmt0, fwN at PREFIX N
	local p2= path2=
	[ -n "${SYNC_PATH2:-}" ] && path2="interface2 = \"mgmt0\"; address2 = \"$SYNC_PATH2$id\";"
	for j in $FWS; do
		[ "$j" = "$id" ] && continue
		[ -n "${SYNC_PATH2:-}" ] && p2=" address2 = \"$SYNC_PATH2$j\";"
		peers="$peers${peers:+, }{ id = $j; address = \"$net$j\";$p2 }"
	done
	local tr="type = \"$type\"; interface = \"sync0\"; address = \"$me\"; port = 3780; $group $path2
	peers = ( $peers );"
	# over CPG the peers and their addresses are corosync's nodelist
	[ "$TRANSPORT" = cpg ] && tr='type = "cpg"; group = "ctsync";'
	cat > "$f" <<EOF
node = { id = $id; };
sync = { role = "$role"; inject = "$INJECT"; heartbeat_ms = 100; dead_after = 5; ${SYNC_EXTRA:-} };
transport = {
	$tr
};
filter = { ignore_addresses = [ "127.0.0.0/8", "::1/128" ]; ${FILTER_EXTRA:-} };
control = { socket = "$T/fw$id.sock"; $control_extra };
$security
log = { level = "info"; };
EOF
	# EXTRA_CONF1 / EXTRA_CONF2: more settings for one node (whole groups)
	local extra="EXTRA_CONF$id"
	[ -n "${!extra:-}" ] && printf '%s\n' "${!extra}" >> "$f"
	printf '%s' "$f"
}

ctl() {               # ctl NS ARGS...
	local ns=$1; shift
	local id=${ns##*-fw}
	nsx "$ns" "$B/ctsyncctl" --socket "$T/fw$id.sock" "$@"
}

# start_daemon ID [ROLE]: ctsyncd on fw$ID (by default fw1 primary, the
# others backup), PID recorded in DAEMON_PID[ID-1]
start_daemon() {
	local id=$1 role=backup
	[ "$id" = 1 ] && role=primary
	[ -n "${2:-}" ] && role=$2
	if [ "$TRANSPORT" = cpg ] && [ -z "${COROSYNC_PID[$((id - 1))]:-}" ]; then
		start_corosync "$id" || return 1
	fi
	write_config "$id" "$role" >/dev/null
	# CTSYNCD1, CTSYNCD2...: another ctsyncd binary on that node (tests/compat)
	local bin="CTSYNCD$id"
	bin=${!bin:-$B/ctsyncd}
	nsx "$P-fw$id" "$bin" --check --config "$T/fw$id.conf" >/dev/null ||
		{ fail "config check fw$id"; return 1; }
	ip netns exec "$P-fw$id" "$bin" --foreground --config "$T/fw$id.conf" \
		>>"$T/ctsyncd-fw$id.log" 2>&1 &
	DAEMON_PID[$((id - 1))]=$!
}

# kill_daemon ID [SIGNAL]: stop one daemon by its recorded PID
kill_daemon() {
	local i=$(($1 - 1))
	kill -"${2:-TERM}" "${DAEMON_PID[$i]}" 2>/dev/null
	wait "${DAEMON_PID[$i]}" 2>/dev/null
	DAEMON_PID[$i]=
}

start_daemons() {
	local i all
	for i in $FWS; do start_daemon "$i" || return 1; done
	# all up and talking to each other (bounded)
	local deadline=$((SECONDS + 15))
	while [ $SECONDS -lt $deadline ]; do
		all=1
		for i in $FWS; do
			ctl "$P-fw$i" status 2>/dev/null | grep -q '^in sync: *yes' || { all=0; break; }
		done
		[ "$all" = 1 ] && return 0
		sleep 0.1
	done
	fail "daemons did not come up in sync within 15 s"
	return 1
}

# corosync in fw$ID's network namespace, with /run, its state and its log
# in a mount namespace of its own (two corosyncs on one host would share
# their pid file); knet between the sync addresses, short timeouts so that
# a lost node leaves the membership in about a second.  PID recorded.
# corosync.conf of every firewall: knet between the sync addresses, node
# ids 1..NFW named fwN
corosync_conf() {
	local j
	printf 'totem {\n\tversion: 2\n\tcluster_name: %s\n\ttransport: knet\n' "$P"
	printf '\tcrypto_cipher: none\n\tcrypto_hash: none\n\ttoken: 400\n\tjoin: 50\n}\n'
	printf 'logging {\n\tto_stderr: yes\n\tto_logfile: no\n\tto_syslog: no\n\ttimestamp: on\n\tblackbox: off\n}\n'
	# COROSYNC_QUORUM=0: no quorum provider (every partition quorate)
	if [ "${COROSYNC_QUORUM:-1}" = 1 ]; then
		printf 'quorum {\n\tprovider: corosync_votequorum\n'
		# COROSYNC_VOTEQUORUM: more votequorum options, "key: value" a line
		[ -n "${COROSYNC_VOTEQUORUM:-}" ] && printf '%s\n' "$COROSYNC_VOTEQUORUM" | sed 's/^/\t/'
		printf '}\n'
	fi
	printf 'nodelist {\n'
	for j in $FWS; do
		printf '\tnode {\n\t\tnodeid: %s\n\t\tname: fw%s\n\t\tring0_addr: 198.18.0.%s\n' "$j" "$j" "$j"
		# COROSYNC_RING1=PREFIX: a second knet link, fwN at PREFIX N
		[ -n "${COROSYNC_RING1:-}" ] && printf '\t\tring1_addr: %s%s\n' "$COROSYNC_RING1" "$j"
		printf '\t}\n'
	done
	printf '}\n'
}

start_corosync() {
	local id=$1 j d=$T/corosync$1
	mkdir -p "$d/run" "$d/lib" "$d/log"
	corosync_conf > "$d/corosync.conf"
	ip netns exec "$P-fw$id" unshare -m --propagation private sh -c \
		"mount -t tmpfs none /run && mount --bind $d/lib /var/lib/corosync &&
		 mount --bind $d/log /var/log/corosync && exec corosync -f -c $d/corosync.conf" \
		>>"$T/corosync-fw$id.log" 2>&1 &
	COROSYNC_PID[$((id - 1))]=$!
	QB_PIDS+=($!)
	local deadline=$((SECONDS + 10))
	while [ $SECONDS -lt $deadline ]; do
		nsx "$P-fw$id" corosync-cfgtool -s >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	fail "corosync on fw$id did not come up"
	return 1
}

kill_corosync() {     # kill_corosync ID [SIGNAL]
	local i=$(($1 - 1))
	[ -n "${COROSYNC_PID[$i]:-}" ] || return 0      # none started there
	kill -"${2:-TERM}" "${COROSYNC_PID[$i]}" 2>/dev/null
	wait "${COROSYNC_PID[$i]}" 2>/dev/null
	COROSYNC_PID[$i]=
}

# libqb leaves a killed corosync's (and its clients') shared memory in
# /dev/shm, named by PID: remove those of the PIDs we started.
corosync_shm_cleanup() {
	local pid
	for pid in "${QB_PIDS[@]}"; do
		rm -rf /dev/shm/qb-"$pid"-* /dev/shm/qb-*-"$pid"-* /dev/shm/qb-corosync-"$pid"-* 2>/dev/null
	done
}

# Stop the daemons with SIGTERM: each must exit 0, and its log must hold no
# sanitizer report (make check SANITIZE=1).
stop_daemons() {
	local pid rc i=0
	for pid in "${DAEMON_PID[@]}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null; done
	for pid in "${DAEMON_PID[@]}"; do
		i=$((i + 1))
		[ -n "$pid" ] || continue
		wait "$pid" 2>/dev/null; rc=$?
		[ "$rc" = 0 ] || fail "ctsyncd on fw$i exited with status $rc"
	done
	for f in "$T"/ctsyncd-fw*.log; do
		[ -f "$f" ] || continue
		if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$f"; then
			fail "sanitizer report in $(basename "$f")"
		fi
	done
	DAEMON_PID=()
}

# Wait until NS says it is in sync with every peer (bounded).
wait_in_sync() {
	local ns=$1 secs=${2:-10}
	local deadline=$((SECONDS + secs))
	while [ $SECONDS -lt $deadline ]; do
		ctl "$ns" status 2>/dev/null | grep -q '^in sync: *yes' && return 0
		sleep 0.1
	done
	return 1
}

# wait_file PATH SECS: until the file exists and is not empty (bounded)
wait_file() {
	local deadline=$((SECONDS + $2))
	while [ $SECONDS -lt $deadline ]; do
		[ -s "$1" ] && return 0
		sleep 0.05
	done
	return 1
}

# Background process in a namespace, PID recorded for cleanup (and in BG_PID).
bg() {                # bg NS LOGNAME CMD...
	local ns=$1 log=$2; shift 2
	ip netns exec "$ns" "$@" >"$T/$log.log" 2>&1 &
	BG_PID=$!
	PIDS+=($!)
}

# Put the cluster back to "fw1 active, tables empty" between phases.
reset_cluster() {
	stop_daemons
	local i
	for i in $FWS; do
		vip_del "$P-fw$i"
		revive "$P-fw$i"
	done
	vip_add "$NS_FW1"
	for i in $FWS; do nsx "$P-fw$i" conntrack -F >/dev/null 2>&1; done
	nsx "$NS_CL" ip neigh flush dev eth0 2>/dev/null
	nsx "$NS_SV" ip neigh flush dev eth0 2>/dev/null
}

# kv KEY LINE: value of KEY=... in a summary line
kv() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

finish() {
	stop_daemons
	if [ "$FAILED" = 0 ]; then say "PASS: $1"; exit 0; fi
	say "FAIL: $1"; exit 1
}

# Loss on the sync link: drop P % of the sync datagrams arriving at NS.
sync_loss() {         # sync_loss NS PERCENT
	nsx "$1" nft delete table inet ctsync_loss 2>/dev/null
	[ "$2" = 0 ] && return 0
	nsx "$1" nft -f - <<EOF2
table inet ctsync_loss {
	chain in {
		type filter hook input priority -400;
		iifname "sync0" udp dport 3780 numgen random mod 100 < $2 counter drop
	}
}
EOF2
}
sync_loss_dropped() { nsx "$1" nft list table inet ctsync_loss 2>/dev/null |
	sed -n 's/.*counter packets \([0-9]*\).*/\1/p'; }

# Cut / restore the sync link.
sync_cut()     { nsx "$NS_FW1" ip link set sync0 down; }
sync_restore() { nsx "$NS_FW1" ip link set sync0 up; }

# The flows of fw1 and fw2, normalised, for comparison.
ct_table() { nsx "$1" "$B/ctsync-ctgen" dump | grep -v '198\.18\.0\.' | sort; }

# ctstat NS NAME: one counter of `ctsyncctl stats`
ctstat() { ctl "$1" stats | awk -v k="$2" '$1 == k { print $2 }'; }

# Stop what is left in a namespace of ours once its recorded parent process
# is gone (the per-session children of a server such as vsftpd): found by
# namespace membership, which only processes we started can have.
stop_ns_children() {
	local pids
	pids=$(ip netns pids "$1" 2>/dev/null)
	[ -n "$pids" ] && kill $pids 2>/dev/null
	sleep 0.2
	pids=$(ip netns pids "$1" 2>/dev/null)
	[ -n "$pids" ] && kill -9 $pids 2>/dev/null
	return 0
}

# helper_ruleset NS HELPER PROTO PORT: a conntrack helper attached to new
# connections from the LAN to PORT, and new connections from the LAN allowed
# only to that port: anything else (a data or media connection) passes only
# as RELATED, that is, by an expectation.
helper_ruleset() {
	ruleset "$1" "ct helper h {
		type \"$2\" protocol $3;
	}
	chain pre {
		type filter hook prerouting priority 0;
		iifname \"lan0\" $3 dport $4 ct helper set \"h\"
	}" "iifname \"lan0\" oifname \"wan0\" ct state new $3 dport $4 accept"
}

# The FTP server: vsftpd on 203.0.113.10, anonymous, read-only, passive
# ports 50000-50100, serving data.bin (3,000,000 random bytes) whose
# FNV-1a hash is in $want.  PID in VSFTPD.
start_vsftpd() {
	command -v vsftpd >/dev/null || [ -x /usr/sbin/vsftpd ] || { say "missing vsftpd: make deps"; exit 1; }
	mkdir -p "$T/ftproot" "$T/empty"
	chmod 755 "$T/ftproot" "$T/empty"
	head -c 3000000 /dev/urandom > "$T/ftproot/data.bin"
	chmod 644 "$T/ftproot/data.bin"
	cat > "$T/vsftpd.conf" <<-EOF
	listen=YES
	listen_ipv6=NO
	listen_address=203.0.113.10
	background=NO
	anonymous_enable=YES
	no_anon_password=YES
	anon_root=$T/ftproot
	local_enable=NO
	write_enable=NO
	pasv_enable=YES
	pasv_min_port=50000
	pasv_max_port=50100
	secure_chroot_dir=$T/empty
	seccomp_sandbox=NO
	xferlog_enable=NO
	EOF
	bg "$NS_SV" vsftpd /usr/sbin/vsftpd "$T/vsftpd.conf"
	VSFTPD=$BG_PID
	sleep 0.5
	want=$(python3 -c 'import sys
h = 14695981039346656037
for b in open(sys.argv[1], "rb").read():
    h = ((h ^ b) * 1099511628211) & 0xffffffffffffffff
print("%016x" % h)' "$T/ftproot/data.bin")
}
stop_vsftpd() {
	kill "$VSFTPD" 2>/dev/null
	wait "$VSFTPD" 2>/dev/null
	stop_ns_children "$NS_SV"
}

# snap_expectations LABEL: both kernels' expectations as conntrack(8) shows
# them (the remaining timeout left out) into $T/LABEL.exp1 and .exp2, and
# how many fw2's daemon holds (inject on-promote keeps them in memory) in
# $held
snap_expectations() {
	nsx "$NS_FW1" conntrack -L expect 2>/dev/null | cut -d' ' -f2- | sort > "$T/$1.exp1"
	nsx "$NS_FW2" conntrack -L expect 2>/dev/null | cut -d' ' -f2- | sort > "$T/$1.exp2"
	held=$(ctl "$NS_FW2" --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["expectations_total"])')
}

# expectations_synced LABEL MIN: fw2 had fw1's expectations (at least MIN)
# before the failover — in its kernel, or in memory with inject on-promote
expectations_synced() {
	local n1
	n1=$(wc -l < "$T/$1.exp1")
	if [ "$INJECT" = on-promote ]; then
		[ "$held" -ge "$2" ] && ok "fw2 held fw1's $held expectations in memory before the failover (inject on-promote)" ||
			fail "fw2 held $held expectations before the failover, want $2"
	elif [ "$n1" -ge "$2" ] && cmp -s "$T/$1.exp1" "$T/$1.exp2"; then
		ok "fw2's expectations equalled fw1's before the failover ($n1, conntrack -L expect)"
	else
		fail "expectations differ: fw1 $n1, fw2 $(wc -l < "$T/$1.exp2")"
		diff "$T/$1.exp1" "$T/$1.exp2" | head -10
	fi
}

# tables_equal MIN: both kernels hold the same flows (the sync link's own
# aside), at least MIN of them
tables_equal() {
	ct_table "$NS_FW1" > "$T/t1"
	ct_table "$NS_FW2" > "$T/t2"
	if cmp -s "$T/t1" "$T/t2" && [ "$(wc -l < "$T/t1")" -ge "$1" ]; then
		ok "both kernels hold the same $(wc -l < "$T/t1") flows"
	else
		fail "tables differ: fw1 $(wc -l < "$T/t1"), fw2 $(wc -l < "$T/t2") flows"
		diff "$T/t1" "$T/t2" | head -5
	fi
}

# stream_control SERVER: the negative control of a failover test, the
# daemons not running: a 5 s stream to SERVER:8080 through fw1 must break
# when fw1 fails over to fw2; the cluster is reset after
stream_control() {
	local client
	bg "$NS_CL" neg "$B/ctsync-testtool" tcp-stream "$1" 8080 5 20
	client=$BG_PID
	sleep 2
	failover "$NS_FW1" "$NS_FW2"
	wait "$client"
	stream_broke "$T/neg.log"
	reset_cluster
}

# stream_broke LOG: the negative control of a tcp-stream test — the stream
# whose summary is LOG's last line connected, then stopped at the failover
stream_broke() {
	local line; line=$(tail -n 1 "$1")
	info "without ctsyncd: $line"
	if [ "$(kv connected "$line")" != 1 ]; then
		fail "negative control: could not even connect (topology broken)"
	elif [ "$(kv echoed "$line")" -lt "$(kv sent "$line")" ] && [ "$(kv last_echo_ago_ms "$line")" -gt 2000 ]; then
		ok "negative control: the stream broke at failover"
	else
		fail "negative control: the stream survived without ctsyncd, so this test proves nothing"
	fi
}

# stream_survived LINE MIN WHAT: a tcp-stream summary line shows every line
# echoed (more than MIN), in order, no reset, no pause of 2 s
stream_survived() {
	local line=$1
	if [ "$(kv echoed "$line")" = "$(kv sent "$line")" ] && [ "$(kv sent "$line")" -gt "$2" ] &&
	   [ "$(kv inorder "$line")" = 1 ] && [ "$(kv reset "$line")" = 0 ] &&
	   [ "$(kv maxgap_ms "$line")" -lt 2000 ]; then
		ok "$3: every line echoed ($(kv sent "$line")) in order, no reset, longest pause $(kv maxgap_ms "$line") ms"
	else
		fail "$3: the stream did not survive ($line)"
	fi
}
