#!/usr/bin/env bash
# Restarts lose nothing and need no operator:
#  - fw2's ctsyncd is SIGKILLed while flows keep changing on fw1 (created,
#    deleted, updated), then started again: fw2 holds every flow of fw1 in
#    its current state, in sync.  Negative control: while it is down, fw2's
#    kernel misses the changes.
#  - fw1's ctsyncd (the primary) is restarted while flows are created: its
#    flows are still owned by it, advertised, and complete on fw2.
. "$(dirname "$0")/lib.sh"
NAME="daemon restarts (SIGKILL of the backup, restart of the primary)"
say "== $NAME"
preflight
topology
start_daemons || finish "$NAME"
gen() { nsx "$NS_FW1" "$B/ctsync-ctgen" "$@"; }
missing() { comm -23 <(ct_table "$NS_FW1") <(ct_table "$NS_FW2") | wc -l; }
extra()   { comm -13 <(ct_table "$NS_FW1") <(ct_table "$NS_FW2") | wc -l; }

info "fw1: $(gen create 20000 0)"
ctl "$NS_FW2" wait-sync --timeout 30 >/dev/null || fail "fw2 not in sync at first"
[ "$(missing)" = 0 ] || fail "fw2 incomplete before the kill"

kill_daemon 2 KILL
info "fw2's ctsyncd SIGKILLed; meanwhile on fw1: $(gen create 10000 20000) $(gen delete 5000 0) $(gen update 5000 5000)"
sleep 0.5
m=$(missing)
if [ "$m" -gt 10000 ]; then
	ok "negative control: while fw2's daemon is down, $m of fw1's flows (new or changed) are not on fw2"
else
	fail "negative control: only $m flows missing on fw2 while its daemon was down"
fi
start_daemon 2
t0=$SECONDS
if ctl "$NS_FW2" wait-sync --timeout 30 >/dev/null; then
	m=$(missing); x=$(extra)
	if [ "$m" = 0 ] && [ "$x" = 0 ]; then
		ok "restarted fw2 complete again after $((SECONDS - t0)) s, no operator command: all $(ct_table "$NS_FW1" | wc -l) flows of fw1, current state, and the copies of the 5000 deleted meanwhile gone"
	else
		fail "restarted fw2 in sync but $m of fw1's flows are missing or stale, $x extra"
	fi
	info "fw2: $(ctl "$NS_FW2" status | grep -E '^flows (held|without)' | tr '\n' ' ')"
else
	fail "restarted fw2 not in sync within 30 s"
fi

# -- the primary restarts
kill_daemon 1 TERM
info "fw1's ctsyncd stopped; meanwhile on fw1: $(gen create 3000 40000)"
start_daemon 1
if ctl "$NS_FW1" wait-sync --timeout 30 >/dev/null && ctl "$NS_FW2" wait-sync --timeout 30 >/dev/null; then
	own=$(ctl "$NS_FW1" --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["flows_local"])')
	held=$(ctl "$NS_FW2" --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["peers"][0]["flows_held"])')
	n=$(ct_table "$NS_FW1" | wc -l)
	if [ "$own" = "$n" ] && [ "$held" = "$n" ] && [ "$(missing)" = 0 ] && [ "$(extra)" = 0 ]; then
		ok "restarted fw1 owns its $own flows, fw2 holds all of them for it"
	else
		fail "after fw1's restart: fw1 owns $own, fw2 holds $held, fw1's kernel has $n"
	fi
else
	fail "not in sync within 30 s after fw1's restart"
fi
finish "$NAME"
