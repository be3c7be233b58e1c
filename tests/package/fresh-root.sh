#!/bin/bash
# The README's Quick start on a fresh Debian 12 (debootstrap minbase): the
# checkout is cloned into the root, and there, as root, run
#
#   bash tests/demo.sh
#   bash tests/run-all.sh   with the fast subset (GK_QUICK_SUBSET below)
#
# exactly as README.md says, each installing what tests/packages.txt names.
# A package missing from that list fails here (issue 17: procps). Then,
# given a .deb, the package's autopkgtest (debian/tests) runs in the same
# root with autopkgtest's chroot runner.
#
#   tests/package/fresh-root.sh [DEB]     (as root; last line "N passed, N failed")
#
# The root runs in the host's network namespace (apt fetches from the
# Debian mirror); the demo and the tests make their own namespaces inside.
# GK_QUICK_SUBSET: the meson test names of the subset (default below: five unit
# tests, the test bed, the verdicts on the default hook, the install); the whole
# suite is CI's main phase on the host.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
root_reexec "$0" "$@"

SRC=$(cd "$here/../.." && pwd)
DEB=${1:+$(realpath "$1")}
GK_QUICK_SUBSET=${GK_QUICK_SUBSET:-config packet rules sites state topology verdicts-prerouting install}

trap 'cleanup_root' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

as_root_user() { in_root bash -c "cd /root/gatekeeper && $1"; }

clone() {
	new_root quickstart || return 1
	# what is committed, and what is not yet: the work tree as it is
	git clone -q "$SRC" "$ROOT/root/gatekeeper" || return 1
	(cd "$SRC" && git ls-files -m -o --exclude-standard -z) |
		(cd "$SRC" && xargs -0r cp --parents -t "$ROOT/root/gatekeeper") 2>/dev/null
	git -C "$ROOT/root/gatekeeper" log --oneline -1
}

demo() {
	local out status
	out=$(as_root_user 'bash tests/demo.sh' 2>&1)
	status=$?
	echo "$out" | tail -n 60
	((status == 0)) || return 1
	# what the demo shows, as a client sees it
	grep -q 'handshake ok' <<<"$out" && grep -q 'timeout' <<<"$out" && grep -q 'refused' <<<"$out" &&
		grep -q 'no rule of gatekeeper is left' <<<"$out"
}

tests_subset() {
	local out
	out=$(as_root_user "GK_SKIP_VM=1 SANITIZERS=0 FUZZ_SECONDS=0 GK_SKIP_PACKAGE=1 GK_MESON_TEST_ARGS='$GK_QUICK_SUBSET' bash tests/run-all.sh" 2>&1)
	echo "$out" | grep -E '^ *[0-9]+/[0-9]+ |^(Ok|Fail|Skipped|Timeout):|passed, .* failed|^phase ' ||
		tail -n 30 <<<"$out"
	tail -n1 <<<"$out" | grep -qE '^[1-9][0-9]* passed, 0 failed$'
}

autopkgtest_in_root() {
	local out="$GK_WORK/gk-autopkgtest-$$"
	rm -rf "$out"
	cp "$DEB" "$ROOT/tmp/" || return 1
	autopkgtest -q --output-dir "$out" "$DEB" "$ROOT/root/gatekeeper/" -- chroot "$ROOT" >"$out.log" 2>&1
	local status=$?
	sed -n '/^smoke/,$p' "$out.log" | tail -n 5
	grep -E '^(ok|not ok) ' "$out/smoke-stdout" 2>/dev/null
	tail -n 30 "$out.log" | grep -v '^autopkgtest \[' | tail -n 10
	rm -rf "$out" "$out.log"
	return "$status"
}

start=$SECONDS
timed() { local t=$SECONDS; "$@"; local s=$?; echo "($((SECONDS - t)) s)"; return $s; }
check "fresh root: debootstrap minbase bookworm (cached), the checkout cloned" clone || { summary; exit 1; }
check "README Quick start: bash tests/demo.sh (installs tests/packages.txt, builds, shows the three answers)" timed demo
check "README Quick start: bash tests/run-all.sh, the fast subset ($GK_QUICK_SUBSET)" timed tests_subset
if [[ -n $DEB ]]; then
	check "autopkgtest $(basename "$DEB") in the root (debian/tests/smoke)" autopkgtest_in_root
fi
log "fresh root: $((SECONDS - start)) s"
summary
