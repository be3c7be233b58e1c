#!/bin/bash
# Runs the e2e suite of an existing build once per rules-backend flavour,
# asserting each time which backend the daemon chose. Never builds.
#
#   tests/qemu/e2e-flavours.sh BUILDDIR [--no-suite SUITE] [--only "TEST..."] FLAVOUR...
#
# FLAVOUR: auto=EXPECTED (config `backend: auto`, the daemon must pick
# EXPECTED: nft, xt-nft or xt-legacy), or xt-nft / xt-legacy (forced in the
# config and expected). --only restricts the flavours after it to those
# meson tests of the e2e suite (--only "" : all of them again); --no-suite
# leaves a suite's tests out (e2e-userspace: the tests of the daemon's
# user-space side, see tests/e2e/meson.build). Per flavour, a line "e2e flavour F: N passed, N
# failed"; the last line is the total "N passed, N failed". Exit 0 if all
# passed. E2E_TIMEOUT_MULTIPLIER scales meson's per-test timeouts (for TCG).
set -u

builddir=${1:?usage: $0 BUILDDIR FLAVOUR...}
shift
total_ok=0
total_failed=0
out=$(mktemp /tmp/gk-e2e-flavours.XXXXXX) || exit 1
trap 'rm -f "$out"' EXIT

# meson's summary: "Ok: N", "Fail: N", ...; empty if there is none
count() { sed -n "s/^$1:[[:space:]]*\([0-9][0-9]*\)[[:space:]]*\$/\1/p" "$out" | tail -n1; }

only=()
skip=()
while (($#)); do
	if [[ $1 == --only ]]; then
		read -r -a only <<<"${2-}"
		shift 2
		continue
	fi
	if [[ $1 == --no-suite ]]; then
		skip+=(--no-suite "${2-}")
		shift 2
		continue
	fi
	flavour=$1
	shift
	case $flavour in
	auto=*) backend=auto expect=${flavour#auto=} ;;
	*) backend=$flavour expect=$flavour ;;
	esac
	echo "=== e2e flavour $flavour on $(uname -r): ${only[*]:-all tests} ${skip[*]:-}"
	start=$SECONDS
	E2E_BACKEND=$backend E2E_EXPECT_BACKEND=$expect \
		meson test -C "$builddir" --no-rebuild --suite e2e --num-processes 1 --print-errorlogs \
		--timeout-multiplier "${E2E_TIMEOUT_MULTIPLIER:-1}" --logbase "testlog-e2e-$backend" \
		"${skip[@]}" "${only[@]}" >"$out" 2>&1
	status=$?
	cat "$out"
	ok=$(count Ok)
	fail=$(count Fail) timeout=$(count Timeout) unexpected=$(count "Unexpected Pass")
	failed=$((${fail:-0} + ${timeout:-0} + ${unexpected:-0}))
	if [[ -z $ok ]] || { ((status != 0)) && ((failed == 0)); }; then
		failed=$((failed + 1)) # meson itself failed
	fi
	total_ok=$((total_ok + ${ok:-0}))
	total_failed=$((total_failed + failed))
	echo "e2e flavour $flavour: ${ok:-0} passed, $failed failed ($((SECONDS - start))s)"
done
echo "$total_ok passed, $total_failed failed"
((total_failed == 0))
