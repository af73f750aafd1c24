#!/usr/bin/env bash
# Security as an operator meets it: no key, no start (unless insecure, and
# then a warning); a key file others may read is refused; a running daemon
# holds CAP_NET_ADMIN and nothing else; the control socket is 0660 in the
# configured group, and the read-only socket answers status but refuses
# promote; `reload` with a broken key file fails and keeps the keys in use.
. "$(dirname "$0")/lib.sh"
NAME="security: keys, insecure mode, capabilities, control sockets, reload"
say "== $NAME"
preflight
topology

# -- configurations checked without starting anything
"$B/ctsyncctl" keygen > "$T/sync.key"
conf() {              # conf FILE SECURITY: a minimal valid config but for SECURITY
	cat > "$1" <<EOF
node = { id = 1; };
transport = { type = "udp"; interface = "sync0"; address = "198.18.0.1";
	peers = ( { id = 2; address = "198.18.0.2"; } ); };
control = { socket = "$T/x.sock"; };
$2
EOF
}
conf "$T/nokey.conf" ""
out=$(nsx "$NS_FW1" "$B/ctsyncd" --check --config "$T/nokey.conf" 2>&1); rc=$?
[ $rc = 1 ] && printf '%s' "$out" | grep -q "missing section 'security'.*ctsyncctl keygen" &&
	ok "no key: refused, and told how to make one" || fail "no key: exit $rc: $out"
cp "$T/sync.key" "$T/open.key"; chmod 644 "$T/open.key"
conf "$T/open.conf" "security = { key_file = \"$T/open.key\"; };"
out=$(nsx "$NS_FW1" "$B/ctsyncd" --check --config "$T/open.conf" 2>&1); rc=$?
[ $rc = 1 ] && printf '%s' "$out" | grep -q "open.conf:5: .*open.key: readable or writable by group or others (mode 0644): chmod 600" &&
	ok "a key file others may read: refused (FILE:LINE, the mode, the fix)" ||
	fail "open key file: exit $rc: $out"
conf "$T/insecure.conf" "security = { insecure = true; };"
out=$(nsx "$NS_FW1" "$B/ctsyncd" --check --config "$T/insecure.conf" 2>&1); rc=$?
[ $rc = 0 ] && printf '%s' "$out" | grep -q "WARNING: insecure" &&
	ok "insecure = true: accepted, with a warning" || fail "insecure: exit $rc: $out"
"$B/ctsyncctl" keygen --id 256 >/dev/null 2>&1
[ $? = 2 ] && ok "keygen --id 256: usage error" || fail "keygen --id 256 accepted"

# -- two insecure daemons: status says so, loudly
SECURITY_CONF='security = { insecure = true; };'
start_daemons || finish "$NAME"
ctl "$NS_FW1" status | grep -q "^security: *NONE — WARNING" &&
	ok "insecure: status warns" || fail "insecure status: $(ctl "$NS_FW1" status | grep security)"
[ "$(ctl "$NS_FW1" --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["security"]["mode"])')" = insecure ] &&
	ok "insecure: status --json says so" || fail "insecure: JSON"
stop_daemons

# -- sealed daemons, a group for the sockets, a read-only socket
SECURITY_CONF=
# an existing group (the host's user database is not ours to change)
getent group nogroup >/dev/null && GROUP=nogroup || GROUP=root
CONTROL_EXTRA="group = \"$GROUP\"; readonly_socket = \"$T/fw@ID@-ro.sock\";"
start_daemons || finish "$NAME"
pid=${DAEMON_PID[0]}
caps=$(awk '/^Cap(Eff|Prm|Bnd):/ { printf "%s=%s ", $1, $2 }' "/proc/$pid/status")
info "fw1's ctsyncd: $caps"
[ "$caps" = "CapPrm:=0000000000001000 CapEff:=0000000000001000 CapBnd:=0000000000001000 " ] &&
	ok "the running daemon holds CAP_NET_ADMIN only (permitted, effective, bounding)" ||
	fail "capabilities: $caps"
grep -q "^NoNewPrivs:[[:space:]]*1" "/proc/$pid/status" && ok "no_new_privs set" || fail "no_new_privs not set"
m=$(stat -c '%a %G' "$T/fw1.sock")
[ "$m" = "660 $GROUP" ] && ok "control socket: mode 0660, group $GROUP" || fail "control socket: $m"
ro="$B/ctsyncctl --socket $T/fw1-ro.sock"
nsx "$NS_FW1" $ro status | grep -q "^security: *aes-256-gcm, sealing with key" &&
	ok "read-only socket: status works (and shows the key in use)" || fail "read-only status"
nsx "$NS_FW1" $ro stats >/dev/null && ok "read-only socket: stats works" || fail "read-only stats"
out=$(nsx "$NS_FW1" $ro promote 2>&1); rc=$?
[ $rc = 1 ] && printf '%s' "$out" | grep -q "read-only" &&
	ok "read-only socket: promote refused (exit 1)" || fail "read-only promote: exit $rc $out"
out=$(nsx "$NS_FW1" $ro dump 2>&1); rc=$?
[ $rc = 1 ] && printf '%s' "$out" | grep -q "read-only" &&
	ok "read-only socket: dump refused (exit 1)" || fail "read-only dump: exit $rc $out"

# -- reload with a key file gone bad: refused, the keys in use stay
chmod 644 "$T/sync.key"
out=$(ctl "$NS_FW2" reload 2>&1); rc=$?
chmod 600 "$T/sync.key"
[ $rc = 1 ] && printf '%s' "$out" | grep -q "chmod 600" &&
	ok "reload with a world-readable key file: exit 1, the reason printed" ||
	fail "bad reload: exit $rc: $out"
nsx "$NS_FW1" "$B/ctsync-ctgen" create 20 777 >/dev/null
sleep 1
wait_in_sync "$NS_FW2" 5 && [ "$(ctl "$NS_FW2" dump --peer 1 | wc -l)" -ge 20 ] &&
	ok "fw2 still syncs under the key in use" || fail "fw2 stopped syncing after a failed reload"
# a configuration that no longer parses: refused, named FILE:LINE
cp "$T/fw2.conf" "$T/fw2.conf.good"
printf 'sync = { heartbeat_ms = "soon"; };\n' >> "$T/fw2.conf"
out=$(ctl "$NS_FW2" reload 2>&1); rc=$?
mv "$T/fw2.conf.good" "$T/fw2.conf"
[ $rc = 1 ] && printf '%s' "$out" | grep -q "fw2.conf:[0-9]*: " && wait_in_sync "$NS_FW2" 3 &&
	ok "reload of a configuration that does not validate: exit 1, FILE:LINE, still in sync" ||
	fail "bad config reload: exit $rc: $out"
out=$(ctl "$NS_FW2" reload 2>&1) && ok "reload, fixed: $out" || fail "reload: $out"
kill -HUP "${DAEMON_PID[1]}"
sleep 0.3
grep -q "reloaded: aes-256-gcm" "$T/ctsyncd-fw2.log" && ok "SIGHUP reloads too" || fail "SIGHUP"
finish "$NAME"
