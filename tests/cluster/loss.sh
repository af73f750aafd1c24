#!/usr/bin/env bash
# Nothing lost under loss: 100,000 flows created on fw1 at full speed reach
# fw2's kernel table completely with 1 %, 10 % and 30 % of the sync
# datagrams dropped (in both directions: data, NACKs, retransmissions), and
# both nodes say in sync.  The loss is proven real: the drop rule's counter
# and fw2's gap counter are non-zero.
#   FLOWS (default 100000), LOSSES (default "1 10 30")
. "$(dirname "$0")/lib.sh"
N=${FLOWS:-100000}
NAME="$N flows under sync-link loss (${LOSSES:-1 10 30} %)"
say "== $NAME"
preflight
topology
start_daemons || finish "$NAME"
seed=0
for loss in ${LOSSES:-1 10 30}; do
	sync_loss "$NS_FW1" "$loss"
	sync_loss "$NS_FW2" "$loss"
	gaps0=$(ctstat "$NS_FW2" peer.1.gaps)
	t0=$SECONDS
	info "$loss %: $(nsx "$NS_FW1" "$B/ctsync-ctgen" create "$N" "$seed")"
	ok1=0
	if ctl "$NS_FW2" wait-sync --timeout 120 >/dev/null &&
	   ctl "$NS_FW1" wait-sync --timeout 30 >/dev/null; then ok1=1; fi
	dropped=$(( $(sync_loss_dropped "$NS_FW1") + $(sync_loss_dropped "$NS_FW2") ))
	sync_loss "$NS_FW1" 0; sync_loss "$NS_FW2" 0
	ct_table "$NS_FW1" > "$T/a"; ct_table "$NS_FW2" > "$T/b"
	n1=$(wc -l < "$T/a"); n2=$(wc -l < "$T/b")
	gaps=$(( $(ctstat "$NS_FW2" peer.1.gaps) - gaps0 ))
	info "$loss %: in sync after $((SECONDS - t0)) s; $dropped datagrams dropped, fw2 saw $gaps gaps, sent $(ctstat "$NS_FW2" peer.1.nacks_sent) NACKs, lost for good $(ctstat "$NS_FW2" peer.1.lost)"
	if [ "$ok1" = 1 ] && [ "$n1" = "$N" ] && cmp -s "$T/a" "$T/b" &&
	   [ "$dropped" -gt 0 ] && [ "$gaps" -gt 0 ]; then
		ok "$loss % loss: fw2's table equals fw1's ($n2 flows), both in sync"
	else
		fail "$loss % loss: in sync $ok1, fw1 $n1 flows, fw2 $n2, dropped $dropped, gaps $gaps"
		diff "$T/a" "$T/b" | head -5
	fi
	# every namespace counts against one global conntrack limit: empty
	# both tables (the deletes replicate) before the next round
	seed=$((seed + N))
	nsx "$NS_FW1" conntrack -F >/dev/null 2>&1
	ctl "$NS_FW2" wait-sync --timeout 60 >/dev/null || fail "deletes did not replicate"
	left1=$(ct_table "$NS_FW1" | wc -l); left2=$(ct_table "$NS_FW2" | wc -l)
	held1=$(ctl "$NS_FW1" --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["flows_total"])')
	# what the flush left behind (a background dump once brought flows
	# destroyed while it was read back as new ones of fw1's)
	[ "$left1" = 0 ] && [ "$left2" = 0 ] && [ "$held1" = 0 ] ||
		fail "after fw1's flush: fw1's kernel $left1 flows, fw1's daemon $held1, fw2's kernel $left2"
done
finish "$NAME"
