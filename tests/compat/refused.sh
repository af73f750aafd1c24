#!/usr/bin/env bash
# Peers of a protocol major this build does not speak (sync/wire.h,
# "Versions") are refused loudly and nothing storms, in both roles:
#  - the build of 667e431 (protocol 2, tests/compat/releases), built from
#    this repository's history;
#  - this very source built to announce protocol 4 (a future major).
# Control first: two current builds side by side are in sync and say nothing
# of versions but theirs.  Then, for each foreign build, on fw1 as primary
# beside the current build on fw2 as backup, and the other way round, for
# 6 s with 300 flows on the primary:
#  - the current node says "peer N speaks protocol P" in status (once in its
#    log), --json (incompatible.speaks), metrics (ctsync_peer_incompatible),
#    and wait-sync fails: it is not in sync; as a backup, the OCF agent's
#    monitor gives it promotion score 1 (10 in the control);
#  - neither side asks the other for a resync or sends it a bulk while they
#    run side by side (the counters of both, read over the last 4 s).
. "$(dirname "$0")/../cluster/lib.sh"
NAME="incompatible protocol majors refused loudly, in both roles, no storm"
say "== $NAME"
preflight
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/compat/compat-lib.sh"
compat_bin incompatible
CB=$B/compat
# this source, announcing protocol 4 (and taking only 4)
make -s -C "$top" BUILD="$CB/major4" CFLAGS="-O2 -g -DWIRE_VERSION=4 -DWIRE_VERSION_MIN=4" \
	"$CB/major4/ctsyncd" \
	>/dev/null || { fail "building the protocol-4 daemon"; finish "$NAME"; }
info "$("$CB/major4/ctsyncd" --version)"
topology

json_peer() {         # json_peer NS PEER EXPR: EXPR of that peer's status object
	ctl "$1" --json status | python3 -c '
import json, sys
st = json.load(sys.stdin)
p = [x for x in st["peers"] if x["id"] == int(sys.argv[1])][0]
print(eval(sys.argv[2], {}, {"p": p}))' "$2" "$3"
}
metric() {            # metric NS NAME: the sample's value
	ctl "$1" metrics | awk -v n="$2" '$1 == n { print $2 }'
}

. "$TOP/tests/cluster/ocf-lib.sh"

# -- control: two current builds
start_daemons || finish "$NAME"
nsx "$NS_FW1" "$B/ctsync-ctgen" create 300 0 >/dev/null
if wait_in_sync "$NS_FW2" 10 && ! ctl "$NS_FW2" status | grep -q 'speaks protocol'; then
	ok "control: two current builds are in sync, no version complaint"
	score=$(ocf_score 2)
	[ "$score" = 10 ] && ok "control: the OCF agent's monitor gives the backup in sync promotion score 10" ||
		fail "control: the OCF agent's promotion score is '$score', not 10"
else
	fail "control: two current builds not in sync"
fi
reset_cluster

# one foreign build beside the current one: run_pair FOREIGN_BIN MAJOR FOREIGN_ID
run_pair() {
	local bin=$1 major=$2 fid=$3 cid=$((3 - $3)) label
	local fns=$P-fw$fid cns=$P-fw$cid
	label="protocol $major on fw$fid ($( [ "$fid" = 1 ] && echo primary || echo backup))"
	unset CTSYNCD1 CTSYNCD2
	export "CTSYNCD$fid=$bin"
	: > "$T/ctsyncd-fw$cid.log"
	start_daemon 1 && start_daemon 2 || { fail "$label: daemons did not start"; return; }
	sleep 1
	nsx "$NS_FW1" "$B/ctsync-ctgen" create 300 1000 >/dev/null
	sleep 1
	local c0 f0 c1 f1
	c0=$(sum_stat "$cns" resyncs_asked tx_bulks); f0=$(sum_stat "$fns" resyncs_asked tx_bulks)
	sleep 4
	c1=$(sum_stat "$cns" resyncs_asked tx_bulks); f1=$(sum_stat "$fns" resyncs_asked tx_bulks)
	local st speaks inc logged
	st=$(ctl "$cns" status)
	speaks=$(json_peer "$cns" "$fid" 'p.get("incompatible", {}).get("speaks", 0)')
	inc=$(metric "$cns" "ctsync_peer_incompatible{peer=\"$fid\"}")
	logged=$(grep -c "peer $fid speaks protocol $major" "$T/ctsyncd-fw$cid.log")
	printf '%s\n' "$st" | grep "speaks protocol" | sed 's/^/      /'
	if printf '%s\n' "$st" | grep -q "^peer $fid speaks protocol $major, we speak 3 to 3" &&
	   [ "$speaks" = "$major" ] && [ "$inc" = "$major" ] && [ "$logged" = 1 ]; then
		ok "$label: refused loudly (status, --json, metric, once in the log)"
	else
		fail "$label: status/json/metric/log: '$speaks' '$inc' $logged"
	fi
	if ctl "$cns" wait-sync --timeout 2 >/dev/null 2>&1; then
		fail "$label: the current node says it is in sync"
	else
		ok "$label: the current node is not in sync (wait-sync fails)"
	fi
	if [ "$cid" = 2 ]; then
		local score; score=$(ocf_score "$cid")
		[ "$score" = 1 ] && ok "$label: the OCF agent's monitor gives the current backup promotion score 1 (not in sync)" ||
			fail "$label: the OCF agent's promotion score is '$score', not 1"
	fi
	if [ $((c1 - c0)) = 0 ] && [ $((f1 - f0)) = 0 ]; then
		ok "$label: no resync asked, no bulk sent by either side in 4 s"
	else
		fail "$label: resyncs and bulks in 4 s: current +$((c1 - c0)), foreign +$((f1 - f0))"
	fi
	reset_cluster
}

run_pair "$OLDBIN" 2 1
run_pair "$OLDBIN" 2 2
run_pair "$CB/major4/ctsyncd" 4 1
run_pair "$CB/major4/ctsyncd" 4 2
finish "$NAME"
