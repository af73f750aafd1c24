#!/usr/bin/env bash
# `ctsyncctl metrics` and the HTTP listener (metrics.listen, loopback):
# the output parses as Prometheus text exposition (prometheus_client's
# parser, and our own stricter checks: one HELP and TYPE per family,
# counters end in _total, every sample of a declared family), the two
# sources agree, and the counters move as flows are synced.
. "$(dirname "$0")/lib.sh"
NAME="Prometheus metrics: format, HTTP listener, counters that move"
say "== $NAME"
preflight
/usr/bin/python3 -c 'import prometheus_client' 2>/dev/null ||
	{ say "missing python3-prometheus-client: make deps"; exit 1; }
topology
EXTRA_CONF1='metrics = { listen = "127.0.0.1:9777"; };'
start_daemons || finish "$NAME"

check() {             # check FILE: parse and validate; prints "family value" lines
	/usr/bin/python3 - "$1" <<'PY'
import sys, re
from prometheus_client.parser import text_string_to_metric_families
text = open(sys.argv[1]).read()
help_, type_ = {}, {}
for line in text.splitlines():
    if line.startswith("# HELP "):
        n = line.split()[2]; assert n not in help_, "two HELP for " + n; help_[n] = 1
    elif line.startswith("# TYPE "):
        n, t = line.split()[2:4]; assert n not in type_, "two TYPE for " + n; type_[n] = t
    elif line and not line.startswith("#"):
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.e+]+)$', line)
        assert m, "bad sample line: " + line
        assert m.group(1) in type_, "sample of an undeclared family: " + line
for n, t in type_.items():
    assert n in help_, "no HELP for " + n
    assert (t == "counter") == n.endswith("_total"), "counter naming: %s %s" % (n, t)
fams = list(text_string_to_metric_families(text))
assert len(fams) == len(type_), (len(fams), len(type_))
for f in fams:
    for s in f.samples:
        lab = ",".join("%s=%s" % kv for kv in sorted(s.labels.items()))
        print("%s{%s} %g" % (s.name, lab, s.value))
PY
}
val() { awk -v k="$2" '$1 == k { print $2 }' "$1"; }

ctl "$NS_FW1" metrics > "$T/m1-before.txt" || fail "ctsyncctl metrics on fw1"
ctl "$NS_FW2" metrics > "$T/m2-before.txt" || fail "ctsyncctl metrics on fw2"
check "$T/m1-before.txt" > "$T/s1-before" && check "$T/m2-before.txt" > "$T/s2-before" &&
	ok "both nodes' metrics parse ($(grep -c '^# TYPE' "$T/m1-before.txt") families, $(wc -l < "$T/s1-before") samples on fw1)" ||
	fail "metrics do not parse"
nsx "$NS_FW1" "$B/ctsync-ctgen" create 500 5000 >/dev/null
sleep 1
wait_in_sync "$NS_FW2" 5 || fail "fw2 not in sync"
ctl "$NS_FW1" metrics > "$T/m1.txt"; ctl "$NS_FW2" metrics > "$T/m2.txt"
check "$T/m1.txt" > "$T/s1" && check "$T/m2.txt" > "$T/s2" || fail "metrics do not parse after sync"
d_tx=$(( $(val "$T/s1" 'ctsync_tx_records_total{}') - $(val "$T/s1-before" 'ctsync_tx_records_total{}') ))
d_rx=$(( $(val "$T/s2" 'ctsync_rx_upserts_total{}') - $(val "$T/s2-before" 'ctsync_rx_upserts_total{}') ))
held=$(val "$T/s2" 'ctsync_peer_flows_held{peer=1}')
local1=$(val "$T/s1" 'ctsync_flows_local{}')
info "fw1 sent +$d_tx records, owns $local1 flows; fw2 received +$d_rx upserts, holds $held of fw1's"
[ "$d_tx" -ge 500 ] && [ "$d_rx" -ge 500 ] && [ "$held" = 500 ] && [ "$local1" = 500 ] &&
	[ "$(val "$T/s2" 'ctsync_in_sync{}')" = 1 ] && [ "$(val "$T/s2" 'ctsync_peer_alive{peer=1}')" = 1 ] &&
	ok "counters and gauges moved with the 500 synced flows" || fail "counters did not move as expected"

# the HTTP listener, inside fw1's namespace, on loopback
http() {              # http PATH OUTFILE: status line on stdout
	nsx "$NS_FW1" /usr/bin/python3 - "$1" "$2" <<'PY'
import sys, urllib.request, urllib.error
try:
    r = urllib.request.urlopen("http://127.0.0.1:9777" + sys.argv[1], timeout=5)
    open(sys.argv[2], "wb").write(r.read()); print(r.status, r.headers.get("Content-Type"))
except urllib.error.HTTPError as e:
    print(e.code)
PY
}
st=$(http /metrics "$T/h1.txt")
check "$T/h1.txt" > "$T/sh" && [ "${st%% *}" = 200 ] && printf '%s' "$st" | grep -q "version=0.0.4" &&
	[ "$(val "$T/sh" 'ctsync_flows_local{}')" = 500 ] &&
	ok "GET /metrics: 200, text/plain version 0.0.4, the same numbers" || fail "HTTP /metrics: $st"
st=$(http /nope "$T/h2.txt")
[ "$st" = 404 ] && ok "GET /nope: 404" || fail "GET /nope: $st"
conf=$T/bad-metrics.conf
sed 's/^metrics = .*/metrics = { listen = "198.18.0.1:9777"; };/' "$T/fw1.conf" > "$conf"
out=$("$B/ctsyncd" --check --config "$conf" 2>&1)
printf '%s' "$out" | grep -q "must be a loopback address" && ok "a non-loopback listen address is refused" ||
	fail "non-loopback listen accepted: $out"
finish "$NAME"
