# bench/limits.sh — sourced by the benchmarks (after tests/cluster/lib.sh).
# The conntrack table and its hash are global to every namespace:
# raise_limits NEED raises nf_conntrack_max and the hash size to NEED for
# the run and restores both at exit, also on failure.
MAX0=$(cat /proc/sys/net/netfilter/nf_conntrack_max)
HASH0=$(cat /sys/module/nf_conntrack/parameters/hashsize)
restore_limits() {
	echo "$HASH0" > /sys/module/nf_conntrack/parameters/hashsize 2>/dev/null
	echo "$MAX0" > /proc/sys/net/netfilter/nf_conntrack_max 2>/dev/null
}
raise_limits() {
	trap 'restore_limits; cleanup' EXIT
	[ "$1" -gt "$MAX0" ] && echo "$1" > /proc/sys/net/netfilter/nf_conntrack_max
	[ "$1" -gt "$HASH0" ] && echo "$1" > /sys/module/nf_conntrack/parameters/hashsize
	return 0
}
