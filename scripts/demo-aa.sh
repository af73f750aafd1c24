#!/usr/bin/env bash
# make demo-aa: three firewalls forwarding at once (active-active) in
# network namespaces, six TCP connections split among them by hash bucket;
# one firewall dies and comes back, every connection keeps flowing.
# Everything is torn down at the end (also on Ctrl-C).
NFW=3
TRANSPORT=multicast4
NCL=6
. "$(dirname "$0")/../tests/cluster/lib.sh"
VERBOSE=0
step() { printf '\n\033[1m>> %s\033[0m\n' "$*"; }

step "Checking that the demo's address ranges are free on this machine"
preflight
say "   198.51.100.0/24 (LAN), 203.0.113.0/24 (WAN), 198.18.0.0/24 (sync link): unused here."

step "Building the cluster in network namespaces (prefix $P)"
topology_shared
. "$(dirname "$0")/../tests/cluster/aa-lib.sh"
AA_DAEMONS=1
cat <<'TXT'
     clients 198.51.100.10-15 --- LAN ---+--- fw1 ---+--- WAN --- server 203.0.113.10
                                         +--- fw2 ---+
                                         +--- fw3 ---+
     Every firewall is the gateway (.1 on both sides, one MAC): every frame
     reaches all three, and each forwards only the flows of its buckets.
     Strict stateful ruleset, nf_conntrack_tcp_loose=0, SNAT to 203.0.113.1;
     sync over UDP multicast on 198.18.0.0/24.
TXT

step "Starting ctsyncd on the three firewalls (sync.mode = \"active-active\")"
export SYNC_EXTRA='mode = "active-active";'
for i in $FWS; do start_daemon "$i" primary || exit 1; done
report_all_hold 15 || exit 1

step "ctsyncctl status on fw1: the bucket map"
ctl "$NS_FW1" status | sed 's/^/   /'

step "Opening six TCP connections, one from each client address (a line every 20 ms, echoed)"
streams stream 14
sleep 2
all_forward

step "fw1 dies (daemon killed, every link down)"
kill_daemon 1 KILL
links_down 1
sleep 2
say "   --- fw2"; ctl "$NS_FW2" status | grep -E '^(mode|buckets|  )' | sed 's/^/   /'

step "fw1 comes back: daemon first (it forwards nothing until in sync), then its links"
nsx "$NS_FW1" ip link set sync0 up
start_daemon 1 primary
sleep 0.5
nsx "$NS_FW1" ip link set lan0 up
nsx "$NS_FW1" ip link set wan0 up
all_hold 15 && say "   fw1 holds its $(held_by 1) buckets again"

step "Waiting for the clients to finish their 14-second streams"
wait_streams
streams_survived stream 2000 "fw1's death and return"

step "Tearing everything down"
