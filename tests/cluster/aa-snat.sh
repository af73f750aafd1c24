#!/usr/bin/env bash
# Source NAT to the cluster's shared address in active-active (nat.snat;
# docs/OPERATIONS.md, "NAT in active-active").  Three firewalls forward at
# once, each the flows of its buckets, and every one translates the inside
# clients to the shared WAN address 203.0.113.1 / 2001:db8:2::1.  Each round
# NCL clients (one address each) open a TCP connection at the same moment,
# all from the same source port, to one server port; the server answers
# each line with the address and port it saw (ctsync-testtool tcp-whoami).
#
# Negative control first: the translation as one writes it for a single
# firewall (`snat to 203.0.113.1` on every node) — each node keeps the
# clients' free source port, so two nodes give two clients the same public
# address and port: connections fail, the server sees fewer than NCL, the
# daemons count NAT clashes.  Then ctsyncd's own translation, each node in
# its block of ports: every connection echoes its own line, the server
# sees NCL distinct public ports, each in a block, and no clash is counted.
: "${NFW:=3}"
: "${TRANSPORT:=multicast4}"
: "${NCL:=8}"
: "${ROUNDS:=12}"
. "$(dirname "$0")/lib.sh"
NAME="SNAT to the shared address in active-active: each node in its block of ports"
say "== $NAME"
preflight
topology_shared
. "$(dirname "$0")/aa-lib.sh"
bg "$NS_SV" whoami "$B/ctsync-testtool" tcp-whoami 8090
bg "$NS_SV" whoami2 "$B/ctsync-testtool" tcp-whoami 8091
sleep 0.2
export SYNC_EXTRA='mode = "active-active";'
AA_DAEMONS=1
C4=() C6=()
for k in $(seq 0 $((NCL - 1))); do
	C4+=("198.51.100.$((10 + k))")
	C6+=("$(printf '2001:db8:1::%x' $((0x10 + k)))")
done

# rounds LABEL FAMILY SPORT0: ROUNDS bursts, their lines in $T/LABEL.log;
# totals in R_LOST (connections not echoed with their own line) and R_DUP
# (clients given a public address and port another had)
clashes() { local i n=0; for i in $FWS; do n=$((n + $(ctstat "$P-fw$i" nat_clashes))); done; echo "$n"; }
rounds() {
	local label=$1 fam=$2 sport=$3 r line srv clients
	if [ "$fam" = 6 ]; then srv=2001:db8:2::10; clients=("${C6[@]}")
	else srv=203.0.113.10; clients=("${C4[@]}"); fi
	R_LOST=0 R_DUP=0
	: > "$T/$label.log"
	for r in $(seq 1 "$ROUNDS"); do
		line=$(nsx "$NS_CL" "$B/ctsync-testtool" tcp-burst "$srv" 8090 $((sport + r)) 3000 \
			"${clients[@]}")
		echo "$line" >> "$T/$label.log"
		R_LOST=$((R_LOST + NCL - $(kv echoed "$line")))
		R_DUP=$((R_DUP + $(kv dup_public "$line")))
		sleep 0.3
	done
}

# icmp_rounds LABEL ID0: ROUNDS echo requests from every client at once,
# all with one echo id; R_LOST: requests without their reply, and replies
# that reached another client (two nodes kept the id: the server's replies
# are alike, each node hands both to its own client)
icmp_rounds() {
	local r line
	R_LOST=0
	: > "$T/$1.log"
	for r in $(seq 1 "$ROUNDS"); do
		line=$(nsx "$NS_CL" "$B/ctsync-testtool" icmp-burst 203.0.113.10 $(($2 + r)) 2000 "${C4[@]}")
		echo "$line" >> "$T/$1.log"
		R_LOST=$((R_LOST + NCL - $(kv replied "$line") + $(kv wrong "$line")))
		sleep 0.3
	done
}

# all_rounds LABEL SPORT ICMPID WHAT: TCP rounds over IPv4 (LABEL4) and
# IPv6 (LABEL6), echo rounds (LABELicmp); lost4 dup4 lost6 dup6 losti nc
all_rounds() {
	rounds "${1}4" 4 "$2"
	lost4=$R_LOST dup4=$R_DUP
	rounds "${1}6" 6 $(($2 + 1000))
	lost6=$R_LOST dup6=$R_DUP
	icmp_rounds "${1}icmp" "$3"
	losti=$R_LOST
	nc=$(clashes)
	info "$4, $ROUNDS rounds of $NCL: IPv4 $lost4 lost, $dup4 sharing; IPv6 $lost6 lost, $dup6 sharing; echo requests (one id) $losti lost or misdelivered; nat_clashes $nc"
}

# -- negative control: the ruleset's own `oifname "wan0" snat to
# 203.0.113.1` (and to 2001:db8:2::1: lib.sh, ruleset), as for one firewall
for i in $FWS; do start_daemon "$i" primary || finish "$NAME"; done
report_all_hold 15 || finish "$NAME"
all_rounds neg 41000 300 "negative control"
if [ $((lost4 + dup4)) -gt 0 ] && [ $((lost6 + dup6)) -gt 0 ] && [ "$losti" -gt 0 ]; then
	ok "negative control: one range for every node collides (IPv4 $lost4 lost, IPv6 $lost6, echo $losti; $nc clashes)"
else
	fail "negative control: no collision without blocks — the test cannot tell"
fi
aa_stop_all

# -- ctsyncd's translation: blocks of 8,064 ports (1024-65535 in 8)
for i in $FWS; do
	export "EXTRA_CONF$i=nat = { snat = (
	{ address = \"203.0.113.1\"; interface = \"wan0\"; from = [ \"198.51.100.0/24\" ]; },
	{ address = \"2001:db8:2::1\"; interface = \"wan0\"; } ); };"
done
for i in $FWS; do start_daemon "$i" primary || finish "$NAME"; done
report_all_hold 15 || finish "$NAME"
rule=$(nsx "$NS_FW2" nft list chain inet ctsync nat_out | grep -c 'snat ip to 203.0.113.1:9088-17151')
[ "$rule" = 2 ] && ok "fw2 translates into its block, 9088-17151 (TCP/UDP and echo ids)" ||
	fail "fw2's nat_out chain: $(nsx "$NS_FW2" nft list chain inet ctsync nat_out)"
ctl "$NS_FW2" status | grep -q '^nat: .*203.0.113.1.*9088-17151' &&
	ok "status names the address and the block" ||
	fail "status: $(ctl "$NS_FW2" status | grep -i nat)"
all_rounds pos 43000 400 "with blocks"
[ "$losti" = 0 ] && ok "echo ids too: all $((ROUNDS * NCL)) echo requests with one id answered, each to its own client" ||
	fail "echo requests with one id: $losti lost or misdelivered"
if [ $((lost4 + dup4 + lost6 + dup6 + nc)) = 0 ]; then
	ok "with blocks: all $((2 * ROUNDS * NCL)) connections echoed their own line, no two of a round given one public port, no clash"
else
	fail "with blocks: IPv4 $lost4 lost, $dup4 sharing; IPv6 $lost6 lost, $dup6 sharing; $nc clashes"
fi
# where the server saw them: every port in the block of fw1, fw2 or fw3
ports=$(cat "$T/pos4.log" "$T/pos6.log" | grep -o 'ports=[0-9,]*' | cut -d= -f2 | tr ',' ' ')
out=0 n=0
for p in $ports; do
	n=$((n + 1))
	{ [ "$p" -ge 1024 ] && [ "$p" -le $((1024 + 3 * 8064 - 1)) ]; } || out=$((out + 1))
done
if [ "$n" = $((2 * ROUNDS * NCL)) ] && [ "$out" = 0 ]; then
	ok "all $n public ports in the three nodes' blocks (1024-25215)"
else
	fail "public ports: $n seen, $out outside the blocks"
fi

# the first reply racing the record: with an input chain that accepts what
# is addressed to the shared address (the permissive case), a node whose
# kernel lacks the flow yet would answer the server's SYN-ACK with a reset;
# nat_guard drops it instead (the negative control, without it, is last)
for i in $FWS; do
	nsx "$P-fw$i" nft insert rule inet filter input ip daddr 203.0.113.1 accept
	nsx "$P-fw$i" nft insert rule inet filter input ip6 daddr 2001:db8:2::1 accept
done
guarded() {           # packets nat_guard dropped on every node
	local i n=0 c
	for i in $FWS; do
		c=$(nsx "$P-fw$i" nft list chain inet ctsync nat_guard 2>/dev/null |
			awk '/packets/ { for (k = 1; k < NF; k++) if ($k == "packets") s += $(k + 1) } END { print s + 0 }')
		n=$((n + c))
	done
	echo "$n"
}
g0=$(guarded)
rounds race4 4 48000
lostr=$R_LOST
rounds race6 6 48500
lostr=$((lostr + R_LOST))
g1=$(guarded)
[ "$lostr" = 0 ] && ok "permissive input: every connection through ($((g1 - g0)) early replies dropped by nat_guard)" ||
	fail "permissive input, with nat_guard: $lostr connections lost"

# port forwards (DNAT) need no block: outside clients, one source port, to
# 203.0.113.1:2222 forwarded to the inside server 198.51.100.10:8092
bg "$NS_CL" whoami3 "$B/ctsync-testtool" tcp-whoami 8092
OUT=()
for k in $(seq 0 $((NCL - 1))); do
	nsx "$NS_SV" ip addr add "203.0.113.$((20 + k))/24" dev eth0
	OUT+=("203.0.113.$((20 + k))")
done
for i in $FWS; do
	nsx "$P-fw$i" nft -f - <<'EOF'
table ip pf {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		iifname "wan0" ip daddr 203.0.113.1 tcp dport 2222 dnat to 198.51.100.10:8092
	}
}
add rule inet filter forward iifname "wan0" oifname "lan0" ct status dnat accept
EOF
done
lostd=0
for r in $(seq 1 6); do
	line=$(nsx "$NS_SV" "$B/ctsync-testtool" tcp-burst 203.0.113.1 2222 47000 3000 "${OUT[@]}")
	lostd=$((lostd + NCL - $(kv echoed "$line")))
	[ "$(kv publics "$line")" = "$NCL" ] || lostd=$((lostd + 1))
	sleep 0.3
done
nc=$(clashes)
[ $((lostd + nc)) = 0 ] && ok "port forward alongside: 6 rounds of $NCL outside clients on one source port, all through, each seen from its own address, no clash" ||
	fail "port forward: $lostd lost or not distinct, $nc clashes"

# -- fw1 dies mid-stream and comes back: the connections it translated go
# on through the survivors with the same public ports (their mapping is in
# every kernel), and new ones after its return take none of theirs
pub_ports() {         # the public ports of the streams, as the server sees them
	nsx "$NS_SV" ss -Htn state established '( sport = :8090 )' |
		awk '{ n = split($NF, a, ":"); print a[n] }' | sort -n | tr '\n' ' '
}
SPIDS=()
for k in $(seq 0 $((NCL - 1))); do
	bg "$NS_CL" "life-$k" "$B/ctsync-testtool" tcp-stream 203.0.113.10 8090 16 20 "${C4[$k]}"
	SPIDS+=("$BG_PID")
done
sleep 2.5
before=$(pub_ports)
via1=0
for p in $before; do [ "$p" -ge 1024 ] && [ "$p" -le 9087 ] && via1=$((via1 + 1)); done
kill_daemon 1 KILL
links_down 1
info "fw1 died (daemon SIGKILLed, every link down) with $via1 of the $NCL streams (ports $before)"
sleep 4
survivors_hold 1
after=$(pub_ports)
if [ "$before" = "$after" ] && [ "$(wc -w <<< "$before")" = "$NCL" ] && [ "$via1" -gt 0 ]; then
	ok "the $NCL streams keep their public ports through the survivors ($via1 in fw1's block)"
else
	fail "public ports before fw1's death: $before; after: $after ($via1 in fw1's block)"
fi
nsx "$NS_FW1" ip link set sync0 up
start_daemon 1 primary
sleep 0.5
nsx "$NS_FW1" ip link set lan0 up
nsx "$NS_FW1" ip link set wan0 up
all_hold 15 || fail "fw1 did not come back to holding its buckets"
ROUNDS=6 rounds back4 4 45000
reused=0
for p in $(grep -o 'ports=[0-9,]*' "$T/back4.log" | cut -d= -f2 | tr ',' ' '); do
	case " $before " in *" $p "*) reused=$((reused + 1));; esac
done
if [ $((R_LOST + R_DUP + reused)) = 0 ]; then
	ok "after fw1's return: $((6 * NCL)) new connections to the streams' server, none lost, none given a live stream's port"
else
	fail "after fw1's return: $R_LOST lost, $R_DUP sharing, $reused on a live stream's port"
fi
for p in "${SPIDS[@]}"; do wait "$p"; done
streams_survived life 2000 "fw1's death and return mid-stream, SNATed to the shared address"
nc=$(clashes)
[ "$nc" = 0 ] && ok "no NAT clash counted" || fail "$nc NAT clashes"

# -- a block exhausted: 3 ports a node (20000-20011 in 4 blocks); five
# connections from one client to one server port all cross the node that
# holds their bucket: three get through, the block is full there, said in
# its stats, log, status and metrics; the other nodes are unaffected
aa_stop_all
for i in $FWS; do
	export "EXTRA_CONF$i=nat = { snat = ( { address = \"203.0.113.1\"; interface = \"wan0\"; } );
	ports = \"20000-20011\"; blocks = 4; };"
done
for i in $FWS; do start_daemon "$i" primary || finish "$NAME"; done
report_all_hold 15 || finish "$NAME"
bg "$NS_CL" many "$B/ctsync-testtool" tcp-many 203.0.113.10 8090 5 "$T/many.go" 30
MANY_PID=$BG_PID
for _ in $(seq 1 200); do grep -q '^phase=1' "$T/many.log" && break; sleep 0.1; done
full=0
for i in $FWS; do
	[ "$(ctstat "$P-fw$i" nat_block_full)" -ge 1 ] && full=$i
done
line=$(head -n 1 "$T/many.log")
if [ "$(kv connected "$line")" = 3 ] && [ "$full" != 0 ]; then
	ok "five connections through fw$full's block of 3 ports: 3 through, the block full ($line)"
else
	fail "exhaustion: $line; nat_block_full $(for i in $FWS; do printf 'fw%s %s ' "$i" "$(ctstat "$P-fw$i" nat_block_full)"; done)"
fi
if [ "$full" != 0 ]; then
	grep -q 'nat: our block of 3 ports is full towards tcp 203.0.113.10:8090' "$T/ctsyncd-fw$full.log" &&
		ok "fw$full logs it: $(grep -m1 -o 'nat: our block.*8090' "$T/ctsyncd-fw$full.log")" ||
		fail "fw$full did not log the full block"
	ctl "$P-fw$full" status | grep -q "node $full .*busiest destination 3 of 3 (FULL" &&
		ok "fw$full's status shows its block full" ||
		fail "status: $(ctl "$P-fw$full" status | grep -A4 '^nat:')"
	ctl "$P-fw$full" metrics | grep -q "^ctsync_nat_block_busiest{node=\"$full\"} 3" &&
		ctl "$P-fw$full" metrics | grep -q '^ctsync_nat_block_full_total [1-9]' &&
		ok "and its metrics (ctsync_nat_block_busiest, ctsync_nat_block_full_total)" ||
		fail "metrics: $(ctl "$P-fw$full" metrics | grep nat_block)"
	others=0
	for i in $FWS; do [ "$i" = "$full" ] || others=$((others + $(ctstat "$P-fw$i" nat_block_full))); done
	[ "$others" = 0 ] && ok "no other node's block is full" || fail "other nodes full: $others"
	# every other client, one connection each to that server port: through
	# another node it goes; one that fails must be the full node's, which a
	# server port of its own (another destination) then lets through
	flo=$((20000 + (full - 1) * 3)) through=0 refused=0
	for k in $(seq 1 $((NCL - 1))); do
		line=$(nsx "$NS_CL" "$B/ctsync-testtool" tcp-burst 203.0.113.10 8090 46000 2500 "${C4[$k]}")
		p=$(kv ports "$line")
		if [ "$(kv echoed "$line")" = 1 ] && { [ "$p" -lt "$flo" ] || [ "$p" -gt $((flo + 2)) ]; }; then
			through=$((through + 1))
			continue
		fi
		line=$(nsx "$NS_CL" "$B/ctsync-testtool" tcp-burst 203.0.113.10 8091 46001 2500 "${C4[$k]}")
		p=$(kv ports "$line")
		if [ "$(kv echoed "$line")" = 1 ] && [ "$p" -ge "$flo" ] && [ "$p" -le $((flo + 2)) ]; then
			refused=$((refused + 1))
		else
			fail "client ${C4[$k]}: refused towards 8090, and towards 8091: $line"
		fi
	done
	info "the other $((NCL - 1)) clients: $through through other nodes, $refused through fw$full (refused there, through towards another port)"
	[ "$through" -ge 1 ] && ok "the other nodes are unaffected: $through connections through them" ||
		fail "no connection through another node"
fi
touch "$T/many.go"
wait "$MANY_PID"

# -- nat_guard's negative control: without it, the early replies that
# reach a node without the flow are answered with resets (permissive input)
aa_stop_all
for i in $FWS; do
	export "EXTRA_CONF$i=nat = { snat = ( { address = \"203.0.113.1\"; interface = \"wan0\"; },
	{ address = \"2001:db8:2::1\"; interface = \"wan0\"; } ); };"
done
for i in $FWS; do start_daemon "$i" primary || finish "$NAME"; done
report_all_hold 15 || finish "$NAME"
for i in $FWS; do nsx "$P-fw$i" nft flush chain inet ctsync nat_guard; done
rounds raceneg4 4 49000
lostn=$R_LOST
rounds raceneg6 6 49500
lostn=$((lostn + R_LOST))
[ "$lostn" -gt 0 ] && ok "negative control: without nat_guard, $lostn of $((2 * ROUNDS * NCL)) connections lost to a node's reset" ||
	fail "without nat_guard no connection was lost: the guard's test cannot tell"
finish "$NAME"
