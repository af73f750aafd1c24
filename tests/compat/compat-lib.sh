# Sourced by the compat tests after tests/cluster/lib.sh and preflight.
# compat_bin KIND: builds the release of tests/compat/releases' first KIND
# line from this repository's history and sets OLDBIN to its ctsyncd (and
# OLDREL to its name, the line's third field), and says both versions.  No
# such line: OLDBIN is the current build.  Exits 77 (skipped) when the
# commit is not in this clone.
COMPAT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
compat_bin() {
	local kind=$1 commit rc
	commit=$(awk -v k="$kind" '$1 == k { print $2; exit }' "$COMPAT/releases")
	OLDREL=$(awk -v k="$kind" '$1 == k { print $3; exit }' "$COMPAT/releases")
	if [ -z "$commit" ]; then
		OLDBIN=$B/ctsyncd OLDREL=current
		info "no $kind release in tests/compat/releases: the current build stands in"
	else
		bash "$COMPAT/build.sh" "$commit" "$B/compat/$commit"; rc=$?
		if [ $rc = 77 ]; then say "SKIP: $commit is not in this clone's history"; exit 77; fi
		[ $rc = 0 ] || { fail "building $commit"; finish "$NAME"; }
		OLDBIN=$B/compat/$commit/ctsyncd
	fi
	info "$kind: $("$OLDBIN" --version 2>/dev/null || echo "(no --version)") ($OLDREL)"
	info "current: $("$B/ctsyncd" --version)"
}

# sum_stat NS KEY...: the sum of those counters of the daemon in NS
sum_stat() {
	local ns=$1 t=0 k v; shift
	for k in "$@"; do v=$(ctstat "$ns" "$k"); t=$((t + ${v:-0})); done
	printf '%s' "$t"
}
