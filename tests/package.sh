#!/usr/bin/env bash
# The Debian package: built from a copy of the tree as from a clean checkout
# (scripts/deb.sh, what `make deb` runs), the versions of VERSION, NEWS and
# debian/changelog agreeing, lintian reporting no error and no warning, then
# installed in a throw-away root — an overlay of this machine's own root in
# a mount, network and PID namespace of its own, so that its dependencies are
# there and nothing reaches the host — where ctsyncd --version and ctsyncctl
# --help run from it, the unit is enabled and nothing started, and
# `dpkg -r` then `dpkg -P` leave nothing of it behind.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
W=$(mktemp -d /tmp/ctsync-pkg.XXXXXX)
FAILED=0
ok()   { printf '  ok: %s\n' "$*"; }
fail() { printf '  FAIL: %s\n' "$*"; FAILED=1; }
cleanup() {
	umount -R "$W/root" 2>/dev/null
	umount "$W/rw" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
echo "== Debian package"
for t in dpkg-buildpackage lintian dh unshare; do
	command -v "$t" >/dev/null || { echo "FAIL: $t missing (make deps)"; exit 1; }
done

want=$(cat "$TOP/VERSION")
cl=$(cd "$TOP" && dpkg-parsechangelog -S Version)
news=$(sed -n 's/^\([0-9][^ ]*\) .*/\1/p' "$TOP/NEWS" | head -n 1)
[ "$cl" = "$want" ] && [ "$news" = "$want" ] &&
	ok "one version: VERSION, debian/changelog and NEWS say $want" ||
	fail "versions differ: VERSION $want, debian/changelog $cl, NEWS $news"

t0=$SECONDS
deb=$(bash "$TOP/scripts/deb.sh" "$W/out") || { echo "FAIL: the package did not build"; exit 1; }
arch=$(dpkg --print-architecture)
[ "$(basename "$deb")" = "ctsync_${want}_$arch.deb" ] &&
	ok "dpkg-buildpackage -us -uc -b: $(basename "$deb") ($((SECONDS - t0)) s)" ||
	fail "package named $(basename "$deb"), expected ctsync_${want}_$arch.deb"

# lintian: no error or warning by its own exit status (--fail-on: a
# lintian that could not run fails too), then every tag shown, overridden
# ones included (with --show-overrides those would count for --fail-on)
lintian --pedantic -I --fail-on error,warning "$W"/out/ctsync_*.changes >/dev/null 2>&1
rc=$?
lint=$(lintian --pedantic -I --show-overrides "$W"/out/ctsync_*.changes 2>&1 |
	grep -v 'running with root privileges')
printf '%s\n' "$lint" | sed 's/^/    lintian: /'
if [ "$rc" != 0 ] || printf '%s\n' "$lint" | grep -qE '^[EW]: '; then
	fail "lintian: exit $rc, or an error or a warning"
else
	ok "lintian --pedantic: no error, no warning ($(printf '%s\n' "$lint" | grep -cE '^[IPX]: ') info/pedantic tags, $(printf '%s\n' "$lint" | grep -c '^O: ') overridden)"
fi

# What the package holds
files=$(dpkg -c "$deb" | awk '{ print $6 }')
for f in ./usr/sbin/ctsyncd ./usr/sbin/ctsyncctl ./usr/share/man/man8/ctsyncd.8.gz \
	 ./usr/share/man/man8/ctsyncctl.8.gz ./usr/share/man/man5/ctsyncd.conf.5.gz \
	 ./lib/systemd/system/ctsyncd.service ./usr/lib/ocf/resource.d/ctsync/ctsyncd \
	 ./usr/lib/ctsync/keepalived/ctsync-notify ./usr/lib/ctsync/keepalived/ctsync-notify-fifo \
	 ./etc/ctsyncd/ctsyncd.conf.example ./usr/share/doc/ctsync/copyright; do
	grep -qxF "$f" <<<"$files" || fail "the package lacks $f"
done
dpkg-deb -f "$deb" Depends | grep -q 'libnftables1' && dpkg-deb -f "$deb" Depends | grep -q libcpg &&
	ok "depends: $(dpkg-deb -f "$deb" Depends)" || fail "depends: $(dpkg-deb -f "$deb" Depends)"

# The throw-away root: this machine's root, read-only below a tmpfs that
# takes every write, in a mount, network and PID namespace of its own (its
# ps sees only what runs there)
mkdir -p "$W/root" "$W/rw"
mount -t tmpfs -o size=512m tmpfs "$W/rw" && mkdir -p "$W/rw/upper" "$W/rw/work" ||
	{ echo "FAIL: tmpfs"; exit 1; }
cp "$deb" "$W/rw/ctsync.deb"
cat > "$W/rw/inside.sh" <<'EOF'
set -u
R=$1 RW=$2
mount -t overlay overlay -o "lowerdir=/,upperdir=$RW/upper,workdir=$RW/work" "$R" || exit 90
mount -t proc proc "$R/proc"
mount --rbind /dev "$R/dev"
mount -t tmpfs tmpfs "$R/tmp"
mount -t tmpfs tmpfs "$R/run"
cp "$RW/ctsync.deb" "$R/tmp/"
# no service starts in a root that is not a machine's (and none here)
printf '#!/bin/sh\nexit 101\n' > "$R/usr/sbin/policy-rc.d"
chmod 755 "$R/usr/sbin/policy-rc.d"
inr() { chroot "$R" "$@"; }
# a root where ctsync is not installed yet, whatever the host has
inr dpkg -P ctsync >/dev/null 2>&1
echo "step install"
inr env DEBIAN_FRONTEND=noninteractive dpkg -i /tmp/ctsync.deb || exit 1
echo "status $(inr dpkg-query -W -f='${Status}' ctsync)"
echo "conffiles $(inr dpkg-query -W -f='${Conffiles}' ctsync | awk '{ print $1 }' | tr '\n' ' ')"
echo "version $(inr /usr/sbin/ctsyncd --version)"
inr /usr/sbin/ctsyncctl --help >/dev/null && echo "help ok"
[ -L "$R/etc/systemd/system/multi-user.target.wants/ctsyncd.service" ] && echo "enabled yes"
echo "stat $(stat -c %a "$R/etc/ctsyncd")"
echo "running $(inr ps -eo comm | grep -cx ctsyncd)"
echo "step remove"
inr dpkg -r ctsync >/dev/null || exit 2
[ -e "$R/usr/sbin/ctsyncd" ] && echo "left-after-remove /usr/sbin/ctsyncd"
[ -e "$R/etc/ctsyncd/ctsyncd.conf.example" ] && echo "conffile-kept yes"
echo "step purge"
inr dpkg -P ctsync >/dev/null || exit 3
for f in /etc/ctsyncd /usr/lib/ctsync /usr/lib/ocf/resource.d/ctsync /lib/systemd/system/ctsyncd.service \
	 /etc/systemd/system/multi-user.target.wants/ctsyncd.service /usr/share/doc/ctsync \
	 /var/lib/dpkg/info/ctsync.list; do
	[ -e "$R$f" ] && echo "left-after-purge $f"
done
echo "status-after $(inr dpkg-query -W -f='${Status}' ctsync 2>&1 | head -n 1)"
exit 0
EOF
out=$(unshare -m -n -p --fork --propagation private bash "$W/rw/inside.sh" "$W/root" "$W/rw" 2>&1)
rc=$?
printf '%s\n' "$out" | grep -E '^(step|status|conffiles|version|help|enabled|stat|running|left|conffile)' |
	sed 's/^/    /'
[ $rc = 0 ] || { printf '%s\n' "$out" | tail -n 20; fail "install in the throw-away root: exit $rc"; }
grep -q '^status install ok installed' <<<"$out" && ok "installed (dpkg -i) in a throw-away root" ||
	fail "not installed"
grep -q "^version ctsyncd $want " <<<"$out" && grep -q '^help ok' <<<"$out" &&
	ok "ctsyncd --version ($want) and ctsyncctl --help run from the installed package" ||
	fail "the installed binaries do not run or say another version"
grep -q '^conffiles /etc/ctsyncd/ctsyncd.conf.example' <<<"$out" && ok "the example configuration is a conffile" ||
	fail "no conffile"
grep -q '^enabled yes' <<<"$out" && grep -q '^running 0' <<<"$out" &&
	ok "the unit is enabled, nothing started (it starts once /etc/ctsyncd/ctsyncd.conf exists)" ||
	fail "the unit is not enabled, or a ctsyncd runs"
grep -q '^stat 750' <<<"$out" || fail "/etc/ctsyncd is not 0750"
grep -q '^left-after-remove' <<<"$out" && fail "dpkg -r left files"
grep -q '^conffile-kept yes' <<<"$out" || fail "dpkg -r did not keep the conffile"
if grep -q '^left-after-purge' <<<"$out"; then
	fail "dpkg -P left files behind"
else
	grep -q '^status-after.*not-installed\|^status-after.*no packages found' <<<"$out" &&
		ok "dpkg -r kept the conffile, dpkg -P removed everything" || fail "after purge: $(grep '^status-after' <<<"$out")"
fi
if [ "$FAILED" = 0 ]; then echo "PASS: Debian package"; exit 0; fi
echo "FAIL: Debian package"; exit 1
