#!/usr/bin/env bash
# Bad input: `ctsyncd --check` reports every mistake of a config as
# FILE:LINE and exits 1; 1000 hostile datagrams sent to the sync port leave
# the daemon running, are counted, and sync with the honest peer goes on.
. "$(dirname "$0")/lib.sh"
NAME="bad config and hostile datagrams"
say "== $NAME"
preflight

# -- config with three mistakes
conf=$TOP/tests/cluster/data/three-mistakes.conf
out=$("$B/ctsyncd" --check --config "$conf" 2>&1); rc=$?
printf '%s\n' "$out" | sed 's/^/    /'
n=$(printf '%s\n' "$out" | grep -c "^$conf:[0-9]*: ")
if [ "$rc" = 1 ] && [ "$n" = 3 ] &&
   printf '%s\n' "$out" | grep -q "^$conf:4: " &&
   printf '%s\n' "$out" | grep -q "^$conf:8: " &&
   printf '%s\n' "$out" | grep -q "^$conf:12: "; then
	ok "three FILE:LINE errors, exit 1"
else
	fail "expected three errors at lines 4, 8, 12 and exit 1 (got $n, exit $rc)"
fi
"$B/ctsyncd" --check --config /nonexistent/ctsyncd.conf >/dev/null 2>&1
[ $? = 1 ] && ok "missing config file: exit 1" || fail "missing config file not reported"

# -- hostile datagrams
topology
start_daemons || finish "$NAME"
before=$(ctl "$NS_FW2" stats | awk '$1 == "rx_frames" { print $2 }')
nsx "$NS_FW1" "$B/ctsync-testtool" udp-garbage 198.18.0.2 3780 1000 1 | sed 's/^/    /'
sleep 0.5
if kill -0 "${DAEMON_PID[1]}" 2>/dev/null; then ok "ctsyncd on fw2 still running"; else fail "ctsyncd on fw2 died"; fi
stats=$(ctl "$NS_FW2" stats)
get() { printf '%s\n' "$stats" | awk -v k="$1" '$1 == k { print $2 }'; }
after=$(get rx_frames)
# the sealing layer refuses what is not sealed with our key; what passes it
# is checked again (malformed, unknown node)
sealed=$(( $(get rx_bad_tag) + $(get rx_unknown_key) + $(get rx_unsealed) + $(get rx_short) + $(get rx_no_key_for_node) ))
dropped=$(( sealed + $(get rx_malformed) + $(get rx_unknown_node) + $(get rx_bad_records) ))
info "refused by the sealing layer: bad tag $(get rx_bad_tag), unknown key $(get rx_unknown_key), not sealed $(get rx_unsealed), truncated $(get rx_short), no key for node $(get rx_no_key_for_node)"
[ "$dropped" -ge 1000 ] && ok "every hostile datagram dropped and counted" ||
	fail "only $dropped of 1000 hostile datagrams counted"

# sync still works: a new connection through fw1 reaches fw2's table
bg "$NS_SV" echo "$B/ctsync-testtool" tcp-echo 8080
sleep 0.3
bg "$NS_CL" stream "$B/ctsync-testtool" tcp-stream 203.0.113.10 8080 2 50
sleep 1
if wait_in_sync "$NS_FW2" 5 && [ "$(ctl "$NS_FW2" dump --peer 1 | grep -c 'tcp 198.51.100.10')" -ge 1 ]; then
	ok "fw2 still in sync with fw1 and holds the new connection"
else
	fail "sync with the honest peer stopped"
fi

# -- two nodes in active-active over UDP cannot tell a dead peer from a cut
# sync link: ctsyncd says so at start-up and in status
stop_daemons
export SYNC_EXTRA='mode = "active-active";' INJECT=immediate
start_daemon 1 primary && start_daemon 2 primary || finish "$NAME"
sleep 1
q=$(ctl "$NS_FW1" status | sed -n 's/^quorum: *//p')
info "two nodes, active-active over UDP: quorum: $q"
if printf '%s' "$q" | grep -q "^none: a cut of the sync link alone makes both sides forward" &&
   grep -q "quorum: none (buckets.quorum = \"off\", as with 2 nodes): a cut of the sync link" \
	"$T/ctsyncd-fw1.log"; then
	ok "two nodes without a witness: the warning in status and in the log"
else
	fail "two nodes without a witness: no warning"
fi
unset SYNC_EXTRA
finish "$NAME"
