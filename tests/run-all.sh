#!/usr/bin/env bash
# `make check`: unit tests (cmocka), then the cluster tests in network
# namespaces.  Prints a closing "N passed, N failed" line; exit 1 on failure.
#   CLUSTER=0 skips the cluster tests (they need root).
set -u
cd "$(dirname "$0")/.."
passed=0; failed=0; skipped=0
failures=()

for t in "$@"; do
	out=$("$t" 2>&1); rc=$?
	printf '%s\n' "$out" | grep -E '^\[ *(OK|FAILED|ERROR|LINE) *\]|^\[==========\] [0-9]+ test' 
	p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p')
	f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p')
	passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
	if [ "$rc" != 0 ] && [ -z "$f" ]; then failed=$((failed + 1)); fi
	[ "$rc" != 0 ] && failures+=("$(basename "$t")")
done

cluster() {       # cluster "ENV=... script"
	local desc=$1; shift
	local start=$SECONDS out rc
	out=$(env "$@" 2>&1); rc=$?
	printf '%s\n' "$out" | sed 's/^/    /'
	printf '  [%ds] %s\n' $((SECONDS - start)) "$desc"
	case $rc in
	0) passed=$((passed + 1)) ;;
	77) skipped=$((skipped + 1)) ;;
	*) failed=$((failed + 1)); failures+=("$desc") ;;
	esac
}

# A test that mostly waits (timeouts, failover windows) runs beside the
# next ones: cluster_bg starts it (its namespaces are its own, named per
# run), cluster_join collects it.  Only for tests whose checks do not hang
# on CPU time: it shares the two cores with the foreground tests.
BG_DESC=(); BG_PIDS=(); BG_OUT=(); BG_START=()
cluster_bg() {    # cluster_bg "DESC" ENV... script
	local desc=$1 out; shift
	out=$(mktemp /tmp/ctsync-bg.XXXXXX)
	env "$@" >"$out" 2>&1 &
	BG_DESC+=("$desc"); BG_PIDS+=("$!"); BG_OUT+=("$out"); BG_START+=("$SECONDS")
}
cluster_join() {
	local i rc
	for i in "${!BG_PIDS[@]}"; do
		wait "${BG_PIDS[$i]}"; rc=$?
		sed 's/^/    /' "${BG_OUT[$i]}"
		rm -f "${BG_OUT[$i]}"
		printf '  [%ds, beside the tests above] %s\n' $((SECONDS - BG_START[i])) "${BG_DESC[$i]}"
		case $rc in
		0) passed=$((passed + 1)) ;;
		77) skipped=$((skipped + 1)) ;;
		*) failed=$((failed + 1)); failures+=("${BG_DESC[$i]}") ;;
		esac
	done
	BG_DESC=(); BG_PIDS=(); BG_OUT=(); BG_START=()
}

# no root needed: the importer and its corpus
cluster "import-conntrackd: Debian's examples and our corpus" BUILD="${BUILD:-build}" bash tests/import.sh

if [ "${CLUSTER:-1}" != 0 ]; then
	C=tests/cluster
	cluster_bg "UDP timeout refresh and expiry"   INJECT=immediate  bash $C/refresh.sh
	cluster "tcp stream IPv4, inject immediate"   FAMILY=4 INJECT=immediate  bash $C/tcp-stream.sh
	cluster "tcp stream IPv4, inject on-promote"  FAMILY=4 INJECT=on-promote bash $C/tcp-stream.sh
	cluster "tcp stream IPv6, inject immediate"   FAMILY=6 INJECT=immediate  bash $C/tcp-stream.sh
	cluster "tcp stream IPv6, inject on-promote"  FAMILY=6 INJECT=on-promote bash $C/tcp-stream.sh
	cluster "tcp stream, IPv4 multicast transport" TRANSPORT=multicast4 bash $C/tcp-stream.sh
	cluster "tcp stream, IPv6 multicast transport" TRANSPORT=multicast6 bash $C/tcp-stream.sh
	cluster_join
	cluster "udp server push, inject immediate"   INJECT=immediate  bash $C/udp-push.sh
	cluster "udp server push, inject on-promote"  INJECT=on-promote bash $C/udp-push.sh
	cluster "1000 tcp connections, immediate"     INJECT=immediate  bash $C/tcp-many.sh
	cluster "1000 tcp connections, on-promote"    INJECT=on-promote bash $C/tcp-many.sh
	cluster "10,000 synthetic flows, immediate"   INJECT=immediate  bash $C/synthetic.sh
	cluster "10,000 synthetic flows, on-promote"  INJECT=on-promote bash $C/synthetic.sh
	cluster "100k flows under 1/10/30 % sync loss" INJECT=immediate bash $C/loss.sh
	cluster "daemon restarts (SIGKILL, primary)"  INJECT=immediate  bash $C/restart.sh
	cluster "event socket overruns, 100k flows"   INJECT=immediate  bash $C/overrun.sh
	cluster "sync link cut for 10 s"              INJECT=immediate  bash $C/cut.sh
	cluster "two primaries at once"               INJECT=immediate  bash $C/two-primaries.sh
	cluster "3 nodes, UDP multicast"              NFW=3 TRANSPORT=multicast4 bash $C/nodes.sh
	cluster "3 nodes, corosync CPG"               NFW=3 TRANSPORT=cpg        bash $C/nodes.sh
	cluster "4 nodes, UDP multicast"              NFW=4 TRANSPORT=multicast4 bash $C/nodes.sh
	cluster "4 nodes, corosync CPG"               NFW=4 TRANSPORT=cpg        bash $C/nodes.sh
	cluster "active-active, 3 nodes, UDP multicast, IPv4" NFW=3 TRANSPORT=multicast4 FAMILY=4 bash $C/active-active.sh
	cluster "active-active, 3 nodes, corosync CPG, IPv6" NFW=3 TRANSPORT=cpg FAMILY=6 bash $C/active-active.sh
	cluster "active-active under daemon faults: nothing forwarded twice" bash $C/aa-faults.sh
	cluster "active-active over CPG and UDP, a node's sync link cut: quorum" bash $C/aa-partition.sh
	cluster "active-active, 2 nodes over CPG: second link, qnetd witness" bash $C/aa-twonode.sh
	cluster "active-active SNAT to the shared address: a block of ports per node" bash $C/aa-snat.sh
	cluster "FTP passive through active-active, node dies" bash $C/ftp-aa.sh
	cluster "filters: TCP state, age, zone, attributes (each with its control)" bash $C/filters.sh
	cluster "migration from a conntrackd pair, converted by import-conntrackd" bash $C/migrate.sh
	cluster "active-active on asymmetric paths: defer, IPv4" FAMILY=4 bash $C/asymmetric.sh
	cluster "active-active on asymmetric paths: defer, IPv6" FAMILY=6 bash $C/asymmetric.sh
	cluster "pacemaker: 3 nodes, promotable clone, promoted node killed" bash $C/pacemaker.sh
	cluster "pacemaker, active-active: 3 promoted, one node killed and back" bash $C/pacemaker-aa.sh
	cluster_bg "active-active over CPG: two nodes die 30 s apart, last man standing" \
		bash $C/aa-lastman.sh
	cluster "FTP passive after failover, immediate" INJECT=immediate bash $C/ftp.sh
	cluster "FTP passive after failover, on-promote" INJECT=on-promote bash $C/ftp.sh
	cluster "FTP active (PORT, seqadj), immediate" MODE=port INJECT=immediate bash $C/ftp.sh
	cluster "FTP active (PORT, seqadj), on-promote" MODE=port INJECT=on-promote bash $C/ftp.sh
	cluster "TFTP read after failover, immediate" INJECT=immediate bash $C/tftp.sh
	cluster "TFTP read after failover, on-promote" INJECT=on-promote bash $C/tftp.sh
	cluster "SIP call, media after failover, immediate" INJECT=immediate bash $C/sip.sh
	cluster "SIP call, media after failover, on-promote" INJECT=on-promote bash $C/sip.sh
	cluster_join
	cluster "PPTP expectations synced (GRE: kernel limit)" INJECT=immediate bash $C/pptp.sh
	cluster "bad config and hostile datagrams"    INJECT=immediate  bash $C/hostile.sh
	cluster "ctsyncctl exit codes and JSON"       INJECT=immediate  bash $C/ctl.sh
	cluster "attacker on the sync link during failover" INJECT=immediate bash $C/attack.sh
	cluster "key rotation during flow changes"    INJECT=immediate  bash $C/rotate.sh
	cluster "keys, insecure mode, capabilities, sockets" INJECT=immediate bash $C/secure-ops.sh
	cluster "keepalived VRRP pair drives failover" INJECT=immediate bash $C/keepalived.sh
	cluster "OCF agent under ocf-tester"          INJECT=immediate  bash $C/ocf.sh
	cluster "Prometheus metrics"                  INJECT=immediate  bash $C/metrics.sh
	cluster "systemd notify protocol"             INJECT=immediate  bash $C/notify.sh
	cluster "incompatible protocol majors refused (667e431, a protocol-4 build)" \
		INJECT=immediate bash tests/compat/refused.sh
	cluster "previous release beside the current, active-backup, both roles" \
		INJECT=immediate bash tests/compat/interop-ab.sh
	cluster "active-active, previous release on the node that dies and returns" \
		PREV=1 DEAD=1 bash $C/active-active.sh
	cluster "active-active, previous release on a survivor" PREV=2 DEAD=1 bash $C/active-active.sh
	cluster "rolling upgrade, 3 active-active nodes under traffic" bash tests/compat/rolling.sh
	cluster "keepalived pair upgraded under traffic (UPGRADING.md)" \
		INJECT=immediate bash tests/compat/upgrade-keepalived.sh
	cluster "pacemaker cluster upgraded under traffic (UPGRADING.md)" \
		INJECT=immediate bash tests/compat/upgrade-pacemaker.sh
	cluster "benchmark harness smoke (5,000 flows)" BENCH_CHECK=1 BENCH_LOSS_WAIT=15 BENCH_OUT=/tmp/ctsync-bench-smoke.$$ \
		bash bench/bench.sh 5000 1 3000
	rm -f /tmp/ctsync-bench-smoke.$$
	cluster "transports benchmark smoke (3 nodes, 5,000 flows)" BENCH_CHECK=1 \
		BENCH_OUT=/tmp/ctsync-bench-tr.$$ bash bench/transports.sh 5000 1
	rm -f /tmp/ctsync-bench-tr.$$
	cluster "active-active takeover of 100,000 flows: no lease lapses" BENCH_CHECK=1 \
		BENCH_OUT=/tmp/ctsync-bench-tk.$$ bash bench/takeover.sh 100000 2
	rm -f /tmp/ctsync-bench-tk.$$
	cluster "SNAT benchmark smoke (3 nodes, 2,400 connections)" BENCH_CHECK=1 \
		BENCH_OUT=/tmp/ctsync-bench-snat.$$ bash bench/snat.sh 300 1
	rm -f /tmp/ctsync-bench-snat.$$
	cluster "defer benchmark smoke (100 connections)" BENCH_CHECK=1 \
		BENCH_OUT=/tmp/ctsync-bench-df.$$ bash bench/defer.sh 100 1
	rm -f /tmp/ctsync-bench-df.$$
	cluster "make install, unit, man pages"       bash tests/install.sh
	cluster "Debian package: build, lintian, install and purge in a throw-away root" bash tests/package.sh
fi

if [ ${#failures[@]} -gt 0 ]; then
	echo "failed: ${failures[*]}"
fi
if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" = 0 ]
