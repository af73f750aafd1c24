# tests/cluster/aa-lib.sh — what the active-active tests share (sourced
# after lib.sh, with topology_shared's cluster): NCL TCP streams from the
# client's addresses (FAMILY=4 or 6), the bucket rule and map by hand for
# the negative control, and the checks.
: "${FAMILY:=4}"
if [ "$FAMILY" = 6 ]; then SERVER=2001:db8:2::10; else SERVER=203.0.113.10; fi
src_of() {            # src_of K: the client address of stream K
	if [ "$FAMILY" = 6 ]; then printf '2001:db8:1::%x' $((0x10 + $1))
	else printf '198.51.100.%d' $((10 + $1)); fi
}
ep() { if [ "$FAMILY" = 6 ]; then printf '[%s]' "$1"; else printf '%s' "$1"; fi; }
NB=64
SEED=0x63747379                 # ctsyncd's default
AA_DAEMONS=0                    # 1: ctsyncd runs (ownership from its dumps)
declare -A VIA
bg "$NS_SV" echo "$B/ctsync-testtool" tcp-echo 8080
bg "$NS_SV" uecho "$B/ctsync-testtool" udp-echo 5300
sleep 0.3

# A UDP flow beside the streams: a datagram every 20 ms from the client's
# first address, echoed by the server.
udp_flow() {          # udp_flow LABEL SECONDS (in the background: UDP_PID)
	bg "$NS_CL" "udp-$1" "$B/ctsync-testtool" udp-ping "$SERVER" 5300 5301 "$2" 20
	UDP_PID=$BG_PID
}
# udp_survived LABEL MAXGAP_MS WHAT: the flow still echoed at its end, no
# pause of MAXGAP_MS, never more echoes than datagrams sent (a datagram
# forwarded twice comes back twice)
udp_survived() {
	wait "$UDP_PID" 2>/dev/null
	local line; line=$(tail -n 1 "$T/udp-$1.log")
	local sent echoed gap ago
	sent=$(kv sent "$line"); echoed=$(kv echoed "$line")
	gap=$(kv maxgap_ms "$line"); ago=$(kv last_ago_ms "$line")
	if [ "$echoed" -gt $((sent * 8 / 10)) ] && [ "$echoed" -le "$sent" ] &&
	   [ "$gap" -lt "$2" ] && [ "$ago" -ge 0 ] && [ "$ago" -lt 500 ]; then
		ok "$3: the UDP flow survived: $echoed of $sent datagrams echoed, longest pause $gap ms"
	else
		fail "$3: the UDP flow: $line"
	fi
}

streams() {           # streams LABEL SECONDS: one TCP stream per client address
	SPIDS=()
	local k
	for k in $(seq 0 $((NCL - 1))); do
		bg "$NS_CL" "$1-$k" "$B/ctsync-testtool" tcp-stream "$SERVER" 8080 "$2" 20 \
			"$(src_of "$k")"
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
		nsx "$P-fw$i" nft -f - <<EOF2
table inet ctsync {
	set held { typeof meta cpu; }
	chain buckets {
		type filter hook forward priority filter - 5; policy accept;
		meta nfproto ipv4 jhash ct original ip saddr . ct original ip daddr mod $NB seed $SEED != @held counter drop
		meta nfproto ipv6 jhash ct original ip6 saddr . ct original ip6 daddr mod $NB seed $SEED != @held counter drop
	}
}
EOF2
	done
	static_buckets 0
}

# the node forwarding stream K: the one whose kernel confirmed its entry
# (without ctsyncd) / that owns it (with)
via_node() {          # via_node K -> node id, or 0
	local i src; src=$(src_of "$1")
	for i in $FWS; do
		if [ "$AA_DAEMONS" = 1 ]; then
			# "tcp 198.51.100.10:40000 -> 203.0.113.10:8080 reply ..."
			ctl "$P-fw$i" dump --local 2>/dev/null |
				awk -v s=" $(ep "$src"):" -v d="-> $(ep "$SERVER"):8080 " \
				    'index($0, s) && index($0, d) { f = 1 } END { exit !f }' &&
				{ echo "$i"; return; }
		elif nsx "$P-fw$i" conntrack -L -f ipv$FAMILY -p tcp -s "$src" --dport 8080 2>/dev/null | grep -q .; then
			echo "$i"; return
		fi
	done
	echo 0
}
# VIA[K] for every stream; ON[N] how many node N forwards
record_via() {
	local k i
	declare -gA ON=()
	for i in $FWS; do ON[$i]=0; done
	for k in $(seq 0 $((NCL - 1))); do
		VIA[$k]=$(via_node "$k")
		ON[${VIA[$k]}]=$(( ${ON[${VIA[$k]}]:-0} + 1 ))
	done
}

links_down() { local l; for l in lan0 wan0 sync0; do nsx "$P-fw$1" ip link set $l down; done; }
links_up() { local l; for l in lan0 wan0 sync0; do nsx "$P-fw$1" ip link set $l up; done; }

# The negative control: the rule and the buckets by hand, no ctsyncd; node
# DEAD's links go down mid-stream and its buckets move to the others as
# ctsyncd would move them.  Its streams must break (the survivors have no
# entry for them), the others' go on.  Everything is put back afterwards.
aa_negative_control() {               # aa_negative_control DEAD
	local dead=$1 k i line broke=0 held=0
	static_table
	streams neg 8
	sleep 2
	record_via
	info "streams per firewall: $(for i in $FWS; do printf 'fw%s %s  ' "$i" "${ON[$i]}"; done)"
	links_down "$dead"
	static_buckets "$dead"
	wait_streams
	for k in $(seq 0 $((NCL - 1))); do
		line=$(tail -n 1 "$T/neg-$k.log")
		if [ "${VIA[$k]}" = "$dead" ]; then
			[ "$(kv echoed "$line")" -lt "$(kv sent "$line")" ] && broke=$((broke + 1))
		elif [ "$(kv echoed "$line")" = "$(kv sent "$line")" ] && [ "$(kv sent "$line")" -gt 0 ]; then
			held=$((held + 1))
		fi
	done
	if [ "${ON[$dead]}" -gt 0 ] && [ "$broke" = "${ON[$dead]}" ] &&
	   [ "$held" = $((NCL - ${ON[$dead]})) ]; then
		ok "negative control: fw$dead's $broke streams broke when its buckets moved without ctsyncd, the other $held went on"
	else
		fail "negative control: fw$dead forwarded ${ON[$dead]} streams, $broke of them broke; $held of the others went on"
	fi
	for i in $FWS; do
		nsx "$P-fw$i" nft delete table inet ctsync
		nsx "$P-fw$i" conntrack -F >/dev/null 2>&1
		links_up "$i"
	done
}

js() { ctl "$1" --json status | python3 -c "import json,sys; s=json.load(sys.stdin); print($2)"; }

all_hold() {          # all_hold SECONDS: every live node in sync and holding
	local deadline=$((SECONDS + $1)) i sum    # buckets, the map split in full
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
held_by() { js "$P-fw$1" 's["buckets"]["held"]'; }
# The nodes but DEAD hold every bucket between them.
survivors_hold() {    # survivors_hold DEAD
	local i left=0
	for i in $FWS; do [ "$i" = "$1" ] || left=$((left + $(held_by "$i"))); done
	[ "$left" = "$NB" ] && ok "the survivors hold all $NB buckets between them" ||
		fail "the survivors hold $left of $NB buckets"
}

# all_hold, said: "all N nodes ... fw1 22 fw2 21 fw3 21"
report_all_hold() {   # report_all_hold SECONDS
	local i
	if all_hold "$1"; then
		ok "all $NFW nodes in sync and holding buckets: $(for i in $FWS; do printf 'fw%s %s  ' "$i" "$(held_by "$i")"; done)"
		return 0
	fi
	fail "the nodes do not hold every bucket between them"
	for i in $FWS; do ctl "$P-fw$i" status | head -8; done
	return 1
}

# Every node forwards a stream (each its buckets'), and drops others'.
all_forward() {
	local i busy=0 dropped
	record_via
	for i in $FWS; do
		[ "${ON[$i]}" -gt 0 ] && busy=$((busy + 1))
		dropped=$(nsx "$P-fw$i" nft list chain inet ctsync buckets |
			sed -n 's/.*counter packets \([0-9]*\).*/\1/p' | awk '{ n += $1 } END { print n }')
		info "fw$i owns ${ON[$i]} streams, dropped ${dropped:-?} packets of the others' buckets"
	done
	[ "$busy" = "$NFW" ] && ok "all $NFW firewalls forward at once" ||
		fail "only $busy of $NFW firewalls forward a stream"
}

# streams_survived LABEL MAXGAP_MS WHAT: every stream LABEL-K echoed every
# line in order, no reset, no pause of MAXGAP_MS
streams_survived() {
	local k line survived=0 maxgap
	for k in $(seq 0 $((NCL - 1))); do
		line=$(tail -n 1 "$T/$1-$k.log")
		if [ "$(kv echoed "$line")" = "$(kv sent "$line")" ] && [ "$(kv sent "$line")" -gt 600 ] &&
		   [ "$(kv inorder "$line")" = 1 ] && [ "$(kv reset "$line")" = 0 ] &&
		   [ "$(kv maxgap_ms "$line")" -lt "$2" ]; then
			survived=$((survived + 1))
		else
			info "stream $k (via fw${VIA[$k]}): $line"
		fi
	done
	maxgap=$(for k in $(seq 0 $((NCL - 1))); do kv maxgap_ms "$(tail -n 1 "$T/$1-$k.log")"; done |
		sort -n | tail -1)
	if [ "$survived" = "$NCL" ]; then
		ok "$3: all $NCL streams survived, every line echoed in order, no reset, longest pause $maxgap ms"
	else
		fail "$3: $survived of $NCL streams survived"
	fi
}

# Every node's held set, sampled every 50 ms for SECONDS into
# $T/sets-LABEL.log (testtool held-sampler): each round reads the sets
# fw1..fwN, then again fwN..fw1; a bucket is held twice when two nodes held
# it in both passes (one that moved from one node to another during the
# round is in two sets in one pass only).  A line per round: its time and
# the buckets held twice ("-": none).
sets_sampler() {      # sets_sampler LABEL SECONDS (in the background: SAMPLER_PID)
	local i ns=()
	for i in $FWS; do ns+=("$P-fw$i"); done
	"$B/ctsync-testtool" held-sampler "$2" 50 "${ns[@]}" > "$T/sets-$1.log" 2>"$T/sets-$1.err" &
	SAMPLER_PID=$!
	PIDS+=($!)
}
# sets_twice LABEL: rounds in which some bucket was held twice
sets_twice() { grep -vc ' -$' "$T/sets-$1.log"; }
sets_rounds() { wc -l < "$T/sets-$1.log"; }

# Duplicated packets at the client (testtool dup-count) for SECONDS.
dup_capture() {       # dup_capture LABEL SECONDS (in the background: CAPTURE_PID)
	bg "$NS_CL" "dup-$1" "$B/ctsync-testtool" dup-count eth0 "$2"
	CAPTURE_PID=$BG_PID
}
dups() { kv duplicates "$(tail -n 1 "$T/dup-$1.log")"; }

# twice_seen LABEL WHAT: a negative control — the capture and the sampler
# both saw packets and buckets twice
twice_seen() {
	info "$2: $(tail -n 1 "$T/dup-$1.log"); rounds with a bucket held twice: $(sets_twice "$1") of $(sets_rounds "$1")"
	if [ "$(dups "$1")" -gt 0 ] && [ "$(sets_twice "$1")" -gt 0 ]; then
		ok "negative control: $2: packets forwarded twice, buckets held twice"
	else
		fail "negative control: $2: nothing forwarded twice, so the test proves nothing"
	fi
}
# never_twice LABEL: no packet forwarded twice, no bucket in two sets
never_twice() {
	info "capture: $(tail -n 1 "$T/dup-$1.log"); sets sampled in $(sets_rounds "$1") rounds"
	[ "$(dups "$1")" = 0 ] && ok "no packet forwarded twice (capture at the client)" ||
		fail "$(dups "$1") packets forwarded twice"
	[ "$(sets_twice "$1")" = 0 ] && ok "no bucket in two nodes' sets in any round" || {
		fail "rounds with a bucket held twice: $(sets_twice "$1")"
		grep -v ' -$' "$T/sets-$1.log" | head -5; }
}

# sync_drop ID on|off: every packet on fw$ID's sync0 dropped (its sync link
# cut while the link stays up), or no longer
sync_drop() {
	if [ "$2" = on ]; then
		nsx "$P-fw$1" nft -f - <<EOF2
table inet ctsync_cut {
	chain in { type filter hook input priority -400; iifname "sync0" drop; }
	chain out { type filter hook output priority -400; oifname "sync0" drop; }
}
EOF2
	else
		nsx "$P-fw$1" nft delete table inet ctsync_cut
	fi
}
quorum_of() { ctl "$P-fw$1" status | sed -n 's/^quorum: *//p'; }

# Every daemon (and corosync) stopped, ctsyncd's table and the flows gone:
# the cluster as before the next scenario.
aa_stop_all() {
	local i
	stop_daemons
	for i in $FWS; do kill_corosync "$i"; done
	for i in $FWS; do
		nsx "$P-fw$i" nft delete table inet ctsync 2>/dev/null
		nsx "$P-fw$i" conntrack -F >/dev/null 2>&1
	done
}
