#!/usr/bin/env bash
# Two primaries at once (a cluster manager promoted fw2 and never demoted
# fw1, or a split brain healing): ownership settles on the newer promotion
# while both kernels keep changing the same flows, the tables end equal,
# and the conflict is counted and shown.
#
# 2,000 synthetic flows on fw1; fw2 is promoted; then every flow is updated
# on fw1 and on fw2 in turn, five rounds.  Before claims and terms, each
# primary adopted the flow back from the other on every update (this test
# on the daemon of a97b398, the commit before them: adoptions 2000 -> 10000
# on each node over rounds 2-5).  Checked here on real kernels: after
# the first round nobody adopts any more, fw2 owns every flow on both nodes,
# fw1 says it is superseded by fw2 and counts the conflicts, both kernels
# hold the same flows, and demoting fw1 clears it.  Negative control: the
# same updates without ctsyncd leave the tables different.
. "$(dirname "$0")/lib.sh"
NAME="two primaries: ownership settles on the newer promotion, tables equal, conflicts counted"
say "== $NAME"
preflight
topology
N=2000

js() { ctl "$1" --json status | python3 -c "import json,sys; print(json.load(sys.stdin)$2)"; }

# -- negative control: no daemons, the same flows and updates
info "fw1: $(nsx "$NS_FW1" "$B/ctsync-ctgen" create $N 0)"
info "fw2: $(nsx "$NS_FW2" "$B/ctsync-ctgen" update $N 0 2>&1 | tail -n 1)"
ct_table "$NS_FW1" > "$T/n1"; ct_table "$NS_FW2" > "$T/n2"
if cmp -s "$T/n1" "$T/n2"; then
	fail "negative control: tables equal without ctsyncd"
else
	ok "negative control: without ctsyncd fw2 holds $(wc -l < "$T/n2") of fw1's $(wc -l < "$T/n1") flows"
fi
reset_cluster

# -- with ctsyncd
start_daemons || finish "$NAME"
info "fw1: $(nsx "$NS_FW1" "$B/ctsync-ctgen" create $N 0)"
wait_in_sync "$NS_FW2" 20 || fail "fw2 not in sync after the flows were made"
ctl "$NS_FW2" promote >/dev/null || fail "promote on fw2"
wait_in_sync "$NS_FW1" 10 || fail "fw1 not in sync after fw2's promotion"
for round in 1 2 3 4 5; do
	if [ "$round" = 2 ]; then
		a1=$(ctstat "$NS_FW1" adopted); a2=$(ctstat "$NS_FW2" adopted)
	fi
	nsx "$NS_FW1" "$B/ctsync-ctgen" update $N 0 >/dev/null
	sleep 0.3
	nsx "$NS_FW2" "$B/ctsync-ctgen" update $N 0 >/dev/null
	sleep 0.3
done
wait_in_sync "$NS_FW1" 10 || fail "fw1 not in sync after the updates"
wait_in_sync "$NS_FW2" 10 || fail "fw2 not in sync after the updates"
b1=$(ctstat "$NS_FW1" adopted); b2=$(ctstat "$NS_FW2" adopted)
if [ "$b1" = "$a1" ] && [ "$b2" = "$a2" ]; then
	ok "settled: no adoption after the first round (fw1 $b1, fw2 $b2 in all)"
else
	fail "ownership still moving: adoptions fw1 $a1 -> $b1, fw2 $a2 -> $b2 over rounds 2-5"
fi
own1=$(js "$NS_FW1" '["flows_local"]'); own2=$(js "$NS_FW2" '["flows_local"]')
held1=$(js "$NS_FW1" '["peers"][0]["flows_held"]')
if [ "$own1" = 0 ] && [ "$own2" = "$N" ] && [ "$held1" = "$N" ]; then
	ok "fw2 (promoted last) owns all $N flows, on fw1 too"
else
	fail "owners: fw1 owns $own1, fw2 owns $own2, fw1 holds $held1 of fw2's"
fi
sup=$(js "$NS_FW1" '["superseded_by"]'); conf=$(js "$NS_FW1" '["ownership_conflicts"]')
t1=$(js "$NS_FW1" '["term"]'); t2=$(js "$NS_FW2" '["term"]')
if [ "$sup" = 2 ] && [ "$conf" -ge "$N" ] && [ "$t2" -gt "$t1" ]; then
	ok "fw1 is superseded by fw2 (terms $t1 < $t2), $conf ownership conflicts counted"
else
	fail "fw1: superseded_by=$sup ownership_conflicts=$conf, terms fw1 $t1 fw2 $t2"
fi
ctl "$NS_FW1" status | grep -q '^role: *primary (term [0-9]*) — superseded: node 2' ||
	fail "fw1's status does not say it is superseded: $(ctl "$NS_FW1" status | grep '^role')"
tables_equal "$N"
ctl "$NS_FW1" demote >/dev/null || fail "demote on fw1"
sleep 0.3
[ "$(js "$NS_FW1" '["superseded_by"]')" = 0 ] && ok "fw1 demoted: no longer superseded" ||
	fail "fw1 still superseded after demote"
say "  fw1: $(ctl "$NS_FW1" status | grep -E '^(role|ownership|in sync)' | tr '\n' ' ')"
finish "$NAME"
