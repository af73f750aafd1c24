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
: "${NFW:=3}"
: "${TRANSPORT:=multicast4}"
: "${NCL:=12}"
. "$(dirname "$0")/lib.sh"
NAME="active-active on $NFW nodes over $TRANSPORT: all forward, one dies mid-stream and comes back"
say "== $NAME"
preflight
topology_shared
SERVER=203.0.113.10
NB=64
SEED=0x63747379                 # ctsyncd's default
bg "$NS_SV" echo "$B/ctsync-testtool" tcp-echo 8080
sleep 0.3

streams() {           # streams LABEL SECONDS: one TCP stream per client address
	SPIDS=()
	local k
	for k in $(seq 0 $((NCL - 1))); do
		bg "$NS_CL" "$1-$k" "$B/ctsync-testtool" tcp-stream "$SERVER" 8080 "$2" 20 \
			198.51.100.$((10 + k))
		SPIDS+=("$BG_PID")
	done
}
wait_streams() { local p; for p in "${SPIDS[@]}"; do wait "$p"; done; }

# The same bucket owner as ctsyncd's map when node DEAD (0: none) is gone:
# home node (b mod N) + 1, else the survivors in turn (policy.h).
bucket_owner() {      # bucket_owner B DEAD
	local b=$1 home=$(($1 % NFW + 1)) live=() i
	[ "$home" != "$2" ] && { echo "$home"; return; }
	for i in $FWS; do [ "$i" != "$2" ] && live+=("$i"); done
	echo "${live[$(( (b / NFW) % ${#live[@]} ))]}"
}
static_buckets() {    # static_buckets DEAD: every live node's set, by hand
	local i b list
	for i in $FWS; do
		[ "$i" = "$1" ] && continue
		list=
		for b in $(seq 0 $((NB - 1))); do
			[ "$(bucket_owner "$b" "$1")" = "$i" ] && list="$list${list:+, }$b"
		done
		nsx "$P-fw$i" nft "flush set inet ctsync held; add element inet ctsync held { $list }"
	done
}
# the rule ctsyncd installs (src/kernel/nftb.h), by hand
static_table() {
	local i
	for i in $FWS; do
		nsx "$P-fw$i" nft -f - <<EOF
table inet ctsync {
	set held { typeof meta cpu; }
	chain buckets {
		type filter hook forward priority filter - 5; policy accept;
		meta nfproto ipv4 jhash ct original ip saddr . ct original ip daddr mod $NB seed $SEED != @held counter drop
	}
}
EOF
	done
	static_buckets 0
}

# the node forwarding each stream before the failure: the one whose kernel
# confirmed its entry (without ctsyncd) / that owns it (with)
via_node() {          # via_node K -> node id, or 0
	local i src=198.51.100.$((10 + $1))
	for i in $FWS; do
		if [ "${#DAEMON_PID[@]}" -gt 0 ]; then
			ctl "$P-fw$i" dump --local 2>/dev/null | grep -q " $src:[0-9]* -> $SERVER:8080 " &&
				{ echo "$i"; return; }
		elif nsx "$P-fw$i" conntrack -L -p tcp -s "$src" --dport 8080 2>/dev/null | grep -q .; then
			echo "$i"; return
		fi
	done
	echo 0
}

fw1_dies() {
	nsx "$NS_FW1" ip link set lan0 down
	nsx "$NS_FW1" ip link set wan0 down
	nsx "$NS_FW1" ip link set sync0 down
}

# -- negative control: the bucket rule and the takeover, no ctsyncd
static_table
streams neg 8
sleep 2
declare -A VIA
n1=0
for k in $(seq 0 $((NCL - 1))); do VIA[$k]=$(via_node "$k"); [ "${VIA[$k]}" = 1 ] && n1=$((n1 + 1)); done
info "streams per firewall: $(for i in $FWS; do printf 'fw%s %s  ' "$i" "$(for k in "${!VIA[@]}"; do echo "${VIA[$k]}"; done | grep -c "^$i$")"; done)"
fw1_dies
static_buckets 1
wait_streams
broke=0; held=0
for k in $(seq 0 $((NCL - 1))); do
	line=$(tail -n 1 "$T/neg-$k.log")
	if [ "${VIA[$k]}" = 1 ]; then
		[ "$(kv echoed "$line")" -lt "$(kv sent "$line")" ] && broke=$((broke + 1))
	elif [ "$(kv echoed "$line")" = "$(kv sent "$line")" ] && [ "$(kv sent "$line")" -gt 0 ]; then
		held=$((held + 1))
	fi
done
if [ "$n1" -gt 0 ] && [ "$broke" = "$n1" ] && [ "$held" = $((NCL - n1)) ]; then
	ok "negative control: fw1's $n1 streams broke when its buckets moved without ctsyncd, the other $held went on"
else
	fail "negative control: fw1 forwarded $n1 streams, $broke of them broke; $held of the others went on"
fi
for i in $FWS; do
	nsx "$P-fw$i" nft delete table inet ctsync
	nsx "$P-fw$i" conntrack -F >/dev/null 2>&1
	for l in lan0 wan0 sync0; do nsx "$P-fw$i" ip link set $l up; done
done

# -- with ctsyncd, active-active on every node
export SYNC_EXTRA='mode = "active-active";'
for i in $FWS; do start_daemon "$i" primary || finish "$NAME"; done
js() { ctl "$1" --json status | python3 -c "import json,sys; s=json.load(sys.stdin); print($2)"; }
all_hold() {          # every node in sync, holding buckets, the map split in full
	local deadline=$((SECONDS + $1)) i sum
	while [ $SECONDS -lt $deadline ]; do
		sum=0
		for i in $FWS; do
			[ "$(js "$P-fw$i" 's["in_sync"] and s["holds_buckets"]' 2>/dev/null)" = True ] || { sum=-1; break; }
			sum=$((sum + $(js "$P-fw$i" 's["buckets"]["held"]')))
		done
		[ "$sum" = "$NB" ] && return 0
		sleep 0.1
	done
	return 1
}
if all_hold 15; then
	ok "all $NFW nodes in sync and holding buckets: $(for i in $FWS; do printf 'fw%s %s  ' "$i" "$(js "$P-fw$i" 's["buckets"]["held"]')"; done)"
else
	fail "the nodes did not come up holding every bucket between them"
	for i in $FWS; do ctl "$P-fw$i" status | head -8; done
	finish "$NAME"
fi
streams pos 16
sleep 2.5
n1=0; busy=0
for k in $(seq 0 $((NCL - 1))); do VIA[$k]=$(via_node "$k"); [ "${VIA[$k]}" = 1 ] && n1=$((n1 + 1)); done
for i in $FWS; do
	c=$(for k in "${!VIA[@]}"; do echo "${VIA[$k]}"; done | grep -c "^$i$")
	[ "$c" -gt 0 ] && busy=$((busy + 1))
	dropped=$(nsx "$P-fw$i" nft list chain inet ctsync buckets | sed -n 's/.*counter packets \([0-9]*\).*/\1/p' | head -1)
	info "fw$i owns $c streams, dropped ${dropped:-?} packets of the others' buckets"
done
[ "$busy" = "$NFW" ] && ok "all $NFW firewalls forward at once" ||
	fail "only $busy of $NFW firewalls forward a stream"
kill_daemon 1 KILL
fw1_dies
info "fw1 died (daemon SIGKILLed, every link down) with $n1 streams"
sleep 4
left=0
for i in $FWS; do [ "$i" = 1 ] || left=$((left + $(js "$P-fw$i" 's["buckets"]["held"]'))); done
[ "$left" = "$NB" ] && ok "fw2 and fw3 hold all $NB buckets between them" ||
	fail "the survivors hold $left of $NB buckets"
# fw1 comes back: its daemon first (its table is made empty: it forwards
# nothing until it is in sync), then its links
nsx "$NS_FW1" ip link set sync0 up
start_daemon 1 primary
sleep 0.5
nsx "$NS_FW1" ip link set lan0 up
nsx "$NS_FW1" ip link set wan0 up
info "fw1 back: daemon restarted, links up"
wait_streams
survived=0
for k in $(seq 0 $((NCL - 1))); do
	line=$(tail -n 1 "$T/pos-$k.log")
	if [ "$(kv echoed "$line")" = "$(kv sent "$line")" ] && [ "$(kv sent "$line")" -gt 600 ] &&
	   [ "$(kv inorder "$line")" = 1 ] && [ "$(kv reset "$line")" = 0 ] &&
	   [ "$(kv maxgap_ms "$line")" -lt 2000 ]; then
		survived=$((survived + 1))
	else
		info "stream $k (via fw${VIA[$k]}): $line"
	fi
done
maxgap=$(for k in $(seq 0 $((NCL - 1))); do kv maxgap_ms "$(tail -n 1 "$T/pos-$k.log")"; done | sort -n | tail -1)
if [ "$survived" = "$NCL" ]; then
	ok "every stream survived fw1's death and return ($NCL, $n1 of them fw1's): every line echoed in order, no reset, longest pause $maxgap ms"
else
	fail "$survived of $NCL streams survived"
fi
if all_hold 15; then
	ok "fw1 complete again with no operator command: in sync, holding $(js "$NS_FW1" 's["buckets"]["held"]') buckets"
else
	fail "fw1 did not come back to holding its buckets"
fi
took=$(ctstat "$NS_FW2" bucket_takeovers); took3=$(ctstat "$P-fw3" bucket_takeovers)
info "flows taken over with buckets: fw2 $took, fw3 $took3; fw1 $(ctstat "$NS_FW1" bucket_takeovers)"
[ $((took + took3)) -ge "$n1" ] || fail "the survivors took over $((took + took3)) flows, fw1 had $n1 streams"
for i in $FWS; do
	info "fw$i: $(ctl "$P-fw$i" status | grep -E '^(mode|flows owned|in sync)' | tr -s ' ' | tr '\n' ' ')"
done
finish "$NAME"
