#!/usr/bin/env bash
# 10,000 synthetic flows created through ctnetlink on fw1 (TCP/UDP, IPv4 and
# IPv6, SNAT, DNAT, both, marks, zones, labels): fw2's kernel table ends up
# equal to fw1's.  Compared with an independent reader (ctsync-ctgen dump,
# libnetfilter_conntrack): tuples, zone, mark, status, TCP state and window
# scale, labels, helper, NAT sequence adjustment; timeouts and counters left
# out.  Half the flows exist before the daemons start (initial dump + bulk),
# half are created while they run (events).  Negative control: without
# ctsyncd the tables differ.
. "$(dirname "$0")/lib.sh"
NAME="10,000 synthetic flows: fw2's kernel table equals fw1's (inject $INJECT)"
say "== $NAME"
preflight
topology
for ns in "$NS_FW1" "$NS_FW2"; do
	# a rule that sets a label makes the kernel give new entries label space
	nsx "$ns" nft add chain inet filter labels '{ type filter hook prerouting priority -300; }'
	nsx "$ns" nft add rule inet filter labels meta mark 0x7fffffff ct label set 127
done
table() { nsx "$1" "$B/ctsync-ctgen" dump | grep -v '198\.18\.0\.' | sort; }

info "fw1: $(nsx "$NS_FW1" "$B/ctsync-ctgen" create 5000 0)"
sleep 0.5
table "$NS_FW1" > "$T/fw1.a"; table "$NS_FW2" > "$T/fw2.a"
if cmp -s "$T/fw1.a" "$T/fw2.a"; then
	fail "negative control: tables equal without ctsyncd"
else
	ok "negative control: without ctsyncd fw2 holds $(wc -l < "$T/fw2.a") of fw1's $(wc -l < "$T/fw1.a") flows"
fi

start_daemons || finish "$NAME"
info "fw1: $(nsx "$NS_FW1" "$B/ctsync-ctgen" create 5000 5000)"
wait_in_sync "$NS_FW2" 20 || fail "fw2 not in sync"
[ "$INJECT" = on-promote ] && info "fw2: $(ctl "$NS_FW2" commit)"
table "$NS_FW1" > "$T/fw1.b"; table "$NS_FW2" > "$T/fw2.b"
n1=$(wc -l < "$T/fw1.b"); n2=$(wc -l < "$T/fw2.b")
if [ "$n1" = 10000 ] && cmp -s "$T/fw1.b" "$T/fw2.b"; then
	ok "fw2's table equals fw1's: $n2 flows, $(grep -c 'labels=[0-9]' "$T/fw2.b") with labels, $(grep -c 'zone=[12]' "$T/fw2.b") in zones 1-2, $(grep -c '>203\.0\.113\.[1-8]:\|>2001:db8:2::[1-8]:' "$T/fw2.b") SNATed"
else
	fail "tables differ: fw1 $n1, fw2 $n2 flows"
	diff "$T/fw1.b" "$T/fw2.b" | head -10
fi
# the same through conntrack(8), normalised
norm() { nsx "$1" conntrack -L -o extended 2>/dev/null | grep -v '198\.18\.0\.' |
	sed -E 's/^(\S+ +\S+ +\S+ +\S+) +[0-9]+ /\1 /; s/ (use|id)=[0-9]+//g' | sort; }
norm6() { nsx "$1" conntrack -L -f ipv6 -o extended 2>/dev/null |
	sed -E 's/^(\S+ +\S+ +\S+ +\S+) +[0-9]+ /\1 /; s/ (use|id)=[0-9]+//g' | sort; }
if cmp -s <(norm "$NS_FW1"; norm6 "$NS_FW1") <(norm "$NS_FW2"; norm6 "$NS_FW2"); then
	ok "conntrack -L -o extended agrees (timeouts normalised)"
else
	fail "conntrack -L -o extended differs"
	diff <(norm "$NS_FW1") <(norm "$NS_FW2") | head -6
fi
# A NAT mapping that is taken on fw2 is refused and counted, never remapped.
nsx "$NS_FW2" conntrack -I -p udp -s 203.0.113.50 -d 203.0.113.1 --sport 53 --dport 30000 \
	-t 600 -u SEEN_REPLY >/dev/null 2>&1 || fail "could not occupy the mapping on fw2"
clash0=$(ctl "$NS_FW2" stats | awk '$1 == "nat_clashes" { print $2 }')
# (with inject = immediate that entry is replicated to fw1: remove fw1's copy
# by hand so that the two tables diverge, as they would after a partition)
sleep 0.3
nsx "$NS_FW1" conntrack -D -p udp -s 203.0.113.50 -d 203.0.113.1 --sport 53 --dport 30000 \
	>/dev/null 2>&1
nsx "$NS_FW1" conntrack -I -p udp -s 198.19.250.1 -d 203.0.113.50 --sport 4444 --dport 53 \
	-t 600 -u SEEN_REPLY --src-nat 203.0.113.1:30000 >/dev/null 2>&1 || fail "conntrack -I on fw1"
sleep 0.5
[ "$INJECT" = on-promote ] && ctl "$NS_FW2" commit >/dev/null
sleep 0.2
clash1=$(ctl "$NS_FW2" stats | awk '$1 == "nat_clashes" { print $2 }')
remapped=$(nsx "$NS_FW2" conntrack -L -s 198.19.250.1 2>/dev/null | grep -c udp)
if [ "$((clash1 - clash0))" = 1 ] && [ "$remapped" = 0 ] &&
   grep -q "NAT mapping clash" "$T/ctsyncd-fw2.log"; then
	ok "a clashing NAT mapping is counted and logged, not remapped"
else
	fail "NAT clash: counted $((clash1 - clash0)), entries on fw2 $remapped"
fi
info "fw2: $(ctl "$NS_FW2" stats | awk '$1 ~ /^(rx_upserts|kernel_creates|kernel_create_errors|nat_clashes)$/ { printf "%s=%s ", $1, $2 }')"
finish "$NAME"
