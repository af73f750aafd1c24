#!/usr/bin/env bash
# The systemd protocol (Type=notify, WatchdogSec=) as the service manager
# sees it, with a stand-in for systemd's notification socket: READY=1 only
# once the control socket answers, WATCHDOG=1 at half the interval from the
# running loop, RELOADING=1 then READY=1 around a reload, STOPPING=1 at the
# end — and nothing when NOTIFY_SOCKET is not set.
. "$(dirname "$0")/lib.sh"
NAME="systemd notify protocol: ready, watchdog, reload, stopping"
say "== $NAME"
preflight
topology
start_daemon 2
write_config 1 primary >/dev/null
# the listener: every datagram, with the time it came and whether the
# control socket answered at that moment
ip netns exec "$NS_FW1" /usr/bin/python3 -u - "$T/notify.sock" "$B/ctsyncctl" "$T/fw1.sock" \
	>"$T/notify.log" 2>&1 <<'PY' &
import socket, subprocess, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1]); s.settimeout(20)
t0 = time.time()
try:
    while True:
        m = s.recv(4096).decode()
        up = subprocess.run([sys.argv[2], "--socket", sys.argv[3], "status"],
                            capture_output=True).returncode == 0
        print("%.3f %s %s" % (time.time() - t0, "up" if up else "down", m.replace("\n", "|")), flush=True)
        if m.startswith("STOPPING=1"):
            break
except socket.timeout:
    print("timeout")
PY
LISTENER=$!
PIDS+=($LISTENER)
sleep 0.5
# traced NAME ENV...: fw1's daemon under strace (its sendto calls in
# $T/strace-NAME.log) with the environment given; its PID from its pidfile
traced() {
	local name=$1; shift
	rm -f "$T/fw1.pid"
	ip netns exec "$NS_FW1" env "$@" WATCHDOG_USEC=400000 \
		strace -qq -f -e trace=sendto -o "$T/strace-$name.log" \
		"$B/ctsyncd" --foreground --config "$T/fw1.conf" --pidfile "$T/fw1.pid" \
		>>"$T/ctsyncd-fw1.log" 2>&1 &
	TRACER=$!
	PIDS+=($TRACER)
	wait_file "$T/fw1.pid" 10 || fail "no pidfile"
	DAEMON_PID[0]=$(cat "$T/fw1.pid")
}
traced notify NOTIFY_SOCKET="$T/notify.sock"
wait_in_sync "$NS_FW1" 10 || fail "fw1 not in sync"
sleep 1.2
ctl "$NS_FW1" reload >/dev/null || fail "reload"
sleep 0.3
kill "${DAEMON_PID[0]}"; wait "$TRACER"; DAEMON_PID[0]=
wait "$LISTENER"
sed 's/^/    /' "$T/notify.log" | grep -v WATCHDOG | head -8
first=$(head -n 1 "$T/notify.log")
case "$first" in
*" up READY=1"*) ok "READY=1 first, and the control socket answered by then" ;;
*) fail "first notification: $first" ;;
esac
pings=$(grep -c ' WATCHDOG=1$' "$T/notify.log")
[ "$pings" -ge 5 ] && ok "WATCHDOG=1 every ~200 ms: $pings pings" || fail "$pings watchdog pings"
grep -q 'RELOADING=1|MONOTONIC_USEC=' "$T/notify.log" &&
	[ "$(grep -A1 'RELOADING=1' "$T/notify.log" | tail -n 1 | awk '{ print $3 }')" = READY=1 ] &&
	ok "reload: RELOADING=1 (with MONOTONIC_USEC), then READY=1" || fail "reload notifications"
tail -n 1 "$T/notify.log" | grep -q 'STOPPING=1' && ok "STOPPING=1 at the end" || fail "no STOPPING=1"

# -- without NOTIFY_SOCKET: no notification is ever sent (the same trace of
# the run above, which had one, shows that the check can see them)
NOTIFIES='sendto\(.*"(READY|WATCHDOG|RELOADING|STOPPING)=1'
grep -Eq "$NOTIFIES" "$T/strace-notify.log" &&
	ok "control: with NOTIFY_SOCKET the trace shows the notifications sent" ||
	fail "control: the trace shows no notification even with NOTIFY_SOCKET"
traced quiet -u NOTIFY_SOCKET
wait_in_sync "$NS_FW1" 10 || fail "fw1 not in sync (without NOTIFY_SOCKET)"
sleep 0.5
ctl "$NS_FW1" reload >/dev/null || fail "reload"
kill "${DAEMON_PID[0]}"; wait "$TRACER"; DAEMON_PID[0]=
if grep -Eq "$NOTIFIES" "$T/strace-quiet.log"; then
	fail "without NOTIFY_SOCKET the daemon still sent notifications"
else
	ok "without NOTIFY_SOCKET: no notification sent through start, watchdog, reload and stop"
fi
finish "$NAME"
