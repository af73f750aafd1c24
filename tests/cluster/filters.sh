#!/usr/bin/env bash
# The filters operators use (filter.tcp_states, min_age, zones, strip),
# each with its negative control: the same traffic without the filter
# reaches fw2.  What a filter keeps back stays off fw2; what it lets
# through still survives failover.  One topology for all four.
. "$(dirname "$0")/lib.sh"
NAME="filters: TCP state, age, zone, attributes not carried"
say "== $NAME"
preflight
topology
SERVER=203.0.113.10
bg "$NS_SV" echo "$B/ctsync-testtool" tcp-echo 8080
bg "$NS_SV" echo2 "$B/ctsync-testtool" tcp-echo 8081
bg "$NS_SV" uecho "$B/ctsync-testtool" udp-echo 5353
# the server drops SYNs to port 9: such a connection stays in SYN_SENT
nsx "$NS_SV" nft -f - <<EOF
table inet tst {
	chain in {
		type filter hook input priority 0;
		tcp dport 9 drop
	}
}
EOF
# both firewalls: port 8081 in conntrack zone 5; a mark and a label on 8080
for ns in "$NS_FW1" "$NS_FW2"; do
	nsx "$ns" nft -f - <<EOF
table inet tst {
	chain pre {
		type filter hook prerouting priority raw;
		tcp dport 8081 ct zone set 5
		tcp sport 8081 ct zone set 5
	}
	chain fw {
		type filter hook forward priority 0;
		tcp dport 8080 ct state new ct mark set 0x42 ct label set 3
	}
}
EOF
done
sleep 0.3

# on NS PATTERN TENTHS: a flow matching PATTERN is in NS's table within
# TENTHS tenths of a second
on() {
	local n
	for n in $(seq "$3"); do
		ct_table "$1" | grep -q -- "$2" && return 0
		sleep 0.1
	done
	return 1
}

# ---- state: only TCP flows that reached ESTABLISHED (and beyond)
SYN=">$SERVER:9 "
phase_state() {       # phase_state WITH_FILTER
	local filt=
	[ "$1" = 1 ] && filt='tcp_states = [ "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE" ];'
	FILTER_EXTRA=$filt start_daemons || return 1
	bg "$NS_CL" syn timeout 5 bash -c "exec 3<>/dev/tcp/$SERVER/9"
	on "$NS_FW1" "$SYN" 30 || { fail "no SYN_SENT flow on fw1"; return 1; }
	if [ "$1" = 0 ]; then
		on "$NS_FW2" "$SYN" 20 && ok "control: without the filter the SYN_SENT flow reaches fw2" ||
			fail "control: the SYN_SENT flow did not reach fw2 without the filter"
		return 0
	fi
	bg "$NS_CL" st "$B/ctsync-testtool" tcp-stream "$SERVER" 8080 8 20
	local client=$BG_PID
	on "$NS_FW2" ">$SERVER:8080 .*tcp=3/" 30 && ok "state: the ESTABLISHED stream is on fw2" ||
		fail "state: the ESTABLISHED stream is not on fw2"
	on "$NS_FW2" "$SYN" 20 && fail "state: the SYN_SENT flow reached fw2" ||
		ok "state: the SYN_SENT flow stayed off fw2 (2 s)"
	local s
	s=$(ctl "$NS_FW1" status | grep '^filter:')
	info "fw1 $s"
	local waiting
	waiting=$(printf '%s\n' "$s" | sed -n 's/.*; \([0-9]*\) waiting,.*/\1/p')
	case $s in *"TCP once ESTABLISHED/"*) ;; *) waiting=0 ;; esac
	[ "${waiting:-0}" -ge 1 ] && ok "state: status shows the filter and $waiting flow(s) held back" ||
		fail "state: status does not show the filter or the held flow"
	local js
	js=$(ctl "$NS_FW1" --json status | python3 -c 'import json,sys; f=json.load(sys.stdin)["filter"]; print(f["tcp_states"][0], f["waiting"])' 2>&1)
	[ "${js%% *}" = ESTABLISHED ] && [ "${js##* }" -ge 1 ] && ok "state: status --json: filter $js" ||
		fail "state: status --json lacks the filter: $js"
	failover "$NS_FW1" "$NS_FW2"
	wait "$client"
	stream_survived "$(tail -n 1 "$T/st.log")" 300 "failover with the state filter"
}

# ---- age: a flow is synced once it has lived 3 s
phase_age() {         # phase_age WITH_FILTER
	local filt=
	[ "$1" = 1 ] && filt='min_age = 3;'
	FILTER_EXTRA=$filt start_daemons || return 1
	# a long flow (9 s) and a short one: one exchange, ended on fw1 at 1 s
	bg "$NS_CL" up1 "$B/ctsync-testtool" udp-ping "$SERVER" 5353 40001 9 100
	local client=$BG_PID
	bg "$NS_CL" up2 "$B/ctsync-testtool" udp-ping "$SERVER" 5353 40002 1 2000
	on "$NS_FW1" ":40002>$SERVER:5353 " 10 || { fail "no UDP flow on fw1"; return 1; }
	if [ "$1" = 0 ]; then
		on "$NS_FW2" ":40001>$SERVER:5353 " 10 && ok "control: without the filter the UDP flow is on fw2 within 1 s" ||
			fail "control: the UDP flow is not on fw2 within 1 s without the filter"
		kill "$client" 2>/dev/null
		return 0
	fi
	sleep 0.8
	nsx "$NS_FW1" conntrack -D -p udp --orig-port-src 40002 >/dev/null 2>&1 ||
		fail "age: could not end the short flow on fw1"
	on "$NS_FW2" ":4000[12]>$SERVER:5353 " 10 && fail "age: a flow younger than 3 s is on fw2" ||
		ok "age: nothing younger than 3 s on fw2"
	on "$NS_FW2" ":40001>$SERVER:5353 " 30 && ok "age: the 3 s old flow is on fw2" ||
		fail "age: the flow older than 3 s did not reach fw2"
	on "$NS_FW2" ":40002>$SERVER:5353 " 10 && fail "age: the short flow reached fw2" ||
		ok "age: the short flow never reached fw2"
	local unsent
	unsent=$(ctstat "$NS_FW1" filter_unsent)
	[ "${unsent:-0}" -ge 1 ] && ok "age: filter_unsent = $unsent" || fail "age: filter_unsent = ${unsent:-?}"
	failover "$NS_FW1" "$NS_FW2"
	wait "$client"
	info "udp-ping: $(tail -n 1 "$T/up1.log")"
}

# ---- zones: zone 5 not synced
phase_zone() {        # phase_zone WITH_FILTER
	local filt=
	[ "$1" = 1 ] && filt='zones = { exclude = [ 5 ]; };'
	FILTER_EXTRA=$filt start_daemons || return 1
	bg "$NS_CL" z0 "$B/ctsync-testtool" tcp-stream "$SERVER" 8080 4 50
	bg "$NS_CL" z5 "$B/ctsync-testtool" tcp-stream "$SERVER" 8081 4 50
	on "$NS_FW1" ">$SERVER:8081 .*zone=5 " 30 || { fail "no zone 5 flow on fw1"; return 1; }
	on "$NS_FW2" ">$SERVER:8080 .*zone=0 " 20 || fail "zone: the zone 0 flow is not on fw2"
	if [ "$1" = 0 ]; then
		on "$NS_FW2" ">$SERVER:8081 .*zone=5 " 20 && ok "control: without the filter the zone 5 flow is on fw2" ||
			fail "control: the zone 5 flow is not on fw2 without the filter"
	else
		on "$NS_FW2" ">$SERVER:8081 " 20 && fail "zone: the zone 5 flow reached fw2" ||
			ok "zone: zone 0 on fw2, zone 5 not"
	fi
}

# ---- strip: neither mark nor labels carried
phase_strip() {       # phase_strip WITH_FILTER
	local filt=
	[ "$1" = 1 ] && filt='strip = [ "mark", "labels" ];'
	FILTER_EXTRA=$filt start_daemons || return 1
	bg "$NS_CL" m "$B/ctsync-testtool" tcp-stream "$SERVER" 8080 4 50
	on "$NS_FW1" ">$SERVER:8080 .*mark=66 .*labels=3 " 30 || { fail "no marked, labelled flow on fw1"; return 1; }
	on "$NS_FW2" ">$SERVER:8080 " 20 || { fail "strip: the flow is not on fw2"; return 1; }
	local line
	line=$(ct_table "$NS_FW2" | grep -- ">$SERVER:8080 ")
	info "fw2: $line"
	if [ "$1" = 0 ]; then
		case $line in *"mark=66 "*"labels=3 "*) ok "control: without the filter fw2 has the mark and the label" ;;
		*) fail "control: fw2 lacks the mark or the label without the filter" ;; esac
	else
		case $line in *"mark=0 "*"labels=- "*) ok "strip: fw2 has neither the mark nor the label" ;;
		*) fail "strip: fw2 has the mark or the label" ;; esac
	fi
}

for phase in state age zone strip; do
	for with in 0 1; do
		"phase_$phase" "$with"
		reset_cluster
	done
done
finish "$NAME"
