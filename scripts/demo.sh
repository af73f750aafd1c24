#!/usr/bin/env bash
# make demo: a two-firewall cluster in network namespaces, a live TCP
# connection SNATed through fw1, fw1 fails, fw2 takes over, the connection
# keeps flowing.  Everything is torn down at the end (also on Ctrl-C).
. "$(dirname "$0")/../tests/cluster/lib.sh"
VERBOSE=0
step() { printf '\n\033[1m>> %s\033[0m\n' "$*"; }

step "Checking that the demo's address ranges are free on this machine"
preflight
say "   198.51.100.0/24 (LAN), 203.0.113.0/24 (WAN), 198.18.0.0/24 (sync link): unused here."

step "Building the cluster in network namespaces (prefix $P)"
topology
cat <<'TXT'
     client 198.51.100.10 --- LAN --- fw1 (active, holds VIP .1) --- WAN --- server 203.0.113.10
                                 \--- fw2 (backup) ----------------/
     fw1 and fw2: strict stateful ruleset, nf_conntrack_tcp_loose=0,
     client traffic SNATed to the WAN VIP 203.0.113.1; sync link 198.18.0.1 <-> .2
TXT

step "Starting ctsyncd on both firewalls (fw1 primary, fw2 backup, inject immediate)"
start_daemons || exit 1
say "   both daemons up and in sync"

step "Opening a TCP connection client -> server through fw1 (a line every 20 ms, echoed back)"
bg "$NS_SV" echo "$B/ctsync-testtool" tcp-echo 8080
sleep 0.3
bg "$NS_CL" stream "$B/ctsync-testtool" tcp-stream 203.0.113.10 8080 8 20
client=$BG_PID
sleep 2
say "   fw1's kernel table:"
nsx "$NS_FW1" conntrack -L -p tcp 2>/dev/null | sed 's/^/     /'
say "   fw2's kernel table (already injected by ctsyncd, before any failover):"
nsx "$NS_FW2" conntrack -L -p tcp 2>/dev/null | sed 's/^/     /'

step "ctsyncctl status on both nodes"
say "   --- fw1"; ctl "$NS_FW1" status | sed 's/^/   /'
say "   --- fw2"; ctl "$NS_FW2" status | sed 's/^/   /'

step "fw1 fails: its LAN and WAN links go down; fw2 takes the VIPs and is promoted"
failover "$NS_FW1" "$NS_FW2"
say "   VIPs now on fw2 (gratuitous ARP sent); ctsyncctl promote on fw2, demote on fw1"
sleep 2

step "ctsyncctl status after the failover"
say "   --- fw2"; ctl "$NS_FW2" status | sed 's/^/   /'

step "Waiting for the client to finish its 8-second stream"
wait "$client"
line=$(tail -n 1 "$T/stream.log")
say "   client says: $line"
if [ "$(kv echoed "$line")" = "$(kv sent "$line")" ] && [ "$(kv reset "$line")" = 0 ]; then
	printf '\n\033[1;32m   The connection survived the failover: %s lines sent, all %s echoed in order,\n   longest pause %s ms, no reset.\033[0m\n' \
		"$(kv sent "$line")" "$(kv echoed "$line")" "$(kv maxgap_ms "$line")"
else
	printf '\n\033[1;31m   The connection did not survive.\033[0m\n'
	FAILED=1
fi
step "Tearing everything down"
