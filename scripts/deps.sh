#!/usr/bin/env bash
# Install every Debian package that building, testing and the demo need.
# Idempotent and quiet when everything is present.  Installing packages that
# ship daemons must not start them in the root namespace: a temporary
# policy-rc.d forbids service starts while apt runs.
set -eu
PKGS="build-essential pkg-config clang libmnl-dev libnetfilter-conntrack-dev libev-dev
      libconfig-dev libssl-dev libcmocka-dev conntrack nftables iproute2 iputils-arping
      procps vsftpd tftpd-hpa tftp-hpa sip-tester pptpd
      pptp-linux python3 tcpdump strace valgrind keepalived resource-agents man-db groff-base
      python3-prometheus-client conntrackd linux-perf corosync corosync-qdevice corosync-qnetd libcpg-dev libcmap-dev libquorum-dev libcorosync-common-dev libnftables-dev libnftnl-dev
      pacemaker pacemaker-cli-utils debhelper lintian dpkg-dev fakeroot"
missing=()
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages: ${missing[*]} (run 'make deps' as root)" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}"
prc=/usr/sbin/policy-rc.d
created=0
if [ ! -e "$prc" ]; then
	printf '#!/bin/sh\nexit 101\n' > "$prc"; chmod 755 "$prc"; created=1
fi
cleanup() { if [ "$created" = 1 ]; then rm -f "$prc"; fi; }
trap cleanup EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
