#!/usr/bin/env bash
# Kernel event overruns lose nothing: fw1's event socket buffer is set far
# too small (64 KiB, ~50 events), 100,000 flows are created at full speed,
# the kernel drops events (ENOBUFS), ctsyncd resynchronises from a dump:
# afterwards nothing is missing on fw2, and the overruns are counted.
. "$(dirname "$0")/lib.sh"
N=${FLOWS:-100000}
NAME="event socket overruns on fw1 while $N flows are created"
say "== $NAME"
preflight
topology
EXTRA_CONF1='kernel = { event_buffer = 65536; };'
start_daemons || finish "$NAME"
info "fw1: $(nsx "$NS_FW1" "$B/ctsync-ctgen" create "$N" 0)"
ctl "$NS_FW2" wait-sync --timeout 60 >/dev/null || fail "fw2 not in sync"
ctl "$NS_FW1" wait-sync --timeout 60 >/dev/null || fail "fw1 not in sync"
over=$(ctstat "$NS_FW1" overruns)
info "fw1 counted $over overruns"
[ "${over:-0}" -gt 0 ] && ok "the buffer did overrun (negative control: events were lost)" ||
	fail "no overrun happened: the test proves nothing"
ct_table "$NS_FW1" > "$T/a"; ct_table "$NS_FW2" > "$T/b"
if [ "$(wc -l < "$T/a")" = "$N" ] && cmp -s "$T/a" "$T/b"; then
	ok "nothing missing on fw2: $(wc -l < "$T/b") flows, equal to fw1's"
else
	fail "fw1 $(wc -l < "$T/a") flows, fw2 $(wc -l < "$T/b")"
fi
finish "$NAME"
