#!/usr/bin/env bash
# `make install DESTDIR=...` installs everything where the docs say; the
# systemd unit passes `systemd-analyze verify`; the man pages render with
# `man -l` without a warning; the installed tools run.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
D=$(mktemp -d /tmp/ctsync-install.XXXXXX)
trap 'rm -rf "$D"' EXIT
FAILED=0
ok()   { printf '  ok: %s\n' "$*"; }
fail() { printf '  FAIL: %s\n' "$*"; FAILED=1; }
echo "== make install DESTDIR"
make -s -C "$TOP" install DESTDIR="$D" BUILD="${BUILD:-$TOP/build}" >"$D.log" 2>&1 ||
	{ cat "$D.log"; rm -f "$D.log"; echo "FAIL: make install"; exit 1; }
rm -f "$D.log"
for f in usr/sbin/ctsyncd usr/sbin/ctsyncctl usr/share/man/man8/ctsyncd.8 \
	 usr/share/man/man8/ctsyncctl.8 usr/share/man/man5/ctsyncd.conf.5 \
	 etc/ctsyncd/ctsyncd.conf.example usr/lib/systemd/system/ctsyncd.service \
	 usr/lib/ctsync/keepalived/ctsync-notify usr/lib/ctsync/keepalived/ctsync-notify-fifo \
	 usr/lib/ctsync/keepalived/keepalived.conf.example usr/lib/ocf/resource.d/ctsync/ctsyncd \
	 usr/share/doc/ctsync/README.md usr/share/doc/ctsync/NEWS usr/share/doc/ctsync/UPGRADING.md; do
	[ -e "$D/$f" ] || fail "missing /$f"
done
[ "$FAILED" = 0 ] && ok "every file installed"
want=$(cat "$TOP/VERSION")
v=$("$D/usr/sbin/ctsyncd" --version) && [ "${v#ctsyncd $want }" != "$v" ] &&
	"$D/usr/sbin/ctsyncctl" --version | grep -q "^ctsyncctl $want " &&
	grep -q "^$want " "$TOP/NEWS" &&
	ok "installed binaries say the release of VERSION ($want), as NEWS does: $v" ||
	fail "versions: VERSION $want, ctsyncd says '$v', NEWS $(grep -m1 "^[0-9]" "$TOP/NEWS")"
[ "$(stat -c %a "$D/etc/ctsyncd")" = 750 ] && [ -x "$D/usr/lib/ocf/resource.d/ctsync/ctsyncd" ] &&
	ok "modes: /etc/ctsyncd 0750, scripts executable" || fail "modes"
"$D/usr/sbin/ctsyncd" --help >/dev/null && "$D/usr/sbin/ctsyncctl" --help >/dev/null &&
	ok "the installed binaries run" || fail "installed binaries"
if command -v systemd-analyze >/dev/null; then
	# the installed unit, its binaries' paths pointed into DESTDIR (verify
	# checks that they exist) and the man pages found there
	mkdir -p "$D/verify"
	sed "s|/usr/sbin/|$D/usr/sbin/|g" "$D/usr/lib/systemd/system/ctsyncd.service" \
		> "$D/verify/ctsyncd.service"
	out=$(cd "$D/verify" && MANPATH="$D/usr/share/man" systemd-analyze verify ./ctsyncd.service 2>&1)
	rc=$?
	[ $rc = 0 ] && [ -z "$out" ] && ok "systemd-analyze verify accepts the unit" ||
		fail "systemd-analyze verify: exit $rc: $out"
else
	echo "  (no systemd-analyze here: unit not verified)"
fi
for m in man8/ctsyncd.8 man8/ctsyncctl.8 man5/ctsyncd.conf.5; do
	w=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$D/usr/share/man/$m" 2>&1 >/dev/null)
	n=$(LC_ALL=C.UTF-8 MANWIDTH=80 man -E UTF-8 -l "$D/usr/share/man/$m" 2>/dev/null | wc -l)
	[ -z "$w" ] && [ "$n" -gt 20 ] && ok "man -l $m: $n lines, no warning" || fail "man $m: $w"
done
[ "$FAILED" = 0 ] && { echo "PASS: make install"; exit 0; }
echo "FAIL: make install"; exit 1
