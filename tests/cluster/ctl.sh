#!/usr/bin/env bash
# ctsyncctl: exit status 0 / 1 (daemon reports failure) / 2 (usage) / 3 (no
# daemon), --json output that parses, and every command answered.
. "$(dirname "$0")/lib.sh"
NAME="ctsyncctl commands, exit codes and JSON"
say "== $NAME"
preflight
topology
start_daemons || finish "$NAME"

expect() {        # expect CODE DESCRIPTION CMD...
	local want=$1 what=$2; shift 2
	"$@" >"$T/out" 2>&1; local rc=$?
	if [ "$rc" = "$want" ]; then ok "$what: exit $rc"; else
		fail "$what: exit $rc, want $want ($(head -c 200 "$T/out"))"; fi
}
C="$B/ctsyncctl"
S1=$T/fw1.sock
expect 3 "no daemon at the socket" nsx "$NS_FW1" "$C" --socket "$T/none.sock" status
expect 2 "unknown command" nsx "$NS_FW1" "$C" --socket "$S1" frobnicate
expect 2 "no command" nsx "$NS_FW1" "$C" --socket "$S1"
expect 2 "stray argument" nsx "$NS_FW1" "$C" --socket "$S1" status now
expect 2 "bad --peer" nsx "$NS_FW1" "$C" --socket "$S1" dump --peer x
expect 2 "--local with status" nsx "$NS_FW1" "$C" --socket "$S1" status --local
expect 1 "dump of an unknown peer" nsx "$NS_FW1" "$C" --socket "$S1" dump --peer 99
grep -q "no such peer" "$T/out" && ok "the daemon's message is printed" || fail "no message"
for cmd in status stats "dump" "dump --local" "dump --peer 2" commit resync demote promote; do
	# shellcheck disable=SC2086
	expect 0 "$cmd" nsx "$NS_FW1" "$C" --socket "$S1" $cmd
	# shellcheck disable=SC2086
	if nsx "$NS_FW1" "$C" --socket "$S1" --json $cmd | python3 -m json.tool >/dev/null 2>&1; then
		ok "$cmd --json parses"
	else
		fail "$cmd --json is not JSON"
	fi
done
st=$(ctl "$NS_FW2" --json status)
printf '%s' "$st" | python3 -c '
import json, sys
s = json.load(sys.stdin)
assert s["node_id"] == 2 and s["role"] == "backup", s
p = s["peers"][0]
assert p["id"] == 1 and p["address"] == "198.18.0.1" and p["alive"] is True, p
for k in ("last_heard_ms", "flows_held", "lag_frames", "in_sync"):
    assert k in p, k
' && ok "status --json carries role, peers, liveness, flows, lag, in_sync" ||
	fail "status --json content: $st"
finish "$NAME"
