#!/usr/bin/env bash
# make deb: the Debian package, built by dpkg-buildpackage -us -uc -b from a
# copy of this tree (without build/ and .git: as from a clean checkout, and
# the package's clean step leaves this tree alone).  The .deb and its
# .changes end in OUT (default build/deb); prints the .deb's path.
set -eu
TOP=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$TOP/build/deb}
W=$(mktemp -d /tmp/ctsync-deb.XXXXXX)
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/ctsync" "$OUT"
(cd "$TOP" && tar --exclude=./build --exclude=./.git -cf - .) | tar -xf - -C "$W/ctsync"
if ! (cd "$W/ctsync" && dpkg-buildpackage -us -uc -b) >"$W/build.log" 2>&1; then
	tail -n 40 "$W/build.log" >&2
	echo "deb: dpkg-buildpackage failed" >&2
	exit 1
fi
rm -f "$OUT"/ctsync_*.deb "$OUT"/ctsync-dbgsym_*.deb "$OUT"/ctsync_*.changes "$OUT"/ctsync_*.buildinfo
mv "$W"/ctsync_*.deb "$W"/ctsync-dbgsym_*.deb "$W"/ctsync_*.changes "$W"/ctsync_*.buildinfo "$OUT"/
ls "$OUT"/ctsync_*_"$(dpkg --print-architecture)".deb
