#!/usr/bin/env bash
# Key rotation during continuous flow changes: flows are created, updated
# and deleted on fw1 all along while the sync key is replaced in the three
# documented steps (next key accepted everywhere; sealing with it
# everywhere; the old one dropped), each with `ctsyncctl reload` on both
# nodes.  Nothing may be lost: no frame refused, no frame given up, and
# fw2's kernel table equal to fw1's at the end.
# Negative control: fw1 switched to a key fw2 does not hold — fw2 refuses
# its frames (counted) and misses the flows made since, which this test
# would see.
. "$(dirname "$0")/lib.sh"
NAME="key rotation during continuous flow changes"
say "== $NAME"
preflight
topology
start_daemons || finish "$NAME"
OLD=$(awk '$1 == "ctsync-key-v1" { print $2 }' "$T/sync.key")
NEW=$(( OLD % 255 + 1 ))
"$B/ctsyncctl" keygen --id "$NEW" > "$T/next.key"
[ "$(stat -c %a "$T/next.key")" = 600 ] && ok "ctsyncctl keygen > FILE made the file 0600" ||
	fail "key file mode $(stat -c %a "$T/next.key")"

keys() {              # keys KEYFILE [NEXTFILE]: rewrite both configs, reload both
	SECURITY_CONF="security = { key_file = \"$1\"; ${2:+next_key_file = \"$2\";} };"
	write_config 1 primary >/dev/null
	write_config 2 backup >/dev/null
	for ns in "$NS_FW1" "$NS_FW2"; do
		out=$(ctl "$ns" reload) || fail "reload on ${ns##*-}: $out"
	done
	info "reload: $out"
}

# flow changes on fw1 for 12 s: batches of creates, updates and deletes
churn() {
	local end=$((SECONDS + 12)) seed=10000
	while [ $SECONDS -lt $end ]; do
		"$B/ctsync-ctgen" create 200 $seed
		"$B/ctsync-ctgen" update 200 $seed
		"$B/ctsync-ctgen" delete 100 $seed
		seed=$((seed + 200))
		sleep 0.1
	done
	echo "last_seed=$seed"
}
ip netns exec "$NS_FW1" env B="$B" bash -c "$(declare -f churn); churn" >"$T/churn.log" 2>&1 &
CHURN=$!
PIDS+=($CHURN)

sleep 2
keys "$T/sync.key" "$T/next.key"           # 1. the new key accepted everywhere
sleep 2.5
keys "$T/next.key" "$T/sync.key"           # 2. sealing with it, the old still accepted
sleep 2.5
keys "$T/next.key"                         # 3. the old key gone
wait "$CHURN"
info "churn: $(tail -n 1 "$T/churn.log")"
wait_in_sync "$NS_FW1" 10 || fail "fw1 not in sync after the rotation"
wait_in_sync "$NS_FW2" 10 || fail "fw2 not in sync after the rotation"
sleep 0.5
tables_equal 1000
for ns in "$NS_FW1" "$NS_FW2"; do
	n=${ns##*-}
	s=$(ctl "$ns" stats)
	g() { printf '%s\n' "$s" | awk -v k="$1" '$1 == k { print $2 }'; }
	refused=$(( $(g rx_bad_tag) + $(g rx_unknown_key) + $(g rx_unsealed) ))
	info "$n: opened $(g frames_opened), refused $refused, lost $(g rx_lost), upserts received $(g rx_upserts)"
	[ "$refused" = 0 ] && [ "$(g rx_lost)" = 0 ] && ok "$n: no frame refused, none lost" ||
		fail "$n: $refused frames refused, $(g rx_lost) lost"
done
ctl "$NS_FW2" status | grep -q "sealing with key $NEW, accepting key $NEW\$" &&
	ok "fw2 seals with key $NEW and accepts it alone" ||
	fail "fw2's status: $(ctl "$NS_FW2" status | grep security)"

# -- negative control: fw1 alone on a key fw2 has never seen
"$B/ctsyncctl" keygen --id $(( NEW % 255 + 1 )) > "$T/rogue.key"
SECURITY_CONF="security = { key_file = \"$T/rogue.key\"; };"
write_config 1 primary >/dev/null
ctl "$NS_FW1" reload >/dev/null || fail "reload fw1"
nsx "$NS_FW1" "$B/ctsync-ctgen" create 50 900000 >/dev/null
sleep 1.5
s=$(ctl "$NS_FW2" stats)
unknown=$(printf '%s\n' "$s" | awk '$1 == "rx_unknown_key" { print $2 }')
ct_table "$NS_FW1" > "$T/n1"
ct_table "$NS_FW2" > "$T/n2"
missing=$(comm -23 "$T/n1" "$T/n2" | wc -l)
if [ "$unknown" -gt 0 ] && [ "$missing" -ge 50 ]; then
	ok "negative control: a key fw2 lacks — $unknown frames refused, $missing flows missing on fw2"
else
	fail "negative control: fw2 took frames under a key it does not hold ($unknown refused)"
fi
finish "$NAME"
