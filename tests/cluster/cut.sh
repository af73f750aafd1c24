#!/usr/bin/env bash
# The sync link is cut for 10 s while flows change on both sides (fw1
# creates, deletes and updates its flows; fw2 creates flows of its own),
# then restored: both converge to the same tables and say in sync, with no
# operator command.  Negative control: while the link is cut the tables
# differ and neither is in sync.
. "$(dirname "$0")/lib.sh"
NAME="sync link cut for 10 s while flows change on both sides"
say "== $NAME"
preflight
topology
start_daemons || finish "$NAME"
g1() { nsx "$NS_FW1" "$B/ctsync-ctgen" "$@"; }
g2() { nsx "$NS_FW2" "$B/ctsync-ctgen" "$@"; }
info "fw1: $(g1 create 20000 0)"
ctl "$NS_FW2" wait-sync --timeout 30 >/dev/null || fail "not in sync before the cut"

sync_cut
t0=$SECONDS
info "link cut; fw1: $(g1 create 10000 20000) $(g1 delete 5000 0) $(g1 update 5000 10000); fw2: $(g2 create 3000 100000)"
while [ $((SECONDS - t0)) -lt 10 ]; do sleep 0.5; done
d=$(comm -3 <(ct_table "$NS_FW1") <(ct_table "$NS_FW2") | wc -l)
peer() { ctl "$1" --json status | python3 -c "import json,sys; p=json.load(sys.stdin)['peers'][0]; print('alive' if p['alive'] else 'dead', 'in-sync' if p['in_sync'] else 'not-in-sync')"; }
s1=$(peer "$NS_FW1"); s2=$(peer "$NS_FW2")
if [ "$d" -gt 0 ] && [ "$s1" = "dead not-in-sync" ] && [ "$s2" = "dead not-in-sync" ]; then
	ok "negative control: after 10 s cut the tables differ in $d lines; each sees its peer: $s1"
else
	fail "negative control: tables differ in $d lines, peers: fw1 sees '$s1', fw2 sees '$s2'"
fi
sync_restore
t0=$SECONDS
# a dead peer does not count for "in sync": first see each other again
deadline=$((SECONDS + 10))
while [ $SECONDS -lt $deadline ]; do
	case "$(peer "$NS_FW1") $(peer "$NS_FW2")" in alive*alive*) break ;; esac
	sleep 0.1
done
if ctl "$NS_FW1" wait-sync --timeout 60 >/dev/null && ctl "$NS_FW2" wait-sync --timeout 60 >/dev/null; then
	ct_table "$NS_FW1" > "$T/a"; ct_table "$NS_FW2" > "$T/b"
	if cmp -s "$T/a" "$T/b" && [ "$(wc -l < "$T/a")" = 28000 ]; then
		ok "converged $((SECONDS - t0)) s after the link came back: both hold the same 28000 flows, in sync"
	else
		fail "in sync but the tables differ: fw1 $(wc -l < "$T/a"), fw2 $(wc -l < "$T/b")"
		diff "$T/a" "$T/b" | head -4
	fi
else
	fail "not in sync within 60 s after the link came back"
fi
info "fw2 from fw1: $(ctl "$NS_FW2" stats | grep -E '^peer\.1\.(gaps|nacks_sent|lost|resyncs_asked|bulks_received) ' | tr -s ' ' | tr '\n' ' ')"
finish "$NAME"
