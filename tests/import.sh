#!/usr/bin/env bash
# `ctsyncctl import-conntrackd` on a corpus: the examples Debian's
# conntrackd package ships and our own files in tests/data/conntrackd
# (written after the keys VyOS's, OpenStack Neutron's and the keepalived
# how-tos' configurations use).  Each file of ours says in its header what
# it expects:
#   # expect: STATUS [ARGS...]   exit status, with these arguments
#   # want: REGEX                a line of the ctsyncd.conf written
#   # note: REGEX                a line of stderr
# Every configuration written must pass `ctsyncd --check`, and every key
# the importer did not map must be named on stderr with its line.
set -u
B=${BUILD:-build}
D=$(dirname "$0")/data/conntrackd
EX=/usr/share/doc/conntrackd/examples
T=$(mktemp -d /tmp/ctsync-import.XXXXXX)
trap 'rm -rf "$T"' EXIT
FAILED=0 n=0
fail() { printf '  FAIL: %s\n' "$*"; FAILED=1; }
ok() { printf '  ok: %s\n' "$*"; }

"$B/ctsyncctl" keygen > "$T/sync.key"

# one FILE EXPECT ARGS...: the conversion, its status, its check
one() {
	local f=$1 want=$2 rc name
	shift 2
	name=${f#"$(dirname "$(dirname "$f")")/"}
	"$B/ctsyncctl" import-conntrackd --key "$T/sync.key" "$@" "$f" >"$T/out.conf" 2>"$T/err"
	rc=$?
	n=$((n + 1))
	if [ "$rc" != "$want" ]; then
		fail "$name: exit $rc, expected $want"
		sed 's/^/      /' "$T/err"
		return 1
	fi
	local summary unmapped
	summary=$(tail -n 1 "$T/err")
	if [ "$rc" = 0 ]; then
		if ! "$B/ctsyncd" --check --config "$T/out.conf" >"$T/check" 2>&1; then
			fail "$name: the result fails ctsyncd --check:"
			sed 's/^/      /' "$T/check" "$T/out.conf"
			return 1
		fi
		grep -q 'a sync-link key is needed' "$T/err" || fail "$name: no word of the sync-link key"
		# every key without a counterpart counted is named with its line
		unmapped=$(sed -n 's/.*converted; \([0-9]*\) key.*/\1/p' <<<"$summary")
		local named
		named=$(grep -cE "^[^ ]+:[0-9]+: " "$T/err")
		[ "$named" -ge "${unmapped:-0}" ] || fail "$name: $unmapped unmapped, $named named"
	else
		[ -s "$T/out.conf" ] && fail "$name: exit $rc, yet something on stdout"
	fi
	ok "$name: exit $rc, $summary"
}

# the Debian examples: multicast ones need the peer's address
if [ -d "$EX" ]; then
	for m in ftfw notrack alarm; do
		one "$EX/sync/$m/conntrackd.conf" 1
		grep -q -- '--peer ADDRESS' "$T/err" || fail "sync/$m: without --peer, not said why"
		one "$EX/sync/$m/conntrackd.conf" 0 --peer 192.168.100.101
	done
	one "$EX/stats/conntrackd.conf" 1
	grep -q 'no statistics mode' "$T/err" || fail "stats: not said why"
else
	fail "no $EX (make deps installs conntrackd)"
fi

# ours
for f in "$D"/*.conf; do
	hdr=$(sed -n 's/^# expect: //p' "$f")
	# shellcheck disable=SC2086
	one "$f" $hdr || continue
	while IFS= read -r re; do
		grep -qE -- "$re" "$T/out.conf" || fail "$(basename "$f"): no line matching '$re' in:$(printf '\n'; sed 's/^/      /' "$T/out.conf")"
	done < <(sed -n 's/^# want: //p' "$f")
	while IFS= read -r re; do
		grep -qE -- "$re" "$T/err" || fail "$(basename "$f"): stderr lacks '$re'"
	done < <(sed -n 's/^# note: //p' "$f")
done

# usage
"$B/ctsyncctl" import-conntrackd >/dev/null 2>&1; [ $? = 2 ] && ok "no file: exit 2" || fail "no file: not exit 2"
"$B/ctsyncctl" import-conntrackd --peer nonsense "$D/keepalived-udp.conf" >/dev/null 2>&1
[ $? = 2 ] && ok "a bad --peer: exit 2" || fail "a bad --peer: not exit 2"
"$B/ctsyncctl" import-conntrackd "$T/absent.conf" >/dev/null 2>&1
[ $? = 1 ] && ok "a missing file: exit 1" || fail "a missing file: not exit 1"

# hostile input: blocks nested without end, random bytes
printf '%*s' 100000 '' | tr ' ' '{' > "$T/deep.conf"
"$B/ctsyncctl" import-conntrackd "$T/deep.conf" >/dev/null 2>"$T/err"
[ $? = 1 ] && grep -q 'nested deeper' "$T/err" && ok "100,000 nested blocks: exit 1, said why" ||
	fail "100,000 nested blocks: $(tail -n 1 "$T/err")"
bad=0
for i in $(seq 50); do
	head -c $((i * 97)) /dev/urandom > "$T/rnd.conf"
	"$B/ctsyncctl" import-conntrackd "$T/rnd.conf" >/dev/null 2>&1
	[ $? -le 2 ] || bad=$((bad + 1))
done
[ "$bad" = 0 ] && ok "50 files of random bytes: a clear exit status each" || fail "$bad random files crashed it"

if [ "$FAILED" = 0 ]; then echo "PASS: import-conntrackd, $n conversions"; exit 0; fi
echo "FAIL: import-conntrackd"; exit 1
