#!/usr/bin/env bash
# build.sh COMMIT DIR [MAKEVARS...]: ctsyncd and ctsyncctl of COMMIT, from
# this repository's own history (a detached git worktree, removed after the
# build), into DIR/ctsyncd and DIR/ctsyncctl.  Kept: a second call with the
# same commit and variables builds nothing.  Exit 77 when the commit is not
# in this clone's history (a shallow clone), so the caller can say so.
set -eu
commit=$1 out=$2; shift 2
top=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
stamp="$out/.built-$commit-$(printf '%s' "$*" | md5sum | cut -c1-8)"
[ -x "$out/ctsyncd" ] && [ -e "$stamp" ] && exit 0
if ! git -C "$top" cat-file -e "$commit^{commit}" 2>/dev/null; then
	echo "compat: commit $commit is not in this repository's history (shallow clone?)" >&2
	exit 77
fi
mkdir -p "$out"
wt=$(mktemp -d /tmp/ctsync-compat.XXXXXX)
cleanup() { git -C "$top" worktree remove --force "$wt" >/dev/null 2>&1 || rm -rf "$wt"; }
trap cleanup EXIT
git -C "$top" worktree add --detach --force "$wt" "$commit" >/dev/null 2>&1
make -C "$wt" -s BUILD="$wt/build" "$@" "$wt/build/ctsyncd" "$wt/build/ctsyncctl" >/dev/null
cp "$wt/build/ctsyncd" "$wt/build/ctsyncctl" "$out/"
rm -f "$out"/.built-*
touch "$stamp"
