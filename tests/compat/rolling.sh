#!/usr/bin/env bash
# The rolling upgrade of docs/UPGRADING.md ("Active-active"), on three
# firewalls forwarding at once under NCL TCP streams: every node starts on
# the previous release; then node by node — `ctsyncctl demote` (its
# buckets go to the others), the daemon stopped, the new one started
# drained, `ctsyncctl wait-sync`, `ctsyncctl promote` (its buckets back) —
# until every node runs the current build.  Every stream must survive, each
# node must say in `status` which release each peer runs, and no node may
# find a peer incompatible.
#
# The previous release is the `previous` line of tests/compat/releases
# (built from this repository's history by compat-lib.sh).
#
# Negative control first: a node's buckets moved to the others without
# ctsyncd (aa-lib.sh's aa_negative_control) breaks that node's streams, so
# the streams that survive the upgrade survive because of the steps.
: "${NFW:=3}"
: "${TRANSPORT:=multicast4}"
: "${NCL:=12}"
. "$(dirname "$0")/../cluster/lib.sh"
NAME="rolling upgrade of 3 active-active nodes under traffic (docs/UPGRADING.md)"
say "== $NAME"
preflight
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/compat/compat-lib.sh"
compat_bin previous
topology_shared
. "$top/tests/cluster/aa-lib.sh"

aa_negative_control 1

export SYNC_EXTRA='mode = "active-active";'
AA_DAEMONS=1
for i in $FWS; do export "CTSYNCD$i=$OLDBIN"; start_daemon "$i" primary || finish "$NAME"; done
report_all_hold 15 || finish "$NAME"
streams up 30
sleep 2
all_forward
for i in $FWS; do
	ns=$P-fw$i
	ctl "$ns" demote >/dev/null || fail "fw$i: demote"
	sleep 1.5               # the others take its buckets (and its flows)
	kill_daemon "$i" TERM
	unset "CTSYNCD$i"
	start_daemon "$i" backup || fail "fw$i: the new daemon did not start"
	if ctl "$ns" wait-sync --timeout 20 >/dev/null 2>&1; then
		ctl "$ns" promote >/dev/null || fail "fw$i: promote"
		info "fw$i upgraded: demoted, restarted on the new build, in sync, promoted"
	else
		fail "fw$i: not in sync after its upgrade"
		ctl "$ns" status | sed 's/^/      /'
	fi
	sleep 1.5
done
wait_streams
streams_survived up 2000 "the rolling upgrade of all $NFW nodes"
report_all_hold 15
bad=0
for i in $FWS; do
	st=$(ctl "$P-fw$i" status)
	printf '%s\n' "$st" | grep -q 'speaks protocol' && bad=1
	printf '%s\n' "$st" | grep '^versions:' | sed "s/^/      fw$i /"
	printf '%s\n' "$st" | grep -Eq "^version: +ctsync $(cat "$top/VERSION")," || bad=1
done
[ "$bad" = 0 ] && ok "every node runs the new release and names its peers' releases, none incompatible" ||
	fail "versions after the upgrade"
finish "$NAME"
