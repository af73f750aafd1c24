#!/usr/bin/env bash
# The pacemaker resource agent (scripts/ocf/ctsyncd) passes ocf-tester
# (Debian's resource-agents) inside fw1's namespace: meta-data valid
# against ra-api-1.dtd, validate-all, probe of a stopped resource, start,
# monitor, notify, promote and demote (each twice), stop.  Then its monitor
# is checked against the daemon's real role: 7 stopped, 0 backup, 8 primary
# — also when the role was changed behind pacemaker's back.
. "$(dirname "$0")/lib.sh"
NAME="OCF resource agent under ocf-tester"
say "== $NAME"
preflight
command -v ocf-tester >/dev/null || { say "missing ocf-tester (resource-agents): make deps"; exit 1; }
topology
start_daemon 2                  # a peer for the agent's daemon
write_config 1 primary >/dev/null
# ocf-tester runs meta-data as nobody: the agent must be reachable by it
chmod 711 "$T"
mkdir -m 755 "$T/ocf"
install -m 755 "$TOP/scripts/ocf/ctsyncd" "$T/ocf/ctsyncd"
args=(-o "config=$T/fw1.conf" -o "socket=$T/fw1.sock" -o "pidfile=$T/fw1.pid"
      -o "binary=$B/ctsyncd" -o "ctl=$B/ctsyncctl" -o sync_wait=1)
nsx "$NS_FW1" ocf-tester -n ctsync "${args[@]}" "$T/ocf/ctsyncd" >"$T/ocf-tester.log" 2>&1
rc=$?
sed 's/^/    /' "$T/ocf-tester.log" | tail -n 12
[ $rc = 0 ] && grep -q "passed all tests" "$T/ocf-tester.log" &&
	ok "ocf-tester: the agent passed all tests" || fail "ocf-tester: exit $rc"

# monitor tells the daemon's real role
agent() {             # agent ACTION: the agent's exit code
	ip netns exec "$NS_FW1" env OCF_ROOT=/usr/lib/ocf __OCF_ACTION="$1" \
		OCF_RESKEY_config="$T/fw1.conf" OCF_RESKEY_socket="$T/fw1.sock" \
		OCF_RESKEY_pidfile="$T/fw1.pid" OCF_RESKEY_binary="$B/ctsyncd" \
		OCF_RESKEY_ctl="$B/ctsyncctl" OCF_RESKEY_sync_wait=1 "$T/ocf/ctsyncd" "$1" \
		>>"$T/agent.log" 2>&1
	echo $?
}
r0=$(agent monitor); r1=$(agent start); r2=$(agent monitor); r3=$(agent promote); r4=$(agent monitor)
ctl "$NS_FW1" demote >/dev/null          # behind pacemaker's back
r5=$(agent monitor)
r6=$(agent stop); r7=$(agent monitor)
info "monitor: stopped $r0, start $r1, started $r2, promote $r3, promoted $r4, demoted by hand $r5, stop $r6, stopped $r7"
[ "$r0 $r1 $r2 $r3 $r4 $r5 $r6 $r7" = "7 0 0 0 8 0 0 7" ] &&
	ok "monitor reports the daemon's real role (7 stopped, 0 backup, 8 primary)" ||
	fail "monitor/role mismatch"
[ -z "$(ip netns pids "$NS_FW1")" ] && ok "stop left no process behind" || fail "processes left on fw1"
finish "$NAME"
